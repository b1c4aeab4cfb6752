/* api_check.h - checking API request bodies: the idioms the policy and secret handlers share. */
#ifndef SBX_API_CHECK_H
#define SBX_API_CHECK_H

#include <jansson.h>
#include <stdbool.h>

#include "err.h"

/* Fills err and returns NULL: a handler's way to fail. */
json_t *sbx_api_fail(sbx_err *err, enum sbx_errc code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Refuses fields other than the accepted ones (a NULL-terminated list), naming them. */
int sbx_api_only_keys(json_t *body, const char *const *accepted, sbx_err *err);
/* No C0 controls, no DEL, no C1 controls in their UTF-8 form (U+0080..U+009F, which some
 * terminals obey like ESC sequences). */
bool sbx_api_printable(const char *s);

#endif
