/* netrules.h - the nftables ruleset that confines a sandbox's network namespace.
 *
 * The daemon builds the ruleset as raw netlink bytes (libnftnl); sbx-init, static and without
 * libraries, sends them unchanged on a NETLINK_NETFILTER socket inside the sandbox's namespace
 * (src/common/netsetup.h). In nft notation the batch installs:
 *
 *     table inet sbx {
 *         chain nat_out {
 *             type nat hook output priority -100; policy accept;
 *             ip daddr 127.0.0.0/8 return
 *             ip6 daddr ::1 return
 *             meta l4proto tcp redirect to :TRANSPARENT_PORT
 *             meta nfproto ipv4 udp dport 53 dnat ip to DNS_ADDR:DNS_PORT
 *         }
 *         chain filter_out {
 *             type filter hook output priority 0; policy drop;
 *             ip daddr 127.0.0.0/8 accept
 *             ip6 daddr ::1 accept
 *             meta l4proto tcp reject with tcp reset
 *             reject with icmpx admin-prohibited
 *         }
 *     }
 *
 * So: TCP to any non-loopback address of either family is redirected to the transparent
 * listener (127.0.0.1 or ::1, the kernel picks by family), IPv4 UDP to port 53 of any address
 * goes to the sandbox's resolver socket, and the filter chain (which runs after NAT) lets only
 * loopback destinations through: UDP, ICMP, and every other protocol of either family is
 * rejected with "administratively prohibited", and TCP that somehow escaped the redirect is
 * reset. IPv6 DNS is rejected like any other IPv6 UDP.
 *
 * Batch layout: BEGIN, NEWTABLE, DELTABLE, NEWTABLE, two NEWCHAIN, eight NEWRULE, END, with
 * sequence numbers 1, 2, ..., nlmsg_pid 0 and NLM_F_ACK on every message. The add/delete/add
 * prelude makes the batch replace any existing "inet sbx" table in the same transaction, so
 * applying it twice leaves exactly one copy of the rules. */
#ifndef SBX_NETRULES_H
#define SBX_NETRULES_H

#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "netsetup.h"

#define SBX_NETRULES_TABLE "sbx"
#define SBX_NETRULES_NAT_CHAIN "nat_out"
#define SBX_NETRULES_FILTER_CHAIN "filter_out"

struct sbx_netrules {
	uint16_t transparent_port; /* host order, non-zero: where redirected TCP lands */
	uint16_t dns_port;         /* host order, non-zero: SBX_NET_DNS_PORT */
	uint32_t dns_addr;         /* network order, in 127.0.0.0/8: htonl(SBX_NET_DNS_ADDR_HOST) */
};

/* Builds the batch into out (reset first). out's cap must allow the batch: SBX_NET_BATCH_MAX is
 * always enough. Fails with SBX_E_INVALID for a zero port or a DNS address outside 127.0.0.0/8
 * (the filter chain would drop the DNAT'ed queries), SBX_E_INTERNAL when out of memory or room. */
int sbx_netrules_build(const struct sbx_netrules *cfg, sbx_buf *out, sbx_err *err);

#endif
