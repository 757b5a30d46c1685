/*
 * joblog.h: a job's captured output, on disk, bounded.
 *
 * One directory per job holds segment files "seg-<start>" (start: the
 * logical offset of the segment's first record, 16 hex digits), each a
 * 16-byte header then records:
 *
 *   u32 length (LE) | u8 kind (1 stdout, 2 stderr, 3 gap) | 3 bytes zero | data
 *
 * Records are appended in the order heidid read the chunks across both
 * streams.  When the segments together exceed the cap, the oldest segment
 * is deleted (oldest data dropped first, counted).  A write that fails
 * (disk full, ...) is undone and its bytes are counted as lost; once writing
 * works again a gap record marks the place, so readers are told.  Bytes
 * lost up to the job's end have no record: readers are told at the end
 * (control.c compares their position with the job's log_bytes).
 *
 * Readers keep a logical offset and the number of data bytes before it;
 * a reader left behind a deleted segment gets a gap of the dropped bytes.
 * Memory does not grow with output: a log holds a small segment table.
 */
#ifndef HEIDI_HEIDID_JOBLOG_H
#define HEIDI_HEIDID_JOBLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

#define JOBLOG_SEG_HEADER 16
#define JOBLOG_REC_HEADER 8

enum joblog_kind {
	JOBLOG_STDOUT = 1,
	JOBLOG_STDERR = 2,
	JOBLOG_GAP = 3,
};

struct joblog_seg {
	uint64_t start;       /* logical offset of the first record */
	uint64_t size;        /* record bytes in the segment */
	uint64_t data_before; /* data bytes (all streams, gaps included) before start */
	uint64_t data_bytes;  /* data bytes stored in the segment */
};

struct joblog {
	int dirfd;
	struct joblog_seg *segs;
	size_t n_segs, cap_segs;
	int wfd;              /* the last segment, open for appending; -1 read-only */
	uint64_t end;         /* logical end */
	uint64_t data_total;  /* data bytes appended (stored or lost) */
	uint64_t lost;        /* data bytes never stored (write errors: disk full, ...) */
	uint64_t lost_pending;/* part of lost not yet marked by a gap record */
	uint64_t dropped_cap; /* data bytes deleted to keep under the cap */
	int write_error;      /* errno of the last failed write, 0 once writing works */
	int last_error;       /* errno of the last failed write, kept (for the report) */
	uint64_t max;         /* cap on the sum of segment sizes */
	uint64_t seg_max;
	bool finished;
};

struct joblog_reader {
	uint64_t off;       /* logical offset of the next unread byte */
	uint64_t data_pos;  /* data bytes before off */
	uint32_t rec_left;  /* data bytes left in the current record; 0: at a header */
	uint8_t rec_kind;
	uint64_t skip;      /* data bytes of matching streams to skip (tail) */
	int fd;             /* the open segment, -1 */
	uint64_t fd_start;
	bool out, err;      /* streams wanted */
};

enum {
	JOBLOG_E_END = 1, /* no more data now */
};

struct joblog_chunk {
	enum joblog_kind kind;
	size_t len;    /* data bytes in buf (stdout/stderr) */
	uint64_t gap;  /* bytes missing here (gap) */
};

/* Create a log in a new directory dir (under the job's state directory).  0 or -errno. */
int joblog_create(struct joblog **lp, const char *dir, uint64_t max);
/* Open an existing log read-only (a finished job, also after a restart). */
int joblog_open(struct joblog **lp, const char *dir);
struct joblog *joblog_free(struct joblog *l);

/* Append one chunk.  Never fails: errors are counted as lost bytes. */
void joblog_append(struct joblog *l, enum out_stream s, const void *data, size_t len);
/* No more appends: close the writer. */
void joblog_finish(struct joblog *l);
/* Data bytes not in the log: deleted by the cap or lost to write errors. */
uint64_t joblog_dropped(const struct joblog *l);

void joblog_reader_init(struct joblog_reader *r, bool out, bool err);
void joblog_reader_deinit(struct joblog_reader *r);
/* Start at the current end (attach). */
void joblog_reader_seek_end(const struct joblog *l, struct joblog_reader *r);
/* Start so that only the last `lines` lines of the wanted streams follow.  0 or -errno. */
int joblog_reader_seek_tail(struct joblog *l, struct joblog_reader *r, uint64_t lines);
/*
 * The next chunk of wanted data (at most cap bytes into buf) or a gap.
 * 0, JOBLOG_E_END at the current end, or -errno.
 */
int joblog_read(struct joblog *l, struct joblog_reader *r, char *buf, size_t cap,
    struct joblog_chunk *c);

#endif
