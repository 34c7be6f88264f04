/* Benchmark message payloads: `{"ts":<ns>,"seq":N,"k":K,"pad":"..."}`.
 *
 * ts is the publisher's CLOCK_MONOTONIC time in nanoseconds (the clock is
 * system-wide, so a receiver in another process can compute the latency),
 * seq counts messages from 0, k = seq % 100 lets a query select a chosen
 * percentage of messages, and pad fills the message to its target size
 * with letters derived from seq, so a receiver can prove the payload
 * arrived intact.
 */
#ifndef LG_PAYLOAD_H
#define LG_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct lg_payload {
	uint64_t ts;
	uint64_t seq;
	unsigned k;
	int intact; /* pad has the expected length and letters */
} lg_payload;

/* Write the payload for (ts, seq) of about `size` bytes into out.
 * Returns its length, or -1 when cap is too small. */
int lg_payload_build(char *out, size_t cap, uint64_t ts, uint64_t seq,
                     size_t size);

/* Parse the payload fields found in buf (keys in any order, whitespace
 * allowed, as a server may re-serialize the JSON). Returns 0 and fills *p,
 * or -1 when a number field is missing. `size` is the size the publisher
 * used (needed to check the pad). */
int lg_payload_parse(const char *buf, size_t len, size_t size, lg_payload *p);

#endif
