/*
 * doctor.c: what this host supports for containment, and why; for what
 * is missing, the exact command that fixes it.  It checks from heidictl's
 * own credentials (heidid runs with the same ones) and asks a running
 * heidid what it chose.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/cgroup.h"
#include "common/fd.h"
#include "common/proc.h"
#include "heidictl/commands.h"
#include "heidictl/ctl.h"

struct check {
	const char *key;
	char value[512];
	char fix[512];
};

static struct check checks[16];
static size_t n_checks;

static struct check *
add(const char *key)
{
	struct check *c = &checks[n_checks++];

	c->key = key;
	return c;
}

static bool
read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	bool ok = f != NULL && fgets(buf, (int)len, f) != NULL;

	if (f != NULL)
		fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

static bool
is_wsl(char *how, size_t len)
{
	char rel[256] = "";

	read_line("/proc/sys/kernel/osrelease", rel, sizeof(rel));
	if (strcasestr(rel, "microsoft") != NULL || strcasestr(rel, "wsl") != NULL) {
		snprintf(how, len, "yes (kernel %s%s%s)", rel, getenv("WSL_DISTRO_NAME") ? ", distro " : "",
		    getenv("WSL_DISTRO_NAME") ? getenv("WSL_DISTRO_NAME") : "");
		return true;
	}
	snprintf(how, len, "no");
	return false;
}

static bool
systemd_running(void)
{
	struct stat st;

	return stat("/run/systemd/system", &st) == 0;
}

int
cmd_doctor(int argc, char **argv)
{
	struct cgroup_host h;
	struct utsname un;
	char own[PATH_MAX * 2], buf[512], wsl[300];
	bool root = geteuid() == 0, wsl_host, writable = false, delegated = false;
	const char *level;
	struct check *c;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: heidictl doctor\n\nShow what this host supports for containment (cgroup v2, delegation,\n"
		       "cgroup.kill, clone3, pidfd, WSL) and how to fix what is missing.\n");
		return 0;
	}
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0)
			ctl.json = true;
	cgroup_host_probe(&h);
	uname(&un);
	wsl_host = is_wsl(wsl, sizeof(wsl));

	c = add("kernel");
	snprintf(c->value, sizeof(c->value), "%s %s", un.sysname, un.release);
	c = add("wsl");
	snprintf(c->value, sizeof(c->value), "%s", wsl);

	c = add("cgroup_mode");
	switch (h.mode) {
	case CGROUP_MODE_UNIFIED:
		snprintf(c->value, sizeof(c->value), "unified (cgroup v2 at %s)", h.mount);
		break;
	case CGROUP_MODE_HYBRID:
		snprintf(c->value, sizeof(c->value),
		    "hybrid (v1 controllers; cgroup v2 at %s without the resource controllers)", h.mount);
		break;
	default:
		snprintf(c->value, sizeof(c->value), "none (no cgroup v2 hierarchy mounted)");
		if (wsl_host)
			snprintf(c->fix, sizeof(c->fix),
			    "add 'kernelCommandLine = cgroup_no_v1=all' under [wsl2] in %%UserProfile%%\\.wslconfig, then 'wsl --shutdown'");
		else
			snprintf(c->fix, sizeof(c->fix),
			    "boot with systemd.unified_cgroup_hierarchy=1 (or mount -t cgroup2 none /sys/fs/cgroup/unified as root)");
		break;
	}

	snprintf(own, sizeof(own), "%s%s", h.mount, strcmp(h.self, "/") == 0 ? "" : h.self);
	c = add("own_cgroup");
	snprintf(c->value, sizeof(c->value), "%s", h.mode == CGROUP_MODE_NONE ? "-" : h.self);

	c = add("writable_subtree");
	if (h.mode == CGROUP_MODE_NONE)
		snprintf(c->value, sizeof(c->value), "no");
	else if (root && access(h.mount, W_OK) == 0) {
		writable = true;
		snprintf(c->value, sizeof(c->value), "yes: %s/heidi (created as root)", h.mount);
	} else {
		struct stat st;

		if (strcmp(h.self, "/") != 0 && stat(own, &st) == 0 && st.st_uid == geteuid() &&
		    access(own, W_OK) == 0) {
			writable = delegated = true;
			snprintf(c->value, sizeof(c->value), "yes: %s (own cgroup, delegated)", own);
		} else {
			snprintf(c->value, sizeof(c->value), "no: %s is not delegated to uid %u", own,
			    (unsigned)geteuid());
			if (systemd_running())
				snprintf(c->fix, sizeof(c->fix),
				    "heidictl shutdown; systemd-run --user -p Delegate=yes --unit=heidid %s",
				    "heidid");
			else
				snprintf(c->fix, sizeof(c->fix),
				    "as root: mkdir %s/heidi-$USER && chown $USER %s/heidi-$USER{,/cgroup.procs,/cgroup.subtree_control} "
				    "&& heidid --cgroup %s/heidi-$USER",
				    h.mount, h.mount, h.mount);
		}
	}
	c = add("delegation");
	snprintf(c->value, sizeof(c->value), "%s",
	    root ? "not needed (root)" : delegated ? "yes" : "no");

	c = add("controllers");
	{
		_cleanup_close_ int fd = h.mode != CGROUP_MODE_NONE ? cgroup_open(h.mount) : -1;
		static const char *const wanted[] = { "memory", "pids", "cpu" };
		char missing[64] = "";

		buf[0] = '\0';
		if (fd >= 0)
			cgroup_attr_read(fd, "cgroup.controllers", buf, sizeof(buf));
		for (size_t i = 0; i < 3; i++) {
			const char *p = strstr(buf, wanted[i]);
			size_t n = strlen(wanted[i]);

			if (p == NULL || (p[n] != ' ' && p[n] != '\0') || (p > buf && p[-1] != ' ')) {
				strlcat(missing, missing[0] ? ", " : "", sizeof(missing));
				strlcat(missing, wanted[i], sizeof(missing));
			}
		}
		if (h.mode == CGROUP_MODE_NONE)
			snprintf(c->value, sizeof(c->value), "-");
		else if (missing[0] == '\0')
			snprintf(c->value, sizeof(c->value), "%s", buf);
		else {
			snprintf(c->value, sizeof(c->value),
			    "%s (missing in cgroup v2: %s%s): the matching --mem/--pids/--cpu limits are refused",
			    buf[0] ? buf : "none", missing,
			    h.mode == CGROUP_MODE_HYBRID ? ", bound to cgroup v1 on this hybrid host" : "");
			snprintf(c->fix, sizeof(c->fix), "%s",
			    wsl_host ? "add 'kernelCommandLine = cgroup_no_v1=all' under [wsl2] in %UserProfile%\\.wslconfig, then 'wsl --shutdown'"
			    : h.mode == CGROUP_MODE_HYBRID ? "boot with systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all"
			    : "enable them for heidid's subtree (systemd: Delegate=yes gives a user service memory, pids and cpu)");
		}
	}

	c = add("cgroup_kill");
	{
		int maj = 0, min = 0;
		bool has;

		sscanf(un.release, "%d.%d", &maj, &min);
		/* the root cgroup has no cgroup.kill; the kernel version tells (5.14) */
		has = maj > 5 || (maj == 5 && min >= 14);
		snprintf(c->value, sizeof(c->value), "%s",
		    h.mode == CGROUP_MODE_NONE ? "-"
		    : has ? "yes (Linux 5.14+)"
			  : "no (Linux 5.14 needed; heidi falls back to SIGKILL of each member until empty)");
	}
	c = add("clone3");
	{
		long r = syscall(SYS_clone3, NULL, 0);

		snprintf(c->value, sizeof(c->value), "%s",
		    r < 0 && errno == ENOSYS ? "no (the leader is placed through a sync pipe)"
					     : "yes (CLONE_INTO_CGROUP from Linux 5.7)");
	}
	c = add("pidfd");
	{
		int fd = pidfd_open_pid(getpid());

		snprintf(c->value, sizeof(c->value), "%s", fd >= 0 ? "yes" : "no (Linux 5.3 needed)");
		if (fd < 0)
			snprintf(c->fix, sizeof(c->fix), "upgrade the kernel to 5.3 or later");
		fd_close(fd);
	}

	level = writable ? "cgroup" : "pgroup";
	c = add("containment");
	snprintf(c->value, sizeof(c->value), "%s", writable
		? "cgroup: one cgroup per job; no process of a job can escape it"
		: "pgroup: session, process group, subreaper and marker; setsid escapers are still caught, "
		  "but a process that leaves the tree's ancestry (e.g. via a root-owned service) is not");

	c = add("heidid");
	{
		struct client *cl;
		char why[512];

		if (ctl_connect(&cl, false, why, sizeof(why)) == 0) {
			uint64_t id = client_next_id(cl);
			struct msg_event ev;

			msg_encode_simple(client_outbuf(cl), MSG_STATS, id);
			if (ctl_call(cl, id, &ev) == 0) {
				const msgpack_object *st = pack_map_get(ev.map, "stats");
				struct proto_bytes cont = { "?", 1 }, where = { "", 0 };

				pack_get_str(st, "containment", false, 64, 0, &cont, NULL);
				pack_get_str(st, "cgroup_root", false, 512, 0, &where, NULL);
				snprintf(c->value, sizeof(c->value), "%s (pid %lld) gives jobs %.*s%s%.*s",
				    cl->server, (long long)cl->server_pid, (int)cont.len, cont.ptr,
				    where.len ? ": " : "", (int)where.len, where.ptr);
			}
			client_free(cl);
		} else
			snprintf(c->value, sizeof(c->value), "not running at %s", ctl.socket);
	}

	if (ctl.json) {
		printf("{");
		for (size_t i = 0; i < n_checks; i++) {
			printf("%s\"%s\":", i ? "," : "", checks[i].key);
			fmt_json_str(stdout, checks[i].value, strlen(checks[i].value));
		}
		printf(",\"level\":\"%s\",\"fixes\":[", level);
		for (size_t i = 0, k = 0; i < n_checks; i++)
			if (checks[i].fix[0]) {
				printf("%s", k++ ? "," : "");
				fmt_json_str(stdout, checks[i].fix, strlen(checks[i].fix));
			}
		printf("]}\n");
		return 0;
	}
	for (size_t i = 0; i < n_checks; i++)
		printf("%-17s %s\n", checks[i].key, checks[i].value);
	for (size_t i = 0, k = 0; i < n_checks; i++)
		if (checks[i].fix[0]) {
			if (k++ == 0)
				printf("\nto fix:\n");
			printf("  %s: %s\n", checks[i].key, checks[i].fix);
		}
	return 0;
}
