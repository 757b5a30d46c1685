/*
 * test-jobstate.c: the job state machine (heidid/jobstate.h).
 *
 * Every transition of the diagram is driven with the actions it returns,
 * and every event is tried in every state to check what is rejected.  A
 * rejected event must leave the machine untouched.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "heidid/jobstate.h"

static const enum job_event all_events[] = { JEV_START, JEV_STARTED, JEV_STOP, JEV_CANCEL,
	JEV_EXIT_REPORT, JEV_SHEPHERD_LOST, JEV_OUTPUT_DRAINED };
#define N_EVENTS (sizeof(all_events) / sizeof(all_events[0]))

static const char *
ev_name(enum job_event ev)
{
	static const char *names[] = { "start", "started", "stop", "cancel", "exit_report",
		"shepherd_lost", "output_drained" };

	return (unsigned)ev < N_EVENTS ? names[ev] : "?";
}

/* Apply ev, which must be accepted, and check the resulting state and actions. */
static void
step(struct job_fsm *f, enum job_event ev, enum job_state want_state, unsigned want_act)
{
	unsigned act = 0xdead;
	int r = job_fsm_apply(f, ev, &act);

	cr_assert_eq(r, 0, "%s rejected in %s", ev_name(ev), job_state_name(f->state));
	cr_assert_eq(f->state, want_state, "%s: state %s, want %s", ev_name(ev),
	    job_state_name(f->state), job_state_name(want_state));
	cr_assert_eq(act, want_act, "%s: actions 0x%x, want 0x%x", ev_name(ev), act, want_act);
}

/* ev must be rejected with -EINVAL, no actions, and no change. */
static void
rejected(struct job_fsm *f, enum job_event ev)
{
	struct job_fsm before = *f;
	unsigned act = 0xdead;
	int r = job_fsm_apply(f, ev, &act);

	cr_assert_eq(r, -EINVAL, "%s accepted in %s", ev_name(ev), job_state_name(before.state));
	cr_assert_eq(act, 0, "%s rejected but actions 0x%x", ev_name(ev), act);
	cr_assert_eq(memcmp(&before, f, sizeof(before)), 0, "%s: rejected event changed the job",
	    ev_name(ev));
}

/* Machines in each state (by the shortest path). */
static struct job_fsm
queued(void)
{
	struct job_fsm f;

	job_fsm_init(&f);
	return f;
}

static struct job_fsm
starting(void)
{
	struct job_fsm f = queued();

	step(&f, JEV_START, JOB_STARTING, JACT_SPAWN);
	return f;
}

static struct job_fsm
running(void)
{
	struct job_fsm f = starting();

	step(&f, JEV_STARTED, JOB_RUNNING, 0);
	return f;
}

static struct job_fsm
stopping(void)
{
	struct job_fsm f = running();

	step(&f, JEV_STOP, JOB_STOPPING, JACT_SEND_STOP);
	return f;
}

/* ---- the diagram ----------------------------------------------------------- */

Test(jobstate, starts_queued_and_inactive)
{
	struct job_fsm f = queued();

	cr_assert_eq(f.state, JOB_QUEUED);
	cr_assert_not(f.exit_reported);
	cr_assert_not(f.shepherd_lost);
	cr_assert_not(f.stop_sent);
	cr_assert_not(job_state_active(JOB_QUEUED));
	cr_assert(job_state_active(JOB_STARTING));
	cr_assert(job_state_active(JOB_RUNNING));
	cr_assert(job_state_active(JOB_STOPPING));
	cr_assert_not(job_state_active(JOB_DONE));
}

Test(jobstate, state_names)
{
	cr_assert_str_eq(job_state_name(JOB_QUEUED), "queued");
	cr_assert_str_eq(job_state_name(JOB_STARTING), "starting");
	cr_assert_str_eq(job_state_name(JOB_RUNNING), "running");
	cr_assert_str_eq(job_state_name(JOB_STOPPING), "stopping");
	cr_assert_str_eq(job_state_name(JOB_DONE), "done");
}

Test(jobstate, queued_start_spawns)
{
	struct job_fsm f = queued();

	step(&f, JEV_START, JOB_STARTING, JACT_SPAWN);
}

Test(jobstate, queued_cancel_finishes_at_once)
{
	struct job_fsm f = queued();

	step(&f, JEV_CANCEL, JOB_DONE, JACT_FINISH);
}

Test(jobstate, starting_started_runs)
{
	struct job_fsm f = starting();

	step(&f, JEV_STARTED, JOB_RUNNING, 0);
}

Test(jobstate, running_stop_sends_stop)
{
	struct job_fsm f = running();

	step(&f, JEV_STOP, JOB_STOPPING, JACT_SEND_STOP);
	cr_assert(f.stop_sent);
}

Test(jobstate, stop_is_sent_only_once)
{
	struct job_fsm f = stopping();

	step(&f, JEV_STOP, JOB_STOPPING, 0);
	step(&f, JEV_STOP, JOB_STOPPING, 0);
}

Test(jobstate, stop_while_starting_is_sent_and_remembered)
{
	struct job_fsm f = starting();

	step(&f, JEV_STOP, JOB_STARTING, JACT_SEND_STOP);
	/* the leader comes up after the stop: straight to stopping */
	step(&f, JEV_STARTED, JOB_STOPPING, 0);
	step(&f, JEV_STOP, JOB_STOPPING, 0);
}

Test(jobstate, exec_failure_while_starting_finishes)
{
	/* no pipes were attached, so nothing to drain */
	struct job_fsm f = starting();

	step(&f, JEV_EXIT_REPORT, JOB_DONE, JACT_FINISH);
}

Test(jobstate, shepherd_lost_while_starting_kills_and_finishes)
{
	struct job_fsm f = starting();

	step(&f, JEV_SHEPHERD_LOST, JOB_DONE, JACT_KILL_TREE | JACT_FINISH);
}

/* ---- done only when (exit report or shepherd lost) and drained ------------- */

Test(jobstate, running_exit_then_drain_finishes_on_drain)
{
	struct job_fsm f = running();

	step(&f, JEV_EXIT_REPORT, JOB_RUNNING, 0);
	cr_assert(job_state_active(f.state), "not done before the output is drained");
	step(&f, JEV_OUTPUT_DRAINED, JOB_DONE, JACT_FINISH);
}

Test(jobstate, running_drain_then_exit_finishes_on_exit)
{
	struct job_fsm f = running();

	step(&f, JEV_OUTPUT_DRAINED, JOB_RUNNING, 0);
	step(&f, JEV_EXIT_REPORT, JOB_DONE, JACT_FINISH);
}

Test(jobstate, running_shepherd_lost_kills_then_finishes_on_drain)
{
	struct job_fsm f = running();

	step(&f, JEV_SHEPHERD_LOST, JOB_RUNNING, JACT_KILL_TREE);
	step(&f, JEV_OUTPUT_DRAINED, JOB_DONE, JACT_FINISH);
}

Test(jobstate, running_drain_then_shepherd_lost_finishes)
{
	struct job_fsm f = running();

	step(&f, JEV_OUTPUT_DRAINED, JOB_RUNNING, 0);
	step(&f, JEV_SHEPHERD_LOST, JOB_DONE, JACT_KILL_TREE | JACT_FINISH);
}

Test(jobstate, stopping_exit_and_drain_finish_in_either_order)
{
	struct job_fsm f = stopping();

	step(&f, JEV_EXIT_REPORT, JOB_STOPPING, 0);
	step(&f, JEV_OUTPUT_DRAINED, JOB_DONE, JACT_FINISH);

	f = stopping();
	step(&f, JEV_OUTPUT_DRAINED, JOB_STOPPING, 0);
	step(&f, JEV_EXIT_REPORT, JOB_DONE, JACT_FINISH);
}

Test(jobstate, stopping_shepherd_lost_kills_the_tree)
{
	struct job_fsm f = stopping();

	step(&f, JEV_SHEPHERD_LOST, JOB_STOPPING, JACT_KILL_TREE);
	step(&f, JEV_OUTPUT_DRAINED, JOB_DONE, JACT_FINISH);
}

Test(jobstate, stop_after_the_exit_report_does_nothing)
{
	struct job_fsm f = running();

	step(&f, JEV_EXIT_REPORT, JOB_RUNNING, 0);
	/* the tree is already gone: nothing to stop, still waiting for output */
	step(&f, JEV_STOP, JOB_RUNNING, 0);
	cr_assert_not(f.stop_sent);
	step(&f, JEV_OUTPUT_DRAINED, JOB_DONE, JACT_FINISH);
}

Test(jobstate, stop_after_shepherd_lost_does_nothing)
{
	struct job_fsm f = running();

	step(&f, JEV_SHEPHERD_LOST, JOB_RUNNING, JACT_KILL_TREE);
	step(&f, JEV_STOP, JOB_RUNNING, 0);
	step(&f, JEV_OUTPUT_DRAINED, JOB_DONE, JACT_FINISH);
}

Test(jobstate, finish_is_returned_exactly_once)
{
	struct job_fsm f = running();
	unsigned act;
	int finishes = 0;

	step(&f, JEV_EXIT_REPORT, JOB_RUNNING, 0);
	step(&f, JEV_OUTPUT_DRAINED, JOB_DONE, JACT_FINISH);
	for (size_t i = 0; i < N_EVENTS; i++) {
		act = 0;
		if (job_fsm_apply(&f, all_events[i], &act) == 0 && (act & JACT_FINISH))
			finishes++;
	}
	cr_assert_eq(finishes, 0);
}

/* ---- rejections --------------------------------------------------------------- */

Test(jobstate, queued_rejects_everything_but_start_and_cancel)
{
	struct job_fsm f = queued();

	rejected(&f, JEV_STARTED);
	rejected(&f, JEV_STOP);
	rejected(&f, JEV_EXIT_REPORT);
	rejected(&f, JEV_SHEPHERD_LOST);
	rejected(&f, JEV_OUTPUT_DRAINED);
	cr_assert_eq(f.state, JOB_QUEUED);
}

Test(jobstate, starting_rejects_start_cancel_and_drain)
{
	struct job_fsm f = starting();

	rejected(&f, JEV_START);
	rejected(&f, JEV_CANCEL);
	/* no pipes yet: there is nothing to drain */
	rejected(&f, JEV_OUTPUT_DRAINED);
}

Test(jobstate, running_rejects_start_started_and_cancel)
{
	struct job_fsm f = running();

	rejected(&f, JEV_START);
	rejected(&f, JEV_STARTED);
	rejected(&f, JEV_CANCEL);
}

Test(jobstate, stopping_rejects_start_started_and_cancel)
{
	struct job_fsm f = stopping();

	rejected(&f, JEV_START);
	rejected(&f, JEV_STARTED);
	rejected(&f, JEV_CANCEL);
}

Test(jobstate, repeated_end_events_are_rejected)
{
	struct job_fsm f = running();

	step(&f, JEV_EXIT_REPORT, JOB_RUNNING, 0);
	rejected(&f, JEV_EXIT_REPORT);
	rejected(&f, JEV_SHEPHERD_LOST);
	rejected(&f, JEV_STARTED);

	f = running();
	step(&f, JEV_SHEPHERD_LOST, JOB_RUNNING, JACT_KILL_TREE);
	rejected(&f, JEV_SHEPHERD_LOST);
	rejected(&f, JEV_EXIT_REPORT);

	f = running();
	step(&f, JEV_OUTPUT_DRAINED, JOB_RUNNING, 0);
	rejected(&f, JEV_OUTPUT_DRAINED);
}

Test(jobstate, started_after_the_end_is_rejected)
{
	struct job_fsm f = starting();

	step(&f, JEV_STOP, JOB_STARTING, JACT_SEND_STOP);
	step(&f, JEV_SHEPHERD_LOST, JOB_DONE, JACT_KILL_TREE | JACT_FINISH);
	rejected(&f, JEV_STARTED);
}

Test(jobstate, done_rejects_every_event)
{
	struct job_fsm paths[4];

	paths[0] = queued();
	step(&paths[0], JEV_CANCEL, JOB_DONE, JACT_FINISH);
	paths[1] = starting();
	step(&paths[1], JEV_EXIT_REPORT, JOB_DONE, JACT_FINISH);
	paths[2] = running();
	step(&paths[2], JEV_EXIT_REPORT, JOB_RUNNING, 0);
	step(&paths[2], JEV_OUTPUT_DRAINED, JOB_DONE, JACT_FINISH);
	paths[3] = stopping();
	step(&paths[3], JEV_SHEPHERD_LOST, JOB_STOPPING, JACT_KILL_TREE);
	step(&paths[3], JEV_OUTPUT_DRAINED, JOB_DONE, JACT_FINISH);
	for (size_t p = 0; p < 4; p++)
		for (size_t i = 0; i < N_EVENTS; i++)
			rejected(&paths[p], all_events[i]);
}

Test(jobstate, unknown_event_is_rejected)
{
	struct job_fsm f = running();

	rejected(&f, (enum job_event)99);
}
