/*
 * paths.h: where heidi keeps things by default.
 */
#ifndef HEIDI_COMMON_PATHS_H
#define HEIDI_COMMON_PATHS_H

#include <stddef.h>

/* $XDG_STATE_HOME/heidi, else ~/.local/state/heidi, else /tmp/heidi-$UID/state. */
void paths_state_dir(char *buf, size_t len);
/* mkdir -p with mode for each created component.  0 or -errno. */
int paths_mkdir_p(const char *path, unsigned mode);

#endif
