/* approvers.c - named approvers and their tokens (see approvers.h). */
#include "approvers.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "sigv4.h"
#include "util.h"

bool sbx_approver_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > SBX_APPROVER_NAME_MAX || name[0] < 'a' || name[0] > 'z' || strcmp(name, "user") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int bad_name(const char *name, sbx_err *err)
{
	return sbx_err_set(err, SBX_E_INVALID,
			   "\"%.40s\" is not an approver name: 1 to %d of a-z, 0-9, '_', '-', starting with a letter "
			   "(and not \"user\")",
			   name ? name : "", SBX_APPROVER_NAME_MAX);
}

static int db_fail(struct sbx_store *s, sbx_err *err, const char *what)
{
	return sbx_err_set(err, SBX_E_IO, "state database: %s: %s", what, sqlite3_errmsg(sbx_store_db(s)));
}

int sbx_approver_add(struct sbx_store *s, const char *name, char token[SBX_APPROVER_TOKEN_LEN + 1], sbx_err *err)
{
	char hex[65], hash[65];
	sqlite3_stmt *st;
	int rc;

	if (!sbx_approver_name_valid(name))
		return bad_name(name, err);
	if (sbx_random_hex(hex, 32) < 0)
		return sbx_err_set(err, SBX_E_INTERNAL, "no randomness for a token");
	snprintf(token, SBX_APPROVER_TOKEN_LEN + 1, SBX_APPROVER_TOKEN_PREFIX "%s", hex);
	sbx_sha256_hex(token, strlen(token), hash);
	if (sqlite3_prepare_v2(sbx_store_db(s),
			       "INSERT INTO approvers (name, token_hash, created_at) VALUES (?1, ?2, ?3)"
			       " ON CONFLICT (name) DO NOTHING",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(s, err, "adding an approver");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)sbx_now_ms());
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(s, err, "adding an approver");
	if (sqlite3_changes(sbx_store_db(s)) != 1) {
		memset(token, 0, SBX_APPROVER_TOKEN_LEN + 1);
		return sbx_err_set(err, SBX_E_CONFLICT,
				   "approver %s exists; to give them a new token: sbx approver rm %s, then add again", name,
				   name);
	}
	return 0;
}

int sbx_approver_remove(struct sbx_store *s, const char *name, sbx_err *err)
{
	sqlite3_stmt *st;
	int rc;

	if (!sbx_approver_name_valid(name))
		return bad_name(name, err);
	if (sqlite3_prepare_v2(sbx_store_db(s), "DELETE FROM approvers WHERE name = ?1", -1, &st, NULL) != SQLITE_OK)
		return db_fail(s, err, "removing an approver");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(s, err, "removing an approver");
	if (sqlite3_changes(sbx_store_db(s)) == 0)
		return sbx_err_set(err, SBX_E_NOTFOUND, "no approver named %s (sbx approver ls lists them)", name);
	return 0;
}

int sbx_approver_each(struct sbx_store *s, void (*cb)(void *ud, const char *name, int64_t created_ms), void *ud,
		      sbx_err *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(sbx_store_db(s), "SELECT name, created_at FROM approvers ORDER BY name", -1, &st,
			       NULL) != SQLITE_OK)
		return db_fail(s, err, "listing approvers");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *n = sqlite3_column_text(st, 0);
		cb(ud, n ? (const char *)n : "", sqlite3_column_int64(st, 1));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_fail(s, err, "listing approvers");
}

int sbx_approver_check(struct sbx_store *s, const char *name, const char *token, sbx_err *err)
{
	/* Compared against a fixed dummy when the name is unknown, so that the answer's timing and
	 * text say nothing about which part was wrong. */
	char want[65] = "0000000000000000000000000000000000000000000000000000000000000000", got[65];
	bool known = false;
	sqlite3_stmt *st;

	if (!sbx_approver_name_valid(name) || !token)
		return sbx_err_set(err, SBX_E_PERM, "approver name or token not accepted");
	if (sqlite3_prepare_v2(sbx_store_db(s), "SELECT token_hash FROM approvers WHERE name = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_fail(s, err, "checking an approver");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(st, 0);
		if (h && strlen((const char *)h) == 64) {
			memcpy(want, h, 65);
			known = true;
		}
	}
	sqlite3_finalize(st);
	sbx_sha256_hex(token, strlen(token), got);
	if (CRYPTO_memcmp(want, got, 64) != 0 || !known)
		return sbx_err_set(err, SBX_E_PERM,
				   "approver name or token not accepted (the token is the one `sbx approver add %s` "
				   "printed)",
				   name);
	return 0;
}
