/* The chat domain of docs/api.md on Socket.IO: authentication of sockets, send_message with
 * its validation, durable-before-visible delivery to every member's sockets, mark_read, and the
 * membership cache that keeps the store off the hot path. */
#ifndef PARLOR_CHAT_H
#define PARLOR_CHAT_H

#include <jansson.h>

#include "auth/auth_jwt.h"
#include "sio/sio_server.h"
#include "store/store.h"

typedef struct chat chat_t;

typedef struct {
    char id[STORE_USER_ID_MAX + 1];
    char name[129];
    char role[33];
} chat_user_t;

typedef struct {
    size_t max_message_length; /* in characters (code points) */
    /* Limits; a rate or maximum of 0 disables that limit. */
    double rate_messages_per_s, rate_messages_burst; /* per user, socket and REST together */
    double rate_rest_per_s, rate_rest_burst;         /* REST requests per user */
    double rate_connections_per_ip;                  /* new Engine.IO sessions per IP per window */
    double rate_connections_window_s;
    uint32_t max_connections_per_ip;   /* concurrent Engine.IO sessions */
    uint32_t max_connections_per_user; /* concurrent authenticated sockets */
    /* Live signals. */
    uint32_t presence_grace_ms; /* offline only after the last socket is gone this long */
    uint32_t typing_throttle_ms;
    uint32_t typing_timeout_ms;
    /* Per-socket budget of client events of any name (rate 0: none), and the refusals in a
     * row after which the socket is disconnected (0: never). */
    double rate_events_per_s, rate_events_burst;
    uint32_t events_flood_disconnect;
    /* Connection state recovery: a session is recovered only when at most this many messages
     * were committed (server-wide) since its offset (0: never); replays running at once. */
    uint64_t recovery_max_messages;
    uint32_t recovery_max_concurrent;
} chat_options_t;

/* A refusal: HTTP status, contract code, message, and for RATE_LIMITED the wait. */
typedef struct {
    int status;
    const char *code;
    const char *message;
    uint32_t retry_after_ms;
} chat_err_t;

chat_t *chat_new(uv_loop_t *loop, sio_server_t *sio, store_t *store, const auth_jwt_t *jwt,
                 const chat_options_t *opts);
/* At shutdown, after the sockets are gone and before the store closes: records lastSeen of
 * everyone still present. */
void chat_shutdown(chat_t *c);
/* Closes the timers (at shutdown); chat_free once the loop has ended. */
void chat_close(chat_t *c);
void chat_free(chat_t *c);
store_t *chat_store(chat_t *c);
const auth_jwt_t *chat_jwt(chat_t *c);

/* Verifies a token; returns AUTH_OK or an AUTH_ERR_* (see auth_jwt.h). */
int chat_authenticate(chat_t *c, str_t token, chat_user_t *out);
/* Records (id, name, role) in the store the first time they are seen in this process. */
void chat_record_user(chat_t *c, const chat_user_t *u);

/* Result of a send: err NULL on success (then message is the stored document, borrowed, and
 * duplicate tells whether it was an idempotent repeat; pos is its commit position). */
typedef void (*chat_send_done)(void *ud, const chat_err_t *err, str_t message, bool duplicate,
                               int64_t pos);
/* The send pipeline shared by the socket and REST: validates payload (a JSON object,
 * borrowed), stores the message, then delivers receive_message to every socket of every member
 * (REST: no socket is skipped) and calls done. May call done before returning (refusals). */
void chat_send(chat_t *c, const chat_user_t *user, json_t *payload, chat_send_done done, void *ud);

/* REST rate limit per user: 0, or the ms to wait. */
uint32_t chat_rest_limit(chat_t *c, const char *user);
/* Eio admission control (eio_config_t.admit/release), per-IP limits. */
void *chat_admit(void *chat, net_conn_t *conn, uint32_t *retry_after_s);
void chat_release(void *chat, void *handle);
/* Presence as the given requester may see it: JSON {userId,status,lastSeen} for each id,
 * answered through done(ud, array) once the store told which users share a conversation. */
void chat_statuses(chat_t *c, const char *requester, const char *const *ids, size_t n,
                   void (*done)(void *ud, json_t *statuses), void *ud);
/* Reads the newest message position so recovery offsets can start; call once at start. */
void chat_start(chat_t *c);

/* Recent history: the newest page of a conversation from memory. Writes the answer
 * {messages,nextCursor} to out and returns true when user is a known member and the page is
 * in memory; false means: ask the store (then chat_history_fill with the newest page). */
bool chat_history_page(chat_t *c, const char *conv, const char *user, size_t limit, buf_t *out);
void chat_history_fill(chat_t *c, const char *conv, const store_messages_page_t *p);
void chat_history_drop(chat_t *c, const char *conv);

/* Caches the members of a conversation (from a store answer). */
void chat_cache_members(chat_t *c, const store_conversation_t *conv);
/* Emits ["event", doc] to every socket of user (except `except`). */
void chat_emit_to_user(chat_t *c, const char *user, const sio_socket_t *except, const char *event,
                       json_t *doc);
/* messages_read { conversationId, readerId, seq, messageId, readAt } to every member. */
void chat_publish_read(chat_t *c, const char *reader, const char *message_id,
                       const store_mark_read_t *mr);
/* Status and code of a store error in a conversation context: a conversation the caller is not
 * a member of is reported exactly like one that does not exist (404), so ids cannot be probed. */
int chat_store_error(int store_status, const char **code, const char **message);

#endif
