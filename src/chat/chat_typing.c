/* typing: {conversationId, userId, isTyping} to the other members while a user types. A
 * start is relayed at most every --typing-throttle-ms per (user, conversation); the state
 * expires after --typing-timeout-ms without renewal, and stops when the user sends a message
 * there or its last socket leaves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"

typedef struct {
    tq_entry_t expiry;
    chat_t *chat;
    uint64_t last_relay; /* loop ms of the last isTyping:true relayed */
    char user[STORE_USER_ID_MAX + 1];
    char conv[ID_SIZE];
} typing_t;

/* "<user>\n<conv>", cut at cap like snprintf; without printf: it runs for every message sent
 * (chat_typing_stop). */
static void typing_key(const char *user, const char *conv, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = user; *p && o + 1 < cap; p++) out[o++] = *p;
    if (o + 1 < cap) out[o++] = '\n';
    for (const char *p = conv; *p && o + 1 < cap; p++) out[o++] = *p;
    out[o] = '\0';
}

/* {conversationId, userId, isTyping} to the other members' sockets. */
static void typing_relay(chat_t *c, const char *user, const char *conv, bool is_typing)
{
    if (!chat_cache_find(c, conv)) return;
    json_t *doc =
        json_pack("{s:s, s:s, s:b}", "conversationId", conv, "userId", user, "isTyping", is_typing);
    size_t len;
    char *text = chat_dumps(doc, &len);
    json_decref(doc);
    if (!text) return;
    str_t arg = str_make(text, len);
    chat_deliver(c, &(chat_delivery_t){.to = CHAT_TO_CONV,
                                       .conv = conv,
                                       .skip_user = user,
                                       .event = "typing",
                                       .args = &arg,
                                       .nargs = 1});
    free(text);
}

void chat_typing_stop(chat_t *c, const char *user, const char *conv)
{
    if (c->typing.count == 0) return; /* nobody is typing: the common case of a send */
    char key[STORE_USER_ID_MAX + ID_SIZE + 2];
    typing_key(user, conv, key, sizeof key);
    typing_t *t = strmap_remove(&c->typing, key);
    if (!t) return;
    timerq_remove(&t->expiry);
    typing_relay(c, user, conv, false);
    free(t);
}

void chat_typing_expired(timerq_t *q, tq_entry_t *e)
{
    typing_t *t = (typing_t *)((char *)e - offsetof(typing_t, expiry));
    chat_typing_stop(t->chat, t->user, t->conv);
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

void chat_typing_clear_user(chat_t *c, const char *user)
{
    clear_arg_t a = {c, user};
    strmap_sweep(&c->typing, typing_of_user, &a);
}

typedef struct {
    chat_sock_t *cs; /* a reference */
    int64_t ack_id;
    char conv[ID_SIZE];
} typing_gate_t;

static void typing_apply_(chat_t *c, chat_sock_t *cs, const char *conv, bool is_typing,
                          int64_t ack_id, int blocked);

static void typing_gate_done(chat_t *c, void *arg, bool blocked, int status)
{
    typing_gate_t *g = arg;
    (void)status; /* typing is best effort: not knowing lets it through */
    if (g->cs->socket) typing_apply_(c, g->cs, g->conv, true, g->ack_id, blocked);
    cs_unref(g->cs);
    free(g);
}

static void ack_ok(chat_sock_t *cs, int64_t ack_id)
{
    if (ack_id >= 0 && cs->socket) {
        json_t *f = json_object();
        chat_reply_ok(cs, ack_id, f);
        json_decref(f);
    }
}

/* blocked: -1 not checked yet, else whether the two members of a conversation of two are in a
 * block (chat_blocks.c): then a typing start creates no state and nothing is relayed. */
static void typing_apply_(chat_t *c, chat_sock_t *cs, const char *conv, bool is_typing,
                          int64_t ack_id, int blocked)
{
    members_entry_t *e = chat_cache_find(c, conv);
    if (!e || !chat_cache_has(e, CS_UID(cs))) {
        if (cs->socket) chat_reply_error(cs, ack_id, "NOT_FOUND", "no such conversation", 0);
        return;
    }
    if (is_typing && e->n == 2 && blocked < 0) {
        const char *other = strcmp(e->users[0], CS_UID(cs)) == 0 ? e->users[1] : e->users[0];
        typing_gate_t *g = calloc(1, sizeof *g);
        if (g) {
            g->cs = cs_ref(cs);
            g->ack_id = ack_id;
            memcpy(g->conv, conv, ID_SIZE);
        }
        blocked = g ? chat_block_between(c, CS_UID(cs), other, typing_gate_done, g) : 0;
        if (blocked < 0) return; /* typing_gate_done goes on */
        if (g) {
            cs_unref(g->cs);
            free(g);
        }
    }
    if (is_typing && blocked == 1) {
        ack_ok(cs, ack_id);
        return;
    }
    if (!is_typing) {
        chat_typing_stop(c, CS_UID(cs), conv);
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
    ack_ok(cs, ack_id);
}

static void typing_apply(chat_t *c, chat_sock_t *cs, const char *conv, bool is_typing,
                         int64_t ack_id)
{
    typing_apply_(c, cs, conv, is_typing, ack_id, -1);
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
    if (x->cs->socket) {
        if (req->status == STORE_E_UNAVAILABLE) { /* not knowing is not "no such" */
            chat_err_t e;
            chat_store_err(req->status, &e);
            chat_reply_err(x->cs, x->ack_id, NULL, &e);
        } else {
            typing_apply(c, x->cs, x->conv, x->is_typing, x->ack_id);
        }
    }
    cs_unref(x->cs);
    free(x);
}

void chat_on_typing(chat_sock_t *cs, json_t *payload, int64_t ack_id)
{
    json_t *conv = json_object_get(payload, "conversationId");
    json_t *is = json_object_get(payload, "isTyping");
    if (!chat_json_id(conv) || !json_is_boolean(is)) {
        chat_reply_error(cs, ack_id, "BAD_REQUEST",
                         "typing needs conversationId (24-character hex id) and isTyping (boolean)",
                         0);
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
