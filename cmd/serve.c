/* `lightstream serve` — not built yet. */
#include <stdio.h>

#include "cmd.h"

int
cmd_serve(int argc, char **argv)
{
	fprintf(stderr, "lightstream serve: not available in this build\n");
	return CMD_EXIT_FAILURE;
}
