#include "gw_envelope.h"

#include <string.h>

/* A required (or optional) string member of at most max bytes. */
static int
gw__string(json_t *m, const char *key, size_t max, bool required,
           const char **out, ls_error *err)
{
	json_t *v = json_object_get(m, key);

	if (v == NULL) {
		if (!required) {
			return 0;
		}
		return ls_error_set(err, LS_EBADREQUEST, "m.%s: missing", key);
	}
	if (!json_is_string(v)) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "m.%s: expected a string", key);
	}
	if (json_string_length(v) == 0 || json_string_length(v) > max) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "m.%s: length must be 1..%zu", key, max);
	}
	*out = json_string_value(v);
	return 0;
}

static int
gw__request_id(json_t *m, bool required, json_t **out, ls_error *err)
{
	json_t *v = json_object_get(m, "requestId");

	if (v == NULL) {
		if (required) {
			return ls_error_set(err, LS_EBADREQUEST,
			                    "m.requestId: missing");
		}
		return 0;
	}
	if (json_is_string(v) && json_string_length(v) > 0 &&
	    json_string_length(v) <= LS_REQUEST_ID_MAX) {
		*out = v;
		return 0;
	}
	if (json_is_integer(v)) {
		*out = v;
		return 0;
	}
	return ls_error_set(err, LS_EBADREQUEST,
	                    "m.requestId: expected a string of 1..%d bytes "
	                    "or an integer",
	                    LS_REQUEST_ID_MAX);
}

static int
gw__owner_stream(gw_envelope *e, json_t *m, ls_error *err)
{
	int rc = gw__string(m, "owner", LS_APPKEY_MAX, true, &e->owner, err);

	if (rc == 0) {
		rc = gw__string(m, "stream", LS_STREAM_MAX, true, &e->stream,
		                err);
	}
	if (rc != 0) {
		return rc;
	}
	if (!ls_valid_app_key(e->owner)) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "m.owner: not a valid app key");
	}
	if (!ls_valid_stream(e->stream)) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "m.stream: not a valid stream name");
	}
	return 0;
}

/* "since": {"epoch": "<epoch>", "offset": N} (optional; null: absent). */
static int
gw__since(gw_envelope *e, json_t *m, ls_error *err)
{
	json_t *since = json_object_get(m, "since"), *epoch, *offset;

	if (since == NULL || json_is_null(since)) {
		return 0;
	}
	epoch = json_object_get(since, "epoch");
	offset = json_object_get(since, "offset");
	if (!json_is_object(since) || !json_is_string(epoch) ||
	    !ls_valid_epoch(json_string_value(epoch))) {
		return ls_error_set(
		        err, LS_EBADREQUEST,
		        "m.since.epoch: expected [A-Za-z0-9_-]{1,%d}",
		        LS_EPOCH_MAX);
	}
	if (!json_is_integer(offset) || json_integer_value(offset) < 0) {
		return ls_error_set(
		        err, LS_EBADREQUEST,
		        "m.since.offset: expected an integer >= 0");
	}
	e->since_epoch = json_string_value(epoch);
	e->since_offset = (uint64_t)json_integer_value(offset);
	return 0;
}

static int
gw__fields(gw_envelope *e, json_t *m, ls_error *err)
{
	int rc = 0;

	switch (e->t) {
	case LS_T_AUTH_REQUEST:
		rc = gw__string(m, "appKey", LS_APPKEY_MAX, true, &e->app_key,
		                err);
		if (rc == 0) {
			rc = gw__string(m, "token", LS_TOKEN_MAX, true,
			                &e->token, err);
		}
		if (rc == 0 && !ls_valid_app_key(e->app_key)) {
			rc = ls_error_set(err, LS_EBADREQUEST,
			                  "m.appKey: not a valid app key");
		}
		return rc;
	case LS_T_WEBTOKEN_RESPONSE:
		return gw__string(m, "signature", LS_SIGNATURE_MAX, true,
		                  &e->signature, err);
	case LS_T_DATA:
		rc = gw__owner_stream(e, m, err);
		if (rc == 0) {
			rc = gw__request_id(m, false, &e->request_id, err);
		}
		if (rc == 0) {
			e->data = json_object_get(m, "data");
			if (e->data == NULL) {
				rc = ls_error_set(err, LS_EBADREQUEST,
				                  "m.data: missing");
			}
		}
		return rc;
	case LS_T_SUBSCRIBE_REQUEST:
		rc = gw__owner_stream(e, m, err);
		if (rc == 0) {
			rc = gw__request_id(m, true, &e->request_id, err);
		}
		if (rc == 0) {
			/* An ill-typed query is the query's business
			 * (invalid_query), not a protocol error. */
			e->query = json_object_get(m, "query");
			if (json_is_null(e->query)) {
				e->query = NULL;
			}
			rc = gw__since(e, m, err);
		}
		return rc;
	case LS_T_UNSUBSCRIBE_REQUEST:
		return gw__string(m, "subscriptionId", LS_SUB_ID_MAX, true,
		                  &e->sub_id, err);
	case LS_T_REFRESH_REQUEST:
		return gw__string(m, "token", LS_TOKEN_MAX, true, &e->token,
		                  err);
	default:
		return ls_error_set(err, LS_EBADREQUEST,
		                    "t: unknown message type %d", e->t);
	}
}

int
gw_envelope_parse(const char *text, size_t len, gw_envelope *out,
                  ls_error *err)
{
	json_error_t jerr;
	json_t *t, *m;
	int rc;

	memset(out, 0, sizeof(*out));
	out->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (out->root == NULL) {
		rc = ls_error_set(err, LS_EBADREQUEST, "malformed JSON: %s",
		                  jerr.text);
		goto fail;
	}
	if (!json_is_object(out->root)) {
		rc = ls_error_set(err, LS_EBADREQUEST,
		                  "envelope: expected an object");
		goto fail;
	}
	t = json_object_get(out->root, "t");
	m = json_object_get(out->root, "m");
	if (!json_is_integer(t)) {
		rc = ls_error_set(err, LS_EBADREQUEST,
		                  "t: expected an integer");
		goto fail;
	}
	if (!json_is_object(m)) {
		rc = ls_error_set(err, LS_EBADREQUEST,
		                  "m: expected an object");
		goto fail;
	}
	if (json_integer_value(t) < 1 || json_integer_value(t) > 13) {
		rc = ls_error_set(err, LS_EBADREQUEST,
		                  "t: unknown message type %lld",
		                  (long long)json_integer_value(t));
		goto fail;
	}
	out->t = (int)json_integer_value(t);
	rc = gw__fields(out, m, err);
	if (rc != 0) {
		goto fail;
	}
	return 0;
fail:
	gw_envelope_clear(out);
	return rc;
}

void
gw_envelope_clear(gw_envelope *e)
{
	json_decref(e->root);
	memset(e, 0, sizeof(*e));
}
