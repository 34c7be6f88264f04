/*
 * Failure rate limits keyed by a short text (a client IP, an app key):
 * a token bucket per key that each failure drains and time refills
 * (docs/security.md). Checking costs nothing; only failures count, so a
 * backend issuing many tokens at once from one address is never slowed
 * by its successes. Nothing here uses libwebsockets (unit-tested in
 * tests/gateway/gw_limit_test.c).
 */
#ifndef GW_LIMIT_H
#define GW_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#define GW_LIMIT_KEY_MAX 64 /* longer keys are cut */

typedef struct gw_limit gw_limit;

/*
 * per_minute failures per key per minute, in bursts of up to per_minute
 * (0: no limit). At most max_keys keys are tracked; when they are all
 * recent, an unknown key is refused (fail closed). Returns NULL when out
 * of memory.
 */
gw_limit *gw_limit_new(long per_minute, size_t max_keys);

/* Free. Accepts NULL and clears *l. */
void gw_limit_destroy(gw_limit **l);

/*
 * May key try now (now_ms: a monotonic clock)? Returns 0, or the whole
 * seconds (>= 1) until it may.
 */
int gw_limit_check(gw_limit *l, const char *key, int64_t now_ms);

/* Count one failure of key. */
void gw_limit_fail(gw_limit *l, const char *key, int64_t now_ms);

/* Keys tracked now (for tests and metrics). */
size_t gw_limit_keys(const gw_limit *l);

#endif
