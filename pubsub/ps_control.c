/*
 * Announcements on the control channel: their JSON form, and a blocking
 * Redis publisher for the app server (ps_control.h).
 */
#include "ps_control.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "ls_crypto.h"
#include "ls_log.h"
#include "ps_internal.h"

#define PS_CONTROL_VERSION 1

static const char *const ps__kinds[] = {
	[PS_CONTROL_REVOKED] = "revoked",
	[PS_CONTROL_DELETED] = "deleted",
	[PS_CONTROL_CHANGED] = "changed",
	[PS_CONTROL_RESET] = "reset",
};

void
ps_control_token_id(const char *token, size_t len,
                    char out[PS_CONTROL_TOKEN_ID_LEN + 1])
{
	char hash[LS_SHA256_HEX_LEN + 1];

	ls_sha256_hex(token, len, hash);
	ps_control_token_id_of_hash(hash, out);
}

void
ps_control_token_id_of_hash(const char *hash_hex,
                            char out[PS_CONTROL_TOKEN_ID_LEN + 1])
{
	memcpy(out, hash_hex, PS_CONTROL_TOKEN_ID_LEN);
	out[PS_CONTROL_TOKEN_ID_LEN] = '\0';
}

char *
ps_control_encode(const ps_control *m, size_t *len)
{
	json_t *o;
	char *text;

	if (m->kind < PS_CONTROL_REVOKED || m->kind > PS_CONTROL_RESET) {
		return NULL;
	}
	o = json_pack("{s:i,s:s}", "v", PS_CONTROL_VERSION, "kind",
	              ps__kinds[m->kind]);
	if (o != NULL && m->app_key[0] != '\0') {
		json_object_set_new(o, "appKey", json_string(m->app_key));
	}
	if (o != NULL && m->kind == PS_CONTROL_REVOKED) {
		json_object_set_new(o, "tokenId", json_string(m->token_id));
	}
	text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (text != NULL && len != NULL) {
		*len = strlen(text);
	}
	return text;
}

static bool
ps__hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f'))) {
			return false;
		}
	}
	return s[n] == '\0';
}

int
ps_control_decode(const char *payload, size_t len, ps_control *out)
{
	json_t *o = json_loadb(payload, len, 0, NULL);
	const char *kind, *app_key, *token_id;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(o) || json_integer_value(json_object_get(
	                                  o, "v")) != PS_CONTROL_VERSION) {
		goto out;
	}
	kind = json_string_value(json_object_get(o, "kind"));
	app_key = json_string_value(json_object_get(o, "appKey"));
	token_id = json_string_value(json_object_get(o, "tokenId"));
	for (int k = PS_CONTROL_REVOKED; kind != NULL && k <= PS_CONTROL_RESET;
	     k++) {
		if (strcmp(kind, ps__kinds[k]) == 0) {
			out->kind = (ps_control_kind)k;
		}
	}
	if (out->kind == 0) {
		goto out;
	}
	if (app_key != NULL) {
		if (strlen(app_key) == 0 ||
		    strlen(app_key) >= sizeof(out->app_key)) {
			goto out;
		}
		memcpy(out->app_key, app_key, strlen(app_key) + 1);
	}
	switch (out->kind) {
	case PS_CONTROL_REVOKED:
		if (app_key == NULL || token_id == NULL ||
		    strlen(token_id) != PS_CONTROL_TOKEN_ID_LEN ||
		    !ps__hex(token_id, PS_CONTROL_TOKEN_ID_LEN)) {
			goto out;
		}
		memcpy(out->token_id, token_id, PS_CONTROL_TOKEN_ID_LEN + 1);
		break;
	case PS_CONTROL_DELETED:
		if (app_key == NULL) {
			goto out;
		}
		break;
	default:
		break;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

/* ---- blocking publisher ------------------------------------------------ */

struct ps_control_publisher {
	pthread_mutex_t lock;
	redisContext *c; /* NULL: connect on the next send */
	char host[64];
	int port;
	int timeout_ms;
};

ps_control_publisher *
ps_control_publisher_new(const char *url, int timeout_ms, ls_error *err)
{
	ps_control_publisher *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	if (ps__redis_url(url, p->host, sizeof(p->host), &p->port, err) != 0) {
		free(p);
		return NULL;
	}
	p->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

static int
ps__publisher_connect(ps_control_publisher *p)
{
	struct timeval tv = { p->timeout_ms / 1000,
		              (p->timeout_ms % 1000) * 1000 };

	p->c = redisConnectWithTimeout(p->host, p->port, tv);
	if (p->c == NULL || p->c->err) {
		ls_warn("pubsub", "control publisher: redis %s:%d: %s",
		        p->host, p->port, p->c ? p->c->errstr : "no memory");
		redisFree(p->c);
		p->c = NULL;
		return LS_EUNAVAILABLE;
	}
	redisSetTimeout(p->c, tv);
	return 0;
}

int
ps_control_publisher_send(ps_control_publisher *p, const ps_control *m)
{
	size_t len = 0;
	char *text = ps_control_encode(m, &len);
	int rc = LS_EUNAVAILABLE;

	if (text == NULL) {
		return -ENOMEM;
	}
	pthread_mutex_lock(&p->lock);
	/* One retry: a connection idle for long may have been dropped. */
	for (int attempt = 0; attempt < 2 && rc != 0; attempt++) {
		redisReply *rep;
		if (p->c == NULL && ps__publisher_connect(p) != 0) {
			break;
		}
		rep = redisCommand(p->c, "PUBLISH %s %b", PS_CONTROL_CHANNEL,
		                   text, len);
		if (rep != NULL && rep->type == REDIS_REPLY_INTEGER) {
			rc = 0;
		} else {
			ls_warn("pubsub", "control publisher: %s",
			        rep != NULL ? "PUBLISH refused"
			                    : p->c->errstr);
			redisFree(p->c);
			p->c = NULL;
		}
		freeReplyObject(rep);
	}
	pthread_mutex_unlock(&p->lock);
	free(text);
	return rc;
}

void
ps_control_publisher_destroy(ps_control_publisher **pp)
{
	if (pp == NULL || *pp == NULL) {
		return;
	}
	redisFree((*pp)->c);
	pthread_mutex_destroy(&(*pp)->lock);
	free(*pp);
	*pp = NULL;
}
