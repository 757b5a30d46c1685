/*
 * test-cgroup.c: the file-level logic of common/cgroup.h, run against a
 * temporary directory that stands in for a cgroup (plain files named
 * like the kernel's).  Nothing here touches the real hierarchy; the one
 * host probe only checks that its answer is self-consistent.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cgroup.h"

static char dir[64];
static int dfd = -1;

static const char *files[] = { "cgroup.events", "memory.events", "memory.max", "cgroup.procs",
	"empty", "pids.max", "cpu.max", "memory.swap.max", "cgroup.controllers",
	"cgroup.subtree_control" };

static void
put_file(const char *name, const char *content)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(content);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, content, len), (ssize_t)len);
	close(fd);
}

/* The whole content of a file of the fake cgroup. */
static void
get_file(const char *name, char *buf, size_t len)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	cr_assert_geq(fd, 0);
	n = read(fd, buf, len - 1);
	cr_assert_geq(n, 0);
	buf[n] = '\0';
	close(fd);
}

static void
setup(void)
{
	strlcpy(dir, "/tmp/heidi-test-cg-XXXXXX", sizeof(dir));
	cr_assert_not_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dfd, 0);
	put_file("cgroup.events", "populated 1\nfrozen 0\n");
	put_file("memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 3\noom_group_kill 0\n");
	put_file("memory.max", "max\n");
	put_file("cgroup.procs", "12\n345\n6789\n");
	put_file("empty", "");
}

static void
teardown(void)
{
	char leaf[128];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlinkat(dfd, files[i], 0);
	snprintf(leaf, sizeof(leaf), "%s/leaf", dir);
	rmdir(leaf);
	close(dfd);
	cr_assert_eq(rmdir(dir), 0, "temporary directory %s not empty", dir);
}

TestSuite(cgroup, .init = setup, .fini = teardown);

Test(cgroup, attr_read_cuts_the_trailing_newline)
{
	char buf[64];

	cr_assert_eq(cgroup_attr_read(dfd, "memory.max", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "max");
	cr_assert_eq(cgroup_attr_read(dfd, "cgroup.events", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "populated 1\nfrozen 0");
	cr_assert_eq(cgroup_attr_read(dfd, "empty", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "");
}

Test(cgroup, attr_read_stays_within_the_buffer)
{
	char buf[8];

	memset(buf, 'X', sizeof(buf));
	cr_assert_eq(cgroup_attr_read(dfd, "cgroup.events", buf, 4), 0);
	cr_assert_eq(strlen(buf), 3);
	cr_assert_str_eq(buf, "pop");
	cr_assert_eq(buf[4], 'X', "wrote past the given length");
}

Test(cgroup, attr_read_of_missing_file_is_enoent)
{
	char buf[16];

	cr_assert_eq(cgroup_attr_read(dfd, "cpu.max", buf, sizeof(buf)), -ENOENT);
}

Test(cgroup, attr_write_writes_the_value)
{
	char buf[64];

	cr_assert_eq(cgroup_attr_write(dfd, "empty", "1048576"), 0);
	get_file("empty", buf, sizeof(buf));
	cr_assert_str_eq(buf, "1048576");
}

Test(cgroup, attr_write_never_creates_a_file)
{
	cr_assert_eq(cgroup_attr_write(dfd, "pids.max", "10"), -ENOENT);
	cr_assert_not(cgroup_attr_exists(dfd, "pids.max"));
}

Test(cgroup, attr_exists_reports_presence)
{
	cr_assert(cgroup_attr_exists(dfd, "memory.events"));
	cr_assert(cgroup_attr_exists(dfd, "empty"));
	cr_assert_not(cgroup_attr_exists(dfd, "cgroup.kill"));
}

Test(cgroup, keyed_read_matches_whole_keys)
{
	uint64_t v = 99;

	cr_assert_eq(cgroup_keyed_read(dfd, "memory.events", "oom_kill", &v), 0);
	cr_assert_eq(v, 3);
	/* "oom" is a prefix of "oom_kill" but a key of its own */
	cr_assert_eq(cgroup_keyed_read(dfd, "memory.events", "oom", &v), 0);
	cr_assert_eq(v, 1);
	cr_assert_eq(cgroup_keyed_read(dfd, "memory.events", "low", &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(cgroup_keyed_read(dfd, "memory.events", "max", &v), 0);
	cr_assert_eq(v, 7);
	cr_assert_eq(cgroup_keyed_read(dfd, "memory.events", "oom_group_kill", &v), 0);
	cr_assert_eq(v, 0);
}

Test(cgroup, keyed_read_fails_for_missing_key_or_file)
{
	uint64_t v = 99;

	/* "kill" only appears inside other keys */
	cr_assert_lt(cgroup_keyed_read(dfd, "memory.events", "kill", &v), 0);
	cr_assert_lt(cgroup_keyed_read(dfd, "memory.events", "oom_", &v), 0);
	cr_assert_lt(cgroup_keyed_read(dfd, "memory.events", "", &v), 0);
	cr_assert_eq(v, 99);
	cr_assert_eq(cgroup_keyed_read(dfd, "memory.stat", "anon", &v), -ENOENT);
}

Test(cgroup, events_populated_reads_from_the_start_each_time)
{
	int evfd = cgroup_events_open(dfd);

	cr_assert_geq(evfd, 0);
	cr_assert_eq(cgroup_events_populated(evfd), 1);
	cr_assert_eq(cgroup_events_populated(evfd), 1, "second read did not start at offset 0");
	put_file("cgroup.events", "populated 0\nfrozen 0\n");
	cr_assert_eq(cgroup_events_populated(evfd), 0);
	/* "populated" need not be the first line */
	put_file("cgroup.events", "frozen 1\npopulated 1\n");
	cr_assert_eq(cgroup_events_populated(evfd), 1);
	close(evfd);
}

Test(cgroup, events_populated_without_the_key_is_an_error)
{
	int evfd;

	put_file("cgroup.events", "frozen 0\n");
	evfd = cgroup_events_open(dfd);
	cr_assert_geq(evfd, 0);
	cr_assert_lt(cgroup_events_populated(evfd), 0);
	close(evfd);
}

Test(cgroup, events_open_of_a_non_cgroup_fails)
{
	unlinkat(dfd, "cgroup.events", 0);
	cr_assert_eq(cgroup_events_open(dfd), -ENOENT);
}

Test(cgroup, count_members_counts_cgroup_procs)
{
	cr_assert_eq(cgroup_count_members(dfd), 3);
	put_file("cgroup.procs", "");
	cr_assert_eq(cgroup_count_members(dfd), 0);
}

Test(cgroup, leaf_create_makes_and_opens_a_new_directory)
{
	char leaf[128];
	struct stat st;
	int fd;

	snprintf(leaf, sizeof(leaf), "%s/leaf", dir);
	fd = cgroup_leaf_create(leaf);
	cr_assert_geq(fd, 0, "cgroup_leaf_create: %s", strerror(-fd));
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

Test(cgroup, leaf_create_refuses_an_existing_directory)
{
	char leaf[128];
	int fd;

	snprintf(leaf, sizeof(leaf), "%s/leaf", dir);
	cr_assert_eq(mkdir(leaf, 0755), 0);
	fd = cgroup_leaf_create(leaf);
	cr_assert_eq(fd, -EEXIST, "adopted an existing directory (%d)", fd);
	/* the parent itself exists too */
	cr_assert_eq(cgroup_leaf_create(dir), -EEXIST);
}

Test(cgroup, open_needs_an_existing_directory)
{
	char path[128];
	int fd;

	fd = cgroup_open(dir);
	cr_assert_geq(fd, 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/nope", dir);
	cr_assert_eq(cgroup_open(path), -ENOENT);
	snprintf(path, sizeof(path), "%s/memory.max", dir);
	cr_assert_eq(cgroup_open(path), -ENOTDIR);
}

Test(cgroup, relpath_is_relative_to_the_mount)
{
	struct cgroup_host h = { .mode = CGROUP_MODE_UNIFIED };

	strlcpy(h.mount, "/sys/fs/cgroup", sizeof(h.mount));
	cr_assert_str_eq(cgroup_relpath(&h, "/sys/fs/cgroup/heidi/job-1"), "/heidi/job-1");
	cr_assert_str_eq(cgroup_relpath(&h, "/sys/fs/cgroup/x"), "/x");
	cr_assert_str_eq(cgroup_relpath(&h, "/sys/fs/cgroup"), "/");
	/* a sibling that merely shares the prefix is not below the mount */
	cr_assert_str_eq(cgroup_relpath(&h, "/sys/fs/cgroupX/y"), "/sys/fs/cgroupX/y");
	cr_assert_str_eq(cgroup_relpath(&h, "/elsewhere"), "/elsewhere");

	strlcpy(h.mount, "/sys/fs/cgroup/unified", sizeof(h.mount));
	h.mode = CGROUP_MODE_HYBRID;
	cr_assert_str_eq(cgroup_relpath(&h, "/sys/fs/cgroup/unified/a/b"), "/a/b");
}

Test(cgroup, mode_names)
{
	cr_assert_str_eq(cgroup_mode_name(CGROUP_MODE_NONE), "none");
	cr_assert_str_eq(cgroup_mode_name(CGROUP_MODE_UNIFIED), "unified");
	cr_assert_str_eq(cgroup_mode_name(CGROUP_MODE_HYBRID), "hybrid");
}

Test(cgroup, host_probe_is_self_consistent)
{
	struct cgroup_host h;

	memset(&h, 0x55, sizeof(h));
	cgroup_host_probe(&h);
	cr_assert(h.mode == CGROUP_MODE_NONE || h.mode == CGROUP_MODE_UNIFIED ||
	    h.mode == CGROUP_MODE_HYBRID, "mode %d", (int)h.mode);
	cr_assert_eq(h.mode == CGROUP_MODE_NONE, h.mount[0] == '\0', "mode %s but mount \"%s\"",
	    cgroup_mode_name(h.mode), h.mount);
	cr_assert_lt(strnlen(h.mount, sizeof(h.mount)), sizeof(h.mount));
	if (h.mode != CGROUP_MODE_NONE) {
		cr_assert_eq(h.mount[0], '/');
		cr_assert_eq(h.self[0], '/', "self \"%s\" is not absolute", h.self);
		/* the mount maps to the root of the hierarchy */
		cr_assert_str_eq(cgroup_relpath(&h, h.mount), "/");
	}
}

/* ---- limits and controllers ---- */

Test(cgroup, set_limits_writes_each_limit_in_the_kernels_format)
{
	struct cgroup_limits lim = { .mem_bytes = 104857600, .pids_max = 10, .cpu_millicores = 1500 };
	const char *failed = "x";
	char buf[64];

	put_file("pids.max", "max\n");
	put_file("cpu.max", "max 100000\n");
	cr_assert_eq(cgroup_set_limits(dfd, &lim, &failed), 0);
	cr_assert_null(failed);
	get_file("memory.max", buf, sizeof(buf));
	cr_assert_str_eq(buf, "104857600");
	get_file("pids.max", buf, sizeof(buf));
	cr_assert(strncmp(buf, "10", 2) == 0, "pids.max holds %s", buf); /* written at offset 0, like the kernel file */
}

Test(cgroup, set_limits_uses_a_100ms_period_for_cpu)
{
	struct cgroup_limits lim = { .cpu_millicores = 250 };
	const char *failed;
	char buf[64];

	put_file("cpu.max", "");
	cr_assert_eq(cgroup_set_limits(dfd, &lim, &failed), 0);
	get_file("cpu.max", buf, sizeof(buf));
	cr_assert_str_eq(buf, "25000 100000");
}

Test(cgroup, set_limits_names_the_file_that_failed)
{
	struct cgroup_limits lim = { .pids_max = 5 };
	const char *failed = NULL;

	/* no pids.max: the controller is not enabled for this cgroup */
	cr_assert_eq(cgroup_set_limits(dfd, &lim, &failed), -ENOENT);
	cr_assert_str_eq(failed, "pids.max");
}

Test(cgroup, set_limits_without_limits_writes_nothing)
{
	struct cgroup_limits lim = { 0 };
	const char *failed;
	char buf[64];

	cr_assert_eq(cgroup_set_limits(dfd, &lim, &failed), 0);
	get_file("memory.max", buf, sizeof(buf));
	cr_assert_str_eq(buf, "max\n");
}

Test(cgroup, enable_controllers_asks_only_for_what_is_offered)
{
	char enabled[64];

	put_file("cgroup.controllers", "cpuset io memory hugetlb\n");
	put_file("cgroup.subtree_control", "");
	cr_assert_eq(cgroup_enable_controllers(dfd, "memory pids cpu", enabled, sizeof(enabled)), 0);
	/* one write, "+memory": "cpu" is not "cpuset", pids is not offered */
	cr_assert_str_eq(enabled, "+memory");
}

Test(cgroup, enable_controllers_with_nothing_offered_writes_nothing)
{
	char enabled[64];

	put_file("cgroup.controllers", "hugetlb\n");
	put_file("cgroup.subtree_control", "");
	cr_assert_eq(cgroup_enable_controllers(dfd, "memory pids cpu", enabled, sizeof(enabled)), 0);
	cr_assert_str_eq(enabled, "");
}

Test(cgroup, word_in_matches_whole_words_only)
{
	cr_assert(cgroup_word_in("cpuset cpu io", "cpu"));
	cr_assert(cgroup_word_in("cpu", "cpu"));
	cr_assert(cgroup_word_in("memory pids\n", "pids"));
	cr_assert_not(cgroup_word_in("cpuset io", "cpu"));
	cr_assert_not(cgroup_word_in("mycpu", "cpu"));
	cr_assert_not(cgroup_word_in("", "cpu"));
	cr_assert_not(cgroup_word_in("cpu", ""));
}
