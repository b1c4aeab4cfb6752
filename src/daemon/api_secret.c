/* api_secret.c - /v1/secrets: store, list and remove secrets; the built-in services.
 *
 * Mirrors api_policy.c: the daemon owns every check (secrets.c), so the CLI and any other client
 * get the same answers and messages; requests are checked strictly (unknown fields refused, a
 * misspelt "sandbox" must not silently make a secret global), strings have length limits.
 *
 * The value is the one field that must never travel back: no response carries it (listings
 * have the masked form), no message quotes it, nothing here logs, and the daemon's copy in the
 * parsed request is wiped once the request is handled. */
#include "api_secret.h"

#include "api_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "secrets.h"
#include "util.h"

#define MAX_HOSTS_TEXT (SBX_SERVICE_MAX_HOSTS * 256)

/* ---- request checking (shared idioms: api_check.h) ---- */

/* An optional string field: absent or null gives NULL. Controls are left to secrets.c's checks
 * when `controls_later`, whose messages say more. */
/* Adds the hosts of one comma-separated string (spaces around items allowed). */
static int add_hosts(const char *s, struct sbx_secret *sec, sbx_err *err)
{
	for (const char *p = s;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0)
			return sbx_err_set(err, SBX_E_INVALID, "an empty host in the list: separate hosts with single commas");
		if (sec->nhosts == SBX_SERVICE_MAX_HOSTS)
			return sbx_err_set(err, SBX_E_INVALID, "too many hosts: a service has at most %d", SBX_SERVICE_MAX_HOSTS);
		if (len >= sizeof(sec->hosts[0]))
			return sbx_err_set(err, SBX_E_INVALID, "host %zu is too long: a host name has at most 253 characters",
					   sec->nhosts + 1);
		memcpy(sec->hosts[sec->nhosts], p, len);
		sec->hosts[sec->nhosts++][len] = '\0';
		if (!end)
			return 0;
		p = end + 1;
	}
}

/* "hosts": a list of strings or one string, each item possibly a comma-separated list. */
static int parse_hosts(json_t *body, struct sbx_secret *sec, bool *given, sbx_err *err)
{
	json_t *v = json_object_get(body, "hosts"), *item;
	size_t i;

	*given = false;
	sec->nhosts = 0;
	if (!v || json_is_null(v))
		return 0;
	*given = true;
	if (json_is_string(v)) {
		const char *s;
		if (sbx_api_opt_str(body, "hosts", MAX_HOSTS_TEXT, false, &s, err) < 0)
			return -1;
		return add_hosts(s, sec, err);
	}
	if (!json_is_array(v))
		return sbx_err_set(err, SBX_E_INVALID, "'hosts' must be a list of strings or a comma-separated string");
	if (json_array_size(v) > SBX_SERVICE_MAX_HOSTS)
		return sbx_err_set(err, SBX_E_INVALID, "too many hosts: a service has at most %d", SBX_SERVICE_MAX_HOSTS);
	json_array_foreach(v, i, item)
	{
		const char *s = json_string_value(item);
		if (!s || json_string_length(item) > MAX_HOSTS_TEXT || strlen(s) != json_string_length(item) ||
		    !sbx_api_printable(s))
			return sbx_err_set(err, SBX_E_INVALID, "'hosts' must be a list of host names");
		if (add_hosts(s, sec, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- JSON views ---- */

/* A stored field for JSON: printable ASCII stays, anything else becomes '?' (the store only
 * holds validated text; this is the second line). */
static json_t *safe_str(const char *s)
{
	char buf[300];
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && o + 1 < sizeof(buf); p++)
		buf[o++] = (*p >= 0x20 && *p < 0x7f) ? (char)*p : '?';
	buf[o] = '\0';
	return json_string(buf);
}

static const char *kind_name(enum sbx_inject_kind k)
{
	switch (k) {
	case SBX_INJECT_HEADER: return "header";
	case SBX_INJECT_SIGV4: return "sigv4";
	case SBX_INJECT_GIT: return "git";
	}
	return "header";
}

static json_t *str_list(const char *const *v, size_t max)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < max && v[i]; i++)
		json_array_append_new(arr, safe_str(v[i]));
	return arr;
}

/* A secret as clients see it: never the value; for a built-in service its table entry. */
static json_t *secret_json(const struct sbx_secret *sec)
{
	const struct sbx_service *svc = sec->custom ? NULL : sbx_service_find(sec->name);
	json_t *o = json_object(), *hosts;

	json_object_set_new(o, "service", safe_str(sec->name));
	json_object_set_new(o, "sandbox", safe_str(sec->sandbox));
	json_object_set_new(o, "scope", json_string(sec->sandbox[0] ? "sandbox" : "global"));
	json_object_set_new(o, "custom", json_boolean(sec->custom));
	json_object_set_new(o, "kind", json_string(svc ? kind_name(svc->kind) : "header"));
	if (svc) {
		json_object_set_new(o, "title", json_string(svc->title));
		hosts = str_list(svc->hosts, SBX_SERVICE_MAX_HOSTS);
	} else {
		hosts = json_array();
		for (size_t i = 0; i < sec->nhosts && i < SBX_SERVICE_MAX_HOSTS; i++)
			json_array_append_new(hosts, safe_str(sec->hosts[i]));
	}
	json_object_set_new(o, "hosts", hosts);
	json_object_set_new(o, "header", safe_str(svc ? svc->header : sec->header));
	json_object_set_new(o, "format", safe_str(svc ? svc->format : sec->format));
	if (sec->masked[0])
		json_object_set_new(o, "masked", json_string(sec->masked));
	if (sec->updated_at)
		json_object_set_new(o, "updated_at", json_integer((json_int_t)sec->updated_at));
	return o;
}

static bool sandbox_exists(struct sbx_daemon *d, const char *name)
{
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next)
		if (!sb->removed && strcmp(sb->name, name) == 0)
			return true;
	return false;
}

/* ", stored custom services: a, b" for an unknown-service message (nothing when there are none). */
static void append_custom_names(struct sbx_daemon *d, sbx_err *err)
{
	struct sbx_secret *v;
	size_t n, shown = 0;
	sbx_err e2 = SBX_ERR_INIT;
	char list[400] = "";

	if (sbx_secret_list(d->store, &v, &n, &e2) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		if (!v[i].custom)
			continue;
		for (size_t j = 0; j < i && !dup; j++)
			dup = v[j].custom && strcmp(v[j].name, v[i].name) == 0;
		if (dup)
			continue;
		size_t l = strlen(list);
		snprintf(list + l, sizeof(list) - l, "%s%s", shown++ ? ", " : "", v[i].name);
	}
	sbx_secrets_free(v, n);
	if (shown) {
		size_t l = strlen(err->msg);
		snprintf(err->msg + l, sizeof(err->msg) - l, " (stored custom services: %s)", list);
	}
}

/* ---- GET /v1/secrets ---- */

static json_t *h_list(struct sbx_daemon *d, int *status, sbx_err *err)
{
	struct sbx_secret *v;
	size_t n;

	if (sbx_secret_list(d->store, &v, &n, err) < 0)
		return NULL;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, secret_json(&v[i]));
	sbx_secrets_free(v, n);
	*status = 200;
	return json_pack("{s:o}", "secrets", arr);
}

/* ---- POST /v1/secrets ---- */

static json_t *do_set(struct sbx_daemon *d, json_t *body, const char *value, int *status, sbx_err *err)
{
	static const char *const keys[] = {"service", "value", "sandbox", "custom", "hosts", "header", "format", "dry_run",
					   NULL};
	const char *service, *sandbox, *header, *format;
	bool custom, custom_given, dry_run, hosts_given;
	struct sbx_secret sec;

	memset(&sec, 0, sizeof(sec));
	if (sbx_api_only_keys(body, keys, err) < 0 || sbx_api_opt_str(body, "service", sizeof(sec.name) - 1, false, &service, err) < 0 ||
	    sbx_api_opt_sandbox(body, &sandbox, err) < 0 || sbx_api_opt_bool(body, "custom", &custom, &custom_given, err) < 0 ||
	    sbx_api_opt_bool(body, "dry_run", &dry_run, NULL, err) < 0 ||
	    sbx_api_opt_str(body, "header", sizeof(sec.header) - 1, false, &header, err) < 0 ||
	    sbx_api_opt_str(body, "format", sizeof(sec.format) - 1, true, &format, err) < 0 ||
	    parse_hosts(body, &sec, &hosts_given, err) < 0)
		return NULL;
	if (!service || !*service)
		return sbx_api_fail(err, SBX_E_INVALID, "'service' is required: a built-in service (see GET /v1/secrets/services) or "
				   "a custom name");
	sbx_strlcpy(sec.name, service, sizeof(sec.name));
	sbx_strlcpy(sec.sandbox, sandbox ? sandbox : "", sizeof(sec.sandbox));
	sbx_strlcpy(sec.header, header ? header : "", sizeof(sec.header));
	sbx_strlcpy(sec.format, format ? format : "", sizeof(sec.format));
	sec.custom = custom;
	sec.value = (char *)value; /* read only: sbx_secret_set keeps the caller's value as it is */

	/* A new value for a custom service already defined: keep its hosts, header and format. */
	if (!custom_given && !sbx_service_find(service) && !hosts_given && !header && !format) {
		struct sbx_secret def;
		int r = sbx_secret_get(d->store, service, sec.sandbox, &def, err);
		if (r < 0)
			return NULL;
		if (r == 1 && def.custom) {
			sec.custom = true;
			sec.nhosts = def.nhosts;
			memcpy(sec.hosts, def.hosts, sizeof(sec.hosts));
			sbx_strlcpy(sec.header, def.header, sizeof(sec.header));
			sbx_strlcpy(sec.format, def.format, sizeof(sec.format));
		}
		sbx_secret_clear(&def);
		if (!sec.custom) {
			sbx_secret_validate(&sec, err); /* the unknown-service message */
			append_custom_names(d, err);
			return NULL;
		}
	}
	if (dry_run) {
		if (sbx_secret_validate(&sec, err) < 0)
			return NULL;
		*status = 200;
		return json_pack("{s:b, s:o}", "valid", 1, "secret", secret_json(&sec));
	}
	if (!value)
		return sbx_api_fail(err, SBX_E_INVALID, "'value' is required: the secret itself");
	bool replaced;
	if (sbx_secret_set_ex(d->store, &sec, &replaced, err) < 0)
		return NULL;
	/* Answer with the secret as stored (normalised hosts, defaults, the masked value). */
	struct sbx_secret stored;
	int r = sbx_secret_get(d->store, sec.name, sec.sandbox, &stored, err);
	if (r <= 0) {
		if (r == 0)
			sbx_api_fail(err, SBX_E_INTERNAL, "the secret was stored but cannot be read back");
		return NULL;
	}
	json_t *o = json_pack("{s:o, s:b}", "secret", secret_json(&stored), "replaced", replaced);
	sbx_secret_clear(&stored);
	if (sec.sandbox[0])
		json_object_set_new(o, "sandbox_exists", json_boolean(sandbox_exists(d, sec.sandbox)));
	*status = replaced ? 200 : 201;
	return o;
}

static json_t *h_set(struct sbx_daemon *d, json_t *body, int *status, sbx_err *err)
{
	json_t *jv = json_object_get(body, "value");
	const char *value = NULL;
	json_t *res = NULL;

	if (jv && !json_is_null(jv)) {
		/* Checked here with messages that say nothing of the content; the rest in secrets.c. */
		if (!json_is_string(jv))
			return sbx_api_fail(err, SBX_E_INVALID, "'value' must be a string");
		if (json_string_length(jv) > SBX_SECRET_VALUE_MAX)
			sbx_api_fail(err, SBX_E_INVALID, "the secret is longer than %d bytes: check what was given",
			     SBX_SECRET_VALUE_MAX);
		else if (strlen(json_string_value(jv)) != json_string_length(jv))
			sbx_api_fail(err, SBX_E_INVALID, "the secret contains a NUL byte: give the key alone");
		else
			value = json_string_value(jv);
		if (!value)
			goto wipe;
	}
	res = do_set(d, body, value, status, err);
wipe:
	/* The parsed request is the daemon's last copy of the value: wipe it (the string is ours,
	 * the body is freed with the connection's next request). */
	if (json_is_string(jv))
		explicit_bzero((char *)json_string_value(jv), json_string_length(jv));
	return res;
}

/* ---- DELETE /v1/secrets ---- */

static json_t *h_remove(struct sbx_daemon *d, json_t *body, int *status, sbx_err *err)
{
	static const char *const keys[] = {"service", "sandbox", NULL};
	const char *service, *sandbox;

	if (sbx_api_only_keys(body, keys, err) < 0 || sbx_api_opt_str(body, "service", 63, false, &service, err) < 0 ||
	    sbx_api_opt_sandbox(body, &sandbox, err) < 0)
		return NULL;
	if (!service || !*service)
		return sbx_api_fail(err, SBX_E_INVALID, "'service' is required: the name shown by `sbx secret ls`");
	if (sbx_secret_remove(d->store, service, sandbox ? sandbox : "", err) < 0) {
		if (err->code != SBX_E_NOTFOUND)
			return NULL;
		/* Say where it is stored, if anywhere: the scope is the usual slip. */
		struct sbx_secret *v;
		size_t n;
		sbx_err e2 = SBX_ERR_INIT;
		if (sbx_secret_list(d->store, &v, &n, &e2) == 0) {
			for (size_t i = 0; i < n; i++) {
				if (strcmp(v[i].name, service) != 0)
					continue;
				size_t l = strlen(err->msg);
				if (v[i].sandbox[0])
					snprintf(err->msg + l, sizeof(err->msg) - l, " (one is stored for sandbox %s: add --sandbox %s)",
						 v[i].sandbox, v[i].sandbox);
				else
					snprintf(err->msg + l, sizeof(err->msg) - l, " (one is stored globally: use -g)");
				break;
			}
			sbx_secrets_free(v, n);
		}
		return NULL;
	}
	*status = 200;
	return json_pack("{s:{s:s, s:s, s:s}}", "removed", "service", service, "sandbox", sandbox ? sandbox : "", "scope",
			 sandbox ? "sandbox" : "global");
}

/* ---- GET /v1/secrets/services ---- */

static json_t *h_services(int *status)
{
	size_t n;
	const struct sbx_service *v = sbx_services(&n);
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		const char *envs[8];
		size_t ne = sbx_service_host_envs(&v[i], envs, SBX_ARRAY_LEN(envs));
		json_t *host_env = json_array();
		for (size_t j = 0; j < ne; j++)
			json_array_append_new(host_env, json_string(envs[j]));
		json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:o}", "name", v[i].name, "title", v[i].title,
				      "kind", kind_name(v[i].kind), "hosts", str_list(v[i].hosts, SBX_SERVICE_MAX_HOSTS),
				      "header", v[i].header, "format", v[i].format, "host_env", host_env, "sandbox_env",
				      str_list(v[i].sandbox_env, SBX_ARRAY_LEN(v[i].sandbox_env)));
		json_object_set_new(o, "placeholder",
				    json_string(v[i].placeholder_prefix[0] ? "per sandbox" : "proxy-managed"));
		json_object_set_new(o, "placeholder_prefix", json_string(v[i].placeholder_prefix));
		json_array_append_new(arr, o);
	}
	*status = 200;
	return json_pack("{s:o}", "services", arr);
}

/* ---- routing ---- */

json_t *sbx_api_secret(struct sbx_daemon *d, const char *method, const char *path, const char *query, json_t *body,
		       int *status, sbx_err *err)
{
	static bool key_ready;
	const char *rest = path + strlen("/v1/secrets");
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0, del = strcmp(method, "DELETE") == 0;

	*status = 0;
	if (!sbx_str_has_prefix(path, "/v1/secrets") || (*rest && *rest != '/'))
		return sbx_api_fail(err, SBX_E_NOTFOUND, "no API endpoint %s %s", method, path);
	if (query && *query)
		return sbx_api_fail(err, SBX_E_INVALID, "%s %s takes no query parameters", method, path);
	/* Placeholders need the install key; the daemon loads it at start, and this makes sure of
	 * it for a daemon that did not. */
	if (!key_ready) {
		if (sbx_secrets_init(d->store, err) < 0)
			return NULL;
		key_ready = true;
	}
	if (*rest == '\0' && get)
		return h_list(d, status, err);
	if (*rest == '\0' && post)
		return h_set(d, body, status, err);
	if (*rest == '\0' && del)
		return h_remove(d, body, status, err);
	if (strcmp(rest, "/services") == 0 && get)
		return h_services(status);
	return sbx_api_fail(err, SBX_E_NOTFOUND, "no API endpoint %s %s (this daemon speaks API version %s)", method, path,
		    SBX_API_VERSION);
}
