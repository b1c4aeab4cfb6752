/* sigv4.h - AWS Signature Version 4: reading what the agent signed, and signing it again with the
 * real keys.
 *
 * The agent holds dummy AWS keys. Its SDK signs each request with them; the proxy checks nothing
 * of that signature (it cannot: the dummy secret is not a secret) but takes from it the parts the
 * SDK chose - the credential scope (date, region, service) and the list of signed headers - and
 * signs the request again with the real access key, secret and session token.
 *
 * References: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html and
 * the SigV4 test suite (aws-sig-v4-test-suite). Strings are bounded; everything parsed comes
 * from the sandbox. */
#ifndef SBX_SIGV4_H
#define SBX_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SBX_SIGV4_MAX_SIGNED_HEADERS 64

/* The parts of an "Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
 * SignedHeaders=a;b;c, Signature=hex" header. */
struct sbx_sigv4_auth {
	char access_key[128];
	char date[9];      /* YYYYMMDD */
	char region[64];
	char service[64];
	char signed_headers[1024]; /* "host;x-amz-date;..." lowercase, sorted, ';'-separated */
	char signature[65];
};

/* Parses an Authorization header value. Returns 0, or -1 with err naming what is malformed. */
int sbx_sigv4_parse_auth(const char *value, size_t len, struct sbx_sigv4_auth *out, sbx_err *err);

/* Is this request a presigned URL (X-Amz-Algorithm / X-Amz-Signature in the query)? */
bool sbx_sigv4_is_presigned(const char *query, size_t len);

/* The request to (re)sign. Header names are compared case-insensitively. */
struct sbx_sigv4_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

struct sbx_sigv4_request {
	const char *method;
	const char *path;   /* as sent (already URI-encoded by the client), without the query */
	size_t path_len;
	const char *query;  /* without '?', may be NULL */
	size_t query_len;
	const struct sbx_sigv4_header *headers;
	size_t nheaders;
	const char *payload_hash; /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD", or the value of
				   * x-amz-content-sha256 as sent */
	/* s3 does not normalise the path (no double-encoding, no dot-segment removal) */
	bool s3_style_path;
};

struct sbx_sigv4_creds {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL or "" when none */
};

/* Signs req for (date YYYYMMDD, amz_date YYYYMMDDTHHMMSSZ, region, service), over exactly the
 * given signed_headers list (which must include "host"; x-amz-security-token is added to it
 * when a session token is given and it is missing). Writes the new Authorization header value
 * into out. Returns 0 or -1 (err says why: a signed header missing from the request, ...). */
int sbx_sigv4_sign(const struct sbx_sigv4_request *req, const struct sbx_sigv4_creds *creds, const char *amz_date,
		   const char *region, const char *service, const char *signed_headers, char *out, size_t outlen,
		   sbx_err *err);

/* For tests and diagnostics: the canonical request and the string to sign that sign() uses. */
int sbx_sigv4_canonical_request(const struct sbx_sigv4_request *req, const char *signed_headers, char *out,
				size_t outlen, sbx_err *err);

/* Region and service from an AWS host name when the header's scope is not to be trusted or
 * absent ("ce.us-east-1.amazonaws.com" -> service "ce", region "us-east-1";
 * "cloudformation.eu-west-1.amazonaws.com"; "s3.amazonaws.com" -> "s3", "us-east-1";
 * "bucket.s3.eu-west-1.amazonaws.com" -> "s3"). Returns 0 or -1 when the host is not AWS. */
int sbx_sigv4_host_scope(const char *host, char *service, size_t slen, char *region, size_t rlen);

/* Hex SHA-256 of data (65 bytes with NUL). */
void sbx_sha256_hex(const void *data, size_t len, char out[65]);

#endif
