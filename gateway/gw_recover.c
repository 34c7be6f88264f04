/*
 * Recovery of one subscription (docs/protocol.md, "History and recovery"):
 * the merge of a history read with the live messages that arrived while it
 * was in flight.
 *
 * From SubscribeRequest to SubscribeResponse a subscription is already in
 * its stream's list, so no live message can slip between the fabric
 * subscription and the history read: live messages are buffered here.
 * Once the fabric confirmed the topic (every later publish reaches the
 * gateway), the history is read; it says the stream's epoch and latest
 * offset L. With a matching since and a history that still holds every
 * message after it, the missed messages (since < offset <= L) go first;
 * then the buffered live messages with an offset above L (older ones were
 * in the history read or published before the subscription) and those
 * without offset (plain publishes), in arrival order. No gap, no
 * duplicate, whatever the timing of the read and the live messages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"

typedef struct gw_rec_msg {
	gw_buf *body; /* shared body: JSON then the offset suffix */
	size_t jlen;  /* bytes of JSON in body */
	uint64_t offset;
	char epoch[LS_EPOCH_MAX + 1];
} gw_rec_msg;

struct gw_rec {
	void *owner; /* the subscription; NULL once it is gone */
	json_t *request_id;
	bool has_since;
	bool reading; /* history read in flight: it owns the gw_rec */
	uint64_t since;
	char epoch[LS_EPOCH_MAX + 1];
	gw_rec_msg *buf;
	size_t n, cap;
	size_t bytes;
};

gw_rec *
gw_rec_new(void *owner, json_t *request_id, const char *since_epoch,
           uint64_t since)
{
	gw_rec *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		return NULL;
	}
	r->owner = owner;
	r->request_id = json_incref(request_id);
	if (since_epoch != NULL) {
		r->has_since = true;
		r->since = since;
		snprintf(r->epoch, sizeof(r->epoch), "%s", since_epoch);
	}
	return r;
}

static void
gw__rec_drop_buffer(gw_rec *r)
{
	for (size_t i = 0; i < r->n; i++) {
		gw_buf_unref(&r->buf[i].body);
	}
	r->n = 0;
	r->bytes = 0;
}

void
gw_rec_release(gw_rec *r)
{
	if (r == NULL) {
		return;
	}
	gw__rec_drop_buffer(r);
	if (r->reading) {
		r->owner = NULL; /* gw_rec_read_done frees it */
		return;
	}
	free(r->buf);
	json_decref(r->request_id);
	free(r);
}

int
gw_rec_buffer(gw_rec *r, gw_buf *shared, size_t jlen, uint64_t offset,
              const char *epoch, size_t limit)
{
	if (r->bytes + shared->len > limit) {
		return -ENOBUFS;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		gw_rec_msg *b = realloc(r->buf, cap * sizeof(*b));
		if (b == NULL) {
			return -ENOMEM;
		}
		r->buf = b;
		r->cap = cap;
	}
	r->buf[r->n].body = gw_buf_ref(shared);
	r->buf[r->n].jlen = jlen;
	r->buf[r->n].offset = offset;
	snprintf(r->buf[r->n].epoch, sizeof(r->buf[r->n].epoch), "%s",
	         epoch != NULL ? epoch : "");
	r->n++;
	r->bytes += shared->len;
	return 0;
}

void
gw_rec_read_start(gw_rec *r)
{
	r->reading = true;
}

bool
gw_rec_reading(const gw_rec *r)
{
	return r->reading;
}

void *
gw_rec_read_done(gw_rec *r)
{
	void *owner = r->owner;

	r->reading = false;
	if (owner == NULL) {
		gw_rec_release(r); /* the subscription went meanwhile */
	}
	return owner;
}

bool
gw_rec_has_since(const gw_rec *r)
{
	return r->has_since;
}

bool
gw_rec_since(const gw_rec *r, uint64_t *since)
{
	*since = r->since;
	return r->has_since;
}

json_t *
gw_rec_request_id(const gw_rec *r)
{
	return r->request_id;
}

bool
gw_rec_recovered(const gw_rec *r, const ps_history_result *res)
{
	return r->has_since && res != NULL && res->complete &&
	       strcmp(res->epoch, r->epoch) == 0;
}

bool
gw_rec_merge(gw_rec *r, const ps_history_result *res, bool parse,
             gw_rec_emit_fn emit, void *user)
{
	bool recovered = gw_rec_recovered(r, res);
	/* Without a history read, every buffered message is new. */
	uint64_t last = res != NULL ? res->latest : 0;

	if (recovered) {
		for (size_t i = 0; i < res->count; i++) {
			const ps_history_msg *hm = &res->msgs[i];
			json_t *msg = NULL;
			gw_buf *shared;
			size_t jlen;
			if (hm->offset <= r->since || hm->offset > last) {
				continue;
			}
			shared = gw_message(hm->data, hm->len, hm->offset,
			                    parse, &msg, &jlen);
			if (shared == NULL) {
				continue; /* not UTF-8: never delivered live */
			}
			bool go_on = emit(user, shared, msg, hm->offset);
			json_decref(msg);
			gw_buf_unref(&shared);
			if (!go_on) {
				goto out;
			}
		}
	}
	for (size_t i = 0; i < r->n; i++) {
		gw_rec_msg *bm = &r->buf[i];
		json_t *msg = NULL;
		if (bm->offset != 0 && bm->offset <= last &&
		    strcmp(bm->epoch, res->epoch) == 0) {
			continue; /* in the read */
		}
		if (parse) {
			msg = json_loadb(bm->body->data, bm->jlen,
			                 JSON_DECODE_ANY, NULL);
		}
		bool go_on = emit(user, bm->body, msg, bm->offset);
		json_decref(msg);
		if (!go_on) {
			break;
		}
	}
out:
	gw__rec_drop_buffer(r);
	return recovered;
}
