/* sbx-init - PID 1 of a namespace sandbox.
 *
 * Started by sbxd with clone3() into new user, mount, PID, IPC, UTS and network namespaces, it
 * inherits two descriptors:
 *     fd 3  a connected SOCK_SEQPACKET socket to the daemon (initproto.h)
 *     fd 4  a bound, not yet listening, SOCK_SEQPACKET socket at a host path only the user can
 *           reach; a restarted daemon connects there to re-adopt this sandbox.
 * Its life:
 *   1. receive SETUP packets and build the filesystem view (mounts.c), set the host name, bring
 *      up loopback, enter a new cgroup namespace; answer READY or SETUP_FAILED;
 *   2. serve EXEC / SIGNAL / RESIZE / STOP / PING / WAIT, reap every process that ends (it is
 *      the sandbox's reaper), report exits of the processes it started;
 *   3. on STOP, or when told by the kernel that it must die, end everything and exit. When the
 *      last process of the PID namespace (init itself) exits, the kernel kills whatever is left.
 * It is made non-dumpable so nothing inside can ptrace it or read its descriptors or memory
 * through /proc, and it never acts on signals sent from inside the sandbox. */

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fdpass.h"
#include "initproto.h"
#include "mounts.h"
#include "netsetup.h"
#include "spawn.h"
#include "util.h"

#define CTL_FD 3
#define LISTEN_FD 4
#define MAX_EXECS 1024
#define MAX_SETUP_FDS 64
#define MAX_POLICY_PATHS 64

struct exec_entry {
	uint32_t id;
	pid_t pid;
	int master; /* pty master kept for TIOCSWINSZ, or -1 */
	bool exited;
	bool reported;
	int wstatus;
};

static struct {
	int ctl;
	int listen;
	int sigfd;
	bool listening;
	bool setup_started;
	bool ready;
	struct exec_entry execs[MAX_EXECS];
	size_t nexecs;
	int setup_fds[MAX_SETUP_FDS];
	size_t nsetup_fds;
	struct sbx_spawn_policy pol;
	const char *landlock_rw[MAX_POLICY_PATHS];
	const char *landlock_dev[MAX_POLICY_PATHS];
	void *bpf;
	char hostname[65];
	bool loopback;
	/* the network: the nftables batch from the daemon, and the proxy listeners made from it
	 * (kept open for the sandbox's life, handed to every daemon that asks) */
	uint8_t *nft;
	size_t nft_len;
	bool have_net;
	struct sbx_net_listeners net;
} st = {.ctl = CTL_FD, .listen = LISTEN_FD, .sigfd = -1};

/* Sends a message (READY, PONG) with the proxy listeners attached when there are any. */
static int send_with_listeners(sbx_buf *b)
{
	int fds[SBX_NET_NLISTENERS];
	const int all[SBX_NET_NLISTENERS] = {st.net.forward, st.net.transparent4, st.net.transparent6, st.net.dns};
	size_t n = 0;
	uint32_t mask = 0;

	if (st.have_net)
		for (size_t i = 0; i < SBX_NET_NLISTENERS; i++)
			if (all[i] >= 0) {
				fds[n++] = all[i];
				mask |= 1u << i;
			}
	if ((mask && sbx_msg_put_u32(b, SBX_A_NETFDS, mask) < 0) || sbx_msg_finish(b) < 0)
		return -1;
	return sbx_msg_send(st.ctl, b, fds, n);
}

static uint8_t pkt[SBX_MSG_MAX];

static void send_failure(uint16_t type, uint32_t id, int err, const char *msg, int stage)
{
	sbx_buf b;

	if (st.ctl < 0)
		return;
	sbx_buf_init(&b, SBX_MSG_MAX);
	if (sbx_msg_begin(&b, type, id) == 0 && (err == 0 || sbx_msg_put_u32(&b, SBX_A_ERRNO, (uint32_t)err) == 0) &&
	    sbx_msg_put_u32(&b, SBX_A_STAGE, (uint32_t)stage) == 0 &&
	    (!msg || sbx_msg_put_str(&b, SBX_A_STRING, msg) == 0) && sbx_msg_finish(&b) == 0)
		sbx_msg_send(st.ctl, &b, NULL, 0);
	sbx_buf_free(&b);
}

static void send_simple(uint16_t type, uint32_t id, int err, const char *msg)
{
	send_failure(type, id, err, msg, 0);
}

static void report_exit(struct exec_entry *e)
{
	sbx_buf b;

	if (st.ctl < 0 || e->reported)
		return;
	sbx_buf_init(&b, SBX_MSG_MAX);
	if (sbx_msg_begin(&b, SBX_MSG_EXIT, e->id) == 0 && sbx_msg_put_u32(&b, SBX_A_WSTATUS, (uint32_t)e->wstatus) == 0 &&
	    sbx_msg_finish(&b) == 0 && sbx_msg_send(st.ctl, &b, NULL, 0) == 0)
		e->reported = true;
	sbx_buf_free(&b);
}

static void forget_exec(size_t i)
{
	close_and_reset(st.execs[i].master);
	st.execs[i] = st.execs[--st.nexecs];
}

static struct exec_entry *find_exec(uint32_t id)
{
	for (size_t i = 0; i < st.nexecs; i++)
		if (st.execs[i].id == id)
			return &st.execs[i];
	return NULL;
}

static void reap(void)
{
	int ws;
	pid_t pid;

	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
		for (size_t i = 0; i < st.nexecs; i++) {
			struct exec_entry *e = &st.execs[i];
			if (e->pid != pid || e->exited)
				continue;
			e->exited = true;
			e->wstatus = ws;
			close_and_reset(e->master);
			report_exit(e);
			if (e->reported)
				forget_exec(i);
			break;
		}
	}
}

static void lo_up(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return;
	memset(&ifr, 0, sizeof(ifr));
	sbx_strlcpy(ifr.ifr_name, "lo", sizeof(ifr.ifr_name));
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
}

static char *dup_str(const struct sbx_attr *a)
{
	const char *s;

	if (sbx_attr_str(a, &s) < 0)
		return NULL;
	return strdup(s);
}

static int parse_op(const struct sbx_attr *a, struct sbx_mount_op *op)
{
	struct sbx_attr_iter it;
	struct sbx_attr x;
	uint32_t v;

	memset(op, 0, sizeof(*op));
	op->fd = -1;
	sbx_attr_nested(a, &it);
	while (sbx_attr_next(&it, &x)) {
		switch (x.type) {
		case SBX_OA_KIND: if (sbx_attr_u32(&x, &op->kind) < 0) return -1; break;
		case SBX_OA_FLAGS: if (sbx_attr_u32(&x, &op->flags) < 0) return -1; break;
		case SBX_OA_MODE: if (sbx_attr_u32(&x, &op->mode) < 0) return -1; break;
		case SBX_OA_SIZE: if (sbx_attr_u64(&x, &op->size) < 0) return -1; break;
		case SBX_OA_SRC: if (sbx_attr_str(&x, &op->src) < 0) return -1; break;
		case SBX_OA_DEST: if (sbx_attr_str(&x, &op->dest) < 0) return -1; break;
		case SBX_OA_UPPER: if (sbx_attr_str(&x, &op->upper) < 0) return -1; break;
		case SBX_OA_WORK: if (sbx_attr_str(&x, &op->work) < 0) return -1; break;
		case SBX_OA_DATA: op->data = x.data; op->data_len = x.len; break;
		case SBX_OA_UID: if (sbx_attr_u32(&x, &op->uid) < 0) return -1; op->has_owner = 1; break;
		case SBX_OA_GID: if (sbx_attr_u32(&x, &op->gid) < 0) return -1; op->has_owner = 1; break;
		case SBX_OA_FD:
			if (sbx_attr_u32(&x, &v) < 0 || v >= st.nsetup_fds)
				return -1;
			op->fd = st.setup_fds[v];
			break;
		default: break; /* unknown attributes are ignored for forward compatibility */
		}
	}
	return it.error ? -1 : 0;
}

static int add_path(const char **arr, size_t *n, const struct sbx_attr *a)
{
	char *s = dup_str(a);

	if (!s || *n >= MAX_POLICY_PATHS) {
		free(s);
		return -1;
	}
	arr[(*n)++] = s;
	return 0;
}

/* One SETUP packet: filesystem operations are applied as they arrive; the last packet
 * (flags == 0) completes the root and makes the sandbox ready. Returns 0, or -1 with errbuf. */
static int handle_setup(const struct sbx_msg_hdr *h, struct sbx_attr_iter *it, int *fds, size_t nfds, char *errbuf,
			size_t errlen)
{
	struct sbx_attr a;
	uint32_t v;

	for (size_t i = 0; i < nfds; i++) {
		if (st.nsetup_fds >= MAX_SETUP_FDS) {
			snprintf(errbuf, errlen, "too many mount descriptors");
			return -1;
		}
		st.setup_fds[st.nsetup_fds++] = fds[i];
	}
	if (!st.setup_started) {
		if (sbx_mounts_prepare(errbuf, errlen) < 0)
			return -1;
		st.setup_started = true;
	}
	while (sbx_attr_next(it, &a)) {
		switch (a.type) {
		case SBX_A_OP: {
			struct sbx_mount_op op;
			if (parse_op(&a, &op) < 0) {
				snprintf(errbuf, errlen, "malformed filesystem operation");
				return -1;
			}
			if (sbx_mounts_apply(&op, errbuf, errlen) < 0)
				return -1;
			break;
		}
		case SBX_A_HOSTNAME: {
			const char *s;
			if (sbx_attr_str(&a, &s) < 0)
				return -1;
			sbx_strlcpy(st.hostname, s, sizeof(st.hostname));
			break;
		}
		case SBX_A_BPF:
			if (a.len % 8 || a.len == 0 || a.len > 4096 * 8) {
				snprintf(errbuf, errlen, "malformed seccomp program");
				return -1;
			}
			free(st.bpf);
			st.bpf = malloc(a.len);
			if (!st.bpf)
				return -1;
			memcpy(st.bpf, a.data, a.len);
			st.pol.bpf = st.bpf;
			st.pol.bpf_len = a.len / 8;
			break;
		case SBX_A_LANDLOCK_RW:
			if (add_path(st.landlock_rw, &st.pol.n_landlock_rw, &a) < 0)
				return -1;
			break;
		case SBX_A_LANDLOCK_DEV:
			if (add_path(st.landlock_dev, &st.pol.n_landlock_dev, &a) < 0)
				return -1;
			break;
		case SBX_A_LANDLOCK_MIN_ABI:
			if (sbx_attr_u32(&a, &v) < 0)
				return -1;
			st.pol.landlock_min_abi = (int)v;
			break;
		case SBX_A_RLIMIT_NPROC:
			if (sbx_attr_u32(&a, &st.pol.rlimit_nproc) < 0)
				return -1;
			break;
		case SBX_A_NOFILE:
			if (sbx_attr_u32(&a, &st.pol.rlimit_nofile) < 0)
				return -1;
			break;
		case SBX_A_LOOPBACK:
			if (sbx_attr_u32(&a, &v) < 0)
				return -1;
			st.loopback = v != 0;
			break;
		case SBX_A_NFT:
			if (a.len == 0 || a.len > SBX_NET_BATCH_MAX) {
				snprintf(errbuf, errlen, "malformed network rules");
				return -1;
			}
			free(st.nft);
			if (!(st.nft = malloc(a.len)))
				return -1;
			memcpy(st.nft, a.data, a.len);
			st.nft_len = a.len;
			break;
		default:
			break;
		}
	}
	if (it->error) {
		snprintf(errbuf, errlen, "malformed setup message");
		return -1;
	}
	if (h->flags & 1)
		return 0; /* more packets follow */

	/* A cgroup namespace rooted at the cgroup the daemon has put us in by now. */
	if (unshare(CLONE_NEWCGROUP) < 0) {
		snprintf(errbuf, errlen, "cannot create a cgroup namespace: %s", strerror(errno));
		return -1;
	}
	if (sbx_mounts_finish(errbuf, errlen) < 0)
		return -1;
	for (size_t i = 0; i < st.nsetup_fds; i++)
		close(st.setup_fds[i]);
	st.nsetup_fds = 0;
	if (st.hostname[0] && sethostname(st.hostname, strlen(st.hostname)) < 0) {
		snprintf(errbuf, errlen, "cannot set the host name: %s", strerror(errno));
		return -1;
	}
	if (st.nft) {
		/* The only way out: rules that send every connection to the proxy, and the sockets
		 * the proxy serves. Any failure here fails the start (nothing runs half-networked). */
		if (sbx_net_setup(st.nft, st.nft_len, errbuf, errlen) < 0 ||
		    sbx_net_listeners(&st.net, SBX_NET_EXPLICIT_PORT, SBX_NET_TRANSPARENT_PORT, errbuf, errlen) < 0)
			return -1;
		st.have_net = true;
		free(st.nft);
		st.nft = NULL;
	} else if (st.loopback) {
		lo_up();
	}
	st.pol.landlock_rw = st.landlock_rw;
	st.pol.landlock_dev = st.landlock_dev;
	st.ready = true;
	prctl(PR_SET_NAME, "sbx-init", 0, 0, 0);
	return 0;
}

#define MAX_ARGS 4096
#define MAX_ENV 4096

static void handle_exec(const struct sbx_msg_hdr *h, struct sbx_attr_iter *it)
{
	struct sbx_spawn_req req = {.uid = 1000, .gid = 1000, .umask = 022};
	struct sbx_spawn_result res;
	cleanup_free char **argv = calloc(MAX_ARGS + 1, sizeof(char *));
	cleanup_free char **envp = calloc(MAX_ENV + 1, sizeof(char *));
	size_t argc = 0, envc = 0;
	struct sbx_attr a;
	uint32_t v;
	const char *s;
	sbx_buf b;

	if (!argv || !envp) {
		send_simple(SBX_MSG_EXEC_FAILED, h->id, ENOMEM, "out of memory");
		return;
	}
	if (!st.ready) {
		send_simple(SBX_MSG_EXEC_FAILED, h->id, EAGAIN, "the sandbox is not set up");
		return;
	}
	if (st.nexecs >= MAX_EXECS) {
		send_simple(SBX_MSG_EXEC_FAILED, h->id, EAGAIN, "too many processes started by sbx are running");
		return;
	}
	if (find_exec(h->id)) {
		send_simple(SBX_MSG_EXEC_FAILED, h->id, EEXIST, "duplicate exec id");
		return;
	}
	while (sbx_attr_next(it, &a)) {
		bool bad = false;
		switch (a.type) {
		case SBX_A_ARG:
			bad = argc >= MAX_ARGS || sbx_attr_str(&a, &s) < 0;
			if (!bad)
				argv[argc++] = (char *)s;
			break;
		case SBX_A_ENV:
			bad = envc >= MAX_ENV || sbx_attr_str(&a, &s) < 0 || !strchr(s, '=');
			if (!bad)
				envp[envc++] = (char *)s;
			break;
		case SBX_A_CWD: bad = sbx_attr_str(&a, &req.cwd) < 0; break;
		case SBX_A_PATH: bad = sbx_attr_str(&a, &req.path) < 0; break;
		case SBX_A_UID: bad = sbx_attr_u32(&a, &v) < 0; req.uid = v; break;
		case SBX_A_GID: bad = sbx_attr_u32(&a, &v) < 0; req.gid = v; break;
		case SBX_A_TTY: bad = sbx_attr_u32(&a, &v) < 0; req.tty = v; break;
		case SBX_A_STDIN: bad = sbx_attr_u32(&a, &v) < 0; req.want_stdin = v; break;
		case SBX_A_DETACHED: bad = sbx_attr_u32(&a, &v) < 0; req.detached = v; break;
		case SBX_A_ROOT_CAPS: bad = sbx_attr_u32(&a, &v) < 0; req.root_caps = v; break;
		case SBX_A_ROWS: bad = sbx_attr_u32(&a, &req.rows) < 0; break;
		case SBX_A_COLS: bad = sbx_attr_u32(&a, &req.cols) < 0; break;
		case SBX_A_UMASK: bad = sbx_attr_u32(&a, &v) < 0; req.umask = v & 0777; break;
		default: break;
		}
		if (bad) {
			send_simple(SBX_MSG_EXEC_FAILED, h->id, EINVAL, "malformed exec request");
			return;
		}
	}
	if (it->error || argc == 0) {
		send_simple(SBX_MSG_EXEC_FAILED, h->id, EINVAL, "malformed exec request (no command)");
		return;
	}
	if (req.detached)
		req.tty = false;
	req.argv = argv;
	req.envp = envp;
	if (sbx_spawn(&st.pol, &req, &res) < 0) {
		send_failure(SBX_MSG_EXEC_FAILED, h->id, res.err, res.msg, res.stage);
		return;
	}
	st.execs[st.nexecs++] = (struct exec_entry){.id = h->id, .pid = res.pid, .master = res.master};
	sbx_buf_init(&b, SBX_MSG_MAX);
	int fds[3];
	size_t nfds = 0;
	uint32_t fdmask = 0;
	for (size_t i = 0; i < 3; i++)
		if (res.fds[i] >= 0) {
			fds[nfds++] = res.fds[i];
			fdmask |= 1u << i;
		}
	if (sbx_msg_begin(&b, SBX_MSG_EXEC_STARTED, h->id) < 0 ||
	    sbx_msg_put_u32(&b, SBX_A_PID, (uint32_t)res.pid) < 0 || sbx_msg_put_u32(&b, SBX_A_STDIN, fdmask) < 0 ||
	    sbx_msg_finish(&b) < 0 || sbx_msg_send(st.ctl, &b, fds, nfds) < 0) {
		/* The daemon cannot get the streams: end the process rather than leave it orphaned
		 * with nobody reading its output. */
		kill(res.pid, SIGKILL);
	}
	sbx_buf_free(&b);
	for (size_t i = 0; i < 3; i++)
		close_and_reset(res.fds[i]);
}

static void handle_signal(const struct sbx_msg_hdr *h, struct sbx_attr_iter *it)
{
	struct exec_entry *e = find_exec(h->id);
	struct sbx_attr a;
	uint32_t sig = 0;

	while (sbx_attr_next(it, &a))
		if (a.type == SBX_A_SIGNAL)
			sbx_attr_u32(&a, &sig);
	if (!e || e->exited || sig == 0 || sig >= (uint32_t)NSIG)
		return;
	/* The process is a session leader: its group gets the signal, as a terminal would send it. */
	if (kill(-e->pid, (int)sig) < 0)
		kill(e->pid, (int)sig);
}

static void handle_resize(const struct sbx_msg_hdr *h, struct sbx_attr_iter *it)
{
	struct exec_entry *e = find_exec(h->id);
	struct winsize ws = {0};
	struct sbx_attr a;
	uint32_t v;

	while (sbx_attr_next(it, &a)) {
		if (a.type == SBX_A_ROWS && sbx_attr_u32(&a, &v) == 0)
			ws.ws_row = (unsigned short)v;
		if (a.type == SBX_A_COLS && sbx_attr_u32(&a, &v) == 0)
			ws.ws_col = (unsigned short)v;
	}
	if (e && e->master >= 0 && ws.ws_row && ws.ws_col)
		ioctl(e->master, TIOCSWINSZ, &ws);
}

static void __attribute__((noreturn)) stop_all(uint32_t grace_ms)
{
	uint64_t deadline = sbx_monotonic_ms() + grace_ms;
	struct pollfd pfd = {.fd = st.sigfd, .events = POLLIN};

	kill(-1, SIGTERM);
	kill(-1, SIGCONT);
	for (;;) {
		reap();
		if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
			break;
		uint64_t now = sbx_monotonic_ms();
		if (now >= deadline)
			break;
		if (poll(&pfd, 1, (int)(deadline - now)) > 0) {
			struct signalfd_siginfo si;
			while (read(st.sigfd, &si, sizeof(si)) > 0)
				;
		}
	}
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		reap();
	reap();
	for (size_t i = 0; i < st.nexecs; i++)
		report_exit(&st.execs[i]);
	_exit(0);
}

static void handle_packet(long n, int *fds, size_t nfds)
{
	struct sbx_msg_hdr h;
	struct sbx_attr_iter it;
	struct sbx_attr a;
	char errbuf[1024];
	uint32_t v;

	if (sbx_msg_parse(pkt, (size_t)n, &h, &it) < 0) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return;
	}
	if (h.type != SBX_MSG_SETUP) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		nfds = 0;
	}
	switch (h.type) {
	case SBX_MSG_SETUP:
		if (st.ready) {
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
			send_simple(SBX_MSG_SETUP_FAILED, h.id, EALREADY, "already set up");
			return;
		}
		errbuf[0] = '\0';
		if (handle_setup(&h, &it, fds, nfds, errbuf, sizeof(errbuf)) < 0) {
			send_simple(SBX_MSG_SETUP_FAILED, h.id, errno, errbuf[0] ? errbuf : "setup failed");
			_exit(1);
		}
		if (st.ready) {
			sbx_buf b;
			sbx_buf_init(&b, SBX_MSG_MAX);
			if (sbx_msg_begin(&b, SBX_MSG_READY, h.id) < 0 || send_with_listeners(&b) < 0)
				_exit(1);
			sbx_buf_free(&b);
		}
		break;
	case SBX_MSG_EXEC:
		handle_exec(&h, &it);
		break;
	case SBX_MSG_SIGNAL:
		handle_signal(&h, &it);
		break;
	case SBX_MSG_RESIZE:
		handle_resize(&h, &it);
		break;
	case SBX_MSG_STOP:
		v = 2000;
		while (sbx_attr_next(&it, &a))
			if (a.type == SBX_A_GRACE_MS)
				sbx_attr_u32(&a, &v);
		stop_all(v > 60000 ? 60000 : v);
	case SBX_MSG_PING: {
		uint32_t running = 0;
		for (size_t i = 0; i < st.nexecs; i++)
			running += !st.execs[i].exited;
		sbx_buf b;
		sbx_buf_init(&b, SBX_MSG_MAX);
		if (sbx_msg_begin(&b, SBX_MSG_PONG, h.id) == 0 && sbx_msg_put_u32(&b, SBX_A_PID, running) == 0)
			send_with_listeners(&b);
		sbx_buf_free(&b);
		break;
	}
	case SBX_MSG_WAIT: {
		struct exec_entry *e = find_exec(h.id);
		if (e && e->exited) {
			e->reported = false;
			report_exit(e);
			if (e->reported)
				forget_exec((size_t)(e - st.execs));
		}
		break;
	}
	default:
		break;
	}
}

/* The daemon went away. Keep the sandbox running; a new daemon re-adopts it through the
 * listening socket. Until then exits are remembered and reported on reconnection. */
static void ctl_lost(void)
{
	close_and_reset(st.ctl);
	if (!st.ready)
		_exit(1); /* half set up and nobody to finish it: never leave that behind */
	if (!st.listening) {
		if (listen(st.listen, 1) < 0)
			_exit(1);
		st.listening = true;
	}
}

static void accept_daemon(void)
{
	int fd = accept4(st.listen, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (st.ctl >= 0) {
		close(fd); /* one daemon at a time */
		return;
	}
	st.ctl = fd;
	for (size_t i = 0; i < st.nexecs;) {
		if (st.execs[i].exited) {
			report_exit(&st.execs[i]);
			if (st.execs[i].reported) {
				forget_exec(i);
				continue;
			}
		}
		i++;
	}
}

int main(int argc, char **argv)
{
	sigset_t all;

	(void)argc;
	(void)argv;
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* "sbx-spare" until a sandbox's setup is complete (prepared ahead, not a sandbox yet). */
	prctl(PR_SET_NAME, "sbx-spare", 0, 0, 0);
	umask(022); /* modes in the plan are meant literally; the daemon's 077 is not */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	{
		sigset_t chld;
		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		st.sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	}
	if (st.sigfd < 0 || fcntl(CTL_FD, F_SETFD, FD_CLOEXEC) < 0)
		return 1;
	if (fcntl(LISTEN_FD, F_SETFD, FD_CLOEXEC) < 0)
		st.listen = -1;
	/* Listen right away so that SO_PEERCRED on a re-adopting daemon's connection names us. */
	if (st.listen >= 0 && listen(st.listen, 1) == 0)
		st.listening = true;

	for (;;) {
		struct pollfd pfds[3] = {
			{.fd = st.sigfd, .events = POLLIN},
			{.fd = st.ctl, .events = POLLIN},
			{.fd = st.listening ? st.listen : -1, .events = POLLIN},
		};
		if (poll(pfds, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (pfds[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(st.sigfd, &si, sizeof(si)) > 0)
				;
			reap();
		}
		if (pfds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			int fds[SBX_FDPASS_MAX];
			size_t nfds = 0;
			long n = sbx_msg_recv(st.ctl, pkt, fds, SBX_FDPASS_MAX, &nfds);
			if (n > 0)
				handle_packet(n, fds, nfds);
			else if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EBADMSG))
				ctl_lost();
		}
		if (pfds[2].revents & POLLIN)
			accept_daemon();
	}
}
