/* test_policy.c - the egress policy engine (src/daemon/policy.c, policy_store.c).
 *
 * Resource parsing (every form, every error, normalisation), rule validation and description,
 * the matching table (exact, *., **., apex, ports, CIDRs v4/v6 at their edges, IPv4-mapped),
 * precedence (deny > review > allow whatever the order and specificity), scopes, connection vs
 * request level with HTTP rules, the DNS question (port 0), host.sbx.internal, path globs, the
 * compiled policy's independence from the caller's array and its speed (printed, not
 * asserted), and storage in a temporary database: add / existed / remove / reset / presets /
 * load, and the balanced preset's data. */
#include "daemon/policy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "err.h"
#include "tap.h"
#include "util.h"

static sbx_err err;
/* The error argument, cleared first, so a message never shows an earlier call's error. */
#define E (sbx_err_clear(&err), &err)

/* ---- helpers ---- */

static bool has(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

static void res_ok(const char *in, const char *text, enum sbx_res_type type, uint16_t port)
{
	struct sbx_resource r, again;
	int rc = sbx_resource_parse(in, &r, E);

	if (!ok(rc == 0, "resource \"%s\" parses", in)) {
		diag("%s", err.msg);
		return;
	}
	is_str(r.text, text, "  \"%s\" normalises to %s", in, text);
	is_int(r.type, type, "  \"%s\" type", in);
	is_int(r.port, port, "  \"%s\" port", in);
	ok(sbx_resource_parse(r.text, &again, E) == 0 && strcmp(again.text, r.text) == 0 &&
		   memcmp(again.addr, r.addr, sizeof(r.addr)) == 0 && again.prefix == r.prefix && again.type == r.type,
	   "  %s parses back to itself", r.text);
}

static void res_bad(const char *in, const char *why)
{
	struct sbx_resource r;
	int rc = sbx_resource_parse(in, &r, E);

	ok(rc < 0 && err.code == SBX_E_INVALID && has(err.msg, why) &&
		   has(err.msg, "use example.com, *.example.com, **.example.com, host:port, an IP address or CIDR, or **"),
	   "resource \"%.40s\" refused: %s", in, why);
	if (rc == 0 || !has(err.msg, why))
		diag("got: %s", rc < 0 ? err.msg : r.text);
}

/* A validated rule; aborts on a rule the test means to be valid. */
static struct sbx_rule rule(enum sbx_rule_kind kind, const char *res, const char *method, const char *path,
			    const char *sandbox)
{
	struct sbx_rule r = {.kind = kind};

	sbx_strlcpy(r.res.text, res, sizeof(r.res.text));
	sbx_strlcpy(r.method, method ? method : "", sizeof(r.method));
	sbx_strlcpy(r.path, path ? path : "", sizeof(r.path));
	sbx_strlcpy(r.sandbox, sandbox ? sandbox : "", sizeof(r.sandbox));
	if (sbx_rule_validate(&r, E) < 0) {
		fprintf(stderr, "test rule %s is invalid: %s\n", res, err.msg);
		abort();
	}
	return r;
}
#define A(res) rule(SBX_RULE_ALLOW, (res), NULL, NULL, NULL)
#define D(res) rule(SBX_RULE_DENY, (res), NULL, NULL, NULL)
#define V(res) rule(SBX_RULE_REVIEW, (res), NULL, NULL, NULL)

static struct sbx_policy *build(const struct sbx_rule *r, size_t n)
{
	struct sbx_policy *p = sbx_policy_build(r, n);

	if (!p) {
		fprintf(stderr, "sbx_policy_build: out of memory\n");
		abort();
	}
	return p;
}

/* host may be an address literal for address targets: it then goes in family/addr, not host. */
static struct sbx_target target(const char *sandbox, const char *host, uint16_t port)
{
	struct sbx_target t = {.sandbox = sandbox, .host = host, .port = port};

	if (host && inet_pton(AF_INET, host, t.addr) == 1) {
		t.family = AF_INET;
		t.host = NULL;
	} else if (host && inet_pton(AF_INET6, host, t.addr) == 1) {
		t.family = AF_INET6;
		t.host = NULL;
	}
	return t;
}

static enum sbx_rule_kind decide_t(const struct sbx_policy *p, const struct sbx_target *t, struct sbx_decision *d)
{
	sbx_policy_decide(p, t, d);
	return d->kind;
}

static enum sbx_rule_kind decide(const struct sbx_policy *p, const char *sandbox, const char *host, uint16_t port,
				 struct sbx_decision *d)
{
	struct sbx_target t = target(sandbox, host, port);

	return decide_t(p, &t, d);
}

static enum sbx_rule_kind decide_req(const struct sbx_policy *p, const char *host, uint16_t port, const char *method,
				     const char *path, struct sbx_decision *d)
{
	struct sbx_target t = target(NULL, host, port);

	t.method = method;
	t.path = path;
	return decide_t(p, &t, d);
}

/* ---- review exemptions ("approve --always") ---- */

static struct sbx_rule exemption(const char *res, const char *method, const char *path, const char *sandbox,
				 const char *action)
{
	struct sbx_rule r = {.kind = SBX_RULE_ALLOW};

	sbx_strlcpy(r.res.text, res, sizeof(r.res.text));
	sbx_strlcpy(r.method, method, sizeof(r.method));
	sbx_strlcpy(r.path, path, sizeof(r.path));
	sbx_strlcpy(r.sandbox, sandbox ? sandbox : "", sizeof(r.sandbox));
	sbx_strlcpy(r.action, action, sizeof(r.action));
	return r;
}

static void test_exemptions(void)
{
	struct sbx_rule r;
	struct sbx_target t;
	const struct sbx_rule *ex;

	r = exemption("api.x.com:443", "POST", "/", "", "DeleteStack");
	ok(sbx_rule_validate(&r, E) == 0, "an exemption names host:port, method, path and action");
	r = exemption("api.x.com", "POST", "/", "", "DeleteStack");
	ok(sbx_rule_validate(&r, E) < 0 && has(err.msg, "host:port"), "an exemption needs a port");
	r = exemption("*.x.com:443", "POST", "/", "", "DeleteStack");
	ok(sbx_rule_validate(&r, E) < 0, "  and an exact host");
	r = exemption("api.x.com:443", "", "/", "", "DeleteStack");
	ok(sbx_rule_validate(&r, E) < 0, "  and a method");
	r = exemption("api.x.com:443", "POST", "/a/*", "", "DeleteStack");
	ok(sbx_rule_validate(&r, E) < 0 && has(err.msg, "'*'"), "  and a path without globs");
	r = exemption("api.x.com:443", "POST", "/", "", "DeleteStack");
	r.kind = SBX_RULE_REVIEW;
	ok(sbx_rule_validate(&r, E) < 0 && has(err.msg, "only allow rules"), "only allow rules carry an action");
	r = exemption("api.x.com:443", "POST", "/", "", "Delete\x01Stack");
	ok(sbx_rule_validate(&r, E) < 0 && has(err.msg, "printable"), "an action is printable ASCII");

	struct sbx_rule rs[] = {
		exemption("api.x.com:443", "POST", "/", "", "DeleteStack"),
		exemption("git.x.com:443", "POST", "/repo.git/git-receive-pack", "box", "git-push:force refs/heads/main"),
		A("**"),
	};
	for (size_t i = 0; i < SBX_ARRAY_LEN(rs); i++)
		if (sbx_rule_validate(&rs[i], E) < 0)
			abort();
	struct sbx_policy *p = build(rs, SBX_ARRAY_LEN(rs));
	char buf[300];
	sbx_rule_describe(&rs[0], buf, sizeof(buf));
	ok(has(buf, "(approved: DeleteStack)"), "an exemption is described with its action: %s", buf);

	t = (struct sbx_target){.sandbox = "any", .host = "api.x.com", .port = 443, .method = "POST", .path = "/"};
	ok((ex = sbx_policy_approved(p, &t, "DeleteStack")) && strcmp(ex->action, "DeleteStack") == 0,
	   "the exact shape is pre-approved");
	ok(!sbx_policy_approved(p, &t, "DeleteBucket"), "another operation is not");
	t.path = "/?Action=DeleteStack";
	ok(sbx_policy_approved(p, &t, "DeleteStack") != NULL, "the query is not part of the shape");
	t.path = "/other";
	ok(!sbx_policy_approved(p, &t, "DeleteStack"), "another path is not");
	t.path = "/";
	t.method = "PUT";
	ok(!sbx_policy_approved(p, &t, "DeleteStack"), "another method is not");
	t.method = "POST";
	t.port = 8443;
	ok(!sbx_policy_approved(p, &t, "DeleteStack"), "another port is not");
	t.port = 443;
	t.host = "API.X.COM";
	ok(sbx_policy_approved(p, &t, "DeleteStack") != NULL, "host names compare without case");
	t.host = "sub.api.x.com";
	ok(!sbx_policy_approved(p, &t, "DeleteStack"), "a subdomain is not");
	t = (struct sbx_target){.sandbox = "box", .host = "git.x.com", .port = 443, .method = "POST",
				.path = "/repo.git/git-receive-pack"};
	ok(sbx_policy_approved(p, &t, "git-push:force refs/heads/main") != NULL, "a sandbox's exemption applies to it");
	t.sandbox = "other";
	ok(!sbx_policy_approved(p, &t, "git-push:force refs/heads/main"), "  and not to another sandbox");
	ok(!sbx_policy_approved(p, &t, ""), "an empty action matches nothing");
	t.sandbox = "box";
	t.method = NULL;
	ok(!sbx_policy_approved(p, &t, "git-push:force refs/heads/main"), "a connection-level target matches nothing");
	sbx_policy_free(p);
}

/* ---- resource parsing ---- */

static void test_resource_forms(void)
{
	struct sbx_resource r;

	res_ok("example.com", "example.com", SBX_RES_EXACT, 0);
	res_ok("Example.COM.", "example.com", SBX_RES_EXACT, 0);
	res_ok("api.example.com:443", "api.example.com:443", SBX_RES_EXACT, 443);
	res_ok("API.Example.com.:8443", "api.example.com:8443", SBX_RES_EXACT, 8443);
	res_ok("*.example.com", "*.example.com", SBX_RES_ONE_LABEL, 0);
	res_ok("**.Example.com:443", "**.example.com:443", SBX_RES_ANY_DEPTH, 443);
	res_ok("**.com", "**.com", SBX_RES_ANY_DEPTH, 0);
	res_ok("localhost", "localhost", SBX_RES_EXACT, 0);
	res_ok("_dmarc.example-1.com", "_dmarc.example-1.com", SBX_RES_EXACT, 0);
	res_ok("1password.com", "1password.com", SBX_RES_EXACT, 0);
	res_ok("host.sbx.internal:8080", "host.sbx.internal:8080", SBX_RES_EXACT, 8080);
	res_ok("example.com:1", "example.com:1", SBX_RES_EXACT, 1);
	res_ok("example.com:65535", "example.com:65535", SBX_RES_EXACT, 65535);
	res_ok("**", "**", SBX_RES_ANY, 0);
	res_ok("**:443", "**:443", SBX_RES_ANY, 443);
	res_ok("1.2.3.4", "1.2.3.4", SBX_RES_ADDR, 0);
	res_ok("1.2.3.4:80", "1.2.3.4:80", SBX_RES_ADDR, 80);
	res_ok("10.0.0.0/8", "10.0.0.0/8", SBX_RES_ADDR, 0);
	res_ok("10.0.0.0/8:443", "10.0.0.0/8:443", SBX_RES_ADDR, 443);
	res_ok("0.0.0.0/0", "0.0.0.0/0", SBX_RES_ADDR, 0);
	res_ok("10.1.2.3/32", "10.1.2.3", SBX_RES_ADDR, 0);
	res_ok("2001:DB8::1", "2001:db8::1", SBX_RES_ADDR, 0);
	res_ok("[2001:db8::1]:443", "[2001:db8::1]:443", SBX_RES_ADDR, 443);
	res_ok("[2001:db8::1]", "2001:db8::1", SBX_RES_ADDR, 0);
	res_ok("fd00::/8", "fd00::/8", SBX_RES_ADDR, 0);
	res_ok("[fd00::/8]:443", "[fd00::/8]:443", SBX_RES_ADDR, 443);
	res_ok("fd00::/8:443", "[fd00::/8]:443", SBX_RES_ADDR, 443);
	res_ok("::/0", "::/0", SBX_RES_ADDR, 0);
	res_ok("2001:db8::1/128", "2001:db8::1", SBX_RES_ADDR, 0);
	res_ok("::1", "::1", SBX_RES_ADDR, 0);
	/* IPv4-mapped IPv6 is the IPv4 host */
	res_ok("::ffff:10.1.2.3", "10.1.2.3", SBX_RES_ADDR, 0);
	res_ok("::ffff:10.0.0.0/104", "10.0.0.0/8", SBX_RES_ADDR, 0);
	res_ok("[::ffff:10.1.2.3]:443", "10.1.2.3:443", SBX_RES_ADDR, 443);

	ok(sbx_resource_parse("**.Example.com:443", &r, E) == 0 && strcmp(r.host, "example.com") == 0,
	   "the suffix of a wildcard is in host");
	ok(sbx_resource_parse("10.0.0.0/8", &r, E) == 0 && r.family == AF_INET && r.prefix == 8 && r.addr[0] == 10 &&
		   r.host[0] == '\0',
	   "a CIDR's family, prefix and address");
	ok(sbx_resource_parse("2001:db8::1", &r, E) == 0 && r.family == AF_INET6 && r.prefix == 128,
	   "an IPv6 address has prefix 128");
	ok(sbx_resource_parse("::ffff:10.1.2.3", &r, E) == 0 && r.family == AF_INET && r.prefix == 32 &&
		   r.addr[0] == 10 && r.addr[3] == 3,
	   "an IPv4-mapped address becomes AF_INET");

	char longest[300];
	memset(longest, 'a', 63);
	longest[63] = '.';
	memset(longest + 64, 'b', 63);
	longest[127] = '.';
	memset(longest + 128, 'c', 63);
	longest[191] = '.';
	memset(longest + 192, 'd', 61);
	longest[253] = '\0'; /* 253 characters: the longest name */
	ok(sbx_resource_parse(longest, &r, E) == 0, "a 253-character name with 63-character labels parses");
	char wild[300];
	snprintf(wild, sizeof(wild), "**.%s:65535", longest);
	ok(sbx_resource_parse(wild, &r, E) == 0 && strcmp(r.text, wild) == 0, "the longest wildcard with a port fits");
}

static void test_resource_errors(void)
{
	char s[400];

	res_bad("", "empty");
	res_bad("exa mple.com", "\"exa mple.com\": not a host name");
	res_bad("exa\x01mple.com", "byte 0x01");
	res_bad("exa$mple.com", "'$' is not allowed");
	res_bad("example..com", "empty label");
	res_bad(".example.com", "empty label");
	res_bad("example.com..", "empty label");
	res_bad("-foo.example.com", "cannot start or end with '-'");
	res_bad("foo-.example.com", "cannot start or end with '-'");
	res_bad("foo.*.com", "a wildcard must be the whole first label");
	res_bad("a*.example.com", "a wildcard must be the whole first label");
	res_bad("*.*.example.com", "a wildcard must be the whole first label");
	res_bad("***.example.com", "a wildcard must be the whole first label");
	res_bad("*", "lone '*'");
	res_bad("*:443", "lone '*'");
	res_bad("*.", "host name is missing");
	res_bad("example.com:0", "port must be a number from 1 to 65535");
	res_bad("example.com:65536", "port must be a number from 1 to 65535");
	res_bad("example.com:", "port must be a number from 1 to 65535");
	res_bad("example.com:http", "port must be a number from 1 to 65535");
	res_bad("example.com:+80", "port must be a number from 1 to 65535");
	res_bad("example.com:123456", "port must be a number from 1 to 65535");
	res_bad(":443", "host name is missing");
	res_bad("1.2.3.256", "nor a valid IPv4 address");
	res_bad("1.2.3", "nor a valid IPv4 address");
	res_bad("01.2.3.4", "nor a valid IPv4 address");
	res_bad("*.1.2.3", "nor a valid IPv4 address");
	res_bad("0x7f000001", "non-standard form");
	res_bad("0x7f.0x1:80", "non-standard form");
	res_bad("10.1.2.3/8", "the network is 10.0.0.0/8");
	res_bad("10.0.0.1/31", "the network is 10.0.0.0/31");
	res_bad("fd00::1/8", "the network is fd00::/8");
	res_bad("10.0.0.0/33", "prefix length must be 0 to 32");
	res_bad("fd00::/129", "prefix length must be 0 to 128");
	res_bad("10.0.0.0/", "prefix length");
	res_bad("10.0.0.0/x", "prefix length");
	res_bad("10.0.0.0/8x", "unexpected text after the prefix");
	res_bad("10.0.0.0/8:0", "port must be");
	res_bad("example.com/8", "needs an IP address");
	res_bad("[1.2.3.4]:80", "brackets are for IPv6");
	res_bad("[example.com]:80", "brackets are for IPv6");
	res_bad("[2001:db8::1", "without its ']'");
	res_bad("[2001:db8::1]x", "unexpected text after ']'");
	res_bad("[2001:db8::1]:0", "port must be");
	res_bad("[fd00::/x]", "prefix length");
	res_bad("gggg::1", "not a valid IPv6 address");
	res_bad("2001:db8::1:443:", "not a valid IPv6 address");
	res_bad("1.2.3.4:80:80", "not a valid IPv6 address");
	memset(s, 'a', 64);
	strcpy(s + 64, ".com");
	res_bad(s, "longer than 63");
	for (int i = 0; i < 64; i++)
		memcpy(s + i * 4, "abc.", 4);
	strcpy(s + 256, "com"); /* 259 characters */
	res_bad(s, "longer than 253");
	memset(s, 'a', 350);
	s[350] = '\0';
	res_bad(s, "too long");

	sbx_resource_parse("exa mple.com", &(struct sbx_resource){0}, E);
	is_str(err.msg,
	       "\"exa mple.com\": not a host name (' ' is not allowed); use example.com, *.example.com, **.example.com, "
	       "host:port, an IP address or CIDR, or **",
	       "the whole message for a bad host");
}

static void test_resource_list(void)
{
	struct sbx_resource out[4];
	size_t n = 99;

	ok(sbx_resources_parse_list(" a.com , B.com,a.com,\t**.c.org:443 ", out, 4, &n, E) == 0 && n == 3 &&
		   strcmp(out[0].text, "a.com") == 0 && strcmp(out[1].text, "b.com") == 0 &&
		   strcmp(out[2].text, "**.c.org:443") == 0,
	   "a list: spaces around items, normalised, duplicates kept once");
	ok(sbx_resources_parse_list("a.com,A.COM.,a.com", out, 1, &n, E) == 0 && n == 1,
	   "duplicates (after normalisation) do not count against max");
	ok(sbx_resources_parse_list("x.com", out, 4, &n, E) == 0 && n == 1, "a single item");
	ok(sbx_resources_parse_list("a.com,,b.com", out, 4, &n, E) < 0 && has(err.msg, "empty item"),
	   "two commas in a row are refused");
	ok(sbx_resources_parse_list("a.com,", out, 4, &n, E) < 0 && has(err.msg, "empty item"),
	   "a trailing comma is refused");
	ok(sbx_resources_parse_list(",a.com", out, 4, &n, E) < 0 && has(err.msg, "empty item"),
	   "a leading comma is refused");
	ok(sbx_resources_parse_list("a.com, ,b.com", out, 4, &n, E) < 0 && has(err.msg, "empty item"),
	   "a blank item is refused");
	ok(sbx_resources_parse_list("", out, 4, &n, E) < 0 && has(err.msg, "no resource given"),
	   "an empty list is refused");
	ok(sbx_resources_parse_list("   ", out, 4, &n, E) < 0 && has(err.msg, "no resource given"),
	   "a blank list is refused");
	ok(sbx_resources_parse_list(NULL, out, 4, &n, E) < 0 && has(err.msg, "no resource given"), "NULL is refused");
	ok(sbx_resources_parse_list("a.com,b.com,c.com", out, 2, &n, E) < 0 && has(err.msg, "at most 2"),
	   "more than max resources are refused");
	ok(sbx_resources_parse_list("a.com, exa mple.com", out, 4, &n, E) < 0 && has(err.msg, "\"exa mple.com\""),
	   "a bad item is named");
	ok(sbx_resources_parse_list("a.com,10.0.0.0/8,[::1]:443", out, 4, &n, E) == 0 && n == 3 &&
		   strcmp(out[2].text, "[::1]:443") == 0,
	   "addresses in a list");
}

/* ---- rules ---- */

static void test_rule_validate(void)
{
	struct sbx_rule r;
	char buf[700];
	enum sbx_rule_kind k;

	r = rule(SBX_RULE_ALLOW, "API.example.com", "get", "/v1/**", NULL);
	is_str(r.method, "GET", "the method is uppercased");
	is_str(r.res.text, "api.example.com", "validation normalises the resource");
	is_str(r.source, "user", "an empty source becomes user");
	is_int(r.approvals, 1, "approvals 0 becomes 1");

	struct sbx_rule b = {.kind = SBX_RULE_ALLOW};
	sbx_strlcpy(b.res.text, "example.com", sizeof(b.res.text));
	struct sbx_rule t = b;
	sbx_strlcpy(t.method, "GE T", sizeof(t.method));
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "not an HTTP method"), "a method with a space is refused");
	t = b;
	memset(t.method, 'A', sizeof(t.method));
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "longer than 15"), "a 16-character method is refused");
	t = b;
	sbx_strlcpy(t.method, "M-SEARCH", sizeof(t.method));
	ok(sbx_rule_validate(&t, E) == 0, "any token is a method");
	t = b;
	sbx_strlcpy(t.path, "v1/**", sizeof(t.path));
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "starts with '/'"), "a path not starting with / is refused");
	t = b;
	sbx_strlcpy(t.path, "/a b", sizeof(t.path));
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "percent-encoded"), "a path with a space is refused");
	t = b;
	sbx_strlcpy(t.path, "/a\xc3\xa9", sizeof(t.path));
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "non-ASCII"), "a path with raw UTF-8 is refused");
	t = b;
	sbx_strlcpy(t.path, "/a#b", sizeof(t.path));
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "'#'"), "a path with a fragment is refused");
	t = b;
	sbx_strlcpy(t.path, "/a/***", sizeof(t.path));
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "not ***"), "*** is refused");
	t = b;
	memset(t.path, 'a', sizeof(t.path));
	t.path[0] = '/';
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "longer than 511"), "a 512-character path is refused");
	t = b;
	memset(t.path, 'a', sizeof(t.path) - 1);
	t.path[0] = '/';
	t.path[sizeof(t.path) - 1] = '\0';
	ok(sbx_rule_validate(&t, E) == 0, "a 511-character path is accepted");
	t = b;
	sbx_strlcpy(t.res.text, "10.0.0.0/8", sizeof(t.res.text));
	sbx_strlcpy(t.method, "GET", sizeof(t.method));
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "apply to host names, not to IP addresses"),
	   "a method on an address is refused");
	t = b;
	sbx_strlcpy(t.res.text, "[2001:db8::1]:443", sizeof(t.res.text));
	sbx_strlcpy(t.path, "/x", sizeof(t.path));
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "not to IP addresses"), "a path on an address is refused");
	t = b;
	sbx_strlcpy(t.res.text, "**", sizeof(t.res.text));
	sbx_strlcpy(t.method, "DELETE", sizeof(t.method));
	ok(sbx_rule_validate(&t, E) == 0, "a method on ** is accepted");
	t = b;
	sbx_strlcpy(t.res.text, "exa mple.com", sizeof(t.res.text));
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "not a host name"), "a bad resource text is refused");
	t = b;
	sbx_strlcpy(t.sandbox, "bad name!", sizeof(t.sandbox));
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "not a sandbox name"), "a bad sandbox name is refused");
	t = b;
	t.kind = (enum sbx_rule_kind)7;
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "unknown rule kind"), "an unknown kind is refused");
	t = b;
	t.approvals = 2;
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "review rules only"), "approvals on an allow rule are refused");
	t = b;
	t.timeout_ms = 1000;
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "review rules only"), "a timeout on an allow rule is refused");
	t = b;
	t.kind = SBX_RULE_REVIEW;
	t.approvals = 3;
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "1 or 2"), "three approvals are refused");
	t.approvals = 2;
	t.timeout_ms = 25ULL * 3600 * 1000;
	ok(sbx_rule_validate(&t, E) < 0 && has(err.msg, "24h"), "a timeout over 24h is refused");
	t.timeout_ms = 30000;
	ok(sbx_rule_validate(&t, E) == 0, "a review rule with two approvals and a timeout is accepted");

	r = rule(SBX_RULE_ALLOW, "**.Example.com:443", "get", "/v1/**", "foo");
	sbx_rule_describe(&r, buf, sizeof(buf));
	is_str(buf, "allow **.example.com:443 --method GET --path /v1/** (sandbox foo)", "describe, every field");
	sbx_rule_describe(&t, buf, sizeof(buf));
	is_str(buf, "review example.com --approvals 2 --timeout 30s", "describe a review rule");
	t.timeout_ms = 1500;
	sbx_rule_describe(&t, buf, sizeof(buf));
	is_str(buf, "review example.com --approvals 2 --timeout 1500ms", "a timeout in milliseconds");
	r = D("10.0.0.0/8");
	sbx_rule_describe(&r, buf, sizeof(buf));
	is_str(buf, "deny 10.0.0.0/8", "describe an address rule");
	sbx_rule_describe(&r, buf, 8);
	is_str(buf, "deny 10", "describe truncates to the buffer");

	ok(sbx_rule_kind_parse("review", &k) == 0 && k == SBX_RULE_REVIEW, "kind names parse");
	ok(sbx_rule_kind_parse("Allow", &k) < 0 && sbx_rule_kind_parse("", &k) < 0 && sbx_rule_kind_parse(NULL, &k) < 0,
	   "other kind names do not");
	is_str(sbx_rule_kind_name(SBX_RULE_DENY), "deny", "kind name");
}

/* ---- matching ---- */

struct match_case {
	const char *rule;
	const char *host; /* a name or an address literal */
	uint16_t port;
	bool allowed;
};

static void test_matching_table(void)
{
	static const struct match_case cases[] = {
		{"example.com", "example.com", 443, true},
		{"example.com", "example.com", 80, true},
		{"example.com", "EXAMPLE.com.", 443, true},
		{"example.com", "www.example.com", 443, false},
		{"example.com", "notexample.com", 443, false},
		{"example.com", "example.com.evil.org", 443, false},
		{"*.example.com", "a.example.com", 443, true},
		{"*.example.com", "a.b.example.com", 443, false},
		{"*.example.com", "example.com", 443, false},
		{"*.example.com", "aexample.com", 443, false},
		{"*.example.com", "a.example.com.evil.org", 443, false},
		{"**.example.com", "a.example.com", 443, true},
		{"**.example.com", "a.b.c.example.com", 443, true},
		{"**.example.com", "example.com", 443, false},
		{"**.example.com", "aexample.com", 443, false},
		{"**.com", "example.com", 443, true},
		{"example.com:443", "example.com", 443, true},
		{"example.com:443", "example.com", 80, false},
		{"**.example.com:8443", "a.example.com", 8443, true},
		{"**.example.com:8443", "a.example.com", 443, false},
		{"*.example.com:22", "git.example.com", 22, true},
		{"**", "anything.example", 1, true},
		{"**", "10.0.0.1", 443, true},
		{"**", "2001:db8::1", 443, true},
		{"**:443", "example.com", 443, true},
		{"**:443", "example.com", 80, false},
		{"**:443", "10.0.0.1", 80, false},
		{"10.0.0.0/8", "10.0.0.0", 443, true},
		{"10.0.0.0/8", "10.255.255.255", 443, true},
		{"10.0.0.0/8", "11.0.0.0", 443, false},
		{"10.0.0.0/8", "9.255.255.255", 443, false},
		{"10.0.0.0/9", "10.127.255.255", 443, true},
		{"10.0.0.0/9", "10.128.0.0", 443, false},
		{"10.0.0.0/8:443", "10.1.1.1", 443, true},
		{"10.0.0.0/8:443", "10.1.1.1", 80, false},
		{"0.0.0.0/0", "255.255.255.255", 443, true},
		{"0.0.0.0/0", "2001:db8::1", 443, false},
		{"1.2.3.4", "1.2.3.4", 443, true},
		{"1.2.3.4", "1.2.3.5", 443, false},
		{"1.2.3.4/32", "1.2.3.4", 443, true},
		{"::/0", "2001:db8::1", 443, true},
		{"::/0", "1.2.3.4", 443, false},
		{"::/0", "::ffff:1.2.3.4", 443, false}, /* a mapped target is the IPv4 host */
		{"2001:db8::1", "2001:db8::1", 443, true},
		{"2001:db8::1", "2001:db8::2", 443, false},
		{"2001:db8::1/128", "2001:db8::1", 443, true},
		{"2001:db8::/32", "2001:db8:ffff:ffff::1", 443, true},
		{"2001:db8::/32", "2001:db9::", 443, false},
		{"2001:db8::/33", "2001:db8:8000::", 443, false},
		{"[2001:db8::/32]:443", "2001:db8::5", 443, true},
		{"[2001:db8::/32]:443", "2001:db8::5", 80, false},
		{"10.0.0.0/8", "::ffff:10.1.2.3", 443, true},
		{"::ffff:10.0.0.0/104", "10.1.2.3", 443, true},
		{"::ffff:10.1.2.3", "::ffff:10.1.2.3", 443, true},
	};
	struct sbx_decision d;

	for (size_t i = 0; i < SBX_ARRAY_LEN(cases); i++) {
		const struct match_case *c = &cases[i];
		struct sbx_rule r = A(c->rule);
		struct sbx_policy *p = build(&r, 1);
		enum sbx_rule_kind k = decide(p, NULL, c->host, c->port, &d);
		ok((k == SBX_RULE_ALLOW) == c->allowed && (!c->allowed || d.rule),
		   "allow %s %s %s:%u", c->rule, c->allowed ? "matches" : "does not match", c->host, (unsigned)c->port);
		if ((k == SBX_RULE_ALLOW) != c->allowed)
			diag("reason: %s", d.reason);
		sbx_policy_free(p);
		/* the same rule as a deny, with ** allowed, flips the outcome */
		struct sbx_rule both[2] = {A("**"), D(c->rule)};
		p = build(both, 2);
		k = decide(p, NULL, c->host, c->port, &d);
		ok((k == SBX_RULE_DENY) == c->allowed, "  and deny %s %s it", c->rule, c->allowed ? "denies" : "leaves");
		sbx_policy_free(p);
	}

	/* names and addresses: each kind of rule sees only its kind of target */
	struct sbx_rule rs[] = {A("10.0.0.0/8"), A("name.example")};
	struct sbx_policy *p = build(rs, 2);
	struct sbx_target t = {.host = "other.example", .family = AF_INET, .addr = {10, 1, 2, 3}, .port = 443};
	ok(decide_t(p, &t, &d) == SBX_RULE_ALLOW && d.rule->res.type == SBX_RES_ADDR,
	   "a target with a name and an address matches an address rule");
	t = (struct sbx_target){.host = "name.example", .family = AF_INET, .addr = {11, 1, 2, 3}, .port = 443};
	ok(decide_t(p, &t, &d) == SBX_RULE_ALLOW && d.rule->res.type == SBX_RES_EXACT, "... and a name rule");
	t = (struct sbx_target){.host = "other.example", .port = 443};
	ok(decide_t(p, &t, &d) == SBX_RULE_DENY, "a name-only target does not match an address rule");
	t = (struct sbx_target){.host = "10.1.2.3", .port = 443};
	ok(decide_t(p, &t, &d) == SBX_RULE_ALLOW && d.rule->res.type == SBX_RES_ADDR,
	   "an IPv4 literal given as the host is an address");
	t = (struct sbx_target){.host = "[::ffff:10.1.2.3]", .port = 443};
	ok(decide_t(p, &t, &d) == SBX_RULE_ALLOW, "a bracketed IPv6 literal given as the host is an address");
	t = (struct sbx_target){.host = "NAME.example.", .port = 443};
	ok(decide_t(p, &t, &d) == SBX_RULE_ALLOW, "a target host is normalised");
	sbx_policy_free(p);

	struct sbx_rule deny_addr[] = {A("**"), D("10.0.0.0/8")};
	p = build(deny_addr, 2);
	t = (struct sbx_target){.host = "intranet.example", .family = AF_INET, .addr = {10, 0, 0, 5}, .port = 443};
	ok(decide_t(p, &t, &d) == SBX_RULE_DENY, "an address deny applies to a named target with that address");
	t = (struct sbx_target){.host = "10.0.0.5", .port = 443};
	ok(decide_t(p, &t, &d) == SBX_RULE_DENY, "an address deny applies to an IP literal host");
	t = (struct sbx_target){.family = AF_INET6, .addr = {[10] = 0xff, [11] = 0xff, [12] = 10, [15] = 9}, .port = 443};
	ok(decide_t(p, &t, &d) == SBX_RULE_DENY, "an IPv4 deny applies to the IPv4-mapped IPv6 address");
	sbx_policy_free(p);

	/* invalid targets */
	struct sbx_rule any = A("**");
	p = build(&any, 1);
	char longhost[400];
	memset(longhost, 'a', sizeof(longhost) - 1);
	longhost[sizeof(longhost) - 1] = '\0';
	ok(decide(p, NULL, "bad host", 443, &d) == SBX_RULE_DENY && has(d.reason, "not a valid DNS name"),
	   "a target name with a space is denied, even under **");
	ok(decide(p, NULL, longhost, 443, &d) == SBX_RULE_DENY && has(d.reason, "longer than 253"),
	   "a 399-character target name is denied");
	ok(decide(p, NULL, "a..b", 443, &d) == SBX_RULE_DENY, "a target name with an empty label is denied");
	static const char *const odd[] = {"0x7f.1", "2130706433", "127.1", "1.2.3", "0177.0.0.1"};
	for (size_t i = 0; i < SBX_ARRAY_LEN(odd); i++)
		ok(decide(p, NULL, odd[i], 443, &d) == SBX_RULE_DENY && has(d.reason, "non-standard form"),
		   "%s (an IPv4 address to the C library) is denied as a name", odd[i]);
	ok(decide(p, NULL, "0x7g.example", 443, &d) == SBX_RULE_ALLOW, "a name that merely starts like hex is a name");
	t = (struct sbx_target){.port = 443};
	ok(decide_t(p, &t, &d) == SBX_RULE_ALLOW, "** allows a target without name or address");
	sbx_policy_free(p);
	sbx_policy_decide(NULL, &t, &d);
	ok(d.kind == SBX_RULE_DENY && has(d.reason, "no network policy"), "a NULL policy denies");
	p = build(NULL, 0);
	ok(decide(p, NULL, "example.com", 443, &d) == SBX_RULE_DENY && !d.rule, "an empty policy denies");
	is_str(d.reason, "no rule allows example.com:443", "the default reason");
	ok(decide(p, NULL, "example.com", 0, &d) == SBX_RULE_DENY, "an empty policy denies the DNS question");
	is_str(d.reason, "no rule allows example.com", "the default reason for a DNS question");
	ok(decide(p, NULL, "2001:db8::1", 443, &d) == SBX_RULE_DENY, "an empty policy denies an address");
	is_str(d.reason, "no rule allows [2001:db8::1]:443", "the default reason for an IPv6 address");
	ok(decide_req(p, "example.com", 443, "POST", "/v1/x?secret=1", &d) == SBX_RULE_DENY, "a request is denied");
	is_str(d.reason, "no rule allows POST /v1/x on example.com:443", "the default reason for a request");
	sbx_policy_free(p);
}

static void test_precedence(void)
{
	struct sbx_decision d;
	struct sbx_rule set[3];
	char buf[200];

	/* every order of: an exact allow, a ** review, a *. deny */
	struct sbx_rule base[3] = {A("api.x.com"), V("**.x.com"), D("*.x.com")};
	static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
	for (int i = 0; i < 6; i++) {
		for (int j = 0; j < 3; j++)
			set[j] = base[perms[i][j]];
		struct sbx_policy *p = build(set, 3);
		ok(decide(p, NULL, "api.x.com", 443, &d) == SBX_RULE_DENY && d.rule && d.rule->kind == SBX_RULE_DENY,
		   "order %d%d%d: a wildcard deny beats an exact allow", perms[i][0], perms[i][1], perms[i][2]);
		ok(decide(p, NULL, "a.b.x.com", 443, &d) == SBX_RULE_REVIEW, "  review where only review and nothing "
										  "else matches");
		sbx_policy_free(p);
	}
	struct sbx_rule rv[] = {A("api.x.com:443"), V("**")};
	struct sbx_policy *p = build(rv, 2);
	ok(decide(p, NULL, "api.x.com", 443, &d) == SBX_RULE_REVIEW, "a ** review beats an exact allow");
	sbx_policy_free(p);
	struct sbx_rule rv2[] = {V("**"), A("api.x.com:443")};
	p = build(rv2, 2);
	ok(decide(p, NULL, "api.x.com", 443, &d) == SBX_RULE_REVIEW, "... in either order");
	is_str(d.reason, "held for review by rule: review **", "the review reason");
	sbx_policy_free(p);

	/* the most specific rule of the deciding kind is reported */
	struct sbx_rule sp[] = {A("**"), A("**.example.com"), A("*.example.com"), A("api.example.com"),
				A("api.example.com:443"), A("**.api.example.com")};
	p = build(sp, SBX_ARRAY_LEN(sp));
	ok(decide(p, NULL, "api.example.com", 443, &d) == SBX_RULE_ALLOW && d.rule, "allowed");
	is_str(d.rule ? d.rule->res.text : NULL, "api.example.com:443", "the most specific allow is reported");
	ok(decide(p, NULL, "api.example.com", 80, &d) == SBX_RULE_ALLOW && d.rule, "allowed on 80");
	is_str(d.rule ? d.rule->res.text : NULL, "api.example.com", "  by the exact rule without port");
	decide(p, NULL, "x.api.example.com", 443, &d);
	is_str(d.rule ? d.rule->res.text : NULL, "**.api.example.com", "the longer suffix is reported");
	decide(p, NULL, "www.example.com", 443, &d);
	is_str(d.rule ? d.rule->res.text : NULL, "*.example.com", "*. is more specific than **.");
	decide(p, NULL, "other.org", 443, &d);
	is_str(d.rule ? d.rule->res.text : NULL, "**", "** last");
	is_str(d.reason, "allowed by rule: allow **", "the allow reason");
	sbx_policy_free(p);

	struct sbx_rule dn[] = {A("api.evil.com"), D("**.evil.com")};
	p = build(dn, 2);
	decide(p, NULL, "api.evil.com", 443, &d);
	is_str(d.reason, "denied by rule: deny **.evil.com", "the deny reason");
	sbx_rule_describe(d.rule, buf, sizeof(buf));
	is_str(buf, "deny **.evil.com", "the deciding rule");
	sbx_policy_free(p);
}

static void test_scopes(void)
{
	struct sbx_decision d;
	struct sbx_rule rs[] = {
		A("a.com"),
		rule(SBX_RULE_DENY, "a.com", NULL, NULL, "s1"),
		rule(SBX_RULE_ALLOW, "b.com", NULL, NULL, "s1"),
		D("c.com"),
		rule(SBX_RULE_ALLOW, "c.com", NULL, NULL, "s1"),
		rule(SBX_RULE_REVIEW, "d.com", NULL, NULL, "s2"),
		A("d.com"),
	};
	struct sbx_policy *p = build(rs, SBX_ARRAY_LEN(rs));

	ok(decide(p, "s1", "a.com", 443, &d) == SBX_RULE_DENY, "a sandbox deny beats a global allow");
	ok(has(d.reason, "(sandbox s1)"), "  the reason names the sandbox: %s", d.reason);
	ok(decide(p, "s2", "a.com", 443, &d) == SBX_RULE_ALLOW, "another sandbox is not affected");
	ok(decide(p, NULL, "a.com", 443, &d) == SBX_RULE_ALLOW, "no sandbox: global rules only");
	ok(decide(p, "", "a.com", 443, &d) == SBX_RULE_ALLOW, "sandbox \"\": global rules only");
	ok(decide(p, "s1", "b.com", 443, &d) == SBX_RULE_ALLOW, "a sandbox allow opens for that sandbox");
	ok(decide(p, "s2", "b.com", 443, &d) == SBX_RULE_DENY, "  and no other");
	ok(decide(p, "s1x", "b.com", 443, &d) == SBX_RULE_DENY, "  (not a prefix match on the name)");
	ok(decide(p, "s1", "c.com", 443, &d) == SBX_RULE_DENY, "a global deny beats a sandbox allow");
	ok(decide(p, "s2", "d.com", 443, &d) == SBX_RULE_REVIEW, "a sandbox review beats a global allow");
	ok(decide(p, "s1", "d.com", 443, &d) == SBX_RULE_ALLOW, "  only in that sandbox");
	sbx_policy_free(p);
}

static void test_http_levels(void)
{
	struct sbx_decision d;
	struct sbx_policy *p;

	/* only an HTTP allow: the connection gets in, the request decides */
	struct sbx_rule r1[] = {rule(SBX_RULE_ALLOW, "api.x.com", "GET", NULL, NULL), A("plain.com")};
	p = build(r1, 2);
	ok(decide(p, NULL, "api.x.com", 443, &d) == SBX_RULE_ALLOW && d.http_rules && d.rule &&
		   strcmp(d.rule->method, "GET") == 0,
	   "connection level: an HTTP allow lets the connection in with http_rules");
	ok(has(d.reason, "the request decides"), "  the reason says the request decides");
	ok(decide_req(p, "api.x.com", 443, "GET", "/anything", &d) == SBX_RULE_ALLOW, "GET is allowed");
	ok(decide_req(p, "api.x.com", 443, "POST", "/anything", &d) == SBX_RULE_DENY && !d.rule, "POST is denied");
	ok(decide_req(p, "api.x.com", 443, "get", "/anything", &d) == SBX_RULE_DENY, "methods are case-sensitive");
	ok(decide(p, NULL, "plain.com", 443, &d) == SBX_RULE_ALLOW && !d.http_rules, "no HTTP rules: http_rules false");
	ok(decide(p, NULL, "other.com", 443, &d) == SBX_RULE_DENY && !d.http_rules,
	   "an HTTP rule for another host does not count");
	sbx_policy_free(p);

	/* network allow plus an HTTP deny */
	struct sbx_rule r2[] = {A("api.x.com"), rule(SBX_RULE_DENY, "api.x.com", "DELETE", NULL, NULL)};
	p = build(r2, 2);
	ok(decide(p, NULL, "api.x.com", 443, &d) == SBX_RULE_ALLOW && d.http_rules && d.rule && !d.rule->method[0],
	   "an HTTP deny does not deny the connection, but sets http_rules");
	ok(decide_req(p, "api.x.com", 443, "DELETE", "/repo", &d) == SBX_RULE_DENY && d.rule, "DELETE is denied");
	ok(decide_req(p, "api.x.com", 443, "GET", "/repo", &d) == SBX_RULE_ALLOW, "GET is allowed");
	sbx_policy_free(p);

	/* a network deny cannot be reopened by an HTTP allow */
	struct sbx_rule r3[] = {D("api.x.com"), rule(SBX_RULE_ALLOW, "api.x.com", "GET", "/**", NULL)};
	p = build(r3, 2);
	ok(decide(p, NULL, "api.x.com", 443, &d) == SBX_RULE_DENY, "a network deny denies the connection");
	ok(decide_req(p, "api.x.com", 443, "GET", "/x", &d) == SBX_RULE_DENY && d.rule && !d.rule->method[0],
	   "  and every request");
	sbx_policy_free(p);

	/* HTTP review next to a network allow */
	struct sbx_rule r4[] = {rule(SBX_RULE_REVIEW, "api.x.com", "POST", NULL, NULL), A("api.x.com")};
	p = build(r4, 2);
	ok(decide(p, NULL, "api.x.com", 443, &d) == SBX_RULE_ALLOW && d.http_rules, "connection allowed, http_rules");
	ok(decide_req(p, "api.x.com", 443, "POST", "/v1", &d) == SBX_RULE_REVIEW, "POST held for review");
	ok(decide_req(p, "api.x.com", 443, "GET", "/v1", &d) == SBX_RULE_ALLOW, "GET allowed");
	sbx_policy_free(p);

	/* only an HTTP review */
	struct sbx_rule r5[] = {rule(SBX_RULE_REVIEW, "api.x.com", "DELETE", NULL, NULL)};
	p = build(r5, 1);
	ok(decide(p, NULL, "api.x.com", 443, &d) == SBX_RULE_ALLOW && d.http_rules,
	   "an HTTP review alone lets the connection in, the request decides");
	ok(decide_req(p, "api.x.com", 443, "DELETE", "/x", &d) == SBX_RULE_REVIEW, "DELETE held");
	ok(decide_req(p, "api.x.com", 443, "GET", "/x", &d) == SBX_RULE_DENY, "GET denied (nothing allows it)");
	sbx_policy_free(p);

	/* network review */
	struct sbx_rule r6[] = {V("api.x.com"), A("**")};
	p = build(r6, 2);
	ok(decide(p, NULL, "api.x.com", 443, &d) == SBX_RULE_REVIEW && !d.http_rules, "a network review at connection "
										       "level");
	ok(decide_req(p, "api.x.com", 443, "GET", "/", &d) == SBX_RULE_REVIEW, "  and at request level");
	sbx_policy_free(p);

	/* paths, queries and ports */
	struct sbx_rule r7[] = {rule(SBX_RULE_ALLOW, "api.x.com:443", NULL, "/v1/**", NULL),
				rule(SBX_RULE_DENY, "**", NULL, "/admin/**", NULL), A("other.com")};
	p = build(r7, 3);
	ok(decide_req(p, "api.x.com", 443, "GET", "/v1/messages?x=/admin/", &d) == SBX_RULE_ALLOW,
	   "the query is not part of the path");
	ok(decide_req(p, "api.x.com", 443, "GET", "/v2/messages", &d) == SBX_RULE_DENY, "another path is denied");
	ok(decide(p, NULL, "api.x.com", 80, &d) == SBX_RULE_DENY && d.http_rules,
	   "an HTTP rule with another port does not open the connection (** /admin still counts)");
	ok(decide_req(p, "other.com", 443, "GET", "/admin/users", &d) == SBX_RULE_DENY && d.rule,
	   "an HTTP deny on ** applies to every host");
	ok(decide_req(p, "other.com", 443, "GET", "/public", &d) == SBX_RULE_ALLOW, "  and only to its paths");
	ok(decide_req(p, "10.0.0.1", 443, "GET", "/admin/", &d) == SBX_RULE_DENY && d.rule,
	   "  and to address targets");
	ok(decide_req(p, "api.x.com", 443, "GET", NULL, &d) == SBX_RULE_DENY, "a request without a path matches no glob");
	sbx_policy_free(p);
}

static void test_dns_question(void)
{
	struct sbx_decision d;
	struct sbx_policy *p;

	struct sbx_rule r1[] = {A("example.com:443"), rule(SBX_RULE_ALLOW, "api.x.com:443", "GET", NULL, NULL),
				rule(SBX_RULE_REVIEW, "held.com:443", NULL, NULL, NULL)};
	p = build(r1, 3);
	ok(decide(p, NULL, "example.com", 0, &d) == SBX_RULE_ALLOW, "port 0: an allow with a port answers yes");
	ok(decide(p, NULL, "api.x.com", 0, &d) == SBX_RULE_ALLOW && d.http_rules, "port 0: an HTTP allow answers yes");
	ok(decide(p, NULL, "held.com", 0, &d) == SBX_RULE_REVIEW, "port 0: a review with a port answers review");
	ok(decide(p, NULL, "other.com", 0, &d) == SBX_RULE_DENY, "port 0: nothing -> no");
	sbx_policy_free(p);

	struct sbx_rule r2[] = {A("**"), D("example.com:25"), D("blocked.com")};
	p = build(r2, 3);
	ok(decide(p, NULL, "example.com", 0, &d) == SBX_RULE_ALLOW, "port 0: a deny with a port does not deny the name");
	ok(decide(p, NULL, "example.com", 25, &d) == SBX_RULE_DENY, "  but denies its port");
	ok(decide(p, NULL, "example.com", 443, &d) == SBX_RULE_ALLOW, "  and only that port");
	ok(decide(p, NULL, "blocked.com", 0, &d) == SBX_RULE_DENY, "port 0: a deny without a port denies the name");
	sbx_policy_free(p);
}

static void test_special_host(void)
{
	struct sbx_decision d;
	static const char *const wild[] = {"**", "*.sbx.internal", "**.internal", "**.sbx.internal", "**:8080"};

	for (size_t i = 0; i < SBX_ARRAY_LEN(wild); i++) {
		struct sbx_rule r[2] = {A(wild[i]), V(wild[i])};
		struct sbx_policy *p = build(r, 2);
		ok(decide(p, NULL, "host.sbx.internal", 8080, &d) == SBX_RULE_DENY && !d.rule,
		   "%s neither allows nor reviews host.sbx.internal", wild[i]);
		ok(decide(p, NULL, "host.sbx.internal", 0, &d) == SBX_RULE_DENY, "  nor its name");
		sbx_policy_free(p);
	}
	struct sbx_rule addr = A("127.0.0.0/8");
	struct sbx_policy *p = build(&addr, 1);
	struct sbx_target t = {.host = "host.sbx.internal", .family = AF_INET, .addr = {127, 0, 0, 1}, .port = 8080};
	ok(decide_t(p, &t, &d) == SBX_RULE_DENY, "an address rule does not open host.sbx.internal");
	ok(has(d.reason, "wildcards never open it"), "the reason says how to open it");
	sbx_policy_free(p);

	struct sbx_rule ex[] = {A("host.sbx.internal:8080"), V("**")};
	p = build(ex, 2);
	ok(decide(p, NULL, "host.sbx.internal", 8080, &d) == SBX_RULE_ALLOW, "an exact rule with the port opens it");
	ok(decide(p, NULL, "host.sbx.internal", 9090, &d) == SBX_RULE_DENY, "  only on that port");
	ok(decide(p, NULL, "HOST.sbx.internal.", 8080, &d) == SBX_RULE_ALLOW, "  whatever the case");
	ok(decide(p, NULL, "x.host.sbx.internal", 8080, &d) == SBX_RULE_REVIEW, "other names under it are ordinary");
	sbx_policy_free(p);

	struct sbx_rule ex2[] = {A("host.sbx.internal"), D("**.internal")};
	p = build(ex2, 2);
	ok(decide(p, NULL, "host.sbx.internal", 8080, &d) == SBX_RULE_DENY, "a wildcard deny still applies");
	sbx_policy_free(p);
	struct sbx_rule ex3[] = {A("host.sbx.internal"), D("**:8080")};
	p = build(ex3, 2);
	ok(decide(p, NULL, "host.sbx.internal", 8080, &d) == SBX_RULE_DENY, "a ** deny still applies");
	ok(decide(p, NULL, "host.sbx.internal", 3000, &d) == SBX_RULE_ALLOW, "  on its port only");
	sbx_policy_free(p);
}

struct glob_case {
	const char *glob, *path;
	bool match;
};

static void test_globs(void)
{
	static const struct glob_case cases[] = {
		{"/v1/*", "/v1/abc", true},
		{"/v1/*", "/v1/", true},
		{"/v1/*", "/v1/a/b", false},
		{"/v1/*", "/v1", false},
		{"/v1/**", "/v1/a/b/c", true},
		{"/v1/**", "/v1/", true},
		{"/v1/**", "/v1", false},
		{"/v1/**", "/v10/x", false},
		{"/**", "/", true},
		{"/**", "/anything/at/all", true},
		{"/a?c", "/abc", true},
		{"/a?c", "/a/c", false},
		{"/a?c", "/ac", false},
		{"/a?c", "/abbc", false},
		{"/repos/*/*/pulls", "/repos/o/r/pulls", true},
		{"/repos/*/*/pulls", "/repos/o/r/x/pulls", false},
		{"/repos/*/*/pulls", "/repos/o//pulls", true},
		{"/**/x", "/a/b/x", true},
		{"/**/x", "/x", false},
		{"/**/x", "//x", true},
		{"/*.json", "/a.json", true},
		{"/*.json", "/a/b.json", false},
		{"/*.json", "/.json", true},
		{"/a*b*c", "/aXbYc", true},
		{"/a*b*c", "/abc", true},
		{"/a*b*c", "/aXb/c", false},
		{"/a*b*c", "/abcbc", true},
		{"/a*b*c", "/abcb", false},
		{"/exact", "/exact", true},
		{"/exact", "/exact/", false},
		{"/exact", "/exac", false},
		{"/v1/**/commits", "/v1/a/b/commits", true},
		{"/v1/**/commits", "/v1/commits", false},
		{"/v1/**/commits", "/v1/a/commits/x", false},
		{"/*/**", "/a", false},
		{"/*/**", "/a/", true},
		{"/*", "/%2F", true},
		{"/**.git/info/refs", "/org/repo.git/info/refs", true},
		{"/*.git/info/refs", "/org/repo.git/info/refs", false},
	};
	struct sbx_decision d;

	for (size_t i = 0; i < SBX_ARRAY_LEN(cases); i++) {
		struct sbx_rule r = rule(SBX_RULE_ALLOW, "g.com", NULL, cases[i].glob, NULL);
		struct sbx_policy *p = build(&r, 1);
		bool got = decide_req(p, "g.com", 443, "GET", cases[i].path, &d) == SBX_RULE_ALLOW;
		ok(got == cases[i].match, "glob %s %s %s", cases[i].glob, cases[i].match ? "matches" : "does not match",
		   cases[i].path);
		sbx_policy_free(p);
	}

	/* long inputs stay linear in practice and correct */
	static char path[20001];
	path[0] = '/';
	memset(path + 1, 'a', sizeof(path) - 2);
	path[sizeof(path) - 1] = '\0';
	struct sbx_rule r = rule(SBX_RULE_ALLOW, "g.com", NULL, "/*a*a*a*a*a*a*a*a*a*a*b", NULL);
	struct sbx_policy *p = build(&r, 1);
	uint64_t t0 = sbx_monotonic_ns();
	ok(decide_req(p, "g.com", 443, "GET", path, &d) == SBX_RULE_DENY, "a pathological glob on 20000 characters: no");
	diag("pathological glob: %.2f ms", (double)(sbx_monotonic_ns() - t0) / 1e6);
	path[sizeof(path) - 2] = 'b';
	ok(decide_req(p, "g.com", 443, "GET", path, &d) == SBX_RULE_ALLOW, "  and yes when it ends in b");
	sbx_policy_free(p);
}

/* The compiled policy owns its rules; the reported rule stays valid after the array goes. */
static void test_ownership(void)
{
	struct sbx_rule *rs = calloc(3, sizeof(*rs));
	struct sbx_decision d;
	char buf[200];

	rs[0] = A("a.example.com");
	rs[1] = D("**.bad.com");
	rs[2] = rule(SBX_RULE_ALLOW, "**", "GET", "/pub/**", "box");
	struct sbx_policy *p = build(rs, 3);
	memset(rs, 0xff, 3 * sizeof(*rs));
	free(rs);
	ok(decide(p, NULL, "a.example.com", 443, &d) == SBX_RULE_ALLOW && d.rule, "decides after the array is freed");
	sbx_rule_describe(d.rule, buf, sizeof(buf));
	is_str(buf, "allow a.example.com", "  the rule is the policy's copy");
	ok(decide(p, NULL, "x.bad.com", 443, &d) == SBX_RULE_DENY && d.rule, "  deny too");
	ok(decide_req(p, "z.org", 80, "GET", "/pub/x", &d) == SBX_RULE_DENY, "  a sandbox rule does not apply globally");
	struct sbx_target t = {.sandbox = "box", .host = "z.org", .port = 80, .method = "GET", .path = "/pub/x"};
	ok(decide_t(p, &t, &d) == SBX_RULE_ALLOW, "  and does to its sandbox");
	sbx_policy_free(p);

	/* garbage rules never make the policy unsafe */
	struct sbx_rule junk[2];
	memset(junk, 0x41, sizeof(junk));
	junk[1].kind = SBX_RULE_DENY;
	junk[1].res.type = SBX_RES_ADDR;
	junk[1].res.family = AF_INET;
	junk[1].res.prefix = 99;
	p = build(junk, 2);
	ok(decide(p, NULL, "example.com", 443, &d) == SBX_RULE_DENY, "unvalidated garbage builds and matches nothing");
	sbx_policy_free(p);
	sbx_policy_free(NULL);
}

/* Hundreds of rules: the decision must stay well under the budget of a connection. */
static void test_speed(void)
{
	enum { N = 500, ROUNDS = 200000 };
	struct sbx_rule *rs = calloc(N, sizeof(*rs));
	struct sbx_decision d;
	char res[128];
	size_t n = 0;

	for (int i = 0; i < 300; i++) {
		snprintf(res, sizeof(res), "svc%d.example%d.com%s", i, i % 17, i % 3 ? "" : ":443");
		rs[n++] = A(res);
	}
	for (int i = 0; i < 100; i++) {
		snprintf(res, sizeof(res), "%s.zone%d.net", i % 2 ? "*" : "**", i);
		rs[n++] = i % 5 ? A(res) : D(res);
	}
	for (int i = 0; i < 60; i++) {
		snprintf(res, sizeof(res), "10.%d.0.0/16", i);
		rs[n++] = D(res);
	}
	for (int i = 0; i < 30; i++) {
		snprintf(res, sizeof(res), "api%d.example.org", i);
		rs[n++] = rule(SBX_RULE_ALLOW, res, "GET", "/v1/**", i % 2 ? "box" : NULL);
	}
	while (n < N) {
		snprintf(res, sizeof(res), "extra%zu.example.io", n);
		rs[n] = rule(SBX_RULE_DENY, res, NULL, NULL, "box");
		n++;
	}
	uint64_t t0 = sbx_monotonic_ns();
	struct sbx_policy *p = build(rs, n);
	uint64_t built = sbx_monotonic_ns() - t0;
	free(rs);

	static const char *const hosts[] = {"svc42.example8.com", "a.zone7.net",      "a.b.zone8.net", "nowhere.example",
					    "deep.a.b.c.d.e.f.g.example.com", "api3.example.org", "10.7.1.1",  "x.zone5.net"};
	ok(decide(p, NULL, "svc42.example8.com", 443, &d) == SBX_RULE_ALLOW, "500 rules: an exact host");
	ok(decide(p, NULL, "a.zone7.net", 443, &d) == SBX_RULE_ALLOW, "500 rules: a *. host");
	ok(decide(p, NULL, "a.b.zone8.net", 443, &d) == SBX_RULE_ALLOW, "500 rules: a **. host");
	ok(decide(p, NULL, "a.b.zone7.net", 443, &d) == SBX_RULE_DENY, "500 rules: *. is one label only");
	ok(decide(p, NULL, "x.zone5.net", 443, &d) == SBX_RULE_DENY, "500 rules: a deny");
	ok(decide(p, NULL, "10.7.1.1", 443, &d) == SBX_RULE_DENY && d.rule, "500 rules: an address deny");
	ok(decide(p, NULL, "api4.example.org", 443, &d) == SBX_RULE_ALLOW && d.http_rules, "500 rules: an HTTP rule");
	ok(decide(p, NULL, "api3.example.org", 443, &d) == SBX_RULE_DENY, "500 rules: a sandbox HTTP rule elsewhere");
	ok(decide(p, "box", "extra499.example.io", 443, &d) == SBX_RULE_DENY && d.rule, "500 rules: a sandbox deny");
	ok(decide(p, NULL, "extra499.example.io", 443, &d) == SBX_RULE_DENY && !d.rule, "  only in its sandbox");

	t0 = sbx_monotonic_ns();
	unsigned allowed = 0;
	for (int i = 0; i < ROUNDS; i++) {
		const char *h = hosts[i % SBX_ARRAY_LEN(hosts)];
		allowed += decide(p, "box", h, 443, &d) == SBX_RULE_ALLOW;
	}
	uint64_t spent = sbx_monotonic_ns() - t0;
	diag("policy of %d rules: built in %.1f us; %.0f ns per decision (%u of %d allowed)", N, (double)built / 1e3,
	     (double)spent / ROUNDS, allowed, ROUNDS);
	sbx_policy_free(p);
}

/* ---- presets and storage ---- */

static void test_presets(void)
{
	size_t n, m;
	const char *const *b = sbx_preset_resources("balanced", &n);
	bool all = true, normal = true, unique = true;

	ok(b != NULL && n >= 80 && n <= 150, "the balanced preset has %zu resources", n);
	for (size_t i = 0; b && i < n; i++) {
		struct sbx_resource r;
		if (sbx_resource_parse(b[i], &r, E) < 0) {
			all = false;
			diag("balanced: %s", err.msg);
			continue;
		}
		if (strcmp(r.text, b[i]) != 0) {
			normal = false;
			diag("balanced: %s is written as %s", r.text, b[i]);
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(b[i], b[j]) == 0) {
				unique = false;
				diag("balanced: %s twice", b[i]);
			}
	}
	ok(all, "every balanced resource parses");
	ok(normal, "every balanced resource is written in normal form");
	ok(unique, "no balanced resource is listed twice");
	static const char *const must[] = {
		"api.anthropic.com", "claude.ai", "statsig.anthropic.com", "api.openai.com", "chatgpt.com",
		"generativelanguage.googleapis.com", "api.groq.com", "api.mistral.ai", "openrouter.ai", "api.x.ai",
		"api.together.xyz", "api.deepseek.com", "registry.npmjs.org", "registry.yarnpkg.com", "pypi.org",
		"files.pythonhosted.org", "crates.io", "static.crates.io", "index.crates.io", "proxy.golang.org",
		"sum.golang.org", "rubygems.org", "repo.maven.apache.org", "repo1.maven.org", "plugins.gradle.org",
		"services.gradle.org", "nuget.org", "api.nuget.org", "packagist.org", "repo.packagist.org", "hex.pm",
		"github.com", "api.github.com", "codeload.github.com", "objects.githubusercontent.com",
		"raw.githubusercontent.com", "*.githubusercontent.com", "gitlab.com", "bitbucket.org",
		"registry-1.docker.io", "auth.docker.io", "production.cloudflare.docker.com", "ghcr.io", "quay.io",
		"gcr.io", "**.gcr.io", "public.ecr.aws", "mcr.microsoft.com", "**.amazonaws.com", "**.googleapis.com",
		"management.azure.com", "login.microsoftonline.com", "deb.debian.org", "security.debian.org",
		"archive.ubuntu.com", "security.ubuntu.com", "dl-cdn.alpinelinux.org", "mirrors.fedoraproject.org",
		"ocsp.digicert.com", "crl3.digicert.com", "crl4.digicert.com", "ocsp.pki.goog", "r3.o.lencr.org",
		"x1.c.lencr.org", "ocsp.sectigo.com"};
	bool present = true;
	for (size_t i = 0; i < SBX_ARRAY_LEN(must); i++) {
		bool f = false;
		for (size_t j = 0; b && j < n && !f; j++)
			f = strcmp(b[j], must[i]) == 0;
		if (!f) {
			present = false;
			diag("balanced lacks %s", must[i]);
		}
	}
	ok(present, "the balanced preset has every host the design names");
	b = sbx_preset_resources("allow-all", &n);
	ok(b && n == 1 && strcmp(b[0], "**") == 0, "allow-all is **");
	ok(sbx_preset_resources("deny-all", &m) != NULL && m == 0, "deny-all is known and empty");
	ok(sbx_preset_resources("lenient", &m) == NULL && sbx_preset_resources(NULL, &m) == NULL, "unknown presets");
}

static int count_rows(struct sbx_store *s, const char *where)
{
	char sql[256];
	sqlite3_stmt *st;
	int n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM rules WHERE %s", where);
	if (sqlite3_prepare_v2(sbx_store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

static const struct sbx_rule *find(const struct sbx_rule *v, size_t n, const char *kind, const char *res,
				   const char *method, const char *sandbox)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(sbx_rule_kind_name(v[i].kind), kind) == 0 && strcmp(v[i].res.text, res) == 0 &&
		    strcmp(v[i].method, method) == 0 && strcmp(v[i].sandbox, sandbox) == 0)
			return &v[i];
	return NULL;
}

static void test_storage(void)
{
	char dir[] = "/tmp/sbx-test-policy-XXXXXX", path[256], preset[64];
	struct sbx_store *s = NULL;
	struct sbx_rule r, *v = NULL;
	size_t n = 0, nb;
	bool existed = true;
	int removed = -1;

	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp: %m");
		return;
	}
	snprintf(path, sizeof(path), "%s/sbx.db", dir);
	if (!ok(sbx_store_open(path, &s, E) == 0, "a fresh state database opens")) {
		diag("%s", err.msg);
		return;
	}
	ok(sbx_policy_preset_get(s, preset, sizeof(preset)) == 0 && preset[0] == '\0', "no preset recorded at first");

	r = (struct sbx_rule){.kind = SBX_RULE_ALLOW};
	sbx_strlcpy(r.res.text, "Example.COM", sizeof(r.res.text));
	ok(sbx_rules_add(s, &r, &existed, E) == 0 && r.id > 0 && !existed && r.created_at > 0, "add a rule");
	int64_t first = r.id;
	r = (struct sbx_rule){.kind = SBX_RULE_ALLOW};
	sbx_strlcpy(r.res.text, "example.com.", sizeof(r.res.text));
	ok(sbx_rules_add(s, &r, &existed, E) == 0 && existed && r.id == first && strcmp(r.source, "user") == 0,
	   "adding the same rule again reports it as existing, with its id");
	ok(count_rows(s, "1") == 1, "  and adds nothing");
	r = (struct sbx_rule){.kind = SBX_RULE_DENY};
	sbx_strlcpy(r.res.text, "example.com", sizeof(r.res.text));
	ok(sbx_rules_add(s, &r, &existed, E) == 0 && !existed && r.id != first, "another kind is another rule");
	r = rule(SBX_RULE_ALLOW, "example.com", "get", "/x/**", NULL);
	ok(sbx_rules_add(s, &r, NULL, E) == 0, "an HTTP rule on the same resource is another rule");
	r = (struct sbx_rule){.kind = SBX_RULE_REVIEW, .approvals = 2, .timeout_ms = 30000};
	sbx_strlcpy(r.res.text, "**.api.example.com:443", sizeof(r.res.text));
	sbx_strlcpy(r.sandbox, "s1", sizeof(r.sandbox));
	sbx_strlcpy(r.method, "POST", sizeof(r.method));
	ok(sbx_rules_add(s, &r, &existed, E) == 0 && !existed, "a sandbox review rule");
	r = (struct sbx_rule){.kind = SBX_RULE_REVIEW, .approvals = 1};
	sbx_strlcpy(r.res.text, "**.api.example.com:443", sizeof(r.res.text));
	sbx_strlcpy(r.sandbox, "s1", sizeof(r.sandbox));
	sbx_strlcpy(r.method, "POST", sizeof(r.method));
	ok(sbx_rules_add(s, &r, &existed, E) == 0 && existed && r.approvals == 2 && r.timeout_ms == 30000,
	   "an existing rule is left alone and reported as stored");
	r = (struct sbx_rule){.kind = SBX_RULE_ALLOW};
	sbx_strlcpy(r.res.text, "bad host", sizeof(r.res.text));
	ok(sbx_rules_add(s, &r, &existed, E) < 0 && err.code == SBX_E_INVALID && count_rows(s, "1") == 4,
	   "an invalid rule is refused and not stored");

	ok(sbx_rules_load(s, &v, &n, E) == 0 && n == 4, "load returns every rule");
	const struct sbx_rule *g = v ? find(v, n, "allow", "example.com", "GET", "") : NULL;
	ok(g && strcmp(g->path, "/x/**") == 0 && g->approvals == 1 && strcmp(g->source, "user") == 0,
	   "an HTTP rule round-trips");
	const struct sbx_rule *rv = v ? find(v, n, "review", "**.api.example.com:443", "POST", "s1") : NULL;
	ok(rv && rv->approvals == 2 && rv->timeout_ms == 30000 && rv->res.type == SBX_RES_ANY_DEPTH &&
		   rv->res.port == 443 && strcmp(rv->res.host, "api.example.com") == 0,
	   "a review rule round-trips, its resource parsed back");
	ok(n == 4 && v[0].id == first && v[0].id < v[1].id && v[1].id < v[2].id, "rules load in id order");
	free(v);
	v = NULL;

	/* removal */
	struct sbx_rule pat = {.kind = SBX_RULE_DENY};
	sbx_strlcpy(pat.res.text, "EXAMPLE.com", sizeof(pat.res.text));
	ok(sbx_rules_remove_match(s, &pat, &removed, E) == 0 && removed == 1 && count_rows(s, "kind = 'deny'") == 0,
	   "remove_match removes the rule of that kind");
	pat.kind = SBX_RULE_REVIEW;
	ok(sbx_rules_remove_match(s, &pat, &removed, E) == 0 && removed == 0, "a pattern matching nothing removes 0");
	r = (struct sbx_rule){.kind = SBX_RULE_DENY};
	sbx_strlcpy(r.res.text, "example.com", sizeof(r.res.text));
	sbx_rules_add(s, &r, NULL, E);
	ok(sbx_rules_remove_where(s, &pat, true, &removed, E) == 0 && removed == 2 &&
		   count_rows(s, "resource = 'example.com' AND method = ''") == 0 &&
		   count_rows(s, "resource = 'example.com' AND method = 'GET'") == 1,
	   "any kind: allow and deny go, the rule with a method stays");
	sbx_strlcpy(pat.method, "get", sizeof(pat.method));
	sbx_strlcpy(pat.path, "/x/**", sizeof(pat.path));
	ok(sbx_rules_remove_where(s, &pat, true, &removed, E) == 0 && removed == 1, "method and path must match");
	pat = (struct sbx_rule){.kind = SBX_RULE_REVIEW};
	sbx_strlcpy(pat.res.text, "**.api.example.com:443", sizeof(pat.res.text));
	sbx_strlcpy(pat.method, "POST", sizeof(pat.method));
	ok(sbx_rules_remove_where(s, &pat, true, &removed, E) == 0 && removed == 0,
	   "a global pattern does not remove a sandbox rule");
	sbx_strlcpy(pat.sandbox, "s1", sizeof(pat.sandbox));
	ok(sbx_rules_remove_where(s, &pat, false, &removed, E) == 0 && removed == 1, "  the sandbox's pattern does");
	sbx_strlcpy(pat.res.text, "exa mple", sizeof(pat.res.text));
	ok(sbx_rules_remove_where(s, &pat, true, &removed, E) < 0 && has(err.msg, "not a host name"),
	   "an invalid pattern is an error");
	ok(count_rows(s, "1") == 0, "all gone");
	r = (struct sbx_rule){.kind = SBX_RULE_ALLOW};
	sbx_strlcpy(r.res.text, "byid.com", sizeof(r.res.text));
	sbx_rules_add(s, &r, NULL, E);
	ok(sbx_rules_remove_id(s, r.id, E) == 0 && count_rows(s, "1") == 0, "remove by id");
	ok(sbx_rules_remove_id(s, r.id, E) < 0 && err.code == SBX_E_NOTFOUND, "removing it again: not found");

	/* presets */
	ok(sbx_preset_apply(s, "nope", E) < 0 && err.code == SBX_E_INVALID && has(err.msg, "balanced"),
	   "an unknown preset is refused, naming the known ones");
	r = (struct sbx_rule){.kind = SBX_RULE_ALLOW};
	sbx_strlcpy(r.res.text, "mine.com", sizeof(r.res.text));
	sbx_rules_add(s, &r, NULL, E);
	r = (struct sbx_rule){.kind = SBX_RULE_DENY};
	sbx_strlcpy(r.res.text, "mine.com", sizeof(r.res.text));
	sbx_strlcpy(r.sandbox, "s1", sizeof(r.sandbox));
	sbx_rules_add(s, &r, NULL, E);
	sbx_preset_resources("balanced", &nb);
	ok(sbx_preset_apply(s, "balanced", E) == 0, "apply balanced");
	ok(sbx_policy_preset_get(s, preset, sizeof(preset)) == 1 && strcmp(preset, "balanced") == 0,
	   "  the preset is recorded");
	ok(count_rows(s, "sandbox = ''") == (int)nb && count_rows(s, "source = 'preset:balanced'") == (int)nb,
	   "  the global rules are the preset's");
	ok(count_rows(s, "sandbox = 's1'") == 1, "  sandbox rules stay");

	ok(sbx_rules_load(s, &v, &n, E) == 0 && n == nb + 1, "the balanced rules load");
	struct sbx_policy *p = build(v, n);
	free(v);
	v = NULL;
	struct sbx_decision d;
	ok(decide(p, NULL, "api.anthropic.com", 443, &d) == SBX_RULE_ALLOW, "balanced allows api.anthropic.com");
	ok(decide(p, NULL, "registry.npmjs.org", 443, &d) == SBX_RULE_ALLOW, "balanced allows registry.npmjs.org");
	ok(decide(p, NULL, "eu.gcr.io", 443, &d) == SBX_RULE_ALLOW, "balanced allows eu.gcr.io");
	ok(decide(p, NULL, "s3.us-east-1.amazonaws.com", 443, &d) == SBX_RULE_ALLOW, "balanced allows S3");
	ok(decide(p, NULL, "evil.example", 443, &d) == SBX_RULE_DENY, "balanced denies the rest");
	ok(decide(p, "s1", "mine.com", 443, &d) == SBX_RULE_DENY, "  and the sandbox rule is in force");
	ok(decide(p, NULL, "host.sbx.internal", 8080, &d) == SBX_RULE_DENY, "balanced does not open the host");
	sbx_policy_free(p);

	ok(sbx_preset_apply(s, "deny-all", E) == 0 && count_rows(s, "sandbox = ''") == 0 &&
		   sbx_policy_preset_get(s, preset, sizeof(preset)) == 1 && strcmp(preset, "deny-all") == 0,
	   "deny-all leaves no global rule, and is recorded");

	/* reset */
	r = (struct sbx_rule){.kind = SBX_RULE_ALLOW};
	sbx_strlcpy(r.res.text, "user.com", sizeof(r.res.text));
	sbx_rules_add(s, &r, NULL, E);
	ok(sbx_rules_reset(s, "s1", E) == 0 && count_rows(s, "sandbox = 's1'") == 0 && count_rows(s, "sandbox = ''") == 1,
	   "reset of a sandbox removes its rules only");
	r = (struct sbx_rule){.kind = SBX_RULE_ALLOW};
	sbx_strlcpy(r.res.text, "s2.com", sizeof(r.res.text));
	sbx_strlcpy(r.sandbox, "s2", sizeof(r.sandbox));
	sbx_rules_add(s, &r, NULL, E);
	ok(sbx_rules_reset(s, NULL, E) == 0 && count_rows(s, "1") == 0, "reset of everything restores deny-all: empty");
	ok(sbx_preset_apply(s, "allow-all", E) == 0, "apply allow-all");
	sbx_rules_add(s, &r, NULL, E);
	r = (struct sbx_rule){.kind = SBX_RULE_DENY};
	sbx_strlcpy(r.res.text, "user.com", sizeof(r.res.text));
	sbx_rules_add(s, &r, NULL, E);
	ok(sbx_rules_reset(s, "", E) == 0 && count_rows(s, "sandbox = ''") == 1 &&
		   count_rows(s, "resource = '**' AND source = 'preset:allow-all'") == 1 &&
		   count_rows(s, "sandbox = 's2'") == 1,
	   "reset of the global rules restores allow-all, sandbox rules stay");
	ok(sbx_rules_reset(s, NULL, E) == 0 && count_rows(s, "1") == 1, "reset of everything: just **");

	/* review exemptions: the action is stored and loaded, and is part of the rule's identity */
	{
		struct sbx_rule e1 = exemption("api.x.com:443", "POST", "/", "box", "DeleteStack"), e2 = e1;
		struct sbx_rule *w = NULL;
		size_t m = 0, found = 0;
		sbx_strlcpy(e2.action, "DeleteBucket", sizeof(e2.action));
		ok(sbx_rules_add(s, &e1, &existed, E) == 0 && !existed && sbx_rules_add(s, &e2, &existed, E) == 0 && !existed,
		   "two exemptions differing only in their action are two rules");
		ok(sbx_rules_add(s, &e1, &existed, E) == 0 && existed, "the same exemption again is the stored one");
		ok(sbx_rules_load(s, &w, &m, E) == 0, "rules with actions load");
		for (size_t i = 0; i < m; i++)
			found += strcmp(w[i].action, "DeleteStack") == 0 || strcmp(w[i].action, "DeleteBucket") == 0;
		ok(found == 2, "  with their actions");
		free(w);
		ok(sbx_rules_reset(s, NULL, E) == 0 && count_rows(s, "action != ''") == 0, "reset removes exemptions too");
	}

	/* a row that no longer parses fails the load, naming it */
	sqlite3_exec(sbx_store_db(s),
		     "INSERT INTO rules (kind, resource, created_at) VALUES ('deny', 'not valid', 1)", NULL, NULL, NULL);
	ok(sbx_rules_load(s, &v, &n, E) < 0 && has(err.msg, "in the state database") && has(err.msg, "not a host name") &&
		   v == NULL,
	   "a stored rule that does not parse fails the load");
	diag("%s", err.msg);
	sbx_store_close(s);

	/* a database whose preset was never recorded resets to balanced */
	snprintf(path, sizeof(path), "%s/fresh.db", dir);
	s = NULL;
	ok(sbx_store_open(path, &s, E) == 0 && sbx_rules_reset(s, NULL, E) == 0 &&
		   sbx_policy_preset_get(s, preset, sizeof(preset)) == 1 && strcmp(preset, "balanced") == 0 &&
		   count_rows(s, "1") == (int)nb,
	   "reset without a recorded preset applies balanced");
	sbx_store_close(s);
	sbx_rm_rf(dir);
}

int main(void)
{
	test_resource_forms();
	test_resource_errors();
	test_resource_list();
	test_rule_validate();
	test_matching_table();
	test_precedence();
	test_scopes();
	test_http_levels();
	test_dns_question();
	test_special_host();
	test_globs();
	test_exemptions();
	test_ownership();
	test_speed();
	test_presets();
	test_storage();
	return done_testing();
}
