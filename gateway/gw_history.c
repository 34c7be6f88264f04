/*
 * History settings and reads (docs/protocol.md, "History and recovery").
 *
 * The settings of a stream are its owner account's: the gateway's
 * history.size / history.ttl, unless the account document overrides them
 * ("history": {"size", "ttl"}). The app server puts the overrides of every
 * owner a token's permissions name into the validateToken reply
 * ("history": {"<owner>": {"size", "ttl"}}), so the gateway needs no
 * extra round trip to publish.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"
#include "ls_proto.h"

/* One {"size","ttl"} entry over the defaults; false when ill-formed. */
static bool
gw__hist_entry(json_t *e, ps_history_cfg *cfg)
{
	json_t *size = json_object_get(e, "size");
	json_t *ttl = json_object_get(e, "ttl");

	if (!json_is_object(e)) {
		return false;
	}
	if (size != NULL) {
		if (!json_is_integer(size) || json_integer_value(size) < 0 ||
		    json_integer_value(size) > LS_HISTORY_SIZE_MAX) {
			return false;
		}
		cfg->size = (unsigned)json_integer_value(size);
	}
	if (ttl != NULL) {
		if (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
		    json_integer_value(ttl) > LS_HISTORY_TTL_MAX) {
			return false;
		}
		cfg->ttl = (unsigned)json_integer_value(ttl);
	}
	return true;
}

ps_history_cfg
gw_history_cfg(const gw_gateway *gw, json_t *grant, const char *owner)
{
	ps_history_cfg cfg = gw->history;
	json_t *e = json_object_get(json_object_get(grant, "history"), owner);

	if (e != NULL && !gw__hist_entry(e, &cfg)) {
		cfg = gw->history;
	}
	return cfg;
}

int
gw_history_take(gw_conn *c, json_t *grant)
{
	json_t *h = json_object_get(grant, "history"), *e;
	gw_owner_hist *list = NULL;
	const char *owner;
	size_t n = 0;

	if (json_is_object(h) && json_object_size(h) > 0) {
		list = calloc(json_object_size(h), sizeof(*list));
		if (list == NULL) {
			return -ENOMEM;
		}
		json_object_foreach(h, owner, e)
		{
			ps_history_cfg cfg = c->gw->history;
			if (!ls_valid_app_key(owner) ||
			    !gw__hist_entry(e, &cfg)) {
				continue;
			}
			snprintf(list[n].owner, sizeof(list[n].owner), "%s",
			         owner);
			list[n].cfg = cfg;
			n++;
		}
	}
	free(c->ohist);
	c->ohist = list;
	c->nohist = n;
	return 0;
}

ps_history_cfg
gw_history_for(const gw_conn *c, const char *owner)
{
	for (size_t i = 0; i < c->nohist; i++) {
		if (strcmp(c->ohist[i].owner, owner) == 0) {
			return c->ohist[i].cfg;
		}
	}
	return c->gw->history;
}

json_t *
gw_history_json(const ps_history_result *r)
{
	json_t *msgs = json_array();
	json_t *out;

	if (msgs == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < r->count; i++) {
		const ps_history_msg *m = &r->msgs[i];
		json_t *data =
		        json_loadb(m->data, m->len, JSON_DECODE_ANY, NULL);
		if (data == NULL) {
			/* Not JSON: a JSON string, as live delivery does. */
			data = json_stringn(m->data, m->len);
		}
		if (data == NULL) {
			continue; /* not UTF-8: never delivered either */
		}
		json_array_append_new(msgs, json_pack("{s:I,s:o}", "offset",
		                                      (json_int_t)m->offset,
		                                      "data", data));
	}
	out = json_pack("{s:s,s:I,s:o}", "epoch", r->epoch, "offset",
	                (json_int_t)r->latest, "messages", msgs);
	return out;
}
