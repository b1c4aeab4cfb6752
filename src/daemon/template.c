/* template.c - the "host" template: what a namespace sandbox sees.
 *
 *   /usr, /bin, /sbin, /lib*   the host's, read-only underneath a persistent writable layer
 *   /etc                       the host's minus every file other users could not read anyway
 *                              (shadow, ssh host keys, ...), plus our passwd/group/hosts,
 *                              under a persistent writable layer
 *   /var, /opt                 persistent, per sandbox (dpkg's database over the host's)
 *   /home/agent, /root         persistent homes
 *   /tmp, /run, /dev/shm       fresh tmpfs
 *   /dev                       null zero full random urandom tty, its own pts
 *   /proc, /sys                of the sandbox's own namespaces; sensitive parts hidden or
 *                              read-only
 *   workspaces                 at the same absolute path as on the host, rw or ro
 * Nothing else of the host exists inside. The daemon builds the list of operations; sbx-init
 * executes it (initproto.h). When sbx runs as root the host directories are attached through
 * idmapped mounts (idmap.h). */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "daemon.h"
#include "initproto.h"
#include "log.h"
#include "proxy.h"
#include "util.h"

#define PLAN_MAX_PKTS 32
#define PLAN_PKT_SOFT 60000 /* start a new packet beyond this size */
#define PLAN_MAX_FDS 64

struct sbx_setup_plan {
	sbx_buf pkts[PLAN_MAX_PKTS];
	int pkt_fds[PLAN_MAX_PKTS][8];
	size_t pkt_nfds[PLAN_MAX_PKTS];
	size_t npkts;
	size_t total_fds;
};

static sbx_buf *cur(struct sbx_setup_plan *p)
{
	return &p->pkts[p->npkts - 1];
}

static int plan_new_packet(struct sbx_setup_plan *p)
{
	if (p->npkts == PLAN_MAX_PKTS) {
		errno = E2BIG;
		return -1;
	}
	sbx_buf_init(&p->pkts[p->npkts], SBX_MSG_MAX);
	p->pkt_nfds[p->npkts] = 0;
	p->npkts++;
	return sbx_msg_begin(cur(p), SBX_MSG_SETUP, 0);
}

static int plan_room(struct sbx_setup_plan *p, bool need_fd)
{
	if (cur(p)->len > PLAN_PKT_SOFT || (need_fd && p->pkt_nfds[p->npkts - 1] == 8))
		return plan_new_packet(p);
	return 0;
}

static void plan_free(struct sbx_setup_plan *p)
{
	for (size_t i = 0; i < p->npkts; i++) {
		sbx_buf_free(&p->pkts[i]);
		for (size_t j = 0; j < p->pkt_nfds[i]; j++)
			close(p->pkt_fds[i][j]);
	}
	p->npkts = 0;
}

/* Adds an fd to the current packet; returns its global index. Takes ownership. */
static int plan_fd(struct sbx_setup_plan *p, int fd)
{
	if (plan_room(p, true) < 0 || p->total_fds >= PLAN_MAX_FDS) {
		close(fd);
		return -1;
	}
	p->pkt_fds[p->npkts - 1][p->pkt_nfds[p->npkts - 1]++] = fd;
	return (int)p->total_fds++;
}

struct op {
	uint32_t kind, flags, mode;
	uint64_t size;
	const char *src, *dest, *upper, *work;
	const void *data;
	size_t data_len;
	int fd_ref;     /* fd index + 1; 0 = no fd */
	bool owner;     /* set uid/gid on the result */
	uint32_t uid, gid;
};
#define OP(...) ((struct op){__VA_ARGS__})

static int plan_op(struct sbx_setup_plan *p, struct op o)
{
	sbx_buf *b;
	size_t off;

	if (plan_room(p, false) < 0)
		return -1;
	b = cur(p);
	if (sbx_msg_nest_begin(b, SBX_A_OP, &off) < 0 || sbx_msg_put_u32(b, SBX_OA_KIND, o.kind) < 0)
		return -1;
	if (o.flags && sbx_msg_put_u32(b, SBX_OA_FLAGS, o.flags) < 0)
		return -1;
	if (o.mode && sbx_msg_put_u32(b, SBX_OA_MODE, o.mode) < 0)
		return -1;
	if (o.size && sbx_msg_put_u64(b, SBX_OA_SIZE, o.size) < 0)
		return -1;
	if (o.src && sbx_msg_put_str(b, SBX_OA_SRC, o.src) < 0)
		return -1;
	if (o.dest && sbx_msg_put_str(b, SBX_OA_DEST, o.dest) < 0)
		return -1;
	if (o.upper && sbx_msg_put_str(b, SBX_OA_UPPER, o.upper) < 0)
		return -1;
	if (o.work && sbx_msg_put_str(b, SBX_OA_WORK, o.work) < 0)
		return -1;
	if (o.data && sbx_msg_put(b, SBX_OA_DATA, o.data, (uint32_t)o.data_len) < 0)
		return -1;
	if (o.fd_ref && sbx_msg_put_u32(b, SBX_OA_FD, (uint32_t)(o.fd_ref - 1)) < 0)
		return -1;
	if (o.owner && (sbx_msg_put_u32(b, SBX_OA_UID, o.uid) < 0 || sbx_msg_put_u32(b, SBX_OA_GID, o.gid) < 0))
		return -1;
	return sbx_msg_nest_end(b, off);
}

static int plan_str(struct sbx_setup_plan *p, uint16_t type, const char *s)
{
	if (plan_room(p, false) < 0)
		return -1;
	return sbx_msg_put_str(cur(p), type, s);
}

/* ---- the pieces of the view ---- */

static int sb_path(const struct sbx_sandbox *sb, char *out, size_t n, const char *rel)
{
	if ((size_t)snprintf(out, n, "%s/%s", sb->dir, rel) >= n) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int mkdir_owned(const struct sbx_daemon *d, const char *path, mode_t mode, uid_t in_uid, gid_t in_gid)
{
	uid_t u = sbx_idmap_host_uid(&d->idmap, in_uid);
	gid_t g = sbx_idmap_host_gid(&d->idmap, in_gid);

	if (mkdir(path, mode) < 0)
		return errno == EEXIST ? 0 : -1; /* existing: init may have given it to root inside */
	/* Chown only what we just may: root can give it to the sandbox's ids; an unprivileged user
	 * leaves it as its own (which is the agent's inside) and lets init fix the layer roots. */
	if (d->idmap.mode == SBX_IDMAP_ROOT && u != (uid_t)-1 && g != (gid_t)-1 && lchown(path, u, g) < 0)
		return -1;
	if (chmod(path, mode) < 0)
		return -1;
	return 0;
}

static const char *const layers[] = {"usr", "etc", "dpkg"};

int sbx_template_prepare_dirs(struct sbx_sandbox *sb, sbx_err *err)
{
	struct sbx_daemon *d = sb->d;
	char p[PATH_MAX];

	if (sb->spec.ephemeral)
		return 0; /* everything lives in the sandbox's scratch tmpfs */
	if (mkdir(sb->dir, 0700) < 0 && errno != EEXIST)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot create %s", sb->dir);
	/* The sandbox directory itself must be traversable by the sandbox's ids when root maps
	 * them to other host uids; its parent (state_dir) stays 0700 for everyone else. */
	if (d->idmap.mode == SBX_IDMAP_ROOT && chmod(sb->dir, 0711) < 0)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot chmod %s", sb->dir);
	static const struct {
		const char *rel;
		mode_t mode;
		uid_t uid;
	} dirs[] = {
		{"layers", 0711, 0},      {"home", 0750, SBX_AGENT_UID}, {"root", 0700, 0},
		{"layers/var", 0755, 0},  {"layers/opt", 0755, 0},       {"logs", 0700, (uid_t)-1},
	};
	for (size_t i = 0; i < SBX_ARRAY_LEN(dirs); i++) {
		if (sb_path(sb, p, sizeof(p), dirs[i].rel) < 0)
			return sbx_err_sys(err, SBX_E_INVALID, errno, "state path");
		if (dirs[i].uid == (uid_t)-1) {
			if (mkdir(p, dirs[i].mode) < 0 && errno != EEXIST)
				return sbx_err_sys(err, SBX_E_IO, errno, "cannot create %s", p);
		} else if (mkdir_owned(d, p, dirs[i].mode, dirs[i].uid, dirs[i].uid) < 0) {
			return sbx_err_sys(err, SBX_E_IO, errno, "cannot create %s", p);
		}
	}
	for (size_t i = 0; i < SBX_ARRAY_LEN(layers); i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "layers/%s", layers[i]);
		if (sb_path(sb, p, sizeof(p), rel) < 0 || mkdir_owned(d, p, 0755, 0, 0) < 0)
			return sbx_err_sys(err, SBX_E_IO, errno, "cannot create the %s layer", layers[i]);
		snprintf(rel, sizeof(rel), "layers/%s/upper", layers[i]);
		if (sb_path(sb, p, sizeof(p), rel) < 0 || mkdir_owned(d, p, 0755, 0, 0) < 0)
			return sbx_err_sys(err, SBX_E_IO, errno, "cannot create the %s layer", layers[i]);
		snprintf(rel, sizeof(rel), "layers/%s/work", layers[i]);
		if (sb_path(sb, p, sizeof(p), rel) < 0 || mkdir_owned(d, p, 0700, 0, 0) < 0)
			return sbx_err_sys(err, SBX_E_IO, errno, "cannot create the %s layer", layers[i]);
	}
	/* A skeleton /var so that the usual tools find their directories on first start. */
	static const struct {
		const char *rel;
		mode_t mode;
	} var[] = {{"layers/var/tmp", 01777},        {"layers/var/cache", 0755}, {"layers/var/lib", 0755},
		   {"layers/var/log", 0755},         {"layers/var/spool", 0755}, {"layers/var/cache/apt", 0755},
		   {"layers/var/lib/apt", 0755},     {"layers/var/lib/apt/lists", 0755},
		   {"layers/var/lib/dpkg", 0755},    {"layers/var/lib/misc", 0755}};
	for (size_t i = 0; i < SBX_ARRAY_LEN(var); i++) {
		if (sb_path(sb, p, sizeof(p), var[i].rel) < 0 || mkdir_owned(d, p, var[i].mode, 0, 0) < 0)
			return sbx_err_sys(err, SBX_E_IO, errno, "cannot create %s", p);
	}
	return 0;
}

/* Lines of a host passwd/group file worth keeping: system accounts (id < 1000) and nobody.
 * Real users of the host are not the sandbox's business. */
static int filtered_accounts(const char *host_file, bool is_group, sbx_buf *out)
{
	cleanup_free char *data = NULL;
	size_t len;
	char *line, *save = NULL;

	if (sbx_read_file_at(AT_FDCWD, host_file, 1 << 20, &data, &len) < 0)
		data = NULL;
	if (data) {
		for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char copy[1024];
			char *f[4] = {0};
			size_t nf = 0;
			int64_t id;
			if (sbx_strlcpy(copy, line, sizeof(copy)) >= sizeof(copy))
				continue;
			for (char *s = copy; nf < 4; nf++) {
				f[nf] = s;
				s = strchr(s, ':');
				if (!s)
					break;
				*s++ = '\0';
			}
			if (nf < 2 || !f[2] || sbx_parse_i64(f[2], 0, UINT32_MAX, &id) < 0)
				continue;
			if ((id >= 1000 && id != 65534) || (id == 1000))
				continue;
			if (sbx_buf_printf(out, "%s\n", line) < 0)
				return -1;
		}
	}
	if (is_group)
		return sbx_buf_printf(out, "agent:x:%d:\n", SBX_AGENT_GID);
	return sbx_buf_printf(out, "agent:x:%d:%d:sbx agent:/home/agent:/bin/bash\n", SBX_AGENT_UID, SBX_AGENT_GID);
}

/* Every entry of the host's /etc that other users cannot read: that is what a Unix system calls
 * a secret (shadow, gshadow, ssh host keys, ssl/private, sudoers, ...). Hidden inside.
 *
 * Walking /etc costs a few milliseconds, most of a sandbox's start; so the list is kept and an
 * inotify watch on every directory of /etc throws it away as soon as anything there is
 * created, removed, renamed or changes mode. The events are read before each use, and the
 * kernel queues them before the system call that caused them returns: the list is never
 * older than the file system. Without inotify, /etc is walked every time. */
struct etc_cache {
	char **paths;
	size_t n, alloc;
	int ifd; /* inotify, -1 when the list is not valid */
};
static struct etc_cache etc_cache = {.ifd = -1};
static uint64_t etc_generation; /* changes whenever the list may have changed */

#define ETC_WATCH (IN_CREATE | IN_DELETE | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)

static void etc_cache_drop(void)
{
	etc_generation++;
	for (size_t i = 0; i < etc_cache.n; i++)
		free(etc_cache.paths[i]);
	etc_cache.n = 0;
	close_and_reset(etc_cache.ifd);
}

static int etc_cache_add(const char *path)
{
	if (etc_cache.n == etc_cache.alloc) {
		size_t na = etc_cache.alloc ? etc_cache.alloc * 2 : 32;
		char **np = realloc(etc_cache.paths, na * sizeof(*np));
		if (!np)
			return -1;
		etc_cache.paths = np;
		etc_cache.alloc = na;
	}
	if (!(etc_cache.paths[etc_cache.n] = strdup(path)))
		return -1;
	etc_cache.n++;
	return 0;
}

static int etc_walk(const char *dir, int depth, int ifd, size_t *count)
{
	DIR *dp;
	struct dirent *de;
	int r = 0;

	if (depth > 6 || *count > 5000)
		return 0;
	if (ifd >= 0 && inotify_add_watch(ifd, dir, ETC_WATCH | IN_ONLYDIR) < 0)
		return -1; /* cannot watch it all: do not cache */
	dp = opendir(dir);
	if (!dp)
		return 0;
	while ((de = readdir(dp)) && r == 0) {
		char hp[PATH_MAX];
		struct stat st;
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if ((size_t)snprintf(hp, sizeof(hp), "%s/%s", dir, de->d_name) >= sizeof(hp))
			continue;
		if (fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISLNK(st.st_mode))
			continue;
		(*count)++;
		if (S_ISDIR(st.st_mode)) {
			if ((st.st_mode & 0005) != 0005)
				r = etc_cache_add(hp);
			else
				r = etc_walk(hp, depth + 1, ifd, count);
		} else if (!(st.st_mode & 0004)) {
			r = etc_cache_add(hp);
		}
	}
	closedir(dp);
	return r;
}

/* Reads pending events: anything at all means the list may be stale. */
static void etc_check(void)
{
	char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	if (etc_cache.ifd >= 0) {
		ssize_t n = read(etc_cache.ifd, ev, sizeof(ev));
		if (n != -1 || errno != EAGAIN)
			etc_cache_drop(); /* something changed (or the watch broke): walk again */
	}
}

uint64_t sbx_template_etc_generation(void)
{
	etc_check();
	/* Without a watch the list is recomputed every time: never equal to an earlier one. */
	return etc_cache.ifd >= 0 ? etc_generation : ++etc_generation;
}

static int etc_secrets(struct sbx_setup_plan *p, size_t *count)
{
	etc_check();
	if (etc_cache.ifd < 0) {
		size_t seen = 0;
		int ifd;
		etc_cache_drop();
		ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (etc_walk("/etc", 0, ifd, &seen) < 0) {
			/* No watch for all of it: use what we have for this sandbox, keep no cache. */
			if (ifd >= 0)
				close(ifd);
			etc_cache_drop();
			if (etc_walk("/etc", 0, -1, &seen) < 0)
				return -1;
		} else {
			etc_cache.ifd = ifd;
		}
	}
	for (size_t i = 0; i < etc_cache.n; i++)
		if (plan_op(p, OP(.kind = SBX_OP_MASK, .dest = etc_cache.paths[i])) < 0)
			return -1;
	*count = etc_cache.n;
	if (etc_cache.ifd < 0)
		etc_cache_drop(); /* not watched: never reuse it */
	return 0;
}

/* Credentials commonly kept at the top of a home directory: hidden when a workspace is (or
 * contains) a home, so that `sbx run` in ~ does not hand the agent ~/.ssh or ~/.aws. */
static const char *const credential_names[] = {
	".ssh", ".aws", ".gnupg", ".kube", ".docker", ".netrc", ".git-credentials", ".config/gcloud",
	".config/gh", ".azure", ".pypirc", ".npmrc", ".vault-token", ".password-store", ".local/share/keyrings",
};

static int mask_under_workspace(struct sbx_daemon *d, const struct sbx_workspace *ws, struct sbx_setup_plan *p)
{
	const char *sbx_dirs[] = {d->paths.state_dir, d->paths.config_dir, d->paths.runtime_dir};
	char path[PATH_MAX];
	size_t wl = strlen(ws->path);

	/* sbx's own state (secrets, CA key, other sandboxes) is never visible inside. */
	for (size_t i = 0; i < SBX_ARRAY_LEN(sbx_dirs); i++) {
		const char *s = sbx_dirs[i];
		if ((strcmp(ws->path, "/") == 0 || (strncmp(s, ws->path, wl) == 0 && s[wl] == '/')) &&
		    plan_op(p, OP(.kind = SBX_OP_MASK, .dest = s)) < 0)
			return -1;
	}
	for (size_t i = 0; i < SBX_ARRAY_LEN(credential_names); i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", ws->path, credential_names[i]);
		if (lstat(path, &st) == 0 && !S_ISLNK(st.st_mode) && plan_op(p, OP(.kind = SBX_OP_MASK, .dest = path)) < 0)
			return -1;
	}
	return 0;
}

static int host_dir_op(struct sbx_daemon *d, struct sbx_setup_plan *p, const char *path, uint32_t flags,
		       sbx_err *err)
{
	if (d->idmap.mode == SBX_IDMAP_ROOT) {
		int fd = sbx_idmap_mount_fd(&d->idmap, path, false, false, err);
		if (fd < 0)
			return -1;
		int idx = plan_fd(p, fd);
		if (idx < 0)
			return sbx_err_set(err, SBX_E_INTERNAL, "too many mounts in the sandbox plan");
		return plan_op(p, OP(.kind = SBX_OP_BIND, .dest = path, .fd_ref = idx + 1, .flags = flags));
	}
	return plan_op(p, OP(.kind = SBX_OP_BIND, .src = path, .dest = path, .flags = flags));
}

static int overlay_op(struct sbx_sandbox *sb, struct sbx_setup_plan *p, const char *host_path, const char *layer,
		      sbx_err *err)
{
	struct sbx_daemon *d = sb->d;
	char upper[PATH_MAX], work[PATH_MAX], rel[64];
	struct op o = OP(.kind = SBX_OP_OVERLAY, .dest = host_path);

	snprintf(rel, sizeof(rel), "layers/%s/upper", layer);
	if (sb_path(sb, upper, sizeof(upper), rel) < 0)
		return sbx_err_set(err, SBX_E_INVALID, "state path too long");
	snprintf(rel, sizeof(rel), "layers/%s/work", layer);
	if (sb_path(sb, work, sizeof(work), rel) < 0)
		return sbx_err_set(err, SBX_E_INVALID, "state path too long");
	if (sb->spec.ephemeral) {
		/* The layer lives in the sandbox's scratch tmpfs; init mounts the overlay itself
		 * (its upper directory is its own), over the idmapped lower layer when root. */
		snprintf(upper, sizeof(upper), "@scratch/layers/%s/upper", layer);
		snprintf(work, sizeof(work), "@scratch/layers/%s/work", layer);
	}
	o.upper = upper;
	o.work = work;
	if (sb->spec.ephemeral && d->idmap.mode == SBX_IDMAP_ROOT) {
		int fd = sbx_idmap_mount_fd(&d->idmap, host_path, false, false, err);
		if (fd < 0)
			return -1;
		int idx = plan_fd(p, fd);
		if (idx < 0)
			return sbx_err_set(err, SBX_E_INTERNAL, "too many mounts in the sandbox plan");
		o.fd_ref = idx + 1;
	} else if (d->idmap.mode == SBX_IDMAP_ROOT) {
		/* Built on the host side: init, running as the sandbox's ids, could not reach the
		 * layer directories through the daemon's 0700 state directory. */
		int fd = sbx_idmap_overlay_fd(&d->idmap, host_path, upper, work, err);
		if (fd < 0)
			return -1;
		int idx = plan_fd(p, fd);
		if (idx < 0)
			return sbx_err_set(err, SBX_E_INTERNAL, "too many mounts in the sandbox plan");
		return plan_op(p, OP(.kind = SBX_OP_BIND, .dest = host_path, .fd_ref = idx + 1,
				     .flags = SBX_OPF_NODEV | SBX_OPF_NOSUID));
	} else {
		o.src = host_path;
	}
	if (d->idmap.mode == SBX_IDMAP_SUBUID && !sb->spec.ephemeral) {
		/* Only init, inside the user namespace, can give the layer root to root inside.
		 * The host's directories stay owned by the host's root, whom the sandbox cannot
		 * map; the usual install locations get a copy of their directory in the upper
		 * layer, owned by root inside, so that `npm install -g` and `pip install` work. */
		o.owner = true;
		if (strcmp(host_path, "/usr") == 0) {
			char skel[PATH_MAX];
			snprintf(skel, sizeof(skel), "%s/local", upper);
			if (plan_op(p, OP(.kind = SBX_OP_SKELETON, .src = "/usr/local", .upper = skel, .owner = true,
					  .size = 6)) < 0)
				return sbx_err_set(err, SBX_E_INTERNAL, "sandbox plan too large");
		}
	}
	return plan_op(p, o);
}

/* Ephemeral sandboxes (`sbx run --rm`) keep everything writable in a tmpfs of their own: the
 * same layout as on disk, nothing to create or delete on the host. */
static int scratch_ops(struct sbx_sandbox *sb, struct sbx_setup_plan *p)
{
	bool chown_ok = sbx_idmap_has_root(&sb->d->idmap);
	static const struct {
		const char *rel;
		uint32_t mode;
		uint32_t uid;
	} dirs[] = {
		{"layers", 0755, 0},         {"layers/usr", 0755, 0},          {"layers/usr/upper", 0755, 0},
		{"layers/usr/work", 0700, 0}, {"layers/etc", 0755, 0},         {"layers/etc/upper", 0755, 0},
		{"layers/etc/work", 0700, 0}, {"layers/dpkg", 0755, 0},        {"layers/dpkg/upper", 0755, 0},
		{"layers/dpkg/work", 0700, 0}, {"layers/var", 0755, 0},        {"layers/var/tmp", 01777, 0},
		{"layers/var/cache", 0755, 0}, {"layers/var/lib", 0755, 0},    {"layers/var/log", 0755, 0},
		{"layers/var/lib/dpkg", 0755, 0}, {"layers/opt", 0755, 0},     {"home", 0750, SBX_AGENT_UID},
		{"root", 0700, 0},
	};
	char path[96];

	if (plan_op(p, OP(.kind = SBX_OP_TMPFS, .dest = "@scratch", .mode = 0755, .size = 8ULL << 30)) < 0)
		return -1;
	for (size_t i = 0; i < SBX_ARRAY_LEN(dirs); i++) {
		snprintf(path, sizeof(path), "@scratch/%s", dirs[i].rel);
		if (plan_op(p, OP(.kind = SBX_OP_DIR, .dest = path, .mode = dirs[i].mode, .owner = chown_ok,
				  .uid = dirs[i].uid, .gid = dirs[i].uid)) < 0)
			return -1;
	}
	return 0;
}

/* A directory of the sandbox's own state, attached at dest. */
static int state_bind(struct sbx_sandbox *sb, struct sbx_setup_plan *p, const char *rel, const char *dest,
		      uint32_t flags, sbx_err *err)
{
	char path[PATH_MAX];

	if (sb->spec.ephemeral) {
		snprintf(path, sizeof(path), "@scratch/%s", rel);
		if (plan_op(p, OP(.kind = SBX_OP_BIND, .src = path, .dest = dest, .flags = flags)) < 0)
			return sbx_err_set(err, SBX_E_INTERNAL, "sandbox plan too large");
		return 0;
	}
	if (sb_path(sb, path, sizeof(path), rel) < 0)
		return sbx_err_set(err, SBX_E_INVALID, "state path too long");
	if (sb->d->idmap.mode == SBX_IDMAP_ROOT) {
		int fd = sbx_idmap_tree_fd(path, err);
		if (fd < 0)
			return -1;
		int idx = plan_fd(p, fd);
		if (idx < 0)
			return sbx_err_set(err, SBX_E_INTERNAL, "too many mounts in the sandbox plan");
		return plan_op(p, OP(.kind = SBX_OP_BIND, .dest = dest, .fd_ref = idx + 1, .flags = flags)) < 0
			       ? sbx_err_set(err, SBX_E_INTERNAL, "sandbox plan too large")
			       : 0;
	}
	if (plan_op(p, OP(.kind = SBX_OP_BIND, .src = path, .dest = dest, .flags = flags)) < 0)
		return sbx_err_set(err, SBX_E_INTERNAL, "sandbox plan too large");
	return 0;
}

/* Binds state_dir/ca/sandbox-bundle.pem (written by the proxy) read-only over the system trust
 * store, where both exist. */
static int ca_bundle_bind(struct sbx_sandbox *sb, struct sbx_setup_plan *p, sbx_err *err)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/ca/sandbox-bundle.pem", sb->d->paths.state_dir);
	if (stat(path, &st) != 0 || stat(SBX_SYSTEM_CA_BUNDLE, &st) != 0)
		return 0;
	if (sb->d->idmap.mode == SBX_IDMAP_ROOT) {
		int fd = sbx_idmap_tree_fd(path, err), idx;
		if (fd < 0)
			return -1;
		if ((idx = plan_fd(p, fd)) < 0)
			return sbx_err_set(err, SBX_E_INTERNAL, "too many mounts in the sandbox plan");
		return plan_op(p, OP(.kind = SBX_OP_BIND, .dest = SBX_SYSTEM_CA_BUNDLE, .fd_ref = idx + 1,
				     .flags = SBX_OPF_RO | SBX_OPF_NOSUID | SBX_OPF_NODEV)) < 0
			       ? sbx_err_set(err, SBX_E_INTERNAL, "sandbox plan too large")
			       : 0;
	}
	return plan_op(p, OP(.kind = SBX_OP_BIND, .src = path, .dest = SBX_SYSTEM_CA_BUNDLE,
			     .flags = SBX_OPF_RO | SBX_OPF_NOSUID | SBX_OPF_NODEV)) < 0
		       ? sbx_err_set(err, SBX_E_INTERNAL, "sandbox plan too large")
		       : 0;
}

/* The part of the view that is the same for every sandbox: sent to an init prepared ahead of
 * time (a spare) before any sandbox claims it. */
static int build_generic(struct sbx_daemon *d, struct sbx_setup_plan *p, sbx_err *err)
{
	if (plan_new_packet(p) < 0)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	/* Fresh every start. */
	if (plan_op(p, OP(.kind = SBX_OP_TMPFS, .dest = "/tmp", .mode = 01777, .size = 4ULL << 30)) < 0 ||
	    plan_op(p, OP(.kind = SBX_OP_TMPFS, .dest = "/run", .mode = 0755, .size = 64ULL << 20)) < 0 ||
	    plan_op(p, OP(.kind = SBX_OP_DIR, .dest = "/run/lock", .mode = 01777)) < 0 ||
	    plan_op(p, OP(.kind = SBX_OP_DEV, .dest = "/dev")) < 0 ||
	    plan_op(p, OP(.kind = SBX_OP_PROC, .dest = "/proc")) < 0)
		goto e2big;
	static const char *const proc_hidden[] = {"/proc/kcore",        "/proc/keys",      "/proc/key-users",
						  "/proc/timer_list",   "/proc/sched_debug", "/proc/latency_stats",
						  "/proc/kallsyms",     "/proc/kpagecount",  "/proc/kpageflags",
						  "/proc/kpagecgroup",  "/proc/acpi",        "/proc/scsi",
						  "/proc/sysrq-trigger", "/proc/config.gz",  "/proc/vmallocinfo"};
	for (size_t i = 0; i < SBX_ARRAY_LEN(proc_hidden); i++)
		if (plan_op(p, OP(.kind = SBX_OP_MASK, .dest = proc_hidden[i])) < 0)
			goto e2big;
	static const char *const proc_ro[] = {"/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq"};
	for (size_t i = 0; i < SBX_ARRAY_LEN(proc_ro); i++)
		if (plan_op(p, OP(.kind = SBX_OP_REMOUNT, .dest = proc_ro[i],
				  .flags = SBX_OPF_RO | SBX_OPF_NOSUID | SBX_OPF_NODEV | SBX_OPF_NOEXEC |
					   SBX_OPF_OPTIONAL | SBX_OPF_RECURSIVE)) < 0)
			goto e2big;
	if (plan_op(p, OP(.kind = SBX_OP_SYSFS, .dest = "/sys")) < 0 ||
	    plan_op(p, OP(.kind = SBX_OP_MASK, .dest = "/sys/firmware")) < 0)
		goto e2big;

	/* Hardening for every process sbx starts inside. */
	if (plan_room(p, false) < 0 || sbx_msg_put(cur(p), SBX_A_BPF, d->bpf.insns, (uint32_t)(d->bpf.len * 8)) < 0)
		goto e2big;
	if (sbx_msg_put_u32(cur(p), SBX_A_LANDLOCK_MIN_ABI, 1) < 0 || sbx_msg_put_u32(cur(p), SBX_A_NOFILE, 65536) < 0 ||
	    sbx_msg_put_u32(cur(p), SBX_A_LOOPBACK, 1) < 0)
		goto e2big;
	/* The network rules: every connection goes to the proxy (proxy.h). */
	if (!d->nft_batch)
		return sbx_err_set(err, SBX_E_INTERNAL, "the sandbox network rules were not built");
	if (plan_room(p, false) < 0 ||
	    sbx_msg_put(cur(p), SBX_A_NFT, d->nft_batch, (uint32_t)d->nft_batch_len) < 0)
		goto e2big;
	if (sbx_cgroup_version(d->cg) == SBX_CGROUP_NONE &&
	    sbx_msg_put_u32(cur(p), SBX_A_RLIMIT_NPROC, SBX_DEFAULT_PIDS) < 0)
		goto e2big;
	return 0;
e2big:
	return sbx_err_set(err, SBX_E_INTERNAL, "the sandbox plan is too large (or out of memory)");
}

/* The system part of a sandbox's view: /usr, /etc, /var, /opt, the homes, and the account
 * files. For an ephemeral sandbox it depends on nothing but the host, so a spare can have it
 * before any sandbox claims it. */
static int build_system(struct sbx_sandbox *sb, struct sbx_setup_plan *p, sbx_err *err)
{
	struct sbx_daemon *d = sb->d;
	struct stat st;
	size_t nsecrets = 0;
	sbx_buf text;
	int r = 0;

	if (sb->spec.ephemeral && scratch_ops(sb, p) < 0)
		goto e2big;

	/* System directories. */
	if (overlay_op(sb, p, "/usr", "usr", err) < 0)
		return -1;
	static const char *const top[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
	for (size_t i = 0; i < SBX_ARRAY_LEN(top); i++) {
		char target[PATH_MAX];
		if (lstat(top[i], &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			ssize_t n = readlink(top[i], target, sizeof(target) - 1);
			if (n <= 0)
				continue;
			target[n] = '\0';
			if (plan_op(p, OP(.kind = SBX_OP_SYMLINK, .src = target, .dest = top[i])) < 0)
				goto e2big;
		} else if (S_ISDIR(st.st_mode)) {
			if (host_dir_op(d, p, top[i], SBX_OPF_RO | SBX_OPF_NODEV, err) < 0)
				return -1;
		}
	}
	if (overlay_op(sb, p, "/etc", "etc", err) < 0)
		return -1;
	if (etc_secrets(p, &nsecrets) < 0)
		goto e2big;

	/* The sandbox's trust store: the host's plus the sbx CA (TLS interception, proxy.c). */
	if (ca_bundle_bind(sb, p, err) < 0)
		return -1;

	/* Persistent per-sandbox places. */
	if (state_bind(sb, p, "layers/var", "/var", SBX_OPF_NODEV, err) < 0)
		return -1;
	if (stat("/var/lib/dpkg", &st) == 0 && overlay_op(sb, p, "/var/lib/dpkg", "dpkg", err) < 0)
		return -1;
	if (state_bind(sb, p, "layers/opt", "/opt", SBX_OPF_NODEV, err) < 0 ||
	    state_bind(sb, p, "home", "/home/agent", SBX_OPF_NODEV | SBX_OPF_NOSUID, err) < 0)
		return -1;
	if (sbx_idmap_has_root(&d->idmap) && state_bind(sb, p, "root", "/root", SBX_OPF_NODEV | SBX_OPF_NOSUID, err) < 0)
		return -1;
	if (d->idmap.mode == SBX_IDMAP_SUBUID && !sb->spec.ephemeral) {
		/* An unprivileged daemon created these as its own user, which is the agent inside;
		 * only init can hand them to root inside (the agent must not own root's home or the
		 * system directories of /var). */
		static const char *const root_owned[] = {"/var",       "/var/cache", "/var/lib",  "/var/log",
							 "/var/spool", "/var/lib/apt", "/var/lib/apt/lists",
							 "/var/cache/apt", "/var/lib/misc", "/var/tmp", "/opt", "/root"};
		for (size_t i = 0; i < SBX_ARRAY_LEN(root_owned); i++)
			if (plan_op(p, OP(.kind = SBX_OP_CHOWN, .dest = root_owned[i], .owner = true)) < 0)
				goto e2big;
	}

	/* Account files, written into the /etc layer (editable by root inside). */
	sbx_buf_init(&text, 1 << 20);
	if (filtered_accounts("/etc/passwd", false, &text) < 0 ||
	    plan_op(p, OP(.kind = SBX_OP_FILE, .dest = "/etc/passwd", .mode = 0644, .data = text.data,
			  .data_len = text.len)) < 0)
		r = -1;
	sbx_buf_reset(&text);
	if (!r && (filtered_accounts("/etc/group", true, &text) < 0 ||
		   plan_op(p, OP(.kind = SBX_OP_FILE, .dest = "/etc/group", .mode = 0644, .data = text.data,
				 .data_len = text.len)) < 0))
		r = -1;
	sbx_buf_reset(&text);
	/* The sandbox's resolver is the proxy's DNS listener (every other resolver address is
	 * redirected there too); it answers by policy and never forwards a query. */
	if (!r && (sbx_buf_printf(&text, "# sbx: names are resolved by the sbx egress proxy, by policy\n"
					 "nameserver 127.0.0.53\noptions edns0 timeout:2 attempts:2\n") < 0 ||
		   plan_op(p, OP(.kind = SBX_OP_FILE, .dest = "/etc/resolv.conf", .mode = 0644, .data = text.data,
				 .data_len = text.len)) < 0))
		r = -1;
	sbx_buf_free(&text);
	if (r < 0)
		goto e2big;
	log_debug("%zu hidden /etc entries", nsecrets);
	return 0;
e2big:
	return sbx_err_set(err, SBX_E_INTERNAL, "the sandbox plan is too large (or out of memory)");
}

/* What belongs to this sandbox alone: its name, its workspaces, its write permissions. */
static int build_specific(struct sbx_sandbox *sb, struct sbx_setup_plan *p, bool system_sent, sbx_err *err)
{
	struct sbx_daemon *d = sb->d;
	sbx_buf text;
	int r = 0;

	if (plan_new_packet(p) < 0)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	if (plan_str(p, SBX_A_HOSTNAME, sb->name) < 0 || plan_str(p, SBX_A_SANDBOX_ID, sb->id) < 0)
		goto e2big;
	if (!system_sent && build_system(sb, p, err) < 0)
		return -1;

	/* Workspaces, at the same absolute path. */
	for (size_t i = 0; i < sb->spec.nws; i++) {
		const struct sbx_workspace *ws = &sb->spec.ws[i];
		uint32_t fl = SBX_OPF_RECURSIVE | SBX_OPF_NODEV | SBX_OPF_NOSUID | (ws->ro ? SBX_OPF_RO : 0);
		if (d->idmap.mode == SBX_IDMAP_ROOT) {
			int fd = sbx_idmap_mount_fd(&d->idmap, ws->path, true, true, err);
			if (fd < 0)
				return sbx_err_wrap(err, "workspace %s", ws->path);
			int idx = plan_fd(p, fd);
			if (idx < 0)
				return sbx_err_set(err, SBX_E_INTERNAL, "too many mounts in the sandbox plan");
			if (plan_op(p, OP(.kind = SBX_OP_BIND, .dest = ws->path, .fd_ref = idx + 1, .flags = fl)) < 0)
				goto e2big;
		} else if (plan_op(p, OP(.kind = SBX_OP_BIND, .src = ws->path, .dest = ws->path, .flags = fl)) < 0) {
			goto e2big;
		}
		if (mask_under_workspace(d, ws, p) < 0)
			goto e2big;
	}

	/* The sandbox's name in /etc. */
	sbx_buf_init(&text, 1 << 20);
	if (!r && (sbx_buf_printf(&text, "%s\n", sb->name) < 0 ||
		   plan_op(p, OP(.kind = SBX_OP_FILE, .dest = "/etc/hostname", .mode = 0644, .data = text.data,
				 .data_len = text.len)) < 0))
		r = -1;
	sbx_buf_reset(&text);
	if (!r && (sbx_buf_printf(&text, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
					 "127.0.1.1\t%s\n", sb->name) < 0 ||
		   plan_op(p, OP(.kind = SBX_OP_FILE, .dest = "/etc/hosts", .mode = 0644, .data = text.data,
				 .data_len = text.len)) < 0))
		r = -1;
	sbx_buf_free(&text);
	if (r < 0)
		goto e2big;

	/* Writes confined to the writable places (Landlock). */
	const char *rw[] = {"/tmp", "/var", "/opt", "/usr", "/etc", "/run", "/home/agent", "/dev/shm", "/proc"};
	for (size_t i = 0; i < SBX_ARRAY_LEN(rw); i++)
		if (plan_str(p, SBX_A_LANDLOCK_RW, rw[i]) < 0)
			goto e2big;
	if (sbx_idmap_has_root(&d->idmap) && plan_str(p, SBX_A_LANDLOCK_RW, "/root") < 0)
		goto e2big;
	for (size_t i = 0; i < sb->spec.nws; i++)
		if (!sb->spec.ws[i].ro && plan_str(p, SBX_A_LANDLOCK_RW, sb->spec.ws[i].path) < 0)
			goto e2big;
	const char *dev[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/pts"};
	for (size_t i = 0; i < SBX_ARRAY_LEN(dev); i++)
		if (plan_str(p, SBX_A_LANDLOCK_DEV, dev[i]) < 0)
			goto e2big;
	if (sb->spec.pids && sbx_cgroup_version(d->cg) == SBX_CGROUP_NONE &&
	    sbx_msg_put_u32(cur(p), SBX_A_RLIMIT_NPROC, sb->spec.pids) < 0)
		goto e2big;
	log_debug("sandbox %s: %zu setup packets, %zu mount fds", sb->name, p->npkts, p->total_fds);
	return 0;
e2big:
	return sbx_err_set(err, SBX_E_INTERNAL, "the sandbox plan is too large (or out of memory)");
}

/* Sends a plan's packets; every packet says "more follows" unless final and it is the last. */
static int send_plan(struct sbx_setup_plan *p, int ctl, bool final, sbx_err *err)
{
	for (size_t i = 0; i < p->npkts; i++) {
		struct sbx_msg_hdr h;
		memcpy(&h, p->pkts[i].data, sizeof(h));
		h.flags = (final && i + 1 == p->npkts) ? 0 : 1;
		memcpy(p->pkts[i].data, &h, sizeof(h));
		if (sbx_msg_finish(&p->pkts[i]) < 0 || sbx_msg_send(ctl, &p->pkts[i], p->pkt_fds[i], p->pkt_nfds[i]) < 0)
			return sbx_err_sys(err, SBX_E_INTERNAL, errno, "cannot send the setup to the sandbox");
	}
	return 0;
}

int sbx_template_generic_send(struct sbx_daemon *d, int ctl, bool ephemeral_system, sbx_err *err)
{
	struct sbx_setup_plan *p = calloc(1, sizeof(*p));
	struct sbx_sandbox *proto = calloc(1, sizeof(*proto));
	int r = -1;

	if (!p || !proto) {
		free(p);
		free(proto);
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	}
	/* The system part of an ephemeral sandbox names nothing of the sandbox itself. */
	proto->d = d;
	proto->spec.ephemeral = true;
	if (build_generic(d, p, err) == 0 && (!ephemeral_system || build_system(proto, p, err) == 0) &&
	    send_plan(p, ctl, false, err) == 0)
		r = 0;
	plan_free(p);
	free(p);
	free(proto);
	return r;
}

int sbx_template_host_send(struct sbx_sandbox *sb, int ctl, enum sbx_presetup done, sbx_err *err)
{
	struct sbx_setup_plan *p = calloc(1, sizeof(*p));
	int r = -1;

	if (!p)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	if (done == SBX_PRESETUP_NONE && sbx_template_generic_send(sb->d, ctl, false, err) < 0)
		goto out;
	if (build_specific(sb, p, done == SBX_PRESETUP_EPHEMERAL, err) < 0 || send_plan(p, ctl, true, err) < 0)
		goto out;
	r = 0;
out:
	plan_free(p);
	free(p);
	return r;
}
