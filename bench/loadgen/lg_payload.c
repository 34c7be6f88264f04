#include "lg_payload.h"

#include <stdio.h>
#include <string.h>

static unsigned
lg__digits(uint64_t v)
{
	unsigned n = 1;
	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* Pad length for a payload of `size` bytes; at least 1. Both ends compute
 * it from the numbers alone, so a receiver can check it. */
static size_t
lg__pad_len(uint64_t ts, uint64_t seq, size_t size)
{
	/* {"ts":,"seq":,"k":,"pad":""} is 28 bytes of fixed text. */
	size_t fixed =
	        28 + lg__digits(ts) + lg__digits(seq) + lg__digits(seq % 100);
	return size > fixed + 1 ? size - fixed : 1;
}

static char
lg__pad_char(uint64_t seq, size_t i)
{
	return (char)('a' + (seq + i) % 26);
}

int
lg_payload_build(char *out, size_t cap, uint64_t ts, uint64_t seq, size_t size)
{
	size_t pad = lg__pad_len(ts, seq, size);
	int n = snprintf(out, cap,
	                 "{\"ts\":%llu,\"seq\":%llu,\"k\":%u,\"pad\":\"",
	                 (unsigned long long)ts, (unsigned long long)seq,
	                 (unsigned)(seq % 100));
	if (n < 0 || (size_t)n + pad + 3 > cap) {
		return -1;
	}
	for (size_t i = 0; i < pad; i++) {
		out[n + i] = lg__pad_char(seq, i);
	}
	n += (int)pad;
	out[n++] = '"';
	out[n++] = '}';
	out[n] = '\0';
	return n;
}

/* Position just after `"key"` and the following colon, or NULL. */
static const char *
lg__find_value(const char *buf, const char *end, const char *key)
{
	size_t kl = strlen(key);
	const char *p = buf;
	while (p < end) {
		const char *q = memmem(p, (size_t)(end - p), key, kl);
		if (!q) {
			return NULL;
		}
		q += kl;
		while (q < end &&
		       (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) {
			q++;
		}
		if (q < end && *q == ':') {
			q++;
			while (q < end && (*q == ' ' || *q == '\t' ||
			                   *q == '\n' || *q == '\r')) {
				q++;
			}
			return q;
		}
		p = q;
	}
	return NULL;
}

static int
lg__parse_u64(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = p;
	while (p < end && *p >= '0' && *p <= '9') {
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (p == s) {
		return -1;
	}
	*out = v;
	return 0;
}

int
lg_payload_parse(const char *buf, size_t len, size_t size, lg_payload *p)
{
	const char *end = buf + len;
	const char *v;
	uint64_t k = 0;

	v = lg__find_value(buf, end, "\"ts\"");
	if (!v || lg__parse_u64(v, end, &p->ts) < 0) {
		return -1;
	}
	v = lg__find_value(buf, end, "\"seq\"");
	if (!v || lg__parse_u64(v, end, &p->seq) < 0) {
		return -1;
	}
	v = lg__find_value(buf, end, "\"k\"");
	if (!v || lg__parse_u64(v, end, &k) < 0) {
		return -1;
	}
	p->k = (unsigned)k;
	p->intact = 0;
	v = lg__find_value(buf, end, "\"pad\"");
	if (!v || *v != '"') {
		return 0;
	}
	v++;
	size_t want = lg__pad_len(p->ts, p->seq, size);
	if ((size_t)(end - v) < want + 1 || v[want] != '"' ||
	    k != p->seq % 100) {
		return 0;
	}
	for (size_t i = 0; i < want; i++) {
		if (v[i] != lg__pad_char(p->seq, i)) {
			return 0;
		}
	}
	p->intact = 1;
	return 0;
}
