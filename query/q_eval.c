/*
 * Evaluation of compiled queries. Nothing here allocates except
 * q_query_apply building a "select" result and the per-thread PCRE2 state
 * created once per thread.
 *
 * Every evaluation carries a budget (struct q_eval, Q_EVAL_BUDGET steps)
 * charged for everything it does: nodes, path segments, array elements,
 * comparisons, bytes scanned and regex engine steps. Once it is spent the
 * evaluation unwinds (every loop checks ev->over) and reports LS_ECOSTLY.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include "q_internal.h"

/* Haystack bytes folded at a time by the case-insensitive substring
 * search; the chunk buffer lives on the stack. */
#define Q_FOLD_CHUNK 4096

int
q__num_cmp(const json_t *a, const json_t *b)
{
	if (json_is_integer(a) && json_is_integer(b)) {
		json_int_t x = json_integer_value(a);
		json_int_t y = json_integer_value(b);
		return (x > y) - (x < y);
	}
	if (json_is_real(a) && json_is_real(b)) {
		double x = json_real_value(a), y = json_real_value(b);
		return (x > y) - (x < y);
	}
	/* One integer, one real: compare without rounding the integer
	 * through a double (2^53 + 1 must not equal 2^53). */
	int sign = 1;
	if (json_is_integer(a)) {
		const json_t *t = a;
		a = b;
		b = t;
		sign = -1;
	}
	double d = json_real_value(a);
	json_int_t i = json_integer_value(b);
	int r;
	if (d >= 9223372036854775808.0) {
		r = 1;
	} else if (d < -9223372036854775808.0) {
		r = -1;
	} else {
		long long t = (long long)d; /* toward zero, in range */
		if (t != i) {
			r = t < i ? -1 : 1;
		} else {
			double frac = d - (double)t;
			r = (frac > 0) - (frac < 0);
		}
	}
	return sign * r;
}

static bool
q__bytes_eq(const char *a, const char *b, size_t n, bool icase)
{
	if (!icase) {
		return memcmp(a, b, n) == 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (q__fold((unsigned char)a[i]) !=
		    q__fold((unsigned char)b[i])) {
			return false;
		}
	}
	return true;
}

static bool
q__equal_ev(const json_t *a, const json_t *b, bool icase, struct q_eval *ev)
{
	if (!q__charge(ev, 1)) {
		return false;
	}
	if (json_is_number(a) && json_is_number(b)) {
		return q__num_cmp(a, b) == 0;
	}
	if (json_typeof(a) != json_typeof(b)) {
		return false;
	}
	switch (json_typeof(a)) {
	case JSON_STRING: {
		size_t n = json_string_length(a);
		return n == json_string_length(b) &&
		       q__charge(ev, (long)(n / (icase ? Q_FOLD_BYTES
		                                       : Q_SCAN_BYTES))) &&
		       q__bytes_eq(json_string_value(a), json_string_value(b),
		                   n, icase);
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(a);
		if (n != json_array_size(b)) {
			return false;
		}
		for (size_t i = 0; i < n; i++) {
			if (!q__equal_ev(json_array_get(a, i),
			                 json_array_get(b, i), icase, ev)) {
				return false;
			}
		}
		return true;
	}
	case JSON_OBJECT: {
		if (json_object_size(a) != json_object_size(b)) {
			return false;
		}
		const char *key;
		size_t klen;
		json_t *va;
		json_object_keylen_foreach((json_t *)a, key, klen, va)
		{
			/* the lookup hashes the key */
			if (!q__charge(ev, 2 + (long)(klen / Q_SCAN_BYTES))) {
				return false;
			}
			const json_t *vb = json_object_getn(b, key, klen);
			if (vb == NULL || !q__equal_ev(va, vb, icase, ev)) {
				return false;
			}
		}
		return true;
	}
	default: /* true, false, null: same type is enough */
		return true;
	}
}

bool
q__equal(const json_t *a, const json_t *b, bool icase, struct q_eval *ev)
{
	struct q_eval unbounded = { .left = LONG_MAX };

	return q__equal_ev(a, b, icase, ev != NULL ? ev : &unbounded);
}

/* Order for less/greater/between: false when the types do not compare
 * (or the budget ran out comparing strings). */
static bool
q__order(const json_t *v, const json_t *c, int *cmp, struct q_eval *ev)
{
	if (json_is_number(v) && json_is_number(c)) {
		*cmp = q__num_cmp(v, c);
		return true;
	}
	if (json_is_string(v) && json_is_string(c)) {
		size_t n1 = json_string_length(v), n2 = json_string_length(c);
		size_t n = n1 < n2 ? n1 : n2;
		if (!q__charge(ev, (long)(n / Q_SCAN_BYTES))) {
			return false;
		}
		int r = memcmp(json_string_value(v), json_string_value(c), n);
		*cmp = r != 0 ? r : (n1 > n2) - (n1 < n2);
		return true;
	}
	return false;
}

/* Case-insensitive substring: fold the haystack chunk by chunk into a
 * stack buffer and let memmem (linear time) do the search. needle is
 * already folded. */
static bool
q__contains_icase(const char *hay, size_t hlen, const char *needle,
                  size_t nlen)
{
	char buf[Q_FOLD_CHUNK + Q_MAX_QUERY_BYTES];

	if (nlen == 0) {
		return true;
	}
	if (nlen > Q_MAX_QUERY_BYTES) {
		return false; /* cannot happen: bounded by the query size */
	}
	for (size_t pos = 0; pos + nlen <= hlen; pos += Q_FOLD_CHUNK) {
		size_t n = hlen - pos;
		if (n > Q_FOLD_CHUNK + nlen - 1) {
			n = Q_FOLD_CHUNK + nlen - 1;
		}
		for (size_t i = 0; i < n; i++) {
			buf[i] = (char)q__fold((unsigned char)hay[pos + i]);
		}
		if (memmem(buf, n, needle, nlen) != NULL) {
			return true;
		}
	}
	return false;
}

/* CPU time of the calling thread. */
static int64_t
q__cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
		return 0;
	}
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * The least count of a counted repeat ("\\w{5000}", "[a-z]{300,}") that
 * ends the item text p (n bytes), else 0. Such an item may scan that far
 * and then fail, all within one engine step.
 */
static long
q__item_min_count(const char *p, size_t n)
{
	if (n < 3 || (p[n - 1] != '}' && p[n - 1] != '+' && p[n - 1] != '?')) {
		return 0;
	}
	size_t i = n;
	while (i > 0 && p[i - 1] != '{') {
		i--;
	}
	long m = 0;
	for (; i > 0 && i < n && p[i] >= '0' && p[i] <= '9' && m < 1000000;
	     i++) {
		m = m * 10 + (p[i] - '0');
	}
	return m;
}

/*
 * Called by PCRE2 before every item of the pattern it tries (the pattern
 * was compiled with auto-callouts): one step, plus the bytes the engine
 * moved over since the last call, plus what a counted repeat may scan
 * before it fails. Returning a negative value abandons the match.
 */
static int
q__callout(pcre2_callout_block *cb, void *data)
{
	struct q_eval *ev = data;
	size_t pos = cb->current_position;
	size_t moved =
	        pos > ev->lastpos ? pos - ev->lastpos : ev->lastpos - pos;
	long scan = (long)(moved / Q_SCAN_BYTES);

	ev->lastpos = pos;
	/* PCRE2's item positions are trusted only within the pattern. */
	if (cb->next_item_length > 2 &&
	    cb->pattern_position < ev->pattern_len) {
		size_t n = cb->next_item_length;
		if (n > ev->pattern_len - cb->pattern_position) {
			n = ev->pattern_len - cb->pattern_position;
		}
		scan += q__item_min_count(ev->pattern + cb->pattern_position,
		                          n) /
		        Q_SCAN_BYTES;
	}
	if (!q__charge(ev, 1 + scan)) {
		return PCRE2_ERROR_CALLOUT;
	}
	if (++ev->ticks % Q_CLOCK_EVERY == 0) {
		int64_t now = q__cpu_ns();
		if (ev->deadline_ns == 0) {
			ev->deadline_ns = now + Q_REGEX_CPU_NS;
		} else if (now > ev->deadline_ns) {
			ev->over = true;
			return PCRE2_ERROR_CALLOUT;
		}
	}
	return 0;
}

static bool
q__regex(const struct q_node *n, const json_t *v, struct q_eval *ev)
{
	struct q_regex_tls *t = q__thread_regex();
	size_t len = json_string_length(v);

	if (t == NULL) {
		return false;
	}
	/* The engine's own scans for a place to start, unseen by the
	 * callouts, read the subject at most once. */
	if (!q__charge(ev, 1 + (long)(len / Q_REGEX_SCAN_BYTES))) {
		return false;
	}
	ev->lastpos = 0;
	ev->pattern = json_string_value(n->value);
	ev->pattern_len = n->len;
	/* PCRE2 counts its own steps too (differently with and without
	 * JIT): never more than what is left. */
	pcre2_set_match_limit(
	        t->mctx,
	        (uint32_t)(ev->left < UINT32_MAX ? ev->left + 1 : UINT32_MAX));
	pcre2_set_callout(t->mctx, q__callout, ev);
	int rc = pcre2_match(n->re, (PCRE2_SPTR)json_string_value(v), len, 0,
	                     0, t->md, t->mctx);
	switch (rc) {
	case PCRE2_ERROR_CALLOUT:
	case PCRE2_ERROR_MATCHLIMIT:
	case PCRE2_ERROR_DEPTHLIMIT:
	case PCRE2_ERROR_HEAPLIMIT:
	case PCRE2_ERROR_JIT_STACKLIMIT:
		/* Out of steps, or of the memory a match may use. */
		ev->over = true;
		return false;
	default:
		return rc >= 0;
	}
}

static unsigned
q__type_bit(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return Q_TYPE_STRING;
	case JSON_INTEGER:
	case JSON_REAL:
		return Q_TYPE_NUMBER;
	case JSON_TRUE:
	case JSON_FALSE:
		return Q_TYPE_BOOLEAN;
	case JSON_OBJECT:
		return Q_TYPE_OBJECT;
	case JSON_ARRAY:
		return Q_TYPE_ARRAY;
	default:
		return Q_TYPE_NULL;
	}
}

static bool
q__in(const struct q_node *n, const json_t *v, struct q_eval *ev)
{
	size_t k = json_array_size(n->value);
	for (size_t i = 0; i < k && !ev->over; i++) {
		if (q__equal_ev(v, json_array_get(n->value, i), n->icase,
		                ev)) {
			return true;
		}
	}
	return false;
}

/* Bytes compared or scanned, as steps. */
static long
q__bytes_cost(size_t n, bool icase)
{
	return (long)(n / (icase ? Q_FOLD_BYTES : Q_SCAN_BYTES));
}

/* Equality against the constant, with a fast path for strings. */
static bool
q__eq_const(const struct q_node *n, const json_t *v, struct q_eval *ev)
{
	if (n->str != NULL) {
		return json_is_string(v) && json_string_length(v) == n->len &&
		       q__charge(ev, q__bytes_cost(n->len, n->icase)) &&
		       q__bytes_eq(json_string_value(v), n->str, n->len,
		                   n->icase);
	}
	return q__equal_ev(v, n->value, n->icase, ev);
}

static bool
q__leaf(const struct q_node *n, const json_t *msg, struct q_eval *ev)
{
	const json_t *v = q__path_resolve(&n->path, msg, ev);
	int c;

	if (ev->over) {
		return false;
	}
	if (v == NULL) {
		return n->op == Q_OP_NOT_EXISTS || n->op == Q_OP_NOT_EQUALS;
	}
	switch ((enum q_op)n->op) {
	case Q_OP_EQUALS:
		return q__eq_const(n, v, ev);
	case Q_OP_NOT_EQUALS:
		return !q__eq_const(n, v, ev);
	case Q_OP_LESS:
		return q__order(v, n->value, &c, ev) && c < 0;
	case Q_OP_LESS_EQUALS:
		return q__order(v, n->value, &c, ev) && c <= 0;
	case Q_OP_GREATER:
		return q__order(v, n->value, &c, ev) && c > 0;
	case Q_OP_GREATER_EQUALS:
		return q__order(v, n->value, &c, ev) && c >= 0;
	case Q_OP_BETWEEN:
		return q__order(v, json_array_get(n->value, 0), &c, ev) &&
		       c >= 0 &&
		       q__order(v, json_array_get(n->value, 1), &c, ev) &&
		       c <= 0;
	case Q_OP_IN:
		return q__in(n, v, ev);
	case Q_OP_NOT_IN:
		return !q__in(n, v, ev);
	case Q_OP_CONTAINS:
		if (json_is_string(v)) {
			if (n->str == NULL) {
				return false;
			}
			if (!q__charge(ev, q__bytes_cost(json_string_length(v),
			                                 n->icase))) {
				return false;
			}
			if (n->icase) {
				return q__contains_icase(json_string_value(v),
				                         json_string_length(v),
				                         n->str, n->len);
			}
			return n->len == 0 || memmem(json_string_value(v),
			                             json_string_length(v),
			                             n->str, n->len) != NULL;
		}
		if (json_is_array(v)) {
			size_t k = json_array_size(v);
			for (size_t i = 0; i < k && !ev->over; i++) {
				if (q__equal_ev(json_array_get(v, i), n->value,
				                n->icase, ev)) {
					return true;
				}
			}
		}
		return false;
	case Q_OP_STARTS_WITH:
		return json_is_string(v) && json_string_length(v) >= n->len &&
		       q__charge(ev, q__bytes_cost(n->len, n->icase)) &&
		       q__bytes_eq(json_string_value(v), n->str, n->len,
		                   n->icase);
	case Q_OP_ENDS_WITH:
		return json_is_string(v) && json_string_length(v) >= n->len &&
		       q__charge(ev, q__bytes_cost(n->len, n->icase)) &&
		       q__bytes_eq(json_string_value(v) +
		                           json_string_length(v) - n->len,
		                   n->str, n->len, n->icase);
	case Q_OP_MATCH:
		return json_is_string(v) && q__regex(n, v, ev);
	case Q_OP_EXISTS:
		return true;
	case Q_OP_NOT_EXISTS:
		return false;
	case Q_OP_IS_EMPTY:
		return (json_is_string(v) && json_string_length(v) == 0) ||
		       (json_is_array(v) && json_array_size(v) == 0) ||
		       (json_is_object(v) && json_object_size(v) == 0) ||
		       json_is_null(v);
	case Q_OP_TYPE:
		return (q__type_bit(v) & n->types) != 0;
	case Q_OP_COUNT:
		break;
	}
	return false;
}

static bool
q__eval(const struct q_node *n, const json_t *v, struct q_eval *ev)
{
	const struct q_node *c, *end;

	if (!q__charge(ev, 1)) {
		return false;
	}
	switch ((enum q_kind)n->kind) {
	case Q_AND:
		end = n + n->size;
		for (c = n + 1; c < end; c += c->size) {
			if (!q__eval(c, v, ev) || ev->over) {
				return false;
			}
		}
		return true;
	case Q_OR:
		end = n + n->size;
		for (c = n + 1; c < end; c += c->size) {
			if (q__eval(c, v, ev) && !ev->over) {
				return true;
			}
			if (ev->over) {
				return false;
			}
		}
		return false;
	case Q_NOT:
		return !q__eval(n + 1, v, ev) && !ev->over;
	case Q_LEAF:
		return q__leaf(n, v, ev);
	}
	return false;
}

static void
q__eval_init(struct q_eval *ev)
{
	ev->left = Q_EVAL_BUDGET;
	ev->over = false;
	ev->pattern = NULL;
	ev->pattern_len = 0;
	ev->lastpos = 0;
	ev->ticks = 0;
	ev->deadline_ns = 0;
}

static int
q__done(const struct q_eval *ev, long *steps, int rc)
{
	if (steps != NULL) {
		*steps = Q_EVAL_BUDGET - ev->left;
	}
	return ev->over ? LS_ECOSTLY : rc;
}

int
q_query_test(const q_query *q, const json_t *msg, long *steps)
{
	struct q_eval ev;

	q__eval_init(&ev);
	if (q == NULL || msg == NULL) {
		return q__done(&ev, steps, 0);
	}
	if (!q->select) {
		return q__done(&ev, steps, q__eval(q->nodes, msg, &ev));
	}
	const json_t *arr = q__path_resolve(&q->sel_path, msg, &ev);
	if (!json_is_array(arr)) {
		return q__done(&ev, steps, 0);
	}
	size_t n = json_array_size(arr);
	for (size_t i = 0; i < n && !ev.over; i++) {
		if (q__eval(q->nodes, json_array_get(arr, i), &ev)) {
			return q__done(&ev, steps, 1);
		}
	}
	return q__done(&ev, steps, 0);
}

bool
q_query_matches(const q_query *q, const json_t *msg)
{
	return q_query_test(q, msg, NULL) == 1;
}

/* Shallow copy of an object or array. json_copy() ignores failures to
 * insert members, which would deliver a silently truncated message. */
static json_t *
q__shallow_copy(json_t *v)
{
	json_t *copy, *m;

	if (json_is_object(v)) {
		const char *key;
		size_t klen;
		if ((copy = json_object()) == NULL) {
			return NULL;
		}
		json_object_keylen_foreach(v, key, klen, m)
		{
			if (json_object_setn_nocheck(copy, key, klen, m) !=
			    0) {
				json_decref(copy);
				return NULL;
			}
		}
		return copy;
	}
	size_t i;
	if ((copy = json_array()) == NULL) {
		return NULL;
	}
	json_array_foreach(v, i, m)
	{
		if (json_array_append(copy, m) != 0) {
			json_decref(copy);
			return NULL;
		}
	}
	return copy;
}

/*
 * Copy the containers from v down to the selected array (segment i on),
 * putting arr (taken) in place of that array. Returns a new reference or
 * NULL when out of memory (arr is released either way).
 */
static json_t *
q__rebuild(const q_query *q, json_t *v, uint32_t i, json_t *arr)
{
	if (i == q->sel_path.nseg) {
		return arr;
	}
	const struct q_seg *s = &q->sel_path.segs[i];
	json_t *copy;
	if (json_is_object(v)) {
		json_t *child = json_object_getn(v, s->key, s->len);
		json_t *sub = q__rebuild(q, child, i + 1, arr);
		if (sub == NULL || (copy = q__shallow_copy(v)) == NULL) {
			json_decref(sub);
			return NULL;
		}
		if (json_object_setn_new(copy, s->key, s->len, sub) != 0) {
			json_decref(copy);
			return NULL;
		}
	} else {
		json_t *child = json_array_get(v, (size_t)s->index);
		json_t *sub = q__rebuild(q, child, i + 1, arr);
		if (sub == NULL || (copy = q__shallow_copy(v)) == NULL) {
			json_decref(sub);
			return NULL;
		}
		if (json_array_set_new(copy, (size_t)s->index, sub) != 0) {
			json_decref(copy);
			return NULL;
		}
	}
	return copy;
}

int
q_query_apply_steps(const q_query *q, json_t *msg, json_t **out, long *steps)
{
	struct q_eval ev;

	*out = NULL;
	q__eval_init(&ev);
	if (q == NULL || msg == NULL) {
		return q__done(&ev, steps, 0);
	}
	if (!q->select) {
		if (!q__eval(q->nodes, msg, &ev) || ev.over) {
			return q__done(&ev, steps, 0);
		}
		*out = json_incref(msg);
		return q__done(&ev, steps, 1);
	}
	json_t *arr = (json_t *)q__path_resolve(&q->sel_path, msg, &ev);
	if (!json_is_array(arr)) {
		return q__done(&ev, steps, 0);
	}
	json_t *picked = NULL;
	size_t n = json_array_size(arr);
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(arr, i);
		bool hit = q__eval(q->nodes, e, &ev);
		if (ev.over) {
			json_decref(picked);
			return q__done(&ev, steps, 0);
		}
		if (!hit) {
			continue;
		}
		if (picked == NULL && (picked = json_array()) == NULL) {
			return -ENOMEM;
		}
		if (json_array_append(picked, e) != 0) {
			json_decref(picked);
			return -ENOMEM;
		}
	}
	if (picked == NULL) {
		return q__done(&ev, steps, 0);
	}
	*out = q__rebuild(q, msg, 0, picked);
	return *out != NULL ? q__done(&ev, steps, 1) : -ENOMEM;
}

int
q_query_apply(const q_query *q, json_t *msg, json_t **out)
{
	return q_query_apply_steps(q, msg, out, NULL);
}
