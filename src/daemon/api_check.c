/* api_check.c - shared request-body checks (api_check.h). */
#include "api_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

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

int sbx_api_opt_str(json_t *body, const char *key, size_t max, bool controls_ok, const char **out, sbx_err *err)
{
	json_t *v = json_object_get(body, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return sbx_err_set(err, SBX_E_INVALID, "'%s' must be a string", key);
	if (json_string_length(v) > max)
		return sbx_err_set(err, SBX_E_INVALID, "'%s' is too long (at most %zu characters)", key, max);
	if (strlen(json_string_value(v)) != json_string_length(v) ||
	    (!controls_ok && !sbx_api_printable(json_string_value(v))))
		return sbx_err_set(err, SBX_E_INVALID, "'%s' contains control characters", key);
	*out = json_string_value(v);
	return 0;
}

int sbx_api_opt_bool(json_t *body, const char *key, bool *out, bool *given, sbx_err *err)
{
	json_t *v = json_object_get(body, key);

	*out = false;
	if (given)
		*given = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return sbx_err_set(err, SBX_E_INVALID, "'%s' must be true or false", key);
	*out = json_is_true(v);
	if (given)
		*given = true;
	return 0;
}

int sbx_api_opt_int(json_t *body, const char *key, int64_t min, int64_t max, int64_t *out, bool *given, sbx_err *err)
{
	json_t *v = json_object_get(body, key);

	*given = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return sbx_err_set(err, SBX_E_INVALID, "'%s' must be a whole number from %lld to %lld", key, (long long)min,
				   (long long)max);
	*out = json_integer_value(v);
	*given = true;
	return 0;
}

int sbx_api_opt_sandbox(json_t *body, const char **out, sbx_err *err)
{
	if (sbx_api_opt_str(body, "sandbox", 63, false, out, err) < 0)
		return -1;
	if (*out && !**out)
		*out = NULL;
	if (*out && !sbx_name_valid(*out))
		return sbx_err_set(err, SBX_E_INVALID,
				   "invalid sandbox name '%s': use 1-63 letters, digits, '-', '_' or '.', starting with a "
				   "letter or digit",
				   *out);
	return 0;
}
