/* sbx audit - the audit log as evidence: `sbx audit verify` checks its hash chain.
 *
 * The daemon does the check (it owns the database and first commits what is queued); this file
 * turns the answer into a line and an exit code a script can test: 0 intact, 1 tampered, other
 * codes when the check could not be made. Reading the log is `sbx policy log`. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "client.h"

#define EXIT_TAMPERED 1

static const char audit_usage[] = "sbx audit verify [--json]";

static const char audit_help[] =
	"\n"
	"Every network attempt of every sandbox is in the audit log, each record hash-chained to the\n"
	"one before it. `sbx audit verify` reads the whole log and checks every hash and every link,\n"
	"and names the first record that was changed, removed, inserted or moved.\n"
	"\n"
	"It cannot see a log rewritten from some point on with new hashes, nor the newest records\n"
	"removed: for that, keep the last id and hash it prints somewhere else and compare later.\n"
	"Records written before the chain existed (an older sbx) are counted, not checked.\n"
	"\n"
	"  --json   the daemon's answer: intact, rows, chained, unchained, last_id, last_hash,\n"
	"           bad_id, message\n"
	"\n"
	"Exit codes: 0 the log is intact, 1 it was tampered with, 64 usage, 74 the database could\n"
	"not be read, 75 the daemon cannot be reached.\n";

static int p_verify(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'J'}, {"help", no_argument, NULL, 'h'}, {0}};
	sbx_err err = SBX_ERR_INIT;
	bool as_json = false;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == 'J') {
			as_json = true;
		} else if (c == 'h') {
			printf("usage: %s\n%s", audit_usage, audit_help);
			return 0;
		} else {
			return cli_usage(audit_usage, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage(audit_usage, "unexpected argument '%s': `sbx audit verify` checks the whole log",
				 argv[optind]);

	json_t *res = sbx_api("GET", "/v1/audit/verify", NULL, &err);
	if (!res)
		return cli_fail(&err);
	json_t *intact = json_object_get(res, "intact");
	if (!json_is_boolean(intact)) {
		json_decref(res);
		err.code = SBX_E_DAEMON;
		snprintf(err.msg, sizeof(err.msg), "the daemon's answer to the audit check has no verdict: is sbxd the same "
						   "version as sbx? (`sbx daemon stop` restarts it on the next command)");
		return cli_fail(&err);
	}
	bool ok = json_is_true(intact);
	if (as_json) {
		cli_print_json(res);
	} else if (ok) {
		json_int_t chained = json_integer_value(json_object_get(res, "chained"));
		json_int_t unchained = json_integer_value(json_object_get(res, "unchained"));
		const char *last_hash = json_string_value(json_object_get(res, "last_hash"));

		printf("Audit log intact: %lld rows, hash-chained\n", (long long)chained);
		if (unchained)
			printf("%lld older rows from before the chain (written by an older sbx) are not covered.\n",
			       (long long)unchained);
		if (chained)
			printf("Last row %lld, hash %s\n", (long long)json_integer_value(json_object_get(res, "last_id")),
			       last_hash ? last_hash : "?");
	} else {
		const char *msg = json_string_value(json_object_get(res, "message"));
		printf("Audit log TAMPERED: %s\n", msg && *msg ? msg : "(no detail given)");
	}
	json_decref(res);
	return ok ? 0 : EXIT_TAMPERED;
}

int cmd_audit(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(audit_usage, "an audit command is required");
	const char *sub = argv[1];
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
		printf("usage: %s\n%s", audit_usage, audit_help);
		return 0;
	}
	if (strcmp(sub, "verify") == 0)
		return p_verify(argc - 1, argv + 1);
	return cli_usage(audit_usage, "unknown audit command '%s'", sub);
}
