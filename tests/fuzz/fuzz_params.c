/*
 * libFuzzer target: the HTTP endpoints' parameter decoding (gw_params.c):
 * query-string fragments, form and JSON bodies, and the strict readers
 * that build auth.generateToken's arguments. The first input byte picks
 * the source; the rest is the text.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *params, *args;
	char *text, *save = NULL;
	ls_error err;
	long long n = 0;
	bool b;
	int rc = 0;

	if (size < 1) {
		return 0;
	}
	params = json_object();
	text = malloc(size);
	if (params == NULL || text == NULL) {
		json_decref(params);
		free(text);
		return 0;
	}
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	(void)gw_params_has_ctl((const char *)data + 1, size - 1);
	(void)gw_params_has_encoded_ctl((const char *)data + 1, size - 1);
	switch (data[0] % 4) {
	case 0: /* query string: lws hands over decoded fragments */
		for (char *p = strtok_r(text, "&", &save); p && rc == 0;
		     p = strtok_r(NULL, "&", &save)) {
			rc = gw_params_add_pair(params, p, false, &err);
		}
		break;
	case 1:
		rc = gw_params_add_body(
		        params, "application/x-www-form-urlencoded",
		        (const char *)data + 1, size - 1, &err);
		break;
	case 2:
		rc = gw_params_add_body(params, "application/json",
		                        (const char *)data + 1, size - 1,
		                        &err);
		break;
	default: /* the same name from the query string and a body */
		rc = gw_params_add_pair(params, text, true, &err);
		if (rc == 0) {
			rc = gw_params_add_body(params, NULL,
			                        (const char *)data + 1,
			                        size - 1, &err);
		}
		break;
	}
	(void)rc;
	(void)gw_params_bool(params, "webToken", false, &b, &err);
	(void)gw_params_int(params, "ttl", 1, 86400, &n, &err);
	args = gw_params_token_args(params, &err);
	json_decref(args);
	json_decref(params);
	free(text);
	return 0;
}
