/*
 * In-memory stream history: a hash of per-stream records, each holding its
 * messages oldest first; every message is also on one store-wide list in
 * append order, so the store's byte bound evicts the oldest message of all
 * streams (always the head of its own stream) in O(1).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ls_crypto.h"
#include "ps_history.h"

#define PS_HIST_EPOCH_BYTES 9 /* 72 random bits: 12 base64url chars */

typedef struct ps__hrec ps__hrec;

typedef struct ps__hent {
	struct ps__hent *snext;         /* newer in the same stream */
	struct ps__hent *gprev, *gnext; /* store-wide, append order */
	ps__hrec *rec;
	uint64_t offset;
	int64_t expires_ms;
	size_t len;
	char data[]; /* NUL-terminated */
} ps__hent;

struct ps__hrec {
	ps__hrec *hnext;
	uint32_t hash;
	uint64_t last; /* latest offset */
	ps__hent *head, *tail;
	size_t count;
	unsigned size;
	int64_t ttl_ms;
	int64_t touched_ms;
	char epoch[PS_EPOCH_MAX + 1];
	size_t tlen;
	char topic[];
};

struct ps__hist {
	ps__hrec **buckets;
	size_t nbuckets;
	size_t nrecs;
	ps__hent *ghead, *gtail;
	size_t bytes;
	size_t max_bytes;
};

static uint32_t
ps__hhash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	}
	return h;
}

ps__hist *
ps__hist_new(size_t max_bytes)
{
	ps__hist *h = calloc(1, sizeof(*h));

	if (h == NULL) {
		return NULL;
	}
	h->max_bytes = max_bytes ? max_bytes : PS_HISTORY_BYTES_DEFAULT;
	return h;
}

static size_t
ps__hent_bytes(const ps__hent *e)
{
	return sizeof(*e) + e->len + 1;
}

static size_t
ps__hrec_bytes(const ps__hrec *r)
{
	return sizeof(*r) + r->tlen + 1;
}

/* Remove the oldest message of r (r->head). */
static void
ps__hist_drop_head(ps__hist *h, ps__hrec *r)
{
	ps__hent *e = r->head;

	r->head = e->snext;
	if (r->head == NULL) {
		r->tail = NULL;
	}
	r->count--;
	if (e->gprev != NULL) {
		e->gprev->gnext = e->gnext;
	} else {
		h->ghead = e->gnext;
	}
	if (e->gnext != NULL) {
		e->gnext->gprev = e->gprev;
	} else {
		h->gtail = e->gprev;
	}
	h->bytes -= ps__hent_bytes(e);
	free(e);
}

static void
ps__hist_expire(ps__hist *h, ps__hrec *r, int64_t now_ms)
{
	while (r->head != NULL && r->head->expires_ms <= now_ms) {
		ps__hist_drop_head(h, r);
	}
}

void
ps__hist_destroy(ps__hist **hp)
{
	ps__hist *h;

	if (hp == NULL || *hp == NULL) {
		return;
	}
	h = *hp;
	for (size_t i = 0; i < h->nbuckets; i++) {
		ps__hrec *r = h->buckets[i];
		while (r != NULL) {
			ps__hrec *next = r->hnext;
			while (r->head != NULL) {
				ps__hist_drop_head(h, r);
			}
			free(r);
			r = next;
		}
	}
	free(h->buckets);
	free(h);
	*hp = NULL;
}

static ps__hrec *
ps__hist_find(const ps__hist *h, const char *topic, size_t tlen, uint32_t hash)
{
	if (h->nbuckets == 0) {
		return NULL;
	}
	for (ps__hrec *r = h->buckets[hash & (h->nbuckets - 1)]; r != NULL;
	     r = r->hnext) {
		if (r->hash == hash && r->tlen == tlen &&
		    memcmp(r->topic, topic, tlen) == 0) {
			return r;
		}
	}
	return NULL;
}

static int
ps__hist_grow(ps__hist *h)
{
	size_t n = h->nbuckets ? h->nbuckets * 2 : 64;
	ps__hrec **b = calloc(n, sizeof(*b));

	if (b == NULL) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < h->nbuckets; i++) {
		ps__hrec *r = h->buckets[i];
		while (r != NULL) {
			ps__hrec *next = r->hnext;
			r->hnext = b[r->hash & (n - 1)];
			b[r->hash & (n - 1)] = r;
			r = next;
		}
	}
	free(h->buckets);
	h->buckets = b;
	h->nbuckets = n;
	return 0;
}

/* The record of topic, created (with a new random epoch) when missing. */
static ps__hrec *
ps__hist_get(ps__hist *h, const char *topic, size_t tlen, int64_t now_ms)
{
	uint32_t hash = ps__hhash(topic, tlen);
	ps__hrec *r = ps__hist_find(h, topic, tlen, hash);
	unsigned char raw[PS_HIST_EPOCH_BYTES];

	if (r != NULL) {
		return r;
	}
	if (h->nrecs + 1 > h->nbuckets && ps__hist_grow(h) != 0) {
		return NULL;
	}
	r = calloc(1, sizeof(*r) + tlen + 1);
	if (r == NULL) {
		return NULL;
	}
	if (ls_random_bytes(raw, sizeof(raw)) != 0 ||
	    ls_base64url_encode(raw, sizeof(raw), r->epoch, sizeof(r->epoch)) <
	            0) {
		free(r);
		return NULL;
	}
	memcpy(r->topic, topic, tlen);
	r->tlen = tlen;
	r->hash = hash;
	r->size = PS_HISTORY_SIZE_DEFAULT;
	r->ttl_ms = (int64_t)PS_HISTORY_TTL_DEFAULT * 1000;
	r->touched_ms = now_ms;
	r->hnext = h->buckets[hash & (h->nbuckets - 1)];
	h->buckets[hash & (h->nbuckets - 1)] = r;
	h->nrecs++;
	h->bytes += ps__hrec_bytes(r);
	return r;
}

int
ps__hist_append(ps__hist *h, const char *topic, size_t tlen, const char *data,
                size_t len, const ps_history_cfg *cfg, int64_t now_ms,
                uint64_t *offset, const char **epoch)
{
	ps__hrec *r = ps__hist_get(h, topic, tlen, now_ms);
	ps__hent *e;

	if (r == NULL) {
		return -ENOMEM;
	}
	e = malloc(sizeof(*e) + len + 1);
	if (e == NULL) {
		return -ENOMEM;
	}
	r->size = cfg->size;
	r->ttl_ms = (int64_t)cfg->ttl * 1000;
	r->touched_ms = now_ms;
	e->snext = NULL;
	e->rec = r;
	e->offset = ++r->last;
	e->expires_ms = now_ms + r->ttl_ms;
	e->len = len;
	memcpy(e->data, data, len);
	e->data[len] = '\0';
	if (r->tail != NULL) {
		r->tail->snext = e;
	} else {
		r->head = e;
	}
	r->tail = e;
	r->count++;
	e->gnext = NULL;
	e->gprev = h->gtail;
	if (h->gtail != NULL) {
		h->gtail->gnext = e;
	} else {
		h->ghead = e;
	}
	h->gtail = e;
	h->bytes += ps__hent_bytes(e);
	ps__hist_expire(h, r, now_ms);
	while (r->count > r->size) {
		ps__hist_drop_head(h, r);
	}
	/* The store's bound: the oldest messages of all streams go first,
	 * but never the one just appended. */
	while (h->bytes > h->max_bytes && h->ghead != NULL && h->ghead != e) {
		ps__hist_drop_head(h, h->ghead->rec);
	}
	*offset = e->offset;
	if (epoch != NULL) {
		*epoch = r->epoch;
	}
	return 0;
}

int
ps__hist_read(ps__hist *h, const char *topic, size_t tlen, uint64_t since,
              size_t limit, int64_t now_ms, ps_history_result *out)
{
	ps__hrec *r = ps__hist_get(h, topic, tlen, now_ms);
	ps_history_msg *msgs = NULL;
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	if (r == NULL) {
		return -ENOMEM;
	}
	r->touched_ms = now_ms;
	ps__hist_expire(h, r, now_ms);
	out->epoch = r->epoch;
	out->latest = r->last;
	/* Offsets in a record are consecutive: it holds every message after
	 * since when the next one is its oldest or later. */
	out->complete =
	        since == r->last || (since < r->last && r->head != NULL &&
	                             r->head->offset <= since + 1);
	if (limit > 0 && since < r->last) {
		size_t want = (size_t)(r->last - since);
		if (want > limit) {
			want = limit;
		}
		msgs = calloc(want < r->count ? want
		              : r->count      ? r->count
		                              : 1,
		              sizeof(*msgs));
		if (msgs == NULL) {
			return -ENOMEM;
		}
		for (ps__hent *e = r->head; e != NULL && n < want;
		     e = e->snext) {
			if (e->offset <= since) {
				continue;
			}
			msgs[n].offset = e->offset;
			msgs[n].data = e->data;
			msgs[n].len = e->len;
			n++;
		}
	}
	out->msgs = msgs;
	out->count = n;
	return 0;
}

void
ps__hist_sweep(ps__hist *h, int64_t now_ms,
               bool (*keep)(const char *topic, size_t tlen, void *arg),
               void *arg)
{
	for (size_t i = 0; i < h->nbuckets; i++) {
		ps__hrec **pp = &h->buckets[i];
		while (*pp != NULL) {
			ps__hrec *r = *pp;
			ps__hist_expire(h, r, now_ms);
			if (r->count == 0 &&
			    now_ms - r->touched_ms >= r->ttl_ms &&
			    (keep == NULL || !keep(r->topic, r->tlen, arg))) {
				*pp = r->hnext;
				h->nrecs--;
				h->bytes -= ps__hrec_bytes(r);
				free(r);
				continue;
			}
			pp = &r->hnext;
		}
	}
}

size_t
ps__hist_bytes(const ps__hist *h)
{
	return h->bytes;
}

size_t
ps__hist_streams(const ps__hist *h)
{
	return h->nrecs;
}
