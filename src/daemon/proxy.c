/* proxy.c - the egress proxy (see proxy.h for the model).
 *
 * One state machine per client connection, driven by the daemon's epoll loop:
 *
 *   forward:      HEAD ──CONNECT──▶ decide ─▶ RESOLVE ─▶ CONNECT [─▶ PXCONNECT] ─▶ TUNNEL
 *                      └─absolute URI─▶ decide (method, path) ─▶ ... ─▶ HTTP
 *   transparent:  original destination ─▶ (PEEK for SNI / Host when needed) ─▶ decide ─▶ ...
 *
 * TUNNEL relays opaque bytes with splice(2) through a pipe per direction, so the payload never
 * enters user space. HTTP forwards one request (client-side keep-alive is not offered: the
 * response carries "Connection: close"), with the request and response framing tracked
 * strictly by the http1 parser so that nothing smuggled rides along.
 *
 * Every attempt ends in exactly one audit record, written when the connection finishes (or is
 * refused). Memory per connection is bounded by the caps below; a sandbox cannot make the daemon
 * buffer more. */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netdb.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "audit.h"
#include "buf.h"
#include "cleanup.h"
#include "daemon.h"
#include "dns.h"
#include "http1.h"
#include "log.h"
#include "policy.h"
#include "resolver.h"
#include "review.h"
#include "classify.h"
#include "credinject.h"
#include "tls_client.h"
#include "tls_mitm.h"
#include "tls_sni.h"
#include "util.h"

#define HEAD_TIMEOUT_MS 30000
#define PEEK_TIMEOUT_MS 300
#define CONNECT_TIMEOUT_MS 15000
#define PXCONNECT_TIMEOUT_MS 30000
#define BODY_BUF_MAX (256u * 1024) /* user-space buffering per direction in HTTP mode */
#define PIPE_CHUNK (64u * 1024)
#define MAX_OVERRIDES 256
#define FAKE_NET 0xC6120000u /* 198.18.0.0/15 */
#define FAKE_MASK 0xFFFE0000u
#define FAKE_TTL 60
#define FAKE_BUCKETS 4096
#define DNS_BATCH 64
#define HELD_CHECK_MS 1000 /* how often a held connection is checked for its client leaving */

static const char *const proxy_env[] = {
	/* the sbx CA (interception) on top of the system store, for clients with their own */
	"SSL_CERT_FILE=" SBX_SYSTEM_CA_BUNDLE,
	"REQUESTS_CA_BUNDLE=" SBX_SYSTEM_CA_BUNDLE,
	"CURL_CA_BUNDLE=" SBX_SYSTEM_CA_BUNDLE,
	"GIT_SSL_CAINFO=" SBX_SYSTEM_CA_BUNDLE,
	"NODE_EXTRA_CA_CERTS=" SBX_SYSTEM_CA_BUNDLE,
	"AWS_CA_BUNDLE=" SBX_SYSTEM_CA_BUNDLE,
	"HTTP_PROXY=" SBX_PROXY_URL,
	"HTTPS_PROXY=" SBX_PROXY_URL,
	"http_proxy=" SBX_PROXY_URL,
	"https_proxy=" SBX_PROXY_URL,
	"NO_PROXY=localhost,127.0.0.1,::1",
	"no_proxy=localhost,127.0.0.1,::1",
	NULL,
};

const char *const *sbx_proxy_env(void)
{
	return proxy_env;
}

/* ---- configuration ---- */

struct override {
	char host[256];
	uint16_t port;     /* 0 = any */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint16_t new_port; /* 0 = keep */
};

/* ---- per-sandbox state ---- */

struct px_sb;

struct px_listener {
	struct px_sb *sb;
	int kind; /* SBX_PXFD_* */
	int fd;
	uint64_t paused; /* timer that resumes accepting after running out of descriptors */
};

struct px_conn;

struct px_sb {
	struct sbx_proxy *p;
	char id[33];
	char name[64];
	struct px_listener lst[SBX_PXFD_COUNT];
	struct px_conn *conns;
	size_t nconns;
	/* fake addresses: slot i <-> FAKE_NET + 1 + i */
	char **fake_names;
	int32_t *fake_next;           /* hash chain, -1 ends */
	int32_t fake_buckets[FAKE_BUCKETS];
	uint32_t fake_used, fake_cursor;
	struct px_sb *next;
};

struct sbx_proxy {
	struct sbx_daemon *d;
	struct sbx_resolver *resolver;
	struct px_sb *sbs;
	struct override overrides[MAX_OVERRIDES];
	size_t noverrides;
	char up_host[256]; /* upstream proxy, "" = none */
	uint16_t up_port;
	char ca_bundle[PATH_MAX];
	struct sbx_tls_client *tls; /* for connections the proxy itself makes over TLS */
	struct sbx_mitm *mitm;      /* the interception CA; NULL when it cannot be used: */
	char mitm_error[300];       /* why */
	uint64_t audit_warned_ms;
	size_t nconns;
	struct sbx_proxy_stats stats;
};

/* ---- connections ---- */

enum px_state {
	S_HEAD,      /* forward: reading the request head */
	S_PEEK,      /* transparent: looking at the first bytes without consuming them */
	S_RESOLVE,
	S_CONNECT,
	S_PXCONNECT, /* CONNECT through the upstream proxy */
	S_TLS,       /* our own TLS handshake with the origin (https:// requests in absolute form) */
	S_CTLS,      /* intercepting: the TLS handshake with the client, as the origin */
	S_TUNNEL,
	S_HTTP,
	S_REFUSE,    /* writing a refusal, then closing */
	S_HELD,      /* the request waits in the review queue; the client is not read */
};

enum px_mode { M_TUNNEL, M_HTTP };

/* One message body in flight: how it is framed, and how much of it is left. */
struct body {
	int kind;                  /* enum sbx_http_body */
	uint64_t remaining;        /* LENGTH */
	struct sbx_http_chunked chunked;
	bool done;
};

struct side {
	int fd;
	unsigned want;  /* events asked for */
	bool registered;
	bool hup;       /* the loop reported hangup/error on it */
	SSL *ssl;       /* TLS on this side: ours to the origin, or intercepting the client */
	bool ssl_want_read, ssl_want_write; /* what the last SSL call is waiting for */
};

struct px_conn {
	struct sbx_proxy *p;
	struct px_sb *sb;
	int kind;            /* SBX_PXFD_EXPLICIT / TRANSPARENT4 / TRANSPARENT6 */
	enum px_state state;
	enum px_mode mode;
	struct side c, u;
	uint64_t timer;
	uint64_t resolve_handle;
	int64_t t0_ms;
	uint64_t t0_mono;
	/* what is being reached */
	char host[256];      /* "" when only an address is known */
	uint16_t port;
	int orig_family;     /* transparent: the original destination */
	uint8_t orig_addr[16];
	char method[SBX_HTTP_MAX_METHOD + 1];
	char url_path[512];
	char authority[300]; /* host[:port] as the upstream request's Host */
	bool host_internal;  /* host.sbx.internal */
	bool via_override;
	bool via_upstream_proxy;
	bool explicit_addr_rule; /* decided by an address rule that names the destination */
	bool origin_tls;     /* the proxy speaks TLS to the origin (a GET https://... request) */
	bool origin_form;    /* requests come in origin form (transparent, or intercepted TLS) */
	bool intercept;      /* TLS from the client terminated here: requests are read, decided
			      * one by one, credentials injected */
	bool peeked_tls;     /* transparent: the first bytes were a TLS ClientHello */
	bool keep_client;    /* intercepted: the client connection carries further requests */
	bool idle;           /* between intercepted requests: closing now logs nothing */
	unsigned requests;   /* requests completed on this connection */
	bool have_cred;
	struct sbx_cred cred;
	bool wait_body;          /* AWS: the head is in, the body it signs is still coming */
	bool upstream_reusable;  /* intercepted: the origin keeps the connection for the next request */
	uint64_t peek_deadline;  /* transparent: when the peek window closes (monotonic ms) */
	char sign_error[200];
	/* review: the request's id in the queue while held (and for the log once decided), and
	 * whether it was approved (it then passes the review step when the head is read again) */
	char review_id[SBX_REVIEW_ID_SIZE];
	bool review_cleared;
	bool sent_continue;      /* we answered "Expect: 100-continue" ourselves to read the body */
	bool connect_peek;       /* CONNECT answered, now looking at the first bytes in the tunnel */
	size_t classify_raw;     /* body bytes the last classification that wanted more had seen */
	bool tunnel_guard;       /* an opaque tunnel the classifiers would have read: its first
				  * client bytes must be neither TLS nor HTTP */
	char review_note[200];   /* "r-... approved by ...", for the record of the request that was sent */
	struct sbx_decision dec; /* dec.rule is cleared after decide(): the policy may be swapped */
	enum sbx_rule_kind rule_kind;
	bool has_rule;
	char rule_text[300];     /* the deciding rule, described */
	char rule_res[300];      /* its resource, for the suggestion */
	char rule_sandbox[64];
	uint32_t dec_approvals;  /* a deciding review rule's approvals and timeout */
	uint64_t dec_timeout_ms;
	/* upstream candidates */
	struct sbx_resolved addrs;
	size_t addr_next;
	/* buffers */
	sbx_buf cin;   /* client -> proxy bytes not yet consumed */
	sbx_buf uout;  /* proxy -> upstream pending */
	sbx_buf din;   /* upstream -> proxy bytes not yet consumed */
	sbx_buf cout;  /* proxy -> client pending */
	/* HTTP mode */
	bool req_upgrade;
	struct body req, resp;
	bool up_done;
	bool resp_head_done;
	bool down_done;
	bool client_version10;
	/* TUNNEL */
	int pipes[2][2];   /* [0] client->upstream, [1] upstream->client */
	size_t pending[2];
	bool eof[2], shut[2];
	/* outcome */
	uint64_t bytes_up, bytes_down;
	int status;
	char decision[16];
	char reason[200];
	bool finished;
	struct px_conn *next;
};

static void conn_step(struct px_conn *c);
static void conn_finish(struct px_conn *c, const char *decision);
static void start_upstream(struct px_conn *c);
static void io_cb(struct sbx_loop *loop, int fd, unsigned events, void *ud);
static void tunnel_decide_and_go(struct px_conn *c);
static void next_request(struct px_conn *c);
static void start_client_tls(struct px_conn *c);
static bool wants_interception(struct px_conn *c);
static bool must_intercept(struct px_conn *c);
static bool classifiers_apply(const struct px_conn *c);
static void peek_read(struct px_conn *c);
static void held_check(struct px_conn *c);
static void tunnel_step(struct px_conn *c);

static struct sbx_loop *loop_of(struct px_conn *c)
{
	return c->p->d->loop;
}

static void side_set(struct px_conn *c, struct side *s, unsigned want)
{
	struct sbx_loop *loop = loop_of(c);

	if (s->fd < 0)
		return;
	/* A hung-up socket is reported by epoll whatever we ask for: keep it out of the set while
	 * we do not want to hear from it, or the loop would spin. */
	if (want == 0 && s->hup) {
		if (s->registered) {
			sbx_loop_del(loop, s->fd);
			s->registered = false;
		}
		s->want = 0;
		return;
	}
	if (!s->registered) {
		if (sbx_loop_add(loop, s->fd, want, io_cb, c) == 0) {
			s->registered = true;
			s->want = want;
		}
		return;
	}
	if (s->want != want && sbx_loop_mod(loop, s->fd, want) == 0)
		s->want = want;
}

static void side_close(struct px_conn *c, struct side *s, bool reset)
{
	if (s->fd < 0)
		return;
	if (s->registered)
		sbx_loop_del(loop_of(c), s->fd);
	if (reset) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(s->fd);
	s->fd = -1;
	s->registered = false;
}

static void timer_clear(struct px_conn *c)
{
	if (c->timer) {
		sbx_loop_timer_cancel(loop_of(c), c->timer);
		c->timer = 0;
	}
}

static void on_timeout(struct sbx_loop *loop, void *ud);

static void timer_set(struct px_conn *c, uint64_t ms)
{
	timer_clear(c);
	c->timer = sbx_loop_timer(loop_of(c), ms, on_timeout, c);
}

/* ---- fake addresses ---- */

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;
	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

static void fake_unlink(struct px_sb *sb, uint32_t slot)
{
	uint32_t b = name_hash(sb->fake_names[slot]) % FAKE_BUCKETS;
	for (int32_t *pp = &sb->fake_buckets[b]; *pp >= 0; pp = &sb->fake_next[*pp])
		if ((uint32_t)*pp == slot) {
			*pp = sb->fake_next[slot];
			return;
		}
}

/* The fake IPv4 address (host order) for a name, allocating one if needed; 0 on failure. */
static uint32_t fake_for(struct px_sb *sb, const char *name)
{
	uint32_t b = name_hash(name) % FAKE_BUCKETS, slot;

	if (!sb->fake_names) {
		sb->fake_names = calloc(SBX_PROXY_MAX_FAKE_NAMES, sizeof(char *));
		sb->fake_next = calloc(SBX_PROXY_MAX_FAKE_NAMES, sizeof(int32_t));
		if (!sb->fake_names || !sb->fake_next) {
			free(sb->fake_names);
			free(sb->fake_next);
			sb->fake_names = NULL;
			sb->fake_next = NULL;
			return 0;
		}
	}
	for (int32_t i = sb->fake_buckets[b]; i >= 0; i = sb->fake_next[i])
		if (strcmp(sb->fake_names[i], name) == 0)
			return FAKE_NET + 1 + (uint32_t)i;
	/* A new slot; when all are used the oldest allocation is recycled (its name simply
	 * resolves again to a new address). */
	slot = sb->fake_cursor;
	sb->fake_cursor = (sb->fake_cursor + 1) % SBX_PROXY_MAX_FAKE_NAMES;
	if (sb->fake_names[slot]) {
		fake_unlink(sb, slot);
		free(sb->fake_names[slot]);
		sb->fake_names[slot] = NULL;
	} else {
		sb->fake_used++;
	}
	if (!(sb->fake_names[slot] = strdup(name)))
		return 0;
	sb->fake_next[slot] = sb->fake_buckets[b];
	sb->fake_buckets[b] = (int32_t)slot;
	return FAKE_NET + 1 + slot;
}

static const char *fake_name(const struct px_sb *sb, uint32_t addr)
{
	uint32_t slot;

	if ((addr & FAKE_MASK) != FAKE_NET || !sb->fake_names)
		return NULL;
	slot = addr - FAKE_NET - 1;
	if (addr == FAKE_NET || slot >= SBX_PROXY_MAX_FAKE_NAMES)
		return NULL;
	return sb->fake_names[slot];
}

static void fake_free(struct px_sb *sb)
{
	if (sb->fake_names)
		for (uint32_t i = 0; i < SBX_PROXY_MAX_FAKE_NAMES; i++)
			free(sb->fake_names[i]);
	free(sb->fake_names);
	free(sb->fake_next);
	sb->fake_names = NULL;
	sb->fake_next = NULL;
}

/* ---- addresses ---- */

static bool v4_forbidden(uint32_t a)
{
	return (a >> 24) == 0 || (a >> 24) == 127 || (a >> 16) == 0xA9FE /* 169.254/16 */ ||
	       (a >> 28) == 0xE /* multicast */ || a == 0xFFFFFFFFu ||
	       a == 0x646464C8u /* 100.100.100.200: Alibaba Cloud metadata */;
}

/* Addresses the proxy never connects to on a sandbox's behalf unless a user-written override or
 * an explicit address rule names them: the host's own loopback, link-local (cloud metadata),
 * unspecified and multicast. */
static bool addr_forbidden(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return v4_forbidden(ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr));
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		static const uint8_t aws_md[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54};
		static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
		uint32_t v4;
		if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a) || memcmp(a->s6_addr, nat64, 12) == 0) {
			memcpy(&v4, &a->s6_addr[12], 4);
			return v4_forbidden(ntohl(v4));
		}
		if (a->s6_addr[0] == 0x20 && a->s6_addr[1] == 0x02) { /* 6to4 carries an IPv4 address */
			memcpy(&v4, &a->s6_addr[2], 4);
			if (v4_forbidden(ntohl(v4)))
				return true;
		}
		if (memcmp(a->s6_addr, aws_md, 16) == 0) /* the AWS metadata service over IPv6 */
			return true;
		return IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
		       IN6_IS_ADDR_MULTICAST(a) || IN6_IS_ADDR_SITELOCAL(a);
	}
	return true;
}

static void addr_text(int family, const uint8_t *addr, char *out, size_t n)
{
	if (!inet_ntop(family, addr, out, (socklen_t)n))
		sbx_strlcpy(out, "?", n);
}

/* ---- audit and refusals ---- */

/* Keeps what the refusal and the log need from the deciding rule: the compiled policy it lives
 * in may be replaced (a policy change) while this connection still waits on the network. */
static void keep_rule(struct px_conn *c)
{
	c->has_rule = c->dec.rule != NULL;
	c->rule_text[0] = c->rule_res[0] = c->rule_sandbox[0] = '\0';
	if (c->dec.rule) {
		sbx_rule_describe(c->dec.rule, c->rule_text, sizeof(c->rule_text));
		sbx_strlcpy(c->rule_res, c->dec.rule->res.text, sizeof(c->rule_res));
		sbx_strlcpy(c->rule_sandbox, c->dec.rule->sandbox, sizeof(c->rule_sandbox));
		c->rule_kind = c->dec.rule->kind;
		c->dec_approvals = c->dec.rule->approvals;
		c->dec_timeout_ms = c->dec.rule->timeout_ms;
		/* Only a rule that names a narrow range is explicit enough to open a reserved address
		 * (allow 127.0.0.1 or 169.254.0.0/16 does; allow 0.0.0.0/0 does not). */
		c->explicit_addr_rule = c->dec.kind == SBX_RULE_ALLOW && c->dec.rule->res.type == SBX_RES_ADDR &&
					c->dec.rule->res.prefix >= (c->dec.rule->res.family == AF_INET ? 8 : 16);
	}
	c->dec.rule = NULL;
}

static const char *path_name(const struct px_conn *c)
{
	return c->kind == SBX_PXFD_EXPLICIT ? "forward" : "transparent";
}

static void audit_submit(struct sbx_proxy *p, const struct sbx_audit_rec *r)
{
	if (!p->d->audit)
		return;
	if (sbx_audit_submit(p->d->audit, r) < 0) {
		uint64_t now = sbx_monotonic_ms();
		p->stats.audit_rejected++;
		if (now - p->audit_warned_ms > 60000) {
			log_warn("the audit log cannot take records (queue full: is the disk full or the database "
				 "locked?); new connections are refused until it recovers");
			p->audit_warned_ms = now;
		}
	}
}

/* The log is full: new attempts are refused rather than let through unrecorded. */
static bool audit_blocked(struct sbx_proxy *p)
{
	return p->d->audit && sbx_audit_full(p->d->audit);
}

static void conn_audit(struct px_conn *c)
{
	struct sbx_audit_rec r;

	if (c->idle)
		return; /* a kept-alive connection closing between requests: nothing was attempted */
	if (strcmp(c->decision, "closed") == 0) {
		/* The client left before saying where it wanted to go: nothing was attempted. */
		if (!c->host[0] && !c->orig_family)
			return;
		sbx_strlcpy(c->decision, "error", sizeof(c->decision));
		if (!c->reason[0])
			sbx_strlcpy(c->reason, "the client closed the connection before a decision", sizeof(c->reason));
	}
	memset(&r, 0, sizeof(r));
	r.ts = c->t0_ms;
	sbx_strlcpy(r.sandbox, c->sb->name, sizeof(r.sandbox));
	sbx_strlcpy(r.path, path_name(c), sizeof(r.path));
	if (c->host[0])
		sbx_strlcpy(r.host, c->host, sizeof(r.host));
	else if (c->orig_family)
		addr_text(c->orig_family, c->orig_addr, r.host, sizeof(r.host));
	r.port = c->port;
	sbx_strlcpy(r.method, c->method, sizeof(r.method));
	sbx_strlcpy(r.url_path, c->url_path, sizeof(r.url_path));
	sbx_strlcpy(r.decision, c->decision[0] ? c->decision : "error", sizeof(r.decision));
	sbx_strlcpy(r.rule, c->rule_text, sizeof(r.rule));
	sbx_strlcpy(r.reason, c->reason, sizeof(r.reason));
	if (c->review_cleared && strcmp(r.decision, "allowed") == 0) {
		/* the request a review approved, as it went upstream (status, bytes) */
		sbx_strlcpy(r.decision, "sent", sizeof(r.decision));
		if (!r.reason[0])
			sbx_strlcpy(r.reason, c->review_note, sizeof(r.reason));
	}
	r.bytes_up = c->bytes_up;
	r.bytes_down = c->bytes_down;
	r.duration_ms = sbx_monotonic_ms() - c->t0_mono;
	r.status = c->status;
	audit_submit(c->p, &r);
}

/* What the user can type to change the outcome. */
static void suggestion(const struct px_conn *c, char *out, size_t n)
{
	char res[300];

	if (c->has_rule && c->dec.kind == SBX_RULE_DENY) {
		snprintf(out, n, "remove the rule with: sbx policy rm network %s%s%s", c->rule_res,
			 c->rule_sandbox[0] ? " --sandbox " : "", c->rule_sandbox);
		return;
	}
	if (c->host[0])
		sbx_strlcpy(res, c->host, sizeof(res));
	else if (c->orig_family)
		addr_text(c->orig_family, c->orig_addr, res, sizeof(res));
	else
		sbx_strlcpy(res, "HOST", sizeof(res));
	if (c->method[0] && strcmp(c->method, "CONNECT") != 0 && c->has_rule)
		/* an HTTP rule narrowed the host: allowing the method is the smallest change */
		snprintf(out, n, "allow it with: sbx policy allow network %s --method %s", res, c->method);
	else
		snprintf(out, n, "allow it with: sbx policy allow network %s", res);
}

/* "CONNECT host:port" / "GET http://host/path": the request as the refusal names it. */
static void request_text(const struct px_conn *c, char *out, size_t n)
{
	char dest[300];

	if (c->host[0])
		snprintf(dest, sizeof(dest), "%s%s%s:%u", strchr(c->host, ':') ? "[" : "", c->host,
			 strchr(c->host, ':') ? "]" : "", c->port);
	else if (c->orig_family) {
		char a[INET6_ADDRSTRLEN];
		addr_text(c->orig_family, c->orig_addr, a, sizeof(a));
		snprintf(dest, sizeof(dest), "%s%s%s:%u", c->orig_family == AF_INET6 ? "[" : "", a,
			 c->orig_family == AF_INET6 ? "]" : "", c->port);
	} else
		sbx_strlcpy(dest, "?", sizeof(dest));
	if (!c->method[0] || strcmp(c->method, "CONNECT") == 0)
		snprintf(out, n, "CONNECT %s", dest);
	else
		snprintf(out, n, "%s %s://%s%s", c->method, c->origin_tls ? "https" : "http",
			 c->authority[0] ? c->authority : dest, c->url_path);
}

/* Ends the connection with an HTTP error (forward path, or transparent plain HTTP), or a reset
 * when the client does not speak HTTP to us. */
static void refuse(struct px_conn *c, int status, const char *decision, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void refuse(struct px_conn *c, int status, const char *decision, const char *fmt, ...)
{
	va_list ap;
	char body[1600], hint[400], what[900];
	bool http = c->kind == SBX_PXFD_EXPLICIT || c->mode == M_HTTP;

	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
	sbx_strlcpy(c->decision, decision, sizeof(c->decision));
	c->status = status;
	timer_clear(c);
	if (c->resolve_handle) {
		sbx_resolver_cancel(c->p->resolver, c->resolve_handle);
		c->resolve_handle = 0;
	}
	side_close(c, &c->u, true);
	c->p->stats.refused++;
	if (!http || c->c.fd < 0 || c->state == S_TUNNEL || (c->state == S_HTTP && c->resp_head_done)) {
		conn_finish(c, decision);
		return;
	}
	if (status == 403 && (strcmp(decision, "refused") == 0 || strcmp(decision, "timeout") == 0)) {
		request_text(c, what, sizeof(what));
		snprintf(body, sizeof(body),
			 "sbx: this request of sandbox %s was held for review and refused\n"
			 "  request: %s\n"
			 "  reason:  %s\n"
			 "  It was not sent. A person decides these: sbx review ls, on the host.\n",
			 c->sb->name, what, c->reason);
	} else if (status == 403) {
		suggestion(c, hint, sizeof(hint));
		request_text(c, what, sizeof(what));
		snprintf(body, sizeof(body),
			 "sbx: the network policy of sandbox %s blocked this request\n"
			 "  request: %s\n"
			 "  reason:  %s\n"
			 "  rule:    %s\n"
			 "  %s\n",
			 c->sb->name, what, c->reason,
			 c->rule_text[0] ? c->rule_text : "(none: anything not allowed is denied)", hint);
	} else {
		snprintf(body, sizeof(body), "sbx proxy: %s\n", c->reason);
	}
	sbx_buf_reset(&c->cout);
	sbx_buf_printf(&c->cout,
		       "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
		       "Connection: close\r\nX-Sbx-Decision: %s\r\n\r\n%s",
		       status, sbx_http_status_text(status), strlen(body), decision, body);
	c->state = S_REFUSE;
	timer_set(c, HEAD_TIMEOUT_MS);
	conn_step(c);
}

/* ---- connection lifetime ---- */

static void conn_free_later(struct sbx_loop *loop, void *ud)
{
	struct px_conn *c = ud;

	(void)loop;
	sbx_buf_free(&c->cin);
	sbx_buf_free(&c->uout);
	sbx_buf_free(&c->din);
	sbx_buf_free(&c->cout);
	sbx_cred_clear(&c->cred);
	free(c);
}

static void conn_finish(struct px_conn *c, const char *decision)
{
	if (c->finished)
		return;
	c->finished = true;
	if (c->state == S_HELD && c->review_id[0])
		sbx_review_detach(c->p->d->reviews, c->review_id, c);
	if (decision && !c->decision[0])
		sbx_strlcpy(c->decision, decision, sizeof(c->decision));
	timer_clear(c);
	if (c->resolve_handle)
		sbx_resolver_cancel(c->p->resolver, c->resolve_handle);
	c->resolve_handle = 0;
	side_close(c, &c->c, strcmp(c->decision, "allowed") != 0 && c->state != S_REFUSE);
	for (struct side *sd = &c->c; sd; sd = sd == &c->c ? &c->u : NULL)
		if (sd->ssl) {
			SSL_free(sd->ssl);
			sd->ssl = NULL;
		}
	side_close(c, &c->u, false);
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
			if (c->pipes[i][j] >= 0) {
				close(c->pipes[i][j]);
				c->pipes[i][j] = -1;
			}
	conn_audit(c);
	for (struct px_conn **pp = &c->sb->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->sb->nconns--;
	c->p->nconns--;
	c->p->stats.conns_active--;
	if (!sbx_loop_timer(loop_of(c), 0, conn_free_later, c))
		conn_free_later(loop_of(c), c);
}

static void on_timeout(struct sbx_loop *loop, void *ud)
{
	struct px_conn *c = ud;

	(void)loop;
	c->timer = 0;
	switch (c->state) {
	case S_HEAD:
		if (c->requests > 0 && c->cin.len == 0) {
			c->idle = true; /* a kept-alive client that sent nothing more */
			conn_finish(c, "closed");
			break;
		}
		refuse(c, 408, "error", "the request head did not arrive in time");
		break;
	case S_CTLS:
		snprintf(c->reason, sizeof(c->reason), "the TLS handshake with the client did not complete in time");
		conn_finish(c, "error");
		break;
	case S_PEEK:
		if (sbx_monotonic_ms() < c->peek_deadline) {
			peek_read(c); /* a short wait for more of the first bytes is over */
			break;
		}
		/* Nothing to learn from the first bytes (or a server-speaks-first protocol): decide on
		 * what is known. */
		tunnel_decide_and_go(c);
		break;
	case S_CONNECT:
	case S_RESOLVE:
		refuse(c, 504, "error", "connecting to %s:%u timed out", c->host[0] ? c->host : "the destination", c->port);
		break;
	case S_PXCONNECT:
		refuse(c, 504, "error", "the upstream proxy did not answer in time");
		break;
	case S_TLS:
		refuse(c, 504, "error", "the TLS handshake with %s did not complete in time", c->host[0] ? c->host : "the origin");
		break;
	case S_HELD:
		held_check(c);
		break;
	case S_TUNNEL:
		if (c->tunnel_guard) {
			tunnel_step(c); /* the guard looks at the first bytes again */
			break;
		}
		conn_finish(c, NULL);
		break;
	default:
		conn_finish(c, NULL);
		break;
	}
}

static struct px_conn *conn_new(struct px_sb *sb, int kind, int fd)
{
	struct px_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->p = sb->p;
	c->sb = sb;
	c->kind = kind;
	c->c.fd = fd;
	c->u.fd = -1;
	for (int i = 0; i < 2; i++)
		c->pipes[i][0] = c->pipes[i][1] = -1;
	sbx_buf_init(&c->cin, SBX_HTTP_MAX_HEAD + BODY_BUF_MAX);
	sbx_buf_init(&c->uout, SBX_HTTP_MAX_HEAD + BODY_BUF_MAX);
	sbx_buf_init(&c->din, SBX_HTTP_MAX_HEAD + BODY_BUF_MAX);
	sbx_buf_init(&c->cout, SBX_HTTP_MAX_HEAD + BODY_BUF_MAX);
	c->t0_ms = (int64_t)sbx_now_ms();
	c->t0_mono = sbx_monotonic_ms();
	c->next = sb->conns;
	sb->conns = c;
	sb->nconns++;
	sb->p->nconns++;
	sb->p->stats.conns_active++;
	sb->p->stats.conns_total++;
	return c;
}

/* ---- deciding ---- */

static int strictness(enum sbx_rule_kind k)
{
	return k == SBX_RULE_DENY ? 2 : k == SBX_RULE_REVIEW ? 1 : 0;
}

/* Servers read requests more loosely than rules match them: many upper-case the method, ignore
 * a trailing slash or route paths without case. Each such reading is decided too, and a deny or
 * review rule that one of them meets wins (a reading that nothing allows does not: that would
 * refuse case-sensitive paths an allow rule names). */
static void decide_loose_readings(const struct sbx_policy *pol, const struct sbx_target *t, struct sbx_decision *d)
{
	char method[SBX_HTTP_MAX_METHOD + 1], path[512];
	size_t n;

	sbx_strlcpy(method, t->method, sizeof(method));
	for (char *p = method; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 32);
	for (int v = 0; v < 3; v++) {
		struct sbx_target t2 = *t;
		struct sbx_decision d2;
		sbx_strlcpy(path, t->path, sizeof(path));
		n = strlen(path);
		if (v >= 1)
			while (n > 1 && path[n - 1] == '/')
				path[--n] = '\0';
		if (v == 2)
			for (char *p = path; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p + 32);
		t2.method = method;
		t2.path = path;
		sbx_policy_decide(pol, &t2, &d2);
		if (d2.rule && strictness(d2.kind) > strictness(d->kind))
			*d = d2;
	}
}

static void decide(struct px_conn *c, bool request_level)
{
	struct sbx_target t = {
		.sandbox = c->sb->name,
		.host = c->host[0] ? c->host : NULL,
		.port = c->port,
		.method = request_level ? c->method : NULL,
		.path = request_level ? c->url_path : NULL,
	};
	const struct sbx_policy *pol = c->p->d->policy;

	if (!c->host[0] && c->orig_family) {
		t.family = c->orig_family;
		memcpy(t.addr, c->orig_addr, 16);
	}
	if (request_level && t.path) {
		/* Rules match the path without its query. */
		char *q = strchr(c->url_path, '?');
		if (q)
			*q = '\0';
	}
	memset(&c->dec, 0, sizeof(c->dec));
	if (!pol) {
		c->dec.kind = SBX_RULE_DENY;
		snprintf(c->dec.reason, sizeof(c->dec.reason), "no network policy is loaded");
	} else {
		sbx_policy_decide(pol, &t, &c->dec);
		if (request_level && t.path && t.method)
			decide_loose_readings(pol, &t, &c->dec);
	}
	keep_rule(c);
}

/* ---- upstream ---- */

static const struct override *find_override(const struct sbx_proxy *p, const char *host, uint16_t port)
{
	for (size_t i = 0; i < p->noverrides; i++)
		if ((p->overrides[i].port == 0 || p->overrides[i].port == port) && strcmp(p->overrides[i].host, host) == 0)
			return &p->overrides[i];
	return NULL;
}

static void try_connect(struct px_conn *c);

static void on_resolved(void *ud, const struct sbx_resolved *res)
{
	struct px_conn *c = ud;

	c->resolve_handle = 0;
	if (res->gai_error || res->n == 0) {
		refuse(c, 502, "error", "cannot resolve %s: %s", c->via_upstream_proxy ? c->p->up_host : c->host,
		       gai_strerror(res->gai_error ? res->gai_error : EAI_NONAME));
		return;
	}
	c->addrs = *res;
	c->addr_next = 0;
	try_connect(c);
}

/* Which way the connection goes, decided before any request is rewritten for it: an override
 * or host.sbx.internal go direct; everything else through the upstream proxy when there is one. */
static void plan_route(struct px_conn *c)
{
	c->via_override = c->host[0] && find_override(c->p, c->host, c->port) != NULL;
	c->via_upstream_proxy = c->p->up_host[0] && !c->via_override && !c->host_internal;
}

/* Where to connect: an override, host.sbx.internal, the upstream proxy, the host name, or the
 * original address. */
static void start_upstream(struct px_conn *c)
{
	const struct override *ov = c->host[0] ? find_override(c->p, c->host, c->port) : NULL;
	struct sockaddr_storage ss;

	plan_route(c);
	c->addr_next = 0;
	c->state = S_RESOLVE;
	side_set(c, &c->c, 0);
	timer_set(c, CONNECT_TIMEOUT_MS);
	memset(&c->addrs, 0, sizeof(c->addrs));
	if (ov) {
		memcpy(&c->addrs.addrs[0], &ov->addr, ov->addrlen);
		c->addrs.lens[0] = ov->addrlen;
		uint16_t port = htons(ov->new_port ? ov->new_port : c->port);
		if (ov->addr.ss_family == AF_INET)
			((struct sockaddr_in *)&c->addrs.addrs[0])->sin_port = port;
		else
			((struct sockaddr_in6 *)&c->addrs.addrs[0])->sin6_port = port;
		c->addrs.n = 1;
		try_connect(c);
		return;
	}
	if (c->host_internal) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&c->addrs.addrs[0];
		sin->sin_family = AF_INET;
		sin->sin_port = htons(c->port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		c->addrs.lens[0] = sizeof(*sin);
		c->addrs.n = 1;
		try_connect(c);
		return;
	}
	if (c->via_upstream_proxy && !c->host[0] && !c->explicit_addr_rule) {
		/* The upstream proxy would connect from this host: the same reserved addresses are
		 * refused. */
		struct sockaddr_storage t;
		memset(&t, 0, sizeof(t));
		t.ss_family = (sa_family_t)c->orig_family;
		if (c->orig_family == AF_INET)
			memcpy(&((struct sockaddr_in *)&t)->sin_addr, c->orig_addr, 4);
		else
			memcpy(&((struct sockaddr_in6 *)&t)->sin6_addr, c->orig_addr, 16);
		if (addr_forbidden(&t)) {
			refuse(c, 403, "denied", "a loopback, link-local or otherwise reserved address, which sandboxes may "
						 "not reach (host services: host.sbx.internal:PORT with an explicit rule)");
			return;
		}
	}
	if (c->via_upstream_proxy) {
		c->resolve_handle = sbx_resolver_lookup(c->p->resolver, c->p->up_host, c->p->up_port, on_resolved, c);
		return;
	}
	if (c->host[0]) {
		c->resolve_handle = sbx_resolver_lookup(c->p->resolver, c->host, c->port, on_resolved, c);
		return;
	}
	memset(&ss, 0, sizeof(ss));
	if (c->orig_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&c->addrs.addrs[0];
		sin->sin_family = AF_INET;
		sin->sin_port = htons(c->port);
		memcpy(&sin->sin_addr, c->orig_addr, 4);
		c->addrs.lens[0] = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c->addrs.addrs[0];
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(c->port);
		memcpy(&sin6->sin6_addr, c->orig_addr, 16);
		c->addrs.lens[0] = sizeof(*sin6);
	}
	c->addrs.n = 1;
	try_connect(c);
}

static void begin_relay(struct px_conn *c);
static void send_pxconnect(struct px_conn *c);
static void upstream_ready(struct px_conn *c);
static void ctls_step(struct px_conn *c);

static void try_connect(struct px_conn *c)
{
	while (c->addr_next < c->addrs.n) {
		const struct sockaddr_storage *ss = &c->addrs.addrs[c->addr_next];
		socklen_t len = c->addrs.lens[c->addr_next];
		int fd;

		c->addr_next++;
		if (!c->via_override && !c->host_internal && !c->via_upstream_proxy && !c->explicit_addr_rule &&
		    addr_forbidden(ss)) {
			if (c->addr_next < c->addrs.n)
				continue;
			refuse(c, 403, "denied",
			       "%s resolves to a loopback, link-local or otherwise reserved address, which sandboxes "
			       "may not reach (host services: host.sbx.internal:PORT with an explicit rule)",
			       c->host[0] ? c->host : "the destination");
			return;
		}
		fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, (const struct sockaddr *)ss, len) < 0 && errno != EINPROGRESS) {
			close(fd);
			continue;
		}
		c->u.fd = fd;
		c->u.hup = false;
		c->state = S_CONNECT;
		side_set(c, &c->u, SBX_EV_WRITE);
		return;
	}
	refuse(c, 502, "error", "cannot connect to %s:%u", c->via_upstream_proxy ? c->p->up_host : c->host[0] ? c->host : "the destination",
	       c->via_upstream_proxy ? c->p->up_port : c->port);
}

static void connected(struct px_conn *c)
{
	int e = 0;
	socklen_t el = sizeof(e);
	int one = 1;

	if (getsockopt(c->u.fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
		e = errno;
	if (e) {
		side_close(c, &c->u, false);
		try_connect(c);
		return;
	}
	setsockopt(c->u.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!c->via_override && !c->host_internal && !c->via_upstream_proxy && !c->explicit_addr_rule) {
		/* One of the host's own addresses (docker0, the LAN address): the kernel then uses it
		 * as the source too. Services of the host are host.sbx.internal's, with a rule. */
		struct sockaddr_storage a, b;
		socklen_t al = sizeof(a), bl = sizeof(b);
		if (getsockname(c->u.fd, (struct sockaddr *)&a, &al) == 0 && getpeername(c->u.fd, (struct sockaddr *)&b, &bl) == 0 &&
		    al == bl && a.ss_family == b.ss_family &&
		    (a.ss_family == AF_INET ? memcmp(&((struct sockaddr_in *)&a)->sin_addr, &((struct sockaddr_in *)&b)->sin_addr, 4)
					    : memcmp(&((struct sockaddr_in6 *)&a)->sin6_addr, &((struct sockaddr_in6 *)&b)->sin6_addr, 16)) == 0) {
			refuse(c, 403, "denied", "%s is one of this host's own addresses; host services are reachable as "
						 "host.sbx.internal:PORT with an explicit rule", c->host[0] ? c->host : "the destination");
			return;
		}
	}
	if (c->via_upstream_proxy && (c->mode == M_TUNNEL || c->origin_tls)) {
		send_pxconnect(c);
		return;
	}
	upstream_ready(c);
}

static void tls_step(struct px_conn *c)
{
	int r = SSL_do_handshake(c->u.ssl);
	char why[256];

	if (r == 1) {
		c->u.ssl_want_read = c->u.ssl_want_write = false;
		begin_relay(c);
		return;
	}
	switch (SSL_get_error(c->u.ssl, r)) {
	case SSL_ERROR_WANT_READ:
		side_set(c, &c->u, SBX_EV_READ);
		return;
	case SSL_ERROR_WANT_WRITE:
		side_set(c, &c->u, SBX_EV_WRITE);
		return;
	default:
		sbx_tls_client_error(c->u.ssl, why, sizeof(why));
		refuse(c, 502, "error", "%s:%u: %s", c->host[0] ? c->host : "the origin", c->port, why);
		return;
	}
}

/* The byte stream to the origin stands (directly or through the upstream proxy). */
static void upstream_ready(struct px_conn *c)
{
	char a[INET6_ADDRSTRLEN];
	const char *name = c->host;

	if (!c->origin_tls) {
		begin_relay(c);
		return;
	}
	if (!name[0]) {
		addr_text(c->orig_family, c->orig_addr, a, sizeof(a));
		name = a;
	}
	if (!(c->u.ssl = sbx_tls_client_ssl(c->p->tls, c->u.fd, name))) {
		refuse(c, 502, "error", "cannot set up TLS to %s", name);
		return;
	}
	c->state = S_TLS;
	timer_set(c, CONNECT_TIMEOUT_MS);
	tls_step(c);
}

static void send_pxconnect(struct px_conn *c)
{
	char auth[300];

	if (c->host[0])
		snprintf(auth, sizeof(auth), "%s%s%s:%u", strchr(c->host, ':') ? "[" : "", c->host,
			 strchr(c->host, ':') ? "]" : "", c->port);
	else if (c->orig_family == AF_INET6) {
		char a[INET6_ADDRSTRLEN];
		addr_text(AF_INET6, c->orig_addr, a, sizeof(a));
		snprintf(auth, sizeof(auth), "[%s]:%u", a, c->port);
	} else {
		char a[INET_ADDRSTRLEN];
		addr_text(AF_INET, c->orig_addr, a, sizeof(a));
		snprintf(auth, sizeof(auth), "%s:%u", a, c->port);
	}
	/* Bytes the client already sent (after its CONNECT head) wait until the tunnel stands. */
	sbx_buf_reset(&c->din);
	{
		sbx_buf req;
		sbx_buf_init(&req, 1024);
		sbx_buf_printf(&req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", auth, auth);
		if (sbx_write_all(c->u.fd, req.data, req.len) < 0) {
			sbx_buf_free(&req);
			refuse(c, 502, "error", "the upstream proxy closed the connection");
			return;
		}
		sbx_buf_free(&req);
	}
	c->state = S_PXCONNECT;
	timer_set(c, PXCONNECT_TIMEOUT_MS);
	side_set(c, &c->u, SBX_EV_READ);
}

static void pxconnect_read(struct px_conn *c)
{
	char *p = sbx_buf_reserve(&c->din, 4096);
	struct sbx_http_msg *m;
	struct sbx_http_error e;
	ssize_t n;
	int rc;

	if (!p) {
		refuse(c, 502, "error", "the upstream proxy's answer is too large");
		return;
	}
	n = recv(c->u.fd, p, 4096, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		refuse(c, 502, "error", "the upstream proxy closed the connection");
		return;
	}
	sbx_buf_commit(&c->din, (size_t)n);
	if (!(m = malloc(sizeof(*m)))) {
		refuse(c, 502, "error", "out of memory");
		return;
	}
	rc = sbx_http_parse_response(c->din.data, c->din.len, "CONNECT", m, &e);
	if (rc == SBX_HTTP_INCOMPLETE) {
		free(m);
		return;
	}
	if (rc == SBX_HTTP_ERROR || m->status / 100 != 2) {
		int st = rc == SBX_HTTP_ERROR ? 0 : m->status;
		free(m);
		refuse(c, 502, "error", "the upstream proxy refused the tunnel (status %d)", st);
		return;
	}
	/* Anything after the head belongs to the tunnel: the server spoke first. */
	sbx_buf_consume(&c->din, m->head_len);
	free(m);
	if (c->origin_tls && c->din.len) {
		refuse(c, 502, "error", "the upstream proxy sent data before the TLS handshake");
		return;
	}
	upstream_ready(c);
}

/* ---- HTTP mode ---- */

static bool hop_by_hop(const struct sbx_http_msg *m, struct sbx_http_str name, bool keep_upgrade)
{
	static const char *const hop[] = {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
					  "proxy-authenticate", "te", "upgrade"};
	const struct sbx_http_str *conn = sbx_http_header_get(m, "connection");

	for (size_t i = 0; i < SBX_ARRAY_LEN(hop); i++)
		if (sbx_http_str_ieq(name, hop[i]))
			return !(keep_upgrade && i == 6);
	if (conn) {
		char nm[128];
		if (name.len >= sizeof(nm))
			return false;
		memcpy(nm, name.p, name.len);
		nm[name.len] = '\0';
		for (size_t i = 0; i < m->nheaders; i++) {
			const struct sbx_http_header *h = &m->headers[i];
			if (sbx_http_str_ieq(h->name, "connection") && sbx_http_list_has_token(h->value, nm))
				return true;
		}
	}
	return false;
}

struct skip_ctx {
	const struct sbx_http_msg *m;
	bool keep_upgrade;
	bool drop_expect; /* the proxy answered the client's 100-continue itself */
};

static bool skip_header(void *ud, struct sbx_http_str name)
{
	struct skip_ctx *sk = ud;
	return sbx_http_str_ieq(name, "host") || hop_by_hop(sk->m, name, sk->keep_upgrade) ||
	       (sk->drop_expect && sbx_http_str_ieq(name, "expect"));
}

/* The request as it goes upstream: origin-form (absolute-form to an upstream proxy), Host from
 * the authority the policy decided on, hop-by-hop headers removed, one request per connection. */
static int build_upstream_request(struct px_conn *c, const struct sbx_http_msg *m, const char *origin_path)
{
	sbx_buf *o = &c->uout;

	if (c->via_upstream_proxy && !c->origin_tls)
		sbx_buf_printf(o, "%.*s http://%s%s HTTP/1.%d\r\n", (int)m->method.len, m->method.p, c->authority,
			       origin_path, m->version == 10 ? 0 : 1);
	else
		sbx_buf_printf(o, "%.*s %s HTTP/1.%d\r\n", (int)m->method.len, m->method.p, origin_path,
			       m->version == 10 ? 0 : 1);
	sbx_buf_printf(o, "Host: %s\r\n", c->authority);
	{
		struct skip_ctx sk = {.m = m, .keep_upgrade = c->req_upgrade, .drop_expect = c->sent_continue};
		/* Credentials only inside TLS we terminated and re-originate with verification. */
		const struct sbx_cred *cred = c->intercept && c->have_cred ? &c->cred : NULL;
		if (cred && cred->kind == SBX_INJECT_SIGV4) {
			sbx_err err = SBX_ERR_INIT;
			const char *body = c->cin.data + m->head_len;
			size_t blen = m->body == SBX_HTTP_BODY_LENGTH ? (size_t)m->content_length : 0;
			if (sbx_cred_sigv4_headers(cred, m, c->authority, origin_path, body, blen, skip_header, &sk, o,
						   &err) < 0) {
				sbx_strlcpy(c->sign_error, err.msg, sizeof(c->sign_error));
				return -2;
			}
		} else if (sbx_cred_apply_headers(cred, c->host, m, skip_header, &sk, o) < 0) {
			return -1;
		}
	}
	if (c->req_upgrade)
		sbx_buf_append_str(o, "Connection: upgrade\r\n\r\n");
	else
		/* An intercepted connection talks to one origin: its upstream connection is kept for
		 * the next request. Elsewhere, one request per upstream connection. */
		sbx_buf_append_str(o, c->intercept ? "\r\n" : "Connection: close\r\n\r\n");
	return o->len > 0 && sbx_buf_room(o) > 0 ? 0 : -1;
}

static void body_init(struct body *b, int kind, uint64_t length)
{
	b->kind = kind;
	b->remaining = length;
	b->done = kind == SBX_HTTP_BODY_NONE || (kind == SBX_HTTP_BODY_LENGTH && length == 0);
	if (kind == SBX_HTTP_BODY_CHUNKED)
		sbx_http_chunked_init(&b->chunked, 0);
}

/* Moves the body's bytes from `from` to `to` as far as its framing and to's room allow, and not
 * one byte past its end (what follows would be another message). EOF-framed and upgraded
 * streams move whole. Returns 0, or -1 with e filled on bad chunking. */
static int body_move(struct body *b, sbx_buf *from, sbx_buf *to, struct sbx_http_error *e)
{
	while (!b->done && from->len > 0 && sbx_buf_room(to) > 0) {
		size_t n = from->len, room = sbx_buf_room(to), used = n;
		if (n > room)
			n = used = room;
		if (b->kind == SBX_HTTP_BODY_LENGTH) {
			used = n > b->remaining ? (size_t)b->remaining : n;
			b->remaining -= used;
			b->done = b->remaining == 0;
		} else if (b->kind == SBX_HTTP_BODY_CHUNKED) {
			int rc = sbx_http_chunked_feed(&b->chunked, from->data, n, &used, NULL, NULL, e);
			if (rc < 0)
				return -1;
			b->done = rc == 1;
		} else if (b->kind == SBX_HTTP_BODY_NONE) {
			b->done = true;
			break;
		}
		sbx_buf_append(to, from->data, used);
		sbx_buf_consume(from, used);
	}
	return 0;
}

/* Moves request body bytes from cin to uout per the request's framing. */
static int pump_request_body(struct px_conn *c)
{
	struct sbx_http_error e;

	if (body_move(&c->req, &c->cin, &c->uout, &e) < 0) {
		refuse(c, e.status ? e.status : 400, "error", "bad request body: %s", e.reason);
		return -1;
	}
	c->up_done = c->req.done;
	if (c->up_done && !c->keep_client)
		sbx_buf_reset(&c->cin); /* a pipelined next request is not served (Connection: close) */
	return 0;
}

/* Parses the response head in din once complete, rewrites it into cout. Returns 0 or -1. */
static int response_head(struct px_conn *c)
{
	struct sbx_http_msg *m = malloc(sizeof(*m));
	struct sbx_http_error e;
	int rc;

	if (!m) {
		refuse(c, 502, "error", "out of memory");
		return -1;
	}
	for (;;) {
		rc = sbx_http_parse_response(c->din.data, c->din.len, c->method, m, &e);
		if (rc == SBX_HTTP_INCOMPLETE) {
			free(m);
			if (sbx_buf_room(&c->din) == 0) {
				refuse(c, 502, "error", "the upstream response head is too large");
				return -1;
			}
			return 0;
		}
		if (rc == SBX_HTTP_ERROR) {
			free(m);
			refuse(c, 502, "error", "the upstream response is malformed: %s", e.reason);
			return -1;
		}
		if (m->status >= 100 && m->status < 200 && m->status != 101) {
			/* Interim responses (100 Continue) go through as they are. */
			sbx_buf_append(&c->cout, c->din.data, m->head_len);
			sbx_buf_consume(&c->din, m->head_len);
			continue;
		}
		break;
	}
	c->status = m->status;
	c->resp_head_done = true;
	if (m->status == 101) {
		if (!c->req_upgrade) {
			free(m);
			refuse(c, 502, "error", "the upstream switched protocols without being asked to");
			return -1;
		}
		sbx_buf_append(&c->cout, c->din.data, m->head_len);
		sbx_buf_consume(&c->din, m->head_len);
		free(m);
		body_init(&c->resp, SBX_HTTP_BODY_TUNNEL, 0);
		return 0;
	}
	sbx_buf_printf(&c->cout, "HTTP/1.%d %d %.*s\r\n", c->client_version10 ? 0 : 1, m->status, (int)m->reason.len,
		       m->reason.p);
	for (size_t i = 0; i < m->nheaders; i++) {
		const struct sbx_http_header *h = &m->headers[i];
		if (hop_by_hop(m, h->name, false))
			continue;
		sbx_buf_printf(&c->cout, "%.*s: %.*s\r\n", (int)h->name.len, h->name.p, (int)h->value.len, h->value.p);
	}
	body_init(&c->resp, m->body, m->content_length);
	c->down_done = c->resp.done;
	c->upstream_reusable = c->intercept && m->keep_alive && m->body != SBX_HTTP_BODY_EOF;
	/* An intercepted client keeps its TLS session for the next request when the response's
	 * end is known without closing. */
	if (!(c->intercept && c->keep_client && m->body != SBX_HTTP_BODY_EOF))
		c->keep_client = false;
	sbx_buf_append_str(&c->cout, c->keep_client ? "\r\n" : "Connection: close\r\n\r\n");
	if (c->have_cred)
		sbx_cred_scrub(&c->cred, c->cout.data, c->cout.len);
	sbx_buf_consume(&c->din, m->head_len);
	free(m);
	return 0;
}

static int pump_response_body(struct px_conn *c)
{
	struct sbx_http_error e;

	size_t before = c->cout.len;

	if (body_move(&c->resp, &c->din, &c->cout, &e) < 0) {
		log_info("sandbox %s: malformed chunked response from %s: %s", c->sb->name, c->host, e.reason);
		return -1;
	}
	if (c->have_cred && c->cout.len > before) {
		/* Look again at what could join a secret split across reads (what is held back). */
		size_t w = sbx_cred_scrub_window(&c->cred), from = before > w ? before - w : 0;
		sbx_cred_scrub(&c->cred, c->cout.data + from, c->cout.len - from);
	}
	c->down_done = c->resp.done;
	if (c->down_done)
		sbx_buf_reset(&c->din);
	return 0;
}

/* Writes b out on s (in clear or through its TLS session) as far as it goes now. false = the
 * connection is broken. */
static bool write_buf_keep(struct px_conn *c, struct side *s, sbx_buf *b, size_t keep, uint64_t *count)
{
	if (s->ssl) {
		while (b->len > keep) {
			size_t len = b->len - keep;
			int n = SSL_write(s->ssl, b->data, (int)(len > (1u << 30) ? (1u << 30) : len));
			if (n > 0) {
				if (count)
					*count += (uint64_t)n;
				sbx_buf_consume(b, (size_t)n);
				continue;
			}
			switch (SSL_get_error(s->ssl, n)) {
			case SSL_ERROR_WANT_READ: s->ssl_want_read = true; return true;
			case SSL_ERROR_WANT_WRITE: s->ssl_want_write = true; return true;
			default: ERR_clear_error(); return false;
			}
		}
		return true;
	}
	while (b->len > keep) {
		ssize_t n = send(s->fd, b->data, b->len - keep, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			return false;
		}
		if (count)
			*count += (uint64_t)n;
		sbx_buf_consume(b, (size_t)n);
	}
	(void)c;
	return true;
}

static bool write_buf(struct px_conn *c, struct side *s, sbx_buf *b, uint64_t *count)
{
	return write_buf_keep(c, s, b, 0, count);
}

/* Reads what is available into b (at most its room). 1 = got bytes, 0 = nothing now, -1 = EOF,
 * -2 = error. */
static int read_buf(struct side *s, sbx_buf *b, size_t want)
{
	size_t room = sbx_buf_room(b);
	char *p;
	ssize_t n;

	if (room == 0)
		return 0;
	if (want > room)
		want = room;
	if (!(p = sbx_buf_reserve(b, want)))
		return 0;
	if (s->ssl) {
		int k = SSL_read(s->ssl, p, (int)want);
		if (k > 0) {
			sbx_buf_commit(b, (size_t)k);
			return 1;
		}
		switch (SSL_get_error(s->ssl, k)) {
		case SSL_ERROR_WANT_READ: s->ssl_want_read = true; return 0;
		case SSL_ERROR_WANT_WRITE: s->ssl_want_write = true; return 0;
		case SSL_ERROR_ZERO_RETURN: return -1;
		default: ERR_clear_error(); return -2;
		}
	}
	n = recv(s->fd, p, want, 0);
	if (n > 0) {
		sbx_buf_commit(b, (size_t)n);
		return 1;
	}
	if (n == 0)
		return -1;
	return errno == EAGAIN || errno == EINTR ? 0 : -2;
}

/* What a side's TLS session waits for, besides what we want from it. */
static unsigned ssl_events(const struct side *s)
{
	return (s->ssl_want_read ? SBX_EV_READ : 0) | (s->ssl_want_write ? SBX_EV_WRITE : 0);
}

static void http_step(struct px_conn *c)
{
	int r;

	c->c.ssl_want_read = c->c.ssl_want_write = c->u.ssl_want_read = c->u.ssl_want_write = false;

	/* client -> upstream */
	if (!c->up_done) {
		while (!c->up_done && sbx_buf_room(&c->uout) >= 4096) {
			r = read_buf(&c->c, &c->cin, 65536);
			if (r == 1) {
				if (pump_request_body(c) < 0)
					return;
				continue;
			}
			if (r < 0) { /* the client went away in the middle of its request */
				conn_finish(c, "error");
				return;
			}
			break;
		}
	}
	if (!write_buf(c, &c->u, &c->uout, &c->bytes_up)) {
		refuse(c, 502, "error", "the upstream closed the connection while receiving the request");
		return;
	}
	/* upstream -> client */
	while (!c->down_done && sbx_buf_room(&c->cout) >= 4096) {
		r = read_buf(&c->u, &c->din, 65536);
		if (r == 0)
			break;
		if (r < 0) {
			if (!c->resp_head_done) {
				refuse(c, 502, "error", "the upstream closed the connection without answering");
				return;
			}
			if (c->resp.kind == SBX_HTTP_BODY_EOF || c->resp.kind == SBX_HTTP_BODY_TUNNEL)
				c->down_done = true;
			else { /* truncated: end the client's connection too, it will see the short body */
				write_buf(c, &c->c, &c->cout, &c->bytes_down);
				conn_finish(c, "allowed");
				return;
			}
			break;
		}
		if (!c->resp_head_done && response_head(c) < 0)
			return;
		if (c->resp_head_done && c->resp.kind == SBX_HTTP_BODY_TUNNEL) {
			/* 101: flush and relay raw from here */
			sbx_buf_append(&c->cout, c->din.data, c->din.len);
			sbx_buf_reset(&c->din);
			begin_relay(c);
			return;
		}
		if (c->resp_head_done && pump_response_body(c) < 0) {
			conn_finish(c, "allowed");
			return;
		}
	}
	/* While a secret could still be completed by the next read, its possible beginning stays. */
	if (!write_buf_keep(c, &c->c, &c->cout,
			    c->have_cred && !c->down_done ? sbx_cred_partial_tail(&c->cred, c->cout.data, c->cout.len) : 0,
			    &c->bytes_down)) {
		conn_finish(c, "allowed");
		return;
	}
	if (c->down_done && c->cout.len == 0) {
		if (c->keep_client && c->up_done) {
			next_request(c);
			return;
		}
		conn_finish(c, "allowed");
		return;
	}
	side_set(c, &c->c, (!c->up_done && sbx_buf_room(&c->uout) >= 4096 ? SBX_EV_READ : 0) |
				   (c->cout.len ? SBX_EV_WRITE : 0) | ssl_events(&c->c));
	side_set(c, &c->u, (!c->down_done && sbx_buf_room(&c->cout) >= 4096 ? SBX_EV_READ : 0) |
				   (c->uout.len ? SBX_EV_WRITE : 0) | ssl_events(&c->u));
}

/* ---- tunnels ---- */

static void begin_relay(struct px_conn *c)
{
	timer_clear(c);
	if (c->mode == M_HTTP && c->state != S_HTTP && !c->resp_head_done) {
		/* Connected for a plain HTTP request: uout holds the rewritten head (and body start). */
		c->state = S_HTTP;
		sbx_strlcpy(c->decision, "allowed", sizeof(c->decision));
		http_step(c);
		return;
	}
	/* A tunnel: CONNECT (answered now), transparent, or an upgraded HTTP connection. */
	if (c->kind == SBX_PXFD_EXPLICIT && c->mode == M_TUNNEL && !c->connect_peek)
		sbx_buf_append_str(&c->cout, "HTTP/1.1 200 Connection established\r\n\r\n");
	/* Bytes the upstream proxy's answer carried after its head go to the client first. */
	if (c->din.len) {
		sbx_buf_append(&c->cout, c->din.data, c->din.len);
		sbx_buf_reset(&c->din);
	}
	if (c->mode == M_HTTP && c->cin.len) { /* upgraded: client bytes already read */
		sbx_buf_append(&c->uout, c->cin.data, c->cin.len);
		sbx_buf_reset(&c->cin);
	}
	for (int i = 0; i < 2; i++)
		if (pipe2(c->pipes[i], O_NONBLOCK | O_CLOEXEC) < 0) {
			refuse(c, 503, "error", "out of file descriptors");
			return;
		}
	sbx_strlcpy(c->decision, "allowed", sizeof(c->decision));
	c->state = S_TUNNEL;
	conn_step(c);
}

/* One direction of a tunnel: src -> pipe -> dst, as far as it goes without blocking. Returns
 * the events it waits for on src (SBX_EV_READ) and dst (SBX_EV_WRITE), or -1 on error. */
static int pump(struct px_conn *c, int dir, struct side *src, struct side *dst, uint64_t *count, unsigned *src_ev,
		unsigned *dst_ev)
{
	*src_ev = *dst_ev = 0;
	for (;;) {
		if (c->pending[dir] > 0) {
			ssize_t n = splice(c->pipes[dir][0], NULL, dst->fd, NULL, c->pending[dir],
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				c->pending[dir] -= (size_t)n;
				*count += (uint64_t)n;
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
				*dst_ev = SBX_EV_WRITE;
				return 0;
			}
			return -1;
		}
		if (c->eof[dir]) {
			if (!c->shut[dir]) {
				shutdown(dst->fd, SHUT_WR);
				c->shut[dir] = true;
			}
			return 0;
		}
		ssize_t n = splice(src->fd, NULL, c->pipes[dir][1], NULL, PIPE_CHUNK, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			c->pending[dir] += (size_t)n;
			continue;
		}
		if (n == 0) {
			c->eof[dir] = true;
			continue;
		}
		if (errno == EAGAIN || errno == EINTR) {
			*src_ev = SBX_EV_READ;
			return 0;
		}
		return -1;
	}
}

/* Would a server read these first bytes as TLS or as an HTTP request? Leading empty lines and
 * lower-case methods count: servers skip the former and upper-case the latter. */
static bool looks_tls_or_http(const uint8_t *b, size_t n, bool *undecided)
{
	size_t i = 0, letters = 0;

	*undecided = false;
	if (n && b[0] == 0x16)
		return true;
	while (i < n && (b[i] == '\r' || b[i] == '\n'))
		i++;
	while (i < n && letters < 20 && ((b[i] >= 'A' && b[i] <= 'Z') || (b[i] >= 'a' && b[i] <= 'z'))) {
		i++;
		letters++;
	}
	if (i == n && letters < 20) {
		*undecided = true; /* nothing but blank lines and letters so far */
		return false;
	}
	return letters > 0 && b[i] == ' ';
}

/* The first client bytes of an opaque tunnel that the review classifiers would have read (they
 * were not TLS or HTTP when the proxy looked, or came only after the peek window closed): they
 * must not be TLS or HTTP now. A client that waited to hide its request is reset. */
static bool tunnel_guard_ok(struct px_conn *c)
{
	uint8_t b[32];
	ssize_t n = recv(c->c.fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
	bool undecided;

	if (n <= 0)
		return true; /* nothing yet (or EOF): pump finds out */
	if (looks_tls_or_http(b, (size_t)n, &undecided)) {
		refuse(c, 403, "denied",
		       "TLS or HTTP sent after the proxy decided on an opaque tunnel to %s: requests there are "
		       "read for review, so they must come at once",
		       c->host[0] ? c->host : "this destination");
		return false;
	}
	if (undecided && n < (ssize_t)sizeof(b) && sbx_monotonic_ms() < c->peek_deadline + HEAD_TIMEOUT_MS) {
		side_set(c, &c->c, 0);
		timer_set(c, 20); /* look again when more has come */
		return false;
	}
	c->tunnel_guard = false;
	return true;
}

static void tunnel_step(struct px_conn *c)
{
	unsigned cs0, cd0, cs1, cd1;

	/* User-space prefixes first (CONNECT's answer, bytes read before the tunnel stood). */
	if (c->cout.len || c->uout.len) {
		if (!write_buf(c, &c->c, &c->cout, &c->bytes_down) || !write_buf(c, &c->u, &c->uout, &c->bytes_up)) {
			conn_finish(c, "allowed");
			return;
		}
		if (c->cout.len || c->uout.len) {
			side_set(c, &c->c, c->cout.len ? SBX_EV_WRITE : 0);
			side_set(c, &c->u, c->uout.len ? SBX_EV_WRITE : 0);
			return;
		}
	}
	if (c->tunnel_guard && !tunnel_guard_ok(c))
		return;
	if (pump(c, 0, &c->c, &c->u, &c->bytes_up, &cs0, &cd0) < 0 ||
	    pump(c, 1, &c->u, &c->c, &c->bytes_down, &cs1, &cd1) < 0) {
		/* A reset or error on either side ends both, as it would end a direct connection. */
		side_close(c, &c->c, true);
		side_close(c, &c->u, true);
		conn_finish(c, "allowed");
		return;
	}
	if (c->shut[0] && c->shut[1]) {
		conn_finish(c, "allowed");
		return;
	}
	side_set(c, &c->c, cs0 | cd1);
	side_set(c, &c->u, cs1 | cd0);
}

/* ---- the first request ---- */

static void set_authority(struct px_conn *c)
{
	bool v6 = strchr(c->host, ':') != NULL;
	bool dflt = c->port == (c->origin_tls ? 443 : 80);

	if (dflt)
		snprintf(c->authority, sizeof(c->authority), "%s%s%s", v6 ? "[" : "", c->host, v6 ? "]" : "");
	else
		snprintf(c->authority, sizeof(c->authority), "%s%s%s:%u", v6 ? "[" : "", c->host, v6 ? "]" : "", c->port);
}

static bool is_internal(const char *host)
{
	return strcmp(host, "host.sbx.internal") == 0;
}

/* A host name in an HTTP request that is an address literal decides as an address. */
static void host_or_addr(struct px_conn *c, const char *host, bool is_ipv6)
{
	uint8_t a[16];

	if (is_ipv6 && inet_pton(AF_INET6, host, a) == 1) {
		c->orig_family = AF_INET6;
		memcpy(c->orig_addr, a, 16);
		c->host[0] = '\0';
		return;
	}
	if (!is_ipv6 && inet_pton(AF_INET, host, a) == 1) {
		c->orig_family = AF_INET;
		memset(c->orig_addr, 0, 16);
		memcpy(c->orig_addr, a, 4);
		c->host[0] = '\0';
		return;
	}
	sbx_strlcpy(c->host, host, sizeof(c->host));
	c->host_internal = is_internal(c->host);
}

/* The HTTP request (forward absolute-URI, or transparent origin-form) is decided and prepared. */
/* Would a server read this path differently from the rules (dot segments, empty segments,
 * encoded separators or dots)? Only the part before the query counts. */
static int hexval(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

static bool path_ambiguous(const char *p)
{
	size_t n = strcspn(p, "?");

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '/' && i + 1 < n && p[i + 1] == '/')
			return true;
		if (p[i] == '/' && i + 1 < n && p[i + 1] == '.' &&
		    (i + 2 == n || p[i + 2] == '/' || (p[i + 2] == '.' && (i + 3 == n || p[i + 3] == '/'))))
			return true;
		if (p[i] == '%' && i + 2 < n &&
		    (strncasecmp(p + i, "%2e", 3) == 0 || strncasecmp(p + i, "%2f", 3) == 0 || strncasecmp(p + i, "%5c", 3) == 0))
			return true;
		if (p[i] == '\\' || p[i] == ';')
			return true; /* ";params" some servers strip */
		if (p[i] == '%' && i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
			/* an unreserved character percent-encoded: servers decode it, rules do not */
			int v = hexval(p[i + 1]) * 16 + hexval(p[i + 2]);
			if ((v >= 'A' && v <= 'Z') || (v >= 'a' && v <= 'z') || (v >= '0' && v <= '9') || v == '-' ||
			    v == '.' || v == '_' || v == '~')
				return true;
		}
	}
	return false;
}

/* A kept upstream connection is usable if the origin has said nothing since (no close_notify,
 * no FIN): anything readable while idle means it is going away. */
static bool upstream_idle_ok(struct px_conn *c)
{
	char b;
	ssize_t n = recv(c->u.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !c->u.hup && SSL_pending(c->u.ssl) == 0;
}

static void http_step(struct px_conn *c);

/* ---- review ---- */

struct body_sink {
	uint8_t *buf;
	size_t len, cap;
};

static void body_sink_cb(void *ud, const char *data, size_t len)
{
	struct body_sink *bs = ud;
	size_t take = len < bs->cap - bs->len ? len : bs->cap - bs->len;

	memcpy(bs->buf + bs->len, data, take);
	bs->len += take;
}

/* The first bytes of the request's body, de-chunked, from what the client has sent so far:
 * *complete when that is the whole body. Returns -1 on a framing error (refused by the caller)
 * or no memory. */
static int body_prefix(const struct px_conn *c, const struct sbx_http_msg *m, struct body_sink *bs, bool *complete)
{
	const char *raw = c->cin.data + m->head_len;
	size_t avail = c->cin.len - m->head_len;

	bs->len = 0;
	*complete = true;
	if (m->body == SBX_HTTP_BODY_LENGTH) {
		size_t want = m->content_length < bs->cap ? (size_t)m->content_length : bs->cap;
		bs->len = avail < want ? avail : want;
		memcpy(bs->buf, raw, bs->len);
		*complete = avail >= m->content_length;
	} else if (m->body == SBX_HTTP_BODY_CHUNKED) {
		struct sbx_http_chunked ch;
		struct sbx_http_error e;
		size_t used = 0;
		int r;
		sbx_http_chunked_init(&ch, 0);
		r = sbx_http_chunked_feed(&ch, raw, avail, &used, body_sink_cb, bs, &e);
		if (r < 0)
			return -1;
		*complete = r == 1;
	}
	return 0;
}

/* The client waits for "100 Continue" before it sends the body we need to read first. */
static void answer_continue(struct px_conn *c, const struct sbx_http_msg *m)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	if (!m->expect_continue || c->sent_continue || c->cin.len > m->head_len)
		return;
	c->sent_continue = true;
	sbx_buf_append(&c->cout, cont, sizeof(cont) - 1);
	write_buf(c, &c->c, &c->cout, NULL);
}

static void review_release(void *conn, bool approved, const char *decision, const char *reason);

/* Does this request wait for a person? A review rule matched it (c->dec), or a built-in
 * classifier calls it destructive, and no "approve --always" exemption covers its exact shape.
 * Reads the body first where a classifier needs it, or where the request will be held (the
 * reviewer sees it; the cap is the classifier's). Returns 0 to go on, 1 when the connection
 * waits (for more body, or in the queue) or was refused. */
static int review_step(struct px_conn *c, struct sbx_http_msg *m, const char *origin)
{
	struct sbx_daemon *d = c->p->d;
	unsigned mask = sbx_classifier_cfg_mask(d->classifiers);
	bool by_rule = c->dec.kind == SBX_RULE_REVIEW;
	struct sbx_classify_input in = {.host = c->host, .method = c->method, .target = origin, .msg = m};
	struct sbx_classify_result res = {.verdict = SBX_CLASSIFY_PASS};
	struct body_sink bs = {.cap = SBX_CLASSIFY_BODY_MAX};
	bool complete = true, at_cap, hold;
	size_t raw = c->cin.len - m->head_len;
	uint32_t needed = 1;
	uint64_t timeout_ms = 0;
	char rule[300], why[200], id[SBX_REVIEW_ID_SIZE], reason[200];
	const char *action;

	if (!by_rule && !mask)
		return 0;
	if (!by_rule && !sbx_classify_wants_body(&in, mask) && m->body != SBX_HTTP_BODY_NONE) {
		/* a first look on the head alone: most requests are done here */
		in.body_complete = false;
		sbx_classify(&in, mask, &res);
		if (res.verdict == SBX_CLASSIFY_PASS)
			return 0;
	}
	if (m->body != SBX_HTTP_BODY_NONE && !(bs.buf = malloc(bs.cap))) {
		refuse(c, 503, "error", "out of memory");
		return 1;
	}
	if (body_prefix(c, m, &bs, &complete) < 0) {
		free(bs.buf);
		refuse(c, 400, "error", "malformed request body framing");
		return 1;
	}
	/* Raw bytes count too: a body of tiny chunks must not make us buffer more than the cap. */
	at_cap = !complete && (bs.len >= SBX_CLASSIFY_BODY_MAX || raw >= BODY_BUF_MAX || sbx_buf_room(&c->cin) == 0);
	in.body = bs.buf;
	in.body_len = bs.len;
	in.body_complete = complete;
	res.verdict = SBX_CLASSIFY_PASS;
	if (mask && !complete && !at_cap && c->classify_raw && raw < c->classify_raw + 16384) {
		/* Each classification reads the body from its start: a body trickling in byte by
		 * byte must not make it run per byte. */
		free(bs.buf);
		c->wait_body = true;
		if (!c->timer)
			timer_set(c, HEAD_TIMEOUT_MS);
		return 1;
	}
	if (mask)
		sbx_classify(&in, mask, &res);
	c->classify_raw = res.verdict == SBX_CLASSIFY_MORE ? (raw ? raw : 1) : 0;
	if (res.verdict == SBX_CLASSIFY_MORE && at_cap) {
		/* Framing overhead filled the buffer before the classifier's own cap: hold, in the
		 * name of the classifier that wanted more. */
		struct sbx_classify_result one;
		res.verdict = SBX_CLASSIFY_HOLD;
		for (int i = SBX_CLS_COUNT - 1; i >= 0; i--) {
			if (!(mask & (1u << i)))
				continue;
			sbx_classify(&in, 1u << i, &one);
			if (one.verdict == SBX_CLASSIFY_MORE)
				res.which = (enum sbx_classifier)i;
		}
		snprintf(res.action, sizeof(res.action), "unclassified %s", c->method);
		snprintf(res.reason, sizeof(res.reason), "the body is too large to classify (over %u KiB)",
			 SBX_CLASSIFY_BODY_MAX / 1024);
	}
	hold = by_rule || res.verdict == SBX_CLASSIFY_HOLD;
	if (!hold && res.verdict == SBX_CLASSIFY_PASS) {
		free(bs.buf);
		return 0;
	}
	if (res.verdict == SBX_CLASSIFY_MORE || (hold && !complete && !at_cap)) {
		/* read on; the head is parsed again when more of the body is here */
		free(bs.buf);
		answer_continue(c, m);
		c->wait_body = true;
		if (!c->timer)
			timer_set(c, HEAD_TIMEOUT_MS);
		return 1;
	}
	action = res.verdict == SBX_CLASSIFY_HOLD ? res.action : SBX_ACTION_REVIEW_RULE;
	{
		/* "approve --always" made an exemption for exactly this */
		struct sbx_target t = {.sandbox = c->sb->name, .host = c->host, .port = c->port,
				       .method = c->method, .path = c->url_path};
		const struct sbx_rule *ex = c->host[0] ? sbx_policy_approved(d->policy, &t, action) : NULL;
		if (ex) {
			free(bs.buf);
			sbx_rule_describe(ex, c->rule_text, sizeof(c->rule_text));
			snprintf(c->reason, sizeof(c->reason), "pre-approved in review (%s)", action);
			return 0;
		}
	}
	if (by_rule) {
		sbx_strlcpy(rule, c->rule_text, sizeof(rule));
		needed = c->dec_approvals;
		timeout_ms = c->dec_timeout_ms;
	} else {
		snprintf(rule, sizeof(rule), "builtin %s", sbx_classifier_name(res.which));
	}
	if (res.verdict == SBX_CLASSIFY_HOLD) {
		const struct sbx_classifier_cfg *cfg = &d->classifiers[res.which];
		if (cfg->approvals > needed)
			needed = cfg->approvals;
		if (cfg->timeout_ms && (!timeout_ms || cfg->timeout_ms < timeout_ms))
			timeout_ms = cfg->timeout_ms;
		if (by_rule)
			snprintf(why, sizeof(why), "review rule; %s", res.reason);
		else
			sbx_strlcpy(why, res.reason, sizeof(why));
	} else {
		snprintf(why, sizeof(why), "a review rule matches %s %s", c->method, c->url_path);
	}
	{
		char host[256];
		struct sbx_review_req r = {
			.sandbox_id = c->sb->id,
			.sandbox_name = c->sb->name,
			.via = path_name(c),
			.rule = rule,
			.classifier = res.verdict == SBX_CLASSIFY_HOLD ? sbx_classifier_name(res.which) : "",
			.action = action,
			.why = why,
			.method = c->method,
			.scheme = c->origin_tls ? "https" : "http",
			.host = host,
			.port = c->port,
			.target = origin,
			.msg = m,
			.body = bs.buf,
			.body_len = bs.len,
			.body_complete = complete,
			.needed = needed,
			.timeout_ms = timeout_ms,
			.credential_injected = c->intercept && c->have_cred,
		};
		if (c->host[0])
			sbx_strlcpy(host, c->host, sizeof(host));
		else
			addr_text(c->orig_family, c->orig_addr, host, sizeof(host));
		switch (sbx_review_hold(d->reviews, &r, c, id, reason, sizeof(reason))) {
		case SBX_REVIEW_PREAPPROVED:
			free(bs.buf);
			sbx_strlcpy(c->review_id, id, sizeof(c->review_id));
			c->review_cleared = true;
			snprintf(c->review_note, sizeof(c->review_note), "%s: approved in review (the client's retry)", id);
			return 0;
		case SBX_REVIEW_REFUSED:
			free(bs.buf);
			refuse(c, 503, "error", "%s", reason);
			return 1;
		case SBX_REVIEW_HELD:
			break;
		}
	}
	free(bs.buf);
	/* Hold: the client is not read until the decision (what it sent stays in cin, parsed again
	 * on approval); the connection is looked at now and then for its client leaving. */
	sbx_strlcpy(c->review_id, id, sizeof(c->review_id));
	c->wait_body = false;
	c->state = S_HELD;
	c->mode = M_HTTP;
	side_set(c, &c->c, 0);
	timer_set(c, HELD_CHECK_MS);
	return 1;
}

/* The queue's decision. */
static void head_dispatch(struct px_conn *c);

static void review_release(void *conn, bool approved, const char *decision, const char *reason)
{
	struct px_conn *c = conn;

	if (c->finished || c->state != S_HELD)
		return;
	timer_clear(c);
	if (!approved) {
		c->state = S_HEAD; /* refuse() answers in HTTP from here */
		c->idle = true;    /* the queue has logged the refusal */
		refuse(c, 403, decision, "%s", reason);
		return;
	}
	c->review_cleared = true;
	sbx_strlcpy(c->review_note, reason, sizeof(c->review_note));
	/* the record of the request as sent starts now, after the approval's */
	c->t0_ms = (int64_t)sbx_now_ms();
	c->t0_mono = sbx_monotonic_ms();
	c->state = S_HEAD;
	head_dispatch(c);
}

/* A held connection whose client has left: the item stays queued for the client's retry. */
static void held_check(struct px_conn *c)
{
	struct pollfd pfd = {.fd = c->c.fd, .events = POLLRDHUP};

	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
		log_info("review %s: the client of sandbox %s stopped waiting; the request stays queued", c->review_id,
			 c->sb->name);
		c->idle = true; /* the queue's records tell the story */
		conn_finish(c, "closed");
		return;
	}
	timer_set(c, HELD_CHECK_MS);
}

static void http_request(struct px_conn *c, struct sbx_http_msg *m)
{
	char origin[SBX_HTTP_MAX_START_LINE + 2];
	struct sbx_http_str path = m->target;

	if (m->method.len >= sizeof(c->method)) {
		refuse(c, 501, "error", "method too long");
		return;
	}
	memcpy(c->method, m->method.p, m->method.len);
	c->method[m->method.len] = '\0';
	if (!c->origin_form) {
		struct sbx_http_target t;
		if (sbx_http_parse_absolute_uri(m->target, &t) < 0) {
			refuse(c, 400, "error", "a proxy request needs an absolute http:// URI");
			return;
		}
		if (strcmp(t.scheme, "https") == 0)
			c->origin_tls = true; /* the proxy makes (and verifies) the TLS connection itself */
		else if (strcmp(t.scheme, "http") != 0) {
			refuse(c, 501, "error", "%s:// requests are not supported by the proxy", t.scheme);
			return;
		}
		c->port = t.port;
		host_or_addr(c, t.host, t.is_ipv6);
		path = t.path;
	} else if (m->target.len == 0 || m->target.p[0] != '/') {
		refuse(c, 400, "error", "a request-target in origin form (/path) is required");
		return;
	}
	if (path.len >= sizeof(origin)) {
		refuse(c, 414, "error", "request-target too long");
		return;
	}
	memcpy(origin, path.p, path.len);
	origin[path.len] = '\0';
	if (strcspn(origin, "?") >= sizeof(c->url_path)) {
		/* the rules must see the whole path, not a prefix of it */
		refuse(c, 414, "error", "request path longer than %zu bytes", sizeof(c->url_path) - 1);
		return;
	}
	sbx_strlcpy(c->url_path, origin, sizeof(c->url_path));
	if (c->host[0])
		set_authority(c);
	else {
		char a[INET6_ADDRSTRLEN];
		addr_text(c->orig_family, c->orig_addr, a, sizeof(a));
		snprintf(c->authority, sizeof(c->authority), "%s%s%s:%u", c->orig_family == AF_INET6 ? "[" : "", a,
			 c->orig_family == AF_INET6 ? "]" : "", c->port);
	}
	decide(c, true);
	if (c->dec.http_rules && path_ambiguous(origin)) {
		/* Servers read "/a/../b", "//b", "/%2e%2e/b" as other paths than the rules would: where
		 * HTTP rules apply, only plain paths pass. */
		refuse(c, 400, "denied",
		       "the path has dot segments, empty segments, ';' parameters or percent-encoded '.', '/', '\\' "
		       "or unreserved characters, and HTTP rules apply to %s: send the plain path",
		       c->host[0] ? c->host : "this destination");
		return;
	}
	if (m->upgrade && (c->dec.kind == SBX_RULE_REVIEW || classifiers_apply(c))) {
		/* After an upgrade the proxy relays opaque bytes: HTTP spoken there (h2c) would pass
		 * the review unread. WebSocket frames are not HTTP requests; everything else is refused. */
		const struct sbx_http_str *up = sbx_http_header_get(m, "upgrade");
		if (!up || !sbx_http_str_ieq(*up, "websocket")) {
			refuse(c, 403, "denied",
			       "a protocol upgrade other than WebSocket would carry requests past the review of %s",
			       c->host[0] ? c->host : "this destination");
			return;
		}
	}
	if (m->upgrade && c->dec.http_rules) {
		refuse(c, 403, "denied", "a protocol upgrade would carry requests past the HTTP rules of %s",
		       c->host[0] ? c->host : "this destination");
		return;
	}
	sbx_strlcpy(c->url_path, origin, sizeof(c->url_path)); /* decide() cut the query for matching */
	{
		char *q = strchr(c->url_path, '?');
		if (q)
			*q = '\0'; /* queries are not logged */
	}
	if (c->dec.kind == SBX_RULE_DENY) {
		refuse(c, 403, "denied", "%s", c->dec.reason);
		return;
	}
	if (!c->review_cleared) {
		int rv = review_step(c, m, origin);
		if (rv != 0)
			return; /* waiting for the body, held, or refused */
	}
	c->mode = M_HTTP;
	c->client_version10 = m->version == 10;
	/* An upgraded connection is relayed as an opaque tunnel, which our own TLS cannot be. */
	c->req_upgrade = m->upgrade && !c->origin_tls;
	c->keep_client = c->intercept && m->keep_alive && !m->upgrade;
	body_init(&c->req, m->body, m->content_length);
	if (c->intercept && c->have_cred && c->cred.kind == SBX_INJECT_SIGV4 && sbx_cred_sigv4_needs_body(m)) {
		/* The signature covers the body's hash: the whole body first. */
		if (m->body == SBX_HTTP_BODY_CHUNKED) {
			refuse(c, 411, "error", "an AWS request with a chunked body cannot be re-signed; send a Content-Length");
			return;
		}
		if (m->body == SBX_HTTP_BODY_LENGTH && m->content_length > BODY_BUF_MAX) {
			refuse(c, 413, "error", "AWS request bodies over %u KiB cannot be re-signed by the proxy (send "
						"x-amz-content-sha256 with the body's hash, as S3 clients do)",
			       BODY_BUF_MAX / 1024);
			return;
		}
		if (m->body == SBX_HTTP_BODY_LENGTH && c->cin.len < m->head_len + m->content_length) {
			c->wait_body = true; /* read on; the head is parsed again when the body is here */
			if (!c->timer)
				timer_set(c, HEAD_TIMEOUT_MS);
			return;
		}
	}
	c->wait_body = false;
	plan_route(c);
	{
		int r = build_upstream_request(c, m, origin);
		if (r == -2) {
			refuse(c, 403, "denied", "%s", c->sign_error);
			return;
		}
		if (r < 0) {
			refuse(c, 431, "error", "request head too large");
			return;
		}
	}
	sbx_buf_consume(&c->cin, m->head_len);
	if (pump_request_body(c) < 0)
		return;
	if (c->u.fd >= 0 && c->u.ssl && upstream_idle_ok(c)) {
		/* the origin's kept-alive connection from the previous request */
		c->state = S_HTTP;
		sbx_strlcpy(c->decision, "allowed", sizeof(c->decision));
		timer_clear(c);
		http_step(c);
		return;
	}
	if (c->u.fd >= 0) {
		if (c->u.ssl) {
			SSL_free(c->u.ssl);
			c->u.ssl = NULL;
		}
		side_close(c, &c->u, false);
	}
	start_upstream(c);
}

/* Answers a CONNECT the proxy will read the inside of: "200 Connection established", sent at
 * once. A client that did not wait for it is refused. */
static bool connect_established(struct px_conn *c, const struct sbx_http_msg *m)
{
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";

	sbx_buf_consume(&c->cin, m->head_len);
	if (c->cin.len || send(c->c.fd, ok, sizeof(ok) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(ok) - 1) {
		refuse(c, 400, "error", "data sent before the tunnel was established");
		return false;
	}
	return true;
}

static void peek_start(struct px_conn *c);

static void connect_request(struct px_conn *c, struct sbx_http_msg *m)
{
	struct sbx_http_target t;

	sbx_strlcpy(c->method, "CONNECT", sizeof(c->method));
	if (sbx_http_parse_authority(m->target, 0, &t) < 0) {
		refuse(c, 400, "error", "CONNECT needs host:port");
		return;
	}
	c->port = t.port;
	host_or_addr(c, t.host, t.is_ipv6);
	decide(c, false);
	if (c->dec.kind == SBX_RULE_DENY) {
		refuse(c, 403, "denied", "%s", c->dec.reason);
		return;
	}
	if (c->dec.kind == SBX_RULE_ALLOW && !must_intercept(c) && classifiers_apply(c)) {
		/* Only the built-in classifiers want to read the requests: TLS is opened when the
		 * client speaks TLS in the tunnel; anything else passes as before. */
		if (!connect_established(c, m))
			return;
		c->connect_peek = true;
		c->origin_form = true; /* HTTP inside the tunnel comes in origin form */
		peek_start(c);
		return;
	}
	if (wants_interception(c)) {
		/* A credential to put in, or HTTP rules to enforce: open the TLS (the sandbox trusts our
		 * CA) and handle the requests one by one. */
		if (!c->p->mitm) { /* say it in the CONNECT answer, while the client still reads HTTP */
			refuse(c, 502, "error", "TLS interception is needed for %s but unavailable: %s", c->host,
			       c->p->mitm_error);
			return;
		}
		if (connect_established(c, m))
			start_client_tls(c);
		return;
	}
	if (c->dec.http_restricts) {
		/* HTTP rules (method, path) could refuse requests to this host, and an opaque tunnel
		 * would hide the requests from them: fail closed. */
		refuse(c, 403, "denied",
		       "HTTP rules (method/path) apply to %s, and HTTPS requests cannot be inspected for them; "
		       "use a network-level rule for this host",
		       c->host[0] ? c->host : "this destination");
		return;
	}
	/* Bytes sent right after the CONNECT head (before our answer) belong to the tunnel. */
	sbx_buf_consume(&c->cin, m->head_len);
	if (c->cin.len) {
		sbx_buf_append(&c->uout, c->cin.data, c->cin.len);
		sbx_buf_reset(&c->cin);
	}
	c->mode = M_TUNNEL;
	start_upstream(c);
}

static void ctls_step(struct px_conn *c)
{
	int r = SSL_do_handshake(c->c.ssl);
	const char *sni;

	if (r != 1) {
		switch (SSL_get_error(c->c.ssl, r)) {
		case SSL_ERROR_WANT_READ:
			side_set(c, &c->c, SBX_EV_READ);
			return;
		case SSL_ERROR_WANT_WRITE:
			side_set(c, &c->c, SBX_EV_WRITE);
			return;
		default: {
			unsigned long e = ERR_get_error();
			ERR_clear_error();
			snprintf(c->reason, sizeof(c->reason),
				 "the TLS handshake with the client failed (%s): does the client trust the sbx CA?",
				 e ? ERR_reason_error_string(e) : "closed");
			conn_finish(c, "error");
			return;
		}
		}
	}
	/* The name the client asked for must be the one the policy decided on. */
	sni = SSL_get_servername(c->c.ssl, TLSEXT_NAMETYPE_host_name);
	if (sni && strcasecmp(sni, c->host) != 0) {
		snprintf(c->reason, sizeof(c->reason), "TLS server name %.100s does not match %.100s", sni, c->host);
		conn_finish(c, "denied");
		return;
	}
	c->intercept = true;
	c->origin_form = true;
	c->origin_tls = true;
	c->mode = M_HTTP;
	c->state = S_HEAD;
	timer_set(c, HEAD_TIMEOUT_MS);
	side_set(c, &c->c, SBX_EV_READ);
	if (SSL_pending(c->c.ssl))
		conn_step(c);
}

static void start_client_tls(struct px_conn *c)
{
	sbx_err err = SBX_ERR_INIT;

	if (!c->p->mitm) {
		refuse(c, 502, "error", "TLS interception is needed for %s but unavailable: %s", c->host, c->p->mitm_error);
		return;
	}
	if (!(c->c.ssl = sbx_mitm_server_ssl(c->p->mitm, c->c.fd, c->host, &err))) {
		refuse(c, 502, "error", "cannot intercept TLS to %s: %s", c->host, err.msg);
		return;
	}
	sbx_buf_reset(&c->cout);
	c->state = S_CTLS;
	timer_set(c, HEAD_TIMEOUT_MS);
	ctls_step(c);
}

/* An intercepted request is complete (response delivered): log it, forget it, wait for the
 * client's next one on the same TLS session. The upstream connection was one request's. */
static void next_request(struct px_conn *c)
{
	conn_audit(c);
	c->requests++;
	/* Reusable only if the whole request went out: bytes still queued would be read by the
	 * origin as the start of the next request. */
	if (!c->upstream_reusable || c->uout.len != 0 || !c->req.done) {
		if (c->u.ssl) {
			SSL_free(c->u.ssl);
			c->u.ssl = NULL;
		}
		side_close(c, &c->u, false);
	}
	c->upstream_reusable = false;
	c->review_cleared = c->sent_continue = false;
	c->classify_raw = 0;
	c->review_id[0] = c->review_note[0] = '\0';
	c->method[0] = c->url_path[0] = c->decision[0] = c->reason[0] = '\0';
	c->rule_text[0] = '\0';
	c->status = 0;
	c->bytes_up = c->bytes_down = 0;
	c->t0_ms = (int64_t)sbx_now_ms();
	c->t0_mono = sbx_monotonic_ms();
	c->up_done = c->down_done = c->resp_head_done = false;
	c->keep_client = false;
	c->via_override = c->via_upstream_proxy = false;
	memset(&c->req, 0, sizeof(c->req));
	memset(&c->resp, 0, sizeof(c->resp));
	sbx_buf_reset(&c->uout);
	sbx_buf_reset(&c->din);
	c->state = S_HEAD;
	timer_set(c, 60000); /* an idle kept-alive connection */
	side_set(c, &c->u, 0);
	side_set(c, &c->c, SBX_EV_READ);
	if (c->cin.len || SSL_pending(c->c.ssl))
		conn_step(c);
}

static void transparent_http(struct px_conn *c, struct sbx_http_msg *m);

/* Parses the request head at the start of cin and acts on it. Called as bytes arrive, and
 * again when a request waited for its body or for a review (the head stays in cin until the
 * request goes upstream). */
static void head_dispatch(struct px_conn *c)
{
	struct sbx_http_error e;
	struct sbx_http_msg *m;
	int rc;

	if (!(m = malloc(sizeof(*m)))) {
		refuse(c, 503, "error", "out of memory");
		return;
	}
	rc = sbx_http_parse_request(c->cin.data, c->cin.len, m, &e);
	if (rc == SBX_HTTP_INCOMPLETE) {
		free(m);
		if (c->cin.len >= SBX_HTTP_MAX_HEAD)
			refuse(c, 431, "error", "request head too large");
		else
			side_set(c, &c->c, SBX_EV_READ | ssl_events(&c->c));
		return;
	}
	if (rc == SBX_HTTP_ERROR) {
		free(m);
		refuse(c, e.status ? e.status : 400, "error", "malformed request: %s", e.reason);
		return;
	}
	timer_clear(c);
	if (c->origin_form)
		transparent_http(c, m);
	else if (sbx_http_str_eq(m->method, "CONNECT"))
		connect_request(c, m);
	else
		http_request(c, m);
	free(m);
}

static void head_read(struct px_conn *c)
{
	int r = read_buf(&c->c, &c->cin, 16384);

	if (r == 0)
		return;
	if (r < 0) {
		conn_finish(c, c->cin.len ? "error" : "closed");
		return;
	}
	head_dispatch(c);
}

/* Would an enabled built-in classifier look at requests to this host? */
static bool classifiers_apply(const struct px_conn *c)
{
	return sbx_classify_host_relevant(c->host, sbx_classifier_cfg_mask(c->p->d->classifiers));
}

/* Must this TLS connection be opened (a credential to inject, HTTP rules to enforce, review
 * rules or classifiers to apply)? Looks the credential up as a side effect. */
static bool wants_interception(struct px_conn *c)
{
	return must_intercept(c) || classifiers_apply(c);
}

/* The part of wants_interception that does not depend on what the client speaks: rules and
 * credentials cannot be honoured without reading the requests. */
static bool must_intercept(struct px_conn *c)
{
	sbx_err err = SBX_ERR_INIT;
	int r;

	if (c->dec.kind == SBX_RULE_REVIEW)
		return true;
	if (!c->host[0] || c->host_internal)
		return c->dec.http_restricts;
	sbx_cred_clear(&c->cred);
	r = sbx_cred_for_host(c->p->d->store, c->sb->name, c->sb->id, c->host, &c->cred, &err);
	if (r < 0)
		log_warn("sandbox %s: credentials for %s: %s", c->sb->name, c->host, err.msg);
	if (r == 0) {
		/* nothing stored: the host's variable, if the CLI passed one for this sandbox */
		struct sbx_sandbox *sb = sbx_sandbox_find(c->p->d, c->sb->id);
		if (sb && sb->host_env && (r = sbx_cred_for_host_env(sb->host_env, c->sb->id, c->host, &c->cred, &err)) < 0)
			log_warn("sandbox %s: credentials for %s: %s", c->sb->name, c->host, err.msg);
	}
	c->have_cred = r > 0;
	return c->have_cred || c->dec.http_restricts;
}

/* An opaque connection (transparent, or nothing learnt from its first bytes): decided at the
 * connection level; HTTP rules for the host cannot be honoured on bytes we cannot read. */
static void tunnel_decide_and_go(struct px_conn *c)
{
	timer_clear(c);
	decide(c, false);
	if (c->dec.kind != SBX_RULE_DENY && c->peeked_tls && wants_interception(c)) {
		start_client_tls(c);
		return;
	}
	if (c->dec.kind == SBX_RULE_REVIEW) {
		c->dec.kind = SBX_RULE_DENY;
		snprintf(c->dec.reason, sizeof(c->dec.reason),
			 "a review rule applies to %s, and this connection carries no HTTP requests the proxy can hold",
			 c->host[0] ? c->host : "this destination");
	}
	if (c->dec.kind == SBX_RULE_ALLOW && c->dec.http_restricts) {
		c->dec.kind = SBX_RULE_DENY;
		snprintf(c->dec.reason, sizeof(c->dec.reason),
			 "HTTP rules (method/path) apply to %s and this connection cannot be inspected for them",
			 c->host[0] ? c->host : "this destination");
	}
	if (c->dec.kind != SBX_RULE_ALLOW) {
		refuse(c, 403, "denied", "%s", c->dec.reason);
		return;
	}
	c->mode = M_TUNNEL;
	c->tunnel_guard = classifiers_apply(c);
	start_upstream(c);
}

/* Transparent: learn what the first bytes say (TLS SNI, or an HTTP request), without consuming
 * them. */
/* Peeked bytes stay queued, so the socket stays readable: instead of spinning on it, look again
 * a little later (until the peek window closes). */
static void peek_wait(struct px_conn *c)
{
	uint64_t now = sbx_monotonic_ms();

	side_set(c, &c->c, 0);
	if (now >= c->peek_deadline) {
		tunnel_decide_and_go(c);
		return;
	}
	timer_set(c, c->peek_deadline - now < 5 ? c->peek_deadline - now : 5);
}

static void peek_read(struct px_conn *c)
{
	uint8_t buf[SBX_TLS_MAX_INPUT];
	ssize_t n = recv(c->c.fd, buf, sizeof(buf), MSG_PEEK);
	struct sbx_sni sni;
	size_t i = 0;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_finish(c, "closed");
		return;
	}
	if (buf[0] == 0x16) {
		enum sbx_sni_result r = sbx_sni_parse(buf, (size_t)n, &sni);
		c->peeked_tls = true;
		if (r == SBX_SNI_NEED_MORE && (size_t)n < sizeof(buf)) {
			peek_wait(c); /* the rest of the ClientHello */
			return;
		}
		if (r == SBX_SNI_OK && sni.host[0] && !c->host[0])
			host_or_addr(c, sni.host, false);
		tunnel_decide_and_go(c);
		return;
	}
	/* An HTTP request line starts with a method and a space ("SSH-2.0-..." does not); servers
	 * also take lower-case methods and skip leading empty lines, so those are HTTP too (and the
	 * strict parser judges them). */
	{
		bool undecided;
		bool http = looks_tls_or_http(buf, (size_t)n, &undecided);
		i = undecided ? (size_t)n : 0;
		if (undecided && (size_t)n < 20) {
			peek_wait(c); /* too little to tell yet */
			return;
		}
		if (!http)
			i = 0;
		else
			i = 1;
	}
	if (i == 1) {
		c->mode = M_HTTP;
		c->state = S_HEAD;
		timer_set(c, HEAD_TIMEOUT_MS);
		conn_step(c);
		return;
	}
	tunnel_decide_and_go(c);
}

/* Transparent HTTP: the head is read like the forward path's, with the host from what the
 * sandbox resolved, or the Host header when it connected to an address. */
static void transparent_http(struct px_conn *c, struct sbx_http_msg *m)
{
	if (!c->host[0] && m->host.len > 0) {
		struct sbx_http_target t;
		if (sbx_http_parse_authority(m->host, c->port, &t) == 0) {
			uint16_t port = c->port;
			host_or_addr(c, t.host, t.is_ipv6);
			c->port = port; /* the connection's port, whatever Host claims */
		}
	}
	http_request(c, m);
}

static void conn_step(struct px_conn *c)
{
	switch (c->state) {
	case S_HEAD:
		if (c->origin_form) {
			/* transparent HTTP head */
			int r;
			bool got = false;
			/* Drain what is readable: TLS may hold decrypted bytes that no socket event will
			 * announce again. */
			while ((r = read_buf(&c->c, &c->cin, 16384)) == 1)
				got = true;
			if (got)
				r = 1; /* handle what came, even if the client closed its side after it */
			if (r == 0) {
				side_set(c, &c->c, SBX_EV_READ | ssl_events(&c->c));
				return;
			}
			if (r < 0) {
				/* a kept-alive client leaving between requests attempted nothing */
				c->idle = c->requests > 0 && c->cin.len == 0;
				conn_finish(c, "closed");
				return;
			}
			head_dispatch(c);
			return;
		}
		head_read(c);
		return;
	case S_PEEK:
		peek_read(c);
		return;
	case S_CONNECT:
		connected(c);
		return;
	case S_PXCONNECT:
		pxconnect_read(c);
		return;
	case S_TLS:
		tls_step(c);
		return;
	case S_CTLS:
		ctls_step(c);
		return;
	case S_HTTP:
		http_step(c);
		return;
	case S_TUNNEL:
		tunnel_step(c);
		return;
	case S_REFUSE:
		if (!write_buf(c, &c->c, &c->cout, NULL) || c->cout.len == 0) {
			/* Let the client read the refusal before the close. */
			if (c->c.fd >= 0)
				shutdown(c->c.fd, SHUT_WR);
			conn_finish(c, NULL);
			return;
		}
		side_set(c, &c->c, SBX_EV_WRITE);
		return;
	case S_RESOLVE:
	case S_HELD:
		return;
	}
}

static void io_cb(struct sbx_loop *loop, int fd, unsigned events, void *ud)
{
	struct px_conn *c = ud;
	struct side *s = fd == c->c.fd ? &c->c : &c->u;

	(void)loop;
	if (c->finished)
		return;
	if (events & SBX_EV_ERROR) {
		s->hup = true;
		/* Before anything was relayed, a client that hung up is simply gone. */
		if (s == &c->c && (c->state == S_RESOLVE || c->state == S_CONNECT || c->state == S_PXCONNECT)) {
			conn_finish(c, "closed");
			return;
		}
	}
	conn_step(c);
	/* Still nothing wanted from a hung-up socket: side_set dropped it from the loop. */
	if (!c->finished && s->hup && s->fd >= 0 && s->want == 0 && s->registered)
		side_set(c, s, 0);
}

/* ---- accepting ---- */

static int original_dst(int fd, int kind, struct px_conn *c)
{
	if (kind == SBX_PXFD_TRANSPARENT4) {
		struct sockaddr_in sin;
		socklen_t len = sizeof(sin);
		if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &sin, &len) < 0)
			return -1;
		c->orig_family = AF_INET;
		memset(c->orig_addr, 0, 16);
		memcpy(c->orig_addr, &sin.sin_addr, 4);
		c->port = ntohs(sin.sin_port);
		return 0;
	}
	struct sockaddr_in6 sin6;
	socklen_t len = sizeof(sin6);
	if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &sin6, &len) < 0)
		return -1;
	c->orig_family = AF_INET6;
	memcpy(c->orig_addr, &sin6.sin6_addr, 16);
	c->port = ntohs(sin6.sin6_port);
	return 0;
}

static void transparent_start(struct px_conn *c)
{
	c->origin_form = true;
	if (original_dst(c->c.fd, c->kind, c) < 0) {
		snprintf(c->reason, sizeof(c->reason), "no original destination (not a redirected connection)");
		conn_finish(c, "error");
		return;
	}
	if (c->orig_family == AF_INET) {
		uint32_t a;
		const char *name;
		memcpy(&a, c->orig_addr, 4);
		a = ntohl(a);
		if ((a >> 24) == 127) {
			snprintf(c->reason, sizeof(c->reason), "a loopback address is not a destination");
			conn_finish(c, "denied");
			return;
		}
		if ((a & FAKE_MASK) == FAKE_NET) {
			if (!(name = fake_name(c->sb, a))) {
				snprintf(c->reason, sizeof(c->reason),
					 "an address from the sandbox's DNS range that it was never given");
				conn_finish(c, "denied");
				return;
			}
			sbx_strlcpy(c->host, name, sizeof(c->host));
			c->host_internal = is_internal(c->host);
		}
	}
	/* Look at what the client says first (TLS SNI, an HTTP request: HTTP rules and the log
	 * need it). A client that waits for the server to speak (SMTP, MySQL, ...) is decided on
	 * what is known when the short peek window closes. */
	peek_start(c);
}

/* Look at the client's first bytes (TLS ClientHello, an HTTP request) for a short while. */
static void peek_start(struct px_conn *c)
{
	c->state = S_PEEK;
	c->peek_deadline = sbx_monotonic_ms() + PEEK_TIMEOUT_MS;
	timer_set(c, PEEK_TIMEOUT_MS);
	side_set(c, &c->c, SBX_EV_READ);
}

static void listener_resume(struct sbx_loop *loop, void *ud)
{
	struct px_listener *l = ud;

	l->paused = 0;
	if (l->fd >= 0)
		sbx_loop_mod(loop, l->fd, SBX_EV_READ);
}

static void accept_cb(struct sbx_loop *loop, int fd, unsigned events, void *ud)
{
	struct px_listener *l = ud;
	struct px_sb *sb = l->sb;
	struct sbx_proxy *p = sb->p;

	(void)loop;
	(void)events;
	for (int i = 0; i < 64; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct px_conn *c;
		int one = 1;

		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: the backlog stays readable, so stop listening for a moment
				 * rather than spin; connections wait in the backlog. */
				log_warn("proxy: %s; sandbox %s's connections wait", strerror(errno), sb->name);
				sbx_loop_mod(p->d->loop, fd, 0);
				l->paused = sbx_loop_timer(p->d->loop, 100, listener_resume, l);
			}
			return;
		}
		if (audit_blocked(p)) {
			/* Nothing goes through unlogged: while the log cannot take records, refuse. */
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(cfd);
			p->stats.refused++;
			continue;
		}
		if (sb->nconns >= SBX_PROXY_MAX_CONNS_PER_SANDBOX || p->nconns >= SBX_PROXY_MAX_CONNS) {
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(cfd);
			p->stats.refused++;
			log_warn("sandbox %s: too many proxy connections; refusing", sb->name);
			continue;
		}
		if (!(c = conn_new(sb, l->kind, cfd))) {
			close(cfd);
			continue;
		}
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (l->kind == SBX_PXFD_EXPLICIT) {
			c->state = S_HEAD;
			timer_set(c, HEAD_TIMEOUT_MS);
			side_set(c, &c->c, SBX_EV_READ);
		} else {
			transparent_start(c);
		}
	}
}

/* ---- DNS ---- */

static void dns_audit(struct px_sb *sb, const char *name, const char *decision, const struct sbx_decision *d)
{
	struct sbx_audit_rec r;

	memset(&r, 0, sizeof(r));
	r.ts = (int64_t)sbx_now_ms();
	sbx_strlcpy(r.sandbox, sb->name, sizeof(r.sandbox));
	sbx_strlcpy(r.path, "dns", sizeof(r.path));
	sbx_strlcpy(r.host, name, sizeof(r.host));
	sbx_strlcpy(r.decision, decision, sizeof(r.decision));
	if (d && d->rule)
		sbx_rule_describe(d->rule, r.rule, sizeof(r.rule));
	if (d)
		sbx_strlcpy(r.reason, d->reason, sizeof(r.reason));
	audit_submit(sb->p, &r);
}

static void dns_one(struct px_sb *sb, int fd, const uint8_t *pkt, size_t len, const struct sockaddr_storage *from,
		    socklen_t fromlen)
{
	struct sbx_dns_query q;
	uint8_t out[1024];
	int rc = sbx_dns_parse_query(pkt, len, &q), n;
	uint8_t ip[4];
	struct sbx_decision d;
	struct sbx_target t = {.sandbox = sb->name, .port = 0};

	sb->p->stats.dns_queries++;
	if (rc < 0)
		return;
	if (audit_blocked(sb->p)) {
		n = sbx_dns_build_answer(&q, SBX_DNS_SERVFAIL, NULL, 0, out, sizeof(out));
		goto send;
	}
	if (rc > 0) {
		n = sbx_dns_build_answer(&q, rc, NULL, 0, out, sizeof(out));
		goto send;
	}
	if (q.qclass != 1 || !sbx_dns_name_valid(q.name)) {
		n = sbx_dns_build_answer(&q, q.qclass != 1 ? SBX_DNS_REFUSED : SBX_DNS_NXDOMAIN, NULL, 0, out, sizeof(out));
		if (q.qclass == 1)
			dns_audit(sb, q.name, "denied", NULL);
		goto send;
	}
	t.host = q.name;
	memset(&d, 0, sizeof(d));
	if (sb->p->d->policy)
		sbx_policy_decide(sb->p->d->policy, &t, &d);
	else
		d.kind = SBX_RULE_DENY;
	if (d.kind == SBX_RULE_DENY) {
		n = sbx_dns_build_answer(&q, SBX_DNS_NXDOMAIN, NULL, 0, out, sizeof(out));
		/* A and AAAA come in pairs: one record per name is enough. */
		if (q.qtype != SBX_DNS_AAAA)
			dns_audit(sb, q.name, "denied", &d);
		goto send;
	}
	if (q.qtype == SBX_DNS_A || q.qtype == SBX_DNS_ANY) {
		uint32_t a = fake_for(sb, q.name);
		if (!a) {
			n = sbx_dns_build_answer(&q, SBX_DNS_SERVFAIL, NULL, 0, out, sizeof(out));
			goto send;
		}
		a = htonl(a);
		memcpy(ip, &a, 4);
		n = sbx_dns_build_answer(&q, SBX_DNS_NOERROR, ip, FAKE_TTL, out, sizeof(out));
		dns_audit(sb, q.name, "allowed", &d);
	} else {
		/* Only A: everything else goes through the proxy by name. */
		n = sbx_dns_build_answer(&q, SBX_DNS_NOERROR, NULL, 0, out, sizeof(out));
	}
send:
	if (n > 0)
		sendto(fd, out, (size_t)n, MSG_DONTWAIT, (const struct sockaddr *)from, fromlen);
}

static void dns_cb(struct sbx_loop *loop, int fd, unsigned events, void *ud)
{
	struct px_listener *l = ud;

	(void)loop;
	(void)events;
	for (int i = 0; i < DNS_BATCH; i++) {
		uint8_t pkt[SBX_DNS_MAX_PACKET];
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(fd, pkt, sizeof(pkt), MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
		if (n < 0)
			return;
		if ((size_t)n > sizeof(pkt))
			continue; /* oversized: dropped */
		dns_one(l->sb, fd, pkt, (size_t)n, &from, fromlen);
	}
}

/* ---- sandboxes ---- */

static struct px_sb *sb_find(struct sbx_proxy *p, const char *id)
{
	for (struct px_sb *sb = p->sbs; sb; sb = sb->next)
		if (strcmp(sb->id, id) == 0)
			return sb;
	return NULL;
}

static void sb_close_listeners(struct px_sb *sb)
{
	for (int i = 0; i < SBX_PXFD_COUNT; i++)
		if (sb->lst[i].paused) {
			sbx_loop_timer_cancel(sb->p->d->loop, sb->lst[i].paused);
			sb->lst[i].paused = 0;
		}
	for (int i = 0; i < SBX_PXFD_COUNT; i++)
		if (sb->lst[i].fd >= 0) {
			sbx_loop_del(sb->p->d->loop, sb->lst[i].fd);
			close(sb->lst[i].fd);
			sb->lst[i].fd = -1;
		}
}

int sbx_proxy_attach(struct sbx_proxy *p, const char *sandbox_id, const char *sandbox_name, int fds[SBX_PXFD_COUNT],
		     sbx_err *err)
{
	struct px_sb *sb = sb_find(p, sandbox_id);
	bool fresh = false;

	if (fds[SBX_PXFD_EXPLICIT] < 0 || fds[SBX_PXFD_DNS] < 0 || fds[SBX_PXFD_TRANSPARENT4] < 0) {
		for (int i = 0; i < SBX_PXFD_COUNT; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		return sbx_err_set(err, SBX_E_INTERNAL, "the sandbox's proxy listeners are missing");
	}
	if (!sb) {
		if (!(sb = calloc(1, sizeof(*sb)))) {
			for (int i = 0; i < SBX_PXFD_COUNT; i++)
				if (fds[i] >= 0)
					close(fds[i]);
			return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
		}
		sb->p = p;
		sbx_strlcpy(sb->id, sandbox_id, sizeof(sb->id));
		memset(sb->fake_buckets, 0xff, sizeof(sb->fake_buckets));
		for (int i = 0; i < SBX_PXFD_COUNT; i++)
			sb->lst[i].fd = -1;
		fresh = true;
	} else {
		sb_close_listeners(sb);
	}
	sbx_strlcpy(sb->name, sandbox_name, sizeof(sb->name));
	for (int i = 0; i < SBX_PXFD_COUNT; i++) {
		sb->lst[i].sb = sb;
		sb->lst[i].kind = i;
		sb->lst[i].fd = fds[i];
		fds[i] = -1;
		if (sb->lst[i].fd < 0)
			continue;
		fcntl(sb->lst[i].fd, F_SETFL, fcntl(sb->lst[i].fd, F_GETFL) | O_NONBLOCK);
		if (sbx_loop_add(p->d->loop, sb->lst[i].fd, SBX_EV_READ, i == SBX_PXFD_DNS ? dns_cb : accept_cb,
				 &sb->lst[i]) < 0) {
			int e = errno;
			sb_close_listeners(sb);
			if (fresh)
				free(sb);
			return sbx_err_sys(err, SBX_E_INTERNAL, e, "cannot serve the sandbox's proxy listeners");
		}
	}
	if (fresh) {
		sb->next = p->sbs;
		p->sbs = sb;
	}
	return 0;
}

void sbx_proxy_detach(struct sbx_proxy *p, const char *sandbox_id)
{
	struct px_sb *sb = sb_find(p, sandbox_id);

	if (!sb)
		return;
	sb_close_listeners(sb);
	/* held requests are refused (and logged so) before their connections go */
	sbx_review_sandbox_gone(p->d->reviews, sandbox_id);
	while (sb->conns) {
		struct px_conn *c = sb->conns;
		if (!c->reason[0])
			snprintf(c->reason, sizeof(c->reason), "the sandbox stopped");
		conn_finish(c, c->decision[0] ? c->decision : "error");
	}
	for (struct px_sb **pp = &p->sbs; *pp; pp = &(*pp)->next)
		if (*pp == sb) {
			*pp = sb->next;
			break;
		}
	fake_free(sb);
	free(sb);
}

/* ---- configuration ---- */

static int parse_override(const char *s, struct override *o, sbx_err *err)
{
	char buf[400], *host, *port, *addr, *nport = NULL, *end;

	if (strlen(s) >= sizeof(buf))
		return sbx_err_set(err, SBX_E_INVALID, "resolve entry too long: %.40s...", s);
	sbx_strlcpy(buf, s, sizeof(buf));
	host = buf;
	if (!(port = strchr(host, ':')))
		goto bad;
	*port++ = '\0';
	if (!(addr = strchr(port, ':')))
		goto bad;
	*addr++ = '\0';
	if (*addr == '[') {
		addr++;
		if (!(end = strchr(addr, ']')))
			goto bad;
		*end++ = '\0';
		if (*end == ':')
			nport = end + 1;
		else if (*end)
			goto bad;
	} else if ((end = strchr(addr, ':'))) {
		*end = '\0';
		nport = end + 1;
	}
	memset(o, 0, sizeof(*o));
	for (char *q = host; *q; q++)
		*q = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
	if (!*host || !sbx_dns_name_valid(host))
		goto bad;
	sbx_strlcpy(o->host, host, sizeof(o->host));
	if (strcmp(port, "*") != 0) {
		int64_t v;
		if (sbx_parse_i64(port, 1, 65535, &v) < 0)
			goto bad;
		o->port = (uint16_t)v;
	}
	if (nport) {
		int64_t v;
		if (sbx_parse_i64(nport, 1, 65535, &v) < 0)
			goto bad;
		o->new_port = (uint16_t)v;
	}
	{
		struct sockaddr_in *sin = (struct sockaddr_in *)&o->addr;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&o->addr;
		if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			o->addrlen = sizeof(*sin);
		} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			o->addrlen = sizeof(*sin6);
		} else {
			goto bad;
		}
	}
	return 0;
bad:
	return sbx_err_set(err, SBX_E_INVALID,
			   "bad \"resolve\" entry \"%s\" in config.json: use HOST:PORT:ADDRESS, HOST:*:ADDRESS or "
			   "HOST:PORT:ADDRESS:NEWPORT (IPv6 addresses in brackets)",
			   s);
}

static int parse_upstream(struct sbx_proxy *p, const char *url, sbx_err *err)
{
	struct sbx_http_target t;
	struct sbx_http_str s;
	const char *rest = url;

	if (sbx_str_has_prefix(url, "http://"))
		rest = url + 7;
	else if (strstr(url, "://"))
		return sbx_err_set(err, SBX_E_INVALID, "upstream proxy \"%s\": only http:// proxies are supported", url);
	s.p = rest;
	s.len = strcspn(rest, "/");
	if (sbx_http_parse_authority(s, 3128, &t) < 0)
		return sbx_err_set(err, SBX_E_INVALID, "upstream proxy \"%s\": expected http://HOST:PORT", url);
	sbx_strlcpy(p->up_host, t.host, sizeof(p->up_host));
	p->up_port = t.port;
	return 0;
}

static int load_config(struct sbx_proxy *p, sbx_err *err)
{
	char path[PATH_MAX];
	json_t *root, *net, *v;
	json_error_t je;
	size_t i;

	if ((size_t)snprintf(path, sizeof(path), "%s/config.json", p->d->paths.config_dir) >= sizeof(path))
		return sbx_err_set(err, SBX_E_INVALID, "config path too long");
	if (access(path, F_OK) != 0) {
		root = NULL;
	} else if (!(root = json_load_file(path, JSON_REJECT_DUPLICATES, &je))) {
		return sbx_err_set(err, SBX_E_INVALID, "%s, line %d: %s", path, je.line, je.text);
	}
	net = root ? json_object_get(root, "network") : NULL;
	if (net && !json_is_object(net)) {
		json_decref(root);
		return sbx_err_set(err, SBX_E_INVALID, "%s: \"network\" must be an object", path);
	}
	if ((v = net ? json_object_get(net, "resolve") : NULL)) {
		json_t *e;
		if (!json_is_array(v) || json_array_size(v) > MAX_OVERRIDES) {
			json_decref(root);
			return sbx_err_set(err, SBX_E_INVALID, "%s: \"resolve\" must be a list of at most %d strings", path,
					   MAX_OVERRIDES);
		}
		json_array_foreach(v, i, e)
		{
			if (!json_is_string(e) || parse_override(json_string_value(e), &p->overrides[p->noverrides], err) < 0) {
				if (!json_is_string(e))
					sbx_err_set(err, SBX_E_INVALID, "%s: \"resolve\" entries must be strings", path);
				json_decref(root);
				return -1;
			}
			p->noverrides++;
		}
	}
	if ((v = net ? json_object_get(net, "upstream_proxy") : NULL)) {
		if (!json_is_string(v) || parse_upstream(p, json_string_value(v), err) < 0) {
			if (!json_is_string(v))
				sbx_err_set(err, SBX_E_INVALID, "%s: \"upstream_proxy\" must be a string", path);
			json_decref(root);
			return -1;
		}
	} else {
		const char *env = getenv("HTTPS_PROXY");
		if (!env || !*env)
			env = getenv("https_proxy");
		if (env && *env && parse_upstream(p, env, err) < 0) {
			json_decref(root);
			return -1;
		}
	}
	if ((v = net ? json_object_get(net, "ca_bundle") : NULL)) {
		if (!json_is_string(v) || access(json_string_value(v), R_OK) != 0) {
			sbx_err_set(err, SBX_E_INVALID, "%s: \"ca_bundle\" must name a readable PEM file", path);
			json_decref(root);
			return -1;
		}
		sbx_strlcpy(p->ca_bundle, json_string_value(v), sizeof(p->ca_bundle));
	}
	json_decref(root);
	return 0;
}

/* The interception CA, and the trust bundle sandboxes get: the host's system store plus the CA.
 * A CA that cannot be used does not stop the daemon: connections that need interception are
 * refused with the reason (and `sbx diagnose` says it), everything else works. */
static void open_interception(struct sbx_proxy *p)
{
	char dir[PATH_MAX], bundle[PATH_MAX];
	sbx_err err = SBX_ERR_INIT;
	char *sys = NULL;
	size_t syslen = 0;
	sbx_buf b;

	snprintf(dir, sizeof(dir), "%s/ca", p->d->paths.state_dir);
	if (sbx_mitm_open(dir, &p->mitm, &err) < 0) {
		sbx_strlcpy(p->mitm_error, err.msg, sizeof(p->mitm_error));
		log_error("TLS interception is unavailable: %s", err.msg);
		return;
	}
	snprintf(bundle, sizeof(bundle), "%s/ca/sandbox-bundle.pem", p->d->paths.state_dir);
	sbx_buf_init(&b, 16u << 20);
	if (sbx_read_file(SBX_SYSTEM_CA_BUNDLE, 8u << 20, &sys, &syslen, NULL) == 0)
		sbx_buf_append(&b, sys, syslen);
	free(sys);
	sbx_buf_append_str(&b, "\n# sbx proxy CA (TLS interception)\n");
	sbx_buf_append_str(&b, sbx_mitm_ca_pem(p->mitm));
	if (sbx_write_file_atomic(bundle, b.data, b.len, 0644, &err) < 0) {
		sbx_strlcpy(p->mitm_error, err.msg, sizeof(p->mitm_error));
		log_error("cannot write the sandboxes' CA bundle: %s", err.msg);
		sbx_mitm_free(p->mitm);
		p->mitm = NULL;
	}
	sbx_buf_free(&b);
}

const char *sbx_proxy_interception_error(const struct sbx_proxy *p)
{
	return p->mitm ? NULL : p->mitm_error;
}

int sbx_proxy_new(struct sbx_daemon *d, struct sbx_proxy **out, sbx_err *err)
{
	struct sbx_proxy *p = calloc(1, sizeof(*p));

	if (!p)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	p->d = d;
	if (load_config(p, err) < 0 || sbx_tls_client_new(p->ca_bundle, &p->tls, err) < 0) {
		free(p);
		return -1;
	}
	if (sbx_resolver_new(d->loop, 4, &p->resolver, err) < 0) {
		sbx_tls_client_free(p->tls);
		free(p);
		return -1;
	}
	if (sbx_reviews_new(d, review_release, &d->reviews, err) < 0) {
		sbx_resolver_free(p->resolver);
		sbx_tls_client_free(p->tls);
		free(p);
		return -1;
	}
	open_interception(p);
	if (p->noverrides)
		log_info("proxy: %zu address override(s) from config.json", p->noverrides);
	if (p->up_host[0])
		log_info("proxy: chaining to the upstream proxy %s:%u", p->up_host, p->up_port);
	*out = p;
	return 0;
}

void sbx_proxy_free(struct sbx_proxy *p)
{
	if (!p)
		return;
	sbx_reviews_free(p->d->reviews); /* refuses what is still held */
	p->d->reviews = NULL;
	while (p->sbs)
		sbx_proxy_detach(p, p->sbs->id);
	sbx_resolver_free(p->resolver);
	sbx_tls_client_free(p->tls);
	sbx_mitm_free(p->mitm);
	free(p);
}

void sbx_proxy_stats(const struct sbx_proxy *p, struct sbx_proxy_stats *out)
{
	*out = p->stats;
}
