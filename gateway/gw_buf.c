#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"

gw_buf *
gw_buf_new(const void *data, size_t len)
{
	gw_buf *b = malloc(sizeof(*b) + len + 1);

	if (b == NULL) {
		return NULL;
	}
	b->refs = 1;
	b->len = len;
	if (data != NULL) {
		memcpy(b->data, data, len);
	}
	b->data[len] = '\0';
	return b;
}

gw_buf *
gw_buf_ref(gw_buf *b)
{
	if (b != NULL) {
		b->refs++;
	}
	return b;
}

void
gw_buf_unref(gw_buf **b)
{
	if (b == NULL || *b == NULL) {
		return;
	}
	if (--(*b)->refs == 0) {
		free(*b);
	}
	*b = NULL;
}
