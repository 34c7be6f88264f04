/* `lightstream query` — not built yet. */
#include <stdio.h>

#include "cmd.h"

int
cmd_query(int argc, char **argv)
{
	fprintf(stderr, "lightstream query: not available in this build\n");
	return CMD_EXIT_FAILURE;
}
