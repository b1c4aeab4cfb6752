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
	char decision[16];   /* allowed | denied | error, and for the review queue: held | approval (one
			      * of two) | approved | refused | timeout | sent (the approved request
			      * as it went out, with its status) | expired (approved, never retried) */
	char rule[300];      /* the deciding rule, described */
	char reason[200];
	uint64_t bytes_up, bytes_down;
	uint64_t duration_ms;
	int status;          /* upstream HTTP status where seen, else 0 */
};

struct sbx_audit;

/* Opens the log on the database file (its own connection; the schema is the store's, so the
 * store must have opened and migrated the file first). */
int sbx_audit_open(const char *db_path, struct sbx_audit **out, sbx_err *err);
/* Flushes everything queued, stops the writer. If the database keeps refusing the last records
 * (disk full, locked), it gives up after a few attempts and logs how many were lost: those were
 * never acknowledged. */
void sbx_audit_close(struct sbx_audit *a);
/* Queue a record (copied; the strings are cut to their fields and sanitised with
 * sbx_audit_sanitize). Returns 0, or -1 when the queue is full (or memory is exhausted), which
 * is counted as rejected. Never waits for the database. Thread-safe. */
int sbx_audit_submit(struct sbx_audit *a, const struct sbx_audit_rec *rec);
/* Wait until everything submitted so far is committed. Returns 0 once it is, or -1 at once while
 * the writer cannot commit (its last attempt failed) or as soon as an attempt fails while
 * waiting: the failure is logged, the records stay queued and the writer keeps retrying. So the
 * daemon's main thread waits at most about one busy timeout, never behind a broken disk. */
int sbx_audit_flush(struct sbx_audit *a);
/* True when a submit now would fail (the queue is full, or the log is closing): a caller that
 * submits only when a connection ends asks this before letting the connection through. */
bool sbx_audit_full(struct sbx_audit *a);
/* Records committed so far / dropped because the queue was full (for diagnose and tests). */
void sbx_audit_counters(struct sbx_audit *a, uint64_t *committed, uint64_t *rejected);
/* An eventfd (non-blocking, close-on-exec, owned by the log) that becomes readable after each
 * commit, for the event loop that serves `sbx policy log --follow`: poll it for reading, read
 * its 8-byte counter to re-arm it, then query with after_id = the last id already sent. */
int sbx_audit_notify_fd(struct sbx_audit *a);
/* The id of the newest committed record (the table's maximum at open, then ours), 0 if none. */
int64_t sbx_audit_last_id(struct sbx_audit *a);

/* Tuning, for tests; the daemon uses sbx_audit_open, which is these with every field 0. */
struct sbx_audit_opts {
	size_t queue_max;         /* records waiting at most, 1..SBX_AUDIT_QUEUE_MAX; 0 = the maximum */
	unsigned batch_delay_ms;  /* how long a record may wait for others to share its commit; 0 = 50 */
	unsigned busy_timeout_ms; /* how long a commit waits for another writer's lock; 0 = 5000 */
};
int sbx_audit_open_opts(const char *db_path, const struct sbx_audit_opts *opts, struct sbx_audit **out,
			sbx_err *err);

/* Copies at most srclen bytes of src (stopping at a NUL) into dst, cut to dstsize - 1 bytes on a
 * character boundary and NUL-terminated, so that it can be stored and shown safely: control
 * characters (C0, DEL and the C1 range U+0080..U+009F, which some terminals obey) and bytes
 * that are not valid UTF-8 each become '?'; valid UTF-8 is kept. Returns the length written.
 * dstsize must be at least 1. */
size_t sbx_audit_sanitize(char *dst, size_t dstsize, const char *src, size_t srclen);

/* ---- reading (any thread; uses its own connection) ---- */
struct sbx_audit_query {
	const char *sandbox;  /* NULL = all */
	const char *decision; /* NULL = all; "blocked" = every refusal (denied, refused, timeout, error) */
	const char *host;     /* NULL = all; exact */
	int64_t after_id;     /* only records with id > after_id (for --follow) */
	int64_t since_ts;     /* ms, 0 = all */
	size_t limit;         /* 0 = no limit; newest first unless ascending */
	bool ascending;       /* order is the order of logging (id), which --follow pages by */
};
/* Calls cb for every matching record; the record is only valid during the call, its strings are
 * sanitised (sbx_audit_sanitize). "allowed" as a decision means allowed, approved or sent (an
 * approved request as it went out). */
int sbx_audit_query(const char *db_path, const struct sbx_audit_query *q,
		    void (*cb)(void *ud, const struct sbx_audit_rec *r), void *ud, sbx_err *err);

/* Aggregated per (sandbox, kind, host, port, path, rule, reason) as `sbx policy log` shows it:
 * "blocked" groups (denied, refused, timeout, error) and the others (allowed, approved, held)
 * with their count and last time seen; blocked groups first, then the most recently seen.
 * The query's filters apply to the records; its limit counts groups; ascending is ignored. */
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

/* ---- the hash chain (`sbx audit verify`) ----
 *
 * The writer stores with every record hash = hex SHA-256 over a canonical serialisation, and
 * prev = the previous record's hash ('' for the first). The serialisation is unambiguous: the
 * tag "sbx-audit-v1", then id, prev, ts, sandbox, path, host, port, method, url_path, decision,
 * rule, reason, bytes_up, bytes_down, duration_ms, status, in that order, each integer as 8
 * bytes big-endian (two's complement, as SQLite stores it) and each string (the tag too) as its
 * length in 8 bytes big-endian followed by its bytes. The values hashed are those stored.
 *
 * What it detects: a record changed, removed, inserted or moved, and a hash edited, unless
 * whoever did it also rewrote every hash after that point (the chain has no secret: anyone who
 * can write the database can rebuild it). Removing the newest records leaves no trace either.
 * Both need an anchor kept elsewhere: verify reports the newest id and hash for that.
 * Rows from before schema 4 have no hash; they are counted as unchained, not as tampering, as
 * long as they all come before the first chained row. */
#define SBX_AUDIT_HASH_HEX 64

struct sbx_audit_verify_result {
	bool intact;
	uint64_t rows;          /* rows read (up to and including the first bad one) */
	uint64_t chained;       /* rows whose hash and link were checked and found right */
	uint64_t unchained;     /* rows from before the chain */
	int64_t last_id;        /* the newest good chained row, 0 if none */
	char last_hash[SBX_AUDIT_HASH_HEX + 1];
	int64_t bad_id;         /* the first row found wrong, 0 when intact */
	char message[512];      /* what is wrong, naming rows ("row 42 was changed ..."); "" when intact */
};
/* Reads every record in id order (one consistent snapshot) and checks each one's hash and its
 * link to the one before, stopping at the first problem. Returns 0 when the check ran (res says
 * whether the log is intact), -1 with err when the database cannot be read. */
int sbx_audit_verify(const char *db_path, struct sbx_audit_verify_result *res, sbx_err *err);

#endif
