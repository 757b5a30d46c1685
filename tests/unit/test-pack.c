/*
 * test-pack.c: msgpack helpers (proto/pack.h): the allocation-free
 * structural pre-check, document parsing, typed getters with field-naming
 * errors, the UTF-8 validator and the writers.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "proto/pack.h"

/* ---- helpers ------------------------------------------------------------- */

static struct pack_buf B;
static struct pack_doc D;
static struct proto_error E;

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

TestSuite(pack, .init = setup, .fini = teardown);

static int
parse(void)
{
	return pack_doc_parse(&D, B.sbuf.data, B.sbuf.size, &E);
}

static int
parse_raw(const void *p, size_t len)
{
	return pack_doc_parse(&D, p, len, &E);
}

/* Parse B and fail the test unless it is accepted. */
static const msgpack_object *
parse_ok(void)
{
	int r = parse();

	cr_assert_eq(r, 0, "parse: %d (%s)", r, E.message);
	cr_assert_not_null(D.root);
	return D.root;
}

static void
assert_err_names(const char *needle)
{
	cr_assert_not_null(E.code);
	cr_assert_not_null(strstr(E.message, needle), "error \"%s\" does not mention %s",
	    E.message, needle);
}

/* n nested arrays, the innermost empty: n bytes of 0x91 ... 0x90 */
static size_t
nested_arrays(uint8_t *buf, int n)
{
	for (int i = 0; i < n - 1; i++)
		buf[i] = 0x91;
	buf[n - 1] = 0x90;
	return (size_t)n;
}

/* ---- pack_check ---------------------------------------------------------- */

Test(pack, check_accepts_scalars_and_reports_used_bytes)
{
	static const struct {
		uint8_t b[10];
		size_t len;
	} ok[] = {
		{ { 0x00 }, 1 },                        /* positive fixint */
		{ { 0xff }, 1 },                        /* negative fixint */
		{ { 0xc0 }, 1 },                        /* nil */
		{ { 0xc3 }, 1 },                        /* true */
		{ { 0xcc, 0x80 }, 2 },                  /* uint8 */
		{ { 0xcd, 1, 2 }, 3 },                  /* uint16 */
		{ { 0xd2, 1, 2, 3, 4 }, 5 },            /* int32 */
		{ { 0xcf, 1, 2, 3, 4, 5, 6, 7, 8 }, 9 },/* uint64 */
		{ { 0xcb, 0, 0, 0, 0, 0, 0, 0, 0 }, 9 },/* float64 */
		{ { 0xa3, 'a', 'b', 'c' }, 4 },         /* fixstr */
		{ { 0xd9, 2, 'h', 'i' }, 4 },           /* str8 */
		{ { 0xc4, 1, 0 }, 3 },                  /* bin8 */
		{ { 0x92, 1, 2 }, 3 },                  /* fixarray */
		{ { 0x81, 0xa1, 'k', 0xc2 }, 4 },       /* fixmap */
		{ { 0xdc, 0, 1, 0xc0 }, 4 },            /* array16 */
		{ { 0xde, 0, 1, 0xa0, 0xa0 }, 5 },      /* map16 */
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		size_t used = 0;

		cr_assert_eq(pack_check(ok[i].b, ok[i].len, PACK_MAX_DEPTH, &used), 0, "case %zu", i);
		cr_assert_eq(used, ok[i].len, "case %zu", i);
	}
}

Test(pack, check_reports_first_object_only)
{
	static const uint8_t two[] = { 0x01, 0x02, 0x03 };
	size_t used = 0;

	cr_assert_eq(pack_check(two, sizeof(two), PACK_MAX_DEPTH, &used), 0);
	cr_assert_eq(used, 1);
}

Test(pack, check_rejects_truncated_input)
{
	static const struct {
		uint8_t b[8];
		size_t len;
	} bad[] = {
		{ { 0 }, 0 },                        /* nothing */
		{ { 0xcd, 1 }, 2 },                  /* uint16 missing a byte */
		{ { 0xcf, 1, 2, 3 }, 4 },            /* uint64 */
		{ { 0xa5, 'a', 'b' }, 3 },           /* fixstr of 5 */
		{ { 0xd9 }, 1 },                     /* str8 without length */
		{ { 0xd9, 9, 'x' }, 3 },             /* str8 of 9 */
		{ { 0xc5, 0 }, 2 },                  /* bin16 length cut */
		{ { 0xc6, 0, 0, 0, 9, 1 }, 6 },      /* bin32 of 9 */
		{ { 0x93, 1, 2 }, 3 },               /* fixarray of 3 */
		{ { 0x82, 0xa1, 'k', 1 }, 4 },       /* fixmap of 2 */
		{ { 0x81, 0xa1, 'k' }, 3 },          /* value missing */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(pack_check(bad[i].b, bad[i].len, PACK_MAX_DEPTH, NULL), -EBADMSG,
		    "case %zu", i);
}

Test(pack, check_rejects_huge_declared_counts_in_small_buffers)
{
	/* array32 declaring 0xffffffff elements in a 6-byte buffer */
	static const uint8_t arr32[] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0 };
	static const uint8_t map32[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0 };
	static const uint8_t arr16[] = { 0xdc, 0xff, 0xff, 0xc0, 0xc0 };
	static const uint8_t str32[] = { 0xdb, 0xff, 0xff, 0xff, 0xff, 'a' };

	cr_assert_eq(pack_check(arr32, sizeof(arr32), PACK_MAX_DEPTH, NULL), -EBADMSG);
	cr_assert_eq(pack_check(map32, sizeof(map32), PACK_MAX_DEPTH, NULL), -EBADMSG);
	cr_assert_eq(pack_check(arr16, sizeof(arr16), PACK_MAX_DEPTH, NULL), -EBADMSG);
	cr_assert_eq(pack_check(str32, sizeof(str32), PACK_MAX_DEPTH, NULL), -EBADMSG);
	/* and the document parser rejects it too (it runs the check first) */
	cr_assert_eq(parse_raw(arr32, sizeof(arr32)), -EBADMSG);
}

Test(pack, check_bounds_nesting_depth)
{
	uint8_t buf[64];
	size_t n;

	n = nested_arrays(buf, PACK_MAX_DEPTH);
	cr_assert_eq(pack_check(buf, n, PACK_MAX_DEPTH, NULL), 0);
	n = nested_arrays(buf, PACK_MAX_DEPTH + 1);
	cr_assert_eq(pack_check(buf, n, PACK_MAX_DEPTH, NULL), -EBADMSG);
	/* a scalar below the deepest allowed container is one level too deep */
	for (int i = 0; i < PACK_MAX_DEPTH; i++)
		buf[i] = 0x91;
	buf[PACK_MAX_DEPTH] = 0x01;
	cr_assert_eq(pack_check(buf, PACK_MAX_DEPTH + 1, PACK_MAX_DEPTH, NULL), -EBADMSG);
	/* the limit is the caller's */
	n = nested_arrays(buf, 3);
	cr_assert_eq(pack_check(buf, n, 2, NULL), -EBADMSG);
	cr_assert_eq(pack_check(buf, n, 3, NULL), 0);
}

Test(pack, check_rejects_ext_types_and_reserved_byte)
{
	static const struct {
		uint8_t b[8];
		size_t len;
	} bad[] = {
		{ { 0xc1 }, 1 },                   /* never used */
		{ { 0xd4, 1, 0 }, 3 },             /* fixext1 */
		{ { 0xd5, 1, 0, 0 }, 4 },          /* fixext2 */
		{ { 0xd6, 1, 0, 0, 0, 0 }, 6 },    /* fixext4 */
		{ { 0xc7, 1, 1, 0 }, 4 },          /* ext8 */
		{ { 0xc8, 0, 1, 1, 0 }, 5 },       /* ext16 */
		{ { 0xc9, 0, 0, 0, 1, 1, 0 }, 7 }, /* ext32 */
		{ { 0x91, 0xd4, 1, 0 }, 4 },       /* ext inside an array */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(pack_check(bad[i].b, bad[i].len, PACK_MAX_DEPTH, NULL), -EBADMSG,
		    "case %zu", i);
}

/* ---- pack_doc_parse ------------------------------------------------------- */

Test(pack, parse_accepts_a_map_and_points_into_the_buffer)
{
	const msgpack_object *m, *v;

	msgpack_pack_map(&B.pk, 2);
	pack_kv_str(&B.pk, "name", "web");
	pack_kv_uint(&B.pk, "n", 5);
	m = parse_ok();
	cr_assert_eq(m->type, MSGPACK_OBJECT_MAP);
	v = pack_map_get(m, "name");
	cr_assert_not_null(v);
	cr_assert_eq(v->type, MSGPACK_OBJECT_STR);
	/* zero-copy: the string lives in the caller's buffer */
	cr_assert(v->via.str.ptr >= B.sbuf.data && v->via.str.ptr < B.sbuf.data + B.sbuf.size);
	cr_assert_null(pack_map_get(m, "nam"));
	cr_assert_null(pack_map_get(m, "names"));
}

Test(pack, parse_rejects_empty_truncated_and_garbage)
{
	static const uint8_t trunc[] = { 0x82, 0xa1, 'a', 0x01, 0xa1 };
	static const uint8_t garbage[] = { 0xc1, 0xc1, 0xc1, 0xc1 };

	cr_assert_eq(parse_raw("", 0), -EBADMSG);
	cr_assert_eq(parse_raw(trunc, sizeof(trunc)), -EBADMSG);
	cr_assert_str_eq(E.code, PROTO_E_BAD_FRAME);
	cr_assert_eq(parse_raw(garbage, sizeof(garbage)), -EBADMSG);
	cr_assert_str_eq(E.code, PROTO_E_BAD_FRAME);
}

Test(pack, parse_rejects_trailing_bytes)
{
	msgpack_pack_map(&B.pk, 0);
	msgpack_pack_nil(&B.pk);
	cr_assert_eq(parse(), -EBADMSG);
	cr_assert_str_eq(E.code, PROTO_E_BAD_FRAME);
	assert_err_names("trailing");
}

Test(pack, parse_rejects_non_map_root)
{
	msgpack_pack_array(&B.pk, 1);
	msgpack_pack_uint8(&B.pk, 1);
	cr_assert_eq(parse(), -EBADMSG);
	assert_err_names("map");
	pack_buf_reset(&B);
	pack_cstr(&B.pk, "hello");
	cr_assert_eq(parse(), -EBADMSG);
}

Test(pack, parse_rejects_nesting_deeper_than_max)
{
	uint8_t buf[64];

	/* map {"a": [[...]]}: the root counts as one level */
	buf[0] = 0x81;
	buf[1] = 0xa1;
	buf[2] = 'a';
	nested_arrays(buf + 3, PACK_MAX_DEPTH - 1);
	cr_assert_eq(parse_raw(buf, 3 + PACK_MAX_DEPTH - 1), 0, "%s", E.message);
	pack_doc_deinit(&D);
	pack_doc_init(&D);
	nested_arrays(buf + 3, PACK_MAX_DEPTH);
	cr_assert_eq(parse_raw(buf, 3 + PACK_MAX_DEPTH), -EBADMSG);
}

Test(pack, parse_rejects_ext_values)
{
	static const uint8_t ext[] = { 0x81, 0xa1, 'x', 0xd4, 0x01, 0x00 };

	cr_assert_eq(parse_raw(ext, sizeof(ext)), -EBADMSG);
}

Test(pack, parse_rejects_duplicate_keys)
{
	msgpack_pack_map(&B.pk, 3);
	pack_kv_uint(&B.pk, "id", 1);
	pack_kv_str(&B.pk, "type", "ping");
	pack_kv_uint(&B.pk, "id", 2);
	cr_assert_eq(parse(), -EBADMSG);
	assert_err_names("duplicate");
	assert_err_names("\"id\"");
}

Test(pack, parse_limits_the_number_of_fields)
{
	char key[16];

	msgpack_pack_map(&B.pk, PACK_MAX_FIELDS);
	for (int i = 0; i < PACK_MAX_FIELDS; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		pack_kv_uint(&B.pk, key, (uint64_t)i);
	}
	parse_ok();

	pack_buf_reset(&B);
	msgpack_pack_map(&B.pk, PACK_MAX_FIELDS + 1);
	for (int i = 0; i < PACK_MAX_FIELDS + 1; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		pack_kv_uint(&B.pk, key, (uint64_t)i);
	}
	cr_assert_eq(parse(), -EBADMSG);
	assert_err_names("fields");
}

Test(pack, parse_rejects_non_string_keys)
{
	msgpack_pack_map(&B.pk, 2);
	pack_kv_uint(&B.pk, "id", 1);
	msgpack_pack_uint8(&B.pk, 7);
	msgpack_pack_true(&B.pk);
	cr_assert_eq(parse(), -EBADMSG);
	assert_err_names("keys");

	/* a binary key is not a string either */
	pack_buf_reset(&B);
	msgpack_pack_map(&B.pk, 1);
	pack_bin(&B.pk, "id", 2);
	msgpack_pack_true(&B.pk);
	cr_assert_eq(parse(), -EBADMSG);
}

Test(pack, doc_alloc_returns_usable_memory)
{
	char *p;

	msgpack_pack_map(&B.pk, 0);
	parse_ok();
	p = pack_doc_alloc(&D, 100);
	cr_assert_not_null(p);
	memset(p, 'x', 100);
	cr_assert_not_null(pack_doc_alloc(&D, 0));
}

/* ---- getters -------------------------------------------------------------- */

Test(pack, get_uint_checks_presence_type_and_range)
{
	const msgpack_object *m;
	uint64_t v = 99;

	msgpack_pack_map(&B.pk, 5);
	pack_kv_uint(&B.pk, "a", 10);
	pack_kv_int(&B.pk, "neg", -1);
	pack_kv_str(&B.pk, "s", "10");
	pack_kv_nil(&B.pk, "nil");
	pack_kv_uint(&B.pk, "big", UINT64_MAX);
	m = parse_ok();

	cr_assert_eq(pack_get_uint(m, "a", true, 0, 100, &v, &E), 1);
	cr_assert_eq(v, 10);
	cr_assert_eq(pack_get_uint(m, "big", true, 0, UINT64_MAX, &v, &E), 1);
	cr_assert_eq(v, UINT64_MAX);
	/* bounds are inclusive */
	cr_assert_eq(pack_get_uint(m, "a", true, 10, 10, &v, &E), 1);

	v = 99;
	cr_assert_eq(pack_get_uint(m, "missing", false, 0, 100, &v, &E), 0);
	cr_assert_eq(v, 99, "an absent field must leave the output alone");
	cr_assert_eq(pack_get_uint(m, "nil", false, 0, 100, &v, &E), 0, "nil counts as absent");

	cr_assert_eq(pack_get_uint(m, "missing", true, 0, 100, &v, &E), -EINVAL);
	cr_assert_str_eq(E.code, PROTO_E_BAD_REQUEST);
	assert_err_names("\"missing\"");
	cr_assert_eq(pack_get_uint(m, "nil", true, 0, 100, &v, &E), -EINVAL);
	assert_err_names("\"nil\"");
	cr_assert_eq(pack_get_uint(m, "neg", false, 0, 100, &v, &E), -EINVAL);
	assert_err_names("\"neg\"");
	cr_assert_eq(pack_get_uint(m, "s", false, 0, 100, &v, &E), -EINVAL);
	assert_err_names("\"s\"");
	cr_assert_eq(pack_get_uint(m, "a", false, 11, 100, &v, &E), -EINVAL);
	assert_err_names("\"a\"");
	cr_assert_eq(pack_get_uint(m, "a", false, 0, 9, &v, &E), -EINVAL);
	assert_err_names("\"a\"");
}

Test(pack, get_int_accepts_both_signs_within_range)
{
	const msgpack_object *m;
	int64_t v = 0;

	msgpack_pack_map(&B.pk, 5);
	pack_kv_int(&B.pk, "neg", -20);
	pack_kv_uint(&B.pk, "pos", 19);
	pack_kv_uint(&B.pk, "huge", UINT64_MAX);
	pack_kv_int(&B.pk, "min", INT64_MIN);
	pack_kv_bool(&B.pk, "b", true);
	m = parse_ok();

	cr_assert_eq(pack_get_int(m, "neg", true, -20, 19, &v, &E), 1);
	cr_assert_eq(v, -20);
	cr_assert_eq(pack_get_int(m, "pos", true, -20, 19, &v, &E), 1);
	cr_assert_eq(v, 19);
	cr_assert_eq(pack_get_int(m, "min", true, INT64_MIN, 0, &v, &E), 1);
	cr_assert_eq(v, INT64_MIN);
	cr_assert_eq(pack_get_int(m, "neg", true, -19, 19, &v, &E), -EINVAL);
	assert_err_names("\"neg\"");
	cr_assert_eq(pack_get_int(m, "pos", true, -20, 18, &v, &E), -EINVAL);
	assert_err_names("\"pos\"");
	cr_assert_eq(pack_get_int(m, "huge", true, INT64_MIN, INT64_MAX, &v, &E), -EINVAL);
	assert_err_names("\"huge\"");
	cr_assert_eq(pack_get_int(m, "b", true, INT64_MIN, INT64_MAX, &v, &E), -EINVAL);
	assert_err_names("\"b\"");
	cr_assert_eq(pack_get_int(m, "none", false, 0, 1, &v, &E), 0);
	cr_assert_eq(pack_get_int(m, "none", true, 0, 1, &v, &E), -EINVAL);
	assert_err_names("\"none\"");
}

Test(pack, get_bool_requires_a_boolean)
{
	const msgpack_object *m;
	bool v = false;

	msgpack_pack_map(&B.pk, 2);
	pack_kv_bool(&B.pk, "t", true);
	pack_kv_uint(&B.pk, "one", 1);
	m = parse_ok();
	cr_assert_eq(pack_get_bool(m, "t", true, &v, &E), 1);
	cr_assert(v);
	cr_assert_eq(pack_get_bool(m, "one", false, &v, &E), -EINVAL);
	assert_err_names("\"one\"");
	cr_assert_eq(pack_get_bool(m, "x", false, &v, &E), 0);
	cr_assert_eq(pack_get_bool(m, "x", true, &v, &E), -EINVAL);
	assert_err_names("\"x\"");
}

Test(pack, get_str_applies_flags)
{
	const msgpack_object *m;
	struct proto_bytes s;

	msgpack_pack_map(&B.pk, 7);
	pack_kv_str(&B.pk, "s", "hello");
	pack_key(&B.pk, "bin");
	pack_bin(&B.pk, "\xff\xfe", 2);
	pack_key(&B.pk, "nul");
	msgpack_pack_str(&B.pk, 3);
	msgpack_pack_str_body(&B.pk, "a\0b", 3);
	pack_kv_str(&B.pk, "empty", "");
	pack_key(&B.pk, "badutf8");
	msgpack_pack_str(&B.pk, 2);
	msgpack_pack_str_body(&B.pk, "\xc3\x28", 2);
	pack_kv_uint(&B.pk, "int", 3);
	pack_key(&B.pk, "utf8");
	msgpack_pack_str(&B.pk, 2);
	msgpack_pack_str_body(&B.pk, "\xc3\xa9", 2);
	m = parse_ok();

	cr_assert_eq(pack_get_str(m, "s", true, 5, PACK_STR_UTF8 | PACK_STR_NONUL | PACK_STR_NONEMPTY,
	    &s, &E), 1);
	cr_assert_eq(s.len, 5);
	cr_assert_arr_eq(s.ptr, "hello", 5);
	cr_assert_eq(pack_get_str(m, "utf8", true, 16, PACK_STR_UTF8, &s, &E), 1);

	/* maxlen */
	cr_assert_eq(pack_get_str(m, "s", true, 4, 0, &s, &E), -EINVAL);
	assert_err_names("\"s\"");
	/* bin is a string unless UTF-8 is required */
	cr_assert_eq(pack_get_str(m, "bin", true, 16, 0, &s, &E), 1);
	cr_assert_eq(s.len, 2);
	cr_assert_eq(pack_get_str(m, "bin", true, 16, PACK_STR_UTF8, &s, &E), -EINVAL);
	assert_err_names("\"bin\"");
	/* NUL */
	cr_assert_eq(pack_get_str(m, "nul", true, 16, 0, &s, &E), 1);
	cr_assert_eq(s.len, 3);
	cr_assert_eq(pack_get_str(m, "nul", true, 16, PACK_STR_NONUL, &s, &E), -EINVAL);
	assert_err_names("\"nul\"");
	/* empty */
	cr_assert_eq(pack_get_str(m, "empty", true, 16, 0, &s, &E), 1);
	cr_assert_eq(s.len, 0);
	cr_assert_not_null(s.ptr);
	cr_assert_eq(pack_get_str(m, "empty", true, 16, PACK_STR_NONEMPTY, &s, &E), -EINVAL);
	assert_err_names("\"empty\"");
	/* invalid UTF-8 in a str */
	cr_assert_eq(pack_get_str(m, "badutf8", true, 16, 0, &s, &E), 1);
	cr_assert_eq(pack_get_str(m, "badutf8", true, 16, PACK_STR_UTF8, &s, &E), -EINVAL);
	assert_err_names("\"badutf8\"");
	/* wrong type, absent */
	cr_assert_eq(pack_get_str(m, "int", true, 16, 0, &s, &E), -EINVAL);
	assert_err_names("\"int\"");
	cr_assert_eq(pack_get_str(m, "nope", false, 16, 0, &s, &E), 0);
	cr_assert_eq(pack_get_str(m, "nope", true, 16, 0, &s, &E), -EINVAL);
	assert_err_names("\"nope\"");
}

Test(pack, get_str_array_checks_every_item_and_limits)
{
	const msgpack_object *m;
	struct proto_bytes *v = NULL;
	size_t n = 0;

	msgpack_pack_map(&B.pk, 4);
	pack_key(&B.pk, "ok");
	msgpack_pack_array(&B.pk, 3);
	pack_cstr(&B.pk, "a");
	pack_bin(&B.pk, "\xff", 1);
	pack_cstr(&B.pk, "ccc");
	pack_key(&B.pk, "withnul");
	msgpack_pack_array(&B.pk, 2);
	pack_cstr(&B.pk, "fine");
	msgpack_pack_str(&B.pk, 2);
	msgpack_pack_str_body(&B.pk, "\0x", 2);
	pack_key(&B.pk, "notarr");
	pack_cstr(&B.pk, "a");
	pack_key(&B.pk, "mixed");
	msgpack_pack_array(&B.pk, 2);
	pack_cstr(&B.pk, "a");
	msgpack_pack_uint8(&B.pk, 1);
	m = parse_ok();

	cr_assert_eq(pack_get_str_array(&D, m, "ok", true, 3, 3, 100, 0, &v, &n, &E), 1);
	cr_assert_eq(n, 3);
	cr_assert_eq(v[0].len, 1);
	cr_assert_eq(v[1].len, 1);
	cr_assert_eq((uint8_t)v[1].ptr[0], 0xff);
	cr_assert_eq(v[2].len, 3);

	cr_assert_eq(pack_get_str_array(&D, m, "ok", true, 2, 3, 100, 0, &v, &n, &E), -EINVAL);
	assert_err_names("\"ok\"");
	cr_assert_eq(pack_get_str_array(&D, m, "ok", true, 3, 2, 100, 0, &v, &n, &E), -EINVAL);
	assert_err_names("ok[2]");
	/* total bytes: each item counts its length plus a terminator */
	cr_assert_eq(pack_get_str_array(&D, m, "ok", true, 3, 3, 8, 0, &v, &n, &E), 1);
	cr_assert_eq(pack_get_str_array(&D, m, "ok", true, 3, 3, 7, 0, &v, &n, &E), -EINVAL);
	assert_err_names("\"ok\"");
	cr_assert_eq(pack_get_str_array(&D, m, "ok", true, 3, 3, 100, PACK_STR_UTF8, &v, &n, &E),
	    -EINVAL);
	assert_err_names("ok[1]");
	cr_assert_eq(pack_get_str_array(&D, m, "withnul", true, 9, 9, 100, PACK_STR_NONUL, &v, &n,
	    &E), -EINVAL);
	assert_err_names("withnul[1]");
	cr_assert_eq(pack_get_str_array(&D, m, "notarr", true, 9, 9, 100, 0, &v, &n, &E), -EINVAL);
	assert_err_names("\"notarr\"");
	cr_assert_eq(pack_get_str_array(&D, m, "mixed", true, 9, 9, 100, 0, &v, &n, &E), -EINVAL);
	assert_err_names("mixed[1]");
	cr_assert_eq(pack_get_str_array(&D, m, "none", false, 9, 9, 100, 0, &v, &n, &E), 0);
	cr_assert_eq(pack_get_str_array(&D, m, "none", true, 9, 9, 100, 0, &v, &n, &E), -EINVAL);
	assert_err_names("\"none\"");
}

/* ---- UTF-8 ------------------------------------------------------------------ */

Test(pack, utf8_accepts_valid_sequences)
{
	static const char *ok[] = {
		"",
		"plain ascii",
		"\xc3\xa9",         /* U+00E9 */
		"\xe2\x82\xac",     /* U+20AC */
		"\xef\xbf\xbf",     /* U+FFFF */
		"\xf0\x9f\x98\x80", /* U+1F600 */
		"\xf4\x8f\xbf\xbf", /* U+10FFFF */
		"\xed\x9f\xbf",     /* U+D7FF, just below the surrogates */
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_assert(pack_utf8_valid(ok[i], strlen(ok[i])), "case %zu", i);
	cr_assert(pack_utf8_valid("a\0b", 3), "NUL is valid UTF-8");
}

Test(pack, utf8_rejects_invalid_sequences)
{
	static const char *bad[] = {
		"\x80",             /* lone continuation */
		"\xc3",             /* truncated 2-byte */
		"\xe2\x82",         /* truncated 3-byte */
		"\xf0\x9f\x98",     /* truncated 4-byte */
		"\xc3\x28",         /* bad continuation */
		"\xc0\x80",         /* overlong NUL */
		"\xc1\xbf",         /* overlong */
		"\xe0\x80\xaf",     /* overlong 3-byte */
		"\xf0\x80\x80\xaf", /* overlong 4-byte */
		"\xed\xa0\x80",     /* surrogate U+D800 */
		"\xed\xbf\xbf",     /* surrogate U+DFFF */
		"\xf4\x90\x80\x80", /* U+110000 */
		"\xf5\x80\x80\x80", /* invalid lead */
		"\xf8\x88\x80\x80\x80",
		"\xff",
		"ok\xe2\x82",       /* truncated at the end of valid text */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(pack_utf8_valid(bad[i], strlen(bad[i])), "case %zu", i);
	/* the length bounds the check: a sequence cut by len is invalid */
	cr_assert_not(pack_utf8_valid("\xe2\x82\xac", 2));
	cr_assert(pack_utf8_valid("\xe2\x82\xac", 3));
}

/* ---- writers ------------------------------------------------------------- */

Test(pack, writers_round_trip_through_the_parser)
{
	const msgpack_object *m, *o;
	struct proto_bytes s;
	uint64_t u;
	int64_t i;
	bool b;

	msgpack_pack_map(&B.pk, 7);
	pack_kv_uint(&B.pk, "u", 1ULL << 40);
	pack_kv_int(&B.pk, "i", -5);
	pack_kv_bool(&B.pk, "b", true);
	pack_kv_str(&B.pk, "s", "text");
	pack_kv_str(&B.pk, "null", NULL);
	pack_kv_nil(&B.pk, "n");
	pack_key(&B.pk, "raw");
	pack_bin(&B.pk, "ab", 2);
	m = parse_ok();

	cr_assert_eq(pack_get_uint(m, "u", true, 0, UINT64_MAX, &u, &E), 1);
	cr_assert_eq(u, 1ULL << 40);
	cr_assert_eq(pack_get_int(m, "i", true, INT64_MIN, INT64_MAX, &i, &E), 1);
	cr_assert_eq(i, -5);
	cr_assert_eq(pack_get_bool(m, "b", true, &b, &E), 1);
	cr_assert(b);
	cr_assert_eq(pack_get_str(m, "s", true, 16, PACK_STR_UTF8, &s, &E), 1);
	cr_assert_eq(s.len, 4);
	cr_assert_arr_eq(s.ptr, "text", 4);
	o = pack_map_get(m, "null");
	cr_assert_not_null(o);
	cr_assert_eq(o->type, MSGPACK_OBJECT_NIL, "a NULL string is written as nil");
	o = pack_map_get(m, "n");
	cr_assert_not_null(o);
	cr_assert_eq(o->type, MSGPACK_OBJECT_NIL);
	o = pack_map_get(m, "raw");
	cr_assert_not_null(o);
	cr_assert_eq(o->type, MSGPACK_OBJECT_BIN);
}

Test(pack, bytes_are_text_when_utf8_and_binary_otherwise)
{
	const msgpack_object *m, *o;

	msgpack_pack_map(&B.pk, 3);
	pack_key(&B.pk, "text");
	pack_bytes(&B.pk, "h\xc3\xa9", 3);
	pack_key(&B.pk, "raw");
	pack_bytes(&B.pk, "\xff\x00", 2);
	pack_key(&B.pk, "empty");
	pack_bytes(&B.pk, "", 0);
	m = parse_ok();
	o = pack_map_get(m, "text");
	cr_assert_eq(o->type, MSGPACK_OBJECT_STR);
	cr_assert_eq(o->via.str.size, 3);
	o = pack_map_get(m, "raw");
	cr_assert_eq(o->type, MSGPACK_OBJECT_BIN);
	cr_assert_eq(o->via.bin.size, 2);
	cr_assert_arr_eq(o->via.bin.ptr, "\xff\x00", 2);
	o = pack_map_get(m, "empty");
	cr_assert_eq(o->type, MSGPACK_OBJECT_STR);
	cr_assert_eq(o->via.str.size, 0);
}

Test(pack, buf_steal_hands_over_bytes_and_resets)
{
	char *p;
	size_t len = 0;
	struct pack_doc d2;

	msgpack_pack_map(&B.pk, 1);
	pack_kv_uint(&B.pk, "a", 1);
	p = pack_buf_steal(&B, &len);
	cr_assert_not_null(p);
	cr_assert_eq(len, 4);
	cr_assert_eq(B.sbuf.size, 0);
	pack_doc_init(&d2);
	cr_assert_eq(pack_doc_parse(&d2, p, len, &E), 0);
	pack_doc_deinit(&d2);
	free(p);

	/* the buffer is usable again */
	msgpack_pack_map(&B.pk, 0);
	cr_assert_eq(B.sbuf.size, 1);
	pack_buf_reset(&B);
	cr_assert_eq(B.sbuf.size, 0);
}

Test(pack, error_set_formats_code_and_message)
{
	cr_assert_eq(proto_error_set(&E, "some_code", "field \"%s\" is %d", "x", 42), -EINVAL);
	cr_assert_str_eq(E.code, "some_code");
	cr_assert_str_eq(E.message, "field \"x\" is 42");
	cr_assert_eq(proto_error_set(NULL, "c", "m"), -EINVAL);
}
