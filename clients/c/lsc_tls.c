/* TLS and logging glue around libwebsockets (see lsc_internal.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

/* What the last handshake on a client SSL_CTX got to, for error texts. */
typedef struct lsc__tls_seen {
	bool server_hello; /* the peer answered in TLS */
	char alert[64];    /* the last alert we sent, "" none */
} lsc__tls_seen;

static int lsc__seen_index = -1;

static void
lsc__seen_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
               void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

static void
lsc__seen_index_init(void)
{
	lsc__seen_index =
	        SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, lsc__seen_free);
}

static lsc__tls_seen *
lsc__seen_of(const SSL_CTX *ctx)
{
	if (ctx == NULL || lsc__seen_index < 0) {
		return NULL;
	}
	return SSL_CTX_get_ex_data(ctx, lsc__seen_index);
}

/* lws installs its own verify callback on each SSL; the info callback is
 * ours alone. */
static void
lsc__tls_info(const SSL *ssl, int where, int ret)
{
	lsc__tls_seen *seen = lsc__seen_of(SSL_get_SSL_CTX(ssl));

	if (seen == NULL) {
		return;
	}
	if (where & SSL_CB_HANDSHAKE_START) {
		seen->server_hello = false;
		seen->alert[0] = '\0';
	}
	if ((where & SSL_CB_LOOP) &&
	    SSL_get_state(ssl) == TLS_ST_CR_SRVR_HELLO) {
		seen->server_hello = true;
	}
	if ((where & SSL_CB_ALERT) && (where & SSL_CB_WRITE)) {
		snprintf(seen->alert, sizeof(seen->alert), "%s",
		         SSL_alert_desc_string_long(ret));
	}
}

SSL_CTX *
lsc__ssl_ctx_new(const char *ca_file, ls_error *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	lsc__tls_seen *seen = calloc(1, sizeof(*seen));

	pthread_once(&once, lsc__seen_index_init);
	if (ctx == NULL || seen == NULL || lsc__seen_index < 0 ||
	    SSL_CTX_set_ex_data(ctx, lsc__seen_index, seen) != 1) {
		ls_error_set(err, -ENOMEM, "cannot create a TLS context");
		SSL_CTX_free(ctx);
		free(seen);
		return NULL;
	}
	SSL_CTX_set_info_callback(ctx, lsc__tls_info);
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
lsc__connect_error(SSL_CTX *ssl_ctx, const char *lws_text, char *out, size_t n)
{
	const lsc__tls_seen *seen = lsc__seen_of(ssl_ctx);

	if (lws_text == NULL) {
		lws_text = "connection failed";
	}
	/* lws reports every TLS failure as an opaque "SSL err"; say which
	 * one it was. */
	if (seen == NULL || strstr(lws_text, "SSL") == NULL) {
		snprintf(out, n, "%s", lws_text);
	} else if (!seen->server_hello) {
		snprintf(out, n,
		         "the server does not speak TLS on this port (a plain "
		         "ws:// or http:// port?)");
	} else if (seen->alert[0] != '\0') {
		snprintf(out, n,
		         "TLS handshake failed: %s: is the server certificate "
		         "trusted? (--ca-file FILE, or -k for development)",
		         seen->alert);
	} else {
		snprintf(out, n, "TLS handshake failed (%s)", lws_text);
	}
}
