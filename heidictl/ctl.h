/*
 * ctl.h: heidictl's shared pieces: options, connecting (with autostart),
 * output formatting, signal names.
 */
#ifndef HEIDI_HEIDICTL_CTL_H
#define HEIDI_HEIDICTL_CTL_H

#include <stdbool.h>
#include <stdio.h>

#include "proto/client.h"
#include "proto/msg.h"

#define EXIT_HEIDI 125 /* heidi itself failed */
#define EXIT_FAIL 1
#define EXIT_USAGE 2

struct ctl {
	const char *socket_opt;
	bool json;
	char socket[108];
};

extern struct ctl ctl;

/* Connect to heidid, starting it if nobody answers (unless HEIDI_NO_AUTOSTART=1). */
int ctl_connect(struct client **cp, bool autostart, char *why, size_t whylen);

/* One request, one reply: the reply event is in *ev (valid until the next receive). */
int ctl_call(struct client *c, uint64_t id, struct msg_event *ev);

/* ---- formatting ---- */

/* One job record as a JSON object on one line. */
void fmt_job_json(FILE *f, const struct job_info *ji);
/* One job record as "key: value" lines. */
void fmt_job_status(FILE *f, const struct job_info *ji);
/* The ps table. */
void fmt_ps(FILE *f, const struct job_info *v, size_t n);
/* Print a JSON string (bytes; invalid UTF-8 becomes U+FFFD). */
void fmt_json_str(FILE *f, const char *p, size_t len);
/* Why a job did not produce an exit status of its own, as one line; NULL if it did. */
const char *fmt_job_failure(const struct job_info *ji, char *buf, size_t len);
/* Human exit column: "0", "1", "SIGKILL", "-". */
void fmt_exit(const struct job_info *ji, char *buf, size_t len);
/* The command line, shell-quoted where needed. */
void fmt_argv(const struct job_info *ji, char *buf, size_t len);

/* ---- signals ---- */

/* "TERM", "SIGTERM", "15" -> 15.  -EINVAL if unknown. */
int sig_parse(const char *s);
const char *sig_name(int sig);

/* err(3)-style message and exit. */
_Noreturn void ctl_die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ctl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
