/* review_settings.c - the built-in classifiers' settings (table `classifiers`, see review.h).
 *
 * A row exists only for a classifier whose settings the user changed; every other one is on,
 * with one approval and the default timeout. */
#include <string.h>

#include "review.h"

#define MAX_TIMEOUT_MS (24ull * 3600 * 1000)

static int db_fail(struct sbx_store *s, sbx_err *err, const char *what)
{
	return sbx_err_set(err, SBX_E_IO, "state database: %s: %s", what, sqlite3_errmsg(sbx_store_db(s)));
}

int sbx_classifier_cfg_load(struct sbx_store *s, struct sbx_classifier_cfg out[SBX_CLS_COUNT], sbx_err *err)
{
	sqlite3_stmt *st;
	int rc;

	for (int i = 0; i < SBX_CLS_COUNT; i++)
		out[i] = (struct sbx_classifier_cfg){.enabled = true, .approvals = 1, .timeout_ms = 0};
	if (sqlite3_prepare_v2(sbx_store_db(s), "SELECT name, enabled, approvals, timeout_ms FROM classifiers", -1, &st,
			       NULL) != SQLITE_OK)
		return db_fail(s, err, "reading the classifier settings");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *name = sqlite3_column_text(st, 0);
		enum sbx_classifier c;
		sqlite3_int64 approvals = sqlite3_column_int64(st, 2), timeout = sqlite3_column_int64(st, 3);
		if (!name || sbx_classifier_parse((const char *)name, &c) < 0)
			continue; /* a classifier this version does not have */
		if (approvals < 1 || approvals > 2 || timeout < 0 || (uint64_t)timeout > MAX_TIMEOUT_MS) {
			sqlite3_finalize(st);
			return sbx_err_set(err, SBX_E_INVALID,
					   "the settings of classifier %s in the state database are out of range", name);
		}
		out[c].enabled = sqlite3_column_int(st, 1) != 0;
		out[c].approvals = (uint32_t)approvals;
		out[c].timeout_ms = (uint64_t)timeout;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_fail(s, err, "reading the classifier settings");
}

int sbx_classifier_cfg_store(struct sbx_store *s, enum sbx_classifier c, const struct sbx_classifier_cfg *cfg,
			     sbx_err *err)
{
	sqlite3_stmt *st;
	int rc;

	if (cfg->approvals < 1 || cfg->approvals > 2)
		return sbx_err_set(err, SBX_E_INVALID, "approvals must be 1 or 2");
	if (cfg->timeout_ms > MAX_TIMEOUT_MS)
		return sbx_err_set(err, SBX_E_INVALID, "a review timeout is at most 24h");
	if (sqlite3_prepare_v2(sbx_store_db(s),
			       "INSERT OR REPLACE INTO classifiers (name, enabled, approvals, timeout_ms)"
			       " VALUES (?1, ?2, ?3, ?4)",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(s, err, "storing the classifier settings");
	sqlite3_bind_text(st, 1, sbx_classifier_name(c), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, cfg->enabled ? 1 : 0);
	sqlite3_bind_int64(st, 3, cfg->approvals);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)cfg->timeout_ms);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_fail(s, err, "storing the classifier settings");
}

unsigned sbx_classifier_cfg_mask(const struct sbx_classifier_cfg cfg[SBX_CLS_COUNT])
{
	unsigned m = 0;

	for (int i = 0; i < SBX_CLS_COUNT; i++)
		if (cfg[i].enabled)
			m |= 1u << i;
	return m;
}
