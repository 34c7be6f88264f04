/*
 * The set of subscribed topics with their reference counts: a small
 * chained hash table keyed by the topic bytes.
 */
#ifndef PS_TOPICS_H
#define PS_TOPICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ps__topic {
	struct ps__topic *next; /* hash chain */
	unsigned refs;
	bool confirmed;   /* the backend confirmed the subscription */
	bool syncing;     /* part of the re-subscription after a connect */
	uint64_t members; /* local hub: bit i set when member i subscribes */
	size_t len;
	char name[]; /* NUL-terminated */
} ps__topic;

typedef struct ps__topics ps__topics;

/* New empty table, or NULL. */
ps__topics *ps__topics_new(void);

/* Free the table and every entry; accepts NULL and clears *t. */
void ps__topics_destroy(ps__topics **t);

/* The entry of name, or NULL (borrowed: valid until removed). */
ps__topic *ps__topics_find(const ps__topics *t, const char *name, size_t len);

/* Add a new entry with refs 0 (borrowed), or NULL on -ENOMEM. */
ps__topic *ps__topics_add(ps__topics *t, const char *name, size_t len);

/* Remove and free entry e. */
void ps__topics_remove(ps__topics *t, ps__topic *e);

size_t ps__topics_count(const ps__topics *t);

/* Call fn for every entry (fn must not add or remove entries). */
void ps__topics_each(ps__topics *t, void (*fn)(ps__topic *e, void *arg),
                     void *arg);

#endif
