// FUZZ_SOURCES: src/common/http1.c
/* fuzz_http1.c - libFuzzer target for the HTTP/1 parser (src/common/http1.c).
 *
 * One input exercises every entry point that sees sandbox bytes: the request parser, the
 * response parser (as the answer to GET, HEAD and CONNECT), the chunked decoder (whole, split in
 * two at a point chosen by the first byte, and byte by byte), and the authority / absolute-URI
 * parsers. Beyond memory safety it checks the parser's promises with abort():
 *   - results stay inside the input (head_len <= len, every string points into the buffer,
 *     consumed <= len, data callbacks inside the fed piece);
 *   - an accepted head is really strict (CRLF only, no NUL, no obs-fold, one CL / TE / Host);
 *   - fragmentation never changes the answer (a prefix is INCOMPLETE or the same error; an
 *     accepted head is accepted from any buffer that contains it; chunked results do not depend
 *     on how the body is split).
 * Build and run with fuzz/Makefile; replay_main.c replays corpora without libFuzzer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static bool inside(const void *p, size_t n, const char *buf, size_t len)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)buf;

	return a >= b && n <= len && a - b <= len - n;
}

static void check_str(struct sbx_http_str s, const char *buf, size_t len)
{
	CHECK(s.len == 0 || inside(s.p, s.len, buf, len));
}

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void check_error(const struct sbx_http_error *e, bool response)
{
	CHECK(e->reason && e->reason[0]);
	if (response)
		CHECK(e->status == 502);
	else
		CHECK(e->status == 400 || e->status == 414 || e->status == 431 || e->status == 501 || e->status == 505);
}

/* What an accepted head must look like, whatever the parser's code does. */
static void check_head(const struct sbx_http_msg *m, const char *buf, size_t len, bool response)
{
	const unsigned char *u = (const unsigned char *)buf;
	size_t h = m->head_len;

	CHECK(h >= 4 && h <= len && h <= SBX_HTTP_MAX_HEAD);
	CHECK(memcmp(buf + h - 4, "\r\n\r\n", 4) == 0);
	for (size_t i = 0; i < h; i++) {
		CHECK(u[i] != 0);
		if (u[i] == '\r')
			CHECK(i + 1 < h && u[i + 1] == '\n');
		if (u[i] == '\n') {
			CHECK(i > 0 && u[i - 1] == '\r');
			/* no line of the head starts with whitespace (obs-fold) */
			CHECK(i + 1 >= h || (u[i + 1] != ' ' && u[i + 1] != '\t'));
		}
	}
	CHECK(m->nheaders <= SBX_HTTP_MAX_HEADERS);
	CHECK(m->version == 10 || m->version == 11);
	for (size_t i = 0; i < m->nheaders; i++) {
		struct sbx_http_str n = m->headers[i].name, v = m->headers[i].value;

		CHECK(n.len > 0);
		check_str(n, buf, h);
		check_str(v, buf, h);
		for (size_t k = 0; k < n.len; k++)
			CHECK(is_tchar((unsigned char)n.p[k]));
		CHECK(n.p[n.len] == ':');
		if (sbx_http_str_ieq(n, "connection"))
			CHECK(!sbx_http_list_has_token(v, "content-length") && !sbx_http_list_has_token(v, "transfer-encoding") &&
			      !sbx_http_list_has_token(v, "host"));
		if (v.len) {
			CHECK(v.p[0] != ' ' && v.p[0] != '\t' && v.p[v.len - 1] != ' ' && v.p[v.len - 1] != '\t');
			for (size_t k = 0; k < v.len; k++)
				CHECK((unsigned char)v.p[k] >= 0x20 || v.p[k] == '\t');
		}
	}
	size_t ncl = sbx_http_header_count(m, "content-length"), nte = sbx_http_header_count(m, "transfer-encoding");
	CHECK(ncl <= 1);
	CHECK(!(ncl && nte));
	CHECK(sbx_http_header_count(m, "content_length") == 0 && sbx_http_header_count(m, "transfer_encoding") == 0);
	if (m->body == SBX_HTTP_BODY_LENGTH)
		CHECK(ncl == 1 && m->content_length <= (uint64_t)INT64_MAX);
	if (m->body == SBX_HTTP_BODY_EOF || m->body == SBX_HTTP_BODY_TUNNEL)
		CHECK(!m->keep_alive);
	if (!response) {
		CHECK(m->kind == SBX_HTTP_REQUEST);
		CHECK(m->method.len >= 1 && m->method.len <= SBX_HTTP_MAX_METHOD && m->method.p == buf);
		CHECK(m->target.len >= 1);
		check_str(m->target, buf, h);
		for (size_t k = 0; k < m->target.len; k++)
			CHECK((unsigned char)m->target.p[k] > 0x20 && (unsigned char)m->target.p[k] < 0x7f);
		CHECK(m->body == SBX_HTTP_BODY_NONE || m->body == SBX_HTTP_BODY_LENGTH || m->body == SBX_HTTP_BODY_CHUNKED);
		CHECK(nte <= 1 && sbx_http_header_count(m, "host") <= 1);
		CHECK(m->version == 10 || sbx_http_header_count(m, "host") == 1);
		if (nte)
			CHECK(m->version == 11);
		if (m->body == SBX_HTTP_BODY_CHUNKED)
			CHECK(sbx_http_str_ieq(*sbx_http_header_get(m, "transfer-encoding"), "chunked"));
		check_str(m->host, buf, h);
	} else {
		CHECK(m->kind == SBX_HTTP_RESPONSE);
		CHECK(m->status >= 100 && m->status <= 599);
		check_str(m->reason, buf, h);
	}
}

typedef int (*parse_fn)(const char *buf, size_t len, const char *method, struct sbx_http_msg *m,
			struct sbx_http_error *e);

static int parse_request_fn(const char *buf, size_t len, const char *method, struct sbx_http_msg *m,
			    struct sbx_http_error *e)
{
	(void)method;
	return sbx_http_parse_request(buf, len, m, e);
}

static int parse_response_fn(const char *buf, size_t len, const char *method, struct sbx_http_msg *m,
			     struct sbx_http_error *e)
{
	return sbx_http_parse_response(buf, len, method, m, e);
}

/* Parses buf, checks the result, then checks a few prefixes against it. */
static int run_head(parse_fn fn, bool response, const char *method, const char *buf, size_t len, struct sbx_http_msg *m,
		    struct sbx_http_msg *m2)
{
	struct sbx_http_error e = {0, NULL}, e2 = {0, NULL};
	int rc = fn(buf, len, method, m, &e);
	size_t cuts[4];

	CHECK(rc == SBX_HTTP_ERROR || rc == SBX_HTTP_INCOMPLETE || rc == SBX_HTTP_OK);
	if (rc == SBX_HTTP_ERROR)
		check_error(&e, response);
	if (rc == SBX_HTTP_OK)
		check_head(m, buf, len, response);
	if (rc == SBX_HTTP_INCOMPLETE)
		CHECK(len < SBX_HTTP_MAX_HEAD);

	cuts[0] = len ? len - 1 : 0;
	cuts[1] = len / 2;
	cuts[2] = rc == SBX_HTTP_OK ? m->head_len : len / 3;
	cuts[3] = rc == SBX_HTTP_OK && m->head_len ? m->head_len - 1 : len / 5;
	for (size_t i = 0; i < 4; i++) {
		size_t n = cuts[i];
		int r = fn(buf, n, method, m2, &e2);

		if (rc == SBX_HTTP_OK) {
			if (n < m->head_len) {
				CHECK(r == SBX_HTTP_INCOMPLETE);
			} else {
				CHECK(r == SBX_HTTP_OK && m2->head_len == m->head_len && m2->nheaders == m->nheaders &&
				      m2->body == m->body && m2->content_length == m->content_length &&
				      m2->keep_alive == m->keep_alive);
			}
		} else if (rc == SBX_HTTP_INCOMPLETE) {
			CHECK(r == SBX_HTTP_INCOMPLETE);
		} else {
			CHECK(r != SBX_HTTP_OK);
			if (r == SBX_HTTP_ERROR)
				CHECK(e2.status == e.status && strcmp(e2.reason, e.reason) == 0);
		}
	}
	return rc;
}

/* ---- chunked ---- */

struct collect {
	char *out;
	size_t len, cap;
	const char *piece; /* the buffer being fed, to check callback pointers */
	size_t piece_len;
};

static void collect_cb(void *ud, const char *d, size_t n)
{
	struct collect *c = ud;

	CHECK(n > 0);
	CHECK(inside(d, n, c->piece, c->piece_len));
	CHECK(c->len + n <= c->cap);
	memcpy(c->out + c->len, d, n);
	c->len += n;
}

struct chunk_result {
	int rc;
	size_t used;
	int status;
	const char *reason;
	uint64_t total;
};

/* Feeds body in pieces of at most `step` bytes, or (step 0) in two pieces cut at `cut`. */
static struct chunk_result run_chunked(const char *body, size_t len, uint64_t max_body, size_t step, size_t cut,
				       struct collect *col)
{
	struct sbx_http_chunked c;
	struct chunk_result r = {0, 0, 0, NULL, 0};
	size_t off = 0;

	sbx_http_chunked_init(&c, max_body);
	col->len = 0;
	for (int piece = 0;; piece++) {
		size_t n = step ? (len - off < step ? len - off : step) : (piece == 0 ? cut : len - off), used = 0;
		struct sbx_http_error e = {0, NULL};

		col->piece = body + off;
		col->piece_len = n;
		r.rc = sbx_http_chunked_feed(&c, body + off, n, &used, collect_cb, col, &e);
		CHECK(used <= n);
		CHECK(r.rc == -1 || r.rc == 0 || r.rc == 1);
		if (r.rc == 0)
			CHECK(used == n);
		r.used += used;
		off += n;
		if (r.rc == -1) {
			CHECK(e.reason && (e.status == 400 || e.status == 413));
			CHECK(e.status != 413 || max_body);
			r.status = e.status;
			r.reason = e.reason;
			break;
		}
		if (r.rc == 1 || (off >= len && (step || piece >= 1)))
			break;
	}
	CHECK(c.total == col->len);
	CHECK(!max_body || c.total <= max_body);
	if (r.rc == 1)
		CHECK(r.used >= 5 && memcmp(body + r.used - 2, "\r\n", 2) == 0);
	r.total = c.total;
	return r;
}

static void fuzz_chunked(const char *body, size_t len, uint64_t max_body, size_t cut)
{
	struct collect a = {0}, b = {0};
	struct chunk_result r0, r1;

	a.cap = b.cap = len;
	a.out = malloc(len ? len : 1);
	b.out = malloc(len ? len : 1);
	CHECK(a.out && b.out);
	r0 = run_chunked(body, len, max_body, len ? len : 1, 0, &a);
	if (cut > len)
		cut = len;
	r1 = run_chunked(body, len, max_body, 0, cut, &b);
	CHECK(r0.rc == r1.rc && r0.total == r1.total && a.len == b.len && memcmp(a.out, b.out, a.len) == 0);
	if (r0.rc == 1)
		CHECK(r0.used == r1.used);
	if (r0.rc == -1)
		CHECK(r0.status == r1.status && strcmp(r0.reason, r1.reason) == 0);
	if (len <= 4096) {
		r1 = run_chunked(body, len, max_body, 1, 0, &b);
		CHECK(r0.rc == r1.rc && r0.total == r1.total && a.len == b.len && memcmp(a.out, b.out, a.len) == 0);
		if (r0.rc == 1)
			CHECK(r0.used == r1.used);
		if (r0.rc == -1)
			CHECK(r0.status == r1.status && strcmp(r0.reason, r1.reason) == 0);
	}
	free(a.out);
	free(b.out);
}

/* ---- authority / URI ---- */

static void check_target(const struct sbx_http_target *t)
{
	size_t n = strnlen(t->host, sizeof(t->host));

	CHECK(n > 0 && n < sizeof(t->host));
	CHECK(t->port != 0);
	for (size_t i = 0; i < n; i++) {
		char c = t->host[i];

		if (t->is_ipv6)
			CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.');
		else
			CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '_' || c == '.');
	}
	if (!t->is_ipv6) {
		CHECK(n <= 253 && t->host[0] != '.' && t->host[n - 1] != '.');
		CHECK(!strstr(t->host, ".."));
	}
	/* Round trip: the canonical form parses to itself. */
	{
		char again[300];
		struct sbx_http_target t2;
		int k = snprintf(again, sizeof(again), t->is_ipv6 ? "[%s]:%u" : "%s:%u", t->host, t->port);

		CHECK(k > 0 && (size_t)k < sizeof(again));
		CHECK(sbx_http_parse_authority((struct sbx_http_str){again, (size_t)k}, 0, &t2) == 0);
		CHECK(strcmp(t2.host, t->host) == 0 && t2.port == t->port && t2.is_ipv6 == t->is_ipv6);
	}
}

static void fuzz_targets(const char *buf, size_t len, uint16_t def)
{
	struct sbx_http_str s = {buf, len};
	struct sbx_http_target t;

	if (sbx_http_parse_authority(s, def, &t) == 0) {
		check_target(&t);
		CHECK(t.scheme[0] == '\0');
		CHECK(!memchr(buf, '@', len));
	} else {
		CHECK(t.host[0] == '\0');
	}
	if (sbx_http_parse_absolute_uri(s, &t) == 0) {
		check_target(&t);
		CHECK(strcmp(t.scheme, "http") == 0 || strcmp(t.scheme, "https") == 0);
		CHECK(t.path.len >= 1 && t.path.p[0] == '/');
		CHECK(inside(t.path.p, t.path.len, buf, len) || (t.path.len == 1 && !inside(t.path.p, 1, buf, len)));
		CHECK(!memchr(buf, '#', len));
		CHECK(!memchr(t.path.p, ' ', t.path.len));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	static struct sbx_http_msg m, m2; /* 4 KiB each: keep them off the stack */
	static const char *const methods[] = {NULL, "GET", "HEAD", "CONNECT"};
	uint8_t sel = size ? data[0] : 0;
	int rc;

	rc = run_head(parse_request_fn, false, NULL, buf, size, &m, &m2);
	if (rc == SBX_HTTP_OK) {
		/* The body after an accepted chunked head, and the target it names. */
		if (m.body == SBX_HTTP_BODY_CHUNKED)
			fuzz_chunked(buf + m.head_len, size - m.head_len, sel & 1 ? (uint64_t)sel * 8 : 0,
				     (size - m.head_len) * sel / 256);
		fuzz_targets(m.target.p, m.target.len, 80);
		if (m.host.len)
			fuzz_targets(m.host.p, m.host.len, 80);
	}
	rc = run_head(parse_response_fn, true, methods[sel & 3], buf, size, &m, &m2);
	if (rc == SBX_HTTP_OK && m.body == SBX_HTTP_BODY_CHUNKED)
		fuzz_chunked(buf + m.head_len, size - m.head_len, 0, (size - m.head_len) / 2);
	run_head(parse_response_fn, true, "HEAD", buf, size, &m, &m2);

	/* The whole input (after the selector byte) as a chunked body and as targets. */
	if (size > 0) {
		fuzz_chunked(buf + 1, size - 1, sel & 2 ? (uint64_t)sel * 16 : 0, (size - 1) * sel / 255);
		fuzz_targets(buf + 1, size - 1, sel & 4 ? 0 : 443);
	}
	fuzz_targets(buf, size, 80);
	return 0;
}
