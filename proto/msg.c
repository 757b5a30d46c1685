/*
 * msg.c: encoding and validated decoding of client <-> heidid messages.
 *
 * The decoder is the only place where client input is checked: types,
 * ranges, sizes, UTF-8 for text, no NUL in paths/argv/env.  A rejection
 * names the offending field.
 */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "proto/frame.h"
#include "proto/msg.h"

static const struct {
	const char *name;
	enum msg_type type;
} msg_types[] = {
	{ "hello", MSG_HELLO },
	{ "spawn", MSG_SPAWN },
	{ "ps", MSG_PS },
	{ "status", MSG_STATUS },
	{ "wait", MSG_WAIT },
	{ "kill", MSG_KILL },
	{ "stop", MSG_STOP },
	{ "logs", MSG_LOGS },
	{ "attach", MSG_ATTACH },
	{ "input", MSG_INPUT },
	{ "detach", MSG_DETACH },
	{ "output_closed", MSG_OUTPUT_CLOSED },
	{ "stats", MSG_STATS },
	{ "shutdown", MSG_SHUTDOWN },
	{ "ping", MSG_PING },
	{ "version", MSG_VERSION },
	{ "ok", MSG_OK },
	{ "error", MSG_ERROR },
	{ "output", MSG_OUTPUT },
	{ "gap", MSG_GAP },
	{ "exit", MSG_EXIT },
	{ "end", MSG_END },
	{ "state", MSG_STATE },
	{ "pipes", MSG_PIPES },
};

const char *
msg_type_name(enum msg_type t)
{
	for (size_t i = 0; i < ARRAY_SIZE(msg_types); i++)
		if (msg_types[i].type == t)
			return msg_types[i].name;
	return "unknown";
}

static enum msg_type
msg_type_lookup(const struct proto_bytes *b)
{
	for (size_t i = 0; i < ARRAY_SIZE(msg_types); i++)
		if (strlen(msg_types[i].name) == b->len &&
		    memcmp(msg_types[i].name, b->ptr, b->len) == 0)
			return msg_types[i].type;
	return MSG_UNKNOWN;
}

static const char *const containment_names[] = {
	[CONTAIN_AUTO] = "auto",
	[CONTAIN_CGROUP] = "cgroup",
	[CONTAIN_PGROUP] = "pgroup",
};

const char *
containment_name(enum job_containment c)
{
	return (unsigned)c < ARRAY_SIZE(containment_names) ? containment_names[c] : "auto";
}

int
containment_parse(const char *s, enum job_containment *cp)
{
	for (size_t i = 0; i < ARRAY_SIZE(containment_names); i++)
		if (strcmp(s, containment_names[i]) == 0) {
			*cp = (enum job_containment)i;
			return 0;
		}
	return -EINVAL;
}

const char *
stream_name(enum out_stream s)
{
	return s == STREAM_STDERR ? "stderr" : "stdout";
}

int
job_info_exit_status(const struct job_info *ji)
{
	/* heidi could not start it, whatever happened to a half-started leader */
	if (ji->reason != NULL && strcmp(ji->reason, "spawn_failed") == 0)
		return 125;
	if (ji->reason != NULL && strcmp(ji->reason, "exec_failed") == 0) {
		/* like a shell: not found 127, found but not executable 126 */
		if (ji->error_stage == NULL || strcmp(ji->error_stage, "exec") == 0)
			return ji->error == ENOENT || ji->error == ENOTDIR ? 127 : 126;
		return 125; /* chdir and other set-up failures: heidi could not run it */
	}
	if (ji->signal > 0)
		return 128 + (int)ji->signal;
	if (ji->has_exit)
		return (int)ji->exit_code;
	return 125;
}

/* ---- request decoding ------------------------------------------------------ */

static bool
name_valid(const struct proto_bytes *b)
{
	if (b->len == 0 || b->len > PROTO_NAME_MAX)
		return false;
	if (!((b->ptr[0] >= 'a' && b->ptr[0] <= 'z') || (b->ptr[0] >= 'A' && b->ptr[0] <= 'Z') ||
		b->ptr[0] == '_'))
		return false;
	for (size_t i = 0; i < b->len; i++) {
		char c = b->ptr[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static int
decode_jobref_obj(const msgpack_object *o, const char *key, struct msg_jobref *ref,
    struct proto_error *err)
{
	memset(ref, 0, sizeof(*ref));
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 == 0)
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "field \"%s\": job ids start at 1", key);
		ref->id = o->via.u64;
		return 1;
	}
	if (o->type == MSGPACK_OBJECT_STR) {
		ref->name.ptr = o->via.str.ptr;
		ref->name.len = o->via.str.size;
		if (!name_valid(&ref->name))
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "field \"%s\" is not a job id or a valid job name", key);
		return 1;
	}
	return proto_error_set(err, PROTO_E_BAD_REQUEST,
	    "field \"%s\" must be a job id (integer) or name (string)", key);
}

static int
decode_jobref(const msgpack_object *map, const char *key, struct msg_jobref *ref,
    struct proto_error *err)
{
	const msgpack_object *o = pack_map_get(map, key);

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return proto_error_set(err, PROTO_E_BAD_REQUEST, "missing field \"%s\"", key);
	return decode_jobref_obj(o, key, ref, err);
}

#define TRY(expr)                \
	do {                     \
		int r_ = (expr); \
		if (r_ < 0)      \
			return r_; \
	} while (0)

static int
decode_spawn(struct pack_doc *doc, const msgpack_object *m, struct msg_spawn *s,
    struct proto_error *err)
{
	struct proto_bytes c;
	int r;

	TRY(pack_get_str_array(doc, m, "argv", true, PROTO_ARGV_MAX, PROTO_ITEM_MAX,
	    PROTO_ARG_BYTES_MAX, PACK_STR_NONUL, &s->argv, &s->n_argv, err));
	if (s->n_argv == 0 || s->argv[0].len == 0)
		return proto_error_set(err, PROTO_E_BAD_REQUEST, "field \"argv\" must name a command");
	TRY(pack_get_str_array(doc, m, "env", true, PROTO_ENV_MAX, PROTO_ITEM_MAX,
	    PROTO_ARG_BYTES_MAX, PACK_STR_NONUL, &s->env, &s->n_env, err));
	{
		size_t total = 0;

		for (size_t i = 0; i < s->n_argv; i++)
			total += s->argv[i].len + 1;
		for (size_t i = 0; i < s->n_env; i++) {
			const char *eq = memchr(s->env[i].ptr, '=', s->env[i].len);

			if (eq == NULL || eq == s->env[i].ptr)
				return proto_error_set(err, PROTO_E_BAD_REQUEST,
				    "field \"env[%zu]\" must have the form NAME=VALUE", i);
			total += s->env[i].len + 1;
		}
		if (total > PROTO_ARG_BYTES_MAX)
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "argv and env are too large (%zu bytes, at most %u)", total,
			    PROTO_ARG_BYTES_MAX);
	}
	TRY(pack_get_str(m, "cwd", true, PROTO_PATH_MAX, PACK_STR_NONUL | PACK_STR_NONEMPTY,
	    &s->cwd, err));
	if (s->cwd.ptr[0] != '/')
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "field \"cwd\" must be an absolute path");
	r = pack_get_str(m, "name", false, PROTO_NAME_MAX, PACK_STR_UTF8, &s->name, err);
	if (r < 0)
		return r;
	if (r > 0 && !name_valid(&s->name))
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "field \"name\" must be 1-%d characters of [A-Za-z0-9._-] starting with a letter or '_'",
		    PROTO_NAME_MAX);
	TRY(pack_get_bool(m, "detach", false, &s->detach, err));
	TRY(pack_get_bool(m, "stdin", false, &s->stdin_pipe, err));
	TRY(pack_get_bool(m, "state", false, &s->state_events, err));
	TRY(pack_get_bool(m, "pipes", false, &s->pipes, err));
	TRY(pack_get_uint(m, "timeout_ms", false, 1, PROTO_DURATION_MAX, &s->timeout_ms, err));
	r = pack_get_uint(m, "grace_ms", false, 0, PROTO_DURATION_MAX, &s->grace_ms, err);
	if (r < 0)
		return r;
	s->has_grace = r > 0;
	TRY(pack_get_uint(m, "mem_bytes", false, PROTO_MEM_MIN, PROTO_MEM_MAX, &s->mem_bytes, err));
	TRY(pack_get_uint(m, "pids_max", false, 1, PROTO_PIDS_MAX, &s->pids_max, err));
	TRY(pack_get_uint(m, "cpu_millicores", false, 1, PROTO_CPU_MAX, &s->cpu_millicores, err));
	r = pack_get_int(m, "nice", false, -20, 19, &s->nice, err);
	if (r < 0)
		return r;
	s->has_nice = r > 0;
	r = pack_get_str(m, "containment", false, 16, PACK_STR_UTF8, &c, err);
	if (r < 0)
		return r;
	if (r > 0) {
		char buf[17];

		memcpy(buf, c.ptr, c.len);
		buf[c.len] = '\0';
		if (containment_parse(buf, &s->containment) < 0)
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "field \"containment\" must be \"auto\", \"cgroup\" or \"pgroup\"");
	}
	TRY(pack_get_uint(m, "linger_ms", false, 1, PROTO_DURATION_MAX, &s->linger_ms, err));
	return 0;
}

static int
decode_stream_flags(const msgpack_object *m, bool *out, bool *errp, struct proto_error *err)
{
	*out = *errp = true;
	TRY(pack_get_bool(m, "stdout", false, out, err));
	TRY(pack_get_bool(m, "stderr", false, errp, err));
	if (!*out && !*errp)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "fields \"stdout\" and \"stderr\" are both false: nothing to show");
	return 0;
}

int
msg_request_decode(struct pack_doc *doc, const void *buf, size_t len, struct msg_request *req,
    struct proto_error *err)
{
	const msgpack_object *m;
	struct proto_bytes t;
	int r;

	memset(req, 0, sizeof(*req));
	if (pack_doc_parse(doc, buf, len, err) < 0)
		return -EINVAL; /* err says bad_frame or bad_request */
	m = doc->root;
	/* The id first, so that any later error can be answered to it. */
	TRY(pack_get_uint(m, "id", true, 0, UINT64_MAX, &req->id, err));
	TRY(pack_get_str(m, "type", true, 32, PACK_STR_UTF8, &t, err));
	req->type = msg_type_lookup(&t);
	switch (req->type) {
	case MSG_HELLO:
		TRY(pack_get_uint(m, "version", true, 0, UINT32_MAX, &req->hello.version, err));
		TRY(pack_get_str(m, "client", false, 128, PACK_STR_UTF8, &req->hello.client, err));
		return 0;
	case MSG_SPAWN:
		return decode_spawn(doc, m, &req->spawn, err);
	case MSG_PS:
		TRY(pack_get_bool(m, "all", false, &req->ps.all, err));
		return 0;
	case MSG_STATUS:
	case MSG_DETACH:
		TRY(decode_jobref(m, "job", &req->job, err));
		return 0;
	case MSG_WAIT: {
		const msgpack_object *a = pack_map_get(m, "jobs");

		if (a == NULL || a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size == 0)
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "field \"jobs\" must be a non-empty array");
		if (a->via.array.size > PROTO_WAIT_MAX)
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "field \"jobs\" has too many items (at most %d)", PROTO_WAIT_MAX);
		req->wait.jobs = pack_doc_alloc(doc, sizeof(*req->wait.jobs) * a->via.array.size);
		if (req->wait.jobs == NULL)
			return proto_error_set(err, "no_memory", "out of memory");
		req->wait.n_jobs = a->via.array.size;
		for (uint32_t i = 0; i < a->via.array.size; i++)
			TRY(decode_jobref_obj(&a->via.array.ptr[i], "jobs[]", &req->wait.jobs[i], err));
		return 0;
	}
	case MSG_KILL: {
		uint64_t sig = 15;

		TRY(decode_jobref(m, "job", &req->kill.job, err));
		TRY(pack_get_uint(m, "signal", false, 1, PROTO_SIGNAL_MAX, &sig, err));
		TRY(pack_get_bool(m, "group", false, &req->kill.group, err));
		req->kill.signal = (int)sig;
		return 0;
	}
	case MSG_STOP:
		TRY(decode_jobref(m, "job", &req->stop.job, err));
		r = pack_get_uint(m, "grace_ms", false, 0, PROTO_DURATION_MAX, &req->stop.grace_ms, err);
		if (r < 0)
			return r;
		req->stop.has_grace = r > 0;
		return 0;
	case MSG_LOGS:
		TRY(decode_jobref(m, "job", &req->logs.job, err));
		TRY(pack_get_bool(m, "follow", false, &req->logs.follow, err));
		TRY(decode_stream_flags(m, &req->logs.out, &req->logs.err, err));
		r = pack_get_uint(m, "tail", false, 0, PROTO_TAIL_MAX, &req->logs.tail, err);
		if (r < 0)
			return r;
		req->logs.has_tail = r > 0;
		return 0;
	case MSG_ATTACH:
		TRY(decode_jobref(m, "job", &req->attach.job, err));
		TRY(pack_get_bool(m, "stdin", false, &req->attach.stdin_pipe, err));
		TRY(pack_get_bool(m, "state", false, &req->attach.state_events, err));
		return 0;
	case MSG_INPUT: {
		const msgpack_object *d;

		TRY(decode_jobref(m, "job", &req->input.job, err));
		TRY(pack_get_bool(m, "eof", false, &req->input.eof, err));
		d = pack_map_get(m, "data");
		if (d != NULL && d->type != MSGPACK_OBJECT_NIL) {
			if (d->type != MSGPACK_OBJECT_BIN)
				return proto_error_set(err, PROTO_E_BAD_REQUEST,
				    "field \"data\" must be binary");
			if (d->via.bin.size > PROTO_DATA_MAX)
				return proto_error_set(err, PROTO_E_BAD_REQUEST,
				    "field \"data\" is too long (%u bytes, at most %u)",
				    d->via.bin.size, PROTO_DATA_MAX);
			req->input.data.ptr = d->via.bin.ptr;
			req->input.data.len = d->via.bin.size;
		}
		return 0;
	}
	case MSG_OUTPUT_CLOSED: {
		struct proto_bytes sname;

		TRY(decode_jobref(m, "job", &req->output_closed.job, err));
		TRY(pack_get_str(m, "stream", true, 16, PACK_STR_UTF8, &sname, err));
		if (sname.len == 6 && memcmp(sname.ptr, "stdout", 6) == 0)
			req->output_closed.stream = STREAM_STDOUT;
		else if (sname.len == 6 && memcmp(sname.ptr, "stderr", 6) == 0)
			req->output_closed.stream = STREAM_STDERR;
		else
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "field \"stream\" must be \"stdout\" or \"stderr\"");
		return 0;
	}
	case MSG_SHUTDOWN:
		r = pack_get_uint(m, "grace_ms", false, 0, PROTO_DURATION_MAX,
		    &req->shutdown.grace_ms, err);
		if (r < 0)
			return r;
		req->shutdown.has_grace = r > 0;
		return 0;
	case MSG_STATS:
	case MSG_PING:
	case MSG_VERSION:
		return 0;
	default:
		return proto_error_set(err, "unknown_type", "unknown request type \"%.*s\"",
		    (int)MIN(t.len, 32), t.ptr);
	}
}

/* ---- encoding ---------------------------------------------------------------- */

void
msg_frame_begin(struct pack_buf *b, struct pack_frame *f)
{
	static const char zero[FRAME_HEADER];

	f->start = b->sbuf.size;
	msgpack_sbuffer_write(&b->sbuf, zero, FRAME_HEADER);
}

void
msg_frame_end(struct pack_buf *b, struct pack_frame *f)
{
	size_t len = b->sbuf.size - f->start - FRAME_HEADER;

	frame_header_put((uint8_t *)b->sbuf.data + f->start, (uint32_t)len);
}

static void
begin(struct pack_buf *b, struct pack_frame *f, const char *type, uint64_t id, uint32_t n)
{
	msg_frame_begin(b, f);
	msgpack_pack_map(&b->pk, n + 2);
	pack_kv_str(&b->pk, "type", type);
	pack_kv_uint(&b->pk, "id", id);
}

static void
pack_jobref(msgpack_packer *pk, const char *key, const char *job)
{
	char *end;
	unsigned long long v;

	pack_key(pk, key);
	v = strtoull(job, &end, 10);
	if (*job >= '0' && *job <= '9' && *end == '\0')
		msgpack_pack_uint64(pk, v);
	else
		pack_cstr(pk, job);
}

void
msg_encode_hello(struct pack_buf *b, uint64_t id, const char *client)
{
	struct pack_frame f;

	begin(b, &f, "hello", id, 2);
	pack_kv_uint(&b->pk, "version", PROTO_VERSION);
	pack_kv_str(&b->pk, "client", client);
	msg_frame_end(b, &f);
}

static void
pack_bytes_array(msgpack_packer *pk, const char *key, const struct proto_bytes *v, size_t n)
{
	pack_key(pk, key);
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++)
		pack_bytes(pk, v[i].ptr, v[i].len);
}

void
msg_encode_spawn(struct pack_buf *b, uint64_t id, const struct msg_spawn *s)
{
	struct pack_frame f;
	uint32_t n = 5;

	n += s->name.len > 0;
	n += s->timeout_ms > 0;
	n += s->has_grace;
	n += s->mem_bytes > 0;
	n += s->pids_max > 0;
	n += s->cpu_millicores > 0;
	n += s->has_nice;
	n += s->containment != CONTAIN_AUTO;
	n += s->linger_ms > 0;
	n += s->state_events;
	n += s->pipes;
	begin(b, &f, "spawn", id, n);
	pack_bytes_array(&b->pk, "argv", s->argv, s->n_argv);
	pack_bytes_array(&b->pk, "env", s->env, s->n_env);
	pack_key(&b->pk, "cwd");
	pack_bytes(&b->pk, s->cwd.ptr, s->cwd.len);
	pack_kv_bool(&b->pk, "detach", s->detach);
	pack_kv_bool(&b->pk, "stdin", s->stdin_pipe);
	if (s->name.len > 0) {
		pack_key(&b->pk, "name");
		pack_bytes(&b->pk, s->name.ptr, s->name.len);
	}
	if (s->timeout_ms > 0)
		pack_kv_uint(&b->pk, "timeout_ms", s->timeout_ms);
	if (s->has_grace)
		pack_kv_uint(&b->pk, "grace_ms", s->grace_ms);
	if (s->mem_bytes > 0)
		pack_kv_uint(&b->pk, "mem_bytes", s->mem_bytes);
	if (s->pids_max > 0)
		pack_kv_uint(&b->pk, "pids_max", s->pids_max);
	if (s->cpu_millicores > 0)
		pack_kv_uint(&b->pk, "cpu_millicores", s->cpu_millicores);
	if (s->has_nice)
		pack_kv_int(&b->pk, "nice", s->nice);
	if (s->containment != CONTAIN_AUTO)
		pack_kv_str(&b->pk, "containment", containment_name(s->containment));
	if (s->linger_ms > 0)
		pack_kv_uint(&b->pk, "linger_ms", s->linger_ms);
	if (s->state_events)
		pack_kv_bool(&b->pk, "state", true);
	if (s->pipes)
		pack_kv_bool(&b->pk, "pipes", true);
	msg_frame_end(b, &f);
}

void
msg_encode_simple(struct pack_buf *b, enum msg_type type, uint64_t id)
{
	struct pack_frame f;

	begin(b, &f, msg_type_name(type), id, 0);
	msg_frame_end(b, &f);
}

void
msg_encode_ps(struct pack_buf *b, uint64_t id, bool all)
{
	struct pack_frame f;

	begin(b, &f, "ps", id, 1);
	pack_kv_bool(&b->pk, "all", all);
	msg_frame_end(b, &f);
}

void
msg_encode_jobref(struct pack_buf *b, enum msg_type type, uint64_t id, const char *job)
{
	struct pack_frame f;

	begin(b, &f, msg_type_name(type), id, 1);
	pack_jobref(&b->pk, "job", job);
	msg_frame_end(b, &f);
}

void
msg_encode_wait(struct pack_buf *b, uint64_t id, char *const *jobs, size_t n)
{
	struct pack_frame f;

	begin(b, &f, "wait", id, 1);
	pack_key(&b->pk, "jobs");
	msgpack_pack_array(&b->pk, n);
	for (size_t i = 0; i < n; i++) {
		char *end;
		unsigned long long v = strtoull(jobs[i], &end, 10);

		if (jobs[i][0] >= '0' && jobs[i][0] <= '9' && *end == '\0')
			msgpack_pack_uint64(&b->pk, v);
		else
			pack_cstr(&b->pk, jobs[i]);
	}
	msg_frame_end(b, &f);
}

void
msg_encode_kill(struct pack_buf *b, uint64_t id, const char *job, int sig, bool group)
{
	struct pack_frame f;

	begin(b, &f, "kill", id, 3);
	pack_jobref(&b->pk, "job", job);
	pack_kv_uint(&b->pk, "signal", (uint64_t)sig);
	pack_kv_bool(&b->pk, "group", group);
	msg_frame_end(b, &f);
}

void
msg_encode_stop(struct pack_buf *b, uint64_t id, const char *job, bool has_grace, uint64_t grace_ms)
{
	struct pack_frame f;

	begin(b, &f, "stop", id, 1 + has_grace);
	pack_jobref(&b->pk, "job", job);
	if (has_grace)
		pack_kv_uint(&b->pk, "grace_ms", grace_ms);
	msg_frame_end(b, &f);
}

void
msg_encode_logs(struct pack_buf *b, uint64_t id, const char *job, bool follow, bool out,
    bool err, bool has_tail, uint64_t tail)
{
	struct pack_frame f;

	begin(b, &f, "logs", id, 4 + has_tail);
	pack_jobref(&b->pk, "job", job);
	pack_kv_bool(&b->pk, "follow", follow);
	pack_kv_bool(&b->pk, "stdout", out);
	pack_kv_bool(&b->pk, "stderr", err);
	if (has_tail)
		pack_kv_uint(&b->pk, "tail", tail);
	msg_frame_end(b, &f);
}

void
msg_encode_attach(struct pack_buf *b, uint64_t id, const char *job, bool stdin_pipe)
{
	struct pack_frame f;

	begin(b, &f, "attach", id, 2);
	pack_jobref(&b->pk, "job", job);
	pack_kv_bool(&b->pk, "stdin", stdin_pipe);
	msg_frame_end(b, &f);
}

void
msg_encode_input(struct pack_buf *b, uint64_t id, const char *job, const void *data, size_t len,
    bool eof)
{
	struct pack_frame f;

	begin(b, &f, "input", id, 3);
	pack_jobref(&b->pk, "job", job);
	pack_key(&b->pk, "data");
	pack_bin(&b->pk, data, len);
	pack_kv_bool(&b->pk, "eof", eof);
	msg_frame_end(b, &f);
}

void
msg_encode_output_closed(struct pack_buf *b, uint64_t id, const char *job, enum out_stream s)
{
	struct pack_frame f;

	begin(b, &f, "output_closed", id, 2);
	pack_jobref(&b->pk, "job", job);
	pack_kv_str(&b->pk, "stream", stream_name(s));
	msg_frame_end(b, &f);
}

void
msg_encode_shutdown(struct pack_buf *b, uint64_t id, bool has_grace, uint64_t grace_ms)
{
	struct pack_frame f;

	begin(b, &f, "shutdown", id, has_grace);
	if (has_grace)
		pack_kv_uint(&b->pk, "grace_ms", grace_ms);
	msg_frame_end(b, &f);
}

void
msg_encode_error(struct pack_buf *b, uint64_t id, const char *code, const char *message)
{
	struct pack_frame f;

	begin(b, &f, "error", id, 2);
	pack_kv_str(&b->pk, "code", code);
	pack_kv_str(&b->pk, "message", message);
	msg_frame_end(b, &f);
}

void
msg_encode_ok_begin(struct pack_buf *b, struct pack_frame *f, uint64_t id, uint32_t n_extra)
{
	begin(b, f, "ok", id, n_extra);
}

static void
kv_opt_int(msgpack_packer *pk, const char *key, bool present, int64_t v)
{
	if (present)
		pack_kv_int(pk, key, v);
	else
		pack_kv_nil(pk, key);
}

#define JOB_INFO_FIELDS 25

void
msg_pack_job_info(msgpack_packer *pk, const struct job_info *ji)
{
	/* JOB_INFO_FIELDS must match the number of keys below */
	msgpack_pack_map(pk, JOB_INFO_FIELDS);
	pack_kv_uint(pk, "id", ji->id);
	pack_kv_str(pk, "name", ji->name);
	pack_kv_str(pk, "state", ji->state);
	kv_opt_int(pk, "pid", ji->pid > 0, ji->pid);
	pack_bytes_array(pk, "argv", ji->argv, ji->n_argv);
	pack_kv_bool(pk, "argv_truncated", ji->argv_truncated);
	pack_key(pk, "cwd");
	pack_bytes(pk, ji->cwd.ptr, ji->cwd.len);
	pack_kv_str(pk, "containment", ji->containment);
	pack_kv_str(pk, "cgroup", ji->cgroup);
	kv_opt_int(pk, "exit_code", ji->has_exit && ji->signal == 0, ji->exit_code);
	kv_opt_int(pk, "signal", ji->signal > 0, ji->signal);
	pack_kv_bool(pk, "core_dumped", ji->core_dumped);
	pack_kv_str(pk, "reason", ji->reason);
	kv_opt_int(pk, "error", ji->error != 0, ji->error);
	pack_kv_str(pk, "error_stage", ji->error_stage);
	pack_kv_uint(pk, "leftovers", ji->leftovers);
	pack_kv_int(pk, "submitted_at", ji->submitted_at);
	kv_opt_int(pk, "started_at", ji->started_at != 0, ji->started_at);
	kv_opt_int(pk, "ended_at", ji->ended_at != 0, ji->ended_at);
	kv_opt_int(pk, "duration_ms", ji->started_at != 0, (int64_t)ji->duration_ms);
	pack_kv_uint(pk, "user_cpu_ms", ji->user_cpu_ms);
	pack_kv_uint(pk, "sys_cpu_ms", ji->sys_cpu_ms);
	pack_kv_uint(pk, "max_rss_kb", ji->max_rss_kb);
	pack_kv_uint(pk, "log_bytes", ji->log_bytes);
	pack_kv_uint(pk, "log_dropped", ji->log_dropped);
}

void
msg_encode_exit(struct pack_buf *b, const struct job_info *ji)
{
	struct pack_frame f;

	msg_frame_begin(b, &f);
	msgpack_pack_map(&b->pk, 3);
	pack_kv_str(&b->pk, "type", "exit");
	pack_kv_uint(&b->pk, "job", ji->id);
	pack_key(&b->pk, "record");
	msg_pack_job_info(&b->pk, ji);
	msg_frame_end(b, &f);
}

void
msg_encode_end(struct pack_buf *b, uint64_t job, const char *why)
{
	struct pack_frame f;

	msg_frame_begin(b, &f);
	msgpack_pack_map(&b->pk, 3);
	pack_kv_str(&b->pk, "type", "end");
	pack_kv_uint(&b->pk, "job", job);
	pack_kv_str(&b->pk, "why", why);
	msg_frame_end(b, &f);
}

void
msg_encode_gap(struct pack_buf *b, uint64_t job, uint64_t bytes)
{
	struct pack_frame f;

	msg_frame_begin(b, &f);
	msgpack_pack_map(&b->pk, 3);
	pack_kv_str(&b->pk, "type", "gap");
	pack_kv_uint(&b->pk, "job", job);
	pack_kv_uint(&b->pk, "bytes", bytes);
	msg_frame_end(b, &f);
}

void
msg_encode_state(struct pack_buf *b, uint64_t job, const char *state, int64_t pid)
{
	struct pack_frame f;

	msg_frame_begin(b, &f);
	msgpack_pack_map(&b->pk, 4);
	pack_kv_str(&b->pk, "type", "state");
	pack_kv_uint(&b->pk, "job", job);
	pack_kv_str(&b->pk, "state", state);
	if (pid > 0)
		pack_kv_int(&b->pk, "pid", pid);
	else
		pack_kv_nil(&b->pk, "pid");
	msg_frame_end(b, &f);
}

void
msg_encode_pipes(struct pack_buf *b, uint64_t job)
{
	struct pack_frame f;

	msg_frame_begin(b, &f);
	msgpack_pack_map(&b->pk, 2);
	pack_kv_str(&b->pk, "type", "pipes");
	pack_kv_uint(&b->pk, "job", job);
	msg_frame_end(b, &f);
}

struct fixed_buf {
	uint8_t *p;
	size_t len, cap;
};

static int
fixed_write(void *data, const char *buf, size_t len)
{
	struct fixed_buf *fb = data;

	if (fb->len + len > fb->cap)
		return -1;
	memcpy(fb->p + fb->len, buf, len);
	fb->len += len;
	return 0;
}

size_t
msg_output_header(uint8_t hdr[64], uint64_t job, enum out_stream s, size_t len)
{
	struct fixed_buf fb = { .p = hdr, .len = FRAME_HEADER, .cap = 64 };
	msgpack_packer pk;

	msgpack_packer_init(&pk, &fb, fixed_write);
	msgpack_pack_map(&pk, 4);
	pack_kv_str(&pk, "type", "output");
	pack_kv_uint(&pk, "job", job);
	pack_kv_str(&pk, "stream", stream_name(s));
	pack_key(&pk, "data");
	/* always bin32 so the header length does not depend on len */
	{
		uint8_t b[5] = { 0xc6, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			(uint8_t)len };

		fixed_write(&fb, (const char *)b, sizeof(b));
	}
	frame_header_put(hdr, (uint32_t)(fb.len - FRAME_HEADER + len));
	return fb.len;
}

/* ---- client-side decoding ------------------------------------------------------- */

static char *
zone_cstr(struct pack_doc *doc, const struct proto_bytes *b)
{
	char *s = pack_doc_alloc(doc, b->len + 1);

	if (s != NULL) {
		memcpy(s, b->ptr, b->len);
		s[b->len] = '\0';
	}
	return s;
}

static int
get_cstr(struct pack_doc *doc, const msgpack_object *m, const char *key, const char **out,
    struct proto_error *err)
{
	struct proto_bytes b;
	int r = pack_get_str(m, key, false, PROTO_PATH_MAX, PACK_STR_UTF8, &b, err);

	*out = NULL;
	if (r <= 0)
		return r;
	*out = zone_cstr(doc, &b);
	return *out ? 1 : proto_error_set(err, "no_memory", "out of memory");
}

static int
get_opt_int(const msgpack_object *m, const char *key, int64_t *out, bool *present,
    struct proto_error *err)
{
	int r = pack_get_int(m, key, false, INT64_MIN, INT64_MAX, out, err);

	if (present != NULL)
		*present = r > 0;
	if (r == 0)
		*out = 0;
	return r;
}

int
msg_job_info_decode(struct pack_doc *doc, const msgpack_object *o, struct job_info *ji,
    struct proto_error *err)
{
	bool has_code;
	int64_t v;

	memset(ji, 0, sizeof(*ji));
	if (o == NULL || o->type != MSGPACK_OBJECT_MAP)
		return proto_error_set(err, PROTO_E_BAD_REQUEST, "job record is not a map");
	TRY(pack_get_uint(o, "id", true, 1, UINT64_MAX, &ji->id, err));
	TRY(get_cstr(doc, o, "name", &ji->name, err));
	TRY(get_cstr(doc, o, "state", &ji->state, err));
	TRY(get_opt_int(o, "pid", &ji->pid, NULL, err));
	TRY(pack_get_str_array(doc, o, "argv", false, PROTO_ARGV_MAX, PROTO_ITEM_MAX, FRAME_MAX, 0,
	    &ji->argv, &ji->n_argv, err));
	TRY(pack_get_bool(o, "argv_truncated", false, &ji->argv_truncated, err));
	TRY(pack_get_str(o, "cwd", false, PROTO_PATH_MAX, 0, &ji->cwd, err));
	TRY(get_cstr(doc, o, "containment", &ji->containment, err));
	TRY(get_cstr(doc, o, "cgroup", &ji->cgroup, err));
	TRY(get_opt_int(o, "exit_code", &ji->exit_code, &has_code, err));
	TRY(get_opt_int(o, "signal", &ji->signal, NULL, err));
	ji->has_exit = has_code || ji->signal > 0;
	TRY(pack_get_bool(o, "core_dumped", false, &ji->core_dumped, err));
	TRY(get_cstr(doc, o, "reason", &ji->reason, err));
	TRY(get_opt_int(o, "error", &ji->error, NULL, err));
	TRY(get_cstr(doc, o, "error_stage", &ji->error_stage, err));
	TRY(pack_get_uint(o, "leftovers", false, 0, UINT64_MAX, &ji->leftovers, err));
	TRY(get_opt_int(o, "submitted_at", &ji->submitted_at, NULL, err));
	TRY(get_opt_int(o, "started_at", &ji->started_at, NULL, err));
	TRY(get_opt_int(o, "ended_at", &ji->ended_at, NULL, err));
	TRY(get_opt_int(o, "duration_ms", &v, NULL, err));
	ji->duration_ms = v > 0 ? (uint64_t)v : 0;
	TRY(pack_get_uint(o, "user_cpu_ms", false, 0, UINT64_MAX, &ji->user_cpu_ms, err));
	TRY(pack_get_uint(o, "sys_cpu_ms", false, 0, UINT64_MAX, &ji->sys_cpu_ms, err));
	TRY(pack_get_uint(o, "max_rss_kb", false, 0, UINT64_MAX, &ji->max_rss_kb, err));
	TRY(pack_get_uint(o, "log_bytes", false, 0, UINT64_MAX, &ji->log_bytes, err));
	TRY(pack_get_uint(o, "log_dropped", false, 0, UINT64_MAX, &ji->log_dropped, err));
	return 0;
}

int
msg_event_decode(struct pack_doc *doc, const void *buf, size_t len, struct msg_event *ev,
    struct proto_error *err)
{
	const msgpack_object *m;
	struct proto_bytes t;

	memset(ev, 0, sizeof(*ev));
	TRY(pack_doc_parse(doc, buf, len, err));
	m = ev->map = doc->root;
	TRY(pack_get_str(m, "type", true, 32, PACK_STR_UTF8, &t, err));
	ev->type = msg_type_lookup(&t);
	switch (ev->type) {
	case MSG_OK:
	case MSG_HELLO:
		TRY(pack_get_uint(m, "id", true, 0, UINT64_MAX, &ev->id, err));
		TRY(pack_get_uint(m, "job", false, 0, UINT64_MAX, &ev->job, err));
		return 0;
	case MSG_ERROR:
		TRY(pack_get_uint(m, "id", false, 0, UINT64_MAX, &ev->id, err));
		TRY(pack_get_str(m, "code", true, 64, PACK_STR_UTF8, &ev->code, err));
		TRY(pack_get_str(m, "message", true, 4096, PACK_STR_UTF8, &ev->message, err));
		return 0;
	case MSG_OUTPUT: {
		const msgpack_object *d = pack_map_get(m, "data");
		struct proto_bytes sname;

		TRY(pack_get_uint(m, "job", true, 1, UINT64_MAX, &ev->job, err));
		TRY(pack_get_str(m, "stream", true, 16, PACK_STR_UTF8, &sname, err));
		if (sname.len == 6 && memcmp(sname.ptr, "stderr", 6) == 0)
			ev->stream = STREAM_STDERR;
		else if (sname.len == 6 && memcmp(sname.ptr, "stdout", 6) == 0)
			ev->stream = STREAM_STDOUT;
		else
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "field \"stream\" must be \"stdout\" or \"stderr\"");
		if (d == NULL || d->type != MSGPACK_OBJECT_BIN)
			return proto_error_set(err, PROTO_E_BAD_REQUEST, "output without binary data");
		ev->data.ptr = d->via.bin.ptr;
		ev->data.len = d->via.bin.size;
		return 0;
	}
	case MSG_GAP:
		TRY(pack_get_uint(m, "job", true, 1, UINT64_MAX, &ev->job, err));
		TRY(pack_get_uint(m, "bytes", true, 0, UINT64_MAX, &ev->bytes, err));
		return 0;
	case MSG_EXIT:
		TRY(pack_get_uint(m, "job", true, 1, UINT64_MAX, &ev->job, err));
		return 0;
	case MSG_END:
		TRY(pack_get_uint(m, "job", true, 1, UINT64_MAX, &ev->job, err));
		TRY(pack_get_str(m, "why", false, 64, PACK_STR_UTF8, &ev->why, err));
		return 0;
	case MSG_STATE:
		TRY(pack_get_uint(m, "job", true, 1, UINT64_MAX, &ev->job, err));
		TRY(pack_get_str(m, "state", true, 32, PACK_STR_UTF8, &ev->state, err));
		TRY(pack_get_int(m, "pid", false, 0, INT32_MAX, &ev->pid, err));
		return 0;
	case MSG_PIPES:
		TRY(pack_get_uint(m, "job", true, 1, UINT64_MAX, &ev->job, err));
		return 0;
	default:
		return proto_error_set(err, "unknown_type", "unknown message type \"%.*s\"",
		    (int)MIN(t.len, 32), t.ptr);
	}
}
