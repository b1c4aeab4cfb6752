/* test_netrules.c - the sandbox's nftables batch (src/daemon/netrules.c) and its application
 * inside a network namespace (src/common/netsetup.c).
 *
 * Part one reads the batch bytes without a kernel: netlink framing, message order, sequence
 * numbers, flags, and every rule rendered by libnftnl and compared with what `nft --debug=netlink`
 * prints for the nft text in netrules.h (the expected listings below were taken from nft 1.0.6).
 *
 * Part two runs in a forked child that unshares a user and a network namespace (as root or as a
 * plain user), applies the batch with sbx_net_setup(), opens the listeners with
 * sbx_net_listeners(), and then behaves like an agent: TCP to public addresses of both families
 * must land on the transparent listener with the original destination recoverable, DNS to any
 * resolver must reach the DNS socket and its answer come back from the resolver's address, other
 * UDP and ICMP must fail, loopback must stay loopback; broken batches must be refused with a
 * message and leave the installed rules alone; the kernel's own listing of the rules must match
 * nft's. The child's observations travel to the parent over a pipe and become TAP lines there.
 * The child exits at the end, taking its namespaces and every socket with it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/capability.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "cleanup.h"
#include "daemon/netrules.h"
#include "netsetup.h"
#include "tap.h"
#include "util.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h */
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80 /* linux/netfilter_ipv6/ip6_tables.h */
#endif

#define TPORT 15001 /* transparent */
#define FPORT 3128  /* forward */

/* The expression lines of `nft --debug=netlink -f` for the rules in netrules.h, with TPORT
 * (15001 = 0x3a99, shown as the little-endian word 0x0000993a), and where it differs, the
 * kernel's listing of nft's own rules (`nft --debug=netlink list ruleset`). */
static const struct {
	const char *chain;
	const char *exprs;
	const char *kernel; /* how the kernel lists it back, where that differs (NULL: the same) */
} expected_rules[] = {
	{"nat_out", "  [ meta load nfproto => reg 1 ]\n"
		    "  [ cmp eq reg 1 0x00000002 ]\n"
		    "  [ payload load 1b @ network header + 16 => reg 1 ]\n"
		    "  [ cmp eq reg 1 0x0000007f ]\n"
		    "  [ immediate reg 0 return ]\n", NULL},
	{"nat_out", "  [ meta load nfproto => reg 1 ]\n"
		    "  [ cmp eq reg 1 0x0000000a ]\n"
		    "  [ payload load 16b @ network header + 24 => reg 1 ]\n"
		    "  [ cmp eq reg 1 0x00000000 0x00000000 0x00000000 0x01000000 ]\n"
		    "  [ immediate reg 0 return ]\n", NULL},
	{"nat_out", "  [ meta load l4proto => reg 1 ]\n"
		    "  [ cmp eq reg 1 0x00000006 ]\n"
		    "  [ immediate reg 1 0x0000993a ]\n"
		    "  [ redir proto_min reg 1 flags 0x2 ]\n",
	 /* the kernel fills in the maximum of a one-port range */
	 "  [ meta load l4proto => reg 1 ]\n"
	 "  [ cmp eq reg 1 0x00000006 ]\n"
	 "  [ immediate reg 1 0x0000993a ]\n"
	 "  [ redir proto_min reg 1 proto_max reg 1 flags 0x2 ]\n"},
	{"nat_out", "  [ meta load nfproto => reg 1 ]\n"
		    "  [ cmp eq reg 1 0x00000002 ]\n"
		    "  [ meta load l4proto => reg 1 ]\n"
		    "  [ cmp eq reg 1 0x00000011 ]\n"
		    "  [ payload load 2b @ transport header + 2 => reg 1 ]\n"
		    "  [ cmp eq reg 1 0x00003500 ]\n"
		    "  [ immediate reg 1 0x3500007f ]\n"
		    "  [ immediate reg 2 0x00003500 ]\n"
		    "  [ nat dnat ip addr_min reg 1 proto_min reg 2 flags 0x2 ]\n",
	 /* likewise for both ranges, and it flags the address range as given */
	 "  [ meta load nfproto => reg 1 ]\n"
	 "  [ cmp eq reg 1 0x00000002 ]\n"
	 "  [ meta load l4proto => reg 1 ]\n"
	 "  [ cmp eq reg 1 0x00000011 ]\n"
	 "  [ payload load 2b @ transport header + 2 => reg 1 ]\n"
	 "  [ cmp eq reg 1 0x00003500 ]\n"
	 "  [ immediate reg 1 0x3500007f ]\n"
	 "  [ immediate reg 2 0x00003500 ]\n"
	 "  [ nat dnat ip addr_min reg 1 addr_max reg 1 proto_min reg 2 proto_max reg 2 flags 0x3 ]\n"},
	{"filter_out", "  [ meta load nfproto => reg 1 ]\n"
		       "  [ cmp eq reg 1 0x00000002 ]\n"
		       "  [ payload load 1b @ network header + 16 => reg 1 ]\n"
		       "  [ cmp eq reg 1 0x0000007f ]\n"
		       "  [ immediate reg 0 accept ]\n", NULL},
	{"filter_out", "  [ meta load nfproto => reg 1 ]\n"
		       "  [ cmp eq reg 1 0x0000000a ]\n"
		       "  [ payload load 16b @ network header + 24 => reg 1 ]\n"
		       "  [ cmp eq reg 1 0x00000000 0x00000000 0x00000000 0x01000000 ]\n"
		       "  [ immediate reg 0 accept ]\n", NULL},
	{"filter_out", "  [ meta load l4proto => reg 1 ]\n"
		       "  [ cmp eq reg 1 0x00000006 ]\n"
		       "  [ reject type 1 code 0 ]\n", NULL},
	{"filter_out", "  [ reject type 2 code 3 ]\n", NULL},
};
#define N_RULES (sizeof(expected_rules) / sizeof(expected_rules[0]))

/* BEGIN, NEWTABLE, DELTABLE, NEWTABLE, 2 NEWCHAIN, 8 NEWRULE, END */
static const uint16_t expected_types[] = {
	NFNL_MSG_BATCH_BEGIN,
	NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE,
	NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELTABLE,
	NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE,
	NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWCHAIN,
	NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWCHAIN,
	NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE,
	NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE,
	NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE,
	NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE,
	NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE,
	NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE,
	NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE,
	NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE,
	NFNL_MSG_BATCH_END,
};
#define N_MSGS (sizeof(expected_types) / sizeof(expected_types[0]))

static struct sbx_netrules default_cfg(void)
{
	struct sbx_netrules c = {.transparent_port = TPORT, .dns_port = SBX_NET_DNS_PORT,
				 .dns_addr = htonl(SBX_NET_DNS_ADDR_HOST)};
	return c;
}

/* The rule's expression lines as libnftnl prints them (the header line, which for a rule read
 * back from the kernel also carries its handle, is dropped). */
static void render_rule(const struct nlmsghdr *h, char *chain, size_t chainlen, char *out, size_t outlen)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	char buf[4096];
	const char *nl, *c;

	out[0] = chain[0] = '\0';
	if (!r)
		return;
	if (!h) {
		nftnl_rule_free(r);
		return;
	}
	if (nftnl_rule_nlmsg_parse(h, r) == 0 && nftnl_rule_snprintf(buf, sizeof(buf), r, 0, 0) > 0 &&
	    (nl = strchr(buf, '\n'))) {
		sbx_strlcpy(out, nl + 1, outlen);
		c = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
		sbx_strlcpy(chain, c ? c : "", chainlen);
	}
	nftnl_rule_free(r);
}

/* ---- part one: the bytes ---- */

/* The i-th message (from 0) of a batch whose framing was checked, or NULL. */
static const struct nlmsghdr *nth_msg(const sbx_buf *b, size_t i)
{
	size_t off = 0;

	while (off + NLMSG_HDRLEN <= b->len) {
		const struct nlmsghdr *h = (const struct nlmsghdr *)(b->data + off);

		if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > b->len - off)
			return NULL;
		if (i-- == 0)
			return h;
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	return NULL;
}

static void test_batch_bytes(void)
{
	struct sbx_netrules cfg = default_cfg();
	sbx_err err = SBX_ERR_INIT;
	sbx_buf b;
	size_t off = 0, n = 0, rule = 0, chains = 0;
	bool framing = true, types = true, seqs = true, flags = true, pids = true;

	sbx_buf_init(&b, SBX_NET_BATCH_MAX);
	is_int(sbx_netrules_build(&cfg, &b, &err), 0, "batch builds (%s)", err.msg);
	ok(b.len > 0 && b.len <= SBX_NET_BATCH_MAX, "batch size %zu within the %d-byte cap", b.len, SBX_NET_BATCH_MAX);

	while (off < b.len) {
		const struct nlmsghdr *h = (const struct nlmsghdr *)(b.data + off);

		if (b.len - off < NLMSG_HDRLEN || h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > b.len - off) {
			framing = false;
			break;
		}
		if (n >= N_MSGS || h->nlmsg_type != expected_types[n])
			types = false;
		if (h->nlmsg_seq != n + 1)
			seqs = false;
		if ((h->nlmsg_flags & (NLM_F_REQUEST | NLM_F_ACK)) != (NLM_F_REQUEST | NLM_F_ACK))
			flags = false;
		if (h->nlmsg_pid != 0)
			pids = false;
		if (h->nlmsg_type == NFNL_MSG_BATCH_BEGIN) {
			const struct nfgenmsg *g = NLMSG_DATA(h);
			ok(h->nlmsg_len >= NLMSG_LENGTH(sizeof(*g)) && ntohs(g->res_id) == NFNL_SUBSYS_NFTABLES,
			   "BEGIN addresses the nf_tables subsystem");
		}
		if (h->nlmsg_type == (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE) ||
		    h->nlmsg_type == (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELTABLE)) {
			struct nftnl_table *t = nftnl_table_alloc();
			ok(t && nftnl_table_nlmsg_parse(h, t) == 0 && nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY) == NFPROTO_INET &&
				   strcmp(nftnl_table_get_str(t, NFTNL_TABLE_NAME), "sbx") == 0,
			   "message %zu names table inet sbx", n + 1);
			if (t)
				nftnl_table_free(t);
		}
		if (h->nlmsg_type == (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWCHAIN)) {
			struct nftnl_chain *c = nftnl_chain_alloc();
			bool nat = chains == 0;

			ok(c && nftnl_chain_nlmsg_parse(h, c) == 0 &&
				   strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME), nat ? "nat_out" : "filter_out") == 0 &&
				   strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE), nat ? "nat" : "filter") == 0 &&
				   nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM) == NF_INET_LOCAL_OUT &&
				   nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO) == (nat ? -100 : 0) &&
				   nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) == (nat ? NF_ACCEPT : NF_DROP),
			   "chain %s: type %s hook output priority %d policy %s", nat ? "nat_out" : "filter_out",
			   nat ? "nat" : "filter", nat ? -100 : 0, nat ? "accept" : "drop");
			if (c)
				nftnl_chain_free(c);
			chains++;
		}
		if (h->nlmsg_type == (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE)) {
			char chain[64], got[2048];

			render_rule(h, chain, sizeof(chain), got, sizeof(got));
			if (rule < N_RULES) {
				ok(strcmp(chain, expected_rules[rule].chain) == 0, "rule %zu is in chain %s (got %s)",
				   rule + 1, rule < 4 ? "nat_out" : "filter_out", chain);
				is_str(got, expected_rules[rule].exprs, "rule %zu matches nft's compilation", rule + 1);
			}
			rule++;
		}
		n++;
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	ok(framing && off == NLMSG_ALIGN(b.len) && off >= b.len, "message lengths add up to the batch length (%zu)",
	   b.len);
	is_int(n, N_MSGS, "batch holds %zu messages", N_MSGS);
	ok(types, "messages in order: BEGIN, NEWTABLE, DELTABLE, NEWTABLE, 2 NEWCHAIN, 8 NEWRULE, END");
	ok(seqs, "sequence numbers run 1, 2, ...");
	ok(flags, "every message has NLM_F_REQUEST | NLM_F_ACK");
	ok(pids, "nlmsg_pid is 0 everywhere");
	is_int(rule, N_RULES, "eight rules");
	sbx_buf_free(&b);
}

static void test_batch_params(void)
{
	struct sbx_netrules cfg = default_cfg();
	sbx_err err = SBX_ERR_INIT;
	sbx_buf b, small;
	char chain[64], got[2048];
	const struct nlmsghdr *h;

	sbx_buf_init(&b, SBX_NET_BATCH_MAX);
	/* Another transparent port changes the redirect (8443 = 0x20fb) and nothing else. */
	cfg.transparent_port = 8443;
	is_int(sbx_netrules_build(&cfg, &b, &err), 0, "batch with port 8443 builds");
	h = nth_msg(&b, 8);
	render_rule(h, chain, sizeof(chain), got, sizeof(got));
	ok(h && strstr(got, "[ immediate reg 1 0x0000fb20 ]") && strstr(got, "[ redir proto_min reg 1 flags 0x2 ]"),
	   "the redirect rule carries port 8443");

	/* A DNS target elsewhere: 127.0.0.1:5353 (0x14e9). */
	cfg = default_cfg();
	cfg.dns_addr = htonl(INADDR_LOOPBACK);
	cfg.dns_port = 5353;
	is_int(sbx_netrules_build(&cfg, &b, &err), 0, "batch with DNS 127.0.0.1:5353 builds");
	h = nth_msg(&b, 9);
	render_rule(h, chain, sizeof(chain), got, sizeof(got));
	ok(h && strstr(got, "[ cmp eq reg 1 0x00003500 ]") && strstr(got, "[ immediate reg 1 0x0100007f ]") &&
		   strstr(got, "[ immediate reg 2 0x0000e914 ]"),
	   "the DNS rule still matches port 53 and now DNATs to 127.0.0.1:5353");

	cfg = default_cfg();
	cfg.transparent_port = 0;
	sbx_err_clear(&err);
	ok(sbx_netrules_build(&cfg, &b, &err) == -1 && err.code == SBX_E_INVALID && strstr(err.msg, "port"),
	   "transparent port 0 refused (%s)", err.msg);
	cfg = default_cfg();
	cfg.dns_port = 0;
	sbx_err_clear(&err);
	ok(sbx_netrules_build(&cfg, &b, &err) == -1 && err.code == SBX_E_INVALID, "DNS port 0 refused (%s)", err.msg);
	cfg = default_cfg();
	cfg.dns_addr = htonl(0x08080808);
	sbx_err_clear(&err);
	ok(sbx_netrules_build(&cfg, &b, &err) == -1 && err.code == SBX_E_INVALID && strstr(err.msg, "8.8.8.8") &&
		   strstr(err.msg, "127.0.0.0/8"),
	   "DNS address outside 127.0.0.0/8 refused (%s)", err.msg);

	cfg = default_cfg();
	sbx_buf_init(&small, 256);
	sbx_err_clear(&err);
	ok(sbx_netrules_build(&cfg, &small, &err) == -1 && small.len == 0 && strstr(err.msg, "cap 256"),
	   "an output buffer too small for the batch is refused (%s)", err.msg);
	sbx_buf_free(&small);
	sbx_buf_free(&b);
}

/* ---- part two: in a namespace ---- */

static int child_out = -1;

/* In the child: "1 text", "0 text" or "S reason" (skip everything). */
static void report(char kind, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void report(char kind, const char *fmt, va_list ap)
{
	char line[768];
	int n;

	line[0] = kind;
	line[1] = ' ';
	n = vsnprintf(line + 2, sizeof(line) - 3, fmt, ap);
	if (n < 0)
		n = 0;
	n = n + 2 > (int)sizeof(line) - 2 ? (int)sizeof(line) - 2 : n + 2;
	for (int i = 2; i < n; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';
	(void)!write(child_out, line, (size_t)n);
}

static bool expect(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool expect(bool cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(cond ? '1' : '0', fmt, ap);
	va_end(ap);
	return cond;
}

static void skip_all(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void skip_all(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report('S', fmt, ap);
	va_end(ap);
}

static int run_child(const char *label, void (*fn)(void *), void *arg)
{
	static char buf[64 * 1024];
	char *line, *nl;
	size_t have = 0;
	int p[2], status = 0;
	pid_t pid;
	ssize_t n;

	fflush(stdout);
	if (pipe(p) < 0 || (pid = fork()) < 0) {
		ok(0, "%s: cannot start a child: %s", label, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		child_out = p[1];
		alarm(120); /* a hung check must not hang the suite */
		fn(arg);
		_exit(0);
	}
	close(p[1]);
	while (have < sizeof(buf) - 1 && (n = read(p[0], buf + have, sizeof(buf) - 1 - have)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		have += (size_t)n;
	}
	buf[have] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	for (line = buf; (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = '\0';
		if (line[0] == 'S')
			ok(1, "%s # SKIP %s", label, line + 2);
		else
			ok(line[0] == '1', "%s: %s", label, line + 2);
	}
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: child exited normally (status %#x)", label, status);
	return status;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -1;
	r = sbx_write_all(fd, s, strlen(s));
	close(fd);
	return r;
}

/* A user namespace in which we are root (mapped to our own ids) and a network namespace it owns. */
static int enter_namespaces(char *why, size_t whylen)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	char map[64];

	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0) {
		snprintf(why, whylen, "user namespaces unavailable: unshare: %s", strerror(errno));
		return -1;
	}
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
	if (write_file("/proc/self/setgroups", "deny") < 0 || write_file("/proc/self/uid_map", map) < 0) {
		snprintf(why, whylen, "cannot map our uid in the user namespace: %s", strerror(errno));
		return -1;
	}
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
	if (write_file("/proc/self/gid_map", map) < 0) {
		snprintf(why, whylen, "cannot map our gid in the user namespace: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int64_t now_ms(void)
{
	return (int64_t)sbx_monotonic_ms();
}

static bool readable(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & (POLLIN | POLLERR));
}

static socklen_t make_addr(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	inet_pton(AF_INET, ip, &s4->sin_addr);
	return sizeof(*s4);
}

static void fmt_addr(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, ntohs(s4->sin_port));
	} else {
		snprintf(out, len, "(family %d)", ss->ss_family);
	}
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* Non-blocking connect, bounded by timeout_ms. Returns the connected fd, or -1 with *e set. */
static int tcp_connect(const char *ip, uint16_t port, int timeout_ms, int *e)
{
	struct sockaddr_storage ss;
	socklen_t sl = make_addr(&ss, ip, port);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct pollfd p;
	socklen_t el = sizeof(*e);

	*e = 0;
	if (fd < 0) {
		*e = errno;
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		*e = errno;
		close(fd);
		return -1;
	}
	p = (struct pollfd){.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, timeout_ms) != 1) {
		*e = ETIMEDOUT;
		close(fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, e, &el) < 0 || *e) {
		if (!*e)
			*e = errno;
		close(fd);
		return -1;
	}
	return fd;
}

static int accept_within(int lfd, int timeout_ms)
{
	if (lfd < 0 || !readable(lfd, timeout_ms))
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* One byte string each way on a connected pair. */
static bool round_trip(int a, int b)
{
	char buf[16] = "";

	if (write(a, "ping", 4) != 4 || !readable(b, 1000) || read(b, buf, sizeof(buf)) != 4 || memcmp(buf, "ping", 4))
		return false;
	if (write(b, "pong", 4) != 4 || !readable(a, 1000) || read(a, buf, sizeof(buf)) != 4 || memcmp(buf, "pong", 4))
		return false;
	return true;
}

/* TCP to ip:port must arrive on `listener` with that original destination. */
static void check_redirect(const char *ip, uint16_t port, int listener, bool v6)
{
	struct sockaddr_storage want, orig, peer, local;
	socklen_t ol = sizeof(orig), pl = sizeof(peer), ll = sizeof(local);
	char got[80] = "?", w[80];
	int e, c, a;

	make_addr(&want, ip, port);
	fmt_addr(&want, w, sizeof(w));
	c = tcp_connect(ip, port, 1000, &e);
	if (!expect(c >= 0, "TCP connect to %s succeeds (%s)", w, c >= 0 ? "connected" : strerror(e)))
		return;
	a = accept_within(listener, 1000);
	if (expect(a >= 0, "TCP to %s arrives on the %s transparent listener", w, v6 ? "IPv6" : "IPv4")) {
		memset(&orig, 0, sizeof(orig));
		if (getsockopt(a, v6 ? SOL_IPV6 : SOL_IP, v6 ? IP6T_SO_ORIGINAL_DST : SO_ORIGINAL_DST, &orig, &ol) == 0)
			fmt_addr(&orig, got, sizeof(got));
		else
			snprintf(got, sizeof(got), "error %s", strerror(errno));
		expect(same_addr(&orig, &want), "%s returns %s (got %s)",
		       v6 ? "IP6T_SO_ORIGINAL_DST" : "SO_ORIGINAL_DST", w, got);
		expect(getpeername(a, (struct sockaddr *)&peer, &pl) == 0 &&
			       getsockname(c, (struct sockaddr *)&local, &ll) == 0 && same_addr(&peer, &local),
		       "the accepted connection is the one made to %s", w);
		expect(round_trip(c, a), "data flows both ways on the redirected connection to %s", w);
		close(a);
	}
	close(c);
}

/* DNS: a query to resolver:53 reaches the DNS socket; the answer sent back to the querier's
 * address is received from resolver:53. */
static void check_dns(int dns, const char *resolver)
{
	struct sockaddr_storage dst, from, local, src;
	socklen_t dl = make_addr(&dst, resolver, 53), fl = sizeof(from), ll = sizeof(local), sl = sizeof(src);
	char q[32], buf[64] = "", a1[80], a2[80];
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ssize_t n;

	snprintf(q, sizeof(q), "query for %s", resolver);
	bool sent = u >= 0 && connect(u, (struct sockaddr *)&dst, dl) == 0 && send(u, q, strlen(q), 0) == (ssize_t)strlen(q);

	if (!expect(sent, "UDP query to %s:53 sent (%s)", resolver, sent ? "ok" : strerror(errno))) {
		if (u >= 0)
			close(u);
		return;
	}
	n = readable(dns, 1000) ? recvfrom(dns, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &fl) : -1;
	if (!expect(n == (ssize_t)strlen(q) && memcmp(buf, q, (size_t)n) == 0, "the query to %s:53 arrives on the DNS socket",
		    resolver)) {
		close(u);
		return;
	}
	getsockname(u, (struct sockaddr *)&local, &ll);
	fmt_addr(&from, a1, sizeof(a1));
	fmt_addr(&local, a2, sizeof(a2));
	expect(same_addr(&from, &local), "it comes from the querier's address %s (got %s)", a2, a1);
	expect(sendto(dns, "answer", 6, 0, (struct sockaddr *)&from, fl) == 6, "the DNS socket answers with sendto");
	memset(buf, 0, sizeof(buf));
	n = readable(u, 1000) ? recvfrom(u, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&src, &sl) : -1;
	fmt_addr(&src, a1, sizeof(a1));
	expect(n == 6 && memcmp(buf, "answer", 6) == 0, "the querier receives the answer");
	expect(n == 6 && same_addr(&src, &dst), "the answer comes from %s:53 (got %s)", resolver, n == 6 ? a1 : "nothing");
	close(u);
}

/* UDP to ip:port (not DNS) must fail promptly, on send or on the following recv. */
static void check_udp_blocked(const char *ip, uint16_t port)
{
	struct sockaddr_storage dst;
	socklen_t dl = make_addr(&dst, ip, port);
	int u = socket(dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int64_t t0 = now_ms();
	const char *where = "nowhere";
	int e = 0;
	char buf[16];

	bool conn = u >= 0 && connect(u, (struct sockaddr *)&dst, dl) == 0;

	if (!expect(conn, "UDP socket connected to %s:%u (%s)", ip, port, conn ? "ok" : strerror(errno))) {
		if (u >= 0)
			close(u);
		return;
	}
	if (send(u, "x", 1, 0) < 0) {
		e = errno;
		where = "send";
	} else if (readable(u, 1000) && recv(u, buf, sizeof(buf), MSG_DONTWAIT) < 0) {
		e = errno;
		where = "recv";
	}
	expect(e != 0 && now_ms() - t0 < 1000, "UDP to %s:%u fails within a second (on %s: %s, %lld ms)", ip, port, where,
	       e ? strerror(e) : "no error", (long long)(now_ms() - t0));
	close(u);
}

/* An ICMP echo must not get an answer from a public address (the control: 127.0.0.1 answers). */
static void check_icmp(void)
{
	struct sockaddr_storage dst;
	struct icmphdr req = {.type = ICMP_ECHO, .un.echo.sequence = htons(1)};
	char buf[256];
	int s;

	/* Let our (namespaced) group open ping sockets, so that the rules are what stops ICMP. */
	if (write_file("/proc/sys/net/ipv4/ping_group_range", "0 0") < 0)
		expect(true, "note: cannot widen ping_group_range (%s): ping sockets may be refused outright", strerror(errno));
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (s < 0) {
		expect(true, "ICMP socket cannot be created (%s): no ICMP at all", strerror(errno));
		return;
	}
	socklen_t dl = make_addr(&dst, "127.0.0.1", 0);
	bool local = sendto(s, &req, sizeof(req), 0, (struct sockaddr *)&dst, dl) == sizeof(req) && readable(s, 1000) &&
		     recv(s, buf, sizeof(buf), MSG_DONTWAIT) >= (ssize_t)sizeof(req) &&
		     ((struct icmphdr *)buf)->type == ICMP_ECHOREPLY;
	expect(local, "control: an ICMP echo to 127.0.0.1 is answered");

	dl = make_addr(&dst, "8.8.8.8", 0);
	req.un.echo.sequence = htons(2);
	int64_t t0 = now_ms();
	ssize_t w = sendto(s, &req, sizeof(req), 0, (struct sockaddr *)&dst, dl);
	int e = w < 0 ? errno : 0;
	bool reply = false;

	if (w >= 0 && readable(s, 500)) {
		ssize_t n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
		reply = n >= (ssize_t)sizeof(req) && ((struct icmphdr *)buf)->type == ICMP_ECHOREPLY;
		if (n < 0)
			e = errno;
	}
	expect(!reply && e != 0, "ICMP echo to 8.8.8.8 gets no reply (%s after %lld ms)",
	       e ? strerror(e) : "no error either", (long long)(now_ms() - t0));
	close(s);
}

/* TCP to a loopback port stays there: no redirect. */
static void check_loopback(const struct sbx_net_listeners *l)
{
	struct sockaddr_storage ss, orig;
	socklen_t sl = make_addr(&ss, "127.0.0.1", 8080), ol = sizeof(orig);
	int one = 1, e, c, a;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	bool up = lfd >= 0 && setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
		  bind(lfd, (struct sockaddr *)&ss, sl) == 0 && listen(lfd, 16) == 0;

	if (!expect(up, "a test listener on 127.0.0.1:8080 (%s)", up ? "ok" : strerror(errno))) {
		if (lfd >= 0)
			close(lfd);
		return;
	}
	c = tcp_connect("127.0.0.1", 8080, 1000, &e);
	a = accept_within(lfd, 1000);
	expect(c >= 0 && a >= 0, "TCP to 127.0.0.1:8080 reaches the listener there (%s)", c < 0 ? strerror(e) : "ok");
	expect(!readable(l->transparent4, 100), "and not the transparent listener");
	memset(&orig, 0, sizeof(orig));
	if (a >= 0 && getsockopt(a, SOL_IP, SO_ORIGINAL_DST, &orig, &ol) == 0)
		expect(same_addr(&orig, &ss), "its original destination is 127.0.0.1:8080 (not NATed)");
	if (c >= 0 && a >= 0)
		expect(round_trip(c, a), "data flows both ways on the loopback connection");
	if (a >= 0)
		close(a);
	if (c >= 0)
		close(c);
	close(lfd);

	c = tcp_connect("127.0.0.1", FPORT, 1000, &e);
	a = accept_within(l->forward, 1000);
	expect(c >= 0 && a >= 0, "TCP to 127.0.0.1:%d reaches the forward proxy listener", FPORT);
	if (a >= 0)
		close(a);
	if (c >= 0)
		close(c);
}

/* The kernel's listing of table inet sbx, rule by rule, against nft's compilation. */
struct dump_state {
	size_t n;
	bool all_match;
	char first_diff[512];
};

static int dump_rule_cb(const struct nlmsghdr *h, void *data)
{
	struct dump_state *st = data;
	char chain[64], got[2048];

	render_rule(h, chain, sizeof(chain), got, sizeof(got));
	if (st->n >= N_RULES || strcmp(chain, expected_rules[st->n].chain) ||
	    strcmp(got, expected_rules[st->n].kernel ? expected_rules[st->n].kernel : expected_rules[st->n].exprs)) {
		if (st->all_match)
			snprintf(st->first_diff, sizeof(st->first_diff), "rule %zu in %s: %s", st->n + 1, chain, got);
		st->all_match = false;
	}
	st->n++;
	return MNL_CB_OK;
}

static void check_kernel_listing(void)
{
	char buf[32768];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	struct dump_state st = {.n = 0, .all_match = true};
	struct nftnl_rule *r = nftnl_rule_alloc();
	uint32_t seq = 42, portid;
	struct nlmsghdr *h;
	ssize_t n;
	int ret = MNL_CB_OK;

	if (!expect(nl && r && mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) == 0, "netfilter socket for the listing")) {
		if (nl)
			mnl_socket_close(nl);
		if (r)
			nftnl_rule_free(r);
		return;
	}
	portid = mnl_socket_get_portid(nl);
	h = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, seq);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, "sbx");
	nftnl_rule_nlmsg_build_payload(h, r);
	nftnl_rule_free(r);
	if (mnl_socket_sendto(nl, h, h->nlmsg_len) < 0) {
		expect(false, "rule dump request sent (%s)", strerror(errno));
		mnl_socket_close(nl);
		return;
	}
	while (ret > MNL_CB_STOP && (n = mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0)
		ret = mnl_cb_run(buf, (size_t)n, seq, portid, dump_rule_cb, &st);
	mnl_socket_close(nl);
	expect(ret >= 0, "the rule dump completes (%s)", ret < 0 ? strerror(errno) : "ok");
	expect(st.n == N_RULES, "the kernel lists exactly %zu rules in table inet sbx (got %zu)", N_RULES, st.n);
	expect(st.all_match, "each rule the kernel lists is what it lists for nft's compilation of netrules.h%s%s",
	       st.all_match ? "" : ": first difference ", st.first_diff);
}

/* A copy of the batch in which the first rule names a chain that does not exist. */
static void *batch_with_missing_chain(const sbx_buf *b)
{
	char *copy = malloc(b->len);
	size_t off = 0;

	if (!copy)
		return NULL;
	memcpy(copy, b->data, b->len);
	while (off < b->len) {
		struct nlmsghdr *h = (struct nlmsghdr *)(copy + off);

		if (h->nlmsg_type == (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE)) {
			char *p = memmem(h, h->nlmsg_len, "nat_out", 8);
			if (p)
				memcpy(p, "nat_xxx", 8);
			return p ? copy : (free(copy), NULL);
		}
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	free(copy);
	return NULL;
}

static void child_netns(void *arg)
{
	const sbx_buf *b = arg;
	struct sbx_net_listeners l;
	char why[256], eb[1024];
	int e, c;

	if (enter_namespaces(why, sizeof(why)) < 0) {
		skip_all("%s", why);
		return;
	}

	/* Before: no route, so a connect fails before any rule could act (why the routes exist). */
	c = tcp_connect("10.1.2.3", 80, 500, &e);
	expect(c < 0 && e == ENETUNREACH, "before setup, TCP to 10.1.2.3:80 fails with ENETUNREACH (%s)",
	       c < 0 ? strerror(e) : "connected");
	if (c >= 0)
		close(c);

	eb[0] = '\0';
	if (!expect(sbx_net_setup(b->data, b->len, eb, sizeof(eb)) == 0, "sbx_net_setup applies the batch (%s)", eb))
		return;
	if (!expect(sbx_net_listeners(&l, FPORT, TPORT, eb, sizeof(eb)) == 0, "sbx_net_listeners (%s)", eb))
		return;
	expect(l.forward >= 0 && l.transparent4 >= 0 && l.dns >= 0, "forward, transparent IPv4 and DNS sockets open");
	expect(l.transparent6 >= 0, "the IPv6 transparent listener is open (this namespace has ::1)");
	{
		int fl = fcntl(l.forward, F_GETFL), fd = fcntl(l.dns, F_GETFD);
		expect((fl & O_NONBLOCK) && (fd & FD_CLOEXEC), "listeners are non-blocking and close-on-exec");
	}
	{
		struct sbx_net_listeners again;
		expect(sbx_net_listeners(&again, FPORT, TPORT, eb, sizeof(eb)) == -1 && again.forward == -1 &&
			       again.dns == -1 && strstr(eb, "3128"),
		       "a second set on the same ports fails cleanly (%s)", eb);
		expect(sbx_net_listeners(&again, TPORT, TPORT, eb, sizeof(eb)) == -1 && errno == EINVAL,
		       "equal ports are refused (%s)", eb);
	}

	check_redirect("10.1.2.3", 80, l.transparent4, false);
	check_redirect("203.0.113.5", 443, l.transparent4, false);
	if (l.transparent6 >= 0)
		check_redirect("2001:db8::1", 443, l.transparent6, true);
	check_dns(l.dns, "8.8.8.8");
	check_dns(l.dns, "192.0.2.53");
	check_udp_blocked("8.8.8.8", 123);
	check_udp_blocked("2001:db8::1", 53);
	check_icmp();
	check_loopback(&l);
	check_kernel_listing();

	/* Broken batches: refused with a message, and the installed rules stay as they are. */
	eb[0] = '\0';
	expect(sbx_net_setup(b->data, b->len - NLMSG_ALIGN(NLMSG_LENGTH(sizeof(struct nfgenmsg))), eb, sizeof(eb)) ==
			       -1 &&
		       strstr(eb, "NFNL_MSG_BATCH_END"),
	       "a batch without its END is refused before sending (%s)", eb);
	eb[0] = '\0';
	expect(sbx_net_setup(b->data, b->len - 7, eb, sizeof(eb)) == -1 && strstr(eb, "length"),
	       "a batch cut mid-message is refused (%s)", eb);
	eb[0] = '\0';
	expect(sbx_net_setup(b->data, 10, eb, sizeof(eb)) == -1 && eb[0], "a 10-byte batch is refused (%s)", eb);
	eb[0] = '\0';
	expect(sbx_net_setup(b->data + 20, b->len - 20, eb, sizeof(eb)) == -1 && strstr(eb, "first message"),
	       "a batch without its BEGIN is refused (%s)", eb);
	{
		char *copy = malloc(b->len);
		struct nlmsghdr *h;

		if (copy) {
			memcpy(copy, b->data, b->len);
			h = (struct nlmsghdr *)(void *)(copy + ((const char *)nth_msg(b, 6) - b->data));
			h->nlmsg_flags &= (uint16_t)~NLM_F_ACK;
			eb[0] = '\0';
			expect(sbx_net_setup(copy, b->len, eb, sizeof(eb)) == -1 && strstr(eb, "message 7") &&
				       strstr(eb, "ack"),
			       "a message that asks for no ack is refused (%s)", eb);
			h->nlmsg_flags |= NLM_F_ACK;
			h->nlmsg_seq = 3;
			eb[0] = '\0';
			expect(sbx_net_setup(copy, b->len, eb, sizeof(eb)) == -1 && strstr(eb, "sequence number"),
			       "a repeated sequence number is refused (%s)", eb);
			free(copy);
		}
	}
	{
		void *bad = batch_with_missing_chain(b);
		int r;

		eb[0] = '\0';
		errno = 0;
		r = bad ? sbx_net_setup(bad, b->len, eb, sizeof(eb)) : 0;
		e = errno;
		expect(bad && r == -1 && e == ENOENT && strstr(eb, "NFT_MSG_NEWRULE") && strstr(eb, "seq 7"),
		       "a rule in a missing chain is refused by the kernel, naming the message (%s)", eb);
		free(bad);
	}
	/* That batch began by deleting the table: the transaction was all or nothing. */
	check_redirect("198.51.100.7", 8080, l.transparent4, false);

	/* Applying the good batch again replaces the table: still eight rules, still working. */
	eb[0] = '\0';
	expect(sbx_net_setup(b->data, b->len, eb, sizeof(eb)) == 0, "applying the batch a second time succeeds (%s)", eb);
	check_kernel_listing();
	check_redirect("10.1.2.3", 80, l.transparent4, false);
	check_udp_blocked("8.8.8.8", 123);

	/* Without CAP_NET_ADMIN nothing can be changed, and the call says why. */
	{
		struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
		struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];

		memset(none, 0, sizeof(none));
		if (expect(syscall(SYS_capset, &hdr, none) == 0, "dropped every capability")) {
			eb[0] = '\0';
			errno = 0;
			int r = sbx_net_setup(b->data, b->len, eb, sizeof(eb));
			e = errno;
			expect(r == -1 && e == EPERM && strstr(eb, "Operation not permitted"),
			       "without CAP_NET_ADMIN sbx_net_setup fails with EPERM (%s)", eb);
			check_redirect("10.1.2.3", 80, l.transparent4, false);
		}
	}

	sbx_net_listeners_close(&l);
	expect(l.forward == -1 && l.transparent4 == -1 && l.transparent6 == -1 && l.dns == -1,
	       "sbx_net_listeners_close resets every field");
	sbx_net_listeners_close(&l);
}

/* A namespace with IPv6 disabled: setup still succeeds, there is no IPv6 listener, and IPv6
 * traffic goes nowhere. */
static void child_netns_no_ipv6(void *arg)
{
	const sbx_buf *b = arg;
	static const char *const knobs[] = {"/proc/sys/net/ipv6/conf/all/disable_ipv6",
					    "/proc/sys/net/ipv6/conf/default/disable_ipv6",
					    "/proc/sys/net/ipv6/conf/lo/disable_ipv6"};
	struct sbx_net_listeners l;
	char why[256], eb[1024];
	int e, c;

	if (enter_namespaces(why, sizeof(why)) < 0) {
		skip_all("%s", why);
		return;
	}
	if (access("/proc/sys/net/ipv6", F_OK) == 0) {
		for (size_t i = 0; i < SBX_ARRAY_LEN(knobs); i++)
			if (write_file(knobs[i], "1") < 0) {
				skip_all("cannot disable IPv6 in the namespace (%s: %s)", knobs[i], strerror(errno));
				return;
			}
	}
	eb[0] = '\0';
	if (!expect(sbx_net_setup(b->data, b->len, eb, sizeof(eb)) == 0, "sbx_net_setup without IPv6 succeeds (%s)", eb))
		return;
	if (!expect(sbx_net_listeners(&l, FPORT, TPORT, eb, sizeof(eb)) == 0, "sbx_net_listeners without IPv6 (%s)", eb))
		return;
	expect(l.transparent6 == -1 && l.forward >= 0 && l.transparent4 >= 0 && l.dns >= 0,
	       "no IPv6 listener, the three others open");
	c = tcp_connect("2001:db8::1", 443, 1000, &e);
	expect(c < 0, "TCP to [2001:db8::1]:443 fails (%s)", c < 0 ? strerror(e) : "connected");
	if (c >= 0)
		close(c);
	check_udp_blocked("8.8.8.8", 123);
	check_redirect("10.1.2.3", 80, l.transparent4, false);
	sbx_net_listeners_close(&l);
}

static void test_in_namespace(void)
{
	struct sbx_netrules cfg = default_cfg();
	sbx_err err = SBX_ERR_INIT;
	sbx_buf b;

	sbx_buf_init(&b, SBX_NET_BATCH_MAX);
	if (!ok(sbx_netrules_build(&cfg, &b, &err) == 0, "batch for the namespace test (%s)", err.msg))
		return;
	run_child("netns", child_netns, &b);
	run_child("netns without IPv6", child_netns_no_ipv6, &b);
	sbx_buf_free(&b);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_batch_bytes();
	test_batch_params();
	test_in_namespace();
	return done_testing();
}
