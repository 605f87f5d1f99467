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

#endif
