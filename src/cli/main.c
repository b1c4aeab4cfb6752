/* sbx - command line for sbx sandboxes. A thin layer over the daemon's API: parse, ask, print. */

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

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
	{"policy", cmd_policy, "Network policy: init, allow, deny, ls, rm, check, reset, log"},
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
