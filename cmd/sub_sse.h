/*
 * `lightstream sub --sse` (cmd/sub_sse.c): the subscription over
 * Server-Sent Events.
 */
#ifndef SUB_SSE_H
#define SUB_SSE_H

#include <stdbool.h>
#include <stdint.h>

#include "lsc_cli.h"

typedef struct sub_sse_options {
	const char *url; /* http(s):// or ws(s)://HOST[:PORT][/PREFIX] */
	const char *app_key;
	const char *token;
	const char *query; /* JSON text or NULL */
	const char *ca_file;
	bool insecure;
	const char *owner;
	const char *stream;
	lsc_cli_output output;
	long count;          /* 0: unlimited */
	int64_t deadline_ms; /* ls_now_ms() clock; 0: none */
	bool reconnect;
	/* --since/--epoch: the first request's Last-Event-ID (NULL: none) */
	const char *since_epoch;
	uint64_t since_offset;
} sub_sse_options;

/*
 * Subscribe and print until count messages, the deadline, a signal or a
 * final error. All strings are borrowed. Returns the exit status.
 */
int sub_sse_run(const sub_sse_options *o);

#endif
