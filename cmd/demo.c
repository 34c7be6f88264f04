#include "demo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bus_client.h"
#include "ls_json.h"
#include "ls_log.h"
#include "ls_time.h"

#define DEMO_LOG "demo"

/*
 * The demo account: the svc1 account of the reference accounts. The demo
 * page asks for its tokens with this private key, which is why it is a
 * demo and nothing else (docs/js-client.md explains the right way).
 */
static const char demo_account[] =
        "{\"appKey\":\"svc1\",\"privateKey\":\"svc1_private\","
        "\"secretKey\":\"svc1_secret\",\"isPublic\":true,\"roles\":{"
        "\"public\":[{\"owner\":\"svc1\",\"stream\":\"weather\","
        "\"permission\":2}],"
        "\"publisher\":[{\"owner\":\"svc1\",\"stream\":\"weather\","
        "\"permission\":3}]}}";

/* Typical early-winter afternoons: different enough for filters to bite. */
static const struct {
	const char *name;
	double temperature, humidity;
} demo_cities[5] = {
	{ "Lisboa", 16.0, 72.0 }, { "Porto", 14.0, 80.0 },
	{ "Madrid", 11.0, 58.0 }, { "Paris", 8.0, 84.0 },
	{ "Berlin", 4.0, 86.0 },
};

struct serve_demo {
	gw_gateway *gw;
	struct ev_loop *loop;
	ev_timer timer;
	unsigned seed;
	double temperature[5];
	double humidity[5];
};

double
serve_demo_step(double value, double mean, double pull, double noise,
                unsigned *seed)
{
	double r = (double)(rand_r(seed) % 2001) / 1000.0 - 1.0;

	return value + pull * (mean - value) + noise * r;
}

static void
demo_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	serve_demo *d = w->data;
	char now[LS_RFC3339_LEN + 1];

	(void)loop;
	(void)revents;
	ls_format_rfc3339(ls_wall_ms(), now);
	for (int i = 0; i < 5; i++) {
		json_t *readings = json_array(), *msg;
		char *text;

		d->temperature[i] = serve_demo_step(d->temperature[i],
		                                    demo_cities[i].temperature,
		                                    0.05, 0.4, &d->seed);
		d->humidity[i] = serve_demo_step(d->humidity[i],
		                                 demo_cities[i].humidity, 0.05,
		                                 1.0, &d->seed);
		if (d->humidity[i] > 100) {
			d->humidity[i] = 100;
		}
		for (int k = 0; k < 3; k++) {
			static const char *const sensors[3] = { "north",
				                                "centre",
				                                "south" };
			double t = d->temperature[i] + (k - 1) * 0.7;
			double h = fmin(100, d->humidity[i] - k * 2.0);

			json_array_append_new(
			        readings, json_pack("{s:s,s:f,s:f}", "sensor",
			                            sensors[k], "temperature",
			                            round(t * 10) / 10,
			                            "humidity", round(h)));
		}
		msg = json_pack("{s:s,s:f,s:f,s:s,s:o}", "city",
		                demo_cities[i].name, "temperature",
		                round(d->temperature[i] * 10) / 10, "humidity",
		                round(d->humidity[i]), "time", now, "readings",
		                readings);
		text = msg ? ls_json_dumps(msg, NULL) : NULL;
		if (text != NULL) {
			gw_gateway_publish(d->gw, "svc1", "weather", text,
			                   strlen(text));
		}
		free(text);
		json_decref(msg);
	}
}

/*
 * One call of the accounts service; true when it answered success. On
 * failure *msg (cap bytes) says why and *pc is the error's code.
 */
static bool
demo_accounts_call(void *zmq_ctx, const char *frontend, const char *op,
                   const char *arg, ls_proto_code *pc, char *msg, size_t cap)
{
	bus_status st = BUS_ERROR;
	json_t *req = json_pack("{s:s,s:[s]}", "o", op, "a", arg);
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	char *reply = NULL;
	size_t len = 0;
	bool sent = body != NULL &&
	            bus_call(zmq_ctx, frontend, "accounts", body, strlen(body),
	                     5000, &st, &reply, &len) == 0;
	bool ok = sent && st == BUS_OK;

	if (!ok) {
		*pc = sent ? bus_reply_error(st, reply, len, msg, cap)
		           : LS_PC_UNAVAILABLE;
		if (!sent) {
			snprintf(msg, cap, "the service bus is down");
		}
	}
	json_decref(req);
	free(body);
	free(reply);
	return ok;
}

/* Create the demo account unless an account svc1 exists already. */
static void
demo_account_ensure(void *zmq_ctx, const char *frontend)
{
	char msg[LS_ERROR_TEXT_MAX];
	ls_proto_code pc = LS_PC_SERVER_ERROR;

	if (demo_accounts_call(zmq_ctx, frontend, "get", "svc1", &pc, msg,
	                       sizeof(msg))) {
		ls_info(DEMO_LOG, "the demo uses the existing account svc1 "
		                  "(its private key must be svc1_private)");
		return;
	}
	if (pc != LS_PC_NOT_FOUND) {
		/* Not "no such account": creating it would not help. */
		ls_warn(DEMO_LOG,
		        "cannot look up the demo account svc1 (%s: %s): the "
		        "demo page may not get tokens",
		        ls_proto_code_name(pc), msg);
		return;
	}
	if (demo_accounts_call(zmq_ctx, frontend, "create", demo_account, &pc,
	                       msg, sizeof(msg))) {
		ls_info(DEMO_LOG,
		        "created the demo account svc1 (private key "
		        "svc1_private: the demo page asks for tokens "
		        "with it; use it for nothing else)");
	} else {
		ls_warn(DEMO_LOG,
		        "could not create the demo account svc1 (%s: %s): the "
		        "demo page will not get tokens; start with --fixture "
		        "tests/fixtures/accounts.json",
		        ls_proto_code_name(pc), msg);
	}
}

serve_demo *
serve_demo_start(struct ev_loop *loop, gw_gateway *gw, void *zmq_ctx,
                 const char *frontend)
{
	serve_demo *d = calloc(1, sizeof(*d));

	if (d == NULL) {
		return NULL;
	}
	demo_account_ensure(zmq_ctx, frontend);
	d->gw = gw;
	d->loop = loop;
	d->seed = (unsigned)ls_wall_ms();
	for (int i = 0; i < 5; i++) {
		d->temperature[i] = demo_cities[i].temperature;
		d->humidity[i] = demo_cities[i].humidity;
	}
	ev_timer_init(&d->timer, demo_tick, 0.5, 0.5);
	d->timer.data = d;
	ev_timer_start(loop, &d->timer);
	return d;
}

void
serve_demo_stop(serve_demo **pd)
{
	serve_demo *d = pd ? *pd : NULL;

	if (d == NULL) {
		return;
	}
	ev_timer_stop(d->loop, &d->timer);
	free(d);
	*pd = NULL;
}
