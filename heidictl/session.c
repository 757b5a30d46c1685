/*
 * session.c: an attached job: its output to our stdout/stderr, byte for
 * byte; our stdin to it (with -i); the signals a terminal would deliver
 * (INT, TERM, HUP, QUIT) forwarded to its process group; and at the end
 * our exit status is the job's.
 *
 * Flow control: output is written with blocking writes, so a slow reader
 * of our stdout stops us reading the socket, which makes heidid pause the
 * job's pipes.  Input is sent while at most SESSION_WINDOW bytes wait for
 * heidid's replies, which come once the data is in the job's stdin pipe.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
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
	bool done;
	int status;
};

static void
send_flush(struct session *s)
{
	if (client_flush(s->c) < 0)
		ctl_die(EXIT_HEIDI, "lost the connection to heidid");
}

static void
on_output(struct session *s, const struct msg_event *ev)
{
	int fd = ev->stream == STREAM_STDERR ? 2 : 1;
	int r;

	if (s->out_closed[fd])
		return;
	r = fd_write_all(fd, ev->data.ptr, ev->data.len);
	if (r < 0) {
		/* our reader is gone: let the job see a broken pipe too */
		s->out_closed[fd] = true;
		msg_encode_output_closed(client_outbuf(s->c), client_next_id(s->c), s->job,
		    ev->stream);
		send_flush(s);
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
	char buf[1024];
	const char *fail;

	/* the record lives in the event's document (valid until the next receive) */
	if (msg_job_info_decode(&s->c->doc, pack_map_get(ev->map, "record"), &ji, &err) < 0)
		ctl_die(EXIT_HEIDI, "bad exit event from heidid: %s", err.message);
	s->status = job_info_exit_status(&ji);
	if ((fail = fmt_job_failure(&ji, buf, sizeof(buf))) != NULL)
		ctl_warn("%s", fail);
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
	struct session s = { .c = c, .sigfd = -1, .in_fd = forward_input ? 0 : -1 };
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
	while (!s.done) {
		struct pollfd pfd[3];
		nfds_t n = 0;
		int i_in = -1;

		pfd[n++] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = s.sigfd, .events = POLLIN };
		if (s.in_fd >= 0 && s.in_flight < SESSION_WINDOW && s.inq_n < INFLIGHT_MAX) {
			i_in = (int)n;
			pfd[n++] = (struct pollfd){ .fd = s.in_fd, .events = POLLIN };
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			ctl_die(EXIT_HEIDI, "poll: %s", strerror(errno));
		}
		if (pfd[1].revents)
			on_signal(&s);
		if (i_in >= 0 && pfd[i_in].revents)
			forward_stdin(&s);
		if (pfd[0].revents) {
			ssize_t r = client_fill(c);

			if (r < 0 && r != -EAGAIN && r != -EINTR)
				ctl_die(EXIT_HEIDI, "lost the connection to heidid while job %s ran", s.job);
			handle_events(&s);
		}
	}
	close(s.sigfd);
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
