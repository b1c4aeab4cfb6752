/* tls_mitm.h - the proxy's TLS server side for interception: a per-install CA and leaf
 * certificates minted per host.
 *
 * The CA (ECDSA P-256, 10 years, name "sbx proxy CA <user>@<host> <date>") lives in
 * state_dir/ca/: ca.key (0600, readable by the user alone) and ca.pem (0644, the certificate
 * every sandbox trusts). It is created on first use, and refused (with the fix named) when the
 * files are unreadable, do not match, have expired, or are not a CA. Leaf certificates
 * (ECDSA P-256, valid from an hour ago for 30 days, SAN = the host name, serial random) are
 * minted on demand and kept in a bounded in-memory cache (LRU, SBX_MITM_CACHE entries) keyed by
 * host; a cached leaf close to expiry is minted again.
 *
 * Host names reach a certificate only after validation (a DNS host name: LDH labels, no
 * wildcard, no IP literal unless asked for as an IP).
 *
 * One struct sbx_mitm serves one thread (the proxy's loop): nothing in it is locked. */
#ifndef SBX_TLS_MITM_H
#define SBX_TLS_MITM_H

#include <openssl/ssl.h>
#include <stdbool.h>

#include "err.h"

#define SBX_MITM_CACHE 1024

struct sbx_mitm;

/* Opens (or creates) the CA in dir (created 0700 if missing). */
int sbx_mitm_open(const char *dir, struct sbx_mitm **out, sbx_err *err);
void sbx_mitm_free(struct sbx_mitm *m);

/* The CA certificate's path and PEM text (for the sandboxes' trust stores). */
const char *sbx_mitm_ca_path(const struct sbx_mitm *m);
const char *sbx_mitm_ca_pem(const struct sbx_mitm *m);

/* A server SSL for one intercepted connection to `host` on the accepted, non-blocking socket fd:
 * its certificate is the (cached or newly minted) leaf for host, chained to the CA. ALPN offers
 * http/1.1 only. NULL with err set when host is not a valid name or minting failed. */
SSL *sbx_mitm_server_ssl(struct sbx_mitm *m, int fd, const char *host, sbx_err *err);

/* For tests: mint (or fetch from the cache) the leaf for host; the caller gets a reference. */
X509 *sbx_mitm_leaf(struct sbx_mitm *m, const char *host, sbx_err *err);
/* Cache statistics (for diagnose and tests). */
void sbx_mitm_stats(const struct sbx_mitm *m, unsigned long *minted, unsigned long *hits);

/* For tests only. Create the CA files in dir as sbx_mitm_open would, but valid from
 * now+not_before_s to now+not_after_s (seconds, may be negative: an expired CA). */
int sbx_mitm_test_create_ca(const char *dir, long not_before_s, long not_after_s, sbx_err *err);
/* Shrink the leaf cache to cap entries (1..SBX_MITM_CACHE), evicting the least recently used. */
void sbx_mitm_test_set_cache_cap(struct sbx_mitm *m, unsigned cap);
/* Move this instance's clock by seconds (leaf validity and cache expiry), to test re-minting. */
void sbx_mitm_test_shift_clock(struct sbx_mitm *m, long seconds);

#endif
