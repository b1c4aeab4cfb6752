/* api_check.h - checking API request bodies: the idioms the policy and secret handlers share. */
#ifndef SBX_API_CHECK_H
#define SBX_API_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* Fills err and returns NULL: a handler's way to fail. */
json_t *sbx_api_fail(sbx_err *err, enum sbx_errc code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Refuses fields other than the accepted ones (a NULL-terminated list), naming them. */
int sbx_api_only_keys(json_t *body, const char *const *accepted, sbx_err *err);
/* No C0 controls, no DEL, no C1 controls in their UTF-8 form (U+0080..U+009F, which some
 * terminals obey like ESC sequences). */
bool sbx_api_printable(const char *s);

/* Optional body fields: absent or null leaves *out NULL/false/untouched and *given false. A
 * string must be valid text of at most max characters without control characters (unless
 * controls_ok: the caller checks its own way); an integer must lie in [min, max]. */
int sbx_api_opt_str(json_t *body, const char *key, size_t max, bool controls_ok, const char **out, sbx_err *err);
int sbx_api_opt_bool(json_t *body, const char *key, bool *out, bool *given, sbx_err *err);
int sbx_api_opt_int(json_t *body, const char *key, int64_t min, int64_t max, int64_t *out, bool *given,
		    sbx_err *err);
/* "sandbox": a sandbox name, or NULL for absent/"" (global scope). */
int sbx_api_opt_sandbox(json_t *body, const char **out, sbx_err *err);

#endif
