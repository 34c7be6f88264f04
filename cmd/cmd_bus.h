/*
 * Security of the service bus for every command (docs/bus.md, "Security"):
 * which endpoint, CURVE keys or plain text, and the broker's allow-list,
 * from the shared settings (bus.keys, bus.server_key, bus.allow,
 * bus.insecure) and, for admin and call, --data. One set of rules for
 * every role: an endpoint that leaves the process (tcp://, ipc://) needs
 * keys unless bus.insecure is set, which logs a warning.
 * Internal to the `lightstream` executable.
 */
#ifndef LS_CMD_BUS_H
#define LS_CMD_BUS_H

#include <stdbool.h>

#include "bus_broker.h"
#include "bus_curve.h"
#include "ls_settings.h"

/* Files of `serve`'s local bus in its data directory. */
#define CMD_BUS_SOCKET     "bus.sock"  /* ipc:// frontend, 0600 */
#define CMD_BUS_BROKER_KEY "bus.key"   /* the broker's key pair, 0600 */
#define CMD_BUS_BROKER_PUB "bus.pub"   /* its public key; absent: plain */
#define CMD_BUS_ADMIN_KEY  "admin.key" /* an admin key pair, 0600 */

typedef struct cmd_bus {
	char *endpoint; /* cmd_bus_client: the frontend to use (new) */
	char *ipc;      /* cmd_bus_serve: the ipc:// frontend, or NULL */
	bool curve;
	char server_public[BUS_CURVE_KEY_LEN + 1];
	char public_key[BUS_CURVE_KEY_LEN + 1];
	char secret_key[BUS_CURVE_KEY_LEN + 1];
	bus_curve_keys keys; /* points into this struct */
	bus_peer_key *allow; /* broker: keys point into allow_keys */
	char (*allow_keys)[BUS_CURVE_KEY_LEN + 1];
	size_t nallow;
} cmd_bus;

/*
 * A bus client or worker of `cmd` connecting to endpoint: CURVE keys from
 * bus.keys and bus.server_key, plain for inproc:// or with bus.insecure
 * (warning logged). Returns 0, or CMD_EXIT_USAGE with the error printed
 * (an endpoint that leaves the process without keys nor bus.insecure;
 * unreadable keys).
 */
int cmd_bus_peer(const char *cmd, const ls_settings *s, const char *endpoint,
                 cmd_bus *out);

/*
 * `admin` and `call`: the frontend is --broker-frontend when given, else
 * with --data DIR the ipc:// socket of a `serve` running on DIR (with its
 * keys; an error when DIR has no bus socket), else bus.frontend; then as
 * cmd_bus_peer. out->endpoint is set. Returns 0 or CMD_EXIT_USAGE.
 */
int cmd_bus_client(const char *cmd, const ls_settings *s, cmd_bus *out);

/*
 * `broker`: fill bo's CURVE fields (pointing into out) from bus.keys and
 * bus.allow. Returns 0 or CMD_EXIT_USAGE.
 */
int cmd_bus_broker(const char *cmd, const ls_settings *s,
                   bus_broker_options *bo, cmd_bus *out);

/*
 * `serve`: its broker binds inproc:// endpoints for the pieces in the
 * process, and besides them the configured frontend and backend (NULL:
 * none) and an ipc:// frontend in the data directory. Unless
 * bus.insecure, the broker uses CURVE with the key of bus.keys or one
 * generated into the data directory at first start, and allows an admin
 * key generated there too (for `admin --data DIR`) besides bus.allow.
 * Fills bo (pointing into out). Returns 0, CMD_EXIT_USAGE or
 * CMD_EXIT_FAILURE.
 */
int cmd_bus_serve(const char *cmd, const ls_settings *s, const char *frontend,
                  const char *backend, bus_broker_options *bo, cmd_bus *out);

/*
 * The keys of a ZeroMQ fabric peer (gateway, app server) when pubsub.url
 * is zmq://: our pair from bus.keys, the proxy's public key from
 * pubsub.server_key; plain only with bus.insecure (warning logged);
 * nothing for other fabrics. Returns 0, or CMD_EXIT_USAGE with the error
 * printed. cmd_bus_keys(out) gives them (NULL: plain).
 */
int cmd_fabric_peer(const char *cmd, const ls_settings *s, cmd_bus *out);

/*
 * `proxy`: our key pair from bus.keys and the allowed peers from bus.allow
 * (any role) into out (out->curve, out->secret_key, out->allow); nothing
 * with bus.insecure (warning logged). Returns 0 or CMD_EXIT_USAGE.
 */
int cmd_fabric_proxy(const char *cmd, const ls_settings *s, cmd_bus *out);

/* The keys for a CURVE client or worker, or NULL when plain. */
const bus_curve_keys *cmd_bus_keys(const cmd_bus *b);

/* Free and wipe. */
void cmd_bus_clear(cmd_bus *b);

#endif
