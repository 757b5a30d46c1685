/*
 * pack.c: validated msgpack decoding and small encoding helpers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/pack.h"

int
proto_error_set(struct proto_error *err, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -EINVAL;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- structural pre-check ---------------------------------------------- */

struct cursor {
	const uint8_t *p;
	size_t left;
};

static int
cur_take(struct cursor *c, size_t n, const uint8_t **out)
{
	if (c->left < n)
		return -EBADMSG;
	if (out != NULL)
		*out = c->p;
	c->p += n;
	c->left -= n;
	return 0;
}

static uint64_t
be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static int check_obj(struct cursor *c, int depth);

static int
check_items(struct cursor *c, uint64_t n, int depth)
{
	/* Every element takes at least one byte: a count larger than the
	 * remaining input is a lie, caught before msgpack-c allocates. */
	if (n > c->left)
		return -EBADMSG;
	for (uint64_t i = 0; i < n; i++)
		if (check_obj(c, depth) < 0)
			return -EBADMSG;
	return 0;
}

static int
check_obj(struct cursor *c, int depth)
{
	const uint8_t *t, *q;
	uint8_t b;

	if (depth <= 0 || cur_take(c, 1, &t) < 0)
		return -EBADMSG;
	b = *t;
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
		return 0;
	if ((b & 0xe0) == 0xa0)
		return cur_take(c, b & 0x1f, NULL);
	if ((b & 0xf0) == 0x90)
		return check_items(c, b & 0x0f, depth - 1);
	if ((b & 0xf0) == 0x80)
		return check_items(c, (uint64_t)(b & 0x0f) * 2, depth - 1);
	switch (b) {
	case 0xcc: case 0xd0: return cur_take(c, 1, NULL);
	case 0xcd: case 0xd1: return cur_take(c, 2, NULL);
	case 0xce: case 0xd2: case 0xca: return cur_take(c, 4, NULL);
	case 0xcf: case 0xd3: case 0xcb: return cur_take(c, 8, NULL);
	case 0xc4: case 0xd9:
		if (cur_take(c, 1, &q) < 0)
			return -EBADMSG;
		return cur_take(c, be(q, 1), NULL);
	case 0xc5: case 0xda:
		if (cur_take(c, 2, &q) < 0)
			return -EBADMSG;
		return cur_take(c, be(q, 2), NULL);
	case 0xc6: case 0xdb:
		if (cur_take(c, 4, &q) < 0)
			return -EBADMSG;
		return cur_take(c, be(q, 4), NULL);
	case 0xdc:
		if (cur_take(c, 2, &q) < 0)
			return -EBADMSG;
		return check_items(c, be(q, 2), depth - 1);
	case 0xdd:
		if (cur_take(c, 4, &q) < 0)
			return -EBADMSG;
		return check_items(c, be(q, 4), depth - 1);
	case 0xde:
		if (cur_take(c, 2, &q) < 0)
			return -EBADMSG;
		return check_items(c, be(q, 2) * 2, depth - 1);
	case 0xdf:
		if (cur_take(c, 4, &q) < 0)
			return -EBADMSG;
		return check_items(c, be(q, 4) * 2, depth - 1);
	default:
		/* 0xc1 (never used) and the ext family: not part of heidi's format */
		return -EBADMSG;
	}
}

int
pack_check(const void *buf, size_t len, int max_depth, size_t *usedp)
{
	struct cursor c = { .p = buf, .left = len };

	if (check_obj(&c, max_depth) < 0)
		return -EBADMSG;
	if (usedp != NULL)
		*usedp = len - c.left;
	return 0;
}

/* ---- documents ----------------------------------------------------------- */

void
pack_doc_init(struct pack_doc *doc)
{
	msgpack_unpacked_init(&doc->unpacked);
	doc->root = NULL;
}

void
pack_doc_deinit(struct pack_doc *doc)
{
	msgpack_unpacked_destroy(&doc->unpacked);
	doc->root = NULL;
}

static bool
obj_is_str(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_STR;
}

int
pack_doc_parse(struct pack_doc *doc, const void *buf, size_t len, struct proto_error *err)
{
	const msgpack_object_map *m;
	size_t used = 0, off = 0;
	msgpack_unpack_return ur;

	if (len == 0 || pack_check(buf, len, PACK_MAX_DEPTH, &used) < 0)
		return proto_error_set(err, PROTO_E_BAD_FRAME, "payload is not valid msgpack"),
		       -EBADMSG;
	if (used != len)
		return proto_error_set(err, PROTO_E_BAD_FRAME,
			   "%zu trailing bytes after the message", len - used),
		       -EBADMSG;
	ur = msgpack_unpack_next(&doc->unpacked, buf, len, &off);
	if (ur != MSGPACK_UNPACK_SUCCESS || off != len)
		return proto_error_set(err, PROTO_E_BAD_FRAME, "payload is not valid msgpack"),
		       -EBADMSG;
	if (doc->unpacked.data.type != MSGPACK_OBJECT_MAP)
		return proto_error_set(err, PROTO_E_BAD_FRAME, "message is not a map"), -EBADMSG;
	m = &doc->unpacked.data.via.map;
	if (m->size > PACK_MAX_FIELDS)
		return proto_error_set(err, PROTO_E_BAD_REQUEST, "too many fields (%u, at most %d)",
			   m->size, PACK_MAX_FIELDS),
		       -EBADMSG;
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *k = &m->ptr[i].key;

		if (!obj_is_str(k))
			return proto_error_set(err, PROTO_E_BAD_REQUEST, "map keys must be strings"),
			       -EBADMSG;
		for (uint32_t j = 0; j < i; j++) {
			const msgpack_object *k2 = &m->ptr[j].key;

			/* msgpack-c gives an empty string a NULL pointer: no memcmp on it */
			if (k2->via.str.size == k->via.str.size &&
			    (k->via.str.size == 0 ||
				memcmp(k2->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0))
				return proto_error_set(err, PROTO_E_BAD_REQUEST,
					   "duplicate key \"%.*s\"", (int)(k->via.str.size > 64 ? 64 : k->via.str.size),
					   k->via.str.size ? k->via.str.ptr : ""),
				       -EBADMSG;
		}
	}
	doc->root = &doc->unpacked.data;
	return 0;
}

void *
pack_doc_alloc(struct pack_doc *doc, size_t size)
{
	return msgpack_zone_malloc(doc->unpacked.zone, size ? size : 1);
}

bool
pack_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p, *end;

	if (len == 0)
		return true; /* s may be NULL: NULL + 0 is undefined */
	p = (const unsigned char *)s;
	end = p + len;
	while (p < end) {
		unsigned char c = *p;
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			p++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else
			return false;
		if ((size_t)(end - p) <= n)
			return false;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		p += n + 1;
	}
	return true;
}

const msgpack_object *
pack_map_get(const msgpack_object *map, const char *key)
{
	size_t klen = strlen(key);

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;

		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
		    memcmp(k->via.str.ptr, key, klen) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

static int
missing(bool required, const char *key, struct proto_error *err)
{
	if (required)
		return proto_error_set(err, PROTO_E_BAD_REQUEST, "missing field \"%s\"", key);
	return 0;
}

int
pack_get_uint(const msgpack_object *map, const char *key, bool required, uint64_t min,
    uint64_t max, uint64_t *out, struct proto_error *err)
{
	const msgpack_object *o = pack_map_get(map, key);

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return missing(required, key, err);
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "field \"%s\" must be a non-negative integer", key);
	if (o->via.u64 < min || o->via.u64 > max)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "field \"%s\" is out of range (%llu..%llu)", key, (unsigned long long)min,
		    (unsigned long long)max);
	*out = o->via.u64;
	return 1;
}

int
pack_get_int(const msgpack_object *map, const char *key, bool required, int64_t min,
    int64_t max, int64_t *out, struct proto_error *err)
{
	const msgpack_object *o = pack_map_get(map, key);
	int64_t v;

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return missing(required, key, err);
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > INT64_MAX)
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "field \"%s\" is out of range (%lld..%lld)", key, (long long)min,
			    (long long)max);
		v = (int64_t)o->via.u64;
	} else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		v = o->via.i64;
	else
		return proto_error_set(err, PROTO_E_BAD_REQUEST, "field \"%s\" must be an integer",
		    key);
	if (v < min || v > max)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "field \"%s\" is out of range (%lld..%lld)", key, (long long)min,
		    (long long)max);
	*out = v;
	return 1;
}

int
pack_get_bool(const msgpack_object *map, const char *key, bool required, bool *out,
    struct proto_error *err)
{
	const msgpack_object *o = pack_map_get(map, key);

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return missing(required, key, err);
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return proto_error_set(err, PROTO_E_BAD_REQUEST, "field \"%s\" must be a boolean",
		    key);
	*out = o->via.boolean;
	return 1;
}

static int
check_str(const msgpack_object *o, const char *key, size_t maxlen, unsigned flags,
    struct proto_bytes *out, struct proto_error *err)
{
	const char *p;
	size_t len;

	if (o->type == MSGPACK_OBJECT_STR) {
		p = o->via.str.ptr;
		len = o->via.str.size;
	} else if (o->type == MSGPACK_OBJECT_BIN && !(flags & PACK_STR_UTF8)) {
		p = o->via.bin.ptr;
		len = o->via.bin.size;
	} else
		return proto_error_set(err, PROTO_E_BAD_REQUEST, "field \"%s\" must be a %s", key,
		    flags & PACK_STR_UTF8 ? "string" : "string or binary");
	if (len > maxlen)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "field \"%s\" is too long (%zu bytes, at most %zu)", key, len, maxlen);
	if ((flags & PACK_STR_NONEMPTY) && len == 0)
		return proto_error_set(err, PROTO_E_BAD_REQUEST, "field \"%s\" must not be empty",
		    key);
	if ((flags & PACK_STR_NONUL) && memchr(p, '\0', len) != NULL)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "field \"%s\" must not contain NUL bytes", key);
	if ((flags & PACK_STR_UTF8) && !pack_utf8_valid(p, len))
		return proto_error_set(err, PROTO_E_BAD_REQUEST, "field \"%s\" is not valid UTF-8",
		    key);
	out->ptr = len ? p : "";
	out->len = len;
	return 1;
}

int
pack_get_str(const msgpack_object *map, const char *key, bool required, size_t maxlen,
    unsigned flags, struct proto_bytes *out, struct proto_error *err)
{
	const msgpack_object *o = pack_map_get(map, key);

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return missing(required, key, err);
	return check_str(o, key, maxlen, flags, out, err);
}

int
pack_get_str_array(struct pack_doc *doc, const msgpack_object *map, const char *key,
    bool required, size_t max_items, size_t max_item, size_t max_total, unsigned flags,
    struct proto_bytes **out, size_t *n_out, struct proto_error *err)
{
	const msgpack_object *o = pack_map_get(map, key);
	struct proto_bytes *v;
	size_t total = 0;

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return missing(required, key, err);
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return proto_error_set(err, PROTO_E_BAD_REQUEST, "field \"%s\" must be an array",
		    key);
	if (o->via.array.size > max_items)
		return proto_error_set(err, PROTO_E_BAD_REQUEST,
		    "field \"%s\" has too many items (%u, at most %zu)", key, o->via.array.size,
		    max_items);
	v = pack_doc_alloc(doc, sizeof(*v) * (o->via.array.size + 1));
	if (v == NULL)
		return proto_error_set(err, "no_memory", "out of memory");
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		char ikey[96];
		int r;

		snprintf(ikey, sizeof(ikey), "%s[%u]", key, i);
		r = check_str(&o->via.array.ptr[i], ikey, max_item, flags, &v[i], err);
		if (r < 0)
			return r;
		total += v[i].len + 1;
		if (total > max_total)
			return proto_error_set(err, PROTO_E_BAD_REQUEST,
			    "field \"%s\" is too large (more than %zu bytes in all)", key, max_total);
	}
	*out = v;
	*n_out = o->via.array.size;
	return 1;
}

/* ---- writers ------------------------------------------------------------- */

void
pack_buf_init(struct pack_buf *b)
{
	msgpack_sbuffer_init(&b->sbuf);
	msgpack_packer_init(&b->pk, &b->sbuf, msgpack_sbuffer_write);
}

void
pack_buf_deinit(struct pack_buf *b)
{
	msgpack_sbuffer_destroy(&b->sbuf);
	pack_buf_init(b);
}

void
pack_buf_reset(struct pack_buf *b)
{
	msgpack_sbuffer_clear(&b->sbuf);
}

char *
pack_buf_steal(struct pack_buf *b, size_t *lenp)
{
	char *p;

	*lenp = b->sbuf.size;
	p = msgpack_sbuffer_release(&b->sbuf);
	return p;
}

void
pack_key(msgpack_packer *pk, const char *key)
{
	pack_cstr(pk, key);
}

void
pack_cstr(msgpack_packer *pk, const char *s)
{
	size_t len = strlen(s);

	msgpack_pack_str(pk, len);
	msgpack_pack_str_body(pk, s, len);
}

void
pack_bin(msgpack_packer *pk, const void *p, size_t len)
{
	msgpack_pack_bin(pk, len);
	msgpack_pack_bin_body(pk, p, len);
}

void
pack_bytes(msgpack_packer *pk, const void *p, size_t len)
{
	if (pack_utf8_valid(p, len)) {
		msgpack_pack_str(pk, len);
		msgpack_pack_str_body(pk, p, len);
	} else
		pack_bin(pk, p, len);
}

void
pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t v)
{
	pack_key(pk, key);
	msgpack_pack_uint64(pk, v);
}

void
pack_kv_int(msgpack_packer *pk, const char *key, int64_t v)
{
	pack_key(pk, key);
	msgpack_pack_int64(pk, v);
}

void
pack_kv_bool(msgpack_packer *pk, const char *key, bool v)
{
	pack_key(pk, key);
	if (v)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

void
pack_kv_str(msgpack_packer *pk, const char *key, const char *s)
{
	pack_key(pk, key);
	if (s == NULL)
		msgpack_pack_nil(pk);
	else
		pack_cstr(pk, s);
}

void
pack_kv_nil(msgpack_packer *pk, const char *key)
{
	pack_key(pk, key);
	msgpack_pack_nil(pk);
}
