#include "lsc_proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ls_json.h"
#include "ls_crypto.h"

int
lsc__url_parse(const char *url, const char *plain, const char *tls,
               const char *default_path, lsc__url *out, ls_error *err)
{
	const char *p, *host, *host_end, *port_str = NULL;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (url == NULL || *url == '\0') {
		return ls_error_set(err, -EINVAL, "no URL given");
	}
	p = strstr(url, "://");
	if (p == NULL) {
		return ls_error_set(
		        err, -EINVAL,
		        "URL '%s' has no scheme (expected %s:// or "
		        "%s://)",
		        url, plain, tls);
	}
	n = (size_t)(p - url);
	/* The gateway serves HTTP and WebSocket on the same ports, so the
	 * other family's scheme names the same server: http:// for a
	 * WebSocket client, ws:// for an HTTP one. */
	if ((n == strlen(plain) && strncmp(url, plain, n) == 0) ||
	    (n == 2 && strncmp(url, "ws", 2) == 0) ||
	    (n == 4 && strncmp(url, "http", 4) == 0)) {
		out->tls = false;
		out->port = 80;
	} else if ((n == strlen(tls) && strncmp(url, tls, n) == 0) ||
	           (n == 3 && strncmp(url, "wss", 3) == 0) ||
	           (n == 5 && strncmp(url, "https", 5) == 0)) {
		out->tls = true;
		out->port = 443;
	} else {
		return ls_error_set(err, -EINVAL,
		                    "URL '%s': scheme must be %s:// or %s://",
		                    url, plain, tls);
	}
	host = p + 3;
	if (*host == '[') {
		host++;
		host_end = strchr(host, ']');
		if (host_end == NULL) {
			return ls_error_set(err, -EINVAL,
			                    "URL '%s': unclosed '['", url);
		}
		p = host_end + 1;
	} else {
		host_end = host + strcspn(host, ":/?#");
		p = host_end;
	}
	if (host_end == host || (size_t)(host_end - host) >= LSC__HOST_MAX) {
		return ls_error_set(err, -EINVAL, "URL '%s': bad host", url);
	}
	memcpy(out->host, host, (size_t)(host_end - host));
	for (const char *h = out->host; *h; h++) {
		if (*h <= ' ' || *h == 0x7f || *h == '@' || *h == '[') {
			return ls_error_set(err, -EINVAL, "URL '%s': bad host",
			                    url);
		}
	}
	if (*p == ':') {
		char *end;
		long port;

		port_str = p + 1;
		port = strtol(port_str, &end, 10);
		if (end == port_str || port < 1 || port > 65535 ||
		    (*end != '\0' && *end != '/' && *end != '?')) {
			return ls_error_set(err, -EINVAL, "URL '%s': bad port",
			                    url);
		}
		out->port = (int)port;
		p = end;
	} else if (*p != '\0' && *p != '/' && *p != '?') {
		return ls_error_set(err, -EINVAL, "URL '%s': bad host", url);
	}
	if (*p == '\0' || strcmp(p, "/") == 0) {
		p = default_path;
	}
	if (*p == '?') {
		n = (size_t)snprintf(out->path, sizeof(out->path), "%s%s",
		                     default_path, p);
	} else {
		n = (size_t)snprintf(out->path, sizeof(out->path), "%s", p);
	}
	if (n >= sizeof(out->path)) {
		return ls_error_set(err, -EINVAL, "URL '%s': path too long",
		                    url);
	}
	return 0;
}

char *
lsc__envelope(int t, json_t *m)
{
	json_t *env;
	char *text = NULL;

	if (m == NULL) {
		return NULL;
	}
	env = json_pack("{s:i,s:o}", "t", t, "m", m); /* steals m */
	if (env == NULL) {
		return NULL;
	}
	text = ls_json_dumps(env, NULL);
	json_decref(env);
	return text;
}

char *
lsc__auth_request(const char *app_key, const char *token)
{
	if (app_key == NULL || token == NULL) {
		return NULL;
	}
	return lsc__envelope(
	        LS_T_AUTH_REQUEST,
	        json_pack("{s:s,s:s}", "appKey", app_key, "token", token));
}

char *
lsc__web_token_response(const char *signature)
{
	if (signature == NULL) {
		return NULL;
	}
	return lsc__envelope(LS_T_WEBTOKEN_RESPONSE,
	                     json_pack("{s:s}", "signature", signature));
}

char *
lsc__subscribe_request(const char *owner, const char *stream,
                       const char *request_id, const json_t *query)
{
	return lsc__subscribe_request_since(owner, stream, request_id, query,
	                                    NULL, 0);
}

char *
lsc__subscribe_request_since(const char *owner, const char *stream,
                             const char *request_id, const json_t *query,
                             const char *epoch, uint64_t offset)
{
	json_t *m;

	if (owner == NULL || stream == NULL || request_id == NULL) {
		return NULL;
	}
	m = json_pack("{s:s,s:s,s:s}", "owner", owner, "stream", stream,
	              "requestId", request_id);
	if (m != NULL && query != NULL &&
	    json_object_set(m, "query", (json_t *)query) != 0) {
		json_decref(m);
		return NULL;
	}
	if (m != NULL && epoch != NULL &&
	    json_object_set_new(m, "since",
	                        json_pack("{s:s,s:I}", "epoch", epoch,
	                                  "offset", (json_int_t)offset)) !=
	            0) {
		json_decref(m);
		return NULL;
	}
	return lsc__envelope(LS_T_SUBSCRIBE_REQUEST, m);
}

char *
lsc__unsubscribe_request(const char *subscription_id)
{
	if (subscription_id == NULL) {
		return NULL;
	}
	return lsc__envelope(
	        LS_T_UNSUBSCRIBE_REQUEST,
	        json_pack("{s:s}", "subscriptionId", subscription_id));
}

char *
lsc__publish(const char *owner, const char *stream, const json_t *data,
             const char *request_id)
{
	json_t *m;

	if (owner == NULL || stream == NULL || data == NULL) {
		return NULL;
	}
	m = json_pack("{s:s,s:s,s:O}", "owner", owner, "stream", stream,
	              "data", (json_t *)data);
	if (m != NULL && request_id != NULL &&
	    json_object_set_new(m, "requestId", json_string(request_id)) !=
	            0) {
		json_decref(m);
		return NULL;
	}
	return lsc__envelope(LS_T_DATA, m);
}

char *
lsc__refresh_request(const char *token)
{
	if (token == NULL) {
		return NULL;
	}
	return lsc__envelope(LS_T_REFRESH_REQUEST,
	                     json_pack("{s:s}", "token", token));
}

int
lsc__envelope_parse(const char *text, size_t len, int *t, json_t **m,
                    ls_error *err)
{
	json_error_t jerr;
	json_t *env, *jt, *jm;

	*m = NULL;
	env = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (env == NULL) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "malformed JSON from server: %s",
		                    jerr.text);
	}
	jt = json_object_get(env, "t");
	jm = json_object_get(env, "m");
	if (!json_is_integer(jt) || !json_is_object(jm)) {
		json_decref(env);
		return ls_error_set(err, LS_EBADREQUEST,
		                    "envelope without integer 't' and object "
		                    "'m'");
	}
	if (json_integer_value(jt) < 1 || json_integer_value(jt) > 1000) {
		json_decref(env);
		return ls_error_set(err, LS_EBADREQUEST,
		                    "unknown envelope type");
	}
	*t = (int)json_integer_value(jt);
	*m = json_incref(jm);
	json_decref(env);
	return 0;
}

const char *
lsc__str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

void
lsc__error_of(const json_t *m, const char **code, const char **message)
{
	const json_t *e = json_object_get(m, "error");

	if (!json_is_object(e)) {
		e = m;
	}
	*code = lsc__str(e, "code");
	*message = lsc__str(e, "message");
	if (*code == NULL) {
		*code = "server_error";
	}
	if (*message == NULL) {
		*message = "";
	}
}

int
lsc__web_signature(const char *secret, const char *app_key, const char *token,
                   const char *connection_id, char out[65])
{
	char *data;
	int n;

	if (secret == NULL || app_key == NULL || token == NULL ||
	    connection_id == NULL) {
		return -EINVAL;
	}
	n = asprintf(&data, "%s:%s:%s", app_key, token, connection_id);
	if (n < 0) {
		return -ENOMEM;
	}
	ls_hmac_sha256_hex(secret, strlen(secret), data, (size_t)n, out);
	free(data);
	return 0;
}

bool
lsc__permitted(const json_t *perms, const char *owner, const char *stream,
               int bit)
{
	size_t i, n = 0;
	json_t *p;
	ls_perm *list;
	bool ok;

	if (perms == NULL) {
		return true;
	}
	list = calloc(json_array_size(perms) + 1, sizeof(*list));
	if (list == NULL) {
		return false;
	}
	json_array_foreach(perms, i, p)
	{
		list[n].owner = lsc__str(p, "owner");
		list[n].stream = lsc__str(p, "stream");
		list[n].bits = (int)json_integer_value(
		        json_object_get(p, "permission"));
		n++;
	}
	/* The one check the gateway applies too. */
	ok = ls_perm_allows(list, n, owner, stream, bit);
	free(list);
	return ok;
}

unsigned
lsc__backoff_ms(unsigned attempt, unsigned initial_ms, unsigned max_ms,
                uint32_t rnd)
{
	uint64_t d = initial_ms == 0 ? 1 : initial_ms;
	unsigned lo;

	if (max_ms == 0) {
		max_ms = 1;
	}
	/* Doubling stops once past the cap, so no overflow for any
	 * attempt. */
	for (unsigned i = 0; i < attempt && d < max_ms; i++) {
		d *= 2;
	}
	if (d > max_ms) {
		d = max_ms;
	}
	/* Jitter in [d/2, d] spreads a crowd of clients that lost the same
	 * gateway, while keeping the growth of the delay. */
	lo = (unsigned)(d / 2);
	d = lo + (uint64_t)rnd % ((unsigned)d - lo + 1);
	return d == 0 ? 1 : (unsigned)d;
}
