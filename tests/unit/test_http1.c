/* test_http1.c - the strict HTTP/1.1 parser: request and response heads, smuggling shapes,
 * caps, fragmentation, the chunked decoder, authorities and absolute URIs. */
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "tap.h"

/* Literal with its length; works for literals with embedded NULs. */
#define RAW(s) (s), (sizeof(s) - 1)

struct neg_case {
	const char *name;
	const char *raw;
	size_t len;
	int status;
};
#define NEG(name, raw, status) {(name), (raw), sizeof(raw) - 1, (status)}

static int parse_req(const char *raw, size_t len, struct sbx_http_msg *m, struct sbx_http_error *e)
{
	e->status = 0;
	e->reason = NULL;
	return sbx_http_parse_request(raw, len, m, e);
}

static int parse_resp(const char *raw, size_t len, const char *method, struct sbx_http_msg *m,
		      struct sbx_http_error *e)
{
	e->status = 0;
	e->reason = NULL;
	return sbx_http_parse_response(raw, len, method, m, e);
}

/* Exact-size heap copy, so ASan reports any read past len. */
static char *dup_exact(const char *raw, size_t len)
{
	char *p = malloc(len ? len : 1);

	if (p && len)
		memcpy(p, raw, len);
	return p;
}

/* Every proper prefix of a message must be INCOMPLETE or the whole message's error: the parser
 * never accepts a prefix and never invents a different error for it. Returns true when so. */
static bool prefixes_consistent(const char *raw, size_t len, bool response, const char *method, int whole_rc,
				const struct sbx_http_error *whole_err, size_t head_len)
{
	struct sbx_http_msg *m = malloc(sizeof(*m));
	bool good = true;

	for (size_t n = 0; n < len && good; n++) {
		struct sbx_http_error e;
		char *p = dup_exact(raw, n);
		int rc = response ? parse_resp(p, n, method, m, &e) : parse_req(p, n, m, &e);

		if (whole_rc == SBX_HTTP_OK) {
			if (n < head_len && rc != SBX_HTTP_INCOMPLETE)
				good = false;
			if (n >= head_len && (rc != SBX_HTTP_OK || m->head_len != head_len))
				good = false;
		} else if (rc == SBX_HTTP_OK) {
			good = false;
		} else if (rc == SBX_HTTP_ERROR &&
			   (e.status != whole_err->status || strcmp(e.reason, whole_err->reason) != 0)) {
			good = false;
		}
		if (!good)
			diag("prefix %zu: rc=%d status=%d reason=%s", n, rc, e.status, e.reason ? e.reason : "-");
		free(p);
	}
	free(m);
	return good;
}

static void check_refused(const struct neg_case *c, bool response, const char *method)
{
	struct sbx_http_msg m;
	struct sbx_http_error e;
	char *p = dup_exact(c->raw, c->len);
	int rc = response ? parse_resp(p, c->len, method, &m, &e) : parse_req(p, c->len, &m, &e);

	if (!ok(rc == SBX_HTTP_ERROR && e.status == c->status && e.reason && *e.reason, "refused (%d): %s",
		c->status, c->name))
		diag("rc=%d status=%d reason=%s", rc, e.status, e.reason ? e.reason : "-");
	else
		ok(prefixes_consistent(c->raw, c->len, response, method, rc, &e, 0),
		   "prefixes of '%s' incomplete or the same error (%s)", c->name, e.reason);
	free(p);
}

/* ---- requests: accepted ---- */

static void test_request_basic(void)
{
	static const char raw[] = "GET /index.html?x=1 HTTP/1.1\r\n"
				  "Host: Example.com\r\n"
				  "User-Agent:  curl/8.0 \t\r\n"
				  "X-Empty:\r\n"
				  "X-Obs: caf\xc3\xa9\r\n"
				  "\r\n";
	struct sbx_http_msg m;
	struct sbx_http_error e;
	char buf[64];

	is_int(parse_req(RAW(raw), &m, &e), SBX_HTTP_OK, "simple GET parses");
	ok(m.kind == SBX_HTTP_REQUEST, "kind is request");
	ok(sbx_http_str_eq(m.method, "GET"), "method GET");
	ok(sbx_http_str_eq(m.target, "/index.html?x=1"), "target kept as sent");
	is_int(m.version, 11, "version 11");
	is_int(m.nheaders, 4, "four headers");
	is_int(m.head_len, sizeof(raw) - 1, "head_len is the whole head");
	ok(m.body == SBX_HTTP_BODY_NONE, "no body without CL/TE");
	ok(m.keep_alive, "1.1 keeps alive by default");
	ok(!m.expect_continue && !m.upgrade, "no expect, no upgrade");
	ok(sbx_http_str_eq(m.host, "Example.com"), "host value");
	ok(sbx_http_str_eq(m.headers[1].value, "curl/8.0"), "value trimmed of SP and HTAB");
	ok(m.headers[2].value.len == 0, "empty value allowed");
	ok(sbx_http_str_eq(m.headers[3].value, "caf\xc3\xa9"), "obs-text allowed in values");
	ok(m.method.p == raw && m.target.p == raw + 4, "strings point into the buffer");
	ok(sbx_http_header_get(&m, "user-agent") == &m.headers[1].value, "header_get is case-insensitive");
	ok(sbx_http_header_get(&m, "missing") == NULL, "header_get NULL when absent");
	is_int(sbx_http_header_count(&m, "HOST"), 1, "header_count");
	memcpy(buf, m.headers[1].value.p, m.headers[1].value.len);
	buf[m.headers[1].value.len] = '\0';
	is_str(buf, "curl/8.0", "value text");
}

static void test_request_bodies(void)
{
	struct sbx_http_msg m;
	struct sbx_http_error e;

	is_int(parse_req(RAW("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"), &m, &e), SBX_HTTP_OK,
	       "POST with Content-Length");
	ok(m.body == SBX_HTTP_BODY_LENGTH && m.content_length == 5, "body LENGTH 5");
	is_int(m.head_len, sizeof("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n") - 1,
	       "head_len stops before the body");

	is_int(parse_req(RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n"), &m, &e), SBX_HTTP_OK,
	       "Content-Length with leading zeros");
	ok(m.body == SBX_HTTP_BODY_LENGTH && m.content_length == 7, "007 is 7");

	is_int(parse_req(RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), &m, &e), SBX_HTTP_OK,
	       "Content-Length 0");
	ok(m.body == SBX_HTTP_BODY_LENGTH && m.content_length == 0, "LENGTH 0");

	is_int(parse_req(RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"), &m, &e),
	       SBX_HTTP_OK, "Content-Length 2^63-1 accepted");
	ok(m.content_length == 9223372036854775807ULL, "2^63-1 value");

	is_int(parse_req(RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\t12 \r\n\r\n"), &m, &e), SBX_HTTP_OK,
	       "Content-Length with OWS around");
	ok(m.content_length == 12, "OWS trimmed");

	is_int(parse_req(RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), &m, &e),
	       SBX_HTTP_OK, "chunked request");
	ok(m.body == SBX_HTTP_BODY_CHUNKED, "body CHUNKED");
	is_int(parse_req(RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\t CHUNKED \t\r\n\r\n"), &m, &e),
	       SBX_HTTP_OK, "TE chunked case-insensitive, OWS trimmed");
	ok(m.body == SBX_HTTP_BODY_CHUNKED, "still CHUNKED");

	is_int(parse_req(RAW("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n"), &m,
			 &e),
	       SBX_HTTP_OK, "Expect request");
	ok(m.expect_continue, "expect_continue set");
	is_int(parse_req(RAW("POST / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n"), &m, &e), SBX_HTTP_OK,
	       "other Expect parses");
	ok(!m.expect_continue, "expect_continue only for 100-continue");
}

static void test_request_connection(void)
{
	struct sbx_http_msg m;
	struct sbx_http_error e;

	is_int(parse_req(RAW("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), &m, &e), SBX_HTTP_OK,
	       "1.1 Connection: close");
	ok(!m.keep_alive, "close ends keep-alive");
	is_int(parse_req(RAW("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, CLOSE\r\n\r\n"), &m, &e),
	       SBX_HTTP_OK, "close in a list");
	ok(!m.keep_alive, "close wins in a list");
	is_int(parse_req(RAW("GET / HTTP/1.0\r\n\r\n"), &m, &e), SBX_HTTP_OK, "1.0 without Host");
	is_int(m.version, 10, "version 10");
	ok(!m.keep_alive, "1.0 closes by default");
	ok(m.host.len == 0, "no host");
	is_int(parse_req(RAW("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), &m, &e), SBX_HTTP_OK,
	       "1.0 keep-alive");
	ok(m.keep_alive, "1.0 keep-alive honoured");
	is_int(parse_req(RAW("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"), &m, &e),
	       SBX_HTTP_OK, "1.0 keep-alive then close");
	ok(!m.keep_alive, "close across Connection lines");
	is_int(parse_req(RAW("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"),
			 &m, &e),
	       SBX_HTTP_OK, "websocket upgrade request");
	ok(m.upgrade, "upgrade set with Connection: upgrade + Upgrade");
	is_int(parse_req(RAW("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"), &m, &e), SBX_HTTP_OK,
	       "Upgrade without Connection token");
	ok(!m.upgrade, "upgrade needs the Connection token");
	is_int(parse_req(RAW("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n"), &m, &e), SBX_HTTP_OK,
	       "Connection: upgrade without Upgrade");
	ok(!m.upgrade, "upgrade needs the Upgrade header");
	is_int(parse_req(RAW("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade:\r\n\r\n"), &m, &e), SBX_HTTP_OK,
	       "empty Upgrade");
	ok(!m.upgrade, "an empty Upgrade names no protocol");
	is_int(parse_req(RAW("GET / HTTP/1.1\r\nHost: a\r\nConnection: TE, X-Foo\r\nTE: trailers\r\n\r\n"), &m, &e),
	       SBX_HTTP_OK, "Connection listing other hop-by-hop fields is fine");
}

static void test_request_forms(void)
{
	struct sbx_http_msg m;
	struct sbx_http_error e;

	is_int(parse_req(RAW("GET http://other.example/x HTTP/1.1\r\nHost: example.com\r\n\r\n"), &m, &e),
	       SBX_HTTP_OK, "absolute-form with a different Host is allowed at this layer");
	ok(sbx_http_str_eq(m.target, "http://other.example/x"), "absolute target kept");
	is_int(parse_req(RAW("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), &m, &e),
	       SBX_HTTP_OK, "CONNECT authority-form");
	ok(sbx_http_str_eq(m.method, "CONNECT") && sbx_http_str_eq(m.target, "example.com:443"), "CONNECT parts");
	is_int(parse_req(RAW("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), &m, &e), SBX_HTTP_OK, "asterisk-form");
	is_int(parse_req(RAW("M-SEARCH * HTTP/1.1\r\nHost: [::1]:1900\r\n\r\n"), &m, &e), SBX_HTTP_OK,
	       "token method with '-', IPv6 Host");
	is_int(parse_req(RAW("GET / HTTP/1.1\r\nHost:\r\n\r\n"), &m, &e), SBX_HTTP_OK, "empty Host is legal");
	is_int(parse_req(RAW("GET / HTTP/1.1\r\nHost: example.com.\r\n\r\n"), &m, &e), SBX_HTTP_OK,
	       "Host with trailing dot");
	is_int(parse_req(RAW("get / HTTP/1.1\r\nHost: a\r\n\r\n"), &m, &e), SBX_HTTP_OK,
	       "lowercase method is a token (the proxy decides)");
}

static void test_request_pipelined(void)
{
	static const char raw[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
				  "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
				  "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
	struct sbx_http_msg m;
	struct sbx_http_error e;
	size_t off = 0;

	is_int(parse_req(RAW(raw), &m, &e), SBX_HTTP_OK, "pipelined: first");
	ok(sbx_http_str_eq(m.target, "/1"), "first target");
	is_int(m.head_len, 28, "first head_len");
	off += m.head_len;
	is_int(parse_req(raw + off, sizeof(raw) - 1 - off, &m, &e), SBX_HTTP_OK, "pipelined: second");
	ok(sbx_http_str_eq(m.target, "/2") && m.content_length == 2, "second target and length");
	off += m.head_len + m.content_length;
	is_int(parse_req(raw + off, sizeof(raw) - 1 - off, &m, &e), SBX_HTTP_OK, "pipelined: third");
	ok(sbx_http_str_eq(m.target, "/3"), "third target");
	is_int(off + m.head_len, sizeof(raw) - 1, "all bytes accounted for");
}

static void test_request_incremental(void)
{
	static const char raw[] = "POST /upload HTTP/1.1\r\nHost: example.com:8080\r\n"
				  "Transfer-Encoding: chunked\r\nX-A: b\r\n\r\n";
	struct sbx_http_msg m;
	struct sbx_http_error e;
	int rc = parse_req(RAW(raw), &m, &e);

	is_int(rc, SBX_HTTP_OK, "whole head parses");
	ok(prefixes_consistent(RAW(raw), false, NULL, rc, &e, sizeof(raw) - 1),
	   "byte-at-a-time: every prefix INCOMPLETE, full head OK");
	is_int(parse_req(RAW("GET / HTTP/1.1\r\nHost: a\r\n\r"), &m, &e), SBX_HTTP_INCOMPLETE,
	       "ends between CR and LF of the last line");
	is_int(parse_req(RAW("GET / HTTP/1.1\r"), &m, &e), SBX_HTTP_INCOMPLETE, "ends in the request-line CRLF");
	is_int(parse_req(RAW(""), &m, &e), SBX_HTTP_INCOMPLETE, "empty input");
	is_int(parse_req(NULL, 0, &m, &e), SBX_HTTP_INCOMPLETE, "NULL, 0");
	is_int(sbx_http_parse_request(RAW("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &m, NULL), SBX_HTTP_OK,
	       "err may be NULL");
	is_int(sbx_http_parse_request(RAW("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), &m, NULL), SBX_HTTP_ERROR,
	       "err may be NULL on error too");

	/* Every split of a head with a body behind it. */
	static const char two[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
	bool good = true;
	for (size_t n = 0; n <= sizeof(two) - 1; n++) {
		int r = parse_req(two, n, &m, &e);

		if (n < 28 ? r != SBX_HTTP_INCOMPLETE : (r != SBX_HTTP_OK || m.head_len != 28))
			good = false;
	}
	ok(good, "pipelined input: every length gives INCOMPLETE then the first head");
}

/* ---- requests: caps ---- */

static char *make_head(size_t target_len, size_t nheaders, size_t pad_to, size_t *len)
{
	size_t cap = target_len + nheaders * 32 + pad_to + 256;
	char *b = malloc(cap);
	size_t n = 0;

	memcpy(b + n, "GET /", 5);
	n += 5;
	for (size_t i = 1; i < target_len; i++)
		b[n++] = 'a';
	memcpy(b + n, " HTTP/1.1\r\nHost: a\r\n", 20);
	n += 20;
	for (size_t i = 1; i < nheaders; i++)
		n += (size_t)snprintf(b + n, cap - n, "X-H%zu: v\r\n", i);
	if (pad_to) {
		/* one header padded so the whole head is exactly pad_to bytes */
		memcpy(b + n, "X: ", 3);
		n += 3;
		while (n + 2 + 2 < pad_to)
			b[n++] = 'p';
		memcpy(b + n, "\r\n", 2);
		n += 2;
	}
	memcpy(b + n, "\r\n", 2);
	n += 2;
	*len = n;
	return b;
}

static void test_request_caps(void)
{
	struct sbx_http_msg *m = malloc(sizeof(*m));
	struct sbx_http_error e;
	size_t len;
	char *b;
	int rc;

	/* request-line length: "GET " + target + " HTTP/1.1" */
	b = make_head(SBX_HTTP_MAX_START_LINE - 13, 1, 0, &len);
	is_int(parse_req(b, len, m, &e), SBX_HTTP_OK, "request-line of exactly %d bytes", SBX_HTTP_MAX_START_LINE);
	free(b);
	b = make_head(SBX_HTTP_MAX_START_LINE - 12, 1, 0, &len);
	rc = parse_req(b, len, m, &e);
	ok(rc == SBX_HTTP_ERROR && e.status == 414, "request-line one byte over -> 414");
	rc = parse_req(b, SBX_HTTP_MAX_START_LINE + 1, m, &e);
	ok(rc == SBX_HTTP_ERROR && e.status == 414, "414 as soon as the line is over the cap, before its CRLF");
	rc = parse_req(b, SBX_HTTP_MAX_START_LINE, m, &e);
	is_int(rc, SBX_HTTP_INCOMPLETE, "a line at the cap without CRLF is still INCOMPLETE");
	free(b);

	b = make_head(1, SBX_HTTP_MAX_HEADERS, 0, &len);
	rc = parse_req(b, len, m, &e);
	is_int(rc, SBX_HTTP_OK, "%d headers accepted", SBX_HTTP_MAX_HEADERS);
	is_int(m->nheaders, SBX_HTTP_MAX_HEADERS, "nheaders at the cap");
	free(b);
	b = make_head(1, SBX_HTTP_MAX_HEADERS + 1, 0, &len);
	rc = parse_req(b, len, m, &e);
	ok(rc == SBX_HTTP_ERROR && e.status == 431, "%d headers -> 431", SBX_HTTP_MAX_HEADERS + 1);
	free(b);

	b = make_head(1, 1, SBX_HTTP_MAX_HEAD, &len);
	is_int(len, SBX_HTTP_MAX_HEAD, "padded head size");
	rc = parse_req(b, len, m, &e);
	is_int(rc, SBX_HTTP_OK, "head of exactly SBX_HTTP_MAX_HEAD bytes accepted");
	is_int(m->head_len, SBX_HTTP_MAX_HEAD, "head_len at the cap");
	free(b);
	b = make_head(1, 1, SBX_HTTP_MAX_HEAD + 1, &len);
	rc = parse_req(b, len, m, &e);
	ok(rc == SBX_HTTP_ERROR && e.status == 431, "one byte over the head cap -> 431");
	rc = parse_req(b, SBX_HTTP_MAX_HEAD - 1, m, &e);
	is_int(rc, SBX_HTTP_INCOMPLETE, "below the cap it is INCOMPLETE");
	rc = parse_req(b, SBX_HTTP_MAX_HEAD, m, &e);
	ok(rc == SBX_HTTP_ERROR && e.status == 431, "431 as soon as the cap is reached without the end");
	/* Feeding 64 KiB in steps must stay fast (linear per call). */
	bool good = true;
	for (size_t n = 0; n < SBX_HTTP_MAX_HEAD; n += 61)
		if (parse_req(b, n, m, &e) != SBX_HTTP_INCOMPLETE)
			good = false;
	ok(good, "every prefix of a 64 KiB head is INCOMPLETE");
	free(b);

	{
		char meth[64];
		char raw[128];
		int n;

		memset(meth, 'M', sizeof(meth));
		n = snprintf(raw, sizeof(raw), "%.*s / HTTP/1.1\r\nHost: a\r\n\r\n", SBX_HTTP_MAX_METHOD, meth);
		is_int(parse_req(raw, (size_t)n, m, &e), SBX_HTTP_OK, "method of %d chars", SBX_HTTP_MAX_METHOD);
		n = snprintf(raw, sizeof(raw), "%.*s / HTTP/1.1\r\nHost: a\r\n\r\n", SBX_HTTP_MAX_METHOD + 1, meth);
		rc = parse_req(raw, (size_t)n, m, &e);
		ok(rc == SBX_HTTP_ERROR && e.status == 501, "method of %d chars -> 501", SBX_HTTP_MAX_METHOD + 1);
	}
	free(m);
}

/* ---- requests: refused ---- */

static const struct neg_case request_refusals[] = {
	/* request smuggling: framing headers */
	NEG("CL.TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	NEG("TE.CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n", 400),
	NEG("TE.CL with CL 0", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", 400),
	NEG("TE.TE space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400),
	NEG("TE.TE tab before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n", 400),
	NEG("TE.TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 501),
	NEG("TE.TE chunked, identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400),
	NEG("TE.TE identity, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n", 400),
	NEG("TE.TE chunked,chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,chunked\r\n\r\n", 400),
	NEG("TE.TE two headers", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	NEG("TE.TE chunked + identity headers", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", 400),
	NEG("TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501),
	NEG("TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
	NEG("TE quoted chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 501),
	NEG("TE chunked with parameter", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 501),
	NEG("TE chunked with inner space", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chun ked\r\n\r\n", 501),
	NEG("TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400),
	NEG("TE empty list element", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n", 400),
	NEG("TE vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x0b\r\n\r\n", 400),
	NEG("TE form feed", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0c" "chunked\r\n\r\n", 400),
	NEG("TE NUL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\0\r\n\r\n", 400),
	NEG("TE obs-fold", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", 400),
	NEG("TE obs-fold tab", "POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n\tTransfer-Encoding: chunked\r\n\r\n", 400),
	NEG("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	NEG("Transfer_Encoding underscore", "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n", 400),
	NEG("Content_Length underscore", "POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\n\r\n", 400),
	NEG("Connection lists Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Content-Length\r\nContent-Length: 5\r\n\r\n", 400),
	NEG("Connection lists Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	NEG("Connection lists Host", "GET / HTTP/1.1\r\nHost: a\r\nConnection: Host\r\n\r\n", 400),
	NEG("TE with trailing garbage name", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\x01: chunked\r\n\r\n", 400),
	NEG("TE with bare CR in value", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r, identity\r\n\r\n", 400),
	/* Content-Length */
	NEG("duplicate CL equal", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400),
	NEG("duplicate CL different", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
	NEG("duplicate CL different case", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", 400),
	NEG("CL list equal", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400),
	NEG("CL list different", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,6\r\n\r\n", 400),
	NEG("CL trailing comma", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", 400),
	NEG("CL plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400),
	NEG("CL negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
	NEG("CL inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n", 400),
	NEG("CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400),
	NEG("CL decimal point", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n", 400),
	NEG("CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400),
	NEG("CL 2^63", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", 400),
	NEG("CL 2^64", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", 400),
	NEG("CL huge", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999999\r\n\r\n", 400),
	NEG("CL NUL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\0\r\n\r\n", 400),
	NEG("CL space before colon", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", 400),
	NEG("CL obs-fold", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n 5\r\n\r\n", 400),
	NEG("CL bare LF", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\n\r\n", 400),
	/* line endings and control characters */
	NEG("bare LF request-line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
	NEG("bare LF header", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400),
	NEG("bare LF end of head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
	NEG("only LFs", "GET / HTTP/1.1\n\n", 400),
	NEG("bare CR request-line", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
	NEG("bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
	NEG("CR CR LF", "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", 400),
	NEG("bare CR end of head", "GET / HTTP/1.1\r\nHost: a\r\n\rX", 400),
	NEG("NUL in target", "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	NEG("NUL in method", "G\0T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	NEG("NUL in header name", "GET / HTTP/1.1\r\nHost: a\r\nX\0Y: z\r\n\r\n", 400),
	NEG("NUL in header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400),
	NEG("DEL in header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400),
	NEG("ESC in header value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x1b[31m\r\n\r\n", 400),
	NEG("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
	NEG("whitespace before first header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
	/* header names */
	NEG("header name with space", "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400),
	NEG("empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400),
	NEG("header without colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
	NEG("header name with '('", "GET / HTTP/1.1\r\nHost: a\r\nX(y): z\r\n\r\n", 400),
	NEG("header name with '@'", "GET / HTTP/1.1\r\nHost: a\r\nX@: z\r\n\r\n", 400),
	NEG("header name with obs-text", "GET / HTTP/1.1\r\nHost: a\r\nN\xc3\xa4me: z\r\n\r\n", 400),
	NEG("header name with '/'", "GET / HTTP/1.1\r\nHost: a\r\nX/Y: z\r\n\r\n", 400),
	/* Host */
	NEG("duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
	NEG("duplicate Host same", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400),
	NEG("duplicate Host in 1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
	NEG("missing Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400),
	NEG("Host with userinfo", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400),
	NEG("Host list", "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400),
	NEG("Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
	NEG("Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
	NEG("Host bad port", "GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", 400),
	NEG("Host unbracketed IPv6", "GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", 400),
	/* request-line */
	NEG("HTTP/0.9", "GET /\r\n\r\n", 505),
	NEG("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
	NEG("HTTP/2", "GET / HTTP/2\r\nHost: a\r\n\r\n", 505),
	NEG("HTTP/3.0", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
	NEG("HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
	NEG("HTTP/0.9 with version", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
	NEG("lowercase http/1.1", "GET / http/1.1\r\nHost: a\r\n\r\n", 400),
	NEG("HTTP/1", "GET / HTTP/1\r\nHost: a\r\n\r\n", 400),
	NEG("HTTP/11", "GET / HTTP/11\r\nHost: a\r\n\r\n", 400),
	NEG("HTTP/1.1.1", "GET / HTTP/1.1.1\r\nHost: a\r\n\r\n", 400),
	NEG("HTTP/1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
	NEG("trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
	NEG("two spaces after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	NEG("two spaces before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	NEG("tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	NEG("space inside target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	NEG("leading space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	NEG("leading CRLF", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	NEG("obs-text in target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	NEG("DEL in target", "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	NEG("method with '('", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	NEG("method only", "GET\r\nHost: a\r\n\r\n", 400),
	NEG("empty target", "GET  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	NEG("missing version after space", "GET / \r\nHost: a\r\n\r\n", 400),
	NEG("response line as request", "HTTP/1.1 200 OK\r\n\r\n", 400),
	NEG("TLS ClientHello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
};

static void test_request_refusals(void)
{
	for (size_t i = 0; i < sizeof(request_refusals) / sizeof(request_refusals[0]); i++)
		check_refused(&request_refusals[i], false, NULL);
}

static void test_reasons(void)
{
	struct sbx_http_msg m;
	struct sbx_http_error e;

	parse_req(RAW("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), &m, &e);
	is_str(e.reason, "obs-fold not allowed", "reason names obs-fold");
	parse_req(RAW("GET / HTTP/1.1\nHost: a\r\n\r\n"), &m, &e);
	is_str(e.reason, "bare LF", "reason names bare LF");
	parse_req(RAW("GET / HTTP/1.1\r\nHost: a\rX\r\n\r\n"), &m, &e);
	is_str(e.reason, "bare CR", "reason names bare CR");
	parse_req(RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), &m, &e);
	is_str(e.reason, "duplicate Content-Length", "reason names duplicate CL");
	parse_req(RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"), &m, &e);
	is_str(e.reason, "Content-Length list", "reason names CL list");
	parse_req(RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), &m, &e);
	is_str(e.reason, "Content-Length with Transfer-Encoding", "reason names CL+TE");
	parse_req(RAW("GET / HTTP/1.1\r\n\r\n"), &m, &e);
	is_str(e.reason, "missing Host", "reason names missing Host");
	parse_req(RAW("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), &m, &e);
	is_str(e.reason, "duplicate Host", "reason names duplicate Host");
	parse_req(RAW("GET / HTTP/1.1\r\nHost: a\r\nA b: c\r\n\r\n"), &m, &e);
	is_str(e.reason, "whitespace in header name or before colon", "reason names whitespace in name");
	parse_req(RAW("GET / HTTP/1.1\r\nHost: a\r\nX: \0\r\n\r\n"), &m, &e);
	is_str(e.reason, "NUL byte in header", "reason names NUL");
	parse_req(RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), &m, &e);
	is_str(e.reason, "unsupported transfer coding", "reason names the coding problem");
	parse_req(RAW("GET / HTTP/2.0\r\n\r\n"), &m, &e);
	is_str(e.reason, "unsupported HTTP version", "reason names the version");
}

/* ---- responses ---- */

static void test_response_ok(void)
{
	struct sbx_http_msg m;
	struct sbx_http_error e;

	is_int(parse_resp(RAW("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello"), NULL, &m, &e),
	       SBX_HTTP_OK, "200 with Content-Length");
	ok(m.kind == SBX_HTTP_RESPONSE && m.status == 200 && m.version == 11, "status and version");
	ok(sbx_http_str_eq(m.reason, "OK"), "reason OK");
	ok(m.body == SBX_HTTP_BODY_LENGTH && m.content_length == 5, "LENGTH 5");
	ok(m.keep_alive, "1.1 response keeps alive");
	is_int(m.head_len, sizeof("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\n") - 1, "head_len");

	is_int(parse_resp(RAW("HTTP/1.1 404 Not \tFound \xe2\x9c\x97\r\nContent-Length: 0\r\n\r\n"), "GET", &m, &e),
	       SBX_HTTP_OK, "reason with spaces, tab and obs-text");
	ok(sbx_http_str_eq(m.reason, "Not \tFound \xe2\x9c\x97"), "reason kept");

	is_int(parse_resp(RAW("HTTP/1.1 200 \r\n\r\n"), NULL, &m, &e), SBX_HTTP_OK, "empty reason with SP");
	ok(m.reason.len == 0, "reason empty");
	ok(m.body == SBX_HTTP_BODY_EOF && !m.keep_alive, "no CL/TE: body until close, no keep-alive");

	is_int(parse_resp(RAW("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n"), NULL, &m, &e), SBX_HTTP_OK,
	       "no SP after the status code tolerated for responses");
	ok(m.status == 200 && m.reason.len == 0, "status 200, empty reason");

	is_int(parse_resp(RAW("HTTP/1.1 204 No Content\r\n\r\n"), NULL, &m, &e), SBX_HTTP_OK, "204");
	ok(m.body == SBX_HTTP_BODY_NONE && m.keep_alive, "204 has no body and keeps alive");
	is_int(parse_resp(RAW("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"), NULL, &m, &e), SBX_HTTP_OK,
	       "304 with CL");
	ok(m.body == SBX_HTTP_BODY_NONE, "304 has no body");
	is_int(parse_resp(RAW("HTTP/1.1 100 Continue\r\n\r\n"), "POST", &m, &e), SBX_HTTP_OK, "100 Continue");
	ok(m.body == SBX_HTTP_BODY_NONE && m.status == 100, "1xx has no body");
	is_int(parse_resp(RAW("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"), NULL, &m, &e), SBX_HTTP_OK, "103");
	ok(m.body == SBX_HTTP_BODY_NONE, "103 has no body");
	is_int(parse_resp(RAW("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
			  "GET", &m, &e),
	       SBX_HTTP_OK, "101");
	ok(m.body == SBX_HTTP_BODY_TUNNEL && m.upgrade && !m.keep_alive, "101 is a tunnel");

	is_int(parse_resp(RAW("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), "HEAD", &m, &e), SBX_HTTP_OK,
	       "HEAD response with CL");
	ok(m.body == SBX_HTTP_BODY_NONE && m.keep_alive, "HEAD response has no body");
	is_int(parse_resp(RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), "HEAD", &m, &e), SBX_HTTP_OK,
	       "HEAD response with TE");
	ok(m.body == SBX_HTTP_BODY_NONE, "still no body");

	is_int(parse_resp(RAW("HTTP/1.1 200 Connection established\r\n\r\n"), "CONNECT", &m, &e), SBX_HTTP_OK,
	       "2xx to CONNECT");
	ok(m.body == SBX_HTTP_BODY_TUNNEL, "CONNECT 200 is a tunnel");
	is_int(parse_resp(RAW("HTTP/1.1 407 Proxy Auth\r\nContent-Length: 3\r\n\r\n"), "CONNECT", &m, &e),
	       SBX_HTTP_OK, "407 to CONNECT");
	ok(m.body == SBX_HTTP_BODY_LENGTH && m.content_length == 3, "non-2xx to CONNECT has a normal body");

	is_int(parse_resp(RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), NULL, &m, &e), SBX_HTTP_OK,
	       "chunked response");
	ok(m.body == SBX_HTTP_BODY_CHUNKED && m.keep_alive, "CHUNKED");
	is_int(parse_resp(RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"), NULL, &m, &e),
	       SBX_HTTP_OK, "gzip, chunked");
	ok(m.body == SBX_HTTP_BODY_CHUNKED, "last coding chunked -> CHUNKED");
	is_int(parse_resp(RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"), NULL,
			  &m, &e),
	       SBX_HTTP_OK, "TE over two lines");
	ok(m.body == SBX_HTTP_BODY_CHUNKED, "lines combine into one list");
	is_int(parse_resp(RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), NULL, &m, &e),
	       SBX_HTTP_OK, "chunked, gzip");
	ok(m.body == SBX_HTTP_BODY_EOF && !m.keep_alive, "chunked not last -> EOF");
	is_int(parse_resp(RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), NULL, &m, &e), SBX_HTTP_OK,
	       "TE gzip");
	ok(m.body == SBX_HTTP_BODY_EOF, "other TE -> EOF");

	is_int(parse_resp(RAW("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n"), NULL, &m, &e), SBX_HTTP_OK, "1.0");
	ok(m.version == 10 && !m.keep_alive, "1.0 response closes");
	is_int(parse_resp(RAW("HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n"), NULL, &m, &e),
	       SBX_HTTP_OK, "1.0 keep-alive");
	ok(m.keep_alive, "1.0 keep-alive honoured");
	is_int(parse_resp(RAW("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"), NULL, &m, &e),
	       SBX_HTTP_OK, "Connection: close");
	ok(!m.keep_alive, "close honoured");
	is_int(parse_resp(RAW("HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\n\r\n"), NULL, &m, &e), SBX_HTTP_OK,
	       "599 accepted");
	is_int(parse_resp(RAW("HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\n\r\n"), NULL, &m, &e), SBX_HTTP_OK,
	       "Host rules are for requests only");

	static const char full[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n";
	int rc = parse_resp(RAW(full), NULL, &m, &e);
	ok(prefixes_consistent(RAW(full), true, NULL, rc, &e, sizeof(full) - 1),
	   "response byte-at-a-time: INCOMPLETE until the head is complete");
}

static const struct neg_case response_refusals[] = {
	NEG("resp CL+TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 502),
	NEG("resp TE+CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 502),
	NEG("resp duplicate CL equal", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 502),
	NEG("resp duplicate CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 502),
	NEG("resp CL list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", 502),
	NEG("resp CL invalid", "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", 502),
	NEG("resp CL negative", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 502),
	NEG("resp CL huge", "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n", 502),
	NEG("resp chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 502),
	NEG("resp chunked twice over lines", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 502),
	NEG("resp chunked with parameter", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 502),
	NEG("resp TE empty", "HTTP/1.1 200 OK\r\nTransfer-Encoding: , \r\n\r\n", 502),
	NEG("resp TE invalid coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 502),
	NEG("resp TE in 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 502),
	NEG("resp TE space before colon", "HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n", 502),
	NEG("resp Transfer_Encoding", "HTTP/1.1 200 OK\r\nTransfer_Encoding: chunked\r\n\r\n", 502),
	NEG("resp Connection lists Content-Length", "HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\n", 502),
	NEG("resp obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 502),
	NEG("resp bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", 502),
	NEG("resp bare CR", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", 502),
	NEG("resp NUL", "HTTP/1.1 200 OK\r\nX: \0\r\n\r\n", 502),
	NEG("resp NUL in reason", "HTTP/1.1 200 O\0K\r\n\r\n", 502),
	NEG("resp status 99", "HTTP/1.1 099 X\r\n\r\n", 502),
	NEG("resp status 600", "HTTP/1.1 600 X\r\n\r\n", 502),
	NEG("resp status 4 digits", "HTTP/1.1 2000 X\r\n\r\n", 502),
	NEG("resp status 2 digits", "HTTP/1.1 20 X\r\n\r\n", 502),
	NEG("resp status letters", "HTTP/1.1 2x0 X\r\n\r\n", 502),
	NEG("resp missing status", "HTTP/1.1\r\n\r\n", 502),
	NEG("resp missing status with SP", "HTTP/1.1 \r\n\r\n", 502),
	NEG("resp two spaces", "HTTP/1.1  200 OK\r\n\r\n", 502),
	NEG("resp HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", 502),
	NEG("resp HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", 502),
	NEG("resp lowercase", "http/1.1 200 OK\r\n\r\n", 502),
	NEG("resp HTTP/0.9 body", "<html>\r\n\r\n", 502),
	NEG("resp empty header name", "HTTP/1.1 200 OK\r\n: x\r\n\r\n", 502),
	NEG("resp leading CRLF", "\r\nHTTP/1.1 200 OK\r\n\r\n", 502),
};

static void test_response_refusals(void)
{
	for (size_t i = 0; i < sizeof(response_refusals) / sizeof(response_refusals[0]); i++)
		check_refused(&response_refusals[i], true, "GET");

	/* Framing headers are validated even when the response has no body. */
	struct sbx_http_msg m;
	struct sbx_http_error e;
	int rc = parse_resp(RAW("HTTP/1.1 204 No\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), NULL, &m, &e);
	ok(rc == SBX_HTTP_ERROR && e.status == 502, "duplicate CL refused on a 204 too");
	rc = parse_resp(RAW("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), "HEAD", &m, &e);
	ok(rc == SBX_HTTP_ERROR && e.status == 502, "CL+TE refused for HEAD responses too");

	/* Status line too long. */
	size_t len = SBX_HTTP_MAX_START_LINE + 64;
	char *b = malloc(len);
	memcpy(b, "HTTP/1.1 200 ", 13);
	memset(b + 13, 'r', len - 13);
	rc = parse_resp(b, len, NULL, &m, &e);
	ok(rc == SBX_HTTP_ERROR && e.status == 502, "status-line over the cap -> 502");
	free(b);
}

/* ---- chunked decoder ---- */

struct sink {
	char data[4096];
	size_t len;
	size_t calls;
};

static void sink_cb(void *ud, const char *data, size_t len)
{
	struct sink *s = ud;

	if (s->len + len <= sizeof(s->data))
		memcpy(s->data + s->len, data, len);
	s->len += len;
	s->calls++;
}

/* Feeds raw in pieces of `step` bytes (0 = at once). Returns the final rc; *used = total bytes
 * consumed; the data lands in *s. */
static int feed_steps(const char *raw, size_t len, size_t step, uint64_t max_body, struct sink *s, size_t *used,
		      struct sbx_http_error *e)
{
	struct sbx_http_chunked c;
	size_t off = 0;
	int rc = 0;

	sbx_http_chunked_init(&c, max_body);
	memset(s, 0, sizeof(*s));
	*used = 0;
	e->status = 0;
	e->reason = NULL;
	do {
		size_t n = step == 0 || len - off < step ? len - off : step, consumed = 0;
		char *p = dup_exact(raw + off, n);

		rc = sbx_http_chunked_feed(&c, p, n, &consumed, sink_cb, s, e);
		free(p);
		if (consumed > n)
			return -99;
		*used += consumed;
		off += n;
		if (rc != 0)
			break;
	} while (off < len);
	if (rc == 1 && c.total != s->len)
		return -98;
	return rc;
}

/* Every split into two pieces, and byte-at-a-time, must give the same result as one piece. */
static bool chunked_split_consistent(const char *raw, size_t len, uint64_t max_body)
{
	struct sink whole, part;
	struct sbx_http_error e0, e1;
	size_t used0, used1;
	int rc0 = feed_steps(raw, len, 0, max_body, &whole, &used0, &e0);

	for (size_t cut = 0; cut <= len; cut++) {
		struct sbx_http_chunked c;
		size_t consumed = 0, total = 0;
		int rc;

		sbx_http_chunked_init(&c, max_body);
		memset(&part, 0, sizeof(part));
		rc = sbx_http_chunked_feed(&c, raw, cut, &consumed, sink_cb, &part, &e1);
		total = consumed;
		if (rc == 0) {
			rc = sbx_http_chunked_feed(&c, raw + cut, len - cut, &consumed, sink_cb, &part, &e1);
			total += consumed;
		}
		if (rc != rc0 || (rc == 1 && (total != used0 || part.len != whole.len ||
					      memcmp(part.data, whole.data, whole.len < sizeof(whole.data) ? whole.len : sizeof(whole.data)) != 0)) ||
		    (rc < 0 && (e1.status != e0.status || strcmp(e1.reason, e0.reason) != 0))) {
			diag("split at %zu: rc=%d want %d", cut, rc, rc0);
			return false;
		}
	}
	int rc1 = feed_steps(raw, len, 1, max_body, &part, &used1, &e1);
	if (rc1 != rc0 || (rc0 == 1 && (used1 != used0 || part.len != whole.len)) || (rc0 < 0 && e1.status != e0.status)) {
		diag("byte-at-a-time: rc=%d want %d", rc1, rc0);
		return false;
	}
	return true;
}

static void chunk_ok(const char *raw, size_t len, const char *want, size_t want_used, const char *what)
{
	struct sink s;
	struct sbx_http_error e;
	size_t used;
	int rc = feed_steps(raw, len, 0, 0, &s, &used, &e);

	if (!ok(rc == 1 && s.len == strlen(want) && memcmp(s.data, want, s.len) == 0 && used == want_used,
		"chunked ok: %s", what))
		diag("rc=%d used=%zu len=%zu reason=%s", rc, used, s.len, e.reason ? e.reason : "-");
	ok(chunked_split_consistent(raw, len, 0), "chunked splits consistent: %s", what);
}

static void chunk_bad(const char *raw, size_t len, uint64_t max_body, int status, const char *what)
{
	struct sink s;
	struct sbx_http_error e;
	size_t used;
	int rc = feed_steps(raw, len, 0, max_body, &s, &used, &e);

	if (!ok(rc == -1 && e.status == status && e.reason, "chunked refused (%d): %s", status, what))
		diag("rc=%d status=%d reason=%s", rc, e.status, e.reason ? e.reason : "-");
	ok(chunked_split_consistent(raw, len, max_body), "chunked splits consistent: %s", what);
}

#define CHUNK_OK(raw, want, what) chunk_ok(RAW(raw), (want), sizeof(raw) - 1, (what))
#define CHUNK_OK_USED(raw, want, used, what) chunk_ok(RAW(raw), (want), (used), (what))
#define CHUNK_BAD(raw, what) chunk_bad(RAW(raw), 0, 400, (what))

static void test_chunked_ok(void)
{
	CHUNK_OK("5\r\nhello\r\n0\r\n\r\n", "hello", "one chunk");
	CHUNK_OK("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", "two chunks");
	CHUNK_OK("0\r\n\r\n", "", "empty body");
	CHUNK_OK("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij", "hex A and a");
	CHUNK_OK("000005\r\nhello\r\n000\r\n\r\n", "hello", "leading zeros");
	CHUNK_OK("5;name\r\nhello\r\n0\r\n\r\n", "hello", "extension without value");
	CHUNK_OK("5;name=value\r\nhello\r\n0;end=1\r\n\r\n", "hello", "extension with token value");
	CHUNK_OK("5;a=\"q \\\" ;=\t\xff\"\r\nhello\r\n0\r\n\r\n", "hello", "extension with quoted-string");
	CHUNK_OK("5;a;b=c;d=\"\"\r\nhello\r\n0\r\n\r\n", "hello", "several extensions");
	CHUNK_OK("5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other:\t v \r\n\r\n", "hello", "trailers");
	CHUNK_OK("5\r\nhello\r\n0\r\nHostname: x\r\nHos: y\r\nContent-Lengthy: 1\r\n\r\n", "hello",
		 "trailer names that only resemble framing fields");
	CHUNK_OK("3\r\n\r\n\r\r\n0\r\n\r\n", "\r\n\r", "data may contain CR and LF");
	CHUNK_OK("0000000000000000\r\n\r\n", "", "16 zero digits");
	CHUNK_OK_USED("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "hello", 15, "stops at the end of the message");

	/* Feeding after the end, and data callback without cb. */
	struct sbx_http_chunked c;
	struct sbx_http_error e;
	size_t used;
	sbx_http_chunked_init(&c, 0);
	is_int(sbx_http_chunked_feed(&c, RAW("3\r\nabc\r\n0\r\n\r\nXYZ"), &used, NULL, NULL, &e), 1, "cb may be NULL");
	is_int(used, 13, "consumed up to the end");
	ok(c.total == 3, "total counts data bytes");
	is_int(sbx_http_chunked_feed(&c, RAW("more"), &used, NULL, NULL, &e), 1, "after the end: still done");
	is_int(used, 0, "after the end: nothing consumed");
	sbx_http_chunked_init(&c, 0);
	is_int(sbx_http_chunked_feed(&c, RAW("5\r\nhel"), &used, NULL, NULL, NULL), 0, "err may be NULL");
	is_int(used, 6, "need more: everything consumed");
	is_int(sbx_http_chunked_feed(&c, "", 0, &used, NULL, NULL, &e), 0, "empty feed");

	/* 16 hex digits are the maximum and must not overflow. */
	sbx_http_chunked_init(&c, 0);
	is_int(sbx_http_chunked_feed(&c, RAW("FFFFFFFFFFFFFFFF\r\nab"), &used, NULL, NULL, &e), 0,
	       "size 2^64-1 accepted without a cap");
	ok(c.remaining == UINT64_MAX - 2, "size is exact");

	/* max_body */
	struct sink s;
	is_int(feed_steps(RAW("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"), 0, 10, &s, &used, &e), 1, "max_body reached exactly");
	is_int(feed_steps(RAW("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), 0, 10, &s, &used, &e), -1, "max_body exceeded");
	is_int(e.status, 413, "max_body exceeded -> 413");
	is_int(s.len, 5, "nothing of the oversized chunk delivered");
	ok(chunked_split_consistent(RAW("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), 10), "413 consistent under splits");
	is_int(feed_steps(RAW("FFFFFFFFFFFFFFFF\r\n"), 0, 1u << 20, &s, &used, &e), -1, "huge chunk with cap");
	is_int(e.status, 413, "huge chunk -> 413");

	/* Large body byte-at-a-time. */
	{
		static char big[3000];
		size_t n = 0;
		for (int i = 0; i < 20; i++) {
			n += (size_t)snprintf(big + n, sizeof(big) - n, "%x;i=%d\r\n", 100 + i, i);
			memset(big + n, 'a' + i, (size_t)(100 + i));
			n += (size_t)(100 + i);
			memcpy(big + n, "\r\n", 2);
			n += 2;
		}
		memcpy(big + n, "0\r\nT: 1\r\n\r\n", 11);
		n += 11;
		is_int(feed_steps(big, n, 1, 0, &s, &used, &e), 1, "20 chunks byte-at-a-time");
		is_int(s.len, 20 * 100 + 190, "all data delivered");
		is_int(used, n, "all bytes consumed");
		is_int(feed_steps(big, n, 7, 0, &s, &used, &e), 1, "20 chunks 7 bytes at a time");
	}
}

static void test_chunked_refusals(void)
{
	struct sink s;
	struct sbx_http_error e;
	size_t used;

	is_int(feed_steps(RAW(""), 0, 0, &s, &used, &e), 0, "no input: need more");
	CHUNK_BAD("\r\n", "empty chunk-size");
	CHUNK_BAD("0x5\r\nhello\r\n0\r\n\r\n", "0x prefix");
	CHUNK_BAD(" 5\r\nhello\r\n0\r\n\r\n", "leading space");
	CHUNK_BAD("+5\r\nhello\r\n0\r\n\r\n", "plus sign");
	CHUNK_BAD("-5\r\nhello\r\n0\r\n\r\n", "minus sign");
	CHUNK_BAD("5 \r\nhello\r\n0\r\n\r\n", "trailing space after size");
	CHUNK_BAD("5\t\r\nhello\r\n0\r\n\r\n", "trailing tab after size");
	CHUNK_BAD("5 ;a=b\r\nhello\r\n0\r\n\r\n", "space before extension (BWS refused)");
	CHUNK_BAD("5; a=b\r\nhello\r\n0\r\n\r\n", "space after ';'");
	CHUNK_BAD("5;a =b\r\nhello\r\n0\r\n\r\n", "space before '='");
	CHUNK_BAD("g\r\n", "non-hex size");
	CHUNK_BAD("5g\r\nhello\r\n", "hex then junk");
	CHUNK_BAD("00000000000000000\r\n\r\n", "17 hex digits");
	CHUNK_BAD("10000000000000000\r\n", "size over 64 bits");
	CHUNK_BAD(";a=b\r\n", "extension without size");
	CHUNK_BAD("5;\r\nhello\r\n0\r\n\r\n", "empty extension");
	CHUNK_BAD("5;=x\r\nhello\r\n0\r\n\r\n", "extension without name");
	CHUNK_BAD("5;a=\r\nhello\r\n0\r\n\r\n", "extension with empty value");
	CHUNK_BAD("5;a=b c\r\nhello\r\n0\r\n\r\n", "space in extension value");
	CHUNK_BAD("5;a=\"x\r\nhello\r\n0\r\n\r\n", "unterminated quoted-string");
	CHUNK_BAD("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", "junk after quoted-string");
	CHUNK_BAD("5;a=\"x\0\"\r\nhello\r\n0\r\n\r\n", "NUL in quoted-string");
	CHUNK_BAD("5;a=\"x\\\0\"\r\nhello\r\n0\r\n\r\n", "escaped NUL in quoted-string");
	CHUNK_BAD("5;a\0\r\nhello\r\n0\r\n\r\n", "NUL in extension name");
	CHUNK_BAD("5\nhello\r\n0\r\n\r\n", "bare LF after size");
	CHUNK_BAD("5\rhello\r\n0\r\n\r\n", "bare CR after size");
	CHUNK_BAD("5;a\nhello\r\n0\r\n\r\n", "bare LF after extension");
	CHUNK_BAD("5\r\nhelloX\r\n0\r\n\r\n", "data longer than size");
	CHUNK_BAD("5\r\nhello\n0\r\n\r\n", "bare LF after data");
	CHUNK_BAD("5\r\nhello\r0\r\n\r\n", "bare CR after data");
	CHUNK_BAD("5\r\nhello0\r\n\r\n", "missing CRLF after data");
	CHUNK_BAD("5\r\nhel\r\n0\r\n\r\n", "data shorter than size (TE.CL shape)");
	CHUNK_BAD("0\r\n\n", "bare LF as final line");
	CHUNK_BAD("0\r\n\rX", "bare CR as final line");
	CHUNK_BAD("0\n\r\n", "bare LF after last-chunk");
	CHUNK_BAD("0\r\nX: y\n\r\n", "bare LF after trailer");
	CHUNK_BAD("0\r\nX: y\rZ\r\n\r\n", "bare CR in trailer");
	CHUNK_BAD("0\r\nX: y\r\n z\r\n\r\n", "obs-fold in trailers");
	CHUNK_BAD("0\r\n X: y\r\n\r\n", "trailer starting with whitespace");
	CHUNK_BAD("0\r\nNoColon\r\n\r\n", "trailer without colon");
	CHUNK_BAD("0\r\n: y\r\n\r\n", "trailer with empty name");
	CHUNK_BAD("0\r\nX : y\r\n\r\n", "trailer with space before colon");
	CHUNK_BAD("0\r\nX: \0\r\n\r\n", "NUL in trailer");
	CHUNK_BAD("0\r\nX: \x7f\r\n\r\n", "DEL in trailer");
	CHUNK_BAD("0\r\nContent-Length: 5\r\n\r\n", "Content-Length trailer");
	CHUNK_BAD("0\r\ntransfer-encoding: chunked\r\n\r\n", "Transfer-Encoding trailer");
	CHUNK_BAD("0\r\nTransfer_Encoding: chunked\r\n\r\n", "Transfer_Encoding trailer");
	CHUNK_BAD("0\r\nHOST: evil\r\n\r\n", "Host trailer");

	/* chunk-size line cap */
	{
		char line[SBX_HTTP_MAX_CHUNK_LINE + 16];
		size_t n = 0;

		line[n++] = '5';
		line[n++] = ';';
		while (n < SBX_HTTP_MAX_CHUNK_LINE)
			line[n++] = 'x';
		memcpy(line + n, "\r\nhello\r\n0\r\n\r\n", 14);
		is_int(feed_steps(line, n + 14, 0, 0, &s, &used, &e), 1, "size line of exactly the cap");
		memmove(line + n + 1, line + n, 14);
		line[n++] = 'x';
		is_int(feed_steps(line, n + 14, 0, 0, &s, &used, &e), -1, "size line over the cap");
		is_int(e.status, 400, "size line over the cap -> 400");
	}
	/* trailer cap */
	{
		size_t cap = SBX_HTTP_MAX_TRAILERS + 64, n = 0;
		char *t = malloc(cap);

		memcpy(t, "0\r\n", 3);
		n = 3;
		while (n + 12 <= 3 + SBX_HTTP_MAX_TRAILERS) {
			memcpy(t + n, "X-T: abcde\r\n", 12);
			n += 12;
		}
		/* pad to exactly the cap */
		size_t fill = 3 + SBX_HTTP_MAX_TRAILERS - n;
		if (fill >= 5) {
			memcpy(t + n, "Y:", 2);
			memset(t + n + 2, 'y', fill - 4);
			memcpy(t + n + fill - 2, "\r\n", 2);
			n += fill;
		}
		memcpy(t + n, "\r\n", 2);
		is_int(feed_steps(t, n + 2, 0, 0, &s, &used, &e), 1, "trailers of exactly the cap (%zu bytes)", n - 3);
		memcpy(t + n, "Z:\r\n\r\n", 6);
		is_int(feed_steps(t, n + 6, 0, 0, &s, &used, &e), -1, "trailers over the cap");
		free(t);
	}

	/* Errors are sticky. */
	struct sbx_http_chunked c;
	sbx_http_chunked_init(&c, 0);
	is_int(sbx_http_chunked_feed(&c, RAW("z"), &used, NULL, NULL, &e), -1, "error");
	is_int(sbx_http_chunked_feed(&c, RAW("0\r\n\r\n"), &used, NULL, NULL, &e), -1, "error is sticky");
	ok(used == 0 && e.status == 400, "sticky error consumes nothing");
}

/* ---- authority and absolute URI ---- */

static struct sbx_http_str S(const char *s)
{
	return (struct sbx_http_str){s, strlen(s)};
}

static void auth_ok(const char *in, uint16_t def, const char *host, uint16_t port, bool v6)
{
	struct sbx_http_target t;
	int rc = sbx_http_parse_authority(S(in), def, &t);

	if (!ok(rc == 0 && strcmp(t.host, host) == 0 && t.port == port && t.is_ipv6 == v6 && t.scheme[0] == '\0',
		"authority '%s' -> %s port %u", in, host, port))
		diag("rc=%d host=%s port=%u v6=%d", rc, t.host, t.port, t.is_ipv6);
}

static void auth_bad(const char *in, uint16_t def, const char *what)
{
	struct sbx_http_target t;
	char *p = dup_exact(in, strlen(in));
	int rc = sbx_http_parse_authority((struct sbx_http_str){p, strlen(in)}, def, &t);

	ok(rc == -1 && t.host[0] == '\0', "authority refused: %s ('%s')", what, in);
	free(p);
}

static void test_authority(void)
{
	char long_label[80], long_name[300];

	auth_ok("example.com", 443, "example.com", 443, false);
	auth_ok("Example.COM:8080", 443, "example.com", 8080, false);
	auth_ok("example.com.", 80, "example.com", 80, false);
	auth_ok("example.com.:81", 0, "example.com", 81, false);
	auth_ok("my_host-1.internal:65535", 0, "my_host-1.internal", 65535, false);
	auth_ok("host:00080", 0, "host", 80, false);
	auth_ok("localhost:1", 0, "localhost", 1, false);
	auth_ok("127.0.0.1", 80, "127.0.0.1", 80, false);
	auth_ok("10.1.2.3:8080", 0, "10.1.2.3", 8080, false);
	auth_ok("[::1]", 443, "::1", 443, true);
	auth_ok("[::1]:8443", 0, "::1", 8443, true);
	auth_ok("[0:0:0:0:0:0:0:1]:1", 0, "::1", 1, true);
	auth_ok("[2001:DB8::A]", 80, "2001:db8::a", 80, true);
	auth_ok("[::ffff:127.0.0.1]:80", 0, "::ffff:127.0.0.1", 80, true);
	auth_ok("123.example.com", 80, "123.example.com", 80, false);
	auth_ok("0x7f.example", 80, "0x7f.example", 80, false);

	auth_bad("", 80, "empty");
	auth_bad(":80", 80, "empty host");
	auth_bad(".", 80, "only the root dot");
	auth_bad("user@example.com", 80, "userinfo");
	auth_bad("user:pw@example.com:80", 80, "userinfo with password");
	auth_bad("example.com@evil.com", 80, "'@' confusion");
	auth_bad("example.com", 0, "port required");
	auth_bad("example.com:", 80, "empty port");
	auth_bad("example.com:0", 80, "port 0");
	auth_bad("example.com:65536", 80, "port 65536");
	auth_bad("example.com:99999999999999999999", 80, "port overflow");
	auth_bad("example.com:+80", 80, "port with '+'");
	auth_bad("example.com:-80", 80, "negative port");
	auth_bad("example.com: 80", 80, "space before port");
	auth_bad("example.com:80a", 80, "port with letters");
	auth_bad("example.com:80:90", 80, "two ports");
	auth_bad("::1", 80, "unbracketed IPv6");
	auth_bad("[::1", 80, "unterminated bracket");
	auth_bad("[::1]x", 80, "junk after bracket");
	auth_bad("[::1]:", 80, "empty port after bracket");
	auth_bad("[]", 80, "empty brackets");
	auth_bad("[zzz]", 80, "invalid IPv6");
	auth_bad("[127.0.0.1]", 80, "IPv4 in brackets");
	auth_bad("[::1%25eth0]", 80, "zone id");
	auth_bad("[1:2:3:4:5:6:7:8:9]", 80, "too many IPv6 groups");
	auth_bad("[0000000000000000000000000000000000000000000000000000000000000000000000::1]", 80,
		 "IPv6 text longer than any address");
	auth_bad("exa mple.com", 80, "space");
	auth_bad("exa%6dple.com", 80, "percent-encoding");
	auth_bad("example.com/", 80, "slash");
	auth_bad("a..b", 80, "empty label");
	auth_bad(".a", 80, "leading dot");
	auth_bad("a.com..", 80, "two trailing dots");
	auth_bad("ex\\ample.com", 80, "backslash");
	auth_bad("exam\xc3\xa9.com", 80, "non-ASCII (must be punycode)");
	auth_bad("10.1", 80, "short numeric IPv4");
	auth_bad("2130706433", 80, "integer IPv4");
	auth_bad("0x7f.1", 80, "hex IPv4");
	auth_bad("0x7f000001", 80, "hex integer IPv4");
	auth_bad("127.000.0.1", 80, "IPv4 with leading zeros");
	auth_bad("0177.0.0.1", 80, "octal IPv4");
	auth_bad("1.2.3.256", 80, "IPv4 octet over 255");
	auth_bad("1.2.3.4.5", 80, "five numeric labels");
	auth_bad("example.0x", 80, "last label 0x");
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	auth_bad(long_label, 80, "label of 64 chars");
	long_label[63] = '\0';
	auth_ok(long_label, 80, long_label, 80, false);
	memset(long_name, 0, sizeof(long_name));
	for (size_t i = 0; i < 254; i++)
		long_name[i] = (i % 50 == 49) ? '.' : 'a';
	auth_bad(long_name, 80, "name of 254 chars");
	long_name[253] = '\0';
	long_name[252] = 'a';
	{
		struct sbx_http_target t;
		ok(sbx_http_parse_authority(S(long_name), 80, &t) == 0 && strlen(t.host) == 253, "name of 253 chars");
	}
	{
		struct sbx_http_target t;
		ok(sbx_http_parse_authority((struct sbx_http_str){NULL, 0}, 80, &t) == -1, "NULL authority");
	}
}

static void uri_ok(const char *in, const char *scheme, const char *host, uint16_t port, const char *path,
		   bool path_in_buf)
{
	struct sbx_http_target t;
	int rc = sbx_http_parse_absolute_uri(S(in), &t);
	bool path_ok = rc == 0 && t.path.len == strlen(path) && memcmp(t.path.p, path, t.path.len) == 0;
	bool where = rc == 0 && (path_in_buf ? (t.path.p >= in && t.path.p + t.path.len <= in + strlen(in))
					     : (t.path.p < in || t.path.p > in + strlen(in)));

	if (!ok(rc == 0 && strcmp(t.scheme, scheme) == 0 && strcmp(t.host, host) == 0 && t.port == port && path_ok &&
			where,
		"absolute URI '%s'", in))
		diag("rc=%d scheme=%s host=%s port=%u path=%.*s", rc, t.scheme, t.host, t.port, (int)t.path.len,
		     t.path.p ? t.path.p : "");
}

static void uri_bad(const char *in, const char *what)
{
	struct sbx_http_target t;
	char *p = dup_exact(in, strlen(in));

	ok(sbx_http_parse_absolute_uri((struct sbx_http_str){p, strlen(in)}, &t) == -1, "absolute URI refused: %s ('%s')",
	   what, in);
	free(p);
}

static void test_absolute_uri(void)
{
	uri_ok("http://example.com/path?q=1", "http", "example.com", 80, "/path?q=1", true);
	uri_ok("https://Example.COM", "https", "example.com", 443, "/", false);
	uri_ok("HTTP://example.com:8080/", "http", "example.com", 8080, "/", true);
	uri_ok("HtTpS://example.com:8443/a/b", "https", "example.com", 8443, "/a/b", true);
	uri_ok("http://[::1]:8080/x", "http", "::1", 8080, "/x", true);
	uri_ok("http://[2001:db8::1]/", "http", "2001:db8::1", 80, "/", true);
	uri_ok("http://example.com./x", "http", "example.com", 80, "/x", true);
	uri_ok("http://example.com/a@b", "http", "example.com", 80, "/a@b", true);
	uri_ok("http://example.com/?x", "http", "example.com", 80, "/?x", true);
	uri_ok("http://example.com//x", "http", "example.com", 80, "//x", true);

	uri_bad("", "empty");
	uri_bad("/path", "origin-form");
	uri_bad("example.com:80", "authority-form");
	uri_bad("ftp://example.com/", "scheme ftp");
	uri_bad("httpx://example.com/", "scheme httpx");
	uri_bad("ws://example.com/", "scheme ws");
	uri_bad("http:/example.com/", "single slash");
	uri_bad("http:example.com", "no slashes");
	uri_bad("http://", "no authority");
	uri_bad("http:///x", "empty host");
	uri_bad("http://user@example.com/", "userinfo");
	uri_bad("http://user:pw@example.com/", "userinfo with password");
	uri_bad("http://evil.com@example.com/", "'@' confusion");
	uri_bad("http://example.com/#frag", "fragment");
	uri_bad("http://example.com#frag", "fragment without path");
	uri_bad("http://example.com?q=1", "query without path (see http1.c)");
	uri_bad("http://example.com:0/", "port 0");
	uri_bad("http://example.com:/", "empty port");
	uri_bad("http://example.com:99999/", "port too large");
	uri_bad("http://example.com/a b", "space in path");
	uri_bad("http://exa\x01mple.com/", "control character");
	uri_bad("http://example.com\\@evil.com/", "backslash in authority");
	uri_bad("http://2130706433/", "integer IPv4");
	uri_bad("http://::1/", "unbracketed IPv6");

	struct sbx_http_target t;
	ok(sbx_http_parse_absolute_uri((struct sbx_http_str){NULL, 0}, &t) == -1, "NULL URI");
}

static void test_helpers(void)
{
	struct sbx_http_str v = S(" gzip ,\tKeep-Alive , , close");

	ok(sbx_http_list_has_token(v, "keep-alive"), "list token with OWS, case-insensitive");
	ok(sbx_http_list_has_token(v, "close"), "last token");
	ok(sbx_http_list_has_token(v, "gzip"), "first token");
	ok(!sbx_http_list_has_token(v, "keep"), "no prefix match");
	ok(!sbx_http_list_has_token(v, ""), "empty token never matches");
	ok(!sbx_http_list_has_token(S(""), "close"), "empty value");
	ok(sbx_http_str_eq(S("abc"), "abc") && !sbx_http_str_eq(S("abc"), "ABC") && !sbx_http_str_eq(S("ab"), "abc"),
	   "str_eq");
	ok(sbx_http_str_ieq(S("aBc"), "AbC") && !sbx_http_str_ieq(S("abcd"), "abc"), "str_ieq");
	ok(sbx_http_str_eq((struct sbx_http_str){NULL, 0}, ""), "str_eq on empty");
	is_str(sbx_http_status_text(404), "Not Found", "status text 404");
	is_str(sbx_http_status_text(431), "Request Header Fields Too Large", "status text 431");
	is_str(sbx_http_status_text(505), "HTTP Version Not Supported", "status text 505");
	is_str(sbx_http_status_text(999), "Unknown", "status text unknown");
}

int main(void)
{
	test_request_basic();
	test_request_bodies();
	test_request_connection();
	test_request_forms();
	test_request_pipelined();
	test_request_incremental();
	test_request_caps();
	test_request_refusals();
	test_reasons();
	test_response_ok();
	test_response_refusals();
	test_chunked_ok();
	test_chunked_refusals();
	test_authority();
	test_absolute_uri();
	test_helpers();
	return done_testing();
}
