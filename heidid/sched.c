/*
 * sched.c: see sched.h.
 */
#include "heidid/sched.h"

#define NSEC 1000000000ULL

void
sched_init(struct sched *s, size_t max_running, size_t queue_cap, uint32_t rate)
{
	TAILQ_INIT(&s->queue);
	s->n_queued = s->n_running = 0;
	s->max_running = max_running ? max_running : 1;
	s->queue_cap = queue_cap;
	s->rate = rate;
	s->tokens_milli = (uint64_t)rate * 1000;
	s->refill_ns = 0;
}

int
sched_submit(struct sched *s, struct sched_item *it)
{
	size_t free_slots = s->max_running > s->n_running ? s->max_running - s->n_running : 0;

	/* Items that will start at once do not count against the queue cap. */
	if (s->n_queued + 1 > s->queue_cap + free_slots)
		return SCHED_E_FULL;
	TAILQ_INSERT_TAIL(&s->queue, it, entry);
	it->queued = true;
	s->n_queued++;
	return 0;
}

void
sched_cancel(struct sched *s, struct sched_item *it)
{
	if (!it->queued)
		return;
	TAILQ_REMOVE(&s->queue, it, entry);
	it->queued = false;
	s->n_queued--;
}

static void
refill(struct sched *s, uint64_t now)
{
	uint64_t max = (uint64_t)s->rate * 1000, add;

	if (s->refill_ns == 0 || now <= s->refill_ns || s->tokens_milli >= max) {
		s->refill_ns = now;
		return;
	}
	add = (now - s->refill_ns) * s->rate / (NSEC / 1000);
	if (s->tokens_milli + add >= max) {
		s->tokens_milli = max;
		s->refill_ns = now;
	} else {
		/* keep the fraction: advance only by the time the added tokens cover */
		s->tokens_milli += add;
		s->refill_ns += add * (NSEC / 1000) / s->rate;
	}
}

struct sched_item *
sched_next(struct sched *s, uint64_t now, uint64_t *wake_atp)
{
	struct sched_item *it = TAILQ_FIRST(&s->queue);

	*wake_atp = 0;
	if (it == NULL || s->n_running >= s->max_running)
		return NULL;
	if (s->rate > 0) {
		refill(s, now);
		if (s->tokens_milli < 1000) {
			/* time until one whole token has accumulated */
			*wake_atp = now + ((1000 - s->tokens_milli) * (NSEC / 1000) + s->rate - 1) / s->rate;
			return NULL;
		}
		s->tokens_milli -= 1000;
	}
	TAILQ_REMOVE(&s->queue, it, entry);
	it->queued = false;
	s->n_queued--;
	s->n_running++;
	return it;
}

void
sched_done(struct sched *s)
{
	if (s->n_running > 0)
		s->n_running--;
}
