/*
 * Query compilation: validate the JSON form of docs/query.md, split paths,
 * type constants and compile regular expressions, producing one flat array of
 * nodes. Every rejection names the node it is about.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q_internal.h"

static const struct {
	const char *name;
	enum q_op op;
} q__ops[] = {
	{ "equals", Q_OP_EQUALS },
	{ "notEquals", Q_OP_NOT_EQUALS },
	{ "less", Q_OP_LESS },
	{ "lessEquals", Q_OP_LESS_EQUALS },
	{ "greater", Q_OP_GREATER },
	{ "greaterEquals", Q_OP_GREATER_EQUALS },
	{ "between", Q_OP_BETWEEN },
	{ "in", Q_OP_IN },
	{ "notIn", Q_OP_NOT_IN },
	{ "contains", Q_OP_CONTAINS },
	{ "startsWith", Q_OP_STARTS_WITH },
	{ "endsWith", Q_OP_ENDS_WITH },
	{ "match", Q_OP_MATCH },
	{ "exists", Q_OP_EXISTS },
	{ "notExists", Q_OP_NOT_EXISTS },
	{ "isEmpty", Q_OP_IS_EMPTY },
	{ "type", Q_OP_TYPE },
};

static const struct {
	const char *name;
	unsigned bit;
} q__types[] = {
	{ "string", Q_TYPE_STRING },   { "number", Q_TYPE_NUMBER },
	{ "boolean", Q_TYPE_BOOLEAN }, { "object", Q_TYPE_OBJECT },
	{ "array", Q_TYPE_ARRAY },     { "null", Q_TYPE_NULL },
};

/* Compilation state; nodes move into the query once all went well. */
struct q_cc {
	struct q_node nodes[Q_MAX_NODES];
	uint32_t n;
	ls_error *err;
	pcre2_general_context *gc;
	pcre2_compile_context *cc;
	bool has_regex;
	char where[512]; /* path of the node being compiled */
	size_t wlen;
};

static int q__fail(struct q_cc *c, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Report "<node path>[.key]: <reason>" as an invalid query. */
static int
q__fail(struct q_cc *c, const char *key, const char *fmt, ...)
{
	char reason[LS_ERROR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return ls_error_set(c->err, LS_EINVALIDQUERY, "%.*s%s%s: %s",
	                    (int)c->wlen, c->where, key ? "." : "",
	                    key ? key : "", reason);
}

static int
q__nomem(struct q_cc *c)
{
	return ls_error_set(c->err, -ENOMEM, "out of memory");
}

/* Append to the node path; returns the previous length to restore. */
static size_t q__push(struct q_cc *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static size_t
q__push(struct q_cc *c, const char *fmt, ...)
{
	size_t old = c->wlen;
	va_list ap;

	va_start(ap, fmt);
	int r = vsnprintf(c->where + c->wlen, sizeof(c->where) - c->wlen, fmt,
	                  ap);
	va_end(ap);
	if (r > 0) {
		c->wlen += (size_t)r;
		if (c->wlen >= sizeof(c->where)) {
			c->wlen = sizeof(c->where) - 1;
		}
	}
	return old;
}

static bool
q__icase_allowed(enum q_op op)
{
	switch (op) {
	case Q_OP_EQUALS:
	case Q_OP_NOT_EQUALS:
	case Q_OP_CONTAINS:
	case Q_OP_STARTS_WITH:
	case Q_OP_ENDS_WITH:
	case Q_OP_IN:
	case Q_OP_NOT_IN:
	case Q_OP_MATCH:
		return true;
	default:
		return false;
	}
}

/* Point n->str at the string constant, ASCII-folded when icase. */
static int
q__string_const(struct q_cc *c, struct q_node *n)
{
	n->str = json_string_value(n->value);
	n->len = json_string_length(n->value);
	if (!n->icase) {
		return 0;
	}
	n->fold = q__malloc(n->len + 1);
	if (n->fold == NULL) {
		return q__nomem(c);
	}
	for (size_t i = 0; i < n->len; i++) {
		n->fold[i] = (char)q__fold((unsigned char)n->str[i]);
	}
	n->fold[n->len] = '\0';
	n->str = n->fold;
	return 0;
}

const char *
q__regex_refused(const char *p, size_t n, size_t *at)
{
	bool in_class = false;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\') {
			if (i + 1 < n && p[i + 1] == 'Q') {
				/* \Q...\E (or to the end) is literal text */
				const char *e =
				        memmem(p + i + 2, n - i - 2, "\\E", 2);
				if (e == NULL) {
					return NULL;
				}
				i = (size_t)(e - p) + 1;
			} else {
				i++; /* the escaped character */
			}
			continue;
		}
		if (in_class) {
			if (p[i] == '[' && i + 1 < n && p[i + 1] == ':') {
				/* [:alpha:] inside a class */
				const char *e =
				        memmem(p + i + 2, n - i - 2, ":]", 2);
				if (e != NULL) {
					i = (size_t)(e - p) + 1;
				}
			} else if (p[i] == ']') {
				in_class = false;
			}
			continue;
		}
		if (p[i] == '[') {
			/* A ']' first in a class is a literal. */
			in_class = true;
			if (i + 1 < n && p[i + 1] == '^') {
				i++;
			}
			if (i + 1 < n && p[i + 1] == ']') {
				i++;
			}
			continue;
		}
		if (p[i] != '(' || i + 1 >= n) {
			continue;
		}
		if (p[i + 1] == '*') {
			*at = i;
			return "(*...) verbs and option settings are not "
			       "allowed";
		}
		if (p[i + 1] == '?' && i + 2 < n && p[i + 2] == 'C') {
			*at = i;
			return "callouts (?C...) are not allowed";
		}
		if (p[i + 1] == '?' && i + 2 < n && p[i + 2] == '#') {
			/* a comment runs to the next ')' */
			const char *e = memchr(p + i, ')', n - i);
			if (e == NULL) {
				return NULL;
			}
			i = (size_t)(e - p);
		}
	}
	return NULL;
}

static int
q__regex_compile(struct q_cc *c, struct q_node *n)
{
	int code;
	PCRE2_SIZE off;
	/* Auto-callouts: every engine step reports to the evaluation,
	 * which charges it to the budget (q_eval.c). */
	uint32_t opts =
	        PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C | PCRE2_AUTO_CALLOUT;
	const char *why;
	size_t at = 0;

	if (n->len > Q_MAX_REGEX_BYTES) {
		return q__fail(c, "value",
		               "regular expression longer than %d bytes",
		               Q_MAX_REGEX_BYTES);
	}
	why = q__regex_refused(json_string_value(n->value), n->len, &at);
	if (why != NULL) {
		return q__fail(c, "value", "%s (offset %zu)", why, at);
	}
	if (c->gc == NULL) {
		c->gc = pcre2_general_context_create(q__pcre2_malloc,
		                                     q__pcre2_free, NULL);
		c->cc = c->gc ? pcre2_compile_context_create(c->gc) : NULL;
		if (c->cc == NULL ||
		    pcre2_set_parens_nest_limit(c->cc, Q_REGEX_PARENS_NEST) !=
		            0) {
			return q__nomem(c);
		}
	}
	if (n->icase) {
		opts |= PCRE2_CASELESS;
	}
	n->re = pcre2_compile((PCRE2_SPTR)json_string_value(n->value), n->len,
	                      opts, &code, &off, c->cc);
	if (n->re == NULL) {
		if (code == PCRE2_ERROR_NOMEMORY ||
		    code == PCRE2_ERROR_HEAP_FAILED) {
			return q__nomem(c);
		}
		PCRE2_UCHAR msg[128];
		if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0) {
			strcpy((char *)msg, "error");
		}
		return q__fail(c, "value",
		               "invalid regular expression at offset %zu: %s",
		               (size_t)off, (const char *)msg);
	}
	/* A backreference compares up to the whole subject inside one
	 * engine step, out of sight of the budget. */
	uint32_t backref = 0;
	if (pcre2_pattern_info(n->re, PCRE2_INFO_BACKREFMAX, &backref) == 0 &&
	    backref > 0) {
		return q__fail(c, "value", "backreferences are not allowed");
	}
	/* JIT is an optimization: without it (or out of memory for it)
	 * the interpreter runs under the same budget. */
	uint32_t jit = 0;
	if (pcre2_config(PCRE2_CONFIG_JIT, &jit) >= 0 && jit) {
		(void)pcre2_jit_compile(n->re, PCRE2_JIT_COMPLETE);
	}
	c->has_regex = true;
	return 0;
}

static int q__expr(struct q_cc *c, const json_t *e, int depth);

static int
q__leaf_compile(struct q_cc *c, struct q_node *n, const json_t *e)
{
	const char *key;
	json_t *field = NULL, *op = NULL, *value = NULL, *icase = NULL, *v;

	json_object_foreach((json_t *)e, key, v)
	{
		if (strcmp(key, "field") == 0) {
			field = v;
		} else if (strcmp(key, "op") == 0) {
			op = v;
		} else if (strcmp(key, "value") == 0) {
			value = v;
		} else if (strcmp(key, "ignoreCase") == 0) {
			icase = v;
		} else {
			return q__fail(c, NULL, "unknown key '%.64s'", key);
		}
	}
	if (field == NULL) {
		return q__fail(c, NULL,
		               "missing \"field\" (or \"and\", \"or\", "
		               "\"not\")");
	}
	if (!json_is_string(field)) {
		return q__fail(c, "field", "must be a string");
	}
	const char *why = NULL;
	int rc = q__path_split(json_string_value(field),
	                       json_string_length(field), &n->path, &why);
	if (rc == -ENOMEM) {
		return q__nomem(c);
	}
	if (rc < 0) {
		return q__fail(c, "field", "%s", why);
	}
	if (op == NULL) {
		return q__fail(c, NULL, "missing \"op\"");
	}
	if (!json_is_string(op)) {
		return q__fail(c, "op", "must be a string");
	}
	size_t i;
	for (i = 0; i < sizeof(q__ops) / sizeof(q__ops[0]); i++) {
		if (strcmp(json_string_value(op), q__ops[i].name) == 0) {
			break;
		}
	}
	if (i == sizeof(q__ops) / sizeof(q__ops[0])) {
		return q__fail(c, "op", "unknown operator '%.64s'",
		               json_string_value(op));
	}
	n->op = (uint8_t)q__ops[i].op;
	const char *opname = q__ops[i].name;
	if (icase != NULL) {
		if (!json_is_boolean(icase)) {
			return q__fail(c, "ignoreCase",
			               "must be true or false");
		}
		if (json_is_true(icase) && !q__icase_allowed(n->op)) {
			return q__fail(c, "ignoreCase",
			               "does not apply to '%s'", opname);
		}
		n->icase = json_is_true(icase);
	}

	enum q_op o = (enum q_op)n->op;
	bool novalue =
	        o == Q_OP_EXISTS || o == Q_OP_NOT_EXISTS || o == Q_OP_IS_EMPTY;
	if (novalue) {
		if (value != NULL) {
			return q__fail(c, "value", "'%s' takes no value",
			               opname);
		}
		return 0;
	}
	if (value == NULL) {
		return q__fail(c, NULL, "missing \"value\" for '%s'", opname);
	}
	/* A private copy: the caller may change spec after compiling. */
	n->value = json_deep_copy(value);
	if (n->value == NULL) {
		return q__nomem(c);
	}
	switch (o) {
	case Q_OP_EQUALS:
	case Q_OP_NOT_EQUALS:
		if (json_is_string(value)) {
			return q__string_const(c, n);
		}
		return 0;
	case Q_OP_LESS:
	case Q_OP_LESS_EQUALS:
	case Q_OP_GREATER:
	case Q_OP_GREATER_EQUALS:
		if (!json_is_number(value) && !json_is_string(value)) {
			return q__fail(c, "value",
			               "'%s' needs a number or a string",
			               opname);
		}
		return 0;
	case Q_OP_BETWEEN: {
		const json_t *lo = json_array_get(value, 0);
		const json_t *hi = json_array_get(value, 1);
		int cmp;
		if (!json_is_array(value) || json_array_size(value) != 2 ||
		    !((json_is_number(lo) && json_is_number(hi)) ||
		      (json_is_string(lo) && json_is_string(hi)))) {
			return q__fail(c, "value",
			               "'between' needs [low, high], two "
			               "numbers or two strings");
		}
		if (json_is_number(lo)) {
			cmp = q__num_cmp(lo, hi);
		} else {
			size_t a = json_string_length(lo);
			size_t b = json_string_length(hi);
			cmp = memcmp(json_string_value(lo),
			             json_string_value(hi), a < b ? a : b);
			if (cmp == 0) {
				cmp = (a > b) - (a < b);
			}
		}
		if (cmp > 0) {
			return q__fail(c, "value",
			               "'between': low is greater than high");
		}
		return 0;
	}
	case Q_OP_IN:
	case Q_OP_NOT_IN:
		if (!json_is_array(value)) {
			return q__fail(c, "value", "'%s' needs an array",
			               opname);
		}
		if (json_array_size(value) > Q_MAX_IN_VALUES) {
			return q__fail(c, "value",
			               "'%s' takes at most %d values", opname,
			               Q_MAX_IN_VALUES);
		}
		return 0;
	case Q_OP_CONTAINS:
		if (json_is_string(value)) {
			return q__string_const(c, n);
		}
		return 0;
	case Q_OP_STARTS_WITH:
	case Q_OP_ENDS_WITH:
		if (!json_is_string(value)) {
			return q__fail(c, "value", "'%s' needs a string",
			               opname);
		}
		return q__string_const(c, n);
	case Q_OP_MATCH:
		if (!json_is_string(value)) {
			return q__fail(c, "value",
			               "'match' needs a regular expression "
			               "string");
		}
		n->len = json_string_length(value);
		return q__regex_compile(c, n);
	case Q_OP_TYPE:
		if (json_is_string(value)) {
			for (i = 0; i < sizeof(q__types) / sizeof(q__types[0]);
			     i++) {
				if (strcmp(json_string_value(value),
				           q__types[i].name) == 0) {
					n->types = (uint8_t)q__types[i].bit;
					return 0;
				}
			}
		}
		return q__fail(c, "value",
		               "'type' needs one of \"string\", \"number\", "
		               "\"boolean\", \"object\", \"array\", \"null\"");
	default:
		return 0;
	}
}

/* and/or: a non-empty array of expressions. */
static int
q__list_compile(struct q_cc *c, const char *name, const json_t *list,
                int depth)
{
	size_t old = q__push(c, ".%s", name);
	if (!json_is_array(list) || json_array_size(list) == 0) {
		return q__fail(c, NULL,
		               "needs a non-empty array of "
		               "expressions");
	}
	for (size_t i = 0; i < json_array_size(list); i++) {
		size_t mid = q__push(c, "[%zu]", i);
		int rc = q__expr(c, json_array_get(list, i), depth + 1);
		if (rc < 0) {
			return rc;
		}
		c->wlen = mid;
	}
	c->wlen = old;
	return 0;
}

static int
q__expr(struct q_cc *c, const json_t *e, int depth)
{
	int rc;

	if (depth > Q_MAX_DEPTH) {
		return q__fail(c, NULL, "nested deeper than %d levels",
		               Q_MAX_DEPTH);
	}
	if (!json_is_object(e)) {
		return q__fail(c, NULL, "an expression must be a JSON object");
	}
	if (c->n >= Q_MAX_NODES) {
		return q__fail(c, NULL, "more than %d expressions",
		               Q_MAX_NODES);
	}
	uint32_t self = c->n++;
	struct q_node *n = &c->nodes[self];
	memset(n, 0, sizeof(*n));

	const json_t *and = json_object_get(e, "and");
	const json_t * or = json_object_get(e, "or");
	const json_t *not = json_object_get(e, "not");
	const char *name = and? "and" : or ? "or" : not ? "not" : NULL;
	if (name != NULL) {
		if (json_object_size(e) != 1) {
			const char *key;
			const json_t *v;
			json_object_foreach((json_t *)e, key, v)
			{
				if (strcmp(key, name) != 0) {
					break;
				}
			}
			return q__fail(c, NULL,
			               "unexpected key '%.64s' beside '%s'",
			               key, name);
		}
		if (not != NULL) {
			n->kind = Q_NOT;
			size_t old = q__push(c, ".not");
			rc = q__expr(c, not, depth + 1);
			c->wlen = old;
		} else {
			n->kind = and? Q_AND : Q_OR;
			rc = q__list_compile(c, name, and? and : or, depth);
		}
	} else {
		n->kind = Q_LEAF;
		rc = q__leaf_compile(c, n, e);
	}
	if (rc < 0) {
		return rc;
	}
	c->nodes[self].size = (uint16_t)(c->n - self);
	return 0;
}

static void
q__cc_clear(struct q_cc *c)
{
	for (uint32_t i = 0; i < c->n; i++) {
		q__node_clear(&c->nodes[i]);
	}
	c->n = 0;
	pcre2_compile_context_free(c->cc);
	pcre2_general_context_free(c->gc);
}

void
q__node_clear(struct q_node *n)
{
	q__path_free(&n->path);
	json_decref(n->value);
	n->value = NULL;
	q__free(n->fold);
	n->fold = NULL;
	pcre2_code_free(n->re);
	n->re = NULL;
}

static int
q__compile(const json_t *spec, q_query **out, ls_error *err)
{
	struct q_cc *c = NULL;
	q_query *q = NULL;
	struct q_path sel = { 0 };
	const json_t *mode = NULL, *path = NULL, *where = NULL, *v;
	const char *key;
	bool select = false;
	int rc;

	*out = NULL;
	ls_error_clear(err);
	if (!json_is_object(spec)) {
		return ls_error_set(err, LS_EINVALIDQUERY,
		                    "query: must be a JSON object");
	}
	json_object_foreach((json_t *)spec, key, v)
	{
		if (strcmp(key, "mode") == 0) {
			mode = v;
		} else if (strcmp(key, "path") == 0) {
			path = v;
		} else if (strcmp(key, "where") == 0) {
			where = v;
		} else {
			return ls_error_set(err, LS_EINVALIDQUERY,
			                    "query: unknown key '%.64s'", key);
		}
	}
	if (mode != NULL) {
		if (json_is_string(mode) &&
		    strcmp(json_string_value(mode), "select") == 0) {
			select = true;
		} else if (!json_is_string(mode) ||
		           strcmp(json_string_value(mode), "any") != 0) {
			return ls_error_set(err, LS_EINVALIDQUERY,
			                    "mode: must be \"any\" or "
			                    "\"select\"");
		}
	}
	if (select && path == NULL) {
		return ls_error_set(err, LS_EINVALIDQUERY,
		                    "path: required in select mode");
	}
	if (!select && path != NULL) {
		return ls_error_set(err, LS_EINVALIDQUERY,
		                    "path: only allowed in select mode");
	}
	if (where == NULL) {
		return ls_error_set(err, LS_EINVALIDQUERY, "where: missing");
	}
	if (select) {
		const char *why = NULL;
		if (!json_is_string(path)) {
			return ls_error_set(err, LS_EINVALIDQUERY,
			                    "path: must be a string");
		}
		rc = q__path_split(json_string_value(path),
		                   json_string_length(path), &sel, &why);
		if (rc == -ENOMEM) {
			return ls_error_set(err, rc, "out of memory");
		}
		if (rc < 0) {
			return ls_error_set(err, LS_EINVALIDQUERY, "path: %s",
			                    why);
		}
	}

	c = q__malloc(sizeof(*c));
	if (c == NULL) {
		rc = ls_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	c->n = 0;
	c->err = err;
	c->gc = NULL;
	c->cc = NULL;
	c->has_regex = false;
	c->wlen = 0;
	q__push(c, "where");
	rc = q__expr(c, where, 1);
	if (rc < 0) {
		goto fail;
	}

	q = q__malloc(sizeof(*q) + c->n * sizeof(struct q_node));
	if (q == NULL) {
		rc = ls_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	q->select = select;
	q->sel_path = sel;
	q->nnodes = c->n;
	/* The thread's regex state now, so that evaluating allocates
	 * nothing on this thread. */
	if (c->has_regex && q__thread_regex() == NULL) {
		rc = ls_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	memcpy(q->nodes, c->nodes, c->n * sizeof(struct q_node));
	c->n = 0; /* the query owns the nodes now */
	q__cc_clear(c);
	q__free(c);
	*out = q;
	return 0;

fail:
	q__free(q);
	if (c != NULL) {
		q__cc_clear(c);
		q__free(c);
	}
	q__path_free(&sel);
	return rc;
}

int
q_query_compile(const json_t *spec, q_query **out, ls_error *err)
{
	if (out == NULL) {
		return -EINVAL;
	}
	*out = NULL;
	if (!json_is_object(spec)) {
		return ls_error_set(err, LS_EINVALIDQUERY,
		                    "query: must be a JSON object");
	}
	/* An object always serializes to at least "{}": 0 is a failure. */
	size_t size = json_dumpb(spec, NULL, 0, JSON_COMPACT);
	if (size == 0) {
		return ls_error_set(err, -ENOMEM, "out of memory");
	}
	if (size > Q_MAX_QUERY_BYTES) {
		return ls_error_set(err, LS_EINVALIDQUERY,
		                    "query: larger than %d bytes",
		                    Q_MAX_QUERY_BYTES);
	}
	return q__compile(spec, out, err);
}

int
q_query_compile_text(const char *text, size_t len, q_query **out,
                     ls_error *err)
{
	json_error_t je;

	if (out == NULL) {
		return -EINVAL;
	}
	*out = NULL;
	if (len > Q_MAX_QUERY_BYTES) {
		return ls_error_set(err, LS_EINVALIDQUERY,
		                    "query: larger than %d bytes",
		                    Q_MAX_QUERY_BYTES);
	}
	json_t *spec = json_loadb(
	        text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (spec == NULL) {
		if (json_error_code(&je) == json_error_out_of_memory) {
			return ls_error_set(err, -ENOMEM, "out of memory");
		}
		return ls_error_set(err, LS_EINVALIDQUERY,
		                    "query: invalid JSON at line %d column "
		                    "%d: %s",
		                    je.line, je.column, je.text);
	}
	int rc = q__compile(spec, out, err);
	json_decref(spec);
	return rc;
}

void
q_query_destroy(q_query **qp)
{
	if (qp == NULL || *qp == NULL) {
		return;
	}
	q_query *q = *qp;
	for (uint32_t i = 0; i < q->nnodes; i++) {
		q__node_clear(&q->nodes[i]);
	}
	q__path_free(&q->sel_path);
	q__free(q);
	*qp = NULL;
}

bool
q_query_is_select(const q_query *q)
{
	return q != NULL && q->select;
}
