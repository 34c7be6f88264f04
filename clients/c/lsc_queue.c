/* Outgoing frames and the subscription table of a client. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ls_error.h"
#include "lsc_client_int.h"

void
lsc__next_id(lsc_client *c, char prefix, char out[LSC_REQUEST_ID_MAX])
{
	/* Publishes take ids on any thread. */
	uint64_t n = __atomic_add_fetch(&c->next_req, 1, __ATOMIC_RELAXED);

	snprintf(out, LSC_REQUEST_ID_MAX, "%c%llu", prefix,
	         (unsigned long long)n);
}

lsc__frame *
lsc__frame_new(char *text)
{
	size_t n;
	lsc__frame *f;

	if (text == NULL) {
		return NULL;
	}
	n = strlen(text);
	f = calloc(1, sizeof(*f) + LWS_PRE + n);
	if (f != NULL) {
		f->len = n;
		memcpy(f->buf + LWS_PRE, text, n);
	}
	free(text);
	return f;
}

static void
lsc__queue_push_locked(lsc_client *c, lsc__queue *q, lsc__frame *f)
{
	f->next = NULL;
	if (q->tail != NULL) {
		q->tail->next = f;
	} else {
		q->head = f;
	}
	q->tail = f;
	c->queued += f->len;
}

void
lsc__queue_push(lsc_client *c, lsc__queue *q, lsc__frame *f)
{
	pthread_mutex_lock(&c->mu);
	lsc__queue_push_locked(c, q, f);
	pthread_mutex_unlock(&c->mu);
}

lsc__frame *
lsc__queue_pop(lsc_client *c, lsc__queue *q)
{
	lsc__frame *f;

	pthread_mutex_lock(&c->mu);
	f = q->head;
	if (f != NULL) {
		q->head = f->next;
		if (q->head == NULL) {
			q->tail = NULL;
		}
		c->queued -= f->len;
	}
	pthread_mutex_unlock(&c->mu);
	return f;
}

int
lsc__publish_push(lsc_client *c, lsc__frame *f)
{
	bool wake;

	pthread_mutex_lock(&c->mu);
	if (!lsc__permitted(c->perms, f->owner, f->stream, LS_PERM_WRITE)) {
		pthread_mutex_unlock(&c->mu);
		return LS_EFORBIDDEN;
	}
	if (c->queued + f->len > c->max_queue) {
		pthread_mutex_unlock(&c->mu);
		return -ENOBUFS;
	}
	lsc__queue_push_locked(c, &c->pub, f);
	wake = !c->wake_pending;
	c->wake_pending = true;
	pthread_mutex_unlock(&c->mu);
	/* The loop's thread sends it (LWS_CALLBACK_EVENT_WAIT_CANCELLED);
	 * one wake-up covers a burst. */
	if (wake) {
		lws_cancel_service(c->ctx);
	}
	return 0;
}

bool
lsc__pub_pending(lsc_client *c)
{
	bool any;

	pthread_mutex_lock(&c->mu);
	any = c->pub.head != NULL;
	pthread_mutex_unlock(&c->mu);
	return any;
}

void
lsc__set_perms(lsc_client *c, json_t *perms)
{
	json_t *old;

	pthread_mutex_lock(&c->mu);
	old = c->perms;
	c->perms = perms;
	pthread_mutex_unlock(&c->mu);
	json_decref(old);
}

void
lsc__queue_clear(lsc_client *c, lsc__queue *q)
{
	lsc__frame *f;

	while ((f = lsc__queue_pop(c, q)) != NULL) {
		free(f);
	}
}

void
lsc__want_write(lsc_client *c)
{
	if (c->wsi != NULL && c->state != LSC__CONNECTING) {
		lws_callback_on_writable(c->wsi);
	}
}

/* Queue a control frame (text is taken). */
int
lsc__send_ctl(lsc_client *c, char *text)
{
	lsc__frame *f = lsc__frame_new(text);

	if (f == NULL) {
		return -ENOMEM;
	}
	lsc__queue_push(c, &c->ctl, f);
	lsc__want_write(c);
	return 0;
}

lsc__sub *
lsc__sub_find(lsc_client *c, int64_t id)
{
	for (lsc__sub *s = c->subs; s != NULL; s = s->next) {
		if (s->id == id) {
			return s;
		}
	}
	return NULL;
}

void
lsc__sub_free(lsc__sub *s)
{
	json_decref(s->query);
	free(s->server_id);
	free(s);
}

void
lsc__sub_unlink(lsc_client *c, lsc__sub *s)
{
	for (lsc__sub **pp = &c->subs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			return;
		}
	}
}

int
lsc__sub_send(lsc_client *c, lsc__sub *s)
{
	lsc__next_id(c, 's', s->request_id);
	s->state = LSC__SUB_PENDING;
	return lsc__send_ctl(
	        c, lsc__subscribe_request_since(
	                   s->owner, s->stream, s->request_id, s->query,
	                   s->have_pos ? s->epoch : NULL, s->offset));
}

/* Close the current connection from our side with code. */
void
lsc__close_local(lsc_client *c, int code, const char *reason)
{
	if (c->wsi == NULL || c->local_close != 0) {
		return;
	}
	c->local_close = code;
	snprintf(c->local_reason, sizeof(c->local_reason), "%s", reason);
	/* While connecting, ESTABLISHED sees local_close and closes then;
	 * lws's own handshake timeout bounds the wait. */
	if (c->state != LSC__CONNECTING) {
		lws_callback_on_writable(c->wsi);
	}
}
