/* sbx daemon start|stop|status, sbx version, sbx diagnose */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "util.h"

static const char daemon_usage[] = "sbx daemon start|stop|status";

int cmd_daemon(int argc, char **argv)
{
	sbx_err err = SBX_ERR_INIT;

	if (argc < 2)
		return cli_usage(daemon_usage, "an action is required");
	if (strcmp(argv[1], "start") == 0) {
		json_t *v = sbx_api("GET", "/v1/version", NULL, &err);
		if (!v)
			return cli_fail(&err);
		printf("sbx daemon running (pid %lld)\n", (long long)json_integer_value(json_object_get(v, "pid")));
		json_decref(v);
		return 0;
	}
	if (strcmp(argv[1], "status") == 0) {
		if (!sbx_daemon_running()) {
			printf("sbx daemon not running\n");
			return 3;
		}
		json_t *v = sbx_api("GET", "/v1/version", NULL, &err);
		if (!v)
			return cli_fail(&err);
		printf("sbx daemon running (pid %lld, version %s, ids %s, cgroups %s)\n",
		       (long long)json_integer_value(json_object_get(v, "pid")),
		       json_string_value(json_object_get(v, "version")), json_string_value(json_object_get(v, "idmap")),
		       json_string_value(json_object_get(v, "cgroup")));
		json_decref(v);
		return 0;
	}
	if (strcmp(argv[1], "stop") == 0) {
		if (!sbx_daemon_running()) {
			printf("sbx daemon not running\n");
			return 0;
		}
		json_t *v = sbx_api("GET", "/v1/version", NULL, &err);
		long long pid = v ? (long long)json_integer_value(json_object_get(v, "pid")) : 0;
		json_decref(v);
		json_t *list = sbx_api("GET", "/v1/sandboxes", NULL, &err);
		size_t running = 0, i;
		json_t *s;
		json_array_foreach(json_object_get(list, "sandboxes"), i, s)
			running += strcmp(json_string_value(json_object_get(s, "state")), "running") == 0;
		json_decref(list);
		v = sbx_api("POST", "/v1/shutdown", NULL, &err);
		if (!v)
			return cli_fail(&err);
		json_decref(v);
		/* Wait until it is gone, so that a following start gets a fresh daemon. */
		for (int i2 = 0; i2 < 500 && sbx_daemon_running(); i2++)
			usleep(10000);
		for (int i2 = 0; i2 < 500 && pid > 0 && kill((pid_t)pid, 0) == 0; i2++)
			usleep(10000);
		printf("sbx daemon stopped");
		if (running)
			printf("; %zu running sandbox%s keep%s running and will be re-adopted by the next daemon", running,
			       running == 1 ? "" : "es", running == 1 ? "s" : "");
		printf("\n");
		return 0;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		printf("usage: %s\n", daemon_usage);
		return 0;
	}
	return cli_usage(daemon_usage, "unknown action '%s'", argv[1]);
}

int cmd_version(int argc, char **argv)
{
	bool as_json = argc > 1 && strcmp(argv[1], "--json") == 0;
	sbx_err err = SBX_ERR_INIT;
	json_t *d = sbx_daemon_running() ? sbx_api("GET", "/v1/version", NULL, &err) : NULL;

	if (as_json) {
		json_t *o = json_pack("{s:s, s:s}", "client", SBX_VERSION, "api", "1");
		if (d)
			json_object_set(o, "daemon", d);
		cli_print_json(o);
		json_decref(o);
	} else {
		printf("sbx %s\n", SBX_VERSION);
		if (d)
			printf("sbxd %s (api %s)\n", json_string_value(json_object_get(d, "version")),
			       json_string_value(json_object_get(d, "api")));
	}
	json_decref(d);
	return 0;
}

int cmd_diagnose(int argc, char **argv)
{
	bool as_json = argc > 1 && strcmp(argv[1], "--json") == 0;
	sbx_err err = SBX_ERR_INIT;
	json_t *d = sbx_api("GET", "/v1/diagnose", NULL, &err);
	size_t i;
	json_t *b;

	if (!d)
		return cli_fail(&err);
	if (as_json) {
		cli_print_json(d);
		json_decref(d);
		return 0;
	}
	printf("Isolation backends:\n");
	json_array_foreach(json_object_get(d, "backends"), i, b)
		printf("  %-7s %-4s %s\n", json_string_value(json_object_get(b, "name")),
		       json_is_true(json_object_get(b, "works")) ? "ok" : "no", json_string_value(json_object_get(b, "detail")));
	printf("Identity mapping: %s\n", json_string_value(json_object_get(d, "idmap")));
	if (json_object_get(d, "root_inside"))
		printf("  %s\n", json_string_value(json_object_get(d, "root_inside")));
	printf("Resource limits:  %s\n", json_string_value(json_object_get(d, "cgroup")));
	printf("Landlock ABI:     %lld\n", (long long)json_integer_value(json_object_get(d, "landlock_abi")));
	printf("State:            %s\n", json_string_value(json_object_get(d, "state_dir")));
	json_t *px = json_object_get(d, "proxy");
	if (px)
		printf("TLS interception: %s (%s)\n", json_is_true(json_object_get(px, "interception")) ? "ok" : "NOT AVAILABLE",
		       json_string_value(json_object_get(px, "interception_detail")));
	json_decref(d);
	return 0;
}
