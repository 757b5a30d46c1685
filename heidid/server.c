/*
 * server.c: the control socket: the runtime directory and lock, accepting
 * clients (SO_PEERCRED: our uid and root only), framing, and each
 * connection's bounded output queue.
 *
 * A connection is never freed inside a callback that may be iterating over
 * it: a failed write marks it dead and it is closed after the dispatch
 * batch (server_reap_dead, called from the main loop).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/log.h"
#include "common/sock.h"
#include "common/time.h"
#include "heidid/daemon.h"
#include "heidid/server.h"

#define OUTQ_IOV_MAX 64

static struct log_ratelimit conn_rl = LOG_RATELIMIT_INIT(20, 2);

/* ---- output queue ---- */

void
outq_init(struct outq *q)
{
	TAILQ_INIT(&q->chunks);
	q->bytes = 0;
}

static void
chunk_free(struct outq_chunk *ch)
{
	for (int i = 0; i < ch->n_fds; i++)
		close(ch->fds[i]);
	free(ch);
}

void
outq_deinit(struct outq *q)
{
	struct outq_chunk *ch;

	while ((ch = TAILQ_FIRST(&q->chunks)) != NULL) {
		TAILQ_REMOVE(&q->chunks, ch, entry);
		chunk_free(ch);
	}
	q->bytes = 0;
}

int
outq_push(struct outq *q, const struct iovec *iov, int n_iov, uint64_t tag)
{
	struct outq_chunk *ch;
	size_t len = 0, off = 0;

	for (int i = 0; i < n_iov; i++)
		len += iov[i].iov_len;
	ch = malloc(sizeof(*ch) + len);
	if (ch == NULL)
		return -ENOMEM;
	for (int i = 0; i < n_iov; i++) {
		memcpy(ch->data + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	ch->len = len;
	ch->off = 0;
	ch->tag = tag;
	ch->n_fds = 0;
	TAILQ_INSERT_TAIL(&q->chunks, ch, entry);
	q->bytes += len;
	return 0;
}

/* sendmsg one chunk's first bytes with its fds.  Bytes sent, or -errno. */
static ssize_t
send_with_fds(int fd, struct outq_chunk *ch)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * OUTQ_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { ch->data + ch->off, ch->len - ch->off };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t w;

	memset(&u, 0, sizeof(u));
	msg.msg_control = u.buf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)ch->n_fds);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)ch->n_fds);
	memcpy(CMSG_DATA(cm), ch->fds, sizeof(int) * (size_t)ch->n_fds);
	do
		w = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	/* the fds went with the first byte: ours can go */
	for (int i = 0; i < ch->n_fds; i++)
		close(ch->fds[i]);
	ch->n_fds = 0;
	return w;
}

int
outq_flush(struct outq *q, int fd)
{
	while (!TAILQ_EMPTY(&q->chunks)) {
		struct iovec iov[OUTQ_IOV_MAX];
		struct outq_chunk *ch;
		int n = 0;
		ssize_t w;

		ch = TAILQ_FIRST(&q->chunks);
		if (ch->n_fds > 0) {
			w = send_with_fds(fd, ch);
		} else {
			TAILQ_FOREACH(ch, &q->chunks, entry) {
				/* a chunk with fds starts a sendmsg of its own */
				if (n == OUTQ_IOV_MAX || ch->n_fds > 0)
					break;
				iov[n].iov_base = ch->data + ch->off;
				iov[n].iov_len = ch->len - ch->off;
				n++;
			}
			w = writev(fd, iov, n);
			if (w < 0)
				w = -errno;
		}
		if (w < 0) {
			if (w == -EINTR)
				continue;
			if (w == -EAGAIN)
				return 0;
			return (int)w;
		}
		q->bytes -= (size_t)w;
		while (w > 0) {
			size_t left;

			ch = TAILQ_FIRST(&q->chunks);
			left = ch->len - ch->off;
			if ((size_t)w < left) {
				ch->off += (size_t)w;
				break;
			}
			w -= (ssize_t)left;
			TAILQ_REMOVE(&q->chunks, ch, entry);
			chunk_free(ch);
		}
	}
	return 0;
}

/* ---- connections ---- */

static void conn_io(struct loop_source *src, uint32_t revents);

size_t
conn_queued(const struct conn *c)
{
	return c->out.bytes;
}

static void
conn_update_events(struct conn *c)
{
	uint32_t ev = 0;

	if (c->dead)
		return;
	if (!c->read_paused && !c->closing)
		ev |= EPOLLIN;
	if (c->out.bytes > 0)
		ev |= EPOLLOUT;
	loop_modify(D->loop, &c->src, ev);
}

static void
conn_mark_dead(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	loop_remove(D->loop, &c->src);
}

static void
conn_after_write(struct conn *c)
{
	/* a client this far behind gets no new requests read until it catches up */
	c->read_paused = c->out.bytes > CONN_OUT_HARD;
	if (c->closing && c->out.bytes == 0) {
		conn_mark_dead(c);
		return;
	}
	conn_update_events(c);
}

void
conn_send_iov(struct conn *c, const struct iovec *iov, int n)
{
	size_t total = 0;
	int r;

	if (c->dead)
		return;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (c->out.bytes == 0) {
		/* Fast path: straight to the socket; queue only what does not fit. */
		ssize_t w;
		struct iovec rest[8];
		int nr = 0;

		do
			w = writev(c->fd, iov, n);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EAGAIN) {
			conn_mark_dead(c);
			return;
		}
		if (w < 0)
			w = 0;
		if ((size_t)w == total) {
			conn_after_write(c);
			return;
		}
		for (int i = 0; i < n && nr < 8; i++) {
			if ((size_t)w >= iov[i].iov_len) {
				w -= (ssize_t)iov[i].iov_len;
				continue;
			}
			rest[nr].iov_base = (char *)iov[i].iov_base + w;
			rest[nr].iov_len = iov[i].iov_len - (size_t)w;
			w = 0;
			nr++;
		}
		r = outq_push(&c->out, rest, nr, 0);
	} else
		r = outq_push(&c->out, iov, n, 0);
	if (r < 0) {
		conn_mark_dead(c);
		return;
	}
	conn_after_write(c);
}

void
conn_send_buf(struct conn *c, struct pack_buf *b)
{
	struct iovec iov = { .iov_base = b->sbuf.data, .iov_len = b->sbuf.size };

	if (b->sbuf.size > 0)
		conn_send_iov(c, &iov, 1);
	pack_buf_reset(b);
}

int
conn_send_fds(struct conn *c, struct pack_buf *b, int *fds, int n_fds)
{
	struct iovec iov = { .iov_base = b->sbuf.data, .iov_len = b->sbuf.size };
	struct outq_chunk *ch;
	int r;

	if (c->dead || n_fds > OUTQ_FDS || b->sbuf.size == 0) {
		r = c->dead ? -EPIPE : -EINVAL;
		goto fail;
	}
	/* queued like any message, so that it keeps its place; sent at once when it can */
	r = outq_push(&c->out, &iov, 1, 0);
	if (r < 0)
		goto fail;
	ch = TAILQ_LAST(&c->out.chunks, outq_chunks);
	memcpy(ch->fds, fds, sizeof(int) * (size_t)n_fds);
	ch->n_fds = n_fds;
	pack_buf_reset(b);
	if (TAILQ_FIRST(&c->out.chunks) == ch && outq_flush(&c->out, c->fd) < 0) {
		conn_mark_dead(c);
		return -EPIPE;
	}
	conn_after_write(c);
	return 0;
fail:
	for (int i = 0; i < n_fds; i++)
		close(fds[i]);
	pack_buf_reset(b);
	return r;
}

/* Replace bytes that are not UTF-8 with '?' and cut a sequence split by truncation. */
static void
text_sanitize(char *s)
{
	size_t len = strlen(s);

	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
		    : (c & 0xf8) == 0xf0 ? 4 : 0;

		if (n == 0 || i + n > len || !pack_utf8_valid(s + i, n)) {
			s[i++] = '?';
			continue;
		}
		i += n;
	}
}

void
conn_send_error(struct conn *c, uint64_t id, const char *code, const char *fmt, ...)
{
	struct pack_buf b;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* messages quote client data (paths, keys): keep them valid UTF-8 */
	text_sanitize(msg);
	pack_buf_init(&b);
	msg_encode_error(&b, id, code, msg);
	conn_send_buf(c, &b);
	pack_buf_deinit(&b);
}

void
conn_send_ok(struct conn *c, uint64_t id)
{
	struct pack_buf b;
	struct pack_frame f;

	pack_buf_init(&b);
	msg_encode_ok_begin(&b, &f, id, 0);
	msg_frame_end(&b, &f);
	conn_send_buf(c, &b);
	pack_buf_deinit(&b);
}

static void
conn_free(struct conn *c)
{
	struct watch *w;

	/* a job whose stdin this connection fed sees end of file */
	LIST_FOREACH(w, &c->watches, conn_entry)
		if (w->job->stdin_conn == c)
			jobs_stdin_conn_gone(w->job, c);
	while ((w = LIST_FIRST(&c->watches)) != NULL)
		watch_free(w);
	loop_remove(D->loop, &c->src);
	fd_close(c->fd);
	frame_reader_deinit(&c->rd);
	outq_deinit(&c->out);
	LIST_REMOVE(c, entry);
	D->n_conns--;
	free(c);
}

void
server_resume_accept(void)
{
	if (!D->accept_paused || D->listen_fd < 0)
		return;
	D->accept_paused = false;
	loop_modify(D->loop, &D->listen_src, EPOLLIN);
}

void
server_reap_dead(void)
{
	struct conn *c, *next;
	bool freed = false;

	for (c = LIST_FIRST(&D->conns); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (c->dead) {
			conn_free(c);
			freed = true;
		}
	}
	if (freed)
		server_resume_accept();
}

/* Handle the frames already buffered (after a read, or when a pause lifts). */
static void
conn_dispatch(struct conn *c)
{
	for (;;) {
		const uint8_t *p;
		size_t len;
		int r;

		if (c->dead || c->closing || c->read_paused)
			return;
		r = frame_reader_next(&c->rd, &p, &len);
		if (r == FRAME_E_AGAIN)
			return;
		if (r == FRAME_E_EOF) {
			/* the client is done sending: answer what is queued, then close */
			c->closing = true;
			conn_after_write(c);
			return;
		}
		if (r < 0) {
			D->stats.bad_frames++;
			log_msg_rl(&conn_rl, LOG_LVL_WARN, "client pid %d: %s; closing its connection",
			    (int)c->pid,
			    r == -EMSGSIZE ? "frame length is zero or above the maximum"
					   : "connection closed in the middle of a frame");
			if (r == -EMSGSIZE)
				conn_send_error(c, 0, PROTO_E_BAD_FRAME,
				    "frame length is zero or larger than %u bytes", FRAME_MAX);
			c->closing = true;
			conn_after_write(c);
			return;
		}
		control_dispatch(c, p, len);
		if (c->closing) {
			/* an error reply is on its way: close once it is written */
			conn_after_write(c);
			return;
		}
	}
}

static void
conn_read(struct conn *c)
{
	ssize_t n = frame_reader_fill(&c->rd, c->fd);

	if (n < 0 && n != -EAGAIN && n != -EINTR) {
		conn_mark_dead(c);
		return;
	}
	conn_dispatch(c);
}

static void
conn_io(struct loop_source *src, uint32_t revents)
{
	struct conn *c = container_of(src, struct conn, src);

	if (revents & EPOLLOUT) {
		size_t before = c->out.bytes;

		if (outq_flush(&c->out, c->fd) < 0) {
			conn_mark_dead(c);
			return;
		}
		if (before >= CONN_OUT_RESUME && c->out.bytes < CONN_OUT_RESUME)
			control_conn_drained(c);
		conn_after_write(c);
		/* a pause on reading may have lifted: requests already read go first */
		if (!c->read_paused && frame_reader_pending(&c->rd) > 0)
			conn_dispatch(c);
	}
	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(c);
}

static void
listener_accept(struct loop_source *src, uint32_t revents)
{
	for (int i = 0; i < 64; i++) {
		struct ucred cred;
		struct conn *c;
		int fd = accept4(D->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* a level-triggered listener would spin: wait for fds to come back */
				log_msg_rl(&conn_rl, LOG_LVL_WARN,
				    "accept: %s; not accepting until a connection or a job ends",
				    strerror(errno));
				D->accept_paused = true;
				loop_modify(D->loop, &D->listen_src, 0);
			} else if (errno != EAGAIN && errno != EINTR)
				log_msg_rl(&conn_rl, LOG_LVL_WARN, "accept: %s", strerror(errno));
			return;
		}
		if (sock_peer_cred(fd, &cred) < 0 || (cred.uid != geteuid() && cred.uid != 0)) {
			D->stats.conns_rejected++;
			log_msg_rl(&conn_rl, LOG_LVL_WARN,
			    "refused a client of uid %u (pid %d): only uid %u and root may use this heidid",
			    (unsigned)cred.uid, (int)cred.pid, (unsigned)geteuid());
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL || loop_add(D->loop, &c->src, fd, EPOLLIN, conn_io) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->uid = cred.uid;
		c->pid = cred.pid;
		frame_reader_init(&c->rd, FRAME_MAX);
		outq_init(&c->out);
		LIST_INIT(&c->watches);
		LIST_INSERT_HEAD(&D->conns, c, entry);
		D->n_conns++;
		D->stats.conns_accepted++;
	}
}

/* ---- the runtime directory ---- */

/*
 * The socket's directory must be ours: a real directory (never a symlink
 * planted there), owned by our uid, not writable by group or others.  The
 * last component is created 0700 if missing.
 */
int
server_check_rundir(const char *sockpath, char *why, size_t whylen)
{
	char copy[PATH_MAX], *dir;
	struct stat st;

	strlcpy(copy, sockpath, sizeof(copy));
	dir = dirname(copy);
	if (lstat(dir, &st) < 0) {
		if (errno != ENOENT || mkdir(dir, 0700) < 0 || lstat(dir, &st) < 0) {
			snprintf(why, whylen, "cannot create the socket directory %s: %s", dir,
			    strerror(errno));
			return -errno;
		}
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(why, whylen, "the socket directory %s is a symbolic link; refusing it", dir);
		return -ELOOP;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "%s is not a directory", dir);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		snprintf(why, whylen, "the socket directory %s is owned by uid %u, not by uid %u", dir,
		    (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & 022) {
		snprintf(why, whylen,
		    "the socket directory %s is writable by group or others (mode %03o); use a private (0700) directory",
		    dir, (unsigned)(st.st_mode & 0777));
		return -EPERM;
	}
	return 0;
}

int
server_lock(char *why, size_t whylen)
{
	char buf[32];
	int fd, n;

	fd = open(D->cfg.lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(why, whylen, "cannot open the lock file %s: %s", D->cfg.lock_path,
		    strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		n = (int)pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		if (buf[0] != '\0')
			snprintf(why, whylen, "another heidid (pid %s) is already serving %s", buf,
			    D->cfg.socket_path);
		else
			snprintf(why, whylen, "another heidid is already serving %s", D->cfg.socket_path);
		close(fd);
		return e == EWOULDBLOCK ? -EADDRINUSE : -e;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == 0)
		(void)!pwrite(fd, buf, (size_t)n, 0);
	D->lock_fd = fd;
	return 0;
}

int
server_listen(void)
{
	struct stat st;
	mode_t old;
	int fd, r;

	if (lstat(D->cfg.socket_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_errorx("%s exists and is not a socket; refusing to replace it",
			    D->cfg.socket_path);
			return -EEXIST;
		}
		unlink(D->cfg.socket_path); /* stale: we hold the lock */
	}
	old = umask(0177);
	fd = sock_listen_unix(D->cfg.socket_path, 256);
	umask(old);
	if (fd < 0)
		return fd;
	chmod(D->cfg.socket_path, 0600);
	r = loop_add(D->loop, &D->listen_src, fd, EPOLLIN, listener_accept);
	if (r < 0) {
		close(fd);
		return r;
	}
	D->listen_fd = fd;
	return 0;
}

void
server_close_listener(void)
{
	if (D->listen_fd < 0)
		return;
	loop_remove(D->loop, &D->listen_src);
	D->listen_fd = fd_close(D->listen_fd);
	unlink(D->cfg.socket_path);
}

/* Flush what can be flushed, bounded in time: used on the way out. */
void
conn_flush_all(void)
{
	uint64_t deadline = time_now_ns() + NSEC_PER_SEC;

	for (;;) {
		struct conn *c;
		bool pending = false;

		LIST_FOREACH(c, &D->conns, entry) {
			if (c->dead || c->out.bytes == 0)
				continue;
			if (outq_flush(&c->out, c->fd) < 0)
				conn_mark_dead(c);
			else if (c->out.bytes > 0)
				pending = true;
		}
		if (!pending || time_now_ns() > deadline)
			return;
		loop_run_once(D->loop, 20);
	}
}
