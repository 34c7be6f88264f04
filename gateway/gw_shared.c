/*
 * State the HTTP limits share between the loops of one server
 * (docs/security.md): one process is one client-facing gateway, so its
 * limits must not multiply with its loops.
 */
#include <errno.h>
#include <stdlib.h>

#include "gw_internal.h"
#include "gw_iplimit.h"
#include "gw_limit.h"

gw_shared *
gw_shared_new(const ls_settings *s)
{
	gw_shared *sh = calloc(1, sizeof(*sh));

	if (sh == NULL) {
		return NULL;
	}
	pthread_mutex_init(&sh->lock, NULL);
	atomic_init(&sh->refs, 1);
	sh->ip_limit = gw_limit_new(s->token_ip_failures_per_minute,
	                            GW_LIMIT_KEYS_MAX);
	sh->key_limit = gw_limit_new(s->token_key_failures_per_minute,
	                             GW_LIMIT_KEYS_MAX);
	sh->conns_by_ip =
	        gw_iplimit_new(s->max_connections_per_ip,
	                       s->connection_rate_per_ip, GW_LIMIT_KEYS_MAX);
	if (sh->ip_limit == NULL || sh->key_limit == NULL ||
	    sh->conns_by_ip == NULL) {
		gw_shared_unref(&sh);
	}
	return sh;
}

gw_shared *
gw_shared_ref(gw_shared *sh)
{
	atomic_fetch_add(&sh->refs, 1);
	return sh;
}

void
gw_shared_unref(gw_shared **psh)
{
	gw_shared *sh = psh ? *psh : NULL;

	if (sh == NULL) {
		return;
	}
	*psh = NULL;
	if (atomic_fetch_sub(&sh->refs, 1) != 1) {
		return;
	}
	gw_limit_destroy(&sh->ip_limit);
	gw_limit_destroy(&sh->key_limit);
	gw_iplimit_destroy(&sh->conns_by_ip);
	pthread_mutex_destroy(&sh->lock);
	free(sh);
}

int
gw_shared_token_check(gw_shared *sh, const char *ip, const char *app,
                      int64_t now_ms, bool *by_ip)
{
	int ip_wait, key_wait;

	pthread_mutex_lock(&sh->lock);
	ip_wait = gw_limit_check(sh->ip_limit, ip, now_ms);
	key_wait = gw_limit_check(sh->key_limit, app, now_ms);
	pthread_mutex_unlock(&sh->lock);
	*by_ip = ip_wait >= key_wait;
	return ip_wait > key_wait ? ip_wait : key_wait;
}

void
gw_shared_token_fail(gw_shared *sh, const char *ip, const char *app,
                     int64_t now_ms)
{
	pthread_mutex_lock(&sh->lock);
	gw_limit_fail(sh->ip_limit, ip, now_ms);
	gw_limit_fail(sh->key_limit, app, now_ms);
	pthread_mutex_unlock(&sh->lock);
}
