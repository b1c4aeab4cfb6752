/* client.h - talking to sbxd: connect (starting the daemon on demand), one HTTP/1.1 request
 * per connection, JSON in and out, descriptors received with the exec upgrade. */
#ifndef SBX_CLIENT_H
#define SBX_CLIENT_H

#include <jansson.h>
#include <stdbool.h>

#include "buf.h"
#include "err.h"
#include "paths.h"

struct sbx_response {
	int status;
	json_t *body;   /* parsed JSON body, or NULL */
	int fds[8];     /* received with the response (exec upgrade) */
	size_t nfds;
	int fd;         /* the connection, kept open after a 101 upgrade; -1 otherwise */
	sbx_buf rest;   /* bytes after the head of a 101 response */
	unsigned exec_fds; /* Sbx-Exec-Fds mask: 1 stdin, 2 stdout, 4 stderr (pty: 1 only) */
};

void sbx_response_free(struct sbx_response *r);

/* Resolve paths once for the process. */
const struct sbx_paths *sbx_client_paths(sbx_err *err);
/* Connect to the daemon; start it if autostart and it is not running. Returns an fd. */
int sbx_client_connect(bool autostart, sbx_err *err);
/* Send a request and read the response. body may be NULL. */
int sbx_client_call(const char *method, const char *path, json_t *body, struct sbx_response *r, sbx_err *err);
/* The common case: a 2xx JSON answer, or err filled from the daemon's error. Caller decrefs. */
json_t *sbx_api(const char *method, const char *path, json_t *body, sbx_err *err);
/* Is a daemon answering (without starting one)? */
bool sbx_daemon_running(void);
/* Where the daemon binary is (next to sbx, or ../libexec/sbx). */
int sbx_find_daemon(char *out, size_t outlen);

#endif
