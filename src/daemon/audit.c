/* audit.c - the audit log: a bounded queue in front of a writer thread that commits in batches.
 *
 * The proxy must never wait for the disk, and a connection must never go through unlogged, so
 * the two meet in a queue: submit copies the record into a heap block and puts the pointer in a
 * ring (a short mutex, nothing else); a full ring makes submit fail and the proxy refuse.
 *
 * The writer thread owns its own SQLite connection. It takes the oldest records (up to
 * BATCH_MAX) without removing them, inserts them in one transaction and removes them only once
 * COMMIT has succeeded. A failed commit (locked beyond the busy timeout, disk full) therefore
 * leaves them queued, to be retried with a growing delay, and the ring fills up behind them:
 * the log fails closed instead of dropping records.
 *
 * Every accepted record gets the next sequence number; since the ring is FIFO, committing a
 * batch of n moves committed_seq forward by n. Flush waits for committed_seq to reach the
 * submitted_seq it saw at the call.
 *
 * Readers open a read-only connection per call: WAL lets them read a consistent snapshot while
 * the writer commits, and a connection per call costs far less than an API round trip.
 *
 * The hash chain (audit.h has the serialisation): a record's hash covers its id, which SQLite
 * assigns (AUTOINCREMENT, so sqlite_sequence stays the authority and an id is never reused, even
 * after the newest rows were deleted). So the writer inserts the row with its prev, reads the id,
 * hashes, and sets the hash with an UPDATE in the same transaction: readers never see a row
 * without its hash. The writer keeps the newest hash in memory (read at open), so a row removed
 * or added behind its back while the daemon runs breaks the chain instead of being absorbed. */
#include "audit.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cleanup.h"
#include "log.h"
#include "util.h"

#define BATCH_NOW 256            /* this many waiting: commit at once */
#define BATCH_MAX 1024           /* records per transaction, so another writer never waits long */
#define DEFAULT_DELAY_MS 50
#define DEFAULT_BUSY_MS 5000
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define CLOSE_ATTEMPTS 3         /* failed commits tolerated while closing before giving up */
#define FAIL_LOG_EVERY_MS 60000  /* a persistent failure is logged again this often */

struct sbx_audit {
	char *db_path;
	sqlite3 *db;          /* used only by the writer thread once it runs */
	sqlite3_stmt *insert;
	sqlite3_stmt *set_hash;
	char last_hash[SBX_AUDIT_HASH_HEX + 1]; /* the newest committed record's; writer thread only */
	int notify_fd;
	pthread_t thread;
	bool thread_started;
	unsigned delay_ms;

	pthread_mutex_t mu;
	pthread_cond_t work; /* to the writer: records, a flush, or stop */
	pthread_cond_t done; /* from the writer: a commit succeeded or failed, or it stopped */
	struct sbx_audit_rec **ring;
	size_t cap, head, count; /* count includes the batch being committed */
	uint64_t submitted_seq, committed_seq;
	uint64_t committed, rejected;
	uint64_t fail_count;     /* failed commit attempts, ever */
	bool failing;            /* the last attempt failed: flush does not wait for the retry */
	int64_t last_id;
	unsigned flush_waiters;
	bool stopping;
	bool writer_done;
};

/* ---- sanitising ---- */

/* Length of the valid UTF-8 sequence at s (n > 0 bytes available), or 0 if s does not start
 * one. Overlong forms, surrogates and code points above U+10FFFF are invalid (RFC 3629). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

size_t sbx_audit_sanitize(char *dst, size_t dstsize, const char *src, size_t srclen)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t n = src ? strnlen(src, srclen) : 0, i = 0, o = 0;

	if (dstsize == 0)
		return 0;
	while (i < n) {
		size_t len = utf8_len(s + i, n - i);
		bool control = len == 1 ? (s[i] < 0x20 || s[i] == 0x7f) : len == 2 && s[i] == 0xc2 && s[i + 1] < 0xa0;

		if (len == 0 || control) {
			if (o + 1 >= dstsize)
				break;
			dst[o++] = '?';
			i += len ? len : 1;
			continue;
		}
		if (o + len >= dstsize)
			break; /* never cut a character in two */
		memcpy(dst + o, s + i, len);
		o += len;
		i += len;
	}
	dst[o] = '\0';
	return o;
}

#define SANITIZE_FIELD(dst, src) sbx_audit_sanitize((dst), sizeof(dst), (src), sizeof(src))

static void rec_copy(struct sbx_audit_rec *dst, const struct sbx_audit_rec *src)
{
	dst->id = 0;
	dst->ts = src->ts;
	SANITIZE_FIELD(dst->sandbox, src->sandbox);
	SANITIZE_FIELD(dst->path, src->path);
	SANITIZE_FIELD(dst->host, src->host);
	dst->port = src->port;
	SANITIZE_FIELD(dst->method, src->method);
	SANITIZE_FIELD(dst->url_path, src->url_path);
	SANITIZE_FIELD(dst->decision, src->decision);
	SANITIZE_FIELD(dst->rule, src->rule);
	SANITIZE_FIELD(dst->reason, src->reason);
	dst->bytes_up = src->bytes_up;
	dst->bytes_down = src->bytes_down;
	dst->duration_ms = src->duration_ms;
	dst->status = src->status;
}

/* ---- time ---- */

static struct timespec deadline_in(uint64_t ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += (time_t)(ms / 1000);
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* ---- the hash chain ---- */

/* SQLite integers are signed: counters beyond INT64_MAX (which no real transfer reaches) are
 * stored as INT64_MAX rather than wrapping to a negative number. */
static sqlite3_int64 clamp_u64(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)v;
}

#define CHAIN_TAG "sbx-audit-v1"
#define CHAIN_FIELDS 14

/* The record's columns in hashing order (after id and prev); the verifier selects them in this
 * order too. */
static const struct {
	const char *name;
	bool text;
} chain_cols[CHAIN_FIELDS] = {
	{"ts", false},     {"sandbox", true},  {"path", true},       {"host", true},         {"port", false},
	{"method", true},  {"url_path", true}, {"decision", true},   {"rule", true},         {"reason", true},
	{"bytes_up", false}, {"bytes_down", false}, {"duration_ms", false}, {"status", false},
};

struct chain_val {
	const void *text; /* text columns */
	size_t len;
	int64_t num;      /* integer columns */
};

static int hash_u64(EVP_MD_CTX *ctx, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (56 - 8 * i));
	return EVP_DigestUpdate(ctx, b, sizeof(b)) == 1 ? 0 : -1;
}

/* A string is its length, then its bytes: no separator a value could contain. */
static int hash_str(EVP_MD_CTX *ctx, const void *p, size_t n)
{
	if (hash_u64(ctx, n) < 0)
		return -1;
	return n == 0 || EVP_DigestUpdate(ctx, p, n) == 1 ? 0 : -1;
}

/* Hex SHA-256 of the canonical serialisation into out; -1 only if OpenSSL fails. */
static int chain_hash(int64_t id, const char *prev, size_t prev_len, const struct chain_val v[CHAIN_FIELDS],
		      char out[SBX_AUDIT_HASH_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 ? 0 : -1;

	if (rc == 0)
		rc = hash_str(ctx, CHAIN_TAG, strlen(CHAIN_TAG)) | hash_u64(ctx, (uint64_t)id) |
		     hash_str(ctx, prev, prev_len);
	for (size_t i = 0; rc == 0 && i < CHAIN_FIELDS; i++)
		rc = chain_cols[i].text ? hash_str(ctx, v[i].text, v[i].len) : hash_u64(ctx, (uint64_t)v[i].num);
	if (rc == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen * 2 != SBX_AUDIT_HASH_HEX))
		rc = -1;
	EVP_MD_CTX_free(ctx);
	if (rc < 0)
		return -1;
	for (unsigned int i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[SBX_AUDIT_HASH_HEX] = '\0';
	return 0;
}

/* The hash of a record as the writer stores it (bind_rec's values). */
static int rec_hash(int64_t id, const char *prev, const struct sbx_audit_rec *r, char out[SBX_AUDIT_HASH_HEX + 1])
{
	const struct chain_val v[CHAIN_FIELDS] = {
		{.num = r->ts},
		{r->sandbox, strlen(r->sandbox), 0},
		{r->path, strlen(r->path), 0},
		{r->host, strlen(r->host), 0},
		{.num = r->port},
		{r->method, strlen(r->method), 0},
		{r->url_path, strlen(r->url_path), 0},
		{r->decision, strlen(r->decision), 0},
		{r->rule, strlen(r->rule), 0},
		{r->reason, strlen(r->reason), 0},
		{.num = clamp_u64(r->bytes_up)},
		{.num = clamp_u64(r->bytes_down)},
		{.num = clamp_u64(r->duration_ms)},
		{.num = r->status},
	};

	return chain_hash(id, prev, strlen(prev), v, out);
}

/* ---- the writer ---- */

static int bind_rec(sqlite3_stmt *st, const struct sbx_audit_rec *r)
{
	int rc = SQLITE_OK;

#define BIND(call)                           \
	do {                                 \
		if (rc == SQLITE_OK)         \
			rc = (call);         \
	} while (0)
	BIND(sqlite3_bind_int64(st, 1, r->ts));
	BIND(sqlite3_bind_text(st, 2, r->sandbox, -1, SQLITE_STATIC));
	BIND(sqlite3_bind_text(st, 3, r->path, -1, SQLITE_STATIC));
	BIND(sqlite3_bind_text(st, 4, r->host, -1, SQLITE_STATIC));
	BIND(sqlite3_bind_int(st, 5, r->port));
	BIND(sqlite3_bind_text(st, 6, r->method, -1, SQLITE_STATIC));
	BIND(sqlite3_bind_text(st, 7, r->url_path, -1, SQLITE_STATIC));
	BIND(sqlite3_bind_text(st, 8, r->decision, -1, SQLITE_STATIC));
	BIND(sqlite3_bind_text(st, 9, r->rule, -1, SQLITE_STATIC));
	BIND(sqlite3_bind_text(st, 10, r->reason, -1, SQLITE_STATIC));
	BIND(sqlite3_bind_int64(st, 11, clamp_u64(r->bytes_up)));
	BIND(sqlite3_bind_int64(st, 12, clamp_u64(r->bytes_down)));
	BIND(sqlite3_bind_int64(st, 13, clamp_u64(r->duration_ms)));
	BIND(sqlite3_bind_int(st, 14, r->status));
#undef BIND
	return rc;
}

/* Inserts one record chained to prev, then stores its hash (which covers the id SQLite gave it)
 * in hash. SQLITE_OK, or an SQLite code; a hashing failure is SQLITE_ERROR with *hash_failed. */
static int insert_chained(struct sbx_audit *a, const struct sbx_audit_rec *r, const char *prev,
			  char hash[SBX_AUDIT_HASH_HEX + 1], int64_t *id, bool *hash_failed)
{
	int rc = bind_rec(a->insert, r);

	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(a->insert, 15, prev, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(a->insert);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	sqlite3_reset(a->insert);
	if (rc != SQLITE_OK)
		return rc;
	*id = sqlite3_last_insert_rowid(a->db);
	if (rec_hash(*id, prev, r, hash) < 0) {
		*hash_failed = true;
		return SQLITE_ERROR;
	}
	rc = sqlite3_bind_text(a->set_hash, 1, hash, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(a->set_hash, 2, *id);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(a->set_hash);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	sqlite3_reset(a->set_hash);
	return rc;
}

/* One transaction for the whole batch. On failure, msg says why and nothing was committed (the
 * chain's head in memory moves only with a commit). */
static int commit_batch(struct sbx_audit *a, struct sbx_audit_rec *const *batch, size_t n, int64_t *last_id,
			char *msg, size_t msglen)
{
	const char *what = "starting a transaction";
	char prev[SBX_AUDIT_HASH_HEX + 1], hash[SBX_AUDIT_HASH_HEX + 1];
	int64_t id = 0;
	bool hash_failed = false;
	int rc = sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	memcpy(prev, a->last_hash, sizeof(prev));
	for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
		what = "inserting";
		rc = insert_chained(a, batch[i], prev, hash, &id, &hash_failed);
		if (rc == SQLITE_OK)
			memcpy(prev, hash, sizeof(prev));
	}
	sqlite3_clear_bindings(a->insert); /* the bound strings belong to records about to be freed */
	if (rc == SQLITE_OK) {
		what = "committing";
		rc = sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK) {
		*last_id = id;
		memcpy(a->last_hash, prev, sizeof(prev));
		return 0;
	}
	if (hash_failed)
		snprintf(msg, msglen, "hashing a record: OpenSSL's SHA-256 failed (out of memory?)");
	else
		snprintf(msg, msglen, "%s: %s", what, sqlite3_errmsg(a->db));
	/* Some errors end the transaction by themselves; a busy COMMIT leaves it open. */
	if (!sqlite3_get_autocommit(a->db))
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static void notify(struct sbx_audit *a)
{
	uint64_t one = 1;

	/* EAGAIN only if nobody has read the counter for 2^64 commits: it is readable anyway. */
	if (write(a->notify_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("audit log: cannot signal a commit: %s", strerror(errno));
}

/* Called with the lock held; returns with it held. Waits until a batch is worth committing. */
static void wait_for_batch(struct sbx_audit *a)
{
	struct timespec dl;

	while (a->count == 0 && !a->stopping)
		pthread_cond_wait(&a->work, &a->mu);
	if (a->count == 0 || a->stopping || a->count >= BATCH_NOW || a->flush_waiters)
		return;
	dl = deadline_in(a->delay_ms);
	while (!a->stopping && a->count < BATCH_NOW && !a->flush_waiters)
		if (pthread_cond_timedwait(&a->work, &a->mu, &dl) == ETIMEDOUT)
			break;
}

/* Called with the lock held while closing: the database has refused the last records several
 * times, and the process is going away. They were never acknowledged; say how many are lost. */
static void drop_remaining(struct sbx_audit *a, const char *msg)
{
	log_error("audit log: %zu records could not be written to %s and are lost (%s); free space or stop "
		  "whatever holds the database locked",
		  a->count, a->db_path, msg);
	while (a->count) {
		free_and_null(a->ring[a->head]);
		a->head = (a->head + 1) % a->cap;
		a->count--;
	}
}

static void *writer_main(void *arg)
{
	struct sbx_audit *a = arg;
	struct sbx_audit_rec *batch[BATCH_MAX];
	unsigned streak = 0, close_fails = 0;
	uint64_t backoff = BACKOFF_MIN_MS, last_log = 0;
	char msg[512];

	pthread_setname_np(pthread_self(), "sbx-audit");
	pthread_mutex_lock(&a->mu);
	for (;;) {
		size_t n;
		int64_t last_id = 0;
		int rc;

		wait_for_batch(a);
		if (a->count == 0)
			break; /* stopping, and everything is written */
		n = a->count < BATCH_MAX ? a->count : BATCH_MAX;
		for (size_t i = 0; i < n; i++)
			batch[i] = a->ring[(a->head + i) % a->cap];
		pthread_mutex_unlock(&a->mu);

		/* Submitters only append behind these, so the batch needs no lock while committing. */
		rc = commit_batch(a, batch, n, &last_id, msg, sizeof(msg));

		pthread_mutex_lock(&a->mu);
		if (rc == 0) {
			for (size_t i = 0; i < n; i++)
				a->ring[(a->head + i) % a->cap] = NULL;
			a->head = (a->head + n) % a->cap;
			a->count -= n;
			a->committed_seq += n;
			a->committed += n;
			a->last_id = last_id;
			a->failing = false;
			pthread_cond_broadcast(&a->done);
			pthread_mutex_unlock(&a->mu);
			for (size_t i = 0; i < n; i++)
				free(batch[i]);
			notify(a);
			if (streak)
				log_info("audit log: writing to %s again after %u failed attempts", a->db_path, streak);
			streak = 0;
			backoff = BACKOFF_MIN_MS;
			pthread_mutex_lock(&a->mu);
			continue;
		}

		a->fail_count++;
		a->failing = true;
		pthread_cond_broadcast(&a->done); /* a waiting flush returns -1 rather than hang */
		streak++;
		if (streak == 1 || sbx_monotonic_ms() - last_log >= FAIL_LOG_EVERY_MS) {
			size_t waiting = a->count;
			/* Not under the lock: a slow log file must not hold up the proxy. */
			pthread_mutex_unlock(&a->mu);
			last_log = sbx_monotonic_ms();
			log_error("audit log: cannot write %zu records to %s (attempt %u): %s; they stay queued "
				  "(%zu of %zu places used; when full, new connections are refused) and the write "
				  "is retried",
				  n, a->db_path, streak, msg, waiting, a->cap);
			pthread_mutex_lock(&a->mu);
		}
		if (a->stopping && ++close_fails >= CLOSE_ATTEMPTS) {
			drop_remaining(a, msg);
			break;
		}
		/* Back off, but a close cuts the wait short: it has its own attempt limit. */
		struct timespec dl = deadline_in(backoff);
		bool was_stopping = a->stopping;
		while (a->stopping == was_stopping)
			if (pthread_cond_timedwait(&a->work, &a->mu, &dl) == ETIMEDOUT)
				break;
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	a->writer_done = true;
	pthread_cond_broadcast(&a->done);
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* ---- opening and closing ---- */

static void audit_free(struct sbx_audit *a)
{
	if (a->ring) {
		for (size_t i = 0; i < a->count; i++)
			free(a->ring[(a->head + i) % a->cap]);
		free(a->ring);
	}
	sqlite3_finalize(a->insert);
	sqlite3_finalize(a->set_hash);
	sqlite3_close(a->db);
	if (a->notify_fd >= 0)
		close(a->notify_fd);
	pthread_cond_destroy(&a->done);
	pthread_cond_destroy(&a->work);
	pthread_mutex_destroy(&a->mu);
	free(a->db_path);
	free(a);
}

static int db_fail(struct sbx_audit *a, sbx_err *err, const char *what)
{
	return sbx_err_set(err, SBX_E_IO, "audit log in %s: %s: %s", a->db_path, what, sqlite3_errmsg(a->db));
}

static int open_db(struct sbx_audit *a, unsigned busy_ms, sbx_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	/* No SQLITE_OPEN_CREATE: the store creates and migrates the file; a missing one is a bug. */
	rc = sqlite3_open_v2(a->db_path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return sbx_err_set(err, SBX_E_IO, "cannot open the audit log in %s: %s", a->db_path,
				   a->db ? sqlite3_errmsg(a->db) : "out of memory");
	sqlite3_busy_timeout(a->db, (int)busy_ms);
	/* synchronous is per connection; NORMAL in WAL mode makes a commit survive a crash of the
	 * process (the crash-safety promise), only a power cut may lose the last ones. */
	if (sqlite3_exec(a->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(a, err, "configuring the connection");
	rc = sqlite3_prepare_v3(a->db,
				"INSERT INTO audit (ts, sandbox, path, host, port, method, url_path, decision, rule,"
				" reason, bytes_up, bytes_down, duration_ms, status, prev)"
				" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
				-1, SQLITE_PREPARE_PERSISTENT, &a->insert, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(a->db, "UPDATE audit SET hash = ?1 WHERE id = ?2", -1, SQLITE_PREPARE_PERSISTENT,
					&a->set_hash, NULL);
	if (rc != SQLITE_OK) {
		if (strstr(sqlite3_errmsg(a->db), "no such table") || strstr(sqlite3_errmsg(a->db), "no such column"))
			return sbx_err_set(err, SBX_E_INTERNAL,
					   "the state database %s has no audit table with a hash chain (%s): it must be "
					   "opened with the store (which migrates it to schema 4) before the audit log",
					   a->db_path, sqlite3_errmsg(a->db));
		return db_fail(a, err, "preparing the insert");
	}
	/* The chain continues from the newest row, whatever it holds: a row from before the chain
	 * has '' (so the chain starts there), and a damaged one is verify's to report. */
	if (sqlite3_prepare_v2(a->db, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return db_fail(a, err, "reading the last record");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st, 1);
		a->last_id = sqlite3_column_int64(st, 0);
		sbx_strlcpy(a->last_hash, h ? h : "", sizeof(a->last_hash));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(a, err, "reading the last record");
	return 0;
}

static int start_writer(struct sbx_audit *a, sbx_err *err)
{
	sigset_t all, old;
	int rc;

	/* The writer must never take a signal meant for the daemon's signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&a->thread, NULL, writer_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, rc, "audit log: cannot start the writer thread");
	a->thread_started = true;
	return 0;
}

int sbx_audit_open_opts(const char *db_path, const struct sbx_audit_opts *opts, struct sbx_audit **out,
			sbx_err *err)
{
	struct sbx_audit_opts o = opts ? *opts : (struct sbx_audit_opts){0};
	pthread_condattr_t ca;
	struct sbx_audit *a;

	if (o.queue_max > SBX_AUDIT_QUEUE_MAX)
		return sbx_err_set(err, SBX_E_INVALID, "audit log: a queue of %zu records is larger than the maximum %d",
				   o.queue_max, SBX_AUDIT_QUEUE_MAX);
	a = calloc(1, sizeof(*a));
	if (!a)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	a->notify_fd = -1;
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* batch delays must not jump with the wall clock */
	pthread_cond_init(&a->work, &ca);
	pthread_cond_init(&a->done, &ca);
	pthread_condattr_destroy(&ca);
	a->cap = o.queue_max ? o.queue_max : SBX_AUDIT_QUEUE_MAX;
	a->delay_ms = o.batch_delay_ms ? o.batch_delay_ms : DEFAULT_DELAY_MS;
	a->db_path = strdup(db_path);
	/* Pointers only: a full queue of records is ~100 MB, allocated one record at a time. */
	a->ring = calloc(a->cap, sizeof(*a->ring));
	if (!a->db_path || !a->ring) {
		audit_free(a);
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	}
	a->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->notify_fd < 0) {
		sbx_err_sys(err, SBX_E_INTERNAL, errno, "audit log: eventfd");
		audit_free(a);
		return -1;
	}
	if (open_db(a, o.busy_timeout_ms ? o.busy_timeout_ms : DEFAULT_BUSY_MS, err) < 0 || start_writer(a, err) < 0) {
		audit_free(a);
		return -1;
	}
	*out = a;
	return 0;
}

int sbx_audit_open(const char *db_path, struct sbx_audit **out, sbx_err *err)
{
	return sbx_audit_open_opts(db_path, NULL, out, err);
}

void sbx_audit_close(struct sbx_audit *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->stopping = true;
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->mu);
	if (a->thread_started)
		pthread_join(a->thread, NULL);
	audit_free(a);
}

/* ---- the producer side ---- */

int sbx_audit_submit(struct sbx_audit *a, const struct sbx_audit_rec *rec)
{
	/* Copied and sanitised before taking the lock: the critical section is a few stores. */
	struct sbx_audit_rec *r = malloc(sizeof(*r));

	if (r)
		rec_copy(r, rec);
	pthread_mutex_lock(&a->mu);
	if (!r || a->count == a->cap || a->stopping) {
		a->rejected++;
		pthread_mutex_unlock(&a->mu);
		free(r);
		return -1;
	}
	a->ring[(a->head + a->count) % a->cap] = r;
	a->count++;
	a->submitted_seq++;
	/* Wake the writer when it may be idle (first record) or when a batch is due. */
	if (a->count == 1 || a->count == BATCH_NOW)
		pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

int sbx_audit_flush(struct sbx_audit *a)
{
	int rc = 0;

	pthread_mutex_lock(&a->mu);
	uint64_t target = a->submitted_seq, fails = a->fail_count;
	if (a->committed_seq < target && a->failing) {
		rc = -1; /* the retry may be seconds away; the failure is already logged */
	} else if (a->committed_seq < target) {
		a->flush_waiters++;
		pthread_cond_signal(&a->work); /* no point waiting out the batch delay */
		while (a->committed_seq < target && a->fail_count == fails && !a->writer_done)
			pthread_cond_wait(&a->done, &a->mu);
		a->flush_waiters--;
		rc = a->committed_seq >= target ? 0 : -1;
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

bool sbx_audit_full(struct sbx_audit *a)
{
	bool full;

	pthread_mutex_lock(&a->mu);
	full = a->count == a->cap || a->stopping;
	pthread_mutex_unlock(&a->mu);
	return full;
}

void sbx_audit_counters(struct sbx_audit *a, uint64_t *committed, uint64_t *rejected)
{
	pthread_mutex_lock(&a->mu);
	if (committed)
		*committed = a->committed;
	if (rejected)
		*rejected = a->rejected;
	pthread_mutex_unlock(&a->mu);
}

int sbx_audit_notify_fd(struct sbx_audit *a)
{
	return a->notify_fd;
}

int64_t sbx_audit_last_id(struct sbx_audit *a)
{
	int64_t id;

	pthread_mutex_lock(&a->mu);
	id = a->last_id;
	pthread_mutex_unlock(&a->mu);
	return id;
}

/* ---- reading ---- */

static int reader_open(const char *db_path, sqlite3 **out, sbx_err *err)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		sbx_err_set(err, SBX_E_IO, "cannot open the audit log in %s: %s", db_path,
			    db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return -1;
	}
	/* A WAL reader can meet a short lock (recovery, a WAL restart); wait it out. */
	sqlite3_busy_timeout(db, DEFAULT_BUSY_MS);
	*out = db;
	return 0;
}

/* SQL text from fixed fragments only; every value goes through a bound parameter. */
struct sql {
	char text[768];
	size_t len;
	bool overflow;
};

static void sql_add(struct sql *s, const char *frag)
{
	size_t n = strlen(frag);

	if (s->len + n >= sizeof(s->text)) {
		s->overflow = true;
		return;
	}
	memcpy(s->text + s->len, frag, n + 1);
	s->len += n;
}

static const char BLOCKED_SQL[] = "decision IN ('denied', 'refused', 'timeout', 'error')";

static void sql_where(struct sql *s, const struct sbx_audit_query *q)
{
	sql_add(s, " WHERE id > ?1 AND ts >= ?2");
	if (q->sandbox)
		sql_add(s, " AND sandbox = ?3");
	if (q->host)
		sql_add(s, " AND host = ?4");
	if (!q->decision)
		return;
	if (strcmp(q->decision, "blocked") == 0) {
		sql_add(s, " AND ");
		sql_add(s, BLOCKED_SQL);
	} else if (strcmp(q->decision, "allowed") == 0) {
		sql_add(s, " AND decision IN ('allowed', 'approved', 'sent')");
	} else {
		sql_add(s, " AND decision = ?5");
	}
}

/* Binds the filters and the limit (?6; -1 is SQLite's "no limit"). Unused numbers stay NULL. */
static int bind_query(sqlite3_stmt *st, const struct sbx_audit_query *q)
{
	int rc = sqlite3_bind_int64(st, 1, q->after_id) | sqlite3_bind_int64(st, 2, q->since_ts);

	if (q->sandbox)
		rc |= sqlite3_bind_text(st, 3, q->sandbox, -1, SQLITE_STATIC);
	if (q->host)
		rc |= sqlite3_bind_text(st, 4, q->host, -1, SQLITE_STATIC);
	if (q->decision && strcmp(q->decision, "blocked") != 0 && strcmp(q->decision, "allowed") != 0)
		rc |= sqlite3_bind_text(st, 5, q->decision, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_int64(st, 6, q->limit == 0 || q->limit > (size_t)INT64_MAX ? -1 : (sqlite3_int64)q->limit);
	return rc;
}

static void col_text(char *dst, size_t n, sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);

	sbx_audit_sanitize(dst, n, t, t ? (size_t)sqlite3_column_bytes(st, col) : 0);
}

static uint64_t col_u64(sqlite3_stmt *st, int col)
{
	sqlite3_int64 v = sqlite3_column_int64(st, col);
	return v < 0 ? 0 : (uint64_t)v;
}

static uint16_t col_port(sqlite3_stmt *st, int col)
{
	sqlite3_int64 v = sqlite3_column_int64(st, col);
	return v < 0 || v > UINT16_MAX ? 0 : (uint16_t)v;
}

/* Prepares `s` on a fresh read-only connection, runs it, and calls row(st) for each row. */
static int run_query(const char *db_path, const struct sql *s, const struct sbx_audit_query *q,
		     void (*row)(sqlite3_stmt *st, void *ctx), void *ctx, sbx_err *err)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	int rc;

	if (s->overflow)
		return sbx_err_set(err, SBX_E_INTERNAL, "audit log: query text too long");
	if (reader_open(db_path, &db, err) < 0)
		return -1;
	if (sqlite3_prepare_v2(db, s->text, -1, &st, NULL) != SQLITE_OK || bind_query(st, q) != SQLITE_OK) {
		sbx_err_set(err, SBX_E_IO, "audit log in %s: preparing a query: %s", db_path, sqlite3_errmsg(db));
		sqlite3_finalize(st);
		sqlite3_close(db);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		row(st, ctx);
	if (rc != SQLITE_DONE)
		sbx_err_set(err, SBX_E_IO, "audit log in %s: reading: %s", db_path, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc == SQLITE_DONE ? 0 : -1;
}

struct rec_ctx {
	void (*cb)(void *ud, const struct sbx_audit_rec *r);
	void *ud;
};

static void rec_row(sqlite3_stmt *st, void *ctx)
{
	struct rec_ctx *c = ctx;
	struct sbx_audit_rec r;

	memset(&r, 0, sizeof(r));
	r.id = sqlite3_column_int64(st, 0);
	r.ts = sqlite3_column_int64(st, 1);
	col_text(r.sandbox, sizeof(r.sandbox), st, 2);
	col_text(r.path, sizeof(r.path), st, 3);
	col_text(r.host, sizeof(r.host), st, 4);
	r.port = col_port(st, 5);
	col_text(r.method, sizeof(r.method), st, 6);
	col_text(r.url_path, sizeof(r.url_path), st, 7);
	col_text(r.decision, sizeof(r.decision), st, 8);
	col_text(r.rule, sizeof(r.rule), st, 9);
	col_text(r.reason, sizeof(r.reason), st, 10);
	r.bytes_up = col_u64(st, 11);
	r.bytes_down = col_u64(st, 12);
	r.duration_ms = col_u64(st, 13);
	r.status = sqlite3_column_int(st, 14);
	c->cb(c->ud, &r);
}

int sbx_audit_query(const char *db_path, const struct sbx_audit_query *q,
		    void (*cb)(void *ud, const struct sbx_audit_rec *r), void *ud, sbx_err *err)
{
	static const struct sbx_audit_query all = {0};
	struct sql s = {.len = 0};
	struct rec_ctx c = {cb, ud};

	q = q ? q : &all;
	sql_add(&s, "SELECT id, ts, sandbox, path, host, port, method, url_path, decision, rule, reason, bytes_up,"
		    " bytes_down, duration_ms, status FROM audit");
	sql_where(&s, q);
	sql_add(&s, q->ascending ? " ORDER BY id ASC LIMIT ?6" : " ORDER BY id DESC LIMIT ?6");
	return run_query(db_path, &s, q, rec_row, &c, err);
}

struct group_ctx {
	void (*cb)(void *ud, const struct sbx_audit_group *g);
	void *ud;
};

static void group_row(sqlite3_stmt *st, void *ctx)
{
	struct group_ctx *c = ctx;
	struct sbx_audit_group g;

	memset(&g, 0, sizeof(g));
	col_text(g.sandbox, sizeof(g.sandbox), st, 0);
	g.blocked = sqlite3_column_int(st, 1) != 0;
	col_text(g.host, sizeof(g.host), st, 2);
	g.port = col_port(st, 3);
	col_text(g.path, sizeof(g.path), st, 4);
	col_text(g.rule, sizeof(g.rule), st, 5);
	col_text(g.reason, sizeof(g.reason), st, 6);
	g.last_ts = sqlite3_column_int64(st, 7);
	g.count = col_u64(st, 8);
	c->cb(c->ud, &g);
}

int sbx_audit_aggregate(const char *db_path, const struct sbx_audit_query *q,
			void (*cb)(void *ud, const struct sbx_audit_group *g), void *ud, sbx_err *err)
{
	static const struct sbx_audit_query all = {0};
	struct sql s = {.len = 0};
	struct group_ctx c = {cb, ud};

	q = q ? q : &all;
	sql_add(&s, "SELECT sandbox, ");
	sql_add(&s, BLOCKED_SQL);
	sql_add(&s, " AS blocked, host, port, path, rule, reason, MAX(ts) AS last_ts, COUNT(*) FROM audit");
	sql_where(&s, q);
	/* The trailing keys only make the order of equally recent groups stable. */
	sql_add(&s, " GROUP BY sandbox, blocked, host, port, path, rule, reason"
		    " ORDER BY blocked DESC, last_ts DESC, sandbox, host, port, path, rule, reason LIMIT ?6");
	return run_query(db_path, &s, q, group_row, &c, err);
}

/* ---- verifying the chain ---- */

/* One row as the verifier needs it: what it stores and what its contents hash to. The column
 * texts are hashed while the row is current, so only these small copies outlive a step. */
struct vrow {
	int64_t id;
	char hash[SBX_AUDIT_HASH_HEX + 1];
	char prev[SBX_AUDIT_HASH_HEX + 1];
	bool hash_bad, prev_bad;  /* not text, or longer than a digest: never equal to anything */
	char computed[SBX_AUDIT_HASH_HEX + 1];
	const char *bad_col;      /* a field of the wrong type (set by hand), else NULL */
};

/* Copies a stored hash or prev column; anything that cannot be one of ours is marked bad. */
static void vrow_digest(sqlite3_stmt *st, int col, char out[SBX_AUDIT_HASH_HEX + 1], bool *bad)
{
	const char *t;
	int n;

	out[0] = '\0';
	*bad = sqlite3_column_type(st, col) != SQLITE_TEXT;
	if (*bad)
		return;
	t = (const char *)sqlite3_column_text(st, col);
	n = sqlite3_column_bytes(st, col);
	if (!t || (n != 0 && n != SBX_AUDIT_HASH_HEX) || strlen(t) != (size_t)n) {
		*bad = true;
		return;
	}
	memcpy(out, t, (size_t)n + 1);
}

/* Columns: id, hash, prev, then chain_cols in order. -1 only if hashing fails. */
static int vrow_read(sqlite3_stmt *st, struct vrow *r)
{
	struct chain_val v[CHAIN_FIELDS];

	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	vrow_digest(st, 1, r->hash, &r->hash_bad);
	vrow_digest(st, 2, r->prev, &r->prev_bad);
	for (int i = 0; i < CHAIN_FIELDS; i++) {
		int col = 3 + i, type = sqlite3_column_type(st, col);

		/* A value stored with another type (an integer column holding text, a real, NULL)
		 * could read back as the hashed value: only the types the writer stores count. */
		if (type != (chain_cols[i].text ? SQLITE_TEXT : SQLITE_INTEGER)) {
			r->bad_col = chain_cols[i].name;
			return 0;
		}
		if (chain_cols[i].text) {
			v[i].text = sqlite3_column_text(st, col);
			v[i].len = (size_t)sqlite3_column_bytes(st, col);
			v[i].num = 0;
			if (!v[i].text)
				return -1; /* out of memory converting it */
		} else {
			v[i].text = NULL;
			v[i].len = 0;
			v[i].num = sqlite3_column_int64(st, col);
		}
	}
	return chain_hash(r->id, r->prev, strlen(r->prev), v, r->computed);
}

struct vstate {
	bool started;                            /* a chained row has been seen */
	int64_t first_id, prev_id;               /* the first and the last good chained rows */
	char prev_hash[SBX_AUDIT_HASH_HEX + 1];
};

static bool vbad(struct sbx_audit_verify_result *res, int64_t id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static bool vbad(struct sbx_audit_verify_result *res, int64_t id, const char *fmt, ...)
{
	va_list ap;

	res->intact = false;
	res->bad_id = id;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
	return false;
}

static bool removed(struct sbx_audit_verify_result *res, int64_t before, int64_t after)
{
	/* Unsigned: ids are whatever the file holds, and after > before (rows come in id order). */
	uint64_t missing = (uint64_t)after - (uint64_t)before - 1;

	if (missing == 1)
		return vbad(res, after, "a row between %lld and %lld was removed (row %lld is missing)", (long long)before,
			    (long long)after, (long long)before + 1);
	return vbad(res, after, "%llu rows between %lld and %lld were removed", (unsigned long long)missing,
		    (long long)before, (long long)after);
}

/* Checks one row against the chain so far; next (NULL at the end) tells an edited hash from an
 * edited row. Returns false, with res filled, at the first problem. */
static bool vcheck(struct vstate *vs, struct sbx_audit_verify_result *res, const struct vrow *r, const struct vrow *next)
{
	long long id = (long long)r->id;

	if (!r->hash_bad && r->hash[0] == '\0') {
		if (vs->started)
			return vbad(res, r->id,
				    "row %lld has no hash, but the chain began before it (row %lld): its hash was "
				    "erased, or it was added by something other than sbx",
				    id, (long long)vs->first_id);
		if (r->prev_bad || r->prev[0])
			return vbad(res, r->id, "the hash of row %lld was erased (it still records a predecessor)", id);
		res->unchained++; /* from before the chain: schema 3 had no hashes */
		return true;
	}
	if (r->bad_col)
		return vbad(res, r->id, "row %lld was changed: its %s holds a value of the wrong type", id, r->bad_col);
	if (r->hash_bad || strcmp(r->hash, r->computed) != 0) {
		if (next && !next->prev_bad && strcmp(next->prev, r->computed) == 0)
			return vbad(res, r->id,
				    "the hash of row %lld was edited (the row itself still matches the hash that row "
				    "%lld records for it)",
				    id, (long long)next->id);
		return vbad(res, r->id, "row %lld was changed: its contents do not match its hash", id);
	}
	if (!vs->started) {
		if (r->prev_bad || r->prev[0])
			return vbad(res, r->id,
				    "row %lld is the first hash-chained row but records a predecessor: the chained rows "
				    "before it were removed",
				    id);
	} else if (r->prev_bad || strcmp(r->prev, vs->prev_hash) != 0) {
		if (r->id != vs->prev_id + 1)
			return removed(res, vs->prev_id, r->id);
		return vbad(res, r->id,
			    "row %lld does not follow row %lld: the hash it records for its predecessor is not row "
			    "%lld's (rows were reordered, or row %lld was changed and given a new hash)",
			    id, (long long)vs->prev_id, (long long)vs->prev_id, (long long)vs->prev_id);
	} else if (r->id != vs->prev_id + 1) {
		return removed(res, vs->prev_id, r->id);
	}
	if (!vs->started)
		vs->first_id = r->id;
	vs->started = true;
	vs->prev_id = r->id;
	memcpy(vs->prev_hash, r->hash, sizeof(vs->prev_hash));
	res->chained++;
	res->last_id = r->id;
	memcpy(res->last_hash, r->hash, sizeof(res->last_hash));
	return true;
}

int sbx_audit_verify(const char *db_path, struct sbx_audit_verify_result *res, sbx_err *err)
{
	struct vrow rows[2];
	struct vstate vs = {.started = false};
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	struct vrow *cur = &rows[0], *next = &rows[1];
	bool have_cur, ok = true;
	int rc;

	memset(res, 0, sizeof(*res));
	res->intact = true;
	if (reader_open(db_path, &db, err) < 0)
		return -1;
	/* One statement is one snapshot: a batch committed meanwhile is either wholly in or out. */
	if (sqlite3_prepare_v2(db,
			       "SELECT id, hash, prev, ts, sandbox, path, host, port, method, url_path, decision, rule,"
			       " reason, bytes_up, bytes_down, duration_ms, status FROM audit ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK) {
		sbx_err_set(err, SBX_E_IO, "audit log in %s: preparing the verification: %s%s", db_path,
			    sqlite3_errmsg(db),
			    strstr(sqlite3_errmsg(db), "no such column") ? " (the database predates schema 4: start "
									  "sbxd once to migrate it)"
									: "");
		sqlite3_close(db);
		return -1;
	}
	rc = sqlite3_step(st);
	have_cur = rc == SQLITE_ROW;
	if (have_cur && vrow_read(st, cur) < 0)
		goto hash_fail;
	while (have_cur && ok) {
		struct vrow *t;
		bool have_next;

		rc = sqlite3_step(st);
		have_next = rc == SQLITE_ROW;
		if (have_next && vrow_read(st, next) < 0)
			goto hash_fail;
		if (!have_next && rc != SQLITE_DONE)
			break;
		res->rows++;
		ok = vcheck(&vs, res, cur, have_next ? next : NULL);
		t = cur;
		cur = next;
		next = t;
		have_cur = have_next;
	}
	if (ok && rc != SQLITE_DONE) {
		sbx_err_set(err, SBX_E_IO, "audit log in %s: reading for verification: %s", db_path, sqlite3_errmsg(db));
		sqlite3_finalize(st);
		sqlite3_close(db);
		return -1;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return 0;
hash_fail:
	sbx_err_set(err, SBX_E_INTERNAL, "audit log in %s: hashing a record failed (out of memory?)", db_path);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return -1;
}
