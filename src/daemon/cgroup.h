/* cgroup.h - resource limits for sandboxes on cgroup v1 and v2.
 *
 * The manager is detected once when the daemon starts:
 *   v2 (unified): /sys/fs/cgroup is cgroup2. Root uses <root>/sbx/<name>; an unprivileged
 *       user needs a delegated subtree (systemd user@.service delegation): the daemon moves
 *       itself into a leaf "<own>/sbxd" and creates sandboxes as siblings "<own>/sbx-<name>".
 *   v1 (legacy or hybrid): one directory per controller (memory, cpu, pids, freezer when
 *       present). Root uses /sys/fs/cgroup/<ctrl>/sbx/<name>; an unprivileged user needs a
 *       directory delegated to it by root: /sys/fs/cgroup/<ctrl>/sbx-<uid>/ owned by the user.
 *   none: no place where we may create cgroups. Limits cannot be enforced; callers that were
 *       asked for a limit must refuse to start (fail closed) and say why and how to fix it.
 * `name` arguments are sandbox ids (validated [a-z0-9-], no slashes). */
#ifndef SBX_CGROUP_H
#define SBX_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

enum sbx_cgroup_version { SBX_CGROUP_NONE = 0, SBX_CGROUP_V1 = 1, SBX_CGROUP_V2 = 2 };

struct sbx_cgroup_limits {
	uint64_t memory_bytes; /* 0 = no limit; also caps swap (memory+swap = memory) where possible */
	uint32_t millicpus;    /* 0 = no limit; 1500 = 1.5 CPUs of bandwidth (period 100 ms) */
	uint32_t pids;         /* 0 = no limit */
};

struct sbx_cgroup_stats {
	uint64_t memory_current; /* bytes charged, 0 if unknown */
	uint64_t pids_current;
	bool oom_killed;         /* an OOM kill happened in this cgroup */
};

struct sbx_cgroup_mgr;

/* Detect the hierarchy and where this user may create cgroups. Never fails for lack of
 * delegation: version is then NONE and `why` explains (see sbx_cgroup_describe). */
int sbx_cgroup_mgr_new(struct sbx_cgroup_mgr **out, sbx_err *err);
void sbx_cgroup_mgr_free(struct sbx_cgroup_mgr *m);
enum sbx_cgroup_version sbx_cgroup_version(const struct sbx_cgroup_mgr *m);
/* One line for `sbx diagnose`: what is used, or why limits are unavailable and the fix. */
const char *sbx_cgroup_describe(const struct sbx_cgroup_mgr *m);

/* Create the sandbox's cgroup(s) and apply the limits. Fails (SBX_E_UNSUPPORTED) if a requested
 * limit cannot be applied (e.g. the controller is missing), naming the controller. An existing
 * cgroup of the same name (left by a crash) is emptied and reused. */
int sbx_cgroup_create(struct sbx_cgroup_mgr *m, const char *name, const struct sbx_cgroup_limits *lim, sbx_err *err);
/* v2 only: an O_DIRECTORY fd of the sandbox cgroup for clone3(CLONE_INTO_CGROUP); -1 on v1/none. */
int sbx_cgroup_open_dir(struct sbx_cgroup_mgr *m, const char *name);
/* Move a process into the sandbox cgroup (every v1 hierarchy). */
int sbx_cgroup_attach(struct sbx_cgroup_mgr *m, const char *name, pid_t pid, sbx_err *err);
/* SIGKILL every process in the cgroup and wait (bounded, ~2 s) until it is empty.
 * v2 uses cgroup.kill when present; otherwise freeze (if possible), kill, thaw, repeat. */
int sbx_cgroup_kill(struct sbx_cgroup_mgr *m, const char *name, sbx_err *err);
/* Remove the cgroup(s); a missing cgroup is not an error. */
int sbx_cgroup_destroy(struct sbx_cgroup_mgr *m, const char *name, sbx_err *err);
int sbx_cgroup_stats(struct sbx_cgroup_mgr *m, const char *name, struct sbx_cgroup_stats *st);
/* Names of existing sandbox cgroups under our parent (for cleanup after a crash). The callback
 * gets each name. */
int sbx_cgroup_list(struct sbx_cgroup_mgr *m, void (*cb)(void *ud, const char *name), void *ud);

#endif
