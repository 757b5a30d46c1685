/*
 * joblog.c: see joblog.h.
 *
 * Invariants: segs[] is ordered by start; segs[i].start + segs[i].size ==
 * segs[i + 1].start; end == last start + last size (or the start of the
 * next segment to be created); only the last segment is ever written.
 * Writes are whole records: a short write is truncated back, so a reader
 * never meets half a record (heidid is single-threaded, readers and the
 * writer never run at the same time).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/fd.h"
#include "heidid/joblog.h"

#define SEG_MAGIC "HLOG"
#define SEG_VERSION 1
#define SCAN_BUF 65536

static void
put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void
seg_name(char *buf, size_t len, uint64_t start)
{
	snprintf(buf, len, "seg-%016llx", (unsigned long long)start);
}

static struct joblog *
joblog_alloc(uint64_t max)
{
	struct joblog *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->dirfd = l->wfd = -1;
	l->max = max;
	l->seg_max = max / 8;
	if (l->seg_max < 4096)
		l->seg_max = 4096;
	if (l->seg_max > (16u << 20))
		l->seg_max = 16u << 20;
	return l;
}

static int
seg_push(struct joblog *l, uint64_t start, uint64_t size, uint64_t data_before)
{
	if (l->n_segs == l->cap_segs) {
		size_t cap = l->cap_segs ? l->cap_segs * 2 : 8;
		struct joblog_seg *v = reallocarray(l->segs, cap, sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		l->segs = v;
		l->cap_segs = cap;
	}
	l->segs[l->n_segs++] = (struct joblog_seg){ start, size, data_before, 0 };
	return 0;
}

int
joblog_create(struct joblog **lp, const char *dir, uint64_t max)
{
	struct joblog *l = joblog_alloc(max);

	if (l == NULL)
		return -ENOMEM;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int e = errno;

		free(l);
		return -e;
	}
	l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dirfd < 0) {
		int e = errno;

		free(l);
		return -e;
	}
	*lp = l;
	return 0;
}

static int
seg_cmp(const void *a, const void *b)
{
	const struct joblog_seg *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int
joblog_open(struct joblog **lp, const char *dir)
{
	struct joblog *l = joblog_alloc(UINT64_MAX);
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (l == NULL)
		return -ENOMEM;
	l->finished = true;
	l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dirfd < 0) {
		r = -errno;
		free(l);
		return r;
	}
	d = fdopendir(dup(l->dirfd)); /* cloexec: n/a (fdopendir keeps it internal) */
	while (d != NULL && (de = readdir(d)) != NULL) {
		uint8_t hdr[JOBLOG_SEG_HEADER];
		unsigned long long start;
		struct stat st;
		int fd;

		if (sscanf(de->d_name, "seg-%16llx", &start) != 1)
			continue;
		fd = openat(l->dirfd, de->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && st.st_size >= JOBLOG_SEG_HEADER &&
		    pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
		    memcmp(hdr, SEG_MAGIC, 4) == 0)
			r = seg_push(l, start, (uint64_t)st.st_size - JOBLOG_SEG_HEADER, get_le64(hdr + 8));
		close(fd);
		if (r < 0)
			break;
	}
	if (d != NULL)
		closedir(d);
	if (r < 0) {
		joblog_free(l);
		return r;
	}
	if (l->n_segs > 1)
		qsort(l->segs, l->n_segs, sizeof(*l->segs), seg_cmp);
	/* keep the contiguous run ending at the newest segment */
	for (size_t i = l->n_segs; i-- > 1;)
		if (l->segs[i - 1].start + l->segs[i - 1].size != l->segs[i].start) {
			memmove(l->segs, l->segs + i, (l->n_segs - i) * sizeof(*l->segs));
			l->n_segs -= i;
			break;
		}
	if (l->n_segs > 0)
		l->end = l->segs[l->n_segs - 1].start + l->segs[l->n_segs - 1].size;
	*lp = l;
	return 0;
}

struct joblog *
joblog_free(struct joblog *l)
{
	if (l == NULL)
		return NULL;
	fd_close(l->wfd);
	fd_close(l->dirfd);
	free(l->segs);
	free(l);
	return NULL;
}

void
joblog_finish(struct joblog *l)
{
	l->finished = true;
	l->wfd = fd_close(l->wfd);
}

/* ---- writing ---- */

static uint64_t
total_size(const struct joblog *l)
{
	uint64_t t = 0;

	for (size_t i = 0; i < l->n_segs; i++)
		t += l->segs[i].size;
	return t;
}

static int
rotate(struct joblog *l)
{
	char name[32];
	uint8_t hdr[JOBLOG_SEG_HEADER] = { 0 };
	int fd, r;

	seg_name(name, sizeof(name), l->end);
	fd = openat(l->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	memcpy(hdr, SEG_MAGIC, 4);
	put_le32(hdr + 4, SEG_VERSION);
	put_le64(hdr + 8, l->data_total - l->lost_pending);
	if (write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr)) {
		r = errno ? -errno : -ENOSPC;
		close(fd);
		unlinkat(l->dirfd, name, 0);
		return r;
	}
	r = seg_push(l, l->end, 0, l->data_total - l->lost_pending);
	if (r < 0) {
		close(fd);
		unlinkat(l->dirfd, name, 0);
		return r;
	}
	fd_close(l->wfd);
	l->wfd = fd;
	return 0;
}

static int
write_record(struct joblog *l, enum joblog_kind kind, const void *data, size_t len)
{
	uint8_t hdr[JOBLOG_REC_HEADER] = { 0 };
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)data, len } };
	struct joblog_seg *cur = l->n_segs > 0 ? &l->segs[l->n_segs - 1] : NULL;
	size_t rec = JOBLOG_REC_HEADER + len;
	ssize_t n;
	int r;

	if (l->wfd < 0 || (cur->size > 0 && cur->size + rec > l->seg_max)) {
		r = rotate(l);
		if (r < 0)
			return r;
		cur = &l->segs[l->n_segs - 1];
	}
	put_le32(hdr, (uint32_t)len);
	hdr[4] = (uint8_t)kind;
	do
		n = writev(l->wfd, iov, 2);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)rec) {
		r = n < 0 ? -errno : -ENOSPC;
		/* never leave half a record behind */
		if (n > 0 && ftruncate(l->wfd, (off_t)(JOBLOG_SEG_HEADER + cur->size)) < 0)
			l->wfd = fd_close(l->wfd); /* unusable: the next record starts a segment */
		return r;
	}
	cur->size += rec;
	if (kind != JOBLOG_GAP)
		cur->data_bytes += len;
	l->end += rec;
	return 0;
}

static void
enforce_cap(struct joblog *l)
{
	uint64_t total = total_size(l);

	/* the oldest data goes first; the segment being written stays */
	while (total > l->max && l->n_segs > 1) {
		char name[32];

		seg_name(name, sizeof(name), l->segs[0].start);
		unlinkat(l->dirfd, name, 0);
		total -= l->segs[0].size;
		l->dropped_cap += l->segs[0].data_bytes;
		memmove(l->segs, l->segs + 1, (l->n_segs - 1) * sizeof(*l->segs));
		l->n_segs--;
	}
}

uint64_t
joblog_dropped(const struct joblog *l)
{
	return l->lost + l->dropped_cap;
}

void
joblog_append(struct joblog *l, enum out_stream s, const void *data, size_t len)
{
	int r;

	if (l->finished || len == 0)
		return;
	if (l->lost_pending > 0) {
		uint8_t g[8];

		/* mark where data went missing before anything follows it */
		put_le64(g, l->lost_pending);
		r = write_record(l, JOBLOG_GAP, g, sizeof(g));
		if (r == 0)
			l->lost_pending = 0;
		else
			l->write_error = -r;
	}
	if (l->lost_pending > 0)
		r = -l->write_error;
	else
		r = write_record(l, s == STREAM_STDERR ? JOBLOG_STDERR : JOBLOG_STDOUT, data, len);
	if (r < 0) {
		l->write_error = l->last_error = -r;
		l->lost += len;
		l->lost_pending += len;
	} else
		l->write_error = 0;
	l->data_total += len;
	enforce_cap(l);
}

/* ---- reading ---- */

void
joblog_reader_init(struct joblog_reader *r, bool out, bool err)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->out = out;
	r->err = err;
}

void
joblog_reader_deinit(struct joblog_reader *r)
{
	r->fd = fd_close(r->fd);
}

void
joblog_reader_seek_end(const struct joblog *l, struct joblog_reader *r)
{
	r->fd = fd_close(r->fd);
	r->off = l->end;
	r->data_pos = l->data_total - l->lost_pending;
	r->rec_left = 0;
	r->skip = 0;
}

static bool
wanted(const struct joblog_reader *r, uint8_t kind)
{
	return (kind == JOBLOG_STDOUT && r->out) || (kind == JOBLOG_STDERR && r->err);
}

/* Open the segment holding r->off; false if there is none (end, or gone). */
static int
reader_segment(struct joblog *l, struct joblog_reader *r, const struct joblog_seg **segp)
{
	const struct joblog_seg *seg = NULL;

	for (size_t i = l->n_segs; i-- > 0;)
		if (l->segs[i].start <= r->off) {
			seg = &l->segs[i];
			break;
		}
	if (seg == NULL || r->off >= seg->start + seg->size)
		return JOBLOG_E_END;
	if (r->fd < 0 || r->fd_start != seg->start) {
		char name[32];

		r->fd = fd_close(r->fd);
		seg_name(name, sizeof(name), seg->start);
		r->fd = openat(l->dirfd, name, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0)
			return -errno;
		r->fd_start = seg->start;
	}
	*segp = seg;
	return 0;
}

int
joblog_read(struct joblog *l, struct joblog_reader *r, char *buf, size_t cap, struct joblog_chunk *c)
{
	for (;;) {
		const struct joblog_seg *seg = NULL;
		off_t pos;
		int rc;

		memset(c, 0, sizeof(*c));
		if (l->n_segs > 0 && r->off < l->segs[0].start) {
			/* what we were reading was dropped (cap): say how much */
			uint64_t gap = l->segs[0].data_before > r->data_pos ? l->segs[0].data_before - r->data_pos : 0;

			r->fd = fd_close(r->fd);
			r->off = l->segs[0].start;
			r->data_pos = l->segs[0].data_before;
			r->rec_left = 0;
			if (gap > 0) {
				c->kind = JOBLOG_GAP;
				c->gap = gap;
				return 0;
			}
		}
		if (r->off >= l->end)
			return JOBLOG_E_END;
		rc = reader_segment(l, r, &seg);
		if (rc != 0)
			return rc;
		pos = (off_t)(JOBLOG_SEG_HEADER + (r->off - seg->start));
		if (r->rec_left == 0) {
			uint8_t hdr[JOBLOG_REC_HEADER + 8];
			ssize_t n = pread(r->fd, hdr, sizeof(hdr), pos);
			uint32_t len;

			if (n < JOBLOG_REC_HEADER)
				return n < 0 ? -errno : JOBLOG_E_END;
			len = get_le32(hdr);
			r->rec_kind = hdr[4];
			r->off += JOBLOG_REC_HEADER;
			if (r->rec_kind == JOBLOG_GAP) {
				if (len != 8 || n < JOBLOG_REC_HEADER + 8)
					return -EBADMSG;
				r->off += 8;
				c->kind = JOBLOG_GAP;
				c->gap = get_le64(hdr + JOBLOG_REC_HEADER);
				r->data_pos += c->gap;
				return 0;
			}
			if (r->rec_kind != JOBLOG_STDOUT && r->rec_kind != JOBLOG_STDERR)
				return -EBADMSG;
			r->rec_left = len;
			continue;
		}
		if (!wanted(r, r->rec_kind) || r->skip > 0) {
			uint64_t n = r->rec_left;

			if (wanted(r, r->rec_kind)) {
				n = r->skip < n ? r->skip : n;
				r->skip -= n;
			}
			r->off += n;
			r->data_pos += n;
			r->rec_left -= (uint32_t)n;
			continue;
		}
		{
			size_t want = r->rec_left < cap ? r->rec_left : cap;
			ssize_t n = pread(r->fd, buf, want, pos);

			if (n <= 0)
				return n < 0 ? -errno : -EBADMSG;
			r->off += (uint64_t)n;
			r->data_pos += (uint64_t)n;
			r->rec_left -= (uint32_t)n;
			c->kind = (enum joblog_kind)r->rec_kind;
			c->len = (size_t)n;
			return 0;
		}
	}
}

/*
 * Count newlines in the wanted data of segment i; with nth > 0, also the
 * number of wanted bytes up to and including the nth newline.
 */
static int
seg_scan(struct joblog *l, size_t i, const struct joblog_reader *want, uint64_t nth,
    uint64_t *newlines, int *last, uint64_t *bytes_to_nth)
{
	struct joblog_reader r;
	char *buf = malloc(SCAN_BUF);
	uint64_t seen = 0, bytes = 0;
	int rc = 0;

	if (buf == NULL)
		return -ENOMEM;
	joblog_reader_init(&r, want->out, want->err);
	r.off = l->segs[i].start;
	r.data_pos = l->segs[i].data_before;
	*newlines = 0;
	for (;;) {
		struct joblog_chunk c;

		if (r.off >= l->segs[i].start + l->segs[i].size)
			break;
		rc = joblog_read(l, &r, buf, SCAN_BUF, &c);
		if (rc != 0)
			break;
		if (c.kind == JOBLOG_GAP)
			continue;
		for (size_t k = 0; k < c.len; k++) {
			bytes++;
			if (buf[k] == '\n' && ++seen == nth && bytes_to_nth != NULL)
				*bytes_to_nth = bytes;
		}
		if (c.len > 0)
			*last = (unsigned char)buf[c.len - 1];
	}
	*newlines = seen;
	joblog_reader_deinit(&r);
	free(buf);
	return rc < 0 ? rc : 0;
}

int
joblog_reader_seek_tail(struct joblog *l, struct joblog_reader *r, uint64_t lines)
{
	uint64_t acc = 0, need = 0;
	int last = -1;
	size_t j;
	int rc;

	r->fd = fd_close(r->fd);
	r->rec_left = 0;
	r->skip = 0;
	if (l->n_segs == 0 || lines == 0) {
		joblog_reader_seek_end(l, r); /* nothing old wanted */
		return 0;
	}
	/* from the newest segment back, until enough newlines are behind us */
	for (j = l->n_segs; j-- > 0;) {
		uint64_t n;
		int seg_last = -1;

		rc = seg_scan(l, j, r, 0, &n, &seg_last, NULL);
		if (rc < 0)
			return rc;
		if (last < 0 && seg_last >= 0)
			last = seg_last;
		/* the newline ending the very last line does not start a line */
		need = lines + (last == '\n' ? 1 : 0);
		if (acc + n >= need) {
			uint64_t skip = 0, nth = n - (need - acc) + 1;

			rc = seg_scan(l, j, r, nth, &n, &seg_last, &skip);
			if (rc < 0)
				return rc;
			r->off = l->segs[j].start;
			r->data_pos = l->segs[j].data_before;
			r->skip = skip;
			return 0;
		}
		acc += n;
	}
	r->off = l->segs[0].start;
	r->data_pos = l->segs[0].data_before;
	return 0;
}
