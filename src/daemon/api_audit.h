/* api_audit.h - the audit log's own part of the control API (/v1/audit...). Reading the log is
 * /v1/policy/log (api_policy.h); this is about the log as evidence.
 *
 * Routes:
 *   GET /v1/audit/verify   checks the hash chain (audit.h) ->
 *                          {"intact", "rows", "chained", "unchained", "last_id", "last_hash",
 *                           "bad_id" (null when intact), "message"}
 *                          200 whether or not the log is intact: the check itself worked. */
#ifndef SBX_API_AUDIT_H
#define SBX_API_AUDIT_H

#include <jansson.h>

#include "daemon.h"

/* Handles one request under /v1/audit, like sbx_api_policy: the response body with *status
 * set, or NULL with err filled. */
json_t *sbx_api_audit(struct sbx_daemon *d, const char *method, const char *path, const char *query, json_t *body,
		      int *status, sbx_err *err);

#endif
