/* libFuzzer target: the WebSocket envelope parser and the JSON check. */
#include <stddef.h>
#include <stdint.h>

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
	return 0;
}
