/* sbx policy - the network policy: presets, allow/deny rules, checks and the log.
 *
 * Everything is decided by the daemon (parsing resources and destinations included), so this
 * file only turns arguments into requests and answers into text. Exit codes are the usual ones
 * (64 usage, 65 invalid value, 67 nothing matched, 75 daemon), except `check`, whose exit code
 * is the verdict: 0 allowed, 1 blocked, 2 held for review. The review queue itself (held
 * requests, approvers) is `sbx review` and `sbx approver` (cmd_review.c). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cleanup.h"
#include "cli.h"
#include "client.h"
#include "util.h"

static const char policy_usage[] =
	"sbx policy init allow-all|balanced|deny-all\n"
	"       sbx policy allow network RESOURCES [--method M] [--path GLOB] [--sandbox NAME]\n"
	"       sbx policy deny network RESOURCES [--method M] [--path GLOB] [--sandbox NAME]\n"
	"       sbx policy review network RESOURCES [--method M] [--path GLOB] [--approvals 1|2]\n"
	"                                 [--timeout DURATION] [--sandbox NAME]\n"
	"       sbx policy ls [--sandbox NAME] [--json]\n"
	"       sbx policy rm network RESOURCES [--method M] [--path GLOB] [--sandbox NAME] | rm --id N\n"
	"       sbx policy check network TARGET [--method M] [--path P] [--sandbox NAME] [--json]\n"
	"       sbx policy reset [--sandbox NAME] [-y]\n"
	"       sbx policy log [SANDBOX] [--raw] [--json] [--limit N] [--follow] [--host HOST] [--blocked]\n"
	"       sbx policy classifier on NAME [--approvals 1|2] [--timeout DURATION] | off NAME | ls [--json]";

static const char policy_help[] =
	"\n"
	"Every connection a sandbox makes goes through sbx's proxy, which applies these rules. Anything\n"
	"no rule allows is blocked; deny wins over review, and review over allow, whatever the order or\n"
	"specificity.\n"
	"\n"
	"RESOURCES is a comma-separated list (or several arguments) of:\n"
	"  example.com        that host, any port       host:port      that port only\n"
	"  *.example.com      one label more            1.2.3.4, 10.0.0.0/8, 2001:db8::/32, [2001:db8::1]:443\n"
	"  **.example.com     any depth (neither covers example.com itself)   **  everything\n"
	"--method and --path (a glob: '*' within a segment, '**' across) make an HTTP rule; they apply to\n"
	"host names only. --sandbox NAME scopes a rule to one sandbox; without it a rule is global.\n"
	"Host services are reachable as host.sbx.internal:PORT, and only with a rule naming it.\n"
	"\n"
	"  init     replace the global rules with a preset (rules for single sandboxes stay)\n"
	"  review   hold matching requests until someone decides (`sbx review ls`, `sbx review approve\n"
	"           ID`, `sbx review deny ID`); the agent just sees a slow answer. --approvals 2: two\n"
	"           different people must approve (see `sbx approver`). --timeout: how long a request\n"
	"           waits before it is denied (default 10m, at most 24h): seconds (90) or 90s, 5m, 2h,\n"
	"           1h30m.\n"
	"  ls       list the rules (all of them, or those that apply to --sandbox NAME), and the built-in\n"
	"           classifiers; --json: {\"preset\", \"rules\", \"classifiers\"}\n"
	"  rm       remove the rules for RESOURCES (global, or --sandbox NAME's), or one rule by id\n"
	"  check    would TARGET be reachable? TARGET is host, host:port, an address, [IPv6]:port or a URL\n"
	"           (https://host/path: the scheme gives the port, the path and --method are checked too);\n"
	"           a bare host means port 443. Exit code: 0 allowed, 1 blocked, 2 held for review.\n"
	"  reset    remove every rule you added (global and per sandbox) and apply the chosen preset again;\n"
	"           with --sandbox NAME, remove that sandbox's rules only. Asks first on a terminal\n"
	"           unless -y (no answer: nothing changes, exit 1); without a terminal it proceeds.\n"
	"  log      what sandboxes tried: blocked and allowed requests per host, with the rule that\n"
	"           decided; --raw: one line per connection, oldest first (the last 100, or --limit N);\n"
	"           --follow: the last 10, then new ones as they come, until Ctrl-C (with --json: one\n"
	"           JSON object per line); --host and --blocked filter.\n"
	"  classifier\n"
	"           the built-in classifiers hold the destructive requests of well-known APIs for review\n"
	"           (HTTP DELETE, AWS Delete*/Terminate*/..., force pushes) wherever a rule allows them;\n"
	"           `on NAME` (with its --approvals and --timeout) or `off NAME` for each, `ls` to see them.\n";

static int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_err(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cli_usage(policy_usage, "%s", msg);
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

/* ---- options shared by the subcommands ---- */

struct popts {
	const char *method, *path, *sandbox, *limit, *host;
	int64_t id;
	int64_t approvals, timeout_ms; /* review rules and classifiers; 0 when not given */
	bool json, yes, raw, follow, blocked;
	json_t *args; /* positionals after the subcommand */
};

/* Every option of the subcommands; each subcommand says which letters it accepts. */
static const struct option all_opts[] = {
	{"method", required_argument, NULL, 'M'},    {"path", required_argument, NULL, 'P'},
	{"sandbox", required_argument, NULL, 'S'},   {"id", required_argument, NULL, 'I'},
	{"json", no_argument, NULL, 'J'},	      {"yes", no_argument, NULL, 'y'},
	{"raw", no_argument, NULL, 'R'},	      {"follow", no_argument, NULL, 'f'},
	{"limit", required_argument, NULL, 'n'},     {"host", required_argument, NULL, 'H'},
	{"blocked", no_argument, NULL, 'B'},	      {"approvals", required_argument, NULL, 'A'},
	{"timeout", required_argument, NULL, 'T'},   {"help", no_argument, NULL, 'h'},
	{0}};

static const struct cli_group policy_group = {"policy", policy_usage, policy_help, all_opts, "yfn:h"};

#define TIMEOUT_MAX_MS (24LL * 3600 * 1000) /* the daemon's limit for review timeouts */
#define TIMEOUT_FORMS "seconds (90) or a duration such as 90s, 5m, 2h or 1h30m"

/* --timeout: "90" (seconds), or hours, minutes and seconds in that order, each at most once:
 * "90s", "5m", "2h", "1h30m", "1h0m30s". From 1 s to 24 h. 0, or an exit code. */
static int parse_timeout(const char *s, int64_t *ms)
{
	static const struct {
		char unit;
		int64_t ms;
	} units[] = {{'h', 3600 * 1000}, {'m', 60 * 1000}, {'s', 1000}};
	char shown[64];
	const char *p = s;
	int64_t total = 0;
	size_t next = 0; /* the first unit still allowed */

	cli_clean(s, shown, sizeof(shown));
	if (*p == '-')
		return cli_invalid("--timeout '%s' is negative: use " TIMEOUT_FORMS, shown);
	if (!*p)
		return cli_invalid("--timeout needs a value: " TIMEOUT_FORMS);
	while (*p) {
		int64_t v = 0;
		size_t digits = 0;
		for (; *p >= '0' && *p <= '9'; p++, digits++)
			if (v <= TIMEOUT_MAX_MS) /* beyond that it is too long anyway: no overflow */
				v = v * 10 + (*p - '0');
		if (digits == 0)
			return cli_invalid("invalid --timeout '%s': use " TIMEOUT_FORMS, shown);
		if (!*p && p - digits == s) { /* a bare number: seconds */
			total = v * 1000;
			break;
		}
		size_t u = next;
		while (u < SBX_ARRAY_LEN(units) && units[u].unit != *p)
			u++;
		if (u == SBX_ARRAY_LEN(units))
			return cli_invalid("invalid --timeout '%s': use " TIMEOUT_FORMS, shown);
		total += v * units[u].ms; /* v < 10 * TIMEOUT_MAX_MS: at most ~1e17 in all, inside int64 */
		next = u + 1;
		p++;
	}
	if (total == 0)
		return cli_invalid("--timeout '%s' is no time at all: use " TIMEOUT_FORMS " (at most 24h)", shown);
	if (total > TIMEOUT_MAX_MS)
		return cli_invalid("--timeout '%s' is longer than 24h, the longest a request can be held: use " TIMEOUT_FORMS,
			       shown);
	*ms = total;
	return 0;
}

/* Parses the options of a subcommand; `accepted` lists the letters of all_opts it takes.
 * Returns 0, -1 after printing help, or an exit code; o->args is the caller's to free. */
static int parse_opts(int argc, char **argv, const char *accepted, struct popts *o)
{
	struct cli_opts co;
	int r = cli_parse_opts(&policy_group, argc, argv, accepted, &co);

	memset(o, 0, sizeof(*o));
	o->args = co.args;
	if (r)
		return r;
	o->method = co.val['M'];
	o->path = co.val['P'];
	o->sandbox = co.val['S'];
	o->limit = co.val['n'];
	o->host = co.val['H'];
	o->json = co.val['J'] != NULL;
	o->yes = co.val['y'] != NULL;
	o->raw = co.val['R'] != NULL;
	o->follow = co.val['f'] != NULL;
	o->blocked = co.val['B'] != NULL;
	char shown[64];
	if (co.val['I'] && sbx_parse_i64(co.val['I'], 1, INT64_MAX, &o->id) < 0)
		return cli_invalid("invalid rule id '%s': use an ID from `sbx policy ls`",
			       cli_clean(co.val['I'], shown, sizeof(shown)));
	if (co.val['A'] && sbx_parse_i64(co.val['A'], 1, 2, &o->approvals) < 0)
		return cli_invalid("--approvals takes 1 or 2 (with 2, two different people must approve), not '%s'",
			       cli_clean(co.val['A'], shown, sizeof(shown)));
	if (co.val['T'] && (r = parse_timeout(co.val['T'], &o->timeout_ms)) != 0)
		return r;
	if (o->sandbox)
		return cli_check_sandbox(o->sandbox);
	return 0;
}

/* "network R1,R2 R3" -> "R1,R2,R3" (NULL after printing a usage error into *code). */
static char *resources_arg(const char *sub, json_t *args, int *code)
{
	sbx_buf b;
	size_t i;
	json_t *v;

	if (json_array_size(args) == 0 || strcmp(json_string_value(json_array_get(args, 0)), "network") != 0) {
		*code = usage_err("`sbx policy %s` needs the kind of resource first: sbx policy %s network RESOURCES", sub,
				  sub);
		return NULL;
	}
	if (json_array_size(args) < 2) {
		*code = usage_err("name what to %s: e.g. sbx policy %s network api.example.com,*.npmjs.org", sub, sub);
		return NULL;
	}
	sbx_buf_init(&b, 1 << 16);
	json_array_foreach(args, i, v)
	{
		if (i == 0)
			continue;
		if ((i > 1 && sbx_buf_append(&b, ",", 1) < 0) || sbx_buf_append_str(&b, json_string_value(v)) < 0) {
			sbx_buf_free(&b);
			*code = usage_err("the list of resources is too long");
			return NULL;
		}
	}
	return sbx_buf_steal(&b);
}

static void describe_list(json_t *rules, char *out, size_t n)
{
	size_t i, o = 0;
	json_t *r;

	out[0] = '\0';
	json_array_foreach(rules, i, r)
	{
		char buf[400];
		int w = snprintf(out + o, n - o, "%s%s", i ? ", " : "", cli_clean(cli_jstr(r, "resource"), buf, sizeof(buf)));
		if (w < 0 || (size_t)w >= n - o) {
			if (n > 4)
				memcpy(out + n - 4, "...", 4);
			return;
		}
		o += (size_t)w;
	}
}

/* The " (GET /api/...)" and " for sandbox foo" parts of a message, from a rule as stored. */
static void rule_scope(json_t *rule, char *out, size_t n)
{
	char m[64], p[600], sb[128];
	bool http = *cli_jstr(rule, "method") || *cli_jstr(rule, "path");

	cli_clean(cli_jstr(rule, "method"), m, sizeof(m));
	cli_clean(cli_jstr(rule, "path"), p, sizeof(p));
	cli_clean(cli_jstr(rule, "sandbox"), sb, sizeof(sb));
	snprintf(out, n, "%s%s%s%s%s%s%s", http ? " (" : "", m, m[0] && p[0] ? " " : "", p, http ? ")" : "",
		 sb[0] ? " for sandbox " : "", sb);
}

/* ---- first use ---- */

static int read_answer(char *buf, size_t n)
{
	size_t o = 0;

	for (;;) {
		char c;
		ssize_t r = read(STDIN_FILENO, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return o ? 0 : -1; /* EOF */
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

static const char *ask_preset(void)
{
	static const char *const names[] = {"balanced", "allow-all", "deny-all"};

	fprintf(stderr,
		"sbx: choose the network policy for your sandboxes (all their traffic goes through sbx's proxy):\n"
		"  1) balanced   deny by default; allow AI services, package registries, code hosts,\n"
		"                cloud APIs and OS mirrors (recommended)\n"
		"  2) allow-all  allow everything (every connection is still logged)\n"
		"  3) deny-all   deny everything until you allow it with `sbx policy allow network HOST`\n");
	for (int tries = 0; tries < 3; tries++) {
		char ans[64];
		fprintf(stderr, "Network policy [1]: ");
		fflush(stderr);
		if (read_answer(ans, sizeof(ans)) < 0) {
			fputc('\n', stderr);
			return names[0];
		}
		const char *a = ans;
		while (*a == ' ' || *a == '\t')
			a++;
		if (!*a)
			return names[0];
		for (size_t i = 0; i < SBX_ARRAY_LEN(names); i++) {
			char num[4];
			snprintf(num, sizeof(num), "%zu", i + 1);
			if (strcmp(a, num) == 0 || strcmp(a, names[i]) == 0)
				return names[i];
		}
		fprintf(stderr, "Please answer 1, 2 or 3 (or press Enter for balanced).\n");
	}
	fprintf(stderr, "No valid answer: using balanced.\n");
	return names[0];
}

int cli_policy_first_use(void)
{
	sbx_err err = SBX_ERR_INIT;
	json_t *res;

	if (!(isatty(STDIN_FILENO) && isatty(STDOUT_FILENO))) {
		/* Nobody to ask: balanced, silently (the daemon would do the same at the first start). */
		res = sbx_api("POST", "/v1/policy/ensure", NULL, &err);
	} else {
		json_t *cur = sbx_api("GET", "/v1/policy", NULL, &err);
		if (!cur)
			goto failed;
		bool unset = json_is_null(json_object_get(cur, "preset"));
		json_decref(cur);
		if (!unset)
			return 0;
		const char *preset = ask_preset();
		json_t *body = json_pack("{s:s, s:b}", "preset", preset, "only_if_unset", 1);
		res = sbx_api("POST", "/v1/policy/init", body, &err);
		json_decref(body);
		if (res && json_is_true(json_object_get(res, "applied")))
			fprintf(stderr,
				"Network policy: %s (%lld rules). Change it any time with `sbx policy init`, "
				"`sbx policy allow network ...` or `sbx policy deny network ...`.\n",
				cli_jstr(res, "preset"), (long long)json_integer_value(json_object_get(res, "rules")));
	}
	if (!res)
		goto failed;
	json_decref(res);
	return 0;
failed:
	/* Not fatal here: a sandbox start applies the balanced policy itself, and says so if it
	 * cannot (nothing is let through unconfigured). */
	fprintf(stderr, "sbx: warning: could not set up the network policy: %s\n", err.msg);
	return -1;
}

/* ---- init ---- */

static int p_init(int argc, char **argv)
{
	struct popts o;
	sbx_err err = SBX_ERR_INIT;
	int r = parse_opts(argc, argv, "", &o);

	if (r) {
		json_decref(o.args);
		return r < 0 ? 0 : r;
	}
	if (json_array_size(o.args) != 1) {
		json_decref(o.args);
		return usage_err("name one preset: sbx policy init allow-all|balanced|deny-all");
	}
	json_t *body = json_pack("{s:O}", "preset", json_array_get(o.args, 0));
	json_decref(o.args);
	json_t *res = sbx_api("POST", "/v1/policy/init", body, &err);
	json_decref(body);
	if (!res)
		return cli_fail(&err);
	long long replaced = (long long)json_integer_value(json_object_get(res, "replaced_user_rules"));
	long long kept = (long long)json_integer_value(json_object_get(res, "sandbox_rules"));
	printf("Network policy: %s (%lld rules)\n", cli_jstr(res, "preset"),
	       (long long)json_integer_value(json_object_get(res, "rules")));
	if (replaced)
		printf("Replaced %lld global rule%s you had added; add them again with `sbx policy allow|deny network ...`\n",
		       replaced, replaced == 1 ? "" : "s");
	if (kept)
		printf("Kept %lld rule%s for single sandboxes (see `sbx policy ls`)\n", kept, kept == 1 ? "" : "s");
	json_decref(res);
	return 0;
}

/* ---- allow / deny / review ---- */

/* "2 approvals, timeout 1h30m" for a review rule or a classifier as the daemon shows it. */
static void review_terms(json_t *o, char *out, size_t n)
{
	long long approvals = (long long)json_integer_value(json_object_get(o, "approvals"));
	long long timeout = (long long)json_integer_value(json_object_get(o, "timeout_ms"));
	char t[32];

	if (timeout > 0)
		cli_duration((unsigned long long)timeout, t, sizeof(t));
	snprintf(out, n, "%lld approval%s, %s%s", approvals > 0 ? approvals : 1, approvals > 1 ? "s" : "",
		 timeout > 0 ? "timeout " : "default timeout", timeout > 0 ? t : "");
}

static int p_add(int argc, char **argv, const char *kind)
{
	struct popts o;
	sbx_err err = SBX_ERR_INIT;
	bool allow = strcmp(kind, "allow") == 0, review = strcmp(kind, "review") == 0;
	int code = 0, r = parse_opts(argc, argv, review ? "MPSAT" : "MPS", &o);
	char *list;

	if (r) {
		json_decref(o.args);
		return r < 0 ? 0 : r;
	}
	list = resources_arg(argv[0], o.args, &code);
	json_decref(o.args);
	if (!list)
		return code;
	cli_policy_first_use(); /* a terminal user chooses the preset before adding to it */
	json_t *body = json_pack("{s:s, s:s}", "kind", kind, "resources", list);
	free(list);
	if (o.method)
		json_object_set_new(body, "method", json_string(o.method));
	if (o.path)
		json_object_set_new(body, "path", json_string(o.path));
	if (o.sandbox)
		json_object_set_new(body, "sandbox", json_string(o.sandbox));
	if (o.approvals)
		json_object_set_new(body, "approvals", json_integer(o.approvals));
	if (o.timeout_ms)
		json_object_set_new(body, "timeout_ms", json_integer(o.timeout_ms));
	json_t *res = sbx_api("POST", "/v1/policy/rules", body, &err);
	json_decref(body);
	if (!res)
		return cli_fail(&err);

	char names[2048], scope[700], terms[96];
	json_t *added = json_object_get(res, "added"), *existing = json_object_get(res, "existing"), *v;
	json_t *first = json_array_size(added) ? json_array_get(added, 0) : json_array_get(existing, 0);
	size_t i;
	rule_scope(first, scope, sizeof(scope));
	review_terms(first, terms, sizeof(terms));
	if (json_array_size(added)) {
		describe_list(added, names, sizeof(names));
		if (review)
			printf("Requests to %s%s are held for review (%s)\n", names, scope, terms);
		else
			printf("%s network access to %s%s\n", allow ? "Allowed" : "Denied", names, scope);
	}
	if (json_array_size(existing)) {
		describe_list(existing, names, sizeof(names));
		printf("Already %s: %s%s\n", allow ? "allowed" : review ? "held for review" : "denied", names, scope);
	}
	/* An existing review rule keeps its settings: say so when they are not the ones asked for. */
	json_array_foreach(existing, i, v)
	{
		if (!review)
			break;
		json_int_t a = json_integer_value(json_object_get(v, "approvals"));
		json_int_t t = json_integer_value(json_object_get(v, "timeout_ms"));
		if ((o.approvals && a != o.approvals) || (o.timeout_ms && t != o.timeout_ms)) {
			char res_name[400];
			review_terms(v, terms, sizeof(terms));
			fprintf(stderr,
				"sbx: note: the review rule for %s keeps its settings (%s); to change them, remove it with "
				"`sbx policy rm --id %lld` and add it again\n",
				cli_clean(cli_jstr(v, "resource"), res_name, sizeof(res_name)), terms,
				(long long)json_integer_value(json_object_get(v, "id")));
		}
	}
	json_array_foreach(json_object_get(res, "overridden_by"), i, v)
	{
		char d[600];
		fprintf(stderr,
			"sbx: note: %s (rule %lld) also matches and wins over this rule; remove it with `sbx policy rm --id "
			"%lld`\n",
			cli_clean(cli_jstr(v, "description"), d, sizeof(d)), (long long)json_integer_value(json_object_get(v, "id")),
			(long long)json_integer_value(json_object_get(v, "id")));
	}
	if (json_is_false(json_object_get(res, "sandbox_exists")))
		fprintf(stderr, "sbx: note: no sandbox named '%s' exists yet; the rule applies to one created with that name\n",
			o.sandbox);
	json_decref(res);
	return 0;
}

/* ---- ls ---- */

static void print_rules(json_t *rules)
{
	static const char *const head[] = {"ID", "KIND", "RESOURCE", "METHOD", "PATH", "SANDBOX", "SOURCE", "NOTE"};
	json_t *rows = json_array(), *v;
	bool notes = false;
	size_t i;

	json_array_foreach(rules, i, v)
	{
		char id[32], note[160] = "";
		json_t *row = cli_row(rows);
		snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(v, "id")));
		if (strcmp(cli_jstr(v, "kind"), "review") == 0)
			review_terms(v, note, sizeof(note));
		else if (*cli_jstr(v, "action")) /* added by `sbx review approve --always` */
			snprintf(note, sizeof(note), "only %s", cli_jstr(v, "action"));
		notes |= note[0] != '\0';
		cli_cell(row, id);
		cli_cell(row, cli_jstr(v, "kind"));
		cli_cell(row, cli_jstr(v, "resource"));
		cli_cell(row, *cli_jstr(v, "method") ? cli_jstr(v, "method") : "*");
		cli_cell(row, *cli_jstr(v, "path") ? cli_jstr(v, "path") : "*");
		cli_cell(row, *cli_jstr(v, "sandbox") ? cli_jstr(v, "sandbox") : "(global)");
		cli_cell(row, cli_jstr(v, "source"));
		cli_cell(row, note);
	}
	/* The NOTE column only when a rule has one: most policies have no review rule. */
	cli_table_print(head, SBX_ARRAY_LEN(head) - !notes, rows, NULL);
	json_decref(rows);
}

static void print_classifiers(json_t *list)
{
	static const char *const head[] = {"NAME", "STATE", "APPROVALS", "TIMEOUT", "WHAT IT HOLDS"};
	static const size_t max[] = {0, 0, 0, 0, CLI_TABLE_FIT}; /* piped or --json: the whole text */
	json_t *rows = json_array(), *v;
	size_t i;

	json_array_foreach(list, i, v)
	{
		char approvals[32], timeout[32];
		long long t = (long long)json_integer_value(json_object_get(v, "timeout_ms"));
		json_t *row = cli_row(rows);
		snprintf(approvals, sizeof(approvals), "%lld", (long long)json_integer_value(json_object_get(v, "approvals")));
		if (t > 0)
			cli_duration((unsigned long long)t, timeout, sizeof(timeout));
		else
			snprintf(timeout, sizeof(timeout), "default");
		cli_cell(row, cli_jstr(v, "name"));
		cli_cell(row, json_is_true(json_object_get(v, "enabled")) ? "on" : "off");
		cli_cell(row, approvals);
		cli_cell(row, timeout);
		cli_cell(row, cli_jstr(v, "summary"));
	}
	cli_table_print(head, SBX_ARRAY_LEN(head), rows, max);
	json_decref(rows);
}

static int p_ls(int argc, char **argv)
{
	struct popts o;
	sbx_err err = SBX_ERR_INIT;
	int r = parse_opts(argc, argv, "SJ", &o);
	char path[128];

	if (r) {
		json_decref(o.args);
		return r < 0 ? 0 : r;
	}
	if (json_array_size(o.args)) {
		const char *extra = json_string_value(json_array_get(o.args, 0));
		int c = usage_err("unexpected argument '%s'%s", extra,
				  strcmp(extra, "network") == 0 ? "" : " (for one sandbox's rules use --sandbox NAME)");
		json_decref(o.args);
		return c;
	}
	json_decref(o.args);
	snprintf(path, sizeof(path), "/v1/policy%s%s", o.sandbox ? "?sandbox=" : "", o.sandbox ? o.sandbox : "");
	json_t *res = sbx_api("GET", path, NULL, &err);
	if (!res)
		return cli_fail(&err);
	json_t *rules = json_object_get(res, "rules"), *v;
	size_t i, mine = 0;
	if (!json_is_array(json_object_get(res, "classifiers"))) {
		/* A daemon that lists them apart (or none: an older one, and nothing is shown). */
		sbx_err ignored = SBX_ERR_INIT;
		json_t *cls = sbx_api("GET", "/v1/policy/classifiers", NULL, &ignored);
		if (json_is_array(json_object_get(cls, "classifiers")))
			json_object_set(res, "classifiers", json_object_get(cls, "classifiers"));
		json_decref(cls);
	}
	json_t *classifiers = json_object_get(res, "classifiers");
	if (o.json) {
		cli_print_json(res); /* {"preset", "rules", "classifiers"} */
		json_decref(res);
		return 0;
	}
	json_array_foreach(rules, i, v) mine += strcmp(cli_jstr(v, "source"), "user") == 0;
	if (json_is_null(json_object_get(res, "preset")))
		printf("Network policy: not chosen yet (the first `sbx run` or `sbx create` asks; or run `sbx policy init "
		       "balanced`)\n");
	else
		printf("Network policy: %s preset, %zu rule%s (%zu added by you)%s%s\n", cli_jstr(res, "preset"),
		       json_array_size(rules), json_array_size(rules) == 1 ? "" : "s", mine,
		       o.sandbox ? ", as they apply to sandbox " : "", o.sandbox ? o.sandbox : "");
	if (json_array_size(rules) == 0)
		printf("No rules: every connection is blocked.\n");
	else
		print_rules(rules);
	if (json_array_size(classifiers)) {
		printf("\nBuilt-in classifiers (`sbx policy classifier on|off NAME`)\n");
		print_classifiers(classifiers);
	}
	json_decref(res);
	return 0;
}

/* ---- rm ---- */

static void print_removed(json_t *removed)
{
	size_t i;
	json_t *v;

	json_array_foreach(removed, i, v)
	{
		char d[600];
		printf("Removed rule %lld: %s\n", (long long)json_integer_value(json_object_get(v, "id")),
		       cli_clean(cli_jstr(v, "description"), d, sizeof(d)));
	}
}

static int p_rm(int argc, char **argv)
{
	struct popts o;
	sbx_err err = SBX_ERR_INIT;
	int code = 0, r = parse_opts(argc, argv, "MPSI", &o);
	json_t *res;

	if (r) {
		json_decref(o.args);
		return r < 0 ? 0 : r;
	}
	if (o.id) {
		char path[64];
		bool extra = json_array_size(o.args) || o.method || o.path || o.sandbox;
		json_decref(o.args);
		if (extra)
			return usage_err("--id N names one rule: give no resources, --method, --path or --sandbox with it");
		snprintf(path, sizeof(path), "/v1/policy/rules/%lld", (long long)o.id);
		if (!(res = sbx_api("DELETE", path, NULL, &err)))
			return cli_fail(&err);
		print_removed(json_object_get(res, "removed"));
		json_decref(res);
		return 0;
	}
	char *list = resources_arg("rm", o.args, &code);
	json_decref(o.args);
	if (!list)
		return code;
	json_t *body = json_pack("{s:s}", "resources", list);
	free(list);
	if (o.method)
		json_object_set_new(body, "method", json_string(o.method));
	if (o.path)
		json_object_set_new(body, "path", json_string(o.path));
	if (o.sandbox)
		json_object_set_new(body, "sandbox", json_string(o.sandbox));
	res = sbx_api("DELETE", "/v1/policy/rules", body, &err);
	json_decref(body);
	if (!res)
		return cli_fail(&err);
	print_removed(json_object_get(res, "removed"));
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(res, "unmatched"), i, v)
	{
		char b[400];
		fprintf(stderr, "sbx: error: no %srule matches %s%s%s: see `sbx policy ls`\n", o.sandbox ? "" : "global ",
			cli_clean(json_string_value(v), b, sizeof(b)), o.sandbox ? " in sandbox " : "", o.sandbox ? o.sandbox : "");
		code = sbx_errc_exit_code(SBX_E_NOTFOUND);
	}
	json_decref(res);
	return code;
}

/* ---- check ---- */

static int p_check(int argc, char **argv)
{
	struct popts o;
	sbx_err err = SBX_ERR_INIT;
	int r = parse_opts(argc, argv, "MPSJ", &o);

	if (r) {
		json_decref(o.args);
		return r < 0 ? 0 : r;
	}
	if (json_array_size(o.args) == 0 || strcmp(json_string_value(json_array_get(o.args, 0)), "network") != 0 ||
	    json_array_size(o.args) != 2) {
		int c = usage_err(json_array_size(o.args) == 0 ||
						  strcmp(json_string_value(json_array_get(o.args, 0)), "network") != 0
					  ? "check what? sbx policy check network TARGET (host, host:port, address or URL)"
					  : "check takes one TARGET: sbx policy check network TARGET");
		json_decref(o.args);
		return c;
	}
	json_t *body = json_pack("{s:O}", "target", json_array_get(o.args, 1));
	json_decref(o.args);
	if (o.method)
		json_object_set_new(body, "method", json_string(o.method));
	if (o.path)
		json_object_set_new(body, "path", json_string(o.path));
	if (o.sandbox)
		json_object_set_new(body, "sandbox", json_string(o.sandbox));
	json_t *res = sbx_api("POST", "/v1/policy/check", body, &err);
	json_decref(body);
	if (!res)
		return cli_fail(&err);

	const char *verdict = cli_jstr(res, "decision");
	int code = strcmp(verdict, "allowed") == 0 ? 0 : strcmp(verdict, "review") == 0 ? 2 : 1;
	if (o.json) {
		cli_print_json(res);
		json_decref(res);
		return code;
	}
	json_t *rule = json_object_get(res, "rule");
	char what[1400], desc[600], reason[400];
	bool request = strcmp(cli_jstr(res, "level"), "request") == 0;
	snprintf(what, sizeof(what), "%s%s%s%s%s", request ? cli_jstr(res, "method") : "", request ? " " : "",
		 cli_jstr(res, "target"), request ? " " : "", request ? cli_jstr(res, "path") : "");
	cli_clean(what, what, sizeof(what));
	cli_clean(cli_jstr(rule, "description"), desc, sizeof(desc));
	cli_clean(cli_jstr(res, "reason"), reason, sizeof(reason));
	if (code == 0) {
		if (json_is_object(rule))
			printf("allowed by rule: %s\n", desc);
		else
			printf("allowed: %s%s%s\n", what, reason[0] ? ": " : "", reason);
		if (!request && json_is_true(json_object_get(res, "http_rules")))
			printf("HTTP rules apply to this host: each request is decided by its method and path (check one with "
			       "a URL or --method/--path)\n");
	} else if (code == 2) {
		printf("held for review by rule: %s\n", desc);
	} else if (json_is_object(rule) && strcmp(cli_jstr(rule, "kind"), "deny") == 0) {
		printf("blocked by rule: %s; remove it with: %s\n", desc, cli_jstr(res, "fix"));
	} else {
		printf("blocked: no rule allows %s; allow it with: %s\n", what, cli_jstr(res, "fix"));
	}
	if (!json_is_true(json_object_get(res, "initialised")))
		fprintf(stderr, "sbx: note: the network policy has not been chosen yet, so nothing is allowed; the first "
				"`sbx run` or `sbx create` sets it, or run `sbx policy init balanced`\n");
	json_decref(res);
	return code;
}

/* ---- reset ---- */

static int p_reset(int argc, char **argv)
{
	struct popts o;
	sbx_err err = SBX_ERR_INIT;
	int r = parse_opts(argc, argv, "Sy", &o);

	if (r) {
		json_decref(o.args);
		return r < 0 ? 0 : r;
	}
	if (json_array_size(o.args)) {
		int c = usage_err("unexpected argument '%s' (for one sandbox's rules use --sandbox NAME)",
				  json_string_value(json_array_get(o.args, 0)));
		json_decref(o.args);
		return c;
	}
	json_decref(o.args);
	if (!o.yes && isatty(STDIN_FILENO)) {
		char ans[16];
		if (o.sandbox) {
			fprintf(stderr, "Remove every network rule of sandbox %s? [y/N] ", o.sandbox);
		} else {
			json_t *cur = sbx_api("GET", "/v1/policy", NULL, &err);
			if (!cur)
				return cli_fail(&err);
			const char *p = json_string_value(json_object_get(cur, "preset"));
			fprintf(stderr, "Remove every network rule you added (global and per sandbox) and apply the %s preset "
					"again? [y/N] ", p ? p : "balanced");
			json_decref(cur);
		}
		fflush(stderr);
		if (read_answer(ans, sizeof(ans)) < 0 || (strcmp(ans, "y") != 0 && strcmp(ans, "Y") != 0 &&
							  strcmp(ans, "yes") != 0)) {
			fprintf(stderr, "Nothing changed.\n");
			return 1;
		}
	}
	json_t *body = o.sandbox ? json_pack("{s:s}", "sandbox", o.sandbox) : json_object();
	json_t *res = sbx_api("POST", "/v1/policy/reset", body, &err);
	json_decref(body);
	if (!res)
		return cli_fail(&err);
	long long removed = (long long)json_integer_value(json_object_get(res, "removed"));
	if (o.sandbox)
		printf("Removed %lld rule%s of sandbox %s; the global rules apply to it\n", removed, removed == 1 ? "" : "s",
		       o.sandbox);
	else
		printf("Network policy reset to %s (%lld rules); removed %lld rule%s you had added\n", cli_jstr(res, "preset"),
		       (long long)json_integer_value(json_object_get(res, "rules")), removed, removed == 1 ? "" : "s");
	json_decref(res);
	return 0;
}

/* ---- log ---- */

static volatile sig_atomic_t stop_follow;

static void on_stop(int sig)
{
	(void)sig;
	stop_follow = 1;
}

static void query_add(sbx_buf *q, const char *key, const char *val)
{
	sbx_buf_printf(q, "%s%s=", q->len ? "&" : "?", key);
	for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-._~", *p))
			sbx_buf_append(q, p, 1);
		else
			sbx_buf_printf(q, "%%%02X", *p);
	}
}

/* host:port, [v6]:port, or the host alone where no port applies (a DNS question). */
static void host_port(const char *host, json_int_t port, char *out, size_t n)
{
	bool v6 = strchr(host, ':') != NULL;

	if (!*host)
		snprintf(out, n, "-");
	else if (port <= 0)
		snprintf(out, n, "%s", host);
	else
		snprintf(out, n, "%s%s%s:%lld", v6 ? "[" : "", host, v6 ? "]" : "", (long long)port);
}

static void print_record(json_t *v)
{
	char t[64], sb[128], host[600], path[1100], rule[700], reason[500], method[40], dec[40], via[40];
	long long status = (long long)json_integer_value(json_object_get(v, "status"));

	cli_clean(cli_jstr(v, "time"), t, sizeof(t));
	cli_clean(cli_jstr(v, "sandbox"), sb, sizeof(sb));
	cli_clean(cli_jstr(v, "host"), host, sizeof(host));
	cli_clean(cli_jstr(v, "url_path"), path, sizeof(path));
	cli_clean(cli_jstr(v, "rule"), rule, sizeof(rule));
	cli_clean(cli_jstr(v, "reason"), reason, sizeof(reason));
	cli_clean(cli_jstr(v, "method"), method, sizeof(method));
	cli_clean(cli_jstr(v, "decision"), dec, sizeof(dec));
	cli_clean(cli_jstr(v, "path"), via, sizeof(via));
	char where[700], st[24];
	host_port(host, json_integer_value(json_object_get(v, "port")), where, sizeof(where));
	if (status)
		snprintf(st, sizeof(st), "%lld", status);
	else
		snprintf(st, sizeof(st), "-");
	printf("%s %s %s %s %s %s %s rule=\"%s\" reason=\"%s\" up=%lld down=%lld dur=%lldms status=%s\n", t, sb, via,
	       where, method[0] ? method : "-", path[0] ? path : "-", dec, rule, reason,
	       (long long)json_integer_value(json_object_get(v, "bytes_up")),
	       (long long)json_integer_value(json_object_get(v, "bytes_down")),
	       (long long)json_integer_value(json_object_get(v, "duration_ms")), st);
}

static void print_groups(json_t *groups, bool blocked)
{
	static const char *const head[] = {"SANDBOX", "TYPE", "HOST", "PROXY", "RULE", "REASON", "LAST-SEEN", "COUNT"};
	json_t *rows = json_array(), *v;
	size_t i;

	json_array_foreach(groups, i, v)
	{
		if (json_is_true(json_object_get(v, "blocked")) != blocked)
			continue;
		char hp[320], when[32], count[32];
		json_t *row = cli_row(rows);
		host_port(cli_jstr(v, "host"), json_integer_value(json_object_get(v, "port")), hp, sizeof(hp));
		ago((long long)json_integer_value(json_object_get(v, "last_ts")), when, sizeof(when));
		snprintf(count, sizeof(count), "%lld", (long long)json_integer_value(json_object_get(v, "count")));
		cli_cell(row, cli_jstr(v, "sandbox"));
		cli_cell(row, cli_jstr(v, "type"));
		cli_cell(row, hp);
		cli_cell(row, cli_jstr(v, "path"));
		cli_cell(row, *cli_jstr(v, "rule") ? cli_jstr(v, "rule") : "-");
		cli_cell(row, *cli_jstr(v, "reason") ? cli_jstr(v, "reason") : "-");
		cli_cell(row, when);
		cli_cell(row, count);
	}
	printf("%s requests\n", blocked ? "Blocked" : "Allowed");
	if (json_array_size(rows))
		cli_table_print(head, SBX_ARRAY_LEN(head), rows, NULL);
	else
		printf("  (none)\n");
	json_decref(rows);
}

/* Waits up to ms for Ctrl-C, or for the reader of our output to go away. */
static void follow_pause(int ms)
{
	struct pollfd pfd = {.fd = STDOUT_FILENO, .events = 0};

	if (poll(&pfd, 1, ms) > 0 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)))
		stop_follow = 1;
}

static int p_log(int argc, char **argv)
{
	struct popts o;
	sbx_err err = SBX_ERR_INIT;
	int r = parse_opts(argc, argv, "SJRfnHB", &o);
	int64_t limit = 0;
	sbx_buf q;

	if (r) {
		json_decref(o.args);
		return r < 0 ? 0 : r;
	}
	if (json_array_size(o.args) > 1 || (json_array_size(o.args) == 1 && o.sandbox)) {
		json_decref(o.args);
		return usage_err("name at most one sandbox");
	}
	const char *sandbox = json_array_size(o.args) ? json_string_value(json_array_get(o.args, 0)) : o.sandbox;
	if (sandbox && !sbx_name_valid(sandbox)) {
		sbx_err_set(&err, SBX_E_INVALID, "invalid sandbox name '%s': see `sbx ls` for the names", sandbox);
		json_decref(o.args);
		return cli_fail(&err);
	}
	if (o.limit && sbx_parse_i64(o.limit, 1, 2000, &limit) < 0) {
		json_decref(o.args);
		return usage_err("--limit takes a number from 1 to 2000");
	}
	sbx_buf_init(&q, 4096);
	if (sandbox)
		query_add(&q, "sandbox", sandbox);
	json_decref(o.args);
	if (o.host)
		query_add(&q, "host", o.host);
	if (o.blocked)
		query_add(&q, "decision", "blocked");
	if (o.follow || o.raw)
		query_add(&q, "raw", "1");
	char base[512];
	if (q.len >= sizeof(base) - 64) {
		sbx_buf_free(&q);
		return usage_err("the filters are too long");
	}
	snprintf(base, sizeof(base), "/v1/policy/log%s", q.data ? q.data : "");
	sbx_buf_free(&q);

	char path[600];
	/* Following starts with a little history, like tail -f. */
	int64_t first_limit = limit ? limit : o.follow ? 10 : 0;
	if (first_limit)
		snprintf(path, sizeof(path), "%s%slimit=%lld", base, strchr(base, '?') ? "&" : "?", (long long)first_limit);
	else
		snprintf(path, sizeof(path), "%s", base);
	json_t *res = sbx_api("GET", path, NULL, &err);
	if (!res)
		return cli_fail(&err);

	if (!o.follow && !o.raw) {
		json_t *groups = json_object_get(res, "groups");
		if (o.json) {
			cli_print_json(groups);
		} else {
			print_groups(groups, true);
			printf("\n");
			print_groups(groups, false);
		}
		json_decref(res);
		return 0;
	}
	json_t *recs = json_object_get(res, "records"), *v;
	size_t i;
	if (!o.follow) {
		if (o.json)
			cli_print_json(recs);
		else if (json_array_size(recs) == 0)
			printf("No requests logged yet.\n");
		else
			json_array_foreach(recs, i, v) print_record(v);
		json_decref(res);
		return 0;
	}

	/* --follow: poll for records after the last one seen. Ctrl-C or a closed pipe ends it. */
	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	int64_t last = (int64_t)json_integer_value(json_object_get(res, "last_id"));
	int rc = 0;
	for (;;) {
		json_array_foreach(recs, i, v)
		{
			if (o.json) {
				char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
				if (s)
					puts(s);
				free(s);
			} else {
				print_record(v);
			}
		}
		json_decref(res);
		res = NULL;
		if (fflush(stdout) == EOF || ferror(stdout))
			break; /* the reader went away (EPIPE): done */
		follow_pause(250);
		if (stop_follow)
			break;
		snprintf(path, sizeof(path), "%s&after_id=%lld&limit=2000", base, (long long)last);
		if (!(res = sbx_api("GET", path, NULL, &err))) {
			if (!stop_follow)
				rc = cli_fail(&err);
			break;
		}
		recs = json_object_get(res, "records");
		int64_t l = (int64_t)json_integer_value(json_object_get(res, "last_id"));
		if (l > last)
			last = l;
	}
	json_decref(res);
	return rc;
}

/* ---- classifier ---- */

/* Classifier names go into a URL path: refuse anything else before asking. */
static int check_classifier(const char *name)
{
	size_t n = strlen(name);
	bool ok = n > 0 && n <= 64 && name[0] >= 'a' && name[0] <= 'z';
	char shown[80];

	for (size_t i = 0; ok && i < n; i++)
		ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '-';
	if (ok)
		return 0;
	return cli_invalid("unknown classifier '%s': see `sbx policy classifier ls` for the names",
		       cli_clean(name, shown, sizeof(shown)));
}

static int p_classifier(int argc, char **argv)
{
	struct popts o;
	sbx_err err = SBX_ERR_INIT;
	int r = parse_opts(argc, argv, "ATJ", &o);
	size_t nargs = json_array_size(o.args);
	const char *verb = nargs ? json_string_value(json_array_get(o.args, 0)) : "";
	bool on = strcmp(verb, "on") == 0, off = strcmp(verb, "off") == 0, ls = strcmp(verb, "ls") == 0;
	char path[128];
	json_t *res;

	if (r) {
		json_decref(o.args);
		return r < 0 ? 0 : r;
	}
	if (!on && !off && !ls) {
		char shown[64];
		cli_clean(verb, shown, sizeof(shown));
		r = nargs ? usage_err("unknown classifier command '%s': use on, off or ls", shown)
			  : usage_err("say what to do: sbx policy classifier on|off NAME, or sbx policy classifier ls");
		json_decref(o.args);
		return r;
	}
	if ((o.approvals || o.timeout_ms) && !on) {
		json_decref(o.args);
		return usage_err("--approvals and --timeout go with `sbx policy classifier on NAME`");
	}
	if (ls) {
		json_decref(o.args);
		if (nargs > 1)
			return usage_err("`sbx policy classifier ls` lists them all: give no name");
		if (!(res = sbx_api("GET", "/v1/policy/classifiers", NULL, &err)))
			return cli_fail(&err);
		json_t *list = json_object_get(res, "classifiers");
		if (o.json)
			cli_print_json(res); /* {"classifiers": [...]}, like policy ls and review ls */
		else if (json_array_size(list))
			print_classifiers(list);
		else
			printf("This daemon has no built-in classifiers.\n");
		json_decref(res);
		return 0;
	}
	if (nargs != 2) {
		json_decref(o.args);
		if (nargs > 2)
			return usage_err("name one classifier");
		return usage_err("name the classifier: sbx policy classifier %s NAME (see `sbx policy classifier ls`)",
				 on ? "on" : "off");
	}
	const char *name = json_string_value(json_array_get(o.args, 1));
	if ((r = check_classifier(name)) != 0) {
		json_decref(o.args);
		return r;
	}
	snprintf(path, sizeof(path), "/v1/policy/classifiers/%s", name);
	json_decref(o.args);
	json_t *body = json_pack("{s:b}", "enabled", on);
	if (o.approvals)
		json_object_set_new(body, "approvals", json_integer(o.approvals));
	if (o.timeout_ms)
		json_object_set_new(body, "timeout_ms", json_integer(o.timeout_ms));
	res = sbx_api("POST", path, body, &err);
	json_decref(body);
	if (!res)
		return cli_fail(&err);
	if (o.json) {
		cli_print_json(res);
	} else {
		char shown[80], terms[96];
		cli_clean(cli_jstr(res, "name"), shown, sizeof(shown));
		review_terms(res, terms, sizeof(terms));
		if (json_is_true(json_object_get(res, "enabled")))
			printf("Classifier %s: on (%s)\n", shown, terms);
		else
			printf("Classifier %s: off; what it would hold is decided by the rules alone\n", shown);
	}
	json_decref(res);
	return 0;
}

/* ---- dispatch ---- */

int cmd_policy(int argc, char **argv)
{
	if (argc < 2)
		return usage_err("a policy command is required");
	const char *sub = argv[1];
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
		printf("usage: %s\n%s", policy_usage, policy_help);
		return 0;
	}
	argc--;
	argv++;
	if (strcmp(sub, "init") == 0)
		return p_init(argc, argv);
	if (strcmp(sub, "allow") == 0)
		return p_add(argc, argv, "allow");
	if (strcmp(sub, "deny") == 0)
		return p_add(argc, argv, "deny");
	if (strcmp(sub, "review") == 0)
		return p_add(argc, argv, "review");
	if (strcmp(sub, "classifier") == 0 || strcmp(sub, "classifiers") == 0)
		return p_classifier(argc, argv);
	if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0)
		return p_ls(argc, argv);
	if (strcmp(sub, "rm") == 0 || strcmp(sub, "remove") == 0)
		return p_rm(argc, argv);
	if (strcmp(sub, "check") == 0)
		return p_check(argc, argv);
	if (strcmp(sub, "reset") == 0)
		return p_reset(argc, argv);
	if (strcmp(sub, "log") == 0)
		return p_log(argc, argv);
	return usage_err("unknown policy command '%s'", sub);
}
