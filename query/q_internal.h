/*
 * Internals of the query engine shared by its source files and its unit
 * tests. Not part of the public interface.
 */
#ifndef Q_INTERNAL_H
#define Q_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8

#include <jansson.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q_query.h"

/* Segments of one dot path; more is an invalid query. */
#define Q_MAX_PATH_SEGMENTS 32
/* Largest array index a numeric path segment may name. */
#define Q_MAX_PATH_INDEX 99999999L

/* PCRE2 limits of one match (see docs/query.md); the match steps are
 * bounded by what is left of the evaluation's budget. */
#define Q_REGEX_DEPTH_LIMIT 1000
#define Q_REGEX_HEAP_KIB    1024
#define Q_REGEX_PARENS_NEST 64

/*
 * What an evaluation charges to its budget (Q_EVAL_BUDGET), in steps.
 * Bytes are charged by the stretch: one step per Q_SCAN_BYTES bytes a
 * search or a regex scans, per Q_FOLD_BYTES bytes case-folded.
 */
#define Q_SCAN_BYTES       8
#define Q_FOLD_BYTES       8
#define Q_REGEX_SCAN_BYTES 4 /* PCRE2's search for a place to start */
/*
 * Safety net for regex work the step count would not see: an evaluation
 * whose regexes used this much CPU time (the thread's, so that a busy
 * machine does not end anyone's query) is over budget. The clock is read
 * every Q_CLOCK_EVERY engine steps, first after that many: ordinary
 * matches never read it.
 */
#define Q_REGEX_CPU_NS 5000000L
#define Q_CLOCK_EVERY  256

/* One evaluation's budget; over is set once it ran out. */
struct q_eval {
	long left;
	bool over;
	/* regex accounting (callouts of the running match) */
	const char *pattern; /* of the running match */
	size_t pattern_len;
	size_t lastpos;
	unsigned ticks;
	int64_t deadline_ns; /* thread CPU time; 0 until the first reading */
};

/* Charge n steps; false once the budget is spent. */
static inline bool
q__charge(struct q_eval *ev, long n)
{
	ev->left -= n;
	if (ev->left < 0) {
		ev->over = true;
	}
	return !ev->over;
}

enum q_kind {
	Q_AND,
	Q_OR,
	Q_NOT,
	Q_LEAF,
};

enum q_op {
	Q_OP_EQUALS,
	Q_OP_NOT_EQUALS,
	Q_OP_LESS,
	Q_OP_LESS_EQUALS,
	Q_OP_GREATER,
	Q_OP_GREATER_EQUALS,
	Q_OP_BETWEEN,
	Q_OP_IN,
	Q_OP_NOT_IN,
	Q_OP_CONTAINS,
	Q_OP_STARTS_WITH,
	Q_OP_ENDS_WITH,
	Q_OP_MATCH,
	Q_OP_EXISTS,
	Q_OP_NOT_EXISTS,
	Q_OP_IS_EMPTY,
	Q_OP_TYPE,
	Q_OP_COUNT,
};

/* One segment of a dot path. index >= 0 when the segment is a number. */
struct q_seg {
	const char *key;
	size_t len;
	long index;
};

/* A split dot path; "" has no segments and names the value itself. */
struct q_path {
	struct q_seg *segs; /* owned; keys point into the same block */
	uint32_t nseg;
};

/* Bit per JSON type for the "type" operator. */
enum {
	Q_TYPE_STRING = 1 << 0,
	Q_TYPE_NUMBER = 1 << 1,
	Q_TYPE_BOOLEAN = 1 << 2,
	Q_TYPE_OBJECT = 1 << 3,
	Q_TYPE_ARRAY = 1 << 4,
	Q_TYPE_NULL = 1 << 5,
};

/*
 * A compiled expression. Nodes are laid out in pre-order in one array:
 * the children of an and/or/not node start right after it and each
 * child's subtree spans `size` nodes, so evaluation walks the array
 * without pointers.
 */
struct q_node {
	uint8_t kind;  /* enum q_kind */
	uint8_t op;    /* enum q_op, leaves only */
	uint8_t icase; /* ignoreCase */
	uint8_t types; /* Q_TYPE_* mask for "type" */
	uint16_t size; /* nodes in this subtree, itself included */
	struct q_path path;
	json_t *value;   /* owned copy of "value", or NULL */
	const char *str; /* string constant (ASCII-folded when icase) */
	size_t len;
	char *fold;     /* owned folded copy behind str, or NULL */
	pcre2_code *re; /* owned, "match" only */
};

struct q_query {
	bool select;
	struct q_path sel_path;
	uint32_t nnodes;
	struct q_node nodes[]; /* nnodes */
};

/* Memory of the engine and of PCRE2 (q_query_set_alloc_funcs). */
void *q__malloc(size_t n);
void q__free(void *p);
void *q__pcre2_malloc(PCRE2_SIZE n, void *data);
void q__pcre2_free(void *p, void *data);

/* The calling thread's regex state: match block and match context. */
struct q_regex_tls {
	pcre2_match_data *md;
	pcre2_match_context *mctx; /* depth and heap limits, our callout */
};

/*
 * The calling thread's regex state, created on first use and freed at
 * thread exit or by q_query_thread_cleanup(). NULL when out of memory.
 */
struct q_regex_tls *q__thread_regex(void);

/*
 * Split path s (len bytes) at dots into *out. Returns 0, -EINVAL with
 * *why set to a static reason, or -ENOMEM.
 */
int q__path_split(const char *s, size_t len, struct q_path *out,
                  const char **why);
void q__path_free(struct q_path *p);

/*
 * The value at path p inside v (borrowed), or NULL when missing. Each
 * segment looked up costs a step (and one per Q_SCAN_BYTES of its key,
 * which is hashed).
 */
static inline const json_t *
q__path_resolve(const struct q_path *p, const json_t *v, struct q_eval *ev)
{
	for (uint32_t i = 0; i < p->nseg && v != NULL; i++) {
		const struct q_seg *s = &p->segs[i];
		if (!q__charge(ev, 1 + (long)(s->len / Q_SCAN_BYTES))) {
			return NULL;
		}
		if (json_is_object(v)) {
			v = json_object_getn(v, s->key, s->len);
		} else if (json_is_array(v) && s->index >= 0) {
			v = json_array_get(v, (size_t)s->index);
		} else {
			return NULL;
		}
	}
	return v;
}

/* Order of two JSON numbers, integers and reals mixed exactly: <0, 0, >0. */
int q__num_cmp(const json_t *a, const json_t *b);

/*
 * Deep equality: numbers by value (1 == 1.0), strings by bytes (ASCII
 * case-folded when icase), arrays element-wise, objects by key set. Each
 * pair of values compared costs a step (and strings their bytes); false
 * once ev is over budget. ev may be NULL: not counted.
 */
bool q__equal(const json_t *a, const json_t *b, bool icase, struct q_eval *ev);

/*
 * Reasons a regular expression is refused before PCRE2 sees it: (*VERB)s
 * and callouts. Returns NULL, or a static reason with *at set to the
 * offset.
 */
const char *q__regex_refused(const char *p, size_t n, size_t *at);

/* ASCII case folding of one byte. */
static inline unsigned char
q__fold(unsigned char c)
{
	return (unsigned char)((unsigned)(c - 'A') < 26u ? c | 0x20 : c);
}

/* Free what a node owns (not the node itself). */
void q__node_clear(struct q_node *n);

#endif
