/* err.h - the control-plane error idiom.
 *
 * Every fallible control-plane function takes `sbx_err *err` as its last argument, returns a
 * negative value on failure and fills `err` with a category and a message that names the
 * problem and, where there is one, the fix. Callers add context on the way up with
 * sbx_err_wrap(). The category decides the CLI's exit code and the API's HTTP status, so a
 * failure means the same thing wherever it is reported.
 *
 * The data path (proxy) does not use this: there a refused connection is a normal outcome. */
#ifndef SBX_ERR_H
#define SBX_ERR_H

#include <stddef.h>

enum sbx_errc {
	SBX_E_OK = 0,
	SBX_E_INTERNAL,    /* a bug or an unexpected system failure */
	SBX_E_USAGE,       /* wrong command-line usage */
	SBX_E_INVALID,     /* a value that cannot be accepted (size, name, format) */
	SBX_E_NOINPUT,     /* a path that should exist does not, or is the wrong kind */
	SBX_E_NOTFOUND,    /* no such sandbox / rule / object */
	SBX_E_CONFLICT,    /* already exists, or the object is in the wrong state */
	SBX_E_UNSUPPORTED, /* this host lacks a kernel feature or tool we require */
	SBX_E_PERM,        /* permission denied */
	SBX_E_DAEMON,      /* the daemon cannot be reached or died */
	SBX_E_IO,          /* an I/O failure on the host */
	SBX_E_COUNT_
};

typedef struct sbx_err {
	enum sbx_errc code;
	int sys_errno; /* errno that caused it, 0 if none */
	char msg[1024];
} sbx_err;

#define SBX_ERR_INIT {.code = SBX_E_OK, .sys_errno = 0, .msg = {0}}

/* All return -1 so that `return sbx_err_set(err, ...)` reads naturally. */
int sbx_err_set(sbx_err *err, enum sbx_errc code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Like sbx_err_set, then appends ": strerror(errnum)". */
int sbx_err_sys(sbx_err *err, enum sbx_errc code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Prepends "context: " to the existing message; the category is kept. */
int sbx_err_wrap(sbx_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbx_err_clear(sbx_err *err);

/* Stable names used in the JSON API ("not_found", ...) and their reverse. */
const char *sbx_errc_name(enum sbx_errc code);
enum sbx_errc sbx_errc_from_name(const char *name);
/* CLI exit code for a category (documented in the README). */
int sbx_errc_exit_code(enum sbx_errc code);
/* HTTP status used by the daemon's API for a category. */
int sbx_errc_http_status(enum sbx_errc code);
/* Category for a response status when the body carries none. */
enum sbx_errc sbx_errc_from_http_status(int status);

#endif
