/* The public API of lsc.h: client objects, running, requests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ls_log.h"
#include "ls_proto.h"
#include "lsc_client_int.h"
#include "lsc_ev.h"
#include "lsc_internal.h"

static char *
lsc__strdup(const char *s)
{
	return s == NULL ? NULL : strdup(s);
}

/* lsc.h's codes are ls_error.h's: one numbering on both sides. */
_Static_assert(LSC_EBADREQUEST == LS_EBADREQUEST, "lsc code");
_Static_assert(LSC_EAUTH == LS_EAUTH, "lsc code");
_Static_assert(LSC_EEXPIRED == LS_EEXPIRED, "lsc code");
_Static_assert(LSC_EFORBIDDEN == LS_EFORBIDDEN, "lsc code");
_Static_assert(LSC_EINVALIDQUERY == LS_EINVALIDQUERY, "lsc code");
_Static_assert(LSC_ETOOLARGE == LS_ETOOLARGE, "lsc code");
_Static_assert(LSC_EUNAVAILABLE == LS_EUNAVAILABLE, "lsc code");
_Static_assert(LSC_ETIMEOUT == LS_ETIMEOUT, "lsc code");
_Static_assert(LSC_ENOTFOUND == LS_ENOTFOUND, "lsc code");
_Static_assert(LSC_ESERVER == LS_ESERVER, "lsc code");
_Static_assert(LSC_ERATELIMITED == LS_ERATELIMITED, "lsc code");
_Static_assert(LSC_EREVOKED == LS_EREVOKED, "lsc code");
_Static_assert(LSC_ERROR_TEXT_MAX == LS_ERROR_TEXT_MAX, "lsc text");

int
lsc__error_export(lsc_error *out, const ls_error *in)
{
	if (out != NULL) {
		out->code = in->code;
		memcpy(out->text, in->text, sizeof(out->text));
	}
	return in->code;
}

/* ---- public API ---- */

static lsc_client *lsc__client_new(const lsc_options *opt, void *ev_loop,
                                   ls_error *err);

lsc_client *
lsc_client_new(const lsc_options *opt, lsc_error *err)
{
	ls_error e;
	lsc_client *c;

	ls_error_clear(&e);
	c = lsc__client_new(opt, NULL, &e);
	if (c == NULL) {
		lsc__error_export(err, &e);
	}
	return c;
}

static lsc_client *
lsc__client_new(const lsc_options *opt, void *ev_loop, ls_error *err)
{
	struct lws_context_creation_info info;
	lsc_client *c;

	if (opt == NULL || opt->app_key == NULL || opt->token == NULL) {
		ls_error_set(err, -EINVAL,
		             "an app key and a token are "
		             "required");
		return NULL;
	}
	if (!ls_valid_app_key(opt->app_key)) {
		ls_error_set(err, -EINVAL, "invalid app key '%s'",
		             opt->app_key);
		return NULL;
	}
	if (*opt->token == '\0' || strlen(opt->token) > 1024) {
		ls_error_set(err, -EINVAL, "invalid token");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	if (lsc__url_parse(opt->url, "ws", "wss", LSC_DEFAULT_PATH, &c->url,
	                   err) != 0) {
		goto fail;
	}
	snprintf(c->host_header, sizeof(c->host_header), "%s:%d", c->url.host,
	         c->url.port);
	c->app_key = strdup(opt->app_key);
	c->token = strdup(opt->token);
	c->secret_key = lsc__strdup(opt->secret_key);
	c->ca_file = lsc__strdup(opt->ca_file);
	if (c->app_key == NULL || c->token == NULL ||
	    (opt->secret_key != NULL && c->secret_key == NULL) ||
	    (opt->ca_file != NULL && c->ca_file == NULL)) {
		ls_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	c->sign = opt->sign;
	c->sign_user = opt->sign_user;
	c->get_token = opt->get_token;
	c->token_user = opt->token_user;
	c->insecure = opt->insecure;
	c->reconnect = opt->reconnect;
	c->retry_initial = opt->retry_initial;
	c->backoff_initial_ms = opt->backoff_initial_ms
	                                ? opt->backoff_initial_ms
	                                : LSC_DEFAULT_BACKOFF_INITIAL;
	c->backoff_max_ms = opt->backoff_max_ms ? opt->backoff_max_ms
	                                        : LSC_DEFAULT_BACKOFF_MAX;
	if (c->backoff_max_ms < c->backoff_initial_ms) {
		c->backoff_max_ms = c->backoff_initial_ms;
	}
	c->max_attempts = opt->max_attempts;
	c->connect_timeout_ms = opt->connect_timeout_ms
	                                ? opt->connect_timeout_ms
	                                : LSC_DEFAULT_CONNECT_TIMEOUT;
	c->max_frame = opt->max_frame_bytes ? opt->max_frame_bytes
	                                    : LSC_DEFAULT_MAX_FRAME;
	c->max_queue = opt->max_queue_bytes ? opt->max_queue_bytes
	                                    : LSC_DEFAULT_MAX_QUEUE;
	c->cb = opt->cb;
	c->user = opt->user;

	lsc__lws_log_init();
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = lsc__protocols;
	info.gid = -1;
	info.uid = -1;
	info.user = c;
	/* Only TLS URLs get an SSL_CTX: loading the system CA store costs
	 * time and memory that a ws:// client never needs. */
	if (c->url.tls) {
		c->ssl_ctx = lsc__ssl_ctx_new(c->ca_file, err);
		if (c->ssl_ctx == NULL) {
			goto fail;
		}
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.provided_client_ssl_ctx = c->ssl_ctx;
	}
	if (ev_loop != NULL) {
		/* lws joins the application's loop (docs/c-client.md). */
		c->foreign_loops[0] = ev_loop;
		c->on_ev = true;
		info.options |= LWS_SERVER_OPTION_LIBEV;
		info.foreign_loops = c->foreign_loops;
	}
	info.fd_limit_per_thread = 16; /* one connection at a time */
	/* lws bounds each handshake step (TCP, TLS, HTTP upgrade) by this. */
	info.timeout_secs = (c->connect_timeout_ms + 999) / 1000;
	c->ctx = lws_create_context(&info);
	if (c->ctx == NULL) {
		ls_error_set(err, -EIO,
		             "cannot create the WebSocket context"
		             "%s",
		             c->on_ev     ? " (is libwebsockets-evlib-ev "
		                            "installed?)"
		             : c->ca_file ? " (check the CA file)"
		                          : "");
		goto fail;
	}
	return c;

fail:
	lsc_client_destroy(&c);
	return NULL;
}

void
lsc_client_destroy(lsc_client **pc)
{
	lsc_client *c;
	lsc__sub *s;
	lsc__ack *a;

	if (pc == NULL || *pc == NULL) {
		return;
	}
	c = *pc;
	*pc = NULL;
	c->destroying = true;
	if (c->ctx != NULL) {
		lws_sul_cancel(&c->retry_sul);
		lws_sul_cancel(&c->run_sul);
		lws_sul_cancel(&c->timeout_sul);
		lws_context_destroy(c->ctx);
	}
	SSL_CTX_free(c->ssl_ctx); /* after the context that used it */
	lsc__queue_clear(c, &c->ctl);
	lsc__queue_clear(c, &c->pub);
	while ((s = c->subs) != NULL) {
		c->subs = s->next;
		lsc__sub_free(s);
	}
	while ((a = c->acks) != NULL) {
		c->acks = a->next;
		free(a);
	}
	json_decref(c->perms);
	pthread_mutex_destroy(&c->mu);
	free(c->refresh_token);
	free(c->rx);
	free(c->app_key);
	if (c->token != NULL) {
		memset(c->token, 0, strlen(c->token));
	}
	free(c->token);
	if (c->secret_key != NULL) {
		memset(c->secret_key, 0, strlen(c->secret_key));
	}
	free(c->secret_key);
	free(c->ca_file);
	free(c);
}

int
lsc_client_connect(lsc_client *c)
{
	if (c->conn_live || c->retry_pending) {
		return -EALREADY;
	}
	c->user_closed = false;
	c->attempt = 0;
	return lsc__start(c);
}

static void
lsc__run_cb(lws_sorted_usec_list_t *sul)
{
	lsc_client *c = lws_container_of(sul, lsc_client, run_sul);

	c->run_expired = true;
	/* A sul runs before lws polls; without this wake-up the poll would
	 * still wait for the next timer or socket event. */
	lws_cancel_service(c->ctx);
}

int
lsc_client_run_until(lsc_client *c, bool (*done)(lsc_client *c, void *user),
                     void *user, int timeout_ms)
{
	int rc;

	if (c->on_ev) {
		return -EINVAL; /* the application's loop drives it */
	}
	__atomic_store_n(&c->stop, false, __ATOMIC_RELAXED);
	c->run_expired = false;
	if (timeout_ms >= 0) {
		lws_sul_schedule(c->ctx, 0, &c->run_sul, lsc__run_cb,
		                 (lws_usec_t)timeout_ms * 1000);
	}
	for (;;) {
		if (done != NULL && done(c, user)) {
			rc = 0;
			break;
		}
		if (__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
			rc = 1;
			break;
		}
		if (c->run_expired) {
			rc = LS_ETIMEOUT;
			break;
		}
		if (lws_service(c->ctx, 0) < 0) {
			rc = -EIO;
			break;
		}
	}
	lws_sul_cancel(&c->run_sul);
	return rc;
}

lsc_client *
lsc_client_new_ev(const lsc_options *opt, struct ev_loop *loop, lsc_error *err)
{
	ls_error e;
	lsc_client *c;

	ls_error_clear(&e);
	if (loop == NULL) {
		ls_error_set(&e, -EINVAL, "no event loop");
		lsc__error_export(err, &e);
		return NULL;
	}
	c = lsc__client_new(opt, loop, &e);
	if (c == NULL) {
		lsc__error_export(err, &e);
	}
	return c;
}

int
lsc_client_run(lsc_client *c, int timeout_ms)
{
	int rc = lsc_client_run_until(c, NULL, NULL, timeout_ms);

	return rc == LS_ETIMEOUT ? 0 : rc;
}

void
lsc_client_stop(lsc_client *c)
{
	__atomic_store_n(&c->stop, true, __ATOMIC_RELAXED);
	lws_cancel_service(c->ctx);
}

void
lsc_client_close(lsc_client *c)
{
	c->user_closed = true;
	if (c->retry_pending) {
		lws_sul_cancel(&c->retry_sul);
		c->retry_pending = false;
	}
	if (c->wsi != NULL) {
		lsc__close_local(c, LS_CLOSE_NORMAL, "bye");
	}
}

bool
lsc_client_is_ready(const lsc_client *c)
{
	return c->state == LSC__READY;
}

static int64_t lsc__subscribe_since(lsc_client *c, const char *owner,
                                    const char *stream, const char *query,
                                    const char *epoch, uint64_t offset,
                                    ls_error *err);

int64_t
lsc_client_subscribe_since(lsc_client *c, const char *owner,
                           const char *stream, const char *query,
                           const char *epoch, uint64_t offset, lsc_error *err)
{
	ls_error e;
	int64_t rc;

	ls_error_clear(&e);
	rc = lsc__subscribe_since(c, owner, stream, query, epoch, offset, &e);
	if (rc < 0) {
		e.code = (int)rc;
		lsc__error_export(err, &e);
	}
	return rc;
}

int64_t
lsc_client_subscribe(lsc_client *c, const char *owner, const char *stream,
                     const char *query, lsc_error *err)
{
	return lsc_client_subscribe_since(c, owner, stream, query, NULL, 0,
	                                  err);
}

int
lsc_client_sub_history(const lsc_client *c, int64_t id, lsc_sub_history *out)
{
	lsc__sub *s = lsc__sub_find((lsc_client *)c, id);

	memset(out, 0, sizeof(*out));
	if (s == NULL) {
		return -ENOENT;
	}
	out->known = s->have_pos;
	snprintf(out->epoch, sizeof(out->epoch), "%s", s->epoch);
	out->offset = s->offset;
	out->recovered = s->recovered;
	return 0;
}

static int64_t
lsc__subscribe_since(lsc_client *c, const char *owner, const char *stream,
                     const char *query, const char *epoch, uint64_t offset,
                     ls_error *err)
{
	json_t *q = NULL;
	lsc__sub *s;

	if (!ls_valid_app_key(owner)) {
		return ls_error_set(err, -EINVAL, "invalid owner '%s'",
		                    owner ? owner : "");
	}
	if (!ls_valid_stream(stream)) {
		return ls_error_set(err, -EINVAL, "invalid stream name '%s'",
		                    stream ? stream : "");
	}
	if (epoch != NULL && !ls_valid_epoch(epoch)) {
		return ls_error_set(
		        err, -EINVAL,
		        "invalid epoch (expected [A-Za-z0-9_-]{1,%d})",
		        LS_EPOCH_MAX);
	}
	if (query != NULL) {
		json_error_t jerr;

		q = json_loads(query, 0, &jerr);
		if (q == NULL) {
			return ls_error_set(err, -EINVAL,
			                    "query is not valid JSON: %s "
			                    "(line %d, column %d)",
			                    jerr.text, jerr.line, jerr.column);
		}
		if (!json_is_object(q)) {
			json_decref(q);
			return ls_error_set(err, -EINVAL,
			                    "query must be a JSON object");
		}
	}
	if (c->state == LSC__READY &&
	    !lsc__permitted(c->perms, owner, stream, LS_PERM_READ)) {
		json_decref(q);
		return ls_error_set(err, LS_EFORBIDDEN,
		                    "the token's roles do not grant reading "
		                    "%s/%s",
		                    owner, stream);
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		json_decref(q);
		return ls_error_set(err, -ENOMEM, "out of memory");
	}
	s->id = ++c->next_sub;
	snprintf(s->owner, sizeof(s->owner), "%s", owner);
	snprintf(s->stream, sizeof(s->stream), "%s", stream);
	s->query = q;
	s->state = LSC__SUB_IDLE;
	s->recovered = -1;
	if (epoch != NULL) {
		s->have_pos = true;
		snprintf(s->epoch, sizeof(s->epoch), "%s", epoch);
		s->offset = offset;
	}
	s->next = c->subs;
	c->subs = s;
	if (c->state == LSC__READY) {
		lsc__sub_send(c, s);
	}
	return s->id;
}

int
lsc_client_unsubscribe(lsc_client *c, int64_t id)
{
	lsc__sub *s = lsc__sub_find(c, id);

	if (s == NULL) {
		return -ENOENT;
	}
	lsc__sub_unlink(c, s);
	if (s->state == LSC__SUB_ACTIVE && c->state == LSC__READY) {
		lsc__send_ctl(c, lsc__unsubscribe_request(s->server_id));
	}
	/* A PENDING one: its SubscribeResponse finds no match and the
	 * server-side subscription lives until the connection ends — rare
	 * and harmless, deliveries are dropped here. */
	lsc__sub_free(s);
	return 0;
}

int
lsc_client_publish(lsc_client *c, const char *owner, const char *stream,
                   const char *data, size_t len, lsc_ack_fn ack,
                   void *ack_user, char *request_id)
{
	char rid[LSC_REQUEST_ID_MAX] = "";
	json_t *value;
	lsc__frame *f;
	int rc;

	if (!ls_valid_app_key(owner) || !ls_valid_stream(stream) ||
	    data == NULL) {
		return -EINVAL;
	}
	if (len > c->max_queue) {
		return LSC_ETOOLARGE;
	}
	value = json_loadb(data, len, JSON_DECODE_ANY, NULL);
	if (value == NULL) {
		return -EINVAL;
	}
	if (ack != NULL) {
		lsc__next_id(c, 'p', rid);
	}
	f = lsc__frame_new(
	        lsc__publish(owner, stream, value, ack != NULL ? rid : NULL));
	json_decref(value);
	if (f == NULL) {
		return -ENOMEM;
	}
	if (f->len > c->max_queue) {
		free(f);
		return LSC_ETOOLARGE;
	}
	snprintf(f->owner, sizeof(f->owner), "%s", owner);
	snprintf(f->stream, sizeof(f->stream), "%s", stream);
	memcpy(f->request_id, rid, sizeof(rid));
	f->ack = ack;
	f->ack_user = ack_user;
	rc = lsc__publish_push(c, f);
	if (rc != 0) {
		free(f);
		return rc;
	}
	if (request_id != NULL) {
		memcpy(request_id, rid, sizeof(rid));
	}
	return 0;
}

int
lsc_client_refresh(lsc_client *c, const char *token, lsc_ack_fn ack,
                   void *ack_user)
{
	char *copy;
	int rc;

	if (token == NULL || *token == '\0' || strlen(token) > 1024) {
		return -EINVAL;
	}
	if (c->state != LSC__READY) {
		return -ENOTCONN;
	}
	if (c->refresh_token != NULL) {
		return -EBUSY;
	}
	copy = strdup(token);
	if (copy == NULL) {
		return -ENOMEM;
	}
	rc = lsc__send_ctl(c, lsc__refresh_request(token));
	if (rc != 0) {
		free(copy);
		return rc;
	}
	c->refresh_token = copy;
	c->refresh_ack = ack;
	c->refresh_user = ack_user;
	return 0;
}

size_t
lsc_client_queued_bytes(const lsc_client *c)
{
	lsc_client *mc = (lsc_client *)c; /* the lock, not the state */
	size_t n;

	pthread_mutex_lock(&mc->mu);
	n = c->queued;
	pthread_mutex_unlock(&mc->mu);
	return n;
}

size_t
lsc_client_pending_acks(const lsc_client *c)
{
	return c->n_acks;
}

_Static_assert(LSC_LOG_DEBUG == LS_LOG_DEBUG && LSC_LOG_INFO == LS_LOG_INFO &&
                       LSC_LOG_WARN == LS_LOG_WARN &&
                       LSC_LOG_ERROR == LS_LOG_ERROR &&
                       LSC_LOG_OFF == LS_LOG_OFF,
               "lsc log levels");

static lsc_log_fn lsc__log_fn;
static void *lsc__log_user;

static void
lsc__log_sink(ls_log_level level, const char *component, const char *message,
              void *user)
{
	lsc__log_fn((int)level, component, message, lsc__log_user);
}

void
lsc_log_set(int level, lsc_log_fn fn, void *user)
{
	if (level < LSC_LOG_DEBUG) {
		level = LSC_LOG_DEBUG;
	}
	if (level > LSC_LOG_OFF) {
		level = LSC_LOG_OFF;
	}
	ls_log_set_sink(NULL, NULL);
	lsc__log_fn = fn;
	lsc__log_user = user;
	if (fn != NULL) {
		ls_log_set_sink(lsc__log_sink, NULL);
	}
	ls_log_set_level((ls_log_level)level);
}

const char *
lsc_strerror(int code)
{
	return ls_strerror(code);
}
_Static_assert(LSC_EPOCH_MAX == LS_EPOCH_MAX, "lsc.h follows ls_proto.h");
