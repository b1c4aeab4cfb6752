/* test_audit.c - the audit log: queue, writer thread, queries and aggregation, on real SQLite
 * databases created by the store in a temporary directory.
 *
 * The daemon's store connection stays open on each database while the log writes to it, as in
 * sbxd. A commit failure is produced for real: a second connection holds the write lock
 * (BEGIN IMMEDIATE) and the log runs with a short busy timeout. */
#include "daemon/audit.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cleanup.h"
#include "daemon/store.h"
#include "tap.h"
#include "util.h"

#define E (sbx_err_clear(&err), &err)

static char tmpdir[PATH_MAX];

static void pf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pf(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= n) {
		fprintf(stderr, "test text too long: %s\n", fmt);
		abort();
	}
}

/* A fresh database with the store's schema; the store stays open (like sbxd's) unless closed. */
static struct sbx_store *new_db(const char *name, char *path, size_t n)
{
	sbx_err err = SBX_ERR_INIT;
	struct sbx_store *s = NULL;

	pf(path, n, "%s/%s.db", tmpdir, name);
	if (sbx_store_open(path, &s, &err) < 0) {
		fprintf(stderr, "sbx_store_open %s: %s\n", path, err.msg);
		abort();
	}
	return s;
}

static struct sbx_audit *open_log(const char *path, const struct sbx_audit_opts *o)
{
	sbx_err err = SBX_ERR_INIT;
	struct sbx_audit *a = NULL;

	if (sbx_audit_open_opts(path, o, &a, &err) < 0) {
		fprintf(stderr, "sbx_audit_open %s: %s\n", path, err.msg);
		abort();
	}
	return a;
}

/* ---- collecting query results ---- */

struct recs {
	struct sbx_audit_rec *v;
	size_t n, cap;
};

static void recs_cb(void *ud, const struct sbx_audit_rec *r)
{
	struct recs *rs = ud;

	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 64;
		rs->v = realloc(rs->v, rs->cap * sizeof(*rs->v));
		if (!rs->v)
			abort();
	}
	rs->v[rs->n++] = *r;
}

static void recs_free(struct recs *rs)
{
	free(rs->v);
	memset(rs, 0, sizeof(*rs));
}

/* Runs a query into rs (emptied first); returns the query's result. */
static int query(const char *path, const struct sbx_audit_query *q, struct recs *rs)
{
	sbx_err err = SBX_ERR_INIT;
	int rc;

	rs->n = 0;
	rc = sbx_audit_query(path, q, recs_cb, rs, &err);
	if (rc < 0)
		diag("query failed: %s", err.msg);
	return rc;
}

static size_t count_all(const char *path)
{
	struct recs rs = {0};
	size_t n;

	if (query(path, NULL, &rs) < 0)
		abort();
	n = rs.n;
	recs_free(&rs);
	return n;
}

struct groups {
	struct sbx_audit_group v[64];
	size_t n;
};

static void groups_cb(void *ud, const struct sbx_audit_group *g)
{
	struct groups *gs = ud;

	if (gs->n < SBX_ARRAY_LEN(gs->v))
		gs->v[gs->n] = *g;
	gs->n++;
}

static struct sbx_audit_rec mkrec(const char *sandbox, const char *decision, const char *host, uint16_t port,
				  int64_t ts)
{
	struct sbx_audit_rec r;

	memset(&r, 0, sizeof(r));
	r.ts = ts;
	sbx_strlcpy(r.sandbox, sandbox, sizeof(r.sandbox));
	sbx_strlcpy(r.path, "forward", sizeof(r.path));
	sbx_strlcpy(r.host, host, sizeof(r.host));
	r.port = port;
	sbx_strlcpy(r.decision, decision, sizeof(r.decision));
	return r;
}

/* ---- sanitising ---- */

/* An independent check: decode code points and test their ranges (the module uses byte tables). */
static bool clean_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		uint32_t cp;
		int len;

		if (*p < 0x80)
			cp = *p, len = 1;
		else if ((*p & 0xe0) == 0xc0)
			cp = *p & 0x1f, len = 2;
		else if ((*p & 0xf0) == 0xe0)
			cp = *p & 0x0f, len = 3;
		else if ((*p & 0xf8) == 0xf0)
			cp = *p & 0x07, len = 4;
		else
			return false;
		for (int i = 1; i < len; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
			return false; /* overlong */
		if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return false;
		p += len;
	}
	return true;
}

static void san_is(const char *in, size_t dstsize, const char *want, const char *what)
{
	char out[64];

	if (dstsize > sizeof(out))
		abort();
	sbx_audit_sanitize(out, dstsize, in, strlen(in));
	is_str(out, want, "sanitize: %s", what);
}

static void test_sanitize(void)
{
	char out[16], fixed[4] = {'a', 'b', 'c', 'd'}; /* not NUL-terminated, like a full field */
	unsigned seed = 12345;
	int bad = 0, changed_clean = 0, not_idem = 0;

	san_is("api.example.com", 64, "api.example.com", "plain ASCII is kept");
	san_is("a\nb\tc\x7f\x01\x1b[31m", 64, "a?b?c???[31m", "C0 controls and DEL become '?'");
	san_is("h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80", 64, "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80",
	       "valid 2-, 3- and 4-byte UTF-8 is kept");
	san_is("a\xff" "b\xfe", 64, "a?b?", "bytes that never occur in UTF-8 become '?'");
	san_is("\xc0\xaf\xe0\x80\xaf", 64, "?????", "overlong forms: every byte becomes '?'");
	san_is("x\xed\xa0\x80y", 64, "x???y", "a UTF-16 surrogate is invalid");
	san_is("\xf4\x90\x80\x80", 64, "????", "a code point above U+10FFFF is invalid");
	san_is("ab\xe2\x9c", 64, "ab??", "a sequence cut short at the end");
	san_is("\xe2(x", 64, "?(x", "a lead byte followed by ASCII");
	san_is("a\xc2\x9b" "1m\xc2\xa0z", 64, "a?1m\xc2\xa0z", "a C1 control (CSI) becomes one '?'; NBSP is kept");
	san_is("ab\xe2\x82\xac", 5, "ab", "truncation never splits a character");
	san_is("ab\xe2\x82\xac", 6, "ab\xe2\x82\xac", "a character that just fits is kept");
	san_is("abcdef", 4, "abc", "truncation to dstsize - 1");
	san_is("", 4, "", "empty");
	sbx_audit_sanitize(out, sizeof(out), fixed, sizeof(fixed));
	is_str(out, "abcd", "sanitize reads no further than srclen");
	is_int(sbx_audit_sanitize(out, 1, "abc", 3), 0, "sanitize into a 1-byte buffer gives an empty string");
	is_str(out, "", "... which is NUL-terminated");
	sbx_audit_sanitize(out, sizeof(out), "ab\0cd", 5);
	is_str(out, "ab", "sanitize stops at a NUL");

	/* Random bytes, biased towards UTF-8 lead and continuation bytes. */
	for (int iter = 0; iter < 50000; iter++) {
		unsigned char in[48];
		char o1[33], o2[33];
		size_t n = (size_t)(rand_r(&seed) % (int)sizeof(in));
		size_t dst = 1 + (size_t)(rand_r(&seed) % (int)sizeof(o1));
		static const unsigned char pick[] = {'a', ' ', 0x01, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc2,
						     0xc3, 0xdf, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};

		for (size_t i = 0; i < n; i++)
			in[i] = rand_r(&seed) % 2 ? pick[rand_r(&seed) % (int)sizeof(pick)] : (unsigned char)rand_r(&seed);
		size_t len = sbx_audit_sanitize(o1, dst, (const char *)in, n);
		if (len != strlen(o1) || len >= dst || !clean_utf8(o1))
			bad++;
		sbx_audit_sanitize(o2, dst, o1, strlen(o1));
		if (strcmp(o1, o2) != 0)
			not_idem++;
		/* Clean input that fits must come out unchanged. */
		char c[49];
		memcpy(c, in, n);
		c[n] = '\0';
		if (strlen(c) == n && n < dst && clean_utf8(c) && strcmp(o1, c) != 0)
			changed_clean++;
	}
	is_int(bad, 0, "random input: output is always clean UTF-8, NUL-terminated, within the buffer");
	is_int(not_idem, 0, "random input: sanitising is idempotent");
	is_int(changed_clean, 0, "random input: clean input that fits is kept byte for byte");
}

/* ---- opening ---- */

static void test_open_errors(void)
{
	sbx_err err = SBX_ERR_INIT;
	struct sbx_audit *a = NULL;
	char path[PATH_MAX + 32];
	sqlite3 *db;
	struct sbx_audit_opts o = {.queue_max = SBX_AUDIT_QUEUE_MAX + 1};

	pf(path, sizeof(path), "%s/missing.db", tmpdir);
	ok(sbx_audit_open(path, &a, E) < 0 && err.code == SBX_E_IO && strstr(err.msg, path),
	   "opening a missing database fails and names it: %s", err.msg);
	ok(access(path, F_OK) < 0, "... and does not create it");

	pf(path, sizeof(path), "%s/empty.db", tmpdir);
	if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_exec(db, "CREATE TABLE x (y)", NULL, NULL, NULL) != SQLITE_OK)
		abort();
	sqlite3_close(db);
	ok(sbx_audit_open(path, &a, E) < 0 && strstr(err.msg, "no audit table"),
	   "a database without the schema is refused: %s", err.msg);

	struct sbx_store *s = new_db("opts", path, sizeof(path));
	ok(sbx_audit_open_opts(path, &o, &a, E) < 0 && err.code == SBX_E_INVALID,
	   "a queue larger than SBX_AUDIT_QUEUE_MAX is refused: %s", err.msg);
	sbx_store_close(s);
}

/* ---- round trip ---- */

static void fill(char *dst, size_t n, char c)
{
	memset(dst, c, n - 1);
	dst[n - 1] = '\0';
}

static void test_roundtrip(void)
{
	char path[PATH_MAX + 32];
	struct sbx_store *s = new_db("roundtrip", path, sizeof(path));
	struct sbx_audit *a = open_log(path, NULL);
	struct sbx_audit_rec r, full, over;
	struct recs rs = {0};
	uint64_t committed, rejected;
	int64_t newest = -1;

	ok(sbx_audit_last_id(a) == 0, "last_id of an empty log is 0");
	memset(&r, 0, sizeof(r));
	r.id = 999; /* ignored on the way in */
	r.ts = 1764262366123;
	sbx_strlcpy(r.sandbox, "my-box", sizeof(r.sandbox));
	sbx_strlcpy(r.path, "transparent", sizeof(r.path));
	sbx_strlcpy(r.host, "api.example.com", sizeof(r.host));
	r.port = 65535;
	sbx_strlcpy(r.method, "PATCH", sizeof(r.method));
	sbx_strlcpy(r.url_path, "/v1/things/42", sizeof(r.url_path));
	sbx_strlcpy(r.decision, "approved", sizeof(r.decision));
	sbx_strlcpy(r.rule, "review network api.example.com (2 approvals)", sizeof(r.rule));
	sbx_strlcpy(r.reason, "approved by alice", sizeof(r.reason));
	r.bytes_up = 123456789012ULL;
	r.bytes_down = (uint64_t)INT64_MAX;
	r.duration_ms = 4321;
	r.status = 503;
	ok(sbx_audit_submit(a, &r) == 0, "submit");

	/* Every string field at its full length, and one with no NUL at all. */
	memset(&full, 0, sizeof(full));
	fill(full.sandbox, sizeof(full.sandbox), 's');
	fill(full.path, sizeof(full.path), 'p');
	fill(full.host, sizeof(full.host), 'h');
	fill(full.method, sizeof(full.method), 'm');
	fill(full.url_path, sizeof(full.url_path), 'u');
	fill(full.decision, sizeof(full.decision), 'd');
	fill(full.rule, sizeof(full.rule), 'r');
	fill(full.reason, sizeof(full.reason), 'e');
	full.status = -1;
	ok(sbx_audit_submit(a, &full) == 0, "submit a record with every field full");
	over = full;
	memset(over.host, 'H', sizeof(over.host));
	memset(over.reason, 'E', sizeof(over.reason));
	over.bytes_up = UINT64_MAX;
	ok(sbx_audit_submit(a, &over) == 0, "submit a record whose strings have no NUL");

	ok(sbx_audit_flush(a) == 0, "flush");
	sbx_audit_counters(a, &committed, &rejected);
	is_int(committed, 3, "3 committed");
	is_int(rejected, 0, "none rejected");

	struct sbx_audit_query q = {.ascending = true};
	ok(query(path, &q, &rs) == 0 && rs.n == 3, "query returns the 3 records");
	if (rs.n == 3) {
		const struct sbx_audit_rec *g = &rs.v[0];
		ok(g->id > 0 && g->id != 999, "the id comes from the database (%" PRId64 ")", g->id);
		is_int(g->ts, r.ts, "ts");
		is_str(g->sandbox, r.sandbox, "sandbox");
		is_str(g->path, r.path, "path");
		is_str(g->host, r.host, "host");
		is_int(g->port, 65535, "port");
		is_str(g->method, r.method, "method");
		is_str(g->url_path, r.url_path, "url_path");
		is_str(g->decision, r.decision, "decision");
		is_str(g->rule, r.rule, "rule");
		is_str(g->reason, r.reason, "reason");
		ok(g->bytes_up == r.bytes_up, "bytes_up");
		ok(g->bytes_down == (uint64_t)INT64_MAX, "bytes_down (INT64_MAX)");
		ok(g->duration_ms == 4321, "duration_ms");
		is_int(g->status, 503, "status");

		g = &rs.v[1];
		ok(strcmp(g->sandbox, full.sandbox) == 0 && strcmp(g->path, full.path) == 0 &&
			   strcmp(g->host, full.host) == 0 && strcmp(g->method, full.method) == 0 &&
			   strcmp(g->url_path, full.url_path) == 0 && strcmp(g->decision, full.decision) == 0 &&
			   strcmp(g->rule, full.rule) == 0 && strcmp(g->reason, full.reason) == 0 && g->status == -1,
		   "full-length fields come back whole");
		g = &rs.v[2];
		ok(strlen(g->host) == sizeof(g->host) - 1 && g->host[0] == 'H' && strlen(g->reason) == sizeof(g->reason) - 1,
		   "unterminated fields are cut to their size");
		ok(g->bytes_up == (uint64_t)INT64_MAX, "a counter beyond INT64_MAX is stored as INT64_MAX");
		is_int(sbx_audit_last_id(a), rs.v[2].id, "last_id is the newest record's id");
		newest = rs.v[2].id;
	}
	recs_free(&rs);
	sbx_audit_close(a);

	/* A second log on the same file starts from the table's newest id. */
	a = open_log(path, NULL);
	is_int(sbx_audit_last_id(a), newest, "a reopened log starts from the table's newest id");
	sbx_audit_close(a);
	sbx_store_close(s);
}

/* ---- concurrency ---- */

#define THREADS 4
#define PER_THREAD 2500

struct producer {
	struct sbx_audit *a;
	int idx;
	int failed;
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	struct sbx_audit_rec r = mkrec("", "allowed", "", 443, 0);

	snprintf(r.sandbox, sizeof(r.sandbox), "t%d", p->idx);
	for (int i = 0; i < PER_THREAD; i++) {
		r.ts = (int64_t)sbx_now_ms();
		r.bytes_up = (uint64_t)i;
		snprintf(r.host, sizeof(r.host), "h%d-%d.example", p->idx, i);
		if (sbx_audit_submit(p->a, &r) < 0)
			p->failed++;
	}
	return NULL;
}

struct poller {
	const char *path;
	atomic_int stop;
	int errors, went_back, rounds;
};

/* Reads while the writer commits: no error, and never fewer records than the time before. */
static void *poller_main(void *arg)
{
	struct poller *p = arg;
	size_t last = 0;

	while (!p->stop) {
		struct recs rs = {0};
		if (query(p->path, NULL, &rs) < 0)
			p->errors++;
		else if (rs.n < last)
			p->went_back++;
		else
			last = rs.n;
		recs_free(&rs);
		p->rounds++;
	}
	return NULL;
}

static void test_concurrent(void)
{
	char path[PATH_MAX + 32];
	struct sbx_store *s = new_db("concurrent", path, sizeof(path));
	struct sbx_audit *a = open_log(path, NULL);
	struct producer pr[THREADS];
	pthread_t th[THREADS], pt;
	struct poller po = {.path = path};
	struct recs rs = {0};
	uint64_t committed, rejected, t0, t1;
	int failed = 0, dup = 0, missing = 0, order = 0;
	static unsigned char seen[THREADS][PER_THREAD];
	int last_seq[THREADS];

	pthread_create(&pt, NULL, poller_main, &po);
	t0 = sbx_monotonic_ns();
	for (int i = 0; i < THREADS; i++) {
		pr[i] = (struct producer){.a = a, .idx = i};
		pthread_create(&th[i], NULL, producer_main, &pr[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		failed += pr[i].failed;
	}
	ok(sbx_audit_flush(a) == 0, "flush after %d concurrent submits", THREADS * PER_THREAD);
	t1 = sbx_monotonic_ns();
	po.stop = 1;
	pthread_join(pt, NULL);
	is_int(failed, 0, "every submit was accepted");
	sbx_audit_counters(a, &committed, &rejected);
	is_int(committed, THREADS * PER_THREAD, "committed counter");
	is_int(rejected, 0, "rejected counter");
	diag("throughput: %d records from %d threads committed in %.1f ms: %.0f records/s", THREADS * PER_THREAD,
	     THREADS, (double)(t1 - t0) / 1e6, (double)(THREADS * PER_THREAD) / ((double)(t1 - t0) / 1e9));
	is_int(po.errors, 0, "queries while the writer commits never fail (%d rounds)", po.rounds);
	is_int(po.went_back, 0, "... and never see fewer records than before");

	struct sbx_audit_query q = {.ascending = true};
	ok(query(path, &q, &rs) == 0, "query everything");
	is_int(rs.n, THREADS * PER_THREAD, "every record landed");
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < THREADS; i++)
		last_seq[i] = -1;
	for (size_t i = 0; i < rs.n; i++) {
		int t = rs.v[i].sandbox[1] - '0';
		int seq = (int)rs.v[i].bytes_up;
		char want[64];

		if (rs.v[i].sandbox[0] != 't' || t < 0 || t >= THREADS || seq < 0 || seq >= PER_THREAD) {
			dup++;
			continue;
		}
		snprintf(want, sizeof(want), "h%d-%d.example", t, seq);
		if (strcmp(rs.v[i].host, want) != 0 || seen[t][seq]++)
			dup++;
		if (seq <= last_seq[t] || (i > 0 && rs.v[i].id <= rs.v[i - 1].id))
			order++;
		last_seq[t] = seq;
	}
	for (int t = 0; t < THREADS; t++)
		for (int i = 0; i < PER_THREAD; i++)
			missing += !seen[t][i];
	is_int(dup, 0, "no record is duplicated or garbled");
	is_int(missing, 0, "no record is missing");
	is_int(order, 0, "ids increase, and each thread's records keep their submission order");
	if (rs.n)
		is_int(sbx_audit_last_id(a), rs.v[rs.n - 1].id, "last_id is the newest id");
	recs_free(&rs);
	sbx_audit_close(a);
	sbx_store_close(s);
}

/* ---- order and filters ---- */

static const struct {
	const char *sandbox, *decision, *host;
	int64_t ts;
} fixture[] = {
	{"alpha", "allowed", "a.example", 1000},  {"alpha", "denied", "b.example", 900},
	{"beta", "approved", "a.example", 1100},  {"beta", "refused", "c.example", 1200},
	{"alpha", "timeout", "a.example", 1300},  {"beta", "error", "b.example", 1400},
	{"alpha", "held", "c.example", 1500},     {"alpha", "allowed", "a.example", 1600},
	{"beta", "denied", "a.example", 1700},    {"alpha", "allowed", "b.example", 800},
};

static bool is_blocked(const char *d)
{
	return !strcmp(d, "denied") || !strcmp(d, "refused") || !strcmp(d, "timeout") || !strcmp(d, "error");
}

/* How many fixture records match, the reference for each filter. */
static size_t expect_n(const char *sandbox, const char *decision, const char *host, size_t after_idx, int64_t since)
{
	size_t n = 0;

	for (size_t i = after_idx; i < SBX_ARRAY_LEN(fixture); i++) {
		const char *d = fixture[i].decision;
		if (sandbox && strcmp(fixture[i].sandbox, sandbox))
			continue;
		if (host && strcmp(fixture[i].host, host))
			continue;
		if (fixture[i].ts < since)
			continue;
		if (decision && !strcmp(decision, "blocked") && !is_blocked(d))
			continue;
		if (decision && !strcmp(decision, "allowed") && strcmp(d, "allowed") && strcmp(d, "approved"))
			continue;
		if (decision && strcmp(decision, "blocked") && strcmp(decision, "allowed") && strcmp(decision, d))
			continue;
		n++;
	}
	return n;
}

static bool all_match(const struct recs *rs, const char *sandbox, const char *decision, const char *host,
		      int64_t after_id, int64_t since)
{
	for (size_t i = 0; i < rs->n; i++) {
		const struct sbx_audit_rec *r = &rs->v[i];
		if ((sandbox && strcmp(r->sandbox, sandbox)) || (host && strcmp(r->host, host)) || r->id <= after_id ||
		    r->ts < since)
			return false;
		if (decision && !strcmp(decision, "blocked") && !is_blocked(r->decision))
			return false;
		if (decision && !strcmp(decision, "allowed") && strcmp(r->decision, "allowed") &&
		    strcmp(r->decision, "approved"))
			return false;
	}
	return true;
}

static void test_filters(void)
{
	char path[PATH_MAX + 32];
	struct sbx_store *s = new_db("filters", path, sizeof(path));
	struct sbx_audit *a = open_log(path, NULL);
	struct recs rs = {0};
	int64_t ids[SBX_ARRAY_LEN(fixture)];
	bool desc = true;

	for (size_t i = 0; i < SBX_ARRAY_LEN(fixture); i++) {
		struct sbx_audit_rec r = mkrec(fixture[i].sandbox, fixture[i].decision, fixture[i].host, 443, fixture[i].ts);
		r.bytes_up = i; /* the fixture index, to recognise records */
		if (sbx_audit_submit(a, &r) < 0)
			abort();
	}
	ok(sbx_audit_flush(a) == 0, "flush the fixture");

	ok(query(path, &(struct sbx_audit_query){0}, &rs) == 0 && rs.n == SBX_ARRAY_LEN(fixture), "query all");
	for (size_t i = 0; i < rs.n; i++) {
		desc = desc && rs.v[i].bytes_up == rs.n - 1 - i && (i == 0 || rs.v[i].id < rs.v[i - 1].id);
		ids[rs.v[i].bytes_up] = rs.v[i].id;
	}
	ok(desc, "newest first by default (the order of logging, not of ts)");
	ok(query(path, &(struct sbx_audit_query){.ascending = true}, &rs) == 0 && rs.n == SBX_ARRAY_LEN(fixture) &&
		   rs.v[0].bytes_up == 0 && rs.v[rs.n - 1].bytes_up == rs.n - 1,
	   "ascending: oldest first");

	static const char *const sandboxes[] = {NULL, "alpha", "beta", "gamma"};
	static const char *const decisions[] = {NULL, "blocked", "allowed", "held", "denied", "nonsense"};
	static const char *const hosts[] = {NULL, "a.example", "c.example"};
	int wrong = 0, combos = 0;
	for (size_t si = 0; si < SBX_ARRAY_LEN(sandboxes); si++)
		for (size_t di = 0; di < SBX_ARRAY_LEN(decisions); di++)
			for (size_t hi = 0; hi < SBX_ARRAY_LEN(hosts); hi++) {
				struct sbx_audit_query q = {.sandbox = sandboxes[si], .decision = decisions[di], .host = hosts[hi]};
				combos++;
				if (query(path, &q, &rs) < 0 ||
				    rs.n != expect_n(q.sandbox, q.decision, q.host, 0, 0) ||
				    !all_match(&rs, q.sandbox, q.decision, q.host, 0, 0)) {
					diag("wrong result for sandbox=%s decision=%s host=%s: %zu records",
					     q.sandbox ? q.sandbox : "*", q.decision ? q.decision : "*",
					     q.host ? q.host : "*", rs.n);
					wrong++;
				}
			}
	is_int(wrong, 0, "sandbox x decision x host filters give exactly the matching records (%d combinations)", combos);

	ok(query(path, &(struct sbx_audit_query){.decision = "blocked"}, &rs) == 0 && rs.n == 5,
	   "blocked = denied, refused, timeout, error (5)");
	ok(query(path, &(struct sbx_audit_query){.decision = "allowed"}, &rs) == 0 && rs.n == 4,
	   "allowed = allowed, approved (4)");

	struct sbx_audit_query q = {.after_id = ids[6], .ascending = true};
	ok(query(path, &q, &rs) == 0 && rs.n == 3 && rs.v[0].id == ids[7] && rs.v[2].id == ids[9],
	   "after_id: only later records, in order (for --follow)");
	q = (struct sbx_audit_query){.after_id = ids[9]};
	ok(query(path, &q, &rs) == 0 && rs.n == 0, "after_id = newest: nothing");
	q = (struct sbx_audit_query){.since_ts = 1300};
	ok(query(path, &q, &rs) == 0 && rs.n == 5 && rs.n == expect_n(NULL, NULL, NULL, 0, 1300) &&
		   all_match(&rs, 0, 0, 0, 0, 1300),
	   "since_ts keeps ts >= since (5)");
	q = (struct sbx_audit_query){.limit = 3};
	ok(query(path, &q, &rs) == 0 && rs.n == 3 && rs.v[0].id == ids[9] && rs.v[2].id == ids[7],
	   "limit 3: the 3 newest");
	q = (struct sbx_audit_query){.limit = 3, .ascending = true};
	ok(query(path, &q, &rs) == 0 && rs.n == 3 && rs.v[0].id == ids[0] && rs.v[2].id == ids[2],
	   "limit 3 ascending: the 3 oldest");
	q = (struct sbx_audit_query){.sandbox = "alpha", .decision = "allowed", .after_id = ids[0], .since_ts = 900, .limit = 10};
	ok(query(path, &q, &rs) == 0 && rs.n == 1 && rs.v[0].id == ids[7], "filters combine");
	q = (struct sbx_audit_query){.host = "a.example' OR '1'='1"};
	ok(query(path, &q, &rs) == 0 && rs.n == 0, "values are bound, never spliced into SQL");

	/* Aggregation over the same fixture plus repeats. */
	for (int i = 0; i < 5; i++) {
		struct sbx_audit_rec r = mkrec("alpha", "allowed", "a.example", 443, 2000 + i);
		sbx_audit_submit(a, &r);
	}
	struct sbx_audit_rec other = mkrec("alpha", "allowed", "a.example", 8443, 1900);
	sbx_audit_submit(a, &other);
	struct sbx_audit_rec ruled = mkrec("alpha", "denied", "b.example", 443, 2100);
	sbx_strlcpy(ruled.rule, "deny network b.example", sizeof(ruled.rule));
	sbx_strlcpy(ruled.reason, "denied by rule", sizeof(ruled.reason));
	sbx_audit_submit(a, &ruled);
	ok(sbx_audit_flush(a) == 0, "flush the repeats");

	struct groups gs = {0};
	sbx_err err = SBX_ERR_INIT;
	ok(sbx_audit_aggregate(path, NULL, groups_cb, &gs, E) == 0, "aggregate everything");
	/* Groups: alpha/allowed a:443 (fixture 0, 7, +5 = 7, last 2004), alpha/allowed a:8443 (1),
	 * alpha/allowed b (1), alpha/held c (not blocked, 1), alpha blocked b (1, no rule),
	 * alpha blocked b with rule (1), alpha blocked a (timeout, 1), beta allowed a (approved, 1),
	 * beta blocked c, b, a (3). */
	is_int(gs.n, 11, "11 groups");
	size_t nblocked = 0, first_allowed = gs.n;
	bool sorted = true;
	const struct sbx_audit_group *big = NULL;
	uint64_t total = 0;
	for (size_t i = 0; i < gs.n && i < SBX_ARRAY_LEN(gs.v); i++) {
		const struct sbx_audit_group *g = &gs.v[i];
		total += g->count;
		if (g->blocked)
			nblocked++;
		else if (first_allowed == gs.n)
			first_allowed = i;
		if (i > 0 && (gs.v[i - 1].blocked < g->blocked ||
			      (gs.v[i - 1].blocked == g->blocked && gs.v[i - 1].last_ts < g->last_ts)))
			sorted = false;
		if (!strcmp(g->sandbox, "alpha") && !g->blocked && !strcmp(g->host, "a.example") && g->port == 443)
			big = g;
	}
	is_int(total, SBX_ARRAY_LEN(fixture) + 7, "the counts add up to every record");
	is_int(nblocked, 6, "6 blocked groups");
	is_int(first_allowed, 6, "blocked groups come first");
	ok(sorted, "then newest last_ts first");
	ok(big && big->count == 7 && big->last_ts == 2004 && !strcmp(big->path, "forward"),
	   "alpha allowed a.example:443 counted 7 times, last seen at 2004");
	ok(gs.n > 0 && gs.v[0].blocked && !strcmp(gs.v[0].rule, "deny network b.example") &&
		   !strcmp(gs.v[0].reason, "denied by rule") && gs.v[0].count == 1,
	   "rule and reason split groups and come back");

	memset(&gs, 0, sizeof(gs));
	q = (struct sbx_audit_query){.sandbox = "beta", .decision = "blocked"};
	ok(sbx_audit_aggregate(path, &q, groups_cb, &gs, E) == 0 && gs.n == 3 && gs.v[0].blocked &&
		   !strcmp(gs.v[0].host, "a.example") && gs.v[0].last_ts == 1700,
	   "filters apply to aggregation");
	memset(&gs, 0, sizeof(gs));
	q = (struct sbx_audit_query){.limit = 2};
	ok(sbx_audit_aggregate(path, &q, groups_cb, &gs, E) == 0 && gs.n == 2, "limit counts groups");

	recs_free(&rs);
	sbx_audit_close(a);
	sbx_store_close(s);

	ok(sbx_audit_query("/nonexistent/sbx.db", NULL, recs_cb, &rs, E) < 0 && strstr(err.msg, "/nonexistent/sbx.db"),
	   "querying a missing database fails and names it: %s", err.msg);
	recs_free(&rs);
}

/* ---- sanitising on the way in ---- */

static void test_sanitize_stored(void)
{
	char path[PATH_MAX + 32];
	struct sbx_store *s = new_db("sanitize", path, sizeof(path));
	struct sbx_audit *a = open_log(path, NULL);
	struct sbx_audit_rec r = mkrec("box", "denied", "evil\x1b]0;pwned\x07.example", 80, 1);
	struct recs rs = {0};
	sqlite3 *db;
	sqlite3_stmt *st;
	int invalid = -1;

	sbx_strlcpy(r.method, "G\xffT\r\n", sizeof(r.method));
	sbx_strlcpy(r.url_path, "/caf\xc3\xa9/\xc3(\x7f", sizeof(r.url_path));
	ok(sbx_audit_submit(a, &r) == 0 && sbx_audit_flush(a) == 0, "submit a record with control bytes");
	ok(query(path, NULL, &rs) == 0 && rs.n == 1, "read it back");
	if (rs.n == 1) {
		is_str(rs.v[0].host, "evil?]0;pwned?.example", "escape sequences in host are defused");
		is_str(rs.v[0].method, "G?T??", "invalid UTF-8 and CR LF in method");
		is_str(rs.v[0].url_path, "/caf\xc3\xa9/?(?", "valid UTF-8 kept, invalid byte and DEL replaced");
	}
	/* What is stored, not only what the reader returns, is clean. */
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM audit WHERE host GLOB '*[' || char(1) || '-' || char(31) || ']*'"
				   " OR method GLOB '*[' || char(1) || '-' || char(31) || ']*'"
				   " OR url_path GLOB '*' || char(127) || '*'",
			       -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			invalid = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	is_int(invalid, 0, "no control character reaches the database");
	recs_free(&rs);
	sbx_audit_close(a);
	sbx_store_close(s);
}

/* ---- a full queue and a database that refuses commits ---- */

static sqlite3 *lock_db(const char *path)
{
	sqlite3 *db;

	if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		abort();
	return db;
}

static void test_queue_full(void)
{
	char path[PATH_MAX + 32];
	struct sbx_store *s = new_db("full", path, sizeof(path));
	struct sbx_audit_opts o = {.queue_max = 8, .busy_timeout_ms = 50};
	struct sbx_audit *a = open_log(path, &o);
	struct sbx_audit_rec r = mkrec("box", "allowed", "x.example", 443, 1);
	sqlite3 *blocker = lock_db(path);
	uint64_t committed, rejected, t0, slowest = 0;
	int accepted = 0, refused = 0, rc = -1;

	for (int i = 0; i < 7; i++)
		accepted += sbx_audit_submit(a, &r) == 0;
	ok(!sbx_audit_full(a), "with one place left the log is not full");
	accepted += sbx_audit_submit(a, &r) == 0;
	is_int(accepted, 8, "8 records fill a queue of 8 while the database is locked");
	ok(sbx_audit_full(a), "sbx_audit_full says so");
	for (int i = 0; i < 100; i++) {
		t0 = sbx_monotonic_ns();
		refused += sbx_audit_submit(a, &r) < 0;
		if (sbx_monotonic_ns() - t0 > slowest)
			slowest = sbx_monotonic_ns() - t0;
	}
	is_int(refused, 100, "then submit fails");
	ok(slowest < 20 * 1000000ULL, "... at once, without waiting for the database (slowest %.3f ms)",
	   (double)slowest / 1e6);
	sbx_audit_counters(a, &committed, &rejected);
	is_int(rejected, 100, "rejections are counted");
	is_int(committed, 0, "nothing committed while locked");
	t0 = sbx_monotonic_ms();
	rc = sbx_audit_flush(a);
	t0 = sbx_monotonic_ms() - t0;
	ok(rc < 0, "flush reports the failing commit instead of hanging");
	ok(t0 < 5000, "... within a few busy timeouts (%" PRIu64 " ms)", t0);
	t0 = sbx_monotonic_ns();
	rc = sbx_audit_flush(a);
	t0 = sbx_monotonic_ns() - t0;
	ok(rc < 0 && t0 < 10 * 1000000ULL, "while the writer is failing, flush fails at once (%.3f ms)",
	   (double)t0 / 1e6);

	sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(blocker);
	t0 = sbx_monotonic_ms();
	while (sbx_monotonic_ms() - t0 < 10000 && (rc = sbx_audit_flush(a)) < 0)
		usleep(10000);
	ok(rc == 0, "once the lock is gone, the retried batch commits (%" PRIu64 " ms)", sbx_monotonic_ms() - t0);
	sbx_audit_counters(a, &committed, &rejected);
	is_int(committed, 8, "the 8 queued records are committed");
	is_int(count_all(path), 8, "... exactly once each");
	ok(!sbx_audit_full(a) && sbx_audit_submit(a, &r) == 0 && sbx_audit_flush(a) == 0,
	   "the queue accepts records again");
	sbx_audit_close(a);

	/* Closing while the database stays locked gives up after a few attempts instead of hanging. */
	a = open_log(path, &o);
	blocker = lock_db(path);
	accepted = 0;
	for (int i = 0; i < 3; i++)
		accepted += sbx_audit_submit(a, &r) == 0;
	t0 = sbx_monotonic_ms();
	sbx_audit_close(a);
	ok(accepted == 3 && sbx_monotonic_ms() - t0 < 10000,
	   "close with a locked database returns (%" PRIu64 " ms; the loss is logged)", sbx_monotonic_ms() - t0);
	sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(blocker);
	is_int(count_all(path), 9, "the unacknowledged records were not half-written");
	sbx_store_close(s);
}

/* ---- a reader's open snapshot ---- */

static int64_t count_in(sqlite3 *db)
{
	sqlite3_stmt *st;
	int64_t n = -1;

	if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM audit", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void test_reader_snapshot(void)
{
	char path[PATH_MAX + 32];
	struct sbx_store *s = new_db("snapshot", path, sizeof(path));
	struct sbx_audit *a = open_log(path, NULL);
	struct sbx_audit_rec r = mkrec("box", "allowed", "x.example", 443, 1);
	sqlite3 *reader;
	int ok_submits = 0;
	const int n = 5000;

	for (int i = 0; i < 10; i++)
		sbx_audit_submit(a, &r);
	sbx_audit_flush(a);
	if (sqlite3_open_v2(path, &reader, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_exec(reader, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		abort();
	is_int(count_in(reader), 10, "a reader opens a snapshot with 10 records");

	/* Big records, so that the WAL passes the auto-checkpoint size while the snapshot pins it. */
	memset(r.url_path, 'u', sizeof(r.url_path) - 1);
	memset(r.rule, 'r', sizeof(r.rule) - 1);
	memset(r.reason, 'e', sizeof(r.reason) - 1);
	for (int i = 0; i < n; i++)
		ok_submits += sbx_audit_submit(a, &r) == 0;
	ok(ok_submits == n && sbx_audit_flush(a) == 0, "%d records commit while the reader holds its snapshot", n);
	is_int(count_in(reader), 10, "the reader still sees its snapshot");
	is_int(count_all(path), 10 + n, "a new query sees everything");
	sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL);
	is_int(count_in(reader), 10 + n, "the reader sees everything after its transaction");
	sqlite3_close(reader);
	sbx_audit_close(a);
	is_int(count_all(path), 10 + n, "nothing lost after close");
	sbx_store_close(s);
}

/* ---- close, notification, crash ---- */

static void test_close_flushes(void)
{
	char path[PATH_MAX + 32];
	struct sbx_store *s = new_db("close", path, sizeof(path));
	struct sbx_audit_opts o = {.batch_delay_ms = 60000};
	struct sbx_audit *a = open_log(path, &o);
	struct sbx_audit_rec r = mkrec("box", "allowed", "x.example", 443, 1);
	uint64_t t0;

	for (int i = 0; i < 50; i++)
		sbx_audit_submit(a, &r);
	usleep(100000);
	is_int(count_all(path), 0, "with a long batch delay, 50 records are still waiting");
	t0 = sbx_monotonic_ms();
	sbx_audit_close(a);
	ok(sbx_monotonic_ms() - t0 < 5000, "close does not wait out the batch delay (%" PRIu64 " ms)",
	   sbx_monotonic_ms() - t0);
	is_int(count_all(path), 50, "close committed them");

	/* 256 waiting records do not wait for the delay either. */
	a = open_log(path, &o);
	for (int i = 0; i < 256; i++)
		sbx_audit_submit(a, &r);
	t0 = sbx_monotonic_ms();
	while (count_all(path) < 50 + 256 && sbx_monotonic_ms() - t0 < 5000)
		usleep(5000);
	is_int(count_all(path), 50 + 256, "256 waiting records are committed at once (%" PRIu64 " ms)",
	       sbx_monotonic_ms() - t0);
	sbx_audit_close(a);
	sbx_store_close(s);
}

static bool readable(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static void test_notify(void)
{
	char path[PATH_MAX + 32];
	struct sbx_store *s = new_db("notify", path, sizeof(path));
	struct sbx_audit *a = open_log(path, NULL);
	struct sbx_audit_rec r = mkrec("box", "denied", "n.example", 443, 7);
	int fd = sbx_audit_notify_fd(a);
	uint64_t v = 0;
	struct recs rs = {0};

	ok(fd >= 0, "notify fd");
	ok(!readable(fd, 100), "not readable before any commit");
	ok(sbx_audit_submit(a, &r) == 0, "submit one record");
	ok(readable(fd, 5000), "readable after the commit, without a flush");
	ssize_t got = read(fd, &v, sizeof(v));
	ok(got == (ssize_t)sizeof(v) && v >= 1, "the counter says how many commits (%" PRIu64 ")", v);
	ok(!readable(fd, 0), "reading re-arms it");
	struct sbx_audit_query q = {.after_id = 0, .ascending = true};
	ok(query(path, &q, &rs) == 0 && rs.n == 1 && rs.v[0].id == sbx_audit_last_id(a),
	   "the record is there, and last_id is its id");
	int64_t last = sbx_audit_last_id(a);
	sbx_audit_submit(a, &r);
	sbx_audit_submit(a, &r);
	ok(readable(fd, 5000), "readable again after the next commit");
	sbx_audit_flush(a);
	q.after_id = last;
	ok(query(path, &q, &rs) == 0 && rs.n == 2 && rs.v[1].id == sbx_audit_last_id(a),
	   "following from the last id sent gives just the new records");
	recs_free(&rs);
	sbx_audit_close(a);
	sbx_store_close(s);
}

static void test_crash(void)
{
	char path[PATH_MAX + 32];
	struct sbx_store *s = new_db("crash", path, sizeof(path));
	const int n = 777;
	struct recs rs = {0};
	int status = -1, distinct = 1;
	pid_t pid;

	/* No SQLite connection may cross the fork. */
	sbx_store_close(s);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		sbx_err err = SBX_ERR_INIT;
		struct sbx_audit *a;
		struct sbx_audit_rec r = mkrec("crash", "allowed", "c.example", 443, 1);

		if (sbx_audit_open(path, &a, &err) < 0)
			_exit(2);
		for (int i = 0; i < n; i++) {
			r.bytes_up = (uint64_t)i;
			if (sbx_audit_submit(a, &r) < 0)
				_exit(3);
		}
		if (sbx_audit_flush(a) < 0)
			_exit(4);
		_exit(0); /* no close: the writer thread dies with its connection open */
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child submitted, flushed and exited without close (%d)",
	   status);
	struct sbx_audit_query q = {.sandbox = "crash", .ascending = true};
	ok(query(path, &q, &rs) == 0, "the parent reads the log");
	is_int(rs.n, n, "every flushed record survived");
	for (size_t i = 0; i < rs.n; i++)
		distinct = distinct && rs.v[i].bytes_up == i && (i == 0 || rs.v[i].id > rs.v[i - 1].id);
	ok(distinct, "each exactly once, in order");
	recs_free(&rs);
	/* And the database is still usable for writing. */
	s = new_db("crash", path, sizeof(path));
	struct sbx_audit *a = open_log(path, NULL);
	struct sbx_audit_rec r = mkrec("after", "allowed", "c.example", 443, 1);
	ok(sbx_audit_submit(a, &r) == 0 && sbx_audit_flush(a) == 0, "the log can be opened and written after the crash");
	sbx_audit_close(a);
	sbx_store_close(s);
}

/* ---- the hash chain ---- */

static sqlite3 *rw_db(const char *path)
{
	sqlite3 *db;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		abort();
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void sql(sqlite3 *db, const char *text)
{
	char *msg = NULL;

	if (sqlite3_exec(db, text, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "SQL failed: %s: %s\n", text, msg ? msg : "?");
		abort();
	}
}

static void put_u64(EVP_MD_CTX *ctx, uint64_t v)
{
	unsigned char b[8];

	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (unsigned char)(v & 0xff);
	EVP_DigestUpdate(ctx, b, 8);
}

static void put_str(EVP_MD_CTX *ctx, const void *p, size_t n)
{
	put_u64(ctx, n);
	EVP_DigestUpdate(ctx, p, n);
}

/* The documented serialisation (audit.h), written independently of audit.c: hashes row id as it
 * is stored now, with the prev it stores. */
static void expected_hash(sqlite3 *db, int64_t id, char out[65])
{
	static const bool text[14] = {false, true, true, true, false, true, true, true, true, true, false, false, false, false};
	sqlite3_stmt *st;
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || sqlite3_prepare_v2(db,
				       "SELECT prev, ts, sandbox, path, host, port, method, url_path, decision, rule, reason,"
				       " bytes_up, bytes_down, duration_ms, status FROM audit WHERE id = ?1",
				       -1, &st, NULL) != SQLITE_OK)
		abort();
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW)
		abort();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	put_str(ctx, "sbx-audit-v1", 12);
	put_u64(ctx, (uint64_t)id);
	put_str(ctx, sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
	for (int i = 0; i < 14; i++) {
		if (text[i])
			put_str(ctx, sqlite3_column_text(st, i + 1), (size_t)sqlite3_column_bytes(st, i + 1));
		else
			put_u64(ctx, (uint64_t)sqlite3_column_int64(st, i + 1));
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	sqlite3_finalize(st);
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void column_text(sqlite3 *db, const char *col, int64_t id, char *out, size_t n)
{
	char q[128];
	sqlite3_stmt *st;

	pf(q, sizeof(q), "SELECT %s FROM audit WHERE id = %lld", col, (long long)id);
	if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
		abort();
	sbx_strlcpy(out, (const char *)sqlite3_column_text(st, 0), n);
	sqlite3_finalize(st);
}

static struct sbx_audit_rec chain_rec(int i)
{
	struct sbx_audit_rec r = mkrec(i % 2 ? "box-a" : "box-b", i % 3 ? "allowed" : "denied", "", 443,
				       1700000000000 + i);
	char host[64];

	pf(host, sizeof(host), "host%d.example", i);
	sbx_strlcpy(r.host, host, sizeof(r.host));
	sbx_strlcpy(r.method, "GET", sizeof(r.method));
	sbx_strlcpy(r.url_path, "/a|b", sizeof(r.url_path)); /* a separator would be ambiguous; lengths are not */
	r.bytes_up = (uint64_t)i * 100;
	r.bytes_down = UINT64_MAX; /* stored clamped: the hash covers the stored value */
	r.duration_ms = 7;
	r.status = i % 2 ? 200 : 0;
	return r;
}

static void write_chain(const char *path, int from, int n)
{
	struct sbx_audit *a = open_log(path, NULL);

	for (int i = from; i < from + n; i++) {
		struct sbx_audit_rec r = chain_rec(i);
		if (sbx_audit_submit(a, &r) < 0)
			abort();
	}
	if (sbx_audit_flush(a) < 0)
		abort();
	sbx_audit_close(a);
}

static struct sbx_audit_verify_result verify(const char *path)
{
	struct sbx_audit_verify_result res;
	sbx_err err = SBX_ERR_INIT;

	if (sbx_audit_verify(path, &res, &err) < 0) {
		diag("verify failed: %s", err.msg);
		memset(&res, 0, sizeof(res));
		sbx_strlcpy(res.message, "(the check itself failed)", sizeof(res.message));
	}
	return res;
}

static void test_chain_build(void)
{
	char path[PATH_MAX], h[65], want[65], prev[65] = "";
	struct sbx_store *s = new_db("chain", path, sizeof(path));
	struct sbx_audit_verify_result res = verify(path);
	sqlite3 *db;
	bool links = true, hashes = true;

	ok(res.intact && res.rows == 0 && res.last_id == 0 && res.last_hash[0] == '\0', "verify: an empty log is intact");
	/* Two opens: the second must continue the chain from the newest row in the file. */
	write_chain(path, 1, 5);
	write_chain(path, 6, 3);
	db = rw_db(path);
	for (int64_t id = 1; id <= 8; id++) {
		char p[65];
		column_text(db, "prev", id, p, sizeof(p));
		column_text(db, "hash", id, h, sizeof(h));
		expected_hash(db, id, want);
		if (strcmp(p, prev) != 0) {
			diag("row %lld: prev %s, want %s", (long long)id, p, prev);
			links = false;
		}
		if (strcmp(h, want) != 0) {
			diag("row %lld: hash %s, want %s", (long long)id, h, want);
			hashes = false;
		}
		sbx_strlcpy(prev, h, sizeof(prev));
	}
	ok(links, "chain: every row's prev is the row before's hash, the first's is '' (across a reopen)");
	ok(hashes, "chain: every hash is SHA-256 of the documented length-prefixed serialisation");
	res = verify(path);
	ok(res.intact, "verify: a log written by the writer is intact (%s)", res.message);
	is_int(res.rows, 8, "verify: 8 rows read");
	is_int(res.chained, 8, "verify: 8 rows chained");
	is_int(res.unchained, 0, "verify: no unchained rows");
	is_int(res.last_id, 8, "verify: the head is row 8");
	is_str(res.last_hash, prev, "verify: the head's hash is reported");
	is_int(res.bad_id, 0, "verify: no bad row");
	sqlite3_close(db);
	sbx_store_close(s);
}

/* Rows from before schema 4 (hash '') come first and are counted, not checked. */
static void test_chain_unchained(void)
{
	char path[PATH_MAX];
	struct sbx_store *s = new_db("unchained", path, sizeof(path));
	sqlite3 *db = rw_db(path);
	struct sbx_audit_verify_result res;

	sql(db, "INSERT INTO audit (ts, sandbox, path, decision) VALUES (1, 'old', 'forward', 'allowed');"
		"INSERT INTO audit (ts, sandbox, path, decision) VALUES (2, 'old', 'dns', 'denied');");
	write_chain(path, 1, 3);
	res = verify(path);
	ok(res.intact, "unchained: old rows before the chain are not tampering (%s)", res.message);
	ok(res.rows == 5 && res.unchained == 2 && res.chained == 3 && res.last_id == 5,
	   "unchained: 2 unchained, 3 chained (rows %" PRIu64 ", unchained %" PRIu64 ", chained %" PRIu64 ")", res.rows,
	   res.unchained, res.chained);
	/* A row without a hash after the chain began was not written by sbx's writer. */
	sql(db, "INSERT INTO audit (ts, sandbox, path, decision) VALUES (9, 'x', 'forward', 'allowed')");
	res = verify(path);
	ok(!res.intact && res.bad_id == 6 && strstr(res.message, "row 6 has no hash"),
	   "unchained: a hashless row after the chain is reported: %s", res.message);
	sqlite3_close(db);
	sbx_store_close(s);
}

/* A fresh chain of 6 rows, tampered with by `tamper` (SQL with %s for a hash where needed). */
static void tamper_case(const char *name, const char *tamper, int64_t want_bad, const char *want_msg)
{
	char path[PATH_MAX];
	struct sbx_store *s = new_db(name, path, sizeof(path));
	sqlite3 *db;
	struct sbx_audit_verify_result res;

	write_chain(path, 1, 6);
	db = rw_db(path);
	sql(db, tamper);
	res = verify(path);
	ok(!res.intact, "%s: detected", name);
	is_int(res.bad_id, want_bad, "%s: the first bad row is %lld", name, (long long)want_bad);
	ok(strstr(res.message, want_msg) != NULL, "%s: message '%s' says '%s'", name, res.message, want_msg);
	sqlite3_close(db);
	sbx_store_close(s);
}

static void test_chain_tamper(void)
{
	tamper_case("change-text", "UPDATE audit SET host = 'evil.example' WHERE id = 3", 3, "row 3 was changed");
	tamper_case("change-number", "UPDATE audit SET bytes_down = 1 WHERE id = 2", 2, "row 2 was changed");
	tamper_case("change-decision", "UPDATE audit SET decision = 'allowed' WHERE id = 6", 6, "row 6 was changed");
	tamper_case("change-type", "UPDATE audit SET port = '443x' WHERE id = 4", 4, "row 4 was changed: its port");
	tamper_case("change-prev", "UPDATE audit SET prev = '' WHERE id = 5", 5, "row 5 was changed");
	tamper_case("delete-row", "DELETE FROM audit WHERE id = 3", 4, "a row between 2 and 4 was removed");
	tamper_case("delete-rows", "DELETE FROM audit WHERE id IN (3, 4)", 5, "2 rows between 2 and 5 were removed");
	tamper_case("delete-first", "DELETE FROM audit WHERE id = 1", 2,
		    "row 2 is the first hash-chained row but records a predecessor");
	/* Every column but the id moves: row 2 then holds row 4's record, hash and prev. */
	tamper_case("swap-rows",
		    "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE id IN (2, 4);"
		    "UPDATE audit SET (ts, sandbox, path, host, port, method, url_path, decision, rule, reason, bytes_up,"
		    " bytes_down, duration_ms, status, hash, prev) = (SELECT ts, sandbox, path, host, port, method,"
		    " url_path, decision, rule, reason, bytes_up, bytes_down, duration_ms, status, hash, prev FROM t"
		    " WHERE t.id = 6 - audit.id) WHERE id IN (2, 4)",
		    2, "row 2 was changed");
	tamper_case("edit-hash", "UPDATE audit SET hash = substr('0000000000' || hash, 1, 64) WHERE id = 3", 3,
		    "the hash of row 3 was edited");
	tamper_case("garbage-hash", "UPDATE audit SET hash = 'x' WHERE id = 2", 2, "the hash of row 2 was edited");
	tamper_case("erase-hash", "UPDATE audit SET hash = '' WHERE id = 4", 4, "row 4 has no hash");
	tamper_case("erase-first-hashes", "UPDATE audit SET hash = '', prev = '' WHERE id <= 2", 3,
		    "row 3 is the first hash-chained row but records a predecessor");
	tamper_case("renumber", "DELETE FROM audit WHERE id = 3; UPDATE audit SET id = id - 1 WHERE id > 3", 3,
		    "row 3 was changed");
}

/* Changes a row and gives it a correct new hash: its successor no longer follows it. */
static void test_chain_rehash(void)
{
	char path[PATH_MAX], h[65], q[256];
	struct sbx_store *s = new_db("rehash", path, sizeof(path));
	sqlite3 *db;
	struct sbx_audit_verify_result res;

	write_chain(path, 1, 5);
	db = rw_db(path);
	sql(db, "UPDATE audit SET decision = 'allowed', host = 'exfil.example' WHERE id = 3");
	expected_hash(db, 3, h);
	pf(q, sizeof(q), "UPDATE audit SET hash = '%s' WHERE id = 3", h);
	sql(db, q);
	res = verify(path);
	ok(!res.intact && res.bad_id == 4 && strstr(res.message, "row 4 does not follow row 3"),
	   "rehash: a changed and re-hashed row breaks the next link: %s", res.message);
	sqlite3_close(db);
	sbx_store_close(s);
}

/* The newest rows removed while the daemon is down: the next id (AUTOINCREMENT) leaves a gap. */
static void test_chain_tail(void)
{
	char path[PATH_MAX];
	struct sbx_store *s = new_db("tail", path, sizeof(path));
	sqlite3 *db;
	struct sbx_audit_verify_result res;

	write_chain(path, 1, 4);
	db = rw_db(path);
	sql(db, "DELETE FROM audit WHERE id = 4");
	res = verify(path);
	ok(res.intact && res.last_id == 3, "tail: removing the newest row alone is not visible (hence the head to keep)");
	write_chain(path, 5, 1);
	res = verify(path);
	ok(!res.intact && res.bad_id == 5 && strstr(res.message, "a row between 3 and 5 was removed"),
	   "tail: the next record shows the gap: %s", res.message);
	sqlite3_close(db);
	sbx_store_close(s);
}

static void test_chain_errors(void)
{
	char path[PATH_MAX];
	struct sbx_audit_verify_result res;
	sbx_err err = SBX_ERR_INIT;

	pf(path, sizeof(path), "%s/none.db", tmpdir);
	is_int(sbx_audit_verify(path, &res, &err), -1, "verify: a missing database is an error, not a verdict");
	ok(strstr(err.msg, path) != NULL, "verify: the error names the file: %s", err.msg);
}

int main(void)
{
	char tmpl[] = "/tmp/sbx-test-audit-XXXXXX";

	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		return 1;
	}
	sbx_strlcpy(tmpdir, tmpl, sizeof(tmpdir));

	test_sanitize();
	test_open_errors();
	test_roundtrip();
	test_concurrent();
	test_filters();
	test_sanitize_stored();
	test_queue_full();
	test_reader_snapshot();
	test_close_flushes();
	test_notify();
	test_crash();
	test_chain_build();
	test_chain_unchained();
	test_chain_tamper();
	test_chain_rehash();
	test_chain_tail();
	test_chain_errors();

	sbx_rm_rf(tmpdir);
	return done_testing();
}
