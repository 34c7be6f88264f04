/*
 * Helpers for the pub/sub tests: a real redis-server on a free port in a
 * temporary directory, and running a libev loop until a condition holds.
 */
#ifndef PS_TEST_UTIL_H
#define PS_TEST_UTIL_H

#include <stdbool.h>
#include <sys/types.h>

#include <ev.h>

typedef struct pt_redis {
	pid_t pid;
	int port;
	char dir[64];
	/* optional: three more arguments of redis-server (NULL: none) */
	const char *extra[3];
} pt_redis;

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int pt_free_port(void);

/* Start redis-server on port (0: a free one); wait until it accepts. */
int pt_redis_start(pt_redis *r, int port);

/* SIGKILL the server and reap it (the directory stays for a restart). */
void pt_redis_kill(pt_redis *r);

/* Send sig to the server (SIGSTOP/SIGCONT: a server that hangs). */
void pt_redis_signal(pt_redis *r, int sig);

/* Kill if running and remove the directory. */
void pt_redis_cleanup(pt_redis *r);

/*
 * Run loop until cond(arg) is true or timeout_s passed (a guard against
 * hangs, not a performance assertion). Returns cond's final value.
 */
bool pt_run_until(struct ev_loop *loop, bool (*cond)(void *), void *arg,
                  double timeout_s);

/* Run loop for about secs, handling whatever arrives. */
void pt_run_for(struct ev_loop *loop, double secs);

/* PUBSUB NUMSUB topic through a separate blocking connection (-1: error). */
long pt_numsub(int port, const char *topic);

/*
 * A blocking command returning an integer or an array (its length), e.g.
 * "PUBSUB NUMPAT" or "PUBSUB CHANNELS acme:*". -1 on error.
 */
long pt_redis_count(int port, const char *command);

/*
 * Wait (running loop) until PUBSUB NUMSUB topic equals n. Returns true on
 * success.
 */
bool pt_wait_numsub(struct ev_loop *loop, int port, const char *topic, long n,
                    double timeout_s);

/* Run `redis-cli -p port PUBLISH topic payload`; returns receivers or -1. */
long pt_cli_publish(int port, const char *topic, const char *payload);

#endif
