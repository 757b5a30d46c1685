/*
 * heidictl: the heidi command line (design §3).
 *
 *   heidictl [-s SOCKET] [--json] COMMAND ...
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "heidictl/commands.h"
#include "heidictl/ctl.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *what;
} commands[] = {
	{ "spawn", cmd_spawn, "run a command under heidid (attached unless -d)" },
	{ "ps", cmd_ps, "list jobs (-a: with finished ones)" },
	{ "status", cmd_status, "show one job in full" },
	{ "logs", cmd_logs, "print a job's output (-f: follow it to the end)" },
	{ "attach", cmd_attach, "stream a running job's output; exit with its status" },
	{ "wait", cmd_wait, "wait for jobs to end; exit with their status" },
	{ "kill", cmd_kill, "signal a job's whole tree (default TERM)" },
	{ "stop", cmd_stop, "TERM, grace, KILL; return when the tree is gone" },
	{ "stats", cmd_stats, "daemon counters" },
	{ "shutdown", cmd_shutdown, "stop heidid cleanly" },
	{ "ping", cmd_ping, "check that heidid answers" },
	{ "version", cmd_version, "print versions" },
	{ "doctor", cmd_doctor, "what this host supports for containment, and fixes" },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: heidictl [-s SOCKET] [--json] COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].what);
	fprintf(f,
	    "\noptions:\n"
	    "  -s, --socket PATH  heidid's socket (default: $HEIDI_SOCKET, else\n"
	    "                     $XDG_RUNTIME_DIR/heidi/heidid.sock, else /tmp/heidi-$UID/heidid.sock)\n"
	    "      --json         print JSON, one object per line\n"
	    "  -h, --help         this text ('heidictl COMMAND --help' for a command)\n"
	    "  -V, --version      print heidictl's version\n"
	    "\nheidid is started on demand unless HEIDI_NO_AUTOSTART=1.\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	while ((o = getopt_long(argc, argv, "+s:hV", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			ctl.socket_opt = optarg;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("heidictl %s\n", HEIDI_VERSION);
			return 0;
		default:
			fprintf(stderr, "Try 'heidictl --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			return commands[i].fn(argc - optind, argv + optind);
	fprintf(stderr, "heidictl: unknown command '%s'\nTry 'heidictl --help'.\n", argv[optind]);
	return EXIT_USAGE;
}
