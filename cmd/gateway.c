/* `lightstream gateway` — not built yet. */
#include <stdio.h>

#include "cmd.h"

int
cmd_gateway(int argc, char **argv)
{
	fprintf(stderr, "lightstream gateway: not available in this build\n");
	return CMD_EXIT_FAILURE;
}
