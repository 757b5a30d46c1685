/*
 * shep.h: heidid <-> heidi-shepherd messages (docs/protocol.md, part 2).
 *
 * SOCK_SEQPACKET, one msgpack map per packet.  fds travel with the
 * message that declares them ("fds": N) and a receiver accepts exactly
 * that many.  A spec too large for one packet is sent in a memfd attached
 * to a "spec" message with "memfd": true.
 */
#ifndef HEIDI_PROTO_SHEP_H
#define HEIDI_PROTO_SHEP_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/pack.h"

#define SHEP_PACKET_MAX 65536  /* inline message size; larger specs go in a memfd */
#define SHEP_SPEC_MAX (8u << 20)
/* heidid appends the job's marker to the client's env: one item, this long at most */
#define SHEP_MARKER_MAX 128

enum shep_type {
	SHEP_UNKNOWN,
	SHEP_SPEC,    /* heidid -> shepherd: the job */
	SHEP_SIGNAL,  /* heidid -> shepherd: signal the group or the tree */
	SHEP_STOP,    /* heidid -> shepherd: TERM, grace, KILL */
	SHEP_STARTED, /* shepherd -> heidid: leader running; pipe fds attached */
	SHEP_EXIT,    /* shepherd -> heidid: the final report */
};

struct shep_spec {
	uint64_t job_id;
	struct proto_bytes *argv;
	size_t n_argv;
	struct proto_bytes *env;
	size_t n_env;
	struct proto_bytes cwd;
	struct proto_bytes cgroup;     /* absolute leaf path to create; len 0: pgroup */
	struct proto_bytes cgroup_rel; /* the leaf relative to the v2 mount */
	uint64_t grace_ms;
	uint64_t timeout_ms;           /* 0: none */
	bool has_nice;
	int64_t nice;
	bool stdin_pipe;
	uint64_t pipe_size;            /* 0: kernel default */
	uint64_t mem_bytes, pids_max, cpu_millicores;
};

struct shep_started {
	int64_t pid;
	int64_t pgid;
	struct proto_bytes containment;
	struct proto_bytes cgroup;
	uint64_t n_fds;
};

struct shep_exit {
	bool exited;           /* the leader exited (code valid) */
	int64_t code;
	int64_t signal;        /* killed by this signal */
	bool core;
	struct proto_bytes reason;
	int64_t error;         /* errno of a failed start */
	struct proto_bytes stage;
	uint64_t utime_us, stime_us, maxrss_kb, wall_ms, leftovers;
};

struct shep_msg {
	enum shep_type type;
	bool memfd;             /* spec: the real spec is in the attached memfd */
	union {
		struct shep_spec spec;
		struct {
			int signal;
			bool group;
		} signal;
		struct {
			uint64_t grace_ms;
		} stop;
		struct shep_started started;
		struct shep_exit exit;
	};
};

int shep_msg_decode(struct pack_doc *doc, const void *buf, size_t len, struct shep_msg *msg,
    struct proto_error *err);

/* Encoders write one bare map (no frame header) into b. */
void shep_encode_spec(struct pack_buf *b, const struct shep_spec *s);
/* Change the pipe size of a spec shep_encode_spec() packed (decided when the job starts). */
void shep_spec_set_pipe_size(char *spec, size_t len, uint32_t size);
void shep_encode_spec_memfd(struct pack_buf *b);
/*
 * Send a spec shep_encode_spec() packed to a shepherd on chan: inline, or
 * in a sealed memfd when it does not fit a packet.  0 or -errno.
 */
int shep_spec_send(int chan, const void *spec, size_t len);
/*
 * Receive heidid's spec on chan: its bytes (read from the memfd when the
 * message says so) in *bufp, malloc'ed for the caller to free, decoded
 * into doc and *m.  1 when a spec came, 0 when heidid hung up, -errno when
 * the receive failed, -EBADMSG (err set) for anything but a good spec.
 */
int shep_spec_recv(int chan, struct pack_doc *doc, struct shep_msg *m, char **bufp,
    struct proto_error *err);
void shep_encode_signal(struct pack_buf *b, int sig, bool group);
void shep_encode_stop(struct pack_buf *b, uint64_t grace_ms);
void shep_encode_started(struct pack_buf *b, const struct shep_started *s);
void shep_encode_exit(struct pack_buf *b, const struct shep_exit *e);

#endif
