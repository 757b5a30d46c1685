/*
 * sock.c: Unix socket helpers and SCM_RIGHTS passing.
 */
#include <errno.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/sock.h"

static int
sockaddr_un_fill(struct sockaddr_un *sa, const char *path)
{
	size_t len = strlen(path);

	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len + 1);
	return 0;
}

int
sock_listen_unix(const char *path, int backlog)
{
	struct sockaddr_un sa;
	_cleanup_close_ int fd = -1;
	int r;

	r = sockaddr_un_fill(&sa, path);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	if (listen(fd, backlog) < 0)
		return -errno;
	return STEAL_FD(&fd);
}

int
sock_connect_unix(const char *path)
{
	struct sockaddr_un sa;
	_cleanup_close_ int fd = -1;
	int r;

	r = sockaddr_un_fill(&sa, path);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		if (errno != EINTR)
			return -errno;
	return STEAL_FD(&fd);
}

int
sock_send_fds_consume(int fd, const void *buf, size_t len, int *fds, size_t n_fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SOCK_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (n_fds > SOCK_MAX_FDS)
		return -EINVAL;
	if (n_fds > 0) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != len)
		return -EMSGSIZE;
	for (size_t i = 0; i < n_fds; i++)
		fds[i] = fd_close(fds[i]);
	return 0;
}

ssize_t
sock_recv_fds(int fd, void *buf, size_t cap, int *fds, size_t max_fds, size_t *n_fdsp)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SOCK_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	size_t n_fds = 0;
	ssize_t n;
	int r = 0;

	*n_fdsp = 0;
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		size_t cnt;
		int *p;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		p = (int *)(void *)CMSG_DATA(c);
		for (size_t i = 0; i < cnt; i++) {
			int rfd;

			memcpy(&rfd, &p[i], sizeof(int));
			if (n_fds < max_fds)
				fds[n_fds++] = rfd;
			else {
				close(rfd);
				r = -EBADMSG;
			}
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		r = -ENFILE;
	else if (msg.msg_flags & MSG_TRUNC)
		r = -EMSGSIZE;
	if (r < 0) {
		for (size_t i = 0; i < n_fds; i++)
			close(fds[i]);
		return r;
	}
	*n_fdsp = n_fds;
	return n;
}

int
sock_peer_cred(int fd, struct ucred *credp)
{
	socklen_t len = sizeof(*credp);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, credp, &len) < 0)
		return -errno;
	return 0;
}
