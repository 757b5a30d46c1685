/*
 * sched.h: the scheduler, as pure decision logic (no I/O; `now` is an
 * argument).  FIFO in submission order, at most max_running at once, a
 * bounded queue, and a start-rate limit (token bucket, burst = rate) that
 * protects the host from fork storms.
 *
 * Items are embedded in their owner (struct job) and found again with
 * container_of.
 */
#ifndef HEIDI_HEIDID_SCHED_H
#define HEIDI_HEIDID_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

enum {
	SCHED_E_FULL = 1, /* the queue is at its cap */
};

struct sched_item {
	TAILQ_ENTRY(sched_item) entry;
	bool queued;
};

struct sched {
	TAILQ_HEAD(, sched_item) queue;
	size_t n_queued;
	size_t n_running;
	size_t max_running;
	size_t queue_cap;
	uint32_t rate;          /* starts per second; 0: unlimited */
	uint64_t tokens_milli;  /* token bucket, in thousandths of a start */
	uint64_t refill_ns;     /* when tokens were last refilled */
};

void sched_init(struct sched *s, size_t max_running, size_t queue_cap, uint32_t rate);
/* Queue an item: 0, or SCHED_E_FULL when it could neither start nor wait. */
int sched_submit(struct sched *s, struct sched_item *it);
/* Remove a queued item (cancel); no-op if it is not queued. */
void sched_cancel(struct sched *s, struct sched_item *it);
/*
 * The next item to start now (counted as running), or NULL.  When NULL
 * only because of the rate limit, *wake_atp is when to ask again, else 0.
 */
struct sched_item *sched_next(struct sched *s, uint64_t now_ns, uint64_t *wake_atp);
/* A started item ended. */
void sched_done(struct sched *s);

#endif
