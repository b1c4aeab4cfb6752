#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "util.h"

struct sbx_store {
	sqlite3 *db;
};

/* Each entry moves the schema from version i to i + 1. Never edit a released step: add one. */
static const char *const migrations[] = {
	/* 0 -> 1: sandboxes */
	"CREATE TABLE sandboxes ("
	"  id TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  agent TEXT NOT NULL,"
	"  isolation TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  spec TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  started_at INTEGER NOT NULL DEFAULT 0,"
	"  init_pid INTEGER NOT NULL DEFAULT 0,"
	"  error TEXT"
	");"
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
	/* 1 -> 2: the egress policy and the audit log */
	"CREATE TABLE rules ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  kind TEXT NOT NULL CHECK (kind IN ('allow', 'deny', 'review')),"
	"  resource TEXT NOT NULL,"           /* one resource, as the user wrote it (normalised) */
	"  method TEXT NOT NULL DEFAULT '',"  /* '' = any */
	"  path TEXT NOT NULL DEFAULT '',"    /* glob, '' = any */
	"  sandbox TEXT NOT NULL DEFAULT '',"  /* '' = global */
	"  approvals INTEGER NOT NULL DEFAULT 1,"
	"  timeout_ms INTEGER NOT NULL DEFAULT 0,"
	"  source TEXT NOT NULL DEFAULT 'user',"
	"  created_at INTEGER NOT NULL"
	");"
	"CREATE UNIQUE INDEX rules_unique ON rules (kind, resource, method, path, sandbox);"
	"CREATE TABLE audit ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  ts INTEGER NOT NULL,"               /* ms since the epoch, when the attempt began */
	"  sandbox TEXT NOT NULL,"
	"  path TEXT NOT NULL,"                /* forward | transparent | dns | network */
	"  host TEXT NOT NULL DEFAULT '',"
	"  port INTEGER NOT NULL DEFAULT 0,"
	"  method TEXT NOT NULL DEFAULT '',"
	"  url_path TEXT NOT NULL DEFAULT '',"
	"  decision TEXT NOT NULL,"            /* allowed | denied | held | approved | refused | ... */
	"  rule TEXT NOT NULL DEFAULT '',"
	"  reason TEXT NOT NULL DEFAULT '',"
	"  bytes_up INTEGER NOT NULL DEFAULT 0,"
	"  bytes_down INTEGER NOT NULL DEFAULT 0,"
	"  duration_ms INTEGER NOT NULL DEFAULT 0,"
	"  status INTEGER NOT NULL DEFAULT 0"  /* upstream HTTP status where seen */
	");"
	"CREATE INDEX audit_sandbox_ts ON audit (sandbox, ts);",
	/* 2 -> 3: credentials (secrets.c). The value column is the secret itself: the file is 0600
	 * in a 0700 directory, and nothing but secrets.c reads the table. */
	"CREATE TABLE secrets ("
	"  name TEXT NOT NULL,"                /* built-in service or custom name */
	"  sandbox TEXT NOT NULL DEFAULT '',"  /* '' = global */
	"  custom INTEGER NOT NULL DEFAULT 0 CHECK (custom IN (0, 1)),"
	"  hosts TEXT NOT NULL DEFAULT '[]',"  /* custom: JSON list of normalised resources */
	"  header TEXT NOT NULL DEFAULT '',"   /* custom only */
	"  format TEXT NOT NULL DEFAULT '',"   /* custom only */
	"  value TEXT NOT NULL,"
	"  updated_at INTEGER NOT NULL,"       /* ms since the epoch */
	"  UNIQUE (name, sandbox)"
	");",
	/* 3 -> 4: the audit log's hash chain (audit.c). Each record stores its own hash and its
	 * predecessor's. Rows written before this step keep '' in both: they are not covered, and
	 * the chain starts at the first row with a hash (whose prev is ''). */
	("ALTER TABLE audit ADD COLUMN hash TEXT NOT NULL DEFAULT '';"
	 "ALTER TABLE audit ADD COLUMN prev TEXT NOT NULL DEFAULT '';"),
	/* 4 -> 5: the review queue. Rules gain the action an "approve --always" exemption names
	 * (policy.h); named approvers keep only a hash of their token (approvers.c); the built-in
	 * classifiers' settings, a row only where the user changed the default (classifiers.c). */
	("ALTER TABLE rules ADD COLUMN action TEXT NOT NULL DEFAULT '';"
	 "DROP INDEX rules_unique;"
	 "CREATE UNIQUE INDEX rules_unique ON rules (kind, resource, method, path, sandbox, action);"
	 "CREATE TABLE approvers ("
	 "  name TEXT PRIMARY KEY,"
	 "  token_hash TEXT NOT NULL,"          /* hex SHA-256 of the token */
	 "  created_at INTEGER NOT NULL"
	 ");"
	 "CREATE TABLE classifiers ("
	 "  name TEXT PRIMARY KEY,"
	 "  enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),"
	 "  approvals INTEGER NOT NULL DEFAULT 1 CHECK (approvals IN (1, 2)),"
	 "  timeout_ms INTEGER NOT NULL DEFAULT 0"
	 ");"),
};

_Static_assert(SBX_ARRAY_LEN(migrations) == SBX_STORE_SCHEMA_VERSION,
	       "SBX_STORE_SCHEMA_VERSION in store.h must be the number of migrations");

static int db_fail(struct sbx_store *s, sbx_err *err, const char *what)
{
	return sbx_err_set(err, SBX_E_IO, "state database: %s: %s", what, sqlite3_errmsg(s->db));
}

static int migrate(struct sbx_store *s, sbx_err *err)
{
	sqlite3_stmt *st;
	int version = 0;
	const int target = (int)SBX_ARRAY_LEN(migrations);

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return db_fail(s, err, "reading the schema version");
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > target)
		return sbx_err_set(err, SBX_E_CONFLICT,
				   "the state database has schema version %d, newer than this sbx understands (%d): "
				   "use the newer sbx, or move the state directory away", version, target);
	for (int v = version; v < target; v++) {
		char pragma[64];
		char *msg = NULL;
		if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			return db_fail(s, err, "starting a migration");
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
		if (sqlite3_exec(s->db, migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(s->db, pragma, NULL, NULL, &msg) != SQLITE_OK) {
			sbx_err_set(err, SBX_E_IO, "state database: migration to schema %d failed: %s", v + 1,
				    msg ? msg : sqlite3_errmsg(s->db));
			sqlite3_free(msg);
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
		if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			return db_fail(s, err, "committing a migration");
	}
	return 0;
}

int sbx_store_open(const char *path, struct sbx_store **out, sbx_err *err)
{
	struct sbx_store *s = calloc(1, sizeof(*s));
	mode_t old;
	int rc;

	if (!s)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	old = umask(077);
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	umask(old);
	if (rc != SQLITE_OK) {
		sbx_err_set(err, SBX_E_IO, "cannot open the state database %s: %s", path,
			    s->db ? sqlite3_errmsg(s->db) : "out of memory");
		sqlite3_close(s->db);
		free(s);
		return -1;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", NULL,
			 NULL, NULL) != SQLITE_OK) {
		db_fail(s, err, "configuring");
		goto fail;
	}
	if (migrate(s, err) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	sqlite3_close(s->db);
	free(s);
	return -1;
}

void sbx_store_close(struct sbx_store *s)
{
	if (!s)
		return;
	sqlite3_close(s->db);
	free(s);
}

sqlite3 *sbx_store_db(struct sbx_store *s)
{
	return s->db;
}

static int bind_row(sqlite3_stmt *st, const struct sbx_sandbox_row *r)
{
	return sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC) | sqlite3_bind_text(st, 2, r->name, -1, SQLITE_STATIC) |
	       sqlite3_bind_text(st, 3, r->agent, -1, SQLITE_STATIC) |
	       sqlite3_bind_text(st, 4, r->isolation, -1, SQLITE_STATIC) |
	       sqlite3_bind_text(st, 5, r->state, -1, SQLITE_STATIC) |
	       sqlite3_bind_text(st, 6, r->spec_json ? r->spec_json : "{}", -1, SQLITE_STATIC) |
	       sqlite3_bind_int64(st, 7, r->created_at) | sqlite3_bind_int64(st, 8, r->started_at) |
	       sqlite3_bind_int64(st, 9, r->init_pid) |
	       (r->error ? sqlite3_bind_text(st, 10, r->error, -1, SQLITE_STATIC) : sqlite3_bind_null(st, 10));
}

static int exec_row(struct sbx_store *s, const char *sql, const struct sbx_sandbox_row *r, sbx_err *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(s, err, "preparing");
	if (bind_row(st, r) != SQLITE_OK) {
		sqlite3_finalize(st);
		return db_fail(s, err, "binding");
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT)
		return sbx_err_set(err, SBX_E_CONFLICT, "a sandbox named '%s' already exists", r->name);
	if (rc != SQLITE_DONE)
		return db_fail(s, err, "writing a sandbox");
	return 0;
}

int sbx_store_sandbox_insert(struct sbx_store *s, const struct sbx_sandbox_row *r, sbx_err *err)
{
	return exec_row(s,
			"INSERT INTO sandboxes (id, name, agent, isolation, state, spec, created_at, started_at,"
			" init_pid, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
			r, err);
}

int sbx_store_sandbox_update(struct sbx_store *s, const struct sbx_sandbox_row *r, sbx_err *err)
{
	return exec_row(s,
			"UPDATE sandboxes SET name = ?2, agent = ?3, isolation = ?4, state = ?5, spec = ?6,"
			" created_at = ?7, started_at = ?8, init_pid = ?9, error = ?10 WHERE id = ?1",
			r, err);
}

int sbx_store_sandbox_delete(struct sbx_store *s, const char *id, sbx_err *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, "DELETE FROM sandboxes WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
		return db_fail(s, err, "preparing");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(s, err, "deleting a sandbox");
	return 0;
}

static void copy_text(char *dst, size_t n, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	sbx_strlcpy(dst, t ? (const char *)t : "", n);
}

static char *dup_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? strdup((const char *)t) : NULL;
}

int sbx_store_sandbox_each(struct sbx_store *s, void (*cb)(void *ud, const struct sbx_sandbox_row *row), void *ud,
			   sbx_err *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db,
			       "SELECT id, name, agent, isolation, state, spec, created_at, started_at, init_pid, error"
			       " FROM sandboxes ORDER BY created_at, name",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(s, err, "preparing");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct sbx_sandbox_row r = {0};
		copy_text(r.id, sizeof(r.id), st, 0);
		copy_text(r.name, sizeof(r.name), st, 1);
		copy_text(r.agent, sizeof(r.agent), st, 2);
		copy_text(r.isolation, sizeof(r.isolation), st, 3);
		copy_text(r.state, sizeof(r.state), st, 4);
		r.spec_json = dup_text(st, 5);
		r.created_at = sqlite3_column_int64(st, 6);
		r.started_at = sqlite3_column_int64(st, 7);
		r.init_pid = sqlite3_column_int64(st, 8);
		r.error = dup_text(st, 9);
		cb(ud, &r);
		sbx_sandbox_row_clear(&r);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(s, err, "listing sandboxes");
	return 0;
}

void sbx_sandbox_row_clear(struct sbx_sandbox_row *row)
{
	free(row->spec_json);
	free(row->error);
	row->spec_json = NULL;
	row->error = NULL;
}
