/* sandbox.c - the sandbox registry and lifecycle, and the daemon's side of the conversation
 * with a sandbox's init (initproto.h).
 *
 *   created --start--> starting --READY--> running --stop--> stopping --init gone--> stopped
 *                         |                    |                                    ^
 *                         +--failure--> error  +------------init died---------------+
 *
 * A start that fails leaves nothing running: init is killed, its cgroup emptied and removed.
 * Init's death, for whatever reason, is noticed through its pidfd and ends every exec. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "daemon.h"
#include "fdpass.h"
#include "initproto.h"
#include "kcompat.h"
#include "log.h"
#include "proxy.h"
#include "util.h"

#define START_TIMEOUT_MS 30000
#define STOP_EXTRA_MS 3000
#define EXEC_LOG_MAX (16u << 20)

static uint8_t pkt[SBX_MSG_MAX];

static const char *const state_names[] = {
	[SBX_STATE_CREATED] = "created", [SBX_STATE_STARTING] = "starting", [SBX_STATE_RUNNING] = "running",
	[SBX_STATE_STOPPING] = "stopping", [SBX_STATE_STOPPED] = "stopped", [SBX_STATE_ERROR] = "error",
};

const char *sbx_state_name(enum sbx_state s)
{
	return (unsigned)s < SBX_ARRAY_LEN(state_names) ? state_names[s] : "unknown";
}

enum sbx_state sbx_state_from_name(const char *s)
{
	for (size_t i = 0; i < SBX_ARRAY_LEN(state_names); i++)
		if (strcmp(state_names[i], s) == 0)
			return (enum sbx_state)i;
	return SBX_STATE_STOPPED;
}

void sbx_spec_clear(struct sbx_spec *s)
{
	for (size_t i = 0; i < s->nenv; i++)
		free(s->env[i]);
	for (size_t i = 0; i < s->nargs; i++)
		free(s->agent_args[i]);
	memset(s, 0, sizeof(*s));
}

/* ---- persistence ---- */

static char *spec_to_json(const struct sbx_spec *s)
{
	json_t *o = json_object(), *ws = json_array(), *env = json_array(), *args = json_array();

	for (size_t i = 0; i < s->nws; i++)
		json_array_append_new(ws, json_pack("{s:s, s:b}", "path", s->ws[i].path, "ro", s->ws[i].ro));
	for (size_t i = 0; i < s->nenv; i++)
		json_array_append_new(env, json_string(s->env[i]));
	for (size_t i = 0; i < s->nargs; i++)
		json_array_append_new(args, json_string(s->agent_args[i]));
	json_object_set_new(o, "workspaces", ws);
	json_object_set_new(o, "env", env);
	json_object_set_new(o, "agent_args", args);
	json_object_set_new(o, "agent_args_set", json_boolean(s->agent_args_set));
	json_object_set_new(o, "memory", json_integer((json_int_t)s->memory));
	json_object_set_new(o, "millicpus", json_integer(s->millicpus));
	json_object_set_new(o, "pids", json_integer(s->pids));
	json_object_set_new(o, "ephemeral", json_boolean(s->ephemeral));
	char *out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return out;
}

static int spec_from_json(const char *text, struct sbx_spec *s)
{
	json_error_t jerr;
	json_t *o = json_loads(text ? text : "{}", 0, &jerr), *v;
	size_t i;

	memset(s, 0, sizeof(*s));
	if (!o)
		return -1;
	json_array_foreach(json_object_get(o, "workspaces"), i, v)
	{
		const char *p = json_string_value(json_object_get(v, "path"));
		if (!p || s->nws >= SBX_MAX_WORKSPACES)
			continue;
		sbx_strlcpy(s->ws[s->nws].path, p, sizeof(s->ws[0].path));
		s->ws[s->nws++].ro = json_is_true(json_object_get(v, "ro"));
	}
	json_array_foreach(json_object_get(o, "env"), i, v)
	{
		if (json_is_string(v) && s->nenv < SBX_MAX_ENV)
			s->env[s->nenv++] = strdup(json_string_value(v));
	}
	json_array_foreach(json_object_get(o, "agent_args"), i, v)
	{
		if (json_is_string(v) && s->nargs < SBX_MAX_AGENT_ARGS)
			s->agent_args[s->nargs++] = strdup(json_string_value(v));
	}
	s->agent_args_set = json_is_true(json_object_get(o, "agent_args_set"));
	s->memory = (uint64_t)json_integer_value(json_object_get(o, "memory"));
	s->millicpus = (uint32_t)json_integer_value(json_object_get(o, "millicpus"));
	s->pids = (uint32_t)json_integer_value(json_object_get(o, "pids"));
	s->ephemeral = json_is_true(json_object_get(o, "ephemeral"));
	json_decref(o);
	return 0;
}

static void fill_row(const struct sbx_sandbox *sb, struct sbx_sandbox_row *r)
{
	memset(r, 0, sizeof(*r));
	sbx_strlcpy(r->id, sb->id, sizeof(r->id));
	sbx_strlcpy(r->name, sb->name, sizeof(r->name));
	sbx_strlcpy(r->agent, sb->agent, sizeof(r->agent));
	sbx_strlcpy(r->isolation, sb->isolation, sizeof(r->isolation));
	sbx_strlcpy(r->state, sbx_state_name(sb->state), sizeof(r->state));
	r->spec_json = spec_to_json(&sb->spec);
	r->created_at = sb->created_at;
	r->started_at = sb->started_at;
	r->init_pid = sb->init_pid;
	r->error = sb->error;
}

int sbx_sandbox_persist(struct sbx_sandbox *sb, sbx_err *err)
{
	struct sbx_sandbox_row r;
	int ret;

	if (sb->removed || sb->spec.ephemeral)
		return 0; /* discarded, or never stored: an ephemeral sandbox lives in memory only */
	fill_row(sb, &r);
	ret = sbx_store_sandbox_update(sb->d->store, &r, err);
	free(r.spec_json);
	return ret;
}

static void persist_or_log(struct sbx_sandbox *sb)
{
	sbx_err err = SBX_ERR_INIT;

	if (sbx_sandbox_persist(sb, &err) < 0)
		log_error("sandbox %s: %s", sb->name, err.msg);
}

static void set_error(struct sbx_sandbox *sb, const char *msg)
{
	free(sb->error);
	sb->error = msg ? strdup(msg) : NULL;
}

/* ---- registry ---- */

struct sbx_sandbox *sbx_sandbox_find(struct sbx_daemon *d, const char *key)
{
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next)
		if (strcmp(sb->name, key) == 0)
			return sb;
	if (strlen(key) >= 6) /* an id prefix, as docker users expect */
		for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next)
			if (strncmp(sb->id, key, strlen(key)) == 0)
				return sb;
	return NULL;
}

static struct sbx_sandbox *sandbox_new(struct sbx_daemon *d)
{
	struct sbx_sandbox *sb = calloc(1, sizeof(*sb));

	if (!sb)
		return NULL;
	sb->d = d;
	sb->pidfd = -1;
	sb->ctl = -1;
	sb->backend = &sbx_backend_ns;
	return sb;
}

static void link_sandbox(struct sbx_daemon *d, struct sbx_sandbox *sb)
{
	struct sbx_sandbox **pp = &d->sandboxes;

	while (*pp)
		pp = &(*pp)->next;
	*pp = sb;
}

static void unlink_sandbox(struct sbx_daemon *d, struct sbx_sandbox *sb)
{
	for (struct sbx_sandbox **pp = &d->sandboxes; *pp; pp = &(*pp)->next)
		if (*pp == sb) {
			*pp = sb->next;
			return;
		}
}

static void sandbox_free(struct sbx_sandbox *sb)
{
	sbx_spec_clear(&sb->spec);
	free(sb->error);
	json_decref(sb->host_env);
	free(sb);
}

int sbx_sandbox_create(struct sbx_daemon *d, const char *name, const char *agent, const char *isolation,
		       struct sbx_spec *spec, struct sbx_sandbox **out, sbx_err *err)
{
	struct sbx_sandbox_row r;
	struct sbx_sandbox *sb;

	if (!sbx_name_valid(name))
		return sbx_err_set(err, SBX_E_INVALID,
				   "invalid sandbox name '%s': use 1-63 letters, digits, '-', '_' or '.', starting with a "
				   "letter or digit", name);
	if (sbx_sandbox_find(d, name) && strcmp(sbx_sandbox_find(d, name)->name, name) == 0)
		return sbx_err_set(err, SBX_E_CONFLICT,
				   "a sandbox named '%s' already exists: use it (`sbx run --name %s`), remove it "
				   "(`sbx rm %s`), or pick another name with --name", name, name, name);
	sb = sandbox_new(d);
	if (!sb)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	if (sbx_random_hex(sb->id, 16) < 0) {
		free(sb);
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "no randomness");
	}
	sbx_strlcpy(sb->name, name, sizeof(sb->name));
	sbx_strlcpy(sb->agent, agent, sizeof(sb->agent));
	sbx_strlcpy(sb->isolation, isolation, sizeof(sb->isolation));
	sb->state = SBX_STATE_CREATED;
	sb->spec = *spec;
	memset(spec, 0, sizeof(*spec));
	sb->created_at = (int64_t)sbx_now_ms();
	snprintf(sb->dir, sizeof(sb->dir), "%s/%s", d->paths.sandboxes_dir, sb->id);

	if (sbx_template_prepare_dirs(sb, err) < 0) {
		sbx_idmap_rm_rf(&d->idmap, sb->dir, &(sbx_err){0});
		sandbox_free(sb);
		return -1;
	}
	/* An ephemeral sandbox (`run --rm`) is not stored: if the daemon dies, the next one finds
	 * its cgroup without a row and removes it, which is what --rm asked for anyway. */
	int rc = 0;
	if (!sb->spec.ephemeral) {
		fill_row(sb, &r);
		rc = sbx_store_sandbox_insert(d->store, &r, err);
		free(r.spec_json);
	}
	if (rc < 0) {
		sbx_idmap_rm_rf(&d->idmap, sb->dir, &(sbx_err){0});
		sandbox_free(sb);
		return -1;
	}
	link_sandbox(d, sb);
	log_info("sandbox %s (%s) created", sb->name, sb->id);
	*out = sb;
	return 0;
}

/* ---- waiters ---- */

void sbx_waiter_cancel(struct sbx_waiter *w)
{
	if (w)
		w->cb = NULL;
}

/* Waiters are heap objects owned by the sandbox once handed over; they are freed after their
 * callback ran (or was skipped because the requester went away). */
static void finish_waiter(struct sbx_waiter *w, struct sbx_sandbox *sb, const sbx_err *err)
{
	if (!w)
		return;
	if (w->cb)
		w->cb(w->ud, sb, err);
	free(w);
}

static void notify(struct sbx_waiter **list, struct sbx_sandbox *sb, const sbx_err *err)
{
	struct sbx_waiter *w = *list;

	*list = NULL;
	while (w) {
		struct sbx_waiter *next = w->next;
		finish_waiter(w, sb, err);
		w = next;
	}
}

static void add_waiter(struct sbx_waiter **list, struct sbx_waiter *w)
{
	if (!w)
		return;
	w->next = *list;
	*list = w;
}

/* ---- execs ---- */

static void exec_close_log(struct sbx_exec *ex)
{
	struct sbx_loop *loop = ex->sb->d->loop;

	if (ex->out_fd >= 0) {
		sbx_loop_del(loop, ex->out_fd);
		close_and_reset(ex->out_fd);
	}
	if (ex->err_fd >= 0) {
		sbx_loop_del(loop, ex->err_fd);
		close_and_reset(ex->err_fd);
	}
	close_and_reset(ex->log_fd);
}

static void exec_unlink(struct sbx_exec *ex)
{
	for (struct sbx_exec **pp = &ex->sb->execs; *pp; pp = &(*pp)->next)
		if (*pp == ex) {
			*pp = ex->next;
			break;
		}
}

static void exec_drain(struct sbx_exec *ex, int fd)
{
	char buf[16384];
	ssize_t n;

	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0) {
		if (ex->log_fd >= 0 && ex->logged < EXEC_LOG_MAX) {
			size_t w = (size_t)n;
			if (ex->logged + w > EXEC_LOG_MAX)
				w = EXEC_LOG_MAX - ex->logged;
			if (sbx_write_all(ex->log_fd, buf, w) == 0)
				ex->logged += w;
		}
	}
}

/* The exec is over (exit seen, start failed, or the sandbox is gone). The requester learns it
 * through exactly one callback; the record belongs to this module and is freed here. */
static void exec_finish(struct sbx_exec *ex, int wstatus)
{
	exec_unlink(ex);
	if (!ex->started) {
		sbx_err err = SBX_ERR_INIT;
		sbx_err_set(&err, SBX_E_CONFLICT, "the sandbox stopped before the command started");
		if (ex->on_started)
			ex->on_started(ex, NULL, 0, 0, &err);
	} else if (ex->on_exit) {
		ex->on_exit(ex, wstatus);
	}
	if (ex->rm_on_exit && !ex->sb->removed)
		sbx_sandbox_discard(ex->sb);
	/* Whatever a detached process wrote before it ended belongs in its log. */
	exec_drain(ex, ex->out_fd);
	exec_drain(ex, ex->err_fd);
	exec_close_log(ex);
	free(ex);
}

static void exec_log_cb(struct sbx_loop *loop, int fd, unsigned events, void *ud)
{
	struct sbx_exec *ex = ud;
	char buf[16384];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n > 0) {
		if (ex->log_fd >= 0 && ex->logged < EXEC_LOG_MAX) {
			size_t w = (size_t)n;
			if (ex->logged + w > EXEC_LOG_MAX)
				w = EXEC_LOG_MAX - ex->logged;
			if (sbx_write_all(ex->log_fd, buf, w) == 0)
				ex->logged += w;
		}
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	sbx_loop_del(loop, fd);
	close(fd);
	if (fd == ex->out_fd)
		ex->out_fd = -1;
	else
		ex->err_fd = -1;
}

void sbx_exec_detach_requester(struct sbx_exec *ex)
{
	ex->on_started = NULL;
	ex->on_exit = NULL;
	ex->ud = NULL;
}

static int send_exec_msg(struct sbx_exec *ex, uint16_t type, uint16_t a1, uint32_t v1, uint16_t a2, uint32_t v2)
{
	sbx_buf b;
	int r = -1;

	if (ex->sb->ctl < 0)
		return -1;
	sbx_buf_init(&b, SBX_MSG_MAX);
	if (sbx_msg_begin(&b, type, ex->id) == 0 && sbx_msg_put_u32(&b, a1, v1) == 0 &&
	    (!a2 || sbx_msg_put_u32(&b, a2, v2) == 0) && sbx_msg_finish(&b) == 0)
		r = sbx_msg_send(ex->sb->ctl, &b, NULL, 0);
	sbx_buf_free(&b);
	return r;
}

void sbx_exec_signal(struct sbx_exec *ex, int sig)
{
	send_exec_msg(ex, SBX_MSG_SIGNAL, SBX_A_SIGNAL, (uint32_t)sig, 0, 0);
}

void sbx_exec_resize(struct sbx_exec *ex, unsigned rows, unsigned cols)
{
	send_exec_msg(ex, SBX_MSG_RESIZE, SBX_A_ROWS, rows, SBX_A_COLS, cols);
}

int sbx_sandbox_exec(struct sbx_sandbox *sb, struct sbx_exec *ex, const char *const *argv, const char *const *env,
		     const char *cwd, uid_t uid, gid_t gid, unsigned rows, unsigned cols, bool want_stdin,
		     sbx_err *err)
{
	sbx_buf b;
	int r = -1;

	if (sb->state != SBX_STATE_RUNNING || sb->ctl < 0)
		return sbx_err_set(err, SBX_E_CONFLICT, "sandbox '%s' is not running: start it with `sbx start %s`",
				   sb->name, sb->name);
	ex->sb = sb;
	ex->id = ++sb->d->next_exec_id;
	ex->log_fd = ex->out_fd = ex->err_fd = -1;
	sbx_buf_init(&b, SBX_MSG_MAX);
	if (sbx_msg_begin(&b, SBX_MSG_EXEC, ex->id) < 0)
		goto e2big;
	for (size_t i = 0; argv[i]; i++)
		if (sbx_msg_put_str(&b, SBX_A_ARG, argv[i]) < 0)
			goto e2big;
	for (size_t i = 0; env && env[i]; i++) {
		if (sbx_msg_put_str(&b, SBX_A_ENV, env[i]) < 0)
			goto e2big;
		if (strncmp(env[i], "PATH=", 5) == 0 && sbx_msg_put_str(&b, SBX_A_PATH, env[i] + 5) < 0)
			goto e2big;
	}
	if ((cwd && sbx_msg_put_str(&b, SBX_A_CWD, cwd) < 0) || sbx_msg_put_u32(&b, SBX_A_UID, uid) < 0 ||
	    sbx_msg_put_u32(&b, SBX_A_GID, gid) < 0 || sbx_msg_put_u32(&b, SBX_A_TTY, ex->tty) < 0 ||
	    sbx_msg_put_u32(&b, SBX_A_ROWS, rows) < 0 || sbx_msg_put_u32(&b, SBX_A_COLS, cols) < 0 ||
	    sbx_msg_put_u32(&b, SBX_A_STDIN, want_stdin) < 0 || sbx_msg_put_u32(&b, SBX_A_DETACHED, ex->detached) < 0 ||
	    sbx_msg_put_u32(&b, SBX_A_ROOT_CAPS, uid == 0) < 0 || sbx_msg_finish(&b) < 0)
		goto e2big;
	if (sbx_msg_send(sb->ctl, &b, NULL, 0) < 0) {
		sbx_err_sys(err, SBX_E_DAEMON, errno, "cannot reach sandbox '%s'", sb->name);
		goto out;
	}
	ex->next = sb->execs;
	sb->execs = ex;
	r = 0;
	goto out;
e2big:
	sbx_err_set(err, SBX_E_INVALID, "the command line and environment are too large (limit %d KiB)",
		    SBX_MSG_MAX / 1024);
out:
	sbx_buf_free(&b);
	return r;
}

static struct sbx_exec *find_exec(struct sbx_sandbox *sb, uint32_t id)
{
	for (struct sbx_exec *ex = sb->execs; ex; ex = ex->next)
		if (ex->id == id)
			return ex;
	return NULL;
}

static void exec_started(struct sbx_sandbox *sb, const struct sbx_msg_hdr *h, struct sbx_attr_iter *it, int *fds,
			 size_t nfds)
{
	struct sbx_exec *ex = find_exec(sb, h->id);
	struct sbx_attr a;
	uint32_t pid = 0, mask = 0;

	while (sbx_attr_next(it, &a)) {
		if (a.type == SBX_A_PID)
			sbx_attr_u32(&a, &pid);
		else if (a.type == SBX_A_STDIN)
			sbx_attr_u32(&a, &mask);
	}
	if (!ex || ex->started) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return;
	}
	ex->started = true;
	ex->pid = (pid_t)pid;
	if (ex->detached) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/logs", sb->dir);
		sbx_mkdir_p(path, 0700);
		snprintf(path, sizeof(path), "%s/logs/exec-%u.log", sb->dir, ex->id);
		ex->log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		/* fds: stdout, stderr (no stdin for detached execs) */
		size_t k = 0;
		for (unsigned i = 0; i < 3 && k < nfds; i++) {
			if (!(mask & (1u << i)))
				continue;
			int fd = fds[k++];
			if (i == 0) {
				close(fd);
				continue;
			}
			fcntl(fd, F_SETFL, O_NONBLOCK);
			if (sbx_loop_add(sb->d->loop, fd, SBX_EV_READ, exec_log_cb, ex) < 0) {
				close(fd);
				continue;
			}
			if (i == 1)
				ex->out_fd = fd;
			else
				ex->err_fd = fd;
		}
		if (ex->on_started)
			ex->on_started(ex, NULL, 0, mask, NULL);
		return;
	}
	if (ex->on_started)
		ex->on_started(ex, fds, nfds, mask, NULL);
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
}

static void exec_failed(struct sbx_sandbox *sb, const struct sbx_msg_hdr *h, struct sbx_attr_iter *it)
{
	struct sbx_exec *ex = find_exec(sb, h->id);
	struct sbx_attr a;
	const char *msg = "cannot start the command";
	uint32_t e = 0, stage = 0;
	sbx_err err = SBX_ERR_INIT;

	if (!ex)
		return;
	while (sbx_attr_next(it, &a)) {
		if (a.type == SBX_A_ERRNO)
			sbx_attr_u32(&a, &e);
		else if (a.type == SBX_A_STRING)
			sbx_attr_str(&a, &msg);
		else if (a.type == SBX_A_STAGE)
			sbx_attr_u32(&a, &stage);
	}
	/* Only the command's own lookup/exec maps to 127/126; a failure while setting the
	 * process up (a missing working directory, ...) is reported as what it is. */
	err.sys_errno = stage == 1 ? (int)e : 0;
	err.code = stage != 1 ? (e == ENOENT ? SBX_E_NOINPUT : SBX_E_INTERNAL)
		   : e == ENOENT ? SBX_E_NOTFOUND : e == EACCES ? SBX_E_PERM : SBX_E_INTERNAL;
	snprintf(err.msg, sizeof(err.msg), "%s", msg);
	exec_unlink(ex);
	if (ex->on_started)
		ex->on_started(ex, NULL, 0, 0, &err);
	if (ex->rm_on_exit && !ex->sb->removed)
		sbx_sandbox_discard(ex->sb);
	exec_close_log(ex);
	free(ex);
}

static void exec_exited(struct sbx_sandbox *sb, const struct sbx_msg_hdr *h, struct sbx_attr_iter *it)
{
	struct sbx_exec *ex = find_exec(sb, h->id);
	struct sbx_attr a;
	uint32_t ws = 0;

	if (!ex)
		return;
	while (sbx_attr_next(it, &a))
		if (a.type == SBX_A_WSTATUS)
			sbx_attr_u32(&a, &ws);
	exec_finish(ex, (int)ws);
}

/* ---- init connection ---- */

static void init_gone(struct sbx_sandbox *sb);

static void start_done(struct sbx_sandbox *sb, const sbx_err *err)
{
	sbx_loop_timer_cancel(sb->d->loop, sb->start_timer);
	sb->start_timer = 0;
	if (err) {
		log_warn("sandbox %s: start failed: %s", sb->name, err->msg);
		set_error(sb, err->msg);
	} else {
		uint64_t dt = sbx_monotonic_ns() - sb->start_t0_ns;
		log_info("sandbox %s running (init pid %d, ready in %.2f ms)", sb->name, (int)sb->init_pid, dt / 1e6);
		sb->state = SBX_STATE_RUNNING;
		set_error(sb, NULL);
		persist_or_log(sb);
	}
	notify(&sb->start_waiters, sb, err);
}

/* READY and PONG carry the sandbox's proxy listeners: hand them to the proxy. */
static int take_listeners(struct sbx_sandbox *sb, struct sbx_attr_iter it, int *fds, size_t nfds, sbx_err *err)
{
	struct sbx_attr a;
	uint32_t mask = 0;
	int lfds[SBX_PXFD_COUNT] = {-1, -1, -1, -1};
	size_t k = 0;

	while (sbx_attr_next(&it, &a))
		if (a.type == SBX_A_NETFDS && sbx_attr_u32(&a, &mask) < 0)
			mask = 0;
	for (size_t i = 0; i < SBX_PXFD_COUNT; i++)
		if ((mask & (1u << i)) && k < nfds)
			lfds[i] = fds[k++];
	for (; k < nfds; k++)
		close(fds[k]);
	if (!sb->d->proxy || lfds[SBX_PXFD_EXPLICIT] < 0) {
		for (size_t i = 0; i < SBX_PXFD_COUNT; i++)
			if (lfds[i] >= 0)
				close(lfds[i]);
		return sbx_err_set(err, SBX_E_INTERNAL, "the sandbox did not hand over its proxy listeners");
	}
	return sbx_proxy_attach(sb->d->proxy, sb->id, sb->name, lfds, err);
}

static void ctl_cb(struct sbx_loop *loop, int fd, unsigned events, void *ud)
{
	struct sbx_sandbox *sb = ud;
	int fds[SBX_FDPASS_MAX];
	size_t nfds = 0;
	struct sbx_msg_hdr h;
	struct sbx_attr_iter it;
	long n = sbx_msg_recv(fd, pkt, fds, SBX_FDPASS_MAX, &nfds);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || sbx_msg_parse(pkt, (size_t)n, &h, &it) < 0) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		if (n > 0) {
			log_error("sandbox %s: malformed message from init; stopping it", sb->name);
			if (sb->pidfd >= 0)
				sbx_pidfd_send_signal(sb->pidfd, SIGKILL, NULL, 0);
		}
		/* The connection is gone; init's exit (pidfd) finishes the job. */
		sbx_loop_del(loop, fd);
		close_and_reset(sb->ctl);
		if (sb->pidfd < 0)
			init_gone(sb);
		return;
	}
	if (h.type != SBX_MSG_EXEC_STARTED && h.type != SBX_MSG_READY && h.type != SBX_MSG_PONG) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		nfds = 0;
	}
	switch (h.type) {
	case SBX_MSG_READY: {
		sbx_err err = SBX_ERR_INIT;
		if (sb->state != SBX_STATE_STARTING) {
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
			break;
		}
		/* Without its proxy a sandbox would have no network at all; say so rather than run. */
		if (take_listeners(sb, it, fds, nfds, &err) < 0) {
			sbx_err e2 = SBX_ERR_INIT;
			sbx_err_set(&e2, SBX_E_INTERNAL, "the sandbox's network could not be connected to the proxy: %s",
				    err.msg);
			sb->state = SBX_STATE_ERROR;
			if (sb->pidfd >= 0)
				sbx_pidfd_send_signal(sb->pidfd, SIGKILL, NULL, 0);
			start_done(sb, &e2);
			break;
		}
		start_done(sb, NULL);
		break;
	}
	case SBX_MSG_SETUP_FAILED: {
		struct sbx_attr a;
		const char *msg = "setup failed";
		sbx_err err = SBX_ERR_INIT;
		while (sbx_attr_next(&it, &a))
			if (a.type == SBX_A_STRING)
				sbx_attr_str(&a, &msg);
		sbx_err_set(&err, SBX_E_UNSUPPORTED, "the sandbox could not be set up: %s", msg);
		if (sb->state == SBX_STATE_STARTING) {
			sb->state = SBX_STATE_ERROR;
			start_done(sb, &err);
		}
		break;
	}
	case SBX_MSG_EXEC_STARTED:
		exec_started(sb, &h, &it, fds, nfds);
		break;
	case SBX_MSG_EXEC_FAILED:
		exec_failed(sb, &h, &it);
		break;
	case SBX_MSG_EXIT:
		exec_exited(sb, &h, &it);
		break;
	case SBX_MSG_PONG: {
		sbx_err err = SBX_ERR_INIT;
		if (nfds && take_listeners(sb, it, fds, nfds, &err) < 0)
			log_error("sandbox %s: %s", sb->name, err.msg);
		break;
	}
	default:
		break;
	}
}

/* Init has exited (or, for an adopted sandbox, can no longer be reached). */
static void init_gone(struct sbx_sandbox *sb)
{
	struct sbx_daemon *d = sb->d;
	sbx_err err = SBX_ERR_INIT;

	if (sb->ctl >= 0) {
		sbx_loop_del(d->loop, sb->ctl);
		close_and_reset(sb->ctl);
	}
	if (sb->pidfd >= 0) {
		sbx_loop_del(d->loop, sb->pidfd);
		close_and_reset(sb->pidfd);
	}
	if (!sb->adopted && sb->init_pid > 0)
		waitpid(sb->init_pid, NULL, WNOHANG);
	sbx_loop_timer_cancel(d->loop, sb->stop_timer);
	sb->stop_timer = 0;
	if (d->proxy)
		sbx_proxy_detach(d->proxy, sb->id);
	sb->backend->cleanup(sb);
	sb->init_pid = 0;
	while (sb->execs)
		exec_finish(sb->execs, SIGKILL);
	if (sb->state == SBX_STATE_STARTING) {
		sb->state = SBX_STATE_ERROR;
		sbx_err_set(&err, SBX_E_INTERNAL, "the sandbox's init exited during setup (see the daemon log %s)",
			    d->paths.daemon_log_path);
		start_done(sb, &err);
	} else if (sb->state != SBX_STATE_ERROR) {
		sb->state = SBX_STATE_STOPPED;
	}
	log_info("sandbox %s stopped", sb->name);
	persist_or_log(sb);
	notify(&sb->start_waiters, sb, NULL);
	/* Last: a stop waiter may remove the sandbox. */
	notify(&sb->stop_waiters, sb, NULL);
}

static void pidfd_cb(struct sbx_loop *loop, int fd, unsigned events, void *ud)
{
	init_gone(ud);
}

int sbx_sandbox_attach_init(struct sbx_sandbox *sb, sbx_err *err)
{
	struct sbx_loop *loop = sb->d->loop;

	fcntl(sb->ctl, F_SETFL, O_NONBLOCK);
	if (sbx_loop_add(loop, sb->ctl, SBX_EV_READ, ctl_cb, sb) < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "event loop");
	if (sb->pidfd >= 0 && sbx_loop_add(loop, sb->pidfd, SBX_EV_READ, pidfd_cb, sb) < 0) {
		sbx_loop_del(loop, sb->ctl);
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "event loop");
	}
	return 0;
}

/* ---- start / stop ---- */

static void start_timeout(struct sbx_loop *loop, void *ud)
{
	struct sbx_sandbox *sb = ud;
	sbx_err err = SBX_ERR_INIT;

	sb->start_timer = 0;
	if (sb->state != SBX_STATE_STARTING)
		return;
	sbx_err_set(&err, SBX_E_INTERNAL, "the sandbox did not become ready within %d s", START_TIMEOUT_MS / 1000);
	sb->state = SBX_STATE_ERROR;
	start_done(sb, &err);
	if (sb->pidfd >= 0)
		sbx_pidfd_send_signal(sb->pidfd, SIGKILL, NULL, 0);
}

void sbx_sandbox_start(struct sbx_sandbox *sb, struct sbx_waiter *w)
{
	sbx_err err = SBX_ERR_INIT;

	switch (sb->state) {
	case SBX_STATE_RUNNING:
		finish_waiter(w, sb, NULL);
		return;
	case SBX_STATE_STARTING:
		add_waiter(&sb->start_waiters, w);
		return;
	case SBX_STATE_STOPPING:
		sbx_err_set(&err, SBX_E_CONFLICT, "sandbox '%s' is stopping; start it again when it has stopped",
			    sb->name);
		finish_waiter(w, sb, &err);
		return;
	default:
		break;
	}
	if (sb->d->shutting_down) {
		sbx_err_set(&err, SBX_E_DAEMON, "the daemon is shutting down");
		finish_waiter(w, sb, &err);
		return;
	}
	/* A sandbox never runs without a network policy: first use without anyone to ask gets the
	 * balanced preset. */
	if (sbx_daemon_policy_ensure(sb->d, &err) < 0) {
		finish_waiter(w, sb, &err);
		return;
	}
	sb->start_t0_ns = sbx_monotonic_ns();
	add_waiter(&sb->start_waiters, w);
	sb->state = SBX_STATE_STARTING;
	sb->adopted = false;
	if (sb->backend->launch(sb, &err) < 0) {
		sb->state = SBX_STATE_ERROR;
		sb->backend->cleanup(sb);
		persist_or_log(sb);
		start_done(sb, &err);
		return;
	}
	sb->started_at = (int64_t)sbx_now_ms();
	persist_or_log(sb);
	sb->start_timer = sbx_loop_timer(sb->d->loop, START_TIMEOUT_MS, start_timeout, sb);
}

static void stop_timeout(struct sbx_loop *loop, void *ud)
{
	struct sbx_sandbox *sb = ud;

	sb->stop_timer = 0;
	log_warn("sandbox %s: init did not stop in time; killing it", sb->name);
	if (sb->pidfd >= 0)
		sbx_pidfd_send_signal(sb->pidfd, SIGKILL, NULL, 0);
	else
		init_gone(sb);
}

void sbx_sandbox_stop(struct sbx_sandbox *sb, uint32_t grace_ms, struct sbx_waiter *w)
{
	sbx_buf b;

	switch (sb->state) {
	case SBX_STATE_RUNNING:
	case SBX_STATE_STARTING:
		break;
	case SBX_STATE_STOPPING:
		add_waiter(&sb->stop_waiters, w);
		return;
	default:
		finish_waiter(w, sb, NULL);
		return;
	}
	add_waiter(&sb->stop_waiters, w);
	if (sb->state == SBX_STATE_STARTING) {
		sbx_err err = SBX_ERR_INIT;
		sbx_err_set(&err, SBX_E_CONFLICT, "sandbox '%s' was stopped while starting", sb->name);
		sb->state = SBX_STATE_STOPPING;
		start_done(sb, &err);
	}
	sb->state = SBX_STATE_STOPPING;
	sbx_buf_init(&b, SBX_MSG_MAX);
	if (sb->ctl < 0 || sbx_msg_begin(&b, SBX_MSG_STOP, 0) < 0 || sbx_msg_put_u32(&b, SBX_A_GRACE_MS, grace_ms) < 0 ||
	    sbx_msg_finish(&b) < 0 || sbx_msg_send(sb->ctl, &b, NULL, 0) < 0) {
		if (sb->pidfd >= 0)
			sbx_pidfd_send_signal(sb->pidfd, SIGKILL, NULL, 0);
	}
	sbx_buf_free(&b);
	if (sb->pidfd < 0 && sb->ctl < 0) {
		init_gone(sb);
		return;
	}
	sb->stop_timer = sbx_loop_timer(sb->d->loop, grace_ms + STOP_EXTRA_MS, stop_timeout, sb);
}

static void sandbox_free_later(struct sbx_loop *loop, void *ud)
{
	sandbox_free(ud);
}

static void discard_stopped(void *ud, struct sbx_sandbox *sb, const sbx_err *unused)
{
	sbx_err err = SBX_ERR_INIT;

	if (sb->backend->destroy(sb, &err) < 0)
		log_error("sandbox %s: %s (left over until the next daemon start)", sb->name, err.msg);
	log_info("sandbox %s (%s) removed", sb->name, sb->id);
	if (!sbx_loop_timer(sb->d->loop, 0, sandbox_free_later, sb))
		log_warn("sandbox %s: out of memory; its record is leaked", sb->name);
}

static void discard_continue(struct sbx_loop *loop, void *ud)
{
	struct sbx_sandbox *sb = ud;
	struct sbx_waiter *w = calloc(1, sizeof(*w));

	if (!w) {
		if (sb->pidfd >= 0)
			sbx_pidfd_send_signal(sb->pidfd, SIGKILL, NULL, 0);
		return; /* init_gone will not find a waiter; the sweep at the next start cleans up */
	}
	w->cb = discard_stopped;
	sbx_sandbox_stop(sb, 0, w);
}

void sbx_sandbox_discard(struct sbx_sandbox *sb)
{
	struct sbx_daemon *d = sb->d;
	sbx_err err = SBX_ERR_INIT;

	if (sb->removed)
		return;
	if (!sb->spec.ephemeral && sbx_store_sandbox_delete(d->store, sb->id, &err) < 0)
		log_error("sandbox %s: %s", sb->name, err.msg);
	unlink_sandbox(d, sb);
	sb->removed = true;
	/* Not from inside the callback that ended the exec: stop and clean up on the next turn. */
	if (!sbx_loop_timer(d->loop, 0, discard_continue, sb))
		discard_continue(d->loop, sb);
}

int sbx_sandbox_remove(struct sbx_sandbox *sb, sbx_err *err)
{
	struct sbx_daemon *d = sb->d;

	if (sb->removed)
		return sbx_err_set(err, SBX_E_NOTFOUND, "sandbox '%s' has already been removed", sb->name);
	if (sb->state == SBX_STATE_RUNNING || sb->state == SBX_STATE_STARTING || sb->state == SBX_STATE_STOPPING)
		return sbx_err_set(err, SBX_E_CONFLICT,
				   "sandbox '%s' is %s: stop it first (`sbx stop %s`) or use `sbx rm -f %s`", sb->name,
				   sbx_state_name(sb->state), sb->name, sb->name);
	if (sb->backend->destroy(sb, err) < 0)
		return sbx_err_wrap(err, "removing sandbox '%s'", sb->name);
	if (sbx_store_sandbox_delete(d->store, sb->id, err) < 0)
		return -1;
	log_info("sandbox %s (%s) removed", sb->name, sb->id);
	unlink_sandbox(d, sb);
	/* Callers up the stack (a list of waiters being notified) may still hold sb: the memory
	 * goes at the end of this loop iteration. */
	sb->removed = true;
	if (!sbx_loop_timer(d->loop, 0, sandbox_free_later, sb))
		log_warn("sandbox %s: out of memory; its record is leaked", sb->name);
	return 0;
}

/* ---- restart: re-adopt or clean up ---- */

static int adopt(struct sbx_sandbox *sb, sbx_err *err)
{
	struct sbx_daemon *d = sb->d;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sandboxes/%s.sock", d->paths.runtime_dir, sb->id) >=
	    sizeof(sa.sun_path))
		return sbx_err_set(err, SBX_E_INVALID, "runtime path too long");
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return sbx_err_sys(err, SBX_E_NOTFOUND, e, "sandbox init is not reachable");
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0) {
		close(fd);
		return sbx_err_set(err, SBX_E_INTERNAL, "cannot identify the sandbox's init");
	}
	sb->pidfd = sbx_pidfd_open(cred.pid, 0);
	if (sb->pidfd < 0) {
		close(fd);
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "pidfd_open");
	}
	sb->ctl = fd;
	sb->init_pid = cred.pid;
	sb->adopted = true;
	if (sbx_sandbox_attach_init(sb, err) < 0) {
		close_and_reset(sb->ctl);
		close_and_reset(sb->pidfd);
		return -1;
	}
	/* Its PONG hands this daemon the sandbox's proxy listeners: until then connections from
	 * inside wait in their backlog, and nothing leaves. */
	{
		sbx_buf b;
		sbx_buf_init(&b, 256);
		if (sbx_msg_begin(&b, SBX_MSG_PING, 0) < 0 || sbx_msg_finish(&b) < 0 || sbx_msg_send(sb->ctl, &b, NULL, 0) < 0)
			log_warn("sandbox %s: cannot ask init for its proxy listeners", sb->name);
		sbx_buf_free(&b);
	}
	return 0;
}

static void load_row(void *ud, const struct sbx_sandbox_row *r)
{
	struct sbx_daemon *d = ud;
	struct sbx_sandbox *sb = sandbox_new(d);
	sbx_err err = SBX_ERR_INIT;

	if (!sb)
		return;
	sbx_strlcpy(sb->id, r->id, sizeof(sb->id));
	sbx_strlcpy(sb->name, r->name, sizeof(sb->name));
	sbx_strlcpy(sb->agent, r->agent, sizeof(sb->agent));
	sbx_strlcpy(sb->isolation, r->isolation, sizeof(sb->isolation));
	sb->state = sbx_state_from_name(r->state);
	spec_from_json(r->spec_json, &sb->spec);
	sb->created_at = r->created_at;
	sb->started_at = r->started_at;
	sb->init_pid = (pid_t)r->init_pid;
	sb->error = r->error ? strdup(r->error) : NULL;
	snprintf(sb->dir, sizeof(sb->dir), "%s/%s", d->paths.sandboxes_dir, sb->id);
	link_sandbox(d, sb);

	if (sb->state == SBX_STATE_RUNNING || sb->state == SBX_STATE_STARTING || sb->state == SBX_STATE_STOPPING) {
		if (sb->state == SBX_STATE_RUNNING && adopt(sb, &err) == 0) {
			log_info("sandbox %s re-adopted (init pid %d)", sb->name, (int)sb->init_pid);
			return;
		}
		/* Half-alive or gone: make sure nothing of it keeps running. */
		log_warn("sandbox %s was %s when the daemon stopped and cannot be re-adopted (%s); cleaning up",
			 sb->name, sbx_state_name(sb->state), err.msg[0] ? err.msg : "state");
		sb->backend->cleanup(sb);
		sb->state = SBX_STATE_STOPPED;
		sb->init_pid = 0;
		persist_or_log(sb);
	}
}

int sbx_sandboxes_load(struct sbx_daemon *d, sbx_err *err)
{
	return sbx_store_sandbox_each(d->store, load_row, d, err);
}

/* ---- leftovers ---- */

static bool known_id(struct sbx_daemon *d, const char *id)
{
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next)
		if (strcmp(sb->id, id) == 0)
			return true;
	return false;
}

static bool looks_like_id(const char *s)
{
	size_t n = strlen(s);

	if (n != 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

struct sweep {
	struct sbx_daemon *d;
	char names[64][40];
	size_t n;
};

static void sweep_cgroup(void *ud, const char *name)
{
	struct sweep *w = ud;

	char sock[PATH_MAX], dir[PATH_MAX];
	struct stat st;

	if (!looks_like_id(name) || known_id(w->d, name) || w->n >= SBX_ARRAY_LEN(w->names))
		return;
	/* Several sbx instances (SBX_HOME) can share a cgroup tree: only a cgroup this instance
	 * left a trace of (its init's socket, its state directory) is ours to remove. */
	snprintf(sock, sizeof(sock), "%s/sandboxes/%s.sock", w->d->paths.runtime_dir, name);
	snprintf(dir, sizeof(dir), "%s/%s", w->d->paths.sandboxes_dir, name);
	if (lstat(sock, &st) != 0 && lstat(dir, &st) != 0)
		return;
	sbx_strlcpy(w->names[w->n++], name, sizeof(w->names[0]));
}

void sbx_sandboxes_sweep(struct sbx_daemon *d)
{
	struct sweep *w = calloc(1, sizeof(*w));
	char path[PATH_MAX];
	DIR *dp;
	struct dirent *de;
	sbx_err err = SBX_ERR_INIT;

	if (!w)
		return;
	w->d = d;
	if (sbx_cgroup_version(d->cg) != SBX_CGROUP_NONE)
		sbx_cgroup_list(d->cg, sweep_cgroup, w);
	for (size_t i = 0; i < w->n; i++) {
		log_warn("removing the cgroup of unknown sandbox %s", w->names[i]);
		sbx_cgroup_kill(d->cg, w->names[i], NULL);
		sbx_cgroup_destroy(d->cg, w->names[i], NULL);
	}
	free(w);
	if ((dp = opendir(d->paths.sandboxes_dir))) {
		while ((de = readdir(dp))) {
			if (!looks_like_id(de->d_name) || known_id(d, de->d_name))
				continue;
			snprintf(path, sizeof(path), "%s/%s", d->paths.sandboxes_dir, de->d_name);
			log_warn("removing %s, left by a sandbox that no longer exists", path);
			if (sbx_idmap_rm_rf(&d->idmap, path, &err) < 0)
				log_warn("%s", err.msg);
		}
		closedir(dp);
	}
	snprintf(path, sizeof(path), "%s/sandboxes", d->paths.runtime_dir);
	if ((dp = opendir(path))) {
		while ((de = readdir(dp))) {
			char id[64];
			if (!sbx_str_has_suffix(de->d_name, ".sock") || strlen(de->d_name) >= sizeof(id))
				continue;
			snprintf(id, sizeof(id), "%.*s", (int)(strlen(de->d_name) - 5), de->d_name);
			if (looks_like_id(id) && !known_id(d, id))
				unlinkat(dirfd(dp), de->d_name, 0);
		}
		closedir(dp);
	}
}
