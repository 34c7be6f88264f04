#include "ls_log.h"

#include "ls_time.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#define LS__LOG_LINE_MAX 2048

static const char *ls__level_names[] = { "debug", "info", "warn", "error",
	                                 "off" };

static struct {
	pthread_mutex_t lock;
	ls_log_level level;
	ls_log_format format;
	ls_log_sink sink;
	void *user;
} ls__log = { PTHREAD_MUTEX_INITIALIZER, LS_LOG_INFO, LS_LOG_TEXT, NULL,
	      NULL };

void
ls_log_set_level(ls_log_level level)
{
	ls__log.level = level;
}

ls_log_level
ls_log_get_level(void)
{
	return ls__log.level;
}

void
ls_log_set_format(ls_log_format format)
{
	ls__log.format = format;
}

void
ls_log_set_sink(ls_log_sink sink, void *user)
{
	pthread_mutex_lock(&ls__log.lock);
	ls__log.sink = sink;
	ls__log.user = user;
	pthread_mutex_unlock(&ls__log.lock);
}

int
ls_log_level_parse(const char *text, ls_log_level *out)
{
	for (int i = 0; i <= LS_LOG_OFF; i++) {
		if (strcasecmp(text, ls__level_names[i]) == 0) {
			*out = (ls_log_level)i;
			return 0;
		}
	}
	if (strcasecmp(text, "warning") == 0) {
		*out = LS_LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

int
ls_log_format_parse(const char *text, ls_log_format *out)
{
	if (strcasecmp(text, "text") == 0) {
		*out = LS_LOG_TEXT;
	} else if (strcasecmp(text, "json") == 0) {
		*out = LS_LOG_JSON;
	} else {
		return -EINVAL;
	}
	return 0;
}

const char *
ls_log_level_name(ls_log_level level)
{
	if ((int)level < 0 || level > LS_LOG_OFF) {
		return "?";
	}
	return ls__level_names[level];
}

/* Append s to out as JSON string content (without quotes). */
static void
ls__json_escape(FILE *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			fputc('\\', out);
			fputc(c, out);
		} else if (c == '\n') {
			fputs("\\n", out);
		} else if (c < 0x20) {
			fprintf(out, "\\u%04x", c);
		} else {
			fputc(c, out);
		}
	}
}

static void
ls__default_sink(ls_log_level level, const char *component,
                 const char *message)
{
	struct timeval tv;
	struct tm tm;
	char when[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	flockfile(stderr);
	if (ls__log.format == LS_LOG_JSON) {
		fprintf(stderr,
		        "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\","
		        "\"component\":\"",
		        when, (long)tv.tv_usec / 1000,
		        ls_log_level_name(level));
		ls__json_escape(stderr, component);
		fputs("\",\"msg\":\"", stderr);
		ls__json_escape(stderr, message);
		fputs("\"}\n", stderr);
	} else {
		fprintf(stderr, "%s.%03ldZ %-5s %s: %s\n", when,
		        (long)tv.tv_usec / 1000, ls_log_level_name(level),
		        component, message);
	}
	funlockfile(stderr);
}

void
ls_logv(ls_log_level level, const char *component, const char *fmt, va_list ap)
{
	char line[LS__LOG_LINE_MAX];

	if (level < ls__log.level || level >= LS_LOG_OFF) {
		return;
	}
	vsnprintf(line, sizeof(line), fmt, ap);
	pthread_mutex_lock(&ls__log.lock);
	if (ls__log.sink != NULL) {
		ls__log.sink(level, component, line, ls__log.user);
	} else {
		ls__default_sink(level, component, line);
	}
	pthread_mutex_unlock(&ls__log.lock);
}

void
ls_log(ls_log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ls_logv(level, component, fmt, ap);
	va_end(ap);
}

/* The sites that left something out, newest first. A site's next never
 * changes once it is on the list, so the list is walked without the lock. */
static pthread_mutex_t ls__limits_lock = PTHREAD_MUTEX_INITIALIZER;
static ls_log_limit *ls__limits;

/* Write the summary of what lim left out; called with lim->lock held. */
static uint64_t
ls__limit_summary(ls_log_limit *lim, int64_t now)
{
	uint64_t n = lim->suppressed;

	if (n > 0) {
		ls_log(lim->level, lim->component,
		       "%llu similar event(s) not logged in the last %lld ms; "
		       "the first: %s",
		       (unsigned long long)n,
		       (long long)(now - lim->window_start), lim->first);
	}
	lim->suppressed = 0;
	lim->logged = 0;
	lim->window_start = now;
	return n;
}

void
ls_log_ratelimited(ls_log_limit *lim, ls_log_level level,
                   const char *component, const char *fmt, ...)
{
	int64_t now;
	va_list ap;

	if (level < ls__log.level || level >= LS_LOG_OFF) {
		return;
	}
	now = ls_now_ms();
	pthread_mutex_lock(&lim->lock);
	if (lim->window_start == 0) {
		lim->window_start = now;
	} else if (now - lim->window_start >= lim->interval_ms) {
		ls__limit_summary(lim, now);
	}
	if (lim->logged < lim->burst) {
		lim->logged++;
		va_start(ap, fmt);
		ls_logv(level, component, fmt, ap);
		va_end(ap);
	} else {
		if (!lim->registered) {
			pthread_mutex_lock(&ls__limits_lock);
			lim->next = ls__limits;
			ls__limits = lim;
			lim->registered = true;
			pthread_mutex_unlock(&ls__limits_lock);
		}
		if (lim->suppressed++ == 0) {
			lim->level = level;
			snprintf(lim->component, sizeof(lim->component), "%s",
			         component);
			va_start(ap, fmt);
			vsnprintf(lim->first, sizeof(lim->first), fmt, ap);
			va_end(ap);
		}
	}
	pthread_mutex_unlock(&lim->lock);
}

uint64_t
ls_log_limit_flush(ls_log_limit *lim, bool force)
{
	int64_t now = ls_now_ms();
	uint64_t n = 0;

	pthread_mutex_lock(&lim->lock);
	if (lim->suppressed > 0 &&
	    (force || now - lim->window_start >= lim->interval_ms)) {
		n = ls__limit_summary(lim, now);
	}
	pthread_mutex_unlock(&lim->lock);
	return n;
}

void
ls_log_limits_flush(void)
{
	ls_log_limit *lim;

	pthread_mutex_lock(&ls__limits_lock);
	lim = ls__limits;
	pthread_mutex_unlock(&ls__limits_lock);
	for (; lim != NULL; lim = lim->next) {
		ls_log_limit_flush(lim, false);
	}
}
