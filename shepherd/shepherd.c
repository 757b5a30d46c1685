/*
 * heidi-shepherd: the per-job watchdog (design §2, docs/design.md).
 *
 * heidid execs one shepherd per job with a SOCK_SEQPACKET channel at fd 3.
 * The shepherd reads the job spec, becomes a child subreaper, creates the
 * job's cgroup leaf (when heidid gives one), its pipes, and starts the
 * leader in its own session inside the leaf before it runs any code.  It
 * passes the pipe read ends (and the stdin write end) to heidid with
 * SCM_RIGHTS, then waits on: the channel, the leader's pidfd, SIGCHLD,
 * the exec status pipe, cgroup.events and one timerfd.
 *
 * When the leader exits, whatever is left of the tree is stopped (TERM,
 * grace, KILL) and counted; the job ends when the tree is provably empty.
 * If heidid hangs up, the whole tree is killed at once.  The shepherd
 * reports facts (exit status, reason, rusage, leftovers); policy lives in
 * heidid.
 *
 * Two rules carry the guarantees:
 *  - The job is over when wait4(-1) answers ECHILD (every descendant of a
 *    subreaper is reachable through its live or zombie children, so no
 *    child left means no process left) and, with a cgroup, cgroup.events
 *    says "populated 0".
 *  - kill(-pgid) is used only while the leader is unreaped: alive or a
 *    zombie, it keeps its pid, which is the job's process group and
 *    session id, so the group cannot be a recycled one.  The shepherd is
 *    the only process that can reap the leader and it is single-threaded,
 *    so "not reaped yet" cannot change between the check and the kill.
 *    Afterwards every signal goes to verified descendants only.
 *
 * All state is static: one job at a time.  After its exit report a
 * shepherd waits on its channel for the next spec (heidid keeps it in its
 * warm pool instead of exec'ing a new one); job_reset() returns it to the
 * state it had before the first spec.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cgroup.h"
#include "common/fd.h"
#include "common/proc.h"
#include "common/sock.h"
#include "common/time.h"
#include "proto/shep.h"
#include "shepherd/leader.h"

#define CHAN_FD 3
#define RESCAN_NS (50 * NSEC_PER_MSEC)

enum phase {
	PH_RUNNING,  /* leader alive, nothing asked */
	PH_STOPPING, /* TERM sent, KILL at kill_at */
	PH_KILLING,  /* KILL sent; re-kill stragglers until empty */
};

static struct {
	int sigfd, tfd, pidfd, status_rd, cg_dir, cg_ev;
	bool chan_open;
	pid_t self, leader;
	uint64_t job_id;
	char cgroup[PATH_MAX], cgroup_rel[PATH_MAX];
	uint64_t grace_ms;
	uint64_t start_ns, timeout_at, kill_at, rescan_at;
	enum phase phase;
	bool leader_exited;    /* reaped: its status is in leader_status */
	bool leader_just_exited;
	int leader_status;
	const char *reason; /* first cause, if not the leader's own exit */
	struct exec_fail fail;
	bool failed;
	struct pidset leftovers;
	uint64_t oom_kills;
	uint64_t utime_us, stime_us, maxrss_kb; /* this job's children, from wait4 */
} S = {
	.sigfd = -1, .tfd = -1, .pidfd = -1, .status_rd = -1, .cg_dir = -1, .cg_ev = -1,
};

static void warnx_(const char *fmt, ...) _printf_(1, 2);

static void
warnx_(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "heidi-shepherd[%d]: job %llu: ", (int)getpid(),
	    (unsigned long long)S.job_id);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	(void)!write(STDERR_FILENO, buf, (size_t)n);
}

/* Create the leaf and apply limits.  0 or -errno. */
static int
setup_cgroup(const struct shep_spec *sp)
{
	int r;

	memcpy(S.cgroup, sp->cgroup.ptr, sp->cgroup.len);
	memcpy(S.cgroup_rel, sp->cgroup_rel.ptr, sp->cgroup_rel.len);
	/* A pre-existing leaf is an error: never adopt someone's processes. */
	S.cg_dir = cgroup_leaf_create(S.cgroup);
	if (S.cg_dir < 0) {
		S.cgroup[0] = '\0';
		return S.cg_dir;
	}
	{
		struct cgroup_limits lim = { sp->mem_bytes, sp->pids_max, sp->cpu_millicores };
		const char *which;

		r = cgroup_set_limits(S.cg_dir, &lim, &which);
		if (r < 0) {
			warnx_("cannot set %s: %s", which, strerror(-r));
			return r;
		}
	}
	S.cg_ev = cgroup_events_open(S.cg_dir);
	return S.cg_ev < 0 ? S.cg_ev : 0;
}

/* ---- the tree ---------------------------------------------------------------- */

/*
 * Signal the tree: the cgroup's members (each verified), or the process
 * group at once while the unreaped leader pins its id, then every
 * descendant neither reached (setsid escapers, processes that left the
 * cgroup; after the leader is reaped, everyone).  With count, every live
 * process found (leader aside) joins the leftovers first.
 */
static void
tree_signal(int sig, bool count)
{
	struct pidset hit;
	pid_t group = 0;

	pidset_init(&hit);
	if (count) {
		if (S.cg_dir >= 0)
			cgroup_signal_members(S.cg_dir, S.cgroup_rel, 0, &hit);
		proc_signal_descendants(S.self, 0, 0, 0, NULL, &hit);
		for (size_t i = 0; i < hit.n; i++)
			if (hit.v[i] != S.leader)
				pidset_add(&S.leftovers, hit.v[i]);
		pidset_clear(&hit);
	}
	if (sig != 0) {
		if (S.cg_dir >= 0)
			cgroup_signal_members(S.cg_dir, S.cgroup_rel, sig, &hit);
		else if (!S.leader_exited && S.leader > 1 && kill(-S.leader, sig) == 0)
			group = S.leader;
		proc_signal_descendants(S.self, sig, 0, group, &hit, NULL);
	}
	pidset_deinit(&hit);
}

/* A terminal's signal: the job's process group only. */
static void
group_signal(int sig)
{
	if (S.leader <= 1)
		return; /* never a process group <= 1 */
	if (!S.leader_exited)
		kill(-S.leader, sig); /* the group id is pinned by the unreaped leader */
	else
		proc_signal_descendants(S.self, sig, S.leader, 0, NULL, NULL);
}

/* KILL everything now, and again every RESCAN_NS until the tree is empty. */
static void
tree_kill(void)
{
	S.phase = PH_KILLING;
	if (S.cg_dir >= 0) {
		if (S.leader_exited)
			tree_signal(0, true);
		cgroup_kill(S.cg_dir, S.cgroup_rel); /* atomic with respect to fork */
		proc_signal_descendants(S.self, SIGKILL, 0, 0, NULL, NULL);
	} else
		tree_signal(SIGKILL, S.leader_exited);
	S.rescan_at = time_now_ns() + RESCAN_NS;
}

static void
stop_begin(uint64_t grace_ms, const char *reason)
{
	uint64_t at = time_now_ns() + grace_ms * NSEC_PER_MSEC;

	if (S.reason == NULL && !S.leader_exited)
		S.reason = reason;
	if (S.phase == PH_KILLING)
		return;
	if (S.phase == PH_STOPPING) {
		if (at < S.kill_at)
			S.kill_at = at;
		return;
	}
	S.phase = PH_STOPPING;
	S.kill_at = at;
	tree_signal(SIGTERM, S.leader_exited);
	tree_signal(SIGCONT, false); /* a stopped process cannot act on TERM */
	if (grace_ms == 0)
		tree_kill();
}

/* Reap every exited child; true when none is left (ECHILD). */
static bool
reap_children(void)
{
	for (;;) {
		int status;
		struct rusage ru;
		pid_t pid = wait4(-1, &status, WNOHANG, &ru);

		if (pid > 0) {
			/* per job: RUSAGE_CHILDREN would add up every job this shepherd ran */
			S.utime_us += (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec;
			S.stime_us += (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
			if ((uint64_t)ru.ru_maxrss > S.maxrss_kb)
				S.maxrss_kb = (uint64_t)ru.ru_maxrss;
		}
		if (pid == S.leader && !S.leader_exited) {
			S.leader_exited = true;
			S.leader_status = status;
			S.leader_just_exited = true;
			continue;
		}
		if (pid > 0)
			continue;
		return pid < 0 && errno == ECHILD;
	}
}

static bool
tree_empty(void)
{
	int populated;

	if (!reap_children())
		return false;
	if (S.cg_ev < 0)
		return true;
	populated = cgroup_events_populated(S.cg_ev);
	if (populated < 0) {
		/*
		 * The leaf is gone (a sweep removed it: ENODEV) or unreadable.
		 * rmdir succeeds only on an empty cgroup, and our own tree is
		 * known empty (ECHILD): stop watching a file that only errors.
		 */
		warnx_("cgroup.events of %s unreadable (%s); relying on the process tree",
		    S.cgroup, strerror(-populated));
		S.cg_ev = fd_close(S.cg_ev);
		return true;
	}
	return populated == 0;
}

/*
 * The leader is reaped: what is left now is a leftover.  Nothing left is
 * the common case and costs no /proc scan; otherwise count and stop it.
 */
static void
leader_gone(void)
{
	S.leader_just_exited = false;
	if (tree_empty())
		return;
	if (S.phase == PH_RUNNING)
		stop_begin(S.grace_ms, NULL);
	else
		tree_signal(0, true);
}

/* ---- messages ---------------------------------------------------------------- */

static void
send_msg(struct pack_buf *b, int *fds, size_t n_fds)
{
	int r;

	if (!S.chan_open)
		return;
	r = sock_send_fds_consume(CHAN_FD, b->sbuf.data, b->sbuf.size, fds, n_fds);
	if (r < 0)
		warnx_("sending to heidid: %s", strerror(-r));
	pack_buf_reset(b);
}

static void
send_exit(void)
{
	struct pack_buf b;
	struct shep_exit e = { 0 };
	const char *reason = S.reason;

	if (S.failed) {
		e.error = S.fail.error;
		e.stage.ptr = leader_stage_names[S.fail.stage];
		e.stage.len = strlen(e.stage.ptr);
		/* the child could not exec (the command's fault), or we could not start it */
		reason = S.leader > 0 ? "exec_failed" : "spawn_failed";
	}
	if (S.leader_exited) {
		if (WIFEXITED(S.leader_status)) {
			e.exited = true;
			e.code = WEXITSTATUS(S.leader_status);
		} else if (WIFSIGNALED(S.leader_status)) {
			e.signal = WTERMSIG(S.leader_status);
			e.core = WCOREDUMP(S.leader_status);
		}
	}
	if (S.oom_kills > 0 && e.signal == SIGKILL && reason == NULL)
		reason = "oom";
	if (reason == NULL)
		reason = e.signal ? "signaled" : "exited";
	e.reason.ptr = reason;
	e.reason.len = strlen(reason);
	e.utime_us = S.utime_us;
	e.stime_us = S.stime_us;
	e.maxrss_kb = S.maxrss_kb;
	e.wall_ms = (time_now_ns() - S.start_ns) / NSEC_PER_MSEC;
	e.leftovers = S.leftovers.n;
	pack_buf_init(&b);
	shep_encode_exit(&b, &e);
	send_msg(&b, NULL, 0);
	pack_buf_deinit(&b);
}

static void
handle_channel(void)
{
	static char buf[SHEP_PACKET_MAX];
	struct pack_doc doc;
	struct proto_error err;
	struct shep_msg m;
	int fds[SOCK_MAX_FDS];
	size_t n_fds;
	ssize_t n;

	n = sock_recv_fds(CHAN_FD, buf, sizeof(buf), fds, SOCK_MAX_FDS, &n_fds);
	for (size_t i = 0; i < n_fds; i++)
		close(fds[i]); /* heidid sends no fds after the spec */
	if (n < 0 && n != -ECONNRESET && n != -EPIPE && n != -ENOTCONN) {
		if (n != -EAGAIN && n != -EINTR)
			warnx_("reading from heidid: %s", strerror((int)-n));
		return;
	}
	if (n <= 0) {
		/* heidid is gone: kill the whole tree at once (design §2.5). */
		S.chan_open = false;
		if (S.reason == NULL)
			S.reason = "daemon_lost";
		tree_kill();
		return;
	}
	pack_doc_init(&doc);
	if (shep_msg_decode(&doc, buf, (size_t)n, &m, &err) < 0)
		warnx_("bad message from heidid: %s", err.message);
	else if (m.type == SHEP_SIGNAL) {
		if (m.signal.group)
			group_signal(m.signal.signal);
		else
			tree_signal(m.signal.signal, S.leader_exited);
	} else if (m.type == SHEP_STOP)
		stop_begin(m.stop.grace_ms, "stopped");
	else
		warnx_("unexpected message from heidid");
	pack_doc_deinit(&doc);
}

static void
handle_signals(void)
{
	struct signalfd_siginfo si;

	while (read(S.sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			reap_children();
		else
			stop_begin(S.grace_ms, "stopped"); /* someone asked us to stop */
	}
}

static void
handle_timer(void)
{
	uint64_t exp, now = time_now_ns();

	(void)!read(S.tfd, &exp, sizeof(exp));
	if (S.timeout_at != 0 && now >= S.timeout_at) {
		S.timeout_at = 0;
		stop_begin(S.grace_ms, "timeout");
	}
	if ((S.phase == PH_STOPPING && now >= S.kill_at) ||
	    (S.phase == PH_KILLING && now >= S.rescan_at))
		tree_kill();
}

static void
timer_update(void)
{
	uint64_t next = 0;
	struct itimerspec its;

	if (S.timeout_at != 0 && !S.leader_exited)
		next = S.timeout_at;
	if (S.phase == PH_STOPPING && (next == 0 || S.kill_at < next))
		next = S.kill_at;
	if (S.phase == PH_KILLING && (next == 0 || S.rescan_at < next))
		next = S.rescan_at;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(next / NSEC_PER_SEC);
	its.it_value.tv_nsec = (long)(next % NSEC_PER_SEC);
	timerfd_settime(S.tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void
handle_status_pipe(void)
{
	ssize_t n = read(S.status_rd, &S.fail, sizeof(S.fail));

	if (n == sizeof(S.fail) && S.fail.stage >= 0 && S.fail.stage <= STAGE_CGROUP)
		S.failed = true;
	S.status_rd = fd_close(S.status_rd);
}

/* ---- main -------------------------------------------------------------------- */

static void
check_channel(void)
{
	int type = 0, domain = 0;
	socklen_t len = sizeof(int);

	if (getsockopt(CHAN_FD, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET ||
	    getsockopt(CHAN_FD, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX) {
		fprintf(stderr, "heidi-shepherd: fd 3 is not a SOCK_SEQPACKET Unix socket; "
				"heidi-shepherd is started by heidid, not by hand\n");
		exit(2);
	}
	fd_set_cloexec(CHAN_FD, true);
	S.chan_open = true;
}

/* Wait for the spec (a pooled shepherd may wait long); exits if heidid hung up. */
static const struct shep_spec *
recv_spec(struct pack_doc *doc, char **bufp)
{
	static struct shep_msg m;
	struct proto_error err = { 0 };
	int r;

	for (;;) {
		struct pollfd pfd[2] = { { .fd = CHAN_FD, .events = POLLIN }, { .fd = S.sigfd, .events = POLLIN } };
		struct signalfd_siginfo si;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			exit(1);
		/* idle in the pool, a TERM (or INT, HUP, QUIT) ends us */
		while (read(S.sigfd, &si, sizeof(si)) == sizeof(si))
			if (si.ssi_signo != SIGCHLD)
				exit(0);
		if (pfd[0].revents)
			break;
	}
	r = shep_spec_recv(CHAN_FD, doc, &m, bufp, &err);
	if (r == -EBADMSG)
		warnx_("bad spec from heidid: %s", err.message);
	if (r <= 0)
		exit(r == 0 ? 0 : 1); /* retired from the pool, or heidid is gone */
	return &m.spec;
}

/* Back to the state before the first spec (see the header comment). */
static void
job_reset(void)
{
	struct signalfd_siginfo si;

	leader_reset();
	S.pidfd = fd_close(S.pidfd);
	S.status_rd = fd_close(S.status_rd);
	S.cg_ev = fd_close(S.cg_ev);
	S.cg_dir = fd_close(S.cg_dir);
	S.leader = 0;
	S.job_id = 0;
	S.cgroup[0] = S.cgroup_rel[0] = '\0';
	S.timeout_at = S.kill_at = S.rescan_at = 0;
	S.phase = PH_RUNNING;
	S.leader_exited = S.leader_just_exited = false;
	S.leader_status = 0;
	S.reason = NULL;
	memset(&S.fail, 0, sizeof(S.fail));
	S.failed = false;
	pidset_clear(&S.leftovers);
	S.oom_kills = S.utime_us = S.stime_us = S.maxrss_kb = 0;
	timer_update();
	while (read(S.sigfd, &si, sizeof(si)) == sizeof(si))
		; /* this job's SIGCHLDs */
}

/* Run one job to its end and report it. */
static void
run_job(const struct shep_spec *sp)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 }, pstat[2], r;
	const char *fail_stage = NULL;

	S.job_id = sp->job_id;
	S.grace_ms = sp->grace_ms;
	S.start_ns = time_now_ns();
	if (sp->timeout_ms > 0)
		S.timeout_at = S.start_ns + sp->timeout_ms * NSEC_PER_MSEC;
	leader_prepare(sp);

	if (sp->cgroup.len > 0 && (r = setup_cgroup(sp)) < 0) {
		fail_stage = "cgroup";
		goto failed;
	}
	if ((sp->stdin_pipe ? pipe2(pin, O_CLOEXEC) : (pin[0] = fd_open_devnull(O_RDONLY))) < 0 ||
	    pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0 || pipe2(pstat, O_CLOEXEC) < 0) {
		r = -errno;
		fail_stage = "setup";
		goto failed;
	}
	if (sp->pipe_size > 0) {
		/* best effort: the per-user pipe budget may refuse */
		fcntl(pout[1], F_SETPIPE_SZ, (int)sp->pipe_size);
		fcntl(perr[1], F_SETPIPE_SZ, (int)sp->pipe_size);
	}
	leader_set_fds(pin[0], pout[1], perr[1], pstat[1]);
	S.status_rd = pstat[0];
	r = leader_start(S.cg_dir, &S.leader, &S.pidfd);
	leader_close_fds();
	pin[0] = pout[1] = perr[1] = -1;
	if (r < 0) {
		fail_stage = "setup";
		goto failed;
	}
	{
		struct pack_buf b;
		struct shep_started st = {
			.pid = S.leader,
			.pgid = S.leader,
			.containment = { S.cg_dir >= 0 ? "cgroup" : "pgroup", 6 },
			.cgroup = { S.cgroup_rel, S.cg_dir >= 0 ? strlen(S.cgroup_rel) : 0 },
		};
		int fds[3] = { pout[0], perr[0], pin[1] };

		st.n_fds = sp->stdin_pipe ? 3 : 2;
		pack_buf_init(&b);
		shep_encode_started(&b, &st);
		send_msg(&b, fds, st.n_fds);
		pack_buf_deinit(&b);
		for (size_t i = 0; i < 3; i++)
			fd_close(fds[i]); /* no-ops for the fds just sent */
	}

	for (;;) {
		struct pollfd pfd[6];
		nfds_t n = 0;
		int i_chan = -1, i_pid = -1, i_stat = -1, i_ev = -1;

		if (S.leader_just_exited)
			leader_gone();
		if (S.leader_exited && S.status_rd < 0 && tree_empty())
			break;
		timer_update();
		pfd[n++] = (struct pollfd){ .fd = S.sigfd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = S.tfd, .events = POLLIN };
		if (S.chan_open) {
			i_chan = (int)n;
			pfd[n++] = (struct pollfd){ .fd = CHAN_FD, .events = POLLIN };
		}
		if (!S.leader_exited) {
			i_pid = (int)n;
			pfd[n++] = (struct pollfd){ .fd = S.pidfd, .events = POLLIN };
		}
		if (S.status_rd >= 0) {
			i_stat = (int)n;
			pfd[n++] = (struct pollfd){ .fd = S.status_rd, .events = POLLIN };
		}
		if (S.cg_ev >= 0 && S.leader_exited) {
			i_ev = (int)n;
			pfd[n++] = (struct pollfd){ .fd = S.cg_ev, .events = POLLPRI };
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("heidi-shepherd: poll");
			break;
		}
		if (pfd[0].revents)
			handle_signals();
		if (pfd[1].revents)
			handle_timer();
		if (i_stat >= 0 && pfd[i_stat].revents)
			handle_status_pipe();
		if (i_pid >= 0 && pfd[i_pid].revents)
			reap_children();
		if (i_chan >= 0 && pfd[i_chan].revents)
			handle_channel();
		(void)i_ev; /* a cgroup.events change only needs the re-check above */
	}

	/* The tree is gone: clean up and report. */
	if (S.cg_dir >= 0) {
		(void)cgroup_keyed_read(S.cg_dir, "memory.events", "oom_kill", &S.oom_kills);
		S.cg_ev = fd_close(S.cg_ev);
		S.cg_dir = fd_close(S.cg_dir);
		for (int i = 0; i < 100 && rmdir(S.cgroup) < 0 && errno == EBUSY; i++)
			usleep(10000);
	}
	send_exit();
	return;

failed:
	/* Nothing runs: report the failed start and clean up the leaf. */
	for (int i = 0; i < 2; i++) {
		fd_close(pin[i]);
		fd_close(pout[i]);
		fd_close(perr[i]);
	}
	S.fail.error = -r;
	S.fail.stage = strcmp(fail_stage, "cgroup") == 0 ? STAGE_CGROUP : STAGE_SETUP;
	S.failed = true;
	warnx_("cannot start the job (%s): %s", fail_stage, strerror(-r));
	if (S.cgroup[0] != '\0')
		rmdir(S.cgroup);
	send_exit();
}

int
main(void)
{
	sigset_t mask;

	S.self = getpid();
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd) /* cloexec: n/a */
			return 1;
	check_channel();
	pidset_init(&S.leftovers);
	/* heidid resets every disposition at start-up and its spawn resets
	 * SIGPIPE, so all are at their default here; SIGPIPE is the only one we
	 * change, and the job's child undoes it */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	S.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	S.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (S.sigfd < 0 || S.tfd < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("heidi-shepherd: setup");
		return 1;
	}
	for (;;) {
		struct pack_doc doc;
		char *specbuf = NULL;
		const struct shep_spec *sp;

		pack_doc_init(&doc);
		sp = recv_spec(&doc, &specbuf); /* exits when heidid closes the channel */
		run_job(sp);
		pack_doc_deinit(&doc);
		free(specbuf);
		if (!S.chan_open)
			return 0; /* heidid is gone: nobody to serve */
		job_reset();
	}
}
