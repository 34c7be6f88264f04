/*
 * The local backend: in-process fan-out for a single gateway. Publishing
 * delivers synchronously to on_message when the topic has subscribers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ps_internal.h"

/* Payloads up to this size are copied on the stack, larger ones to heap. */
#define PS_LOCAL_STACK_COPY 4096

static int
ps__local_start(ps_fabric *f, const char *url, ls_error *err)
{
	return 0;
}

static void
ps__local_stop(ps_fabric *f)
{
}

static int
ps__local_subscribe(ps_fabric *f, ps__topic *t)
{
	t->confirmed = true;
	return 0;
}

static void
ps__local_unsubscribe(ps_fabric *f, ps__topic *t)
{
}

static int
ps__local_publish(ps_fabric *f, const char *topic, size_t tlen,
                  const char *payload, size_t len, ps_publish_fn done,
                  void *user)
{
	if (ps__topics_find(f->topics, topic, tlen) != NULL) {
		/* on_message is promised a NUL-terminated payload. */
		char small[PS_LOCAL_STACK_COPY];
		char *copy = len < sizeof(small) ? small : malloc(len + 1);
		if (copy == NULL) {
			return -ENOMEM;
		}
		memcpy(copy, payload, len);
		copy[len] = '\0';
		f->stats.published++;
		ps__deliver(f, topic, tlen, copy, len);
		if (copy != small) {
			free(copy);
		}
	} else {
		f->stats.published++;
	}
	if (done != NULL) {
		done(0, user);
	}
	return 0;
}

static bool
ps__local_ready(const ps_fabric *f)
{
	return true;
}

static const char *
ps__local_status(const ps_fabric *f)
{
	return "ready";
}

const ps__backend ps__local_backend = {
	.name = "local",
	.start = ps__local_start,
	.stop = ps__local_stop,
	.subscribe = ps__local_subscribe,
	.unsubscribe = ps__local_unsubscribe,
	.publish = ps__local_publish,
	.ready = ps__local_ready,
	.status = ps__local_status,
};
