/*
 * libFuzzer target for the C client library's handling of server frames
 * (clients/c/lsc_proto.c): the input is one WebSocket text message from
 * a server. It goes through lsc__envelope_parse and then through the
 * helpers the client applies to each envelope type (error extraction,
 * string members, the permission check of an AuthResponse, the web-token
 * signature of a challenge). The same text is also parsed as a URL, and
 * its first bytes drive the reconnection backoff.
 *
 * Checked: the parser accepts exactly the objects with an integer "t" in
 * 1..1000 and an object "m", and returns that "m"; a parsed envelope
 * serializes and parses back to itself; an exact permission entry is
 * always honoured; URLs that parse have a host, a port and a path; the
 * backoff stays within [1, max].
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lsc_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the parser must decide, computed independently. */
static json_t *
fz_expected_m(const char *text, size_t len, int *t)
{
	json_t *env = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *jt = json_object_get(env, "t");
	json_t *jm = json_object_get(env, "m");
	json_t *m = NULL;

	if (json_is_integer(jt) && json_is_object(jm) &&
	    json_integer_value(jt) >= 1 && json_integer_value(jt) <= 1000) {
		*t = (int)json_integer_value(jt);
		m = json_incref(jm);
	}
	json_decref(env);
	return m;
}

/* Every exact (non-prefix) entry grants what it says. */
static void
fz_permissions(const json_t *perms)
{
	size_t i;
	json_t *p;

	if (!json_is_array(perms)) {
		return;
	}
	json_array_foreach(perms, i, p)
	{
		const char *po = lsc__str(p, "owner");
		const char *ps = lsc__str(p, "stream");
		json_int_t bits =
		        json_integer_value(json_object_get(p, "permission"));

		if (po == NULL || ps == NULL) {
			continue;
		}
		if ((bits & LS_PERM_READ) &&
		    !lsc__permitted(perms, po, ps, LS_PERM_READ)) {
			abort();
		}
		if ((bits & LS_PERM_WRITE) &&
		    !lsc__permitted(perms, po, ps, LS_PERM_WRITE)) {
			abort();
		}
	}
}

static void
fz_envelope(int t, json_t *m)
{
	const char *code, *message, *conn;
	char *again;
	json_t *m2 = NULL;
	int t2 = 0;
	ls_error err;
	char sig[65];

	lsc__error_of(m, &code, &message);
	if (code == NULL || message == NULL) {
		abort();
	}
	fz_permissions(json_object_get(m, "permissions"));
	if (lsc__permitted(NULL, "a", "b", LS_PERM_READ) != true) {
		abort();
	}
	conn = lsc__str(m, "connectionId");
	if (t == LS_T_WEBTOKEN_REQUEST && conn != NULL &&
	    (lsc__web_signature("secret", "app", "token", conn, sig) != 0 ||
	     strlen(sig) != 64)) {
		abort();
	}
	(void)ls_valid_app_key(lsc__str(m, "owner"));
	(void)ls_valid_stream(lsc__str(m, "stream"));

	/* What a server could have sent, re-sent, reads the same. */
	again = lsc__envelope(t, json_incref(m));
	if (again == NULL ||
	    lsc__envelope_parse(again, strlen(again), &t2, &m2, &err) != 0 ||
	    t2 != t || !json_equal(m, m2)) {
		abort();
	}
	json_decref(m2);
	free(again);
}

static void
fz_url(const char *text)
{
	lsc__url u;
	ls_error err;

	if (lsc__url_parse(text, "ws", "wss", "/ws", &u, &err) != 0) {
		if (err.text[0] == '\0') {
			abort();
		}
		return;
	}
	if (u.host[0] == '\0' || u.port < 1 || u.port > 65535 ||
	    strnlen(u.host, sizeof(u.host)) >= sizeof(u.host) ||
	    strnlen(u.path, sizeof(u.path)) >= sizeof(u.path) ||
	    u.path[0] != '/') {
		abort();
	}
}

static void
fz_backoff(const uint8_t *data, size_t size)
{
	uint32_t v[4];
	unsigned d;

	if (size < sizeof(v)) {
		return;
	}
	memcpy(v, data, sizeof(v));
	d = lsc__backoff_ms(v[0], v[1], v[2], v[3]);
	if (d < 1 || d > (v[2] == 0 ? 1 : v[2])) {
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	json_t *m = NULL, *want;
	int t = 0, want_t = 0;
	ls_error err = { 0 };
	char *str;
	int rc;

	rc = lsc__envelope_parse(text, size, &t, &m, &err);
	want = fz_expected_m(text, size, &want_t);
	if ((rc == 0) != (want != NULL)) {
		abort();
	}
	if (rc == 0) {
		if (t != want_t || !json_equal(m, want)) {
			abort();
		}
		fz_envelope(t, m);
	} else if (m != NULL || err.text[0] == '\0') {
		abort();
	}
	json_decref(m);
	json_decref(want);

	str = malloc(size + 1);
	if (str == NULL) {
		return 0;
	}
	memcpy(str, data, size);
	str[size] = '\0';
	fz_url(str);
	free(str);
	fz_backoff(data, size);
	return 0;
}
