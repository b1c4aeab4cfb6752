/* sbx secret - credentials that stay on the host: set, set-custom, ls, rm.
 *
 * The daemon checks everything (services, hosts, header, format, the value's form), so this
 * file turns arguments into requests and answers into text. What it owns is getting the value
 * in without leaving it anywhere: from standard input (piped, or typed at a prompt that does not
 * echo), or from -t, which is wiped from our argv at once but has been visible to `ps` and is in
 * the shell's history; the help says so. The value is never printed (the masked form is), and
 * the copies this process holds are wiped after use.
 * Exit codes: 64 usage, 65 invalid value, 67 nothing to remove, 75 daemon. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "client.h"
#include "util.h"

#define VALUE_MAX 16384 /* the daemon's limit (SBX_SECRET_VALUE_MAX) */

static const char secret_usage[] =
	"sbx secret set [SERVICE] [-g | --sandbox NAME] [-t TOKEN]\n"
	"       sbx secret set-custom NAME --host HOST [--host HOST...] [--header NAME] [--format 'Bearer %s']\n"
	"                             [-g | --sandbox NAME] [-t TOKEN]\n"
	"       sbx secret ls [--json]\n"
	"       sbx secret rm SERVICE [-g | --sandbox NAME]";

static const char secret_help[] =
	"\n"
	"Secrets stay on the host. sbx's proxy puts a secret into a sandbox's requests to its service's\n"
	"hosts only, over TLS; inside the sandbox the agent sees a placeholder instead.\n"
	"\n"
	"Built-in services: anthropic, openai, google, github, aws, groq, mistral, openrouter, xai\n"
	"(`sbx secret set` on a terminal lists them with their hosts). An aws secret is\n"
	"ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN].\n"
	"\n"
	"The value is read from standard input: piped (all of it, one trailing newline dropped), or\n"
	"typed at a prompt that does not echo when standard input is a terminal (up to the terminal's\n"
	"line length, 4095 bytes; pipe longer ones). -t TOKEN works too, but puts the secret on the\n"
	"command line, where other processes (ps, /proc) and your shell history see it: prefer\n"
	"  echo \"$ANTHROPIC_API_KEY\" | sbx secret set -g anthropic\n"
	"\n"
	"Scope: -g (global: every sandbox) or --sandbox NAME (one sandbox; it wins over a global one).\n"
	"Without either, set, set-custom and rm use the global scope and say so.\n"
	"\n"
	"  set         store the secret of a built-in service, or a new value for a custom one\n"
	"  set-custom  define a service of your own and store its secret: --host (repeat it, or give a\n"
	"              comma list; example.com, *.example.com, **.example.com; any port, TLS only),\n"
	"              --header (default Authorization), --format with one %s where the secret goes\n"
	"              (default 'Bearer %s')\n"
	"  ls          the stored secrets, masked (--json never has values either)\n"
	"  rm          remove a secret (exit code 67 when none matches)\n";

static int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_err(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cli_usage(secret_usage, "%s", msg);
}

static int oom(void)
{
	sbx_err err = SBX_ERR_INIT;

	sbx_err_set(&err, SBX_E_INTERNAL, "out of memory");
	return cli_fail(&err);
}

/* Text from the daemon goes to a terminal: nothing in it may steer the terminal. */
static const char *clean(const char *s, char *buf, size_t n)
{
	size_t o = 0;

	if (!s)
		s = "";
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 1 < n; p++) {
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			buf[o++] = '?';
			p++;
		} else {
			buf[o++] = (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
		}
	}
	buf[o] = '\0';
	return buf;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

/* ---- options ---- */

struct sopts {
	bool global, json;
	const char *sandbox, *header, *format;
	char *token;  /* a heap copy of -t's value; the argv copy is wiped */
	json_t *hosts; /* --host values, comma lists split by the daemon */
	json_t *args;  /* positionals after the subcommand */
};

static const struct option all_opts[] = {
	{"global", no_argument, NULL, 'g'},	   {"sandbox", required_argument, NULL, 'S'},
	{"token", required_argument, NULL, 't'},  {"host", required_argument, NULL, 'H'},
	{"header", required_argument, NULL, 'X'}, {"format", required_argument, NULL, 'F'},
	{"json", no_argument, NULL, 'J'},	   {"help", no_argument, NULL, 'h'},
	{0}};

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void sopts_free(struct sopts *o)
{
	wipe_free(o->token);
	o->token = NULL;
	json_decref(o->hosts);
	json_decref(o->args);
	o->hosts = o->args = NULL;
}

/* Parses a subcommand's options; `accepted` lists the letters of all_opts it takes. Returns 0,
 * -1 after printing help, or an exit code. */
static int parse_opts(int argc, char **argv, const char *accepted, struct sopts *o)
{
	int c, r;

	memset(o, 0, sizeof(*o));
	o->args = json_array();
	o->hosts = json_array();
	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "gt:h", all_opts, NULL)) != -1) {
		if (c == 'h') {
			printf("usage: %s\n%s", secret_usage, secret_help);
			return -1;
		}
		if (c == '?' || c == ':')
			return usage_err("invalid option for `sbx secret %s`", argv[0]);
		if (c == 't') {
			/* Take the value and wipe it from argv at once, before anything can fail: what
			 * `ps` shows from now on is "-t" and nothing after it. */
			wipe_free(o->token);
			o->token = strdup(optarg);
			explicit_bzero(optarg, strlen(optarg));
			if (!o->token)
				return oom();
		}
		if (!strchr(accepted, c))
			return usage_err("`sbx secret %s` does not take --%s", argv[0], cli_opt_name(all_opts, c));
		if (optarg && c != 't' && (r = cli_check_text(cli_opt_name(all_opts, c), optarg)) != 0)
			return r;
		switch (c) {
		case 'g': o->global = true; break;
		case 'S': o->sandbox = optarg; break;
		case 't': break;
		case 'H': json_array_append_new(o->hosts, json_string(optarg)); break;
		case 'X': o->header = optarg; break;
		case 'F': o->format = optarg; break;
		case 'J': o->json = true; break;
		default: return usage_err("invalid option");
		}
	}
	for (int i = optind; i < argc; i++) {
		if ((r = cli_check_text("argument", argv[i])) != 0)
			return r;
		json_array_append_new(o->args, json_string(argv[i]));
	}
	if (o->global && o->sandbox)
		return usage_err("-g and --sandbox exclude each other: a secret is global, or for one sandbox");
	if (o->sandbox && !sbx_name_valid(o->sandbox))
		return cli_invalid("invalid sandbox name '%s': use 1-63 letters, digits, '-', '_' or '.', starting with a letter "
			       "or digit",
			       o->sandbox);
	return 0;
}

static void scope_text(const struct sopts *o, char *out, size_t n)
{
	if (o->sandbox)
		snprintf(out, n, "sandbox %s", o->sandbox);
	else
		snprintf(out, n, "global");
}

static void note_default_scope(const struct sopts *o, const char *what)
{
	if (!o->global && !o->sandbox)
		fprintf(stderr, "sbx: note: no scope given: %s the global secret (-g); --sandbox NAME is for one sandbox\n",
			what);
}

/* ---- reading the value ---- */

/* One line from stdin (echoing as the terminal does): 0, or -1 at end of input. */
static int read_answer(char *buf, size_t n)
{
	size_t o = 0;

	for (;;) {
		char c;
		ssize_t r = read(STDIN_FILENO, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return o ? 0 : -1;
		if (c == '\n')
			break;
		if (o + 1 < n)
			buf[o++] = c;
	}
	while (o && (buf[o - 1] == ' ' || buf[o - 1] == '\r' || buf[o - 1] == '\t'))
		o--;
	buf[o] = '\0';
	return 0;
}

/* The terminal's settings while a secret is typed: restored on every way out, signals included
 * (a shell left without echo is the classic bug of password prompts). */
static struct termios tio_saved, tio_quiet;
static volatile sig_atomic_t tio_active;
static const int tio_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU};
static struct sigaction tio_old_actions[SBX_ARRAY_LEN(tio_signals)];

static void tio_signal(int sig)
{
	int saved = errno;
	sigset_t set;

	if (tio_active)
		tcsetattr(STDIN_FILENO, TCSANOW, &tio_saved);
	/* Act as if we had no handler: die, or stop. */
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	/* Only a stop comes back here (after SIGCONT): hide the input again. */
	signal(sig, tio_signal);
	if (tio_active)
		tcsetattr(STDIN_FILENO, TCSANOW, &tio_quiet);
	errno = saved;
}

static void tio_restore(void)
{
	if (!tio_active)
		return;
	tcsetattr(STDIN_FILENO, TCSANOW, &tio_saved);
	tio_active = 0;
	for (size_t i = 0; i < SBX_ARRAY_LEN(tio_signals); i++)
		sigaction(tio_signals[i], &tio_old_actions[i], NULL);
}

/* Reads one line typed without echo. *out is a heap buffer (wipe it); 0, or an exit code. */
static int read_secret_tty(const char *service, char **out, size_t *len)
{
	char *buf = malloc(VALUE_MAX + 2);
	size_t o = 0;
	bool newline = false, toolong = false;

	*out = NULL;
	if (!buf)
		return oom();
	if (tcgetattr(STDIN_FILENO, &tio_saved) < 0) {
		free(buf);
		return cli_invalid("cannot read the terminal's settings (%s): pipe the secret in instead", strerror(errno));
	}
	tio_quiet = tio_saved;
	tio_quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	tio_quiet.c_lflag |= ECHONL | ICANON;
	for (size_t i = 0; i < SBX_ARRAY_LEN(tio_signals); i++) {
		struct sigaction sa = {.sa_handler = tio_signal};
		sigemptyset(&sa.sa_mask);
		sigaction(tio_signals[i], &sa, &tio_old_actions[i]);
	}
	/* Echo goes off before the prompt appears, so nothing typed after it is shown; what was
	 * typed ahead (and shown) is dropped. */
	tio_active = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio_quiet) < 0) {
		int e = errno;
		tio_restore();
		free(buf);
		return cli_invalid("cannot turn off the terminal's echo (%s): pipe the secret in instead", strerror(e));
	}
	fprintf(stderr, "Secret for %s (typing is not shown): ", service);
	fflush(stderr);
	for (;;) {
		char c;
		ssize_t r = read(STDIN_FILENO, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (c == '\n') {
			newline = true;
			break;
		}
		if (o < VALUE_MAX + 1)
			buf[o++] = c;
		else
			toolong = true;
	}
	tio_restore();
	if (!newline)
		fputc('\n', stderr);
	buf[o] = '\0';
	if (o && buf[o - 1] == '\r')
		buf[--o] = '\0';
	if (toolong || o > VALUE_MAX) {
		explicit_bzero(buf, VALUE_MAX + 2);
		free(buf);
		return cli_invalid("the secret is longer than %d bytes: check what was pasted", VALUE_MAX);
	}
	*out = buf;
	*len = o;
	return 0;
}

/* All of stdin (not a terminal), one trailing newline dropped. 0, or an exit code. */
static int read_secret_pipe(char **out, size_t *len)
{
	char *buf = malloc(VALUE_MAX + 3);
	size_t o = 0;

	*out = NULL;
	if (!buf)
		return oom();
	for (;;) {
		ssize_t r = read(STDIN_FILENO, buf + o, VALUE_MAX + 2 - o);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			explicit_bzero(buf, VALUE_MAX + 3);
			free(buf);
			sbx_err err = SBX_ERR_INIT;
			sbx_err_sys(&err, SBX_E_IO, e, "cannot read the secret from standard input");
			return cli_fail(&err);
		}
		if (r == 0)
			break;
		o += (size_t)r;
		if (o == VALUE_MAX + 2) {
			/* Too long even with a "\r\n": drain the rest so the writer does not block. */
			char sink[4096];
			for (;;) {
				ssize_t d = read(STDIN_FILENO, sink, sizeof(sink));
				if (d == 0 || (d < 0 && errno != EINTR))
					break;
			}
			explicit_bzero(sink, sizeof(sink));
			break;
		}
	}
	if (o && buf[o - 1] == '\n') {
		o--;
		if (o && buf[o - 1] == '\r')
			o--;
	}
	buf[o] = '\0';
	if (o > VALUE_MAX) {
		explicit_bzero(buf, VALUE_MAX + 3);
		free(buf);
		return cli_invalid("the secret is longer than %d bytes: check what was given on standard input", VALUE_MAX);
	}
	*out = buf;
	*len = o;
	return 0;
}

/* ---- choosing a service on a terminal ---- */

static int ask_service(char *out, size_t n)
{
	sbx_err err = SBX_ERR_INIT;
	json_t *res = sbx_api("GET", "/v1/secrets/services", NULL, &err), *v;
	size_t i, count;

	if (!res)
		return cli_fail(&err);
	json_t *list = json_object_get(res, "services");
	count = json_array_size(list);
	fprintf(stderr, "Which service is the secret for?\n");
	json_array_foreach(list, i, v)
	{
		char name[80], title[120], hosts[300] = "";
		size_t j, o = 0;
		json_t *h;
		json_array_foreach(json_object_get(v, "hosts"), j, h)
		{
			char b[260];
			int w = snprintf(hosts + o, sizeof(hosts) - o, "%s%s", j ? ", " : "",
					 clean(json_string_value(h), b, sizeof(b)));
			if (w < 0 || (size_t)w >= sizeof(hosts) - o)
				break;
			o += (size_t)w;
		}
		fprintf(stderr, "  %2zu) %-11s %-22s %s\n", i + 1, clean(jstr(v, "name"), name, sizeof(name)),
			clean(jstr(v, "title"), title, sizeof(title)), hosts);
	}
	fprintf(stderr, "(for another service: `sbx secret set-custom NAME --host HOST`)\n");
	for (int tries = 0; tries < 3; tries++) {
		char ans[80];
		int64_t k;
		fprintf(stderr, "Service [1-%zu or a name]: ", count);
		fflush(stderr);
		if (read_answer(ans, sizeof(ans)) < 0) {
			fputc('\n', stderr);
			break;
		}
		const char *a = ans;
		while (*a == ' ' || *a == '\t')
			a++;
		if (!*a)
			continue;
		if (sbx_parse_i64(a, 1, (int64_t)count, &k) == 0) {
			sbx_strlcpy(out, jstr(json_array_get(list, (size_t)k - 1), "name"), n);
			json_decref(res);
			return 0;
		}
		if (sbx_parse_i64(a, INT64_MIN, INT64_MAX, &k) < 0 && strlen(a) < n && cli_check_text("service", a) == 0) {
			sbx_strlcpy(out, a, n); /* a name; the daemon says if it knows it */
			json_decref(res);
			return 0;
		}
		fprintf(stderr, "Please answer with a number from 1 to %zu, or a service name.\n", count);
	}
	json_decref(res);
	return usage_err("no service chosen: name it, e.g. sbx secret set anthropic");
}

/* ---- set / set-custom ---- */

static int p_set(int argc, char **argv, bool custom)
{
	struct sopts o;
	sbx_err err = SBX_ERR_INIT;
	int r = parse_opts(argc, argv, custom ? "gStHXF" : "gSt", &o);
	char service[80], scope[100];
	char *value = NULL;
	size_t vlen = 0;
	bool tty = isatty(STDIN_FILENO);
	json_t *body = NULL, *res = NULL;

	if (r) {
		sopts_free(&o);
		return r < 0 ? 0 : r;
	}
	size_t nargs = json_array_size(o.args);
	if (custom && nargs != 1) {
		r = usage_err(nargs ? "name one custom service" : "name the custom service: sbx secret set-custom NAME --host "
								  "HOST");
		goto out;
	}
	if (!custom && nargs > 1) {
		r = usage_err("name one service (to store several, run `sbx secret set` once for each)");
		goto out;
	}
	if (custom && json_array_size(o.hosts) == 0) {
		r = usage_err("name the hosts the secret is for: --host api.example.com (repeat --host for more)");
		goto out;
	}
	if (nargs) {
		sbx_strlcpy(service, json_string_value(json_array_get(o.args, 0)), sizeof(service));
	} else if (!tty) {
		r = usage_err("name the service: e.g. echo \"$ANTHROPIC_API_KEY\" | sbx secret set -g anthropic (on a "
			      "terminal, sbx lists the services and asks)");
		goto out;
	} else if ((r = ask_service(service, sizeof(service))) != 0) {
		goto out;
	}

	body = json_pack("{s:s}", "service", service);
	if (o.sandbox)
		json_object_set_new(body, "sandbox", json_string(o.sandbox));
	if (custom) {
		json_object_set_new(body, "custom", json_true());
		json_object_set(body, "hosts", o.hosts);
		if (o.header)
			json_object_set_new(body, "header", json_string(o.header));
		if (o.format)
			json_object_set_new(body, "format", json_string(o.format));
	}
	note_default_scope(&o, "storing");
	if (o.token) {
		value = o.token;
		o.token = NULL;
		vlen = strlen(value);
	} else if (tty) {
		/* Everything but the value is checked before anyone types a secret. */
		json_object_set_new(body, "dry_run", json_true());
		if (!(res = sbx_api("POST", "/v1/secrets", body, &err))) {
			r = cli_fail(&err);
			goto out;
		}
		json_decref(res);
		res = NULL;
		json_object_del(body, "dry_run");
		if ((r = read_secret_tty(service, &value, &vlen)) != 0)
			goto out;
	} else if ((r = read_secret_pipe(&value, &vlen)) != 0) {
		goto out;
	}
	if (vlen == 0) {
		r = cli_invalid("the secret is empty: pipe it in (echo \"$KEY\" | sbx secret set -g %s)%s", service,
			    tty ? " or type it when asked" : "");
		goto out;
	}
	if (strlen(value) != vlen) {
		r = cli_invalid("the secret contains a NUL byte: give the key alone");
		goto out;
	}
	json_t *jv = json_stringn(value, vlen);
	if (!jv) {
		r = cli_invalid("the secret is not valid UTF-8 text: give the key alone");
		goto out;
	}
	json_object_set_new(body, "value", jv);
	res = sbx_api("POST", "/v1/secrets", body, &err);
	explicit_bzero((char *)json_string_value(jv), vlen);
	if (!res) {
		r = cli_fail(&err);
		goto out;
	}

	json_t *sec = json_object_get(res, "secret");
	char name[80], masked[64];
	scope_text(&o, scope, sizeof(scope));
	printf("Stored the %s secret (%s): %s\n", clean(jstr(sec, "service"), name, sizeof(name)), scope,
	       clean(jstr(sec, "masked"), masked, sizeof(masked)));
	if (json_is_true(json_object_get(sec, "custom"))) {
		char hosts[1200] = "", h[300], header[80], format[80];
		size_t i, n = 0;
		json_t *v;
		json_array_foreach(json_object_get(sec, "hosts"), i, v)
		{
			int w = snprintf(hosts + n, sizeof(hosts) - n, "%s%s", i ? ", " : "",
					 clean(json_string_value(v), h, sizeof(h)));
			if (w < 0 || (size_t)w >= sizeof(hosts) - n)
				break;
			n += (size_t)w;
		}
		/* The format with the secret's place shown. */
		char shown[160];
		size_t k = 0;
		clean(jstr(sec, "format"), format, sizeof(format));
		for (const char *p = format; *p && k + 10 < sizeof(shown); p++) {
			if (p[0] == '%' && p[1] == 's') {
				memcpy(shown + k, "<secret>", 8);
				k += 8;
				p++;
			} else {
				shown[k++] = *p;
			}
		}
		shown[k] = '\0';
		printf("It goes to %s as '%s: %s'\n", hosts, clean(jstr(sec, "header"), header, sizeof(header)), shown);
	}
	if (json_is_false(json_object_get(res, "sandbox_exists")))
		fprintf(stderr, "sbx: note: no sandbox named '%s' exists yet; the secret applies to one created with that "
				"name\n",
			o.sandbox);
	r = 0;
out:
	wipe_free(value);
	json_decref(res);
	json_decref(body);
	sopts_free(&o);
	return r;
}

/* ---- ls ---- */

/* Columns as a terminal shows them: UTF-8 continuation bytes take no room. */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void print_cell(const char *s, size_t w, bool last)
{
	fputs(s, stdout);
	if (last) {
		fputc('\n', stdout);
		return;
	}
	for (size_t i = width(s); i < w + 2; i++)
		fputc(' ', stdout);
}

static void ago(long long ms, char *out, size_t n)
{
	long long d = ((long long)sbx_now_ms() - ms) / 1000;

	if (ms <= 0)
		snprintf(out, n, "-");
	else if (d < 60)
		snprintf(out, n, "%llds ago", d < 0 ? 0 : d);
	else if (d < 3600)
		snprintf(out, n, "%lldm ago", d / 60);
	else if (d < 86400)
		snprintf(out, n, "%lldh ago", d / 3600);
	else
		snprintf(out, n, "%lldd ago", d / 86400);
}

#define LS_COLS 5
#define LS_CELL 400

static int p_ls(int argc, char **argv)
{
	static const char *const head[LS_COLS] = {"SERVICE", "SCOPE", "HOSTS", "VALUE", "UPDATED"};
	struct sopts o;
	sbx_err err = SBX_ERR_INIT;
	int r = parse_opts(argc, argv, "J", &o);

	if (r) {
		sopts_free(&o);
		return r < 0 ? 0 : r;
	}
	if (json_array_size(o.args)) {
		r = usage_err("unexpected argument '%s': `sbx secret ls` lists every secret",
			      json_string_value(json_array_get(o.args, 0)));
		sopts_free(&o);
		return r;
	}
	bool as_json = o.json;
	sopts_free(&o);
	json_t *res = sbx_api("GET", "/v1/secrets", NULL, &err);
	if (!res)
		return cli_fail(&err);
	json_t *list = json_object_get(res, "secrets"), *v;
	size_t i, n = json_array_size(list);
	if (as_json) {
		cli_print_json(list);
		json_decref(res);
		return 0;
	}
	if (n == 0) {
		printf("No secrets stored. Store one with: echo \"$ANTHROPIC_API_KEY\" | sbx secret set -g anthropic\n");
		json_decref(res);
		return 0;
	}
	char(*cells)[LS_COLS][LS_CELL] = calloc(n, sizeof(*cells));
	size_t w[LS_COLS];
	if (!cells) {
		json_decref(res);
		return oom();
	}
	for (size_t c = 0; c < LS_COLS; c++)
		w[c] = strlen(head[c]);
	json_array_foreach(list, i, v)
	{
		char hosts[LS_CELL] = "", h[300], b[LS_CELL];
		size_t j, k = 0;
		json_t *x;
		json_array_foreach(json_object_get(v, "hosts"), j, x)
		{
			int wr = snprintf(hosts + k, sizeof(hosts) - k, "%s%s", j ? ", " : "",
					  clean(json_string_value(x), h, sizeof(h)));
			if (wr < 0 || (size_t)wr >= sizeof(hosts) - k)
				break;
			k += (size_t)wr;
		}
		snprintf(cells[i][0], LS_CELL, "%s%s", clean(jstr(v, "service"), b, sizeof(b)),
			 json_is_true(json_object_get(v, "custom")) ? " (custom)" : "");
		if (*jstr(v, "sandbox"))
			snprintf(cells[i][1], LS_CELL, "sandbox %s", clean(jstr(v, "sandbox"), b, sizeof(b)));
		else
			snprintf(cells[i][1], LS_CELL, "global");
		snprintf(cells[i][2], LS_CELL, "%s", hosts);
		clean(jstr(v, "masked"), cells[i][3], LS_CELL);
		ago((long long)json_integer_value(json_object_get(v, "updated_at")), cells[i][4], LS_CELL);
		for (size_t c = 0; c < LS_COLS; c++)
			if (width(cells[i][c]) > w[c])
				w[c] = width(cells[i][c]);
	}
	for (size_t c = 0; c < LS_COLS; c++)
		print_cell(head[c], w[c], c + 1 == LS_COLS);
	for (i = 0; i < n; i++)
		for (size_t c = 0; c < LS_COLS; c++)
			print_cell(cells[i][c], w[c], c + 1 == LS_COLS);
	free(cells);
	json_decref(res);
	return 0;
}

/* ---- rm ---- */

static int p_rm(int argc, char **argv)
{
	struct sopts o;
	sbx_err err = SBX_ERR_INIT;
	int r = parse_opts(argc, argv, "gS", &o);
	char scope[100], name[80];

	if (r) {
		sopts_free(&o);
		return r < 0 ? 0 : r;
	}
	if (json_array_size(o.args) != 1) {
		r = usage_err(json_array_size(o.args) ? "name one secret to remove"
						      : "name the secret to remove: sbx secret rm SERVICE (see `sbx secret ls`)");
		sopts_free(&o);
		return r;
	}
	note_default_scope(&o, "removing");
	json_t *body = json_pack("{s:O}", "service", json_array_get(o.args, 0));
	if (o.sandbox)
		json_object_set_new(body, "sandbox", json_string(o.sandbox));
	json_t *res = sbx_api("DELETE", "/v1/secrets", body, &err);
	json_decref(body);
	if (!res) {
		sopts_free(&o);
		return cli_fail(&err);
	}
	scope_text(&o, scope, sizeof(scope));
	printf("Removed the %s secret (%s)\n", clean(json_string_value(json_array_get(o.args, 0)), name, sizeof(name)),
	       scope);
	json_decref(res);
	sopts_free(&o);
	return 0;
}

/* ---- dispatch ---- */

int cmd_secret(int argc, char **argv)
{
	if (argc < 2)
		return usage_err("a secret command is required");
	const char *sub = argv[1];
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
		printf("usage: %s\n%s", secret_usage, secret_help);
		return 0;
	}
	argc--;
	argv++;
	if (strcmp(sub, "set") == 0)
		return p_set(argc, argv, false);
	if (strcmp(sub, "set-custom") == 0)
		return p_set(argc, argv, true);
	if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0)
		return p_ls(argc, argv);
	if (strcmp(sub, "rm") == 0 || strcmp(sub, "remove") == 0)
		return p_rm(argc, argv);
	return usage_err("unknown secret command '%s'", sub);
}
