/*
 * session.c: an attached job: its output to our stdout/stderr, byte for
 * byte; our stdin to it (with -i); the signals a terminal would deliver
 * (INT, TERM, HUP, QUIT) forwarded to its process group; and at the end
 * our exit status is the job's.
 *
 * Output comes through two pipes heidid hands us at the job's start (the
 * "pipes" event): heidid tees the job's output into them, and we splice
 * it on to our stdout/stderr, so that no byte is copied through either
 * process.  Without pipes (heidid could not make them) it comes as
 * "output" events.  Either way a slow reader of our stdout makes the job
 * wait: a full pipe, or an unread socket, pauses heidid's relay.  Input is sent while at most SESSION_WINDOW bytes wait for
 * heidid's replies, which come once the data is in the job's stdin pipe.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/fd.h"
#include "heidictl/ctl.h"
#include "heidictl/session.h"

#define SESSION_WINDOW (256u << 10)
#define SESSION_READ (64u << 10)
#define INFLIGHT_MAX 64

struct session {
	struct client *c;
	char job[32];
	int sigfd;
	int in_fd;             /* -1 when not forwarding (any more) */
	size_t in_flight;
	struct {
		uint64_t id;
		size_t len;
	} inq[INFLIGHT_MAX];
	size_t inq_head, inq_n;
	bool out_closed[3];
	int pipe_fd[3];        /* [1], [2]: the "pipes" read ends, -1 */
	bool no_splice[3];
	bool done;
	int status;
	char failure[1024];    /* said after the last output */
};

static void
send_flush(struct session *s)
{
	if (client_flush(s->c) < 0)
		ctl_die(EXIT_HEIDI, "lost the connection to heidid");
}

/* Write all of buf; a non-blocking stdout makes us wait, not fail. */
static int
out_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			poll(&pfd, 1, -1);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Our reader is gone: let the job see a broken pipe too. */
static void
out_gone(struct session *s, int fd)
{
	s->out_closed[fd] = true;
	msg_encode_output_closed(client_outbuf(s->c), client_next_id(s->c), s->job,
	    fd == 2 ? STREAM_STDERR : STREAM_STDOUT);
	send_flush(s);
}

static void
on_output(struct session *s, const struct msg_event *ev)
{
	int fd = ev->stream == STREAM_STDERR ? 2 : 1;

	if (s->out_closed[fd])
		return;
	if (out_write_all(fd, ev->data.ptr, ev->data.len) < 0)
		out_gone(s, fd);
}

static void
on_pipes(struct session *s)
{
	int out = client_take_fd(s->c), err = client_take_fd(s->c);

	if (out < 0 || err < 0)
		ctl_die(EXIT_HEIDI, "the output pipes of job %s did not arrive%s", s->job,
		    s->c->fds_lost ? " (out of file descriptors?)" : "");
	fd_set_nonblock(out, true);
	fd_set_nonblock(err, true);
	s->pipe_fd[1] = out;
	s->pipe_fd[2] = err;
}

static void
pipe_close(struct session *s, int fd)
{
	s->pipe_fd[fd] = fd_close(s->pipe_fd[fd]);
}

/* Relay what waits in one of our pipes to our stdout (1) or stderr (2). */
static void
relay_pipe(struct session *s, int fd)
{
	static char buf[SESSION_READ];
	ssize_t n;

	if (!s->no_splice[fd]) {
		do
			n = splice(s->pipe_fd[fd], NULL, fd, NULL, 1u << 20, SPLICE_F_NONBLOCK);
		while (n < 0 && errno == EINTR);
		if (n == 0) {
			pipe_close(s, fd);
			return;
		}
		if (n > 0)
			return;
		if (errno == EPIPE || errno == EBADF || errno == EIO || errno == ENOSPC) {
			pipe_close(s, fd);
			out_gone(s, fd);
			return;
		}
		/* EINVAL (a file opened for appending, ...), EAGAIN: plain read and write */
		if (errno != EAGAIN)
			s->no_splice[fd] = true;
	}
	do
		n = read(s->pipe_fd[fd], buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		pipe_close(s, fd);
		return;
	}
	if (out_write_all(fd, buf, (size_t)n) < 0) {
		pipe_close(s, fd);
		out_gone(s, fd);
	}
}

static void
on_reply(struct session *s, const struct msg_event *ev)
{
	if (s->inq_n > 0 && s->inq[s->inq_head].id == ev->id) {
		s->in_flight -= s->inq[s->inq_head].len;
		s->inq_head = (s->inq_head + 1) % INFLIGHT_MAX;
		s->inq_n--;
		if (ev->type == MSG_ERROR && s->in_fd >= 0) {
			/* the job closed its stdin: stop reading ours */
			s->in_fd = -1;
		}
	}
}

static void
on_exit_event(struct session *s, const struct msg_event *ev)
{
	struct job_info ji;
	struct proto_error err;
	const char *fail;

	/* the record lives in the event's document (valid until the next receive) */
	if (msg_job_info_decode(&s->c->doc, pack_map_get(ev->map, "record"), &ji, &err) < 0)
		ctl_die(EXIT_HEIDI, "bad exit event from heidid: %s", err.message);
	s->status = job_info_exit_status(&ji);
	fail = fmt_job_failure(&ji, s->failure, sizeof(s->failure));
	if (fail == NULL)
		s->failure[0] = '\0';
	else if (fail != s->failure)
		snprintf(s->failure, sizeof(s->failure), "%s", fail);
	s->done = true;
}

static void
forward_stdin(struct session *s)
{
	static char buf[SESSION_READ];
	ssize_t n;
	uint64_t id;

	do
		n = read(s->in_fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	id = client_next_id(s->c);
	msg_encode_input(client_outbuf(s->c), id, s->job, buf, n > 0 ? (size_t)n : 0, n <= 0);
	send_flush(s);
	s->inq[(s->inq_head + s->inq_n) % INFLIGHT_MAX].id = id;
	s->inq[(s->inq_head + s->inq_n) % INFLIGHT_MAX].len = n > 0 ? (size_t)n : 0;
	s->inq_n++;
	if (n > 0)
		s->in_flight += (size_t)n;
	else
		s->in_fd = -1; /* EOF (or an error) sent */
}

static void
on_signal(struct session *s)
{
	struct signalfd_siginfo si;

	while (read(s->sigfd, &si, sizeof(si)) == sizeof(si)) {
		msg_encode_kill(client_outbuf(s->c), client_next_id(s->c), s->job, (int)si.ssi_signo,
		    true);
		send_flush(s);
	}
}

static void
handle_events(struct session *s)
{
	for (;;) {
		struct msg_event ev;
		struct proto_error err;
		int r = client_next(s->c, &ev, &err);

		if (r == FRAME_E_AGAIN)
			return;
		if (r == FRAME_E_EOF)
			ctl_die(EXIT_HEIDI, "lost the connection to heidid while job %s ran", s->job);
		if (r < 0)
			ctl_die(EXIT_HEIDI, "%s", err.message);
		switch (ev.type) {
		case MSG_OUTPUT:
			on_output(s, &ev);
			break;
		case MSG_PIPES:
			on_pipes(s);
			break;
		case MSG_OK:
		case MSG_ERROR:
			on_reply(s, &ev);
			break;
		case MSG_GAP:
			ctl_warn("%llu bytes of job %s's output were dropped from its log",
			    (unsigned long long)ev.bytes, s->job);
			break;
		case MSG_EXIT:
			on_exit_event(s, &ev);
			if (s->done)
				return;
			break;
		default:
			break;
		}
	}
}

int
session_run(struct client *c, uint64_t job, bool forward_input)
{
	struct session s = { .c = c, .sigfd = -1, .in_fd = forward_input ? 0 : -1,
		.pipe_fd = { -1, -1, -1 } };
	sigset_t mask;

	snprintf(s.job, sizeof(s.job), "%llu", (unsigned long long)job);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	s.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s.sigfd < 0)
		ctl_die(EXIT_HEIDI, "signalfd: %s", strerror(errno));
	handle_events(&s); /* anything that arrived with the reply */
	/* heidid closes the pipes before it sends "exit": read them to their end */
	while (!s.done || s.pipe_fd[1] >= 0 || s.pipe_fd[2] >= 0) {
		struct pollfd pfd[5];
		nfds_t n = 0;
		int i_in = -1, i_sock = -1, i_sig = -1, i_pipe[3] = { -1, -1, -1 };

		if (!s.done) {
			i_sock = (int)n;
			pfd[n++] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
			i_sig = (int)n;
			pfd[n++] = (struct pollfd){ .fd = s.sigfd, .events = POLLIN };
		}
		if (!s.done && s.in_fd >= 0 && s.in_flight < SESSION_WINDOW && s.inq_n < INFLIGHT_MAX) {
			i_in = (int)n;
			pfd[n++] = (struct pollfd){ .fd = s.in_fd, .events = POLLIN };
		}
		for (int fd = 1; fd <= 2; fd++)
			if (s.pipe_fd[fd] >= 0) {
				i_pipe[fd] = (int)n;
				pfd[n++] = (struct pollfd){ .fd = s.pipe_fd[fd], .events = POLLIN };
			}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			ctl_die(EXIT_HEIDI, "poll: %s", strerror(errno));
		}
		for (int fd = 1; fd <= 2; fd++)
			if (i_pipe[fd] >= 0 && pfd[i_pipe[fd]].revents)
				relay_pipe(&s, fd);
		if (i_sig >= 0 && pfd[i_sig].revents)
			on_signal(&s);
		if (i_in >= 0 && pfd[i_in].revents)
			forward_stdin(&s);
		if (i_sock >= 0 && pfd[i_sock].revents) {
			ssize_t r = client_fill(c);

			if (r < 0 && r != -EAGAIN && r != -EINTR)
				ctl_die(EXIT_HEIDI, "lost the connection to heidid while job %s ran", s.job);
			handle_events(&s);
		}
	}
	close(s.sigfd);
	if (s.failure[0] != '\0')
		ctl_warn("%s", s.failure);
	return s.status;
}

void
session_block_signals(void)
{
	sigset_t mask;

	/* blocked before the spawn request, so that no Ctrl-C is lost in between */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
}
