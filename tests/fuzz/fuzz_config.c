/*
 * libFuzzer target for the configuration loader: the input is written to
 * a configuration file in a temporary directory and loaded exactly as
 * --config does (ls_settings_load_file), then applied to a table with
 * every field type (ls_config_apply). Each string of a loaded file also
 * goes through ls_parse_host_port, as --listen values do.
 *
 * Checked: a rejected file always says why and names the file; integers
 * that were accepted lie within their bounds; loading the same file twice
 * gives the same verdict; a parsed address fits its buffer.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ls_config.h"
#include "ls_log.h"
#include "ls_proto.h"
#include "ls_settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_dir[256];
static char fz_path[300];

static void
fz_quiet(ls_log_level level, const char *component, const char *message,
         void *user)
{
}

static void
fz_cleanup(void)
{
	unlink(fz_path);
	rmdir(fz_dir);
}

static void
fz_setup(void)
{
	const char *tmp = getenv("TMPDIR");

	ls_log_set_sink(fz_quiet, NULL);
	snprintf(fz_dir, sizeof(fz_dir), "%s/fuzz-config-XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(fz_dir) == NULL) {
		abort();
	}
	snprintf(fz_path, sizeof(fz_path), "%s/lightstream.json", fz_dir);
	atexit(fz_cleanup);
}

static void
fz_write(const uint8_t *data, size_t size)
{
	int fd = open(fz_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
		abort();
	}
	close(fd);
}

static void
fz_host_port(const char *text)
{
	char host[64];
	int port = -1;

	if (text == NULL ||
	    ls_parse_host_port(text, host, sizeof(host), &port) != 0) {
		return;
	}
	if (port < 0 || port > 65535 || strlen(host) == 0 ||
	    strlen(host) >= sizeof(host)) {
		abort();
	}
}

static void
fz_in_range(long v, long min, long max)
{
	if (v < min || v > max) {
		abort();
	}
}

static int
fz_settings(ls_settings *s)
{
	ls_error err = { 0 };
	int rc;

	if (ls_settings_init(s) != 0) {
		abort();
	}
	rc = ls_settings_load_file(s, fz_path, &err);
	if (rc != 0) {
		if (err.text[0] == '\0' || strstr(err.text, fz_path) == NULL) {
			abort();
		}
		return rc;
	}
	fz_in_range(s->auth_timeout_ms, 100, 600000);
	fz_in_range(s->max_frame_bytes, 1024, 16777216);
	fz_in_range(s->queue_limit_bytes, 4096, 1073741824);
	fz_in_range(s->max_subscriptions, 1, 100000);
	fz_in_range(s->ping_interval_s, 1, 3600);
	fz_in_range(s->drain_timeout_ms, 0, 600000);
	fz_in_range(s->max_connections, 0, 10000000);
	fz_in_range(s->bus_timeout_ms, 10, 600000);
	fz_in_range(s->pubsub_timeout_ms, LS_PUBSUB_TIMEOUT_MS_MIN,
	            LS_PUBSUB_TIMEOUT_MS_MAX);
	fz_in_range(s->heartbeat_ms, 100, 600000);
	fz_in_range(s->workers, 1, 256);
	fz_host_port(s->listen);
	fz_host_port(s->tls_listen);
	for (size_t i = 0; i < s->trusted_proxies.count; i++) {
		fz_host_port(s->trusted_proxies.items[i]);
	}
	free(ls_settings_store_uri(s));
	if (ls_settings_apply_logging(s, &err) != 0 && err.text[0] == '\0') {
		abort();
	}
	return 0;
}

/* Every field type, nested keys, bounded and unbounded integers. */
static void
fz_apply(void)
{
	char *str = NULL;
	long bounded = 0, any = 0;
	bool flag = false;
	ls_strlist list = { 0 };
	json_t *js = NULL, *root = NULL;
	const ls_config_field fields[] = {
		{ "s", LS_CONFIG_STRING, &str, 0, 0 },
		{ "a.b.s", LS_CONFIG_STRING, &str, 0, 0 },
		{ "a.i", LS_CONFIG_INT, &bounded, -5, 5 },
		{ "i", LS_CONFIG_INT, &any, 0, 0 },
		{ "b", LS_CONFIG_BOOL, &flag, 0, 0 },
		{ "l", LS_CONFIG_STRLIST, &list, 0, 0 },
		{ "a.j", LS_CONFIG_JSON, &js, 0, 0 },
	};
	ls_error err = { 0 };

	if (ls_config_load_file(fz_path, &root, &err) != 0) {
		return;
	}
	if (ls_config_apply(root, fields, sizeof(fields) / sizeof(fields[0]),
	                    &err) != 0) {
		if (err.text[0] == '\0') {
			abort();
		}
	} else {
		fz_in_range(bounded, -5, 5);
		fz_host_port(str);
	}
	json_decref(root);
	json_decref(js);
	free(str);
	ls_strlist_clear(&list);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ls_settings s;
	ls_error err = { 0 };

	if (fz_path[0] == '\0') {
		fz_setup();
	}
	fz_write(data, size);
	if (fz_settings(&s) == 0) {
		/* Loading the file again over the loaded settings (a second
		 * --config) replaces values and must say the same. */
		if (ls_settings_load_file(&s, fz_path, &err) != 0) {
			abort();
		}
		fz_host_port(s.listen);
	}
	ls_settings_clear(&s);
	fz_apply();
	return 0;
}
