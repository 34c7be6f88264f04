/*
 * Request parameters of the HTTP endpoints (docs/protocol.md (HTTP)):
 * query-string fragments, form and JSON bodies decoded into one JSON
 * object, and the strict readers of their values. Nothing here uses
 * libwebsockets, so the fuzzer links it (tests/fuzz/fuzz_params.c).
 *
 * Every function fills err (when not NULL) with a message fit for a
 * `bad_request` answer: it names the parameter, never echoes its value.
 */
#ifndef GW_PARAMS_H
#define GW_PARAMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "ls_error.h"

#define GW_PARAMS_MAX 64 /* parameters per request */

/* Does s[0..n) hold a control character (0x00-0x1F or 0x7F)? */
bool gw_params_has_ctl(const char *s, size_t n);

/* Does s[0..n) hold a percent-encoded control character (%00-%1F, %7F)? */
bool gw_params_has_encoded_ctl(const char *s, size_t n);

/*
 * Add one "name=value" pair to params (borrowed). pair is modified. With
 * decode, both sides are application/x-www-form-urlencoded (a query-string
 * fragment from lws is already decoded: decode false). A pair without '='
 * or with an empty name is ignored. Returns 0, or LS_EBADREQUEST for a
 * control character in the name, a value that is not UTF-8, a repeated
 * name, or more than GW_PARAMS_MAX parameters.
 */
int gw_params_add_pair(json_t *params, char *pair, bool decode, ls_error *err);

/*
 * Merge a POST body into params (borrowed): a form when ctype starts with
 * application/x-www-form-urlencoded, otherwise a JSON object (its members)
 * or a JSON array (stored as "args"). body (len bytes) need not be
 * terminated. A name given twice (in the query string and the body) is a
 * LS_EBADREQUEST. An empty body adds nothing.
 */
int gw_params_add_body(json_t *params, const char *ctype, const char *body,
                       size_t len, ls_error *err);

/*
 * The boolean parameter name: JSON true/false or the text "true"/"false"
 * (case-sensitive); absent: dflt. Anything else ("yes", "True", "1", "")
 * is LS_EBADREQUEST.
 */
int gw_params_bool(json_t *params, const char *name, bool dflt, bool *out,
                   ls_error *err);

/*
 * The integer parameter name: a JSON integer or decimal digits only, in
 * [min, max]; absent: *out is left as it is. Anything else is
 * LS_EBADREQUEST.
 */
int gw_params_int(json_t *params, const char *name, long long min,
                  long long max, long long *out, ls_error *err);

/*
 * The arguments of auth.generateToken (docs/bus.md) from the named
 * parameters publicKey, privateKey, roles ("r1|r2" or an array), ttl,
 * ipAddress and webToken. Returns a new array, or NULL with err set
 * (LS_EBADREQUEST).
 */
json_t *gw_params_token_args(json_t *params, ls_error *err);

#endif
