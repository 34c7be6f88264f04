/* The broker's built-in services: mmi.service and mmi.stats. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bus_broker_internal.h"

static char *
bus__stats(bus_broker *b)
{
	json_t *root = json_object(), *svcs = json_object();
	char *text;

	for (bus__service *s = b->services; s != NULL; s = s->next) {
		int idle = 0;
		for (bus__bworker *w = b->idle_head; w != NULL; w = w->inext) {
			idle += w->nheld == 0 && bus__serves(w, s);
		}
		json_object_set_new(
		        svcs, s->name,
		        json_pack("{s:i, s:i, s:i, s:I, s:I, s:I, s:I}",
		                  "queue", s->qlen, "workers", s->nworkers,
		                  "idle", idle, "served",
		                  (json_int_t)s->served, "failed",
		                  (json_int_t)s->failed, "timedOut",
		                  (json_int_t)s->timed_out, "rejected",
		                  (json_int_t)s->rejected));
	}
	json_object_set_new(root, "services", svcs);
	json_object_set_new(root, "workers", json_integer(b->nworkers));
	json_object_set_new(root, "queued", json_integer(b->nqueued));
	json_object_set_new(root, "forbidden",
	                    json_integer((json_int_t)b->forbidden));
	json_object_set_new(
	        root, "limits",
	        json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "services",
	                  BUS__MAX_SERVICES, "workers", BUS__MAX_WORKERS,
	                  "workersPerService", BUS__MAX_SERVICE_WORKERS,
	                  "servicesPerWorker", BUS__MAX_WORKER_SERVICES,
	                  "queuePerService", b->queue_limit, "queued",
	                  BUS__MAX_QUEUED));
	text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	return text;
}

void
bus__mmi(bus_broker *b, bus__msg *m, const char *svc, size_t len)
{
	const void *client = bus__frame_data(m, 0);
	size_t client_len = bus__frame_size(m, 0);
	const void *reqid = bus__frame_data(m, 1);

	if (len == 11 && memcmp(svc, "mmi.service", 11) == 0) {
		bus__service *s = bus__service_find(b, bus__frame_data(m, 3),
		                                    bus__frame_size(m, 3));
		const char *code = s && s->nworkers > 0 ? "200" : "404";
		bus__reply(b, client, client_len, reqid, BUS__ST_OK, code, 3);
	} else if (len == 9 && memcmp(svc, "mmi.stats", 9) == 0) {
		char *text = bus__stats(b);
		if (text != NULL) {
			bus__reply(b, client, client_len, reqid, BUS__ST_OK,
			           text, strlen(text));
		} else {
			bus__reply_error(b, client, client_len, reqid,
			                 LS_PC_SERVER_ERROR, "out of memory");
		}
		free(text);
	} else {
		static const char msg[] = "no such service";
		bus__reply(b, client, client_len, reqid, BUS__ST_NOSERVICE,
		           msg, sizeof(msg) - 1);
	}
}
