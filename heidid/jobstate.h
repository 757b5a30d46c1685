/*
 * jobstate.h: the job state machine, as pure decision logic (no I/O, no
 * clock): heidid feeds it events and carries out the actions it returns.
 *
 *   queued --start--> starting --started--> running
 *      |                  |                    |  \--stop--> stopping
 *      | cancel           | exit report (+ output drained) / shepherd lost
 *      v                  v                    v         v
 *                         done  <------------------------+
 *
 * A job is done only when both the shepherd's exit report (or the loss of
 * the shepherd) and the end of its output are in: all output is delivered
 * before the exit event.
 */
#ifndef HEIDI_HEIDID_JOBSTATE_H
#define HEIDI_HEIDID_JOBSTATE_H

#include <stdbool.h>

enum job_state {
	JOB_QUEUED,
	JOB_STARTING,
	JOB_RUNNING,
	JOB_STOPPING,
	JOB_DONE,
};

enum job_event {
	JEV_START,          /* the scheduler picked it */
	JEV_STARTED,        /* the shepherd reports the leader running (pipes attached) */
	JEV_STOP,           /* stop requested (stop, timeout of shutdown) */
	JEV_CANCEL,         /* removed before it ran (kill/stop of a queued job, shutdown) */
	JEV_EXIT_REPORT,    /* the shepherd's final report */
	JEV_SHEPHERD_LOST,  /* channel hung up without a report */
	JEV_OUTPUT_DRAINED, /* both output pipes at their end */
};

enum job_action {
	JACT_SPAWN = 1 << 0,     /* start a shepherd and send the spec */
	JACT_SEND_STOP = 1 << 1, /* ask the shepherd to stop the tree */
	JACT_KILL_TREE = 1 << 2, /* kill the tree ourselves (dual safety) */
	JACT_FINISH = 1 << 3,    /* record the end, emit exit, answer waiters */
};

struct job_fsm {
	enum job_state state;
	bool exit_reported;
	bool shepherd_lost;
	bool drained;      /* output pipes at their end (or never opened) */
	bool stop_sent;
};

void job_fsm_init(struct job_fsm *f);
/* Apply ev: 0 with *actionsp set, or -EINVAL for an event that makes no sense now. */
int job_fsm_apply(struct job_fsm *f, enum job_event ev, unsigned *actionsp);
const char *job_state_name(enum job_state s);
bool job_state_active(enum job_state s); /* starting, running or stopping */

#endif
