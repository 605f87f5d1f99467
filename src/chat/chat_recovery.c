/* Connection state recovery: the messages a reconnecting session missed, replayed from the
 * store before it goes live; and the newest position at start (recovery offsets). */
#include <stdio.h>
#include <string.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"
#include "core/log.h"

typedef struct {
    store_req_t req;
    chat_sock_t *cs;
    int64_t after;
    char user[STORE_USER_ID_MAX + 1];
    char arena[];
} replay_ctx_t;

#define REPLAY_ARENA (1 << 20)

static void replay_submit(replay_ctx_t *x);

static void replay_done(store_req_t *req)
{
    replay_ctx_t *x = (replay_ctx_t *)req;
    chat_sock_t *cs = x->cs;
    store_messages_since_t *ms = &req->u.messages_since;
    if (!cs->socket) goto out;
    if (req->status != STORE_OK) {
        log_warn("recovery for %s failed: %s", CS_UID(cs), store_strerror(req->status));
        chat_sock_go_live(cs);
        goto out;
    }
    char key[ACKED_KEY_SIZE];
    acked_t *own = chat_acked_of(cs->chat, chat_acked_key(cs, key), false);
    for (size_t i = 0; i < ms->count; i++) {
        const store_message_t *m = &ms->msgs[i];
        x->after = m->pos;
        if (own && chat_acked_has(own, m->pos)) continue; /* this socket has it from its ack */
        json_t *doc = chat_message_json(m);
        char offset[32];
        snprintf(offset, sizeof offset, "%lld", (long long)m->pos);
        json_t *arr = json_pack("[sOs]", "receive_message", doc, offset);
        size_t len;
        char *text = chat_dumps(arr, &len);
        if (text) sio_socket_emit(cs->socket, str_make(text, len), NULL, 0);
        free(text);
        json_decref(arr);
        json_decref(doc);
    }
    if (ms->has_more) {
        replay_submit(x);
        return;
    }
    /* This read ran in order with the writes: everything committed before it was replayed,
     * everything after it is delivered live from now on. */
    chat_sock_go_live(cs);
out:
    cs_unref(cs);
    free(x);
}

static void replay_submit(replay_ctx_t *x)
{
    memset(&x->req.u, 0, sizeof x->req.u);
    x->req.op = STORE_OP_MESSAGES_SINCE;
    x->req.ordered = true;
    x->req.done = replay_done;
    x->req.arena.ptr = x->arena;
    x->req.arena.cap = REPLAY_ARENA;
    x->req.u.messages_since.user = str_cstr(x->user);
    x->req.u.messages_since.after_pos = x->after;
    x->req.u.messages_since.limit = STORE_PAGE_MAX;
    if (store_submit(x->cs->chat->store, &x->req) != 0) {
        if (x->cs->socket) chat_sock_go_live(x->cs);
        cs_unref(x->cs);
        free(x);
    }
}

void chat_recovery_start(chat_sock_t *cs, int64_t after)
{
    replay_ctx_t *x = malloc(sizeof *x + REPLAY_ARENA);
    if (!x) {
        chat_sock_go_live(cs);
        return;
    }
    memset(x, 0, sizeof *x);
    x->cs = cs_ref(cs);
    x->after = after;
    snprintf(x->user, sizeof x->user, "%s", CS_UID(cs));
    replay_submit(x);
}

typedef struct {
    store_req_t req;
    chat_t *chat;
    char arena[4096];
} start_ctx_t;

static void start_done(store_req_t *req)
{
    start_ctx_t *x = (start_ctx_t *)req;
    if (req->status == STORE_OK && req->u.messages_since.last_pos > x->chat->last_pos)
        x->chat->last_pos = req->u.messages_since.last_pos;
    free(x);
}

void chat_start(chat_t *c)
{
    start_ctx_t *x = calloc(1, sizeof *x);
    if (!x) return;
    x->chat = c;
    x->req.op = STORE_OP_MESSAGES_SINCE;
    x->req.ordered = true;
    x->req.done = start_done;
    x->req.arena.ptr = x->arena;
    x->req.arena.cap = sizeof x->arena;
    x->req.u.messages_since.user = STR_LIT("_");
    x->req.u.messages_since.after_pos = INT64_MAX;
    x->req.u.messages_since.limit = 1;
    if (store_submit(c->store, &x->req) != 0) free(x);
}
