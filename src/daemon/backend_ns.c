/* backend_ns.c - the namespace backend: a sandbox is a tree of processes in new user, mount,
 * PID, IPC, UTS, network and cgroup namespaces, under a cgroup with its limits, with sbx-init
 * as PID 1. The order of steps, from the daemon's side (init's side is in src/init/main.c):
 *
 *   1. validate: the workspaces still exist; requested limits can be enforced (fail closed)
 *   2. cgroup: create it and write the limits
 *   3. channels: a SOCK_SEQPACKET pair for control, and a bound socket at
 *      runtime_dir/sandboxes/<id>.sock for re-adoption after a daemon restart
 *   4. clone3() into the new namespaces (v2: straight into the cgroup); the child waits
 *   5. the daemon writes the uid/gid maps (directly, or with newuidmap for subordinate ids)
 *      and, on cgroup v1, moves the child into the cgroup
 *   6. the child switches to its ids and execs sbx-init (a fresh, static image: nothing of the
 *      daemon's memory crosses into the sandbox), with fds 3 and 4 and an empty environment
 *   7. the daemon sends the filesystem plan and hardening settings; init builds the view and
 *      answers READY. Any failure on the way kills the child and removes the cgroup. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api.h"
#include "cleanup.h"
#include "daemon.h"
#include "fdpass.h"
#include "kcompat.h"
#include "log.h"
#include "util.h"

#define NS_FLAGS (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET)

static int ns_probe(struct sbx_daemon *d, char *why, size_t whylen)
{
	if (d->userns_problem[0]) {
		snprintf(why, whylen, "%s", d->userns_problem);
		return -1;
	}
	if (d->landlock_abi < 1) {
		snprintf(why, whylen, "Landlock is not available in this kernel (needs Linux 5.13+ with landlock in the "
				      "lsm= boot parameter)");
		return -1;
	}
	return 0;
}

static int socket_path_for(const struct sbx_daemon *d, const char *name, char *out, size_t n)
{
	if ((size_t)snprintf(out, n, "%s/sandboxes/%s.sock", d->paths.runtime_dir, name) >= n) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int socket_path(const struct sbx_sandbox *sb, char *out, size_t n)
{
	return socket_path_for(sb->d, sb->id, out, n);
}

static int bind_listener(const struct sbx_daemon *d, const char *name, sbx_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[PATH_MAX];
	int fd;

	snprintf(dir, sizeof(dir), "%s/sandboxes", d->paths.runtime_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot create %s", dir);
	if (socket_path_for(d, name, sa.sun_path, sizeof(sa.sun_path)) < 0)
		return sbx_err_set(err, SBX_E_INVALID, "the runtime directory path is too long for a socket");
	unlink(sa.sun_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return sbx_err_sys(err, SBX_E_IO, e, "cannot bind %s", sa.sun_path);
	}
	chmod(sa.sun_path, 0600);
	return fd;
}

/* Runs in the clone3 child, before exec: raw system calls only (the daemon's other threads, if
 * any, do not exist here, and glibc's set*id would try to reach them). */
static void __attribute__((noreturn)) child(struct sbx_daemon *d, int sync_fd, int ctl_fd, int listen_fd, int null_fd)
{
	char c;
	uid_t uid = sbx_idmap_init_uid(&d->idmap);
	char *argv[] = {"sbx-init", NULL};
	char *envp[] = {NULL};

	if (read(sync_fd, &c, 1) != 1)
		_exit(1); /* the parent gave up */
	if (dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0 || dup2(ctl_fd, 3) < 0 ||
	    dup2(listen_fd, 4) < 0)
		_exit(1);
	sbx_close_range(5, ~0U, CLOSE_RANGE_CLOEXEC);
	if (syscall(SYS_setresgid, uid, uid, uid) < 0 || syscall(SYS_setresuid, uid, uid, uid) < 0)
		_exit(1);
	if (uid != 0) {
		/* No root inside (single-uid mode): carry init's namespaced capabilities across exec
		 * as ambient capabilities. */
		struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
		struct __user_cap_data_struct cd[2];
		if (syscall(SYS_capget, &h, cd) < 0)
			_exit(1);
		cd[0].inheritable = cd[0].permitted;
		cd[1].inheritable = cd[1].permitted;
		if (syscall(SYS_capset, &h, cd) < 0)
			_exit(1);
		for (int cap = 0; cap <= 63; cap++)
			prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
	}
	syscall(SYS_execveat, d->init_exe_fd, "", argv, envp, AT_EMPTY_PATH);
	_exit(127);
}

static int check_limits(struct sbx_sandbox *sb, struct sbx_cgroup_limits *lim, sbx_err *err)
{
	struct sbx_daemon *d = sb->d;

	lim->memory_bytes = sb->spec.memory;
	lim->millicpus = sb->spec.millicpus;
	lim->pids = sb->spec.pids ? sb->spec.pids : SBX_DEFAULT_PIDS;
	if (sbx_cgroup_version(d->cg) == SBX_CGROUP_NONE && (lim->memory_bytes || lim->millicpus))
		return sbx_err_set(err, SBX_E_UNSUPPORTED, "cannot enforce --memory/--cpus: %s",
				   sbx_cgroup_describe(d->cg));
	return 0;
}

static int check_workspaces(struct sbx_sandbox *sb, sbx_err *err)
{
	for (size_t i = 0; i < sb->spec.nws; i++) {
		struct stat st;
		const char *p = sb->spec.ws[i].path;
		if (stat(p, &st) < 0)
			return sbx_err_sys(err, SBX_E_NOINPUT, errno,
					   "workspace %s of sandbox '%s' is gone: recreate it, or remove the sandbox "
					   "(`sbx rm %s`)", p, sb->name, sb->name);
		if (!S_ISDIR(st.st_mode))
			return sbx_err_set(err, SBX_E_NOINPUT, "workspace %s of sandbox '%s' is no longer a directory", p,
					   sb->name);
	}
	return 0;
}

/* A started init, waiting for its setup. */
struct init_handle {
	pid_t pid;
	int pidfd;
	int ctl;
	int sync; /* write end: one byte releases the child into sbx-init; -1 once released */
};

static void handle_kill(struct init_handle *h)
{
	if (h->pidfd >= 0) {
		sbx_pidfd_send_signal(h->pidfd, SIGKILL, NULL, 0);
		waitpid(h->pid, NULL, 0);
	}
	close_and_reset(h->pidfd);
	close_and_reset(h->ctl);
	close_and_reset(h->sync);
	h->pid = 0;
}

/* Steps 3-5: channels, clone3 into the namespaces (straight into the cgroup on v2), the id maps.
 * The child waits on h->sync: the caller moves it into a v1 cgroup first, then releases it. */
static int spawn_init(struct sbx_daemon *d, const char *cgname, const char *sockname, struct init_handle *h,
		      sbx_err *err)
{
	struct sbx_clone_args ca = {0};
	int sp[2] = {-1, -1}, sync[2] = {-1, -1};
	cleanup_close int listen_fd = -1;
	cleanup_close int cg_fd = -1;
	cleanup_close int null_fd = -1;
	int pidfd = -1;
	pid_t pid;

	*h = (struct init_handle){.pid = 0, .pidfd = -1, .ctl = -1, .sync = -1};
	if (cgname && sbx_cgroup_version(d->cg) == SBX_CGROUP_V2)
		cg_fd = sbx_cgroup_open_dir(d->cg, cgname);
	listen_fd = bind_listener(d, sockname, err);
	if (listen_fd < 0)
		return -1;
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0 || pipe2(sync, O_CLOEXEC) < 0) {
		sbx_err_sys(err, SBX_E_INTERNAL, errno, "cannot create the control channel");
		goto fail;
	}
	/* Keep the child's fds above 4 so its dup2s onto 3 and 4 cannot clobber each other. */
	int hi = fcntl(sp[1], F_DUPFD_CLOEXEC, 10), lhi = fcntl(listen_fd, F_DUPFD_CLOEXEC, 10);
	if (hi < 0 || lhi < 0) {
		sbx_err_sys(err, SBX_E_INTERNAL, errno, "fcntl");
		if (hi >= 0)
			close(hi);
		if (lhi >= 0)
			close(lhi);
		goto fail;
	}
	close(sp[1]);
	sp[1] = hi;
	close(listen_fd);
	listen_fd = lhi;

	ca.flags = NS_FLAGS | CLONE_PIDFD;
	ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
	ca.exit_signal = SIGCHLD;
	if (cg_fd >= 0) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)cg_fd;
	}
	pid = sbx_clone3(&ca);
	if (pid < 0) {
		int e = errno;
		if (e == EPERM || e == EINVAL || e == ENOSPC || e == EUSERS)
			sbx_err_sys(err, SBX_E_UNSUPPORTED, e,
				    "cannot create the sandbox's namespaces (user namespaces may be disabled: check "
				    "/proc/sys/user/max_user_namespaces and kernel.unprivileged_userns_clone)");
		else
			sbx_err_sys(err, SBX_E_INTERNAL, e, "clone3");
		goto fail;
	}
	if (pid == 0) {
		/* Our copy of the write end would keep the read below from ever seeing EOF if the
		 * parent died before releasing us (the child would wait forever, holding the
		 * daemon's lock and descriptors). */
		close(sync[1]);
		child(d, sync[0], sp[1], listen_fd, null_fd);
	}

	close_and_reset(sync[0]);
	close_and_reset(sp[1]);
	*h = (struct init_handle){.pid = pid, .pidfd = pidfd, .ctl = sp[0], .sync = sync[1]};
	if (sbx_idmap_apply(&d->idmap, pid, err) < 0) {
		handle_kill(h);
		return -1;
	}
	return 0;
fail:
	close_and_reset(sp[0]);
	close_and_reset(sp[1]);
	close_and_reset(sync[0]);
	close_and_reset(sync[1]);
	return -1;
}

static int release_init(struct init_handle *h, sbx_err *err)
{
	if (write(h->sync, "g", 1) != 1)
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "cannot release the sandbox's init");
	close_and_reset(h->sync);
	return 0;
}

/* ---- spares: sandboxes started ahead of time ----
 *
 * Creating the namespaces and, above all, moving a process into a cgroup v1 hierarchy (the
 * kernel waits for an RCU grace period there: ~20 ms on this kind of host) are the slow parts of
 * a start, and neither depends on which sandbox it will be. So the daemon keeps one init
 * prepared: cloned, mapped, in a cgroup of its own, waiting for its setup. A start claims it,
 * renames its cgroup and socket to the sandbox's, sets the limits and sends the plan; the next
 * spare is prepared in the background. The cgroup move is done by a short-lived helper process
 * so that the daemon's loop never waits for it. */

/* One spare of each kind: a generic one for any sandbox, and one that also has the system part
 * of an ephemeral sandbox (`run --rm`), which is then ready after a few more mounts. */
static const enum sbx_presetup spare_kinds[] = {SBX_PRESETUP_GENERIC, SBX_PRESETUP_EPHEMERAL};

struct spare {
	struct sbx_daemon *d;
	enum sbx_presetup kind;
	uint64_t etc_gen; /* the /etc generation its system part was built from */
	struct init_handle h;
	char name[40];
	pid_t helper;
	int helper_sock; /* the helper reports the prepared init here */
	bool ready;
	struct spare *next;
};

static struct spare *spares;
static bool refill_scheduled;
static bool spares_disabled;

static void schedule_refill(struct sbx_daemon *d);

static void spare_free(struct sbx_daemon *d, struct spare *s, bool destroy)
{
	sbx_err err = SBX_ERR_INIT;
	char path[PATH_MAX];

	if (s->h.pidfd >= 0)
		sbx_loop_del(d->loop, s->h.pidfd);
	if (s->helper_sock >= 0) {
		sbx_loop_del(d->loop, s->helper_sock);
		close_and_reset(s->helper_sock);
	}
	if (s->helper > 0) {
		kill(s->helper, SIGKILL);
		waitpid(s->helper, NULL, 0);
		s->helper = 0;
	}
	if (destroy) {
		handle_kill(&s->h);
		if (sbx_cgroup_version(d->cg) != SBX_CGROUP_NONE &&
		    (sbx_cgroup_kill(d->cg, s->name, &err) < 0 || sbx_cgroup_destroy(d->cg, s->name, &err) < 0))
			log_warn("spare %s: %s", s->name, err.msg);
		if (socket_path_for(d, s->name, path, sizeof(path)) == 0)
			unlink(path);
	}
	for (struct spare **pp = &spares; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	free(s);
}

/* A spare's init died before anyone claimed it: drop it. */
static void spare_died(struct sbx_loop *loop, int fd, unsigned events, void *ud)
{
	struct spare *s = ud;

	log_warn("spare %s ended before use", s->name);
	spare_free(s->d, s, true);
}

/* Runs in the helper: everything slow about preparing an init (cgroup creation, clone3 into
 * new namespaces, the id maps, the cgroup v1 move), so that the daemon's loop never waits for
 * it. The init ends up as the daemon's child all the same: the daemon is a child subreaper and
 * the helper exits as soon as it has handed over the init's pidfd and control socket. */
static void __attribute__((noreturn)) helper_main(struct sbx_daemon *d, struct spare *s, int sock)
{
	struct init_handle h;
	sbx_err err = SBX_ERR_INIT;
	char msg[512];
	int fds[2];

	prctl(PR_SET_NAME, "sbxd-helper", 0, 0, 0); /* not a daemon, for anyone counting them */
	/* The instance lock is the daemon's: a helper outliving a killed daemon must not keep the
	 * next one from starting. */
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	sbx_api_drop_inherited();
	if (sbx_cgroup_version(d->cg) != SBX_CGROUP_NONE &&
	    sbx_cgroup_create_spare(d->cg, s->name, SBX_DEFAULT_PIDS, &err) < 0)
		goto fail;
	if (spawn_init(d, sbx_cgroup_version(d->cg) != SBX_CGROUP_NONE ? s->name : NULL, s->name, &h, &err) < 0)
		goto fail;
	if (sbx_cgroup_version(d->cg) == SBX_CGROUP_V1 && sbx_cgroup_attach(d->cg, s->name, h.pid, &err) < 0)
		goto fail;
	if (release_init(&h, &err) < 0)
		goto fail;
	fds[0] = h.pidfd;
	fds[1] = h.ctl;
	snprintf(msg, sizeof(msg), "ok %d", (int)h.pid);
	_exit(sbx_send_fds(sock, msg, strlen(msg) + 1, fds, 2) < 0 ? 1 : 0);
fail:
	snprintf(msg, sizeof(msg), "error %s", err.msg);
	(void)!write(sock, msg, strlen(msg) + 1);
	_exit(1);
}

static void helper_reported(struct sbx_loop *loop, int fd, unsigned events, void *ud)
{
	struct spare *s = ud;
	struct sbx_daemon *d = s->d;
	char msg[512] = "";
	int fds[SBX_FDPASS_MAX];
	size_t nfds = 0;
	ssize_t n = sbx_recv_fds(fd, msg, sizeof(msg) - 1, fds, SBX_FDPASS_MAX, &nfds);
	int pid = 0;

	sbx_loop_del(loop, fd);
	close_and_reset(s->helper_sock);
	waitpid(s->helper, NULL, 0);
	s->helper = 0;
	if (n <= 0 || nfds != 2 || sscanf(msg, "ok %d", &pid) != 1 || pid <= 0) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		log_warn("spare %s: %s; starting sandboxes without spares", s->name,
			 n > 0 && strncmp(msg, "error ", 6) == 0 ? msg + 6 : "the helper failed");
		spares_disabled = true;
		spare_free(d, s, true);
		return;
	}
	s->h = (struct init_handle){.pid = pid, .pidfd = fds[0], .ctl = fds[1], .sync = -1};
	sbx_err err = SBX_ERR_INIT;
	s->etc_gen = sbx_template_etc_generation();
	if (sbx_template_generic_send(d, s->h.ctl, s->kind == SBX_PRESETUP_EPHEMERAL, &err) < 0) {
		log_warn("spare %s: %s", s->name, err.msg);
		spare_free(d, s, true);
		return;
	}
	if (sbx_loop_add(d->loop, s->h.pidfd, SBX_EV_READ, spare_died, s) < 0) {
		spare_free(d, s, true);
		return;
	}
	s->ready = true;
}

static void refill(struct sbx_loop *loop, void *ud)
{
	struct sbx_daemon *d = ud;
	struct spare *s;
	size_t n = 0;
	char hex[17];
	int sp[2];

	enum sbx_presetup kind = SBX_PRESETUP_NONE;

	refill_scheduled = false;
	if (spares_disabled || d->shutting_down || d->userns_problem[0])
		return;
	for (size_t k = 0; k < SBX_ARRAY_LEN(spare_kinds) && kind == SBX_PRESETUP_NONE; k++) {
		n = 0;
		for (s = spares; s; s = s->next)
			n += s->kind == spare_kinds[k];
		if (n == 0)
			kind = spare_kinds[k];
	}
	if (kind == SBX_PRESETUP_NONE)
		return;
	s = calloc(1, sizeof(*s));
	if (!s || sbx_random_hex(hex, 8) < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		free(s);
		return;
	}
	snprintf(s->name, sizeof(s->name), "spare-%s", hex);
	s->d = d;
	s->kind = kind;
	s->h = (struct init_handle){.pid = 0, .pidfd = -1, .ctl = -1, .sync = -1};
	s->helper = fork();
	if (s->helper == 0) {
		close(sp[0]);
		helper_main(d, s, sp[1]);
	}
	close(sp[1]);
	s->helper_sock = sp[0];
	s->next = spares;
	spares = s;
	if (s->helper < 0 || sbx_loop_add(d->loop, s->helper_sock, SBX_EV_READ, helper_reported, s) < 0) {
		s->helper = 0;
		spare_free(d, s, true);
		return;
	}
	schedule_refill(d); /* the other kind, if it is missing too */
}

static void schedule_refill(struct sbx_daemon *d)
{
	if (refill_scheduled || spares_disabled)
		return;
	refill_scheduled = sbx_loop_timer(d->loop, 0, refill, d) != 0;
}

/* The best ready spare for a sandbox: the ephemeral kind for an ephemeral sandbox (unless /etc
 * changed since it was prepared: then it is thrown away), the generic kind otherwise. */
static struct spare *take_spare(struct sbx_daemon *d, bool ephemeral)
{
	struct spare *s, *next;

	if (ephemeral) {
		for (s = spares; s; s = next) {
			next = s->next;
			if (!s->ready || s->kind != SBX_PRESETUP_EPHEMERAL)
				continue;
			if (s->etc_gen == sbx_template_etc_generation())
				return s;
			spare_free(d, s, true);
			schedule_refill(d);
		}
	}
	for (s = spares; s; s = s->next)
		if (s->ready && s->kind == SBX_PRESETUP_GENERIC)
			return s;
	return NULL;
}

static int ns_prepare(struct sbx_daemon *d, sbx_err *err)
{
	char dir[PATH_MAX];
	DIR *dp;
	struct dirent *de;

	/* Spares left by a previous daemon died with it (their init had no setup yet); remove
	 * what is left of them. */
	snprintf(dir, sizeof(dir), "%s/sandboxes", d->paths.runtime_dir);
	if ((dp = opendir(dir))) {
		while ((de = readdir(dp))) {
			char name[64];
			if (strncmp(de->d_name, "spare-", 6) != 0 || !sbx_str_has_suffix(de->d_name, ".sock"))
				continue;
			snprintf(name, sizeof(name), "%.*s", (int)(strlen(de->d_name) - 5), de->d_name);
			unlinkat(dirfd(dp), de->d_name, 0);
			if (sbx_cgroup_version(d->cg) != SBX_CGROUP_NONE) {
				sbx_cgroup_kill(d->cg, name, NULL);
				sbx_cgroup_destroy(d->cg, name, NULL);
			}
		}
		closedir(dp);
	}
	if (getenv("SBX_NO_SPARES"))
		spares_disabled = true;
	schedule_refill(d);
	return 0;
}

static void ns_shutdown(struct sbx_daemon *d)
{
	while (spares)
		spare_free(d, spares, true);
}

static int ns_launch(struct sbx_sandbox *sb, sbx_err *err)
{
	struct sbx_daemon *d = sb->d;
	struct sbx_cgroup_limits lim;
	struct init_handle h;
	struct spare *s;
	char from[PATH_MAX], to[PATH_MAX];
	enum sbx_presetup done = SBX_PRESETUP_NONE;

	if (ns_probe(d, err->msg, sizeof(err->msg)) < 0) {
		err->code = SBX_E_UNSUPPORTED;
		return -1;
	}
	if (check_workspaces(sb, err) < 0 || check_limits(sb, &lim, err) < 0)
		return -1;
	if (sbx_template_prepare_dirs(sb, err) < 0)
		return -1;
	if ((s = take_spare(d, sb->spec.ephemeral))) {
		log_debug("sandbox %s: using spare %s (kind %d)", sb->name, s->name, (int)s->kind);
		/* Claim the spare: it becomes this sandbox (cgroup, socket), with its limits. */
		h = s->h;
		s->h = (struct init_handle){.pid = 0, .pidfd = -1, .ctl = -1, .sync = -1};
		sbx_loop_del(d->loop, h.pidfd);
		if (sbx_cgroup_version(d->cg) != SBX_CGROUP_NONE) {
			sbx_cgroup_destroy(d->cg, sb->id, NULL); /* a stale one from a crash, if any */
			if (sbx_cgroup_rename(d->cg, s->name, sb->id, err) < 0) {
				handle_kill(&h);
				spare_free(d, s, true);
				return -1;
			}
			sb->cgroup_created = true;
		}
		if (socket_path_for(d, s->name, from, sizeof(from)) == 0 && socket_path(sb, to, sizeof(to)) == 0)
			rename(from, to);
		done = s->kind;
		spare_free(d, s, false);
		schedule_refill(d);
		if (sbx_cgroup_version(d->cg) != SBX_CGROUP_NONE && sbx_cgroup_set_limits(d->cg, sb->id, &lim, err) < 0) {
			sbx_err_wrap(err, "limits for sandbox '%s'", sb->name);
			goto fail_child;
		}
	} else {
		if (sbx_cgroup_version(d->cg) != SBX_CGROUP_NONE) {
			if (sbx_cgroup_create(d->cg, sb->id, &lim, err) < 0)
				return sbx_err_wrap(err, "limits for sandbox '%s'", sb->name);
			sb->cgroup_created = true;
		}
		if (spawn_init(d, sb->cgroup_created ? sb->id : NULL, sb->id, &h, err) < 0)
			return -1;
		if (sbx_cgroup_version(d->cg) == SBX_CGROUP_V1 && sbx_cgroup_attach(d->cg, sb->id, h.pid, err) < 0)
			goto fail_child;
		if (release_init(&h, err) < 0)
			goto fail_child;
		schedule_refill(d);
	}
	sb->init_pid = h.pid;
	sb->pidfd = h.pidfd;
	sb->ctl = h.ctl;
	h.pidfd = h.ctl = -1;
	if (sbx_template_host_send(sb, sb->ctl, done, err) < 0 || sbx_sandbox_attach_init(sb, err) < 0) {
		h.pid = sb->init_pid;
		h.pidfd = sb->pidfd;
		h.ctl = sb->ctl;
		sb->pidfd = sb->ctl = -1;
		sb->init_pid = 0;
		goto fail_child;
	}
	return 0;

fail_child:
	handle_kill(&h);
	return -1;
}

/* Without a cgroup, the only handle on a sandbox left by a crashed daemon is its init's pid:
 * kill it only if it still is an sbx-init in another user namespace (never a reused pid). */
static void kill_orphan_init(struct sbx_sandbox *sb)
{
	char path[64], comm[32] = "", ns_self[64] = "", ns_it[64] = "";
	cleanup_close int pfd = -1;
	ssize_t n;

	if (sb->init_pid <= 0)
		return;
	pfd = sbx_pidfd_open(sb->init_pid, 0);
	if (pfd < 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)sb->init_pid);
	cleanup_close int cfd = open(path, O_RDONLY | O_CLOEXEC);
	if (cfd < 0 || (n = read(cfd, comm, sizeof(comm) - 1)) <= 0)
		return;
	comm[n] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)sb->init_pid);
	if (strncmp(comm, "sbx-init", 8) != 0 || readlink("/proc/self/ns/user", ns_self, sizeof(ns_self) - 1) < 0 ||
	    readlink(path, ns_it, sizeof(ns_it) - 1) < 0 || strcmp(ns_self, ns_it) == 0)
		return;
	sbx_pidfd_send_signal(pfd, SIGKILL, NULL, 0);
}

static void ns_cleanup(struct sbx_sandbox *sb)
{
	struct sbx_daemon *d = sb->d;
	sbx_err err = SBX_ERR_INIT;
	char path[PATH_MAX];

	if (sbx_cgroup_version(d->cg) != SBX_CGROUP_NONE) {
		/* Whatever is left in the cgroup dies with it; a cgroup that exists from a previous
		 * daemon is cleaned up the same way. */
		if (sbx_cgroup_kill(d->cg, sb->id, &err) < 0)
			log_warn("sandbox %s: %s", sb->name, err.msg);
		if (sbx_cgroup_destroy(d->cg, sb->id, &err) < 0)
			log_warn("sandbox %s: %s", sb->name, err.msg);
		sb->cgroup_created = false;
	} else {
		kill_orphan_init(sb);
	}
	if (socket_path(sb, path, sizeof(path)) == 0)
		unlink(path);
}

static int ns_destroy(struct sbx_sandbox *sb, sbx_err *err)
{
	ns_cleanup(sb);
	if (sbx_idmap_rm_rf(&sb->d->idmap, sb->dir, err) < 0)
		return -1;
	return 0;
}

const struct sbx_backend sbx_backend_ns = {
	.name = "ns",
	.prepare = ns_prepare,
	.shutdown = ns_shutdown,
	.probe = ns_probe,
	.launch = ns_launch,
	.cleanup = ns_cleanup,
	.destroy = ns_destroy,
};
