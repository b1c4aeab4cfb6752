/* tap.h - a minimal TAP producer for the C unit tests (one binary per module).
 * Run under pytest (tests/test_unit.py), each TAP line becomes a test result. */
#ifndef SBX_TAP_H
#define SBX_TAP_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int tap_n_, tap_failed_;

static inline int tap_ok_(int cond, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline int tap_ok_(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_n_++;
	printf("%s %d - ", cond ? "ok" : "not ok", tap_n_);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failed_++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) tap_ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...)                                                                      \
	do {                                                                                        \
		long long g_ = (long long)(got), w_ = (long long)(want);                            \
		if (!tap_ok_(g_ == w_, __FILE__, __LINE__, __VA_ARGS__))                            \
			printf("#   got %lld, want %lld\n", g_, w_);                                    \
	} while (0)
#define is_str(got, want, ...)                                                                      \
	do {                                                                                        \
		const char *g_ = (got), *w_ = (want);                                               \
		int eq_ = (g_ && w_) ? strcmp(g_, w_) == 0 : g_ == w_;                              \
		if (!tap_ok_(eq_, __FILE__, __LINE__, __VA_ARGS__))                                 \
			printf("#   got '%s', want '%s'\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)");  \
	} while (0)
#define diag(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

static inline int done_testing(void)
{
	printf("1..%d\n", tap_n_);
	return tap_failed_ ? 1 : 0;
}

#endif
