/*
 * session.h: an attached job (spawn without -d, and attach).
 */
#ifndef HEIDI_HEIDICTL_SESSION_H
#define HEIDI_HEIDICTL_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/client.h"

/* Block the signals the session forwards (call before the request that starts it). */
void session_block_signals(void);
/* Relay until the job's exit event; returns the exit status for heidictl. */
int session_run(struct client *c, uint64_t job, bool forward_input);

#endif
