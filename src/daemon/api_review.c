/* api_review.c - the review queue, approvers and classifier settings in the control API
 * (api_review.h). */
#include "api_review.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_check.h"
#include "approvers.h"
#include "log.h"
#include "policy.h"
#include "review.h"
#include "util.h"

#define MAX_REASON 150

/* "user:LOGIN" of the daemon's user: whoever is at the control socket (that user, or root) is
 * the local user, one identity, so that sudo does not make a second approver. */
static void local_identity(uid_t uid, char *out, size_t n)
{
	(void)uid;
	uid = getuid();
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_name[0])
		snprintf(out, n, "user:%.40s", res->pw_name);
	else
		snprintf(out, n, "user:%u", (unsigned)uid);
}

/* Who is deciding: the local user, or a named approver proving it with their token. */
static int identity(struct sbx_daemon *d, json_t *body, uid_t uid, char *out, size_t n, sbx_err *err)
{
	const char *name, *token;

	if (sbx_api_opt_str(body, "approver", SBX_APPROVER_NAME_MAX, false, &name, err) < 0 ||
	    sbx_api_opt_str(body, "token", 128, false, &token, err) < 0)
		return -1;
	if (!name) {
		if (token)
			return sbx_err_set(err, SBX_E_INVALID, "a token needs the approver's name (--as NAME)");
		local_identity(uid, out, n);
		return 0;
	}
	if (!token)
		return sbx_err_set(err, SBX_E_PERM, "approving as %s needs %s's token (SBX_APPROVER_TOKEN)", name, name);
	if (sbx_approver_check(d->store, name, token, err) < 0)
		return -1;
	snprintf(out, n, "%s", name);
	return 0;
}

/* The allow rule "approve --always" adds: exactly this request's shape. */
static int always_rule(struct sbx_daemon *d, const char *id, struct sbx_rule *r, sbx_err *err)
{
	struct sbx_review_shape sh;
	char res[300];

	if (sbx_review_shape_of(d->reviews, id, &sh, err) < 0)
		return -1;
	if (!sh.host_is_name)
		return sbx_err_set(err, SBX_E_INVALID,
				   "--always needs a host name, and %s was reached by address: approve without --always",
				   id);
	if (sh.needed > 1)
		return sbx_err_set(err, SBX_E_INVALID,
				   "--always would let the next such request through with no approval at all, and %s "
				   "needs two: approve without --always (or add an allow rule deliberately)",
				   id);
	if (sh.has_query)
		return sbx_err_set(err, SBX_E_INVALID,
				   "--always cannot name the query of %s (rules match the path only), so a rule would "
				   "let the same path with any query through: approve without --always",
				   id);
	if (strcmp(sh.action, SBX_ACTION_REVIEW_RULE) != 0 && !sbx_classify_action_exact(sh.action))
		return sbx_err_set(err, SBX_E_INVALID,
				   "--always cannot name the operation of %s (%s: the request could not be read "
				   "exactly), so a rule would let every such request through: approve without --always",
				   id, sh.action);
	if (strpbrk(sh.path, "*?"))
		return sbx_err_set(err, SBX_E_INVALID,
				   "--always cannot name the path of %s exactly (it holds '*' or '?'): approve without "
				   "--always",
				   id);
	memset(r, 0, sizeof(*r));
	r->kind = SBX_RULE_ALLOW;
	snprintf(res, sizeof(res), "%s:%u", sh.host, sh.port);
	if (sbx_resource_parse(res, &r->res, err) < 0)
		return -1;
	sbx_strlcpy(r->method, sh.method, sizeof(r->method));
	sbx_strlcpy(r->path, sh.path[0] ? sh.path : "/", sizeof(r->path));
	sbx_strlcpy(r->sandbox, sh.sandbox, sizeof(r->sandbox));
	sbx_strlcpy(r->action, sh.action, sizeof(r->action));
	snprintf(r->source, sizeof(r->source), "review:%s", id);
	r->approvals = 1;
	r->created_at = (int64_t)sbx_now_ms();
	return sbx_rule_validate(r, err);
}

static json_t *h_approve(struct sbx_daemon *d, const char *id, json_t *body, uid_t uid, int *status, sbx_err *err)
{
	static const char *const keys[] = {"always", "approver", "token", NULL};
	char who[SBX_APPROVER_ID_MAX];
	struct sbx_rule rule;
	bool always = false;
	json_t *out = NULL;

	if (sbx_api_only_keys(body, keys, err) < 0 || sbx_api_opt_bool(body, "always", &always, NULL, err) < 0 ||
	    identity(d, body, uid, who, sizeof(who), err) < 0)
		return NULL;
	/* The exemption is checked before anything changes: a bad --always approves nothing. */
	if (always && always_rule(d, id, &rule, err) < 0)
		return NULL;
	if (sbx_review_approve(d->reviews, id, who, &out, err) < 0)
		return NULL;
	if (always && strcmp(json_string_value(json_object_get(out, "state")), "approved") == 0) {
		bool existed = false;
		sbx_err e2 = SBX_ERR_INIT;
		char desc[600];
		if (sbx_rules_add(d->store, &rule, &existed, &e2) < 0 || sbx_daemon_policy_reload(d, &e2) < 0) {
			/* the request is approved and on its way; only the rule is missing */
			log_warn("review %s: approved, but the --always rule could not be added: %s", id, e2.msg);
			json_object_set_new(out, "rule_error", json_string(e2.msg));
		} else {
			sbx_rule_describe(&rule, desc, sizeof(desc));
			json_object_set_new(out, "rule", json_string(desc));
			json_object_set_new(out, "rule_id", json_integer((json_int_t)rule.id));
		}
	}
	*status = 200;
	return out;
}

static json_t *h_deny(struct sbx_daemon *d, const char *id, json_t *body, uid_t uid, int *status, sbx_err *err)
{
	static const char *const keys[] = {"reason", "approver", "token", NULL};
	char who[SBX_APPROVER_ID_MAX];
	const char *reason = NULL;
	json_t *out = NULL;

	if (sbx_api_only_keys(body, keys, err) < 0 || sbx_api_opt_str(body, "reason", MAX_REASON, false, &reason, err) < 0 ||
	    identity(d, body, uid, who, sizeof(who), err) < 0)
		return NULL;
	if (sbx_review_deny(d->reviews, id, who, reason, &out, err) < 0)
		return NULL;
	*status = 200;
	return out;
}

static bool id_valid(const char *id)
{
	if (strlen(id) != SBX_REVIEW_ID_SIZE - 1 || strncmp(id, "r-", 2) != 0)
		return false;
	for (const char *p = id + 2; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static void approver_cb(void *ud, const char *name, int64_t created_ms)
{
	json_array_append_new(ud, json_pack("{s:s, s:I}", "name", name, "created_ms", (json_int_t)created_ms));
}

static json_t *h_approvers(struct sbx_daemon *d, const char *method, const char *rest, json_t *body, int *status,
			   sbx_err *err)
{
	if (strcmp(method, "GET") == 0 && !*rest) {
		json_t *a = json_array();
		if (sbx_approver_each(d->store, approver_cb, a, err) < 0) {
			json_decref(a);
			return NULL;
		}
		*status = 200;
		return json_pack("{s:o}", "approvers", a);
	}
	if (strcmp(method, "POST") == 0 && !*rest) {
		static const char *const keys[] = {"name", NULL};
		char token[SBX_APPROVER_TOKEN_LEN + 1];
		const char *name;
		json_t *o;
		if (sbx_api_only_keys(body, keys, err) < 0 ||
		    sbx_api_opt_str(body, "name", SBX_APPROVER_NAME_MAX + 8, false, &name, err) < 0)
			return NULL;
		if (!name)
			return sbx_api_fail(err, SBX_E_INVALID, "'name' is required");
		if (sbx_approver_add(d->store, name, token, err) < 0)
			return NULL;
		log_info("approver %s added", name);
		o = json_pack("{s:s, s:s}", "name", name, "token", token);
		memset(token, 0, sizeof(token));
		*status = 201;
		return o;
	}
	if (strcmp(method, "DELETE") == 0 && rest[0] == '/') {
		if (sbx_approver_remove(d->store, rest + 1, err) < 0)
			return NULL;
		log_info("approver %s removed", rest + 1);
		*status = 200;
		return json_pack("{s:s}", "removed", rest + 1);
	}
	return sbx_api_fail(err, SBX_E_NOTFOUND, "no API endpoint %s /v1/approvers%s", method, rest);
}

json_t *sbx_api_review(struct sbx_daemon *d, const char *method, const char *path, const char *query, json_t *body,
		       uid_t peer_uid, int *status, sbx_err *err)
{
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;

	*status = 0;
	if (sbx_str_has_prefix(path, "/v1/approvers"))
		return h_approvers(d, method, path + strlen("/v1/approvers"), body, status, err);
	if (!d->reviews)
		return sbx_api_fail(err, SBX_E_INTERNAL, "the review queue is not running");
	if (strcmp(path, "/v1/reviews") == 0 && get) {
		char sandbox[128] = "";
		if (query && *query) {
			if (strncmp(query, "sandbox=", 8) != 0 || strchr(query, '&') ||
			    sbx_strlcpy(sandbox, query + 8, sizeof(sandbox)) >= sizeof(sandbox) || !sbx_name_valid(sandbox))
				return sbx_api_fail(err, SBX_E_INVALID, "GET /v1/reviews takes one parameter: sandbox=NAME");
		}
		*status = 200;
		return sbx_review_list(d->reviews, sandbox[0] ? sandbox : NULL);
	}
	if (strncmp(path, "/v1/reviews/", 12) == 0) {
		char id[32];
		const char *rest = path + 12, *slash = strchr(rest, '/');
		size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
		const char *action = slash ? slash + 1 : "";
		if (n >= sizeof(id))
			n = sizeof(id) - 1;
		memcpy(id, rest, n);
		id[n] = '\0';
		if (!id_valid(id))
			return sbx_api_fail(err, SBX_E_INVALID, "'%.20s' is not a review id (r- and 8 hex digits, as sbx review ls shows)",
					    id);
		if (query && *query)
			return sbx_api_fail(err, SBX_E_INVALID, "%s %s takes no query parameters", method, path);
		if (!*action && get) {
			json_t *o = sbx_review_get(d->reviews, id, err);
			*status = 200;
			return o;
		}
		if (strcmp(action, "approve") == 0 && post)
			return h_approve(d, id, body, peer_uid, status, err);
		if (strcmp(action, "deny") == 0 && post)
			return h_deny(d, id, body, peer_uid, status, err);
	}
	return sbx_api_fail(err, SBX_E_NOTFOUND, "no API endpoint %s %s (this daemon speaks API version %s)", method, path,
			    SBX_API_VERSION);
}

static json_t *classifier_json(struct sbx_daemon *d, enum sbx_classifier c)
{
	const struct sbx_classifier_cfg *cfg = &d->classifiers[c];

	return json_pack("{s:s, s:b, s:i, s:I, s:s}", "name", sbx_classifier_name(c), "enabled", cfg->enabled,
			 "approvals", (int)cfg->approvals, "timeout_ms",
			 (json_int_t)(cfg->timeout_ms ? cfg->timeout_ms : SBX_REVIEW_DEFAULT_TIMEOUT_MS), "summary",
			 sbx_classifier_summary(c));
}

json_t *sbx_api_classifiers_json(struct sbx_daemon *d)
{
	json_t *a = json_array();

	for (int i = 0; a && i < SBX_CLS_COUNT; i++)
		json_array_append_new(a, classifier_json(d, (enum sbx_classifier)i));
	return a ? a : json_array();
}

json_t *sbx_api_classifiers(struct sbx_daemon *d, const char *method, const char *rest, json_t *body, int *status,
			    sbx_err *err)
{
	static const char *const keys[] = {"enabled", "approvals", "timeout_ms", NULL};
	struct sbx_classifier_cfg cfg;
	enum sbx_classifier c;
	bool enabled, has_enabled, has_approvals, has_timeout;
	int64_t approvals = 1, timeout_ms = 0;

	if (!*rest && strcmp(method, "GET") == 0) {
		*status = 200;
		return json_pack("{s:o}", "classifiers", sbx_api_classifiers_json(d));
	}
	if (rest[0] != '/' || strcmp(method, "POST") != 0)
		return sbx_api_fail(err, SBX_E_NOTFOUND, "no API endpoint %s /v1/policy/classifiers%s", method, rest);
	if (sbx_classifier_parse(rest + 1, &c) < 0) {
		char names[128] = "";
		for (int i = 0; i < SBX_CLS_COUNT; i++) {
			size_t l = strlen(names);
			snprintf(names + l, sizeof(names) - l, "%s%s", i ? ", " : "", sbx_classifier_name((enum sbx_classifier)i));
		}
		return sbx_api_fail(err, SBX_E_NOTFOUND, "no classifier named '%.40s': the built-in ones are %s", rest + 1,
				    names);
	}
	if (sbx_api_only_keys(body, keys, err) < 0 || sbx_api_opt_bool(body, "enabled", &enabled, &has_enabled, err) < 0 ||
	    sbx_api_opt_int(body, "approvals", 1, 2, &approvals, &has_approvals, err) < 0 ||
	    sbx_api_opt_int(body, "timeout_ms", 0, 24ll * 3600 * 1000, &timeout_ms, &has_timeout, err) < 0)
		return NULL;
	cfg = d->classifiers[c];
	if (has_enabled)
		cfg.enabled = enabled;
	if (has_approvals)
		cfg.approvals = (uint32_t)approvals;
	if (has_timeout)
		cfg.timeout_ms = (uint64_t)timeout_ms;
	if (sbx_classifier_cfg_store(d->store, c, &cfg, err) < 0)
		return NULL;
	d->classifiers[c] = cfg; /* live: the next request sees it */
	log_info("classifier %s: %s, %u approval(s)", sbx_classifier_name(c), cfg.enabled ? "on" : "off", cfg.approvals);
	*status = 200;
	return classifier_json(d, c);
}
