/*
 * frame.c: incremental frame reader.
 *
 * Buffer layout: buf[start..end) holds unconsumed bytes.  A returned
 * payload points into buf and stays valid until the next call, which may
 * compact or grow the buffer.  When the buffer drains completely it is
 * released, so idle connections hold no read buffer at all.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/frame.h"

#define FRAME_READ_CHUNK 65536

void
frame_reader_init(struct frame_reader *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
}

void
frame_reader_deinit(struct frame_reader *r)
{
	free(r->buf);
	frame_reader_init(r, r->max);
}

size_t
frame_reader_pending(const struct frame_reader *r)
{
	return r->end - r->start;
}

static uint32_t
header_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void
frame_header_put(uint8_t hdr[FRAME_HEADER], uint32_t len)
{
	hdr[0] = (uint8_t)len;
	hdr[1] = (uint8_t)(len >> 8);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 24);
}

/* Make room for at least want more bytes, never beyond one maximal frame + chunk. */
static int
reserve(struct frame_reader *r, size_t want)
{
	size_t have = r->end - r->start, need, cap;
	uint8_t *nb;

	if (r->start > 0 && (r->cap - r->end < want)) {
		memmove(r->buf, r->buf + r->start, have);
		r->start = 0;
		r->end = have;
	}
	if (r->cap - r->end >= want)
		return 0;
	need = r->end + want;
	cap = r->cap ? r->cap : 4096;
	while (cap < need)
		cap *= 2;
	nb = realloc(r->buf, cap);
	if (nb == NULL)
		return -ENOMEM;
	r->buf = nb;
	r->cap = cap;
	return 0;
}

int
frame_reader_push(struct frame_reader *r, const void *data, size_t len)
{
	if (len == 0) {
		r->eof = 1;
		return 0;
	}
	if (reserve(r, len) < 0)
		return -ENOMEM;
	memcpy(r->buf + r->end, data, len);
	r->end += len;
	return 0;
}

/* How much to read next: the rest of the current frame if known, else a chunk. */
static size_t
read_size(const struct frame_reader *r)
{
	size_t have = r->end - r->start;

	if (have >= FRAME_HEADER) {
		size_t total = FRAME_HEADER + (size_t)header_get(r->buf + r->start);

		if (total <= FRAME_HEADER + r->max && total > have && total - have > FRAME_READ_CHUNK)
			return total - have < FRAME_READ_CHUNK * 4 ? total - have : FRAME_READ_CHUNK * 4;
	}
	return FRAME_READ_CHUNK;
}

ssize_t
frame_reader_fill(struct frame_reader *r, int fd)
{
	size_t want = read_size(r);
	ssize_t n;

	if (reserve(r, want) < 0)
		return -ENOMEM;
	do
		n = read(fd, r->buf + r->end, r->cap - r->end);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		r->eof = 1;
	r->end += (size_t)n;
	return n;
}

ssize_t
frame_reader_fill_fds(struct frame_reader *r, int fd, int *fds, size_t max_fds, size_t *n_fdsp,
    bool *lostp)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} u;
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	size_t want = read_size(r);
	ssize_t n;

	*n_fdsp = 0;
	if (reserve(r, want) < 0)
		return -ENOMEM;
	iov.iov_base = r->buf + r->end;
	iov.iov_len = r->cap - r->end;
	do {
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		size_t cnt;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			int rfd;

			memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*n_fdsp < max_fds)
				fds[(*n_fdsp)++] = rfd;
			else {
				close(rfd);
				*lostp = true;
			}
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		*lostp = true;
	if (n == 0)
		r->eof = 1;
	r->end += (size_t)n;
	return n;
}

int
frame_reader_next(struct frame_reader *r, const uint8_t **payloadp, size_t *lenp)
{
	size_t have = r->end - r->start;
	uint32_t len;

	if (have == 0 && r->buf != NULL && r->cap > FRAME_READ_CHUNK) {
		/* drained: give a large buffer back */
		free(r->buf);
		r->buf = NULL;
		r->cap = r->start = r->end = 0;
	}
	if (have < FRAME_HEADER) {
		if (r->eof)
			return have == 0 ? FRAME_E_EOF : -EPIPE;
		return FRAME_E_AGAIN;
	}
	len = header_get(r->buf + r->start);
	if (len == 0 || len > r->max)
		return -EMSGSIZE;
	if (have - FRAME_HEADER < len) {
		if (r->eof)
			return -EPIPE;
		return FRAME_E_AGAIN;
	}
	*payloadp = r->buf + r->start + FRAME_HEADER;
	*lenp = len;
	r->start += FRAME_HEADER + len;
	if (r->start == r->end)
		r->start = r->end = 0;
	return 0;
}
