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
    /* A text message may be edited by its sender this long after it was sent (0: always). */
    int64_t edit_window_ms;
} chat_options_t;

/* A refusal: HTTP status, contract code, message, and for RATE_LIMITED the wait. */
typedef struct {
    int status;
    const char *code;
    const char *message;
    uint32_t retry_after_ms;
} chat_err_t;

/* The messages of refusals that carry a finer `reason` beside their code (issue 16): a
 * refusal whose message is one of these (the same pointer) gets the reason added when it is
 * written out (chat_err_reason). Kept out of chat_err_t so its initializers stay as they are. */
extern const char chat_msg_blocked[];             /* FORBIDDEN, reason BLOCKED */
extern const char chat_msg_block_limit[];         /* CONFLICT, reason BLOCK_LIMIT */
const char *chat_err_reason(const chat_err_t *e); /* NULL when none */

chat_t *chat_new(uv_loop_t *loop, sio_server_t *sio, store_t *store, const auth_jwt_t *jwt,
                 const chat_options_t *opts);
/* The first step of a stop, before the sockets go: new send_message requests are refused
 * (retryable: the client sends again after reconnecting elsewhere); returns how many sends are
 * still in flight, so the caller can wait until their acks (and, in a cluster, their acked
 * positions) have gone out before it closes the sessions. */
size_t chat_drain(chat_t *c);
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
/* Verifies a server credential (scope "server", issue 15): AUTH_OK, AUTH_ERR_SCOPE for a
 * user's token, or another AUTH_ERR_*. out->id is the token's sub (for logs). */
int chat_authenticate_server(chat_t *c, str_t token, chat_user_t *out);
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
/* Whether the user has a connected socket on this node now (the grace period after the last
 * one left does not count). Webhooks' message.unread asks it (src/webhook/). */
bool chat_user_connected(const chat_t *c, str_t user);

/* ---- What REST and sockets both ask (docs/api.md); api.c only parses and answers ---- */

/* A store status as a refusal: HTTP status, code and message. In a conversation context a
 * conversation the caller is not a member of is reported exactly like one that does not
 * exist (404), so ids cannot be probed. STORE_E_UNAVAILABLE (the database cannot be
 * reached) is 503 STORE_UNAVAILABLE with retry_after_ms CHAT_STORE_RETRY_MS. */
#define CHAT_STORE_RETRY_MS 1000
void chat_store_err(int store_status, chat_err_t *out);
/* The same, without the wait (kept for callers that only need status, code and message). */
int chat_store_error(int store_status, const char **code, const char **message);

/* The answer of a request: err NULL on success, then status is its HTTP status and body its
 * JSON text (borrowed for the call). May be called before the function returns. */
typedef void (*chat_answer_fn)(void *ud, const chat_err_t *err, int status, str_t body);

/* mark_read: moves user's read watermark in the message's conversation (conv_or_null, when
 * given, must be it) up to message, tells every member (messages_read) when it moved, and
 * answers {"ok":true,"conversationId","seq","unreadCount"}. Ids are 24-hex, NUL-terminated. */
void chat_mark_read(chat_t *c, const char *user, const char *conv_or_null, const char *message,
                    chat_answer_fn done, void *ud);
/* edit_message / PATCH /api/chat/messages/:id (remove false: content is the new text, a JSON
 * value, borrowed) and delete_message / DELETE (remove true) by user, the message's sender:
 * answers {"ok":true,"message":<the message now>} and tells every socket of every member
 * (message_updated <message> / message_deleted {conversationId, messageId, seq}, each with its
 * recovery offset). message is a 24-hex id, NUL-terminated. May answer before returning. */
void chat_message_change(chat_t *c, const char *user, const char *message, bool remove,
                         json_t *content, chat_answer_fn done, void *ud);
/* A page of a conversation's history, newest first page when before_seq is 0 (served from the
 * recent-history cache when there): {"messages":[...],"nextCursor":...}. */
void chat_history(chat_t *c, const char *user, const char *conv, int64_t before_seq, size_t limit,
                  chat_answer_fn done, void *ud);
/* The user's conversations, newest first: {"conversations":[...],"nextCursor":...}. cursor
 * may be STR_NULL. */
void chat_conversations(chat_t *c, const char *user, str_t cursor, size_t limit,
                        chat_answer_fn done, void *ud);
/* One conversation of user's (conv: a valid id), as in the list: 200 and its document, 404
 * when it does not exist or user is not a member (the two are not told apart). */
void chat_conversation_get(chat_t *c, const char *user, const char *conv, chat_answer_fn done,
                           void *ud);
/* A group of user and the participants (validated ids; the strings are copied): 201 and the
 * conversation document. */
void chat_group_create(chat_t *c, const char *user, const str_t *participants, size_t n,
                       str_t title, chat_answer_fn done, void *ud);
/* Users whose username starts with prefix, the caller left out: {"users":[...]}. */
void chat_users_search(chat_t *c, const char *user, str_t prefix, size_t limit, chat_answer_fn done,
                       void *ud);
/* Of the ids (validated), the caller and those who share a conversation with the caller:
 * {"users":[...]}. */
void chat_users_get(chat_t *c, const char *user, const char *const *ids, size_t n,
                    chat_answer_fn done, void *ud);

/* Blocks (chat_blocks.c): user blocks (on) or unblocks other (a valid user id, not user):
 * {"userId","blocked","changed","blockedAt"?}; 409 CONFLICT (reason BLOCK_LIMIT) past
 * STORE_BLOCKS_MAX. */
void chat_block_set(chat_t *c, const char *user, const char *other, bool on, chat_answer_fn done,
                    void *ud);
/* The users user blocks, by id, after `after` (NULL or "": from the start):
 * {"blocks":[{"userId","blockedAt"}],"nextCursor"}. */
void chat_blocks_list(chat_t *c, const char *user, const char *after, size_t limit,
                      chat_answer_fn done, void *ud);

/* The caller's unread messages over all its conversations: {"total","conversations"}
 * (conversations: how many have unread messages). */
void chat_unread(chat_t *c, const char *user, chat_answer_fn done, void *ud);
/* Store reads taken so far to keep the unread_total events (/metrics). */
uint64_t chat_unread_reads(const chat_t *c);

/* Full-text search over the user's conversations (or one, conv_or_null: 24-hex), newest
 * first: {"results":[{"conversationId","message","snippet"}],"nextCursor"}. before_pos 0: the
 * newest; else a nextCursor. */
void chat_search(chat_t *c, const char *user, str_t q, const char *conv_or_null, size_t limit,
                 int64_t before_pos, chat_answer_fn done, void *ud);

/* ---- The platform (issue 15): contexts and the server API (chat_platform.c) ---- */

/* Why v (the "context" of a send or a request; NULL or JSON null: none) is not a context
 * {type, id, title?} (type and id 1-64 of [A-Za-z0-9_.:-], title at most 200 characters, no
 * control characters, no other keys), or NULL and out filled (strings borrowed from v; all
 * absent for none). */
const char *chat_context_problem(chat_t *c, json_t *v, store_context_t *out);
/* Why content cannot be a text message's (NULL: it can), as send_message decides. */
const char *chat_content_check(chat_t *c, str_t content);
/* The direct conversation of user and other about ctx (NULL or absent: their plain thread),
 * found or created: 200 or 201 and the conversation document (for user). No block check (the
 * server API's). */
void chat_direct_open(chat_t *c, const char *user, const char *other, const store_context_t *ctx,
                      chat_answer_fn done, void *ud);
/* The same for a user's own request (POST /api/chat/conversations): refused with FORBIDDEN
 * (reason BLOCKED) when one of the two blocked the other. */
void chat_direct_open_as_user(chat_t *c, const char *user, const char *other,
                              const store_context_t *ctx, chat_answer_fn done, void *ud);
/* chat_group_create with a context (ctx NULL: none). */
void chat_group_create_about(chat_t *c, const char *user, const str_t *participants, size_t n,
                             str_t title, const store_context_t *ctx, chat_answer_fn done,
                             void *ud);
/* chat_conversations of the conversations about one context (ctx_type and ctx_id valid parts;
 * both absent: all). */
void chat_conversations_about(chat_t *c, const char *user, str_t cursor, size_t limit,
                              str_t ctx_type, str_t ctx_id, chat_answer_fn done, void *ud);
/* A page of any conversation's history (no membership needed: the server API). */
void chat_history_any(chat_t *c, const char *conv, int64_t before_seq, size_t limit,
                      chat_answer_fn done, void *ud);
/* A system notice into conv (24-hex): stored (sender "system", type "system" in its document),
 * delivered to every member's sockets as receive_message, and answered through done like a
 * send (duplicate for a repeated clientMsgId, which is not delivered again). content must
 * have passed chat_content_problem's checks. */
void chat_system_send(chat_t *c, const char *conv, str_t content, str_t client_msg_id,
                      chat_send_done done, void *ud);
/* Adds (add) or removes user as a member of the group conv: {"conversation","changed"}; when
 * it changed, conversation_updated <conversation> goes to every member and to user. */
void chat_members_change(chat_t *c, const char *conv, const char *user, bool add,
                         chat_answer_fn done, void *ud);
/* Everything stored about user (the server API): {user, conversations, files, blocks,
 * listsTruncated} on the first page (after_pos 0), and on every page {messages (those it
 * sent, by position), nextCursor}. */
void chat_user_export(chat_t *c, const char *user, int64_t after_pos, size_t limit,
                      chat_answer_fn done, void *ud);
/* Erases user, irreversibly (store_user_erase_t): {userId, erased, messagesDeleted,
 * conversationsLeft, filesDeleted}; the files' bytes are removed from disk. */
void chat_user_erase(chat_t *c, const char *user, chat_answer_fn done, void *ud);
/* delete_message by a server credential (issue 16): any message, as the sender's delete. */
void chat_message_delete_server(chat_t *c, const char *message, chat_answer_fn done, void *ud);

/* ---- The delivery seam (chat_deliver.c): every event the chat layer sends to users ---- */

typedef enum {
    CHAT_TO_USERS, /* every socket of each of users[0..nusers) */
    CHAT_TO_CONV   /* every socket of every member of conv; users when its members cannot be
                      learnt (not cached, and the store cannot tell) */
} chat_audience_t;

typedef struct {
    chat_audience_t to;
    const char *conv;      /* CHAT_TO_CONV: a 24-hex id, NUL-terminated */
    const str_t *users;    /* user ids */
    size_t nusers;         /* as CHAT_TO_CONV's fallback: at most STORE_GROUP_MAX */
    const char *skip_user; /* a user not to tell (typing: the typist), or NULL */
    uint64_t except;       /* the id of a socket not to tell (the sender's), 0: none. Socket
                              ids are 64 random bits, unique across nodes; on a wire they are
                              16 hex digits (chat_sid_text). Never a socket pointer. */
    const char *event;     /* "receive_message", "messages_read", "typing", "user_status" */
    const str_t *args;     /* the arguments after the event name as JSON text, in pieces */
    size_t nargs;          /* (at most CHAT_DELIVERY_ARGS) that are concatenated */
    int64_t pos;           /* receive_message: the message's commit position; else 0 */
    /* The chain (docs/cluster.md "The offset rule"): for each of prev_users, the position of
       that user's previous message (the newest of theirs below pos), 0: unknown. A short list
       (a direct message's two members, or the one user of an envelope); none: all unknown. */
    const str_t *prev_users;
    const int64_t *prevs;
    size_t nprevs;
    /* receive_message: its sender when the maker knows it (the send path), so that deciding
       whose unread total moves does not search the document; NULL: searched. Not carried
       across nodes. */
    const char *sender;
} chat_delivery_t;
#define CHAT_DELIVERY_ARGS 4

/* A socket id as text (16 hex digits: how a delivery's except crosses a wire), and back (0:
 * not an id). */
#define CHAT_SID_LEN 16
void chat_sid_text(uint64_t sid, char out[CHAT_SID_LEN + 1]);
uint64_t chat_sid_parse(const char *text);

/* Called by chat_deliver after the local delivery, with the same delivery (valid for the
 * call only) but its audience resolved: to is CHAT_TO_USERS, users the conversation's members
 * (skip_user still to be left out). The cluster forwards it to the other nodes, which run
 * chat_deliver_local. Setting it also makes receive_message deliveries ordered by position
 * per socket (chat_recovery.c, docs/cluster.md "The offset rule"). */
typedef void (*chat_publish_fn)(void *ud, const chat_delivery_t *d);
/* d's prev for user (the chain), 0: unknown. */
int64_t chat_delivery_prev(const chat_delivery_t *d, str_t user);
void chat_set_publish(chat_t *c, chat_publish_fn fn, void *ud);
/* Called when a user gets its first socket on this process (on true) and when its last one
 * leaves (false): the cluster subscribes to the user's channel meanwhile. */
typedef void (*chat_interest_fn)(void *ud, const char *user, bool on);
void chat_set_interest(chat_t *c, chat_interest_fn fn, void *ud);
/* Cluster: a session's acknowledged positions, shared between nodes, so that a session
 * recovered on another node (its node died) is not replayed the messages it sent itself.
 * push: after each ack, (key, pos). fetch: once, when a recovery starts on a node that has
 * none of the session's positions; returns 0 and calls done(arg, positions, n) exactly once
 * later (n = 0 when nothing could be read), or -1 (done never runs: recover without them). */
typedef void (*chat_acked_done_fn)(void *arg, const int64_t *pos, size_t n);
typedef struct {
    void (*push)(void *ud, const char *key, int64_t pos);
    int (*fetch)(void *ud, const char *key, chat_acked_done_fn done, void *arg);
    void *ud;
} chat_acked_hooks_t;
/* NULL: none (one node). */
void chat_set_acked_hooks(chat_t *c, const chat_acked_hooks_t *h);
/* Cluster presence (chat_presence.c, docs/cluster.md "Presence"): with hooks set, a user's
 * first socket on this node (on true, sid: that socket) and its last one leaving (on false)
 * are reported to the cluster, which decides across nodes and calls chat_presence_announce
 * once per transition. query answers get_status: for each of users, state 1 online, 0
 * offline, -1 unknown (the store's lastSeen is used), and since (ms, 0: unknown); it returns
 * -1 when it cannot ask (then done never runs and this node's own knowledge answers), and
 * calls done with state NULL when the question was lost (same). */
typedef void (*chat_status_done_fn)(void *arg, const int8_t *state, const int64_t *since);
typedef struct {
    void (*local)(void *ud, const char *user, bool on, uint64_t sid);
    int (*query)(void *ud, const str_t *users, size_t n, chat_status_done_fn done, void *arg);
} chat_presence_hooks_t;
void chat_set_presence(chat_t *c, const chat_presence_hooks_t *h, void *ud);
/* Which of users (at most STORE_IDS_MAX) are online on any node of the cluster, as get_status
 * answers it (the grace period counts as online): done as for query. -1 without a cluster
 * (chat_user_connected knows then) or when it cannot ask: done never runs. */
int chat_users_online_query(chat_t *c, const str_t *users, size_t n, chat_status_done_fn done,
                            void *arg);
/* The cluster decided that user came online (at, except: the arriving socket's sid) or went
 * offline (at: when; lastSeen is recorded in the store): user_status to its audience. */
void chat_presence_announce(chat_t *c, const char *user, bool online, int64_t at_ms,
                            uint64_t except);
uint32_t chat_presence_grace_ms(const chat_t *c);
/* Calls fn for every user with a socket on this node (the cluster registers them again). */
void chat_presence_each(chat_t *c, void (*fn)(void *arg, const char *user), void *arg);
/* Cluster rate limits (chat_budget.c, docs/cluster.md "Rate limits"): taken(ud, user) after
 * every message (send, edit, delete) this node admitted for user; the cluster tells back, by
 * chat_limit_drain, how many the user's other nodes admitted meanwhile. */
typedef void (*chat_limit_fn)(void *ud, const char *user);
void chat_set_limit(chat_t *c, chat_limit_fn taken, void *ud);
void chat_limit_drain(chat_t *c, const char *user, double n);
/* Cluster: an event from another node (before chat_deliver_local) keeps this node's caches
 * true: a receive_message moves its conversation's last seq, a messages_read drops the
 * reader's remembered watermark. chat_cache_forget: the bus was down, anything may have been
 * missed: every remembered watermark goes. */
void chat_cache_remote(chat_t *c, const char *event, str_t args);
void chat_cache_forget(chat_t *c);
/* Every live socket catches up from the store from the last message it was given (the
 * cluster's bus was down: deliveries may have been missed). */
void chat_catch_up(chat_t *c);
/* Delivers to the sockets of this process, then publishes. */
void chat_deliver(chat_t *c, const chat_delivery_t *d);
/* Only the local half: for a delivery that came from another node. */
void chat_deliver_local(chat_t *c, const chat_delivery_t *d);

#endif
