/* Glue shared by the library's files (not part of the API). */
#ifndef LSC_INTERNAL_H
#define LSC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "ls_error.h"
#include "lsc.h"

/* Copy in to out (may be NULL) and return in->code. */
int lsc__error_export(lsc_error *out, const ls_error *in);

/*
 * Route libwebsockets' own log lines (process-wide in lws) into ls_log at
 * debug level, once; call before creating any lws context.
 */
void lsc__lws_log_init(void);

/*
 * A readable reason for a failed connection attempt into out (n bytes),
 * from lws's text (may be NULL) and, for TLS, what the handshake on ssl_ctx
 * (from lsc__ssl_ctx_new; NULL for plain connections) got to: no TLS
 * answer at all (a plain ws:// or http:// port), or a certificate the
 * client refused.
 */
void lsc__connect_error(struct ssl_ctx_st *ssl_ctx, const char *lws_text,
                        char *out, size_t n);

/*
 * A client SSL_CTX (new; SSL_CTX_free() after the lws context that uses
 * it is destroyed) verifying with ca_file, or the system store when NULL.
 * lws 4.1.6 cannot free its own client SSL_CTX once a second context was
 * created in the process (it looks its bookkeeping up under an ex_data
 * index that every new context replaces), so we own it.
 * Returns NULL with err set.
 */
struct ssl_ctx_st *lsc__ssl_ctx_new(const char *ca_file, ls_error *err);

#endif
