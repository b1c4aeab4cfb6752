/* api_audit.c - /v1/audit: verifying the audit log's hash chain.
 *
 * The check runs in the daemon because the daemon owns the database (its file is the daemon's
 * user's, 0600) and can first flush what the proxy has queued, so the answer covers every
 * record acknowledged so far. It reads on its own connection and holds no daemon state. */
#include "api_audit.h"

#include "api_check.h"

#include <string.h>

#include "audit.h"

static json_t *h_verify(struct sbx_daemon *d, int *status, sbx_err *err)
{
	struct sbx_audit_verify_result r;

	/* Records still queued would be missing from the check (and from the chain's head). */
	if (d->audit && sbx_audit_flush(d->audit) < 0)
		return sbx_api_fail(err, SBX_E_IO,
				    "the audit log cannot write its queued records (see the daemon's log): verify again "
				    "once it can");
	if (sbx_audit_verify(d->paths.db_path, &r, err) < 0) {
		sbx_err_wrap(err, "verifying the audit log");
		return NULL;
	}
	*status = 200;
	return json_pack("{s:b, s:I, s:I, s:I, s:I, s:s, s:o, s:s}", "intact", r.intact, "rows", (json_int_t)r.rows,
			 "chained", (json_int_t)r.chained, "unchained", (json_int_t)r.unchained, "last_id",
			 (json_int_t)r.last_id, "last_hash", r.last_hash, "bad_id",
			 r.intact ? json_null() : json_integer((json_int_t)r.bad_id), "message", r.message);
}

json_t *sbx_api_audit(struct sbx_daemon *d, const char *method, const char *path, const char *query, json_t *body,
		      int *status, sbx_err *err)
{
	*status = 0;
	if (query && *query)
		return sbx_api_fail(err, SBX_E_INVALID, "%s %s takes no query parameters", method, path);
	if (strcmp(path, "/v1/audit/verify") == 0 && strcmp(method, "GET") == 0)
		return h_verify(d, status, err);
	return sbx_api_fail(err, SBX_E_NOTFOUND, "no API endpoint %s %s (this daemon speaks API version %s)", method, path,
			    SBX_API_VERSION);
}
