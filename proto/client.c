/*
 * client.c: client side of the control protocol.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/sock.h"
#include "proto/client.h"

int
client_socket_path(const char *explicit_path, char *buf, size_t len)
{
	const char *env = getenv("HEIDI_SOCKET");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (explicit_path != NULL && *explicit_path != '\0')
		n = snprintf(buf, len, "%s", explicit_path);
	else if (env != NULL && *env != '\0')
		n = snprintf(buf, len, "%s", env);
	else if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, len, "%s/heidi/heidid.sock", xdg);
	else
		n = snprintf(buf, len, "/tmp/heidi-%u/heidid.sock", (unsigned)getuid());
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int
client_check_socket_dir(const char *path, struct proto_error *err)
{
	char copy[4096], *dir;
	struct stat st;
	uid_t me = geteuid();

	snprintf(copy, sizeof(copy), "%s", path);
	dir = dirname(copy);
	if (lstat(dir, &st) < 0)
		return 0; /* not there yet: heidid creates it 0700 */
	if (S_ISLNK(st.st_mode))
		return proto_error_set(err, "unsafe_socket_dir",
			   "refusing %s: the socket directory %s is a symbolic link", path, dir),
		       -EPERM;
	if (me == 0)
		return 0;
	if (st.st_uid != me)
		return proto_error_set(err, "unsafe_socket_dir",
			   "refusing %s: the socket directory %s belongs to uid %u, not to you (uid %u)",
			   path, dir, (unsigned)st.st_uid, (unsigned)me),
		       -EPERM;
	if (st.st_mode & 022)
		return proto_error_set(err, "unsafe_socket_dir",
			   "refusing %s: the socket directory %s is writable by group or others", path, dir),
		       -EPERM;
	return 0;
}

/* Connect, refusing a socket that is not ours or a server of another uid. */
static int
safe_connect(const char *path, struct proto_error *err)
{
	struct ucred cred;
	int fd, r;

	r = client_check_socket_dir(path, err);
	if (r < 0)
		return r;
	fd = sock_connect_unix(path);
	if (fd < 0) {
		proto_error_set(err, "connect", "cannot connect to %s: %s", path, strerror(-fd));
		return fd;
	}
	if (sock_peer_cred(fd, &cred) == 0 && cred.uid != geteuid() && cred.uid != 0) {
		close(fd);
		return proto_error_set(err, "unsafe_server",
			   "refusing %s: the daemon there runs as uid %u, not as you", path,
			   (unsigned)cred.uid),
		       -EPERM;
	}
	return fd;
}

struct client *
client_free(struct client *c)
{
	if (c == NULL)
		return NULL;
	fd_close(c->fd);
	for (size_t i = 0; i < c->n_fds; i++)
		close(c->fds[i]);
	frame_reader_deinit(&c->rd);
	if (c->have_doc)
		pack_doc_deinit(&c->doc);
	pack_buf_deinit(&c->out);
	free(c);
	return NULL;
}

uint64_t
client_next_id(struct client *c)
{
	return ++c->next_id;
}

struct pack_buf *
client_outbuf(struct client *c)
{
	return &c->out;
}

int
client_flush(struct client *c)
{
	const char *p = c->out.sbuf.data;
	size_t len = c->out.sbuf.size;
	int r = 0;

	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	pack_buf_reset(&c->out);
	return r;
}

ssize_t
client_fill(struct client *c)
{
	size_t n = 0;
	ssize_t r = frame_reader_fill_fds(&c->rd, c->fd, c->fds + c->n_fds,
	    CLIENT_MAX_FDS - c->n_fds, &n, &c->fds_lost);

	c->n_fds += n;
	return r;
}

int
client_take_fd(struct client *c)
{
	int fd;

	if (c->n_fds == 0)
		return -1;
	fd = c->fds[0];
	memmove(c->fds, c->fds + 1, --c->n_fds * sizeof(int));
	return fd;
}

static void copy_field(const msgpack_object *m, const char *key, char *buf, size_t len);

static void
hello_record(struct client *c, const struct msg_event *ev)
{
	pack_get_uint(ev->map, "version", false, 0, UINT64_MAX, &c->server_version, NULL);
	pack_get_int(ev->map, "pid", false, 0, INT32_MAX, &c->server_pid, NULL);
	copy_field(ev->map, "server", c->server, sizeof(c->server));
	copy_field(ev->map, "instance", c->instance, sizeof(c->instance));
}

int
client_next(struct client *c, struct msg_event *ev, struct proto_error *err)
{
	const uint8_t *p;
	size_t len;
	int r;

	if (c->have_doc) {
		pack_doc_deinit(&c->doc);
		c->have_doc = false;
	}
	r = frame_reader_next(&c->rd, &p, &len);
	if (r == -EMSGSIZE)
		return proto_error_set(err, PROTO_E_BAD_FRAME, "oversized frame from heidid"),
		       -EMSGSIZE;
	if (r == -EPIPE)
		return proto_error_set(err, "connection", "heidid closed the connection mid-message"),
		       -EPIPE;
	if (r != 0)
		return r;
	pack_doc_init(&c->doc);
	c->have_doc = true;
	r = msg_event_decode(&c->doc, p, len, ev, err);
	if (r < 0)
		return -EBADMSG;
	if (c->hello_id != 0 && ev->id == c->hello_id && ev->type == MSG_HELLO) {
		/* the pipelined hello's answer: note it, pass on to the next message */
		hello_record(c, ev);
		c->hello_id = 0;
		return client_next(c, ev, err);
	}
	return 0;
}

int
client_recv(struct client *c, struct msg_event *ev, struct proto_error *err)
{
	for (;;) {
		int r = client_next(c, ev, err);
		ssize_t n;

		if (r != FRAME_E_AGAIN) {
			if (r == FRAME_E_EOF) {
				proto_error_set(err, "connection", "heidid closed the connection");
				return -ECONNRESET;
			}
			return r;
		}
		n = client_fill(c);
		if (n < 0 && n != -EINTR) {
			proto_error_set(err, "connection", "reading from heidid: %s", strerror((int)-n));
			return (int)n;
		}
	}
}

int
client_wait_reply(struct client *c, uint64_t id, struct msg_event *ev, struct proto_error *err)
{
	int r = client_flush(c);

	if (r < 0) {
		proto_error_set(err, "connection", "sending to heidid: %s", strerror(-r));
		return r;
	}
	for (;;) {
		r = client_recv(c, ev, err);
		if (r < 0)
			return r;
		if ((ev->type == MSG_OK || ev->type == MSG_ERROR || ev->type == MSG_HELLO) &&
		    ev->id == id)
			return 0;
		if (ev->type == MSG_ERROR && (ev->id == 0 || ev->id == c->hello_id))
			return 0; /* a connection-level error, or the hello refused */
	}
}

static void
copy_field(const msgpack_object *m, const char *key, char *buf, size_t len)
{
	struct proto_bytes b;

	buf[0] = '\0';
	if (pack_get_str(m, key, false, len - 1, PACK_STR_UTF8, &b, NULL) > 0) {
		memcpy(buf, b.ptr, b.len);
		buf[b.len] = '\0';
	}
}

int
client_connect(struct client **cp, const char *path, const char *client_name,
    struct proto_error *err)
{
	struct client *c;
	struct msg_event ev;
	uint64_t id;
	int r;

	r = client_connect_pipelined(&c, path, client_name, err);
	if (r < 0)
		return r;
	/* the hello's answer is waited for here, not passed over */
	id = c->hello_id;
	c->hello_id = 0;
	r = client_wait_reply(c, id, &ev, err);
	if (r == 0 && ev.type == MSG_ERROR) {
		proto_error_set(err, "hello", "heidid refused the connection: %.*s",
		    (int)ev.message.len, ev.message.ptr);
		r = -EPROTO;
	} else if (r == 0 && ev.type != MSG_HELLO) {
		proto_error_set(err, "hello", "heidid did not answer the hello");
		r = -EPROTO;
	}
	if (r < 0) {
		client_free(c);
		return r;
	}
	hello_record(c, &ev);
	*cp = c;
	return 0;
}

int
client_connect_pipelined(struct client **cp, const char *path, const char *client_name,
    struct proto_error *err)
{
	struct client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return proto_error_set(err, "no_memory", "out of memory"), -ENOMEM;
	frame_reader_init(&c->rd, CLIENT_FRAME_MAX);
	pack_buf_init(&c->out);
	c->fd = safe_connect(path, err);
	if (c->fd < 0) {
		int r = c->fd;

		client_free(c);
		return r;
	}
	c->hello_id = client_next_id(c);
	msg_encode_hello(&c->out, c->hello_id, client_name);
	*cp = c;
	return 0;
}
