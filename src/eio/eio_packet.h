/* Engine.IO v4 packet codec: text packets, polling payloads (0x1e-separated, 'b' + base64). */
#ifndef PARLOR_EIO_PACKET_H
#define PARLOR_EIO_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { EIO_OPEN = 0, EIO_CLOSE, EIO_PING, EIO_PONG, EIO_MESSAGE, EIO_UPGRADE, EIO_NOOP };

/* Separates packets in a polling payload (ASCII "record separator"). */
enum { EIO_RECORD_SEPARATOR = 0x1e };

/* A decoded packet; data borrows the caller's buffer. binary is set only for MESSAGE packets whose
 * data is raw bytes ('b' packets of a polling payload, or binary WebSocket frames). */
typedef struct {
    int type;
    bool binary;
    const uint8_t *data;
    size_t len;
} eio_packet_t;

/* A text packet (WebSocket text frame, or one element of a polling payload): first byte '0'..'6'
 * is the type, the rest is the data. Returns 0, or -1 when empty or the type is unknown. */
int eio_packet_decode_text(const char *buf, size_t len, eio_packet_t *out);

/* Called for each packet of a payload; a non-zero return stops the walk and is returned. */
typedef int (*eio_payload_cb)(void *ud, const eio_packet_t *p);

/* Decodes a polling POST body: packets separated by 0x1e; a packet "b<base64>" is a binary
 * MESSAGE whose bytes are decoded in place in buf (so a 'b' packet can only be a MESSAGE).
 * The whole body is validated before the first callback, so a malformed body (empty body, empty
 * packet, such as one from a leading, trailing or doubled 0x1e, unknown type, bad base64) returns
 * -1 without any packet delivered and without buf being modified. Otherwise calls cb for each
 * packet in order and returns 0, or the first non-zero value cb returned. */
int eio_payload_decode(char *buf, size_t len, eio_payload_cb cb, void *ud);

/* One packet as it goes into a polling response: text "<type digit><data>", binary (only MESSAGE
 * can be) "b<base64 of data>". The caller joins packets with EIO_RECORD_SEPARATOR.
 * encode writes exactly encoded_len bytes (no NUL) and returns that count. */
size_t eio_packet_encoded_len_polling(const eio_packet_t *p);
size_t eio_packet_encode_polling(const eio_packet_t *p, char *out);

/* ---- Engine.IO v3 (socket.io-client 2.x; served with --allow-eio3) ----
 * A v3 polling payload is a run of "<length>:<packet>", the length in decimal counting the
 * packet's UTF-16 code units (JavaScript string length), with no separator; a binary MESSAGE
 * is "b4<base64>". Over WebSocket a v3 binary frame starts with the type byte (4). */

/* The UTF-16 length of UTF-8 text (no validation: our own output). */
size_t eio3_utf16_len(const char *s, size_t n);

/* Decodes a v3 polling POST body (the string form; the XHR2 binary form is not accepted).
 * As eio_payload_decode: the whole body is validated first (lengths, strict UTF-8, known
 * types, base64; an empty body or empty packet is malformed) and -1 returned without any
 * callback; 'b4' packets are decoded in place. Otherwise cb for each packet in order; returns
 * 0 or cb's first non-zero value. */
int eio3_payload_decode(char *buf, size_t len, eio_payload_cb cb, void *ud);

/* Decodes a v3 polling POST body in the binary (XHR2, application/octet-stream) form: each
 * packet is a kind byte (0: text, 1: binary), its length in bytes as digits of value 0-9 (at
 * most 10), 0xff, then the packet: text "<type><data>" in UTF-8, or binary "<type byte 4>
 * <bytes>". Validated whole first (strict UTF-8, known types, only messages binary), then as
 * eio3_payload_decode; nothing is modified. */
int eio3_payload_decode_binary(const uint8_t *buf, size_t len, eio_payload_cb cb, void *ud);

/* One packet with its "<length>:" prefix as it goes into a v3 polling response. */
size_t eio3_packet_encoded_len_polling(const eio_packet_t *p);
size_t eio3_packet_encode_polling(const eio_packet_t *p, char *out);

#endif
