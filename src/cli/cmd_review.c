/* sbx review, sbx approver - requests held for review, and the people who may decide them.
 *
 * The daemon holds a sandbox's request when a review rule or a built-in classifier marks it
 * (set up with `sbx policy review` and `sbx policy classifier`); this file lists, shows and
 * decides held requests, and manages the named approvers of the two-person rule. The daemon
 * decides everything (who counts as a second approver, whether a token is right); what this
 * file owns is the approver's token on the way in: read from SBX_APPROVER_TOKEN, typed without
 * echo, or piped in, and never taken from the command line, where every process on the host can
 * read it (/proc/PID/cmdline). It is wiped from this process's copies after use.
 *
 * Exit codes: 64 usage, 65 invalid value, 67 no such held request or approver, 73 conflict (this
 * approver already approved; the approver exists), 77 wrong approver token, 75 daemon. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "client.h"
#include "util.h"

#define TOKEN_MAX 256    /* bytes; tokens are far shorter (the daemon's are 69) */
#define ID_MAX 64        /* a held request's id ("r-3f9a1c2e") goes into a URL path */
#define APPROVER_MAX 32  /* the daemon's limit on approver names */

static const char review_usage[] =
	"sbx review ls [--sandbox NAME] [--json]\n"
	"       sbx review show ID [--json]\n"
	"       sbx review approve ID [--always] [--as NAME]\n"
	"       sbx review deny ID [--reason TEXT] [--as NAME]";

static const char review_help[] =
	"\n"
	"sbx holds a sandbox's request when a review rule (`sbx policy review network HOST`) or a\n"
	"built-in classifier (`sbx policy classifier ls`) marks it: the agent just sees a slow answer\n"
	"while someone decides. A request nobody approves within its timeout is denied. Every step is in\n"
	"the audit log.\n"
	"\n"
	"  ls       the held requests, oldest first (those of one sandbox with --sandbox NAME)\n"
	"  show     one request: the rule, why it was held, method and URL, its headers (secrets masked)\n"
	"           and the start of its body\n"
	"  approve  let it through, exactly as the agent wrote it. --always: also add a rule that lets\n"
	"           requests of this shape through from now on: the same host, port, method, path and\n"
	"           operation (for an AWS call, the action, whatever resource the body names). Refused\n"
	"           for a URL with a query, an unreadable request, or one that needs 2 approvals.\n"
	"           A request that needs 2 approvals needs two different people: you, and a named\n"
	"           approver who runs `sbx review approve ID --as NAME` (see `sbx approver`).\n"
	"  deny     refuse it now: the agent gets a 403, with --reason TEXT in it and in the log\n"
	"\n"
	"--as NAME decides as the named approver NAME. Their token is read from the environment variable\n"
	"SBX_APPROVER_TOKEN, else asked for on the terminal (not echoed), else read from standard input\n"
	"(one line); never from the command line, where other processes could read it.\n"
	"\n"
	"While `sbx run` or `sbx exec` is attached, held requests of its sandbox show in the terminal's\n"
	"title, with a bell (without a terminal: as lines on standard error).\n"
	"\n"
	"Exit codes: 0 done, 64 usage, 65 invalid value, 67 no such held request, 73 this approver has\n"
	"already approved it, 77 wrong approver token, 75 the daemon cannot be reached.\n";

static const char approver_usage[] =
	"sbx approver add NAME [--json]\n"
	"       sbx approver ls [--json]\n"
	"       sbx approver rm NAME";

static const char approver_help[] =
	"\n"
	"A request that needs 2 approvals (`--approvals 2` on a review rule or a classifier) needs two\n"
	"different people. You, the user running sbx, count once (as user:LOGIN); the others are named\n"
	"approvers, each with a token of their own that `sbx approver add` prints once (sbx keeps only\n"
	"its hash). They approve with `SBX_APPROVER_TOKEN=... sbx review approve ID --as NAME`.\n"
	"\n"
	"  add   create the approver NAME (1-32 of a-z, 0-9, '-' and '_', starting with a letter) and\n"
	"        print its token, once\n"
	"  ls    the named approvers\n"
	"  rm    remove NAME: their token stops working at once\n"
	"\n"
	"The rule guards against one person's slip, not against the owner of this account, who can add\n"
	"an approver and keep its token.\n";

static const struct option all_opts[] = {
	{"sandbox", required_argument, NULL, 'S'}, {"json", no_argument, NULL, 'J'},
	{"always", no_argument, NULL, 'A'},	    {"as", required_argument, NULL, 'W'},
	{"reason", required_argument, NULL, 'R'},  {"help", no_argument, NULL, 'h'},
	{0}};

static const struct cli_group review_group = {"review", review_usage, review_help, all_opts, "h"};
static const struct cli_group approver_group = {"approver", approver_usage, approver_help, all_opts, "h"};

/* ---- names and ids ---- */

static bool id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* The daemon's rule (approvers.h), checked here too so that the message comes before any prompt
 * for a token. */
static bool approver_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > APPROVER_MAX || name[0] < 'a' || name[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

static int check_approver(const char *name)
{
	char shown[80];

	if (approver_valid(name))
		return 0;
	return cli_invalid("invalid approver name '%s': use 1-%d lowercase letters, digits, '-' or '_', starting with a "
		       "letter",
		       cli_clean(name, shown, sizeof(shown)), APPROVER_MAX);
}

/* The one argument a subcommand takes (a request id or an approver name): 0 and *out, or an
 * exit code. what: "ID" or "NAME". */
static int one_arg(const struct cli_group *g, const char *sub, json_t *args, const char *what, const char **out)
{
	size_t n = json_array_size(args);

	if (n == 1) {
		*out = json_string_value(json_array_get(args, 0));
		return 0;
	}
	if (n == 0)
		return cli_usage(g->usage, "name the %s: sbx %s %s %s%s", strcmp(what, "ID") == 0 ? "held request" : "approver",
				 g->name, sub, what,
				 strcmp(what, "ID") == 0 ? " (the IDs are in `sbx review ls`)" : "");
	return cli_usage(g->usage, "`sbx %s %s` takes one %s", g->name, sub, what);
}

static int one_id(const char *sub, json_t *args, const char **id)
{
	char shown[80];
	int r = one_arg(&review_group, sub, args, "ID", id);

	if (r)
		return r;
	if (!id_valid(*id))
		return cli_invalid("invalid request id '%s': use an ID from `sbx review ls` (like r-3f9a1c2e)",
			       cli_clean(*id, shown, sizeof(shown)));
	return 0;
}

/* ---- review ls ---- */

#define REVIEW_COLS 7
enum { C_ID, C_SANDBOX, C_AGE, C_EXPIRES, C_APPROVALS, C_REQUEST, C_WHY };

/* Why the request was held, for people: the daemon's reason, else the operation, else the rule. */
static const char *why_text(json_t *v)
{
	const char *reason = cli_jstr(v, "reason"), *action = cli_jstr(v, "action");

	if (*reason)
		return reason;
	if (*action && strcmp(action, "review-rule") != 0) /* review-rule: only a rule held it */
		return action;
	return cli_jstr(v, "rule");
}

static long long jint(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static void age_text(json_t *v, char *out, size_t n)
{
	long long age = jint(v, "age_ms");

	if (!json_is_integer(json_object_get(v, "age_ms")) && jint(v, "created_ms") > 0)
		age = (long long)sbx_now_ms() - jint(v, "created_ms");
	cli_duration(age > 0 ? (unsigned long long)age : 0, out, n);
}

static void expires_text(json_t *v, char *out, size_t n)
{
	long long left = jint(v, "expires_in_ms");

	if (left <= 0)
		snprintf(out, n, "now");
	else
		cli_duration((unsigned long long)left, out, n);
}

/* The widest cell of column c, at least as wide as its header. */
static size_t col_width(json_t *rows, size_t c, const char *head)
{
	size_t w = cli_width(head), i;
	json_t *row;

	json_array_foreach(rows, i, row)
	{
		const char *s = json_string_value(json_array_get(row, c));
		if (s && cli_width(s) > w)
			w = cli_width(s);
	}
	return w;
}

static void print_review_table(json_t *list)
{
	static const char *const head[REVIEW_COLS] = {"ID", "SANDBOX", "AGE", "EXPIRES", "APPROVALS", "REQUEST", "WHY"};
	size_t max[REVIEW_COLS] = {[C_SANDBOX] = 24}, used = 0, i;
	json_t *rows = json_array(), *v;

	json_array_foreach(list, i, v)
	{
		char age[32], expires[32], approvals[48], request[2200], m[40], u[2100];
		json_t *row = cli_row(rows);
		age_text(v, age, sizeof(age));
		expires_text(v, expires, sizeof(expires));
		if (strcmp(cli_jstr(v, "state"), "approved") == 0) /* waiting for the agent's retry */
			snprintf(approvals, sizeof(approvals), "approved");
		else
			snprintf(approvals, sizeof(approvals), "%zu/%lld", json_array_size(json_object_get(v, "approvals")),
				 jint(v, "needed"));
		snprintf(request, sizeof(request), "%s %s", cli_clean(cli_jstr(v, "method"), m, sizeof(m)),
			 cli_clean(cli_jstr(v, "url"), u, sizeof(u)));
		cli_cell(row, cli_jstr(v, "id"));
		cli_cell(row, cli_jstr(v, "sandbox"));
		cli_cell(row, age);
		cli_cell(row, expires);
		cli_cell(row, approvals);
		cli_cell(row, request);
		cli_cell(row, why_text(v));
	}
	/* REQUEST and WHY share what the other columns leave of the line (the terminal's width, or
	 * 80): the URL is what people read first, so WHY gets at most a third unless the URL is
	 * short. */
	for (size_t c = 0; c < C_REQUEST; c++) {
		size_t w = col_width(rows, c, head[c]);
		used += (max[c] && w > max[c] ? max[c] : w) + 2;
	}
	size_t cols = cli_term_cols(), rest = cols > used + 2 + 40 ? cols - used - 2 : 40;
	size_t req = col_width(rows, C_REQUEST, head[C_REQUEST]), why = col_width(rows, C_WHY, head[C_WHY]);
	if (req + why > rest) {
		size_t why_max = rest / 3 > 16 ? rest / 3 : 16;
		if (why > why_max)
			why = why_max;
		if (req > rest - why)
			req = rest - why;
		else
			why = rest - req;
	}
	max[C_REQUEST] = req;
	max[C_WHY] = why;
	cli_table_print(head, REVIEW_COLS, rows, max);
	json_decref(rows);
}

static int r_ls(int argc, char **argv)
{
	struct cli_opts o;
	sbx_err err = SBX_ERR_INIT;
	int r = cli_parse_opts(&review_group, argc, argv, "SJ", &o);
	const char *sandbox = o.val['S'];
	char path[128];

	if (r == 0 && json_array_size(o.args))
		r = cli_usage(review_usage, "unexpected argument '%s' (for one sandbox's requests use --sandbox NAME)",
			      json_string_value(json_array_get(o.args, 0)));
	if (r == 0 && sandbox)
		r = cli_check_sandbox(sandbox);
	cli_opts_free(&o);
	if (r)
		return r < 0 ? 0 : r;
	/* A valid sandbox name needs no escaping in a query. */
	snprintf(path, sizeof(path), "/v1/reviews%s%s", sandbox ? "?sandbox=" : "", sandbox ? sandbox : "");
	json_t *res = sbx_api("GET", path, NULL, &err);
	if (!res)
		return cli_fail(&err);
	json_t *list = json_object_get(res, "reviews");
	if (o.val['J'])
		cli_print_json(res);
	else if (json_array_size(list) == 0)
		printf("no requests are waiting for review\n");
	else
		print_review_table(list);
	json_decref(res);
	return 0;
}

/* ---- review show ---- */

/* Multi-line text from the daemon (a body preview), each line indented and cleaned; tabs become
 * spaces, carriage returns go. */
static void print_block(const char *s, const char *indent)
{
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s), k = 0;
		char line[4200], shown[4200];
		for (size_t i = 0; i < len && k + 1 < sizeof(line); i++)
			if (s[i] != '\r')
				line[k++] = s[i] == '\t' ? ' ' : s[i];
		line[k] = '\0';
		printf("%s%s\n", indent, cli_clean(line, shown, sizeof(shown)));
		s += len + (nl ? 1 : 0);
	}
}

static void approvals_text(json_t *v, char *out, size_t n)
{
	json_t *list = json_object_get(v, "approvals"), *a;
	size_t i, o = 0;

	out[0] = '\0';
	json_array_foreach(list, i, a)
	{
		char b[128];
		int w = snprintf(out + o, n - o, "%s%s", i ? ", " : "", cli_clean(json_string_value(a), b, sizeof(b)));
		if (w < 0 || (size_t)w >= n - o)
			break;
		o += (size_t)w;
	}
	if (json_array_size(list))
		snprintf(out + o, n - o, " (%zu of %lld)", json_array_size(list), jint(v, "needed"));
	else
		snprintf(out, n, "none yet (%lld needed)", jint(v, "needed"));
}

static void print_review(json_t *v)
{
	char id[80], b1[1024], b2[2100], age[32], expires[32], approvals[600];
	json_t *headers = json_object_get(v, "headers"), *h;
	long long bytes = jint(v, "body_bytes");
	const char *preview = cli_jstr(v, "body_preview");
	size_t i;

	cli_clean(cli_jstr(v, "id"), id, sizeof(id));
	age_text(v, age, sizeof(age));
	expires_text(v, expires, sizeof(expires));
	approvals_text(v, approvals, sizeof(approvals));
	bool approved = strcmp(cli_jstr(v, "state"), "approved") == 0;
	if (approved)
		printf("%s: approved; its client had gone, so it goes through if the agent sends it again within %s\n", id,
		       expires);
	else
		printf("%s: held for review\n", id);
	printf("  sandbox    %s\n", cli_clean(cli_jstr(v, "sandbox"), b1, sizeof(b1)));
	printf("  rule       %s\n", cli_clean(cli_jstr(v, "rule"), b1, sizeof(b1)));
	if (*cli_jstr(v, "classifier") || *cli_jstr(v, "action")) {
		char c[128];
		printf("  operation  %s%s%s%s\n", cli_clean(cli_jstr(v, "action"), b1, sizeof(b1)),
		       *cli_jstr(v, "classifier") ? " (classifier " : "", cli_clean(cli_jstr(v, "classifier"), c, sizeof(c)),
		       *cli_jstr(v, "classifier") ? ")" : "");
	}
	printf("  why        %s\n", cli_clean(why_text(v), b1, sizeof(b1)));
	printf("  request    %s %s\n", cli_clean(cli_jstr(v, "method"), b1, sizeof(b1)),
	       cli_clean(cli_jstr(v, "url"), b2, sizeof(b2)));
	if (approved)
		printf("  held for   %s\n", age);
	else
		printf("  held for   %s (denied in %s unless approved)\n", age, expires);
	printf("  approvals  %s\n", approvals);
	if (!approved && json_is_boolean(json_object_get(v, "client_connected")))
		printf("  client     %s\n", json_is_true(json_object_get(v, "client_connected"))
						? "waiting for the answer"
						: "gone (approved, the request goes through when the agent sends it again)");
	printf("headers:\n");
	json_array_foreach(headers, i, h)
	{
		printf("  %s: ", cli_clean(json_string_value(json_array_get(h, 0)), b1, sizeof(b1)));
		printf("%s\n", cli_clean(json_string_value(json_array_get(h, 1)), b2, sizeof(b2)));
	}
	if (json_array_size(headers) == 0)
		printf("  (none)\n");
	if (bytes <= 0 && !*preview) {
		printf("body: none\n");
	} else {
		if (json_is_true(json_object_get(v, "body_truncated")))
			printf("body (%lld bytes, the start shown):\n", bytes);
		else
			printf("body (%lld bytes):\n", bytes);
		if (*preview)
			print_block(preview, "  ");
		else
			printf("  (not shown: not text)\n");
	}
	if (approved)
		return;
	printf("decide:\n");
	printf("  sbx review approve %s   (--always: requests of this shape from now on)\n", id);
	printf("  sbx review deny %s      (--reason TEXT: tell the agent why)\n", id);
	if (jint(v, "needed") > 1)
		printf("It needs %lld different approvers: besides you, a named one (`sbx review approve %s --as NAME`).\n",
		       jint(v, "needed"), id);
}

static int r_show(int argc, char **argv)
{
	struct cli_opts o;
	sbx_err err = SBX_ERR_INIT;
	int r = cli_parse_opts(&review_group, argc, argv, "J", &o);
	const char *id = NULL;
	char path[128];

	if (r == 0)
		r = one_id(argv[0], o.args, &id);
	if (r) {
		cli_opts_free(&o);
		return r < 0 ? 0 : r;
	}
	snprintf(path, sizeof(path), "/v1/reviews/%s", id);
	cli_opts_free(&o);
	json_t *res = sbx_api("GET", path, NULL, &err);
	if (!res)
		return cli_fail(&err);
	if (o.val['J'])
		cli_print_json(res);
	else
		print_review(res);
	json_decref(res);
	return 0;
}

/* ---- the approver's token ---- */

/* One line from standard input (not a terminal): 0, or -1 with err. */
static int read_line_stdin(char *out, size_t n, sbx_err *err)
{
	size_t o = 0;
	bool toolong = false;

	for (;;) {
		char c;
		ssize_t r = read(STDIN_FILENO, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return sbx_err_sys(err, SBX_E_IO, errno, "cannot read the token from standard input");
		if (r == 0 || c == '\n')
			break;
		if (o + 1 < n) {
			out[o++] = c;
		} else {
			toolong = true;
			break;
		}
	}
	out[o] = '\0';
	if (toolong) {
		explicit_bzero(out, n);
		return sbx_err_set(err, SBX_E_INVALID,
				   "the token on standard input is longer than any approver token: give the token alone, "
				   "on one line");
	}
	return 0;
}

/* The token of approver `name`: from SBX_APPROVER_TOKEN, else typed on the terminal, else one
 * line of standard input. 0, or an exit code after saying what is wrong. */
static int read_token(const char *name, char *out, size_t n)
{
	const char *env = getenv("SBX_APPROVER_TOKEN");
	sbx_err err = SBX_ERR_INIT;
	size_t len;

	out[0] = '\0';
	if (env) {
		if (!*env)
			return cli_invalid("SBX_APPROVER_TOKEN is empty: set it to %s's token, or unset it to type the token", name);
		if (strlen(env) >= n)
			return cli_invalid("SBX_APPROVER_TOKEN is longer than any approver token: check its value");
		sbx_strlcpy(out, env, n);
	} else if (isatty(STDIN_FILENO)) {
		char prompt[80];
		int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			sbx_err_sys(&err, SBX_E_IO, errno,
				    "cannot open the terminal to ask for %s's token (set SBX_APPROVER_TOKEN instead)", name);
			return cli_fail(&err);
		}
		snprintf(prompt, sizeof(prompt), "approver token for %s: ", name);
		int r = cli_read_hidden(fd, prompt, out, n, &err);
		close(fd);
		if (r < 0)
			return cli_fail(&err);
	} else if (read_line_stdin(out, n, &err) < 0) {
		return cli_fail(&err);
	}
	len = strlen(out);
	while (len && (out[len - 1] == '\r' || out[len - 1] == ' ' || out[len - 1] == '\t'))
		out[--len] = '\0';
	if (len == 0)
		return cli_invalid("no token for approver %s: set SBX_APPROVER_TOKEN, type it when asked, or pipe it in (it is "
			       "the token `sbx approver add %s` printed)",
			       name, name);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)out[i] <= 0x20 || (unsigned char)out[i] >= 0x7f) {
			explicit_bzero(out, n);
			return cli_invalid("the token given for approver %s has characters no token has: give the token alone, "
				       "as `sbx approver add` printed it",
				       name);
		}
	return 0;
}

/* ---- review approve / deny ---- */

static void print_approved(const char *id, json_t *res)
{
	json_t *list = json_object_get(res, "approvals");
	const char *state = cli_jstr(res, "state");
	size_t have = json_array_size(list);
	long long needed = jint(res, "needed");
	char who[128], b[400];

	cli_clean(have ? json_string_value(json_array_get(list, have - 1)) : "you", who, sizeof(who));
	if (strcmp(state, "held") == 0) {
		long long left = needed - (long long)have;
		if (left == 1)
			printf("%s: approved by %s (%zu of %lld), waiting for one more approver\n", id, who, have, needed);
		else
			printf("%s: approved by %s (%zu of %lld), waiting for %lld more approvers\n", id, who, have, needed,
			       left);
	} else if (strcmp(state, "approved") == 0) {
		if (json_is_false(json_object_get(res, "sent")))
			printf("%s: approved; its client had gone, so the request goes through when the agent sends it "
			       "again\n",
			       id);
		else
			printf("%s: approved; the request was sent\n", id);
	} else {
		printf("%s: %s\n", id, cli_clean(state, b, sizeof(b)));
	}
	if (*cli_jstr(res, "rule"))
		printf("added: %s\n", cli_clean(cli_jstr(res, "rule"), b, sizeof(b)));
	if (*cli_jstr(res, "rule_error")) /* approved all the same: only the --always part failed */
		fprintf(stderr, "sbx: warning: no rule was added for next time: %s\n",
			cli_clean(cli_jstr(res, "rule_error"), b, sizeof(b)));
}

static int r_decide(int argc, char **argv, bool approve)
{
	struct cli_opts o;
	sbx_err err = SBX_ERR_INIT;
	int r = cli_parse_opts(&review_group, argc, argv, approve ? "AW" : "RW", &o);
	const char *id = NULL, *as = o.val['W'];
	char path[160], shown_id[80];
	char token[TOKEN_MAX + 1];
	json_t *body = NULL, *res = NULL, *jtoken = NULL;

	if (r == 0)
		r = one_id(argv[0], o.args, &id);
	if (r == 0 && as)
		r = check_approver(as);
	if (r)
		goto out;
	snprintf(path, sizeof(path), "/v1/reviews/%s/%s", id, approve ? "approve" : "deny");
	cli_clean(id, shown_id, sizeof(shown_id));
	body = approve ? json_pack("{s:b}", "always", o.val['A'] != NULL) : json_object();
	if (!approve && o.val['R'])
		json_object_set_new(body, "reason", json_string(o.val['R']));
	if (as) {
		if ((r = read_token(as, token, sizeof(token))) != 0)
			goto out;
		jtoken = json_string(token);
		explicit_bzero(token, sizeof(token));
		json_object_set_new(body, "approver", json_string(as));
		json_object_set(body, "token", jtoken);
	}
	res = sbx_api("POST", path, body, &err);
	if (jtoken) /* jansson's copy: ours, and no one else's, to wipe */
		explicit_bzero((char *)json_string_value(jtoken), json_string_length(jtoken));
	if (!res) {
		r = cli_fail(&err);
		goto out;
	}
	if (approve) {
		print_approved(shown_id, res);
	} else {
		char reason[600];
		cli_clean(o.val['R'], reason, sizeof(reason));
		printf("%s: denied%s%s%s\n", shown_id, reason[0] ? " (" : "", reason, reason[0] ? ")" : "");
	}
	r = 0;
out:
	json_decref(jtoken);
	json_decref(body);
	json_decref(res);
	cli_opts_free(&o);
	return r < 0 ? 0 : r;
}

/* ---- approver add / ls / rm ---- */

static int a_add(int argc, char **argv)
{
	struct cli_opts o;
	sbx_err err = SBX_ERR_INIT;
	int r = cli_parse_opts(&approver_group, argc, argv, "J", &o);
	const char *name = NULL;

	if (r == 0)
		r = one_arg(&approver_group, argv[0], o.args, "NAME", &name);
	if (r == 0)
		r = check_approver(name);
	if (r) {
		cli_opts_free(&o);
		return r < 0 ? 0 : r;
	}
	json_t *body = json_pack("{s:s}", "name", name);
	cli_opts_free(&o); /* name lives in body from here on */
	json_t *res = sbx_api("POST", "/v1/approvers", body, &err);
	json_decref(body);
	if (!res)
		return cli_fail(&err);
	if (o.val['J']) {
		cli_print_json(res);
	} else {
		char n[80], t[TOKEN_MAX + 1];
		cli_clean(cli_jstr(res, "name"), n, sizeof(n));
		cli_clean(cli_jstr(res, "token"), t, sizeof(t));
		printf("Added approver %s. Their token, shown this once only:\n\n  %s\n\n", n, t);
		printf("Give it to %s over a channel you trust. They approve a held request with\n"
		       "  SBX_APPROVER_TOKEN=... sbx review approve ID --as %s\n"
		       "(or type it when `sbx review approve ID --as %s` asks). It is not shown again: if it is lost,\n"
		       "remove the approver (`sbx approver rm %s`) and add them again.\n",
		       n, n, n, n);
		explicit_bzero(t, sizeof(t));
	}
	const char *tok = json_string_value(json_object_get(res, "token"));
	if (tok)
		explicit_bzero((char *)tok, strlen(tok));
	json_decref(res);
	return 0;
}

static int a_ls(int argc, char **argv)
{
	static const char *const head[] = {"NAME", "ADDED"};
	struct cli_opts o;
	sbx_err err = SBX_ERR_INIT;
	int r = cli_parse_opts(&approver_group, argc, argv, "J", &o);

	if (r == 0 && json_array_size(o.args))
		r = cli_usage(approver_usage, "unexpected argument '%s': `sbx approver ls` lists them all",
			      json_string_value(json_array_get(o.args, 0)));
	cli_opts_free(&o);
	if (r)
		return r < 0 ? 0 : r;
	json_t *res = sbx_api("GET", "/v1/approvers", NULL, &err);
	if (!res)
		return cli_fail(&err);
	json_t *list = json_object_get(res, "approvers"), *v;
	size_t i;
	if (o.val['J']) {
		cli_print_json(res); /* {"approvers": [...]}, like review ls */
	} else if (json_array_size(list) == 0) {
		printf("No named approvers: only you approve. Add one with `sbx approver add NAME`.\n");
	} else {
		json_t *rows = json_array();
		json_array_foreach(list, i, v)
		{
			char added[48];
			json_t *row = cli_row(rows);
			cli_age(jint(v, "created_ms"), added, sizeof(added));
			cli_cell(row, cli_jstr(v, "name"));
			cli_cell(row, added);
		}
		cli_table_print(head, SBX_ARRAY_LEN(head), rows, NULL);
		json_decref(rows);
	}
	json_decref(res);
	return 0;
}

static int a_rm(int argc, char **argv)
{
	struct cli_opts o;
	sbx_err err = SBX_ERR_INIT;
	int r = cli_parse_opts(&approver_group, argc, argv, "", &o);
	const char *name = NULL;
	char path[96], shown[APPROVER_MAX + 1];

	if (r == 0)
		r = one_arg(&approver_group, argv[0], o.args, "NAME", &name);
	if (r == 0)
		r = check_approver(name);
	if (r) {
		cli_opts_free(&o);
		return r < 0 ? 0 : r;
	}
	snprintf(path, sizeof(path), "/v1/approvers/%s", name);
	sbx_strlcpy(shown, name, sizeof(shown));
	cli_opts_free(&o);
	json_t *res = sbx_api("DELETE", path, NULL, &err);
	if (!res)
		return cli_fail(&err);
	printf("Removed approver %s; their token no longer works\n", shown);
	json_decref(res);
	return 0;
}

/* ---- dispatch ---- */

static bool is_help(const char *s)
{
	return strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0 || strcmp(s, "help") == 0;
}

int cmd_review(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(review_usage, "a review command is required");
	const char *sub = argv[1];
	if (is_help(sub)) {
		printf("usage: %s\n%s", review_usage, review_help);
		return 0;
	}
	argc--;
	argv++;
	if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0)
		return r_ls(argc, argv);
	if (strcmp(sub, "show") == 0)
		return r_show(argc, argv);
	if (strcmp(sub, "approve") == 0)
		return r_decide(argc, argv, true);
	if (strcmp(sub, "deny") == 0)
		return r_decide(argc, argv, false);
	char shown[64];
	return cli_usage(review_usage, "unknown review command '%s'", cli_clean(sub, shown, sizeof(shown)));
}

int cmd_approver(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(approver_usage, "an approver command is required");
	const char *sub = argv[1];
	if (is_help(sub)) {
		printf("usage: %s\n%s", approver_usage, approver_help);
		return 0;
	}
	argc--;
	argv++;
	if (strcmp(sub, "add") == 0)
		return a_add(argc, argv);
	if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0)
		return a_ls(argc, argv);
	if (strcmp(sub, "rm") == 0 || strcmp(sub, "remove") == 0)
		return a_rm(argc, argv);
	char shown[64];
	return cli_usage(approver_usage, "unknown approver command '%s'", cli_clean(sub, shown, sizeof(shown)));
}
