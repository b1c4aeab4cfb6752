/* secrets.h - credentials the agent never holds: the built-in services, the secret store, and
 * how a secret goes into a request.
 *
 * A secret belongs to a service (built in, or custom with its own hosts, header and format) and
 * to a scope: global, or one sandbox (sandbox scope beats global). Values live in the daemon's
 * database (table `secrets`, in a 0700 directory, the file 0600), are never logged, never sent
 * back in full (listings show a masked form), and are put into a request only by the proxy, only
 * over TLS, only to the service's hosts. When no secret is stored, the value of the service's
 * host environment variable as the CLI saw it at `sbx run`/`create` (passed to the daemon, never
 * into the sandbox) is used: a stored secret beats the environment.
 *
 * Inside the sandbox the agent's environment holds placeholders: `proxy-managed`, or for services
 * whose clients check the key's format, a per-sandbox random value of that format
 * (e.g. "sk-ant-api03-sbx<random>"). The proxy replaces a placeholder only where the secret is
 * bound; elsewhere it goes out as it is (and means nothing). */
#ifndef SBX_SECRETS_H
#define SBX_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

enum sbx_inject_kind {
	SBX_INJECT_HEADER, /* set header `header` to printf(format, value) */
	SBX_INJECT_SIGV4,  /* AWS: re-sign the request (sigv4.h); value = "AKID:SECRET[:TOKEN]" */
	SBX_INJECT_GIT,    /* GitHub: Authorization on the API and Basic auth on git smart-HTTP */
};

#define SBX_SERVICE_MAX_HOSTS 16

struct sbx_service {
	const char *name;          /* "anthropic", "openai", "aws", ... */
	const char *title;         /* "Anthropic (Claude)" */
	enum sbx_inject_kind kind;
	const char *hosts[SBX_SERVICE_MAX_HOSTS]; /* policy resource forms: "api.anthropic.com", "**.amazonaws.com" */
	const char *header;        /* "x-api-key", "Authorization" */
	const char *format;        /* "%s", "Bearer %s" */
	const char *host_env;      /* the host variable used when nothing is stored: "ANTHROPIC_API_KEY" */
	const char *sandbox_env[4];/* variables set to the placeholder inside the sandbox */
	const char *placeholder_prefix; /* "" = the literal "proxy-managed" */
};

/* The built-in services (anthropic, openai, google/gemini, github, aws, groq, mistral,
 * openrouter, xai). */
const struct sbx_service *sbx_services(size_t *n);
const struct sbx_service *sbx_service_find(const char *name);

/* ---- the store (table `secrets`) ---- */
struct sbx_secret {
	char name[64];      /* service or custom name */
	char sandbox[64];   /* "" = global */
	bool custom;
	char hosts[SBX_SERVICE_MAX_HOSTS][256]; /* custom only */
	size_t nhosts;
	char header[64];    /* custom only */
	char format[64];    /* custom only; must contain exactly one %s */
	char *value;        /* owned; NULL in listings */
	char masked[32];    /* "sk-a…3f9c" style, for listings */
	int64_t updated_at;
};

/* Validates and stores (replacing one of the same name and scope) in one transaction. A value
 * must be non-empty, at most 16 KiB, without NUL, CR or LF; aws values must be
 * "AKID:SECRET[:TOKEN]". Errors name the problem and the fix; nothing is stored half-way. */
int sbx_secret_set(struct sbx_store *s, const struct sbx_secret *sec, sbx_err *err);
int sbx_secret_remove(struct sbx_store *s, const char *name, const char *sandbox, sbx_err *err);
/* Every secret, values left out (value NULL, masked filled). */
int sbx_secret_list(struct sbx_store *s, struct sbx_secret **out, size_t *n, sbx_err *err);
/* The value for (name, sandbox): the sandbox's if any, else the global one; 1 found, 0 none. */
int sbx_secret_get(struct sbx_store *s, const char *name, const char *sandbox, struct sbx_secret *out, sbx_err *err);
void sbx_secret_clear(struct sbx_secret *sec);
void sbx_secrets_free(struct sbx_secret *v, size_t n);

/* "sk-ant-api03-abcd...wxyz" -> "sk-a…wxyz" (at most 4 + 4 characters shown, fewer for short
 * values). */
void sbx_secret_mask(const char *value, char *out, size_t n);

/* The placeholder a sandbox's environment gets for a service (stable for the sandbox: derived
 * from its id with HMAC, so a restart gives the same one). */
void sbx_secret_placeholder(const struct sbx_service *svc, const char *sandbox_id, char *out, size_t n);

/* ---- added with secrets.c ---- */

#define SBX_SECRET_VALUE_MAX 16384      /* bytes */
#define SBX_SECRET_PLACEHOLDER_MAX 192  /* the longest placeholder, with its NUL */

/* Placeholders (secrets.c has the table): the service's prefix, a marker ("sbx", "SBX" for the
 * AWS key id; none for OpenRouter, whose keys are hex), then characters derived with
 * HMAC-SHA256(install key, "sbx-placeholder-v1", sandbox id, service, variable), rendered in
 * the alphabet of the real keys, at their length (total length, prefix included):
 *   anthropic  sk-ant-api03-sbx<90 alnum>AA   108    openai   sk-proj-sbx<153 alnum>  164
 *   google     AIzasbx<32 alnum>               39    github   ghp_sbx<33 alnum>        40
 *   aws        AWS_ACCESS_KEY_ID AKIASBX<13 A-Z0-9> 20; AWS_SECRET_ACCESS_KEY sbx<37 alnum> 40
 *   groq       gsk_sbx<49 alnum>               56    openrouter sk-or-v1-<64 hex>       73
 *   xai        xai-sbx<77 alnum>               84    mistral  proxy-managed (no prefix)
 * Every variable of a service gets the same value except AWS's secret key, which has its own.
 * The install key lives in the meta table (created on first use): sbx_secrets_init loads it,
 * and must have run (the daemon calls it at start) before any placeholder is asked for; until
 * then, and for a sandbox id that is empty or longer than 128 bytes, or a buffer too small,
 * out is set to "" (never a placeholder that would change at the next start). */
int sbx_secrets_init(struct sbx_store *s, sbx_err *err);
/* The placeholder of one of svc->sandbox_env's variables; "" for a variable not among them. */
void sbx_secret_placeholder_env(const struct sbx_service *svc, const char *var, const char *sandbox_id, char *out,
				size_t n);

/* Checks a secret's fields and normalises them in place: a custom service's hosts become their
 * normalised resource forms (duplicates dropped), its header and format get their defaults
 * ("Authorization", "Bearer %s"). The value is checked only when not NULL. Rules:
 *   name     a built-in service, or (custom) 1-63 of [a-z0-9._-] starting with a letter or
 *            digit that is not a built-in name
 *   sandbox  "" (global) or a valid sandbox name
 *   hosts    custom only, 1..SBX_SERVICE_MAX_HOSTS host resources (exact, *., **.), without a
 *            port: never `**`, an address or CIDR, or a wildcard over a top-level domain
 *   header   custom only, an HTTP token of at most 63 characters, not one that frames or
 *            routes a request (Host, Content-Length, Transfer-Encoding, Connection, ...)
 *   format   custom only, printable ASCII of at most 63 characters with exactly one %s and no
 *            other '%' (so printf and a plain replacement of the %s give the same header)
 *   value    printable ASCII, 1..SBX_SECRET_VALUE_MAX bytes, no space at either end; aws:
 *            AKID:SECRET[:TOKEN] (a temporary ASIA key id needs its token)
 * Messages never quote the value. */
int sbx_secret_validate(struct sbx_secret *sec, sbx_err *err);
/* sbx_secret_set, also telling whether a secret of the same name and scope was replaced. */
int sbx_secret_set_ex(struct sbx_store *s, const struct sbx_secret *sec, bool *replaced, sbx_err *err);

/* The host variables a service's value can come from when nothing is stored (what the CLI
 * passes at `sbx run`/`create`): out gets up to max names, the count is returned.
 *   google GEMINI_API_KEY, then GOOGLE_API_KEY; github GITHUB_TOKEN, then GH_TOKEN;
 *   aws AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), combined;
 *   the others svc->host_env. */
size_t sbx_service_host_envs(const struct sbx_service *svc, const char **out, size_t max);
/* The value from those variables, looked up with lookup(ud, name) (NULL or "" = unset): 1 with
 * *out a heap copy (free it with explicit_bzero + free), 0 when unset (for aws: key id or
 * secret missing), -1 when set but unusable (err names the variable, never its value). */
int sbx_service_host_value(const struct sbx_service *svc, const char *(*lookup)(void *ud, const char *name), void *ud,
			   char **out, sbx_err *err);

#endif
