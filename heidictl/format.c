/*
 * format.c: how heidictl prints jobs (tables, status lines, JSON) and
 * names signals.  The JSON field names are those of design §3.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/time.h"
#include "common/util.h"
#include "heidictl/ctl.h"
#include "proto/pack.h"

static const struct {
	const char *name;
	int sig;
} signames[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL },
	{ "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "BUS", SIGBUS }, { "FPE", SIGFPE },
	{ "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
	{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CHLD", SIGCHLD },
	{ "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },
	{ "TTOU", SIGTTOU }, { "URG", SIGURG }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
	{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },
	{ "PWR", SIGPWR }, { "SYS", SIGSYS },
};

int
sig_parse(const char *s)
{
	char *end;
	long v;

	if (s[0] >= '0' && s[0] <= '9') {
		v = strtol(s, &end, 10);
		return *end == '\0' && v >= 1 && v <= PROTO_SIGNAL_MAX ? (int)v : -EINVAL;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(signames) / sizeof(signames[0]); i++)
		if (strcasecmp(s, signames[i].name) == 0)
			return signames[i].sig;
	if (strncasecmp(s, "RTMIN+", 6) == 0) {
		v = strtol(s + 6, &end, 10);
		if (*end == '\0' && v >= 0 && SIGRTMIN + v <= SIGRTMAX)
			return SIGRTMIN + (int)v;
	}
	return -EINVAL;
}

const char *
sig_name(int sig)
{
	static char buf[16];

	for (size_t i = 0; i < sizeof(signames) / sizeof(signames[0]); i++)
		if (signames[i].sig == sig) {
			snprintf(buf, sizeof(buf), "SIG%s", signames[i].name);
			return buf;
		}
	snprintf(buf, sizeof(buf), "SIG%d", sig);
	return buf;
}

/* ---- JSON ---- */

void
fmt_json_str(FILE *f, const char *p, size_t len)
{
	const unsigned char *s = (const unsigned char *)p, *end = s + len;

	fputc('"', f);
	while (s < end) {
		unsigned char c = *s;
		size_t n = 1;

		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc(c, f);
		} else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else if (c < 0x80)
			fputc(c, f);
		else {
			/* copy one valid UTF-8 sequence, or print U+FFFD for a bad byte */
			n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
			if (n == 0 || (size_t)(end - s) < n || !pack_utf8_valid((const char *)s, n)) {
				fputs("\\ufffd", f);
				n = 1;
			} else
				fwrite(s, 1, n, f);
		}
		s += n;
	}
	fputc('"', f);
}

static void
json_key(FILE *f, const char *key, bool *first)
{
	if (!*first)
		fputc(',', f);
	*first = false;
	fprintf(f, "\"%s\":", key);
}

static void
json_cstr(FILE *f, const char *key, const char *v, bool *first)
{
	json_key(f, key, first);
	if (v == NULL)
		fputs("null", f);
	else
		fmt_json_str(f, v, strlen(v));
}

static void
json_int(FILE *f, const char *key, bool present, long long v, bool *first)
{
	json_key(f, key, first);
	if (present)
		fprintf(f, "%lld", v);
	else
		fputs("null", f);
}

static void
json_time(FILE *f, const char *key, int64_t ms, bool *first)
{
	char buf[64];

	json_key(f, key, first);
	if (ms == 0) {
		fputs("null", f);
		return;
	}
	time_format_rfc3339(ms, buf, sizeof(buf));
	fprintf(f, "\"%s\"", buf);
}

void
fmt_job_json(FILE *f, const struct job_info *ji)
{
	bool first = true;

	fputc('{', f);
	json_int(f, "id", true, (long long)ji->id, &first);
	json_cstr(f, "name", ji->name, &first);
	json_cstr(f, "state", ji->state, &first);
	json_int(f, "pid", ji->pid > 0, ji->pid, &first);
	json_key(f, "argv", &first);
	fputc('[', f);
	for (size_t i = 0; i < ji->n_argv; i++) {
		if (i > 0)
			fputc(',', f);
		fmt_json_str(f, ji->argv[i].ptr, ji->argv[i].len);
	}
	fputc(']', f);
	if (ji->argv_truncated) {
		json_key(f, "argv_truncated", &first);
		fputs("true", f);
	}
	json_key(f, "cwd", &first);
	fmt_json_str(f, ji->cwd.ptr, ji->cwd.len);
	json_cstr(f, "containment", ji->containment, &first);
	json_cstr(f, "cgroup", ji->cgroup, &first);
	json_int(f, "exit_code", ji->has_exit && ji->signal == 0, ji->exit_code, &first);
	json_int(f, "signal", ji->signal > 0, ji->signal, &first);
	json_key(f, "core_dumped", &first);
	fputs(ji->core_dumped ? "true" : "false", f);
	json_cstr(f, "reason", ji->reason, &first);
	json_int(f, "leftovers", true, (long long)ji->leftovers, &first);
	json_time(f, "started_at", ji->started_at, &first);
	json_time(f, "ended_at", ji->ended_at, &first);
	json_int(f, "duration_ms", ji->started_at != 0, (long long)ji->duration_ms, &first);
	json_int(f, "user_cpu_ms", true, (long long)ji->user_cpu_ms, &first);
	json_int(f, "sys_cpu_ms", true, (long long)ji->sys_cpu_ms, &first);
	json_int(f, "max_rss_kb", true, (long long)ji->max_rss_kb, &first);
	json_int(f, "error", ji->error != 0, ji->error, &first);
	json_cstr(f, "error_stage", ji->error_stage, &first);
	json_time(f, "submitted_at", ji->submitted_at, &first);
	json_int(f, "log_bytes", true, (long long)ji->log_bytes, &first);
	json_int(f, "log_dropped", true, (long long)ji->log_dropped, &first);
	json_int(f, "exit_status", ji->ended_at != 0, job_info_exit_status(ji), &first);
	fputs("}\n", f);
}

/* ---- text ---- */

void
fmt_exit(const struct job_info *ji, char *buf, size_t len)
{
	if (ji->signal > 0)
		snprintf(buf, len, "%s", sig_name((int)ji->signal));
	else if (ji->has_exit)
		snprintf(buf, len, "%lld", (long long)ji->exit_code);
	else if (ji->ended_at != 0)
		snprintf(buf, len, "%d", job_info_exit_status(ji));
	else
		snprintf(buf, len, "-");
}

static bool
needs_quotes(const char *p, size_t len)
{
	if (len == 0)
		return true;
	for (size_t i = 0; i < len; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
			(p[i] >= '0' && p[i] <= '9') || strchr("-_./=:,+@%", p[i]) != NULL))
			return true;
	return false;
}

void
fmt_argv(const struct job_info *ji, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ji->n_argv && o + 4 < len; i++) {
		const char *p = ji->argv[i].ptr;
		size_t n = ji->argv[i].len;
		bool q = needs_quotes(p, n);

		if (i > 0)
			buf[o++] = ' ';
		if (q)
			buf[o++] = '\'';
		for (size_t k = 0; k < n && o + 5 < len; k++) {
			unsigned char c = (unsigned char)p[k];

			if (c == '\'') {
				memcpy(buf + o, "'\\''", 4);
				o += 4;
			} else
				buf[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
		}
		if (q && o + 1 < len)
			buf[o++] = '\'';
		buf[o] = '\0';
	}
	if (ji->argv_truncated && o + 4 < len)
		strcpy(buf + o, " ...");
}

static void
fmt_duration(const struct job_info *ji, char *buf, size_t len)
{
	if (ji->started_at == 0)
		snprintf(buf, len, "-");
	else
		duration_format(ji->duration_ms, buf, len);
}

const char *
fmt_job_failure(const struct job_info *ji, char *buf, size_t len)
{
	const char *r = ji->reason;
	const char *cmd = ji->n_argv > 0 ? ji->argv[0].ptr : "?";
	int cmdlen = ji->n_argv > 0 ? (int)ji->argv[0].len : 1;

	if (r == NULL)
		return NULL;
	if (strcmp(r, "exec_failed") == 0) {
		if (ji->error_stage != NULL && strcmp(ji->error_stage, "chdir") == 0)
			snprintf(buf, len, "cannot change to directory %.*s: %s", (int)ji->cwd.len,
			    ji->cwd.ptr, strerror((int)ji->error));
		else if (ji->error == ENOENT && memchr(cmd, '/', (size_t)cmdlen) == NULL)
			snprintf(buf, len, "%.*s: command not found", cmdlen, cmd);
		else if (ji->error_stage != NULL && strcmp(ji->error_stage, "exec") != 0)
			snprintf(buf, len, "job %llu could not be started (%s): %s",
			    (unsigned long long)ji->id, ji->error_stage, strerror((int)ji->error));
		else
			snprintf(buf, len, "%.*s: %s", cmdlen, cmd, strerror((int)ji->error));
		return buf;
	}
	if (strcmp(r, "spawn_failed") == 0) {
		snprintf(buf, len, "job %llu could not be started (%s): %s", (unsigned long long)ji->id,
		    ji->error_stage ? ji->error_stage : "spawn",
		    ji->error ? strerror((int)ji->error) : "unknown error");
		return buf;
	}
	if (strcmp(r, "shepherd_lost") == 0) {
		snprintf(buf, len, "job %llu: its shepherd died; the job's processes were killed",
		    (unsigned long long)ji->id);
		return buf;
	}
	if (strcmp(r, "daemon_lost") == 0) {
		snprintf(buf, len, "job %llu: heidid died while it ran; its processes were killed",
		    (unsigned long long)ji->id);
		return buf;
	}
	if (!ji->has_exit && strcmp(r, "shutdown") == 0) {
		snprintf(buf, len, "job %llu was not run: heidid shut down", (unsigned long long)ji->id);
		return buf;
	}
	if (!ji->has_exit && strcmp(r, "cancelled") == 0) {
		snprintf(buf, len, "job %llu was cancelled before it started",
		    (unsigned long long)ji->id);
		return buf;
	}
	return NULL;
}

void
fmt_job_status(FILE *f, const struct job_info *ji)
{
	char buf[4096];
	const char *fail;

	fprintf(f, "id:          %llu\n", (unsigned long long)ji->id);
	fprintf(f, "name:        %s\n", ji->name ? ji->name : "-");
	fprintf(f, "state:       %s\n", ji->state ? ji->state : "?");
	fmt_argv(ji, buf, sizeof(buf));
	fprintf(f, "command:     %s\n", buf);
	fprintf(f, "cwd:         %.*s\n", (int)ji->cwd.len, ji->cwd.ptr);
	if (ji->pid > 0)
		fprintf(f, "pid:         %lld\n", (long long)ji->pid);
	fprintf(f, "containment: %s\n", ji->containment ? ji->containment : "-");
	if (ji->cgroup != NULL)
		fprintf(f, "cgroup:      %s\n", ji->cgroup);
	if (ji->started_at != 0) {
		time_format_rfc3339(ji->started_at, buf, sizeof(buf));
		fprintf(f, "started:     %s\n", buf);
	}
	if (ji->ended_at != 0) {
		time_format_rfc3339(ji->ended_at, buf, sizeof(buf));
		fprintf(f, "ended:       %s\n", buf);
	}
	fmt_duration(ji, buf, sizeof(buf));
	fprintf(f, "duration:    %s\n", buf);
	if (ji->ended_at != 0) {
		fmt_exit(ji, buf, sizeof(buf));
		fprintf(f, "exit:        %s%s (status %d)\n", buf, ji->core_dumped ? ", core dumped" : "",
		    job_info_exit_status(ji));
		fprintf(f, "reason:      %s\n", ji->reason ? ji->reason : "-");
		if ((fail = fmt_job_failure(ji, buf, sizeof(buf))) != NULL)
			fprintf(f, "error:       %s\n", fail);
		fprintf(f, "leftovers:   %llu\n", (unsigned long long)ji->leftovers);
		fprintf(f, "cpu:         %llums user, %llums system\n",
		    (unsigned long long)ji->user_cpu_ms, (unsigned long long)ji->sys_cpu_ms);
		fprintf(f, "max rss:     %llu KiB\n", (unsigned long long)ji->max_rss_kb);
	}
	fprintf(f, "output:      %llu bytes", (unsigned long long)ji->log_bytes);
	if (ji->log_dropped > 0)
		fprintf(f, " (%llu bytes dropped from the log)", (unsigned long long)ji->log_dropped);
	fputc('\n', f);
}

void
fmt_ps(FILE *f, const struct job_info *v, size_t n)
{
	enum { C_ID, C_NAME, C_STATE, C_PID, C_TIME, C_EXIT, C_N };
	static const char *const hdr[C_N] = { "ID", "NAME", "STATE", "PID", "TIME", "EXIT" };
	int w[C_N];
	char cell[C_N][64], cmd[1024];

	for (int c = 0; c < C_N; c++)
		w[c] = (int)strlen(hdr[c]);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			fprintf(f, "%-*s  %-*s  %-*s  %*s  %*s  %*s  %s\n", w[0], hdr[0], w[1], hdr[1], w[2],
			    hdr[2], w[3], hdr[3], w[4], hdr[4], w[5], hdr[5], "COMMAND");
		for (size_t i = 0; i < n; i++) {
			const struct job_info *ji = &v[i];

			snprintf(cell[C_ID], 64, "%llu", (unsigned long long)ji->id);
			snprintf(cell[C_NAME], 64, "%s", ji->name ? ji->name : "-");
			snprintf(cell[C_STATE], 64, "%s", ji->state ? ji->state : "?");
			if (ji->pid > 0)
				snprintf(cell[C_PID], 64, "%lld", (long long)ji->pid);
			else
				snprintf(cell[C_PID], 64, "-");
			fmt_duration(ji, cell[C_TIME], 64);
			fmt_exit(ji, cell[C_EXIT], 64);
			if (pass == 0) {
				for (int c = 0; c < C_N; c++)
					w[c] = MAX(w[c], (int)strlen(cell[c]));
				continue;
			}
			fmt_argv(ji, cmd, sizeof(cmd));
			fprintf(f, "%-*s  %-*s  %-*s  %*s  %*s  %*s  %s\n", w[0], cell[0], w[1], cell[1],
			    w[2], cell[2], w[3], cell[3], w[4], cell[4], w[5], cell[5], cmd);
		}
	}
}
