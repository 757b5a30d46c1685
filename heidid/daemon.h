/*
 * daemon.h: heidid's objects and how they refer to each other.
 *
 * struct daemon (one, global `D`) owns everything: the loop, the listening
 * socket, the connections, the job table, the shepherds and the scheduler.
 *
 * Ownership:
 *  - a job is owned by the job table from submission until it is evicted
 *    (finished jobs are kept up to --keep);
 *  - a shepherd is owned by the daemon's shepherd list from spawn until it
 *    is reaped *and* its channel is closed; a job points at its shepherd
 *    while it runs, and the shepherd back at the job;
 *  - a connection owns its watches; a watch links one connection to one
 *    job (spawner, waiter, stopper, follower) and is on both lists, so
 *    either side can drop it when it goes away.
 */
#ifndef HEIDI_HEIDID_DAEMON_H
#define HEIDI_HEIDID_DAEMON_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/tree.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "common/loop.h"
#include "heidid/containment.h"
#include "heidid/joblog.h"
#include "heidid/jobstate.h"
#include "heidid/sched.h"
#include "proto/frame.h"
#include "proto/msg.h"
#include "proto/pack.h"

#define CONN_OUT_PAUSE (1u << 20)    /* spawner queue above this: pause the job's pipes */
#define CONN_OUT_RESUME (256u << 10) /* ... and resume below this */
#define CONN_OUT_HARD (8u << 20)     /* stop reading requests from a client this far behind */
#define STDIN_QUEUE_MAX (4u << 20)   /* a client ignoring input flow control is cut off */
#define RELAY_CHUNK (256u << 10)     /* one read from a job pipe */
#define FDS_PER_JOB 8                /* channel, stdout, stderr, stdin, log directory, log segment, the spawner's two pipes */
#define FDS_RESERVED 64              /* loop, listener, signals, timers, logs, sweeps */
#define IDLE_WORK_DEADLINE_NS (50 * 1000000ULL) /* records are written within 50 ms */

/* ---- bounded output queue of a connection ---- */

#define OUTQ_FDS 2

struct outq_chunk {
	TAILQ_ENTRY(outq_chunk) entry;
	size_t len, off;
	uint64_t tag; /* input queue: the request id to answer once written */
	int fds[OUTQ_FDS]; /* sent (SCM_RIGHTS) with the chunk's first byte, then closed */
	int n_fds;
	char data[];
};

struct outq {
	TAILQ_HEAD(outq_chunks, outq_chunk) chunks;
	size_t bytes;
};

void outq_init(struct outq *q);
void outq_deinit(struct outq *q);
/* Copy iov into a new chunk.  0 or -ENOMEM. */
int outq_push(struct outq *q, const struct iovec *iov, int n_iov, uint64_t tag);
/* writev as much as possible: 0 (drained or EAGAIN), -errno on a dead fd. */
int outq_flush(struct outq *q, int fd);

/* ---- jobs ---- */

struct job;
struct conn;

enum watch_kind {
	WATCH_SPAWNER, /* attached spawner: live output (lossless), exit */
	WATCH_WAIT,    /* "wait": answered when all its jobs are done */
	WATCH_STOP,    /* "stop": answered when the job is done */
	WATCH_FOLLOW,  /* logs -f / attach: output read from the log */
};

struct waitgroup {
	uint64_t req_id;
	uint64_t *ids;     /* the jobs asked for, in order */
	size_t n_ids;
	size_t n_watches;  /* watches pointing here; freed with the last */
	size_t n_pending;  /* jobs not done yet; the reply goes out at 0 */
};

struct watch {
	LIST_ENTRY(watch) job_entry;
	LIST_ENTRY(watch) conn_entry;
	struct job *job;
	struct conn *conn;
	enum watch_kind kind;
	uint64_t req_id;
	struct waitgroup *group; /* WATCH_WAIT; shared by the group's watches */
	/* WATCH_FOLLOW */
	struct joblog_reader rd;
	struct joblog *own_log;  /* a read-only handle once the job is done; else the job's */
	bool follow;             /* until the job ends (logs -f, attach) */
	bool attach;             /* send "exit" after the output, not "end" */
	bool state_events;       /* WATCH_SPAWNER, attach: the client asked for "state" events */
	bool want_pipes;         /* WATCH_SPAWNER: asked for its output through pipes */
	bool pipes;              /* WATCH_SPAWNER: has them: no "output" events */
};

struct job_pipe {
	struct loop_source src;  /* the job's pipe (read end) */
	struct loop_source tee;  /* the spawner's pipe (write end), fd -1 if none */
	struct job *job;
	enum out_stream stream;
	bool open;
	bool tee_full;           /* the spawner's pipe is full: wait, not reading ours */
};

struct job {
	RB_ENTRY(job) by_id;
	TAILQ_ENTRY(job) done_entry; /* finished jobs, oldest first */
	struct sched_item sched;
	uint64_t id;
	char *name;
	struct job_fsm fsm;

	/* what to run */
	char *spec;       /* packed shepherd spec until sent */
	size_t spec_len;
	struct proto_bytes *argv;
	size_t n_argv;
	char *argv_blob;
	char *cwd;
	uint64_t grace_ms;
	uint64_t timeout_ms;
	bool stdin_pipe;
	bool detached;

	/* running */
	struct shepherd *shep;
	pid_t pid;
	enum job_containment containment;
	char *cgroup;     /* relative to the v2 mount */
	struct job_pipe out, err;
	int in_fd;
	struct loop_source in_src;
	struct outq inq;
	bool in_eof;      /* close stdin once inq is written */
	struct conn *stdin_conn;
	bool relay_paused;
	struct joblog *log;    /* while the job runs */
	uint64_t log_dropped;  /* kept from the log once it is closed */
	bool shutdown_stop;
	bool hup_sent;
	bool sched_started;    /* counted as running by the scheduler */
	bool store_pending;    /* its record is to be written when heidid is idle */
	uint64_t store_since;  /* when it became pending (idle work has a deadline) */
	TAILQ_ENTRY(job) store_entry;
	bool log_failed;       /* the log could not be created: output is relayed, not kept */
	unsigned closed_early; /* output_closed before the pipes existed (1 << stream) */
	uint64_t stop_grace_ms;
	struct loop_timer lost_timer; /* shepherd lost: give up on the pipes after a while */

	/* result */
	bool has_exit;
	int exit_code;
	int signal;
	bool core;
	const char *reason;    /* static: one of job_reason_intern()'s strings */
	int error;
	const char *error_stage;
	uint64_t leftovers;
	uint64_t user_us, sys_us, maxrss_kb, wall_ms;
	int64_t submitted_at, started_at, ended_at;
	uint64_t submit_ns, start_ns;
	uint32_t pipe_size;      /* its pipes' size (0: the kernel's) */
	bool tee_pending;        /* the spawner's pipes come with the first output */
	uint64_t pipe_bytes;     /* its share of D->pipe_reserved */
	uint64_t bytes_relayed;

	LIST_HEAD(, watch) watches;
};

/* ---- shepherds ---- */

struct shepherd {
	LIST_ENTRY(shepherd) entry;
	LIST_ENTRY(shepherd) pool_entry; /* idle, waiting for a spec */
	struct loop_source src;
	int chan;
	pid_t pid;
	bool reaped;
	bool pooled;
	bool in_io; /* shepherd_io() is using it: freed only when that returns */
	struct job *job;
};

/* ---- connections ---- */

struct conn {
	LIST_ENTRY(conn) entry;
	struct loop_source src;
	int fd;
	uid_t uid;
	pid_t pid;
	struct frame_reader rd;
	struct outq out;
	bool hello;
	bool dead;       /* write failed or peer gone: close after this dispatch */
	bool closing;    /* close once the output queue is flushed */
	bool read_paused;
	LIST_HEAD(, watch) watches;
};

/* ---- the daemon ---- */

struct stats {
	uint64_t submitted, started, finished, refused_full;
	uint64_t by_reason[16];
	uint64_t bytes_relayed;
	uint64_t bad_frames;
	uint64_t conns_accepted, conns_rejected;
	uint64_t lat_ns[1024]; /* the most recent spawn latencies (submit -> running) */
	size_t n_lat;
};

RB_HEAD(job_tree, job);

struct config {
	char socket_path[108];
	char lock_path[PATH_MAX];
	char state_dir[PATH_MAX];
	char shepherd_path[PATH_MAX];
	char cgroup_opt[PATH_MAX]; /* "auto", "none" or a path */
	char log_file[PATH_MAX];
	size_t max_running;
	size_t queue_cap;
	uint32_t max_spawn_rate;
	uint64_t log_max;
	size_t keep;
	uint64_t pipe_size;     /* --pipe-size: every job's (0: the kernel's) */
	bool pipe_size_auto;    /* no --pipe-size: large pipes within a budget */
	uint64_t default_grace_ms;
	size_t pool_size;
	int notify_fd;
};

struct daemon {
	struct config cfg;
	struct loop *loop;
	char instance[32];
	int listen_fd;
	struct loop_source listen_src;
	int sig_fd;
	struct loop_source sig_src;
	int lock_fd;
	LIST_HEAD(, conn) conns;
	size_t n_conns;
	LIST_HEAD(, shepherd) shepherds;
	LIST_HEAD(, shepherd) pool;
	TAILQ_HEAD(, job) store_queue;
	uint64_t *remove_queue;     /* ids of evicted jobs whose files go at idle time */
	size_t n_remove, cap_remove;
	size_t n_pool;
	bool pool_failed;      /* stop refilling until a job ends */
	struct job_tree jobs;
	TAILQ_HEAD(, job) done_jobs;
	size_t n_jobs, n_done;
	uint64_t next_id;
	struct sched sched;
	struct loop_timer sched_timer;
	struct containment cont;
	struct stats stats;
	int64_t started_at;
	uint64_t start_ns;
	bool shutting_down;
	bool tree_killed_in_shutdown;
	uint64_t shutdown_grace_ms;
	struct loop_timer shutdown_timer;
	bool quit;
	int exit_status;
	bool orphan_scan;
	uint64_t fd_limit;     /* RLIMIT_NOFILE */
	uint32_t pipe_big;     /* the size of large pipes (pipe_size_for) */
	uint64_t pipe_budget;  /* bytes of large pipes heidid may have */
	uint64_t pipe_reserved;
	bool accept_paused;    /* accept4 hit the fd limit: wait for fds to free up */
	bool idle_now;         /* a job just ended: a good moment for idle work */
};

extern struct daemon *D;

RB_PROTOTYPE(job_tree, job, by_id, job_cmp)

/* jobs.c */
int jobs_submit(const struct msg_spawn *s, struct job **jobp, struct proto_error *err);
struct job *jobs_find(const struct msg_jobref *ref);
void jobs_schedule(void);
void jobs_stop(struct job *job, uint64_t grace_ms);
int jobs_signal(struct job *job, int sig, bool group);
void jobs_cancel(struct job *job, const char *reason);
void jobs_fill_info(const struct job *job, struct job_info *ji);
void jobs_output_closed(struct job *job, enum out_stream s);
int jobs_input(struct job *job, struct conn *c, uint64_t req_id, const void *data, size_t len,
    bool eof, struct proto_error *err);
void jobs_resume_relay(struct job *job);
void jobs_reap(void);
/*
 * Keep --shepherd-pool idle shepherds ready.  posix_spawn blocks heidid
 * until the new shepherd execs, so the pool is refilled one shepherd at a
 * time, only when no event is pending: never on a job's critical path.
 */
bool jobs_pool_wants(void);
bool jobs_pool_keeps(void);
/* The spawner left or detached: close its pipes (it sees their end). */
void jobs_tee_close(struct job *job);
void jobs_pool_fill(void);
/* Work done when no event is pending: refill the pool, write one job record. */
bool jobs_idle_work_pending(void);
/* Some idle work has waited too long to wait for a quiet moment any more. */
bool jobs_idle_work_overdue(uint64_t now_ns);
void jobs_idle_work(void);
/* Write every pending record now (shutdown). */
void jobs_store_flush(void);
void jobs_pool_drain(void);
void jobs_shutdown_begin(uint64_t grace_ms);
void jobs_shutdown_expire(void);
void jobs_evict(void);
void jobs_spawner_gone(struct job *job);
void jobs_stdin_conn_gone(struct job *job, struct conn *c);
int jobs_load(void);
/* The job's log directory exists (it started, or a record was stored). */
bool jobs_has_log(const struct job *job);
const char *job_reason_intern(const char *p, size_t len);
extern const char *const job_reasons[];
extern const size_t n_job_reasons;

/* server.c */
int server_listen(void);
void server_close_listener(void);
/* fds were freed (a connection or a job ended): accept again if paused. */
void server_resume_accept(void);
/* Could one more job start without running out of fds? */
bool jobs_fd_room(void);
void conn_send_iov(struct conn *c, const struct iovec *iov, int n);
void conn_send_buf(struct conn *c, struct pack_buf *b);
/* Send b with fds attached to its first byte; the fds are ours to close either way.  0 or -errno. */
int conn_send_fds(struct conn *c, struct pack_buf *b, int *fds, int n_fds);
void conn_send_error(struct conn *c, uint64_t id, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void conn_send_ok(struct conn *c, uint64_t id);
void conn_flush_all(void);
size_t conn_queued(const struct conn *c);

/* control.c */
void control_dispatch(struct conn *c, const uint8_t *frame, size_t len);
void control_job_done(struct job *job);
void control_job_output(struct job *job, enum out_stream s, const char *data, size_t len);
void control_conn_drained(struct conn *c);
void control_job_appended(struct job *job);
/* The job started running: attached clients get a "state" event. */
void control_job_state(struct job *job);
bool control_job_wants_pipes(struct job *job);
/* Send the spawner that asked for them the read ends fds[0..1] ("pipes"); consumed.  0 or -errno. */
int control_job_send_pipes(struct job *job, int fds[2]);
void control_job_log_closing(struct job *job);
void watch_free(struct watch *w);
struct watch *watch_new(struct conn *c, struct job *job, enum watch_kind kind, uint64_t req_id);

#endif
