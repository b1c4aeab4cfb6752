/* api_check.c - shared request-body checks (api_check.h). */
#include "api_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

json_t *sbx_api_fail(sbx_err *err, enum sbx_errc code, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	err->sys_errno = 0;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return NULL;
}

int sbx_api_only_keys(json_t *body, const char *const *accepted, sbx_err *err)
{
	const char *key;
	json_t *v;

	json_object_foreach(body, key, v)
	{
		bool ok = false;
		for (size_t i = 0; accepted[i]; i++)
			ok = ok || strcmp(key, accepted[i]) == 0;
		if (!ok) {
			char list[256] = "";
			for (size_t i = 0; accepted[i]; i++) {
				size_t l = strlen(list);
				snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "", accepted[i]);
			}
			return sbx_err_set(err, SBX_E_INVALID, "unknown field '%.64s' in the request: accepted fields are %s",
					   key, list[0] ? list : "none");
		}
	}
	return 0;
}

bool sbx_api_printable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
			return false;
	return true;
}
