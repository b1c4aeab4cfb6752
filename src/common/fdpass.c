
#include "fdpass.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int sbx_send_fds(int sock, const void *data, size_t len, const int *fds, size_t nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SBX_FDPASS_MAX)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t w;

	if (nfds > SBX_FDPASS_MAX || len == 0) {
		errno = EINVAL;
		return -1;
	}
	if (nfds > 0) {
		struct cmsghdr *c;
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		w = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -1;
	if ((size_t)w != len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

ssize_t sbx_recv_fds(int sock, void *data, size_t len, int *fds, size_t max_fds, size_t *nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SBX_FDPASS_MAX)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = data, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	ssize_t r;
	size_t got = 0;
	int bad = 0;

	*nfds = 0;
	do
		r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			bad = 1;
			continue;
		}
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int tmp[SBX_FDPASS_MAX * 2];
		if (n > (SBX_FDPASS_MAX * 2))
			n = (SBX_FDPASS_MAX * 2);
		memcpy(tmp, CMSG_DATA(c), n * sizeof(int));
		for (size_t i = 0; i < n; i++) {
			if (got < max_fds)
				fds[got++] = tmp[i];
			else {
				close(tmp[i]);
				bad = 1;
			}
		}
	}
	if (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC))
		bad = 1;
	if (bad) {
		for (size_t i = 0; i < got; i++)
			close(fds[i]);
		errno = EBADMSG;
		return -1;
	}
	*nfds = got;
	return r;
}
