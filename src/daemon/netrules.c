/* netrules.c - the sandbox's nftables ruleset as a netlink batch (see netrules.h for the rules).
 *
 * Each rule is spelled out expression by expression, exactly as `nft --debug=netlink` compiles
 * the nft text in netrules.h (tests/unit/test_netrules.c compares the two, both in the bytes
 * built here and in what the kernel reports back after applying them). Two details matter:
 *  - In an inet table, "ip daddr" is only meaningful after "meta nfproto ipv4": the payload
 *    expression loads bytes at a network-header offset whatever the family, so every address
 *    match is preceded by its family check. "127.0.0.0/8" compiles to a one-byte compare of
 *    the first address byte.
 *  - "reject" in an inet table: "with tcp reset" needs a TCP packet (hence "meta l4proto tcp"
 *    before it), "with icmpx" is the family-neutral form that the kernel turns into ICMP or
 *    ICMPv6 "administratively prohibited" as the packet requires.
 *
 * libnftnl writes messages without bounds checks, so the batch lives in a buffer twice the cap
 * (libmnl's batch convention): a message that crosses the cap still fits, and
 * mnl_nlmsg_batch_next() reports the overflow. */
#include "netrules.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

/* Offsets inside the IPv4 and IPv6 headers and the UDP header. */
#define IPV4_DADDR_OFF 16
#define IPV6_DADDR_OFF 24
#define UDP_DPORT_OFF 2

/* Chain priorities, as nft spells them: "dstnat" for the output NAT hook, "filter". */
#define PRIO_NAT_OUT (-100)
#define PRIO_FILTER 0

/* ---- the batch ---- */

struct batch {
	struct mnl_nlmsg_batch *b;
	uint32_t seq;
};

/* Header for the next message, NLM_F_ACK always set so that the kernel answers every message
 * and the sender can prove each one was accepted. */
static struct nlmsghdr *msg_begin(struct batch *bt, uint16_t type, uint16_t flags)
{
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(bt->b), type, NFPROTO_INET, flags | NLM_F_ACK,
				     bt->seq++);
}

static int msg_end(struct batch *bt, sbx_err *err, const char *what)
{
	if (!mnl_nlmsg_batch_next(bt->b))
		return sbx_err_set(err, SBX_E_INTERNAL, "the nftables batch exceeds %d bytes at the %s", SBX_NET_BATCH_MAX,
				   what);
	return 0;
}

static int put_batch_marker(struct batch *bt, bool begin, sbx_err *err)
{
	void *at = mnl_nlmsg_batch_current(bt->b);
	struct nlmsghdr *nlh = begin ? nftnl_batch_begin(at, bt->seq++) : nftnl_batch_end(at, bt->seq++);

	nlh->nlmsg_flags |= NLM_F_ACK;
	return msg_end(bt, err, begin ? "batch start" : "batch end");
}

static int put_table(struct batch *bt, uint16_t type, uint16_t flags, sbx_err *err)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!t || nftnl_table_set_str(t, NFTNL_TABLE_NAME, SBX_NETRULES_TABLE) < 0) {
		if (t)
			nftnl_table_free(t);
		return sbx_err_sys(err, SBX_E_INTERNAL, ENOMEM, "cannot build the nftables table message");
	}
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nlh = msg_begin(bt, type, flags);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	return msg_end(bt, err, "table");
}

static int put_chain(struct batch *bt, const char *name, const char *type, int32_t prio, uint32_t policy,
		     sbx_err *err)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c || nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, SBX_NETRULES_TABLE) < 0 ||
	    nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name) < 0 || nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type) < 0) {
		if (c)
			nftnl_chain_free(c);
		return sbx_err_sys(err, SBX_E_INTERNAL, ENOMEM, "cannot build the nftables chain %s", name);
	}
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_LOCAL_OUT);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, policy);
	nlh = msg_begin(bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	return msg_end(bt, err, name);
}

/* ---- expressions ----
 * A rule under construction: expressions are added in order; the first allocation failure is
 * remembered and reported once, when the rule is put into the batch. */

struct rule {
	struct nftnl_rule *r;
	bool failed;
};

static void add(struct rule *ru, struct nftnl_expr *e)
{
	if (!e || !ru->r) {
		ru->failed = true;
		if (e)
			nftnl_expr_free(e);
		return;
	}
	nftnl_rule_add_expr(ru->r, e);
}

static struct nftnl_expr *expr_meta(uint32_t key)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	return e;
}

static struct nftnl_expr *expr_cmp_eq(const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	if (!e)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	if (nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len) < 0) {
		nftnl_expr_free(e);
		return NULL;
	}
	return e;
}

static struct nftnl_expr *expr_payload(uint32_t base, uint32_t offset, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	}
	return e;
}

static struct nftnl_expr *expr_verdict(int verdict)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	}
	return e;
}

static struct nftnl_expr *expr_load(uint32_t reg, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	if (!e)
		return NULL;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, reg);
	if (nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len) < 0) {
		nftnl_expr_free(e);
		return NULL;
	}
	return e;
}

static struct nftnl_expr *expr_reject(uint32_t type, uint8_t code)
{
	struct nftnl_expr *e = nftnl_expr_alloc("reject");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, type);
		nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, code);
	}
	return e;
}

/* meta nfproto == family */
static void match_family(struct rule *ru, uint8_t nfproto)
{
	add(ru, expr_meta(NFT_META_NFPROTO));
	add(ru, expr_cmp_eq(&nfproto, sizeof(nfproto)));
}

/* meta l4proto == proto */
static void match_l4proto(struct rule *ru, uint8_t proto)
{
	add(ru, expr_meta(NFT_META_L4PROTO));
	add(ru, expr_cmp_eq(&proto, sizeof(proto)));
}

/* ip daddr 127.0.0.0/8 */
static void match_ip_loopback(struct rule *ru)
{
	static const uint8_t net127 = 127;

	match_family(ru, NFPROTO_IPV4);
	add(ru, expr_payload(NFT_PAYLOAD_NETWORK_HEADER, IPV4_DADDR_OFF, 1));
	add(ru, expr_cmp_eq(&net127, sizeof(net127)));
}

/* ip6 daddr ::1 */
static void match_ip6_loopback(struct rule *ru)
{
	match_family(ru, NFPROTO_IPV6);
	add(ru, expr_payload(NFT_PAYLOAD_NETWORK_HEADER, IPV6_DADDR_OFF, sizeof(in6addr_loopback)));
	add(ru, expr_cmp_eq(&in6addr_loopback, sizeof(in6addr_loopback)));
}

/* meta l4proto tcp redirect to :port (proto-specified range, port in network order) */
static void do_redirect(struct rule *ru, uint16_t port)
{
	uint16_t be = htons(port);
	struct nftnl_expr *e;

	add(ru, expr_load(NFT_REG_1, &be, sizeof(be)));
	e = nftnl_expr_alloc("redir");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
	}
	add(ru, e);
}

/* dnat ip to addr:port (addr already in network order) */
static void do_dnat4(struct rule *ru, uint32_t addr_be, uint16_t port)
{
	uint16_t be = htons(port);
	struct nftnl_expr *e;

	add(ru, expr_load(NFT_REG_1, &addr_be, sizeof(addr_be)));
	add(ru, expr_load(NFT_REG_2, &be, sizeof(be)));
	e = nftnl_expr_alloc("nat");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG_2);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
	}
	add(ru, e);
}

static void rule_start(struct rule *ru, const char *chain)
{
	ru->failed = false;
	ru->r = nftnl_rule_alloc();
	if (!ru->r || nftnl_rule_set_str(ru->r, NFTNL_RULE_TABLE, SBX_NETRULES_TABLE) < 0 ||
	    nftnl_rule_set_str(ru->r, NFTNL_RULE_CHAIN, chain) < 0) {
		ru->failed = true;
		return;
	}
	nftnl_rule_set_u32(ru->r, NFTNL_RULE_FAMILY, NFPROTO_INET);
}

/* Appends the finished rule to the batch and frees it. */
static int rule_put(struct batch *bt, struct rule *ru, const char *what, sbx_err *err)
{
	struct nlmsghdr *nlh;

	if (ru->failed) {
		if (ru->r)
			nftnl_rule_free(ru->r);
		ru->r = NULL;
		return sbx_err_sys(err, SBX_E_INTERNAL, ENOMEM, "cannot build the nftables rule \"%s\"", what);
	}
	nlh = msg_begin(bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
	nftnl_rule_nlmsg_build_payload(nlh, ru->r);
	nftnl_rule_free(ru->r);
	ru->r = NULL;
	return msg_end(bt, err, what);
}

static int put_rules(struct batch *bt, const struct sbx_netrules *cfg, sbx_err *err)
{
	struct rule ru;

	/* chain nat_out */
	rule_start(&ru, SBX_NETRULES_NAT_CHAIN);
	match_ip_loopback(&ru);
	add(&ru, expr_verdict(NFT_RETURN));
	if (rule_put(bt, &ru, "ip daddr 127.0.0.0/8 return", err) < 0)
		return -1;

	rule_start(&ru, SBX_NETRULES_NAT_CHAIN);
	match_ip6_loopback(&ru);
	add(&ru, expr_verdict(NFT_RETURN));
	if (rule_put(bt, &ru, "ip6 daddr ::1 return", err) < 0)
		return -1;

	rule_start(&ru, SBX_NETRULES_NAT_CHAIN);
	match_l4proto(&ru, IPPROTO_TCP);
	do_redirect(&ru, cfg->transparent_port);
	if (rule_put(bt, &ru, "meta l4proto tcp redirect", err) < 0)
		return -1;

	rule_start(&ru, SBX_NETRULES_NAT_CHAIN);
	{
		uint16_t dport = htons(SBX_NET_DNS_PORT);

		match_family(&ru, NFPROTO_IPV4);
		match_l4proto(&ru, IPPROTO_UDP);
		add(&ru, expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, UDP_DPORT_OFF, sizeof(dport)));
		add(&ru, expr_cmp_eq(&dport, sizeof(dport)));
	}
	do_dnat4(&ru, cfg->dns_addr, cfg->dns_port);
	if (rule_put(bt, &ru, "meta nfproto ipv4 udp dport 53 dnat", err) < 0)
		return -1;

	/* chain filter_out */
	rule_start(&ru, SBX_NETRULES_FILTER_CHAIN);
	match_ip_loopback(&ru);
	add(&ru, expr_verdict(NF_ACCEPT));
	if (rule_put(bt, &ru, "ip daddr 127.0.0.0/8 accept", err) < 0)
		return -1;

	rule_start(&ru, SBX_NETRULES_FILTER_CHAIN);
	match_ip6_loopback(&ru);
	add(&ru, expr_verdict(NF_ACCEPT));
	if (rule_put(bt, &ru, "ip6 daddr ::1 accept", err) < 0)
		return -1;

	rule_start(&ru, SBX_NETRULES_FILTER_CHAIN);
	match_l4proto(&ru, IPPROTO_TCP);
	add(&ru, expr_reject(NFT_REJECT_TCP_RST, 0));
	if (rule_put(bt, &ru, "meta l4proto tcp reject with tcp reset", err) < 0)
		return -1;

	rule_start(&ru, SBX_NETRULES_FILTER_CHAIN);
	add(&ru, expr_reject(NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_ADMIN_PROHIBITED));
	return rule_put(bt, &ru, "reject with icmpx admin-prohibited", err);
}

int sbx_netrules_build(const struct sbx_netrules *cfg, sbx_buf *out, sbx_err *err)
{
	cleanup_free char *mem = NULL;
	struct batch bt = {.b = NULL, .seq = 1};
	int r = -1;

	if (cfg->transparent_port == 0)
		return sbx_err_set(err, SBX_E_INVALID, "the transparent proxy port is 0: pass the port the listener uses");
	if (cfg->dns_port == 0)
		return sbx_err_set(err, SBX_E_INVALID, "the DNS port is 0: pass SBX_NET_DNS_PORT");
	if ((ntohl(cfg->dns_addr) >> 24) != 127)
		return sbx_err_set(err, SBX_E_INVALID,
				   "the DNS address %u.%u.%u.%u is not in 127.0.0.0/8: the filter chain accepts only loopback "
				   "destinations (pass htonl(SBX_NET_DNS_ADDR_HOST))",
				   ntohl(cfg->dns_addr) >> 24, (ntohl(cfg->dns_addr) >> 16) & 255,
				   (ntohl(cfg->dns_addr) >> 8) & 255, ntohl(cfg->dns_addr) & 255);

	mem = calloc(2, SBX_NET_BATCH_MAX);
	if (!mem || !(bt.b = mnl_nlmsg_batch_start(mem, SBX_NET_BATCH_MAX)))
		return sbx_err_sys(err, SBX_E_INTERNAL, ENOMEM, "cannot allocate the nftables batch");

	if (put_batch_marker(&bt, true, err) < 0 ||
	    /* Replace, in one transaction, whatever "inet sbx" there is: create it if absent, delete
	     * it with everything in it, create it empty. */
	    put_table(&bt, NFT_MSG_NEWTABLE, NLM_F_CREATE, err) < 0 || put_table(&bt, NFT_MSG_DELTABLE, 0, err) < 0 ||
	    put_table(&bt, NFT_MSG_NEWTABLE, NLM_F_CREATE, err) < 0 ||
	    put_chain(&bt, SBX_NETRULES_NAT_CHAIN, "nat", PRIO_NAT_OUT, NF_ACCEPT, err) < 0 ||
	    put_chain(&bt, SBX_NETRULES_FILTER_CHAIN, "filter", PRIO_FILTER, NF_DROP, err) < 0 ||
	    put_rules(&bt, cfg, err) < 0 || put_batch_marker(&bt, false, err) < 0)
		goto out;

	sbx_buf_reset(out);
	if (sbx_buf_append(out, mnl_nlmsg_batch_head(bt.b), mnl_nlmsg_batch_size(bt.b)) < 0) {
		sbx_err_sys(err, SBX_E_INTERNAL, errno ? errno : E2BIG,
			    "the nftables batch (%zu bytes) does not fit the output buffer (cap %zu)",
			    mnl_nlmsg_batch_size(bt.b), out->max);
		goto out;
	}
	r = 0;
out:
	mnl_nlmsg_batch_stop(bt.b);
	return r;
}
