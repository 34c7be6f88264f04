/* `lightstream admin` — not built yet. */
#include <stdio.h>

#include "cmd.h"

int
cmd_admin(int argc, char **argv)
{
	fprintf(stderr, "lightstream admin: not available in this build\n");
	return CMD_EXIT_FAILURE;
}
