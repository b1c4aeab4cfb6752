
#include "idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "kcompat.h"
#include "log.h"
#include "util.h"

const char *sbx_idmap_mode_name(enum sbx_idmap_mode mode)
{
	switch (mode) {
	case SBX_IDMAP_ROOT: return "root";
	case SBX_IDMAP_SUBUID: return "subuid";
	default: return "single";
	}
}

bool sbx_idmap_has_root(const struct sbx_idmap *m)
{
	return m->mode != SBX_IDMAP_SINGLE;
}

/* Finds "name:start:count" or "uid:start:count" for us in /etc/subuid or /etc/subgid. */
static bool subid_range(const char *file, const char *name, unsigned long id, unsigned long *start,
			unsigned long *count)
{
	cleanup_fclose FILE *f = fopen(file, "re");
	char line[512], idstr[32];

	if (!f)
		return false;
	snprintf(idstr, sizeof(idstr), "%lu", id);
	while (fgets(line, sizeof(line), f)) {
		/* owner:start:count */
		char *owner = line, *s = strchr(line, ':'), *c;
		int64_t st, cnt;

		if (!s)
			continue;
		*s++ = '\0';
		c = strchr(s, ':');
		if (!c)
			continue;
		*c++ = '\0';
		c[strcspn(c, "\n")] = '\0';
		if (strcmp(owner, name) != 0 && strcmp(owner, idstr) != 0)
			continue;
		if (sbx_parse_i64(s, 1, UINT32_MAX, &st) < 0 || sbx_parse_i64(c, 1, UINT32_MAX, &cnt) < 0)
			continue;
		*start = (unsigned long)st;
		*count = (unsigned long)cnt;
		return true;
	}
	return false;
}

static bool find_prog(const char *name, char *out, size_t outlen)
{
	return sbx_find_in_path("/", "/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin", name, out, outlen);
}

/* A user namespace with the given maps, held by a parked child: returns an fd to it. */
static int make_userns(const char *uid_map, const char *gid_map, sbx_err *err)
{
	int sync[2];
	char path[64];
	pid_t pid;
	int fd = -1;

	if (pipe2(sync, O_CLOEXEC) < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		close(sync[0]);
		close(sync[1]);
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "fork");
	}
	if (pid == 0) {
		char c;
		close(sync[1]);
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(1);
		(void)!read(sync[0], &c, 1); /* parked until the parent has what it needs */
		_exit(0);
	}
	close(sync[0]);
	/* Wait until the child is in its namespace: its ns/user link changes. */
	char self_ns[64] = "", child_ns[64] = "";
	if (readlink("/proc/self/ns/user", self_ns, sizeof(self_ns) - 1) < 0)
		self_ns[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	for (int i = 0; i < 2000; i++) {
		ssize_t n = readlink(path, child_ns, sizeof(child_ns) - 1);
		if (n > 0) {
			child_ns[n] = '\0';
			if (strcmp(child_ns, self_ns) != 0)
				break;
		}
		usleep(500);
	}
	char mp[64];
	snprintf(mp, sizeof(mp), "/proc/%d/uid_map", (int)pid);
	if (sbx_write_str_at(AT_FDCWD, mp, uid_map) < 0) {
		sbx_err_sys(err, SBX_E_UNSUPPORTED, errno, "cannot write a uid map");
		goto out;
	}
	snprintf(mp, sizeof(mp), "/proc/%d/gid_map", (int)pid);
	if (sbx_write_str_at(AT_FDCWD, mp, gid_map) < 0) {
		sbx_err_sys(err, SBX_E_UNSUPPORTED, errno, "cannot write a gid map");
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		sbx_err_sys(err, SBX_E_UNSUPPORTED, errno, "cannot open %s", path);
out:
	close(sync[1]);
	waitpid(pid, NULL, 0);
	return fd;
}

int sbx_idmap_init(struct sbx_idmap *m, sbx_err *err)
{
	struct passwd *pw;
	unsigned long start, count;

	memset(m, 0, sizeof(*m));
	m->os_userns_fd = m->ws_userns_fd = -1;
	m->host_uid = geteuid();
	m->host_gid = getegid();
	pw = getpwuid(m->host_uid);

	if (m->host_uid == 0) {
		m->mode = SBX_IDMAP_ROOT;
		m->uid_base = SBX_ROOT_DEFAULT_BASE;
		m->gid_base = SBX_ROOT_DEFAULT_BASE;
		m->uid_count = m->gid_count = 65536;
		if (subid_range("/etc/subuid", "root", 0, &start, &count) && count >= 65536)
			m->uid_base = (uid_t)start;
		if (subid_range("/etc/subgid", "root", 0, &start, &count) && count >= 65536)
			m->gid_base = (gid_t)start;

		char umap[256], gmap[256];
		snprintf(umap, sizeof(umap), "0 %u 65536\n", m->uid_base);
		snprintf(gmap, sizeof(gmap), "0 %u 65536\n", m->gid_base);
		m->os_userns_fd = make_userns(umap, gmap, err);
		if (m->os_userns_fd < 0)
			return sbx_err_wrap(err, "preparing the id mapping for the sandbox's system directories");
		/* The workspace: the invoking user's files belong to the agent; system ids keep their
		 * meaning; files root-inside creates land on the base id, never on a real user. */
		snprintf(umap, sizeof(umap), "%u %u 1\n1 %u 999\n%u %u 1\n", (unsigned)m->host_uid,
			 m->uid_base + SBX_AGENT_UID, m->uid_base + 1, m->uid_base, m->uid_base);
		snprintf(gmap, sizeof(gmap), "%u %u 1\n1 %u 999\n%u %u 1\n", (unsigned)m->host_gid,
			 m->gid_base + SBX_AGENT_GID, m->gid_base + 1, m->gid_base, m->gid_base);
		m->ws_userns_fd = make_userns(umap, gmap, err);
		if (m->ws_userns_fd < 0)
			return sbx_err_wrap(err, "preparing the id mapping for workspaces");
		return 0;
	}

	const char *name = pw ? pw->pw_name : "";
	unsigned long gstart, gcount;
	if (find_prog("newuidmap", m->newuidmap, sizeof(m->newuidmap)) &&
	    find_prog("newgidmap", m->newgidmap, sizeof(m->newgidmap)) &&
	    subid_range("/etc/subuid", name, m->host_uid, &start, &count) && count > SBX_AGENT_UID &&
	    subid_range("/etc/subgid", name, m->host_uid, &gstart, &gcount) && gcount > SBX_AGENT_GID) {
		m->mode = SBX_IDMAP_SUBUID;
		m->uid_base = (uid_t)start;
		m->uid_count = (uint32_t)(count > 65536 ? 65536 : count);
		m->gid_base = (gid_t)gstart;
		m->gid_count = (uint32_t)(gcount > 65536 ? 65536 : gcount);
		return 0;
	}
	m->mode = SBX_IDMAP_SINGLE;
	snprintf(m->why_not_root, sizeof(m->why_not_root),
		 "there is no root inside sandboxes of user %s: give the user subordinate ids "
		 "(`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s` as root) and install uidmap",
		 name[0] ? name : "?", name[0] ? name : "USER");
	return 0;
}

void sbx_idmap_free(struct sbx_idmap *m)
{
	close_and_reset(m->os_userns_fd);
	close_and_reset(m->ws_userns_fd);
}

uid_t sbx_idmap_init_uid(const struct sbx_idmap *m)
{
	return sbx_idmap_has_root(m) ? 0 : SBX_AGENT_UID;
}

uid_t sbx_idmap_host_uid(const struct sbx_idmap *m, uid_t inside)
{
	switch (m->mode) {
	case SBX_IDMAP_ROOT:
		return inside < 65536 ? m->uid_base + inside : (uid_t)-1;
	case SBX_IDMAP_SUBUID:
		if (inside == SBX_AGENT_UID)
			return m->host_uid;
		return (uid_t)-1; /* subordinate ids are not ours to chown to */
	default:
		return inside == SBX_AGENT_UID ? m->host_uid : (uid_t)-1;
	}
}

gid_t sbx_idmap_host_gid(const struct sbx_idmap *m, gid_t inside)
{
	switch (m->mode) {
	case SBX_IDMAP_ROOT:
		return inside < 65536 ? m->gid_base + inside : (gid_t)-1;
	default:
		return inside == SBX_AGENT_GID ? m->host_gid : (gid_t)-1;
	}
}

static int run_map_helper(const char *prog, pid_t pid, char *const args[], sbx_err *err)
{
	char pidstr[16];
	char *argv[16];
	size_t n = 0;
	pid_t c;
	int ws;

	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	argv[n++] = (char *)prog;
	argv[n++] = pidstr;
	for (size_t i = 0; args[i] && n < SBX_ARRAY_LEN(argv) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	c = fork();
	if (c < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "fork");
	if (c == 0) {
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0)
			dup2(devnull, 1);
		execv(prog, argv);
		_exit(127);
	}
	while (waitpid(c, &ws, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
		return sbx_err_set(err, SBX_E_UNSUPPORTED,
				   "%s failed (exit %d): check the subordinate id ranges in /etc/subuid and /etc/subgid",
				   prog, WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
	return 0;
}

static int write_map(pid_t pid, const char *file, const char *map, sbx_err *err)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	if (sbx_write_str_at(AT_FDCWD, path, map) < 0)
		return sbx_err_sys(err, SBX_E_UNSUPPORTED, errno, "cannot write %s", path);
	return 0;
}

int sbx_idmap_apply(const struct sbx_idmap *m, pid_t pid, sbx_err *err)
{
	char map[256];

	switch (m->mode) {
	case SBX_IDMAP_ROOT:
		snprintf(map, sizeof(map), "0 %u 65536\n", m->uid_base);
		if (write_map(pid, "uid_map", map, err) < 0)
			return -1;
		snprintf(map, sizeof(map), "0 %u 65536\n", m->gid_base);
		return write_map(pid, "gid_map", map, err);
	case SBX_IDMAP_SUBUID: {
		char u0[16], u1[16], u2[16], u3[16], u4[16], u5[16];
		uint32_t rest = m->uid_count - SBX_AGENT_UID;
		snprintf(u0, sizeof(u0), "%u", (unsigned)m->uid_base);
		snprintf(u1, sizeof(u1), "%u", (unsigned)m->host_uid);
		snprintf(u2, sizeof(u2), "%u", (unsigned)(m->uid_base + SBX_AGENT_UID));
		snprintf(u3, sizeof(u3), "%u", rest);
		char *uargs[] = {"0", u0, "1000", "1000", u1, "1", "1001", u2, u3, NULL};
		if (run_map_helper(m->newuidmap, pid, uargs, err) < 0)
			return -1;
		rest = m->gid_count - SBX_AGENT_GID;
		snprintf(u0, sizeof(u0), "%u", (unsigned)m->gid_base);
		snprintf(u4, sizeof(u4), "%u", (unsigned)m->host_gid);
		snprintf(u2, sizeof(u2), "%u", (unsigned)(m->gid_base + SBX_AGENT_GID));
		snprintf(u5, sizeof(u5), "%u", rest);
		char *gargs[] = {"0", u0, "1000", "1000", u4, "1", "1001", u2, u5, NULL};
		return run_map_helper(m->newgidmap, pid, gargs, err);
	}
	default:
		snprintf(map, sizeof(map), "%d %u 1\n", SBX_AGENT_UID, (unsigned)m->host_uid);
		if (write_map(pid, "uid_map", map, err) < 0)
			return -1;
		if (write_map(pid, "setgroups", "deny", err) < 0)
			return -1;
		snprintf(map, sizeof(map), "%d %u 1\n", SBX_AGENT_GID, (unsigned)m->host_gid);
		return write_map(pid, "gid_map", map, err);
	}
}

int sbx_idmap_mount_fd(const struct sbx_idmap *m, const char *path, bool workspace, bool recursive, sbx_err *err)
{
	struct sbx_mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP};
	unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
	int fd;

	if (m->mode != SBX_IDMAP_ROOT)
		return sbx_err_set(err, SBX_E_INTERNAL, "idmapped mounts are only used when sbx runs as root");
	fd = sbx_open_tree(AT_FDCWD, path, flags);
	if (fd < 0)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot clone the mount of %s", path);
	attr.userns_fd = (uint64_t)(workspace ? m->ws_userns_fd : m->os_userns_fd);
	if (sbx_mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr) < 0) {
		int e = errno;
		close(fd);
		return sbx_err_sys(err, SBX_E_UNSUPPORTED, e,
				   "the file system of %s does not support idmapped mounts (needed when sbx runs as "
				   "root); run sbx as a regular user, or use a workspace on ext4, xfs, btrfs or tmpfs",
				   path);
	}
	return fd;
}

int sbx_idmap_tree_fd(const char *path, sbx_err *err)
{
	int fd = sbx_open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);

	if (fd < 0)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot clone the mount of %s", path);
	return fd;
}

int sbx_idmap_overlay_fd(const struct sbx_idmap *m, const char *lower, const char *upper, const char *work,
			 sbx_err *err)
{
	char lowerdir[64];
	int lfd, ofd, mfd;

	lfd = sbx_idmap_mount_fd(m, lower, false, false, err);
	if (lfd < 0)
		return -1;
	/* The idmapped lower layer is a detached mount: overlayfs reaches it through the magic
	 * link of the descriptor that holds it. */
	snprintf(lowerdir, sizeof(lowerdir), "/proc/self/fd/%d", lfd);
	ofd = sbx_fsopen("overlay", SBX_FSOPEN_CLOEXEC);
	if (ofd < 0) {
		close(lfd);
		return sbx_err_sys(err, SBX_E_UNSUPPORTED, errno, "overlayfs is not available");
	}
	if (sbx_fsconfig(ofd, SBX_FSCONFIG_SET_STRING, "lowerdir", lowerdir, 0) < 0 ||
	    sbx_fsconfig(ofd, SBX_FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
	    sbx_fsconfig(ofd, SBX_FSCONFIG_SET_STRING, "workdir", work, 0) < 0 ||
	    sbx_fsconfig(ofd, SBX_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		int e = errno;
		close(lfd);
		close(ofd);
		return sbx_err_sys(err, SBX_E_UNSUPPORTED, e, "cannot create the writable layer over %s", lower);
	}
	mfd = sbx_fsmount(ofd, SBX_FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
	int e = errno;
	close(lfd);
	close(ofd);
	if (mfd < 0)
		return sbx_err_sys(err, SBX_E_UNSUPPORTED, e, "cannot mount the writable layer over %s", lower);
	return mfd;
}

int sbx_idmap_rm_rf(const struct sbx_idmap *m, const char *path, sbx_err *err)
{
	int sync[2], res[2];
	pid_t pid;
	int ws, child_errno = 0;

	if (m->mode != SBX_IDMAP_SUBUID) {
		if (sbx_rm_rf(path) < 0)
			return sbx_err_sys(err, SBX_E_IO, errno, "cannot remove %s", path);
		return 0;
	}
	if (pipe2(sync, O_CLOEXEC) < 0 || pipe2(res, O_CLOEXEC) < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "pipe");
	pid = fork();
	if (pid < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "fork");
	if (pid == 0) {
		char c;
		int e = 0;
		close(sync[1]);
		close(res[0]);
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(1);
		(void)!write(res[1], &e, 1); /* "in the namespace" */
		if (read(sync[0], &c, 1) != 1)
			_exit(1);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			e = errno;
		else if (sbx_rm_rf(path) < 0)
			e = errno;
		(void)!write(res[1], &e, sizeof(e));
		_exit(e ? 1 : 0);
	}
	close(sync[0]);
	close(res[1]);
	char c;
	if (read(res[0], &c, 1) == 1 && sbx_idmap_apply(m, pid, err) == 0) {
		(void)!write(sync[1], "g", 1);
		if (read(res[0], &child_errno, sizeof(child_errno)) != sizeof(child_errno))
			child_errno = EIO;
	} else {
		child_errno = child_errno ? child_errno : EPERM;
	}
	close(sync[1]);
	close(res[0]);
	waitpid(pid, &ws, 0);
	if (child_errno)
		return sbx_err_sys(err, SBX_E_IO, child_errno, "cannot remove %s", path);
	return 0;
}
