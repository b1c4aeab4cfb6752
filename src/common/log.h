/* log.h - diagnostic logging for the daemon and helpers (not the audit log).
 * Lines go to stderr, which sbxd points at its log file. */
#ifndef SBX_LOG_H
#define SBX_LOG_H

enum sbx_log_level { SBX_LOG_DEBUG, SBX_LOG_INFO, SBX_LOG_WARN, SBX_LOG_ERROR };

void sbx_log_set_level(enum sbx_log_level level);
void sbx_log_set_prefix(const char *prefix);
void sbx_log(enum sbx_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) sbx_log(SBX_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) sbx_log(SBX_LOG_INFO, __VA_ARGS__)
#define log_warn(...) sbx_log(SBX_LOG_WARN, __VA_ARGS__)
#define log_error(...) sbx_log(SBX_LOG_ERROR, __VA_ARGS__)

#endif
