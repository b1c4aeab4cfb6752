
#include "mounts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "initproto.h"
#include "kcompat.h"
#include "util.h"

#define BASE "/tmp"          /* scratch tmpfs we pivot into first */
#define OLDROOT "/oldroot"   /* the host root while we build */
#define NEWROOT "/newroot"   /* the sandbox root being built */
#define STAGING "/staging"   /* where fd-based lower layers are attached */
#define EMPTY_FILE "/empty-file"
#define EMPTY_DIR "/empty-dir"

static int fail(char *errbuf, size_t errlen, int e, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *errbuf, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
	n = strlen(errbuf);
	if (e && n < errlen)
		snprintf(errbuf + n, errlen - n, ": %s", strerror(e));
	errno = e ? e : EINVAL;
	return -1;
}

/* Absolute, no "..", no "//" surprises: destinations come from the daemon, but a path
 * component that climbs out of the new root must never be followed. */
static int check_path(const char *p)
{
	if (!p || p[0] != '/' || strlen(p) >= PATH_MAX - 64)
		return -1;
	for (const char *s = p; *s; s++) {
		if (s[0] == '/' && s[1] == '.' && s[2] == '.' && (s[3] == '/' || s[3] == '\0'))
			return -1;
	}
	return 0;
}

/* "Host" paths in the plan: an absolute host path is read below the old root; "@scratch/..."
 * names the sandbox's scratch tmpfs (ephemeral sandboxes keep their writable layers there,
 * never on the host's disk). */
#define SCRATCH "/scratch"
static bool is_scratch(const char *p)
{
	return p && strncmp(p, "@scratch", 8) == 0 && (p[8] == '/' || p[8] == '\0');
}

static int host_path(char *out, size_t outlen, const char *p)
{
	if (is_scratch(p)) {
		if (strstr(p, "/../") || sbx_str_has_suffix(p, "/.."))
			return -1;
		return (size_t)snprintf(out, outlen, SCRATCH "%s", p + 8) >= outlen ? -1 : 0;
	}
	if (check_path(p) < 0)
		return -1;
	return (size_t)snprintf(out, outlen, OLDROOT "%s", p) >= outlen ? -1 : 0;
}

static int join(char *out, size_t outlen, const char *prefix, const char *path)
{
	if ((size_t)snprintf(out, outlen, "%s%s", prefix, path) >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Create every missing directory component of `path` (inside NEWROOT), refusing to pass
 * through symlinks: a directory planted as a symlink by an earlier layer must not redirect
 * a mount. */
static int mkdirs_nofollow(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	cleanup_close int dfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	char *p, *next;

	if (dfd < 0)
		return -1;
	if (sbx_strlcpy(tmp, path, sizeof(tmp)) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = tmp + 1; p && *p; p = next) {
		int nfd;
		next = strchr(p, '/');
		if (next)
			*next++ = '\0';
		if (!*p)
			continue;
		if (mkdirat(dfd, p, mode) < 0 && errno != EEXIST)
			return -1;
		nfd = openat(dfd, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0)
			return -1;
		close(dfd);
		dfd = nfd;
	}
	return 0;
}

static int parent_dirs(const char *path)
{
	char tmp[PATH_MAX];
	char *slash;

	sbx_strlcpy(tmp, path, sizeof(tmp));
	slash = strrchr(tmp, '/');
	if (!slash || slash == tmp)
		return 0;
	*slash = '\0';
	return mkdirs_nofollow(tmp, 0755);
}

/* Create the mount point: a directory, or an empty file when binding a non-directory. */
static int make_mountpoint(const char *path, bool is_dir)
{
	if (is_dir)
		return mkdirs_nofollow(path, 0755);
	struct stat st;
	if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
		return 0; /* an existing file is a mount point already (and may not be ours to open) */
	if (parent_dirs(path) < 0)
		return -1;
	int fd = open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 && errno != EEXIST && errno != EISDIR)
		return -1;
	if (fd >= 0)
		close(fd);
	return 0;
}

static uint64_t attr_flags(uint32_t f)
{
	uint64_t a = 0;

	if (f & SBX_OPF_RO)
		a |= MOUNT_ATTR_RDONLY;
	if (f & SBX_OPF_NOSUID)
		a |= MOUNT_ATTR_NOSUID;
	if (f & SBX_OPF_NODEV)
		a |= MOUNT_ATTR_NODEV;
	if (f & SBX_OPF_NOEXEC)
		a |= 0x00000008; /* MOUNT_ATTR_NOEXEC */
	return a;
}

/* Change flags of an existing mount without disturbing the ones the kernel has locked (a mount
 * inherited from a more privileged namespace keeps nosuid/nodev/ro: mount_setattr only sets). */
static int set_mount_flags(const char *path, uint32_t flags, bool recursive)
{
	struct sbx_mount_attr attr = {.attr_set = attr_flags(flags)};

	if (!attr.attr_set)
		return 0;
	return sbx_mount_setattr(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr);
}

int sbx_mounts_prepare(char *errbuf, size_t errlen)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail(errbuf, errlen, errno, "cannot make mounts private");
	if (mount("tmpfs", BASE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k") < 0)
		return fail(errbuf, errlen, errno, "cannot mount the scratch tmpfs");
	if (chdir(BASE) < 0 || mkdir("oldroot", 0755) < 0 || mkdir("newroot", 0755) < 0 ||
	    mkdir("staging", 0755) < 0 || mkdir("scratch", 0755) < 0)
		return fail(errbuf, errlen, errno, "cannot prepare the scratch tmpfs");
	if (syscall(SYS_pivot_root, BASE, BASE OLDROOT) < 0)
		return fail(errbuf, errlen, errno, "pivot_root into the scratch tmpfs failed");
	if (chdir("/") < 0)
		return fail(errbuf, errlen, errno, "chdir /");
	int fd = open(EMPTY_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0000);
	if (fd < 0 || mkdir(EMPTY_DIR, 0000) < 0)
		return fail(errbuf, errlen, errno, "cannot create mask sources");
	close(fd);
	/* The new root is its own tmpfs so it can become "/" and later be made read-only. */
	if (mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
		return fail(errbuf, errlen, errno, "cannot mount the new root");
	return 0;
}

static int op_tmpfs(const struct sbx_mount_op *op, const char *dest, char *errbuf, size_t errlen)
{
	char opts[128];

	if (mkdirs_nofollow(dest, 0755) < 0)
		return fail(errbuf, errlen, errno, "cannot create %s", op->dest);
	snprintf(opts, sizeof(opts), "mode=%04o,size=%llu", op->mode ? op->mode : 0755,
		 (unsigned long long)(op->size ? op->size : 64ULL << 20));
	if (mount("tmpfs", dest, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return fail(errbuf, errlen, errno, "cannot mount tmpfs on %s", op->dest);
	if (set_mount_flags(dest, op->flags, false) < 0)
		return fail(errbuf, errlen, errno, "cannot set flags on %s", op->dest);
	return 0;
}

static int op_bind(const struct sbx_mount_op *op, const char *dest, char *errbuf, size_t errlen)
{
	char src[PATH_MAX];
	struct stat st;
	bool rec = op->flags & SBX_OPF_RECURSIVE;

	if (op->fd >= 0) {
		if (fstat(op->fd, &st) < 0)
			return fail(errbuf, errlen, errno, "bad mount fd for %s", op->dest);
		if (make_mountpoint(dest, S_ISDIR(st.st_mode)) < 0)
			return fail(errbuf, errlen, errno, "cannot create %s", op->dest);
		if (sbx_move_mount(op->fd, "", AT_FDCWD, dest, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return fail(errbuf, errlen, errno, "cannot attach the mount for %s", op->dest);
	} else {
		if (host_path(src, sizeof(src), op->src) < 0)
			return fail(errbuf, errlen, EINVAL, "bad bind source for %s", op->dest);
		if (stat(src, &st) < 0) {
			if (errno == ENOENT && (op->flags & SBX_OPF_OPTIONAL))
				return 0;
			return fail(errbuf, errlen, errno, "cannot bind %s", op->src);
		}
		if (make_mountpoint(dest, S_ISDIR(st.st_mode)) < 0)
			return fail(errbuf, errlen, errno, "cannot create %s", op->dest);
		if (mount(src, dest, NULL, MS_BIND | (rec ? MS_REC : 0), NULL) < 0)
			return fail(errbuf, errlen, errno, "cannot bind %s to %s", op->src, op->dest);
	}
	if (set_mount_flags(dest, op->flags, rec) < 0)
		return fail(errbuf, errlen, errno, "cannot set flags on %s", op->dest);
	return 0;
}

/* overlayfs option values must not contain the characters it uses as separators. */
static bool overlay_safe(const char *p)
{
	return p && !strpbrk(p, ",:\\ \t\n=");
}

static int op_overlay(const struct sbx_mount_op *op, const char *dest, char *errbuf, size_t errlen)
{
	char lower[PATH_MAX], upper[PATH_MAX], work[PATH_MAX], opts[3 * PATH_MAX + 64];
	static unsigned staging_seq;

	if (!overlay_safe(op->upper) || !overlay_safe(op->work))
		return fail(errbuf, errlen, EINVAL,
			    "state path for %s contains a character overlayfs cannot take (',', ':', '\\', '=', space)",
			    op->dest);
	if (op->fd >= 0) {
		snprintf(lower, sizeof(lower), STAGING "/%u", staging_seq++);
		if (mkdir(lower, 0755) < 0 ||
		    sbx_move_mount(op->fd, "", AT_FDCWD, lower, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return fail(errbuf, errlen, errno, "cannot attach the lower layer for %s", op->dest);
	} else {
		if (!overlay_safe(op->src) || check_path(op->src) < 0 ||
		    join(lower, sizeof(lower), OLDROOT, op->src) < 0)
			return fail(errbuf, errlen, EINVAL, "bad lower layer for %s", op->dest);
	}
	if (host_path(upper, sizeof(upper), op->upper) < 0 || host_path(work, sizeof(work), op->work) < 0)
		return fail(errbuf, errlen, ENAMETOOLONG, "layer path too long for %s", op->dest);
	if (op->has_owner && chown(upper, op->uid, op->gid) < 0 && errno != EINVAL)
		return fail(errbuf, errlen, errno, "cannot set the owner of %s", op->upper);
	if (mkdirs_nofollow(dest, 0755) < 0)
		return fail(errbuf, errlen, errno, "cannot create %s", op->dest);
	snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s,userxattr", lower, upper, work);
	if (mount("overlay", dest, "overlay", MS_NOSUID | MS_NODEV, opts) < 0)
		return fail(errbuf, errlen, errno, "cannot mount the writable layer on %s", op->dest);
	return 0;
}

static int op_dev(const char *dest, char *errbuf, size_t errlen)
{
	static const char *nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	char path[PATH_MAX], src[PATH_MAX];

	if (mkdirs_nofollow(dest, 0755) < 0 ||
	    mount("tmpfs", dest, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
		return fail(errbuf, errlen, errno, "cannot mount /dev");
	for (size_t i = 0; i < SBX_ARRAY_LEN(nodes); i++) {
		snprintf(path, sizeof(path), "%s/%s", dest, nodes[i]);
		snprintf(src, sizeof(src), OLDROOT "/dev/%s", nodes[i]);
		if (make_mountpoint(path, false) < 0 || mount(src, path, NULL, MS_BIND, NULL) < 0)
			return fail(errbuf, errlen, errno, "cannot provide /dev/%s", nodes[i]);
	}
	snprintf(path, sizeof(path), "%s/pts", dest);
	if (mkdir(path, 0755) < 0 ||
	    mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0)
		return fail(errbuf, errlen, errno, "cannot mount /dev/pts");
	snprintf(path, sizeof(path), "%s/shm", dest);
	if (mkdir(path, 0755) < 0 ||
	    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=256m") < 0)
		return fail(errbuf, errlen, errno, "cannot mount /dev/shm");
	static const struct {
		const char *name, *target;
	} links[] = {{"ptmx", "pts/ptmx"},          {"fd", "/proc/self/fd"},
		     {"stdin", "/proc/self/fd/0"},  {"stdout", "/proc/self/fd/1"},
		     {"stderr", "/proc/self/fd/2"}, {"core", "/proc/kcore"}};
	for (size_t i = 0; i < SBX_ARRAY_LEN(links); i++) {
		if (strcmp(links[i].name, "core") == 0)
			continue; /* never offer kcore */
		snprintf(path, sizeof(path), "%s/%s", dest, links[i].name);
		if (symlink(links[i].target, path) < 0)
			return fail(errbuf, errlen, errno, "cannot create /dev/%s", links[i].name);
	}
	return 0;
}

static int op_mask(const char *dest, const char *shown, char *errbuf, size_t errlen)
{
	struct stat st;

	if (lstat(dest, &st) < 0)
		return errno == ENOENT ? 0 : fail(errbuf, errlen, errno, "cannot inspect %s", shown);
	if (S_ISLNK(st.st_mode))
		return 0; /* a symlink points somewhere we decide about separately */
	if (mount(S_ISDIR(st.st_mode) ? EMPTY_DIR : EMPTY_FILE, dest, NULL, MS_BIND, NULL) < 0)
		return fail(errbuf, errlen, errno, "cannot hide %s", shown);
	struct sbx_mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | 0x8};
	if (sbx_mount_setattr(AT_FDCWD, dest, 0, &attr) < 0)
		return fail(errbuf, errlen, errno, "cannot make %s read-only", shown);
	return 0;
}

static bool is_mountpoint(const char *path)
{
	struct stat a, b;
	char parent[PATH_MAX];

	if (snprintf(parent, sizeof(parent), "%s/..", path) >= (int)sizeof(parent))
		return false;
	if (stat(path, &a) < 0 || stat(parent, &b) < 0)
		return false;
	return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

static int op_remount(const struct sbx_mount_op *op, const char *dest, char *errbuf, size_t errlen)
{
	if (access(dest, F_OK) < 0) {
		if (op->flags & SBX_OPF_OPTIONAL)
			return 0;
		return fail(errbuf, errlen, errno, "cannot remount %s", op->dest);
	}
	/* A path that is not a mount point of its own gets a self-bind first, so the flags apply
	 * to exactly that subtree (e.g. /proc/sys read-only inside a writable /proc). */
	if (!is_mountpoint(dest) && mount(dest, dest, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail(errbuf, errlen, errno, "cannot isolate %s", op->dest);
	if (set_mount_flags(dest, op->flags, op->flags & SBX_OPF_RECURSIVE) < 0)
		return fail(errbuf, errlen, errno, "cannot change flags of %s", op->dest);
	return 0;
}

static int op_file(const struct sbx_mount_op *op, const char *dest, char *errbuf, size_t errlen)
{
	cleanup_close int fd = -1;

	if (parent_dirs(dest) < 0)
		return fail(errbuf, errlen, errno, "cannot create the directory of %s", op->dest);
	/* Replace whatever is there (a file from the host's /etc in the lower layer, or a stale
	 * copy in the upper one) without following a symlink the agent may have planted. */
	if (unlink(dest) < 0 && errno != ENOENT && errno != EISDIR)
		return fail(errbuf, errlen, errno, "cannot replace %s", op->dest);
	fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, op->mode ? op->mode : 0644);
	if (fd < 0)
		return fail(errbuf, errlen, errno, "cannot create %s", op->dest);
	if (op->data_len && sbx_write_all(fd, op->data, op->data_len) < 0)
		return fail(errbuf, errlen, errno, "cannot write %s", op->dest);
	if (fchmod(fd, op->mode ? op->mode : 0644) < 0)
		return fail(errbuf, errlen, errno, "cannot chmod %s", op->dest);
	if (op->has_owner && fchown(fd, op->uid, op->gid) < 0)
		return fail(errbuf, errlen, errno, "cannot chown %s", op->dest);
	return 0;
}

/* Mirror the directory tree of src into dst (both below OLDROOT), owned by uid:gid, with
 * src's modes. Directories only; existing ones are left alone. */
static int skeleton(const char *src, const char *dst, uid_t uid, gid_t gid, int depth, size_t *budget)
{
	DIR *d;
	struct dirent *de;
	struct stat st;

	if (depth < 0 || *budget == 0 || stat(src, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	(*budget)--;
	if (mkdir(dst, st.st_mode & 07777) == 0) {
		if (chown(dst, uid, gid) < 0 || chmod(dst, st.st_mode & 07777) < 0)
			return -1;
	} else if (errno != EEXIST) {
		return -1;
	}
	d = opendir(src);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char s2[PATH_MAX], d2[PATH_MAX];
		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((size_t)snprintf(s2, sizeof(s2), "%s/%s", src, de->d_name) >= sizeof(s2) ||
		    (size_t)snprintf(d2, sizeof(d2), "%s/%s", dst, de->d_name) >= sizeof(d2))
			continue;
		if (skeleton(s2, d2, uid, gid, depth - 1, budget) < 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

static int op_skeleton(const struct sbx_mount_op *op, char *errbuf, size_t errlen)
{
	char src[PATH_MAX], dst[PATH_MAX];
	size_t budget = 20000;

	if (host_path(src, sizeof(src), op->src) < 0 || host_path(dst, sizeof(dst), op->upper) < 0)
		return fail(errbuf, errlen, EINVAL, "bad skeleton paths");
	if (skeleton(src, dst, op->uid, op->gid, (int)op->size, &budget) < 0)
		return fail(errbuf, errlen, errno, "cannot prepare the writable layer for %s", op->src);
	return 0;
}

int sbx_mounts_apply(const struct sbx_mount_op *op, char *errbuf, size_t errlen)
{
	char dest[PATH_MAX];

	if (op->kind == SBX_OP_SKELETON)
		return op_skeleton(op, errbuf, errlen);
	if (is_scratch(op->dest)) {
		/* Building the scratch area itself: a tmpfs and directories in it. */
		if (host_path(dest, sizeof(dest), op->dest) < 0)
			return fail(errbuf, errlen, EINVAL, "invalid scratch path '%s'", op->dest);
		if (op->kind == SBX_OP_TMPFS)
			return op_tmpfs(op, dest, errbuf, errlen);
		if (op->kind == SBX_OP_DIR) {
			if (mkdir(dest, op->mode ? op->mode : 0755) < 0 && errno != EEXIST)
				return fail(errbuf, errlen, errno, "cannot create %s", op->dest);
			if ((op->mode && chmod(dest, op->mode) < 0) ||
			    (op->has_owner && chown(dest, op->uid, op->gid) < 0))
				return fail(errbuf, errlen, errno, "cannot set up %s", op->dest);
			return 0;
		}
		return fail(errbuf, errlen, EINVAL, "operation %u cannot target the scratch area", op->kind);
	}
	if (check_path(op->dest) < 0 || join(dest, sizeof(dest), NEWROOT, op->dest) < 0)
		return fail(errbuf, errlen, EINVAL, "invalid destination '%s'", op->dest ? op->dest : "");
	switch (op->kind) {
	case SBX_OP_TMPFS:
		return op_tmpfs(op, dest, errbuf, errlen);
	case SBX_OP_BIND:
		return op_bind(op, dest, errbuf, errlen);
	case SBX_OP_OVERLAY:
		return op_overlay(op, dest, errbuf, errlen);
	case SBX_OP_PROC:
		if (mkdirs_nofollow(dest, 0555) < 0 ||
		    mount("proc", dest, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			return fail(errbuf, errlen, errno, "cannot mount proc on %s", op->dest);
		return 0;
	case SBX_OP_SYSFS:
		if (mkdirs_nofollow(dest, 0555) < 0 ||
		    mount("sysfs", dest, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			return fail(errbuf, errlen, errno, "cannot mount sysfs on %s", op->dest);
		return 0;
	case SBX_OP_DEV:
		return op_dev(dest, errbuf, errlen);
	case SBX_OP_DIR:
		if (mkdirs_nofollow(dest, op->mode ? op->mode : 0755) < 0)
			return fail(errbuf, errlen, errno, "cannot create %s", op->dest);
		if (op->mode && chmod(dest, op->mode) < 0)
			return fail(errbuf, errlen, errno, "cannot chmod %s", op->dest);
		if (op->has_owner && lchown(dest, op->uid, op->gid) < 0)
			return fail(errbuf, errlen, errno, "cannot chown %s", op->dest);
		return 0;
	case SBX_OP_SYMLINK:
		if (!op->src || parent_dirs(dest) < 0)
			return fail(errbuf, errlen, errno, "cannot create %s", op->dest);
		if (symlink(op->src, dest) < 0 && errno != EEXIST)
			return fail(errbuf, errlen, errno, "cannot create symlink %s", op->dest);
		return 0;
	case SBX_OP_FILE:
		return op_file(op, dest, errbuf, errlen);
	case SBX_OP_MASK:
		return op_mask(dest, op->dest, errbuf, errlen);
	case SBX_OP_REMOUNT:
		return op_remount(op, dest, errbuf, errlen);
	case SBX_OP_CHOWN:
		if (lchown(dest, op->uid, op->gid) < 0)
			return fail(errbuf, errlen, errno, "cannot chown %s", op->dest);
		return 0;
	default:
		return fail(errbuf, errlen, EINVAL, "unknown filesystem operation %u", op->kind);
	}
}

int sbx_mounts_finish(char *errbuf, size_t errlen)
{
	if (chdir(NEWROOT) < 0)
		return fail(errbuf, errlen, errno, "chdir to the new root");
	/* pivot_root(".", ".") stacks the old root on top of the new one; detaching it then
	 * removes the host (and the scratch tmpfs) from this mount namespace for good. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return fail(errbuf, errlen, errno, "pivot_root into the sandbox root failed");
	if (umount2(".", MNT_DETACH) < 0)
		return fail(errbuf, errlen, errno, "cannot detach the host root");
	if (chdir("/") < 0)
		return fail(errbuf, errlen, errno, "chdir /");
	struct sbx_mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
	if (sbx_mount_setattr(AT_FDCWD, "/", 0, &attr) < 0)
		return fail(errbuf, errlen, errno, "cannot make / read-only");
	return 0;
}
