/*
 * fd.h: file descriptor helpers.  Every fd heidi creates is born
 * close-on-exec; these helpers never create one without the flag.
 */
#ifndef HEIDI_COMMON_FD_H
#define HEIDI_COMMON_FD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/util.h"

/* Close fd if valid, preserving errno; returns -1 for "fd = fd_close(fd)". */
int fd_close(int fd);
void fd_closep(int *fdp);
#define _cleanup_close_ _cleanup_(fd_closep)

int fd_set_nonblock(int fd, bool on);
int fd_set_cloexec(int fd, bool on);

/* Write all of buf (retrying EINTR/short writes).  0 or -errno. */
int fd_write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes.  0, -errno, or -EPIPE on early EOF. */
int fd_read_exact(int fd, void *buf, size_t len);

/* Open /dev/null with the given flags (always O_CLOEXEC).  fd or -errno. */
int fd_open_devnull(int flags);

/* Move fd to a number >= min, closing the old one.  New fd or -errno. */
int fd_move_above(int fd, int min);

/* Number of open fds of this process (by listing /proc/self/fd). */
int fd_count_open(void);

#endif
