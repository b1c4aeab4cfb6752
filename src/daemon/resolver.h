/* resolver.h - upstream name resolution for the proxy, off the event loop.
 *
 * getaddrinfo blocks, so lookups run on a small pool of threads; results come back to the loop
 * through an eventfd and are delivered by callback on the loop's thread. A lookup can be
 * cancelled (its connection went away): its callback is then never called. Concurrent lookups
 * are capped; beyond the cap a lookup fails at once (EAI_AGAIN) rather than queueing without
 * bound. */
#ifndef SBX_RESOLVER_H
#define SBX_RESOLVER_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "err.h"
#include "loop.h"

#define SBX_RESOLVER_MAX_ADDRS 8
#define SBX_RESOLVER_MAX_PENDING 1024

struct sbx_resolved {
	size_t n;
	struct sockaddr_storage addrs[SBX_RESOLVER_MAX_ADDRS]; /* port filled in */
	socklen_t lens[SBX_RESOLVER_MAX_ADDRS];
	int gai_error; /* 0 on success (n > 0), else an EAI_* code */
};

struct sbx_resolver;
typedef void (*sbx_resolve_cb)(void *ud, const struct sbx_resolved *res);

int sbx_resolver_new(struct sbx_loop *loop, unsigned threads, struct sbx_resolver **out, sbx_err *err);
void sbx_resolver_free(struct sbx_resolver *r);
/* Starts a lookup of host (a name or an address literal) for port, TCP. Returns a handle (> 0)
 * for sbx_resolver_cancel; cb may run before this returns only for immediate failures (returns
 * 0 then). */
uint64_t sbx_resolver_lookup(struct sbx_resolver *r, const char *host, uint16_t port, sbx_resolve_cb cb, void *ud);
void sbx_resolver_cancel(struct sbx_resolver *r, uint64_t handle);

#endif
