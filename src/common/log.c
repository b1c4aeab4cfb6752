#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static enum sbx_log_level min_level = SBX_LOG_INFO;
static char prefix[32] = "sbx";

void sbx_log_set_level(enum sbx_log_level level) { min_level = level; }
void sbx_log_set_prefix(const char *p) { sbx_strlcpy(prefix, p, sizeof(prefix)); }

void sbx_log(enum sbx_log_level level, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	char line[2048], ts[40];
	va_list ap;
	int n;

	if (level < min_level)
		return;
	sbx_format_time_ms(sbx_now_ms(), ts, sizeof(ts));
	n = snprintf(line, sizeof(line), "%s %s[%d] %s: ", ts, prefix, (int)getpid(), names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	if ((size_t)n < sizeof(line) - 1)
		line[n++] = '\n';
	else
		line[sizeof(line) - 2] = '\n', n = (int)sizeof(line) - 1;
	sbx_write_all(STDERR_FILENO, line, (size_t)n);
}
