/* api.h - the daemon's control API: HTTP/1.1 + JSON on a unix socket (versioned under /v1).
 *
 * Only the daemon's own user (and root) may talk to it: the socket lives in a 0700 directory
 * and every connection's SO_PEERCRED is checked. Sandboxes have no path to it.
 * Exec uses an upgrade: the 101 response carries the process's pty master or pipe ends as
 * SCM_RIGHTS, so the session's bytes never pass through the daemon; afterwards the connection
 * carries newline-delimited JSON events (client: signal, resize; daemon: exit). */
#ifndef SBX_API_H
#define SBX_API_H

#include <jansson.h>

#include "daemon.h"

int sbx_api_listen(struct sbx_daemon *d, sbx_err *err);
void sbx_api_close(struct sbx_daemon *d);
/* In a process forked from the daemon (a helper): close the inherited API sockets, so that a
 * helper outliving a killed daemon does not keep accepting connections nobody will answer. */
void sbx_api_drop_inherited(void);
/* Sends ev (one JSON object, not consumed) as an event line to every client attached to a
 * process of that sandbox (`sbx run`, `sbx exec` in the foreground): the review queue tells the
 * engineer's terminal about held requests this way. */
void sbx_api_sandbox_event(struct sbx_daemon *d, const char *sandbox_id, json_t *ev);

#endif
