/*
 * log.c: timestamped log lines to stderr or a file (reopened on SIGHUP),
 * with token-bucket rate limiting for lines a peer can provoke.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/time.h"

static const char *log_progname = "heidi";
static enum log_level log_level = LOG_LVL_INFO;
static char *log_path;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_WARN] = "warn",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

void
log_init(const char *progname, enum log_level level)
{
	log_progname = progname;
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

int
log_get_fd(void)
{
	return log_fd;
}

int
log_level_parse(const char *s, enum log_level *levelp)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
		if (strcmp(s, level_names[i]) == 0) {
			*levelp = (enum log_level)i;
			return 0;
		}
	return -EINVAL;
}

int
log_reopen(void)
{
	int fd;

	if (log_path == NULL)
		return 0;
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	return 0;
}

int
log_set_file(const char *path)
{
	free(log_path);
	log_path = strdup(path);
	if (log_path == NULL)
		return -ENOMEM;
	return log_reopen();
}

static void log_vwrite(enum log_level level, const char *fmt, va_list ap) _printf_(2, 0);

static void
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	int n, saved = errno;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d]: %s: ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec / 1000000, log_progname, (int)getpid(), level_names[level]);
	if (n < 0)
		n = 0;
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(log_fd, line, (size_t)n);
	errno = saved;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
}

bool
log_ratelimit_take(struct log_ratelimit *rl, uint64_t now_ns)
{
	uint64_t max = (uint64_t)rl->burst * 1000;

	if (rl->last_ns != 0 && now_ns > rl->last_ns) {
		uint64_t add = (now_ns - rl->last_ns) / 1000000 * rl->per_sec;

		rl->tokens_x1000 = MIN(max, rl->tokens_x1000 + add);
	}
	rl->last_ns = now_ns;
	if (rl->tokens_x1000 < 1000) {
		rl->suppressed++;
		return false;
	}
	rl->tokens_x1000 -= 1000;
	return true;
}

bool
log_msg_rl(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
{
	va_list ap;
	uint64_t suppressed;

	if (level > log_level)
		return false;
	suppressed = rl->suppressed;
	if (!log_ratelimit_take(rl, time_now_ns()))
		return false;
	if (suppressed > 0) {
		log_msg(LOG_LVL_WARN, "%llu similar messages suppressed", (unsigned long long)suppressed);
		rl->suppressed = 0;
	}
	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
	return true;
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERROR, fmt, ap);
	va_end(ap);
	_exit(1);
}
