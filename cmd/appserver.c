/* `lightstream appserver` — not built yet. */
#include <stdio.h>

#include "cmd.h"

int
cmd_appserver(int argc, char **argv)
{
	fprintf(stderr,
	        "lightstream appserver: not available in this build\n");
	return CMD_EXIT_FAILURE;
}
