/* audit.h - the audit log: every connection attempt and every decision, in SQLite.
 *
 * Records are written off the hot path: the proxy hands them to sbx_audit_submit, which only
 * queues them; a writer thread with its own database connection commits them in batches (at
 * most every 50 ms, or sooner when 256 are waiting). A record is acknowledged when its batch is
 * committed (sbx_audit_flush waits for that); acknowledged records are never lost. The queue is
 * bounded: when it is full, submit fails and the caller must refuse what it was about to allow
 * (a connection is not let through unlogged). */
#ifndef SBX_AUDIT_H
#define SBX_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SBX_AUDIT_QUEUE_MAX 65536

struct sbx_audit_rec {
	int64_t id;          /* filled when read back */
	int64_t ts;          /* ms since the epoch */
	char sandbox[64];
	char path[16];       /* forward | transparent | dns | network */
	char host[256];
	uint16_t port;
	char method[16];
	char url_path[512];  /* capped; query strings are not stored */
	char decision[16];   /* allowed | denied | held | approved | refused | timeout | error */
	char rule[300];      /* the deciding rule, described */
	char reason[200];
	uint64_t bytes_up, bytes_down;
	uint64_t duration_ms;
	int status;          /* upstream HTTP status where seen, else 0 */
};

struct sbx_audit;

/* Opens the log on the database file (its own connection; the schema is the store's). */
int sbx_audit_open(const char *db_path, struct sbx_audit **out, sbx_err *err);
/* Flushes everything queued, stops the writer. */
void sbx_audit_close(struct sbx_audit *a);
/* Queue a record (copied). Returns 0, or -1 when the queue is full. Thread-safe. */
int sbx_audit_submit(struct sbx_audit *a, const struct sbx_audit_rec *rec);
/* Wait until everything submitted so far is committed. */
int sbx_audit_flush(struct sbx_audit *a);
/* Records committed so far / dropped because the queue was full (for diagnose and tests). */
void sbx_audit_counters(struct sbx_audit *a, uint64_t *committed, uint64_t *rejected);

/* ---- reading (any thread; uses its own connection) ---- */
struct sbx_audit_query {
	const char *sandbox;  /* NULL = all */
	const char *decision; /* NULL = all; "blocked" = every refusal (denied, refused, timeout, error) */
	const char *host;     /* NULL = all; exact */
	int64_t after_id;     /* only records with id > after_id (for --follow) */
	int64_t since_ts;     /* ms, 0 = all */
	size_t limit;         /* 0 = no limit; newest first unless ascending */
	bool ascending;
};
/* Calls cb for every matching record. */
int sbx_audit_query(const char *db_path, const struct sbx_audit_query *q,
		    void (*cb)(void *ud, const struct sbx_audit_rec *r), void *ud, sbx_err *err);

/* Aggregated per (sandbox, kind, host, path, rule, reason) as `sbx policy log` shows it:
 * "blocked" groups and "allowed" groups with their count and last time seen. */
struct sbx_audit_group {
	char sandbox[64];
	bool blocked;
	char host[256];
	uint16_t port;
	char path[16];
	char rule[300];
	char reason[200];
	int64_t last_ts;
	uint64_t count;
};
int sbx_audit_aggregate(const char *db_path, const struct sbx_audit_query *q,
			void (*cb)(void *ud, const struct sbx_audit_group *g), void *ud, sbx_err *err);

#endif
