/* credinject.h - putting a secret into a request the proxy intercepted, and keeping it out of
 * what flows back.
 *
 * Rules (DESIGN.md "Credentials"): a secret goes only to the hosts of its service, only inside
 * TLS the proxy terminated and re-originated with a verified certificate. In the request, the
 * sandbox's placeholder is replaced wherever it appears in a header value, and the service's
 * header is added when the request lacks it. Anything the upstream sends back that contains the
 * secret has it masked (same length, so framing stays intact) before the sandbox sees it. */
#ifndef SBX_CREDINJECT_H
#define SBX_CREDINJECT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "http1.h"
#include "secrets.h"
#include "store.h"

struct json_t;

struct sbx_cred {
	enum sbx_inject_kind kind;
	char service[64];
	char header[64];
	char format[64];
	char *value;            /* the secret (owned); aws: "AKID:SECRET[:TOKEN]" */
	char placeholder[192];  /* what the sandbox holds (aws: the dummy access key id) */
	char placeholder2[192]; /* aws: the dummy secret key; "" otherwise */
};

/* Does a service host pattern ("api.x.com", "*.x.com", "**.x.com") cover host? */
bool sbx_host_pattern_match(const char *pattern, const char *host);

/* The credential for host in this sandbox (stored secrets: the sandbox's, else the global one;
 * built-in services and custom secrets). 1 = found (out filled, clear it), 0 = none, -1 = error. */
int sbx_cred_for_host(struct sbx_store *st, const char *sandbox_name, const char *sandbox_id, const char *host,
		      struct sbx_cred *out, sbx_err *err);
void sbx_cred_clear(struct sbx_cred *c);
/* The same from the host variables the CLI passed for this sandbox (a JSON object
 * {"NAME": "value"}), for built-in services only: used when nothing is stored. */
int sbx_cred_for_host_env(const struct json_t *env, const char *sandbox_id, const char *host, struct sbx_cred *out,
			  sbx_err *err);
/* Has the sandbox a value for this service (stored, or from the host variables)? */
bool sbx_cred_service_available(struct sbx_store *st, const struct json_t *env, const struct sbx_service *svc,
				const char *sandbox_name);

/* Writes the request's header fields with the credential applied into out (each as
 * "Name: value\r\n"), skipping fields for which skip(name) is true. Header credentials: the
 * placeholder is replaced in every value; the service header is added if missing. Returns 0 or
 * -1 (out of room). */
int sbx_cred_apply_headers(const struct sbx_cred *c, const char *host, const struct sbx_http_msg *m,
			   bool (*skip)(void *ud, struct sbx_http_str name), void *ud, sbx_buf *out);

/* AWS: the request's header fields, re-signed with the real keys (sigv4.h), into out.
 * authority is the Host value sent upstream, origin the request-target (path and query), body
 * the request body when the request carries no x-amz-content-sha256 (NULL otherwise). A request
 * the agent signed with another key than its placeholder, or did not sign, goes out as it is.
 * Refused (-1, err says why and what to do): presigned URLs, aws-chunked streaming uploads. */
int sbx_cred_sigv4_headers(const struct sbx_cred *c, const struct sbx_http_msg *m, const char *authority,
			   const char *origin, const char *body, size_t body_len,
			   bool (*skip)(void *ud, struct sbx_http_str name), void *ud, sbx_buf *out, sbx_err *err);
/* Does this AWS request need its body to be hashed (no x-amz-content-sha256 header)? */
bool sbx_cred_sigv4_needs_body(const struct sbx_http_msg *m);

/* Masks every occurrence of the secret (and of each part of an aws secret) in buf[0..len).
 * Returns how many were masked. */
size_t sbx_cred_scrub(const struct sbx_cred *c, char *buf, size_t len);
/* The longest string scrub looks for, 0 if none. */
size_t sbx_cred_scrub_window(const struct sbx_cred *c);
/* How many bytes at the end of buf could be the beginning of a secret: what a streaming writer
 * holds back until the next bytes (or the end) show whether it is one. Usually 0, so streamed
 * responses are not delayed. */
size_t sbx_cred_partial_tail(const struct sbx_cred *c, const char *buf, size_t len);

#endif
