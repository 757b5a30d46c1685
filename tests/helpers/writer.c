/*
 * writer: output patterns for the relay tests.
 *   writer bytes N      N one-byte writes of 'x' to stdout
 *   writer burst N      N bytes (i % 251) in one write, then exit at once
 *   writer binary N     every byte value 0..255, N times
 *   writer slow         "first\n", then sleep (the test reads before it ends)
 *   writer both N       N lines "out i" to stdout and "err i" to stderr, interleaved
 *   writer lines N      N lines "line i" to stdout
 *   writer pipesize     "<size of fd 1's pipe> <size of fd 2's pipe>" to stderr
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
wall(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			exit(3);
		p += w;
		n -= (size_t)w;
	}
}

int
main(int argc, char **argv)
{
	long n = argc > 2 ? atol(argv[2]) : 0;

	if (argc < 2)
		return 2;
	if (strcmp(argv[1], "bytes") == 0) {
		for (long i = 0; i < n; i++)
			wall(1, "x", 1);
	} else if (strcmp(argv[1], "burst") == 0) {
		char *b = malloc((size_t)n);

		for (long i = 0; i < n; i++)
			b[i] = (char)(i % 251);
		wall(1, b, (size_t)n);
	} else if (strcmp(argv[1], "binary") == 0) {
		char b[256];

		for (int i = 0; i < 256; i++)
			b[i] = (char)i;
		for (long i = 0; i < n; i++)
			wall(1, b, sizeof(b));
	} else if (strcmp(argv[1], "slow") == 0) {
		wall(1, "first\n", 6);
		sleep(60);
		wall(1, "second\n", 7);
	} else if (strcmp(argv[1], "both") == 0) {
		char line[64];

		for (long i = 0; i < n; i++) {
			int k = snprintf(line, sizeof(line), "out %ld\n", i);

			wall(1, line, (size_t)k);
			k = snprintf(line, sizeof(line), "err %ld\n", i);
			wall(2, line, (size_t)k);
		}
	} else if (strcmp(argv[1], "lines") == 0) {
		char line[64];

		for (long i = 1; i <= n; i++) {
			int k = snprintf(line, sizeof(line), "line %ld\n", i);

			wall(1, line, (size_t)k);
		}
	} else if (strcmp(argv[1], "pipesize") == 0) {
		fprintf(stderr, "%d %d\n", fcntl(1, F_GETPIPE_SZ), fcntl(2, F_GETPIPE_SZ));
	} else
		return 2;
	return 0;
}
