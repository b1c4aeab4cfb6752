/* test_approvers.c - named approvers and their tokens (src/daemon/approvers.c): names, creation,
 * duplicates, the token check (right, wrong, unknown name: the same answer), removal, and that
 * the database holds no token. */
#include "daemon/approvers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "tap.h"
#include "util.h"

static sbx_err err;
#define E (sbx_err_clear(&err), &err)

static void count_cb(void *ud, const char *name, int64_t created_ms)
{
	(*(int *)ud)++;
	(void)name;
	(void)created_ms;
}

static int db_has(struct sbx_store *s, const char *needle)
{
	sqlite3_stmt *st;
	int found = 0;

	if (sqlite3_prepare_v2(sbx_store_db(s), "SELECT name, token_hash FROM approvers", -1, &st, NULL) != SQLITE_OK)
		return -1;
	while (sqlite3_step(st) == SQLITE_ROW)
		for (int c = 0; c < 2; c++) {
			const unsigned char *v = sqlite3_column_text(st, c);
			found += v && strstr((const char *)v, needle) != NULL;
		}
	sqlite3_finalize(st);
	return found;
}

int main(void)
{
	char dir[] = "/tmp/sbx-test-approvers-XXXXXX", path[256], tok[SBX_APPROVER_TOKEN_LEN + 1], tok2[sizeof(tok)];
	char msg_wrong[256], msg_unknown[256];
	struct sbx_store *s = NULL;
	int n = 0;

	ok(sbx_approver_name_valid("alice") && sbx_approver_name_valid("ops-2_b"), "plain names are valid");
	ok(!sbx_approver_name_valid("") && !sbx_approver_name_valid("Alice") && !sbx_approver_name_valid("2fa") &&
		   !sbx_approver_name_valid("user") && !sbx_approver_name_valid("user:root") &&
		   !sbx_approver_name_valid("a b") && !sbx_approver_name_valid("abcdefghijklmnopqrstuvwxyz0123456"),
	   "empty, upper case, digit first, \"user\", ':', spaces and 33 characters are not");

	if (!ok(mkdtemp(dir) != NULL, "a temporary directory"))
		return done_testing();
	snprintf(path, sizeof(path), "%s/sbx.db", dir);
	if (!ok(sbx_store_open(path, &s, E) == 0, "a state database opens")) {
		diag("%s", err.msg);
		return done_testing();
	}

	ok(sbx_approver_add(s, "alice", tok, E) == 0 && strlen(tok) == SBX_APPROVER_TOKEN_LEN &&
		   strncmp(tok, SBX_APPROVER_TOKEN_PREFIX, 5) == 0,
	   "an approver is created with a %d-character token", SBX_APPROVER_TOKEN_LEN);
	ok(sbx_approver_add(s, "alice", tok2, E) < 0 && err.code == SBX_E_CONFLICT && strstr(err.msg, "sbx approver rm"),
	   "the same name twice is a conflict that names the fix");
	ok(sbx_approver_add(s, "Bob", tok2, E) < 0 && err.code == SBX_E_INVALID, "a bad name is refused");
	ok(sbx_approver_add(s, "bob", tok2, E) == 0 && strcmp(tok, tok2) != 0, "another approver gets another token");
	ok(db_has(s, tok + 5) == 0 && db_has(s, tok2 + 5) == 0, "the database holds no token, only hashes");

	ok(sbx_approver_check(s, "alice", tok, E) == 0, "alice's token is alice's");
	ok(sbx_approver_check(s, "bob", tok, E) < 0 && err.code == SBX_E_PERM, "alice's token is not bob's");
	snprintf(msg_wrong, sizeof(msg_wrong), "%s", err.msg);
	tok[10] ^= 1;
	ok(sbx_approver_check(s, "alice", tok, E) < 0 && err.code == SBX_E_PERM, "a token one bit off is refused");
	tok[10] ^= 1;
	ok(sbx_approver_check(s, "carol", tok, E) < 0 && err.code == SBX_E_PERM, "an unknown name is refused");
	snprintf(msg_unknown, sizeof(msg_unknown), "%s", err.msg);
	ok(strstr(msg_wrong, "not accepted") && strstr(msg_unknown, "not accepted"),
	   "a wrong token and an unknown name get the same kind of answer");
	ok(sbx_approver_check(s, "alice", "", E) < 0 && sbx_approver_check(s, "alice", NULL, E) < 0,
	   "an empty or missing token is refused");

	ok(sbx_approver_each(s, count_cb, &n, E) == 0 && n == 2, "two approvers are listed");
	ok(sbx_approver_remove(s, "alice", E) == 0, "an approver is removed");
	ok(sbx_approver_check(s, "alice", tok, E) < 0 && err.code == SBX_E_PERM, "  and their token stops working");
	ok(sbx_approver_remove(s, "alice", E) < 0 && err.code == SBX_E_NOTFOUND, "removing them again: not found");
	n = 0;
	ok(sbx_approver_each(s, count_cb, &n, E) == 0 && n == 1, "one approver is left");

	sbx_store_close(s);
	sbx_rm_rf(dir);
	return done_testing();
}
