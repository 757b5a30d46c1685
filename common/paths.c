/*
 * paths.c: default locations.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/paths.h"

void
paths_state_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (xdg != NULL && xdg[0] == '/')
		snprintf(buf, len, "%s/heidi", xdg);
	else if (home != NULL && home[0] == '/')
		snprintf(buf, len, "%s/.local/state/heidi", home);
	else
		snprintf(buf, len, "/tmp/heidi-%u/state", (unsigned)getuid());
}

int
paths_mkdir_p(const char *path, unsigned mode)
{
	char tmp[4096];

	if (strlcpy(tmp, path, sizeof(tmp)) >= sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, (mode_t)mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, (mode_t)mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}
