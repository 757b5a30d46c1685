/*
 * msg.h: the client <-> heidid messages (docs/protocol.md is the spec).
 *
 * Every message is one msgpack map with a "type" string.  Requests carry
 * an "id" that the reply ("ok" or "error") echoes; events ("output",
 * "exit", "gap", "end") are unsolicited.  The reply to "input" is sent
 * once its data is in the job's stdin pipe: that is the flow control.  All validation of
 * client input happens in msg_request_decode(): heidid only ever sees
 * typed, range-checked values.  Decoded strings point into the frame.
 */
#ifndef HEIDI_PROTO_MSG_H
#define HEIDI_PROTO_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/pack.h"

#define PROTO_VERSION 1

/* Input limits (docs/protocol.md "Limits"). */
#define PROTO_ARGV_MAX 65536           /* items */
#define PROTO_ENV_MAX 65536            /* items */
#define PROTO_ARG_BYTES_MAX (2u << 20) /* argv + env, bytes in all */
#define PROTO_ITEM_MAX (128u << 10)    /* one argv/env item */
#define PROTO_PATH_MAX 4095
#define PROTO_NAME_MAX 64
#define PROTO_WAIT_MAX 1024
#define PROTO_DATA_MAX (1u << 20)      /* one input chunk */
#define PROTO_DURATION_MAX (366ULL * 86400 * 1000) /* ms */
#define PROTO_TAIL_MAX 100000000ULL
#define PROTO_MEM_MIN (1ULL << 20)
#define PROTO_MEM_MAX (1ULL << 50)
#define PROTO_PIDS_MAX 4194304
#define PROTO_CPU_MAX 1048576          /* millicores */
#define PROTO_SIGNAL_MAX 64

enum msg_type {
	MSG_UNKNOWN = 0,
	/* requests */
	MSG_HELLO,
	MSG_SPAWN,
	MSG_PS,
	MSG_STATUS,
	MSG_WAIT,
	MSG_KILL,
	MSG_STOP,
	MSG_LOGS,
	MSG_ATTACH,
	MSG_INPUT,
	MSG_DETACH,
	MSG_OUTPUT_CLOSED,
	MSG_STATS,
	MSG_SHUTDOWN,
	MSG_PING,
	MSG_VERSION,
	/* server -> client */
	MSG_OK,
	MSG_ERROR,
	MSG_OUTPUT,
	MSG_GAP,
	MSG_EXIT,
	MSG_END,
	MSG_STATE,
	MSG_PIPES,
};

const char *msg_type_name(enum msg_type t);

enum job_containment {
	CONTAIN_AUTO = 0,
	CONTAIN_CGROUP,
	CONTAIN_PGROUP,
};
const char *containment_name(enum job_containment c);
int containment_parse(const char *s, enum job_containment *cp);

enum out_stream {
	STREAM_STDOUT = 1,
	STREAM_STDERR = 2,
};
const char *stream_name(enum out_stream s);

/* A job is named by its id or its name. */
struct msg_jobref {
	uint64_t id;          /* 0 if named */
	struct proto_bytes name;
};

struct msg_spawn {
	struct proto_bytes *argv;
	size_t n_argv;
	struct proto_bytes *env;
	size_t n_env;
	struct proto_bytes cwd;
	struct proto_bytes name; /* len 0: none */
	bool detach;
	bool stdin_pipe;
	bool state_events;   /* the attached spawner wants "state" events */
	bool pipes;          /* the attached spawner takes its output through pipes */
	uint64_t timeout_ms; /* 0: none */
	uint64_t grace_ms;   /* 0: default */
	bool has_grace;
	uint64_t mem_bytes;  /* 0: none */
	uint64_t pids_max;
	uint64_t cpu_millicores;
	int64_t nice;
	bool has_nice;
	enum job_containment containment;
	uint64_t linger_ms;
};

struct msg_request {
	enum msg_type type;
	uint64_t id;
	union {
		struct {
			uint64_t version;
			struct proto_bytes client;
		} hello;
		struct msg_spawn spawn;
		struct {
			bool all;
		} ps;
		struct msg_jobref job; /* status, detach */
		struct {
			struct msg_jobref *jobs;
			size_t n_jobs;
		} wait;
		struct {
			struct msg_jobref job;
			int signal;
			bool group; /* the process group only, as a terminal would */
		} kill;
		struct {
			struct msg_jobref job;
			uint64_t grace_ms;
			bool has_grace;
		} stop;
		struct {
			struct msg_jobref job;
			bool follow;
			bool out, err; /* streams wanted */
			uint64_t tail; /* lines; 0 with has_tail: nothing old */
			bool has_tail;
		} logs;
		struct {
			struct msg_jobref job;
			bool stdin_pipe;
			bool state_events;
		} attach;
		struct {
			struct msg_jobref job;
			struct proto_bytes data;
			bool eof;
		} input;
		struct {
			struct msg_jobref job;
			enum out_stream stream;
		} output_closed;
		struct {
			uint64_t grace_ms;
			bool has_grace;
		} shutdown;
	};
};

/* Parse and validate one client request.  0, or -EINVAL with err set. */
int msg_request_decode(struct pack_doc *doc, const void *buf, size_t len,
    struct msg_request *req, struct proto_error *err);

/*
 * The job record: what status, ps, wait and the exit event carry.  Strings
 * are borrowed (encoding) or point into the frame (decoding).
 */
struct job_info {
	uint64_t id;
	const char *name;        /* NULL: none */
	const char *state;
	int64_t pid;             /* 0: none */
	struct proto_bytes *argv;
	size_t n_argv;
	bool argv_truncated;     /* lists (ps, wait) shorten long command lines */
	struct proto_bytes cwd;
	const char *containment; /* NULL until started */
	const char *cgroup;      /* NULL: none */
	bool has_exit;
	int64_t exit_code;       /* valid if has_exit and signal == 0 */
	int64_t signal;          /* 0: not signalled */
	bool core_dumped;
	const char *reason;      /* NULL while running */
	int64_t error;           /* errno for exec_failed/spawn failures, 0 otherwise */
	const char *error_stage; /* "exec", "chdir", ... or NULL */
	uint64_t leftovers;
	int64_t submitted_at;    /* epoch ms */
	int64_t started_at;      /* 0: not started */
	int64_t ended_at;        /* 0: not ended */
	uint64_t duration_ms;
	uint64_t user_cpu_ms;
	uint64_t sys_cpu_ms;
	uint64_t max_rss_kb;
	uint64_t log_bytes;      /* output bytes captured */
	uint64_t log_dropped;    /* bytes dropped from the log (cap or write errors) */
};

/*
 * The exit status a CLI reports for a finished job (design §3): the exit
 * code; 128+N for signal N; 127/126 for a command not found / not
 * executable; 125 when heidi could not run it at all.
 */
int job_info_exit_status(const struct job_info *ji);

/* ---- encoders ------------------------------------------------------------ */
/* Each appends one complete frame (header + map) to b. */

struct pack_frame {
	size_t start;
};
void msg_frame_begin(struct pack_buf *b, struct pack_frame *f);
void msg_frame_end(struct pack_buf *b, struct pack_frame *f);

void msg_pack_job_info(msgpack_packer *pk, const struct job_info *ji);

/* client side */
void msg_encode_hello(struct pack_buf *b, uint64_t id, const char *client);
void msg_encode_spawn(struct pack_buf *b, uint64_t id, const struct msg_spawn *s);
void msg_encode_simple(struct pack_buf *b, enum msg_type type, uint64_t id);
void msg_encode_ps(struct pack_buf *b, uint64_t id, bool all);
void msg_encode_jobref(struct pack_buf *b, enum msg_type type, uint64_t id, const char *job);
void msg_encode_wait(struct pack_buf *b, uint64_t id, char *const *jobs, size_t n);
void msg_encode_kill(struct pack_buf *b, uint64_t id, const char *job, int sig, bool group);
void msg_encode_stop(struct pack_buf *b, uint64_t id, const char *job, bool has_grace, uint64_t grace_ms);
void msg_encode_logs(struct pack_buf *b, uint64_t id, const char *job, bool follow, bool out,
    bool err, bool has_tail, uint64_t tail);
void msg_encode_attach(struct pack_buf *b, uint64_t id, const char *job, bool stdin_pipe);
void msg_encode_input(struct pack_buf *b, uint64_t id, const char *job, const void *data,
    size_t len, bool eof);
void msg_encode_output_closed(struct pack_buf *b, uint64_t id, const char *job, enum out_stream s);
void msg_encode_shutdown(struct pack_buf *b, uint64_t id, bool has_grace, uint64_t grace_ms);

/* server side */
void msg_encode_error(struct pack_buf *b, uint64_t id, const char *code, const char *message);
/* Begin an "ok" reply with n_extra more key/value pairs to follow. */
void msg_encode_ok_begin(struct pack_buf *b, struct pack_frame *f, uint64_t id, uint32_t n_extra);
void msg_encode_exit(struct pack_buf *b, const struct job_info *ji);
void msg_encode_end(struct pack_buf *b, uint64_t job, const char *why);
void msg_encode_gap(struct pack_buf *b, uint64_t job, uint64_t bytes);
/* A job changed state (to the attached spawner and attach): "running" with its pid. */
void msg_encode_state(struct pack_buf *b, uint64_t job, const char *state, int64_t pid);
/* The "pipes" event: two fds (stdout, stderr read ends) travel with it. */
void msg_encode_pipes(struct pack_buf *b, uint64_t job);
/*
 * The header of an output event whose data follows separately: the bytes
 * in hdr[0..return) followed by len bytes of data form one frame.
 */
size_t msg_output_header(uint8_t hdr[64], uint64_t job, enum out_stream s, size_t len);

/* ---- client-side decoding ------------------------------------------------- */

struct msg_event {
	enum msg_type type;
	uint64_t id;          /* ok / error */
	const msgpack_object *map;
	struct proto_bytes code, message; /* error */
	uint64_t job;         /* output, gap, end, exit; or "job" id in an ok */
	enum out_stream stream;
	struct proto_bytes data;
	uint64_t bytes;       /* gap */
	struct proto_bytes why; /* end */
	struct proto_bytes state; /* state */
	int64_t pid;           /* state */
};

/* Decode a server message: type-specific fields are validated. */
int msg_event_decode(struct pack_doc *doc, const void *buf, size_t len, struct msg_event *ev,
    struct proto_error *err);
/* Decode a job record map; strings are copied into doc's zone (NUL-terminated). */
int msg_job_info_decode(struct pack_doc *doc, const msgpack_object *o, struct job_info *ji,
    struct proto_error *err);

#endif
