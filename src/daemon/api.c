
#include "api.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agents.h"
#include "api_audit.h"
#include "api_policy.h"
#include "api_review.h"
#include "api_secret.h"
#include "buf.h"
#include "cleanup.h"
#include "fdpass.h"
#include "http1.h"
#include "log.h"
#include "proxy.h"
#include "credinject.h"
#include "secrets.h"
#include "util.h"

#define API_MAX_BODY (1u << 20)
#define API_MAX_IN (API_MAX_BODY + SBX_HTTP_MAX_HEAD)
#define API_MAX_OUT (8u << 20)
#define STREAM_MAX_LINE 4096

enum conn_state { C_READ, C_WAIT, C_WRITE, C_STREAM };

struct conn {
	struct sbx_daemon *d;
	int fd;
	enum conn_state state;
	sbx_buf in, out;
	bool close_after_write;
	uid_t peer_uid;
	/* current request */
	char method[16];
	char path[1024];
	char query[512];
	json_t *body;
	size_t req_len; /* bytes of `in` used by the current request */
	/* pending work */
	struct sbx_waiter *waiter; /* owned by the sandbox; NULL when none is pending */
	char target[64]; /* the sandbox a pending operation is about */
	bool rm_force;
	struct sbx_exec *exec;
	bool exec_tty;
	const struct sbx_agent_profile *run_agent; /* `run` of an agent: explain a missing program */
	bool run_rm;                               /* `run --rm`: the sandbox goes with the process */
	struct conn *next;
};

static int listen_fd = -1;
static struct conn *conns;

static void conn_close(struct conn *c);
static void conn_io(struct sbx_loop *loop, int fd, unsigned events, void *ud);
static void process(struct conn *c);

/* ---- responses ---- */

static void want(struct conn *c, unsigned ev)
{
	sbx_loop_mod(c->d->loop, c->fd, ev);
}

static void flush(struct conn *c)
{
	while (c->out.len > 0) {
		ssize_t w = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				want(c, SBX_EV_WRITE | (c->state == C_STREAM ? SBX_EV_READ : 0));
				return;
			}
			conn_close(c);
			return;
		}
		sbx_buf_consume(&c->out, (size_t)w);
	}
	if (c->close_after_write) {
		conn_close(c);
		return;
	}
	if (c->state == C_STREAM) {
		want(c, SBX_EV_READ);
		return;
	}
	/* Ready for the next request on this connection. */
	sbx_buf_consume(&c->in, c->req_len);
	c->req_len = 0;
	c->state = C_READ;
	want(c, SBX_EV_READ);
	if (c->in.len)
		process(c);
}

static void respond(struct conn *c, int status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	size_t len = text ? strlen(text) : 0;

	json_decref(body);
	sbx_buf_reset(&c->out);
	if (sbx_buf_printf(&c->out,
			   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			   "Sbx-Api-Version: " SBX_API_VERSION "\r\n%s\r\n",
			   status, sbx_http_status_text(status), len + (text ? 1 : 0),
			   c->close_after_write ? "Connection: close\r\n" : "") < 0 ||
	    (text && (sbx_buf_append(&c->out, text, len) < 0 || sbx_buf_append(&c->out, "\n", 1) < 0))) {
		free(text);
		conn_close(c);
		return;
	}
	free(text);
	c->state = C_WRITE;
	flush(c);
}

static void respond_err(struct conn *c, const sbx_err *err)
{
	json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", sbx_errc_name(err->code), "message", err->msg);
	respond(c, sbx_errc_http_status(err->code), o);
}

static void respond_errf(struct conn *c, enum sbx_errc code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void respond_errf(struct conn *c, enum sbx_errc code, const char *fmt, ...)
{
	sbx_err err = SBX_ERR_INIT;
	va_list ap;

	err.code = code;
	va_start(ap, fmt);
	vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
	va_end(ap);
	respond_err(c, &err);
}

/* ---- JSON views ---- */

static json_t *sandbox_json(const struct sbx_sandbox *sb)
{
	json_t *ws = json_array();
	size_t nexec = 0;

	for (size_t i = 0; i < sb->spec.nws; i++)
		json_array_append_new(ws, json_pack("{s:s, s:b}", "path", sb->spec.ws[i].path, "ro", sb->spec.ws[i].ro));
	for (struct sbx_exec *e = sb->execs; e; e = e->next)
		nexec++;
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "id", sb->id, "name",
			      sb->name, "agent", sb->agent, "isolation", sb->isolation, "state", sbx_state_name(sb->state),
			      "workspaces", ws, "created_at", (json_int_t)sb->created_at, "started_at",
			      (json_int_t)sb->started_at, "init_pid", (json_int_t)sb->init_pid, "memory",
			      (json_int_t)sb->spec.memory, "millicpus", (json_int_t)sb->spec.millicpus, "pids",
			      (json_int_t)(sb->spec.pids ? sb->spec.pids : SBX_DEFAULT_PIDS), "execs", (json_int_t)nexec);
	json_object_set_new(o, "ephemeral", json_boolean(sb->spec.ephemeral));
	if (sb->error)
		json_object_set_new(o, "error", json_string(sb->error));
	if (sb->spec.agent_args_set) {
		json_t *args = json_array();
		for (size_t i = 0; i < sb->spec.nargs; i++)
			json_array_append_new(args, json_string(sb->spec.agent_args[i]));
		json_object_set_new(o, "agent_args", args);
	}
	if (sb->state == SBX_STATE_RUNNING && sbx_cgroup_version(sb->d->cg) != SBX_CGROUP_NONE) {
		struct sbx_cgroup_stats st = {0};
		if (sbx_cgroup_stats(sb->d->cg, sb->id, &st) == 0)
			json_object_set_new(o, "memory_current", json_integer((json_int_t)st.memory_current));
	}
	return o;
}

/* ---- handlers ---- */

static struct sbx_sandbox *lookup(struct conn *c, const char *name)
{
	struct sbx_sandbox *sb = sbx_sandbox_find(c->d, name);

	if (!sb)
		respond_errf(c, SBX_E_NOTFOUND, "no sandbox named '%s' (see `sbx ls`)", name);
	return sb;
}

static void h_version(struct conn *c)
{
	json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:s, s:s, s:i}", "version", SBX_VERSION, "api", SBX_API_VERSION,
			      "pid", (int)getpid(), "uid", (int)geteuid(), "idmap", sbx_idmap_mode_name(c->d->idmap.mode),
			      "cgroup", sbx_cgroup_describe(c->d->cg), "landlock_abi", c->d->landlock_abi);
	respond(c, 200, o);
}

static void h_list(struct conn *c)
{
	json_t *arr = json_array();

	for (struct sbx_sandbox *sb = c->d->sandboxes; sb; sb = sb->next)
		json_array_append_new(arr, sandbox_json(sb));
	respond(c, 200, json_pack("{s:o}", "sandboxes", arr));
}

static bool forbidden_workspace(const struct sbx_daemon *d, const char *p, char *why, size_t n)
{
	static const char *const exact[] = {"/", "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
					    "/var", "/boot", "/tmp", "/home", "/opt", "/root", "/srv", "/mnt", "/media"};
	static const char *const below[] = {"/proc", "/sys", "/dev", "/run", "/boot"};
	const char *own[] = {d->paths.state_dir, d->paths.config_dir, d->paths.runtime_dir};

	for (size_t i = 0; i < SBX_ARRAY_LEN(exact); i++)
		if (strcmp(p, exact[i]) == 0) {
			snprintf(why, n, "%s is a system directory; use a project directory as the workspace", p);
			return true;
		}
	for (size_t i = 0; i < SBX_ARRAY_LEN(below); i++) {
		size_t l = strlen(below[i]);
		if (strncmp(p, below[i], l) == 0 && (p[l] == '/' || p[l] == '\0')) {
			snprintf(why, n, "%s is under %s, which cannot be a workspace", p, below[i]);
			return true;
		}
	}
	for (size_t i = 0; i < SBX_ARRAY_LEN(own); i++) {
		size_t l = strlen(own[i]);
		if (strncmp(p, own[i], l) == 0 && (p[l] == '/' || p[l] == '\0')) {
			snprintf(why, n, "%s is inside sbx's own state (%s) and cannot be a workspace", p, own[i]);
			return true;
		}
	}
	return false;
}

static int parse_workspaces(struct conn *c, json_t *arr, struct sbx_spec *spec, sbx_err *err)
{
	size_t i;
	json_t *v;

	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return sbx_err_set(err, SBX_E_INVALID, "at least one workspace is required");
	if (json_array_size(arr) > SBX_MAX_WORKSPACES)
		return sbx_err_set(err, SBX_E_INVALID, "at most %d workspaces are allowed", SBX_MAX_WORKSPACES);
	json_array_foreach(arr, i, v)
	{
		const char *p = json_string_value(json_object_get(v, "path"));
		char real[PATH_MAX], why[512];
		struct stat st;

		if (!p || p[0] != '/')
			return sbx_err_set(err, SBX_E_INVALID, "workspace paths must be absolute");
		if (!realpath(p, real))
			return sbx_err_sys(err, SBX_E_NOINPUT, errno, "workspace %s does not exist: create it first", p);
		if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
			return sbx_err_set(err, SBX_E_NOINPUT, "workspace %s is not a directory: give a directory", p);
		if (strpbrk(real, ",:\\\n"))
			return sbx_err_set(err, SBX_E_INVALID,
					   "workspace %s contains a character sbx cannot mount (',' ':' '\\' or newline)",
					   real);
		if (forbidden_workspace(c->d, real, why, sizeof(why)))
			return sbx_err_set(err, SBX_E_INVALID, "%s", why);
		for (size_t j = 0; j < spec->nws; j++)
			if (strcmp(spec->ws[j].path, real) == 0)
				return sbx_err_set(err, SBX_E_INVALID, "workspace %s is given twice", real);
		sbx_strlcpy(spec->ws[spec->nws].path, real, sizeof(spec->ws[0].path));
		spec->ws[spec->nws++].ro = json_is_true(json_object_get(v, "ro"));
	}
	return 0;
}

static bool env_entry_valid(const char *s)
{
	const char *eq = strchr(s, '=');

	if (!eq || eq == s)
		return false;
	for (const char *p = s; p < eq; p++)
		if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (p > s && *p >= '0' && *p <= '9')))
			return false;
	return true;
}

static int parse_strings(json_t *arr, char **out, size_t *n, size_t max, bool env, const char *what, sbx_err *err)
{
	size_t i;
	json_t *v;

	if (!arr)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > max)
		return sbx_err_set(err, SBX_E_INVALID, "%s: expected a list of at most %zu strings", what, max);
	json_array_foreach(arr, i, v)
	{
		const char *s = json_string_value(v);
		if (!s)
			return sbx_err_set(err, SBX_E_INVALID, "%s: expected strings", what);
		if (env && !env_entry_valid(s))
			return sbx_err_set(err, SBX_E_INVALID, "invalid environment entry '%s': use KEY=VALUE", s);
		out[(*n)++] = strdup(s);
	}
	return 0;
}

/* Creates a sandbox from a create request body; 0, or -1 with err. */
static int create_from(struct conn *c, json_t *req, struct sbx_sandbox **out, sbx_err *err)
{
	struct sbx_spec spec = {0};
	const char *name = json_string_value(json_object_get(req, "name"));
	const char *agent = json_string_value(json_object_get(req, "agent"));
	const char *iso = json_string_value(json_object_get(req, "isolation"));

	if (!agent)
		agent = "shell";
	if (!sbx_agent_find(agent))
		return sbx_err_set(err, SBX_E_INVALID, "unknown agent '%s': choose one of %s", agent, sbx_agent_names());
	if (!iso || strcmp(iso, "auto") == 0)
		iso = "ns";
	if (strcmp(iso, "ns") != 0)
		return sbx_err_set(err, SBX_E_UNSUPPORTED, "isolation '%s' is not available in this build: use ns", iso);
	if (!name)
		return sbx_err_set(err, SBX_E_INVALID, "a sandbox name is required");
	if (parse_workspaces(c, json_object_get(req, "workspaces"), &spec, err) < 0 ||
	    parse_strings(json_object_get(req, "env"), spec.env, &spec.nenv, SBX_MAX_ENV, true, "env", err) < 0 ||
	    parse_strings(json_object_get(req, "agent_args"), spec.agent_args, &spec.nargs, SBX_MAX_AGENT_ARGS, false,
			  "agent arguments", err) < 0) {
		sbx_spec_clear(&spec);
		return -1;
	}
	spec.agent_args_set = json_object_get(req, "agent_args") != NULL;
	spec.memory = (uint64_t)json_integer_value(json_object_get(req, "memory"));
	spec.millicpus = (uint32_t)json_integer_value(json_object_get(req, "millicpus"));
	spec.pids = (uint32_t)json_integer_value(json_object_get(req, "pids"));
	spec.ephemeral = json_is_true(json_object_get(req, "ephemeral"));
	if (spec.memory && spec.memory < (16u << 20)) {
		sbx_spec_clear(&spec);
		return sbx_err_set(err, SBX_E_INVALID, "a memory limit below 16 MiB cannot run a sandbox: use at least 16m");
	}
	if (sbx_sandbox_create(c->d, name, agent, iso, &spec, out, err) < 0) {
		sbx_spec_clear(&spec);
		return -1;
	}
	return 0;
}

/* "host_env": {"ANTHROPIC_API_KEY": "...", ...} from the CLI's environment (the services' host
 * variables only): kept in memory for the proxy, replacing what an earlier command sent. */
static int take_host_env(struct sbx_sandbox *sb, json_t *v, sbx_err *err)
{
	const char *k;
	json_t *val;

	if (!v)
		return 0;
	if (!json_is_object(v) || json_object_size(v) > 64)
		return sbx_err_set(err, SBX_E_INVALID, "'host_env' must be an object of at most 64 variables");
	json_object_foreach(v, k, val)
	{
		const char *s = json_string_value(val);
		size_t kl = strlen(k);
		if (kl == 0 || kl > 64 || strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != kl)
			return sbx_err_set(err, SBX_E_INVALID, "'host_env': '%.64s' is not a variable name", k);
		if (!s || strlen(s) > 16384 || strpbrk(s, "\r\n"))
			return sbx_err_set(err, SBX_E_INVALID, "'host_env': the value of %s is not usable", k);
	}
	if (!sb)
		return 0; /* validated only */
	json_decref(sb->host_env);
	sb->host_env = json_deep_copy(v);
	return 0;
}

static void h_create(struct conn *c)
{
	struct sbx_sandbox *sb;
	sbx_err err = SBX_ERR_INIT;

	if (take_host_env(NULL, json_object_get(c->body, "host_env"), &err) < 0 || create_from(c, c->body, &sb, &err) < 0 ||
	    take_host_env(sb, json_object_get(c->body, "host_env"), &err) < 0)
		respond_err(c, &err);
	else
		respond(c, 201, sandbox_json(sb));
}

static void started_cb(void *ud, struct sbx_sandbox *sb, const sbx_err *err)
{
	struct conn *c = ud;

	c->waiter = NULL;
	if (err)
		respond_err(c, err);
	else
		respond(c, 200, sandbox_json(sb));
}

static struct sbx_waiter *wait_on(struct conn *c, void (*cb)(void *, struct sbx_sandbox *, const sbx_err *))
{
	c->waiter = calloc(1, sizeof(*c->waiter));
	if (!c->waiter) {
		respond_errf(c, SBX_E_INTERNAL, "out of memory");
		return NULL;
	}
	c->waiter->cb = cb;
	c->waiter->ud = c;
	c->state = C_WAIT;
	want(c, 0);
	return c->waiter;
}

static void h_start(struct conn *c, struct sbx_sandbox *sb)
{
	sbx_err err = SBX_ERR_INIT;
	struct sbx_waiter *w;

	if (take_host_env(sb, json_object_get(c->body, "host_env"), &err) < 0) {
		respond_err(c, &err);
		return;
	}
	w = wait_on(c, started_cb);

	if (w)
		sbx_sandbox_start(sb, w);
}

static void stopped_cb(void *ud, struct sbx_sandbox *sb, const sbx_err *err)
{
	struct conn *c = ud;

	c->waiter = NULL;
	if (err)
		respond_err(c, err);
	else
		respond(c, 200, sandbox_json(sb));
}

static uint32_t grace_from(json_t *body)
{
	json_t *g = json_object_get(body, "grace_ms");
	json_int_t v = json_is_integer(g) ? json_integer_value(g) : 5000;

	return v < 0 ? 0 : v > 60000 ? 60000 : (uint32_t)v;
}

static void h_stop(struct conn *c, struct sbx_sandbox *sb)
{
	struct sbx_waiter *w = wait_on(c, stopped_cb);

	if (w)
		sbx_sandbox_stop(sb, grace_from(c->body), w);
}

static void removed_cb(void *ud, struct sbx_sandbox *sb, const sbx_err *err)
{
	struct conn *c = ud;
	sbx_err e2 = SBX_ERR_INIT;
	char name[64];

	c->waiter = NULL;
	if (err) {
		respond_err(c, err);
		return;
	}
	sbx_strlcpy(name, sb->name, sizeof(name));
	if (sbx_sandbox_remove(sb, &e2) < 0) {
		respond_err(c, &e2);
		return;
	}
	respond(c, 200, json_pack("{s:s}", "removed", name));
}

static void h_remove(struct conn *c, struct sbx_sandbox *sb)
{
	bool force = strstr(c->query, "force=1") || strstr(c->query, "force=true");

	if (sb->state == SBX_STATE_RUNNING || sb->state == SBX_STATE_STARTING || sb->state == SBX_STATE_STOPPING) {
		if (!force) {
			respond_errf(c, SBX_E_CONFLICT,
				     "sandbox '%s' is %s: stop it first (`sbx stop %s`) or use `sbx rm -f %s`", sb->name,
				     sbx_state_name(sb->state), sb->name, sb->name);
			return;
		}
		struct sbx_waiter *w = wait_on(c, removed_cb);
		if (w)
			sbx_sandbox_stop(sb, 0, w);
		return;
	}
	removed_cb(c, sb, NULL);
}

static void h_prune(struct conn *c)
{
	json_t *removed = json_array(), *failed = json_array();
	struct sbx_sandbox *sb = c->d->sandboxes, *next;

	for (; sb; sb = next) {
		sbx_err err = SBX_ERR_INIT;
		char name[64];
		next = sb->next;
		if (sb->state == SBX_STATE_RUNNING || sb->state == SBX_STATE_STARTING || sb->state == SBX_STATE_STOPPING)
			continue;
		sbx_strlcpy(name, sb->name, sizeof(name));
		if (sbx_sandbox_remove(sb, &err) == 0)
			json_array_append_new(removed, json_string(name));
		else
			json_array_append_new(failed, json_pack("{s:s, s:s}", "name", name, "error", err.msg));
	}
	respond(c, 200, json_pack("{s:o, s:o}", "removed", removed, "failed", failed));
}

/* ---- exec ---- */

static void stream_event(struct conn *c, json_t *ev)
{
	char *text = json_dumps(ev, JSON_COMPACT);

	json_decref(ev);
	if (!text || sbx_buf_append_str(&c->out, text) < 0 || sbx_buf_append(&c->out, "\n", 1) < 0) {
		free(text);
		conn_close(c);
		return;
	}
	free(text);
	flush(c);
}

void sbx_api_sandbox_event(struct sbx_daemon *d, const char *sandbox_id, json_t *ev)
{
	struct conn *c, *next;

	(void)d;
	for (c = conns; c; c = next) {
		next = c->next; /* stream_event may close c */
		if (c->fd >= 0 && c->state == C_STREAM && c->exec && c->exec->sb && strcmp(c->exec->sb->id, sandbox_id) == 0)
			stream_event(c, json_incref(ev));
	}
}

static void exec_exit_cb(struct sbx_exec *ex, int ws)
{
	struct conn *c = ex->ud;
	json_t *ev;

	if (WIFSIGNALED(ws))
		ev = json_pack("{s:s, s:i, s:i}", "event", "exit", "exit_code", 128 + WTERMSIG(ws), "signal", WTERMSIG(ws));
	else
		ev = json_pack("{s:s, s:i}", "event", "exit", "exit_code", WIFEXITED(ws) ? WEXITSTATUS(ws) : 255);
	if (!c)
		return;
	c->exec = NULL;
	c->close_after_write = true;
	stream_event(c, ev);
}

static void exec_started_cb(struct sbx_exec *ex, const int *fds, size_t nfds, uint32_t mask, const sbx_err *err)
{
	struct conn *c = ex->ud;
	char head[512];

	if (!c) {
		return;
	}
	if (err) {
		sbx_err e = *err;
		const char *argv0 = json_string_value(json_array_get(json_object_get(c->body, "argv"), 0));
		/* docker's convention: 127 not found, 126 not executable, 125 could not run it */
		int code = e.sys_errno == ENOENT ? 127 : e.sys_errno == EACCES ? 126 : 125;
		c->exec = NULL;
		json_t *o = json_pack("{s:{s:s, s:s, s:i}}", "error", "code", sbx_errc_name(e.code), "message", e.msg,
				      "exit_code", code);
		if (e.sys_errno == ENOENT && c->run_agent)
			json_object_set_new(json_object_get(o, "error"), "message",
					    json_sprintf("%s (%s) is not installed in sandbox '%s'.\nInstall it inside the "
							 "sandbox (it stays installed across restarts):\n    sbx exec -u root %s %s",
							 c->run_agent->command, c->run_agent->description, ex->sb->name,
							 ex->sb->name, c->run_agent->install));
		else if (e.sys_errno == ENOENT && argv0)
			json_object_set_new(json_object_get(o, "error"), "message",
					    json_sprintf("%s: command not found in the sandbox", argv0));
		respond(c, sbx_errc_http_status(e.code), o);
		return;
	}
	if (ex->detached) {
		c->exec = NULL;
		respond(c, 201, json_pack("{s:i, s:i}", "exec_id", (int)ex->id, "pid", (int)ex->pid));
		return;
	}
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: sbx-exec/1\r\nConnection: Upgrade\r\n"
			 "Sbx-Exec-Id: %u\r\nSbx-Exec-Fds: %u\r\nSbx-Exec-Pid: %d\r\n\r\n",
			 ex->id, mask, (int)ex->pid);
	/* The head is small and the socket idle: it goes out in one sendmsg with the fds. */
	if (sbx_send_fds(c->fd, head, (size_t)n, fds, nfds) < 0) {
		log_warn("exec %u: cannot hand the streams to the client: %s", ex->id, strerror(errno));
		sbx_exec_signal(ex, SIGKILL);
		conn_close(c);
		return;
	}
	sbx_buf_consume(&c->in, c->req_len);
	c->req_len = 0;
	c->state = C_STREAM;
	/* The upgrade request said "Connection: upgrade", not keep-alive: the stream still stays
	 * open for events (review notices) until the exit event closes it. */
	c->close_after_write = false;
	want(c, SBX_EV_READ);
	if (c->in.len)
		process(c);
}

static int parse_user(struct conn *c, struct sbx_sandbox *sb, const char *user, uid_t *uid, gid_t *gid, sbx_err *err)
{
	int64_t v;

	if (!user || strcmp(user, "agent") == 0 || strcmp(user, "1000") == 0) {
		*uid = SBX_AGENT_UID;
		*gid = SBX_AGENT_GID;
		return 0;
	}
	if (strcmp(user, "root") == 0 || strcmp(user, "0") == 0) {
		if (!sbx_idmap_has_root(&c->d->idmap))
			return sbx_err_set(err, SBX_E_UNSUPPORTED, "%s", c->d->idmap.why_not_root);
		*uid = 0;
		*gid = 0;
		return 0;
	}
	if (sbx_parse_i64(user, 0, 65535, &v) == 0) {
		if (!sbx_idmap_has_root(&c->d->idmap))
			return sbx_err_set(err, SBX_E_UNSUPPORTED, "%s", c->d->idmap.why_not_root);
		*uid = (uid_t)v;
		*gid = (gid_t)v;
		return 0;
	}
	return sbx_err_set(err, SBX_E_INVALID, "unknown user '%s' in sandbox '%s': use agent, root or a numeric uid",
			   user, sb->name);
}

static void h_exec(struct conn *c, struct sbx_sandbox *sb)
{
	json_t *argv_j = json_object_get(c->body, "argv");
	const char *cwd = json_string_value(json_object_get(c->body, "cwd"));
	const char *user = json_string_value(json_object_get(c->body, "user"));
	bool tty = json_is_true(json_object_get(c->body, "tty"));
	bool detach = json_is_true(json_object_get(c->body, "detach"));
	bool want_stdin = json_is_true(json_object_get(c->body, "stdin"));
	unsigned rows = (unsigned)json_integer_value(json_object_get(c->body, "rows"));
	unsigned cols = (unsigned)json_integer_value(json_object_get(c->body, "cols"));
	cleanup_free const char **argv = NULL;
	cleanup_free char **env = NULL;
	size_t nenv = 0, i;
	json_t *v;
	sbx_err err = SBX_ERR_INIT;
	uid_t uid = SBX_AGENT_UID;
	gid_t gid = SBX_AGENT_GID;
	char buf[8][PATH_MAX + 16];
	char ph_buf[24][320]; /* placeholders (sbx_sandbox_exec below copies them) */
	struct sbx_exec *ex;

	if (!json_is_array(argv_j) || json_array_size(argv_j) == 0 || json_array_size(argv_j) > 65536) {
		respond_errf(c, SBX_E_INVALID, "a command is required");
		return;
	}
	if (parse_user(c, sb, user, &uid, &gid, &err) < 0) {
		respond_err(c, &err);
		return;
	}
	argv = calloc(json_array_size(argv_j) + 1, sizeof(char *));
	json_t *env_j = json_object_get(c->body, "env");
	env = calloc(64 + sb->spec.nenv + json_array_size(env_j) + 1, sizeof(char *));
	if (!argv || !env) {
		respond_errf(c, SBX_E_INTERNAL, "out of memory");
		return;
	}
	json_array_foreach(argv_j, i, v)
	{
		if (!json_is_string(v)) {
			respond_errf(c, SBX_E_INVALID, "command arguments must be strings");
			return;
		}
		argv[i] = json_string_value(v);
	}
	/* Environment: a clean base, then the sandbox's, then this exec's (later entries win
	 * because the loop below replaces earlier ones with the same key). */
	const char *home = uid == 0 ? "/root" : "/home/agent";
	const char *uname = uid == 0 ? "root" : uid == SBX_AGENT_UID ? "agent" : "user";
	snprintf(buf[0], sizeof(buf[0]), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	snprintf(buf[1], sizeof(buf[1]), "HOME=%s", home);
	snprintf(buf[2], sizeof(buf[2]), "USER=%s", uname);
	snprintf(buf[3], sizeof(buf[3]), "LOGNAME=%s", uname);
	snprintf(buf[4], sizeof(buf[4]), "SHELL=/bin/bash");
	snprintf(buf[5], sizeof(buf[5]), "LANG=C.UTF-8");
	snprintf(buf[6], sizeof(buf[6]), "SBX_SANDBOX=%s", sb->name);
	snprintf(buf[7], sizeof(buf[7]), "HOSTNAME=%s", sb->name);
	for (size_t k = 0; k < 8; k++)
		env[nenv++] = buf[k];
	/* The way out: the proxy variables (clients that ignore them are captured anyway). */
	for (const char *const *pe = sbx_proxy_env(); *pe; pe++)
		env[nenv++] = (char *)*pe;
	/* Placeholders for the services this sandbox has a secret for: the proxy puts the real
	 * value in, on the service's hosts only. */
	size_t nsvc, nph = 0;
	const struct sbx_service *svcs = sbx_services(&nsvc);
	for (size_t k = 0; k < nsvc; k++) {
		if (!sbx_cred_service_available(sb->d->store, sb->host_env, &svcs[k], sb->name))
			continue;
		for (size_t e = 0; e < SBX_ARRAY_LEN(svcs[k].sandbox_env) && svcs[k].sandbox_env[e] &&
				   nph < SBX_ARRAY_LEN(ph_buf);
		     e++) {
			char val[256];
			sbx_secret_placeholder_env(&svcs[k], svcs[k].sandbox_env[e], sb->id, val, sizeof(val));
			if (!val[0])
				continue;
			snprintf(ph_buf[nph], sizeof(ph_buf[nph]), "%s=%s", svcs[k].sandbox_env[e], val);
			env[nenv++] = ph_buf[nph++];
		}
	}
	const char *extra_sources[2][SBX_MAX_ENV + 1] = {{0}};
	for (size_t k = 0; k < sb->spec.nenv; k++)
		extra_sources[0][k] = sb->spec.env[k];
	size_t ne = 0;
	json_array_foreach(env_j, i, v)
	{
		const char *s = json_string_value(v);
		if (!s || !env_entry_valid(s)) {
			respond_errf(c, SBX_E_INVALID, "invalid environment entry '%s': use KEY=VALUE", s ? s : "");
			return;
		}
		if (ne < SBX_MAX_ENV)
			extra_sources[1][ne++] = s;
	}
	for (size_t src = 0; src < 2; src++)
		for (size_t k = 0; extra_sources[src][k]; k++) {
			const char *s = extra_sources[src][k];
			size_t kl = (size_t)(strchr(s, '=') - s) + 1;
			size_t j;
			for (j = 0; j < nenv; j++)
				if (strncmp(env[j], s, kl) == 0)
					break;
			env[j] = (char *)s;
			if (j == nenv)
				nenv++;
		}
	env[nenv] = NULL;
	if (!cwd)
		cwd = sb->spec.nws ? sb->spec.ws[0].path : home;

	ex = calloc(1, sizeof(*ex));
	if (!ex) {
		respond_errf(c, SBX_E_INTERNAL, "out of memory");
		return;
	}
	ex->tty = tty && !detach;
	ex->detached = detach;
	ex->rm_on_exit = c->run_rm;
	ex->on_started = exec_started_cb;
	ex->on_exit = detach ? NULL : exec_exit_cb;
	ex->ud = c;
	c->exec = ex;
	c->exec_tty = ex->tty;
	c->state = C_WAIT;
	want(c, 0);
	if (sbx_sandbox_exec(sb, ex, argv, (const char *const *)env, cwd, uid, gid, rows, cols, want_stdin, &err) < 0) {
		c->exec = NULL;
		free(ex);
		respond_err(c, &err);
	}
}

/* ---- run: create if needed, start, exec the agent; one request for `sbx run` ---- */

static bool same_workspaces(const struct sbx_sandbox *sb, json_t *arr)
{
	size_t i;
	json_t *v;

	if (json_array_size(arr) != sb->spec.nws)
		return false;
	json_array_foreach(arr, i, v)
	{
		const char *p = json_string_value(json_object_get(v, "path"));
		char real[PATH_MAX];
		if (!p || !realpath(p, real) || strcmp(real, sb->spec.ws[i].path) != 0 ||
		    json_is_true(json_object_get(v, "ro")) != sb->spec.ws[i].ro)
			return false;
	}
	return true;
}

static void run_started_cb(void *ud, struct sbx_sandbox *sb, const sbx_err *err)
{
	struct conn *c = ud;
	const struct sbx_agent_profile *ap = sbx_agent_find(sb->agent);
	json_t *exec, *given, *argv;

	c->waiter = NULL;
	if (err) {
		if (c->run_rm && !sb->removed)
			sbx_sandbox_discard(sb);
		respond_err(c, err);
		return;
	}
	exec = json_deep_copy(json_object_get(c->body, "exec"));
	if (!json_is_object(exec)) {
		json_decref(exec);
		exec = json_object();
	}
	/* The agent's command line: its profile's command, then the arguments given now, or those
	 * given at creation, or the profile's defaults. `shell` runs given arguments as a command. */
	given = json_object_get(c->body, "agent_args");
	argv = json_array();
	if (!ap) {
		json_decref(argv);
		json_decref(exec);
		respond_errf(c, SBX_E_INVALID, "sandbox '%s' has an unknown agent '%s'", sb->name, sb->agent);
		return;
	}
	size_t nargs = json_is_array(given) ? json_array_size(given) : sb->spec.agent_args_set ? sb->spec.nargs : 0;
	if (!(ap->args_are_command && nargs))
		json_array_append_new(argv, json_string(ap->command));
	if (json_is_array(given)) {
		json_array_extend(argv, given);
	} else if (sb->spec.agent_args_set) {
		for (size_t i = 0; i < sb->spec.nargs; i++)
			json_array_append_new(argv, json_string(sb->spec.agent_args[i]));
	} else {
		for (size_t i = 0; ap->default_args[i]; i++)
			json_array_append_new(argv, json_string(ap->default_args[i]));
	}
	json_object_set_new(exec, "argv", argv);
	c->run_agent = (!(ap->args_are_command && nargs) && ap->install) ? ap : NULL;
	json_decref(c->body);
	c->body = exec;
	h_exec(c, sb);
}

static void h_run(struct conn *c)
{
	const char *name = json_string_value(json_object_get(c->body, "name"));
	json_t *create = json_object_get(c->body, "create");
	struct sbx_sandbox *sb = name ? sbx_sandbox_find(c->d, name) : NULL;
	sbx_err err = SBX_ERR_INIT;

	if (!name || !json_is_object(create)) {
		respond_errf(c, SBX_E_INVALID, "run needs a name and a create request");
		return;
	}
	if (sb && strcmp(sb->name, name) != 0)
		sb = NULL; /* an id prefix is not a name here */
	if (sb && json_is_true(json_object_get(c->body, "workspaces_given")) &&
	    !same_workspaces(sb, json_object_get(create, "workspaces"))) {
		respond_errf(c, SBX_E_CONFLICT,
			     "sandbox '%s' already exists with other workspaces: choose another name with --name, or "
			     "remove it (`sbx rm %s`)", name, name);
		return;
	}
	if (!sb) {
		json_object_set_new(create, "name", json_string(name));
		if (create_from(c, create, &sb, &err) < 0) {
			respond_err(c, &err);
			return;
		}
	}
	if (take_host_env(sb, json_object_get(create, "host_env"), &err) < 0) {
		respond_err(c, &err);
		return;
	}
	c->run_rm = json_is_true(json_object_get(c->body, "rm"));
	struct sbx_waiter *w = wait_on(c, run_started_cb);
	if (w)
		sbx_sandbox_start(sb, w);
}

/* One line from an exec client: {"signal": N} or {"resize": [rows, cols]}. */
static void stream_line(struct conn *c, const char *line)
{
	json_t *o = json_loads(line, 0, NULL), *v;

	if (!o || !c->exec) {
		json_decref(o);
		return;
	}
	if ((v = json_object_get(o, "signal")) && json_is_integer(v)) {
		json_int_t s = json_integer_value(v);
		if (s > 0 && s < 65)
			sbx_exec_signal(c->exec, (int)s);
	}
	if ((v = json_object_get(o, "resize")) && json_is_array(v) && json_array_size(v) == 2) {
		json_int_t r = json_integer_value(json_array_get(v, 0)), k = json_integer_value(json_array_get(v, 1));
		if (r > 0 && k > 0 && r < 10000 && k < 10000)
			sbx_exec_resize(c->exec, (unsigned)r, (unsigned)k);
	}
	json_decref(o);
}

static void h_diagnose(struct conn *c)
{
	char why[512] = "";
	json_t *backends = json_array();
	int ok = sbx_backend_ns.probe(c->d, why, sizeof(why)) == 0;

	enum sbx_cgroup_version cv = sbx_cgroup_version(c->d->cg);
	json_array_append_new(backends, json_pack("{s:s, s:b, s:s}", "name", "ns", "works", ok, "detail",
						  ok ? (cv != SBX_CGROUP_NONE ? "namespaces, seccomp, landlock, cgroup limits"
									      : "namespaces, seccomp, landlock (no cgroup limits)")
						     : why));
	json_array_append_new(backends, json_pack("{s:s, s:b, s:s}", "name", "vm", "works", 0, "detail",
						  "not available in this build"));
	json_array_append_new(backends, json_pack("{s:s, s:b, s:s}", "name", "gvisor", "works", 0, "detail",
						  "not available in this build"));
	json_t *o = json_pack("{s:o, s:s, s:s, s:i, s:s, s:s, s:s}", "backends", backends, "idmap",
			      sbx_idmap_mode_name(c->d->idmap.mode), "cgroup", sbx_cgroup_describe(c->d->cg),
			      "landlock_abi", c->d->landlock_abi, "seccomp", sbx_seccomp_summary(), "state_dir",
			      c->d->paths.state_dir, "runtime_dir", c->d->paths.runtime_dir);
	if (!sbx_idmap_has_root(&c->d->idmap))
		json_object_set_new(o, "root_inside", json_string(c->d->idmap.why_not_root));
	json_object_set_new(o, "cgroup_version", json_string(cv == SBX_CGROUP_V2 ? "v2" : cv == SBX_CGROUP_V1 ? "v1" : "none"));
	if (c->d->proxy) {
		struct sbx_proxy_stats st;
		const char *ie = sbx_proxy_interception_error(c->d->proxy);
		sbx_proxy_stats(c->d->proxy, &st);
		json_object_set_new(o, "proxy",
				    json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I}", "interception", ie == NULL, "interception_detail",
					      ie ? ie : "the sbx CA is in use; sandboxes trust it", "connections_active",
					      (json_int_t)st.conns_active, "connections_total", (json_int_t)st.conns_total,
					      "dns_queries", (json_int_t)st.dns_queries, "refused", (json_int_t)st.refused,
					      "audit_rejected", (json_int_t)st.audit_rejected));
	}
	respond(c, 200, o);
}

/* ---- routing ---- */

static void route(struct conn *c)
{
	const char *m = c->method, *p = c->path;
	char name[128];

	if (strcmp(p, "/v1/version") == 0 && strcmp(m, "GET") == 0)
		return h_version(c);
	if (strcmp(p, "/v1/sandboxes") == 0) {
		if (strcmp(m, "GET") == 0)
			return h_list(c);
		if (strcmp(m, "POST") == 0)
			return h_create(c);
	}
	if (strcmp(p, "/v1/prune") == 0 && strcmp(m, "POST") == 0)
		return h_prune(c);
	if (strcmp(p, "/v1/run") == 0 && strcmp(m, "POST") == 0)
		return h_run(c);
	if (strcmp(p, "/v1/diagnose") == 0 && strcmp(m, "GET") == 0)
		return h_diagnose(c);
	if (strcmp(p, "/v1/shutdown") == 0 && strcmp(m, "POST") == 0) {
		c->d->shutting_down = true;
		c->close_after_write = true;
		respond(c, 200, json_pack("{s:b}", "stopping", 1));
		sbx_loop_stop(c->d->loop);
		return;
	}
	if (strcmp(p, "/v1/policy") == 0 || strncmp(p, "/v1/policy/", 11) == 0) {
		sbx_err err = SBX_ERR_INIT;
		int status = 200;
		json_t *res = sbx_api_policy(c->d, m, p, c->query, c->body, &status, &err);
		if (res)
			respond(c, status, res);
		else
			respond_err(c, &err);
		return;
	}
	if (strcmp(p, "/v1/audit") == 0 || strncmp(p, "/v1/audit/", 10) == 0) {
		sbx_err err = SBX_ERR_INIT;
		int status = 200;
		json_t *res = sbx_api_audit(c->d, m, p, c->query, c->body, &status, &err);
		if (res)
			respond(c, status, res);
		else
			respond_err(c, &err);
		return;
	}
	if (strcmp(p, "/v1/reviews") == 0 || strncmp(p, "/v1/reviews/", 12) == 0 || strcmp(p, "/v1/approvers") == 0 ||
	    strncmp(p, "/v1/approvers/", 14) == 0) {
		sbx_err err = SBX_ERR_INIT;
		int status = 200;
		json_t *res = sbx_api_review(c->d, m, p, c->query, c->body, c->peer_uid, &status, &err);
		if (res)
			respond(c, status, res);
		else
			respond_err(c, &err);
		return;
	}
	if (strcmp(p, "/v1/secrets") == 0 || strncmp(p, "/v1/secrets/", 12) == 0) {
		sbx_err err = SBX_ERR_INIT;
		int status = 200;
		json_t *res = sbx_api_secret(c->d, m, p, c->query, c->body, &status, &err);
		if (res)
			respond(c, status, res);
		else
			respond_err(c, &err);
		return;
	}
	if (strncmp(p, "/v1/sandboxes/", 14) == 0) {
		const char *rest = p + 14, *slash = strchr(rest, '/');
		size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
		const char *action = slash ? slash + 1 : "";
		struct sbx_sandbox *sb;

		if (n == 0 || n >= sizeof(name))
			return respond_errf(c, SBX_E_NOTFOUND, "no such sandbox");
		memcpy(name, rest, n);
		name[n] = '\0';
		sbx_strlcpy(c->target, name, sizeof(c->target));
		if (!(sb = lookup(c, name)))
			return;
		if (!*action && strcmp(m, "GET") == 0)
			return respond(c, 200, sandbox_json(sb));
		if (!*action && strcmp(m, "DELETE") == 0)
			return h_remove(c, sb);
		if (strcmp(action, "start") == 0 && strcmp(m, "POST") == 0)
			return h_start(c, sb);
		if (strcmp(action, "stop") == 0 && strcmp(m, "POST") == 0)
			return h_stop(c, sb);
		if (strcmp(action, "exec") == 0 && strcmp(m, "POST") == 0)
			return h_exec(c, sb);
	}
	respond_errf(c, SBX_E_NOTFOUND, "no API endpoint %s %s (this daemon speaks API version %s)", m, p,
		     SBX_API_VERSION);
}

static void process(struct conn *c)
{
	struct sbx_http_msg msg;
	struct sbx_http_error herr;
	int r;

	if (c->state == C_STREAM) {
		char *nl;
		while ((nl = memchr(c->in.data, '\n', c->in.len))) {
			*nl = '\0';
			stream_line(c, c->in.data);
			if (c->fd < 0)
				return;
			sbx_buf_consume(&c->in, (size_t)(nl - c->in.data) + 1);
		}
		if (c->in.len > STREAM_MAX_LINE)
			conn_close(c);
		return;
	}
	if (c->state != C_READ)
		return;
	r = sbx_http_parse_request(c->in.data, c->in.len, &msg, &herr);
	if (r == SBX_HTTP_INCOMPLETE)
		return;
	if (r == SBX_HTTP_ERROR) {
		c->close_after_write = true;
		respond_errf(c, SBX_E_INVALID, "bad request: %s", herr.reason);
		return;
	}
	if (msg.body == SBX_HTTP_BODY_CHUNKED) {
		c->close_after_write = true;
		respond_errf(c, SBX_E_INVALID, "chunked request bodies are not accepted; send Content-Length");
		return;
	}
	uint64_t blen = msg.body == SBX_HTTP_BODY_LENGTH ? msg.content_length : 0;
	if (blen > API_MAX_BODY) {
		c->close_after_write = true;
		respond_errf(c, SBX_E_INVALID, "request body too large (limit %u bytes)", API_MAX_BODY);
		return;
	}
	if (c->in.len < msg.head_len + blen)
		return;
	c->req_len = msg.head_len + (size_t)blen;
	if (!msg.keep_alive)
		c->close_after_write = true;
	snprintf(c->method, sizeof(c->method), "%.*s", (int)msg.method.len, msg.method.p);
	const char *q = memchr(msg.target.p, '?', msg.target.len);
	size_t plen = q ? (size_t)(q - msg.target.p) : msg.target.len;
	snprintf(c->path, sizeof(c->path), "%.*s", (int)plen, msg.target.p);
	snprintf(c->query, sizeof(c->query), "%.*s", q ? (int)(msg.target.len - plen - 1) : 0, q ? q + 1 : "");
	json_decref(c->body);
	c->body = NULL;
	if (blen) {
		json_error_t jerr;
		c->body = json_loadb(c->in.data + msg.head_len, (size_t)blen, 0, &jerr);
		if (!c->body || !json_is_object(c->body)) {
			/* jansson's text ends with " near '<the bytes around>'": that could be a secret
			 * from the body (POST /v1/secrets), so the position says where instead. */
			char *near = strstr(jerr.text, " near '");
			if (near)
				*near = '\0';
			if (c->body)
				respond_errf(c, SBX_E_INVALID, "request body is not a JSON object");
			else
				respond_errf(c, SBX_E_INVALID, "request body is not a JSON object: %s (at byte %d)", jerr.text,
					     jerr.position);
			return;
		}
	} else {
		c->body = json_object();
	}
	route(c);
}

static void conn_free(struct sbx_loop *loop, void *ud)
{
	struct conn *c = ud;

	sbx_buf_free(&c->in);
	sbx_buf_free(&c->out);
	json_decref(c->body);
	free(c);
}

/* Closing only marks the connection dead; the memory goes after this loop iteration, because
 * callers up the stack may still look at c->fd. */
static void conn_close(struct conn *c)
{
	if (c->fd < 0)
		return;
	sbx_loop_del(c->d->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	if (c->waiter) {
		sbx_waiter_cancel(c->waiter);
		c->waiter = NULL;
	}
	if (c->exec) {
		sbx_exec_detach_requester(c->exec);
		c->exec = NULL;
	}
	for (struct conn **pp = &conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	if (!sbx_loop_timer(c->d->loop, 0, conn_free, c))
		conn_free(c->d->loop, c); /* no memory for a timer: free now, nothing else can be done */
}

static void conn_io(struct sbx_loop *loop, int fd, unsigned events, void *ud)
{
	struct conn *c = ud;

	if (events & SBX_EV_WRITE) {
		flush(c);
		if (c->fd < 0)
			return;
	}
	if (c->state == C_WAIT && !(events & SBX_EV_ERROR))
		return;
	if (events & (SBX_EV_READ | SBX_EV_ERROR)) {
		for (;;) {
			char *p = sbx_buf_reserve(&c->in, 16384 < sbx_buf_room(&c->in) ? 16384 : sbx_buf_room(&c->in));
			if (!p || sbx_buf_room(&c->in) == 0) {
				conn_close(c);
				return;
			}
			size_t room = sbx_buf_room(&c->in) < 16384 ? sbx_buf_room(&c->in) : 16384;
			ssize_t n = recv(fd, p, room, 0);
			if (n > 0) {
				sbx_buf_commit(&c->in, (size_t)n);
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				break;
			/* EOF or error: an exec stream ends with its client. */
			conn_close(c);
			return;
		}
		process(c);
	}
}

static void accept_cb(struct sbx_loop *loop, int fd, unsigned events, void *ud)
{
	struct sbx_daemon *d = ud;

	for (;;) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct conn *c;

		if (cfd < 0)
			return;
		if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    (cred.uid != geteuid() && cred.uid != 0)) {
			log_warn("refused a control connection from uid %d", (int)cred.uid);
			close(cfd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(cfd);
			continue;
		}
		c->d = d;
		c->fd = cfd;
		c->peer_uid = cred.uid;
		sbx_buf_init(&c->in, API_MAX_IN);
		sbx_buf_init(&c->out, API_MAX_OUT);
		if (sbx_loop_add(d->loop, cfd, SBX_EV_READ, conn_io, c) < 0) {
			close(cfd);
			free(c);
			continue;
		}
		c->next = conns;
		conns = c;
	}
}

void sbx_api_drop_inherited(void)
{
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
	for (struct conn *c = conns; c; c = c->next)
		if (c->fd >= 0)
			close(c->fd);
}

int sbx_api_listen(struct sbx_daemon *d, sbx_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	sbx_strlcpy(sa.sun_path, d->paths.socket_path, sizeof(sa.sun_path));
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (listen_fd < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "socket");
	unlink(sa.sun_path); /* we hold the lock: a socket file left here is stale */
	mode_t old = umask(0177);
	int r = bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(listen_fd, 128) < 0) {
		int e = errno;
		close_and_reset(listen_fd);
		return sbx_err_sys(err, SBX_E_IO, e, "cannot listen on %s", sa.sun_path);
	}
	if (sbx_loop_add(d->loop, listen_fd, SBX_EV_READ, accept_cb, d) < 0)
		return sbx_err_sys(err, SBX_E_INTERNAL, errno, "event loop");
	return 0;
}

void sbx_api_close(struct sbx_daemon *d)
{
	if (listen_fd >= 0) {
		sbx_loop_del(d->loop, listen_fd);
		close_and_reset(listen_fd);
		unlink(d->paths.socket_path);
	}
	while (conns)
		conn_close(conns);
}
