/* `lightstream`: one executable, one subcommand per role or tool. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cmd.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "serve", cmd_serve,
	  "gateway + broker + app server in one process (default)" },
	{ "gateway", cmd_gateway, "the WebSocket/HTTP gateway alone" },
	{ "broker", cmd_broker, "the service-bus broker alone" },
	{ "appserver", cmd_appserver, "app-server workers (auth, accounts)" },
	{ "worker", cmd_worker, "serve a bus service with any program" },
	{ "proxy", cmd_proxy, "forwarder of the ZeroMQ pub/sub fabric" },
	{ "admin", cmd_admin, "manage accounts, roles and tokens" },
	{ "call", cmd_call, "call a service-bus operation" },
	{ "pub", cmd_pub, "publish messages from the command line" },
	{ "sub", cmd_sub, "subscribe and print messages" },
	{ "token", cmd_token, "request a token from the HTTP endpoint" },
	{ "keygen", cmd_keygen, "make a CURVE key pair for the service bus" },
	{ "query", cmd_query, "evaluate a query on a message" },
	{ "history", cmd_history, "print what a stream's history holds" },
};

static void
usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream COMMAND [OPTIONS]\n"
	        "\n"
	        "LightStream %s: a WebSocket publish/subscribe gateway with "
	        "server-side queries.\n"
	        "\n"
	        "Commands:\n",
	        LS_VERSION);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		fprintf(out, "  %-10s %s\n", commands[i].name,
		        commands[i].summary);
	}
	fprintf(out, "\nWith no command, or with only options, `lightstream` "
	             "runs `serve`.\n"
	             "Run `lightstream COMMAND --help` (or `lightstream help "
	             "COMMAND`) for a\ncommand's options.\n");
}

/*
 * libmongoc, linked for the MongoDB store, initializes itself when the
 * binary loads and creates /dev/shm/mongoc-PID for its diagnostic counters;
 * a process that is killed leaves the file behind, and a later process
 * given the same pid then prints "Falling back to malloc for counters" on
 * stderr before main. The name goes at once (the mapping stays valid), so
 * no lightstream process leaves one. MONGOC_DISABLE_SHM=1 in the
 * environment avoids the file altogether.
 */
static void
main__unlink_mongoc_counters(void)
{
	char name[32];

	snprintf(name, sizeof(name), "/mongoc-%u", (unsigned)getpid());
	shm_unlink(name);
}

int
main(int argc, char **argv)
{
	/* hiredis and raw sockets write(); a closed peer must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	main__unlink_mongoc_counters();

	/* `lightstream` alone, or with serve's options only, is serve. */
	if (argc < 2 || (argv[1][0] == '-' && strcmp(argv[1], "--help") != 0 &&
	                 strcmp(argv[1], "-h") != 0 &&
	                 strcmp(argv[1], "--version") != 0)) {
		return cmd_serve(argc, argv);
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		/* `lightstream help COMMAND` is `lightstream COMMAND --help`.
		 */
		if (argc >= 3 && strcmp(argv[1], "help") == 0) {
			for (size_t i = 0;
			     i < sizeof(commands) / sizeof(commands[0]); i++) {
				if (strcmp(argv[2], commands[i].name) == 0) {
					char *args[] = { argv[2], "--help",
						         NULL };
					return commands[i].run(2, args);
				}
			}
			fprintf(stderr,
			        "lightstream: unknown command '%s'\n\n",
			        argv[2]);
			usage(stderr);
			return CMD_EXIT_USAGE;
		}
		usage(stdout);
		return CMD_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("lightstream %s\n", LS_VERSION);
		return CMD_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			return commands[i].run(argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "lightstream: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return CMD_EXIT_USAGE;
}
