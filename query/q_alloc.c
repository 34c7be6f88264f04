/*
 * Memory of the query engine: replaceable allocation functions (shared with
 * PCRE2 through general contexts) and the per-thread PCRE2 match block.
 */
#include <pthread.h>
#include <stdlib.h>

#include "q_internal.h"

static void *(*q__malloc_fn)(size_t) = malloc;
static void (*q__free_fn)(void *) = free;

void
q_query_set_alloc_funcs(void *(*malloc_fn)(size_t), void (*free_fn)(void *))
{
	q__malloc_fn = malloc_fn != NULL ? malloc_fn : malloc;
	q__free_fn = free_fn != NULL ? free_fn : free;
}

void *
q__malloc(size_t n)
{
	return q__malloc_fn(n);
}

void
q__free(void *p)
{
	if (p != NULL) {
		q__free_fn(p);
	}
}

void *
q__pcre2_malloc(PCRE2_SIZE n, void *data)
{
	return q__malloc(n);
}

void
q__pcre2_free(void *p, void *data)
{
	q__free(p);
}

/* One match block per thread: compiled queries stay immutable and
 * shareable, and matching allocates nothing once the block exists. */
static pthread_key_t q__md_key;
static pthread_once_t q__md_once = PTHREAD_ONCE_INIT;
static int q__md_key_ok;

static void
q__md_destroy(void *md)
{
	pcre2_match_data_free(md);
}

static void
q__md_init(void)
{
	q__md_key_ok = pthread_key_create(&q__md_key, q__md_destroy) == 0;
}

pcre2_match_data *
q__thread_match_data(void)
{
	pthread_once(&q__md_once, q__md_init);
	if (!q__md_key_ok) {
		return NULL;
	}
	pcre2_match_data *md = pthread_getspecific(q__md_key);
	if (md != NULL) {
		return md;
	}
	pcre2_general_context *gc = pcre2_general_context_create(
	        q__pcre2_malloc, q__pcre2_free, NULL);
	if (gc == NULL) {
		return NULL;
	}
	/* One pair is enough: we only ask whether the pattern matched. */
	md = pcre2_match_data_create(1, gc);
	pcre2_general_context_free(gc);
	if (md != NULL && pthread_setspecific(q__md_key, md) != 0) {
		pcre2_match_data_free(md);
		md = NULL;
	}
	return md;
}

void
q_query_thread_cleanup(void)
{
	pthread_once(&q__md_once, q__md_init);
	if (!q__md_key_ok) {
		return;
	}
	pcre2_match_data *md = pthread_getspecific(q__md_key);
	if (md != NULL) {
		pthread_setspecific(q__md_key, NULL);
		pcre2_match_data_free(md);
	}
}
