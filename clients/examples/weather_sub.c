/*
 * weather_sub — subscribe to svc1/weather with a query and print every
 * matching message, reconnecting when the gateway goes away.
 *
 *   weather_sub URL APPKEY TOKEN [CITY]
 *   weather_sub ws://127.0.0.1:8080 acc1 "$TOKEN" Lisboa
 *
 * The token must grant reading svc1/weather (the fixture's acc1 role
 * "weather-reader", or svc1's "public").
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "lsc.h"

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void
on_subscribe(lsc_client *c, int64_t sub, const char *subscription_id,
             const char *code, const char *message, void *user)
{
	if (subscription_id == NULL) {
		fprintf(stderr, "weather_sub: subscription refused: %s: %s\n",
		        code, message);
		lsc_client_stop(c);
	}
}

static void
on_message(lsc_client *c, const lsc_message *m, void *user)
{
	printf("%s/%s: %s\n", m->owner, m->stream, m->data);
	fflush(stdout);
}

static void
on_close(lsc_client *c, int code, const char *reason, bool reconnecting,
         void *user)
{
	fprintf(stderr, "weather_sub: connection closed (%d %s)%s\n", code,
	        reason, reconnecting ? ", reconnecting" : "");
	if (!reconnecting) {
		lsc_client_stop(c);
	}
}

int
main(int argc, char **argv)
{
	char query[512];
	lsc_error err;
	lsc_options opt = { 0 };
	lsc_client *c;
	int rc = 1;

	if (argc < 4) {
		fprintf(stderr,
		        "usage: weather_sub URL APPKEY TOKEN [CITY]\n");
		return 2;
	}
	/* Lisbon (or CITY) below 15 °C — docs/query.md's example. */
	snprintf(query, sizeof(query),
	         "{\"mode\":\"any\",\"where\":{\"and\":["
	         "{\"field\":\"city\",\"op\":\"equals\",\"value\":\"%s\"},"
	         "{\"field\":\"temperature\",\"op\":\"less\",\"value\":15}]}}",
	         argc > 4 ? argv[4] : "Lisboa");

	opt.url = argv[1];
	opt.app_key = argv[2];
	opt.token = argv[3];
	opt.reconnect = true;
	opt.cb.on_subscribe = on_subscribe;
	opt.cb.on_message = on_message;
	opt.cb.on_close = on_close;
	c = lsc_client_new(&opt, &err);
	if (c == NULL) {
		fprintf(stderr, "weather_sub: %s\n", err.text);
		return 2;
	}
	if (lsc_client_subscribe(c, "svc1", "weather", query, &err) < 0) {
		fprintf(stderr, "weather_sub: %s\n", err.text);
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (lsc_client_connect(c) != 0) {
		goto out;
	}
	/* Short slices so a signal is noticed promptly. */
	while (!stop_requested) {
		if (lsc_client_run(c, 200) != 0) {
			break;
		}
	}
	rc = 0;
out:
	lsc_client_destroy(&c);
	return rc;
}
