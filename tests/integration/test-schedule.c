/*
 * test-schedule.c: bounded, deterministic, idle at zero (issue:
 * scheduling, limits and shutdown).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/proc.h"
#include "tests/integration/harness.h"

static struct hd H;

static void
teardown(void)
{
	hd_cleanup(&H);
}

TestSuite(schedule, .fini = teardown, .timeout = 180);

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (f == NULL)
		return strdup("");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* ticks (utime + stime) of a process, -1 if it is gone */
static long
cpu_ticks(pid_t pid)
{
	struct proc_stat st;

	return proc_stat_read(pid, &st) < 0 ? -1 : (long)(st.utime + st.stime);
}


Test(schedule, never_more_than_max_running_at_once_and_all_run)
{
	char log[512], script[800];
	struct result r;
	int running = 0, peak = 0, starts = 0;

	hd_start(&H, "--max-running", "2", NULL);
	snprintf(log, sizeof(log), "%s/intervals", H.dir);
	snprintf(script, sizeof(script), "echo S >> %s; sleep 0.3; echo E >> %s", log, log);
	for (int i = 0; i < 6; i++) {
		ctl(&H, &r, "spawn", "-d", "--", "sh", "-c", script, NULL);
		cr_assert_eq(r.status, 0);
		result_free(&r);
	}
	ctl(&H, &r, "--json", "ps", NULL);
	cr_assert_not_null(strstr(r.out, "\"state\":\"queued\""), "queued jobs show in ps: %s", r.out);
	result_free(&r);
	ctl(&H, &r, "wait", "1", "2", "3", "4", "5", "6", NULL);
	cr_assert_eq(r.status, 0);
	result_free(&r);
	{
		char *s = slurp(log);

		for (char *p = s; *p; p++) {
			if (*p == 'S') {
				running++;
				starts++;
			} else if (*p == 'E')
				running--;
			if (running > peak)
				peak = running;
		}
		free(s);
	}
	cr_assert_eq(starts, 6, "all 6 jobs run");
	cr_assert_leq(peak, 2, "%d jobs ran at once", peak);
	cr_assert_eq(peak, 2, "the two slots were used");
}

Test(schedule, jobs_run_in_submission_order)
{
	char log[512];
	struct result r;
	char *s;

	hd_start(&H, "--max-running", "1", NULL);
	snprintf(log, sizeof(log), "%s/order", H.dir);
	for (int i = 0; i < 10; i++) {
		char script[700];

		snprintf(script, sizeof(script), "echo %d >> %s", i, log);
		ctl(&H, &r, "spawn", "-d", "--", "sh", "-c", script, NULL);
		result_free(&r);
	}
	ctl(&H, &r, "wait", "10", NULL);
	result_free(&r);
	ctl(&H, &r, "wait", "1", "2", "3", "4", "5", "6", "7", "8", "9", NULL);
	result_free(&r);
	s = slurp(log);
	cr_assert_str_eq(s, "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n");
	free(s);
}

Test(schedule, a_full_queue_refuses_at_once_and_memory_does_not_grow)
{
	struct result r;
	int accepted = 0, refused = 0;
	long before, after;

	hd_start(&H, "--max-running", "1", "--queue-cap", "3", NULL);
	for (int i = 0; i < 8; i++) {
		ctl(&H, &r, "spawn", "-d", "--", "sleep", "100", NULL);
		if (r.status == 0)
			accepted++;
		else {
			cr_assert_eq(r.status, 125);
			cr_assert_not_null(strstr(r.err, "queue is full"), "%s", r.err);
			cr_assert_eq(strchr(r.err, '\n'), r.err + r.err_len - 1, "one line: %s", r.err);
			refused++;
		}
		result_free(&r);
	}
	cr_assert_eq(accepted, 4, "1 running + 3 queued");
	cr_assert_eq(refused, 4);
	/* refusals cost nothing */
	before = vm_rss_kb(H.pid);
	for (int i = 0; i < 300; i++) {
		ctl(&H, &r, "spawn", "-d", "--", "sleep", "100", NULL);
		cr_assert_eq(r.status, 125);
		result_free(&r);
	}
	after = vm_rss_kb(H.pid);
	assert_rss_growth(before, after, 1024, "refusing 300 jobs");
	ctl(&H, &r, "--json", "stats", NULL);
	cr_assert_eq(json_int(r.out, "jobs_refused_queue_full"), 304);
	cr_assert_eq(json_int(r.out, "queued"), 3);
	result_free(&r);
}

Test(schedule, kill_or_stop_of_a_queued_job_cancels_it)
{
	struct result r;

	hd_start(&H, "--max-running", "1", NULL);
	ctl(&H, &r, "spawn", "-d", "-n", "busy", "--", "sleep", "100", NULL);
	result_free(&r);
	ctl(&H, &r, "spawn", "-d", "-n", "q1", "--", "sleep", "100", NULL);
	result_free(&r);
	ctl(&H, &r, "spawn", "-d", "-n", "q2", "--", "sleep", "100", NULL);
	result_free(&r);
	ctl(&H, &r, "kill", "q1", NULL);
	cr_assert_eq(r.status, 0);
	result_free(&r);
	ctl(&H, &r, "stop", "q2", NULL);
	cr_assert_eq(r.status, 0);
	result_free(&r);
	ctl(&H, &r, "--json", "status", "q1", NULL);
	cr_assert_str_eq(json_field(r.out, "reason"), "cancelled");
	cr_assert_str_eq(json_field(r.out, "pid"), "null");
	result_free(&r);
	ctl(&H, &r, "wait", "q2", NULL);
	cr_assert_eq(r.status, 125);
	cr_assert_not_null(strstr(r.err, "cancelled"), "%s", r.err);
	result_free(&r);
	ctl(&H, &r, "stop", "--grace", "1s", "busy", NULL);
	result_free(&r);
}

Test(schedule, the_spawn_rate_limit_spreads_starts)
{
	char log[512], script[700];
	struct result r;
	long long first = 0, last = 0;
	char *s, *p;

	hd_start(&H, "--max-running", "20", "--max-spawn-rate", "5/s", NULL);
	snprintf(log, sizeof(log), "%s/starts", H.dir);
	snprintf(script, sizeof(script), "date +%%s%%N >> %s", log);
	for (int i = 0; i < 10; i++) {
		ctl(&H, &r, "spawn", "-d", "--", "sh", "-c", script, NULL);
		result_free(&r);
	}
	ctl(&H, &r, "wait", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", NULL);
	result_free(&r);
	s = slurp(log);
	for (p = s; *p; p = strchr(p, '\n') + 1) {
		long long t = atoll(p) / 1000000;

		if (first == 0 || t < first)
			first = t;
		if (t > last)
			last = t;
	}
	free(s);
	/* a burst of 5, then 5 a second: the 10th starts about 1 s after the first */
	cr_assert_geq(last - first, 800, "10 starts within %lld ms at 5/s", last - first);
}

Test(schedule, a_timeout_stops_a_term_ignoring_job_after_the_grace)
{
	struct result r;
	long long t0 = now_ms(), elapsed;

	hd_start(&H, NULL);
	ctl(&H, &r, "spawn", "-n", "slow", "--timeout", "1s", "--grace", "1s", "--",
	    path_helper("ignoreterm"), NULL);
	elapsed = now_ms() - t0;
	cr_assert_eq(r.status, 137, "status %d: %s", r.status, r.err);
	result_free(&r);
	cr_assert_geq(elapsed, 1900, "killed after %lld ms, before timeout + grace", elapsed);
	cr_assert_lt(elapsed, 2000 + 8000, "killed after %lld ms", elapsed);
	ctl(&H, &r, "--json", "status", "slow", NULL);
	cr_assert_str_eq(json_field(r.out, "reason"), "timeout");
	cr_assert_eq(json_int(r.out, "signal"), SIGKILL);
	result_free(&r);
}

Test(schedule, a_timeout_that_term_ends_reports_timeout_and_143)
{
	struct result r;

	hd_start(&H, NULL);
	ctl(&H, &r, "spawn", "-n", "t2", "--timeout", "300ms", "--", "sleep", "100", NULL);
	cr_assert_eq(r.status, 143);
	result_free(&r);
	ctl(&H, &r, "--json", "status", "t2", NULL);
	cr_assert_str_eq(json_field(r.out, "reason"), "timeout");
	result_free(&r);
}

Test(schedule, nice_is_applied)
{
	struct result r;

	hd_start(&H, NULL);
	ctl(&H, &r, "spawn", "--nice", "7", "--", "nice", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "7\n");
	result_free(&r);
}

Test(schedule, shutdown_lets_jobs_finish_within_the_grace_then_kills_the_rest)
{
	char pf[512], quick[512], script[800];
	struct result r;
	pid_t stubborn;
	int st;

	hd_start(&H, "--max-running", "4", NULL);
	snprintf(pf, sizeof(pf), "%s/stubborn.pid", H.dir);
	snprintf(quick, sizeof(quick), "%s/quick.done", H.dir);
	snprintf(script, sizeof(script), "sleep 1; echo done > %s", quick);
	ctl(&H, &r, "spawn", "-d", "-n", "quick", "--", "sh", "-c", script, NULL);
	result_free(&r);
	ctl(&H, &r, "spawn", "-d", "-n", "stubborn", "--", path_helper("ignoreterm"), pf, NULL);
	result_free(&r);
	stubborn = read_pid_file(pf, 10000);
	wait_running(&H, "quick");
	ctl(&H, &r, "shutdown", "--grace", "2s", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	result_free(&r);
	st = hd_wait(&H, 20000);
	cr_assert_eq(st, 1, "a tree had to be killed: heidid exits 1 (got %d)", st);
	cr_assert_eq(access(quick, F_OK), 0, "the quick job did not complete");
	cr_assert(!pid_alive(stubborn), "the TERM-ignoring job survived shutdown");
	cr_assert_neq(access(H.sock, F_OK), 0, "the socket is still there");
	cr_assert(wait_no_marked(H.instance, 5000));
	{
		/* the records say what happened */
		char dir[256];

		snprintf(dir, sizeof(dir), "%s", H.dir);
		hd_start_in(&H, dir, NULL);
		ctl(&H, &r, "--json", "status", "quick", NULL);
		cr_assert_str_eq(json_field(r.out, "reason"), "exited");
		result_free(&r);
		ctl(&H, &r, "--json", "status", "stubborn", NULL);
		cr_assert_str_eq(json_field(r.out, "reason"), "shutdown");
		result_free(&r);
	}
}

Test(schedule, shutdown_reports_queued_jobs_as_not_run_and_exits_0)
{
	struct result r;
	struct bg b;
	int st;

	hd_start(&H, "--max-running", "1", NULL);
	ctl(&H, &r, "spawn", "-d", "-n", "short", "--", "sleep", "0.5", NULL);
	result_free(&r);
	ctl_bg(&H, &b, "spawn", "-n", "waiting", "--", "echo", "never", NULL);
	wait_running(&H, "short");
	msleep(100);
	kill(H.pid, SIGTERM);
	bg_finish(&b, &r, 30000);
	cr_assert_eq(r.status, 125);
	cr_assert_str_eq(r.out, "");
	cr_assert_not_null(strstr(r.err, "was not run: heidid shut down"), "%s", r.err);
	result_free(&r);
	st = hd_wait(&H, 20000);
	cr_assert_eq(st, 0, "nothing had to be killed: exit 0 (got %d)", st);
}

Test(schedule, an_idle_heidid_and_its_shepherds_use_no_cpu, .timeout = 120)
{
	struct result r;
	pid_t sheps[32];
	long hd0, hd1, sh0 = 0, sh1 = 0;
	int n;

	hd_start(&H, "--max-running", "32", NULL);
	for (int i = 0; i < 20; i++) {
		ctl(&H, &r, "spawn", "-d", "--", "sleep", "1000", NULL);
		cr_assert_eq(r.status, 0);
		result_free(&r);
	}
	wait_running(&H, "20");
	msleep(500);
	n = children_of(H.pid, sheps, 32);
	cr_assert_geq(n, 20, "%d shepherds (20 jobs and the idle pool)", n);
	hd0 = cpu_ticks(H.pid);
	for (int i = 0; i < n; i++)
		sh0 += cpu_ticks(sheps[i]);
	msleep(10000);
	hd1 = cpu_ticks(H.pid);
	for (int i = 0; i < n; i++)
		sh1 += cpu_ticks(sheps[i]);
	cr_assert_eq(hd1 - hd0, 0, "heidid used %ld ticks in 10 s of idling", hd1 - hd0);
	cr_assert_leq(sh1 - sh0, 1, "the shepherds used %ld ticks in 10 s of idling", sh1 - sh0);
}

Test(schedule, sighup_reopens_the_log_and_sigusr1_writes_stats)
{
	char moved[512];
	char *log;

	hd_start(&H, NULL);
	snprintf(moved, sizeof(moved), "%s.1", H.log);
	cr_assert_eq(rename(H.log, moved), 0);
	kill(H.pid, SIGHUP);
	msleep(200);
	kill(H.pid, SIGUSR1);
	{
		long long end = now_ms() + 10000;

		for (;;) {
			log = slurp(H.log);
			if (strstr(log, "stats:") != NULL || now_ms() > end)
				break;
			free(log);
			msleep(20);
		}
	}
	cr_assert_not_null(strstr(log, "stats:"), "no stats in the reopened log: %s", log);
	free(log);
}

Test(schedule, stats_report_outcomes_queue_and_latency)
{
	struct result r;
	char *v;

	hd_start(&H, NULL);
	ctl(&H, &r, "spawn", "--", "true", NULL);
	result_free(&r);
	ctl(&H, &r, "spawn", "--", "false", NULL);
	result_free(&r);
	ctl(&H, &r, "spawn", "--", "sh", "-c", "kill $$", NULL);
	result_free(&r);
	ctl(&H, &r, "--json", "stats", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(json_int(r.out, "jobs_finished"), 3);
	cr_assert_eq(json_int(r.out, "exited"), 2);
	cr_assert_eq(json_int(r.out, "signaled"), 1);
	cr_assert_eq(json_int(r.out, "running"), 0);
	cr_assert_eq(json_int(r.out, "queued"), 0);
	cr_assert_eq(json_int(r.out, "samples"), 3);
	cr_assert_gt(json_int(r.out, "p50"), 0);
	v = json_field(r.out, "uptime_ms");
	cr_assert_not_null(v);
	free(v);
	result_free(&r);
	ctl(&H, &r, "stats", NULL);
	cr_assert_not_null(strstr(r.out, "spawn_latency_us:"), "%s", r.out);
	result_free(&r);
}

/* ---- limits where the host has the cgroup v2 controllers ---- */

static void
skip_without(const char *opt, const char *value)
{
	struct result r;

	ctl(&H, &r, "spawn", opt, value, "--", "true", NULL);
	if (r.status != 0) {
		char why[600];

		snprintf(why, sizeof(why), "%s", r.err);
		result_free(&r);
		/* a skipped test gets no .fini: stop heidid (and its cgroup) here */
		hd_cleanup(&H);
		cr_skip_test("this host cannot enforce %s: %s", opt, why);
	}
	result_free(&r);
}

Test(schedule, the_limits_are_written_into_the_jobs_cgroup)
{
	struct result r;
	const char *script =
	    "d=$(awk -F: '$1 == \"0\" {print $3}' /proc/self/cgroup); m=$(awk '$3 == \"cgroup2\" {print $2; exit}' /proc/mounts); "
	    "cat $m$d/memory.max $m$d/pids.max $m$d/cpu.max";

	hd_start(&H, NULL);
	skip_without("--mem", "64M");
	skip_without("--pids", "10");
	skip_without("--cpu", "0.5");
	ctl(&H, &r, "spawn", "--mem", "64M", "--pids", "10", "--cpu", "0.5", "--", "sh", "-c", script, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "67108864\n10\n50000 100000\n");
	result_free(&r);
}

Test(schedule, a_job_over_its_memory_limit_is_reported_oom)
{
	struct result r;

	hd_start(&H, NULL);
	skip_without("--mem", "32M");
	ctl(&H, &r, "spawn", "-n", "hog", "--mem", "32M", "--", "python3", "-c",
	    "x = bytearray(256 * 1024 * 1024); print(len(x))", NULL);
	cr_assert_eq(r.status, 137, "%d %s", r.status, r.err);
	result_free(&r);
	ctl(&H, &r, "--json", "status", "hog", NULL);
	cr_assert_str_eq(json_field(r.out, "reason"), "oom", "%s", r.out);
	result_free(&r);
}

Test(schedule, a_job_at_its_pids_limit_cannot_fork_more)
{
	struct result r;

	hd_start(&H, NULL);
	skip_without("--pids", "4");
	ctl(&H, &r, "spawn", "--pids", "4", "--", "sh", "-c",
	    "for i in 1 2 3 4 5 6; do sleep 2 & done 2>/dev/null; jobs -p | wc -l", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_lt(atoi(r.out), 6, "all 6 sleeps started under pids.max 4: %s", r.out);
	result_free(&r);
}
