/*
 * cgroup.c: cgroup v2 leaf operations and host detection.
 *
 * Kernel behaviour relied on:
 *  - writing "1" to cgroup.kill SIGKILLs every process of the subtree
 *    atomically with respect to fork (5.14+);
 *  - cgroup.events raises POLLPRI (and POLLERR) whenever "populated"
 *    changes, and a re-read from offset 0 returns the current state;
 *  - zombies are no longer members (populated drops to 0 at exit), and
 *    rmdir succeeds once the cgroup is unpopulated.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/cgroup.h"
#include "common/fd.h"
#include "common/time.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

const char *
cgroup_mode_name(enum cgroup_mode mode)
{
	switch (mode) {
	case CGROUP_MODE_UNIFIED:
		return "unified";
	case CGROUP_MODE_HYBRID:
		return "hybrid";
	default:
		return "none";
	}
}

static bool
is_cgroup2(const char *path)
{
	struct statfs sfs;

	return statfs(path, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
}

/* The first cgroup2 mount in /proc/self/mountinfo. */
static bool
find_cgroup2_mount(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		char *sep = strstr(line, " - ");
		char mnt[PATH_MAX], fstype[64];

		if (sep == NULL || sscanf(sep + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2") != 0)
			continue;
		/* fields: id parent major:minor root mountpoint ... */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		strlcpy(buf, mnt, len);
		found = true;
	}
	fclose(f);
	return found;
}

void
cgroup_host_probe(struct cgroup_host *h)
{
	FILE *f;
	char line[PATH_MAX + 8];

	memset(h, 0, sizeof(*h));
	if (is_cgroup2("/sys/fs/cgroup")) {
		h->mode = CGROUP_MODE_UNIFIED;
		strlcpy(h->mount, "/sys/fs/cgroup", sizeof(h->mount));
	} else if (is_cgroup2("/sys/fs/cgroup/unified")) {
		h->mode = CGROUP_MODE_HYBRID;
		strlcpy(h->mount, "/sys/fs/cgroup/unified", sizeof(h->mount));
	} else if (find_cgroup2_mount(h->mount, sizeof(h->mount)) && is_cgroup2(h->mount)) {
		h->mode = CGROUP_MODE_HYBRID;
	} else {
		h->mount[0] = '\0';
		return;
	}
	strlcpy(h->self, "/", sizeof(h->self));
	f = fopen("/proc/self/cgroup", "re");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			strlcpy(h->self, line + 3, sizeof(h->self));
			break;
		}
	}
	fclose(f);
}

const char *
cgroup_relpath(const struct cgroup_host *h, const char *path)
{
	size_t n = strlen(h->mount);

	if (n > 0 && strncmp(path, h->mount, n) == 0 && (path[n] == '/' || path[n] == '\0'))
		return path[n] == '\0' ? "/" : path + n;
	return path;
}

int
cgroup_attr_read(int dirfd, const char *name, char *buf, size_t len)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, len - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return 0;
}

int
cgroup_attr_write(int dirfd, const char *name, const char *value)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(value);
	ssize_t n;

	if (fd < 0)
		return -errno;
	do
		n = write(fd, value, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

bool
cgroup_attr_exists(int dirfd, const char *name)
{
	return faccessat(dirfd, name, F_OK, 0) == 0;
}

int
cgroup_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int
cgroup_leaf_create(const char *path)
{
	if (mkdir(path, 0755) < 0)
		return -errno;
	return cgroup_open(path);
}

/* Read cgroup.procs into a pidset. */
static int
cgroup_members(int dirfd, struct pidset *out)
{
	_cleanup_close_ int fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	FILE *f;
	int pid, r = 0;

	pidset_clear(out);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "r");
	if (f == NULL)
		return -errno;
	fd = -1;
	while (fscanf(f, "%d", &pid) == 1)
		if (pidset_add(out, pid) < 0) {
			r = -ENOMEM;
			break;
		}
	fclose(f);
	return r;
}

int
cgroup_count_members(int dirfd)
{
	struct pidset s;
	int r;

	pidset_init(&s);
	r = cgroup_members(dirfd, &s);
	if (r == 0)
		r = (int)s.n;
	pidset_deinit(&s);
	return r;
}

/* Is pid (still) in the v2 cgroup relpath? */
static bool
pid_in_cgroup(pid_t pid, const char *relpath)
{
	char path[64], line[PATH_MAX + 8];
	bool in = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		in = strcmp(line + 3, relpath) == 0;
		break;
	}
	fclose(f);
	return in;
}

int
cgroup_signal_members(int dirfd, const char *relpath, int sig, struct pidset *seen)
{
	struct pidset set;
	int r, count = 0;

	pidset_init(&set);
	r = cgroup_members(dirfd, &set);
	for (size_t i = 0; r == 0 && i < set.n; i++) {
		_cleanup_close_ int pfd = pidfd_open_pid(set.v[i]);

		if (pfd < 0 || !pid_in_cgroup(set.v[i], relpath))
			continue;
		if (pidfd_signal(pfd, sig) == 0) {
			count++;
			if (seen != NULL && pidset_add(seen, set.v[i]) < 0)
				r = -ENOMEM;
		}
	}
	pidset_deinit(&set);
	return r < 0 ? r : count;
}

int
cgroup_kill(int dirfd, const char *relpath)
{
	int r = cgroup_attr_write(dirfd, "cgroup.kill", "1");

	if (r != -ENOENT)
		return r;
	/* Before 5.14: SIGKILL every member until none is left. */
	for (int round = 0; round < 1000; round++) {
		r = cgroup_signal_members(dirfd, relpath, SIGKILL, NULL);
		if (r <= 0)
			return r;
	}
	return -EAGAIN;
}

int
cgroup_events_open(int dirfd)
{
	int fd = openat(dirfd, "cgroup.events", O_RDONLY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int
keyed_find(const char *buf, const char *key, uint64_t *valuep)
{
	size_t klen = strlen(key);

	for (const char *p = buf; p != NULL && *p != '\0';) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ' ') {
			*valuep = strtoull(p + klen + 1, NULL, 10);
			return 0;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return -ENOENT;
}

int
cgroup_events_populated(int evfd)
{
	char buf[256];
	uint64_t v;
	ssize_t n;

	n = pread(evfd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (keyed_find(buf, "populated", &v) < 0)
		return -EBADMSG;
	return v != 0;
}

int
cgroup_keyed_read(int dirfd, const char *file, const char *key, uint64_t *valuep)
{
	char buf[1024];
	int r = cgroup_attr_read(dirfd, file, buf, sizeof(buf));

	if (r < 0)
		return r;
	return keyed_find(buf, key, valuep);
}

int
cgroup_destroy(const char *path, const char *relpath, int timeout_ms)
{
	_cleanup_close_ int dirfd = cgroup_open(path);
	_cleanup_close_ int evfd = -1;
	uint64_t deadline = time_now_ns() + (uint64_t)timeout_ms * NSEC_PER_MSEC;
	int r;

	if (dirfd < 0)
		return dirfd == -ENOENT ? 0 : dirfd;
	evfd = cgroup_events_open(dirfd);
	if (evfd < 0)
		return evfd;
	r = cgroup_kill(dirfd, relpath);
	if (r < 0 && r != -ENOENT)
		return r;
	while ((r = cgroup_events_populated(evfd)) > 0) {
		struct pollfd pfd = { .fd = evfd, .events = POLLPRI };
		uint64_t now = time_now_ns();

		if (now >= deadline)
			return -EBUSY;
		poll(&pfd, 1, (int)((deadline - now) / NSEC_PER_MSEC) + 1);
	}
	if (r < 0)
		return r;
	if (rmdir(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

bool
cgroup_word_in(const char *list, const char *word)
{
	size_t n = strlen(word);

	if (n == 0)
		return false;
	for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0' || p[n] == '\n'))
			return true;
	return false;
}

int
cgroup_set_limits(int dirfd, const struct cgroup_limits *lim, const char **failedp)
{
	char v[64];
	int r;

	*failedp = NULL;
	if (lim->mem_bytes > 0) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)lim->mem_bytes);
		if ((r = cgroup_attr_write(dirfd, "memory.max", v)) < 0) {
			*failedp = "memory.max";
			return r;
		}
		/* no swap: the limit is the job's memory, as users expect (absent without swap) */
		(void)cgroup_attr_write(dirfd, "memory.swap.max", "0");
	}
	if (lim->pids_max > 0) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)lim->pids_max);
		if ((r = cgroup_attr_write(dirfd, "pids.max", v)) < 0) {
			*failedp = "pids.max";
			return r;
		}
	}
	if (lim->cpu_millicores > 0) {
		/* quota per 100 ms period: 1000 millicores = one CPU = 100000 us */
		snprintf(v, sizeof(v), "%llu 100000", (unsigned long long)lim->cpu_millicores * 100);
		if ((r = cgroup_attr_write(dirfd, "cpu.max", v)) < 0) {
			*failedp = "cpu.max";
			return r;
		}
	}
	return 0;
}

int
cgroup_enable_controllers(int dirfd, const char *wanted, char *enabled, size_t len)
{
	char avail[256], want[256], *save = NULL;
	int r = 0;

	if (enabled != NULL && len > 0)
		enabled[0] = '\0';
	if (cgroup_attr_read(dirfd, "cgroup.controllers", avail, sizeof(avail)) < 0)
		avail[0] = '\0';
	strlcpy(want, wanted, sizeof(want));
	for (char *w = strtok_r(want, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
		char v[64];
		int e;

		if (!cgroup_word_in(avail, w))
			continue;
		snprintf(v, sizeof(v), "+%s", w);
		e = cgroup_attr_write(dirfd, "cgroup.subtree_control", v);
		if (e == -EBUSY)
			r = -EBUSY;
	}
	if (enabled != NULL && len > 0 &&
	    cgroup_attr_read(dirfd, "cgroup.subtree_control", enabled, len) < 0)
		enabled[0] = '\0';
	return r;
}
