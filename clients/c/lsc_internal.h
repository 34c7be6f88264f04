/* Glue shared by the library's files (not part of the API). */
#ifndef LSC_INTERNAL_H
#define LSC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Route libwebsockets' own log lines (process-wide in lws) into ls_log at
 * debug level, once; call before creating any lws context.
 */
void lsc__lws_log_init(void);

/* A readable reason for a failed connection attempt into out (n bytes),
 * from lws's text (may be NULL). */
void lsc__connect_error(bool tls, const char *lws_text, char *out, size_t n);

#endif
