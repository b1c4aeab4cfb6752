/* review.h - the review queue: requests held at the proxy until a human decides.
 *
 * The proxy holds an HTTP request (DESIGN.md "Review queue") when a review rule matches it or a
 * built-in classifier (classify.h) calls it destructive. It keeps the client's connection open
 * and unread (the client sees a slow response) and files the request here. People decide
 * through the API (api_review.c): approve, with the two-person rule counting distinct approvers
 * (approvers.h), or deny; no decision within the timeout is a denial. The queue then calls the
 * proxy back to send the request upstream exactly as the agent wrote it, or to answer 403.
 *
 * Everything runs on the daemon's event loop (the proxy, the API and the timers), so the queue
 * needs no locks. Every transition is an audit record (held, each approval, approved, refused,
 * timeout), written before the transition takes effect: a transition that cannot be logged
 * does not happen (the hold is refused, the approval fails and can be repeated).
 *
 * Retries. HTTP clients give up on a slow response (botocore after 60 s) and send the same
 * request again. An item whose client has gone stays queued until its timeout; the identical
 * request from the same sandbox (same method, URL, operation, body and headers other than
 * signatures, dates and retry counters) joins it instead of queueing again, and an approval
 * given while no client waits lets that identical request through once, when it comes back
 * within SBX_REVIEW_RETRY_GRACE_MS.
 *
 * Memory: at most SBX_REVIEW_MAX items (SBX_REVIEW_MAX_PER_SANDBOX per sandbox), each with
 * capped copies (headers, body preview). */
#ifndef SBX_REVIEW_H
#define SBX_REVIEW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "classify.h"
#include "err.h"
#include "http1.h"
#include "store.h"

#define SBX_REVIEW_DEFAULT_TIMEOUT_MS (10u * 60 * 1000)
#define SBX_REVIEW_MAX_PER_SANDBOX 512
#define SBX_REVIEW_MAX 4096
#define SBX_REVIEW_ID_SIZE 11 /* "r-" + 8 hex digits + NUL */
#define SBX_REVIEW_PREVIEW_MAX 4096
#define SBX_REVIEW_HEADERS_MAX 8192
#define SBX_REVIEW_RETRY_GRACE_MS (10u * 60 * 1000)

struct sbx_daemon;
struct sbx_reviews;

/* The proxy's callback: the held request on conn is decided. approved: send it. Otherwise
 * decision is "refused" or "timeout" and reason says why, for the client's 403. The queue has
 * forgotten conn when this runs. */
typedef void (*sbx_review_release_fn)(void *conn, bool approved, const char *decision, const char *reason);

/* A request the proxy holds: everything is copied (capped) during sbx_review_hold. */
struct sbx_review_req {
	const char *sandbox_id, *sandbox_name;
	const char *via;          /* "forward" | "transparent", for the log */
	const char *rule;         /* the review rule, described, or "builtin NAME" */
	const char *classifier;   /* the classifier that matched, "" when only a rule did */
	const char *action;       /* the operation (classify.h), or SBX_ACTION_REVIEW_RULE */
	const char *why;          /* for people: "AWS action DeleteStack (query protocol)" */
	const char *method;
	const char *scheme;       /* "http" | "https" */
	const char *host;         /* the name, or the address literal */
	uint16_t port;
	const char *target;       /* path and query as sent */
	const struct sbx_http_msg *msg; /* headers (copied with credentials masked) */
	const uint8_t *body;      /* the body's first bytes, de-chunked */
	size_t body_len;
	bool body_complete;
	uint32_t needed;          /* approvals, 1 or 2 */
	uint64_t timeout_ms;      /* 0 = SBX_REVIEW_DEFAULT_TIMEOUT_MS */
	bool credential_injected; /* the proxy replaces the credential headers: a retry's own differ */
};

enum sbx_review_hold_result {
	SBX_REVIEW_HELD,        /* filed (or joined an identical request's item): wait for release */
	SBX_REVIEW_PREAPPROVED, /* the retry of a request approved while its client was away: send it */
	SBX_REVIEW_REFUSED,     /* not held (queue full, log unavailable): refuse with reason */
};

int sbx_reviews_new(struct sbx_daemon *d, sbx_review_release_fn release, struct sbx_reviews **out, sbx_err *err);
/* Refuses everything still held (the daemon is going away). */
void sbx_reviews_free(struct sbx_reviews *q);

/* id gets the item's id; reason (at least 200 bytes) says why when REFUSED. */
enum sbx_review_hold_result sbx_review_hold(struct sbx_reviews *q, const struct sbx_review_req *r, void *conn,
					    char id[SBX_REVIEW_ID_SIZE], char *reason, size_t reason_size);
/* The proxy lets go of conn without a decision (its client closed, the proxy is closing it):
 * the item stays until its timeout, for the client's retry. */
void sbx_review_detach(struct sbx_reviews *q, const char *id, void *conn);
/* A sandbox stopped or went away: its held requests are refused, its items dropped. */
void sbx_review_sandbox_gone(struct sbx_reviews *q, const char *sandbox_id);

/* The shape an "approve --always" exemption names. */
struct sbx_review_shape {
	char sandbox[64];
	char host[256];
	uint16_t port;
	char method[32];
	char path[512];   /* without the query */
	char action[128];
	bool host_is_name;
	bool has_query;   /* the URL had a query, which a rule's path cannot name */
	uint32_t needed;
};
/* SBX_E_NOTFOUND when there is no such item. */
int sbx_review_shape_of(struct sbx_reviews *q, const char *id, struct sbx_review_shape *out, sbx_err *err);

/* approver is an identity (approvers.h). Adds the approval; when enough distinct approvers have
 * approved, the request is released (or, with no client waiting, kept for its retry). *out gets
 * {"id","state":"held"|"approved","approvals":[...],"needed":n,"sent":bool}. Errors: SBX_E_NOTFOUND
 * (no such held request), SBX_E_CONFLICT (this approver already approved it), SBX_E_IO (the log
 * cannot record it: nothing changed). */
int sbx_review_approve(struct sbx_reviews *q, const char *id, const char *approver, json_t **out, sbx_err *err);
/* Refuses it (reason may be NULL or ""): a held request, or one approved while its client was
 * away (its retry is then refused too). *out gets {"id","state":"denied"}. */
int sbx_review_deny(struct sbx_reviews *q, const char *id, const char *approver, const char *reason, json_t **out,
		    sbx_err *err);

/* {"reviews":[...]}: every item, or those of one sandbox (by name), oldest first. */
json_t *sbx_review_list(struct sbx_reviews *q, const char *sandbox_name);
/* One item with its headers and body preview; NULL with SBX_E_NOTFOUND. */
json_t *sbx_review_get(struct sbx_reviews *q, const char *id, sbx_err *err);
/* Items waiting for a decision, of one sandbox (by id) or all (NULL). */
size_t sbx_review_pending(struct sbx_reviews *q, const char *sandbox_id);

/* ---- settings of the built-in classifiers (review_settings.c; table `classifiers`) ---- */
struct sbx_classifier_cfg {
	bool enabled;
	uint32_t approvals;  /* 1 or 2 */
	uint64_t timeout_ms; /* 0 = SBX_REVIEW_DEFAULT_TIMEOUT_MS */
};
/* Every classifier's settings: the stored row, or the default (enabled, 1 approval). */
int sbx_classifier_cfg_load(struct sbx_store *s, struct sbx_classifier_cfg out[SBX_CLS_COUNT], sbx_err *err);
int sbx_classifier_cfg_store(struct sbx_store *s, enum sbx_classifier c, const struct sbx_classifier_cfg *cfg,
			     sbx_err *err);
/* The enabled ones as a mask for sbx_classify. */
unsigned sbx_classifier_cfg_mask(const struct sbx_classifier_cfg cfg[SBX_CLS_COUNT]);

#endif
