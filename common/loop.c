/*
 * loop.c: epoll reactor with one timerfd for all timers.
 *
 * Invariants: a source is registered iff src->cb != NULL; the timerfd is
 * armed iff the timer tree is non-empty, to the earliest deadline.
 */
#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/loop.h"
#include "common/time.h"

#define LOOP_BATCH 64

RB_HEAD(loop_timer_tree, loop_timer);

struct loop {
	int epfd;
	int tfd;
	uint64_t tfd_deadline;
	uint64_t timer_seq;
	size_t n_timers;
	struct loop_timer_tree timers;
	struct loop_source tsrc;
	struct epoll_event batch[LOOP_BATCH];
	int batch_len;
	int batch_pos;
};

static int
loop_timer_cmp(struct loop_timer *a, struct loop_timer *b)
{
	if (a->deadline_ns != b->deadline_ns)
		return a->deadline_ns < b->deadline_ns ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return 0;
}

RB_GENERATE_STATIC(loop_timer_tree, loop_timer, entry, loop_timer_cmp)

static void
loop_timerfd_update(struct loop *loop)
{
	struct loop_timer *first = RB_MIN(loop_timer_tree, &loop->timers);
	struct itimerspec its;
	uint64_t when = first != NULL ? first->deadline_ns : 0;

	if (when == loop->tfd_deadline)
		return;
	memset(&its, 0, sizeof(its));
	if (when != 0) {
		/* 0 would disarm: an already-due deadline is set to 1 ns. */
		uint64_t t = when == 0 ? 1 : when;

		its.it_value.tv_sec = (time_t)(t / NSEC_PER_SEC);
		its.it_value.tv_nsec = (long)(t % NSEC_PER_SEC);
	}
	timerfd_settime(loop->tfd, TFD_TIMER_ABSTIME, &its, NULL);
	loop->tfd_deadline = when;
}

static void
loop_timers_dispatch(struct loop_source *src, uint32_t revents)
{
	struct loop *loop = container_of(src, struct loop, tsrc);
	uint64_t expirations, now;
	struct loop_timer *t;

	(void)!read(loop->tfd, &expirations, sizeof(expirations));
	loop->tfd_deadline = 0;
	now = time_now_ns();
	while ((t = RB_MIN(loop_timer_tree, &loop->timers)) != NULL && t->deadline_ns <= now) {
		loop_timer_disarm(loop, t);
		t->cb(t, now);
	}
	loop_timerfd_update(loop);
}

int
loop_new(struct loop **loopp)
{
	struct loop *loop;
	int r;

	loop = calloc(1, sizeof(*loop));
	if (loop == NULL)
		return -ENOMEM;
	RB_INIT(&loop->timers);
	loop->tfd = -1;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		r = -errno;
		goto fail;
	}
	loop->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (loop->tfd < 0) {
		r = -errno;
		goto fail;
	}
	r = loop_add(loop, &loop->tsrc, loop->tfd, EPOLLIN, loop_timers_dispatch);
	if (r < 0)
		goto fail;
	*loopp = loop;
	return 0;
fail:
	loop_free(loop);
	return r;
}

struct loop *
loop_free(struct loop *loop)
{
	if (loop == NULL)
		return NULL;
	fd_close(loop->tfd);
	fd_close(loop->epfd);
	free(loop);
	return NULL;
}

int
loop_add(struct loop *loop, struct loop_source *src, int fd, uint32_t events, loop_source_fn cb)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	src->fd = fd;
	src->events = events;
	src->cb = cb;
	return 0;
}

int
loop_modify(struct loop *loop, struct loop_source *src, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	if (src->cb == NULL)
		return -EINVAL;
	if (src->events == events)
		return 0;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, src->fd, &ev) < 0)
		return -errno;
	src->events = events;
	return 0;
}

void
loop_remove(struct loop *loop, struct loop_source *src)
{
	if (src->cb == NULL)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, src->fd, NULL);
	for (int i = loop->batch_pos; i < loop->batch_len; i++)
		if (loop->batch[i].data.ptr == src)
			loop->batch[i].data.ptr = NULL;
	src->cb = NULL;
	src->fd = -1;
	src->events = 0;
}

bool
loop_source_active(const struct loop_source *src)
{
	return src->cb != NULL;
}

void
loop_timer_init(struct loop_timer *timer, loop_timer_fn cb)
{
	memset(timer, 0, sizeof(*timer));
	timer->cb = cb;
}

void
loop_timer_arm(struct loop *loop, struct loop_timer *timer, uint64_t deadline_ns)
{
	if (timer->armed) {
		if (timer->deadline_ns == deadline_ns)
			return;
		RB_REMOVE(loop_timer_tree, &loop->timers, timer);
		loop->n_timers--;
	}
	timer->deadline_ns = deadline_ns == 0 ? 1 : deadline_ns;
	timer->seq = ++loop->timer_seq;
	timer->armed = true;
	RB_INSERT(loop_timer_tree, &loop->timers, timer);
	loop->n_timers++;
	loop_timerfd_update(loop);
}

void
loop_timer_disarm(struct loop *loop, struct loop_timer *timer)
{
	if (!timer->armed)
		return;
	RB_REMOVE(loop_timer_tree, &loop->timers, timer);
	loop->n_timers--;
	timer->armed = false;
	loop_timerfd_update(loop);
}

size_t
loop_timer_count(const struct loop *loop)
{
	return loop->n_timers;
}

int
loop_run_once(struct loop *loop, int timeout_ms)
{
	int n;

	n = epoll_wait(loop->epfd, loop->batch, LOOP_BATCH, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	loop->batch_len = n;
	for (loop->batch_pos = 0; loop->batch_pos < loop->batch_len;) {
		struct epoll_event *ev = &loop->batch[loop->batch_pos++];
		struct loop_source *src = ev->data.ptr;

		if (src != NULL && src->cb != NULL)
			src->cb(src, ev->events);
	}
	loop->batch_len = loop->batch_pos = 0;
	return n;
}
