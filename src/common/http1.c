/* http1.c - strict HTTP/1.1 head parser, chunked decoder and request-target parsing.
 *
 * Everything here reads bytes a hostile sandbox controls, so the code is written to three rules:
 *   1. Never look at buf[i] without having checked i < len (all scans are bounded loops over
 *      unsigned char, no string functions that need a NUL).
 *   2. Refuse, never repair: anything two HTTP implementations could frame differently is an
 *      error, with a short static reason naming the problem.
 *   3. Be consistent under fragmentation: a prefix of a message is INCOMPLETE while it could
 *      still become valid, and an error found in a prefix is the same error the whole message
 *      gets. To get that for free, every line is validated left to right, content before its
 *      terminator, and semantic checks (duplicates, CL/TE combinations) only run once the head
 *      is complete. The fuzz target checks this property.
 *
 * The head parser keeps no state between calls: it rescans from the start, which is linear in
 * the (capped) head size. Per-header work is constant: header names are classified once, and
 * the framing facts are accumulated while scanning instead of by later lookups. */
#include "http1.h"

#include <arpa/inet.h>
#include <string.h>

/* ---- character classes (RFC 9110 5.6.2, 5.5; RFC 9112 3.2) ---- */

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool is_tchar(unsigned char c)
{
	if (is_alpha(c) || is_digit(c))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
	case '-': case '.': case '^': case '_': case '`': case '|': case '~':
		return true;
	default:
		return false;
	}
}

static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* field-vchar / SP / HTAB / obs-text: everything but the CTLs other than HTAB. */
static bool is_field_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* request-target: visible ASCII only. */
static bool is_target_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* Index of the first byte of p[0..n) that may not appear in a field line - a CTL other than
 * HTAB, which includes CR and LF, so this also finds the end of a line - or n. Eight bytes at a
 * time: it is the hot loop when a slow client makes the parser rescan a large head per byte.
 * The word tests are exact as booleans (a borrow only crosses into a byte after a lower byte
 * already matched), and a flagged word is re-checked byte by byte, so tabs cost nothing more. */
static size_t first_ctl(const unsigned char *p, size_t n)
{
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	size_t i = 0;

	while (n - i >= 8) {
		uint64_t w, d;

		memcpy(&w, p + i, 8);
		d = w ^ (ones * 0x7f);
		if ((((w - ones * 0x20) & ~w) | ((d - ones) & ~d)) & highs) {
			for (size_t k = i; k < i + 8; k++)
				if (!is_field_char(p[k]))
					return k;
		}
		i += 8;
	}
	for (; i < n; i++)
		if (!is_field_char(p[i]))
			return i;
	return n;
}

static unsigned char lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Case-insensitive comparison of n bytes against a lowercase literal of the same length. */
static bool mem_ieq(const unsigned char *p, const char *lit, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower(p[i]) != (unsigned char)lit[i])
			return false;
	return true;
}

static int fail(struct sbx_http_error *err, int status, const char *reason)
{
	err->status = status;
	err->reason = reason;
	return SBX_HTTP_ERROR;
}

/* ---- public string helpers ---- */

bool sbx_http_str_eq(struct sbx_http_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && (n == 0 || memcmp(s.p, lit, n) == 0);
}

bool sbx_http_str_ieq(struct sbx_http_str s, const char *lit)
{
	size_t n = strlen(lit);

	if (s.len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)s.p[i]) != lower((unsigned char)lit[i]))
			return false;
	return true;
}

bool sbx_http_list_has_token(struct sbx_http_str value, const char *token)
{
	const unsigned char *u = (const unsigned char *)value.p;
	size_t i = 0;

	if (!*token)
		return false;
	while (i < value.len) {
		size_t s = i, e;

		while (i < value.len && u[i] != ',')
			i++;
		e = i++;
		while (s < e && is_ows(u[s]))
			s++;
		while (e > s && is_ows(u[e - 1]))
			e--;
		struct sbx_http_str el = {(const char *)u + s, e - s};
		if (sbx_http_str_ieq(el, token))
			return true;
	}
	return false;
}

const struct sbx_http_str *sbx_http_header_get(const struct sbx_http_msg *msg, const char *name)
{
	for (size_t i = 0; i < msg->nheaders; i++)
		if (sbx_http_str_ieq(msg->headers[i].name, name))
			return &msg->headers[i].value;
	return NULL;
}

size_t sbx_http_header_count(const struct sbx_http_msg *msg, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < msg->nheaders; i++)
		if (sbx_http_str_ieq(msg->headers[i].name, name))
			n++;
	return n;
}

/* ---- head parsing ---- */

/* The header fields whose meaning the parser itself needs. */
enum hdr_id {
	H_OTHER,
	H_HOST,
	H_CONTENT_LENGTH,
	H_TRANSFER_ENCODING,
	H_CONNECTION,
	H_EXPECT,
	H_UPGRADE,
	H_AMBIGUOUS, /* "Content_Length" and friends: some servers map '_' to '-' */
};

static const struct {
	const char *name;
	enum hdr_id id;
} known_headers[] = {
	{"host", H_HOST},
	{"content-length", H_CONTENT_LENGTH},
	{"transfer-encoding", H_TRANSFER_ENCODING},
	{"connection", H_CONNECTION},
	{"expect", H_EXPECT},
	{"upgrade", H_UPGRADE},
};

static enum hdr_id classify_header(const unsigned char *p, size_t n)
{
	for (size_t k = 0; k < sizeof(known_headers) / sizeof(known_headers[0]); k++) {
		const char *lit = known_headers[k].name;
		bool underscore = false;
		size_t i;

		if (strlen(lit) != n)
			continue;
		for (i = 0; i < n; i++) {
			unsigned char c = lower(p[i]);

			if (c == (unsigned char)lit[i])
				continue;
			if (c == '_' && lit[i] == '-') {
				underscore = true;
				continue;
			}
			break;
		}
		if (i < n)
			continue;
		if (!underscore)
			return known_headers[k].id;
		/* A framing header spelled with '_' is a header that one hop ignores and the next
		 * (CGI-style servers, some frameworks) reads as Content-Length / Transfer-Encoding. */
		if (known_headers[k].id == H_CONTENT_LENGTH || known_headers[k].id == H_TRANSFER_ENCODING)
			return H_AMBIGUOUS;
		return H_OTHER;
	}
	return H_OTHER;
}

/* Facts gathered while scanning the header lines, judged once the head is complete. */
struct head_ctx {
	enum sbx_http_kind kind;
	const char *req_method; /* responses: the request's method */
	size_t n_host, n_cl, n_te;
	const char *cl_error; /* first invalid Content-Length value */
	uint64_t cl;
	size_t host_idx, te_idx;
	const char *ambiguous; /* a framing header hidden from some hops ('_' for '-', Connection) */
	bool conn_close, conn_keep_alive, conn_upgrade, has_upgrade, expect_continue;
	/* responses: the Transfer-Encoding list across all TE header lines */
	size_t te_codings, te_chunked;
	bool te_last_chunked, te_invalid;
};

/* Requests get the specific status; a bad response is always a bad gateway. */
static int bad(const struct head_ctx *ctx, struct sbx_http_error *err, int status, const char *reason)
{
	return fail(err, ctx->kind == SBX_HTTP_REQUEST ? status : 502, reason);
}

/* Content-Length = 1*DIGIT, one value, no sign, no list, no inner whitespace. Leading zeros are
 * plain decimal ("007" = 7). Values that do not fit an off_t (>= 2^63) are refused. */
static const char *parse_content_length(struct sbx_http_str v, uint64_t *out)
{
	const unsigned char *u = (const unsigned char *)v.p;
	uint64_t n = 0;

	if (v.len == 0)
		return "empty Content-Length";
	if (memchr(u, ',', v.len))
		return "Content-Length list";
	for (size_t i = 0; i < v.len; i++) {
		if (!is_digit(u[i]))
			return "invalid Content-Length";
		unsigned d = u[i] - '0';
		if (n > ((uint64_t)INT64_MAX - d) / 10)
			return "Content-Length too large";
		n = n * 10 + d;
	}
	*out = n;
	return NULL;
}

/* Responses: walk one Transfer-Encoding value as a list of codings (empty elements allowed,
 * RFC 9110 5.6.1), remembering whether chunked is the last one and how often it appears. */
static void scan_te_list(struct head_ctx *ctx, struct sbx_http_str v)
{
	const unsigned char *u = (const unsigned char *)v.p;
	size_t i = 0;

	while (i < v.len) {
		size_t s = i, e, k;

		while (i < v.len && u[i] != ',')
			i++;
		e = i++;
		while (s < e && is_ows(u[s]))
			s++;
		while (e > s && is_ows(u[e - 1]))
			e--;
		if (s == e)
			continue;
		for (k = s; k < e && is_tchar(u[k]); k++)
			;
		bool chunked = k - s == 7 && mem_ieq(u + s, "chunked", 7);
		if (k == s) {
			ctx->te_invalid = true;
		} else if (k < e) {
			/* transfer-parameters: OWS ";" ... (chunked takes none) */
			size_t j = k;

			while (j < e && is_ows(u[j]))
				j++;
			if (j == e || u[j] != ';' || chunked)
				ctx->te_invalid = true;
		}
		ctx->te_codings++;
		if (chunked)
			ctx->te_chunked++;
		ctx->te_last_chunked = chunked && k == e;
	}
}

/* Record one complete, syntactically valid header field. */
static void note_header(struct head_ctx *ctx, struct sbx_http_msg *msg, const unsigned char *name, size_t nlen)
{
	size_t idx = msg->nheaders - 1;
	struct sbx_http_str v = msg->headers[idx].value;

	switch (classify_header(name, nlen)) {
	case H_HOST:
		if (ctx->n_host++ == 0)
			ctx->host_idx = idx;
		break;
	case H_CONTENT_LENGTH: {
		uint64_t cl = 0;
		const char *why = parse_content_length(v, &cl);

		if (why && !ctx->cl_error)
			ctx->cl_error = why;
		if (ctx->n_cl++ == 0)
			ctx->cl = cl;
		break;
	}
	case H_TRANSFER_ENCODING:
		if (ctx->n_te++ == 0)
			ctx->te_idx = idx;
		if (ctx->kind == SBX_HTTP_RESPONSE)
			scan_te_list(ctx, v);
		break;
	case H_CONNECTION:
		if (sbx_http_list_has_token(v, "close"))
			ctx->conn_close = true;
		if (sbx_http_list_has_token(v, "keep-alive"))
			ctx->conn_keep_alive = true;
		if (sbx_http_list_has_token(v, "upgrade"))
			ctx->conn_upgrade = true;
		/* A hop that honours Connection deletes the listed fields before forwarding: listing
		 * a framing field there re-frames the message for the next hop. */
		if (!ctx->ambiguous && (sbx_http_list_has_token(v, "content-length") ||
					sbx_http_list_has_token(v, "transfer-encoding") ||
					sbx_http_list_has_token(v, "host")))
			ctx->ambiguous = "framing header listed in Connection";
		break;
	case H_EXPECT:
		if (sbx_http_str_ieq(v, "100-continue"))
			ctx->expect_continue = true;
		break;
	case H_UPGRADE:
		if (v.len > 0)
			ctx->has_upgrade = true;
		break;
	case H_AMBIGUOUS:
		if (!ctx->ambiguous)
			ctx->ambiguous = "underscore in framing header name";
		break;
	case H_OTHER:
		break;
	}
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT. p[0..n) is the version text or a prefix of it when
 * !complete. Returns 1 with *ver set, 0 when a valid prefix is incomplete, -1 (with *why and
 * *status) otherwise. Only 1.0 and 1.1 are accepted; other well-formed versions (and the
 * common "HTTP/2" spelling) are 505, anything else 400. */
static int parse_version(const unsigned char *p, size_t n, bool complete, int *ver, int *status, const char **why)
{
	static const char pfx[] = "HTTP/";

	*status = 400;
	*why = "invalid HTTP version";
	for (size_t i = 0; i < n && i < 5; i++)
		if (p[i] != (unsigned char)pfx[i])
			return -1;
	if (n > 5 && !is_digit(p[5]))
		return -1;
	if (n > 6 && p[6] != '.')
		return -1;
	if (n > 7 && !is_digit(p[7]))
		return -1;
	if (n > 8)
		return -1;
	if (!complete)
		return 0;
	if (n == 6 && p[5] != '1') {
		*status = 505;
		*why = "unsupported HTTP version";
		return -1;
	}
	if (n != 8)
		return -1;
	if (p[5] != '1' || (p[7] != '0' && p[7] != '1')) {
		*status = 505;
		*why = "unsupported HTTP version";
		return -1;
	}
	*ver = p[7] == '1' ? 11 : 10;
	return 1;
}

/* request-line = method SP request-target SP HTTP-version, exactly one SP between parts. */
static int parse_request_line(const unsigned char *p, size_t n, bool complete, struct sbx_http_msg *msg,
			      struct sbx_http_error *err)
{
	size_t i = 0, t0;
	const char *why;
	int status, rc;

	while (i < n && is_tchar(p[i]))
		i++;
	if (i > SBX_HTTP_MAX_METHOD)
		return fail(err, 501, "method too long");
	if (i == n) {
		if (!complete)
			return 0;
		return fail(err, 400, n == 0 ? "empty line before request-line" : "malformed request-line");
	}
	if (i == 0)
		return fail(err, 400, is_ows(p[0]) ? "whitespace before request-line" : "invalid method");
	if (p[i] != ' ')
		return fail(err, 400, p[i] == 0 ? "NUL byte in request-line" : "invalid character in method");
	msg->method.p = (const char *)p;
	msg->method.len = i;
	t0 = ++i;
	while (i < n && is_target_char(p[i]))
		i++;
	if (i == n) {
		if (!complete)
			return 0;
		if (i == t0)
			return fail(err, 400, "empty request-target");
		/* "GET /path" with no version is an HTTP/0.9 request. */
		return fail(err, 505, "HTTP/0.9 request");
	}
	if (i == t0)
		return fail(err, 400, p[i] == ' ' ? "multiple spaces in request-line" : "empty request-target");
	if (p[i] != ' ')
		return fail(err, 400, p[i] == 0 ? "NUL byte in request-line" : "invalid character in request-target");
	msg->target.p = (const char *)p + t0;
	msg->target.len = i - t0;
	i++;
	if (i < n && p[i] == ' ')
		return fail(err, 400, "multiple spaces in request-line");
	rc = parse_version(p + i, n - i, complete, &msg->version, &status, &why);
	if (rc < 0)
		return fail(err, status, why);
	return 0;
}

/* status-line = HTTP-version SP 3DIGIT SP [reason-phrase]. We also tolerate the missing SP
 * after the code ("HTTP/1.1 200"), which some servers send; the result is the same. */
static int parse_status_line(const unsigned char *p, size_t n, bool complete, struct sbx_http_msg *msg,
			     struct sbx_http_error *err)
{
	const char *why;
	int status;

	if (parse_version(p, n < 8 ? n : 8, complete || n > 8, &msg->version, &status, &why) < 0)
		return fail(err, 502, why);
	if (n <= 8) {
		if (!complete)
			return 0;
		return fail(err, 502, "missing status code");
	}
	if (p[8] != ' ')
		return fail(err, 502, "malformed status-line");
	/* Left to right, so a prefix fails with the same reason as the whole line. */
	for (size_t i = 9; i < 12 && i < n; i++) {
		if (!is_digit(p[i]))
			return fail(err, 502, "invalid status code");
		if (i == 9 && (p[i] < '1' || p[i] > '5'))
			return fail(err, 502, "status code out of range");
	}
	if (n < 12) {
		if (!complete)
			return 0;
		return fail(err, 502, "invalid status code");
	}
	msg->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (n > 12 && p[12] != ' ')
		return fail(err, 502, "invalid status code");
	if (n > 13) {
		size_t i = 13 + first_ctl(p + 13, n - 13);

		if (i < n)
			return fail(err, 502, p[i] == 0 ? "NUL byte in status-line" : "control character in reason");
	}
	msg->reason.p = (const char *)p + (n > 13 ? 13 : n);
	msg->reason.len = n > 13 ? n - 13 : 0;
	return 0;
}

/* field-line = field-name ":" OWS field-value OWS. p[0..n) excludes the CRLF; when !complete it
 * is a prefix of the line and only its characters are checked. */
static int parse_header_line(const unsigned char *p, size_t n, bool complete, struct head_ctx *ctx,
			     struct sbx_http_msg *msg, struct sbx_http_error *err)
{
	size_t i = 0, vs, ve;

	if (n > 0 && is_ows(p[0]))
		return bad(ctx, err, 400, "obs-fold not allowed");
	while (i < n && is_tchar(p[i]))
		i++;
	if (i == n) {
		if (!complete)
			return 0;
		return bad(ctx, err, 400, "missing colon in header field");
	}
	if (p[i] != ':') {
		if (is_ows(p[i]))
			return bad(ctx, err, 400, "whitespace in header name or before colon");
		if (p[i] == 0)
			return bad(ctx, err, 400, "NUL byte in header");
		return bad(ctx, err, 400, "invalid character in header name");
	}
	if (i == 0)
		return bad(ctx, err, 400, "empty header name");
	vs = i + 1 + first_ctl(p + i + 1, n - i - 1);
	if (vs < n)
		return bad(ctx, err, 400, p[vs] == 0 ? "NUL byte in header" : "control character in header value");
	if (!complete)
		return 0;
	vs = i + 1;
	ve = n;
	while (vs < ve && is_ows(p[vs]))
		vs++;
	while (ve > vs && is_ows(p[ve - 1]))
		ve--;
	struct sbx_http_header *h = &msg->headers[msg->nheaders++];
	h->name.p = (const char *)p;
	h->name.len = i;
	h->value.p = (const char *)p + vs;
	h->value.len = ve - vs;
	note_header(ctx, msg, p, i);
	return 0;
}

static bool status_has_no_body(int status)
{
	return (status >= 100 && status < 200) || status == 204 || status == 304;
}

/* Forward declaration: Host values are checked with the authority parser. */
static int parse_host_port(const unsigned char *p, size_t n, uint16_t default_port, struct sbx_http_target *t);

static int finish_request(struct head_ctx *ctx, struct sbx_http_msg *msg, struct sbx_http_error *err)
{
	if (ctx->ambiguous)
		return fail(err, 400, ctx->ambiguous);
	if (ctx->n_host > 1)
		return fail(err, 400, "duplicate Host");
	if (ctx->n_host == 0 && msg->version == 11)
		return fail(err, 400, "missing Host");
	if (ctx->n_host == 1) {
		struct sbx_http_target t;

		msg->host = msg->headers[ctx->host_idx].value;
		/* An empty Host is legal (no authority); anything else must be a valid authority. */
		if (msg->host.len > 0 && parse_host_port((const unsigned char *)msg->host.p, msg->host.len, 80, &t) < 0)
			return fail(err, 400, "invalid Host");
	}
	if (ctx->cl_error)
		return fail(err, 400, ctx->cl_error);
	if (ctx->n_cl > 1)
		return fail(err, 400, "duplicate Content-Length");
	if (ctx->n_te > 0) {
		struct sbx_http_str v = msg->headers[ctx->te_idx].value;

		if (ctx->n_te > 1)
			return fail(err, 400, "multiple Transfer-Encoding headers");
		if (msg->version == 10)
			return fail(err, 400, "Transfer-Encoding in HTTP/1.0 request");
		if (ctx->n_cl > 0)
			return fail(err, 400, "Content-Length with Transfer-Encoding");
		if (v.len == 0)
			return fail(err, 400, "empty Transfer-Encoding");
		if (memchr(v.p, ',', v.len))
			return fail(err, 400, "Transfer-Encoding list");
		if (!sbx_http_str_ieq(v, "chunked"))
			return fail(err, 501, "unsupported transfer coding");
		msg->body = SBX_HTTP_BODY_CHUNKED;
	} else if (ctx->n_cl > 0) {
		msg->body = SBX_HTTP_BODY_LENGTH;
		msg->content_length = ctx->cl;
	} else {
		msg->body = SBX_HTTP_BODY_NONE;
	}
	msg->expect_continue = ctx->expect_continue;
	return SBX_HTTP_OK;
}

static int finish_response(struct head_ctx *ctx, struct sbx_http_msg *msg, struct sbx_http_error *err)
{
	const char *m = ctx->req_method ? ctx->req_method : "GET";
	int st = msg->status;

	if (st < 100 || st > 599)
		return fail(err, 502, "status code out of range");
	if (ctx->ambiguous)
		return fail(err, 502, ctx->ambiguous);
	if (ctx->cl_error)
		return fail(err, 502, ctx->cl_error);
	if (ctx->n_cl > 1)
		return fail(err, 502, "duplicate Content-Length");
	if (ctx->n_te > 0) {
		/* RFC 9112 6.1: TE in a 1.0 message means the framing is faulty. */
		if (msg->version == 10)
			return fail(err, 502, "Transfer-Encoding in HTTP/1.0 response");
		if (ctx->n_cl > 0)
			return fail(err, 502, "Content-Length with Transfer-Encoding");
		if (ctx->te_invalid)
			return fail(err, 502, "invalid Transfer-Encoding");
		if (ctx->te_codings == 0)
			return fail(err, 502, "empty Transfer-Encoding");
		if (ctx->te_chunked > 1)
			return fail(err, 502, "chunked applied more than once");
	}
	if (st == 101 || (st >= 200 && st < 300 && strcmp(m, "CONNECT") == 0))
		msg->body = SBX_HTTP_BODY_TUNNEL;
	else if (status_has_no_body(st) || strcmp(m, "HEAD") == 0)
		msg->body = SBX_HTTP_BODY_NONE;
	else if (ctx->n_te > 0)
		msg->body = ctx->te_last_chunked ? SBX_HTTP_BODY_CHUNKED : SBX_HTTP_BODY_EOF;
	else if (ctx->n_cl > 0)
		msg->body = SBX_HTTP_BODY_LENGTH;
	else
		msg->body = SBX_HTTP_BODY_EOF;
	if (msg->body == SBX_HTTP_BODY_LENGTH)
		msg->content_length = ctx->cl;
	return SBX_HTTP_OK;
}

static void msg_reset(struct sbx_http_msg *msg, enum sbx_http_kind kind)
{
	/* Not a memset: the header array is 4 KiB and a byte-at-a-time feeder calls us per byte. */
	msg->kind = kind;
	msg->method = (struct sbx_http_str){NULL, 0};
	msg->target = (struct sbx_http_str){NULL, 0};
	msg->version = 0;
	msg->status = 0;
	msg->reason = (struct sbx_http_str){NULL, 0};
	msg->nheaders = 0;
	msg->head_len = 0;
	msg->body = SBX_HTTP_BODY_NONE;
	msg->content_length = 0;
	msg->keep_alive = false;
	msg->expect_continue = false;
	msg->upgrade = false;
	msg->host = (struct sbx_http_str){NULL, 0};
}

static int parse_head(const char *buf, size_t len, struct head_ctx *ctx, struct sbx_http_msg *msg,
		      struct sbx_http_error *err)
{
	const unsigned char *u = (const unsigned char *)buf;
	/* Nothing past the head cap is ever looked at, so the answer for a long buffer is the
	 * answer for its first SBX_HTTP_MAX_HEAD bytes. */
	size_t lim = len < SBX_HTTP_MAX_HEAD ? len : SBX_HTTP_MAX_HEAD;
	bool at_cap = len >= SBX_HTTP_MAX_HEAD;
	size_t pos = 0;
	int rc;

	if (!buf) {
		if (len)
			return fail(err, ctx->kind == SBX_HTTP_REQUEST ? 400 : 502, "no input");
		u = (const unsigned char *)""; /* pointer arithmetic on NULL is undefined, even + 0 */
	}
	for (bool first = true;; first = false) {
		size_t start = pos, end, scan_end = lim, n;
		enum { T_NONE, T_CRLF, T_BARE_LF, T_BARE_CR, T_CTL } term = T_NONE;

		if (first && lim - start > (size_t)SBX_HTTP_MAX_START_LINE + 1)
			scan_end = start + SBX_HTTP_MAX_START_LINE + 1;
		if (!first && msg->nheaders == SBX_HTTP_MAX_HEADERS && start < lim && u[start] != '\r')
			return bad(ctx, err, 431, "too many header fields");
		/* The line ends at its first CTL: CR (and then LF), a bare LF, or another control
		 * character, which no line may contain. */
		end = start + first_ctl(u + start, scan_end - start);
		if (end < scan_end) {
			if (u[end] == '\n')
				term = T_BARE_LF;
			else if (u[end] != '\r')
				term = T_CTL;
			else if (end + 1 < lim)
				term = u[end + 1] == '\n' ? T_CRLF : T_BARE_CR;
			/* else: a CR is the last byte we have; its LF may still come */
		}
		n = end - start;
		if (!first && n == 0 && term == T_CRLF) {
			msg->head_len = end + 2;
			return SBX_HTTP_OK;
		}
		/* For T_CTL the offending byte is handed to the line parser, which names it in the
		 * same words it would use for the whole line (the first fault, left to right). */
		if (term == T_CTL)
			n++;
		if (first)
			rc = ctx->kind == SBX_HTTP_REQUEST ? parse_request_line(u + start, n, term == T_CRLF, msg, err)
							   : parse_status_line(u + start, n, term == T_CRLF, msg, err);
		else
			rc = parse_header_line(u + start, n, term == T_CRLF, ctx, msg, err);
		if (rc < 0)
			return rc;
		switch (term) {
		case T_CRLF:
			pos = end + 2;
			continue;
		case T_BARE_LF:
			return bad(ctx, err, 400, "bare LF");
		case T_BARE_CR:
			return bad(ctx, err, 400, "bare CR");
		case T_CTL:
			return bad(ctx, err, 400, "control character"); /* not reached: the line parser refuses it */
		case T_NONE:
			break;
		}
		if (first && n > SBX_HTTP_MAX_START_LINE)
			return bad(ctx, err, 414, "request-line too long");
		if (at_cap)
			return bad(ctx, err, 431, "head too large");
		return SBX_HTTP_INCOMPLETE;
	}
}

static void set_keep_alive(const struct head_ctx *ctx, struct sbx_http_msg *msg)
{
	if (msg->version == 11)
		msg->keep_alive = !ctx->conn_close;
	else
		msg->keep_alive = ctx->conn_keep_alive && !ctx->conn_close;
	/* A body read until close, or a tunnel, ends HTTP on this connection. */
	if (msg->body == SBX_HTTP_BODY_EOF || msg->body == SBX_HTTP_BODY_TUNNEL)
		msg->keep_alive = false;
	msg->upgrade = ctx->conn_upgrade && ctx->has_upgrade;
}

int sbx_http_parse_request(const char *buf, size_t len, struct sbx_http_msg *msg, struct sbx_http_error *err)
{
	struct head_ctx ctx = {.kind = SBX_HTTP_REQUEST};
	struct sbx_http_error dummy;
	int rc;

	if (!err)
		err = &dummy;
	msg_reset(msg, SBX_HTTP_REQUEST);
	rc = parse_head(buf, len, &ctx, msg, err);
	if (rc != SBX_HTTP_OK)
		return rc;
	rc = finish_request(&ctx, msg, err);
	if (rc == SBX_HTTP_OK)
		set_keep_alive(&ctx, msg);
	return rc;
}

int sbx_http_parse_response(const char *buf, size_t len, const char *req_method, struct sbx_http_msg *msg,
			    struct sbx_http_error *err)
{
	struct head_ctx ctx = {.kind = SBX_HTTP_RESPONSE, .req_method = req_method};
	struct sbx_http_error dummy;
	int rc;

	if (!err)
		err = &dummy;
	msg_reset(msg, SBX_HTTP_RESPONSE);
	rc = parse_head(buf, len, &ctx, msg, err);
	if (rc != SBX_HTTP_OK)
		return rc;
	rc = finish_response(&ctx, msg, err);
	if (rc == SBX_HTTP_OK)
		set_keep_alive(&ctx, msg);
	return rc;
}

/* ---- chunked transfer coding (RFC 9112 7.1) ---- */

enum {
	CH_SIZE,           /* chunk-size hex digits */
	CH_EXT_NAME_START, /* after ';': first char of a chunk-ext-name */
	CH_EXT_NAME,
	CH_EXT_VAL_START,  /* after '=' */
	CH_EXT_VAL_TOKEN,
	CH_EXT_VAL_QUOTED,
	CH_EXT_VAL_QESC,   /* after a backslash inside a quoted-string */
	CH_EXT_VAL_QEND,   /* after the closing quote: ';' or CR */
	CH_SIZE_LF,        /* CR of the size line seen */
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TRAILER_START,  /* start of a trailer field line, or the final CRLF */
	CH_TRAILER_NAME,
	CH_TRAILER_VALUE,
	CH_TRAILER_LF,
	CH_FINAL_LF,
	CH_DONE,
	CH_ERROR,
};

/* Framing fields must never appear in trailers: an implementation that merges trailers into the
 * header section would re-frame the message after we have forwarded it. While a trailer name is
 * being read, c->remaining (unused after the last chunk) holds the bitmask of these names that
 * still match the bytes seen so far. */
static const char *const forbidden_trailers[] = {"content-length", "transfer-encoding", "host"};

void sbx_http_chunked_init(struct sbx_http_chunked *c, uint64_t max_body)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE;
	c->max_body = max_body;
}

static int chunk_fail(struct sbx_http_chunked *c, struct sbx_http_error *err, int status, const char *reason)
{
	c->state = CH_ERROR;
	return fail(err, status, reason);
}

/* The size line is complete: set up the data phase or the trailer section. */
static int chunk_size_done(struct sbx_http_chunked *c, struct sbx_http_error *err)
{
	c->line_len = 0;
	c->size_digits = false;
	c->in_ext = false;
	if (c->remaining == 0) {
		c->state = CH_TRAILER_START;
		return 0;
	}
	if (c->max_body && c->remaining > c->max_body - c->total)
		return chunk_fail(c, err, 413, "body too large");
	if (c->remaining > UINT64_MAX - c->total)
		return chunk_fail(c, err, 400, "chunked body too large");
	c->state = CH_DATA;
	return 0;
}

/* One byte of the size line (chunk-size [chunk-ext] before the CR). */
static int chunk_size_byte(struct sbx_http_chunked *c, unsigned char ch, struct sbx_http_error *err)
{
	if (ch == '\n')
		return chunk_fail(c, err, 400, "bare LF in chunk-size line");
	if (ch == '\r') {
		switch (c->state) {
		case CH_SIZE:
			if (!c->size_digits)
				return chunk_fail(c, err, 400, "missing chunk size");
			break;
		case CH_EXT_NAME:
		case CH_EXT_VAL_TOKEN:
		case CH_EXT_VAL_QEND:
			break;
		default:
			return chunk_fail(c, err, 400, "malformed chunk extension");
		}
		c->state = CH_SIZE_LF;
		return 0;
	}
	if (++c->line_len > SBX_HTTP_MAX_CHUNK_LINE)
		return chunk_fail(c, err, 400, "chunk-size line too long");
	switch (c->state) {
	case CH_SIZE: {
		int d = hex_val(ch);

		if (d >= 0) {
			/* line_len counts only digits so far: at most 16 keeps the size in 64 bits. */
			if (c->line_len > 16)
				return chunk_fail(c, err, 400, "chunk size too long");
			c->remaining = c->remaining << 4 | (uint64_t)d;
			c->size_digits = true;
			return 0;
		}
		if (ch == ';' && c->size_digits) {
			c->in_ext = true;
			c->state = CH_EXT_NAME_START;
			return 0;
		}
		return chunk_fail(c, err, 400, "invalid chunk size");
	}
	case CH_EXT_NAME_START:
		if (!is_tchar(ch))
			return chunk_fail(c, err, 400, "malformed chunk extension");
		c->state = CH_EXT_NAME;
		return 0;
	case CH_EXT_NAME:
		if (is_tchar(ch))
			return 0;
		if (ch == ';')
			c->state = CH_EXT_NAME_START;
		else if (ch == '=')
			c->state = CH_EXT_VAL_START;
		else
			return chunk_fail(c, err, 400, "malformed chunk extension");
		return 0;
	case CH_EXT_VAL_START:
		if (ch == '"')
			c->state = CH_EXT_VAL_QUOTED;
		else if (is_tchar(ch))
			c->state = CH_EXT_VAL_TOKEN;
		else
			return chunk_fail(c, err, 400, "malformed chunk extension");
		return 0;
	case CH_EXT_VAL_TOKEN:
		if (is_tchar(ch))
			return 0;
		if (ch == ';')
			c->state = CH_EXT_NAME_START;
		else
			return chunk_fail(c, err, 400, "malformed chunk extension");
		return 0;
	case CH_EXT_VAL_QUOTED:
		/* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
		if (ch == '"')
			c->state = CH_EXT_VAL_QEND;
		else if (ch == '\\')
			c->state = CH_EXT_VAL_QESC;
		else if (!is_field_char(ch))
			return chunk_fail(c, err, 400, "control character in chunk extension");
		return 0;
	case CH_EXT_VAL_QESC:
		if (!is_field_char(ch))
			return chunk_fail(c, err, 400, "control character in chunk extension");
		c->state = CH_EXT_VAL_QUOTED;
		return 0;
	case CH_EXT_VAL_QEND:
		if (ch == ';')
			c->state = CH_EXT_NAME_START;
		else
			return chunk_fail(c, err, 400, "malformed chunk extension");
		return 0;
	default:
		return chunk_fail(c, err, 400, "chunked decoder state");
	}
}

/* One byte of the trailer section (after the last-chunk line). Returns 1 when the final CRLF
 * is complete. */
static int chunk_trailer_byte(struct sbx_http_chunked *c, unsigned char ch, struct sbx_http_error *err)
{
	/* The final CRLF is not a trailer field and does not count against the cap. */
	if (c->state == CH_TRAILER_START && ch == '\r') {
		c->state = CH_FINAL_LF;
		return 0;
	}
	if (c->state != CH_FINAL_LF && ++c->trailer_bytes > SBX_HTTP_MAX_TRAILERS)
		return chunk_fail(c, err, 400, "trailers too large");
	switch (c->state) {
	case CH_TRAILER_START:
		if (is_ows(ch))
			return chunk_fail(c, err, 400, "obs-fold not allowed");
		if (ch == ':')
			return chunk_fail(c, err, 400, "empty header name");
		if (!is_tchar(ch))
			return chunk_fail(c, err, 400, ch == '\n' ? "bare LF" : "invalid character in header name");
		c->state = CH_TRAILER_NAME;
		c->line_len = 0;
		c->remaining = (1u << (sizeof(forbidden_trailers) / sizeof(forbidden_trailers[0]))) - 1;
		/* fall through: match the first name byte */
		__attribute__((fallthrough));
	case CH_TRAILER_NAME:
		if (ch == ':') {
			for (size_t k = 0; k < sizeof(forbidden_trailers) / sizeof(forbidden_trailers[0]); k++)
				if (((c->remaining >> k) & 1) && strlen(forbidden_trailers[k]) == c->line_len)
					return chunk_fail(c, err, 400, "framing field in trailers");
			c->remaining = 0;
			c->state = CH_TRAILER_VALUE;
			return 0;
		}
		if (!is_tchar(ch)) {
			if (is_ows(ch))
				return chunk_fail(c, err, 400, "whitespace in header name or before colon");
			return chunk_fail(c, err, 400, "invalid character in header name");
		}
		for (size_t k = 0; k < sizeof(forbidden_trailers) / sizeof(forbidden_trailers[0]); k++) {
			const char *f = forbidden_trailers[k];
			unsigned char l = lower(ch);

			/* '_' matches '-' for the same reason as in the head (classify_header). */
			if (c->line_len >= strlen(f) ||
			    !(l == (unsigned char)f[c->line_len] || (l == '_' && f[c->line_len] == '-')))
				c->remaining &= ~((uint64_t)1 << k);
		}
		c->line_len++;
		return 0;
	case CH_TRAILER_VALUE:
		if (ch == '\r')
			c->state = CH_TRAILER_LF;
		else if (ch == '\n')
			return chunk_fail(c, err, 400, "bare LF");
		else if (!is_field_char(ch))
			return chunk_fail(c, err, 400, ch == 0 ? "NUL byte in header" : "control character in header value");
		return 0;
	case CH_TRAILER_LF:
		if (ch != '\n')
			return chunk_fail(c, err, 400, "bare CR");
		c->state = CH_TRAILER_START;
		return 0;
	case CH_FINAL_LF:
		if (ch != '\n')
			return chunk_fail(c, err, 400, "bare CR");
		c->state = CH_DONE;
		return 1;
	default:
		return chunk_fail(c, err, 400, "chunked decoder state");
	}
}

int sbx_http_chunked_feed(struct sbx_http_chunked *c, const char *in, size_t len, size_t *consumed,
			  sbx_http_data_cb cb, void *ud, struct sbx_http_error *err)
{
	const unsigned char *u = (const unsigned char *)in;
	struct sbx_http_error dummy;
	size_t i = 0;
	int rc;

	if (!err)
		err = &dummy;
	*consumed = 0;
	if (c->state == CH_DONE)
		return 1;
	if (c->state == CH_ERROR)
		return fail(err, 400, "chunked body already failed");
	while (i < len) {
		unsigned char ch = u[i];

		switch (c->state) {
		case CH_DATA: {
			size_t avail = len - i;
			size_t n = c->remaining < avail ? (size_t)c->remaining : avail;

			if (cb)
				cb(ud, in + i, n);
			c->remaining -= n;
			c->total += n;
			i += n;
			if (c->remaining == 0)
				c->state = CH_DATA_CR;
			continue;
		}
		case CH_DATA_CR:
			if (ch != '\r') {
				*consumed = i;
				return chunk_fail(c, err, 400, ch == '\n' ? "bare LF after chunk data" : "missing CRLF after chunk data");
			}
			c->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
		case CH_SIZE_LF:
			if (ch != '\n') {
				*consumed = i;
				return chunk_fail(c, err, 400, "bare CR");
			}
			if (c->state == CH_DATA_LF) {
				c->state = CH_SIZE;
				c->remaining = 0;
			} else if (chunk_size_done(c, err) < 0) {
				*consumed = i;
				return -1;
			}
			break;
		case CH_SIZE:
		case CH_EXT_NAME_START:
		case CH_EXT_NAME:
		case CH_EXT_VAL_START:
		case CH_EXT_VAL_TOKEN:
		case CH_EXT_VAL_QUOTED:
		case CH_EXT_VAL_QESC:
		case CH_EXT_VAL_QEND:
			if (chunk_size_byte(c, ch, err) < 0) {
				*consumed = i;
				return -1;
			}
			break;
		default:
			rc = chunk_trailer_byte(c, ch, err);
			if (rc < 0) {
				*consumed = i;
				return -1;
			}
			if (rc == 1) {
				*consumed = i + 1;
				return 1;
			}
			break;
		}
		i++;
	}
	*consumed = len;
	return 0;
}

/* ---- request targets ---- */

/* DNS name or IPv4 literal in p[0..n) (no port), lowercased into t->host. */
static int parse_reg_name(const unsigned char *p, size_t n, struct sbx_http_target *t)
{
	size_t label = 0, last_start = 0;
	bool numeric_last;

	/* One trailing dot is the root label of a fully qualified name: same host. */
	if (n > 0 && p[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = p[i];

		if (ch == '.') {
			if (label == 0)
				return -1;
			label = 0;
			last_start = i + 1;
			continue;
		}
		if (!is_alpha(ch) && !is_digit(ch) && ch != '-' && ch != '_')
			return -1;
		if (++label > 63)
			return -1;
	}
	if (label == 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		t->host[i] = (char)lower(p[i]);
	t->host[n] = '\0';
	/* A name whose last label is a number ("10.1", "2130706433", "0x7f.1") is an address to
	 * inet_aton() and getaddrinfo(), which would resolve it without DNS and around any name
	 * rule. Only the strict dotted quad is accepted as an IPv4 literal. */
	numeric_last = true;
	{
		size_t i = last_start;

		if (n - i >= 2 && p[i] == '0' && lower(p[i + 1]) == 'x') {
			for (i += 2; i < n; i++)
				if (hex_val(p[i]) < 0)
					numeric_last = false;
		} else {
			for (; i < n; i++)
				if (!is_digit(p[i]))
					numeric_last = false;
		}
	}
	if (numeric_last) {
		struct in_addr a;

		if (inet_pton(AF_INET, t->host, &a) != 1)
			return -1;
	}
	return 0;
}

static int parse_host_port(const unsigned char *p, size_t n, uint16_t default_port, struct sbx_http_target *t)
{
	size_t i, he;

	t->host[0] = '\0';
	t->port = 0;
	t->is_ipv6 = false;
	if (!p || n == 0 || memchr(p, '@', n))
		return -1;
	if (p[0] == '[') {
		const unsigned char *close = memchr(p, ']', n);
		char tmp[64];
		struct in6_addr a6;
		size_t an;

		if (!close)
			return -1;
		an = (size_t)(close - p) - 1;
		if (an == 0 || an >= sizeof(tmp))
			return -1;
		memcpy(tmp, p + 1, an);
		tmp[an] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return -1;
		/* Store the canonical text so "::1" and "0:0::1" compare equal in rules. */
		if (!inet_ntop(AF_INET6, &a6, t->host, sizeof(t->host)))
			return -1;
		t->is_ipv6 = true;
		i = (size_t)(close - p) + 1;
		if (i < n && p[i] != ':')
			goto bad;
	} else {
		for (he = 0; he < n && p[he] != ':'; he++)
			;
		if (parse_reg_name(p, he, t) < 0)
			goto bad;
		i = he;
	}
	if (i < n) {
		uint32_t port = 0;

		i++; /* ':' */
		if (i == n)
			goto bad;
		for (; i < n; i++) {
			if (!is_digit(p[i]))
				goto bad;
			port = port * 10 + (uint32_t)(p[i] - '0');
			if (port > 65535)
				goto bad;
		}
		if (port == 0)
			goto bad;
		t->port = (uint16_t)port;
	} else {
		if (default_port == 0)
			goto bad;
		t->port = default_port;
	}
	return 0;
bad:
	t->host[0] = '\0';
	t->port = 0;
	t->is_ipv6 = false;
	return -1;
}

static void target_reset(struct sbx_http_target *t)
{
	memset(t, 0, sizeof(*t));
	t->path.p = "";
	t->path.len = 0;
}

int sbx_http_parse_authority(struct sbx_http_str s, uint16_t default_port, struct sbx_http_target *t)
{
	target_reset(t);
	return parse_host_port((const unsigned char *)s.p, s.len, default_port, t);
}

int sbx_http_parse_absolute_uri(struct sbx_http_str s, struct sbx_http_target *t)
{
	const unsigned char *p = (const unsigned char *)s.p;
	size_t n = s.len, colon, a, ae;
	uint16_t port;
	const char *scheme;

	target_reset(t);
	if (!p || n == 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!is_target_char(p[i]) || p[i] == '#')
			return -1;
	for (colon = 0; colon < n && p[colon] != ':'; colon++)
		;
	if (colon == 4 && mem_ieq(p, "http", 4)) {
		scheme = "http";
		port = 80;
	} else if (colon == 5 && mem_ieq(p, "https", 5)) {
		scheme = "https";
		port = 443;
	} else {
		return -1;
	}
	if (n - colon < 3 || p[colon + 1] != '/' || p[colon + 2] != '/')
		return -1;
	a = colon + 3;
	for (ae = a; ae < n && p[ae] != '/' && p[ae] != '?'; ae++)
		;
	/* "http://host?q" would need the path "/?q", which is not in the caller's buffer and
	 * cannot be returned without a copy; real clients always send the '/'. Refuse it. */
	if (ae < n && p[ae] == '?')
		return -1;
	if (parse_host_port(p + a, ae - a, port, t) < 0)
		return -1;
	memcpy(t->scheme, scheme, strlen(scheme) + 1);
	if (ae < n) {
		t->path.p = (const char *)p + ae;
		t->path.len = n - ae;
	} else {
		t->path.p = "/";
		t->path.len = 1;
	}
	return 0;
}

/* ---- status text ---- */

const char *sbx_http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 451: return "Unavailable For Legal Reasons";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}
