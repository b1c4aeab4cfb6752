/* tls_client.c - verified TLS client contexts for the proxy (see tls_client.h). */
#include "tls_client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sbx_tls_client {
	SSL_CTX *ctx;
};

int sbx_tls_client_new(const char *extra_ca_bundle, struct sbx_tls_client **out, sbx_err *err)
{
	struct sbx_tls_client *t = calloc(1, sizeof(*t));
	unsigned long e;

	if (!t)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx)
		goto ssl_fail;
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_set_default_verify_paths(t->ctx) != 1)
		goto ssl_fail;
	if (extra_ca_bundle && *extra_ca_bundle && SSL_CTX_load_verify_locations(t->ctx, extra_ca_bundle, NULL) != 1) {
		char why[256];
		e = ERR_get_error();
		ERR_error_string_n(e, why, sizeof(why));
		ERR_clear_error();
		SSL_CTX_free(t->ctx);
		free(t);
		return sbx_err_set(err, SBX_E_INVALID, "the CA bundle %s cannot be used: %s", extra_ca_bundle, why);
	}
	*out = t;
	return 0;
ssl_fail:
	e = ERR_get_error();
	ERR_clear_error();
	if (t->ctx)
		SSL_CTX_free(t->ctx);
	free(t);
	return sbx_err_set(err, SBX_E_INTERNAL, "TLS client setup: %s", ERR_reason_error_string(e));
}

void sbx_tls_client_free(struct sbx_tls_client *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

SSL *sbx_tls_client_ssl(struct sbx_tls_client *t, int fd, const char *host)
{
	SSL *ssl = SSL_new(t->ctx);
	unsigned char addr[16];
	bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;

	if (!ssl)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1)
		goto fail;
	if (is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1)
			goto fail;
	} else {
		/* Name checks per RFC 6125: no partial-label wildcards. */
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(ssl, host) != 1 || SSL_set_tlsext_host_name(ssl, host) != 1)
			goto fail;
	}
	SSL_set_connect_state(ssl);
	return ssl;
fail:
	ERR_clear_error();
	SSL_free(ssl);
	return NULL;
}

void sbx_tls_client_error(SSL *ssl, char *out, size_t n)
{
	long v = SSL_get_verify_result(ssl);
	unsigned long e = ERR_peek_error();

	if (v != X509_V_OK)
		snprintf(out, n, "certificate verification failed: %s", X509_verify_cert_error_string(v));
	else if (e)
		snprintf(out, n, "TLS handshake failed: %s", ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "?");
	else
		snprintf(out, n, "TLS handshake failed: the server closed the connection");
	ERR_clear_error();
}
