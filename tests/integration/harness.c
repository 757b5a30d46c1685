/*
 * harness.c: see harness.h.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/frame.h"
#include "proto/msg.h"
#include "proto/pack.h"
#include "tests/integration/harness.h"

#define ARGS_MAX 64

extern char **environ;

static const char *
env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : fallback;
}

const char *
path_heidid(void)
{
	return env_or("HEIDID", "heidid");
}

const char *
path_heidictl(void)
{
	return env_or("HEIDICTL", "heidictl");
}

const char *
path_helper(const char *name)
{
	static char buf[8][1024];
	static int slot;
	char *b = buf[slot++ % 8];

	snprintf(b, 1024, "%s/%s", env_or("HEIDI_HELPERS", "."), name);
	return b;
}

void
msleep(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
tmpdir_make(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/heidi-test-XXXXXX");
	cr_assert_not_null(mkdtemp(buf), "mkdtemp: %s", strerror(errno));
	chmod(buf, 0700);
}

void
tmpdir_remove(const char *dir)
{
	char *argv[] = { (char *)"/bin/rm", (char *)"-rf", (char *)dir, NULL };
	struct result r;

	if (dir[0] == '\0' || strncmp(dir, "/tmp/heidi-test-", 16) != 0)
		return;
	run_argv(&r, argv, NULL, 0, 30000);
	result_free(&r);
}

/*
 * fork + exec with the child bound to our life and only the given fds;
 * nofile > 0 sets RLIMIT_NOFILE (soft and hard) in the child first.
 */
static pid_t
start_child_limited(char *const argv[], char *const envp[], int in, int out, int err, int extra,
    int extra_to, unsigned long nofile)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid > 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	if (extra >= 0) {
		int t = fcntl(extra, F_DUPFD, 100);

		dup2(t, extra_to);
	}
	if (in >= 0)
		dup2(in, 0);
	if (out >= 0)
		dup2(out, 1);
	if (err >= 0)
		dup2(err, 2);
	syscall(SYS_close_range, extra >= 0 ? extra_to + 1 : 3, ~0U, 0);
	{
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
	}
	/* last: the fd shuffling above uses fds beyond a low limit */
	if (nofile > 0) {
		struct rlimit rl = { .rlim_cur = nofile, .rlim_max = nofile };

		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			_exit(126);
	}
	execve(argv[0], argv, envp);
	_exit(127);
}

static pid_t
start_child(char *const argv[], char *const envp[], int in, int out, int err, int extra, int extra_to)
{
	return start_child_limited(argv, envp, in, out, err, extra, extra_to, 0);
}

/* The environment for everything we run: the test's, plus private state. */
static char **
test_env(const char *state_home, bool autostart)
{
	static char *env[512];
	static char xdg[400], noauto[] = "HEIDI_NO_AUTOSTART=1";
	size_t n = 0;

	for (char **e = environ; *e != NULL && n < 500; e++)
		if (strncmp(*e, "XDG_STATE_HOME=", 15) != 0 && strncmp(*e, "HEIDI_NO_AUTOSTART=", 19) != 0 &&
		    strncmp(*e, "HEIDI_SOCKET=", 13) != 0)
			env[n++] = *e;
	if (state_home != NULL) {
		snprintf(xdg, sizeof(xdg), "XDG_STATE_HOME=%s", state_home);
		env[n++] = xdg;
	}
	if (!autostart)
		env[n++] = noauto;
	env[n] = NULL;
	return env;
}

void
hd_start_in(struct hd *h, const char *dir, const char *const *extra)
{
	hd_start_in_nofile(h, dir, extra, 0);
}

void
hd_start_in_nofile(struct hd *h, const char *dir, const char *const *extra, unsigned long nofile)
{
	char *argv[ARGS_MAX];
	int n = 0, notify[2];
	char c;
	struct pollfd pfd;

	memset(h, 0, sizeof(*h));
	snprintf(h->dir, sizeof(h->dir), "%s", dir);
	snprintf(h->sock, sizeof(h->sock), "%s/s.sock", dir);
	snprintf(h->state, sizeof(h->state), "%s/state", dir);
	snprintf(h->log, sizeof(h->log), "%s/heidid.log", dir);
	argv[n++] = (char *)path_heidid();
	argv[n++] = (char *)"-s";
	argv[n++] = h->sock;
	argv[n++] = (char *)"--state-dir";
	argv[n++] = h->state;
	argv[n++] = (char *)"--log-file";
	argv[n++] = h->log;
	argv[n++] = (char *)"--notify-fd";
	argv[n++] = (char *)"3";
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < ARGS_MAX - 1; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	cr_assert(pipe2(notify, O_CLOEXEC) == 0);
	h->pid = start_child_limited(argv, test_env(dir, false), -1, -1, -1, notify[1], 3, nofile);
	close(notify[1]);
	pfd = (struct pollfd){ .fd = notify[0], .events = POLLIN };
	if (poll(&pfd, 1, 20000) != 1 || read(notify[0], &c, 1) != 1) {
		char log[4096] = "";
		FILE *f = fopen(h->log, "r");

		if (f != NULL) {
			size_t k = fread(log, 1, sizeof(log) - 1, f);

			log[k] = '\0';
			fclose(f);
		}
		close(notify[0]);
		kill(h->pid, SIGKILL);
		waitpid(h->pid, NULL, 0);
		h->pid = 0;
		cr_assert_fail("heidid did not start: %s", log);
	}
	close(notify[0]);
	{
		struct result r;

		ctl(h, &r, "--json", "ping", NULL);
		cr_assert_eq(r.status, 0, "ping: %s", r.err);
		{
			char *inst = json_field(r.out, "instance");

			cr_assert_not_null(inst);
			snprintf(h->instance, sizeof(h->instance), "%s", inst);
			free(inst);
		}
		result_free(&r);
	}
}

void
hd_start(struct hd *h, ...)
{
	const char *extra[ARGS_MAX];
	char dir[256];
	va_list ap;
	size_t n = 0;
	const char *a;

	va_start(ap, h);
	while ((a = va_arg(ap, const char *)) != NULL && n < ARGS_MAX - 1)
		extra[n++] = a;
	va_end(ap);
	extra[n] = NULL;
	tmpdir_make(dir, sizeof(dir));
	hd_start_in(h, dir, extra);
}

int
hd_wait(struct hd *h, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	int status;

	if (h->pid <= 0)
		return -1;
	while (now_ms() < end) {
		pid_t p = waitpid(h->pid, &status, WNOHANG);

		if (p == h->pid) {
			h->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		msleep(10);
	}
	return -1;
}

int
hd_stop(struct hd *h, int timeout_ms)
{
	int st;

	if (h->pid <= 0)
		return -1;
	kill(h->pid, SIGTERM);
	st = hd_wait(h, timeout_ms);
	if (st < 0 && h->pid > 0) {
		kill(h->pid, SIGKILL);
		waitpid(h->pid, NULL, 0);
		h->pid = 0;
	}
	return st;
}

void
hd_cleanup(struct hd *h)
{
	if (h->pid > 0)
		hd_stop(h, 15000);
	if (h->instance[0] != '\0') {
		static const char *const roots[] = { "/sys/fs/cgroup/heidi", "/sys/fs/cgroup/unified/heidi" };

		wait_no_marked(h->instance, 5000);
		/*
		 * A heidid killed with SIGKILL and not started again leaves its
		 * instance cgroup behind, with the (empty) leaves of the jobs its
		 * killed shepherds could not remove: the next heidid on the same
		 * socket would sweep them; this test's socket has none.
		 */
		for (size_t i = 0; i < 2; i++) {
			char path[256], leaf[600];
			DIR *d;
			struct dirent *de;

			snprintf(path, sizeof(path), "%s/%s", roots[i], h->instance);
			if ((d = opendir(path)) == NULL)
				continue;
			while ((de = readdir(d)) != NULL)
				if (strncmp(de->d_name, "job-", 4) == 0) {
					snprintf(leaf, sizeof(leaf), "%s/%s", path, de->d_name);
					rmdir(leaf); /* only an empty cgroup can go */
				}
			closedir(d);
			rmdir(path);
		}
	}
	tmpdir_remove(h->dir);
	/* done: a second call (a .fini after a cleanup) does nothing */
	h->instance[0] = '\0';
	h->dir[0] = '\0';
}

/* ---- running programs ---- */

static void
collect(struct result *r, pid_t pid, int in_fd, const void *in, size_t in_len, int out_fd,
    int err_fd, int timeout_ms)
{
	size_t out_cap = 0, err_cap = 0, in_off = 0;
	long long end = now_ms() + timeout_ms;
	int status;

	memset(r, 0, sizeof(*r));
	r->out = calloc(1, 1);
	r->err = calloc(1, 1);
	if (in_fd >= 0 && in_len == 0)
		in_fd = (close(in_fd), -1);
	if (in_fd >= 0)
		fcntl(in_fd, F_SETFL, O_NONBLOCK);
	while (out_fd >= 0 || err_fd >= 0) {
		struct pollfd pfd[3];
		int n = 0, io = -1, ie = -1, ii = -1;
		long long left = end - now_ms();

		if (left <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		if (out_fd >= 0) {
			io = n;
			pfd[n++] = (struct pollfd){ .fd = out_fd, .events = POLLIN };
		}
		if (err_fd >= 0) {
			ie = n;
			pfd[n++] = (struct pollfd){ .fd = err_fd, .events = POLLIN };
		}
		if (in_fd >= 0) {
			ii = n;
			pfd[n++] = (struct pollfd){ .fd = in_fd, .events = POLLOUT };
		}
		if (poll(pfd, (nfds_t)n, (int)(left > 1000 ? 1000 : left)) <= 0)
			continue;
		if (ii >= 0 && pfd[ii].revents) {
			ssize_t w = write(in_fd, (const char *)in + in_off, in_len - in_off);

			if (w > 0)
				in_off += (size_t)w;
			if ((w < 0 && errno != EAGAIN) || in_off == in_len)
				in_fd = (close(in_fd), -1);
		}
		for (int k = 0; k < 2; k++) {
			int idx = k == 0 ? io : ie;
			int *fdp = k == 0 ? &out_fd : &err_fd;
			char **bufp = k == 0 ? &r->out : &r->err;
			size_t *lenp = k == 0 ? &r->out_len : &r->err_len;
			size_t *capp = k == 0 ? &out_cap : &err_cap;
			ssize_t got;

			if (idx < 0 || !pfd[idx].revents)
				continue;
			if (*capp - *lenp < 65537) {
				*capp = *capp ? *capp * 2 : 131072;
				*bufp = realloc(*bufp, *capp);
				cr_assert_not_null(*bufp);
			}
			got = read(*fdp, *bufp + *lenp, *capp - *lenp - 1);
			if (got > 0) {
				*lenp += (size_t)got;
				(*bufp)[*lenp] = '\0';
			} else if (got == 0 || errno != EINTR) {
				close(*fdp);
				*fdp = -1;
			}
		}
	}
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);
	while (now_ms() < end + 5000) {
		pid_t p = waitpid(pid, &status, WNOHANG);

		if (p == pid) {
			r->status = now_ms() >= end ? -1
				    : WIFEXITED(status) ? WEXITSTATUS(status)
							: 128 + WTERMSIG(status);
			return;
		}
		if (now_ms() >= end)
			kill(pid, SIGKILL);
		msleep(5);
	}
	r->status = -1;
}

static void
run_with(struct result *r, char *const argv[], char *const envp[], const void *in, size_t in_len,
    int timeout_ms)
{
	int pin[2], pout[2], perr[2];
	pid_t pid;

	cr_assert(pipe2(pin, O_CLOEXEC) == 0 && pipe2(pout, O_CLOEXEC) == 0 &&
	    pipe2(perr, O_CLOEXEC) == 0);
	pid = start_child(argv, envp, pin[0], pout[1], perr[1], -1, 0);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	collect(r, pid, pin[1], in, in_len, pout[0], perr[0], timeout_ms);
}

void
run_argv(struct result *r, char *const argv[], const void *in, size_t in_len, int timeout_ms)
{
	run_with(r, argv, environ, in, in_len, timeout_ms);
}

static void
ctl_argv(struct hd *h, char **argv, va_list ap)
{
	int n = 0;
	const char *a;

	argv[n++] = (char *)path_heidictl();
	argv[n++] = (char *)"-s";
	argv[n++] = h->sock;
	while ((a = va_arg(ap, const char *)) != NULL && n < ARGS_MAX - 1)
		argv[n++] = (char *)a;
	argv[n] = NULL;
}

void
ctl(struct hd *h, struct result *r, ...)
{
	char *argv[ARGS_MAX];
	va_list ap;

	va_start(ap, r);
	ctl_argv(h, argv, ap);
	va_end(ap);
	run_with(r, argv, test_env(h->dir, false), NULL, 0, 60000);
}

void
ctl_in(struct hd *h, struct result *r, const void *in, size_t in_len, ...)
{
	char *argv[ARGS_MAX];
	va_list ap;

	va_start(ap, in_len);
	ctl_argv(h, argv, ap);
	va_end(ap);
	run_with(r, argv, test_env(h->dir, false), in, in_len, 120000);
}

void
ctl_bg(struct hd *h, struct bg *b, ...)
{
	char *argv[ARGS_MAX];
	int pin[2], pout[2], perr[2];
	va_list ap;

	va_start(ap, b);
	ctl_argv(h, argv, ap);
	va_end(ap);
	cr_assert(pipe2(pin, O_CLOEXEC) == 0 && pipe2(pout, O_CLOEXEC) == 0 &&
	    pipe2(perr, O_CLOEXEC) == 0);
	b->pid = start_child(argv, test_env(h->dir, false), pin[0], pout[1], perr[1], -1, 0);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	b->in_fd = pin[1];
	b->out_fd = pout[0];
	b->err_fd = perr[0];
}

void
bg_finish(struct bg *b, struct result *r, int timeout_ms)
{
	collect(r, b->pid, b->in_fd, NULL, 0, b->out_fd, b->err_fd, timeout_ms);
	b->in_fd = b->out_fd = b->err_fd = -1;
}

/* Does the record journal (<state>/records, see heidid/store.h) hold a record of job id? */
static bool
journal_has(const char *path, long long id)
{
	FILE *f = fopen(path, "re");
	uint8_t hdr[FRAME_HEADER];
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fread(hdr, 1, sizeof(hdr), f) == sizeof(hdr)) {
		uint32_t len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
			       (uint32_t)hdr[3] << 24;
		char *body = len > 0 && len <= FRAME_MAX ? malloc(len) : NULL;
		struct pack_doc doc;
		struct proto_error err;
		struct job_info ji;

		if (body == NULL || fread(body, 1, len, f) != len) {
			free(body);
			break;
		}
		pack_doc_init(&doc);
		if (pack_doc_parse(&doc, body, len, &err) == 0 &&
		    msg_job_info_decode(&doc, doc.root, &ji, &err) == 0 && (long long)ji.id == id)
			found = true;
		pack_doc_deinit(&doc);
		free(body);
	}
	fclose(f);
	return found;
}

int
journal_frames(struct hd *h)
{
	char path[600];
	FILE *f;
	uint8_t hdr[FRAME_HEADER];
	int n = 0;

	snprintf(path, sizeof(path), "%s/records", h->state);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	while (fread(hdr, 1, sizeof(hdr), f) == sizeof(hdr)) {
		uint32_t len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
			       (uint32_t)hdr[3] << 24;

		if (len > FRAME_MAX || fseek(f, (long)len, SEEK_CUR) < 0)
			break;
		n++;
	}
	fclose(f);
	return n;
}

void
wait_record(struct hd *h, long long id)
{
	char path[600];
	long long end = now_ms() + 10000;

	snprintf(path, sizeof(path), "%s/records", h->state);
	while (!journal_has(path, id)) {
		cr_assert_lt(now_ms(), end, "no record for job %lld", id);
		msleep(5);
	}
}

void
wait_running(struct hd *h, const char *job)
{
	long long end = now_ms() + 30000;

	while (now_ms() < end) {
		struct result r;
		bool running;

		ctl(h, &r, "--json", "status", job, NULL);
		running = r.status == 0 && strstr(r.out, "\"state\":\"running\"") != NULL;
		result_free(&r);
		if (running)
			return;
		msleep(10);
	}
	cr_assert_fail("job %s did not reach the running state", job);
}

void
result_free(struct result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

/* ---- JSON (just enough for heidictl's flat objects) ---- */

char *
json_field(const char *json, const char *key)
{
	char pat[128];
	const char *p, *e;
	char *v;

	if (json == NULL)
		return NULL;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	if (p == NULL)
		return NULL;
	p += strlen(pat);
	if (*p == '"') {
		p++;
		for (e = p; *e && !(*e == '"' && e[-1] != '\\'); e++)
			;
	} else if (*p == '[') {
		int depth = 0;

		for (e = p; *e; e++) {
			if (*e == '[')
				depth++;
			else if (*e == ']' && --depth == 0) {
				e++;
				break;
			}
		}
	} else
		for (e = p; *e && *e != ',' && *e != '}' && *e != '\n'; e++)
			;
	v = strndup(p, (size_t)(e - p));
	return v;
}

long long
json_int(const char *json, const char *key)
{
	char *v = json_field(json, key);
	long long n;

	cr_assert_not_null(v, "no field %s in %s", key, json ? json : "(null)");
	cr_assert(strcmp(v, "null") != 0, "field %s is null in %s", key, json);
	n = strtoll(v, NULL, 10);
	free(v);
	return n;
}

/* ---- processes ---- */

bool
pid_alive(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	bool alive = false;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL)
		alive = p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return alive;
}

bool
wait_pid_gone(pid_t pid, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	while (pid_alive(pid)) {
		if (now_ms() > end)
			return false;
		msleep(5);
	}
	return true;
}

pid_t
read_pid_file(const char *path, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	while (now_ms() < end) {
		FILE *f = fopen(path, "r");
		int pid = 0;

		if (f != NULL) {
			int n = fscanf(f, "%d", &pid);

			fclose(f);
			if (n == 1 && pid > 0)
				return pid;
		}
		msleep(5);
	}
	cr_assert_fail("no pid in %s after %d ms", path, timeout_ms);
	return -1;
}

/*
 * Live processes with an environment entry that equals `exact` (when not
 * NULL), else that starts with prefix and ends with suffix.
 */
static int
scan_environ(const char *exact, const char *prefix, const char *suffix, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	size_t pl = strlen(prefix), sl = strlen(suffix);
	int n = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char path[300], buf[65536];
		int fd;
		ssize_t len;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		if (!pid_alive(atoi(de->d_name)))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/environ", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		for (ssize_t off = 0; off < len; off += (ssize_t)strlen(buf + off) + 1) {
			const char *e = buf + off;
			size_t el = strlen(e);
			bool match = exact != NULL ? strcmp(e, exact) == 0
						   : el > pl + sl && strncmp(e, prefix, pl) == 0 &&
							 strcmp(e + el - sl, suffix) == 0;

			if (match) {
				if (out != NULL && n < max)
					out[n] = atoi(de->d_name);
				n++;
				break;
			}
		}
	}
	if (d != NULL)
		closedir(d);
	return n;
}

int
count_marked(const char *instance)
{
	return list_marked(instance, 0, NULL, 0);
}

int
list_marked(const char *instance, long long job, pid_t *out, int max)
{
	char entry[128], suffix[64];

	if (job > 0) {
		snprintf(entry, sizeof(entry), "HEIDI_JOB_ID=%lld@%s", job, instance);
		return scan_environ(entry, "", "", out, max);
	}
	snprintf(suffix, sizeof(suffix), "@%s", instance);
	return scan_environ(NULL, "HEIDI_JOB_ID=", suffix, out, max);
}

int
list_with_env(const char *entry, pid_t *out, int max)
{
	return scan_environ(entry, "", "", out, max);
}

bool
wait_no_marked(const char *instance, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	while (count_marked(instance) > 0) {
		if (now_ms() > end)
			return false;
		msleep(10);
	}
	return true;
}

/* ---- process tree ---- */

static bool
stat_fields(pid_t pid, char *state, pid_t *ppid)
{
	char path[64], buf[512], *p;
	FILE *f;
	int pp;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	if (p == NULL || sscanf(p + 2, "%c %d", state, &pp) != 2)
		return false;
	*ppid = pp;
	return true;
}

pid_t
ppid_of(pid_t pid)
{
	char st;
	pid_t pp;

	return stat_fields(pid, &st, &pp) ? pp : 0;
}

static int
scan_children(pid_t parent, pid_t *out, int max, bool zombies)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		pid_t pid = atoi(de->d_name), pp;
		char st;

		if (pid <= 0 || !stat_fields(pid, &st, &pp) || pp != parent)
			continue;
		if (zombies != (st == 'Z'))
			continue;
		if (out != NULL && n < max)
			out[n] = pid;
		n++;
	}
	if (d != NULL)
		closedir(d);
	return n;
}

int
children_of(pid_t pid, pid_t *out, int max)
{
	return scan_children(pid, out, max, false);
}

int
zombies_of(pid_t pid)
{
	return scan_children(pid, NULL, 0, true);
}

/* ---- resources ---- */

long
vm_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kb;
}

void
assert_rss_growth(long before, long after, long bound_kb, const char *what)
{
	if (HARNESS_RSS_MEANINGFUL)
		cr_assert_lt(after - before, bound_kb, "heidid's RSS grew from %ld to %ld KiB %s", before,
		    after, what);
	else
		cr_log_info("heidid's RSS not checked (%ld to %ld KiB %s): built with AddressSanitizer",
		    before, after, what);
}

int
open_fd_count(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}
