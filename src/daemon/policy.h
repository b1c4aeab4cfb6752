/* policy.h - the egress policy: rules, their parsing, storage and the decision.
 *
 * Semantics (DESIGN.md "Policy semantics", compatible with sbx users' habits):
 *   resources  example.com        exact host (any port)
 *              *.example.com      exactly one label more (not the apex)
 *              **.example.com     one or more labels more (not the apex)
 *              host:port          that port only (with any of the host forms above)
 *              1.2.3.4, 2001:db8::1, 10.0.0.0/8, fd00::/8   addresses and CIDRs (optional :port; IPv6
 *                                 with a port as [addr]:port)
 *              **                 everything
 *   kinds      allow, deny, review. Deny beats review beats allow, whatever the specificity.
 *              Anything not allowed is denied.
 *   HTTP rules a method (GET, POST, ...) and/or a path glob ('*' within a segment, '**' across
 *              segments, '?' one char) narrow a rule to matching requests. They apply to host
 *              names only (not addresses), and a network-level deny cannot be reopened by an
 *              HTTP-level allow.
 *   scopes     global, or one sandbox; both apply to a sandbox (deny from either wins).
 *   presets    allow-all, balanced, deny-all.
 * Host names are compared lowercased and without a trailing dot. */
#ifndef SBX_POLICY_H
#define SBX_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

enum sbx_rule_kind { SBX_RULE_ALLOW = 0, SBX_RULE_DENY = 1, SBX_RULE_REVIEW = 2 };

enum sbx_res_type {
	SBX_RES_ANY,       /* ** */
	SBX_RES_EXACT,     /* example.com */
	SBX_RES_ONE_LABEL, /* *.example.com */
	SBX_RES_ANY_DEPTH, /* **.example.com */
	SBX_RES_ADDR,      /* an IPv4/IPv6 address or CIDR (prefix = full length for an address) */
};

struct sbx_resource {
	enum sbx_res_type type;
	char host[256];     /* the suffix for wildcards ("example.com"), the host for EXACT */
	int family;         /* AF_INET / AF_INET6 for SBX_RES_ADDR */
	uint8_t addr[16];
	int prefix;
	uint16_t port;      /* 0 = any port */
	char text[300];     /* normalised form, e.g. "**.example.com:443", "10.0.0.0/8" */
};

/* One resource. Errors name the problem and show the accepted forms. */
int sbx_resource_parse(const char *s, struct sbx_resource *r, sbx_err *err);
/* A comma-separated list (spaces around items allowed); up to max items. */
int sbx_resources_parse_list(const char *s, struct sbx_resource *out, size_t max, size_t *n, sbx_err *err);

struct sbx_rule {
	int64_t id;
	enum sbx_rule_kind kind;
	struct sbx_resource res;
	char method[16];    /* "" = any; uppercase */
	char path[512];     /* "" = any; a glob starting with '/' */
	char sandbox[64];   /* "" = global */
	uint32_t approvals; /* review rules: approvals needed (1 or 2) */
	uint64_t timeout_ms;/* review rules: 0 = default */
	char source[32];    /* "user", "preset:balanced", "builtin", ... */
	int64_t created_at;
};
/* "allow api.example.com --method GET (sandbox foo)" style one-liner, for messages and logs. */
void sbx_rule_describe(const struct sbx_rule *r, char *out, size_t n);
const char *sbx_rule_kind_name(enum sbx_rule_kind k);
int sbx_rule_kind_parse(const char *s, enum sbx_rule_kind *k);
/* Validates method ("GET", ... token chars, uppercased) and path glob (must start with '/'). */
int sbx_rule_validate(struct sbx_rule *r, sbx_err *err);

/* ---- storage (table `rules`, schema in store.c) ---- */
int sbx_rules_add(struct sbx_store *s, struct sbx_rule *r, bool *existed, sbx_err *err); /* sets r->id */
/* Removes rules by id, or every rule whose resource/kind/method/path/sandbox match (NULL = any). */
int sbx_rules_remove_id(struct sbx_store *s, int64_t id, sbx_err *err);
int sbx_rules_remove_match(struct sbx_store *s, const struct sbx_rule *pattern, int *removed, sbx_err *err);
int sbx_rules_reset(struct sbx_store *s, const char *sandbox /* NULL = every rule */, sbx_err *err);
int sbx_rules_load(struct sbx_store *s, struct sbx_rule **out, size_t *n, sbx_err *err); /* caller frees */

/* ---- presets ---- */
/* Rules of a preset ("allow-all", "balanced", "deny-all"); NULL if unknown. The balanced preset:
 * AI services, package registries, code hosts and container registries, cloud APIs, OS mirrors
 * and certificate validation hosts that developers use daily. */
const char *const *sbx_preset_resources(const char *name, size_t *n);
int sbx_preset_apply(struct sbx_store *s, const char *name, sbx_err *err); /* replaces global rules */

/* ---- deciding ---- */
struct sbx_policy; /* immutable compiled rule set; rebuild on change */
struct sbx_policy *sbx_policy_build(const struct sbx_rule *rules, size_t n);
void sbx_policy_free(struct sbx_policy *p);

struct sbx_target {
	const char *sandbox; /* name */
	const char *host;    /* lowercased host name, or NULL when only an address is known */
	int family;          /* 0 when no address is known */
	uint8_t addr[16];
	uint16_t port;
	const char *method;  /* NULL before the HTTP request is seen (connection level) */
	const char *path;    /* request path (no query), NULL likewise */
};

struct sbx_decision {
	enum sbx_rule_kind kind;      /* ALLOW, DENY or REVIEW */
	const struct sbx_rule *rule;  /* the deciding rule; NULL = nothing allowed it (default deny) */
	bool http_rules;              /* connection level: method/path rules exist for this target,
				       * so the request must be seen before the final decision */
	char reason[160];             /* short text for the log and the refusal */
};

/* Connection level (method/path NULL): considers network-level rules, and reports whether
 * HTTP-level rules exist (http_rules). A target is allowed at this level if a network-level
 * allow matches, or an HTTP-level allow matches its host (then the request decides).
 * Request level: everything, with deny > review > allow. */
void sbx_policy_decide(const struct sbx_policy *p, const struct sbx_target *t, struct sbx_decision *d);

#endif
