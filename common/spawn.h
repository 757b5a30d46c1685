/*
 * spawn.h: start a program with vfork (the caller's memory is shared,
 * never copied, and the caller is suspended until the child has exec'd).
 * The child gets exactly the fds of the map (0, 1, 2, and any extra such
 * as the shepherd's channel at 3), an empty signal mask and SIGPIPE at its
 * default.  Callers keep every other signal at its default disposition
 * (spawn_reset_signals at start-up), so nothing else needs resetting: the
 * child's work before exec is a handful of system calls.
 */
#ifndef HEIDI_COMMON_SPAWN_H
#define HEIDI_COMMON_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct spawn_fd {
	int from; /* fd in the caller */
	int to;   /* fd number in the child */
};

struct spawn_opts {
	const struct spawn_fd *fds;
	size_t n_fds;
	bool setsid;
};

/* 0 and *pidp, or -errno (exec failures such as -ENOENT are reported here). */
int spawn_program(pid_t *pidp, const char *path, char *const argv[], char *const envp[],
    const struct spawn_opts *opts);

/*
 * Run fn (which never returns) in a new child that is a member of the
 * cgroup cg_dir (-1: ours) before it runs any of fn's code; *pidp and a
 * pidfd in *pidfdp.  With clone3 (Linux 5.7+) the child is cloned into
 * the cgroup; on x86-64 it also shares our memory until it execs or exits
 * (CLONE_VM | CLONE_VFORK, we are suspended meanwhile), so fn must make
 * system calls only.  Without clone3, or with use_clone3 false, a
 * fork-like clone waits on a pipe until we have written its pid into
 * cgroup.procs.  0, or -errno; if the move into the cgroup fails, the
 * child is killed and *pidp and *pidfdp are still set for the caller to reap.
 */
int spawn_clone_into(int cg_dir, bool use_clone3, void (*fn)(void), pid_t *pidp, int *pidfdp);

/* Every signal (but KILL and STOP) back to its default disposition: call at start-up. */
void spawn_reset_signals(void);

/* Directory of the running executable (from /proc/self/exe), with a trailing '/'. */
int spawn_self_dir(char *buf, size_t len);

#endif
