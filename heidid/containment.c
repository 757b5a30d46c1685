/*
 * containment.c: choosing the cgroup subtree, sweeping it, and killing a
 * job's tree when its shepherd is gone.
 *
 * Only the cgroup v2 hierarchy is ever written; on a hybrid host the v1
 * controllers' cgroups are left exactly as they are.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/log.h"
#include "common/proc.h"
#include "heidid/containment.h"

#define WANTED_CONTROLLERS "memory pids cpu"

/* Enable what dir's children can get; -EBUSY if dir has processes. */
static int
enable_controllers(const char *dir)
{
	_cleanup_close_ int fd = cgroup_open(dir);

	if (fd < 0)
		return fd;
	return cgroup_enable_controllers(fd, WANTED_CONTROLLERS, NULL, 0);
}

static bool
dir_usable(const char *path, uid_t uid)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (uid == 0 || st.st_uid == uid) &&
	       access(path, W_OK) == 0;
}

/* Move this process into root/heidid-<instance> so root may hand out controllers. */
static int
move_self(struct containment *c)
{
	char leaf[PATH_MAX + 64];
	_cleanup_close_ int fd = -1;

	snprintf(leaf, sizeof(leaf), "%s/heidid-%s", c->root, c->instance);
	if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
		return -errno;
	fd = cgroup_open(leaf);
	if (fd < 0)
		return fd;
	return cgroup_attr_write(fd, "cgroup.procs", "0");
}

static int
prepare_instance(struct containment *c)
{
	_cleanup_close_ int fd = -1;
	int r;

	r = enable_controllers(c->root);
	if (r == -EBUSY && c->delegated && move_self(c) == 0)
		r = enable_controllers(c->root);
	snprintf(c->inst, sizeof(c->inst), "%s/%s", c->root, c->instance);
	if (mkdir(c->inst, 0755) < 0 && errno != EEXIST)
		return -errno;
	(void)enable_controllers(c->inst);
	fd = cgroup_open(c->inst);
	if (fd < 0)
		return fd;
	if (cgroup_attr_read(fd, "cgroup.subtree_control", c->controllers, sizeof(c->controllers)) < 0)
		c->controllers[0] = '\0';
	/* A leaf must be creatable: try one (and remove it). */
	{
		char probe[PATH_MAX + 32];

		snprintf(probe, sizeof(probe), "%s/probe-%d", c->inst, (int)getpid());
		if (mkdir(probe, 0755) < 0)
			return -errno;
		rmdir(probe);
	}
	c->enabled = true;
	return 0;
}

int
containment_setup(struct containment *c, const char *opt, const char *instance)
{
	uid_t uid = geteuid();
	char own[PATH_MAX * 2];
	int r;

	memset(c, 0, sizeof(*c));
	strlcpy(c->instance, instance, sizeof(c->instance));
	cgroup_host_probe(&c->host);
	if (strcmp(opt, "none") == 0) {
		snprintf(c->why, sizeof(c->why), "cgroups disabled with --cgroup none");
		return 0;
	}
	if (strcmp(opt, "auto") != 0) {
		struct cgroup_host h = c->host;

		if (h.mode == CGROUP_MODE_NONE || strncmp(opt, h.mount, strlen(h.mount)) != 0 ||
		    !dir_usable(opt, uid)) {
			snprintf(c->why, sizeof(c->why),
			    "--cgroup %s is not a writable directory of the cgroup v2 hierarchy%s%s", opt,
			    h.mode == CGROUP_MODE_NONE ? "" : " at ", h.mount);
			return -EINVAL;
		}
		strlcpy(c->root, opt, sizeof(c->root));
		r = prepare_instance(c);
		if (r < 0)
			snprintf(c->why, sizeof(c->why), "cannot use --cgroup %s: %s", opt, strerror(-r));
		return r;
	}
	if (c->host.mode == CGROUP_MODE_NONE) {
		snprintf(c->why, sizeof(c->why), "no cgroup v2 hierarchy is mounted");
		return 0;
	}
	snprintf(own, sizeof(own), "%s%s", c->host.mount,
	    strcmp(c->host.self, "/") == 0 ? "" : c->host.self);
	if (uid != 0 && strcmp(c->host.self, "/") != 0 && dir_usable(own, uid)) {
		/* our own cgroup, delegated to us (systemd Delegate=yes) */
		strlcpy(c->root, own, sizeof(c->root));
		c->delegated = true;
	} else if (uid == 0 || access(c->host.mount, W_OK) == 0) {
		snprintf(c->root, sizeof(c->root), "%s/heidi", c->host.mount);
		c->own_root = true;
		if (mkdir(c->root, 0755) < 0 && errno != EEXIST) {
			snprintf(c->why, sizeof(c->why), "cannot create %s: %s", c->root, strerror(errno));
			c->root[0] = '\0';
			return 0;
		}
	} else {
		snprintf(c->why, sizeof(c->why),
		    "no writable cgroup v2 subtree: %s is not delegated to uid %u", own, (unsigned)uid);
		return 0;
	}
	r = prepare_instance(c);
	if (r < 0) {
		snprintf(c->why, sizeof(c->why), "cannot create job cgroups under %s: %s", c->root,
		    strerror(-r));
		c->enabled = false;
	}
	return 0;
}

void
containment_teardown(struct containment *c)
{
	if (!c->enabled)
		return;
	rmdir(c->inst);
	if (c->delegated) {
		char leaf[PATH_MAX + 64];

		snprintf(leaf, sizeof(leaf), "%s/heidid-%s", c->root, c->instance);
		rmdir(leaf); /* fails while we are still in it: harmless */
	}
	/* heidi's shared directory goes once no instance uses it; a
	 * delegated cgroup or a --cgroup PATH belongs to someone else */
	if (c->own_root)
		rmdir(c->root);
}

void
containment_leaf(const struct containment *c, uint64_t id, char *abs, size_t abslen, char *rel,
    size_t rellen)
{
	snprintf(abs, abslen, "%s/job-%llu", c->inst, (unsigned long long)id);
	snprintf(rel, rellen, "%s", cgroup_relpath(&c->host, abs));
}

int
containment_check(const struct containment *c, const struct msg_spawn *s, struct proto_error *err)
{
	static const struct {
		const char *ctrl, *opt;
		size_t off;
	} limits[] = {
		{ "memory", "--mem", offsetof(struct msg_spawn, mem_bytes) },
		{ "pids", "--pids", offsetof(struct msg_spawn, pids_max) },
		{ "cpu", "--cpu", offsetof(struct msg_spawn, cpu_millicores) },
	};

	if (s->containment == CONTAIN_CGROUP && !c->enabled)
		return proto_error_set(err, "containment_unavailable",
		    "cgroup containment is not available on this host: %s", c->why);
	for (size_t i = 0; i < ARRAY_SIZE(limits); i++) {
		uint64_t v;

		memcpy(&v, (const char *)s + limits[i].off, sizeof(v));
		if (v == 0)
			continue;
		if (s->containment == CONTAIN_PGROUP)
			return proto_error_set(err, "limit_unsupported",
			    "%s needs cgroup containment, but --containment pgroup was asked for",
			    limits[i].opt);
		if (!c->enabled)
			return proto_error_set(err, "limit_unsupported",
			    "%s cannot be enforced: %s", limits[i].opt, c->why);
		if (!cgroup_word_in(c->controllers, limits[i].ctrl))
			return proto_error_set(err, "limit_unsupported",
			    "%s cannot be enforced: the %s controller is not available in %s%s",
			    limits[i].opt, limits[i].ctrl, c->inst,
			    c->host.mode == CGROUP_MODE_HYBRID
				? " (hybrid host: the controllers are bound to cgroup v1)"
				: "");
	}
	return 0;
}

struct marker_sweep {
	const char *suffix; /* "@instance" */
	const char *exact;  /* "HEIDI_JOB_ID=<id>@<instance>" or NULL */
	int killed;
};

static int
sweep_one(pid_t pid, void *data)
{
	struct marker_sweep *ms = data;
	char val[128], entry[160];
	size_t vl, sl = strlen(ms->suffix);

	if (pid == getpid())
		return 0;
	if (proc_environ_get(pid, "HEIDI_JOB_ID", val, sizeof(val)) <= 0)
		return 0;
	vl = strlen(val);
	if (vl < sl || strcmp(val + vl - sl, ms->suffix) != 0)
		return 0;
	snprintf(entry, sizeof(entry), "HEIDI_JOB_ID=%s", val);
	if (ms->exact != NULL && strcmp(entry, ms->exact) != 0)
		return 0;
	/* re-verified through the pidfd: a recycled pid is never hit */
	if (proc_signal_if_environ(pid, entry, SIGKILL) > 0)
		ms->killed++;
	return 0;
}

static int
marker_kill(const char *instance, const char *exact)
{
	char suffix[64];
	struct marker_sweep ms = { .suffix = suffix, .exact = exact };

	snprintf(suffix, sizeof(suffix), "@%s", instance);
	proc_foreach(sweep_one, &ms);
	return ms.killed;
}

int
containment_sweep(struct containment *c)
{
	int total = 0;

	if (c->enabled) {
		DIR *d = opendir(c->inst);
		struct dirent *de;

		while (d != NULL && (de = readdir(d)) != NULL) {
			char path[PATH_MAX * 2];
			_cleanup_close_ int fd = -1;
			int n, r;

			if (strncmp(de->d_name, "job-", 4) != 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", c->inst, de->d_name);
			fd = cgroup_open(path);
			n = fd >= 0 ? cgroup_count_members(fd) : 0;
			r = cgroup_destroy(path, cgroup_relpath(&c->host, path), 5000);
			if (r < 0)
				log_warnx("sweep: cannot remove %s: %s", path, strerror(-r));
			else
				log_info("sweep: removed leftover cgroup %s (%d processes killed)", path,
				    n > 0 ? n : 0);
			total += n > 0 ? n : 0;
		}
		if (d != NULL)
			closedir(d);
	}
	{
		int n = marker_kill(c->instance, NULL);

		if (n > 0)
			log_info("sweep: killed %d leftover job processes carrying this instance's marker", n);
		total += n;
	}
	return total;
}

void
containment_kill_job(struct containment *c, uint64_t id, const char *cgroup_rel)
{
	char exact[128];

	if (cgroup_rel != NULL && c->enabled) {
		char path[PATH_MAX * 2];
		_cleanup_close_ int fd = -1;

		snprintf(path, sizeof(path), "%s%s", c->host.mount, cgroup_rel);
		fd = cgroup_open(path);
		if (fd >= 0)
			cgroup_kill(fd, cgroup_rel);
	}
	containment_marker(c, id, exact, sizeof(exact));
	marker_kill(c->instance, exact);
}

void
containment_marker(const struct containment *c, uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "HEIDI_JOB_ID=%llu@%s", (unsigned long long)id, c->instance);
}

bool
containment_remove_leaf(struct containment *c, const char *cgroup_rel)
{
	char path[PATH_MAX * 2];

	snprintf(path, sizeof(path), "%s%s", c->host.mount, cgroup_rel);
	if (rmdir(path) == 0 || errno == ENOENT)
		return true;
	return false;
}
