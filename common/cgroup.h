/*
 * cgroup.h: cgroup v2 mechanics, shared by heidid (detection, subtree,
 * sweep, dual safety) and the shepherd (one leaf per job).  Knows nothing
 * of jobs: it creates, fills, signals, kills, watches and removes
 * directories of the v2 hierarchy.  Only the v2 hierarchy is touched,
 * never the v1 controllers of a hybrid host.
 */
#ifndef HEIDI_COMMON_CGROUP_H
#define HEIDI_COMMON_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/proc.h"

enum cgroup_mode {
	CGROUP_MODE_NONE,    /* no cgroup2 mount */
	CGROUP_MODE_UNIFIED, /* pure v2 at /sys/fs/cgroup */
	CGROUP_MODE_HYBRID,  /* v1 controllers + v2 at /sys/fs/cgroup/unified (or elsewhere) */
};

struct cgroup_host {
	enum cgroup_mode mode;
	char mount[PATH_MAX]; /* the cgroup2 mount point, "" if none */
	char self[PATH_MAX];  /* this process's v2 cgroup, relative to the mount ("/" for the root) */
};

const char *cgroup_mode_name(enum cgroup_mode mode);
/* Find the v2 mount and our place in it.  Always succeeds (mode NONE). */
void cgroup_host_probe(struct cgroup_host *h);

/* Read a small attribute file of dir (NUL-terminated, trailing newline cut). */
int cgroup_attr_read(int dirfd, const char *name, char *buf, size_t len);
int cgroup_attr_write(int dirfd, const char *name, const char *value);
/* Does dir have attribute file name? */
bool cgroup_attr_exists(int dirfd, const char *name);

/* mkdir a new leaf (EEXIST is an error: never adopt) and open it.  fd or -errno. */
int cgroup_leaf_create(const char *path);
/* Open an existing cgroup directory.  fd or -errno. */
int cgroup_open(const char *path);

/* Kill every process in the cgroup (cgroup.kill, or SIGKILL to each on old kernels). */
int cgroup_kill(int dirfd, const char *relpath);
/*
 * Signal every member of the cgroup after verifying through its pidfd and
 * /proc/PID/cgroup that it is still a member.  Adds them to seen (may be
 * NULL).  Returns the number signalled or -errno.
 */
int cgroup_signal_members(int dirfd, const char *relpath, int sig, struct pidset *seen);
/* Count the members listed in cgroup.procs. */
int cgroup_count_members(int dirfd);

/* Open cgroup.events for poll(POLLPRI).  fd or -errno. */
int cgroup_events_open(int dirfd);
/* 1 if populated, 0 if empty, -errno.  Reads from offset 0. */
int cgroup_events_populated(int evfd);
/* The value of key in a flat-keyed file ("oom_kill 3").  0 or -errno. */
int cgroup_keyed_read(int dirfd, const char *file, const char *key, uint64_t *valuep);

/*
 * Kill everything in path, wait up to timeout_ms for it to empty (poll on
 * cgroup.events) and remove it.  0, -EBUSY if it did not empty, -errno.
 */
int cgroup_destroy(const char *path, const char *relpath, int timeout_ms);

struct cgroup_limits {
	uint64_t mem_bytes;      /* memory.max (and memory.swap.max 0); 0: none */
	uint64_t pids_max;       /* pids.max; 0: none */
	uint64_t cpu_millicores; /* cpu.max "<quota> 100000"; 0: none */
};

/*
 * Write the limits into a cgroup directory.  0, or -errno naming nothing:
 * the caller reports which limit failed through *failedp ("memory.max"...).
 */
int cgroup_set_limits(int dirfd, const struct cgroup_limits *lim, const char **failedp);

/*
 * Enable in dir's cgroup.subtree_control every controller of `wanted`
 * (space-separated) that dir's cgroup.controllers offers.  Returns 0, or
 * -EBUSY if dir has processes of its own (the v2 "no internal processes"
 * rule).  enabled gets what subtree_control holds afterwards.
 */
int cgroup_enable_controllers(int dirfd, const char *wanted, char *enabled, size_t len);
/* Is word one of the space-separated words of list? */
bool cgroup_word_in(const char *list, const char *word);

/* path relative to the mount ("/heidi/x") for an absolute path below it. */
const char *cgroup_relpath(const struct cgroup_host *h, const char *path);

#endif
