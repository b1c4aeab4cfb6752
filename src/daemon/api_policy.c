/* api_policy.c - /v1/policy: rules, presets, the decision for one destination, and the log.
 *
 * The daemon owns every parse of a rule or a destination (policy.h), so the CLI and any other
 * client get the same answers and the same messages. Requests are checked strictly: unknown
 * fields are refused (a misspelt "sandbox" must not silently widen a rule to every sandbox),
 * strings have length limits, and a list of resources is validated as a whole before anything
 * is written, so a bad item changes nothing. Every change ends with a reload of the policy in
 * force. */
#include "api_policy.h"
#include "api_review.h"

#include "api_check.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "audit.h"
#include "cleanup.h"
#include "policy.h"
#include "util.h"

#define MAX_RESOURCES 64         /* per request */
#define MAX_RESOURCES_TEXT 16384 /* a comma-separated list */
#define MAX_TARGET 2048
#define MAX_CHECK_PATH 1024
#define LOG_MAX_ROWS 2000 /* per response: a record is at most ~2 KiB of JSON */
#define LOG_DEFAULT_ROWS 100
#define MAX_REVIEW_TIMEOUT_MS (24ull * 3600 * 1000)

/* ---- request checking ---- */

/* One value of the query string, percent-decoded: 1 found, 0 absent, -1 bad. */
static int query_get(const char *query, const char *key, char *out, size_t n, sbx_err *err)
{
	size_t klen = strlen(key);

	for (const char *p = query; p && *p;) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t o = 0;
			for (size_t i = klen + 1; i < len; i++) {
				char c = p[i];
				if (c == '+') {
					c = ' ';
				} else if (c == '%') {
					unsigned v;
					if (i + 2 >= len || !isxdigit((unsigned char)p[i + 1]) ||
					    !isxdigit((unsigned char)p[i + 2]) || sscanf(p + i + 1, "%2x", &v) != 1 || v == 0)
						return sbx_err_set(err, SBX_E_INVALID, "bad percent-encoding in the query parameter '%s'",
								   key);
					c = (char)v;
					i += 2;
				}
				if (o + 1 >= n)
					return sbx_err_set(err, SBX_E_INVALID, "the query parameter '%s' is too long", key);
				out[o++] = c;
			}
			out[o] = '\0';
			if (!sbx_api_printable(out))
				return sbx_err_set(err, SBX_E_INVALID, "the query parameter '%s' contains control characters", key);
			return 1;
		}
		p = end ? end + 1 : NULL;
	}
	return 0;
}

static int query_only_keys(const char *query, const char *const *accepted, sbx_err *err)
{
	for (const char *p = query; p && *p;) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t klen = eq ? (size_t)(eq - p) : len;
		bool ok = klen == 0;
		for (size_t i = 0; accepted[i] && !ok; i++)
			ok = strlen(accepted[i]) == klen && strncmp(p, accepted[i], klen) == 0;
		if (!ok)
			return sbx_err_set(err, SBX_E_INVALID, "unknown query parameter '%.*s'", (int)(klen > 64 ? 64 : klen), p);
		p = end ? end + 1 : NULL;
	}
	return 0;
}

/* ---- JSON views ---- */

/* A string for JSON from bytes that may come from a sandbox (host names from SNI, URL paths).
 * A string with control characters or invalid UTF-8 has every byte outside printable ASCII
 * written as \xNN, so neither a JSON parser nor a terminal that shows it later can be steered. */
static json_t *safe_str(const char *s)
{
	if (sbx_api_printable(s)) {
		json_t *v = json_string(s);
		if (v)
			return v;
	}
	char buf[4 * 1024 + 1];
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < sizeof(buf); p++) {
		if (*p >= 0x20 && *p < 0x7f)
			buf[o++] = (char)*p;
		else
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\x%02x", *p);
	}
	buf[o] = '\0';
	return json_string(buf);
}

static const char *res_type_name(enum sbx_res_type t)
{
	switch (t) {
	case SBX_RES_ANY: return "any";
	case SBX_RES_EXACT: return "exact";
	case SBX_RES_ONE_LABEL: return "one-label";
	case SBX_RES_ANY_DEPTH: return "any-depth";
	case SBX_RES_ADDR: return "address";
	}
	return "unknown";
}

static json_t *rule_json(const struct sbx_rule *r)
{
	char desc[1024];
	json_t *o = json_object();

	sbx_rule_describe(r, desc, sizeof(desc));
	json_object_set_new(o, "id", json_integer((json_int_t)r->id));
	json_object_set_new(o, "kind", json_string(sbx_rule_kind_name(r->kind)));
	json_object_set_new(o, "resource", safe_str(r->res.text));
	json_object_set_new(o, "type", json_string(res_type_name(r->res.type)));
	json_object_set_new(o, "port", json_integer(r->res.port));
	json_object_set_new(o, "method", safe_str(r->method));
	json_object_set_new(o, "path", safe_str(r->path));
	json_object_set_new(o, "sandbox", safe_str(r->sandbox));
	json_object_set_new(o, "source", safe_str(r->source));
	json_object_set_new(o, "created_at", json_integer((json_int_t)r->created_at));
	if (r->kind == SBX_RULE_REVIEW) {
		json_object_set_new(o, "approvals", json_integer(r->approvals));
		json_object_set_new(o, "timeout_ms", json_integer((json_int_t)r->timeout_ms));
	}
	if (r->action[0])
		json_object_set_new(o, "action", safe_str(r->action)); /* a review exemption */
	json_object_set_new(o, "description", safe_str(desc));
	return o;
}

/* ---- loading ---- */

struct rules {
	struct sbx_rule *v;
	size_t n;
};

static void rules_free(struct rules *r)
{
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

static int rules_load(struct sbx_daemon *d, struct rules *r, sbx_err *err)
{
	r->v = NULL;
	r->n = 0;
	if (sbx_rules_load(d->store, &r->v, &r->n, err) < 0)
		return sbx_err_wrap(err, "reading the network policy");
	return 0;
}

static int kind_rank(enum sbx_rule_kind k)
{
	return k == SBX_RULE_DENY ? 0 : k == SBX_RULE_REVIEW ? 1 : 2;
}

/* Global rules first, then per sandbox; within a scope deny, review, allow (the order in which
 * they win), the user's own before preset ones, then by resource. */
static int rule_cmp(const void *a, const void *b)
{
	const struct sbx_rule *x = a, *y = b;
	int c;

	if ((c = strcmp(x->sandbox, y->sandbox)) != 0)
		return c;
	if ((c = kind_rank(x->kind) - kind_rank(y->kind)) != 0)
		return c;
	bool xu = strcmp(x->source, "user") == 0, yu = strcmp(y->source, "user") == 0;
	if (xu != yu)
		return xu ? -1 : 1;
	if ((c = strcmp(x->res.text, y->res.text)) != 0)
		return c;
	if ((c = strcmp(x->method, y->method)) != 0)
		return c;
	if ((c = strcmp(x->path, y->path)) != 0)
		return c;
	return x->id < y->id ? -1 : x->id > y->id;
}

static size_t count_scope(const struct rules *r, const char *sandbox /* NULL = every sandbox's, "" = global */)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += sandbox ? strcmp(r->v[i].sandbox, sandbox) == 0 : r->v[i].sandbox[0] != '\0';
	return n;
}

static size_t count_user(const struct rules *r, const char *sandbox)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += strcmp(r->v[i].sandbox, sandbox) == 0 && strcmp(r->v[i].source, "user") == 0;
	return n;
}

static json_t *preset_json(struct sbx_daemon *d, sbx_err *err, bool *set)
{
	char preset[64];
	int r = sbx_daemon_policy_preset(d, preset, sizeof(preset), err);

	if (r < 0)
		return NULL;
	if (set)
		*set = r == 1;
	return r ? json_string(preset) : json_null();
}

/* ---- GET /v1/policy ---- */

static json_t *h_show(struct sbx_daemon *d, const char *query, int *status, sbx_err *err)
{
	static const char *const keys[] = {"sandbox", NULL};
	char sandbox[128];
	struct rules r;
	int has;

	if (query_only_keys(query, keys, err) < 0 || (has = query_get(query, "sandbox", sandbox, sizeof(sandbox), err)) < 0)
		return NULL;
	if (has && sandbox[0] && !sbx_name_valid(sandbox))
		return sbx_api_fail(err, SBX_E_INVALID, "invalid sandbox name '%s'", sandbox);
	json_t *preset = preset_json(d, err, NULL);
	if (!preset)
		return NULL;
	if (rules_load(d, &r, err) < 0) {
		json_decref(preset);
		return NULL;
	}
	if (r.n) /* qsort wants a non-NULL array even for no elements */
		qsort(r.v, r.n, sizeof(r.v[0]), rule_cmp);
	json_t *arr = json_array();
	for (size_t i = 0; i < r.n; i++)
		if (!has || !sandbox[0] || !r.v[i].sandbox[0] || strcmp(r.v[i].sandbox, sandbox) == 0)
			json_array_append_new(arr, rule_json(&r.v[i]));
	rules_free(&r);
	*status = 200;
	return json_pack("{s:o, s:o, s:o}", "preset", preset, "rules", arr, "classifiers", sbx_api_classifiers_json(d));
}

/* ---- POST /v1/policy/init, /v1/policy/ensure ---- */

static json_t *init_result(struct sbx_daemon *d, bool applied, size_t user_before, int *status, sbx_err *err)
{
	struct rules r;
	json_t *preset = preset_json(d, err, NULL);

	if (!preset)
		return NULL;
	if (rules_load(d, &r, err) < 0) {
		json_decref(preset);
		return NULL;
	}
	size_t user_after = count_user(&r, "");
	json_t *o = json_pack("{s:o, s:b, s:I, s:I, s:I}", "preset", preset, "applied", applied, "rules",
			      (json_int_t)count_scope(&r, ""), "sandbox_rules", (json_int_t)count_scope(&r, NULL),
			      "replaced_user_rules", (json_int_t)(user_before > user_after ? user_before - user_after : 0));
	rules_free(&r);
	*status = 200;
	return o;
}

static json_t *h_init(struct sbx_daemon *d, json_t *body, int *status, sbx_err *err)
{
	static const char *const keys[] = {"preset", "only_if_unset", NULL};
	const char *name;
	bool only_if_unset, set;
	struct rules r;

	if (sbx_api_only_keys(body, keys, err) < 0 || sbx_api_opt_str(body, "preset", 32, false, &name, err) < 0 ||
	    sbx_api_opt_bool(body, "only_if_unset", &only_if_unset, NULL, err) < 0)
		return NULL;
	if (!name)
		return sbx_api_fail(err, SBX_E_INVALID, "name a preset: allow-all, balanced or deny-all");
	if (!sbx_preset_resources(name, &(size_t){0}))
		return sbx_api_fail(err, SBX_E_INVALID, "unknown network policy preset '%s': use allow-all, balanced or deny-all",
				   name);
	json_t *cur = preset_json(d, err, &set);
	if (!cur)
		return NULL;
	json_decref(cur);
	if (only_if_unset && set)
		return init_result(d, false, 0, status, err);
	if (rules_load(d, &r, err) < 0)
		return NULL;
	size_t user_before = count_user(&r, "");
	rules_free(&r);
	if (sbx_daemon_policy_init(d, name, err) < 0)
		return NULL;
	return init_result(d, true, user_before, status, err);
}

static json_t *h_ensure(struct sbx_daemon *d, json_t *body, int *status, sbx_err *err)
{
	static const char *const keys[] = {NULL};
	bool set;

	if (sbx_api_only_keys(body, keys, err) < 0)
		return NULL;
	json_t *cur = preset_json(d, err, &set);
	if (!cur)
		return NULL;
	json_decref(cur);
	if (sbx_daemon_policy_ensure(d, err) < 0)
		return NULL;
	return init_result(d, !set, 0, status, err);
}

/* ---- rules: add and remove ---- */

/* "resources": a list of strings, or one comma-separated string. Duplicates are dropped. */
static int parse_resources(json_t *body, struct sbx_resource **out, size_t *n, sbx_err *err)
{
	json_t *v = json_object_get(body, "resources");
	struct sbx_resource *res = calloc(MAX_RESOURCES, sizeof(*res));
	size_t got = 0;

	*out = NULL;
	*n = 0;
	if (!res)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	if (json_is_string(v)) {
		const char *s;
		if (sbx_api_opt_str(body, "resources", MAX_RESOURCES_TEXT, false, &s, err) < 0 ||
		    sbx_resources_parse_list(s, res, MAX_RESOURCES, &got, err) < 0)
			goto bad;
	} else if (json_is_array(v)) {
		size_t i;
		json_t *item;
		if (json_array_size(v) > MAX_RESOURCES) {
			sbx_err_set(err, SBX_E_INVALID, "too many resources in one request (at most %d)", MAX_RESOURCES);
			goto bad;
		}
		json_array_foreach(v, i, item)
		{
			const char *s = json_string_value(item);
			if (!s || json_string_length(item) > sizeof(res[0].text) || strlen(s) != json_string_length(item) ||
			    !sbx_api_printable(s)) {
				sbx_err_set(err, SBX_E_INVALID, "'resources' must be a list of resource strings of at most %zu "
					    "characters", sizeof(res[0].text));
				goto bad;
			}
			if (sbx_resource_parse(s, &res[got], err) < 0)
				goto bad;
			got++;
		}
	} else if (v && !json_is_null(v)) {
		sbx_err_set(err, SBX_E_INVALID, "'resources' must be a list of strings or a comma-separated string");
		goto bad;
	}
	if (got == 0) {
		sbx_err_set(err, SBX_E_INVALID,
			    "name at least one resource, e.g. api.example.com, *.npmjs.org, host:port or 10.0.0.0/8");
		goto bad;
	}
	/* Drop repeats (after normalisation "Example.com" and "example.com." are one). */
	size_t k = 0;
	for (size_t i = 0; i < got; i++) {
		bool dup = false;
		for (size_t j = 0; j < k && !dup; j++)
			dup = strcmp(res[j].text, res[i].text) == 0;
		if (!dup)
			res[k++] = res[i];
	}
	*out = res;
	*n = k;
	return 0;
bad:
	free(res);
	return -1;
}

/* The rule fields shared by add and remove; method and path are checked here for length only,
 * sbx_rule_validate checks their form. */
struct rule_fields {
	const char *kind, *method, *path, *sandbox;
};

static int parse_rule_fields(json_t *body, struct rule_fields *f, sbx_err *err)
{
	if (sbx_api_opt_str(body, "kind", 16, false, &f->kind, err) < 0 ||
	    sbx_api_opt_str(body, "method", sizeof(((struct sbx_rule *)0)->method) - 1, false, &f->method, err) < 0 ||
	    sbx_api_opt_str(body, "path", sizeof(((struct sbx_rule *)0)->path) - 1, false, &f->path, err) < 0 ||
	    sbx_api_opt_sandbox(body, &f->sandbox, err) < 0)
		return -1;
	if (f->method && !*f->method)
		f->method = NULL;
	if (f->path && !*f->path)
		f->path = NULL;
	return 0;
}

static bool sandbox_exists(struct sbx_daemon *d, const char *name)
{
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next)
		if (!sb->removed && strcmp(sb->name, name) == 0)
			return true;
	return false;
}

static json_t *h_add(struct sbx_daemon *d, json_t *body, int *status, sbx_err *err)
{
	static const char *const keys[] = {"kind", "resources", "method", "path", "sandbox", "approvals", "timeout_ms", NULL};
	struct rule_fields f;
	enum sbx_rule_kind kind;
	int64_t approvals = 1, timeout_ms = 0;
	bool has_approvals, has_timeout;
	cleanup_free struct sbx_resource *res = NULL;
	cleanup_free struct sbx_rule *rules = NULL;
	size_t n;

	if (sbx_api_only_keys(body, keys, err) < 0 || parse_rule_fields(body, &f, err) < 0 ||
	    sbx_api_opt_int(body, "approvals", 1, 2, &approvals, &has_approvals, err) < 0 ||
	    sbx_api_opt_int(body, "timeout_ms", 0, (int64_t)MAX_REVIEW_TIMEOUT_MS, &timeout_ms, &has_timeout, err) < 0)
		return NULL;
	if (!f.kind)
		return sbx_api_fail(err, SBX_E_INVALID, "'kind' is required: allow, deny or review");
	if (sbx_rule_kind_parse(f.kind, &kind) < 0)
		return sbx_api_fail(err, SBX_E_INVALID, "unknown rule kind '%s': use allow, deny or review", f.kind);
	if ((has_approvals || has_timeout) && kind != SBX_RULE_REVIEW)
		return sbx_api_fail(err, SBX_E_INVALID, "approvals and timeouts belong to review rules, not %s rules",
				   sbx_rule_kind_name(kind));
	if (parse_resources(body, &res, &n, err) < 0)
		return NULL;
	rules = calloc(n, sizeof(*rules));
	if (!rules)
		return sbx_api_fail(err, SBX_E_INTERNAL, "out of memory");

	/* Every rule is checked before any is stored: one bad item changes nothing. */
	for (size_t i = 0; i < n; i++) {
		struct sbx_rule *r = &rules[i];
		r->kind = kind;
		r->res = res[i];
		sbx_strlcpy(r->method, f.method ? f.method : "", sizeof(r->method));
		sbx_strlcpy(r->path, f.path ? f.path : "", sizeof(r->path));
		sbx_strlcpy(r->sandbox, f.sandbox ? f.sandbox : "", sizeof(r->sandbox));
		sbx_strlcpy(r->source, "user", sizeof(r->source));
		r->approvals = (uint32_t)approvals;
		r->timeout_ms = (uint64_t)timeout_ms;
		r->created_at = (int64_t)sbx_now_ms();
		if (sbx_rule_validate(r, err) < 0) /* its messages quote the item */
			return NULL;
	}
	/* A rule added to a never-initialised policy must not be wiped by the preset that the
	 * first sandbox start would apply later: settle the preset first. */
	if (sbx_daemon_policy_ensure(d, err) < 0)
		return NULL;

	cleanup_free bool *existed = calloc(n, sizeof(*existed));
	if (!existed)
		return sbx_api_fail(err, SBX_E_INTERNAL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (sbx_rules_add(d->store, &rules[i], &existed[i], err) < 0) {
			/* Earlier items may be stored: make them count now rather than at the next change. */
			sbx_err e2 = SBX_ERR_INIT;
			sbx_daemon_policy_reload(d, &e2);
			sbx_err_wrap(err, "adding %s", rules[i].res.text);
			return NULL;
		}
	}
	if (sbx_daemon_policy_reload(d, err) < 0)
		return NULL;

	/* The answer shows the rules as stored (an existing one may be a preset's), and any deny
	 * for the same resource in reach, which wins over a new allow or review rule. */
	struct rules all;
	if (rules_load(d, &all, err) < 0)
		return NULL;
	json_t *added = json_array(), *existing = json_array(), *conflicts = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct sbx_rule *stored = &rules[i];
		for (size_t j = 0; j < all.n; j++)
			if (all.v[j].kind == rules[i].kind && strcmp(all.v[j].res.text, rules[i].res.text) == 0 &&
			    strcasecmp(all.v[j].method, rules[i].method) == 0 && strcmp(all.v[j].path, rules[i].path) == 0 &&
			    strcmp(all.v[j].sandbox, rules[i].sandbox) == 0)
				stored = &all.v[j];
		json_array_append_new(existed[i] ? existing : added, rule_json(stored));
	}
	for (size_t i = 0; kind != SBX_RULE_DENY && i < all.n; i++) {
		const struct sbx_rule *o = &all.v[i];
		if (o->kind != SBX_RULE_DENY || (o->sandbox[0] && strcmp(o->sandbox, rules[0].sandbox) != 0))
			continue;
		for (size_t j = 0; j < n; j++)
			if (strcmp(o->res.text, rules[j].res.text) == 0) {
				json_array_append_new(conflicts, rule_json(o));
				break;
			}
	}
	rules_free(&all);
	*status = json_array_size(added) ? 201 : 200;
	json_t *o = json_pack("{s:o, s:o, s:o}", "added", added, "existing", existing, "overridden_by", conflicts);
	if (f.sandbox)
		json_object_set_new(o, "sandbox_exists", json_boolean(sandbox_exists(d, f.sandbox)));
	return o;
}

static json_t *h_remove_match(struct sbx_daemon *d, json_t *body, int *status, sbx_err *err)
{
	static const char *const keys[] = {"kind", "resources", "method", "path", "sandbox", NULL};
	struct rule_fields f;
	enum sbx_rule_kind kind = SBX_RULE_ALLOW;
	cleanup_free struct sbx_resource *res = NULL;
	struct rules all;
	size_t n;

	if (sbx_api_only_keys(body, keys, err) < 0 || parse_rule_fields(body, &f, err) < 0)
		return NULL;
	if (f.kind && sbx_rule_kind_parse(f.kind, &kind) < 0)
		return sbx_api_fail(err, SBX_E_INVALID, "unknown rule kind '%s': use allow, deny or review", f.kind);
	if (parse_resources(body, &res, &n, err) < 0 || rules_load(d, &all, err) < 0)
		return NULL;

	/* Selection: the resource (normalised) in the given scope (global when none is given);
	 * kind, method and path narrow it when given. */
	json_t *removed = json_array(), *unmatched = json_array();
	for (size_t i = 0; i < n; i++) {
		bool any = false;
		for (size_t j = 0; j < all.n; j++) {
			const struct sbx_rule *r = &all.v[j];
			if (r->id <= 0 || strcmp(r->res.text, res[i].text) != 0 ||
			    strcmp(r->sandbox, f.sandbox ? f.sandbox : "") != 0 || (f.kind && r->kind != kind) ||
			    (f.method && strcasecmp(r->method, f.method) != 0) || (f.path && strcmp(r->path, f.path) != 0))
				continue;
			if (sbx_rules_remove_id(d->store, r->id, err) < 0) {
				json_decref(removed);
				json_decref(unmatched);
				rules_free(&all);
				sbx_err e2 = SBX_ERR_INIT;
				sbx_daemon_policy_reload(d, &e2);
				return NULL;
			}
			json_array_append_new(removed, rule_json(r));
			all.v[j].id = 0; /* taken */
			any = true;
		}
		if (!any)
			json_array_append_new(unmatched, safe_str(res[i].text));
	}
	rules_free(&all);
	if (json_array_size(removed) == 0) {
		char what[400];
		snprintf(what, sizeof(what), "%s%s", n == 1 ? res[0].text : "any of the given resources",
			 f.sandbox ? "" : " (global rules; add --sandbox NAME for a sandbox's rules)");
		json_decref(removed);
		json_decref(unmatched);
		return sbx_api_fail(err, SBX_E_NOTFOUND, "no %s%srule matches %s%s%s: see `sbx policy ls`",
				   f.kind ? f.kind : "", f.kind ? " " : "", what, f.sandbox ? " in sandbox " : "",
				   f.sandbox ? f.sandbox : "");
	}
	if (sbx_daemon_policy_reload(d, err) < 0) {
		json_decref(removed);
		json_decref(unmatched);
		return NULL;
	}
	*status = 200;
	return json_pack("{s:o, s:o}", "removed", removed, "unmatched", unmatched);
}

static json_t *h_rule_id(struct sbx_daemon *d, const char *method, const char *idtext, json_t *body, int *status,
			 sbx_err *err)
{
	static const char *const keys[] = {NULL};
	int64_t id;
	struct rules all;
	json_t *found = NULL;

	if (sbx_parse_i64(idtext, 1, INT64_MAX, &id) < 0)
		return sbx_api_fail(err, SBX_E_NOTFOUND, "no rule with id '%.32s': rule ids are positive numbers (see `sbx "
				   "policy ls`)", idtext);
	if (sbx_api_only_keys(body, keys, err) < 0 || rules_load(d, &all, err) < 0)
		return NULL;
	for (size_t i = 0; i < all.n && !found; i++)
		if (all.v[i].id == id)
			found = rule_json(&all.v[i]);
	rules_free(&all);
	if (!found)
		return sbx_api_fail(err, SBX_E_NOTFOUND, "no rule with id %lld: see `sbx policy ls` for the ids",
				   (long long)id);
	if (strcmp(method, "GET") == 0) {
		*status = 200;
		return found;
	}
	if (sbx_rules_remove_id(d->store, id, err) < 0 || sbx_daemon_policy_reload(d, err) < 0) {
		json_decref(found);
		return NULL;
	}
	*status = 200;
	return json_pack("{s:[o], s:[]}", "removed", found, "unmatched");
}

/* ---- POST /v1/policy/reset ---- */

static json_t *h_reset(struct sbx_daemon *d, json_t *body, int *status, sbx_err *err)
{
	static const char *const keys[] = {"sandbox", NULL};
	const char *sandbox;
	struct rules r;
	char preset[64];
	int has;

	if (sbx_api_only_keys(body, keys, err) < 0 || sbx_api_opt_sandbox(body, &sandbox, err) < 0 || rules_load(d, &r, err) < 0)
		return NULL;
	if (sandbox) {
		size_t n = count_scope(&r, sandbox);
		rules_free(&r);
		if (sbx_rules_reset(d->store, sandbox, err) < 0 || sbx_daemon_policy_reload(d, err) < 0)
			return NULL;
		*status = 200;
		return json_pack("{s:s, s:I}", "sandbox", sandbox, "removed", (json_int_t)n);
	}
	/* Everything the user added (global and per sandbox) goes and the recorded preset comes
	 * back (balanced when none was ever chosen), in one transaction. */
	size_t user = 0;
	for (size_t i = 0; i < r.n; i++)
		user += r.v[i].sandbox[0] || strcmp(r.v[i].source, "user") == 0;
	rules_free(&r);
	if (sbx_rules_reset(d->store, NULL, err) < 0 || sbx_daemon_policy_reload(d, err) < 0 ||
	    (has = sbx_daemon_policy_preset(d, preset, sizeof(preset), err)) < 0 || rules_load(d, &r, err) < 0)
		return NULL;
	json_t *o = json_pack("{s:s, s:I, s:I}", "preset", has ? preset : "balanced", "removed", (json_int_t)user, "rules",
			      (json_int_t)r.n);
	rules_free(&r);
	*status = 200;
	return o;
}

/* ---- POST /v1/policy/check ---- */

struct check_target {
	char host[256]; /* lowercased, without a trailing dot; "" for an address */
	int family;
	uint8_t addr[16];
	uint16_t port;
	bool is_url;
	char path[MAX_CHECK_PATH]; /* from a URL, without query and fragment */
	char display[320];
};

static const char target_forms[] =
	"give host, host:port, an IP address, [IPv6]:port or a URL such as https://host/path";

static int parse_port(const char *s, size_t len, uint16_t *out, sbx_err *err)
{
	char tmp[8];
	int64_t v;

	if (len == 0 || len >= sizeof(tmp))
		return sbx_err_set(err, SBX_E_INVALID, "invalid port '%.*s': use a number from 1 to 65535", (int)(len > 16 ? 16 : len), s);
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (sbx_parse_i64(tmp, 1, 65535, &v) < 0)
		return sbx_err_set(err, SBX_E_INVALID, "invalid port '%s': use a number from 1 to 65535", tmp);
	*out = (uint16_t)v;
	return 0;
}

static int parse_hostname(const char *s, size_t len, struct check_target *t, sbx_err *err)
{
	char h[256];

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return sbx_err_set(err, SBX_E_INVALID, "invalid host '%.*s': %s", (int)(len > 64 ? 64 : len), s, target_forms);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '*')
			return sbx_err_set(err, SBX_E_INVALID,
					   "'%.*s' is a pattern: check takes one destination, e.g. api.example.com", (int)len, s);
		if (!(isalnum(c) || c == '-' || c == '_' || c == '.'))
			return sbx_err_set(err, SBX_E_INVALID, "invalid host '%.*s': %s", (int)len, s, target_forms);
		h[i] = (char)tolower(c);
	}
	h[len] = '\0';
	for (const char *label = h; label;) {
		const char *dot = strchr(label, '.');
		size_t l = dot ? (size_t)(dot - label) : strlen(label);
		if (l == 0 || l > 63)
			return sbx_err_set(err, SBX_E_INVALID, "invalid host '%s': every label between dots has 1 to 63 "
					   "characters", h);
		label = dot ? dot + 1 : NULL;
	}
	memcpy(t->host, h, len + 1);
	return 0;
}

static int parse_target(const char *s, struct check_target *t, sbx_err *err)
{
	const char *auth = s, *auth_end;
	uint16_t default_port = 443;
	const char *sep = strstr(s, "://");

	memset(t, 0, sizeof(*t));
	if (!*s)
		return sbx_err_set(err, SBX_E_INVALID, "the destination is empty: %s", target_forms);
	if (sep) {
		size_t sl = (size_t)(sep - s);
		if (sl == 4 && strncasecmp(s, "http", 4) == 0)
			default_port = 80;
		else if (sl == 5 && strncasecmp(s, "https", 5) == 0)
			default_port = 443;
		else if (sl == 2 && strncasecmp(s, "ws", 2) == 0)
			default_port = 80;
		else if (sl == 3 && strncasecmp(s, "wss", 3) == 0)
			default_port = 443;
		else
			return sbx_err_set(err, SBX_E_INVALID, "unsupported URL scheme '%.*s': use http:// or https://, or give "
					   "host:port", (int)(sl > 16 ? 16 : sl), s);
		t->is_url = true;
		auth = sep + 3;
		auth_end = auth + strcspn(auth, "/?#");
		const char *rest = auth_end;
		size_t pl = *rest == '/' ? strcspn(rest, "?#") : 0;
		if (pl >= sizeof(t->path))
			return sbx_err_set(err, SBX_E_INVALID, "the URL path is too long (at most %d characters)",
					   MAX_CHECK_PATH - 1);
		if (pl)
			memcpy(t->path, rest, pl);
		else
			t->path[0] = '/';
		/* user:password@ is not part of the destination */
		const char *at = memrchr(auth, '@', (size_t)(auth_end - auth));
		if (at)
			auth = at + 1;
	} else {
		if (strpbrk(s, "/?#@"))
			return sbx_err_set(err, SBX_E_INVALID, "'%s' is not a destination: %s", s, target_forms);
		auth_end = s + strlen(s);
	}

	size_t alen = (size_t)(auth_end - auth);
	const char *colon = memchr(auth, ':', alen);
	char tmp[64];
	if (alen && auth[0] == '[') {
		const char *close = memchr(auth, ']', alen);
		size_t il = close ? (size_t)(close - auth - 1) : 0;
		if (!close || il == 0 || il >= sizeof(tmp))
			return sbx_err_set(err, SBX_E_INVALID, "invalid IPv6 destination '%.*s': write it as [2001:db8::1]:443",
					   (int)(alen > 80 ? 80 : alen), auth);
		memcpy(tmp, auth + 1, il);
		tmp[il] = '\0';
		if (inet_pton(AF_INET6, tmp, t->addr) != 1)
			return sbx_err_set(err, SBX_E_INVALID, "invalid IPv6 address '%s'", tmp);
		t->family = AF_INET6;
		const char *after = close + 1;
		if (after < auth_end) {
			if (*after != ':')
				return sbx_err_set(err, SBX_E_INVALID, "invalid IPv6 destination '%.*s': write it as "
						   "[2001:db8::1]:443", (int)(alen > 80 ? 80 : alen), auth);
			if (parse_port(after + 1, (size_t)(auth_end - after - 1), &t->port, err) < 0)
				return -1;
		}
	} else if (colon && memchr(colon + 1, ':', (size_t)(auth_end - colon - 1))) {
		/* two colons or more and no brackets: a bare IPv6 address (no port possible) */
		if (alen >= sizeof(tmp))
			return sbx_err_set(err, SBX_E_INVALID, "invalid IPv6 address '%.*s'", (int)(alen > 80 ? 80 : alen), auth);
		memcpy(tmp, auth, alen);
		tmp[alen] = '\0';
		if (inet_pton(AF_INET6, tmp, t->addr) != 1)
			return sbx_err_set(err, SBX_E_INVALID, "invalid IPv6 address '%s' (with a port, write [%s]:443)", tmp, tmp);
		t->family = AF_INET6;
	} else {
		size_t hl = colon ? (size_t)(colon - auth) : alen;
		if (colon && parse_port(colon + 1, (size_t)(auth_end - colon - 1), &t->port, err) < 0)
			return -1;
		if (hl < sizeof(tmp)) {
			memcpy(tmp, auth, hl);
			tmp[hl] = '\0';
			if (inet_pton(AF_INET, tmp, t->addr) == 1)
				t->family = AF_INET;
		}
		if (!t->family && parse_hostname(auth, hl, t, err) < 0)
			return -1;
	}
	if (!t->port)
		t->port = default_port;
	if (t->family) {
		char a[INET6_ADDRSTRLEN];
		inet_ntop(t->family, t->addr, a, sizeof(a));
		snprintf(t->display, sizeof(t->display), t->family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, t->port);
	} else {
		snprintf(t->display, sizeof(t->display), "%s:%u", t->host, t->port);
	}
	return 0;
}

static bool token_char(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static json_t *h_check(struct sbx_daemon *d, json_t *body, int *status, sbx_err *err)
{
	static const char *const keys[] = {"target", "sandbox", "method", "path", NULL};
	const char *target, *sandbox, *method, *path;
	struct check_target t;
	char m[16], p[MAX_CHECK_PATH];
	bool set;

	if (sbx_api_only_keys(body, keys, err) < 0 || sbx_api_opt_str(body, "target", MAX_TARGET, false, &target, err) < 0 ||
	    sbx_api_opt_sandbox(body, &sandbox, err) < 0 || sbx_api_opt_str(body, "method", sizeof(m) - 1, false, &method, err) < 0 ||
	    sbx_api_opt_str(body, "path", sizeof(p) - 1, false, &path, err) < 0)
		return NULL;
	if (!target)
		return sbx_api_fail(err, SBX_E_INVALID, "'target' is required: %s", target_forms);
	if (parse_target(target, &t, err) < 0)
		return NULL;
	if (method && *method) {
		size_t i;
		for (i = 0; method[i]; i++) {
			if (!token_char((unsigned char)method[i]))
				return sbx_api_fail(err, SBX_E_INVALID, "invalid HTTP method '%s': use a name such as GET or POST",
						   method);
			m[i] = (char)toupper((unsigned char)method[i]);
		}
		m[i] = '\0';
	} else {
		method = NULL;
	}
	if (path && *path) {
		if (path[0] != '/' || strpbrk(path, " \t"))
			return sbx_api_fail(err, SBX_E_INVALID, "invalid path '%s': a request path starts with '/', e.g. /v1/items",
					   path);
		sbx_strlcpy(p, path, sizeof(p));
		p[strcspn(p, "?#")] = '\0'; /* rules look at the path, not the query */
	} else {
		path = NULL;
	}
	/* A URL, a method or a path make it a request; otherwise it is a connection. */
	bool request = t.is_url || method || path;
	const char *req_method = request ? (method ? m : "GET") : NULL;
	const char *req_path = request ? (path ? p : t.is_url ? t.path : "/") : NULL;

	json_t *cur = preset_json(d, err, &set);
	if (!cur)
		return NULL;
	if (!d->policy && sbx_daemon_policy_reload(d, err) < 0) {
		json_decref(cur);
		return NULL;
	}
	struct sbx_target st = {
		.sandbox = sandbox ? sandbox : "",
		.host = t.family ? NULL : t.host,
		.family = t.family,
		.port = t.port,
		.method = req_method,
		.path = req_path,
	};
	memcpy(st.addr, t.addr, sizeof(st.addr));
	struct sbx_decision dec;
	memset(&dec, 0, sizeof(dec));
	sbx_policy_decide(d->policy, &st, &dec);

	const char *verdict = dec.kind == SBX_RULE_ALLOW ? "allowed" : dec.kind == SBX_RULE_REVIEW ? "review" : "blocked";
	char where[INET6_ADDRSTRLEN];
	if (t.family)
		inet_ntop(t.family, t.addr, where, sizeof(where));
	else
		sbx_strlcpy(where, "", sizeof(where));
	json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:b}", "target", t.display, "decision", verdict, "level",
			      request ? "request" : "connection", "preset", cur, "initialised", set);
	json_object_set_new(o, "reason", safe_str(dec.reason));
	json_object_set_new(o, "host", t.family ? json_null() : json_string(t.host));
	json_object_set_new(o, "address", t.family ? json_string(where) : json_null());
	json_object_set_new(o, "port", json_integer(t.port));
	json_object_set_new(o, "sandbox", sandbox ? json_string(sandbox) : json_null());
	json_object_set_new(o, "method", req_method ? json_string(req_method) : json_null());
	json_object_set_new(o, "path", req_path ? safe_str(req_path) : json_null());
	json_object_set_new(o, "http_rules", json_boolean(dec.http_rules));
	json_object_set_new(o, "rule", dec.rule ? rule_json(dec.rule) : json_null());
	if (dec.kind == SBX_RULE_DENY) {
		/* What would open it: removing the deny rule that decided, or else a network rule for
		 * the host (any port), the address, or the one port of a host service. */
		char fix[512];
		const char *what = t.family ? where : strcmp(t.host, "host.sbx.internal") == 0 ? t.display : t.host;
		if (dec.rule && dec.rule->kind == SBX_RULE_DENY)
			snprintf(fix, sizeof(fix), "sbx policy rm --id %lld", (long long)dec.rule->id);
		else
			snprintf(fix, sizeof(fix), "sbx policy allow network %s%s%s", what, sandbox ? " --sandbox " : "",
				 sandbox ? sandbox : "");
		json_object_set_new(o, "fix", json_string(fix));
	}
	*status = 200;
	return o;
}

/* ---- GET /v1/policy/log ---- */

struct collect {
	json_t *arr;
	size_t cap;
	bool truncated;
	int64_t last_id;
};

static void rec_cb(void *ud, const struct sbx_audit_rec *r)
{
	struct collect *c = ud;
	char when[40];

	if (json_array_size(c->arr) >= c->cap) {
		c->truncated = true;
		return;
	}
	if (r->id > c->last_id)
		c->last_id = r->id;
	sbx_format_time_ms((uint64_t)(r->ts > 0 ? r->ts : 0), when, sizeof(when));
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer((json_int_t)r->id));
	json_object_set_new(o, "ts", json_integer((json_int_t)r->ts));
	json_object_set_new(o, "time", json_string(when));
	json_object_set_new(o, "sandbox", safe_str(r->sandbox));
	json_object_set_new(o, "type", json_string("network"));
	json_object_set_new(o, "path", safe_str(r->path));
	json_object_set_new(o, "host", safe_str(r->host));
	json_object_set_new(o, "port", json_integer(r->port));
	json_object_set_new(o, "method", safe_str(r->method));
	json_object_set_new(o, "url_path", safe_str(r->url_path));
	json_object_set_new(o, "decision", safe_str(r->decision));
	json_object_set_new(o, "rule", safe_str(r->rule));
	json_object_set_new(o, "reason", safe_str(r->reason));
	json_object_set_new(o, "bytes_up", json_integer((json_int_t)(r->bytes_up > INT64_MAX ? INT64_MAX : r->bytes_up)));
	json_object_set_new(o, "bytes_down",
			    json_integer((json_int_t)(r->bytes_down > INT64_MAX ? INT64_MAX : r->bytes_down)));
	json_object_set_new(o, "duration_ms",
			    json_integer((json_int_t)(r->duration_ms > INT64_MAX ? INT64_MAX : r->duration_ms)));
	json_object_set_new(o, "status", json_integer(r->status));
	json_array_append_new(c->arr, o);
}

static void group_cb(void *ud, const struct sbx_audit_group *g)
{
	struct collect *c = ud;

	if (json_array_size(c->arr) >= c->cap) {
		c->truncated = true;
		return;
	}
	json_t *o = json_object();
	json_object_set_new(o, "sandbox", safe_str(g->sandbox));
	json_object_set_new(o, "type", json_string("network"));
	json_object_set_new(o, "blocked", json_boolean(g->blocked));
	json_object_set_new(o, "host", safe_str(g->host));
	json_object_set_new(o, "port", json_integer(g->port));
	json_object_set_new(o, "path", safe_str(g->path));
	json_object_set_new(o, "rule", safe_str(g->rule));
	json_object_set_new(o, "reason", safe_str(g->reason));
	json_object_set_new(o, "last_ts", json_integer((json_int_t)g->last_ts));
	json_object_set_new(o, "count", json_integer((json_int_t)(g->count > INT64_MAX ? INT64_MAX : g->count)));
	json_array_append_new(c->arr, o);
}

static json_t *h_log(struct sbx_daemon *d, const char *query, int *status, sbx_err *err)
{
	static const char *const keys[] = {"sandbox", "host", "decision", "after_id", "limit", "raw", NULL};
	static const char *const decisions[] = {"allowed", "denied", "held", "approved", "refused",
						"timeout", "error",   "blocked", NULL};
	char sandbox[128], host[300], decision[32], num[32];
	int64_t after_id = 0, limit = 0;
	bool raw = false;
	int r, has_after;
	struct sbx_audit_query q = {0};

	if (query_only_keys(query, keys, err) < 0)
		return NULL;
	if ((r = query_get(query, "sandbox", sandbox, sizeof(sandbox), err)) < 0)
		return NULL;
	if (r && sandbox[0]) {
		if (!sbx_name_valid(sandbox))
			return sbx_api_fail(err, SBX_E_INVALID, "invalid sandbox name '%s'", sandbox);
		q.sandbox = sandbox;
	}
	if ((r = query_get(query, "host", host, 256, err)) < 0)
		return NULL;
	if (r && host[0]) {
		for (char *h = host; *h; h++)
			*h = (char)tolower((unsigned char)*h);
		q.host = host;
	}
	if ((r = query_get(query, "decision", decision, sizeof(decision), err)) < 0)
		return NULL;
	if (r && decision[0]) {
		bool ok = false;
		for (size_t i = 0; decisions[i] && !ok; i++)
			ok = strcmp(decision, decisions[i]) == 0;
		if (!ok)
			return sbx_api_fail(err, SBX_E_INVALID, "unknown decision '%s': use blocked, allowed, denied, held, "
					   "approved, refused, timeout or error", decision);
		q.decision = decision;
	}
	if ((has_after = query_get(query, "after_id", num, sizeof(num), err)) < 0)
		return NULL;
	if (has_after && sbx_parse_i64(num, 0, INT64_MAX, &after_id) < 0)
		return sbx_api_fail(err, SBX_E_INVALID, "after_id must be a record id (a number of 0 or more)");
	if ((r = query_get(query, "limit", num, sizeof(num), err)) < 0)
		return NULL;
	if (r && sbx_parse_i64(num, 1, LOG_MAX_ROWS, &limit) < 0)
		return sbx_api_fail(err, SBX_E_INVALID, "limit must be a number from 1 to %d", LOG_MAX_ROWS);
	if ((r = query_get(query, "raw", num, sizeof(num), err)) < 0)
		return NULL;
	if (r) {
		if (strcmp(num, "1") != 0 && strcmp(num, "true") != 0 && strcmp(num, "0") != 0 && strcmp(num, "false") != 0)
			return sbx_api_fail(err, SBX_E_INVALID, "raw must be 1 or 0");
		raw = num[0] == '1' || num[0] == 't';
	}

	/* What the proxy has been told is logged must be visible here. */
	if (d->audit)
		sbx_audit_flush(d->audit);
	struct collect c = {.arr = json_array(), .cap = (size_t)(limit ? limit : raw ? LOG_DEFAULT_ROWS : LOG_MAX_ROWS)};
	if (raw) {
		/* Following (after_id given): the next records in order. Otherwise: the newest ones,
		 * shown oldest first. */
		q.after_id = after_id;
		q.ascending = has_after;
		q.limit = c.cap;
		c.last_id = after_id;
		if (sbx_audit_query(d->paths.db_path, &q, rec_cb, &c, err) < 0) {
			json_decref(c.arr);
			sbx_err_wrap(err, "reading the policy log");
			return NULL;
		}
		if (!q.ascending) {
			json_t *rev = json_array();
			for (size_t i = json_array_size(c.arr); i-- > 0;)
				json_array_append(rev, json_array_get(c.arr, i));
			json_decref(c.arr);
			c.arr = rev;
		}
		*status = 200;
		return json_pack("{s:o, s:I, s:b}", "records", c.arr, "last_id", (json_int_t)c.last_id, "truncated",
				 c.truncated);
	}
	if (has_after) {
		json_decref(c.arr);
		return sbx_api_fail(err, SBX_E_INVALID, "after_id is for raw records (raw=1)");
	}
	q.limit = c.cap;
	if (sbx_audit_aggregate(d->paths.db_path, &q, group_cb, &c, err) < 0) {
		json_decref(c.arr);
		sbx_err_wrap(err, "reading the policy log");
		return NULL;
	}
	*status = 200;
	return json_pack("{s:o, s:b}", "groups", c.arr, "truncated", c.truncated);
}

/* ---- routing ---- */

json_t *sbx_api_policy(struct sbx_daemon *d, const char *method, const char *path, const char *query, json_t *body,
		       int *status, sbx_err *err)
{
	const char *rest = path + strlen("/v1/policy");
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0, del = strcmp(method, "DELETE") == 0;

	*status = 0;
	if (!sbx_str_has_prefix(path, "/v1/policy"))
		return sbx_api_fail(err, SBX_E_NOTFOUND, "no API endpoint %s %s", method, path);
	/* Only the two reading routes take query parameters; everything else takes a JSON body. */
	if (query && *query && !(get && (*rest == '\0' || strcmp(rest, "/log") == 0)))
		return sbx_api_fail(err, SBX_E_INVALID, "%s %s takes no query parameters: send them in the JSON body", method, path);
	if (*rest == '\0' && get)
		return h_show(d, query, status, err);
	if (strcmp(rest, "/init") == 0 && post)
		return h_init(d, body, status, err);
	if (strcmp(rest, "/ensure") == 0 && post)
		return h_ensure(d, body, status, err);
	if (strcmp(rest, "/rules") == 0 && post)
		return h_add(d, body, status, err);
	if (strcmp(rest, "/rules") == 0 && del)
		return h_remove_match(d, body, status, err);
	if (strncmp(rest, "/rules/", 7) == 0 && (del || get))
		return h_rule_id(d, method, rest + 7, body, status, err);
	if (strcmp(rest, "/check") == 0 && post)
		return h_check(d, body, status, err);
	if (strcmp(rest, "/reset") == 0 && post)
		return h_reset(d, body, status, err);
	if (strcmp(rest, "/log") == 0 && get)
		return h_log(d, query, status, err);
	if (strcmp(rest, "/classifiers") == 0 || strncmp(rest, "/classifiers/", 13) == 0)
		return sbx_api_classifiers(d, method, rest + 12, body, status, err);
	return sbx_api_fail(err, SBX_E_NOTFOUND, "no API endpoint %s %s (this daemon speaks API version %s)", method, path,
			   SBX_API_VERSION);
}
