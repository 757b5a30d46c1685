/*
 * frame.h: the client <-> heidid framing: a uint32 little-endian length
 * followed by that many bytes holding exactly one msgpack map.
 *
 * The reader is incremental: bytes may arrive split or coalesced at any
 * point.  The declared length is checked against the maximum before a
 * single byte is allocated for the payload, and the payload buffer grows
 * only as its bytes actually arrive, so a peer that declares a large
 * frame and stalls holds at most 256 KiB more than it has sent.
 */
#ifndef HEIDI_PROTO_FRAME_H
#define HEIDI_PROTO_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FRAME_HEADER 4
#define FRAME_MAX (4u * 1024 * 1024) /* payload bytes */

enum {
	FRAME_E_AGAIN = 1, /* need more bytes */
	FRAME_E_EOF,       /* clean end of stream between frames */
};

struct frame_reader {
	uint8_t *buf;
	size_t start; /* first unconsumed byte */
	size_t end;   /* one past the last byte read */
	size_t cap;
	size_t max;   /* maximum payload accepted */
	int eof;
};

void frame_reader_init(struct frame_reader *r, size_t max);
void frame_reader_deinit(struct frame_reader *r);

/* Append bytes (as if read from a socket).  0 or -ENOMEM. */
int frame_reader_push(struct frame_reader *r, const void *data, size_t len);
/* read(2) once from fd into the reader: bytes read (>0), 0 at EOF, -errno (-EAGAIN). */
ssize_t frame_reader_fill(struct frame_reader *r, int fd);
/*
 * The same with recvmsg(2): fds passed with the bytes (SCM_RIGHTS) are
 * stored in fds (at most max_fds, close-on-exec); *lostp is set when fds
 * were dropped (more than max_fds, or no room in this process).
 */
ssize_t frame_reader_fill_fds(struct frame_reader *r, int fd, int *fds, size_t max_fds,
    size_t *n_fdsp, bool *lostp);

/*
 * Next complete frame: 0 and the payload (valid until the next call on r),
 * FRAME_E_AGAIN, FRAME_E_EOF after a clean end, -EMSGSIZE for an oversize
 * or zero length, -EPIPE for EOF inside a frame.
 */
int frame_reader_next(struct frame_reader *r, const uint8_t **payloadp, size_t *lenp);
/* Bytes buffered but not yet returned as frames. */
size_t frame_reader_pending(const struct frame_reader *r);

/* Write the 4-byte header for a payload of len bytes. */
void frame_header_put(uint8_t hdr[FRAME_HEADER], uint32_t len);

#endif
