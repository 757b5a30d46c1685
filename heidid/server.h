/*
 * server.h: start-up pieces of the control socket (see server.c).
 */
#ifndef HEIDI_HEIDID_SERVER_H
#define HEIDI_HEIDID_SERVER_H

#include <stddef.h>

int server_check_rundir(const char *sockpath, char *why, size_t whylen);
int server_lock(char *why, size_t whylen);
void server_reap_dead(void);

#endif
