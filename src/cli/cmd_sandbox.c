/* sbx run / create / ls / start / stop / rm / prune */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agents.h"
#include "cleanup.h"
#include "cli.h"
#include "client.h"
#include "util.h"

static const char run_usage[] =
	"sbx run [AGENT] [PATH[:ro]...] [--name NAME] [--rm] [-d] [-e KEY=VALUE] [--env-file FILE]\n"
	"               [--cpus N] [-m SIZE] [--isolation auto|ns] [-- AGENT_ARGS...]";
static const char create_usage[] =
	"sbx create [AGENT] [PATH[:ro]...] [--name NAME] [-e KEY=VALUE] [--env-file FILE] [--cpus N] [-m SIZE]\n"
	"               [--isolation auto|ns] [-- AGENT_ARGS...]";

struct sb_opts {
	const char *agent;
	const char *name;
	const char *isolation;
	bool rm, detach;
	json_t *env;        /* array of "K=V" */
	json_t *workspaces; /* array of {path, ro} */
	json_t *agent_args; /* array or NULL */
	uint64_t memory;
	uint32_t millicpus;
	bool paths_given;
	char resolved[96]; /* --name, or the default <agent>-<workspace dir> */
};

static void opts_free(struct sb_opts *o)
{
	json_decref(o->env);
	json_decref(o->workspaces);
	json_decref(o->agent_args);
}

static int add_env(struct sb_opts *o, const char *kv, sbx_err *err)
{
	return cli_env_entry(o->env, kv, err);
}

/* KEY=VALUE lines; '#' comments and blank lines ignored; a bare KEY takes the host's value. */
static int read_env_file(struct sb_opts *o, const char *path, sbx_err *err)
{
	cleanup_free char *data = NULL;
	size_t len;
	char *line, *save = NULL;
	int lineno = 0;

	if (sbx_read_file(path, 1 << 20, &data, &len, err) < 0)
		return sbx_err_wrap(err, "--env-file");
	if (memchr(data, '\0', len))
		return sbx_err_set(err, SBX_E_INVALID, "--env-file %s is not a text file", path);
	for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		while (isspace((unsigned char)*line))
			line++;
		size_t l = strlen(line);
		while (l && (line[l - 1] == '\r' || isspace((unsigned char)line[l - 1])))
			line[--l] = '\0';
		if (!*line || *line == '#')
			continue;
		if (strncmp(line, "export ", 7) == 0)
			line += 7;
		const char *eq = strchr(line, '=');
		for (const char *p = line; eq ? p < eq : *p; p++)
			if (!(isalnum((unsigned char)*p) || *p == '_')) {
				return sbx_err_set(err, SBX_E_INVALID, "%s:%d: invalid variable name: use KEY=VALUE", path,
						   lineno);
			}
		if (add_env(o, line, err) < 0)
			return -1;
	}
	return 0;
}

static int add_workspace(struct sb_opts *o, const char *arg, sbx_err *err)
{
	char path[PATH_MAX], real[PATH_MAX];
	bool ro = false;
	size_t n = sbx_strlcpy(path, arg, sizeof(path));
	struct stat st;

	if (n >= sizeof(path))
		return sbx_err_set(err, SBX_E_INVALID, "path too long: %s", arg);
	if (n > 3 && strcmp(path + n - 3, ":ro") == 0) {
		ro = true;
		path[n - 3] = '\0';
	} else if (n > 3 && strcmp(path + n - 3, ":rw") == 0) {
		path[n - 3] = '\0';
	}
	if (!realpath(path, real)) {
		if (errno == ENOENT)
			return sbx_err_set(err, SBX_E_NOINPUT, "workspace %s does not exist: create it or give another path",
					   path);
		return sbx_err_sys(err, SBX_E_NOINPUT, errno, "workspace %s", path);
	}
	if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
		return sbx_err_set(err, SBX_E_NOINPUT, "workspace %s is not a directory: give a directory", path);
	json_array_append_new(o->workspaces, json_pack("{s:s, s:b}", "path", real, "ro", ro));
	o->paths_given = true;
	return 0;
}

static void default_name(const struct sb_opts *o, char *out, size_t n)
{
	const char *path = json_string_value(json_object_get(json_array_get(o->workspaces, 0), "path"));
	const char *base = path ? strrchr(path, '/') : NULL;
	char frag[48];

	sbx_name_sanitize(base && base[1] ? base + 1 : "root", frag, sizeof(frag));
	snprintf(out, n, "%s-%s", o->agent, frag[0] ? frag : "workspace");
}

/* Options shared by run and create. Returns 0, or an exit code > 0. */
static int parse_sb_opts(int argc, char **argv, bool is_run, struct sb_opts *o)
{
	static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
					     {"rm", no_argument, NULL, 'R'},
					     {"detach", no_argument, NULL, 'd'},
					     {"env", required_argument, NULL, 'e'},
					     {"env-file", required_argument, NULL, 'E'},
					     {"cpus", required_argument, NULL, 'c'},
					     {"memory", required_argument, NULL, 'm'},
					     {"isolation", required_argument, NULL, 'I'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	const char *use = is_run ? run_usage : create_usage;
	sbx_err err = SBX_ERR_INIT;
	int c;

	memset(o, 0, sizeof(*o));
	o->env = json_array();
	o->workspaces = json_array();
	/* Everything after the first "--" goes to the agent; cut it off before getopt sees it
	 * (GNU getopt would otherwise move positionals around it). */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			o->agent_args = json_array();
			for (int j = i + 1; j < argc; j++)
				json_array_append_new(o->agent_args, json_string(argv[j]));
			argc = i;
			break;
		}
	optind = 1;
	while ((c = getopt_long(argc, argv, "n:de:m:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': o->name = optarg; break;
		case 'R':
			if (!is_run)
				return cli_usage(use, "--rm is only for `sbx run`");
			o->rm = true;
			break;
		case 'd':
			if (!is_run)
				return cli_usage(use, "-d is only for `sbx run`");
			o->detach = true;
			break;
		case 'e':
			if (add_env(o, optarg, &err) < 0)
				return cli_fail(&err);
			break;
		case 'E':
			if (read_env_file(o, optarg, &err) < 0)
				return cli_fail(&err);
			break;
		case 'c':
			if (sbx_parse_cpus(optarg, &o->millicpus, &err) < 0)
				return cli_fail(&err);
			break;
		case 'm':
			if (sbx_parse_size(optarg, &o->memory, &err) < 0)
				return cli_fail(&err);
			if (o->memory < (16u << 20)) {
				sbx_err_set(&err, SBX_E_INVALID, "memory limit %s is too small: use at least 16m", optarg);
				return cli_fail(&err);
			}
			break;
		case 'I': o->isolation = optarg; break;
		case 'h': printf("usage: %s\n", use); return -1;
		default: return cli_usage(use, "invalid option");
		}
	}
	/* Positionals: an agent name first (optional, "shell" by default), then paths. */
	int end = argc;
	int i = optind;
	if (i < end && sbx_agent_find(argv[i])) {
		o->agent = argv[i++];
	} else if (i < end && !strchr(argv[i], '/') && strcmp(argv[i], ".") && strcmp(argv[i], "..") &&
		   access(argv[i], F_OK) != 0) {
		sbx_err_set(&err, SBX_E_INVALID, "unknown agent '%s': choose one of %s (or give a path)", argv[i],
			    sbx_agent_names());
		return cli_fail(&err);
	}
	if (!o->agent)
		o->agent = "shell";
	for (; i < end; i++)
		if (add_workspace(o, argv[i], &err) < 0)
			return cli_fail(&err);
	if (json_array_size(o->workspaces) == 0 && add_workspace(o, ".", &err) < 0)
		return cli_fail(&err);
	if (o->isolation && strcmp(o->isolation, "auto") && strcmp(o->isolation, "ns") && strcmp(o->isolation, "vm") &&
	    strcmp(o->isolation, "gvisor"))
		return cli_usage(use, "unknown isolation '%s': use auto, ns, vm or gvisor", o->isolation);
	if (o->name)
		sbx_strlcpy(o->resolved, o->name, sizeof(o->resolved));
	else
		default_name(o, o->resolved, sizeof(o->resolved));
	if (!sbx_name_valid(o->resolved)) {
		sbx_err_set(&err, SBX_E_INVALID, "invalid sandbox name '%s': use 1-63 letters, digits, '-', '_' or '.', "
			    "starting with a letter or digit", o->resolved);
		return cli_fail(&err);
	}
	return 0;
}

/* The services' host variables set in this shell (ANTHROPIC_API_KEY, AWS_*, ...): the daemon
 * uses them, in memory only, when no secret is stored; they never reach the sandbox. The names
 * come from the daemon (GET /v1/secrets/services). NULL when there are none. */
static json_t *host_env(void)
{
	sbx_err err = SBX_ERR_INIT;
	json_t *res = sbx_api("GET", "/v1/secrets/services", NULL, &err), *svc, *name, *out = NULL;
	size_t i, j;

	if (!res)
		return NULL;
	json_array_foreach(json_object_get(res, "services"), i, svc)
	{
		json_array_foreach(json_object_get(svc, "host_env"), j, name)
		{
			const char *n = json_string_value(name), *v = n ? getenv(n) : NULL;
			if (!v || !*v)
				continue;
			if (!out)
				out = json_object();
			json_object_set_new(out, n, json_string(v));
		}
	}
	json_decref(res);
	return out;
}

static json_t *create_body(const struct sb_opts *o, const char *name)
{
	json_t *b = json_pack("{s:s, s:s, s:O, s:O, s:s}", "name", name, "agent", o->agent, "workspaces", o->workspaces,
			      "env", o->env, "isolation", o->isolation ? o->isolation : "auto");
	if (o->memory)
		json_object_set_new(b, "memory", json_integer((json_int_t)o->memory));
	if (o->millicpus)
		json_object_set_new(b, "millicpus", json_integer(o->millicpus));
	if (o->agent_args)
		json_object_set(b, "agent_args", o->agent_args);
	json_t *he = host_env();
	if (he)
		json_object_set_new(b, "host_env", he);
	return b;
}

int cmd_create(int argc, char **argv)
{
	struct sb_opts o;
	sbx_err err = SBX_ERR_INIT;
	int r = parse_sb_opts(argc, argv, false, &o);

	if (r) {
		opts_free(&o);
		return r < 0 ? 0 : r;
	}
	cli_policy_first_use();
	json_t *body = create_body(&o, o.resolved);
	json_t *res = sbx_api("POST", "/v1/sandboxes", body, &err);
	json_decref(body);
	opts_free(&o);
	if (!res)
		return cli_fail(&err);
	printf("%s\n", json_string_value(json_object_get(res, "name")));
	json_decref(res);
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct sb_opts o;
	const char *name;
	int r = parse_sb_opts(argc, argv, true, &o);

	if (r) {
		opts_free(&o);
		return r < 0 ? 0 : r;
	}
	name = o.resolved;
	cli_policy_first_use();
	/* One request: the daemon creates the sandbox if needed, starts it and runs the agent. */
	json_t *create = create_body(&o, name);
	if (o.rm)
		json_object_set_new(create, "ephemeral", json_true()); /* made for one run: memory only */
	json_t *exec = json_pack("{s:b}", "detach", o.detach);
	json_t *req = json_pack("{s:s, s:o, s:o, s:b, s:b}", "name", name, "create", create, "exec", exec,
				"workspaces_given", o.paths_given, "rm", o.rm);
	if (o.agent_args)
		json_object_set(req, "agent_args", o.agent_args);
	bool tty = !o.detach && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	int code = cli_exec_attach("/v1/run", req, exec, tty, !o.detach);
	json_decref(req);
	if (o.detach && code == 0)
		fprintf(stderr, "sbx: started in sandbox '%s' (attach with `sbx exec -it %s bash`)\n", name, name);
	opts_free(&o);
	return code;
}

static const char ls_usage[] = "sbx ls [--json] [-q]";

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'}, {0}};
	bool as_json = false, quiet = false;
	sbx_err err = SBX_ERR_INIT;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': as_json = true; break;
		case 'q': quiet = true; break;
		case 'h': printf("usage: %s\n", ls_usage); return 0;
		default: return cli_usage(ls_usage, "invalid option");
		}
	}
	if (optind < argc)
		return cli_usage(ls_usage, "unexpected argument '%s'", argv[optind]);
	json_t *res = sbx_api("GET", "/v1/sandboxes", NULL, &err);
	if (!res)
		return cli_fail(&err);
	json_t *list = json_object_get(res, "sandboxes"), *v;
	size_t i;
	if (as_json) {
		cli_print_json(list);
	} else if (quiet) {
		json_array_foreach(list, i, v) printf("%s\n", json_string_value(json_object_get(v, "name")));
	} else {
		printf("%-28s %-9s %-9s %-10s %-16s %s\n", "SANDBOX", "AGENT", "STATUS", "ISOLATION", "CREATED", "WORKSPACE");
		json_array_foreach(list, i, v)
		{
			char age[32], ws[PATH_MAX + 64] = "";
			size_t j;
			json_t *w;
			cli_age((long long)json_integer_value(json_object_get(v, "created_at")), age, sizeof(age));
			json_array_foreach(json_object_get(v, "workspaces"), j, w)
			{
				size_t l = strlen(ws);
				snprintf(ws + l, sizeof(ws) - l, "%s%s%s", j ? "," : "",
					 json_string_value(json_object_get(w, "path")),
					 json_is_true(json_object_get(w, "ro")) ? ":ro" : "");
			}
			printf("%-28s %-9s %-9s %-10s %-16s %s\n", json_string_value(json_object_get(v, "name")),
			       json_string_value(json_object_get(v, "agent")), json_string_value(json_object_get(v, "state")),
			       json_string_value(json_object_get(v, "isolation")), age, ws);
		}
	}
	json_decref(res);
	return 0;
}

/* start/stop/rm on a list of sandboxes: keep going, report each failure, exit with the first. */
static int each(int argc, char **argv, int first, const char *method, const char *suffix, json_t *body)
{
	int rc = 0;

	for (int i = first; i < argc; i++) {
		sbx_err err = SBX_ERR_INIT;
		char path[256];
		snprintf(path, sizeof(path), "/v1/sandboxes/%s%s", argv[i], suffix);
		json_t *res = sbx_api(method, path, body, &err);
		if (!res) {
			int c = cli_fail(&err);
			if (!rc)
				rc = c;
			continue;
		}
		printf("%s\n", argv[i]);
		json_decref(res);
	}
	return rc;
}

int cmd_start(int argc, char **argv)
{
	static const char use[] = "sbx start SANDBOX...";

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return argc < 2 ? cli_usage(use, "a sandbox name is required") : (printf("usage: %s\n", use), 0);
	json_t *he = host_env(), *body = he ? json_pack("{s:o}", "host_env", he) : NULL;
	int rc = each(argc, argv, 1, "POST", "/start", body);
	json_decref(body);
	return rc;
}

int cmd_stop(int argc, char **argv)
{
	static const char use[] = "sbx stop [-t SECONDS] SANDBOX...";
	static const struct option opts[] = {{"time", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'}, {0}};
	int64_t secs = 5;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (sbx_parse_i64(optarg, 0, 60, &secs) < 0)
				return cli_usage(use, "-t takes a number of seconds between 0 and 60");
			break;
		case 'h': printf("usage: %s\n", use); return 0;
		default: return cli_usage(use, "invalid option");
		}
	}
	if (optind >= argc)
		return cli_usage(use, "a sandbox name is required");
	json_t *body = json_pack("{s:I}", "grace_ms", (json_int_t)(secs * 1000));
	int rc = each(argc, argv, optind, "POST", "/stop", body);
	json_decref(body);
	return rc;
}

int cmd_rm(int argc, char **argv)
{
	static const char use[] = "sbx rm [-f] [--all] SANDBOX...";
	static const struct option opts[] = {
		{"force", no_argument, NULL, 'f'}, {"all", no_argument, NULL, 'a'}, {"help", no_argument, NULL, 'h'}, {0}};
	bool force = false, all = false;
	sbx_err err = SBX_ERR_INIT;
	int c, rc = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "fah", opts, NULL)) != -1) {
		switch (c) {
		case 'f': force = true; break;
		case 'a': all = true; break;
		case 'h': printf("usage: %s\n", use); return 0;
		default: return cli_usage(use, "invalid option");
		}
	}
	if (!all && optind >= argc)
		return cli_usage(use, "name the sandboxes to remove, or use --all");
	if (all && optind < argc)
		return cli_usage(use, "--all takes no sandbox names");
	json_t *names = json_array();
	if (all) {
		if (!sbx_daemon_running() && !sbx_client_paths(&err)) {
			json_decref(names);
			return cli_fail(&err);
		}
		json_t *res = sbx_api("GET", "/v1/sandboxes", NULL, &err);
		if (!res) {
			json_decref(names);
			return cli_fail(&err);
		}
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(res, "sandboxes"), i, v)
			json_array_append(names, json_object_get(v, "name"));
		json_decref(res);
	} else {
		for (int i = optind; i < argc; i++)
			json_array_append_new(names, json_string(argv[i]));
	}
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v)
	{
		char path[256];
		snprintf(path, sizeof(path), "/v1/sandboxes/%s%s", json_string_value(v), force ? "?force=1" : "");
		json_t *res = sbx_api("DELETE", path, NULL, &err);
		if (!res) {
			int code = cli_fail(&err);
			if (!rc)
				rc = code;
			continue;
		}
		printf("%s\n", json_string_value(v));
		json_decref(res);
	}
	json_decref(names);
	return rc;
}

int cmd_prune(int argc, char **argv)
{
	static const char use[] = "sbx prune";
	sbx_err err = SBX_ERR_INIT;

	if (argc > 1) {
		if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
			printf("usage: %s\nRemoves every sandbox that is not running.\n", use);
			return 0;
		}
		return cli_usage(use, "unexpected argument '%s'", argv[1]);
	}
	json_t *res = sbx_api("POST", "/v1/prune", NULL, &err);
	if (!res)
		return cli_fail(&err);
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(res, "removed"), i, v) printf("%s\n", json_string_value(v));
	json_array_foreach(json_object_get(res, "failed"), i, v)
		fprintf(stderr, "sbx: error: %s: %s\n", json_string_value(json_object_get(v, "name")),
			json_string_value(json_object_get(v, "error")));
	int rc = json_array_size(json_object_get(res, "failed")) ? 74 : 0;
	json_decref(res);
	return rc;
}
