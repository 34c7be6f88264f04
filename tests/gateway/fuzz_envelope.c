/* libFuzzer target: the WebSocket envelope parser and the JSON check. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_envelope.h"
#include "gw_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gw_envelope e;
	ls_error err;
	size_t from, to;

	if (gw_envelope_parse((const char *)data, size, &e, &err) == 0) {
		gw_envelope_clear(&e);
	}
	if (gw_json_valid((const char *)data, size, &from, &to) &&
	    (from > to || to > size)) {
		__builtin_trap();
	}
	/* Whatever the bytes, a sanitized text is valid UTF-8 for JSON. */
	{
		char *text = malloc(size + 1);
		json_t *str;
		if (text == NULL) {
			return 0;
		}
		memcpy(text, data, size);
		text[size] = '\0';
		gw_utf8_sanitize(text);
		str = json_string(text);
		if (str == NULL) {
			__builtin_trap();
		}
		json_decref(str);
		free(text);
	}
	return 0;
}
