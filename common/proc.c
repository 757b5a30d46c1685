/*
 * proc.c: pidfds, /proc/PID/stat, descendant scans and environment markers.
 *
 * This kernel family does not always provide /proc/PID/task/TID/children
 * (CONFIG_PROC_CHILDREN), so descendants are found with a scan of
 * /proc/[0-9]* and a parent map.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/proc.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

int
pidfd_open_pid(pid_t pid)
{
	/* pidfds are always close-on-exec. */
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	return fd < 0 ? -errno : fd;
}

int
pidfd_signal(int pidfd, int sig)
{
	if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
		return -errno;
	return 0;
}

static ssize_t
read_small_file(const char *path, char *buf, size_t len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t have = 0;

	if (fd < 0)
		return -errno;
	while (have < len - 1) {
		ssize_t n = read(fd, buf + have, len - 1 - have);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	buf[have] = '\0';
	return (ssize_t)have;
}

int
proc_stat_read(pid_t pid, struct proc_stat *st)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int ppid, pgid, sid;
	long nthreads = 1;
	unsigned long ut = 0, stime = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = read_small_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	/* comm may contain spaces and parentheses: the last ')' ends it. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return -EBADMSG;
	/* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
	 * utime stime cutime cstime priority nice num_threads */
	if (sscanf(p + 1, " %c %d %d %d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %ld",
		&st->state, &ppid, &pgid, &sid, &ut, &stime, &nthreads) < 4)
		return -EBADMSG;
	st->n_threads = nthreads;
	st->utime = ut;
	st->stime = stime;
	st->pid = pid;
	st->ppid = ppid;
	st->pgid = pgid;
	st->sid = sid;
	return 0;
}

void
pidset_init(struct pidset *s)
{
	memset(s, 0, sizeof(*s));
}

void
pidset_deinit(struct pidset *s)
{
	free(s->v);
	pidset_init(s);
}

void
pidset_clear(struct pidset *s)
{
	s->n = 0;
}

static size_t
pidset_lower(const struct pidset *s, pid_t pid)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid] < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool
pidset_contains(const struct pidset *s, pid_t pid)
{
	size_t i = pidset_lower(s, pid);

	return i < s->n && s->v[i] == pid;
}

int
pidset_add(struct pidset *s, pid_t pid)
{
	size_t i = pidset_lower(s, pid);

	if (i < s->n && s->v[i] == pid)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		pid_t *v = reallocarray(s->v, cap, sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
	s->v[i] = pid;
	s->n++;
	return 1;
}

int
proc_foreach(int (*fn)(pid_t pid, void *data), void *data)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int r = 0;

	if (d == NULL)
		return -errno;
	while (r == 0 && (de = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end != '\0' || pid <= 0)
			continue;
		r = fn((pid_t)pid, data);
	}
	closedir(d);
	return r < 0 ? r : 0;
}

struct parent_map {
	struct proc_stat *v;
	size_t n, cap;
};

static int
parent_map_add(pid_t pid, void *data)
{
	struct parent_map *m = data;
	struct proc_stat st;

	if (proc_stat_read(pid, &st) < 0)
		return 0; /* gone already */
	/* exited, waiting to be reaped (a 'Z' leader with live threads is alive) */
	if (st.state == 'X' || (st.state == 'Z' && st.n_threads <= 1))
		return 0;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct proc_stat *v = reallocarray(m->v, cap, sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		m->v = v;
		m->cap = cap;
	}
	m->v[m->n++] = st;
	return 0;
}

int
proc_descendants(pid_t root, struct pidset *out)
{
	struct parent_map m = { 0 };
	bool grew = true;
	int r;

	pidset_clear(out);
	r = proc_foreach(parent_map_add, &m);
	if (r < 0) {
		free(m.v);
		return r;
	}
	/* Fixed point: add every process whose parent is root or a member. */
	while (grew) {
		grew = false;
		for (size_t i = 0; i < m.n; i++) {
			pid_t pp = m.v[i].ppid;

			if (m.v[i].pid == root || pidset_contains(out, m.v[i].pid))
				continue;
			if (pp == root || pidset_contains(out, pp)) {
				r = pidset_add(out, m.v[i].pid);
				if (r < 0) {
					free(m.v);
					return r;
				}
				grew = true;
			}
		}
	}
	free(m.v);
	return 0;
}

int
proc_signal_descendants(pid_t root, int sig, pid_t only_pgid, pid_t skip_pgid,
    const struct pidset *skip, struct pidset *out)
{
	struct pidset set;
	int r, count = 0;

	pidset_init(&set);
	r = proc_descendants(root, &set);
	for (size_t i = 0; r >= 0 && i < set.n; i++) {
		struct proc_stat st;
		_cleanup_close_ int pfd = -1;

		if (skip != NULL && pidset_contains(skip, set.v[i]))
			continue;
		pfd = pidfd_open_pid(set.v[i]);
		if (pfd < 0)
			continue;
		/* Verify after opening the pidfd: still inside root's tree? */
		if (proc_stat_read(set.v[i], &st) < 0)
			continue;
		if (st.ppid != root && !pidset_contains(&set, st.ppid))
			continue;
		if ((skip_pgid > 0 && st.pgid == skip_pgid) || (only_pgid > 0 && st.pgid != only_pgid))
			continue;
		if (pidfd_signal(pfd, sig) == 0) {
			count++;
			if (out != NULL && pidset_add(out, set.v[i]) < 0)
				r = -ENOMEM;
		}
	}
	pidset_deinit(&set);
	return r < 0 ? r : count;
}

static int
environ_find(pid_t pid, const char *name, char *out, size_t outlen, const char *exact)
{
	char path[64];
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = -1;
	size_t have = 0, cap = 0, nlen = strlen(name);

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (cap - have < 4096) {
			char *nb;

			if (cap >= (1u << 24))
				break; /* 16 MiB of environment: stop reading */
			cap = cap ? cap * 2 : 8192;
			nb = realloc(buf, cap);
			if (nb == NULL)
				return -ENOMEM;
			buf = nb;
		}
		n = read(fd, buf + have, cap - have - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	if (buf == NULL)
		return 0;
	buf[have] = '\0';
	for (size_t off = 0; off < have; off += strlen(buf + off) + 1) {
		const char *e = buf + off;

		if (exact != NULL) {
			if (strcmp(e, exact) == 0)
				return 1;
			continue;
		}
		if (strncmp(e, name, nlen) == 0 && e[nlen] == '=') {
			strlcpy(out, e + nlen + 1, outlen);
			return 1;
		}
	}
	return 0;
}

int
proc_environ_get(pid_t pid, const char *name, char *buf, size_t len)
{
	return environ_find(pid, name, buf, len, NULL);
}

int
proc_signal_if_environ(pid_t pid, const char *entry, int sig)
{
	_cleanup_close_ int pfd = pidfd_open_pid(pid);
	int r;

	if (pfd < 0)
		return pfd;
	r = environ_find(pid, "", NULL, 0, entry);
	if (r <= 0)
		return r < 0 ? r : -ESRCH;
	r = pidfd_signal(pfd, sig);
	return r < 0 ? r : 1;
}
