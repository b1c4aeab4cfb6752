/* http1.h - strict HTTP/1.1 message parsing (RFC 9110/9112).
 *
 * Used for the daemon's control API and, more importantly, by the egress proxy on bytes the
 * sandbox controls. It is deliberately strict: every message that two implementations could
 * read differently (the raw material of request smuggling) is refused, never "repaired":
 *   - lines must end in CRLF; a bare CR or bare LF anywhere in the head is an error;
 *   - obs-fold (a header line starting with SP/HTAB) is an error;
 *   - whitespace between a header name and the colon is an error;
 *   - NUL and other control characters (except HTAB inside values) are errors;
 *   - Content-Length must be 1*DIGIT, appear once, and must not combine with Transfer-Encoding;
 *   - a request's Transfer-Encoding must be exactly "chunked" (one header, one coding);
 *   - HTTP/1.1 requests need exactly one Host header;
 *   - only HTTP/1.0 and HTTP/1.1 are accepted.
 * Every limit below is a hard cap; exceeding one is an error with the matching status.
 *
 * The head parser is not incremental in its state: call it again on the accumulated bytes
 * until it says OK; it is cheap because heads are capped. Parsed strings point into the
 * caller's buffer, which must outlive the message. */
#ifndef SBX_HTTP1_H
#define SBX_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SBX_HTTP_MAX_START_LINE 8192  /* request line / status line, without CRLF -> 414/502 */
#define SBX_HTTP_MAX_HEAD 65536       /* the whole head incl. start line and final CRLF -> 431 */
#define SBX_HTTP_MAX_HEADERS 128      /* number of header fields -> 431 */
#define SBX_HTTP_MAX_METHOD 32
#define SBX_HTTP_MAX_CHUNK_LINE 1024  /* chunk-size line incl. extensions */
#define SBX_HTTP_MAX_TRAILERS 8192    /* total trailer bytes */

struct sbx_http_str {
	const char *p;
	size_t len;
};

struct sbx_http_header {
	struct sbx_http_str name;
	struct sbx_http_str value; /* leading and trailing SP/HTAB removed */
};

enum sbx_http_kind { SBX_HTTP_REQUEST, SBX_HTTP_RESPONSE };

enum sbx_http_body {
	SBX_HTTP_BODY_NONE,    /* no body at all */
	SBX_HTTP_BODY_LENGTH,  /* exactly content_length bytes (may be 0) */
	SBX_HTTP_BODY_CHUNKED, /* chunked transfer coding */
	SBX_HTTP_BODY_EOF,     /* responses only: until the connection closes */
	SBX_HTTP_BODY_TUNNEL,  /* responses only: 2xx to CONNECT or 101: raw bytes follow */
};

struct sbx_http_msg {
	enum sbx_http_kind kind;
	struct sbx_http_str method; /* requests */
	struct sbx_http_str target; /* requests: the request-target exactly as sent */
	int version;                /* 10 or 11 */
	int status;                 /* responses */
	struct sbx_http_str reason; /* responses */
	size_t nheaders;
	struct sbx_http_header headers[SBX_HTTP_MAX_HEADERS];
	size_t head_len; /* bytes of the head, including the empty line */
	enum sbx_http_body body;
	uint64_t content_length; /* valid when body == SBX_HTTP_BODY_LENGTH */
	bool keep_alive;         /* after this message, per version and Connection */
	bool expect_continue;    /* request: "Expect: 100-continue" */
	bool upgrade;            /* Connection: upgrade and an Upgrade header are present */
	struct sbx_http_str host; /* request: the Host header value (len 0 if absent) */
};

struct sbx_http_error {
	int status;         /* the status to answer with (400, 414, 431, 501, 505; 502 for responses) */
	const char *reason; /* static text naming the problem, e.g. "duplicate Content-Length" */
};

enum { SBX_HTTP_ERROR = -1, SBX_HTTP_INCOMPLETE = 0, SBX_HTTP_OK = 1 };

/* Parse a request head at the start of buf[0..len). */
int sbx_http_parse_request(const char *buf, size_t len, struct sbx_http_msg *msg, struct sbx_http_error *err);
/* Parse a response head. req_method is the method of the request it answers (HEAD and CONNECT
 * change the body rules); it may be NULL for "GET". 1xx responses parse as bodiless messages:
 * the caller skips them (except 101) and parses again. */
int sbx_http_parse_response(const char *buf, size_t len, const char *req_method, struct sbx_http_msg *msg,
			    struct sbx_http_error *err);

/* First header with this name (case-insensitive), or NULL. */
const struct sbx_http_str *sbx_http_header_get(const struct sbx_http_msg *msg, const char *name);
/* Number of headers with this name. */
size_t sbx_http_header_count(const struct sbx_http_msg *msg, const char *name);
bool sbx_http_str_eq(struct sbx_http_str s, const char *lit);
bool sbx_http_str_ieq(struct sbx_http_str s, const char *lit);
/* Does a comma-separated header value contain this token (case-insensitive)? */
bool sbx_http_list_has_token(struct sbx_http_str value, const char *token);

/* Incremental chunked-body decoder. It validates framing strictly (hex sizes without sign or
 * leading whitespace, no size overflow, CRLF after data, well-formed extensions and trailers)
 * and reports the data bytes, so a proxy can forward the raw input unchanged while hashing or
 * previewing the payload. */
struct sbx_http_chunked {
	int state;
	uint64_t remaining; /* data bytes left in the current chunk */
	uint64_t total;     /* data bytes so far */
	uint64_t max_body;  /* hard cap on total data bytes; 0 = no cap */
	size_t line_len;    /* bytes of the current size/trailer line seen */
	size_t trailer_bytes;
	bool size_digits;   /* a hex digit was seen on this size line */
	bool in_ext;
};
typedef void (*sbx_http_data_cb)(void *ud, const char *data, size_t len);

void sbx_http_chunked_init(struct sbx_http_chunked *c, uint64_t max_body);
/* Feeds in[0..len). *consumed is set to the bytes used (less than len only when the message
 * ended inside this input: what follows belongs to the next message). cb (may be NULL) gets each
 * run of data bytes. Returns 1 when the final chunk and trailers are complete, 0 when more
 * input is needed, -1 on a framing error (err filled: 400, or 413 when max_body is exceeded). */
int sbx_http_chunked_feed(struct sbx_http_chunked *c, const char *in, size_t len, size_t *consumed,
			  sbx_http_data_cb cb, void *ud, struct sbx_http_error *err);

/* Request targets. */
struct sbx_http_target {
	char scheme[8];            /* "http" / "https" for absolute-form, "" otherwise */
	char host[256];            /* lowercased; IPv6 without brackets; "" for origin-form */
	uint16_t port;             /* explicit port or the scheme's default; 0 if none */
	struct sbx_http_str path;  /* path + query ("/" if the absolute URI has none) */
	bool is_ipv6;
};
/* "host", "host:port", "[v6]:port". Validates the host as a DNS name (letters, digits, '-',
 * '_', '.'; labels 1..63; total <= 253) or an IPv4/IPv6 literal. default_port is used when no
 * port is given (0 = a port is required). Returns 0 or -1. */
int sbx_http_parse_authority(struct sbx_http_str s, uint16_t default_port, struct sbx_http_target *t);
/* "http://host[:port]/path?query" (no userinfo, no fragment). */
int sbx_http_parse_absolute_uri(struct sbx_http_str s, struct sbx_http_target *t);

/* Status line text for a status code ("Not Found"); "Unknown" if none. */
const char *sbx_http_status_text(int status);

#endif
