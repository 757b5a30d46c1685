/*
 * harness.h: integration tests run the real heidid, heidictl and shepherd
 * from the build tree, each test with its own daemon in a private temp
 * directory.  Every process the harness starts dies with the test process
 * (PR_SET_PDEATHSIG), and processes are only ever ended by pid.
 */
#ifndef HEIDI_TESTS_HARNESS_H
#define HEIDI_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct hd {
	char dir[256];
	char sock[108];
	char state[320];
	char log[320];
	char instance[32];
	pid_t pid;
};

struct result {
	int status;      /* exit code, or 128+N when killed by signal N, -1 on timeout */
	char *out;
	size_t out_len;
	char *err;
	size_t err_len;
};

struct bg {
	pid_t pid;
	int in_fd, out_fd, err_fd;
};

/* Paths from the build (meson sets them in the environment). */
const char *path_heidid(void);
const char *path_heidictl(void);
const char *path_helper(const char *name);

/* A fresh private directory (0700). */
void tmpdir_make(char *buf, size_t len);
void tmpdir_remove(const char *dir);

/* Start heidid in its own directory with extra args (NULL-terminated list). */
void hd_start(struct hd *h, ...);
void hd_start_in(struct hd *h, const char *dir, const char *const *extra);
/* The same with RLIMIT_NOFILE (soft and hard: heidid raises soft to hard) set to nofile. */
void hd_start_in_nofile(struct hd *h, const char *dir, const char *const *extra, unsigned long nofile);
/* SIGTERM, wait (up to timeout), SIGKILL; returns heidid's exit status or -1. */
int hd_stop(struct hd *h, int timeout_ms);
/* Wait for an already-signalled heidid to exit. */
int hd_wait(struct hd *h, int timeout_ms);
void hd_cleanup(struct hd *h);

/* Run heidictl -s SOCK args... (NULL-terminated); captures output; 60 s cap. */
void ctl(struct hd *h, struct result *r, ...);
/* The same with stdin data. */
void ctl_in(struct hd *h, struct result *r, const void *in, size_t in_len, ...);
/* Start heidictl in the background with pipes for stdin/stdout/stderr. */
void ctl_bg(struct hd *h, struct bg *b, ...);
/* Collect a background heidictl's output and status (timeout_ms cap). */
void bg_finish(struct bg *b, struct result *r, int timeout_ms);

/* Wait until heidid has stored the job's record (written at idle time, within 50 ms). */
void wait_record(struct hd *h, long long id);

/* The number of frames (records) in heidid's record journal, -1 if it has none. */
int journal_frames(struct hd *h);

/* Poll `status` until the job is running (its pipes and cgroup are set up). */
void wait_running(struct hd *h, const char *job);

/* Run any program and capture its output. */
void run_argv(struct result *r, char *const argv[], const void *in, size_t in_len, int timeout_ms);
void result_free(struct result *r);

/* "key":value from a one-line JSON object; the raw value (strings unquoted); NULL if absent. */
char *json_field(const char *json, const char *key);
long long json_int(const char *json, const char *key);

/* Process checks. */
bool pid_alive(pid_t pid);            /* exists and is not a zombie */
pid_t read_pid_file(const char *path, int timeout_ms);
/* Wait until pid is gone; true if it went within timeout_ms. */
bool wait_pid_gone(pid_t pid, int timeout_ms);
/* Processes carrying this instance's HEIDI_JOB_ID marker. */
int count_marked(const char *instance);
/* Their pids (at most max; returns how many there are); job 0: any job of the instance. */
int list_marked(const char *instance, long long job, pid_t *out, int max);
/* Live processes whose environment holds exactly this "NAME=VALUE" entry. */
int list_with_env(const char *entry, pid_t *out, int max);
bool wait_no_marked(const char *instance, int timeout_ms);

/* The parent of pid (0 if gone). */
pid_t ppid_of(pid_t pid);
/* Live children of pid, at most max; returns how many. */
int children_of(pid_t pid, pid_t *out, int max);
/* Zombie children of pid. */
int zombies_of(pid_t pid);

/* VmRSS in KiB (-1 if gone); open fds (-1 if gone). */
long vm_rss_kb(pid_t pid);
int open_fd_count(pid_t pid);

void msleep(int ms);
long long now_ms(void);

/*
 * Does heidid's RSS say anything about its memory use?  Not when heidi is
 * built with AddressSanitizer (the tests are built the same way): shadow
 * memory and the quarantine of freed blocks make it grow regardless.  The
 * memory-bound tests then check everything else and log why they did not
 * check the RSS.
 */
#if defined(__SANITIZE_ADDRESS__)
#define HARNESS_RSS_MEANINGFUL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HARNESS_RSS_MEANINGFUL 0
#endif
#endif
#ifndef HARNESS_RSS_MEANINGFUL
#define HARNESS_RSS_MEANINGFUL 1
#endif

/*
 * heidid's RSS grew from before to after (KiB) by less than bound_kb,
 * while doing what (a phrase for the message); under AddressSanitizer
 * only logged.
 */
void assert_rss_growth(long before, long after, long bound_kb, const char *what);


#endif
