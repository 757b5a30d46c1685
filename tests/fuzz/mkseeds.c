/*
 * mkseeds DIR: write the fuzzers' seed corpus (valid messages of every
 * kind, from the real encoders) into DIR/{frame,request,shep,event}/.
 * The corpus in the repository was made with it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto/frame.h"
#include "proto/msg.h"
#include "proto/shep.h"

static const char *root;

static void
put(const char *kind, const char *name, const void *p, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, kind);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", root, kind, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, len, f) != len) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

/* A request encoder writes a frame: the request seed is the payload, the frame seed all of it. */
static void
put_request(const char *name, struct pack_buf *b)
{
	uint8_t step = 5;

	put("request", name, b->sbuf.data + FRAME_HEADER, b->sbuf.size - FRAME_HEADER);
	{
		char *with = malloc(b->sbuf.size + 1);

		with[0] = (char)step;
		memcpy(with + 1, b->sbuf.data, b->sbuf.size);
		put("frame", name, with, b->sbuf.size + 1);
		free(with);
	}
	pack_buf_reset(b);
}

int
main(int argc, char **argv)
{
	struct pack_buf b;
	struct proto_bytes av[] = { { "sh", 2 }, { "-c", 2 }, { "echo hi", 7 } };
	struct proto_bytes ev[] = { { "PATH=/bin", 9 }, { "HOME=/root", 10 } };
	struct msg_spawn s = { .argv = av, .n_argv = 3, .env = ev, .n_env = 2, .cwd = { "/tmp", 4 },
		.name = { "build", 5 }, .stdin_pipe = true, .timeout_ms = 5000, .has_grace = true,
		.grace_ms = 100, .has_nice = true, .nice = 5, .containment = CONTAIN_PGROUP };
	char *jobs[] = { (char *)"1", (char *)"build" };
	struct job_info ji = { .id = 7, .name = "build", .state = "done", .pid = 1234, .argv = av,
		.n_argv = 3, .cwd = { "/tmp", 4 }, .containment = "cgroup", .cgroup = "/heidi/x/job-7",
		.has_exit = true, .exit_code = 3, .reason = "exited", .leftovers = 2,
		.submitted_at = 1700000000000, .started_at = 1700000000001, .ended_at = 1700000000500,
		.duration_ms = 499, .user_cpu_ms = 10, .sys_cpu_ms = 2, .max_rss_kb = 1500 };

	if (argc != 2)
		return 2;
	root = argv[1];
	mkdir(root, 0755);
	pack_buf_init(&b);
	msg_encode_hello(&b, 1, "seed");
	put_request("hello", &b);
	msg_encode_spawn(&b, 2, &s);
	put_request("spawn", &b);
	msg_encode_ps(&b, 3, true);
	put_request("ps", &b);
	msg_encode_jobref(&b, MSG_STATUS, 4, "build");
	put_request("status", &b);
	msg_encode_wait(&b, 5, jobs, 2);
	put_request("wait", &b);
	msg_encode_kill(&b, 6, "7", 2, true);
	put_request("kill", &b);
	msg_encode_stop(&b, 7, "7", true, 1000);
	put_request("stop", &b);
	msg_encode_logs(&b, 8, "7", true, true, false, true, 10);
	put_request("logs", &b);
	msg_encode_attach(&b, 9, "7", true);
	put_request("attach", &b);
	msg_encode_input(&b, 10, "7", "data\n", 5, true);
	put_request("input", &b);
	msg_encode_output_closed(&b, 11, "7", STREAM_STDOUT);
	put_request("output_closed", &b);
	msg_encode_shutdown(&b, 12, true, 2000);
	put_request("shutdown", &b);
	msg_encode_simple(&b, MSG_STATS, 13);
	put_request("stats", &b);

	/* server messages */
	msg_encode_error(&b, 2, "queue_full", "the queue is full");
	put("event", "error", b.sbuf.data + FRAME_HEADER, b.sbuf.size - FRAME_HEADER);
	pack_buf_reset(&b);
	msg_encode_exit(&b, &ji);
	put("event", "exit", b.sbuf.data + FRAME_HEADER, b.sbuf.size - FRAME_HEADER);
	pack_buf_reset(&b);
	msg_encode_gap(&b, 7, 4096);
	put("event", "gap", b.sbuf.data + FRAME_HEADER, b.sbuf.size - FRAME_HEADER);
	pack_buf_reset(&b);
	msg_encode_end(&b, 7, "ended");
	put("event", "end", b.sbuf.data + FRAME_HEADER, b.sbuf.size - FRAME_HEADER);
	pack_buf_reset(&b);
	{
		uint8_t hdr[64];
		size_t n = msg_output_header(hdr, 7, STREAM_STDERR, 3);
		char frame[80];

		memcpy(frame, hdr, n);
		memcpy(frame + n, "abc", 3);
		put("event", "output", frame + FRAME_HEADER, n + 3 - FRAME_HEADER);
	}
	{
		struct pack_frame f;

		msg_encode_ok_begin(&b, &f, 3, 1);
		pack_key(&b.pk, "records");
		msgpack_pack_array(&b.pk, 2);
		msg_pack_job_info(&b.pk, &ji);
		msg_pack_job_info(&b.pk, &ji);
		msg_frame_end(&b, &f);
		put("event", "records", b.sbuf.data + FRAME_HEADER, b.sbuf.size - FRAME_HEADER);
		pack_buf_reset(&b);
	}

	/* shepherd messages */
	{
		struct shep_spec sp = { .job_id = 7, .argv = av,
			.n_argv = 3, .env = ev, .n_env = 2, .cwd = { "/tmp", 4 },
			.cgroup = { "/sys/fs/cgroup/heidi/x/job-7", 28 }, .cgroup_rel = { "/heidi/x/job-7", 14 },
			.grace_ms = 10000, .timeout_ms = 0, .stdin_pipe = true, .pipe_size = 65536 };
		struct shep_started st = { .pid = 100, .pgid = 100, .containment = { "cgroup", 6 },
			.cgroup = { "/heidi/x/job-7", 14 }, .n_fds = 3 };
		struct shep_exit ex = { .exited = true, .code = 1, .reason = { "exited", 6 },
			.utime_us = 5, .stime_us = 6, .maxrss_kb = 7, .wall_ms = 8, .leftovers = 1 };

		shep_encode_spec(&b, &sp);
		put("shep", "spec", b.sbuf.data, b.sbuf.size);
		pack_buf_reset(&b);
		shep_encode_spec_memfd(&b);
		put("shep", "spec_memfd", b.sbuf.data, b.sbuf.size);
		pack_buf_reset(&b);
		shep_encode_signal(&b, 15, true);
		put("shep", "signal", b.sbuf.data, b.sbuf.size);
		pack_buf_reset(&b);
		shep_encode_stop(&b, 100);
		put("shep", "stop", b.sbuf.data, b.sbuf.size);
		pack_buf_reset(&b);
		shep_encode_started(&b, &st);
		put("shep", "started", b.sbuf.data, b.sbuf.size);
		pack_buf_reset(&b);
		shep_encode_exit(&b, &ex);
		put("shep", "exit", b.sbuf.data, b.sbuf.size);
		pack_buf_reset(&b);
	}
	pack_buf_deinit(&b);
	return 0;
}
