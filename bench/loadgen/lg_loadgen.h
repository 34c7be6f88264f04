/* Shared definitions of the load generator `ls-loadgen`.
 *
 * The parent process publishes and measures the server; forked child
 * processes hold the subscriber connections (each process is limited to
 * 20,000 file descriptors here). Parent and children communicate only
 * through one anonymous shared mapping (lg_shared): the parent moves the
 * phase forward and sets the measurement window, every child owns its own
 * lg_child_stats slot, which the parent merges at the end.
 */
#ifndef LG_LOADGEN_H
#define LG_LOADGEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lg_hist.h"

#define LG_MAX_PROCS      16
#define LG_MAX_STREAMS    8
#define LG_MAX_PIDS       8
#define LG_MAX_CODES      16
#define LG_CONNS_PER_PROC 15000 /* default split; the fd limit is 20,000 */

typedef enum lg_target {
	LG_TARGET_LIGHTSTREAM,
	LG_TARGET_NCHAN,
} lg_target;

typedef enum lg_phase {
	LG_PHASE_CONNECT,
	LG_PHASE_HOLD,
	LG_PHASE_WARMUP,
	LG_PHASE_MEASURE,
	LG_PHASE_DRAIN,
	LG_PHASE_DONE,
} lg_phase;

typedef struct lg_config {
	lg_target target;
	char host[64];
	int port;
	char path[256];     /* subscriber WebSocket path */
	char pub_path[256]; /* publisher path (WebSocket, or HTTP POST) */
	int pub_http;       /* publish with HTTP POST instead of WebSocket */
	char app[72];       /* LightStream appKey */
	char token[128];    /* subscribers' token */
	char pub_token[128];
	char owner[72];
	char streams[LG_MAX_STREAMS][136]; /* each connection subscribes all */
	int nstreams;
	char pub_stream[136];
	int selectivity; /* -1: no query; else percentage selected */
	unsigned subscribers;
	unsigned procs;
	unsigned sources;  /* spread over 127.0.0.2 .. 127.0.0.(1+sources) */
	unsigned inflight; /* concurrent connection set-ups per process */
	double rate;       /* messages per second published */
	double seconds;    /* measured window */
	double warmup;
	double hold; /* idle hold after connecting */
	double drain_max;
	double connect_timeout;
	double slow_fraction; /* share of subscribers that stop reading */
	size_t payload_size;
	pid_t server_pids[LG_MAX_PIDS];
	int nserver_pids;
	int check;
} lg_config;

typedef struct lg_child_stats {
	uint64_t started;
	uint64_t ready;
	uint64_t failed;
	uint64_t handshake_failed;
	uint64_t auth_failed;
	uint64_t sub_failed;
	uint64_t frames;
	uint64_t data_frames;
	uint64_t normal_received; /* new messages at subscribers that read */
	uint64_t window_frames;
	uint64_t bad_frames;
	uint64_t corrupt;
	uint64_t dups;
	uint64_t drops;
	uint64_t lost_subscribers; /* ready, not slow, fewer than expected */
	uint64_t errors_received;
	uint64_t stale; /* messages published before this run: ignored */
	uint64_t closed_by_server;
	uint64_t slow;
	uint64_t slow_closed;
	uint64_t codes[LG_MAX_CODES][2]; /* close code, count */
	uint64_t connect_done_ns;
	double window_cpu_s; /* this process's CPU time inside the window */
	int connect_done;
	int finished;
	char first_error[160];
	lg_hist lat;
	lg_hist setup; /* connect() to subscribed, µs */
} lg_child_stats;

typedef struct lg_shared {
	int phase;                /* lg_phase; atomic accesses */
	uint64_t start_ns;        /* earlier publish times: another run's */
	uint64_t window_start_ns; /* publish times inside the window count */
	uint64_t window_end_ns;
	uint64_t expected; /* messages each normal subscriber should get */
	lg_child_stats child[LG_MAX_PROCS];
} lg_shared;

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t lg_now_ns(void);

/* Run one subscriber process: connections [first, first + count) of the
 * whole set. Never returns; exits 0. */
void lg_sub_run(const lg_config *cfg, lg_shared *sh, unsigned id,
                unsigned first, unsigned count) __attribute__((noreturn));

/* Publisher (parent side). */
typedef struct lg_pub lg_pub;

/* Connect (and authenticate, for LightStream over WebSocket) within
 * `timeout` seconds. Returns a new publisher, or NULL with a reason in err. */
lg_pub *lg_pub_new(const lg_config *cfg, char *err, size_t errlen);

/* Bring the number of messages published up to `target` as far as the
 * socket allows, and read whatever the server sent. Returns 0, or -1 when
 * the connection failed (reason in err). */
int lg_pub_pump(lg_pub *p, uint64_t target, char *err, size_t errlen);

/* Wait up to `ms` for the publisher socket to become readable/writable. */
void lg_pub_wait(lg_pub *p, int ms);

uint64_t lg_pub_published(const lg_pub *p);
uint64_t lg_pub_responses(const lg_pub *p); /* HTTP 2xx answers */
uint64_t lg_pub_refused(const lg_pub *p);   /* HTTP non-2xx answers */
uint64_t lg_pub_stalls(const lg_pub *p);    /* pumps limited by backpressure */

/* Close and free; accepts NULL and clears *pp. */
void lg_pub_destroy(lg_pub **pp);

/* Server process statistics from /proc: CPU seconds (user + system, all
 * threads) and resident memory in KiB, summed over the configured pids.
 * Return -1 when a process is gone. */
double lg_proc_cpu_s(const lg_config *cfg);
long lg_proc_rss_kb(const lg_config *cfg);

/* Seconds the server's threads waited for a CPU while runnable (other
 * processes on its CPU), summed over the pids; -1 when unavailable. */
double lg_proc_wait_s(const lg_config *cfg);

#endif
