/* test_secrets.c - the secret store and the built-in services (src/daemon/secrets.c).
 *
 * The service table (every entry well-formed), validation of every field with its message
 * (and no message ever quoting a value), the store on real databases in a temporary
 * directory: set / replace / get with sandbox-over-global precedence, remove, listings that
 * carry no values, a replace that fails half-way (an injected SQLite failure) leaving the old
 * secret, rows damaged in the database refused on the way out; the mask at its edges; the
 * placeholders (none before the key is loaded, stable across re-opening, different per
 * install, per sandbox and per variable where they should be, the documented form per
 * service); the host environment fallbacks. */
#include "daemon/secrets.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "daemon/policy.h"
#include "daemon/store.h"
#include "tap.h"
#include "util.h"

static sbx_err err;
#define E (sbx_err_clear(&err), &err)

static char tmpdir[PATH_MAX];

static bool has(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

static struct sbx_store *open_db(const char *name)
{
	char path[PATH_MAX + 64];
	struct sbx_store *s = NULL;
	sbx_err e = SBX_ERR_INIT;

	snprintf(path, sizeof(path), "%s/%s.db", tmpdir, name);
	if (sbx_store_open(path, &s, &e) < 0) {
		fprintf(stderr, "sbx_store_open %s: %s\n", path, e.msg);
		abort();
	}
	return s;
}

static void exec_sql(struct sbx_store *s, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(sbx_store_db(s), sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "test SQL failed: %s: %s\n", sql, msg ? msg : "?");
		abort();
	}
}

static struct sbx_secret builtin(const char *name, const char *sandbox, const char *value)
{
	struct sbx_secret s;

	memset(&s, 0, sizeof(s));
	sbx_strlcpy(s.name, name, sizeof(s.name));
	sbx_strlcpy(s.sandbox, sandbox ? sandbox : "", sizeof(s.sandbox));
	s.value = (char *)value;
	return s;
}

/* A custom secret; hosts is a NULL-terminated list. */
static struct sbx_secret custom(const char *name, const char *sandbox, const char *const *hosts, const char *header,
				const char *format, const char *value)
{
	struct sbx_secret s = builtin(name, sandbox, value);

	s.custom = true;
	for (size_t i = 0; hosts && hosts[i] && i < SBX_SERVICE_MAX_HOSTS + 4; i++) {
		if (i < SBX_SERVICE_MAX_HOSTS)
			sbx_strlcpy(s.hosts[i], hosts[i], sizeof(s.hosts[i]));
		s.nhosts = i + 1;
	}
	sbx_strlcpy(s.header, header ? header : "", sizeof(s.header));
	sbx_strlcpy(s.format, format ? format : "", sizeof(s.format));
	return s;
}

/* ---- the built-in services ---- */

static void test_services(void)
{
	static const char *const want[] = {"anthropic", "openai", "google",     "github", "aws",
					   "groq",      "mistral", "openrouter", "xai"};
	size_t n;
	const struct sbx_service *v = sbx_services(&n);

	is_int(n, SBX_ARRAY_LEN(want), "nine built-in services");
	for (size_t i = 0; i < n && i < SBX_ARRAY_LEN(want); i++) {
		const struct sbx_service *s = &v[i];
		bool hosts_ok = s->hosts[0] != NULL, header_ok = s->header && s->header[0], env_ok = s->sandbox_env[0];
		for (size_t h = 0; h < SBX_SERVICE_MAX_HOSTS && s->hosts[h]; h++) {
			struct sbx_resource r;
			hosts_ok = hosts_ok && sbx_resource_parse(s->hosts[h], &r, E) == 0 && strcmp(r.text, s->hosts[h]) == 0 &&
				   r.type != SBX_RES_ANY && r.type != SBX_RES_ADDR && r.port == 0;
		}
		for (const char *p = s->header; header_ok && *p; p++)
			header_ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-';
		const char *first = s->format ? strstr(s->format, "%s") : NULL;
		bool format_ok = s->kind == SBX_INJECT_SIGV4 ? s->format && !s->format[0]
							     : first && !strstr(first + 2, "%s") && !strchr(first + 2, '%') &&
								       (size_t)(strchr(s->format, '%') - s->format) ==
									       (size_t)(first - s->format);
		is_str(s->name, want[i], "service %zu is %s", i, want[i]);
		ok(s->title && s->title[0] && hosts_ok && header_ok && format_ok && env_ok && s->host_env &&
			   s->host_env[0] && s->placeholder_prefix,
		   "  %s: title, hosts (normalised host resources), header, format, variables", s->name);
		ok(sbx_service_find(s->name) == s, "  found by name");
	}
	ok(sbx_service_find("Anthropic") == NULL && sbx_service_find("") == NULL && sbx_service_find(NULL) == NULL &&
		   sbx_service_find("gemini") == NULL,
	   "names are exact");

	const struct sbx_service *a = sbx_service_find("anthropic"), *gh = sbx_service_find("github"),
				 *aws = sbx_service_find("aws"), *g = sbx_service_find("google");
	is_str(a->header, "x-api-key", "anthropic: x-api-key");
	is_str(a->format, "%s", "  the key as it is");
	is_str(sbx_service_find("openai")->format, "Bearer %s", "openai: Bearer");
	is_str(g->header, "x-goog-api-key", "google: x-goog-api-key");
	ok(strcmp(g->sandbox_env[0], "GEMINI_API_KEY") == 0 && strcmp(g->sandbox_env[1], "GOOGLE_API_KEY") == 0,
	   "  GEMINI_API_KEY and GOOGLE_API_KEY in the sandbox");
	ok(gh->kind == SBX_INJECT_GIT && strcmp(gh->hosts[0], "api.github.com") == 0 &&
		   strcmp(gh->hosts[1], "github.com") == 0 && !gh->hosts[2],
	   "github: git kind, api.github.com and github.com");
	ok(aws->kind == SBX_INJECT_SIGV4 && strcmp(aws->hosts[0], "**.amazonaws.com") == 0 &&
		   strcmp(aws->sandbox_env[0], "AWS_ACCESS_KEY_ID") == 0 &&
		   strcmp(aws->sandbox_env[1], "AWS_SECRET_ACCESS_KEY") == 0,
	   "aws: SigV4 on **.amazonaws.com, dummy key id and secret in the sandbox");
	is_str(sbx_service_find("mistral")->placeholder_prefix, "", "mistral: proxy-managed");

	const char *envs[8];
	size_t ne = sbx_service_host_envs(aws, envs, 8);
	ok(ne == 3 && strcmp(envs[0], "AWS_ACCESS_KEY_ID") == 0 && strcmp(envs[2], "AWS_SESSION_TOKEN") == 0,
	   "aws's host variables: key id, secret, session token");
	ne = sbx_service_host_envs(gh, envs, 8);
	ok(ne == 2 && strcmp(envs[0], "GITHUB_TOKEN") == 0 && strcmp(envs[1], "GH_TOKEN") == 0,
	   "github's: GITHUB_TOKEN, then GH_TOKEN");
	ne = sbx_service_host_envs(a, envs, 8);
	ok(ne == 1 && strcmp(envs[0], "ANTHROPIC_API_KEY") == 0, "anthropic's: ANTHROPIC_API_KEY");
	ok(sbx_service_host_envs(aws, envs, 1) == 1, "  bounded by the room given");
}

/* ---- validation ---- */

static void bad(struct sbx_secret s, const char *why, const char *label)
{
	int rc = sbx_secret_validate(&s, E);

	ok(rc < 0 && err.code == SBX_E_INVALID && has(err.msg, why), "refused: %s", label);
	if (rc == 0 || !has(err.msg, why))
		diag("got: %s", rc < 0 ? err.msg : "accepted");
	if (rc < 0 && s.value && strlen(s.value) >= 4)
		ok(!has(err.msg, s.value), "  the message does not quote the value");
}

static void good(struct sbx_secret *s, const char *label)
{
	int rc = sbx_secret_validate(s, E);

	ok(rc == 0, "accepted: %s", label);
	if (rc < 0)
		diag("%s", err.msg);
}

static void test_validate_names(void)
{
	static const char *const h[] = {"api.example.com", NULL};
	char long_name[80];

	memset(long_name, 'a', 70);
	long_name[70] = '\0';
	struct sbx_secret s;
	bad(builtin("", NULL, NULL), "name the service", "an empty name");
	s = builtin("", NULL, NULL);
	memcpy(s.name, long_name, sizeof(s.name)); /* no NUL inside the field */
	bad(s, "too long", "a name that fills the field");
	bad(builtin("foo", NULL, "x1234567"), "unknown service 'foo'", "an unknown service");
	bad(builtin("foo", NULL, NULL), "sbx secret set-custom foo --host HOST", "  names the way to a custom service");
	bad(builtin("foo", NULL, NULL), "anthropic, openai, google, github, aws, groq, mistral, openrouter, xai",
	    "  and lists the built-in ones");
	bad(builtin("Anthropic", NULL, NULL), "unknown service 'Anthropic'", "built-in names are exact");
	bad(custom("openai", NULL, h, NULL, NULL, NULL), "'openai' is a built-in service", "a custom name that is built in");
	bad(custom("OpenAI", NULL, h, NULL, NULL, NULL), "sbx secret set openai", "  whatever its case");
	bad(custom("My API", NULL, h, NULL, NULL, NULL), "invalid service name 'My API'", "a custom name with a space");
	bad(custom("MyApi", NULL, h, NULL, NULL, NULL), "lowercase", "a custom name with capitals");
	bad(custom("-api", NULL, h, NULL, NULL, NULL), "starting with a letter or digit", "a custom name starting with -");
	bad(custom("a\x1b[31m", NULL, h, NULL, NULL, NULL), "invalid service name 'a?[31m'",
	    "a control character is shown as ? in the message");
	s = custom("my-api_2.v1", NULL, h, NULL, NULL, NULL);
	good(&s, "a custom name of lowercase letters, digits, '-', '_', '.'");
	s = builtin("anthropic", "box-1", NULL);
	good(&s, "a built-in service for a sandbox");
	bad(builtin("anthropic", "bad/name", NULL), "invalid sandbox name 'bad/name'", "a bad sandbox name");
	bad(builtin("anthropic", "-x", NULL), "invalid sandbox name", "a sandbox name starting with -");
	s = builtin("anthropic", NULL, NULL);
	memset(s.sandbox, 'b', sizeof(s.sandbox));
	bad(s, "sandbox name is too long", "a sandbox name that fills the field");
}

static void test_validate_custom(void)
{
	static const char *const one[] = {"api.example.com", NULL};
	struct sbx_secret s;

	bad(custom("x", NULL, NULL, NULL, NULL, NULL), "needs the hosts its secret is for", "a custom service without hosts");
	bad(custom("x", NULL, (const char *const[]){"**", NULL}, NULL, NULL, NULL), "every host", "the host **");
	bad(custom("x", NULL, (const char *const[]){"10.0.0.1", NULL}, NULL, NULL, NULL), "is an address", "an address");
	bad(custom("x", NULL, (const char *const[]){"10.0.0.0/8", NULL}, NULL, NULL, NULL), "is an address", "a CIDR");
	bad(custom("x", NULL, (const char *const[]){"2001:db8::1", NULL}, NULL, NULL, NULL), "is an address",
	    "an IPv6 address");
	bad(custom("x", NULL, (const char *const[]){"*.com", NULL}, NULL, NULL, NULL), "whole top-level domain",
	    "a wildcard over a top-level domain");
	bad(custom("x", NULL, (const char *const[]){"**.io", NULL}, NULL, NULL, NULL), "whole top-level domain",
	    "  any depth too");
	bad(custom("x", NULL, (const char *const[]){"api.example.com:8443", NULL}, NULL, NULL, NULL), "has a port",
	    "a host with a port");
	bad(custom("x", NULL, (const char *const[]){"api.example.com", "exa mple.com", NULL}, NULL, NULL, NULL),
	    "host 'exa mple.com'", "a bad host anywhere in the list is named");
	bad(custom("x", NULL, (const char *const[]){"bad..example.com", NULL}, NULL, NULL, NULL), "bad..example.com",
	    "an empty label");
	const char *many[SBX_SERVICE_MAX_HOSTS + 2];
	char names[SBX_SERVICE_MAX_HOSTS + 1][32];
	for (size_t i = 0; i <= SBX_SERVICE_MAX_HOSTS; i++) {
		snprintf(names[i], sizeof(names[i]), "h%zu.example.com", i);
		many[i] = names[i];
	}
	many[SBX_SERVICE_MAX_HOSTS + 1] = NULL;
	bad(custom("x", NULL, many, NULL, NULL, NULL), "at most 16", "17 hosts");
	many[SBX_SERVICE_MAX_HOSTS] = NULL;
	s = custom("x", NULL, many, NULL, NULL, NULL);
	good(&s, "16 hosts");

	s = custom("x", NULL, (const char *const[]){"API.Example.COM.", "*.Example.org", "**.example.net", "api.example.com",
						   NULL},
		   NULL, NULL, NULL);
	good(&s, "exact, one-label and any-depth hosts");
	ok(s.nhosts == 3 && strcmp(s.hosts[0], "api.example.com") == 0 && strcmp(s.hosts[1], "*.example.org") == 0 &&
		   strcmp(s.hosts[2], "**.example.net") == 0 && s.hosts[3][0] == '\0',
	   "  normalised (lowercase, no trailing dot), the repeat dropped");
	ok(strcmp(s.header, "Authorization") == 0 && strcmp(s.format, "Bearer %s") == 0,
	   "  header and format default to Authorization: Bearer %%s");

	bad(custom("x", NULL, one, "X Api", NULL, NULL), "invalid header name 'X Api'", "a header with a space");
	bad(custom("x", NULL, one, "X-Api:", NULL, NULL), "invalid header name", "a header with a colon");
	bad(custom("x", NULL, one, "Host", NULL, NULL), "cannot carry a secret", "the Host header");
	bad(custom("x", NULL, one, "content-length", NULL, NULL), "cannot carry a secret", "Content-Length");
	bad(custom("x", NULL, one, "Transfer-Encoding", NULL, NULL), "cannot carry a secret", "Transfer-Encoding");
	bad(custom("x", NULL, one, "Connection", NULL, NULL), "cannot carry a secret", "Connection");
	s = custom("x", NULL, one, NULL, NULL, NULL);
	memset(s.header, 'X', sizeof(s.header));
	bad(s, "header name is too long", "a header that fills the field");
	s = custom("x", NULL, one, "X-Api-Key", "%s", NULL);
	good(&s, "a header of its own, the value as it is");

	bad(custom("x", NULL, one, NULL, "Bearer", NULL), "exactly one %s", "a format without %s");
	bad(custom("x", NULL, one, NULL, "%s %s", NULL), "exactly one %s", "a format with two");
	bad(custom("x", NULL, one, NULL, "Bearer %d", NULL), "only as the %s", "another conversion");
	bad(custom("x", NULL, one, NULL, "100%% %s", NULL), "only as the %s", "%% (printf and replacement would differ)");
	bad(custom("x", NULL, one, NULL, "Bearer %", NULL), "only as the %s", "a lone % at the end");
	bad(custom("x", NULL, one, NULL, "Bearer %s\r\nX-Evil: 1", NULL), "line break", "a format with CR LF");
	bad(custom("x", NULL, one, NULL, "Bearer %s\n", NULL), "line break", "a format with LF");
	bad(custom("x", NULL, one, NULL, "Bearer\t%s", NULL), "control or non-ASCII", "a format with a tab");
	bad(custom("x", NULL, one, NULL, "Bearer \xc3\xa9%s", NULL), "control or non-ASCII", "a non-ASCII format");
	s = custom("x", NULL, one, NULL, NULL, NULL);
	memset(s.format, 'f', sizeof(s.format));
	bad(s, "format is too long", "a format that fills the field");
	s = custom("x", NULL, one, NULL, "token=%s; v=1", NULL);
	good(&s, "text around the %s");

	s = builtin("anthropic", NULL, NULL);
	sbx_strlcpy(s.hosts[0], "evil.example.com", sizeof(s.hosts[0]));
	s.nhosts = 1;
	bad(s, "fixed hosts, header and format", "hosts for a built-in service");
	s = builtin("openai", NULL, NULL);
	sbx_strlcpy(s.header, "X-Other", sizeof(s.header));
	bad(s, "fixed hosts, header and format", "a header for a built-in service");
	s = builtin("openai", NULL, NULL);
	sbx_strlcpy(s.format, "token %s", sizeof(s.format));
	bad(s, "fixed hosts, header and format", "a format for a built-in service");
}

static void test_validate_values(void)
{
	static char big[SBX_SECRET_VALUE_MAX + 2];
	struct sbx_secret s;

	bad(builtin("openai", NULL, ""), "the secret is empty", "an empty value");
	memset(big, 'k', SBX_SECRET_VALUE_MAX + 1);
	big[SBX_SECRET_VALUE_MAX + 1] = '\0';
	bad(builtin("openai", NULL, big), "longer than 16384 bytes", "16385 bytes");
	big[SBX_SECRET_VALUE_MAX] = '\0';
	s = builtin("openai", NULL, big);
	good(&s, "16384 bytes");
	bad(builtin("openai", NULL, "sk-proj-abc\ndef1234"), "line break (at byte 12)", "a value with LF");
	bad(builtin("openai", NULL, "sk-proj-abcdef1234\r"), "line break", "a value with CR");
	bad(builtin("openai", NULL, "sk-proj-abc\tdef1234"), "control or non-ASCII character (at byte 12)",
	    "a value with a tab");
	bad(builtin("openai", NULL, "sk-proj-abc\x7f" "def1234"), "control or non-ASCII", "a value with DEL");
	bad(builtin("openai", NULL, "sk-proj-abc\x1b[2Jdef"), "control or non-ASCII", "a value with ESC");
	bad(builtin("openai", NULL, "sk-proj-\xc3\xa9t\xc3\xa9-1234"), "control or non-ASCII", "a non-ASCII value");
	bad(builtin("openai", NULL, " sk-proj-abcdef1234"), "starts or ends with a space", "a leading space");
	bad(builtin("openai", NULL, "sk-proj-abcdef1234 "), "starts or ends with a space", "a trailing space");
	s = builtin("openai", NULL, "two words-1234");
	good(&s, "a space inside is kept");

	/* aws */
	bad(builtin("aws", NULL, "AKIAABCDEFGHIJKLMNOP"), "ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]",
	    "aws without the secret");
	bad(builtin("aws", NULL, "AKIAABCDEFGHIJKLMNOP:wJalrXUtnFEMI:tok:x"), "ACCESS_KEY_ID:SECRET", "aws in four parts");
	bad(builtin("aws", NULL, "AKIA123:wJalrXUtnFEMIK7MDENG"), "16 to 128 uppercase", "a short key id");
	bad(builtin("aws", NULL, "akiaabcdefghijklmnop:wJalrXUtnFEMIK7MDENG"), "16 to 128 uppercase", "a lowercase key id");
	bad(builtin("aws", NULL, "AKIAABCDEFGHIJKLMNOP:"), "secret access key", "an empty secret");
	bad(builtin("aws", NULL, "AKIAABCDEFGHIJKLMNOP:wJalr-XUtnFEMI"), "secret access key", "a secret with '-'");
	bad(builtin("aws", NULL, "AKIAABCDEFGHIJKLMNOP:wJalrXUtnFEMIK7MDENG:"), "session token", "an empty token");
	bad(builtin("aws", NULL, "ASIAABCDEFGHIJKLMNOP:wJalrXUtnFEMIK7MDENG"), "temporary one (ASIA...)",
	    "a temporary key without its token");
	s = builtin("aws", NULL, "AKIAABCDEFGHIJKLMNOP:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
	good(&s, "aws key id and secret");
	s = builtin("aws", NULL, "ASIAABCDEFGHIJKLMNOP:wJalrXUtnFEMI/K7MDENG:IQoJb3JpZ2luX2VjE//////////wEaCXVz==");
	good(&s, "aws temporary credentials with their token");
	s = custom("awsish", NULL, (const char *const[]){"api.example.com", NULL}, NULL, NULL, "no-colons-here");
	good(&s, "a custom service's value has no aws form to follow");
}

/* ---- masking ---- */

static void mask_is(const char *value, const char *want)
{
	char out[32];

	memset(out, 'Z', sizeof(out));
	sbx_secret_mask(value, out, sizeof(out));
	is_str(out, want, "mask of a %zu-byte value", value ? strlen(value) : 0);
}

static void test_mask(void)
{
	char out[32];

	mask_is("sk-ant-api03-abcdefghijklmnopqrstuvwxyz3f9c", "sk-a\xe2\x80\xa6" "3f9c");
	mask_is("0123456789abcdef", "0123\xe2\x80\xa6" "cdef");
	mask_is("0123456789abcde", "012\xe2\x80\xa6" "cde");
	mask_is("01234567", "01\xe2\x80\xa6" "67");
	mask_is("0123", "0\xe2\x80\xa6" "3");
	mask_is("abc", "\xe2\x80\xa6");
	mask_is("a", "\xe2\x80\xa6");
	mask_is("", "");
	mask_is(NULL, "");
	mask_is("\x01" "bcdefghijklmnop\x7f", "*bcd\xe2\x80\xa6" "nop*");
	mask_is("ab cdefghijklmn o", "ab*c\xe2\x80\xa6" "mn*o");
	memset(out, 'Z', sizeof(out));
	sbx_secret_mask("0123456789abcdef", out, 11);
	is_str(out, "", "a buffer too small for the mask gets nothing, not a cut mask");
	sbx_secret_mask("0123456789abcdef", out, 12);
	is_str(out, "0123\xe2\x80\xa6" "cdef", "  one that just fits gets it");
	out[0] = 'Z';
	sbx_secret_mask("0123456789abcdef", out, 0);
	ok(out[0] == 'Z', "  a zero-sized buffer is not written");
}

/* ---- the store ---- */

static int64_t count(struct sbx_store *s, const char *where)
{
	char sql[256];
	sqlite3_stmt *st;
	int64_t n = -1;

	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM secrets WHERE %s", where);
	if (sqlite3_prepare_v2(sbx_store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* The value stored for (name, sandbox) with precedence, or NULL (the caller frees). */
static char *get_value(struct sbx_store *s, const char *name, const char *sandbox, char *scope_out, size_t n)
{
	struct sbx_secret sec;
	int r = sbx_secret_get(s, name, sandbox, &sec, E);
	char *v = NULL;

	if (r == 1) {
		v = strdup(sec.value);
		if (scope_out)
			sbx_strlcpy(scope_out, sec.sandbox, n);
	}
	sbx_secret_clear(&sec);
	return v;
}

static void test_store(void)
{
	struct sbx_store *s = open_db("store");
	struct sbx_secret sec, *list = NULL;
	size_t n = 0;
	bool replaced = true;
	char scope[64];
	cleanup_free char *v1 = NULL, *v2 = NULL, *v3 = NULL, *v4 = NULL, *v5 = NULL, *v6 = NULL;
	sqlite3_stmt *st;
	int version = -1;

	if (sqlite3_prepare_v2(sbx_store_db(s), "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			version = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	is_int(version, SBX_STORE_SCHEMA_VERSION, "the store is at schema version %d", SBX_STORE_SCHEMA_VERSION);

	sec = builtin("anthropic", NULL, "sk-ant-api03-global-0001");
	ok(sbx_secret_set_ex(s, &sec, &replaced, E) == 0 && !replaced, "store a global secret");
	sec = builtin("anthropic", NULL, "sk-ant-api03-global-0002");
	ok(sbx_secret_set_ex(s, &sec, &replaced, E) == 0 && replaced, "storing it again replaces it");
	is_int(count(s, "name = 'anthropic'"), 1, "  one row");
	sec = builtin("anthropic", "box", "sk-ant-api03-box-00003");
	ok(sbx_secret_set(s, &sec, E) == 0, "store one for sandbox box");
	v1 = get_value(s, "anthropic", "box", scope, sizeof(scope));
	is_str(v1, "sk-ant-api03-box-00003", "sandbox box gets its own");
	is_str(scope, "box", "  from its scope");
	v2 = get_value(s, "anthropic", "other", scope, sizeof(scope));
	is_str(v2, "sk-ant-api03-global-0002", "another sandbox gets the global one");
	is_str(scope, "", "  from the global scope");
	v3 = get_value(s, "anthropic", "", NULL, 0);
	is_str(v3, "sk-ant-api03-global-0002", "no sandbox: the global one");
	v4 = get_value(s, "anthropic", NULL, NULL, 0);
	is_str(v4, "sk-ant-api03-global-0002", "  (NULL alike)");
	ok(sbx_secret_get(s, "openai", "box", &sec, E) == 0 && sec.value == NULL, "nothing stored: 0");
	ok(sbx_secret_get(s, "", "box", &sec, E) == 0, "  nor for an empty name");

	sec = builtin("openai", "box", "sk-proj-only-for-box1");
	ok(sbx_secret_set(s, &sec, E) == 0, "a secret stored for a sandbox only");
	ok(sbx_secret_get(s, "openai", "other", &sec, E) == 0, "  is not another sandbox's");
	ok(sbx_secret_get(s, "openai", "", &sec, E) == 0, "  nor global");

	sec = custom("myapi", NULL, (const char *const[]){"API.example.com", "*.example.org", NULL}, "X-Api-Key", "token %s",
		     "tok-1234567890abcdef");
	ok(sbx_secret_set(s, &sec, E) == 0, "store a custom secret");
	ok(strcmp(sec.hosts[0], "API.example.com") == 0, "  the caller's struct is left as it was");
	ok(sbx_secret_get(s, "myapi", "box", &sec, E) == 1 && sec.custom && sec.nhosts == 2 &&
		   strcmp(sec.hosts[0], "api.example.com") == 0 && strcmp(sec.hosts[1], "*.example.org") == 0 &&
		   strcmp(sec.header, "X-Api-Key") == 0 && strcmp(sec.format, "token %s") == 0 &&
		   strcmp(sec.value, "tok-1234567890abcdef") == 0 && sec.updated_at > 0,
	   "  read back normalised, with its header and format");
	sbx_secret_clear(&sec);
	ok(sec.value == NULL, "  clear frees the value");

	sec = builtin("github", NULL, NULL);
	ok(sbx_secret_set(s, &sec, E) < 0 && has(err.msg, "the secret is empty"), "a NULL value is refused");
	sec = builtin("github", NULL, "ghp_abc\n");
	ok(sbx_secret_set(s, &sec, E) < 0 && has(err.msg, "line break") && count(s, "name = 'github'") == 0,
	   "  and a bad one, with nothing stored");
	sec = builtin("github", "bad name", "ghp_abcdefgh");
	ok(sbx_secret_set(s, &sec, E) < 0 && has(err.msg, "invalid sandbox name") && count(s, "name = 'github'") == 0,
	   "  and a bad scope");

	ok(sbx_secret_list(s, &list, &n, E) == 0 && n == 4, "list: four secrets");
	bool masked = true, novalue = true;
	for (size_t i = 0; i < n; i++) {
		masked = masked && list[i].masked[0] && strstr(list[i].masked, "\xe2\x80\xa6");
		novalue = novalue && list[i].value == NULL;
	}
	ok(masked && novalue, "  each masked, none with its value");
	ok(n == 4 && strcmp(list[0].name, "anthropic") == 0 && list[0].sandbox[0] == '\0' &&
		   strcmp(list[1].sandbox, "box") == 0 && strcmp(list[2].name, "myapi") == 0 && list[2].custom &&
		   list[2].nhosts == 2 && strcmp(list[3].name, "openai") == 0,
	   "  by name, the global one first");
	is_str(n ? list[0].masked : "", "sk-a\xe2\x80\xa6" "0002", "  the masked form");
	sbx_secrets_free(list, n);

	ok(sbx_secret_remove(s, "anthropic", "box", E) == 0, "remove the sandbox's secret");
	v5 = get_value(s, "anthropic", "box", scope, sizeof(scope));
	is_str(v5, "sk-ant-api03-global-0002", "  the sandbox falls back to the global one");
	ok(sbx_secret_remove(s, "anthropic", "box", E) < 0 && err.code == SBX_E_NOTFOUND &&
		   has(err.msg, "no anthropic secret is stored for sandbox box"),
	   "removing it again: not found, with the scope named");
	ok(sbx_secret_remove(s, "openai", "", E) < 0 && err.code == SBX_E_NOTFOUND && has(err.msg, "stored globally") &&
		   count(s, "name = 'openai'") == 1,
	   "removing the global one when only a sandbox has one: not found, the other kept");
	ok(sbx_secret_remove(s, "anthropic", NULL, E) == 0 && count(s, "name = 'anthropic'") == 0,
	   "remove the global one (NULL scope)");
	ok(sbx_secret_remove(s, "", NULL, E) < 0 && err.code == SBX_E_INVALID, "an empty name is refused");
	ok(sbx_secret_remove(s, "never", NULL, E) < 0 && err.code == SBX_E_NOTFOUND, "an unknown name: not found");

	/* Stored rows are validated again on the way out. */
	sec = builtin("groq", NULL, "gsk_1234567890abcdef");
	ok(sbx_secret_set(s, &sec, E) == 0, "store a groq secret");
	exec_sql(s, "UPDATE secrets SET header = 'Host' WHERE name = 'groq'");
	ok(sbx_secret_get(s, "groq", "", &sec, E) < 0 && has(err.msg, "the groq secret stored globally cannot be used") &&
		   sec.value == NULL,
	   "a built-in row given a header in the database is refused, nothing returned");
	exec_sql(s, "UPDATE secrets SET hosts = '[\"**\"]', header = 'X' WHERE name = 'myapi'");
	ok(sbx_secret_get(s, "myapi", "", &sec, E) < 0 && has(err.msg, "every host") && sec.value == NULL,
	   "a custom row widened to ** in the database is refused");
	exec_sql(s, "UPDATE secrets SET hosts = 'not json' WHERE name = 'myapi'");
	ok(sbx_secret_get(s, "myapi", "", &sec, E) < 0 && has(err.msg, "damaged"), "a row whose hosts are not JSON");
	ok(sbx_secret_list(s, &list, &n, E) < 0 && has(err.msg, "myapi"), "  fails the listing, naming it");
	exec_sql(s, "UPDATE secrets SET value = 'gsk_abc' || char(10) || 'x', header = '' WHERE name = 'groq'");
	ok(sbx_secret_get(s, "groq", "", &sec, E) < 0 && has(err.msg, "line break") && !has(err.msg, "gsk_abc"),
	   "a value given a line break in the database is refused, unquoted");
	exec_sql(s, "DELETE FROM secrets WHERE name IN ('groq', 'myapi')");

	/* One transaction per replace: an insert that fails leaves the old row. */
	sec = builtin("xai", NULL, "xai-old-value-123456");
	ok(sbx_secret_set(s, &sec, E) == 0, "store an xai secret");
	exec_sql(s, "CREATE TRIGGER fail_xai BEFORE INSERT ON secrets WHEN NEW.name = 'xai'"
		    " BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
	sec = builtin("xai", NULL, "xai-new-value-654321");
	ok(sbx_secret_set(s, &sec, E) < 0 && err.code == SBX_E_IO && has(err.msg, "injected failure") &&
		   !has(err.msg, "xai-new-value"),
	   "a replace whose insert fails is an error (the value not in it)");
	v6 = get_value(s, "xai", "", NULL, 0);
	is_str(v6, "xai-old-value-123456", "  and the old secret is still there: its delete was rolled back");
	exec_sql(s, "DROP TRIGGER fail_xai");
	sec = custom("xaish", NULL, (const char *const[]){"api.example.com", "**", NULL}, NULL, NULL, "value-1234567");
	ok(sbx_secret_set(s, &sec, E) < 0 && count(s, "name = 'xaish'") == 0,
	   "a custom secret with one bad host among good ones stores nothing");
	sec = custom("xaish", NULL, (const char *const[]){"api.example.com", NULL}, NULL, NULL, "value-1234567");
	ok(sbx_secret_set(s, &sec, E) == 0, "  stored once the list is right");
	sec = custom("xaish", NULL, (const char *const[]){"api.example.com", NULL}, "Host", NULL, "value-7654321");
	ok(sbx_secret_set(s, &sec, E) < 0, "  a bad replacement is refused");
	ok(sbx_secret_get(s, "xaish", "", &sec, E) == 1 && strcmp(sec.value, "value-1234567") == 0 &&
		   strcmp(sec.header, "Authorization") == 0,
	   "  and leaves the stored one whole");
	sbx_secret_clear(&sec);
	sbx_store_close(s);

	/* The database file is the user's alone. */
	char path[PATH_MAX + 64];
	struct stat stt;
	snprintf(path, sizeof(path), "%s/store.db", tmpdir);
	ok(stat(path, &stt) == 0 && (stt.st_mode & 0777) == 0600, "the database file is 0600");
	s = open_db("store");
	ok(sbx_secret_get(s, "xaish", "", &sec, E) == 1 && strcmp(sec.value, "value-1234567") == 0,
	   "secrets survive closing and opening the store");
	sbx_secret_clear(&sec);
	sbx_store_close(s);
}

/* ---- placeholders ---- */

static bool all_of(const char *s, size_t len, const char *set)
{
	for (size_t i = 0; i < len; i++)
		if (!s[i] || !strchr(set, s[i]))
			return false;
	return true;
}

static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* The form of one placeholder: prefix, marker, n random characters of alphabet, suffix. */
static void form_is(const char *service, const char *var, const char *prefix, const char *marker,
		    const char *alphabet, size_t nrandom, const char *suffix, size_t total)
{
	const struct sbx_service *svc = sbx_service_find(service);
	char p[SBX_SECRET_PLACEHOLDER_MAX];
	size_t pl = strlen(prefix), ml = strlen(marker), sl = strlen(suffix);

	sbx_secret_placeholder_env(svc, var, "0123456789abcdef0123456789abcdef", p, sizeof(p));
	ok(strlen(p) == total && strncmp(p, prefix, pl) == 0 && strncmp(p + pl, marker, ml) == 0 &&
		   all_of(p + pl + ml, nrandom, alphabet) && strcmp(p + pl + ml + nrandom, suffix) == 0 &&
		   pl + ml + nrandom + sl == total,
	   "%s %s: %s%s<%zu>%s, %zu characters", service, var, prefix, marker, nrandom, suffix, total);
	if (strlen(p) != total)
		diag("got '%s' (%zu)", p, strlen(p));
}

static void test_placeholders(void)
{
	const struct sbx_service *a = sbx_service_find("anthropic"), *aws = sbx_service_find("aws"),
				 *gh = sbx_service_find("github"), *g = sbx_service_find("google");
	const char *id1 = "0123456789abcdef0123456789abcdef", *id2 = "fedcba9876543210fedcba9876543210";
	char p1[SBX_SECRET_PLACEHOLDER_MAX], p2[SBX_SECRET_PLACEHOLDER_MAX], p3[SBX_SECRET_PLACEHOLDER_MAX];

	strcpy(p1, "unchanged");
	sbx_secret_placeholder(a, id1, p1, sizeof(p1));
	is_str(p1, "", "before the install key is loaded: no placeholder (never one that changes at restart)");
	sbx_secret_placeholder(sbx_service_find("mistral"), id1, p1, sizeof(p1));
	is_str(p1, "proxy-managed", "  (proxy-managed needs no key)");

	struct sbx_store *s1 = open_db("install1"), *s2 = open_db("install2");
	ok(sbx_secrets_init(s1, E) == 0, "load the install key (created on first use)");
	sbx_secret_placeholder(a, id1, p1, sizeof(p1));
	sbx_secret_placeholder(a, id1, p2, sizeof(p2));
	ok(p1[0] && strcmp(p1, p2) == 0, "a sandbox's placeholder is stable");
	sbx_secret_placeholder(a, id2, p3, sizeof(p3));
	ok(p3[0] && strcmp(p1, p3) != 0, "another sandbox's differs");
	sbx_secret_placeholder(sbx_service_find("openai"), id1, p3, sizeof(p3));
	ok(strncmp(p1 + 13, p3 + 8, 40) != 0, "another service's random part differs");

	ok(sbx_secrets_init(s2, E) == 0, "another install's key");
	sbx_secret_placeholder(a, id1, p3, sizeof(p3));
	ok(p3[0] && strcmp(p1, p3) != 0, "  gives the same sandbox id another placeholder");
	sbx_store_close(s1);
	s1 = open_db("install1");
	ok(sbx_secrets_init(s1, E) == 0, "the first install opened again");
	sbx_secret_placeholder(a, id1, p3, sizeof(p3));
	is_str(p3, p1, "  gives the placeholder it gave before (a daemon restart changes nothing)");
	sqlite3_stmt *st;
	int keys = -1;
	if (sqlite3_prepare_v2(sbx_store_db(s1), "SELECT COUNT(*) FROM meta WHERE key = 'secrets_placeholder_key'"
						  " AND length(value) = 64",
			       -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			keys = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	is_int(keys, 1, "  one key in meta, 64 hex characters");

	form_is("anthropic", "ANTHROPIC_API_KEY", "sk-ant-api03-", "sbx", alnum, 90, "AA", 108);
	form_is("openai", "OPENAI_API_KEY", "sk-proj-", "sbx", alnum, 153, "", 164);
	form_is("google", "GEMINI_API_KEY", "AIza", "sbx", alnum, 32, "", 39);
	form_is("github", "GITHUB_TOKEN", "ghp_", "sbx", alnum, 33, "", 40);
	form_is("aws", "AWS_ACCESS_KEY_ID", "AKIA", "SBX", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 13, "", 20);
	form_is("aws", "AWS_SECRET_ACCESS_KEY", "", "sbx", alnum, 37, "", 40);
	form_is("groq", "GROQ_API_KEY", "gsk_", "sbx", alnum, 49, "", 56);
	form_is("openrouter", "OPENROUTER_API_KEY", "sk-or-v1-", "", "0123456789abcdef", 64, "", 73);
	form_is("xai", "XAI_API_KEY", "xai-", "sbx", alnum, 77, "", 84);
	sbx_secret_placeholder_env(sbx_service_find("mistral"), "MISTRAL_API_KEY", id1, p1, sizeof(p1));
	is_str(p1, "proxy-managed", "mistral MISTRAL_API_KEY: proxy-managed");

	sbx_secret_placeholder_env(gh, "GITHUB_TOKEN", id1, p1, sizeof(p1));
	sbx_secret_placeholder_env(gh, "GH_TOKEN", id1, p2, sizeof(p2));
	ok(p1[0] && strcmp(p1, p2) == 0, "GH_TOKEN holds the same placeholder as GITHUB_TOKEN");
	sbx_secret_placeholder_env(g, "GEMINI_API_KEY", id1, p1, sizeof(p1));
	sbx_secret_placeholder_env(g, "GOOGLE_API_KEY", id1, p2, sizeof(p2));
	ok(p1[0] && strcmp(p1, p2) == 0, "GOOGLE_API_KEY the same as GEMINI_API_KEY");
	sbx_secret_placeholder(aws, id1, p1, sizeof(p1));
	sbx_secret_placeholder_env(aws, "AWS_ACCESS_KEY_ID", id1, p2, sizeof(p2));
	sbx_secret_placeholder_env(aws, "AWS_SECRET_ACCESS_KEY", id1, p3, sizeof(p3));
	ok(strcmp(p1, p2) == 0 && strlen(p1) == 20 && strcmp(p2, p3) != 0,
	   "aws: the service's placeholder is the key id; the secret key has its own");

	strcpy(p1, "unchanged");
	sbx_secret_placeholder_env(a, "OPENAI_API_KEY", id1, p1, sizeof(p1));
	is_str(p1, "", "a variable the service does not set gets nothing");
	sbx_secret_placeholder(a, "", p1, sizeof(p1));
	is_str(p1, "", "an empty sandbox id gets nothing");
	char longid[200];
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	sbx_secret_placeholder(a, longid, p1, sizeof(p1));
	is_str(p1, "", "a sandbox id over 128 bytes gets nothing");
	sbx_secret_placeholder(a, NULL, p1, sizeof(p1));
	is_str(p1, "", "  nor does NULL");
	sbx_secret_placeholder(a, id1, p1, 108);
	is_str(p1, "", "a buffer one byte short gets nothing, not a cut placeholder");
	sbx_secret_placeholder(a, id1, p1, 109);
	ok(strlen(p1) == 108, "  one that just fits gets it");
	sbx_secret_placeholder(NULL, id1, p1, sizeof(p1));
	is_str(p1, "", "no service, no placeholder");

	sbx_secret_placeholder(a, id1, p1, sizeof(p1));
	exec_sql(s2, "UPDATE meta SET value = 'zz' WHERE key = 'secrets_placeholder_key'");
	ok(sbx_secrets_init(s2, E) < 0 && has(err.msg, "placeholder key in the state database is damaged") &&
		   has(err.msg, "delete that row"),
	   "a damaged key is refused, with the way out");
	sbx_secret_placeholder(a, id1, p3, sizeof(p3));
	ok(p1[0] && strcmp(p3, p1) == 0, "  and the key in use stays the one loaded before");
	sbx_store_close(s1);
	sbx_store_close(s2);
}

/* ---- the host environment ---- */

struct env {
	const char *const *kv; /* name, value, name, value, ..., NULL */
};

static const char *lookup(void *ud, const char *name)
{
	const struct env *e = ud;

	for (size_t i = 0; e->kv[i]; i += 2)
		if (strcmp(e->kv[i], name) == 0)
			return e->kv[i + 1];
	return NULL;
}

static int host_value(const char *service, const char *const *kv, char **out)
{
	struct env e = {kv};

	return sbx_service_host_value(sbx_service_find(service), lookup, &e, out, E);
}

static void test_host_env(void)
{
	char *v = NULL;

	ok(host_value("anthropic", (const char *const[]){"ANTHROPIC_API_KEY", "sk-ant-host-1234", NULL}, &v) == 1 &&
		   strcmp(v, "sk-ant-host-1234") == 0,
	   "anthropic from ANTHROPIC_API_KEY");
	free(v);
	v = NULL;
	ok(host_value("anthropic", (const char *const[]){"OPENAI_API_KEY", "x", NULL}, &v) == 0 && !v, "unset: 0");
	ok(host_value("anthropic", (const char *const[]){"ANTHROPIC_API_KEY", "", NULL}, &v) == 0 && !v, "empty: unset");
	ok(host_value("github", (const char *const[]){"GH_TOKEN", "ghp_fromgh12345", NULL}, &v) == 1 &&
		   strcmp(v, "ghp_fromgh12345") == 0,
	   "github falls back to GH_TOKEN");
	free(v);
	v = NULL;
	ok(host_value("github", (const char *const[]){"GH_TOKEN", "ghp_second", "GITHUB_TOKEN", "ghp_first", NULL}, &v) ==
			   1 &&
		   strcmp(v, "ghp_first") == 0,
	   "  GITHUB_TOKEN first");
	free(v);
	v = NULL;
	ok(host_value("aws",
		      (const char *const[]){"AWS_ACCESS_KEY_ID", "AKIAABCDEFGHIJKLMNOP", "AWS_SECRET_ACCESS_KEY",
					    "wJalrXUtnFEMI/K7MDENG", NULL},
		      &v) == 1 &&
		   strcmp(v, "AKIAABCDEFGHIJKLMNOP:wJalrXUtnFEMI/K7MDENG") == 0,
	   "aws: key id and secret combined");
	free(v);
	v = NULL;
	ok(host_value("aws",
		      (const char *const[]){"AWS_ACCESS_KEY_ID", "ASIAABCDEFGHIJKLMNOP", "AWS_SECRET_ACCESS_KEY",
					    "wJalrXUtnFEMI", "AWS_SESSION_TOKEN", "IQoJb3JpZ2luX2Vj", NULL},
		      &v) == 1 &&
		   strcmp(v, "ASIAABCDEFGHIJKLMNOP:wJalrXUtnFEMI:IQoJb3JpZ2luX2Vj") == 0,
	   "  with the session token");
	free(v);
	v = NULL;
	ok(host_value("aws", (const char *const[]){"AWS_ACCESS_KEY_ID", "AKIAABCDEFGHIJKLMNOP", NULL}, &v) == 0 && !v,
	   "  a key id without its secret: unset");
	ok(host_value("openai", (const char *const[]){"OPENAI_API_KEY", "sk-proj-line\nbreak-secretpart", NULL}, &v) < 0 &&
		   !v && has(err.msg, "OPENAI_API_KEY") && has(err.msg, "line break") && !has(err.msg, "secretpart"),
	   "a host value that cannot go into a header: refused, the variable named, the value not");
	ok(host_value("aws",
		      (const char *const[]){"AWS_ACCESS_KEY_ID", "ASIAABCDEFGHIJKLMNOP", "AWS_SECRET_ACCESS_KEY",
					    "wJalrXUtnFEMI", NULL},
		      &v) < 0 &&
		   has(err.msg, "session token") && !has(err.msg, "wJalrXUtnFEMI"),
	   "  a temporary aws key without its token");
}

int main(void)
{
	char tmpl[] = "/tmp/sbx-test-secrets-XXXXXX";

	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		return 1;
	}
	sbx_strlcpy(tmpdir, tmpl, sizeof(tmpdir));

	test_services();
	test_validate_names();
	test_validate_custom();
	test_validate_values();
	test_mask();
	test_placeholders(); /* first use of the install key: keep before anything else loads one */
	test_store();
	test_host_env();

	sbx_rm_rf(tmpdir);
	return done_testing();
}
