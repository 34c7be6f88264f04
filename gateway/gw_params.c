/*
 * HTTP request parameters: decoding and strict value readers (see
 * gw_params.h). A parameter with an unrecognised value is refused, never
 * read as a default (docs/protocol.md (HTTP)).
 */
#include "gw_params.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ls_proto.h"

#define GW__FORM_CTYPE     "application/x-www-form-urlencoded"
#define GW__ROLES_TEXT_MAX 4096

bool
gw_params_has_ctl(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f) {
			return true;
		}
	}
	return false;
}

static int
gw__hexval(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

bool
gw_params_has_encoded_ctl(const char *s, size_t n)
{
	for (size_t i = 0; i + 2 < n; i++) {
		int hi, lo;
		if (s[i] != '%') {
			continue;
		}
		hi = gw__hexval(s[i + 1]);
		lo = gw__hexval(s[i + 2]);
		if (hi >= 0 && lo >= 0 &&
		    (hi * 16 + lo < 0x20 || hi * 16 + lo == 0x7f)) {
			return true;
		}
	}
	return false;
}

/* Decode application/x-www-form-urlencoded in place; returns the length
 * (the text may now hold NUL bytes). */
static size_t
gw__urldecode(char *s)
{
	char *o = s, *start = s;

	for (; *s; s++) {
		if (*s == '+') {
			*o++ = ' ';
		} else if (*s == '%' && gw__hexval(s[1]) >= 0 &&
		           gw__hexval(s[2]) >= 0) {
			*o++ = (char)(gw__hexval(s[1]) * 16 +
			              gw__hexval(s[2]));
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return (size_t)(o - start);
}

static int
gw__set(json_t *params, const char *name, json_t *value, ls_error *err)
{
	if (json_object_get(params, name) != NULL) {
		json_decref(value);
		return ls_error_set(err, LS_EBADREQUEST,
		                    "parameter %.64s given twice", name);
	}
	if (json_object_size(params) >= GW_PARAMS_MAX) {
		json_decref(value);
		return ls_error_set(err, LS_EBADREQUEST,
		                    "more than %d parameters", GW_PARAMS_MAX);
	}
	if (json_object_set_new(params, name, value) != 0) {
		return ls_error_set(err, -ENOMEM, "out of memory");
	}
	return 0;
}

int
gw_params_add_pair(json_t *params, char *pair, bool decode, ls_error *err)
{
	char *eq = strchr(pair, '=');
	size_t nlen, vlen;
	json_t *v;

	if (eq == NULL) {
		return 0;
	}
	*eq = '\0';
	if (decode) {
		nlen = gw__urldecode(pair);
		vlen = gw__urldecode(eq + 1);
	} else {
		nlen = strlen(pair);
		vlen = strlen(eq + 1);
	}
	if (nlen == 0) {
		return 0;
	}
	if (gw_params_has_ctl(pair, nlen) || strlen(pair) != nlen) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "a parameter name holds a control "
		                    "character");
	}
	v = json_stringn(eq + 1, vlen);
	if (v == NULL) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "parameter %.64s: not UTF-8 text", pair);
	}
	return gw__set(params, pair, v, err);
}

static int
gw__add_form(json_t *params, const char *body, size_t len, ls_error *err)
{
	char *copy = malloc(len + 1), *save = NULL;
	int rc = 0;

	if (copy == NULL) {
		return ls_error_set(err, -ENOMEM, "out of memory");
	}
	memcpy(copy, body, len);
	copy[len] = '\0';
	if (strlen(copy) != len) {
		free(copy);
		return ls_error_set(err, LS_EBADREQUEST,
		                    "the form holds a NUL byte");
	}
	for (char *p = strtok_r(copy, "&", &save); p != NULL && rc == 0;
	     p = strtok_r(NULL, "&", &save)) {
		rc = gw_params_add_pair(params, p, true, err);
	}
	free(copy);
	return rc;
}

int
gw_params_add_body(json_t *params, const char *ctype, const char *body,
                   size_t len, ls_error *err)
{
	json_t *j, *v;
	const char *k;
	int rc = 0;

	if (len == 0) {
		return 0;
	}
	if (ctype != NULL &&
	    strncasecmp(ctype, GW__FORM_CTYPE, strlen(GW__FORM_CTYPE)) == 0) {
		return gw__add_form(params, body, len, err);
	}
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (json_is_array(j)) {
		return gw__set(params, "args", j, err);
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return ls_error_set(err, LS_EBADREQUEST,
		                    "expected a form, a JSON object or a "
		                    "JSON array");
	}
	json_object_foreach(j, k, v)
	{
		rc = gw__set(params, k, json_incref(v), err);
		if (rc != 0) {
			break;
		}
	}
	json_decref(j);
	return rc;
}

int
gw_params_bool(json_t *params, const char *name, bool dflt, bool *out,
               ls_error *err)
{
	json_t *v = json_object_get(params, name);
	const char *s = json_string_value(v);

	if (v == NULL) {
		*out = dflt;
	} else if (json_is_boolean(v)) {
		*out = json_is_true(v);
	} else if (s != NULL && strcmp(s, "true") == 0) {
		*out = true;
	} else if (s != NULL && strcmp(s, "false") == 0) {
		*out = false;
	} else {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "%s: expected true or false", name);
	}
	return 0;
}

int
gw_params_int(json_t *params, const char *name, long long min, long long max,
              long long *out, ls_error *err)
{
	json_t *v = json_object_get(params, name);
	long long n = 0;

	if (v == NULL) {
		return 0;
	}
	if (json_is_integer(v)) {
		n = json_integer_value(v);
	} else if (json_is_string(v) && json_string_length(v) > 0 &&
	           json_string_length(v) <= 18) {
		const char *s = json_string_value(v);
		for (size_t i = 0; s[i] != '\0'; i++) {
			if (s[i] < '0' || s[i] > '9') {
				goto bad;
			}
			n = n * 10 + (s[i] - '0');
		}
	} else {
		goto bad;
	}
	if (n < min || n > max) {
		goto bad;
	}
	*out = n;
	return 0;
bad:
	return ls_error_set(err, LS_EBADREQUEST, "%s: expected %lld to %lld",
	                    name, min, max);
}

/* roles: "r1|r2" (or "r1,r2") text, or an array of names. */
static json_t *
gw__roles(json_t *rv, ls_error *err)
{
	json_t *roles;
	char *copy, *p;

	if (json_is_array(rv)) {
		return json_incref(rv);
	}
	if (!json_is_string(rv) || json_string_length(rv) == 0 ||
	    json_string_length(rv) > GW__ROLES_TEXT_MAX) {
		ls_error_set(err, LS_EBADREQUEST, "roles: expected r1|r2");
		return NULL;
	}
	roles = json_array();
	copy = strdup(json_string_value(rv));
	if (roles == NULL || copy == NULL) {
		json_decref(roles);
		free(copy);
		ls_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	p = copy;
	for (;;) {
		size_t n = strcspn(p, "|,");
		char end = p[n];
		p[n] = '\0';
		if (!ls_valid_role_name(p)) {
			/* empty or not a role name: say so, not "unknown" */
			json_decref(roles);
			free(copy);
			ls_error_set(err, LS_EBADREQUEST,
			             "roles: expected r1|r2 (role names are "
			             "[A-Za-z0-9_-]{1,64})");
			return NULL;
		}
		json_array_append_new(roles, json_string(p));
		if (end == '\0') {
			break;
		}
		p += n + 1;
	}
	free(copy);
	return roles;
}

json_t *
gw_params_token_args(json_t *params, ls_error *err)
{
	json_t *pub = json_object_get(params, "publicKey");
	json_t *priv = json_object_get(params, "privateKey");
	json_t *rv = json_object_get(params, "roles");
	json_t *ipv = json_object_get(params, "ipAddress");
	json_t *roles;
	long long ttl = LS_TTL_DEFAULT;
	bool web = false;
	const char *ip = NULL;

	if (!json_is_string(pub) || !json_is_string(priv)) {
		ls_error_set(err, LS_EBADREQUEST,
		             "publicKey and privateKey are required");
		return NULL;
	}
	if (gw_params_int(params, "ttl", LS_TTL_MIN, LS_TTL_MAX, &ttl, err) !=
	            0 ||
	    gw_params_bool(params, "webToken", false, &web, err) != 0) {
		return NULL;
	}
	if (ipv != NULL && !json_is_string(ipv) && !json_is_null(ipv)) {
		ls_error_set(err, LS_EBADREQUEST,
		             "ipAddress: expected an IP address");
		return NULL;
	}
	/* An empty ipAddress (an empty form field) means "not bound". */
	ip = json_string_value(ipv);
	if (ip != NULL && ip[0] == '\0') {
		ip = NULL;
	}
	if (rv == NULL) {
		roles = json_array();
	} else if ((roles = gw__roles(rv, err)) == NULL) {
		return NULL;
	}
	return json_pack("[O,O,o,I,s?,b]", pub, priv, roles, (json_int_t)ttl,
	                 ip, web);
}
