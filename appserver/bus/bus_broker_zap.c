/*
 * CURVE for the broker: the allow-list of public keys with their roles and
 * the ZAP handler (RFC 27) that libzmq asks before accepting a CURVE peer.
 * The handler names the accepted key in the connection's User-Id (its
 * index in the allow-list), so every message the broker reads tells which
 * key, hence which roles, sent it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bus_broker_internal.h"
#include "bus_curve.h"
#include "ls_crypto.h"
#include "ls_log.h"

unsigned
bus_role_parse(const char *name)
{
	if (name == NULL) {
		return 0;
	}
	if (strcmp(name, "worker") == 0) {
		return BUS_ROLE_WORKER;
	}
	if (strcmp(name, "client") == 0) {
		return BUS_ROLE_CLIENT;
	}
	if (strcmp(name, "admin") == 0) {
		return BUS_ROLE_ADMIN;
	}
	return 0;
}

void
bus__key_text(const bus_broker *b, int key, char *out)
{
	if (key < 0 || (size_t)key >= b->nallow ||
	    zmq_z85_encode(out, b->allow[key].key, 32) == NULL) {
		strcpy(out, "-");
	}
}

unsigned
bus__peer_roles(bus_broker *b, bus__msg *m, int *key)
{
	const char *uid;
	char *end = NULL;
	long idx;

	*key = -1;
	if (!b->curve) {
		return BUS__ALL_ROLES;
	}
	if (m->n < 2) {
		return 0;
	}
	/* Frame 1: ROUTER gives the routing-id frame no metadata. */
	uid = zmq_msg_gets(&m->f[1], "User-Id");
	if (uid == NULL) {
		/* No metadata at all: no handshake, so inproc:// - a peer
		 * in this process. A handshaken peer without a User-Id
		 * (never from our handler) has no role. */
		return zmq_msg_gets(&m->f[1], "Socket-Type") == NULL
		               ? BUS__ALL_ROLES
		               : 0;
	}
	idx = strtol(uid, &end, 10);
	if (end == uid || *end != '\0' || idx < 0 ||
	    (size_t)idx >= b->nallow) {
		return 0;
	}
	*key = (int)idx;
	return b->allow[idx].roles;
}

/*
 * One ZAP request (RFC 27): [version, requestId, domain, address,
 * routing id, mechanism, credentials...]. Every request gets a reply, or
 * the REP socket would stop taking requests.
 */
void
bus__zap(bus_broker *b, bus__msg *m)
{
	const char *code = "400", *text = "public key not allowed";
	const void *reqid = m->n > 1 ? bus__frame_data(m, 1) : "";
	size_t reqid_len = m->n > 1 ? bus__frame_size(m, 1) : 0;
	char uid[24] = "";

	if (m->n < 7 || !bus__frame_eq(m, 0, "1.0", 3) ||
	    !bus__frame_eq(m, 5, "CURVE", 5) || bus__frame_size(m, 6) != 32) {
		code = "500";
		text = "unexpected request";
	} else {
		/* Every entry is compared: the time taken does not tell
		 * which key is listed. */
		size_t found = b->nallow;
		for (size_t i = 0; i < b->nallow; i++) {
			if (ls_ct_equal(b->allow[i].key, 32,
			                bus__frame_data(m, 6), 32)) {
				found = i;
			}
		}
		if (found < b->nallow) {
			code = "200";
			text = "OK";
			snprintf(uid, sizeof(uid), "%zu", found);
		}
	}
	if (code[0] != '2') {
		char key[BUS_CURVE_KEY_LEN + 1] = "?";
		if (m->n >= 7 && bus__frame_size(m, 6) == 32) {
			zmq_z85_encode(key, bus__frame_data(m, 6), 32);
		}
		bus__drop(b, "CURVE peer %s refused on the %.*s: %s", key,
		          m->n > 2 ? (int)bus__frame_size(m, 2) : 0,
		          m->n > 2 ? (const char *)bus__frame_data(m, 2) : "",
		          text);
	}
	{
		const void *d[6] = { "1.0", reqid, code, text, uid, "" };
		size_t l[6] = {
			3, reqid_len, 3, strlen(text), strlen(uid), 0
		};
		bus__send(b->zap, 6, d, l);
	}
}

/* The allow-list and the ZAP handler (before any CURVE socket binds). */
int
bus__curve_setup(bus_broker *b, void *ctx, const bus_broker_options *opt,
                 ls_error *err)
{
	char pub[BUS_CURVE_KEY_LEN + 1];
	int linger = 0;
	size_t nworker = 0, nclient = 0, nadmin = 0;

	if (!zmq_has("curve")) {
		return ls_error_set(
		        err, -ENOTSUP,
		        "broker: this libzmq has no CURVE support");
	}
	if (bus_curve_public(opt->curve_secret_key, pub) != 0) {
		return ls_error_set(err, -EINVAL,
		                    "broker: the CURVE secret key must be %d "
		                    "Z85 characters",
		                    BUS_CURVE_KEY_LEN);
	}
	if (opt->ncurve_allow > 0) {
		b->allow = calloc(opt->ncurve_allow, sizeof(*b->allow));
		if (b->allow == NULL) {
			return ls_error_set(err, -ENOMEM, "out of memory");
		}
	}
	for (size_t i = 0; i < opt->ncurve_allow; i++) {
		unsigned char raw[32];
		size_t k;
		if (!bus_curve_key_valid(opt->curve_allow[i].key) ||
		    (opt->curve_allow[i].roles & ~BUS__ALL_ROLES) != 0 ||
		    opt->curve_allow[i].roles == 0) {
			return ls_error_set(err, -EINVAL,
			                    "broker: allowed key %zu is not a "
			                    "Z85 public key with a role",
			                    i + 1);
		}
		zmq_z85_decode(raw, opt->curve_allow[i].key);
		for (k = 0; k < b->nallow; k++) {
			if (memcmp(b->allow[k].key, raw, 32) == 0) {
				break;
			}
		}
		if (k == b->nallow) {
			memcpy(b->allow[k].key, raw, 32);
			b->nallow++;
		}
		b->allow[k].roles |= opt->curve_allow[i].roles;
	}
	for (size_t i = 0; i < b->nallow; i++) {
		nworker += (b->allow[i].roles & BUS_ROLE_WORKER) != 0;
		nclient += (b->allow[i].roles & BUS_ROLE_CLIENT) != 0;
		nadmin += (b->allow[i].roles & BUS_ROLE_ADMIN) != 0;
	}
	b->zap = zmq_socket(ctx, ZMQ_REP);
	if (b->zap == NULL ||
	    zmq_setsockopt(b->zap, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
	    zmq_bind(b->zap, BUS__ZAP_ENDPOINT) != 0) {
		return ls_error_set(err, -errno,
		                    "broker: ZAP handler: %s (one CURVE "
		                    "broker per ZeroMQ context)",
		                    zmq_strerror(errno));
	}
	b->curve = true;
	ls_info(BUS__C,
	        "CURVE on; public key %s; allowed keys: %zu worker, %zu "
	        "client, %zu admin",
	        pub, nworker, nclient, nadmin);
	return 0;
}
