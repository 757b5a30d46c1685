/*
 * test-loop.c: the epoll reactor (common/loop.h): sources, removal during
 * dispatch, timers and the single timerfd that is armed only while a timer
 * is pending.
 *
 * Readiness comes from pipes written before loop_run_once, so a batch
 * holds every event at once; timers use deadlines already in the past
 * where the test is about ordering rather than waiting.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/loop.h"
#include "common/time.h"

static struct loop *L;

static void
setup(void)
{
	cr_assert_eq(loop_new(&L), 0);
}

static void
teardown(void)
{
	L = loop_free(L);
}

TestSuite(loop, .init = setup, .fini = teardown);

/* A pipe whose read end is a source. */
struct pipe_src {
	struct loop_source src;
	int rd, wr;
	int calls;
	uint32_t last;
	struct pipe_src *other; /* for the cross-removal test */
	bool removed_early;     /* set if dispatched after its removal */
};

static void
pipe_src_open(struct pipe_src *p)
{
	int fds[2];

	memset(p, 0, sizeof(*p));
	cr_assert_eq(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
	p->rd = fds[0];
	p->wr = fds[1];
}

static void
pipe_src_close(struct pipe_src *p)
{
	loop_remove(L, &p->src);
	close(p->rd);
	close(p->wr);
}

static void
make_readable(struct pipe_src *p)
{
	cr_assert_eq(write(p->wr, "x", 1), 1);
}

static void
count_cb(struct loop_source *src, uint32_t revents)
{
	struct pipe_src *p = container_of(src, struct pipe_src, src);

	p->calls++;
	p->last = revents;
}

Test(loop, dispatches_readable_source_with_container_of, .timeout = 30)
{
	struct pipe_src p;

	pipe_src_open(&p);
	cr_assert_eq(loop_add(L, &p.src, p.rd, EPOLLIN, count_cb), 0);
	cr_assert(loop_source_active(&p.src));
	cr_assert_geq(loop_run_once(L, 0), 0);
	cr_assert_eq(p.calls, 0, "dispatched without an event");
	make_readable(&p);
	cr_assert_geq(loop_run_once(L, 1000), 0);
	cr_assert_eq(p.calls, 1);
	cr_assert(p.last & EPOLLIN);
	/* level-triggered: still readable, dispatched again */
	cr_assert_geq(loop_run_once(L, 1000), 0);
	cr_assert_eq(p.calls, 2);
	pipe_src_close(&p);
}

Test(loop, run_once_returns_the_number_of_events_dispatched, .timeout = 30)
{
	struct pipe_src a, b;

	pipe_src_open(&a);
	pipe_src_open(&b);
	cr_assert_eq(loop_add(L, &a.src, a.rd, EPOLLIN, count_cb), 0);
	cr_assert_eq(loop_add(L, &b.src, b.rd, EPOLLIN, count_cb), 0);
	/* nothing pending: a zero timeout returns 0 at once (heidid refills its pool then) */
	cr_assert_eq(loop_run_once(L, 0), 0);
	make_readable(&a);
	make_readable(&b);
	cr_assert_eq(loop_run_once(L, 1000), 2);
	pipe_src_close(&a);
	pipe_src_close(&b);
}

Test(loop, add_rejects_bad_fd)
{
	struct loop_source src;

	memset(&src, 0, sizeof(src));
	cr_assert_lt(loop_add(L, &src, -1, EPOLLIN, count_cb), 0);
	cr_assert_not(loop_source_active(&src));
}

Test(loop, modify_switches_interest, .timeout = 30)
{
	struct pipe_src p;

	pipe_src_open(&p);
	/* the write end of an empty pipe is writable */
	cr_assert_eq(loop_add(L, &p.src, p.wr, EPOLLIN, count_cb), 0);
	cr_assert_geq(loop_run_once(L, 0), 0);
	cr_assert_eq(p.calls, 0);
	cr_assert_eq(loop_modify(L, &p.src, EPOLLOUT), 0);
	cr_assert_geq(loop_run_once(L, 1000), 0);
	cr_assert_eq(p.calls, 1);
	cr_assert(p.last & EPOLLOUT);
	cr_assert_eq(loop_modify(L, &p.src, EPOLLIN), 0);
	cr_assert_geq(loop_run_once(L, 0), 0);
	cr_assert_eq(p.calls, 1);
	pipe_src_close(&p);
}

Test(loop, removed_source_is_not_dispatched, .timeout = 30)
{
	struct pipe_src p;

	pipe_src_open(&p);
	cr_assert_eq(loop_add(L, &p.src, p.rd, EPOLLIN, count_cb), 0);
	make_readable(&p);
	loop_remove(L, &p.src);
	cr_assert_not(loop_source_active(&p.src));
	cr_assert_geq(loop_run_once(L, 0), 0);
	cr_assert_eq(p.calls, 0);
	/* removing twice is a no-op, and the source can be added again */
	loop_remove(L, &p.src);
	cr_assert_eq(loop_modify(L, &p.src, EPOLLIN), -EINVAL);
	cr_assert_eq(loop_add(L, &p.src, p.rd, EPOLLIN, count_cb), 0);
	cr_assert_geq(loop_run_once(L, 1000), 0);
	cr_assert_eq(p.calls, 1);
	pipe_src_close(&p);
}

static void
remove_self_cb(struct loop_source *src, uint32_t revents)
{
	struct pipe_src *p = container_of(src, struct pipe_src, src);

	p->calls++;
	loop_remove(L, src);
}

Test(loop, source_may_remove_itself_during_dispatch, .timeout = 30)
{
	struct pipe_src p;

	pipe_src_open(&p);
	cr_assert_eq(loop_add(L, &p.src, p.rd, EPOLLIN, remove_self_cb), 0);
	make_readable(&p);
	cr_assert_geq(loop_run_once(L, 1000), 0);
	cr_assert_eq(p.calls, 1);
	cr_assert_not(loop_source_active(&p.src));
	cr_assert_geq(loop_run_once(L, 0), 0);
	cr_assert_eq(p.calls, 1);
	pipe_src_close(&p);
}

/* What a freed-and-reused source would call: records the use after removal. */
static void
poison_cb(struct loop_source *src, uint32_t revents)
{
	struct pipe_src *p = container_of(src, struct pipe_src, src);

	p->removed_early = true;
}

/*
 * Remove the partner source, whose event is pending in the same batch,
 * then scribble over it as if its owner had freed and reused the memory.
 */
static void
remove_other_cb(struct loop_source *src, uint32_t revents)
{
	struct pipe_src *p = container_of(src, struct pipe_src, src);
	struct pipe_src *o = p->other;

	p->calls++;
	if (loop_source_active(&o->src)) {
		loop_remove(L, &o->src);
		o->src.cb = poison_cb;
		o->src.fd = o->rd;
	}
}

Test(loop, removing_a_source_drops_its_pending_event_in_the_same_batch, .timeout = 30)
{
	struct pipe_src a, b;

	pipe_src_open(&a);
	pipe_src_open(&b);
	a.other = &b;
	b.other = &a;
	cr_assert_eq(loop_add(L, &a.src, a.rd, EPOLLIN, remove_other_cb), 0);
	cr_assert_eq(loop_add(L, &b.src, b.rd, EPOLLIN, remove_other_cb), 0);
	/* both readable before the wait: one batch holds both events */
	make_readable(&a);
	make_readable(&b);
	cr_assert_geq(loop_run_once(L, 1000), 0);
	/* whichever ran first removed the other */
	cr_assert_eq(a.calls + b.calls, 1, "a %d, b %d", a.calls, b.calls);
	cr_assert_not(a.removed_early);
	cr_assert_not(b.removed_early);
	cr_assert_geq(loop_run_once(L, 0), 0);
	cr_assert_not(a.removed_early);
	cr_assert_not(b.removed_early);
	cr_assert_eq(a.calls + b.calls, 2, "the survivor is still dispatched");
	a.src.cb = b.src.cb = NULL; /* undo the scribbling before cleanup */
	loop_remove(L, &a.src);
	loop_remove(L, &b.src);
	close(a.rd);
	close(a.wr);
	close(b.rd);
	close(b.wr);
}

/* Many sources, each removing all the others: exactly one callback runs. */
static struct pipe_src many[16];

static void
remove_all_cb(struct loop_source *src, uint32_t revents)
{
	struct pipe_src *p = container_of(src, struct pipe_src, src);

	p->calls++;
	for (size_t i = 0; i < 16; i++)
		if (&many[i] != p && loop_source_active(&many[i].src)) {
			loop_remove(L, &many[i].src);
			many[i].src.cb = poison_cb;
		}
}

Test(loop, removing_many_pending_sources_from_one_callback, .timeout = 30)
{
	int total = 0;

	for (size_t i = 0; i < 16; i++) {
		pipe_src_open(&many[i]);
		cr_assert_eq(loop_add(L, &many[i].src, many[i].rd, EPOLLIN, remove_all_cb), 0);
		make_readable(&many[i]);
	}
	cr_assert_geq(loop_run_once(L, 1000), 0);
	for (size_t i = 0; i < 16; i++) {
		total += many[i].calls;
		cr_assert_not(many[i].removed_early, "source %zu dispatched after removal", i);
	}
	cr_assert_eq(total, 1);
	for (size_t i = 0; i < 16; i++) {
		if (many[i].calls == 0)
			many[i].src.cb = NULL;
		pipe_src_close(&many[i]);
	}
}

/* ---- timers ---------------------------------------------------------------- */

struct rec_timer {
	struct loop_timer t;
	int id;
	uint64_t fired_at;
};

static int order[16];
static int n_order;

static void
record_cb(struct loop_timer *timer, uint64_t now_ns)
{
	struct rec_timer *r = container_of(timer, struct rec_timer, t);

	cr_assert_lt(n_order, 16);
	order[n_order++] = r->id;
	r->fired_at = now_ns;
}

/* Run the loop until n timers have fired (or give up after a bound). */
static void
run_until_fired(int n)
{
	for (int i = 0; i < 100 && n_order < n; i++)
		cr_assert_geq(loop_run_once(L, 1000), 0);
	cr_assert_eq(n_order, n, "%d timers fired, want %d", n_order, n);
}

Test(loop, due_timers_fire_in_deadline_order, .timeout = 30)
{
	struct rec_timer t[4];
	uint64_t now = time_now_ns();
	/* armed out of order; all already due */
	uint64_t when[4] = { now - 3000, now - 1000, now - 4000, now - 2000 };

	n_order = 0;
	for (int i = 0; i < 4; i++) {
		loop_timer_init(&t[i].t, record_cb);
		t[i].id = i;
		loop_timer_arm(L, &t[i].t, when[i]);
	}
	cr_assert_eq(loop_timer_count(L), 4);
	run_until_fired(4);
	cr_assert_eq(order[0], 2);
	cr_assert_eq(order[1], 0);
	cr_assert_eq(order[2], 3);
	cr_assert_eq(order[3], 1);
	cr_assert_eq(loop_timer_count(L), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_not(t[i].t.armed);
}

Test(loop, equal_deadlines_fire_in_arming_order, .timeout = 30)
{
	struct rec_timer t[5];
	uint64_t when = time_now_ns() - 1000;

	n_order = 0;
	for (int i = 0; i < 5; i++) {
		loop_timer_init(&t[i].t, record_cb);
		t[i].id = i;
	}
	/* arm 3, 1, 4, 0, 2 */
	loop_timer_arm(L, &t[3].t, when);
	loop_timer_arm(L, &t[1].t, when);
	loop_timer_arm(L, &t[4].t, when);
	loop_timer_arm(L, &t[0].t, when);
	loop_timer_arm(L, &t[2].t, when);
	run_until_fired(5);
	cr_assert_eq(order[0], 3);
	cr_assert_eq(order[1], 1);
	cr_assert_eq(order[2], 4);
	cr_assert_eq(order[3], 0);
	cr_assert_eq(order[4], 2);
}

Test(loop, future_timer_waits_for_its_deadline, .timeout = 30)
{
	struct rec_timer a, b;
	uint64_t start = time_now_ns();

	n_order = 0;
	loop_timer_init(&a.t, record_cb);
	loop_timer_init(&b.t, record_cb);
	a.id = 1;
	b.id = 2;
	loop_timer_arm(L, &a.t, start + 20 * NSEC_PER_MSEC);
	loop_timer_arm(L, &b.t, start + 3600 * NSEC_PER_SEC);
	run_until_fired(1);
	cr_assert_eq(order[0], 1);
	cr_assert_geq(a.fired_at, start + 20 * NSEC_PER_MSEC, "fired early");
	cr_assert_eq(loop_timer_count(L), 1);
	/* the far timer does not fire in a short wait */
	cr_assert_geq(loop_run_once(L, 10), 0);
	cr_assert_eq(n_order, 1);
	loop_timer_disarm(L, &b.t);
}

Test(loop, rearming_moves_a_timer, .timeout = 30)
{
	struct rec_timer a, b;
	uint64_t now = time_now_ns();

	n_order = 0;
	loop_timer_init(&a.t, record_cb);
	loop_timer_init(&b.t, record_cb);
	a.id = 1;
	b.id = 2;
	loop_timer_arm(L, &a.t, now - 2000);
	loop_timer_arm(L, &b.t, now - 1000);
	/* move a behind b, and re-arm b at the same time (no-op) */
	loop_timer_arm(L, &a.t, now - 500);
	loop_timer_arm(L, &b.t, now - 1000);
	cr_assert_eq(loop_timer_count(L), 2);
	run_until_fired(2);
	cr_assert_eq(order[0], 2);
	cr_assert_eq(order[1], 1);
}

Test(loop, disarmed_timer_does_not_fire, .timeout = 30)
{
	struct rec_timer a, b;
	uint64_t now = time_now_ns();

	n_order = 0;
	loop_timer_init(&a.t, record_cb);
	loop_timer_init(&b.t, record_cb);
	a.id = 1;
	b.id = 2;
	loop_timer_arm(L, &a.t, now - 2000);
	loop_timer_arm(L, &b.t, now - 1000);
	loop_timer_disarm(L, &a.t);
	cr_assert_eq(loop_timer_count(L), 1);
	loop_timer_disarm(L, &a.t); /* twice: no-op */
	cr_assert_eq(loop_timer_count(L), 1);
	run_until_fired(1);
	cr_assert_eq(order[0], 2);
	cr_assert_geq(loop_run_once(L, 0), 0);
	cr_assert_eq(n_order, 1);
	cr_assert_eq(loop_timer_count(L), 0);
}

static struct rec_timer chain_b;

/* A timer callback may arm another timer (and the loop picks it up). */
static void
chain_cb(struct loop_timer *timer, uint64_t now_ns)
{
	record_cb(timer, now_ns);
	loop_timer_arm(L, &chain_b.t, now_ns - 1);
}

Test(loop, timer_callback_can_arm_another_timer, .timeout = 30)
{
	struct rec_timer a;

	n_order = 0;
	loop_timer_init(&a.t, chain_cb);
	loop_timer_init(&chain_b.t, record_cb);
	a.id = 1;
	chain_b.id = 2;
	loop_timer_arm(L, &a.t, time_now_ns() - 1000);
	run_until_fired(2);
	cr_assert_eq(order[0], 1);
	cr_assert_eq(order[1], 2);
	cr_assert_eq(loop_timer_count(L), 0);
}

/* ---- the timerfd is armed only while a timer is pending ---------------- */

/* Is fd a timerfd? */
static bool
is_timerfd(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[timerfd]") == 0;
}

/* The timerfd created by loop_new: the one timerfd of this process. */
static int
find_loop_timerfd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int found = -1, n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] != '.' && is_timerfd(fd)) {
			found = fd;
			n++;
		}
	}
	closedir(d);
	if (n != 1)
		cr_skip_test("expected exactly one timerfd in this process, found %d", n);
	return found;
}

/* Is the timerfd armed?  "it_value: (0, 0)" in fdinfo means disarmed. */
static bool
timerfd_armed(int fd)
{
	char path[64], line[256];
	FILE *f;
	long sec = -1, nsec = -1;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "it_value: (%ld, %ld)", &sec, &nsec) == 2)
			break;
	fclose(f);
	cr_assert_geq(sec, 0, "no it_value in %s", path);
	return sec != 0 || nsec != 0;
}

Test(loop, timerfd_is_disarmed_when_no_timer_is_pending, .timeout = 30)
{
	int tfd = find_loop_timerfd();
	struct rec_timer a, b;
	uint64_t now = time_now_ns();

	n_order = 0;
	cr_assert_eq(loop_timer_count(L), 0);
	cr_assert_not(timerfd_armed(tfd), "a fresh loop has an armed timerfd");

	loop_timer_init(&a.t, record_cb);
	loop_timer_init(&b.t, record_cb);
	loop_timer_arm(L, &a.t, now + 3600 * NSEC_PER_SEC);
	cr_assert(timerfd_armed(tfd));
	loop_timer_arm(L, &b.t, now + 7200 * NSEC_PER_SEC);
	loop_timer_disarm(L, &a.t);
	cr_assert_eq(loop_timer_count(L), 1);
	cr_assert(timerfd_armed(tfd), "disarming one of two timers disarmed the timerfd");
	loop_timer_disarm(L, &b.t);
	cr_assert_eq(loop_timer_count(L), 0);
	cr_assert_not(timerfd_armed(tfd), "no timer pending but the timerfd is armed");

	/* after a timer fires and nothing else is pending */
	loop_timer_arm(L, &a.t, now - 1000);
	run_until_fired(1);
	cr_assert_eq(loop_timer_count(L), 0);
	cr_assert_not(timerfd_armed(tfd));
	/* an idle loop does not wake up: nothing to dispatch */
	cr_assert_geq(loop_run_once(L, 0), 0);
	cr_assert_eq(n_order, 1);
}

Test(loop, timerfd_follows_the_earliest_deadline, .timeout = 30)
{
	int tfd = find_loop_timerfd();
	struct rec_timer far, near;
	uint64_t now = time_now_ns();

	n_order = 0;
	loop_timer_init(&far.t, record_cb);
	loop_timer_init(&near.t, record_cb);
	far.id = 1;
	near.id = 2;
	loop_timer_arm(L, &far.t, now + 3600 * NSEC_PER_SEC);
	/* an earlier timer must re-arm the timerfd, or it would fire an hour late */
	loop_timer_arm(L, &near.t, now + 10 * NSEC_PER_MSEC);
	cr_assert(timerfd_armed(tfd));
	run_until_fired(1);
	cr_assert_eq(order[0], 2);
	cr_assert(timerfd_armed(tfd), "the far timer is still pending");
	loop_timer_disarm(L, &far.t);
	cr_assert_not(timerfd_armed(tfd));
}
