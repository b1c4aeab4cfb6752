/* spawn.h - starting a program inside the sandbox on the daemon's behalf.
 *
 * The child is forked from sbx-init (PID 1), gets a pty or pipes, a new session, the target
 * user, and then the hardening in the fixed order of harden.h, seccomp last, then execve.
 * Whether execve worked is learned through a close-on-exec pipe: EOF means it did, four bytes
 * of errno mean it did not, so "command not found" is reported as such instead of as exit 127
 * of a half-started process. */
#ifndef SBX_INIT_SPAWN_H
#define SBX_INIT_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Settings shared by every process of the sandbox (from the SETUP message). */
struct sbx_spawn_policy {
	const void *bpf; /* seccomp program (struct sock_filter[]) */
	size_t bpf_len;  /* instructions */
	const char **landlock_rw;
	size_t n_landlock_rw;
	const char **landlock_dev;
	size_t n_landlock_dev;
	int landlock_min_abi;
	uint32_t rlimit_nproc; /* 0 = leave as is */
	uint32_t rlimit_nofile;
};

struct sbx_spawn_req {
	char **argv;
	char **envp;
	const char *cwd;
	const char *path; /* search path for argv[0] */
	uid_t uid;
	gid_t gid;
	bool tty;
	bool want_stdin;
	bool detached;
	bool root_caps;
	unsigned rows, cols;
	mode_t umask;
};

struct sbx_spawn_result {
	pid_t pid;
	int fds[3];   /* tty: [0] = pty master; else [0] stdin write end (or -1), [1] stdout, [2] stderr */
	size_t nfds;
	int master;   /* tty only: a second reference kept by init for resizing, else -1 */
	int err;      /* errno of a failed start */
	int stage;    /* 0: setting the process up failed; 1: the command itself (not found, ...) */
	char msg[512];
};

/* Returns 0 when the program is running (result filled), -1 when it could not be started
 * (result->err and ->msg say why; no fds are left open). */
int sbx_spawn(const struct sbx_spawn_policy *pol, const struct sbx_spawn_req *req, struct sbx_spawn_result *res);

#endif
