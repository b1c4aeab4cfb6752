/* util.h - small helpers shared by every sbx binary: parsing of user-facing values, safe
 * string and file operations, ids and clocks. */
#ifndef SBX_UTIL_H
#define SBX_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/* "512m", "2G", "1.5g", "1048576" (bytes). Suffixes k/m/g/t (powers of 1024), optional "b"/"ib".
 * Fails with SBX_E_INVALID and a message naming the accepted forms. */
int sbx_parse_size(const char *s, uint64_t *out, sbx_err *err);
/* "2", "0.5", "1.25": a CPU count with up to 3 decimals, stored as millicpus (> 0). */
int sbx_parse_cpus(const char *s, uint32_t *millicpus, sbx_err *err);
/* "30s", "5m", "1h", "250ms", or a plain number of seconds; result in milliseconds. */
int sbx_parse_duration_ms(const char *s, uint64_t *out_ms, sbx_err *err);
/* Strict decimal parse of a whole string into [min, max]. */
int sbx_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Human form of a byte count, e.g. "1.5 GiB". */
void sbx_format_size(uint64_t bytes, char *out, size_t outlen);

/* Sandbox names: 1..63 chars of [a-zA-Z0-9_.-], starting with an alphanumeric. They become
 * host names, directory names and cgroup names, so nothing else is allowed. */
bool sbx_name_valid(const char *name);
/* Turn an arbitrary string (a directory name) into a valid name fragment (lowercase). */
void sbx_name_sanitize(const char *in, char *out, size_t outlen);

/* Copies with truncation; returns strlen(src) so callers can detect truncation. */
size_t sbx_strlcpy(char *dst, const char *src, size_t size);
bool sbx_str_has_prefix(const char *s, const char *prefix);
bool sbx_str_has_suffix(const char *s, const char *suffix);

/* 2*nbytes lowercase hex characters of kernel randomness, NUL-terminated (out >= 2n+1). */
int sbx_random_hex(char *out, size_t nbytes);
int sbx_random_bytes(void *out, size_t n);

uint64_t sbx_now_ms(void);      /* CLOCK_REALTIME in ms */
uint64_t sbx_monotonic_ms(void); /* CLOCK_MONOTONIC in ms */
uint64_t sbx_monotonic_ns(void);
/* RFC 3339 UTC with milliseconds: 2026-11-27T16:52:46.123Z (out >= 32). */
void sbx_format_time_ms(uint64_t ms, char *out, size_t outlen);

/* I/O that retries on EINTR and short transfers. Return 0 / -1 with errno. */
int sbx_write_all(int fd, const void *buf, size_t len);
/* Reads up to len bytes, stopping early only at EOF; returns bytes read or -1. */
ssize_t sbx_read_all(int fd, void *buf, size_t len);

/* Read a whole file into a NUL-terminated heap buffer, refusing files larger than max. */
int sbx_read_file(const char *path, size_t max, char **out, size_t *out_len, sbx_err *err);
int sbx_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *out_len);
/* Write a file atomically (temp file + rename) with the given mode. */
int sbx_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, sbx_err *err);
/* Write a small string to an existing file (sysfs, cgroupfs, /proc). Returns 0 / -1 errno. */
int sbx_write_str_at(int dirfd, const char *path, const char *s);

/* mkdir -p with a mode for the created components. */
int sbx_mkdir_p(const char *path, mode_t mode);
/* Remove a directory tree without following symlinks and without leaving the file system it
 * starts on. Returns 0, or -1 with errno of the first failure (it keeps going). */
int sbx_rm_rf(const char *path);
int sbx_rm_rf_at(int dirfd, const char *name);

/* The directory holding the running executable (from /proc/self/exe). */
int sbx_self_exe_dir(char *out, size_t outlen);

/* Looks up a program in PATH-style search list `path` (colon separated), relative to `root`
 * ("/" for the host). Writes the found path (without root prefix) to out. */
bool sbx_find_in_path(const char *root, const char *path, const char *prog, char *out, size_t outlen);

#endif
