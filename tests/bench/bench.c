/*
 * heidi-bench: heidi's speed and memory, measured side by side with the
 * floor (plain fork/exec/wait) and with task-spooler and nq in one run,
 * and printed as a table of ratios against the targets of
 * docs/performance.md.  Absolute times drift between runs and machines;
 * the ratios are what count.
 *
 *   heidi-bench [--smoke] [--only NAME]...
 *
 * It starts its own heidid instances in a private directory and ends only
 * the processes it started (by pid).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/proc.h"

extern char **environ;

static bool smoke;
static const char *only[16];
static int n_only;
static char dir[256];
static int failures;

struct row {
	char what[64];
	char heidi[32];
	char ref[48];
	char ratio[16];
	char target[24];
	const char *verdict;
};

static struct row rows[32];
static int n_rows;

/* ---- small helpers ---- */

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
msleep(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static _Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static _Noreturn void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "heidi-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(2);
}

static bool
wanted(const char *name)
{
	if (n_only == 0)
		return true;
	for (int i = 0; i < n_only; i++)
		if (strcmp(only[i], name) == 0)
			return true;
	return false;
}

static void
add_row(const char *what, const char *heidi, const char *ref, double ratio, const char *target,
    bool ok)
{
	struct row *r = &rows[n_rows++];

	snprintf(r->what, sizeof(r->what), "%s", what);
	snprintf(r->heidi, sizeof(r->heidi), "%s", heidi);
	snprintf(r->ref, sizeof(r->ref), "%s", ref);
	if (ratio >= 0)
		snprintf(r->ratio, sizeof(r->ratio), "%.2f", ratio);
	else
		snprintf(r->ratio, sizeof(r->ratio), "-");
	snprintf(r->target, sizeof(r->target), "%s", target);
	r->verdict = ok ? "met" : "MISSED";
	if (!ok)
		failures++;
	printf("  %-40s %-12s %-26s %-6s %-12s %s\n", r->what, r->heidi, r->ref, r->ratio, r->target,
	    r->verdict);
	fflush(stdout);
}

/* Run argv with stdout/stderr to /dev/null (or to out_fd); wait; exit status or -1. */
static int
run(char *const argv[], char *const envp[], int out_fd)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, r;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (out_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	else
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	r = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp ? envp : environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return -1;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run argv and return its first line of output (malloc'd). */
static char *
run_capture(char *const argv[], char *const envp[])
{
	char path[300], *buf;
	int fd, n;

	snprintf(path, sizeof(path), "%s/capture", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	run(argv, envp, fd);
	buf = calloc(1, 1 << 20);
	n = (int)pread(fd, buf, (1 << 20) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

static const char *heidid_path, *heidictl_path, *shepherd_path;

struct daemon {
	pid_t pid;
	char sock[300];
	char name[32];
};

static void
daemon_start(struct daemon *d, const char *name, const char *const *extra)
{
	char state[300], log[300];
	char *argv[32];
	int n = 0, notify[2];
	char c;
	pid_t parent = getpid();

	snprintf(d->name, sizeof(d->name), "%s", name);
	snprintf(d->sock, sizeof(d->sock), "%s/%s.sock", dir, name);
	snprintf(state, sizeof(state), "%s/%s-state", dir, name);
	snprintf(log, sizeof(log), "%s/%s.log", dir, name);
	argv[n++] = (char *)heidid_path;
	argv[n++] = (char *)"-s";
	argv[n++] = d->sock;
	argv[n++] = (char *)"--state-dir";
	argv[n++] = state;
	argv[n++] = (char *)"--log-file";
	argv[n++] = log;
	argv[n++] = (char *)"--shepherd";
	argv[n++] = (char *)shepherd_path;
	argv[n++] = (char *)"--notify-fd";
	argv[n++] = (char *)"3";
	for (int i = 0; extra != NULL && extra[i] != NULL; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	if (pipe2(notify, O_CLOEXEC) < 0)
		die("pipe");
	d->pid = fork();
	if (d->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		/* dup2 clears close-on-exec on 3 (a no-op dup2 would not) */
		if (notify[1] == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(notify[1], 3) < 0)
			_exit(1);
		for (int fd = 4; fd < 256; fd++)
			close(fd);
		execv(argv[0], argv);
		_exit(127);
	}
	close(notify[1]);
	if (read(notify[0], &c, 1) != 1)
		die("heidid did not start (see %s)", log);
	close(notify[0]);
}

static void
daemon_stop(struct daemon *d)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, SIGTERM);
	waitpid(d->pid, NULL, 0);
	d->pid = 0;
}

static int
ctl(struct daemon *d, ...)
{
	char *argv[64];
	int n = 0;
	va_list ap;
	const char *a;

	argv[n++] = (char *)heidictl_path;
	argv[n++] = (char *)"-s";
	argv[n++] = d->sock;
	va_start(ap, d);
	while ((a = va_arg(ap, const char *)) != NULL && n < 63)
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	return run(argv, NULL, -1);
}

static long
status_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	long kb = -1;
	size_t kl = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, kl) == 0) {
			kb = atol(line + kl + 1);
			break;
		}
	if (f != NULL)
		fclose(f);
	return kb;
}

static long
pss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	f = fopen(path, "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Pss: %ld", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kb;
}

static int
children_of(pid_t parent, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char path[64], buf[512], *p;
		FILE *f;
		int pp;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		fclose(f);
		if (p != NULL && sscanf(p + 2, "%*c %d", &pp) == 1 && pp == parent && p[2] != 'Z') {
			if (n < max)
				out[n] = atoi(de->d_name);
			n++;
		}
	}
	if (d != NULL)
		closedir(d);
	return n;
}

/* ticks (utime + stime) of a process, 0 if it is gone */
static long
cpu_ticks(pid_t pid)
{
	struct proc_stat st;

	return proc_stat_read(pid, &st) < 0 ? 0 : (long)(st.utime + st.stime);
}

/* Live processes carrying the marker of this heidid instance. */
static int
count_marked(const char *instance)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	char suffix[64];
	int n = 0;

	snprintf(suffix, sizeof(suffix), "@%s", instance);
	while (d != NULL && (de = readdir(d)) != NULL) {
		char path[300], buf[16384];
		ssize_t len;
		int fd;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/environ", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		for (ssize_t off = 0; off < len; off += (ssize_t)strlen(buf + off) + 1)
			if (strncmp(buf + off, "HEIDI_JOB_ID=", 13) == 0 &&
			    strstr(buf + off, suffix) != NULL) {
				n++;
				break;
			}
	}
	if (d != NULL)
		closedir(d);
	return n;
}

static char *
instance_of(struct daemon *d)
{
	char *argv[] = { (char *)heidictl_path, (char *)"-s", d->sock, (char *)"--json",
		(char *)"ping", NULL };
	char *out = run_capture(argv, NULL), *p = strstr(out, "\"instance\":\"");
	static char inst[32];

	if (p == NULL)
		die("no instance in %s", out);
	snprintf(inst, sizeof(inst), "%.12s", p + 12);
	free(out);
	return inst;
}

static int
count_state(struct daemon *d, const char *state)
{
	char *argv[] = { (char *)heidictl_path, (char *)"-s", d->sock, (char *)"--json",
		(char *)"ps", NULL };
	char *out = run_capture(argv, NULL), pat[64];
	int n = 0;

	snprintf(pat, sizeof(pat), "\"state\":\"%s\"", state);
	for (char *p = out; (p = strstr(p, pat)) != NULL; p++)
		n++;
	free(out);
	return n;
}

static char *
envp_with(const char *var)
{
	(void)var;
	return NULL;
}

/* ---- the benchmarks ---- */

/* Interleaved rounds: a drift of the machine hits every contestant alike. */
static void
bench_seq(void)
{
	int rounds = smoke ? 3 : 30, per = 10;
	struct daemon d;
	char *true_argv[] = { (char *)"/bin/true", NULL };
	char *heidi_argv[] = { (char *)heidictl_path, (char *)"-s", NULL, (char *)"spawn",
		(char *)"--", (char *)"/bin/true", NULL };
	char *tsp[] = { (char *)"/usr/bin/tsp", (char *)"-nf", (char *)"/bin/true", NULL };
	char *nq[] = { (char *)"/usr/bin/nq", (char *)"-q", (char *)"-c", (char *)"/bin/true", NULL };
	char *nqw[] = { (char *)"/usr/bin/nq", (char *)"-w", NULL };
	char ts_env[400], nq_env[400], nqdir[300], *tsp_envp[64], *nq_envp[64];
	double t_floor = 0, t_heidi = 0, t_tsp = 0, t_nq = 0;
	bool have_tsp = access(tsp[0], X_OK) == 0, have_nq = access(nq[0], X_OK) == 0;
	int k = 0, n;

	daemon_start(&d, "seq", NULL);
	heidi_argv[2] = d.sock;
	snprintf(ts_env, sizeof(ts_env), "TS_SOCKET=%s/ts-seq.sock", dir);
	snprintf(nq_env, sizeof(nq_env), "NQDIR=%s/nq", dir);
	snprintf(nqdir, sizeof(nqdir), "%s/nq", dir);
	mkdir(nqdir, 0700);
	for (char **e = environ; *e != NULL && k < 60; e++)
		if (strncmp(*e, "TS_", 3) != 0 && strncmp(*e, "NQDIR=", 6) != 0) {
			tsp_envp[k] = nq_envp[k] = *e;
			k++;
		}
	tsp_envp[k] = ts_env;
	tsp_envp[k + 1] = NULL;
	nq_envp[k] = nq_env;
	nq_envp[k + 1] = NULL;
	/* warm up every contestant */
	for (int i = 0; i < 10; i++) {
		run(true_argv, NULL, -1);
		run(heidi_argv, NULL, -1);
		if (have_tsp)
			run(tsp, tsp_envp, -1);
	}
	for (int r = 0; r < rounds; r++) {
		double t0 = now();

		for (int i = 0; i < per; i++)
			run(true_argv, NULL, -1);
		t_floor += now() - t0;
		t0 = now();
		for (int i = 0; i < per; i++)
			if (run(heidi_argv, NULL, -1) != 0)
				die("heidictl spawn failed");
		t_heidi += now() - t0;
		if (have_tsp) {
			t0 = now();
			for (int i = 0; i < per; i++)
				run(tsp, tsp_envp, -1);
			t_tsp += now() - t0;
		}
		if (have_nq) {
			t0 = now();
			for (int i = 0; i < per; i++) {
				run(nq, nq_envp, -1);
				run(nqw, nq_envp, -1);
			}
			t_nq += now() - t0;
		}
	}
	if (have_tsp) {
		char *kill_ts[] = { (char *)"/usr/bin/tsp", (char *)"-K", NULL };

		run(kill_ts, tsp_envp, -1);
	}
	daemon_stop(&d);
	n = rounds * per;
	{
		double f = t_floor * 1000 / n, h = t_heidi * 1000 / n, ts = t_tsp * 1000 / n,
		       q = t_nq * 1000 / n;
		char hs[32], r[48];

		snprintf(hs, sizeof(hs), "%.2f ms", h);
		snprintf(r, sizeof(r), "floor %.2f ms", f);
		add_row("seq spawn+wait /bin/true, per job", hs, r, h / f, "<= 2.5", h <= 2.5 * f);
		if (have_tsp) {
			snprintf(r, sizeof(r), "tsp -nf %.2f ms", ts);
			add_row("", "", r, h / ts, "<= 1.0", h <= ts);
		}
		if (have_nq) {
			snprintf(r, sizeof(r), "nq + nq -w %.2f ms", q);
			add_row("", "", r, h / q, "(info)", true);
		}
	}
}

static void
bench_batch(void)
{
	int n = smoke ? 40 : 400;
	struct daemon d;
	const char *extra[] = { "--max-running", "2", "--queue-cap", "100000", NULL };
	char **wait_argv = calloc((size_t)n + 8, sizeof(char *));
	char ts_env[400], *tsp_envp[64];
	double t0, heidi_ms, tsp_ms = -1;
	int k = 0;

	daemon_start(&d, "batch", extra);
	for (int i = 0; i < 10; i++)
		ctl(&d, "spawn", "--", "/bin/true", NULL);
	wait_argv[k++] = (char *)heidictl_path;
	wait_argv[k++] = (char *)"-s";
	wait_argv[k++] = d.sock;
	wait_argv[k++] = (char *)"wait";
	t0 = now();
	for (int i = 0; i < n; i++) {
		char id[32];

		if (ctl(&d, "spawn", "-d", "--", "/bin/true", NULL) != 0)
			die("spawn -d failed");
		snprintf(id, sizeof(id), "%d", 11 + i);
		wait_argv[k++] = strdup(id);
	}
	wait_argv[k] = NULL;
	if (run(wait_argv, NULL, -1) != 0)
		die("wait failed");
	heidi_ms = (now() - t0) * 1000 / n;
	daemon_stop(&d);

	if (access("/usr/bin/tsp", X_OK) == 0) {
		char *slots[] = { (char *)"/usr/bin/tsp", (char *)"-S", (char *)"2", NULL };
		char *one[] = { (char *)"/usr/bin/tsp", (char *)"-n", (char *)"/bin/true", NULL };
		char *wait_last[] = { (char *)"/usr/bin/tsp", (char *)"-w", NULL };
		char *kill_ts[] = { (char *)"/usr/bin/tsp", (char *)"-K", NULL };

		k = 0;
		snprintf(ts_env, sizeof(ts_env), "TS_SOCKET=%s/ts-batch.sock", dir);
		for (char **e = environ; *e != NULL && k < 60; e++)
			if (strncmp(*e, "TS_", 3) != 0)
				tsp_envp[k++] = *e;
		tsp_envp[k++] = ts_env;
		tsp_envp[k++] = (char *)"TS_MAXFINISHED=100000";
		tsp_envp[k] = NULL;
		run(slots, tsp_envp, -1);
		t0 = now();
		for (int i = 0; i < n; i++)
			run(one, tsp_envp, -1);
		run(wait_last, tsp_envp, -1);
		tsp_ms = (now() - t0) * 1000 / n;
		run(kill_ts, tsp_envp, -1);
	}
	{
		char h[32], r[48];

		snprintf(h, sizeof(h), "%.2f ms", heidi_ms);
		if (tsp_ms > 0) {
			snprintf(r, sizeof(r), "tsp -S 2: %.2f ms", tsp_ms);
			add_row("batch of detached jobs, 2 slots, per job", h, r, heidi_ms / tsp_ms, "<= 0.6",
			    heidi_ms <= 0.6 * tsp_ms);
		} else
			add_row("batch of detached jobs, 2 slots, per job", h, "(tsp missing)", -1, "<= 0.6",
			    false);
	}
}

static void
bench_stream(void)
{
	const char *size = smoke ? "64M" : "1G";
	double bytes = smoke ? 64.0 * (1 << 20) : 1024.0 * (1 << 20);
	struct daemon d;
	double t0, raw_s, heidi_s;
	char script[200];
	char *raw[] = { (char *)"/bin/sh", (char *)"-c", script, NULL };

	snprintf(script, sizeof(script), "head -c %s /dev/zero | cat > /dev/null", size);
	daemon_start(&d, "stream", NULL);
	/* warm the page cache and the binaries */
	run(raw, NULL, -1);
	ctl(&d, "spawn", "--", "head", "-c", "16M", "/dev/zero", NULL);
	raw_s = 1e9;
	heidi_s = 1e9;
	for (int rep = 0; rep < (smoke ? 1 : 3); rep++) {
		double t;

		t0 = now();
		run(raw, NULL, -1);
		t = now() - t0;
		raw_s = t < raw_s ? t : raw_s;
		t0 = now();
		if (ctl(&d, "spawn", "--", "head", "-c", size, "/dev/zero", NULL) != 0)
			die("streaming spawn failed");
		t = now() - t0;
		heidi_s = t < heidi_s ? t : heidi_s;
	}
	daemon_stop(&d);
	{
		char h[32], r[48];
		double hr = bytes / heidi_s / (1 << 20), rr = bytes / raw_s / (1 << 20);

		snprintf(h, sizeof(h), "%.0f MiB/s", hr);
		snprintf(r, sizeof(r), "head | cat %.0f MiB/s", rr);
		add_row(smoke ? "stream 64 MiB to /dev/null (best of 1)" : "stream 1 GiB to /dev/null (best of 3)",
		    h, r, hr / rr, ">= 0.8", hr >= 0.8 * rr);
	}
}

static void
bench_memory(void)
{
	int n = smoke ? 10 : 50;
	struct daemon d;
	const char *extra[] = { "--max-running", "200", "--shepherd-pool", "0", NULL };
	pid_t kids[256];
	long base, with, pss = 0;
	int k;

	daemon_start(&d, "mem", extra);
	ctl(&d, "spawn", "--", "/bin/true", NULL);
	msleep(200);
	base = status_kb(d.pid, "VmRSS:");
	for (int i = 0; i < n; i++)
		ctl(&d, "spawn", "-d", "--", "sleep", "1000", NULL);
	while (count_state(&d, "running") < n)
		msleep(20);
	msleep(300);
	with = status_kb(d.pid, "VmRSS:");
	k = children_of(d.pid, kids, 256);
	for (int i = 0; i < k; i++)
		pss += pss_kb(kids[i]);
	daemon_stop(&d);
	{
		char h[32], r[48];
		double mean = k > 0 ? (double)pss / k : -1;
		double per_job = (double)(with - base) / n;

		snprintf(h, sizeof(h), "%.0f KiB", mean);
		snprintf(r, sizeof(r), "mean of %d idle shepherds", k);
		add_row("shepherd PSS", h, r, -1, "<= 120 KiB", mean > 0 && mean <= 120);
		snprintf(h, sizeof(h), "%.1f KiB", per_job);
		snprintf(r, sizeof(r), "RSS %ld -> %ld KiB", base, with);
		add_row("heidid RSS per running job", h, r, -1, "<= 8 KiB", per_job <= 8);
	}
}

static void
bench_kill(void)
{
	int n = smoke ? 10 : 50;
	struct daemon d;
	const char *extra[] = { "--max-running", "200", NULL };
	char *inst;
	double t0, ms;

	daemon_start(&d, "kill", extra);
	inst = strdup(instance_of(&d));
	for (int i = 0; i < n; i++)
		ctl(&d, "spawn", "-d", "--", "sh", "-c", "sleep 1000 & setsid sleep 1000 & exec sleep 1000", NULL);
	while (count_state(&d, "running") < n)
		msleep(20);
	while (count_marked(inst) < 3 * n)
		msleep(20);
	t0 = now();
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	d.pid = 0;
	while (count_marked(inst) > 0) {
		if (now() - t0 > 10)
			break;
	}
	ms = (now() - t0) * 1000;
	{
		char h[32], r[48];

		snprintf(h, sizeof(h), "%.0f ms", ms);
		snprintf(r, sizeof(r), "%d jobs, %d processes", n, 3 * n);
		add_row("all job processes gone after SIGKILL", h, r, -1, "<= 300 ms", ms <= 300);
	}
	/*
	 * The instance's cgroup directory, and the empty leaves of the jobs
	 * whose shepherds died with heidid, stay behind a SIGKILLed heidid
	 * until one starts on the same socket: remove them.
	 */
	for (int i = 0; i < 2; i++) {
		char p[300], leaf[600];
		DIR *dd;
		struct dirent *de;

		snprintf(p, sizeof(p), "%s/%s", i == 0 ? "/sys/fs/cgroup/unified/heidi" : "/sys/fs/cgroup/heidi",
		    inst);
		if ((dd = opendir(p)) == NULL)
			continue;
		while ((de = readdir(dd)) != NULL)
			if (strncmp(de->d_name, "job-", 4) == 0) {
				snprintf(leaf, sizeof(leaf), "%s/%s", p, de->d_name);
				rmdir(leaf);
			}
		closedir(dd);
		rmdir(p);
	}
	free(inst);
}

static void
bench_idle(void)
{
	int secs = smoke ? 2 : 10;
	struct daemon d;
	const char *extra[] = { "--max-running", "100", NULL };
	pid_t kids[256];
	long h0, h1, s0 = 0, s1 = 0;
	int k;

	daemon_start(&d, "idle", extra);
	for (int i = 0; i < 20; i++)
		ctl(&d, "spawn", "-d", "--", "sleep", "1000", NULL);
	while (count_state(&d, "running") < 20)
		msleep(20);
	msleep(500);
	k = children_of(d.pid, kids, 256);
	h0 = cpu_ticks(d.pid);
	for (int i = 0; i < k; i++)
		s0 += cpu_ticks(kids[i]);
	msleep(secs * 1000);
	h1 = cpu_ticks(d.pid);
	for (int i = 0; i < k; i++)
		s1 += cpu_ticks(kids[i]);
	daemon_stop(&d);
	{
		char h[32], r[48], what[64];

		snprintf(what, sizeof(what), "idle CPU ticks in %d s, 20 sleeping jobs", secs);
		snprintf(h, sizeof(h), "%ld heidid", h1 - h0);
		snprintf(r, sizeof(r), "%ld for %d shepherds", s1 - s0, k);
		add_row(what, h, r, -1, "0 / <= 1", h1 - h0 == 0 && s1 - s0 <= 1);
	}
}

static void
bench_scale(void)
{
	int n = smoke ? 200 : 2000;
	struct daemon d;
	char cap[16];
	const char *extra[] = { "--max-running", cap, "--queue-cap", "100000", NULL };
	double t0, ps_ms = 1e9, start_s;
	long rss0, rss;
	int running = 0;

	snprintf(cap, sizeof(cap), "%d", n + 100);
	daemon_start(&d, "scale", extra);
	rss0 = status_kb(d.pid, "VmRSS:");
	t0 = now();
	for (int i = 0; i < n; i++)
		if (ctl(&d, "spawn", "-d", "--", "sleep", "1000", NULL) != 0)
			die("spawn %d of %d failed", i, n);
	while ((running = count_state(&d, "running")) < n && now() - t0 < 300)
		msleep(100);
	start_s = now() - t0;
	for (int i = 0; i < 5; i++) {
		double t1 = now(), t;

		ctl(&d, "ps", NULL);
		t = (now() - t1) * 1000;
		ps_ms = t < ps_ms ? t : ps_ms;
	}
	rss = status_kb(d.pid, "VmRSS:");
	{
		char h[32], r[64], what[64];

		snprintf(what, sizeof(what), "%d concurrent sleeping jobs", n);
		snprintf(h, sizeof(h), "%d running", running);
		snprintf(r, sizeof(r), "in %.1f s; heidid RSS %ld -> %ld KiB", start_s, rss0, rss);
		add_row(what, h, r, -1, "all run", running == n);
		snprintf(h, sizeof(h), "%.0f ms", ps_ms);
		add_row("  ps with all of them", h, "best of 5", -1, "< 200 ms", ps_ms < 200);
	}
	/* shutting down stops them all */
	t0 = now();
	{
		char grace[] = "--grace";
		(void)grace;
	}
	ctl(&d, "shutdown", "--grace", "0", NULL);
	waitpid(d.pid, NULL, 0);
	d.pid = 0;

	/* at a low fd limit: jobs queue (or are refused cleanly), heidid stays up */
	{
		struct daemon l;
		struct rlimit old, low = { 256, 256 };
		const char *lextra[] = { "--max-running", "1000", NULL };
		int ok = 0, refused = 0, q, r;

		getrlimit(RLIMIT_NOFILE, &old);
		setrlimit(RLIMIT_NOFILE, &low); /* inherited by the heidid we start next */
		daemon_start(&l, "lowfd", lextra);
		setrlimit(RLIMIT_NOFILE, &old);
		for (int i = 0; i < 100; i++) {
			if (ctl(&l, "spawn", "-d", "--", "sleep", "1000", NULL) == 0)
				ok++;
			else
				refused++;
		}
		msleep(500);
		r = count_state(&l, "running");
		q = count_state(&l, "queued");
		{
			char h[48], rr[64];
			bool alive = kill(l.pid, 0) == 0 && ctl(&l, "ping", NULL) == 0;

			snprintf(h, sizeof(h), "%d run, %d queue", r, q);
			snprintf(rr, sizeof(rr), "fd limit 256, 100 jobs, %d refused", refused);
			add_row("at the fd limit", h, rr, -1, "queue, no crash", alive && r + q == ok);
		}
		ctl(&l, "shutdown", "--grace", "0", NULL);
		waitpid(l.pid, NULL, 0);
	}
}

int
main(int argc, char **argv)
{
	char self[4096], *slash;
	ssize_t n;
	static char hd[4200], hc[4200], sh[4200];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--smoke") == 0)
			smoke = true;
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc && n_only < 16)
			only[n_only++] = argv[++i];
		else {
			fprintf(stderr, "usage: heidi-bench [--smoke] [--only seq|batch|stream|memory|kill|idle|scale]...\n");
			return 2;
		}
	}
	/* the binaries: from the environment, else the build tree we live in */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		die("readlink");
	self[n] = '\0';
	slash = strrchr(self, '/');
	*slash = '\0';
	snprintf(hd, sizeof(hd), "%s/../../heidid/heidid", self);
	snprintf(hc, sizeof(hc), "%s/../../heidictl/heidictl", self);
	snprintf(sh, sizeof(sh), "%s/../../shepherd/heidi-shepherd", self);
	heidid_path = getenv("HEIDID") ? getenv("HEIDID") : hd;
	heidictl_path = getenv("HEIDICTL") ? getenv("HEIDICTL") : hc;
	shepherd_path = getenv("HEIDI_SHEPHERD") ? getenv("HEIDI_SHEPHERD") : sh;
	if (access(heidid_path, X_OK) < 0 || access(heidictl_path, X_OK) < 0)
		die("cannot find heidid/heidictl next to %s", self);
	snprintf(dir, sizeof(dir), "/tmp/heidi-bench-XXXXXX");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	signal(SIGPIPE, SIG_IGN);
	(void)envp_with;

	printf("heidi-bench%s: ratios are heidi / reference, measured side by side in this run\n\n",
	    smoke ? " (smoke run: small sizes)" : "");
	printf("  %-40s %-12s %-26s %-6s %-12s %s\n", "benchmark", "heidi", "reference", "ratio",
	    "target", "");
	if (wanted("seq"))
		bench_seq();
	if (wanted("batch"))
		bench_batch();
	if (wanted("stream"))
		bench_stream();
	if (wanted("memory"))
		bench_memory();
	if (wanted("kill"))
		bench_kill();
	if (wanted("idle"))
		bench_idle();
	if (wanted("scale"))
		bench_scale();
	printf("\n%d of %d targets met\n", n_rows - failures, n_rows);
	{
		char *rm[] = { (char *)"/bin/rm", (char *)"-rf", dir, NULL };

		run(rm, NULL, -1);
	}
	/* a smoke run checks that everything runs, not the targets */
	return smoke ? 0 : (failures > 0 ? 1 : 0);
}
