/*
 * The library's API against a real gateway: tokens over HTTP, subscribe /
 * publish with acks, unsubscribe, refresh, a user signing callback for web
 * tokens, the bounded queue and local permission checks.
 * Run by live_test.py, which starts `lightstream serve` and sets
 * LSC_LIVE_HTTP (http://HOST:PORT), LSC_LIVE_WS (ws://HOST:PORT),
 * LSC_LIVE_WSS (wss://HOST:TLSPORT), LSC_LIVE_CA (the server's
 * development certificate), and for `lightstream admin` LSC_LIVE_BIN (the
 * executable), LSC_LIVE_DATA (serve's data directory: `admin --data`
 * reaches its bus) and LSC_LIVE_FIXTURE.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ls_crypto.h"
#include "ls_test.h"
#include "ls_time.h"
#include "lsc.h"

#define WAIT_MS 10000

typedef struct rec {
	int connects;
	int64_t subscribed[8]; /* handles in order of activation */
	int n_subscribed;
	char refused_code[32];
	int64_t msg_sub[64];
	uint64_t msg_offset[64];
	char *msg_text[64];
	int n_msgs;
	int acks_ok, acks_failed;
	char ack_code[32];
	int closes;
	int last_close;
	bool last_reconnecting;
	int signs;
	char error_code[32];
	char sign_conn[128];
	int64_t ended_sub;
	char ended_code[32];
	int n_ended;
	int n_perms;
	size_t last_nperms;
	int tokens_given;
	char fresh_token[64];
} rec;

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL ? v : "";
}

static void
rec_free(rec *r)
{
	for (int i = 0; i < r->n_msgs; i++) {
		free(r->msg_text[i]);
	}
}

static void
on_connect(lsc_client *c, const char *id, const char *exp, bool again,
           void *user)
{
	((rec *)user)->connects++;
}

static void
on_subscribe(lsc_client *c, int64_t sub, const char *sid, const char *code,
             const char *msg, void *user)
{
	rec *r = user;

	if (sid != NULL && r->n_subscribed < 8) {
		r->subscribed[r->n_subscribed++] = sub;
	} else if (sid == NULL) {
		snprintf(r->refused_code, sizeof(r->refused_code), "%s", code);
	}
}

static void
on_message(lsc_client *c, const lsc_message *m, void *user)
{
	rec *r = user;

	if (r->n_msgs < 64) {
		r->msg_sub[r->n_msgs] = m->sub;
		r->msg_offset[r->n_msgs] = m->offset;
		r->msg_text[r->n_msgs++] = strndup(m->data, m->data_len);
	}
}

static void
on_close(lsc_client *c, int code, const char *reason, bool again, void *user)
{
	rec *r = user;

	r->closes++;
	r->last_close = code;
	r->last_reconnecting = again;
}

static void
on_error(lsc_client *c, const char *code, const char *message, void *user)
{
	rec *r = user;

	snprintf(r->error_code, sizeof(r->error_code), "%s", code);
}

static void
on_ack(lsc_client *c, const char *rid, bool ok, const char *code,
       const char *msg, void *user)
{
	rec *r = user;

	if (ok) {
		r->acks_ok++;
	} else {
		r->acks_failed++;
		snprintf(r->ack_code, sizeof(r->ack_code), "%s", code);
	}
}

static int
sign_cb(const char *app, const char *token, const char *conn, char sig[65],
        void *user)
{
	rec *r = user;
	char *data;
	int n = asprintf(&data, "%s:%s:%s", app, token, conn);

	if (n < 0) {
		return -ENOMEM;
	}
	/* In a real program this would ask a backend holding the secret. */
	ls_hmac_sha256_hex("acc1_secret", 11, data, (size_t)n, sig);
	free(data);
	r->signs++;
	snprintf(r->sign_conn, sizeof(r->sign_conn), "%s", conn);
	return 0;
}

static bool
is_ready(lsc_client *c, void *user)
{
	return lsc_client_is_ready(c);
}

static bool
subscribed_1(lsc_client *c, void *user)
{
	return ((rec *)user)->n_subscribed >= 1;
}

static bool
subscribed_2(lsc_client *c, void *user)
{
	return ((rec *)user)->n_subscribed >= 2;
}

static bool
one_msg_one_ack(lsc_client *c, void *user)
{
	rec *r = user;

	return r->n_msgs >= 1 && r->acks_ok + r->acks_failed >= 1;
}

static bool
nothing_pending(lsc_client *c, void *user)
{
	return lsc_client_pending_acks(c) == 0 &&
	       lsc_client_queued_bytes(c) == 0;
}

static bool
closed(lsc_client *c, void *user)
{
	return ((rec *)user)->closes > 0;
}

/* A token from the HTTP endpoint (new string) or NULL. */
/* lsc_client_publish of a jansson value's text. */
static int
publish_json(lsc_client *c, const char *owner, const char *stream,
             const json_t *value, lsc_ack_fn ack, void *ack_user,
             char *request_id)
{
	char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
	int rc;

	if (text == NULL) {
		return -ENOMEM;
	}
	rc = lsc_client_publish(c, owner, stream, text, strlen(text), ack,
	                        ack_user, request_id);
	free(text);
	return rc;
}

static char *
get_token(const char *app, const char *key, const char *roles, bool web)
{
	lsc_token_request req = { 0 };
	json_t *data = NULL;
	char *text = NULL;
	lsc_error err;
	char *v = NULL;

	req.url = env("LSC_LIVE_HTTP");
	req.app_key = app;
	req.private_key = key;
	req.roles = roles;
	req.web_token = web;
	if (lsc_token_request_run(&req, &text, &err) == 0) {
		data = json_loads(text, 0, NULL);
		free(text);
		v = strdup(json_string_value(json_object_get(data, "value")));
	} else {
		printf("# token request failed: %s\n", err.text);
	}
	json_decref(data);
	return v;
}

static lsc_client *
client(const char *app, const char *token, rec *r, size_t max_queue)
{
	lsc_options o = { 0 };
	lsc_error err;
	lsc_client *c;

	o.url = env("LSC_LIVE_WS");
	o.app_key = app;
	o.token = token;
	o.max_queue_bytes = max_queue;
	o.cb.on_connect = on_connect;
	o.cb.on_subscribe = on_subscribe;
	o.cb.on_message = on_message;
	o.cb.on_close = on_close;
	o.user = r;
	c = lsc_client_new(&o, &err);
	if (c == NULL) {
		printf("# lsc_client_new: %s\n", err.text);
	}
	return c;
}

LS_TEST(token_request)
{
	lsc_token_request req = { 0 };
	char *data = NULL;
	lsc_error err;
	char *tok = get_token("svc1", "svc1_private", "publisher", false);

	LS_CHECK(tok != NULL && strlen(tok) == 43);
	free(tok);
	req.url = env("LSC_LIVE_HTTP");
	req.app_key = "svc1";
	req.private_key = "not the key";
	req.roles = "publisher";
	LS_CHECK_INT(lsc_token_request_run(&req, &data, &err), LSC_EAUTH);
	LS_CHECK(data == NULL);
	LS_CHECK(strstr(err.text, "401") != NULL);
}

LS_TEST(publish_ack_subscribe_unsubscribe)
{
	char *tok = get_token("svc1", "svc1_private", "publisher", false);
	json_t *msg =
	        json_pack("{s:s,s:i}", "city", "Lisboa", "temperature", 12);
	rec r = { 0 };
	lsc_client *c = client("svc1", tok, &r, 0);
	int64_t a, b;
	char rid[LSC_REQUEST_ID_MAX] = "";

	LS_CHECK(c != NULL);
	a = lsc_client_subscribe(c, "svc1", "weather", NULL, NULL);
	b = lsc_client_subscribe(c, "svc1", "weather",
	                         "{\"where\":{\"field\":\"city\",\"op\":"
	                         "\"equals\",\"value\":\"Lisboa\"}}",
	                         NULL);
	LS_CHECK(a > 0 && b > 0 && a != b);
	LS_CHECK_INT(lsc_client_connect(c), 0);
	LS_CHECK_INT(lsc_client_connect(c), -EALREADY);
	LS_CHECK_INT(lsc_client_run_until(c, subscribed_2, &r, WAIT_MS), 0);
	LS_CHECK_INT(r.connects, 1);

	/* Only subscription b stays; the server sees the unsubscribe
	 * before the publish (one connection, in order). */
	LS_CHECK_INT(lsc_client_unsubscribe(c, a), 0);
	LS_CHECK_INT(lsc_client_unsubscribe(c, a), -ENOENT);
	LS_CHECK_INT(publish_json(c, "svc1", "weather", msg, on_ack, &r, rid),
	             0);
	LS_CHECK(rid[0] != '\0');
	LS_CHECK_INT(lsc_client_run_until(c, one_msg_one_ack, &r, WAIT_MS), 0);
	LS_CHECK_INT(r.acks_ok, 1);
	LS_CHECK_INT(r.n_msgs, 1);
	LS_CHECK_INT(r.msg_sub[0], b);
	LS_CHECK_STR(r.msg_text[0],
	             "{\"city\":\"Lisboa\",\"temperature\":12}");

	/* Not granted: refused locally, the connection stays. */
	LS_CHECK_INT(publish_json(c, "acc1", "s1", msg, NULL, NULL, NULL),
	             LSC_EFORBIDDEN);
	LS_CHECK(lsc_client_subscribe(c, "acc1", "s1", NULL, NULL) ==
	         LSC_EFORBIDDEN);
	LS_CHECK(lsc_client_subscribe(c, "svc1", "weather", "[1", NULL) ==
	         -EINVAL);
	LS_CHECK(lsc_client_is_ready(c));

	lsc_client_close(c);
	LS_CHECK_INT(lsc_client_run_until(c, closed, &r, WAIT_MS), 0);
	LS_CHECK_INT(r.last_close, 1000);
	LS_CHECK(!lsc_client_is_ready(c));
	lsc_client_destroy(&c);
	LS_CHECK(c == NULL);
	json_decref(msg);
	rec_free(&r);
	free(tok);
}

LS_TEST(invalid_query_refused)
{
	char *tok = get_token("svc1", "svc1_private", "public", false);
	rec r = { 0 };
	lsc_client *c = client("svc1", tok, &r, 0);

	LS_CHECK(lsc_client_subscribe(c, "svc1", "weather",
	                              "{\"where\":{\"op\":\"nope\"}}",
	                              NULL) > 0);
	lsc_client_connect(c);
	LS_CHECK_INT(lsc_client_run_until(c, is_ready, &r, WAIT_MS), 0);
	/* run until the refusal arrives */
	for (int i = 0; i < 100 && r.refused_code[0] == '\0'; i++) {
		lsc_client_run(c, 100);
	}
	LS_CHECK_STR(r.refused_code, "invalid_query");
	LS_CHECK(lsc_client_is_ready(c)); /* the connection stays */
	lsc_client_destroy(&c);
	free(tok);
}

LS_TEST(queue_bound_and_order)
{
	char *tok = get_token("acc1", "acc1_private", "publisher", false);
	rec pr = { 0 }, sr = { 0 };
	lsc_client *p = client("acc1", tok, &pr, 512);
	lsc_client *s = client("acc1", tok, &sr, 0);
	json_t *m;
	int queued = 0, rc = 0;

	LS_CHECK(lsc_client_subscribe(s, "acc1", "s1", NULL, NULL) > 0);
	lsc_client_connect(s);
	LS_CHECK_INT(lsc_client_run_until(s, subscribed_1, &sr, WAIT_MS), 0);

	/* Before connecting, publishes wait in the bounded queue. */
	while (queued < 64) {
		m = json_integer(queued);
		rc = publish_json(p, "acc1", "s1", m, on_ack, &pr, NULL);
		json_decref(m);
		if (rc != 0) {
			break;
		}
		queued++;
	}
	LS_CHECK_INT(rc, -ENOBUFS);
	LS_CHECK(queued > 1 && queued < 64);
	LS_CHECK(lsc_client_queued_bytes(p) <= 512);
	lsc_client_connect(p);
	LS_CHECK_INT(lsc_client_run_until(p, nothing_pending, NULL, WAIT_MS),
	             0);
	LS_CHECK_INT(pr.acks_ok, queued);
	for (int i = 0; i < 100 && sr.n_msgs < queued; i++) {
		lsc_client_run(s, 100);
	}
	LS_CHECK_INT(sr.n_msgs, queued);
	for (int i = 0; i < sr.n_msgs; i++) {
		char want[16];

		snprintf(want, sizeof(want), "%d", i);
		LS_CHECK_STR(sr.msg_text[i], want);
	}
	lsc_client_destroy(&p);
	lsc_client_destroy(&s);
	rec_free(&sr);
	free(tok);
}

LS_TEST(web_token_sign_callback_and_refresh)
{
	char *web = get_token("acc1", "acc1_private", "public", true);
	char *next = get_token("acc1", "acc1_private", "public", false);
	lsc_options o = { 0 };
	rec r = { 0 };
	lsc_client *c;

	o.url = env("LSC_LIVE_WS");
	o.app_key = "acc1";
	o.token = web;
	o.sign = sign_cb;
	o.sign_user = &r;
	o.cb.on_connect = on_connect;
	o.cb.on_close = on_close;
	o.user = &r;
	c = lsc_client_new(&o, NULL);
	LS_CHECK(c != NULL);
	LS_CHECK_INT(lsc_client_refresh(c, next, NULL, NULL), -ENOTCONN);
	lsc_client_connect(c);
	LS_CHECK_INT(lsc_client_run_until(c, is_ready, NULL, WAIT_MS), 0);
	LS_CHECK_INT(r.signs, 1);
	LS_CHECK(strlen(r.sign_conn) >= 22); /* >= 128 random bits */
	LS_CHECK_INT(r.connects, 1);

	LS_CHECK_INT(lsc_client_refresh(c, next, on_ack, &r), 0);
	LS_CHECK_INT(lsc_client_refresh(c, next, on_ack, &r), -EBUSY);
	for (int i = 0; i < 100 && r.acks_ok + r.acks_failed == 0; i++) {
		lsc_client_run(c, 100);
	}
	LS_CHECK_INT(r.acks_ok, 1);
	LS_CHECK(lsc_client_is_ready(c));

	/* Nothing to wait for: the deadline is reported. */
	LS_CHECK_INT(lsc_client_run_until(c, closed, &r, 50), LSC_ETIMEOUT);
	lsc_client_destroy(&c);
	free(web);
	free(next);
}

LS_TEST(incoming_limit)
{
	char *tok = get_token("acc1", "acc1_private", "publisher", false);
	char big[2001];
	lsc_options o = { 0 };
	rec r = { 0 };
	lsc_client *c;
	json_t *m;

	memset(big, 'x', 2000);
	big[2000] = '\0';
	o.url = env("LSC_LIVE_WS");
	o.app_key = "acc1";
	o.token = tok;
	o.max_frame_bytes = 1024;
	o.cb.on_subscribe = on_subscribe;
	o.cb.on_message = on_message;
	o.cb.on_error = on_error;
	o.cb.on_close = on_close;
	o.user = &r;
	c = lsc_client_new(&o, NULL);
	LS_CHECK(lsc_client_subscribe(c, "acc1", "s1", NULL, NULL) > 0);
	lsc_client_connect(c);
	LS_CHECK_INT(lsc_client_run_until(c, subscribed_1, &r, WAIT_MS), 0);
	/* Our own message comes back larger than we accept. */
	m = json_string(big);
	LS_CHECK_INT(publish_json(c, "acc1", "s1", m, NULL, NULL, NULL), 0);
	json_decref(m);
	LS_CHECK_INT(lsc_client_run_until(c, closed, &r, WAIT_MS), 0);
	LS_CHECK_STR(r.error_code, "too_large");
	LS_CHECK_INT(r.last_close, 1009);
	LS_CHECK_INT(r.n_msgs, 0);
	lsc_client_destroy(&c);
	free(tok);
}

static bool
both_ready(lsc_client *c, void *other)
{
	return lsc_client_is_ready(c) && lsc_client_is_ready(other);
}

LS_TEST(two_tls_clients_in_one_process)
{
	/* Each client owns its SSL_CTX; under LeakSanitizer this also
	 * proves nothing of the first context is left behind. */
	char *tok = get_token("acc1", "acc1_private", "public", false);
	lsc_options o = { 0 };
	lsc_error err;
	lsc_client *a, *b, *bad;
	rec r = { 0 };

	o.url = env("LSC_LIVE_WSS");
	o.app_key = "acc1";
	o.token = tok;
	o.ca_file = env("LSC_LIVE_CA");
	a = lsc_client_new(&o, &err);
	b = lsc_client_new(&o, &err);
	LS_CHECK(a != NULL && b != NULL);
	lsc_client_connect(a);
	lsc_client_connect(b);
	for (int i = 0; i < 100 && !both_ready(a, b); i++) {
		lsc_client_run(a, 50);
		lsc_client_run(b, 50);
	}
	LS_CHECK(both_ready(a, b));
	lsc_client_destroy(&a);
	lsc_client_destroy(&b);

	/* Without the CA the certificate does not verify. */
	o.ca_file = NULL;
	o.cb.on_close = on_close;
	o.user = &r;
	bad = lsc_client_new(&o, &err);
	lsc_client_connect(bad);
	LS_CHECK_INT(lsc_client_run_until(bad, closed, &r, WAIT_MS), 0);
	LS_CHECK_INT(r.last_close, 1006);
	LS_CHECK(!lsc_client_is_ready(bad));
	lsc_client_destroy(&bad);

	o.ca_file = "/nonexistent/ca.pem";
	LS_CHECK(lsc_client_new(&o, &err) == NULL);
	LS_CHECK(strstr(err.text, "/nonexistent/ca.pem") != NULL);
	free(tok);
}

LS_TEST(auth_failure_is_final)
{
	rec r = { 0 };
	lsc_options o = { 0 };
	lsc_client *c;

	o.url = env("LSC_LIVE_WS");
	o.app_key = "acc1";
	o.token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	o.reconnect = true; /* but a 4001 is not retried */
	o.cb.on_close = on_close;
	o.user = &r;
	c = lsc_client_new(&o, NULL);
	lsc_client_connect(c);
	LS_CHECK_INT(lsc_client_run_until(c, closed, &r, WAIT_MS), 0);
	LS_CHECK_INT(r.last_close, 4001);
	LS_CHECK(!r.last_reconnecting);
	LS_CHECK(!lsc_client_is_ready(c));
	lsc_client_destroy(&c);
}

/* ---- live authorization (docs/protocol.md) ---- */

/* `lightstream admin ARGS` against the server's bus; its exit status. */
static int
admin(const char *args)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "%s admin --data '%s' %s >/dev/null",
	         env("LSC_LIVE_BIN"), env("LSC_LIVE_DATA"), args);
	return system(cmd);
}

static int
admin_revoke(const char *app, const char *key, const char *token)
{
	char args[256];

	snprintf(args, sizeof(args), "token revoke %s --private-key %s -- %s",
	         app, key, token);
	return admin(args);
}

static int
admin_reset(void)
{
	char args[512];

	snprintf(args, sizeof(args), "import %s", env("LSC_LIVE_FIXTURE"));
	return admin(args);
}

static void
on_sub_ended(lsc_client *c, int64_t sub, const char *code, const char *msg,
             void *user)
{
	rec *r = user;

	r->n_ended++;
	r->ended_sub = sub;
	snprintf(r->ended_code, sizeof(r->ended_code), "%s", code);
}

static void
on_permissions(lsc_client *c, const char *perms, void *user)
{
	rec *r = user;
	json_t *a = json_loads(perms, 0, NULL);

	r->n_perms++;
	r->last_nperms = json_array_size(a);
	json_decref(a);
}

static bool
ended_and_perms(lsc_client *c, void *user)
{
	rec *r = user;

	return r->n_ended >= 1 && r->n_perms >= 1;
}

static bool
one_msg(lsc_client *c, void *user)
{
	return ((rec *)user)->n_msgs >= 1;
}

static lsc_client *
live_client(const char *token, rec *r, lsc_token_fn get)
{
	lsc_options o = { 0 };

	o.url = env("LSC_LIVE_WS");
	o.app_key = "acc1";
	o.token = token;
	o.reconnect = true;
	o.backoff_initial_ms = 50;
	o.get_token = get;
	o.token_user = r;
	o.cb.on_connect = on_connect;
	o.cb.on_subscribe = on_subscribe;
	o.cb.on_message = on_message;
	o.cb.on_close = on_close;
	o.cb.on_error = on_error;
	o.cb.on_subscription_ended = on_sub_ended;
	o.cb.on_permissions = on_permissions;
	o.user = r;
	return lsc_client_new(&o, NULL);
}

LS_TEST(withdrawn_read_ends_the_subscription_connection_stays)
{
	char *tok;
	rec r = { 0 };
	lsc_client *c;
	int64_t weather, s2;
	json_t *msg = json_string("still here");

	LS_CHECK_INT(admin_reset(), 0);
	tok = get_token("acc1", "acc1_private", "public,weather-reader",
	                false);
	c = live_client(tok, &r, NULL);
	weather = lsc_client_subscribe(c, "svc1", "weather", NULL, NULL);
	s2 = lsc_client_subscribe(c, "acc1", "s2", NULL, NULL);
	lsc_client_connect(c);
	LS_CHECK_INT(lsc_client_run_until(c, subscribed_2, &r, WAIT_MS), 0);

	LS_CHECK_INT(admin("role delete acc1 weather-reader"), 0);
	LS_CHECK_INT(lsc_client_run_until(c, ended_and_perms, &r, WAIT_MS), 0);
	LS_CHECK_INT(r.ended_sub, weather);
	LS_CHECK_STR(r.ended_code, "forbidden");
	LS_CHECK_INT(r.last_nperms, 2); /* acc1:s1 read, acc1:s2 both */
	LS_CHECK(lsc_client_is_ready(c));
	LS_CHECK_INT(lsc_client_unsubscribe(c, weather), -ENOENT);
	/* The local checks follow the new permissions. */
	LS_CHECK(lsc_client_subscribe(c, "svc1", "weather", NULL, NULL) ==
	         LSC_EFORBIDDEN);
	/* The other subscription keeps receiving. */
	LS_CHECK_INT(publish_json(c, "acc1", "s2", msg, NULL, NULL, NULL), 0);
	LS_CHECK_INT(lsc_client_run_until(c, one_msg, &r, WAIT_MS), 0);
	LS_CHECK_INT(r.msg_sub[0], s2);
	LS_CHECK_STR(r.msg_text[0], "\"still here\"");
	LS_CHECK_INT(r.closes, 0);
	lsc_client_destroy(&c);
	json_decref(msg);
	rec_free(&r);
	free(tok);
	LS_CHECK_INT(admin_reset(), 0);
}

LS_TEST(revoked_token_without_get_token_stops)
{
	char *tok = get_token("acc1", "acc1_private", "public", false);
	rec r = { 0 };
	lsc_client *c = live_client(tok, &r, NULL);

	lsc_client_connect(c);
	LS_CHECK_INT(lsc_client_run_until(c, is_ready, &r, WAIT_MS), 0);
	LS_CHECK_INT(admin_revoke("acc1", "acc1_private", tok), 0);
	LS_CHECK_INT(lsc_client_run_until(c, closed, &r, WAIT_MS), 0);
	LS_CHECK_STR(r.error_code, "token_revoked");
	LS_CHECK_INT(r.last_close, 4011);
	LS_CHECK(!r.last_reconnecting);
	LS_CHECK(!lsc_client_is_ready(c));
	lsc_client_destroy(&c);
	free(tok);
}

static const char *
fresh_token(lsc_client *c, void *user)
{
	rec *r = user;
	char *t = get_token("acc1", "acc1_private", "public", false);

	if (t == NULL) {
		return NULL;
	}
	snprintf(r->fresh_token, sizeof(r->fresh_token), "%s", t);
	free(t);
	r->tokens_given++;
	return r->fresh_token;
}

static bool
reconnected_and_subscribed(lsc_client *c, void *user)
{
	rec *r = user;

	return r->connects >= 2 && r->n_subscribed >= 2;
}

LS_TEST(revoked_token_with_get_token_comes_back)
{
	char *tok = get_token("acc1", "acc1_private", "public", false);
	rec r = { 0 };
	lsc_client *c = live_client(tok, &r, fresh_token);
	json_t *msg = json_integer(7);
	int64_t s1;

	s1 = lsc_client_subscribe(c, "acc1", "s2", NULL, NULL);
	lsc_client_connect(c);
	LS_CHECK_INT(lsc_client_run_until(c, subscribed_1, &r, WAIT_MS), 0);
	LS_CHECK_INT(admin_revoke("acc1", "acc1_private", tok), 0);
	LS_CHECK_INT(lsc_client_run_until(c, reconnected_and_subscribed, &r,
	                                  WAIT_MS),
	             0);
	LS_CHECK_INT(r.tokens_given, 1);
	LS_CHECK_INT(r.last_close, 4011);
	LS_CHECK(r.last_reconnecting);
	LS_CHECK_INT(r.subscribed[1], s1);
	LS_CHECK_INT(publish_json(c, "acc1", "s2", msg, NULL, NULL, NULL), 0);
	LS_CHECK_INT(lsc_client_run_until(c, one_msg, &r, WAIT_MS), 0);
	LS_CHECK_STR(r.msg_text[0], "7");
	lsc_client_destroy(&c);
	json_decref(msg);
	rec_free(&r);
	free(tok);
}

static bool
two_msgs_two_acks(lsc_client *c, void *user)
{
	rec *r = user;

	return r->n_msgs >= 2 && r->acks_ok + r->acks_failed >= 2;
}

static bool
two_msgs(lsc_client *c, void *user)
{
	return ((rec *)user)->n_msgs >= 2;
}

/*
 * History (docs/c-client.md, "Recovery"): a subscription knows its epoch
 * and offset; another client resuming from that position gets exactly the
 * messages published after it, and is told recovered; a wrong epoch is
 * told it was not.
 */
LS_TEST(subscribe_since_recovers_the_missed_messages)
{
	char *tok = get_token("svc1", "svc1_private", "publisher", false);
	json_t *m1 = json_pack("{s:i}", "n", 1),
	       *m2 = json_pack("{s:i}", "n", 2);
	rec ra = { 0 }, rb = { 0 }, rc = { 0 };
	lsc_client *a = client("svc1", tok, &ra, 0);
	lsc_client *b = NULL, *c = NULL;
	lsc_sub_history h, hb;
	int64_t sa, sb, sc;

	sa = lsc_client_subscribe(a, "svc1", "weather", NULL, NULL);
	LS_CHECK_INT(lsc_client_connect(a), 0);
	LS_CHECK_INT(lsc_client_run_until(a, subscribed_1, &ra, WAIT_MS), 0);
	LS_CHECK_INT(lsc_client_sub_history(a, sa, &h), 0);
	LS_CHECK(h.known);
	LS_CHECK(strlen(h.epoch) > 0);
	LS_CHECK_INT(h.recovered, -1); /* no since the first time */
	LS_CHECK_INT(publish_json(a, "svc1", "weather", m1, on_ack, &ra, NULL),
	             0);
	LS_CHECK_INT(publish_json(a, "svc1", "weather", m2, on_ack, &ra, NULL),
	             0);
	LS_CHECK_INT(lsc_client_run_until(a, two_msgs_two_acks, &ra, WAIT_MS),
	             0);
	LS_CHECK(ra.msg_offset[0] == h.offset + 1);
	LS_CHECK(ra.msg_offset[1] == h.offset + 2);

	/* Resume from where a started: both messages, recovered. */
	b = client("svc1", tok, &rb, 0);
	sb = lsc_client_subscribe_since(b, "svc1", "weather", NULL, h.epoch,
	                                h.offset, NULL);
	LS_CHECK(sb > 0);
	LS_CHECK_INT(lsc_client_connect(b), 0);
	LS_CHECK_INT(lsc_client_run_until(b, two_msgs, &rb, WAIT_MS), 0);
	LS_CHECK_INT(lsc_client_sub_history(b, sb, &hb), 0);
	LS_CHECK_INT(hb.recovered, 1);
	LS_CHECK_STR(hb.epoch, h.epoch);
	LS_CHECK(hb.offset == h.offset + 2);
	LS_CHECK_STR(rb.msg_text[0], "{\"n\":1}");
	LS_CHECK_STR(rb.msg_text[1], "{\"n\":2}");

	/* Another epoch: not recovered, nothing replayed. */
	c = client("svc1", tok, &rc, 0);
	LS_CHECK(lsc_client_subscribe_since(c, "svc1", "weather", NULL, "a:b",
	                                    0, NULL) == -EINVAL);
	sc = lsc_client_subscribe_since(c, "svc1", "weather", NULL, "other",
	                                h.offset, NULL);
	LS_CHECK_INT(lsc_client_connect(c), 0);
	LS_CHECK_INT(lsc_client_run_until(c, subscribed_1, &rc, WAIT_MS), 0);
	LS_CHECK_INT(lsc_client_sub_history(c, sc, &hb), 0);
	LS_CHECK_INT(hb.recovered, 0);
	LS_CHECK_STR(hb.epoch, h.epoch); /* now the stream's */
	LS_CHECK(hb.offset == h.offset + 2);
	lsc_client_run(c, 200);
	LS_CHECK_INT(rc.n_msgs, 0);

	lsc_client_destroy(&a);
	lsc_client_destroy(&b);
	lsc_client_destroy(&c);
	json_decref(m1);
	json_decref(m2);
	rec_free(&ra);
	rec_free(&rb);
	rec_free(&rc);
	free(tok);
}

/* ---- publishing from another thread (lsc_client_publish is
 * thread-safe; the loop is woken to send) ---- */

typedef struct thr {
	lsc_client *c;
	long count;      /* messages the publisher thread sends */
	int delay_ms;    /* before the first one */
	long published;  /* atomic: publisher thread */
	int publish_err; /* atomic: first failure, 0 none */
	int64_t sent_ms; /* atomic: when the first publish returned */
	long received;   /* loop thread */
	long acked;      /* loop thread */
	long out_of_order;
	bool subscribed;
} thr;

static void
thr_on_subscribe(lsc_client *c, int64_t sub, const char *sid, const char *code,
                 const char *msg, void *user)
{
	((thr *)user)->subscribed = sid != NULL;
}

static void
thr_on_message(lsc_client *c, const lsc_message *m, void *user)
{
	thr *t = user;
	char expect[32];

	t->received++;
	snprintf(expect, sizeof(expect), "{\"n\":%ld}", t->received);
	if (strcmp(m->data, expect) != 0) {
		t->out_of_order++;
	}
}

static void
thr_on_ack(lsc_client *c, const char *rid, bool ok, const char *code,
           const char *msg, void *user)
{
	if (ok) {
		((thr *)user)->acked++;
	}
}

static void *
thr_publisher(void *arg)
{
	const struct timespec pause = { 0, 1000 * 1000 };
	thr *t = arg;
	struct timespec delay = { t->delay_ms / 1000,
		                  (long)(t->delay_ms % 1000) * 1000000L };

	nanosleep(&delay, NULL);
	for (long n = 1; n <= t->count; n++) {
		char text[32];
		int rc;

		snprintf(text, sizeof(text), "{\"n\":%ld}", n);
		while ((rc = lsc_client_publish(t->c, "acc1", "s1", text,
		                                strlen(text), thr_on_ack, t,
		                                NULL)) == -ENOBUFS) {
			nanosleep(&pause, NULL);
		}
		if (rc != 0) {
			__atomic_store_n(&t->publish_err, rc,
			                 __ATOMIC_RELEASE);
			return NULL;
		}
		if (n == 1) {
			__atomic_store_n(&t->sent_ms, ls_now_ms(),
			                 __ATOMIC_RELEASE);
		}
		__atomic_add_fetch(&t->published, 1, __ATOMIC_ACQ_REL);
	}
	return NULL;
}

static bool
thr_all_back(lsc_client *c, void *user)
{
	thr *t = user;

	return __atomic_load_n(&t->publish_err, __ATOMIC_ACQUIRE) != 0 ||
	       (t->received >= t->count && t->acked >= t->count);
}

static bool
thr_subscribed(lsc_client *c, void *user)
{
	return ((thr *)user)->subscribed;
}

static lsc_client *
thr_client(const char *token, thr *t)
{
	lsc_options o = { 0 };

	o.url = env("LSC_LIVE_WS");
	o.app_key = "acc1";
	o.token = token;
	o.cb.on_subscribe = thr_on_subscribe;
	o.cb.on_message = thr_on_message;
	o.user = t;
	return lsc_client_new(&o, NULL);
}

LS_TEST(publish_from_another_thread_wakes_the_idle_loop)
{
	char *tok = get_token("acc1", "acc1_private", "publisher", false);
	thr t = { 0 };
	pthread_t th;
	int64_t done_ms;

	t.c = thr_client(tok, &t);
	LS_CHECK(t.c != NULL);
	LS_CHECK(lsc_client_subscribe(t.c, "acc1", "s1", NULL, NULL) > 0);
	lsc_client_connect(t.c);
	LS_CHECK_INT(lsc_client_run_until(t.c, thr_subscribed, &t, WAIT_MS),
	             0);
	/* The loop sleeps in poll with nothing to do when the publish
	 * comes; it must wake for it rather than wait for a timer. */
	t.count = 1;
	t.delay_ms = 300;
	LS_CHECK_INT(pthread_create(&th, NULL, thr_publisher, &t), 0);
	LS_CHECK_INT(lsc_client_run_until(t.c, thr_all_back, &t, 5000), 0);
	done_ms = ls_now_ms();
	pthread_join(th, NULL);
	LS_CHECK_INT(t.publish_err, 0);
	LS_CHECK_INT(t.acked, 1);
	LS_CHECK_INT(t.received, 1);
	printf("# acked and received %lld ms after the publish\n",
	       (long long)(done_ms - t.sent_ms));
	LS_CHECK(done_ms - t.sent_ms < 250);
	lsc_client_destroy(&t.c);
	free(tok);
}

LS_TEST(publish_many_from_another_thread_while_the_loop_runs)
{
	char *tok = get_token("acc1", "acc1_private", "publisher", false);
	thr t = { 0 };
	pthread_t th;

	t.c = thr_client(tok, &t);
	LS_CHECK(t.c != NULL);
	LS_CHECK(lsc_client_subscribe(t.c, "acc1", "s1", NULL, NULL) > 0);
	lsc_client_connect(t.c);
	LS_CHECK_INT(lsc_client_run_until(t.c, thr_subscribed, &t, WAIT_MS),
	             0);
	t.count = 3000;
	LS_CHECK_INT(pthread_create(&th, NULL, thr_publisher, &t), 0);
	LS_CHECK_INT(lsc_client_run_until(t.c, thr_all_back, &t, 30000), 0);
	pthread_join(th, NULL);
	LS_CHECK_INT(t.publish_err, 0);
	LS_CHECK_INT(t.published, 3000);
	LS_CHECK_INT(t.acked, 3000);
	LS_CHECK_INT(t.received, 3000);
	LS_CHECK_INT(t.out_of_order, 0);
	LS_CHECK_INT(lsc_client_pending_acks(t.c), 0);
	lsc_client_destroy(&t.c);
	free(tok);
}

/* ---- the library's log goes where the application says ---- */

typedef struct logrec {
	int lines;
	int client_lines;
	int below_level;
	char first[160];
} logrec;

static void
log_into(int level, const char *component, const char *message, void *user)
{
	logrec *l = user;

	if (l->lines++ == 0) {
		snprintf(l->first, sizeof(l->first), "%s", message);
	}
	if (strcmp(component, "client") == 0) {
		l->client_lines++;
	}
	if (level < LSC_LOG_DEBUG || level > LSC_LOG_ERROR) {
		l->below_level++;
	}
}

LS_TEST(log_lines_go_to_the_application_sink)
{
	char *tok = get_token("acc1", "acc1_private", "public", false);
	logrec l = { 0 };
	rec r = { 0 };
	lsc_client *c;

	lsc_log_set(LSC_LOG_DEBUG, log_into, &l);
	c = client("acc1", tok, &r, 0);
	LS_CHECK(c != NULL);
	lsc_client_connect(c);
	LS_CHECK_INT(lsc_client_run_until(c, is_ready, &r, WAIT_MS), 0);
	lsc_client_destroy(&c);
	/* "connecting to ...", "authenticated on ..." at debug level */
	LS_CHECK(l.client_lines >= 2);
	LS_CHECK_INT(l.below_level, 0);
	printf("# %d lines, the first: %s\n", l.lines, l.first);

	/* Above the level: nothing reaches the sink. */
	memset(&l, 0, sizeof(l));
	lsc_log_set(LSC_LOG_ERROR, log_into, &l);
	c = client("acc1", tok, &r, 0);
	lsc_client_connect(c);
	LS_CHECK_INT(lsc_client_run_until(c, is_ready, &r, WAIT_MS), 0);
	lsc_client_destroy(&c);
	LS_CHECK_INT(l.lines, 0);
	lsc_log_set(LSC_LOG_INFO, NULL, NULL);
	free(tok);
}

LS_TEST_MAIN()
