/*
 * commands.h: heidictl's commands; each returns heidictl's exit status.
 */
#ifndef HEIDI_HEIDICTL_COMMANDS_H
#define HEIDI_HEIDICTL_COMMANDS_H

int cmd_spawn(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_kill(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_shutdown(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_attach(int argc, char **argv);

#endif
