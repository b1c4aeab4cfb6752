/* api_secret.h - the credentials part of the control API (/v1/secrets...).
 *
 * Routes (JSON bodies; every field is checked for type and length, unknown fields refused):
 *   GET    /v1/secrets            {"secrets": [SECRET...]}: every stored secret, values left out
 *                                 (SECRET: service, sandbox, scope, custom, kind, title?, hosts,
 *                                 header, format, masked, updated_at)
 *   POST   /v1/secrets            {"service", "value", "sandbox"?, "custom"?, "hosts"?, "header"?,
 *                                  "format"?, "dry_run"?} -> {"secret", "replaced", "sandbox_exists"?}
 *                                 201 when new, 200 when it replaced one of the same name and scope.
 *                                 Without "custom", a name that is not built in names a custom
 *                                 service already stored (in that scope, else globally): its
 *                                 hosts, header and format are kept, the value changes.
 *                                 "dry_run": check everything (the value only if given), store
 *                                 nothing -> {"valid": true, "secret"}
 *   DELETE /v1/secrets            {"service", "sandbox"?} -> {"removed": {"service", "sandbox", "scope"}}
 *   GET    /v1/secrets/services   {"services": [...]}: the built-in table (hosts, header, format,
 *                                 host and sandbox variables, placeholder form)
 * The value travels only in a POST body and never comes back, in full or in an error message;
 * nothing on these paths logs. */
#ifndef SBX_API_SECRET_H
#define SBX_API_SECRET_H

#include <jansson.h>

#include "daemon.h"

/* Handles one request under /v1/secrets, like sbx_api_policy: the response body with *status
 * set, or NULL with err filled. */
json_t *sbx_api_secret(struct sbx_daemon *d, const char *method, const char *path, const char *query, json_t *body,
		       int *status, sbx_err *err);

#endif
