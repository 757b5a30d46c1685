/*
 * test-shep.c: heidid <-> shepherd messages (proto/shep.h).  Every
 * encoder is decoded again; the decoder's rejections are driven by
 * hand-built maps that break one field at a time.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/msg.h"
#include "proto/shep.h"

static struct pack_buf B;
static struct pack_doc D;
static struct proto_error E;
static struct shep_msg M;

static void
setup(void)
{
	pack_buf_init(&B);
	pack_doc_init(&D);
	memset(&E, 0, sizeof(E));
}

static void
teardown(void)
{
	pack_doc_deinit(&D);
	pack_buf_deinit(&B);
}

TestSuite(shep, .init = setup, .fini = teardown);

static int
decode(void)
{
	pack_doc_deinit(&D);
	pack_doc_init(&D);
	return shep_msg_decode(&D, B.sbuf.data, B.sbuf.size, &M, &E);
}

static void
assert_decoded(int r)
{
	cr_assert_eq(r, 0, "rejected: %s", E.message);
}

static void
assert_rejected(int r, const char *needle)
{
	cr_assert_lt(r, 0);
	cr_assert_not_null(E.code);
	cr_assert_not_null(strstr(E.message, needle), "error \"%s\" does not name %s", E.message,
	    needle);
}

static bool
bytes_eq(const struct proto_bytes *b, const char *s)
{
	return b->len == strlen(s) && memcmp(b->ptr, s, b->len) == 0;
}

#define PB(s) ((struct proto_bytes){ (s), sizeof(s) - 1 })

/* ---- round trips ------------------------------------------------------------ */

static struct proto_bytes argv[] = { PB("/bin/prog"), PB("--x"), PB("\xff\xfe") };
static struct proto_bytes env[] = { PB("PATH=/bin"), PB("HEIDI_JOB=3") };

static struct shep_spec
full_spec(void)
{
	return (struct shep_spec){
		.job_id = 3,
		.argv = argv,
		.n_argv = 3,
		.env = env,
		.n_env = 2,
		.cwd = PB("/work"),
		.cgroup = PB("/sys/fs/cgroup/heidi/job-3"),
		.cgroup_rel = PB("/heidi/job-3"),
		.grace_ms = 5000,
		.timeout_ms = 60000,
		.has_nice = true,
		.nice = 10,
		.stdin_pipe = true,
		.pipe_size = 1 << 20,
		.mem_bytes = 256ULL << 20,
		.pids_max = 64,
		.cpu_millicores = 500,
	};
}

Test(shep, spec_round_trips_every_field)
{
	struct shep_spec s = full_spec();
	const struct shep_spec *o = &M.spec;

	shep_encode_spec(&B, &s);
	cr_assert_leq(B.sbuf.size, SHEP_PACKET_MAX);
	assert_decoded(decode());
	cr_assert_eq(M.type, SHEP_SPEC);
	cr_assert_not(M.memfd);
	cr_assert_eq(o->job_id, 3);
	cr_assert_eq(o->n_argv, 3);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(o->argv[i].len, argv[i].len);
		cr_assert_arr_eq(o->argv[i].ptr, argv[i].ptr, argv[i].len);
	}
	cr_assert_eq(o->n_env, 2);
	cr_assert(bytes_eq(&o->env[1], "HEIDI_JOB=3"));
	cr_assert(bytes_eq(&o->cwd, "/work"));
	cr_assert(bytes_eq(&o->cgroup, "/sys/fs/cgroup/heidi/job-3"));
	cr_assert(bytes_eq(&o->cgroup_rel, "/heidi/job-3"));
	cr_assert_eq(o->grace_ms, 5000);
	cr_assert_eq(o->timeout_ms, 60000);
	cr_assert(o->has_nice);
	cr_assert_eq(o->nice, 10);
	cr_assert(o->stdin_pipe);
	cr_assert_eq(o->pipe_size, 1 << 20);
	cr_assert_eq(o->mem_bytes, 256ULL << 20);
	cr_assert_eq(o->pids_max, 64);
	cr_assert_eq(o->cpu_millicores, 500);
}

Test(shep, spec_without_cgroup_or_nice_round_trips)
{
	struct shep_spec s = full_spec();

	s.cgroup = s.cgroup_rel = (struct proto_bytes){ "", 0 };
	s.has_nice = false;
	s.nice = 0;
	s.timeout_ms = 0;
	s.n_env = 0;
	shep_encode_spec(&B, &s);
	assert_decoded(decode());
	cr_assert_eq(M.spec.cgroup.len, 0);
	cr_assert_eq(M.spec.cgroup_rel.len, 0);
	cr_assert_not(M.spec.has_nice);
	cr_assert_eq(M.spec.timeout_ms, 0);
	cr_assert_eq(M.spec.n_env, 0);
}

Test(shep, spec_memfd_marker_round_trips)
{
	shep_encode_spec_memfd(&B);
	assert_decoded(decode());
	cr_assert_eq(M.type, SHEP_SPEC);
	cr_assert(M.memfd);
}

/* ---- the spec on a channel ---------------------------------------------------- */

static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert_not_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void
channel(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void
assert_spec_arrives(const struct shep_spec *s)
{
	int sv[2], fds_before;
	char *buf = NULL;

	channel(sv);
	fds_before = open_fds();
	shep_encode_spec(&B, s);
	cr_assert_eq(shep_spec_send(sv[0], B.sbuf.data, B.sbuf.size), 0);
	cr_assert_eq(shep_spec_recv(sv[1], &D, &M, &buf, &E), 1, "%s", E.message);
	cr_assert_eq(M.type, SHEP_SPEC);
	cr_assert_not(M.memfd);
	cr_assert_eq(M.spec.job_id, s->job_id);
	cr_assert_eq(M.spec.n_argv, s->n_argv);
	for (size_t i = 0; i < s->n_argv; i++)
		cr_assert(M.spec.argv[i].len == s->argv[i].len &&
		    memcmp(M.spec.argv[i].ptr, s->argv[i].ptr, s->argv[i].len) == 0);
	/* no fd (a memfd) is left over on either side */
	cr_assert_eq(open_fds(), fds_before);
	free(buf);
	close(sv[0]);
	close(sv[1]);
}

Test(shep, a_spec_that_fits_a_packet_goes_inline)
{
	struct shep_spec s = full_spec();

	assert_spec_arrives(&s);
}

Test(shep, a_spec_larger_than_a_packet_goes_in_a_memfd)
{
	static char big[3][40000];
	struct proto_bytes items[4] = { PB("/bin/prog") };
	struct shep_spec s = full_spec();

	for (int i = 0; i < 3; i++) {
		memset(big[i], 'a' + i, sizeof(big[i]));
		items[i + 1] = (struct proto_bytes){ big[i], sizeof(big[i]) };
	}
	s.argv = items;
	s.n_argv = 4;
	assert_spec_arrives(&s);
	cr_assert_gt(B.sbuf.size, SHEP_PACKET_MAX, "the test spec must not fit a packet");
}

Test(shep, spec_recv_refuses_other_messages_and_says_hangup)
{
	int sv[2];
	char *buf = (char *)"untouched";

	channel(sv);
	shep_encode_stop(&B, 10);
	cr_assert_eq(shep_spec_send(sv[0], B.sbuf.data, B.sbuf.size), 0);
	cr_assert_eq(shep_spec_recv(sv[1], &D, &M, &buf, &E), -EBADMSG);
	cr_assert_null(buf);
	cr_assert_not_null(strstr(E.message, "spec"), "%s", E.message);
	/* a memfd marker without its memfd */
	pack_buf_deinit(&B);
	pack_buf_init(&B);
	shep_encode_spec_memfd(&B);
	cr_assert_eq(shep_spec_send(sv[0], B.sbuf.data, B.sbuf.size), 0);
	cr_assert_eq(shep_spec_recv(sv[1], &D, &M, &buf, &E), -EBADMSG);
	cr_assert_not_null(strstr(E.message, "memfd"), "%s", E.message);
	close(sv[0]);
	cr_assert_eq(shep_spec_recv(sv[1], &D, &M, &buf, &E), 0);
	close(sv[1]);
}

Test(shep, signal_and_stop_round_trip)
{
	shep_encode_signal(&B, 2, true);
	assert_decoded(decode());
	cr_assert_eq(M.type, SHEP_SIGNAL);
	cr_assert_eq(M.signal.signal, 2);
	cr_assert(M.signal.group);

	pack_buf_reset(&B);
	shep_encode_signal(&B, 64, false);
	assert_decoded(decode());
	cr_assert_eq(M.signal.signal, 64);
	cr_assert_not(M.signal.group);

	pack_buf_reset(&B);
	shep_encode_stop(&B, 7500);
	assert_decoded(decode());
	cr_assert_eq(M.type, SHEP_STOP);
	cr_assert_eq(M.stop.grace_ms, 7500);
}

Test(shep, started_round_trips)
{
	struct shep_started s = {
		.pid = 1234,
		.pgid = 1234,
		.containment = PB("cgroup"),
		.cgroup = PB("/heidi/job-3"),
		.n_fds = 3,
	};

	shep_encode_started(&B, &s);
	assert_decoded(decode());
	cr_assert_eq(M.type, SHEP_STARTED);
	cr_assert_eq(M.started.pid, 1234);
	cr_assert_eq(M.started.pgid, 1234);
	cr_assert(bytes_eq(&M.started.containment, "cgroup"));
	cr_assert(bytes_eq(&M.started.cgroup, "/heidi/job-3"));
	cr_assert_eq(M.started.n_fds, 3);

	pack_buf_reset(&B);
	s.containment = PB("pgroup");
	s.cgroup = (struct proto_bytes){ "", 0 };
	s.n_fds = 2;
	shep_encode_started(&B, &s);
	assert_decoded(decode());
	cr_assert(bytes_eq(&M.started.containment, "pgroup"));
	cr_assert_eq(M.started.cgroup.len, 0);
	cr_assert_eq(M.started.n_fds, 2);
}

Test(shep, exit_round_trips_exited_and_signalled)
{
	struct shep_exit e = {
		.exited = true,
		.code = 255,
		.reason = PB("exited"),
		.utime_us = 1,
		.stime_us = 2,
		.maxrss_kb = 3,
		.wall_ms = 4,
		.leftovers = 5,
	};

	shep_encode_exit(&B, &e);
	assert_decoded(decode());
	cr_assert_eq(M.type, SHEP_EXIT);
	cr_assert(M.exit.exited);
	cr_assert_eq(M.exit.code, 255);
	cr_assert_eq(M.exit.signal, 0);
	cr_assert(bytes_eq(&M.exit.reason, "exited"));
	cr_assert_eq(M.exit.stage.len, 0);
	cr_assert_eq(M.exit.utime_us, 1);
	cr_assert_eq(M.exit.stime_us, 2);
	cr_assert_eq(M.exit.maxrss_kb, 3);
	cr_assert_eq(M.exit.wall_ms, 4);
	cr_assert_eq(M.exit.leftovers, 5);

	pack_buf_reset(&B);
	e = (struct shep_exit){ .signal = 9, .core = true, .reason = PB("oom") };
	shep_encode_exit(&B, &e);
	assert_decoded(decode());
	cr_assert_not(M.exit.exited);
	cr_assert_eq(M.exit.signal, 9);
	cr_assert(M.exit.core);
	cr_assert(bytes_eq(&M.exit.reason, "oom"));

	pack_buf_reset(&B);
	e = (struct shep_exit){ .reason = PB("exec_failed"), .error = ENOENT, .stage = PB("exec") };
	shep_encode_exit(&B, &e);
	assert_decoded(decode());
	cr_assert_not(M.exit.exited);
	cr_assert_eq(M.exit.error, ENOENT);
	cr_assert(bytes_eq(&M.exit.stage, "exec"));
}

/* ---- rejections --------------------------------------------------------------- */

/*
 * A spec map with one field replaced (value packed by fn) or dropped
 * (fn == NULL).
 */
typedef void (*val_fn)(msgpack_packer *pk);

static void
pack_spec_with(const char *key, val_fn fn)
{
	static const char *keys[] = { "type", "job", "argv", "env", "cwd", "cgroup", "cgroup_rel",
		"grace_ms" };
	uint32_t n = 8;
	bool found = false;

	for (size_t i = 0; i < 8; i++)
		found |= strcmp(keys[i], key) == 0;
	if (!found)
		n++;
	else if (fn == NULL)
		n--;
	msgpack_pack_map(&B.pk, n);
	for (size_t i = 0; i < 8; i++) {
		if (strcmp(keys[i], key) == 0) {
			if (fn != NULL) {
				pack_key(&B.pk, key);
				fn(&B.pk);
			}
			continue;
		}
		switch (i) {
		case 0: pack_kv_str(&B.pk, "type", "spec"); break;
		case 1: pack_kv_uint(&B.pk, "job", 1); break;
		case 2:
			pack_key(&B.pk, "argv");
			msgpack_pack_array(&B.pk, 1);
			pack_cstr(&B.pk, "true");
			break;
		case 3:
			pack_key(&B.pk, "env");
			msgpack_pack_array(&B.pk, 0);
			break;
		case 4: pack_kv_str(&B.pk, "cwd", "/"); break;
		case 5: pack_kv_str(&B.pk, "cgroup", "/sys/fs/cgroup/h/j"); break;
		case 6: pack_kv_str(&B.pk, "cgroup_rel", "/h/j"); break;
		case 7: pack_kv_uint(&B.pk, "grace_ms", 1000); break;
		}
	}
	if (!found) {
		pack_key(&B.pk, key);
		fn(&B.pk);
	}
}

static int
spec_with(const char *key, val_fn fn)
{
	pack_buf_reset(&B);
	pack_spec_with(key, fn);
	return decode();
}

static void
v_zero(msgpack_packer *pk)
{
	msgpack_pack_uint64(pk, 0);
}

static void
v_one(msgpack_packer *pk)
{
	msgpack_pack_uint64(pk, 1);
}

static void
v_empty_str(msgpack_packer *pk)
{
	pack_cstr(pk, "");
}

static void
v_rel_path(msgpack_packer *pk)
{
	pack_cstr(pk, "h/j");
}

static void
v_empty_arr(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 0);
}

static void
v_nice_20(msgpack_packer *pk)
{
	msgpack_pack_int64(pk, 20);
}

static void
v_nice_m21(msgpack_packer *pk)
{
	msgpack_pack_int64(pk, -21);
}

static void
v_huge_pipe(msgpack_packer *pk)
{
	msgpack_pack_uint64(pk, (1u << 30) + 1);
}

static void
v_too_long(msgpack_packer *pk)
{
	msgpack_pack_uint64(pk, PROTO_DURATION_MAX + 1);
}

static void
v_neg(msgpack_packer *pk)
{
	msgpack_pack_int64(pk, -1);
}

static void
v_argv_nul(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	pack_cstr(pk, "sh");
	msgpack_pack_str(pk, 3);
	msgpack_pack_str_body(pk, "a\0b", 3);
}

static void
v_env_nul(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_str(pk, 5);
	msgpack_pack_str_body(pk, "A=\0bc", 5);
}

static void
v_cwd_nul(msgpack_packer *pk)
{
	msgpack_pack_str(pk, 4);
	msgpack_pack_str_body(pk, "/a\0b", 4);
}

/* the client's most env items, and heidid's marker */
static void
v_env_max_and_marker(msgpack_packer *pk)
{
	msgpack_pack_array(pk, PROTO_ENV_MAX + 1);
	for (size_t i = 0; i < PROTO_ENV_MAX + 1; i++)
		pack_cstr(pk, "A=1");
}

static void
v_env_one_too_many(msgpack_packer *pk)
{
	msgpack_pack_array(pk, PROTO_ENV_MAX + 2);
	for (size_t i = 0; i < PROTO_ENV_MAX + 2; i++)
		pack_cstr(pk, "A=1");
}

Test(shep, spec_rejects_bad_fields)
{
	assert_decoded(spec_with("nonexistent", v_one));
	assert_rejected(spec_with("job", NULL), "\"job\"");
	assert_rejected(spec_with("job", v_zero), "\"job\"");
	assert_rejected(spec_with("argv", NULL), "\"argv\"");
	assert_rejected(spec_with("argv", v_empty_arr), "\"argv\"");
	assert_rejected(spec_with("argv", v_argv_nul), "argv[1]");
	assert_rejected(spec_with("env", NULL), "\"env\"");
	assert_rejected(spec_with("env", v_env_nul), "env[0]");
	assert_decoded(spec_with("env", v_env_max_and_marker));
	assert_rejected(spec_with("env", v_env_one_too_many), "\"env\"");
	assert_rejected(spec_with("cwd", NULL), "\"cwd\"");
	assert_rejected(spec_with("cwd", v_empty_str), "\"cwd\"");
	assert_rejected(spec_with("cwd", v_cwd_nul), "\"cwd\"");
	assert_rejected(spec_with("grace_ms", NULL), "\"grace_ms\"");
	assert_rejected(spec_with("grace_ms", v_too_long), "\"grace_ms\"");
	assert_rejected(spec_with("timeout_ms", v_too_long), "\"timeout_ms\"");
	assert_rejected(spec_with("nice", v_nice_20), "\"nice\"");
	assert_rejected(spec_with("nice", v_nice_m21), "\"nice\"");
	assert_rejected(spec_with("stdin", v_one), "\"stdin\"");
	assert_rejected(spec_with("pipe_size", v_huge_pipe), "\"pipe_size\"");
	assert_rejected(spec_with("mem_bytes", v_neg), "\"mem_bytes\"");
	assert_rejected(spec_with("pids_max", v_neg), "\"pids_max\"");
	assert_rejected(spec_with("cpu_millicores", v_neg), "\"cpu_millicores\"");
}

Test(shep, spec_rejects_inconsistent_cgroup_paths)
{
	assert_decoded(spec_with("nonexistent", v_one));
	/* one without the other */
	assert_rejected(spec_with("cgroup", NULL), "cgroup");
	assert_rejected(spec_with("cgroup_rel", NULL), "cgroup_rel");
	/* relative paths */
	assert_rejected(spec_with("cgroup", v_rel_path), "cgroup");
	assert_rejected(spec_with("cgroup_rel", v_rel_path), "cgroup_rel");
}

/* Pack {"type": type} plus one field. */
static int
msg_with(const char *type, uint32_t n_more, void (*more)(msgpack_packer *pk))
{
	pack_buf_reset(&B);
	msgpack_pack_map(&B.pk, 1 + n_more);
	pack_kv_str(&B.pk, "type", type);
	if (more != NULL)
		more(&B.pk);
	return decode();
}

static void
f_sig0(msgpack_packer *pk)
{
	pack_kv_uint(pk, "signal", 0);
}

static void
f_sig65(msgpack_packer *pk)
{
	pack_kv_uint(pk, "signal", 65);
}

static void
f_sig_str(msgpack_packer *pk)
{
	pack_kv_str(pk, "signal", "TERM");
}

static void
f_grace_neg(msgpack_packer *pk)
{
	pack_kv_int(pk, "grace_ms", -5);
}

Test(shep, signal_and_stop_reject_bad_fields)
{
	assert_rejected(msg_with("signal", 0, NULL), "\"signal\"");
	assert_rejected(msg_with("signal", 1, f_sig0), "\"signal\"");
	assert_rejected(msg_with("signal", 1, f_sig65), "\"signal\"");
	assert_rejected(msg_with("signal", 1, f_sig_str), "\"signal\"");
	assert_rejected(msg_with("stop", 0, NULL), "\"grace_ms\"");
	assert_rejected(msg_with("stop", 1, f_grace_neg), "\"grace_ms\"");
}

/* started with one field changed: fields are pid, pgid, containment, fds */
static void
pack_started(int64_t pid, int64_t pgid, const char *containment, uint64_t fds)
{
	pack_buf_reset(&B);
	msgpack_pack_map(&B.pk, 1 + (pid != 0) + (pgid != 0) + (containment != NULL) + (fds != 0));
	pack_kv_str(&B.pk, "type", "started");
	if (pid != 0)
		pack_kv_int(&B.pk, "pid", pid);
	if (pgid != 0)
		pack_kv_int(&B.pk, "pgid", pgid);
	if (containment != NULL)
		pack_kv_str(&B.pk, "containment", containment);
	if (fds != 0)
		pack_kv_uint(&B.pk, "fds", fds);
}

Test(shep, started_rejects_bad_fields)
{
	pack_started(100, 100, "pgroup", 2);
	assert_decoded(decode());
	pack_started(0, 100, "pgroup", 2);
	assert_rejected(decode(), "\"pid\"");
	pack_started(1, 100, "pgroup", 2);
	assert_rejected(decode(), "\"pid\"");
	pack_started(-5, 100, "pgroup", 2);
	assert_rejected(decode(), "\"pid\"");
	pack_started((int64_t)INT32_MAX + 1, 100, "pgroup", 2);
	assert_rejected(decode(), "\"pid\"");
	pack_started(100, 0, "pgroup", 2);
	assert_rejected(decode(), "\"pgid\"");
	pack_started(100, 1, "pgroup", 2);
	assert_rejected(decode(), "\"pgid\"");
	pack_started(100, 100, NULL, 2);
	assert_rejected(decode(), "\"containment\"");
	pack_started(100, 100, "pgroup", 0);
	assert_rejected(decode(), "\"fds\"");
	pack_started(100, 100, "pgroup", 1);
	assert_rejected(decode(), "\"fds\"");
	pack_started(100, 100, "pgroup", 4);
	assert_rejected(decode(), "\"fds\"");
}

static void
f_code256(msgpack_packer *pk)
{
	pack_kv_str(pk, "reason", "exited");
	pack_kv_int(pk, "code", 256);
}

static void
f_code_neg(msgpack_packer *pk)
{
	pack_kv_str(pk, "reason", "exited");
	pack_kv_int(pk, "code", -1);
}

static void
f_sig_65(msgpack_packer *pk)
{
	pack_kv_str(pk, "reason", "killed");
	pack_kv_int(pk, "signal", 65);
}

static void
f_reason_empty(msgpack_packer *pk)
{
	pack_kv_str(pk, "reason", "");
}

static void
f_reason_int(msgpack_packer *pk)
{
	pack_kv_uint(pk, "reason", 1);
}

static void
f_error_big(msgpack_packer *pk)
{
	pack_kv_str(pk, "reason", "exec_failed");
	pack_kv_int(pk, "error", 4096);
}

static void
f_core_int(msgpack_packer *pk)
{
	pack_kv_str(pk, "reason", "killed");
	pack_kv_uint(pk, "core", 1);
}

static void
f_reason_only(msgpack_packer *pk)
{
	pack_kv_str(pk, "reason", "exited");
}

static void
f_wall_neg(msgpack_packer *pk)
{
	pack_kv_str(pk, "reason", "exited");
	pack_kv_int(pk, "wall_ms", -1);
}

static void
f_stage_bad(msgpack_packer *pk)
{
	pack_kv_str(pk, "reason", "exec_failed");
	pack_key(pk, "stage");
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "\xff", 1);
}

Test(shep, exit_rejects_bad_fields)
{
	assert_decoded(msg_with("exit", 1, f_reason_only));
	cr_assert_not(M.exit.exited);
	assert_rejected(msg_with("exit", 0, NULL), "\"reason\"");
	assert_rejected(msg_with("exit", 1, f_reason_empty), "\"reason\"");
	assert_rejected(msg_with("exit", 1, f_reason_int), "\"reason\"");
	assert_rejected(msg_with("exit", 2, f_code256), "\"code\"");
	assert_rejected(msg_with("exit", 2, f_code_neg), "\"code\"");
	assert_rejected(msg_with("exit", 2, f_sig_65), "\"signal\"");
	assert_rejected(msg_with("exit", 2, f_error_big), "\"error\"");
	assert_rejected(msg_with("exit", 2, f_core_int), "\"core\"");
	assert_rejected(msg_with("exit", 2, f_stage_bad), "\"stage\"");
	assert_rejected(msg_with("exit", 2, f_wall_neg), "\"wall_ms\"");
}

Test(shep, rejects_unknown_or_missing_type)
{
	assert_rejected(msg_with("spawn", 0, NULL), "spawn");
	cr_assert_str_eq(E.code, "unknown_type");
	assert_rejected(msg_with("", 0, NULL), "\"\"");
	cr_assert_str_eq(E.code, "unknown_type");
	pack_buf_reset(&B);
	msgpack_pack_map(&B.pk, 1);
	pack_kv_uint(&B.pk, "grace_ms", 1);
	assert_rejected(decode(), "\"type\"");
}

Test(shep, rejects_malformed_packets)
{
	static const uint8_t garbage[] = { 0xc1, 0x01 };
	static const uint8_t lie[] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0 };

	cr_assert_lt(shep_msg_decode(&D, garbage, sizeof(garbage), &M, &E), 0);
	cr_assert_lt(shep_msg_decode(&D, lie, sizeof(lie), &M, &E), 0);
	shep_encode_stop(&B, 1);
	msgpack_pack_nil(&B.pk);
	cr_assert_lt(decode(), 0);
}
