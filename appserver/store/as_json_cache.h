/*
 * Internal to the store: a bounded cache of parsed JSON texts.
 *
 * Every validation reads a token's and an account's roles as JSON text
 * from the store; parsing that text was most of the cost of a validation.
 * The cache is keyed by the text itself, so it can never be stale: the
 * row is still read on every call, and a changed row is a different text
 * (a role edited by this process or by another one sharing the store
 * applies at once). Values are shared between threads and read-only.
 */
#ifndef AS_JSON_CACHE_H
#define AS_JSON_CACHE_H

#include <jansson.h>
#include <stddef.h>

/* Slots of the table (direct-mapped: a colliding text replaces). */
#define AS__JCACHE_SLOTS 256
/* Longer texts are parsed on every call instead of being kept. */
#define AS__JCACHE_TEXT_MAX 16384

typedef struct as__jcache as__jcache;

/* A new, empty cache, or NULL when out of memory. */
as__jcache *as__jcache_new(void);

/* Free the cache and its values (references held by callers stay
 * valid). Accepts NULL and clears *c. */
void as__jcache_destroy(as__jcache **c);

/*
 * The value of the JSON text[0..len) (borrowed text): a new reference
 * (json_decref() it) that the caller and every other thread share, so it
 * must never be modified. NULL when the text is not JSON or on allocation
 * failure.
 */
json_t *as__jcache_parse(as__jcache *c, const char *text, size_t len);

#endif
