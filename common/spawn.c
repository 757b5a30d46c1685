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
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cgroup.h"
#include "common/fd.h"
#include "common/proc.h"
#include "common/spawn.h"

#define SPAWN_MAX_FDS 8
#define CLONE_STACK (64u << 10)

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

/* ---- a child in a cgroup ---- */

/* What the clone's child runs (one clone at a time: the callers are single-threaded). */
static struct {
	void (*fn)(void);
	int sync_rd; /* the fallback: wait here until we are in the cgroup */
} CL = { NULL, -1 };

/*
 * The child runs on a stack of its own: AddressSanitizer would take the
 * switch for a corrupt stack before a noreturn call, and has nothing to
 * check here.
 */
__attribute__((noreturn, no_sanitize("address"))) static void
clone_child(void)
{
	char c;

	if (CL.sync_rd >= 0 && read(CL.sync_rd, &c, 1) != 1)
		_exit(126); /* the parent could not move us: run nothing */
	CL.fn();
	_exit(126);
}

#if defined(__x86_64__)
/*
 * clone3 with the child on its own stack: it calls fn, which never
 * returns.  The parent gets the pid or -errno.  (No libc wrapper exists:
 * glibc's clone3 is internal.)
 */
static long
clone3_run(struct clone_args *args, void (*fn)(void))
{
	register void (*r12)(void) __asm__("r12") = fn;
	long ret;

	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "call *%%r12\n\t"
			 "ud2\n"
			 "1:"
			 : "=a"(ret)
			 : "0"((long)SYS_clone3), "D"(args), "S"(sizeof(*args)), "r"(r12)
			 : "rcx", "r11", "memory");
	return ret;
}

static char clone_stack[CLONE_STACK] __attribute__((aligned(16)));
#endif

int
spawn_clone_into(int cg_dir, bool use_clone3, void (*fn)(void), pid_t *pidp, int *pidfdp)
{
	struct clone_args args;
	int sync[2] = { -1, -1 }, pidfd = -1, r = 0;
	long pid = -1;

	CL.fn = fn;
	CL.sync_rd = -1;
	memset(&args, 0, sizeof(args));
	args.flags = CLONE_PIDFD | (cg_dir >= 0 ? CLONE_INTO_CGROUP : 0);
	args.pidfd = (uint64_t)(uintptr_t)&pidfd;
	args.exit_signal = SIGCHLD;
	args.cgroup = cg_dir >= 0 ? (uint64_t)cg_dir : 0;
	if (use_clone3) {
#if defined(__x86_64__)
		/* we wait (CLONE_VFORK) until the child has exec'd or exited */
		args.flags |= CLONE_VM | CLONE_VFORK;
		args.stack = (uint64_t)(uintptr_t)clone_stack;
		args.stack_size = sizeof(clone_stack);
		pid = clone3_run(&args, clone_child);
		if (pid < 0) {
			errno = (int)-pid;
			pid = -1;
		}
#else
		pid = syscall(SYS_clone3, &args, sizeof(args));
		if (pid == 0)
			clone_child();
#endif
	}
	if (pid < 0 && (!use_clone3 || errno == ENOSYS || errno == E2BIG || errno == EINVAL)) {
		if (cg_dir >= 0 && pipe2(sync, O_CLOEXEC) < 0)
			return -errno;
		CL.sync_rd = sync[0];
		/* raw clone, like fork, but with a pidfd */
		pid = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &pidfd, 0, 0);
		if (pid == 0)
			clone_child();
	}
	if (pid < 0)
		r = -errno;
	else if (sync[1] >= 0) {
		char buf[32];

		snprintf(buf, sizeof(buf), "%ld", pid);
		r = cgroup_attr_write(cg_dir, "cgroup.procs", buf);
		if (r == 0 && write(sync[1], "", 1) != 1)
			r = -errno;
		if (r < 0)
			pidfd_signal(pidfd, SIGKILL);
	}
	fd_close(sync[0]);
	fd_close(sync[1]);
	CL.sync_rd = -1;
	if (pid >= 0) {
		*pidp = (pid_t)pid;
		*pidfdp = pidfd;
	}
	return r;
}
