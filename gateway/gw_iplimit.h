/*
 * Connections per client IP (docs/security.md, "Connections"): how many
 * each address holds open, and how fast it opens new ones (a token bucket
 * of rate per second, bursts of rate). Shared by the loops of a server;
 * thread-safe. Nothing here uses libwebsockets (unit-tested in
 * tests/gateway/gw_iplimit_test.c).
 */
#ifndef GW_IPLIMIT_H
#define GW_IPLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_iplimit gw_iplimit;

typedef enum gw_ipverdict {
	GW_IP_OK = 0,
	GW_IP_TOO_MANY, /* max_open connections open already */
	GW_IP_TOO_FAST, /* over rate new connections per second */
} gw_ipverdict;

/*
 * max_open connections per IP (0: no cap), rate new connections per IP
 * per second (0: no limit); at most max_keys addresses are tracked (past
 * that, new addresses are let in uncounted). NULL when out of memory.
 */
gw_iplimit *gw_iplimit_new(long max_open, long rate, size_t max_keys);
void gw_iplimit_destroy(gw_iplimit **l);

/* May ip open a connection now (now_ms: monotonic)? GW_IP_OK takes one
 * token of its rate. */
gw_ipverdict gw_iplimit_admit(gw_iplimit *l, const char *ip, int64_t now_ms);

/* ip opened / closed a connection. open returns true when it was counted
 * (then exactly one close must follow). */
bool gw_iplimit_open(gw_iplimit *l, const char *ip, int64_t now_ms);
void gw_iplimit_close(gw_iplimit *l, const char *ip, int64_t now_ms);

/* Addresses tracked now. */
size_t gw_iplimit_keys(gw_iplimit *l);

#endif
