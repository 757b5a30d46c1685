/*
 * test-protocol.c: the wire protocol's promises (docs/protocol.md), spoken
 * directly through the client library rather than heidictl.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/util.h"
#include "proto/client.h"
#include "tests/integration/harness.h"

static struct hd H;

static void
setup(void)
{
	hd_start(&H, "--max-running", "8", NULL);
}

static void
teardown(void)
{
	hd_cleanup(&H);
}

TestSuite(protocol, .init = setup, .fini = teardown, .timeout = 120);

/* The exit status an "exit" event's record stands for. */
static int
exit_status_of(struct client *c, const struct msg_event *ev)
{
	struct job_info ji;
	struct proto_error err;

	cr_assert_eq(msg_job_info_decode(&c->doc, pack_map_get(ev->map, "record"), &ji, &err), 0, "%s",
	    err.message);
	return job_info_exit_status(&ji);
}

static uint64_t spawn_raw_state(struct client *c, const char *script, bool detach,
    bool stdin_pipe, bool state);

static struct client *
connect_raw(void)
{
	struct client *c;
	struct proto_error err;

	cr_assert_eq(client_connect(&c, H.sock, "test", &err), 0, "%s", err.message);
	return c;
}

/* The next message, skipping nothing. */
static void
recv_ev(struct client *c, struct msg_event *ev)
{
	struct proto_error err;

	cr_assert_eq(client_recv(c, ev, &err), 0, "%s", err.message);
}

static uint64_t
spawn_raw(struct client *c, const char *script, bool detach, bool stdin_pipe)
{
	return spawn_raw_state(c, script, detach, stdin_pipe, false);
}

static uint64_t
spawn_raw_state(struct client *c, const char *script, bool detach, bool stdin_pipe, bool state)
{
	struct proto_bytes av[3] = { { "/bin/sh", 7 }, { "-c", 2 }, { script, strlen(script) } };
	struct proto_bytes ev[1] = { { "PATH=/usr/bin:/bin", 18 } };
	struct msg_spawn s = { .argv = av, .n_argv = 3, .env = ev, .n_env = 1, .cwd = { "/", 1 },
		.detach = detach, .stdin_pipe = stdin_pipe, .state_events = state };
	struct msg_event e;
	uint64_t id = client_next_id(c);
	struct proto_error err;

	msg_encode_spawn(client_outbuf(c), id, &s);
	cr_assert_eq(client_wait_reply(c, id, &e, &err), 0, "%s", err.message);
	cr_assert_eq(e.type, MSG_OK, "%.*s", (int)e.message.len, e.message.ptr);
	return e.job;
}

static uint64_t
spawn_pipes(struct client *c, const char *script)
{
	struct proto_bytes av[3] = { { "/bin/sh", 7 }, { "-c", 2 }, { script, strlen(script) } };
	struct proto_bytes ev[1] = { { "PATH=/usr/bin:/bin", 18 } };
	struct msg_spawn s = { .argv = av, .n_argv = 3, .env = ev, .n_env = 1, .cwd = { "/", 1 },
		.pipes = true };
	struct msg_event e;
	uint64_t id = client_next_id(c);
	struct proto_error err;

	msg_encode_spawn(client_outbuf(c), id, &s);
	cr_assert_eq(client_wait_reply(c, id, &e, &err), 0, "%s", err.message);
	cr_assert_eq(e.type, MSG_OK, "%.*s", (int)e.message.len, e.message.ptr);
	return e.job;
}

/* Read what is in fd now; false at its end. */
static bool
slurp(int fd, size_t *total, char *first, size_t first_cap)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n == 0)
			return false;
		if (n < 0) {
			cr_assert_eq(errno, EAGAIN, "read: %s", strerror(errno));
			return true;
		}
		if (*total < first_cap)
			memcpy(first + *total, buf, MIN((size_t)n, first_cap - *total));
		*total += (size_t)n;
	}
}

Test(protocol, a_spawner_that_asks_for_pipes_gets_the_output_through_them)
{
	struct client *c = connect_raw();
	uint64_t job = spawn_pipes(c, "head -c 3000000 /dev/zero; printf err >&2; exit 4");
	int fds[2] = { -1, -1 };
	size_t total[2] = { 0, 0 };
	char first[2][16] = { { 0 } };
	bool open_[2] = { false, false }, exited = false;
	struct msg_event ev;
	struct proto_error err;

	/* read the pipes while the job runs: they are smaller than its output */
	while (!exited) {
		struct pollfd pfd[3] = { { .fd = c->fd, .events = POLLIN } };
		int n = 1;

		for (int i = 0; i < 2; i++)
			if (open_[i])
				pfd[n++] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		cr_assert_gt(poll(pfd, (nfds_t)n, 30000), 0, "nothing happened for 30 s");
		for (int i = 0, k = 1; i < 2; i++)
			if (open_[i] && pfd[k++].revents)
				open_[i] = slurp(fds[i], &total[i], first[i], sizeof(first[i]));
		if (!pfd[0].revents)
			continue;
		cr_assert(client_fill(c) >= 0 || errno == EAGAIN);
		while (client_next(c, &ev, &err) == 0) {
			cr_assert_eq(ev.job, job);
			cr_assert_neq(ev.type, MSG_OUTPUT, "output came as an event, not through the pipe");
			if (ev.type == MSG_PIPES) {
				fds[0] = client_take_fd(c);
				fds[1] = client_take_fd(c);
				cr_assert(fds[0] >= 0 && fds[1] >= 0, "the pipes event came without its fds");
				for (int i = 0; i < 2; i++) {
					fd_set_nonblock(fds[i], true);
					open_[i] = true;
				}
			} else if (ev.type == MSG_EXIT) {
				exited = true;
				cr_assert_eq(exit_status_of(c, &ev), 4);
			}
		}
	}
	cr_assert_geq(fds[0], 0, "no pipes event before the exit");
	/* heidid closed its ends before "exit": the rest is there, then the end */
	for (int i = 0; i < 2; i++) {
		while (open_[i]) {
			size_t before = total[i];

			open_[i] = slurp(fds[i], &total[i], first[i], sizeof(first[i]));
			cr_assert(!open_[i] || total[i] > before, "a pipe still open after the exit event");
		}
		close(fds[i]);
	}
	cr_assert_eq(total[0], 3000000u);
	cr_assert_eq(total[1], 3u);
	cr_assert_str_eq(first[1], "err");
	cr_assert_eq(c->n_fds, 0);
	client_free(c);
}

Test(protocol, a_spawner_closing_its_stdout_pipe_loses_that_stream_only)
{
	struct client *c = connect_raw();
	uint64_t job = spawn_pipes(c, "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; echo done >&2");
	int fds[2] = { -1, -1 };
	struct msg_event ev;
	struct proto_error err;
	char buf[64] = { 0 };
	ssize_t n;
	struct result r;
	char id[32];

	do {
		cr_assert_eq(client_recv(c, &ev, &err), 0, "%s", err.message);
	} while (ev.type != MSG_PIPES);
	fds[0] = client_take_fd(c);
	fds[1] = client_take_fd(c);
	close(fds[0]);
	do {
		cr_assert_eq(client_recv(c, &ev, &err), 0, "%s", err.message);
		cr_assert_neq(ev.type, MSG_OUTPUT);
	} while (ev.type != MSG_EXIT);
	/* the job was not hurt: it ended normally, its stderr came, its log has all */
	cr_assert_eq(exit_status_of(c, &ev), 0);
	n = read(fds[1], buf, sizeof(buf) - 1);
	cr_assert_eq(n, 5);
	cr_assert_str_eq(buf, "done\n");
	close(fds[1]);
	snprintf(id, sizeof(id), "%llu", (unsigned long long)job);
	ctl(&H, &r, "logs", "--stdout", id, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "line 2999\n"));
	result_free(&r);
	client_free(c);
}

Test(protocol, state_events_come_only_when_asked_for)
{
	struct client *c = connect_raw();
	uint64_t job = spawn_raw(c, "echo out", false, false);
	struct msg_event ev;

	do {
		recv_ev(c, &ev);
		cr_assert_neq(ev.type, MSG_STATE, "a state event nobody asked for");
	} while (ev.type != MSG_EXIT);
	cr_assert_eq(ev.job, job);
	client_free(c);
}

Test(protocol, an_attached_spawner_gets_ok_then_state_then_output_then_exit)
{
	struct client *c = connect_raw();
	uint64_t job = spawn_raw_state(c, "echo out; echo err >&2; exit 3", false, false, true);
	struct msg_event ev;
	bool state = false, exited = false;
	size_t out = 0, err = 0;

	while (!exited) {
		recv_ev(c, &ev);
		cr_assert_eq(ev.job, job);
		switch (ev.type) {
		case MSG_STATE:
			cr_assert(!state && out == 0 && err == 0, "state must come first");
			cr_assert(ev.state.len == 7 && memcmp(ev.state.ptr, "running", 7) == 0);
			cr_assert_gt(ev.pid, 1);
			state = true;
			break;
		case MSG_OUTPUT:
			if (ev.stream == STREAM_STDOUT)
				out += ev.data.len;
			else
				err += ev.data.len;
			break;
		case MSG_EXIT:
			exited = true;
			break;
		default:
			cr_assert_fail("unexpected message type %d", ev.type);
		}
	}
	cr_assert(state);
	cr_assert_eq(out, 4);
	cr_assert_eq(err, 4);
	client_free(c);
}

Test(protocol, pipelined_requests_beyond_the_output_pause_are_all_answered, .timeout = 180)
{
	struct client *c = connect_raw();
	struct result r;
	int answered = 0;

	/* 60 finished jobs make each "ps all" reply ~40 KB */
	for (int i = 0; i < 60; i++) {
		ctl(&H, &r, "spawn", "-d", "--", "true", NULL);
		result_free(&r);
	}
	ctl(&H, &r, "wait", "60", NULL);
	result_free(&r);
	/* 400 requests (~16 MB of replies) without reading: heidid pauses reading us */
	for (int i = 0; i < 400; i++)
		msg_encode_ps(client_outbuf(c), client_next_id(c), true);
	cr_assert_eq(client_flush(c), 0);
	msleep(500);
	while (answered < 400) {
		struct msg_event ev;

		recv_ev(c, &ev);
		if (ev.type == MSG_OK)
			answered++;
	}
	cr_assert_eq(answered, 400);
	client_free(c);
}

Test(protocol, queued_input_is_answered_when_stdin_closes)
{
	struct client *c = connect_raw();
	uint64_t job = spawn_raw(c, "read line; echo got $line; exit 0", false, true);
	char jobs[32], big[65536];
	int oks = 0, errors = 0, replies = 0;
	struct msg_event ev;
	bool exited = false;

	snprintf(jobs, sizeof(jobs), "%llu", (unsigned long long)job);
	memset(big, 'x', sizeof(big));
	big[0] = 'a';
	big[1] = '\n';
	/* the job reads one line and exits: the rest must all be answered, none lost */
	for (int i = 0; i < 40; i++)
		msg_encode_input(client_outbuf(c), client_next_id(c), jobs, big, sizeof(big), false);
	cr_assert_eq(client_flush(c), 0);
	while (replies < 40 || !exited) {
		recv_ev(c, &ev);
		if (ev.type == MSG_OK) {
			oks++;
			replies++;
		} else if (ev.type == MSG_ERROR) {
			cr_assert(ev.code.len == 12 && memcmp(ev.code.ptr, "stdin_closed", 12) == 0,
			    "%.*s", (int)ev.code.len, ev.code.ptr);
			errors++;
			replies++;
		} else if (ev.type == MSG_EXIT)
			exited = true;
	}
	cr_assert_eq(oks + errors, 40);
	cr_assert_gt(errors, 0, "the job exited, yet all input was accepted");
	client_free(c);
}

Test(protocol, input_after_eof_is_refused)
{
	struct client *c;
	struct result r;
	struct msg_event ev;
	struct proto_error err;
	uint64_t id;

	/* keep the job queued so that its stdin is not open yet */
	hd_stop(&H, 15000);
	tmpdir_remove(H.dir);
	hd_start(&H, "--max-running", "1", NULL);
	ctl(&H, &r, "spawn", "-d", "--", "sleep", "100", NULL);
	result_free(&r);
	c = connect_raw();
	{
		uint64_t job = spawn_raw(c, "cat", false, true);
		char jobs[32];

		snprintf(jobs, sizeof(jobs), "%llu", (unsigned long long)job);
		id = client_next_id(c);
		msg_encode_input(client_outbuf(c), id, jobs, "x", 1, true);
		cr_assert_eq(client_flush(c), 0);
		/* input to a queued job is answered once it is in the pipe
		 * (docs/protocol.md 2.6.10): end the sleeper so that the job runs,
		 * rather than waiting the 100 s for it */
		msleep(100);
		ctl(&H, &r, "stop", "--grace", "1s", "1", NULL);
		result_free(&r);
		cr_assert_eq(client_wait_reply(c, id, &ev, &err), 0);
		cr_assert_eq(ev.type, MSG_OK, "%.*s", (int)ev.message.len, ev.message.ptr);
		id = client_next_id(c);
		msg_encode_input(client_outbuf(c), id, jobs, "y", 1, false);
		cr_assert_eq(client_wait_reply(c, id, &ev, &err), 0);
		cr_assert_eq(ev.type, MSG_ERROR, "input after eof was accepted");
		cr_assert(ev.code.len == 12 && memcmp(ev.code.ptr, "stdin_closed", 12) == 0);
	}
	client_free(c);
}

Test(protocol, a_spawner_that_vanishes_while_its_job_is_queued_cancels_it)
{
	struct result r;
	struct bg b;

	hd_stop(&H, 15000);
	tmpdir_remove(H.dir);
	hd_start(&H, "--max-running", "1", NULL);
	ctl(&H, &r, "spawn", "-d", "-n", "busy", "--", "sleep", "100", NULL);
	result_free(&r);
	ctl_bg(&H, &b, "spawn", "-n", "orphaned", "--", "echo", "never", NULL);
	{
		long long end = now_ms() + 10000;
		bool queued = false;

		while (!queued && now_ms() < end) {
			ctl(&H, &r, "--json", "status", "orphaned", NULL);
			queued = r.status == 0 && strstr(r.out, "\"state\":\"queued\"") != NULL;
			result_free(&r);
			if (!queued)
				msleep(10);
		}
		cr_assert(queued);
	}
	kill(b.pid, SIGKILL);
	bg_finish(&b, &r, 10000);
	result_free(&r);
	ctl(&H, &r, "wait", "orphaned", NULL);
	cr_assert_eq(r.status, 125);
	result_free(&r);
	ctl(&H, &r, "--json", "status", "orphaned", NULL);
	cr_assert_str_eq(json_field(r.out, "reason"), "cancelled");
	cr_assert_str_eq(json_field(r.out, "pid"), "null", "it must never have run");
	result_free(&r);
	ctl(&H, &r, "stop", "--grace", "1s", "busy", NULL);
	result_free(&r);
}

Test(protocol, error_messages_are_valid_utf8_even_for_bad_paths)
{
	struct result r;

	/* a cwd that is not UTF-8: the error names it without breaking the message */
	ctl(&H, &r, "spawn", "-C", "/nonexistent/\xff\xfe", "--", "true", NULL);
	cr_assert_eq(r.status, 125);
	cr_assert_not_null(strstr(r.err, "/nonexistent/??"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "No such file"), "%s", r.err);
	result_free(&r);
}

Test(protocol, list_records_shorten_long_command_lines_and_status_keeps_them)
{
	static char arg[8000];
	struct result r;

	memset(arg, 'a', sizeof(arg) - 1);
	ctl(&H, &r, "spawn", "-n", "long", "--", "true", arg, NULL);
	result_free(&r);
	ctl(&H, &r, "--json", "ps", "-a", NULL);
	cr_assert_not_null(strstr(r.out, "\"argv_truncated\":true"), "%s", r.out);
	cr_assert_lt(r.out_len, 4000);
	result_free(&r);
	ctl(&H, &r, "--json", "status", "long", NULL);
	cr_assert_null(strstr(r.out, "argv_truncated"));
	cr_assert_not_null(strstr(r.out, arg));
	result_free(&r);
}

Test(protocol, heidictl_refuses_a_socket_directory_that_is_a_symlink)
{
	char link[512], sock[600];
	struct result r;
	char *argv[6];

	snprintf(link, sizeof(link), "%s-link", H.dir);
	cr_assert_eq(symlink(H.dir, link), 0);
	snprintf(sock, sizeof(sock), "%s/s.sock", link);
	argv[0] = (char *)path_heidictl();
	argv[1] = (char *)"-s";
	argv[2] = sock;
	argv[3] = (char *)"ping";
	argv[4] = NULL;
	run_argv(&r, argv, NULL, 0, 10000);
	unlink(link);
	cr_assert_eq(r.status, 1);
	cr_assert_not_null(strstr(r.err, "symbolic link"), "%s", r.err);
	result_free(&r);
}

Test(protocol, heidictl_refuses_a_socket_directory_that_is_not_the_users)
{
	struct passwd *pw = getpwnam("nobody");
	char dir[256], sock[300];
	pid_t pid;
	int st;

	if (geteuid() != 0 || pw == NULL) {
		hd_cleanup(&H); /* a skipped test gets no .fini */
		cr_skip_test("needs root and the user nobody to act as a second user");
	}
	/* a world-writable directory, and one owned by root: nobody must refuse both */
	tmpdir_make(dir, sizeof(dir));
	chmod(dir, 0777);
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	pid = fork();
	if (pid == 0) {
		char *argv[] = { (char *)path_heidictl(), (char *)"-s", sock, (char *)"ping", NULL };
		char *envp[] = { (char *)"HEIDI_NO_AUTOSTART=1", NULL };

		if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
			_exit(10);
		freopen("/dev/null", "w", stderr);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert_eq(WEXITSTATUS(st), 1, "heidictl as nobody used a directory it does not own");
	tmpdir_remove(dir);
}

/* heidid itself refuses an unsafe socket directory, before it binds anything. */
static void
heidid_refuses(const char *sock, const char *why)
{
	char state[600];
	struct result r;
	char *argv[] = { (char *)path_heidid(), (char *)"-s", (char *)sock, (char *)"--state-dir", state, NULL };

	snprintf(state, sizeof(state), "%s/state-refused", H.dir);
	run_argv(&r, argv, NULL, 0, 10000);
	cr_assert_neq(r.status, 0, "heidid served on %s", sock);
	cr_assert_not_null(strstr(r.err, why), "%s", r.err);
	cr_assert_eq(access(sock, F_OK), -1, "heidid created %s", sock);
	result_free(&r);
}

Test(protocol, heidid_refuses_a_group_or_world_writable_or_symlinked_socket_directory)
{
	char dir[512], sock[600], link[600];

	snprintf(dir, sizeof(dir), "%s/open", H.dir);
	cr_assert_eq(mkdir(dir, 0700), 0);
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	cr_assert_eq(chmod(dir, 0770), 0);
	heidid_refuses(sock, "writable by group or others");
	cr_assert_eq(chmod(dir, 0703), 0);
	heidid_refuses(sock, "writable by group or others");
	/* a symlink to a good directory is refused all the same */
	cr_assert_eq(chmod(dir, 0700), 0);
	snprintf(link, sizeof(link), "%s/link", H.dir);
	cr_assert_eq(symlink(dir, link), 0);
	snprintf(sock, sizeof(sock), "%s/s.sock", link);
	heidid_refuses(sock, "symbolic link");
}
