/* probe.c - the escape probe: a static program that runs inside a sandbox and tries to get out.
 *
 * One line per attempt:
 *     ok <check> <detail>        the attempt was blocked, as it must be
 *     ESCAPE <check> <detail>    the attempt worked: the sandbox leaks
 *     fail <check> <detail>      something that must work did not (--writable, --expect-uid)
 *     skip <check> <reason>      the check could not run (an option was not given)
 * or, with --json, one JSON array of {"check", "result", "detail"} objects. Exit status: 0 when
 * nothing escaped or failed, 1 otherwise, 2 on a usage error.
 *
 * How a check decides. A system call that fails is "blocked"; one that succeeds is an escape.
 * For calls that cannot be made to succeed harmlessly (loading a module, pivot_root, umount of
 * /proc, kexec) the probe passes arguments that the kernel rejects only after its permission
 * check: EPERM/EACCES/ENOSYS mean blocked, any other error means the call got past the
 * permission check, which is reported as an escape. Network checks count only what proves that
 * the other end was reached (a banner, a TLS answer, a UDP or ICMP reply), because the sandbox has
 * its own loopback and a transparent proxy may accept a connection only to refuse it. DNS is
 * judged by who must have answered: the sandbox's resolver gives allowed names an address from
 * 198.18.0.0/15 and denied names none, so a real address, an address for a denied name, an
 * allowed name without such an address, or an answer for a name under a denied domain (a DNS
 * tunnel) proves that a query got past it (see "DNS" below).
 *
 * Isolation of the checks. Every check runs in its own child process and process group, so that
 * what a successful attempt changes (a new namespace, a chroot, a personality) cannot affect the
 * next check, and so that a check that hangs can be killed: the parent gives each one a deadline
 * (3 s unless the table says otherwise), then kills the whole group. The parent is a child
 * subreaper and kills whatever a check left behind. Files the checks create in the current
 * directory start with ".sbx-probe-<pid>-" and are removed at the end in any case. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/if_ether.h>
#include <linux/io_uring.h>
#include <linux/kexec.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "kcompat.h"
#include "util.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef KEYCTL_GET_KEYRING_ID
#define KEYCTL_GET_KEYRING_ID 0
#endif
#define KEY_SPEC_PROCESS_KEYRING (-2)

#define DEFAULT_TIMEOUT_S 3
#define MAX_ARGS 64          /* per repeatable option */
#define DETAIL_MAX 900       /* one result line stays well below PIPE_BUF */
#define CONNECT_TIMEOUT_MS 2000
#define ANSWER_TIMEOUT_MS 1500
#define UDP_ECHO_TIMEOUT_MS 300

/* ---- options ---- */

struct strv {
	const char *v[MAX_ARGS];
	size_t n;
};

static struct {
	struct strv secret, tcp, tcp6, udp, dns, dns_allowed, dns_denied, dns_tunnel, abstract, ro, writable,
		no_write, symlink;
	const char *tcp_banner;
	const char *host_marker;
	int64_t host_pid;   /* 0: not given */
	int64_t pids;       /* 0: not given */
	uint64_t memory;    /* 0: not given */
	int64_t expect_uid; /* -1: not given */
	bool allow_root_caps;
	bool json;
} opt = {.tcp_banner = "SBX-HOST-SERVICE", .expect_uid = -1};

static pid_t main_pid;
static char tmp_prefix[64]; /* ".sbx-probe-<pid>-" */

/* ---- results ---- */

enum verdict { V_OK, V_ESCAPE, V_FAIL, V_SKIP };
static const char *const verdict_name[] = {"ok", "ESCAPE", "fail", "skip"};

/* In a check's child: where results go, and the name they are filed under. */
static int result_fd = -1;
static const char *cur_name = "";
static const char *cur_arg;

static void put_result(enum verdict v, const char *check, const char *detail);

/* Reports one result. The check is named "<name>[-<sub>][:<arg>]": `sub` tells apart several
 * attempts of one check ("setns-net"), `arg` the object it was run on ("dev-open:/dev/mem").
 * NULL for either means the current check's own. */
static void vreport(enum verdict v, const char *sub, const char *arg, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
static void vreport(enum verdict v, const char *sub, const char *arg, const char *fmt, va_list ap)
{
	char check[320], detail[DETAIL_MAX];

	if (!arg)
		arg = cur_arg;
	snprintf(check, sizeof(check), "%s%s%s%s%s", cur_name, sub ? "-" : "", sub ? sub : "", arg ? ":" : "",
		 arg ? arg : "");
	vsnprintf(detail, sizeof(detail), fmt, ap);
	put_result(v, check, detail);
}

static void report(enum verdict v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(enum verdict v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(v, NULL, NULL, fmt, ap);
	va_end(ap);
}

static void report_as(enum verdict v, const char *sub, const char *arg, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void report_as(enum verdict v, const char *sub, const char *arg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(v, sub, arg, fmt, ap);
	va_end(ap);
}

static const char *ename(int e)
{
	const char *n = e == ETIMEDOUT ? "timeout" : strerrorname_np(e);
	return n ? n : "unknown error";
}

/* Blocked means refused by a permission check: seccomp (EPERM, ENOSYS for clone3), missing
 * capabilities or LSMs (EPERM, EACCES). */
static bool is_permission_error(int e)
{
	return e == EPERM || e == EACCES || e == ENOSYS;
}

/* For calls whose success is the escape: any failure is ok. */
static void verdict_call(long ret, int e, const char *sub, const char *what)
{
	if (ret < 0)
		report_as(V_OK, sub, NULL, "%s: blocked (%s)", what, ename(e));
	else
		report_as(V_ESCAPE, sub, NULL, "%s succeeded", what);
}

/* For calls made with arguments that fail after the permission check: only a permission error
 * is ok, anything else proves that the caller held the privilege. */
static void verdict_privileged(long ret, int e, const char *sub, const char *what)
{
	if (ret < 0 && is_permission_error(e))
		report_as(V_OK, sub, NULL, "%s: blocked (%s)", what, ename(e));
	else if (ret < 0)
		report_as(V_ESCAPE, sub, NULL, "%s: got past the permission check (%s)", what, ename(e));
	else
		report_as(V_ESCAPE, sub, NULL, "%s succeeded", what);
}

/* ---- small helpers ---- */

/* A name for a scratch file in the current directory, removed at the end whatever happens. */
static void tmp_name(char *out, size_t outlen, const char *tag)
{
	snprintf(out, outlen, "%s%s", tmp_prefix, tag);
}

static int read_small(const char *path, char *buf, size_t len)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

/* Can the file be opened and read? 0 = yes, else errno. */
static int try_read(const char *path)
{
	char c;
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0)
		return errno;
	if (read(fd, &c, 1) < 0 && errno != EAGAIN)
		return errno;
	return 0;
}

/* How much of the file can be read (up to 64 bytes): >= 0, or -errno. An empty file in place of
 * a host secret is how the sandbox masks it, and holds nothing. */
static ssize_t read_some(const char *path)
{
	char buf[64];
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	return n < 0 ? (errno == EAGAIN ? 0 : -errno) : n;
}

static bool path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* The value of a "Name:\t..." line of /proc/self/status, or NULL. */
static const char *status_field(const char *status, const char *name, char *out, size_t outlen)
{
	size_t len = strlen(name);

	for (const char *p = status; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, name, len) == 0 && p[len] == ':') {
			p += len + 1;
			p += strspn(p, " \t");
			sbx_strlcpy(out, p, outlen);
			out[strcspn(out, "\n")] = '\0';
			return out;
		}
	}
	return NULL;
}

/* Appends to the string of length len in buf (size bytes), truncating; returns the new length
 * (at most size - 1), so calls can be chained without overflow checks. */
static size_t appendf(char *buf, size_t size, size_t len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static size_t appendf(char *buf, size_t size, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (len >= size)
		return size ? size - 1 : 0;
	va_start(ap, fmt);
	n = vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return len;
	return len + (size_t)n >= size ? size - 1 : len + (size_t)n;
}

/* Milliseconds until a CLOCK_MONOTONIC deadline, 0 once it has passed. */
static int ms_left(uint64_t deadline)
{
	uint64_t now = sbx_monotonic_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

/* Reaps pid if it exits within timeout_ms: 0 with *si filled, or -1 (still running). */
static int wait_exit(pid_t pid, int timeout_ms, siginfo_t *si)
{
	cleanup_close int pidfd = sbx_pidfd_open(pid, 0);
	uint64_t deadline = sbx_monotonic_ms() + (uint64_t)timeout_ms;

	for (;;) {
		memset(si, 0, sizeof(*si));
		if (waitid(P_PID, (id_t)pid, si, WEXITED | WNOHANG) < 0 && errno != EINTR)
			return -1;
		if (si->si_pid == pid)
			return 0;
		if (ms_left(deadline) == 0)
			return -1;
		if (pidfd >= 0) {
			struct pollfd p = {.fd = pidfd, .events = POLLIN};
			poll(&p, 1, ms_left(deadline));
		} else {
			usleep(10000); /* no pidfd (before Linux 5.3): poll the old way */
		}
	}
}

/* ---- networking helpers ---- */

/* Waits for `events` on fd; 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	uint64_t deadline = sbx_monotonic_ms() + (uint64_t)timeout_ms;

	for (;;) {
		int r = poll(&p, 1, ms_left(deadline));
		if (r >= 0 || errno != EINTR)
			return r;
	}
}

/* A connected stream socket, or -1 with *err (ETIMEDOUT on timeout). */
static int connect_timeout(const struct sockaddr *sa, socklen_t len, int type, int timeout_ms, int *err)
{
	cleanup_close int fd = socket(sa->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	socklen_t el = sizeof(*err);

	if (fd < 0) {
		*err = errno;
		return -1;
	}
	if (connect(fd, sa, len) == 0)
		return take_fd(fd);
	if (errno != EINPROGRESS && errno != EAGAIN) {
		*err = errno;
		return -1;
	}
	if (wait_fd(fd, POLLOUT, timeout_ms) <= 0) {
		*err = ETIMEDOUT;
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &el) < 0)
		*err = errno;
	if (*err)
		return -1;
	return take_fd(fd);
}

/* Reads what arrives within timeout_ms (until len bytes or EOF). Returns the byte count, or -1
 * with errno when nothing arrived. */
static ssize_t recv_timeout(int fd, void *buf, size_t len, int timeout_ms)
{
	uint64_t deadline = sbx_monotonic_ms() + (uint64_t)timeout_ms;
	size_t have = 0;

	while (have < len) {
		ssize_t n;
		int r = wait_fd(fd, POLLIN, ms_left(deadline));

		if (r < 0)
			return have ? (ssize_t)have : -1;
		if (r == 0) {
			if (!have)
				errno = ETIMEDOUT;
			return have ? (ssize_t)have : -1;
		}
		n = recv(fd, (char *)buf + have, len - have, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return have ? (ssize_t)have : -1;
		if (n == 0)
			break;
		have += (size_t)n;
	}
	return (ssize_t)have;
}

/* "1.2.3.4:80", "[::1]:80" or "localhost:80" (numeric only: the probe is static and has no
 * resolver). Returns the address length, 0 on a malformed value. */
static socklen_t parse_hostport(const char *s, int default_port, struct sockaddr_storage *ss)
{
	char host[128];
	const char *port = NULL;
	int64_t p = default_port;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || (size_t)(end - s - 1) >= sizeof(host))
			return 0;
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
		if (end[1] == ':')
			port = end + 2;
		else if (end[1])
			return 0;
	} else {
		const char *colon = strrchr(s, ':');
		size_t hl;

		if (colon && strchr(s, ':') != colon)
			colon = NULL; /* a bare IPv6 address: no port */
		hl = colon ? (size_t)(colon - s) : strlen(s);
		if (hl >= sizeof(host))
			return 0;
		memcpy(host, s, hl);
		host[hl] = '\0';
		port = colon ? colon + 1 : NULL;
	}
	if (port && sbx_parse_i64(port, 1, 65535, &p) < 0)
		return 0;
	if (p <= 0)
		return 0;
	if (strcmp(host, "localhost") == 0)
		sbx_strlcpy(host, "127.0.0.1", sizeof(host));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		return sizeof(*sin);
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		return sizeof(*sin6);
	}
	return 0;
}

/* ---- credentials and process state ---- */

static const char *const cap_names[] = {
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
	"linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner",
	"sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
	"sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write", "audit_control", "setfcap",
	"mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf",
	"checkpoint_restore",
};

/* What root inside a sandbox may keep with --allow-root-caps (sbx_root_caps in harden.h). */
static const uint64_t root_caps_mask = (1ULL << CAP_CHOWN) | (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_FOWNER) |
				       (1ULL << CAP_FSETID) | (1ULL << CAP_KILL) | (1ULL << CAP_SETGID) |
				       (1ULL << CAP_SETUID) | (1ULL << CAP_NET_BIND_SERVICE);

static void check_caps(void)
{
	static const char *const sets[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
	const uint64_t allowed = opt.allow_root_caps ? root_caps_mask : 0;
	char status[16384], v[64];

	if (read_small("/proc/self/status", status, sizeof(status)) < 0) {
		report(V_ESCAPE, "cannot read /proc/self/status (%s): capabilities unverifiable", ename(errno));
		return;
	}
	for (size_t i = 0; i < SBX_ARRAY_LEN(sets); i++) {
		char names[512] = "";
		size_t len = 0;
		uint64_t val, extra;

		if (!status_field(status, sets[i], v, sizeof(v))) {
			report_as(V_ESCAPE, sets[i], NULL, "no %s line in /proc/self/status", sets[i]);
			continue;
		}
		val = strtoull(v, NULL, 16);
		extra = val & ~allowed;
		for (unsigned c = 0; c < 64 && len < sizeof(names); c++) {
			char one[24];

			if (!(extra & (1ULL << c)))
				continue;
			if (c < SBX_ARRAY_LEN(cap_names))
				sbx_strlcpy(one, cap_names[c], sizeof(one));
			else
				snprintf(one, sizeof(one), "cap%u", c);
			len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", len ? "," : "", one);
		}
		if (extra)
			report_as(V_ESCAPE, sets[i], NULL, "%s=%s holds %s", sets[i], v, names);
		else
			report_as(V_OK, sets[i], NULL, "%s=%s%s", sets[i], v,
				  val ? " (only the root set allowed by --allow-root-caps)" : "");
	}
}

static void check_status_value(const char *field, const char *want)
{
	char status[16384], v[64];

	if (read_small("/proc/self/status", status, sizeof(status)) < 0 ||
	    !status_field(status, field, v, sizeof(v))) {
		report(V_ESCAPE, "cannot read %s from /proc/self/status", field);
		return;
	}
	report(strcmp(v, want) == 0 ? V_OK : V_ESCAPE, "%s is %s (must be %s)", field, v, want);
}

static void check_nnp(void)
{
	check_status_value("NoNewPrivs", "1");
}

static void check_seccomp_mode(void)
{
	check_status_value("Seccomp", "2");
}

static void check_uid(void)
{
	uid_t r, e, s;

	if (opt.expect_uid < 0) {
		report(V_SKIP, "no --expect-uid given");
		return;
	}
	getresuid(&r, &e, &s);
	if (r == (uid_t)opt.expect_uid && e == r && s == r)
		report(V_OK, "uid %u as expected", (unsigned)r);
	else
		report(r == 0 || e == 0 || s == 0 ? V_ESCAPE : V_FAIL, "uids %u/%u/%u, expected %lld", (unsigned)r,
		       (unsigned)e, (unsigned)s, (long long)opt.expect_uid);
}

/* ---- mounts, root, namespaces ---- */

static void check_mount_tmpfs(void)
{
	static const char last_resort[] = "/tmp";
	char dir[128], tmpdir[160];
	const char *target = dir;
	int r, e;

	/* A mount point of our own: in the current directory, else in /tmp, else /tmp itself. */
	tmp_name(dir, sizeof(dir), "mnt");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/%s", dir);
	if (mkdir(dir, 0700) < 0)
		target = mkdir(tmpdir, 0700) == 0 ? tmpdir : last_resort;
	r = mount("sbx-probe", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16k");
	e = errno;
	if (r == 0)
		umount2(target, MNT_DETACH);
	if (target != last_resort)
		rmdir(target);
	verdict_call(r, e, NULL, "mount(tmpfs)");
}

static void check_umount_proc(void)
{
	/* MNT_EXPIRE with MNT_DETACH is refused with EINVAL, but only after the kernel has checked
	 * for CAP_SYS_ADMIN over the mount namespace: EINVAL proves the unmount would be allowed,
	 * without unmounting anything. */
	long r = umount2("/proc", MNT_EXPIRE | MNT_DETACH);
	verdict_privileged(r, errno, NULL, "umount2(/proc) (probed without effect)");
}

static void check_pivot_root(void)
{
	/* The permission check comes before the path lookup: ENOENT proves it passed. */
	long r = syscall(SYS_pivot_root, "/nonexistent-sbx-probe", "/nonexistent-sbx-probe");
	verdict_privileged(r, errno, NULL, "pivot_root (probed without effect)");
}

static void check_chroot(void)
{
	long r = chroot(".");
	verdict_call(r, errno, NULL, "chroot(.)");
}

static void check_unshare_user(void)
{
	long r = unshare(CLONE_NEWUSER);
	verdict_call(r, errno, NULL, "unshare(CLONE_NEWUSER)");
}

static void check_unshare_mnt_net(void)
{
	long r = unshare(CLONE_NEWNS | CLONE_NEWNET);
	verdict_call(r, errno, NULL, "unshare(CLONE_NEWNS|CLONE_NEWNET)");
}

static void check_setns(void)
{
	static const char *const ns[] = {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"};

	for (size_t i = 0; i < SBX_ARRAY_LEN(ns); i++) {
		char path[64];
		cleanup_close int fd = -1;
		long r;

		snprintf(path, sizeof(path), "/proc/1/ns/%s", ns[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			report_as(V_OK, ns[i], NULL, "cannot open %s (%s)", path, ename(errno));
			continue;
		}
		r = setns(fd, 0);
		if (r < 0)
			report_as(V_OK, ns[i], NULL, "setns(%s): blocked (%s)", path, ename(errno));
		else
			report_as(V_ESCAPE, ns[i], NULL, "setns(%s) succeeded", path);
	}
}

static void check_clone_newuser(void)
{
	long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, NULL, NULL, 0);
	int e = errno;

	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	verdict_call(r, e, NULL, "clone(CLONE_NEWUSER)");
}

static void check_ptrace(void)
{
	/* PTRACE_SEIZE runs the same permission checks as PTRACE_ATTACH but does not stop PID 1;
	 * the tracee is detached when this check's process exits. */
	long r = ptrace(PTRACE_SEIZE, 1, NULL, NULL);
	verdict_call(r, errno, NULL, "ptrace(PTRACE_SEIZE, 1)");
}

/* PID 1 is the sandbox's supervisor: nothing inside may stop it. The agent is refused by plain
 * permission checks; root inside may send signals, which PID 1 of a PID namespace does not act
 * on (the kernel drops SIGKILL/SIGSTOP from inside; sbx-init blocks the rest). So: try to kill
 * it for real, then check that it is still there. */
static void check_signal_pid1(void)
{
	if (kill(1, 0) < 0) {
		verdict_call(-1, errno, NULL, "kill(1, 0)");
		return;
	}
	kill(1, SIGTERM);
	kill(1, SIGSTOP);
	kill(1, SIGKILL);
	usleep(200 * 1000);
	char state = '?';
	FILE *f = fopen("/proc/1/stat", "re");
	if (f) {
		if (fscanf(f, "%*d %*s %c", &state) != 1)
			state = '?';
		fclose(f);
	}
	if (kill(1, 0) == 0 && state != 'T' && state != 'Z' && state != '?')
		report(V_OK, "PID 1 ignored SIGTERM, SIGSTOP and SIGKILL sent from inside");
	else
		report(V_ESCAPE, "PID 1 was stopped or killed from inside (state %c)", state);
}

static void check_proc1_environ(void)
{
	int e = try_read("/proc/1/environ");
	verdict_call(e ? -1 : 0, e, NULL, "reading /proc/1/environ");
}

static void check_proc1_mem(void)
{
	cleanup_close int fd = open("/proc/1/mem", O_RDONLY | O_CLOEXEC);
	verdict_call(fd, errno, NULL, "opening /proc/1/mem");
}

static void check_personality(void)
{
	long r = personality(READ_IMPLIES_EXEC);
	int e = errno;
	int now = personality(0xffffffff);

	if (r != -1 && now != -1 && !(now & READ_IMPLIES_EXEC))
		report(V_OK, "personality(READ_IMPLIES_EXEC) returned but did not take effect");
	else
		verdict_call(r == -1 ? -1 : 0, e, NULL, "personality(READ_IMPLIES_EXEC)");
}

/* ---- kernel interfaces ---- */

static void check_init_module(void)
{
	long r = syscall(SYS_init_module, NULL, 0UL, "");
	verdict_privileged(r, errno, NULL, "init_module (empty image)");
}

static void check_finit_module(void)
{
	long r = syscall(SYS_finit_module, -1, "", 0);
	verdict_privileged(r, errno, NULL, "finit_module (bad fd)");
}

static void check_delete_module(void)
{
	long r = syscall(SYS_delete_module, "sbx_probe_no_such_module", O_NONBLOCK);
	verdict_privileged(r, errno, NULL, "delete_module (no such module)");
}

static void check_kexec_load(void)
{
	/* Too many segments: refused after the permission check, never unloads anything. */
	long r = syscall(SYS_kexec_load, 0UL, 1000UL, NULL, 0UL);
	verdict_privileged(r, errno, NULL, "kexec_load (invalid segment count)");
}

static void check_kexec_file_load(void)
{
	long r = syscall(SYS_kexec_file_load, -1, -1, 0UL, "", 0x80000000UL);
	verdict_privileged(r, errno, NULL, "kexec_file_load (invalid flags)");
}

static void check_bpf_map(void)
{
	union bpf_attr a;
	long fd;

	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = 4;
	a.max_entries = 1;
	fd = syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a));
	verdict_call(fd, errno, NULL, "bpf(BPF_MAP_CREATE)");
	if (fd >= 0)
		close((int)fd);
}

static void check_bpf_prog(void)
{
	struct bpf_insn insns[2];
	union bpf_attr a;
	long fd;

	memset(insns, 0, sizeof(insns));
	insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K; /* r0 = 0 */
	insns[1].code = BPF_JMP | BPF_EXIT;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	a.insns = (uint64_t)(uintptr_t)insns;
	a.insn_cnt = 2;
	a.license = (uint64_t)(uintptr_t) "GPL";
	fd = syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	verdict_call(fd, errno, NULL, "bpf(BPF_PROG_LOAD)");
	if (fd >= 0)
		close((int)fd);
}

static void check_perf_event_open(void)
{
	struct perf_event_attr pa;
	long fd;

	memset(&pa, 0, sizeof(pa));
	pa.type = PERF_TYPE_SOFTWARE;
	pa.size = sizeof(pa);
	pa.config = PERF_COUNT_SW_CPU_CLOCK;
	pa.disabled = 1;
	pa.exclude_kernel = 1;
	pa.exclude_hv = 1;
	fd = syscall(SYS_perf_event_open, &pa, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	verdict_call(fd, errno, NULL, "perf_event_open (own process, user space only)");
	if (fd >= 0)
		close((int)fd);
}

static void check_keyctl(void)
{
	/* A process keyring: it dies with this check's process. */
	long r = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1);
	verdict_call(r, errno, NULL, "keyctl(KEYCTL_GET_KEYRING_ID)");
}

static void check_add_key(void)
{
	long r = syscall(SYS_add_key, "user", "sbx-probe", "x", 1UL, KEY_SPEC_PROCESS_KEYRING);
	verdict_call(r, errno, NULL, "add_key(user)");
}

static void check_userfaultfd(void)
{
	/* User-mode-only handlers are what unprivileged users get even when
	 * vm.unprivileged_userfaultfd is 0. */
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);

	if (fd < 0 && errno == EINVAL)
		fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	verdict_call(fd, errno, NULL, "userfaultfd");
	if (fd >= 0)
		close((int)fd);
}

static void check_open_by_handle(void)
{
	struct {
		struct file_handle fh;
		unsigned char buf[MAX_HANDLE_SZ];
	} h;
	cleanup_close int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	const char *how = "a handle from name_to_handle_at";
	char what[80];
	int mount_id, e;
	long fd;

	memset(&h, 0, sizeof(h));
	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(AT_FDCWD, "/", &h.fh, &mount_id, 0) < 0) {
		report_as(V_OK, "name", NULL, "name_to_handle_at(/): blocked (%s)", ename(errno));
		/* Try a forged one anyway ("shocker"): inode 2, the root of ext2/3/4. */
		memset(&h, 0, sizeof(h));
		h.fh.handle_bytes = 8;
		h.fh.handle_type = 1; /* FILEID_INO32_GEN */
		h.buf[0] = 2;
		how = "a forged handle";
	} else {
		report_as(V_OK, "name", NULL, "name_to_handle_at(/) works (harmless on its own)");
	}
	fd = open_by_handle_at(root, &h.fh, O_RDONLY | O_CLOEXEC);
	e = errno;
	/* Without CAP_DAC_READ_SEARCH the kernel refuses before decoding the handle (EPERM). */
	snprintf(what, sizeof(what), "open_by_handle_at with %s", how);
	verdict_privileged(fd, e, NULL, what);
	if (fd >= 0)
		close((int)fd);
}

static void check_io_uring(void)
{
	struct io_uring_params p;
	long fd;

	memset(&p, 0, sizeof(p));
	fd = syscall(__NR_io_uring_setup, 1, &p);
	verdict_call(fd, errno, NULL, "io_uring_setup");
	if (fd >= 0)
		close((int)fd);
}

/* ---- sockets and terminals ---- */

static void try_socket(int domain, int type, int protocol, const char *what)
{
	cleanup_close int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
	verdict_call(fd, errno, NULL, what);
}

static void check_socket_packet(void)
{
	try_socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), "socket(AF_PACKET, SOCK_RAW)");
}

static void check_socket_raw(void)
{
	try_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP, "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)");
}

static void check_socket_ping(void)
{
	try_socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP, "ICMP ping socket");
}

static void check_socket_ping6(void)
{
	try_socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6, "ICMPv6 ping socket");
}

static void tiocsti_on(int fd, const char *what)
{
	char c = ' '; /* if it works, a harmless blank lands in that terminal's input */
	long r = ioctl(fd, TIOCSTI, &c);
	int e = errno;

	if (r < 0 && e == ENOTTY)
		report(V_OK, "%s is not a terminal (ENOTTY)", what);
	else
		verdict_call(r, e, NULL, "ioctl(TIOCSTI)");
}

static void check_tiocsti_stdin(void)
{
	tiocsti_on(0, "stdin");
}

static void check_tiocsti_tty(void)
{
	cleanup_close int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		report(V_OK, "cannot open /dev/tty (%s): no controlling terminal", ename(errno));
		return;
	}
	tiocsti_on(fd, "/dev/tty");
}

/* TIOCSTI on a fresh pty that is our controlling terminal: what the filter, not the absence of
 * a terminal, decides. */
static void check_tiocsti_pty(void)
{
	pid_t pid;
	int st;

	pid = fork();
	if (pid < 0) {
		report(V_OK, "fork: %s", ename(errno));
		return;
	}
	if (pid == 0) {
		char name[64];
		int m, s, unlock = 0;

		setsid();
		m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (m < 0 || ioctl(m, TIOCSPTLCK, &unlock) < 0 || ptsname_r(m, name, sizeof(name)) != 0) {
			report(V_OK, "no pseudo-terminal available (%s)", ename(errno));
			_exit(0);
		}
		s = open(name, O_RDWR | O_CLOEXEC); /* session leader without a tty: it becomes ours */
		if (s < 0) {
			report(V_OK, "cannot open %s (%s)", name, ename(errno));
			_exit(0);
		}
		tiocsti_on(s, name);
		_exit(0);
	}
	waitpid(pid, &st, 0);
}

/* ---- devices, /proc and /sys ---- */

static void check_mknod(const char *arg)
{
	unsigned maj = 0, min = 0;
	bool block = arg[0] == 'b';
	char path[128], what[64];
	long r;

	sscanf(arg + 1, "%u:%u", &maj, &min);
	snprintf(path, sizeof(path), "%smknod-%c-%u-%u", tmp_prefix, arg[0], maj, min);
	r = mknod(path, (block ? S_IFBLK : S_IFCHR) | 0600, makedev(maj, min));
	snprintf(what, sizeof(what), "mknod of %s device %u:%u", block ? "block" : "character", maj, min);
	verdict_call(r, errno, NULL, what);
	if (r == 0)
		unlink(path);
}

static void check_dev_open(const char *path)
{
	int flags = strcmp(path, "/dev/net/tun") == 0 ? O_RDWR : O_RDONLY;
	cleanup_close int fd = open(path, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		report(V_OK, "%s does not exist", path);
	else
		verdict_call(fd, errno, NULL, "open");
}

static void check_read_file(const char *path)
{
	int e = try_read(path);
	verdict_call(e ? -1 : 0, e, NULL, "open and read");
}

/* Opening for writing is the permission check; nothing is ever written (sysrq-trigger and
 * core_pattern would act on the host if they were writable). */
static void check_open_write(const char *path)
{
	cleanup_close int fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		report(V_OK, "open for writing: blocked (%s)", ename(errno));
	else
		report(V_ESCAPE, "opened for writing (nothing written)");
}

static void try_cgroup_mkdir(const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%ssub", dir, tmp_prefix);
	if (mkdir(path, 0755) == 0) {
		rmdir(path);
		report_as(V_ESCAPE, NULL, dir, "created a cgroup in %s", dir);
	} else {
		report_as(V_OK, NULL, dir, "mkdir in %s: blocked (%s)", dir, ename(errno));
	}
}

static void check_cgroup_mkdir(void)
{
	DIR *d = opendir("/sys/fs/cgroup");
	struct dirent *de;

	if (!d) {
		report(V_OK, "/sys/fs/cgroup is not visible (%s)", ename(errno));
		return;
	}
	try_cgroup_mkdir("/sys/fs/cgroup");
	/* cgroup v1: one hierarchy per controller below /sys/fs/cgroup */
	while ((de = readdir(d))) {
		char path[300];
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", de->d_name);
		try_cgroup_mkdir(path);
	}
	closedir(d);
}

/* Limits the sandbox must not be able to raise from inside. */
static void check_cgroup_limits(void)
{
	static const char *const files[] = {
		"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/cpu.max",
		"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max",
		"/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us",
	};
	int found = 0;

	for (size_t i = 0; i < SBX_ARRAY_LEN(files); i++) {
		cleanup_close int fd = open(files[i], O_WRONLY | O_CLOEXEC);
		if (fd >= 0)
			report_as(V_ESCAPE, NULL, files[i], "opened for writing (nothing written)");
		else if (errno != ENOENT)
			report_as(V_OK, NULL, files[i], "open for writing: blocked (%s)", ename(errno));
		found += fd >= 0 || errno != ENOENT;
	}
	if (!found)
		report(V_OK, "no cgroup limit files visible");
}

static void check_unix_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	long r;

	sbx_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	r = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	verdict_call(r, errno, NULL, "connect");
}

/* ---- host files ---- */

static void check_absent(const char *path)
{
	if (path_exists(path))
		report(V_ESCAPE, "%s is visible", path);
	else
		report(V_OK, "%s is not visible (%s)", path, ename(errno));
}

static void report_read_some(const char *path, const char *what)
{
	ssize_t n = read_some(path);

	if (n > 0)
		report_as(V_ESCAPE, NULL, path, "%s is readable", what);
	else if (n == 0)
		report_as(V_OK, NULL, path, "%s reads as empty (masked)", what);
	else
		report_as(V_OK, NULL, path, "%s cannot be read (%s)", what, ename((int)-n));
}

static void check_unreadable(const char *path)
{
	report_read_some(path, path);
}

static void check_ssh_host_keys(void)
{
	DIR *d = opendir("/etc/ssh");
	struct dirent *de;
	int n = 0;

	if (!d) {
		report(V_OK, "/etc/ssh is not visible (%s)", ename(errno));
		return;
	}
	while ((de = readdir(d))) {
		char path[300];

		if (!sbx_str_has_prefix(de->d_name, "ssh_host_") || !sbx_str_has_suffix(de->d_name, "_key"))
			continue;
		snprintf(path, sizeof(path), "/etc/ssh/%s", de->d_name);
		report_read_some(path, "the host's private key");
		n++;
	}
	closedir(d);
	if (!n)
		report(V_OK, "no ssh host keys in /etc/ssh");
}

/* Under /home only /home/agent and the directories leading to the workspace (which is mounted at
 * its host path, say /home/alice/src/proj) may appear, and the latter must hold nothing else. */
static void walk_home(const char *dir, const char *cwd, int depth, int *bad)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[4096];
		size_t len;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (depth == 0 && strcmp(de->d_name, "agent") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		len = strlen(path);
		if (strcmp(path, cwd) == 0)
			continue; /* the workspace itself */
		if (strncmp(cwd, path, len) == 0 && cwd[len] == '/') {
			if (depth < 32)
				walk_home(path, cwd, depth + 1, bad);
			continue;
		}
		report_as(V_ESCAPE, NULL, path, "host home content is visible");
		++*bad;
	}
	closedir(d);
}

static void check_home(void)
{
	char cwd[4096];
	int bad = 0;

	if (!getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	if (!path_exists("/home")) {
		report(V_OK, "/home is not visible");
		return;
	}
	walk_home("/home", cwd, 0, &bad);
	if (!bad)
		report(V_OK, "/home holds only /home/agent and the way to the workspace");
}

/* Hard links are how a file escapes a mount's read-only flag or a later cleanup. */
static void check_hardlink(const char *target)
{
	char path[128];
	long r;

	tmp_name(path, sizeof(path), "link");
	r = link(target, path);
	verdict_call(r, errno, NULL, "hard link into the current directory");
	if (r == 0)
		unlink(path);
}

static void check_symlink_proc1_root(void)
{
	char link_path[128], via[160];
	DIR *d;

	tmp_name(link_path, sizeof(link_path), "root");
	if (symlink("/proc/1/root/", link_path) == 0) {
		snprintf(via, sizeof(via), "%s/", link_path);
	} else {
		report_as(V_OK, "create", NULL, "cannot create a symlink in the current directory (%s)",
			  ename(errno));
		sbx_strlcpy(via, "/proc/1/root/", sizeof(via));
	}
	d = opendir(via);
	if (d) {
		closedir(d);
		report(V_ESCAPE, "listed PID 1's root through %s", via);
	} else {
		report(V_OK, "cannot list PID 1's root through %s (%s)", via, ename(errno));
	}
	unlink(link_path);
}

/* ---- network ---- */

static void fill_random(void *buf, size_t n)
{
	if (sbx_random_bytes(buf, n) < 0)
		memset(buf, 0x5a, n);
}

static size_t put16(unsigned char *out, size_t p, size_t v)
{
	out[p] = (unsigned char)(v >> 8);
	out[p + 1] = (unsigned char)v;
	return p + 2;
}

static unsigned get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* ---- DNS ----
 *
 * Inside a sandbox the only resolver is the proxy: every IPv4 UDP query to port 53, whatever the
 * server address, lands there. It answers an allowed name with an address from 198.18.0.0/15
 * (type A only; other types get NODATA), a denied name with NXDOMAIN, and forwards nothing. So
 * an answer proves a way out when it carries an address outside that range, gives a denied name
 * any address, or leaves an allowed name without an address from the range: each of these can
 * only come from another resolver. Queries for names under a denied domain (how a DNS tunnel
 * carries data out) may get nothing but NXDOMAIN, REFUSED or NODATA: anything else means the
 * query reached someone who answers for that domain. */

#define FAKE_NET 0xc6120000u /* 198.18.0.0/15, host byte order */
#define FAKE_MASK 0xfffe0000u
#define DNS_TIMEOUT_MS 400     /* UDP: the proxy answers at once, a real resolver well within */
#define DNS_TCP_TIMEOUT_MS 800 /* TCP: the proxy reads the first bytes for 300 ms, then refuses */
#define DNS_NAME_MAX 253
#define DNS_TUNNEL_DOMAIN_MAX 180 /* leaves room for at least one 63-byte data label */
#define DNS_MAX_QUERIES (2 * MAX_ARGS + 1)
#define DNS_TCP_BUF (65535 + 2) /* one message of the largest size, with its length */

enum { DNS_A = 1, DNS_CNAME = 5, DNS_NULL = 10, DNS_MX = 15, DNS_TXT = 16, DNS_AAAA = 28, DNS_ANY = 255 };
enum { RCODE_NOERROR = 0, RCODE_NXDOMAIN = 3, RCODE_REFUSED = 5 };

static const char *const rcode_name[16] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED",  "YXDOMAIN", "YXRRSET",
	"NXRRSET", "NOTAUTH", "NOTZONE",  "rcode-11", "rcode-12", "rcode-13", "rcode-14", "rcode-15",
};

/* What the answer to a query may be. */
enum dns_role {
	ROLE_ALLOWED, /* --dns-allowed: only a 198.18.0.0/15 address from the sandbox's resolver */
	ROLE_DENIED,  /* --dns-denied: no address at all */
	ROLE_ANY,     /* no name given: the policy is unknown, only a real address is an escape */
	ROLE_TUNNEL,  /* --dns-tunnel: NXDOMAIN, REFUSED or NODATA, whatever the type */
};
/* How their results are filed: dns-udp-allowed:SERVER, dns-udp-denied:SERVER, dns-udp:SERVER. */
static const char *const role_name[] = {"allowed", "denied", NULL, "tunnel"};

struct dns_q {
	char name[DNS_NAME_MAX + 1];
	uint16_t type;
	uint16_t id;
	enum dns_role role;
	/* the answer, once one came */
	bool answered;
	bool malformed;   /* its answer section did not parse to the end */
	int rcode;
	unsigned records; /* answer records, as its header counts them */
	unsigned fake;    /* A records in 198.18.0.0/15 */
	unsigned real;    /* A records elsewhere */
	char addr[INET_ADDRSTRLEN]; /* the first real A record, else the first fake one */
};

static const char *dns_type_name(uint16_t t)
{
	switch (t) {
	case DNS_A: return "A";
	case DNS_CNAME: return "CNAME";
	case DNS_NULL: return "NULL";
	case DNS_MX: return "MX";
	case DNS_TXT: return "TXT";
	case DNS_AAAA: return "AAAA";
	case DNS_ANY: return "ANY";
	default: return "?";
	}
}

/* A name the probe can put in a query: dotted labels of 1 to 63 letters, digits, '-' or '_',
 * DNS_NAME_MAX bytes at most, no trailing dot. */
static bool dns_name_ok(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > DNS_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			   c == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0;
}

static void dns_q_init(struct dns_q *q, const char *name, uint16_t type, enum dns_role role, uint16_t id)
{
	memset(q, 0, sizeof(*q));
	sbx_strlcpy(q->name, name, sizeof(q->name));
	q->type = type;
	q->role = role;
	q->id = id;
}

/* The query for q: a header asking for recursion, one question of class IN. Returns its length,
 * 0 when it does not fit in cap. */
static size_t dns_encode(const struct dns_q *q, unsigned char *out, size_t cap)
{
	size_t p = 12, nl = strlen(q->name);

	if (cap < 12 + nl + 2 + 4)
		return 0;
	memset(out, 0, 12);
	put16(out, 0, q->id);
	out[2] = 0x01; /* RD */
	put16(out, 4, 1);
	for (const char *l = q->name; *l;) {
		size_t ll = strcspn(l, ".");
		out[p++] = (unsigned char)ll;
		memcpy(out + p, l, ll);
		p += ll;
		l += ll;
		if (*l == '.')
			l++;
	}
	out[p++] = 0;
	p = put16(out, p, q->type);
	return put16(out, p, 1);
}

/* Moves *off past the name at *off in an answer; false when the name runs off the packet. */
static bool dns_skip_name(const unsigned char *r, size_t n, size_t *off)
{
	for (size_t p = *off; p < n;) {
		unsigned len = r[p];

		if ((len & 0xc0) == 0xc0) {
			if (p + 2 > n)
				return false;
			*off = p + 2;
			return true;
		}
		if (len & 0xc0)
			return false;
		if (len == 0) {
			*off = p + 1;
			return true;
		}
		p += 1 + len;
	}
	return false;
}

/* Files an answer under the query it answers (by id, each query answered once). Returns that
 * query, or NULL when the bytes are not an answer to any of ours. */
static struct dns_q *dns_take_answer(struct dns_q *qs, size_t nq, const unsigned char *r, size_t n)
{
	struct dns_q *q = NULL;
	size_t off = 12;
	unsigned qd, an;

	if (n < 12 || !(r[2] & 0x80)) /* too short, or a query (QR=0): an echo, not an answer */
		return NULL;
	for (size_t i = 0; i < nq && !q; i++)
		if (!qs[i].answered && qs[i].id == get16(r))
			q = &qs[i];
	if (!q)
		return NULL;
	q->answered = true;
	q->rcode = r[3] & 0x0f;
	qd = get16(r + 4);
	an = get16(r + 6);
	q->records = an;
	for (unsigned i = 0; i < qd; i++) {
		if (!dns_skip_name(r, n, &off) || off + 4 > n) {
			q->malformed = true;
			return q;
		}
		off += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		unsigned type, class, rdlen;

		if (!dns_skip_name(r, n, &off) || off + 10 > n) {
			q->malformed = true;
			break;
		}
		type = get16(r + off);
		class = get16(r + off + 2);
		rdlen = get16(r + off + 8);
		off += 10;
		if (off + rdlen > n) {
			q->malformed = true;
			break;
		}
		if (type == DNS_A && class == 1 && rdlen == 4) {
			uint32_t a = (uint32_t)r[off] << 24 | (uint32_t)r[off + 1] << 16 | (uint32_t)r[off + 2] << 8 | r[off + 3];
			bool fake = (a & FAKE_MASK) == FAKE_NET;

			if (fake)
				q->fake++;
			else
				q->real++;
			if (!q->addr[0] || (!fake && q->real == 1))
				inet_ntop(AF_INET, r + off, q->addr, sizeof(q->addr));
		}
		off += rdlen;
	}
	return q;
}

/* The verdict on what came back for one query, with the reason in why. */
static enum verdict dns_judge(const struct dns_q *q, char *why, size_t len)
{
	const char *rc = rcode_name[q->rcode & 15];
	const char *bad = q->malformed ? " (malformed)" : "";

	if (!q->answered) {
		snprintf(why, len, "no answer");
		return V_OK;
	}
	if (q->real) {
		snprintf(why, len, "%s with %s, %u address(es) outside 198.18.0.0/15%s: a real resolver answered", rc,
			 q->addr, q->real, bad);
		return V_ESCAPE;
	}
	switch (q->role) {
	case ROLE_ALLOWED:
		if (q->fake && q->rcode == RCODE_NOERROR) {
			snprintf(why, len, "%s, the sandbox resolver's answer", q->addr);
			return V_OK;
		}
		snprintf(why, len,
			 "%s with %u record(s) and no address from 198.18.0.0/15%s: not the sandbox's resolver, which "
			 "gives an allowed name one",
			 rc, q->records, bad);
		return V_ESCAPE;
	case ROLE_DENIED:
		if (q->fake) {
			snprintf(why, len, "the denied name resolved to %s", q->addr);
			return V_ESCAPE;
		}
		snprintf(why, len, "%s%s%s", rc, q->rcode == RCODE_NOERROR && !q->records ? " without records (NODATA)" : "",
			 bad);
		return V_OK;
	case ROLE_ANY:
		snprintf(why, len, "%s%s%s", rc, q->fake ? " with " : "", q->fake ? q->addr : "");
		return V_OK;
	case ROLE_TUNNEL:
		if (q->records || (q->rcode != RCODE_NOERROR && q->rcode != RCODE_NXDOMAIN && q->rcode != RCODE_REFUSED)) {
			snprintf(why, len, "%s with %u answer record(s)%s: something answers for the denied domain", rc,
				 q->records, bad);
			return V_ESCAPE;
		}
		snprintf(why, len, "%s", q->rcode == RCODE_NOERROR ? "NODATA" : rc);
		return V_OK;
	}
	snprintf(why, len, "?");
	return V_FAIL;
}

/* The queries of dns-udp and dns-tcp: type A for every --dns-allowed and --dns-denied name, or
 * example.com when none was given. Ids are distinct within the set. Returns the count. */
static size_t dns_plan(struct dns_q *qs)
{
	uint16_t id;
	size_t n = 0;

	fill_random(&id, sizeof(id));
	for (size_t i = 0; i < opt.dns_allowed.n; i++, n++)
		dns_q_init(&qs[n], opt.dns_allowed.v[i], DNS_A, ROLE_ALLOWED, (uint16_t)(id + n));
	for (size_t i = 0; i < opt.dns_denied.n; i++, n++)
		dns_q_init(&qs[n], opt.dns_denied.v[i], DNS_A, ROLE_DENIED, (uint16_t)(id + n));
	if (!n)
		dns_q_init(&qs[n++], "example.com", DNS_A, ROLE_ANY, id);
	return n;
}

/* A connected UDP socket to server with every query sent, or -1 with *err when not even the
 * first could be sent. A later send that fails ends the sending, not the exchange. */
static int dns_udp_send(const char *server, const struct dns_q *qs, size_t nq, int *err)
{
	struct sockaddr_storage ss;
	socklen_t len = parse_hostport(server, 53, &ss);
	unsigned char pkt[512];
	cleanup_close int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
		*err = errno;
		return -1;
	}
	for (size_t i = 0; i < nq; i++) {
		size_t pl = dns_encode(&qs[i], pkt, sizeof(pkt));

		if (send(fd, pkt, pl, 0) < 0) {
			if (i > 0)
				break;
			*err = errno;
			return -1;
		}
	}
	return take_fd(fd);
}

/* Reads answers on fd until every query has one, an error, or the deadline. Returns how many
 * datagrams came back that answer none of the queries; *err is what ended the wait. */
static size_t dns_udp_collect(int fd, struct dns_q *qs, size_t nq, uint64_t deadline, int *err)
{
	unsigned char r[4096];
	size_t stray = 0, left = nq;

	*err = 0;
	while (left) {
		ssize_t n;
		int w = wait_fd(fd, POLLIN, ms_left(deadline));

		if (w <= 0) {
			*err = w == 0 ? ETIMEDOUT : errno;
			break;
		}
		n = recv(fd, r, sizeof(r), MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			*err = errno; /* an ICMP error: nobody is there */
			break;
		}
		if (dns_take_answer(qs, nq, r, (size_t)n))
			left--;
		else
			stray++;
	}
	return stray;
}

/* One line per query, or one for all when none was answered. */
static void dns_report(const char *how, const struct dns_q *qs, size_t nq, int err)
{
	size_t answered = 0;

	for (size_t i = 0; i < nq; i++)
		answered += qs[i].answered;
	if (!answered) {
		report(V_OK, "no answer to %zu quer%s over %s (%s)", nq, nq == 1 ? "y" : "ies", how,
			  err ? ename(err) : "closed");
		return;
	}
	for (size_t i = 0; i < nq; i++) {
		char why[300];
		enum verdict v = dns_judge(&qs[i], why, sizeof(why));

		report_as(v, role_name[qs[i].role], NULL, "%s %s over %s: %s", qs[i].name,
			  dns_type_name(qs[i].type), how, why);
	}
}

/* --dns: queries for the allowed and denied names over UDP. */
static void check_dns_udp(const char *server)
{
	cleanup_free struct dns_q *qs = calloc(DNS_MAX_QUERIES, sizeof(*qs));
	cleanup_close int fd = -1;
	size_t nq, stray;
	int err = 0;

	if (!qs) {
		report(V_FAIL, "out of memory");
		return;
	}
	nq = dns_plan(qs);
	fd = dns_udp_send(server, qs, nq, &err);
	if (fd < 0) {
		report(V_OK, "cannot send a query over UDP (%s)", ename(err));
		return;
	}
	stray = dns_udp_collect(fd, qs, nq, sbx_monotonic_ms() + DNS_TIMEOUT_MS, &err);
	if (stray)
		report_as(V_ESCAPE, "stray", NULL,
			  "%zu datagram(s) came back that answer none of the queries: something other than the "
			  "sandbox's resolver is there",
			  stray);
	dns_report("UDP", qs, nq, err);
}

/* --dns: the same queries over TCP. The proxy does not answer DNS over TCP: a connection to a
 * non-local address reaches its transparent listener, which refuses a destination no rule
 * allows; 127.0.0.53 has no TCP listener. */
static void check_dns_tcp(const char *server)
{
	struct sockaddr_storage ss;
	socklen_t len = parse_hostport(server, 53, &ss);
	cleanup_free struct dns_q *qs = calloc(DNS_MAX_QUERIES, sizeof(*qs));
	cleanup_free unsigned char *buf = malloc(DNS_TCP_BUF);
	cleanup_close int fd = -1;
	size_t nq, have = 0, left;
	uint64_t deadline = sbx_monotonic_ms() + DNS_TCP_TIMEOUT_MS;
	bool other = false;
	int e = 0;

	if (!qs || !buf) {
		report(V_FAIL, "out of memory");
		return;
	}
	nq = dns_plan(qs);
	fd = connect_timeout((struct sockaddr *)&ss, len, SOCK_STREAM, DNS_TCP_TIMEOUT_MS, &e);
	if (fd < 0) {
		report(V_OK, "cannot connect over TCP (%s)", ename(e));
		return;
	}
	/* every query in one write, each behind its two-byte length (RFC 1035 4.2.2) */
	for (size_t i = 0; i < nq; i++) {
		size_t l = dns_encode(&qs[i], buf + have + 2, DNS_TCP_BUF - have - 2);
		put16(buf, have, l);
		have += 2 + l;
	}
	if (send(fd, buf, have, MSG_NOSIGNAL) < 0) {
		report(V_OK, "connected, but the queries could not be sent (%s)", ename(errno));
		return;
	}
	have = 0;
	e = ETIMEDOUT;
	for (left = nq; left;) {
		ssize_t n;
		size_t used = 0;
		int w = wait_fd(fd, POLLIN, ms_left(deadline));

		if (w <= 0) {
			e = w == 0 ? ETIMEDOUT : errno;
			break;
		}
		n = recv(fd, buf + have, DNS_TCP_BUF - have, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : 0;
			break;
		}
		have += (size_t)n;
		while (have - used >= 2 && have - used >= 2 + get16(buf + used)) {
			size_t ml = get16(buf + used);

			if (dns_take_answer(qs, nq, buf + used + 2, ml))
				left--;
			else
				other = true;
			used += 2 + ml;
		}
		memmove(buf, buf + used, have - used);
		have -= used;
	}
	if (other || have > 0)
		report_as(V_OK, "other", NULL, "connected; what came back is not an answer to the queries");
	dns_report("TCP", qs, nq, e);
}

/* A name under domain that carries data the way a DNS tunnel does: as many long labels of random
 * base32 as fit (three at most), then a label that numbers the query. */
static void tunnel_name(char out[DNS_NAME_MAX + 1], const char *domain, unsigned seq)
{
	static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
	char tag[16];
	int tl = snprintf(tag, sizeof(tag), "q%u", seq);
	size_t dl = strlen(domain), room, p = 0;

	/* the data labels with their dots get what the tag, the domain and their dots leave */
	room = DNS_NAME_MAX - dl - 1 - (size_t)tl - 1;
	for (int labels = 0; labels < 3 && room >= 2; labels++) {
		unsigned char rnd[63];
		size_t ll = room - 1 < sizeof(rnd) ? room - 1 : sizeof(rnd);

		fill_random(rnd, ll);
		for (size_t i = 0; i < ll; i++)
			out[p++] = b32[rnd[i] & 31];
		out[p++] = '.';
		room -= ll + 1;
	}
	snprintf(out + p, DNS_NAME_MAX + 1 - p, "%s.%s", tag, domain);
}

/* --dns-tunnel: data-carrying names under a denied domain, of the types tunnels use, to the
 * sandbox's resolver and to every --dns server (8.8.8.8 when none was given). All servers are
 * asked first and their answers collected under one deadline. */
static void check_dns_tunnel(const char *domain)
{
	static const uint16_t types[] = {DNS_A, DNS_AAAA, DNS_TXT, DNS_MX, DNS_CNAME, DNS_NULL, DNS_ANY};
	const size_t nt = SBX_ARRAY_LEN(types);
	const char *servers[MAX_ARGS + 2];
	size_t ns = 0;
	cleanup_free struct dns_q *qs = NULL;
	int fds[MAX_ARGS + 2], errs[MAX_ARGS + 2];
	char type_list[64] = "";
	size_t tl = 0;
	uint64_t deadline;
	uint16_t id;
	unsigned seq = 0;

	servers[ns++] = "127.0.0.53";
	for (size_t i = 0; i < opt.dns.n; i++)
		if (strcmp(opt.dns.v[i], "127.0.0.53") != 0 && strcmp(opt.dns.v[i], "127.0.0.53:53") != 0)
			servers[ns++] = opt.dns.v[i];
	if (ns == 1)
		servers[ns++] = "8.8.8.8"; /* an outside resolver, as a tunnel would use */
	qs = calloc(ns * nt, sizeof(*qs));
	if (!qs) {
		report(V_FAIL, "out of memory");
		return;
	}
	fill_random(&id, sizeof(id));
	for (size_t s = 0; s < ns; s++) {
		for (size_t t = 0; t < nt; t++, seq++) {
			char name[DNS_NAME_MAX + 1];

			tunnel_name(name, domain, seq);
			dns_q_init(&qs[s * nt + t], name, types[t], ROLE_TUNNEL, (uint16_t)(id + seq));
		}
		fds[s] = dns_udp_send(servers[s], &qs[s * nt], nt, &errs[s]);
	}
	deadline = sbx_monotonic_ms() + DNS_TIMEOUT_MS;
	for (size_t t = 0; t < nt; t++)
		tl = appendf(type_list, sizeof(type_list), tl, "%s%s", t ? " " : "", dns_type_name(types[t]));
	for (size_t s = 0; s < ns; s++) {
		struct dns_q *q = &qs[s * nt];
		unsigned counts[17] = {0}; /* by rcode; [16]: unanswered */
		char summary[256] = "";
		size_t sl = 0, stray;
		bool escaped = false;

		if (fds[s] < 0) {
			report_as(V_OK, servers[s], NULL, "cannot send a query over UDP (%s)", ename(errs[s]));
			continue;
		}
		stray = dns_udp_collect(fds[s], q, nt, deadline, &errs[s]);
		close(fds[s]);
		if (stray) {
			report_as(V_ESCAPE, servers[s], NULL, "%zu datagram(s) came back that answer none of the queries",
				  stray);
			escaped = true;
		}
		for (size_t t = 0; t < nt; t++) {
			char why[300];

			if (dns_judge(&q[t], why, sizeof(why)) == V_ESCAPE) {
				report_as(V_ESCAPE, servers[s], NULL, "%s %s over UDP: %s", q[t].name,
					  dns_type_name(q[t].type), why);
				escaped = true;
			}
			counts[q[t].answered ? q[t].rcode & 15 : 16]++;
		}
		if (escaped)
			continue;
		for (int rc = 0; rc < 17; rc++)
			if (counts[rc])
				sl = appendf(summary, sizeof(summary), sl, "%s%u %s", sl ? ", " : "", counts[rc],
					     rc == 16 ? "unanswered" : rc == RCODE_NOERROR ? "NODATA" : rcode_name[rc]);
		if (counts[16])
			sl = appendf(summary, sizeof(summary), sl, " (%s)", ename(errs[s] ? errs[s] : ETIMEDOUT));
		report_as(V_OK, servers[s], NULL, "%zu queries (%s) for %zu-byte names over UDP: %s", nt, type_list,
			  strlen(q[0].name), summary);
	}
}

/* A TLS ClientHello with SNI, enough for any TLS server to answer (with a ServerHello or an
 * alert). Returns its length. */
static size_t tls_client_hello(unsigned char *out, size_t cap, const char *sni)
{
	static const unsigned char suites[] = {0x00, 0x08, 0xc0, 0x2f, 0xc0, 0x2b, 0x13, 0x01, 0x00, 0x9c};
	static const unsigned char ext_rest[] = {
		0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17,             /* groups */
		0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,                                     /* point formats */
		0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, /* signatures */
	};
	size_t sl = strlen(sni), p = 0, ext_len = 9 + sl + sizeof(ext_rest);
	size_t body = 2 + 32 + 1 + sizeof(suites) + 2 + 2 + ext_len;

	if (9 + body > cap || sl > 200)
		return 0;
	out[p++] = 0x16;			/* record: handshake, */
	p = put16(out, p, 0x0301);		/* TLS 1.0 on the record layer */
	p = put16(out, p, body + 4);
	out[p++] = 0x01;			/* ClientHello, 24-bit length */
	out[p++] = 0;
	p = put16(out, p, body);
	p = put16(out, p, 0x0303);		/* TLS 1.2 */
	fill_random(out + p, 32);		/* random */
	p += 32;
	out[p++] = 0;				/* no session id */
	memcpy(out + p, suites, sizeof(suites));
	p += sizeof(suites);
	out[p++] = 1;				/* compression: null only */
	out[p++] = 0;
	p = put16(out, p, ext_len);
	p = put16(out, p, 0x0000);		/* server_name */
	p = put16(out, p, sl + 5);
	p = put16(out, p, sl + 3);
	out[p++] = 0;				/* host_name */
	p = put16(out, p, sl);
	memcpy(out + p, sni, sl);
	p += sl;
	memcpy(out + p, ext_rest, sizeof(ext_rest));
	return p + sizeof(ext_rest);
}

/* Direct TLS to a public address: only a TLS answer proves the internet was reached (a
 * transparent proxy may accept the connection and then refuse it). */
static void check_tcp_tls(const char *target)
{
	struct sockaddr_storage ss;
	socklen_t len = parse_hostport(target, 443, &ss);
	unsigned char hello[512], r[16];
	cleanup_close int fd = -1;
	size_t hl;
	ssize_t n;
	int e = 0;

	fd = connect_timeout((struct sockaddr *)&ss, len, SOCK_STREAM, CONNECT_TIMEOUT_MS, &e);
	if (fd < 0) {
		report(V_OK, "cannot connect (%s)", ename(e));
		return;
	}
	hl = tls_client_hello(hello, sizeof(hello), "one.one.one.one");
	if (send(fd, hello, hl, MSG_NOSIGNAL) < 0) {
		report(V_OK, "connected, but nothing could be sent (%s)", ename(errno));
		return;
	}
	n = recv_timeout(fd, r, 5, ANSWER_TIMEOUT_MS);
	if (n >= 3 && (r[0] == 0x16 || r[0] == 0x15) && r[1] == 0x03)
		report(V_ESCAPE, "a TLS server answered (%s)", r[0] == 0x16 ? "handshake" : "alert");
	else
		report(V_OK, "connected (a proxy may accept anything), but no TLS answer (%s)",
		       n < 0 ? ename(errno) : n == 0 ? "closed" : "not TLS");
}

static void check_interfaces(void)
{
	struct ifaddrs *ifa = NULL;
	char names[512] = "";
	size_t len = 0;

	if (getifaddrs(&ifa) < 0) {
		report(V_OK, "getifaddrs failed (%s)", ename(errno));
		return;
	}
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		char addr[INET6_ADDRSTRLEN] = "?";

		if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
			continue;
		if (strcmp(i->ifa_name, "lo") == 0)
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, addr, sizeof(addr));
		else
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, addr, sizeof(addr));
		if (len < sizeof(names))
			len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s=%s", len ? " " : "",
						i->ifa_name, addr);
	}
	freeifaddrs(ifa);
	if (len)
		report(V_ESCAPE, "interfaces other than lo have addresses: %s", names);
	else
		report(V_OK, "only lo has an address");
}

/* --tcp, --tcp6: a host service; only its banner proves it was reached. Also net6-tcp, IPv6 to a
 * public address: the transparent proxy accepts it and then refuses it, so a banner is all that
 * could prove the sandbox got through. */
static void check_tcp_service(const char *target)
{
	struct sockaddr_storage ss;
	socklen_t len = parse_hostport(target, 0, &ss);
	char buf[512];
	cleanup_close int fd = -1;
	ssize_t n;
	int e = 0;

	fd = connect_timeout((struct sockaddr *)&ss, len, SOCK_STREAM, CONNECT_TIMEOUT_MS, &e);
	if (fd < 0) {
		report(V_OK, "cannot connect (%s)", ename(e));
		return;
	}
	n = recv_timeout(fd, buf, sizeof(buf) - 1, ANSWER_TIMEOUT_MS);
	if (n > 0 && memmem(buf, (size_t)n, opt.tcp_banner, strlen(opt.tcp_banner)))
		report(V_ESCAPE, "reached the host service (banner \"%s\")", opt.tcp_banner);
	else
		report(V_OK, "connected, but not to the host service (no banner: %s)",
		       n < 0 ? ename(errno) : n == 0 ? "closed" : "other data");
}

/* Sends msg over UDP to target and waits UDP_ECHO_TIMEOUT_MS for any datagram back (an empty one
 * counts): only a reply proves that the datagram got somewhere. */
static void udp_try(const char *target, const void *msg, size_t ml, const char *what)
{
	struct sockaddr_storage ss;
	socklen_t len = parse_hostport(target, 0, &ss);
	unsigned char buf[1500];
	cleanup_close int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	uint64_t deadline;

	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0 || send(fd, msg, ml, 0) < 0) {
		report(V_OK, "cannot send %s (%s)", what, ename(errno));
		return;
	}
	deadline = sbx_monotonic_ms() + UDP_ECHO_TIMEOUT_MS;
	for (;;) {
		ssize_t n;
		int w = wait_fd(fd, POLLIN, ms_left(deadline));

		if (w <= 0) {
			report(V_OK, "%s sent, no reply within %d ms (%s)", what, UDP_ECHO_TIMEOUT_MS,
			       ename(w == 0 ? ETIMEDOUT : errno));
			return;
		}
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			report(V_OK, "%s sent, no reply (%s)", what, ename(errno));
			return;
		}
		report(V_ESCAPE, "%s sent, %zd bytes came back", what, n);
		return;
	}
}

/* --udp: a host service that echoes. */
static void check_udp_service(const char *target)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "sbx-probe %d", (int)getpid());
	udp_try(target, msg, strlen(msg), "a datagram");
}

/* UDP to a public address, with what a server on that port answers: an NTP client request on
 * port 123; on 443 a QUIC long-header packet with a reserved version, which a QUIC server must
 * answer with Version Negotiation (RFC 9000 6.1), padded to the 1200 bytes below which servers
 * drop it. */
static void check_udp_public(const char *target)
{
	struct sockaddr_storage ss;
	unsigned char msg[1200];
	unsigned port;

	parse_hostport(target, 0, &ss);
	port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					     : ((struct sockaddr_in6 *)&ss)->sin6_port);
	memset(msg, 0, sizeof(msg));
	if (port == 123) {
		msg[0] = 0x23; /* leap indicator 0, version 4, mode 3 (client) */
		fill_random(msg + 40, 8); /* transmit timestamp: the server echoes it */
		udp_try(target, msg, 48, "an NTP request");
		return;
	}
	if (port == 443) {
		msg[0] = 0xc0; /* long header, fixed bit */
		msg[1] = 0x1a; /* version 0x1a2a3a4a: reserved to force version negotiation */
		msg[2] = 0x2a;
		msg[3] = 0x3a;
		msg[4] = 0x4a;
		msg[5] = 8; /* destination connection id */
		fill_random(msg + 6, 8);
		msg[14] = 8; /* source connection id */
		fill_random(msg + 15, 8);
		udp_try(target, msg, sizeof(msg), "a QUIC packet");
		return;
	}
	memcpy(msg, "sbx-probe", 9);
	udp_try(target, msg, 9, "a datagram");
}

static uint16_t inet_checksum(const unsigned char *p, size_t n)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* ICMP echo to a public address, from a ping socket or, failing that, a raw one: a reply proves
 * the packet left. (Whether such sockets can be made at all is what socket-ping and socket-raw
 * judge; here only a reply counts.) */
static void check_icmp_echo(const char *target)
{
	struct sockaddr_storage ss, from;
	socklen_t len = parse_hostport(target, 1, &ss), fl;
	const bool v6 = ss.ss_family == AF_INET6;
	const int proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	const unsigned char reply_type = v6 ? 129 : 0;
	unsigned char req[64], r[1500];
	cleanup_close int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
	const char *kind = "ping";
	bool raw = false;
	uint64_t deadline;
	uint16_t id;

	if (fd < 0) {
		int e_ping = errno;

		fd = socket(ss.ss_family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
		if (fd < 0) {
			report(V_OK, "no ICMP socket (ping socket: %s, raw socket: %s)", ename(e_ping), ename(errno));
			return;
		}
		kind = "raw";
		raw = true;
	}
	/* the port means nothing to ICMP, and a raw IPv6 socket refuses one */
	if (v6)
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	else
		((struct sockaddr_in *)&ss)->sin_port = 0;
	fill_random(&id, sizeof(id));
	memset(req, 0, sizeof(req));
	req[0] = v6 ? 128 : 8; /* echo request */
	put16(req, 4, id);     /* a ping socket puts its own id here */
	put16(req, 6, 1);
	memcpy(req + 8, "sbx-probe echo", 14);
	if (!v6)
		put16(req, 2, inet_checksum(req, sizeof(req))); /* ICMPv6: the kernel computes it */
	if (sendto(fd, req, sizeof(req), 0, (struct sockaddr *)&ss, len) < 0) {
		report(V_OK, "cannot send an echo request from a %s socket (%s)", kind, ename(errno));
		return;
	}
	deadline = sbx_monotonic_ms() + UDP_ECHO_TIMEOUT_MS;
	for (;;) {
		const unsigned char *p = r;
		ssize_t n;
		int w = wait_fd(fd, POLLIN, ms_left(deadline));

		if (w <= 0) {
			report(V_OK, "echo request sent from a %s socket, no reply within %d ms (%s)", kind,
			       UDP_ECHO_TIMEOUT_MS, ename(w == 0 ? ETIMEDOUT : errno));
			return;
		}
		fl = sizeof(from);
		n = recvfrom(fd, r, sizeof(r), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			report(V_OK, "echo request sent from a %s socket, no reply (%s)", kind, ename(errno));
			return;
		}
		if (!v6 && raw) { /* a raw IPv4 socket reads the IP header too */
			size_t ihl = (size_t)(r[0] & 0x0f) * 4;
			if ((size_t)n < ihl + 8)
				continue;
			p += ihl;
			n -= (ssize_t)ihl;
		}
		if (n < 8 || p[0] != reply_type || (raw && get16(p + 4) != id))
			continue; /* some other ICMP message */
		if (v6 ? memcmp(&((struct sockaddr_in6 *)&from)->sin6_addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16)
		       : memcmp(&((struct sockaddr_in *)&from)->sin_addr, &((struct sockaddr_in *)&ss)->sin_addr, 4))
			continue;
		report(V_ESCAPE, "an echo reply came back (%s socket)", kind);
		return;
	}
}

static void check_abstract(const char *name)
{
	static const int types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t nl = strlen(name);
	socklen_t len;
	int e = 0;

	if (nl > sizeof(sun.sun_path) - 1) {
		report(V_SKIP, "name too long for an abstract socket");
		return;
	}
	memcpy(sun.sun_path + 1, name, nl); /* sun_path[0] = '\0': the abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + nl);
	for (size_t i = 0; i < SBX_ARRAY_LEN(types); i++) {
		cleanup_close int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, len) == 0) {
			report(V_ESCAPE, "connected to @%s", name);
			return;
		}
		e = errno;
		if (e != EPROTOTYPE)
			break;
	}
	report(V_OK, "cannot connect to @%s (%s)", name, ename(e));
}

/* ---- host facts given on the command line ---- */

static void check_secret(const char *path)
{
	char via[4200];
	int e;

	if (path_exists(path)) {
		ssize_t n = read_some(path);
		report(V_ESCAPE, "%s is visible%s", path, n > 0 ? " and readable" : n == 0 ? " (empty)" : "");
		return;
	}
	snprintf(via, sizeof(via), "/proc/1/root%s", path);
	e = try_read(via);
	if (e == 0)
		report(V_ESCAPE, "readable through %s", via);
	else
		report(V_OK, "not visible (%s), not through /proc/1/root either (%s)", ename(ENOENT), ename(e));
}

/* Does a process's command line contain the marker, other than as our own argument? */
static bool cmdline_has_marker(pid_t pid)
{
	char path[64], buf[65536];
	const size_t ml = strlen(opt.host_marker);
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = sbx_read_all(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	for (const char *p = buf; (p = strstr(p, opt.host_marker)); p += ml) {
		static const char flag[] = "--host-marker";
		size_t before = (size_t)(p - buf);
		/* "--host-marker STR" or "--host-marker=STR": the probe's own arguments */
		if (before > sizeof(flag) - 1 && strncmp(p - sizeof(flag), flag, sizeof(flag) - 1) == 0 &&
		    (p[-1] == ' ' || p[-1] == '='))
			continue;
		return true;
	}
	return false;
}

static void check_host_process(void)
{
	DIR *d;
	struct dirent *de;
	int seen = 0, found = 0;

	if (!opt.host_marker) {
		report(V_SKIP, "no --host-marker given");
		return;
	}
	d = opendir("/proc");
	if (!d) {
		report(V_OK, "/proc is not visible (%s)", ename(errno));
		return;
	}
	while ((de = readdir(d))) {
		int64_t pid;
		if (sbx_parse_i64(de->d_name, 1, INT32_MAX, &pid) < 0)
			continue;
		seen++;
		if (cmdline_has_marker((pid_t)pid)) {
			report(V_ESCAPE, "process %lld runs with \"%s\" in its command line", (long long)pid,
			       opt.host_marker);
			found++;
		}
	}
	closedir(d);
	if (!found)
		report(V_OK, "none of the %d visible processes is the host process", seen);
}

static void check_host_pid(void)
{
	pid_t pid = (pid_t)opt.host_pid;
	long r;
	int e;

	if (!opt.host_pid) {
		report(V_SKIP, "no --host-pid given");
		return;
	}
	r = kill(pid, 0);
	e = errno;
	if (r < 0 && e == ESRCH) {
		report(V_OK, "kill(%d, 0): no such process", (int)pid);
	} else if (opt.host_marker && !cmdline_has_marker(pid)) {
		/* The sandbox's own PID namespace can have a process with the same number. */
		report(V_OK, "pid %d exists here but is not the host process (%s)", (int)pid,
		       r == 0 ? "signalable" : ename(e));
	} else if (r == 0) {
		report(V_ESCAPE, "kill(%d, 0) succeeded", (int)pid);
	} else {
		report(V_OK, "kill(%d, 0) failed (%s)", (int)pid, ename(e));
	}
}

/* --ro: every kind of modification must fail. What does get through is undone at once. */

/* Puts back a file that an unlink should not have been able to remove. */
static void restore_file(const char *path, const struct stat *st, const char *data, ssize_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 07777);

	if (fd < 0)
		return;
	if (len > 0)
		(void)!sbx_write_all(fd, data, (size_t)len);
	(void)!fchown(fd, st->st_uid, st->st_gid);
	close(fd);
}

/* chmod and utime to the values it already has, rename away and back, unlink (restored): each
 * proves a right without changing anything for good. */
static void ro_modify(const char *path, const struct stat *st)
{
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	char moved[4200];
	cleanup_free char *data = NULL;
	ssize_t len = -1;

	if (!S_ISLNK(st->st_mode) && chmod(path, st->st_mode & 07777) == 0)
		report_as(V_ESCAPE, "chmod", path, "chmod succeeded (mode unchanged)");
	else
		report_as(V_OK, "chmod", path, "chmod: blocked (%s)", ename(errno));
	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) == 0)
		report_as(V_ESCAPE, "utime", path, "utimensat succeeded (times unchanged)");
	else
		report_as(V_OK, "utime", path, "utimensat: blocked (%s)", ename(errno));

	snprintf(moved, sizeof(moved), "%s.%smoved", path, tmp_prefix + 1);
	if (rename(path, moved) == 0) {
		rename(moved, path);
		report_as(V_ESCAPE, "rename", path, "renamed (and renamed back)");
		return;
	}
	report_as(V_OK, "rename", path, "rename: blocked (%s)", ename(errno));
	if (!S_ISREG(st->st_mode) || st->st_size > (1 << 20)) {
		report_as(V_OK, "unlink", path, "not attempted: cannot be restored, and rename was blocked");
		return;
	}
	data = malloc((size_t)st->st_size + 1);
	if (data) {
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0) {
			len = sbx_read_all(fd, data, (size_t)st->st_size);
			close(fd);
		}
	}
	if (len != st->st_size) {
		report_as(V_OK, "unlink", path, "not attempted: cannot keep a copy, and rename was blocked");
		return;
	}
	if (unlink(path) == 0) {
		restore_file(path, st, data, len);
		report_as(V_ESCAPE, "unlink", path, "unlinked (and restored)");
	} else {
		report_as(V_OK, "unlink", path, "unlink: blocked (%s)", ename(errno));
	}
}

static void check_ro(const char *path)
{
	char child[4200];
	struct stat st;
	int fd;

	if (lstat(path, &st) < 0) {
		report(V_FAIL, "%s does not exist (%s)", path, ename(errno));
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		DIR *d;
		struct dirent *de;

		snprintf(child, sizeof(child), "%s/%screate", path, tmp_prefix);
		fd = open(child, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			close(fd);
			unlink(child);
			report_as(V_ESCAPE, "create", NULL, "created a file");
		} else {
			report_as(V_OK, "create", NULL, "create: blocked (%s)", ename(errno));
		}
		if (mkdir(child, 0700) == 0) {
			rmdir(child);
			report_as(V_ESCAPE, "mkdir", NULL, "created a directory");
		} else {
			report_as(V_OK, "mkdir", NULL, "mkdir: blocked (%s)", ename(errno));
		}
		if (symlink("/", child) == 0) {
			unlink(child);
			report_as(V_ESCAPE, "symlink", NULL, "created a symlink");
		} else {
			report_as(V_OK, "symlink", NULL, "symlink: blocked (%s)", ename(errno));
		}
		/* what is already there: its attributes, and whether it can be moved or removed */
		d = opendir(path);
		while (d && (de = readdir(d))) {
			struct stat cst;
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
			if (lstat(child, &cst) == 0) {
				if (S_ISREG(cst.st_mode)) {
					fd = open(child, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
					if (fd >= 0)
						close(fd);
					if (fd >= 0)
						report_as(V_ESCAPE, "write", child, "opened for writing (nothing written)");
					else
						report_as(V_OK, "write", child, "open for writing: blocked (%s)", ename(errno));
				}
				ro_modify(child, &cst);
			}
			break;
		}
		if (d)
			closedir(d);
		fd = -1;
	} else {
		fd = open(path, O_WRONLY | O_APPEND | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			report_as(V_ESCAPE, "write", NULL, "opened for writing (nothing written)");
		} else {
			report_as(V_OK, "write", NULL, "open for writing: blocked (%s)", ename(errno));
		}
		if (S_ISREG(st.st_mode) && truncate(path, st.st_size) == 0)
			report_as(V_ESCAPE, "truncate", NULL, "truncate to its own size succeeded");
		else if (S_ISREG(st.st_mode))
			report_as(V_OK, "truncate", NULL, "truncate: blocked (%s)", ename(errno));
		ro_modify(path, &st);
		return;
	}
	/* the directory's own attributes (not its name: its parent may be writable) */
	{
		struct timespec ts[2] = {st.st_atim, st.st_mtim};
		if (chmod(path, st.st_mode & 07777) == 0)
			report_as(V_ESCAPE, "chmod", NULL, "chmod succeeded (mode unchanged)");
		else
			report_as(V_OK, "chmod", NULL, "chmod: blocked (%s)", ename(errno));
		if (utimensat(AT_FDCWD, path, ts, 0) == 0)
			report_as(V_ESCAPE, "utime", NULL, "utimensat succeeded (times unchanged)");
		else
			report_as(V_OK, "utime", NULL, "utimensat: blocked (%s)", ename(errno));
	}
}

static int try_create_in(const char *path, char *created, size_t len)
{
	struct stat st;
	int fd;

	if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
		created[0] = '\0';
		fd = open(path, O_WRONLY | O_APPEND | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	} else {
		snprintf(created, len, "%s/%swrite", path, tmp_prefix);
		fd = open(created, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return errno;
	close(fd);
	if (created[0])
		unlink(created);
	return 0;
}

static void check_writable(const char *path)
{
	char created[4200];
	int e = try_create_in(path, created, sizeof(created));

	if (e == 0)
		report(V_OK, "writable, as it must be");
	else
		report(V_FAIL, "cannot write (%s), but this path must be writable", ename(e));
}

static void check_no_write(const char *path)
{
	char created[4200];
	int e = try_create_in(path, created, sizeof(created));

	if (e == 0)
		report(V_ESCAPE, "wrote to %s", path);
	else
		report(V_OK, "write: blocked (%s)", ename(e));
}

static void check_symlink(const char *path)
{
	DIR *d;
	int e = try_read(path);

	if (e == EISDIR || e == 0) {
		d = opendir(path);
		if (d || e == 0) {
			if (d)
				closedir(d);
			report(V_ESCAPE, "read through the symlink");
			return;
		}
		e = errno;
	}
	report(V_OK, "cannot read through it (%s)", ename(e));
}

/* --pids: fork until the limit bites; every child is killed and reaped before returning. */
static void check_pids(void)
{
	cleanup_free pid_t *kids = NULL;
	int64_t made = 0;
	int e = 0;

	if (!opt.pids) {
		report(V_SKIP, "no --pids given");
		return;
	}
	kids = calloc((size_t)opt.pids, sizeof(*kids));
	if (!kids) {
		report(V_FAIL, "out of memory");
		return;
	}
	for (; made < opt.pids; made++) {
		pid_t pid = fork();
		if (pid < 0) {
			e = errno;
			break;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
		kids[made] = pid;
	}
	for (int64_t i = 0; i < made; i++)
		kill(kids[i], SIGKILL);
	for (int64_t i = 0; i < made; i++)
		while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
			;
	if (made == opt.pids)
		report(V_ESCAPE, "created all %lld processes", (long long)made);
	else
		report(V_OK, "fork failed after %lld of %lld processes (%s)", (long long)made, (long long)opt.pids,
		       ename(e));
}

/* --memory: a child allocates and touches the amount; it must be stopped. */
static void check_memory(void)
{
	const int timeout_ms = 25000;
	siginfo_t si;
	pid_t pid;

	if (!opt.memory) {
		report(V_SKIP, "no --memory given");
		return;
	}
	pid = fork();
	if (pid < 0) {
		report(V_OK, "fork failed (%s)", ename(errno));
		return;
	}
	if (pid == 0) {
		unsigned char *p = mmap(NULL, opt.memory, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		long page = sysconf(_SC_PAGESIZE);
		if (p == MAP_FAILED)
			_exit(3);
		for (uint64_t off = 0; off < opt.memory; off += (uint64_t)page)
			p[off] = 1;
		_exit(0);
	}
	if (wait_exit(pid, timeout_ms, &si) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		report(V_ESCAPE, "still allocating after %d s: the limit does not stop it", timeout_ms / 1000);
		return;
	}
	if (si.si_code == CLD_EXITED && si.si_status == 0)
		report(V_ESCAPE, "allocated and touched %" PRIu64 " bytes", opt.memory);
	else if (si.si_code == CLD_EXITED && si.si_status == 3)
		report(V_OK, "the allocation was refused (ENOMEM)");
	else if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED)
		report(V_OK, "the allocating process was killed (%s)", sigabbrev_np(si.si_status) ?: "signal");
	else
		report(V_OK, "the allocating process ended with status %d", si.si_status);
}

/* ---- the check table ---- */

struct check {
	const char *name;
	void (*fn)(void);
	void (*fn_arg)(const char *arg); /* instead of fn, for checks run on an object */
	const char *arg;
	unsigned timeout_s; /* 0: DEFAULT_TIMEOUT_S */
};

#define CHECK(n, f) {.name = (n), .fn = (f)}
#define CHECK_ON(n, f, a) {.name = (n), .fn_arg = (f), .arg = (a)}
#define CHECK_SLOW(n, f, t) {.name = (n), .fn = (f), .timeout_s = (t)}
#define CHECK_ON_SLOW(n, f, a, t) {.name = (n), .fn_arg = (f), .arg = (a), .timeout_s = (t)}

/* Network checks make up to three attempts of CONNECT_TIMEOUT_MS + ANSWER_TIMEOUT_MS. */
#define NET_TIMEOUT_S 5

static const struct check builtin_checks[] = {
	/* credentials */
	CHECK("caps", check_caps),
	CHECK("no-new-privs", check_nnp),
	CHECK("seccomp", check_seccomp_mode),
	CHECK("uid", check_uid),
	/* mounts, root, namespaces, other processes */
	CHECK("mount-tmpfs", check_mount_tmpfs),
	CHECK("umount-proc", check_umount_proc),
	CHECK("pivot-root", check_pivot_root),
	CHECK("chroot", check_chroot),
	CHECK("unshare-user", check_unshare_user),
	CHECK("unshare-mnt-net", check_unshare_mnt_net),
	CHECK("setns", check_setns),
	CHECK("clone-newuser", check_clone_newuser),
	CHECK("ptrace-pid1", check_ptrace),
	CHECK("signal-pid1", check_signal_pid1),
	CHECK("proc1-environ", check_proc1_environ),
	CHECK("proc1-mem", check_proc1_mem),
	CHECK("personality", check_personality),
	/* kernel interfaces */
	CHECK("init-module", check_init_module),
	CHECK("finit-module", check_finit_module),
	CHECK("delete-module", check_delete_module),
	CHECK("kexec-load", check_kexec_load),
	CHECK("kexec-file-load", check_kexec_file_load),
	CHECK("bpf-map-create", check_bpf_map),
	CHECK("bpf-prog-load", check_bpf_prog),
	CHECK("perf-event-open", check_perf_event_open),
	CHECK("keyctl", check_keyctl),
	CHECK("add-key", check_add_key),
	CHECK("userfaultfd", check_userfaultfd),
	CHECK("open-by-handle", check_open_by_handle),
	CHECK("io-uring", check_io_uring),
	/* sockets and terminals */
	CHECK("socket-packet", check_socket_packet),
	CHECK("socket-raw", check_socket_raw),
	CHECK("socket-ping", check_socket_ping),
	CHECK("socket-ping6", check_socket_ping6),
	CHECK("tiocsti-stdin", check_tiocsti_stdin),
	CHECK("tiocsti-tty", check_tiocsti_tty),
	CHECK("tiocsti-pty", check_tiocsti_pty),
	/* devices, /proc, /sys, cgroups */
	CHECK_ON("mknod", check_mknod, "c1:1"),
	CHECK_ON("mknod", check_mknod, "b8:0"),
	CHECK_ON("dev-open", check_dev_open, "/dev/mem"),
	CHECK_ON("dev-open", check_dev_open, "/dev/kmem"),
	CHECK_ON("dev-open", check_dev_open, "/dev/port"),
	CHECK_ON("dev-open", check_dev_open, "/dev/sda"),
	CHECK_ON("dev-open", check_dev_open, "/dev/vda"),
	CHECK_ON("dev-open", check_dev_open, "/dev/nvme0n1"),
	CHECK_ON("dev-open", check_dev_open, "/dev/kvm"),
	CHECK_ON("dev-open", check_dev_open, "/dev/kmsg"),
	CHECK_ON("dev-open", check_dev_open, "/dev/net/tun"),
	CHECK_ON("read", check_read_file, "/proc/kcore"),
	CHECK_ON("write", check_open_write, "/proc/sysrq-trigger"),
	CHECK_ON("write", check_open_write, "/proc/sys/kernel/hostname"),
	CHECK_ON("write", check_open_write, "/proc/sys/kernel/core_pattern"),
	CHECK_ON("write", check_open_write, "/sys/kernel/uevent_helper"),
	CHECK("cgroup-mkdir", check_cgroup_mkdir),
	CHECK("cgroup-limits", check_cgroup_limits),
	/* host files and sockets */
	CHECK_ON("unix-connect", check_unix_connect, "/var/run/docker.sock"),
	CHECK_ON("unix-connect", check_unix_connect, "/run/docker.sock"),
	CHECK_ON("host-path", check_absent, "/root/.ssh"),
	CHECK_ON("host-path", check_absent, "/run/user"),
	CHECK("host-home", check_home),
	CHECK_ON("host-file", check_unreadable, "/etc/shadow"),
	CHECK("ssh-host-key", check_ssh_host_keys),
	CHECK_ON("hardlink", check_hardlink, "/etc/passwd"),
	CHECK("symlink-proc1-root", check_symlink_proc1_root),
	/* network */
	CHECK_ON_SLOW("net-tls", check_tcp_tls, "1.1.1.1:443", NET_TIMEOUT_S),
	CHECK_ON_SLOW("net-tls", check_tcp_tls, "[2606:4700::1111]:443", NET_TIMEOUT_S),
	CHECK_ON_SLOW("net6-tcp", check_tcp_service, "[2001:4860:4860::8888]:53", NET_TIMEOUT_S),
	CHECK_ON("net-udp", check_udp_public, "8.8.8.8:123"),
	CHECK_ON("net-udp", check_udp_public, "1.1.1.1:443"),
	CHECK_ON("net-udp", check_udp_public, "[2606:4700:4700::1111]:443"),
	CHECK_ON("icmp-echo", check_icmp_echo, "8.8.8.8"),
	CHECK_ON("icmp-echo", check_icmp_echo, "1.1.1.1"),
	CHECK_ON("icmp-echo", check_icmp_echo, "2001:4860:4860::8888"),
	CHECK_ON_SLOW("dns-udp", check_dns_udp, "8.8.8.8:53", NET_TIMEOUT_S),
	CHECK_ON_SLOW("dns-udp", check_dns_udp, "[2001:4860:4860::8888]:53", NET_TIMEOUT_S),
	CHECK_ON_SLOW("dns-tcp", check_dns_tcp, "8.8.8.8:53", NET_TIMEOUT_S),
	CHECK_ON_SLOW("dns-tcp", check_dns_tcp, "[2001:4860:4860::8888]:53", NET_TIMEOUT_S),
	CHECK("interfaces", check_interfaces),
	/* host facts from the command line (each reports "skip" when its option is absent) */
	CHECK("host-process", check_host_process),
	CHECK("host-pid", check_host_pid),
};

/* Checks run once per value of a repeatable option. */
static const struct {
	const char *name;
	void (*fn)(const char *arg);
	const struct strv *args;
	const char *option;
	unsigned timeout_s;
} option_checks[] = {
	{"secret", check_secret, &opt.secret, "--secret", 0},
	{"hardlink", check_hardlink, &opt.secret, "--secret", 0},
	{"tcp", check_tcp_service, &opt.tcp, "--tcp", NET_TIMEOUT_S},
	{"tcp6", check_tcp_service, &opt.tcp6, "--tcp6", NET_TIMEOUT_S},
	{"udp", check_udp_service, &opt.udp, "--udp", NET_TIMEOUT_S},
	{"dns-udp", check_dns_udp, &opt.dns, "--dns", NET_TIMEOUT_S},
	{"dns-tcp", check_dns_tcp, &opt.dns, "--dns", NET_TIMEOUT_S},
	{"dns-tunnel", check_dns_tunnel, &opt.dns_tunnel, "--dns-tunnel", NET_TIMEOUT_S},
	{"abstract", check_abstract, &opt.abstract, "--abstract", 0},
	{"ro", check_ro, &opt.ro, "--ro", 0},
	{"writable", check_writable, &opt.writable, "--writable", 0},
	{"no-write", check_no_write, &opt.no_write, "--no-write", 0},
	{"symlink", check_symlink, &opt.symlink, "--symlink", 0},
};

/* Resource limits last: they briefly exhaust what the other checks need. */
static const struct check final_checks[] = {
	CHECK_SLOW("pids", check_pids, 60),
	CHECK_SLOW("memory", check_memory, 40),
};

/* ---- output (parent) ---- */

static int n_escape, n_fail, n_results;

static void json_string(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\u%04x", *p); /* also keeps non-UTF-8 paths valid JSON */
		else
			putchar(*p);
	}
	putchar('"');
}

static void emit(enum verdict v, const char *check, const char *detail)
{
	if (v == V_ESCAPE)
		n_escape++;
	else if (v == V_FAIL)
		n_fail++;
	if (opt.json) {
		printf("%s\n  {\"check\": ", n_results ? "," : "");
		json_string(check);
		printf(", \"result\": \"%s\", \"detail\": ", verdict_name[v]);
		json_string(detail);
		printf("}");
	} else {
		printf("%s %s %s\n", verdict_name[v], check, detail);
	}
	n_results++;
	fflush(stdout);
}

/* Tabs and line breaks would break the line format; a check name is also one word. */
static void flatten(char *s, char with)
{
	for (; *s; s++)
		if (*s == '\t' || *s == '\n' || *s == '\r' || (with == '_' && *s == ' '))
			*s = with;
}

/* Child: one line "<verdict>\t<check>\t<detail>\n" on the result pipe (a single write below
 * PIPE_BUF, so lines from a check's own children never interleave). Parent: printed directly. */
static void put_result(enum verdict v, const char *check, const char *detail)
{
	char c[320], d[DETAIL_MAX], line[DETAIL_MAX + 400];
	int n;

	sbx_strlcpy(c, check, sizeof(c));
	flatten(c, '_');
	if (result_fd < 0) {
		emit(v, c, detail);
		return;
	}
	sbx_strlcpy(d, detail, sizeof(d));
	flatten(d, ' ');
	n = snprintf(line, sizeof(line), "%d\t%s\t%s\n", (int)v, c, d);
	if (n > 0 && (size_t)n < sizeof(line))
		(void)!write(result_fd, line, (size_t)n);
}

/* Parses one line from a check's child and prints it. */
static void emit_line(char *line)
{
	char *check = strchr(line, '\t'), *detail;
	int v = line[0] - '0';

	if (!check || !(detail = strchr(check + 1, '\t')) || v < V_OK || v > V_SKIP) {
		emit(V_FAIL, "probe", "malformed result from a check");
		return;
	}
	*check++ = '\0';
	*detail++ = '\0';
	emit((enum verdict)v, check, detail);
}

/* ---- running the checks (parent) ---- */

/* Kills and reaps whatever a check left behind; the probe is their subreaper. */
static void reap_strays(void)
{
	char path[64], buf[8192];
	uint64_t deadline = sbx_monotonic_ms() + 2000;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)main_pid);
	if (read_small(path, buf, sizeof(buf)) > 0) {
		for (char *p = buf, *end; *p; p = end) {
			long pid = strtol(p, &end, 10);
			if (end == p)
				break;
			if (pid > 0)
				kill((pid_t)pid, SIGKILL);
		}
	}
	for (;;) {
		pid_t r = waitpid(-1, NULL, WNOHANG);
		if (r > 0)
			continue;
		if (r < 0 || ms_left(deadline) == 0)
			break;
		usleep(5000);
	}
}

static void run_check(const char *name, void (*fn)(void), void (*fn_arg)(const char *), const char *arg,
		      unsigned timeout_s)
{
	char buf[65536], label[320];
	size_t have = 0;
	uint64_t deadline;
	bool timed_out = false;
	int p[2], st = 0, lines = 0;
	pid_t pid;

	snprintf(label, sizeof(label), "%s%s%s", name, arg ? ":" : "", arg ? arg : "");
	if (pipe2(p, O_CLOEXEC) < 0) {
		emit(V_FAIL, label, "cannot create a pipe");
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		emit(V_FAIL, label, "cannot fork");
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		close(p[0]);
		result_fd = p[1];
		cur_name = name;
		cur_arg = arg;
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* When a check exhausts memory (--memory, --pids), the OOM killer must pick the
		 * check, not the probe that reports on it; raising one's own score needs no privilege. */
		sbx_write_str_at(AT_FDCWD, "/proc/self/oom_score_adj", "1000");
		if (fn)
			fn();
		else
			fn_arg(arg);
		_exit(0);
	}
	setpgid(pid, pid); /* also here: whichever of the two runs first */
	close(p[1]);

	deadline = sbx_monotonic_ms() + 1000ULL * (timeout_s ? timeout_s : DEFAULT_TIMEOUT_S);
	for (;;) {
		char *nl;
		ssize_t n;
		int r = wait_fd(p[0], POLLIN, ms_left(deadline));

		if (r == 0) {
			timed_out = true;
			break;
		}
		n = read(p[0], buf + have, sizeof(buf) - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			*nl = '\0';
			emit_line(buf);
			lines++;
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have + 1);
		}
		if (have == sizeof(buf) - 1)
			have = 0; /* an absurdly long line: drop it */
	}
	close(p[0]);
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	reap_strays();

	if (timed_out)
		emit(V_OK, label, "no further answer within the watchdog's time; killed (a blocking call never returned)");
	else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)
		emit(V_OK, label, "killed by SIGSYS: the system call was refused by seccomp");
	else if (lines)
		; /* it said what it had to say (our SIGKILL above may have met it on its way out) */
	else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
		emit(V_OK, label, "killed before it could report, not by the probe: the OOM killer under the memory limit");
	else if (WIFSIGNALED(st))
		emit(V_FAIL, label, "the check crashed");
	else
		emit(V_FAIL, label, "the check reported nothing");
}

/* Removes the probe's scratch files from a directory, whatever became of the check that made
 * them. */
static void sweep(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[4200];

		if (!sbx_str_has_prefix(de->d_name, tmp_prefix))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		umount2(path, MNT_DETACH); /* the tmpfs of mount-tmpfs, should it have stayed */
		if (unlink(path) < 0)
			rmdir(path);
	}
	closedir(d);
}

/* ---- command line ---- */

static void __attribute__((noreturn)) usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void usage(const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fprintf(stderr, "sbx-probe: ");
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fprintf(stderr, "\n");
	}
	fprintf(stderr,
		"usage: sbx-probe [--json] [--secret PATH]... [--host-pid PID] [--host-marker STR]\n"
		"                 [--tcp HOST:PORT]... [--tcp6 [IPV6]:PORT]... [--tcp-banner STR] [--udp HOST:PORT]...\n"
		"                 [--dns IP[:PORT]]... [--dns-allowed NAME]... [--dns-denied NAME]...\n"
		"                 [--dns-tunnel DOMAIN]...\n"
		"                 [--abstract NAME]... [--ro PATH]... [--writable PATH]... [--no-write PATH]...\n"
		"                 [--symlink PATH]... [--pids N] [--memory BYTES] [--expect-uid UID]\n"
		"                 [--allow-root-caps]\n"
		"Tries to escape the sandbox it runs in. Prints 'ok', 'ESCAPE', 'fail' or 'skip' per attempt;\n"
		"exits 0 when nothing escaped or failed, 1 otherwise, 2 on a usage error.\n");
	exit(2);
}

static void add_arg(struct strv *v, const char *option, const char *val)
{
	if (v->n >= MAX_ARGS)
		usage("too many %s options (at most %d)", option, MAX_ARGS);
	v->v[v->n++] = val;
}

enum {
	O_SECRET = 256, O_HOST_PID, O_HOST_MARKER, O_TCP, O_TCP6, O_TCP_BANNER, O_UDP, O_DNS, O_DNS_ALLOWED,
	O_DNS_DENIED, O_DNS_TUNNEL, O_ABSTRACT, O_RO, O_WRITABLE, O_NO_WRITE, O_SYMLINK, O_PIDS, O_MEMORY,
	O_EXPECT_UID, O_ALLOW_ROOT_CAPS, O_JSON, O_HELP,
};

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"secret", required_argument, NULL, O_SECRET},
		{"host-pid", required_argument, NULL, O_HOST_PID},
		{"host-marker", required_argument, NULL, O_HOST_MARKER},
		{"tcp", required_argument, NULL, O_TCP},
		{"tcp6", required_argument, NULL, O_TCP6},
		{"tcp-banner", required_argument, NULL, O_TCP_BANNER},
		{"udp", required_argument, NULL, O_UDP},
		{"dns", required_argument, NULL, O_DNS},
		{"dns-allowed", required_argument, NULL, O_DNS_ALLOWED},
		{"dns-denied", required_argument, NULL, O_DNS_DENIED},
		{"dns-tunnel", required_argument, NULL, O_DNS_TUNNEL},
		{"abstract", required_argument, NULL, O_ABSTRACT},
		{"ro", required_argument, NULL, O_RO},
		{"writable", required_argument, NULL, O_WRITABLE},
		{"no-write", required_argument, NULL, O_NO_WRITE},
		{"symlink", required_argument, NULL, O_SYMLINK},
		{"pids", required_argument, NULL, O_PIDS},
		{"memory", required_argument, NULL, O_MEMORY},
		{"expect-uid", required_argument, NULL, O_EXPECT_UID},
		{"allow-root-caps", no_argument, NULL, O_ALLOW_ROOT_CAPS},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	struct sockaddr_storage ss;
	sbx_err err = SBX_ERR_INIT;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_SECRET: add_arg(&opt.secret, "--secret", optarg); break;
		case O_HOST_MARKER:
			if (!*optarg)
				usage("--host-marker must not be empty");
			opt.host_marker = optarg;
			break;
		case O_HOST_PID:
			if (sbx_parse_i64(optarg, 1, INT32_MAX, &opt.host_pid) < 0)
				usage("--host-pid: not a process id: %s", optarg);
			break;
		case O_TCP:
		case O_UDP:
			if (!parse_hostport(optarg, 0, &ss))
				usage("%s: expected HOST:PORT with a numeric host, got %s", c == O_TCP ? "--tcp" : "--udp",
				      optarg);
			add_arg(c == O_TCP ? &opt.tcp : &opt.udp, c == O_TCP ? "--tcp" : "--udp", optarg);
			break;
		case O_TCP_BANNER:
			if (!*optarg)
				usage("--tcp-banner must not be empty");
			opt.tcp_banner = optarg;
			break;
		case O_TCP6:
			if (!parse_hostport(optarg, 0, &ss) || ss.ss_family != AF_INET6)
				usage("--tcp6: expected [IPV6]:PORT, got %s", optarg);
			add_arg(&opt.tcp6, "--tcp6", optarg);
			break;
		case O_DNS:
			if (!parse_hostport(optarg, 53, &ss))
				usage("--dns: expected an IP address with an optional port, got %s", optarg);
			add_arg(&opt.dns, "--dns", optarg);
			break;
		case O_DNS_ALLOWED:
		case O_DNS_DENIED:
			if (!dns_name_ok(optarg))
				usage("%s: not a DNS name (dotted labels of letters, digits, '-', '_'): %s",
				      c == O_DNS_ALLOWED ? "--dns-allowed" : "--dns-denied", optarg);
			add_arg(c == O_DNS_ALLOWED ? &opt.dns_allowed : &opt.dns_denied,
				c == O_DNS_ALLOWED ? "--dns-allowed" : "--dns-denied", optarg);
			break;
		case O_DNS_TUNNEL:
			if (!dns_name_ok(optarg) || strlen(optarg) > DNS_TUNNEL_DOMAIN_MAX)
				usage("--dns-tunnel: not a DNS name of at most %d bytes: %s", DNS_TUNNEL_DOMAIN_MAX, optarg);
			add_arg(&opt.dns_tunnel, "--dns-tunnel", optarg);
			break;
		case O_ABSTRACT: add_arg(&opt.abstract, "--abstract", optarg); break;
		case O_RO: add_arg(&opt.ro, "--ro", optarg); break;
		case O_WRITABLE: add_arg(&opt.writable, "--writable", optarg); break;
		case O_NO_WRITE: add_arg(&opt.no_write, "--no-write", optarg); break;
		case O_SYMLINK: add_arg(&opt.symlink, "--symlink", optarg); break;
		case O_PIDS:
			if (sbx_parse_i64(optarg, 1, 1000000, &opt.pids) < 0)
				usage("--pids: expected a number from 1 to 1000000, got %s", optarg);
			break;
		case O_MEMORY:
			if (sbx_parse_size(optarg, &opt.memory, &err) < 0 || opt.memory == 0)
				usage("--memory: %s", err.msg[0] ? err.msg : "must be more than 0");
			break;
		case O_EXPECT_UID:
			if (sbx_parse_i64(optarg, 0, UINT32_MAX - 1, &opt.expect_uid) < 0)
				usage("--expect-uid: not a uid: %s", optarg);
			break;
		case O_ALLOW_ROOT_CAPS: opt.allow_root_caps = true; break;
		case O_JSON: opt.json = true; break;
		case O_HELP: usage(NULL);
		default: usage("unknown option or missing value: %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage("unexpected argument: %s", argv[optind]);
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	main_pid = getpid();
	snprintf(tmp_prefix, sizeof(tmp_prefix), ".sbx-probe-%d-", (int)main_pid);
	/* Orphans of the checks come back to us, to be killed and reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGPIPE, SIG_IGN);
	if (opt.json)
		printf("[");

	for (size_t i = 0; i < SBX_ARRAY_LEN(builtin_checks); i++) {
		const struct check *c = &builtin_checks[i];
		run_check(c->name, c->fn, c->fn_arg, c->arg, c->timeout_s);
	}
	for (size_t i = 0; i < SBX_ARRAY_LEN(option_checks); i++) {
		const struct strv *args = option_checks[i].args;
		char why[64];

		if (!args->n) {
			snprintf(why, sizeof(why), "no %s given", option_checks[i].option);
			emit(V_SKIP, option_checks[i].name, why);
		}
		for (size_t j = 0; j < args->n; j++)
			run_check(option_checks[i].name, NULL, option_checks[i].fn, args->v[j],
				  option_checks[i].timeout_s);
	}
	for (size_t i = 0; i < SBX_ARRAY_LEN(final_checks); i++) {
		const struct check *c = &final_checks[i];
		run_check(c->name, c->fn, c->fn_arg, c->arg, c->timeout_s);
	}

	sweep(".");
	sweep("/tmp");
	for (size_t i = 0; i < opt.ro.n; i++)
		sweep(opt.ro.v[i]);
	for (size_t i = 0; i < opt.writable.n; i++)
		sweep(opt.writable.v[i]);
	for (size_t i = 0; i < opt.no_write.n; i++)
		sweep(opt.no_write.v[i]);

	if (opt.json)
		printf("\n]\n");
	else
		printf("# %d results: %d escaped, %d failed\n", n_results, n_escape, n_fail);
	return n_escape || n_fail ? 1 : 0;
}
