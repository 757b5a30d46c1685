/*
 * pack.h: msgpack helpers for heidi's wire format.
 *
 * Decoding: pack_doc_parse() first walks the bytes without allocating
 * (pack_check) so that a declared container size can never exceed what
 * the input can hold and nesting is bounded; only then does msgpack-c
 * build objects.  Strings and binaries of a parsed document point into
 * the caller's buffer, which must outlive the document.
 *
 * Field getters report the first problem in a struct proto_error that
 * names the field, so that every rejection reaches the user as one clear
 * line.
 */
#ifndef HEIDI_PROTO_PACK_H
#define HEIDI_PROTO_PACK_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PACK_MAX_DEPTH 8
#define PACK_MAX_FIELDS 64 /* keys in a message's top-level map */

struct proto_error {
	const char *code; /* stable machine-readable code, e.g. "bad_request" */
	char message[256];
};

/* A byte string pointing into a parsed document (not NUL-terminated). */
struct proto_bytes {
	const char *ptr;
	size_t len;
};

struct pack_doc {
	msgpack_unpacked unpacked;
	const msgpack_object *root; /* a map */
};

/* String checks for pack_get_str / pack_get_str_array. */
enum {
	PACK_STR_UTF8 = 1 << 0,   /* must be valid UTF-8 and a msgpack str */
	PACK_STR_NONUL = 1 << 1,  /* no NUL bytes (paths, argv, env) */
	PACK_STR_NONEMPTY = 1 << 2,
};

/* Error codes (also documented in docs/protocol.md). */
#define PROTO_E_BAD_FRAME "bad_frame"
#define PROTO_E_BAD_REQUEST "bad_request"

int proto_error_set(struct proto_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Structural check of exactly one object in buf[0..len).  0 or -EBADMSG. */
int pack_check(const void *buf, size_t len, int max_depth, size_t *usedp);

void pack_doc_init(struct pack_doc *doc);
void pack_doc_deinit(struct pack_doc *doc);
/* Parse buf as exactly one msgpack map.  0, or -EBADMSG with err set. */
int pack_doc_parse(struct pack_doc *doc, const void *buf, size_t len, struct proto_error *err);
/* Allocate from the document's zone (freed with the document). */
void *pack_doc_alloc(struct pack_doc *doc, size_t size);

bool pack_utf8_valid(const char *s, size_t len);

/* Map lookup by string key; NULL if absent.  Duplicate keys were rejected at parse. */
const msgpack_object *pack_map_get(const msgpack_object *map, const char *key);

/*
 * Typed getters.  Return 1 if the field was present and valid, 0 if
 * absent (an error if required), or -EINVAL with err set.
 */
int pack_get_uint(const msgpack_object *map, const char *key, bool required, uint64_t min,
    uint64_t max, uint64_t *out, struct proto_error *err);
int pack_get_int(const msgpack_object *map, const char *key, bool required, int64_t min,
    int64_t max, int64_t *out, struct proto_error *err);
int pack_get_bool(const msgpack_object *map, const char *key, bool required, bool *out,
    struct proto_error *err);
int pack_get_str(const msgpack_object *map, const char *key, bool required, size_t maxlen,
    unsigned flags, struct proto_bytes *out, struct proto_error *err);
/* An array of strings, each checked with flags; total bytes bounded by max_total. */
int pack_get_str_array(struct pack_doc *doc, const msgpack_object *map, const char *key,
    bool required, size_t max_items, size_t max_item, size_t max_total, unsigned flags,
    struct proto_bytes **out, size_t *n_out, struct proto_error *err);

/* Writers: a growable buffer with an optional reserved frame header. */
struct pack_buf {
	msgpack_sbuffer sbuf;
	msgpack_packer pk;
};

void pack_buf_init(struct pack_buf *b);
void pack_buf_deinit(struct pack_buf *b);
void pack_buf_reset(struct pack_buf *b);
/* Take ownership of the bytes (free() them); the buffer is reset. */
char *pack_buf_steal(struct pack_buf *b, size_t *lenp);

void pack_key(msgpack_packer *pk, const char *key);
void pack_cstr(msgpack_packer *pk, const char *s);
/* Text if valid UTF-8, else bin: what the protocol calls "bytes". */
void pack_bytes(msgpack_packer *pk, const void *p, size_t len);
void pack_bin(msgpack_packer *pk, const void *p, size_t len);
void pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t v);
void pack_kv_int(msgpack_packer *pk, const char *key, int64_t v);
void pack_kv_bool(msgpack_packer *pk, const char *key, bool v);
void pack_kv_str(msgpack_packer *pk, const char *key, const char *s);
void pack_kv_nil(msgpack_packer *pk, const char *key);

#endif
