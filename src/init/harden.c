/* harden.c - capabilities, no_new_privs, Landlock and seccomp for a process about to execve.
 *
 * Linked into the static sbx-init: libc and raw system calls only. Every function either leaves
 * the process in the state harden.h promises or fails with errno set and a message in errbuf
 * (without strerror: callers append it); nothing is silently weaker than asked. */
#include "harden.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "kcompat.h"

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_IS_SET 1
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

const int sbx_root_caps[] = {
	CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_NET_BIND_SERVICE,
};
const size_t sbx_root_caps_len = SBX_ARRAY_LEN(sbx_root_caps);

/* Formats the message, sets errno to e and returns -1. */
static int fail(char *errbuf, size_t errlen, int e, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *errbuf, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;

	if (errbuf && errlen) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	errno = e ? e : EINVAL;
	return -1;
}

/* ---- capabilities ---- */

#define CAP_BIT(c) (1ULL << (c))

struct capsets {
	uint64_t eff, perm, inh;
};

static int caps_get(struct capsets *s)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &hdr, d) < 0)
		return -1;
	s->eff = d[0].effective | (uint64_t)d[1].effective << 32;
	s->perm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	s->inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return 0;
}

static int caps_set(const struct capsets *s)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {
		{(uint32_t)s->eff, (uint32_t)s->perm, (uint32_t)s->inh},
		{(uint32_t)(s->eff >> 32), (uint32_t)(s->perm >> 32), (uint32_t)(s->inh >> 32)},
	};

	return (int)syscall(SYS_capset, &hdr, d);
}

/* The highest capability the running kernel knows: it may know more than our headers. */
static int cap_last(void)
{
	char buf[16];
	cleanup_close int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	int c;

	if (n > 0) {
		char *end;
		long v;

		buf[n] = '\0';
		errno = 0;
		v = strtol(buf, &end, 10);
		if (errno == 0 && end != buf && (*end == '\n' || *end == '\0') && v >= 0 && v < 64)
			return (int)v;
	}
	/* No /proc (or a strange one): ask the kernel capability by capability. */
	for (c = 0; c < 64; c++)
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0)
			break;
	return c - 1;
}

static uint64_t root_caps_mask(void)
{
	uint64_t m = 0;

	for (size_t i = 0; i < sbx_root_caps_len; i++)
		m |= CAP_BIT(sbx_root_caps[i]);
	return m;
}

/* Verifies the end state against what we asked for, so a kernel or LSM that silently ignores a
 * request cannot leave a process more privileged than the caller believes. */
static int caps_verify(const struct capsets *want, uint64_t bset_allowed, int last, char *errbuf, size_t errlen)
{
	struct capsets got;

	if (caps_get(&got) < 0)
		return fail(errbuf, errlen, errno, "capget");
	if (got.eff != want->eff || got.perm != want->perm || got.inh != want->inh)
		return fail(errbuf, errlen, EPERM,
			    "capabilities not as requested: effective %#llx permitted %#llx inheritable %#llx",
			    (unsigned long long)got.eff, (unsigned long long)got.perm, (unsigned long long)got.inh);
	for (int c = 0; c <= last; c++) {
		int r = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
		if (r < 0)
			return fail(errbuf, errlen, errno, "cannot read capability %d of the bounding set", c);
		if (r > 0 && !(bset_allowed & CAP_BIT(c)))
			return fail(errbuf, errlen, EPERM, "capability %d is still in the bounding set", c);
		r = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0);
		if (r > 0)
			return fail(errbuf, errlen, EPERM, "capability %d is still in the ambient set", c);
	}
	return 0;
}

/* The first call for the agent comes before the uid switch and must leave the process able to
 * make it: when it holds CAP_SETPCAP (i.e. it is still the privileged half of the sequence), it
 * keeps CAP_SETUID and CAP_SETGID in the effective and permitted sets. They cannot survive
 * execve (the bounding set is already empty), the kernel clears them at a switch to a non-root
 * uid, and the second call, made without CAP_SETPCAP, clears them in any case. */
int sbx_harden_caps(bool root_caps, char *errbuf, size_t errlen)
{
	const uint64_t keep = root_caps ? root_caps_mask() : 0;
	const int last = cap_last();
	struct capsets cur, want;

	if (last < 0)
		return fail(errbuf, errlen, ENOSYS, "cannot determine the kernel's capabilities");
	if (caps_get(&cur) < 0)
		return fail(errbuf, errlen, errno, "capget");

	for (int c = 0; c <= last; c++) {
		int r;

		if (keep & CAP_BIT(c))
			continue;
		r = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
		if (r < 0)
			return fail(errbuf, errlen, errno, "cannot read capability %d of the bounding set", c);
		if (r > 0 && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			return fail(errbuf, errlen, errno,
				    "cannot drop capability %d from the bounding set%s", c,
				    (cur.eff & CAP_BIT(CAP_SETPCAP)) ? "" : " (CAP_SETPCAP is not held)");
	}
	/* EINVAL: a kernel before 4.3 has no ambient set to clear. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return fail(errbuf, errlen, errno, "cannot clear the ambient capabilities");

	if (root_caps) {
		want.eff = want.perm = want.inh = keep;
	} else {
		uint64_t transit = 0;
		if (cur.eff & CAP_BIT(CAP_SETPCAP))
			transit = cur.perm & (CAP_BIT(CAP_SETUID) | CAP_BIT(CAP_SETGID));
		want.eff = want.perm = transit;
		want.inh = 0;
	}
	if (caps_set(&want) < 0)
		return fail(errbuf, errlen, errno, "cannot set the capability sets to %#llx",
			    (unsigned long long)want.perm);
	return caps_verify(&want, keep, last, errbuf, errlen);
}

int sbx_harden_nnp(char *errbuf, size_t errlen)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(errbuf, errlen, errno, "cannot set no_new_privs");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return fail(errbuf, errlen, EPERM, "no_new_privs did not stick");
	return 0;
}

/* ---- Landlock ---- */

/* Rights that modify the file system, by the ABI that introduced them. Reads and execution are
 * deliberately not handled: what is visible at all is decided by the mount view. */
#define LL_WRITE_ABI1                                                                                   \
	(LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |  \
	 LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |         \
	 LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |      \
	 LANDLOCK_ACCESS_FS_MAKE_SYM)
/* The only rights the kernel accepts on a rule for a non-directory. */
#define LL_FILE_RIGHTS                                                                                  \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |       \
	 LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define LL_DEV_RIGHTS (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_IOCTL_DEV | LANDLOCK_ACCESS_FS_TRUNCATE)

int sbx_landlock_abi(void)
{
	int abi = sbx_landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return abi < 0 ? 0 : abi;
}

static uint64_t ll_write_rights(int abi)
{
	uint64_t r = LL_WRITE_ABI1;

	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return r;
}

/* The size of the ruleset attribute as the running ABI knows it: older kernels refuse a larger
 * struct even when the extra fields are zero. */
static size_t ll_attr_size(int abi)
{
	if (abi >= 6)
		return offsetof(struct sbx_landlock_ruleset_attr, scoped) + sizeof(uint64_t);
	if (abi >= 4)
		return offsetof(struct sbx_landlock_ruleset_attr, handled_access_net) + sizeof(uint64_t);
	return offsetof(struct sbx_landlock_ruleset_attr, handled_access_fs) + sizeof(uint64_t);
}

/* missing_ok: skip a path that does not exist (a rule for it could only allow more). */
static int ll_allow(int ruleset, const char *path, uint64_t rights, bool missing_ok, char *errbuf, size_t errlen)
{
	struct landlock_path_beneath_attr pb = {0};
	cleanup_close int fd = open(path, O_PATH | O_CLOEXEC);
	struct stat st;

	if (fd < 0) {
		if (missing_ok && errno == ENOENT)
			return 0;
		return fail(errbuf, errlen, errno, "Landlock: cannot open %s", path);
	}
	if (fstat(fd, &st) < 0)
		return fail(errbuf, errlen, errno, "Landlock: cannot stat %s", path);
	if (!S_ISDIR(st.st_mode))
		rights &= LL_FILE_RIGHTS;
	if (!rights)
		return 0;
	pb.allowed_access = rights;
	pb.parent_fd = fd;
	if (sbx_landlock_add_rule(ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
		return fail(errbuf, errlen, errno, "Landlock: cannot add a rule for %s", path);
	return 0;
}

int sbx_harden_landlock(const char *const *writable, size_t nwritable, const char *const *dev_paths, size_t ndev,
			int min_abi, int *abi_used, char *errbuf, size_t errlen)
{
	struct sbx_landlock_ruleset_attr attr = {0};
	cleanup_close int ruleset = -1;
	const int abi = sbx_landlock_abi();

	if (abi_used)
		*abi_used = 0;
	if (abi < min_abi) {
		if (abi == 0)
			return fail(errbuf, errlen, EOPNOTSUPP,
				    "Landlock is not available (need ABI %d): enable CONFIG_SECURITY_LANDLOCK and "
				    "add landlock to the lsm= kernel parameter",
				    min_abi);
		return fail(errbuf, errlen, EOPNOTSUPP, "the kernel offers Landlock ABI %d, this sandbox needs %d", abi,
			    min_abi);
	}
	if (abi == 0)
		return 0; /* not available, and the policy does not require it */

	attr.handled_access_fs = ll_write_rights(abi);
	/* No signal / abstract-socket scoping (ABI 6): every process sbx starts gets its own
	 * Landlock domain, so scoping would stop `sbx exec box pkill node` and IPC between the
	 * agent and later execs. What scoping would protect is covered otherwise: the sandbox has
	 * its own network namespace (abstract sockets are per netns) and PID 1 acts on no signal
	 * sent from inside. */
	ruleset = sbx_landlock_create_ruleset(&attr, ll_attr_size(abi), 0);
	if (ruleset < 0)
		return fail(errbuf, errlen, errno, "Landlock: cannot create a ruleset (ABI %d)", abi);

	for (size_t i = 0; i < nwritable; i++)
		if (ll_allow(ruleset, writable[i], attr.handled_access_fs, false, errbuf, errlen) < 0)
			return -1;
	for (size_t i = 0; i < ndev; i++)
		if (ll_allow(ruleset, dev_paths[i], attr.handled_access_fs & LL_DEV_RIGHTS, true, errbuf, errlen) < 0)
			return -1;

	if (sbx_landlock_restrict_self(ruleset, 0) < 0) {
		int e = errno;
		return fail(errbuf, errlen, e, "Landlock: cannot enforce the ruleset%s",
			    prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? "" : " (no_new_privs is not set)");
	}
	if (abi_used)
		*abi_used = abi;
	return 0;
}

/* ---- seccomp ---- */

int sbx_harden_seccomp(const void *insns, size_t len, char *errbuf, size_t errlen)
{
	struct sock_fprog prog;

	if (!insns || len == 0 || len > BPF_MAXINSNS)
		return fail(errbuf, errlen, EINVAL, "seccomp: a filter of %zu instructions cannot be installed", len);
	prog.len = (unsigned short)len;
	prog.filter = (struct sock_filter *)insns;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
		int e = errno;
		return fail(errbuf, errlen, e, "seccomp: cannot install the filter%s",
			    prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? "" : " (no_new_privs is not set)");
	}
	return 0;
}
