#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ps_topics.h"

#define PS_TOPICS_INITIAL 64

struct ps__topics {
	ps__topic **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
};

/* FNV-1a: topics are short and chosen by authenticated clients. */
static uint64_t
ps__hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

ps__topics *
ps__topics_new(void)
{
	ps__topics *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		return NULL;
	}
	t->buckets = calloc(PS_TOPICS_INITIAL, sizeof(*t->buckets));
	if (t->buckets == NULL) {
		free(t);
		return NULL;
	}
	t->nbuckets = PS_TOPICS_INITIAL;
	return t;
}

void
ps__topics_destroy(ps__topics **tp)
{
	if (tp == NULL || *tp == NULL) {
		return;
	}
	ps__topics *t = *tp;
	for (size_t i = 0; i < t->nbuckets; i++) {
		ps__topic *e = t->buckets[i];
		while (e != NULL) {
			ps__topic *next = e->next;
			free(e);
			e = next;
		}
	}
	free(t->buckets);
	free(t);
	*tp = NULL;
}

ps__topic *
ps__topics_find(const ps__topics *t, const char *name, size_t len)
{
	ps__topic *e = t->buckets[ps__hash(name, len) & (t->nbuckets - 1)];
	for (; e != NULL; e = e->next) {
		if (e->len == len && memcmp(e->name, name, len) == 0) {
			return e;
		}
	}
	return NULL;
}

static void
ps__topics_grow(ps__topics *t)
{
	size_t n = t->nbuckets * 2;
	ps__topic **b = calloc(n, sizeof(*b));
	if (b == NULL) {
		return; /* longer chains, still correct */
	}
	for (size_t i = 0; i < t->nbuckets; i++) {
		ps__topic *e = t->buckets[i];
		while (e != NULL) {
			ps__topic *next = e->next;
			size_t k = ps__hash(e->name, e->len) & (n - 1);
			e->next = b[k];
			b[k] = e;
			e = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

ps__topic *
ps__topics_add(ps__topics *t, const char *name, size_t len)
{
	ps__topic *e = calloc(1, sizeof(*e) + len + 1);
	if (e == NULL) {
		return NULL;
	}
	memcpy(e->name, name, len);
	e->len = len;
	if (t->count >= t->nbuckets) {
		ps__topics_grow(t);
	}
	size_t k = ps__hash(name, len) & (t->nbuckets - 1);
	e->next = t->buckets[k];
	t->buckets[k] = e;
	t->count++;
	return e;
}

void
ps__topics_remove(ps__topics *t, ps__topic *e)
{
	ps__topic **pp =
	        &t->buckets[ps__hash(e->name, e->len) & (t->nbuckets - 1)];
	for (; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			t->count--;
			free(e);
			return;
		}
	}
}

size_t
ps__topics_count(const ps__topics *t)
{
	return t->count;
}

void
ps__topics_each(ps__topics *t, void (*fn)(ps__topic *e, void *arg), void *arg)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (ps__topic *e = t->buckets[i]; e != NULL; e = e->next) {
			fn(e, arg);
		}
	}
}
