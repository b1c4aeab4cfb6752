/* sbx - command line for sbx sandboxes. A thin layer over the daemon's API: parse, ask, print. */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cleanup.h"
#include "cli.h"
#include "util.h"

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"run", cmd_run, "Run an agent in a sandbox (created on first use), attached"},
	{"create", cmd_create, "Create a sandbox without starting it"},
	{"ls", cmd_ls, "List sandboxes"},
	{"exec", cmd_exec, "Run a command in a running sandbox"},
	{"start", cmd_start, "Start stopped sandboxes"},
	{"stop", cmd_stop, "Stop sandboxes (every process in them)"},
	{"rm", cmd_rm, "Remove sandboxes and everything they left on the host"},
	{"prune", cmd_prune, "Remove every sandbox that is not running"},
	{"policy", cmd_policy, "Network rules (allow, deny, review), checks, the log, classifiers"},
	{"review", cmd_review, "Requests held for review: ls, show, approve, deny"},
	{"approver", cmd_approver, "People who may approve held requests: add, ls, rm"},
	{"secret", cmd_secret, "Credentials kept on the host: set, set-custom, ls, rm"},
	{"audit", cmd_audit, "The audit log's integrity: verify"},
	{"diagnose", cmd_diagnose, "Report which isolation backends work on this host, and why not"},
	{"daemon", cmd_daemon, "Manage the sbx daemon: start, stop, status"},
	{"version", cmd_version, "Show the version"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: sbx COMMAND [OPTIONS]\n\nsbx runs AI coding agents in sandboxes smaller than you.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun `sbx COMMAND --help` for a command's options.\n");
}

int cli_fail(const sbx_err *err)
{
	fprintf(stderr, "sbx: error: %s\n", err->msg);
	return sbx_errc_exit_code(err->code ? err->code : SBX_E_INTERNAL);
}

int cli_invalid(const char *fmt, ...)
{
	sbx_err err = SBX_ERR_INIT;
	va_list ap;

	err.code = SBX_E_INVALID;
	va_start(ap, fmt);
	vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
	va_end(ap);
	return cli_fail(&err);
}

int cli_usage(const char *use, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sbx: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s\n", use);
	return sbx_errc_exit_code(SBX_E_USAGE);
}

void cli_print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s) {
		puts(s);
		free(s);
	}
}

const char *cli_opt_name(const struct option *opts, int letter)
{
	for (size_t i = 0; opts[i].name; i++)
		if (opts[i].val == letter)
			return opts[i].name;
	return "?";
}

int cli_check_text(const char *what, const char *s)
{
	json_t *j = json_string(s);
	sbx_err err = SBX_ERR_INIT;
	char shown[256];
	size_t o = 0;

	if (j) {
		json_decref(j);
		return 0;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < sizeof(shown); p++)
		o += (size_t)snprintf(shown + o, sizeof(shown) - o, *p >= 0x20 && *p < 0x7f ? "%c" : "\\x%02x", *p);
	sbx_err_set(&err, SBX_E_INVALID, "%s '%s' is not valid UTF-8 text", what, shown);
	return cli_fail(&err);
}

int cli_env_entry(json_t *arr, const char *kv, sbx_err *err)
{
	const char *eq = strchr(kv, '=');

	if (eq == kv || !*kv)
		return sbx_err_set(err, SBX_E_INVALID, "invalid environment entry '%s': use KEY=VALUE", kv);
	if (!eq) {
		const char *v = getenv(kv);
		if (v)
			json_array_append_new(arr, json_sprintf("%s=%s", kv, v));
		return 0;
	}
	json_array_append_new(arr, json_string(kv));
	return 0;
}

void cli_age(long long ms, char *out, size_t n)
{
	long long now = (long long)time(NULL) * 1000, d = (now - ms) / 1000;

	if (ms <= 0)
		snprintf(out, n, "-");
	else if (d < 60)
		snprintf(out, n, "%lld seconds ago", d < 0 ? 0 : d);
	else if (d < 3600)
		snprintf(out, n, "%lld minutes ago", d / 60);
	else if (d < 86400)
		snprintf(out, n, "%lld hours ago", d / 3600);
	else
		snprintf(out, n, "%lld days ago", d / 86400);
}

int cli_check_sandbox(const char *name)
{
	sbx_err err = SBX_ERR_INIT;
	char shown[128];

	if (sbx_name_valid(name))
		return 0;
	sbx_err_set(&err, SBX_E_INVALID,
		    "invalid sandbox name '%s': use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit",
		    cli_clean(name, shown, sizeof(shown)));
	return cli_fail(&err);
}

void cli_duration(unsigned long long ms, char *out, size_t n)
{
	unsigned long long s = ms / 1000, m = s / 60, h = m / 60, d = h / 24;

	if (s < 60)
		snprintf(out, n, "%llus", s);
	else if (m < 60)
		snprintf(out, n, s % 60 ? "%llum%02llus" : "%llum", m, s % 60);
	else if (h < 24)
		snprintf(out, n, m % 60 ? "%lluh%02llum" : "%lluh", h, m % 60);
	else
		snprintf(out, n, h % 24 ? "%llud%lluh" : "%llud", d, h % 24);
}

/* ---- options ---- */

int cli_parse_opts(const struct cli_group *g, int argc, char **argv, const char *accepted, struct cli_opts *o)
{
	char shortopts[32];
	int c, r;

	memset(o, 0, sizeof(*o));
	o->args = json_array();
	/* ':' first: a missing value is told apart from an unknown option, and getopt stays quiet
	 * (it would name argv[0], the subcommand, as the program). */
	snprintf(shortopts, sizeof(shortopts), ":%s", g->shortopts);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, g->opts, NULL)) != -1) {
		if (c == 'h') {
			printf("usage: %s\n%s", g->usage, g->help);
			return -1;
		}
		if (c == ':')
			return cli_usage(g->usage, "--%s needs a value", cli_opt_name(g->opts, optopt));
		if (c == '?') {
			char shown[64];
			return cli_usage(g->usage, "unknown option '%s' for `sbx %s %s`",
					 cli_clean(argv[optind - 1], shown, sizeof(shown)), g->name, argv[0]);
		}
		if (c <= 0 || c >= CLI_OPT_MAX || !strchr(accepted, c))
			return cli_usage(g->usage, "`sbx %s %s` does not take --%s", g->name, argv[0], cli_opt_name(g->opts, c));
		if (optarg && (r = cli_check_text(cli_opt_name(g->opts, c), optarg)) != 0)
			return r;
		o->val[c] = optarg ? optarg : "";
	}
	for (int i = optind; i < argc; i++) {
		if ((r = cli_check_text("argument", argv[i])) != 0)
			return r;
		json_array_append_new(o->args, json_string(argv[i]));
	}
	return 0;
}

void cli_opts_free(struct cli_opts *o)
{
	json_decref(o->args);
	o->args = NULL;
}

/* ---- text ---- */

/* Bytes of the UTF-8 character a lead byte starts (1 for anything else). */
static size_t utf8_len(unsigned char c)
{
	return c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

const char *cli_clean(const char *s, char *buf, size_t n)
{
	const unsigned char *p;
	size_t o = 0;

	if (n == 0)
		return "";
	for (p = (const unsigned char *)(s ? s : ""); *p && o + 1 < n; p++) {
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) { /* a C1 control in UTF-8 */
			buf[o++] = '?';
			p++;
		} else {
			buf[o++] = (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
		}
	}
	if (*p) {
		/* Cut short: a character cut in the middle goes, so that the text stays UTF-8. */
		size_t k = o;
		while (k > 0 && ((unsigned char)buf[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0 && (unsigned char)buf[k - 1] >= 0xc0 && o - (k - 1) < utf8_len((unsigned char)buf[k - 1]))
			o = k - 1;
	}
	buf[o] = '\0';
	return buf;
}

const char *cli_jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

size_t cli_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

size_t cli_term_cols(void)
{
	struct winsize ws;

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

#define TABLE_COLS_MAX 16
#define TABLE_WIDTH_DEFAULT 60
#define CELL_MAX 1024

json_t *cli_row(json_t *rows)
{
	json_t *r = json_array();
	json_array_append_new(rows, r);
	return r;
}

void cli_cell(json_t *row, const char *s)
{
	char buf[CELL_MAX];
	json_t *v = json_string(cli_clean(s, buf, sizeof(buf)));

	json_array_append_new(row, v ? v : json_string("")); /* a cell per column, whatever happens */
}

/* Appends s in w columns to a line: cut with "..." when longer, padded unless last. */
static void table_cell(sbx_buf *line, const char *s, size_t w, bool cut, bool last)
{
	size_t sw = cli_width(s);

	if (cut && sw > w) {
		size_t keep = w > 3 ? w - 3 : w, chars = 0;
		const char *p = s;
		while (*p && chars < keep) {
			p++;
			while (((unsigned char)*p & 0xc0) == 0x80)
				p++;
			chars++;
		}
		sbx_buf_append(line, s, (size_t)(p - s));
		if (w > 3)
			sbx_buf_append_str(line, "...");
		sw = w;
	} else {
		sbx_buf_append_str(line, s);
	}
	for (size_t i = sw; !last && i < w + 2; i++)
		sbx_buf_append(line, " ", 1);
}

/* Prints a line without the padding that empty last cells leave at its end. */
static void table_line(sbx_buf *line)
{
	while (line->len && line->data[line->len - 1] == ' ')
		line->len--;
	fwrite(line->data ? line->data : "", 1, line->len, stdout);
	fputc('\n', stdout);
	sbx_buf_reset(line);
}

void cli_table_print(const char *const *head, size_t ncols, json_t *rows, const size_t *max)
{
	size_t w[TABLE_COLS_MAX], cap[TABLE_COLS_MAX], i;
	bool cut[TABLE_COLS_MAX];
	json_t *row;
	sbx_buf line;

	if (ncols > TABLE_COLS_MAX)
		ncols = TABLE_COLS_MAX;
	for (size_t c = 0; c < ncols; c++) {
		bool last = c + 1 == ncols;
		cap[c] = max && max[c] ? max[c] : last ? SIZE_MAX : TABLE_WIDTH_DEFAULT;
		if (cap[c] == CLI_TABLE_FIT && !isatty(STDOUT_FILENO))
			cap[c] = SIZE_MAX; /* no screen to fit: the whole text, for grep and friends */
		cut[c] = cap[c] != SIZE_MAX; /* CLI_TABLE_FIT too: cut below, to the room left */
		w[c] = cli_width(head[c]);
	}
	json_array_foreach(rows, i, row)
	{
		for (size_t c = 0; c < ncols; c++) {
			const char *s = json_string_value(json_array_get(row, c));
			size_t l = s ? cli_width(s) : 0;
			if (l > cap[c])
				l = cap[c];
			if (l > w[c])
				w[c] = l;
		}
	}
	/* A CLI_TABLE_FIT column gets what the others leave of the line (at least 20 columns). */
	for (size_t c = 0; c < ncols; c++) {
		size_t others = 0, cols = cli_term_cols();
		if (cap[c] != CLI_TABLE_FIT)
			continue;
		for (size_t k = 0; k < ncols; k++)
			others += k == c ? 0 : w[k] + 2;
		size_t room = cols > others + 20 ? cols - others : 20;
		if (w[c] > room)
			w[c] = room;
		if (w[c] < cli_width(head[c]))
			w[c] = cli_width(head[c]);
	}
	/* A cell has at most CELL_MAX bytes (cli_cell), so at most as many columns, and its padding
	 * fewer than that plus 2: a line always fits. */
	sbx_buf_init(&line, TABLE_COLS_MAX * (2 * CELL_MAX + 8));
	for (size_t c = 0; c < ncols; c++)
		table_cell(&line, head[c], w[c], false, c + 1 == ncols);
	table_line(&line);
	json_array_foreach(rows, i, row)
	{
		for (size_t c = 0; c < ncols; c++) {
			const char *s = json_string_value(json_array_get(row, c));
			table_cell(&line, s ? s : "", w[c], cut[c], c + 1 == ncols);
		}
		table_line(&line);
	}
	sbx_buf_free(&line);
}

/* ---- reading without echo ----
 * The terminal's settings while something secret is typed: restored on every way out, signals
 * included (a shell left without echo is the classic bug of password prompts). */

static int hid_fd = -1;
static struct termios hid_saved, hid_quiet;
static volatile sig_atomic_t hid_active;
static const int hid_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU};
static struct sigaction hid_old[SBX_ARRAY_LEN(hid_signals)];

static void hid_signal(int sig)
{
	int saved = errno;
	sigset_t set;

	if (hid_active)
		tcsetattr(hid_fd, TCSANOW, &hid_saved);
	/* Act as if we had no handler: die, or stop. */
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	/* Only a stop comes back here (after SIGCONT): hide the input again. */
	signal(sig, hid_signal);
	if (hid_active)
		tcsetattr(hid_fd, TCSANOW, &hid_quiet);
	errno = saved;
}

static void hid_restore(void)
{
	if (!hid_active)
		return;
	tcsetattr(hid_fd, TCSANOW, &hid_saved);
	hid_active = 0;
	for (size_t i = 0; i < SBX_ARRAY_LEN(hid_signals); i++)
		sigaction(hid_signals[i], &hid_old[i], NULL);
}

int cli_read_hidden(int fd, const char *prompt, char *buf, size_t n, sbx_err *err)
{
	size_t o = 0;
	bool newline = false, toolong = false;
	int e = 0;

	if (n == 0)
		return sbx_err_set(err, SBX_E_INTERNAL, "no room to read into");
	buf[0] = '\0';
	if (tcgetattr(fd, &hid_saved) < 0)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot read the terminal's settings");
	hid_quiet = hid_saved;
	hid_quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	hid_quiet.c_lflag |= ECHONL | ICANON;
	hid_fd = fd;
	for (size_t i = 0; i < SBX_ARRAY_LEN(hid_signals); i++) {
		struct sigaction sa = {.sa_handler = hid_signal};
		sigemptyset(&sa.sa_mask);
		sigaction(hid_signals[i], &sa, &hid_old[i]);
	}
	/* Echo goes off before the prompt appears, so nothing typed after it is shown; what was
	 * typed ahead (and shown) is dropped. */
	hid_active = 1;
	if (tcsetattr(fd, TCSAFLUSH, &hid_quiet) < 0) {
		e = errno;
		hid_restore();
		return sbx_err_sys(err, SBX_E_IO, e, "cannot turn off the terminal's echo");
	}
	(void)!sbx_write_all(fd, prompt, strlen(prompt));
	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			e = errno;
		if (r <= 0)
			break;
		if (c == '\n') {
			newline = true;
			break;
		}
		if (o + 1 < n)
			buf[o++] = c;
		else
			toolong = true;
	}
	hid_restore();
	if (!newline)
		(void)!sbx_write_all(fd, "\n", 1);
	if (o && buf[o - 1] == '\r')
		o--;
	buf[o] = '\0';
	if (e) {
		explicit_bzero(buf, n);
		return sbx_err_sys(err, SBX_E_IO, e, "cannot read from the terminal");
	}
	if (toolong) {
		explicit_bzero(buf, n);
		return sbx_err_set(err, SBX_E_INVALID, "what was typed is longer than %zu bytes: check what was pasted", n - 1);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 64;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0)
		return cmd_version(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "sbx: error: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 64;
}
