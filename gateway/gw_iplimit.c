#include "gw_iplimit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define GW__IP_LEN 64

typedef struct gw__ipent {
	struct gw__ipent *next;
	long open;
	double tokens;   /* of the rate bucket */
	int64_t last_ms; /* when tokens were last brought up to date */
	char ip[GW__IP_LEN];
} gw__ipent;

struct gw_iplimit {
	pthread_mutex_t lock;
	long max_open, rate;
	size_t max_keys, nkeys, nbuckets;
	gw__ipent **buckets;
	unsigned sweep; /* admissions since the last sweep */
};

static uint32_t
gw__iphash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h = (h ^ (unsigned char)*s) * 16777619u;
	}
	return h;
}

gw_iplimit *
gw_iplimit_new(long max_open, long rate, size_t max_keys)
{
	gw_iplimit *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		return NULL;
	}
	l->max_open = max_open;
	l->rate = rate;
	l->max_keys = max_keys;
	l->nbuckets = 1024;
	l->buckets = calloc(l->nbuckets, sizeof(*l->buckets));
	if (l->buckets == NULL) {
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->lock, NULL);
	return l;
}

void
gw_iplimit_destroy(gw_iplimit **pl)
{
	gw_iplimit *l = pl ? *pl : NULL;

	if (l == NULL) {
		return;
	}
	for (size_t i = 0; i < l->nbuckets; i++) {
		while (l->buckets[i] != NULL) {
			gw__ipent *e = l->buckets[i];
			l->buckets[i] = e->next;
			free(e);
		}
	}
	free(l->buckets);
	pthread_mutex_destroy(&l->lock);
	free(l);
	*pl = NULL;
}

/* Bring e's bucket up to now; true when e holds nothing worth keeping. */
static bool
gw__refill(gw_iplimit *l, gw__ipent *e, int64_t now_ms)
{
	if (l->rate > 0 && now_ms > e->last_ms) {
		e->tokens += (double)(now_ms - e->last_ms) * (double)l->rate /
		             1000.0;
		if (e->tokens > (double)l->rate) {
			e->tokens = (double)l->rate;
		}
	}
	e->last_ms = now_ms;
	return e->open == 0 && (l->rate == 0 || e->tokens >= (double)l->rate);
}

static void
gw__grow(gw_iplimit *l)
{
	size_t n = l->nbuckets * 2;
	gw__ipent **b = calloc(n, sizeof(*b));

	if (b == NULL) {
		return; /* longer chains, still correct */
	}
	for (size_t i = 0; i < l->nbuckets; i++) {
		while (l->buckets[i] != NULL) {
			gw__ipent *e = l->buckets[i];
			l->buckets[i] = e->next;
			e->next = b[gw__iphash(e->ip) & (n - 1)];
			b[gw__iphash(e->ip) & (n - 1)] = e;
		}
	}
	free(l->buckets);
	l->buckets = b;
	l->nbuckets = n;
}

/* Drop the addresses that hold no connection and a full bucket. */
static void
gw__sweep(gw_iplimit *l, int64_t now_ms)
{
	for (size_t i = 0; i < l->nbuckets; i++) {
		gw__ipent **pp = &l->buckets[i];
		while (*pp != NULL) {
			gw__ipent *e = *pp;
			if (gw__refill(l, e, now_ms)) {
				*pp = e->next;
				free(e);
				l->nkeys--;
			} else {
				pp = &e->next;
			}
		}
	}
}

/* The entry of ip; with create, a new one (NULL when full or no memory). */
static gw__ipent *
gw__find(gw_iplimit *l, const char *ip, int64_t now_ms, bool create)
{
	uint32_t h = gw__iphash(ip);
	gw__ipent *e;

	for (e = l->buckets[h & (l->nbuckets - 1)]; e != NULL; e = e->next) {
		if (strcmp(e->ip, ip) == 0) {
			gw__refill(l, e, now_ms);
			return e;
		}
	}
	if (!create) {
		return NULL;
	}
	if (l->nkeys >= l->max_keys) {
		gw__sweep(l, now_ms);
		if (l->nkeys >= l->max_keys) {
			return NULL;
		}
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		return NULL;
	}
	strncpy(e->ip, ip, sizeof(e->ip) - 1);
	e->tokens = (double)l->rate;
	e->last_ms = now_ms;
	if (l->nkeys + 1 > 2 * l->nbuckets) {
		gw__grow(l);
	}
	e->next = l->buckets[h & (l->nbuckets - 1)];
	l->buckets[h & (l->nbuckets - 1)] = e;
	l->nkeys++;
	return e;
}

gw_ipverdict
gw_iplimit_admit(gw_iplimit *l, const char *ip, int64_t now_ms)
{
	gw_ipverdict v = GW_IP_OK;
	gw__ipent *e;

	if (l == NULL || (l->max_open == 0 && l->rate == 0)) {
		return GW_IP_OK;
	}
	pthread_mutex_lock(&l->lock);
	if (++l->sweep >= 4096) {
		l->sweep = 0;
		gw__sweep(l, now_ms);
	}
	e = gw__find(l, ip, now_ms, true);
	if (e == NULL) {
		v = GW_IP_OK; /* untracked: let in (docs/security.md) */
	} else if (l->max_open > 0 && e->open >= l->max_open) {
		v = GW_IP_TOO_MANY;
	} else if (l->rate > 0 && e->tokens < 1.0) {
		v = GW_IP_TOO_FAST;
	} else if (l->rate > 0) {
		e->tokens -= 1.0;
	}
	pthread_mutex_unlock(&l->lock);
	return v;
}

bool
gw_iplimit_open(gw_iplimit *l, const char *ip, int64_t now_ms)
{
	gw__ipent *e;

	if (l == NULL || l->max_open == 0) {
		return false;
	}
	pthread_mutex_lock(&l->lock);
	e = gw__find(l, ip, now_ms, true);
	if (e != NULL) {
		e->open++;
	}
	pthread_mutex_unlock(&l->lock);
	return e != NULL;
}

void
gw_iplimit_close(gw_iplimit *l, const char *ip, int64_t now_ms)
{
	gw__ipent *e;

	if (l == NULL) {
		return;
	}
	pthread_mutex_lock(&l->lock);
	e = gw__find(l, ip, now_ms, false);
	if (e != NULL && e->open > 0) {
		e->open--;
	}
	pthread_mutex_unlock(&l->lock);
}

size_t
gw_iplimit_keys(gw_iplimit *l)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = l->nkeys;
	pthread_mutex_unlock(&l->lock);
	return n;
}
