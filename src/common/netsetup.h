/* netsetup.h - the inside half of a sandbox's network path, run by sbx-init in the sandbox's own
 * network namespace (which holds only `lo`) while it still has CAP_NET_ADMIN there.
 *
 *     sbx_net_setup()      lo up, the nftables ruleset built by the daemon (src/daemon/netrules.h),
 *                          then `default dev lo` routes for IPv4 and IPv6
 *     sbx_net_listeners()  the sockets the daemon's proxy serves, created inside the namespace and
 *                          handed to the daemon (SCM_RIGHTS) by the caller
 *
 * Why routes to lo: without a route, connect() to 10.1.2.3 fails with ENETUNREACH before the
 * nat/output hook ever sees the packet, so the transparent redirect could not act. With
 * `default dev lo` every packet is generated, NAT redirects TCP to our listeners and DNS to our
 * resolver socket, and the filter chain rejects everything else; nothing can leave, because lo
 * is the only device. The rules go in before the routes, so no route exists without them.
 *
 * Linked into the static sbx-init: libc and linux headers only. Every function returns 0, or -1
 * with errno set and a message in errbuf that names the step, the netlink message and the error
 * (strerror appended). Any failure means the sandbox must not start (fail closed). */
#ifndef SBX_NETSETUP_H
#define SBX_NETSETUP_H

#include <stddef.h>
#include <stdint.h>

/* Where DNS queries end up: the rules DNAT every IPv4 UDP datagram to port 53 (whatever the
 * resolver address) to this address and port, where sbx_net_listeners() binds the DNS socket. */
#define SBX_NET_DNS_ADDR_STR "127.0.0.53"
#define SBX_NET_DNS_ADDR_HOST 0x7f000035u /* host byte order; htonl() it for struct sbx_netrules */
#define SBX_NET_DNS_PORT 53

/* Largest nftables batch sbx_net_setup() accepts, and the cap the daemon builds it under. */
#define SBX_NET_BATCH_MAX (16 * 1024)
/* Most netlink messages one batch may hold (BEGIN and END included). */
#define SBX_NET_BATCH_MAX_MSGS 64

/* Applies the network setup inside the current network namespace. nft_batch is a complete
 * NFNL_MSG_BATCH_BEGIN ... NFNL_MSG_BATCH_END batch (as built by sbx_netrules_build): it is
 * checked for shape first (lengths, BEGIN first and END last, NLM_F_ACK on every message in
 * between, increasing sequence numbers), then sent on a NETLINK_NETFILTER socket, and every ack
 * is read; one refused message fails the call, naming the message and the errno. The kernel
 * applies a batch as one transaction, so a failed call leaves the previous ruleset in place.
 *
 * IPv6: when the namespace has no IPv6 (kernel without it, or disabled on lo), the IPv6 default
 * route is skipped; IPv6 sockets then fail with ENETUNREACH, and the rules still reject IPv6.
 * Idempotent: lo up and the routes are replaced, and the batch built by sbx_netrules_build()
 * replaces the table wholesale. */
int sbx_net_setup(const void *nft_batch, size_t len, char *errbuf, size_t errlen);

/* The proxy's sockets inside the sandbox, all SOCK_NONBLOCK | SOCK_CLOEXEC; -1 when absent. */
struct sbx_net_listeners {
	int forward;      /* TCP 127.0.0.1:explicit_port, the HTTP(S)_PROXY forward proxy */
	int transparent4; /* TCP 127.0.0.1:transparent_port, redirected IPv4 connections */
	int transparent6; /* TCP [::1]:transparent_port (IPV6_V6ONLY), redirected IPv6 connections;
			   * -1 when the namespace has no IPv6 (::1 missing) */
	int dns;          /* UDP 127.0.0.53:53, the DNAT'ed DNS queries */
};

/* Creates the four sockets inside the current network namespace (binding port 53 needs
 * CAP_NET_BIND_SERVICE there). TCP listeners get SO_REUSEADDR and a backlog of 1024; the UDP
 * socket does not get SO_REUSEADDR, which on UDP would let a second socket bind the same
 * address and share its datagrams. Ports must be non-zero and different. On failure every
 * socket created so far is closed and out holds -1 everywhere. */
int sbx_net_listeners(struct sbx_net_listeners *out, uint16_t explicit_port, uint16_t transparent_port,
		      char *errbuf, size_t errlen);
/* Closes what is open and sets every field to -1 (safe to call twice). */
void sbx_net_listeners_close(struct sbx_net_listeners *l);

#endif
