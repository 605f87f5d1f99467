/* Socket.IO v5 packet codec: header parsing and validation of what a client sends, header writing,
 * event and binary-placeholder helpers over the raw JSON payload. */
#ifndef PARLOR_SIO_PACKET_H
#define PARLOR_SIO_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

enum {
    SIO_CONNECT = 0,
    SIO_DISCONNECT,
    SIO_EVENT,
    SIO_ACK,
    SIO_CONNECT_ERROR,
    SIO_BINARY_EVENT,
    SIO_BINARY_ACK
};

enum {
    /* socket.io-parser's Decoder default (maxAttachments: 10); a BINARY_* packet carries 1..10. */
    SIO_MAX_ATTACHMENTS = 10,
    /* Longest namespace accepted, '/' included. */
    SIO_NSP_MAX = 128,
    /* Longest header sio_packet_encode_header writes: type, attachments "4294967295-",
     * nsp and ',', ack id up to 2^53-1 (16 digits). */
    SIO_HEADER_MAX = 1 + 10 + 1 + SIO_NSP_MAX + 1 + 16,
};

/* Largest ack id: what a JavaScript number holds exactly (Number.MAX_SAFE_INTEGER). */
#define SIO_ACK_ID_MAX INT64_C(9007199254740991)

typedef struct {
    int type;
    str_t nsp;            /* "/" when absent; borrows the packet buffer otherwise */
    int64_t ack_id;       /* -1 when absent */
    unsigned attachments; /* BINARY_* only, else 0 */
    str_t data;           /* raw JSON text of the payload (no surrounding whitespace); when
                           * absent, length 0 (ptr not NULL); borrows the packet buffer */
} sio_packet_t;

/* Decodes a packet the SERVER received from a client (the Engine.IO MESSAGE data):
 *   <type>[<attachments>-][<nsp>,][<ack id>][<JSON payload>]
 * and rejects what a client must not send. Header rules: type '0'..'6' but not '4'
 * (CONNECT_ERROR only flows server to client); "<n>-" present for and only for BINARY_*, n plain
 * decimal 1..SIO_MAX_ATTACHMENTS; a namespace starts with '/', ends at ',' or at the end of the
 * packet ("0/admin" and "0/admin," are the same), is at most SIO_NSP_MAX printable ASCII
 * characters (0x21..0x7e: clients send URL pathnames); ack id plain decimal (no leading zero) up
 * to SIO_ACK_ID_MAX. Payload rules, after the payload is checked to be valid JSON:
 *   CONNECT        no ack id; payload absent or a JSON object (the auth data)
 *   DISCONNECT     no ack id, no payload
 *   EVENT, BINARY_EVENT  a non-empty array whose first element is a string that is not a name
 *                  Socket.IO reserves (connect, connect_error, disconnect, disconnecting,
 *                  newListener, removeListener); ack id optional
 *   ACK, BINARY_ACK      ack id required; an array (possibly empty)
 *   BINARY_*       placeholders as sio_check_placeholders demands
 * Returns 0 with *out filled, or -1. */
int sio_packet_decode(const char *buf, size_t len, sio_packet_t *out);

/* Writes the header of a packet into out (room for SIO_HEADER_MAX bytes): the type digit,
 * "<attachments>-" for BINARY_*, "<nsp>," unless nsp is "/" (or empty), the ack id when >= 0;
 * the caller appends the JSON payload. Examples: "2", "51-", "0/custom,", "3/admin,12".
 * The ',' after a custom namespace is always written, as the protocol's reference encoder does
 * (CONNECT to /admin is "0/admin,", DISCONNECT "1/admin,"); has_data does not change the output
 * and is kept for callers written against the first version of this API.
 * Returns the length, or 0 (nothing usable written) when type is unknown, nsp is longer than
 * SIO_NSP_MAX or ack_id exceeds SIO_ACK_ID_MAX. */
size_t sio_packet_encode_header(char *out, int type, str_t nsp, unsigned attachments,
                                int64_t ack_id, bool has_data);

/* Splits EVENT data ["name", arg...]: decodes the event name into name_out (NUL-terminated, so
 * name_cap must exceed its length) and sets *rest to the raw text after the name's closing quote:
 * for ["a",1,2] rest is ",1,2]", for ["a"] it is "]", so ["other" + rest re-uses the client's
 * arguments byte for byte. Expects data validated by sio_packet_decode. Returns the name's
 * length, or -1 when data is not an array starting with a string or the name does not fit. */
int sio_event_split(str_t data, char *name_out, size_t name_cap, str_t *rest);

/* Checks the binary placeholders {"_placeholder":true,"num":N} in data: each N in
 * 0..attachments-1 appears exactly once and no other. An object with a "_placeholder" key whose
 * value is true is a placeholder and must have exactly the two keys (either order), N a plain
 * non-negative integer. attachments may be up to 64. Returns 0, or -1 (also for invalid JSON). */
int sio_check_placeholders(str_t data, unsigned attachments);

#endif
