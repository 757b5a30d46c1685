/*
 * connect.c: finding heidid, and starting it when nobody answers.
 *
 * heidid is started in its own session with a notify pipe at fd 3: it
 * writes one byte once it listens, so there is no polling for the socket.
 * If two heidictls race to start it, one heidid wins the lock and the
 * other exits; the loser's heidictl simply connects to the winner.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "common/fd.h"
#include "common/paths.h"
#include "common/spawn.h"
#include "heidictl/ctl.h"

extern char **environ;

struct ctl ctl;

void
ctl_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("heidictl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
ctl_die(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("heidictl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static int
find_heidid(char *buf, size_t len)
{
	const char *env = getenv("HEIDI_HEIDID");
	char dir[4096];

	if (env != NULL && *env != '\0') {
		strlcpy(buf, env, len);
		return access(buf, X_OK) == 0 ? 0 : -errno;
	}
	if (spawn_self_dir(dir, sizeof(dir)) == 0) {
		snprintf(buf, len, "%sheidid", dir);
		if (access(buf, X_OK) == 0)
			return 0;
		snprintf(buf, len, "%s../heidid/heidid", dir); /* the build tree */
		if (access(buf, X_OK) == 0)
			return 0;
	}
	snprintf(buf, len, "%s/heidid", HEIDI_BINDIR);
	return access(buf, X_OK) == 0 ? 0 : -errno;
}

/* Start heidid and wait until it listens.  0, or -errno with why set. */
static int
autostart(char *why, size_t whylen)
{
	char heidid[4096], state[4096], logfile[4200];
	int notify[2], r;
	pid_t pid;
	char *argv[] = { heidid, (char *)"-s", ctl.socket, (char *)"--notify-fd", (char *)"3",
		(char *)"--log-file", logfile, NULL };
	int devnull = fd_open_devnull(O_RDWR);
	struct spawn_fd fds[4];
	struct spawn_opts opts = { .fds = fds, .n_fds = 4, .setsid = true };
	struct pollfd pfd;
	char c;

	if ((r = find_heidid(heidid, sizeof(heidid))) < 0) {
		snprintf(why, whylen, "cannot find heidid to start it (last tried %s): %s", heidid,
		    strerror(-r));
		fd_close(devnull);
		return r;
	}
	paths_state_dir(state, sizeof(state));
	if ((r = paths_mkdir_p(state, 0700)) < 0) {
		snprintf(why, whylen, "cannot create %s: %s", state, strerror(-r));
		fd_close(devnull);
		return r;
	}
	snprintf(logfile, sizeof(logfile), "%s/heidid.log", state);
	if (devnull < 0 || pipe2(notify, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "cannot start heidid: %s", strerror(errno));
		fd_close(devnull);
		return -errno;
	}
	fds[0] = (struct spawn_fd){ devnull, 0 };
	fds[1] = (struct spawn_fd){ devnull, 1 };
	fds[2] = (struct spawn_fd){ devnull, 2 };
	fds[3] = (struct spawn_fd){ notify[1], 3 };
	r = spawn_program(&pid, heidid, argv, environ, &opts);
	close(notify[1]);
	fd_close(devnull);
	if (r < 0) {
		close(notify[0]);
		snprintf(why, whylen, "cannot start %s: %s", heidid, strerror(-r));
		return r;
	}
	pfd = (struct pollfd){ .fd = notify[0], .events = POLLIN };
	r = poll(&pfd, 1, 30000);
	if (r > 0 && read(notify[0], &c, 1) == 1) {
		close(notify[0]);
		return 0;
	}
	close(notify[0]);
	/* it exited (or hung): another heidid may have won the race */
	waitpid(pid, NULL, WNOHANG);
	snprintf(why, whylen, "heidid did not start; see %s", logfile);
	return -ECONNREFUSED;
}

int
ctl_connect(struct client **cp, bool autostart_ok, char *why, size_t whylen)
{
	struct proto_error err;
	const char *no = getenv("HEIDI_NO_AUTOSTART");
	int r;

	if (client_socket_path(ctl.socket_opt, ctl.socket, sizeof(ctl.socket)) < 0) {
		snprintf(why, whylen, "the socket path is too long (at most 107 bytes)");
		return -ENAMETOOLONG;
	}
	/* the hello goes out with the first request: one round trip */
	r = client_connect_pipelined(cp, ctl.socket, "heidictl/" HEIDI_VERSION, &err);
	if (r == 0)
		return 0;
	if ((r != -ENOENT && r != -ECONNREFUSED) || !autostart_ok ||
	    (no != NULL && strcmp(no, "1") == 0)) {
		snprintf(why, whylen, "%s%s", err.message,
		    (r == -ENOENT || r == -ECONNREFUSED) ? " (heidid is not running)" : "");
		return r;
	}
	{
		char swhy[512];
		int ar = autostart(swhy, sizeof(swhy));

		r = client_connect_pipelined(cp, ctl.socket, "heidictl/" HEIDI_VERSION, &err);
		if (r == 0)
			return 0;
		snprintf(why, whylen, "%s", ar < 0 ? swhy : err.message);
	}
	return r;
}

int
ctl_call(struct client *c, uint64_t id, struct msg_event *ev)
{
	struct proto_error err;
	int r = client_wait_reply(c, id, ev, &err);

	if (r < 0)
		ctl_die(EXIT_HEIDI, "%s", err.message);
	return ev->type == MSG_ERROR ? -1 : 0;
}
