/* tls_client.h - the proxy's TLS client side: connections it originates itself are always
 * verified.
 *
 * Trust: the system store (OpenSSL's default paths: /etc/ssl/certs on Debian) plus an optional
 * extra CA bundle from the daemon's configuration (corporate CAs, test CAs). Verification
 * covers the chain and the host name (or IP address) the proxy meant to reach; there is no
 * switch to turn it off. TLS 1.2 is the floor. */
#ifndef SBX_TLS_CLIENT_H
#define SBX_TLS_CLIENT_H

#include <openssl/ssl.h>

#include "err.h"

struct sbx_tls_client;

/* extra_ca_bundle: a PEM file, or NULL/"" for the system store alone. */
int sbx_tls_client_new(const char *extra_ca_bundle, struct sbx_tls_client **out, sbx_err *err);
void sbx_tls_client_free(struct sbx_tls_client *t);

/* A client SSL on a connected non-blocking socket, set to verify `host` (a DNS name, or an IP
 * literal) and to send it as SNI when it is a name. NULL on allocation failure. */
SSL *sbx_tls_client_ssl(struct sbx_tls_client *t, int fd, const char *host);

/* Why a handshake failed, for the refusal and the log: the verification result when the
 * certificate was the problem, else the first queued OpenSSL error. Clears the error queue. */
void sbx_tls_client_error(SSL *ssl, char *out, size_t n);

#endif
