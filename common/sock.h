/*
 * sock.h: Unix sockets and fd passing (SCM_RIGHTS).
 *
 * Sending fds consumes them on success.  Receiving uses MSG_CMSG_CLOEXEC,
 * treats MSG_CTRUNC and MSG_TRUNC as errors (at the fd limit the kernel
 * silently drops passed fds and sets MSG_CTRUNC), and never returns more
 * fds than the caller allows: extra ones are closed.
 */
#ifndef HEIDI_COMMON_SOCK_H
#define HEIDI_COMMON_SOCK_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#define SOCK_MAX_FDS 8

/* Bind and listen on a SOCK_STREAM Unix socket (nonblocking).  fd or -errno. */
int sock_listen_unix(const char *path, int backlog);
/* Connect a SOCK_STREAM Unix socket (blocking).  fd or -errno (-ENAMETOOLONG). */
int sock_connect_unix(const char *path);

/* sendmsg(MSG_NOSIGNAL) of one message with n_fds fds; closes the fds on success. */
int sock_send_fds_consume(int fd, const void *buf, size_t len, int *fds, size_t n_fds);
/* recvmsg one message; fds[] gets up to max_fds fds (n_fdsp).  Length, 0 on EOF, or -errno. */
ssize_t sock_recv_fds(int fd, void *buf, size_t cap, int *fds, size_t max_fds, size_t *n_fdsp);

int sock_peer_cred(int fd, struct ucred *credp);

#endif
