/* api_policy.h - the network policy part of the control API (/v1/policy...), and the preset
 * bookkeeping it shares with policy_live.c.
 *
 * Routes (JSON bodies; every field is checked for type and length):
 *   GET    /v1/policy[?sandbox=NAME]   {"preset": NAME|null, "rules": [RULE...]}: global rules, or
 *                                      the rules that apply to one sandbox (global + its own)
 *   POST   /v1/policy/init             {"preset", "only_if_unset"?} -> {"preset", "applied", "rules"}
 *   POST   /v1/policy/ensure           balanced if never initialised -> {"preset", "applied", "rules"}
 *   POST   /v1/policy/rules            {"kind", "resources" (list, or a comma-separated string),
 *                                       "method"?, "path"?, "sandbox"?, "approvals"?, "timeout_ms"?}
 *                                      -> {"added": [RULE...], "existing": [RULE...], "sandbox_exists"}
 *   DELETE /v1/policy/rules            {"resources", "kind"?, "method"?, "path"?, "sandbox"?}
 *                                      -> {"removed": [RULE...], "unmatched": [RESOURCE...]}
 *   DELETE /v1/policy/rules/ID         -> {"removed": [RULE]}
 *   POST   /v1/policy/check            {"target", "sandbox"?, "method"?, "path"?} -> the decision
 *   POST   /v1/policy/reset            {"sandbox"?} -> {"removed", "preset", "rules"}
 *   GET    /v1/policy/log?sandbox=&host=&decision=&after_id=&limit=&raw=1
 *                                      -> {"records": [...], "last_id"} (raw) or {"groups": [...]}
 * Every change reloads the policy in force, so running sandboxes see it at once. */
#ifndef SBX_API_POLICY_H
#define SBX_API_POLICY_H

#include <jansson.h>
#include <stddef.h>

#include "daemon.h"

/* Handles one request under /v1/policy. query is the raw query string (no '?'), body the
 * parsed JSON object (never NULL). Returns the response body with *status set, or NULL with
 * err filled (the caller answers with the error's status). */
json_t *sbx_api_policy(struct sbx_daemon *d, const char *method, const char *path, const char *query, json_t *body,
		       int *status, sbx_err *err);

/* ---- policy_live.c (besides sbx_daemon_policy_reload/ensure in daemon.h) ---- */
/* The recorded preset: 1 with its name in out, 0 when the policy was never initialised. */
int sbx_daemon_policy_preset(struct sbx_daemon *d, char *out, size_t n, sbx_err *err);
/* Replace the global rules with a preset's (which records the choice) and reload. */
int sbx_daemon_policy_init(struct sbx_daemon *d, const char *preset, sbx_err *err);

#endif
