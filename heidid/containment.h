/*
 * containment.h: where heidid's job cgroups live, and how a job is kept
 * contained when heidid must act itself (startup sweep, lost shepherds).
 *
 * Layout: <root>/<instance>/job-<id>, where <root> is a subtree heidid may
 * own (its own delegated cgroup, a "heidi" directory it creates as root at
 * the top of the v2 hierarchy, or the --cgroup PATH) and <instance> names
 * this heidid (a hash of its socket path), so two heidids never touch each
 * other's jobs.
 */
#ifndef HEIDI_HEIDID_CONTAINMENT_H
#define HEIDI_HEIDID_CONTAINMENT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/cgroup.h"
#include "proto/msg.h"
#include "proto/pack.h"

struct containment {
	struct cgroup_host host;
	bool enabled;
	bool delegated;       /* root is our own cgroup, delegated to us */
	bool own_root;        /* root is heidi's shared "heidi" directory: removed once empty */
	char root[PATH_MAX];  /* absolute */
	char inst[PATH_MAX];  /* absolute: root/instance */
	char controllers[128];/* enabled for job leaves, e.g. "memory pids" */
	char why[512];        /* why cgroups are not used, when !enabled */
	char instance[32];
};

/*
 * Decide and prepare the subtree (opt: "auto", "none" or a path).  0, or
 * -errno for an explicit path that cannot be used (a fatal start-up error).
 */
int containment_setup(struct containment *c, const char *opt, const char *instance);
/* Remove the instance directory (and root, if we created it) when empty. */
void containment_teardown(struct containment *c);

/* The leaf of job id: absolute and relative to the mount. */
void containment_leaf(const struct containment *c, uint64_t id, char *abs, size_t abslen,
    char *rel, size_t rellen);

/* Can this request be contained and limited as asked?  0 or -EINVAL with err set. */
int containment_check(const struct containment *c, const struct msg_spawn *s,
    struct proto_error *err);

/*
 * Startup sweep: kill and remove every job cgroup of this instance, and
 * kill every process carrying this instance's marker.  Returns the number
 * of processes killed.
 */
int containment_sweep(struct containment *c);

/*
 * Dual safety for one job whose shepherd is gone: cgroup.kill on its leaf
 * (if any) and SIGKILL to every process carrying its marker.
 */
void containment_kill_job(struct containment *c, uint64_t id, const char *cgroup_rel);
/* The job's marker, "HEIDI_JOB_ID=<id>@<instance>" (docs/protocol.md §3.5), in buf. */
void containment_marker(const struct containment *c, uint64_t id, char *buf, size_t len);
/* Remove the leaf of a job once it is empty (false while still populated). */
bool containment_remove_leaf(struct containment *c, const char *cgroup_rel);

#endif
