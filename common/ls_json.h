/*
 * JSON serialization with shortest round-trip numbers.
 *
 * jansson prints reals with 17 significant digits, so a published 7.9
 * would reach subscribers as 7.9000000000000004. Everything LightStream
 * re-serializes on behalf of a user (published data, select-mode output,
 * command-line output) goes through here instead: compact output, object
 * keys in insertion order, strings escaped as jansson does, and each real
 * printed with the fewest digits (up to 17) that parse back to the same
 * double.
 */
#ifndef LS_JSON_H
#define LS_JSON_H

#include <jansson.h>
#include <stddef.h>

/* Longest text ls_json_format_real() writes, NUL included. */
#define LS_JSON_REAL_MAX 32

/*
 * Shortest decimal text of a finite double that reads back exactly,
 * always recognizable as a real ("1.0", "2.5e-07"). Returns its length.
 */
int ls_json_format_real(double value, char out[LS_JSON_REAL_MAX]);

/*
 * Compact serialization of any JSON value (borrowed). Returns a new
 * NUL-terminated string (free()) and its length in *len (may be NULL),
 * or NULL when out of memory or the value holds a non-finite real.
 */
char *ls_json_dumps(const json_t *value, size_t *len);

#endif
