/* loop.h - a small epoll reactor (in the spirit of redis' ae.c).
 *
 * One callback per file descriptor, re-armed with sbx_loop_mod; one-shot timers kept in a
 * binary heap; everything runs on one thread. Callbacks may add, modify or delete any fd or
 * timer, including their own. */
#ifndef SBX_LOOP_H
#define SBX_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#define SBX_EV_READ 1u
#define SBX_EV_WRITE 2u
#define SBX_EV_ERROR 4u /* reported only: hangup or error */

struct sbx_loop;
typedef void (*sbx_io_cb)(struct sbx_loop *loop, int fd, unsigned events, void *ud);
typedef void (*sbx_timer_cb)(struct sbx_loop *loop, void *ud);

struct sbx_loop *sbx_loop_new(void);
void sbx_loop_free(struct sbx_loop *loop);
int sbx_loop_add(struct sbx_loop *loop, int fd, unsigned events, sbx_io_cb cb, void *ud);
int sbx_loop_mod(struct sbx_loop *loop, int fd, unsigned events);
void sbx_loop_del(struct sbx_loop *loop, int fd);
/* Returns a timer id (> 0) or 0 on allocation failure. */
uint64_t sbx_loop_timer(struct sbx_loop *loop, uint64_t delay_ms, sbx_timer_cb cb, void *ud);
void sbx_loop_timer_cancel(struct sbx_loop *loop, uint64_t id);
/* Runs until sbx_loop_stop. Returns 0, or -1 if epoll failed. */
int sbx_loop_run(struct sbx_loop *loop);
void sbx_loop_stop(struct sbx_loop *loop);

#endif
