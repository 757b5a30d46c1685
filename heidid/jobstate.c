/*
 * jobstate.c: see jobstate.h.  Every transition is listed in one switch;
 * anything not listed is rejected, so a confused peer cannot drive a job
 * into an impossible state.
 */
#include <errno.h>

#include "heidid/jobstate.h"

void
job_fsm_init(struct job_fsm *f)
{
	*f = (struct job_fsm){ .state = JOB_QUEUED };
}

const char *
job_state_name(enum job_state s)
{
	switch (s) {
	case JOB_QUEUED:
		return "queued";
	case JOB_STARTING:
		return "starting";
	case JOB_RUNNING:
		return "running";
	case JOB_STOPPING:
		return "stopping";
	case JOB_DONE:
		return "done";
	}
	return "unknown";
}

bool
job_state_active(enum job_state s)
{
	return s == JOB_STARTING || s == JOB_RUNNING || s == JOB_STOPPING;
}

/* Done once the end of the tree and the end of the output are both known. */
static unsigned
maybe_finish(struct job_fsm *f)
{
	if ((f->exit_reported || f->shepherd_lost) && f->drained) {
		f->state = JOB_DONE;
		return JACT_FINISH;
	}
	return 0;
}

int
job_fsm_apply(struct job_fsm *f, enum job_event ev, unsigned *actionsp)
{
	unsigned act = 0;

	*actionsp = 0;
	if (f->state == JOB_DONE)
		return -EINVAL;
	switch (ev) {
	case JEV_START:
		if (f->state != JOB_QUEUED)
			return -EINVAL;
		f->state = JOB_STARTING;
		f->drained = true; /* no pipes until started */
		act = JACT_SPAWN;
		break;
	case JEV_STARTED:
		if (f->state != JOB_STARTING || f->exit_reported || f->shepherd_lost)
			return -EINVAL;
		f->state = f->stop_sent ? JOB_STOPPING : JOB_RUNNING;
		f->drained = false;
		break;
	case JEV_STOP:
		if (f->state == JOB_QUEUED)
			return -EINVAL; /* a queued job is cancelled, not stopped */
		if (f->exit_reported || f->shepherd_lost)
			break;      /* already over: nothing to stop */
		if (!f->stop_sent)
			act = JACT_SEND_STOP;
		f->stop_sent = true;
		if (f->state == JOB_RUNNING)
			f->state = JOB_STOPPING;
		break;
	case JEV_CANCEL:
		if (f->state != JOB_QUEUED)
			return -EINVAL;
		f->state = JOB_DONE;
		act = JACT_FINISH;
		break;
	case JEV_EXIT_REPORT:
		if (f->state == JOB_QUEUED || f->exit_reported || f->shepherd_lost)
			return -EINVAL;
		f->exit_reported = true;
		act = maybe_finish(f);
		break;
	case JEV_SHEPHERD_LOST:
		if (f->state == JOB_QUEUED || f->exit_reported || f->shepherd_lost)
			return -EINVAL;
		f->shepherd_lost = true;
		act = JACT_KILL_TREE | maybe_finish(f);
		break;
	case JEV_OUTPUT_DRAINED:
		if (f->state == JOB_QUEUED || f->drained)
			return -EINVAL;
		f->drained = true;
		act = maybe_finish(f);
		break;
	default:
		return -EINVAL;
	}
	*actionsp = act;
	return 0;
}
