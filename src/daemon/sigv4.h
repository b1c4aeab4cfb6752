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
/* Longest Authorization value parse_auth() accepts; an out buffer of this size always holds
 * what sign() writes. */
#define SBX_SIGV4_AUTH_MAX 4096
/* Longest canonical request sign() builds (path and query may grow 3x when encoded). */
#define SBX_SIGV4_CANONICAL_MAX (256 * 1024)

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

/* Parses an Authorization header value. Strict: the algorithm, the three fields (any order, each
 * once, ", " or "," between them), a valid calendar date, lowercase region and service, a sorted
 * list of distinct lowercase header names that includes host, 64 lowercase hex digits. Returns 0,
 * or -1 with err naming what is malformed (out is then zeroed). */
int sbx_sigv4_parse_auth(const char *value, size_t len, struct sbx_sigv4_auth *out, sbx_err *err);

/* Is this request a presigned URL (X-Amz-Algorithm / X-Amz-Signature / X-Amz-Credential in the
 * query)? Names are compared after percent-decoding and ignoring case: when in doubt, yes. */
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
 * into out. Returns 0 or -1 (err says why: a signed header missing from the request, ...).
 *
 * What the caller must make the forwarded request agree with:
 *  - x-amz-security-token is signed with creds->session_token, whatever the request carries (the
 *    agent's is a dummy): the caller sets the header to the real token. Without a session token
 *    the name is dropped from the list and the caller removes the header.
 *  - every x-amz-date header must equal amz_date, every x-amz-content-sha256 payload_hash.
 *  - payload_hash is 64 lowercase hex, UNSIGNED-PAYLOAD or STREAMING-UNSIGNED-PAYLOAD-TRAILER;
 *    the signed streaming forms (STREAMING-AWS4-HMAC-SHA256-PAYLOAD...) chain every chunk's
 *    signature to this one and are refused, as is a presigned query.
 * The list in the output is sorted; signed header values are trimmed and their inner runs of
 * spaces and tabs collapsed; a control character in one is an error. */
int sbx_sigv4_sign(const struct sbx_sigv4_request *req, const struct sbx_sigv4_creds *creds, const char *amz_date,
		   const char *region, const char *service, const char *signed_headers, char *out, size_t outlen,
		   sbx_err *err);

/* For tests and diagnostics: the canonical request and the string to sign that sign() uses.
 * canonical_request() takes the list as it is (no session-token handling: put the token header
 * in req). Canonical query: pieces split at '&' (empty ones skipped), name and value
 * percent-decoded (a malformed escape is an error, '+' is a plus) and encoded again with only
 * the RFC 3986 unreserved set left bare, sorted by name then value. */
int sbx_sigv4_canonical_request(const struct sbx_sigv4_request *req, const char *signed_headers, char *out,
				size_t outlen, sbx_err *err);
/* "AWS4-HMAC-SHA256\n" amz_date "\n" scope "\n" hex(SHA-256(canonical)), into out. */
int sbx_sigv4_string_to_sign(const char *canonical, size_t len, const char *amz_date, const char *region,
			     const char *service, char *out, size_t outlen, sbx_err *err);

/* Region and service from an AWS host name when the header's scope is not to be trusted or
 * absent ("ce.us-east-1.amazonaws.com" -> service "ce", region "us-east-1";
 * "cloudformation.eu-west-1.amazonaws.com"; "s3.amazonaws.com" -> "s3", "us-east-1";
 * "bucket.s3.eu-west-1.amazonaws.com" -> "s3"). Returns 0 or -1 when the host is not AWS.
 * The service is the signing name ("queue" -> "sqs", "s3-control" -> "s3", "sts-fips" ->
 * "sts"); a global endpoint ("iam.amazonaws.com") is us-east-1 (cn-north-1 under
 * amazonaws.com.cn). Also -1 where the name does not tell the scope: S3 Transfer Acceleration
 * (the bucket's region) and S3 website endpoints (not signed). A port is ignored. */
int sbx_sigv4_host_scope(const char *host, char *service, size_t slen, char *region, size_t rlen);

/* Hex SHA-256 of data (65 bytes with NUL); "" if libcrypto fails, which no caller can mistake
 * for a hash. */
void sbx_sha256_hex(const void *data, size_t len, char out[65]);

#endif
