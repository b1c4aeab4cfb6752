/* policy_store.c - the policy's rules in the state database (table `rules`, meta key
 * 'policy_preset'; schema in store.c).
 *
 * Kept apart from policy.c so that the parsing and matching code links without SQLite. Every
 * rule goes through sbx_rule_validate on the way in and on the way out: the table holds the
 * normalised resource text, and a row that no longer parses fails the load rather than being
 * skipped (a skipped deny would open something up). Changes that touch several rows (a preset,
 * a reset) run in one transaction, so the policy is never seen half replaced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "util.h"

#define META_PRESET "policy_preset"
#define DEFAULT_PRESET "balanced"

static int db_fail(sqlite3 *db, sbx_err *err, const char *what)
{
	return sbx_err_set(err, SBX_E_IO, "state database: %s: %s", what, sqlite3_errmsg(db));
}

static int exec_sql(sqlite3 *db, const char *sql, sbx_err *err, const char *what)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, err, what);
	return 0;
}

static int tx_begin(sqlite3 *db, sbx_err *err)
{
	return exec_sql(db, "BEGIN IMMEDIATE", err, "starting a transaction");
}

/* Commits when ok, else rolls back; returns 0 only for a successful commit. */
static int tx_end(sqlite3 *db, bool ok, sbx_err *err)
{
	if (ok && exec_sql(db, "COMMIT", err, "committing the network policy") == 0)
		return 0;
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Runs one statement with text parameters ?1..?n (NULL binds SQL NULL); *changes gets the number
 * of rows it changed. */
static int run_text(sqlite3 *db, const char *sql, const char *const *params, int n, int *changes, sbx_err *err,
		    const char *what)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, err, what);
	for (int i = 0; i < n; i++) {
		if (sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_STATIC) != SQLITE_OK) {
			sqlite3_finalize(st);
			return db_fail(db, err, what);
		}
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, err, what);
	if (changes)
		*changes = sqlite3_changes(db);
	return 0;
}

static void copy_col(char *dst, size_t n, sqlite3_stmt *st, int col, bool *fits)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	if (sbx_strlcpy(dst, t ? (const char *)t : "", n) >= n)
		*fits = false;
}

/* ---- adding and removing ---- */

static int insert_rule(sqlite3 *db, struct sbx_rule *r, bool *existed, sbx_err *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
			       "INSERT INTO rules (kind, resource, method, path, sandbox, approvals, timeout_ms, source,"
			       " created_at, action) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
			       " ON CONFLICT (kind, resource, method, path, sandbox, action) DO NOTHING",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, err, "adding a rule");
	sqlite3_bind_text(st, 1, sbx_rule_kind_name(r->kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->res.text, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->method, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->sandbox, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, r->approvals);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)r->timeout_ms);
	sqlite3_bind_text(st, 8, r->source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, r->created_at);
	sqlite3_bind_text(st, 10, r->action, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, err, "adding a rule");
	if (sqlite3_changes(db) == 1) {
		r->id = sqlite3_last_insert_rowid(db);
		*existed = false;
		return 0;
	}

	/* the identical rule is there: report it as stored */
	if (sqlite3_prepare_v2(db,
			       "SELECT id, approvals, timeout_ms, source, created_at FROM rules"
			       " WHERE kind = ?1 AND resource = ?2 AND method = ?3 AND path = ?4 AND sandbox = ?5"
			       " AND action = ?6",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, err, "reading an existing rule");
	sqlite3_bind_text(st, 1, sbx_rule_kind_name(r->kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->res.text, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->method, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->sandbox, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, r->action, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		bool fits = true;
		r->id = sqlite3_column_int64(st, 0);
		r->approvals = (uint32_t)sqlite3_column_int64(st, 1);
		r->timeout_ms = (uint64_t)sqlite3_column_int64(st, 2);
		copy_col(r->source, sizeof(r->source), st, 3, &fits);
		r->created_at = sqlite3_column_int64(st, 4);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return db_fail(db, err, "reading an existing rule");
	*existed = true;
	return 0;
}

int sbx_rules_add(struct sbx_store *s, struct sbx_rule *r, bool *existed, sbx_err *err)
{
	bool ex = false;

	if (sbx_rule_validate(r, err) < 0)
		return -1;
	if (!r->created_at)
		r->created_at = (int64_t)sbx_now_ms();
	if (insert_rule(sbx_store_db(s), r, &ex, err) < 0)
		return -1;
	if (existed)
		*existed = ex;
	return 0;
}

int sbx_rules_remove_id(struct sbx_store *s, int64_t id, sbx_err *err)
{
	sqlite3 *db = sbx_store_db(s);
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "DELETE FROM rules WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, err, "removing a rule");
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, err, "removing a rule");
	if (sqlite3_changes(db) == 0)
		return sbx_err_set(err, SBX_E_NOTFOUND, "no rule with id %lld (sbx policy ls shows the ids)", (long long)id);
	return 0;
}

int sbx_rules_remove_where(struct sbx_store *s, const struct sbx_rule *pattern, bool any_kind, int *removed,
			   sbx_err *err)
{
	struct sbx_rule p = *pattern;
	const char *params[5];
	int changes = 0;

	*removed = 0;
	/* normalise the pattern the way stored rules were: resource text, method case */
	if (any_kind)
		p.kind = SBX_RULE_ALLOW;
	p.approvals = 1;
	p.timeout_ms = 0;
	if (sbx_rule_validate(&p, err) < 0)
		return -1;
	params[0] = p.res.text;
	params[1] = p.method;
	params[2] = p.path;
	params[3] = p.sandbox;
	params[4] = sbx_rule_kind_name(p.kind);
	if (run_text(sbx_store_db(s),
		     any_kind ? "DELETE FROM rules WHERE resource = ?1 AND method = ?2 AND path = ?3 AND sandbox = ?4"
			      : "DELETE FROM rules WHERE resource = ?1 AND method = ?2 AND path = ?3 AND sandbox = ?4"
				" AND kind = ?5",
		     params, any_kind ? 4 : 5, &changes, err, "removing rules") < 0)
		return -1;
	*removed = changes;
	return 0;
}

int sbx_rules_remove_match(struct sbx_store *s, const struct sbx_rule *pattern, int *removed, sbx_err *err)
{
	return sbx_rules_remove_where(s, pattern, false, removed, err);
}

/* ---- presets ---- */

static int record_preset(sqlite3 *db, const char *name, sbx_err *err)
{
	const char *params[] = {META_PRESET, name};

	return run_text(db, "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params, 2, NULL, err,
			"recording the network policy preset");
}

/* Inside a transaction: adds the preset's allow rules (global) and records the choice. */
static int add_preset_rules(sqlite3 *db, const char *name, sbx_err *err)
{
	size_t n;
	const char *const *res = sbx_preset_resources(name, &n);
	int64_t now = (int64_t)sbx_now_ms();

	if (!res)
		return sbx_err_set(err, SBX_E_INVALID, "unknown network policy preset '%s': use allow-all, balanced or deny-all",
				   name);
	for (size_t i = 0; i < n; i++) {
		struct sbx_rule r = {.kind = SBX_RULE_ALLOW, .approvals = 1, .created_at = now};
		bool existed;
		sbx_strlcpy(r.res.text, res[i], sizeof(r.res.text));
		snprintf(r.source, sizeof(r.source), "preset:%s", name);
		if (sbx_rule_validate(&r, err) < 0)
			return sbx_err_wrap(err, "preset %s", name); /* a bug in the preset data */
		if (insert_rule(db, &r, &existed, err) < 0)
			return -1;
	}
	return record_preset(db, name, err);
}

int sbx_preset_apply(struct sbx_store *s, const char *name, sbx_err *err)
{
	sqlite3 *db = sbx_store_db(s);
	size_t n;
	bool ok;

	if (!sbx_preset_resources(name, &n))
		return sbx_err_set(err, SBX_E_INVALID, "unknown network policy preset '%s': use allow-all, balanced or deny-all",
				   name ? name : "");
	if (tx_begin(db, err) < 0)
		return -1;
	ok = exec_sql(db, "DELETE FROM rules WHERE sandbox = ''", err, "removing the global rules") == 0 &&
	     add_preset_rules(db, name, err) == 0;
	return tx_end(db, ok, err);
}

int sbx_policy_preset_get(struct sbx_store *s, char *out, size_t n)
{
	sqlite3 *db = sbx_store_db(s);
	sqlite3_stmt *st;
	int rc, found = 0;

	if (n)
		out[0] = '\0';
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, META_PRESET, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		if (n)
			sbx_strlcpy(out, v ? (const char *)v : "", n);
		found = 1;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : -1;
}

int sbx_rules_reset(struct sbx_store *s, const char *sandbox, sbx_err *err)
{
	sqlite3 *db = sbx_store_db(s);
	char preset[64];
	size_t n;
	bool ok;

	if (sandbox && sandbox[0]) {
		const char *params[] = {sandbox};
		return run_text(db, "DELETE FROM rules WHERE sandbox = ?1", params, 1, NULL, err,
				"removing the sandbox's rules");
	}
	if (tx_begin(db, err) < 0)
		return -1;
	ok = sbx_policy_preset_get(s, preset, sizeof(preset)) >= 0;
	if (!ok)
		db_fail(db, err, "reading the network policy preset");
	/* never initialised, or a name this sbx does not know: the default */
	if (ok && !sbx_preset_resources(preset, &n))
		sbx_strlcpy(preset, DEFAULT_PRESET, sizeof(preset));
	ok = ok &&
	     exec_sql(db, sandbox ? "DELETE FROM rules WHERE sandbox = ''" : "DELETE FROM rules", err, "removing rules") ==
		     0 &&
	     add_preset_rules(db, preset, err) == 0;
	return tx_end(db, ok, err);
}

/* ---- loading ---- */

int sbx_rules_load(struct sbx_store *s, struct sbx_rule **out, size_t *n, sbx_err *err)
{
	sqlite3 *db = sbx_store_db(s);
	sqlite3_stmt *st;
	struct sbx_rule *v = NULL;
	size_t len = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(db,
			       "SELECT id, kind, resource, method, path, sandbox, approvals, timeout_ms, source, created_at,"
			       " action FROM rules ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, err, "loading the rules");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct sbx_rule *r;
		const unsigned char *kind = sqlite3_column_text(st, 1);
		sqlite3_int64 approvals = sqlite3_column_int64(st, 6), timeout = sqlite3_column_int64(st, 7);
		bool fits = true;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct sbx_rule *nv = reallocarray(v, ncap, sizeof(*v));
			if (!nv) {
				sbx_err_set(err, SBX_E_INTERNAL, "out of memory loading the rules");
				goto fail;
			}
			v = nv;
			cap = ncap;
		}
		r = &v[len];
		memset(r, 0, sizeof(*r));
		r->id = sqlite3_column_int64(st, 0);
		if (sbx_rule_kind_parse(kind ? (const char *)kind : "", &r->kind) < 0) {
			sbx_err_set(err, SBX_E_INVALID, "rule %lld in the state database has an unknown kind",
				    (long long)r->id);
			goto fail;
		}
		copy_col(r->res.text, sizeof(r->res.text), st, 2, &fits);
		copy_col(r->method, sizeof(r->method), st, 3, &fits);
		copy_col(r->path, sizeof(r->path), st, 4, &fits);
		copy_col(r->sandbox, sizeof(r->sandbox), st, 5, &fits);
		copy_col(r->source, sizeof(r->source), st, 8, &fits);
		r->created_at = sqlite3_column_int64(st, 9);
		copy_col(r->action, sizeof(r->action), st, 10, &fits);
		if (!fits || approvals < 0 || approvals > 2 || timeout < 0) {
			sbx_err_set(err, SBX_E_INVALID, "rule %lld in the state database has a field out of range",
				    (long long)r->id);
			goto fail;
		}
		r->approvals = (uint32_t)approvals;
		r->timeout_ms = (uint64_t)timeout;
		if (sbx_rule_validate(r, err) < 0) {
			sbx_err_wrap(err, "rule %lld in the state database cannot be used", (long long)r->id);
			goto fail;
		}
		len++;
	}
	if (rc != SQLITE_DONE) {
		db_fail(db, err, "loading the rules");
		goto fail;
	}
	sqlite3_finalize(st);
	*out = v;
	*n = len;
	return 0;
fail:
	sqlite3_finalize(st);
	free(v);
	return -1;
}
