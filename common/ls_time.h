/* Clocks and time formatting. */
#ifndef LS_TIME_H
#define LS_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds, for deadlines and intervals. */
int64_t ls_now_ms(void);

/* Monotonic nanoseconds, for benchmarks. */
int64_t ls_now_ns(void);

/* CPU time of the calling thread in nanoseconds: work done, whatever
 * share of a CPU the thread gets. */
int64_t ls_thread_cpu_ns(void);

/* Wall clock milliseconds since the Unix epoch, for expiry times. */
int64_t ls_wall_ms(void);

#define LS_RFC3339_LEN 24 /* "2026-11-22T06:31:58.123Z" */

/* Format epoch milliseconds as RFC 3339 UTC with milliseconds. */
void ls_format_rfc3339(int64_t epoch_ms, char out[LS_RFC3339_LEN + 1]);

/* Parse RFC 3339 UTC ("...Z", optional fraction). Returns 0 or -EINVAL. */
int ls_parse_rfc3339(const char *text, int64_t *epoch_ms);

#endif
