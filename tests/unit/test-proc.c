/*
 * test-proc.c: pid sets, /proc parsing, descendant scans and signalling
 * through pidfds (common/proc.h).
 *
 * Every process here is forked by the test itself and reaped by it (by
 * the suite's fini if an assertion failed first).
 * Children block reading a "hold" pipe and exit when it is closed, and
 * report readiness through a "ready" pipe, so no test sleeps.  Tests that
 * signal descendants of the test process first check that it has none of
 * its own, so they can only ever reach processes they started.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proc.h"

/* ---- pidset ---------------------------------------------------------------- */

Test(proc, pidset_adds_once_and_stays_sorted)
{
	struct pidset s;
	static const pid_t in[] = { 50, 3, 99, 3, 7, 1000, 50, 1, 42 };

	pidset_init(&s);
	cr_assert_eq(s.n, 0);
	cr_assert_not(pidset_contains(&s, 3));
	cr_assert_eq(pidset_add(&s, 50), 1);
	cr_assert_eq(pidset_add(&s, 50), 0);
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		cr_assert_geq(pidset_add(&s, in[i]), 0);
	cr_assert_eq(s.n, 7);
	for (size_t i = 1; i < s.n; i++)
		cr_assert_lt(s.v[i - 1], s.v[i], "not sorted at %zu", i);
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		cr_assert(pidset_contains(&s, in[i]));
	cr_assert_not(pidset_contains(&s, 2));
	cr_assert_not(pidset_contains(&s, 0));
	cr_assert_not(pidset_contains(&s, 1001));
	pidset_clear(&s);
	cr_assert_eq(s.n, 0);
	cr_assert_not(pidset_contains(&s, 50));
	cr_assert_eq(pidset_add(&s, 50), 1);
	pidset_deinit(&s);
	cr_assert_eq(s.n, 0);
	cr_assert_null(s.v);
}

Test(proc, pidset_grows_past_initial_capacity)
{
	struct pidset s;

	pidset_init(&s);
	/* descending and interleaved insertion of 1000 pids */
	for (pid_t p = 2000; p > 0; p -= 2)
		cr_assert_eq(pidset_add(&s, p), 1);
	for (pid_t p = 1; p < 2000; p += 2)
		cr_assert_eq(pidset_add(&s, p), 1);
	cr_assert_eq(s.n, 2000);
	for (size_t i = 0; i < s.n; i++)
		cr_assert_eq(s.v[i], (pid_t)i + 1);
	pidset_deinit(&s);
}

/* ---- children -------------------------------------------------------------- */

struct kid {
	pid_t pid;
};

static int hold[2] = { -1, -1 };  /* children exit when the write end closes */
static int ready[2] = { -1, -1 }; /* children write one byte (or a pid) when set up */
static pid_t kids[8];             /* forked and not yet reaped */

/* fork, remembering the child so that it is reaped even if the test fails */
static pid_t
fork_kid(void)
{
	pid_t pid;
	size_t i;

	for (i = 0; i < 8 && kids[i] != 0; i++)
		;
	cr_assert_lt(i, 8, "too many children");
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid > 0)
		kids[i] = pid;
	return pid;
}

static void
forget_kid(pid_t pid)
{
	for (size_t i = 0; i < 8; i++)
		if (kids[i] == pid)
			kids[i] = 0;
}

static void
pipes_open(void)
{
	cr_assert_eq(pipe2(hold, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
}

/* In a child: default signal handling, and no copy of the hold pipe's write end. */
static void
child_setup(void)
{
	sigset_t all;

	signal(SIGTERM, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	close(hold[1]);
}

static _Noreturn void
child_wait_hold(void)
{
	char c;

	while (read(hold[0], &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

/* Fork a child that blocks on the hold pipe; new_pgroup puts it in its own group. */
static pid_t
fork_blocker(bool new_pgroup)
{
	pid_t pid = fork_kid();

	if (pid == 0) {
		child_setup();
		if (new_pgroup)
			setpgid(0, 0);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		child_wait_hold();
	}
	/* set it from this side too so the group exists when fork returns */
	if (new_pgroup)
		setpgid(pid, pid);
	return pid;
}

static void
wait_ready(int n)
{
	char c;

	for (int i = 0; i < n; i++)
		cr_assert_eq(read(ready[0], &c, 1), 1, "a child did not get ready");
}

/* Reap pid: its wait status. */
static int
reap(pid_t pid)
{
	int status;
	pid_t r;

	do
		r = waitpid(pid, &status, 0);
	while (r < 0 && errno == EINTR);
	cr_assert_eq(r, pid, "waitpid(%d): %s", (int)pid, strerror(errno));
	forget_kid(pid);
	return status;
}

static void
release(void)
{
	if (hold[1] >= 0)
		close(hold[1]);
	hold[1] = -1;
}

/* After every test, passed or failed: let the children go and reap them. */
static void
reap_leftover_kids(void)
{
	release();
	for (size_t i = 0; i < 8; i++)
		if (kids[i] != 0) {
			while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
				;
			kids[i] = 0;
		}
}

TestSuite(proc, .fini = reap_leftover_kids);

static void
assert_exited_normally(int status, const char *what)
{
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status 0x%x", what, status);
}

static void
assert_killed_by(int status, int sig, const char *what)
{
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == sig, "%s: status 0x%x, want signal %d",
	    what, status, sig);
}

/* Skip unless this test process has no descendants of its own. */
static void
require_no_descendants(void)
{
	struct pidset s;

	pidset_init(&s);
	cr_assert_eq(proc_descendants(getpid(), &s), 0);
	if (s.n != 0)
		cr_skip_test("the test process already has %zu descendants", s.n);
	pidset_deinit(&s);
}

/* ---- /proc/PID/stat ------------------------------------------------------------ */

Test(proc, stat_reads_self)
{
	struct proc_stat st;

	cr_assert_eq(proc_stat_read(getpid(), &st), 0);
	cr_assert_eq(st.pid, getpid());
	cr_assert_eq(st.ppid, getppid());
	cr_assert_eq(st.pgid, getpgrp());
	cr_assert_eq(st.sid, getsid(0));
	cr_assert_eq(st.state, 'R');
}

Test(proc, stat_counts_cpu_time, .timeout = 30)
{
	struct proc_stat a, b;
	volatile unsigned long spin = 0;

	cr_assert_eq(proc_stat_read(getpid(), &a), 0);
	/* burn CPU until the kernel has charged at least one more tick */
	do {
		for (int i = 0; i < 10000000; i++)
			spin++;
		cr_assert_eq(proc_stat_read(getpid(), &b), 0);
	} while (b.utime + b.stime == a.utime + a.stime);
	cr_assert_gt(b.utime + b.stime, a.utime + a.stime);
	cr_assert_geq(b.utime, a.utime);
	cr_assert_geq(b.stime, a.stime);
}

Test(proc, stat_reads_child_with_awkward_name, .timeout = 30)
{
	struct proc_stat st;
	pid_t pid;

	pipes_open();
	pid = fork_kid();
	if (pid == 0) {
		child_setup();
		setpgid(0, 0);
		/* comm with spaces and parentheses: only the last ')' ends it */
		prctl(PR_SET_NAME, "a) b (c) 1 2");
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		child_wait_hold();
	}
	setpgid(pid, pid);
	wait_ready(1);
	cr_assert_eq(proc_stat_read(pid, &st), 0);
	cr_assert_eq(st.pid, pid);
	cr_assert_eq(st.ppid, getpid());
	cr_assert_eq(st.pgid, pid);
	cr_assert_eq(st.sid, getsid(0));
	cr_assert(st.state == 'S' || st.state == 'R', "state %c", st.state);
	release();
	assert_exited_normally(reap(pid), "child");
}

Test(proc, stat_of_missing_pid_fails)
{
	struct proc_stat st;

	/* above any possible pid_max (4194304) */
	cr_assert_eq(proc_stat_read(0x7ffffff0, &st), -ENOENT);
}

/* ---- descendants ------------------------------------------------------------ */

/*
 * Fork a child that forks a grandchild; both block on the hold pipe.  The
 * child sends the grandchild's pid through the ready pipe and reaps it.
 */
static pid_t
fork_with_grandchild(pid_t *grandp)
{
	pid_t pid = fork_kid(), g;

	if (pid == 0) {
		int status;

		child_setup();
		g = fork();
		if (g < 0)
			_exit(1);
		if (g == 0)
			child_wait_hold();
		if (write(ready[1], &g, sizeof(g)) != sizeof(g))
			_exit(1);
		while (waitpid(g, &status, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 2);
	}
	cr_assert_eq(read(ready[0], grandp, sizeof(*grandp)), sizeof(*grandp));
	return pid;
}

Test(proc, descendants_include_a_forked_grandchild, .timeout = 30)
{
	struct pidset s;
	pid_t kid, grand;

	require_no_descendants();
	pipes_open();
	kid = fork_with_grandchild(&grand);
	pidset_init(&s);
	cr_assert_eq(proc_descendants(getpid(), &s), 0);
	cr_assert(pidset_contains(&s, kid));
	cr_assert(pidset_contains(&s, grand));
	cr_assert_not(pidset_contains(&s, getpid()), "root is not its own descendant");
	cr_assert_eq(s.n, 2);
	/* from the child's point of view only the grandchild */
	cr_assert_eq(proc_descendants(kid, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert(pidset_contains(&s, grand));
	pidset_deinit(&s);
	release();
	assert_exited_normally(reap(kid), "child");
}

Test(proc, descendants_exclude_zombies, .timeout = 30)
{
	struct pidset s;
	siginfo_t si;
	pid_t pid;

	require_no_descendants();
	pid = fork_kid();
	if (pid == 0)
		_exit(0);
	/* wait until it is a zombie, without reaping it */
	memset(&si, 0, sizeof(si));
	cr_assert_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	pidset_init(&s);
	cr_assert_eq(proc_descendants(getpid(), &s), 0);
	cr_assert_not(pidset_contains(&s, pid), "an exited (zombie) child counts as live");
	pidset_deinit(&s);
	assert_exited_normally(reap(pid), "zombie");
}

static void *
hold_thread(void *arg)
{
	child_wait_hold();
}

Test(proc, descendants_include_a_process_whose_main_thread_exited, .timeout = 30)
{
	struct proc_stat st;
	struct pidset s;
	pid_t pid;
	int i;

	/* its leader shows as 'Z' in /proc while another thread still runs */
	require_no_descendants();
	pipes_open();
	pid = fork_kid();
	if (pid == 0) {
		pthread_t t;

		child_setup();
		if (pthread_create(&t, NULL, hold_thread, NULL) != 0)
			_exit(1);
		pthread_exit(NULL);
	}
	/* no event tells when a thread exits: watch /proc (bounded) */
	for (i = 0; i < 10000000; i++) {
		cr_assert_eq(proc_stat_read(pid, &st), 0);
		if (st.state == 'Z')
			break;
		sched_yield();
	}
	cr_assert_eq(st.state, 'Z', "the main thread did not exit");
	pidset_init(&s);
	cr_assert_eq(proc_descendants(getpid(), &s), 0);
	cr_assert(pidset_contains(&s, pid), "a process with a live thread was taken for dead");
	pidset_deinit(&s);
	release();
	assert_exited_normally(reap(pid), "threaded child");
}

/* ---- signalling descendants ------------------------------------------------ */

Test(proc, signal_descendants_signals_every_child, .timeout = 30)
{
	struct pidset out;
	pid_t a, b;
	int n;

	require_no_descendants();
	pipes_open();
	a = fork_blocker(false);
	b = fork_blocker(true);
	wait_ready(2);
	pidset_init(&out);
	n = proc_signal_descendants(getpid(), SIGTERM, 0, 0, NULL, &out);
	cr_assert_eq(n, 2);
	cr_assert_eq(out.n, 2);
	cr_assert(pidset_contains(&out, a));
	cr_assert(pidset_contains(&out, b));
	pidset_deinit(&out);
	release();
	assert_killed_by(reap(a), SIGTERM, "a");
	assert_killed_by(reap(b), SIGTERM, "b");
}

Test(proc, signal_zero_only_finds_descendants, .timeout = 30)
{
	struct pidset out;
	pid_t kid, grand;

	require_no_descendants();
	pipes_open();
	kid = fork_with_grandchild(&grand);
	pidset_init(&out);
	cr_assert_eq(proc_signal_descendants(getpid(), 0, 0, 0, NULL, &out), 2);
	cr_assert(pidset_contains(&out, kid));
	cr_assert(pidset_contains(&out, grand));
	cr_assert_eq(proc_signal_descendants(getpid(), 0, 0, 0, NULL, NULL), 2, "out may be NULL");
	pidset_deinit(&out);
	release();
	assert_exited_normally(reap(kid), "child");
}

Test(proc, signal_descendants_respects_only_pgid, .timeout = 30)
{
	struct pidset out;
	pid_t a, b;

	require_no_descendants();
	pipes_open();
	a = fork_blocker(false);
	b = fork_blocker(true);
	wait_ready(2);
	pidset_init(&out);
	cr_assert_eq(proc_signal_descendants(getpid(), SIGTERM, b, 0, NULL, &out), 1);
	cr_assert_eq(out.n, 1);
	cr_assert(pidset_contains(&out, b));
	pidset_deinit(&out);
	release();
	assert_exited_normally(reap(a), "a (not in the group)");
	assert_killed_by(reap(b), SIGTERM, "b");
}

Test(proc, signal_descendants_respects_skip_pgid, .timeout = 30)
{
	struct pidset out;
	pid_t a, b;

	require_no_descendants();
	pipes_open();
	a = fork_blocker(false);
	b = fork_blocker(true);
	wait_ready(2);
	pidset_init(&out);
	cr_assert_eq(proc_signal_descendants(getpid(), SIGTERM, 0, b, NULL, &out), 1);
	cr_assert_eq(out.n, 1);
	cr_assert(pidset_contains(&out, a));
	pidset_deinit(&out);
	release();
	assert_killed_by(reap(a), SIGTERM, "a");
	assert_exited_normally(reap(b), "b (skipped group)");
}

Test(proc, signal_descendants_respects_skip_set, .timeout = 30)
{
	struct pidset out, skip;
	pid_t a, b, c;

	require_no_descendants();
	pipes_open();
	a = fork_blocker(false);
	b = fork_blocker(false);
	c = fork_blocker(false);
	wait_ready(3);
	pidset_init(&out);
	pidset_init(&skip);
	cr_assert_eq(pidset_add(&skip, a), 1);
	cr_assert_eq(pidset_add(&skip, c), 1);
	cr_assert_eq(proc_signal_descendants(getpid(), SIGTERM, 0, 0, &skip, &out), 1);
	cr_assert_eq(out.n, 1);
	cr_assert(pidset_contains(&out, b));
	pidset_deinit(&out);
	pidset_deinit(&skip);
	release();
	assert_exited_normally(reap(a), "a (skipped)");
	assert_killed_by(reap(b), SIGTERM, "b");
	assert_exited_normally(reap(c), "c (skipped)");
}

Test(proc, signal_descendants_of_a_leaf_is_zero, .timeout = 30)
{
	pid_t a;

	require_no_descendants();
	pipes_open();
	a = fork_blocker(false);
	wait_ready(1);
	/* a has no children: nothing to signal, and a itself is not touched */
	cr_assert_eq(proc_signal_descendants(a, SIGTERM, 0, 0, NULL, NULL), 0);
	release();
	assert_exited_normally(reap(a), "a");
}

/* ---- environment ------------------------------------------------------------- */

/*
 * Exec /bin/cat with the given environment, stdin from the hold pipe and
 * stdout to /dev/null.  Returns once the exec has happened (the cloexec
 * status pipe closes), so /proc/PID/environ shows the new environment.
 */
static pid_t
spawn_cat(char *const envp[])
{
	int st[2], err = 0;
	pid_t pid;
	ssize_t n;

	if (access("/bin/cat", X_OK) != 0)
		cr_skip_test("/bin/cat is not available");
	cr_assert_eq(pipe2(st, O_CLOEXEC), 0);
	pid = fork_kid();
	if (pid == 0) {
		char *argv[] = { "cat", NULL };
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		child_setup();
		if (null < 0 || dup2(hold[0], 0) < 0 || dup2(null, 1) < 0)
			_exit(126);
		execve("/bin/cat", argv, envp);
		err = errno;
		(void)!write(st[1], &err, sizeof(err));
		_exit(127);
	}
	close(st[1]);
	n = read(st[0], &err, sizeof(err));
	close(st[0]);
	cr_assert_eq(n, 0, "exec failed: %s", strerror(err));
	return pid;
}

static char *test_env[] = { "HEIDI_TEST_MARKX=wrong", "OTHER=1", "HEIDI_TEST_MARK=abc",
	"EMPTY=", NULL };

Test(proc, environ_get_finds_exact_names, .timeout = 30)
{
	char buf[64];
	pid_t pid;

	pipes_open();
	pid = spawn_cat(test_env);
	cr_assert_eq(proc_environ_get(pid, "HEIDI_TEST_MARK", buf, sizeof(buf)), 1);
	cr_assert_str_eq(buf, "abc");
	cr_assert_eq(proc_environ_get(pid, "HEIDI_TEST_MARKX", buf, sizeof(buf)), 1);
	cr_assert_str_eq(buf, "wrong");
	cr_assert_eq(proc_environ_get(pid, "EMPTY", buf, sizeof(buf)), 1);
	cr_assert_str_eq(buf, "");
	/* a prefix of a name is not the name */
	cr_assert_eq(proc_environ_get(pid, "HEIDI_TEST", buf, sizeof(buf)), 0);
	cr_assert_eq(proc_environ_get(pid, "NOPE", buf, sizeof(buf)), 0);
	/* the value is cut to the buffer, NUL-terminated */
	cr_assert_eq(proc_environ_get(pid, "HEIDI_TEST_MARK", buf, 3), 1);
	cr_assert_str_eq(buf, "ab");
	release();
	assert_exited_normally(reap(pid), "cat");
}

Test(proc, environ_get_of_missing_pid_fails)
{
	char buf[16];

	cr_assert_lt(proc_environ_get(0x7ffffff0, "PATH", buf, sizeof(buf)), 0);
}

Test(proc, signal_if_environ_ignores_near_misses, .timeout = 30)
{
	pid_t pid;

	pipes_open();
	pid = spawn_cat(test_env);
	cr_assert_leq(proc_signal_if_environ(pid, "HEIDI_TEST_MARK=ab", SIGTERM), 0);
	cr_assert_leq(proc_signal_if_environ(pid, "HEIDI_TEST_MARK=abcd", SIGTERM), 0);
	cr_assert_leq(proc_signal_if_environ(pid, "HEIDI_TEST_MARK", SIGTERM), 0);
	cr_assert_leq(proc_signal_if_environ(pid, "EST_MARK=abc", SIGTERM), 0);
	cr_assert_leq(proc_signal_if_environ(pid, "heidi_test_mark=abc", SIGTERM), 0);
	/* a pending SIGTERM would kill cat before it sees EOF */
	release();
	assert_exited_normally(reap(pid), "cat was signalled without an exact match");
}

Test(proc, signal_if_environ_signals_on_exact_entry, .timeout = 30)
{
	pid_t pid;

	pipes_open();
	pid = spawn_cat(test_env);
	cr_assert_geq(proc_signal_if_environ(pid, "HEIDI_TEST_MARK=abc", SIGTERM), 0);
	assert_killed_by(reap(pid), SIGTERM, "cat");
	release();
}

struct visit {
	pid_t want;
	bool seen;
	int visited;
};

static int
visit_cb(pid_t pid, void *data)
{
	struct visit *v = data;

	v->visited++;
	if (pid == v->want)
		v->seen = true;
	return 0;
}

static int
stop_cb(pid_t pid, void *data)
{
	struct visit *v = data;

	v->visited++;
	return 1;
}

Test(proc, foreach_visits_self_and_stops_on_request)
{
	struct visit v = { .want = getpid() };

	cr_assert_eq(proc_foreach(visit_cb, &v), 0);
	cr_assert(v.seen);
	cr_assert_geq(v.visited, 1);
	v = (struct visit){ 0 };
	proc_foreach(stop_cb, &v);
	cr_assert_eq(v.visited, 1, "kept going after the callback asked to stop");
}
