// FUZZ_SOURCES: src/common/termseq.c
/* fuzz_termseq.c - libFuzzer target for the terminal stream tracker (src/common/termseq.c),
 * which reads an agent's output on its way to the user's terminal.
 *
 * Beyond memory safety the target checks with abort():
 *   - the state is always one of the known ones, and a UTF-8 count is pending exactly in the
 *     UTF-8 state (at most 3);
 *   - chunking never changes the answer: the input fed whole, byte by byte (each byte in its own
 *     heap copy), and split at two points chosen by the first bytes end in the same state, and
 *     so does every prefix fed whole against the byte-by-byte walk;
 *   - from wherever the input leaves the stream, CAN, SUB and ESC \ each return to ground, and
 *     sbx's own title sequence written in ground leaves it there.
 * Build and run with fuzz/Makefile; replay_main.c replays corpora without libFuzzer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "termseq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void check_state(const struct sbx_termseq *t)
{
	CHECK((unsigned)t->state < SBX_TS_COUNT_);
	CHECK((t->state == SBX_TS_UTF8) == (t->utf8_left > 0));
	CHECK(t->utf8_left <= 3);
	CHECK(sbx_termseq_ground(t) == (t->state == SBX_TS_GROUND));
}

static struct sbx_termseq after(const uint8_t *data, size_t n)
{
	struct sbx_termseq t;

	sbx_termseq_init(&t);
	sbx_termseq_feed(&t, data, n);
	check_state(&t);
	return t;
}

static void check_recovery(const struct sbx_termseq *from, const char *bytes, size_t n)
{
	struct sbx_termseq t = *from;

	sbx_termseq_feed(&t, bytes, n);
	CHECK(sbx_termseq_ground(&t));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char title[] = "\033[22;0t\033]2;sbx: 3 request(s) held for review - sbx review ls\007\007";
	struct sbx_termseq whole = after(data, size), t;

	/* Byte by byte; each prefix fed whole agrees with the walk so far (small inputs only: the
	 * prefixes cost size^2). */
	sbx_termseq_init(&t);
	for (size_t i = 0; i < size; i++) {
		uint8_t *one = malloc(1);
		CHECK(one);
		*one = data[i];
		sbx_termseq_feed(&t, one, 1);
		free(one);
		check_state(&t);
		if (size <= 512) {
			struct sbx_termseq p = after(data, i + 1);
			CHECK(p.state == t.state && p.utf8_left == t.utf8_left);
		}
	}
	CHECK(t.state == whole.state && t.utf8_left == whole.utf8_left);

	/* Three chunks, cut where the first two bytes say. */
	if (size >= 2) {
		size_t a = data[0] % (size + 1), b = data[1] % (size + 1);
		if (a > b) {
			size_t x = a;
			a = b;
			b = x;
		}
		sbx_termseq_init(&t);
		sbx_termseq_feed(&t, data, a);
		sbx_termseq_feed(&t, data + a, b - a);
		sbx_termseq_feed(&t, data + b, size - b);
		CHECK(t.state == whole.state && t.utf8_left == whole.utf8_left);
	}

	check_recovery(&whole, "\030", 1);
	check_recovery(&whole, "\032", 1);
	check_recovery(&whole, "\033\\", 2);
	t = whole;
	sbx_termseq_feed(&t, "\030", 1);
	check_recovery(&t, title, sizeof(title) - 1);
	return 0;
}
