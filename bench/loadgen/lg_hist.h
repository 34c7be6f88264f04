/* Latency histogram with log-linear buckets (HdrHistogram-style).
 *
 * Values are microseconds. Below 128 µs every value has its own bucket;
 * above, each power of two is split into 64 sub-buckets, so a reported
 * percentile is within ~1.6 % of the true value. The struct is plain data
 * (no pointers) so it can live in shared memory and be merged by adding
 * counts.
 */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stdint.h>

#define LG_HIST_SUB_BITS 6
#define LG_HIST_SUB      (1u << LG_HIST_SUB_BITS)
#define LG_HIST_LINEAR   (2u * LG_HIST_SUB)
#define LG_HIST_MAX_EXP  40 /* 2^40 µs: ~12 days, far above any run */
#define LG_HIST_BUCKETS                                                       \
	(LG_HIST_LINEAR +                                                     \
	 (LG_HIST_MAX_EXP - LG_HIST_SUB_BITS - 1) * LG_HIST_SUB)

typedef struct lg_hist {
	uint64_t count;
	uint64_t max_us;
	double sum_us;
	uint64_t buckets[LG_HIST_BUCKETS];
} lg_hist;

/* Add one value (µs). Values above the range land in the last bucket. */
void lg_hist_record(lg_hist *h, uint64_t us);

/* Add every count of src to dst. */
void lg_hist_merge(lg_hist *dst, const lg_hist *src);

/* The value (µs, midpoint of its bucket) below which `q` (0..1) of the
 * recorded values lie; 0 when the histogram is empty. */
double lg_hist_quantile(const lg_hist *h, double q);

#endif
