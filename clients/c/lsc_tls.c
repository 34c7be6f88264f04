/* TLS and logging glue around libwebsockets (see lsc_internal.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>

#include "ls_log.h"
#include "lsc_internal.h"

#define LSC__LOG "client"

static void lsc__lws_log(int level, const char *line);

static void
lsc__lws_log_setup(void)
{
	lws_set_log_level(LLL_ERR | LLL_WARN, lsc__lws_log);
}

static void
lsc__lws_log(int level, const char *line)
{
	/* lws is chatty about refused connections and retries, which the
	 * client reports through callbacks; keep its lines at debug. */
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
		n--;
	}
	ls_debug(LSC__LOG, "lws: %.*s", (int)n, line);
}

void
lsc__lws_log_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, lsc__lws_log_setup);
}

SSL_CTX *
lsc__ssl_ctx_new(const char *ca_file, ls_error *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		ls_error_set(err, -ENOMEM, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                              SSL_MODE_RELEASE_BUFFERS);
	if (ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			ls_error_set(err, -EINVAL,
			             "cannot load CA certificates from %s",
			             ca_file);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else {
		SSL_CTX_set_default_verify_paths(ctx);
	}
	return ctx;
}

void
lsc__connect_error(bool tls, const char *lws_text, char *out, size_t n)
{
	if (lws_text == NULL) {
		lws_text = "connection failed";
	}
	/* lws reports certificate failures as an opaque "SSL err"; say what
	 * it most likely is. */
	if (tls && strstr(lws_text, "SSL") != NULL) {
		snprintf(out, n,
		         "TLS handshake failed, is the server certificate "
		         "trusted (CA file)? (%s)",
		         lws_text);
	} else {
		snprintf(out, n, "%s", lws_text);
	}
}
