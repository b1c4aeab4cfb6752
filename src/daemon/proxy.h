/* proxy.h - the egress proxy: the only way out of a sandbox.
 *
 * Each running sandbox hands the daemon four listening sockets that its init created inside
 * the sandbox's network namespace (see netsetup.h):
 *   explicit     127.0.0.1:3128   forward proxy (HTTP_PROXY / HTTPS_PROXY point here):
 *                                 absolute-URI HTTP requests and CONNECT
 *   transparent  127.0.0.1:15001  every other TCP connection, redirected by the sandbox's
 *                [::1]:15001      nftables rules; the original destination comes from
 *                                 SO_ORIGINAL_DST, the host name from the sandbox's own DNS
 *                                 answers (a per-sandbox fake address), SNI or Host
 *   dns          127.0.0.53:53    UDP; every DNS query of the sandbox ends here
 * so every connection is attributed to its sandbox by construction: a socket accepted on a
 * sandbox's listener can only come from inside that sandbox. The sandbox's network namespace
 * has no interface but loopback: without the daemon servicing these sockets nothing leaves.
 *
 * Pipeline per connection (DESIGN.md "Network path"): identify -> first request (forward URI,
 * CONNECT, or original destination + SNI/Host) -> network rule -> HTTP rule (plain HTTP) ->
 * upstream (overrides, upstream proxy) -> relay (splice for opaque tunnels) -> audit record.
 *
 * DNS answers are synthetic: an allowed name gets an address from 198.18.0.0/15 private to the
 * sandbox (no AAAA), a denied name NXDOMAIN. Queries are never forwarded anywhere, so DNS
 * cannot carry data out; the proxy resolves names itself when it connects.
 *
 * Configuration: config_dir/config.json, object "network" (all optional):
 *   "resolve":        ["HOST:PORT:ADDR", "HOST:PORT:ADDR:NEWPORT", "HOST:*:ADDR", ...]
 *                     host -> address overrides like curl's --resolve / --connect-to (split DNS,
 *                     local test servers); an override may point at loopback
 *   "upstream_proxy": "http://HOST:PORT"   chain every upstream connection through it
 *                     (default: the daemon's HTTPS_PROXY / https_proxy environment, if set)
 *   "ca_bundle":      "/path/extra-ca.pem"  trusted in addition to the system store wherever
 *                     the proxy verifies an upstream certificate */
#ifndef SBX_PROXY_H
#define SBX_PROXY_H

#include <stdint.h>

#include "err.h"

#define SBX_PROXY_EXPLICIT_PORT 3128
#define SBX_PROXY_TRANSPARENT_PORT 15001
#define SBX_PROXY_URL "http://127.0.0.1:3128"
/* Debian's system trust store; inside a sandbox it is the host's plus the sbx CA (bound over it
 * from state_dir/ca/sandbox-bundle.pem). */
#define SBX_SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

/* The listening sockets one sandbox hands over, in this order. */
enum { SBX_PXFD_EXPLICIT, SBX_PXFD_TRANSPARENT4, SBX_PXFD_TRANSPARENT6, SBX_PXFD_DNS, SBX_PXFD_COUNT };

/* Hard caps: a sandbox cannot make the daemon hold more than this. */
#define SBX_PROXY_MAX_CONNS_PER_SANDBOX 1024
#define SBX_PROXY_MAX_CONNS 16384
#define SBX_PROXY_MAX_FAKE_NAMES 65536 /* DNS names remembered per sandbox */

struct sbx_daemon;
struct sbx_proxy;

int sbx_proxy_new(struct sbx_daemon *d, struct sbx_proxy **out, sbx_err *err);
void sbx_proxy_free(struct sbx_proxy *p);

/* Start serving a sandbox's listeners (the proxy takes the fds; -1 entries are skipped, except
 * that the explicit and DNS ones are required). Called again for the same sandbox (re-adoption)
 * it replaces the old listeners. */
int sbx_proxy_attach(struct sbx_proxy *p, const char *sandbox_id, const char *sandbox_name,
		     int fds[SBX_PXFD_COUNT], sbx_err *err);
/* Stop serving a sandbox: its listeners are closed and its connections end at once. */
void sbx_proxy_detach(struct sbx_proxy *p, const char *sandbox_id);

/* KEY=VALUE entries every process in a sandbox gets (proxy variables, NULL-terminated). */
const char *const *sbx_proxy_env(void);

/* NULL when TLS interception works, else why not. */
const char *sbx_proxy_interception_error(const struct sbx_proxy *p);

struct sbx_proxy_stats {
	uint64_t conns_active, conns_total, dns_queries, refused, audit_rejected;
};
void sbx_proxy_stats(const struct sbx_proxy *p, struct sbx_proxy_stats *out);

#endif
