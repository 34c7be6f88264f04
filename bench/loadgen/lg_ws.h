/* Minimal WebSocket client framing (RFC 6455) for the load generator.
 *
 * Only what a benchmark client needs: the upgrade request and the check of
 * its answer, masked client frames, and parsing of (unmasked) server frames
 * in place. No allocation; every function works on caller buffers.
 */
#ifndef LG_WS_H
#define LG_WS_H

#include <stddef.h>
#include <stdint.h>

enum {
	LG_WS_CONT = 0x0,
	LG_WS_TEXT = 0x1,
	LG_WS_BINARY = 0x2,
	LG_WS_CLOSE = 0x8,
	LG_WS_PING = 0x9,
	LG_WS_PONG = 0xA,
};

/* Largest server frame the client accepts (bigger: protocol error). */
#define LG_WS_MAX_FRAME (128u * 1024u)

typedef struct lg_ws_frame {
	int opcode;
	int fin;
	const uint8_t *payload; /* borrowed: points into the parsed buffer */
	size_t len;
} lg_ws_frame;

/* Write the upgrade request for host:port/path into out (cap bytes), with
 * the fixed Sec-WebSocket-Key of this module. Returns its length, or -1 when
 * it does not fit. */
int lg_ws_request(char *out, size_t cap, const char *host, int port,
                  const char *path);

/* Check a complete response head (up to and including the blank line):
 * status 101 and the Sec-WebSocket-Accept that matches our key.
 * Returns 0 when valid, the HTTP status (or -1 when unparsable) otherwise. */
int lg_ws_check_response(const char *head, size_t len);

/* Find the end of an HTTP head in buf; returns the head length including
 * "\r\n\r\n", or 0 when incomplete. */
size_t lg_ws_head_len(const uint8_t *buf, size_t len);

/* Encode one masked client frame (FIN set) into out. Returns the frame
 * length, or 0 when it does not fit in cap. */
size_t lg_ws_encode(uint8_t *out, size_t cap, int opcode, const void *payload,
                    size_t len, uint32_t mask);

/* Parse one server frame at buf. Returns the number of bytes it occupies
 * (> 0, and fills *f), 0 when more bytes are needed, or -1 on a protocol
 * error (masked server frame, reserved bits, frame larger than
 * LG_WS_MAX_FRAME). */
long lg_ws_parse(const uint8_t *buf, size_t len, lg_ws_frame *f);

#endif
