#include "lg_ws.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

/* One key for every connection: the key only proves the server speaks
 * WebSocket, and a constant lets us compute the expected answer once.
 * RFC 6455 4.1: base64 of exactly 16 bytes ("lightstream-benc"); servers
 * that check it (uWebSockets: 400) refuse any other length. */
static const char lg__ws_key[] = "bGlnaHRzdHJlYW0tYmVuYw==";

int
lg_ws_request(char *out, size_t cap, const char *host, int port,
              const char *path)
{
	int n = snprintf(out, cap,
	                 "GET %s HTTP/1.1\r\n"
	                 "Host: %s:%d\r\n"
	                 "Upgrade: websocket\r\n"
	                 "Connection: Upgrade\r\n"
	                 "Sec-WebSocket-Key: %s\r\n"
	                 "Sec-WebSocket-Version: 13\r\n"
	                 "\r\n",
	                 path, host, port, lg__ws_key);
	if (n < 0 || (size_t)n >= cap) {
		return -1;
	}
	return n;
}

static void
lg__ws_expected_accept(char out[64])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	char cat[128];
	unsigned char digest[SHA_DIGEST_LENGTH];
	snprintf(cat, sizeof cat, "%s%s", lg__ws_key, guid);
	SHA1((const unsigned char *)cat, strlen(cat), digest);
	EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
}

size_t
lg_ws_head_len(const uint8_t *buf, size_t len)
{
	for (size_t i = 3; i < len; i++) {
		if (buf[i] == '\n' && buf[i - 1] == '\r' &&
		    buf[i - 2] == '\n' && buf[i - 3] == '\r') {
			return i + 1;
		}
	}
	return 0;
}

int
lg_ws_check_response(const char *head, size_t len)
{
	static char expect[64];
	int status = -1;
	if (!expect[0]) {
		lg__ws_expected_accept(expect);
	}
	if (len < 12 || strncmp(head, "HTTP/1.1 ", 9) != 0) {
		return -1;
	}
	status = (head[9] - '0') * 100 + (head[10] - '0') * 10 +
	         (head[11] - '0');
	if (status != 101) {
		return status;
	}
	/* Walk header lines looking for the accept value. */
	const char *p = memchr(head, '\n', len);
	const char *end = head + len;
	while (p && p + 1 < end) {
		const char *line = p + 1;
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol) {
			break;
		}
		static const char name[] = "Sec-WebSocket-Accept:";
		size_t nl = sizeof name - 1;
		if ((size_t)(eol - line) > nl &&
		    strncasecmp(line, name, nl) == 0) {
			const char *v = line + nl;
			while (v < eol && (*v == ' ' || *v == '\t')) {
				v++;
			}
			size_t el = strlen(expect);
			if ((size_t)(eol - v) >= el &&
			    memcmp(v, expect, el) == 0) {
				return 0;
			}
			return -1;
		}
		p = eol;
	}
	return -1;
}

size_t
lg_ws_encode(uint8_t *out, size_t cap, int opcode, const void *payload,
             size_t len, uint32_t mask)
{
	size_t h = 2;
	if (len >= 126) {
		h = len > 0xffff ? 10 : 4;
	}
	if (h + 4 + len > cap) {
		return 0;
	}
	out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
	if (len < 126) {
		out[1] = (uint8_t)(0x80 | len);
	} else if (len <= 0xffff) {
		out[1] = 0x80 | 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
	} else {
		out[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++) {
			out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		}
	}
	uint8_t k[4] = { (uint8_t)(mask >> 24), (uint8_t)(mask >> 16),
		         (uint8_t)(mask >> 8), (uint8_t)mask };
	memcpy(out + h, k, 4);
	const uint8_t *src = payload;
	uint8_t *dst = out + h + 4;
	for (size_t i = 0; i < len; i++) {
		dst[i] = src[i] ^ k[i & 3];
	}
	return h + 4 + len;
}

long
lg_ws_parse(const uint8_t *buf, size_t len, lg_ws_frame *f)
{
	if (len < 2) {
		return 0;
	}
	if (buf[0] & 0x70) {
		return -1; /* no extension negotiated: RSV bits must be 0 */
	}
	if (buf[1] & 0x80) {
		return -1; /* server frames are never masked */
	}
	size_t h = 2;
	uint64_t n = buf[1] & 0x7f;
	if (n == 126) {
		if (len < 4) {
			return 0;
		}
		n = ((uint64_t)buf[2] << 8) | buf[3];
		h = 4;
	} else if (n == 127) {
		if (len < 10) {
			return 0;
		}
		n = 0;
		for (int i = 0; i < 8; i++) {
			n = (n << 8) | buf[2 + i];
		}
		h = 10;
	}
	if (n > LG_WS_MAX_FRAME) {
		return -1;
	}
	if (len < h + n) {
		return 0;
	}
	f->opcode = buf[0] & 0x0f;
	f->fin = (buf[0] & 0x80) != 0;
	f->payload = buf + h;
	f->len = (size_t)n;
	return (long)(h + n);
}
