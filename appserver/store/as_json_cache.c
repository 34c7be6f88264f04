/* Parsed-JSON cache keyed by the text (see as_json_cache.h). */
#include "as_json_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct as__jslot {
	char *text; /* owned copy of the key, NUL-terminated */
	size_t len;
	json_t *value; /* one reference held by the slot */
} as__jslot;

struct as__jcache {
	pthread_mutex_t mu;
	as__jslot slots[AS__JCACHE_SLOTS];
};

as__jcache *
as__jcache_new(void)
{
	as__jcache *c = calloc(1, sizeof(*c));

	if (c != NULL) {
		pthread_mutex_init(&c->mu, NULL);
	}
	return c;
}

void
as__jcache_destroy(as__jcache **cp)
{
	as__jcache *c = cp ? *cp : NULL;

	if (c == NULL) {
		return;
	}
	for (size_t i = 0; i < AS__JCACHE_SLOTS; i++) {
		free(c->slots[i].text);
		json_decref(c->slots[i].value);
	}
	pthread_mutex_destroy(&c->mu);
	free(c);
	*cp = NULL;
}

/* FNV-1a: cheap, and the keys are not chosen by peers to collide
 * (a collision only costs a parse). */
static size_t
as__jhash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	}
	return h % AS__JCACHE_SLOTS;
}

json_t *
as__jcache_parse(as__jcache *c, const char *text, size_t len)
{
	as__jslot *slot;
	json_t *v;
	char *copy;

	if (len > AS__JCACHE_TEXT_MAX) {
		return json_loadb(text, len, 0, NULL);
	}
	slot = &c->slots[as__jhash(text, len)];
	pthread_mutex_lock(&c->mu);
	if (slot->value != NULL && slot->len == len &&
	    memcmp(slot->text, text, len) == 0) {
		v = json_incref(slot->value);
		pthread_mutex_unlock(&c->mu);
		return v;
	}
	pthread_mutex_unlock(&c->mu);

	/* Parse outside the lock: other threads keep hitting meanwhile. */
	v = json_loadb(text, len, 0, NULL);
	copy = v ? malloc(len + 1) : NULL;
	if (copy == NULL) {
		return v; /* still a correct answer, just not kept */
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	pthread_mutex_lock(&c->mu);
	free(slot->text);
	json_decref(slot->value);
	slot->text = copy;
	slot->len = len;
	slot->value = json_incref(v);
	pthread_mutex_unlock(&c->mu);
	return v;
}
