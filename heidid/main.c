/*
 * heidid: the heidi daemon (design §1, docs/design.md).
 *
 * Start-up order: options, the runtime directory and the single-instance
 * lock, cgroup subtree, the sweep of anything a previous instance left
 * behind, then the socket; readiness is signalled on --notify-fd.  Then
 * one epoll loop: I/O, then one scheduling pass, then closing dead
 * connections.  SIGTERM/SIGINT (or "shutdown") stop it cleanly.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/spawn.h"
#include "common/time.h"
#include "heidid/daemon.h"
#include "heidid/server.h"
#include "heidid/store.h"
#include "proto/client.h"

struct daemon *D;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: heidid [-f] [-s SOCKET] [--state-dir DIR] [--max-running N] [--queue-cap N]\n"
	    "              [--max-spawn-rate N] [--cgroup auto|none|PATH] [--shepherd PATH]\n"
	    "              [--grace DUR] [--keep N] [--log-max SIZE] [--pipe-size SIZE]\n"
	    "              [--shepherd-pool N]\n"
	    "              [--log-level LEVEL] [--log-file PATH]\n"
	    "\n"
	    "Runs in the foreground (heidictl starts it in the background on demand).\n"
	    "\n"
	    "  -f, --foreground      stay in the foreground (the default; accepted for scripts)\n"
	    "  -s, --socket PATH     control socket (default: $HEIDI_SOCKET, else\n"
	    "                        $XDG_RUNTIME_DIR/heidi/heidid.sock, else /tmp/heidi-$UID/heidid.sock)\n"
	    "      --state-dir DIR   logs and job records (default: $XDG_STATE_HOME/heidi,\n"
	    "                        else ~/.local/state/heidi)\n"
	    "      --max-running N   jobs running at once (default: the number of online CPUs)\n"
	    "      --queue-cap N     jobs waiting at most (default 1000); more are refused\n"
	    "      --max-spawn-rate N[/s]  job starts per second at most (default: unlimited)\n"
	    "      --cgroup MODE     auto (default), none (process groups only), or the path of a\n"
	    "                        writable cgroup v2 directory to create job cgroups under\n"
	    "      --shepherd PATH   the heidi-shepherd binary\n"
	    "      --grace DUR       default TERM-to-KILL grace for jobs and shutdown (default 10s)\n"
	    "      --keep N          finished jobs to remember (default 1000)\n"
	    "      --log-max SIZE    output kept per job (default 64M)\n"
	    "      --pipe-size SIZE  size of every job's output pipes, 0 for the kernel's\n"
	    "                        (default: 1M while within a budget, docs/performance.md)\n"
	    "      --shepherd-pool N idle shepherds kept ready for the next jobs (default 2)\n"
	    "      --log-level L     error, warn, info (default) or debug\n"
	    "      --log-file PATH   log here instead of stderr (reopened on SIGHUP)\n"
	    "  -h, --help            this text\n"
	    "  -V, --version         print the version\n");
}

static _noreturn_ _printf_(1, 2) void
die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "heidid: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'heidid --help'.\n");
	exit(2);
}

static uint64_t
parse_count(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
		fprintf(stderr, "heidid: %s: '%s' is not a number from %llu to %llu\n", opt, s,
		    (unsigned long long)min, (unsigned long long)max);
		exit(2);
	}
	return v;
}

/* FNV-1a: a stable short name for this instance, from its socket path. */
static void
make_instance(const char *sockpath, char *buf, size_t len)
{
	char abs[PATH_MAX], dir[PATH_MAX], *slash;
	uint64_t h = 14695981039346656037ULL;

	strlcpy(dir, sockpath, sizeof(dir));
	slash = strrchr(dir, '/');
	if (slash != NULL) {
		*slash = '\0';
		if (realpath(dir[0] ? dir : "/", abs) == NULL)
			strlcpy(abs, dir, sizeof(abs));
		strlcat(abs, "/", sizeof(abs));
		strlcat(abs, slash + 1, sizeof(abs));
	} else if (getcwd(abs, sizeof(abs)) != NULL) {
		strlcat(abs, "/", sizeof(abs));
		strlcat(abs, sockpath, sizeof(abs));
	} else
		strlcpy(abs, sockpath, sizeof(abs));
	for (const char *p = abs; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ULL;
	}
	snprintf(buf, len, "%012llx", (unsigned long long)(h & 0xffffffffffffULL));
}

static int
find_shepherd(char *buf, size_t len)
{
	const char *env = getenv("HEIDI_SHEPHERD");
	char dir[PATH_MAX];

	if (buf[0] != '\0')
		return access(buf, X_OK) == 0 ? 0 : -errno;
	if (env != NULL && *env != '\0') {
		strlcpy(buf, env, len);
		return access(buf, X_OK) == 0 ? 0 : -errno;
	}
	if (spawn_self_dir(dir, sizeof(dir)) == 0) {
		/* installed side by side, or the build tree (heidid/ next to shepherd/) */
		snprintf(buf, len, "%sheidi-shepherd", dir);
		if (access(buf, X_OK) == 0)
			return 0;
		snprintf(buf, len, "%s../shepherd/heidi-shepherd", dir);
		if (access(buf, X_OK) == 0)
			return 0;
	}
	snprintf(buf, len, "%s/heidi-shepherd", HEIDI_LIBEXECDIR);
	return access(buf, X_OK) == 0 ? 0 : -errno;
}

static void
parse_args(int argc, char **argv)
{
	enum {
		OPT_STATE = 256, OPT_MAXRUN, OPT_QCAP, OPT_RATE, OPT_CGROUP, OPT_SHEPHERD, OPT_GRACE,
		OPT_KEEP, OPT_LOGMAX, OPT_PIPE, OPT_LOGLEVEL, OPT_LOGFILE, OPT_NOTIFY, OPT_POOL,
	};
	static const struct option opts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, OPT_STATE },
		{ "max-running", required_argument, NULL, OPT_MAXRUN },
		{ "queue-cap", required_argument, NULL, OPT_QCAP },
		{ "max-spawn-rate", required_argument, NULL, OPT_RATE },
		{ "cgroup", required_argument, NULL, OPT_CGROUP },
		{ "shepherd", required_argument, NULL, OPT_SHEPHERD },
		{ "grace", required_argument, NULL, OPT_GRACE },
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "log-max", required_argument, NULL, OPT_LOGMAX },
		{ "pipe-size", required_argument, NULL, OPT_PIPE },
		{ "log-level", required_argument, NULL, OPT_LOGLEVEL },
		{ "log-file", required_argument, NULL, OPT_LOGFILE },
		{ "notify-fd", required_argument, NULL, OPT_NOTIFY },
		{ "shepherd-pool", required_argument, NULL, OPT_POOL },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct config *cfg = &D->cfg;
	const char *sock = NULL;
	enum log_level level = LOG_LVL_INFO;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int c;

	cfg->max_running = ncpu > 0 ? (size_t)ncpu : 1;
	cfg->queue_cap = 1000;
	cfg->keep = 1000;
	cfg->pipe_size_auto = true;
	cfg->log_max = 64ULL << 20;
	cfg->default_grace_ms = 10000;
	cfg->notify_fd = -1;
	cfg->pool_size = 2;
	strlcpy(cfg->cgroup_opt, "auto", sizeof(cfg->cgroup_opt));
	while ((c = getopt_long(argc, argv, "fs:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			break;
		case 's':
			sock = optarg;
			break;
		case OPT_STATE:
			if (optarg[0] != '/')
				die_usage("--state-dir %s: must be an absolute path", optarg);
			strlcpy(cfg->state_dir, optarg, sizeof(cfg->state_dir));
			break;
		case OPT_MAXRUN:
			cfg->max_running = parse_count("--max-running", optarg, 1, 100000);
			break;
		case OPT_QCAP:
			cfg->queue_cap = parse_count("--queue-cap", optarg, 0, 1000000);
			break;
		case OPT_RATE: {
			/* "N" or "N/s" */
			char *slash = strchr(optarg, '/');

			if (slash != NULL && strcmp(slash, "/s") != 0)
				die_usage("--max-spawn-rate %s: use N or N/s (starts per second)", optarg);
			if (slash != NULL)
				*slash = '\0';
			cfg->max_spawn_rate = (uint32_t)parse_count("--max-spawn-rate", optarg, 1, 1000000);
			break;
		}
		case OPT_CGROUP:
			if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "none") != 0 && optarg[0] != '/')
				die_usage("--cgroup %s: use auto, none or an absolute path", optarg);
			strlcpy(cfg->cgroup_opt, optarg, sizeof(cfg->cgroup_opt));
			break;
		case OPT_SHEPHERD:
			strlcpy(cfg->shepherd_path, optarg, sizeof(cfg->shepherd_path));
			break;
		case OPT_GRACE:
			if (duration_parse_ms(optarg, &cfg->default_grace_ms) < 0)
				die_usage("--grace %s: not a duration (like 500ms, 10s, 2m)", optarg);
			break;
		case OPT_KEEP:
			cfg->keep = parse_count("--keep", optarg, 0, 10000000);
			break;
		case OPT_LOGMAX:
			if (size_parse(optarg, &cfg->log_max) < 0 || cfg->log_max < 4096)
				die_usage("--log-max %s: not a size of at least 4K (like 64M)", optarg);
			break;
		case OPT_PIPE:
			if (size_parse(optarg, &cfg->pipe_size) < 0 || cfg->pipe_size > (1u << 30))
				die_usage("--pipe-size %s: not a size up to 1G (like 1M)", optarg);
			cfg->pipe_size_auto = false;
			break;
		case OPT_LOGLEVEL:
			if (log_level_parse(optarg, &level) < 0)
				die_usage("--log-level %s: use error, warn, info or debug", optarg);
			break;
		case OPT_LOGFILE:
			strlcpy(cfg->log_file, optarg, sizeof(cfg->log_file));
			break;
		case OPT_POOL:
			cfg->pool_size = parse_count("--shepherd-pool", optarg, 0, 1000);
			break;
		case OPT_NOTIFY:
			cfg->notify_fd = (int)parse_count("--notify-fd", optarg, 3, 65535);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("heidid %s (protocol %d)\n", HEIDI_VERSION, PROTO_VERSION);
			exit(0);
		default:
			fprintf(stderr, "Try 'heidid --help'.\n");
			exit(2);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	log_init("heidid", level);
	if (client_socket_path(sock, cfg->socket_path, sizeof(cfg->socket_path)) < 0)
		die_usage("socket path too long (at most 107 bytes): %s", sock ? sock : "(default)");
	snprintf(cfg->lock_path, sizeof(cfg->lock_path), "%s.lock", cfg->socket_path);
	if (cfg->state_dir[0] == '\0')
		paths_state_dir(cfg->state_dir, sizeof(cfg->state_dir));
}

static void
on_signal(struct loop_source *src, uint32_t revents)
{
	struct signalfd_siginfo si;

	while (read(D->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			jobs_reap();
			break;
		case SIGTERM:
		case SIGINT:
			jobs_shutdown_begin(D->cfg.default_grace_ms);
			break;
		case SIGHUP:
			if (log_reopen() < 0)
				log_warnx("cannot reopen the log file %s", D->cfg.log_file);
			break;
		case SIGUSR1:
			log_info("stats: %llu submitted, %llu started, %llu finished, %zu running, %zu queued, %llu bytes relayed, %zu clients",
			    (unsigned long long)D->stats.submitted, (unsigned long long)D->stats.started,
			    (unsigned long long)D->stats.finished, D->sched.n_running, D->sched.n_queued,
			    (unsigned long long)D->stats.bytes_relayed, D->n_conns);
			break;
		}
	}
}

static void
on_sched_timer(struct loop_timer *t, uint64_t now)
{
	/* nothing: the scheduling pass after every loop iteration does the work */
}

static void
on_shutdown_timer(struct loop_timer *t, uint64_t now)
{
	jobs_shutdown_expire();
}

/* Drop every inherited fd but 0-2 and the notify fd. */
static uint64_t
read_sysctl(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtoull(buf, NULL, 10);
}

/* See pipe_size_for() in jobs.c. */
static void
pipe_budget_init(void)
{
	uint64_t max = read_sysctl("/proc/sys/fs/pipe-max-size");
	uint64_t soft = read_sysctl("/proc/sys/fs/pipe-user-pages-soft");
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

	D->pipe_big = 1u << 20;
	D->pipe_budget = 256u << 20;
	if (geteuid() != 0) {
		/* root (CAP_SYS_RESOURCE) is not held to these */
		if (max > 0 && max < D->pipe_big)
			D->pipe_big = (uint32_t)max;
		if (soft > 0 && soft * page / 4 < D->pipe_budget)
			D->pipe_budget = soft * page / 4;
	}
}

static void
close_inherited(int keep)
{
	if (keep < 0) {
		syscall(SYS_close_range, 3, ~0U, 0);
		return;
	}
	if (keep > 3)
		syscall(SYS_close_range, 3, keep - 1, 0);
	syscall(SYS_close_range, keep + 1, ~0U, 0);
}

int
main(int argc, char **argv)
{
	static struct daemon daemon;
	char why[1024];
	sigset_t mask;
	struct rlimit rl;
	int r;

	D = &daemon;
	parse_args(argc, argv);
	close_inherited(D->cfg.notify_fd);
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd) /* cloexec: n/a */
			return 1;
	if (D->cfg.notify_fd >= 0)
		fd_set_cloexec(D->cfg.notify_fd, true);
	if (D->cfg.log_file[0] != '\0' && (r = log_set_file(D->cfg.log_file)) < 0)
		fatalx("cannot open the log file %s: %s", D->cfg.log_file, strerror(-r));
	if ((r = find_shepherd(D->cfg.shepherd_path, sizeof(D->cfg.shepherd_path))) < 0)
		fatalx("cannot find an executable heidi-shepherd (tried %s): %s; use --shepherd PATH",
		    D->cfg.shepherd_path, strerror(-r));
	if (server_check_rundir(D->cfg.socket_path, why, sizeof(why)) < 0)
		fatalx("%s", why);
	if ((r = paths_mkdir_p(D->cfg.state_dir, 0700)) < 0)
		fatalx("cannot create the state directory %s: %s", D->cfg.state_dir, strerror(-r));

	/* more fds mean more concurrent jobs: take what we may */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		D->fd_limit = rl.rlim_cur;
	pipe_budget_init();
	/* dispositions inherited from whoever started us (a shell may ignore INT
	 * and QUIT) go back to the default, so that spawning resets only SIGPIPE */
	spawn_reset_signals();
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	/* orphans of a dead shepherd come to us, to be killed */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		fatalx("cannot become a child subreaper: %s", strerror(errno));

	D->listen_fd = D->lock_fd = -1;
	LIST_INIT(&D->conns);
	LIST_INIT(&D->shepherds);
	LIST_INIT(&D->pool);
	TAILQ_INIT(&D->store_queue);
	RB_INIT(&D->jobs);
	TAILQ_INIT(&D->done_jobs);
	D->next_id = 1;
	D->started_at = time_real_ms();
	D->start_ns = time_now_ns();
	make_instance(D->cfg.socket_path, D->instance, sizeof(D->instance));
	sched_init(&D->sched, D->cfg.max_running, D->cfg.queue_cap, D->cfg.max_spawn_rate);
	if ((r = loop_new(&D->loop)) < 0)
		fatalx("cannot create the event loop: %s", strerror(-r));
	loop_timer_init(&D->sched_timer, on_sched_timer);
	loop_timer_init(&D->shutdown_timer, on_shutdown_timer);
	D->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (D->sig_fd < 0 || loop_add(D->loop, &D->sig_src, D->sig_fd, EPOLLIN, on_signal) < 0)
		fatalx("cannot watch signals: %s", strerror(errno));

	if (server_lock(why, sizeof(why)) < 0)
		fatalx("%s", why);
	if ((r = store_init(D->cfg.state_dir)) < 0)
		fatalx("cannot create %s/jobs: %s", D->cfg.state_dir, strerror(-r));
	if ((r = jobs_load()) > 0)
		log_info("%d job records loaded from %s/jobs (next job id %llu)", r, D->cfg.state_dir,
		    (unsigned long long)D->next_id);
	if (containment_setup(&D->cont, D->cfg.cgroup_opt, D->instance) < 0)
		fatalx("%s", D->cont.why);
	if (D->cont.enabled)
		log_info("jobs get cgroups under %s%s%s", D->cont.inst,
		    D->cont.controllers[0] ? " with controllers: " : " (no controllers)",
		    D->cont.controllers);
	else
		log_info("jobs are contained by process groups: %s", D->cont.why);
	containment_sweep(&D->cont);
	if ((r = server_listen()) < 0)
		fatalx("cannot listen on %s: %s", D->cfg.socket_path, strerror(-r));
	log_info("heidid %s (instance %s) serving %s, shepherd %s, max %zu running (fd limit %llu: about %llu jobs)",
	    HEIDI_VERSION, D->instance, D->cfg.socket_path, D->cfg.shepherd_path, D->cfg.max_running,
	    (unsigned long long)D->fd_limit,
	    D->fd_limit > FDS_RESERVED ? (unsigned long long)((D->fd_limit - FDS_RESERVED) / FDS_PER_JOB) : 0ULL);
	if (D->cfg.notify_fd >= 0) {
		(void)!write(D->cfg.notify_fd, "\n", 1);
		D->cfg.notify_fd = fd_close(D->cfg.notify_fd);
	}

	while (!D->quit) {
		/*
		 * Idle work (refilling the shepherd pool, writing job records)
		 * waits for a quiet millisecond, or runs at once right after a
		 * job ended (its client is leaving, the next one is starting):
		 * never between a job's start and its first instructions.
		 */
		bool idle_work = jobs_idle_work_pending();

		r = loop_run_once(D->loop, !idle_work ? -1 : D->idle_now ? 0 : 1);
		if (r < 0)
			fatalx("event loop: %s", strerror(-r));
		jobs_schedule();
		server_reap_dead();
		if (idle_work && (r == 0 || jobs_idle_work_overdue(time_now_ns())))
			jobs_idle_work();
		if (!jobs_idle_work_pending())
			D->idle_now = false;
	}
	jobs_store_flush();

	conn_flush_all();
	server_close_listener();
	containment_teardown(&D->cont);
	unlink(D->cfg.lock_path);
	log_info("heidid stopped%s", D->tree_killed_in_shutdown ? " (job trees had to be killed)" : "");
	return D->tree_killed_in_shutdown ? 1 : 0;
}
