/* mounts.h - building a sandbox's filesystem view inside its new mount namespace.
 *
 * The daemon decides *what* the view contains (a list of operations, see initproto.h); this
 * module only knows *how* to execute them, in order, in the order bubblewrap made standard:
 *
 *   1. make every inherited mount private (nothing propagates back to the host);
 *   2. mount a scratch tmpfs on /tmp and pivot into it, so the host root sits at /oldroot and
 *      the new root is a fresh tmpfs at /newroot;
 *   3. run the operations: host sources are read below /oldroot, destinations are created
 *      below /newroot;
 *   4. pivot into /newroot, detach the old root (the host disappears), make / read-only.
 *
 * Nothing here trusts the new root's contents: destinations are created with O_NOFOLLOW
 * semantics where it matters, and paths are checked to be absolute and free of "..". */
#ifndef SBX_INIT_MOUNTS_H
#define SBX_INIT_MOUNTS_H

#include <stddef.h>
#include <stdint.h>

struct sbx_mount_op {
	uint32_t kind;
	uint32_t flags;
	uint32_t mode;
	uint64_t size;
	int fd;                 /* source mount fd, -1 if none */
	uint32_t uid, gid;
	int has_owner;
	const char *src, *dest, *upper, *work;
	const void *data;
	size_t data_len;
};

/* Steps 1 and 2. */
int sbx_mounts_prepare(char *errbuf, size_t errlen);
/* Step 3 for one operation. */
int sbx_mounts_apply(const struct sbx_mount_op *op, char *errbuf, size_t errlen);
/* Step 4. */
int sbx_mounts_finish(char *errbuf, size_t errlen);

#endif
