/*
 * libFuzzer target for the app-server services: request bodies as a bus
 * worker receives them, and the store's validation of fixtures, roles,
 * permissions and addresses.
 *
 * Input: a first line naming what to feed, then the rest of the input.
 *   "auth", "accounts", "db" (or any other name: a service the worker
 *     does not serve): the rest is a request body {"o": op, "a": [...]}
 *     decoded and run by the bus worker's own code (fuzz_worker_glue.c) on
 *     the real service tables, over a SQLite store in a temporary file.
 *     Every input starts from the same store: two accounts and two tokens
 *     with known values (see fz_reset), so inputs are reproducible.
 *   "fixture": as_fixture_parse (db.resetDatabase, --fixture files);
 *     accounts it accepts must pass validation again.
 *   "roles", "perms": as_roles_validate / as_perms_validate.
 *   "ip": as_ip_normalize, which must be idempotent.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_services.h"
#include "as_store.h"
#include "bus_proto.h"
#include "fuzz_worker_glue.h"
#include "ls_crypto.h"
#include "ls_log.h"
#include "ls_time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Known token values (LS_TOKEN_LEN characters) of every input's
 * starting store. */
#define FZ_TOKEN     "fz-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FZ_WEB_TOKEN "fz-web-token-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const char fz_fixture_text[] =
        "{\"accounts\": ["
        "{\"appKey\": \"app1\", \"privateKey\": \"priv1\","
        " \"secretKey\": \"secret1\", \"isPublic\": false,"
        " \"sharedWrite\": true, \"roles\": {"
        "  \"reader\": [{\"owner\": \"app1\", \"stream\": \"weather*\","
        "               \"permission\": 2}],"
        "  \"writer\": [{\"owner\": \"app1\", \"stream\": \"news\","
        "               \"permission\": 3},"
        "              {\"owner\": \"app2\", \"stream\": \"*\","
        "               \"permission\": 2}]}},"
        "{\"appKey\": \"app2\", \"privateKey\": \"priv2\","
        " \"secretKey\": \"secret2\", \"isPublic\": true}]}";

static char fz_dir[256];
static as_store *fz_store;
static as_services *fz_svc;
static as_account *fz_accounts;
static size_t fz_naccounts;

static void
fz_quiet(ls_log_level level, const char *component, const char *message,
         void *user)
{
}

static void
fz_cleanup(void)
{
	static const char *const files[] = { "store.db", "store.db-wal",
		                             "store.db-shm",
		                             "store.db-journal" };
	char path[512];

	as_services_destroy(&fz_svc);
	as_store_close(&fz_store);
	as_accounts_free(fz_accounts, fz_naccounts);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", fz_dir, files[i]);
		unlink(path);
	}
	rmdir(fz_dir);
}

static void
fz_setup(void)
{
	const char *tmp = getenv("TMPDIR");
	char uri[512];
	json_t *fixture;
	ls_error err;

	ls_log_set_sink(fz_quiet, NULL);
	snprintf(fz_dir, sizeof(fz_dir), "%s/fuzz-services-XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(fz_dir) == NULL) {
		abort();
	}
	snprintf(uri, sizeof(uri), "sqlite:%s/store.db", fz_dir);
	fz_store = as_store_open(uri, &err);
	fixture = json_loads(fz_fixture_text, 0, NULL);
	if (fz_store == NULL || fixture == NULL ||
	    as_fixture_parse(fixture, &fz_accounts, &fz_naccounts, &err) !=
	            0) {
		abort();
	}
	json_decref(fixture);
	fz_svc = as_services_new(fz_store, &err);
	if (fz_svc == NULL) {
		abort();
	}
	atexit(fz_cleanup);
}

static void
fz_put_token(const char *value, const char *app_key, const char *role,
             const char *ip, bool web)
{
	as_token t = { .web = web };
	ls_error err;

	ls_sha256_hex(value, strlen(value), t.hash);
	snprintf(t.app_key, sizeof(t.app_key), "%s", app_key);
	snprintf(t.ip, sizeof(t.ip), "%s", ip);
	t.roles = json_pack("[s]", role);
	t.expires_ms = ls_wall_ms() + 3600 * 1000;
	if (t.roles == NULL || as_store_token_put(fz_store, &t, &err) != 0) {
		abort();
	}
	as_token_clear(&t);
}

/* Every input starts from the same accounts and tokens. */
static void
fz_reset(void)
{
	ls_error err;

	if (as_store_reset(fz_store, fz_accounts, fz_naccounts, &err) != 0) {
		abort();
	}
	fz_put_token(FZ_TOKEN, "app1", "writer", "", false);
	fz_put_token(FZ_WEB_TOKEN, "app1", "reader", "127.0.0.1", true);
}

static void
fz_request(const char *service, const char *body, size_t len)
{
	const bus_service *table, *svc = NULL;
	size_t n;
	char *out = NULL;
	int status;

	table = as_services_table(fz_svc, &n);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(table[i].name, service) == 0) {
			svc = &table[i];
		}
	}
	fz_reset();
	status = fz_worker_request(svc, body, len, &out);
	/* A reply is always sent: JSON on success, a message otherwise. */
	if (status == BUS__ST_OK) {
		json_t *v =
		        out ? json_loads(out, JSON_DECODE_ANY, NULL) : NULL;
		if (v == NULL) {
			abort();
		}
		json_decref(v);
	} else if (status != BUS__ST_ERROR || out == NULL || out[0] == '\0') {
		abort();
	}
	free(out);
}

/* What as_fixture_parse accepts must pass every validation again. */
static void
fz_fixture(json_t *v)
{
	as_account *acc = NULL;
	size_t n = 0;
	ls_error err = { 0 };

	if (as_fixture_parse(v, &acc, &n, &err) != 0) {
		if (err.text[0] == '\0') {
			abort();
		}
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!ls_valid_app_key(acc[i].app_key) ||
		    (acc[i].roles != NULL &&
		     as_roles_validate(acc[i].roles, &err) != 0)) {
			abort();
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(acc[i].app_key, acc[j].app_key) == 0) {
				abort();
			}
		}
	}
	as_accounts_free(acc, n);
}

static void
fz_ip(const char *text, size_t len)
{
	char in[256], out[AS_IP_MAX], again[AS_IP_MAX];

	if (len >= sizeof(in)) {
		return;
	}
	memcpy(in, text, len);
	in[len] = '\0';
	if (as_ip_normalize(in, out) != 0) {
		return;
	}
	if (as_ip_normalize(out, again) != 0 || strcmp(out, again) != 0) {
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nl = memchr(text, '\n', size);
	char what[32];
	const char *rest;
	size_t rlen, wlen;
	json_t *v;
	ls_error err = { 0 };

	if (fz_store == NULL) {
		fz_setup();
	}
	if (nl == NULL || (size_t)(nl - text) >= sizeof(what)) {
		return 0;
	}
	wlen = (size_t)(nl - text);
	memcpy(what, text, wlen);
	what[wlen] = '\0';
	rest = nl + 1;
	rlen = size - wlen - 1;
	if (strcmp(what, "ip") == 0) {
		fz_ip(rest, rlen);
		return 0;
	}
	if (strcmp(what, "fixture") != 0 && strcmp(what, "roles") != 0 &&
	    strcmp(what, "perms") != 0) {
		fz_request(what, rest, rlen);
		return 0;
	}
	v = json_loadb(rest, rlen, JSON_DECODE_ANY, NULL);
	if (v == NULL) {
		return 0;
	}
	if (strcmp(what, "fixture") == 0) {
		fz_fixture(v);
	} else if (strcmp(what, "roles") == 0) {
		if (as_roles_validate(v, &err) != 0 && err.text[0] == '\0') {
			abort();
		}
	} else if (as_perms_validate(v, &err) != 0 && err.text[0] == '\0') {
		abort();
	}
	json_decref(v);
	return 0;
}
