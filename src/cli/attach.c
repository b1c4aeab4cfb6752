
#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "termseq.h"
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

/* ---- review notifications ----
 *
 * The daemon tells an attached client when a request of its sandbox is held for review, and
 * when one is decided. The engineer must see it at once, where they are looking, without
 * anything breaking the agent's screen:
 *   - on a terminal (tty mode), the agent's TUI owns the screen, so no line is printed into it:
 *     the terminal's title says how many requests wait (the user's own title is pushed on the
 *     xterm title stack first and popped when none is left, and at the end), and the bell rings
 *     once per new request. These bytes go out only where the agent's output stands between
 *     escape sequences (termseq.h); if a sequence is open they wait for the next chunk that
 *     closes it, or for NOTE_QUIET_MS of silence. After the session, one line sums it up;
 *   - without a terminal, one line per event on stderr. */

#define NOTE_QUIET_MS 100
#define NOTE_WAIT_MAX_MS 1000  /* an agent that streams inside one sequence for longer: write anyway */
#define NOTE_BELLS_MAX 8       /* a burst of requests rings a few times, not hundreds */
#define NOTE_PENDING_MAX 1000000

struct notes {
	bool title;              /* tty mode on a terminal: title and bell; else lines on stderr */
	bool crlf;               /* our terminal is raw: a line ends with \r\n */
	struct sbx_termseq seq;  /* where the agent's output to the terminal stands */
	long pending;            /* requests of this sandbox waiting, as the daemon last said */
	unsigned long held;      /* requests held during this session */
	unsigned bells;          /* bells not yet rung */
	bool title_due;          /* the title must be rewritten (or popped) */
	bool pushed;             /* the user's title is on the terminal's title stack */
	uint64_t last_out_ms;    /* when the agent last wrote to the terminal (monotonic) */
	uint64_t due_ms;         /* when the notes now waiting became due */
	bool err_midline;        /* stream mode: the last byte relayed to stderr was not a newline */
};

static bool notes_due(const struct notes *n)
{
	return n->title && (n->title_due || n->bells);
}

/* Writes what is due, if the agent's stream is between sequences or force is set. */
static void notes_flush(struct notes *n, bool force)
{
	char out[256];
	size_t o = 0;

	if (!notes_due(n) || (!force && !sbx_termseq_ground(&n->seq)))
		return;
	if (!sbx_termseq_ground(&n->seq))
		out[o++] = '\030'; /* CAN: the terminal drops the agent's open sequence, not ours */
	if (n->title_due && n->pending > 0) {
		if (!n->pushed) {
			memcpy(out + o, "\033[22;0t", 7); /* push the user's title */
			o += 7;
			n->pushed = true;
		}
		int w = snprintf(out + o, sizeof(out) - o, "\033]2;sbx: %ld request(s) held for review - sbx review ls\007",
				 n->pending);
		if (w > 0 && (size_t)w < sizeof(out) - o)
			o += (size_t)w;
	} else if (n->title_due && n->pushed) {
		memcpy(out + o, "\033[23;0t", 7); /* nothing waits: the user's title comes back */
		o += 7;
		n->pushed = false;
	}
	for (; n->bells && o < sizeof(out); n->bells--)
		out[o++] = '\a';
	n->bells = 0;
	n->title_due = false;
	if (o)
		(void)!sbx_write_all(STDOUT_FILENO, out, o);
	/* Whatever was open, the terminal has now seen a complete sequence of ours after it. */
	sbx_termseq_init(&n->seq);
}

/* Milliseconds until queued notes must go out whatever the stream's state; -1 if none wait. */
static int notes_timeout(const struct notes *n)
{
	if (!notes_due(n))
		return -1;
	uint64_t now = sbx_monotonic_ms(), at = n->last_out_ms + NOTE_QUIET_MS;
	if (at > n->due_ms + NOTE_WAIT_MAX_MS)
		at = n->due_ms + NOTE_WAIT_MAX_MS;
	return now >= at ? 0 : (int)(at - now);
}

/* A line on stderr (stream mode), on a line of its own even if the agent's stderr is mid-line. */
static void note_line(struct notes *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_line(struct notes *n, const char *fmt, ...)
{
	char line[1600];
	va_list ap;
	int w;

	va_start(ap, fmt);
	w = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (w < 0)
		return;
	if ((size_t)w >= sizeof(line))
		w = (int)sizeof(line) - 1;
	if (n->err_midline)
		(void)!sbx_write_all(STDERR_FILENO, n->crlf ? "\r\n" : "\n", n->crlf ? 2 : 1);
	(void)!sbx_write_all(STDERR_FILENO, line, (size_t)w);
	(void)!sbx_write_all(STDERR_FILENO, n->crlf ? "\r\n" : "\n", n->crlf ? 2 : 1);
	n->err_midline = false;
}

static void note_event(struct notes *n, json_t *o, bool held)
{
	char id[40], method[40], url[400], reason[400], state[40];
	json_t *p = json_object_get(o, "pending");

	if (!json_is_string(json_object_get(o, "id")))
		return;
	if (!notes_due(n))
		n->due_ms = sbx_monotonic_ms();
	if (json_is_integer(p)) {
		json_int_t v = json_integer_value(p);
		n->pending = v < 0 ? 0 : v > NOTE_PENDING_MAX ? NOTE_PENDING_MAX : (long)v;
	} else if (held) {
		n->pending++;
	}
	cli_clean(json_string_value(json_object_get(o, "id")), id, sizeof(id));
	if (held) {
		n->held++;
		if (n->bells < NOTE_BELLS_MAX)
			n->bells++;
	}
	n->title_due = true;
	if (n->title)
		return;
	n->bells = 0;
	n->title_due = false;
	if (held) {
		cli_clean(cli_jstr(o, "method"), method, sizeof(method));
		cli_clean(cli_jstr(o, "url"), url, sizeof(url));
		cli_clean(cli_jstr(o, "reason"), reason, sizeof(reason));
		note_line(n, "sbx: held for review: %s %s %s%s%s%s -- sbx review approve %s | sbx review deny %s", id, method,
			  url, reason[0] ? " (" : "", reason, reason[0] ? ")" : "", id, id);
		return;
	}
	const char *st = cli_jstr(o, "state");
	if (strcmp(st, "timeout") == 0)
		st = "timed out";
	else if (strcmp(st, "gone") == 0)
		st = "refused (the sandbox or the sbx daemon stopped)";
	note_line(n, "sbx: %s: %s", id, cli_clean(st, state, sizeof(state)));
}

/* Parses the control stream's events: exit, review, review-done; others are ignored (a newer
 * daemon may send more). Returns true once the exit is known. */
static bool take_events(sbx_buf *b, int *code, struct notes *n)
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
		} else if (ev && (strcmp(ev, "review") == 0 || strcmp(ev, "review-done") == 0)) {
			note_event(n, o, strcmp(ev, "review") == 0);
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
	struct notes notes = {.title = tty && isatty(STDOUT_FILENO), .last_out_ms = sbx_monotonic_ms()};
	bool exited;
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
	sbx_termseq_init(&notes.seq);
	notes.crlf = tio_saved && !notes.title; /* lines on a raw terminal's stderr */
	exited = take_events(&r->rest, &code, &notes);
	notes_flush(&notes, false);

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
		int nt = notes_timeout(&notes);
		bool note_timer = nt >= 0 && (timeout < 0 || nt < timeout);
		if (note_timer)
			timeout = nt;
		int pr = poll(p, (nfds_t)n, timeout);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pr == 0 && note_timer) {
			notes_flush(&notes, true); /* the agent went quiet inside a sequence */
			continue;
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
				if (s == 0 && notes.title) {
					sbx_termseq_feed(&notes.seq, buf, (size_t)got);
					notes.last_out_ms = sbx_monotonic_ms();
					notes_flush(&notes, false);
				} else if (s == 2) {
					notes.err_midline = buf[got - 1] != '\n';
				}
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
				if (take_events(&r->rest, &code, &notes))
					exited = true;
				notes_flush(&notes, false);
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
	if (notes.pushed) {
		/* The user's title comes back, whatever the agent left open (CAN drops that). */
		static const char pop[] = "\030\033[23;0t";
		size_t skip = sbx_termseq_ground(&notes.seq) ? 1 : 0;
		(void)!sbx_write_all(STDOUT_FILENO, pop + skip, sizeof(pop) - 1 - skip);
	}
	restore_tty();
	if (notes.title && notes.held)
		fprintf(stderr, "sbx: %lu request(s) were held for review during this session (sbx review ls)\n",
			notes.held);
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
