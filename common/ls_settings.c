#include "ls_settings.h"
#include "ls_proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ls_log.h"

enum {
	LS__OPT_CONFIG = 0x1000,
	LS__OPT_LISTEN,
	LS__OPT_DATA,
	LS__OPT_REDIS,
	LS__OPT_STORE,
	LS__OPT_FRONTEND,
	LS__OPT_BACKEND,
	LS__OPT_LOG_LEVEL,
	LS__OPT_LOG_FORMAT,
	LS__OPT_BUS_KEYS,
	LS__OPT_BUS_SERVER_KEY,
	LS__OPT_FABRIC_SERVER_KEY,
	LS__OPT_BUS_ALLOW,
	LS__OPT_BUS_INSECURE,
};

const struct option ls_settings_options[] = {
	{ "config", required_argument, NULL, LS__OPT_CONFIG },
	{ "listen", required_argument, NULL, LS__OPT_LISTEN },
	{ "data", required_argument, NULL, LS__OPT_DATA },
	{ "redis", required_argument, NULL, LS__OPT_REDIS },
	{ "fabric", required_argument, NULL, LS__OPT_REDIS },
	{ "store", required_argument, NULL, LS__OPT_STORE },
	{ "broker-frontend", required_argument, NULL, LS__OPT_FRONTEND },
	{ "broker-backend", required_argument, NULL, LS__OPT_BACKEND },
	{ "log-level", required_argument, NULL, LS__OPT_LOG_LEVEL },
	{ "log-format", required_argument, NULL, LS__OPT_LOG_FORMAT },
	{ "bus-keys", required_argument, NULL, LS__OPT_BUS_KEYS },
	{ "bus-server-key", required_argument, NULL, LS__OPT_BUS_SERVER_KEY },
	{ "fabric-server-key", required_argument, NULL,
	  LS__OPT_FABRIC_SERVER_KEY },
	{ "bus-allow", required_argument, NULL, LS__OPT_BUS_ALLOW },
	{ "bus-insecure", no_argument, NULL, LS__OPT_BUS_INSECURE },
	{ NULL, 0, NULL, 0 },
};

static int
ls__set(char **target, const char *value)
{
	char *copy = value ? strdup(value) : NULL;

	if (value != NULL && copy == NULL) {
		return -ENOMEM;
	}
	free(*target);
	*target = copy;
	return 0;
}

int
ls_settings_init(ls_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->auth_timeout_ms = 10000;
	s->max_frame_bytes = 65536;
	s->queue_limit_bytes = 1048576;
	s->fanout_pause_bytes = 67108864;
	s->max_subscriptions = 128;
	s->publish_rate = 1000;
	s->publish_burst = 2000;
	s->ping_interval_s = 25;
	s->drain_timeout_ms = 5000;
	s->http_max_body_bytes = 65536;
	s->http_max_buffered_bytes = 32L * 1024 * 1024;
	s->http_request_timeout_ms = 10000;
	s->http_max_uri_bytes = 4096;
	s->http_max_header_bytes = 8192;
	s->token_ip_failures_per_minute = 30;
	s->token_key_failures_per_minute = 60;
	s->token_max_inflight = 16;
	s->bus_timeout_ms = 5000;
	s->pubsub_timeout_ms = LS_PUBSUB_TIMEOUT_MS_DEFAULT;
	s->heartbeat_ms = 2500;
	s->workers = 2;
	s->issue_workers = 1;
	s->history_size = LS_HISTORY_SIZE_DEFAULT;
	s->history_ttl_s = LS_HISTORY_TTL_DEFAULT;
	s->history_max_bytes = 64L * 1024 * 1024;
	if (ls__set(&s->log_level, "info") ||
	    ls__set(&s->log_format, "text") || ls__set(&s->data_dir, ".") ||
	    ls__set(&s->listen, "127.0.0.1:8080") ||
	    ls__set(&s->pubsub_url, "local") ||
	    ls__set(&s->bus_frontend, "tcp://127.0.0.1:5555") ||
	    ls__set(&s->bus_backend, "tcp://127.0.0.1:5556") ||
	    ls_strlist_add(&s->service_allowlist, "auth/generatetoken")) {
		ls_settings_clear(s);
		return -ENOMEM;
	}
	return 0;
}

void
ls_settings_clear(ls_settings *s)
{
	char **strings[] = {
		&s->log_level,    &s->log_format,     &s->data_dir,
		&s->listen,       &s->tls_listen,     &s->tls_cert,
		&s->tls_key,      &s->static_dir,     &s->pubsub_url,
		&s->bus_frontend, &s->bus_backend,    &s->store_uri,
		&s->bus_keys,     &s->bus_server_key, &s->pubsub_server_key
	};

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		free(*strings[i]);
		*strings[i] = NULL;
	}
	ls_strlist_clear(&s->origins);
	ls_strlist_clear(&s->trusted_proxies);
	ls_strlist_clear(&s->service_allowlist);
	ls_strlist_clear(&s->bus_allow);
}

int
ls_settings_load_file(ls_settings *s, const char *path, ls_error *err)
{
	const ls_config_field fields[] = {
		{ "log.level", LS_CONFIG_STRING, &s->log_level, 0, 0 },
		{ "log.format", LS_CONFIG_STRING, &s->log_format, 0, 0 },
		{ "data", LS_CONFIG_STRING, &s->data_dir, 0, 0 },
		{ "gateway.listen", LS_CONFIG_STRING, &s->listen, 0, 0 },
		{ "gateway.tls.listen", LS_CONFIG_STRING, &s->tls_listen, 0,
		  0 },
		{ "gateway.tls.cert", LS_CONFIG_STRING, &s->tls_cert, 0, 0 },
		{ "gateway.tls.key", LS_CONFIG_STRING, &s->tls_key, 0, 0 },
		{ "gateway.static_dir", LS_CONFIG_STRING, &s->static_dir, 0,
		  0 },
		{ "gateway.origins", LS_CONFIG_STRLIST, &s->origins, 0, 0 },
		{ "gateway.trusted_proxies", LS_CONFIG_STRLIST,
		  &s->trusted_proxies, 0, 0 },
		{ "gateway.service_allowlist", LS_CONFIG_STRLIST,
		  &s->service_allowlist, 0, 0 },
		{ "gateway.token_http_remote", LS_CONFIG_BOOL,
		  &s->token_http_remote, 0, 0 },
		{ "gateway.auth_timeout_ms", LS_CONFIG_INT,
		  &s->auth_timeout_ms, 100, 600000 },
		{ "gateway.max_frame_bytes", LS_CONFIG_INT,
		  &s->max_frame_bytes, 1024, 16777216 },
		{ "gateway.queue_limit_bytes", LS_CONFIG_INT,
		  &s->queue_limit_bytes, 4096, 1073741824 },
		{ "gateway.fanout_pause_bytes", LS_CONFIG_INT,
		  &s->fanout_pause_bytes, 65536, 1073741824 },
		{ "gateway.max_subscriptions", LS_CONFIG_INT,
		  &s->max_subscriptions, 1, 100000 },
		{ "gateway.ping_interval_s", LS_CONFIG_INT,
		  &s->ping_interval_s, 1, 3600 },
		{ "gateway.drain_timeout_ms", LS_CONFIG_INT,
		  &s->drain_timeout_ms, 0, 600000 },
		{ "gateway.max_connections", LS_CONFIG_INT,
		  &s->max_connections, 0, 10000000 },
		{ "gateway.max_connections_per_ip", LS_CONFIG_INT,
		  &s->max_connections_per_ip, 0, 10000000 },
		{ "gateway.connection_rate_per_ip", LS_CONFIG_INT,
		  &s->connection_rate_per_ip, 0, 1000000 },
		{ "gateway.publish_rate", LS_CONFIG_INT, &s->publish_rate, 0,
		  10000000 },
		{ "gateway.publish_burst", LS_CONFIG_INT, &s->publish_burst, 1,
		  100000000 },
		{ "gateway.http.max_body_bytes", LS_CONFIG_INT,
		  &s->http_max_body_bytes, 1024, 16777216 },
		{ "gateway.http.max_buffered_bytes", LS_CONFIG_INT,
		  &s->http_max_buffered_bytes, 65536, 1L << 34 },
		{ "gateway.http.request_timeout_ms", LS_CONFIG_INT,
		  &s->http_request_timeout_ms, 100, 600000 },
		{ "gateway.http.max_uri_bytes", LS_CONFIG_INT,
		  &s->http_max_uri_bytes, 256, 16384 },
		{ "gateway.http.max_header_bytes", LS_CONFIG_INT,
		  &s->http_max_header_bytes, 1024, 32768 },
		{ "gateway.loops", LS_CONFIG_INT, &s->loops, 0,
		  LS_SETTINGS_LOOPS_MAX },
		{ "gateway.reuse_port", LS_CONFIG_BOOL, &s->reuse_port, 0, 0 },
		{ "gateway.token.ip_failures_per_minute", LS_CONFIG_INT,
		  &s->token_ip_failures_per_minute, 0, 1000000 },
		{ "gateway.token.key_failures_per_minute", LS_CONFIG_INT,
		  &s->token_key_failures_per_minute, 0, 1000000 },
		{ "gateway.token.max_inflight", LS_CONFIG_INT,
		  &s->token_max_inflight, 1, 100000 },
		{ "pubsub.url", LS_CONFIG_STRING, &s->pubsub_url, 0, 0 },
		{ "pubsub.timeout_ms", LS_CONFIG_INT, &s->pubsub_timeout_ms,
		  LS_PUBSUB_TIMEOUT_MS_MIN, LS_PUBSUB_TIMEOUT_MS_MAX },
		{ "history.size", LS_CONFIG_INT, &s->history_size, 0,
		  LS_HISTORY_SIZE_MAX },
		{ "history.ttl", LS_CONFIG_INT, &s->history_ttl_s, 1,
		  LS_HISTORY_TTL_MAX },
		{ "history.max_bytes", LS_CONFIG_INT, &s->history_max_bytes,
		  65536, 17179869184L },
		{ "bus.frontend", LS_CONFIG_STRING, &s->bus_frontend, 0, 0 },
		{ "bus.backend", LS_CONFIG_STRING, &s->bus_backend, 0, 0 },
		{ "bus.timeout_ms", LS_CONFIG_INT, &s->bus_timeout_ms, 10,
		  600000 },
		{ "bus.heartbeat_ms", LS_CONFIG_INT, &s->heartbeat_ms, 100,
		  600000 },
		{ "bus.insecure", LS_CONFIG_BOOL, &s->bus_insecure, 0, 0 },
		{ "bus.keys", LS_CONFIG_STRING, &s->bus_keys, 0, 0 },
		{ "pubsub.server_key", LS_CONFIG_STRING, &s->pubsub_server_key,
		  0, 0 },
		{ "bus.server_key", LS_CONFIG_STRING, &s->bus_server_key, 0,
		  0 },
		{ "bus.allow", LS_CONFIG_STRLIST, &s->bus_allow, 0, 0 },
		{ "store.uri", LS_CONFIG_STRING, &s->store_uri, 0, 0 },
		{ "appserver.workers", LS_CONFIG_INT, &s->workers, 1, 256 },
		{ "appserver.issue_workers", LS_CONFIG_INT, &s->issue_workers,
		  1, 256 },
	};
	json_t *root = NULL;
	int rc = ls_config_load_file(path, &root, err);

	if (rc != 0) {
		return rc;
	}
	rc = ls_config_apply(root, fields, sizeof(fields) / sizeof(fields[0]),
	                     err);
	json_decref(root);
	if (rc != 0 && err != NULL) {
		char text[LS_ERROR_TEXT_MAX * 2];
		snprintf(text, sizeof(text), "%s: %s", path, err->text);
		size_t n = strnlen(text, sizeof(err->text) - 1);
		memcpy(err->text, text, n);
		err->text[n] = '\0';
	}
	return rc;
}

/* Each shared option's group (0: every command) and help line(s). */
static const struct {
	const char *name;
	unsigned group;
	const char *help;
} ls__opt_help[] = {
	{ "config", 0,
	  "  --config FILE            JSON configuration file (first)\n" },
	{ "listen", LS_OPTS_LISTEN,
	  "  --listen HOST:PORT       gateway address (127.0.0.1:8080)\n" },
	{ "data", LS_OPTS_DATA,
	  "  --data DIR               data directory (.)\n" },
	{ "redis", LS_OPTS_FABRIC,
	  "  --redis URL, --fabric URL\n"
	  "                           pub/sub fabric: local (default), "
	  "redis://HOST:PORT\n"
	  "                           or zmq://HOST:XSUB_PORT,XPUB_PORT "
	  "(pubsub.url)\n" },
	{ "fabric", LS_OPTS_FABRIC, NULL },
	{ "store", LS_OPTS_STORE,
	  "  --store URI              sqlite:PATH or mongodb://...\n" },
	{ "broker-frontend", LS_OPTS_FRONTEND,
	  "  --broker-frontend EP     bus frontend (tcp://127.0.0.1:5555)\n" },
	{ "broker-backend", LS_OPTS_BACKEND,
	  "  --broker-backend EP      bus backend (tcp://127.0.0.1:5556)\n" },
	{ "bus-keys", LS_OPTS_BUS_PEER | LS_OPTS_BUS_ALLOW,
	  "  --bus-keys FILE          our bus key file (`lightstream "
	  "keygen`)\n" },
	{ "bus-server-key", LS_OPTS_BUS_PEER,
	  "  --bus-server-key KEY     the broker's public key (or its .pub "
	  "file)\n" },
	{ "fabric-server-key", LS_OPTS_FABRIC,
	  "  --fabric-server-key KEY  zmq:// fabric: the proxy's public key "
	  "(or file)\n" },
	{ "bus-allow", LS_OPTS_BUS_ALLOW,
	  "  --bus-allow ROLE:KEY     broker: allow a public key (or .pub "
	  "file);\n"
	  "                           ROLE worker, client or admin "
	  "(repeatable)\n" },
	{ "bus-insecure", LS_OPTS_BUS_PEER | LS_OPTS_BUS_ALLOW,
	  "  --bus-insecure           plain-text bus, no keys (development "
	  "only)\n" },
	{ "log-level", 0,
	  "  --log-level LEVEL        debug, info, warn, error (info)\n" },
	{ "log-format", 0,
	  "  --log-format FORMAT      text or json (text)\n" },
};

static unsigned
ls__opt_group(const char *name)
{
	for (size_t i = 0; i < sizeof(ls__opt_help) / sizeof(ls__opt_help[0]);
	     i++) {
		if (strcmp(ls__opt_help[i].name, name) == 0) {
			return ls__opt_help[i].group;
		}
	}
	return 0;
}

void
ls_settings_options_merge(const struct option *extra, struct option *out,
                          int cap)
{
	ls_settings_options_merge_for(LS_OPTS_ALL, extra, out, cap);
}

void
ls_settings_options_merge_for(unsigned groups, const struct option *extra,
                              struct option *out, int cap)
{
	int n = 0;

	for (int i = 0; ls_settings_options[i].name && n < cap - 1; i++) {
		unsigned g = ls__opt_group(ls_settings_options[i].name);
		if (g == 0 || (g & groups)) {
			out[n++] = ls_settings_options[i];
		}
	}
	for (int i = 0; extra && extra[i].name && n < cap - 1; i++) {
		out[n++] = extra[i];
	}
	memset(&out[n], 0, sizeof(out[n]));
}

int
ls_settings_option(ls_settings *s, int opt, const char *arg, ls_error *err)
{
	char **target = NULL;

	switch (opt) {
	case LS__OPT_CONFIG:
		return ls_settings_load_file(s, arg, err) == 0 ? 1
		                                               : LS_ECONFIG;
	case LS__OPT_LISTEN:
		target = &s->listen;
		break;
	case LS__OPT_DATA:
		target = &s->data_dir;
		s->data_flag = true;
		break;
	case LS__OPT_REDIS:
		target = &s->pubsub_url;
		break;
	case LS__OPT_STORE:
		target = &s->store_uri;
		break;
	case LS__OPT_FRONTEND:
		target = &s->bus_frontend;
		s->frontend_flag = true;
		break;
	case LS__OPT_BACKEND:
		target = &s->bus_backend;
		break;
	case LS__OPT_LOG_LEVEL:
		target = &s->log_level;
		break;
	case LS__OPT_LOG_FORMAT:
		target = &s->log_format;
		break;
	case LS__OPT_BUS_KEYS:
		target = &s->bus_keys;
		break;
	case LS__OPT_BUS_SERVER_KEY:
		target = &s->bus_server_key;
		break;
	case LS__OPT_FABRIC_SERVER_KEY:
		target = &s->pubsub_server_key;
		break;
	case LS__OPT_BUS_ALLOW:
		if (ls_strlist_add(&s->bus_allow, arg) != 0) {
			return ls_error_set(err, -ENOMEM, "out of memory");
		}
		return 1;
	case LS__OPT_BUS_INSECURE:
		s->bus_insecure = true;
		return 1;
	default:
		return 0;
	}
	if (ls__set(target, arg) != 0) {
		return ls_error_set(err, -ENOMEM, "out of memory");
	}
	return 1;
}

const char *
ls_settings_help_for(unsigned groups)
{
	static char buf[4096];
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(ls__opt_help) / sizeof(ls__opt_help[0]);
	     i++) {
		unsigned g = ls__opt_help[i].group;
		if (ls__opt_help[i].help != NULL && (g == 0 || (g & groups))) {
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s",
			                      ls__opt_help[i].help);
			if (n >= sizeof(buf)) {
				break;
			}
		}
	}
	return buf;
}

const char *
ls_settings_help(void)
{
	return ls_settings_help_for(LS_OPTS_ALL);
}

int
ls_settings_apply_logging(const ls_settings *s, ls_error *err)
{
	ls_log_level level;
	ls_log_format format;

	if (ls_log_level_parse(s->log_level, &level) != 0) {
		return ls_error_set(err, LS_ECONFIG,
		                    "log.level: unknown level '%s'",
		                    s->log_level);
	}
	if (ls_log_format_parse(s->log_format, &format) != 0) {
		return ls_error_set(
		        err, LS_ECONFIG,
		        "log.format: expected text or json, not '%s'",
		        s->log_format);
	}
	ls_log_set_level(level);
	ls_log_set_format(format);
	return 0;
}

char *
ls_settings_store_uri(const ls_settings *s)
{
	char *uri = NULL;

	if (s->store_uri != NULL) {
		return strdup(s->store_uri);
	}
	if (asprintf(&uri, "sqlite:%s/lightstream.db", s->data_dir) < 0) {
		return NULL;
	}
	return uri;
}
