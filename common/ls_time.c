#include "ls_time.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t
ls_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
ls_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
ls_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
ls_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
ls_format_rfc3339(int64_t epoch_ms, char out[LS_RFC3339_LEN + 1])
{
	time_t secs = (time_t)(epoch_ms / 1000);
	struct tm tm;
	char buf[64];

	gmtime_r(&secs, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, (int)(epoch_ms % 1000));
	memcpy(out, buf, LS_RFC3339_LEN);
	out[LS_RFC3339_LEN] = '\0';
}

int
ls_parse_rfc3339(const char *text, int64_t *epoch_ms)
{
	struct tm tm;
	int ms = 0;
	const char *rest;

	memset(&tm, 0, sizeof(tm));
	rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest == NULL) {
		return -EINVAL;
	}
	if (*rest == '.') {
		int digits = 0;
		rest++;
		while (*rest >= '0' && *rest <= '9') {
			if (digits < 3) {
				ms = ms * 10 + (*rest - '0');
			}
			digits++;
			rest++;
		}
		if (digits == 0) {
			return -EINVAL;
		}
		for (; digits < 3; digits++) {
			ms *= 10;
		}
	}
	if (strcmp(rest, "Z") != 0) {
		return -EINVAL;
	}
	*epoch_ms = (int64_t)timegm(&tm) * 1000 + ms;
	return 0;
}
