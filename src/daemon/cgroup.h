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
 * `name` arguments are sandbox ids: 1-64 characters of [a-zA-Z0-9_.-], not "." or "..". Every
 * entry point checks them (SBX_E_INVALID, or -1 with errno EINVAL where there is no sbx_err).
 *
 * With version NONE there is nothing to track processes with: create (when no limit is asked
 * for), attach, kill and destroy succeed without doing anything, so the caller must end the
 * sandbox by other means (its pid namespace); stats and open_dir fail. */
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
/* The same with the host injected, for tests: mountinfo_path and self_cgroup_path replace
 * /proc/self/{mountinfo,cgroup}, path_prefix ("" for none) is prepended to every mount point, and
 * uid is the user to act as (0 = root layout; others need delegation, judged by ownership when it
 * is not our own euid). sbx_cgroup_mgr_new() is this with the real files, "" and geteuid(). */
int sbx_cgroup_mgr_new_at(struct sbx_cgroup_mgr **out, const char *mountinfo_path, const char *self_cgroup_path,
			  const char *path_prefix, uid_t uid, sbx_err *err);
/* For tests that emulate cgroupfs with plain files under path_prefix: on_mkdir runs right after
 * the manager creates a cgroup directory, so the fake can add the interface files the kernel
 * would (cgroup.procs, memory.max, ...); on_rmdir runs just before it removes one, so the fake
 * can delete them (a real cgroup directory goes with its files). NULL clears them. */
struct sbx_cgroup_fs_hooks {
	void (*on_mkdir)(void *ud, const char *path);
	void (*on_rmdir)(void *ud, const char *path);
	void *ud;
};
void sbx_cgroup_mgr_set_fs_hooks(struct sbx_cgroup_mgr *m, const struct sbx_cgroup_fs_hooks *hooks);
void sbx_cgroup_mgr_free(struct sbx_cgroup_mgr *m);
enum sbx_cgroup_version sbx_cgroup_version(const struct sbx_cgroup_mgr *m);
/* One line for `sbx diagnose`: what is used, or why limits are unavailable and the fix. */
const char *sbx_cgroup_describe(const struct sbx_cgroup_mgr *m);

/* Create the sandbox's cgroup(s) and apply the limits. Fails (SBX_E_UNSUPPORTED) if a requested
 * limit cannot be applied (e.g. the controller is missing), naming the controller. An existing
 * cgroup of the same name (left by a crash) is emptied and reused. Only the controllers the
 * limits need are used, plus pids whenever available (it counts the sandbox's processes) and,
 * on v1, the freezer (it makes kill race-free). */
int sbx_cgroup_create(struct sbx_cgroup_mgr *m, const char *name, const struct sbx_cgroup_limits *lim, sbx_err *err);
/* A cgroup with every available controller and no limit but pids, for a sandbox started ahead
 * of time (a "spare"); it gets its name and limits when a sandbox claims it. */
int sbx_cgroup_create_spare(struct sbx_cgroup_mgr *m, const char *name, uint32_t pids, sbx_err *err);
/* Rename a cgroup in every hierarchy; its processes stay in it. */
int sbx_cgroup_rename(struct sbx_cgroup_mgr *m, const char *from, const char *to, sbx_err *err);
/* Set the limits of an existing cgroup (processes may be running in it); limits not requested
 * are lifted. Fails, naming the controller, if a requested limit cannot be applied. */
int sbx_cgroup_set_limits(struct sbx_cgroup_mgr *m, const char *name, const struct sbx_cgroup_limits *lim,
			  sbx_err *err);
/* v2 only: an O_DIRECTORY fd of the sandbox cgroup for clone3(CLONE_INTO_CGROUP); -1 on v1/none
 * (errno EOPNOTSUPP) or when it does not exist. */
int sbx_cgroup_open_dir(struct sbx_cgroup_mgr *m, const char *name);
/* Move a process into the sandbox cgroup (every v1 hierarchy). */
int sbx_cgroup_attach(struct sbx_cgroup_mgr *m, const char *name, pid_t pid, sbx_err *err);
/* SIGKILL every process in the cgroup and wait (bounded, ~2 s) until it is empty.
 * v2 uses cgroup.kill when present; otherwise freeze (if possible), kill, thaw, repeat.
 * Refuses, killing nothing, a cgroup that holds sbxd itself or pid 1. */
int sbx_cgroup_kill(struct sbx_cgroup_mgr *m, const char *name, sbx_err *err);
/* Remove the cgroup(s), killing what is still inside first; a missing cgroup is not an error. */
int sbx_cgroup_destroy(struct sbx_cgroup_mgr *m, const char *name, sbx_err *err);
/* 0, or -1 with errno (ENOENT: no such cgroup; EOPNOTSUPP: version NONE). */
int sbx_cgroup_stats(struct sbx_cgroup_mgr *m, const char *name, struct sbx_cgroup_stats *st);
/* Names of existing sandbox cgroups under our parent (for cleanup after a crash). The callback
 * gets each name once (v1: the union over hierarchies). Returns how many, or -1 with errno. */
int sbx_cgroup_list(struct sbx_cgroup_mgr *m, void (*cb)(void *ud, const char *name), void *ud);

#endif
