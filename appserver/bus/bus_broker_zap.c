/*
 * CURVE for the broker: the allow-list of public keys and the ZAP handler
 * (RFC 27) that libzmq asks before accepting a CURVE client.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bus_broker_internal.h"
#include "bus_curve.h"
#include "ls_log.h"

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

	if (m->n < 7 || !bus__frame_eq(m, 0, "1.0", 3) ||
	    !bus__frame_eq(m, 5, "CURVE", 5) || bus__frame_size(m, 6) != 32) {
		code = "500";
		text = "unexpected request";
	} else if (b->nallow == 0) {
		code = "200";
		text = "OK";
	} else {
		for (size_t i = 0; i < b->nallow; i++) {
			if (memcmp(b->allow[i], bus__frame_data(m, 6), 32) ==
			    0) {
				code = "200";
				text = "OK";
				break;
			}
		}
	}
	if (code[0] != '2') {
		char key[BUS_CURVE_KEY_LEN + 1] = "?";
		if (m->n >= 7 && bus__frame_size(m, 6) == 32) {
			zmq_z85_encode(key, bus__frame_data(m, 6), 32);
		}
		bus__drop(b, "CURVE client %s refused: %s", key, text);
	}
	{
		const void *d[6] = { "1.0", reqid, code, text, "", "" };
		size_t l[6] = { 3, reqid_len, 3, strlen(text), 0, 0 };
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
		for (size_t i = 0; i < opt->ncurve_allow; i++) {
			if (!bus_curve_key_valid(opt->curve_allow[i])) {
				return ls_error_set(
				        err, -EINVAL,
				        "broker: allowed key %zu is not a Z85 "
				        "public key",
				        i + 1);
			}
			zmq_z85_decode(b->allow[i], opt->curve_allow[i]);
		}
		b->nallow = opt->ncurve_allow;
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
	ls_info(BUS__C, "CURVE on; public key %s; %zu allowed client keys%s",
	        pub, b->nallow, b->nallow ? "" : " (any key accepted)");
	return 0;
}
