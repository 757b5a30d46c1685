/*
 * proc.h: processes by pidfd and /proc.
 *
 * heidi never signals a pid it has not verified: a candidate found in /proc
 * is opened as a pidfd first, then re-checked through /proc (parent,
 * cgroup or environment marker), and only then signalled through the
 * pidfd.  If the pid was recycled in between, the re-check sees the new
 * process and rejects it; if it dies after the check, the pidfd refers to
 * the dead process and the signal fails with ESRCH.
 */
#ifndef HEIDI_COMMON_PROC_H
#define HEIDI_COMMON_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct proc_stat {
	pid_t pid;
	pid_t ppid;
	pid_t pgid;
	pid_t sid;
	char state;
	long n_threads;
	unsigned long utime, stime; /* CPU time in clock ticks */
};

/* A sorted set of pids. */
struct pidset {
	pid_t *v;
	size_t n;
	size_t cap;
};

int pidfd_open_pid(pid_t pid);
int pidfd_signal(int pidfd, int sig);

int proc_stat_read(pid_t pid, struct proc_stat *st);

void pidset_init(struct pidset *s);
void pidset_deinit(struct pidset *s);
void pidset_clear(struct pidset *s);
bool pidset_contains(const struct pidset *s, pid_t pid);
/* Insert pid; returns 1 if added, 0 if present, -ENOMEM. */
int pidset_add(struct pidset *s, pid_t pid);

/* All live descendants of root (not root itself), from one /proc scan. */
int proc_descendants(pid_t root, struct pidset *out);

/*
 * Signal every live descendant of root (sig 0: only find them).  Each is
 * re-verified to still be a child of root or of another member after its
 * pidfd is opened.  With only_pgid > 0 just the members of that process
 * group are signalled; processes in group skip_pgid (0: none) or in skip
 * (may be NULL) are left alone.  Every pid signalled is added to out (may
 * be NULL).  Returns how many were signalled or -errno.
 */
int proc_signal_descendants(pid_t root, int sig, pid_t only_pgid, pid_t skip_pgid,
    const struct pidset *skip, struct pidset *out);

/* Signal pid through a pidfd if /proc/pid/environ contains the exact entry. */
int proc_signal_if_environ(pid_t pid, const char *entry, int sig);

/*
 * Look up NAME in /proc/pid/environ: copies the value (without "NAME=")
 * into buf.  1 if found, 0 if not, -errno.
 */
int proc_environ_get(pid_t pid, const char *name, char *buf, size_t len);

/* Call fn for every numeric /proc entry; stops when fn returns non-zero. */
int proc_foreach(int (*fn)(pid_t pid, void *data), void *data);

#endif
