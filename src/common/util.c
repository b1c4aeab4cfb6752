
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

int sbx_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Parses "123", "1.5", "0.25" into an integer scaled by 10^decimals. Rejects anything else. */
static int parse_fixed(const char *s, int decimals, uint64_t *out)
{
	uint64_t whole = 0, frac = 0;
	int nfrac = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p) && *p != '.')
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (whole > (UINT64_MAX - 9) / 10)
			return -1;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		for (; isdigit((unsigned char)*p); p++) {
			if (nfrac == decimals)
				return -1; /* more precision than we keep: refuse rather than round */
			frac = frac * 10 + (uint64_t)(*p - '0');
			nfrac++;
		}
	}
	if (*p)
		return -1;
	for (; nfrac < decimals; nfrac++)
		frac *= 10;
	uint64_t scale = 1;
	for (int i = 0; i < decimals; i++)
		scale *= 10;
	if (whole > UINT64_MAX / scale)
		return -1;
	*out = whole * scale + frac;
	return 0;
}

int sbx_parse_size(const char *s, uint64_t *out, sbx_err *err)
{
	char num[64];
	const char *suffix;
	uint64_t fixed, mult = 1;
	size_t n;

	if (!s || !*s)
		return sbx_err_set(err, SBX_E_INVALID, "empty size: use a number with an optional unit, e.g. 512m or 2g");
	for (suffix = s; *suffix && (isdigit((unsigned char)*suffix) || *suffix == '.'); suffix++)
		;
	n = (size_t)(suffix - s);
	if (n == 0 || n >= sizeof(num))
		goto bad;
	memcpy(num, s, n);
	num[n] = '\0';
	switch (tolower((unsigned char)*suffix)) {
	case '\0': mult = 1; break;
	case 'b': mult = 1; suffix--; break;
	case 'k': mult = 1ULL << 10; break;
	case 'm': mult = 1ULL << 20; break;
	case 'g': mult = 1ULL << 30; break;
	case 't': mult = 1ULL << 40; break;
	default: goto bad;
	}
	if (*suffix) {
		suffix++;
		if (tolower((unsigned char)*suffix) == 'i')
			suffix++;
		if (tolower((unsigned char)*suffix) == 'b')
			suffix++;
		if (*suffix)
			goto bad;
	}
	if (parse_fixed(num, 3, &fixed) < 0)
		goto bad;
	if (fixed > UINT64_MAX / mult)
		goto bad;
	*out = fixed * mult / 1000;
	return 0;
bad:
	return sbx_err_set(err, SBX_E_INVALID,
			   "invalid size '%s': use a number with an optional unit k, m, g or t (for example 512m or 2g)", s);
}

int sbx_parse_cpus(const char *s, uint32_t *millicpus, sbx_err *err)
{
	uint64_t v;

	if (!s || parse_fixed(s, 3, &v) < 0 || v == 0 || v > 1024 * 1000)
		return sbx_err_set(err, SBX_E_INVALID,
				   "invalid CPU count '%s': use a positive number such as 2 or 0.5", s ? s : "");
	*millicpus = (uint32_t)v;
	return 0;
}

int sbx_parse_duration_ms(const char *s, uint64_t *out_ms, sbx_err *err)
{
	char num[64];
	const char *u;
	uint64_t fixed, mult;
	size_t n;

	if (!s || !*s)
		goto bad;
	for (u = s; *u && (isdigit((unsigned char)*u) || *u == '.'); u++)
		;
	n = (size_t)(u - s);
	if (n == 0 || n >= sizeof(num))
		goto bad;
	memcpy(num, s, n);
	num[n] = '\0';
	if (!*u || strcmp(u, "s") == 0)
		mult = 1000;
	else if (strcmp(u, "ms") == 0)
		mult = 1;
	else if (strcmp(u, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(u, "h") == 0)
		mult = 3600 * 1000;
	else
		goto bad;
	if (parse_fixed(num, 3, &fixed) < 0 || fixed > UINT64_MAX / mult)
		goto bad;
	*out_ms = fixed * mult / 1000;
	return 0;
bad:
	return sbx_err_set(err, SBX_E_INVALID, "invalid duration '%s': use e.g. 30s, 5m, 1h or 250ms", s ? s : "");
}

void sbx_format_size(uint64_t bytes, char *out, size_t outlen)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024 && u + 1 < SBX_ARRAY_LEN(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, outlen, "%" PRIu64 " B", bytes);
	else
		snprintf(out, outlen, "%.1f %s", v, units[u]);
}

bool sbx_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 63 || !isalnum((unsigned char)name[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return false;
	}
	return true;
}

void sbx_name_sanitize(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	bool dash = false;

	if (outlen == 0)
		return;
	for (; *in && o + 1 < outlen; in++) {
		unsigned char c = (unsigned char)*in;
		if (isalnum(c) || c == '_' || c == '.') {
			if (o == 0 && !isalnum(c))
				continue;
			out[o++] = (char)tolower(c);
			dash = false;
		} else if (o > 0 && !dash) {
			out[o++] = '-';
			dash = true;
		}
	}
	while (o > 0 && out[o - 1] == '-')
		o--;
	out[o] = '\0';
}

size_t sbx_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size) {
		size_t c = n < size - 1 ? n : size - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

bool sbx_str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool sbx_str_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

int sbx_random_bytes(void *out, size_t n)
{
	unsigned char *p = out;

	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int sbx_random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[64];

	if (nbytes > sizeof(raw) || sbx_random_bytes(raw, nbytes) < 0)
		return -1;
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * nbytes] = '\0';
	return 0;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t sbx_now_ms(void) { return clock_ns(CLOCK_REALTIME) / 1000000ULL; }
uint64_t sbx_monotonic_ms(void) { return clock_ns(CLOCK_MONOTONIC) / 1000000ULL; }
uint64_t sbx_monotonic_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

void sbx_format_time_ms(uint64_t ms, char *out, size_t outlen)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char base[32];

	gmtime_r(&secs, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outlen, "%s.%03uZ", base, (unsigned)(ms % 1000));
}

int sbx_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

ssize_t sbx_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, p + got, len - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int sbx_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *out_len)
{
	cleanup_close int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	cleanup_free char *data = NULL;
	size_t len = 0, alloc = 0;

	if (fd < 0)
		return -1;
	for (;;) {
		if (len == alloc) {
			size_t na = alloc ? alloc * 2 : 4096;
			char *p;
			if (alloc > max) {
				errno = EFBIG;
				return -1;
			}
			p = realloc(data, na + 1);
			if (!p)
				return -1;
			data = p;
			alloc = na;
		}
		ssize_t r = read(fd, data + len, alloc - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max) {
			errno = EFBIG;
			return -1;
		}
	}
	if (!data && !(data = malloc(1)))
		return -1;
	data[len] = '\0';
	*out = take_ptr(data);
	if (out_len)
		*out_len = len;
	return 0;
}

int sbx_read_file(const char *path, size_t max, char **out, size_t *out_len, sbx_err *err)
{
	if (sbx_read_file_at(AT_FDCWD, path, max, out, out_len) < 0) {
		if (errno == EFBIG)
			return sbx_err_set(err, SBX_E_INVALID, "%s is larger than the %zu bytes allowed", path, max);
		return sbx_err_sys(err, errno == ENOENT ? SBX_E_NOINPUT : SBX_E_IO, errno, "cannot read %s", path);
	}
	return 0;
}

int sbx_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, sbx_err *err)
{
	char tmp[PATH_MAX];
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
		return sbx_err_set(err, SBX_E_INVALID, "path too long: %s", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot create %s", tmp);
	if (fchmod(fd, mode) < 0 || sbx_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return sbx_err_sys(err, SBX_E_IO, e, "cannot write %s", tmp);
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return sbx_err_sys(err, SBX_E_IO, e, "cannot rename %s to %s", tmp, path);
	}
	return 0;
}

int sbx_write_str_at(int dirfd, const char *path, const char *s)
{
	cleanup_close int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t len = strlen(s);
	ssize_t w;

	if (fd < 0)
		return -1;
	do
		w = write(fd, s, len);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -1;
	if ((size_t)w != len) {
		errno = EIO;
		return -1;
	}
	return 0;
}

int sbx_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t n = sbx_strlcpy(tmp, path, sizeof(tmp));

	if (n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int rm_rf_children(int dfd, dev_t dev, int depth)
{
	DIR *d;
	struct dirent *de;
	int ret = 0, first_errno = 0;

	if (depth > 4096) {
		close(dfd);
		errno = ELOOP;
		return -1;
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -1;
	}
	while ((de = readdir(d))) {
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != dev) {
				/* A mount point: never descend into another file system. */
				if (!first_errno)
					first_errno = EXDEV;
				ret = -1;
				continue;
			}
			int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0 && errno == EACCES) {
				/* A directory we own but cannot read (mode 000): make it ours again. */
				(void)!fchmodat(dirfd(d), de->d_name, 0700, 0);
				cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			}
			if (cfd >= 0 && rm_rf_children(cfd, dev, depth + 1) < 0 && !first_errno)
				first_errno = errno;
			if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && !first_errno)
				first_errno = errno;
		} else if (unlinkat(dirfd(d), de->d_name, 0) < 0 && !first_errno) {
			first_errno = errno;
		}
	}
	closedir(d);
	if (first_errno) {
		errno = first_errno;
		ret = -1;
	}
	return ret;
}

int sbx_rm_rf_at(int dirfd, const char *name)
{
	struct stat st;
	int fd, r;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -1 : 0;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES) {
		(void)!fchmodat(dirfd, name, 0700, 0);
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -1;
	r = rm_rf_children(fd, st.st_dev, 0);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -1;
	return r;
}

int sbx_rm_rf(const char *path)
{
	return sbx_rm_rf_at(AT_FDCWD, path);
}

int sbx_self_exe_dir(char *out, size_t outlen)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	char *slash;

	if (n < 0)
		return -1;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	if (sbx_strlcpy(out, buf[0] ? buf : "/", outlen) >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

bool sbx_find_in_path(const char *root, const char *path, const char *prog, char *out, size_t outlen)
{
	char full[PATH_MAX];
	const char *p = path;

	if (strchr(prog, '/')) {
		snprintf(full, sizeof(full), "%s/%s", strcmp(root, "/") ? root : "", prog);
		if (access(full, X_OK) == 0) {
			sbx_strlcpy(out, prog, outlen);
			return true;
		}
		return false;
	}
	while (p && *p) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		char dir[PATH_MAX];
		struct stat st;

		if (n > 0 && n < sizeof(dir)) {
			memcpy(dir, p, n);
			dir[n] = '\0';
			snprintf(full, sizeof(full), "%s%s/%s", strcmp(root, "/") ? root : "", dir, prog);
			if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0) {
				snprintf(out, outlen, "%s/%s", dir, prog);
				return true;
			}
		}
		p = colon ? colon + 1 : NULL;
	}
	return false;
}
