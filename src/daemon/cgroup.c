/* cgroup.c - resource limits for sandboxes on cgroup v1 (legacy, hybrid) and v2.
 *
 * What the host offers is learnt once, from /proc/self/mountinfo (which hierarchies are mounted
 * where, and with which controllers) and /proc/self/cgroup (where this process sits), never by
 * guessing paths: distributions, containers and old systems mount things in different places.
 *
 * Placement (see cgroup.h):
 *   v2 root       <mnt>/sbx/<name>
 *   v2 delegated  <own>/sbx-<name>, with the daemon itself moved into <own>/sbxd
 *   v1 root       <mnt of each controller>/sbx/<name>
 *   v1 delegated  <mnt of each controller>/sbx-<uid>/<name>
 *
 * The manager keeps no per-sandbox state: every operation finds a sandbox's directories from its
 * name, so a restarted daemon manages the cgroups of its predecessor like its own.
 *
 * Fail closed: a limit that was asked for and cannot be applied makes creation fail with
 * SBX_E_UNSUPPORTED and a message that names the controller or permission and the fix. */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "util.h"

/* Controllers we care about, as a bit set. cpuset is never used for limits; it is tracked only
 * because a hierarchy that carries it refuses tasks until cpuset.cpus/mems are filled in. */
#define CG_MEMORY (1u << 0)
#define CG_CPU (1u << 1)
#define CG_PIDS (1u << 2)
#define CG_FREEZER (1u << 3)
#define CG_CPUSET (1u << 4)
#define CG_LIMITS (CG_MEMORY | CG_CPU | CG_PIDS)
#define CG_USED (CG_LIMITS | CG_FREEZER)

static const struct {
	unsigned bit;
	const char *name;
} ctl_table[] = {
	{CG_MEMORY, "memory"}, {CG_CPU, "cpu"}, {CG_PIDS, "pids"}, {CG_FREEZER, "freezer"}, {CG_CPUSET, "cpuset"},
};

#define CG_NAME_MAX 64
#define CG_MAX_HIER 8          /* distinct v1 hierarchies that carry a controller we use */
#define CG_MAX_DEPTH 16        /* nesting we follow inside a sandbox cgroup when killing/removing */
#define CG_PERIOD_US 100000u   /* CPU bandwidth period: 100 ms */
#define CG_MIN_QUOTA_US 1000u  /* the kernel refuses quotas below 1 ms */
#define CG_KILL_TIMEOUT_MS 2000
#define CG_FREEZE_TIMEOUT_MS 200
#define CG_RMDIR_TIMEOUT_MS 1000
#define CG_POLL_MS 10
#define MOUNTINFO_MAX (4u << 20)
#define SELF_CGROUP_MAX (64u << 10)
#define SMALL_MAX 4096 /* any single-value interface file */

struct v1_hier {
	unsigned ctls;         /* CG_* bound to this hierarchy (co-mounted ones share it) */
	char mnt[PATH_MAX];    /* prefix + mount point */
	char parent[PATH_MAX]; /* where sandbox cgroups go: <mnt>/sbx or <mnt>/sbx-<uid> */
	bool usable;
};

struct sbx_cgroup_mgr {
	enum sbx_cgroup_version version;
	uid_t uid;
	unsigned avail; /* controllers we may use for sandboxes */
	char prefix[PATH_MAX];
	char describe[1024];
	/* v2 */
	char v2_base[PATH_MAX];   /* root: the mount point; delegated: our own cgroup */
	char v2_parent[PATH_MAX]; /* the directory that holds sandbox cgroups */
	const char *v2_child_prefix;
	bool v2_delegated;
	bool v2_leaf_done;
	/* v1 */
	struct v1_hier hier[CG_MAX_HIER];
	size_t nhier;
	struct sbx_cgroup_fs_hooks hooks;
};

/* The existing directories of one sandbox: one on v2, one per hierarchy on v1. */
struct cg_dirs {
	char path[CG_MAX_HIER][PATH_MAX];
	unsigned ctls[CG_MAX_HIER];
	size_t n;
};

/* ---- small helpers ---- */

static int pathf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pathf(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= n) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* For messages, where cutting a very long path short is acceptable (paths use pathf). */
static void textf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void textf(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, n, fmt, ap);
	va_end(ap);
}

static void appendf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void appendf(char *dst, size_t n, const char *fmt, ...)
{
	size_t len = strnlen(dst, n);
	va_list ap;

	if (len + 1 >= n)
		return;
	va_start(ap, fmt);
	vsnprintf(dst + len, n - len, fmt, ap);
	va_end(ap);
}

static enum sbx_errc errc_for(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
	case EROFS: return SBX_E_PERM;
	case ENOENT:
	case ESRCH: return SBX_E_NOTFOUND;
	case EINVAL:
	case ERANGE: return SBX_E_INVALID;
	case EBUSY: return SBX_E_CONFLICT;
	default: return SBX_E_IO;
	}
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Sandbox names become directory names in cgroupfs: nothing that could climb out of the parent
 * or be mistaken for something else. */
static bool name_ok(const char *name)
{
	size_t n;

	if (!name)
		return false;
	n = strnlen(name, CG_NAME_MAX + 1);
	if (n == 0 || n > CG_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '.' || c == '-'))
			return false;
	}
	return true;
}

static int bad_name(const char *name, sbx_err *err)
{
	return sbx_err_set(err, SBX_E_INVALID,
			   "invalid sandbox cgroup name '%.80s': use 1-%d characters from [a-zA-Z0-9_.-], not '.' or '..'",
			   name ? name : "(null)", CG_NAME_MAX);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool file_in(const char *dir, const char *file)
{
	char p[PATH_MAX];

	return pathf(p, sizeof(p), "%s/%s", dir, file) == 0 && exists(p);
}

/* Delegation is ownership: a subtree delegated to a user is chowned to it. When we run as that
 * user, access(2) is the authority (it also sees group grants and read-only mounts); comparing
 * ownership lets a test show the manager another user's view of a fake tree. */
static bool may_write(const struct sbx_cgroup_mgr *m, const char *path, int mode)
{
	struct stat st;

	if (m->uid == geteuid())
		return faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0;
	if (stat(path, &st) < 0)
		return false;
	if (m->uid == 0)
		return true;
	return st.st_uid == m->uid && (st.st_mode & S_IWUSR) && (!(mode & X_OK) || (st.st_mode & S_IXUSR));
}

/* Reads a small interface file, NUL-terminated, trailing newlines removed. */
static int read_small(const char *path, char *buf, size_t size)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = sbx_read_all(fd, buf, size - 1);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

static int read_small_in(const char *dir, const char *file, char *buf, size_t size)
{
	char p[PATH_MAX];

	if (pathf(p, sizeof(p), "%s/%s", dir, file) < 0)
		return -1;
	return read_small(p, buf, size);
}

static int parse_u64(const char *s, uint64_t *out)
{
	int64_t v;

	if (strcmp(s, "max") == 0) {
		*out = UINT64_MAX;
		return 0;
	}
	if (sbx_parse_i64(s, 0, INT64_MAX, &v) < 0)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

/* Value of "key N" in a flat-keyed file (memory.events, memory.oom_control). */
static int keyed_u64(const char *text, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);

	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		if (len > klen && strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			char num[32];
			size_t nlen = len - klen - 1;
			if (nlen == 0 || nlen >= sizeof(num))
				return -1;
			memcpy(num, line + klen + 1, nlen);
			num[nlen] = '\0';
			return parse_u64(num, out);
		}
		line = nl ? nl + 1 : NULL;
	}
	return -1;
}

/* Writes a value the way `echo v > file` does. O_TRUNC is a no-op on cgroupfs and keeps plain
 * files (fake trees in tests) exact; no O_CREAT, so a missing interface file stays an error. */
static int write_str(const char *path, const char *s)
{
	cleanup_close int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);

	if (fd < 0)
		return -1;
	return sbx_write_all(fd, s, strlen(s));
}

static int cg_write(const char *dir, const char *file, const char *val, sbx_err *err)
{
	char p[PATH_MAX];

	if (pathf(p, sizeof(p), "%s/%s", dir, file) < 0)
		return sbx_err_sys(err, SBX_E_INVALID, errno, "cgroup path too long: %s/%s", dir, file);
	if (write_str(p, val) < 0)
		return sbx_err_sys(err, errc_for(errno), errno, "cannot write '%s' to %s", val, p);
	return 0;
}

/* A limit file that must exist: a missing one means the controller is not enabled there. */
static int cg_write_limit(const char *dir, const char *file, const char *ctl, const char *val, sbx_err *err)
{
	if (!file_in(dir, file))
		return sbx_err_set(err, SBX_E_UNSUPPORTED,
				   "the %s controller is not enabled in %s (%s is missing), so the %s limit cannot be enforced",
				   ctl, dir, file, ctl);
	return cg_write(dir, file, val, err);
}

/* Controller names from a list ("memory pids" in cgroup.controllers, "rw,cpu,cpuacct" in mount
 * options): exact tokens only, so "cpuset" and "cpuacct" are not taken for "cpu". */
static unsigned ctls_from_list(const char *list, char sep)
{
	unsigned bits = 0;

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, sep);
		size_t len = end ? (size_t)(end - p) : strlen(p);
		for (size_t i = 0; i < SBX_ARRAY_LEN(ctl_table); i++)
			if (strlen(ctl_table[i].name) == len && strncmp(p, ctl_table[i].name, len) == 0)
				bits |= ctl_table[i].bit;
		p = end ? end + 1 : NULL;
	}
	return bits;
}

static void ctls_str(unsigned bits, const char *sep, char *out, size_t n)
{
	out[0] = '\0';
	for (size_t i = 0; i < SBX_ARRAY_LEN(ctl_table); i++)
		if (bits & ctl_table[i].bit)
			appendf(out, n, "%s%s", out[0] ? sep : "", ctl_table[i].name);
	if (!out[0])
		sbx_strlcpy(out, "none", n);
}

static const char *limit_what(unsigned bit)
{
	switch (bit) {
	case CG_MEMORY: return "memory";
	case CG_CPU: return "CPU";
	default: return "process-count";
	}
}

static unsigned requested_ctls(const struct sbx_cgroup_limits *lim)
{
	return (lim->memory_bytes ? CG_MEMORY : 0) | (lim->millicpus ? CG_CPU : 0) | (lim->pids ? CG_PIDS : 0);
}

/* mkdir that tells a fresh cgroup from one left behind (reused). */
static int cg_mkdir(struct sbx_cgroup_mgr *m, const char *path, bool *created, sbx_err *err)
{
	*created = false;
	if (mkdir(path, 0755) == 0) {
		*created = true;
		if (m->hooks.on_mkdir)
			m->hooks.on_mkdir(m->hooks.ud, path);
		return 0;
	}
	if (errno != EEXIST)
		return sbx_err_sys(err, errc_for(errno), errno, "cannot create cgroup %s", path);
	if (!is_dir(path))
		return sbx_err_set(err, SBX_E_INVALID,
				   "cannot create cgroup %s: a cgroup interface file has that name; choose another sandbox name",
				   path);
	return 0;
}

static void cg_rmdir_hooked(struct sbx_cgroup_mgr *m, const char *path)
{
	if (m->hooks.on_rmdir)
		m->hooks.on_rmdir(m->hooks.ud, path);
}

/* ---- detection ---- */

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *o = s;

	for (char *p = s; *p;) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
		    p[3] <= '7') {
			*o++ = (char)(((p[1] - '0') << 6) | ((p[2] - '0') << 3) | (p[3] - '0'));
			p += 4;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
}

static size_t split_fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	char *p = line;

	while (*p && n < max) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		f[n++] = p;
		while (*p && *p != ' ')
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

struct v2_mount {
	bool found;
	char mnt[PATH_MAX];  /* without prefix */
	char root[PATH_MAX]; /* the cgroup the mount shows at its top (not "/" in some containers) */
};

static int parse_mountinfo(struct sbx_cgroup_mgr *m, char *text, struct v2_mount *v2, sbx_err *err)
{
	unsigned seen = 0;

	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		char *f[64];
		size_t n, sep;

		if (nl)
			*nl = '\0';
		n = split_fields(line, f, SBX_ARRAY_LEN(f));
		line = nl ? nl + 1 : NULL;
		/* id parent maj:min root mountpoint options [optional...] - fstype source superopts */
		for (sep = 6; sep < n && strcmp(f[sep], "-") != 0; sep++)
			;
		if (n < 6 || sep + 3 >= n)
			continue;
		unescape_octal(f[3]);
		unescape_octal(f[4]);
		if (strcmp(f[sep + 1], "cgroup2") == 0) {
			/* The first mount wins; later ones are bind mounts of the same tree. */
			if (!v2->found) {
				v2->found = true;
				sbx_strlcpy(v2->root, f[3], sizeof(v2->root));
				if (sbx_strlcpy(v2->mnt, f[4], sizeof(v2->mnt)) >= sizeof(v2->mnt))
					return sbx_err_set(err, SBX_E_INVALID, "cgroup2 mount point too long: %.100s", f[4]);
			}
		} else if (strcmp(f[sep + 1], "cgroup") == 0) {
			unsigned ctls = ctls_from_list(f[sep + 3], ',');
			struct v1_hier *h;

			/* Hierarchies without a controller we use (name=systemd, devices, blkio...) and
			 * second mounts of a hierarchy we already have are of no interest. */
			if (!(ctls & CG_USED) || (ctls & seen & CG_USED))
				continue;
			if (m->nhier == CG_MAX_HIER)
				continue;
			h = &m->hier[m->nhier];
			if (pathf(h->mnt, sizeof(h->mnt), "%s%s", m->prefix, f[4]) < 0)
				return sbx_err_set(err, SBX_E_INVALID, "cgroup mount point too long: %.100s", f[4]);
			h->ctls = ctls;
			seen |= ctls;
			m->nhier++;
		}
	}
	return 0;
}

/* The v2 path of this process from /proc/self/cgroup ("0::/path"). */
static int own_v2_path(const char *self_cgroup_path, char *out, size_t n, sbx_err *err)
{
	cleanup_free char *text = NULL;

	if (sbx_read_file_at(AT_FDCWD, self_cgroup_path, SELF_CGROUP_MAX, &text, NULL) < 0)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot read %s", self_cgroup_path);
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (sbx_str_has_prefix(line, "0::")) {
			if (sbx_strlcpy(out, line + 3, n) >= n)
				return sbx_err_set(err, SBX_E_INVALID, "own cgroup path too long in %s", self_cgroup_path);
			return 0;
		}
		line = nl ? nl + 1 : NULL;
	}
	out[0] = '\0';
	return 0;
}

static void set_none(struct sbx_cgroup_mgr *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_none(struct sbx_cgroup_mgr *m, const char *fmt, ...)
{
	va_list ap;

	m->version = SBX_CGROUP_NONE;
	m->avail = 0;
	va_start(ap, fmt);
	vsnprintf(m->describe, sizeof(m->describe), fmt, ap);
	va_end(ap);
}

static void detect_v1(struct sbx_cgroup_mgr *m, bool hybrid)
{
	const char *layout = hybrid ? "cgroup v1 (hybrid layout)" : "cgroup v1";
	char dirs[600] = "", missing_names[64] = "", used[64], fix[sizeof(dirs) * 2 + 64];
	unsigned mounted = 0, missing = 0;

	for (size_t i = 0; i < m->nhier; i++) {
		struct v1_hier *h = &m->hier[i];
		int r;

		mounted |= h->ctls & CG_USED;
		if (m->uid == 0) {
			r = pathf(h->parent, sizeof(h->parent), "%s/sbx", h->mnt);
			/* The parent is created on first use; we need to be able to create it. */
			h->usable = r == 0 && may_write(m, h->mnt, W_OK | X_OK);
		} else {
			r = pathf(h->parent, sizeof(h->parent), "%s/sbx-%u", h->mnt, (unsigned)m->uid);
			h->usable = r == 0 && is_dir(h->parent) && may_write(m, h->parent, W_OK | X_OK);
		}
		if (h->usable) {
			m->avail |= h->ctls & CG_USED;
		} else {
			/* The freezer is optional (it only closes a fork race in kill), but if we are
			 * asking root to delegate anyway, ask for it too. */
			missing |= h->ctls & CG_USED;
			appendf(dirs, sizeof(dirs), "%s%s", dirs[0] ? " " : "", h->parent);
		}
	}
	if (!(mounted & CG_LIMITS)) {
		set_none(m, "%s: none of the memory, cpu and pids controllers is mounted, so limits cannot be enforced; "
			    "mount them (e.g. mount -t cgroup -o memory cgroup /sys/fs/cgroup/memory) or boot with cgroup v2",
			 layout);
		return;
	}
	ctls_str(missing, ", ", missing_names, sizeof(missing_names));
	if (m->uid != 0)
		textf(fix, sizeof(fix), "ask root to delegate: mkdir -p %s && chown -R %u %s", dirs, (unsigned)m->uid,
			 dirs);
	else
		textf(fix, sizeof(fix), "make %s writable (is /sys/fs/cgroup mounted read-only, e.g. in a container?)",
			 dirs);
	if (missing & CG_LIMITS) {
		set_none(m, "%s: the %s hierarchies are not %s, so limits cannot be enforced; %s", layout, missing_names,
			 m->uid != 0 ? "delegated to this user" : "writable", fix);
		return;
	}
	m->version = SBX_CGROUP_V1;
	textf(m->describe, sizeof(m->describe), "%s, %s:", layout, m->uid == 0 ? "root" : "delegated");
	for (size_t i = 0, k = 0; i < m->nhier; i++) {
		if (!m->hier[i].usable)
			continue;
		ctls_str(m->hier[i].ctls & CG_USED, "+", used, sizeof(used));
		appendf(m->describe, sizeof(m->describe), "%s %s in %s", k++ ? "," : "", used, m->hier[i].parent);
	}
	if (missing & CG_FREEZER)
		appendf(m->describe, sizeof(m->describe), "; no freezer (kill may race with fork): %s", fix);
}

/* Other processes in the cgroup we would turn into an inner node make that impossible (the
 * no-internal-process rule); better to say so at start than at the first sandbox. */
static bool others_in(const char *dir)
{
	char p[PATH_MAX], buf[SMALL_MAX];
	pid_t self = getpid();

	if (pathf(p, sizeof(p), "%s/cgroup.procs", dir) < 0 || read_small(p, buf, sizeof(buf)) < 0)
		return false;
	for (char *s = buf; *s;) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s)
			break;
		if (v != self)
			return true;
		s = end;
		while (*s == '\n' || *s == ' ')
			s++;
	}
	return false;
}

static int detect_v2(struct sbx_cgroup_mgr *m, const struct v2_mount *v2, const char *self_cgroup_path, sbx_err *err)
{
	char buf[SMALL_MAX], own[PATH_MAX], names[64], p[PATH_MAX];
	const char *rel;
	unsigned missing;

	m->v2_delegated = m->uid != 0;
	if (!m->v2_delegated) {
		if (pathf(m->v2_base, sizeof(m->v2_base), "%s%s", m->prefix, v2->mnt) < 0 ||
		    pathf(m->v2_parent, sizeof(m->v2_parent), "%s/sbx", m->v2_base) < 0)
			return sbx_err_set(err, SBX_E_INVALID, "cgroup2 mount point too long");
		m->v2_child_prefix = "";
		if (!may_write(m, m->v2_base, W_OK | X_OK)) {
			set_none(m, "cgroup v2: %s is not writable, so limits cannot be enforced; is it mounted read-only "
				    "(e.g. in a container)? remount it rw or run sbxd on the host",
				 m->v2_base);
			return 0;
		}
	} else {
		if (own_v2_path(self_cgroup_path, own, sizeof(own), err) < 0)
			return -1;
		if (!own[0]) {
			set_none(m, "cgroup v2: this process has no cgroup v2 path in %s, so limits cannot be enforced",
				 self_cgroup_path);
			return 0;
		}
		/* A restarted daemon may have inherited the leaf its predecessor moved into. */
		if (sbx_str_has_suffix(own, "/sbxd")) {
			own[strlen(own) - strlen("/sbxd")] = '\0';
			if (!own[0])
				sbx_strlcpy(own, "/", sizeof(own));
		}
		/* Paths in /proc/self/cgroup are relative to the hierarchy; the mount may show only
		 * a subtree of it. */
		rel = own;
		if (strcmp(v2->root, "/") != 0) {
			size_t rl = strlen(v2->root);
			if (strncmp(own, v2->root, rl) != 0 || (own[rl] != '/' && own[rl] != '\0')) {
				set_none(m, "cgroup v2: our cgroup %s is not visible under the mount at %s, so limits "
					    "cannot be enforced",
					 own, v2->mnt);
				return 0;
			}
			rel = own + rl;
		}
		if (strcmp(rel, "/") == 0)
			rel = "";
		if (pathf(m->v2_base, sizeof(m->v2_base), "%s%s%s", m->prefix, v2->mnt, rel) < 0)
			return sbx_err_set(err, SBX_E_INVALID, "own cgroup path too long: %.200s", own);
		sbx_strlcpy(m->v2_parent, m->v2_base, sizeof(m->v2_parent));
		m->v2_child_prefix = "sbx-";
		if (!may_write(m, m->v2_base, W_OK | X_OK) ||
		    pathf(p, sizeof(p), "%s/cgroup.procs", m->v2_base) < 0 || !may_write(m, p, W_OK) ||
		    pathf(p, sizeof(p), "%s/cgroup.subtree_control", m->v2_base) < 0 || !may_write(m, p, W_OK)) {
			set_none(m, "cgroup v2: sbxd's cgroup %s is not delegated to uid %u, so limits cannot be enforced; "
				    "start sbxd in a delegated unit (systemd-run --user -p Delegate=yes --unit=sbxd sbxd) "
				    "or ask root to enable delegation (Delegate=yes for user@.service)",
				 m->v2_base, (unsigned)m->uid);
			return 0;
		}
		if (others_in(m->v2_base)) {
			set_none(m, "cgroup v2: sbxd's cgroup %s also holds other processes, so it cannot get sandbox "
				    "cgroups (no-internal-process rule); start sbxd in its own delegated unit: "
				    "systemd-run --user -p Delegate=yes --unit=sbxd sbxd",
				 m->v2_base);
			return 0;
		}
	}
	if (read_small_in(m->v2_base, "cgroup.controllers", buf, sizeof(buf)) < 0)
		buf[0] = '\0';
	m->avail = ctls_from_list(buf, ' ') & CG_LIMITS;
	m->version = SBX_CGROUP_V2;
	ctls_str(m->avail, ", ", names, sizeof(names));
	if (m->v2_delegated)
		textf(m->describe, sizeof(m->describe), "cgroup v2, delegated: %s in %s/sbx-<name> (sbxd in %s/sbxd)",
			 names, m->v2_parent, m->v2_parent);
	else
		textf(m->describe, sizeof(m->describe), "cgroup v2, root: %s in %s/<name>", names, m->v2_parent);
	missing = CG_LIMITS & ~m->avail;
	if (missing) {
		ctls_str(missing, ", ", names, sizeof(names));
		appendf(m->describe, sizeof(m->describe), "; %s not available, limits on it are refused: %s", names,
			m->v2_delegated
				? "ask root to delegate it (systemctl edit user@.service: [Service] Delegate=cpu cpuset io "
				  "memory pids, then log in again)"
				: "it is bound to a v1 hierarchy or disabled (boot with systemd.unified_cgroup_hierarchy=1 "
				  "cgroup_no_v1=all)");
	}
	return 0;
}

int sbx_cgroup_mgr_new_at(struct sbx_cgroup_mgr **out, const char *mountinfo_path, const char *self_cgroup_path,
			  const char *path_prefix, uid_t uid, sbx_err *err)
{
	cleanup_free struct sbx_cgroup_mgr *m = calloc(1, sizeof(*m));
	cleanup_free char *mi = NULL;
	struct v2_mount v2 = {0};
	unsigned v1_limits = 0;

	if (!m)
		return sbx_err_sys(err, SBX_E_INTERNAL, ENOMEM, "cgroup manager");
	m->uid = uid;
	if (sbx_strlcpy(m->prefix, path_prefix ? path_prefix : "", sizeof(m->prefix)) >= sizeof(m->prefix))
		return sbx_err_set(err, SBX_E_INVALID, "cgroup path prefix too long");
	if (sbx_read_file_at(AT_FDCWD, mountinfo_path, MOUNTINFO_MAX, &mi, NULL) < 0)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot read %s", mountinfo_path);
	if (parse_mountinfo(m, mi, &v2, err) < 0)
		return -1;
	for (size_t i = 0; i < m->nhier; i++)
		v1_limits |= m->hier[i].ctls & CG_LIMITS;
	/* Hybrid: controllers live on v1 and the unified tree has none of ours, so v1 it is. A
	 * controller can be bound to one hierarchy only: if v1 has any of ours, v2 cannot. */
	if (v1_limits)
		detect_v1(m, v2.found);
	else if (v2.found) {
		m->nhier = 0;
		if (detect_v2(m, &v2, self_cgroup_path, err) < 0)
			return -1;
	} else
		set_none(m, "no cgroup file system is mounted, so limits cannot be enforced; mount one "
			    "(mount -t cgroup2 none /sys/fs/cgroup)");
	log_debug("cgroups: %s", m->describe);
	*out = take_ptr(m);
	return 0;
}

int sbx_cgroup_mgr_new(struct sbx_cgroup_mgr **out, sbx_err *err)
{
	return sbx_cgroup_mgr_new_at(out, "/proc/self/mountinfo", "/proc/self/cgroup", "", geteuid(), err);
}

void sbx_cgroup_mgr_free(struct sbx_cgroup_mgr *m)
{
	free(m);
}

void sbx_cgroup_mgr_set_fs_hooks(struct sbx_cgroup_mgr *m, const struct sbx_cgroup_fs_hooks *h)
{
	if (h)
		m->hooks = *h;
	else
		memset(&m->hooks, 0, sizeof(m->hooks));
}

enum sbx_cgroup_version sbx_cgroup_version(const struct sbx_cgroup_mgr *m)
{
	return m ? m->version : SBX_CGROUP_NONE;
}

const char *sbx_cgroup_describe(const struct sbx_cgroup_mgr *m)
{
	return m ? m->describe : "cgroups: not initialised";
}

/* ---- paths of one sandbox ---- */

static int v2_dir(const struct sbx_cgroup_mgr *m, const char *name, char *out, size_t n)
{
	return pathf(out, n, "%s/%s%s", m->v2_parent, m->v2_child_prefix, name);
}

/* The sandbox's directories that exist now. */
static int find_dirs(const struct sbx_cgroup_mgr *m, const char *name, struct cg_dirs *d)
{
	d->n = 0;
	if (m->version == SBX_CGROUP_V2) {
		if (v2_dir(m, name, d->path[0], sizeof(d->path[0])) < 0)
			return -1;
		d->ctls[0] = m->avail;
		if (is_dir(d->path[0]))
			d->n = 1;
		return 0;
	}
	for (size_t i = 0; i < m->nhier; i++) {
		const struct v1_hier *h = &m->hier[i];
		if (!h->usable)
			continue;
		if (pathf(d->path[d->n], sizeof(d->path[d->n]), "%s/%s", h->parent, name) < 0)
			return -1;
		d->ctls[d->n] = h->ctls;
		if (is_dir(d->path[d->n]))
			d->n++;
	}
	return 0;
}

/* ---- walking a sandbox cgroup and its descendants ---- */

struct scan {
	pid_t self;
	size_t count;     /* live entries seen (pid 0, i.e. invisible to us, included) */
	bool forbidden;   /* our own pid or 1: this is not a sandbox's cgroup */
	bool do_kill;
};

static void scan_pid(struct scan *s, uint64_t v)
{
	if (v == 1 || v == (uint64_t)s->self) {
		s->forbidden = true;
		return;
	}
	s->count++;
	/* 0 stands for a process in a pid namespace we cannot see: never kill(0, ...), which
	 * would be our own process group. */
	if (s->do_kill && v > 1 && v <= INT_MAX && kill((pid_t)v, SIGKILL) < 0 && errno != ESRCH)
		log_debug("cgroups: kill(%" PRIu64 "): %s", v, strerror(errno));
}

/* cgroup.procs can be long (no pids limit): parse it as a stream, in bounded memory. */
static int scan_procs_file(const char *path, struct scan *s)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char buf[4096];
	uint64_t cur = 0;
	bool in_num = false;

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				if (cur <= UINT64_MAX / 20)
					cur = cur * 10 + (uint64_t)(buf[i] - '0');
				in_num = true;
			} else if (in_num) {
				scan_pid(s, cur);
				cur = 0;
				in_num = false;
			}
		}
	}
	if (in_num)
		scan_pid(s, cur);
	return 0;
}

static bool dirent_is_dir(DIR *d, const struct dirent *de)
{
	struct stat st;

	if (de->d_type == DT_DIR)
		return true;
	if (de->d_type != DT_UNKNOWN)
		return false;
	return fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* `path` is a PATH_MAX buffer that is extended and restored on the way down. */
static int scan_tree(char *path, int depth, struct scan *s)
{
	size_t len = strlen(path);
	DIR *d;
	struct dirent *de;
	int ret = 0;

	if (pathf(path + len, PATH_MAX - len, "/cgroup.procs") < 0)
		return -1;
	if (scan_procs_file(path, s) < 0)
		ret = -1;
	path[len] = '\0';
	if (depth >= CG_MAX_DEPTH)
		return ret;
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? ret : -1;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || !dirent_is_dir(d, de))
			continue;
		if (pathf(path + len, PATH_MAX - len, "/%s", de->d_name) < 0)
			continue;
		if (scan_tree(path, depth + 1, s) < 0)
			ret = -1;
		path[len] = '\0';
	}
	closedir(d);
	return ret;
}

static int scan_dirs(const struct cg_dirs *d, struct scan *s)
{
	char path[PATH_MAX];
	int ret = 0;

	for (size_t i = 0; i < d->n; i++) {
		sbx_strlcpy(path, d->path[i], sizeof(path));
		if (scan_tree(path, 0, s) < 0)
			ret = -1;
	}
	return ret;
}

/* Freezing first means the list of processes we read is complete: a frozen task cannot fork.
 * v1's freezer is its own hierarchy (freezer.state); v2 has cgroup.freeze in every cgroup. */
static void freeze(const struct cg_dirs *d, bool on)
{
	for (size_t i = 0; i < d->n; i++) {
		char state[32];

		if (file_in(d->path[i], "cgroup.freeze")) {
			if (cg_write(d->path[i], "cgroup.freeze", on ? "1" : "0", NULL) < 0 && !on)
				log_warn("cgroups: cannot thaw %s: %s", d->path[i], strerror(errno));
			continue;
		}
		if (!(d->ctls[i] & CG_FREEZER) || !file_in(d->path[i], "freezer.state"))
			continue;
		if (cg_write(d->path[i], "freezer.state", on ? "FROZEN" : "THAWED", NULL) < 0) {
			if (!on)
				log_warn("cgroups: cannot thaw %s: %s", d->path[i], strerror(errno));
			continue;
		}
		if (!on)
			continue;
		/* FREEZING until every task stopped; bounded, and killing works either way. */
		for (uint64_t end = sbx_monotonic_ms() + CG_FREEZE_TIMEOUT_MS; sbx_monotonic_ms() < end;) {
			if (read_small_in(d->path[i], "freezer.state", state, sizeof(state)) < 0 ||
			    strcmp(state, "FROZEN") == 0)
				break;
			sleep_ms(1);
		}
	}
}

static int kill_dirs(const struct cg_dirs *d, const char *name, sbx_err *err)
{
	uint64_t deadline = sbx_monotonic_ms() + CG_KILL_TIMEOUT_MS;

	for (;;) {
		struct scan s = {.self = getpid()};
		bool killed = false;

		if (scan_dirs(d, &s) < 0)
			return sbx_err_sys(err, SBX_E_IO, errno, "cannot list the processes of cgroup %s", d->path[0]);
		/* Checked before every cgroup.kill: it would take us with it. */
		if (s.forbidden)
			return sbx_err_set(err, SBX_E_INTERNAL,
					   "refusing to kill cgroup %s: it holds sbxd itself or pid 1", d->path[0]);
		if (s.count == 0)
			return 0;
		if (sbx_monotonic_ms() >= deadline)
			return sbx_err_set(err, SBX_E_IO,
					   "%zu process(es) of sandbox %s are still alive 2 s after SIGKILL (stuck in the kernel, "
					   "or in a pid namespace we cannot see); see %s/cgroup.procs",
					   s.count, name, d->path[0]);
		/* v2 (5.14+): the kernel kills the whole subtree atomically, no race with fork. */
		for (size_t i = 0; i < d->n; i++)
			if (file_in(d->path[i], "cgroup.kill") && cg_write(d->path[i], "cgroup.kill", "1", NULL) == 0)
				killed = true;
		if (!killed) {
			struct scan k = {.self = getpid(), .do_kill = true};

			freeze(d, true);
			scan_dirs(d, &k);
			/* Frozen v1 tasks die only once thawed. */
			freeze(d, false);
		}
		sleep_ms(CG_POLL_MS);
	}
}

int sbx_cgroup_kill(struct sbx_cgroup_mgr *m, const char *name, sbx_err *err)
{
	cleanup_free struct cg_dirs *d = calloc(1, sizeof(*d));

	if (!name_ok(name))
		return bad_name(name, err);
	if (!d)
		return sbx_err_sys(err, SBX_E_INTERNAL, ENOMEM, "cgroup kill");
	if (m->version == SBX_CGROUP_NONE)
		return 0;
	if (find_dirs(m, name, d) < 0)
		return sbx_err_sys(err, SBX_E_INVALID, errno, "cgroup path of %s", name);
	if (d->n == 0)
		return 0;
	return kill_dirs(d, name, err);
}

/* Depth-first: a cgroup with children cannot be removed. EBUSY right after a kill is the kernel
 * still tearing tasks down, so it is retried until `deadline`. */
static int rmdir_tree(struct sbx_cgroup_mgr *m, char *path, int depth, uint64_t deadline)
{
	size_t len = strlen(path);
	DIR *d;
	struct dirent *de;

	if (depth < CG_MAX_DEPTH && (d = opendir(path))) {
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || !dirent_is_dir(d, de))
				continue;
			if (pathf(path + len, PATH_MAX - len, "/%s", de->d_name) == 0)
				rmdir_tree(m, path, depth + 1, deadline);
			path[len] = '\0';
		}
		closedir(d);
	}
	cg_rmdir_hooked(m, path);
	for (;;) {
		if (rmdir(path) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY || sbx_monotonic_ms() >= deadline)
			return -1;
		sleep_ms(CG_POLL_MS);
	}
}

static int remove_dirs(struct sbx_cgroup_mgr *m, const struct cg_dirs *d, sbx_err *err)
{
	uint64_t deadline = sbx_monotonic_ms() + CG_RMDIR_TIMEOUT_MS;
	char path[PATH_MAX];
	int ret = 0;

	for (size_t i = 0; i < d->n; i++) {
		sbx_strlcpy(path, d->path[i], sizeof(path));
		if (rmdir_tree(m, path, 0, deadline) < 0 && ret == 0)
			ret = sbx_err_sys(err, errc_for(errno), errno, "cannot remove cgroup %s", path);
	}
	return ret;
}

int sbx_cgroup_destroy(struct sbx_cgroup_mgr *m, const char *name, sbx_err *err)
{
	cleanup_free struct cg_dirs *d = calloc(1, sizeof(*d));
	sbx_err kerr = SBX_ERR_INIT;
	int killed;

	if (!name_ok(name))
		return bad_name(name, err);
	if (!d)
		return sbx_err_sys(err, SBX_E_INTERNAL, ENOMEM, "cgroup destroy");
	if (m->version == SBX_CGROUP_NONE)
		return 0;
	if (find_dirs(m, name, d) < 0)
		return sbx_err_sys(err, SBX_E_INVALID, errno, "cgroup path of %s", name);
	if (d->n == 0)
		return 0;
	/* A cgroup with live tasks cannot be removed; killing an empty one costs one read. */
	killed = kill_dirs(d, name, &kerr);
	if (remove_dirs(m, d, err) < 0) {
		if (killed < 0)
			sbx_err_wrap(err, "%s", kerr.msg);
		return -1;
	}
	return 0;
}

/* ---- creation ---- */

/* A cpuset-carrying hierarchy admits no task into a cgroup whose cpus/mems are empty. */
static int v1_cpuset_inherit(const char *parent, const char *dir, sbx_err *err)
{
	static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};

	for (size_t i = 0; i < SBX_ARRAY_LEN(files); i++) {
		char val[SMALL_MAX], cur[SMALL_MAX];

		if (read_small_in(dir, files[i], cur, sizeof(cur)) == 0 && cur[0])
			continue;
		if (read_small_in(parent, files[i], val, sizeof(val)) < 0)
			return sbx_err_sys(err, SBX_E_IO, errno, "cannot read %s/%s", parent, files[i]);
		if (val[0] && cg_write(dir, files[i], val, err) < 0)
			return -1;
	}
	return 0;
}

static int v1_memory(const char *dir, uint64_t bytes, sbx_err *err)
{
	char val[32];
	bool memsw = file_in(dir, "memory.memsw.limit_in_bytes");
	int e;

	snprintf(val, sizeof(val), "%" PRIu64, bytes);
	if (!file_in(dir, "memory.limit_in_bytes"))
		return cg_write_limit(dir, "memory.limit_in_bytes", "memory", val, err);
	/* memory <= memory+swap at all times: limit first (a fresh memsw is unlimited), except when
	 * a reused cgroup's memsw is below the new limit; then memsw has to go up first. */
	if (cg_write(dir, "memory.limit_in_bytes", val, NULL) < 0) {
		e = errno;
		if (e != EINVAL || !memsw)
			return sbx_err_sys(err, errc_for(e), e, "cannot write '%s' to %s/memory.limit_in_bytes", val,
					   dir);
		if (cg_write(dir, "memory.memsw.limit_in_bytes", val, err) < 0 ||
		    cg_write(dir, "memory.limit_in_bytes", val, err) < 0)
			return -1;
	}
	if (memsw)
		return cg_write(dir, "memory.memsw.limit_in_bytes", val, err);
	/* Without swap accounting (swapaccount=0) swap stays uncapped: "where possible". */
	log_debug("cgroups: no memory.memsw in %s: swap is not limited", dir);
	return 0;
}

static int v1_apply(const char *dir, unsigned ctls, const struct sbx_cgroup_limits *lim, bool reused, sbx_err *err)
{
	char val[32];

	if ((ctls & CG_MEMORY) && lim->memory_bytes && v1_memory(dir, lim->memory_bytes, err) < 0)
		return -1;
	if ((ctls & CG_CPU) && lim->millicpus) {
		snprintf(val, sizeof(val), "%u", CG_PERIOD_US);
		if (cg_write_limit(dir, "cpu.cfs_period_us", "cpu", val, err) < 0)
			return -1;
		snprintf(val, sizeof(val), "%" PRIu64, (uint64_t)lim->millicpus * (CG_PERIOD_US / 1000));
		if (cg_write_limit(dir, "cpu.cfs_quota_us", "cpu", val, err) < 0)
			return -1;
	}
	if (ctls & CG_PIDS) {
		if (lim->pids) {
			snprintf(val, sizeof(val), "%" PRIu32, lim->pids);
			if (cg_write_limit(dir, "pids.max", "pids", val, err) < 0)
				return -1;
		} else if (reused && cg_write(dir, "pids.max", "max", err) < 0) {
			return -1;
		}
	}
	return 0;
}

static int v2_apply(const char *dir, const struct sbx_cgroup_limits *lim, bool reused, sbx_err *err)
{
	char val[64];

	if (lim->memory_bytes) {
		snprintf(val, sizeof(val), "%" PRIu64, lim->memory_bytes);
		if (cg_write_limit(dir, "memory.max", "memory", val, err) < 0)
			return -1;
		/* memory + swap = memory. Absent without swap support (then there is nothing to cap). */
		if (file_in(dir, "memory.swap.max") && cg_write(dir, "memory.swap.max", "0", err) < 0)
			return -1;
	} else if (reused) {
		if (file_in(dir, "memory.max") && cg_write(dir, "memory.max", "max", err) < 0)
			return -1;
		if (file_in(dir, "memory.swap.max") && cg_write(dir, "memory.swap.max", "max", err) < 0)
			return -1;
	}
	/* memory.oom.group stays 0: the OOM killer takes the runaway process, not the sandbox. */
	if (lim->millicpus) {
		snprintf(val, sizeof(val), "%" PRIu64 " %u", (uint64_t)lim->millicpus * (CG_PERIOD_US / 1000),
			 CG_PERIOD_US);
		if (cg_write_limit(dir, "cpu.max", "cpu", val, err) < 0)
			return -1;
	} else if (reused && file_in(dir, "cpu.max") && cg_write(dir, "cpu.max", "max", err) < 0) {
		return -1;
	}
	if (lim->pids) {
		snprintf(val, sizeof(val), "%" PRIu32, lim->pids);
		if (cg_write_limit(dir, "pids.max", "pids", val, err) < 0)
			return -1;
	} else if (reused && file_in(dir, "pids.max") && cg_write(dir, "pids.max", "max", err) < 0) {
		return -1;
	}
	return 0;
}

/* Turns controllers on for the children of `dir`. Writing all of them in one go is harmless
 * for those already on. */
static int v2_enable(const struct sbx_cgroup_mgr *m, const char *dir, unsigned want, sbx_err *err)
{
	char cur[SMALL_MAX], line[128] = "", names[64];

	if (read_small_in(dir, "cgroup.subtree_control", cur, sizeof(cur)) < 0)
		return sbx_err_sys(err, errc_for(errno), errno, "cannot read %s/cgroup.subtree_control", dir);
	if ((ctls_from_list(cur, ' ') & want) == want)
		return 0;
	for (size_t i = 0; i < SBX_ARRAY_LEN(ctl_table); i++)
		if (want & ctl_table[i].bit)
			appendf(line, sizeof(line), "%s+%s", line[0] ? " " : "", ctl_table[i].name);
	if (cg_write(dir, "cgroup.subtree_control", line, NULL) == 0)
		return 0;
	ctls_str(want, ", ", names, sizeof(names));
	if (errno == EBUSY)
		return sbx_err_sys(err, SBX_E_UNSUPPORTED, EBUSY,
				   "cannot enable %s in %s: it holds processes (no-internal-process rule)%s", names, dir,
				   m->v2_delegated ? "; start sbxd in its own delegated unit: systemd-run --user -p "
						     "Delegate=yes --unit=sbxd sbxd"
						   : "");
	if (errno == ENOENT)
		return sbx_err_sys(err, SBX_E_UNSUPPORTED, ENOENT, "cannot enable %s in %s: not all are available there",
				   names, dir);
	return sbx_err_sys(err, errc_for(errno), errno, "cannot enable %s in %s", names, dir);
}

static int v2_prepare(struct sbx_cgroup_mgr *m, unsigned want, sbx_err *err)
{
	char leaf[PATH_MAX], pid[24];
	bool created;

	if (!m->v2_delegated) {
		/* <mnt>/sbx is ours and holds no processes, so both levels can delegate freely. */
		if (v2_enable(m, m->v2_base, want, err) < 0 || cg_mkdir(m, m->v2_parent, &created, err) < 0)
			return -1;
		return v2_enable(m, m->v2_parent, want, err);
	}
	if (!m->v2_leaf_done) {
		/* Our cgroup is about to become an inner node, and inner nodes hold no processes:
		 * the daemon steps down into a leaf of its own first. */
		if (pathf(leaf, sizeof(leaf), "%s/sbxd", m->v2_base) < 0)
			return sbx_err_sys(err, SBX_E_INVALID, errno, "cgroup path too long");
		if (cg_mkdir(m, leaf, &created, err) < 0)
			return -1;
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if (cg_write(leaf, "cgroup.procs", pid, err) < 0)
			return sbx_err_wrap(err, "cannot move sbxd into its leaf cgroup");
		m->v2_leaf_done = true;
	}
	return v2_enable(m, m->v2_base, want, err);
}

static int refuse_missing(const struct sbx_cgroup_mgr *m, unsigned missing, sbx_err *err)
{
	unsigned bit = missing & CG_MEMORY ? CG_MEMORY : missing & CG_CPU ? CG_CPU : CG_PIDS;
	const char *ctl = bit == CG_MEMORY ? "memory" : bit == CG_CPU ? "cpu" : "pids";
	const char *fix;

	if (m->version == SBX_CGROUP_NONE)
		return sbx_err_set(err, SBX_E_UNSUPPORTED, "cannot enforce the %s limit: %s", limit_what(bit),
				   m->describe);
	if (m->version == SBX_CGROUP_V2)
		fix = m->v2_delegated ? "ask root to delegate it (systemctl edit user@.service: [Service] "
					"Delegate=cpu cpuset io memory pids, then log in again)"
				      : "it is bound to a v1 hierarchy or disabled; boot with "
					"systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all";
	else
		fix = "mount it (e.g. mount -t cgroup -o <controller> cgroup /sys/fs/cgroup/<controller>)";
	return sbx_err_set(err, SBX_E_UNSUPPORTED,
			   "cannot enforce the %s limit: the %s controller is not available (%s); %s, or do not request "
			   "a %s limit",
			   limit_what(bit), ctl, m->describe, fix, limit_what(bit));
}

static int create_v2(struct sbx_cgroup_mgr *m, const char *name, const struct sbx_cgroup_limits *lim, unsigned want,
		     sbx_err *err)
{
	cleanup_free struct cg_dirs *d = calloc(1, sizeof(*d));
	bool created;

	if (!d)
		return sbx_err_sys(err, SBX_E_INTERNAL, ENOMEM, "cgroup create");
	if (v2_prepare(m, want, err) < 0)
		return -1;
	if (v2_dir(m, name, d->path[0], sizeof(d->path[0])) < 0)
		return sbx_err_sys(err, SBX_E_INVALID, errno, "cgroup path of %s", name);
	d->ctls[0] = m->avail;
	d->n = 1;
	if (cg_mkdir(m, d->path[0], &created, err) < 0)
		return -1;
	/* Left by a crash: empty it, then the limits below overwrite the old ones. */
	if (!created && kill_dirs(d, name, err) < 0)
		return sbx_err_wrap(err, "cannot reuse cgroup %s", d->path[0]);
	if (v2_apply(d->path[0], lim, !created, err) < 0) {
		if (created)
			remove_dirs(m, d, NULL);
		return -1;
	}
	return 0;
}

static int create_v1(struct sbx_cgroup_mgr *m, const char *name, const struct sbx_cgroup_limits *lim, unsigned want,
		     sbx_err *err)
{
	cleanup_free struct cg_dirs *d = calloc(1, sizeof(*d));   /* ours, in hierarchy order */
	cleanup_free struct cg_dirs *old = calloc(1, sizeof(*old)); /* left behind, not needed now */
	cleanup_free struct cg_dirs *fresh = calloc(1, sizeof(*fresh));
	bool reused = false;

	if (!d || !old || !fresh)
		return sbx_err_sys(err, SBX_E_INTERNAL, ENOMEM, "cgroup create");
	for (size_t i = 0; i < m->nhier; i++) {
		const struct v1_hier *h = &m->hier[i];
		char path[PATH_MAX];
		bool created;

		if (!h->usable)
			continue;
		if (pathf(path, sizeof(path), "%s/%s", h->parent, name) < 0) {
			sbx_err_sys(err, SBX_E_INVALID, errno, "cgroup path of %s", name);
			goto fail;
		}
		if (!(h->ctls & want)) {
			if (is_dir(path)) {
				sbx_strlcpy(old->path[old->n], path, sizeof(old->path[0]));
				old->ctls[old->n++] = h->ctls;
			}
			continue;
		}
		if (m->uid == 0) {
			if (cg_mkdir(m, h->parent, &created, err) < 0)
				goto fail;
			/* Also when it exists: an empty cpuset there would refuse every task. */
			if ((h->ctls & CG_CPUSET) && v1_cpuset_inherit(h->mnt, h->parent, err) < 0)
				goto fail;
		}
		if (cg_mkdir(m, path, &created, err) < 0)
			goto fail;
		sbx_strlcpy(d->path[d->n], path, sizeof(d->path[0]));
		d->ctls[d->n++] = h->ctls;
		if (created) {
			sbx_strlcpy(fresh->path[fresh->n], path, sizeof(fresh->path[0]));
			fresh->ctls[fresh->n++] = h->ctls;
		} else {
			reused = true;
		}
		if ((h->ctls & CG_CPUSET) && v1_cpuset_inherit(h->parent, path, err) < 0)
			goto fail;
	}
	if (reused || old->n) {
		/* Left by a crash: empty every part of it, and drop the parts for controllers
		 * this sandbox does not use, whose stale limits attach would otherwise apply. */
		for (size_t i = 0; i < old->n; i++) {
			sbx_strlcpy(d->path[d->n], old->path[i], sizeof(d->path[0]));
			d->ctls[d->n++] = old->ctls[i];
		}
		if (kill_dirs(d, name, err) < 0) {
			sbx_err_wrap(err, "cannot reuse the cgroups of %s", name);
			goto fail;
		}
		d->n -= old->n;
		if (remove_dirs(m, old, err) < 0)
			goto fail;
	}
	for (size_t i = 0; i < d->n; i++)
		if (v1_apply(d->path[i], d->ctls[i], lim, reused, err) < 0)
			goto fail;
	return 0;
fail:
	/* Leave nothing we made behind; what existed before stays for the caller's destroy. */
	remove_dirs(m, fresh, NULL);
	return -1;
}

int sbx_cgroup_create(struct sbx_cgroup_mgr *m, const char *name, const struct sbx_cgroup_limits *lim, sbx_err *err)
{
	unsigned req, want;

	if (!name_ok(name))
		return bad_name(name, err);
	if (!lim)
		return sbx_err_set(err, SBX_E_INTERNAL, "sbx_cgroup_create: no limits given");
	req = requested_ctls(lim);
	if (lim->millicpus && (uint64_t)lim->millicpus * (CG_PERIOD_US / 1000) < CG_MIN_QUOTA_US)
		return sbx_err_set(err, SBX_E_INVALID, "CPU limit too small: the kernel's minimum is 0.01 CPUs");
	if (req & ~m->avail)
		return refuse_missing(m, req & ~m->avail, err);
	if (m->version == SBX_CGROUP_NONE)
		return 0; /* nothing was asked for, and there is nothing to track with */
	/* pids always when available: it also counts the sandbox's processes. */
	want = req | (m->avail & CG_PIDS);
	if (m->version == SBX_CGROUP_V2)
		return create_v2(m, name, lim, want, err);
	return create_v1(m, name, lim, want | (m->avail & CG_FREEZER), err);
}

int sbx_cgroup_create_spare(struct sbx_cgroup_mgr *m, const char *name, uint32_t pids, sbx_err *err)
{
	struct sbx_cgroup_limits lim = {.pids = pids};
	unsigned want;

	if (!name_ok(name))
		return bad_name(name, err);
	if (m->version == SBX_CGROUP_NONE)
		return 0;
	want = m->avail & (CG_MEMORY | CG_CPU | CG_PIDS);
	if (m->version == SBX_CGROUP_V2)
		return create_v2(m, name, &lim, want, err);
	return create_v1(m, name, &lim, want | (m->avail & CG_FREEZER), err);
}

int sbx_cgroup_rename(struct sbx_cgroup_mgr *m, const char *from, const char *to, sbx_err *err)
{
	cleanup_free struct cg_dirs *d = calloc(1, sizeof(*d));
	cleanup_free struct cg_dirs *t = calloc(1, sizeof(*t));

	if (!name_ok(from))
		return bad_name(from, err);
	if (!name_ok(to))
		return bad_name(to, err);
	if (!d || !t)
		return sbx_err_sys(err, SBX_E_INTERNAL, ENOMEM, "cgroup rename");
	if (m->version == SBX_CGROUP_NONE)
		return 0;
	if (find_dirs(m, from, d) < 0)
		return sbx_err_sys(err, SBX_E_INVALID, errno, "cgroup path of %s", from);
	for (size_t i = 0; i < d->n; i++) {
		char dst[PATH_MAX], *slash;
		sbx_strlcpy(dst, d->path[i], sizeof(dst));
		slash = strrchr(dst, '/');
		if (!slash)
			return sbx_err_set(err, SBX_E_INTERNAL, "bad cgroup path %s", d->path[i]);
		*slash = '\0';
		if (m->version == SBX_CGROUP_V2)
			appendf(dst, sizeof(dst), "/%s%s", m->v2_child_prefix, to);
		else
			appendf(dst, sizeof(dst), "/%s", to);
		if (rename(d->path[i], dst) < 0)
			return sbx_err_sys(err, errc_for(errno), errno, "cannot rename cgroup %s to %s", d->path[i], dst);
	}
	return 0;
}

int sbx_cgroup_set_limits(struct sbx_cgroup_mgr *m, const char *name, const struct sbx_cgroup_limits *lim,
			  sbx_err *err)
{
	cleanup_free struct cg_dirs *d = calloc(1, sizeof(*d));
	unsigned req, have = 0;

	if (!name_ok(name))
		return bad_name(name, err);
	if (!d)
		return sbx_err_sys(err, SBX_E_INTERNAL, ENOMEM, "cgroup limits");
	req = requested_ctls(lim);
	if (lim->millicpus && (uint64_t)lim->millicpus * (CG_PERIOD_US / 1000) < CG_MIN_QUOTA_US)
		return sbx_err_set(err, SBX_E_INVALID, "CPU limit too small: the kernel's minimum is 0.01 CPUs");
	if (req & ~m->avail)
		return refuse_missing(m, req & ~m->avail, err);
	if (m->version == SBX_CGROUP_NONE)
		return 0;
	if (find_dirs(m, name, d) < 0)
		return sbx_err_sys(err, SBX_E_INVALID, errno, "cgroup path of %s", name);
	for (size_t i = 0; i < d->n; i++)
		have |= d->ctls[i];
	if (req & ~have)
		return refuse_missing(m, req & ~have, err);
	for (size_t i = 0; i < d->n; i++) {
		int r = m->version == SBX_CGROUP_V2 ? v2_apply(d->path[i], lim, true, err)
						    : v1_apply(d->path[i], d->ctls[i], lim, true, err);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* ---- the rest of the interface ---- */

int sbx_cgroup_open_dir(struct sbx_cgroup_mgr *m, const char *name)
{
	char path[PATH_MAX];

	if (!name_ok(name)) {
		errno = EINVAL;
		return -1;
	}
	if (m->version != SBX_CGROUP_V2) {
		errno = EOPNOTSUPP;
		return -1;
	}
	if (v2_dir(m, name, path, sizeof(path)) < 0)
		return -1;
	/* Not O_PATH: clone3(CLONE_INTO_CGROUP) refuses path-only descriptors. */
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

int sbx_cgroup_attach(struct sbx_cgroup_mgr *m, const char *name, pid_t pid, sbx_err *err)
{
	cleanup_free struct cg_dirs *d = calloc(1, sizeof(*d));
	char val[24];

	if (!name_ok(name))
		return bad_name(name, err);
	if (pid <= 0)
		return sbx_err_set(err, SBX_E_INTERNAL, "sbx_cgroup_attach: invalid pid %d", (int)pid);
	if (!d)
		return sbx_err_sys(err, SBX_E_INTERNAL, ENOMEM, "cgroup attach");
	if (m->version == SBX_CGROUP_NONE)
		return 0;
	if (find_dirs(m, name, d) < 0)
		return sbx_err_sys(err, SBX_E_INVALID, errno, "cgroup path of %s", name);
	if (d->n == 0)
		return sbx_err_set(err, SBX_E_NOTFOUND, "sandbox %s has no cgroup: create it first", name);
	snprintf(val, sizeof(val), "%d", (int)pid);
	for (size_t i = 0; i < d->n; i++)
		if (cg_write(d->path[i], "cgroup.procs", val, err) < 0)
			return sbx_err_wrap(err, "cannot move process %d into sandbox %s", (int)pid, name);
	return 0;
}

int sbx_cgroup_stats(struct sbx_cgroup_mgr *m, const char *name, struct sbx_cgroup_stats *st)
{
	cleanup_free struct cg_dirs *d = calloc(1, sizeof(*d));
	char buf[SMALL_MAX];
	uint64_t v;

	if (!name_ok(name) || !st) {
		errno = EINVAL;
		return -1;
	}
	memset(st, 0, sizeof(*st));
	if (!d)
		return -1;
	if (m->version == SBX_CGROUP_NONE) {
		errno = EOPNOTSUPP;
		return -1;
	}
	if (find_dirs(m, name, d) < 0)
		return -1;
	if (d->n == 0) {
		errno = ENOENT;
		return -1;
	}
	for (size_t i = 0; i < d->n; i++) {
		const char *dir = d->path[i];
		bool v2 = m->version == SBX_CGROUP_V2;

		if ((v2 || (d->ctls[i] & CG_MEMORY)) &&
		    read_small_in(dir, v2 ? "memory.current" : "memory.usage_in_bytes", buf, sizeof(buf)) == 0 &&
		    parse_u64(buf, &v) == 0)
			st->memory_current = v;
		if ((v2 || (d->ctls[i] & CG_PIDS)) && read_small_in(dir, "pids.current", buf, sizeof(buf)) == 0 &&
		    parse_u64(buf, &v) == 0)
			st->pids_current = v;
		if (v2) {
			if (read_small_in(dir, "memory.events", buf, sizeof(buf)) == 0 &&
			    keyed_u64(buf, "oom_kill", &v) == 0 && v > 0)
				st->oom_killed = true;
		} else if (d->ctls[i] & CG_MEMORY) {
			/* oom_kill appeared in 4.13; before that, hitting the limit is the best hint. */
			if (read_small_in(dir, "memory.oom_control", buf, sizeof(buf)) == 0 &&
			    keyed_u64(buf, "oom_kill", &v) == 0)
				st->oom_killed = v > 0;
			else if (read_small_in(dir, "memory.failcnt", buf, sizeof(buf)) == 0 &&
				 parse_u64(buf, &v) == 0)
				st->oom_killed = v > 0;
		}
	}
	return 0;
}

/* Calls cb for each valid sandbox name in `parent`, skipping those in `skip` (directories
 * already reported from an earlier v1 hierarchy). */
static int list_parent(const char *parent, const char *child_prefix, const char *const *skip, size_t nskip,
		       void (*cb)(void *ud, const char *name), void *ud)
{
	DIR *d = opendir(parent);
	struct dirent *de;
	size_t plen = strlen(child_prefix);
	int count = 0;

	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d))) {
		const char *name = de->d_name;
		bool dup = false;
		char p[PATH_MAX];

		if (strncmp(name, child_prefix, plen) != 0 || !name_ok(name + plen) || !dirent_is_dir(d, de))
			continue;
		for (size_t i = 0; i < nskip && !dup; i++)
			dup = pathf(p, sizeof(p), "%s/%s", skip[i], name) == 0 && is_dir(p);
		if (dup)
			continue;
		cb(ud, name + plen);
		count++;
	}
	closedir(d);
	return count;
}

int sbx_cgroup_list(struct sbx_cgroup_mgr *m, void (*cb)(void *ud, const char *name), void *ud)
{
	const char *seen[CG_MAX_HIER] = {0};
	size_t nseen = 0;
	int total = 0;

	if (m->version == SBX_CGROUP_V2)
		return list_parent(m->v2_parent, m->v2_child_prefix, NULL, 0, cb, ud);
	for (size_t i = 0; i < m->nhier && m->version == SBX_CGROUP_V1; i++) {
		int r;

		if (!m->hier[i].usable)
			continue;
		r = list_parent(m->hier[i].parent, "", seen, nseen, cb, ud);
		if (r < 0)
			return -1;
		total += r;
		seen[nseen++] = m->hier[i].parent;
	}
	return total;
}
