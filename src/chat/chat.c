/* The chat layer: socket authentication, send_message, mark_read and live delivery. */
#include "chat/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/chat_json.h"
#include "core/id.h"
#include "core/log.h"

#define CACHE_MAX_ENTRIES 200000

typedef struct chat_sock chat_sock_t;
typedef struct send_ctx send_ctx_t;

/* The members of one conversation, cached: conversations never change membership. */
typedef struct members_entry {
    char id[ID_SIZE];
    struct members_entry *next;
    uint32_t n;
    char **users;
} members_entry_t;

struct chat {
    uv_loop_t *loop;
    sio_server_t *sio;
    sio_nsp_t *nsp;
    store_t *store;
    const auth_jwt_t *jwt;
    chat_options_t opts;
    members_entry_t **buckets;
    size_t nbuckets, nentries;
    /* Users already recorded in the store by this process (id -> "name\nrole"). */
    json_t *recorded;
};

/* Per connected socket. Requests in flight hold a reference, so a reply can find out that
 * its socket disconnected meanwhile (socket == NULL) instead of touching freed memory. */
struct chat_sock {
    chat_t *chat;
    sio_socket_t *socket; /* NULL once disconnected */
    chat_user_t user;
    unsigned refs;
};

static chat_sock_t *cs_ref(chat_sock_t *cs)
{
    if (cs) cs->refs++;
    return cs;
}

static void cs_unref(chat_sock_t *cs)
{
    if (cs && --cs->refs == 0) free(cs);
}

struct send_ctx {
    store_req_t req;
    chat_t *chat;
    chat_sock_t *origin; /* the sending socket (a reference); NULL for REST */
    chat_user_t user;
    json_t *payload;   /* keeps the borrowed input strings alive */
    chat_send_done done;
    void *ud;
    bool looked_up;    /* the conversation's members were fetched first */
    char *arena;
};


/* ---- small helpers ---- */

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static size_t id_hash(const char *id)
{
    size_t h = 1469598103934665603ull;
    for (int i = 0; i < ID_LEN; i++) h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
    return h;
}

static members_entry_t *cache_find(chat_t *c, const char *conv)
{
    members_entry_t *e = c->buckets[id_hash(conv) & (c->nbuckets - 1)];
    for (; e; e = e->next)
        if (memcmp(e->id, conv, ID_LEN) == 0) return e;
    return NULL;
}

static void cache_clear(chat_t *c)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        members_entry_t *e = c->buckets[i];
        while (e) {
            members_entry_t *next = e->next;
            for (uint32_t k = 0; k < e->n; k++) free(e->users[k]);
            free(e->users);
            free(e);
            e = next;
        }
        c->buckets[i] = NULL;
    }
    c->nentries = 0;
}

static void cache_put(chat_t *c, const char *conv, const str_t *users, size_t n)
{
    if (cache_find(c, conv)) return;
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

static void room_of(const char *user, char *out, size_t cap)
{
    snprintf(out, cap, "u:%s", user);
}

void chat_emit_to_user(chat_t *c, const char *user, const sio_socket_t *except, const char *event,
                       json_t *doc)
{
    json_t *arr = json_pack("[sO]", event, doc);
    size_t len;
    char *text = chat_dumps(arr, &len);
    json_decref(arr);
    if (!text) return;
    char room[STORE_USER_ID_MAX + 8];
    room_of(user, room, sizeof room);
    sio_nsp_emit(c->nsp, room, except, str_make(text, len), NULL, 0);
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

void chat_record_user(chat_t *c, const chat_user_t *u)
{
    char seen[256];
    snprintf(seen, sizeof seen, "%s\n%s", u->name, u->role);
    json_t *prev = json_object_get(c->recorded, u->id);
    if (prev && strcmp(json_string_value(prev), seen) == 0) return;
    json_object_set_new(c->recorded, u->id, json_string(seen));
    upsert_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return;
    ctx->user = *u;
    ctx->req.op = STORE_OP_USER_UPSERT;
    ctx->req.done = upsert_done;
    ctx->req.u.user_upsert.id = str_cstr(ctx->user.id);
    ctx->req.u.user_upsert.name = ctx->user.name[0] ? str_cstr(ctx->user.name) : STR_NULL;
    ctx->req.u.user_upsert.role = ctx->user.role[0] ? str_cstr(ctx->user.role) : STR_NULL;
    if (store_submit(c->store, &ctx->req) != 0) free(ctx);
}

/* ---- the send pipeline ---- */

static void send_finish(send_ctx_t *s, int status, const char *code, const char *msg,
                        json_t *doc, bool dup)
{
    s->done(s->ud, status, code, msg, doc, dup);
    cs_unref(s->origin);
    json_decref(s->payload);
    free(s->arena);
    free(s);
}

static void send_fail_store(send_ctx_t *s, int st)
{
    const char *code, *msg;
    int status = chat_store_error(st, &code, &msg);
    if (st == STORE_E_FORBIDDEN && s->req.op == STORE_OP_MESSAGE_INSERT &&
        s->req.u.message_insert.file_id.ptr) {
        status = 403;
        code = "FORBIDDEN";
        msg = "only the uploader may attach a file";
    }
    send_finish(s, status, code, msg, NULL, false);
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

static void deliver(send_ctx_t *s, json_t *doc)
{
    chat_t *c = s->chat;
    const store_message_t *m = &s->req.u.message_insert.msg;
    json_t *arr = json_pack("[sO]", "receive_message", doc);
    size_t len;
    char *text = chat_dumps(arr, &len);
    json_decref(arr);
    if (!text) return;
    sio_built_t b;
    if (sio_build_event(c->nsp, str_make(text, len), NULL, 0, &b) == 0) {
        /* The origin socket learns of its message from the ack (CONTRACT.md), not twice. */
        const sio_socket_t *except = s->origin ? s->origin->socket : NULL;
        members_entry_t *e = cache_find(c, m->conversation_id);
        char room[STORE_USER_ID_MAX + 8];
        if (e) {
            for (uint32_t i = 0; i < e->n; i++) {
                room_of(e->users[i], room, sizeof room);
                sio_nsp_send_built(c->nsp, room, except, &b);
            }
        } else {
            /* A direct conversation whose members are on the message itself. */
            room_of(s->user.id, room, sizeof room);
            sio_nsp_send_built(c->nsp, room, except, &b);
            if (m->recipient.ptr && m->recipient.len < STORE_USER_ID_MAX + 1) {
                char r[STORE_USER_ID_MAX + 1];
                memcpy(r, m->recipient.ptr, m->recipient.len);
                r[m->recipient.len] = '\0';
                room_of(r, room, sizeof room);
                sio_nsp_send_built(c->nsp, room, except, &b);
            }
        }
        sio_built_free(&b);
    }
    free(text);
}

static void insert_done(store_req_t *req)
{
    send_ctx_t *s = (send_ctx_t *)req;
    if (req->status != STORE_OK) {
        send_fail_store(s, req->status);
        return;
    }
    store_message_insert_t *in = &req->u.message_insert;
    if (!cache_find(s->chat, in->msg.conversation_id) && in->msg.recipient.ptr) {
        str_t users[2] = {in->msg.sender, in->msg.recipient};
        cache_put(s->chat, in->msg.conversation_id, users, 2);
    }
    json_t *doc = chat_message_json(&in->msg);
    if (!doc) {
        send_finish(s, 500, "INTERNAL", "could not encode the message", NULL, false);
        return;
    }
    if (!in->duplicate) deliver(s, doc);
    send_finish(s, in->duplicate ? 200 : 201, NULL, NULL, doc, in->duplicate);
    json_decref(doc);
}

static void submit_insert(send_ctx_t *s)
{
    s->req.op = STORE_OP_MESSAGE_INSERT;
    s->req.done = insert_done;
    if (store_submit(s->chat->store, &s->req) != 0)
        send_finish(s, 503, "INTERNAL", "the server is shutting down", NULL, false);
}

/* The insert's inputs, from the validated payload (kept alive by s->payload). */
static void fill_insert(send_ctx_t *s)
{
    json_t *p = s->payload;
    json_t *rid = json_object_get(p, "recipientId"), *cid = json_object_get(p, "conversationId");
    json_t *content = json_object_get(p, "content"), *fid = json_object_get(p, "fileId");
    json_t *cmid = json_object_get(p, "clientMsgId");
    const char *type = json_string_value(json_object_get(p, "type"));
    store_message_insert_t in = {0};
    in.sender = str_cstr(s->user.id);
    if (json_is_string(cid)) in.conversation_id = str_cstr(json_string_value(cid));
    if (json_is_string(rid)) in.recipient = str_cstr(json_string_value(rid));
    in.content = json_is_string(content)
                     ? str_make(json_string_value(content), json_string_length(content))
                     : STR_LIT("");
    in.type = !type || !strcmp(type, "text") ? STORE_MSG_TEXT
              : !strcmp(type, "image")        ? STORE_MSG_IMAGE
                                              : STORE_MSG_FILE;
    if (json_is_string(fid)) in.file_id = str_make(json_string_value(fid), json_string_length(fid));
    if (json_is_string(cmid))
        in.client_msg_id = str_make(json_string_value(cmid), json_string_length(cmid));
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

static void send_start(chat_t *c, const chat_user_t *user, chat_sock_t *origin, json_t *payload,
                       chat_send_done done, void *ud)
{
#define REFUSE(msg)                                                                                \
    do {                                                                                           \
        done(ud, 400, "BAD_REQUEST", msg, NULL, false);                                            \
        return;                                                                                    \
    } while (0)
    if (!json_is_object(payload)) REFUSE("the message must be an object");
    json_t *rid = json_object_get(payload, "recipientId");
    json_t *cid = json_object_get(payload, "conversationId");
    json_t *content = json_object_get(payload, "content");
    json_t *type = json_object_get(payload, "type");
    json_t *fid = json_object_get(payload, "fileId");
    json_t *cmid = json_object_get(payload, "clientMsgId");
    if (rid && json_is_null(rid)) rid = NULL;
    if (cid && json_is_null(cid)) cid = NULL;
    if (fid && json_is_null(fid)) fid = NULL;
    if (cmid && json_is_null(cmid)) cmid = NULL;
    if (!rid && !cid) REFUSE("recipientId or conversationId is required");
    if (rid && cid) REFUSE("give recipientId or conversationId, not both");
    if (rid && (!json_is_string(rid) ||
                !user_id_valid(json_string_value(rid), json_string_length(rid))))
        REFUSE("recipientId must be 1-64 characters of A-Z a-z 0-9 _ -");
    if (rid && !strcmp(json_string_value(rid), user->id))
        REFUSE("cannot send a message to yourself");
    if (cid && (!json_is_string(cid) ||
                !id_valid(str_make(json_string_value(cid), json_string_length(cid)))))
        REFUSE("conversationId must be a 24-character hex id");
    const char *t = "text";
    if (type && !json_is_null(type)) {
        if (!json_is_string(type)) REFUSE("type must be text, image or file");
        t = json_string_value(type);
        if (strcmp(t, "text") && strcmp(t, "image") && strcmp(t, "file"))
            REFUSE("type must be text, image or file");
    }
    bool is_text = !strcmp(t, "text");
    if (is_text && fid) REFUSE("fileId is only for image and file messages");
    if (!is_text && !fid) REFUSE("image and file messages need a fileId");
    if (fid && (!json_is_string(fid) ||
                !id_valid(str_make(json_string_value(fid), json_string_length(fid)))))
        REFUSE("fileId must be a 24-character hex id");
    if (content && !json_is_null(content) && !json_is_string(content))
        REFUSE("content must be a string");
    if (is_text && !json_is_string(content)) REFUSE("content is required");
    if (json_is_string(content)) {
        const char *why = content_problem(json_string_value(content), json_string_length(content),
                                          c->opts.max_message_length, is_text);
        if (why) REFUSE(why);
    }
    if (cmid) {
        if (!json_is_string(cmid) || json_string_length(cmid) == 0 ||
            json_string_length(cmid) > STORE_CLIENT_MSG_ID_MAX)
            REFUSE("clientMsgId must be a non-empty string of at most 128 bytes");
        const char *why = content_problem(json_string_value(cmid), json_string_length(cmid),
                                          STORE_CLIENT_MSG_ID_MAX, false);
        if (why) REFUSE("clientMsgId must not contain control characters");
    }
#undef REFUSE
    size_t clen = json_is_string(content) ? json_string_length(content) : 0;
    send_ctx_t *s = calloc(1, sizeof *s);
    size_t cap = 4096 + 2 * clen;
    char *arena = malloc(cap);
    if (!s || !arena) {
        free(s);
        free(arena);
        done(ud, 500, "INTERNAL", "out of memory", NULL, false);
        return;
    }
    s->chat = c;
    s->user = *user;
    s->payload = json_incref(payload);
    s->done = done;
    s->ud = ud;
    s->arena = arena;
    s->req.arena.ptr = arena;
    s->req.arena.cap = cap;
    s->origin = cs_ref(origin);
    if (cid) {
        members_entry_t *e = cache_find(c, json_string_value(cid));
        if (!e) {
            /* First send to this conversation since start: learn its members first, so that
             * delivery right after the commit needs no store read. */
            s->req.op = STORE_OP_CONVERSATION_GET;
            s->req.done = lookup_done;
            s->req.u.conversation_get.id = str_cstr(json_string_value(cid));
            s->req.u.conversation_get.requester = str_cstr(s->user.id);
            if (store_submit(c->store, &s->req) != 0)
                send_finish(s, 503, "INTERNAL", "the server is shutting down", NULL, false);
            return;
        }
        if (!entry_has(e, user->id)) {
            send_finish(s, 404, "NOT_FOUND", "no such conversation", NULL, false);
            return;
        }
    }
    fill_insert(s);
    submit_insert(s);
}

void chat_send(chat_t *c, const chat_user_t *user, json_t *payload, chat_send_done done, void *ud)
{
    send_start(c, user, NULL, payload, done, ud);
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
static void reply_error(chat_sock_t *cs, int64_t ack_id, json_t *client_msg_id, const char *code,
                        const char *message)
{
    json_t *err = chat_error_json(code, message);
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

/* {ok:true, ...fields} */
static void reply_ok(chat_sock_t *cs, int64_t ack_id, json_t *fields)
{
    if (ack_id < 0) return;
    json_t *obj = json_pack("{s:b}", "ok", 1);
    json_object_update(obj, fields);
    ack_json(cs, ack_id, obj);
    json_decref(obj);
}

typedef struct {
    chat_sock_t *cs; /* a reference */
    int64_t ack_id;
    json_t *client_msg_id;
} reply_t;

static void socket_send_done(void *ud, int status, const char *code, const char *message,
                             json_t *doc, bool dup)
{
    reply_t *r = ud;
    if (r->cs->socket) {
        if (code) {
            reply_error(r->cs, r->ack_id, r->client_msg_id, code, message);
        } else {
            json_t *f = json_pack("{s:O}", "message", doc);
            reply_ok(r->cs, r->ack_id, f);
            json_decref(f);
        }
    }
    cs_unref(r->cs);
    json_decref(r->client_msg_id);
    free(r);
}

static void on_send_message(chat_sock_t *cs, json_t *payload, int64_t ack_id)
{
    reply_t *r = calloc(1, sizeof *r);
    if (!r) return;
    r->cs = cs_ref(cs);
    r->ack_id = ack_id;
    r->client_msg_id = json_incref(json_object_get(payload, "clientMsgId"));
    send_start(cs->chat, &cs->user, cs, payload, socket_send_done, r);
}

/* messages_read to every member (and so the reader's other sockets). */
void chat_publish_read(chat_t *c, const char *reader, const char *message_id,
                       const store_mark_read_t *mr)
{
    char at[64];
    chat_iso_time(mr->read_at, at);
    json_t *doc = json_pack("{s:s, s:s, s:I, s:s, s:s}", "conversationId", mr->conv_id,
                            "readerId", reader, "seq", (json_int_t)mr->seq, "messageId",
                            message_id, "readAt", at);
    members_entry_t *e = cache_find(c, mr->conv_id);
    if (e) {
        for (uint32_t i = 0; i < e->n; i++)
            chat_emit_to_user(c, e->users[i], NULL, "messages_read", doc);
    } else {
        chat_emit_to_user(c, reader, NULL, "messages_read", doc);
    }
    json_decref(doc);
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
    read_ctx_t *r = calloc(1, sizeof *r);
    if (!r) return;
    r->chat = cs->chat;
    r->cs = cs_ref(cs);
    r->ack_id = ack_id;
    snprintf(r->user, sizeof r->user, "%s", cs->user.id);
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

static void on_event(sio_socket_t *s, void *arg, const sio_event_t *ev)
{
    chat_sock_t *cs = sio_socket_data(s);
    if (!cs) return;
    /* NUL is allowed by the parser so that it is refused with a clear message, not dropped. */
    json_t *args = json_loadb(ev->data.ptr, ev->data.len, JSON_ALLOW_NUL, NULL);
    json_t *payload = json_array_get(args, 1);
    if (!payload) payload = json_null();
    if (str_eq_cstr(ev->name, "send_message"))
        on_send_message(cs, payload, ev->ack_id);
    else if (str_eq_cstr(ev->name, "mark_read"))
        on_mark_read(cs, payload, ev->ack_id);
    else
        reply_error(cs, ev->ack_id, NULL, "BAD_REQUEST", "unknown event");
    json_decref(args);
}

static int on_authorize(sio_socket_t *s, void *arg, str_t auth, buf_t *err)
{
    chat_t *c = arg;
    str_t token = STR_NULL;
    json_t *a = auth.len ? json_loadb(auth.ptr, auth.len, 0, NULL) : NULL;
    json_t *t = json_object_get(a, "token");
    if (json_is_string(t)) token = str_make(json_string_value(t), json_string_length(t));
    chat_user_t user;
    int rc = chat_authenticate(c, token, &user);
    json_decref(a);
    if (rc != AUTH_OK) {
        const char *code = auth_error_code(rc);
        const char *why = rc == AUTH_ERR_MISSING   ? "a token is required (auth: { token })"
                          : rc == AUTH_ERR_EXPIRED ? "the token has expired"
                                                   : "the token is not valid";
        log_debug("socket refused: %s", code);
        buf_printf(err, "{\"message\":\"unauthorized\",\"data\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                   code, why);
        return -1;
    }
    chat_sock_t *cs = calloc(1, sizeof *cs);
    if (!cs) return -1;
    cs->chat = c;
    cs->socket = s;
    cs->user = user;
    cs->refs = 1;
    sio_socket_set_data(s, cs);
    return 0;
}

static void on_connection(sio_socket_t *s, void *arg)
{
    chat_sock_t *cs = sio_socket_data(s);
    char room[STORE_USER_ID_MAX + 8];
    room_of(cs->user.id, room, sizeof room);
    sio_socket_join(s, room);
    chat_record_user(cs->chat, &cs->user);
}

static void on_disconnect(sio_socket_t *s, void *arg, const char *reason)
{
    chat_sock_t *cs = sio_socket_data(s);
    if (!cs) return;
    sio_socket_set_data(s, NULL);
    cs->socket = NULL;
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
    c->recorded = json_object();
    c->nsp = sio_server_add_nsp(sio, "/", &chat_nsp, c);
    if (!c->buckets || !c->recorded || !c->nsp) {
        chat_free(c);
        return NULL;
    }
    return c;
}

void chat_free(chat_t *c)
{
    if (!c) return;
    if (c->buckets) cache_clear(c);
    free(c->buckets);
    json_decref(c->recorded);
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
