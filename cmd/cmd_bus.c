/* Security of the service bus for every command (see cmd_bus.h). */
#include "cmd_bus.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cmd.h"
#include "cmd_util.h"
#include "ls_log.h"

static bool
cmd__leaves(const char *endpoint)
{
	return endpoint != NULL && strncmp(endpoint, "inproc://", 9) != 0;
}

static void
cmd__insecure_warning(const char *cmd, const char *endpoint)
{
	ls_warn(cmd,
	        "bus.insecure: the service bus at %s is neither "
	        "authenticated nor encrypted; any process that reaches it "
	        "may register as a worker or call any service (development "
	        "only)",
	        endpoint);
}

static int
cmd__need_keys(const char *cmd, const char *endpoint, const char *what)
{
	cmd_error(cmd,
	          "the service bus endpoint %s leaves this process and "
	          "needs CURVE keys (%s): create key pairs with `lightstream "
	          "keygen --out PREFIX` and set bus.keys, bus.server_key and, "
	          "on the broker, bus.allow (--bus-keys, --bus-server-key, "
	          "--bus-allow ROLE:KEY; docs/bus.md), or set bus.insecure: "
	          "true (--bus-insecure) on every role for a plain-text bus "
	          "(development only)",
	          endpoint, what);
	return CMD_EXIT_USAGE;
}

static void
cmd__set_keys(cmd_bus *out)
{
	out->curve = true;
	out->keys.server_public = out->server_public;
	out->keys.public_key = out->public_key;
	out->keys.secret_key = out->secret_key;
}

/* Read our key file and the broker's public key. */
static int
cmd__load_peer_keys(const char *cmd, const char *keys, const char *server,
                    cmd_bus *out)
{
	ls_error err = { 0 };

	if (bus_curve_read_keyfile(keys, out->public_key, out->secret_key,
	                           &err) != 0 ||
	    bus_curve_read_public(server, out->server_public, &err) != 0) {
		cmd_error(cmd, "%s", err.text);
		return CMD_EXIT_USAGE;
	}
	cmd__set_keys(out);
	return 0;
}

int
cmd_bus_peer(const char *cmd, const ls_settings *s, const char *endpoint,
             cmd_bus *out)
{
	if (!cmd__leaves(endpoint)) {
		return 0;
	}
	if (s->bus_insecure) {
		cmd__insecure_warning(cmd, endpoint);
		return 0;
	}
	if (s->bus_keys == NULL && s->bus_server_key == NULL) {
		return cmd__need_keys(cmd, endpoint,
		                      "bus.keys and bus.server_key are unset");
	}
	if (s->bus_keys == NULL || s->bus_server_key == NULL) {
		cmd_error(cmd, "CURVE needs both bus.keys (--bus-keys) and "
		               "bus.server_key (--bus-server-key)");
		return CMD_EXIT_USAGE;
	}
	return cmd__load_peer_keys(cmd, s->bus_keys, s->bus_server_key, out);
}

/* dir/name, new string; NULL when out of memory. */
static char *
cmd__path(const char *dir, const char *name)
{
	char *p = NULL;

	return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

int
cmd_bus_client(const char *cmd, const ls_settings *s, cmd_bus *out)
{
	char *sock = NULL, *pub = NULL, *key = NULL;
	struct stat st;
	int rc = CMD_EXIT_USAGE;

	if (s->frontend_flag || !s->data_flag) {
		out->endpoint = strdup(s->bus_frontend);
		if (out->endpoint == NULL) {
			cmd_error(cmd, "out of memory");
			return CMD_EXIT_FAILURE;
		}
		return cmd_bus_peer(cmd, s, out->endpoint, out);
	}
	/* --data DIR: the bus of a `serve` running on DIR, never the
	 * default tcp endpoint. */
	sock = cmd__path(s->data_dir, CMD_BUS_SOCKET);
	pub = cmd__path(s->data_dir, CMD_BUS_BROKER_PUB);
	key = cmd__path(s->data_dir, CMD_BUS_ADMIN_KEY);
	if (sock == NULL || pub == NULL || key == NULL ||
	    asprintf(&out->endpoint, "ipc://%s", sock) < 0) {
		out->endpoint = NULL;
		cmd_error(cmd, "out of memory");
		rc = CMD_EXIT_FAILURE;
		goto out;
	}
	if (stat(sock, &st) != 0 || !S_ISSOCK(st.st_mode)) {
		cmd_error(
		        cmd,
		        "--data %s: no bus socket %s there (is `lightstream "
		        "serve --data %s` running? or give --broker-frontend)",
		        s->data_dir, sock, s->data_dir);
		goto out;
	}
	if (access(pub, F_OK) != 0) {
		/* That serve runs with bus.insecure: plain on its socket. */
		cmd__insecure_warning(cmd, out->endpoint);
		rc = 0;
		goto out;
	}
	rc = cmd__load_peer_keys(cmd, key, pub, out);
out:
	free(sock);
	free(pub);
	free(key);
	return rc;
}

/* Parse bus.allow ("ROLE:KEY" or "ROLE:FILE") into out->allow. */
static int
cmd__load_allow(const char *cmd, const ls_settings *s, size_t extra,
                cmd_bus *out)
{
	size_t n = s->bus_allow.count + extra;
	ls_error err = { 0 };

	out->allow = calloc(n ? n : 1, sizeof(*out->allow));
	out->allow_keys = calloc(n ? n : 1, sizeof(*out->allow_keys));
	if (out->allow == NULL || out->allow_keys == NULL) {
		cmd_error(cmd, "out of memory");
		return CMD_EXIT_FAILURE;
	}
	for (size_t i = 0; i < s->bus_allow.count; i++) {
		const char *item = s->bus_allow.items[i];
		const char *colon = strchr(item, ':');
		char role[16];
		unsigned bits = 0;

		if (colon != NULL && (size_t)(colon - item) < sizeof(role)) {
			memcpy(role, item, (size_t)(colon - item));
			role[colon - item] = '\0';
			bits = bus_role_parse(role);
		}
		if (bits == 0) {
			cmd_error(cmd,
			          "bus.allow: '%s': expected ROLE:KEY (or "
			          "ROLE:FILE), ROLE worker, client or admin",
			          item);
			return CMD_EXIT_USAGE;
		}
		if (bus_curve_read_public(colon + 1, out->allow_keys[i],
		                          &err) != 0) {
			cmd_error(cmd, "bus.allow: %s", err.text);
			return CMD_EXIT_USAGE;
		}
		out->allow[i].key = out->allow_keys[i];
		out->allow[i].roles = bits;
	}
	out->nallow = s->bus_allow.count;
	return 0;
}

/*
 * A CURVE server's keys (broker, proxy): our pair from bus.keys and the
 * allowed peers of bus.allow, at least one (who names the peers that
 * could not connect otherwise). Returns 0 with out->curve set, or
 * CMD_EXIT_USAGE / CMD_EXIT_FAILURE with the error printed.
 */
static int
cmd__load_server(const char *cmd, const ls_settings *s, const char *who,
                 cmd_bus *out)
{
	ls_error err = { 0 };
	int rc;

	if (bus_curve_read_keyfile(s->bus_keys, out->public_key,
	                           out->secret_key, &err) != 0) {
		cmd_error(cmd, "%s", err.text);
		return CMD_EXIT_USAGE;
	}
	rc = cmd__load_allow(cmd, s, 0, out);
	if (rc != 0) {
		return rc;
	}
	if (out->nallow == 0) {
		cmd_error(
		        cmd,
		        "bus.allow lists no key: %s could connect; allow "
		        "each with --bus-allow ROLE:KEY (ROLE worker, client "
		        "or admin; docs/bus.md)",
		        who);
		return CMD_EXIT_USAGE;
	}
	out->curve = true;
	return 0;
}

int
cmd_bus_broker(const char *cmd, const ls_settings *s, bus_broker_options *bo,
               cmd_bus *out)
{
	const char *ep = cmd__leaves(s->bus_frontend) ? s->bus_frontend
	                                              : s->bus_backend;
	int rc;

	if (!cmd__leaves(s->bus_frontend) && !cmd__leaves(s->bus_backend)) {
		return 0;
	}
	if (s->bus_insecure) {
		cmd__insecure_warning(cmd, ep);
		return 0;
	}
	if (s->bus_keys == NULL) {
		return cmd__need_keys(cmd, ep, "bus.keys is unset");
	}
	rc = cmd__load_server(cmd, s, "no app server, gateway or admin", out);
	if (rc != 0) {
		return rc;
	}
	bo->curve_secret_key = out->secret_key;
	bo->curve_allow = out->allow;
	bo->ncurve_allow = out->nallow;
	return 0;
}

/*
 * Our key pair in path (generated when absent). Returns 0 or
 * CMD_EXIT_FAILURE with the error printed.
 */
static int
cmd__own_keyfile(const char *cmd, const char *path, char *pub, char *sec)
{
	ls_error err = { 0 };

	if (access(path, F_OK) != 0) {
		if (bus_curve_write_keyfile(path, pub, &err) != 0) {
			cmd_error(cmd, "%s", err.text);
			return CMD_EXIT_FAILURE;
		}
		ls_info(cmd, "bus key pair generated: %s", path);
	}
	if (bus_curve_read_keyfile(path, pub, sec, &err) != 0) {
		cmd_error(cmd, "%s", err.text);
		return CMD_EXIT_FAILURE;
	}
	return 0;
}

/* Write the broker's public key for `admin --data` (replacing). */
static int
cmd__write_pub(const char *cmd, const char *path, const char *pub)
{
	char *tmp = NULL;
	int fd, rc = CMD_EXIT_FAILURE;

	if (asprintf(&tmp, "%s.tmp", path) < 0) {
		cmd_error(cmd, "out of memory");
		return CMD_EXIT_FAILURE;
	}
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || dprintf(fd, "%s\n", pub) != BUS_CURVE_KEY_LEN + 1 ||
	    close(fd) != 0 || rename(tmp, path) != 0) {
		cmd_error(cmd, "%s: %s", path, strerror(errno));
		unlink(tmp);
	} else {
		rc = 0;
	}
	free(tmp);
	return rc;
}

int
cmd_bus_serve(const char *cmd, const ls_settings *s, const char *frontend,
              const char *backend, bus_broker_options *bo, cmd_bus *out)
{
	char *sock = cmd__path(s->data_dir, CMD_BUS_SOCKET);
	char *bkey = cmd__path(s->data_dir, CMD_BUS_BROKER_KEY);
	char *bpub = cmd__path(s->data_dir, CMD_BUS_BROKER_PUB);
	char *akey = cmd__path(s->data_dir, CMD_BUS_ADMIN_KEY);
	char admin_pub[BUS_CURVE_KEY_LEN + 1],
	        admin_sec[BUS_CURVE_KEY_LEN + 1];
	int rc = CMD_EXIT_FAILURE;

	if (sock == NULL || bkey == NULL || bpub == NULL || akey == NULL) {
		cmd_error(cmd, "out of memory");
		goto out;
	}
	{
		/* The bus socket and keys live there, whatever the store. */
		int mk = cmd_make_data_dir(s->data_dir);
		if (mk != 0) {
			cmd_error(cmd, "data directory %s: %s", s->data_dir,
			          strerror(-mk));
			goto out;
		}
	}
	if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		ls_warn(cmd,
		        "no local bus socket: %s is too long for a unix "
		        "socket (`admin --data` will not find this server)",
		        sock);
	} else if (asprintf(&out->ipc, "ipc://%s", sock) < 0) {
		out->ipc = NULL;
		cmd_error(cmd, "out of memory");
		goto out;
	}
	bo->frontend_also[0] = frontend;
	bo->frontend_also[1] = out->ipc;
	bo->backend_also = backend;
	if (s->bus_insecure) {
		unlink(bpub);
		if (out->ipc != NULL || cmd__leaves(frontend) ||
		    cmd__leaves(backend)) {
			cmd__insecure_warning(
			        cmd, cmd__leaves(frontend)  ? frontend
			             : cmd__leaves(backend) ? backend
			                                    : out->ipc);
		}
		rc = 0;
		goto out;
	}
	if (s->bus_keys != NULL) {
		ls_error err = { 0 };
		if (bus_curve_read_keyfile(s->bus_keys, out->public_key,
		                           out->secret_key, &err) != 0) {
			cmd_error(cmd, "%s", err.text);
			rc = CMD_EXIT_USAGE;
			goto out;
		}
	} else if (cmd__own_keyfile(cmd, bkey, out->public_key,
	                            out->secret_key) != 0) {
		goto out;
	}
	if (cmd__own_keyfile(cmd, akey, admin_pub, admin_sec) != 0) {
		goto out;
	}
	explicit_bzero(admin_sec, sizeof(admin_sec));
	rc = cmd__load_allow(cmd, s, 1, out);
	if (rc != 0) {
		goto out;
	}
	memcpy(out->allow_keys[out->nallow], admin_pub, sizeof(admin_pub));
	out->allow[out->nallow].key = out->allow_keys[out->nallow];
	out->allow[out->nallow].roles = BUS_ROLE_ADMIN;
	out->nallow++;
	rc = cmd__write_pub(cmd, bpub, out->public_key);
	if (rc != 0) {
		goto out;
	}
	out->curve = true;
	bo->curve_secret_key = out->secret_key;
	bo->curve_allow = out->allow;
	bo->ncurve_allow = out->nallow;
	if (frontend != NULL || backend != NULL) {
		ls_info(cmd,
		        "bus: CURVE on %s and %s, broker public key %s "
		        "(%s); %zu allowed keys",
		        frontend ? frontend : "-", backend ? backend : "-",
		        out->public_key, bpub, out->nallow);
	}
out:
	free(sock);
	free(bkey);
	free(bpub);
	free(akey);
	return rc;
}

const bus_curve_keys *
cmd_bus_keys(const cmd_bus *b)
{
	return b->curve && b->keys.server_public != NULL ? &b->keys : NULL;
}

void
cmd_bus_clear(cmd_bus *b)
{
	free(b->endpoint);
	free(b->ipc);
	free(b->allow);
	free(b->allow_keys);
	explicit_bzero(b->secret_key, sizeof(b->secret_key));
	memset(b, 0, sizeof(*b));
}

int
cmd_fabric_peer(const char *cmd, const ls_settings *s, cmd_bus *out)
{
	const char *url = s->pubsub_url;

	if (url == NULL || strncmp(url, "zmq://", 6) != 0) {
		return 0;
	}
	if (s->bus_insecure) {
		ls_warn(cmd,
		        "bus.insecure: the ZeroMQ fabric at %s is neither "
		        "authenticated nor encrypted (development only)",
		        url);
		return 0;
	}
	if (s->bus_keys == NULL || s->pubsub_server_key == NULL) {
		cmd_error(
		        cmd,
		        "the ZeroMQ fabric %s needs CURVE keys: set bus.keys "
		        "(this process's key pair) and pubsub.server_key (the "
		        "proxy's public key; --fabric-server-key), and allow "
		        "this key on the proxy (--bus-allow), or set "
		        "bus.insecure: true (development only; "
		        "docs/pubsub.md)",
		        url);
		return CMD_EXIT_USAGE;
	}
	return cmd__load_peer_keys(cmd, s->bus_keys, s->pubsub_server_key,
	                           out);
}

int
cmd_fabric_proxy(const char *cmd, const ls_settings *s, cmd_bus *out)
{
	if (s->bus_insecure) {
		ls_warn(cmd, "bus.insecure: the ZeroMQ fabric is neither "
		             "authenticated nor encrypted; any process that "
		             "reaches the proxy may publish and subscribe "
		             "(development only)");
		return 0;
	}
	if (s->bus_keys == NULL) {
		cmd_error(
		        cmd,
		        "the proxy needs its CURVE key pair (--bus-keys FILE "
		        "from `lightstream keygen`) and the keys it allows "
		        "(--bus-allow ROLE:KEY), or --bus-insecure "
		        "(development only; docs/pubsub.md)");
		return CMD_EXIT_USAGE;
	}
	return cmd__load_server(cmd, s, "no gateway or app server", out);
}
