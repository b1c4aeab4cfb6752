/* resolver.c - getaddrinfo on worker threads, results delivered on the loop (see resolver.h).
 *
 * A job is owned by the queue until a worker takes it, then by the worker until it moves it to
 * the done list; the loop thread frees it after delivering (or skipping, if cancelled). Cancel
 * only flips a flag under the lock, so a worker never touches freed memory. */
#include "resolver.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define MAX_THREADS 8

struct job {
	uint64_t handle;
	char host[256];
	uint16_t port;
	sbx_resolve_cb cb;
	void *ud;
	bool cancelled;
	struct sbx_resolved res;
	struct job *next;
};

struct sbx_resolver {
	struct sbx_loop *loop;
	int efd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *queue, **queue_tail;
	struct job *done;
	struct job *running; /* taken by workers (a list, for cancel) */
	size_t pending;
	uint64_t next_handle;
	bool stopping;
	unsigned nthreads;
	pthread_t threads[MAX_THREADS];
};

static void resolve(struct job *j)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV};
	struct addrinfo *ai = NULL, *p;
	char port[8];
	int rc;

	snprintf(port, sizeof(port), "%u", j->port);
	rc = getaddrinfo(j->host, port, &hints, &ai);
	if (rc == EAI_NONAME || rc == EAI_ADDRFAMILY) {
		/* AI_ADDRCONFIG hides everything on a host with only loopback: ask again without it. */
		hints.ai_flags &= ~AI_ADDRCONFIG;
		rc = getaddrinfo(j->host, port, &hints, &ai);
	}
	j->res.gai_error = rc;
	if (rc != 0)
		return;
	for (p = ai; p && j->res.n < SBX_RESOLVER_MAX_ADDRS; p = p->ai_next) {
		if ((p->ai_family != AF_INET && p->ai_family != AF_INET6) || p->ai_addrlen > sizeof(struct sockaddr_storage))
			continue;
		memcpy(&j->res.addrs[j->res.n], p->ai_addr, p->ai_addrlen);
		j->res.lens[j->res.n] = p->ai_addrlen;
		j->res.n++;
	}
	freeaddrinfo(ai);
	if (j->res.n == 0)
		j->res.gai_error = EAI_NODATA;
}

static void unlink_running(struct sbx_resolver *r, struct job *j)
{
	for (struct job **pp = &r->running; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			return;
		}
}

static void *worker(void *arg)
{
	struct sbx_resolver *r = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		struct job *j;
		while (!r->queue && !r->stopping)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->stopping)
			break;
		j = r->queue;
		r->queue = j->next;
		if (!r->queue)
			r->queue_tail = &r->queue;
		j->next = r->running;
		r->running = j;
		if (!j->cancelled) {
			pthread_mutex_unlock(&r->mu);
			resolve(j);
			pthread_mutex_lock(&r->mu);
		}
		unlink_running(r, j);
		j->next = r->done;
		r->done = j;
		if (write(r->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warn("resolver: eventfd: %s", strerror(errno));
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static void on_done(struct sbx_loop *loop, int fd, unsigned events, void *ud)
{
	struct sbx_resolver *r = ud;
	struct job *list, *rev = NULL;
	uint64_t v;

	(void)loop;
	(void)events;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&r->mu);
	list = r->done;
	r->done = NULL;
	pthread_mutex_unlock(&r->mu);
	while (list) { /* oldest first */
		struct job *n = list->next;
		list->next = rev;
		rev = list;
		list = n;
	}
	while (rev) {
		struct job *j = rev;
		bool cancelled;
		rev = j->next;
		pthread_mutex_lock(&r->mu);
		cancelled = j->cancelled;
		r->pending--;
		pthread_mutex_unlock(&r->mu);
		if (!cancelled)
			j->cb(j->ud, &j->res);
		free(j);
	}
}

int sbx_resolver_new(struct sbx_loop *loop, unsigned threads, struct sbx_resolver **out, sbx_err *err)
{
	struct sbx_resolver *r = calloc(1, sizeof(*r));

	if (!r)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	r->loop = loop;
	r->queue_tail = &r->queue;
	r->next_handle = 1;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0 || sbx_loop_add(loop, r->efd, SBX_EV_READ, on_done, r) < 0) {
		int e = errno;
		if (r->efd >= 0)
			close(r->efd);
		free(r);
		return sbx_err_sys(err, SBX_E_INTERNAL, e, "resolver eventfd");
	}
	if (threads == 0)
		threads = 1;
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&r->threads[i], NULL, worker, r) != 0)
			break;
		r->nthreads++;
	}
	if (r->nthreads == 0) {
		sbx_resolver_free(r);
		return sbx_err_set(err, SBX_E_INTERNAL, "cannot start resolver threads");
	}
	*out = r;
	return 0;
}

void sbx_resolver_free(struct sbx_resolver *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	/* getaddrinfo cannot be interrupted; a worker stuck in it is waited for (bounded by the
	 * resolver's own timeouts). */
	for (unsigned i = 0; i < r->nthreads; i++)
		pthread_join(r->threads[i], NULL);
	for (struct job *lists[2] = {r->queue, r->done}, *j; lists[0] || lists[1];) {
		int k = lists[0] ? 0 : 1;
		j = lists[k];
		lists[k] = j->next;
		free(j);
	}
	sbx_loop_del(r->loop, r->efd);
	close(r->efd);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}

uint64_t sbx_resolver_lookup(struct sbx_resolver *r, const char *host, uint16_t port, sbx_resolve_cb cb, void *ud)
{
	struct job *j;
	struct sbx_resolved fail = {.gai_error = EAI_AGAIN};

	if (strlen(host) >= sizeof(j->host)) {
		fail.gai_error = EAI_NONAME;
		cb(ud, &fail);
		return 0;
	}
	pthread_mutex_lock(&r->mu);
	if (r->pending >= SBX_RESOLVER_MAX_PENDING || !(j = calloc(1, sizeof(*j)))) {
		pthread_mutex_unlock(&r->mu);
		cb(ud, &fail);
		return 0;
	}
	sbx_strlcpy(j->host, host, sizeof(j->host));
	j->port = port;
	j->cb = cb;
	j->ud = ud;
	j->handle = r->next_handle++;
	*r->queue_tail = j;
	r->queue_tail = &j->next;
	r->pending++;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return j->handle;
}

void sbx_resolver_cancel(struct sbx_resolver *r, uint64_t handle)
{
	struct job *lists[3];

	if (!handle)
		return;
	pthread_mutex_lock(&r->mu);
	lists[0] = r->queue;
	lists[1] = r->running;
	lists[2] = r->done;
	for (int k = 0; k < 3; k++)
		for (struct job *j = lists[k]; j; j = j->next)
			if (j->handle == handle)
				j->cancelled = true;
	pthread_mutex_unlock(&r->mu);
}
