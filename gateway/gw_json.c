#include "gw_json.h"

#include <stdint.h>
#include <string.h>

typedef struct gw__scan {
	const unsigned char *p;
	const unsigned char *end;
} gw__scan;

static void
gw__ws(gw__scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
	                         *s->p == '\n' || *s->p == '\r')) {
		s->p++;
	}
}

static bool
gw__lit(gw__scan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) {
		return false;
	}
	s->p += n;
	return true;
}

static bool
gw__digits(gw__scan *s)
{
	const unsigned char *from = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		s->p++;
	}
	return s->p > from;
}

static bool
gw__number(gw__scan *s)
{
	if (s->p < s->end && *s->p == '-') {
		s->p++;
	}
	if (s->p < s->end && *s->p == '0') {
		s->p++;
	} else if (!gw__digits(s)) {
		return false;
	}
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (!gw__digits(s)) {
			return false;
		}
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-')) {
			s->p++;
		}
		if (!gw__digits(s)) {
			return false;
		}
	}
	return true;
}

static bool
gw__hex4(gw__scan *s, unsigned *out)
{
	unsigned v = 0;

	if (s->end - s->p < 4) {
		return false;
	}
	for (int i = 0; i < 4; i++) {
		unsigned char c = s->p[i];
		v <<= 4;
		if (c >= '0' && c <= '9') {
			v |= c - '0';
		} else if (c >= 'a' && c <= 'f') {
			v |= c - 'a' + 10;
		} else if (c >= 'A' && c <= 'F') {
			v |= c - 'A' + 10;
		} else {
			return false;
		}
	}
	s->p += 4;
	*out = v;
	return true;
}

/* One UTF-8 sequence starting at s->p (first byte >= 0x80). */
static bool
gw__utf8(gw__scan *s)
{
	unsigned char c = *s->p;
	size_t n;
	uint32_t cp;

	if (c >= 0xC2 && c <= 0xDF) {
		n = 1;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 2;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 3;
		cp = c & 0x07;
	} else {
		return false;
	}
	if ((size_t)(s->end - s->p) <= n) {
		return false;
	}
	for (size_t i = 1; i <= n; i++) {
		if ((s->p[i] & 0xC0) != 0x80) {
			return false;
		}
		cp = (cp << 6) | (s->p[i] & 0x3F);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
	    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
		return false;
	}
	s->p += n + 1;
	return true;
}

static bool
gw__string(gw__scan *s)
{
	s->p++; /* opening quote */
	while (s->p < s->end) {
		unsigned char c = *s->p;
		if (c == '"') {
			s->p++;
			return true;
		}
		if (c < 0x20) {
			return false;
		}
		if (c == '\\') {
			unsigned u;
			s->p++;
			if (s->p >= s->end) {
				return false;
			}
			c = *s->p++;
			if (c == 'u') {
				if (!gw__hex4(s, &u)) {
					return false;
				}
				/* \u0000 is refused, as jansson does. */
				if (u == 0) {
					return false;
				}
			} else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
				return false;
			}
			continue;
		}
		if (c >= 0x80) {
			if (!gw__utf8(s)) {
				return false;
			}
			continue;
		}
		s->p++;
	}
	return false;
}

bool
gw_json_valid(const char *text, size_t len, size_t *start, size_t *end)
{
	/* One bit per open container: 1 object, 0 array. */
	uint8_t stack[GW_JSON_MAX_DEPTH / 8];
	int depth = 0;
	gw__scan s = { (const unsigned char *)text,
		       (const unsigned char *)text + len };
	const unsigned char *first;

	gw__ws(&s);
	first = s.p;
	for (;;) {
		/* Expect a value. */
		gw__ws(&s);
		if (s.p >= s.end) {
			return false;
		}
		switch (*s.p) {
		case '{':
		case '[':
			if (depth >= GW_JSON_MAX_DEPTH) {
				return false;
			}
			if (*s.p == '{') {
				stack[depth / 8] |=
				        (uint8_t)(1u << (depth % 8));
			} else {
				stack[depth / 8] &=
				        (uint8_t) ~(1u << (depth % 8));
			}
			depth++;
			s.p++;
			gw__ws(&s);
			if (s.p < s.end && (*s.p == '}' || *s.p == ']')) {
				bool obj = stack[(depth - 1) / 8] &
				           (1u << ((depth - 1) % 8));
				if (*s.p != (obj ? '}' : ']')) {
					return false;
				}
				s.p++;
				depth--;
				goto after_value;
			}
			if (stack[(depth - 1) / 8] &
			    (1u << ((depth - 1) % 8))) {
				goto object_key;
			}
			continue;
		case '"':
			if (!gw__string(&s)) {
				return false;
			}
			break;
		case 't':
			if (!gw__lit(&s, "true")) {
				return false;
			}
			break;
		case 'f':
			if (!gw__lit(&s, "false")) {
				return false;
			}
			break;
		case 'n':
			if (!gw__lit(&s, "null")) {
				return false;
			}
			break;
		default:
			if (!gw__number(&s)) {
				return false;
			}
			break;
		}
	after_value:
		for (;;) {
			bool obj;
			gw__ws(&s);
			if (depth == 0) {
				const unsigned char *last = s.p;
				if (s.p != s.end) {
					return false;
				}
				while (last > first &&
				       (last[-1] == ' ' || last[-1] == '\t' ||
				        last[-1] == '\n' ||
				        last[-1] == '\r')) {
					last--;
				}
				if (start != NULL) {
					*start = (size_t)(first -
					                  (const unsigned char
					                           *)text);
				}
				if (end != NULL) {
					*end = (size_t)(last -
					                (const unsigned char *)
					                        text);
				}
				return true;
			}
			if (s.p >= s.end) {
				return false;
			}
			obj = stack[(depth - 1) / 8] &
			      (1u << ((depth - 1) % 8));
			if (*s.p == ',') {
				s.p++;
				if (obj) {
					goto object_key;
				}
				break; /* next array element */
			}
			if (*s.p == (obj ? '}' : ']')) {
				s.p++;
				depth--;
				continue;
			}
			return false;
		}
		continue;
	object_key:
		gw__ws(&s);
		if (s.p >= s.end || *s.p != '"' || !gw__string(&s)) {
			return false;
		}
		gw__ws(&s);
		if (s.p >= s.end || *s.p != ':') {
			return false;
		}
		s.p++;
	}
}

void
gw_utf8_sanitize(char *s)
{
	size_t n = strlen(s);
	gw__scan sc = { (const unsigned char *)s,
		        (const unsigned char *)s + n };

	while (sc.p < sc.end) {
		if (*sc.p < 0x80) {
			sc.p++;
			continue;
		}
		if (gw__utf8(&sc)) {
			continue;
		}
		*(unsigned char *)sc.p = '?';
		sc.p++;
	}
}

bool
gw_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		unsigned c = *p++;
		unsigned need, min, cp;

		if (c < 0x80) {
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			need = 1, min = 0x80, cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			need = 2, min = 0x800, cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			need = 3, min = 0x10000, cp = c & 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - p) < need) {
			return false;
		}
		for (unsigned i = 0; i < need; i++, p++) {
			if ((*p & 0xC0) != 0x80) {
				return false;
			}
			cp = (cp << 6) | (*p & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF)) {
			return false;
		}
	}
	return true;
}
