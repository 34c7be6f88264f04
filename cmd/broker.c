/* `lightstream broker` — not built yet. */
#include <stdio.h>

#include "cmd.h"

int
cmd_broker(int argc, char **argv)
{
	fprintf(stderr, "lightstream broker: not available in this build\n");
	return CMD_EXIT_FAILURE;
}
