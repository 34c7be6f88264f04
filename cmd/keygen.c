/*
 * `lightstream keygen`: a CURVE key pair for the service bus (docs/bus.md,
 * "Security").
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "bus_curve.h"
#include "cmd.h"
#include "cmd_util.h"
#include "ls_error.h"

enum { OPT_OUT = 0x2000, OPT_HELP };

static void
keygen_usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream keygen [--out PREFIX]\n"
	        "\n"
	        "Make a CURVE key pair for the service bus. With --out, write "
	        "PREFIX.key\n"
	        "(the key file for bus.keys / --bus-keys: public and secret "
	        "key, mode 0600)\n"
	        "and PREFIX.pub (the public key, for bus.server_key or "
	        "bus.allow), refusing\n"
	        "to overwrite either, and print the public key. Without "
	        "--out, print a key\n"
	        "file to standard output.\n"
	        "\n"
	        "Options:\n"
	        "  -o, --out PREFIX         write PREFIX.key and PREFIX.pub\n"
	        "  -h, --help               this help\n");
}

int
cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *prefix = NULL;
	char pub[BUS_CURVE_KEY_LEN + 1], sec[BUS_CURVE_KEY_LEN + 1];
	ls_error err = { 0 };
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			prefix = optarg;
			break;
		case 'h':
		case OPT_HELP:
			keygen_usage(stdout);
			return CMD_EXIT_OK;
		default:
			keygen_usage(stderr);
			return CMD_EXIT_USAGE;
		}
	}
	if (cmd_no_operands("keygen", optind, argc, argv) != 0) {
		return CMD_EXIT_USAGE;
	}
	if (prefix != NULL) {
		if (bus_curve_write_pair(prefix, pub, &err) != 0) {
			cmd_error("keygen", "%s", err.text);
			return CMD_EXIT_FAILURE;
		}
		printf("%s\n", pub);
		return CMD_EXIT_OK;
	}
	if (bus_curve_keypair(pub, sec) != 0) {
		cmd_error("keygen", "this libzmq has no CURVE support");
		return CMD_EXIT_FAILURE;
	}
	printf("{\"public\": \"%s\", \"secret\": \"%s\"}\n", pub, sec);
	explicit_bzero(sec, sizeof(sec));
	return CMD_EXIT_OK;
}
