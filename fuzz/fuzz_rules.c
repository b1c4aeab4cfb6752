// FUZZ_SOURCES: src/daemon/policy.c src/common/util.c src/common/err.c
/* fuzz_rules.c - libFuzzer target for the policy's parsers and matcher (src/daemon/policy.c).
 *
 * One input is used three ways:
 *   1. as a comma-separated resource list (sbx_resources_parse_list) and as one resource;
 *   2. split at '\n' into fields: KIND, RESOURCE, METHOD, PATH, SANDBOX, HOST, PORT, REQMETHOD,
 *      REQPATH. The first five make a rule for sbx_rule_validate; a valid rule joins a small
 *      fixed policy, which then decides the target made of the last four (at connection level,
 *      at request level and as a DNS question), whatever bytes they hold;
 *   3. the unvalidated rule goes into a policy too: build must stay safe with anything.
 * Beyond memory safety it checks the parser's promises with abort():
 *   - a parsed resource's text is normal: it parses back to the very same resource, and its
 *     fields are consistent (lowercase names without '*', address host bits zero, ranges);
 *   - an allow of a resource allows a target it names (the host, a name under a wildcard, the
 *     address), a deny of it denies that target under `**`, and a wildcard never covers its apex;
 *   - a decision is well formed (a kind, a terminated reason, a rule unless default deny), a
 *     connection denied stays denied for any request on it, and without HTTP rules for the
 *     target the request's answer is the connection's. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "daemon/policy.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Longer inputs add nothing but time (the path glob costs pattern x path). */
#define MAX_INPUT 4096

static bool terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

static void check_decision(const struct sbx_decision *d)
{
	CHECK(d->kind == SBX_RULE_ALLOW || d->kind == SBX_RULE_DENY || d->kind == SBX_RULE_REVIEW);
	CHECK(terminated(d->reason, sizeof(d->reason)) && d->reason[0]);
	CHECK(d->rule || d->kind == SBX_RULE_DENY);
	if (d->rule) {
		char buf[1024];
		CHECK(terminated(d->rule->res.text, sizeof(d->rule->res.text)));
		sbx_rule_describe(d->rule, buf, sizeof(buf));
		CHECK(strncmp(buf, sbx_rule_kind_name(d->rule->kind), strlen(sbx_rule_kind_name(d->rule->kind))) == 0);
	}
}

static enum sbx_rule_kind decide_one(const struct sbx_rule *r, size_t n, const struct sbx_target *t)
{
	struct sbx_policy *p = sbx_policy_build(r, n);
	struct sbx_decision d;

	CHECK(p);
	sbx_policy_decide(p, t, &d);
	check_decision(&d);
	sbx_policy_free(p);
	return d.kind;
}

/* The semantic promise of one parsed resource: allow X allows a target X names, deny X under
 * allow ** denies it, and a wildcard does not reach its apex. */
static void check_semantics(const struct sbx_resource *r)
{
	struct sbx_rule rules[2] = {{.kind = SBX_RULE_ALLOW}, {.kind = SBX_RULE_DENY}};
	struct sbx_target t = {.port = r->port ? r->port : 443};
	char host[300];
	bool apex = r->type == SBX_RES_ONE_LABEL || r->type == SBX_RES_ANY_DEPTH;

	switch (r->type) {
	case SBX_RES_ANY: snprintf(host, sizeof(host), "example.com"); break;
	case SBX_RES_EXACT: snprintf(host, sizeof(host), "%s", r->host); break;
	case SBX_RES_ONE_LABEL:
		if (strlen(r->host) + 2 > 253)
			return;
		snprintf(host, sizeof(host), "x.%s", r->host);
		break;
	case SBX_RES_ANY_DEPTH:
		if (strlen(r->host) + 4 > 253)
			return;
		snprintf(host, sizeof(host), "a.b.%s", r->host);
		break;
	case SBX_RES_ADDR:
		t.family = r->family;
		memcpy(t.addr, r->addr, sizeof(t.addr));
		break;
	}
	if (r->type != SBX_RES_ADDR)
		t.host = host;
	if (strcmp(host, "host.sbx.internal") == 0 && r->type == SBX_RES_ANY)
		return;
	rules[0].res = *r;
	CHECK(decide_one(rules, 1, &t) == SBX_RULE_ALLOW);
	uint16_t port = t.port;
	t.port = 0; /* the DNS question */
	CHECK(decide_one(rules, 1, &t) == SBX_RULE_ALLOW);
	t.port = port;
	CHECK(sbx_resource_parse("**", &rules[0].res, NULL) == 0);
	rules[1].res = *r;
	CHECK(decide_one(rules, 2, &t) == SBX_RULE_DENY);
	if (apex) {
		rules[0].res = *r;
		t.host = r->host;
		CHECK(decide_one(rules, 1, &t) == SBX_RULE_DENY);
	}
}

static void check_resource(const struct sbx_resource *r)
{
	struct sbx_resource again;
	sbx_err err = SBX_ERR_INIT;

	CHECK(terminated(r->text, sizeof(r->text)) && r->text[0]);
	CHECK(terminated(r->host, sizeof(r->host)));
	CHECK(sbx_resource_parse(r->text, &again, &err) == 0);
	CHECK(strcmp(again.text, r->text) == 0 && again.type == r->type && again.port == r->port &&
	      strcmp(again.host, r->host) == 0 && again.family == r->family && again.prefix == r->prefix &&
	      memcmp(again.addr, r->addr, sizeof(r->addr)) == 0);
	if (r->type == SBX_RES_ADDR) {
		int bits = r->family == AF_INET ? 32 : 128;
		CHECK(r->family == AF_INET || r->family == AF_INET6);
		CHECK(r->prefix >= 0 && r->prefix <= bits);
		for (int b = r->prefix; b < bits; b++)
			CHECK(!(r->addr[b / 8] & (0x80 >> (b % 8))));
	} else {
		CHECK(r->family == 0);
		CHECK(strlen(r->host) <= 253);
		CHECK((r->type == SBX_RES_ANY) == (r->host[0] == '\0'));
		for (const char *c = r->host; *c; c++)
			CHECK((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.');
	}
	check_semantics(r);
}

/* Splits s in place at '\n' into up to n fields; missing fields are "". */
static void split(char *s, char **f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		f[i] = s;
		char *nl = s ? strchr(s, '\n') : NULL;
		if (nl) {
			*nl = '\0';
			s = nl + 1;
		} else {
			s = NULL;
		}
		if (!f[i])
			f[i] = "";
	}
}

static void check_rule(char **f)
{
	struct sbx_rule r = {0}, fixed[6];
	sbx_err err = SBX_ERR_INIT;
	enum sbx_rule_kind kind = SBX_RULE_ALLOW;
	char buf[1024];
	int64_t port = 443;

	if (sbx_rule_kind_parse(f[0], &kind) < 0)
		kind = (enum sbx_rule_kind)(f[0][0] % 3);
	r.kind = kind;
	sbx_strlcpy(r.res.text, f[1], sizeof(r.res.text));
	sbx_strlcpy(r.method, f[2], sizeof(r.method));
	sbx_strlcpy(r.path, f[3], sizeof(r.path));
	sbx_strlcpy(r.sandbox, f[4], sizeof(r.sandbox));
	sbx_parse_i64(f[6], 0, 65535, &port);

	/* unvalidated: build and decide must cope */
	struct sbx_rule raw = r;
	sbx_strlcpy(raw.res.host, f[1], sizeof(raw.res.host));
	raw.res.type = (enum sbx_res_type)((unsigned char)f[1][0] % 5);
	struct sbx_target t0 = {.sandbox = f[4], .host = f[5], .port = (uint16_t)port};
	decide_one(&raw, 1, &t0);

	if (sbx_rule_validate(&r, &err) < 0) {
		CHECK(err.code == SBX_E_INVALID && err.msg[0] && terminated(err.msg, sizeof(err.msg)));
		return;
	}
	check_resource(&r.res);
	CHECK(r.approvals == 1 && r.source[0]);
	CHECK(!((r.method[0] || r.path[0]) && r.res.type == SBX_RES_ADDR));
	CHECK(r.path[0] == '\0' || r.path[0] == '/');
	for (const char *m = r.method; *m; m++)
		CHECK(!(*m >= 'a' && *m <= 'z'));
	sbx_rule_describe(&r, buf, sizeof(buf));
	CHECK(strstr(buf, r.res.text) != NULL);
	sbx_rule_describe(&r, buf, 5);
	CHECK(strlen(buf) <= 4);

	/* the rule in a small policy, deciding a target made of the other fields */
	static const char *const base[][4] = {
		{"allow", "**.example.com", "", ""}, {"deny", "10.0.0.0/8", "", ""},
		{"review", "api.example.com", "DELETE", ""}, {"allow", "**", "", "/pub/**"},
		{"allow", "host.sbx.internal:8080", "", ""},
	};
	size_t n = 0;
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		struct sbx_rule *b = &fixed[n++];
		memset(b, 0, sizeof(*b));
		CHECK(sbx_rule_kind_parse(base[i][0], &b->kind) == 0);
		sbx_strlcpy(b->res.text, base[i][1], sizeof(b->res.text));
		sbx_strlcpy(b->method, base[i][2], sizeof(b->method));
		sbx_strlcpy(b->path, base[i][3], sizeof(b->path));
		CHECK(sbx_rule_validate(b, &err) == 0);
	}
	fixed[n++] = r;
	struct sbx_policy *p = sbx_policy_build(fixed, n);
	struct sbx_decision d;
	CHECK(p);
	struct sbx_target t = {.sandbox = f[4], .host = f[5][0] ? f[5] : NULL, .port = (uint16_t)port};
	if (inet_pton(AF_INET, f[5], t.addr) == 1)
		t.family = AF_INET;
	else if (inet_pton(AF_INET6, f[5], t.addr) == 1)
		t.family = AF_INET6;
	sbx_policy_decide(p, &t, &d);
	check_decision(&d);
	enum sbx_rule_kind conn = d.kind;
	bool conn_http = d.http_rules;
	t.port = 0;
	sbx_policy_decide(p, &t, &d);
	check_decision(&d);
	t.port = (uint16_t)port;
	t.method = f[7][0] ? f[7] : "GET";
	t.path = f[8];
	sbx_policy_decide(p, &t, &d);
	check_decision(&d);
	/* a connection-level deny is final: no request on it is let through; and without HTTP
	 * rules for the target, the request's answer is the connection's */
	CHECK(conn != SBX_RULE_DENY || d.kind == SBX_RULE_DENY);
	CHECK(conn_http || d.kind == conn);
	sbx_policy_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sbx_resource out[8], one;
	sbx_err err = SBX_ERR_INIT;
	char *s, *f[9];
	size_t n = 0;

	if (size > MAX_INPUT)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (sbx_resources_parse_list(s, out, sizeof(out) / sizeof(out[0]), &n, &err) == 0) {
		CHECK(n >= 1 && n <= sizeof(out) / sizeof(out[0]));
		for (size_t i = 0; i < n; i++) {
			check_resource(&out[i]);
			for (size_t j = 0; j < i; j++)
				CHECK(strcmp(out[i].text, out[j].text) != 0);
		}
	} else {
		CHECK(err.code == SBX_E_INVALID && err.msg[0] && terminated(err.msg, sizeof(err.msg)));
	}
	if (sbx_resource_parse(s, &one, &err) == 0)
		check_resource(&one);

	split(s, f, sizeof(f) / sizeof(f[0]));
	check_rule(f);
	free(s);
	return 0;
}
