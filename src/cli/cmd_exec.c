/* sbx exec - run a command in a running sandbox. */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "agents.h"
#include "attach.h"
#include "cli.h"
#include "client.h"
#include "util.h"

static const char exec_usage[] =
	"sbx exec [-i] [-t] [-d] [-e KEY=VALUE] [-u USER] [-w DIR] SANDBOX COMMAND [ARG...]";

int cli_exec_attach(const char *path, json_t *req, json_t *exec, bool tty, bool want_stdin)
{
	struct sbx_response r;
	sbx_err err = SBX_ERR_INIT;
	int code;

	if (tty) {
		struct winsize ws;
		const char *term = getenv("TERM");
		if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
			json_object_set_new(exec, "rows", json_integer(ws.ws_row));
			json_object_set_new(exec, "cols", json_integer(ws.ws_col));
		}
		json_t *env = json_object_get(exec, "env");
		if (!env) {
			env = json_array();
			json_object_set_new(exec, "env", env);
		}
		/* Prepend so that an explicit -e TERM=... still wins. */
		json_array_insert_new(env, 0, json_sprintf("TERM=%s", term && *term ? term : "xterm-256color"));
	}
	json_object_set_new(exec, "tty", json_boolean(tty));
	json_object_set_new(exec, "stdin", json_boolean(want_stdin));
	if (sbx_client_call("POST", path, req, &r, &err) < 0)
		return cli_fail(&err);
	if (r.status == 101) {
		code = sbx_attach(&r, tty, want_stdin);
		sbx_response_free(&r);
		return code;
	}
	if (r.status == 201) {
		json_int_t id = json_integer_value(json_object_get(r.body, "exec_id"));
		printf("%lld\n", (long long)id);
		sbx_response_free(&r);
		return 0;
	}
	json_t *e = json_object_get(r.body, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *cname = json_string_value(json_object_get(e, "code"));
	json_t *ec = json_object_get(e, "exit_code");
	code = ec ? (int)json_integer_value(ec)
		  : sbx_errc_exit_code(cname ? sbx_errc_from_name(cname) : sbx_errc_from_http_status(r.status));
	fprintf(stderr, "sbx: error: %s\n", msg ? msg : "the command could not be started");
	sbx_response_free(&r);
	return code;
}

int cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {{"interactive", no_argument, NULL, 'i'},
					     {"tty", no_argument, NULL, 't'},
					     {"detach", no_argument, NULL, 'd'},
					     {"env", required_argument, NULL, 'e'},
					     {"user", required_argument, NULL, 'u'},
					     {"workdir", required_argument, NULL, 'w'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	bool interactive = false, tty = false, detach = false;
	json_t *env = json_array();
	const char *user = NULL, *workdir = NULL;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+itde:u:w:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i': interactive = true; break;
		case 't': tty = true; break;
		case 'd': detach = true; break;
		case 'e': {
			sbx_err err = SBX_ERR_INIT;
			if (cli_env_entry(env, optarg, &err) < 0) {
				json_decref(env);
				return cli_fail(&err);
			}
			break;
		}
		case 'u': user = optarg; break;
		case 'w': workdir = optarg; break;
		case 'h': printf("usage: %s\n", exec_usage); json_decref(env); return 0;
		default: json_decref(env); return cli_usage(exec_usage, "invalid option");
		}
	}
	if (argc - optind < 2) {
		json_decref(env);
		return cli_usage(exec_usage, "a sandbox and a command are required");
	}
	if (tty && !isatty(STDIN_FILENO)) {
		json_decref(env);
		fprintf(stderr, "sbx: error: -t needs a terminal on standard input; drop -t to stream without one\n");
		return 64;
	}
	if (detach && (tty || interactive)) {
		json_decref(env);
		return cli_usage(exec_usage, "-d cannot be combined with -i or -t");
	}
	const char *sandbox = argv[optind++];
	json_t *args = json_array();
	for (int i = optind; i < argc; i++)
		json_array_append_new(args, json_string(argv[i]));
	json_t *req = json_pack("{s:o, s:o, s:b}", "argv", args, "env", env, "detach", detach);
	if (user)
		json_object_set_new(req, "user", json_string(user));
	if (workdir)
		json_object_set_new(req, "cwd", json_string(workdir));
	char path[256];
	snprintf(path, sizeof(path), "/v1/sandboxes/%s/exec", sandbox);
	int code = cli_exec_attach(path, req, req, tty, interactive || tty);
	json_decref(req);
	return code;
}
