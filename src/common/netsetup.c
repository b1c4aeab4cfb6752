/* netsetup.c - lo, routes, the nftables batch and the proxy's sockets, inside a sandbox's network
 * namespace (see netsetup.h).
 *
 * Linked into the static sbx-init: libc and linux headers only, netlink messages written by hand.
 * Every request asks for an ack and every ack is read and checked, because a ruleset that was
 * silently not applied would leave a sandbox that looks confined and is not.
 *
 * How nfnetlink answers a batch (net/netfilter/nfnetlink.c), which decides how we read it:
 *  - The batch is processed while sendmsg() runs, so every answer is queued by the time it
 *    returns; we still wait (bounded) rather than assume.
 *  - Each message with NLM_F_ACK gets an ack, 0 or -errno; errors are reported for every failing
 *    message, and the whole transaction is then aborted. Success acks are sent even for messages
 *    of an aborted batch, so "all acks were 0" means nothing unless no ack carried an error.
 *  - A commit failure is reported against the BEGIN message. Kernels from 6.10 also ack BEGIN and
 *    END when asked (END's ack then confirms the commit); older ones ignore the flag there, so
 *    those two acks are accepted but not required.
 *  - A batch without END is aborted without any error: the kernel cannot tell us, so the shape of
 *    the batch is checked before it is sent. */
#include "netsetup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED 0x100
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS 0x200
#endif
#ifndef NLMSGERR_ATTR_MSG
#define NLMSGERR_ATTR_MSG 1
#endif

#define ACK_TIMEOUT_MS 2000
#define LISTEN_BACKLOG 1024

/* Formats the message, appends ": strerror(e)" when e is set, sets errno (EINVAL if e is 0) and
 * returns -1. */
static int fail(char *errbuf, size_t errlen, int e, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *errbuf, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;

	if (errbuf && errlen) {
		int n;

		va_start(ap, fmt);
		n = vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
		if (e && n >= 0 && (size_t)n < errlen)
			snprintf(errbuf + n, errlen - (size_t)n, ": %s", strerror(e));
	}
	errno = e ? e : EINVAL;
	return -1;
}

/* Like fail(), for messages that place strerror(e) themselves. */
static int fail_plain(char *errbuf, size_t errlen, int e, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_plain(char *errbuf, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;

	if (errbuf && errlen) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	errno = e ? e : EINVAL;
	return -1;
}

static long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- netlink plumbing ---- */

/* A netlink socket bound to a kernel-chosen port. Acks are capped (the request is not echoed
 * back) and carry the kernel's extended error text where there is one; both options are
 * conveniences, so kernels without them are fine. */
static int nl_open(int proto, const char *what, char *errbuf, size_t errlen)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	int one = 1;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);

	if (fd < 0)
		return fail(errbuf, errlen, errno, "cannot open a %s netlink socket", what);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return fail(errbuf, errlen, e, "cannot bind the %s netlink socket", what);
	}
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	return fd;
}

static int nl_send(int fd, const void *msg, size_t len)
{
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK}; /* nl_pid 0: the kernel */
	ssize_t w;

	do
		w = sendto(fd, msg, len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -1;
	if ((size_t)w != len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

/* Receives one datagram from the kernel, waiting until deadline (monotonic ms). Datagrams from
 * anyone but the kernel are dropped. Returns its length, 0 when the deadline passed, -1 on error
 * (EMSGSIZE when it did not fit). */
static ssize_t nl_recv(int fd, void *buf, size_t len, long long deadline)
{
	for (;;) {
		struct sockaddr_nl from;
		socklen_t fromlen = sizeof(from);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long long left = deadline - monotonic_ms();
		ssize_t n;
		int pr;

		pr = poll(&p, 1, left > 0 ? (int)left : 0);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return -1;
		if (pr == 0)
			return 0;
		n = recvfrom(fd, buf, len, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -1;
		if (from.nl_family != AF_NETLINK || from.nl_pid != 0)
			continue;
		if ((size_t)n > len) {
			errno = EMSGSIZE;
			return -1;
		}
		if (n == 0)
			continue;
		return n;
	}
}

struct ack {
	uint32_t seq;
	uint16_t type;     /* of the acknowledged request */
	int error;         /* positive errno, 0 for success */
	char text[160];    /* the kernel's extended ack message, or "" */
};

/* Decodes one NLMSG_ERROR message (an ack). Returns -1 if h is anything else or malformed. */
static int parse_ack(const struct nlmsghdr *h, struct ack *a)
{
	const struct nlmsgerr *e;
	size_t off;

	if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
		return -1;
	e = NLMSG_DATA(h);
	if (e->error > 0 || e->error < -4095)
		return -1;
	a->seq = e->msg.nlmsg_seq;
	a->type = e->msg.nlmsg_type;
	a->error = -e->error;
	a->text[0] = '\0';
	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return 0;
	/* The attributes follow the echoed request: its header only when capped, all of it when not
	 * (only error acks echo the payload). */
	off = NLMSG_HDRLEN + sizeof(*e);
	if (!(h->nlmsg_flags & NLM_F_CAPPED) && a->error && e->msg.nlmsg_len > NLMSG_HDRLEN)
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	off = NLMSG_ALIGN(off);
	while (off + sizeof(struct nlattr) <= h->nlmsg_len) {
		const struct nlattr *at = (const struct nlattr *)((const char *)h + off);

		if (at->nla_len < sizeof(*at) || at->nla_len > h->nlmsg_len - off)
			break;
		if ((at->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
			size_t n = at->nla_len - sizeof(*at);
			const char *s = (const char *)at + sizeof(*at);

			n = strnlen(s, n);
			if (n >= sizeof(a->text))
				n = sizeof(a->text) - 1;
			memcpy(a->text, s, n);
			a->text[n] = '\0';
		}
		off += NLA_ALIGN(at->nla_len);
	}
	return 0;
}

/* Walks the netlink messages of one received datagram, calling fn for each ack. Returns -1 with
 * errno EBADMSG when the datagram is not a sequence of well-formed acks. */
static int for_each_ack(const void *buf, size_t n, int (*fn)(const struct ack *, void *), void *arg)
{
	const struct nlmsghdr *h = buf;
	size_t left = n;

	while (left >= NLMSG_HDRLEN) {
		struct ack a;

		if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > left || parse_ack(h, &a) < 0) {
			errno = EBADMSG;
			return -1;
		}
		if (fn(&a, arg) < 0)
			return -1;
		if (NLMSG_ALIGN(h->nlmsg_len) >= left)
			return 0;
		left -= NLMSG_ALIGN(h->nlmsg_len);
		h = (const struct nlmsghdr *)((const char *)h + NLMSG_ALIGN(h->nlmsg_len));
	}
	if (left) {
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

/* " (kernel: text)" or "" */
static const char *kernel_text(const struct ack *a, char *buf, size_t len)
{
	if (!a->text[0])
		return "";
	snprintf(buf, len, " (kernel: %s)", a->text);
	return buf;
}

/* ---- rtnetlink: lo up and the default routes ---- */

struct rtreq {
	union {
		struct nlmsghdr h;
		char buf[256];
	} u;
};

static void rt_attr(struct rtreq *r, uint16_t type, const void *data, size_t len)
{
	struct nlattr *at = (struct nlattr *)(r->u.buf + NLMSG_ALIGN(r->u.h.nlmsg_len));

	/* Only fixed, small attributes are put into the 256-byte request: this cannot overflow. */
	at->nla_type = type;
	at->nla_len = (uint16_t)(NLA_HDRLEN + len);
	memcpy((char *)at + NLA_HDRLEN, data, len);
	r->u.h.nlmsg_len = NLMSG_ALIGN(r->u.h.nlmsg_len) + NLA_ALIGN(at->nla_len);
}

static void *rt_start(struct rtreq *r, uint16_t type, uint16_t flags, uint32_t seq, size_t body)
{
	memset(r, 0, sizeof(*r));
	r->u.h.nlmsg_len = (uint32_t)NLMSG_LENGTH(body);
	r->u.h.nlmsg_type = type;
	r->u.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	r->u.h.nlmsg_seq = seq;
	return NLMSG_DATA(&r->u.h);
}

struct rt_wait {
	uint32_t seq;
	bool done;
	struct ack ack;
};

static int rt_on_ack(const struct ack *a, void *arg)
{
	struct rt_wait *w = arg;

	if (a->seq == w->seq && !w->done) {
		w->ack = *a;
		w->done = true;
	}
	return 0;
}

/* Sends one request and waits for its ack. Returns 0, or -1 with errno (the kernel's answer) and
 * a message naming `what`. */
static int rt_request(int fd, const struct rtreq *r, const char *what, char *errbuf, size_t errlen)
{
	union {
		struct nlmsghdr h;
		char buf[4096];
	} in;
	struct rt_wait w = {.seq = r->u.h.nlmsg_seq, .done = false};
	long long deadline = monotonic_ms() + ACK_TIMEOUT_MS;
	char kt[200];

	if (nl_send(fd, &r->u, r->u.h.nlmsg_len) < 0)
		return fail(errbuf, errlen, errno, "cannot send the request to %s", what);
	while (!w.done) {
		ssize_t n = nl_recv(fd, in.buf, sizeof(in.buf), deadline);

		if (n < 0)
			return fail(errbuf, errlen, errno, "cannot read the kernel's answer to %s", what);
		if (n == 0)
			return fail(errbuf, errlen, ETIMEDOUT, "no answer from the kernel to %s within %d ms", what,
				    ACK_TIMEOUT_MS);
		if (for_each_ack(in.buf, (size_t)n, rt_on_ack, &w) < 0)
			return fail(errbuf, errlen, errno, "malformed rtnetlink answer to %s", what);
	}
	if (w.ack.error)
		return fail(errbuf, errlen, w.ack.error, "the kernel refused to %s%s", what,
			    kernel_text(&w.ack, kt, sizeof(kt)));
	return 0;
}

static int lo_up(int fd, int ifindex, char *errbuf, size_t errlen)
{
	struct rtreq r;
	struct ifinfomsg *ifi = rt_start(&r, RTM_NEWLINK, 0, 1, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return rt_request(fd, &r, "bring lo up", errbuf, errlen);
}

/* `ip route replace default dev lo src <loopback>`: the preferred source matters for IPv4, where
 * 127.0.0.1 has host scope and would not be chosen for a link-scope route; a source of 0.0.0.0
 * would leave redirected connections without a way back. */
static int default_route(int fd, int family, int ifindex, uint32_t seq, char *errbuf, size_t errlen)
{
	struct rtreq r;
	struct rtmsg *rt = rt_start(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, seq, sizeof(*rt));
	uint32_t oif = (uint32_t)ifindex;

	rt->rtm_family = (unsigned char)family;
	rt->rtm_dst_len = 0;
	rt->rtm_table = RT_TABLE_MAIN;
	rt->rtm_protocol = RTPROT_STATIC;
	rt->rtm_scope = family == AF_INET ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
	rt->rtm_type = RTN_UNICAST;
	rt_attr(&r, RTA_OIF, &oif, sizeof(oif));
	if (family == AF_INET) {
		struct in_addr src = {.s_addr = htonl(INADDR_LOOPBACK)};

		rt_attr(&r, RTA_PREFSRC, &src, sizeof(src));
		return rt_request(fd, &r, "add the IPv4 route `default dev lo src 127.0.0.1`", errbuf, errlen);
	}
	rt_attr(&r, RTA_PREFSRC, &in6addr_loopback, sizeof(in6addr_loopback));
	return rt_request(fd, &r, "add the IPv6 route `default dev lo src ::1`", errbuf, errlen);
}

/* `ip addr add 127.0.0.53/32 dev lo scope host`. The address is local already (127/8); named on
 * the interface it makes glibc's AI_ADDRCONFIG see an IPv4 address other than 127.0.0.1, without
 * which getaddrinfo(AI_ADDRCONFIG) - getent, many resolvers - would not even ask for A records in
 * a namespace that has only loopback. */
static int resolver_addr(int fd, int ifindex, uint32_t seq, char *errbuf, size_t errlen)
{
	struct rtreq r;
	struct ifaddrmsg *ifa = rt_start(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, seq, sizeof(*ifa));
	struct in_addr a = {.s_addr = htonl(SBX_NET_DNS_ADDR_HOST)};

	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = 32;
	ifa->ifa_scope = RT_SCOPE_HOST;
	ifa->ifa_index = (unsigned)ifindex;
	rt_attr(&r, IFA_LOCAL, &a, sizeof(a));
	rt_attr(&r, IFA_ADDRESS, &a, sizeof(a));
	return rt_request(fd, &r, "add the resolver address 127.0.0.53 to lo", errbuf, errlen);
}

static int setup_routes(int fd, int ifindex, char *errbuf, size_t errlen)
{
	if (resolver_addr(fd, ifindex, 4, errbuf, errlen) < 0)
		return -1;
	if (default_route(fd, AF_INET, ifindex, 2, errbuf, errlen) < 0)
		return -1;
	if (default_route(fd, AF_INET6, ifindex, 3, errbuf, errlen) < 0) {
		/* No IPv6 in this namespace: EAFNOSUPPORT without IPv6 in the kernel, EACCES when it is
		 * disabled on lo. Without the route IPv6 connects fail with ENETUNREACH; nothing is
		 * weakened. Anything else is a real failure. */
		if (errno != EAFNOSUPPORT && errno != EACCES)
			return -1;
		if (errbuf && errlen)
			errbuf[0] = '\0';
	}
	return 0;
}

/* ---- the nftables batch ---- */

struct batch_msg {
	uint32_t seq;
	uint16_t type;
	bool acked;
};

struct batch_state {
	struct batch_msg msg[SBX_NET_BATCH_MAX_MSGS];
	size_t n;
	struct ack first_error; /* the first refusal, or error == 0 */
	size_t error_index;     /* which message it names (n when unknown) */
	bool unknown_ack;
};

static const char *nft_msg_name(uint16_t type)
{
	static const char *const names[NFT_MSG_MAX] = {
		[NFT_MSG_NEWTABLE] = "NFT_MSG_NEWTABLE", [NFT_MSG_GETTABLE] = "NFT_MSG_GETTABLE",
		[NFT_MSG_DELTABLE] = "NFT_MSG_DELTABLE", [NFT_MSG_NEWCHAIN] = "NFT_MSG_NEWCHAIN",
		[NFT_MSG_GETCHAIN] = "NFT_MSG_GETCHAIN", [NFT_MSG_DELCHAIN] = "NFT_MSG_DELCHAIN",
		[NFT_MSG_NEWRULE] = "NFT_MSG_NEWRULE",   [NFT_MSG_GETRULE] = "NFT_MSG_GETRULE",
		[NFT_MSG_DELRULE] = "NFT_MSG_DELRULE",   [NFT_MSG_NEWSET] = "NFT_MSG_NEWSET",
		[NFT_MSG_DELSET] = "NFT_MSG_DELSET",     [NFT_MSG_NEWSETELEM] = "NFT_MSG_NEWSETELEM",
	};

	if (type == NFNL_MSG_BATCH_BEGIN)
		return "NFNL_MSG_BATCH_BEGIN";
	if (type == NFNL_MSG_BATCH_END)
		return "NFNL_MSG_BATCH_END";
	if (NFNL_SUBSYS_ID(type) == NFNL_SUBSYS_NFTABLES && NFNL_MSG_TYPE(type) < NFT_MSG_MAX &&
	    names[NFNL_MSG_TYPE(type)])
		return names[NFNL_MSG_TYPE(type)];
	return "unknown message type";
}

/* Checks that the bytes are one complete batch the kernel will either commit or refuse loudly,
 * and records each message's sequence number. */
static int batch_check(const void *batch, size_t len, struct batch_state *st, char *errbuf, size_t errlen)
{
	const size_t min = NLMSG_LENGTH(sizeof(struct nfgenmsg));
	size_t off = 0;

	if (len > SBX_NET_BATCH_MAX)
		return fail(errbuf, errlen, E2BIG, "nftables batch of %zu bytes exceeds the %d-byte limit", len,
			    SBX_NET_BATCH_MAX);
	if (len < 2 * NLMSG_ALIGN(min))
		return fail(errbuf, errlen, EBADMSG, "nftables batch of %zu bytes is too short to hold BEGIN and END",
			    len);
	if ((uintptr_t)batch % NLMSG_ALIGNTO)
		return fail(errbuf, errlen, EINVAL, "nftables batch is not 4-byte aligned in memory");
	st->n = 0;
	while (off < len) {
		const struct nlmsghdr *h = (const struct nlmsghdr *)((const char *)batch + off);
		size_t i = st->n;

		if (len - off < NLMSG_HDRLEN || h->nlmsg_len < min || h->nlmsg_len > len - off)
			return fail(errbuf, errlen, EBADMSG,
				    "nftables batch: message %zu at offset %zu has a bad length (%u, %zu bytes left)", i + 1,
				    off, len - off >= NLMSG_HDRLEN ? h->nlmsg_len : 0, len - off);
		if (i == SBX_NET_BATCH_MAX_MSGS)
			return fail(errbuf, errlen, E2BIG, "nftables batch has more than %d messages",
				    SBX_NET_BATCH_MAX_MSGS);
		if (!(h->nlmsg_flags & NLM_F_REQUEST))
			return fail(errbuf, errlen, EBADMSG, "nftables batch: message %zu (%s) lacks NLM_F_REQUEST", i + 1,
				    nft_msg_name(h->nlmsg_type));
		if (i > 0 && h->nlmsg_seq <= st->msg[i - 1].seq)
			return fail(errbuf, errlen, EBADMSG,
				    "nftables batch: message %zu has sequence number %u, not above the previous one (%u)",
				    i + 1, h->nlmsg_seq, st->msg[i - 1].seq);
		if ((i == 0) != (h->nlmsg_type == NFNL_MSG_BATCH_BEGIN))
			return fail(errbuf, errlen, EBADMSG, "nftables batch: %s",
				    i == 0 ? "the first message is not NFNL_MSG_BATCH_BEGIN"
					   : "NFNL_MSG_BATCH_BEGIN appears again");
		if (h->nlmsg_type == NFNL_MSG_BATCH_END && NLMSG_ALIGN(h->nlmsg_len) < len - off)
			return fail(errbuf, errlen, EBADMSG, "nftables batch: NFNL_MSG_BATCH_END is message %zu, not the last",
				    i + 1);
		if (h->nlmsg_type != NFNL_MSG_BATCH_BEGIN && h->nlmsg_type != NFNL_MSG_BATCH_END) {
			if (NFNL_SUBSYS_ID(h->nlmsg_type) != NFNL_SUBSYS_NFTABLES)
				return fail(errbuf, errlen, EBADMSG, "nftables batch: message %zu (type %#x) is not for nf_tables",
					    i + 1, h->nlmsg_type);
			/* Without an ack for every message there is no proof the message was applied. */
			if (!(h->nlmsg_flags & NLM_F_ACK))
				return fail(errbuf, errlen, EBADMSG, "nftables batch: message %zu (%s) does not request an ack",
					    i + 1, nft_msg_name(h->nlmsg_type));
		}
		st->msg[i] = (struct batch_msg){.seq = h->nlmsg_seq, .type = h->nlmsg_type, .acked = false};
		st->n++;
		if (NLMSG_ALIGN(h->nlmsg_len) >= len - off)
			break;
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	if (st->msg[st->n - 1].type != NFNL_MSG_BATCH_END)
		return fail(errbuf, errlen, EBADMSG,
			    "nftables batch does not end with NFNL_MSG_BATCH_END (truncated?): the kernel would drop it "
			    "without an error");
	if (st->n < 3)
		return fail(errbuf, errlen, EBADMSG, "nftables batch holds no message between BEGIN and END");
	return 0;
}

static int batch_on_ack(const struct ack *a, void *arg)
{
	struct batch_state *st = arg;
	size_t i;

	for (i = 0; i < st->n && st->msg[i].seq != a->seq; i++)
		;
	if (i == st->n) {
		st->unknown_ack = true;
		if (a->error && !st->first_error.error) {
			st->first_error = *a;
			st->error_index = st->n;
		}
		return 0;
	}
	st->msg[i].acked = true;
	if (a->error && !st->first_error.error) {
		st->first_error = *a;
		st->error_index = i;
	}
	return 0;
}

static bool batch_all_acked(const struct batch_state *st)
{
	/* BEGIN and END are acked by newer kernels only. */
	for (size_t i = 1; i + 1 < st->n; i++)
		if (!st->msg[i].acked)
			return false;
	return true;
}

/* What to do about the errors one sees in practice. */
static const char *nft_hint(int e, uint16_t type)
{
	switch (e) {
	case EPERM:
		return " - sbx-init needs CAP_NET_ADMIN in the sandbox's network namespace";
	case ENOENT:
		return type == (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE)
			       ? " - a chain or expression type it names does not exist (a batch not built by "
				 "sbx_netrules_build, or a kernel without nft_nat, nft_redir or nft_reject_inet)"
			       : "";
	case EOPNOTSUPP:
	case EAFNOSUPPORT:
		return " - the kernel lacks nf_tables support the rules need (inet family, NAT, redirect, reject)";
	default:
		return "";
	}
}

static int apply_batch(const void *batch, size_t len, char *errbuf, size_t errlen)
{
	union {
		struct nlmsghdr h;
		char buf[8192];
	} in;
	struct batch_state st;
	cleanup_close int fd = -1;
	long long deadline;
	char kt[200];

	memset(&st, 0, sizeof(st));
	if (batch_check(batch, len, &st, errbuf, errlen) < 0)
		return -1;
	fd = nl_open(NETLINK_NETFILTER, "netfilter", errbuf, errlen);
	if (fd < 0) {
		if (errno == EPROTONOSUPPORT)
			return fail(errbuf, errlen, EPROTONOSUPPORT,
				    "the kernel has no nfnetlink (CONFIG_NETFILTER_NETLINK): the sandbox's network rules "
				    "cannot be installed");
		return -1;
	}
	if (nl_send(fd, batch, len) < 0)
		return fail(errbuf, errlen, errno, "cannot send the nftables batch (%zu bytes, %zu messages)", len, st.n);

	deadline = monotonic_ms() + ACK_TIMEOUT_MS;
	for (;;) {
		/* Once every required ack is in, whatever else is queued is read without waiting: the
		 * kernel queued it all before sendto() returned. */
		bool complete = batch_all_acked(&st) || st.first_error.error;
		ssize_t n = nl_recv(fd, in.buf, sizeof(in.buf), complete ? 0 : deadline);

		if (n < 0)
			return fail(errbuf, errlen, errno,
				    errno == ENOBUFS ? "nftables acks were lost (socket receive buffer overrun)"
						     : "cannot read the nftables acks");
		if (n == 0)
			break;
		if (for_each_ack(in.buf, (size_t)n, batch_on_ack, &st) < 0)
			return fail(errbuf, errlen, errno, "malformed answer to the nftables batch");
	}
	if (st.first_error.error) {
		const struct ack *a = &st.first_error;
		int e = a->error;
		uint16_t type = st.error_index < st.n ? st.msg[st.error_index].type : a->type;

		if (st.error_index == 0)
			return fail_plain(errbuf, errlen, e,
					  "nftables batch refused as a whole (error reported against NFNL_MSG_BATCH_BEGIN, "
					  "seq %u: commit or permission failure): %s%s%s",
					  a->seq, strerror(e), kernel_text(a, kt, sizeof(kt)), nft_hint(e, type));
		if (st.error_index == st.n)
			return fail_plain(errbuf, errlen, e, "nftables batch refused (ack for unknown seq %u, %s): %s%s%s",
					  a->seq, nft_msg_name(type), strerror(e), kernel_text(a, kt, sizeof(kt)),
					  nft_hint(e, type));
		return fail_plain(errbuf, errlen, e, "nftables batch: message %zu of %zu (%s, seq %u) refused: %s%s%s",
				  st.error_index + 1, st.n, nft_msg_name(type), a->seq, strerror(e),
				  kernel_text(a, kt, sizeof(kt)), nft_hint(e, type));
	}
	for (size_t i = 1; i + 1 < st.n; i++)
		if (!st.msg[i].acked)
			return fail(errbuf, errlen, ETIMEDOUT,
				    "nftables batch: no ack for message %zu of %zu (%s, seq %u) within %d ms", i + 1, st.n,
				    nft_msg_name(st.msg[i].type), st.msg[i].seq, ACK_TIMEOUT_MS);
	if (st.unknown_ack)
		return fail(errbuf, errlen, EBADMSG, "nftables batch: an ack names a sequence number the batch does not have");
	return 0;
}

int sbx_net_setup(const void *nft_batch, size_t len, char *errbuf, size_t errlen)
{
	cleanup_close int fd = -1;
	unsigned idx;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (!nft_batch)
		return fail(errbuf, errlen, EINVAL, "no nftables batch given: the sandbox's network must not start open");
	/* lo first (the rules need nothing from it), then the rules, then the routes: at no point is
	 * there a route without the rules. */
	idx = if_nametoindex("lo");
	if (idx == 0)
		return fail(errbuf, errlen, errno, "the network namespace has no lo device");
	fd = nl_open(NETLINK_ROUTE, "route", errbuf, errlen);
	if (fd < 0)
		return -1;
	if (lo_up(fd, (int)idx, errbuf, errlen) < 0)
		return -1;
	if (apply_batch(nft_batch, len, errbuf, errlen) < 0)
		return -1;
	return setup_routes(fd, (int)idx, errbuf, errlen);
}

/* ---- listeners ---- */

static int listen_tcp(int family, const void *addr, uint16_t port, int *out, const char *what, bool optional,
		      char *errbuf, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;
	cleanup_close int fd = -1;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
		sl = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
		sl = sizeof(*sin6);
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		if (optional && errno == EAFNOSUPPORT)
			return 0;
		return fail(errbuf, errlen, errno, "cannot create the %s socket", what);
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return fail(errbuf, errlen, errno, "cannot set SO_REUSEADDR on the %s socket", what);
	if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		return fail(errbuf, errlen, errno, "cannot set IPV6_V6ONLY on the %s socket", what);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
		/* ::1 missing: IPv6 is off in this namespace, and the rules reject IPv6 anyway. */
		if (optional && errno == EADDRNOTAVAIL)
			return 0;
		return fail(errbuf, errlen, errno, "cannot bind the %s socket", what);
	}
	if (listen(fd, LISTEN_BACKLOG) < 0)
		return fail(errbuf, errlen, errno, "cannot listen on the %s socket", what);
	*out = take_fd(fd);
	return 0;
}

static int bind_dns(int *out, char *errbuf, size_t errlen)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(SBX_NET_DNS_PORT),
				  .sin_addr.s_addr = htonl(SBX_NET_DNS_ADDR_HOST)};
	cleanup_close int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return fail(errbuf, errlen, errno, "cannot create the DNS socket (UDP %s:%d)", SBX_NET_DNS_ADDR_STR,
			    SBX_NET_DNS_PORT);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return fail(errbuf, errlen, errno, "cannot bind the DNS socket (UDP %s:%d)%s", SBX_NET_DNS_ADDR_STR,
			    SBX_NET_DNS_PORT,
			    errno == EACCES ? " (port 53 needs CAP_NET_BIND_SERVICE in the sandbox's user namespace)" : "");
	*out = take_fd(fd);
	return 0;
}

void sbx_net_listeners_close(struct sbx_net_listeners *l)
{
	close_and_reset(l->forward);
	close_and_reset(l->transparent4);
	close_and_reset(l->transparent6);
	close_and_reset(l->dns);
}

int sbx_net_listeners(struct sbx_net_listeners *out, uint16_t explicit_port, uint16_t transparent_port,
		      char *errbuf, size_t errlen)
{
	struct in_addr lo4 = {.s_addr = htonl(INADDR_LOOPBACK)};
	char what[64];

	out->forward = out->transparent4 = out->transparent6 = out->dns = -1;
	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (explicit_port == 0 || transparent_port == 0 || explicit_port == transparent_port)
		return fail(errbuf, errlen, EINVAL,
			    "proxy ports %u (forward) and %u (transparent) must be non-zero and different", explicit_port,
			    transparent_port);
	snprintf(what, sizeof(what), "forward proxy (TCP 127.0.0.1:%u)", explicit_port);
	if (listen_tcp(AF_INET, &lo4, explicit_port, &out->forward, what, false, errbuf, errlen) < 0)
		goto err;
	snprintf(what, sizeof(what), "transparent proxy (TCP 127.0.0.1:%u)", transparent_port);
	if (listen_tcp(AF_INET, &lo4, transparent_port, &out->transparent4, what, false, errbuf, errlen) < 0)
		goto err;
	snprintf(what, sizeof(what), "transparent proxy (TCP [::1]:%u)", transparent_port);
	if (listen_tcp(AF_INET6, &in6addr_loopback, transparent_port, &out->transparent6, what, true, errbuf, errlen) <
	    0)
		goto err;
	if (bind_dns(&out->dns, errbuf, errlen) < 0)
		goto err;
	return 0;
err:;
	int e = errno;

	sbx_net_listeners_close(out);
	errno = e;
	return -1;
}
