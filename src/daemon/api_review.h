/* api_review.h - the review queue's part of the control API.
 *
 * Routes (JSON bodies; fields checked, unknown fields refused):
 *   GET    /v1/reviews[?sandbox=NAME]  {"reviews": [ITEM...]} oldest first (review.h)
 *   GET    /v1/reviews/ID              ITEM with "headers", "body_preview", "body_bytes", "body_truncated"
 *   POST   /v1/reviews/ID/approve      {"always"?, "approver"?, "token"?} -> {"id", "state", "approvals",
 *                                      "needed", "sent", "rule"?}: without "approver" the approval is
 *                                      the local user's ("user:LOGIN"); with it, the token must be
 *                                      that approver's. "always" adds an allow rule for exactly this
 *                                      request's shape, with the approval that completes it.
 *   POST   /v1/reviews/ID/deny         {"reason"?, "approver"?, "token"?} -> {"id", "state": "denied"}
 *   GET    /v1/approvers               {"approvers": [{"name", "created_ms"}]}
 *   POST   /v1/approvers               {"name"} -> 201 {"name", "token"}: the only time the token is shown
 *   DELETE /v1/approvers/NAME          {"removed": NAME}
 *   GET    /v1/policy/classifiers      {"classifiers": [{"name", "enabled", "approvals", "timeout_ms", "summary"}]}
 *   POST   /v1/policy/classifiers/NAME {"enabled"?, "approvals"?, "timeout_ms"?} -> the classifier */
#ifndef SBX_API_REVIEW_H
#define SBX_API_REVIEW_H

#include <jansson.h>
#include <sys/types.h>

#include "daemon.h"

/* /v1/reviews... and /v1/approvers...; peer_uid is the caller's (the local user's identity). */
json_t *sbx_api_review(struct sbx_daemon *d, const char *method, const char *path, const char *query, json_t *body,
		       uid_t peer_uid, int *status, sbx_err *err);
/* /v1/policy/classifiers...; rest is what follows "/v1/policy/classifiers" ("" or "/NAME"). */
json_t *sbx_api_classifiers(struct sbx_daemon *d, const char *method, const char *rest, json_t *body, int *status,
			    sbx_err *err);
/* The "classifiers" array, as GET /v1/policy lists it too. */
json_t *sbx_api_classifiers_json(struct sbx_daemon *d);

#endif
