/* Announcements on the control channel: their JSON form (ps_control.h). */
#include "ps_control.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ls_crypto.h"
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
