/* The chat layer's shared insides: the types every chat_*.c file works on (the chat, its
 * sockets, presence and membership cache) and the few functions they call across files.
 * Loop thread only, like everything in src/chat/. Not for use outside src/chat/.
 *
 * The modules (docs/architecture.md, "The chat layer"):
 *   chat.c          lifecycle, the Socket.IO handlers table, authorization and pids, limits,
 *                   recorded users, answers on the asking socket (acks, message_error)
 *   chat_deliver.c  the delivery seam: every event to users goes through chat_deliver
 *   chat_cache.c    membership cache, recent history, store errors
 *   chat_send.c     send_message / POST messages: validation, insert, receive_message
 *   chat_read.c     mark_read / PUT read, messages_read
 *   chat_edit.c     edit_message / delete_message / PATCH, DELETE: message_updated/deleted
 *   chat_typing.c   typing state, throttle and expiry
 *   chat_presence.c presence, grace period, user_status, get_status / GET status
 *   chat_query.c    the reads REST asks for: history, conversation lists, groups, users
 *   chat_budget.c   the per-socket event budget, mark_read answered from memory
 *   chat_recovery.c connection state recovery */
#ifndef PARLOR_CHAT_INT_H
#define PARLOR_CHAT_INT_H

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/chat.h"
#include "chat/limits.h"
#include "core/id.h"
#include "core/strmap.h"
#include "net/timerq.h"

typedef struct chat_sock chat_sock_t;
typedef struct history history_t;
typedef struct chat_replay chat_replay_t;
typedef struct chat_marks chat_marks_t;

/* The members of one conversation, cached. Only groups change membership (the server API,
 * chat_platform.c), which drops the entry (chat_cache_drop). */
typedef struct members_entry {
    char id[ID_SIZE];
    struct members_entry *next;
    uint32_t n;
    char **users;
    history_t *hist;
    int64_t last_seq; /* seq of the last message delivered here since cached (0: none yet) */
} members_entry_t;

typedef struct {
    uint32_t id, value; /* id 0: a free slot; value 0: forgotten */
} recorded_t;

/* A user with sockets here, or in the grace period after the last one left. The id is inline;
 * the user's live sockets hang off it (user-addressed events go through it, no room needed). */
typedef struct presence {
    struct presence *hnext;
    chat_sock_t *live; /* the sockets that receive live events (cs->live_next) */
    tq_entry_t grace;
    int64_t last_seen; /* ms; when the user went offline, or came online */
    uint32_t hash;     /* chat_hash of user, truncated (the tables stay under 2^32 buckets) */
    unsigned sockets;
    uint16_t len; /* of user */
    bool online;  /* as last announced */
    char user[];
} presence_t;
/* Entries whose id has up to this many bytes (any 64-bit number in decimal) come from a pool
 * of 80-byte objects (core/slab.h; chat_presence.c), longer ids from malloc. */
#define PRESENCE_POOL_ID_MAX 20

/* Blocks of one size kept for reuse (at most max of them): a send's context and its reply are
 * taken and given back once per message, in bursts (a batch of commits), where malloc's
 * per-thread cache of 7 a size runs dry and each costs a few hundred instructions. */
typedef struct {
    void *head;
    unsigned n, max;
    size_t size;
} chat_pool_t;

static inline void *chat_pool_get(chat_pool_t *p)
{
    void *b = p->head;
    if (!b) return malloc(p->size);
    memcpy(&p->head, b, sizeof p->head);
    p->n--;
    return b;
}

static inline void chat_pool_put(chat_pool_t *p, void *b)
{
    if (p->n >= p->max) {
        free(b);
        return;
    }
    memcpy(b, &p->head, sizeof p->head);
    p->head = b;
    p->n++;
}

static inline void chat_pool_free(chat_pool_t *p)
{
    while (p->head) free(chat_pool_get(p));
}

struct chat {
    uv_loop_t *loop;
    size_t sends_in_flight; /* sockets' send_message requests not yet answered (chat_drain) */
    bool draining;          /* stopping: new send_message requests are refused */
    sio_server_t *sio;
    sio_nsp_t *nsp;
    store_t *store;
    const auth_jwt_t *jwt;
    chat_options_t opts;
    members_entry_t **buckets;
    size_t nbuckets, nentries;
    size_t nhist; /* conversations with a recent history in memory */
    /* Users already recorded in the store by this process: hash of the id -> hash of name and
     * role, in open addressing (8 bytes a slot, at most 3/4 full; no strings). */
    recorded_t *recorded;
    size_t nrecorded, recorded_cap;
    limiter_t msg_limit, rest_limit, ip_limit, user_conns;
    /* Users with sockets or in their grace period: a chained hash of presence_t. */
    presence_t **pbuckets;
    size_t npbuckets, npresence;
    strmap_t typing;      /* "user\nconversation" -> typing_t */
    strmap_t unread;      /* user -> its unread total's state, while it has sockets (unread.c) */
    strmap_t block_pairs; /* "a|b" -> whether a block is between them, for a while (blocks.c) */
    strmap_t acked;       /* pid -> acked_t: what a socket had acknowledged (recovery skips it) */

    uint64_t unread_reads; /* store reads taken for unread_total (chat_unread_reads) */
    /* chat_send.c: contexts of sends with small inputs, replies, and the buffer a message's
     * document is written into (in use: doc_busy) */
    chat_pool_t send_pool, reply_pool;
    buf_t doc;
    bool doc_busy;
    /* Users whose unread total changed in this loop turn: told once, at its end (unread.c). */
    struct unread_user *unread_tell;
    uv_check_t unread_check;
    timerq_t grace_tq, typing_tq;
    uv_timer_t sweep;    /* drops idle limiter entries */
    int64_t last_pos;    /* newest message position known to the loop (recovery offsets) */
    bool last_pos_known; /* chat_start's answer came: recovery may be granted */
    /* Recovery replays: running ones (at most opts.recovery_max_concurrent), then the FIFO of
     * those waiting for a slot. */
    unsigned replays_running;
    chat_replay_t *replay_wait_head, *replay_wait_tail;
    chat_replay_t *replay_paused; /* waiting for their sockets' readers to catch up */
    uv_timer_t replay_timer;      /* checks the paused ones */
    strmap_t marks;               /* "user\nconversation" -> watermark (chat_budget.c) */
    struct chat_kick *kick;       /* flooding sockets to disconnect (a reference each) */
    uv_timer_t kick_timer;
    chat_publish_fn publish; /* the delivery seam's other half (NULL: one node) */
    void *publish_ud;
    chat_interest_fn interest;      /* a user's first socket came / last one left (cluster) */
    chat_acked_hooks_t acked_hooks; /* acked positions across nodes (cluster; push NULL: none) */
    void *interest_ud;
    chat_limit_fn limit_taken; /* cluster rate limits (NULL: one node) */
    void *limit_ud;
    chat_presence_hooks_t phooks; /* cluster presence (phooks.local NULL: one node) */
    void *phooks_ud;
};

/* The positions of the last messages a socket sent itself (it has them from the ack, so a
 * recovery must not replay them to it). Kept a while after the socket is gone. */
#define ACKED_KEEP      64
#define ACKED_LINGER_MS (10 * 60 * 1000)
typedef struct {
    int64_t pos[ACKED_KEEP];
    unsigned n;          /* positions written so far (ring) */
    uint64_t expires_ms; /* 0 while a socket uses it */
} acked_t;

/* Per connected socket. Requests in flight hold a reference, so a reply can find out that
 * its socket disconnected meanwhile (socket == NULL) instead of touching freed memory. */
struct chat_sock {
    chat_t *chat;
    sio_socket_t *socket;   /* NULL once disconnected */
    presence_t *pres;       /* the user (its id), while socket is set */
    chat_sock_t *live_next; /* in pres->live once live */
    unsigned refs;
    bool live;
    char pid_rnd[9];       /* this session's private id (connection state recovery) is */
    int64_t pid_pos;       /* "<hash of the user>-<pid_pos>-<pid_rnd>", made when needed */
    chat_replay_t *replay; /* while replaying: its receive_message deliveries are held */
    /* The last position its replay sent (live ones up to it are not); between authorization
     * and connection, when recovering is set, the position to replay after instead (a field of
     * its own cost 8 bytes per idle socket). */
    int64_t replayed_to;
    bucket_t events;      /* the event budget (chat_budget.c) */
    uint32_t refused_run; /* events refused in a row */
    bool flooded;         /* to be disconnected; its events are ignored */
    bool recovering;      /* replay after replayed_to on connect (connection state recovery) */
    uint16_t sending;     /* its send_message requests in flight (cluster catch-up: their
                             messages may be read before their ack is recorded) */
    chat_marks_t *marks;  /* the last messages it marked read, with their seq (lazily) */
    /* Its id for deliveries (chat_delivery_t.except): 64 random bits, so unique across nodes
     * too, never 0. A raw pointer could not name it to another node. 8 bytes, not text: the
     * struct stays small (112 bytes in the pool, the idle-socket memory budget), and a
     * delivery compares integers. */
    uint64_t sid;
};

/* A socket to disconnect for flooding (rare: not a field of every socket). */
typedef struct chat_kick {
    chat_sock_t *cs; /* a reference */
    struct chat_kick *next;
} chat_kick_t;

/* The user of a connected socket (valid while cs->socket is set). */
#define CS_UID(cs) ((const char *)(cs)->pres->user)

static inline chat_sock_t *cs_ref(chat_sock_t *cs)
{
    if (cs) cs->refs++;
    return cs;
}

/* Chat sockets live in a pool of their own (core/slab.h; chat.c). */
chat_sock_t *chat_sock_alloc(void);
void chat_sock_free(chat_sock_t *cs);

static inline void cs_unref(chat_sock_t *cs)
{
    if (cs && --cs->refs == 0) {
        free(cs->marks);
        chat_sock_free(cs);
    }
}

/* ---- small helpers ---- */

static inline int64_t chat_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FNV-1a of s[0..n). */
static inline size_t chat_hash(const char *s, size_t n)
{
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* A string that is a 24-hex id. */
static inline bool chat_json_id(json_t *j)
{
    return json_is_string(j) && id_valid(str_make(json_string_value(j), json_string_length(j)));
}

/* ---- chat_cache.c: membership and recent history ---- */

members_entry_t *chat_cache_find(chat_t *c, const char *conv);
void chat_cache_put(chat_t *c, const char *conv, const str_t *users, size_t n);
/* Caches the members of a conversation (from a store answer). */
void chat_cache_members(chat_t *c, const store_conversation_t *conv);
bool chat_cache_has(const members_entry_t *e, const char *user);
void chat_cache_clear(chat_t *c);
void chat_cache_drop(chat_t *c, const char *conv);
/* A conversation_updated delivery from another node (chat_platform.c): the conversation's
 * cached members and history are dropped here too. */
void chat_members_forget(chat_t *c, const chat_delivery_t *d);
/* Recent history: the newest page of a conversation from memory. Writes the answer
 * {messages,nextCursor} to out and returns true when user is a known member and the page is
 * in memory; false means: ask the store (then chat_history_fill with the newest page). */
bool chat_history_page(chat_t *c, const char *conv, const char *user, size_t limit, buf_t *out);
void chat_history_fill(chat_t *c, const char *conv, const store_messages_page_t *p);
void chat_history_drop(chat_t *c, const char *conv);
/* A new message (its document as text) at the end of the conversation's recent history. */
void chat_history_append(chat_t *c, const char *conv, int64_t seq, str_t doc);
/* The same with conv's cache entry at hand (e: chat_cache_find's answer, may be NULL). */
void chat_history_append_to(chat_t *c, members_entry_t *e, int64_t seq, str_t doc);

/* ---- chat.c ---- */

/* From now on user-addressed events reach the socket. */
void chat_sock_go_live(chat_sock_t *cs);
/* Answers on a socket: an error (ack and message_error, which echoes client_msg_id when it is
 * a string; retry_after_ms 0: none), or {ok:true, ...fields} when an ack was asked for. */
void chat_reply_err(chat_sock_t *cs, int64_t ack_id, json_t *client_msg_id, const chat_err_t *e);
void chat_reply_error(chat_sock_t *cs, int64_t ack_id, const char *code, const char *message,
                      uint32_t retry_after_ms);
void chat_reply_ok(chat_sock_t *cs, int64_t ack_id, json_t *fields);
/* Acks with [body] (body: a JSON object's text). */
void chat_reply_body(chat_sock_t *cs, int64_t ack_id, str_t body);

/* ---- chat_send.c ---- */

void chat_on_send_message(chat_sock_t *cs, str_t args, int64_t ack_id);
/* A session's acknowledged positions (see acked_t). */
#define ACKED_KEY_SIZE (STORE_USER_ID_MAX + 32)
const char *chat_acked_key(const chat_sock_t *cs, char out[ACKED_KEY_SIZE]);
acked_t *chat_acked_of(chat_t *c, const char *pid, bool create);
bool chat_acked_has(const acked_t *a, int64_t pos);
/* Drops the positions of sessions gone longer than ACKED_LINGER_MS. */
void chat_acked_sweep(chat_t *c, uint64_t now);

/* Why content (len bytes) cannot be a message's (NULL: it can): NUL or control characters,
 * blank text (need_text), more than max_chars code points. */
const char *chat_content_problem(const char *p, size_t len, size_t max_chars, bool need_text);

/* ---- chat_read.c ---- */

void chat_on_mark_read(chat_sock_t *cs, json_t *payload, int64_t ack_id);

/* ---- chat_blocks.c ---- */

#define STORE_DIRECT_KEY_SIZE_CHAT (2 * STORE_USER_ID_MAX + 2)
/* Whether a and b are in a block (either way): 1 or 0 when known here, else -1 and then(...)
 * runs later, once the store has told (status STORE_OK), or with the store's error. */
int chat_block_between(chat_t *c, const char *a, const char *b,
                       void (*then)(chat_t *c, void *arg, bool blocked, int status), void *arg);
/* Records what a send or another answer taught about the pair. */
void chat_block_learn(chat_t *c, const char *a, const char *b, bool blocked);

/* ---- chat_unread.c ---- */

/* d (a receive_message from someone else, the user's own messages_read, a message_deleted,
 * a conversation_updated) may change the user's unread total: count it, or seed it again
 * from the store, and tell its sockets here with unread_total when it changed. */
void chat_unread_touch(chat_t *c, const chat_delivery_t *d, str_t user);
/* The user's last live socket here went: drop its counter. */
void chat_unread_forget(chat_t *c, str_t user);
/* Deliveries may have been lost (a cluster catch-up): seed every counter again. */
void chat_unread_reseed_all(chat_t *c);
void chat_unread_free(chat_t *c);
void chat_unread_init(chat_t *c);  /* in chat_new */
void chat_unread_close(chat_t *c); /* in chat_close */

/* ---- chat_edit.c ---- */

void chat_on_edit_message(chat_sock_t *cs, json_t *payload, int64_t ack_id);
void chat_on_delete_message(chat_sock_t *cs, json_t *payload, int64_t ack_id);

/* ---- chat_typing.c ---- */

void chat_on_typing(chat_sock_t *cs, json_t *payload, int64_t ack_id);
/* The user stopped typing in conv (it sent a message there). */
void chat_typing_stop(chat_t *c, const char *user, const char *conv);
/* The user's last socket left: whatever it was typing stops. */
void chat_typing_clear_user(chat_t *c, const char *user);
void chat_typing_expired(timerq_t *q, tq_entry_t *e); /* typing_tq's callback */

/* ---- chat_presence.c ---- */

void chat_on_get_status(chat_sock_t *cs, json_t *payload, int64_t ack_id);
presence_t *chat_presence_find(const chat_t *c, str_t user);
/* The user's entry, created (no sockets, offline) when there is none. */
presence_t *chat_presence_get(chat_t *c, const char *user);
/* cs->pres was set when the socket was authorized (chat_presence_get). */
void chat_presence_connect(chat_t *c, chat_sock_t *cs);
void chat_presence_disconnect(chat_t *c, chat_sock_t *cs);
void chat_presence_grace_over(timerq_t *q, tq_entry_t *e); /* grace_tq's callback */
/* At shutdown: lastSeen of everyone present is recorded, the table emptied. */
void chat_presence_flush(chat_t *c);
void chat_presence_free(chat_t *c);

/* ---- chat_budget.c ---- */

/* Spends one event of the socket's budget: true to go on; false when the event was refused
 * (answered RATE_LIMITED, or the socket is being disconnected for flooding). */
bool chat_budget_admit(chat_sock_t *cs, int64_t ack_id);
void chat_budget_kick(uv_timer_t *t); /* the kick_timer's callback */
/* A message (send, edit, deletion) of user against --rate-messages-*: 0, or the ms to wait.
 * In a cluster the admitted ones are counted in Redis too (chat_set_limit). */
uint32_t chat_msg_limit(chat_t *c, const char *user);
/* mark_read of msg (conversation conv_or_null) answered from memory when it cannot move the
 * watermark; false: ask the store. */
#define CHAT_MARKS_KEEP 4
bool chat_mark_read_known(chat_sock_t *cs, const char *msg, const char *conv_or_null,
                          int64_t ack_id);
/* The store's answer to a mark_read of msg by user (through cs, or NULL for REST). */
void chat_mark_read_learn(chat_t *c, chat_sock_t *cs, const char *user, const char *msg,
                          const store_mark_read_t *mr);
void chat_marks_forget(chat_t *c);
/* Forgets user's watermark in conv (it moved on another node). */
void chat_marks_drop(chat_t *c, str_t user, const char *conv);

/* ---- chat_recovery.c ---- */

/* Whether a session whose last event was at `offset` may be recovered (few enough messages
 * since; see --recovery-max-messages). */
bool chat_recovery_admit(chat_t *c, int64_t offset);
/* Replays what a recovered session missed after `after`, then resumes its live stream. The
 * socket is live at once, with its receive_message deliveries held meanwhile. */
void chat_recovery_start(chat_sock_t *cs, int64_t after);
/* A receive_message (commit position pos) for cs: true when it was held or dropped for the
 * replay, false when cs is not replaying (send it). */
bool chat_recovery_hold(chat_sock_t *cs, int64_t pos, const sio_built_t *b);
/* Cluster (c->publish set): a receive_message at pos for cs (b NULL: cs is its sender, which
 * has it from its ack) given only in position order: a duplicate (pos <= the last given) is
 * dropped, the next position is sent, and anything else catches up from the store first
 * (b held meanwhile). */
void chat_recovery_ordered(chat_sock_t *cs, int64_t pos, int64_t prev, const sio_built_t *b);
/* Cluster: a live socket replays from the store what came after the last message it was
 * given (no-op while it replays already). */
void chat_recovery_catch_up(chat_sock_t *cs);
/* The socket is gone (on_disconnect): its replay stops. */
void chat_recovery_cancel(chat_sock_t *cs);
/* The replay timer: init in chat_new, close in chat_close. */
void chat_recovery_init(chat_t *c);
void chat_recovery_close(chat_t *c);

#endif
