/*
 * shep.c: encoding and validated decoding of heidid <-> shepherd messages.
 * Both sides validate: the shepherd does not trust a spec blindly and heidid
 * treats a shepherd like any other peer (a bad message fails that job only).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/sock.h"
#include "common/util.h"
#include "proto/msg.h"
#include "proto/shep.h"

#define TRY(expr)                \
	do {                     \
		int r_ = (expr); \
		if (r_ < 0)      \
			return r_; \
	} while (0)

static const char *const shep_names[] = {
	[SHEP_SPEC] = "spec",
	[SHEP_SIGNAL] = "signal",
	[SHEP_STOP] = "stop",
	[SHEP_STARTED] = "started",
	[SHEP_EXIT] = "exit",
};

static int
decode_spec(struct pack_doc *doc, const msgpack_object *m, struct shep_spec *s,
    struct proto_error *err)
{
	int r;

	TRY(pack_get_uint(m, "job", true, 1, UINT64_MAX, &s->job_id, err));
	TRY(pack_get_str_array(doc, m, "argv", true, PROTO_ARGV_MAX, PROTO_ITEM_MAX,
	    PROTO_ARG_BYTES_MAX, PACK_STR_NONUL, &s->argv, &s->n_argv, err));
	if (s->n_argv == 0 || s->argv[0].len == 0)
		return proto_error_set(err, PROTO_E_BAD_REQUEST, "field \"argv\" must name a command");
	TRY(pack_get_str_array(doc, m, "env", true, PROTO_ENV_MAX + 1, PROTO_ITEM_MAX,
	    PROTO_ARG_BYTES_MAX + SHEP_MARKER_MAX, PACK_STR_NONUL, &s->env, &s->n_env, err));
	TRY(pack_get_str(m, "cwd", true, PROTO_PATH_MAX, PACK_STR_NONUL | PACK_STR_NONEMPTY, &s->cwd, err));
	if (s->cwd.ptr[0] != '/')
		return proto_error_set(err, PROTO_E_BAD_REQUEST, "field \"cwd\" must be an absolute path");
	TRY(pack_get_str(m, "cgroup", false, PROTO_PATH_MAX, PACK_STR_NONUL, &s->cgroup, err));
	TRY(pack_get_str(m, "cgroup_rel", false, PROTO_PATH_MAX, PACK_STR_NONUL, &s->cgroup_rel, err));
	if ((s->cgroup.len > 0) != (s->cgroup_rel.len > 0) ||
	    (s->cgroup.len > 0 && (s->cgroup.ptr[0] != '/' || s->cgroup_rel.ptr[0] != '/')))
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "fields \"cgroup\" and \"cgroup_rel\" must both be absolute paths");
	TRY(pack_get_uint(m, "grace_ms", true, 0, PROTO_DURATION_MAX, &s->grace_ms, err));
	TRY(pack_get_uint(m, "timeout_ms", false, 0, PROTO_DURATION_MAX, &s->timeout_ms, err));
	r = pack_get_int(m, "nice", false, -20, 19, &s->nice, err);
	if (r < 0)
		return r;
	s->has_nice = r > 0;
	TRY(pack_get_bool(m, "stdin", false, &s->stdin_pipe, err));
	TRY(pack_get_uint(m, "pipe_size", false, 0, 1u << 30, &s->pipe_size, err));
	TRY(pack_get_uint(m, "mem_bytes", false, 0, PROTO_MEM_MAX, &s->mem_bytes, err));
	TRY(pack_get_uint(m, "pids_max", false, 0, PROTO_PIDS_MAX, &s->pids_max, err));
	TRY(pack_get_uint(m, "cpu_millicores", false, 0, PROTO_CPU_MAX, &s->cpu_millicores, err));
	return 0;
}

int
shep_msg_decode(struct pack_doc *doc, const void *buf, size_t len, struct shep_msg *msg,
    struct proto_error *err)
{
	const msgpack_object *m;
	struct proto_bytes t;

	memset(msg, 0, sizeof(*msg));
	TRY(pack_doc_parse(doc, buf, len, err));
	m = doc->root;
	TRY(pack_get_str(m, "type", true, 16, PACK_STR_UTF8, &t, err));
	for (size_t i = 1; i < ARRAY_SIZE(shep_names); i++)
		if (strlen(shep_names[i]) == t.len && memcmp(shep_names[i], t.ptr, t.len) == 0)
			msg->type = (enum shep_type)i;
	switch (msg->type) {
	case SHEP_SPEC:
		TRY(pack_get_bool(m, "memfd", false, &msg->memfd, err));
		if (msg->memfd)
			return 0;
		return decode_spec(doc, m, &msg->spec, err);
	case SHEP_SIGNAL: {
		uint64_t sig;

		TRY(pack_get_uint(m, "signal", true, 1, PROTO_SIGNAL_MAX, &sig, err));
		TRY(pack_get_bool(m, "group", false, &msg->signal.group, err));
		msg->signal.signal = (int)sig;
		return 0;
	}
	case SHEP_STOP:
		TRY(pack_get_uint(m, "grace_ms", true, 0, PROTO_DURATION_MAX, &msg->stop.grace_ms, err));
		return 0;
	case SHEP_STARTED: {
		struct shep_started *s = &msg->started;

		TRY(pack_get_int(m, "pid", true, 2, INT32_MAX, &s->pid, err));
		TRY(pack_get_int(m, "pgid", true, 2, INT32_MAX, &s->pgid, err));
		TRY(pack_get_str(m, "containment", true, 16, PACK_STR_UTF8, &s->containment, err));
		TRY(pack_get_str(m, "cgroup", false, PROTO_PATH_MAX, PACK_STR_NONUL, &s->cgroup, err));
		TRY(pack_get_uint(m, "fds", true, 2, 3, &s->n_fds, err));
		return 0;
	}
	case SHEP_EXIT: {
		struct shep_exit *e = &msg->exit;
		int r;

		r = pack_get_int(m, "code", false, 0, 255, &e->code, err);
		if (r < 0)
			return r;
		e->exited = r > 0;
		TRY(pack_get_int(m, "signal", false, 0, PROTO_SIGNAL_MAX, &e->signal, err));
		TRY(pack_get_bool(m, "core", false, &e->core, err));
		TRY(pack_get_str(m, "reason", true, 32, PACK_STR_UTF8 | PACK_STR_NONEMPTY, &e->reason, err));
		TRY(pack_get_int(m, "error", false, 0, 4095, &e->error, err));
		TRY(pack_get_str(m, "stage", false, 32, PACK_STR_UTF8, &e->stage, err));
		TRY(pack_get_uint(m, "utime_us", false, 0, UINT64_MAX, &e->utime_us, err));
		TRY(pack_get_uint(m, "stime_us", false, 0, UINT64_MAX, &e->stime_us, err));
		TRY(pack_get_uint(m, "maxrss_kb", false, 0, UINT64_MAX, &e->maxrss_kb, err));
		TRY(pack_get_uint(m, "wall_ms", false, 0, UINT64_MAX, &e->wall_ms, err));
		TRY(pack_get_uint(m, "leftovers", false, 0, UINT64_MAX, &e->leftovers, err));
		return 0;
	}
	default:
		return proto_error_set(err, "unknown_type", "unknown shepherd message \"%.*s\"",
		    (int)MIN(t.len, 16), t.ptr);
	}
}

static void
pack_array(msgpack_packer *pk, const char *key, const struct proto_bytes *v, size_t n)
{
	pack_key(pk, key);
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++)
		pack_bytes(pk, v[i].ptr, v[i].len);
}

static void
pack_kv_bytes(msgpack_packer *pk, const char *key, const struct proto_bytes *b)
{
	pack_key(pk, key);
	pack_bytes(pk, b->ptr, b->len);
}

void
shep_encode_spec(struct pack_buf *b, const struct shep_spec *s)
{
	uint32_t n = 12 + s->has_nice + 2 * (s->cgroup.len > 0);

	msgpack_pack_map(&b->pk, n);
	pack_kv_str(&b->pk, "type", "spec");
	pack_kv_uint(&b->pk, "job", s->job_id);
	pack_array(&b->pk, "argv", s->argv, s->n_argv);
	pack_array(&b->pk, "env", s->env, s->n_env);
	pack_kv_bytes(&b->pk, "cwd", &s->cwd);
	if (s->cgroup.len > 0) {
		pack_kv_bytes(&b->pk, "cgroup", &s->cgroup);
		pack_kv_bytes(&b->pk, "cgroup_rel", &s->cgroup_rel);
	}
	pack_kv_uint(&b->pk, "grace_ms", s->grace_ms);
	pack_kv_uint(&b->pk, "timeout_ms", s->timeout_ms);
	if (s->has_nice)
		pack_kv_int(&b->pk, "nice", s->nice);
	pack_kv_bool(&b->pk, "stdin", s->stdin_pipe);
	pack_kv_uint(&b->pk, "mem_bytes", s->mem_bytes);
	pack_kv_uint(&b->pk, "pids_max", s->pids_max);
	pack_kv_uint(&b->pk, "cpu_millicores", s->cpu_millicores);
	/* last, and always 5 bytes: shep_spec_set_pipe_size() rewrites it in place */
	pack_key(&b->pk, "pipe_size");
	msgpack_pack_fix_uint32(&b->pk, (uint32_t)MIN(s->pipe_size, UINT32_MAX));
}

void
shep_spec_set_pipe_size(char *spec, size_t len, uint32_t size)
{
	uint8_t *p = (uint8_t *)spec + len - 4;

	if (len < 5 || p[-1] != 0xce)
		return;
	p[0] = (uint8_t)(size >> 24);
	p[1] = (uint8_t)(size >> 16);
	p[2] = (uint8_t)(size >> 8);
	p[3] = (uint8_t)size;
}

void
shep_encode_spec_memfd(struct pack_buf *b)
{
	msgpack_pack_map(&b->pk, 2);
	pack_kv_str(&b->pk, "type", "spec");
	pack_kv_bool(&b->pk, "memfd", true);
}

void
shep_encode_signal(struct pack_buf *b, int sig, bool group)
{
	msgpack_pack_map(&b->pk, 3);
	pack_kv_str(&b->pk, "type", "signal");
	pack_kv_uint(&b->pk, "signal", (uint64_t)sig);
	pack_kv_bool(&b->pk, "group", group);
}

void
shep_encode_stop(struct pack_buf *b, uint64_t grace_ms)
{
	msgpack_pack_map(&b->pk, 2);
	pack_kv_str(&b->pk, "type", "stop");
	pack_kv_uint(&b->pk, "grace_ms", grace_ms);
}

void
shep_encode_started(struct pack_buf *b, const struct shep_started *s)
{
	msgpack_pack_map(&b->pk, 5 + (s->cgroup.len > 0));
	pack_kv_str(&b->pk, "type", "started");
	pack_kv_int(&b->pk, "pid", s->pid);
	pack_kv_int(&b->pk, "pgid", s->pgid);
	pack_kv_bytes(&b->pk, "containment", &s->containment);
	if (s->cgroup.len > 0)
		pack_kv_bytes(&b->pk, "cgroup", &s->cgroup);
	pack_kv_uint(&b->pk, "fds", s->n_fds);
}

void
shep_encode_exit(struct pack_buf *b, const struct shep_exit *e)
{
	msgpack_pack_map(&b->pk, 10 + e->exited + (e->stage.len > 0));
	pack_kv_str(&b->pk, "type", "exit");
	if (e->exited)
		pack_kv_int(&b->pk, "code", e->code);
	pack_kv_int(&b->pk, "signal", e->signal);
	pack_kv_bool(&b->pk, "core", e->core);
	pack_kv_bytes(&b->pk, "reason", &e->reason);
	pack_kv_int(&b->pk, "error", e->error);
	if (e->stage.len > 0)
		pack_kv_bytes(&b->pk, "stage", &e->stage);
	pack_kv_uint(&b->pk, "utime_us", e->utime_us);
	pack_kv_uint(&b->pk, "stime_us", e->stime_us);
	pack_kv_uint(&b->pk, "maxrss_kb", e->maxrss_kb);
	pack_kv_uint(&b->pk, "wall_ms", e->wall_ms);
	pack_kv_uint(&b->pk, "leftovers", e->leftovers);
}

/* ---- the spec on the channel ---- */

int
shep_spec_send(int chan, const void *spec, size_t len)
{
	struct pack_buf b;
	int r, mfd;

	if (len <= SHEP_PACKET_MAX)
		return sock_send_fds_consume(chan, spec, len, NULL, 0);
	mfd = memfd_create("heidi-spec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return -errno;
	if (fd_write_all(mfd, spec, len) < 0 ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
		r = -errno;
		close(mfd);
		return r;
	}
	pack_buf_init(&b);
	shep_encode_spec_memfd(&b);
	r = sock_send_fds_consume(chan, b.sbuf.data, b.sbuf.size, &mfd, 1);
	pack_buf_deinit(&b);
	if (r < 0)
		close(mfd);
	return r;
}

/* Decode buf as a spec (not a memfd marker unless allowed).  0 or -EBADMSG. */
static int
spec_decode(struct pack_doc *doc, const char *buf, size_t len, struct shep_msg *m, bool marker_ok,
    struct proto_error *err)
{
	if (shep_msg_decode(doc, buf, len, m, err) < 0)
		return -EBADMSG;
	if (m->type != SHEP_SPEC || (m->memfd && !marker_ok)) {
		proto_error_set(err, PROTO_E_BAD_REQUEST, "expected a spec");
		return -EBADMSG;
	}
	return 0;
}

int
shep_spec_recv(int chan, struct pack_doc *doc, struct shep_msg *m, char **bufp,
    struct proto_error *err)
{
	int fds[SOCK_MAX_FDS], r = 1;
	size_t n_fds = 0, len;
	struct stat st;
	ssize_t n;
	char *buf = malloc(SHEP_PACKET_MAX);

	*bufp = NULL;
	if (buf == NULL)
		return -ENOMEM;
	do
		n = sock_recv_fds(chan, buf, SHEP_PACKET_MAX, fds, 1, &n_fds);
	while (n == -EINTR);
	if (n <= 0) {
		free(buf);
		return (int)n;
	}
	len = (size_t)n;
	if (spec_decode(doc, buf, len, m, true, err) < 0)
		r = -EBADMSG;
	else if (m->memfd) {
		free(buf);
		buf = NULL;
		pack_doc_deinit(doc);
		pack_doc_init(doc);
		if (n_fds != 1 || fstat(fds[0], &st) < 0 || st.st_size <= 0 ||
		    (uint64_t)st.st_size > SHEP_SPEC_MAX) {
			proto_error_set(err, PROTO_E_BAD_REQUEST, "bad spec memfd");
			r = -EBADMSG;
		} else if ((buf = malloc((size_t)st.st_size)) == NULL)
			r = -ENOMEM;
		else if (pread(fds[0], buf, (size_t)st.st_size, 0) != st.st_size)
			r = -EIO;
		else
			r = spec_decode(doc, buf, (size_t)st.st_size, m, false, err) < 0 ? -EBADMSG : 1;
	}
	if (n_fds > 0)
		close(fds[0]);
	if (r < 0) {
		free(buf);
		return r;
	}
	*bufp = buf;
	return 1;
}
