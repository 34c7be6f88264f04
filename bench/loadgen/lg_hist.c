#include "lg_hist.h"

static unsigned
lg__hist_index(uint64_t v)
{
	if (v < LG_HIST_LINEAR) {
		return (unsigned)v;
	}
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= SUB_BITS + 1 */
	if (e >= LG_HIST_MAX_EXP) {
		return LG_HIST_BUCKETS - 1;
	}
	unsigned sub =
	        (unsigned)(v >> (e - LG_HIST_SUB_BITS)) & (LG_HIST_SUB - 1);
	return LG_HIST_LINEAR + (e - LG_HIST_SUB_BITS - 1) * LG_HIST_SUB + sub;
}

/* Lower bound and width of bucket i. */
static void
lg__hist_bounds(unsigned i, double *lo, double *width)
{
	if (i < LG_HIST_LINEAR) {
		*lo = i;
		*width = 1;
		return;
	}
	unsigned k = i - LG_HIST_LINEAR;
	unsigned e = k / LG_HIST_SUB + LG_HIST_SUB_BITS + 1;
	unsigned sub = k % LG_HIST_SUB;
	double unit = (double)(1ull << (e - LG_HIST_SUB_BITS));
	*lo = (double)(LG_HIST_SUB + sub) * unit;
	*width = unit;
}

void
lg_hist_record(lg_hist *h, uint64_t us)
{
	h->buckets[lg__hist_index(us)]++;
	h->count++;
	h->sum_us += (double)us;
	if (us > h->max_us) {
		h->max_us = us;
	}
}

void
lg_hist_merge(lg_hist *dst, const lg_hist *src)
{
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
		dst->buckets[i] += src->buckets[i];
	}
	dst->count += src->count;
	dst->sum_us += src->sum_us;
	if (src->max_us > dst->max_us) {
		dst->max_us = src->max_us;
	}
}

double
lg_hist_quantile(const lg_hist *h, double q)
{
	if (h->count == 0) {
		return 0;
	}
	uint64_t rank = (uint64_t)(q * (double)h->count);
	if (rank >= h->count) {
		rank = h->count - 1;
	}
	uint64_t seen = 0;
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen > rank) {
			double lo, width;
			lg__hist_bounds(i, &lo, &width);
			double mid = lo + (width - 1) / 2;
			return mid > (double)h->max_us ? (double)h->max_us
			                               : mid;
		}
	}
	return (double)h->max_us;
}
