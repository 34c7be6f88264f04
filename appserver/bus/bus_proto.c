#include "bus_proto.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

int
bus__msg_recv(void *sock, bus__msg *m)
{
	int more = 0;
	size_t sz = sizeof(more);
	int flags = ZMQ_DONTWAIT;

	m->n = 0;
	m->truncated = false;
	for (;;) {
		zmq_msg_t tmp;
		zmq_msg_t *f = m->n < BUS__MAX_FRAMES ? &m->f[m->n] : &tmp;

		zmq_msg_init(f);
		if (zmq_msg_recv(f, sock, flags) < 0) {
			int e = errno;
			zmq_msg_close(f);
			if (m->n == 0 && f != &tmp) {
				return -e;
			}
			/* Parts of a message arrive together; should not
			 * happen, but never leak what we hold. */
			bus__msg_close(m);
			return -e;
		}
		/* Once the first part is here the rest is too. */
		flags = 0;
		if (f == &tmp) {
			m->truncated = true;
			zmq_msg_close(&tmp);
		} else {
			m->n++;
		}
		if (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) != 0 ||
		    !more) {
			break;
		}
	}
	return 0;
}

void
bus__msg_close(bus__msg *m)
{
	for (int i = 0; i < m->n; i++) {
		zmq_msg_close(&m->f[i]);
	}
	m->n = 0;
}

bool
bus__frame_eq(bus__msg *m, int i, const void *p, size_t n)
{
	return i < m->n && zmq_msg_size(&m->f[i]) == n &&
	       memcmp(zmq_msg_data(&m->f[i]), p, n) == 0;
}

int
bus__send(void *sock, int n, const void *const *data, const size_t *len)
{
	for (int i = 0; i < n; i++) {
		int flags = ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0);

		if (zmq_send(sock, data[i], len[i], flags) < 0) {
			/* Only the first part can fail with EAGAIN: ZeroMQ
			 * accepts the rest of a started message. */
			return -errno;
		}
	}
	return 0;
}

int
bus__socket_setup(void *sock)
{
	int linger = 0, hwm = BUS__HWM;
	int64_t maxsize = BUS__MAX_MSG_BYTES;

	if (zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
	    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0 ||
	    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) != 0 ||
	    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxsize, sizeof(maxsize)) !=
	            0) {
		return -errno;
	}
	return 0;
}

uint64_t
bus__get_u64le(const void *p)
{
	const unsigned char *b = p;
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--) {
		v = (v << 8) | b[i];
	}
	return v;
}

void
bus__put_u64le(void *p, uint64_t v)
{
	unsigned char *b = p;

	for (int i = 0; i < 8; i++) {
		b[i] = (unsigned char)(v >> (8 * i));
	}
}

void
bus__hex(const void *p, size_t n, char *out, size_t cap)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b = p;
	size_t o = 0;

	for (size_t i = 0; i < n && o + 2 < cap; i++) {
		out[o++] = digits[b[i] >> 4];
		out[o++] = digits[b[i] & 15];
	}
	if (cap > 0) {
		out[o] = '\0';
	}
}

char *
bus__error_body(ls_proto_code pc, const char *message)
{
	const char *code = ls_proto_code_name(pc);
	json_t *j = json_pack("{s:s,s:s}", "code", code, "message",
	                      message != NULL ? message : code);
	char *s;

	if (j == NULL) {
		/* message was not UTF-8: keep the code, which matters. */
		j = json_pack("{s:s,s:s}", "code", code, "message", code);
	}
	s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}
