// FUZZ_SOURCES: src/daemon/classify.c src/common/http1.c
// FUZZ_LIBS: -lcrypto -lz
/* fuzz_classify.c - libFuzzer target for the review queue's classifiers (src/daemon/classify.c).
 *
 * Input: one flags byte, then an HTTP/1.1 request head (parsed by the real parser; inputs whose
 * head does not parse are skipped), then the body (the payload, as the proxy passes it). Flags:
 * bits 0-2 the enabled classifiers (0 = all), bits 3-6 pick extra prefix lengths, bit 7 passes
 * no parsed head (msg NULL). The host is the Host header, lowercased, without its port.
 *
 * Beyond memory safety it checks the module's promises with abort():
 *   - a complete body, or one at the cap, never gets MORE; a body longer than the cap is judged
 *     exactly like its first SBX_CLASSIFY_BODY_MAX bytes;
 *   - a HOLD names an enabled classifier and has a non-empty action and reason, NUL-terminated
 *     in their arrays and printable ASCII; PASS and MORE leave both empty;
 *   - results are deterministic (byte for byte);
 *   - a verdict stands: once a prefix (incomplete, below the cap) gets PASS or HOLD, every
 *     longer prefix and the complete body get the same verdict (with one classifier enabled,
 *     the same result byte for byte);
 *   - the classifiers compose: on the complete body, the verdict with several enabled is HOLD
 *     exactly when one of them alone holds, and then equals the first of them in the order
 *     AWS, git, http-delete;
 *   - when sbx_classify_wants_body() says no, the verdict without any body is the verdict with
 *     all of it.
 * Build and run with fuzz/Makefile; replay_main.c replays corpora without libFuzzer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/classify.h"
#include "http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define MAX_INPUT (128 * 1024)
#define CAP SBX_CLASSIFY_BODY_MAX

static bool printable_in(const char *s, size_t cap)
{
	const char *end = memchr(s, '\0', cap);

	if (!end)
		return false;
	for (; s < end; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static void check_result(const struct sbx_classify_result *r, unsigned enabled)
{
	CHECK(r->verdict == SBX_CLASSIFY_PASS || r->verdict == SBX_CLASSIFY_HOLD || r->verdict == SBX_CLASSIFY_MORE);
	CHECK(printable_in(r->action, sizeof(r->action)) && printable_in(r->reason, sizeof(r->reason)));
	if (r->verdict == SBX_CLASSIFY_HOLD) {
		CHECK((unsigned)r->which < SBX_CLS_COUNT && (enabled & (1u << r->which)));
		CHECK(r->action[0] && r->reason[0]);
	} else {
		CHECK(!r->action[0] && !r->reason[0]);
	}
}

static void run(struct sbx_classify_input *in, const uint8_t *body, size_t len, bool complete, unsigned enabled,
		struct sbx_classify_result *r)
{
	struct sbx_classify_result again;

	in->body = body;
	in->body_len = len;
	in->body_complete = complete;
	sbx_classify(in, enabled, r);
	check_result(r, enabled);
	if (complete || len >= CAP)
		CHECK(r->verdict != SBX_CLASSIFY_MORE);
	sbx_classify(in, enabled, &again);
	CHECK(memcmp(r, &again, sizeof(again)) == 0);
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sbx_http_msg msg;
	static uint8_t *capbuf;
	struct sbx_http_error err;
	struct sbx_classify_input in;
	struct sbx_classify_result full, r, first_r = {0};
	char method[SBX_HTTP_MAX_METHOD + 1], host[256], *target;
	const uint8_t *body;
	size_t blen, hl, lens[12], nlens = 0;
	unsigned enabled;
	bool decided = false;

	if (size < 1 || size > MAX_INPUT)
		return 0;
	enabled = (data[0] & 7) ? (data[0] & 7u) : SBX_CLS_ALL;
	if (sbx_http_parse_request((const char *)data + 1, size - 1, &msg, &err) != SBX_HTTP_OK)
		return 0;
	body = data + 1 + msg.head_len;
	blen = size - 1 - msg.head_len;

	memcpy(method, msg.method.p, msg.method.len);
	method[msg.method.len] = '\0';
	target = malloc(msg.target.len + 1);
	if (!target)
		return 0;
	memcpy(target, msg.target.p, msg.target.len);
	target[msg.target.len] = '\0';
	hl = 0;
	if (msg.host.len && msg.host.p[0] != '[') {
		const char *colon = memrchr(msg.host.p, ':', msg.host.len);

		hl = colon ? (size_t)(colon - msg.host.p) : msg.host.len;
		if (hl >= sizeof(host))
			hl = sizeof(host) - 1;
		for (size_t i = 0; i < hl; i++)
			host[i] = (char)((msg.host.p[i] >= 'A' && msg.host.p[i] <= 'Z') ? msg.host.p[i] + 32 : msg.host.p[i]);
	}
	host[hl] = '\0';
	in = (struct sbx_classify_input){host, method, target, (data[0] & 0x80) ? NULL : &msg, NULL, 0, true};

	/* The complete body. */
	run(&in, body, blen, true, enabled, &full);

	/* Composition: each enabled classifier alone. */
	{
		static const enum sbx_classifier order[] = {SBX_CLS_AWS, SBX_CLS_GIT_PUSH, SBX_CLS_HTTP_DELETE};
		bool any = false;

		for (size_t i = 0; i < 3; i++) {
			if (!(enabled & (1u << order[i])))
				continue;
			run(&in, body, blen, true, 1u << order[i], &r);
			if (r.verdict == SBX_CLASSIFY_HOLD && !any) {
				any = true;
				CHECK(memcmp(&r, &full, sizeof(r)) == 0);
			}
		}
		CHECK(any == (full.verdict == SBX_CLASSIFY_HOLD));
	}

	/* Prefixes: a verdict on one stands for every longer one. */
	lens[nlens++] = 0;
	for (size_t k = 1; k < 8; k++)
		lens[nlens++] = blen * k / 8;
	lens[nlens++] = blen ? blen - 1 : 0;
	lens[nlens++] = blen;
	lens[nlens++] = blen ? ((size_t)(data[0] >> 3 & 15) * 7919u) % (blen + 1) : 0;
	qsort(lens, nlens, sizeof(lens[0]), cmp_size);
	for (size_t i = 0; i < nlens; i++) {
		if (i && lens[i] == lens[i - 1])
			continue;
		run(&in, body, lens[i], false, enabled, &r);
		if (decided)
			CHECK(r.verdict == first_r.verdict);
		else if (r.verdict != SBX_CLASSIFY_MORE) {
			decided = true;
			first_r = r;
		}
	}
	if (decided) {
		CHECK(full.verdict == first_r.verdict);
		/* One classifier decides at a point of the body that does not move: the whole result
		 * is the same. (Several may not: a later one can hold while an earlier one still
		 * reads, and the earlier one wins once it holds.) */
		if ((enabled & (enabled - 1)) == 0)
			CHECK(memcmp(&full, &first_r, sizeof(full)) == 0);
	}

	/* Not wanted: the body changes nothing. */
	if (!sbx_classify_wants_body(&in, enabled)) {
		run(&in, body, 0, false, enabled, &r);
		CHECK(memcmp(&r, &full, sizeof(r)) == 0);
	}

	/* The cap: the body followed by zeros up to (and past) it. */
	if (!capbuf)
		capbuf = calloc(1, CAP + 64);
	if (capbuf && blen < CAP) {
		struct sbx_classify_result over;

		memcpy(capbuf, body, blen);
		run(&in, capbuf, CAP, false, enabled, &r);
		run(&in, capbuf, CAP + 64, true, enabled, &over);
		CHECK(memcmp(&r, &over, sizeof(r)) == 0);
		memset(capbuf, 0, blen);
	}

	free(target);
	return 0;
}
