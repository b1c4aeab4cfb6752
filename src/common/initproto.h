/* initproto.h - messages between sbxd and sbx-init (PID 1 of a sandbox, or the guest agent of a
 * microVM).
 *
 * Transport: a SOCK_SEQPACKET unix socket, one message per packet, descriptors (pty masters,
 * pipe ends, mount fds) riding along with SCM_RIGHTS. A message is a fixed header followed by
 * attributes, netlink-style:
 *
 *     struct sbx_msg_hdr { u32 magic; u16 type; u16 flags; u32 id; u32 len; }   len = payload
 *     attribute:         { u16 type; u16 reserved; u32 len; payload[len]; pad to 4 }
 *
 * Strings are NUL-terminated inside their payload; integers are native-endian (both ends run on
 * the same kernel, or a guest of the same architecture). The daemon must treat what init sends
 * as untrusted (a microVM guest's kernel belongs to the agent), so the decoder checks every
 * length against the packet and every string for its NUL. */
#ifndef SBX_INITPROTO_H
#define SBX_INITPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SBX_MSG_MAGIC 0x53425831u /* "SBX1" */
#define SBX_MSG_MAX (256 * 1024)  /* largest packet either side accepts */

enum sbx_msg_type {
	/* daemon -> init */
	SBX_MSG_SETUP = 1,  /* the filesystem plan, identity, limits, hardening; init answers READY */
	SBX_MSG_EXEC = 2,   /* start a process; init answers EXEC_STARTED (+fds) or EXEC_FAILED */
	SBX_MSG_SIGNAL = 3, /* signal an exec'd process (its process group when it has a tty) */
	SBX_MSG_RESIZE = 4, /* window size of an exec's pty */
	SBX_MSG_STOP = 5,   /* SIGTERM everything, SIGKILL after the grace period, then exit */
	SBX_MSG_PING = 6,   /* init answers PONG: liveness and re-adoption handshake */
	SBX_MSG_WAIT = 7,   /* re-send EXIT for an exec if it has ended (after a daemon restart) */
	/* init -> daemon */
	SBX_MSG_READY = 64,
	SBX_MSG_SETUP_FAILED = 65,
	SBX_MSG_EXEC_STARTED = 66,
	SBX_MSG_EXEC_FAILED = 67,
	SBX_MSG_EXIT = 68,
	SBX_MSG_PONG = 69,
};

enum sbx_attr_type {
	SBX_A_STRING = 1,   /* generic string (message text) */
	SBX_A_ERRNO = 2,    /* u32 */
	SBX_A_HOSTNAME = 3, /* string */
	SBX_A_OP = 4,       /* nested: one filesystem operation (see SBX_OP_*) */
	SBX_A_BPF = 5,      /* bytes: struct sock_filter[] */
	SBX_A_LANDLOCK_RW = 6,  /* string, repeatable: writable subtree */
	SBX_A_LANDLOCK_DEV = 7, /* string, repeatable: device path (write + ioctl) */
	SBX_A_LANDLOCK_MIN_ABI = 8, /* u32 */
	SBX_A_ARG = 9,      /* string, repeatable: argv in order */
	SBX_A_ENV = 10,     /* string, repeatable: KEY=VALUE */
	SBX_A_CWD = 11,     /* string */
	SBX_A_UID = 12,     /* u32, inside the sandbox */
	SBX_A_GID = 13,     /* u32 */
	SBX_A_TTY = 14,     /* u32: 1 = allocate a pty */
	SBX_A_ROWS = 15,    /* u32 */
	SBX_A_COLS = 16,    /* u32 */
	SBX_A_ROOT_CAPS = 17, /* u32: 1 = uid 0 keeps the namespaced root capability set */
	SBX_A_SIGNAL = 18,  /* u32 */
	SBX_A_PID = 19,     /* u32: pid inside the sandbox */
	SBX_A_WSTATUS = 20, /* u32: wait status */
	SBX_A_GRACE_MS = 21,/* u32 */
	SBX_A_STDIN = 22,   /* u32: 1 = give the process a stdin pipe, 0 = /dev/null */
	SBX_A_RLIMIT_NPROC = 23, /* u32: fallback process limit when no cgroup is available */
	SBX_A_SANDBOX_ID = 24,   /* string */
	SBX_A_EXEC_ID = 25,      /* u32 (also in the header id) */
	SBX_A_DETACHED = 26,     /* u32: stdout/stderr to the daemon's log, no stdin */
	SBX_A_UMASK = 27,        /* u32 */
	SBX_A_LOOPBACK = 28,     /* u32: 1 = bring lo up */
	SBX_A_NOFILE = 29,       /* u32: RLIMIT_NOFILE for processes */
	SBX_A_PATH = 30,         /* string: PATH used to resolve argv[0] */
	SBX_A_STAGE = 31,        /* u32: where a start failed: 0 setting up, 1 finding/executing the command */
	SBX_A_NFT = 32,          /* bytes: the nftables netlink batch for the sandbox's netns (SETUP);
				  * with it, init also opens the proxy listeners (see netsetup.h) */
	SBX_A_NETFDS = 33,       /* u32 (READY, PONG): bit i set = listener i rides along, in the order
				  * explicit, transparent v4, transparent v6, DNS */
};

/* Where the listeners init opens inside the sandbox's network namespace listen. */
#define SBX_NET_EXPLICIT_PORT 3128
#define SBX_NET_TRANSPARENT_PORT 15001
#define SBX_NET_NLISTENERS 4

/* Filesystem operations, executed in order by init (bubblewrap's model). Destinations are
 * absolute paths inside the new root. Sources marked "host" are absolute host paths, resolved
 * before the host root is detached. An op may instead take a mount fd sent in a preceding
 * SBX_MSG_SETUP packet's SCM_RIGHTS (SBX_OA_FD = index among all fds received so far). */
enum sbx_op_kind {
	SBX_OP_TMPFS = 1,    /* dest, mode, size */
	SBX_OP_BIND = 2,     /* host src (or fd), dest, flags */
	SBX_OP_OVERLAY = 3,  /* lower (host path or fd), upper, work (host paths), dest */
	SBX_OP_PROC = 4,     /* dest */
	SBX_OP_DEV = 5,      /* dest: minimal /dev (null zero full random urandom tty, pts, shm) */
	SBX_OP_SYSFS = 6,    /* dest, read-only */
	SBX_OP_DIR = 7,      /* dest, mode (mkdir -p) */
	SBX_OP_SYMLINK = 8,  /* target (src), dest */
	SBX_OP_FILE = 9,     /* dest, mode, data: write a file (after all mounts, before pivot) */
	SBX_OP_MASK = 10,    /* dest: hide a file or directory with an empty read-only one */
	SBX_OP_REMOUNT = 11, /* dest, flags: change flags of an existing mount (ro, nosuid, ...) */
	SBX_OP_CHOWN = 12,   /* dest, uid, gid (inside ids) */
	SBX_OP_SKELETON = 13,/* host src dir, host upper dir, uid, gid, size = depth: mirror src's
			      * directories into upper (before the overlay is mounted), owned by
			      * uid:gid, so that they merge as writable directories of that owner */
};

enum sbx_op_attr {
	SBX_OA_KIND = 1,  /* u32 */
	SBX_OA_SRC = 2,   /* string */
	SBX_OA_DEST = 3,  /* string */
	SBX_OA_FLAGS = 4, /* u32: SBX_OPF_* */
	SBX_OA_MODE = 5,  /* u32 */
	SBX_OA_SIZE = 6,  /* u64 bytes (tmpfs) */
	SBX_OA_UPPER = 7, /* string */
	SBX_OA_WORK = 8,  /* string */
	SBX_OA_DATA = 9,  /* bytes */
	SBX_OA_FD = 10,   /* u32 */
	SBX_OA_UID = 11,  /* u32 */
	SBX_OA_GID = 12,  /* u32 */
};

enum sbx_op_flags {
	SBX_OPF_RO = 1u << 0,
	SBX_OPF_NOSUID = 1u << 1,
	SBX_OPF_NODEV = 1u << 2,
	SBX_OPF_NOEXEC = 1u << 3,
	SBX_OPF_OPTIONAL = 1u << 4, /* skip silently if the source does not exist */
	SBX_OPF_RECURSIVE = 1u << 5,
};

struct sbx_msg_hdr {
	uint32_t magic;
	uint16_t type;
	uint16_t flags;
	uint32_t id;
	uint32_t len;
};

struct sbx_attr_hdr {
	uint16_t type;
	uint16_t reserved;
	uint32_t len;
};

/* ---- building ---- */
/* A message under construction lives in a capped sbx_buf (cap SBX_MSG_MAX). Builders return 0 or
 * -1 (E2BIG when the message would exceed the cap). Nested attributes: begin returns an offset
 * to pass to end. */
int sbx_msg_begin(sbx_buf *b, uint16_t type, uint32_t id);
int sbx_msg_put(sbx_buf *b, uint16_t type, const void *data, uint32_t len);
int sbx_msg_put_str(sbx_buf *b, uint16_t type, const char *s);
int sbx_msg_put_u32(sbx_buf *b, uint16_t type, uint32_t v);
int sbx_msg_put_u64(sbx_buf *b, uint16_t type, uint64_t v);
int sbx_msg_nest_begin(sbx_buf *b, uint16_t type, size_t *off);
int sbx_msg_nest_end(sbx_buf *b, size_t off);
/* Fills in the header length; call before sending. */
int sbx_msg_finish(sbx_buf *b);

/* ---- parsing ---- */
struct sbx_attr {
	uint16_t type;
	uint32_t len;
	const uint8_t *data;
};
struct sbx_attr_iter {
	const uint8_t *p;
	size_t left;
	bool error;
};

/* Validates the header of a received packet of n bytes. Returns 0 and the header, or -1. */
int sbx_msg_parse(const void *pkt, size_t n, struct sbx_msg_hdr *hdr, struct sbx_attr_iter *it);
/* Next attribute, or false at the end or on a malformed one (then it->error is set). */
bool sbx_attr_next(struct sbx_attr_iter *it, struct sbx_attr *a);
/* Iterate the attributes nested inside attribute a. */
void sbx_attr_nested(const struct sbx_attr *a, struct sbx_attr_iter *it);
/* Typed accessors: -1 if the payload has the wrong size or the string lacks its NUL. */
int sbx_attr_u32(const struct sbx_attr *a, uint32_t *v);
int sbx_attr_u64(const struct sbx_attr *a, uint64_t *v);
int sbx_attr_str(const struct sbx_attr *a, const char **s);

/* ---- transport ---- */
/* Send a finished message with optional fds. */
int sbx_msg_send(int sock, const sbx_buf *b, const int *fds, size_t nfds);
/* Receive one packet into buf (which must hold SBX_MSG_MAX bytes). Returns length, 0 at EOF,
 * -1 on error. fds as in sbx_recv_fds. */
long sbx_msg_recv(int sock, void *buf, int *fds, size_t max_fds, size_t *nfds);

#endif
