/* secrets.c - the built-in services, the secret store (table `secrets`, schema in store.c) and
 * the placeholders sandboxes see instead of secrets.
 *
 * Everything that goes into the table is validated first (sbx_secret_validate), and a replace
 * is one transaction (the old row goes and the new one comes together, or neither). Rows are
 * validated again when read for use: a secret goes into a request only with a definition that
 * is still sound. No message of this file quotes a value, and nothing here logs.
 *
 * Placeholders are derived, not stored: HMAC-SHA256 under a random per-install key (meta
 * 'secrets_placeholder_key') over the sandbox id, the service and the variable, so a sandbox
 * keeps its placeholders across restarts, and one sandbox cannot compute another's. */
#include "secrets.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "policy.h"
#include "util.h"

#define META_KEY "secrets_placeholder_key"
#define KEY_LEN 32
#define MAX_SANDBOX_ID 128
#define HMAC_LABEL "sbx-placeholder-v1"

/* ---- the built-in services ---- */

/* github: Authorization "Bearer TOKEN" on api.github.com; on github.com (git smart-HTTP:
 * info/refs, git-upload-pack, git-receive-pack) git clients expect Basic auth, so the proxy sends
 * "Authorization: Basic base64(x-access-token:TOKEN)" there (SBX_INJECT_GIT).
 * aws: the request is re-signed (sigv4.h); header and format do not apply. */
static const struct sbx_service services[] = {
	{.name = "anthropic",
	 .title = "Anthropic (Claude)",
	 .kind = SBX_INJECT_HEADER,
	 .hosts = {"api.anthropic.com"},
	 .header = "x-api-key",
	 .format = "%s",
	 .host_env = "ANTHROPIC_API_KEY",
	 .sandbox_env = {"ANTHROPIC_API_KEY"},
	 .placeholder_prefix = "sk-ant-api03-"},
	{.name = "openai",
	 .title = "OpenAI",
	 .kind = SBX_INJECT_HEADER,
	 .hosts = {"api.openai.com"},
	 .header = "Authorization",
	 .format = "Bearer %s",
	 .host_env = "OPENAI_API_KEY",
	 .sandbox_env = {"OPENAI_API_KEY"},
	 .placeholder_prefix = "sk-proj-"},
	{.name = "google",
	 .title = "Google Gemini",
	 .kind = SBX_INJECT_HEADER,
	 .hosts = {"generativelanguage.googleapis.com"},
	 .header = "x-goog-api-key",
	 .format = "%s",
	 .host_env = "GEMINI_API_KEY",
	 .sandbox_env = {"GEMINI_API_KEY", "GOOGLE_API_KEY"},
	 .placeholder_prefix = "AIza"},
	{.name = "github",
	 .title = "GitHub",
	 .kind = SBX_INJECT_GIT,
	 .hosts = {"api.github.com", "github.com"},
	 .header = "Authorization",
	 .format = "Bearer %s",
	 .host_env = "GITHUB_TOKEN",
	 .sandbox_env = {"GITHUB_TOKEN", "GH_TOKEN"},
	 .placeholder_prefix = "ghp_"},
	{.name = "aws",
	 .title = "Amazon Web Services",
	 .kind = SBX_INJECT_SIGV4,
	 .hosts = {"**.amazonaws.com"},
	 .header = "Authorization",
	 .format = "",
	 .host_env = "AWS_ACCESS_KEY_ID",
	 .sandbox_env = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
	 .placeholder_prefix = "AKIA"},
	{.name = "groq",
	 .title = "Groq",
	 .kind = SBX_INJECT_HEADER,
	 .hosts = {"api.groq.com"},
	 .header = "Authorization",
	 .format = "Bearer %s",
	 .host_env = "GROQ_API_KEY",
	 .sandbox_env = {"GROQ_API_KEY"},
	 .placeholder_prefix = "gsk_"},
	{.name = "mistral",
	 .title = "Mistral AI",
	 .kind = SBX_INJECT_HEADER,
	 .hosts = {"api.mistral.ai"},
	 .header = "Authorization",
	 .format = "Bearer %s",
	 .host_env = "MISTRAL_API_KEY",
	 .sandbox_env = {"MISTRAL_API_KEY"},
	 .placeholder_prefix = ""},
	{.name = "openrouter",
	 .title = "OpenRouter",
	 .kind = SBX_INJECT_HEADER,
	 .hosts = {"openrouter.ai"},
	 .header = "Authorization",
	 .format = "Bearer %s",
	 .host_env = "OPENROUTER_API_KEY",
	 .sandbox_env = {"OPENROUTER_API_KEY"},
	 .placeholder_prefix = "sk-or-v1-"},
	{.name = "xai",
	 .title = "xAI (Grok)",
	 .kind = SBX_INJECT_HEADER,
	 .hosts = {"api.x.ai"},
	 .header = "Authorization",
	 .format = "Bearer %s",
	 .host_env = "XAI_API_KEY",
	 .sandbox_env = {"XAI_API_KEY"},
	 .placeholder_prefix = "xai-"},
};

const struct sbx_service *sbx_services(size_t *n)
{
	*n = SBX_ARRAY_LEN(services);
	return services;
}

const struct sbx_service *sbx_service_find(const char *name)
{
	for (size_t i = 0; name && i < SBX_ARRAY_LEN(services); i++)
		if (strcmp(services[i].name, name) == 0)
			return &services[i];
	return NULL;
}

/* Host variables beyond svc->host_env (see secrets.h). */
static const struct {
	const char *service;
	const char *vars[3];
} host_envs[] = {
	{"google", {"GEMINI_API_KEY", "GOOGLE_API_KEY"}},
	{"github", {"GITHUB_TOKEN", "GH_TOKEN"}},
	{"aws", {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}},
};

size_t sbx_service_host_envs(const struct sbx_service *svc, const char **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < SBX_ARRAY_LEN(host_envs); i++) {
		if (strcmp(host_envs[i].service, svc->name) != 0)
			continue;
		for (size_t j = 0; j < SBX_ARRAY_LEN(host_envs[i].vars) && host_envs[i].vars[j]; j++)
			if (n < max)
				out[n++] = host_envs[i].vars[j];
		return n;
	}
	if (svc->host_env && max)
		out[n++] = svc->host_env;
	return n;
}

/* ---- checking ---- */

static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
static const char upper_alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
static const char hex[] = "0123456789abcdef";

/* A name or header for a message: printable ASCII only, cut at 64 characters. Only ever used
 * on fields that are not the value. */
static const char *shown(const char *s, char *buf, size_t n)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && o + 1 < n && o < 64; p++)
		buf[o++] = (*p >= 0x20 && *p < 0x7f) ? (char)*p : '?';
	buf[o] = '\0';
	return buf;
}

static bool token_char(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool all_in(const char *s, size_t len, const char *set)
{
	for (size_t i = 0; i < len; i++)
		if (!s[i] || !strchr(set, s[i]))
			return false;
	return true;
}

static void builtin_names(char *out, size_t n)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < SBX_ARRAY_LEN(services) && o < n; i++) {
		int w = snprintf(out + o, n - o, "%s%s", i ? ", " : "", services[i].name);
		if (w < 0)
			return;
		o += (size_t)w;
	}
}

static int check_name(const struct sbx_secret *sec, sbx_err *err)
{
	char b[80], names[256];
	size_t len = strnlen(sec->name, sizeof(sec->name));

	if (len == 0)
		return sbx_err_set(err, SBX_E_INVALID, "name the service: one of the built-in services, or a custom name");
	if (len >= sizeof(sec->name))
		return sbx_err_set(err, SBX_E_INVALID, "the service name is too long: use at most 63 characters");
	bool builtin = sbx_service_find(sec->name) != NULL;
	if (!sec->custom) {
		if (builtin)
			return 0;
		builtin_names(names, sizeof(names));
		return sbx_err_set(err, SBX_E_INVALID,
				   "unknown service '%s': the built-in services are %s; for another service use `sbx secret "
				   "set-custom %s --host HOST`",
				   shown(sec->name, b, sizeof(b)), names, shown(sec->name, b, sizeof(b)));
	}
	for (size_t i = 0; i < SBX_ARRAY_LEN(services); i++)
		if (strcasecmp(services[i].name, sec->name) == 0)
			return sbx_err_set(err, SBX_E_INVALID,
					   "'%s' is a built-in service: store its secret with `sbx secret set %s`, or give the "
					   "custom service another name",
					   shown(sec->name, b, sizeof(b)), services[i].name);
	bool ok = isalnum((unsigned char)sec->name[0]);
	for (size_t i = 0; ok && i < len; i++) {
		unsigned char c = (unsigned char)sec->name[i];
		ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
	}
	if (!ok)
		return sbx_err_set(err, SBX_E_INVALID,
				   "invalid service name '%s': use 1-63 lowercase letters, digits, '.', '_' or '-', starting "
				   "with a letter or digit",
				   shown(sec->name, b, sizeof(b)));
	return 0;
}

static int check_sandbox(const struct sbx_secret *sec, sbx_err *err)
{
	char b[80];

	if (strnlen(sec->sandbox, sizeof(sec->sandbox)) >= sizeof(sec->sandbox))
		return sbx_err_set(err, SBX_E_INVALID, "the sandbox name is too long: use at most 63 characters");
	if (sec->sandbox[0] && !sbx_name_valid(sec->sandbox))
		return sbx_err_set(err, SBX_E_INVALID,
				   "invalid sandbox name '%s': use 1-63 letters, digits, '-', '_' or '.', starting with a letter "
				   "or digit",
				   shown(sec->sandbox, b, sizeof(b)));
	return 0;
}

/* "example.com" -> 2 labels. */
static size_t labels(const char *host)
{
	size_t n = 1;

	for (; *host; host++)
		n += *host == '.';
	return n;
}

static int check_hosts(struct sbx_secret *sec, sbx_err *err)
{
	char b[300];
	size_t k = 0;

	if (sec->nhosts == 0)
		return sbx_err_set(err, SBX_E_INVALID,
				   "a custom service needs the hosts its secret is for: --host api.example.com (also "
				   "*.example.com, **.example.com, host:port)");
	if (sec->nhosts > SBX_SERVICE_MAX_HOSTS)
		return sbx_err_set(err, SBX_E_INVALID, "too many hosts: a service has at most %d", SBX_SERVICE_MAX_HOSTS);
	for (size_t i = 0; i < sec->nhosts; i++) {
		struct sbx_resource r;
		if (strnlen(sec->hosts[i], sizeof(sec->hosts[i])) >= sizeof(sec->hosts[i]))
			return sbx_err_set(err, SBX_E_INVALID, "host %zu is too long: a host name has at most 253 characters",
					   i + 1);
		if (sbx_resource_parse(sec->hosts[i], &r, err) < 0)
			return sbx_err_wrap(err, "host '%s'", shown(sec->hosts[i], b, sizeof(b)));
		if (r.type == SBX_RES_ANY)
			return sbx_err_set(err, SBX_E_INVALID,
					   "host '%s' would send the secret to every host: name the service's hosts, e.g. "
					   "api.example.com or **.example.com",
					   r.text);
		/* The proxy matches a secret's hosts against the name it verified in the certificate,
		 * whatever the port (over TLS only): a port would only make the binding look narrower. */
		if (r.port)
			return sbx_err_set(err, SBX_E_INVALID,
					   "host '%s' has a port: a secret is bound to host names (any port, over TLS only); "
					   "give the host alone, e.g. %s",
					   r.text, r.type == SBX_RES_EXACT ? r.host : "**.example.com");
		if (r.type == SBX_RES_ADDR)
			return sbx_err_set(err, SBX_E_INVALID,
					   "host '%s' is an address: a secret is bound to host names, which the proxy checks "
					   "against the server's certificate; give the service's host name",
					   r.text);
		/* A wildcard right above a top-level domain covers hosts anyone can register. */
		if ((r.type == SBX_RES_ONE_LABEL || r.type == SBX_RES_ANY_DEPTH) && labels(r.host) < 2)
			return sbx_err_set(err, SBX_E_INVALID,
					   "host '%s' covers a whole top-level domain, where anyone can own a host: bind the "
					   "secret to the service's own domain, e.g. %s.example.%s",
					   r.text, r.type == SBX_RES_ONE_LABEL ? "*" : "**", r.host);
		if (strlen(r.text) >= sizeof(sec->hosts[0]))
			return sbx_err_set(err, SBX_E_INVALID, "host '%s' is too long", r.text);
		bool dup = false;
		for (size_t j = 0; j < k && !dup; j++)
			dup = strcmp(sec->hosts[j], r.text) == 0;
		if (!dup)
			sbx_strlcpy(sec->hosts[k++], r.text, sizeof(sec->hosts[0]));
	}
	for (size_t i = k; i < sec->nhosts; i++)
		sec->hosts[i][0] = '\0';
	sec->nhosts = k;
	return 0;
}

static int check_header(struct sbx_secret *sec, sbx_err *err)
{
	/* Headers that frame, route or end at a hop: a secret there would change what the request
	 * is, or be dropped on the way. */
	static const char *const refused[] = {"host",	     "content-length", "transfer-encoding", "connection",
					      "keep-alive",  "upgrade",	       "te",		    "trailer",
					      "proxy-connection", "proxy-authorization", "expect"};
	char b[80];
	size_t len = strnlen(sec->header, sizeof(sec->header));

	if (len >= sizeof(sec->header))
		return sbx_err_set(err, SBX_E_INVALID, "the header name is too long: use at most 63 characters");
	if (len == 0) {
		sbx_strlcpy(sec->header, "Authorization", sizeof(sec->header));
		return 0;
	}
	for (size_t i = 0; i < len; i++)
		if (!token_char((unsigned char)sec->header[i]))
			return sbx_err_set(err, SBX_E_INVALID,
					   "invalid header name '%s': use letters, digits and - (e.g. Authorization, X-Api-Key)",
					   shown(sec->header, b, sizeof(b)));
	for (size_t i = 0; i < SBX_ARRAY_LEN(refused); i++)
		if (strcasecmp(sec->header, refused[i]) == 0)
			return sbx_err_set(err, SBX_E_INVALID,
					   "the header '%s' cannot carry a secret (it frames or routes the request): use the "
					   "header the service documents, e.g. Authorization or X-Api-Key",
					   sec->header);
	return 0;
}

static int check_format(struct sbx_secret *sec, sbx_err *err)
{
	size_t len = strnlen(sec->format, sizeof(sec->format)), slots = 0;
	char b[80];

	if (len >= sizeof(sec->format))
		return sbx_err_set(err, SBX_E_INVALID, "the format is too long: use at most 63 characters");
	if (len == 0) {
		sbx_strlcpy(sec->format, "Bearer %s", sizeof(sec->format));
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)sec->format[i];
		if (c == '\r' || c == '\n')
			return sbx_err_set(err, SBX_E_INVALID, "the format contains a line break: a header value is one line");
		if (c < 0x20 || c >= 0x7f)
			return sbx_err_set(err, SBX_E_INVALID,
					   "the format contains a control or non-ASCII character: use printable ASCII, e.g. "
					   "'Bearer %%s'");
		if (c != '%')
			continue;
		/* Only the one %s: no other conversion, and no %% either, so that the format means
		 * the same to printf and to a plain "replace %s" (credinject.c). */
		if (sec->format[i + 1] != 's')
			return sbx_err_set(err, SBX_E_INVALID,
					   "invalid format '%s': '%%' may appear only as the %%s where the secret goes",
					   shown(sec->format, b, sizeof(b)));
		slots++;
		i++;
	}
	if (slots != 1)
		return sbx_err_set(err, SBX_E_INVALID,
				   "invalid format '%s': it needs exactly one %%s where the secret goes, e.g. 'Bearer %%s' or "
				   "'token %%s'",
				   shown(sec->format, b, sizeof(b)));
	return 0;
}

static int check_aws(const char *v, sbx_err *err)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+=";
	static const char form[] = "an aws secret is ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN], e.g. printf "
				   "'%s:%s' \"$AWS_ACCESS_KEY_ID\" \"$AWS_SECRET_ACCESS_KEY\" | sbx secret set -g aws";
	const char *c1 = strchr(v, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

	if (!c1 || (c2 && strchr(c2 + 1, ':')))
		return sbx_err_set(err, SBX_E_INVALID, "%s", form);
	size_t idlen = (size_t)(c1 - v);
	size_t seclen = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
	if (idlen < 16 || idlen > 128 || !all_in(v, idlen, upper_alnum))
		return sbx_err_set(err, SBX_E_INVALID,
				   "the access key id (before the first ':') must be 16 to 128 uppercase letters and digits, "
				   "like AKIA... or ASIA...: %s",
				   form);
	if (seclen == 0 || seclen > 128 || !all_in(c1 + 1, seclen, b64))
		return sbx_err_set(err, SBX_E_INVALID,
				   "the secret access key (after the first ':') must be 1 to 128 letters, digits, '/', '+' or "
				   "'=': %s",
				   form);
	if (c2 && (c2[1] == '\0' || !all_in(c2 + 1, strlen(c2 + 1), b64)))
		return sbx_err_set(err, SBX_E_INVALID,
				   "the session token (after the second ':') must be letters, digits, '/', '+' or '=': %s", form);
	if (!c2 && strncmp(v, "ASIA", 4) == 0)
		return sbx_err_set(err, SBX_E_INVALID,
				   "the access key id is a temporary one (ASIA...), which works only with its session token: "
				   "store ACCESS_KEY_ID:SECRET_ACCESS_KEY:SESSION_TOKEN");
	return 0;
}

static int check_value(const struct sbx_secret *sec, sbx_err *err)
{
	const char *v = sec->value;
	size_t len = strnlen(v, SBX_SECRET_VALUE_MAX + 1);

	if (len == 0)
		return sbx_err_set(err, SBX_E_INVALID,
				   "the secret is empty: pipe it in (echo \"$KEY\" | sbx secret set -g SERVICE) or type it "
				   "when asked");
	if (len > SBX_SECRET_VALUE_MAX)
		return sbx_err_set(err, SBX_E_INVALID, "the secret is longer than %d bytes: check what was given",
				   SBX_SECRET_VALUE_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '\r' || c == '\n')
			return sbx_err_set(err, SBX_E_INVALID,
					   "the secret contains a line break (at byte %zu): a secret is one line; give only the "
					   "key",
					   i + 1);
		if (c < 0x20 || c >= 0x7f)
			return sbx_err_set(err, SBX_E_INVALID,
					   "the secret contains a control or non-ASCII character (at byte %zu): only printable "
					   "ASCII can go into an HTTP header; check what was pasted",
					   i + 1);
	}
	if (v[0] == ' ' || v[len - 1] == ' ')
		return sbx_err_set(err, SBX_E_INVALID,
				   "the secret starts or ends with a space: give the key alone, without surrounding spaces");
	if (!sec->custom && strcmp(sec->name, "aws") == 0)
		return check_aws(v, err);
	return 0;
}

int sbx_secret_validate(struct sbx_secret *sec, sbx_err *err)
{
	if (check_name(sec, err) < 0 || check_sandbox(sec, err) < 0)
		return -1;
	if (!sec->custom) {
		const struct sbx_service *svc = sbx_service_find(sec->name);
		if (sec->nhosts || sec->header[0] || sec->format[0])
			return sbx_err_set(err, SBX_E_INVALID,
					   "the built-in service %s has fixed hosts, header and format; to send the secret "
					   "elsewhere or otherwise, store it as a custom service under another name",
					   svc->name);
	} else if (check_hosts(sec, err) < 0 || check_header(sec, err) < 0 || check_format(sec, err) < 0) {
		return -1;
	}
	if (sec->value && check_value(sec, err) < 0)
		return -1;
	return 0;
}

/* ---- masking ---- */

void sbx_secret_mask(const char *value, char *out, size_t n)
{
	char buf[16];
	size_t len = value ? strlen(value) : 0, show, o = 0;

	if (n == 0)
		return;
	out[0] = '\0';
	if (len == 0)
		return;
	/* At most a quarter of the value on each side, and never more than 4 characters. */
	show = len >= 16 ? 4 : len / 4;
	for (size_t i = 0; i < show; i++)
		buf[o++] = (value[i] > 0x20 && value[i] < 0x7f) ? value[i] : '*';
	memcpy(buf + o, "\xe2\x80\xa6", 3); /* … */
	o += 3;
	for (size_t i = len - show; i < len; i++)
		buf[o++] = (value[i] > 0x20 && value[i] < 0x7f) ? value[i] : '*';
	buf[o] = '\0';
	if (o < n)
		memcpy(out, buf, o + 1);
	explicit_bzero(buf, sizeof(buf));
}

/* ---- placeholders ---- */

static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t install_key[KEY_LEN];
static bool install_key_loaded;

struct ph_spec {
	const char *service;
	const char *var;    /* NULL: every variable of the service without a spec of its own */
	const char *prefix; /* NULL: the service's placeholder_prefix */
	const char *marker;
	const char *alphabet;
	size_t nrandom;
	const char *suffix;
};

/* The lengths and alphabets of the real keys (secrets.h has the table). */
static const struct ph_spec ph_specs[] = {
	{"anthropic", NULL, NULL, "sbx", alnum, 90, "AA"},
	{"openai", NULL, NULL, "sbx", alnum, 153, ""},
	{"google", NULL, NULL, "sbx", alnum, 32, ""},
	{"github", NULL, NULL, "sbx", alnum, 33, ""},
	{"aws", "AWS_SECRET_ACCESS_KEY", "", "sbx", alnum, 37, ""},
	{"aws", NULL, NULL, "SBX", upper_alnum, 13, ""},
	{"groq", NULL, NULL, "sbx", alnum, 49, ""},
	{"openrouter", NULL, NULL, "", hex, 64, ""},
	{"xai", NULL, NULL, "sbx", alnum, 77, ""},
};

static const struct ph_spec *ph_spec_for(const struct sbx_service *svc, const char *var)
{
	const struct ph_spec *any = NULL;

	for (size_t i = 0; i < SBX_ARRAY_LEN(ph_specs); i++) {
		if (strcmp(ph_specs[i].service, svc->name) != 0)
			continue;
		if (ph_specs[i].var && var && strcmp(ph_specs[i].var, var) == 0)
			return &ph_specs[i];
		if (!ph_specs[i].var && !any)
			any = &ph_specs[i];
	}
	return any;
}

/* count characters of alphabet from HMAC-SHA256(key, label || counter || id || service || var)
 * blocks, by rejection so that every character is equally likely. Returns 0, or -1 if HMAC fails. */
static int derive(const uint8_t key[KEY_LEN], const char *sandbox_id, const char *service, const char *var,
		  const char *alphabet, size_t count, char *out)
{
	uint8_t msg[sizeof(HMAC_LABEL) + 4 + MAX_SANDBOX_ID + 1 + 64 + 1 + 64 + 1], block[32];
	size_t alen = strlen(alphabet), mlen = 0, used = sizeof(block);
	unsigned limit = 256 - 256 % (unsigned)alen;
	uint32_t counter = 0;
	int rc = 0;

	size_t il = strlen(sandbox_id), sl = strnlen(service, 64), vl = strnlen(var, 64);
	memcpy(msg, HMAC_LABEL, sizeof(HMAC_LABEL)); /* with its NUL: a separator */
	mlen = sizeof(HMAC_LABEL) + 4;
	memcpy(msg + mlen, sandbox_id, il);
	mlen += il;
	msg[mlen++] = '\0';
	memcpy(msg + mlen, service, sl);
	mlen += sl;
	msg[mlen++] = '\0';
	memcpy(msg + mlen, var, vl);
	mlen += vl;
	msg[mlen++] = '\0';
	for (size_t i = 0; i < count;) {
		if (used == sizeof(block)) {
			unsigned blen = 0;
			msg[sizeof(HMAC_LABEL) + 0] = (uint8_t)(counter >> 24);
			msg[sizeof(HMAC_LABEL) + 1] = (uint8_t)(counter >> 16);
			msg[sizeof(HMAC_LABEL) + 2] = (uint8_t)(counter >> 8);
			msg[sizeof(HMAC_LABEL) + 3] = (uint8_t)counter;
			counter++;
			if (!HMAC(EVP_sha256(), key, KEY_LEN, msg, mlen, block, &blen) || blen != sizeof(block)) {
				rc = -1;
				break;
			}
			used = 0;
		}
		uint8_t b = block[used++];
		if (b < limit)
			out[i++] = alphabet[b % alen];
	}
	explicit_bzero(block, sizeof(block));
	return rc;
}

void sbx_secret_placeholder_env(const struct sbx_service *svc, const char *var, const char *sandbox_id, char *out,
				size_t n)
{
	uint8_t key[KEY_LEN];
	bool have_key, known = false;

	if (n == 0)
		return;
	out[0] = '\0';
	if (!svc || !var || !sandbox_id)
		return;
	for (size_t i = 0; i < SBX_ARRAY_LEN(svc->sandbox_env) && svc->sandbox_env[i]; i++)
		known = known || strcmp(svc->sandbox_env[i], var) == 0;
	if (!known)
		return;
	if (!svc->placeholder_prefix || !svc->placeholder_prefix[0]) {
		sbx_strlcpy(out, n > strlen("proxy-managed") ? "proxy-managed" : "", n);
		return;
	}
	const struct ph_spec *sp = ph_spec_for(svc, var);
	size_t idlen = strnlen(sandbox_id, MAX_SANDBOX_ID + 1);
	if (!sp || idlen == 0 || idlen > MAX_SANDBOX_ID)
		return;
	const char *prefix = sp->prefix ? sp->prefix : svc->placeholder_prefix;
	size_t pl = strlen(prefix), ml = strlen(sp->marker), xl = strlen(sp->suffix);
	size_t total = pl + ml + sp->nrandom + xl;
	if (total + 1 > n || total + 1 > SBX_SECRET_PLACEHOLDER_MAX)
		return;

	pthread_mutex_lock(&key_lock);
	have_key = install_key_loaded;
	memcpy(key, install_key, sizeof(key));
	pthread_mutex_unlock(&key_lock);
	if (!have_key)
		return;
	memcpy(out, prefix, pl);
	memcpy(out + pl, sp->marker, ml);
	if (derive(key, sandbox_id, svc->name, sp->var ? sp->var : "", sp->alphabet, sp->nrandom, out + pl + ml) < 0) {
		out[0] = '\0';
	} else {
		memcpy(out + pl + ml + sp->nrandom, sp->suffix, xl);
		out[total] = '\0';
	}
	explicit_bzero(key, sizeof(key));
}

void sbx_secret_placeholder(const struct sbx_service *svc, const char *sandbox_id, char *out, size_t n)
{
	if (n)
		out[0] = '\0';
	if (svc && svc->sandbox_env[0])
		sbx_secret_placeholder_env(svc, svc->sandbox_env[0], sandbox_id, out, n);
}

static int db_fail(sqlite3 *db, sbx_err *err, const char *what)
{
	return sbx_err_set(err, SBX_E_IO, "state database: %s: %s", what, sqlite3_errmsg(db));
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int sbx_secrets_init(struct sbx_store *s, sbx_err *err)
{
	sqlite3 *db = sbx_store_db(s);
	sqlite3_stmt *st;
	char fresh[2 * KEY_LEN + 1];
	uint8_t key[KEY_LEN];
	int rc;
	bool ok = true;

	/* The first daemon to get here creates the key; every later start reads the same one. */
	if (sbx_random_hex(fresh, KEY_LEN) < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "no randomness for the placeholder key");
	if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)", -1, &st, NULL) !=
	    SQLITE_OK) {
		explicit_bzero(fresh, sizeof(fresh));
		return db_fail(db, err, "creating the placeholder key");
	}
	sqlite3_bind_text(st, 1, META_KEY, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, fresh, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	explicit_bzero(fresh, sizeof(fresh));
	if (rc != SQLITE_DONE)
		return db_fail(db, err, "creating the placeholder key");

	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, err, "reading the placeholder key");
	sqlite3_bind_text(st, 1, META_KEY, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return db_fail(db, err, "reading the placeholder key");
	}
	const unsigned char *v = sqlite3_column_text(st, 0);
	ok = v && strlen((const char *)v) == 2 * KEY_LEN;
	for (size_t i = 0; ok && i < KEY_LEN; i++) {
		int hi = hexval((char)v[2 * i]), lo = hexval((char)v[2 * i + 1]);
		ok = hi >= 0 && lo >= 0;
		if (ok)
			key[i] = (uint8_t)(hi << 4 | lo);
	}
	sqlite3_finalize(st);
	if (!ok) {
		explicit_bzero(key, sizeof(key));
		return sbx_err_set(err, SBX_E_INVALID,
				   "the placeholder key in the state database is damaged (meta '" META_KEY "'): delete that "
				   "row to make a new one (sandboxes then get new placeholders at their next start)");
	}
	pthread_mutex_lock(&key_lock);
	memcpy(install_key, key, sizeof(key));
	install_key_loaded = true;
	pthread_mutex_unlock(&key_lock);
	explicit_bzero(key, sizeof(key));
	return 0;
}

/* ---- the value from the host's environment ---- */

int sbx_service_host_value(const struct sbx_service *svc, const char *(*lookup)(void *ud, const char *name), void *ud,
			   char **out, sbx_err *err)
{
	const char *names[4];
	size_t n = sbx_service_host_envs(svc, names, SBX_ARRAY_LEN(names));
	struct sbx_secret sec = {0};
	char *v = NULL;

	*out = NULL;
	if (strcmp(svc->name, "aws") == 0) {
		const char *id = lookup(ud, "AWS_ACCESS_KEY_ID"), *key = lookup(ud, "AWS_SECRET_ACCESS_KEY"),
			   *tok = lookup(ud, "AWS_SESSION_TOKEN");
		if (!id || !*id || !key || !*key)
			return 0;
		size_t len = strlen(id) + 1 + strlen(key) + (tok && *tok ? 1 + strlen(tok) : 0) + 1;
		if (!(v = malloc(len)))
			return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
		snprintf(v, len, "%s:%s%s%s", id, key, tok && *tok ? ":" : "", tok && *tok ? tok : "");
		names[0] = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN";
	} else {
		for (size_t i = 0; i < n && !v; i++) {
			const char *s = lookup(ud, names[i]);
			if (s && *s) {
				if (!(v = strdup(s)))
					return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
				names[0] = names[i];
			}
		}
		if (!v)
			return 0;
	}
	sbx_strlcpy(sec.name, svc->name, sizeof(sec.name));
	sec.value = v;
	if (check_value(&sec, err) < 0) {
		explicit_bzero(v, strlen(v));
		free(v);
		return sbx_err_wrap(err, "the host's %s cannot be used for %s", names[0], svc->name);
	}
	*out = v;
	return 1;
}

/* ---- the store ---- */

static int tx_end(sqlite3 *db, bool ok, sbx_err *err)
{
	if (ok && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	if (ok)
		db_fail(db, err, "storing the secret");
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static char *hosts_json(const struct sbx_secret *sec)
{
	json_t *arr = json_array();
	char *text;

	for (size_t i = 0; arr && i < sec->nhosts; i++)
		json_array_append_new(arr, json_string(sec->hosts[i]));
	text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
	json_decref(arr);
	return text;
}

int sbx_secret_set_ex(struct sbx_store *s, const struct sbx_secret *in, bool *replaced, sbx_err *err)
{
	sqlite3 *db = sbx_store_db(s);
	struct sbx_secret sec = *in; /* the value stays the caller's; only the definition is normalised */
	sqlite3_stmt *st = NULL;
	cleanup_free char *hosts = NULL;
	bool ok;
	int changes = 0;

	if (replaced)
		*replaced = false;
	if (!sec.value)
		return sbx_err_set(err, SBX_E_INVALID,
				   "the secret is empty: pipe it in (echo \"$KEY\" | sbx secret set -g SERVICE) or type it "
				   "when asked");
	if (sbx_secret_validate(&sec, err) < 0)
		return -1;
	if (!sec.custom)
		sec.nhosts = 0;
	if (!(hosts = hosts_json(&sec)))
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, err, "starting a transaction");

	/* Replace = delete + insert in one transaction: a failure anywhere leaves the old row. */
	ok = sqlite3_prepare_v2(db, "DELETE FROM secrets WHERE name = ?1 AND sandbox = ?2", -1, &st, NULL) == SQLITE_OK;
	if (ok) {
		sqlite3_bind_text(st, 1, sec.name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, sec.sandbox, -1, SQLITE_STATIC);
		ok = sqlite3_step(st) == SQLITE_DONE;
		changes = sqlite3_changes(db);
	}
	sqlite3_finalize(st);
	st = NULL;
	ok = ok && sqlite3_prepare_v2(db,
				      "INSERT INTO secrets (name, sandbox, custom, hosts, header, format, value, updated_at)"
				      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
				      -1, &st, NULL) == SQLITE_OK;
	if (ok) {
		sqlite3_bind_text(st, 1, sec.name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, sec.sandbox, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, sec.custom);
		sqlite3_bind_text(st, 4, hosts, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, sec.custom ? sec.header : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, sec.custom ? sec.format : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, sec.value, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 8, sec.updated_at > 0 ? sec.updated_at : (int64_t)sbx_now_ms());
		ok = sqlite3_step(st) == SQLITE_DONE;
	}
	sqlite3_finalize(st);
	if (!ok) {
		db_fail(db, err, "storing the secret");
		return tx_end(db, false, err);
	}
	if (tx_end(db, true, err) < 0)
		return -1;
	if (replaced)
		*replaced = changes > 0;
	return 0;
}

int sbx_secret_set(struct sbx_store *s, const struct sbx_secret *sec, sbx_err *err)
{
	return sbx_secret_set_ex(s, sec, NULL, err);
}

static void scope_text(const char *sandbox, char *out, size_t n)
{
	char b[80];

	if (sandbox && sandbox[0])
		snprintf(out, n, "for sandbox %s", shown(sandbox, b, sizeof(b)));
	else
		snprintf(out, n, "globally");
}

int sbx_secret_remove(struct sbx_store *s, const char *name, const char *sandbox, sbx_err *err)
{
	sqlite3 *db = sbx_store_db(s);
	sqlite3_stmt *st;
	char b[80], scope[100];
	int rc;

	if (!name || !name[0])
		return sbx_err_set(err, SBX_E_INVALID, "name the secret to remove: see `sbx secret ls`");
	if (sqlite3_prepare_v2(db, "DELETE FROM secrets WHERE name = ?1 AND sandbox = ?2", -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, err, "removing a secret");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sandbox ? sandbox : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, err, "removing a secret");
	if (sqlite3_changes(db) == 0) {
		scope_text(sandbox, scope, sizeof(scope));
		return sbx_err_set(err, SBX_E_NOTFOUND, "no %s secret is stored %s: see `sbx secret ls`",
				   shown(name, b, sizeof(b)), scope);
	}
	return 0;
}

/* Fills sec from a row of (name, sandbox, custom, hosts, header, format, value, updated_at); the
 * value is copied only when want_value. Fails on a row that does not fit the struct. */
static int read_row(sqlite3_stmt *st, struct sbx_secret *sec, bool want_value, sbx_err *err)
{
	const char *name = (const char *)sqlite3_column_text(st, 0), *sandbox = (const char *)sqlite3_column_text(st, 1),
		   *hosts = (const char *)sqlite3_column_text(st, 3), *header = (const char *)sqlite3_column_text(st, 4),
		   *format = (const char *)sqlite3_column_text(st, 5), *value = (const char *)sqlite3_column_text(st, 6);
	char b[80];
	json_t *arr;
	size_t i;

	memset(sec, 0, sizeof(*sec));
	if (!name || !sandbox || !hosts || !header || !format || !value ||
	    sbx_strlcpy(sec->name, name, sizeof(sec->name)) >= sizeof(sec->name) ||
	    sbx_strlcpy(sec->sandbox, sandbox, sizeof(sec->sandbox)) >= sizeof(sec->sandbox) ||
	    sbx_strlcpy(sec->header, header, sizeof(sec->header)) >= sizeof(sec->header) ||
	    sbx_strlcpy(sec->format, format, sizeof(sec->format)) >= sizeof(sec->format))
		goto bad;
	sec->custom = sqlite3_column_int(st, 2) != 0;
	sec->updated_at = sqlite3_column_int64(st, 7);
	arr = json_loads(hosts, 0, NULL);
	if (!json_is_array(arr) || json_array_size(arr) > SBX_SERVICE_MAX_HOSTS) {
		json_decref(arr);
		goto bad;
	}
	for (i = 0; i < json_array_size(arr); i++) {
		const char *h = json_string_value(json_array_get(arr, i));
		if (!h || sbx_strlcpy(sec->hosts[i], h, sizeof(sec->hosts[i])) >= sizeof(sec->hosts[i])) {
			json_decref(arr);
			goto bad;
		}
	}
	sec->nhosts = i;
	json_decref(arr);
	sbx_secret_mask(value, sec->masked, sizeof(sec->masked));
	if (want_value && !(sec->value = strdup(value)))
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	return 0;
bad:
	return sbx_err_set(err, SBX_E_INVALID,
			   "a stored secret (%s) is damaged in the state database: remove it with `sbx secret rm` and "
			   "store it again",
			   name ? shown(name, b, sizeof(b)) : "unnamed");
}

#define ROW_COLUMNS "name, sandbox, custom, hosts, header, format, value, updated_at"

int sbx_secret_list(struct sbx_store *s, struct sbx_secret **out, size_t *n, sbx_err *err)
{
	sqlite3 *db = sbx_store_db(s);
	sqlite3_stmt *st;
	struct sbx_secret *v = NULL;
	size_t len = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(db, "SELECT " ROW_COLUMNS " FROM secrets ORDER BY name, sandbox", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_fail(db, err, "listing the secrets");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct sbx_secret *nv = reallocarray(v, ncap, sizeof(*v));
			if (!nv) {
				sbx_err_set(err, SBX_E_INTERNAL, "out of memory listing the secrets");
				goto fail;
			}
			v = nv;
			cap = ncap;
		}
		if (read_row(st, &v[len], false, err) < 0)
			goto fail;
		len++;
	}
	if (rc != SQLITE_DONE) {
		db_fail(db, err, "listing the secrets");
		goto fail;
	}
	sqlite3_finalize(st);
	*out = v;
	*n = len;
	return 0;
fail:
	sqlite3_finalize(st);
	free(v);
	return -1;
}

int sbx_secret_get(struct sbx_store *s, const char *name, const char *sandbox, struct sbx_secret *out, sbx_err *err)
{
	sqlite3 *db = sbx_store_db(s);
	sqlite3_stmt *st;
	char b[80], scope[100];
	int rc;

	memset(out, 0, sizeof(*out));
	if (!name || !name[0])
		return 0;
	/* The sandbox's own row sorts first (sandbox = '' is false for it). */
	if (sqlite3_prepare_v2(db,
			       "SELECT " ROW_COLUMNS " FROM secrets WHERE name = ?1 AND (sandbox = ?2 OR sandbox = '')"
			       " ORDER BY sandbox = '' LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, err, "reading a secret");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sandbox ? sandbox : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return db_fail(db, err, "reading a secret");
	}
	rc = read_row(st, out, true, err);
	sqlite3_finalize(st);
	if (rc < 0) {
		sbx_secret_clear(out);
		return -1;
	}
	/* Used for a request: the definition must still be sound (a damaged row is not guessed at). */
	if (sbx_secret_validate(out, err) < 0) {
		scope_text(out->sandbox, scope, sizeof(scope));
		sbx_err_wrap(err, "the %s secret stored %s cannot be used; store it again", shown(name, b, sizeof(b)), scope);
		sbx_secret_clear(out);
		return -1;
	}
	return 1;
}

void sbx_secret_clear(struct sbx_secret *sec)
{
	if (!sec)
		return;
	if (sec->value) {
		explicit_bzero(sec->value, strlen(sec->value));
		free(sec->value);
		sec->value = NULL;
	}
	explicit_bzero(sec->masked, sizeof(sec->masked));
}

void sbx_secrets_free(struct sbx_secret *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		sbx_secret_clear(&v[i]);
	free(v);
}
