/*
 * A JSON syntax check that allocates nothing, for the fan-out hot path:
 * a message from the fabric is embedded into delivery frames byte for byte
 * when it is valid JSON (so query-less subscriptions never parse it), and
 * delivered as a JSON string otherwise (docs/pubsub.md).
 */
#ifndef GW_JSON_H
#define GW_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* Nesting deeper than this is treated as "not JSON". */
#define GW_JSON_MAX_DEPTH 512

/*
 * True when text[0..len) is exactly one JSON value (RFC 8259, surrounding
 * whitespace allowed) with valid UTF-8 in its strings. *start and *end
 * (may be NULL) receive the value without the surrounding whitespace.
 */
bool gw_json_valid(const char *text, size_t len, size_t *start, size_t *end);

/*
 * Make s valid UTF-8 in place, for texts that reach JSON (error messages
 * may quote client input, and truncation may cut a character): invalid
 * bytes (and a sequence cut at the end) become '?'.
 */
void gw_utf8_sanitize(char *s);

/* Is s[0..n) valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF)? */
bool gw_utf8_valid(const char *s, size_t n);

#endif
