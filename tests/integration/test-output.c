/*
 * test-output.c: lossless, bounded and replayable output (issue: output):
 * logs, follow, attach, stdin, backpressure, pipelines.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"

static struct hd H;

static void
setup(void)
{
	hd_start(&H, "--max-running", "16", NULL);
}

static void
teardown(void)
{
	hd_cleanup(&H);
}

TestSuite(output, .init = setup, .fini = teardown, .timeout = 180);


static void
write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static char *
random_bytes(size_t len)
{
	char *buf = malloc(len);
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	size_t have = 0;

	cr_assert(buf != NULL && fd >= 0);
	while (have < len) {
		ssize_t n = read(fd, buf + have, len - have);

		cr_assert(n > 0);
		have += (size_t)n;
	}
	close(fd);
	return buf;
}

Test(output, sixty_four_mib_of_random_bytes_arrive_intact)
{
	size_t len = 64u << 20;
	char *data = random_bytes(len), path[512];
	struct result r;

	snprintf(path, sizeof(path), "%s/random", H.dir);
	write_file(path, data, len);
	ctl(&H, &r, "spawn", "--", "cat", path, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(r.out_len, len);
	cr_assert(memcmp(r.out, data, len) == 0, "the bytes differ");
	result_free(&r);
	free(data);
}

Test(output, ten_mib_round_trip_through_cat_does_not_deadlock)
{
	size_t len = 10u << 20;
	char *data = random_bytes(len);
	struct result r;

	ctl_in(&H, &r, data, len, "spawn", "-i", "--", "cat", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(r.out_len, len);
	cr_assert(memcmp(r.out, data, len) == 0);
	result_free(&r);
	free(data);
}

Test(output, stdin_eof_reaches_the_job)
{
	struct result r;

	ctl_in(&H, &r, "hello", 5, "spawn", "-i", "--", "wc", "-c", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "5\n");
	result_free(&r);
	/* empty stdin: EOF at once */
	ctl_in(&H, &r, "", 0, "spawn", "-i", "--", "wc", "-c", NULL);
	cr_assert_str_eq(r.out, "0\n");
	result_free(&r);
}

/*
 * A spawner that reads nothing for stall_ms while its job writes bytes:
 * heidid's RSS stays within 16 MiB meanwhile (the job blocks in write),
 * then every byte arrives, in order.
 */
static void
stalled_spawner(size_t bytes, int stall_ms)
{
	struct bg b;
	struct result r;
	long before, peak = 0;
	char *buf = malloc(1 << 20), count[32];
	size_t total = 0;
	long long end;

	cr_assert_not_null(buf);
	snprintf(count, sizeof(count), "%zu", bytes);
	before = vm_rss_kb(H.pid);
	ctl_bg(&H, &b, "spawn", "--", path_helper("writer"), "burst", count, NULL);
	end = now_ms() + stall_ms;
	while (now_ms() < end) {
		long kb = vm_rss_kb(H.pid);

		if (kb > peak)
			peak = kb;
		msleep(50);
	}
	assert_rss_growth(before, peak, 16 * 1024, "while the spawner stalled");
	/* now every byte arrives */
	for (;;) {
		ssize_t n = read(b.out_fd, buf, 1 << 20);

		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			cr_assert_eq((unsigned char)buf[i], (total + (size_t)i) % 251);
		total += (size_t)n;
	}
	close(b.out_fd);
	b.out_fd = -1;
	bg_finish(&b, &r, 60000);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(total, bytes);
	result_free(&r);
	free(buf);
}

Test(output, a_stalled_spawner_loses_nothing_and_heidid_memory_stays_bounded)
{
	/* 3 s without reading while the job writes 200 MiB */
	stalled_spawner(209715200, 3000);
}

/*
 * heidictl takes a job's output through pipes heidid tees into; the
 * "output" events are the path of other clients and of a heidid that could
 * not make pipes.  HEIDI_OUTPUT_EVENTS=1 makes heidictl ask for events.
 */
Test(output, output_as_events_arrives_the_same_as_through_pipes)
{
	size_t len = 8u << 20;
	char *data = random_bytes(len), path[512], line[64];
	struct result r;
	size_t off = 0;

	cr_assert_eq(setenv("HEIDI_OUTPUT_EVENTS", "1", 1), 0);
	snprintf(path, sizeof(path), "%s/random", H.dir);
	write_file(path, data, len);
	ctl(&H, &r, "spawn", "--", "sh", "-c", "cat \"$0\"; exit 9", path, NULL);
	cr_assert_eq(r.status, 9, "%s", r.err);
	cr_assert_eq(r.out_len, len);
	cr_assert(memcmp(r.out, data, len) == 0, "the bytes differ");
	result_free(&r);
	ctl(&H, &r, "spawn", "--", path_helper("writer"), "both", "1000", NULL);
	cr_assert_eq(r.status, 0);
	for (int i = 0; i < 1000; i++) {
		int k = snprintf(line, sizeof(line), "err %d\n", i);

		cr_assert(strncmp(r.err + off, line, (size_t)k) == 0, "stderr line %d", i);
		off += (size_t)k;
	}
	cr_assert_eq(off, r.err_len);
	result_free(&r);
	free(data);
}

Test(output, a_stalled_spawner_taking_events_loses_nothing_and_heidid_stays_bounded)
{
	cr_assert_eq(setenv("HEIDI_OUTPUT_EVENTS", "1", 1), 0);
	stalled_spawner(104857600, 2000);
}

Test(output, a_pipeline_into_head_ends_promptly_with_output_as_events_too)
{
	char cmd[1024];
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", cmd, NULL };
	struct result r;

	snprintf(cmd, sizeof(cmd), "HEIDI_OUTPUT_EVENTS=1 HEIDI_NO_AUTOSTART=1 %s -s %s spawn -- yes | head -1",
	    path_heidictl(), H.sock);
	run_argv(&r, argv, NULL, 0, 30000);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "y\n");
	result_free(&r);
	cr_assert(wait_no_marked(H.instance, 5000), "yes is still running");
}

Test(output, job_pipes_are_large_by_default_and_as_asked_with_pipe_size)
{
	struct hd k;
	struct result r;

	ctl(&H, &r, "spawn", "--", path_helper("writer"), "pipesize", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.err, "1048576 1048576\n");
	result_free(&r);
	hd_start(&k, "--pipe-size", "128K", NULL);
	ctl(&k, &r, "spawn", "--", path_helper("writer"), "pipesize", NULL);
	cr_assert_str_eq(r.err, "131072 131072\n");
	result_free(&r);
	hd_cleanup(&k);
}

Test(output, a_stalled_observer_does_not_slow_the_job)
{
	struct bg obs;
	struct result r;
	char buf[65536];
	size_t got = 0;

	ctl(&H, &r, "spawn", "-d", "-n", "w100", "--", "sh", "-c", "sleep 0.3; head -c 104857600 /dev/zero", NULL);
	cr_assert_eq(r.status, 0);
	result_free(&r);
	/* an observer that never reads */
	ctl_bg(&H, &obs, "logs", "-f", "w100", NULL);
	/* the job runs to its end regardless (a blocked job would hang here) */
	ctl(&H, &r, "wait", "w100", NULL);
	cr_assert_eq(r.status, 0);
	result_free(&r);
	/* the observer, once it reads, ends and is told what the cap dropped */
	for (ssize_t n; (n = read(obs.out_fd, buf, sizeof(buf))) > 0;)
		got += (size_t)n;
	close(obs.out_fd);
	obs.out_fd = -1;
	bg_finish(&obs, &r, 60000);
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.err, "dropped"), "observer stderr: [%s] status %d, got %zu bytes",
	    r.err, r.status, got);
	result_free(&r);
}

static char *
expected_lines(int n)
{
	char *s = malloc((size_t)n * 16 + 1), *p = s;

	for (int i = 1; i <= n; i++)
		p += sprintf(p, "line %d\n", i);
	return s;
}

Test(output, logs_follow_prints_every_line_once_and_two_observers_agree)
{
	struct bg o1, o2;
	struct result r1, r2, r;
	char *want = expected_lines(200);

	ctl(&H, &r, "spawn", "-d", "-n", "lines", "--", "sh", "-c",
	    "i=1; while [ $i -le 200 ]; do echo line $i; i=$((i+1)); [ $((i % 20)) = 0 ] && sleep 0.05; done", NULL);
	result_free(&r);
	ctl_bg(&H, &o1, "logs", "-f", "lines", NULL);
	msleep(100);
	ctl_bg(&H, &o2, "logs", "-f", "lines", NULL);
	bg_finish(&o1, &r1, 60000);
	bg_finish(&o2, &r2, 60000);
	cr_assert_eq(r1.status, 0);
	cr_assert_eq(r2.status, 0);
	cr_assert_str_eq(r1.out, want);
	cr_assert_str_eq(r2.out, want);
	result_free(&r1);
	result_free(&r2);
	free(want);
}

Test(output, tail_and_stream_selection)
{
	struct result r;

	ctl(&H, &r, "spawn", "-n", "seq", "--", "seq", "1000", NULL);
	result_free(&r);
	ctl(&H, &r, "logs", "--tail", "3", "seq", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "998\n999\n1000\n");
	result_free(&r);
	ctl(&H, &r, "logs", "--tail", "0", "seq", NULL);
	cr_assert_str_eq(r.out, "");
	result_free(&r);
	ctl(&H, &r, "logs", "--tail", "5000", "seq", NULL);
	cr_assert_eq(r.out_len, 3893);
	result_free(&r);

	ctl(&H, &r, "spawn", "-n", "mix", "--", "sh", "-c",
	    "echo o1; echo e1 >&2; echo o2; echo e2 >&2; printf partial", NULL);
	result_free(&r);
	ctl(&H, &r, "logs", "--stdout", "mix", NULL);
	cr_assert_str_eq(r.out, "o1\no2\npartial");
	cr_assert_str_eq(r.err, "");
	result_free(&r);
	ctl(&H, &r, "logs", "--stderr", "mix", NULL);
	cr_assert_str_eq(r.out, "");
	cr_assert_str_eq(r.err, "e1\ne2\n");
	result_free(&r);
	ctl(&H, &r, "logs", "--tail", "1", "--stdout", "mix", NULL);
	cr_assert_str_eq(r.out, "partial");
	result_free(&r);
	ctl(&H, &r, "logs", "--tail", "2", "--stdout", "mix", NULL);
	cr_assert_str_eq(r.out, "o2\npartial");
	result_free(&r);
}

Test(output, attach_shows_the_rest_of_the_output_and_exits_with_the_status)
{
	char go[512], script[800];
	struct bg b;
	struct result r;

	snprintf(go, sizeof(go), "%s/go", H.dir);
	snprintf(script, sizeof(script),
	    "echo before; while [ ! -e %s ]; do sleep 0.05; done; echo after; echo oops >&2; exit 7", go);
	ctl(&H, &r, "spawn", "-d", "-n", "att", "--", "sh", "-c", script, NULL);
	result_free(&r);
	wait_running(&H, "att");
	msleep(200);
	ctl_bg(&H, &b, "attach", "att", NULL);
	msleep(300);
	write_file(go, "", 0);
	bg_finish(&b, &r, 60000);
	cr_assert_eq(r.status, 7, "%s", r.err);
	cr_assert_str_eq(r.out, "after\n");
	cr_assert_str_eq(r.err, "oops\n");
	result_free(&r);
	/* attaching to a finished job: its status at once */
	ctl(&H, &r, "attach", "att", NULL);
	cr_assert_eq(r.status, 7);
	cr_assert_eq(r.out_len, 0);
	result_free(&r);
}

Test(output, attach_with_stdin_feeds_a_job_spawned_with_stdin)
{
	struct result r;

	ctl(&H, &r, "spawn", "-d", "-i", "-n", "cat", "--", "cat", NULL);
	result_free(&r);
	wait_running(&H, "cat");
	ctl_in(&H, &r, "via attach\n", 11, "attach", "-i", "cat", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "via attach\n");
	result_free(&r);
	ctl(&H, &r, "spawn", "-d", "-n", "nostdin", "--", "sleep", "100", NULL);
	result_free(&r);
	ctl(&H, &r, "attach", "-i", "nostdin", NULL);
	cr_assert_eq(r.status, 125);
	cr_assert_not_null(strstr(r.err, "--stdin"), "%s", r.err);
	result_free(&r);
	ctl(&H, &r, "stop", "--grace", "1s", "nostdin", NULL);
	result_free(&r);
}

Test(output, a_pipeline_into_head_ends_promptly_and_leaves_nothing)
{
	char cmd[1024];
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", cmd, NULL };
	struct result r;
	long long t0 = now_ms();

	snprintf(cmd, sizeof(cmd), "HEIDI_NO_AUTOSTART=1 %s -s %s spawn -- yes | head -1", path_heidictl(),
	    H.sock);
	run_argv(&r, argv, NULL, 0, 30000);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "y\n");
	/* "within a couple of seconds"; bounded generously for slow machines */
	cr_assert_lt(now_ms() - t0, 10000);
	result_free(&r);
	cr_assert(wait_no_marked(H.instance, 5000), "yes is still running");
	ctl(&H, &r, "ps", NULL);
	cr_assert_null(strstr(r.out, "yes"), "%s", r.out);
	result_free(&r);
}

Test(output, a_job_beyond_log_max_keeps_running_and_logs_say_what_was_dropped)
{
	struct hd small;
	struct result r;

	hd_start(&small, "--log-max", "1M", NULL);
	ctl(&small, &r, "spawn", "-n", "big", "--", "sh", "-c",
	    "head -c 5000000 /dev/zero | tr '\\0' x; echo; echo still alive", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(r.out_len, 5000000 + 1 + 12, "the spawner lost output");
	result_free(&r);
	ctl(&small, &r, "logs", "big", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert(r.out_len < 2000000, "the log kept %zu bytes", r.out_len);
	cr_assert(r.out_len > 0 && strcmp(r.out + r.out_len - 12, "still alive\n") == 0);
	cr_assert_not_null(strstr(r.err, "bytes of job big's output were dropped"), "%s", r.err);
	result_free(&r);
	ctl(&small, &r, "--json", "status", "big", NULL);
	cr_assert_gt(json_int(r.out, "log_dropped"), 3000000);
	result_free(&r);
	hd_cleanup(&small);
}

Test(output, logs_of_finished_jobs_survive_a_restart)
{
	struct result r;
	char dir[256];

	ctl(&H, &r, "spawn", "-n", "keep", "--", "sh", "-c", "echo one; echo two >&2; exit 5", NULL);
	result_free(&r);
	cr_assert_eq(hd_stop(&H, 15000), 0);
	snprintf(dir, sizeof(dir), "%s", H.dir);
	hd_start_in(&H, dir, NULL);
	ctl(&H, &r, "logs", "keep", NULL);
	cr_assert_str_eq(r.out, "one\n");
	cr_assert_str_eq(r.err, "two\n");
	result_free(&r);
	ctl(&H, &r, "--json", "status", "keep", NULL);
	cr_assert_eq(json_int(r.out, "exit_code"), 5);
	result_free(&r);
	/* ids continue after the records */
	ctl(&H, &r, "spawn", "-d", "--", "true", NULL);
	cr_assert_str_eq(r.out, "2\n");
	result_free(&r);
}

Test(output, a_job_running_when_heidid_died_is_reported_daemon_lost)
{
	struct result r;
	char dir[256];

	pid_t shep;

	ctl(&H, &r, "spawn", "-d", "-n", "victim", "--", "sleep", "1000", NULL);
	result_free(&r);
	wait_running(&H, "victim");
	ctl(&H, &r, "--json", "status", "victim", NULL);
	shep = ppid_of((pid_t)json_int(r.out, "pid"));
	wait_record(&H, json_int(r.out, "id"));
	result_free(&r);
	kill(H.pid, SIGKILL);
	hd_wait(&H, 10000);
	snprintf(dir, sizeof(dir), "%s", H.dir);
	/* restart at once: the sweep may remove the leaf while the old shepherd still works */
	hd_start_in(&H, dir, NULL);
	cr_assert(wait_pid_gone(shep, 5000), "the old shepherd %d did not exit", shep);
	ctl(&H, &r, "--json", "status", "victim", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(json_field(r.out, "state"), "done");
	cr_assert_str_eq(json_field(r.out, "reason"), "daemon_lost");
	result_free(&r);
	ctl(&H, &r, "wait", "victim", NULL);
	cr_assert_eq(r.status, 125);
	cr_assert_not_null(strstr(r.err, "heidid died"), "%s", r.err);
	result_free(&r);
}

Test(output, keep_bounds_the_finished_records)
{
	struct hd k;
	struct result r;
	char dir[256];
	int lines = 0;

	hd_start(&k, "--keep", "3", NULL);
	for (int i = 0; i < 6; i++) {
		ctl(&k, &r, "spawn", "--", "echo", "hi", NULL);
		result_free(&r);
	}
	ctl(&k, &r, "ps", "-a", NULL);
	for (char *p = r.out; *p; p++)
		lines += *p == '\n';
	cr_assert_eq(lines, 1 + 3, "%s", r.out);
	cr_assert_not_null(strstr(r.out, "\n6 "));
	result_free(&r);
	{
		char path[512];
		long long end = now_ms() + 10000;

		/* files of evicted jobs go at idle time */
		snprintf(path, sizeof(path), "%s/state/jobs/1", k.dir);
		while (access(path, F_OK) == 0) {
			cr_assert_lt(now_ms(), end, "the evicted job's files are still there");
			msleep(5);
		}
		snprintf(path, sizeof(path), "%s/state/jobs/6", k.dir);
		cr_assert_eq(access(path, F_OK), 0);
	}
	/* a restarted heidid keeps the same three */
	cr_assert_eq(hd_stop(&k, 15000), 0);
	snprintf(dir, sizeof(dir), "%s", k.dir);
	hd_start_in(&k, dir, (const char *const[]){ "--keep", "3", NULL });
	ctl(&k, &r, "ps", "-a", NULL);
	lines = 0;
	for (char *p = r.out; *p; p++)
		lines += *p == '\n';
	cr_assert_eq(lines, 1 + 3, "%s", r.out);
	cr_assert_not_null(strstr(r.out, "\n4 "), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "\n6 "), "%s", r.out);
	result_free(&r);
	ctl(&k, &r, "logs", "6", NULL);
	cr_assert_str_eq(r.out, "hi\n");
	result_free(&r);
	hd_cleanup(&k);
}

Test(output, the_record_journal_is_compacted_and_survives_restarts)
{
	struct hd k;
	struct result r;
	char dir[256];
	long long end;

	hd_start(&k, "--keep", "2", NULL);
	for (int i = 0; i < 80; i++) {
		char code[8];

		snprintf(code, sizeof(code), "exit %d", i % 7);
		ctl(&k, &r, "spawn", "--", "sh", "-c", code, NULL);
		cr_assert_eq(r.status, i % 7);
		result_free(&r);
	}
	/*
	 * 80 jobs write 80 to 160 records (a start record not yet written when
	 * the job ends is replaced by the end record); compaction rewrites the
	 * journal as the live records once it holds more than 2 * live + 64
	 * (heidid/store.c), so it never stays above 2 * 2 + 64 frames.
	 */
	end = now_ms() + 10000;
	for (;;) {
		int n = journal_frames(&k);

		cr_assert_gt(n, 0);
		if (n <= 2 * 2 + 64)
			break;
		cr_assert_lt(now_ms(), end, "the journal was not compacted: %d records", n);
		msleep(10);
	}
	cr_assert_eq(hd_stop(&k, 15000), 0);
	snprintf(dir, sizeof(dir), "%s", k.dir);
	hd_start_in(&k, dir, (const char *const[]){ "--keep", "2", NULL });
	ctl(&k, &r, "--json", "status", "80", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(json_int(r.out, "exit_code"), 79 % 7);
	result_free(&r);
	ctl(&k, &r, "--json", "status", "79", NULL);
	cr_assert_eq(json_int(r.out, "exit_code"), 78 % 7);
	result_free(&r);
	ctl(&k, &r, "status", "78", NULL);
	cr_assert_neq(r.status, 0, "job 78 was evicted but came back");
	result_free(&r);
	ctl(&k, &r, "spawn", "-d", "--", "true", NULL);
	cr_assert_str_eq(r.out, "81\n");
	result_free(&r);
	hd_cleanup(&k);
}

Test(output, a_torn_journal_tail_is_ignored)
{
	struct hd k;
	struct result r;
	char dir[256], path[512];
	int fd;

	hd_start(&k, NULL);
	ctl(&k, &r, "spawn", "--", "sh", "-c", "exit 3", NULL);
	result_free(&r);
	cr_assert_eq(hd_stop(&k, 15000), 0);
	/* a crash in the middle of an append: a header promising more than follows */
	snprintf(path, sizeof(path), "%s/state/records", k.dir);
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "\x40\0\0\0\x8a\xa2id", 8), 8);
	close(fd);
	snprintf(dir, sizeof(dir), "%s", k.dir);
	hd_start_in(&k, dir, NULL);
	ctl(&k, &r, "--json", "status", "1", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(json_int(r.out, "exit_code"), 3);
	result_free(&r);
	/* records written after the torn tail are found by the next heidid too */
	ctl(&k, &r, "spawn", "--", "sh", "-c", "exit 4", NULL);
	result_free(&r);
	cr_assert_eq(hd_stop(&k, 15000), 0);
	hd_start_in(&k, dir, NULL);
	ctl(&k, &r, "--json", "status", "2", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(json_int(r.out, "exit_code"), 4);
	result_free(&r);
	hd_cleanup(&k);
}

Test(output, logs_of_a_job_that_never_ran)
{
	struct result r;

	ctl(&H, &r, "spawn", "--", "no-such-command-zz", NULL);
	result_free(&r);
	ctl(&H, &r, "--json", "ps", "-a", NULL);
	result_free(&r);
	ctl(&H, &r, "logs", "1", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(r.out_len, 0);
	result_free(&r);
	ctl(&H, &r, "logs", "99", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_str_eq(r.err, "heidictl: no job 99\n");
	result_free(&r);
}
