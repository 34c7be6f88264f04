/*
 * Logging: one line per event, to stderr by default, as text or JSON lines.
 *
 * Libraries never print; they call ls_log(). Daemons pick the level and
 * format; tests replace the sink to capture or silence output.
 * Thread-safe: the sink is called under a mutex.
 */
#ifndef LS_LOG_H
#define LS_LOG_H

#include <stdarg.h>

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

#define ls_debug(c, ...) ls_log(LS_LOG_DEBUG, c, __VA_ARGS__)
#define ls_info(c, ...)  ls_log(LS_LOG_INFO, c, __VA_ARGS__)
#define ls_warn(c, ...)  ls_log(LS_LOG_WARN, c, __VA_ARGS__)
#define ls_err(c, ...)   ls_log(LS_LOG_ERROR, c, __VA_ARGS__)

#endif
