/*
 * client.h: the client library heidictl uses and third parties may link:
 * socket path resolution, connect + hello, requests and events.
 *
 * One struct client per connection.  Blocking helpers (client_request,
 * client_recv) suit simple commands; client_fill/client_next suit a
 * poll() loop that also watches other fds.  A decoded event stays valid
 * until the next receive on the same client.
 */
#ifndef HEIDI_PROTO_CLIENT_H
#define HEIDI_PROTO_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"
#include "proto/msg.h"
#include "proto/pack.h"

/* Frames from heidid may be larger than requests: a "ps -a" of many jobs. */
#define CLIENT_FRAME_MAX (64u << 20)

#define CLIENT_MAX_FDS 4

struct client {
	int fd;
	struct frame_reader rd;
	struct pack_doc doc;
	bool have_doc;
	struct pack_buf out;
	uint64_t next_id;
	uint64_t server_version;
	int64_t server_pid;
	char server[64];
	char instance[32];
	uint64_t hello_id;  /* the hello's reply is still to come (pipelined) */
	int fds[CLIENT_MAX_FDS]; /* fds received with the bytes, oldest first */
	size_t n_fds;
	bool fds_lost;      /* fds were sent that did not fit or could not be received */
};

/*
 * The socket path: explicit (if non-NULL), else $HEIDI_SOCKET, else
 * $XDG_RUNTIME_DIR/heidi/heidid.sock, else /tmp/heidi-$UID/heidid.sock.
 * 0 or -ENAMETOOLONG.
 */
int client_socket_path(const char *explicit_path, char *buf, size_t len);

/*
 * Refuse a socket whose directory is not ours: a symbolic link, owned by
 * another uid, or writable by group or others (root may use any).  A
 * directory that does not exist yet is fine (heidid creates it 0700).
 * 0, or -EPERM with err set.
 */
int client_check_socket_dir(const char *path, struct proto_error *err);

/* Connect and exchange hellos.  0, or -errno with err set (code "connect" or the server's). */
int client_connect(struct client **cp, const char *path, const char *client_name,
    struct proto_error *err);
/*
 * Connect and queue the hello without waiting for its reply: it goes out
 * with the first request, saving a round trip.  The hello's reply (or a
 * refusal, returned as an error event) is handled by the next receive.
 */
int client_connect_pipelined(struct client **cp, const char *path, const char *client_name,
    struct proto_error *err);
struct client *client_free(struct client *c);

uint64_t client_next_id(struct client *c);
/* The buffer to encode requests into; client_flush() sends it all (blocking). */
struct pack_buf *client_outbuf(struct client *c);
int client_flush(struct client *c);

/* Read once from the socket (nonblocking use: call when poll says readable). >0, 0 EOF, -errno. */
ssize_t client_fill(struct client *c);
/* The oldest fd received from heidid (the "pipes" event brings two), or -1. */
int client_take_fd(struct client *c);
/* Next complete message already buffered: 0, FRAME_E_AGAIN, FRAME_E_EOF, -errno (err set). */
int client_next(struct client *c, struct msg_event *ev, struct proto_error *err);
/* Blocking: the next message. */
int client_recv(struct client *c, struct msg_event *ev, struct proto_error *err);
/* Blocking: flush, then wait for the reply to id (events in between are skipped). */
int client_wait_reply(struct client *c, uint64_t id, struct msg_event *ev, struct proto_error *err);

#endif
