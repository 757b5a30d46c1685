/*
 * jobs.c: the life of a job inside heidid.
 *
 * submit -> queue (sched.c) -> start: a warm shepherd from the pool (or a
 * new one, exec'd with vfork, never a fork of our memory) gets the spec ->
 * "started": the pipes arrive and the relay runs -> "exit" report + end of
 * output -> done; the shepherd goes back to the pool for the next job.
 *
 * The job state machine (jobstate.c) decides; this file carries out its
 * actions.  Output is relayed chunk by chunk: tee'd into the attached
 * spawner's pipes, or sent as "output" events (lossless either way: a slow
 * spawner pauses the relay, so the job blocks in write), and appended to
 * the log.  Records, pool refills and removals wait for idle time.  heidid
 * is a child subreaper: a process re-parented to it is an orphan of a dead
 * shepherd and is killed (after pidfd verification).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/sock.h"
#include "common/spawn.h"
#include "common/time.h"
#include "heidid/daemon.h"
#include "heidid/server.h"
#include "heidid/store.h"
#include "proto/shep.h"

#define LOST_DRAIN_NS (5 * NSEC_PER_SEC)

extern char **environ;

static char relay_buf[RELAY_CHUNK];
static int devnull_fd = -1;
static struct log_ratelimit job_rl = LOG_RATELIMIT_INIT(50, 10);

static int
job_cmp(struct job *a, struct job *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

RB_GENERATE(job_tree, job, by_id, job_cmp)

static void job_event(struct job *job, enum job_event ev);
static void pipe_close(struct job_pipe *p);
static void tee_open(struct job *job);
static void pipe_drain(struct job_pipe *p);
static void tee_close_one(struct job_pipe *p);
static void lost_timeout(struct loop_timer *t, uint64_t now);
static int copy_argv(struct job *job, const struct msg_spawn *s);

/* ---- lookup and records ---- */

struct job *
jobs_find(const struct msg_jobref *ref)
{
	struct job key, *job, *best = NULL;

	if (ref->id != 0) {
		key.id = ref->id;
		return RB_FIND(job_tree, &D->jobs, &key);
	}
	/* names: the newest job of that name */
	RB_FOREACH_REVERSE(job, job_tree, &D->jobs)
		if (job->name != NULL && strlen(job->name) == ref->name.len &&
		    memcmp(job->name, ref->name.ptr, ref->name.len) == 0) {
			best = job;
			break;
		}
	return best;
}

void
jobs_fill_info(const struct job *job, struct job_info *ji)
{
	memset(ji, 0, sizeof(*ji));
	ji->id = job->id;
	ji->name = job->name;
	ji->state = job_state_name(job->fsm.state);
	ji->pid = job->pid;
	ji->argv = job->argv;
	ji->n_argv = job->n_argv;
	ji->cwd.ptr = job->cwd;
	ji->cwd.len = strlen(job->cwd);
	if (job->fsm.state != JOB_QUEUED && job->started_at != 0)
		ji->containment = containment_name(job->containment);
	ji->cgroup = job->cgroup;
	ji->has_exit = job->has_exit;
	ji->exit_code = job->exit_code;
	ji->signal = job->signal;
	ji->core_dumped = job->core;
	ji->reason = job->fsm.state == JOB_DONE ? job->reason : NULL;
	ji->error = job->error;
	ji->error_stage = job->error_stage;
	ji->leftovers = job->leftovers;
	ji->submitted_at = job->submitted_at;
	ji->started_at = job->started_at;
	ji->ended_at = job->ended_at;
	if (job->started_at != 0)
		ji->duration_ms = job->ended_at != 0 ? (uint64_t)(job->ended_at - job->started_at)
						     : (uint64_t)(time_real_ms() - job->started_at);
	ji->user_cpu_ms = job->user_us / 1000;
	ji->sys_cpu_ms = job->sys_us / 1000;
	ji->max_rss_kb = job->maxrss_kb;
	ji->log_bytes = job->bytes_relayed;
	ji->log_dropped = job->log != NULL ? joblog_dropped(job->log) : job->log_dropped;
}

static struct job *
job_free(struct job *job)
{
	if (job == NULL)
		return NULL;
	free(job->name);
	free(job->spec);
	free(job->argv);
	free(job->argv_blob);
	free(job->cwd);
	free(job->cgroup);
	outq_deinit(&job->inq);
	joblog_free(job->log);
	free(job);
	return NULL;
}

/* ---- records ---- */

/*
 * Records are written when heidid has nothing else to do: filesystem
 * metadata is the slowest part of a short job's life, and it belongs
 * after the exit event, not before.  Pending records are written before
 * a job is evicted and at shutdown.
 */
static void job_store_now(struct job *job);

static void
job_store(struct job *job)
{
	if (job->store_pending)
		return;
	job->store_pending = true;
	job->store_since = time_now_ns();
	TAILQ_INSERT_TAIL(&D->store_queue, job, store_entry);
}

static void
job_store_take(struct job *job)
{
	if (!job->store_pending)
		return;
	TAILQ_REMOVE(&D->store_queue, job, store_entry);
	job->store_pending = false;
	job_store_now(job);
}

/* An evicted job's files go at idle time too (or now, if memory is short). */
static void
remove_later(uint64_t id)
{
	if (D->n_remove == D->cap_remove) {
		size_t cap = D->cap_remove ? D->cap_remove * 2 : 64;
		uint64_t *v = reallocarray(D->remove_queue, cap, sizeof(*v));

		if (v == NULL) {
			store_remove(id);
			return;
		}
		D->remove_queue = v;
		D->cap_remove = cap;
	}
	D->remove_queue[D->n_remove++] = id;
}

void
jobs_store_flush(void)
{
	struct job *job;

	while ((job = TAILQ_FIRST(&D->store_queue)) != NULL)
		job_store_take(job);
	while (D->n_remove > 0)
		store_remove(D->remove_queue[--D->n_remove]);
}

/* Persist the job's record (start and end); a failure only costs the record. */
static void
job_store_now(struct job *job)
{
	struct job_info ji;
	int r;

	jobs_fill_info(job, &ji);
	r = store_write_record(&ji);
	if (r < 0)
		log_msg_rl(&job_rl, LOG_LVL_WARN, "job %llu: cannot store its record: %s",
		    (unsigned long long)job->id, strerror(-r));
}

/* Rewrite the journal from the records of the jobs heidid knows. */
static void
jobs_compact(void)
{
	struct store_compaction c;
	struct job *job;
	int r;

	store_compact_begin(&c);
	RB_FOREACH(job, job_tree, &D->jobs) {
		struct job_info ji;

		/* the jobs that have a record: queued ones get theirs when they start */
		if (job->fsm.state != JOB_DONE && !jobs_has_log(job))
			continue;
		jobs_fill_info(job, &ji);
		store_compact_add(&c, &ji);
	}
	r = store_compact_end(&c);
	if (r < 0) {
		log_msg_rl(&job_rl, LOG_LVL_WARN, "cannot compact the record journal: %s", strerror(-r));
		return;
	}
	/* the new journal holds every pending record too */
	while ((job = TAILQ_FIRST(&D->store_queue)) != NULL) {
		TAILQ_REMOVE(&D->store_queue, job, store_entry);
		job->store_pending = false;
	}
}

bool
jobs_has_log(const struct job *job)
{
	return job->started_at != 0 || job->sched_started;
}

static const char *
intern_stage(const char *s)
{
	static const char *const stages[] = { "exec", "chdir", "cgroup", "setup", "shepherd",
		"spec", "fds" };

	for (size_t i = 0; s != NULL && i < ARRAY_SIZE(stages); i++)
		if (strcmp(s, stages[i]) == 0)
			return stages[i];
	return s != NULL ? "setup" : NULL;
}

static void
load_record(const struct job_info *ji, int64_t mtime_ms, void *data)
{
	struct job *job = calloc(1, sizeof(*job));
	struct msg_spawn s = { .argv = ji->argv, .n_argv = ji->n_argv };

	(void)data;
	if (job == NULL)
		return;
	job->id = ji->id;
	job_fsm_init(&job->fsm);
	job->fsm.state = JOB_DONE;
	LIST_INIT(&job->watches);
	outq_init(&job->inq);
	job->in_fd = -1;
	loop_timer_init(&job->lost_timer, lost_timeout);
	job->name = ji->name ? strdup(ji->name) : NULL;
	job->cwd = strndup(ji->cwd.ptr, ji->cwd.len);
	if (copy_argv(job, &s) < 0 || job->cwd == NULL) {
		job_free(job);
		return;
	}
	job->pid = (pid_t)ji->pid;
	job->containment = ji->containment && strcmp(ji->containment, "cgroup") == 0 ? CONTAIN_CGROUP
											  : CONTAIN_PGROUP;
	job->cgroup = ji->cgroup ? strdup(ji->cgroup) : NULL;
	job->has_exit = ji->has_exit;
	job->exit_code = (int)ji->exit_code;
	job->signal = (int)ji->signal;
	job->core = ji->core_dumped;
	job->error = (int)ji->error;
	job->error_stage = intern_stage(ji->error_stage);
	job->leftovers = ji->leftovers;
	job->submitted_at = ji->submitted_at;
	job->started_at = ji->started_at;
	job->ended_at = ji->ended_at;
	job->user_us = ji->user_cpu_ms * 1000;
	job->sys_us = ji->sys_cpu_ms * 1000;
	job->maxrss_kb = ji->max_rss_kb;
	job->bytes_relayed = ji->log_bytes;
	job->log_dropped = ji->log_dropped;
	if (ji->state != NULL && strcmp(ji->state, "done") == 0 && ji->reason != NULL)
		job->reason = job_reason_intern(ji->reason, strlen(ji->reason));
	else {
		/* it was running when the previous heidid died: its tree was swept */
		job->reason = "daemon_lost";
		job->ended_at = mtime_ms > job->started_at ? mtime_ms : time_real_ms();
		job_store_now(job);
	}
	if (RB_INSERT(job_tree, &D->jobs, job) != NULL) {
		job_free(job);
		return;
	}
	D->n_jobs++;
	if (job->id >= D->next_id)
		D->next_id = job->id + 1;
}

int
jobs_load(void)
{
	struct job *job;
	int n = store_load(load_record, NULL);

	/* the done list is oldest first: ids give that order */
	RB_FOREACH(job, job_tree, &D->jobs) {
		TAILQ_INSERT_TAIL(&D->done_jobs, job, done_entry);
		D->n_done++;
	}
	jobs_evict();
	return n;
}

/* ---- submission ---- */

static int
check_cwd(const struct proto_bytes *cwd, struct proto_error *err)
{
	char path[PROTO_PATH_MAX + 1];
	struct stat st;

	memcpy(path, cwd->ptr, cwd->len);
	path[cwd->len] = '\0';
	if (stat(path, &st) < 0)
		return proto_error_set(err, "bad_cwd", "cannot use working directory %s: %s", path,
		    strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return proto_error_set(err, "bad_cwd", "cannot use working directory %s: %s", path,
		    strerror(ENOTDIR));
	if (access(path, X_OK) < 0)
		return proto_error_set(err, "bad_cwd", "cannot use working directory %s: %s", path,
		    strerror(errno));
	return 0;
}

static bool
name_in_use(const struct proto_bytes *name)
{
	struct job *job;

	RB_FOREACH(job, job_tree, &D->jobs)
		if (job->fsm.state != JOB_DONE && job->name != NULL &&
		    strlen(job->name) == name->len && memcmp(job->name, name->ptr, name->len) == 0)
			return true;
	return false;
}

/* Keep argv for display: one blob, one array of views into it. */
static int
copy_argv(struct job *job, const struct msg_spawn *s)
{
	size_t total = 0;
	char *p;

	for (size_t i = 0; i < s->n_argv; i++)
		total += s->argv[i].len + 1;
	job->argv_blob = malloc(total ? total : 1);
	job->argv = calloc(s->n_argv, sizeof(*job->argv));
	if (job->argv_blob == NULL || job->argv == NULL)
		return -ENOMEM;
	p = job->argv_blob;
	for (size_t i = 0; i < s->n_argv; i++) {
		memcpy(p, s->argv[i].ptr, s->argv[i].len);
		p[s->argv[i].len] = '\0';
		job->argv[i].ptr = p;
		job->argv[i].len = s->argv[i].len;
		p += s->argv[i].len + 1;
	}
	job->n_argv = s->n_argv;
	return 0;
}

/*
 * Pack the shepherd's spec now; the env is not kept beyond it.  The job's
 * environment is the client's without any HEIDI_JOB_ID, and the job's own
 * marker last.
 */
static int
build_spec(struct job *job, const struct msg_spawn *s)
{
	char marker[SHEP_MARKER_MAX];
	struct proto_bytes *env = calloc(s->n_env + 1, sizeof(*env));
	size_t n_env = 0;
	struct shep_spec sp = {
		.job_id = job->id,
		.argv = s->argv,
		.n_argv = s->n_argv,
		.env = env,
		.cwd = s->cwd,
		.grace_ms = job->grace_ms,
		.timeout_ms = s->timeout_ms,
		.has_nice = s->has_nice,
		.nice = s->nice,
		.stdin_pipe = s->stdin_pipe,
		.mem_bytes = s->mem_bytes,
		.pids_max = s->pids_max,
		.cpu_millicores = s->cpu_millicores,
	};
	char abs[PATH_MAX], rel[PATH_MAX];
	struct pack_buf b;

	if (env == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_env; i++)
		if (s->env[i].len < 13 || memcmp(s->env[i].ptr, "HEIDI_JOB_ID=", 13) != 0)
			env[n_env++] = s->env[i];
	containment_marker(&D->cont, job->id, marker, sizeof(marker));
	env[n_env++] = (struct proto_bytes){ marker, strlen(marker) };
	sp.n_env = n_env;
	if (job->containment == CONTAIN_CGROUP) {
		containment_leaf(&D->cont, job->id, abs, sizeof(abs), rel, sizeof(rel));
		sp.cgroup.ptr = abs;
		sp.cgroup.len = strlen(abs);
		sp.cgroup_rel.ptr = rel;
		sp.cgroup_rel.len = strlen(rel);
	}
	pack_buf_init(&b);
	shep_encode_spec(&b, &sp);
	job->spec = pack_buf_steal(&b, &job->spec_len);
	pack_buf_deinit(&b);
	free(env);
	return job->spec != NULL ? 0 : -ENOMEM;
}

int
jobs_submit(const struct msg_spawn *s, struct job **jobp, struct proto_error *err)
{
	struct job *job;

	if (D->shutting_down)
		return proto_error_set(err, "shutting_down", "heidid is shutting down");
	if (containment_check(&D->cont, s, err) < 0)
		return -EINVAL;
	if (s->linger_ms > 0)
		return proto_error_set(err, "not_supported", "--linger is not supported yet");
	if (s->name.len > 0 && name_in_use(&s->name))
		return proto_error_set(err, "name_taken", "a job named \"%.*s\" is already queued or running",
		    (int)s->name.len, s->name.ptr);
	if (check_cwd(&s->cwd, err) < 0)
		return -EINVAL;
	job = calloc(1, sizeof(*job));
	if (job == NULL)
		return proto_error_set(err, "no_memory", "out of memory");
	job->id = D->next_id;
	job_fsm_init(&job->fsm);
	LIST_INIT(&job->watches);
	outq_init(&job->inq);
	job->in_fd = -1;
	job->out.src.fd = job->err.src.fd = -1;
	job->out.tee.fd = job->err.tee.fd = -1;
	loop_timer_init(&job->lost_timer, lost_timeout);
	job->grace_ms = s->has_grace ? s->grace_ms : D->cfg.default_grace_ms;
	job->timeout_ms = s->timeout_ms;
	job->stdin_pipe = s->stdin_pipe;
	job->detached = s->detach;
	job->containment = s->containment != CONTAIN_AUTO ? s->containment
			   : D->cont.enabled ? CONTAIN_CGROUP
					     : CONTAIN_PGROUP;
	job->cwd = strndup(s->cwd.ptr, s->cwd.len);
	if (s->name.len > 0)
		job->name = strndup(s->name.ptr, s->name.len);
	if (job->cwd == NULL || (s->name.len > 0 && job->name == NULL) || copy_argv(job, s) < 0 ||
	    build_spec(job, s) < 0) {
		job_free(job);
		return proto_error_set(err, "no_memory", "out of memory");
	}
	if (sched_submit(&D->sched, &job->sched) != 0) {
		D->stats.refused_full++;
		job_free(job);
		return proto_error_set(err, "queue_full",
		    "the queue is full (%zu running, %zu waiting; see heidid --max-running and --queue-cap)",
		    D->sched.n_running, D->sched.n_queued);
	}
	D->next_id++;
	job->submitted_at = time_real_ms();
	job->submit_ns = time_now_ns();
	RB_INSERT(job_tree, &D->jobs, job);
	D->n_jobs++;
	D->stats.submitted++;
	*jobp = job;
	return 0;
}

/* ---- shepherds ---- */

static void shepherd_io(struct loop_source *src, uint32_t revents);

static struct shepherd *
shepherd_find_pid(pid_t pid)
{
	struct shepherd *sh;

	LIST_FOREACH(sh, &D->shepherds, entry)
		if (sh->pid == pid)
			return sh;
	return NULL;
}

static void
shepherd_maybe_free(struct shepherd *sh)
{
	if (!sh->reaped || sh->chan >= 0 || sh->job != NULL || sh->in_io)
		return;
	LIST_REMOVE(sh, entry);
	free(sh);
}

static void
pool_remove(struct shepherd *sh)
{
	if (!sh->pooled)
		return;
	LIST_REMOVE(sh, pool_entry);
	sh->pooled = false;
	D->n_pool--;
}

static void
shepherd_close_channel(struct shepherd *sh)
{
	pool_remove(sh);
	loop_remove(D->loop, &sh->src);
	sh->chan = fd_close(sh->chan);
}

/* exec a shepherd with its channel at fd 3.  0 or -errno. */
static int
shepherd_spawn(struct shepherd **shp)
{
	struct shepherd *sh;
	int sv[2], r;
	char *argv[] = { (char *)"heidi-shepherd", NULL };
	struct spawn_fd fds[4];
	struct spawn_opts opts = { .fds = fds, .n_fds = 4 };

	if (devnull_fd < 0) {
		devnull_fd = fd_open_devnull(O_RDWR);
		if (devnull_fd < 0)
			return devnull_fd;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	fds[0] = (struct spawn_fd){ devnull_fd, 0 };
	fds[1] = (struct spawn_fd){ devnull_fd, 1 };
	fds[2] = (struct spawn_fd){ log_get_fd(), 2 };
	fds[3] = (struct spawn_fd){ sv[1], 3 };
	sh = calloc(1, sizeof(*sh));
	if (sh == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	r = spawn_program(&sh->pid, D->cfg.shepherd_path, argv, environ, &opts);
	if (r < 0)
		goto fail;
	close(sv[1]);
	sh->chan = sv[0];
	fd_set_nonblock(sh->chan, true);
	r = loop_add(D->loop, &sh->src, sh->chan, EPOLLIN, shepherd_io);
	LIST_INSERT_HEAD(&D->shepherds, sh, entry);
	if (r < 0) {
		/* it will see the hangup and exit; we reap it later */
		sh->chan = fd_close(sh->chan);
		return r;
	}
	*shp = sh;
	return 0;
fail:
	free(sh);
	close(sv[0]);
	close(sv[1]);
	return r;
}

static int
shepherd_send(struct shepherd *sh, struct pack_buf *b)
{
	return sock_send_fds_consume(sh->chan, b->sbuf.data, b->sbuf.size, NULL, 0);
}

static int
shepherd_send_spec(struct shepherd *sh, struct job *job)
{
	return shep_spec_send(sh->chan, job->spec, job->spec_len);
}

static void
job_start_failed(struct job *job, int error, const char *stage)
{
	job->reason = "spawn_failed";
	job->error = error;
	job->error_stage = stage;
	log_msg_rl(&job_rl, LOG_LVL_WARN, "job %llu: cannot start (%s): %s",
	    (unsigned long long)job->id, stage, strerror(error));
	job_event(job, JEV_EXIT_REPORT);
}

/* ---- the relay ---- */

/*
 * Large pipes let a job stream without a context switch per 64 KiB (1 GiB
 * of output: 0.73 s instead of 1.06 s, docs/performance.md).  The kernel
 * counts a pipe's size against its user whether filled or not, and past
 * fs.pipe-user-pages-soft gives that user's new pipes one page: heidi's
 * large pipes stay within a budget (a quarter of that limit, at most 256
 * MiB); jobs beyond it get the kernel's default size.
 */
static uint32_t
pipe_size_for(struct job *job)
{
	uint64_t want;

	if (!D->cfg.pipe_size_auto)
		job->pipe_size = (uint32_t)D->cfg.pipe_size;
	else {
		/* the job's stdout and stderr, and the spawner's two pipes */
		want = (control_job_wants_pipes(job) ? 4 : 2) * (uint64_t)D->pipe_big;
		job->pipe_size = 0;
		if (D->pipe_big > 0 && D->pipe_reserved + want <= D->pipe_budget) {
			job->pipe_size = D->pipe_big;
			job->pipe_bytes = want;
			D->pipe_reserved += want;
		}
	}
	return job->pipe_size;
}

/* The log appears with the first output: a silent job costs no files. */
static void
job_log_open(struct job *job)
{
	char dir[4200];
	int r;

	store_job_dir(job->id, dir, sizeof(dir));
	r = joblog_create(&job->log, dir, D->cfg.log_max);
	if (r < 0) {
		job->log_failed = true;
		log_msg_rl(&job_rl, LOG_LVL_WARN,
		    "job %llu: no log (%s: %s); its output is relayed but not kept",
		    (unsigned long long)job->id, dir, strerror(-r));
	}
}

static void
pipe_io(struct loop_source *src, uint32_t revents)
{
	struct job_pipe *p = container_of(src, struct job_pipe, src);

	pipe_drain(p);
}

/* Count len bytes of output as relayed; the log exists from the first one. */
static void
relay_count(struct job *job, size_t len)
{
	job->bytes_relayed += len;
	D->stats.bytes_relayed += len;
	if (job->log == NULL && !job->log_failed)
		job_log_open(job);
}

/*
 * Take len bytes that wait in the pipe with read(2): into the log, or
 * dropped.  (splice(2) into the log would save a copy but holds the pipe
 * locked while it writes the file: the job waits, and a stream ran 40%
 * slower that way -- docs/performance.md.)
 */
static void
take_by_read(struct job_pipe *p, size_t len)
{
	struct job *job = p->job;

	while (len > 0) {
		ssize_t n = read(p->src.fd, relay_buf, MIN(len, sizeof(relay_buf)));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		if (job->log != NULL)
			joblog_append(job->log, p->stream, relay_buf, (size_t)n);
		else
			job->log_dropped += (uint64_t)n;
		len -= (size_t)n;
	}
}

static bool
pipe_has_data(int fd)
{
	int avail = 0;

	return ioctl(fd, FIONREAD, &avail) == 0 && avail > 0;
}

/*
 * One chunk from the job's pipe: bytes moved, 0 at the end of the output,
 * -EAGAIN when nothing can move now (empty, or the spawner's pipe is full:
 * then tee_full is set), other -errno on an error.
 *
 *  - a spawner with pipes: tee(2) duplicates the bytes into its pipe (no
 *    copy), then read(2) takes them for the log;
 *  - else read(2), append to the log, send "output" events (if the
 *    spawner takes them).
 */
static ssize_t
pipe_move(struct job_pipe *p)
{
	struct job *job = p->job;
	ssize_t n;

	if (job->tee_pending && pipe_has_data(p->src.fd)) {
		/* the first output: the spawner's pipes now (a silent job needs none) */
		job->tee_pending = false;
		tee_open(job);
	}
	if (p->tee.fd >= 0) {
		n = tee(p->src.fd, p->tee.fd, RELAY_CHUNK, SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EAGAIN && pipe_has_data(p->src.fd)) {
			p->tee_full = true;
			loop_modify(D->loop, &p->tee, EPOLLOUT);
			return -EAGAIN;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			/* the spawner closed this pipe (EPIPE): the log still takes the output */
			tee_close_one(p);
			return -EINTR;
		}
		if (n <= 0)
			return n < 0 ? -errno : 0;
		relay_count(job, (size_t)n);
		take_by_read(p, (size_t)n);
		if (job->log != NULL)
			control_job_appended(job);
		return n;
	}
	n = read(p->src.fd, relay_buf, sizeof(relay_buf));
	if (n <= 0)
		return n < 0 ? -errno : 0;
	relay_count(job, (size_t)n);
	if (job->log != NULL) {
		joblog_append(job->log, p->stream, relay_buf, (size_t)n);
		control_job_appended(job);
	} else
		job->log_dropped += (uint64_t)n;
	control_job_output(job, p->stream, relay_buf, (size_t)n);
	return n;
}

/*
 * Relay from one pipe: once (fairness between jobs) while the job runs,
 * until EAGAIN once its tree is gone -- then every writer has exited and
 * an empty pipe is the end of the output.
 */
static void
pipe_drain(struct job_pipe *p)
{
	struct job *job = p->job;

	while (p->open && !job->relay_paused && !p->tee_full) {
		ssize_t n = pipe_move(p);

		if (n > 0) {
			if (!job->fsm.exit_reported)
				return;
			continue;
		}
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN && (p->tee_full || !job->fsm.exit_reported))
			break;
		pipe_close(p); /* EOF, EAGAIN after the end, or an error */
	}
	if ((job->relay_paused || p->tee_full) && p->open)
		loop_modify(D->loop, &p->src, 0);
}

/* The spawner read from its full pipe: relay again. */
static void
tee_io(struct loop_source *src, uint32_t revents)
{
	struct job_pipe *p = container_of(src, struct job_pipe, tee);

	(void)revents;
	p->tee_full = false;
	loop_modify(D->loop, &p->tee, 0);
	if (p->open) {
		loop_modify(D->loop, &p->src, p->job->relay_paused ? 0 : EPOLLIN);
		pipe_drain(p);
	}
}

static void
tee_close_one(struct job_pipe *p)
{
	bool was_full = p->tee_full;
	int fd = p->tee.fd;

	if (fd < 0)
		return;
	loop_remove(D->loop, &p->tee); /* (sets tee.fd to -1) */
	close(fd);
	p->tee_full = false;
	if (was_full && p->open)
		loop_modify(D->loop, &p->src, p->job->relay_paused ? 0 : EPOLLIN);
}

void
jobs_tee_close(struct job *job)
{
	tee_close_one(&job->out);
	tee_close_one(&job->err);
}

/*
 * A spawner that asked for pipes gets one per stream; heidid keeps the
 * write ends and tees the job's output into them.  Without them (no fds
 * left, ...) the output goes as "output" events.
 */
static void
tee_open(struct job *job)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, rd[2];

	if (!control_job_wants_pipes(job))
		return;
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		log_msg_rl(&job_rl, LOG_LVL_WARN, "job %llu: no pipes for its spawner (%s); output goes as events",
		    (unsigned long long)job->id, strerror(errno));
		for (int i = 0; i < 2; i++) {
			fd_close(po[i]);
			fd_close(pe[i]);
		}
		return;
	}
	if (job->pipe_size > 0) {
		fcntl(po[1], F_SETPIPE_SZ, (int)job->pipe_size);
		fcntl(pe[1], F_SETPIPE_SZ, (int)job->pipe_size);
	}
	fd_set_nonblock(po[1], true);
	fd_set_nonblock(pe[1], true);
	rd[0] = po[0];
	rd[1] = pe[0];
	if (control_job_send_pipes(job, rd) < 0) {
		close(po[1]);
		close(pe[1]);
		return;
	}
	loop_add(D->loop, &job->out.tee, po[1], 0, tee_io);
	loop_add(D->loop, &job->err.tee, pe[1], 0, tee_io);
	/* a stream its reader closed before the start ends at once */
	if (!job->out.open)
		tee_close_one(&job->out);
	if (!job->err.open)
		tee_close_one(&job->err);
}

static void
pipe_close(struct job_pipe *p)
{
	struct job *job = p->job;
	int fd = p->src.fd;

	if (!p->open)
		return;
	loop_remove(D->loop, &p->src);
	close(fd);
	p->open = false;
	tee_close_one(p); /* the spawner sees the end of this stream */
	if (!job->out.open && !job->err.open)
		job_event(job, JEV_OUTPUT_DRAINED);
}

void
jobs_resume_relay(struct job *job)
{
	struct job_pipe *pipes[2] = { &job->out, &job->err };

	if (!job->relay_paused)
		return;
	job->relay_paused = false;
	for (int i = 0; i < 2; i++) {
		if (!pipes[i]->open)
			continue;
		loop_modify(D->loop, &pipes[i]->src, EPOLLIN);
		if (job->fsm.exit_reported || job->fsm.shepherd_lost)
			pipe_drain(pipes[i]);
	}
}

void
jobs_output_closed(struct job *job, enum out_stream s)
{
	/* The reader went away: closing our end makes the job's next write
	 * fail with EPIPE/SIGPIPE, as in a shell pipeline.  Before the pipes
	 * exist, remember it. */
	if (job->fsm.state == JOB_QUEUED || job->fsm.state == JOB_STARTING)
		job->closed_early |= 1u << s;
	else
		pipe_close(s == STREAM_STDERR ? &job->err : &job->out);
}

/* ---- stdin ---- */

/* Close the job's stdin; every input request still queued is answered. */
static void
stdin_close(struct job *job)
{
	struct outq_chunk *ch;

	loop_remove(D->loop, &job->in_src);
	job->in_fd = fd_close(job->in_fd);
	job->in_eof = true;
	while ((ch = TAILQ_FIRST(&job->inq.chunks)) != NULL) {
		if (job->stdin_conn != NULL)
			conn_send_error(job->stdin_conn, ch->tag, "stdin_closed",
			    "job %llu's standard input is closed", (unsigned long long)job->id);
		TAILQ_REMOVE(&job->inq.chunks, ch, entry);
		free(ch);
	}
	job->inq.bytes = 0;
}

/* Answer each input request whose data is now entirely in the pipe. */
static void
stdin_flush(struct job *job)
{
	while (!TAILQ_EMPTY(&job->inq.chunks)) {
		struct outq_chunk *ch = TAILQ_FIRST(&job->inq.chunks);
		ssize_t n;

		if (ch->off < ch->len) {
			n = write(job->in_fd, ch->data + ch->off, ch->len - ch->off);
			if (n < 0 && errno == EAGAIN) {
				loop_modify(D->loop, &job->in_src, EPOLLOUT);
				return;
			}
			if (n < 0) {
				/* the job closed its stdin: every queued request hears it */
				stdin_close(job);
				return;
			}
			ch->off += (size_t)n;
			job->inq.bytes -= (size_t)n;
			if (ch->off < ch->len)
				continue;
		}
		if (job->stdin_conn != NULL)
			conn_send_ok(job->stdin_conn, ch->tag);
		TAILQ_REMOVE(&job->inq.chunks, ch, entry);
		free(ch);
	}
	if (job->in_fd >= 0)
		loop_modify(D->loop, &job->in_src, 0);
	if (job->in_eof)
		stdin_close(job);
}

static void
stdin_io(struct loop_source *src, uint32_t revents)
{
	stdin_flush(container_of(src, struct job, in_src));
}

int
jobs_input(struct job *job, struct conn *c, uint64_t req_id, const void *data, size_t len,
    bool eof, struct proto_error *err)
{
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };

	if (!job->stdin_pipe)
		return proto_error_set(err, "no_stdin", "job %llu was not started with --stdin",
		    (unsigned long long)job->id);
	if (job->fsm.state == JOB_DONE || job->in_eof ||
	    (job->in_fd < 0 && job->fsm.state != JOB_QUEUED && job->fsm.state != JOB_STARTING))
		return proto_error_set(err, "stdin_closed", "job %llu's standard input is closed",
		    (unsigned long long)job->id);
	if (job->inq.bytes + len > STDIN_QUEUE_MAX)
		return proto_error_set(err, "input_overflow",
		    "more than %u bytes of input are waiting: wait for the replies before sending more",
		    STDIN_QUEUE_MAX);
	if (outq_push(&job->inq, &iov, 1, req_id) < 0)
		return proto_error_set(err, "no_memory", "out of memory");
	if (eof)
		job->in_eof = true;
	if (job->in_fd >= 0)
		stdin_flush(job);
	return 0;
}

void
jobs_stdin_conn_gone(struct job *job, struct conn *c)
{
	if (job->stdin_conn != c)
		return;
	job->stdin_conn = NULL;
	/* whoever fed stdin is gone: the job sees end of file */
	job->in_eof = true;
	if (job->in_fd >= 0)
		stdin_flush(job);
}

/* ---- shepherd messages ---- */

static void
job_started(struct job *job, const struct shep_started *st, int *fds, size_t n_fds)
{
	size_t want = job->stdin_pipe ? 3 : 2;

	if (n_fds != want || st->n_fds != want) {
		/* never a half-started job: stop it at once and say why */
		for (size_t i = 0; i < n_fds; i++)
			close(fds[i]);
		job->error = n_fds < want ? EMFILE : EPROTO;
		job->error_stage = "fds";
		job->reason = "spawn_failed";
		log_msg_rl(&job_rl, LOG_LVL_WARN,
		    "job %llu: received %zu of %zu pipe fds from the shepherd (fd limit?); stopping it",
		    (unsigned long long)job->id, n_fds, want);
		jobs_stop(job, 0);
		return;
	}
	job->pid = (pid_t)st->pid;
	job->containment = strncmp(st->containment.ptr, "cgroup", st->containment.len) == 0
			       ? CONTAIN_CGROUP
			       : CONTAIN_PGROUP;
	if (st->cgroup.len > 0)
		job->cgroup = strndup(st->cgroup.ptr, st->cgroup.len);
	job->started_at = time_real_ms();
	job->start_ns = time_now_ns();
	{
		struct stats *s = &D->stats;

		s->lat_ns[s->n_lat++ % ARRAY_SIZE(s->lat_ns)] = job->start_ns - job->submit_ns;
		s->started++;
	}
	job->out = (struct job_pipe){ .job = job, .stream = STREAM_STDOUT, .open = true, .tee.fd = -1 };
	job->err = (struct job_pipe){ .job = job, .stream = STREAM_STDERR, .open = true, .tee.fd = -1 };
	fd_set_nonblock(fds[0], true);
	fd_set_nonblock(fds[1], true);
	loop_add(D->loop, &job->out.src, fds[0], job->relay_paused ? 0 : EPOLLIN, pipe_io);
	loop_add(D->loop, &job->err.src, fds[1], job->relay_paused ? 0 : EPOLLIN, pipe_io);
	if (want == 3) {
		job->in_fd = fds[2];
		fd_set_nonblock(job->in_fd, true);
		/* detached with -i: stdin stays open for a later "attach -i" */
		loop_add(D->loop, &job->in_src, job->in_fd, 0, stdin_io);
		stdin_flush(job);
	}
	job_event(job, JEV_STARTED);
	if (job->closed_early & (1u << STREAM_STDOUT))
		pipe_close(&job->out);
	if (job->closed_early & (1u << STREAM_STDERR))
		pipe_close(&job->err);
	control_job_state(job);
	job->tee_pending = control_job_wants_pipes(job);
	job_store(job);
}

static void
job_exit_report(struct job *job, const struct shep_exit *e)
{
	job->has_exit = e->exited || e->signal > 0;
	job->exit_code = (int)e->code;
	job->signal = (int)e->signal;
	job->core = e->core;
	if (job->reason == NULL)
		job->reason = job_reason_intern(e->reason.ptr, e->reason.len);
	if (job->shutdown_stop && (strcmp(job->reason, "stopped") == 0 ||
				      strcmp(job->reason, "signaled") == 0))
		job->reason = "shutdown";
	if (e->error != 0) {
		job->error = (int)e->error;
		job->error_stage = e->stage.len == 0 ? "exec"
				   : strncmp(e->stage.ptr, "chdir", e->stage.len) == 0 ? "chdir"
				   : strncmp(e->stage.ptr, "cgroup", e->stage.len) == 0 ? "cgroup"
				   : strncmp(e->stage.ptr, "setup", e->stage.len) == 0 ? "setup"
										       : "exec";
	}
	job->user_us = e->utime_us;
	job->sys_us = e->stime_us;
	job->maxrss_kb = e->maxrss_kb;
	job->wall_ms = e->wall_ms;
	job->leftovers = e->leftovers;
	job_event(job, JEV_EXIT_REPORT);
}

static void
shepherd_lost(struct shepherd *sh)
{
	struct job *job = sh->job;

	if (job == NULL)
		return;
	log_msg_rl(&job_rl, LOG_LVL_WARN,
	    "job %llu: its shepherd (pid %d) went away without a report; killing the job's tree",
	    (unsigned long long)job->id, (int)sh->pid);
	job->reason = "shepherd_lost";
	job_event(job, JEV_SHEPHERD_LOST);
}

static void
shepherd_read(struct shepherd *sh)
{
	static char buf[SHEP_PACKET_MAX];

	for (int round = 0; round < 16 && sh->chan >= 0; round++) {
		struct pack_doc doc;
		struct proto_error err;
		struct shep_msg m;
		int fds[SOCK_MAX_FDS];
		size_t n_fds;
		ssize_t n;
		struct job *job = sh->job;

		n = sock_recv_fds(sh->chan, buf, sizeof(buf), fds, 3, &n_fds);
		if (n == -EAGAIN || n == -EINTR)
			return;
		if (n == -ENFILE || n == -EMFILE) {
			/* MSG_CTRUNC: our fd limit ate the pipes */
			if (job != NULL && job->fsm.state == JOB_STARTING) {
				struct shep_started st = { .n_fds = job->stdin_pipe ? 3 : 2 };

				job_started(job, &st, fds, 0);
			}
			continue;
		}
		if (n <= 0) {
			shepherd_close_channel(sh);
			if (job != NULL && !job->fsm.exit_reported) {
				shepherd_lost(sh);
				D->orphan_scan = true;
			}
			if (job != NULL && job->shep == sh) {
				job->shep = NULL;
				sh->job = NULL;
			}
			shepherd_maybe_free(sh);
			return;
		}
		pack_doc_init(&doc);
		if (job == NULL || shep_msg_decode(&doc, buf, (size_t)n, &m, &err) < 0) {
			for (size_t i = 0; i < n_fds; i++)
				close(fds[i]);
			if (job != NULL) {
				log_msg_rl(&job_rl, LOG_LVL_WARN, "job %llu: bad message from its shepherd: %s",
				    (unsigned long long)job->id, err.message);
				jobs_stop(job, 0);
			}
		} else if (m.type == SHEP_STARTED && job->fsm.state == JOB_STARTING) {
			job_started(job, &m.started, fds, n_fds);
		} else if (m.type == SHEP_EXIT && !job->fsm.exit_reported) {
			for (size_t i = 0; i < n_fds; i++)
				close(fds[i]);
			job_exit_report(job, &m.exit);
		} else {
			for (size_t i = 0; i < n_fds; i++)
				close(fds[i]);
			log_msg_rl(&job_rl, LOG_LVL_WARN, "job %llu: unexpected message from its shepherd",
			    (unsigned long long)job->id);
		}
		pack_doc_deinit(&doc);
	}
}

static void
shepherd_io(struct loop_source *src, uint32_t revents)
{
	struct shepherd *sh = container_of(src, struct shepherd, src);

	/*
	 * What it reads can end the job (an exit report, or the end of file of
	 * a shepherd that died without one), and job_finish() frees a shepherd
	 * that was already reaped (its SIGCHLD can be handled first, with
	 * another child's): keep it until shepherd_read() is done with it.
	 */
	sh->in_io = true;
	shepherd_read(sh);
	sh->in_io = false;
	shepherd_maybe_free(sh);
}

/* The shepherd is gone and the pipes did not reach their end in time: give up on them. */
static void
lost_timeout(struct loop_timer *t, uint64_t now)
{
	struct job *job = container_of(t, struct job, lost_timer);

	log_msg_rl(&job_rl, LOG_LVL_WARN, "job %llu: output pipes still open %llus after its shepherd was lost; closing them",
	    (unsigned long long)job->id, (unsigned long long)(LOST_DRAIN_NS / NSEC_PER_SEC));
	if (job->out.open)
		pipe_close(&job->out);
	if (job->err.open)
		pipe_close(&job->err);
}

/* ---- the state machine's actions ---- */

static void job_finish(struct job *job);

static void
job_spawn(struct job *job)
{
	struct shepherd *sh = NULL;
	bool fresh_failed = false;
	int r;

	shep_spec_set_pipe_size(job->spec, job->spec_len, pipe_size_for(job));
	for (;;) {
		bool pooled;

		/* a warm shepherd from the pool takes the spec at once */
		while ((sh = LIST_FIRST(&D->pool)) != NULL && (sh->reaped || sh->chan < 0)) {
			shepherd_close_channel(sh);
			shepherd_maybe_free(sh);
		}
		pooled = sh != NULL;
		if (sh != NULL)
			pool_remove(sh);
		else if ((r = shepherd_spawn(&sh)) < 0) {
			job_start_failed(job, -r, "shepherd");
			return;
		}
		r = shepherd_send_spec(sh, job);
		if (r == 0)
			break;
		shepherd_close_channel(sh);
		shepherd_maybe_free(sh);
		/*
		 * A shepherd that died before it got the spec (an idle one
		 * killed before heidid saw its hangup) had nothing to do with
		 * this job: take another.  The pool is finite; a fresh shepherd
		 * gets one more try.
		 */
		if (r != -EPIPE && r != -ECONNRESET && r != -ECONNREFUSED)
			break;
		if (!pooled) {
			if (fresh_failed)
				break;
			fresh_failed = true;
		}
	}
	if (r < 0) {
		job_start_failed(job, -r, "spec");
		return;
	}
	free(job->spec);
	job->spec = NULL;
	sh->job = job;
	job->shep = sh;
	if (job->fsm.stop_sent) {
		struct pack_buf b;

		pack_buf_init(&b);
		shep_encode_stop(&b, 0);
		shepherd_send(sh, &b);
		pack_buf_deinit(&b);
	}
}

static void
job_event(struct job *job, enum job_event ev)
{
	unsigned act;

	if (job_fsm_apply(&job->fsm, ev, &act) < 0)
		return;
	if (act & JACT_SPAWN)
		job_spawn(job);
	if (act & JACT_SEND_STOP && job->shep != NULL && job->shep->chan >= 0) {
		struct pack_buf b;

		pack_buf_init(&b);
		shep_encode_stop(&b, job->stop_grace_ms);
		shepherd_send(job->shep, &b);
		pack_buf_deinit(&b);
	}
	if (act & JACT_KILL_TREE) {
		containment_kill_job(&D->cont, job->id, job->cgroup);
		loop_timer_arm(D->loop, &job->lost_timer, time_now_ns() + LOST_DRAIN_NS);
		if (!job->relay_paused) {
			if (job->out.open)
				pipe_drain(&job->out);
			if (job->err.open)
				pipe_drain(&job->err);
		}
	}
	if (act & JACT_FINISH)
		job_finish(job);
	/* after the report, the pipes hold the rest of the output: drain them */
	if (ev == JEV_EXIT_REPORT && job->fsm.state != JOB_DONE && !job->relay_paused) {
		if (job->out.open)
			pipe_drain(&job->out);
		if (job->err.open)
			pipe_drain(&job->err);
	}
}

/* The reasons a job can end with (docs/protocol.md); stats count them in this order. */
const char *const job_reasons[] = { "exited", "signaled", "timeout", "stopped", "oom",
	"exec_failed", "spawn_failed", "shepherd_lost", "daemon_lost", "shutdown", "cancelled" };
const size_t n_job_reasons = ARRAY_SIZE(job_reasons);

const char *
job_reason_intern(const char *p, size_t len)
{
	for (size_t i = 0; i < n_job_reasons; i++)
		if (strlen(job_reasons[i]) == len && memcmp(job_reasons[i], p, len) == 0)
			return job_reasons[i];
	return "exited";
}

static void
job_finish(struct job *job)
{
	job->ended_at = time_real_ms();
	loop_timer_disarm(D->loop, &job->lost_timer);
	if (job->out.open)
		pipe_close(&job->out);
	if (job->err.open)
		pipe_close(&job->err);
	stdin_close(job);
	free(job->spec);
	job->spec = NULL;
	if (job->shep != NULL) {
		struct shepherd *sh = job->shep;

		sh->job = NULL;
		job->shep = NULL;
		/* a shepherd that reported normally waits for its next spec: reuse it */
		if (job->fsm.exit_reported && sh->chan >= 0 && !sh->reaped && jobs_pool_keeps()) {
			LIST_INSERT_HEAD(&D->pool, sh, pool_entry);
			sh->pooled = true;
			D->n_pool++;
		} else {
			shepherd_close_channel(sh); /* it exits at the end of file */
			shepherd_maybe_free(sh);
		}
	}
	if (job->fsm.shepherd_lost && job->cgroup != NULL && !containment_remove_leaf(&D->cont, job->cgroup))
		log_msg_rl(&job_rl, LOG_LVL_WARN, "job %llu: cgroup %s is not empty yet; the next start sweeps it",
		    (unsigned long long)job->id, job->cgroup);
	if (job->sched_started)
		sched_done(&D->sched);
	D->pipe_reserved -= job->pipe_bytes;
	job->pipe_bytes = 0;
	D->pool_failed = false;
	server_resume_accept();
	if (job->log != NULL) {
		joblog_finish(job->log);
		job->log_dropped = joblog_dropped(job->log);
		if (job->log->write_error != 0 || job->log->lost > 0)
			log_msg_rl(&job_rl, LOG_LVL_WARN, "job %llu: %llu bytes of output could not be logged (%s)",
			    (unsigned long long)job->id, (unsigned long long)job->log->lost,
			    strerror(job->log->last_error ? job->log->last_error : EIO));
		control_job_log_closing(job); /* followers switch to their own handle */
		job->log = joblog_free(job->log);
	}
	job_store(job);
	D->stats.finished++;
	for (size_t i = 0; i < n_job_reasons; i++)
		if (job->reason == job_reasons[i])
			D->stats.by_reason[i]++;
	control_job_done(job);
	D->idle_now = true;
	TAILQ_INSERT_TAIL(&D->done_jobs, job, done_entry);
	D->n_done++;
	jobs_evict();
	if (D->shutting_down && D->sched.n_running == 0 && D->sched.n_queued == 0)
		D->quit = true;
}

void
jobs_evict(void)
{
	struct job *job;

	while (D->n_done > D->cfg.keep && (job = TAILQ_FIRST(&D->done_jobs)) != NULL) {
		if (!LIST_EMPTY(&job->watches))
			break;
		TAILQ_REMOVE(&D->done_jobs, job, done_entry);
		RB_REMOVE(job_tree, &D->jobs, job);
		D->n_done--;
		D->n_jobs--;
		if (job->store_pending) {
			TAILQ_REMOVE(&D->store_queue, job, store_entry);
			job->store_pending = false;
		}
		remove_later(job->id);
		job_free(job);
	}
}

/* ---- requests on jobs ---- */

bool
jobs_fd_room(void)
{
	uint64_t used = FDS_RESERVED + D->n_conns + D->n_pool +
			(uint64_t)(D->sched.n_running + 1) * FDS_PER_JOB;

	return D->fd_limit == 0 || used <= D->fd_limit;
}

void
jobs_schedule(void)
{
	struct sched_item *it;
	uint64_t wake = 0;

	if (D->shutting_down)
		return;
	/*
	 * Beyond the fd budget, jobs wait in the queue rather than fail
	 * half-started.  But one job may always run: the attached spawners
	 * waiting for queued jobs count against the budget, and with none
	 * running they would hold it forever (a real shortage of fds still
	 * fails that one start cleanly, as spawn_failed).
	 */
	while ((jobs_fd_room() || D->sched.n_running == 0) &&
	    (it = sched_next(&D->sched, time_now_ns(), &wake)) != NULL) {
		struct job *job = container_of(it, struct job, sched);

		job->sched_started = true;
		job_event(job, JEV_START);
	}
	if (wake != 0)
		loop_timer_arm(D->loop, &D->sched_timer, wake);
}

void
jobs_stop(struct job *job, uint64_t grace_ms)
{
	job->stop_grace_ms = grace_ms;
	if (job->fsm.stop_sent && job->shep != NULL && job->shep->chan >= 0) {
		/* a second stop may shorten the grace */
		struct pack_buf b;

		pack_buf_init(&b);
		shep_encode_stop(&b, grace_ms);
		shepherd_send(job->shep, &b);
		pack_buf_deinit(&b);
		return;
	}
	job_event(job, JEV_STOP);
}

int
jobs_signal(struct job *job, int sig, bool group)
{
	struct pack_buf b;
	int r;

	if (!job_state_active(job->fsm.state) || job->shep == NULL || job->shep->chan < 0 ||
	    job->fsm.exit_reported)
		return -ESRCH;
	pack_buf_init(&b);
	shep_encode_signal(&b, sig, group);
	r = shepherd_send(job->shep, &b);
	pack_buf_deinit(&b);
	return r;
}

void
jobs_cancel(struct job *job, const char *reason)
{
	if (job->fsm.state != JOB_QUEUED)
		return;
	sched_cancel(&D->sched, &job->sched);
	job->reason = job_reason_intern(reason, strlen(reason));
	job_event(job, JEV_CANCEL);
}

void
jobs_spawner_gone(struct job *job)
{
	/* a closed terminal before the job ran: it never runs */
	if (job->fsm.state == JOB_QUEUED) {
		jobs_cancel(job, "cancelled");
		return;
	}
	/* like a closed terminal: SIGHUP to the job's process group */
	if (job_state_active(job->fsm.state) && !job->hup_sent && jobs_signal(job, SIGHUP, true) == 0)
		job->hup_sent = true;
	if (job->relay_paused)
		jobs_resume_relay(job);
}

/* ---- the warm pool ---- */

bool
jobs_pool_wants(void)
{
	return D->n_pool < D->cfg.pool_size && !D->pool_failed && !D->shutting_down &&
	       jobs_fd_room();
}

bool
jobs_idle_work_pending(void)
{
	return jobs_pool_wants() || !TAILQ_EMPTY(&D->store_queue) || D->n_remove > 0 ||
	       store_wants_compaction(D->n_jobs);
}

bool
jobs_idle_work_overdue(uint64_t now)
{
	struct job *job = TAILQ_FIRST(&D->store_queue);

	return job != NULL && now - job->store_since >= IDLE_WORK_DEADLINE_NS;
}

/*
 * A shepherd coming back from a job is kept while the pool holds fewer
 * than twice its size: the pool refills at idle time when a job takes a
 * shepherd, so the one returning would otherwise be thrown away and a
 * stream of short jobs would start a new shepherd for each.
 */
bool
jobs_pool_keeps(void)
{
	return D->n_pool < 2 * (uint64_t)D->cfg.pool_size && !D->shutting_down && jobs_fd_room();
}

/* One unit: a pool shepherd first (the next job may need it), then files. */
void
jobs_idle_work(void)
{
	struct job *job = TAILQ_FIRST(&D->store_queue);

	if (job != NULL && jobs_idle_work_overdue(time_now_ns()))
		job_store_take(job);
	else if (jobs_pool_wants())
		jobs_pool_fill();
	else if (job != NULL)
		job_store_take(job);
	else if (store_wants_compaction(D->n_jobs))
		jobs_compact();
	else if (D->n_remove > 0)
		store_remove(D->remove_queue[--D->n_remove]);
}

/* Start one more idle shepherd (call when nothing else is pending: spawning blocks). */
void
jobs_pool_fill(void)
{
	if (jobs_pool_wants()) {
		struct shepherd *sh;
		int r = shepherd_spawn(&sh);

		if (r < 0) {
			log_msg_rl(&job_rl, LOG_LVL_WARN, "cannot start a pool shepherd: %s (retried when a job ends)",
			    strerror(-r));
			D->pool_failed = true;
			return;
		}
		LIST_INSERT_HEAD(&D->pool, sh, pool_entry);
		sh->pooled = true;
		D->n_pool++;
	}
}

void
jobs_pool_drain(void)
{
	struct shepherd *sh;

	/* an idle shepherd exits when its channel closes */
	while ((sh = LIST_FIRST(&D->pool)) != NULL) {
		shepherd_close_channel(sh);
		shepherd_maybe_free(sh);
	}
}

/* ---- children: shepherds and orphans ---- */

static int
kill_orphan(pid_t pid, void *data)
{
	struct proc_stat st;
	pid_t self = getpid();
	int pfd;

	if (proc_stat_read(pid, &st) < 0 || st.ppid != self || shepherd_find_pid(pid) != NULL)
		return 0;
	pfd = pidfd_open_pid(pid);
	if (pfd < 0)
		return 0;
	/* re-check through the pidfd's process: still our child, not a shepherd */
	if (proc_stat_read(pid, &st) == 0 && st.ppid == self) {
		pidfd_signal(pfd, SIGKILL);
		(*(int *)data)++;
	}
	close(pfd);
	return 0;
}

void
jobs_reap(void)
{
	int status, killed = 0;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct shepherd *sh = shepherd_find_pid(pid);

		if (sh == NULL) {
			D->orphan_scan = true; /* an orphan died: its children come to us next */
			continue;
		}
		sh->reaped = true;
		if (sh->job != NULL && !sh->job->fsm.exit_reported)
			D->orphan_scan = true;
		shepherd_maybe_free(sh);
	}
	if (D->orphan_scan) {
		D->orphan_scan = false;
		proc_foreach(kill_orphan, &killed);
		if (killed > 0)
			log_info("killed %d orphaned job processes whose shepherd is gone", killed);
	}
}

/* ---- shutdown ---- */

void
jobs_shutdown_begin(uint64_t grace_ms)
{
	struct job *job, *next;

	if (D->shutting_down)
		return;
	D->shutting_down = true;
	jobs_pool_drain();
	log_info("shutting down: %zu jobs running, %zu queued (grace %llums)", D->sched.n_running,
	    D->sched.n_queued, (unsigned long long)grace_ms);
	server_close_listener();
	for (job = RB_MIN(job_tree, &D->jobs); job != NULL; job = next) {
		next = RB_NEXT(job_tree, &D->jobs, job);
		if (job->fsm.state == JOB_QUEUED)
			jobs_cancel(job, "shutdown");
	}
	if (D->sched.n_running == 0)
		D->quit = true;
	else
		loop_timer_arm(D->loop, &D->shutdown_timer, time_now_ns() + grace_ms * NSEC_PER_MSEC);
}

void
jobs_shutdown_expire(void)
{
	struct job *job;

	RB_FOREACH(job, job_tree, &D->jobs) {
		if (!job_state_active(job->fsm.state) || job->fsm.exit_reported)
			continue;
		job->shutdown_stop = true;
		D->tree_killed_in_shutdown = true;
		log_info("job %llu: still running after the shutdown grace; killing its tree",
		    (unsigned long long)job->id);
		jobs_stop(job, 0);
	}
}
