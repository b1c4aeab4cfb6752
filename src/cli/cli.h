/* cli.h - shared pieces of the sbx command line: one function per subcommand (cmd_*.c), each
 * taking argc/argv from the subcommand on and returning the process exit code. */
#ifndef SBX_CLI_H
#define SBX_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "err.h"

int cmd_run(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_daemon(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_diagnose(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_secret(int argc, char **argv);
int cmd_audit(int argc, char **argv);

/* Before the first sandbox: if the network policy was never chosen, ask which preset on a
 * terminal (Enter = balanced), else apply balanced. 0, or -1 after a warning (not fatal: the
 * daemon applies balanced itself when a sandbox starts). */
int cli_policy_first_use(void);

/* Print "sbx: error: MSG" and return the exit code for the error's category. */
int cli_fail(const sbx_err *err);
/* Print a usage problem with the command's usage line and return 64. */
int cli_usage(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print a JSON value on stdout (pretty) and a newline. */
void cli_print_json(json_t *v);
/* -e KEY=VALUE (or KEY: the host's value, skipped when unset) appended to a JSON array. */
int cli_env_entry(json_t *arr, const char *kv, sbx_err *err);
struct option;
/* The long name of an option letter in a getopt_long table ("?" if none). */
const char *cli_opt_name(const struct option *opts, int letter);
/* Command-line text travels as JSON strings, which must be UTF-8: 0, or the exit code after
 * saying which argument is not (so that no value can fall out of a request on the way). */
int cli_check_text(const char *what, const char *s);
/* "3 minutes ago" style age of a ms timestamp. */
void cli_age(long long ms, char *out, size_t n);
/* Sends an exec-like request (exec, or run with its "exec" part) to path and attaches to the
 * process; returns the exit code. */
int cli_exec_attach(const char *path, json_t *req, json_t *exec, bool tty, bool want_stdin);

#endif
