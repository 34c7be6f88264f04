/* `lightstream sub` — not built yet. */
#include <stdio.h>

#include "cmd.h"

int
cmd_sub(int argc, char **argv)
{
	fprintf(stderr, "lightstream sub: not available in this build\n");
	return CMD_EXIT_FAILURE;
}
