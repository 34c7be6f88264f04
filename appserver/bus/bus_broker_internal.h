/*
 * Internal to the broker: its state, shared by bus_broker.c (the state
 * machine), bus_broker_mmi.c (built-in services) and bus_broker_zap.c
 * (CURVE authentication). Not part of the API.
 */
#ifndef BUS_BROKER_INTERNAL_H
#define BUS_BROKER_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus_broker.h"
#include "bus_proto.h"

#define BUS__C "broker"

#define BUS__MAX_SERVICES        1024   /* distinct services registered */
#define BUS__MAX_WORKERS         4096   /* workers registered at once */
#define BUS__MAX_SERVICE_WORKERS 1024   /* workers of one service */
#define BUS__MAX_QUEUED          100000 /* queued requests, all services */
#define BUS__DEFAULT_QUEUE       10000
/* A service without workers nor queued requests is forgotten after this
 * (at once when the table is full and a new one registers). */
#define BUS__SERVICE_LINGER_MS 30000
/* A worker key that let a request expire is chosen last for this long. */
#define BUS__STRIKE_MS          60000
#define BUS__DEFAULT_TIMEOUT_MS 5000
#define BUS__LOG_BURST          10   /* dropped-input warnings per second */
#define BUS__BATCH              1000 /* messages per socket per turn */
/*
 * Requests a worker may hold at once. A worker handles its requests one
 * after another; with one more waiting in its socket it starts the next
 * at once instead of idling for a round trip through the broker, and
 * every hop carries several messages per wake-up. Idle workers are still
 * chosen first.
 */
#define BUS__PREFETCH 4
/* Roles of a peer in the same process, or of any peer without CURVE. */
#define BUS__ALL_ROLES (BUS_ROLE_WORKER | BUS_ROLE_CLIENT | BUS_ROLE_ADMIN)

typedef struct bus__bcast bus__bcast;

typedef struct bus__request bus__request;
struct bus__request {
	bus__request *next;
	int64_t deadline;
	bus__bcast *bc; /* one worker's part of a broadcast, or NULL */
	int bc_index;   /* its place in bc's answers */
	unsigned char reqid[8];
	size_t client_len;
	unsigned char client[BUS__MAX_IDENTITY];
	size_t body_len;
	char body[]; /* body_len bytes */
};

/*
 * A request to every worker of a service (docs/bus.md, "Broadcast"): the
 * parts are ordinary held requests pointing here; their answers are
 * collected and sent as one reply when the last one is in.
 */
#define BUS__BCAST_ANSWER_MAX (64 * 1024) /* larger answers: too_large */
typedef struct bus__bcast_answer {
	char worker[2 * 16 + 1];
	unsigned char status; /* 0: still waiting */
	char *body;           /* JSON (result, or {"code","message"}) */
	size_t len;
} bus__bcast_answer;

struct bus__bcast {
	unsigned char reqid[8];
	size_t client_len;
	unsigned char client[BUS__MAX_IDENTITY];
	int n, waiting;
	bus__bcast_answer answers[]; /* n */
};

typedef struct bus__service bus__service;
struct bus__service {
	bus__service *next;
	size_t name_len;
	char name[BUS__MAX_SERVICE_LEN + 1];
	bus__request *qhead, *qtail;
	int qlen;
	int nworkers;
	int64_t empty_since; /* no workers, no queue since then; 0: in use */
	uint64_t served, failed, timed_out, rejected;
};

typedef struct bus__bworker bus__bworker;
struct bus__bworker {
	bus__bworker *next; /* every worker */
	/* available (holds < BUS__PREFETCH), least recently used first */
	bus__bworker *iprev, *inext;
	bool idle;
	size_t id_len;
	unsigned char id[BUS__MAX_IDENTITY];
	char hex[2 * 16 + 1];
	bus__service *services[BUS__MAX_WORKER_SERVICES];
	int nservices;
	int64_t expiry;
	bool gone;         /* its connection is closed: purge soon */
	int key;           /* index in the broker's allow-list, -1: none */
	uint64_t answered; /* replies; 0: may hold only one request */
	bus__request *held[BUS__PREFETCH]; /* sent to it, not answered */
	bus__service *held_svc[BUS__PREFETCH];
	int nheld;
};

typedef struct bus__key {
	unsigned char key[32];
	unsigned roles;       /* BUS_ROLE_* */
	int64_t strike_until; /* chosen last until then (ls_now_ms) */
} bus__key;

struct bus_broker {
	void *front, *back;
	int stopfd;
	atomic_bool stopping;
	int hb_ms, liveness, queue_limit, timeout_ms;
	bus__service *services;
	int nservices;
	bus__bworker *workers;
	int nworkers;
	bus__bworker *idle_head, *idle_tail;
	int64_t hb_at;
	int64_t log_window;
	int log_count, log_suppressed;
	int nqueued;        /* requests in every queue */
	int64_t held_next;  /* earliest deadline of a held request */
	int64_t sweep_at;   /* next look for services to forget */
	uint64_t forbidden; /* requests and READYs refused for their role */
	void *zap;          /* ZAP handler (REP), with CURVE only */
	bool curve;         /* CURVE on: roles apply */
	bus__key *allow;    /* allowed public keys, each once */
	size_t nallow;
};

#define BUS__ZAP_ENDPOINT "inproc://zeromq.zap.01"

/* Warn about dropped input, at most BUS__LOG_BURST times a second. */
void bus__drop(bus_broker *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Send [requestId, status, body] to a client. 0 or -errno. */
int bus__reply(bus_broker *b, const void *client, size_t client_len,
               const void *reqid, unsigned char status, const void *body,
               size_t len);

/*
 * Send an error reply (status 2, body {"code","message"}, docs/bus.md
 * "Errors") to a client. 0 or -errno.
 */
int bus__reply_error(bus_broker *b, const void *client, size_t client_len,
                     const void *reqid, ls_proto_code pc, const char *text);

/* The registered service of that name, or NULL. */
bus__service *bus__service_find(bus_broker *b, const void *name, size_t len);

bool bus__serves(const bus__bworker *w, const bus__service *s);

/* Answer a frontend request to mmi.* (m: [client, id, service, body]). */
void bus__mmi(bus_broker *b, bus__msg *m, const char *svc, size_t len);

/* Answer one ZAP request read from b->zap. */
void bus__zap(bus_broker *b, bus__msg *m);

/*
 * The roles of the peer that sent m, and its allow-list index (-1 when
 * none) in *key: every role without CURVE and for a peer in the same
 * process (inproc:// has no handshake, so its messages carry no
 * metadata); the listed roles of a CURVE peer (ZAP set its User-Id to
 * its index).
 */
unsigned bus__peer_roles(bus_broker *b, bus__msg *m, int *key);

/* The Z85 text of allow-list entry key (or "-"), into out[41]. */
void bus__key_text(const bus_broker *b, int key, char *out);

/* Load the allow-list and bind the ZAP handler. 0 or error, err set. */
int bus__curve_setup(bus_broker *b, void *ctx, const bus_broker_options *opt,
                     ls_error *err);

#endif
