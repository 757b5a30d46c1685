/*
 * loop.h: a small level-triggered epoll reactor.
 *
 * Sources are embedded in their owner and found again with container_of.
 * loop_remove() may be called from any callback, for any source, and the
 * owner may free the memory right after it: pending events of the batch
 * that point at the removed source are dropped.
 *
 * Timers are kept in a tree ordered by CLOCK_MONOTONIC deadline and share
 * one timerfd that is armed only while some timer is pending: an idle loop
 * never wakes up.
 */
#ifndef HEIDI_COMMON_LOOP_H
#define HEIDI_COMMON_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "common/util.h"

#include <sys/tree.h>

struct loop;
struct loop_source;
struct loop_timer;

typedef void (*loop_source_fn)(struct loop_source *src, uint32_t revents);
typedef void (*loop_timer_fn)(struct loop_timer *timer, uint64_t now_ns);

struct loop_source {
	int fd;
	uint32_t events;
	loop_source_fn cb;
};

struct loop_timer {
	RB_ENTRY(loop_timer) entry;
	uint64_t deadline_ns;
	uint64_t seq;
	bool armed;
	loop_timer_fn cb;
};

int loop_new(struct loop **loopp);
struct loop *loop_free(struct loop *loop);

/* Register fd for events; the loop does not own fd.  0 or -errno. */
int loop_add(struct loop *loop, struct loop_source *src, int fd, uint32_t events, loop_source_fn cb);
int loop_modify(struct loop *loop, struct loop_source *src, uint32_t events);
/* Unregister src (no-op if it is not registered).  Call before closing its fd. */
void loop_remove(struct loop *loop, struct loop_source *src);
bool loop_source_active(const struct loop_source *src);

void loop_timer_init(struct loop_timer *timer, loop_timer_fn cb);
void loop_timer_arm(struct loop *loop, struct loop_timer *timer, uint64_t deadline_ns);
void loop_timer_disarm(struct loop *loop, struct loop_timer *timer);
size_t loop_timer_count(const struct loop *loop);

/* Wait (up to timeout_ms, -1 = forever) and dispatch one batch: the number of events, or -errno. */
int loop_run_once(struct loop *loop, int timeout_ms);

#endif
