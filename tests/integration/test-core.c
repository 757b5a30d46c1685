/*
 * test-core.c: heidictl spawn through heidid and a shepherd, end to end
 * (issue: core).  Every test starts its own heidid in a private directory.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/harness.h"

static struct hd H;

static void
setup(void)
{
	hd_start(&H, "--max-running", "32", NULL);
}

static void
teardown(void)
{
	hd_cleanup(&H);
}

TestSuite(core, .init = setup, .fini = teardown, .timeout = 120);

/* The id of the newest job (ps -a --json, last line). */
static long long
last_job_id(void)
{
	struct result r;
	char *last;
	long long id;

	ctl(&H, &r, "--json", "ps", "-a", NULL);
	cr_assert_eq(r.status, 0);
	last = strrchr(r.out, '{');
	cr_assert_not_null(last, "no jobs: %s", r.out);
	id = json_int(last, "id");
	result_free(&r);
	return id;
}

static char *
status_json(long long id)
{
	struct result r;
	char buf[32];
	char *out;

	snprintf(buf, sizeof(buf), "%lld", id);
	ctl(&H, &r, "--json", "status", buf, NULL);
	cr_assert_eq(r.status, 0, "status %s: %s", buf, r.err);
	out = strdup(r.out);
	result_free(&r);
	return out;
}

static void
path_in_dir(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", H.dir, name);
}

/* ---- exit status ---- */

Test(core, exit_codes_0_to_255_pass_through)
{
	for (int code = 0; code < 256; code++) {
		char script[32];
		struct result r;

		snprintf(script, sizeof(script), "exit %d", code);
		ctl(&H, &r, "spawn", "--", "/bin/sh", "-c", script, NULL);
		cr_assert_eq(r.status, code, "exit %d gave %d (stderr: %s)", code, r.status, r.err);
		cr_assert_eq(r.out_len, 0);
		cr_assert_eq(r.err_len, 0, "heidictl added to stderr: %s", r.err);
		result_free(&r);
	}
}

Test(core, death_by_signal_gives_128_plus_n_and_signal_in_status)
{
	static const int sigs[] = { SIGHUP, SIGINT, SIGKILL, SIGUSR1, SIGSEGV, SIGTERM };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		char script[64];
		struct result r;
		char *js;

		snprintf(script, sizeof(script), "kill -%d $$", sigs[i]);
		ctl(&H, &r, "spawn", "--", "/bin/sh", "-c", script, NULL);
		cr_assert_eq(r.status, 128 + sigs[i], "signal %d gave status %d", sigs[i], r.status);
		cr_assert_eq(r.err_len, 0, "heidictl added to stderr: %s", r.err);
		result_free(&r);
		js = status_json(last_job_id());
		cr_assert_eq(json_int(js, "signal"), sigs[i], "%s", js);
		cr_assert_str_eq(json_field(js, "exit_code"), "null");
		cr_assert_str_eq(json_field(js, "reason"), "signaled");
		free(js);
	}
}

Test(core, missing_command_gives_127_and_one_line_naming_it)
{
	struct result r;

	ctl(&H, &r, "spawn", "--", "no-such-command-heidi", "arg", NULL);
	cr_assert_eq(r.status, 127);
	cr_assert_str_eq(r.err, "heidictl: no-such-command-heidi: command not found\n");
	cr_assert_eq(r.out_len, 0);
	result_free(&r);
}

Test(core, non_executable_file_gives_126_and_one_line_naming_it)
{
	char path[512], want[600];
	struct result r;
	FILE *f;

	path_in_dir(path, sizeof(path), "not-executable");
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("echo hi\n", f);
	fclose(f);
	chmod(path, 0644);
	ctl(&H, &r, "spawn", "--", path, NULL);
	cr_assert_eq(r.status, 126);
	snprintf(want, sizeof(want), "heidictl: %s: Permission denied\n", path);
	cr_assert_str_eq(r.err, want);
	result_free(&r);
}

Test(core, bad_cwd_is_a_clear_error_and_the_daemon_keeps_serving)
{
	struct result r;

	ctl(&H, &r, "spawn", "-C", "/nonexistent/dir", "--", "true", NULL);
	cr_assert_eq(r.status, 125);
	cr_assert_not_null(strstr(r.err, "/nonexistent/dir"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "No such file or directory"), "%s", r.err);
	cr_assert_eq(strchr(r.err, '\n'), r.err + r.err_len - 1, "one line: %s", r.err);
	result_free(&r);
	ctl(&H, &r, "spawn", "-C", "/etc/passwd", "--", "true", NULL);
	cr_assert_eq(r.status, 125);
	cr_assert_not_null(strstr(r.err, "Not a directory"), "%s", r.err);
	result_free(&r);
	ctl(&H, &r, "spawn", "--", "echo", "still", "here", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "still here\n");
	result_free(&r);
}

Test(core, cwd_option_sets_the_directory_and_pwd)
{
	struct result r;
	char want[300];

	ctl(&H, &r, "spawn", "-C", "/tmp/../etc", "--", "/bin/sh", "-c", "/bin/pwd; echo $PWD", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "/etc\n/tmp/../etc\n");
	result_free(&r);
	/* relative to the caller's directory (the harness runs heidictl in the test's cwd) */
	{
		char here[256];

		cr_assert_not_null(getcwd(here, sizeof(here)));
		snprintf(want, sizeof(want), "%s/.\n", here);
	}
	ctl(&H, &r, "spawn", "-C", ".", "--", "/bin/sh", "-c", "echo $PWD", NULL);
	cr_assert_str_eq(r.out, want);
	result_free(&r);
}

/* ---- many fast jobs ---- */

Test(core, hundred_fast_jobs_eight_at_a_time_lose_no_status, .timeout = 300)
{
	int done = 0;

	while (done < 100) {
		struct bg b[8];
		int n = 100 - done < 8 ? 100 - done : 8;

		for (int i = 0; i < n; i++)
			ctl_bg(&H, &b[i], "spawn", "--", "/bin/echo", "hi", NULL);
		for (int i = 0; i < n; i++) {
			struct result r;

			bg_finish(&b[i], &r, 60000);
			cr_assert_eq(r.status, 0, "job %d: status %d, stderr %s", done + i, r.status, r.err);
			cr_assert_str_eq(r.out, "hi\n");
			cr_assert_eq(r.err_len, 0);
			result_free(&r);
		}
		done += n;
	}
}

/* ---- exact bytes ---- */

Test(core, half_a_million_one_byte_writes_arrive_as_half_a_million_bytes)
{
	struct result r;

	ctl(&H, &r, "spawn", "--", path_helper("writer"), "bytes", "500000", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(r.out_len, 500000);
	for (size_t i = 0; i < r.out_len; i++)
		cr_assert_eq(r.out[i], 'x');
	result_free(&r);
}

Test(core, bytes_written_just_before_exit_all_arrive)
{
	for (int round = 0; round < 20; round++) {
		struct result r;

		ctl(&H, &r, "spawn", "--", path_helper("writer"), "burst", "40000", NULL);
		cr_assert_eq(r.status, 0);
		cr_assert_eq(r.out_len, 40000, "round %d: %zu bytes", round, r.out_len);
		for (size_t i = 0; i < r.out_len; i++)
			cr_assert_eq((unsigned char)r.out[i], i % 251);
		result_free(&r);
	}
}

Test(core, stdout_and_stderr_are_never_mixed)
{
	struct result r;
	char line[64];
	size_t off = 0;

	ctl(&H, &r, "spawn", "--", path_helper("writer"), "both", "2000", NULL);
	cr_assert_eq(r.status, 0);
	for (int i = 0; i < 2000; i++) {
		int k = snprintf(line, sizeof(line), "out %d\n", i);

		cr_assert(strncmp(r.out + off, line, (size_t)k) == 0, "stdout line %d", i);
		off += (size_t)k;
	}
	cr_assert_eq(off, r.out_len);
	off = 0;
	for (int i = 0; i < 2000; i++) {
		int k = snprintf(line, sizeof(line), "err %d\n", i);

		cr_assert(strncmp(r.err + off, line, (size_t)k) == 0, "stderr line %d", i);
		off += (size_t)k;
	}
	cr_assert_eq(off, r.err_len);
	result_free(&r);
}

Test(core, binary_data_passes_untouched)
{
	struct result r;

	ctl(&H, &r, "spawn", "--", path_helper("writer"), "binary", "4096", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(r.out_len, 4096 * 256);
	for (size_t i = 0; i < r.out_len; i++)
		cr_assert_eq((unsigned char)r.out[i], i % 256);
	result_free(&r);
}

Test(core, first_line_of_a_slow_job_arrives_while_it_runs)
{
	struct bg b;
	struct result r;
	char buf[64];
	size_t have = 0;
	long long end = now_ms() + 30000;

	ctl_bg(&H, &b, "spawn", "--", path_helper("writer"), "slow", NULL);
	while (have < 6 && now_ms() < end) {
		ssize_t n = read(b.out_fd, buf + have, sizeof(buf) - 1 - have);

		cr_assert(n > 0, "heidictl ended before the first line");
		have += (size_t)n;
	}
	buf[have] = '\0';
	cr_assert_str_eq(buf, "first\n");
	cr_assert(pid_alive(b.pid), "the job should still be running");
	kill(b.pid, SIGINT); /* forwarded to the job: it dies of SIGINT */
	bg_finish(&b, &r, 30000);
	cr_assert_eq(r.status, 128 + SIGINT);
	result_free(&r);
}

Test(core, a_job_sees_exactly_fds_0_1_2)
{
	struct result r;

	ctl(&H, &r, "spawn", "--", path_helper("fdlist"), NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "0 1 2\n");
	result_free(&r);
	ctl(&H, &r, "spawn", "-i", "--", path_helper("fdlist"), NULL);
	cr_assert_str_eq(r.out, "0 1 2\n");
	result_free(&r);
}

Test(core, the_job_gets_the_callers_environment_and_a_marker)
{
	struct result r;
	char want[128];

	ctl(&H, &r, "spawn", "-e", "HEIDI_TEST_VAR=hello world", "--", "/bin/sh", "-c",
	    "echo \"$HEIDI_TEST_VAR|$HEIDI_JOB_ID\"", NULL);
	cr_assert_eq(r.status, 0);
	snprintf(want, sizeof(want), "hello world|%lld@%s\n", last_job_id(), H.instance);
	cr_assert_str_eq(r.out, want);
	result_free(&r);
	ctl(&H, &r, "spawn", "--clean-env", "-e", "ONLY=1", "--", "/usr/bin/env", NULL);
	cr_assert_eq(r.status, 0);
	snprintf(want, sizeof(want), "ONLY=1\nHEIDI_JOB_ID=%lld@%s\n", last_job_id(), H.instance);
	cr_assert_str_eq(r.out, want);
	result_free(&r);
	/* a marker in the caller's environment (heidictl run by a job) is replaced, not doubled */
	ctl(&H, &r, "spawn", "--clean-env", "-e", "HEIDI_JOB_ID=999@0123456789ab", "-e", "ONLY=1", "--",
	    "/usr/bin/env", NULL);
	cr_assert_eq(r.status, 0);
	snprintf(want, sizeof(want), "ONLY=1\nHEIDI_JOB_ID=%lld@%s\n", last_job_id(), H.instance);
	cr_assert_str_eq(r.out, want);
	result_free(&r);
}

Test(core, stdin_is_dev_null_unless_asked_for)
{
	struct result r;

	ctl_in(&H, &r, "abc", 3, "spawn", "--", "cat", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(r.out_len, 0);
	result_free(&r);
	ctl_in(&H, &r, "abc", 3, "spawn", "-i", "--", "cat", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "abc");
	result_free(&r);
}

/* ---- stopping and signals ---- */

Test(core, stop_of_a_term_ignoring_job_ends_after_the_grace_with_the_tree_gone)
{
	char pidfile[512];
	struct result r;
	long long t0, elapsed;
	pid_t pid;

	path_in_dir(pidfile, sizeof(pidfile), "ign.pid");
	ctl(&H, &r, "spawn", "-d", "-n", "ign", "--grace", "1s", "--", path_helper("ignoreterm"),
	    pidfile, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	result_free(&r);
	pid = read_pid_file(pidfile, 10000);
	t0 = now_ms();
	ctl(&H, &r, "stop", "ign", NULL);
	elapsed = now_ms() - t0;
	cr_assert_eq(r.status, 0, "%s", r.err);
	result_free(&r);
	cr_assert(!pid_alive(pid), "the job survived stop");
	/* TERM is ignored: it takes the grace, then KILL (bound generous for slow machines) */
	cr_assert(elapsed >= 900, "stop returned after %lld ms, before the grace", elapsed);
	cr_assert(elapsed < 1000 + 5000, "stop took %lld ms", elapsed);
	ctl(&H, &r, "--json", "status", "ign", NULL);
	cr_assert_eq(json_int(r.out, "signal"), SIGKILL);
	cr_assert_str_eq(json_field(r.out, "reason"), "stopped");
	result_free(&r);
}

Test(core, stop_grace_option_overrides_the_jobs_grace)
{
	char pidfile[512];
	struct result r;
	long long t0;

	path_in_dir(pidfile, sizeof(pidfile), "ign.pid");
	ctl(&H, &r, "spawn", "-d", "-n", "ign2", "--", path_helper("ignoreterm"), pidfile, NULL);
	result_free(&r);
	read_pid_file(pidfile, 10000);
	t0 = now_ms();
	ctl(&H, &r, "stop", "--grace", "200ms", "ign2", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert(now_ms() - t0 < 5000, "the default 10 s grace was used");
	result_free(&r);
}

Test(core, a_background_grandchild_dies_with_its_job)
{
	char pidfile[512], script[700];
	struct result r;
	pid_t pid;

	path_in_dir(pidfile, sizeof(pidfile), "bg.pid");
	snprintf(script, sizeof(script), "sleep 1000 & echo $! > %s; exit 3", pidfile);
	ctl(&H, &r, "spawn", "--", "/bin/sh", "-c", script, NULL);
	cr_assert_eq(r.status, 3);
	result_free(&r);
	pid = read_pid_file(pidfile, 1000);
	cr_assert(!pid_alive(pid), "the background sleep outlived its job");
	{
		char *js = status_json(last_job_id());

		cr_assert_geq(json_int(js, "leftovers"), 1, "%s", js);
		free(js);
	}
}

Test(core, kill_s_int_reaches_every_process_of_the_group)
{
	char dir[512];
	struct bg b;
	struct result r;
	char buf[16];
	int n = 0;

	path_in_dir(dir, sizeof(dir), "sig");
	mkdir(dir, 0700);
	ctl_bg(&H, &b, "spawn", "-n", "sigrec", "--", path_helper("sigrec"), dir, "3", NULL);
	cr_assert_eq(read(b.out_fd, buf, 6), 6, "sigrec did not start");
	ctl(&H, &r, "kill", "-s", "INT", "sigrec", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	result_free(&r);
	bg_finish(&b, &r, 30000);
	result_free(&r);
	{
		char *argv[] = { (char *)"/bin/ls", dir, NULL };

		run_argv(&r, argv, NULL, 0, 10000);
		for (char *p = r.out; *p; p++)
			n += *p == '\n';
		result_free(&r);
	}
	cr_assert_eq(n, 4, "SIGINT reached %d of 4 processes", n);
}

Test(core, a_job_killing_its_own_process_group_hurts_neither_shepherd_nor_daemon)
{
	struct result r;

	ctl(&H, &r, "spawn", "--", "/bin/sh", "-c", "kill -TERM 0; sleep 5", NULL);
	cr_assert_eq(r.status, 128 + SIGTERM, "status %d: %s", r.status, r.err);
	result_free(&r);
	ctl(&H, &r, "spawn", "--", "/bin/sh", "-c", "kill -KILL 0", NULL);
	cr_assert_eq(r.status, 128 + SIGKILL);
	result_free(&r);
	ctl(&H, &r, "spawn", "--", "echo", "ok", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "ok\n");
	result_free(&r);
}

Test(core, ctrl_c_on_heidictl_is_forwarded_to_the_job)
{
	struct bg b;
	struct result r;
	char buf[8];

	ctl_bg(&H, &b, "spawn", "--", "/bin/sh", "-c", "echo up; exec sleep 1000", NULL);
	cr_assert_eq(read(b.out_fd, buf, 3), 3);
	kill(b.pid, SIGINT);
	bg_finish(&b, &r, 30000);
	cr_assert_eq(r.status, 128 + SIGINT);
	result_free(&r);
}

Test(core, a_vanished_spawner_sends_sighup_and_a_hup_ignoring_job_survives)
{
	struct bg b;
	struct result r;
	char buf[8];
	char *js;
	long long id;

	ctl_bg(&H, &b, "spawn", "-n", "hup1", "--", "/bin/sh", "-c", "echo up; exec sleep 1000", NULL);
	cr_assert_eq(read(b.out_fd, buf, 3), 3);
	kill(b.pid, SIGKILL);
	bg_finish(&b, &r, 30000);
	result_free(&r);
	ctl(&H, &r, "wait", "hup1", NULL);
	cr_assert_eq(r.status, 128 + SIGHUP, "status %d", r.status);
	result_free(&r);

	ctl_bg(&H, &b, "spawn", "-n", "hup2", "--", "/bin/sh", "-c",
	    "trap '' HUP; echo up; exec sleep 1000", NULL);
	cr_assert_eq(read(b.out_fd, buf, 3), 3);
	kill(b.pid, SIGKILL);
	bg_finish(&b, &r, 30000);
	result_free(&r);
	msleep(300);
	id = last_job_id();
	js = status_json(id);
	cr_assert_str_eq(json_field(js, "state"), "running", "%s", js);
	free(js);
	ctl(&H, &r, "stop", "--grace", "1s", "hup2", NULL);
	result_free(&r);
}

Test(core, detach_prints_only_the_job_id_and_wait_returns_its_status)
{
	struct result r;
	char id[32];

	ctl(&H, &r, "spawn", "-d", "--", "/bin/sh", "-c", "echo hidden; exit 42", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(strspn(r.out, "0123456789"), r.out_len - 1, "not a decimal id: %s", r.out);
	snprintf(id, sizeof(id), "%.*s", (int)r.out_len - 1, r.out);
	result_free(&r);
	ctl(&H, &r, "wait", id, NULL);
	cr_assert_eq(r.status, 42);
	cr_assert_eq(r.out_len, 0);
	result_free(&r);
}

Test(core, wait_exits_with_the_first_non_zero_status)
{
	struct result r;

	ctl(&H, &r, "spawn", "-d", "-n", "w1", "--", "true", NULL);
	result_free(&r);
	ctl(&H, &r, "spawn", "-d", "-n", "w2", "--", "/bin/sh", "-c", "sleep 0.2; exit 3", NULL);
	result_free(&r);
	ctl(&H, &r, "spawn", "-d", "-n", "w3", "--", "/bin/sh", "-c", "exit 4", NULL);
	result_free(&r);
	ctl(&H, &r, "wait", "w1", "w2", "w3", NULL);
	cr_assert_eq(r.status, 3);
	result_free(&r);
	ctl(&H, &r, "wait", "w1", "no-such-job", NULL);
	cr_assert_eq(r.status, 125);
	cr_assert_not_null(strstr(r.err, "no-such-job"));
	result_free(&r);
}

/* ---- crashes ---- */

Test(core, sigkill_of_heidid_takes_every_job_tree_with_it)
{
	pid_t pids[6];
	struct result r;

	for (int i = 0; i < 3; i++) {
		char pidfile[512], script[1200];

		snprintf(pidfile, sizeof(pidfile), "%s/t%d", H.dir, i);
		snprintf(script, sizeof(script), "sleep 1000 & echo $! > %s.a; setsid sleep 1000 & echo $! > %s.b; wait",
		    pidfile, pidfile);
		ctl(&H, &r, "spawn", "-d", "--", "/bin/sh", "-c", script, NULL);
		cr_assert_eq(r.status, 0);
		result_free(&r);
		strcat(pidfile, ".a");
		pids[2 * i] = read_pid_file(pidfile, 10000);
		pidfile[strlen(pidfile) - 1] = 'b';
		pids[2 * i + 1] = read_pid_file(pidfile, 10000);
	}
	{
		pid_t sheps[16];
		int n = children_of(H.pid, sheps, 16);

		kill(H.pid, SIGKILL);
		cr_assert_eq(hd_wait(&H, 10000), 128 + SIGKILL);
		/* "within a second"; the bound is generous so a slow machine cannot fail it */
		for (int i = 0; i < 6; i++)
			cr_assert(wait_pid_gone(pids[i], 5000), "job process %d survived heidid's death", pids[i]);
		cr_assert(wait_no_marked(H.instance, 5000));
		/* and the shepherds (pooled ones too) exit once their work is done */
		for (int i = 0; i < n; i++)
			cr_assert(wait_pid_gone(sheps[i], 5000), "shepherd %d outlived heidid", sheps[i]);
	}
}

Test(core, sigkill_of_a_shepherd_kills_its_job_and_reports_shepherd_lost)
{
	char pidfile[512], script[1200];
	struct result r;
	pid_t leader, child, escaper, shepherd;
	char *js;
	long long id;

	path_in_dir(pidfile, sizeof(pidfile), "sl");
	snprintf(script, sizeof(script), "sleep 1000 & echo $! > %s.a; setsid sleep 1000 & echo $! > %s.b; wait",
	    pidfile, pidfile);
	ctl(&H, &r, "spawn", "-d", "-n", "lost", "--", "/bin/sh", "-c", script, NULL);
	cr_assert_eq(r.status, 0);
	id = atoll(r.out);
	result_free(&r);
	strcat(pidfile, ".a");
	child = read_pid_file(pidfile, 10000);
	pidfile[strlen(pidfile) - 1] = 'b';
	escaper = read_pid_file(pidfile, 10000);
	/* the job's processes may run before heidid has the shepherd's report */
	wait_running(&H, "lost");
	js = status_json(id);
	leader = (pid_t)json_int(js, "pid");
	free(js);
	{
		char path[64];
		FILE *f;
		char buf[512], *p;
		int ppid = 0;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)leader);
		f = fopen(path, "r");
		cr_assert_not_null(f);
		cr_assert_not_null(fgets(buf, sizeof(buf), f));
		fclose(f);
		p = strrchr(buf, ')');
		sscanf(p + 2, "%*c %d", &ppid);
		shepherd = ppid;
	}
	cr_assert_neq(shepherd, H.pid);
	kill(shepherd, SIGKILL);
	ctl(&H, &r, "wait", "lost", NULL);
	cr_assert_eq(r.status, 125);
	result_free(&r);
	js = status_json(id);
	cr_assert_str_eq(json_field(js, "reason"), "shepherd_lost", "%s", js);
	free(js);
	cr_assert(wait_pid_gone(leader, 5000));
	cr_assert(wait_pid_gone(child, 5000));
	cr_assert(wait_pid_gone(escaper, 5000));
	/* the daemon keeps serving */
	ctl(&H, &r, "spawn", "--", "echo", "alive", NULL);
	cr_assert_str_eq(r.out, "alive\n");
	result_free(&r);
}

/* ---- bad clients ---- */

static int
raw_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Read until EOF (or 5 s); returns the bytes read. */
static ssize_t
read_to_eof(int fd, char *buf, size_t len)
{
	size_t have = 0;
	struct timeval tv = { .tv_sec = 5 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		ssize_t n = read(fd, buf + have, len - have);

		if (n <= 0)
			return n < 0 && have == 0 ? -1 : (ssize_t)have;
		have += (size_t)n;
		if (have == len)
			return (ssize_t)have;
	}
}

Test(core, garbage_on_one_connection_leaves_the_daemon_serving_others)
{
	static const char garbage[] = "\x10\x00\x00\x00GET / HTTP/1.1\r\n\r\n";
	static const unsigned char huge[] = { 0xff, 0xff, 0xff, 0x7f };
	static const unsigned char not_map[] = { 0x01, 0x00, 0x00, 0x00, 0x05 };
	char buf[4096];
	struct result r;
	int fd;
	ssize_t n;

	fd = raw_connect(H.sock);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, garbage, sizeof(garbage) - 1), (ssize_t)sizeof(garbage) - 1);
	n = read_to_eof(fd, buf, sizeof(buf));
	cr_assert(n > 4, "expected an error reply before the close");
	cr_assert_not_null(memmem(buf, (size_t)n, "bad_frame", 9));
	close(fd);

	fd = raw_connect(H.sock);
	cr_assert_eq(write(fd, huge, sizeof(huge)), (ssize_t)sizeof(huge));
	n = read_to_eof(fd, buf, sizeof(buf));
	cr_assert_not_null(memmem(buf, (size_t)(n > 0 ? n : 0), "bad_frame", 9));
	close(fd);

	fd = raw_connect(H.sock);
	cr_assert_eq(write(fd, not_map, sizeof(not_map)), (ssize_t)sizeof(not_map));
	n = read_to_eof(fd, buf, sizeof(buf));
	cr_assert_not_null(memmem(buf, (size_t)(n > 0 ? n : 0), "not a map", 9));
	close(fd);

	/* half a frame, then gone */
	fd = raw_connect(H.sock);
	cr_assert_eq(write(fd, "\x40\x00\x00\x00\x81", 5), 5);
	close(fd);

	ctl(&H, &r, "spawn", "--", "echo", "fine", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "fine\n");
	result_free(&r);
}

Test(core, requests_before_hello_are_refused)
{
	/* {"type":"ping","id":1} without a hello first */
	static const unsigned char ping[] = { 0x0f, 0x00, 0x00, 0x00, 0x82, 0xa4, 't', 'y', 'p', 'e',
		0xa4, 'p', 'i', 'n', 'g', 0xa2, 'i', 'd', 0x01 };
	char buf[1024];
	ssize_t n;
	int fd = raw_connect(H.sock);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, ping, sizeof(ping)), (ssize_t)sizeof(ping));
	n = read_to_eof(fd, buf, sizeof(buf));
	cr_assert_not_null(memmem(buf, (size_t)(n > 0 ? n : 0), "hello_required", 14));
	close(fd);
}

Test(core, a_second_uid_cannot_use_the_socket)
{
	struct passwd *pw = getpwnam("nobody");
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		hd_cleanup(&H); /* a skipped test gets no .fini */
		cr_skip_test("needs root to act as a second uid");
	}
	cr_assert_not_null(pw);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int fd;

		if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
			_exit(10);
		/* the directory is 0700: the path itself is off limits */
		fd = raw_connect(H.sock);
		if (fd >= 0)
			_exit(11);
		_exit(errno == EACCES ? 0 : 12);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(WEXITSTATUS(status), 0, "a second uid reached the socket (%d)", WEXITSTATUS(status));

	/* with the permissions opened up, SO_PEERCRED still turns it away */
	chmod(H.dir, 0755);
	chmod(H.sock, 0666);
	pid = fork();
	if (pid == 0) {
		int fd;
		char buf[64];
		ssize_t n;
		/* hello, version 1 */
		static const unsigned char hello[] = { 0x1c, 0x00, 0x00, 0x00, 0x83, 0xa4, 't', 'y', 'p',
			'e', 0xa5, 'h', 'e', 'l', 'l', 'o', 0xa2, 'i', 'd', 0x01, 0xa7, 'v', 'e', 'r', 's',
			'i', 'o', 'n', 0x01 };

		if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
			_exit(10);
		fd = raw_connect(H.sock);
		if (fd < 0)
			_exit(13);
		(void)!write(fd, hello, sizeof(hello));
		n = read_to_eof(fd, buf, sizeof(buf));
		_exit(n <= 0 ? 0 : 14);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	chmod(H.dir, 0700);
	cr_assert_eq(WEXITSTATUS(status), 0, "a second uid was served (%d)", WEXITSTATUS(status));
}

/* ---- records ---- */

Test(core, status_json_has_every_field_with_rusage_from_wait4)
{
	static const char *const fields[] = { "id", "name", "state", "pid", "argv", "cwd",
		"containment", "cgroup", "exit_code", "signal", "core_dumped", "reason", "leftovers",
		"started_at", "ended_at", "duration_ms", "user_cpu_ms", "sys_cpu_ms", "max_rss_kb" };
	struct result r;
	char *js;

	ctl(&H, &r, "spawn", "-n", "burn", "--", "/bin/sh", "-c",
	    "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; head -c 20000000 /dev/zero | tail -c 1 >/dev/null",
	    NULL);
	cr_assert_eq(r.status, 0);
	result_free(&r);
	ctl(&H, &r, "--json", "status", "burn", NULL);
	js = r.out;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char *v = json_field(js, fields[i]);

		cr_assert_not_null(v, "status --json lacks %s: %s", fields[i], js);
		free(v);
	}
	cr_assert_str_eq(json_field(js, "name"), "burn");
	cr_assert_str_eq(json_field(js, "state"), "done");
	cr_assert_str_eq(json_field(js, "reason"), "exited");
	cr_assert_eq(json_int(js, "exit_code"), 0);
	cr_assert_gt(json_int(js, "user_cpu_ms") + json_int(js, "sys_cpu_ms"), 0, "%s", js);
	cr_assert_gt(json_int(js, "max_rss_kb"), 0);
	cr_assert_geq(json_int(js, "duration_ms"), json_int(js, "user_cpu_ms") / 2);
	cr_assert_eq(strchr(js, '\n'), js + r.out_len - 1, "one object on one line");
	result_free(&r);
}

Test(core, ps_lists_running_jobs_and_ps_a_adds_finished_ones)
{
	struct result r;

	ctl(&H, &r, "spawn", "-d", "-n", "sleeper", "--", "sleep", "1000", NULL);
	result_free(&r);
	ctl(&H, &r, "spawn", "-n", "quick", "--", "true", NULL);
	result_free(&r);
	ctl(&H, &r, "ps", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.out, "ID"));
	cr_assert_not_null(strstr(r.out, "COMMAND"));
	cr_assert_not_null(strstr(r.out, "sleeper"));
	cr_assert_null(strstr(r.out, "quick"));
	result_free(&r);
	ctl(&H, &r, "ps", "-a", NULL);
	cr_assert_not_null(strstr(r.out, "quick"));
	result_free(&r);
	ctl(&H, &r, "--json", "ps", NULL);
	cr_assert_not_null(strstr(r.out, "\"name\":\"sleeper\""));
	result_free(&r);
	ctl(&H, &r, "kill", "-s", "KILL", "sleeper", NULL);
	cr_assert_eq(r.status, 0);
	result_free(&r);
	ctl(&H, &r, "wait", "sleeper", NULL);
	cr_assert_eq(r.status, 128 + SIGKILL);
	result_free(&r);
}

Test(core, usage_errors_exit_2_and_unknown_jobs_exit_1)
{
	struct result r;

	ctl(&H, &r, "spawn", NULL);
	cr_assert_eq(r.status, 2);
	result_free(&r);
	ctl(&H, &r, "spawn", "--mem", "lots", "--", "true", NULL);
	cr_assert_eq(r.status, 2);
	cr_assert_not_null(strstr(r.err, "--mem"));
	result_free(&r);
	ctl(&H, &r, "frobnicate", NULL);
	cr_assert_eq(r.status, 2);
	result_free(&r);
	ctl(&H, &r, "kill", "-s", "NOPE", "1", NULL);
	cr_assert_eq(r.status, 2);
	result_free(&r);
	ctl(&H, &r, "status", "999", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_str_eq(r.err, "heidictl: no job 999\n");
	result_free(&r);
}

Test(core, options_not_supported_yet_are_rejected_not_ignored)
{
	struct result r;

	ctl(&H, &r, "spawn", "--linger", "5s", "--", "true", NULL);
	cr_assert_eq(r.status, 125);
	cr_assert_not_null(strstr(r.err, "not supported"), "%s", r.err);
	result_free(&r);
}

Test(core, heidictl_starts_heidid_on_demand)
{
	char dir[256], sock[300], *argv[8], env_xdg[400];
	struct result r;
	char *envp[] = { env_xdg, (char *)"PATH=/usr/bin:/bin", NULL };

	tmpdir_make(dir, sizeof(dir));
	snprintf(sock, sizeof(sock), "%s/auto/heidid.sock", dir);
	snprintf(env_xdg, sizeof(env_xdg), "XDG_STATE_HOME=%s/state", dir);
	argv[0] = (char *)path_heidictl();
	argv[1] = (char *)"-s";
	argv[2] = sock;
	argv[3] = (char *)"spawn";
	argv[4] = (char *)"--";
	argv[5] = (char *)"echo";
	argv[6] = (char *)"auto";
	argv[7] = NULL;
	{
		pid_t pid;
		int out[2], status;
		char buf[64];
		ssize_t n;

		cr_assert(pipe2(out, O_CLOEXEC) == 0);
		pid = fork();
		if (pid == 0) {
			dup2(out[1], 1);
			close(out[0]);
			execve(argv[0], argv, envp);
			_exit(127);
		}
		close(out[1]);
		n = read(out[0], buf, sizeof(buf));
		close(out[0]);
		waitpid(pid, &status, 0);
		cr_assert_eq(WEXITSTATUS(status), 0);
		cr_assert_eq(n, 5);
		cr_assert(memcmp(buf, "auto\n", 5) == 0);
	}
	argv[3] = (char *)"shutdown";
	argv[4] = NULL;
	run_argv(&r, argv, NULL, 0, 30000);
	cr_assert_eq(r.status, 0, "%s", r.err);
	result_free(&r);
	cr_assert_eq(access(sock, F_OK), -1, "the socket is removed at shutdown");
	tmpdir_remove(dir);
}
