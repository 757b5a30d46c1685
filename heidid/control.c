/*
 * control.c: what heidid does with each client request, and the events a
 * job sends to the connections watching it.
 *
 * Requests arrive here already decoded and validated by proto/msg.c.  A
 * request that cannot be served gets an "error" reply naming the cause;
 * nothing a client sends can do more than close its own connection.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "common/log.h"
#include "common/time.h"
#include "heidid/daemon.h"
#include "heidid/store.h"

#define FOLLOW_QUEUE_MAX (256u << 10) /* a follower's queue: beyond it, wait for the client */
#define FOLLOW_CHUNK (64u << 10)

static struct log_ratelimit req_rl = LOG_RATELIMIT_INIT(20, 2);
static char follow_buf[FOLLOW_CHUNK];

static void follow_pump(struct watch *w);

/* ---- watches ---- */

struct watch *
watch_new(struct conn *c, struct job *job, enum watch_kind kind, uint64_t req_id)
{
	struct watch *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->conn = c;
	w->job = job;
	w->kind = kind;
	w->req_id = req_id;
	LIST_INSERT_HEAD(&job->watches, w, job_entry);
	LIST_INSERT_HEAD(&c->watches, w, conn_entry);
	return w;
}

void
watch_free(struct watch *w)
{
	struct job *job = w->job;
	bool spawner = w->kind == WATCH_SPAWNER;
	bool spawner_gone = spawner && w->conn->dead;

	LIST_REMOVE(w, job_entry);
	LIST_REMOVE(w, conn_entry);
	if (w->group != NULL && --w->group->n_watches == 0) {
		free(w->group->ids);
		free(w->group);
	}
	if (w->kind == WATCH_FOLLOW) {
		joblog_reader_deinit(&w->rd);
		joblog_free(w->own_log);
	}
	free(w);
	if (spawner)
		jobs_tee_close(job); /* its pipes end: it reads to their end */
	if (spawner_gone)
		jobs_spawner_gone(job);
	else if (job->relay_paused)
		jobs_resume_relay(job);
}

static struct watch *
job_spawner(struct job *job)
{
	struct watch *w;

	LIST_FOREACH(w, &job->watches, job_entry)
		if (w->kind == WATCH_SPAWNER)
			return w;
	return NULL;
}

/* ---- replies ---- */

static void
pack_record(msgpack_packer *pk, const struct job *job)
{
	struct job_info ji;

	jobs_fill_info(job, &ji);
	msg_pack_job_info(pk, &ji);
}

static void
reply_record(struct conn *c, uint64_t id, const struct job *job)
{
	struct pack_buf b;
	struct pack_frame f;

	pack_buf_init(&b);
	msg_encode_ok_begin(&b, &f, id, 2);
	pack_kv_uint(&b.pk, "job", job->id);
	pack_key(&b.pk, "record");
	pack_record(&b.pk, job);
	msg_frame_end(&b, &f);
	conn_send_buf(c, &b);
	pack_buf_deinit(&b);
}

#define LIST_ARGV_MAX 1024 /* bytes of argv per record in ps/wait replies */

/* A record for a list: a long command line is cut (status has it whole). */
static void
pack_list_record(msgpack_packer *pk, const struct job *job)
{
	struct proto_bytes shortv[64];
	struct job_info ji;
	size_t total = 0, n = 0;

	jobs_fill_info(job, &ji);
	for (size_t i = 0; i < ji.n_argv; i++)
		total += ji.argv[i].len;
	if (total > LIST_ARGV_MAX || ji.n_argv > 64) {
		size_t left = LIST_ARGV_MAX;

		for (size_t i = 0; i < ji.n_argv && i < 64 && left > 0; i++) {
			shortv[n] = ji.argv[i];
			if (shortv[n].len > left)
				shortv[n].len = left; /* a cut item may end mid-character: bytes */
			left -= shortv[n].len;
			n++;
		}
		ji.argv = shortv;
		ji.n_argv = n;
		ji.argv_truncated = true;
	}
	msg_pack_job_info(pk, &ji);
}

static void
reply_records(struct conn *c, uint64_t id, struct job **jobs, size_t n)
{
	struct pack_buf b;
	struct pack_frame f;

	pack_buf_init(&b);
	msg_encode_ok_begin(&b, &f, id, 1);
	pack_key(&b.pk, "records");
	msgpack_pack_array(&b.pk, n);
	for (size_t i = 0; i < n; i++)
		pack_list_record(&b.pk, jobs[i]);
	msg_frame_end(&b, &f);
	conn_send_buf(c, &b);
	pack_buf_deinit(&b);
}

static void
send_exit_event(struct conn *c, const struct job *job)
{
	struct pack_buf b;
	struct job_info ji;

	jobs_fill_info(job, &ji);
	pack_buf_init(&b);
	msg_encode_exit(&b, &ji);
	conn_send_buf(c, &b);
	pack_buf_deinit(&b);
}

static void
wait_answer(struct conn *c, struct waitgroup *g)
{
	struct job **jobs = calloc(g->n_ids + 1, sizeof(*jobs));
	size_t n = 0;

	if (jobs == NULL) {
		conn_send_error(c, g->req_id, "no_memory", "out of memory");
		return;
	}
	for (size_t i = 0; i < g->n_ids; i++) {
		struct msg_jobref ref = { .id = g->ids[i] };
		struct job *job = jobs_find(&ref);

		if (job != NULL)
			jobs[n++] = job;
	}
	reply_records(c, g->req_id, jobs, n);
	free(jobs);
}

/* ---- events from jobs ---- */

void
control_job_done(struct job *job)
{
	struct watch *w, *next;

	for (w = LIST_FIRST(&job->watches); w != NULL; w = next) {
		next = LIST_NEXT(w, job_entry);
		switch (w->kind) {
		case WATCH_SPAWNER:
			send_exit_event(w->conn, job);
			break;
		case WATCH_STOP:
			reply_record(w->conn, w->req_id, job);
			break;
		case WATCH_WAIT:
			if (--w->group->n_pending == 0)
				wait_answer(w->conn, w->group);
			break;
		case WATCH_FOLLOW:
			/* they read on to the end of the log, then end */
			follow_pump(w);
			continue;
		}
		watch_free(w);
	}
}

/* ---- followers: logs, logs -f, attach ---- */

static struct joblog *
follow_log(struct watch *w)
{
	return w->own_log != NULL ? w->own_log : w->job->log;
}

static void
follow_end(struct watch *w)
{
	struct pack_buf b;

	pack_buf_init(&b);
	/*
	 * Output lost at the very end of the log (a write error that lasted
	 * to the job's end: no later write could place a gap record) or with
	 * no log at all: the reader has seen fewer bytes than the job wrote.
	 */
	if (w->job->fsm.state == JOB_DONE && w->job->bytes_relayed > w->rd.data_pos)
		msg_encode_gap(&b, w->job->id, w->job->bytes_relayed - w->rd.data_pos);
	if (w->attach) {
		struct job_info ji;

		jobs_fill_info(w->job, &ji);
		msg_encode_exit(&b, &ji);
	} else
		msg_encode_end(&b, w->job->id, w->job->fsm.state == JOB_DONE ? "ended" : "complete");
	conn_send_buf(w->conn, &b);
	pack_buf_deinit(&b);
	watch_free(w);
}

/*
 * Send what the log holds beyond the follower's position, while its
 * connection keeps up; resumed by new output or by the client draining
 * its queue.  Followers read from disk: they never slow the job.
 */
static void
follow_pump(struct watch *w)
{
	struct job *job = w->job;

	while (!w->conn->dead && conn_queued(w->conn) < FOLLOW_QUEUE_MAX) {
		struct joblog *log = follow_log(w);
		struct joblog_chunk ch;
		int r;

		if (log == NULL) {
			if (job->fsm.state == JOB_DONE || !w->follow)
				follow_end(w);
			return;
		}
		r = joblog_read(log, &w->rd, follow_buf, sizeof(follow_buf), &ch);
		if (r == JOBLOG_E_END) {
			if (job->fsm.state == JOB_DONE || !w->follow)
				follow_end(w);
			return;
		}
		if (r < 0) {
			conn_send_error(w->conn, w->req_id, "log_error", "reading job %llu's log: %s",
			    (unsigned long long)job->id, strerror(-r));
			watch_free(w);
			return;
		}
		if (ch.kind == JOBLOG_GAP) {
			struct pack_buf b;

			pack_buf_init(&b);
			msg_encode_gap(&b, job->id, ch.gap);
			conn_send_buf(w->conn, &b);
			pack_buf_deinit(&b);
		} else {
			uint8_t hdr[64];
			struct iovec iov[2] = {
				{ hdr, msg_output_header(hdr, job->id,
					   ch.kind == JOBLOG_STDERR ? STREAM_STDERR : STREAM_STDOUT, ch.len) },
				{ follow_buf, ch.len },
			};

			conn_send_iov(w->conn, iov, 2);
		}
	}
}

void
control_job_state(struct job *job)
{
	struct watch *w;
	struct pack_buf b;

	pack_buf_init(&b);
	msg_encode_state(&b, job->id, job_state_name(job->fsm.state), job->pid);
	LIST_FOREACH(w, &job->watches, job_entry)
		if (w->state_events && (w->kind == WATCH_SPAWNER || (w->kind == WATCH_FOLLOW && w->attach))) {
			struct iovec iov = { b.sbuf.data, b.sbuf.size };

			conn_send_iov(w->conn, &iov, 1);
		}
	pack_buf_deinit(&b);
}

void
control_job_appended(struct job *job)
{
	struct watch *w, *next;

	for (w = LIST_FIRST(&job->watches); w != NULL; w = next) {
		next = LIST_NEXT(w, job_entry);
		if (w->kind == WATCH_FOLLOW)
			follow_pump(w);
	}
}

void
control_job_log_closing(struct job *job)
{
	struct watch *w;
	char dir[4200];

	store_job_dir(job->id, dir, sizeof(dir));
	LIST_FOREACH(w, &job->watches, job_entry)
		if (w->kind == WATCH_FOLLOW && w->own_log == NULL && joblog_open(&w->own_log, dir) < 0)
			w->own_log = NULL; /* the pump ends it: nothing more to read */
}

void
control_job_output(struct job *job, enum out_stream s, const char *data, size_t len)
{
	struct watch *w = job_spawner(job);
	uint8_t hdr[64];
	struct iovec iov[2];

	if (w == NULL || w->conn->dead || w->pipes)
		return;
	iov[0].iov_base = hdr;
	iov[0].iov_len = msg_output_header(hdr, job->id, s, len);
	iov[1].iov_base = (void *)data;
	iov[1].iov_len = len;
	conn_send_iov(w->conn, iov, 2);
	/* lossless: a slow spawner makes the job wait, never the daemon buffer */
	if (conn_queued(w->conn) > CONN_OUT_PAUSE)
		job->relay_paused = true;
}

bool
control_job_wants_pipes(struct job *job)
{
	struct watch *w = job_spawner(job);

	return w != NULL && !w->conn->dead && w->want_pipes && !w->pipes;
}

int
control_job_send_pipes(struct job *job, int fds[2])
{
	struct watch *w = job_spawner(job);
	struct pack_buf b;
	int r;

	if (w == NULL || w->conn->dead || !w->want_pipes || w->pipes) {
		close(fds[0]);
		close(fds[1]);
		return -ENOENT;
	}
	pack_buf_init(&b);
	msg_encode_pipes(&b, job->id);
	r = conn_send_fds(w->conn, &b, fds, 2);
	pack_buf_deinit(&b);
	if (r == 0)
		w->pipes = true;
	return r;
}

void
control_conn_drained(struct conn *c)
{
	struct watch *w;

	struct watch *next;

	for (w = LIST_FIRST(&c->watches); w != NULL; w = next) {
		next = LIST_NEXT(w, conn_entry);
		if (w->kind == WATCH_SPAWNER && w->job->relay_paused)
			jobs_resume_relay(w->job);
		else if (w->kind == WATCH_FOLLOW)
			follow_pump(w);
	}
}

/* ---- requests ---- */

static struct job *
find_or_reply(struct conn *c, uint64_t id, const struct msg_jobref *ref)
{
	struct job *job = jobs_find(ref);

	if (job == NULL) {
		if (ref->id != 0)
			conn_send_error(c, id, "no_such_job", "no job %llu", (unsigned long long)ref->id);
		else
			conn_send_error(c, id, "no_such_job", "no job named \"%.*s\"",
			    (int)ref->name.len, ref->name.ptr);
	}
	return job;
}

static void
do_hello(struct conn *c, const struct msg_request *req)
{
	struct pack_buf b;
	struct pack_frame f;

	if (req->hello.version != PROTO_VERSION) {
		conn_send_error(c, req->id, "bad_version",
		    "protocol version %llu is not supported (heidid speaks version %d)",
		    (unsigned long long)req->hello.version, PROTO_VERSION);
		c->closing = true;
		return;
	}
	c->hello = true;
	pack_buf_init(&b);
	msg_frame_begin(&b, &f);
	msgpack_pack_map(&b.pk, 6);
	pack_kv_str(&b.pk, "type", "hello");
	pack_kv_uint(&b.pk, "id", req->id);
	pack_kv_uint(&b.pk, "version", PROTO_VERSION);
	pack_kv_str(&b.pk, "server", "heidid " HEIDI_VERSION);
	pack_kv_int(&b.pk, "pid", getpid());
	pack_kv_str(&b.pk, "instance", D->instance);
	msg_frame_end(&b, &f);
	conn_send_buf(c, &b);
	pack_buf_deinit(&b);
}

static void
do_spawn(struct conn *c, const struct msg_request *req)
{
	struct proto_error err;
	struct job *job;
	struct pack_buf b;
	struct pack_frame f;

	if (jobs_submit(&req->spawn, &job, &err) < 0) {
		conn_send_error(c, req->id, err.code, "%s", err.message);
		return;
	}
	pack_buf_init(&b);
	msg_encode_ok_begin(&b, &f, req->id, 1);
	pack_kv_uint(&b.pk, "job", job->id);
	msg_frame_end(&b, &f);
	conn_send_buf(c, &b);
	pack_buf_deinit(&b);
	if (!req->spawn.detach) {
		struct watch *w = watch_new(c, job, WATCH_SPAWNER, req->id);

		if (w == NULL) {
			jobs_cancel(job, "spawn_failed");
			return;
		}
		w->state_events = req->spawn.state_events;
		w->want_pipes = req->spawn.pipes;
		if (req->spawn.stdin_pipe)
			job->stdin_conn = c;
	}
	jobs_schedule();
}

static int
job_cmp_id(const void *a, const void *b)
{
	const struct job *x = *(struct job *const *)a, *y = *(struct job *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static void
do_ps(struct conn *c, const struct msg_request *req)
{
	struct job **v = calloc(D->n_jobs + 1, sizeof(*v)), *job;
	size_t n = 0;

	if (v == NULL) {
		conn_send_error(c, req->id, "no_memory", "out of memory");
		return;
	}
	RB_FOREACH(job, job_tree, &D->jobs)
		if (req->ps.all || job->fsm.state != JOB_DONE)
			v[n++] = job;
	qsort(v, n, sizeof(*v), job_cmp_id);
	reply_records(c, req->id, v, n);
	free(v);
}

static void
do_wait(struct conn *c, const struct msg_request *req)
{
	struct waitgroup *g;
	struct job **jobs;
	size_t n = req->wait.n_jobs;

	jobs = calloc(n, sizeof(*jobs));
	g = calloc(1, sizeof(*g));
	if (jobs == NULL || g == NULL || (g->ids = calloc(n, sizeof(*g->ids))) == NULL) {
		free(jobs);
		free(g);
		conn_send_error(c, req->id, "no_memory", "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		jobs[i] = find_or_reply(c, req->id, &req->wait.jobs[i]);
		if (jobs[i] == NULL) {
			free(jobs);
			free(g->ids);
			free(g);
			return;
		}
		g->ids[i] = jobs[i]->id;
	}
	g->req_id = req->id;
	g->n_ids = n;
	for (size_t i = 0; i < n; i++) {
		struct watch *w;

		if (jobs[i]->fsm.state == JOB_DONE)
			continue;
		w = watch_new(c, jobs[i], WATCH_WAIT, req->id);
		if (w == NULL)
			continue;
		w->group = g;
		g->n_watches++;
		g->n_pending++;
	}
	if (g->n_pending == 0) {
		wait_answer(c, g);
		if (g->n_watches == 0) {
			free(g->ids);
			free(g);
		}
	}
	free(jobs);
}

static void
do_kill(struct conn *c, const struct msg_request *req)
{
	struct job *job = find_or_reply(c, req->id, &req->kill.job);
	int r;

	if (job == NULL)
		return;
	if (job->fsm.state == JOB_QUEUED) {
		jobs_cancel(job, "cancelled");
		conn_send_ok(c, req->id);
		return;
	}
	r = jobs_signal(job, req->kill.signal, req->kill.group);
	if (r < 0)
		conn_send_error(c, req->id, "not_running", "job %llu is not running (%s)",
		    (unsigned long long)job->id, job_state_name(job->fsm.state));
	else
		conn_send_ok(c, req->id);
}

static void
do_stop(struct conn *c, const struct msg_request *req)
{
	struct job *job = find_or_reply(c, req->id, &req->stop.job);

	if (job == NULL)
		return;
	if (job->fsm.state == JOB_QUEUED)
		jobs_cancel(job, "cancelled");
	if (job->fsm.state == JOB_DONE) {
		reply_record(c, req->id, job);
		return;
	}
	if (watch_new(c, job, WATCH_STOP, req->id) == NULL) {
		conn_send_error(c, req->id, "no_memory", "out of memory");
		return;
	}
	jobs_stop(job, req->stop.has_grace ? req->stop.grace_ms : job->grace_ms);
}

static struct watch *
follow_new(struct conn *c, uint64_t req_id, struct job *job, bool out, bool err, bool follow)
{
	struct watch *w = watch_new(c, job, WATCH_FOLLOW, req_id);

	if (w == NULL)
		return NULL;
	joblog_reader_init(&w->rd, out, err);
	w->follow = follow;
	/* a running job's log is the live one (it appears with the first
	 * output); only a finished job is read through a handle of our own */
	if (job->log == NULL && job->fsm.state == JOB_DONE && jobs_has_log(job)) {
		char dir[4200];

		store_job_dir(job->id, dir, sizeof(dir));
		if (joblog_open(&w->own_log, dir) < 0)
			w->own_log = NULL; /* nothing was kept */
	}
	return w;
}

static void
reply_job(struct conn *c, uint64_t id, const struct job *job)
{
	struct pack_buf b;
	struct pack_frame f;

	pack_buf_init(&b);
	msg_encode_ok_begin(&b, &f, id, 1);
	pack_kv_uint(&b.pk, "job", job->id);
	msg_frame_end(&b, &f);
	conn_send_buf(c, &b);
	pack_buf_deinit(&b);
}

static void
do_logs(struct conn *c, const struct msg_request *req)
{
	struct job *job = find_or_reply(c, req->id, &req->logs.job);
	struct watch *w;

	if (job == NULL)
		return;
	w = follow_new(c, req->id, job, req->logs.out, req->logs.err, req->logs.follow);
	if (w == NULL) {
		conn_send_error(c, req->id, "no_memory", "out of memory");
		return;
	}
	if (req->logs.has_tail && follow_log(w) != NULL) {
		int r = joblog_reader_seek_tail(follow_log(w), &w->rd, req->logs.tail);

		if (r < 0) {
			conn_send_error(c, req->id, "log_error", "reading job %llu's log: %s",
			    (unsigned long long)job->id, strerror(-r));
			watch_free(w);
			return;
		}
	}
	reply_job(c, req->id, job);
	follow_pump(w);
}

static void
do_attach(struct conn *c, const struct msg_request *req)
{
	struct job *job = find_or_reply(c, req->id, &req->attach.job);
	struct watch *w;

	if (job == NULL)
		return;
	if (req->attach.stdin_pipe && job->fsm.state != JOB_DONE) {
		if (!job->stdin_pipe) {
			conn_send_error(c, req->id, "no_stdin",
			    "job %llu was not started with --stdin", (unsigned long long)job->id);
			return;
		}
		if (job->stdin_conn != NULL && job->stdin_conn != c) {
			conn_send_error(c, req->id, "stdin_busy",
			    "another client feeds job %llu's stdin", (unsigned long long)job->id);
			return;
		}
	}
	w = follow_new(c, req->id, job, true, true, true);
	if (w == NULL) {
		conn_send_error(c, req->id, "no_memory", "out of memory");
		return;
	}
	w->attach = true;
	w->state_events = req->attach.state_events;
	/* the rest of the output: from now on */
	if (follow_log(w) != NULL)
		joblog_reader_seek_end(follow_log(w), &w->rd);
	if (req->attach.stdin_pipe && job->fsm.state != JOB_DONE)
		job->stdin_conn = c;
	reply_job(c, req->id, job);
	follow_pump(w);
}

static void
do_input(struct conn *c, const struct msg_request *req)
{
	struct job *job = find_or_reply(c, req->id, &req->input.job);
	struct proto_error err;

	if (job == NULL)
		return;
	if (job->stdin_conn != c) {
		conn_send_error(c, req->id, "not_attached",
		    "this connection does not own job %llu's stdin", (unsigned long long)job->id);
		return;
	}
	if (jobs_input(job, c, req->id, req->input.data.ptr, req->input.data.len, req->input.eof,
		&err) < 0)
		conn_send_error(c, req->id, err.code, "%s", err.message);
}

static void
do_detach(struct conn *c, const struct msg_request *req)
{
	struct job *job = find_or_reply(c, req->id, &req->job);
	struct watch *w, *next;

	if (job == NULL)
		return;
	for (w = LIST_FIRST(&c->watches); w != NULL; w = next) {
		next = LIST_NEXT(w, conn_entry);
		if (w->job == job && w->kind == WATCH_SPAWNER)
			watch_free(w); /* the conn is alive: no SIGHUP */
	}
	if (job->stdin_conn == c)
		jobs_stdin_conn_gone(job, c);
	conn_send_ok(c, req->id);
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
do_stats(struct conn *c, const struct msg_request *req)
{
	struct stats *st = &D->stats;
	uint64_t lat[ARRAY_SIZE(st->lat_ns)];
	size_t n = MIN(st->n_lat, ARRAY_SIZE(st->lat_ns));
	struct pack_buf b;
	struct pack_frame f;

	memcpy(lat, st->lat_ns, n * sizeof(*lat));
	qsort(lat, n, sizeof(*lat), u64_cmp);
	pack_buf_init(&b);
	msg_encode_ok_begin(&b, &f, req->id, 1);
	pack_key(&b.pk, "stats");
	msgpack_pack_map(&b.pk, 15);
	pack_kv_uint(&b.pk, "uptime_ms", (time_now_ns() - D->start_ns) / NSEC_PER_MSEC);
	pack_kv_uint(&b.pk, "jobs_submitted", st->submitted);
	pack_kv_uint(&b.pk, "jobs_started", st->started);
	pack_kv_uint(&b.pk, "jobs_finished", st->finished);
	pack_kv_uint(&b.pk, "jobs_refused_queue_full", st->refused_full);
	pack_key(&b.pk, "jobs_by_reason");
	msgpack_pack_map(&b.pk, n_job_reasons);
	for (size_t i = 0; i < n_job_reasons; i++)
		pack_kv_uint(&b.pk, job_reasons[i], st->by_reason[i]);
	pack_kv_uint(&b.pk, "running", D->sched.n_running);
	pack_kv_uint(&b.pk, "queued", D->sched.n_queued);
	pack_kv_uint(&b.pk, "bytes_relayed", st->bytes_relayed);
	pack_kv_uint(&b.pk, "clients", D->n_conns);
	pack_kv_uint(&b.pk, "bad_frames", st->bad_frames);
	pack_key(&b.pk, "spawn_latency_us");
	msgpack_pack_map(&b.pk, 4);
	pack_kv_uint(&b.pk, "samples", n);
	pack_kv_uint(&b.pk, "p50", n ? lat[n / 2] / 1000 : 0);
	pack_kv_uint(&b.pk, "p90", n ? lat[n * 9 / 10] / 1000 : 0);
	pack_kv_uint(&b.pk, "p99", n ? lat[n * 99 / 100] / 1000 : 0);
	pack_kv_str(&b.pk, "containment", D->cont.enabled ? "cgroup" : "pgroup");
	pack_kv_str(&b.pk, "cgroup_root", D->cont.enabled ? D->cont.inst : D->cont.why);
	pack_kv_str(&b.pk, "instance", D->instance);
	msg_frame_end(&b, &f);
	conn_send_buf(c, &b);
	pack_buf_deinit(&b);
}

void
control_dispatch(struct conn *c, const uint8_t *frame, size_t len)
{
	struct pack_doc doc;
	struct msg_request req;
	struct proto_error err;

	pack_doc_init(&doc);
	if (msg_request_decode(&doc, frame, len, &req, &err) < 0) {
		D->stats.bad_frames++;
		log_msg_rl(&req_rl, LOG_LVL_WARN, "client pid %d: rejected a request: %s", (int)c->pid,
		    err.message);
		conn_send_error(c, req.id, err.code, "%s", err.message);
		/* a frame that is not even msgpack ends the connection */
		if (strcmp(err.code, PROTO_E_BAD_FRAME) == 0)
			c->closing = true;
		pack_doc_deinit(&doc);
		return;
	}
	if (!c->hello && req.type != MSG_HELLO) {
		conn_send_error(c, req.id, "hello_required", "the first request must be \"hello\"");
		c->closing = true;
		pack_doc_deinit(&doc);
		return;
	}
	switch (req.type) {
	case MSG_HELLO:
		do_hello(c, &req);
		break;
	case MSG_SPAWN:
		do_spawn(c, &req);
		break;
	case MSG_PS:
		do_ps(c, &req);
		break;
	case MSG_STATUS: {
		struct job *job = find_or_reply(c, req.id, &req.job);

		if (job != NULL)
			reply_record(c, req.id, job);
		break;
	}
	case MSG_WAIT:
		do_wait(c, &req);
		break;
	case MSG_KILL:
		do_kill(c, &req);
		break;
	case MSG_STOP:
		do_stop(c, &req);
		break;
	case MSG_INPUT:
		do_input(c, &req);
		break;
	case MSG_DETACH:
		do_detach(c, &req);
		break;
	case MSG_OUTPUT_CLOSED: {
		struct job *job = find_or_reply(c, req.id, &req.output_closed.job);

		if (job != NULL) {
			jobs_output_closed(job, req.output_closed.stream);
			conn_send_ok(c, req.id);
		}
		break;
	}
	case MSG_STATS:
		do_stats(c, &req);
		break;
	case MSG_SHUTDOWN:
		conn_send_ok(c, req.id);
		jobs_shutdown_begin(req.shutdown.has_grace ? req.shutdown.grace_ms
							   : D->cfg.default_grace_ms);
		break;
	case MSG_PING:
		conn_send_ok(c, req.id);
		break;
	case MSG_VERSION: {
		struct pack_buf b;
		struct pack_frame f;

		pack_buf_init(&b);
		msg_encode_ok_begin(&b, &f, req.id, 2);
		pack_kv_str(&b.pk, "version", HEIDI_VERSION);
		pack_kv_uint(&b.pk, "protocol", PROTO_VERSION);
		msg_frame_end(&b, &f);
		conn_send_buf(c, &b);
		pack_buf_deinit(&b);
		break;
	}
	case MSG_LOGS:
		do_logs(c, &req);
		break;
	case MSG_ATTACH:
		do_attach(c, &req);
		break;
	default:
		conn_send_error(c, req.id, "unknown_type", "\"%s\" is not a request",
		    msg_type_name(req.type));
		break;
	}
	pack_doc_deinit(&doc);
}
