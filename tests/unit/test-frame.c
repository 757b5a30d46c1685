/*
 * test-frame.c: the incremental frame reader (proto/frame.h).
 *
 * Frames are built by hand (4-byte little-endian length + payload); the
 * payloads are arbitrary bytes, the reader does not look inside them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "proto/frame.h"

/* Append one frame with the given payload to buf at *offp. */
static void
put_frame(uint8_t *buf, size_t *offp, const void *payload, uint32_t len)
{
	frame_header_put(buf + *offp, len);
	memcpy(buf + *offp + FRAME_HEADER, payload, len);
	*offp += FRAME_HEADER + len;
}

/* Three frames of different sizes; a 200-byte one spans many split points. */
static uint8_t p1[] = { 0x81 };
static uint8_t p2[] = { 'h', 'e', 'l', 'l', 'o', 0, 0xff };
static uint8_t p3[200];

static size_t
three_frames(uint8_t *buf)
{
	size_t off = 0;

	for (size_t i = 0; i < sizeof(p3); i++)
		p3[i] = (uint8_t)(i * 7 + 3);
	put_frame(buf, &off, p1, sizeof(p1));
	put_frame(buf, &off, p2, sizeof(p2));
	put_frame(buf, &off, p3, sizeof(p3));
	return off;
}

struct collected {
	int n;
	size_t len[3];
	uint8_t data[3][256];
};

/* Take every complete frame now available; fails the test on an error. */
static void
drain(struct frame_reader *r, struct collected *c)
{
	const uint8_t *p;
	size_t len;
	int ret;

	while ((ret = frame_reader_next(r, &p, &len)) == 0) {
		cr_assert_lt(c->n, 3, "more than three frames came out");
		cr_assert_leq(len, sizeof(c->data[0]));
		memcpy(c->data[c->n], p, len);
		c->len[c->n++] = len;
	}
	cr_assert_eq(ret, FRAME_E_AGAIN, "frame_reader_next: %d", ret);
}

static void
check_three(const struct collected *c)
{
	cr_assert_eq(c->n, 3);
	cr_assert_eq(c->len[0], sizeof(p1));
	cr_assert_eq(c->len[1], sizeof(p2));
	cr_assert_eq(c->len[2], sizeof(p3));
	cr_assert_arr_eq(c->data[0], p1, sizeof(p1));
	cr_assert_arr_eq(c->data[1], p2, sizeof(p2));
	cr_assert_arr_eq(c->data[2], p3, sizeof(p3));
}

/* Push buf in pieces cut at the given points, then EOF; expect the three frames. */
static void
push_split(const uint8_t *buf, size_t len, const size_t *cuts, size_t n_cuts)
{
	struct frame_reader r;
	struct collected c = { 0 };
	const uint8_t *p;
	size_t from = 0, plen;

	frame_reader_init(&r, FRAME_MAX);
	for (size_t k = 0; k <= n_cuts; k++) {
		size_t to = k < n_cuts ? cuts[k] : len;

		/* an empty push would mean EOF: cuts are strictly inside */
		cr_assert_lt(from, to);
		cr_assert_eq(frame_reader_push(&r, buf + from, to - from), 0);
		drain(&r, &c);
		from = to;
	}
	cr_assert_eq(frame_reader_pending(&r), 0);
	cr_assert_eq(frame_reader_push(&r, NULL, 0), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &plen), FRAME_E_EOF);
	check_three(&c);
	frame_reader_deinit(&r);
}

Test(frame, header_is_little_endian_length)
{
	uint8_t h[FRAME_HEADER];

	frame_header_put(h, 0x04030201);
	cr_assert_eq(h[0], 1);
	cr_assert_eq(h[1], 2);
	cr_assert_eq(h[2], 3);
	cr_assert_eq(h[3], 4);
}

Test(frame, survives_every_split_point_of_three_frames)
{
	uint8_t buf[512];
	size_t len = three_frames(buf);

	for (size_t i = 1; i < len; i++)
		push_split(buf, len, &i, 1);
}

Test(frame, survives_every_pair_of_split_points)
{
	uint8_t buf[512];
	size_t len = three_frames(buf);

	for (size_t i = 1; i < len; i++)
		for (size_t j = i + 1; j < len; j++) {
			size_t cuts[2] = { i, j };

			push_split(buf, len, cuts, 2);
		}
}

Test(frame, survives_byte_at_a_time)
{
	uint8_t buf[512];
	size_t len = three_frames(buf), cuts[512];

	for (size_t i = 1; i < len; i++)
		cuts[i - 1] = i;
	push_split(buf, len, cuts, len - 1);
}

Test(frame, returns_coalesced_frames_from_one_push)
{
	uint8_t buf[512];
	size_t len = three_frames(buf);
	struct frame_reader r;
	struct collected c = { 0 };

	frame_reader_init(&r, FRAME_MAX);
	cr_assert_eq(frame_reader_push(&r, buf, len), 0);
	cr_assert_eq(frame_reader_pending(&r), len);
	drain(&r, &c);
	check_three(&c);
	cr_assert_eq(frame_reader_pending(&r), 0);
	frame_reader_deinit(&r);
}

Test(frame, needs_more_bytes_for_partial_header)
{
	struct frame_reader r;
	const uint8_t *p;
	size_t len;
	uint8_t h[FRAME_HEADER];

	frame_reader_init(&r, FRAME_MAX);
	cr_assert_eq(frame_reader_next(&r, &p, &len), FRAME_E_AGAIN);
	frame_header_put(h, 5);
	cr_assert_eq(frame_reader_push(&r, h, 3), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), FRAME_E_AGAIN);
	cr_assert_eq(frame_reader_pending(&r), 3);
	frame_reader_deinit(&r);
}

Test(frame, rejects_zero_length)
{
	struct frame_reader r;
	const uint8_t *p;
	size_t len;
	uint8_t h[FRAME_HEADER];

	frame_reader_init(&r, FRAME_MAX);
	frame_header_put(h, 0);
	cr_assert_eq(frame_reader_push(&r, h, sizeof(h)), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), -EMSGSIZE);
	frame_reader_deinit(&r);
}

Test(frame, rejects_oversize_length_as_soon_as_header_arrives)
{
	struct frame_reader r;
	const uint8_t *p;
	size_t len;
	uint8_t h[FRAME_HEADER];

	/* only the header is sent: the reader must not wait for the payload */
	frame_reader_init(&r, 16);
	frame_header_put(h, 17);
	cr_assert_eq(frame_reader_push(&r, h, sizeof(h)), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), -EMSGSIZE);
	frame_reader_deinit(&r);

	frame_reader_init(&r, FRAME_MAX);
	frame_header_put(h, 0xffffffffu);
	cr_assert_eq(frame_reader_push(&r, h, sizeof(h)), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), -EMSGSIZE);
	frame_reader_deinit(&r);
}

Test(frame, accepts_payload_of_exactly_max)
{
	struct frame_reader r;
	uint8_t buf[FRAME_HEADER + 16], payload[16];
	const uint8_t *p;
	size_t off = 0, len;

	memset(payload, 'x', sizeof(payload));
	put_frame(buf, &off, payload, sizeof(payload));
	frame_reader_init(&r, 16);
	cr_assert_eq(frame_reader_push(&r, buf, off), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), 0);
	cr_assert_eq(len, 16);
	cr_assert_arr_eq(p, payload, 16);
	frame_reader_deinit(&r);
}

Test(frame, reports_truncated_frame_at_eof_as_epipe)
{
	uint8_t buf[512];
	size_t full = three_frames(buf);
	struct frame_reader r;
	const uint8_t *p;
	size_t len;

	/* cut inside the payload of the first frame */
	frame_reader_init(&r, FRAME_MAX);
	cr_assert_eq(frame_reader_push(&r, buf, FRAME_HEADER), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), FRAME_E_AGAIN);
	cr_assert_eq(frame_reader_push(&r, NULL, 0), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), -EPIPE);
	frame_reader_deinit(&r);

	/* cut inside the header of the last frame, after two good frames */
	frame_reader_init(&r, FRAME_MAX);
	cr_assert_eq(frame_reader_push(&r, buf, full - sizeof(p3) - 2), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), FRAME_E_AGAIN);
	cr_assert_eq(frame_reader_push(&r, NULL, 0), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), -EPIPE);
	frame_reader_deinit(&r);

	/* cut one byte before the end */
	frame_reader_init(&r, FRAME_MAX);
	cr_assert_eq(frame_reader_push(&r, buf, full - 1), 0);
	cr_assert_eq(frame_reader_push(&r, NULL, 0), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), -EPIPE);
	frame_reader_deinit(&r);
}

Test(frame, reports_clean_eof_between_frames)
{
	uint8_t buf[512];
	size_t full = three_frames(buf);
	struct frame_reader r;
	const uint8_t *p;
	size_t len;

	frame_reader_init(&r, FRAME_MAX);
	cr_assert_eq(frame_reader_push(&r, NULL, 0), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), FRAME_E_EOF);
	frame_reader_deinit(&r);

	/* EOF already known while complete frames are still buffered */
	frame_reader_init(&r, FRAME_MAX);
	cr_assert_eq(frame_reader_push(&r, buf, full), 0);
	cr_assert_eq(frame_reader_push(&r, NULL, 0), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(frame_reader_next(&r, &p, &len), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), FRAME_E_EOF);
	cr_assert_eq(frame_reader_next(&r, &p, &len), FRAME_E_EOF);
	frame_reader_deinit(&r);
}

Test(frame, handles_large_frame_pushed_in_chunks)
{
	size_t n = 300000, off = 0;
	uint8_t *buf = malloc(FRAME_HEADER + n), *payload = malloc(n);
	struct frame_reader r;
	const uint8_t *p;
	size_t len;

	cr_assert_not_null(buf);
	cr_assert_not_null(payload);
	for (size_t i = 0; i < n; i++)
		payload[i] = (uint8_t)(i ^ (i >> 8));
	put_frame(buf, &off, payload, (uint32_t)n);
	frame_reader_init(&r, FRAME_MAX);
	for (size_t at = 0; at < off; at += 4093) {
		size_t k = off - at < 4093 ? off - at : 4093;

		cr_assert_eq(frame_reader_next(&r, &p, &len), FRAME_E_AGAIN);
		cr_assert_eq(frame_reader_push(&r, buf + at, k), 0);
	}
	cr_assert_eq(frame_reader_next(&r, &p, &len), 0);
	cr_assert_eq(len, n);
	cr_assert_arr_eq(p, payload, n);
	frame_reader_deinit(&r);
	free(buf);
	free(payload);
}

Test(frame, fills_from_a_pipe_until_eof, .timeout = 30)
{
	uint8_t buf[512];
	size_t full = three_frames(buf);
	struct frame_reader r;
	struct collected c = { 0 };
	const uint8_t *p;
	size_t len;
	int fds[2], ret;

	cr_assert_eq(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
	frame_reader_init(&r, FRAME_MAX);
	/* nothing written yet: a nonblocking read reports -EAGAIN */
	cr_assert_eq(frame_reader_fill(&r, fds[0]), -EAGAIN);

	cr_assert_eq(write(fds[1], buf, 10), 10);
	cr_assert_eq(frame_reader_fill(&r, fds[0]), 10);
	drain(&r, &c);
	cr_assert_eq(c.n, 1);
	cr_assert_eq(write(fds[1], buf + 10, full - 10), (ssize_t)(full - 10));
	close(fds[1]);
	while (frame_reader_fill(&r, fds[0]) > 0)
		;
	while ((ret = frame_reader_next(&r, &p, &len)) == 0) {
		cr_assert_lt(c.n, 3);
		memcpy(c.data[c.n], p, len);
		c.len[c.n++] = len;
	}
	cr_assert_eq(ret, FRAME_E_EOF);
	check_three(&c);
	close(fds[0]);
	frame_reader_deinit(&r);
}

Test(frame, fill_reports_eof_inside_frame_as_epipe, .timeout = 30)
{
	uint8_t buf[512];
	struct frame_reader r;
	const uint8_t *p;
	size_t len;
	int fds[2];

	three_frames(buf);
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	cr_assert_eq(write(fds[1], buf, 3), 3);
	close(fds[1]);
	frame_reader_init(&r, FRAME_MAX);
	cr_assert_eq(frame_reader_fill(&r, fds[0]), 3);
	cr_assert_eq(frame_reader_fill(&r, fds[0]), 0);
	cr_assert_eq(frame_reader_next(&r, &p, &len), -EPIPE);
	close(fds[0]);
	frame_reader_deinit(&r);
}
