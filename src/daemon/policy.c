/* policy.c - the egress policy: resources and rules parsed and validated, the presets, and the
 * compiled rule set that decides every connection, request and DNS question.
 *
 * Storage (SQLite) lives in policy_store.c so that this file links on its own (the fuzz target
 * links it with util.c and err.c only).
 *
 * The decision is on the proxy's hot path (every connection and every DNS query), so a compiled
 * policy indexes its rules: exact host names and wildcard suffixes in one open-addressing hash
 * table, `**` and address rules in short lists. A decision looks up the host and each of its
 * parent domains (a handful of lookups), then scans the `**` and address lists. It never
 * allocates and never fails: anything it cannot make sense of is denied. */
#include "policy.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "cleanup.h"
#include "util.h"

#define RES_FORMS "use example.com, *.example.com, **.example.com, host:port, an IP address or CIDR, or **"
#define SPECIAL_HOST "host.sbx.internal"
#define HOST_MAX 253
#define REVIEW_TIMEOUT_MAX_MS (24ULL * 3600 * 1000)

/* ---- small helpers ---- */

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The user's text for an error message: bounded, anything unprintable shown as '?'. */
static void quote_input(const char *s, char *out, size_t n)
{
	size_t i = 0, j = 0;

	for (; s[i] && j + 4 < n; i++, j++) {
		unsigned char c = (unsigned char)s[i];
		out[j] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (s[i]) {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
}

static int res_fail(sbx_err *err, const char *input, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int res_fail(sbx_err *err, const char *input, const char *fmt, ...)
{
	char q[104], problem[400];
	va_list ap;

	quote_input(input, q, sizeof(q));
	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	return sbx_err_set(err, SBX_E_INVALID, "\"%s\": %s; " RES_FORMS, q, problem);
}

/* "443" -> 443. Decimal digits only, 1..65535. */
static int parse_port(const char *p, uint16_t *port)
{
	size_t n = strlen(p);
	unsigned v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return -1;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* Lowercases h in place and drops one trailing dot, then checks it is a DNS name: labels of 1..63
 * characters [a-z0-9_-], at most 253 in all. strict (rules, not targets) also refuses a label
 * starting or ending with '-' and an all-digit last label (that is a mistyped IP address).
 * Returns 0, or -1 with what is wrong in why. */
static int host_normalise(char *h, bool strict, char *why, size_t whyn)
{
	size_t len = strlen(h), label = 0, start = 0;
	bool numeric = true;

	if (len && h[len - 1] == '.')
		h[--len] = '\0';
	if (len == 0) {
		snprintf(why, whyn, "the host name is missing");
		return -1;
	}
	if (len > HOST_MAX) {
		snprintf(why, whyn, "not a host name (longer than %d characters)", HOST_MAX);
		return -1;
	}
	for (size_t i = 0; i <= len; i++) {
		char c = h[i];
		if (c == '.' || c == '\0') {
			if (label == 0) {
				snprintf(why, whyn, "not a host name (an empty label)");
				return -1;
			}
			if (label > 63) {
				snprintf(why, whyn, "not a host name (a label is longer than 63 characters)");
				return -1;
			}
			if (strict && (h[start] == '-' || h[i - 1] == '-')) {
				snprintf(why, whyn, "not a host name (a label cannot start or end with '-')");
				return -1;
			}
			if (c == '\0' && strict && numeric) {
				snprintf(why, whyn, "not a host name, nor a valid IPv4 address (four numbers 0-255)");
				return -1;
			}
			label = 0;
			start = i + 1;
			numeric = true;
			continue;
		}
		c = ascii_lower(c);
		h[i] = c;
		if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '_')) {
			unsigned char u = (unsigned char)c;
			if (u >= 0x20 && u < 0x7f)
				snprintf(why, whyn, "not a host name ('%c' is not allowed)", c);
			else
				snprintf(why, whyn, "not a host name (byte 0x%02x is not allowed)", u);
			return -1;
		}
		if (!is_digit(c))
			numeric = false;
		label++;
	}
	return 0;
}

/* "0x7f.1", "2130706433", "127.1": forms that the C library (inet_aton, getaddrinfo) reads as
 * an IPv4 address though they are not a dotted quad. As a name they would dodge address rules. */
static bool is_odd_ipv4(const char *h)
{
	struct in_addr a;
	uint8_t b[4];

	return inet_aton(h, &a) != 0 && inet_pton(AF_INET, h, b) != 1;
}

static int addr_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

/* Zeroes the bits of addr after the first prefix bits. */
static void addr_mask(uint8_t *addr, int bits, int prefix)
{
	for (int i = 0; i < bits / 8; i++) {
		int keep = prefix - i * 8;
		if (keep >= 8)
			continue;
		addr[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
	}
}

static bool is_v4_mapped(const uint8_t *a)
{
	static const uint8_t pre[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return memcmp(a, pre, sizeof(pre)) == 0;
}

/* "10.0.0.0/8", "2001:db8::1", "[fd00::/8]:443": the address part of the normalised text. */
static void addr_text(int family, const uint8_t *addr, int prefix, uint16_t port, char *out, size_t n)
{
	char a[INET6_ADDRSTRLEN] = "?", core[INET6_ADDRSTRLEN + 8];

	inet_ntop(family, addr, a, sizeof(a));
	if (prefix == addr_bits(family))
		snprintf(core, sizeof(core), "%s", a);
	else
		snprintf(core, sizeof(core), "%s/%d", a, prefix);
	if (!port)
		snprintf(out, n, "%s", core);
	else if (family == AF_INET)
		snprintf(out, n, "%s:%u", core, (unsigned)port);
	else
		snprintf(out, n, "[%s]:%u", core, (unsigned)port);
}

/* An address or CIDR (prefix -1 = none given). need_v6: it was written in brackets. */
static int parse_addr(const char *input, const char *a, int prefix, bool need_v6, uint16_t port,
		      struct sbx_resource *r, sbx_err *err)
{
	uint8_t buf[16] = {0}, net[16];
	int family, bits;

	if (!need_v6 && inet_pton(AF_INET, a, buf) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, a, buf) == 1)
		family = AF_INET6;
	else if (need_v6)
		return res_fail(err, input, "not a valid IPv6 address (brackets are for IPv6 addresses only)");
	else if (strchr(a, ':'))
		return res_fail(err, input, "not a valid IPv6 address (write one with a port as [2001:db8::1]:443)");
	else
		return res_fail(err, input, "a /prefix needs an IP address before it (10.0.0.0/8, fd00::/8)");
	bits = addr_bits(family);
	if (prefix > bits)
		return res_fail(err, input, "the prefix length must be 0 to %d for an IPv%d network", bits,
				family == AF_INET ? 4 : 6);
	if (prefix < 0)
		prefix = bits;
	memcpy(net, buf, sizeof(net));
	addr_mask(net, bits, prefix);
	if (memcmp(net, buf, (size_t)bits / 8) != 0) {
		char t[80];
		addr_text(family, net, prefix, 0, t, sizeof(t));
		return res_fail(err, input, "the address has bits set after its /%d prefix (the network is %s)", prefix,
				t);
	}
	/* ::ffff:a.b.c.d is the IPv4 host a.b.c.d: one rule form for one destination. */
	if (family == AF_INET6 && prefix >= 96 && is_v4_mapped(buf)) {
		memmove(buf, buf + 12, 4);
		memset(buf + 4, 0, 12);
		family = AF_INET;
		prefix -= 96;
	}
	memset(r, 0, sizeof(*r));
	r->type = SBX_RES_ADDR;
	r->family = family;
	memcpy(r->addr, buf, sizeof(r->addr));
	r->prefix = prefix;
	r->port = port;
	addr_text(family, r->addr, prefix, port, r->text, sizeof(r->text));
	return 0;
}

/* "/24" -> 24: one to three digits. */
static int parse_prefix(const char *p, const char **end)
{
	int v = 0, n = 0;

	while (is_digit(p[n]) && n < 3)
		v = v * 10 + (p[n++] - '0');
	if (n == 0 || is_digit(p[n]))
		return -1;
	*end = p + n;
	return v;
}

int sbx_resource_parse(const char *s, struct sbx_resource *r, sbx_err *err)
{
	char buf[sizeof(r->text)], why[160];
	char *host, *colon;
	uint16_t port = 0;
	enum sbx_res_type type = SBX_RES_EXACT;
	size_t len;

	if (!s || !*s)
		return res_fail(err, "", "the resource is empty");
	len = strnlen(s, sizeof(buf));
	if (len >= sizeof(buf))
		return res_fail(err, s, "too long (at most %zu characters)", sizeof(buf) - 1);
	memcpy(buf, s, len + 1);

	if (buf[0] == '[') {
		/* [2001:db8::1]:443, [fd00::/8]:443, or [addr] alone */
		char *close = strchr(buf, ']'), *slash;
		int prefix = -1;
		if (!close)
			return res_fail(err, s, "a '[' without its ']' (an IPv6 address with a port is [2001:db8::1]:443)");
		*close = '\0';
		if (close[1] == ':') {
			if (parse_port(close + 2, &port) < 0)
				return res_fail(err, s, "the port must be a number from 1 to 65535");
		} else if (close[1]) {
			return res_fail(err, s, "unexpected text after ']' (an IPv6 address with a port is [2001:db8::1]:443)");
		}
		if ((slash = strchr(buf + 1, '/'))) {
			const char *end;
			*slash = '\0';
			if ((prefix = parse_prefix(slash + 1, &end)) < 0 || *end)
				return res_fail(err, s, "the prefix length must be a number (fd00::/8)");
		}
		return parse_addr(s, buf + 1, prefix, true, port, r, err);
	}

	char *slash = strchr(buf, '/');
	if (slash) {
		/* a CIDR: 10.0.0.0/8, 10.0.0.0/8:443, fd00::/8 */
		const char *end;
		int prefix;
		*slash = '\0';
		if ((prefix = parse_prefix(slash + 1, &end)) < 0)
			return res_fail(err, s, "the prefix length after '/' must be a number (10.0.0.0/8)");
		if (*end == ':') {
			if (parse_port(end + 1, &port) < 0)
				return res_fail(err, s, "the port must be a number from 1 to 65535");
		} else if (*end) {
			return res_fail(err, s, "unexpected text after the prefix length");
		}
		return parse_addr(s, buf, prefix, false, port, r, err);
	}

	colon = strchr(buf, ':');
	if (colon && strchr(colon + 1, ':')) {
		/* two or more colons: a bare IPv6 address (a port needs brackets) */
		return parse_addr(s, buf, -1, false, 0, r, err);
	}
	if (colon) {
		*colon = '\0';
		if (parse_port(colon + 1, &port) < 0)
			return res_fail(err, s, "the port must be a number from 1 to 65535");
	}
	host = buf;
	if (!*host)
		return res_fail(err, s, "the host name is missing");
	if (strcmp(host, "**") == 0) {
		memset(r, 0, sizeof(*r));
		r->type = SBX_RES_ANY;
		r->port = port;
		if (port)
			snprintf(r->text, sizeof(r->text), "**:%u", (unsigned)port);
		else
			snprintf(r->text, sizeof(r->text), "**");
		return 0;
	}
	{
		uint8_t a4[4];
		if (inet_pton(AF_INET, host, a4) == 1)
			return parse_addr(s, host, -1, false, port, r, err);
	}
	if (strcmp(host, "*") == 0)
		return res_fail(err, s, "a lone '*' is not a resource (** is everything, *.example.com one label)");
	if (strncmp(host, "**.", 3) == 0) {
		type = SBX_RES_ANY_DEPTH;
		host += 3;
	} else if (strncmp(host, "*.", 2) == 0) {
		type = SBX_RES_ONE_LABEL;
		host += 2;
	}
	if (strchr(host, '*'))
		return res_fail(err, s, "a wildcard must be the whole first label (*.example.com or **.example.com)");
	if (host_normalise(host, true, why, sizeof(why)) < 0)
		return res_fail(err, s, "%s", why);
	if (is_odd_ipv4(host))
		return res_fail(err, s, "an IPv4 address in a non-standard form (write it as four numbers: 127.0.0.1)");

	memset(r, 0, sizeof(*r));
	r->type = type;
	r->port = port;
	sbx_strlcpy(r->host, host, sizeof(r->host));
	snprintf(r->text, sizeof(r->text), "%s%s", type == SBX_RES_ANY_DEPTH ? "**." : type == SBX_RES_ONE_LABEL ? "*." : "",
		 r->host);
	if (port) {
		size_t l = strlen(r->text);
		snprintf(r->text + l, sizeof(r->text) - l, ":%u", (unsigned)port);
	}
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int sbx_resources_parse_list(const char *s, struct sbx_resource *out, size_t max, size_t *n, sbx_err *err)
{
	const char *start = s ? s : "", *p = start;
	size_t count = 0;

	*n = 0;
	for (;;) {
		const char *comma = strchr(p, ','), *a = p, *b = comma ? comma : p + strlen(p);
		char item[sizeof(out->text)];
		struct sbx_resource tmp;
		bool dup = false;

		while (a < b && is_blank(*a))
			a++;
		while (b > a && is_blank(b[-1]))
			b--;
		if (a == b) {
			if (!comma && p == start)
				return sbx_err_set(err, SBX_E_INVALID, "no resource given; " RES_FORMS);
			return sbx_err_set(err, SBX_E_INVALID,
					   "an empty item in the resource list (two commas in a row, or a comma at an "
					   "end); separate resources with single commas, e.g. example.com,*.example.org");
		}
		if ((size_t)(b - a) >= sizeof(item)) {
			memcpy(item, a, sizeof(item) - 1);
			item[sizeof(item) - 1] = '\0';
			return res_fail(err, item, "too long (at most %zu characters)", sizeof(item) - 1);
		}
		memcpy(item, a, (size_t)(b - a));
		item[b - a] = '\0';
		if (sbx_resource_parse(item, &tmp, err) < 0)
			return -1;
		for (size_t i = 0; i < count && !dup; i++)
			dup = strcmp(out[i].text, tmp.text) == 0;
		if (!dup) {
			if (count >= max)
				return sbx_err_set(err, SBX_E_INVALID, "too many resources in one list (at most %zu)", max);
			out[count++] = tmp;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	*n = count;
	return 0;
}

/* ---- rules ---- */

const char *sbx_rule_kind_name(enum sbx_rule_kind k)
{
	switch (k) {
	case SBX_RULE_ALLOW: return "allow";
	case SBX_RULE_DENY: return "deny";
	case SBX_RULE_REVIEW: return "review";
	}
	return "unknown";
}

int sbx_rule_kind_parse(const char *s, enum sbx_rule_kind *k)
{
	static const enum sbx_rule_kind kinds[] = {SBX_RULE_ALLOW, SBX_RULE_DENY, SBX_RULE_REVIEW};

	for (size_t i = 0; s && i < SBX_ARRAY_LEN(kinds); i++) {
		if (strcmp(s, sbx_rule_kind_name(kinds[i])) == 0) {
			*k = kinds[i];
			return 0;
		}
	}
	return -1;
}

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool terminated(const char *field, size_t size)
{
	return memchr(field, '\0', size) != NULL;
}

int sbx_rule_validate(struct sbx_rule *r, sbx_err *err)
{
	struct sbx_resource res;
	char q[104];

	if (r->kind != SBX_RULE_ALLOW && r->kind != SBX_RULE_DENY && r->kind != SBX_RULE_REVIEW)
		return sbx_err_set(err, SBX_E_INVALID, "unknown rule kind %d: use allow, deny or review", (int)r->kind);
	if (!terminated(r->res.text, sizeof(r->res.text)))
		return sbx_err_set(err, SBX_E_INVALID, "the resource is too long (at most %zu characters)",
				   sizeof(r->res.text) - 1);
	if (sbx_resource_parse(r->res.text, &res, err) < 0)
		return -1;
	r->res = res;

	if (!terminated(r->method, sizeof(r->method)))
		return sbx_err_set(err, SBX_E_INVALID, "the method is longer than %zu characters", sizeof(r->method) - 1);
	for (char *m = r->method; *m; m++) {
		if (!is_tchar(*m)) {
			quote_input(r->method, q, sizeof(q));
			return sbx_err_set(err, SBX_E_INVALID,
					   "\"%s\": not an HTTP method; use a token such as GET, POST, PUT or DELETE", q);
		}
		*m = (*m >= 'a' && *m <= 'z') ? (char)(*m - 'a' + 'A') : *m;
	}

	if (!terminated(r->path, sizeof(r->path)))
		return sbx_err_set(err, SBX_E_INVALID, "the path glob is longer than %zu characters", sizeof(r->path) - 1);
	if (r->path[0]) {
		quote_input(r->path, q, sizeof(q));
		if (r->path[0] != '/')
			return sbx_err_set(err, SBX_E_INVALID,
					   "\"%s\": a path glob starts with '/', e.g. /v1/messages or /repos/**", q);
		for (const char *c = r->path; *c; c++) {
			unsigned char u = (unsigned char)*c;
			if (u <= 0x20 || u >= 0x7f)
				return sbx_err_set(err, SBX_E_INVALID,
						   "\"%s\": a path glob cannot hold spaces, control or non-ASCII "
						   "characters; write them percent-encoded as the request does (%%20)", q);
			if (u == '#')
				return sbx_err_set(err, SBX_E_INVALID,
						   "\"%s\": a request path never holds '#' (fragments stay in the client)", q);
		}
		if (strstr(r->path, "***"))
			return sbx_err_set(err, SBX_E_INVALID,
					   "\"%s\": use * for any text within a segment or ** across segments, not ***", q);
	}
	if ((r->method[0] || r->path[0]) && r->res.type == SBX_RES_ADDR)
		return sbx_err_set(err, SBX_E_INVALID,
				   "\"%s\": --method and --path apply to host names, not to IP addresses; write the host "
				   "name the client uses, or drop --method/--path for an address rule", r->res.text);

	if (!terminated(r->sandbox, sizeof(r->sandbox)) || (r->sandbox[0] && !sbx_name_valid(r->sandbox))) {
		quote_input(terminated(r->sandbox, sizeof(r->sandbox)) ? r->sandbox : "(too long)", q, sizeof(q));
		return sbx_err_set(err, SBX_E_INVALID,
				   "\"%s\": not a sandbox name (1 to 63 of a-z, A-Z, 0-9, '.', '_', '-', starting with a "
				   "letter or digit)", q);
	}

	if (r->approvals == 0)
		r->approvals = 1;
	if (r->kind != SBX_RULE_REVIEW && (r->approvals != 1 || r->timeout_ms))
		return sbx_err_set(err, SBX_E_INVALID, "--approvals and --timeout apply to review rules only");
	if (r->approvals > 2)
		return sbx_err_set(err, SBX_E_INVALID, "--approvals must be 1 or 2 (got %u)", (unsigned)r->approvals);
	if (r->timeout_ms > REVIEW_TIMEOUT_MAX_MS)
		return sbx_err_set(err, SBX_E_INVALID, "a review timeout is at most 24h");

	if (!terminated(r->action, sizeof(r->action)))
		return sbx_err_set(err, SBX_E_INVALID, "the rule's action is longer than %zu characters", sizeof(r->action) - 1);
	if (r->action[0]) {
		/* A review exemption names one exact request shape: nothing a glob could widen. */
		for (const char *c = r->action; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
				return sbx_err_set(err, SBX_E_INVALID, "a rule's action is printable ASCII");
		if (r->kind != SBX_RULE_ALLOW)
			return sbx_err_set(err, SBX_E_INVALID, "only allow rules pre-approve an action");
		if (r->res.type != SBX_RES_EXACT || !r->res.port || !r->method[0] || !r->path[0] ||
		    strpbrk(r->path, "*?"))
			return sbx_err_set(err, SBX_E_INVALID,
					   "a rule that pre-approves an action names one host:port, a method and a path "
					   "without '*' or '?'");
	}
	if (!terminated(r->source, sizeof(r->source)))
		return sbx_err_set(err, SBX_E_INVALID, "the rule source is longer than %zu characters",
				   sizeof(r->source) - 1);
	if (!r->source[0])
		sbx_strlcpy(r->source, "user", sizeof(r->source));
	return 0;
}

/* Appends to out[*len..n) like snprintf, keeping *len <= n - 1 when the text is cut. */
static void appendf(char *out, size_t n, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void appendf(char *out, size_t n, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*len + 1 >= n)
		return;
	va_start(ap, fmt);
	r = vsnprintf(out + *len, n - *len, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	*len = (size_t)r >= n - *len ? n - 1 : *len + (size_t)r;
}

void sbx_rule_describe(const struct sbx_rule *r, char *out, size_t n)
{
	size_t len = 0;

	if (!n)
		return;
	out[0] = '\0';
	appendf(out, n, &len, "%s %.*s", sbx_rule_kind_name(r->kind), (int)sizeof(r->res.text), r->res.text);
	if (r->method[0])
		appendf(out, n, &len, " --method %.*s", (int)sizeof(r->method), r->method);
	if (r->path[0])
		appendf(out, n, &len, " --path %.*s", (int)sizeof(r->path), r->path);
	if (r->kind == SBX_RULE_REVIEW && r->approvals > 1)
		appendf(out, n, &len, " --approvals %u", (unsigned)r->approvals);
	if (r->kind == SBX_RULE_REVIEW && r->timeout_ms) {
		if (r->timeout_ms % 1000 == 0)
			appendf(out, n, &len, " --timeout %llus", (unsigned long long)(r->timeout_ms / 1000));
		else
			appendf(out, n, &len, " --timeout %llums", (unsigned long long)r->timeout_ms);
	}
	if (r->action[0])
		appendf(out, n, &len, " (approved: %.*s)", (int)sizeof(r->action), r->action);
	if (r->sandbox[0])
		appendf(out, n, &len, " (sandbox %.*s)", (int)sizeof(r->sandbox), r->sandbox);
}

/* ---- presets ---- */

static const char *const preset_allow_all[] = {"**"};

/* What a developer's agent needs day to day, and nothing that only serves browsing. Every entry
 * must parse (the unit test checks). Wildcards only where a service really spreads over
 * generated names (CDN shards, regional endpoints). */
static const char *const preset_balanced[] = {
	/* AI services: the agents' own APIs and their telemetry/feature-flag endpoints */
	"api.anthropic.com",
	"claude.ai",
	"console.anthropic.com",
	"statsig.anthropic.com",
	"api.openai.com",
	"chatgpt.com",
	"auth.openai.com",
	"generativelanguage.googleapis.com",
	"aiplatform.googleapis.com",
	"api.groq.com",
	"api.mistral.ai",
	"openrouter.ai",
	"api.x.ai",
	"api.together.xyz",
	"api.deepseek.com",
	"api.fireworks.ai",
	"api.cohere.com",
	"api.perplexity.ai",
	"huggingface.co",
	"cdn-lfs.huggingface.co",
	"api.githubcopilot.com",
	"copilot-proxy.githubusercontent.com",
	"opencode.ai",
	"models.dev",
	/* package registries */
	"registry.npmjs.org",
	"registry.yarnpkg.com",
	"repo.yarnpkg.com",
	"nodejs.org",
	"pypi.org",
	"files.pythonhosted.org",
	"crates.io",
	"static.crates.io",
	"index.crates.io",
	"static.rust-lang.org",
	"proxy.golang.org",
	"sum.golang.org",
	"index.golang.org",
	"dl.google.com",
	"rubygems.org",
	"index.rubygems.org",
	"repo.maven.apache.org",
	"repo1.maven.org",
	"plugins.gradle.org",
	"plugins-artifacts.gradle.org",
	"services.gradle.org",
	"downloads.gradle.org",
	"nuget.org",
	"api.nuget.org",
	"globalcdn.nuget.org",
	"packagist.org",
	"repo.packagist.org",
	"getcomposer.org",
	"hex.pm",
	"repo.hex.pm",
	"builds.hex.pm",
	"cdn.cocoapods.org",
	"trunk.cocoapods.org",
	"conda.anaconda.org",
	"repo.anaconda.com",
	"cran.r-project.org",
	"hackage.haskell.org",
	"deno.land",
	"jsr.io",
	"pub.dev",
	"storage.googleapis.com",
	/* code hosts */
	"github.com",
	"api.github.com",
	"codeload.github.com",
	"uploads.github.com",
	"objects.githubusercontent.com",
	"raw.githubusercontent.com",
	"*.githubusercontent.com",
	"github-releases.githubusercontent.com",
	"gitlab.com",
	"registry.gitlab.com",
	"bitbucket.org",
	"api.bitbucket.org",
	"codeberg.org",
	/* container registries */
	"registry-1.docker.io",
	"auth.docker.io",
	"index.docker.io",
	"production.cloudflare.docker.com",
	"docker.io",
	"ghcr.io",
	"pkg-containers.githubusercontent.com",
	"quay.io",
	"cdn.quay.io",
	"gcr.io",
	"**.gcr.io",
	"**.pkg.dev",
	"public.ecr.aws",
	"mcr.microsoft.com",
	"**.data.mcr.microsoft.com",
	"registry.k8s.io",
	/* cloud APIs */
	"**.amazonaws.com",
	"**.googleapis.com",
	"accounts.google.com",
	"oauth2.googleapis.com",
	"management.azure.com",
	"login.microsoftonline.com",
	"graph.microsoft.com",
	"**.blob.core.windows.net",
	"api.cloudflare.com",
	/* OS mirrors */
	"deb.debian.org",
	"security.debian.org",
	"archive.ubuntu.com",
	"security.ubuntu.com",
	"ports.ubuntu.com",
	"ppa.launchpadcontent.net",
	"keyserver.ubuntu.com",
	"dl-cdn.alpinelinux.org",
	"mirrors.fedoraproject.org",
	"dl.fedoraproject.org",
	"download.fedoraproject.org",
	"mirror.centos.org",
	"mirrors.rockylinux.org",
	"archlinux.org",
	"geo.mirror.pkgbuild.com",
	"download.opensuse.org",
	"cache.nixos.org",
	"channels.nixos.org",
	"formulae.brew.sh",
	/* certificate validation: OCSP responders and CRLs of the big CAs, so TLS clients that check
	 * revocation do not stall */
	"ocsp.digicert.com",
	"crl3.digicert.com",
	"crl4.digicert.com",
	"cacerts.digicert.com",
	"ocsp.pki.goog",
	"crl.pki.goog",
	"pki.goog",
	"r3.o.lencr.org",
	"x1.c.lencr.org",
	"*.c.lencr.org",
	"*.o.lencr.org",
	"*.i.lencr.org",
	"ocsp.sectigo.com",
	"crl.sectigo.com",
	"ocsp.usertrust.com",
	"crl.usertrust.com",
	"ocsp.comodoca.com",
	"ocsp.globalsign.com",
	"crl.globalsign.com",
	"ocsp.godaddy.com",
	"crl.godaddy.com",
	"ocsp.entrust.net",
	"crl.entrust.net",
	"ocsp.rootca1.amazontrust.com",
	"crl.rootca1.amazontrust.com",
	"oneocsp.microsoft.com",
};

static const struct {
	const char *name;
	const char *const *res;
	size_t n;
} presets[] = {
	{"allow-all", preset_allow_all, SBX_ARRAY_LEN(preset_allow_all)},
	{"balanced", preset_balanced, SBX_ARRAY_LEN(preset_balanced)},
	/* no rules: everything is denied. The pointer is non-NULL ("known preset, zero rules"). */
	{"deny-all", preset_allow_all, 0},
};

const char *const *sbx_preset_resources(const char *name, size_t *n)
{
	for (size_t i = 0; name && i < SBX_ARRAY_LEN(presets); i++) {
		if (strcmp(name, presets[i].name) == 0) {
			*n = presets[i].n;
			return presets[i].res;
		}
	}
	*n = 0;
	return NULL;
}

/* ---- the compiled policy ---- */

enum { TAG_EXACT = 1, TAG_SUFFIX = 2 };

struct prule {
	struct sbx_rule rule; /* owned copy; sbx_decision.rule points here */
	uint32_t score;       /* specificity, to report the most specific rule of the deciding kind */
	bool http;            /* has a method or a path */
	bool usable;          /* false for a rule that could not be made sense of: it matches nothing */
};

struct bucket {
	const char *key; /* NULL = empty slot; points into a prule's res.host */
	uint64_t hash;
	uint32_t keylen;
	uint8_t tag;
	uint32_t first, count; /* a range of idx[] */
};

struct sbx_policy {
	struct prule *rules;
	size_t n;
	uint32_t *idx; /* rule indices: bucket groups, then the ** rules, then the address rules */
	struct bucket *table;
	size_t mask; /* table size - 1 (a power of two at least twice the number of buckets) */
	size_t any_first, nany, addr_first, naddr;
};

static uint64_t key_hash(uint8_t tag, const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	h = (h ^ tag) * 0x100000001b3ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 0x100000001b3ULL;
	return h;
}

static uint32_t rule_score(const struct sbx_rule *r)
{
	uint32_t s = 0;

	switch (r->res.type) {
	case SBX_RES_EXACT: s = 3000; break;
	case SBX_RES_ADDR: s = 2000 + (uint32_t)r->res.prefix; break;
	case SBX_RES_ONE_LABEL: s = 2000 + (uint32_t)strlen(r->res.host); break;
	case SBX_RES_ANY_DEPTH: s = 1000 + (uint32_t)strlen(r->res.host); break;
	case SBX_RES_ANY: s = 0; break;
	}
	return s * 8 + (r->res.port ? 4 : 0) + (r->method[0] ? 2 : 0) + (r->path[0] ? 1 : 0);
}

/* Makes a copied rule safe to use whatever the caller put in it. */
static bool rule_sanitise(struct sbx_rule *r)
{
	r->res.host[sizeof(r->res.host) - 1] = '\0';
	r->res.text[sizeof(r->res.text) - 1] = '\0';
	r->method[sizeof(r->method) - 1] = '\0';
	r->path[sizeof(r->path) - 1] = '\0';
	r->sandbox[sizeof(r->sandbox) - 1] = '\0';
	r->source[sizeof(r->source) - 1] = '\0';
	if (r->kind != SBX_RULE_ALLOW && r->kind != SBX_RULE_DENY && r->kind != SBX_RULE_REVIEW)
		return false;
	switch (r->res.type) {
	case SBX_RES_ANY:
	case SBX_RES_EXACT:
	case SBX_RES_ONE_LABEL:
	case SBX_RES_ANY_DEPTH:
		return true;
	case SBX_RES_ADDR:
		if (r->res.family != AF_INET && r->res.family != AF_INET6)
			return false;
		if (r->res.prefix < 0 || r->res.prefix > addr_bits(r->res.family))
			return false;
		return true;
	}
	return false;
}

struct keyref {
	const char *key;
	uint32_t rule;
	uint8_t tag;
};

static int keyref_cmp(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	int c;

	if (x->tag != y->tag)
		return x->tag < y->tag ? -1 : 1;
	if ((c = strcmp(x->key, y->key)))
		return c;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

static bool same_key(const struct keyref *a, const struct keyref *b)
{
	return a->tag == b->tag && strcmp(a->key, b->key) == 0;
}

struct sbx_policy *sbx_policy_build(const struct sbx_rule *rules, size_t n)
{
	struct sbx_policy *p = calloc(1, sizeof(*p));
	struct keyref *refs = NULL;
	size_t nrefs = 0, nbuckets = 0, size = 8, at = 0;

	if (!p || n > UINT32_MAX / 2)
		goto fail;
	p->n = n;
	p->rules = calloc(n ? n : 1, sizeof(*p->rules));
	p->idx = calloc(n ? n : 1, sizeof(*p->idx));
	refs = calloc(n ? n : 1, sizeof(*refs));
	if (!p->rules || !p->idx || !refs)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct prule *pr = &p->rules[i];
		pr->rule = rules[i];
		pr->usable = rule_sanitise(&pr->rule);
		pr->http = pr->rule.method[0] || pr->rule.path[0];
		pr->score = pr->usable ? rule_score(&pr->rule) : 0;
		if (!pr->usable)
			continue;
		if (pr->rule.res.type == SBX_RES_EXACT)
			refs[nrefs++] = (struct keyref){pr->rule.res.host, (uint32_t)i, TAG_EXACT};
		else if (pr->rule.res.type == SBX_RES_ONE_LABEL || pr->rule.res.type == SBX_RES_ANY_DEPTH)
			refs[nrefs++] = (struct keyref){pr->rule.res.host, (uint32_t)i, TAG_SUFFIX};
	}
	qsort(refs, nrefs, sizeof(*refs), keyref_cmp);
	for (size_t i = 0; i < nrefs; i++)
		if (i == 0 || !same_key(&refs[i], &refs[i - 1]))
			nbuckets++;
	while (size < 2 * nbuckets)
		size *= 2;
	p->table = calloc(size, sizeof(*p->table));
	if (!p->table)
		goto fail;
	p->mask = size - 1;
	for (size_t i = 0; i < nrefs;) {
		size_t j = i, len = strlen(refs[i].key);
		uint64_t h = key_hash(refs[i].tag, refs[i].key, len);
		size_t slot = (size_t)h & p->mask;
		for (; j < nrefs && same_key(&refs[j], &refs[i]); j++)
			p->idx[at + (j - i)] = refs[j].rule;
		while (p->table[slot].key)
			slot = (slot + 1) & p->mask;
		p->table[slot] = (struct bucket){refs[i].key, h, (uint32_t)len, refs[i].tag, (uint32_t)at, (uint32_t)(j - i)};
		at += j - i;
		i = j;
	}
	p->any_first = at;
	for (size_t i = 0; i < n; i++)
		if (p->rules[i].usable && p->rules[i].rule.res.type == SBX_RES_ANY)
			p->idx[at++] = (uint32_t)i;
	p->nany = at - p->any_first;
	p->addr_first = at;
	for (size_t i = 0; i < n; i++)
		if (p->rules[i].usable && p->rules[i].rule.res.type == SBX_RES_ADDR)
			p->idx[at++] = (uint32_t)i;
	p->naddr = at - p->addr_first;
	free(refs);
	return p;
fail:
	free(refs);
	sbx_policy_free(p);
	return NULL;
}

void sbx_policy_free(struct sbx_policy *p)
{
	if (!p)
		return;
	free(p->rules);
	free(p->idx);
	free(p->table);
	free(p);
}

static const struct bucket *lookup(const struct sbx_policy *p, uint8_t tag, const char *key, size_t len)
{
	uint64_t h = key_hash(tag, key, len);

	for (size_t i = (size_t)h & p->mask;; i = (i + 1) & p->mask) {
		const struct bucket *b = &p->table[i];
		if (!b->key)
			return NULL;
		if (b->hash == h && b->tag == tag && b->keylen == len && memcmp(b->key, key, len) == 0)
			return b;
	}
}

/* Glob tokens: bytes 0x21..0x7e stand for themselves. */
enum { G_ONE = 1, G_STAR = 2, G_DSTAR = 3 };

/* '*' any run without '/', '**' any run, '?' one character other than '/'. The pattern's
 * literal prefix is compared first (most globs start with one); the rest runs as a dynamic
 * program over (pattern token, text position): O(tokens x text) time, no recursion, no
 * backtracking blow-up whatever the pattern. */
static bool glob_match(const char *pat, const char *s, size_t n)
{
	uint8_t tok[512], rows[2][513];
	size_t m = 0, lit = 0;
	uint8_t *prev = rows[0], *cur = rows[1];

	for (size_t i = 0; pat[i] && m < sizeof(tok); i++) {
		if (pat[i] == '*' && pat[i + 1] == '*')
			tok[m++] = G_DSTAR, i++;
		else if (pat[i] == '*')
			tok[m++] = G_STAR;
		else if (pat[i] == '?')
			tok[m++] = G_ONE;
		else
			tok[m++] = (uint8_t)pat[i];
	}
	while (lit < m && tok[lit] > G_DSTAR) {
		if (lit >= n || (uint8_t)s[lit] != tok[lit])
			return false;
		lit++;
	}
	if (lit == m)
		return n == m;
	const uint8_t *t = tok + lit;
	size_t tm = m - lit;
	prev[0] = 1;
	for (size_t j = 0; j < tm; j++)
		prev[j + 1] = prev[j] && (t[j] == G_STAR || t[j] == G_DSTAR);
	for (size_t i = lit; i < n; i++) {
		uint8_t c = (uint8_t)s[i], any = 0;
		cur[0] = 0;
		for (size_t j = 0; j < tm; j++) {
			uint8_t v;
			switch (t[j]) {
			case G_ONE: v = prev[j] && c != '/'; break;
			case G_STAR: v = cur[j] || (prev[j + 1] && c != '/'); break;
			case G_DSTAR: v = cur[j] || prev[j + 1]; break;
			default: v = prev[j] && c == t[j]; break;
			}
			cur[j + 1] = v;
			any |= v;
		}
		if (!any)
			return false;
		uint8_t *tmp = prev;
		prev = cur;
		cur = tmp;
	}
	return prev[tm];
}

/* The target as the matcher sees it. */
struct tgt {
	const char *sandbox;
	char host[HOST_MAX + 1]; /* "" when the target carries no name */
	size_t hostlen;
	bool special; /* host.sbx.internal */
	int family;   /* 0 = no address */
	uint8_t addr[16];
	uint16_t port;
	bool request; /* method/path known */
	const char *method;
	const char *path;
	size_t pathlen;
};

enum { NET_ALLOW, NET_DENY, NET_REVIEW, HTTP_ALLOW, HTTP_DENY, HTTP_REVIEW, NSLOTS };

struct pick {
	const struct prule *best[NSLOTS];
	bool http_seen;
};

static bool addr_match(const struct sbx_resource *r, const struct tgt *t)
{
	int full = r->prefix / 8, rest = r->prefix % 8;

	if (r->family != t->family)
		return false;
	if (memcmp(r->addr, t->addr, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (r->addr[full] & mask) == (t->addr[full] & mask);
}

static bool better(const struct prule *a, const struct prule *b)
{
	if (!b)
		return true;
	if (!a)
		return false;
	return a->score > b->score || (a->score == b->score && a < b);
}

/* One rule whose resource matched by name or address (or is **): the rest of the checks. */
static void consider(struct pick *pk, const struct tgt *t, const struct prule *pr)
{
	const struct sbx_rule *r = &pr->rule;
	int slot;

	if (r->sandbox[0] && (!t->sandbox || strcmp(r->sandbox, t->sandbox) != 0))
		return;
	if (r->res.port) {
		if (t->port == 0) {
			/* the DNS question: a port-specific deny does not refuse the name */
			if (r->kind == SBX_RULE_DENY)
				return;
		} else if (r->res.port != t->port) {
			return;
		}
	}
	if (t->special && r->res.type != SBX_RES_EXACT && r->kind != SBX_RULE_DENY)
		return;
	if (pr->http) {
		pk->http_seen = true;
		if (t->request) {
			if (r->method[0] && (!t->method || strcmp(r->method, t->method) != 0))
				return;
			if (r->path[0] && !glob_match(r->path, t->path, t->pathlen))
				return;
		}
		slot = HTTP_ALLOW + (int)r->kind;
	} else {
		slot = NET_ALLOW + (int)r->kind;
	}
	if (better(pr, pk->best[slot]))
		pk->best[slot] = pr;
}

static void consider_range(struct pick *pk, const struct tgt *t, const struct sbx_policy *p, size_t first,
			   size_t count)
{
	for (size_t i = first; i < first + count; i++)
		consider(pk, t, &p->rules[p->idx[i]]);
}

static void collect(const struct sbx_policy *p, const struct tgt *t, struct pick *pk)
{
	if (t->hostlen) {
		const struct bucket *b = lookup(p, TAG_EXACT, t->host, t->hostlen);
		if (b)
			consider_range(pk, t, p, b->first, b->count);
		/* every parent domain: a.b.c -> b.c, c. *.S needs S to be the parent of the first label */
		for (size_t i = 0; i < t->hostlen; i++) {
			if (t->host[i] != '.')
				continue;
			const char *suf = t->host + i + 1;
			bool first_label = memchr(t->host, '.', i) == NULL;
			b = lookup(p, TAG_SUFFIX, suf, t->hostlen - i - 1);
			for (size_t k = 0; b && k < b->count; k++) {
				const struct prule *pr = &p->rules[p->idx[b->first + k]];
				if (pr->rule.res.type == SBX_RES_ANY_DEPTH || first_label)
					consider(pk, t, pr);
			}
		}
	}
	consider_range(pk, t, p, p->any_first, p->nany);
	if (t->family)
		for (size_t i = p->addr_first; i < p->addr_first + p->naddr; i++)
			if (addr_match(&p->rules[p->idx[i]].rule.res, t))
				consider(pk, t, &p->rules[p->idx[i]]);
}

/* Fills t from the caller's target. Returns NULL, or why the target is refused outright. */
static const char *target_prepare(const struct sbx_target *in, struct tgt *t)
{
	memset(t, 0, sizeof(*t));
	t->sandbox = in->sandbox;
	t->port = in->port;
	if (in->family == AF_INET) {
		t->family = AF_INET;
		memcpy(t->addr, in->addr, 4);
	} else if (in->family == AF_INET6) {
		t->family = AF_INET6;
		memcpy(t->addr, in->addr, 16);
	}
	if (in->host && in->host[0]) {
		size_t len = strnlen(in->host, HOST_MAX + 3);
		char lit[HOST_MAX + 3], why[128];
		uint8_t a[16];

		if (len > HOST_MAX + 1)
			return "the host name is longer than 253 characters";
		memcpy(lit, in->host, len + 1);
		/* an IP literal is an address, never a name ("[::1]" from a Host header too) */
		if (lit[0] == '[' && len > 2 && lit[len - 1] == ']') {
			lit[len - 1] = '\0';
			if (inet_pton(AF_INET6, lit + 1, a) != 1)
				return "the host is not a valid IPv6 address";
			if (!t->family) {
				t->family = AF_INET6;
				memcpy(t->addr, a, 16);
			}
		} else if (inet_pton(AF_INET, lit, a) == 1) {
			if (!t->family) {
				t->family = AF_INET;
				memcpy(t->addr, a, 4);
			}
		} else if (inet_pton(AF_INET6, lit, a) == 1) {
			if (!t->family) {
				t->family = AF_INET6;
				memcpy(t->addr, a, 16);
			}
		} else {
			if (host_normalise(lit, false, why, sizeof(why)) < 0)
				return "the host is not a valid DNS name";
			if (is_odd_ipv4(lit))
				return "the host is an IPv4 address in a non-standard form";
			t->hostlen = strlen(lit);
			memcpy(t->host, lit, t->hostlen + 1);
			t->special = strcmp(t->host, SPECIAL_HOST) == 0;
		}
	}
	if (t->family == AF_INET6 && is_v4_mapped(t->addr)) {
		memmove(t->addr, t->addr + 12, 4);
		memset(t->addr + 4, 0, 12);
		t->family = AF_INET;
	}
	if (in->method) {
		t->request = true;
		t->method = in->method;
		t->path = in->path ? in->path : "";
		t->pathlen = strcspn(t->path, "?#");
	}
	return NULL;
}

/* snprintf for texts that may be cut (reasons, log lines): a cut is the intended outcome. */
static void cutf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cutf(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, n, fmt, ap);
	va_end(ap);
}

/* "example.org:443", "10.0.0.1:443", "[2001:db8::1]:443", "GET /v1/x on example.org:443". */
static void target_text(const struct tgt *t, char *out, size_t n)
{
	char where[320];

	if (t->hostlen) {
		if (t->port)
			cutf(where, sizeof(where), "%s:%u", t->host, (unsigned)t->port);
		else
			snprintf(where, sizeof(where), "%s", t->host);
	} else if (t->family) {
		addr_text(t->family, t->addr, addr_bits(t->family), t->port, where, sizeof(where));
	} else {
		snprintf(where, sizeof(where), "an unknown destination");
	}
	if (t->request)
		cutf(out, n, "%.16s %.*s on %s", t->method, (int)(t->pathlen > 40 ? 40 : t->pathlen), t->path, where);
	else
		cutf(out, n, "%s", where);
}

static void set_decision(struct sbx_decision *d, enum sbx_rule_kind kind, const struct prule *pr, const char *what)
{
	char desc[sizeof(pr->rule.res.text) + sizeof(pr->rule.path) + 128];

	d->kind = kind;
	d->rule = &pr->rule;
	sbx_rule_describe(&pr->rule, desc, sizeof(desc));
	cutf(d->reason, sizeof(d->reason), "%s: %s", what, desc);
}

void sbx_policy_decide(const struct sbx_policy *p, const struct sbx_target *in, struct sbx_decision *d)
{
	struct tgt t;
	struct pick pk;
	const char *bad;
	const struct prule *deny, *review, *allow;
	char what[sizeof(d->reason)];

	memset(d, 0, sizeof(*d));
	d->kind = SBX_RULE_DENY;
	if (!p || !in) {
		snprintf(d->reason, sizeof(d->reason), "no network policy is loaded");
		return;
	}
	if ((bad = target_prepare(in, &t))) {
		cutf(d->reason, sizeof(d->reason), "%s", bad);
		return;
	}
	memset(&pk, 0, sizeof(pk));
	collect(p, &t, &pk);
	d->http_rules = pk.http_seen;

	if (!t.request) {
		deny = pk.best[NET_DENY];
		review = pk.best[NET_REVIEW];
		allow = pk.best[NET_ALLOW];
	} else {
		deny = better(pk.best[HTTP_DENY], pk.best[NET_DENY]) ? pk.best[HTTP_DENY] : pk.best[NET_DENY];
		review = better(pk.best[HTTP_REVIEW], pk.best[NET_REVIEW]) ? pk.best[HTTP_REVIEW] : pk.best[NET_REVIEW];
		allow = better(pk.best[HTTP_ALLOW], pk.best[NET_ALLOW]) ? pk.best[HTTP_ALLOW] : pk.best[NET_ALLOW];
	}
	/* Could a request to this host be refused or held by an HTTP rule? Then a connection whose
	 * requests cannot be read (an opaque tunnel) must not be let through on the network rule. */
	d->http_restricts = pk.best[HTTP_DENY] || pk.best[HTTP_REVIEW];
	if (deny) {
		set_decision(d, SBX_RULE_DENY, deny, "denied by rule");
	} else if (review) {
		set_decision(d, SBX_RULE_REVIEW, review, "held for review by rule");
	} else if (allow) {
		set_decision(d, SBX_RULE_ALLOW, allow, "allowed by rule");
	} else if (!t.request && (pk.best[HTTP_ALLOW] || pk.best[HTTP_REVIEW])) {
		/* only HTTP rules open this host: let the connection in, the request decides */
		set_decision(d, SBX_RULE_ALLOW, pk.best[HTTP_ALLOW] ? pk.best[HTTP_ALLOW] : pk.best[HTTP_REVIEW],
			     "the request decides, by HTTP rule");
		d->http_rules = true;
		d->http_restricts = true; /* only some requests are allowed */
	} else {
		target_text(&t, what, sizeof(what));
		if (t.special)
			cutf(d->reason, sizeof(d->reason),
			     "no rule allows %s (wildcards never open it: allow " SPECIAL_HOST ":PORT)", what);
		else
			cutf(d->reason, sizeof(d->reason), "no rule allows %s", what);
	}
}

const struct sbx_rule *sbx_policy_approved(const struct sbx_policy *p, const struct sbx_target *t, const char *action)
{
	const struct sbx_rule *found = NULL;
	size_t plen;

	if (!p || !t || !t->host || !t->method || !t->path || !action || !action[0])
		return NULL;
	plen = strcspn(t->path, "?");
	/* Few rules carry an action (one per "approve always"): a scan is cheap, and it runs only
	 * for requests that would otherwise be held. */
	for (size_t i = 0; i < p->n; i++) {
		const struct sbx_rule *r = &p->rules[i].rule;
		if (!r->action[0] || r->kind != SBX_RULE_ALLOW || !p->rules[i].usable)
			continue;
		if (r->res.type != SBX_RES_EXACT || r->res.port != t->port || strcasecmp(r->res.host, t->host) != 0)
			continue;
		if (strcmp(r->method, t->method) != 0 || strlen(r->path) != plen || strncmp(r->path, t->path, plen) != 0)
			continue;
		if (strcmp(r->action, action) != 0)
			continue;
		if (r->sandbox[0] && (!t->sandbox || strcmp(r->sandbox, t->sandbox) != 0))
			continue;
		if (!found || (r->sandbox[0] && !found->sandbox[0]))
			found = r;
	}
	return found;
}
