/* store.h - the daemon's state in SQLite.
 *
 * One database per sbx home (state_dir/sbx.db), written only by sbxd. The schema carries its
 * version in PRAGMA user_version and is migrated forward step by step at open; a database from
 * a newer sbx is refused rather than damaged. WAL mode, synchronous=NORMAL: a committed row
 * survives a daemon crash; a power cut may lose the last transactions, never corrupt. */
#ifndef SBX_STORE_H
#define SBX_STORE_H

#include <sqlite3.h>
#include <stdint.h>

#include "err.h"

#define SBX_STORE_SCHEMA_VERSION 5

struct sbx_store;

struct sbx_sandbox_row {
	char id[33];
	char name[64];
	char agent[32];
	char isolation[16];
	char state[16];
	char *spec_json;   /* owned; workspaces, env, limits, agent arguments */
	int64_t created_at; /* ms since the epoch */
	int64_t started_at; /* 0 if never */
	int64_t init_pid;   /* host pid of the sandbox's init while running, else 0 */
	char *error;        /* owned; last start error, or NULL */
};

int sbx_store_open(const char *path, struct sbx_store **out, sbx_err *err);
void sbx_store_close(struct sbx_store *s);
/* For modules that keep their own tables (rules, audit, ...): they add migrations through
 * sbx_store_migrations in store.c, and use the handle here. */
sqlite3 *sbx_store_db(struct sbx_store *s);

int sbx_store_sandbox_insert(struct sbx_store *s, const struct sbx_sandbox_row *row, sbx_err *err);
int sbx_store_sandbox_update(struct sbx_store *s, const struct sbx_sandbox_row *row, sbx_err *err);
int sbx_store_sandbox_delete(struct sbx_store *s, const char *id, sbx_err *err);
/* Calls cb for every sandbox, ordered by creation; the row is only valid during the call. */
int sbx_store_sandbox_each(struct sbx_store *s, void (*cb)(void *ud, const struct sbx_sandbox_row *row), void *ud,
			   sbx_err *err);
void sbx_sandbox_row_clear(struct sbx_sandbox_row *row);

#endif
