/*
 * sigrec DIR N: fork N children in our process group; every process
 * (us included) writes DIR/<pid> when it gets SIGINT, then exits.
 * Prints "ready" once all children are set up.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *dir;
static pid_t leader;

static void
on_int(int sig)
{
	char path[512];
	FILE *f;

	(void)sig;
	snprintf(path, sizeof(path), "%s/%d", dir, (int)getpid());
	f = fopen(path, "w");
	if (f != NULL)
		fclose(f);
	/* the leader outlives its children, so none is a leftover to be stopped */
	if (getpid() == leader)
		while (wait(NULL) > 0)
			;
	_exit(0);
}

int
main(int argc, char **argv)
{
	int n, fds[2];
	char c;

	if (argc < 3 || pipe2(fds, O_CLOEXEC) < 0)
		return 2;
	dir = argv[1];
	n = atoi(argv[2]);
	leader = getpid();
	signal(SIGINT, on_int);
	for (int i = 0; i < n; i++) {
		if (fork() == 0) {
			(void)!write(fds[1], "x", 1);
			for (;;)
				pause();
		}
	}
	for (int i = 0; i < n; i++)
		(void)!read(fds[0], &c, 1);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
