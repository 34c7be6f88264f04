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

/* One match block and match context per thread: compiled queries stay
 * immutable and shareable, each evaluation sets its own budget on the
 * context, and matching allocates nothing once they exist. */
static pthread_key_t q__md_key;
static pthread_once_t q__md_once = PTHREAD_ONCE_INIT;
static int q__md_key_ok;

static void
q__tls_destroy(void *p)
{
	struct q_regex_tls *t = p;

	pcre2_match_data_free(t->md);
	pcre2_match_context_free(t->mctx);
	q__free(t);
}

static void
q__md_init(void)
{
	q__md_key_ok = pthread_key_create(&q__md_key, q__tls_destroy) == 0;
}

struct q_regex_tls *
q__thread_regex(void)
{
	pthread_once(&q__md_once, q__md_init);
	if (!q__md_key_ok) {
		return NULL;
	}
	struct q_regex_tls *t = pthread_getspecific(q__md_key);
	if (t != NULL) {
		return t;
	}
	t = q__malloc(sizeof(*t));
	if (t == NULL) {
		return NULL;
	}
	pcre2_general_context *gc = pcre2_general_context_create(
	        q__pcre2_malloc, q__pcre2_free, NULL);
	if (gc == NULL) {
		q__free(t);
		return NULL;
	}
	/* One pair is enough: we only ask whether the pattern matched. */
	t->md = pcre2_match_data_create(1, gc);
	t->mctx = pcre2_match_context_create(gc);
	pcre2_general_context_free(gc);
	if (t->md == NULL || t->mctx == NULL ||
	    pthread_setspecific(q__md_key, t) != 0) {
		q__tls_destroy(t);
		return NULL;
	}
	pcre2_set_depth_limit(t->mctx, Q_REGEX_DEPTH_LIMIT);
	pcre2_set_heap_limit(t->mctx, Q_REGEX_HEAP_KIB);
	return t;
}

void
q_query_thread_cleanup(void)
{
	pthread_once(&q__md_once, q__md_init);
	if (!q__md_key_ok) {
		return;
	}
	struct q_regex_tls *t = pthread_getspecific(q__md_key);
	if (t != NULL) {
		pthread_setspecific(q__md_key, NULL);
		q__tls_destroy(t);
	}
}
