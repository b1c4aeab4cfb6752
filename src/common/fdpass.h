/* fdpass.h - messages with file descriptors over unix sockets (SCM_RIGHTS). */
#ifndef SBX_FDPASS_H
#define SBX_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

#define SBX_FDPASS_MAX 8

/* Sends len bytes (len >= 1) together with nfds descriptors. Returns 0 or -1 (errno). */
int sbx_send_fds(int sock, const void *data, size_t len, const int *fds, size_t nfds);
/* Receives one message. Descriptors beyond max_fds, or a truncated control message, are closed
 * and the call fails with EBADMSG, so nothing leaks. Received fds are O_CLOEXEC.
 * Returns bytes read (0 at EOF) or -1. *nfds gets the count. */
ssize_t sbx_recv_fds(int sock, void *data, size_t len, int *fds, size_t max_fds, size_t *nfds);

#endif
