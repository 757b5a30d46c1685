/*
 * spawn.h: start a program with posix_spawn (CLONE_VM|CLONE_VFORK in
 * glibc: the caller's memory is never copied).  The child gets exactly
 * the fds of the map (0, 1, 2, and any extra such as the shepherd's
 * channel at 3), default signal dispositions and an empty signal mask.
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

/* Directory of the running executable (from /proc/self/exe), with a trailing '/'. */
int spawn_self_dir(char *buf, size_t len);

#endif
