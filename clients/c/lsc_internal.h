/* Glue shared by the library's files (not part of the API). */
#ifndef LSC_INTERNAL_H
#define LSC_INTERNAL_H

/*
 * Route libwebsockets' own log lines (process-wide in lws) into ls_log at
 * debug level, once; call before creating any lws context.
 */
void lsc__lws_log_init(void);

#endif
