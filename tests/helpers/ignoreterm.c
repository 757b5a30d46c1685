/* ignoreterm [PIDFILE]: ignore SIGTERM, record our pid, sleep until killed. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	signal(SIGTERM, SIG_IGN);
	if (argc > 1) {
		FILE *f = fopen(argv[1], "w");

		if (f == NULL)
			return 1;
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
