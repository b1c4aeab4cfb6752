/* daemon.h - sbxd's shared state and the sandbox model.
 *
 * A sandbox has a persistent part (its row in the store, its directory under
 * state_dir/sandboxes/<id>: home, writable layers, logs) and, while it runs, a live part: the
 * process that is its init, the control connection to it, and the processes started in it on
 * behalf of clients ("execs"). Everything is driven from one event loop; operations that wait
 * for the sandbox (start, stop, exec) complete through callbacks. */
#ifndef SBX_DAEMON_H
#define SBX_DAEMON_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "err.h"
#include "idmap.h"
#include "loop.h"
#include "paths.h"
#include "review.h"
#include "seccomp_policy.h"
#include "store.h"

#define SBX_MAX_WORKSPACES 16
#define SBX_MAX_ENV 256
#define SBX_MAX_AGENT_ARGS 256
#define SBX_DEFAULT_PIDS 4096
#define SBX_API_VERSION "1"

enum sbx_state {
	SBX_STATE_CREATED,  /* exists, never started */
	SBX_STATE_STARTING,
	SBX_STATE_RUNNING,
	SBX_STATE_STOPPING,
	SBX_STATE_STOPPED,
	SBX_STATE_ERROR,    /* the last start failed; `error` says why */
};
const char *sbx_state_name(enum sbx_state s);
enum sbx_state sbx_state_from_name(const char *s);

struct sbx_workspace {
	char path[PATH_MAX]; /* absolute, canonical host path; also the path inside */
	bool ro;
};

/* What the user asked for at creation. Persisted as JSON in the store. */
struct sbx_spec {
	struct sbx_workspace ws[SBX_MAX_WORKSPACES];
	size_t nws;
	char *env[SBX_MAX_ENV]; /* "KEY=VALUE" */
	size_t nenv;
	char *agent_args[SBX_MAX_AGENT_ARGS];
	size_t nargs;
	bool agent_args_set; /* agent_args replace the profile's defaults */
	uint64_t memory;     /* bytes, 0 = default */
	uint32_t millicpus;  /* 0 = no limit */
	uint32_t pids;       /* 0 = default */
	bool ephemeral;      /* `run --rm`: writable state in memory, never on the host's disk */
};
void sbx_spec_clear(struct sbx_spec *s);

struct sbx_sandbox;
struct sbx_exec;
struct sbx_daemon;
struct sbx_policy;
struct sbx_audit;
struct sbx_proxy;

/* A pending start/stop, allocated by the requester and owned by the sandbox from the moment it
 * is handed to sbx_sandbox_start/stop: it is freed after the callback. A requester that goes
 * away sets cb = NULL (sbx_waiter_cancel) and forgets it. */
struct sbx_waiter {
	void (*cb)(void *ud, struct sbx_sandbox *sb, const sbx_err *err);
	void *ud;
	struct sbx_waiter *next;
};

struct sbx_exec {
	uint32_t id;
	struct sbx_sandbox *sb;
	pid_t pid; /* inside the sandbox */
	bool started;
	bool tty;
	bool detached;
	bool rm_on_exit; /* `run --rm`: the sandbox goes when this process ends */
	/* Callbacks to the requester (NULL once it has gone away). Exactly one of them ends the
	 * exec: on_started with an error, or on_exit; the record is freed right after by
	 * sandbox.c, which owns it once sbx_sandbox_exec has succeeded. */
	void (*on_started)(struct sbx_exec *ex, const int *fds, size_t nfds, uint32_t fdmask, const sbx_err *err);
	void (*on_exit)(struct sbx_exec *ex, int wstatus);
	void *ud;
	/* Detached execs: output drained into a capped log file. */
	int log_fd;
	int out_fd, err_fd;
	uint64_t logged;
	struct sbx_exec *next;
};

struct sbx_backend;

struct sbx_sandbox {
	struct sbx_daemon *d;
	char id[33];
	char name[64];
	char agent[32];
	char isolation[16];
	enum sbx_state state;
	struct sbx_spec spec;
	int64_t created_at, started_at;
	char *error;
	char dir[PATH_MAX]; /* state_dir/sandboxes/<id> */
	const struct sbx_backend *backend;

	/* live part */
	pid_t init_pid; /* host pid */
	int pidfd;
	int ctl;
	bool adopted;  /* not our child: re-adopted after a daemon restart */
	bool cgroup_created;
	uint64_t start_timer, stop_timer;
	struct sbx_waiter *start_waiters, *stop_waiters;
	struct sbx_exec *execs;
	bool removed; /* gone from the registry; freed at the end of the loop iteration */
	/* The values of the services' host variables (ANTHROPIC_API_KEY, AWS_*...) as the CLI saw
	 * them at run/create/start: used when no secret is stored. Kept in memory only, never
	 * persisted, never put into the sandbox. */
	struct json_t *host_env;
	uint64_t start_t0_ns; /* for the start-time figure in the log */
	struct sbx_sandbox *next;
};

/* Backends implement one interface; the proxy, policy, secrets and log are shared. */
struct sbx_backend {
	const char *name;
	/* Once when the daemon starts (after sandboxes are loaded): clean up, prepare ahead. */
	int (*prepare)(struct sbx_daemon *d, sbx_err *err);
	/* When the daemon stops: release what was prepared ahead (running sandboxes stay). */
	void (*shutdown)(struct sbx_daemon *d);
	/* Does it work on this host? 0, or -1 with the reason in `why`. */
	int (*probe)(struct sbx_daemon *d, char *why, size_t whylen);
	/* Start the sandbox's init and send it the setup. On success the sandbox has ctl, pidfd
	 * and init_pid set and is STARTING; READY arrives through the control connection. */
	int (*launch)(struct sbx_sandbox *sb, sbx_err *err);
	/* Release host resources after init has gone (cgroups, sockets). Idempotent. */
	void (*cleanup)(struct sbx_sandbox *sb);
	/* Remove every trace from the host (the sandbox is stopped). */
	int (*destroy)(struct sbx_sandbox *sb, sbx_err *err);
};
extern const struct sbx_backend sbx_backend_ns;

struct sbx_daemon {
	struct sbx_paths paths;
	struct sbx_store *store;
	struct sbx_loop *loop;
	struct sbx_cgroup_mgr *cg;
	struct sbx_idmap idmap;
	struct sbx_bpf bpf;
	int landlock_abi;
	int init_exe_fd; /* sbx-init, opened once, executed with execveat */
	char init_exe_path[PATH_MAX];
	char libexec_dir[PATH_MAX];
	struct sbx_sandbox *sandboxes;
	uint32_t next_exec_id;
	uint64_t started_at_ms;
	bool shutting_down;
	char userns_problem[512]; /* non-empty when user namespaces cannot be used */
	/* egress: the compiled policy (rebuilt and swapped on every change, so running sandboxes
	 * see changes at once), the audit log, and the proxy */
	struct sbx_policy *policy;
	struct sbx_audit *audit;
	struct sbx_proxy *proxy;
	/* the review queue (owned by the proxy, which holds the requests) and the built-in
	 * classifiers' settings (loaded at start, updated by the API) */
	struct sbx_reviews *reviews;
	struct sbx_classifier_cfg classifiers[SBX_CLS_COUNT];
	int lock_fd;     /* the instance lock (flock): held for this daemon's life, by it alone */
	void *nft_batch; /* the sandbox network rules (netrules.h), built once, sent in every SETUP */
	size_t nft_batch_len;
};

/* ---- policy_live.c ---- */
/* Reload the rules from the store and swap in a newly compiled policy. On failure the old
 * policy stays in force (nothing is opened up by a failed reload). */
int sbx_daemon_policy_reload(struct sbx_daemon *d, sbx_err *err);
/* Apply the balanced preset if the policy was never initialised (first use without a terminal
 * to ask on). */
int sbx_daemon_policy_ensure(struct sbx_daemon *d, sbx_err *err);

/* ---- sandbox.c: the registry and lifecycle ---- */
struct sbx_sandbox *sbx_sandbox_find(struct sbx_daemon *d, const char *name_or_id);
/* Create (persist) a new sandbox. Takes ownership of spec's strings. */
int sbx_sandbox_create(struct sbx_daemon *d, const char *name, const char *agent, const char *isolation,
		       struct sbx_spec *spec, struct sbx_sandbox **out, sbx_err *err);
/* Start; cb runs when it is running or has failed (possibly before this returns). */
void sbx_sandbox_start(struct sbx_sandbox *sb, struct sbx_waiter *w);
/* Stop; cb runs when every process is gone. */
void sbx_sandbox_stop(struct sbx_sandbox *sb, uint32_t grace_ms, struct sbx_waiter *w);
/* Forget a sandbox at once (its name is free, its row gone) and finish stopping it and removing
 * what it left on the host in the background: how `run --rm` ends. */
void sbx_sandbox_discard(struct sbx_sandbox *sb);
/* Remove host leftovers (cgroups, directories, sockets) of sandboxes the store does not know,
 * e.g. from a daemon that died while discarding one. */
void sbx_sandboxes_sweep(struct sbx_daemon *d);
/* Remove a stopped sandbox and everything it left on the host. */
int sbx_sandbox_remove(struct sbx_sandbox *sb, sbx_err *err);
/* Start a process; ex->on_started is called once, then ex->on_exit once. */
int sbx_sandbox_exec(struct sbx_sandbox *sb, struct sbx_exec *ex, const char *const *argv, const char *const *env,
		     const char *cwd, uid_t uid, gid_t gid, unsigned rows, unsigned cols, bool want_stdin,
		     sbx_err *err);
void sbx_exec_signal(struct sbx_exec *ex, int sig);
void sbx_exec_resize(struct sbx_exec *ex, unsigned rows, unsigned cols);
/* The requester of an exec has gone: callbacks are dropped, the process keeps running. */
void sbx_exec_detach_requester(struct sbx_exec *ex);
/* Load sandboxes from the store and re-adopt (or clean up) the ones that were running. */
int sbx_sandboxes_load(struct sbx_daemon *d, sbx_err *err);
int sbx_sandbox_persist(struct sbx_sandbox *sb, sbx_err *err);
/* Control connection handling shared by backends that speak initproto. */
int sbx_sandbox_attach_init(struct sbx_sandbox *sb, sbx_err *err);
/* Waiter helpers. */
void sbx_waiter_cancel(struct sbx_waiter *w);
/* The default agent environment for a process in this sandbox. */

/* ---- template.c: the filesystem view of the "host" template ---- */
struct sbx_setup_plan;
/* How much of the view an init prepared ahead of time already has. */
enum sbx_presetup {
	SBX_PRESETUP_NONE,      /* nothing */
	SBX_PRESETUP_GENERIC,   /* fresh /tmp, /run, /dev, /proc, /sys and the seccomp filter */
	SBX_PRESETUP_EPHEMERAL, /* that, and the system part of an ephemeral sandbox */
};
/* Sends the sandbox-independent part, optionally with an ephemeral sandbox's system part. */
int sbx_template_generic_send(struct sbx_daemon *d, int ctl, bool ephemeral_system, sbx_err *err);
/* Sends the rest of a sandbox's view, given what the init has already. */
int sbx_template_host_send(struct sbx_sandbox *sb, int ctl, enum sbx_presetup done, sbx_err *err);
/* Changes whenever the list of hidden /etc entries may have changed (a prepared system part
 * from an older generation must not be used). */
uint64_t sbx_template_etc_generation(void);
/* Create the persistent directories (home, layers) with the right owners. */
int sbx_template_prepare_dirs(struct sbx_sandbox *sb, sbx_err *err);

#endif
