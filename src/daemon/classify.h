/* classify.h - the built-in request classifiers of the review queue.
 *
 * The proxy asks this module about every allowed HTTP request it can read (plain HTTP, or HTTPS
 * it intercepts). A HOLD verdict puts the request in the review queue until a human approves it
 * (DESIGN.md "Review queue"). Three classifiers mark the destructive shapes of well-known APIs:
 *
 *   aws-destructive  AWS API calls named Delete*, Terminate*, Remove*, Detach*, Revoke*,
 *                    Put*Policy, Update*Stack, wherever the action is written (JSON protocol
 *                    X-Amz-Target, query protocol Action= in the URL or a form body, Smithy RPC v2
 *                    ".../service/S/operation/Op" paths), REST DELETE, S3's ?policy and ?delete;
 *   git-force-push   git smart-HTTP pushes that delete a ref, or update one to a commit the proxy
 *                    cannot prove to descend from the old one by walking the pushed pack;
 *   http-delete      any DELETE request (also POST with an X-HTTP-Method-Override of DELETE).
 *
 * The module is pure: no I/O, no globals, deterministic; every parse is bounded and everything it
 * allocates is freed before it returns. The request is the sandbox's, so it is read as hostile:
 * what cannot be read with certainty is held (fail closed), with a reason that says why.
 *
 * Each call starts from the beginning of the body it is given (there is no state between calls):
 * after MORE, call again once a useful amount of new body has arrived (say, every 16 KiB or at the
 * end), not on every byte. */
#ifndef SBX_CLASSIFY_H
#define SBX_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http1.h"

enum sbx_classifier { SBX_CLS_AWS = 0, SBX_CLS_HTTP_DELETE = 1, SBX_CLS_GIT_PUSH = 2, SBX_CLS_COUNT };
#define SBX_CLS_ALL ((1u << SBX_CLS_COUNT) - 1)

/* Body bytes the caller buffers at most for a decision. Bytes past this are never looked at: a
 * longer body is judged on its first SBX_CLASSIFY_BODY_MAX bytes, and what those do not decide
 * is held. */
#define SBX_CLASSIFY_BODY_MAX (256u * 1024)

/* "aws-destructive", "http-delete", "git-force-push"; NULL for a value out of range. */
const char *sbx_classifier_name(enum sbx_classifier c);
/* One line describing what the classifier holds, for `sbx policy ls`; NULL out of range. */
const char *sbx_classifier_summary(enum sbx_classifier c);
/* The classifier named name (exactly one of the names above). Returns 0, or -1 when name is
 * NULL or names none. */
int sbx_classifier_parse(const char *name, enum sbx_classifier *out);

struct sbx_classify_input {
	const char *host;          /* lowercased host name the request goes to (never NULL; "" if only an address is known) */
	const char *method;        /* uppercase */
	const char *target;        /* origin-form request target as sent: path plus "?query" if any */
	const struct sbx_http_msg *msg; /* the parsed request head (headers: X-Amz-Target, Content-Type, Content-Encoding, ...) */
	const uint8_t *body;       /* the first body_len bytes of the body, already de-chunked (payload bytes) */
	size_t body_len;
	bool body_complete;        /* body holds the whole payload (also true when there is no body) */
};

enum sbx_classify_verdict { SBX_CLASSIFY_PASS, SBX_CLASSIFY_HOLD, SBX_CLASSIFY_MORE };

struct sbx_classify_result {
	enum sbx_classify_verdict verdict;
	enum sbx_classifier which;   /* HOLD: the classifier that matched */
	/* HOLD: the operation, stable and exact enough to be the "shape" of an "approve always"
	 * exemption: "DeleteStack" (AWS; no service prefix), "PUT ?policy", "POST ?delete", "DELETE"
	 * (AWS REST and http-delete), "git-push:delete refs/heads/x", "git-push:force refs/heads/main"
	 * (several offending refs: the first in the push's command order). Requests that could not be
	 * read get a generic action that names no operation: "aws:ambiguous-action",
	 * "aws:malformed-parameters", "aws:unreadable-body", "git-push:malformed", "git-push:signed",
	 * "git-push:encoded", "git-push:too-large", "git-push:unchecked" (out of memory and the like).
	 * An exemption for one of those would exempt every such request: better not offered. An
	 * action names one operation only, so "approve always" is safe only where the request holds
	 * no other (a push that also forces another ref is held under the first one's name). Printable
	 * ASCII; a longer value is cut and ends in "...". */
	char action[128];
	/* HOLD: for humans, e.g. "AWS action DeleteStack (query protocol)", "git push deletes
	 * refs/heads/x", "git push to refs/heads/main is not a fast-forward the proxy can prove (force
	 * push?)". Printable ASCII, never empty on HOLD. */
	char reason[200];
};

/* Runs the enabled classifiers (bit mask, 1u << enum; other bits are ignored) in the order AWS,
 * GIT_PUSH, HTTP_DELETE; the first HOLD wins, even over an earlier classifier that still needs
 * more of the body. in and out must not be NULL; NULL strings in *in count as "" and a NULL msg
 * as a head without headers.
 *
 * MORE means: a classifier needs more body bytes to decide; the caller reads more and calls
 * again. MORE is never returned when body_complete or body_len >= SBX_CLASSIFY_BODY_MAX: what
 * cannot be decided then is HOLD (fail closed), with a reason saying why (e.g. "the push's
 * commands do not fit in 256 KiB"). A head that says there is no body (no framing, or
 * Content-Length: 0), or a body_len that reaches the Content-Length, counts as complete.
 *
 * A decision made on part of the body stands: once a call on the first N bytes returns PASS or
 * HOLD, every call on a longer prefix of the same body returns the same verdict. So the proxy may
 * forward as soon as it sees PASS (a git push is usually proven by its first commits). */
void sbx_classify(const struct sbx_classify_input *in, unsigned enabled, struct sbx_classify_result *out);

/* Cheap pre-check on the head only: could an enabled classifier need the body of this request
 * (AWS query-protocol form posts on AWS hosts, git receive-pack posts)? The proxy uses it to decide
 * whether to buffer the body before forwarding. When it returns false, sbx_classify's verdict does
 * not depend on the body (it may be called with body_len 0 and will not return MORE). */
bool sbx_classify_wants_body(const struct sbx_classify_input *in, unsigned enabled);

/* Could an enabled classifier hold a request to this host (the proxy then opens TLS to read
 * requests)? git pushes and DELETE can go anywhere; AWS actions only to AWS hosts. */
bool sbx_classify_host_relevant(const char *host, unsigned enabled);

/* Does this action name one operation, so that an "approve always" exemption for it is exact?
 * False for the generic actions of requests that could not be read ("aws:...",
 * "git-push:malformed", "git-push:too-large", ...), for the proxy's "unclassified ..." and for a
 * cut action (ending in "..."): an exemption for those would wave through every such request. */
bool sbx_classify_action_exact(const char *action);

#endif
