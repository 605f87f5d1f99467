/* RFC 6455 server-side WebSocket codec: handshake key, frame encoding, client frame parsing. */
#ifndef PARLOR_WS_WS_CODEC_H
#define PARLOR_WS_WS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

enum {
    WS_OP_CONT = 0,
    WS_OP_TEXT = 1,
    WS_OP_BINARY = 2,
    WS_OP_CLOSE = 8,
    WS_OP_PING = 9,
    WS_OP_PONG = 10
};
enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005,
    WS_CLOSE_ABNORMAL = 1006,
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011
};

/* Largest header a client frame can have: 2 + 8 (64-bit length) + 4 (mask key). */
#define WS_MAX_CLIENT_HEADER 14
/* Largest control frame payload (RFC 6455 5.5) and a whole server close frame. */
#define WS_MAX_CONTROL_PAYLOAD 125
#define WS_MAX_CLOSE_FRAME     127

/* Handshake: Sec-WebSocket-Accept = base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")),
 * via OpenSSL libcrypto. out gets 28 chars + NUL. */
void ws_accept_key(str_t client_key, char out[29]);
/* True when key is 24 chars of canonical base64 decoding to exactly 16 bytes (22 alphabet chars,
 * the last carrying zero padding bits, then "=="). */
bool ws_key_valid(str_t key);

/* Server frames are never masked, so one encoded frame can be written to many connections.
 * Writes the 2/4/10-byte header for a frame carrying payload_len bytes; returns its length. */
size_t ws_frame_header(uint8_t out[10], bool fin, int opcode, uint64_t payload_len);
/* Builds a complete close frame into out[0..127); returns its length. code 0 gives an empty
 * payload (reason ignored); otherwise the reason is truncated to 123 bytes, backing off to a
 * UTF-8 character boundary so a valid reason stays valid. */
size_t ws_close_frame(uint8_t out[127], int code, str_t reason);

/* Strict incremental UTF-8 validation (no overlongs, no surrogates, max U+10FFFF), so a text
 * message split over fragments is rejected as soon as a bad byte arrives. */
typedef struct {
    uint32_t state; /* 0: between characters; else pending continuation bytes or rejected */
} ws_utf8_t;
void ws_utf8_init(ws_utf8_t *u);
/* false: invalid so far (sticky: every later feed also returns false). */
bool ws_utf8_feed(ws_utf8_t *u, const uint8_t *p, size_t n);
/* true when valid and not in the middle of a character. */
bool ws_utf8_complete(const ws_utf8_t *u);
bool ws_utf8_valid(const uint8_t *p, size_t n);

/* Each callback returns 0 to go on, non-zero to stop parsing: ws_parser_feed then returns the
 * bytes consumed so far, including the frame just delivered, and may be called again later. A NULL
 * callback ignores that kind of frame. Data pointers are valid only during the call; callbacks
 * may modify the bytes but must not call ws_parser_feed on the same parser. */
typedef struct {
    int (*on_message)(void *ud, int opcode /* TEXT or BINARY */, uint8_t *data, size_t len);
    int (*on_ping)(void *ud, uint8_t *data, size_t len);
    int (*on_pong)(void *ud, uint8_t *data, size_t len);
    /* code is 1005 when the frame had no payload; the reason is already checked as UTF-8. */
    int (*on_close)(void *ud, int code, const uint8_t *reason, size_t reason_len);
} ws_parser_callbacks_t;

/* A fragmented message in progress (ws_codec.c); malloc'd with its bytes after it. */
typedef struct ws_frag ws_frag_t;

/* 16 bytes: an idle connection keeps one per WebSocket, so the state of a fragmented message
 * (its length, room, opcode and UTF-8 check) lives in the fragment's own allocation, made when
 * such a message starts and freed when it ends. */
typedef struct {
    size_t max_message; /* limit on one frame and on a whole (reassembled) data message */
    ws_frag_t *frag;    /* while a fragmented message is in progress, else NULL */
} ws_parser_t;

/* max_message: largest data message accepted (SIZE_MAX for no limit); control frames are bound
 * by the protocol's 125 bytes instead. */
void ws_parser_init(ws_parser_t *p, size_t max_message);
/* Frees the fragment buffer; safe to call twice, and from a callback. */
void ws_parser_free(ws_parser_t *p);
/* Bytes of message room the parser holds now, besides its fragment's small header (0 whenever
 * no fragmented message is in progress). */
size_t ws_parser_buffered(const ws_parser_t *p);

/* Parses as many COMPLETE frames as buf[0..len) holds, unmasking payloads in place, and calls the
 * callbacks. Returns the bytes consumed (the caller keeps the unconsumed tail, an incomplete frame,
 * and calls again once more bytes arrived), or a negative close code (-1002, -1007, -1009, or
 * -1011 when memory ran out) when the frame cannot be accepted: the caller then sends a close
 * with that code and drops the connection; the parser is not fed again. Errors visible in a
 * header are reported as soon as those header bytes arrive, before the payload. A message that
 * is one unfragmented frame is delivered pointing into buf (zero copy); fragments are gathered in
 * the parser's own buffer, freed as soon as the message completes. A close frame does not stop
 * parsing by itself: on_close returns non-zero for that. */
int64_t ws_parser_feed(ws_parser_t *p, const ws_parser_callbacks_t *cb, void *ud, uint8_t *buf,
                       size_t len);

/* Bytes needed to hold the frame starting at buf (header + payload) once its length field has
 * arrived, 0 while it has not, or a negative close code when the header is already invalid
 * (stateless: checks that need the message in progress are left to ws_parser_feed). */
int64_t ws_frame_size(const uint8_t *buf, size_t len, size_t max_message);

#endif
