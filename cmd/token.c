/* `lightstream token` — not built yet. */
#include <stdio.h>

#include "cmd.h"

int
cmd_token(int argc, char **argv)
{
	fprintf(stderr, "lightstream token: not available in this build\n");
	return CMD_EXIT_FAILURE;
}
