/* Keyed failure rate limits (see gw_limit.h). */
#include "gw_limit.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define GW__LIMIT_SWEEP_MS                                                    \
	1000 /* a full table is swept at most this often                      \
	      */

typedef struct gw__bucket {
	struct gw__bucket *next;
	double tokens; /* failures still allowed, refilled over time */
	int64_t last_ms;
	char key[GW_LIMIT_KEY_MAX + 1];
} gw__bucket;

struct gw_limit {
	double burst;   /* per_minute */
	double rate_ms; /* tokens per millisecond */
	size_t max_keys, nkeys, nbuckets;
	int64_t last_sweep_ms;
	gw__bucket **buckets;
};

gw_limit *
gw_limit_new(long per_minute, size_t max_keys)
{
	gw_limit *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		return NULL;
	}
	l->burst = per_minute > 0 ? (double)per_minute : 0.0;
	l->rate_ms = l->burst / 60000.0;
	l->max_keys = max_keys > 0 ? max_keys : 1;
	l->nbuckets = 1024;
	while (l->nbuckets < l->max_keys && l->nbuckets < (1u << 20)) {
		l->nbuckets *= 2;
	}
	l->buckets = calloc(l->nbuckets, sizeof(*l->buckets));
	if (l->buckets == NULL) {
		free(l);
		return NULL;
	}
	return l;
}

void
gw_limit_destroy(gw_limit **pl)
{
	gw_limit *l = pl ? *pl : NULL;

	if (l == NULL) {
		return;
	}
	for (size_t i = 0; i < l->nbuckets; i++) {
		gw__bucket *b = l->buckets[i];
		while (b != NULL) {
			gw__bucket *next = b->next;
			free(b);
			b = next;
		}
	}
	free(l->buckets);
	free(l);
	*pl = NULL;
}

static uint32_t
gw__hash(const char *key)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; key[i] != '\0' && i < GW_LIMIT_KEY_MAX; i++) {
		h = (h ^ (unsigned char)key[i]) * 16777619u;
	}
	return h;
}

static void
gw__refill(gw_limit *l, gw__bucket *b, int64_t now_ms)
{
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * l->rate_ms;
		if (b->tokens > l->burst) {
			b->tokens = l->burst;
		}
	}
	b->last_ms = now_ms;
}

static gw__bucket *
gw__find(gw_limit *l, const char *key, gw__bucket ***slot)
{
	gw__bucket **p = &l->buckets[gw__hash(key) & (l->nbuckets - 1)];

	for (; *p != NULL; p = &(*p)->next) {
		if (strncmp((*p)->key, key, GW_LIMIT_KEY_MAX) == 0) {
			break;
		}
	}
	*slot = p;
	return *p;
}

/* Drop the keys whose bucket is full again: they carry no state. */
static void
gw__sweep(gw_limit *l, int64_t now_ms)
{
	l->last_sweep_ms = now_ms;
	for (size_t i = 0; i < l->nbuckets; i++) {
		gw__bucket **p = &l->buckets[i];
		while (*p != NULL) {
			gw__bucket *b = *p;
			gw__refill(l, b, now_ms);
			if (b->tokens >= l->burst) {
				*p = b->next;
				free(b);
				l->nkeys--;
			} else {
				p = &b->next;
			}
		}
	}
}

int
gw_limit_check(gw_limit *l, const char *key, int64_t now_ms)
{
	gw__bucket **slot;
	gw__bucket *b;

	if (l == NULL || l->burst <= 0.0) {
		return 0;
	}
	b = gw__find(l, key, &slot);
	if (b == NULL) {
		if (l->nkeys < l->max_keys) {
			return 0;
		}
		if (now_ms - l->last_sweep_ms >= GW__LIMIT_SWEEP_MS) {
			gw__sweep(l, now_ms);
		}
		/* every tracked key is recent: refuse the unknown ones */
		return l->nkeys < l->max_keys ? 0 : 1;
	}
	gw__refill(l, b, now_ms);
	if (b->tokens >= 1.0) {
		return 0;
	}
	{
		double secs = (1.0 - b->tokens) / l->rate_ms / 1000.0;
		int whole = (int)secs;
		return whole < secs ? whole + 1 : (whole > 0 ? whole : 1);
	}
}

void
gw_limit_fail(gw_limit *l, const char *key, int64_t now_ms)
{
	gw__bucket **slot;
	gw__bucket *b;

	if (l == NULL || l->burst <= 0.0) {
		return;
	}
	b = gw__find(l, key, &slot);
	if (b == NULL) {
		if (l->nkeys >= l->max_keys) {
			gw__sweep(l, now_ms);
			if (l->nkeys >= l->max_keys) {
				return; /* check refuses unknown keys meanwhile
				         */
			}
			b = gw__find(l, key, &slot);
		}
		b = calloc(1, sizeof(*b));
		if (b == NULL) {
			return;
		}
		strncpy(b->key, key, GW_LIMIT_KEY_MAX);
		b->tokens = l->burst;
		b->last_ms = now_ms;
		*slot = b;
		l->nkeys++;
	}
	gw__refill(l, b, now_ms);
	b->tokens -= 1.0;
	if (b->tokens < -l->burst) {
		b->tokens = -l->burst; /* at most two minutes of penalty */
	}
}

size_t
gw_limit_keys(const gw_limit *l)
{
	return l != NULL ? l->nkeys : 0;
}
