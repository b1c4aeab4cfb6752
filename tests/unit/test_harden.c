/* test_harden.c - capabilities, no_new_privs, Landlock and the real seccomp filter, each applied
 * in a forked child (they are irreversible), with the child's observations sent back over a pipe
 * and turned into TAP lines by the parent.
 *
 * harden.c belongs to the static sbx-init and is not in libsbxd.a: it is compiled in here. */
#include "../../src/init/harden.c"

#include <grp.h>
#include <linux/io_uring.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>

#include "daemon/seccomp_policy.h"
#include "tap.h"
#include "util.h"

/* ---- running a check in a child ---- */

static int child_out = -1; /* the pipe's write end, in the child */

/* In the child: one observation, "1 text" or "0 text". */
static void expect(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void expect(bool cond, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	line[0] = cond ? '1' : '0';
	line[1] = ' ';
	va_start(ap, fmt);
	n = vsnprintf(line + 2, sizeof(line) - 3, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	n = n + 2 > (int)sizeof(line) - 2 ? (int)sizeof(line) - 2 : n + 2;
	line[n++] = '\n';
	(void)!write(child_out, line, (size_t)n);
}

/* Asserts that a call returned -1 with errno `want` (the call is evaluated before errno is read). */
#define expect_errno(call, want, what)                                                              \
	do {                                                                                        \
		long r_ = (long)(call);                                                             \
		int e_ = errno;                                                                     \
		expect(r_ == -1 && e_ == (want), "%s fails with %s (got %ld, %s)", what, #want, r_, \
		       r_ == -1 ? strerror(e_) : "success");                                        \
	} while (0)

/* Runs fn in a child, turns its observations into TAP lines, returns its wait status. */
static int run_child(const char *label, void (*fn)(void *), void *arg)
{
	char buf[8192], *line, *nl;
	size_t have = 0;
	int p[2], status = 0;
	pid_t pid;
	ssize_t n;

	fflush(stdout);
	if (pipe(p) < 0 || (pid = fork()) < 0) {
		ok(0, "%s: cannot start a child: %s", label, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		child_out = p[1];
		fn(arg);
		_exit(0);
	}
	close(p[1]);
	while (have < sizeof(buf) - 1 && (n = read(p[0], buf + have, sizeof(buf) - 1 - have)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		have += (size_t)n;
	}
	buf[have] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	for (line = buf; (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = '\0';
		ok(line[0] == '1', "%s: %s", label, line + 2);
	}
	return status;
}

static bool child_exited_cleanly(const char *label, int status)
{
	return ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: child exited normally (status %#x)", label,
		  status);
}

/* The value of a "Name:\t..." line of /proc/self/status, or "" if there is none. */
static void status_field(const char *name, char *out, size_t outlen)
{
	char buf[8192], *p;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	size_t len = strlen(name);

	if (fd >= 0)
		close(fd);
	out[0] = '\0';
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, name, len) == 0 && p[len] == ':') {
			p += len + 1;
			p += strspn(p, " \t");
			sbx_strlcpy(out, p, outlen);
			out[strcspn(out, "\n")] = '\0';
			return;
		}
	}
}

static uint64_t status_hex(const char *name)
{
	char v[64];

	status_field(name, v, sizeof(v));
	return v[0] ? strtoull(v, NULL, 16) : UINT64_MAX;
}

/* ---- capabilities ---- */

static void child_caps_agent(void *arg)
{
	char err[256] = "";
	static const char *const sets[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};

	expect(sbx_harden_caps(false, err, sizeof(err)) == 0, "first call as root succeeds %s", err);
	expect(status_hex("CapBnd") == 0, "bounding set empty after the first call");
	expect(setgroups(0, NULL) == 0, "setgroups still possible");
	expect(setresgid(65534, 65534, 65534) == 0, "setresgid still possible");
	expect(setresuid(65534, 65534, 65534) == 0, "setresuid still possible");
	expect(sbx_harden_caps(false, err, sizeof(err)) == 0, "second call after the uid switch succeeds %s", err);
	for (size_t i = 0; i < SBX_ARRAY_LEN(sets); i++)
		expect(status_hex(sets[i]) == 0, "%s is zero", sets[i]);
	expect_errno(setresuid(0, 0, 0), EPERM, "becoming root again");
}

static void child_caps_late(void *arg)
{
	char err[256] = "";

	/* Without the first call, the bounding set can no longer be emptied: fail, don't pretend. */
	expect(setresuid(65534, 65534, 65534) == 0, "setresuid");
	expect(sbx_harden_caps(false, err, sizeof(err)) == -1, "a call without CAP_SETPCAP fails closed (%s)", err);
}

static void child_caps_root(void *arg)
{
	char err[256] = "";
	uint64_t mask = 0;

	for (size_t i = 0; i < sbx_root_caps_len; i++)
		mask |= 1ULL << sbx_root_caps[i];
	expect(sbx_harden_caps(true, err, sizeof(err)) == 0, "root_caps succeeds %s", err);
	expect(status_hex("CapBnd") == mask, "bounding set is exactly the root set (%#llx)",
	       (unsigned long long)status_hex("CapBnd"));
	expect(status_hex("CapEff") == mask, "effective set is exactly the root set");
	expect(status_hex("CapPrm") == mask, "permitted set is exactly the root set");
	expect(status_hex("CapAmb") == 0, "ambient set is empty");
	expect(!(status_hex("CapEff") & (1ULL << CAP_SYS_ADMIN)), "no CAP_SYS_ADMIN");
}

static void test_caps(void)
{
	if (geteuid() != 0) {
		ok(1, "caps # SKIP not root");
		return;
	}
	child_exited_cleanly("caps agent", run_child("caps agent", child_caps_agent, NULL));
	child_exited_cleanly("caps late", run_child("caps late", child_caps_late, NULL));
	child_exited_cleanly("caps root", run_child("caps root", child_caps_root, NULL));
}

/* ---- no_new_privs ---- */

static void child_nnp(void *arg)
{
	char err[256] = "", v[16];

	expect(sbx_harden_nnp(err, sizeof(err)) == 0, "sbx_harden_nnp %s", err);
	status_field("NoNewPrivs", v, sizeof(v));
	expect(strcmp(v, "1") == 0, "NoNewPrivs is 1 (got '%s')", v);
}

/* ---- Landlock ---- */

struct ll_dirs {
	char inside[64], outside[64];
};

static void child_landlock(void *arg)
{
	const struct ll_dirs *d = arg;
	const char *rw[] = {d->inside};
	const char *dev[] = {"/dev/null", "/dev/sbx-no-such-device"};
	char err[256] = "", path[128];
	int abi = -1, fd;

	expect(sbx_harden_nnp(err, sizeof(err)) == 0, "nnp");
	expect(sbx_harden_landlock(rw, 1, dev, 2, 1, &abi, err, sizeof(err)) == 0, "landlock applies %s", err);
	expect(abi == sbx_landlock_abi(), "abi_used is the running ABI (%d)", abi);

	snprintf(path, sizeof(path), "%s/f", d->inside);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	expect(fd >= 0 && write(fd, "x", 1) == 1, "create and write inside the writable dir");
	if (fd >= 0)
		close(fd);
	expect(unlink(path) == 0, "unlink inside the writable dir");
	snprintf(path, sizeof(path), "%s/f", d->outside);
	expect_errno(open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), EACCES, "create outside");
	snprintf(path, sizeof(path), "%s/sub", d->outside);
	expect_errno(mkdir(path, 0700), EACCES, "mkdir outside");
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	expect(fd >= 0 && write(fd, "x", 1) == 1, "write to /dev/null (a dev path)");
	if (fd >= 0)
		close(fd);
	/* reads are not handled */
	fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	expect(fd >= 0, "read outside still works");
	if (fd >= 0)
		close(fd);
	/* Signals are deliberately not scoped (see harden.c): execs of one sandbox signal each other. */
	expect(kill(getppid(), 0) == 0, "signals are not scoped by Landlock");
}

static void child_landlock_errors(void *arg)
{
	const char *missing[] = {"/nonexistent/sbx-test"};
	char err[256] = "";
	int abi = -1;

	expect(sbx_harden_nnp(err, sizeof(err)) == 0, "nnp");
	err[0] = '\0';
	expect(sbx_harden_landlock(missing, 1, NULL, 0, 1, &abi, err, sizeof(err)) == -1 &&
		       strstr(err, "/nonexistent/sbx-test") != NULL,
	       "a missing writable path is an error naming it (%s)", err);
	err[0] = '\0';
	expect(sbx_harden_landlock(NULL, 0, NULL, 0, 99, &abi, err, sizeof(err)) == -1 && errno == EOPNOTSUPP,
	       "min_abi above the kernel's fails (%s)", err);
	expect(abi == 0, "abi_used stays 0 on failure");
}

static void test_landlock(void)
{
	struct ll_dirs d;

	if (sbx_landlock_abi() < 1) {
		ok(1, "landlock # SKIP Landlock not available");
		return;
	}
	sbx_strlcpy(d.inside, "/tmp/sbx-ll-in-XXXXXX", sizeof(d.inside));
	sbx_strlcpy(d.outside, "/tmp/sbx-ll-out-XXXXXX", sizeof(d.outside));
	if (!mkdtemp(d.inside) || !mkdtemp(d.outside)) {
		ok(0, "landlock: mkdtemp: %s", strerror(errno));
		return;
	}
	diag("Landlock ABI %d", sbx_landlock_abi());
	child_exited_cleanly("landlock", run_child("landlock", child_landlock, &d));
	child_exited_cleanly("landlock errors", run_child("landlock errors", child_landlock_errors, NULL));
	sbx_rm_rf(d.inside);
	sbx_rm_rf(d.outside);
}

/* ---- seccomp ---- */

static const struct sbx_bpf *filter;

static void install_filter(void)
{
	char err[256] = "";

	expect(sbx_harden_nnp(err, sizeof(err)) == 0, "nnp");
	expect(sbx_harden_seccomp(filter->insns, filter->len, err, sizeof(err)) == 0, "filter installs %s", err);
}

static void child_seccomp(void *arg)
{
	struct io_uring_params iop;
	struct sbx_clone_args ca;
	char c = 'x';
	int fd, tty;
	pid_t pid;

	install_filter();
	expect_errno(mount("none", "/mnt", "tmpfs", 0, NULL), EPERM, "mount");
	expect_errno(umount2("/proc", MNT_DETACH), EPERM, "umount2");
	expect_errno(unshare(CLONE_NEWUSER), EPERM, "unshare(CLONE_NEWUSER)");
	expect_errno(chroot("/"), EPERM, "chroot");
	expect_errno(socket(AF_PACKET, SOCK_RAW, 0), EPERM, "socket(AF_PACKET)");
	expect_errno(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), EPERM, "socket(AF_INET, SOCK_RAW)");
	expect_errno(socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW), EPERM, "socket(AF_INET6, SOCK_RAW)");
	expect_errno(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), EPERM, "ping socket");
	expect_errno(socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6), EPERM, "ping6 socket");
	expect_errno(socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT), EPERM, "netlink audit socket");
	/* The upper half of a register is ignored by the kernel; the filter must ignore it too. */
	expect_errno(syscall(SYS_socket, (1UL << 32) | AF_PACKET, SOCK_RAW, 0), EPERM,
		     "socket(AF_PACKET) with upper bits set");
	tty = open("/dev/null", O_RDWR | O_CLOEXEC);
	expect_errno(ioctl(tty, TIOCSTI, &c), EPERM, "ioctl(TIOCSTI)");
	expect_errno(syscall(SYS_ioctl, tty, (1UL << 32) | TIOCSTI, &c), EPERM, "ioctl(TIOCSTI) with upper bits set");
	expect_errno(ioctl(tty, TIOCLINUX, &c), EPERM, "ioctl(TIOCLINUX)");
	expect_errno(ioctl(tty, TIOCSETD, &c), EPERM, "ioctl(TIOCSETD)");
	expect_errno(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0), EPERM, "clone(CLONE_NEWUSER)");
	expect_errno(syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0), EPERM, "clone(CLONE_NEWNET)");
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	expect_errno(sbx_clone3(&ca), ENOSYS, "clone3");
	memset(&iop, 0, sizeof(iop));
	expect_errno(syscall(__NR_io_uring_setup, 1, &iop), EPERM, "io_uring_setup");
	expect_errno(syscall(SYS_bpf, 0, NULL, 0), EPERM, "bpf");
	expect_errno(syscall(SYS_keyctl, 0, 0, 0, 0, 0), EPERM, "keyctl");
	expect_errno(personality(0x0400000), EPERM, "personality(READ_IMPLIES_EXEC)");
	expect_errno(personality(ADDR_NO_RANDOMIZE), EPERM, "personality(ADDR_NO_RANDOMIZE)");
	expect_errno(personality(0x7), EPERM, "personality(7)");
	expect_errno(personality(0xfffffffe), EPERM, "personality(0xfffffffe)");

	/* what must keep working */
	expect(personality(0xffffffff) != -1, "personality query works");
	expect(personality(PER_LINUX32) != -1, "personality(PER_LINUX32) works");
	expect(personality(PER_LINUX) != -1, "personality(PER_LINUX) works");
	expect(getpid() > 0, "getpid works");
	fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	expect(fd >= 0, "open works");
	if (fd >= 0)
		close(fd);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	expect(fd >= 0, "socket(AF_INET, SOCK_STREAM) works");
	if (fd >= 0)
		close(fd);
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	expect(fd >= 0, "socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE) works");
	if (fd >= 0)
		close(fd);
	expect(ioctl(tty, FIONBIO, &(int){0}) == 0, "other ioctls work");
	close(tty);
	pid = fork();
	if (pid == 0)
		_exit(7);
	{
		int st = 0;
		expect(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7,
		       "fork works");
	}
}

static void child_x32(void *arg)
{
	install_filter();
	syscall(0x40000000 | 39); /* x32 getpid */
	expect(0, "an x32 system call returned");
}

#if defined(__x86_64__)
static void child_int80(void *arg)
{
	long ret = 20; /* i386 getpid */

	install_filter();
	__asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
	expect(0, "an i386 system call returned %ld", ret);
}
#endif

static void test_seccomp(void)
{
	struct sbx_bpf b = {0};
	sbx_err err = SBX_ERR_INIT;
	int st;

	ok(sbx_seccomp_build(&b, &err) == 0, "sbx_seccomp_build %s", err.msg);
	if (!b.insns)
		return;
	ok(b.len > 0 && b.len <= 4096, "filter has %zu instructions", b.len);
	ok(strstr(sbx_seccomp_summary(), "clone3") != NULL, "summary mentions clone3");
	filter = &b;

	child_exited_cleanly("seccomp", run_child("seccomp", child_seccomp, NULL));
	st = run_child("x32", child_x32, NULL);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "x32 system call kills with SIGSYS (status %#x)", st);
#if defined(__x86_64__)
	st = run_child("int80", child_int80, NULL);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "i386 int 0x80 kills with SIGSYS (status %#x)", st);
#endif

	sbx_bpf_free(&b);
	ok(b.insns == NULL && b.len == 0, "sbx_bpf_free resets");
	sbx_bpf_free(&b);
}

int main(void)
{
	test_caps();
	child_exited_cleanly("nnp", run_child("nnp", child_nnp, NULL));
	test_landlock();
	test_seccomp();
	return done_testing();
}
