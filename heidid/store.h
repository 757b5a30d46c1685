/*
 * store.h: job records and logs in the state directory.
 *
 *   <state>/jobs/<id>/record   the job record (msgpack, as in "status"),
 *                              written atomically (temp file + rename)
 *   <state>/jobs/<id>/seg-*    the job's log (joblog.h)
 *
 * Records are written when a job starts and when it ends; a heidid that
 * starts finds the finished jobs (and those that were running when the
 * previous heidid died: reason daemon_lost) and continues the id sequence.
 */
#ifndef HEIDI_HEIDID_STORE_H
#define HEIDI_HEIDID_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"
#include "proto/pack.h"

int store_init(const char *state_dir);
void store_job_dir(uint64_t id, char *buf, size_t len);
/* Write (replace) the record of a job.  0 or -errno. */
int store_write_record(const struct job_info *ji);
/* Remove a job's record and log. */
void store_remove(uint64_t id);

typedef void (*store_load_fn)(const struct job_info *ji, int64_t mtime_ms, void *data);
/* Call fn for every readable record; returns how many were read. */
int store_load(store_load_fn fn, void *data);

#endif
