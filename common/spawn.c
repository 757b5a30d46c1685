/*
 * spawn.c: posix_spawn with a precise fd map.
 *
 * Each source fd is first duplicated (close-on-exec) above every target
 * number so that dup2() in the child never sees from == to (where the
 * close-on-exec flag would survive on older libcs) and never clobbers a
 * source that is also a target.  closefrom then drops everything else,
 * including fds a test harness left open without FD_CLOEXEC.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/spawn.h"

#define SPAWN_MAX_FDS 8

int
spawn_program(pid_t *pidp, const char *path, char *const argv[], char *const envp[],
    const struct spawn_opts *opts)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int tmp[SPAWN_MAX_FDS];
	int maxto = 2, r = 0;
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	size_t n = opts != NULL ? opts->n_fds : 0;

	if (n > SPAWN_MAX_FDS)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		maxto = MAX(maxto, opts->fds[i].to);
	for (size_t i = 0; i < n; i++)
		tmp[i] = -1;
	for (size_t i = 0; i < n; i++) {
		tmp[i] = fcntl(opts->fds[i].from, F_DUPFD_CLOEXEC, maxto + 1);
		if (tmp[i] < 0) {
			r = -errno;
			goto out_tmp;
		}
	}

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	for (size_t i = 0; i < n; i++)
		posix_spawn_file_actions_adddup2(&fa, tmp[i], opts->fds[i].to);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	posix_spawn_file_actions_addclosefrom_np(&fa, maxto + 1);
#endif
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	if (opts != NULL && opts->setsid)
		flags |= POSIX_SPAWN_SETSID;
	posix_spawnattr_setflags(&attr, flags);

	r = -posix_spawn(pidp, path, &fa, &attr, argv, envp);

	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
out_tmp:
	for (size_t i = 0; i < n; i++)
		fd_close(tmp[i]);
	return r;
}

int
spawn_self_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (slash == NULL)
		return -EINVAL;
	slash[1] = '\0';
	return 0;
}
