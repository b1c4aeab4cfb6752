
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cleanup.h"
#include "harden.h"
#include "kcompat.h"
#include "util.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

/* Failure report from the child: errno and a short text, written once to the status pipe. */
struct child_report {
	int err;
	int stage; /* 1 once the command itself is being looked up / executed */
	char msg[256];
};

static int child_stage;

static void __attribute__((noreturn)) child_fail(int pipefd, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void child_fail(int pipefd, int err, const char *fmt, ...)
{
	struct child_report r = {.err = err ? err : EINVAL, .stage = child_stage};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r.msg, sizeof(r.msg), fmt, ap);
	va_end(ap);
	(void)!write(pipefd, &r, sizeof(r));
	_exit(127);
}

static int open_devnull(int flags)
{
	return open("/dev/null", flags | O_CLOEXEC);
}

/* Resolve argv[0] against the search path the way execvp would, but without the shell
 * fallback, so we can tell "not found" (127) from "not executable" (126). */
static int resolve(const char *prog, const char *path, char *out, size_t outlen)
{
	int saw_eacces = 0;

	if (strchr(prog, '/')) {
		if (sbx_strlcpy(out, prog, outlen) >= outlen)
			return ENAMETOOLONG;
		return 0;
	}
	for (const char *p = path && *path ? path : "/usr/local/bin:/usr/bin:/bin"; p;) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		struct stat st;

		if (n > 0 && n + strlen(prog) + 2 <= outlen) {
			memcpy(out, p, n);
			out[n] = '/';
			sbx_strlcpy(out + n + 1, prog, outlen - n - 1);
			if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
				if (access(out, X_OK) == 0)
					return 0;
				saw_eacces = 1;
			}
		}
		p = colon ? colon + 1 : NULL;
	}
	return saw_eacces ? EACCES : ENOENT;
}

static void __attribute__((noreturn))
child_main(const struct sbx_spawn_policy *pol, const struct sbx_spawn_req *req, int in_fd, int out_fd, int err_fd,
	   int tty_fd, int report)
{
	char errbuf[256], prog[4096];
	sigset_t all;
	int e;

	/* A clean signal state: init blocks everything and uses a signalfd. */
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);

	if (setsid() < 0)
		child_fail(report, errno, "setsid");
	if (tty_fd >= 0) {
		if (ioctl(tty_fd, TIOCSCTTY, 0) < 0)
			child_fail(report, errno, "cannot make the pty the controlling terminal");
		in_fd = out_fd = err_fd = tty_fd;
	}
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		child_fail(report, errno, "cannot set up standard streams");
	/* Everything else init holds (the control socket, other sandboxes' ptys) closes at exec. */
	if (sbx_close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 4096; fd++)
			if (fd != report)
				fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	umask(req->umask);

	if (pol->rlimit_nofile) {
		struct rlimit rl = {pol->rlimit_nofile, pol->rlimit_nofile};
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (pol->rlimit_nproc) {
		struct rlimit rl = {pol->rlimit_nproc, pol->rlimit_nproc};
		if (setrlimit(RLIMIT_NPROC, &rl) < 0)
			child_fail(report, errno, "cannot set the process limit");
	}

	/* Capabilities first, while we still hold CAP_SETPCAP to shrink the bounding set. */
	if (sbx_harden_caps(req->uid == 0 && req->root_caps, errbuf, sizeof(errbuf)) < 0)
		child_fail(report, errno, "%s", errbuf);
	if (setgroups(0, NULL) < 0 && errno != EPERM)
		child_fail(report, errno, "setgroups");
	if (setresgid(req->gid, req->gid, req->gid) < 0)
		child_fail(report, errno, "cannot switch to gid %u", (unsigned)req->gid);
	if (setresuid(req->uid, req->uid, req->uid) < 0)
		child_fail(report, errno, "cannot switch to uid %u", (unsigned)req->uid);
	if (req->uid != 0 || !req->root_caps) {
		/* Verify (and, for a non-root init, actually perform) the full drop. */
		if (sbx_harden_caps(false, errbuf, sizeof(errbuf)) < 0)
			child_fail(report, errno, "%s", errbuf);
	}
	if (tty_fd >= 0 && fchown(tty_fd, req->uid, 5) < 0 && fchown(tty_fd, req->uid, (gid_t)-1) < 0) {
		/* Ownership of the pty is cosmetic (some programs check it); never fatal. */
	}
	if (req->cwd && chdir(req->cwd) < 0)
		child_fail(report, errno, "cannot change to the working directory %s", req->cwd);

	child_stage = 1;
	e = resolve(req->argv[0], req->path, prog, sizeof(prog));
	if (e)
		child_fail(report, e, "%s", req->argv[0]);

	child_stage = 0;
	if (sbx_harden_nnp(errbuf, sizeof(errbuf)) < 0)
		child_fail(report, errno, "%s", errbuf);
	int abi = 0;
	if (sbx_harden_landlock(pol->landlock_rw, pol->n_landlock_rw, pol->landlock_dev, pol->n_landlock_dev,
				pol->landlock_min_abi, &abi, errbuf, sizeof(errbuf)) < 0)
		child_fail(report, errno, "%s", errbuf);
	if (pol->bpf && sbx_harden_seccomp(pol->bpf, pol->bpf_len, errbuf, sizeof(errbuf)) < 0)
		child_fail(report, errno, "%s", errbuf);
	/* No system call the filter refuses may come after this point. */
	child_stage = 1;
	execve(prog, req->argv, req->envp);
	child_fail(report, errno, "%s", prog);
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close_and_reset(fds[i]);
}

int sbx_spawn(const struct sbx_spawn_policy *pol, const struct sbx_spawn_req *req, struct sbx_spawn_result *res)
{
	int child_in = -1, child_out = -1, child_err = -1, tty_slave = -1;
	int p[2], report[2];
	struct child_report rep;
	ssize_t n;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	res->fds[0] = res->fds[1] = res->fds[2] = -1;
	res->master = -1;

	if (req->tty) {
		struct winsize ws = {.ws_row = (unsigned short)(req->rows ? req->rows : 24),
				     .ws_col = (unsigned short)(req->cols ? req->cols : 80)};
		int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (master < 0 || unlockpt(master) < 0) {
			res->err = errno;
			snprintf(res->msg, sizeof(res->msg), "cannot allocate a terminal: %s", strerror(errno));
			if (master >= 0)
				close(master);
			return -1;
		}
		tty_slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (tty_slave < 0) {
			res->err = errno;
			snprintf(res->msg, sizeof(res->msg), "cannot open the terminal: %s", strerror(errno));
			close(master);
			return -1;
		}
		ioctl(master, TIOCSWINSZ, &ws);
		res->fds[0] = master;
		res->nfds = 1;
		res->master = fcntl(master, F_DUPFD_CLOEXEC, 3);
	} else {
		if (req->want_stdin && !req->detached) {
			if (pipe2(p, O_CLOEXEC) < 0)
				goto pipe_fail;
			child_in = p[0];
			res->fds[0] = p[1];
		} else {
			child_in = open_devnull(O_RDONLY);
		}
		if (pipe2(p, O_CLOEXEC) < 0)
			goto pipe_fail;
		res->fds[1] = p[0];
		child_out = p[1];
		if (pipe2(p, O_CLOEXEC) < 0)
			goto pipe_fail;
		res->fds[2] = p[0];
		child_err = p[1];
		res->nfds = 3;
	}
	if (pipe2(report, O_CLOEXEC) < 0)
		goto pipe_fail;

	pid = fork();
	if (pid < 0) {
		res->err = errno;
		snprintf(res->msg, sizeof(res->msg), "cannot fork: %s", strerror(errno));
		close(report[0]);
		close(report[1]);
		goto fail;
	}
	if (pid == 0) {
		close(report[0]);
		child_main(pol, req, child_in, child_out, child_err, tty_slave, report[1]);
	}
	close(report[1]);
	close_and_reset(child_in);
	close_and_reset(child_out);
	close_and_reset(child_err);
	close_and_reset(tty_slave);

	do
		n = read(report[0], &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	close(report[0]);
	if (n == (ssize_t)sizeof(rep)) {
		/* The child failed before execve and exits 127; its zombie is reaped by the
		 * main loop like any other orphan. */
		rep.msg[sizeof(rep.msg) - 1] = '\0';
		res->err = rep.err;
		res->stage = rep.stage;
		snprintf(res->msg, sizeof(res->msg), "%s: %s", rep.msg, strerror(rep.err));
		waitpid(pid, NULL, 0);
		goto fail_fds;
	}
	res->pid = pid;
	return 0;

pipe_fail:
	res->err = errno;
	snprintf(res->msg, sizeof(res->msg), "cannot create pipes: %s", strerror(errno));
fail:
	close_and_reset(child_in);
	close_and_reset(child_out);
	close_and_reset(child_err);
	close_and_reset(tty_slave);
fail_fds:
	close_all(res->fds, 3);
	close_and_reset(res->master);
	res->nfds = 0;
	return -1;
}
