/* The wire form of one delivery on the cluster bus (docs/cluster.md, "The envelope").
 *
 * A delivery (chat_delivery_t) is published once per user of its audience, on that user's
 * channel, so an envelope names exactly one user; the receiving node delivers it to that
 * user's sockets on it, except the socket named by `except`. Binary, big-endian, 45 bytes of
 * header (version 2; version 1, without prev, is 37 bytes and still decodes with prev 0):
 *
 *   0      'P'                 magic
 *   1      2                   version
 *   2      event length        1..CLUSTER_EVENT_MAX
 *   3      user length         1..STORE_USER_ID_MAX
 *   4      reserved            0
 *   5..12  origin node id      u64, never 0
 *   13..20 origin sequence     u64, per origin node, from 1 (diagnostics, duplicate check)
 *   21..28 pos                 i64 >= 0 (receive_message's commit position; else 0)
 *   29..36 except              u64 socket id (0: none)
 *   37..44 prev                i64 >= 0: the position of the user's previous message
 *                              (docs/cluster.md "The chain"); 0: unknown
 *   45..   event, user, args   args: the event's arguments as JSON text, comma-separated
 *                              values (what follows the event name in ["event",...])
 *
 * The decoder trusts nothing (Redis is shared infrastructure, and a bug or another program on
 * the same channels must not put a malformed frame on a client's socket): every length is
 * bounded, the event and user are checked against their alphabets and the arguments must be
 * one or more valid JSON values separated by commas. A refused envelope is dropped and counted
 * by the caller. */
#ifndef PARLOR_CLUSTER_CODEC_H
#define PARLOR_CLUSTER_CODEC_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/str.h"

#define CLUSTER_ENVELOPE_HEAD    45
#define CLUSTER_ENVELOPE_HEAD_V1 37
#define CLUSTER_EVENT_MAX        32
#define CLUSTER_ARGS_MAX         (4u << 20) /* a message document is at most ~1 MB (max-payload) */

typedef struct {
    uint64_t node, seq, except;
    int64_t pos;
    int64_t prev; /* 0: unknown */
    char event[CLUSTER_EVENT_MAX + 1];
    str_t user; /* borrows the input */
    str_t args; /* borrows the input */
} cluster_envelope_t;

/* Appends the envelope to out; args in nargs pieces that are concatenated. Returns 0, or -1
 * when a field is out of bounds (nothing appended) or out of memory. */
int cluster_codec_encode(buf_t *out, const cluster_envelope_t *e, const str_t *args, size_t nargs);
/* Decodes data[0..len); 0, or -1 when malformed (e is then undefined). */
int cluster_codec_decode(const char *data, size_t len, cluster_envelope_t *e);
/* The checks the decoder applies, for the encoder's caller too. */
bool cluster_codec_event_ok(const char *p, size_t n);
bool cluster_codec_user_ok(const char *p, size_t n);
bool cluster_codec_args_ok(const char *p, size_t n);

#endif
