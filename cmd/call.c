/* `lightstream call` — not built yet. */
#include <stdio.h>

#include "cmd.h"

int
cmd_call(int argc, char **argv)
{
	fprintf(stderr, "lightstream call: not available in this build\n");
	return CMD_EXIT_FAILURE;
}
