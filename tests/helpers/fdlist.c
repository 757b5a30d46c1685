/* fdlist: print this process's open fds ("0 1 2"), as a job sees them. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

int
main(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int fds[256], n = 0, self = dirfd(d);

	while ((de = readdir(d)) != NULL && n < 256) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] != '.' && fd != self)
			fds[n++] = fd;
	}
	closedir(d);
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (fds[j] < fds[i]) {
				int t = fds[i];
				fds[i] = fds[j];
				fds[j] = t;
			}
	for (int i = 0; i < n; i++)
		printf("%s%d", i ? " " : "", fds[i]);
	printf("\n");
	return 0;
}
