/* sigv4.c - AWS Signature Version 4: reading the agent's Authorization header and signing the
 * request again with the real keys (see sigv4.h for the contract).
 *
 * The canonical request follows the AWS documentation ("Create a signed AWS API request") and
 * the choices of the SDKs where the documentation is silent, so that the signature we compute is
 * the one the service computes from the bytes we forward:
 *  - Path (not S3): split at '/', empty and "." segments dropped, ".." removes the segment before
 *    it; the leading '/' is kept, a trailing '/' only when a segment remains (botocore's and
 *    aws-sdk-js's remove_dot_segments). Each segment is then URI-encoded once more: the path
 *    arrived encoded, so "%20" becomes "%2520". S3 signs the path as sent.
 *  - Query: see sigv4.h. Decoding before encoding is what makes "%7e", "~" and "%7E" sign alike,
 *    as the service (which decodes the parameters) sees them alike.
 *  - Headers: the signed list, sorted; values of repeated headers joined with ',' in the order
 *    they came.
 * Everything read here comes from the sandbox, so each input has an explicit length and a cap,
 * every output goes through a bounded builder that fails instead of overflowing, and error
 * messages quote at most a short, sanitised piece of what was received. Nothing secret ever goes
 * into a message; key material is wiped after use. Crypto is OpenSSL's (EVP). */
#include "sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
#define TERMINATOR "aws4_request"
#define TOKEN_HEADER "x-amz-security-token"

#define NAME_MAX_LEN 128      /* a signed header name */
#define SCOPE_PART_MAX 63     /* region, service */
#define ACCESS_KEY_MAX 127
#define SECRET_MAX 256
#define TOKEN_MAX 16384       /* the secret store's cap on a whole value */
#define QUERY_MAX_PARAMS 1024
#define HOST_MAX 253

/* ---- character classes ---- */

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
	       c == '_' || c == '~';
}

/* RFC 9110 token characters, lowercase only (a signed header name as SDKs write it). */
static bool is_lower_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_scope_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_lower_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f');
}

static int hex_value(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A short, printable rendering of sandbox bytes for an error message: at most 40 bytes, anything
 * outside printable ASCII shown as '?', so that a message cannot carry a line break or an escape
 * sequence into a log. */
static const char *show(const char *s, size_t n, char buf[48])
{
	size_t i, k = 0;

	for (i = 0; i < n && k < 40; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (i < n) {
		memcpy(buf + k, "...", 3);
		k += 3;
	}
	buf[k] = '\0';
	return buf;
}

static bool span_eq(const char *s, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n == l && memcmp(s, lit, l) == 0;
}

/* ---- a bounded output buffer ---- */

struct sb {
	char *p;
	size_t len, cap; /* cap includes the NUL */
	bool over;
};

static void sb_init(struct sb *b, char *p, size_t cap)
{
	b->p = p;
	b->len = 0;
	b->cap = cap;
	b->over = cap == 0;
	if (cap)
		p[0] = '\0';
}

static void sb_mem(struct sb *b, const void *s, size_t n)
{
	if (b->over)
		return;
	if (n >= b->cap - b->len) {
		b->over = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_ch(struct sb *b, char c)
{
	sb_mem(b, &c, 1);
}

static void sb_str(struct sb *b, const char *s)
{
	sb_mem(b, s, strlen(s));
}

static void sb_pct(struct sb *b, unsigned char c)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3] = {'%', hex[c >> 4], hex[c & 15]};

	sb_mem(b, e, 3);
}

/* Every byte outside the unreserved set as %XX (uppercase), the way SigV4 wants it. */
static void sb_encode(struct sb *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c))
			sb_ch(b, (char)c);
		else
			sb_pct(b, c);
	}
}

/* ---- crypto (OpenSSL) ---- */

static int sha256(const void *data, size_t len, unsigned char md[32])
{
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return -1;
	return 0;
}

static int hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32])
{
	size_t outlen = 0;

	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen, msg, mlen, out, 32, &outlen) || outlen != 32)
		return -1;
	return 0;
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void sbx_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];

	if (sha256(data, len, md) < 0) {
		out[0] = '\0';
		return;
	}
	to_hex(md, sizeof(md), out);
}

/* ---- dates and scope parts ---- */

static int digits(const char *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* YYYYMMDD, a real calendar day. */
static bool valid_date(const char *s, size_t n)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d, max;

	if (n != 8 || (y = digits(s, 4)) < 0 || (m = digits(s + 4, 2)) < 0 || (d = digits(s + 6, 2)) < 0)
		return false;
	if (y < 1970 || m < 1 || m > 12 || d < 1)
		return false;
	max = mdays[m - 1];
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		max = 29;
	return d <= max;
}

/* YYYYMMDDTHHMMSSZ */
static bool valid_amz_date(const char *s)
{
	int h, mi, se;

	if (!s || strnlen(s, 17) != 16 || !valid_date(s, 8) || s[8] != 'T' || s[15] != 'Z')
		return false;
	h = digits(s + 9, 2);
	mi = digits(s + 11, 2);
	se = digits(s + 13, 2);
	return h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && se >= 0 && se <= 60;
}

static bool valid_scope_part(const char *s, size_t n)
{
	if (n == 0 || n > SCOPE_PART_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_scope_char((unsigned char)s[i]))
			return false;
	return true;
}

/* An access key id goes into the Credential field: visible ASCII without the separators of
 * that header. */
static bool valid_access_key(const char *s, size_t n)
{
	if (n == 0 || n > ACCESS_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || strchr("/,;=\"\\", c))
			return false;
	}
	return true;
}

/* ---- the signed header list ---- */

struct name {
	const char *s;
	size_t len;
};

struct names {
	size_t n;
	struct name v[SBX_SIGV4_MAX_SIGNED_HEADERS];
};

static int name_cmp(const void *a, const void *b)
{
	const struct name *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->s, y->s, n);

	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

static bool names_has(const struct names *h, const char *lit)
{
	for (size_t i = 0; i < h->n; i++)
		if (span_eq(h->v[i].s, h->v[i].len, lit))
			return true;
	return false;
}

/* Splits "a;b;c" into names (pointing into s). sorted_only: the list must already be sorted
 * (what an Authorization header carries); otherwise it is sorted here. Either way: lowercase
 * token names, no duplicates, host present, at most SBX_SIGV4_MAX_SIGNED_HEADERS. */
static int parse_names(const char *s, size_t len, bool sorted_only, struct names *h, sbx_err *err)
{
	char q[48];
	size_t i = 0;

	h->n = 0;
	if (len == 0)
		return sbx_err_set(err, SBX_E_INVALID, "the signed header list is empty: it must name at least host");
	while (i <= len) {
		size_t j = i;

		while (j < len && s[j] != ';')
			j++;
		if (j == i)
			return sbx_err_set(err, SBX_E_INVALID, "the signed header list '%s' has an empty name",
					   show(s, len, q));
		if (j - i > NAME_MAX_LEN)
			return sbx_err_set(err, SBX_E_INVALID, "a signed header name is longer than %d characters",
					   NAME_MAX_LEN);
		for (size_t k = i; k < j; k++)
			if (!is_lower_tchar((unsigned char)s[k]))
				return sbx_err_set(err, SBX_E_INVALID,
						   "the signed header name '%s' is not a lowercase header name",
						   show(s + i, j - i, q));
		if (h->n == SBX_SIGV4_MAX_SIGNED_HEADERS)
			return sbx_err_set(err, SBX_E_INVALID, "more than %d signed headers",
					   SBX_SIGV4_MAX_SIGNED_HEADERS);
		h->v[h->n++] = (struct name){s + i, j - i};
		i = j + 1;
	}
	if (!sorted_only)
		qsort(h->v, h->n, sizeof(h->v[0]), name_cmp);
	for (size_t k = 1; k < h->n; k++) {
		int c = name_cmp(&h->v[k - 1], &h->v[k]);
		if (c == 0)
			return sbx_err_set(err, SBX_E_INVALID, "the signed header '%s' is listed twice",
					   show(h->v[k].s, h->v[k].len, q));
		if (c > 0) {
			char q2[48];
			return sbx_err_set(err, SBX_E_INVALID, "the signed header list is not sorted ('%s' after '%s')",
					   show(h->v[k].s, h->v[k].len, q), show(h->v[k - 1].s, h->v[k - 1].len, q2));
		}
	}
	if (!names_has(h, "host"))
		return sbx_err_set(err, SBX_E_INVALID, "the signed header list does not include host, which SigV4 requires");
	return 0;
}

/* ---- canonical URI ---- */

struct seg {
	size_t off, len;
};

static int put_uri(struct sb *b, const char *path, size_t len, bool s3, sbx_err *err)
{
	struct seg *segs;
	size_t n = 0, i = 0;

	if (len == 0) {
		sb_ch(b, '/');
		return 0;
	}
	if (s3) {
		sb_mem(b, path, len);
		return 0;
	}
	/* non-empty segments are separated by '/': at most (len + 1) / 2 of them */
	segs = malloc((len / 2 + 1) * sizeof(*segs));
	if (!segs)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory normalising a %zu-byte path", len);
	while (i <= len) {
		size_t j = i;

		while (j < len && path[j] != '/')
			j++;
		if (span_eq(path + i, j - i, "..")) {
			if (n)
				n--;
		} else if (j > i && !span_eq(path + i, j - i, ".")) {
			segs[n++] = (struct seg){i, j - i};
		}
		i = j + 1;
	}
	if (path[0] == '/')
		sb_ch(b, '/');
	for (size_t k = 0; k < n; k++) {
		if (k)
			sb_ch(b, '/');
		sb_encode(b, path + segs[k].off, segs[k].len);
	}
	if (path[len - 1] == '/' && n)
		sb_ch(b, '/');
	free(segs);
	return 0;
}

/* ---- canonical query ---- */

struct qparam {
	size_t noff, nlen, voff, vlen; /* the encoded name and value in the scratch buffer */
	const char *name, *value;      /* set once the scratch buffer is complete */
};

static int qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	struct name xn = {x->name, x->nlen}, yn = {y->name, y->nlen}, xv = {x->value, x->vlen}, yv = {y->value, y->vlen};
	int c = name_cmp(&xn, &yn);

	return c ? c : name_cmp(&xv, &yv);
}

/* Decodes s[0..n) and encodes it again into b. */
static int recode(struct sb *b, const char *s, size_t n, sbx_err *err)
{
	char q[48];

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int hi = i + 2 < n ? hex_value((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < n ? hex_value((unsigned char)s[i + 2]) : -1;

			if (hi < 0 || lo < 0)
				return sbx_err_set(err, SBX_E_INVALID,
						   "the query has a malformed percent-escape at '%s'",
						   show(s + i, n - i < 3 ? n - i : 3, q));
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (is_unreserved(c))
			sb_ch(b, (char)c);
		else
			sb_pct(b, c);
	}
	return 0;
}

static int put_query(struct sb *out, const char *query, size_t len, sbx_err *err)
{
	struct qparam *params = NULL;
	char *scratch = NULL;
	struct sb s;
	size_t np = 0, i = 0, maxp;
	int rc = -1;

	if (!query || len == 0)
		return 0;
	if (len > SBX_SIGV4_CANONICAL_MAX)
		return sbx_err_set(err, SBX_E_INVALID, "the query is %zu bytes, more than %d", len, SBX_SIGV4_CANONICAL_MAX);
	maxp = len / 2 + 1;
	if (maxp > QUERY_MAX_PARAMS)
		maxp = QUERY_MAX_PARAMS;
	params = calloc(maxp, sizeof(*params));
	scratch = malloc(3 * len + 1);
	if (!params || !scratch) {
		sbx_err_set(err, SBX_E_INTERNAL, "out of memory for a %zu-byte query", len);
		goto out;
	}
	sb_init(&s, scratch, 3 * len + 1);
	while (i <= len) {
		size_t j = i, eq;
		size_t n0, v0;

		while (j < len && query[j] != '&')
			j++;
		if (j == i) { /* "a&&b", a leading or trailing '&': no parameter there */
			i = j + 1;
			continue;
		}
		if (np == maxp) {
			sbx_err_set(err, SBX_E_INVALID, "the query has more than %d parameters", QUERY_MAX_PARAMS);
			goto out;
		}
		for (eq = i; eq < j && query[eq] != '='; eq++)
			;
		n0 = s.len;
		if (recode(&s, query + i, eq - i, err) < 0)
			goto out;
		v0 = s.len;
		if (eq < j && recode(&s, query + eq + 1, j - eq - 1, err) < 0)
			goto out;
		params[np].noff = n0;
		params[np].nlen = v0 - n0;
		params[np].voff = v0;
		params[np].vlen = s.len - v0;
		np++;
		i = j + 1;
	}
	if (s.over) { /* cannot happen: every byte grows to at most three */
		sbx_err_set(err, SBX_E_INTERNAL, "the encoded query outgrew its buffer");
		goto out;
	}
	for (size_t k = 0; k < np; k++) {
		params[k].name = scratch + params[k].noff;
		params[k].value = scratch + params[k].voff;
	}
	qsort(params, np, sizeof(*params), qparam_cmp);
	for (size_t k = 0; k < np; k++) {
		if (k)
			sb_ch(out, '&');
		sb_mem(out, params[k].name, params[k].nlen);
		sb_ch(out, '=');
		sb_mem(out, params[k].value, params[k].vlen);
	}
	rc = 0;
out:
	free(params);
	free(scratch);
	return rc;
}

/* ---- canonical headers ---- */

/* Trimmed, inner runs of SP/HTAB collapsed to one space. */
static int put_header_value(struct sb *b, const struct name *hn, const char *v, size_t n, sbx_err *err)
{
	bool started = false, space = false;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == ' ' || c == '\t') {
			space = started;
			continue;
		}
		if (c < 0x20 || c == 0x7f)
			return sbx_err_set(err, SBX_E_INVALID, "the value of the signed header %.*s has a control character (0x%02x)",
					   (int)hn->len, hn->s, c);
		if (space)
			sb_ch(b, ' ');
		space = false;
		started = true;
		sb_ch(b, (char)c);
	}
	return 0;
}

static bool header_is(const struct sbx_sigv4_header *h, const char *s, size_t len)
{
	return h->name && h->name_len == len && strncasecmp(h->name, s, len) == 0;
}

static int check_payload_hash(const char *p, sbx_err *err)
{
	char q[48];
	size_t n;

	if (!p)
		return sbx_err_set(err, SBX_E_INVALID, "no payload hash given");
	n = strnlen(p, 65);
	if (n == 64) {
		size_t i;
		for (i = 0; i < 64 && is_lower_hex((unsigned char)p[i]); i++)
			;
		if (i == 64)
			return 0;
	}
	if (!strcmp(p, "UNSIGNED-PAYLOAD") || !strcmp(p, "STREAMING-UNSIGNED-PAYLOAD-TRAILER"))
		return 0;
	if (!strncmp(p, "STREAMING-", 10))
		return sbx_err_set(err, SBX_E_UNSUPPORTED,
				   "the payload is %s: each chunk carries a signature chained to the request's, so the "
				   "request cannot be re-signed; configure the client for unsigned payloads over HTTPS",
				   show(p, strnlen(p, 64), q));
	return sbx_err_set(err, SBX_E_INVALID,
			   "the payload hash '%s' is neither 64 lowercase hex digits nor UNSIGNED-PAYLOAD",
			   show(p, strnlen(p, 80), q));
}

static int build_canonical(const struct sbx_sigv4_request *req, const struct names *h, const char *token,
			   struct sb *b, sbx_err *err)
{
	char q[48];
	size_t mlen;

	if (!req || !req->method || (!req->path && req->path_len) || (!req->headers && req->nheaders))
		return sbx_err_set(err, SBX_E_INTERNAL, "sigv4: incomplete request description");
	mlen = strnlen(req->method, 33);
	if (mlen == 0 || mlen > 32)
		return sbx_err_set(err, SBX_E_INVALID, "the request method is empty or longer than 32 characters");
	for (size_t i = 0; i < mlen; i++) {
		unsigned char c = (unsigned char)req->method[i];
		if (!(c >= 'A' && c <= 'Z') && !is_lower_tchar(c))
			return sbx_err_set(err, SBX_E_INVALID, "the request method '%s' is not a token",
					   show(req->method, mlen, q));
	}
	if (check_payload_hash(req->payload_hash, err) < 0)
		return -1;
	if (req->path_len > SBX_SIGV4_CANONICAL_MAX)
		return sbx_err_set(err, SBX_E_INVALID, "the path is %zu bytes, more than %d", req->path_len,
				   SBX_SIGV4_CANONICAL_MAX);

	sb_mem(b, req->method, mlen);
	sb_ch(b, '\n');
	if (put_uri(b, req->path, req->path_len, req->s3_style_path, err) < 0)
		return -1;
	sb_ch(b, '\n');
	if (put_query(b, req->query, req->query ? req->query_len : 0, err) < 0)
		return -1;
	sb_ch(b, '\n');
	for (size_t k = 0; k < h->n; k++) {
		const struct name *hn = &h->v[k];
		size_t found = 0;

		sb_mem(b, hn->s, hn->len);
		sb_ch(b, ':');
		if (token && span_eq(hn->s, hn->len, TOKEN_HEADER)) {
			sb_str(b, token);
			sb_ch(b, '\n');
			continue;
		}
		for (size_t i = 0; i < req->nheaders; i++) {
			const struct sbx_sigv4_header *rh = &req->headers[i];

			if (!header_is(rh, hn->s, hn->len))
				continue;
			if (!rh->value && rh->value_len)
				return sbx_err_set(err, SBX_E_INTERNAL, "sigv4: header without a value pointer");
			if (found++)
				sb_ch(b, ',');
			if (put_header_value(b, hn, rh->value, rh->value_len, err) < 0)
				return -1;
		}
		if (!found)
			return sbx_err_set(err, SBX_E_INVALID,
					   "the signed header %.*s is not in the request: the list must name only headers "
					   "that are sent",
					   (int)hn->len, hn->s);
		sb_ch(b, '\n');
	}
	sb_ch(b, '\n');
	for (size_t k = 0; k < h->n; k++) {
		if (k)
			sb_ch(b, ';');
		sb_mem(b, h->v[k].s, h->v[k].len);
	}
	sb_ch(b, '\n');
	sb_str(b, req->payload_hash);
	if (b->over)
		return sbx_err_set(err, SBX_E_INVALID, "the canonical request does not fit in %zu bytes", b->cap);
	return 0;
}

int sbx_sigv4_canonical_request(const struct sbx_sigv4_request *req, const char *signed_headers, char *out,
				size_t outlen, sbx_err *err)
{
	struct names h;
	struct sb b;
	size_t len;

	if (!out || outlen == 0 || !signed_headers)
		return sbx_err_set(err, SBX_E_INTERNAL, "sigv4: no signed header list or output buffer");
	out[0] = '\0';
	len = strnlen(signed_headers, sizeof(((struct sbx_sigv4_auth *)0)->signed_headers));
	if (len == sizeof(((struct sbx_sigv4_auth *)0)->signed_headers))
		return sbx_err_set(err, SBX_E_INVALID, "the signed header list is longer than %zu characters",
				   sizeof(((struct sbx_sigv4_auth *)0)->signed_headers) - 1);
	if (parse_names(signed_headers, len, false, &h, err) < 0)
		return -1;
	sb_init(&b, out, outlen);
	if (build_canonical(req, &h, NULL, &b, err) < 0) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/* ---- string to sign, key, signature ---- */

static int check_scope(const char *amz_date, const char *region, const char *service, sbx_err *err)
{
	char q[48];

	if (!valid_amz_date(amz_date))
		return sbx_err_set(err, SBX_E_INVALID, "the signing time '%s' is not YYYYMMDDTHHMMSSZ",
				   amz_date ? show(amz_date, strnlen(amz_date, 40), q) : "(none)");
	if (!region || !valid_scope_part(region, strnlen(region, SCOPE_PART_MAX + 1)))
		return sbx_err_set(err, SBX_E_INVALID, "the region '%s' is not 1-%d of [a-z0-9-]",
				   region ? show(region, strnlen(region, 80), q) : "(none)", SCOPE_PART_MAX);
	if (!service || !valid_scope_part(service, strnlen(service, SCOPE_PART_MAX + 1)))
		return sbx_err_set(err, SBX_E_INVALID, "the service '%s' is not 1-%d of [a-z0-9-]",
				   service ? show(service, strnlen(service, 80), q) : "(none)", SCOPE_PART_MAX);
	return 0;
}

int sbx_sigv4_string_to_sign(const char *canonical, size_t len, const char *amz_date, const char *region,
			     const char *service, char *out, size_t outlen, sbx_err *err)
{
	char hash[65];
	int n;

	if (!out || outlen == 0 || (!canonical && len))
		return sbx_err_set(err, SBX_E_INTERNAL, "sigv4: no canonical request or output buffer");
	out[0] = '\0';
	if (check_scope(amz_date, region, service, err) < 0)
		return -1;
	sbx_sha256_hex(canonical ? canonical : "", len, hash);
	if (!hash[0])
		return sbx_err_set(err, SBX_E_INTERNAL, "SHA-256 failed in libcrypto");
	n = snprintf(out, outlen, ALGORITHM "\n%s\n%.8s/%s/%s/" TERMINATOR "\n%s", amz_date, amz_date, region, service,
		     hash);
	if (n < 0 || (size_t)n >= outlen) {
		out[0] = '\0';
		return sbx_err_set(err, SBX_E_INTERNAL, "sigv4: the string to sign needs %d bytes, the buffer has %zu", n,
				   outlen);
	}
	return 0;
}

/* HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request", then the signature
 * of sts. Every intermediate key is wiped. */
static int signature(const char *secret, const char *amz_date, const char *region, const char *service,
		     const char *sts, char out[65], sbx_err *err)
{
	unsigned char k[SECRET_MAX + 4], a[32], bb[32], sig[32];
	size_t slen = strnlen(secret, SECRET_MAX + 1);
	int rc = -1;

	if (slen == 0 || slen > SECRET_MAX)
		return sbx_err_set(err, SBX_E_INVALID, "the AWS secret access key is empty or longer than %d characters",
				   SECRET_MAX);
	memcpy(k, "AWS4", 4);
	memcpy(k + 4, secret, slen);
	if (hmac_sha256(k, slen + 4, amz_date, 8, a) < 0 || hmac_sha256(a, 32, region, strlen(region), bb) < 0 ||
	    hmac_sha256(bb, 32, service, strlen(service), a) < 0 ||
	    hmac_sha256(a, 32, TERMINATOR, strlen(TERMINATOR), bb) < 0 || hmac_sha256(bb, 32, sts, strlen(sts), sig) < 0) {
		sbx_err_set(err, SBX_E_INTERNAL, "HMAC-SHA256 failed in libcrypto");
		goto out;
	}
	to_hex(sig, sizeof(sig), out);
	rc = 0;
out:
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(bb, sizeof(bb));
	return rc;
}

/* The request's own copies of what sign() takes from its arguments must agree with them. */
static int check_request_agrees(const struct sbx_sigv4_request *req, const char *amz_date, sbx_err *err)
{
	char q[48], q2[48];

	for (size_t i = 0; req->headers && i < req->nheaders; i++) {
		const struct sbx_sigv4_header *h = &req->headers[i];
		const char *v = h->value ? h->value : "";
		size_t n = h->value ? h->value_len : 0;

		while (n && (v[0] == ' ' || v[0] == '\t'))
			v++, n--;
		while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (header_is(h, "x-amz-date", 10) && !span_eq(v, n, amz_date))
			return sbx_err_set(err, SBX_E_INVALID,
					   "the request's X-Amz-Date '%s' is not the signing time %s: set the header to "
					   "the signing time",
					   show(v, n, q), amz_date);
		if (header_is(h, "x-amz-content-sha256", 20) && !span_eq(v, n, req->payload_hash))
			return sbx_err_set(err, SBX_E_INVALID,
					   "the request's X-Amz-Content-SHA256 '%s' is not the payload hash '%s'",
					   show(v, n, q), show(req->payload_hash, strlen(req->payload_hash), q2));
	}
	return 0;
}

int sbx_sigv4_sign(const struct sbx_sigv4_request *req, const struct sbx_sigv4_creds *creds, const char *amz_date,
		   const char *region, const char *service, const char *signed_headers, char *out, size_t outlen,
		   sbx_err *err)
{
	enum { LIST_MAX = sizeof(((struct sbx_sigv4_auth *)0)->signed_headers) };
	const char *token = NULL;
	char *canon = NULL, sts[256], sig[65];
	struct names h;
	struct sb b;
	size_t len, akl, canon_used = 0;
	int n, rc = -1;

	if (!out || outlen == 0)
		return sbx_err_set(err, SBX_E_INTERNAL, "sigv4: no output buffer");
	out[0] = '\0';
	if (!req || !creds || !creds->access_key || !creds->secret_key || !signed_headers)
		return sbx_err_set(err, SBX_E_INTERNAL, "sigv4: missing request, credentials or signed header list");
	if (check_scope(amz_date, region, service, err) < 0)
		return -1;
	akl = strnlen(creds->access_key, ACCESS_KEY_MAX + 1);
	if (!valid_access_key(creds->access_key, akl))
		return sbx_err_set(err, SBX_E_INVALID,
				   "the stored AWS access key id is empty, longer than %d characters or has a character "
				   "that cannot go in a Credential field: store the key as AKID:SECRET[:TOKEN]",
				   ACCESS_KEY_MAX);
	if (creds->session_token && creds->session_token[0]) {
		size_t tl = strnlen(creds->session_token, TOKEN_MAX + 1);

		if (tl > TOKEN_MAX)
			return sbx_err_set(err, SBX_E_INVALID, "the AWS session token is longer than %d characters", TOKEN_MAX);
		for (size_t i = 0; i < tl; i++) {
			unsigned char c = (unsigned char)creds->session_token[i];
			if (c <= 0x20 || c >= 0x7f)
				return sbx_err_set(err, SBX_E_INVALID,
						   "the AWS session token has a character that cannot go in a header");
		}
		token = creds->session_token;
	}
	if (sbx_sigv4_is_presigned(req->query, req->query ? req->query_len : 0))
		return sbx_err_set(err, SBX_E_INVALID,
				   "the query carries a presigned signature (X-Amz-Signature / X-Amz-Algorithm): a "
				   "presigned URL is not re-signed in a header");
	len = strnlen(signed_headers, LIST_MAX);
	if (len == LIST_MAX)
		return sbx_err_set(err, SBX_E_INVALID, "the signed header list is longer than %d characters", LIST_MAX - 1);
	if (parse_names(signed_headers, len, false, &h, err) < 0)
		return -1;
	if (token && !names_has(&h, TOKEN_HEADER)) {
		if (h.n == SBX_SIGV4_MAX_SIGNED_HEADERS)
			return sbx_err_set(err, SBX_E_INVALID, "more than %d signed headers with the session token",
					   SBX_SIGV4_MAX_SIGNED_HEADERS);
		h.v[h.n++] = (struct name){TOKEN_HEADER, strlen(TOKEN_HEADER)};
		qsort(h.v, h.n, sizeof(h.v[0]), name_cmp);
	} else if (!token) {
		for (size_t k = 0; k < h.n; k++)
			if (span_eq(h.v[k].s, h.v[k].len, TOKEN_HEADER)) {
				memmove(&h.v[k], &h.v[k + 1], (h.n - k - 1) * sizeof(h.v[0]));
				h.n--;
				break;
			}
	}
	if (check_payload_hash(req->payload_hash, err) < 0 || check_request_agrees(req, amz_date, err) < 0)
		return -1;

	canon = malloc(SBX_SIGV4_CANONICAL_MAX);
	if (!canon)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory for the canonical request");
	sb_init(&b, canon, SBX_SIGV4_CANONICAL_MAX);
	rc = build_canonical(req, &h, token, &b, err);
	canon_used = b.len + 1;
	if (rc < 0)
		goto out;
	rc = -1;
	if (sbx_sigv4_string_to_sign(canon, b.len, amz_date, region, service, sts, sizeof(sts), err) < 0 ||
	    signature(creds->secret_key, amz_date, region, service, sts, sig, err) < 0)
		goto out;

	n = snprintf(out, outlen, ALGORITHM " Credential=%s/%.8s/%s/%s/" TERMINATOR ", SignedHeaders=", creds->access_key,
		     amz_date, region, service);
	b = (struct sb){.p = out, .cap = outlen, .over = n < 0 || (size_t)n >= outlen};
	if (!b.over) {
		b.len = (size_t)n;
		for (size_t k = 0; k < h.n; k++) {
			if (k)
				sb_ch(&b, ';');
			sb_mem(&b, h.v[k].s, h.v[k].len);
		}
		sb_str(&b, ", Signature=");
		sb_str(&b, sig);
	}
	if (b.over) {
		out[0] = '\0';
		sbx_err_set(err, SBX_E_INTERNAL, "sigv4: the Authorization value does not fit in %zu bytes", outlen);
		goto out;
	}
	rc = 0;
out:
	/* the canonical request holds the session token: wipe what was written of it */
	OPENSSL_cleanse(canon, canon_used);
	free(canon);
	return rc;
}

/* ---- reading the agent's Authorization header ---- */

static int parse_credential(const char *v, size_t n, struct sbx_sigv4_auth *out, sbx_err *err)
{
	const char *part[5];
	size_t plen[5], np = 0, i = 0;
	char q[48];

	while (i <= n) {
		size_t j = i;

		while (j < n && v[j] != '/')
			j++;
		if (np == 5)
			return sbx_err_set(err, SBX_E_INVALID,
					   "Authorization: Credential has more than 5 '/'-separated parts, expected "
					   "AKID/DATE/REGION/SERVICE/aws4_request");
		part[np] = v + i;
		plen[np++] = j - i;
		i = j + 1;
	}
	if (np != 5)
		return sbx_err_set(err, SBX_E_INVALID,
				   "Authorization: Credential has %zu '/'-separated parts, expected "
				   "AKID/DATE/REGION/SERVICE/aws4_request",
				   np);
	if (!valid_access_key(part[0], plen[0]))
		return sbx_err_set(err, SBX_E_INVALID,
				   "Authorization: the access key id '%s' is empty, longer than %d characters or not "
				   "printable ASCII",
				   show(part[0], plen[0], q), ACCESS_KEY_MAX);
	if (!valid_date(part[1], plen[1]))
		return sbx_err_set(err, SBX_E_INVALID, "Authorization: the credential date '%s' is not a YYYYMMDD date",
				   show(part[1], plen[1], q));
	if (!valid_scope_part(part[2], plen[2]))
		return sbx_err_set(err, SBX_E_INVALID, "Authorization: the region '%s' is not 1-%d of [a-z0-9-]",
				   show(part[2], plen[2], q), SCOPE_PART_MAX);
	if (!valid_scope_part(part[3], plen[3]))
		return sbx_err_set(err, SBX_E_INVALID, "Authorization: the service '%s' is not 1-%d of [a-z0-9-]",
				   show(part[3], plen[3], q), SCOPE_PART_MAX);
	if (!span_eq(part[4], plen[4], TERMINATOR))
		return sbx_err_set(err, SBX_E_INVALID, "Authorization: the credential ends in '%s', not " TERMINATOR,
				   show(part[4], plen[4], q));
	memcpy(out->access_key, part[0], plen[0]);
	memcpy(out->date, part[1], plen[1]);
	memcpy(out->region, part[2], plen[2]);
	memcpy(out->service, part[3], plen[3]);
	return 0;
}

static int parse_auth_fields(const char *v, size_t len, struct sbx_sigv4_auth *out, sbx_err *err)
{
	bool have_cred = false, have_sh = false, have_sig = false;
	size_t i = 0;
	char q[48];

	while (i < len) {
		size_t j = i, eq, vs, ve;

		while (j < len && v[j] != ',')
			j++;
		for (eq = i; eq < j && v[eq] != '='; eq++)
			;
		if (eq == j)
			return sbx_err_set(err, SBX_E_INVALID, "Authorization: the field '%s' has no '='",
					   show(v + i, j - i, q));
		vs = eq + 1;
		ve = j;
		while (ve > vs && (v[ve - 1] == ' ' || v[ve - 1] == '\t'))
			ve--;
		if (span_eq(v + i, eq - i, "Credential")) {
			if (have_cred)
				return sbx_err_set(err, SBX_E_INVALID, "Authorization: Credential appears twice");
			have_cred = true;
			if (parse_credential(v + vs, ve - vs, out, err) < 0)
				return -1;
		} else if (span_eq(v + i, eq - i, "SignedHeaders")) {
			struct names h;

			if (have_sh)
				return sbx_err_set(err, SBX_E_INVALID, "Authorization: SignedHeaders appears twice");
			have_sh = true;
			if (ve - vs >= sizeof(out->signed_headers))
				return sbx_err_set(err, SBX_E_INVALID,
						   "Authorization: SignedHeaders is longer than %zu characters",
						   sizeof(out->signed_headers) - 1);
			if (parse_names(v + vs, ve - vs, true, &h, err) < 0)
				return sbx_err_wrap(err, "Authorization: SignedHeaders");
			memcpy(out->signed_headers, v + vs, ve - vs);
		} else if (span_eq(v + i, eq - i, "Signature")) {
			if (have_sig)
				return sbx_err_set(err, SBX_E_INVALID, "Authorization: Signature appears twice");
			have_sig = true;
			if (ve - vs != 64)
				return sbx_err_set(err, SBX_E_INVALID,
						   "Authorization: the signature has %zu characters, not 64 hex digits",
						   ve - vs);
			for (size_t k = vs; k < ve; k++)
				if (!is_lower_hex((unsigned char)v[k]))
					return sbx_err_set(err, SBX_E_INVALID,
							   "Authorization: the signature is not lowercase hex");
			memcpy(out->signature, v + vs, 64);
		} else {
			return sbx_err_set(err, SBX_E_INVALID,
					   "Authorization: unknown field '%s' (expected Credential, SignedHeaders, "
					   "Signature)",
					   show(v + i, eq - i, q));
		}
		if (j == len)
			break;
		i = j + 1;
		while (i < len && (v[i] == ' ' || v[i] == '\t'))
			i++;
		if (i == len)
			return sbx_err_set(err, SBX_E_INVALID, "Authorization: a ',' with no field after it");
	}
	if (!have_cred || !have_sh || !have_sig)
		return sbx_err_set(err, SBX_E_INVALID, "Authorization: the %s field is missing",
				   !have_cred ? "Credential" : !have_sh ? "SignedHeaders" : "Signature");
	return 0;
}

int sbx_sigv4_parse_auth(const char *value, size_t len, struct sbx_sigv4_auth *out, sbx_err *err)
{
	const size_t alen = strlen(ALGORITHM);
	char q[48];
	size_t i;

	if (!out)
		return sbx_err_set(err, SBX_E_INTERNAL, "sigv4: no output for the parsed Authorization header");
	memset(out, 0, sizeof(*out));
	if (!value && len)
		return sbx_err_set(err, SBX_E_INTERNAL, "sigv4: no Authorization value");
	if (len > SBX_SIGV4_AUTH_MAX)
		return sbx_err_set(err, SBX_E_INVALID, "the Authorization header is %zu bytes, more than %d", len,
				   SBX_SIGV4_AUTH_MAX);
	if (len && memchr(value, '\0', len))
		return sbx_err_set(err, SBX_E_INVALID, "the Authorization header contains a NUL byte");
	while (len && (value[0] == ' ' || value[0] == '\t'))
		value++, len--;
	while (len && (value[len - 1] == ' ' || value[len - 1] == '\t'))
		len--;
	for (i = 0; i < len && value[i] != ' ' && value[i] != '\t'; i++)
		;
	if (!span_eq(value, i, ALGORITHM)) {
		if (i > alen && !strncmp(value, ALGORITHM, alen))
			return sbx_err_set(err, SBX_E_INVALID, "Authorization: no space after " ALGORITHM);
		if (i > 5 && !strncmp(value, "AWS4-", 5))
			return sbx_err_set(err, SBX_E_UNSUPPORTED,
					   "the Authorization algorithm '%s' is not supported, only " ALGORITHM
					   " (SigV4a requests cannot be re-signed: use a regional endpoint)",
					   show(value, i, q));
		return sbx_err_set(err, SBX_E_INVALID, "the Authorization header is not AWS Signature Version 4 ('%s')",
				   show(value, i, q));
	}
	if (i == len)
		return sbx_err_set(err, SBX_E_INVALID, "Authorization: nothing after " ALGORITHM);
	i = alen;
	while (i < len && (value[i] == ' ' || value[i] == '\t'))
		i++;
	if (parse_auth_fields(value + i, len - i, out, err) < 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

/* ---- presigned URLs ---- */

/* Does the query piece name, percent-decoded and lowercased, equal lit (lowercase)? A malformed
 * escape is compared as it stands. */
static bool qname_is(const char *s, size_t n, const char *lit)
{
	size_t k = 0, l = strlen(lit);

	for (size_t i = 0; i < n; i++, k++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%' && i + 2 < n) {
			int hi = hex_value((unsigned char)s[i + 1]), lo = hex_value((unsigned char)s[i + 2]);

			if (hi >= 0 && lo >= 0) {
				c = (unsigned char)(hi << 4 | lo);
				i += 2;
			}
		}
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (k >= l || c != (unsigned char)lit[k])
			return false;
	}
	return k == l;
}

bool sbx_sigv4_is_presigned(const char *query, size_t len)
{
	size_t i = 0;

	if (!query)
		return false;
	while (i < len) {
		size_t j = i, eq;

		while (j < len && query[j] != '&')
			j++;
		for (eq = i; eq < j && query[eq] != '='; eq++)
			;
		if (qname_is(query + i, eq - i, "x-amz-signature") || qname_is(query + i, eq - i, "x-amz-algorithm") ||
		    qname_is(query + i, eq - i, "x-amz-credential"))
			return true;
		i = j + 1;
	}
	return false;
}

/* ---- scope from the host name ---- */

/* us-east-1, eu-central-2, us-gov-west-1, cn-north-1, us-iso-east-1: two letters, one or more
 * "-word", then "-digits". */
static bool is_region(const char *s, size_t n)
{
	size_t i = 2, words = 0;

	if (n < 6 || n > SCOPE_PART_MAX || !(s[0] >= 'a' && s[0] <= 'z') || !(s[1] >= 'a' && s[1] <= 'z'))
		return false;
	while (i < n) {
		size_t j;

		if (s[i] != '-')
			return false;
		for (j = i + 1; j < n && s[j] >= 'a' && s[j] <= 'z'; j++)
			;
		if (j == i + 1)
			break;
		words++;
		i = j;
	}
	if (!words || i >= n || s[i] != '-' || i + 1 >= n)
		return false;
	for (i++; i < n; i++)
		if (!is_digit((unsigned char)s[i]))
			return false;
	return true;
}

struct label {
	const char *s;
	size_t n;
};

static bool label_is(const struct label *l, const char *lit)
{
	return span_eq(l->s, l->n, lit);
}

static bool label_has_prefix(const struct label *l, const char *lit)
{
	size_t n = strlen(lit);
	return l->n >= n && memcmp(l->s, lit, n) == 0;
}

static int put_out(char *dst, size_t dlen, const char *s, size_t n)
{
	if (!dst || n == 0 || n >= dlen)
		return -1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

/* Endpoint prefixes whose signing name differs. */
static const struct {
	const char *label, *service;
} signing_names[] = {
	{"queue", "sqs"},           {"email", "ses"},           {"s3-control", "s3"},
	{"s3-accesspoint", "s3"},   {"s3-external-1", "s3"},    {"bedrock-runtime", "bedrock"},
	{"bedrock-agent", "bedrock"}, {"bedrock-agent-runtime", "bedrock"}, {"appsync-api", "appsync"},
};

int sbx_sigv4_host_scope(const char *host, char *service, size_t slen, char *region, size_t rlen)
{
	char buf[HOST_MAX + 1];
	struct label lab[HOST_MAX / 2 + 1], svc, reg = {NULL, 0};
	size_t n, nl = 0, i, base;
	const char *default_region;

	if (service && slen)
		service[0] = '\0';
	if (region && rlen)
		region[0] = '\0';
	if (!host || !service || !region)
		return -1;
	n = strnlen(host, HOST_MAX + 8);
	for (i = 0; i < n && host[i] != ':'; i++)
		;
	if (i < n) { /* a port: ":digits" to the end */
		size_t d = n - i - 1;
		if (d == 0 || d > 5 || digits(host + i + 1, d) < 0)
			return -1;
		n = i;
	}
	if (n && host[n - 1] == '.')
		n--;
	if (n == 0 || n > HOST_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)host[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (!is_scope_char(c) && c != '.')
			return -1;
		buf[i] = (char)c;
	}
	buf[n] = '\0';
	/* base: where the suffix's dot is; the labels before it are all that tell the scope */
	if (n > 14 && !strcmp(buf + n - 14, ".amazonaws.com")) {
		default_region = "us-east-1";
		base = n - 14;
	} else if (n > 17 && !strcmp(buf + n - 17, ".amazonaws.com.cn")) {
		default_region = "cn-north-1";
		base = n - 17;
	} else {
		return -1;
	}
	for (i = 0; i <= base;) {
		size_t j = i;
		while (j < base && buf[j] != '.')
			j++;
		if (j == i || j - i > 63)
			return -1;
		lab[nl++] = (struct label){buf + i, j - i};
		i = j + 1;
	}
	/* lab[nl - 1] is the label just before the suffix */
	{
		size_t r = nl - 1, k;

		if (is_region(lab[r].s, lab[r].n)) {
			/* SERVICE[.dualstack].REGION */
			reg = lab[r];
			if (r == 0)
				return -1;
			k = r - 1;
			while (k > 0 && label_is(&lab[k], "dualstack"))
				k--;
			if (label_is(&lab[k], "dualstack"))
				return -1;
			svc = lab[k];
		} else if (r >= 1 && is_region(lab[r - 1].s, lab[r - 1].n) &&
			   (label_is(&lab[r], "es") || label_is(&lab[r], "aoss") || label_is(&lab[r], "elasticmapreduce") ||
			    label_is(&lab[r], "queue"))) {
			/* the older REGION.SERVICE forms */
			reg = lab[r - 1];
			svc = lab[r];
		} else if (label_is(&lab[r], "us-gov")) {
			if (r == 0)
				return -1;
			reg = (struct label){"us-gov-west-1", 13};
			svc = lab[r - 1];
		} else {
			/* a global endpoint (iam, sts, route53, s3), or the older "s3-REGION" form */
			k = r;
			while (k > 0 && label_is(&lab[k], "dualstack"))
				k--;
			svc = lab[k];
			if (label_has_prefix(&svc, "s3-") && is_region(svc.s + 3, svc.n - 3)) {
				reg = (struct label){svc.s + 3, svc.n - 3};
				svc.n = 2;
			} else if (label_has_prefix(&svc, "s3-fips-") && is_region(svc.s + 8, svc.n - 8)) {
				reg = (struct label){svc.s + 8, svc.n - 8};
				svc.n = 2;
			}
		}
	}
	if (label_is(&svc, "dualstack") || label_has_prefix(&svc, "s3-accelerate") || label_has_prefix(&svc, "s3-website"))
		return -1;
	if (svc.n > 5 && !memcmp(svc.s + svc.n - 5, "-fips", 5))
		svc.n -= 5;
	for (i = 0; i < sizeof(signing_names) / sizeof(signing_names[0]); i++)
		if (label_is(&svc, signing_names[i].label)) {
			svc = (struct label){signing_names[i].service, strlen(signing_names[i].service)};
			break;
		}
	if (!reg.s)
		reg = (struct label){default_region, strlen(default_region)};
	if (!valid_scope_part(svc.s, svc.n) || put_out(service, slen, svc.s, svc.n) < 0 ||
	    put_out(region, rlen, reg.s, reg.n) < 0) {
		service[0] = '\0';
		region[0] = '\0';
		return -1;
	}
	return 0;
}
