
#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "cleanup.h"
#include "util.h"

static struct termios saved_tio;
static bool tio_saved;

static void restore_tty(void)
{
	if (tio_saved) {
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
		tio_saved = false;
	}
}

static void send_event(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_event(int fd, const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(line))
		(void)!sbx_write_all(fd, line, (size_t)n);
}

static void send_winsize(int ctl)
{
	struct winsize ws;

	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
		send_event(ctl, "{\"resize\":[%u,%u]}\n", ws.ws_row, ws.ws_col);
}

/* Writes everything or gives up on this stream (the reader went away). */
static bool out_all(int fd, const char *buf, size_t n)
{
	return sbx_write_all(fd, buf, n) == 0;
}

/* Parses exit events from the control stream; returns true once the exit is known. */
static bool take_events(sbx_buf *b, int *code)
{
	char *nl;
	bool done = false;

	while (b->len && (nl = memchr(b->data, '\n', b->len))) {
		*nl = '\0';
		json_t *o = json_loads(b->data, 0, NULL);
		const char *ev = json_string_value(json_object_get(o, "event"));
		if (ev && strcmp(ev, "exit") == 0) {
			*code = (int)json_integer_value(json_object_get(o, "exit_code"));
			done = true;
		}
		json_decref(o);
		sbx_buf_consume(b, (size_t)(nl - b->data) + 1);
	}
	return done;
}

int sbx_attach(struct sbx_response *r, bool tty, bool want_stdin)
{
	int ctl = r->fd;
	int in_fd = -1, out_fd = -1, err_fd = -1, master = -1;
	int code = 0;
	bool exited = take_events(&r->rest, &code);
	bool stdin_open = want_stdin;
	bool lost = false; /* the daemon went away: relay until the streams end, however long */
	sigset_t mask;
	int sfd;
	char buf[65536];

	/* Which fd is which follows the daemon's mask: bit 0 stdin/pty, 1 stdout, 2 stderr. */
	size_t k = 0;
	if (tty) {
		master = r->nfds > 0 ? r->fds[k++] : -1;
	} else {
		if (r->exec_fds & 1)
			in_fd = k < r->nfds ? r->fds[k++] : -1;
		if (r->exec_fds & 2)
			out_fd = k < r->nfds ? r->fds[k++] : -1;
		if (r->exec_fds & 4)
			err_fd = k < r->nfds ? r->fds[k++] : -1;
	}
	if (in_fd < 0 && master < 0)
		stdin_open = false;

	sigemptyset(&mask);
	sigaddset(&mask, SIGWINCH);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

	if (tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios raw = saved_tio;
		cfmakeraw(&raw);
		tio_saved = tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0;
		atexit(restore_tty);
		send_winsize(ctl);
	}

	for (;;) {
		struct pollfd p[6];
		int idx_in = -1, idx_m = -1, idx_out = -1, idx_err = -1, idx_ctl, idx_sig;
		int n = 0;

		bool streams_open = master >= 0 || out_fd >= 0 || err_fd >= 0;
		if (exited && !streams_open)
			break;
		if (ctl < 0 && !streams_open)
			break;
		if (stdin_open) {
			idx_in = n;
			p[n++] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
		}
		if (master >= 0) {
			idx_m = n;
			p[n++] = (struct pollfd){.fd = master, .events = POLLIN};
		}
		if (out_fd >= 0) {
			idx_out = n;
			p[n++] = (struct pollfd){.fd = out_fd, .events = POLLIN};
		}
		if (err_fd >= 0) {
			idx_err = n;
			p[n++] = (struct pollfd){.fd = err_fd, .events = POLLIN};
		}
		idx_ctl = n;
		p[n++] = (struct pollfd){.fd = ctl, .events = POLLIN};
		idx_sig = n;
		p[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};

		/* Once the exit is known, give the streams a moment to drain, then stop: a
		 * background child holding the pty or pipes must not keep us here forever. */
		int timeout = exited && !lost ? 200 : -1;
		int pr = poll(p, (nfds_t)n, timeout);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pr == 0 && exited)
			break;
		if (idx_in >= 0 && p[idx_in].revents) {
			ssize_t got = read(STDIN_FILENO, buf, sizeof(buf));
			if (got > 0) {
				if (!out_all(tty ? master : in_fd, buf, (size_t)got))
					stdin_open = false;
			} else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
				stdin_open = false;
				if (tty) {
					/* EOF on a non-terminal stdin feeding a pty: send ^D. */
					if (!isatty(STDIN_FILENO))
						out_all(master, "\x04", 1);
				} else {
					close_and_reset(in_fd);
				}
			}
		}
		int *streams[3] = {&master, &out_fd, &err_fd};
		int idxs[3] = {idx_m, idx_out, idx_err};
		for (int s = 0; s < 3; s++) {
			if (idxs[s] < 0 || !p[idxs[s]].revents)
				continue;
			ssize_t got = read(*streams[s], buf, sizeof(buf));
			if (got > 0) {
				out_all(s == 2 ? STDERR_FILENO : STDOUT_FILENO, buf, (size_t)got);
			} else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
				/* EIO on a pty master: every slave is closed. */
				close_and_reset(*streams[s]);
			}
		}
		if (p[idx_ctl].revents) {
			char *w = sbx_buf_reserve(&r->rest, 4096);
			ssize_t got = w ? read(ctl, w, 4096) : -1;
			if (got > 0) {
				sbx_buf_commit(&r->rest, (size_t)got);
				if (take_events(&r->rest, &code))
					exited = true;
			} else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
				close_and_reset(ctl);
				r->fd = -1;
				if (!exited) {
					/* Without the daemon we still show all output, but cannot learn the
					 * exit status. */
					code = -1;
					exited = true;
					lost = true;
				}
			}
		}
		if (p[idx_sig].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGWINCH) {
					if (tty && ctl >= 0)
						send_winsize(ctl);
				} else if (ctl >= 0) {
					send_event(ctl, "{\"signal\":%u}\n", si.ssi_signo);
				}
			}
		}
	}
	restore_tty();
	close(sfd);
	close_and_reset(in_fd);
	close_and_reset(out_fd);
	close_and_reset(err_fd);
	close_and_reset(master);
	r->nfds = 0;
	if (code < 0) {
		fprintf(stderr, "sbx: lost the connection to the sbx daemon; the command's exit status is unknown\n");
		return 75;
	}
	return code;
}
