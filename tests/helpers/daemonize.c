/*
 * daemonize PIDFILE: the classic double fork.  The grandchild starts its
 * own session, closes stdio, records its pid and sleeps; the original
 * process exits 0 at once.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	pid_t p;
	int fds[2];
	char c;

	if (argc < 2 || pipe2(fds, O_CLOEXEC) < 0)
		return 2;
	p = fork();
	if (p < 0)
		return 1;
	if (p > 0) {
		close(fds[1]);
		waitpid(p, NULL, 0);
		(void)!read(fds[0], &c, 1); /* the pid file is written */
		return 0;
	}
	setsid();
	if (fork() != 0)
		_exit(0);
	{
		FILE *f = fopen(argv[1], "w");
		int devnull = open("/dev/null", O_RDWR);

		if (f == NULL)
			_exit(1);
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		(void)!write(fds[1], "x", 1);
		close(fds[1]);
	}
	for (;;)
		pause();
}
