/*
 * Every example configuration in deploy/examples loads with the real
 * settings loader (unknown keys and wrong types are errors), and says what
 * the deployment documents say it says.
 */
#include <string.h>

#include "ls_log.h"
#include "ls_settings.h"
#include "ls_test.h"

static int
load(const char *name, ls_settings *s)
{
	char path[512];
	ls_error err = { 0 };
	snprintf(path, sizeof(path), "%s/%s", LS_EXAMPLES_DIR, name);
	ls_settings_init(s);
	int rc = ls_settings_load_file(s, path, &err);
	if (rc < 0) {
		printf("# %s: %s\n", path, err.text);
	}
	return rc;
}

LS_TEST(gateway_example)
{
	ls_settings s;
	LS_CHECK_INT(load("gateway.json", &s), 0);
	LS_CHECK_STR(s.pubsub_url, "redis://10.0.0.5:6379");
	LS_CHECK_STR(s.listen, "10.0.0.11:8080");
	LS_CHECK_INT(s.trusted_proxies.count, 1);
	if (s.trusted_proxies.count == 1) {
		LS_CHECK_STR(s.trusted_proxies.items[0], "10.0.0.10");
	}
	LS_CHECK_STR(s.bus_frontend, "tcp://10.0.0.4:5555");
	LS_CHECK_STR(s.bus_server_key, "/etc/lightstream/keys/broker.pub");
	LS_CHECK_INT(s.drain_timeout_ms, 5000);
	ls_settings_clear(&s);
}

LS_TEST(broker_example)
{
	ls_settings s;
	LS_CHECK_INT(load("broker.json", &s), 0);
	LS_CHECK_STR(s.bus_frontend, "tcp://10.0.0.4:5555");
	LS_CHECK_STR(s.bus_backend, "tcp://10.0.0.4:5556");
	LS_CHECK_STR(s.bus_keys, "/etc/lightstream/keys/broker.key");
	LS_CHECK_INT(s.bus_allow.count, 3);
	LS_CHECK(!s.bus_insecure);
	ls_settings_clear(&s);
}

LS_TEST(appserver_examples)
{
	ls_settings s;
	LS_CHECK_INT(load("appserver.json", &s), 0);
	LS_CHECK_STR(s.store_uri,
	             "sqlite:/var/lib/lightstream/lightstream.db");
	LS_CHECK_INT(s.workers, 4);
	ls_settings_clear(&s);
	LS_CHECK_INT(load("appserver-mongodb.json", &s), 0);
	LS_CHECK(strncmp(s.store_uri, "mongodb://", 10) == 0);
	ls_settings_clear(&s);
}

LS_TEST(serve_example)
{
	ls_settings s;
	LS_CHECK_INT(load("serve.json", &s), 0);
	LS_CHECK_STR(s.pubsub_url, "local");
	LS_CHECK_STR(s.tls_listen, "0.0.0.0:8443");
	LS_CHECK_STR(s.tls_cert, "/etc/lightstream/tls/cert.pem");
	ls_settings_clear(&s);
}

int
main(void)
{
	ls_log_set_level(LS_LOG_OFF);
	return ls_test_run_all__();
}
