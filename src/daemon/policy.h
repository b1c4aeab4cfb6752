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
 * Host names are compared lowercased and without a trailing dot.
 *
 * Precise decisions (policy.c implements them; tests/unit/test_policy.c pins them down):
 *   - Host rules match only targets that carry a host name, address rules only targets that
 *     carry an address; `**` matches both. A target may carry both (a transparent connection
 *     whose name was recovered): then rules of both kinds apply, and a deny of either wins.
 *   - An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address it maps to, in rules
 *     (normalised to IPv4 when parsed) and in targets (the kernel connects to the IPv4 host).
 *   - CIDRs must have their host bits zero ("10.1.2.3/8" is refused, naming 10.0.0.0/8).
 *   - host.sbx.internal (the host's own loopback services) is opened only by a rule whose
 *     resource is exactly host.sbx.internal (with or without a port): `**`, *.sbx.internal,
 *     **.internal and address rules never allow or review it, though a deny from any of them
 *     does apply.
 *   - Target port 0 is the DNS question "could this host be reached on some port": a rule
 *     with a port matches it when it allows or reviews; a deny with a port does not deny the
 *     name (only a port-less deny refuses the name at DNS level).
 *   - The rule reported for a decision is the most specific one of the deciding kind (exact
 *     host > *. > **. > `**`, longer suffixes and prefixes first, a port, method or path adds).
 *   - Path globs match the request path without its query; there is no escape for a literal
 *     '*' or '?'. */
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

/* One resource. Errors name the problem and show the accepted forms. host is lowercased, one
 * trailing dot is dropped, labels are 1..63 of [a-z0-9_-] (no '-' at either end), the name at
 * most 253 characters. text is the normalised form, which parses back to the same resource. */
int sbx_resource_parse(const char *s, struct sbx_resource *r, sbx_err *err);
/* A comma-separated list (spaces around items allowed); up to max items. Empty items are
 * refused; duplicates (after normalisation) are kept once. */
int sbx_resources_parse_list(const char *s, struct sbx_resource *out, size_t max, size_t *n, sbx_err *err);

/* The operation of a request a review rule held without any classifier naming it. */
#define SBX_ACTION_REVIEW_RULE "review-rule"

struct sbx_rule {
	int64_t id;
	enum sbx_rule_kind kind;
	struct sbx_resource res;
	char method[16];    /* "" = any; uppercase */
	char path[512];     /* "" = any; a glob starting with '/' */
	char sandbox[64];   /* "" = global */
	uint32_t approvals; /* review rules: approvals needed (1 or 2) */
	uint64_t timeout_ms;/* review rules: 0 = default */
	char source[32];    /* "user", "preset:balanced", "review:r-3f9a1c2e", ... */
	char action[128];   /* "" for ordinary rules. Allow rules that `sbx review approve --always`
			     * adds carry the reviewed operation ("DeleteStack", "DELETE",
			     * "git-push:force refs/heads/main", or SBX_ACTION_REVIEW_RULE when a
			     * review rule alone held it): such a rule pre-approves requests of exactly
			     * its host, port, method and path whose operation is this one (see
			     * sbx_policy_approved); it needs an exact host with a port, a method and a
			     * path without glob characters */
	int64_t created_at;
};
/* "allow api.example.com --method GET (sandbox foo)" style one-liner, for messages and logs. */
void sbx_rule_describe(const struct sbx_rule *r, char *out, size_t n);
const char *sbx_rule_kind_name(enum sbx_rule_kind k);
int sbx_rule_kind_parse(const char *s, enum sbx_rule_kind *k);
/* Validates method ("GET", ... token chars, uppercased) and path glob (must start with '/'). */
/* Also re-parses res.text (so res always matches its text), refuses a method or path on an
 * address resource, checks the sandbox name, and normalises approvals (0 -> 1; only review
 * rules may have 2, or a timeout, of at most 24 h) and an empty source ("user"). */
int sbx_rule_validate(struct sbx_rule *r, sbx_err *err);

/* ---- storage (table `rules`, schema in store.c; policy_store.c) ---- */
/* Validates r (sbx_rule_validate) and inserts it; sets r->id. If an identical rule (same kind,
 * resource, method, path and sandbox) exists, it is left alone, *existed is set and r is filled
 * from the stored row (id, approvals, timeout_ms, source, created_at). */
int sbx_rules_add(struct sbx_store *s, struct sbx_rule *r, bool *existed, sbx_err *err); /* sets r->id */
/* Removes rules by id (SBX_E_NOTFOUND if there is none), or every rule whose resource/kind/
 * method/path/sandbox match. Every field of the pattern must match exactly as given (an empty
 * method, path or sandbox matches only rules without one); the resource is compared in its
 * normalised form. *removed may be 0: that is not an error. */
int sbx_rules_remove_id(struct sbx_store *s, int64_t id, sbx_err *err);
int sbx_rules_remove_match(struct sbx_store *s, const struct sbx_rule *pattern, int *removed, sbx_err *err);
/* Like sbx_rules_remove_match; with any_kind the pattern's kind is ignored, so allow, deny and
 * review rules on that resource/method/path/sandbox all go (`sbx policy rm network RES`). */
int sbx_rules_remove_where(struct sbx_store *s, const struct sbx_rule *pattern, bool any_kind, int *removed,
			   sbx_err *err);
/* sandbox NULL: removes every rule, then restores the preset recorded in meta 'policy_preset'
 * (balanced if none was recorded). sandbox "": the same for the global rules only (sandbox
 * rules stay). sandbox "name": removes that sandbox's rules only. One transaction. */
int sbx_rules_reset(struct sbx_store *s, const char *sandbox /* NULL = every rule */, sbx_err *err);
/* Every rule, ordered by id, each validated; a stored rule that no longer parses fails the load
 * (skipping it could drop a deny). */
int sbx_rules_load(struct sbx_store *s, struct sbx_rule **out, size_t *n, sbx_err *err); /* caller frees */

/* ---- presets ---- */
/* Rules of a preset ("allow-all", "balanced", "deny-all"); NULL if unknown. The balanced preset:
 * AI services, package registries, code hosts and container registries, cloud APIs, OS mirrors
 * and certificate validation hosts that developers use daily. */
const char *const *sbx_preset_resources(const char *name, size_t *n);
/* Replaces every global rule (sandbox "") by the preset's allow rules (source "preset:NAME") and
 * records NAME in meta 'policy_preset', in one transaction. Sandbox rules stay. */
int sbx_preset_apply(struct sbx_store *s, const char *name, sbx_err *err); /* replaces global rules */
/* The recorded preset into out ("" if the policy was never initialised). Returns 1 when one is
 * recorded, 0 when none is, -1 when the database cannot be read (out is then ""). */
int sbx_policy_preset_get(struct sbx_store *s, char *out, size_t n);

/* ---- deciding ---- */
struct sbx_policy; /* immutable compiled rule set; rebuild on change */
/* Compiles rules (as sbx_rules_load returns them: validated) into hash tables of exact hosts and
 * of wildcard suffixes, so a decision costs a few lookups whatever the number of rules. The
 * policy owns a copy of every rule: the caller may free its array at once. NULL = out of memory.
 * Rules that were never validated cannot make it unsafe to use, but may match nothing. */
struct sbx_policy *sbx_policy_build(const struct sbx_rule *rules, size_t n);
void sbx_policy_free(struct sbx_policy *p);

/* The host is normalised again (lowercased, trailing dot dropped); a host that is an IP literal
 * ("10.0.0.1", "[::1]") counts as that address (when no address is given), never as a name; a
 * host that is not a valid DNS name, or that the C library would read as an IPv4 address in a
 * non-standard form ("127.1", "0x7f.1", "2130706433"), is denied. */
struct sbx_target {
	const char *sandbox; /* name */
	const char *host;    /* lowercased host name, or NULL when only an address is known */
	int family;          /* 0 when no address is known */
	uint8_t addr[16];
	uint16_t port;       /* 0 = the DNS question (see the top of this file) */
	const char *method;  /* NULL before the HTTP request is seen (connection level) */
	const char *path;    /* request path (no query), NULL likewise */
};

struct sbx_decision {
	enum sbx_rule_kind kind;      /* ALLOW, DENY or REVIEW */
	const struct sbx_rule *rule;  /* the deciding rule; NULL = nothing allowed it (default deny).
				       * Points into the policy: valid while the policy lives */
	bool http_rules;              /* connection level: method/path rules exist for this target,
				       * so the request must be seen before the final decision */
	bool http_restricts;          /* connection level: an HTTP rule could refuse or hold a request
				       * to this target (an HTTP deny/review rule matches it, or only
				       * HTTP allows open it): an opaque tunnel must not be allowed */
	char reason[160];             /* short text for the log and the refusal */
};

/* Connection level (method/path NULL): considers network-level rules, and reports whether
 * HTTP-level rules exist (http_rules). A target is allowed at this level if a network-level
 * allow matches, or an HTTP-level allow matches its host (then the request decides).
 * Request level: everything, with deny > review > allow. */
/* In detail. Connection level: a network-level deny -> DENY; else a network-level review ->
 * REVIEW; else a network-level allow -> ALLOW; else an HTTP-level allow or review matching the
 * host and port -> ALLOW with http_rules (rule = that HTTP rule: the request decides); else
 * DENY with rule NULL. http_rules is set whenever an HTTP-level rule of any kind matches the
 * host and port. Request level: the rules whose host/port match and whose method/path (if
 * any) match the request; deny > review > allow; none -> DENY with rule NULL. A NULL policy
 * or target denies. Never fails, never allocates. */
void sbx_policy_decide(const struct sbx_policy *p, const struct sbx_target *t, struct sbx_decision *d);

/* Review exemptions: an allow rule with an action (added by `sbx review approve --always`) whose
 * host and port equal the target's, whose method and path equal the request's (the path without
 * its query), whose action equals action, in the target sandbox's scope or global. It lifts a
 * review hold for that exact shape only (a deny still wins: the caller decided first). NULL if
 * none; the rule points into the policy. */
const struct sbx_rule *sbx_policy_approved(const struct sbx_policy *p, const struct sbx_target *t, const char *action);

#endif
