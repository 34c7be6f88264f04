/*
 * In-memory stream history (the local fabric's, docs/pubsub.md): per
 * stream, a bounded list of the latest messages with their offsets, an
 * offset counter and a random epoch; all streams together bounded in
 * bytes. Time is passed in (milliseconds, any monotonic origin), so the
 * bounds are testable without waiting.
 *
 * Bounds: a stream keeps at most its size messages, each for its ttl; the
 * store keeps at most max_bytes (messages and per-stream records); beyond
 * that the oldest messages of all streams go first. A stream's record (its
 * epoch and offset counter) is freed only when it holds no message, was
 * idle for its ttl and the caller does not keep it (a subscribed topic):
 * a new record has a new epoch, so an old offset never matches.
 */
#ifndef PS_HISTORY_H
#define PS_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ps_fabric.h"

typedef struct ps__hist ps__hist;

/* New empty store bounded by max_bytes (0: PS_HISTORY_BYTES_DEFAULT). */
ps__hist *ps__hist_new(size_t max_bytes);

/* Free everything; accepts NULL and clears *h. */
void ps__hist_destroy(ps__hist **h);

/*
 * Append data (len bytes, borrowed, copied) to topic's history under cfg
 * (size > 0). Sets *offset to the message's offset and *epoch (may be
 * NULL; borrowed until the next call) to the stream's epoch. Returns 0 or
 * -ENOMEM.
 */
int ps__hist_append(ps__hist *h, const char *topic, size_t tlen,
                    const char *data, size_t len, const ps_history_cfg *cfg,
                    int64_t now_ms, uint64_t *offset, const char **epoch);

/*
 * Read topic's history after since, at most limit messages, into *out
 * (epoch, latest, complete; the record is created when missing). out->msgs
 * is a new array (free() it) whose data pointers are borrowed from the
 * store until its next call. Returns 0 or -ENOMEM.
 */
int ps__hist_read(ps__hist *h, const char *topic, size_t tlen, uint64_t since,
                  size_t limit, int64_t now_ms, ps_history_result *out);

/*
 * Drop expired messages; free idle empty records for which keep (may be
 * NULL) says false.
 */
void ps__hist_sweep(ps__hist *h, int64_t now_ms,
                    bool (*keep)(const char *topic, size_t tlen, void *arg),
                    void *arg);

/* Bytes held (messages and records) and number of stream records. */
size_t ps__hist_bytes(const ps__hist *h);
size_t ps__hist_streams(const ps__hist *h);

#endif
