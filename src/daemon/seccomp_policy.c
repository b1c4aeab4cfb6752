/* seccomp_policy.c - the sandbox's system-call filter, built with libseccomp on the host.
 *
 * Shape of the filter: allow by default, refuse a fixed list of calls that either reach kernel
 * attack surface a sandbox has no use for (keys, bpf, perf, io_uring, userfaultfd, modules) or
 * would let the agent rebuild its own view of the system (mounts, namespaces, chroot). Refusals
 * return EPERM so that programs see an ordinary permission error; clone3 returns ENOSYS instead,
 * because its flags live in memory where a filter cannot read them and glibc falls back to
 * clone(), whose flags we can filter.
 *
 * Argument rules compare with SCMP_CMP_MASKED_EQ and a 32-bit mask wherever the kernel reads the
 * argument as an int: seccomp sees the full 64-bit register, the kernel only its low half, so an
 * unmasked comparison could be dodged by setting the upper bits.
 *
 * Architectures: only the native one. Calls entering through another ABI (i386 via int 0x80, x32
 * numbers with bit 30 set on x86_64) kill the process. libseccomp 2.5 already emits both checks
 * (an architecture test and, on an x86_64-only filter, a "nr >= 0x40000000" test, both using the
 * bad-architecture action); we prepend our own copy of the two tests anyway, so that this
 * property does not rest on an implementation detail of the library. */
#include "seccomp_policy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "kcompat.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define LOW32 0xffffffffULL
#define X32_SYSCALL_BIT 0x40000000U
#define BPF_MAX_BYTES (4096 * sizeof(struct sock_filter)) /* BPF_MAXINSNS */

/* Refused outright. fallback_nr is used when libseccomp 2.5.4 does not know the name yet; the
 * system calls numbered from 424 on have the same number on every architecture. */
static const struct {
	const char *name;
	int fallback_nr;
} refused[] = {
	/* mounts and the root directory: the mount view is the filesystem boundary */
	{"mount", -1}, {"umount", -1}, {"umount2", -1}, {"pivot_root", -1}, {"chroot", -1},
	{"fsopen", -1}, {"fsconfig", -1}, {"fsmount", -1}, {"fspick", -1}, {"move_mount", -1},
	{"open_tree", -1}, {"open_tree_attr", 467}, {"mount_setattr", -1},
	/* namespaces (clone is filtered by flags below, clone3 gets ENOSYS) */
	{"unshare", -1}, {"setns", -1},
	/* kernel keyrings are not namespaced */
	{"keyctl", -1}, {"add_key", -1}, {"request_key", -1},
	/* large, often-exploited kernel surfaces */
	{"bpf", -1}, {"perf_event_open", -1}, {"userfaultfd", -1},
	{"io_uring_setup", -1}, {"io_uring_enter", -1}, {"io_uring_register", -1},
	/* file handles bypass path-based confinement */
	{"open_by_handle_at", -1}, {"name_to_handle_at", -1},
	/* the kernel itself */
	{"init_module", -1}, {"finit_module", -1}, {"delete_module", -1},
	{"create_module", -1}, {"get_kernel_syms", -1}, {"query_module", -1},
	{"kexec_load", -1}, {"kexec_file_load", -1}, {"reboot", -1},
	{"swapon", -1}, {"swapoff", -1}, {"syslog", -1}, {"acct", -1},
	{"quotactl", -1}, {"quotactl_fd", -1}, {"lookup_dcookie", -1},
	{"iopl", -1}, {"ioperm", -1}, {"uselib", -1}, {"ustat", -1}, {"sysfs", -1}, {"_sysctl", -1},
	{"nfsservctl", -1}, {"vhangup", -1}, {"fanotify_init", -1},
	/* the clock is shared with the host */
	{"settimeofday", -1}, {"clock_settime", -1}, {"clock_adjtime", -1}, {"adjtimex", -1},
	{"stime", -1},
};

static const uint64_t clone_ns_flags[] = {
	CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
	CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWTIME,
};

/* Terminal ioctls that inject input (TIOCSTI), reach the console driver (TIOCLINUX) or change
 * the line discipline (TIOCSETD, a history of kernel bugs). */
static const uint64_t refused_ioctls[] = {TIOCSTI, TIOCLINUX, TIOCSETD};

/* personality() values that stay allowed: PER_LINUX, PER_LINUX32 and the 0xffffffff query.
 * Everything else (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, MMAP_PAGE_ZERO, ...) weakens the
 * process's own exploit mitigations. */
static const uint32_t personality_allowed[] = {0x0, 0x8, 0xffffffff};

static const char summary[] =
	"The sandbox's system-call filter (native architecture only; calls through another ABI,\n"
	"such as i386 int 0x80 or x32 on x86_64, kill the process). Everything else is allowed;\n"
	"these are refused with EPERM:\n"
	"  mounts:       mount, umount, umount2, pivot_root, chroot, fsopen, fsconfig, fsmount, fspick,\n"
	"                move_mount, open_tree, open_tree_attr, mount_setattr\n"
	"  namespaces:   unshare, setns, clone with any CLONE_NEW* flag (clone3: ENOSYS, so that\n"
	"                libc falls back to clone)\n"
	"  keyrings:     keyctl, add_key, request_key\n"
	"  kernel:       bpf, perf_event_open, userfaultfd, io_uring_setup/enter/register,\n"
	"                open_by_handle_at, name_to_handle_at, init/finit/delete_module, kexec_load,\n"
	"                kexec_file_load, reboot, swapon, swapoff, syslog, acct, quotactl,\n"
	"                quotactl_fd, lookup_dcookie, iopl, ioperm, uselib, ustat, sysfs, _sysctl,\n"
	"                nfsservctl, vhangup, fanotify_init\n"
	"  clock:        settimeofday, stime, clock_settime, clock_adjtime, adjtimex\n"
	"  personality:  any persona other than 0 (PER_LINUX), 8 (PER_LINUX32) and 0xffffffff (query)\n"
	"  sockets:      AF_PACKET; SOCK_RAW (except netlink's) and SOCK_PACKET of any family; ICMP\n"
	"                ping sockets (AF_INET/AF_INET6, SOCK_DGRAM, IPPROTO_ICMP/ICMPV6); AF_NETLINK\n"
	"                other than NETLINK_ROUTE\n"
	"  ioctl:        TIOCSTI, TIOCLINUX, TIOCSETD on any file descriptor\n"
	"ptrace stays allowed: the sandbox's PID 1 is not dumpable, and tracing one's own processes\n"
	"is what debuggers need.\n";

const char *sbx_seccomp_summary(void)
{
	return summary;
}

/* Returns the native number, -2 for "does not exist on this architecture", -1 on failure. */
static int resolve(const char *name, int fallback_nr, sbx_err *err)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR) {
		if (fallback_nr >= 0)
			return fallback_nr;
		sbx_err_set(err, SBX_E_UNSUPPORTED,
			    "seccomp: libseccomp %u.%u.%u does not know the system call %s: upgrade libseccomp",
			    seccomp_version()->major, seccomp_version()->minor, seccomp_version()->micro, name);
		return -1;
	}
	return nr < 0 ? -2 : nr;
}

static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, int nr, unsigned n,
		    const struct scmp_arg_cmp *cmp, sbx_err *err)
{
	int rc = seccomp_rule_add_array(ctx, action, nr, n, cmp);

	if (rc < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, -rc, "seccomp: cannot add the rule for %s", name);
	return 0;
}

/* Refuse `nr` whenever the low 32 bits of argument `arg` are not one of allowed[]. libseccomp
 * cannot put two comparisons of the same argument in one rule, so the complement of the allowed
 * set is written as a union of bit patterns ("these bits fixed, the rest anything"): walk the
 * values from the most significant bit down and emit a pattern for every branch that contains
 * no allowed value. For n allowed values that is at most 32 * n rules. */
static int refuse_unless_in(scmp_filter_ctx ctx, const char *name, int nr, unsigned arg, const uint32_t *allowed,
			    size_t n, int bit, uint32_t prefix, sbx_err *err)
{
	uint32_t mask = bit >= 31 ? 0 : ~((1U << (bit + 1)) - 1); /* bits above `bit` are fixed */
	bool any = false;

	for (size_t i = 0; i < n; i++)
		if ((allowed[i] & mask) == prefix)
			any = true;
	if (!any) {
		struct scmp_arg_cmp cmp = {arg, SCMP_CMP_MASKED_EQ, mask, prefix};
		return add_rule(ctx, SCMP_ACT_ERRNO(EPERM), name, nr, 1, &cmp, err);
	}
	if (bit < 0)
		return 0; /* exactly an allowed value */
	if (refuse_unless_in(ctx, name, nr, arg, allowed, n, bit - 1, prefix, err) < 0)
		return -1;
	return refuse_unless_in(ctx, name, nr, arg, allowed, n, bit - 1, prefix | (1U << bit), err);
}

static int add_clone_rules(scmp_filter_ctx ctx, sbx_err *err)
{
	int nr = resolve("clone", -1, err);
	/* s390 swaps clone's first two arguments. */
#if defined(__s390__) || defined(__s390x__)
	const unsigned flags_arg = 1;
#else
	const unsigned flags_arg = 0;
#endif

	if (nr < 0)
		return -1;
	/* One rule per flag: "flags & CLONE_NEW* != 0" is not a single libseccomp comparison. */
	for (size_t i = 0; i < SBX_ARRAY_LEN(clone_ns_flags); i++) {
		struct scmp_arg_cmp cmp = {flags_arg, SCMP_CMP_MASKED_EQ, clone_ns_flags[i], clone_ns_flags[i]};
		if (add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "clone", nr, 1, &cmp, err) < 0)
			return -1;
	}
	nr = resolve("clone3", 435, err);
	if (nr == -1)
		return -1;
	if (nr >= 0 && add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", nr, 0, NULL, err) < 0)
		return -1;
	return 0;
}

static int add_socket_rules(scmp_filter_ctx ctx, sbx_err *err)
{
	const struct {
		unsigned n;
		struct scmp_arg_cmp cmp[3];
	} rules[] = {
		/* link-layer access: sniffing and forging frames on the sandbox's interfaces */
		{1, {SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, AF_PACKET)}},
		/* raw and obsolete packet sockets of any family (the type's low 4 bits; the rest are
		 * SOCK_NONBLOCK/SOCK_CLOEXEC). Netlink is the exception: there SOCK_RAW is just the
		 * usual type (getifaddrs and ip(8) use it), and its protocols are filtered below. */
		{2, {SCMP_A0(SCMP_CMP_NE, AF_NETLINK, 0), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW)}},
		{1, {SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_PACKET)}},
		/* ICMP "ping" sockets: ICMP never goes through the proxy */
		{3,
		 {SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, AF_INET), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_DGRAM),
		  SCMP_A2(SCMP_CMP_MASKED_EQ, LOW32, IPPROTO_ICMP)}},
		{3,
		 {SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, AF_INET6), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_DGRAM),
		  SCMP_A2(SCMP_CMP_MASKED_EQ, LOW32, IPPROTO_ICMPV6)}},
		/* netlink families other than NETLINK_ROUTE (which ip(8) and getifaddrs need) reach
		 * audit, netfilter, uevents, ... A 64-bit comparison refuses more than needed only
		 * when the caller sets garbage upper bits, which is the safe direction. */
		{2, {SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, AF_NETLINK), SCMP_A2(SCMP_CMP_NE, NETLINK_ROUTE, 0)}},
	};
	int nr = resolve("socket", -1, err);

	if (nr < 0)
		return -1;
	for (size_t i = 0; i < SBX_ARRAY_LEN(rules); i++)
		if (add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "socket", nr, rules[i].n, rules[i].cmp, err) < 0)
			return -1;
	return 0;
}

static int add_arg_rules(scmp_filter_ctx ctx, sbx_err *err)
{
	int nr;

	if (add_clone_rules(ctx, err) < 0 || add_socket_rules(ctx, err) < 0)
		return -1;

	/* ioctl's request is an unsigned int: compare the low half only. */
	if ((nr = resolve("ioctl", -1, err)) < 0)
		return -1;
	for (size_t i = 0; i < SBX_ARRAY_LEN(refused_ioctls); i++) {
		struct scmp_arg_cmp cmp = SCMP_A1(SCMP_CMP_MASKED_EQ, LOW32, refused_ioctls[i]);
		if (add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "ioctl", nr, 1, &cmp, err) < 0)
			return -1;
	}

	if ((nr = resolve("personality", -1, err)) < 0)
		return -1;
	return refuse_unless_in(ctx, "personality", nr, 0, personality_allowed, SBX_ARRAY_LEN(personality_allowed),
				31, 0, err);
}

static int build_ctx(scmp_filter_ctx ctx, sbx_err *err)
{
	int rc;

	rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (rc < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, -rc, "seccomp: cannot set the bad-architecture action");
	/* Every system call of every sandboxed process runs the filter: a binary search over the
	 * syscall numbers instead of libseccomp's default linear chain. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (rc < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, -rc, "seccomp: cannot enable the binary-tree layout");
	for (size_t i = 0; i < SBX_ARRAY_LEN(refused); i++) {
		int nr = resolve(refused[i].name, refused[i].fallback_nr, err);
		if (nr == -1)
			return -1;
		if (nr == -2)
			continue; /* not a system call on this architecture */
		if (add_rule(ctx, SCMP_ACT_ERRNO(EPERM), refused[i].name, nr, 0, NULL, err) < 0)
			return -1;
	}
	return add_arg_rules(ctx, err);
}

/* Our own copy of the ABI checks, placed in front of libseccomp's program (whose jumps are all
 * relative and forward, so prepending keeps it valid). -1 is let through, like libseccomp does:
 * it is what a tracer writes to skip a call, and it only ever returns ENOSYS. */
#if defined(__x86_64__)
static const struct sock_filter abi_guard[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 2),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffU, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
};
#define ABI_GUARD_LEN SBX_ARRAY_LEN(abi_guard)
#else
static const struct sock_filter abi_guard[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0)}; /* unused */
#define ABI_GUARD_LEN 0
#endif

/* libseccomp 2.5 can only export to a file descriptor: go through a memfd. */
static int export_bpf(scmp_filter_ctx ctx, struct sbx_bpf *out, sbx_err *err)
{
	cleanup_close int fd = memfd_create("sbx-seccomp", MFD_CLOEXEC);
	const size_t guard = ABI_GUARD_LEN;
	cleanup_free unsigned char *buf = NULL;
	off_t size;
	ssize_t n;
	int rc;

	if (fd < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "seccomp: memfd_create");
	rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, -rc, "seccomp: exporting the filter");
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || (size_t)size % sizeof(struct sock_filter) != 0 ||
	    (size_t)size + guard * sizeof(struct sock_filter) > BPF_MAX_BYTES)
		return sbx_err_set(err, SBX_E_INTERNAL, "seccomp: libseccomp exported a program of %lld bytes",
				   (long long)size);
	buf = malloc(guard * sizeof(struct sock_filter) + (size_t)size);
	if (!buf)
		return sbx_err_sys(err, SBX_E_INTERNAL, ENOMEM, "seccomp");
	if (guard)
		memcpy(buf, abi_guard, guard * sizeof(struct sock_filter));
	n = pread(fd, buf + guard * sizeof(struct sock_filter), (size_t)size, 0);
	if (n != (ssize_t)size)
		return sbx_err_sys(err, SBX_E_INTERNAL, n < 0 ? errno : EIO, "seccomp: reading the exported filter");
	out->insns = take_ptr(buf);
	out->len = guard + (size_t)size / sizeof(struct sock_filter);
	return 0;
}

int sbx_seccomp_build(struct sbx_bpf *out, sbx_err *err)
{
	scmp_filter_ctx ctx;
	int rc;

	out->insns = NULL;
	out->len = 0;
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return sbx_err_set(err, SBX_E_INTERNAL, "seccomp: cannot initialise libseccomp");
	rc = build_ctx(ctx, err);
	if (rc == 0)
		rc = export_bpf(ctx, out, err);
	seccomp_release(ctx);
	return rc;
}

void sbx_bpf_free(struct sbx_bpf *b)
{
	if (!b)
		return;
	free_and_null(b->insns);
	b->len = 0;
}
