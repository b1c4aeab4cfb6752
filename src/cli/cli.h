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
int cmd_review(int argc, char **argv);
int cmd_approver(int argc, char **argv);

/* Before the first sandbox: if the network policy was never chosen, ask which preset on a
 * terminal (Enter = balanced), else apply balanced. 0, or -1 after a warning (not fatal: the
 * daemon applies balanced itself when a sandbox starts). */
int cli_policy_first_use(void);

/* Print "sbx: error: MSG" and return the exit code for the error's category. */
int cli_fail(const sbx_err *err);
/* cli_fail for an invalid value (exit 65), with the message formatted here. */
int cli_invalid(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
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
/* A sandbox name as an option's value: 0, or the exit code after saying what a name may be. */
int cli_check_sandbox(const char *name);
/* "3 minutes ago" style age of a ms timestamp. */
void cli_age(long long ms, char *out, size_t n);
/* A span of time, short: "45s", "4m05s", "1h30m", "2d3h". */
void cli_duration(unsigned long long ms, char *out, size_t n);

/* ---- the options of `sbx GROUP SUBCOMMAND ...` ----
 * A group (policy, review, ...) has one getopt_long table for all its subcommands; each
 * subcommand names the option letters it takes, so that one loop parses them all and every
 * refusal reads the same. */
struct cli_group {
	const char *name;          /* "policy": messages say `sbx policy SUB` */
	const char *usage, *help;  /* printed by --help (usage also with every usage error) */
	const struct option *opts; /* every option of the group; val is the letter, < CLI_OPT_MAX */
	const char *shortopts;     /* getopt's short options, "h" at least */
};
#define CLI_OPT_MAX 128
struct cli_opts {
	const char *val[CLI_OPT_MAX]; /* per option letter: its value (the last one given), "" for a
				       * flag, NULL when absent */
	json_t *args;                 /* the arguments after the subcommand, as JSON strings */
};
/* Parses argv (argv[0] is the subcommand) taking the letters in `accepted`; values and arguments
 * must be UTF-8 text. Returns 0; -1 after printing the help (exit 0); or an exit code after
 * saying what is wrong. o->args is to be freed (cli_opts_free) in every case. */
int cli_parse_opts(const struct cli_group *g, int argc, char **argv, const char *accepted, struct cli_opts *o);
void cli_opts_free(struct cli_opts *o);

/* ---- text from the daemon, for a terminal ---- */
/* A copy of s (NULL: "") in buf with every control character (C0, DEL, C1) shown as '?', so
 * that nothing the daemon relays can steer the terminal; cut short at a character boundary. */
const char *cli_clean(const char *s, char *buf, size_t n);
/* A string member of a JSON object, "" when absent or not a string. */
const char *cli_jstr(json_t *o, const char *key);
/* Columns a UTF-8 string takes (code points; wide characters count as one). */
size_t cli_width(const char *s);
/* The terminal's width for stdout, 80 when it is not a terminal. */
size_t cli_term_cols(void);
/* Tables: rows are JSON arrays of strings. cli_cell cleans what it adds. */
json_t *cli_row(json_t *rows);
void cli_cell(json_t *row, const char *s);
/* Prints head and rows in aligned columns. Column c is as wide as its widest cell, but at most
 * max[c] (max NULL or max[c] 0: 60, and no limit for the last column; CLI_TABLE_FIT: what the
 * other columns leave of the terminal's width, no limit when stdout is not a terminal); longer
 * cells are cut with "...". */
#define CLI_TABLE_FIT ((size_t)-2)
void cli_table_print(const char *const *head, size_t ncols, json_t *rows, const size_t *max);

/* Reads one line typed on the terminal fd without echo, after writing prompt to it; the
 * terminal's settings come back on every way out, signals included. 0, or -1 with err (a line
 * that does not fit in n - 1 bytes is refused, not cut). Wipe buf after use. */
int cli_read_hidden(int fd, const char *prompt, char *buf, size_t n, sbx_err *err);
/* Sends an exec-like request (exec, or run with its "exec" part) to path and attaches to the
 * process; returns the exit code. */
int cli_exec_attach(const char *path, json_t *req, json_t *exec, bool tty, bool want_stdin);

#endif
