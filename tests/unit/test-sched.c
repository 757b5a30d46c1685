/*
 * test-sched.c: the scheduler (heidid/sched.h) with injected time.
 *
 * Items are embedded in a struct job and found with container_of, as in
 * heidid.  Time starts at T0, far from zero like CLOCK_MONOTONIC.
 */
#include <criterion/criterion.h>
#include "common/util.h"
#include "heidid/sched.h"

#define SEC 1000000000ULL
#define MSEC 1000000ULL
#define T0 (1000 * SEC)

struct job {
	int id;
	struct sched_item item;
};

static struct job jobs[64];

static void
init_jobs(void)
{
	for (int i = 0; i < 64; i++)
		jobs[i] = (struct job){ .id = i };
}

TestSuite(sched, .init = init_jobs);

static void
submit_ok(struct sched *s, int id)
{
	cr_assert_eq(sched_submit(s, &jobs[id].item), 0, "job %d refused", id);
	cr_assert(jobs[id].item.queued);
}

/* The next job to start at now; -1 if none (wake_at returned in *wakep). */
static int
next_id(struct sched *s, uint64_t now, uint64_t *wakep)
{
	uint64_t wake = 0xdeadbeef;
	struct sched_item *it = sched_next(s, now, &wake);

	if (wakep != NULL)
		*wakep = wake;
	if (it == NULL)
		return -1;
	cr_assert_not(it->queued, "a started item is still marked queued");
	cr_assert_eq(wake, 0, "wake_at set although an item started");
	return container_of(it, struct job, item)->id;
}

/* ---- order and concurrency ---------------------------------------------------- */

Test(sched, starts_in_submission_order)
{
	struct sched s;

	sched_init(&s, 10, 100, 0);
	for (int i = 0; i < 5; i++)
		submit_ok(&s, i);
	cr_assert_eq(s.n_queued, 5);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(next_id(&s, T0, NULL), i);
	cr_assert_eq(next_id(&s, T0, NULL), -1);
	cr_assert_eq(s.n_queued, 0);
	cr_assert_eq(s.n_running, 5);
}

Test(sched, empty_queue_gives_nothing_and_no_wake_time)
{
	struct sched s;
	uint64_t wake;

	sched_init(&s, 2, 10, 5);
	cr_assert_eq(next_id(&s, T0, &wake), -1);
	cr_assert_eq(wake, 0);
}

Test(sched, caps_running_at_max_running)
{
	struct sched s;
	uint64_t wake;

	sched_init(&s, 2, 100, 0);
	for (int i = 0; i < 4; i++)
		submit_ok(&s, i);
	cr_assert_eq(next_id(&s, T0, NULL), 0);
	cr_assert_eq(next_id(&s, T0, NULL), 1);
	cr_assert_eq(next_id(&s, T0, &wake), -1);
	cr_assert_eq(wake, 0, "blocked by the cap, not by time: no wake time");
	cr_assert_eq(s.n_running, 2);
	cr_assert_eq(s.n_queued, 2);
}

Test(sched, done_frees_a_slot_for_the_next_in_line)
{
	struct sched s;

	sched_init(&s, 1, 100, 0);
	for (int i = 0; i < 3; i++)
		submit_ok(&s, i);
	cr_assert_eq(next_id(&s, T0, NULL), 0);
	cr_assert_eq(next_id(&s, T0, NULL), -1);
	sched_done(&s);
	cr_assert_eq(next_id(&s, T0, NULL), 1);
	cr_assert_eq(next_id(&s, T0, NULL), -1);
	sched_done(&s);
	cr_assert_eq(next_id(&s, T0, NULL), 2);
	sched_done(&s);
	cr_assert_eq(s.n_running, 0);
}

Test(sched, done_never_underflows)
{
	struct sched s;

	sched_init(&s, 1, 10, 0);
	sched_done(&s);
	cr_assert_eq(s.n_running, 0);
	submit_ok(&s, 0);
	submit_ok(&s, 1);
	cr_assert_eq(next_id(&s, T0, NULL), 0);
	cr_assert_eq(next_id(&s, T0, NULL), -1, "a spurious done let a second job run");
}

/* ---- the queue cap ------------------------------------------------------------ */

Test(sched, queue_cap_refuses_when_full)
{
	struct sched s;

	/* one can start at once, two may wait */
	sched_init(&s, 1, 2, 0);
	submit_ok(&s, 0);
	submit_ok(&s, 1);
	submit_ok(&s, 2);
	cr_assert_eq(sched_submit(&s, &jobs[3].item), SCHED_E_FULL);
	cr_assert_not(jobs[3].item.queued);
	cr_assert_eq(s.n_queued, 3);
	/* one starts: two wait, the queue is still full */
	cr_assert_eq(next_id(&s, T0, NULL), 0);
	cr_assert_eq(sched_submit(&s, &jobs[3].item), SCHED_E_FULL);
	/* it ends: a slot is free again, so one more fits */
	sched_done(&s);
	submit_ok(&s, 3);
	cr_assert_eq(sched_submit(&s, &jobs[4].item), SCHED_E_FULL);
	/* FIFO kept across refusals */
	cr_assert_eq(next_id(&s, T0, NULL), 1);
}

Test(sched, items_that_start_at_once_do_not_count_against_the_cap)
{
	struct sched s;

	/* a zero-length queue still accepts what can run right away */
	sched_init(&s, 3, 0, 0);
	submit_ok(&s, 0);
	submit_ok(&s, 1);
	submit_ok(&s, 2);
	cr_assert_eq(sched_submit(&s, &jobs[3].item), SCHED_E_FULL);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(next_id(&s, T0, NULL), i);
	cr_assert_eq(sched_submit(&s, &jobs[3].item), SCHED_E_FULL, "all slots busy, no queue");
	sched_done(&s);
	submit_ok(&s, 3);
}

Test(sched, cancel_removes_a_queued_item)
{
	struct sched s;

	sched_init(&s, 10, 100, 0);
	for (int i = 0; i < 4; i++)
		submit_ok(&s, i);
	sched_cancel(&s, &jobs[1].item);
	cr_assert_not(jobs[1].item.queued);
	cr_assert_eq(s.n_queued, 3);
	sched_cancel(&s, &jobs[1].item); /* twice: no-op */
	cr_assert_eq(s.n_queued, 3);
	sched_cancel(&s, &jobs[0].item); /* the head */
	sched_cancel(&s, &jobs[3].item); /* the tail */
	cr_assert_eq(next_id(&s, T0, NULL), 2);
	cr_assert_eq(next_id(&s, T0, NULL), -1);
}

Test(sched, cancel_of_a_started_item_is_a_no_op)
{
	struct sched s;

	sched_init(&s, 10, 100, 0);
	submit_ok(&s, 0);
	submit_ok(&s, 1);
	cr_assert_eq(next_id(&s, T0, NULL), 0);
	sched_cancel(&s, &jobs[0].item);
	cr_assert_eq(s.n_queued, 1);
	cr_assert_eq(s.n_running, 1);
	cr_assert_eq(next_id(&s, T0, NULL), 1);
}

Test(sched, cancel_frees_queue_space)
{
	struct sched s;

	sched_init(&s, 1, 1, 0);
	submit_ok(&s, 0);
	submit_ok(&s, 1);
	cr_assert_eq(next_id(&s, T0, NULL), 0);
	cr_assert_eq(sched_submit(&s, &jobs[2].item), SCHED_E_FULL);
	sched_cancel(&s, &jobs[1].item);
	submit_ok(&s, 2);
}

/* ---- the start-rate limit ---------------------------------------------------------- */

Test(sched, rate_allows_a_burst_of_rate_starts)
{
	struct sched s;
	uint64_t wake;

	sched_init(&s, 50, 100, 3);
	for (int i = 0; i < 10; i++)
		submit_ok(&s, i);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(next_id(&s, T0, NULL), i);
	cr_assert_eq(next_id(&s, T0, &wake), -1);
	cr_assert_neq(wake, 0, "rate-limited but no wake time");
	cr_assert_gt(wake, T0);
}

Test(sched, wake_at_is_when_one_token_has_accumulated)
{
	struct sched s;
	uint64_t wake;

	sched_init(&s, 50, 100, 2);
	for (int i = 0; i < 5; i++)
		submit_ok(&s, i);
	cr_assert_eq(next_id(&s, T0, NULL), 0);
	cr_assert_eq(next_id(&s, T0, NULL), 1);
	cr_assert_eq(next_id(&s, T0, &wake), -1);
	/* 2 per second: one token every 500 ms */
	cr_assert_eq(wake, T0 + 500 * MSEC);
	/* asking exactly then starts the next one */
	cr_assert_eq(next_id(&s, wake, NULL), 2);
	cr_assert_eq(next_id(&s, wake, &wake), -1);
	cr_assert_eq(wake, T0 + 1000 * MSEC);
}

Test(sched, wake_at_rounds_up)
{
	struct sched s;
	uint64_t wake;

	/* 1e9 / 3 is not whole: waking early would find no token */
	sched_init(&s, 50, 100, 3);
	for (int i = 0; i < 5; i++)
		submit_ok(&s, i);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(next_id(&s, T0, NULL), i);
	cr_assert_eq(next_id(&s, T0, &wake), -1);
	cr_assert_geq(wake, T0 + SEC / 3);
	cr_assert_leq(wake, T0 + SEC / 3 + 1);
	cr_assert_eq(next_id(&s, wake, NULL), 3);
}

Test(sched, rate_refills_over_time_up_to_the_burst)
{
	struct sched s;
	int started = 0;

	sched_init(&s, 64, 100, 4);
	for (int i = 0; i < 40; i++)
		submit_ok(&s, i);
	while (next_id(&s, T0, NULL) >= 0)
		started++;
	cr_assert_eq(started, 4);
	/* half a second: two tokens */
	started = 0;
	while (next_id(&s, T0 + SEC / 2, NULL) >= 0)
		started++;
	cr_assert_eq(started, 2);
	/* a long idle time refills only up to the burst */
	started = 0;
	while (next_id(&s, T0 + 100 * SEC, NULL) >= 0)
		started++;
	cr_assert_eq(started, 4);
}

Test(sched, frequent_polling_does_not_lose_refill)
{
	struct sched s;
	uint64_t wake, t;
	int got = -1;

	/* heidid asks on every loop iteration, which may be far more often than the rate */
	sched_init(&s, 50, 100, 1);
	submit_ok(&s, 0);
	submit_ok(&s, 1);
	cr_assert_eq(next_id(&s, T0, NULL), 0);
	cr_assert_eq(next_id(&s, T0, &wake), -1);
	cr_assert_eq(wake, T0 + SEC);
	/* poll every 100 us until the promised wake time */
	for (t = T0 + 100000; t <= wake && got < 0; t += 100000)
		got = next_id(&s, t, NULL);
	cr_assert_eq(got, 1, "no start by the wake time %llu after polling every 100 us",
	    (unsigned long long)wake);
}

Test(sched, rate_limit_does_not_bypass_max_running)
{
	struct sched s;
	uint64_t wake;

	sched_init(&s, 1, 100, 100);
	submit_ok(&s, 0);
	submit_ok(&s, 1);
	cr_assert_eq(next_id(&s, T0, NULL), 0);
	cr_assert_eq(next_id(&s, T0, &wake), -1);
	cr_assert_eq(wake, 0, "blocked by max_running: no wake time");
}

Test(sched, zero_rate_means_unlimited)
{
	struct sched s;

	sched_init(&s, 64, 100, 0);
	for (int i = 0; i < 64; i++)
		submit_ok(&s, i);
	for (int i = 0; i < 64; i++)
		cr_assert_eq(next_id(&s, T0, NULL), i);
}
