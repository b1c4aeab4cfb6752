/* sbxd - the per-user sbx daemon.
 *
 * Started on demand by the CLI (or `sbx daemon start`), one per user and sbx home: a lock in
 * the runtime directory makes a second instance exit quietly. It owns the state database,
 * supervises sandboxes, and serves the control API on runtime_dir/sbxd.sock. Sandboxes outlive
 * the daemon: a new daemon re-adopts the running ones or cleans up what cannot be re-adopted.
 *
 * Start-up checks that enforcement can actually be set up here (user namespaces, Landlock, the
 * seccomp filter, sbx-init); what is missing is reported by the API, and sandboxes refuse to
 * start rather than start weaker. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <arpa/inet.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api.h"
#include "audit.h"
#include "cleanup.h"
#include "daemon.h"
#include "kcompat.h"
#include "initproto.h"
#include "log.h"
#include "netrules.h"
#include "policy.h"
#include "proxy.h"
#include "secrets.h"
#include "util.h"

static struct sbx_daemon daemon_ctx;

static void sig_cb(struct sbx_loop *loop, int fd, unsigned events, void *ud)
{
	struct sbx_daemon *d = ud;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		log_info("signal %d: shutting down (sandboxes keep running)", (int)si.ssi_signo);
		d->shutting_down = true;
		sbx_loop_stop(loop);
	}
}

static int find_init(struct sbx_daemon *d, sbx_err *err)
{
	const char *env = getenv("SBX_LIBEXEC");
	char dir[PATH_MAX];
	const char *cands[3];
	char c1[PATH_MAX], c2[PATH_MAX];
	size_t n = 0;

	if (env && env[0] == '/')
		cands[n++] = env;
	if (sbx_self_exe_dir(dir, sizeof(dir)) == 0) {
		snprintf(c1, sizeof(c1), "%s", dir);
		snprintf(c2, sizeof(c2), "%s/../libexec/sbx", dir);
		cands[n++] = c1;
		cands[n++] = c2;
	}
	for (size_t i = 0; i < n; i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/sbx-init", cands[i]);
		int fd = open(p, O_PATH | O_CLOEXEC);
		if (fd >= 0) {
			d->init_exe_fd = fd;
			sbx_strlcpy(d->init_exe_path, p, sizeof(d->init_exe_path));
			sbx_strlcpy(d->libexec_dir, cands[i], sizeof(d->libexec_dir));
			return 0;
		}
	}
	return sbx_err_set(err, SBX_E_UNSUPPORTED, "cannot find sbx-init next to sbxd (%s): reinstall sbx", dir);
}

/* Can this user create the namespaces a sandbox needs? Probed once with a throw-away child. */
static void probe_userns(struct sbx_daemon *d)
{
	pid_t pid = fork();
	int ws;

	if (pid == 0)
		_exit(unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) < 0
			      ? errno
			      : 0);
	if (pid < 0 || waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		int e = pid < 0 ? errno : WIFEXITED(ws) ? WEXITSTATUS(ws) : EPERM;
		snprintf(d->userns_problem, sizeof(d->userns_problem),
			 "this user cannot create user namespaces (%s): enable them with `sysctl -w "
			 "kernel.unprivileged_userns_clone=1` and/or `sysctl -w user.max_user_namespaces=15000`, or "
			 "allow them in your AppArmor/SELinux policy",
			 strerror(e));
	}
}

/* The egress side: the network rules every sandbox gets, the audit log, the policy, the proxy.
 * The proxy holds a few descriptors per connection: take the whole allowance. */
static int setup_egress(struct sbx_daemon *d, sbx_err *err)
{
	struct sbx_netrules nr = {.transparent_port = SBX_NET_TRANSPARENT_PORT,
				  .dns_port = SBX_NET_DNS_PORT,
				  .dns_addr = htonl(SBX_NET_DNS_ADDR_HOST)};
	struct rlimit rl;
	sbx_buf batch;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sbx_buf_init(&batch, SBX_NET_BATCH_MAX);
	if (sbx_netrules_build(&nr, &batch, err) < 0) {
		sbx_buf_free(&batch);
		return sbx_err_wrap(err, "sandbox network rules");
	}
	d->nft_batch_len = batch.len;
	d->nft_batch = sbx_buf_steal(&batch);
	if (sbx_secrets_init(d->store, err) < 0)
		return sbx_err_wrap(err, "secret store");
	if (sbx_audit_open(d->paths.db_path, &d->audit, err) < 0)
		return sbx_err_wrap(err, "audit log");
	if (sbx_daemon_policy_reload(d, err) < 0)
		return sbx_err_wrap(err, "network policy");
	if (sbx_classifier_cfg_load(d->store, d->classifiers, err) < 0)
		return sbx_err_wrap(err, "review classifiers");
	return sbx_proxy_new(d, &d->proxy, err) < 0 ? sbx_err_wrap(err, "proxy") : 0;
}

static int setup(struct sbx_daemon *d, sbx_err *err)
{
	d->init_exe_fd = -1;
	d->started_at_ms = sbx_now_ms();
	d->next_exec_id = (uint32_t)(sbx_now_ms() & 0xffff) << 16; /* distinct across restarts */
	if (!(d->loop = sbx_loop_new()))
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "event loop");
	if (sbx_store_open(d->paths.db_path, &d->store, err) < 0)
		return -1;
	if (sbx_cgroup_mgr_new(&d->cg, err) < 0)
		return sbx_err_wrap(err, "cgroups");
	if (sbx_idmap_init(&d->idmap, err) < 0)
		return -1;
	if (sbx_seccomp_build(&d->bpf, err) < 0)
		return sbx_err_wrap(err, "seccomp filter");
	d->landlock_abi = sbx_landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (d->landlock_abi < 0)
		d->landlock_abi = 0;
	probe_userns(d);
	if (find_init(d, err) < 0)
		return -1;
	if (setup_egress(d, err) < 0)
		return -1;
	log_info("sbxd %s: uid %d, ids %s, cgroups: %s, landlock ABI %d%s%s", SBX_VERSION, (int)geteuid(),
		 sbx_idmap_mode_name(d->idmap.mode), sbx_cgroup_describe(d->cg), d->landlock_abi,
		 d->userns_problem[0] ? ", " : "", d->userns_problem);
	return 0;
}

static int lock_instance(const struct sbx_paths *p)
{
	int fd = open(p->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return -2;
	}
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: sbxd [--foreground] [--debug]\n"
			"The sbx daemon; normally started on demand by `sbx`.\n");
}

int main(int argc, char **argv)
{
	struct sbx_daemon *d = &daemon_ctx;
	sbx_err err = SBX_ERR_INIT;
	bool foreground = false;
	int lock_fd, sfd;
	sigset_t mask;
	static const struct option opts[] = {
		{"foreground", no_argument, NULL, 'f'}, {"debug", no_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'}, {0}};

	for (int c; (c = getopt_long(argc, argv, "fdh", opts, NULL)) != -1;) {
		switch (c) {
		case 'f': foreground = true; break;
		case 'd': sbx_log_set_level(SBX_LOG_DEBUG); break;
		case 'h': usage(); return 0;
		default: usage(); return 64;
		}
	}
	(void)foreground;
	/* Nothing inherited from whoever started us (a shell's stray descriptors) stays open. */
	sbx_close_range(3, ~0U, 0);
	sbx_log_set_prefix("sbxd");
	umask(077);
	if (sbx_paths_resolve(&d->paths, &err) < 0 || sbx_paths_ensure(&d->paths, &err) < 0) {
		fprintf(stderr, "sbxd: %s\n", err.msg);
		return sbx_errc_exit_code(err.code);
	}
	lock_fd = lock_instance(&d->paths);
	if (lock_fd == -2)
		return 0; /* another daemon serves this home */
	if (lock_fd < 0) {
		fprintf(stderr, "sbxd: cannot lock %s: %s\n", d->paths.lock_path, strerror(errno));
		return 74;
	}
	d->lock_fd = lock_fd;
	signal(SIGPIPE, SIG_IGN);
	/* Sandbox inits prepared ahead by helper processes become our children when the helper
	 * exits; we reap them like the ones we clone ourselves. */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

	if (setup(d, &err) < 0 || sbx_sandboxes_load(d, &err) < 0 || (sbx_sandboxes_sweep(d), 0) ||
	    sbx_backend_ns.prepare(d, &err) < 0 ||
	    sbx_api_listen(d, &err) < 0 ||
	    sbx_loop_add(d->loop, sfd, SBX_EV_READ, sig_cb, d) < 0) {
		log_error("cannot start: %s", err.msg);
		fprintf(stderr, "sbxd: %s\n", err.msg);
		return sbx_errc_exit_code(err.code ? err.code : SBX_E_INTERNAL);
	}
	log_info("listening on %s", d->paths.socket_path);
	sbx_loop_run(d->loop);
	sbx_api_close(d);
	sbx_backend_ns.shutdown(d);
	sbx_proxy_free(d->proxy);
	d->proxy = NULL;
	sbx_audit_close(d->audit);
	d->audit = NULL;
	sbx_policy_free(d->policy);
	d->policy = NULL;
	log_info("stopped");
	close(lock_fd);
	return 0;
}
