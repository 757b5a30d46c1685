/*
 * leader.h: starting a job's leader, the shepherd's only child it makes
 * itself.
 *
 * Everything the child needs (argv, envp with the marker, the exec
 * candidates of a PATH search, cwd, its fds) is prepared before the clone,
 * so that the child only makes system calls: it may share the shepherd's
 * memory until it execs (CLONE_VM | CLONE_VFORK where available).
 */
#ifndef HEIDI_SHEPHERD_LEADER_H
#define HEIDI_SHEPHERD_LEADER_H

#include <sys/types.h>

#include "proto/shep.h"

/* Where a start failed, as reported in "exit" (docs/protocol.md §3.3). */
enum leader_stage { STAGE_EXEC, STAGE_CHDIR, STAGE_SETUP, STAGE_CGROUP };
extern const char *const leader_stage_names[];

/* What the child writes on the status pipe when it cannot exec. */
struct exec_fail {
	int error;
	int stage;
};

/* Build the child's argv, environment and exec candidates.  Exits on OOM. */
void leader_prepare(const struct shep_spec *sp);
/* The child's stdin, stdout, stderr, and the write end of the status pipe. */
void leader_set_fds(int in_fd, int out_fd, int err_fd, int status_wr);
/*
 * Start the leader in its own session, inside the cgroup cg_dir (-1: none)
 * before it runs any code of the job.  Its pid and a pidfd.  0 or -errno.
 */
int leader_start(int cg_dir, pid_t *pidp, int *pidfdp);
/* Close the fds given with leader_set_fds (the parent's copies). */
void leader_close_fds(void);
/* Forget the job: free what leader_prepare made. */
void leader_reset(void);

#endif
