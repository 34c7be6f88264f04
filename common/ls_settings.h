/*
 * Settings shared by every role: one JSON configuration file
 * (docs/configuration.md), every key optional, command-line flags override.
 *
 * The whole schema lives here so that one file can configure every role of
 * a deployment (each role reads the keys it needs; a key that belongs to
 * no role is an error naming it). Keys, defaults and flags are documented
 * in docs/configuration.md.
 */
#ifndef LS_SETTINGS_H
#define LS_SETTINGS_H

#include <getopt.h>
#include <stdbool.h>

#include "ls_config.h"
#include "ls_error.h"

/* Most gateway event loops in one process (gateway.loops, --gateways). */
#define LS_SETTINGS_LOOPS_MAX 64

typedef struct ls_settings {
	/* log.* */
	char *log_level;  /* "info" */
	char *log_format; /* "text" */
	/* data directory: default store location */
	char *data_dir; /* "." */

	/* gateway.* */
	char *listen;               /* "127.0.0.1:8080" */
	char *tls_listen;           /* NULL: no TLS listener */
	char *tls_cert;             /* PEM file */
	char *tls_key;              /* PEM file */
	char *static_dir;           /* NULL: built-in lookup */
	ls_strlist origins;         /* empty: any Origin */
	ls_strlist trusted_proxies; /* peers whose X-Forwarded-For we trust */
	ls_strlist service_allowlist; /* "service/operation"; default
	                                 auth/generatetoken */
	bool token_http_remote;       /* generatetoken over plain HTTP from
	                                 non-loopback peers */
	long auth_timeout_ms;         /* 10000 */
	long max_frame_bytes;         /* 65536 */
	long queue_limit_bytes;       /* 1048576 */
	long fanout_pause_bytes; /* 67108864: back-pressure on publishers */
	long max_subscriptions;  /* 128 per connection */
	long ping_interval_s;    /* 25 */
	long drain_timeout_ms;   /* 5000 */
	long max_connections;    /* 0: limited by descriptors only */
	long max_connections_per_ip;  /* 0: no cap (many users share a NAT) */
	long connection_rate_per_ip;  /* new per IP per second; 0: no limit */
	long publish_rate;            /* 1000 publishes per connection per s */
	long publish_burst;           /* 2000: a burst above the rate */
	long http_max_body_bytes;     /* 65536: a request body (not publish) */
	long http_max_buffered_bytes; /* 33554432: all unfinished bodies */
	long http_request_timeout_ms; /* 10000: the body must arrive by then */
	long http_max_uri_bytes;      /* 4096: path and query string */
	long http_max_header_bytes;   /* 8192: all headers together */
	long loops;      /* gateway event loops; 0: the command's default
	                    (serve: one per core, gateway: 1) */
	bool reuse_port; /* share the listen port with other processes */
	long token_ip_failures_per_minute;  /* 30: token failures per IP */
	long token_key_failures_per_minute; /* 60: per app key */
	long token_max_inflight;            /* 16: token bus calls at once */

	/* pubsub.* */
	char *pubsub_url; /* "local" or "redis://HOST:PORT" */

	/* history.* (docs/configuration.md) */
	long history_size;      /* 100 messages per stream; 0: no history */
	long history_ttl_s;     /* 300 */
	long history_max_bytes; /* local fabric, all streams: 64 MiB */

	/* bus.* */
	char *bus_frontend;     /* "tcp://127.0.0.1:5555" */
	char *bus_backend;      /* "tcp://127.0.0.1:5556" */
	long bus_timeout_ms;    /* 5000: client deadline per request */
	long pubsub_timeout_ms; /* LS_PUBSUB_TIMEOUT_MS_DEFAULT */
	long heartbeat_ms;      /* 2500 */
	/* bus security (docs/bus.md, "Security") */
	bool bus_insecure;    /* plain text over tcp:// and ipc:// */
	char *bus_keys;       /* our key file (JSON public/secret) */
	char *bus_server_key; /* the broker's public key, or a file of it */
	/* zmq:// fabric: the proxy's public key, or a file of it */
	char *pubsub_server_key;
	ls_strlist bus_allow; /* broker: "ROLE:KEY" or "ROLE:FILE" */
	/* given on the command line (not the file): admin and call pick
	 * their endpoint from them */
	bool frontend_flag; /* --broker-frontend */
	bool data_flag;     /* --data */

	/* store.*, appserver.* */
	char *store_uri;    /* NULL: "sqlite:<data_dir>/lightstream.db" */
	long workers;       /* 2 */
	long issue_workers; /* 1: auth.issue threads (token issuing) */
} ls_settings;

/* Fill s with the defaults above. Returns 0 or -ENOMEM. */
int ls_settings_init(ls_settings *s);

/* Free everything s owns. */
void ls_settings_clear(ls_settings *s);

/* Apply a configuration file. Returns 0 or LS_ECONFIG with err set. */
int ls_settings_load_file(ls_settings *s, const char *path, ls_error *err);

/*
 * The long options every role accepts (--config, --listen, --data,
 * --redis, --store, --broker-frontend, --broker-backend, --bus-keys,
 * --bus-server-key, --bus-allow, --bus-insecure, --log-level,
 * --log-format), terminated by a zero entry; their `val` is >= 0x1000 so
 * commands can mix them with their own options. Commands append their own
 * options with ls_settings_options_merge().
 */
extern const struct option ls_settings_options[];

/*
 * Build a NULL-terminated option array of ls_settings_options followed by
 * extra (terminated by a zero entry) into out (at most cap entries).
 */
void ls_settings_options_merge(const struct option *extra, struct option *out,
                               int cap);

/*
 * Handle one option parsed by getopt_long. Returns 1 when it was one of
 * ls_settings_options (applied; --config loads the file at once, so put
 * it first), 0 when it is not ours, or LS_ECONFIG with err set.
 */
int ls_settings_option(ls_settings *s, int opt, const char *arg,
                       ls_error *err);

/* Help text lines for the shared options (for --help). */
const char *ls_settings_help(void);

/*
 * The groups of shared options a command takes: --config and the log
 * options always; a command offers only what it uses, so that it neither
 * lists nor silently accepts an option it would ignore.
 */
enum ls_settings_group {
	LS_OPTS_LISTEN = 1u << 0,   /* --listen */
	LS_OPTS_DATA = 1u << 1,     /* --data */
	LS_OPTS_FABRIC = 1u << 2,   /* --redis/--fabric, --fabric-server-key */
	LS_OPTS_STORE = 1u << 3,    /* --store */
	LS_OPTS_FRONTEND = 1u << 4, /* --broker-frontend */
	LS_OPTS_BACKEND = 1u << 5,  /* --broker-backend */
	LS_OPTS_BUS_PEER = 1u
	                   << 6, /* --bus-keys, --bus-server-key, insecure */
	LS_OPTS_BUS_ALLOW = 1u << 7, /* --bus-allow (with --bus-keys) */
	LS_OPTS_ALL = 0xffu,
};

/* ls_settings_options_merge with only the groups' shared options. */
void ls_settings_options_merge_for(unsigned groups, const struct option *extra,
                                   struct option *out, int cap);

/* ls_settings_help for the groups' options (a static buffer). */
const char *ls_settings_help_for(unsigned groups);

/*
 * Apply log.level / log.format to the logging module. Returns 0 or
 * LS_ECONFIG.
 */
int ls_settings_apply_logging(const ls_settings *s, ls_error *err);

/*
 * The effective store URI: store_uri, or sqlite:<data_dir>/lightstream.db
 * (new string, free()).
 */
char *ls_settings_store_uri(const ls_settings *s);

#endif
