
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include "fdpass.h"
#include "http1.h"
#include "util.h"

#define MAX_RESPONSE (16u << 20)
#define DAEMON_START_TIMEOUT_MS 15000

static struct sbx_paths g_paths;
static bool g_paths_ok;

const struct sbx_paths *sbx_client_paths(sbx_err *err)
{
	if (!g_paths_ok) {
		if (sbx_paths_resolve(&g_paths, err) < 0)
			return NULL;
		g_paths_ok = true;
	}
	return &g_paths;
}

void sbx_response_free(struct sbx_response *r)
{
	json_decref(r->body);
	r->body = NULL;
	for (size_t i = 0; i < r->nfds; i++)
		close_and_reset(r->fds[i]);
	r->nfds = 0;
	close_and_reset(r->fd);
	sbx_buf_free(&r->rest);
}

static int try_connect(const struct sbx_paths *p)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sbx_strlcpy(sa.sun_path, p->socket_path, sizeof(sa.sun_path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

bool sbx_daemon_running(void)
{
	sbx_err err = SBX_ERR_INIT;
	const struct sbx_paths *p = sbx_client_paths(&err);
	int fd = p ? try_connect(p) : -1;

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int sbx_find_daemon(char *out, size_t outlen)
{
	char dir[PATH_MAX];
	const char *env = getenv("SBX_LIBEXEC");

	if (env && env[0] == '/') {
		snprintf(out, outlen, "%s/sbxd", env);
		if (access(out, X_OK) == 0)
			return 0;
	}
	if (sbx_self_exe_dir(dir, sizeof(dir)) < 0)
		return -1;
	snprintf(out, outlen, "%s/sbxd", dir);
	if (access(out, X_OK) == 0)
		return 0;
	snprintf(out, outlen, "%s/../libexec/sbx/sbxd", dir);
	if (access(out, X_OK) == 0)
		return 0;
	return -1;
}

/* Start sbxd detached from this terminal and session, logging to its log file. */
static int spawn_daemon(const struct sbx_paths *p, sbx_err *err)
{
	char exe[PATH_MAX];
	pid_t pid;
	int ws;

	if (sbx_find_daemon(exe, sizeof(exe)) < 0)
		return sbx_err_set(err, SBX_E_DAEMON, "cannot find sbxd next to sbx: reinstall sbx");
	if (sbx_paths_ensure(p, err) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return sbx_err_sys(err, SBX_E_DAEMON, errno, "fork");
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		int log = open(p->daemon_log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		if (fork() != 0)
			_exit(0);
		if (nul >= 0)
			dup2(nul, 0);
		if (log >= 0) {
			dup2(log, 1);
			dup2(log, 2);
		}
		if (chdir("/") < 0)
			_exit(1);
		execl(exe, "sbxd", (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	return 0;
}

/* The last lines of the daemon log, to explain a daemon that would not start. */
static void log_tail(const struct sbx_paths *p, char *out, size_t n)
{
	cleanup_free char *data = NULL;
	size_t len;

	out[0] = '\0';
	if (sbx_read_file_at(AT_FDCWD, p->daemon_log_path, 8u << 20, &data, &len) < 0 || len == 0)
		return;
	while (len > 0 && data[len - 1] == '\n')
		data[--len] = '\0';
	char *last = strrchr(data, '\n');
	snprintf(out, n, "%s", last ? last + 1 : data);
}

int sbx_client_connect(bool autostart, sbx_err *err)
{
	const struct sbx_paths *p = sbx_client_paths(err);
	int fd;

	if (!p)
		return -1;
	fd = try_connect(p);
	if (fd >= 0)
		return fd;
	if (!autostart || (errno != ENOENT && errno != ECONNREFUSED))
		return sbx_err_sys(err, SBX_E_DAEMON, errno, "cannot reach the sbx daemon at %s%s", p->socket_path,
				   autostart ? "" : " (start it with `sbx daemon start`)");
	if (spawn_daemon(p, err) < 0)
		return -1;
	uint64_t deadline = sbx_monotonic_ms() + DAEMON_START_TIMEOUT_MS;
	for (unsigned delay = 2; sbx_monotonic_ms() < deadline; delay = delay < 100 ? delay * 2 : 100) {
		fd = try_connect(p);
		if (fd >= 0)
			return fd;
		usleep(delay * 1000);
	}
	char tail[512];
	log_tail(p, tail, sizeof(tail));
	return sbx_err_set(err, SBX_E_DAEMON, "the sbx daemon did not start%s%s (log: %s)", tail[0] ? ": " : "", tail,
			   p->daemon_log_path);
}

static int send_request(int fd, const char *method, const char *path, json_t *body, sbx_err *err)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	sbx_buf b;
	int r;

	sbx_buf_init(&b, MAX_RESPONSE);
	r = sbx_buf_printf(&b, "%s %s HTTP/1.1\r\nHost: sbxd\r\nUser-Agent: sbx/%s\r\nConnection: close\r\n", method,
			   path, SBX_VERSION);
	if (r == 0 && text)
		r = sbx_buf_printf(&b, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(text), text);
	else if (r == 0)
		r = sbx_buf_printf(&b, "Content-Length: 0\r\n\r\n");
	free(text);
	if (r < 0) {
		sbx_buf_free(&b);
		return sbx_err_set(err, SBX_E_INVALID, "request too large");
	}
	/* send(MSG_NOSIGNAL): a daemon that dies under us is an error to report, not a SIGPIPE. */
	for (size_t off = 0; off < b.len;) {
		ssize_t n = send(fd, b.data + off, b.len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EPIPE;
			sbx_buf_free(&b);
			return sbx_err_sys(err, SBX_E_DAEMON, e, "cannot talk to the sbx daemon");
		}
		off += (size_t)n;
	}
	sbx_buf_free(&b);
	return 0;
}

static int client_call_once(const char *method, const char *path, json_t *body, struct sbx_response *r,
			    bool *nothing_received, sbx_err *err);

/* A daemon killed at the moment we connect can accept our connection (its socket lives until its
 * last thread is gone) and then drop it: a request that got no byte back and that may safely be
 * repeated (GET) is sent once more, which starts a new daemon. */
int sbx_client_call(const char *method, const char *path, json_t *body, struct sbx_response *r, sbx_err *err)
{
	bool nothing = false;

	if (client_call_once(method, path, body, r, &nothing, err) == 0)
		return 0;
	if (!nothing || strcmp(method, "GET") != 0)
		return -1;
	usleep(50 * 1000);
	*err = (sbx_err)SBX_ERR_INIT;
	return client_call_once(method, path, body, r, &nothing, err);
}

static int client_call_once(const char *method, const char *path, json_t *body, struct sbx_response *r,
			    bool *nothing_received, sbx_err *err)
{
	struct sbx_http_msg msg;
	struct sbx_http_error herr;
	sbx_buf in;
	int fd;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	sbx_buf_init(&r->rest, 1 << 20);
	fd = sbx_client_connect(true, err);
	if (fd < 0)
		return -1;
	if (send_request(fd, method, path, body, err) < 0) {
		close(fd);
		*nothing_received = true;
		return -1;
	}
	sbx_buf_init(&in, MAX_RESPONSE);
	for (;;) {
		int pr = sbx_http_parse_response(in.data, in.len, method, &msg, &herr);
		if (pr == SBX_HTTP_ERROR) {
			sbx_buf_free(&in);
			close(fd);
			return sbx_err_set(err, SBX_E_DAEMON, "the daemon sent a malformed response: %s", herr.reason);
		}
		if (pr == SBX_HTTP_OK) {
			uint64_t need = msg.body == SBX_HTTP_BODY_LENGTH ? msg.content_length : 0;
			if (msg.status == 101 || in.len >= msg.head_len + need)
				break;
		}
		char *p = sbx_buf_reserve(&in, 65536);
		size_t got = 0;
		int fds[SBX_FDPASS_MAX];
		if (!p) {
			sbx_buf_free(&in);
			close(fd);
			return sbx_err_set(err, SBX_E_DAEMON, "the daemon's response is too large");
		}
		ssize_t n = sbx_recv_fds(fd, p, 65536, fds, SBX_FDPASS_MAX, &got);
		for (size_t i = 0; i < got; i++) {
			if (r->nfds < SBX_ARRAY_LEN(r->fds))
				r->fds[r->nfds++] = fds[i];
			else
				close(fds[i]);
		}
		if (n <= 0) {
			int e = n < 0 ? errno : ECONNRESET;
			*nothing_received = in.len == 0;
			sbx_buf_free(&in);
			close(fd);
			sbx_response_free(r);
			return sbx_err_sys(err, SBX_E_DAEMON, e, "the sbx daemon closed the connection (see %s)",
					   g_paths.daemon_log_path);
		}
		sbx_buf_commit(&in, (size_t)n);
	}
	r->status = msg.status;
	if (msg.status == 101) {
		const struct sbx_http_str *h = sbx_http_header_get(&msg, "Sbx-Exec-Fds");
		int64_t v = 0;
		char tmp[16];
		if (h && h->len < sizeof(tmp)) {
			memcpy(tmp, h->p, h->len);
			tmp[h->len] = '\0';
			sbx_parse_i64(tmp, 0, 7, &v);
		}
		r->exec_fds = (unsigned)v;
		sbx_buf_append(&r->rest, in.data + msg.head_len, in.len - msg.head_len);
		r->fd = fd;
	} else {
		size_t blen = msg.body == SBX_HTTP_BODY_LENGTH ? (size_t)msg.content_length : 0;
		if (blen) {
			json_error_t jerr;
			r->body = json_loadb(in.data + msg.head_len, blen, 0, &jerr);
		}
		close(fd);
	}
	sbx_buf_free(&in);
	return 0;
}

json_t *sbx_api(const char *method, const char *path, json_t *body, sbx_err *err)
{
	struct sbx_response r;
	json_t *out;

	if (sbx_client_call(method, path, body, &r, err) < 0)
		return NULL;
	if (r.status >= 200 && r.status < 300) {
		out = r.body ? r.body : json_object();
		r.body = NULL;
		sbx_response_free(&r);
		return out;
	}
	json_t *e = json_object_get(r.body, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	sbx_err_set(err, code ? sbx_errc_from_name(code) : sbx_errc_from_http_status(r.status), "%s",
		    msg ? msg : "the daemon refused the request");
	sbx_response_free(&r);
	return NULL;
}
