/* classify.c - the built-in request classifiers of the review queue (see classify.h).
 *
 * aws-destructive reads the action where each AWS protocol writes it. http-delete is one
 * comparison. git-force-push is most of this file: a push is a list of ref updates followed by a
 * pack, and an update is let through only when the pack itself proves it a fast-forward. The
 * proof is made of object ids, which are hashes of content: a commit in the pack that hashes to
 * the new id and whose parents lead, through other commits of the pack, to the old id shows that
 * the old commit stays reachable, whatever the server does with the rest of the bytes. Nothing
 * is taken from the client's word (no "the server has it" shortcut): what the pack does not
 * prove is held.
 *
 * Work is bounded everywhere: the body is at most SBX_CLASSIFY_BODY_MAX bytes, inflated bytes
 * count against a budget, tables have hard caps, hash chains have a length cap (a fixed hash can
 * be attacked; a long chain is held instead of walked), and the ancestry walk is incremental
 * (each commit gains each ref's mark at most once). A cap reached is a HOLD that says which.
 *
 * Decisions are made at deterministic points of the body (after a command list, after an
 * object), never "at the end of what happened to arrive": so a verdict on a prefix is the verdict
 * on every longer prefix (classify.h), which the fuzz target checks. */
#include "classify.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

typedef enum sbx_classify_verdict verdict_t;
#define PASS SBX_CLASSIFY_PASS
#define HOLD SBX_CLASSIFY_HOLD
#define MORE SBX_CLASSIFY_MORE

/* ---- names ---- */

static const char *const cls_names[SBX_CLS_COUNT] = {
	[SBX_CLS_AWS] = "aws-destructive",
	[SBX_CLS_HTTP_DELETE] = "http-delete",
	[SBX_CLS_GIT_PUSH] = "git-force-push",
};

static const char *const cls_summaries[SBX_CLS_COUNT] = {
	[SBX_CLS_AWS] = "AWS API calls named Delete*, Terminate*, Remove*, Detach*, Revoke*, Put*Policy, Update*Stack "
			"(JSON target header, query-protocol Action, RPC v2 path, REST DELETE, S3 ?policy/?delete)",
	[SBX_CLS_HTTP_DELETE] = "HTTP DELETE requests to any host (also a DELETE method override header)",
	[SBX_CLS_GIT_PUSH] = "git pushes over HTTP that delete a ref or move one to a commit the pushed pack does not "
			     "prove a fast-forward",
};

const char *sbx_classifier_name(enum sbx_classifier c)
{
	return (unsigned)c < SBX_CLS_COUNT ? cls_names[c] : NULL;
}

const char *sbx_classifier_summary(enum sbx_classifier c)
{
	return (unsigned)c < SBX_CLS_COUNT ? cls_summaries[c] : NULL;
}

int sbx_classifier_parse(const char *name, enum sbx_classifier *out)
{
	if (!name)
		return -1;
	for (unsigned i = 0; i < SBX_CLS_COUNT; i++) {
		if (strcmp(name, cls_names[i]) == 0) {
			if (out)
				*out = (enum sbx_classifier)i;
			return 0;
		}
	}
	return -1;
}

/* ---- text helpers ---- */

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

static unsigned char lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool mem_ieq(const void *a, const char *lit, size_t n)
{
	const unsigned char *p = a;

	for (size_t i = 0; i < n; i++)
		if (lower(p[i]) != lower((unsigned char)lit[i]))
			return false;
	return true;
}

static bool str_ieq(struct sbx_http_str s, const char *lit)
{
	return s.len == strlen(lit) && mem_ieq(s.p, lit, s.len);
}

static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static struct sbx_http_str trim(struct sbx_http_str s)
{
	while (s.len && is_ows((unsigned char)s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len && is_ows((unsigned char)s.p[s.len - 1]))
		s.len--;
	return s;
}

/* Sandbox bytes made fit for a message: printable ASCII only (anything else becomes '?'), cut
 * to cap-1 bytes with "..." at the end when longer. cap >= 4. */
static void show(char *dst, size_t cap, const void *src, size_t n)
{
	const unsigned char *s = src;
	size_t k = n < cap ? n : cap - 1;

	if (n >= cap)
		k = cap - 4;
	for (size_t i = 0; i < k; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
	if (n >= cap) {
		memcpy(dst + k, "...", 3);
		k += 3;
	}
	dst[k] = '\0';
}

static void oid_hex_short(const uint8_t *oid, char out[13])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 6; i++) {
		out[2 * i] = hex[oid[i] >> 4];
		out[2 * i + 1] = hex[oid[i] & 15];
	}
	out[12] = '\0';
}

/* Fills out as a HOLD. action is shown as given (made printable and cut to fit); the reason is
 * formatted, then made printable, with "..." when it had to be cut. */
static verdict_t hold(struct sbx_classify_result *out, enum sbx_classifier which, const char *action, const char *fmt,
		      ...) __attribute__((format(printf, 4, 5)));
static verdict_t hold(struct sbx_classify_result *out, enum sbx_classifier which, const char *action, const char *fmt,
		      ...)
{
	va_list ap;
	int n;

	memset(out, 0, sizeof(*out));
	out->verdict = HOLD;
	out->which = which;
	show(out->action, sizeof(out->action), action, strlen(action));
	va_start(ap, fmt);
	n = vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
	if (n < 0)
		snprintf(out->reason, sizeof(out->reason), "%s", "request held (its description could not be formatted)");
	else if ((size_t)n >= sizeof(out->reason))
		memcpy(out->reason + sizeof(out->reason) - 4, "...", 4);
	for (char *c = out->reason; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	return HOLD;
}

/* ---- the request, normalised once ---- */

struct req {
	const char *host;
	const char *method;
	const struct sbx_http_msg *msg;
	struct sbx_http_str path;  /* target up to '?' */
	struct sbx_http_str query; /* after '?'; len 0 when none */
	const uint8_t *body;
	size_t len;
	bool complete;
	bool at_cap; /* incomplete, and as much as will ever be looked at is here */
};

static const struct sbx_http_str *hdr(const struct req *r, const char *name)
{
	return r->msg ? sbx_http_header_get(r->msg, name) : NULL;
}

static size_t hdr_count(const struct req *r, const char *name)
{
	return r->msg ? sbx_http_header_count(r->msg, name) : 0;
}

static bool method_is(const struct req *r, const char *m)
{
	/* Methods are case-sensitive, but a server that upper-cases them must not turn a "delete"
	 * we let through into a DELETE: compare without case. */
	return strcasecmp(r->method, m) == 0;
}

/* Does the head say the body is encoded (any Content-Encoding coding but identity)? */
static bool body_encoded(const struct req *r)
{
	if (!r->msg)
		return false;
	for (size_t i = 0; i < r->msg->nheaders; i++) {
		const struct sbx_http_header *h = &r->msg->headers[i];
		size_t s = 0;

		if (!str_ieq(h->name, "Content-Encoding"))
			continue;
		while (s <= h->value.len) {
			const char *comma = memchr(h->value.p + s, ',', h->value.len - s);
			size_t e = comma ? (size_t)(comma - h->value.p) : h->value.len;
			struct sbx_http_str el = trim((struct sbx_http_str){h->value.p + s, e - s});

			if (el.len && !str_ieq(el, "identity"))
				return true;
			s = e + 1;
		}
	}
	return false;
}

/* The media type of a Content-Type value (before any ";" parameter) equals type, ignoring case. */
static bool media_type_is(struct sbx_http_str v, const char *type)
{
	const char *semi = memchr(v.p, ';', v.len);
	struct sbx_http_str t = {v.p, semi ? (size_t)(semi - v.p) : v.len};

	return str_ieq(trim(t), type);
}

static void req_init(struct req *r, const struct sbx_classify_input *in)
{
	const char *target = in->target ? in->target : "";
	const char *q = strchr(target, '?');

	memset(r, 0, sizeof(*r));
	r->host = in->host ? in->host : "";
	r->method = in->method ? in->method : "";
	r->msg = in->msg;
	r->path = (struct sbx_http_str){target, q ? (size_t)(q - target) : strlen(target)};
	r->query = q ? (struct sbx_http_str){q + 1, strlen(q + 1)} : (struct sbx_http_str){"", 0};
	r->body = in->body;
	r->len = in->body ? in->body_len : 0;
	r->complete = in->body_complete;
	if (r->msg) {
		/* The head's framing has the last word on where the body ends. */
		if (r->msg->body == SBX_HTTP_BODY_NONE ||
		    (r->msg->body == SBX_HTTP_BODY_LENGTH && r->msg->content_length == 0)) {
			r->len = 0;
			r->complete = true;
		} else if (r->msg->body == SBX_HTTP_BODY_LENGTH && r->len >= r->msg->content_length) {
			r->len = (size_t)r->msg->content_length;
			r->complete = true;
		}
	}
	if (r->len > SBX_CLASSIFY_BODY_MAX) {
		/* Never look past the cap, even when given more: a longer body is decided on its first
		 * SBX_CLASSIFY_BODY_MAX bytes or held. */
		r->len = SBX_CLASSIFY_BODY_MAX;
		r->complete = false;
	}
	r->at_cap = !r->complete && r->len >= SBX_CLASSIFY_BODY_MAX;
	if (!r->body)
		r->body = (const uint8_t *)"";
}

/* ---- urlencoded parameter lists ---- */

/* Decodes s[0..n) (%XX, and '+' as a space) into out[0..cap). Returns the decoded length, -1 for
 * a malformed escape (checked over the whole input), or -2 when the result does not fit. */
static long pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t k = 0;
	bool over = false;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3)
				return -1;
			hi = hex_val((unsigned char)s[i + 1]);
			lo = hex_val((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (k < cap)
			out[k++] = (char)c;
		else
			over = true;
	}
	return over ? -2 : (long)k;
}

struct params {
	const char *p, *end;
	bool final; /* the list ends at end; otherwise its last piece may still grow and is not returned */
};

/* The next non-empty "name[=value]" piece of an '&'-separated list. */
static bool param_next(struct params *it, struct sbx_http_str *name, struct sbx_http_str *value)
{
	while (it->p < it->end) {
		const char *amp = memchr(it->p, '&', (size_t)(it->end - it->p));
		const char *pe, *eq;

		if (!amp && !it->final)
			return false;
		pe = amp ? amp : it->end;
		if (pe == it->p) {
			it->p = pe + 1;
			continue;
		}
		eq = memchr(it->p, '=', (size_t)(pe - it->p));
		*name = (struct sbx_http_str){it->p, (size_t)((eq ? eq : pe) - it->p)};
		*value = eq ? (struct sbx_http_str){eq + 1, (size_t)(pe - eq - 1)} : (struct sbx_http_str){pe, 0};
		it->p = amp ? amp + 1 : it->end;
		return true;
	}
	return false;
}

/* ---- aws-destructive ---- */

#define AWS_ACTION_MAX 512

/* The action globs, each "prefix*suffix" ('*' any run, possibly empty). */
static const struct {
	const char *prefix, *suffix;
} aws_patterns[] = {
	{"Delete", ""}, {"Terminate", ""}, {"Remove", ""}, {"Detach", ""},
	{"Revoke", ""}, {"Put", "Policy"}, {"Update", "Stack"},
};

static bool aws_destructive(const char *a, size_t n)
{
	for (size_t i = 0; i < sizeof(aws_patterns) / sizeof(aws_patterns[0]); i++) {
		size_t pl = strlen(aws_patterns[i].prefix), sl = strlen(aws_patterns[i].suffix);

		if (n >= pl + sl && memcmp(a, aws_patterns[i].prefix, pl) == 0 &&
		    memcmp(a + n - sl, aws_patterns[i].suffix, sl) == 0)
			return true;
	}
	return false;
}

static bool host_has_suffix(const char *h, size_t n, const char *dom)
{
	size_t d = strlen(dom);

	if (n == d)
		return mem_ieq(h, dom, d);
	return n > d && h[n - d - 1] == '.' && mem_ieq(h + n - d, dom, d);
}

/* amazonaws.com, *.amazonaws.com, and the same under amazonaws.com.cn. A trailing dot and a
 * ":port" are ignored, so that neither hides an AWS host. */
static bool is_aws_host(const char *host)
{
	size_t n = strlen(host);
	const char *colon = memchr(host, ':', n);

	if (colon && strchr(colon + 1, ':') == NULL && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1))
		n = (size_t)(colon - host);
	if (n && host[n - 1] == '.')
		n--;
	return host_has_suffix(host, n, "amazonaws.com") || host_has_suffix(host, n, "amazonaws.com.cn");
}

struct aws_ctx {
	const struct req *r;
	struct sbx_classify_result *out;
	unsigned actions; /* "Action" parameters seen (URL query and form body) */
};

/* HOLD when action (after trimming blanks) matches a pattern; how says where it was found. */
static verdict_t aws_check_action(struct aws_ctx *c, const char *a, size_t n, const char *how)
{
	struct sbx_http_str t = trim((struct sbx_http_str){a, n});
	char action[128], shown[100];

	if (!aws_destructive(t.p, t.len))
		return PASS;
	/* The action text is the exemption's shape: show() keeps a real action name unchanged. */
	show(action, sizeof(action), t.p, t.len);
	show(shown, sizeof(shown), t.p, t.len);
	return hold(c->out, SBX_CLS_AWS, action, "AWS action %s (%s)", shown, how);
}

/* Looks through an urlencoded list for Action parameters (and nothing else). */
static verdict_t aws_params(struct aws_ctx *c, const char *s, size_t n, bool final, const char *where)
{
	struct params it = {s, s + n, final};
	struct sbx_http_str name, value;
	char nbuf[8];
	char how[64];

	while (param_next(&it, &name, &value)) {
		long nl = pct_decode(name.p, name.len, nbuf, sizeof(nbuf));
		char *vbuf;
		long vl;
		verdict_t v;

		if (nl == -1)
			return hold(c->out, SBX_CLS_AWS, "aws:malformed-parameters",
				    "AWS request to %s: a parameter name in the %s has a malformed %%-escape, so its "
				    "Action cannot be read",
				    c->r->host, where);
		if (nl != 6 || memcmp(nbuf, "Action", 6) != 0)
			continue;
		if (++c->actions > 1)
			return hold(c->out, SBX_CLS_AWS, "aws:ambiguous-action",
				    "AWS request to %s names its Action more than once (URL query and/or form "
				    "body): ambiguous",
				    c->r->host);
		vbuf = malloc(AWS_ACTION_MAX);
		if (!vbuf)
			return hold(c->out, SBX_CLS_AWS, "aws:unreadable-body",
				    "out of memory while reading an AWS request's Action");
		vl = pct_decode(value.p, value.len, vbuf, AWS_ACTION_MAX);
		if (vl < 0) {
			free(vbuf);
			return hold(c->out, SBX_CLS_AWS, "aws:malformed-parameters",
				    "AWS request to %s: its Action in the %s %s", c->r->host, where,
				    vl == -1 ? "has a malformed %-escape" : "is longer than 512 bytes");
		}
		snprintf(how, sizeof(how), "query protocol, %s", where);
		v = aws_check_action(c, vbuf, (size_t)vl, how);
		free(vbuf);
		if (v != PASS)
			return v;
	}
	return PASS;
}

/* Is there a parameter named exactly lit (after decoding) in the URL query? -1: unreadable. */
static int query_has_param(const struct req *r, const char *lit)
{
	struct params it = {r->query.p, r->query.p + r->query.len, true};
	struct sbx_http_str name, value;
	char nbuf[16];
	size_t l = strlen(lit);

	while (param_next(&it, &name, &value)) {
		long nl = pct_decode(name.p, name.len, nbuf, sizeof(nbuf));

		if (nl == -1)
			return -1;
		if (nl == (long)l && memcmp(nbuf, lit, l) == 0)
			return 1;
	}
	return 0;
}

/* Smithy RPC v2 (CBOR) puts the operation in the path: ".../service/NAME/operation/OP". */
static bool rpcv2_operation(struct sbx_http_str path, struct sbx_http_str *op)
{
	struct sbx_http_str seg[4];
	size_t end = path.len;

	for (int i = 3; i >= 0; i--) {
		size_t s = end;

		while (s > 0 && path.p[s - 1] != '/')
			s--;
		if (s == 0)
			return false; /* ran out of '/'-led segments */
		seg[i] = (struct sbx_http_str){path.p + s, end - s};
		end = s - 1;
	}
	if (!sbx_http_str_eq(seg[0], "service") || seg[1].len == 0 || !sbx_http_str_eq(seg[2], "operation") ||
	    seg[3].len == 0)
		return false;
	*op = seg[3];
	return true;
}

static verdict_t cls_aws(const struct req *r, struct sbx_classify_result *out)
{
	struct aws_ctx c = {r, out, 0};
	const struct sbx_http_str *v;
	struct sbx_http_str op;
	size_t ntypes;
	bool form;
	verdict_t res;
	int has;

	if (!is_aws_host(r->host))
		return PASS;

	/* JSON protocol: "Service_20xx.Action" in X-Amz-Target. */
	if (hdr_count(r, "X-Amz-Target") > 1)
		return hold(out, SBX_CLS_AWS, "aws:ambiguous-action",
			    "AWS request to %s has several X-Amz-Target headers: ambiguous", r->host);
	if ((v = hdr(r, "X-Amz-Target")) != NULL) {
		const char *dot = memrchr(v->p, '.', v->len);
		struct sbx_http_str a = dot ? (struct sbx_http_str){dot + 1, v->len - (size_t)(dot + 1 - v->p)} : *v;

		if (memchr(v->p, ',', v->len))
			return hold(out, SBX_CLS_AWS, "aws:ambiguous-action",
				    "AWS request to %s has a list in X-Amz-Target: ambiguous", r->host);
		if ((res = aws_check_action(&c, a.p, a.len, "JSON protocol, X-Amz-Target")) != PASS)
			return res;
	}

	/* Smithy RPC v2: the operation is the last path segment. */
	if (rpcv2_operation(r->path, &op)) {
		char buf[AWS_ACTION_MAX];
		long l = pct_decode(op.p, op.len, buf, sizeof(buf));

		if (l < 0)
			return hold(out, SBX_CLS_AWS, "aws:malformed-parameters",
				    "AWS request to %s: the operation in its path cannot be read", r->host);
		if ((res = aws_check_action(&c, buf, (size_t)l, "RPC v2 operation path")) != PASS)
			return res;
	}

	/* Query protocol, URL part. */
	if ((res = aws_params(&c, r->query.p, r->query.len, true, "URL query")) != PASS)
		return res;

	/* REST protocols: the method and S3's subresources say what happens. */
	if (method_is(r, "DELETE"))
		return hold(out, SBX_CLS_AWS, "DELETE", "AWS REST API call with method DELETE to %s", r->host);
	if (method_is(r, "PUT") || method_is(r, "POST")) {
		bool put = method_is(r, "PUT");

		if ((has = query_has_param(r, "policy")) != 0)
			return hold(out, SBX_CLS_AWS, put ? "PUT ?policy" : "POST ?policy",
				    "AWS REST call %s ?policy to %s (sets a resource policy, as PutBucketPolicy)",
				    put ? "PUT" : "POST", r->host);
		if (!put && (has = query_has_param(r, "delete")) != 0)
			return hold(out, SBX_CLS_AWS, "POST ?delete",
				    "AWS REST call POST ?delete to %s (deletes objects, as S3 DeleteObjects)", r->host);
	}

	/* Query protocol, form body. A POST without a Content-Type is read as a form too: a service
	 * could, and the cost is reading a body that is not one. */
	if (!method_is(r, "POST"))
		return PASS;
	ntypes = hdr_count(r, "Content-Type");
	form = ntypes != 1 || media_type_is(*hdr(r, "Content-Type"), "application/x-www-form-urlencoded");
	if (!form)
		return PASS;
	/* What follows is about the body: nothing to say before a byte of it is known. */
	if (r->len == 0)
		return r->complete ? PASS : MORE;
	if (ntypes > 1)
		return hold(out, SBX_CLS_AWS, "aws:ambiguous-action",
			    "AWS POST to %s has several Content-Type headers: its body cannot be read with certainty",
			    r->host);
	if (body_encoded(r))
		return hold(out, SBX_CLS_AWS, "aws:unreadable-body",
			    "AWS form POST to %s has a Content-Encoding: the proxy cannot read its Action", r->host);
	if ((res = aws_params(&c, (const char *)r->body, r->len, r->complete, "form body")) != PASS)
		return res;
	if (r->complete)
		return PASS;
	if (r->at_cap)
		return hold(out, SBX_CLS_AWS, "aws:unreadable-body",
			    "the form body of an AWS request to %s does not fit in %u KiB: its Action cannot be checked",
			    r->host, SBX_CLASSIFY_BODY_MAX / 1024);
	return MORE;
}

/* ---- http-delete ---- */

static verdict_t cls_delete(const struct req *r, struct sbx_classify_result *out)
{
	static const char *const overrides[] = {"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"};
	const char *host = r->host[0] ? r->host : "an address";

	if (method_is(r, "DELETE"))
		return hold(out, SBX_CLS_HTTP_DELETE, "DELETE", "HTTP DELETE request to %s", host);
	/* Frameworks that honour these turn a POST into a DELETE. */
	for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++) {
		if (!r->msg)
			break;
		for (size_t k = 0; k < r->msg->nheaders; k++) {
			const struct sbx_http_header *h = &r->msg->headers[k];

			if (str_ieq(h->name, overrides[i]) && str_ieq(trim(h->value), "DELETE"))
				return hold(out, SBX_CLS_HTTP_DELETE, "DELETE", "HTTP %s request to %s with %s: DELETE",
					    r->method[0] ? r->method : "?", host, overrides[i]);
		}
	}
	return PASS;
}

/* ---- git-force-push ---- */

#define GIT_MAX_COMMANDS 4096
#define GIT_MAX_PROOFS 64         /* updates of existing refs in one push (one bit each) */
#define GIT_MAX_OBJECTS 16384
#define GIT_MAX_PARENTS 32768     /* parent links over all commits of the pack */
#define GIT_COMMIT_MAX (1u << 20) /* one commit, inflated */
#define GIT_DELTA_MAX (2u << 20)  /* the delta data of one commit */
#define GIT_ARENA_MAX (4u << 20)  /* commit contents kept as delta bases */
#define GIT_WORK_MAX (8u << 20)   /* bytes inflated or rebuilt from deltas, per call */
#define GIT_CHAIN_MAX 48          /* entries in one hash chain */
#define PKT_MAX 65520             /* git's LARGE_PACKET_MAX */
#define OID_MAX 32
#define NOT_KEPT UINT32_MAX

enum { STEP_OK, STEP_NEED, STEP_STOP }; /* STOP: the verdict is in out */

enum cmd_kind { CMD_CREATE, CMD_DELETE, CMD_UPDATE, CMD_NOOP };
/* Pack object types (git's numbers); UNKNOWN for a delta whose base the pack does not tell. */
enum obj_type { OBJ_UNKNOWN = 0, OBJ_COMMIT = 1, OBJ_TREE = 2, OBJ_BLOB = 3, OBJ_TAG = 4, OBJ_OFS_DELTA = 6, OBJ_REF_DELTA = 7 };
enum cause { CAUSE_END, CAUSE_CAP };

struct cmd {
	const uint8_t *line; /* "<old> <new> <ref>" up to the NUL */
	size_t line_len;
	const uint8_t *caps; /* after the NUL, NULL if none */
	size_t caps_len;
	uint8_t kind;
	uint8_t proof;
};

struct proof {
	uint8_t old[OID_MAX], new_[OID_MAX];
	bool new_seen; /* a commit of the pack hashed to new */
};

struct obj {
	uint32_t off;  /* from the start of the pack */
	uint8_t type;  /* after delta resolution; OBJ_UNKNOWN when it cannot be told */
	int32_t commit; /* OBJ_COMMIT: index in commits */
};

struct commit {
	uint8_t oid[OID_MAX];
	uint32_t data_off, data_len; /* content in the arena; data_len NOT_KEPT when it did not fit */
	uint32_t first_slot, nslots;
	int32_t next; /* index hash chain */
	uint64_t visited; /* bit u: reachable from proofs[u].new_ through commits of the pack */
	uint64_t pending; /* bits gained and not yet passed on to the parents */
};

/* One parent link. Until the parent arrives the slot waits in a hash chain keyed by its oid. */
struct slot {
	uint8_t oid[OID_MAX];
	int32_t child;
	int32_t resolved;  /* the parent's commit index, -1 while not in the pack */
	int32_t next_oid;  /* waiting: the next entry with another oid in this bucket */
	int32_t next_same; /* waiting: the next slot with the same oid */
	uint64_t olds;     /* bit u: this parent is proofs[u].old */
};

struct git {
	const struct req *r;
	struct sbx_classify_result *out;
	const uint8_t *p;
	size_t len;
	size_t hashsz;
	const EVP_MD *md;
	bool push_options;

	struct cmd *cmds;
	size_t ncmds, cmds_cap;
	size_t first_open; /* commands before this one are known to be fine */
	struct proof proofs[GIT_MAX_PROOFS];
	size_t nproofs;
	uint64_t proven;

	size_t pack_at;
	struct obj *objs;
	size_t nobjs, objs_cap;
	struct commit *commits;
	size_t ncommits, commits_cap;
	struct slot *slots;
	size_t nslots, slots_cap;
	int32_t *index, *waiting; /* hash heads */
	size_t index_mask, waiting_mask;
	int32_t *stack;
	uint8_t *arena;
	size_t arena_len, arena_cap;
	uint8_t *cbuf, *dbuf;
	size_t cbuf_cap, dbuf_cap;
	uint64_t work;
	z_stream zs;
	bool zs_ready;
	EVP_MD_CTX *mdctx;
	uint8_t sink[16384];
};

static verdict_t git_hold(struct git *g, const char *action, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static verdict_t git_hold(struct git *g, const char *action, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return hold(g->out, SBX_CLS_GIT_PUSH, action, "%s", msg);
}

static int malformed(struct git *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int malformed(struct git *g, const char *fmt, ...)
{
	char msg[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hold(g->out, SBX_CLS_GIT_PUSH, "git-push:malformed", "malformed git push: %s", msg);
	return STEP_STOP;
}

static int too_large(struct git *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int too_large(struct git *g, const char *fmt, ...)
{
	char msg[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hold(g->out, SBX_CLS_GIT_PUSH, "git-push:too-large", "git push not checked: %s", msg);
	return STEP_STOP;
}

static int unchecked(struct git *g, const char *why)
{
	hold(g->out, SBX_CLS_GIT_PUSH, "git-push:unchecked", "git push not checked: %s", why);
	return STEP_STOP;
}

/* Grows *arr (of elem-sized entries, capacity *cap) to hold need entries, doubling, never past
 * max. Returns 0, or -1 when out of memory (need <= max is the caller's check). */
static int grow(void **arr, size_t *cap, size_t need, size_t elem, size_t max)
{
	size_t n = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return 0;
	if (need > max)
		return -1;
	while (n < need)
		n *= 2;
	if (n > max)
		n = max;
	p = realloc(*arr, n * elem);
	if (!p)
		return -1;
	*arr = p;
	*cap = n;
	return 0;
}

static bool is_zero_oid(const uint8_t *oid, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (oid[i])
			return false;
	return true;
}

/* n*2 hex digits (either case, as git reads them) into n bytes. */
static bool parse_hex_oid(const uint8_t *s, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi * 16 + lo);
	}
	return true;
}

static bool all_hex(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (hex_val(s[i]) < 0)
			return false;
	return true;
}

static uint32_t oid_hash(const uint8_t *oid)
{
	uint64_t v;

	memcpy(&v, oid, sizeof(v));
	v ^= v >> 31;
	v *= 0xbf58476d1ce4e5b9ULL;
	v ^= v >> 29;
	return (uint32_t)v;
}

/* ---- pkt-lines ---- */

enum { PKT_DATA, PKT_FLUSH, PKT_NEED, PKT_BAD };

static int pkt_read(struct git *g, size_t *pos, const uint8_t **data, size_t *n)
{
	unsigned v = 0;

	if (g->len - *pos < 4)
		return PKT_NEED;
	for (int i = 0; i < 4; i++) {
		int h = hex_val(g->p[*pos + (size_t)i]);

		if (h < 0) {
			malformed(g, "a pkt-line length at byte %zu is not 4 hex digits", *pos);
			return PKT_BAD;
		}
		v = v * 16 + (unsigned)h;
	}
	if (v == 0) {
		*pos += 4;
		return PKT_FLUSH;
	}
	if (v < 4 || v > PKT_MAX) {
		malformed(g, "pkt-line length %04x at byte %zu is not allowed in a receive-pack request", v, *pos);
		return PKT_BAD;
	}
	if (g->len - *pos < v)
		return PKT_NEED;
	*data = g->p + *pos + 4;
	*n = v - 4;
	*pos += v;
	return PKT_DATA;
}

/* The value of a capability in a space-separated list ("name" or "name=value"): 1 found (*val
 * set, empty for a bare name), 0 not. */
static int cap_find(const uint8_t *caps, size_t n, const char *name, struct sbx_http_str *val)
{
	size_t nl = strlen(name), s = 0;

	while (s < n) {
		const uint8_t *sp = memchr(caps + s, ' ', n - s);
		size_t e = sp ? (size_t)(sp - caps) : n;
		const char *tok = (const char *)caps + s;
		size_t tl = e - s;

		if (tl >= nl && memcmp(tok, name, nl) == 0 && (tl == nl || tok[nl] == '=')) {
			*val = tl == nl ? (struct sbx_http_str){"", 0} : (struct sbx_http_str){tok + nl + 1, tl - nl - 1};
			return 1;
		}
		s = e + 1;
	}
	return 0;
}

/* Reads pkt-lines up to the flush that ends the command list, the way receive-pack does:
 * "shallow <oid>" lines are skipped wherever they are, "push-cert" starts a signed push (held:
 * its commands are inside a certificate), anything else is a command. One trailing LF of a line
 * is dropped; a NUL separates the capabilities. */
static int read_commands(struct git *g, size_t *pos)
{
	for (;;) {
		const uint8_t *d = NULL, *nul;
		size_t n = 0;
		int k = pkt_read(g, pos, &d, &n);

		if (k == PKT_NEED)
			return STEP_NEED;
		if (k == PKT_BAD)
			return STEP_STOP;
		if (k == PKT_FLUSH)
			return STEP_OK;
		if (n && d[n - 1] == '\n')
			n--;
		if (n > 8 && memcmp(d, "shallow ", 8) == 0) {
			if ((n - 8 != 40 && n - 8 != 64) || !all_hex(d + 8, n - 8))
				return malformed(g, "a shallow line does not hold an object id");
			continue;
		}
		nul = memchr(d, '\0', n);
		if ((nul ? (size_t)(nul - d) : n) == 9 && memcmp(d, "push-cert", 9) == 0) {
			hold(g->out, SBX_CLS_GIT_PUSH, "git-push:signed",
			     "signed git push (push-cert): its ref updates are inside a certificate the proxy does not read");
			return STEP_STOP;
		}
		if (g->ncmds == GIT_MAX_COMMANDS)
			return too_large(g, "more than %d ref updates in one push", GIT_MAX_COMMANDS);
		if (grow((void **)&g->cmds, &g->cmds_cap, g->ncmds + 1, sizeof(*g->cmds), GIT_MAX_COMMANDS) < 0)
			return unchecked(g, "out of memory");
		g->cmds[g->ncmds++] = (struct cmd){
			.line = d,
			.line_len = nul ? (size_t)(nul - d) : n,
			.caps = nul ? nul + 1 : NULL,
			.caps_len = nul ? n - (size_t)(nul + 1 - d) : 0,
		};
	}
}

/* The object format (every line with capabilities must agree; receive-pack takes a line with
 * capabilities but without object-format as sha1; with none at all, the server's own format is
 * used, which the ids' length tells), then each command parsed strictly. */
static int parse_commands(struct git *g)
{
	size_t hashsz = 0;

	for (size_t i = 0; i < g->ncmds; i++) {
		struct cmd *c = &g->cmds[i];
		struct sbx_http_str v;
		size_t h;

		if (!c->caps)
			continue;
		if (cap_find(c->caps, c->caps_len, "push-options", &v))
			g->push_options = true;
		if (!cap_find(c->caps, c->caps_len, "object-format", &v) || sbx_http_str_eq(v, "sha1"))
			h = 20;
		else if (sbx_http_str_eq(v, "sha256"))
			h = 32;
		else
			return malformed(g, "unsupported object-format in the capabilities");
		if (hashsz && hashsz != h)
			return malformed(g, "the commands disagree on the object format");
		hashsz = h;
	}
	if (!hashsz) {
		const struct cmd *c = &g->cmds[0];

		hashsz = (c->line_len > 40 && c->line[40] == ' ') ? 20 : 32;
	}
	g->hashsz = hashsz;
	g->md = hashsz == 20 ? EVP_sha1() : EVP_sha256();

	for (size_t i = 0; i < g->ncmds; i++) {
		struct cmd *c = &g->cmds[i];
		uint8_t old[OID_MAX], new_[OID_MAX];
		size_t hex = 2 * hashsz;

		if (c->line_len < 2 * hex + 2 || c->line[hex] != ' ' || c->line[2 * hex + 1] != ' ' ||
		    !parse_hex_oid(c->line, hashsz, old) || !parse_hex_oid(c->line + hex + 1, hashsz, new_))
			return malformed(g, "command %zu is not \"<old-id> <new-id> <ref>\"", i + 1);
		if (is_zero_oid(new_, hashsz)) {
			c->kind = CMD_DELETE;
		} else if (is_zero_oid(old, hashsz)) {
			c->kind = CMD_CREATE; /* receive-pack refuses it if the ref exists */
		} else if (memcmp(old, new_, hashsz) == 0) {
			c->kind = CMD_NOOP;
		} else {
			struct proof *pr;

			if (g->nproofs == GIT_MAX_PROOFS)
				return too_large(g, "more than %d existing refs updated in one push", GIT_MAX_PROOFS);
			c->kind = CMD_UPDATE;
			c->proof = (uint8_t)g->nproofs;
			pr = &g->proofs[g->nproofs++];
			memset(pr, 0, sizeof(*pr));
			memcpy(pr->old, old, hashsz);
			memcpy(pr->new_, new_, hashsz);
		}
	}
	return STEP_OK;
}

static void ref_of(const struct git *g, const struct cmd *c, char *buf, size_t cap)
{
	size_t at = 4 * g->hashsz + 2;

	show(buf, cap, c->line + at, c->line_len - at);
}

/* "git-push:KIND REF" for command at, plus " (+N more)" when N later commands are not known to be
 * fine: an exemption made from this action must not also cover a push that does more. *also gets
 * the same for the reason. */
static void push_action(const struct git *g, size_t at, const char *kind, char act[128], char also[64])
{
	char more[32] = "", ref[128];
	size_t extra = 0;

	for (size_t j = at + 1; j < g->ncmds; j++) {
		const struct cmd *c = &g->cmds[j];

		if (c->kind == CMD_DELETE || (c->kind == CMD_UPDATE && !(g->proven >> c->proof & 1)))
			extra++;
	}
	also[0] = '\0';
	if (extra) {
		snprintf(more, sizeof(more), " (+%zu more)", extra);
		snprintf(also, 64, "; %zu more ref update%s held with it", extra, extra == 1 ? " is" : "s are");
	}
	ref_of(g, &g->cmds[at], ref, 128 - strlen("git-push: ") - strlen(kind) - strlen(more));
	snprintf(act, 128, "git-push:%s %s%s", kind, ref, more);
}

/* The verdict so far, over the commands in push order: the first delete or unproven update
 * decides. Not final: an unproven update before any offence leaves it open (MORE). */
static verdict_t decide(struct git *g, bool final, enum cause cause)
{
	for (; g->first_open < g->ncmds; g->first_open++) {
		const struct cmd *c = &g->cmds[g->first_open];
		char ref[80], act[128], also[64], o[13], n[13];
		const struct proof *pr;

		if (c->kind == CMD_CREATE || c->kind == CMD_NOOP)
			continue;
		if (c->kind == CMD_UPDATE && (g->proven >> c->proof & 1))
			continue;
		if (c->kind == CMD_UPDATE && !final)
			return MORE;
		ref_of(g, c, ref, sizeof(ref));
		if (c->kind == CMD_DELETE) {
			push_action(g, g->first_open, "delete", act, also);
			return git_hold(g, act, "git push deletes %s%s", ref, also);
		}
		push_action(g, g->first_open, "force", act, also);
		pr = &g->proofs[c->proof];
		oid_hex_short(pr->old, o);
		oid_hex_short(pr->new_, n);
		if (cause == CAUSE_CAP)
			return git_hold(g, act,
					"git push to %s is not a fast-forward the proxy can prove in the first %u KiB of "
					"the push (force push?)%s",
					ref, SBX_CLASSIFY_BODY_MAX / 1024, also);
		if (!pr->new_seen)
			return git_hold(g, act,
					"git push to %s is not a fast-forward the proxy can prove: new commit %s is not "
					"in the pushed pack (force push?)%s",
					ref, n, also);
		return git_hold(g, act,
				"git push to %s is not a fast-forward the proxy can prove: %s is not an ancestor of %s "
				"among the pushed commits (force push?)%s",
				ref, o, n, also);
	}
	return PASS;
}

/* ---- zlib ---- */

/* Inflates the zlib stream at *pos into out[0..size) exactly (out NULL: counted and dropped).
 * OK moves *pos past the stream; NEED: the stream goes on past the bytes we have. */
static int inflate_exact(struct git *g, size_t *pos, uint8_t *out, uint64_t size, size_t obj)
{
	uint64_t produced = 0;

	if (!g->zs_ready) {
		memset(&g->zs, 0, sizeof(g->zs));
		if (inflateInit(&g->zs) != Z_OK)
			return unchecked(g, "zlib could not be initialised");
		g->zs_ready = true;
	} else if (inflateReset(&g->zs) != Z_OK) {
		return unchecked(g, "zlib could not be reset");
	}
	g->zs.next_in = (Bytef *)(uintptr_t)(g->p + *pos);
	g->zs.avail_in = (uInt)(g->len - *pos);
	for (;;) {
		uint8_t *dst = g->sink;
		size_t room = sizeof(g->sink), got;
		int rc;

		if (out && produced < size) {
			dst = out + produced;
			room = (size_t)(size - produced);
		}
		g->zs.next_out = dst;
		g->zs.avail_out = (uInt)room;
		rc = inflate(&g->zs, Z_NO_FLUSH);
		got = room - g->zs.avail_out;
		produced += got;
		g->work += got;
		if (produced > size)
			return malformed(g, "object %zu inflates to more than its declared %llu bytes", obj,
					 (unsigned long long)size);
		if (g->work > GIT_WORK_MAX)
			return too_large(g, "the pack expands to more than %u MiB before the push could be checked",
					 GIT_WORK_MAX >> 20);
		if (rc == Z_STREAM_END) {
			if (produced != size)
				return malformed(g, "object %zu inflates to %llu bytes, not its declared %llu", obj,
						 (unsigned long long)produced, (unsigned long long)size);
			*pos = (size_t)(g->zs.next_in - g->p);
			return STEP_OK;
		}
		if (rc == Z_OK && (g->zs.avail_in > 0 || got > 0))
			continue;
		if ((rc == Z_OK || rc == Z_BUF_ERROR) && g->zs.avail_in == 0)
			return STEP_NEED;
		if (rc == Z_MEM_ERROR)
			return unchecked(g, "out of memory in zlib");
		return malformed(g, "object %zu is not a valid zlib stream", obj);
	}
}

/* ---- deltas (git's format: source size, target size, then copy / insert instructions) ---- */

static bool delta_varint(const uint8_t *d, size_t n, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t c;

	do {
		if (*pos >= n || shift > 56)
			return false;
		c = d[(*pos)++];
		v |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	*out = v;
	return true;
}

/* Applies delta d[pos..n) to base, writing exactly out_len bytes into out. NULL, or what is wrong. */
static const char *delta_apply(const uint8_t *base, size_t blen, const uint8_t *d, size_t n, size_t pos, uint8_t *out,
			       size_t out_len)
{
	size_t w = 0;

	while (pos < n) {
		uint8_t cmd = d[pos++];

		if (cmd & 0x80) {
			size_t off = 0, sz = 0;

			for (unsigned b = 0; b < 4; b++) {
				if (cmd & (1u << b)) {
					if (pos >= n)
						return "a copy instruction is cut short";
					off |= (size_t)d[pos++] << (8 * b);
				}
			}
			for (unsigned b = 0; b < 3; b++) {
				if (cmd & (0x10u << b)) {
					if (pos >= n)
						return "a copy instruction is cut short";
					sz |= (size_t)d[pos++] << (8 * b);
				}
			}
			if (sz == 0)
				sz = 0x10000;
			if (off > blen || sz > blen - off)
				return "a copy reaches past the end of its base";
			if (sz > out_len - w)
				return "a copy writes past the declared result size";
			memcpy(out + w, base + off, sz);
			w += sz;
		} else if (cmd) {
			if (cmd > n - pos)
				return "an insert instruction is cut short";
			if (cmd > out_len - w)
				return "an insert writes past the declared result size";
			memcpy(out + w, d + pos, cmd);
			pos += cmd;
			w += cmd;
		} else {
			return "it has the reserved instruction 0";
		}
	}
	return w == out_len ? NULL : "its result is shorter than declared";
}

/* ---- commits and the ancestry walk ---- */

static int32_t index_find(const struct git *g, const uint8_t *oid)
{
	for (int32_t i = g->index[oid_hash(oid) & g->index_mask]; i >= 0; i = g->commits[i].next)
		if (memcmp(g->commits[i].oid, oid, g->hashsz) == 0)
			return i;
	return -1;
}

/* Passes bits to commit k; what is new for it goes on to its parents by the worklist. */
static void give(struct git *g, int32_t k, uint64_t bits, size_t *top)
{
	struct commit *c = &g->commits[k];
	uint64_t add = bits & ~c->visited;

	if (!add)
		return;
	c->visited |= add;
	if (!c->pending)
		g->stack[(*top)++] = k;
	c->pending |= add;
}

/* Each commit gains each bit once, and passes it on once: O(bits x (commits + links)) overall. */
static void propagate(struct git *g, size_t top)
{
	while (top) {
		int32_t k = g->stack[--top];
		struct commit *c = &g->commits[k];
		uint64_t nb = c->pending;

		c->pending = 0;
		for (uint32_t s = c->first_slot; s < c->first_slot + c->nslots; s++) {
			const struct slot *sl = &g->slots[s];

			g->proven |= nb & sl->olds;
			if (sl->resolved >= 0)
				give(g, sl->resolved, nb, &top);
		}
	}
}

/* Parent lines the way git's parse_commit_buffer reads them: "tree <hex>\n" first, then
 * consecutive "parent <hex>\n" lines, each followed by more content. A commit git would call
 * bogus gets no parents: a proof never goes through it. */
static int commit_parents(struct git *g, int32_t ci, const uint8_t *c, size_t n)
{
	size_t hex = 2 * g->hashsz, p, first = g->nslots;

	if (n <= hex + 6 || memcmp(c, "tree ", 5) != 0 || !all_hex(c + 5, hex) || c[5 + hex] != '\n')
		return STEP_OK;
	p = hex + 6;
	while (p + hex + 7 < n && memcmp(c + p, "parent ", 7) == 0) {
		struct slot *sl;

		if (n <= p + hex + 8 || c[p + 7 + hex] != '\n' || !all_hex(c + p + 7, hex)) {
			g->nslots = first; /* "bad parents": none at all */
			return STEP_OK;
		}
		if (g->nslots == GIT_MAX_PARENTS)
			return too_large(g, "the pushed commits have more than %d parent links", GIT_MAX_PARENTS);
		if (grow((void **)&g->slots, &g->slots_cap, g->nslots + 1, sizeof(*g->slots), GIT_MAX_PARENTS) < 0)
			return unchecked(g, "out of memory");
		sl = &g->slots[g->nslots++];
		memset(sl, 0, sizeof(*sl));
		parse_hex_oid(c + p + 7, g->hashsz, sl->oid);
		sl->child = ci;
		p += hex + 8;
	}
	g->commits[ci].first_slot = (uint32_t)first;
	g->commits[ci].nslots = (uint32_t)(g->nslots - first);
	return STEP_OK;
}

/* A commit of the pack, content c[0..n): its id, its parents, and what it does to the walk.
 * *ci gets its index (an earlier one for a duplicate). */
static int add_commit(struct git *g, const uint8_t *c, size_t n, int32_t *ci)
{
	char head[32];
	int hl = snprintf(head, sizeof(head), "commit %zu", n);
	uint8_t oid[EVP_MAX_MD_SIZE];
	unsigned int olen = 0;
	struct commit *cm;
	int32_t i, chain = 0;
	uint32_t h;
	uint64_t bits = 0;
	size_t top = 0;

	if (!EVP_DigestInit_ex(g->mdctx, g->md, NULL) || !EVP_DigestUpdate(g->mdctx, head, (size_t)hl + 1) ||
	    !EVP_DigestUpdate(g->mdctx, c, n) || !EVP_DigestFinal_ex(g->mdctx, oid, &olen) || olen != g->hashsz)
		return unchecked(g, "libcrypto could not hash a commit");
	if ((*ci = index_find(g, oid)) >= 0)
		return STEP_OK; /* the same commit twice: the first one counts */
	if (g->ncommits == g->commits_cap &&
	    grow((void **)&g->commits, &g->commits_cap, g->ncommits + 1, sizeof(*g->commits), GIT_MAX_OBJECTS) < 0)
		return unchecked(g, "out of memory");
	i = (int32_t)g->ncommits;
	h = oid_hash(oid) & (uint32_t)g->index_mask;
	for (int32_t k = g->index[h]; k >= 0; k = g->commits[k].next)
		if (++chain >= GIT_CHAIN_MAX)
			return too_large(g, "too many commit ids fall in one hash bucket (crafted ids?)");
	cm = &g->commits[g->ncommits++];
	memset(cm, 0, sizeof(*cm));
	memcpy(cm->oid, oid, g->hashsz);
	cm->data_len = NOT_KEPT;
	cm->next = g->index[h];
	g->index[h] = i;
	*ci = i;

	/* Kept as a possible delta base while the arena has room. */
	if (n <= GIT_ARENA_MAX - g->arena_len) {
		if (grow((void **)&g->arena, &g->arena_cap, g->arena_len + n + 1, 1, GIT_ARENA_MAX + 1) < 0)
			return unchecked(g, "out of memory");
		memcpy(g->arena + g->arena_len, c, n);
		cm->data_off = (uint32_t)g->arena_len;
		cm->data_len = (uint32_t)n;
		g->arena_len += n;
	}

	if (commit_parents(g, i, c, n) != STEP_OK)
		return STEP_STOP;
	cm = &g->commits[i];

	/* Is it the new side of an update? */
	for (size_t u = 0; u < g->nproofs; u++) {
		if (memcmp(g->proofs[u].new_, oid, g->hashsz) == 0) {
			g->proofs[u].new_seen = true;
			bits |= 1ULL << u;
		}
	}
	/* Children that arrived before it: their links now resolve to it. */
	{
		int32_t *link = &g->waiting[oid_hash(oid) & g->waiting_mask];

		for (; *link >= 0; link = &g->slots[*link].next_oid) {
			if (memcmp(g->slots[*link].oid, oid, g->hashsz) != 0)
				continue;
			for (int32_t s = *link; s >= 0; s = g->slots[s].next_same) {
				g->slots[s].resolved = i;
				bits |= g->commits[g->slots[s].child].visited;
			}
			*link = g->slots[*link].next_oid; /* done waiting */
			break;
		}
	}
	/* Its own parents: the olds they are, and those already here or still to come. */
	for (uint32_t s = cm->first_slot; s < cm->first_slot + cm->nslots; s++) {
		struct slot *sl = &g->slots[s];
		int32_t *link;

		for (size_t u = 0; u < g->nproofs; u++)
			if (memcmp(g->proofs[u].old, sl->oid, g->hashsz) == 0)
				sl->olds |= 1ULL << u;
		sl->resolved = index_find(g, sl->oid);
		sl->next_oid = sl->next_same = -1;
		if (sl->resolved >= 0)
			continue;
		chain = 0;
		link = &g->waiting[oid_hash(sl->oid) & g->waiting_mask];
		for (; *link >= 0; link = &g->slots[*link].next_oid) {
			if (memcmp(g->slots[*link].oid, sl->oid, g->hashsz) == 0)
				break;
			if (++chain >= GIT_CHAIN_MAX)
				return too_large(g, "too many parent ids fall in one hash bucket (crafted ids?)");
		}
		if (*link >= 0) {
			sl->next_same = g->slots[*link].next_same;
			g->slots[*link].next_same = (int32_t)s;
		} else {
			*link = (int32_t)s;
		}
	}
	give(g, i, bits, &top);
	propagate(g, top);
	return STEP_OK;
}

/* ---- the pack ---- */

static int32_t obj_at(const struct git *g, uint64_t off)
{
	size_t lo = 0, hi = g->nobjs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (g->objs[mid].off == off)
			return (int32_t)mid;
		if (g->objs[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int ensure_buf(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *p;

	if (need <= *cap)
		return 0;
	p = realloc(*buf, need);
	if (!p)
		return -1;
	*buf = p;
	*cap = need;
	return 0;
}

/* A commit rebuilt from a delta against an earlier commit of the pack. */
static int commit_from_delta(struct git *g, size_t *pos, uint64_t size, const struct commit *base, size_t idx,
			     int32_t *ci)
{
	uint64_t src, dst;
	size_t dpos = 0;
	const char *why;
	int k;

	if (size > GIT_DELTA_MAX)
		return too_large(g, "a commit delta in the pack is larger than %u MiB", GIT_DELTA_MAX >> 20);
	if (ensure_buf(&g->dbuf, &g->dbuf_cap, (size_t)size + 1) < 0)
		return unchecked(g, "out of memory");
	if ((k = inflate_exact(g, pos, g->dbuf, size, idx)) != STEP_OK)
		return k;
	if (!delta_varint(g->dbuf, (size_t)size, &dpos, &src) || !delta_varint(g->dbuf, (size_t)size, &dpos, &dst))
		return malformed(g, "object %zu: the delta header is cut short", idx);
	if (src != base->data_len)
		return malformed(g, "object %zu: the delta is for a base of %llu bytes, its base has %u", idx,
				 (unsigned long long)src, base->data_len);
	if (dst > GIT_COMMIT_MAX)
		return too_large(g, "a commit in the pack is larger than %u MiB", GIT_COMMIT_MAX >> 20);
	g->work += dst;
	if (g->work > GIT_WORK_MAX)
		return too_large(g, "the pack expands to more than %u MiB before the push could be checked",
				 GIT_WORK_MAX >> 20);
	if (ensure_buf(&g->cbuf, &g->cbuf_cap, (size_t)dst + 1) < 0)
		return unchecked(g, "out of memory");
	why = delta_apply(g->arena + base->data_off, base->data_len, g->dbuf, (size_t)size, dpos, g->cbuf, (size_t)dst);
	if (why)
		return malformed(g, "object %zu: bad delta: %s", idx, why);
	return add_commit(g, g->cbuf, (size_t)dst, ci);
}

/* One object at *pos (object number idx). On OK, *pos is past it and objs[idx] is recorded. */
static int pack_object(struct git *g, size_t *pos, size_t idx)
{
	size_t at = *pos;
	uint8_t c, type;
	uint64_t size;
	unsigned shift = 4;
	struct obj o = {(uint32_t)(at - g->pack_at), OBJ_UNKNOWN, -1}, refbase;
	const struct obj *base = NULL;
	int k;

	if (at >= g->len)
		return STEP_NEED;
	c = g->p[at++];
	type = (uint8_t)((c >> 4) & 7);
	size = c & 15;
	while (c & 0x80) {
		if (at >= g->len)
			return STEP_NEED;
		if (shift > 42)
			return malformed(g, "object %zu has an oversized size field", idx);
		c = g->p[at++];
		size |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
	}
	if (type == 0 || type == 5)
		return malformed(g, "object %zu has the invalid type %u", idx, type);
	if (type == OBJ_OFS_DELTA) {
		uint64_t off;
		int32_t b;

		if (at >= g->len)
			return STEP_NEED;
		c = g->p[at++];
		off = c & 0x7f;
		while (c & 0x80) {
			if (at >= g->len)
				return STEP_NEED;
			if (off > (UINT64_MAX >> 8))
				return malformed(g, "object %zu has an oversized delta base offset", idx);
			c = g->p[at++];
			off = ((off + 1) << 7) | (c & 0x7f);
		}
		if (off == 0 || off > o.off || (b = obj_at(g, o.off - off)) < 0)
			return malformed(g, "object %zu: its delta base is not an earlier object of the pack", idx);
		base = &g->objs[b];
	} else if (type == OBJ_REF_DELTA) {
		int32_t ci;

		if (g->len - at < g->hashsz)
			return STEP_NEED;
		ci = index_find(g, g->p + at);
		at += g->hashsz;
		/* Only commits of the pack are known by id; any other base gives an object of unknown type. */
		refbase = (struct obj){0, ci >= 0 ? OBJ_COMMIT : OBJ_UNKNOWN, ci};
		base = &refbase;
	}

	if (type == OBJ_COMMIT) {
		if (size > GIT_COMMIT_MAX)
			return too_large(g, "a commit in the pack is larger than %u MiB", GIT_COMMIT_MAX >> 20);
		if (ensure_buf(&g->cbuf, &g->cbuf_cap, (size_t)size + 1) < 0)
			return unchecked(g, "out of memory");
		if ((k = inflate_exact(g, &at, g->cbuf, size, idx)) != STEP_OK)
			return k;
		if ((k = add_commit(g, g->cbuf, (size_t)size, &o.commit)) != STEP_OK)
			return k;
		o.type = OBJ_COMMIT;
	} else if (base && base->type == OBJ_COMMIT && g->commits[base->commit].data_len != NOT_KEPT) {
		struct commit bc = g->commits[base->commit]; /* a copy: add_commit may move the table */

		if ((k = commit_from_delta(g, &at, size, &bc, idx, &o.commit)) != STEP_OK)
			return k;
		o.type = OBJ_COMMIT;
	} else {
		if ((k = inflate_exact(g, &at, NULL, size, idx)) != STEP_OK)
			return k;
		o.type = base ? (base->type == OBJ_COMMIT ? OBJ_UNKNOWN : base->type) : type;
	}
	if (grow((void **)&g->objs, &g->objs_cap, g->nobjs + 1, sizeof(*g->objs), GIT_MAX_OBJECTS) < 0)
		return unchecked(g, "out of memory");
	g->objs[g->nobjs++] = o;
	*pos = at;
	return STEP_OK;
}

static size_t pow2_at_least(size_t n)
{
	size_t p = 16;

	while (p < n)
		p *= 2;
	return p;
}

static verdict_t pack_need(struct git *g, const char *what);

/* The pack's objects in order, deciding after each commit that proved something. */
static verdict_t read_pack(struct git *g, size_t pos)
{
	uint32_t version, count;
	size_t tables, wtables;
	uint64_t proven_seen = g->proven;

	if (g->len - pos < 12)
		return pack_need(g, "the pack header");
	if (memcmp(g->p + pos, "PACK", 4) != 0) {
		malformed(g, "no pack after the commands (the PACK signature is missing)");
		return HOLD;
	}
	version = (uint32_t)g->p[pos + 4] << 24 | (uint32_t)g->p[pos + 5] << 16 | (uint32_t)g->p[pos + 6] << 8 |
		  g->p[pos + 7];
	count = (uint32_t)g->p[pos + 8] << 24 | (uint32_t)g->p[pos + 9] << 16 | (uint32_t)g->p[pos + 10] << 8 |
		g->p[pos + 11];
	if (version != 2 && version != 3) {
		malformed(g, "pack version %u (only 2 and 3 exist)", version);
		return HOLD;
	}
	g->pack_at = pos;
	pos += 12;

	/* Table sizes follow the declared count only, never the bytes at hand: a chain that is too
	 * long must be too long for every prefix. */
	tables = pow2_at_least(2 * (size_t)(count < GIT_MAX_OBJECTS ? count : GIT_MAX_OBJECTS));
	wtables = tables < 1024 ? 1024 : tables;
	g->index = malloc(tables * sizeof(*g->index));
	g->waiting = malloc(wtables * sizeof(*g->waiting));
	g->stack = malloc(GIT_MAX_OBJECTS * sizeof(*g->stack));
	g->mdctx = EVP_MD_CTX_new();
	if (!g->index || !g->waiting || !g->stack || !g->mdctx) {
		unchecked(g, "out of memory");
		return HOLD;
	}
	memset(g->index, 0xff, tables * sizeof(*g->index));
	memset(g->waiting, 0xff, wtables * sizeof(*g->waiting));
	g->index_mask = tables - 1;
	g->waiting_mask = wtables - 1;

	for (size_t i = 0; i < count; i++) {
		char what[48];
		int k;

		if (i == GIT_MAX_OBJECTS) {
			too_large(g, "the pack has more than %d objects before the push could be checked",
				  GIT_MAX_OBJECTS);
			return HOLD;
		}
		k = pack_object(g, &pos, i);
		if (k == STEP_STOP)
			return HOLD;
		if (k == STEP_NEED) {
			snprintf(what, sizeof(what), "object %zu of %u", i, count);
			return pack_need(g, what);
		}
		if (g->proven != proven_seen) {
			verdict_t v = decide(g, false, CAUSE_END);

			proven_seen = g->proven;
			if (v != MORE)
				return v;
		}
	}
	return decide(g, true, CAUSE_END);
}

/* The bytes ran out in the pack, inside what: held if the body is all there is. */
static verdict_t pack_need(struct git *g, const char *what)
{
	if (g->r->complete) {
		malformed(g, "the body ends inside %s", what);
		return HOLD;
	}
	if (g->r->at_cap)
		return decide(g, true, CAUSE_CAP);
	return MORE;
}

/* The bytes ran out before the pack, inside what. */
static verdict_t head_need(struct git *g, const char *what)
{
	if (g->r->complete) {
		malformed(g, "the body ends inside %s", what);
		return HOLD;
	}
	if (g->r->at_cap) {
		too_large(g, "%s do not fit in %u KiB", what, SBX_CLASSIFY_BODY_MAX / 1024);
		return HOLD;
	}
	return MORE;
}

static verdict_t git_run(struct git *g)
{
	size_t pos = 0;
	int k = read_commands(g, &pos);
	verdict_t v;

	if (k == STEP_STOP)
		return HOLD;
	if (k == STEP_NEED)
		return head_need(g, "the push's commands");
	if (g->ncmds == 0)
		return PASS; /* nothing to update (git sends this as a probe before a large push) */
	if (parse_commands(g) != STEP_OK)
		return HOLD;
	if ((v = decide(g, false, CAUSE_END)) != MORE)
		return v;
	while (g->push_options) {
		const uint8_t *d;
		size_t n;

		k = pkt_read(g, &pos, &d, &n);
		if (k == PKT_FLUSH)
			break;
		if (k == PKT_BAD)
			return HOLD;
		if (k == PKT_NEED)
			return head_need(g, "the push options");
	}
	return read_pack(g, pos);
}

/* Could this request be a push? POST to ".../git-receive-pack" (decoded, without case) or with
 * git's request content type. */
static bool is_push(const struct req *r)
{
	static const char want[] = "/git-receive-pack";
	enum { W = sizeof(want) - 1 };
	char tail[W];
	size_t n = 0;

	if (!method_is(r, "POST"))
		return false;
	for (size_t i = 0; r->msg && i < r->msg->nheaders; i++)
		if (str_ieq(r->msg->headers[i].name, "Content-Type") &&
		    media_type_is(r->msg->headers[i].value, "application/x-git-receive-pack-request"))
			return true;
	for (size_t i = 0; i < r->path.len; i++) {
		unsigned char c = (unsigned char)r->path.p[i];

		if (c == '%' && r->path.len - i >= 3 && hex_val((unsigned char)r->path.p[i + 1]) >= 0 &&
		    hex_val((unsigned char)r->path.p[i + 2]) >= 0) {
			c = (unsigned char)(hex_val((unsigned char)r->path.p[i + 1]) * 16 +
					    hex_val((unsigned char)r->path.p[i + 2]));
			i += 2;
		}
		if (n == W) {
			memmove(tail, tail + 1, W - 1);
			n--;
		}
		tail[n++] = (char)c;
	}
	return n == W && mem_ieq(tail, want, W);
}

static verdict_t cls_git(const struct req *r, struct sbx_classify_result *out)
{
	struct git *g;
	verdict_t v;

	if (!is_push(r))
		return PASS;
	if (body_encoded(r))
		return hold(out, SBX_CLS_GIT_PUSH, "git-push:encoded",
			    "git push with a Content-Encoding: the proxy cannot read its ref updates");
	g = calloc(1, sizeof(*g));
	if (!g)
		return hold(out, SBX_CLS_GIT_PUSH, "git-push:unchecked", "git push not checked: out of memory");
	g->r = r;
	g->out = out;
	g->p = r->body;
	g->len = r->len;
	v = git_run(g);
	if (g->zs_ready)
		inflateEnd(&g->zs);
	EVP_MD_CTX_free(g->mdctx);
	free(g->cmds);
	free(g->objs);
	free(g->commits);
	free(g->slots);
	free(g->index);
	free(g->waiting);
	free(g->stack);
	free(g->arena);
	free(g->cbuf);
	free(g->dbuf);
	free(g);
	return v;
}

/* ---- entry points ---- */

void sbx_classify(const struct sbx_classify_input *in, unsigned enabled, struct sbx_classify_result *out)
{
	static const struct {
		enum sbx_classifier which;
		verdict_t (*run)(const struct req *, struct sbx_classify_result *);
	} order[] = {
		{SBX_CLS_AWS, cls_aws},
		{SBX_CLS_GIT_PUSH, cls_git},
		{SBX_CLS_HTTP_DELETE, cls_delete},
	};
	struct req r;
	bool more = false;

	memset(out, 0, sizeof(*out));
	req_init(&r, in);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		struct sbx_classify_result one;
		verdict_t v;

		if (!(enabled & (1u << order[i].which)))
			continue;
		memset(&one, 0, sizeof(one));
		v = order[i].run(&r, &one);
		if (v == HOLD) {
			*out = one;
			return;
		}
		if (v == MORE)
			more = true;
	}
	out->verdict = more ? MORE : PASS;
}

bool sbx_classify_wants_body(const struct sbx_classify_input *in, unsigned enabled)
{
	struct req r;

	req_init(&r, in);
	/* Only the head counts here, not what the caller has of the body so far. */
	if (r.msg && (r.msg->body == SBX_HTTP_BODY_NONE ||
		      (r.msg->body == SBX_HTTP_BODY_LENGTH && r.msg->content_length == 0)))
		return false;
	if ((enabled & (1u << SBX_CLS_GIT_PUSH)) && is_push(&r))
		return true;
	if ((enabled & (1u << SBX_CLS_AWS)) && is_aws_host(r.host) && method_is(&r, "POST")) {
		size_t n = hdr_count(&r, "Content-Type");

		return n != 1 || media_type_is(*hdr(&r, "Content-Type"), "application/x-www-form-urlencoded");
	}
	return false;
}

bool sbx_classify_host_relevant(const char *host, unsigned enabled)
{
	/* git pushes and DELETE can go to any host; the AWS classifier looks at AWS's only */
	if (enabled & ((1u << SBX_CLS_HTTP_DELETE) | (1u << SBX_CLS_GIT_PUSH)))
		return true;
	return (enabled & (1u << SBX_CLS_AWS)) && host && is_aws_host(host);
}

bool sbx_classify_action_exact(const char *action)
{
	static const char *const generic[] = {"git-push:malformed", "git-push:signed", "git-push:encoded",
					      "git-push:too-large", NULL};
	size_t n = action ? strlen(action) : 0;

	if (n == 0 || strncmp(action, "aws:", 4) == 0 || strncmp(action, "unclassified", 12) == 0 ||
	    (n >= 3 && strcmp(action + n - 3, "...") == 0))
		return false;
	for (size_t i = 0; generic[i]; i++)
		if (strcmp(action, generic[i]) == 0)
			return false;
	return true;
}
