/*
 * commands.c: heidictl's commands (design §3).  Each parses its own
 * options; a usage error exits 2, a failure 1, and the job-status
 * commands (spawn, attach, wait) exit 125 when heidi itself failed.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "common/fd.h"
#include "common/time.h"
#include "heidictl/commands.h"
#include "heidictl/ctl.h"
#include "heidictl/session.h"

extern char **environ;

static _Noreturn __attribute__((format(printf, 2, 3))) void
usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "heidictl %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'heidictl %s --help'.\n", cmd);
	exit(EXIT_USAGE);
}

static struct client *
connect_or_die(int status)
{
	struct client *c;
	char why[1024];

	if (ctl_connect(&c, true, why, sizeof(why)) < 0)
		ctl_die(status, "%s", why);
	return c;
}

/* Send what is in the client's buffer and wait for the reply to id. */
static const struct msg_event *
call(struct client *c, uint64_t id, int fail_status)
{
	static struct msg_event ev;

	if (ctl_call(c, id, &ev) < 0)
		ctl_die(fail_status, "%.*s", (int)ev.message.len, ev.message.ptr);
	return &ev;
}

static void
decode_record(struct client *c, const msgpack_object *o, struct job_info *ji)
{
	struct proto_error err;

	if (msg_job_info_decode(&c->doc, o, ji, &err) < 0)
		ctl_die(EXIT_HEIDI, "bad job record from heidid: %s", err.message);
}

/* ---- spawn ---- */

static const char spawn_help[] =
    "usage: heidictl spawn [options] [--] COMMAND [ARG...]\n"
    "\n"
    "Run COMMAND (no shell) under heidid, as if it ran here: same output, same exit\n"
    "status, Ctrl-C reaches it.  The job gets this directory and environment unless told\n"
    "otherwise, and /dev/null as stdin unless -i is given.\n"
    "\n"
    "  -d, --detach          print the job id and exit 0 once heidid accepted the job\n"
    "  -i, --stdin           forward this stdin to the job\n"
    "  -n, --name NAME       name the job ([A-Za-z0-9._-], starting with a letter)\n"
    "  -C, --cwd DIR         run in DIR\n"
    "  -e, --env K=V         set a variable (repeatable)\n"
    "      --clean-env       start from an empty environment (only -e variables)\n"
    "  -t, --timeout DUR     stop the job after DUR (TERM, grace, KILL)\n"
    "      --grace DUR       time between TERM and KILL (default 10s)\n"
    "      --mem SIZE        memory limit (cgroup memory controller), e.g. 512M\n"
    "      --pids N          process limit (cgroup pids controller)\n"
    "      --cpu CORES       CPU limit in cores, e.g. 1.5 (cgroup cpu controller)\n"
    "      --nice N          run at niceness N (-20..19)\n"
    "      --containment M   auto (default), cgroup (fail if unavailable) or pgroup\n"
    "      --linger DUR      keep running DUR for a restarted heidid (not supported yet)\n"
    "\n"
    "Exit status: the job's; 128+N if killed by signal N; 127 command not found;\n"
    "126 not executable; 125 if heidi failed.  Durations: 500ms, 30s, 5m, 2h.\n";

static char **
build_env(char **extra, size_t n_extra, bool clean, size_t *np)
{
	size_t n = 0, cap = n_extra + 1;
	char **env;

	if (!clean)
		for (char **e = environ; *e != NULL; e++)
			cap++;
	env = calloc(cap, sizeof(*env));
	if (env == NULL)
		ctl_die(EXIT_HEIDI, "out of memory");
	if (!clean)
		for (char **e = environ; *e != NULL; e++)
			env[n++] = *e;
	for (size_t i = 0; i < n_extra; i++) {
		size_t klen = (size_t)(strchr(extra[i], '=') - extra[i]) + 1;
		size_t k;

		for (k = 0; k < n; k++)
			if (strncmp(env[k], extra[i], klen) == 0)
				break;
		env[k] = extra[i];
		if (k == n)
			n++;
	}
	*np = n;
	return env;
}

static uint64_t
parse_duration_opt(const char *cmd, const char *opt, const char *arg)
{
	uint64_t ms;

	if (duration_parse_ms(arg, &ms) < 0)
		usage_error(cmd, "not a duration (like 500ms, 30s, 5m): %s", arg);
	(void)opt;
	return ms;
}

int
cmd_spawn(int argc, char **argv)
{
	enum { O_CLEAN = 256, O_GRACE, O_MEM, O_PIDS, O_CPU, O_NICE, O_CONT, O_LINGER, O_JSON };
	static const struct option opts[] = {
		{ "detach", no_argument, NULL, 'd' },
		{ "stdin", no_argument, NULL, 'i' },
		{ "name", required_argument, NULL, 'n' },
		{ "cwd", required_argument, NULL, 'C' },
		{ "env", required_argument, NULL, 'e' },
		{ "clean-env", no_argument, NULL, O_CLEAN },
		{ "timeout", required_argument, NULL, 't' },
		{ "grace", required_argument, NULL, O_GRACE },
		{ "mem", required_argument, NULL, O_MEM },
		{ "pids", required_argument, NULL, O_PIDS },
		{ "cpu", required_argument, NULL, O_CPU },
		{ "nice", required_argument, NULL, O_NICE },
		{ "containment", required_argument, NULL, O_CONT },
		{ "linger", required_argument, NULL, O_LINGER },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct msg_spawn s = { 0 };
	char **extra = calloc((size_t)argc + 1, sizeof(char *)), **env;
	size_t n_extra = 0, n_env;
	bool clean = false;
	char cwd[PATH_MAX * 2];
	const char *cwd_opt = NULL;
	struct proto_bytes *pv;
	struct client *c;
	const struct msg_event *ev;
	uint64_t id, job;
	int o;

	if (extra == NULL)
		ctl_die(EXIT_HEIDI, "out of memory");
	optind = 1;
	while ((o = getopt_long(argc, argv, "+din:C:e:t:h", opts, NULL)) != -1) {
		switch (o) {
		case 'd':
			s.detach = true;
			break;
		case 'i':
			s.stdin_pipe = true;
			break;
		case 'n':
			s.name.ptr = optarg;
			s.name.len = strlen(optarg);
			break;
		case 'C':
			cwd_opt = optarg;
			break;
		case 'e': {
			const char *eq = strchr(optarg, '=');

			if (eq == NULL || eq == optarg)
				usage_error("spawn", "--env wants NAME=VALUE, not '%s'", optarg);
			extra[n_extra++] = optarg;
			break;
		}
		case O_CLEAN:
			clean = true;
			break;
		case 't':
			s.timeout_ms = parse_duration_opt("spawn", "--timeout", optarg);
			if (s.timeout_ms == 0)
				usage_error("spawn", "--timeout must be more than 0: %s", optarg);
			break;
		case O_GRACE:
			s.grace_ms = parse_duration_opt("spawn", "--grace", optarg);
			s.has_grace = true;
			break;
		case O_MEM:
			if (size_parse(optarg, &s.mem_bytes) < 0 || s.mem_bytes < PROTO_MEM_MIN)
				usage_error("spawn", "--mem wants a size of at least 1M (like 512M): %s", optarg);
			break;
		case O_PIDS: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (*optarg == '\0' || *end != '\0' || v < 1 || v > PROTO_PIDS_MAX)
				usage_error("spawn", "--pids wants a number from 1 to 4194304: %s", optarg);
			s.pids_max = v;
			break;
		}
		case O_CPU: {
			char *end;
			double v = strtod(optarg, &end);

			if (*optarg == '\0' || *end != '\0' || !(v >= 0.001) || v > 1024)
				usage_error("spawn", "--cpu wants a number of cores like 0.5 or 2: %s", optarg);
			s.cpu_millicores = (uint64_t)(v * 1000 + 0.5);
			break;
		}
		case O_NICE: {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*optarg == '\0' || *end != '\0' || v < -20 || v > 19)
				usage_error("spawn", "--nice wants a number from -20 to 19: %s", optarg);
			s.nice = v;
			s.has_nice = true;
			break;
		}
		case O_CONT:
			if (containment_parse(optarg, &s.containment) < 0)
				usage_error("spawn", "--containment wants auto, cgroup or pgroup: %s", optarg);
			break;
		case O_LINGER:
			s.linger_ms = parse_duration_opt("spawn", "--linger", optarg);
			break;
		case O_JSON:
			ctl.json = true;
			break;
		case 'h':
			fputs(spawn_help, stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'heidictl spawn --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		usage_error("spawn", "%s", "no command given");
	if (s.name.len > 0) {
		struct proto_bytes nb = s.name;
		bool ok = nb.len <= PROTO_NAME_MAX &&
			  ((nb.ptr[0] >= 'a' && nb.ptr[0] <= 'z') || (nb.ptr[0] >= 'A' && nb.ptr[0] <= 'Z') ||
			      nb.ptr[0] == '_');

		for (size_t i = 0; ok && i < nb.len; i++)
			ok = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
				 nb.ptr[i]) != NULL;
		if (!ok)
			usage_error("spawn",
			    "bad job name '%s': use up to 64 of [A-Za-z0-9._-], starting with a letter or '_'",
			    s.name.ptr);
	}

	/* the job runs where we are, with what we have */
	if (cwd_opt != NULL && cwd_opt[0] == '/')
		strlcpy(cwd, cwd_opt, sizeof(cwd));
	else {
		char here[PATH_MAX];

		if (getcwd(here, sizeof(here)) == NULL)
			ctl_die(EXIT_HEIDI, "cannot determine the current directory: %s", strerror(errno));
		if (cwd_opt != NULL)
			snprintf(cwd, sizeof(cwd), "%s/%s", here, cwd_opt);
		else
			strlcpy(cwd, here, sizeof(cwd));
	}
	s.cwd.ptr = cwd;
	s.cwd.len = strlen(cwd);
	s.n_argv = (size_t)(argc - optind);
	pv = calloc(s.n_argv, sizeof(*pv));
	if (cwd_opt != NULL) {
		/* as a shell's cd would; an explicit -e PWD=... still wins */
		static char pwd[PATH_MAX * 2 + 8];

		snprintf(pwd, sizeof(pwd), "PWD=%s", cwd);
		memmove(extra + 1, extra, n_extra * sizeof(*extra));
		extra[0] = pwd;
		n_extra++;
	}
	env = build_env(extra, n_extra, clean, &n_env);
	s.env = calloc(n_env + 1, sizeof(*s.env));
	if (pv == NULL || s.env == NULL)
		ctl_die(EXIT_HEIDI, "out of memory");
	for (size_t i = 0; i < s.n_argv; i++) {
		pv[i].ptr = argv[optind + (int)i];
		pv[i].len = strlen(pv[i].ptr);
	}
	s.argv = pv;
	for (size_t i = 0; i < n_env; i++) {
		s.env[i].ptr = env[i];
		s.env[i].len = strlen(env[i]);
	}
	s.n_env = n_env;

	c = connect_or_die(EXIT_HEIDI);
	if (!s.detach)
		session_block_signals();
	/* output through pipes (HEIDI_OUTPUT_EVENTS=1: as events, for testing that path) */
	s.pipes = !s.detach && getenv("HEIDI_OUTPUT_EVENTS") == NULL;
	id = client_next_id(c);
	msg_encode_spawn(client_outbuf(c), id, &s);
	ev = call(c, id, EXIT_HEIDI);
	job = ev->job;
	free(pv);
	free(env);
	free(s.env);
	free(extra);
	if (s.detach) {
		if (ctl.json)
			printf("{\"id\":%llu}\n", (unsigned long long)job);
		else
			printf("%llu\n", (unsigned long long)job);
		client_free(c);
		return 0;
	}
	{
		int status = session_run(c, job, s.stdin_pipe);

		client_free(c);
		return status;
	}
}

/* ---- ps, status ---- */

static void
simple_opts(const char *cmd, int argc, char **argv, const char *help, const char *shortopts,
    const struct option *extra, int (*on_opt)(int o, const char *arg, void *data), void *data)
{
	struct option opts[16];
	size_t n = 0;
	int o;

	if (extra != NULL)
		for (; extra[n].name != NULL && n < 13; n++)
			opts[n] = extra[n];
	opts[n++] = (struct option){ "json", no_argument, NULL, 1000 };
	opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[n] = (struct option){ NULL, 0, NULL, 0 };
	optind = 1;
	while ((o = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		if (o == 1000)
			ctl.json = true;
		else if (o == 'h') {
			fputs(help, stdout);
			exit(0);
		} else if (o == '?' || on_opt == NULL || on_opt(o, optarg, data) < 0) {
			fprintf(stderr, "Try 'heidictl %s --help'.\n", cmd);
			exit(EXIT_USAGE);
		}
	}
}

static int
ps_opt(int o, const char *arg, void *data)
{
	if (o != 'a')
		return -1;
	*(bool *)data = true;
	return 0;
}

int
cmd_ps(int argc, char **argv)
{
	static const char help[] =
	    "usage: heidictl ps [-a]\n\nList running and queued jobs; -a (--all) adds finished ones.\n"
	    "Columns: ID NAME STATE PID TIME EXIT COMMAND.  --json prints one object per job.\n";
	static const struct option extra[] = { { "all", no_argument, NULL, 'a' }, { NULL, 0, NULL, 0 } };
	bool all = false;
	struct client *c;
	const struct msg_event *ev;
	const msgpack_object *recs;
	struct job_info *v;
	uint64_t id;
	size_t n;

	simple_opts("ps", argc, argv, help, "+ah", extra, ps_opt, &all);
	if (optind < argc)
		usage_error("ps", "unexpected argument '%s'", argv[optind]);
	c = connect_or_die(EXIT_FAIL);
	id = client_next_id(c);
	msg_encode_ps(client_outbuf(c), id, all);
	ev = call(c, id, EXIT_FAIL);
	recs = pack_map_get(ev->map, "records");
	if (recs == NULL || recs->type != MSGPACK_OBJECT_ARRAY)
		ctl_die(EXIT_FAIL, "bad reply from heidid");
	n = recs->via.array.size;
	v = calloc(n + 1, sizeof(*v));
	if (v == NULL)
		ctl_die(EXIT_FAIL, "out of memory");
	for (size_t i = 0; i < n; i++)
		decode_record(c, &recs->via.array.ptr[i], &v[i]);
	if (ctl.json)
		for (size_t i = 0; i < n; i++)
			fmt_job_json(stdout, &v[i]);
	else
		fmt_ps(stdout, v, n);
	free(v);
	client_free(c);
	return 0;
}

static const char *
one_job_arg(const char *cmd, int argc, char **argv)
{
	if (optind >= argc)
		usage_error(cmd, "%s", "which job? (an id or a name)");
	if (optind + 1 < argc)
		usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
	return argv[optind];
}

int
cmd_status(int argc, char **argv)
{
	static const char help[] = "usage: heidictl status JOB\n\nShow one job in full (JOB is an id or a name).\n";
	struct client *c;
	const struct msg_event *ev;
	struct job_info ji;
	const char *job;
	uint64_t id;

	simple_opts("status", argc, argv, help, "+h", NULL, NULL, NULL);
	job = one_job_arg("status", argc, argv);
	c = connect_or_die(EXIT_FAIL);
	id = client_next_id(c);
	msg_encode_jobref(client_outbuf(c), MSG_STATUS, id, job);
	ev = call(c, id, EXIT_FAIL);
	decode_record(c, pack_map_get(ev->map, "record"), &ji);
	if (ctl.json)
		fmt_job_json(stdout, &ji);
	else
		fmt_job_status(stdout, &ji);
	client_free(c);
	return 0;
}

/* ---- wait ---- */

int
cmd_wait(int argc, char **argv)
{
	static const char help[] =
	    "usage: heidictl wait JOB...\n\nWait until the jobs end; exit with the first non-zero job status\n"
	    "(in the order given), else 0.  --json prints the records.\n";
	struct client *c;
	const struct msg_event *ev;
	const msgpack_object *recs;
	uint64_t id;
	int status = 0;

	simple_opts("wait", argc, argv, help, "+h", NULL, NULL, NULL);
	if (optind >= argc)
		usage_error("wait", "%s", "which jobs? (ids or names)");
	c = connect_or_die(EXIT_HEIDI);
	id = client_next_id(c);
	msg_encode_wait(client_outbuf(c), id, argv + optind, (size_t)(argc - optind));
	ev = call(c, id, EXIT_HEIDI);
	recs = pack_map_get(ev->map, "records");
	if (recs == NULL || recs->type != MSGPACK_OBJECT_ARRAY)
		ctl_die(EXIT_HEIDI, "bad reply from heidid");
	for (uint32_t i = 0; i < recs->via.array.size; i++) {
		struct job_info ji;
		int st;

		decode_record(c, &recs->via.array.ptr[i], &ji);
		st = job_info_exit_status(&ji);
		if (status == 0 && st != 0)
			status = st;
		{
			char buf[1024];
			const char *fail = fmt_job_failure(&ji, buf, sizeof(buf));

			if (fail != NULL)
				ctl_warn("%s", fail);
		}
		if (ctl.json)
			fmt_job_json(stdout, &ji);
	}
	client_free(c);
	return status;
}

/* ---- kill, stop ---- */

static int
kill_opt(int o, const char *arg, void *data)
{
	int sig;

	if (o != 's')
		return -1;
	sig = sig_parse(arg);
	if (sig < 0)
		usage_error("kill", "unknown signal '%s'", arg);
	*(int *)data = sig;
	return 0;
}

int
cmd_kill(int argc, char **argv)
{
	static const char help[] =
	    "usage: heidictl kill [-s SIG] JOB\n\nSend SIG (default TERM; a name like INT or a number) to every\n"
	    "process of the job.  A queued job is removed from the queue.\n";
	static const struct option extra[] = { { "signal", required_argument, NULL, 's' }, { NULL, 0, NULL, 0 } };
	int sig = 15;
	struct client *c;
	const char *job;
	uint64_t id;

	simple_opts("kill", argc, argv, help, "+s:h", extra, kill_opt, &sig);
	job = one_job_arg("kill", argc, argv);
	c = connect_or_die(EXIT_FAIL);
	id = client_next_id(c);
	msg_encode_kill(client_outbuf(c), id, job, sig, false);
	call(c, id, EXIT_FAIL);
	if (ctl.json)
		printf("{\"ok\":true,\"signal\":%d}\n", sig);
	client_free(c);
	return 0;
}

static int
stop_opt(int o, const char *arg, void *data)
{
	uint64_t *g = data;

	if (o != 'g')
		return -1;
	if (duration_parse_ms(arg, &g[0]) < 0)
		usage_error("stop", "not a duration (like 500ms, 10s): %s", arg);
	g[1] = 1;
	return 0;
}

int
cmd_stop(int argc, char **argv)
{
	static const char help[] =
	    "usage: heidictl stop [--grace DUR] JOB\n\nTERM the job's tree, wait up to DUR (default: the job's grace,\n"
	    "10s unless set at spawn), then KILL; return once every process is gone.\n";
	static const struct option extra[] = { { "grace", required_argument, NULL, 'g' }, { NULL, 0, NULL, 0 } };
	uint64_t grace[2] = { 0, 0 };
	struct client *c;
	const struct msg_event *ev;
	const char *job;
	uint64_t id;

	simple_opts("stop", argc, argv, help, "+h", extra, stop_opt, grace);
	job = one_job_arg("stop", argc, argv);
	c = connect_or_die(EXIT_FAIL);
	id = client_next_id(c);
	msg_encode_stop(client_outbuf(c), id, job, grace[1] != 0, grace[0]);
	ev = call(c, id, EXIT_FAIL);
	if (ctl.json) {
		struct job_info ji;

		decode_record(c, pack_map_get(ev->map, "record"), &ji);
		fmt_job_json(stdout, &ji);
	}
	client_free(c);
	return 0;
}

/* ---- stats, shutdown, ping, version ---- */

static void
print_obj(FILE *f, const msgpack_object *o, int depth, bool json)
{
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		fprintf(f, "%llu", (unsigned long long)o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		fprintf(f, "%lld", (long long)o->via.i64);
		break;
	case MSGPACK_OBJECT_STR:
		if (json)
			fmt_json_str(f, o->via.str.ptr, o->via.str.size);
		else
			fprintf(f, "%.*s", (int)o->via.str.size, o->via.str.ptr);
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		fputs(o->via.boolean ? "true" : "false", f);
		break;
	case MSGPACK_OBJECT_MAP:
		if (json)
			fputc('{', f);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;

			if (k->type != MSGPACK_OBJECT_STR)
				continue;
			if (json) {
				if (i > 0)
					fputc(',', f);
				fmt_json_str(f, k->via.str.ptr, k->via.str.size);
				fputc(':', f);
				print_obj(f, v, depth + 1, true);
			} else {
				fprintf(f, "%*s%.*s:", depth * 2, "", (int)k->via.str.size, k->via.str.ptr);
				if (v->type == MSGPACK_OBJECT_MAP) {
					fputc('\n', f);
					print_obj(f, v, depth + 1, false);
				} else {
					fputc(' ', f);
					print_obj(f, v, depth + 1, false);
					fputc('\n', f);
				}
			}
		}
		if (json)
			fputc('}', f);
		break;
	default:
		fputs("null", f);
	}
}

int
cmd_stats(int argc, char **argv)
{
	static const char help[] =
	    "usage: heidictl stats\n\nDaemon counters: jobs by outcome, queue, bytes relayed, spawn latency, uptime.\n";
	struct client *c;
	const struct msg_event *ev;
	const msgpack_object *st;
	uint64_t id;

	simple_opts("stats", argc, argv, help, "+h", NULL, NULL, NULL);
	if (optind < argc)
		usage_error("stats", "unexpected argument '%s'", argv[optind]);
	c = connect_or_die(EXIT_FAIL);
	id = client_next_id(c);
	msg_encode_simple(client_outbuf(c), MSG_STATS, id);
	ev = call(c, id, EXIT_FAIL);
	st = pack_map_get(ev->map, "stats");
	if (st == NULL || st->type != MSGPACK_OBJECT_MAP)
		ctl_die(EXIT_FAIL, "bad reply from heidid");
	print_obj(stdout, st, 0, ctl.json);
	if (ctl.json)
		fputc('\n', stdout);
	client_free(c);
	return 0;
}

int
cmd_shutdown(int argc, char **argv)
{
	static const char help[] =
	    "usage: heidictl shutdown [--grace DUR]\n\nStop heidid cleanly: no new jobs, queued jobs are not run, running\n"
	    "jobs get DUR (default 10s) to finish before their trees are killed.\n"
	    "Returns once heidid has exited.\n";
	static const struct option extra[] = { { "grace", required_argument, NULL, 'g' }, { NULL, 0, NULL, 0 } };
	uint64_t grace[2] = { 0, 0 };
	struct client *c;
	char why[1024];
	uint64_t id;

	simple_opts("shutdown", argc, argv, help, "+h", extra, stop_opt, grace);
	if (optind < argc)
		usage_error("shutdown", "unexpected argument '%s'", argv[optind]);
	if (ctl_connect(&c, false, why, sizeof(why)) < 0)
		ctl_die(EXIT_FAIL, "%s", why);
	id = client_next_id(c);
	msg_encode_shutdown(client_outbuf(c), id, grace[1] != 0, grace[0]);
	call(c, id, EXIT_FAIL);
	/* heidid closes every connection as it exits */
	for (;;) {
		struct msg_event ev;
		struct proto_error err;

		if (client_recv(c, &ev, &err) < 0)
			break;
	}
	if (ctl.json)
		printf("{\"ok\":true}\n");
	client_free(c);
	return 0;
}

int
cmd_ping(int argc, char **argv)
{
	static const char help[] = "usage: heidictl ping\n\nCheck that heidid answers (starting it if needed).\n";
	struct client *c;
	uint64_t id;

	simple_opts("ping", argc, argv, help, "+h", NULL, NULL, NULL);
	if (optind < argc)
		usage_error("ping", "unexpected argument '%s'", argv[optind]);
	c = connect_or_die(EXIT_FAIL);
	id = client_next_id(c);
	msg_encode_simple(client_outbuf(c), MSG_PING, id);
	call(c, id, EXIT_FAIL);
	if (ctl.json) {
		printf("{\"ok\":true,\"server\":");
		fmt_json_str(stdout, c->server, strlen(c->server));
		printf(",\"pid\":%lld,\"instance\":\"%s\",\"socket\":", (long long)c->server_pid,
		    c->instance);
		fmt_json_str(stdout, ctl.socket, strlen(ctl.socket));
		printf("}\n");
	} else
		printf("%s (pid %lld) answers on %s\n", c->server, (long long)c->server_pid, ctl.socket);
	client_free(c);
	return 0;
}

int
cmd_version(int argc, char **argv)
{
	static const char help[] =
	    "usage: heidictl version\n\nPrint heidictl's version and, if heidid is running, heidid's.\n";
	struct client *c;
	char why[1024];

	simple_opts("version", argc, argv, help, "+h", NULL, NULL, NULL);
	if (optind < argc)
		usage_error("version", "unexpected argument '%s'", argv[optind]);
	if (ctl_connect(&c, false, why, sizeof(why)) == 0) {
		uint64_t id = client_next_id(c);
		struct msg_event ev;

		msg_encode_simple(client_outbuf(c), MSG_VERSION, id);
		if (ctl_call(c, id, &ev) < 0)
			c = client_free(c);
	} else
		c = NULL;
	if (ctl.json) {
		printf("{\"client\":\"heidictl %s\",\"protocol\":%d,\"server\":", HEIDI_VERSION,
		    PROTO_VERSION);
		if (c != NULL)
			fmt_json_str(stdout, c->server, strlen(c->server));
		else
			fputs("null", stdout);
		printf("}\n");
	} else {
		printf("heidictl %s (protocol %d)\n", HEIDI_VERSION, PROTO_VERSION);
		if (c != NULL)
			printf("%s (pid %lld, protocol %llu)\n", c->server, (long long)c->server_pid,
			    (unsigned long long)c->server_version);
		else
			printf("heidid: not running\n");
	}
	client_free(c);
	return 0;
}

/* ---- logs, attach ---- */

struct logs_opts {
	bool follow, out, err, has_tail;
	uint64_t tail;
};

static int
logs_opt(int o, const char *arg, void *data)
{
	struct logs_opts *lo = data;
	char *end;

	switch (o) {
	case 'f':
		lo->follow = true;
		return 0;
	case 'o':
		lo->out = true;
		return 0;
	case 'e':
		lo->err = true;
		return 0;
	case 't':
		lo->tail = strtoull(arg, &end, 10);
		if (*arg == '\0' || *end != '\0' || arg[0] == '-')
			usage_error("logs", "--tail wants a number of lines: %s", arg);
		lo->has_tail = true;
		return 0;
	}
	return -1;
}

int
cmd_logs(int argc, char **argv)
{
	static const char help[] =
	    "usage: heidictl logs [-f] [--stdout|--stderr] [--tail N] JOB\n\n"
	    "Print the job's captured output (stdout to stdout, stderr to stderr, in the order\n"
	    "heidid read it); also works for finished jobs and after heidid restarts.\n\n"
	    "  -f, --follow   keep printing until the job ends\n"
	    "      --stdout   only the job's stdout\n"
	    "      --stderr   only the job's stderr\n"
	    "      --tail N   only the last N lines\n\n"
	    "If the log dropped data (heidid --log-max) a notice on stderr says how much.\n";
	static const struct option extra[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "stdout", no_argument, NULL, 'o' },
		{ "stderr", no_argument, NULL, 'e' },
		{ "tail", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct logs_opts lo = { 0 };
	struct client *c;
	const char *job;
	uint64_t id;

	simple_opts("logs", argc, argv, help, "+fh", extra, logs_opt, &lo);
	job = one_job_arg("logs", argc, argv);
	if (!lo.out && !lo.err)
		lo.out = lo.err = true;
	c = connect_or_die(EXIT_FAIL);
	id = client_next_id(c);
	msg_encode_logs(client_outbuf(c), id, job, lo.follow, lo.out, lo.err, lo.has_tail, lo.tail);
	call(c, id, EXIT_FAIL);
	for (;;) {
		struct msg_event ev;
		struct proto_error err;

		if (client_recv(c, &ev, &err) < 0)
			ctl_die(EXIT_FAIL, "%s", err.message);
		if (ev.type == MSG_OUTPUT) {
			if (fd_write_all(ev.stream == STREAM_STDERR ? 2 : 1, ev.data.ptr, ev.data.len) < 0)
				break; /* our reader went away */
		} else if (ev.type == MSG_GAP)
			ctl_warn("[%llu bytes of job %s's output were dropped here (heidid --log-max, or a full disk)]",
			    (unsigned long long)ev.bytes, job);
		else if (ev.type == MSG_END)
			break;
		else if (ev.type == MSG_ERROR)
			ctl_die(EXIT_FAIL, "%.*s", (int)ev.message.len, ev.message.ptr);
	}
	client_free(c);
	return 0;
}

static int
attach_opt(int o, const char *arg, void *data)
{
	if (o != 'i')
		return -1;
	*(bool *)data = true;
	return 0;
}

int
cmd_attach(int argc, char **argv)
{
	static const char help[] =
	    "usage: heidictl attach [-i] JOB\n\n"
	    "Stream a running job's output from now on, forward Ctrl-C (INT, TERM, HUP, QUIT)\n"
	    "to it, and exit with its status when it ends.\n\n"
	    "  -i, --stdin    also forward this stdin (the job must have been spawned with -i)\n";
	static const struct option extra[] = { { "stdin", no_argument, NULL, 'i' }, { NULL, 0, NULL, 0 } };
	bool in = false;
	struct client *c;
	const struct msg_event *ev;
	const char *job;
	uint64_t id;
	int status;

	simple_opts("attach", argc, argv, help, "+ih", extra, attach_opt, &in);
	job = one_job_arg("attach", argc, argv);
	c = connect_or_die(EXIT_HEIDI);
	session_block_signals();
	id = client_next_id(c);
	msg_encode_attach(client_outbuf(c), id, job, in);
	ev = call(c, id, EXIT_HEIDI);
	status = session_run(c, ev->job, in);
	client_free(c);
	return status;
}
