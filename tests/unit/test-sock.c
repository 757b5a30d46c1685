/*
 * test-sock.c: Unix sockets and SCM_RIGHTS (common/sock.h).
 *
 * fd passing runs over a SOCK_SEQPACKET socketpair, as between heidid and
 * a shepherd.  Leaks are checked by counting this process's open fds.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/sock.h"

static int sp[2] = { -1, -1 };
static char dir[64]; /* a private directory for socket paths, if made */

static void
setup(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
}

/* Runs after failed tests too: nothing is left in /tmp. */
static void
teardown(void)
{
	char path[128];

	fd_close(sp[0]);
	fd_close(sp[1]);
	if (dir[0] != '\0') {
		snprintf(path, sizeof(path), "%s/s.sock", dir);
		unlink(path);
		rmdir(dir);
	}
}

TestSuite(sock, .init = setup, .fini = teardown);

static bool
fd_valid(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static bool
fd_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	cr_assert_geq(fl, 0);
	return (fl & FD_CLOEXEC) != 0;
}

/* n pipes; the read ends go into rd (to be sent), the write ends into wr. */
static void
make_pipes(int *rd, int *wr, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int p[2];

		cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
		rd[i] = p[0];
		wr[i] = p[1];
	}
}

static void
close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fds[i] = fd_close(fds[i]);
}

Test(sock, passes_fds_that_arrive_cloexec_and_work)
{
	int rd[3], wr[3], got[SOCK_MAX_FDS];
	size_t n_got = 99;
	char buf[64], c;
	ssize_t n;

	make_pipes(rd, wr, 3);
	cr_assert_eq(sock_send_fds_consume(sp[0], "hello", 5, rd, 3), 0);
	n = sock_recv_fds(sp[1], buf, sizeof(buf), got, SOCK_MAX_FDS, &n_got);
	cr_assert_eq(n, 5);
	cr_assert_arr_eq(buf, "hello", 5);
	cr_assert_eq(n_got, 3);
	for (size_t i = 0; i < 3; i++) {
		cr_assert(fd_cloexec(got[i]), "received fd %d is not close-on-exec", got[i]);
		/* the same pipe, in order */
		cr_assert_eq(write(wr[i], "a", 1), 1);
		buf[0] = (char)('0' + i);
		cr_assert_eq(write(wr[i], buf, 1), 1);
		cr_assert_eq(read(got[i], &c, 1), 1);
		cr_assert_eq(c, 'a');
		cr_assert_eq(read(got[i], &c, 1), 1);
		cr_assert_eq(c, (char)('0' + i));
	}
	close_all(got, 3);
	close_all(wr, 3);
}

Test(sock, send_closes_the_sent_fds_on_success)
{
	int rd[2], wr[2], orig[2], got[SOCK_MAX_FDS];
	size_t n_got;
	char buf[8];

	make_pipes(rd, wr, 2);
	orig[0] = rd[0];
	orig[1] = rd[1];
	cr_assert_eq(sock_send_fds_consume(sp[0], "x", 1, rd, 2), 0);
	/* checked before receiving, which may reuse the numbers */
	cr_assert_not(fd_valid(orig[0]), "sent fd still open");
	cr_assert_not(fd_valid(orig[1]), "sent fd still open");
	cr_assert_eq(rd[0], -1);
	cr_assert_eq(rd[1], -1);
	cr_assert_eq(sock_recv_fds(sp[1], buf, sizeof(buf), got, SOCK_MAX_FDS, &n_got), 1);
	cr_assert_eq(n_got, 2);
	close_all(got, 2);
	close_all(wr, 2);
}

Test(sock, send_keeps_the_fds_on_failure)
{
	int rd[1], wr[1];

	make_pipes(rd, wr, 1);
	sp[1] = fd_close(sp[1]);
	/* the peer is gone: EPIPE, no SIGPIPE, and the fd is still ours */
	cr_assert_lt(sock_send_fds_consume(sp[0], "x", 1, rd, 1), 0);
	cr_assert(fd_valid(rd[0]));
	close_all(rd, 1);
	close_all(wr, 1);
}

Test(sock, send_refuses_more_than_max_fds)
{
	int rd[SOCK_MAX_FDS + 1], wr[SOCK_MAX_FDS + 1];

	make_pipes(rd, wr, SOCK_MAX_FDS + 1);
	cr_assert_lt(sock_send_fds_consume(sp[0], "x", 1, rd, SOCK_MAX_FDS + 1), 0);
	for (size_t i = 0; i < SOCK_MAX_FDS + 1; i++)
		cr_assert(fd_valid(rd[i]));
	close_all(rd, SOCK_MAX_FDS + 1);
	close_all(wr, SOCK_MAX_FDS + 1);
}

Test(sock, message_without_fds_passes_none)
{
	int got[SOCK_MAX_FDS];
	size_t n_got = 7;
	char buf[16];

	cr_assert_eq(sock_send_fds_consume(sp[0], "plain", 5, NULL, 0), 0);
	cr_assert_eq(sock_recv_fds(sp[1], buf, sizeof(buf), got, SOCK_MAX_FDS, &n_got), 5);
	cr_assert_eq(n_got, 0);
}

Test(sock, more_fds_than_allowed_is_an_error_and_leaks_none)
{
	int rd[3], wr[3], got[SOCK_MAX_FDS];
	size_t n_got = 7;
	char buf[16];
	int before;

	make_pipes(rd, wr, 3);
	cr_assert_eq(sock_send_fds_consume(sp[0], "x", 1, rd, 3), 0);
	before = fd_count_open();
	cr_assert_gt(before, 0);
	cr_assert_lt(sock_recv_fds(sp[1], buf, sizeof(buf), got, 1, &n_got), 0);
	cr_assert_eq(n_got, 0);
	cr_assert_eq(fd_count_open(), before, "received fds leaked");
	/* the pipes' read ends are all gone: writing to them fails */
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(write(wr[i], "x", 1), -1);
	close_all(wr, 3);
}

Test(sock, zero_allowed_fds_rejects_any_fd)
{
	int rd[1], wr[1], got[1];
	size_t n_got = 7;
	char buf[16];
	int before;

	make_pipes(rd, wr, 1);
	cr_assert_eq(sock_send_fds_consume(sp[0], "x", 1, rd, 1), 0);
	before = fd_count_open();
	cr_assert_lt(sock_recv_fds(sp[1], buf, sizeof(buf), got, 0, &n_got), 0);
	cr_assert_eq(n_got, 0);
	cr_assert_eq(fd_count_open(), before);
	close_all(wr, 1);
}

/* sendmsg with n fds, bypassing sock_send_fds_consume's limit. */
static void
raw_send_fds(int fd, const int *fds, size_t n)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 32)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	cr_assert_leq(n, 32);
	memset(&u, 0, sizeof(u));
	msg.msg_control = u.buf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	cr_assert_eq(sendmsg(fd, &msg, MSG_NOSIGNAL), 1);
}

Test(sock, control_truncation_is_an_error_and_leaks_no_fds)
{
	int rd[SOCK_MAX_FDS + 4], wr[SOCK_MAX_FDS + 4], got[SOCK_MAX_FDS];
	size_t n = SOCK_MAX_FDS + 4, n_got = 7;
	char buf[16];
	int before;

	/* more fds than the receive buffer has room for: the kernel sets MSG_CTRUNC */
	make_pipes(rd, wr, n);
	raw_send_fds(sp[0], rd, n);
	close_all(rd, n);
	before = fd_count_open();
	cr_assert_lt(sock_recv_fds(sp[1], buf, sizeof(buf), got, SOCK_MAX_FDS, &n_got), 0);
	cr_assert_eq(n_got, 0);
	cr_assert_eq(fd_count_open(), before, "fds of a truncated control message leaked");
	close_all(wr, n);
}

Test(sock, truncated_message_is_emsgsize_and_leaks_no_fds)
{
	int rd[2], wr[2], got[SOCK_MAX_FDS];
	size_t n_got = 7;
	char big[100], buf[10];
	int before;

	memset(big, 'b', sizeof(big));
	make_pipes(rd, wr, 2);
	cr_assert_eq(sock_send_fds_consume(sp[0], big, sizeof(big), rd, 2), 0);
	before = fd_count_open();
	cr_assert_eq(sock_recv_fds(sp[1], buf, sizeof(buf), got, SOCK_MAX_FDS, &n_got), -EMSGSIZE);
	cr_assert_eq(n_got, 0);
	cr_assert_eq(fd_count_open(), before, "fds of a truncated message leaked");
	close_all(wr, 2);
}

Test(sock, recv_reports_eof_as_zero)
{
	int got[SOCK_MAX_FDS];
	size_t n_got = 7;
	char buf[10];

	sp[0] = fd_close(sp[0]);
	cr_assert_eq(sock_recv_fds(sp[1], buf, sizeof(buf), got, SOCK_MAX_FDS, &n_got), 0);
	cr_assert_eq(n_got, 0);
}

Test(sock, peer_cred_is_this_process)
{
	struct ucred cr;

	cr_assert_eq(sock_peer_cred(sp[1], &cr), 0);
	cr_assert_eq(cr.pid, getpid());
	cr_assert_eq(cr.uid, getuid());
	cr_assert_eq(cr.gid, getgid());
}

Test(sock, peer_cred_of_a_non_socket_fails)
{
	struct ucred cr;
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_lt(sock_peer_cred(p[0], &cr), 0);
	close(p[0]);
	close(p[1]);
}

/* ---- listen / connect ------------------------------------------------------- */

static void
make_dir(void)
{
	strlcpy(dir, "/tmp/heidi-test-sock-XXXXXX", sizeof(dir));
	cr_assert_not_null(mkdtemp(dir));
}

Test(sock, listen_and_connect_on_a_path)
{
	char path[128];
	int lfd, cfd, afd, fl;
	struct ucred cr;
	char c;

	make_dir();
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	lfd = sock_listen_unix(path, 4);
	cr_assert_geq(lfd, 0, "sock_listen_unix: %s", strerror(-lfd));
	cr_assert(fd_cloexec(lfd));
	fl = fcntl(lfd, F_GETFL);
	cr_assert(fl & O_NONBLOCK, "listening socket is not nonblocking");
	/* nobody is connecting yet: accept does not block */
	cr_assert_eq(accept4(lfd, NULL, NULL, SOCK_CLOEXEC), -1);
	cr_assert_eq(errno, EAGAIN);

	cfd = sock_connect_unix(path);
	cr_assert_geq(cfd, 0, "sock_connect_unix: %s", strerror(-cfd));
	cr_assert(fd_cloexec(cfd));
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(afd, 0);
	cr_assert_eq(sock_peer_cred(afd, &cr), 0);
	cr_assert_eq(cr.pid, getpid());
	cr_assert_eq(cr.uid, getuid());
	cr_assert_eq(write(cfd, "z", 1), 1);
	cr_assert_eq(read(afd, &c, 1), 1);
	cr_assert_eq(c, 'z');
	close(afd);
	close(cfd);
	close(lfd);
}

Test(sock, listen_refuses_an_existing_path)
{
	char path[128];
	int lfd, r;

	make_dir();
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	lfd = sock_listen_unix(path, 4);
	cr_assert_geq(lfd, 0);
	r = sock_listen_unix(path, 4);
	cr_assert_eq(r, -EADDRINUSE);
	close(lfd);
}

Test(sock, connect_to_a_missing_path_fails)
{
	char path[128];

	make_dir();
	snprintf(path, sizeof(path), "%s/none.sock", dir);
	cr_assert_eq(sock_connect_unix(path), -ENOENT);
}

Test(sock, too_long_path_is_enametoolong)
{
	struct sockaddr_un sa;
	char path[sizeof(sa.sun_path) + 8];

	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	cr_assert_eq(sock_listen_unix(path, 1), -ENAMETOOLONG);
	cr_assert_eq(sock_connect_unix(path), -ENAMETOOLONG);
	/* exactly sun_path bytes leaves no room for the terminator */
	path[sizeof(sa.sun_path)] = '\0';
	cr_assert_eq(sock_connect_unix(path), -ENAMETOOLONG);
}
