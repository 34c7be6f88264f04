/*
 * What the Redis backends share (ps_redis.c for one Redis, ps_rcluster.c
 * for Redis Cluster): the function library that publishes with history and
 * reads it, and the parsers of what it returns and publishes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "ls_log.h"
#include "ps_internal.h"

/*
 * The function library (Redis >= 7.0). ls_publish KEYS: meta, history;
 * ARGV: data, size (default 100; 0: no history, plain PUBLISH), ttl
 * (seconds, default 300) -> {epoch, offset}. ls_history KEYS: meta,
 * history; ARGV: since, limit -> {epoch, latest, complete (0/1), offset,
 * data, offset, data...}. Both create the epoch when missing (TIME in
 * microseconds, hex: a FLUSHALL or an expired stream gets a new one).
 * ls_spublish is ls_publish for Redis Cluster's sharded pub/sub: SPUBLISH
 * on "owner:stream" and "{owner:stream}#h", both in the slot of the keys'
 * hash tag, as a script on a cluster must.
 */
_Static_assert(LS_HISTORY_SIZE_MAX == 10000 && LS_HISTORY_TTL_MAX == 604800,
               "the limits in ps__redis_library follow ls_proto.h");

const char ps__redis_library[] =
        "#!lua name=lightstream\n"
        "local function streamkeys(keys)\n"
        "  local meta, hist = keys[1], keys[2]\n"
        "  local topic = meta and string.match(meta,\n"
        "    '^ls:{([A-Za-z0-9_%-]+:[A-Za-z0-9_.%-]+)}$')\n"
        "  if not topic or hist ~= meta .. ':h' then\n"
        "    error('lightstream: keys must be ls:{owner:stream} and '\n"
        "      .. 'ls:{owner:stream}:h')\n"
        "  end\n"
        "  return meta, hist, topic\n"
        "end\n"
        "local function epoch(meta, hist, t)\n"
        "  local e = redis.call('HGET', meta, 'epoch')\n"
        "  if not e then\n"
        "    e = string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))\n"
        "    redis.call('HSET', meta, 'epoch', e, 'seq', 0)\n"
        "    redis.call('EXPIRE', meta, 86400)\n"
        "    redis.call('DEL', hist)\n"
        "  end\n"
        "  return e\n"
        "end\n"
        "local function int(v, name, lo, hi, default)\n"
        "  if v == nil then return default end\n"
        "  local n = tonumber(v)\n"
        "  if not n or n ~= math.floor(n) or n < lo or n > hi then\n"
        "    error('lightstream: ' .. name .. ' must be an integer in ' ..\n"
        "      lo .. '..' .. hi)\n"
        "  end\n"
        "  return n\n"
        "end\n"
        "local function publish(keys, args, cmd, hchan)\n"
        "  local meta, hist, topic = streamkeys(keys)\n"
        "  local data = args[1]\n"
        "  if data == nil then error('lightstream: data missing') end\n"
        "  local size = int(args[2], 'size', 0, 10000, 100)\n"
        "  local ttl = int(args[3], 'ttl', 1, 604800, 300)\n"
        "  if size == 0 then\n"
        "    redis.call(cmd, topic, data)\n"
        "    return {'', 0}\n"
        "  end\n"
        "  local t = redis.call('TIME')\n"
        "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / "
        "1000)\n"
        "  local e = epoch(meta, hist, t)\n"
        "  local off = redis.call('HINCRBY', meta, 'seq', 1)\n"
        "  redis.call('HSET', meta, 'ttl', ttl)\n"
        "  redis.call('XADD', hist, 'MAXLEN', size, off .. '-0',\n"
        "    'x', now + ttl * 1000, 'd', data)\n"
        "  redis.call('PEXPIRE', hist, ttl * 1000)\n"
        "  redis.call('EXPIRE', meta, math.max(ttl, 86400))\n"
        "  redis.call(cmd, hchan(topic), e .. ':' .. off .. '\\n' .. "
        "data)\n"
        "  return {e, off}\n"
        "end\n"
        "redis.register_function('ls_publish', function(keys, args)\n"
        "  return publish(keys, args, 'PUBLISH',\n"
        "    function(t) return t .. '#h' end)\n"
        "end)\n"
        "redis.register_function('ls_spublish', function(keys, args)\n"
        "  return publish(keys, args, 'SPUBLISH',\n"
        "    function(t) return '{' .. t .. '}#h' end)\n"
        "end)\n"
        "redis.register_function('ls_history', function(keys, args)\n"
        "  local meta, hist = streamkeys(keys)\n"
        "  local since = int(args[1], 'since', 0, 9007199254740991, 0)\n"
        "  local limit = int(args[2], 'limit', 0, 10000, 100)\n"
        "  local t = redis.call('TIME')\n"
        "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / "
        "1000)\n"
        "  local e = epoch(meta, hist, t)\n"
        "  local seq = tonumber(redis.call('HGET', meta, 'seq') or '0')\n"
        "  local out = {e, seq, 0}\n"
        "  if since > seq then return out end\n"
        "  if since == seq then out[3] = 1 return out end\n"
        "  local rows = redis.call('XRANGE', hist, (since + 1) .. '-0', '+',\n"
        "    'COUNT', math.max(limit, 1))\n"
        "  local first = 1\n"
        "  for i, row in ipairs(rows) do\n"
        "    if tonumber(row[2][2]) <= now then first = i + 1 end\n"
        "  end\n"
        "  if first == 1 and rows[1] and\n"
        "     tonumber(string.match(rows[1][1], '^(%d+)')) == since + 1 then\n"
        "    out[3] = 1\n"
        "  end\n"
        "  if limit == 0 then return out end\n"
        "  for i = first, #rows do\n"
        "    out[#out + 1] = tonumber(string.match(rows[i][1], '^(%d+)'))\n"
        "    out[#out + 1] = rows[i][2][4]\n"
        "  end\n"
        "  return out\n"
        "end)\n";

int
ps__redis_framed_parse(const char *msg, size_t len,
                       char epoch[LS_EPOCH_MAX + 1], uint64_t *offset,
                       const char **data, size_t *dlen)
{
	const char *nl = memchr(msg, '\n', len < 64 ? len : 64);
	const char *colon = nl ? memchr(msg, ':', (size_t)(nl - msg)) : NULL;
	uint64_t off = 0;

	if (colon == NULL || colon == msg || colon + 1 == nl ||
	    (size_t)(colon - msg) > LS_EPOCH_MAX) {
		return -1;
	}
	memcpy(epoch, msg, (size_t)(colon - msg));
	epoch[colon - msg] = '\0';
	if (!ls_valid_epoch(epoch)) {
		return -1;
	}
	for (const char *p = colon + 1; p < nl; p++) {
		if (*p < '0' || *p > '9' || off > UINT64_MAX / 10 - 1) {
			return -1;
		}
		off = off * 10 + (uint64_t)(*p - '0');
	}
	if (off == 0) {
		return -1;
	}
	*offset = off;
	*data = nl + 1;
	*dlen = len - (size_t)(nl + 1 - msg);
	return 0;
}

static bool
ps__epoch_ok(const redisReply *e)
{
	if (e->type != REDIS_REPLY_STRING || e->len == 0 ||
	    e->len > PS_EPOCH_MAX) {
		return false;
	}
	for (size_t i = 0; i < e->len; i++) {
		char c = e->str[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-')) {
			return false;
		}
	}
	return true;
}

void
ps__redis_history_done(const redisReply *rep, ps_history_fn done, void *user)
{
	ps_history_result res;
	ps_history_msg *msgs = NULL;
	int status = 0;

	memset(&res, 0, sizeof(res));
	if (rep == NULL) {
		done(LS_EUNAVAILABLE, NULL, user);
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		ls_warn("pubsub", "redis ls_history failed: %s", rep->str);
		done(LS_ESERVER, NULL, user);
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
	    (rep->elements - 3) % 2 != 0 || !ps__epoch_ok(rep->element[0]) ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER ||
	    rep->element[2]->type != REDIS_REPLY_INTEGER) {
		done(LS_ESERVER, NULL, user);
		return;
	}
	res.epoch = rep->element[0]->str;
	res.latest = (uint64_t)rep->element[1]->integer;
	res.complete = rep->element[2]->integer == 1;
	res.count = (rep->elements - 3) / 2;
	if (res.count > 0) {
		msgs = calloc(res.count, sizeof(*msgs));
		if (msgs == NULL) {
			done(-ENOMEM, NULL, user);
			return;
		}
	}
	for (size_t i = 0; i < res.count; i++) {
		const redisReply *o = rep->element[3 + 2 * i];
		const redisReply *d = rep->element[4 + 2 * i];
		if (o->type != REDIS_REPLY_INTEGER || o->integer <= 0 ||
		    d->type != REDIS_REPLY_STRING) {
			status = LS_ESERVER;
			break;
		}
		msgs[i].offset = (uint64_t)o->integer;
		msgs[i].data = d->str;
		msgs[i].len = d->len;
	}
	res.msgs = msgs;
	if (status == 0) {
		done(0, &res, user);
	} else {
		done(status, NULL, user);
	}
	free(msgs);
}

int
ps__redis_publish_reply(const redisReply *rep, uint64_t *offset)
{
	*offset = 0;
	if (rep == NULL) {
		return LS_EUNAVAILABLE;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		return LS_ESERVER;
	}
	/* ls_publish / ls_spublish: {epoch, offset}; (S)PUBLISH: a count. */
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[1]->type == REDIS_REPLY_INTEGER &&
	    rep->element[1]->integer > 0) {
		*offset = (uint64_t)rep->element[1]->integer;
	}
	return 0;
}
