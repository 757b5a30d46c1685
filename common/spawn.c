/*
 * spawn.c: vfork + exec with a precise fd map.
 *
 * Each source fd is first duplicated (close-on-exec) above every target
 * number so that dup2() in the child never sees from == to (which would
 * keep the close-on-exec flag) and never clobbers a source that is also a
 * target.  close_range then drops everything else, including fds a test
 * harness left open without FD_CLOEXEC.  glibc's posix_spawn would also
 * do this, but visits every signal's disposition in the child (64 system
 * calls while the daemon is suspended); callers of spawn_program keep all
 * dispositions at their default instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/spawn.h"

#define SPAWN_MAX_FDS 8

void
spawn_reset_signals(void)
{
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
}

/* Everything the vfork child needs, in one place (its address escapes). */
struct spawn_child {
	const char *path;
	char *const *argv;
	char *const *envp;
	int tmp[SPAWN_MAX_FDS];
	int to[SPAWN_MAX_FDS];
	size_t n;
	int maxto;
	bool setsid;
	volatile int error;
};

/*
 * The child of vfork: it borrows the parent's memory and stack until it
 * execs or exits, so it makes only system calls, and reports a failed
 * exec through a->error, which the parent reads once the child is gone.
 * It has its own signal dispositions (no CLONE_SIGHAND): resetting SIGPIPE
 * here does not touch the parent's.
 */
__attribute__((noinline, noreturn)) static void
spawn_child_run(struct spawn_child *a)
{
	sigset_t none;

	for (size_t i = 0; i < a->n; i++)
		if (dup2(a->tmp[i], a->to[i]) < 0)
			goto fail;
	/* the temporaries, and anything a caller left without CLOEXEC */
	if (syscall(SYS_close_range, a->maxto + 1, ~0U, 0) < 0)
		for (int fd = a->maxto + 1; fd < 1024; fd++)
			close(fd);
	if (a->setsid && setsid() < 0)
		goto fail;
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(a->path, a->argv, a->envp);
fail:
	a->error = errno;
	_exit(127);
}

/* vfork and exec; a->tmp is set up.  0 and *pidp, or -errno. */
__attribute__((noinline)) static int
spawn_vfork(struct spawn_child *a, pid_t *pidp)
{
	pid_t pid = vfork();

	if (pid == 0)
		spawn_child_run(a);
	if (pid < 0)
		return -errno;
	if (a->error != 0) {
		waitpid(pid, NULL, 0); /* it never ran: reap it here */
		return -a->error;
	}
	*pidp = pid;
	return 0;
}

int
spawn_program(pid_t *pidp, const char *path, char *const argv[], char *const envp[],
    const struct spawn_opts *opts)
{
	struct spawn_child a = {
		.path = path, .argv = argv, .envp = envp, .maxto = 2,
		.n = opts != NULL ? opts->n_fds : 0,
		.setsid = opts != NULL && opts->setsid,
	};
	int r = 0;

	if (a.n > SPAWN_MAX_FDS)
		return -EINVAL;
	for (size_t i = 0; i < a.n; i++) {
		a.to[i] = opts->fds[i].to;
		a.maxto = MAX(a.maxto, a.to[i]);
		a.tmp[i] = -1;
	}
	for (size_t i = 0; i < a.n && r == 0; i++) {
		a.tmp[i] = fcntl(opts->fds[i].from, F_DUPFD_CLOEXEC, a.maxto + 1);
		if (a.tmp[i] < 0)
			r = -errno;
	}
	if (r == 0)
		r = spawn_vfork(&a, pidp);
	for (size_t i = 0; i < a.n; i++)
		fd_close(a.tmp[i]);
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
