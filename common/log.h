/*
 * log.h: the daemon's log.  One line per event, written where the event
 * is handled (lower layers return error codes instead of logging).
 *
 * fatal() is for start-up and for a child between fork and exec only.
 */
#ifndef HEIDI_COMMON_LOG_H
#define HEIDI_COMMON_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"

enum log_level {
	LOG_LVL_ERROR,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/* A token bucket: at most `burst` lines, refilled at `per_sec` a second. */
struct log_ratelimit {
	uint32_t burst;
	uint32_t per_sec;
	uint64_t tokens_x1000;
	uint64_t last_ns;
	uint64_t suppressed;
};
#define LOG_RATELIMIT_INIT(b, r) { .burst = (b), .per_sec = (r), .tokens_x1000 = (uint64_t)(b) * 1000 }

void log_init(const char *progname, enum log_level level);
/* Log to a file instead of stderr; the file is reopened by log_reopen(). 0 or -errno. */
int log_set_file(const char *path);
int log_reopen(void);
int log_level_parse(const char *s, enum log_level *levelp);
enum log_level log_get_level(void);
/* The fd log lines go to (stderr or the log file): handed to shepherds as their stderr. */
int log_get_fd(void);

void log_msg(enum log_level level, const char *fmt, ...) _printf_(2, 3);
/* Like log_msg, but dropped when the bucket is empty; returns whether it was written. */
bool log_msg_rl(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...) _printf_(3, 4);
/* Consume a token from rl without logging (exposed for tests). */
bool log_ratelimit_take(struct log_ratelimit *rl, uint64_t now_ns);

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_errorx(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

_noreturn_ void fatalx(const char *fmt, ...) _printf_(1, 2);

#endif
