/*
 * store.h: job records and logs in the state directory.
 *
 *   <state>/records            the record journal: one frame (u32 LE length
 *                              + msgpack job record, as in "status") per
 *                              write; the last record of an id wins
 *   <state>/jobs/<id>/seg-*    a job's log (joblog.h), created with its
 *                              first byte of output
 *
 * Records are appended when a job starts and when it ends; a heidid that
 * starts finds the finished jobs (and those that were running when the
 * previous heidid died: reason daemon_lost) and continues the id sequence.
 * The journal is rewritten from the live records when it has grown to more
 * than twice their number.
 */
#ifndef HEIDI_HEIDID_STORE_H
#define HEIDI_HEIDID_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"
#include "proto/pack.h"

int store_init(const char *state_dir);
void store_job_dir(uint64_t id, char *buf, size_t len);
/* Append a job's record to the journal.  0 or -errno. */
int store_write_record(const struct job_info *ji);
/* Remove a job's log (its record goes at the next compaction). */
void store_remove(uint64_t id);

typedef void (*store_load_fn)(const struct job_info *ji, int64_t mtime_ms, void *data);
/* Call fn for the last record of every id; returns how many. */
int store_load(store_load_fn fn, void *data);

/* Compaction: is it due, given the number of live records? */
bool store_wants_compaction(size_t live);

struct store_compaction {
	struct pack_buf b;
	uint64_t frames;
	int error;
};

void store_compact_begin(struct store_compaction *c);
void store_compact_add(struct store_compaction *c, const struct job_info *ji);
/* Replace the journal with the records added.  0 or -errno (journal unchanged). */
int store_compact_end(struct store_compaction *c);

#endif
