/* approvers.h - who may approve a held request: the local user, and named approvers.
 *
 * The local user is whoever talks to the daemon's control socket (its own uid or root: api.c
 * checks SO_PEERCRED), identified as "user:LOGIN". A named approver is a second person with a
 * token of their own (`sbx approver add NAME` prints it once); the database keeps only the
 * token's SHA-256, so reading the state database does not yield a token. The two-person rule
 * counts distinct identities: the local user once, each named approver once.
 *
 * Nothing of this reaches a sandbox: it has no path to the control socket, the database or a
 * token. What the rule does not stop is the host user being both people (they can create an
 * approver and keep its token): it guards against one person's slip, not against the host's
 * owner, who controls the daemon anyway. */
#ifndef SBX_APPROVERS_H
#define SBX_APPROVERS_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

#define SBX_APPROVER_NAME_MAX 32
#define SBX_APPROVER_TOKEN_PREFIX "sbxa_"
#define SBX_APPROVER_TOKEN_LEN (5 + 64) /* the prefix and 32 random bytes in hex */
#define SBX_APPROVER_ID_MAX 64          /* "user:LOGIN" or a name */

/* 1..32 of [a-z0-9_-], starting with a letter; "user" and names with ':' are taken by the local
 * user's identity. */
bool sbx_approver_name_valid(const char *name);
/* Creates NAME with a fresh token, written to token (NUL-terminated); SBX_E_CONFLICT if NAME
 * exists, SBX_E_INVALID for a bad name. */
int sbx_approver_add(struct sbx_store *s, const char *name, char token[SBX_APPROVER_TOKEN_LEN + 1], sbx_err *err);
int sbx_approver_remove(struct sbx_store *s, const char *name, sbx_err *err); /* SBX_E_NOTFOUND */
/* Calls cb per approver, by name. */
int sbx_approver_each(struct sbx_store *s, void (*cb)(void *ud, const char *name, int64_t created_ms), void *ud,
		      sbx_err *err);
/* 0 when token is NAME's; SBX_E_PERM otherwise, with the same message whether the name or the
 * token is wrong. The comparison takes the same time whatever matches. */
int sbx_approver_check(struct sbx_store *s, const char *name, const char *token, sbx_err *err);

#endif
