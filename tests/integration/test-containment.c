/*
 * test-containment.c: no process of a job outlives it (issue: containment).
 *
 * The same checks run in both containment modes: suite "cgroup" (heidid's
 * default; skipped with the reason where no cgroup v2 is writable) and
 * suite "pgroup" (heidid --cgroup none: session, process group, subreaper
 * and the HEIDI_JOB_ID marker).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"

static struct hd H;
static bool cgroup_mode;

static char *
status_of(const char *job)
{
	struct result r;
	char *out;

	ctl(&H, &r, "--json", "status", job, NULL);
	cr_assert_eq(r.status, 0, "status %s: %s", job, r.err);
	out = strdup(r.out);
	result_free(&r);
	return out;
}

static bool
host_gives_cgroups(void)
{
	struct result r;
	bool yes;

	ctl(&H, &r, "--json", "stats", NULL);
	yes = strstr(r.out, "\"containment\":\"cgroup\"") != NULL;
	result_free(&r);
	return yes;
}

static void
setup_cgroup(void)
{
	cgroup_mode = true;
	hd_start(&H, "--max-running", "32", NULL);
	if (!host_gives_cgroups()) {
		char why[512] = "";
		struct result r;

		ctl(&H, &r, "--json", "stats", NULL);
		snprintf(why, sizeof(why), "no writable cgroup v2 hierarchy here: %s", r.out);
		result_free(&r);
		hd_cleanup(&H);
		cr_skip_test("%s", why);
	}
}

static void
setup_pgroup(void)
{
	cgroup_mode = false;
	hd_start(&H, "--max-running", "32", "--cgroup", "none", NULL);
}

static void
teardown(void)
{
	hd_cleanup(&H);
}

TestSuite(cgroup, .init = setup_cgroup, .fini = teardown, .timeout = 120);
TestSuite(pgroup, .init = setup_pgroup, .fini = teardown, .timeout = 120);

static void
path_in_dir(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", H.dir, name);
}

static void
spawn_d(const char *name, const char *script)
{
	struct result r;

	ctl(&H, &r, "spawn", "-d", "-n", name, "--", "/bin/sh", "-c", script, NULL);
	cr_assert_eq(r.status, 0, "spawn %s: %s", name, r.err);
	result_free(&r);
}

/* ---- the checks, for both modes ---- */

static void
check_containment_field(void)
{
	struct result r;
	char *js;

	ctl(&H, &r, "spawn", "-n", "where", "--", "true", NULL);
	result_free(&r);
	js = status_of("where");
	cr_assert_str_eq(json_field(js, "containment"), cgroup_mode ? "cgroup" : "pgroup", "%s", js);
	if (!cgroup_mode)
		cr_assert_str_eq(json_field(js, "cgroup"), "null");
	free(js);
}

static void
check_setsid_escaper(void)
{
	char pf[512], script[700];
	struct result r;
	pid_t esc;

	path_in_dir(pf, sizeof(pf), "esc.pid");
	snprintf(script, sizeof(script), "setsid sleep 1000 & echo $! > %s; exec sleep 1000", pf);
	spawn_d("esc", script);
	esc = read_pid_file(pf, 10000);
	cr_assert(pid_alive(esc));
	ctl(&H, &r, "stop", "esc", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	result_free(&r);
	cr_assert(!pid_alive(esc), "the setsid escaper outlived its job");
}

static void
check_double_fork_daemon(void)
{
	char pf[512];
	struct result r;
	pid_t daemon;
	char *js;

	path_in_dir(pf, sizeof(pf), "daemon.pid");
	ctl(&H, &r, "spawn", "-n", "dbl", "--", path_helper("daemonize"), pf, NULL);
	cr_assert_eq(r.status, 0, "the job must report exit 0: %d %s", r.status, r.err);
	result_free(&r);
	daemon = read_pid_file(pf, 1000);
	cr_assert(!pid_alive(daemon), "the daemonized process outlived its job");
	js = status_of("dbl");
	cr_assert_eq(json_int(js, "exit_code"), 0);
	cr_assert_geq(json_int(js, "leftovers"), 1, "%s", js);
	cr_assert_str_eq(json_field(js, "reason"), "exited");
	free(js);
}

static void
check_fork_storm(void)
{
	struct result r;
	long long t0;

	spawn_d("storm", "while :; do sleep 5 & done");
	msleep(500);
	cr_assert_gt(count_marked(H.instance), 10, "the storm did not get going");
	t0 = now_ms();
	ctl(&H, &r, "stop", "--grace", "2s", "storm", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	result_free(&r);
	cr_assert_eq(count_marked(H.instance), 0, "processes of the storm survived its stop");
	/* promptly: TERM ends it well inside the grace (bound generous for slow machines) */
	cr_assert_lt(now_ms() - t0, 10000);
}

static pid_t
shepherd_of(const char *job)
{
	char *js = status_of(job);
	pid_t leader = (pid_t)json_int(js, "pid");
	pid_t sh = ppid_of(leader);

	free(js);
	cr_assert_gt(sh, 1, "no shepherd for %s", job);
	cr_assert_neq(sh, H.pid);
	return sh;
}

static void
check_orphans_reaped(void)
{
	char pf[512], script[800];
	struct result r;
	pid_t shep, orphan;

	path_in_dir(pf, sizeof(pf), "orphans");
	snprintf(script, sizeof(script),
	    "for i in $(seq 50); do (sleep 0.2 &); done; (sleep 100 & echo $! > %s); exec sleep 100", pf);
	spawn_d("orph", script);
	orphan = read_pid_file(pf, 10000);
	shep = shepherd_of("orph");
	/* an orphaned grandchild is re-parented to the shepherd */
	cr_assert_eq(ppid_of(orphan), shep, "the orphan's parent is %d, the shepherd %d",
	    (int)ppid_of(orphan), (int)shep);
	/* the 50 short-lived orphans come and go: none stays a zombie */
	{
		long long end = now_ms() + 10000;

		while (zombies_of(shep) > 0 && now_ms() < end)
			msleep(20);
		msleep(500);
		cr_assert_eq(zombies_of(shep), 0, "zombies under the shepherd");
	}
	ctl(&H, &r, "stop", "orph", NULL);
	result_free(&r);
	cr_assert(!pid_alive(orphan));
}

static void
check_sweep_after_total_loss(void)
{
	pid_t pids[6], sheps[16];
	char pf[512], script[1200];
	int n;

	for (int i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "s%d", i);
		snprintf(pf, sizeof(pf), "%s/sw%d", H.dir, i);
		snprintf(script, sizeof(script),
		    "sleep 1000 & echo $! > %s.a; setsid sleep 1000 & echo $! > %s.b; exec sleep 1000", pf, pf);
		spawn_d(name, script);
		strcat(pf, ".a");
		pids[2 * i] = read_pid_file(pf, 10000);
		pf[strlen(pf) - 1] = 'b';
		pids[2 * i + 1] = read_pid_file(pf, 10000);
	}
	/* freeze heidid so it cannot react, kill every shepherd, then heidid */
	kill(H.pid, SIGSTOP);
	n = children_of(H.pid, sheps, 16);
	cr_assert_geq(n, 3, "expected 3 shepherds (and the idle pool), found %d", n);
	for (int i = 0; i < n; i++)
		kill(sheps[i], SIGKILL);
	for (int i = 0; i < n; i++)
		cr_assert(wait_pid_gone(sheps[i], 5000));
	kill(H.pid, SIGKILL);
	kill(H.pid, SIGCONT);
	cr_assert_eq(hd_wait(&H, 10000), 128 + SIGKILL);
	msleep(200);
	for (int i = 0; i < 6; i++)
		cr_assert(pid_alive(pids[i]), "job process %d died without heidi: nothing left to sweep", pids[i]);
	/* the next heidid on the same socket sweeps them */
	{
		char dir[256];
		const char *extra_cg[] = { "--max-running", "32", NULL };
		const char *extra_pg[] = { "--max-running", "32", "--cgroup", "none", NULL };
		char log[8192] = "";
		FILE *f;

		snprintf(dir, sizeof(dir), "%s", H.dir);
		hd_start_in(&H, dir, cgroup_mode ? extra_cg : extra_pg);
		for (int i = 0; i < 6; i++)
			cr_assert(wait_pid_gone(pids[i], 5000), "the sweep missed %d", pids[i]);
		f = fopen(H.log, "r");
		cr_assert_not_null(f);
		log[fread(log, 1, sizeof(log) - 1, f)] = '\0';
		fclose(f);
		cr_assert_not_null(strstr(log, "sweep:"), "the sweep is not logged: %s", log);
	}
}

static void
check_two_instances(void)
{
	struct hd other;
	char pf[512], script[700];
	struct result r;
	pid_t theirs;

	if (cgroup_mode)
		hd_start(&other, "--max-running", "8", NULL);
	else
		hd_start(&other, "--max-running", "8", "--cgroup", "none", NULL);
	cr_assert_str_neq(other.instance, H.instance);
	snprintf(pf, sizeof(pf), "%s/theirs.pid", other.dir);
	snprintf(script, sizeof(script), "setsid sleep 1000 & echo $! > %s; exec sleep 1000", pf);
	ctl(&other, &r, "spawn", "-d", "-n", "theirs", "--", "/bin/sh", "-c", script, NULL);
	cr_assert_eq(r.status, 0);
	result_free(&r);
	theirs = read_pid_file(pf, 10000);

	/* ours cannot name it ... */
	ctl(&H, &r, "stop", "theirs", NULL);
	cr_assert_eq(r.status, 1);
	result_free(&r);
	/* ... and neither our death nor our sweep touches it */
	kill(H.pid, SIGKILL);
	hd_wait(&H, 10000);
	{
		char dir[256];
		const char *extra_cg[] = { NULL };
		const char *extra_pg[] = { "--cgroup", "none", NULL };

		snprintf(dir, sizeof(dir), "%s", H.dir);
		hd_start_in(&H, dir, cgroup_mode ? extra_cg : extra_pg);
	}
	msleep(300);
	cr_assert(pid_alive(theirs), "another instance's job was swept");
	ctl(&other, &r, "stop", "theirs", NULL);
	cr_assert_eq(r.status, 0);
	result_free(&r);
	cr_assert(!pid_alive(theirs));
	hd_cleanup(&other);
}

static void
check_shepherd_lost(void)
{
	char pf[512], script[1200];
	struct result r;
	pid_t child, escaper, shep;
	char *js;

	path_in_dir(pf, sizeof(pf), "lost");
	snprintf(script, sizeof(script),
	    "sleep 1000 & echo $! > %s.a; setsid sleep 1000 & echo $! > %s.b; exec sleep 1000", pf, pf);
	spawn_d("lost", script);
	strcat(pf, ".a");
	child = read_pid_file(pf, 10000);
	pf[strlen(pf) - 1] = 'b';
	escaper = read_pid_file(pf, 10000);
	shep = shepherd_of("lost");
	kill(shep, SIGKILL);
	ctl(&H, &r, "wait", "lost", NULL);
	cr_assert_eq(r.status, 125);
	result_free(&r);
	js = status_of("lost");
	cr_assert_str_eq(json_field(js, "reason"), "shepherd_lost", "%s", js);
	free(js);
	cr_assert(wait_pid_gone(child, 5000), "heidid's dual safety missed the child");
	cr_assert(wait_pid_gone(escaper, 5000), "heidid's dual safety missed the escaper");
	cr_assert(wait_no_marked(H.instance, 5000));
}

#define BOTH(name, fn)                          \
	Test(cgroup, name) { fn(); }            \
	Test(pgroup, name) { fn(); }

BOTH(jobs_report_their_containment, check_containment_field)
BOTH(a_setsid_escaper_is_gone_after_stop, check_setsid_escaper)
BOTH(a_double_forking_daemon_is_a_leftover_and_is_gone_when_the_job_ends, check_double_fork_daemon)
BOTH(a_fork_storm_is_stopped_completely_and_promptly, check_fork_storm)
BOTH(short_lived_orphans_are_reaped_and_their_parent_is_the_shepherd, check_orphans_reaped)
BOTH(after_heidid_and_every_shepherd_die_the_next_start_sweeps_the_jobs, check_sweep_after_total_loss)
BOTH(two_instances_never_touch_each_others_jobs, check_two_instances)
BOTH(a_lost_shepherds_job_is_killed_by_heidid, check_shepherd_lost)

/* ---- cgroup mode only ---- */

static char *
cgroup_abs(const char *rel)
{
	static const char *const mounts[] = { "/sys/fs/cgroup/unified", "/sys/fs/cgroup" };
	char *path = NULL;

	for (size_t i = 0; i < 2; i++) {
		char p[512], probe[600];

		snprintf(p, sizeof(p), "%s%s", mounts[i], rel);
		snprintf(probe, sizeof(probe), "%s/cgroup.procs", mounts[i]);
		if (access(probe, F_OK) == 0 && strstr(mounts[i], "unified") != NULL) {
			path = strdup(p);
			break;
		}
		if (access(probe, F_OK) == 0 && path == NULL)
			path = strdup(p);
	}
	return path;
}

Test(cgroup, job_cgroups_are_removed_when_jobs_end)
{
	char pf[512], script[600], *js, *rel, *abs;
	struct result r;

	path_in_dir(pf, sizeof(pf), "cg.pid");
	snprintf(script, sizeof(script), "echo $$ > %s; exec sleep 1000", pf);
	spawn_d("cg1", script);
	read_pid_file(pf, 10000);
	js = status_of("cg1");
	rel = json_field(js, "cgroup");
	cr_assert_not_null(rel);
	cr_assert(strstr(rel, H.instance) != NULL, "%s", rel);
	abs = cgroup_abs(rel);
	cr_assert_eq(access(abs, F_OK), 0, "%s does not exist while the job runs", abs);
	{
		char procs[600], buf[256] = "";
		FILE *f;

		snprintf(procs, sizeof(procs), "%s/cgroup.procs", abs);
		f = fopen(procs, "r");
		cr_assert_not_null(f);
		cr_assert_not_null(fgets(buf, sizeof(buf), f));
		fclose(f);
		cr_assert_eq(atoi(buf), (int)json_int(js, "pid"));
	}
	ctl(&H, &r, "stop", "cg1", NULL);
	result_free(&r);
	cr_assert_neq(access(abs, F_OK), 0, "%s is still there after the job ended", abs);
	free(js);
	free(rel);
	free(abs);
}

Test(cgroup, the_leader_runs_in_its_cgroup_from_its_first_instruction)
{
	struct result r;
	char *js, *rel;

	/* the leader reads its own cgroup as the first thing it does */
	ctl(&H, &r, "spawn", "-n", "first", "--", "/bin/cat", "/proc/self/cgroup", NULL);
	cr_assert_eq(r.status, 0);
	js = status_of("first");
	rel = json_field(js, "cgroup");
	{
		char want[600];

		snprintf(want, sizeof(want), "0::%s\n", rel);
		cr_assert_not_null(strstr(r.out, want), "cat saw %s, the job's cgroup is %s", r.out, rel);
	}
	free(js);
	free(rel);
	result_free(&r);
}

Test(cgroup, the_fallback_without_clone_into_cgroup_also_places_the_leader_first)
{
	struct hd old;
	struct result r;
	char *js, *rel, want[600];

	/* the shepherd's test knob forces the clone + sync pipe path of older kernels */
	setenv("HEIDI_SHEPHERD_NO_CLONE3", "1", 1);
	hd_start(&old, NULL);
	unsetenv("HEIDI_SHEPHERD_NO_CLONE3");
	ctl(&old, &r, "spawn", "-n", "f", "--", "/bin/cat", "/proc/self/cgroup", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	ctl(&old, &r, "--json", "status", "f", NULL);
	js = r.out;
	rel = json_field(js, "cgroup");
	result_free(&r);
	ctl(&old, &r, "spawn", "--", "/bin/cat", "/proc/self/cgroup", NULL);
	snprintf(want, sizeof(want), "0::%s", rel);
	want[strlen(want) - 1] = '\0'; /* job-1 vs job-2: same directory, different leaf */
	cr_assert_not_null(strstr(r.out, want), "%s vs %s", r.out, want);
	free(rel);
	result_free(&r);
	hd_cleanup(&old);
}

Test(cgroup, a_pre_existing_leaf_is_an_error_never_adopted)
{
	struct result r;
	char *js, *rel, *abs, leaf[700];

	ctl(&H, &r, "spawn", "-n", "one", "--", "true", NULL);
	result_free(&r);
	js = status_of("one");
	rel = json_field(js, "cgroup");
	abs = cgroup_abs(rel);
	/* the next job will be job-<id+1>: plant its leaf */
	snprintf(leaf, sizeof(leaf), "%.*s%lld", (int)(strrchr(abs, '-') - abs + 1), abs,
	    json_int(js, "id") + 1);
	cr_assert_eq(mkdir(leaf, 0755), 0, "mkdir %s: %s", leaf, strerror(errno));
	ctl(&H, &r, "spawn", "--", "echo", "never", NULL);
	cr_assert_eq(r.status, 125, "%d %s", r.status, r.err);
	cr_assert_eq(r.out_len, 0);
	cr_assert_not_null(strstr(r.err, "File exists"), "%s", r.err);
	result_free(&r);
	cr_assert_eq(rmdir(leaf), 0, "heidi must not remove a cgroup it did not create");
	free(js);
	free(rel);
	free(abs);
}

Test(cgroup, containment_pgroup_can_be_asked_for)
{
	struct result r;
	char *js;

	ctl(&H, &r, "spawn", "-n", "pg", "--containment", "pgroup", "--", "true", NULL);
	cr_assert_eq(r.status, 0);
	result_free(&r);
	js = status_of("pg");
	cr_assert_str_eq(json_field(js, "containment"), "pgroup");
	free(js);
}

Test(cgroup, an_explicit_cgroup_path_is_used_and_cleaned)
{
	struct hd custom;
	char base[300], *js, *rel, *abs;
	struct result r;

	if (access("/sys/fs/cgroup/unified/cgroup.procs", F_OK) == 0)
		snprintf(base, sizeof(base), "/sys/fs/cgroup/unified/heidi-test-%d", (int)getpid());
	else
		snprintf(base, sizeof(base), "/sys/fs/cgroup/heidi-test-%d", (int)getpid());
	cr_assert_eq(mkdir(base, 0755), 0, "mkdir %s: %s", base, strerror(errno));
	hd_start(&custom, "--cgroup", base, NULL);
	ctl(&custom, &r, "spawn", "-d", "-n", "c", "--", "sleep", "1000", NULL);
	result_free(&r);
	wait_running(&custom, "c");
	ctl(&custom, &r, "--json", "status", "c", NULL);
	js = r.out;
	rel = json_field(js, "cgroup");
	abs = cgroup_abs(rel);
	cr_assert(strncmp(abs, base, strlen(base)) == 0, "%s is not under %s", abs, base);
	result_free(&r);
	ctl(&custom, &r, "stop", "c", NULL);
	result_free(&r);
	cr_assert_neq(access(abs, F_OK), 0);
	hd_cleanup(&custom);
	cr_assert_eq(rmdir(base), 0, "heidid left something under %s", base);
	free(rel);
	free(abs);
}

Test(cgroup, limits_the_host_cannot_enforce_are_refused_with_the_reason)
{
	struct result r;

	ctl(&H, &r, "spawn", "--mem", "100M", "--", "true", NULL);
	if (r.status == 0) {
		result_free(&r);
		hd_cleanup(&H); /* a skipped test gets no .fini */
		cr_skip_test("this host has the memory controller in cgroup v2");
	}
	cr_assert_eq(r.status, 125);
	cr_assert_not_null(strstr(r.err, "--mem cannot be enforced"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "memory"), "%s", r.err);
	result_free(&r);
}

/* ---- pgroup mode only ---- */

Test(pgroup, containment_cgroup_fails_closed_with_the_reason)
{
	struct result r;

	ctl(&H, &r, "spawn", "--containment", "cgroup", "--", "echo", "never", NULL);
	cr_assert_eq(r.status, 125);
	cr_assert_eq(r.out_len, 0);
	cr_assert_not_null(strstr(r.err, "cgroup containment is not available"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "--cgroup none"), "%s", r.err);
	result_free(&r);
}

Test(pgroup, limits_are_refused_without_cgroups)
{
	struct result r;

	ctl(&H, &r, "spawn", "--pids", "10", "--", "true", NULL);
	cr_assert_eq(r.status, 125);
	cr_assert_not_null(strstr(r.err, "--pids cannot be enforced"), "%s", r.err);
	result_free(&r);
}

Test(pgroup, doctor_reports_the_host_and_a_fix_for_what_is_missing)
{
	struct result r;

	ctl(&H, &r, "--json", "doctor", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	for (const char *const *k = (const char *const[]){ "kernel", "wsl", "cgroup_mode",
		 "writable_subtree", "delegation", "controllers", "cgroup_kill", "clone3", "pidfd",
		 "containment", "heidid", "level", NULL };
	     *k != NULL; k++) {
		char *v = json_field(r.out, *k);

		cr_assert_not_null(v, "doctor lacks %s: %s", *k, r.out);
		free(v);
	}
	cr_assert_not_null(strstr(r.out, "gives jobs pgroup"), "%s", r.out);
	result_free(&r);
	ctl(&H, &r, "doctor", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.out, "containment"));
	result_free(&r);
}

Test(cgroup, a_shepherd_whose_leaf_was_swept_still_finishes_and_exits)
{
	struct result r;
	pid_t shep, leader;
	char dir[256];
	char *js;

	spawn_d("swept", "exec sleep 1000");
	wait_running(&H, "swept");
	js = status_of("swept");
	leader = (pid_t)json_int(js, "pid");
	wait_record(&H, json_int(js, "id"));
	free(js);
	shep = ppid_of(leader);
	/* freeze the shepherd, lose heidid, let the next heidid sweep the leaf away */
	kill(shep, SIGSTOP);
	kill(H.pid, SIGKILL);
	hd_wait(&H, 10000);
	snprintf(dir, sizeof(dir), "%s", H.dir);
	hd_start_in(&H, dir, (const char *const[]){ "--max-running", "32", NULL });
	cr_assert(wait_pid_gone(leader, 5000), "the sweep missed the job");
	kill(shep, SIGCONT);
	/* it finds its channel closed and its leaf gone: it must exit, not spin */
	cr_assert(wait_pid_gone(shep, 5000), "the shepherd %d did not exit", shep);
	ctl(&H, &r, "--json", "status", "swept", NULL);
	cr_assert_str_eq(json_field(r.out, "reason"), "daemon_lost");
	result_free(&r);
}
