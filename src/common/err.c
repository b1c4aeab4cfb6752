#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int exit_code;
	int http_status;
} errc_table[SBX_E_COUNT_] = {
	[SBX_E_OK] = {"ok", 0, 200},
	[SBX_E_INTERNAL] = {"internal", 70, 500},
	[SBX_E_USAGE] = {"usage", 64, 400},
	[SBX_E_INVALID] = {"invalid", 65, 400},
	[SBX_E_NOINPUT] = {"no_input", 66, 422},
	[SBX_E_NOTFOUND] = {"not_found", 67, 404},
	[SBX_E_CONFLICT] = {"conflict", 73, 409},
	[SBX_E_UNSUPPORTED] = {"unsupported", 69, 501},
	[SBX_E_PERM] = {"permission", 77, 403},
	[SBX_E_DAEMON] = {"daemon", 75, 503},
	[SBX_E_IO] = {"io", 74, 500},
};

static void __attribute__((format(printf, 2, 0))) vformat(sbx_err *err, const char *fmt, va_list ap)
{
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int sbx_err_set(sbx_err *err, enum sbx_errc code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	err->code = code;
	err->sys_errno = 0;
	va_start(ap, fmt);
	vformat(err, fmt, ap);
	va_end(ap);
	return -1;
}

int sbx_err_sys(sbx_err *err, enum sbx_errc code, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t len;

	if (!err)
		return -1;
	err->code = code;
	err->sys_errno = errnum;
	va_start(ap, fmt);
	vformat(err, fmt, ap);
	va_end(ap);
	len = strlen(err->msg);
	if (len < sizeof(err->msg))
		snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", strerror(errnum));
	return -1;
}

int sbx_err_wrap(sbx_err *err, const char *fmt, ...)
{
	char prefix[512];
	char old[sizeof(err->msg)];
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	if (err->code == SBX_E_OK)
		err->code = SBX_E_INTERNAL;
	return -1;
}

void sbx_err_clear(sbx_err *err)
{
	err->code = SBX_E_OK;
	err->sys_errno = 0;
	err->msg[0] = '\0';
}

const char *sbx_errc_name(enum sbx_errc code)
{
	if ((unsigned)code >= SBX_E_COUNT_)
		return "internal";
	return errc_table[code].name;
}

enum sbx_errc sbx_errc_from_name(const char *name)
{
	for (int i = 0; i < SBX_E_COUNT_; i++)
		if (name && strcmp(errc_table[i].name, name) == 0)
			return (enum sbx_errc)i;
	return SBX_E_INTERNAL;
}

int sbx_errc_exit_code(enum sbx_errc code)
{
	if ((unsigned)code >= SBX_E_COUNT_)
		return 70;
	return errc_table[code].exit_code;
}

int sbx_errc_http_status(enum sbx_errc code)
{
	if ((unsigned)code >= SBX_E_COUNT_)
		return 500;
	return errc_table[code].http_status;
}

enum sbx_errc sbx_errc_from_http_status(int status)
{
	switch (status) {
	case 400: return SBX_E_INVALID;
	case 403: return SBX_E_PERM;
	case 404: return SBX_E_NOTFOUND;
	case 409: return SBX_E_CONFLICT;
	case 422: return SBX_E_NOINPUT;
	case 501: return SBX_E_UNSUPPORTED;
	case 503: return SBX_E_DAEMON;
	default: return status >= 200 && status < 300 ? SBX_E_OK : SBX_E_INTERNAL;
	}
}
