/* idmap.h - who is who inside a sandbox.
 *
 * Inside every sandbox uid 0 is "root" and uid 1000 is "agent". How those map to host ids
 * depends on who runs sbx:
 *
 *   root      The sandbox's user namespace maps 0..65535 to a dedicated unprivileged host range
 *             (root's entry in /etc/subuid, else 0x70000000). No sandbox id is ever host root.
 *             The host's OS directories and the workspace are attached through idmapped mounts
 *             so that /usr looks root-owned inside, and files the agent writes into the
 *             workspace land on disk owned by the invoking user (root), as the user expects.
 *   subuid    An unprivileged user with subordinate ids (/etc/subuid, newuidmap from the
 *             uidmap package): 1000 -> the user, 0..999 and 1001.. -> subordinate ids.
 *   single    An unprivileged user without subordinate ids: only 1000 -> the user. There is
 *             no root inside (`exec -u root` says how to enable it).
 *
 * Nothing here weakens isolation in the weaker modes; they only have fewer identities. */
#ifndef SBX_IDMAP_H
#define SBX_IDMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define SBX_AGENT_UID 1000
#define SBX_AGENT_GID 1000
#define SBX_ROOT_DEFAULT_BASE 0x70000000u

enum sbx_idmap_mode { SBX_IDMAP_ROOT, SBX_IDMAP_SUBUID, SBX_IDMAP_SINGLE };

struct sbx_idmap {
	enum sbx_idmap_mode mode;
	uid_t host_uid; /* the invoking user */
	gid_t host_gid;
	uid_t uid_base; /* root: start of the dedicated range; subuid: first subordinate uid */
	gid_t gid_base;
	uint32_t uid_count, gid_count;
	char newuidmap[64], newgidmap[64];
	/* root mode only: user namespaces that describe the idmapped mounts, made once. */
	int os_userns_fd; /* on-disk 0..65535 -> base..base+65535 */
	int ws_userns_fd; /* on-disk host uid -> agent, on-disk 1..999 -> base+1..999, base -> base */
	char why_not_root[256]; /* for single mode: how to get a root inside */
};

int sbx_idmap_init(struct sbx_idmap *m, sbx_err *err);
void sbx_idmap_free(struct sbx_idmap *m);
const char *sbx_idmap_mode_name(enum sbx_idmap_mode mode);
bool sbx_idmap_has_root(const struct sbx_idmap *m);

/* Write the sandbox maps for a process that has just entered a new user namespace. */
int sbx_idmap_apply(const struct sbx_idmap *m, pid_t pid, sbx_err *err);
/* Host ids for a sandbox id, (uid_t)-1 if it has none the daemon can chown to. */
uid_t sbx_idmap_host_uid(const struct sbx_idmap *m, uid_t inside);
gid_t sbx_idmap_host_gid(const struct sbx_idmap *m, gid_t inside);
/* The uid init runs as right after clone (0 if root is mapped, else the agent). */
uid_t sbx_idmap_init_uid(const struct sbx_idmap *m);

/* Root mode: a detached, idmapped clone of a host path (recursive when asked), ready to be
 * sent to init and attached inside the sandbox. Returns the mount fd or -1 (err filled). */
int sbx_idmap_mount_fd(const struct sbx_idmap *m, const char *path, bool workspace, bool recursive, sbx_err *err);

/* Root mode: a detached clone of a directory of the daemon's (no id mapping): state directories
 * the sandbox's ids own already but could not reach by path through a 0700 parent. */
int sbx_idmap_tree_fd(const char *path, sbx_err *err);
/* Root mode: a detached overlay mount whose lower layer is the idmapped host directory and
 * whose upper/work directories are the sandbox's, built on the host side for the same reason. */
int sbx_idmap_overlay_fd(const struct sbx_idmap *m, const char *lower, const char *upper, const char *work,
			 sbx_err *err);

/* Remove a tree that may contain files owned by subordinate ids (subuid mode), from inside a
 * user namespace with the same map; plain removal otherwise. */
int sbx_idmap_rm_rf(const struct sbx_idmap *m, const char *path, sbx_err *err);

#endif
