/*
 * Logging: one line per event, to stderr by default, as text or JSON lines.
 *
 * Libraries never print; they call ls_log(). Daemons pick the level and
 * format; tests replace the sink to capture or silence output.
 * Thread-safe: the sink is called under a mutex.
 */
#ifndef LS_LOG_H
#define LS_LOG_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum ls_log_level {
	LS_LOG_DEBUG = 0,
	LS_LOG_INFO = 1,
	LS_LOG_WARN = 2,
	LS_LOG_ERROR = 3,
	LS_LOG_OFF = 4,
} ls_log_level;

typedef enum ls_log_format {
	LS_LOG_TEXT = 0,
	LS_LOG_JSON = 1,
} ls_log_format;

/*
 * A sink receives one formatted event. component and message are borrowed
 * for the duration of the call.
 */
typedef void (*ls_log_sink)(ls_log_level level, const char *component,
                            const char *message, void *user);

void ls_log_set_level(ls_log_level level);
ls_log_level ls_log_get_level(void);
void ls_log_set_format(ls_log_format format);

/* Replace the sink; NULL restores the default (stderr). */
void ls_log_set_sink(ls_log_sink sink, void *user);

/* Parse "debug", "info", "warn", "error", "off". Returns 0 or -EINVAL. */
int ls_log_level_parse(const char *text, ls_log_level *out);

/* Parse "text" or "json". Returns 0 or -EINVAL. */
int ls_log_format_parse(const char *text, ls_log_format *out);

const char *ls_log_level_name(ls_log_level level);

/* Log one event. component is a short name such as "gateway". */
void ls_log(ls_log_level level, const char *component, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void ls_logv(ls_log_level level, const char *component, const char *fmt,
             va_list ap);

/*
 * A rate-limited log site, for events a client can repeat at will (failed
 * authentications, rate-limited requests, slow consumers): the first
 * `burst` events of each interval are logged one line each; the rest are
 * counted, and one summary line per interval reports how many were left
 * out and the first of them. Declare one per site, statically:
 *
 *   static ls_log_limit lim = LS_LOG_LIMIT_INIT(10000, 5);
 *   ls_log_ratelimited(&lim, LS_LOG_INFO, "gateway", "auth failed: %s", ip);
 *
 * The summary is written by the next event after the interval, or by
 * ls_log_limit_flush() (call it from a periodic timer so a burst that
 * stops is still reported). Thread-safe.
 */
#define LS__LOG_LIMIT_TEXT 160

typedef struct ls_log_limit {
	pthread_mutex_t lock;
	int64_t interval_ms;
	unsigned burst;
	/* state */
	int64_t window_start; /* monotonic ms; 0: no window yet */
	unsigned logged;      /* lines written in this window */
	uint64_t suppressed;  /* events counted, not written */
	ls_log_level level;   /* of the first suppressed event */
	char component[32];
	char first[LS__LOG_LIMIT_TEXT]; /* first suppressed message */
	/* on the list ls_log_limits_flush() walks, once it left something
	 * out (a site lives as long as the process: a static) */
	struct ls_log_limit *next;
	bool registered;
} ls_log_limit;

#define LS_LOG_LIMIT_INIT(interval_ms, burst)                                 \
	{                                                                     \
		PTHREAD_MUTEX_INITIALIZER, (interval_ms), (burst), 0, 0, 0,   \
		        LS_LOG_DEBUG, "", ""                                  \
	}

/* Log one event through lim (see above). */
void ls_log_ratelimited(ls_log_limit *lim, ls_log_level level,
                        const char *component, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/*
 * Write lim's summary when its interval is over (or at once with force)
 * and events were left out. Returns the number of events it reported.
 */
uint64_t ls_log_limit_flush(ls_log_limit *lim, bool force);

/*
 * ls_log_limit_flush(lim, false) for every site that ever left an event
 * out: a daemon calls it from a periodic timer, so the summary of a burst
 * that stopped still comes within about an interval. Thread-safe.
 */
void ls_log_limits_flush(void);

#define ls_debug(c, ...) ls_log(LS_LOG_DEBUG, c, __VA_ARGS__)
#define ls_info(c, ...)  ls_log(LS_LOG_INFO, c, __VA_ARGS__)
#define ls_warn(c, ...)  ls_log(LS_LOG_WARN, c, __VA_ARGS__)
#define ls_err(c, ...)   ls_log(LS_LOG_ERROR, c, __VA_ARGS__)

#endif
