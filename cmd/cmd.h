/*
 * Subcommands of the one `lightstream` executable (docs/configuration.md).
 * Each lives in its own file and parses its own options; each answers --help.
 * Return value: the process exit status.
 */
#ifndef LS_CMD_H
#define LS_CMD_H

int cmd_serve(int argc, char **argv);
int cmd_gateway(int argc, char **argv);
int cmd_broker(int argc, char **argv);
int cmd_appserver(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_proxy(int argc, char **argv);
int cmd_admin(int argc, char **argv);
int cmd_call(int argc, char **argv);
int cmd_pub(int argc, char **argv);
int cmd_sub(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_keygen(int argc, char **argv);

/* Exit statuses shared by the commands. */
#define CMD_EXIT_OK      0
#define CMD_EXIT_FAILURE 1 /* runtime failure: peer unreachable, refused */
#define CMD_EXIT_USAGE   2 /* bad arguments or invalid input */
#define CMD_EXIT_COSTLY  3 /* lightstream query: query_too_costly */

#endif
