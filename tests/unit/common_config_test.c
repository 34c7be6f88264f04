#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ls_config.h"
#include "ls_test.h"

struct cfg {
	char *listen;
	long port;
	bool tls;
	ls_strlist origins;
	char *redis_url;
};

static int
apply(const char *text, struct cfg *c, ls_error *err)
{
	ls_config_field fields[] = {
		{ "listen", LS_CONFIG_STRING, &c->listen, 0, 0 },
		{ "port", LS_CONFIG_INT, &c->port, 1, 65535 },
		{ "tls", LS_CONFIG_BOOL, &c->tls, 0, 0 },
		{ "origins", LS_CONFIG_STRLIST, &c->origins, 0, 0 },
		{ "redis.url", LS_CONFIG_STRING, &c->redis_url, 0, 0 },
	};
	json_t *root = json_loads(text, 0, NULL);
	int rc = ls_config_apply(root, fields, 5, err);
	json_decref(root);
	return rc;
}

static void
cfg_free(struct cfg *c)
{
	free(c->listen);
	free(c->redis_url);
	ls_strlist_clear(&c->origins);
}

LS_TEST(config_applies_values)
{
	struct cfg c = { 0 };
	ls_error err;
	LS_CHECK_INT(apply("{\"listen\":\"0.0.0.0:80\",\"port\":8,"
	                   "\"tls\":true,\"origins\":[\"a\",\"b\"],"
	                   "\"redis\":{\"url\":\"redis://x\"}}",
	                   &c, &err),
	             0);
	LS_CHECK_STR(c.listen, "0.0.0.0:80");
	LS_CHECK_INT(c.port, 8);
	LS_CHECK(c.tls);
	LS_CHECK_INT(c.origins.count, 2);
	LS_CHECK_STR(c.origins.items[1], "b");
	LS_CHECK_STR(c.redis_url, "redis://x");
	cfg_free(&c);
}

LS_TEST(config_errors_name_the_key)
{
	struct cfg c = { 0 };
	ls_error err;
	LS_CHECK_INT(apply("{\"lisen\":\"x\"}", &c, &err), LS_ECONFIG);
	LS_CHECK(strstr(err.text, "lisen") != NULL);
	LS_CHECK_INT(apply("{\"port\":\"80\"}", &c, &err), LS_ECONFIG);
	LS_CHECK(strstr(err.text, "port") != NULL);
	LS_CHECK_INT(apply("{\"port\":70000}", &c, &err), LS_ECONFIG);
	LS_CHECK(strstr(err.text, "out of range") != NULL);
	LS_CHECK_INT(apply("{\"redis\":{\"uri\":\"x\"}}", &c, &err),
	             LS_ECONFIG);
	LS_CHECK(strstr(err.text, "redis.uri") != NULL);
	LS_CHECK_INT(apply("{\"redis.url\":\"x\"}", &c, &err), LS_ECONFIG);
	LS_CHECK(strstr(err.text, "redis.url") != NULL);
	LS_CHECK_INT(apply("{\"origins\":[1]}", &c, &err), LS_ECONFIG);
	LS_CHECK(strstr(err.text, "origins[0]") != NULL);
	cfg_free(&c);
}

LS_TEST(config_file_errors_have_position)
{
	json_t *root = NULL;
	ls_error err;
	char path[] = "/tmp/ls-config-test-XXXXXX";
	int fd = mkstemp(path);
	LS_CHECK(fd >= 0);
	LS_CHECK(write(fd, "{\n \"a\": ,\n}", 11) == 11);
	close(fd);
	LS_CHECK_INT(ls_config_load_file(path, &root, &err), LS_ECONFIG);
	LS_CHECK(strstr(err.text, ":2:") != NULL);
	unlink(path);
	LS_CHECK_INT(ls_config_load_file("/nonexistent/x.json", &root, &err),
	             LS_ECONFIG);
}

LS_TEST(host_port_parsing)
{
	char host[64];
	int port;
	LS_CHECK_INT(ls_parse_host_port("127.0.0.1:8080", host, sizeof(host),
	                                &port),
	             0);
	LS_CHECK_STR(host, "127.0.0.1");
	LS_CHECK_INT(port, 8080);
	LS_CHECK_INT(ls_parse_host_port("[::1]:9", host, sizeof(host), &port),
	             0);
	LS_CHECK_STR(host, "::1");
	LS_CHECK(ls_parse_host_port("nohost", host, sizeof(host), &port) < 0);
	LS_CHECK(ls_parse_host_port("h:99999", host, sizeof(host), &port) < 0);
	LS_CHECK(ls_parse_host_port(":80", host, sizeof(host), &port) < 0);
}

LS_TEST_MAIN()
