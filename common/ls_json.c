#include "ls_json.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nesting beyond this is refused rather than recursed into. */
#define LS__JSON_MAX_DEPTH 2048

typedef struct ls__jbuf {
	char *data;
	size_t len, cap;
	bool failed;
} ls__jbuf;

static void
ls__put(ls__jbuf *b, const char *s, size_t n)
{
	if (b->failed) {
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *data;
		while (cap < b->len + n + 1) {
			cap *= 2;
		}
		data = realloc(b->data, cap);
		if (data == NULL) {
			b->failed = true;
			return;
		}
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

int
ls_json_format_real(double value, char out[LS_JSON_REAL_MAX])
{
	int n = 0;

	for (int precision = 15; precision <= 17; precision++) {
		n = snprintf(out, LS_JSON_REAL_MAX, "%.*g", precision, value);
		if (strtod(out, NULL) == value) {
			break;
		}
	}
	/* Keep it a real for readers that distinguish 1 from 1.0. */
	if (strpbrk(out, ".eEn") == NULL && n + 2 < LS_JSON_REAL_MAX) {
		memcpy(out + n, ".0", 3);
		n += 2;
	}
	return n;
}

static void
ls__put_string(ls__jbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0;

	ls__put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		size_t elen = 2;

		if (c >= 0x20 && c != '"' && c != '\\') {
			continue;
		}
		ls__put(b, s + start, i - start);
		start = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			elen = 6;
			break;
		}
		ls__put(b, esc, elen);
	}
	ls__put(b, s + start, n - start);
	ls__put(b, "\"", 1);
}

static void
ls__put_value(ls__jbuf *b, const json_t *v, int depth)
{
	char num[LS_JSON_REAL_MAX];

	if (depth > LS__JSON_MAX_DEPTH) {
		b->failed = true;
		return;
	}
	switch (json_typeof(v)) {
	case JSON_NULL:
		ls__put(b, "null", 4);
		break;
	case JSON_TRUE:
		ls__put(b, "true", 4);
		break;
	case JSON_FALSE:
		ls__put(b, "false", 5);
		break;
	case JSON_INTEGER: {
		int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		                 json_integer_value(v));
		ls__put(b, num, (size_t)n);
		break;
	}
	case JSON_REAL: {
		double d = json_real_value(v);
		if (!isfinite(d)) {
			b->failed = true;
			return;
		}
		ls__put(b, num, (size_t)ls_json_format_real(d, num));
		break;
	}
	case JSON_STRING:
		ls__put_string(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_ARRAY: {
		size_t i;
		json_t *item;
		ls__put(b, "[", 1);
		json_array_foreach((json_t *)v, i, item)
		{
			if (i > 0) {
				ls__put(b, ",", 1);
			}
			ls__put_value(b, item, depth + 1);
		}
		ls__put(b, "]", 1);
		break;
	}
	case JSON_OBJECT: {
		const char *key;
		json_t *item;
		bool first = true;
		json_object_foreach((json_t *)v, key, item)
		{
			ls__put(b, first ? "{" : ",", 1);
			first = false;
			ls__put_string(b, key, strlen(key));
			ls__put(b, ":", 1);
			ls__put_value(b, item, depth + 1);
		}
		ls__put(b, first ? "{}" : "}", first ? 2 : 1);
		break;
	}
	}
}

char *
ls_json_dumps(const json_t *value, size_t *len)
{
	ls__jbuf b = { NULL, 0, 0, false };

	if (value == NULL) {
		return NULL;
	}
	ls__put_value(&b, value, 0);
	if (b.failed || b.data == NULL) {
		free(b.data);
		return NULL;
	}
	if (len != NULL) {
		*len = b.len;
	}
	return b.data;
}
