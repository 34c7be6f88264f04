/* Dot paths ("location.city", "items.0.price") split once at compile
 * time into segments; numeric segments also index arrays. */
#include <errno.h>
#include <string.h>

#include "q_internal.h"

int
q__path_split(const char *s, size_t len, struct q_path *out, const char **why)
{
	uint32_t nseg = 0;

	out->segs = NULL;
	out->nseg = 0;
	if (len == 0) {
		return 0;
	}
	if (memchr(s, '\0', len) != NULL) {
		*why = "contains a NUL character";
		return -EINVAL;
	}
	for (size_t i = 0, start = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			continue;
		}
		if (i == start) {
			*why = "empty segment (leading, trailing or double "
			       "dot)";
			return -EINVAL;
		}
		if (++nseg > Q_MAX_PATH_SEGMENTS) {
			*why = "more than 32 segments";
			return -EINVAL;
		}
		start = i + 1;
	}
	/* Segment table followed by a NUL-terminated copy of the keys. */
	char *block = q__malloc(nseg * sizeof(struct q_seg) + len + 1);
	if (block == NULL) {
		return -ENOMEM;
	}
	struct q_seg *segs = (struct q_seg *)block;
	char *keys = block + nseg * sizeof(struct q_seg);
	memcpy(keys, s, len);
	keys[len] = '\0';
	uint32_t k = 0;
	for (size_t i = 0, start = 0; i <= len; i++) {
		if (i < len && keys[i] != '.') {
			continue;
		}
		struct q_seg *g = &segs[k++];
		g->key = keys + start;
		g->len = i - start;
		g->index = -1;
		/* Canonical non-negative integers also index arrays; "01"
		 * stays a plain key. */
		if (g->len <= 8 && (g->len == 1 || g->key[0] != '0')) {
			long idx = 0;
			size_t j;
			for (j = 0; j < g->len; j++) {
				if (g->key[j] < '0' || g->key[j] > '9') {
					break;
				}
				idx = idx * 10 + (g->key[j] - '0');
			}
			if (j == g->len && idx <= Q_MAX_PATH_INDEX) {
				g->index = idx;
			}
		}
		keys[i] = '\0';
		start = i + 1;
	}
	out->segs = segs;
	out->nseg = nseg;
	return 0;
}

void
q__path_free(struct q_path *p)
{
	q__free(p->segs);
	p->segs = NULL;
	p->nseg = 0;
}
