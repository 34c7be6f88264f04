/* `lightstream pub` — not built yet. */
#include <stdio.h>

#include "cmd.h"

int
cmd_pub(int argc, char **argv)
{
	fprintf(stderr, "lightstream pub: not available in this build\n");
	return CMD_EXIT_FAILURE;
}
