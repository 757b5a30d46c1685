/*
 * leader.c: see leader.h.
 *
 * The leader is started by spawn_clone_into (common/spawn.c): a member of
 * its cgroup leaf from its first instruction, and on x86-64 sharing our
 * memory until it execs, so the child below makes system calls only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/spawn.h"
#include "common/util.h"
#include "shepherd/leader.h"

#define CHAN_FD 3
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

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
	int in_fd, out_fd, err_fd, status_wr;
	bool has_nice;
	int nice;
} C = { .in_fd = -1, .out_fd = -1, .err_fd = -1, .status_wr = -1 };

/* ---- the child: system calls only (it may share our memory) ---- */

/*
 * The child runs on a stack of its own (spawn_clone_into): AddressSanitizer
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
	char *path_env = NULL;
	const char *path;
	size_t n_env = 0, n_paths = 0;

	C.argv = calloc(sp->n_argv + 1, sizeof(char *));
	C.envp = calloc(sp->n_env + 1, sizeof(char *));
	C.sh_argv = calloc(sp->n_argv + 2, sizeof(char *));
	if (C.argv == NULL || C.envp == NULL || C.sh_argv == NULL)
		exit(1);
	for (size_t i = 0; i < sp->n_argv; i++)
		C.argv[i] = dup_bytes(&sp->argv[i]);
	C.sh_argv[0] = (char *)"sh";
	for (size_t i = 1; i < sp->n_argv; i++)
		C.sh_argv[i + 1] = C.argv[i];
	/* the environment as heidid made it (its marker included) */
	for (size_t i = 0; i < sp->n_env; i++) {
		char *e = dup_bytes(&sp->env[i]);

		if (strncmp(e, "PATH=", 5) == 0)
			path_env = e + 5;
		C.envp[n_env++] = e;
	}
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
}

/* ---- starting ---- */

int
leader_start(int cg_dir, pid_t *pidp, int *pidfdp)
{
	return spawn_clone_into(cg_dir, getenv("HEIDI_SHEPHERD_NO_CLONE3") == NULL, child_exec, pidp,
	    pidfdp);
}
