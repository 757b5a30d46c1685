/*
 * test-msg.c: client <-> heidid messages (proto/msg.h).
 *
 * Requests are built from small key/value tables (struct kv) so that each
 * validation test states just the one field it breaks.  Encoders are
 * checked by decoding what they produce: the 4-byte frame header is
 * verified and stripped, and the payload goes through the decoders.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/msg.h"

/* ---- a tiny value language for building maps ----------------------------- */

enum vkind { V_OMIT, V_UINT, V_INT, V_STR, V_BIN, V_BOOL, V_NIL, V_ARR };

struct val {
	enum vkind k;
	uint64_t u;
	int64_t i;
	const char *s; /* V_STR, V_BIN */
	size_t len;
	const struct val *items; /* V_ARR */
	size_t n;
};

struct kv {
	const char *key;
	struct val v;
};

#define U(x) ((struct val){ .k = V_UINT, .u = (x) })
#define I(x) ((struct val){ .k = V_INT, .i = (x) })
#define S(x) ((struct val){ .k = V_STR, .s = (x), .len = strlen(x) })
#define SL(x, l) ((struct val){ .k = V_STR, .s = (x), .len = (l) })
#define BIN(x, l) ((struct val){ .k = V_BIN, .s = (x), .len = (l) })
#define BOOL(x) ((struct val){ .k = V_BOOL, .u = (x) })
#define NIL ((struct val){ .k = V_NIL })
#define OMIT ((struct val){ .k = V_OMIT })
#define ARR(...)                                                                        \
	((struct val){ .k = V_ARR, .items = (const struct val[]){ __VA_ARGS__ },        \
	    .n = sizeof((const struct val[]){ __VA_ARGS__ }) / sizeof(struct val) })
#define EMPTY_ARR ((struct val){ .k = V_ARR, .n = 0 })
#define KVS(...) (const struct kv[]){ __VA_ARGS__ }, \
	sizeof((const struct kv[]){ __VA_ARGS__ }) / sizeof(struct kv)

static void
pack_val(msgpack_packer *pk, const struct val *v)
{
	switch (v->k) {
	case V_UINT:
		msgpack_pack_uint64(pk, v->u);
		break;
	case V_INT:
		msgpack_pack_int64(pk, v->i);
		break;
	case V_STR:
		msgpack_pack_str(pk, v->len);
		msgpack_pack_str_body(pk, v->s, v->len);
		break;
	case V_BIN:
		pack_bin(pk, v->s, v->len);
		break;
	case V_BOOL:
		if (v->u)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case V_NIL:
	case V_OMIT:
		msgpack_pack_nil(pk);
		break;
	case V_ARR:
		msgpack_pack_array(pk, v->n);
		for (size_t i = 0; i < v->n; i++)
			pack_val(pk, &v->items[i]);
		break;
	}
}

static const struct kv *
kv_find(const struct kv *kvs, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kvs[i].key, key) == 0)
			return &kvs[i];
	return NULL;
}

/*
 * Pack base overridden by over: a key of over replaces the same key of
 * base (OMIT drops it); the other keys of over are appended.
 */
static void
pack_map_kvs(struct pack_buf *b, const struct kv *base, size_t n_base, const struct kv *over,
    size_t n_over)
{
	uint32_t n = 0;

	for (size_t i = 0; i < n_base; i++) {
		const struct kv *o = kv_find(over, n_over, base[i].key);

		n += o == NULL || o->v.k != V_OMIT;
	}
	for (size_t i = 0; i < n_over; i++)
		n += kv_find(base, n_base, over[i].key) == NULL && over[i].v.k != V_OMIT;
	msgpack_pack_map(&b->pk, n);
	for (size_t i = 0; i < n_base; i++) {
		const struct kv *o = kv_find(over, n_over, base[i].key);
		const struct kv *use = o != NULL ? o : &base[i];

		if (use->v.k == V_OMIT)
			continue;
		pack_key(&b->pk, use->key);
		pack_val(&b->pk, &use->v);
	}
	for (size_t i = 0; i < n_over; i++) {
		if (kv_find(base, n_base, over[i].key) != NULL || over[i].v.k == V_OMIT)
			continue;
		pack_key(&b->pk, over[i].key);
		pack_val(&b->pk, &over[i].v);
	}
}

/* ---- fixtures ---------------------------------------------------------------- */

static struct pack_buf B;
static struct pack_doc D;
static struct proto_error E;
static struct msg_request R;

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

TestSuite(msg, .init = setup, .fini = teardown);

static int
decode_buf(void)
{
	pack_doc_deinit(&D);
	pack_doc_init(&D);
	return msg_request_decode(&D, B.sbuf.data, B.sbuf.size, &R, &E);
}

/* Build a request of type with id 1 from base + over and decode it. */
static int
decode_req(const char *type, const struct kv *base, size_t n_base, const struct kv *over,
    size_t n_over)
{
	struct kv head[2] = { { "type", S(type) }, { "id", U(1) } };
	struct kv all[32];
	size_t n = 0;

	cr_assert_leq(n_base + 2, 32);
	for (size_t i = 0; i < 2; i++)
		all[n++] = head[i];
	for (size_t i = 0; i < n_base; i++)
		all[n++] = base[i];
	pack_buf_reset(&B);
	pack_map_kvs(&B, all, n, over, n_over);
	return decode_buf();
}

static void
assert_rejected(int r, const char *needle)
{
	cr_assert_eq(r, -EINVAL, "expected -EINVAL, got %d (%s)", r, E.message);
	cr_assert_not_null(E.code);
	cr_assert_str_eq(E.code, PROTO_E_BAD_REQUEST, "code %s: %s", E.code, E.message);
	cr_assert_not_null(strstr(E.message, needle), "error \"%s\" does not name %s", E.message,
	    needle);
}

static void
assert_accepted(int r)
{
	cr_assert_eq(r, 0, "rejected: %s", E.message);
}

/* A valid spawn (argv, env, cwd) with over applied. */
static int
spawn_with(const struct kv *over, size_t n_over)
{
	const struct kv base[] = {
		{ "argv", ARR(S("sh"), S("-c"), S("true")) },
		{ "env", ARR(S("PATH=/bin"), S("A=")) },
		{ "cwd", S("/tmp") },
	};

	return decode_req("spawn", base, 3, over, n_over);
}

#define SPAWN_REJECTS(needle, ...) assert_rejected(spawn_with(KVS(__VA_ARGS__)), needle)
#define SPAWN_ACCEPTS(...) assert_accepted(spawn_with(KVS(__VA_ARGS__)))

/* The payload of the one frame in B: checks and strips the header. */
static const uint8_t *
frame_payload(size_t *lenp)
{
	const uint8_t *p = (const uint8_t *)B.sbuf.data;
	uint32_t len;

	cr_assert_geq(B.sbuf.size, FRAME_HEADER);
	len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	cr_assert_eq((size_t)len + FRAME_HEADER, B.sbuf.size, "frame header length is wrong");
	*lenp = len;
	return p + FRAME_HEADER;
}

static int
decode_frame(void)
{
	size_t len;
	const uint8_t *p = frame_payload(&len);

	pack_doc_deinit(&D);
	pack_doc_init(&D);
	return msg_request_decode(&D, p, len, &R, &E);
}

static bool
bytes_eq(const struct proto_bytes *b, const char *s)
{
	return b->len == strlen(s) && memcmp(b->ptr, s, b->len) == 0;
}

/* ---- framing-level rejections -------------------------------------------- */

Test(msg, rejects_truncated_msgpack)
{
	static const uint8_t trunc[] = { 0x82, 0xa2, 'i', 'd', 0x01, 0xa4, 't', 'y' };

	cr_assert_lt(msg_request_decode(&D, trunc, sizeof(trunc), &R, &E), 0);
	cr_assert_str_eq(E.code, PROTO_E_BAD_FRAME);
}

Test(msg, rejects_garbage_bytes)
{
	static const uint8_t garbage[] = { 0xc1, 0x00, 0xff, 0x13 };

	cr_assert_lt(msg_request_decode(&D, garbage, sizeof(garbage), &R, &E), 0);
	cr_assert_str_eq(E.code, PROTO_E_BAD_FRAME);
}

Test(msg, malformed_frame_returns_einval_as_documented)
{
	static const uint8_t garbage[] = { 0xc1 };

	int r = msg_request_decode(&D, garbage, sizeof(garbage), &R, &E);

	/* msg.h: "0, or -EINVAL with err set" */
	cr_assert_eq(r, -EINVAL, "msg.h documents -EINVAL, got %d (%s)", r, strerror(-r));
	cr_assert_str_eq(E.code, PROTO_E_BAD_FRAME);
}

Test(msg, rejects_trailing_bytes)
{
	msgpack_pack_map(&B.pk, 2);
	pack_kv_str(&B.pk, "type", "ping");
	pack_kv_uint(&B.pk, "id", 1);
	msgpack_pack_nil(&B.pk);
	cr_assert_lt(decode_buf(), 0);
	cr_assert_str_eq(E.code, PROTO_E_BAD_FRAME);
	cr_assert_not_null(strstr(E.message, "trailing"));
}

Test(msg, rejects_non_map_root)
{
	msgpack_pack_array(&B.pk, 2);
	pack_cstr(&B.pk, "ping");
	msgpack_pack_uint8(&B.pk, 1);
	cr_assert_lt(decode_buf(), 0);
	cr_assert_str_eq(E.code, PROTO_E_BAD_FRAME);
}

Test(msg, rejects_lying_array32_header)
{
	static const uint8_t lie[] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0 };
	static const uint8_t lie_in_map[] = { 0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff };

	cr_assert_lt(msg_request_decode(&D, lie, sizeof(lie), &R, &E), 0);
	cr_assert_str_eq(E.code, PROTO_E_BAD_FRAME);
	cr_assert_lt(msg_request_decode(&D, lie_in_map, sizeof(lie_in_map), &R, &E), 0);
	cr_assert_str_eq(E.code, PROTO_E_BAD_FRAME);
}

Test(msg, rejects_nesting_deeper_than_max)
{
	msgpack_pack_map(&B.pk, 3);
	pack_kv_str(&B.pk, "type", "ping");
	pack_kv_uint(&B.pk, "id", 1);
	pack_key(&B.pk, "deep");
	for (int i = 0; i < PACK_MAX_DEPTH; i++)
		msgpack_pack_array(&B.pk, 1);
	msgpack_pack_nil(&B.pk);
	cr_assert_lt(decode_buf(), 0);
	cr_assert_str_eq(E.code, PROTO_E_BAD_FRAME);
}

Test(msg, rejects_ext_types)
{
	static const uint8_t ext[] = { 0x83, 0xa4, 't', 'y', 'p', 'e', 0xa4, 'p', 'i', 'n', 'g',
		0xa2, 'i', 'd', 0x01, 0xa1, 'x', 0xd4, 0x01, 0x00 };

	/* sanity: the same bytes without the ext field are a valid ping */
	cr_assert_eq(msg_request_decode(&D, (const uint8_t[]){ 0x82, 0xa4, 't', 'y', 'p', 'e',
	    0xa4, 'p', 'i', 'n', 'g', 0xa2, 'i', 'd', 0x01 }, 15, &R, &E), 0);
	pack_doc_deinit(&D);
	pack_doc_init(&D);
	cr_assert_lt(msg_request_decode(&D, ext, sizeof(ext), &R, &E), 0);
	cr_assert_str_eq(E.code, PROTO_E_BAD_FRAME);
}

Test(msg, rejects_duplicate_keys)
{
	msgpack_pack_map(&B.pk, 3);
	pack_kv_str(&B.pk, "type", "ping");
	pack_kv_uint(&B.pk, "id", 1);
	pack_kv_str(&B.pk, "type", "stats");
	cr_assert_lt(decode_buf(), 0);
	cr_assert_not_null(strstr(E.message, "\"type\""), "%s", E.message);
}

Test(msg, rejects_more_than_max_fields)
{
	char key[16];

	msgpack_pack_map(&B.pk, PACK_MAX_FIELDS + 1);
	pack_kv_str(&B.pk, "type", "ping");
	pack_kv_uint(&B.pk, "id", 1);
	for (int i = 2; i < PACK_MAX_FIELDS + 1; i++) {
		snprintf(key, sizeof(key), "x%d", i);
		pack_kv_uint(&B.pk, key, 0);
	}
	cr_assert_lt(decode_buf(), 0);
	cr_assert_not_null(strstr(E.message, "fields"), "%s", E.message);
}

Test(msg, rejects_non_string_keys)
{
	msgpack_pack_map(&B.pk, 3);
	pack_kv_str(&B.pk, "type", "ping");
	pack_kv_uint(&B.pk, "id", 1);
	msgpack_pack_int8(&B.pk, -1);
	msgpack_pack_nil(&B.pk);
	cr_assert_lt(decode_buf(), 0);
	cr_assert_not_null(strstr(E.message, "keys"), "%s", E.message);
}

/* ---- common fields --------------------------------------------------------- */

Test(msg, requires_id_and_type)
{
	assert_rejected(decode_req("ping", NULL, 0, KVS({ "id", OMIT })), "\"id\"");
	assert_rejected(decode_req("ping", NULL, 0, KVS({ "id", I(-1) })), "\"id\"");
	assert_rejected(decode_req("ping", NULL, 0, KVS({ "id", S("1") })), "\"id\"");
	assert_rejected(decode_req("ping", NULL, 0, KVS({ "type", OMIT })), "\"type\"");
	assert_rejected(decode_req("ping", NULL, 0, KVS({ "type", U(3) })), "\"type\"");
	assert_rejected(decode_req("ping", NULL, 0, KVS({ "type", BIN("ping", 4) })), "\"type\"");
	assert_rejected(decode_req("ping", NULL, 0, KVS({ "type", SL("p\xffng", 4) })), "\"type\"");
	assert_rejected(decode_req("ping", NULL, 0,
	    KVS({ "type", S("a-type-name-longer-than-32-bytes!") })), "\"type\"");
}

Test(msg, unknown_type_has_its_own_code_and_keeps_the_id)
{
	int r = decode_req("frobnicate", NULL, 0, KVS({ "id", U(42) }));

	cr_assert_eq(r, -EINVAL);
	cr_assert_str_eq(E.code, "unknown_type");
	cr_assert_not_null(strstr(E.message, "type"), "%s", E.message);
	cr_assert_not_null(strstr(E.message, "frobnicate"), "%s", E.message);
	/* the server answers the error to this id */
	cr_assert_eq(R.id, 42);
}

Test(msg, server_message_types_are_not_requests)
{
	static const char *server[] = { "ok", "error", "output", "gap", "exit", "end", "" };

	for (size_t i = 0; i < sizeof(server) / sizeof(server[0]); i++) {
		int r = decode_req(server[i], NULL, 0, NULL, 0);

		cr_assert_eq(r, -EINVAL, "%s", server[i]);
		cr_assert_str_eq(E.code, "unknown_type", "%s", server[i]);
	}
}

Test(msg, accepts_field_free_requests)
{
	static const struct {
		const char *name;
		enum msg_type type;
	} t[] = { { "stats", MSG_STATS }, { "ping", MSG_PING }, { "version", MSG_VERSION } };

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_accepted(decode_req(t[i].name, NULL, 0, KVS({ "id", U(77) })));
		cr_assert_eq(R.type, t[i].type);
		cr_assert_eq(R.id, 77);
	}
}

/* ---- hello ---------------------------------------------------------------- */

Test(msg, hello_validates_version_and_client)
{
	assert_accepted(decode_req("hello", NULL, 0, KVS({ "version", U(1) }, { "client", S("x") })));
	cr_assert_eq(R.type, MSG_HELLO);
	cr_assert_eq(R.hello.version, 1);
	cr_assert(bytes_eq(&R.hello.client, "x"));
	assert_accepted(decode_req("hello", NULL, 0, KVS({ "version", U(1) })));
	cr_assert_eq(R.hello.client.len, 0);

	assert_rejected(decode_req("hello", NULL, 0, NULL, 0), "\"version\"");
	assert_rejected(decode_req("hello", NULL, 0, KVS({ "version", U(1ULL << 32) })),
	    "\"version\"");
	assert_rejected(decode_req("hello", NULL, 0, KVS({ "version", S("1") })), "\"version\"");
	assert_rejected(decode_req("hello", NULL, 0,
	    KVS({ "version", U(1) }, { "client", SL("\xc3\x28", 2) })), "\"client\"");
	{
		char longname[130];

		memset(longname, 'c', 129);
		longname[129] = '\0';
		assert_rejected(decode_req("hello", NULL, 0,
		    KVS({ "version", U(1) }, { "client", S(longname) })), "\"client\"");
	}
}

/* ---- spawn ---------------------------------------------------------------- */

Test(msg, spawn_minimal_decodes_with_defaults)
{
	SPAWN_ACCEPTS({ "id", U(9) });
	cr_assert_eq(R.type, MSG_SPAWN);
	cr_assert_eq(R.id, 9);
	cr_assert_eq(R.spawn.n_argv, 3);
	cr_assert(bytes_eq(&R.spawn.argv[0], "sh"));
	cr_assert(bytes_eq(&R.spawn.argv[2], "true"));
	cr_assert_eq(R.spawn.n_env, 2);
	cr_assert(bytes_eq(&R.spawn.env[1], "A="));
	cr_assert(bytes_eq(&R.spawn.cwd, "/tmp"));
	cr_assert_eq(R.spawn.name.len, 0);
	cr_assert_not(R.spawn.detach);
	cr_assert_not(R.spawn.stdin_pipe);
	cr_assert_eq(R.spawn.timeout_ms, 0);
	cr_assert_not(R.spawn.has_grace);
	cr_assert_eq(R.spawn.mem_bytes, 0);
	cr_assert_eq(R.spawn.pids_max, 0);
	cr_assert_eq(R.spawn.cpu_millicores, 0);
	cr_assert_not(R.spawn.has_nice);
	cr_assert_eq(R.spawn.containment, CONTAIN_AUTO);
	cr_assert_eq(R.spawn.linger_ms, 0);
}

Test(msg, spawn_accepts_binary_argv_env_and_cwd)
{
	/* argv, env and cwd are bytes: non-UTF-8 is fine */
	SPAWN_ACCEPTS({ "argv", ARR(BIN("\xff\xfe", 2)) }, { "env", ARR(BIN("X=\xff", 3)) },
	    { "cwd", BIN("/d\xff", 3) });
	cr_assert_eq(R.spawn.argv[0].len, 2);
	cr_assert_eq(R.spawn.cwd.len, 3);
	SPAWN_ACCEPTS({ "env", EMPTY_ARR });
	cr_assert_eq(R.spawn.n_env, 0);
}

Test(msg, spawn_rejects_bad_argv)
{
	SPAWN_REJECTS("\"argv\"", { "argv", OMIT });
	SPAWN_REJECTS("\"argv\"", { "argv", S("sh") });
	SPAWN_REJECTS("\"argv\"", { "argv", EMPTY_ARR });
	SPAWN_REJECTS("\"argv\"", { "argv", ARR(S(""), S("x")) });
	SPAWN_REJECTS("argv[1]", { "argv", ARR(S("sh"), SL("a\0b", 3)) });
	SPAWN_REJECTS("argv[0]", { "argv", ARR(SL("sh\0", 3)) });
	SPAWN_REJECTS("argv[1]", { "argv", ARR(S("sh"), U(1)) });
}

Test(msg, spawn_rejects_too_many_argv_items)
{
	struct val *items = calloc(PROTO_ARGV_MAX + 1, sizeof(*items));

	cr_assert_not_null(items);
	for (size_t i = 0; i < PROTO_ARGV_MAX + 1; i++)
		items[i] = S("a");
	SPAWN_REJECTS("\"argv\"", { "argv", { .k = V_ARR, .items = items, .n = PROTO_ARGV_MAX + 1 } });
	SPAWN_ACCEPTS({ "argv", { .k = V_ARR, .items = items, .n = PROTO_ARGV_MAX } });
	free(items);
}

Test(msg, spawn_rejects_oversize_argv_item)
{
	char *big = malloc(PROTO_ITEM_MAX + 2);

	cr_assert_not_null(big);
	memset(big, 'a', PROTO_ITEM_MAX + 1);
	big[PROTO_ITEM_MAX + 1] = '\0';
	SPAWN_REJECTS("argv[1]", { "argv", ARR(S("echo"), S(big)) });
	big[PROTO_ITEM_MAX] = '\0';
	SPAWN_ACCEPTS({ "argv", ARR(S("echo"), S(big)) });
	free(big);
}

Test(msg, spawn_rejects_argv_and_env_larger_than_the_limit_together)
{
	/* 9 + 9 items of 128 KiB: each array alone fits, both together do not */
	char *big = malloc(PROTO_ITEM_MAX + 1);
	struct val items[9], envs[9];

	cr_assert_not_null(big);
	memset(big, 'a', PROTO_ITEM_MAX - 1);
	big[PROTO_ITEM_MAX - 1] = '\0';
	big[1] = '=';
	for (int i = 0; i < 9; i++)
		items[i] = envs[i] = S(big);
	SPAWN_ACCEPTS({ "argv", { .k = V_ARR, .items = items, .n = 9 } });
	SPAWN_ACCEPTS({ "env", { .k = V_ARR, .items = envs, .n = 9 } });
	SPAWN_REJECTS("env", { "argv", { .k = V_ARR, .items = items, .n = 9 } },
	    { "env", { .k = V_ARR, .items = envs, .n = 9 } });
	free(big);
}

Test(msg, spawn_rejects_argv_larger_than_the_limit_alone)
{
	/* 17 items just under the item limit: more than 2 MiB in all */
	char *big = malloc(PROTO_ITEM_MAX);
	struct val items[17];

	cr_assert_not_null(big);
	memset(big, 'a', PROTO_ITEM_MAX - 1);
	big[PROTO_ITEM_MAX - 1] = '\0';
	for (int i = 0; i < 17; i++)
		items[i] = S(big);
	SPAWN_REJECTS("\"argv\"", { "argv", { .k = V_ARR, .items = items, .n = 17 } });
	SPAWN_ACCEPTS({ "argv", { .k = V_ARR, .items = items, .n = 15 } });
	free(big);
}

Test(msg, spawn_rejects_bad_env)
{
	SPAWN_REJECTS("\"env\"", { "env", OMIT });
	SPAWN_REJECTS("\"env\"", { "env", S("A=1") });
	SPAWN_REJECTS("env[1]", { "env", ARR(S("A=1"), S("NOEQUALS")) });
	SPAWN_REJECTS("env[0]", { "env", ARR(S("=value")) });
	SPAWN_REJECTS("env[0]", { "env", ARR(S("")) });
	SPAWN_REJECTS("env[0]", { "env", ARR(SL("A=x\0y", 5)) });
	SPAWN_REJECTS("env[0]", { "env", ARR(NIL) });
}

Test(msg, spawn_rejects_too_many_or_oversize_env_items)
{
	struct val *items = calloc(PROTO_ENV_MAX + 1, sizeof(*items));
	char *big = malloc(PROTO_ITEM_MAX + 2);

	cr_assert_not_null(items);
	cr_assert_not_null(big);
	for (size_t i = 0; i < PROTO_ENV_MAX + 1; i++)
		items[i] = S("A=1");
	SPAWN_REJECTS("\"env\"", { "env", { .k = V_ARR, .items = items, .n = PROTO_ENV_MAX + 1 } });
	SPAWN_ACCEPTS({ "env", { .k = V_ARR, .items = items, .n = PROTO_ENV_MAX } });
	memset(big, 'a', PROTO_ITEM_MAX + 1);
	big[1] = '=';
	big[PROTO_ITEM_MAX + 1] = '\0';
	SPAWN_REJECTS("env[1]", { "env", ARR(S("A=1"), S(big)) });
	big[PROTO_ITEM_MAX] = '\0';
	SPAWN_ACCEPTS({ "env", ARR(S("A=1"), S(big)) });
	free(big);
	free(items);
}

Test(msg, spawn_rejects_bad_cwd)
{
	char *lng = malloc(PROTO_PATH_MAX + 2);

	SPAWN_REJECTS("\"cwd\"", { "cwd", OMIT });
	SPAWN_REJECTS("\"cwd\"", { "cwd", S("") });
	SPAWN_REJECTS("\"cwd\"", { "cwd", S("tmp") });
	SPAWN_REJECTS("\"cwd\"", { "cwd", S("./tmp") });
	SPAWN_REJECTS("\"cwd\"", { "cwd", SL("/tmp\0/x", 7) });
	SPAWN_REJECTS("\"cwd\"", { "cwd", U(1) });
	cr_assert_not_null(lng);
	memset(lng, 'd', PROTO_PATH_MAX + 1);
	lng[0] = '/';
	lng[PROTO_PATH_MAX + 1] = '\0';
	SPAWN_REJECTS("\"cwd\"", { "cwd", S(lng) });
	lng[PROTO_PATH_MAX] = '\0';
	SPAWN_ACCEPTS({ "cwd", S(lng) });
	free(lng);
}

Test(msg, spawn_applies_name_rules)
{
	static const char *good[] = { "a", "Z", "_", "web", "web-1.2_x", "_9" };
	static const char *bad[] = { "", "1abc", "-a", ".a", "a b", "a/b", "a:b", "caf\xc3\xa9" };
	char lng[PROTO_NAME_MAX + 2];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		SPAWN_ACCEPTS({ "name", S(good[i]) });
		cr_assert(bytes_eq(&R.spawn.name, good[i]));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		SPAWN_REJECTS("\"name\"", { "name", S(bad[i]) });
	memset(lng, 'n', sizeof(lng));
	lng[PROTO_NAME_MAX] = '\0';
	SPAWN_ACCEPTS({ "name", S(lng) });
	lng[PROTO_NAME_MAX] = 'n';
	lng[PROTO_NAME_MAX + 1] = '\0';
	SPAWN_REJECTS("\"name\"", { "name", S(lng) });
	SPAWN_REJECTS("\"name\"", { "name", SL("a\xff", 2) });
	SPAWN_REJECTS("\"name\"", { "name", BIN("web", 3) });
	SPAWN_REJECTS("\"name\"", { "name", U(5) });
}

Test(msg, spawn_rejects_non_boolean_flags)
{
	SPAWN_REJECTS("\"detach\"", { "detach", U(1) });
	SPAWN_REJECTS("\"stdin\"", { "stdin", S("yes") });
	SPAWN_ACCEPTS({ "detach", BOOL(true) }, { "stdin", BOOL(true) });
	cr_assert(R.spawn.detach);
	cr_assert(R.spawn.stdin_pipe);
}

Test(msg, spawn_checks_durations)
{
	SPAWN_ACCEPTS({ "timeout_ms", U(PROTO_DURATION_MAX) }, { "grace_ms", U(0) },
	    { "linger_ms", U(PROTO_DURATION_MAX) });
	cr_assert_eq(R.spawn.timeout_ms, PROTO_DURATION_MAX);
	cr_assert(R.spawn.has_grace);
	cr_assert_eq(R.spawn.grace_ms, 0);
	cr_assert_eq(R.spawn.linger_ms, PROTO_DURATION_MAX);
	SPAWN_REJECTS("\"timeout_ms\"", { "timeout_ms", U(PROTO_DURATION_MAX + 1) });
	SPAWN_REJECTS("\"timeout_ms\"", { "timeout_ms", I(-1) });
	SPAWN_REJECTS("\"grace_ms\"", { "grace_ms", U(PROTO_DURATION_MAX + 1) });
	SPAWN_REJECTS("\"linger_ms\"", { "linger_ms", U(PROTO_DURATION_MAX + 1) });
	SPAWN_REJECTS("\"linger_ms\"", { "linger_ms", S("1s") });
}

Test(msg, spawn_checks_resource_limits)
{
	SPAWN_ACCEPTS({ "mem_bytes", U(PROTO_MEM_MIN) }, { "pids_max", U(1) },
	    { "cpu_millicores", U(1) });
	cr_assert_eq(R.spawn.mem_bytes, PROTO_MEM_MIN);
	SPAWN_ACCEPTS({ "mem_bytes", U(PROTO_MEM_MAX) }, { "pids_max", U(PROTO_PIDS_MAX) },
	    { "cpu_millicores", U(PROTO_CPU_MAX) });
	SPAWN_REJECTS("\"mem_bytes\"", { "mem_bytes", U(PROTO_MEM_MIN - 1) });
	SPAWN_REJECTS("\"mem_bytes\"", { "mem_bytes", U(4096) });
	SPAWN_REJECTS("\"mem_bytes\"", { "mem_bytes", U(PROTO_MEM_MAX + 1) });
	SPAWN_REJECTS("\"pids_max\"", { "pids_max", U(0) });
	SPAWN_REJECTS("\"pids_max\"", { "pids_max", U(PROTO_PIDS_MAX + 1) });
	SPAWN_REJECTS("\"cpu_millicores\"", { "cpu_millicores", U(0) });
	SPAWN_REJECTS("\"cpu_millicores\"", { "cpu_millicores", U(PROTO_CPU_MAX + 1) });
}

Test(msg, spawn_checks_nice_range)
{
	SPAWN_ACCEPTS({ "nice", I(-20) });
	cr_assert(R.spawn.has_nice);
	cr_assert_eq(R.spawn.nice, -20);
	SPAWN_ACCEPTS({ "nice", I(19) });
	cr_assert_eq(R.spawn.nice, 19);
	SPAWN_ACCEPTS({ "nice", I(0) });
	cr_assert(R.spawn.has_nice);
	SPAWN_REJECTS("\"nice\"", { "nice", I(-21) });
	SPAWN_REJECTS("\"nice\"", { "nice", I(20) });
	SPAWN_REJECTS("\"nice\"", { "nice", S("5") });
}

Test(msg, spawn_checks_containment)
{
	SPAWN_ACCEPTS({ "containment", S("cgroup") });
	cr_assert_eq(R.spawn.containment, CONTAIN_CGROUP);
	SPAWN_ACCEPTS({ "containment", S("pgroup") });
	cr_assert_eq(R.spawn.containment, CONTAIN_PGROUP);
	SPAWN_ACCEPTS({ "containment", S("auto") });
	cr_assert_eq(R.spawn.containment, CONTAIN_AUTO);
	SPAWN_REJECTS("\"containment\"", { "containment", S("docker") });
	SPAWN_REJECTS("\"containment\"", { "containment", S("") });
	SPAWN_REJECTS("\"containment\"", { "containment", S("cgroup-but-much-longer") });
	SPAWN_REJECTS("\"containment\"", { "containment", U(1) });
}

/* ---- job references ---------------------------------------------------------- */

Test(msg, status_and_detach_take_a_job_id_or_name)
{
	static const char *types[] = { "status", "detach" };

	for (size_t i = 0; i < 2; i++) {
		assert_accepted(decode_req(types[i], NULL, 0, KVS({ "job", U(12) })));
		cr_assert_eq(R.job.id, 12);
		cr_assert_eq(R.job.name.len, 0);
		assert_accepted(decode_req(types[i], NULL, 0, KVS({ "job", S("web") })));
		cr_assert_eq(R.job.id, 0);
		cr_assert(bytes_eq(&R.job.name, "web"));

		assert_rejected(decode_req(types[i], NULL, 0, NULL, 0), "\"job\"");
		assert_rejected(decode_req(types[i], NULL, 0, KVS({ "job", U(0) })), "\"job\"");
		assert_rejected(decode_req(types[i], NULL, 0, KVS({ "job", I(-3) })), "\"job\"");
		assert_rejected(decode_req(types[i], NULL, 0, KVS({ "job", S("9lives") })), "\"job\"");
		assert_rejected(decode_req(types[i], NULL, 0, KVS({ "job", S("") })), "\"job\"");
		assert_rejected(decode_req(types[i], NULL, 0, KVS({ "job", BOOL(true) })), "\"job\"");
		assert_rejected(decode_req(types[i], NULL, 0, KVS({ "job", NIL })), "\"job\"");
	}
}

Test(msg, ps_takes_an_optional_all_flag)
{
	assert_accepted(decode_req("ps", NULL, 0, NULL, 0));
	cr_assert_not(R.ps.all);
	assert_accepted(decode_req("ps", NULL, 0, KVS({ "all", BOOL(true) })));
	cr_assert(R.ps.all);
	assert_rejected(decode_req("ps", NULL, 0, KVS({ "all", U(1) })), "\"all\"");
}

Test(msg, wait_validates_the_job_list)
{
	struct val *many;

	assert_accepted(decode_req("wait", NULL, 0, KVS({ "jobs", ARR(U(3), S("db")) })));
	cr_assert_eq(R.wait.n_jobs, 2);
	cr_assert_eq(R.wait.jobs[0].id, 3);
	cr_assert(bytes_eq(&R.wait.jobs[1].name, "db"));

	assert_rejected(decode_req("wait", NULL, 0, NULL, 0), "\"jobs\"");
	assert_rejected(decode_req("wait", NULL, 0, KVS({ "jobs", EMPTY_ARR })), "\"jobs\"");
	assert_rejected(decode_req("wait", NULL, 0, KVS({ "jobs", U(3) })), "\"jobs\"");
	assert_rejected(decode_req("wait", NULL, 0, KVS({ "jobs", ARR(U(1), U(0)) })), "jobs");
	assert_rejected(decode_req("wait", NULL, 0, KVS({ "jobs", ARR(S("a b")) })), "jobs");
	assert_rejected(decode_req("wait", NULL, 0, KVS({ "jobs", ARR(BOOL(false)) })), "jobs");

	many = calloc(PROTO_WAIT_MAX + 1, sizeof(*many));
	cr_assert_not_null(many);
	for (size_t i = 0; i < PROTO_WAIT_MAX + 1; i++)
		many[i] = U(i + 1);
	assert_accepted(decode_req("wait", NULL, 0,
	    KVS({ "jobs", { .k = V_ARR, .items = many, .n = PROTO_WAIT_MAX } })));
	assert_rejected(decode_req("wait", NULL, 0,
	    KVS({ "jobs", { .k = V_ARR, .items = many, .n = PROTO_WAIT_MAX + 1 } })), "\"jobs\"");
	free(many);
}

Test(msg, kill_checks_signal_range)
{
	assert_accepted(decode_req("kill", NULL, 0, KVS({ "job", U(1) })));
	cr_assert_eq(R.kill.signal, 15, "default signal is TERM");
	cr_assert_not(R.kill.group);
	assert_accepted(decode_req("kill", NULL, 0, KVS({ "job", U(1) }, { "signal", U(1) })));
	cr_assert_eq(R.kill.signal, 1);
	assert_accepted(decode_req("kill", NULL, 0,
	    KVS({ "job", U(1) }, { "signal", U(64) }, { "group", BOOL(true) })));
	cr_assert_eq(R.kill.signal, 64);
	cr_assert(R.kill.group);

	assert_rejected(decode_req("kill", NULL, 0, KVS({ "job", U(1) }, { "signal", U(0) })),
	    "\"signal\"");
	assert_rejected(decode_req("kill", NULL, 0, KVS({ "job", U(1) }, { "signal", U(65) })),
	    "\"signal\"");
	assert_rejected(decode_req("kill", NULL, 0, KVS({ "job", U(1) }, { "signal", I(-9) })),
	    "\"signal\"");
	assert_rejected(decode_req("kill", NULL, 0, KVS({ "job", U(1) }, { "signal", S("KILL") })),
	    "\"signal\"");
	assert_rejected(decode_req("kill", NULL, 0, KVS({ "job", U(1) }, { "group", U(1) })),
	    "\"group\"");
	assert_rejected(decode_req("kill", NULL, 0, KVS({ "signal", U(9) })), "\"job\"");
}

Test(msg, stop_checks_grace)
{
	assert_accepted(decode_req("stop", NULL, 0, KVS({ "job", S("x") })));
	cr_assert_not(R.stop.has_grace);
	assert_accepted(decode_req("stop", NULL, 0, KVS({ "job", S("x") }, { "grace_ms", U(0) })));
	cr_assert(R.stop.has_grace);
	cr_assert_eq(R.stop.grace_ms, 0);
	assert_rejected(decode_req("stop", NULL, 0,
	    KVS({ "job", S("x") }, { "grace_ms", U(PROTO_DURATION_MAX + 1) })), "\"grace_ms\"");
	assert_rejected(decode_req("stop", NULL, 0, KVS({ "grace_ms", U(1) })), "\"job\"");
}

Test(msg, logs_validates_streams_and_tail)
{
	assert_accepted(decode_req("logs", NULL, 0, KVS({ "job", U(2) })));
	cr_assert(R.logs.out);
	cr_assert(R.logs.err);
	cr_assert_not(R.logs.follow);
	cr_assert_not(R.logs.has_tail);
	assert_accepted(decode_req("logs", NULL, 0,
	    KVS({ "job", U(2) }, { "stdout", BOOL(false) }, { "tail", U(0) }, { "follow", BOOL(true) })));
	cr_assert_not(R.logs.out);
	cr_assert(R.logs.err);
	cr_assert(R.logs.has_tail);
	cr_assert_eq(R.logs.tail, 0);
	cr_assert(R.logs.follow);

	assert_rejected(decode_req("logs", NULL, 0,
	    KVS({ "job", U(2) }, { "stdout", BOOL(false) }, { "stderr", BOOL(false) })), "\"stdout\"");
	assert_rejected(decode_req("logs", NULL, 0, KVS({ "job", U(2) }, { "stderr", U(0) })),
	    "\"stderr\"");
	assert_rejected(decode_req("logs", NULL, 0, KVS({ "job", U(2) }, { "follow", S("y") })),
	    "\"follow\"");
	assert_rejected(decode_req("logs", NULL, 0,
	    KVS({ "job", U(2) }, { "tail", U(PROTO_TAIL_MAX + 1) })), "\"tail\"");
	assert_rejected(decode_req("logs", NULL, 0, KVS({ "job", U(2) }, { "tail", I(-1) })),
	    "\"tail\"");
}

Test(msg, attach_checks_stdin_flag)
{
	assert_accepted(decode_req("attach", NULL, 0, KVS({ "job", U(4) }, { "stdin", BOOL(true) })));
	cr_assert_eq(R.attach.job.id, 4);
	cr_assert(R.attach.stdin_pipe);
	assert_rejected(decode_req("attach", NULL, 0, KVS({ "job", U(4) }, { "stdin", U(1) })),
	    "\"stdin\"");
}

Test(msg, input_requires_binary_data_within_limit)
{
	char *big;

	assert_accepted(decode_req("input", NULL, 0, KVS({ "job", U(4) }, { "data", BIN("a\0b", 3) })));
	cr_assert_eq(R.input.data.len, 3);
	cr_assert_arr_eq(R.input.data.ptr, "a\0b", 3);
	cr_assert_not(R.input.eof);
	assert_accepted(decode_req("input", NULL, 0, KVS({ "job", U(4) }, { "eof", BOOL(true) })));
	cr_assert(R.input.eof);
	cr_assert_eq(R.input.data.len, 0);

	assert_rejected(decode_req("input", NULL, 0, KVS({ "job", U(4) }, { "data", S("text") })),
	    "\"data\"");
	assert_rejected(decode_req("input", NULL, 0, KVS({ "job", U(4) }, { "data", U(1) })),
	    "\"data\"");
	assert_rejected(decode_req("input", NULL, 0, KVS({ "job", U(4) }, { "eof", U(1) })),
	    "\"eof\"");
	big = calloc(1, PROTO_DATA_MAX + 1);
	cr_assert_not_null(big);
	assert_accepted(decode_req("input", NULL, 0,
	    KVS({ "job", U(4) }, { "data", BIN(big, PROTO_DATA_MAX) })));
	assert_rejected(decode_req("input", NULL, 0,
	    KVS({ "job", U(4) }, { "data", BIN(big, PROTO_DATA_MAX + 1) })), "\"data\"");
	free(big);
}

Test(msg, output_closed_names_a_stream)
{
	assert_accepted(decode_req("output_closed", NULL, 0,
	    KVS({ "job", U(4) }, { "stream", S("stdout") })));
	cr_assert_eq(R.output_closed.stream, STREAM_STDOUT);
	assert_accepted(decode_req("output_closed", NULL, 0,
	    KVS({ "job", U(4) }, { "stream", S("stderr") })));
	cr_assert_eq(R.output_closed.stream, STREAM_STDERR);
	assert_rejected(decode_req("output_closed", NULL, 0, KVS({ "job", U(4) })), "\"stream\"");
	assert_rejected(decode_req("output_closed", NULL, 0,
	    KVS({ "job", U(4) }, { "stream", S("stdin") })), "\"stream\"");
	assert_rejected(decode_req("output_closed", NULL, 0,
	    KVS({ "job", U(4) }, { "stream", S("stdoutx") })), "\"stream\"");
	assert_rejected(decode_req("output_closed", NULL, 0,
	    KVS({ "job", U(4) }, { "stream", U(1) })), "\"stream\"");
}

Test(msg, shutdown_checks_grace)
{
	assert_accepted(decode_req("shutdown", NULL, 0, NULL, 0));
	cr_assert_not(R.shutdown.has_grace);
	assert_accepted(decode_req("shutdown", NULL, 0, KVS({ "grace_ms", U(5000) })));
	cr_assert(R.shutdown.has_grace);
	cr_assert_eq(R.shutdown.grace_ms, 5000);
	assert_rejected(decode_req("shutdown", NULL, 0, KVS({ "grace_ms", U(PROTO_DURATION_MAX + 1) })),
	    "\"grace_ms\"");
	assert_rejected(decode_req("shutdown", NULL, 0, KVS({ "grace_ms", BOOL(true) })),
	    "\"grace_ms\"");
}

/* ---- encoders round-trip through the request decoder ---------------------- */

Test(msg, hello_round_trips)
{
	msg_encode_hello(&B, 5, "heidictl");
	assert_accepted(decode_frame());
	cr_assert_eq(R.type, MSG_HELLO);
	cr_assert_eq(R.id, 5);
	cr_assert_eq(R.hello.version, PROTO_VERSION);
	cr_assert(bytes_eq(&R.hello.client, "heidictl"));
}

Test(msg, spawn_round_trips_every_field)
{
	struct proto_bytes argv[] = { { "prog", 4 }, { "a\xff", 2 }, { "", 0 } };
	struct proto_bytes env[] = { { "A=1", 3 }, { "B=\xfe", 3 } };
	struct msg_spawn s = {
		.argv = argv,
		.n_argv = 3,
		.env = env,
		.n_env = 2,
		.cwd = { "/srv/app", 8 },
		.name = { "web-1", 5 },
		.detach = true,
		.stdin_pipe = true,
		.timeout_ms = 30000,
		.grace_ms = 0,
		.has_grace = true,
		.mem_bytes = 64ULL << 20,
		.pids_max = 100,
		.cpu_millicores = 1500,
		.nice = -5,
		.has_nice = true,
		.containment = CONTAIN_PGROUP,
		.linger_ms = 60000,
	};

	msg_encode_spawn(&B, 77, &s);
	assert_accepted(decode_frame());
	cr_assert_eq(R.type, MSG_SPAWN);
	cr_assert_eq(R.id, 77);
	cr_assert_eq(R.spawn.n_argv, 3);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(R.spawn.argv[i].len, argv[i].len);
		cr_assert_arr_eq(R.spawn.argv[i].ptr, argv[i].ptr, argv[i].len);
	}
	cr_assert_eq(R.spawn.n_env, 2);
	for (size_t i = 0; i < 2; i++) {
		cr_assert_eq(R.spawn.env[i].len, env[i].len);
		cr_assert_arr_eq(R.spawn.env[i].ptr, env[i].ptr, env[i].len);
	}
	cr_assert(bytes_eq(&R.spawn.cwd, "/srv/app"));
	cr_assert(bytes_eq(&R.spawn.name, "web-1"));
	cr_assert(R.spawn.detach);
	cr_assert(R.spawn.stdin_pipe);
	cr_assert_eq(R.spawn.timeout_ms, 30000);
	cr_assert(R.spawn.has_grace);
	cr_assert_eq(R.spawn.grace_ms, 0);
	cr_assert_eq(R.spawn.mem_bytes, 64ULL << 20);
	cr_assert_eq(R.spawn.pids_max, 100);
	cr_assert_eq(R.spawn.cpu_millicores, 1500);
	cr_assert(R.spawn.has_nice);
	cr_assert_eq(R.spawn.nice, -5);
	cr_assert_eq(R.spawn.containment, CONTAIN_PGROUP);
	cr_assert_eq(R.spawn.linger_ms, 60000);
}

Test(msg, spawn_round_trips_minimal)
{
	struct proto_bytes argv[] = { { "true", 4 } };
	struct msg_spawn s = { .argv = argv, .n_argv = 1, .cwd = { "/", 1 } };

	msg_encode_spawn(&B, 1, &s);
	assert_accepted(decode_frame());
	cr_assert_eq(R.spawn.n_argv, 1);
	cr_assert_eq(R.spawn.n_env, 0);
	cr_assert_eq(R.spawn.name.len, 0);
	cr_assert_not(R.spawn.has_grace);
	cr_assert_not(R.spawn.has_nice);
	cr_assert_eq(R.spawn.containment, CONTAIN_AUTO);
}

Test(msg, simple_and_ps_round_trip)
{
	static const enum msg_type simple[] = { MSG_STATS, MSG_PING, MSG_VERSION };

	for (size_t i = 0; i < 3; i++) {
		pack_buf_reset(&B);
		msg_encode_simple(&B, simple[i], 100 + i);
		assert_accepted(decode_frame());
		cr_assert_eq(R.type, simple[i]);
		cr_assert_eq(R.id, 100 + i);
	}
	pack_buf_reset(&B);
	msg_encode_ps(&B, 3, true);
	assert_accepted(decode_frame());
	cr_assert_eq(R.type, MSG_PS);
	cr_assert(R.ps.all);
}

Test(msg, jobref_encodes_numbers_as_ids_and_words_as_names)
{
	msg_encode_jobref(&B, MSG_STATUS, 8, "42");
	assert_accepted(decode_frame());
	cr_assert_eq(R.type, MSG_STATUS);
	cr_assert_eq(R.id, 8);
	cr_assert_eq(R.job.id, 42);

	pack_buf_reset(&B);
	msg_encode_jobref(&B, MSG_DETACH, 9, "web");
	assert_accepted(decode_frame());
	cr_assert_eq(R.type, MSG_DETACH);
	cr_assert(bytes_eq(&R.job.name, "web"));
}

Test(msg, wait_round_trips)
{
	char *jobs[] = { "1", "db", "300" };

	msg_encode_wait(&B, 2, jobs, 3);
	assert_accepted(decode_frame());
	cr_assert_eq(R.type, MSG_WAIT);
	cr_assert_eq(R.wait.n_jobs, 3);
	cr_assert_eq(R.wait.jobs[0].id, 1);
	cr_assert(bytes_eq(&R.wait.jobs[1].name, "db"));
	cr_assert_eq(R.wait.jobs[2].id, 300);
}

Test(msg, kill_stop_logs_attach_round_trip)
{
	msg_encode_kill(&B, 1, "web", 9, true);
	assert_accepted(decode_frame());
	cr_assert_eq(R.type, MSG_KILL);
	cr_assert(bytes_eq(&R.kill.job.name, "web"));
	cr_assert_eq(R.kill.signal, 9);
	cr_assert(R.kill.group);

	pack_buf_reset(&B);
	msg_encode_stop(&B, 2, "5", true, 2500);
	assert_accepted(decode_frame());
	cr_assert_eq(R.type, MSG_STOP);
	cr_assert_eq(R.stop.job.id, 5);
	cr_assert(R.stop.has_grace);
	cr_assert_eq(R.stop.grace_ms, 2500);

	pack_buf_reset(&B);
	msg_encode_stop(&B, 2, "5", false, 0);
	assert_accepted(decode_frame());
	cr_assert_not(R.stop.has_grace);

	pack_buf_reset(&B);
	msg_encode_logs(&B, 3, "7", true, false, true, true, 10);
	assert_accepted(decode_frame());
	cr_assert_eq(R.type, MSG_LOGS);
	cr_assert_eq(R.logs.job.id, 7);
	cr_assert(R.logs.follow);
	cr_assert_not(R.logs.out);
	cr_assert(R.logs.err);
	cr_assert(R.logs.has_tail);
	cr_assert_eq(R.logs.tail, 10);

	pack_buf_reset(&B);
	msg_encode_attach(&B, 4, "db", true);
	assert_accepted(decode_frame());
	cr_assert_eq(R.type, MSG_ATTACH);
	cr_assert(bytes_eq(&R.attach.job.name, "db"));
	cr_assert(R.attach.stdin_pipe);
}

Test(msg, input_output_closed_shutdown_round_trip)
{
	msg_encode_input(&B, 1, "3", "\x00\xff\n", 3, true);
	assert_accepted(decode_frame());
	cr_assert_eq(R.type, MSG_INPUT);
	cr_assert_eq(R.input.job.id, 3);
	cr_assert_eq(R.input.data.len, 3);
	cr_assert_arr_eq(R.input.data.ptr, "\x00\xff\n", 3);
	cr_assert(R.input.eof);

	pack_buf_reset(&B);
	msg_encode_input(&B, 1, "3", "", 0, false);
	assert_accepted(decode_frame());
	cr_assert_eq(R.input.data.len, 0);
	cr_assert_not(R.input.eof);

	pack_buf_reset(&B);
	msg_encode_output_closed(&B, 2, "web", STREAM_STDERR);
	assert_accepted(decode_frame());
	cr_assert_eq(R.type, MSG_OUTPUT_CLOSED);
	cr_assert_eq(R.output_closed.stream, STREAM_STDERR);

	pack_buf_reset(&B);
	msg_encode_shutdown(&B, 3, true, 1234);
	assert_accepted(decode_frame());
	cr_assert_eq(R.type, MSG_SHUTDOWN);
	cr_assert(R.shutdown.has_grace);
	cr_assert_eq(R.shutdown.grace_ms, 1234);

	pack_buf_reset(&B);
	msg_encode_shutdown(&B, 3, false, 0);
	assert_accepted(decode_frame());
	cr_assert_not(R.shutdown.has_grace);
}

Test(msg, encoders_append_whole_frames)
{
	struct frame_reader r;
	const uint8_t *p;
	size_t len;

	/* several encodes into one buffer come out as separate frames */
	msg_encode_simple(&B, MSG_PING, 1);
	msg_encode_ps(&B, 2, false);
	msg_encode_hello(&B, 3, "x");
	frame_reader_init(&r, FRAME_MAX);
	cr_assert_eq(frame_reader_push(&r, B.sbuf.data, B.sbuf.size), 0);
	for (uint64_t id = 1; id <= 3; id++) {
		cr_assert_eq(frame_reader_next(&r, &p, &len), 0);
		pack_doc_deinit(&D);
		pack_doc_init(&D);
		assert_accepted(msg_request_decode(&D, p, len, &R, &E));
		cr_assert_eq(R.id, id);
	}
	cr_assert_eq(frame_reader_next(&r, &p, &len), FRAME_E_AGAIN);
	frame_reader_deinit(&r);
}

/* ---- server side: events ----------------------------------------------------- */

static struct msg_event EV;

static int
decode_event_frame(void)
{
	size_t len;
	const uint8_t *p = frame_payload(&len);

	pack_doc_deinit(&D);
	pack_doc_init(&D);
	return msg_event_decode(&D, p, len, &EV, &E);
}

Test(msg, error_event_round_trips)
{
	msg_encode_error(&B, 12, "no_such_job", "no job \"x\"");
	cr_assert_eq(decode_event_frame(), 0, "%s", E.message);
	cr_assert_eq(EV.type, MSG_ERROR);
	cr_assert_eq(EV.id, 12);
	cr_assert(bytes_eq(&EV.code, "no_such_job"));
	cr_assert(bytes_eq(&EV.message, "no job \"x\""));
}

Test(msg, ok_reply_carries_extra_fields)
{
	struct pack_frame f;

	msg_encode_ok_begin(&B, &f, 33, 2);
	pack_kv_uint(&B.pk, "job", 5);
	pack_kv_str(&B.pk, "extra", "v");
	msg_frame_end(&B, &f);
	cr_assert_eq(decode_event_frame(), 0, "%s", E.message);
	cr_assert_eq(EV.type, MSG_OK);
	cr_assert_eq(EV.id, 33);
	cr_assert_eq(EV.job, 5);
	cr_assert_not_null(pack_map_get(EV.map, "extra"));
}

Test(msg, gap_and_end_events_round_trip)
{
	msg_encode_gap(&B, 4, 1000);
	cr_assert_eq(decode_event_frame(), 0, "%s", E.message);
	cr_assert_eq(EV.type, MSG_GAP);
	cr_assert_eq(EV.job, 4);
	cr_assert_eq(EV.bytes, 1000);

	pack_buf_reset(&B);
	msg_encode_end(&B, 4, "detached");
	cr_assert_eq(decode_event_frame(), 0, "%s", E.message);
	cr_assert_eq(EV.type, MSG_END);
	cr_assert_eq(EV.job, 4);
	cr_assert(bytes_eq(&EV.why, "detached"));
}

Test(msg, output_header_plus_data_is_one_output_frame)
{
	uint8_t hdr[64], frame[64 + 16];
	static const char data[] = "line\n\xff\x00x";
	size_t dlen = sizeof(data) - 1, hlen;

	hlen = msg_output_header(hdr, 9, STREAM_STDERR, dlen);
	cr_assert_gt(hlen, FRAME_HEADER);
	cr_assert_leq(hlen, 64);
	memcpy(frame, hdr, hlen);
	memcpy(frame + hlen, data, dlen);
	pack_buf_reset(&B);
	msgpack_sbuffer_write(&B.sbuf, (const char *)frame, hlen + dlen);
	cr_assert_eq(decode_event_frame(), 0, "%s", E.message);
	cr_assert_eq(EV.type, MSG_OUTPUT);
	cr_assert_eq(EV.job, 9);
	cr_assert_eq(EV.stream, STREAM_STDERR);
	cr_assert_eq(EV.data.len, dlen);
	cr_assert_arr_eq(EV.data.ptr, data, dlen);
}

Test(msg, output_header_length_does_not_depend_on_data_length)
{
	uint8_t h1[64], h2[64];

	cr_assert_eq(msg_output_header(h1, 1, STREAM_STDOUT, 0),
	    msg_output_header(h2, 1, STREAM_STDOUT, 1u << 20));
	cr_assert_eq(msg_output_header(h1, UINT64_MAX, STREAM_STDOUT, 5),
	    msg_output_header(h2, UINT64_MAX, STREAM_STDOUT, FRAME_MAX - 100));
}

Test(msg, event_decode_rejects_bad_messages)
{
	cr_assert_lt(msg_event_decode(&D, "\xc1", 1, &EV, &E), 0);

	/* unknown type */
	pack_buf_reset(&B);
	msgpack_pack_map(&B.pk, 1);
	pack_kv_str(&B.pk, "type", "spawn");
	cr_assert_lt(msg_event_decode(&D, B.sbuf.data, B.sbuf.size, &EV, &E), 0);
	cr_assert_str_eq(E.code, "unknown_type");

	/* error without a code */
	pack_buf_reset(&B);
	msgpack_pack_map(&B.pk, 3);
	pack_kv_str(&B.pk, "type", "error");
	pack_kv_uint(&B.pk, "id", 1);
	pack_kv_str(&B.pk, "message", "m");
	cr_assert_lt(msg_event_decode(&D, B.sbuf.data, B.sbuf.size, &EV, &E), 0);
	cr_assert_not_null(strstr(E.message, "\"code\""), "%s", E.message);

	/* output without binary data */
	pack_buf_reset(&B);
	msgpack_pack_map(&B.pk, 4);
	pack_kv_str(&B.pk, "type", "output");
	pack_kv_uint(&B.pk, "job", 1);
	pack_kv_str(&B.pk, "stream", "stdout");
	pack_kv_str(&B.pk, "data", "text");
	cr_assert_lt(msg_event_decode(&D, B.sbuf.data, B.sbuf.size, &EV, &E), 0);
	cr_assert_not_null(strstr(E.message, "data"), "%s", E.message);

	/* gap and exit need a job id >= 1 */
	pack_buf_reset(&B);
	msgpack_pack_map(&B.pk, 3);
	pack_kv_str(&B.pk, "type", "gap");
	pack_kv_uint(&B.pk, "job", 0);
	pack_kv_uint(&B.pk, "bytes", 1);
	cr_assert_lt(msg_event_decode(&D, B.sbuf.data, B.sbuf.size, &EV, &E), 0);
	cr_assert_not_null(strstr(E.message, "\"job\""), "%s", E.message);

	pack_buf_reset(&B);
	msgpack_pack_map(&B.pk, 1);
	pack_kv_str(&B.pk, "type", "exit");
	cr_assert_lt(msg_event_decode(&D, B.sbuf.data, B.sbuf.size, &EV, &E), 0);
	cr_assert_not_null(strstr(E.message, "\"job\""), "%s", E.message);

	/* ok needs its id */
	pack_buf_reset(&B);
	msgpack_pack_map(&B.pk, 1);
	pack_kv_str(&B.pk, "type", "ok");
	cr_assert_lt(msg_event_decode(&D, B.sbuf.data, B.sbuf.size, &EV, &E), 0);
	cr_assert_not_null(strstr(E.message, "\"id\""), "%s", E.message);
}

/* ---- the job record ------------------------------------------------------------ */

Test(msg, job_info_round_trips_through_exit_event)
{
	struct proto_bytes argv[] = { { "sleep", 5 }, { "1\xff", 2 } };
	struct job_info in = {
		.id = 17,
		.name = "web",
		.state = "done",
		.pid = 4242,
		.argv = argv,
		.n_argv = 2,
		.cwd = { "/srv", 4 },
		.containment = "cgroup",
		.cgroup = "/heidi/job-17",
		.has_exit = true,
		.exit_code = 3,
		.signal = 0,
		.core_dumped = false,
		.reason = "exited",
		.error = 0,
		.error_stage = NULL,
		.leftovers = 2,
		.submitted_at = 1700000000000,
		.started_at = 1700000000100,
		.ended_at = 1700000001100,
		.duration_ms = 1000,
		.user_cpu_ms = 5,
		.sys_cpu_ms = 6,
		.max_rss_kb = 2048,
		.log_bytes = 12345,
		.log_dropped = 7,
	};
	struct job_info out;
	const msgpack_object *rec;

	msg_encode_exit(&B, &in);
	cr_assert_eq(decode_event_frame(), 0, "%s", E.message);
	cr_assert_eq(EV.type, MSG_EXIT);
	cr_assert_eq(EV.job, 17);
	rec = pack_map_get(EV.map, "record");
	cr_assert_not_null(rec);
	cr_assert_eq(msg_job_info_decode(&D, rec, &out, &E), 0, "%s", E.message);

	cr_assert_eq(out.id, 17);
	cr_assert_str_eq(out.name, "web");
	cr_assert_str_eq(out.state, "done");
	cr_assert_eq(out.pid, 4242);
	cr_assert_eq(out.n_argv, 2);
	cr_assert_eq(out.argv[1].len, 2);
	cr_assert_arr_eq(out.argv[1].ptr, "1\xff", 2);
	cr_assert(bytes_eq(&out.cwd, "/srv"));
	cr_assert_str_eq(out.containment, "cgroup");
	cr_assert_str_eq(out.cgroup, "/heidi/job-17");
	cr_assert(out.has_exit);
	cr_assert_eq(out.exit_code, 3);
	cr_assert_eq(out.signal, 0);
	cr_assert_not(out.core_dumped);
	cr_assert_str_eq(out.reason, "exited");
	cr_assert_eq(out.error, 0);
	cr_assert_null(out.error_stage);
	cr_assert_eq(out.leftovers, 2);
	cr_assert_eq(out.submitted_at, 1700000000000);
	cr_assert_eq(out.started_at, 1700000000100);
	cr_assert_eq(out.ended_at, 1700000001100);
	cr_assert_eq(out.duration_ms, 1000);
	cr_assert_eq(out.user_cpu_ms, 5);
	cr_assert_eq(out.sys_cpu_ms, 6);
	cr_assert_eq(out.max_rss_kb, 2048);
	cr_assert_eq(out.log_bytes, 12345);
	cr_assert_eq(out.log_dropped, 7);
}

Test(msg, job_info_round_trips_absent_fields_as_absent)
{
	struct job_info in = {
		.id = 1,
		.state = "queued",
		.submitted_at = 5,
	};
	struct job_info out;

	msgpack_pack_map(&B.pk, 1);
	pack_key(&B.pk, "r");
	msg_pack_job_info(&B.pk, &in);
	cr_assert_eq(pack_doc_parse(&D, B.sbuf.data, B.sbuf.size, &E), 0, "%s", E.message);
	cr_assert_eq(msg_job_info_decode(&D, pack_map_get(D.root, "r"), &out, &E), 0, "%s",
	    E.message);
	cr_assert_eq(out.id, 1);
	cr_assert_null(out.name);
	cr_assert_str_eq(out.state, "queued");
	cr_assert_eq(out.pid, 0);
	cr_assert_eq(out.n_argv, 0);
	cr_assert_null(out.containment);
	cr_assert_null(out.cgroup);
	cr_assert_not(out.has_exit);
	cr_assert_eq(out.signal, 0);
	cr_assert_null(out.reason);
	cr_assert_eq(out.error, 0);
	cr_assert_eq(out.started_at, 0);
	cr_assert_eq(out.ended_at, 0);
	cr_assert_eq(out.duration_ms, 0);
	cr_assert_eq(out.submitted_at, 5);
}

Test(msg, job_info_round_trips_signal_and_exec_failure)
{
	struct job_info in = {
		.id = 2,
		.state = "done",
		.has_exit = true,
		.signal = 9,
		.core_dumped = true,
		.reason = "killed",
	};
	struct job_info out;

	msgpack_pack_map(&B.pk, 1);
	pack_key(&B.pk, "r");
	msg_pack_job_info(&B.pk, &in);
	cr_assert_eq(pack_doc_parse(&D, B.sbuf.data, B.sbuf.size, &E), 0);
	cr_assert_eq(msg_job_info_decode(&D, pack_map_get(D.root, "r"), &out, &E), 0, "%s",
	    E.message);
	cr_assert(out.has_exit);
	cr_assert_eq(out.signal, 9);
	cr_assert(out.core_dumped);
	cr_assert_eq(job_info_exit_status(&out), 137);

	pack_doc_deinit(&D);
	pack_doc_init(&D);
	pack_buf_reset(&B);
	in = (struct job_info){ .id = 3, .state = "done", .reason = "exec_failed",
		.error = ENOENT, .error_stage = "exec" };
	msgpack_pack_map(&B.pk, 1);
	pack_key(&B.pk, "r");
	msg_pack_job_info(&B.pk, &in);
	cr_assert_eq(pack_doc_parse(&D, B.sbuf.data, B.sbuf.size, &E), 0);
	cr_assert_eq(msg_job_info_decode(&D, pack_map_get(D.root, "r"), &out, &E), 0, "%s",
	    E.message);
	cr_assert_not(out.has_exit);
	cr_assert_eq(out.error, ENOENT);
	cr_assert_str_eq(out.error_stage, "exec");
	cr_assert_str_eq(out.reason, "exec_failed");
	cr_assert_eq(job_info_exit_status(&out), 127);
}

Test(msg, job_info_decode_rejects_bad_records)
{
	struct job_info out;

	msgpack_pack_map(&B.pk, 3);
	pack_key(&B.pk, "notmap");
	msgpack_pack_uint8(&B.pk, 1);
	pack_key(&B.pk, "noid");
	msgpack_pack_map(&B.pk, 1);
	pack_kv_str(&B.pk, "state", "done");
	pack_key(&B.pk, "badpid");
	msgpack_pack_map(&B.pk, 2);
	pack_kv_uint(&B.pk, "id", 1);
	pack_kv_str(&B.pk, "pid", "12");
	cr_assert_eq(pack_doc_parse(&D, B.sbuf.data, B.sbuf.size, &E), 0);
	cr_assert_lt(msg_job_info_decode(&D, pack_map_get(D.root, "notmap"), &out, &E), 0);
	cr_assert_lt(msg_job_info_decode(&D, pack_map_get(D.root, "noid"), &out, &E), 0);
	cr_assert_not_null(strstr(E.message, "\"id\""), "%s", E.message);
	cr_assert_lt(msg_job_info_decode(&D, pack_map_get(D.root, "badpid"), &out, &E), 0);
	cr_assert_not_null(strstr(E.message, "\"pid\""), "%s", E.message);
	cr_assert_lt(msg_job_info_decode(&D, NULL, &out, &E), 0);
}

Test(msg, exit_status_follows_shell_conventions)
{
	struct job_info ji;

	ji = (struct job_info){ .has_exit = true, .exit_code = 0 };
	cr_assert_eq(job_info_exit_status(&ji), 0);
	ji = (struct job_info){ .has_exit = true, .exit_code = 3, .reason = "exited" };
	cr_assert_eq(job_info_exit_status(&ji), 3);
	ji = (struct job_info){ .has_exit = true, .signal = 15 };
	cr_assert_eq(job_info_exit_status(&ji), 128 + 15);
	ji = (struct job_info){ .has_exit = true, .signal = 9, .core_dumped = true };
	cr_assert_eq(job_info_exit_status(&ji), 137);
	/* not found / not executable, like a shell */
	ji = (struct job_info){ .reason = "exec_failed", .error = ENOENT, .error_stage = "exec" };
	cr_assert_eq(job_info_exit_status(&ji), 127);
	ji = (struct job_info){ .reason = "exec_failed", .error = ENOTDIR, .error_stage = "exec" };
	cr_assert_eq(job_info_exit_status(&ji), 127);
	ji = (struct job_info){ .reason = "exec_failed", .error = EACCES, .error_stage = "exec" };
	cr_assert_eq(job_info_exit_status(&ji), 126);
	ji = (struct job_info){ .reason = "exec_failed", .error = ENOEXEC };
	cr_assert_eq(job_info_exit_status(&ji), 126);
	/* heidi could not run it at all */
	ji = (struct job_info){ .reason = "exec_failed", .error = ENOENT, .error_stage = "chdir" };
	cr_assert_eq(job_info_exit_status(&ji), 125);
	ji = (struct job_info){ .reason = "spawn_failed", .error = EAGAIN };
	cr_assert_eq(job_info_exit_status(&ji), 125);
	ji = (struct job_info){ 0 };
	cr_assert_eq(job_info_exit_status(&ji), 125);
}

/* ---- names ---------------------------------------------------------------------- */

Test(msg, names_and_containment_parse)
{
	enum job_containment c = CONTAIN_PGROUP;

	cr_assert_str_eq(msg_type_name(MSG_SPAWN), "spawn");
	cr_assert_str_eq(msg_type_name(MSG_OUTPUT_CLOSED), "output_closed");
	cr_assert_str_eq(msg_type_name(MSG_UNKNOWN), "unknown");
	cr_assert_str_eq(stream_name(STREAM_STDOUT), "stdout");
	cr_assert_str_eq(stream_name(STREAM_STDERR), "stderr");
	cr_assert_str_eq(containment_name(CONTAIN_CGROUP), "cgroup");
	cr_assert_eq(containment_parse("auto", &c), 0);
	cr_assert_eq(c, CONTAIN_AUTO);
	cr_assert_eq(containment_parse("pgroup", &c), 0);
	cr_assert_eq(c, CONTAIN_PGROUP);
	cr_assert_eq(containment_parse("cgroups", &c), -EINVAL);
	cr_assert_eq(containment_parse("", &c), -EINVAL);
}
