#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cleanup.h"
#include "util.h"

struct handler {
	sbx_io_cb cb;
	void *ud;
	unsigned events;
	bool used;
};

struct timer {
	uint64_t when;
	uint64_t id;
	sbx_timer_cb cb;
	void *ud;
};

struct sbx_loop {
	int epfd;
	struct handler *h;
	int nh;
	struct timer *heap;
	size_t ntimers, atimers;
	uint64_t next_id;
	bool stop;
};

struct sbx_loop *sbx_loop_new(void)
{
	struct sbx_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	l->next_id = 1;
	return l;
}

void sbx_loop_free(struct sbx_loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l->h);
	free(l->heap);
	free(l);
}

static uint32_t to_epoll(unsigned ev)
{
	return (ev & SBX_EV_READ ? EPOLLIN : 0) | (ev & SBX_EV_WRITE ? EPOLLOUT : 0);
}

int sbx_loop_add(struct sbx_loop *l, int fd, unsigned events, sbx_io_cb cb, void *ud)
{
	struct epoll_event ev = {.events = to_epoll(events), .data.fd = fd};

	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (fd >= l->nh) {
		int n = l->nh ? l->nh : 64;
		while (n <= fd)
			n *= 2;
		struct handler *h = realloc(l->h, (size_t)n * sizeof(*h));
		if (!h)
			return -1;
		memset(h + l->nh, 0, (size_t)(n - l->nh) * sizeof(*h));
		l->h = h;
		l->nh = n;
	}
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -1;
	l->h[fd] = (struct handler){.cb = cb, .ud = ud, .events = events, .used = true};
	return 0;
}

int sbx_loop_mod(struct sbx_loop *l, int fd, unsigned events)
{
	struct epoll_event ev = {.events = to_epoll(events), .data.fd = fd};

	if (fd < 0 || fd >= l->nh || !l->h[fd].used) {
		errno = EBADF;
		return -1;
	}
	if (l->h[fd].events == events)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -1;
	l->h[fd].events = events;
	return 0;
}

void sbx_loop_del(struct sbx_loop *l, int fd)
{
	if (fd < 0 || fd >= l->nh || !l->h[fd].used)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->h[fd].used = false;
	l->h[fd].cb = NULL;
}

static void heap_swap(struct sbx_loop *l, size_t a, size_t b)
{
	struct timer t = l->heap[a];
	l->heap[a] = l->heap[b];
	l->heap[b] = t;
}

static void heap_up(struct sbx_loop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (l->heap[p].when <= l->heap[i].when)
			break;
		heap_swap(l, p, i);
		i = p;
	}
}

static void heap_down(struct sbx_loop *l, size_t i)
{
	for (;;) {
		size_t a = 2 * i + 1, b = a + 1, m = i;
		if (a < l->ntimers && l->heap[a].when < l->heap[m].when)
			m = a;
		if (b < l->ntimers && l->heap[b].when < l->heap[m].when)
			m = b;
		if (m == i)
			return;
		heap_swap(l, i, m);
		i = m;
	}
}

static void heap_remove(struct sbx_loop *l, size_t i)
{
	l->heap[i] = l->heap[--l->ntimers];
	if (i < l->ntimers) {
		heap_down(l, i);
		heap_up(l, i);
	}
}

uint64_t sbx_loop_timer(struct sbx_loop *l, uint64_t delay_ms, sbx_timer_cb cb, void *ud)
{
	if (l->ntimers == l->atimers) {
		size_t n = l->atimers ? l->atimers * 2 : 32;
		struct timer *t = realloc(l->heap, n * sizeof(*t));
		if (!t)
			return 0;
		l->heap = t;
		l->atimers = n;
	}
	l->heap[l->ntimers] = (struct timer){.when = sbx_monotonic_ms() + delay_ms, .id = l->next_id++, .cb = cb, .ud = ud};
	heap_up(l, l->ntimers++);
	return l->next_id - 1;
}

void sbx_loop_timer_cancel(struct sbx_loop *l, uint64_t id)
{
	if (!id)
		return;
	for (size_t i = 0; i < l->ntimers; i++)
		if (l->heap[i].id == id) {
			heap_remove(l, i);
			return;
		}
}

void sbx_loop_stop(struct sbx_loop *l)
{
	l->stop = true;
}

int sbx_loop_run(struct sbx_loop *l)
{
	struct epoll_event evs[64];

	l->stop = false;
	while (!l->stop) {
		int timeout = -1;
		if (l->ntimers) {
			uint64_t now = sbx_monotonic_ms();
			timeout = l->heap[0].when <= now ? 0 : (int)(l->heap[0].when - now);
		}
		int n = epoll_wait(l->epfd, evs, (int)SBX_ARRAY_LEN(evs), timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			unsigned ev = 0;
			if (fd >= l->nh || !l->h[fd].used)
				continue; /* deleted by an earlier callback in this batch */
			if (evs[i].events & EPOLLIN)
				ev |= SBX_EV_READ;
			if (evs[i].events & EPOLLOUT)
				ev |= SBX_EV_WRITE;
			if (evs[i].events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
				ev |= SBX_EV_ERROR;
			l->h[fd].cb(l, fd, ev, l->h[fd].ud);
		}
		uint64_t now = sbx_monotonic_ms();
		while (l->ntimers && l->heap[0].when <= now) {
			struct timer t = l->heap[0];
			heap_remove(l, 0);
			t.cb(l, t.ud);
		}
	}
	return 0;
}
