/* The JSON documents of docs/api.md (message, conversation, user, error), built with jansson. */
#ifndef PARLOR_CHAT_JSON_H
#define PARLOR_CHAT_JSON_H

#include <jansson.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/store.h"

/* v in decimal at the end of out[0..24): returns where the digits start (no NUL). */
char *chat_i64_text(int64_t v, char out[24]);
/* "2026-11-24T05:00:00.000Z", as Date.prototype.toJSON writes it; out holds 64 bytes. */
void chat_iso_time(int64_t ms, char out[64]);
json_t *chat_message_json(const store_message_t *m);
/* The same document appended to b as compact JSON text (exactly what jansson writes for
 * chat_message_json, without building objects): the send path encodes it once. */
int chat_message_text(const store_message_t *m, buf_t *b);
json_t *chat_conversation_json(const store_conversation_t *c);
json_t *chat_user_json(const store_user_t *u);
/* {"code":..., "message":...} (the inside of {"error": ...}). */
json_t *chat_error_json(const char *code, const char *message);
/* A str_t as a JSON string, or null when absent. */
json_t *chat_str_or_null(str_t s);
/* The send_message payload, read from its text without building a document (the hot path). */
typedef enum { CHAT_ARG_ABSENT, CHAT_ARG_NULL, CHAT_ARG_STRING, CHAT_ARG_OTHER } chat_arg_kind_t;
typedef struct {
    chat_arg_kind_t kind;
    str_t s; /* the decoded text when kind is CHAT_ARG_STRING */
} chat_arg_t;
typedef struct {
    chat_arg_t recipient_id, conversation_id, content, type, file_id, client_msg_id;
    /* context (issue 15): any kind; for CHAT_ARG_OTHER, s is the value's raw JSON text (in
     * the payload, not decoded) */
    chat_arg_t context;
} chat_send_args_t;

/* payload is valid JSON (as the Socket.IO layer hands it over). Fills every field's kind and
 * decodes strings into buf, which payload.len bytes always suffice for. A repeated key counts
 * with its last value, as with JSON.parse. Returns 0, or -1 when the payload is not an object. */
int chat_send_args_parse(str_t payload, chat_send_args_t *a, char *buf, size_t cap);

/* The payload of an event from its argument array text ["name", payload, ...]: the second
 * element, or "null" when there is none. */
str_t chat_event_payload(str_t args);
/* The same without scanning the payload: everything from it to the end of args (its closing
 * ']' included), or "null" when there is none. chat_send_args_parse reads it as the payload
 * (it stops at the object's end), so the send path scans the payload once, not twice. Safe on
 * any input; the same answer as chat_event_payload's for the object when args is valid JSON
 * (sio_packet_decode has checked it). */
str_t chat_event_payload_rest(str_t args);

/* Compact, key order preserved, like JSON.stringify. Caller frees. */
char *chat_dumps(const json_t *j, size_t *len);

#endif
