/* The chat layer: socket authentication, send_message, mark_read and live delivery. */
#include "chat/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"
#include "core/id.h"
#include "core/json_scan.h"
#include "core/log.h"
#include "chat/limits.h"
#include "core/randid.h"
#include "core/strmap.h"
#include "http/http_parse.h"
#include <openssl/sha.h>

#define CACHE_MAX_ENTRIES 200000

typedef struct send_ctx send_ctx_t;

/* Recent history of a conversation: its newest messages as JSON text, ascending and
 * contiguous up to the newest, so the newest page of GET /messages needs no store read. */
#define HISTORY_KEEP              50
#define HISTORY_MAX_CONVERSATIONS 2000
struct history {
    char *docs[HISTORY_KEEP]; /* ring: docs[(head + i) % KEEP] is the i-th oldest */
    size_t lens[HISTORY_KEEP];
    int64_t seqs[HISTORY_KEEP];
    unsigned head, n;
    bool has_older; /* messages before the oldest kept exist */
};

typedef struct {
    tq_entry_t expiry;
    chat_t *chat;
    uint64_t last_relay; /* loop ms of the last isTyping:true relayed */
    char user[STORE_USER_ID_MAX + 1];
    char conv[ID_SIZE];
} typing_t;

struct send_ctx {
    store_req_t req;
    chat_t *chat;
    chat_sock_t *origin; /* the sending socket (a reference); NULL for REST */
    chat_user_t user;
    chat_send_args_t in; /* the validated input, its strings copied after the arena */
    chat_send_done done;
    void *ud;
    bool looked_up; /* the conversation's members were fetched first */
    char arena[];   /* the store request's arena, then the input strings */
};

static void typing_stop(chat_t *c, const char *user, const char *conv);

/* ---- small helpers ---- */

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t id_hash(const char *id)
{
    size_t h = 1469598103934665603ull;
    for (int i = 0; i < ID_LEN; i++) h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
    return h;
}

members_entry_t *chat_cache_find(chat_t *c, const char *conv)
{
    members_entry_t *e = c->buckets[id_hash(conv) & (c->nbuckets - 1)];
    for (; e; e = e->next)
        if (memcmp(e->id, conv, ID_LEN) == 0) return e;
    return NULL;
}

static void history_free(chat_t *c, members_entry_t *e)
{
    if (!e->hist) return;
    for (unsigned i = 0; i < e->hist->n; i++)
        free(e->hist->docs[(e->hist->head + i) % HISTORY_KEEP]);
    free(e->hist);
    e->hist = NULL;
    c->nhist--;
}

static void cache_clear(chat_t *c)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        members_entry_t *e = c->buckets[i];
        while (e) {
            members_entry_t *next = e->next;
            history_free(c, e);
            for (uint32_t k = 0; k < e->n; k++) free(e->users[k]);
            free(e->users);
            free(e);
            e = next;
        }
        c->buckets[i] = NULL;
    }
    c->nentries = 0;
    chat_marks_forget(c);
}

static void cache_put(chat_t *c, const char *conv, const str_t *users, size_t n)
{
    if (chat_cache_find(c, conv)) return;
    /* A bound, not an LRU: past it start over; the store answers the misses. */
    if (c->nentries >= CACHE_MAX_ENTRIES) cache_clear(c);
    members_entry_t *e = calloc(1, sizeof *e);
    if (!e || !(e->users = calloc(n ? n : 1, sizeof *e->users))) {
        free(e);
        return;
    }
    memcpy(e->id, conv, ID_SIZE);
    for (size_t i = 0; i < n; i++) {
        e->users[i] = strndup(users[i].ptr, users[i].len);
        if (e->users[i]) e->n++;
    }
    size_t b = id_hash(conv) & (c->nbuckets - 1);
    e->next = c->buckets[b];
    c->buckets[b] = e;
    c->nentries++;
}

void chat_cache_members(chat_t *c, const store_conversation_t *conv)
{
    str_t users[STORE_GROUP_MAX];
    size_t n = 0;
    for (size_t i = 0; i < conv->member_count && n < STORE_GROUP_MAX; i++)
        users[n++] = conv->members[i].user_id;
    cache_put(c, conv->id, users, n);
}

static bool entry_has(const members_entry_t *e, const char *user)
{
    for (uint32_t i = 0; i < e->n; i++)
        if (strcmp(e->users[i], user) == 0) return true;
    return false;
}

/* Appends one message (text) at the new end; a gap in seq means the cache is not the
 * newest contiguous run any more, and it is dropped. */
static void history_append(chat_t *c, const char *conv, int64_t seq, str_t doc)
{
    members_entry_t *e = chat_cache_find(c, conv);
    if (!e || !e->hist) return;
    history_t *h = e->hist;
    if (h->n && h->seqs[(h->head + h->n - 1) % HISTORY_KEEP] + 1 != seq) {
        history_free(c, e);
        return;
    }
    char *copy = malloc(doc.len ? doc.len : 1);
    if (!copy) {
        history_free(c, e);
        return;
    }
    memcpy(copy, doc.ptr, doc.len);
    if (h->n == HISTORY_KEEP) { /* drop the oldest */
        free(h->docs[h->head]);
        h->head = (h->head + 1) % HISTORY_KEEP;
        h->n--;
        h->has_older = true;
    }
    unsigned at = (h->head + h->n) % HISTORY_KEEP;
    h->docs[at] = copy;
    h->lens[at] = doc.len;
    h->seqs[at] = seq;
    h->n++;
}

void chat_history_drop(chat_t *c, const char *conv)
{
    members_entry_t *e = chat_cache_find(c, conv);
    if (e) history_free(c, e);
}

void chat_history_fill(chat_t *c, const char *conv, const store_messages_page_t *p)
{
    members_entry_t *e = chat_cache_find(c, conv);
    if (!e || e->hist || p->count > HISTORY_KEEP || c->nhist >= HISTORY_MAX_CONVERSATIONS) return;
    history_t *h = calloc(1, sizeof *h);
    if (!h) return;
    e->hist = h;
    c->nhist++;
    h->has_older = p->has_more;
    buf_t b;
    buf_init(&b);
    for (size_t i = 0; i < p->count; i++) {
        b.len = 0;
        if (chat_message_text(&p->msgs[i], &b) < 0) {
            history_free(c, e);
            break;
        }
        history_append(c, conv, p->msgs[i].seq, str_make(b.data, b.len));
        if (!e->hist) break;
    }
    buf_free(&b);
}

bool chat_history_page(chat_t *c, const char *conv, const char *user, size_t limit, buf_t *out)
{
    members_entry_t *e = chat_cache_find(c, conv);
    if (!e || !e->hist || !entry_has(e, user)) return false;
    history_t *h = e->hist;
    if (limit > h->n && h->has_older) return false; /* older ones are only in the store */
    size_t k = limit < h->n ? limit : h->n;
    buf_append_str(out, "{\"messages\":[");
    for (size_t i = h->n - k; i < h->n; i++) {
        unsigned at = (h->head + (unsigned)i) % HISTORY_KEEP;
        if (i > h->n - k) buf_append(out, ",", 1);
        buf_append(out, h->docs[at], h->lens[at]);
    }
    bool more = k < h->n || h->has_older;
    if (more && k)
        buf_printf(out, "],\"nextCursor\":\"%lld\"}",
                   (long long)h->seqs[(h->head + (unsigned)(h->n - k)) % HISTORY_KEEP]);
    else
        buf_append_str(out, "],\"nextCursor\":null}");
    return out->data != NULL;
}

int chat_store_error(int st, const char **code, const char **message)
{
    switch (st) {
    case STORE_E_INVALID:
        *code = "BAD_REQUEST";
        *message = "invalid request";
        return 400;
    case STORE_E_NOT_FOUND:
    case STORE_E_FORBIDDEN:
        *code = "NOT_FOUND";
        *message = "no such conversation";
        return 404;
    case STORE_E_CONFLICT:
        *code = "CONFLICT";
        *message = "already exists";
        return 409;
    default:
        *code = "INTERNAL";
        *message = "the store failed; try again";
        return 500;
    }
}

/* ---- presence table ---- */

static size_t str_hash(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static presence_t *presence_find(const chat_t *c, const char *user)
{
    size_t h = str_hash(user);
    for (presence_t *p = c->pbuckets[h & (c->npbuckets - 1)]; p; p = p->hnext)
        if (p->hash == h && strcmp(p->user, user) == 0) return p;
    return NULL;
}

/* The user's entry, created (no sockets, offline) when there is none. */
static presence_t *presence_get(chat_t *c, const char *user)
{
    presence_t *p = presence_find(c, user);
    if (p) return p;
    size_t len = strlen(user);
    p = calloc(1, sizeof *p + len + 1);
    if (!p) return NULL;
    memcpy(p->user, user, len + 1);
    p->hash = str_hash(user);
    if (c->npresence >= c->npbuckets) {
        size_t n = c->npbuckets * 2;
        presence_t **b = calloc(n, sizeof *b);
        if (b) { /* else keep the longer chains */
            for (size_t i = 0; i < c->npbuckets; i++)
                for (presence_t *e = c->pbuckets[i], *next; e; e = next) {
                    next = e->hnext;
                    e->hnext = b[e->hash & (n - 1)];
                    b[e->hash & (n - 1)] = e;
                }
            free(c->pbuckets);
            c->pbuckets = b;
            c->npbuckets = n;
        }
    }
    presence_t **pp = &c->pbuckets[p->hash & (c->npbuckets - 1)];
    p->hnext = *pp;
    *pp = p;
    c->npresence++;
    return p;
}

static void presence_drop(chat_t *c, presence_t *p)
{
    for (presence_t **pp = &c->pbuckets[p->hash & (c->npbuckets - 1)]; *pp; pp = &(*pp)->hnext)
        if (*pp == p) {
            *pp = p->hnext;
            c->npresence--;
            break;
        }
    timerq_remove(&p->grace);
    free(p);
}

/* Whether user has a live socket other than except. */
static bool user_reachable(const chat_t *c, const char *user, const sio_socket_t *except)
{
    presence_t *p = presence_find(c, user);
    for (chat_sock_t *cs = p ? p->live : NULL; cs; cs = cs->live_next)
        if (cs->socket != except) return true;
    return false;
}

/* Queues built packets on every live socket of user except `except`. */
/* pos > 0: b is the receive_message of the message at that commit position (a socket that
 * is replaying holds it until its replay is over). */
static void send_built_to_user(chat_t *c, const char *user, const sio_socket_t *except,
                               const sio_built_t *b, int64_t pos)
{
    presence_t *p = presence_find(c, user);
    for (chat_sock_t *cs = p ? p->live : NULL; cs; cs = cs->live_next)
        if (cs->socket != except && !(pos > 0 && chat_recovery_hold(cs, pos, b)))
            sio_socket_send_built(cs->socket, b);
}

void chat_emit_to_user(chat_t *c, const char *user, const sio_socket_t *except, const char *event,
                       json_t *doc)
{
    if (!user_reachable(c, user, except)) return; /* nobody to tell: encode nothing */
    json_t *arr = json_pack("[sO]", event, doc);
    size_t len;
    char *text = chat_dumps(arr, &len);
    json_decref(arr);
    if (!text) return;
    sio_built_t b;
    if (sio_build_event(c->nsp, str_make(text, len), NULL, 0, &b) == 0) {
        send_built_to_user(c, user, except, &b, 0);
        sio_built_free(&b);
    }
    free(text);
}

/* ---- users ---- */

int chat_authenticate(chat_t *c, str_t token, chat_user_t *out)
{
    if (token.len == 0) return AUTH_ERR_MISSING;
    auth_claims_t claims;
    int rc = auth_jwt_verify(c->jwt, token, now_s(), &claims);
    if (rc != AUTH_OK) return rc;
    snprintf(out->id, sizeof out->id, "%s", claims.sub);
    snprintf(out->name, sizeof out->name, "%s", claims.name);
    snprintf(out->role, sizeof out->role, "%s", claims.role);
    return AUTH_OK;
}

typedef struct {
    store_req_t req;
    chat_user_t user;
} upsert_ctx_t;

static void upsert_done(store_req_t *req)
{
    upsert_ctx_t *u = (upsert_ctx_t *)req;
    if (req->status != STORE_OK)
        log_warn("recording user %s failed: %s", u->user.id, store_strerror(req->status));
    free(u);
}

static uint64_t hash64(uint64_t h, const char *s)
{
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    /* splitmix64's finalizer: FNV-1a's low bits alone index the table poorly */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

/* The slot of id in the recorded table (its own, or the free one where it would go). */
static recorded_t *recorded_slot(recorded_t *t, size_t cap, uint64_t id)
{
    size_t i = (size_t)id & (cap - 1);
    while (t[i].id && t[i].id != id) i = (i + 1) & (cap - 1);
    return &t[i];
}

/* Remembers that (id, name, role) is recorded; false when it already was. Two 64-bit hashes
 * stand for the strings: a user is skipped wrongly only if both collide at once. */
static bool recorded_set(chat_t *c, const chat_user_t *u)
{
    uint64_t id = hash64(1469598103934665603ull, u->id) | 1; /* 0 marks a free slot */
    uint64_t value = hash64(hash64(0x9e3779b97f4a7c15ull, u->name), u->role);
    if (c->recorded_cap) {
        const recorded_t *r = recorded_slot(c->recorded, c->recorded_cap, id);
        if (r->id == id && r->value == value) return false;
    }
    if (4 * (c->nrecorded + 1) > 3 * c->recorded_cap) { /* at most 3/4 full */
        size_t cap = c->recorded_cap ? 2 * c->recorded_cap : 1024;
        recorded_t *t = calloc(cap, sizeof *t);
        if (!t) return true; /* record it again later rather than never */
        for (size_t i = 0; i < c->recorded_cap; i++)
            if (c->recorded[i].id) *recorded_slot(t, cap, c->recorded[i].id) = c->recorded[i];
        free(c->recorded);
        c->recorded = t;
        c->recorded_cap = cap;
    }
    recorded_t *slot = recorded_slot(c->recorded, c->recorded_cap, id);
    if (!slot->id) c->nrecorded++;
    *slot = (recorded_t){id, value};
    return true;
}

void chat_record_user(chat_t *c, const chat_user_t *u)
{
    if (!recorded_set(c, u)) return;
    upsert_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return;
    ctx->user = *u;
    ctx->req.op = STORE_OP_USER_UPSERT;
    /* A user record shares a commit with its neighbours instead of costing an fsync per
     * handshake; it still lands before anything this user does next (see store.h). */
    ctx->req.lazy = true;
    ctx->req.done = upsert_done;
    ctx->req.u.user_upsert.id = str_cstr(ctx->user.id);
    ctx->req.u.user_upsert.name = ctx->user.name[0] ? str_cstr(ctx->user.name) : STR_NULL;
    ctx->req.u.user_upsert.role = ctx->user.role[0] ? str_cstr(ctx->user.role) : STR_NULL;
    if (store_submit(c->store, &ctx->req) != 0) free(ctx);
}

/* ---- the send pipeline ---- */

static void send_finish(send_ctx_t *s, int status, const char *code, const char *msg, str_t doc,
                        bool dup)
{
    chat_err_t err = {status, code, msg, 0};
    int64_t pos =
        !code && s->req.op == STORE_OP_MESSAGE_INSERT ? s->req.u.message_insert.msg.pos : 0;
    s->done(s->ud, code ? &err : NULL, doc, dup, pos);
    cs_unref(s->origin);
    free(s);
}

static void send_fail_store(send_ctx_t *s, int st)
{
    const char *code, *msg;
    int status = chat_store_error(st, &code, &msg);
    if (s->req.op == STORE_OP_MESSAGE_INSERT && s->req.u.message_insert.file_id.ptr) {
        if (st == STORE_E_FORBIDDEN) {
            status = 403;
            code = "FORBIDDEN";
            msg = "fileId must be a file you uploaded";
        } else if (st == STORE_E_INVALID && s->req.u.message_insert.type == STORE_MSG_IMAGE) {
            msg = "an image message needs an image file";
        }
    }
    send_finish(s, status, code, msg, STR_NULL, false);
}

/* Counts code points of valid UTF-8 and checks for characters a message may not hold. */
static const char *content_problem(const char *p, size_t len, size_t max_chars, bool need_text)
{
    size_t chars = 0;
    bool blank = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if ((ch & 0xc0) != 0x80) chars++;
        if (ch == 0) return "content must not contain NUL characters";
        if ((ch < 0x20 && ch != '\n' && ch != '\r' && ch != '\t') || ch == 0x7f)
            return "content must not contain control characters";
        if (ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t') blank = false;
    }
    if (need_text && blank) return "content must not be empty";
    if (chars > max_chars) return "content is too long";
    return NULL;
}

static bool user_id_valid(const char *s, size_t n)
{
    return auth_sub_is_valid(s, n);
}

static void deliver(send_ctx_t *s, str_t doc)
{
    chat_t *c = s->chat;
    const store_message_t *m = &s->req.u.message_insert.msg;
    /* The last argument, a string, is the connection-state-recovery offset (socket.io-client
     * remembers it and sends it back on reconnect). */
    char pos[24], *p = chat_i64_text(m->pos, pos);
    /* Gathered straight into the one frame every member's sockets share. */
    const str_t parts[] = {STR_LIT("[\"receive_message\","), doc, STR_LIT(",\""),
                           str_make(p, (size_t)(pos + sizeof pos - p)), STR_LIT("\"]")};
    sio_built_t b;
    if (sio_build_event_parts(c->nsp, parts, 5, &b) == 0) {
        /* The origin socket learns of its message from the ack (docs/api.md), not twice. */
        const sio_socket_t *except = s->origin ? s->origin->socket : NULL;
        members_entry_t *e = chat_cache_find(c, m->conversation_id);
        if (e) {
            for (uint32_t i = 0; i < e->n; i++)
                send_built_to_user(c, e->users[i], except, &b, m->pos);
        } else {
            /* A direct conversation whose members are on the message itself. */
            send_built_to_user(c, s->user.id, except, &b, m->pos);
            if (m->recipient.ptr && m->recipient.len < STORE_USER_ID_MAX + 1) {
                char r[STORE_USER_ID_MAX + 1];
                memcpy(r, m->recipient.ptr, m->recipient.len);
                r[m->recipient.len] = '\0';
                send_built_to_user(c, r, except, &b, m->pos);
            }
        }
        sio_built_free(&b);
    }
}

static void insert_done(store_req_t *req)
{
    send_ctx_t *s = (send_ctx_t *)req;
    if (req->status != STORE_OK) {
        send_fail_store(s, req->status);
        return;
    }
    store_message_insert_t *in = &req->u.message_insert;
    if (in->msg.pos > s->chat->last_pos) s->chat->last_pos = in->msg.pos;
    if (!in->duplicate) typing_stop(s->chat, s->user.id, in->msg.conversation_id);
    if (!chat_cache_find(s->chat, in->msg.conversation_id) && in->msg.recipient.ptr) {
        str_t users[2] = {in->msg.sender, in->msg.recipient};
        cache_put(s->chat, in->msg.conversation_id, users, 2);
    }
    members_entry_t *me = chat_cache_find(s->chat, in->msg.conversation_id);
    if (me && !in->duplicate && in->msg.seq > me->last_seq) me->last_seq = in->msg.seq;
    /* Encoded once, as text: the delivery, the ack and the REST answer all embed it. */
    buf_t doc;
    buf_init(&doc);
    buf_reserve(&doc, 512 + in->msg.content.len + in->msg.client_msg_id.len);
    if (chat_message_text(&in->msg, &doc) < 0) {
        send_finish(s, 500, "INTERNAL", "could not encode the message", STR_NULL, false);
        return;
    }
    str_t text = str_make(doc.data, doc.len);
    if (!in->duplicate) {
        history_append(s->chat, in->msg.conversation_id, in->msg.seq, text);
        deliver(s, text);
    }
    send_finish(s, in->duplicate ? 200 : 201, NULL, NULL, text, in->duplicate);
    buf_free(&doc);
}

static void submit_insert(send_ctx_t *s)
{
    s->req.op = STORE_OP_MESSAGE_INSERT;
    s->req.done = insert_done;
    if (store_submit(s->chat->store, &s->req) != 0)
        send_finish(s, 503, "INTERNAL", "the server is shutting down", STR_NULL, false);
}

/* The insert's inputs, from the validated input. */
static void fill_insert(send_ctx_t *s)
{
    const chat_send_args_t *a = &s->in;
    str_t type = a->type.kind == CHAT_ARG_STRING ? a->type.s : STR_LIT("text");
    store_message_insert_t in = {0};
    in.sender = str_cstr(s->user.id);
    if (a->conversation_id.kind == CHAT_ARG_STRING) in.conversation_id = a->conversation_id.s;
    if (a->recipient_id.kind == CHAT_ARG_STRING) in.recipient = a->recipient_id.s;
    in.content = a->content.kind == CHAT_ARG_STRING ? a->content.s : STR_LIT("");
    in.type = str_eq_cstr(type, "text")    ? STORE_MSG_TEXT
              : str_eq_cstr(type, "image") ? STORE_MSG_IMAGE
                                           : STORE_MSG_FILE;
    if (a->file_id.kind == CHAT_ARG_STRING) in.file_id = a->file_id.s;
    if (a->client_msg_id.kind == CHAT_ARG_STRING) in.client_msg_id = a->client_msg_id.s;
    s->req.u.message_insert = in;
}

static void lookup_done(store_req_t *req)
{
    send_ctx_t *s = (send_ctx_t *)req;
    if (req->status != STORE_OK) {
        send_fail_store(s, req->status);
        return;
    }
    chat_cache_members(s->chat, &req->u.conversation_get.conv);
    fill_insert(s);
    submit_insert(s);
}

/* Present and not null. */
static bool given(const chat_arg_t *a)
{
    return a->kind == CHAT_ARG_STRING || a->kind == CHAT_ARG_OTHER;
}

static bool is_str(const chat_arg_t *a)
{
    return a->kind == CHAT_ARG_STRING;
}

/* Copies a string argument to *at and points the copy's str_t there. */
static void copy_arg(chat_arg_t *dst, const chat_arg_t *src, char **at)
{
    *dst = *src;
    if (src->kind != CHAT_ARG_STRING) return;
    memcpy(*at, src->s.ptr, src->s.len);
    dst->s = str_make(*at, src->s.len);
    (*at)[src->s.len] = '\0';
    *at += src->s.len + 1;
}

/* a is NULL when the payload is not an object. */
static void send_start(chat_t *c, const chat_user_t *user, chat_sock_t *origin,
                       const chat_send_args_t *a, chat_send_done done, void *ud)
{
#define REFUSE(msg)                                                                                \
    do {                                                                                           \
        chat_err_t e_ = {400, "BAD_REQUEST", msg, 0};                                              \
        done(ud, &e_, STR_NULL, false, 0);                                                         \
        return;                                                                                    \
    } while (0)
    if (!a) REFUSE("the message must be an object");
    const chat_arg_t *rid = &a->recipient_id, *cid = &a->conversation_id, *content = &a->content,
                     *type = &a->type, *fid = &a->file_id, *cmid = &a->client_msg_id;
    if (!given(rid) && !given(cid)) REFUSE("recipientId or conversationId is required");
    if (given(rid) && given(cid)) REFUSE("give recipientId or conversationId, not both");
    if (given(rid) && (!is_str(rid) || !user_id_valid(rid->s.ptr, rid->s.len)))
        REFUSE("recipientId must be 1-64 characters of A-Z a-z 0-9 _ -");
    if (given(rid) && str_eq_cstr(rid->s, user->id)) REFUSE("cannot send a message to yourself");
    if (given(cid) && (!is_str(cid) || !id_valid(cid->s)))
        REFUSE("conversationId must be a 24-character hex id");
    str_t t = STR_LIT("text");
    if (given(type)) {
        if (!is_str(type)) REFUSE("type must be text, image or file");
        t = type->s;
        if (!str_eq_cstr(t, "text") && !str_eq_cstr(t, "image") && !str_eq_cstr(t, "file"))
            REFUSE("type must be text, image or file");
    }
    bool is_text = str_eq_cstr(t, "text");
    if (is_text && given(fid)) REFUSE("fileId is only for image and file messages");
    if (!is_text && !given(fid)) REFUSE("image and file messages need a fileId");
    if (given(fid) && (!is_str(fid) || !id_valid(fid->s)))
        REFUSE("fileId must be a 24-character hex id");
    if (content->kind == CHAT_ARG_OTHER) REFUSE("content must be a string");
    if (is_text && !is_str(content)) REFUSE("content is required");
    if (is_str(content)) {
        const char *why =
            content_problem(content->s.ptr, content->s.len, c->opts.max_message_length, is_text);
        if (why) REFUSE(why);
    }
    if (given(cmid)) {
        if (!is_str(cmid) || cmid->s.len == 0 || cmid->s.len > STORE_CLIENT_MSG_ID_MAX)
            REFUSE("clientMsgId must be a non-empty string of at most 128 bytes");
        const char *why = content_problem(cmid->s.ptr, cmid->s.len, STORE_CLIENT_MSG_ID_MAX, false);
        if (why) REFUSE("clientMsgId must not contain control characters");
    }
#undef REFUSE
    /* Only valid messages count against the rate; a refused one is not stored. */
    uint32_t wait = limiter_take(&c->msg_limit, user->id, uv_now(c->loop));
    if (wait) {
        chat_err_t e = {429, "RATE_LIMITED", "too many messages; slow down", wait};
        done(ud, &e, STR_NULL, false, 0);
        return;
    }
    /* One allocation: the context, the store's arena (the stored message and its copies) and
     * the input strings (each NUL-terminated). */
    size_t clen = is_str(content) ? content->s.len : 0;
    size_t cap = 4096 + 2 * clen;
    size_t inputs = 6 + clen + rid->s.len + cid->s.len + type->s.len + fid->s.len + cmid->s.len;
    send_ctx_t *s = malloc(sizeof *s + cap + inputs);
    if (!s) {
        chat_err_t e = {500, "INTERNAL", "out of memory", 0};
        done(ud, &e, STR_NULL, false, 0);
        return;
    }
    memset(s, 0, sizeof *s);
    s->chat = c;
    s->user = *user;
    s->done = done;
    s->ud = ud;
    s->req.arena.ptr = s->arena;
    s->req.arena.cap = cap;
    char *at = s->arena + cap;
    copy_arg(&s->in.recipient_id, rid, &at);
    copy_arg(&s->in.conversation_id, cid, &at);
    copy_arg(&s->in.content, content, &at);
    copy_arg(&s->in.type, type, &at);
    copy_arg(&s->in.file_id, fid, &at);
    copy_arg(&s->in.client_msg_id, cmid, &at);
    s->origin = cs_ref(origin);
    if (given(cid)) {
        const char *conv = s->in.conversation_id.s.ptr; /* NUL-terminated copy */
        members_entry_t *e = chat_cache_find(c, conv);
        if (!e) {
            /* First send to this conversation since start: learn its members first, so that
             * delivery right after the commit needs no store read. */
            s->req.op = STORE_OP_CONVERSATION_GET;
            s->req.done = lookup_done;
            s->req.u.conversation_get.id = s->in.conversation_id.s;
            s->req.u.conversation_get.requester = str_cstr(s->user.id);
            if (store_submit(c->store, &s->req) != 0)
                send_finish(s, 503, "INTERNAL", "the server is shutting down", STR_NULL, false);
            return;
        }
        if (!entry_has(e, user->id)) {
            send_finish(s, 404, "NOT_FOUND", "no such conversation", STR_NULL, false);
            return;
        }
    }
    fill_insert(s);
    submit_insert(s);
}

/* A jansson document's field as an argument (the REST body). */
static chat_arg_t arg_of(json_t *v)
{
    chat_arg_t a = {CHAT_ARG_ABSENT, STR_NULL};
    if (!v) return a;
    if (json_is_null(v)) {
        a.kind = CHAT_ARG_NULL;
    } else if (json_is_string(v)) {
        a.kind = CHAT_ARG_STRING;
        a.s = str_make(json_string_value(v), json_string_length(v));
    } else {
        a.kind = CHAT_ARG_OTHER;
    }
    return a;
}

void chat_send(chat_t *c, const chat_user_t *user, json_t *payload, chat_send_done done, void *ud)
{
    if (!json_is_object(payload)) {
        send_start(c, user, NULL, NULL, done, ud);
        return;
    }
    chat_send_args_t a = {
        .recipient_id = arg_of(json_object_get(payload, "recipientId")),
        .conversation_id = arg_of(json_object_get(payload, "conversationId")),
        .content = arg_of(json_object_get(payload, "content")),
        .type = arg_of(json_object_get(payload, "type")),
        .file_id = arg_of(json_object_get(payload, "fileId")),
        .client_msg_id = arg_of(json_object_get(payload, "clientMsgId")),
    };
    send_start(c, user, NULL, &a, done, ud);
}

/* ---- socket events ---- */

static void ack_json(chat_sock_t *cs, int64_t ack_id, json_t *obj)
{
    json_t *ack = json_pack("[O]", obj);
    size_t len;
    char *text = chat_dumps(ack, &len);
    if (text) sio_socket_ack(cs->socket, ack_id, str_make(text, len), NULL, 0);
    free(text);
    json_decref(ack);
}

/* A refusal: the ack error (when an ack was asked for) and a message_error event. */
static void reply_error_ex(chat_sock_t *cs, int64_t ack_id, json_t *client_msg_id, const char *code,
                           const char *message, uint32_t retry_after_ms)
{
    json_t *err = chat_error_json(code, message);
    if (retry_after_ms) json_object_set_new(err, "retryAfterMs", json_integer(retry_after_ms));
    if (ack_id >= 0) {
        json_t *obj = json_pack("{s:b, s:O}", "ok", 0, "error", err);
        ack_json(cs, ack_id, obj);
        json_decref(obj);
    }
    if (json_is_string(client_msg_id)) json_object_set(err, "clientMsgId", client_msg_id);
    json_t *arr = json_pack("[so]", "message_error", err);
    size_t len;
    char *text = chat_dumps(arr, &len);
    if (text) sio_socket_emit(cs->socket, str_make(text, len), NULL, 0);
    free(text);
    json_decref(arr);
}

static void reply_error(chat_sock_t *cs, int64_t ack_id, json_t *client_msg_id, const char *code,
                        const char *message)
{
    reply_error_ex(cs, ack_id, client_msg_id, code, message, 0);
}

/* {ok:true, ...fields} */
static void reply_ok(chat_sock_t *cs, int64_t ack_id, json_t *fields)
{
    if (ack_id < 0) return;
    json_t *obj = json_pack("{s:b}", "ok", 1);
    json_object_update(obj, fields);
    ack_json(cs, ack_id, obj);
    json_decref(obj);
}

void chat_reply_error(chat_sock_t *cs, int64_t ack_id, const char *code, const char *message,
                      uint32_t retry_after_ms)
{
    reply_error_ex(cs, ack_id, NULL, code, message, retry_after_ms);
}

void chat_reply_ok(chat_sock_t *cs, int64_t ack_id, json_t *fields)
{
    reply_ok(cs, ack_id, fields);
}

typedef struct {
    chat_sock_t *cs; /* a reference */
    int64_t ack_id;
    bool has_client_msg_id; /* a string clientMsgId was given: it is in client_msg_id */
    size_t client_msg_id_len;
    char client_msg_id[];
} reply_t;

/* The key of a session's acknowledged positions: its user and the parts of its pid that tell
 * the user's sessions apart. */
const char *chat_acked_key(const chat_sock_t *cs, char out[ACKED_KEY_SIZE])
{
    snprintf(out, ACKED_KEY_SIZE, "%s|%lld-%s", CS_UID(cs), (long long)cs->pid_pos, cs->pid_rnd);
    return out;
}

acked_t *chat_acked_of(chat_t *c, const char *pid, bool create)
{
    acked_t *a = strmap_get(&c->acked, pid);
    if (a || !create) return a;
    a = calloc(1, sizeof *a);
    if (a && strmap_set(&c->acked, pid, a) < 0) {
        free(a);
        return NULL;
    }
    return a;
}

static void acked_add(chat_sock_t *cs, int64_t pos)
{
    char key[ACKED_KEY_SIZE];
    acked_t *a = chat_acked_of(cs->chat, chat_acked_key(cs, key), true);
    if (a) a->pos[a->n++ % ACKED_KEEP] = pos;
}

bool chat_acked_has(const acked_t *a, int64_t pos)
{
    unsigned n = a->n < ACKED_KEEP ? a->n : ACKED_KEEP;
    for (unsigned i = 0; i < n; i++)
        if (a->pos[i] == pos) return true;
    return false;
}

static int acked_expired(const char *key, void *value, void *arg)
{
    acked_t *a = value;
    uint64_t now = *(uint64_t *)arg;
    if (a->expires_ms == 0 || a->expires_ms > now) return 0;
    free(a);
    return 1;
}

static void socket_send_done(void *ud, const chat_err_t *err, str_t doc, bool dup, int64_t pos)
{
    reply_t *r = ud;
    if (r->cs->socket) {
        if (err) {
            json_t *cmid =
                r->has_client_msg_id ? json_stringn(r->client_msg_id, r->client_msg_id_len) : NULL;
            reply_error_ex(r->cs, r->ack_id, cmid, err->code, err->message, err->retry_after_ms);
            json_decref(cmid);
        } else {
            if (r->ack_id >= 0) {
                const str_t parts[] = {STR_LIT("[{\"ok\":true,\"message\":"), doc, STR_LIT("}]")};
                sio_socket_ack_parts(r->cs->socket, r->ack_id, parts, 3);
            }
            if (!dup && pos > 0) acked_add(r->cs, pos);
        }
    }
    cs_unref(r->cs);
    free(r);
}

/* args: the event's argument array as text, read in place (no jansson on the hot path). */
static void on_send_message(chat_sock_t *cs, str_t args, int64_t ack_id)
{
    chat_send_args_t a;
    str_t payload = chat_event_payload(args);
    char small[512], *buf = payload.len <= sizeof small ? small : malloc(payload.len);
    if (!buf) return;
    bool object = chat_send_args_parse(payload, &a, buf, payload.len) == 0;
    size_t cmid_len = object && a.client_msg_id.kind == CHAT_ARG_STRING ? a.client_msg_id.s.len : 0;
    reply_t *r = malloc(sizeof *r + cmid_len + 1);
    if (r) {
        r->cs = cs_ref(cs);
        r->ack_id = ack_id;
        r->has_client_msg_id = object && a.client_msg_id.kind == CHAT_ARG_STRING;
        r->client_msg_id_len = cmid_len;
        if (cmid_len) memcpy(r->client_msg_id, a.client_msg_id.s.ptr, cmid_len);
        r->client_msg_id[cmid_len] = '\0';
        chat_user_t user;
        memset(&user, 0, sizeof user);
        snprintf(user.id, sizeof user.id, "%s", CS_UID(cs));
        send_start(cs->chat, &user, cs, object ? &a : NULL, socket_send_done, r);
    }
    if (buf != small) free(buf);
}

/* messages_read to every member (and so the reader's other sockets). */
static void emit_to_members(chat_t *c, const members_entry_t *e, const char *event, json_t *doc)
{
    for (uint32_t i = 0; i < e->n; i++) chat_emit_to_user(c, e->users[i], NULL, event, doc);
}

typedef struct {
    store_req_t req;
    chat_t *chat;
    json_t *doc;
    char conv[ID_SIZE];
    char reader[STORE_USER_ID_MAX + 1];
    char arena[];
} read_lookup_t;

static void read_lookup_done(store_req_t *req)
{
    read_lookup_t *x = (read_lookup_t *)req;
    if (req->status == STORE_OK) chat_cache_members(x->chat, &req->u.conversation_get.conv);
    members_entry_t *e = chat_cache_find(x->chat, x->conv);
    if (e)
        emit_to_members(x->chat, e, "messages_read", x->doc);
    else
        chat_emit_to_user(x->chat, x->reader, NULL, "messages_read", x->doc);
    json_decref(x->doc);
    free(x);
}

void chat_publish_read(chat_t *c, const char *reader, const char *message_id,
                       const store_mark_read_t *mr)
{
    char at[64];
    chat_iso_time(mr->read_at, at);
    json_t *doc =
        json_pack("{s:s, s:s, s:I, s:s, s:s}", "conversationId", mr->conv_id, "readerId", reader,
                  "seq", (json_int_t)mr->seq, "messageId", message_id, "readAt", at);
    /* read/readAt of cached documents changed: the store answers the next page. */
    chat_history_drop(c, mr->conv_id);
    chat_mark_read_learn(c, NULL, reader, message_id, mr);
    members_entry_t *e = chat_cache_find(c, mr->conv_id);
    if (e) {
        emit_to_members(c, e, "messages_read", doc);
        json_decref(doc);
        return;
    }
    /* Not cached yet (e.g. just after a restart): learn the members first. */
    size_t cap = 64 * 1024;
    read_lookup_t *x = malloc(sizeof *x + cap);
    if (!x) {
        json_decref(doc);
        return;
    }
    memset(x, 0, sizeof *x);
    x->chat = c;
    x->doc = doc;
    memcpy(x->conv, mr->conv_id, ID_SIZE);
    snprintf(x->reader, sizeof x->reader, "%s", reader);
    x->req.op = STORE_OP_CONVERSATION_GET;
    x->req.done = read_lookup_done;
    x->req.arena.ptr = x->arena;
    x->req.arena.cap = cap;
    x->req.u.conversation_get.id = str_make(x->conv, ID_LEN);
    if (store_submit(c->store, &x->req) != 0) {
        json_decref(doc);
        free(x);
    }
}

typedef struct {
    store_req_t req;
    chat_t *chat;
    chat_sock_t *cs; /* a reference */
    int64_t ack_id;
    char user[STORE_USER_ID_MAX + 1];
    char conv[ID_SIZE], msg[ID_SIZE];
} read_ctx_t;

static void mark_read_done(store_req_t *req)
{
    read_ctx_t *r = (read_ctx_t *)req;
    store_mark_read_t *mr = &req->u.mark_read;
    bool here = r->cs->socket != NULL;
    if (req->status != STORE_OK) {
        const char *code, *message;
        chat_store_error(req->status, &code, &message);
        if (req->status == STORE_E_NOT_FOUND || req->status == STORE_E_FORBIDDEN)
            message = "no such message in a conversation of yours";
        if (here) reply_error(r->cs, r->ack_id, NULL, code, message);
    } else {
        chat_mark_read_learn(r->chat, r->cs, r->user, r->msg, mr);
        if (mr->moved) chat_publish_read(r->chat, r->user, r->msg, mr);
        if (here) {
            json_t *f = json_pack("{s:s, s:I, s:I}", "conversationId", mr->conv_id, "seq",
                                  (json_int_t)mr->seq, "unreadCount", (json_int_t)mr->unread_count);
            reply_ok(r->cs, r->ack_id, f);
            json_decref(f);
        }
    }
    cs_unref(r->cs);
    free(r);
}

static bool json_id(json_t *j)
{
    return json_is_string(j) && id_valid(str_make(json_string_value(j), json_string_length(j)));
}

static void on_mark_read(chat_sock_t *cs, json_t *payload, int64_t ack_id)
{
    json_t *conv = json_object_get(payload, "conversationId");
    json_t *msg = json_object_get(payload, "messageId");
    if (!json_id(msg) || (conv && !json_is_null(conv) && !json_id(conv))) {
        reply_error(cs, ack_id, NULL, "BAD_REQUEST",
                    "mark_read needs messageId (and conversationId): 24-character hex ids");
        return;
    }
    if (chat_mark_read_known(cs, json_string_value(msg),
                             json_id(conv) ? json_string_value(conv) : NULL, ack_id))
        return; /* it cannot move the watermark: the store is not asked */
    read_ctx_t *r = calloc(1, sizeof *r);
    if (!r) return;
    r->chat = cs->chat;
    r->cs = cs_ref(cs);
    r->ack_id = ack_id;
    snprintf(r->user, sizeof r->user, "%s", CS_UID(cs));
    memcpy(r->msg, json_string_value(msg), ID_SIZE);
    r->req.op = STORE_OP_MARK_READ;
    r->req.done = mark_read_done;
    r->req.u.mark_read.user = str_cstr(r->user);
    r->req.u.mark_read.message_id = str_make(r->msg, ID_LEN);
    if (json_id(conv)) {
        memcpy(r->conv, json_string_value(conv), ID_SIZE);
        r->req.u.mark_read.conversation_id = str_make(r->conv, ID_LEN);
    }
    if (store_submit(cs->chat->store, &r->req) != 0) {
        cs_unref(r->cs);
        free(r);
    }
}

/* ---- limits ---- */

uint32_t chat_rest_limit(chat_t *c, const char *user)
{
    return limiter_take(&c->rest_limit, user, uv_now(c->loop));
}

void *chat_admit(void *arg, net_conn_t *conn, uint32_t *retry_after_s)
{
    chat_t *c = arg;
    if (c->ip_limit.rate <= 0 && c->ip_limit.max_concurrent == 0)
        return &c->ip_limit; /* no per-IP limits: nothing to remember */
    char peer[64];
    net_conn_peer_name(conn, peer, sizeof peer);
    char *colon = strrchr(peer, ':'); /* drop the port: limits are per address */
    if (colon) *colon = '\0';
    /* The concurrency check first: a connection refused for it spends no rate token. */
    if (limiter_acquire(&c->ip_limit, peer) < 0) {
        *retry_after_s = 1;
        log_info_throttled("connection from %s refused: too many concurrent connections", peer);
        return NULL;
    }
    uint32_t wait = limiter_take(&c->ip_limit, peer, uv_now(c->loop));
    if (wait) {
        limiter_release(&c->ip_limit, peer);
        *retry_after_s = (wait + 999) / 1000;
        log_info_throttled("connection from %s refused: too many new connections", peer);
        return NULL;
    }
    return strdup(peer);
}

void chat_release(void *arg, void *handle)
{
    chat_t *c = arg;
    if (handle == (void *)&c->ip_limit) return;
    limiter_release(&c->ip_limit, handle);
    free(handle);
}

static void on_sweep(uv_timer_t *t)
{
    chat_t *c = t->data;
    uint64_t now = uv_now(c->loop);
    limiter_sweep(&c->msg_limit, now);
    limiter_sweep(&c->rest_limit, now);
    limiter_sweep(&c->ip_limit, now);
    limiter_sweep(&c->user_conns, now);
    strmap_sweep(&c->acked, acked_expired, &now);
}

/* ---- presence ---- */

typedef struct {
    store_req_t req;
    chat_t *chat;
    json_t *doc;
    chat_sock_t *except; /* a reference: the socket whose arrival this announces */
    char user[STORE_USER_ID_MAX + 1];
    bool small; /* the first try, with room for CONTACTS_FIRST contacts */
    char arena[];
} contacts_ctx_t;

/* Presence goes to at most this many contacts per change (the store's order decides which);
 * it keeps the request small enough for the heap instead of an mmap per connect. */
#define CONTACTS_LIMIT 1000
#define CONTACTS_ARENA (CONTACTS_LIMIT * (STORE_USER_ID_MAX + 24))
/* Most people have few contacts: a handshake first asks with room for this many, and only a
 * user with more asks again with room for CONTACTS_LIMIT. 128 handshakes in flight with the
 * full 88 KB each left megabytes of freed heap resident after a burst of connections. */
#define CONTACTS_FIRST       32
#define CONTACTS_FIRST_ARENA (CONTACTS_FIRST * (STORE_USER_ID_MAX + 24))

static void announce_ask(chat_t *c, const char *user, json_t *doc, chat_sock_t *except, bool small);

/* user_status to everyone in a conversation the user has sent a message in (those it chose to
 * talk to), and to the user's own sockets; the contacts come from the store. */
static void status_contacts_done(store_req_t *req)
{
    contacts_ctx_t *x = (contacts_ctx_t *)req;
    if (req->status == STORE_OK && x->small && req->u.contacts.has_more) {
        announce_ask(x->chat, x->user, x->doc, x->except, false); /* takes doc and except */
        free(x);
        return;
    }
    if (req->status == STORE_OK) {
        store_contacts_t *ct = &req->u.contacts;
        for (size_t i = 0; i < ct->count; i++) {
            char id[STORE_USER_ID_MAX + 1];
            snprintf(id, sizeof id, "%.*s", (int)ct->user_ids[i].len, ct->user_ids[i].ptr);
            chat_emit_to_user(x->chat, id, NULL, "user_status", x->doc);
        }
    }
    /* The user's own other sockets; not the one that just arrived. */
    chat_emit_to_user(x->chat, x->user, x->except ? x->except->socket : NULL, "user_status",
                      x->doc);
    cs_unref(x->except);
    json_decref(x->doc);
    free(x);
}

static json_t *status_json(const char *user, bool online, int64_t last_seen)
{
    char at[64];
    if (last_seen > 0) chat_iso_time(last_seen, at);
    return json_pack("{s:s, s:s, s:o}", "userId", user, "status", online ? "online" : "offline",
                     "lastSeen", last_seen > 0 ? json_string(at) : json_null());
}

/* Takes over doc and the reference to except. */
static void announce_ask(chat_t *c, const char *user, json_t *doc, chat_sock_t *except, bool small)
{
    size_t cap = small ? CONTACTS_FIRST_ARENA : CONTACTS_ARENA;
    contacts_ctx_t *x = malloc(sizeof *x + cap);
    if (!x) {
        cs_unref(except);
        json_decref(doc);
        return;
    }
    memset(x, 0, sizeof *x);
    x->chat = c;
    snprintf(x->user, sizeof x->user, "%s", user);
    x->doc = doc;
    x->except = except;
    x->small = small;
    x->req.op = STORE_OP_CONTACTS;
    x->req.done = status_contacts_done;
    x->req.arena.ptr = x->arena;
    x->req.arena.cap = cap;
    x->req.u.contacts.user = str_cstr(x->user);
    x->req.u.contacts.mode = STORE_CONTACTS_AUDIENCE; /* only those it has written to */
    x->req.u.contacts.limit = small ? CONTACTS_FIRST : CONTACTS_LIMIT;
    if (store_submit(c->store, &x->req) != 0) {
        cs_unref(x->except);
        json_decref(x->doc);
        free(x);
    }
}

static void announce(chat_t *c, presence_t *p, chat_sock_t *except)
{
    announce_ask(c, p->user, status_json(p->user, p->online, p->last_seen), cs_ref(except), true);
}

typedef struct {
    store_req_t req;
    char user[STORE_USER_ID_MAX + 1];
} seen_ctx_t;

static void seen_done(store_req_t *req)
{
    free(req);
}

static void typing_clear_user(chat_t *c, const char *user);

/* The user was seen now: remember it, and keep it in the store (lastSeen survives restarts). */
static void record_seen(chat_t *c, presence_t *p)
{
    p->last_seen = now_ms();
    seen_ctx_t *sc = calloc(1, sizeof *sc);
    if (sc) {
        snprintf(sc->user, sizeof sc->user, "%s", p->user);
        sc->req.op = STORE_OP_USER_SEEN;
        sc->req.lazy = true;
        sc->req.done = seen_done;
        sc->req.u.user_seen.id = str_cstr(sc->user);
        sc->req.u.user_seen.last_seen = p->last_seen;
        if (store_submit(c->store, &sc->req) != 0) free(sc);
    }
}

static void presence_offline(chat_t *c, presence_t *p)
{
    p->online = false;
    record_seen(c, p);
    announce(c, p, NULL);
}

static void on_grace_over(timerq_t *q, tq_entry_t *e)
{
    presence_t *p = (presence_t *)((char *)e - offsetof(presence_t, grace));
    chat_t *c = (chat_t *)((char *)q - offsetof(chat_t, grace_tq));
    if (p->sockets) return;
    presence_offline(c, p);
    /* Offline users need no memory; lastSeen is in the store. */
    presence_drop(c, p);
}

/* cs->pres was set when the socket was authorized (presence_get). */
static void presence_connect(chat_t *c, chat_sock_t *cs)
{
    presence_t *p = cs->pres;
    timerq_remove(&p->grace); /* back within the grace period: nobody saw it leave */
    if (p->sockets++ == 0 && !p->online) {
        p->online = true;
        p->last_seen = now_ms();
        announce(c, p, cs);
    }
}

static void presence_disconnect(chat_t *c, chat_sock_t *cs)
{
    presence_t *p = cs->pres;
    if (cs->live) {
        for (chat_sock_t **pp = &p->live; *pp; pp = &(*pp)->live_next)
            if (*pp == cs) {
                *pp = cs->live_next;
                break;
            }
        cs->live = false;
    }
    cs->pres = NULL;
    if (p->sockets == 0) return;
    if (--p->sockets == 0) {
        typing_clear_user(c, p->user);
        if (c->opts.presence_grace_ms)
            timerq_add(&c->grace_tq, &p->grace);
        else
            on_grace_over(&c->grace_tq, &p->grace);
    }
}

/* get_status / GET status: only users who have sent a message in a conversation of the
 * requester (and the requester) are shown as they are; everyone else looks offline with no
 * lastSeen. Sharing a conversation is not enough: anyone may open one with anyone. */
typedef struct {
    store_req_t req;
    chat_t *chat;
    void (*done)(void *ud, json_t *statuses);
    void *ud;
    char requester[STORE_USER_ID_MAX + 1];
    size_t n;
    char (*ids)[STORE_USER_ID_MAX + 1];
    int phase; /* 0: contacts, 1: last seen of offline contacts */
    json_t *statuses;
    str_t *lookup;
    char arena[];
} statuses_ctx_t;

static bool contact_has(const store_contacts_t *ct, const char *id)
{
    size_t lo = 0, hi = ct->count, n = strlen(id);
    while (lo < hi) { /* user_ids are sorted bytewise */
        size_t mid = (lo + hi) / 2;
        str_t u = ct->user_ids[mid];
        int cmp = memcmp(u.ptr, id, u.len < n ? u.len : n);
        if (cmp == 0) cmp = u.len < n ? -1 : u.len > n ? 1 : 0;
        if (cmp == 0) return true;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static void statuses_finish(statuses_ctx_t *x)
{
    x->done(x->ud, x->statuses);
    json_decref(x->statuses);
    free(x->ids);
    free(x->lookup);
    free(x);
}

static void statuses_done(store_req_t *req)
{
    statuses_ctx_t *x = (statuses_ctx_t *)req;
    chat_t *c = x->chat;
    if (x->phase == 1) {
        /* Fill lastSeen of the offline contacts from the store. */
        if (req->status == STORE_OK) {
            store_users_get_t *ug = &req->u.users_get;
            for (size_t i = 0; i < ug->found; i++) {
                const store_user_t *u = &ug->users[i];
                for (size_t k = 0; k < json_array_size(x->statuses); k++) {
                    json_t *st = json_array_get(x->statuses, k);
                    const char *id = json_string_value(json_object_get(st, "userId"));
                    if (strlen(id) == u->id.len && memcmp(id, u->id.ptr, u->id.len) == 0 &&
                        json_is_null(json_object_get(st, "lastSeen")) && u->last_seen > 0) {
                        char at[64];
                        chat_iso_time(u->last_seen, at);
                        json_object_set_new(st, "lastSeen", json_string(at));
                    }
                }
            }
        }
        statuses_finish(x);
        return;
    }
    bool ok = req->status == STORE_OK;
    store_contacts_t ct = ok ? req->u.contacts : (store_contacts_t){0};
    size_t nlookup = 0;
    x->lookup = calloc(x->n ? x->n : 1, sizeof *x->lookup);
    for (size_t i = 0; i < x->n; i++) {
        const char *id = x->ids[i];
        bool visible = !strcmp(id, x->requester) || (ok && contact_has(&ct, id));
        presence_t *p = visible ? presence_find(c, id) : NULL;
        bool online = p && p->online;
        json_array_append_new(x->statuses,
                              status_json(id, online, visible && p ? p->last_seen : 0));
        if (visible && !p && x->lookup) x->lookup[nlookup++] = str_cstr(id);
    }
    if (nlookup == 0) {
        statuses_finish(x);
        return;
    }
    x->phase = 1;
    /* In order with the writes, so a lastSeen written just before is seen. */
    x->req.ordered = true;
    memset(&x->req.u, 0, sizeof x->req.u);
    x->req.op = STORE_OP_USERS_GET;
    x->req.u.users_get.ids = x->lookup;
    x->req.u.users_get.count = nlookup;
    if (store_submit(c->store, &x->req) != 0) statuses_finish(x);
}

void chat_statuses(chat_t *c, const char *requester, const char *const *ids, size_t n,
                   void (*done)(void *ud, json_t *statuses), void *ud)
{
    statuses_ctx_t *x = malloc(sizeof *x + CONTACTS_ARENA);
    if (!x) {
        json_t *empty = json_array();
        done(ud, empty);
        json_decref(empty);
        return;
    }
    memset(x, 0, sizeof *x);
    x->chat = c;
    x->done = done;
    x->ud = ud;
    x->n = n;
    x->ids = calloc(n ? n : 1, sizeof *x->ids);
    x->statuses = json_array();
    snprintf(x->requester, sizeof x->requester, "%s", requester);
    for (size_t i = 0; x->ids && i < n; i++) snprintf(x->ids[i], sizeof x->ids[i], "%s", ids[i]);
    x->req.op = STORE_OP_CONTACTS;
    x->req.done = statuses_done;
    x->req.arena.ptr = x->arena;
    x->req.arena.cap = CONTACTS_ARENA;
    x->req.u.contacts.user = str_cstr(x->requester);
    x->req.u.contacts.mode = STORE_CONTACTS_VISIBLE; /* only those who wrote to the requester */
    x->req.u.contacts.limit = CONTACTS_LIMIT;
    if (!x->ids || store_submit(c->store, &x->req) != 0) {
        x->n = 0;
        statuses_finish(x);
    }
}

/* ---- typing ---- */

static void typing_key(const char *user, const char *conv, char *out, size_t cap)
{
    snprintf(out, cap, "%s\n%s", user, conv);
}

/* {conversationId, userId, isTyping} to the other members' sockets. */
static void typing_relay(chat_t *c, const char *user, const char *conv, bool is_typing)
{
    members_entry_t *e = chat_cache_find(c, conv);
    if (!e) return;
    json_t *doc =
        json_pack("{s:s, s:s, s:b}", "conversationId", conv, "userId", user, "isTyping", is_typing);
    for (uint32_t i = 0; i < e->n; i++)
        if (strcmp(e->users[i], user) != 0) chat_emit_to_user(c, e->users[i], NULL, "typing", doc);
    json_decref(doc);
}

static void typing_stop(chat_t *c, const char *user, const char *conv)
{
    char key[STORE_USER_ID_MAX + ID_SIZE + 2];
    typing_key(user, conv, key, sizeof key);
    typing_t *t = strmap_remove(&c->typing, key);
    if (!t) return;
    timerq_remove(&t->expiry);
    typing_relay(c, user, conv, false);
    free(t);
}

static void on_typing_expired(timerq_t *q, tq_entry_t *e)
{
    typing_t *t = (typing_t *)((char *)e - offsetof(typing_t, expiry));
    typing_stop(t->chat, t->user, t->conv);
}

typedef struct {
    chat_t *chat;
    const char *user;
} clear_arg_t;

static int typing_of_user(const char *key, void *value, void *arg)
{
    clear_arg_t *a = arg;
    typing_t *t = value;
    if (strcmp(t->user, a->user) != 0) return 0;
    timerq_remove(&t->expiry);
    typing_relay(a->chat, t->user, t->conv, false);
    free(t);
    return 1;
}

static void typing_clear_user(chat_t *c, const char *user)
{
    clear_arg_t a = {c, user};
    strmap_sweep(&c->typing, typing_of_user, &a);
}

static void typing_apply(chat_t *c, chat_sock_t *cs, const char *conv, bool is_typing,
                         int64_t ack_id)
{
    members_entry_t *e = chat_cache_find(c, conv);
    if (!e || !entry_has(e, CS_UID(cs))) {
        if (cs->socket) reply_error(cs, ack_id, NULL, "NOT_FOUND", "no such conversation");
        return;
    }
    if (!is_typing) {
        typing_stop(c, CS_UID(cs), conv);
    } else {
        char key[STORE_USER_ID_MAX + ID_SIZE + 2];
        typing_key(CS_UID(cs), conv, key, sizeof key);
        typing_t *t = strmap_get(&c->typing, key);
        uint64_t now = uv_now(c->loop);
        if (!t) {
            t = calloc(1, sizeof *t);
            if (!t) return;
            t->chat = c;
            snprintf(t->user, sizeof t->user, "%s", CS_UID(cs));
            memcpy(t->conv, conv, ID_SIZE);
            if (strmap_set(&c->typing, key, t) < 0) {
                free(t);
                return;
            }
        }
        /* Throttled: a renewal keeps the state alive but is relayed at most every
         * typing_throttle_ms. */
        if (t->last_relay == 0 || now - t->last_relay >= c->opts.typing_throttle_ms) {
            t->last_relay = now ? now : 1;
            typing_relay(c, CS_UID(cs), conv, true);
        }
        timerq_add(&c->typing_tq, &t->expiry);
    }
    if (ack_id >= 0 && cs->socket) {
        json_t *f = json_object();
        reply_ok(cs, ack_id, f);
        json_decref(f);
    }
}

typedef struct {
    store_req_t req;
    chat_sock_t *cs;
    bool is_typing;
    int64_t ack_id;
    char conv[ID_SIZE];
    char arena[];
} typing_lookup_t;

static void typing_lookup_done(store_req_t *req)
{
    typing_lookup_t *x = (typing_lookup_t *)req;
    chat_t *c = x->cs->chat;
    if (req->status == STORE_OK) chat_cache_members(c, &req->u.conversation_get.conv);
    if (x->cs->socket) typing_apply(c, x->cs, x->conv, x->is_typing, x->ack_id);
    cs_unref(x->cs);
    free(x);
}

static void on_typing(chat_sock_t *cs, json_t *payload, int64_t ack_id)
{
    json_t *conv = json_object_get(payload, "conversationId");
    json_t *is = json_object_get(payload, "isTyping");
    if (!json_id(conv) || !json_is_boolean(is)) {
        reply_error(cs, ack_id, NULL, "BAD_REQUEST",
                    "typing needs conversationId (24-character hex id) and isTyping (boolean)");
        return;
    }
    const char *cid = json_string_value(conv);
    if (chat_cache_find(cs->chat, cid)) {
        typing_apply(cs->chat, cs, cid, json_is_true(is), ack_id);
        return;
    }
    size_t cap = 64 * 1024;
    typing_lookup_t *x = malloc(sizeof *x + cap);
    if (!x) return;
    memset(x, 0, sizeof *x);
    x->cs = cs_ref(cs);
    x->is_typing = json_is_true(is);
    x->ack_id = ack_id;
    memcpy(x->conv, cid, ID_SIZE);
    x->req.op = STORE_OP_CONVERSATION_GET;
    x->req.done = typing_lookup_done;
    x->req.arena.ptr = x->arena;
    x->req.arena.cap = cap;
    x->req.u.conversation_get.id = str_make(x->conv, ID_LEN);
    x->req.u.conversation_get.requester = str_cstr(CS_UID(cs));
    if (store_submit(cs->chat->store, &x->req) != 0) {
        cs_unref(x->cs);
        free(x);
    }
}

/* ---- get_status ---- */

typedef struct {
    chat_sock_t *cs;
    int64_t ack_id;
} status_reply_t;

static void get_status_done(void *ud, json_t *statuses)
{
    status_reply_t *r = ud;
    if (r->cs->socket) {
        json_t *f = json_pack("{s:O}", "statuses", statuses);
        reply_ok(r->cs, r->ack_id, f);
        json_decref(f);
    }
    cs_unref(r->cs);
    free(r);
}

static void on_get_status(chat_sock_t *cs, json_t *payload, int64_t ack_id)
{
    json_t *ids = json_object_get(payload, "userIds");
    size_t n = json_array_size(ids);
    bool ok = json_is_array(ids) && n <= STORE_IDS_MAX;
    const char *list[STORE_IDS_MAX];
    for (size_t i = 0; ok && i < n; i++) {
        json_t *id = json_array_get(ids, i);
        ok = json_is_string(id) && auth_sub_is_valid(json_string_value(id), json_string_length(id));
        if (ok) list[i] = json_string_value(id);
    }
    if (!ok) {
        reply_error(cs, ack_id, NULL, "BAD_REQUEST",
                    "get_status needs userIds: an array of at most 200 user ids");
        return;
    }
    status_reply_t *r = calloc(1, sizeof *r);
    if (!r) return;
    r->cs = cs_ref(cs);
    r->ack_id = ack_id;
    chat_statuses(cs->chat, CS_UID(cs), list, n, get_status_done, r);
}

/* ---- connection state recovery ---- */

/* The private session id is derived from the user id: any socket of that user (with a valid
 * token) may resume that user's stream, which holds only that user's own conversations. So it
 * needs no server-side state and survives restarts. */
static void pid_of(const char *user, char out[33])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char in[STORE_USER_ID_MAX + 16];
    int n = snprintf(in, sizeof in, "parlor-pid:%s", user);
    SHA256((const unsigned char *)in, (size_t)n, md);
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void chat_sock_go_live(chat_sock_t *cs)
{
    if (cs->live) return;
    /* From now on user-addressed events reach it. */
    cs->live = true;
    cs->live_next = cs->pres->live;
    cs->pres->live = cs;
}

/* ---- Socket.IO handlers ---- */

static void on_event(sio_socket_t *s, void *arg, const sio_event_t *ev)
{
    chat_sock_t *cs = sio_socket_data(s);
    if (!cs) return;
    if (!chat_budget_admit(cs, ev->ack_id)) return;
    /* The hot event is read in place; the same lone-surrogate refusal as jansson's below. */
    if (str_eq_cstr(ev->name, "send_message") &&
        !json_has_lone_surrogate(ev->data.ptr, ev->data.len)) {
        on_send_message(cs, ev->data, ev->ack_id);
        return;
    }
    /* NUL is allowed by the parser so that it is refused with a clear message, not dropped. */
    json_t *args = json_loadb(ev->data.ptr, ev->data.len, JSON_ALLOW_NUL, NULL);
    json_t *payload = json_array_get(args, 1);
    if (!payload) payload = json_null();
    if (!args) /* valid for JSON.parse, not for us: a lone surrogate in a string */
        reply_error(cs, ev->ack_id, NULL, "BAD_REQUEST",
                    "the arguments are not valid UTF-8 JSON (a lone surrogate?)");
    else if (str_eq_cstr(ev->name, "mark_read"))
        on_mark_read(cs, payload, ev->ack_id);
    else if (str_eq_cstr(ev->name, "typing"))
        on_typing(cs, payload, ev->ack_id);
    else if (str_eq_cstr(ev->name, "get_status"))
        on_get_status(cs, payload, ev->ack_id);
    else
        reply_error(cs, ev->ack_id, NULL, "BAD_REQUEST", "unknown event");
    json_decref(args);
}

static int refuse(buf_t *err, const char *message, const char *code, const char *why,
                  uint32_t retry_after_ms)
{
    buf_printf(err, "{\"message\":\"%s\",\"data\":{\"code\":\"%s\",\"message\":\"%s\"", message,
               code, why);
    if (retry_after_ms) buf_printf(err, ",\"retryAfterMs\":%u", retry_after_ms);
    buf_append_str(err, "}}");
    return -1;
}

/* A non-negative decimal that fits an int64 comfortably. */
static bool decimal(const char *s)
{
    return s && *s && strlen(s) < 19 && strspn(s, "0123456789") == strlen(s);
}

/* Reads back a pid issued as "<hash>-<pos>-<8 random>" for the user whose hash is given:
 * only that exact form (canonical decimal, no leading zero) is accepted, so the text can be
 * made again from pos and rnd. */
static bool pid_parse(const char *pid, const char *hash, int64_t *pos, char rnd[9])
{
    if (!pid || strncmp(pid, hash, 32) != 0 || pid[32] != '-') return false;
    const char *digits = pid + 33, *dash = strchr(digits, '-');
    size_t n = dash ? (size_t)(dash - digits) : 0;
    if (n == 0 || n > 18 || (digits[0] == '0' && n > 1) || strspn(digits, "0123456789") != n ||
        strlen(dash + 1) != 8 || !randid_valid(dash + 1, 8))
        return false;
    *pos = strtoll(digits, NULL, 10);
    memcpy(rnd, dash + 1, 9);
    return true;
}

static int on_authorize(sio_socket_t *s, void *arg, str_t auth, buf_t *err)
{
    chat_t *c = arg;
    str_t token = STR_NULL;
    json_t *a = auth.len ? json_loadb(auth.ptr, auth.len, 0, NULL) : NULL;
    json_t *t = json_object_get(a, "token");
    if (json_is_string(t)) token = str_make(json_string_value(t), json_string_length(t));
    /* An Engine.IO v3 client (socket.io-client 2.x) sends it in the handshake query. */
    char qtoken[4096];
    int ql = token.ptr
                 ? -1
                 : http_query_param(sio_socket_handshake_query(s), "token", qtoken, sizeof qtoken);
    if (ql > 0) token = str_make(qtoken, (size_t)ql);
    chat_user_t user;
    int rc = chat_authenticate(c, token, &user);
    if (rc != AUTH_OK) {
        json_decref(a);
        log_debug_throttled("socket refused: %s", auth_error_code(rc));
        return refuse(err, "unauthorized", auth_error_code(rc),
                      rc == AUTH_ERR_MISSING   ? "a token is required (auth: { token })"
                      : rc == AUTH_ERR_EXPIRED ? "the token has expired"
                                               : "the token is not valid",
                      0);
    }
    if (limiter_acquire(&c->user_conns, user.id) < 0) {
        json_decref(a);
        log_info_throttled("socket of %s refused: too many connections", user.id);
        return refuse(err, "rate_limited", "RATE_LIMITED", "too many connections for this user",
                      1000);
    }
    chat_sock_t *cs = calloc(1, sizeof *cs);
    /* The user's presence entry holds its id for the socket; it is counted on connection,
     * which follows at once. */
    presence_t *pres = cs ? presence_get(c, user.id) : NULL;
    if (!pres) {
        free(cs);
        json_decref(a);
        limiter_release(&c->user_conns, user.id);
        return -1;
    }
    cs->chat = c;
    cs->socket = s;
    cs->pres = pres;
    chat_record_user(c, &user);
    cs->refs = 1;
    cs->recover_from = -1;
    /* pid = "<hash of the user>-<position when the session started>-<random>". A reconnect
     * that brings a pid of this user back resumes from its offset (the last event it got) or,
     * when it got none, from the position in the pid; answering with the same pid tells
     * socket.io-client that the session was recovered. The random part tells the sessions of
     * one user apart, so each is spared the messages it sent itself. Only the position and the
     * random part are kept; a pid is accepted back only in the form it was issued in, so the
     * same text can be made again for the answer. */
    char hash[33];
    pid_of(user.id, hash);
    randid_generate(cs->pid_rnd, 8);
    cs->pid_pos = c->last_pos;
    const char *off = json_string_value(json_object_get(a, "offset"));
    if (pid_parse(json_string_value(json_object_get(a, "pid")), hash, &cs->pid_pos, cs->pid_rnd))
        cs->recover_from = decimal(off) ? strtoll(off, NULL, 10) : cs->pid_pos;
    if (cs->recover_from >= 0 && !chat_recovery_admit(c, cs->recover_from)) {
        /* Too much to replay: a new session (recovered false); the client catches up over
         * REST (docs/api.md). */
        cs->recover_from = -1;
        randid_generate(cs->pid_rnd, 8);
        cs->pid_pos = c->last_pos;
    }
    json_decref(a);
    char key[ACKED_KEY_SIZE];
    acked_t *own = chat_acked_of(c, chat_acked_key(cs, key), false);
    if (own) own->expires_ms = 0; /* in use again */
    buf_printf(err, "\"pid\":\"%s-%lld-%s\"", hash, (long long)cs->pid_pos, cs->pid_rnd);
    sio_socket_set_data(s, cs);
    return 0;
}

static void on_connection(sio_socket_t *s, void *arg)
{
    chat_sock_t *cs = sio_socket_data(s);
    chat_t *c = cs->chat;
    presence_connect(c, cs);
    if (cs->recover_from >= 0) {
        chat_recovery_start(cs, cs->recover_from);
    } else {
        chat_sock_go_live(cs);
    }
}

static void on_disconnect(sio_socket_t *s, void *arg, const char *reason)
{
    chat_sock_t *cs = sio_socket_data(s);
    if (!cs) return;
    chat_t *c = cs->chat;
    sio_socket_set_data(s, NULL);
    cs->socket = NULL;
    char key[ACKED_KEY_SIZE];
    acked_t *own = chat_acked_of(c, chat_acked_key(cs, key), false);
    if (own) own->expires_ms = uv_now(c->loop) + ACKED_LINGER_MS;
    limiter_release(&c->user_conns, CS_UID(cs));
    chat_recovery_cancel(cs);
    presence_disconnect(c, cs);
    cs_unref(cs);
}

static const sio_nsp_handler_t chat_nsp = {on_authorize, on_connection, on_event, on_disconnect};

/* ---- lifecycle ---- */

chat_t *chat_new(uv_loop_t *loop, sio_server_t *sio, store_t *store, const auth_jwt_t *jwt,
                 const chat_options_t *opts)
{
    chat_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->loop = loop;
    c->sio = sio;
    c->store = store;
    c->jwt = jwt;
    c->opts = *opts;
    c->nbuckets = 1 << 14;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    c->npbuckets = 64;
    c->pbuckets = calloc(c->npbuckets, sizeof *c->pbuckets);
    double window = opts->rate_connections_window_s > 0 ? opts->rate_connections_window_s : 1;
    if (!c->buckets || !c->pbuckets ||
        limiter_init(&c->msg_limit, opts->rate_messages_per_s, opts->rate_messages_burst, 0) ||
        limiter_init(&c->rest_limit, opts->rate_rest_per_s, opts->rate_rest_burst, 0) ||
        limiter_init(&c->ip_limit, opts->rate_connections_per_ip / window,
                     opts->rate_connections_per_ip, opts->max_connections_per_ip) ||
        limiter_init(&c->user_conns, 0, 0, opts->max_connections_per_user) ||
        strmap_init(&c->typing) || strmap_init(&c->acked) || strmap_init(&c->marks)) {
        chat_free(c);
        return NULL;
    }
    timerq_init(loop, &c->grace_tq, opts->presence_grace_ms, on_grace_over);
    timerq_init(loop, &c->typing_tq, opts->typing_timeout_ms, on_typing_expired);
    uv_unref((uv_handle_t *)&c->grace_tq.timer);
    uv_unref((uv_handle_t *)&c->typing_tq.timer);
    uv_timer_init(loop, &c->sweep);
    c->sweep.data = c;
    uv_timer_start(&c->sweep, on_sweep, 60000, 60000);
    uv_unref((uv_handle_t *)&c->sweep);
    chat_recovery_init(c);
    uv_timer_init(loop, &c->kick_timer);
    c->kick_timer.data = c;
    uv_unref((uv_handle_t *)&c->kick_timer);
    c->nsp = sio_server_add_nsp(sio, "/", &chat_nsp, c);
    return c;
}

void chat_shutdown(chat_t *c)
{
    /* Stopping: whoever is still here (or in the grace period) was seen now; write it before
     * the store closes. */
    for (size_t i = 0; i < c->npbuckets; i++)
        while (c->pbuckets[i]) {
            record_seen(c, c->pbuckets[i]);
            presence_drop(c, c->pbuckets[i]);
        }
}

void chat_close(chat_t *c)
{
    timerq_close(&c->grace_tq);
    timerq_close(&c->typing_tq);
    uv_close((uv_handle_t *)&c->sweep, NULL);
    chat_recovery_close(c);
    while (c->kick) { /* their sockets are gone by now */
        chat_sock_t *cs = c->kick;
        c->kick = cs->kick_next;
        cs_unref(cs);
    }
    uv_close((uv_handle_t *)&c->kick_timer, NULL);
}

void chat_free(chat_t *c)
{
    if (!c) return;
    if (c->buckets) cache_clear(c);
    free(c->buckets);
    free(c->recorded);
    limiter_free(&c->msg_limit);
    limiter_free(&c->rest_limit);
    limiter_free(&c->ip_limit);
    limiter_free(&c->user_conns);
    for (size_t i = 0; c->pbuckets && i < c->npbuckets; i++)
        for (presence_t *p = c->pbuckets[i], *next; p; p = next) {
            next = p->hnext;
            free(p);
        }
    free(c->pbuckets);
    strmap_free(&c->typing, free);
    strmap_free(&c->acked, free);
    strmap_free(&c->marks, free);
    free(c);
}

store_t *chat_store(chat_t *c)
{
    return c->store;
}

const auth_jwt_t *chat_jwt(chat_t *c)
{
    return c->jwt;
}
