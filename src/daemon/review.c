/* review.c - the review queue (see review.h). */
#include "review.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "audit.h"
#include "daemon.h"
#include "log.h"
#include "policy.h"
#include "util.h"

enum item_state {
	I_HELD,     /* waiting for approvals */
	I_APPROVED, /* approved while no client waited: the identical retry goes through once */
};

struct item {
	char id[SBX_REVIEW_ID_SIZE];
	enum item_state state;
	char sandbox_id[33], sandbox_name[64];
	char via[16];
	char rule[300], classifier[32], action[128], why[200];
	char method[32], scheme[8], host[256];
	uint16_t port;
	char target[1024];      /* cut for display; the digest covers the whole of it */
	char path[512];         /* without the query, for the log and the exemption */
	bool target_cut;
	char *headers;          /* "Name: value\n"..., credentials masked, capped */
	char *preview;          /* sanitised, capped */
	size_t body_len;
	bool body_complete;
	uint32_t needed;
	char approvers[2][SBX_REVIEW_ID_SIZE + 64];
	uint32_t napproved;
	uint64_t timeout_ms;
	int64_t created_ms;
	uint64_t deadline;      /* monotonic ms: the decision's timeout, or the retry grace */
	uint64_t timer;
	unsigned char digest[32];
	void *conn;             /* the proxy connection waiting, NULL when its client has gone */
	struct sbx_reviews *q;
	struct item *next;
};

struct sbx_reviews {
	struct sbx_daemon *d;
	sbx_review_release_fn release;
	struct item *items; /* oldest first */
	size_t count;
};

int sbx_reviews_new(struct sbx_daemon *d, sbx_review_release_fn release, struct sbx_reviews **out, sbx_err *err)
{
	struct sbx_reviews *q = calloc(1, sizeof(*q));

	if (!q)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	q->d = d;
	q->release = release;
	*out = q;
	return 0;
}

static void item_free(struct item *it)
{
	free(it->headers);
	free(it->preview);
	free(it);
}

/* Takes it out of the queue and frees it; the caller has dealt with its connection. */
static void item_drop(struct sbx_reviews *q, struct item *it)
{
	for (struct item **pp = &q->items; *pp; pp = &(*pp)->next) {
		if (*pp == it) {
			*pp = it->next;
			break;
		}
	}
	q->count--;
	if (it->timer)
		sbx_loop_timer_cancel(q->d->loop, it->timer);
	item_free(it);
}

static struct item *item_find(struct sbx_reviews *q, const char *id)
{
	for (struct item *it = q->items; it; it = it->next)
		if (strcmp(it->id, id) == 0)
			return it;
	return NULL;
}

size_t sbx_review_pending(struct sbx_reviews *q, const char *sandbox_id)
{
	size_t n = 0;

	for (struct item *it = q ? q->items : NULL; it; it = it->next)
		if (it->state == I_HELD && (!sandbox_id || strcmp(it->sandbox_id, sandbox_id) == 0))
			n++;
	return n;
}

static void duration_text(uint64_t ms, char *out, size_t n)
{
	if (ms % 3600000 == 0)
		snprintf(out, n, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		snprintf(out, n, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(out, n, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(out, n, "%llums", (unsigned long long)ms);
}

/* One audit record about an item. Returns -1 when the log cannot take it. */
static int item_audit(struct sbx_reviews *q, const struct item *it, const char *decision, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int item_audit(struct sbx_reviews *q, const struct item *it, const char *decision, const char *fmt, ...)
{
	struct sbx_audit_rec r;
	va_list ap;

	if (!q->d->audit)
		return 0;
	memset(&r, 0, sizeof(r));
	r.ts = (int64_t)sbx_now_ms();
	sbx_strlcpy(r.sandbox, it->sandbox_name, sizeof(r.sandbox));
	sbx_strlcpy(r.path, it->via, sizeof(r.path));
	sbx_strlcpy(r.host, it->host, sizeof(r.host));
	r.port = it->port;
	sbx_strlcpy(r.method, it->method, sizeof(r.method));
	sbx_strlcpy(r.url_path, it->path, sizeof(r.url_path));
	sbx_strlcpy(r.decision, decision, sizeof(r.decision));
	sbx_strlcpy(r.rule, it->rule, sizeof(r.rule));
	va_start(ap, fmt);
	vsnprintf(r.reason, sizeof(r.reason), fmt, ap);
	va_end(ap);
	r.duration_ms = (uint64_t)((int64_t)sbx_now_ms() - it->created_ms);
	if (sbx_audit_submit(q->d->audit, &r) < 0) {
		log_warn("review %s: the audit log refused the '%s' record", it->id, decision);
		return -1;
	}
	return 0;
}

static void url_text(const struct item *it, char *out, size_t n)
{
	bool v6 = strchr(it->host, ':') != NULL;
	bool dflt = (strcmp(it->scheme, "https") == 0 && it->port == 443) || (strcmp(it->scheme, "http") == 0 && it->port == 80);
	char port[8] = "";

	if (!dflt)
		snprintf(port, sizeof(port), ":%u", it->port);
	snprintf(out, n, "%s://%s%s%s%s%s%s", it->scheme, v6 ? "[" : "", it->host, v6 ? "]" : "", port, it->target,
		 it->target_cut ? "..." : "");
}

/* Tell the terminals attached to the sandbox (`sbx run`, `sbx exec`). */
static void notify(struct sbx_reviews *q, const struct item *it, const char *event, const char *state)
{
	char url[1400];
	json_t *ev;

	url_text(it, url, sizeof(url));
	if (strcmp(event, "review") == 0)
		ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "event", event, "id", it->id, "method", it->method,
			       "url", url, "reason", it->why, "needed", (int)it->needed, "pending",
			       (int)sbx_review_pending(q, it->sandbox_id));
	else
		ev = json_pack("{s:s, s:s, s:s, s:i}", "event", event, "id", it->id, "state", state, "pending",
			       (int)sbx_review_pending(q, it->sandbox_id));
	if (ev)
		sbx_api_sandbox_event(q->d, it->sandbox_id, ev);
	json_decref(ev);
}

/* Decided against (refused, timeout, sandbox gone): the client hears why, the item goes. */
static void item_refuse(struct sbx_reviews *q, struct item *it, const char *decision, const char *state,
			const char *reason)
{
	void *conn = it->conn;

	it->conn = NULL;
	it->state = I_APPROVED; /* no longer pending, for the count the event carries */
	notify(q, it, "review-done", state);
	item_drop(q, it);
	if (conn)
		q->release(conn, false, decision, reason);
}

static void on_deadline(struct sbx_loop *loop, void *ud)
{
	struct item *it = ud;
	struct sbx_reviews *q = it->q;
	char t[24], reason[200];

	(void)loop;
	it->timer = 0;
	if (it->state == I_APPROVED) {
		/* approved, but the client never came back for it */
		item_audit(q, it, "expired", "%s: approved, but the client did not send the request again", it->id);
		item_drop(q, it);
		return;
	}
	duration_text(it->timeout_ms, t, sizeof(t));
	snprintf(reason, sizeof(reason), "%s: no decision within %s; refused (a timeout is a denial)", it->id, t);
	/* A timeout happens whether or not the log takes the record; it only ever refuses. */
	item_audit(q, it, "timeout", "%s", reason);
	item_refuse(q, it, "timeout", "timeout", reason);
}

static void arm(struct sbx_reviews *q, struct item *it, uint64_t delay_ms)
{
	if (it->timer)
		sbx_loop_timer_cancel(q->d->loop, it->timer);
	it->deadline = sbx_monotonic_ms() + delay_ms;
	it->timer = sbx_loop_timer(q->d->loop, delay_ms, on_deadline, it);
}

/* Headers that carry credentials or change on every retry: masked in copies, left out of the
 * digest that recognises a retry. */
static bool header_secret(struct sbx_http_str name)
{
	static const char *const exact[] = {"authorization", "proxy-authorization", "cookie", "x-api-key",
					    "x-goog-api-key", "x-amz-security-token", NULL};
	static const char *const parts[] = {"token", "secret", "key", "auth", "session", "password", "signature", NULL};
	char n[64];

	if (name.len >= sizeof(n))
		return true; /* unusual enough to mask */
	for (size_t i = 0; i < name.len; i++)
		n[i] = (char)(name.p[i] >= 'A' && name.p[i] <= 'Z' ? name.p[i] + 32 : name.p[i]);
	n[name.len] = '\0';
	for (size_t i = 0; exact[i]; i++)
		if (strcmp(n, exact[i]) == 0)
			return true;
	for (size_t i = 0; parts[i]; i++)
		if (strstr(n, parts[i]))
			return true;
	return false;
}

static bool header_volatile(struct sbx_http_str name, bool credential_injected)
{
	/* The agent's own credential is part of what was approved, unless the proxy replaces it. */
	static const char *const cred[] = {"authorization", "x-amz-date", "x-amz-security-token",
					   "x-amz-content-sha256", NULL};
	for (size_t i = 0; cred[i]; i++)
		if (sbx_http_str_ieq(name, cred[i]))
			return credential_injected;
	/* Content-Length and Transfer-Encoding stay in: with a body longer than the part the digest
	 * sees, they are what tells two such bodies apart. */
	static const char *const names[] = {"date", "amz-sdk-request", "amz-sdk-invocation-id", "connection",
					    "keep-alive", "proxy-connection", NULL};

	for (size_t i = 0; names[i]; i++)
		if (sbx_http_str_ieq(name, names[i]))
			return true;
	return false;
}

static char *headers_copy(const struct sbx_http_msg *m)
{
	size_t cap = SBX_REVIEW_HEADERS_MAX, len = 0;
	char *out = malloc(cap);

	if (!out)
		return NULL;
	out[0] = '\0';
	for (size_t i = 0; m && i < m->nheaders; i++) {
		const struct sbx_http_header *h = &m->headers[i];
		char name[128], value[512], shown[600];
		int w;

		sbx_audit_sanitize(name, sizeof(name), h->name.p, h->name.len);
		if (header_secret(h->name)) {
			/* the scheme word of an Authorization value helps; the credential does not */
			size_t sp = 0;
			while (sp < h->value.len && sp < 16 && h->value.p[sp] != ' ')
				sp++;
			if (sp < h->value.len && sp < 16 && sbx_http_str_ieq(h->name, "authorization"))
				snprintf(shown, sizeof(shown), "%.*s ****** (%zu characters)", (int)sp, h->value.p,
					 h->value.len);
			else
				snprintf(shown, sizeof(shown), "****** (%zu characters)", h->value.len);
		} else {
			sbx_audit_sanitize(value, sizeof(value), h->value.p, h->value.len);
			snprintf(shown, sizeof(shown), "%s%s", value, h->value.len >= sizeof(value) ? "..." : "");
		}
		w = snprintf(out + len, cap - len, "%s: %s\n", name, shown);
		if (w < 0 || (size_t)w >= cap - len) {
			out[len] = '\0';
			break; /* capped */
		}
		len += (size_t)w;
	}
	return out;
}

static void digest_add(EVP_MD_CTX *ctx, const void *p, size_t n)
{
	uint64_t be = 0;

	for (int i = 0; i < 8; i++)
		be = (be << 8) | ((uint64_t)n >> (8 * (7 - i)) & 0xff);
	/* length-prefixed, so that no two different requests serialise alike */
	EVP_DigestUpdate(ctx, &be, sizeof(be));
	if (n)
		EVP_DigestUpdate(ctx, p, n);
}

static int request_digest(const struct sbx_review_req *r, unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned len = 0;
	char port[8];
	int ok;

	if (!ctx)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	if (ok) {
		snprintf(port, sizeof(port), "%u", r->port);
		digest_add(ctx, "sbx-review-v1", 13);
		digest_add(ctx, r->sandbox_id, strlen(r->sandbox_id));
		digest_add(ctx, r->method, strlen(r->method));
		digest_add(ctx, r->scheme, strlen(r->scheme));
		digest_add(ctx, r->host, strlen(r->host));
		digest_add(ctx, port, strlen(port));
		digest_add(ctx, r->target, strlen(r->target));
		digest_add(ctx, r->action, strlen(r->action));
		for (size_t i = 0; r->msg && i < r->msg->nheaders; i++) {
			const struct sbx_http_header *h = &r->msg->headers[i];
			if (header_volatile(h->name, r->credential_injected))
				continue;
			digest_add(ctx, h->name.p, h->name.len);
			digest_add(ctx, h->value.p, h->value.len);
		}
		digest_add(ctx, r->body_complete ? "complete" : "partial", r->body_complete ? 8 : 7);
		digest_add(ctx, r->body, r->body_len);
		ok = EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == 32;
	}
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

static size_t sandbox_count(struct sbx_reviews *q, const char *sandbox_id)
{
	size_t n = 0;

	for (struct item *it = q->items; it; it = it->next)
		if (strcmp(it->sandbox_id, sandbox_id) == 0)
			n++;
	return n;
}

static int new_id(struct sbx_reviews *q, char id[SBX_REVIEW_ID_SIZE])
{
	char hex[9];

	for (int tries = 0; tries < 16; tries++) {
		if (sbx_random_hex(hex, 4) < 0)
			return -1;
		snprintf(id, SBX_REVIEW_ID_SIZE, "r-%s", hex);
		if (!item_find(q, id))
			return 0;
	}
	return -1;
}

enum sbx_review_hold_result sbx_review_hold(struct sbx_reviews *q, const struct sbx_review_req *r, void *conn,
					    char id[SBX_REVIEW_ID_SIZE], char *reason, size_t reason_size)
{
	unsigned char digest[32];
	struct item *it;
	char t[24];

	id[0] = '\0';
	if (request_digest(r, digest) < 0) {
		snprintf(reason, reason_size, "out of memory holding the request for review");
		return SBX_REVIEW_REFUSED;
	}
	/* The retry of a request already filed, whose client gave up waiting. */
	for (it = q->items; it; it = it->next) {
		if (it->conn || strcmp(it->sandbox_id, r->sandbox_id) != 0 || memcmp(it->digest, digest, 32) != 0)
			continue;
		sbx_strlcpy(id, it->id, SBX_REVIEW_ID_SIZE);
		if (it->state == I_APPROVED) {
			if (!r->body_complete)
				continue; /* only the part of the body the digest saw was approved */
			item_audit(q, it, "retry", "%s: the client sent the approved request again", it->id);
			item_drop(q, it);
			return SBX_REVIEW_PREAPPROVED;
		}
		it->conn = conn;
		log_info("review %s: the client of sandbox %s sent the request again; it waits on the same item", it->id,
			 it->sandbox_name);
		return SBX_REVIEW_HELD;
	}
	if (q->count >= SBX_REVIEW_MAX || sandbox_count(q, r->sandbox_id) >= SBX_REVIEW_MAX_PER_SANDBOX) {
		snprintf(reason, reason_size,
			 "too many requests are waiting for review (at most %u per sandbox, %u in all): decide some "
			 "with sbx review ls / approve / deny",
			 SBX_REVIEW_MAX_PER_SANDBOX, SBX_REVIEW_MAX);
		return SBX_REVIEW_REFUSED;
	}
	if (!(it = calloc(1, sizeof(*it))) || new_id(q, it->id) < 0) {
		free(it);
		snprintf(reason, reason_size, "out of memory holding the request for review");
		return SBX_REVIEW_REFUSED;
	}
	it->q = q;
	it->state = I_HELD;
	sbx_strlcpy(it->sandbox_id, r->sandbox_id, sizeof(it->sandbox_id));
	sbx_strlcpy(it->sandbox_name, r->sandbox_name, sizeof(it->sandbox_name));
	sbx_strlcpy(it->via, r->via, sizeof(it->via));
	sbx_strlcpy(it->rule, r->rule, sizeof(it->rule));
	sbx_strlcpy(it->classifier, r->classifier ? r->classifier : "", sizeof(it->classifier));
	sbx_strlcpy(it->action, r->action, sizeof(it->action));
	sbx_audit_sanitize(it->why, sizeof(it->why), r->why, strlen(r->why));
	sbx_strlcpy(it->method, r->method, sizeof(it->method));
	sbx_strlcpy(it->scheme, r->scheme, sizeof(it->scheme));
	sbx_strlcpy(it->host, r->host, sizeof(it->host));
	it->port = r->port;
	it->target_cut = sbx_audit_sanitize(it->target, sizeof(it->target), r->target, strlen(r->target)) <
			 strlen(r->target);
	sbx_strlcpy(it->path, r->target, sizeof(it->path));
	it->path[strcspn(it->path, "?")] = '\0';
	it->headers = headers_copy(r->msg);
	it->preview = malloc(SBX_REVIEW_PREVIEW_MAX + 1);
	if (it->preview)
		sbx_audit_sanitize(it->preview, SBX_REVIEW_PREVIEW_MAX + 1, (const char *)r->body,
				   r->body_len < SBX_REVIEW_PREVIEW_MAX ? r->body_len : SBX_REVIEW_PREVIEW_MAX);
	it->body_len = r->body_len;
	it->body_complete = r->body_complete;
	it->needed = r->needed >= 2 ? 2 : 1;
	it->timeout_ms = r->timeout_ms ? r->timeout_ms : SBX_REVIEW_DEFAULT_TIMEOUT_MS;
	it->created_ms = (int64_t)sbx_now_ms();
	memcpy(it->digest, digest, 32);
	if (!it->headers || !it->preview) {
		item_free(it);
		snprintf(reason, reason_size, "out of memory holding the request for review");
		return SBX_REVIEW_REFUSED;
	}
	duration_text(it->timeout_ms, t, sizeof(t));
	/* Held only once the log has it. */
	if (item_audit(q, it, "held", "%s: %s; needs %u approval%s within %s", it->id, it->why, it->needed,
		       it->needed > 1 ? "s from different approvers" : "", t) < 0) {
		item_free(it);
		snprintf(reason, reason_size, "the request needs review, and the audit log cannot record it right now");
		return SBX_REVIEW_REFUSED;
	}
	it->conn = conn;
	/* append: the queue lists oldest first */
	{
		struct item **pp = &q->items;
		while (*pp)
			pp = &(*pp)->next;
		*pp = it;
	}
	q->count++;
	arm(q, it, it->timeout_ms);
	sbx_strlcpy(id, it->id, SBX_REVIEW_ID_SIZE);
	log_info("review %s: held %s %s:%u%s from sandbox %s (%s)", it->id, it->method, it->host, it->port, it->path,
		 it->sandbox_name, it->why);
	notify(q, it, "review", NULL);
	return SBX_REVIEW_HELD;
}

void sbx_review_detach(struct sbx_reviews *q, const char *id, void *conn)
{
	struct item *it = q && id && id[0] ? item_find(q, id) : NULL;

	if (it && it->conn == conn)
		it->conn = NULL;
}

void sbx_review_sandbox_gone(struct sbx_reviews *q, const char *sandbox_id)
{
	struct item *it, *next;

	if (!q)
		return;
	for (it = q->items; it; it = next) {
		next = it->next;
		if (strcmp(it->sandbox_id, sandbox_id) != 0)
			continue;
		item_audit(q, it, it->state == I_HELD ? "refused" : "expired",
			   it->state == I_HELD ? "%s: refused, the sandbox stopped before a decision"
					       : "%s: approved, but the sandbox stopped before the client sent it again",
			   it->id);
		item_refuse(q, it, "refused", "gone", "the sandbox stopped before the request was reviewed");
	}
}

void sbx_reviews_free(struct sbx_reviews *q)
{
	if (!q)
		return;
	while (q->items) {
		struct item *it = q->items;
		item_audit(q, it, it->state == I_HELD ? "refused" : "expired",
			   it->state == I_HELD ? "%s: refused, the daemon stopped before a decision"
					       : "%s: approved, but the daemon stopped before the client sent it again",
			   it->id);
		item_refuse(q, it, "refused", "gone", "the sbx daemon stopped before the request was reviewed");
	}
	free(q);
}

int sbx_review_shape_of(struct sbx_reviews *q, const char *id, struct sbx_review_shape *out, sbx_err *err)
{
	struct item *it = item_find(q, id);

	if (!it || it->state != I_HELD)
		return sbx_err_set(err, SBX_E_NOTFOUND,
				   "no request %s is waiting for review (decided or timed out already? sbx policy log "
				   "shows what happened)",
				   id);
	memset(out, 0, sizeof(*out));
	sbx_strlcpy(out->sandbox, it->sandbox_name, sizeof(out->sandbox));
	sbx_strlcpy(out->host, it->host, sizeof(out->host));
	out->port = it->port;
	sbx_strlcpy(out->method, it->method, sizeof(out->method));
	sbx_strlcpy(out->path, it->path, sizeof(out->path));
	sbx_strlcpy(out->action, it->action, sizeof(out->action));
	out->host_is_name = !strchr(it->host, ':') && strspn(it->host, "0123456789.") != strlen(it->host);
	out->has_query = strchr(it->target, '?') != NULL;
	out->needed = it->needed;
	return 0;
}

static json_t *approvals_json(const struct item *it)
{
	json_t *a = json_array();

	for (uint32_t i = 0; a && i < it->napproved; i++)
		json_array_append_new(a, json_string(it->approvers[i]));
	return a;
}

int sbx_review_approve(struct sbx_reviews *q, const char *id, const char *approver, json_t **out, sbx_err *err)
{
	struct item *it = item_find(q, id);
	char who[sizeof(it->approvers[0]) * 2 + 8];

	*out = NULL;
	if (!it || it->state != I_HELD)
		return sbx_err_set(err, SBX_E_NOTFOUND,
				   "no request %s is waiting for review (decided or timed out already? sbx policy log "
				   "shows what happened)",
				   id);
	for (uint32_t i = 0; i < it->napproved; i++)
		if (strcmp(it->approvers[i], approver) == 0)
			return sbx_err_set(err, SBX_E_CONFLICT,
					   "%s has already approved %s; it needs %u approvals from different people "
					   "(another approver: sbx review approve %s --as NAME)",
					   approver, id, it->needed, id);
	if (it->napproved + 1 < it->needed) {
		if (item_audit(q, it, "approval", "%s approved by %s (%u of %u)", id, approver, it->napproved + 1,
			       it->needed) < 0)
			return sbx_err_set(err, SBX_E_IO, "the audit log cannot record the approval now; try again");
		sbx_strlcpy(it->approvers[it->napproved++], approver, sizeof(it->approvers[0]));
		*out = json_pack("{s:s, s:s, s:o, s:i, s:b}", "id", id, "state", "held", "approvals", approvals_json(it),
				 "needed", (int)it->needed, "sent", 0);
		return 0;
	}
	snprintf(who, sizeof(who), "%s%s%s", it->napproved ? it->approvers[0] : "", it->napproved ? ", " : "", approver);
	if (item_audit(q, it, "approved", "%s approved by %s", id, who) < 0)
		return sbx_err_set(err, SBX_E_IO, "the audit log cannot record the approval now; try again");
	sbx_strlcpy(it->approvers[it->napproved++], approver, sizeof(it->approvers[0]));
	*out = json_pack("{s:s, s:s, s:o, s:i, s:b}", "id", id, "state", "approved", "approvals", approvals_json(it),
			 "needed", (int)it->needed, "sent", it->conn != NULL);
	if (it->conn) {
		void *conn = it->conn;
		char reason[200];
		snprintf(reason, sizeof(reason), "%s approved by %s", id, who);
		it->conn = NULL;
		it->state = I_APPROVED;
		notify(q, it, "review-done", "approved");
		item_drop(q, it);
		q->release(conn, true, "approved", reason);
		return 0;
	}
	/* Its client gave up waiting: the identical retry goes through once, for a while. */
	it->state = I_APPROVED;
	notify(q, it, "review-done", "approved");
	arm(q, it, SBX_REVIEW_RETRY_GRACE_MS);
	return 0;
}

int sbx_review_deny(struct sbx_reviews *q, const char *id, const char *approver, const char *reason, json_t **out,
		    sbx_err *err)
{
	struct item *it = item_find(q, id);
	char why[300], clean[160] = "";

	*out = NULL;
	if (!it)
		return sbx_err_set(err, SBX_E_NOTFOUND,
				   "no request %s is waiting for review (decided or timed out already? sbx policy log "
				   "shows what happened)",
				   id);
	if (reason)
		sbx_audit_sanitize(clean, sizeof(clean), reason, strlen(reason));
	snprintf(why, sizeof(why), "%s refused in review by %s%s%s", id, approver, clean[0] ? ": " : "", clean);
	/* A refusal goes ahead even if the log cannot take it: it only ever closes. */
	item_audit(q, it, "refused", "%s", why);
	*out = json_pack("{s:s, s:s}", "id", id, "state", "denied");
	item_refuse(q, it, "refused", "denied", why);
	return 0;
}

static json_t *item_json(const struct item *it, bool detail)
{
	char url[1400];
	uint64_t now = sbx_monotonic_ms();
	json_t *o;

	url_text(it, url, sizeof(url));
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:o, s:b, s:s}", "id", it->id,
		      "state", it->state == I_HELD ? "held" : "approved", "sandbox", it->sandbox_name, "rule", it->rule,
		      "classifier", it->classifier, "action", it->action, "method", it->method, "url", url, "reason",
		      it->why, "created_ms", (json_int_t)it->created_ms, "age_ms",
		      (json_int_t)((int64_t)sbx_now_ms() - it->created_ms), "expires_in_ms",
		      (json_int_t)(it->deadline > now ? it->deadline - now : 0), "needed", (int)it->needed, "approvals",
		      approvals_json(it), "client_connected", it->conn != NULL, "host", it->host);
	if (o && detail) {
		json_t *h = json_array();
		const char *p = it->headers;
		while (h && p && *p) {
			const char *nl = strchr(p, '\n'), *colon = strstr(p, ": ");
			if (!nl || !colon || colon > nl)
				break;
			json_array_append_new(h, json_pack("[s#, s#]", p, (int)(colon - p), colon + 2, (int)(nl - colon - 2)));
			p = nl + 1;
		}
		json_object_set_new(o, "headers", h ? h : json_array());
		json_object_set_new(o, "body_preview", json_string(it->preview ? it->preview : ""));
		json_object_set_new(o, "body_bytes", json_integer((json_int_t)it->body_len));
		json_object_set_new(o, "body_truncated",
				    json_boolean(!it->body_complete || it->body_len > SBX_REVIEW_PREVIEW_MAX));
		json_object_set_new(o, "port", json_integer(it->port));
	}
	return o;
}

json_t *sbx_review_list(struct sbx_reviews *q, const char *sandbox_name)
{
	json_t *a = json_array();

	for (struct item *it = q->items; a && it; it = it->next)
		if (!sandbox_name || strcmp(it->sandbox_name, sandbox_name) == 0)
			json_array_append_new(a, item_json(it, false));
	return json_pack("{s:o}", "reviews", a ? a : json_array());
}

json_t *sbx_review_get(struct sbx_reviews *q, const char *id, sbx_err *err)
{
	struct item *it = item_find(q, id);

	if (!it) {
		sbx_err_set(err, SBX_E_NOTFOUND,
			    "no request %s is waiting for review (decided or timed out already? sbx policy log shows "
			    "what happened)",
			    id);
		return NULL;
	}
	return item_json(it, true);
}
