/* The send pipeline shared by send_message and POST /api/chat/messages: validation, the rate
 * limit, the membership check (a cache miss asks the store once), the insert, then
 * receive_message to every member's sockets through the delivery seam, and the answer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"

typedef struct send_ctx send_ctx_t;
struct send_ctx {
    store_req_t req;
    chat_t *chat;
    chat_sock_t *origin; /* the sending socket (a reference); NULL for REST */
    chat_user_t user;
    chat_send_args_t in; /* the validated input, its strings copied after the arena */
    chat_send_done done;
    void *ud;
    bool pooled;         /* from c->send_pool (else malloc) */
    bool looked_up;      /* the conversation's members were fetched first */
    bool about;          /* recipientId with a context: the conversation is opened first */
    store_context_t ctx; /* its context (strings after the inputs) */
    char conv[ID_SIZE];  /* the conversation opened for it */
    char arena[];        /* the store request's arena, then the input strings */
};

#define DOC_KEEP 8192 /* c->doc is kept between messages up to this size */
/* A send's context from c->send_pool when its inputs are small: its size. */
#define SEND_POOLED    (sizeof(send_ctx_t) + 4096 + 2 * 1024 + 1024)
#define SEND_POOL_MAX  32 /* ~250 KiB at most kept */
#define REPLY_POOL_MAX 256

/* err NULL: success (doc is the message, dup whether it was a repeat). */
static void send_end(send_ctx_t *s, const chat_err_t *err, str_t doc, bool dup)
{
    int64_t pos =
        !err && s->req.op == STORE_OP_MESSAGE_INSERT ? s->req.u.message_insert.msg.pos : 0;
    s->done(s->ud, err, doc, dup, pos);
    cs_unref(s->origin);
    if (s->pooled)
        chat_pool_put(&s->chat->send_pool, s);
    else
        free(s);
}

static void send_finish(send_ctx_t *s, int status, const char *code, const char *msg, str_t doc,
                        bool dup)
{
    chat_err_t err = {status, code, msg, 0};
    send_end(s, code ? &err : NULL, doc, dup);
}

static void send_fail_store(send_ctx_t *s, int st)
{
    chat_err_t e;
    chat_store_err(st, &e);
    if (s->req.op == STORE_OP_MESSAGE_INSERT && s->req.u.message_insert.file_id.ptr) {
        if (st == STORE_E_FORBIDDEN) {
            e = (chat_err_t){403, "FORBIDDEN", "fileId must be a file you uploaded", 0};
        } else if (st == STORE_E_INVALID && s->req.u.message_insert.type == STORE_MSG_IMAGE) {
            e.message = "an image message needs an image file";
        }
    }
    send_end(s, &e, STR_NULL, false);
}

/* Counts code points of valid UTF-8 and checks for characters a message may not hold. */
static const char *content_problem(const char *p, size_t len, size_t max_chars, bool need_text)
{
    size_t chars = 0, i = 0;
    bool blank = true;
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = ones * 0x80;
    while (i < len) {
        /* Eight bytes at a time while they are printable ASCII (0x20-0x7e): no problem there,
         * one character each (byte by byte it took ~20 instructions a byte). */
        while (len - i >= 8) {
            uint64_t x, d;
            memcpy(&x, p + i, 8);
            d = x ^ (ones * 0x7f);
            if ((x | ((x - ones * 0x20) & ~x) | ((d - ones) & ~d)) & highs) break;
            chars += 8;
            if (x != ones * ' ') blank = false;
            i += 8;
        }
        if (i >= len) break;
        unsigned char ch = (unsigned char)p[i++];
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

const char *chat_content_problem(const char *p, size_t len, size_t max_chars, bool need_text)
{
    return content_problem(p, len, max_chars, need_text);
}

static bool user_id_valid(const char *s, size_t n)
{
    return auth_sub_is_valid(s, n);
}

/* me: the conversation's cached members, or NULL. */
static void deliver(send_ctx_t *s, str_t doc, const members_entry_t *me)
{
    chat_t *c = s->chat;
    const store_message_t *m = &s->req.u.message_insert.msg;
    /* The last argument, a string, is the connection-state-recovery offset (socket.io-client
     * remembers it and sends it back on reconnect). */
    char pos[24], *p = chat_i64_text(m->pos, pos);
    /* Gathered straight into the one frame every member's sockets share. */
    const str_t args[] = {doc, STR_LIT(",\""), str_make(p, (size_t)(pos + sizeof pos - p)),
                          STR_LIT("\"")};
    /* A direct conversation whose members are not cached: they are on the message itself. */
    str_t users[2] = {str_cstr(s->user.id), m->recipient};
    const int64_t prevs[2] = {s->req.u.message_insert.prev_sender,
                              s->req.u.message_insert.prev_recipient};
    size_t nusers = m->recipient.ptr && m->recipient.len <= STORE_USER_ID_MAX ? 2 : 1;
    chat_delivery_t d = {
        .to = me ? CHAT_TO_CONV : CHAT_TO_USERS,
        .conv = m->conversation_id,
        .users = users,
        .nusers = nusers,
        /* The origin socket learns of its message from the ack (docs/api.md), not twice. */
        .except = s->origin && s->origin->socket ? s->origin->sid : 0,
        .event = "receive_message",
        .args = args,
        .nargs = 4,
        .pos = m->pos,
        .prev_users = users,
        .prevs = prevs,
        .nprevs = nusers,
        .sender = s->user.id,
    };
    chat_deliver(c, &d);
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
    if (!in->duplicate) chat_typing_stop(s->chat, s->user.id, in->msg.conversation_id);
    members_entry_t *me = chat_cache_find(s->chat, in->msg.conversation_id);
    if (!me && in->msg.recipient.ptr) {
        str_t users[2] = {in->msg.sender, in->msg.recipient};
        chat_cache_put(s->chat, in->msg.conversation_id, users, 2);
        me = chat_cache_find(s->chat, in->msg.conversation_id);
    }
    if (me && !in->duplicate && in->msg.seq > me->last_seq) me->last_seq = in->msg.seq;
    /* Encoded once, as text: the delivery, the ack and the REST answer all embed it. Into the
     * chat's buffer, kept from one message to the next (not while one is being used: nothing
     * below comes back here, but a local one is the safe answer if it did). */
    chat_t *c = s->chat;
    buf_t local, *doc = c->doc_busy ? &local : &c->doc;
    if (doc == &local) buf_init(&local);
    c->doc_busy = c->doc_busy || doc == &c->doc;
    doc->len = 0;
    buf_reserve(doc, 512 + in->msg.content.len + in->msg.client_msg_id.len);
    str_t text = STR_NULL;
    if (chat_message_text(&in->msg, doc) < 0) {
        send_finish(s, 500, "INTERNAL", "could not encode the message", STR_NULL, false);
    } else {
        text = str_make(doc->data, doc->len);
        bool dup = in->duplicate;
        if (!dup) {
            chat_history_append_to(c, me, in->msg.seq, text);
            deliver(s, text, me);
        }
        send_finish(s, dup ? 200 : 201, NULL, NULL, text, dup);
    }
    if (doc == &local) {
        buf_free(&local);
    } else {
        c->doc_busy = false;
        if (c->doc.cap > DOC_KEEP) buf_free(&c->doc); /* a long message's: not kept */
    }
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
    if (s->about) { /* the conversation about the context, opened first (open_done) */
        in.conversation_id = str_make(s->conv, ID_LEN);
        in.recipient = STR_NULL;
    }
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

/* The conversation about the context is open (found or created): send into it. */
static void open_done(store_req_t *req)
{
    send_ctx_t *s = (send_ctx_t *)req;
    if (req->status != STORE_OK) {
        send_fail_store(s, req->status);
        return;
    }
    const store_conversation_t *conv = &req->u.direct_open.conv;
    memcpy(s->conv, conv->id, ID_SIZE);
    chat_cache_members(s->chat, conv);
    memset(&req->u, 0, sizeof req->u);
    fill_insert(s);
    submit_insert(s);
}

static void open_submit(send_ctx_t *s)
{
    s->req.op = STORE_OP_DIRECT_OPEN;
    s->req.done = open_done;
    s->req.u.direct_open.user = str_cstr(s->user.id);
    s->req.u.direct_open.other = s->in.recipient_id.s;
    s->req.u.direct_open.context = s->ctx;
    if (store_submit(s->chat->store, &s->req) != 0)
        send_finish(s, 503, "INTERNAL", "the server is shutting down", STR_NULL, false);
}

static void about_blocked(chat_t *c, void *arg, bool blocked, int status)
{
    (void)c;
    send_ctx_t *s = arg;
    if (status != STORE_OK)
        send_fail_store(s, status);
    else if (blocked)
        send_finish(s, 403, "FORBIDDEN", chat_msg_blocked, STR_NULL, false);
    else
        open_submit(s);
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

/* a is NULL when the payload is not an object. ctx_json: its context (borrowed; NULL when
 * absent). */
static void send_start(chat_t *c, const chat_user_t *user, chat_sock_t *origin,
                       const chat_send_args_t *a, json_t *ctx_json, chat_send_done done, void *ud)
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
    store_context_t ctx = {0};
    const char *ctx_why = chat_context_problem(c, ctx_json, &ctx);
    if (ctx_why) REFUSE(ctx_why);
    bool about = ctx.type.ptr != NULL;
    if (about && !given(rid))
        REFUSE("context goes with recipientId (a conversationId names the conversation already)");
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
    uint32_t wait = chat_msg_limit(c, user->id);
    if (wait) {
        chat_err_t e = {429, "RATE_LIMITED", "too many messages; slow down", wait};
        done(ud, &e, STR_NULL, false, 0);
        return;
    }
    /* One allocation: the context, the store's arena (the stored message and its copies) and
     * the input strings (each NUL-terminated). */
    size_t clen = is_str(content) ? content->s.len : 0;
    size_t cap = 4096 + 2 * clen;
    /* opening the conversation first: its document, with its last message, must fit */
    if (about) cap += c->opts.max_message_length * 4 + 32 * 1024;
    size_t inputs = 9 + clen + rid->s.len + cid->s.len + type->s.len + fid->s.len + cmid->s.len +
                    ctx.type.len + ctx.id.len + ctx.title.len;
    bool pooled = sizeof(send_ctx_t) + cap + inputs <= SEND_POOLED;
    if (pooled && !c->send_pool.size) {
        c->send_pool.size = SEND_POOLED;
        c->send_pool.max = SEND_POOL_MAX;
    }
    if (pooled) cap = SEND_POOLED - sizeof(send_ctx_t) - inputs; /* all of it for the store */
    send_ctx_t *s = pooled ? chat_pool_get(&c->send_pool) : malloc(sizeof *s + cap + inputs);
    if (!s) {
        chat_err_t e = {500, "INTERNAL", "out of memory", 0};
        done(ud, &e, STR_NULL, false, 0);
        return;
    }
    memset(s, 0, sizeof *s);
    s->pooled = pooled;
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
    if (about) {
        chat_arg_t ty = {CHAT_ARG_STRING, ctx.type}, i = {CHAT_ARG_STRING, ctx.id},
                   ti = {ctx.title.ptr ? CHAT_ARG_STRING : CHAT_ARG_ABSENT, ctx.title}, out;
        s->about = true;
        copy_arg(&out, &ty, &at);
        s->ctx.type = out.s;
        copy_arg(&out, &i, &at);
        s->ctx.id = out.s;
        copy_arg(&out, &ti, &at);
        s->ctx.title = ti.kind == CHAT_ARG_STRING ? out.s : STR_NULL;
        /* a block between the two refuses it before the conversation is created (an empty
         * thread in the other's list would be the blocked user's message) */
        int known = chat_block_between(c, s->user.id, s->in.recipient_id.s.ptr, about_blocked, s);
        if (known == 1)
            send_finish(s, 403, "FORBIDDEN", chat_msg_blocked, STR_NULL, false);
        else if (known == 0)
            open_submit(s);
        return;
    }
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
        if (!chat_cache_has(e, user->id)) {
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
        send_start(c, user, NULL, NULL, NULL, done, ud);
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
    send_start(c, user, NULL, &a, json_object_get(payload, "context"), done, ud);
}

typedef struct {
    chat_sock_t *cs; /* a reference */
    bool pooled;     /* from c->reply_pool (else malloc) */
    int64_t ack_id;
    bool has_client_msg_id; /* a string clientMsgId was given: it is in client_msg_id */
    size_t client_msg_id_len;
    char client_msg_id[];
} reply_t;

/* The key of a session's acknowledged positions: its user and the parts of its pid that tell
 * the user's sessions apart. */
const char *chat_acked_key(const chat_sock_t *cs, char out[ACKED_KEY_SIZE])
{
    /* "<user>|<pid_pos>-<pid_rnd>", without printf (it runs for every acknowledged send) */
    char num[24], *d = chat_i64_text(cs->pid_pos, num);
    size_t o = 0, dl = (size_t)(num + sizeof num - d);
    for (const char *p = CS_UID(cs); *p && o + 1 < ACKED_KEY_SIZE; p++) out[o++] = *p;
    if (o + 1 < ACKED_KEY_SIZE) out[o++] = '|';
    for (size_t i = 0; i < dl && o + 1 < ACKED_KEY_SIZE; i++) out[o++] = d[i];
    if (o + 1 < ACKED_KEY_SIZE) out[o++] = '-';
    for (const char *p = cs->pid_rnd; *p && o + 1 < ACKED_KEY_SIZE; p++) out[o++] = *p;
    out[o] = '\0';
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
    /* Cluster: also where another node can read them if this one dies (chat_recovery.c). */
    if (cs->chat->acked_hooks.push) cs->chat->acked_hooks.push(cs->chat->acked_hooks.ud, key, pos);
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

void chat_acked_sweep(chat_t *c, uint64_t now)
{
    strmap_sweep(&c->acked, acked_expired, &now);
}

static void socket_send_done(void *ud, const chat_err_t *err, str_t doc, bool dup, int64_t pos)
{
    reply_t *r = ud;
    if (r->cs->sending) r->cs->sending--;
    r->cs->chat->sends_in_flight--;
    if (r->cs->socket) {
        if (err) {
            json_t *cmid =
                r->has_client_msg_id ? json_stringn(r->client_msg_id, r->client_msg_id_len) : NULL;
            chat_reply_err(r->cs, r->ack_id, cmid, err);
            json_decref(cmid);
        } else {
            /* Recorded (and, in a cluster, written to Redis) before the ack is written: a node
             * killed right after its client got the ack has already handed the position over. */
            if (!dup && pos > 0) acked_add(r->cs, pos);
            if (r->ack_id >= 0) {
                const str_t parts[] = {STR_LIT("[{\"ok\":true,\"message\":"), doc, STR_LIT("}]")};
                sio_socket_ack_parts(r->cs->socket, r->ack_id, parts, 3);
            }
        }
    }
    chat_t *c = r->cs->chat;
    cs_unref(r->cs);
    if (r->pooled)
        chat_pool_put(&c->reply_pool, r);
    else
        free(r);
}

/* args: the event's argument array as text, read in place (no jansson on the hot path). */
void chat_on_send_message(chat_sock_t *cs, str_t args, int64_t ack_id)
{
    if (cs->chat->draining) { /* the node is stopping: nothing new is started */
        chat_reply_error(cs, ack_id, "UNAVAILABLE",
                         "the server is shutting down; send again once reconnected", 1000);
        return;
    }
    chat_send_args_t a;
    str_t payload = chat_event_payload_rest(args); /* args is valid JSON: scanned once */
    char small[512], *buf = payload.len <= sizeof small ? small : malloc(payload.len);
    if (!buf) return;
    bool object = chat_send_args_parse(payload, &a, buf, payload.len) == 0;
    size_t cmid_len = object && a.client_msg_id.kind == CHAT_ARG_STRING ? a.client_msg_id.s.len : 0;
    chat_t *c = cs->chat;
    bool pooled = cmid_len <= STORE_CLIENT_MSG_ID_MAX;
    if (pooled && !c->reply_pool.size) {
        c->reply_pool.size = sizeof(reply_t) + STORE_CLIENT_MSG_ID_MAX + 1;
        c->reply_pool.max = REPLY_POOL_MAX;
    }
    reply_t *r = pooled ? chat_pool_get(&c->reply_pool) : malloc(sizeof *r + cmid_len + 1);
    if (r) {
        r->pooled = pooled;
        r->cs = cs_ref(cs);
        r->ack_id = ack_id;
        r->has_client_msg_id = object && a.client_msg_id.kind == CHAT_ARG_STRING;
        r->client_msg_id_len = cmid_len;
        if (cmid_len) memcpy(r->client_msg_id, a.client_msg_id.s.ptr, cmid_len);
        r->client_msg_id[cmid_len] = '\0';
        chat_user_t user;
        memset(&user, 0, sizeof user);
        const char *uid = CS_UID(cs);
        memcpy(user.id, uid, strnlen(uid, sizeof user.id - 1));
        if (cs->sending < UINT16_MAX) cs->sending++;
        cs->chat->sends_in_flight++;
        /* the context, the rare case, is read with jansson */
        json_t *ctx = NULL;
        bool ctx_given = object && a.context.kind == CHAT_ARG_OTHER;
        if (ctx_given) ctx = json_loadb(a.context.s.ptr, a.context.s.len, 0, NULL);
        if ((ctx_given && !ctx) || (object && a.context.kind == CHAT_ARG_STRING))
            ctx = json_string(""); /* not an object: refused as such */
        send_start(cs->chat, &user, cs, object ? &a : NULL, ctx, socket_send_done, r);
        json_decref(ctx);
    }
    if (buf != small) free(buf);
}
