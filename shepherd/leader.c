/*
 * leader.c: see leader.h.
 *
 * The leader is created with clone3(CLONE_INTO_CGROUP | CLONE_PIDFD): it
 * is a member of its cgroup leaf from its first instruction.  On x86-64
 * the clone also shares our memory until the child execs (CLONE_VM |
 * CLONE_VFORK, as posix_spawn does): no page tables are copied and no
 * page is faulted in twice, which takes about 0.1 ms off every job.  A
 * clone3 that cannot run a function on a new stack needs a few
 * instructions of assembly; elsewhere the clone copies our (small) memory
 * like fork.  Without clone3 (kernels before 5.7), a raw clone and a sync
 * pipe hold the child until we have written its pid into cgroup.procs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cgroup.h"
#include "common/fd.h"
#include "common/proc.h"
#include "common/util.h"
#include "shepherd/leader.h"

#define CHAN_FD 3
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define CHILD_STACK (64u << 10)

const char *const leader_stage_names[] = {
	[STAGE_EXEC] = "exec",
	[STAGE_CHDIR] = "chdir",
	[STAGE_SETUP] = "setup",
	[STAGE_CGROUP] = "cgroup",
};

static struct {
	char **argv, **envp, **paths; /* paths: exec candidates, NULL-terminated */
	bool paths_own;               /* paths[] items are ours (not argv[0]) */
	char **sh_argv;               /* "sh", <candidate>, argv[1..]: a script without #! */
	char *cwd;
	int in_fd, out_fd, err_fd, status_wr, sync_rd;
	bool has_nice;
	int nice;
} C = { .in_fd = -1, .out_fd = -1, .err_fd = -1, .status_wr = -1, .sync_rd = -1 };

/* ---- the child: system calls only (it may share our memory) ---- */

/*
 * The child runs on a stack of its own (leader_start): AddressSanitizer
 * would take the switch for a corrupt stack when it is about to call a
 * noreturn function, and has nothing to check here.
 */
#define CHILD_FN __attribute__((no_sanitize("address")))

_noreturn_ CHILD_FN static void
child_fail(int stage, int error)
{
	struct exec_fail f = { .error = error, .stage = stage };

	(void)!write(CHAN_FD, &f, sizeof(f));
	_exit(error == ENOENT || error == ENOTDIR ? 127 : 126);
}

_noreturn_ CHILD_FN static void
child_exec(void)
{
	int seen_eacces = 0, error = ENOENT;
	sigset_t none;

	if (C.sync_rd >= 0) {
		char c;

		/* wait until the parent has moved us into the cgroup */
		if (read(C.sync_rd, &c, 1) != 1)
			_exit(126);
	}
	/*
	 * The status pipe replaces the channel at fd 3 (close-on-exec) before
	 * anything can fail; the pipes go to 0-2.  All sources are >= 4, so
	 * no dup2 clobbers another source.
	 */
	if (dup3(C.status_wr, CHAN_FD, O_CLOEXEC) < 0)
		_exit(126);
	if (setsid() < 0)
		child_fail(STAGE_SETUP, errno);
	if (dup2(C.in_fd, 0) < 0 || dup2(C.out_fd, 1) < 0 || dup2(C.err_fd, 2) < 0)
		child_fail(STAGE_SETUP, errno);
	/* Criterion, shells and others leave fds open without FD_CLOEXEC. */
	if (syscall(SYS_close_range, CHAN_FD + 1, ~0U, 0) < 0)
		for (int fd = CHAN_FD + 1; fd < 1024; fd++)
			close(fd);
	/* every disposition is at its default but SIGPIPE (see the shepherd's main) */
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (C.has_nice && setpriority(PRIO_PROCESS, 0, C.nice) < 0)
		child_fail(STAGE_SETUP, errno);
	if (chdir(C.cwd) < 0)
		child_fail(STAGE_CHDIR, errno);
	for (char **p = C.paths; *p != NULL; p++) {
		execve(*p, C.argv, C.envp);
		switch (errno) {
		case ENOEXEC:
			/* like execvp: a script without #! runs under sh */
			C.sh_argv[1] = *p;
			execve("/bin/sh", C.sh_argv, C.envp);
			child_fail(STAGE_EXEC, errno);
		case EACCES:
			seen_eacces = 1;
			break;
		case ENOENT:
		case ENOTDIR:
		case ELOOP:
		case ENAMETOOLONG:
		case ESTALE:
		case ENODEV:
			break;
		default:
			child_fail(STAGE_EXEC, errno);
		}
		error = errno;
	}
	child_fail(STAGE_EXEC, seen_eacces ? EACCES : error == ENOTDIR ? ENOENT : error);
}

/* ---- preparing ---- */

static char *
dup_bytes(const struct proto_bytes *b)
{
	char *s = malloc(b->len + 1);

	if (s == NULL)
		exit(1);
	memcpy(s, b->ptr, b->len);
	s[b->len] = '\0';
	return s;
}

void
leader_prepare(const struct shep_spec *sp)
{
	char marker[128], *path_env = NULL;
	const char *path;
	size_t n_env = 0, n_paths = 0;

	C.argv = calloc(sp->n_argv + 1, sizeof(char *));
	C.envp = calloc(sp->n_env + 2, sizeof(char *));
	C.sh_argv = calloc(sp->n_argv + 2, sizeof(char *));
	if (C.argv == NULL || C.envp == NULL || C.sh_argv == NULL)
		exit(1);
	for (size_t i = 0; i < sp->n_argv; i++)
		C.argv[i] = dup_bytes(&sp->argv[i]);
	C.sh_argv[0] = (char *)"sh";
	for (size_t i = 1; i < sp->n_argv; i++)
		C.sh_argv[i + 1] = C.argv[i];
	for (size_t i = 0; i < sp->n_env; i++) {
		char *e = dup_bytes(&sp->env[i]);

		if (strncmp(e, "HEIDI_JOB_ID=", 13) == 0) {
			free(e);
			continue;
		}
		if (strncmp(e, "PATH=", 5) == 0)
			path_env = e + 5;
		C.envp[n_env++] = e;
	}
	/* The marker names the job and the heidid instance (docs/containment.md). */
	snprintf(marker, sizeof(marker), "HEIDI_JOB_ID=%llu@%.*s", (unsigned long long)sp->job_id,
	    (int)sp->instance.len, sp->instance.ptr);
	C.envp[n_env++] = strdup(marker);
	C.cwd = dup_bytes(&sp->cwd);
	C.has_nice = sp->has_nice;
	C.nice = (int)sp->nice;

	/* PATH search like execvp, but with the job's PATH, not ours. */
	if (strchr(C.argv[0], '/') != NULL) {
		C.paths = calloc(2, sizeof(char *));
		if (C.paths == NULL)
			exit(1);
		C.paths[0] = C.argv[0];
		C.paths_own = false;
		return;
	}
	C.paths_own = true;
	path = path_env != NULL ? path_env : DEFAULT_PATH;
	C.paths = calloc(strlen(path) + 2, sizeof(char *));
	if (C.paths == NULL)
		exit(1);
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dlen = (size_t)(end - p);
		char *cand;

		if (asprintf(&cand, "%.*s%s%s", (int)dlen, p, dlen ? "/" : "", C.argv[0]) < 0)
			exit(1);
		C.paths[n_paths++] = cand;
		if (*end == '\0')
			break;
		p = end;
	}
}

void
leader_set_fds(int in_fd, int out_fd, int err_fd, int status_wr)
{
	C.in_fd = in_fd;
	C.out_fd = out_fd;
	C.err_fd = err_fd;
	C.status_wr = status_wr;
}

void
leader_close_fds(void)
{
	C.in_fd = fd_close(C.in_fd);
	C.out_fd = fd_close(C.out_fd);
	C.err_fd = fd_close(C.err_fd);
	C.status_wr = fd_close(C.status_wr);
}

void
leader_reset(void)
{
	for (size_t i = 0; C.argv != NULL && C.argv[i] != NULL; i++)
		free(C.argv[i]);
	for (size_t i = 0; C.envp != NULL && C.envp[i] != NULL; i++)
		free(C.envp[i]);
	for (size_t i = 0; C.paths_own && C.paths != NULL && C.paths[i] != NULL; i++)
		free(C.paths[i]);
	free(C.argv);
	free(C.envp);
	free(C.paths);
	free(C.sh_argv);
	free(C.cwd);
	C.argv = C.envp = C.paths = C.sh_argv = NULL;
	C.cwd = NULL;
	leader_close_fds();
	C.sync_rd = -1;
}

/* ---- starting ---- */

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

static char child_stack[CHILD_STACK] __attribute__((aligned(16)));
#endif

int
leader_start(int cg_dir, pid_t *pidp, int *pidfdp)
{
	struct clone_args args;
	int sync[2] = { -1, -1 }, pidfd = -1;
	bool no_clone3 = getenv("HEIDI_SHEPHERD_NO_CLONE3") != NULL;
	long pid = -1;

	memset(&args, 0, sizeof(args));
	args.flags = CLONE_PIDFD | (cg_dir >= 0 ? CLONE_INTO_CGROUP : 0);
	args.pidfd = (uint64_t)(uintptr_t)&pidfd;
	args.exit_signal = SIGCHLD;
	args.cgroup = cg_dir >= 0 ? (uint64_t)cg_dir : 0;
	if (!no_clone3) {
#if defined(__x86_64__)
		/* we wait (CLONE_VFORK) until the child has exec'd or failed */
		args.flags |= CLONE_VM | CLONE_VFORK;
		args.stack = (uint64_t)(uintptr_t)child_stack;
		args.stack_size = sizeof(child_stack);
		pid = clone3_run(&args, child_exec);
		if (pid < 0) {
			errno = (int)-pid;
			pid = -1;
		}
#else
		pid = syscall(SYS_clone3, &args, sizeof(args));
		if (pid == 0)
			child_exec();
#endif
	}
	if (pid < 0 && (no_clone3 || errno == ENOSYS || errno == E2BIG || errno == EINVAL)) {
		if (cg_dir >= 0 && pipe2(sync, O_CLOEXEC) < 0)
			return -errno;
		C.sync_rd = sync[0];
		/* raw clone, like fork, but with a pidfd */
		pid = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &pidfd, 0, 0);
		if (pid == 0)
			child_exec();
	}
	if (pid < 0) {
		int e = errno;

		fd_close(sync[0]);
		fd_close(sync[1]);
		C.sync_rd = -1;
		return -e;
	}
	if (sync[1] >= 0) {
		char buf[32];
		int r;

		snprintf(buf, sizeof(buf), "%ld", pid);
		r = cgroup_attr_write(cg_dir, "cgroup.procs", buf);
		if (r == 0 && write(sync[1], "", 1) != 1)
			r = -errno;
		sync[0] = fd_close(sync[0]);
		sync[1] = fd_close(sync[1]);
		C.sync_rd = -1;
		if (r < 0) {
			pidfd_signal(pidfd, SIGKILL);
			*pidp = (pid_t)pid;
			*pidfdp = pidfd;
			return r;
		}
	}
	*pidp = (pid_t)pid;
	*pidfdp = pidfd;
	return 0;
}
