/*
 * The LightStream query language (docs/query.md): compile once, evaluate many
 * times.
 *
 * A query is compiled at subscribe time (paths split, regexes compiled
 * with match limits, constants typed). Evaluation in "any" mode allocates
 * nothing; "select" mode builds the reduced message.
 *
 * Compiled queries are immutable and may be evaluated from several threads
 * at once.
 */
#ifndef Q_QUERY_H
#define Q_QUERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "ls_error.h"

/* Limits of docs/query.md. */
#define Q_MAX_DEPTH       16
#define Q_MAX_NODES       64
#define Q_MAX_QUERY_BYTES 4096
#define Q_MAX_REGEX_BYTES 256
#define Q_MAX_IN_VALUES   256

/*
 * The cost budget of one evaluation of one query on one message, in steps
 * (docs/query.md, "Cost budget"): every expression visited, path segment
 * looked up, array element visited, value compared, regex engine step
 * and stretch of bytes scanned is charged to it. A query that runs out
 * is "too costly" (LS_ECOSTLY) for that message rather than a match or
 * not. Calibrated so that a step is at most about 10 ns: the worst
 * evaluation costs about a millisecond.
 */
#define Q_EVAL_BUDGET 50000L

typedef struct q_query q_query;

/*
 * Compile a query from its JSON text (len bytes, need not be
 * NUL-terminated). On success *out is a new query and 0 is returned. On
 * failure returns LS_EINVALIDQUERY and err (may be NULL) says which node
 * and why, e.g. "where.and[1].op: unknown operator 'lt'"; -ENOMEM (with
 * err->code -ENOMEM) when memory runs out, except that jansson's parser
 * reports some allocation failures as invalid JSON.
 */
int q_query_compile_text(const char *text, size_t len, q_query **out,
                         ls_error *err);

/*
 * Same from a parsed JSON value (borrowed). The serialized size limit is
 * checked on the compact serialization of spec.
 */
int q_query_compile(const json_t *spec, q_query **out, ls_error *err);

/* Free a query; accepts NULL and clears *q. */
void q_query_destroy(q_query **q);

/* True for "select" mode. */
bool q_query_is_select(const q_query *q);

/*
 * "any" mode test: does where hold for msg (borrowed)? For a select query
 * this is true when at least one element of the array matches (the
 * elements after it are not visited). Returns 1, 0, or LS_ECOSTLY when
 * the evaluation ran out of its budget. When steps is not NULL it
 * receives the steps used. Allocates nothing.
 */
int q_query_test(const q_query *q, const json_t *msg, long *steps);

/* q_query_test() == 1: an evaluation over budget does not match. */
bool q_query_matches(const q_query *q, const json_t *msg);

/*
 * Evaluate q on msg (borrowed) and produce the message to deliver.
 * Returns 1 and sets *out (new reference) on a match, 0 when nothing is to
 * be delivered, -ENOMEM, or LS_ECOSTLY when the evaluation ran out of its
 * budget (*out is then NULL). In "any" mode *out is msg itself
 * (incref'ed); in "select" mode it is a copy with the array reduced.
 */
int q_query_apply(const q_query *q, json_t *msg, json_t **out);

/* q_query_apply() that also reports the steps used (steps may be NULL). */
int q_query_apply_steps(const q_query *q, json_t *msg, json_t **out,
                        long *steps);

/*
 * Route the engine's own memory and PCRE2's through malloc_fn/free_fn
 * (NULL restores malloc/free). Call before compiling anything, from one
 * thread; jansson has its own json_set_alloc_funcs().
 */
void q_query_set_alloc_funcs(void *(*malloc_fn)(size_t),
                             void (*free_fn)(void *));

/*
 * Free the calling thread's regex match block and match context. They are
 * created by the first regex compile or evaluation on a thread and
 * otherwise released when the thread exits; call this before checking for
 * leaks or unloading.
 */
void q_query_thread_cleanup(void);

#endif
