/*
 * store.c: see store.h.
 *
 * The journal is a sequence of frames (proto/frame.h: u32 length + one
 * msgpack job record), appended with one write(2) each: no file is created,
 * renamed or removed per job.  The last record of an id wins.  A frame cut
 * short by a crash ends the journal.  When the journal holds more than
 * twice the records heidid keeps, it is rewritten from the live records
 * (temporary file + rename).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/log.h"
#include "common/paths.h"
#include "heidid/store.h"
#include "proto/frame.h"

static char jobs_dir[4096];
static char journal_path[4200];
static int journal_fd = -1;
static uint64_t journal_frames;
static uint64_t retry_after;
static off_t journal_size; /* the end of the last whole frame */

int
store_init(const char *state_dir)
{
	int r;

	snprintf(jobs_dir, sizeof(jobs_dir), "%s/jobs", state_dir);
	snprintf(journal_path, sizeof(journal_path), "%s/records", state_dir);
	r = paths_mkdir_p(jobs_dir, 0700);
	if (r < 0)
		return r;
	journal_fd = open(journal_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (journal_fd < 0)
		return -errno;
	journal_size = lseek(journal_fd, 0, SEEK_END);
	return journal_size < 0 ? -errno : 0;
}

void
store_job_dir(uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%llu", jobs_dir, (unsigned long long)id);
}

int
store_write_record(const struct job_info *ji)
{
	struct pack_buf b;
	struct pack_frame f;
	int r;

	if (journal_fd < 0)
		return -EBADF;
	pack_buf_init(&b);
	msg_frame_begin(&b, &f);
	msg_pack_job_info(&b.pk, ji);
	msg_frame_end(&b, &f);
	/* one write per frame */
	r = fd_write_all(journal_fd, b.sbuf.data, b.sbuf.size);
	if (r == 0) {
		journal_frames++;
		journal_size += (off_t)b.sbuf.size;
	} else if (ftruncate(journal_fd, journal_size) < 0) {
		/* a torn frame would end the journal for the next heidid: stop appending */
		fd_close(journal_fd);
		journal_fd = -1;
	}
	pack_buf_deinit(&b);
	return r;
}

bool
store_wants_compaction(size_t live)
{
	return journal_frames > 2 * (uint64_t)live + 64 && journal_frames >= retry_after;
}

void
store_compact_begin(struct store_compaction *c)
{
	pack_buf_init(&c->b);
	c->frames = 0;
	c->error = 0;
}

void
store_compact_add(struct store_compaction *c, const struct job_info *ji)
{
	struct pack_frame f;

	if (c->error != 0)
		return;
	msg_frame_begin(&c->b, &f);
	msg_pack_job_info(&c->b.pk, ji);
	msg_frame_end(&c->b, &f);
	c->frames++;
}

int
store_compact_end(struct store_compaction *c)
{
	char tmp[4300];
	size_t size = c->b.sbuf.size;
	int fd, r = c->error;

	snprintf(tmp, sizeof(tmp), "%s.tmp", journal_path);
	fd = r < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (r == 0 && fd < 0)
		r = -errno;
	if (r == 0)
		r = fd_write_all(fd, c->b.sbuf.data, c->b.sbuf.size);
	/* the old journal is replaced only by a new one that is on disk */
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, journal_path) < 0)
		r = -errno;
	pack_buf_deinit(&c->b);
	if (r < 0) {
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		/* the journal stays as it was; try again after as many records more */
		retry_after = journal_frames + journal_frames / 2 + 64;
		return r;
	}
	/* appends continue at the end of the new journal */
	fd_close(journal_fd);
	journal_fd = fd;
	if (fcntl(journal_fd, F_SETFL, O_APPEND) < 0)
		r = -errno;
	journal_frames = c->frames;
	journal_size = (off_t)size;
	retry_after = 0;
	return r;
}

void
store_remove(uint64_t id)
{
	char dir[4200];
	DIR *d;
	struct dirent *de;
	int dfd;

	store_job_dir(id, dir, sizeof(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			unlinkat(dfd, de->d_name, 0);
	closedir(d);
	rmdir(dir);
}

struct seen {
	uint64_t id;
	size_t off, len;
};

static int
seen_cmp(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int
store_load(store_load_fn fn, void *data)
{
	struct stat st;
	char *buf = NULL;
	struct seen *v = NULL;
	size_t n = 0, cap = 0, off = 0, len;
	int fd, count = 0;

	fd = open(journal_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0 || st.st_size == 0) {
		close(fd);
		return 0;
	}
	len = (size_t)st.st_size;
	buf = malloc(len);
	if (buf == NULL || fd_read_exact(fd, buf, len) < 0) {
		free(buf);
		close(fd);
		return -EIO;
	}
	close(fd);
	/* every whole frame; the last record of an id wins */
	while (len - off >= FRAME_HEADER) {
		const uint8_t *p = (const uint8_t *)buf + off;
		uint32_t fl = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			      (uint32_t)p[3] << 24;
		struct pack_doc doc;
		struct proto_error err;
		struct job_info ji;

		if (fl == 0 || fl > FRAME_MAX || len - off - FRAME_HEADER < fl)
			break; /* cut short by a crash: the journal ends here */
		pack_doc_init(&doc);
		if (pack_doc_parse(&doc, p + FRAME_HEADER, fl, &err) == 0 &&
		    msg_job_info_decode(&doc, doc.root, &ji, &err) == 0) {
			if (n == cap) {
				struct seen *nv;

				cap = cap ? cap * 2 : 1024;
				nv = reallocarray(v, cap, sizeof(*v));
				if (nv == NULL) {
					pack_doc_deinit(&doc);
					free(v);
					free(buf);
					return -ENOMEM;
				}
				v = nv;
			}
			v[n++] = (struct seen){ ji.id, off + FRAME_HEADER, fl };
		}
		pack_doc_deinit(&doc);
		off += FRAME_HEADER + fl;
	}
	if (off < len) {
		/* a torn tail: appends must follow the last whole frame */
		log_msg(LOG_LVL_WARN, "%s: dropping %zu bytes after the last whole record",
		    journal_path, len - off);
		if (journal_fd >= 0 && ftruncate(journal_fd, (off_t)off) == 0)
			journal_size = (off_t)off;
	}
	/* frames were found in file order: a stable sort by id keeps the last one last */
	if (n > 1 && mergesort(v, n, sizeof(*v), seen_cmp) < 0) {
		free(v);
		free(buf);
		return -errno;
	}
	journal_frames = n; /* before fn: it may append */
	for (size_t i = 0; i < n; i++) {
		struct pack_doc doc;
		struct proto_error err;
		struct job_info ji;

		if (i + 1 < n && v[i + 1].id == v[i].id)
			continue;
		pack_doc_init(&doc);
		if (pack_doc_parse(&doc, buf + v[i].off, v[i].len, &err) == 0 &&
		    msg_job_info_decode(&doc, doc.root, &ji, &err) == 0) {
			fn(&ji, (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000, data);
			count++;
		}
		pack_doc_deinit(&doc);
	}
	free(v);
	free(buf);
	return count;
}
