/* The unread total (issue 16): GET /api/chat/unread and the unread_total event.
 *
 * Computed from the store on change, not kept as a counter: a counter in the chat layer would
 * have to be seeded from the store and kept exact across recovery, several nodes, deletes and
 * races between its seed and live messages; a recompute is one indexed read (STORE_OP_UNREAD_
 * TOTAL, whose cost is the user's unread messages) and is right by construction. To keep it
 * cheap:
 * - only users with live sockets on this node are recomputed, when the delivery seam hands
 *   them a receive_message, or a messages_read of their own (chat_unread_touch);
 * - at most one read is in flight per user; changes meanwhile cause one more read after it
 *   (a burst of messages costs two reads, not one per message);
 * - the event goes out only when the total differs from what this node last told the user;
 * - the state lives only while the user has sockets here (dropped at the next read after). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"

typedef struct unread_user {
    store_req_t req; /* first */
    chat_t *chat;
    int64_t told; /* the total last sent to the user's sockets here; -1: none yet */
    bool inflight, again;
    char user[STORE_USER_ID_MAX + 1];
} unread_user_t;

static void unread_submit(unread_user_t *u);

static void unread_done(store_req_t *req)
{
    unread_user_t *u = (unread_user_t *)req;
    chat_t *c = u->chat;
    u->inflight = false;
    presence_t *p = chat_presence_find(c, str_cstr(u->user));
    if (!p || !p->live) { /* nobody here to tell: forget the user */
        strmap_remove(&c->unread, u->user);
        free(u);
        return;
    }
    if (req->status == STORE_OK && req->u.unread_total.total != u->told) {
        u->told = req->u.unread_total.total;
        char arg[96];
        int n = snprintf(arg, sizeof arg, "{\"total\":%lld,\"conversations\":%lld}",
                         (long long)req->u.unread_total.total,
                         (long long)req->u.unread_total.conversations);
        str_t args[1] = {str_make(arg, (size_t)n)};
        str_t users[1] = {str_cstr(u->user)};
        /* Local only: every node computes for its own sockets. */
        chat_deliver_local(c, &(chat_delivery_t){.to = CHAT_TO_USERS,
                                                 .users = users,
                                                 .nusers = 1,
                                                 .event = "unread_total",
                                                 .args = args,
                                                 .nargs = 1});
    }
    if (u->again) {
        u->again = false;
        unread_submit(u);
    }
}

static void unread_submit(unread_user_t *u)
{
    memset(&u->req, 0, sizeof u->req);
    u->req.op = STORE_OP_UNREAD_TOTAL;
    u->req.done = unread_done;
    u->req.u.unread_total.user = str_cstr(u->user);
    u->inflight = store_submit(u->chat->store, &u->req) == 0;
}

void chat_unread_touch(chat_t *c, str_t user)
{
    if (user.len > STORE_USER_ID_MAX) return;
    char id[STORE_USER_ID_MAX + 1];
    memcpy(id, user.ptr, user.len);
    id[user.len] = '\0';
    unread_user_t *u = strmap_get(&c->unread, id);
    if (!u) {
        if (!(u = calloc(1, sizeof *u))) return;
        u->chat = c;
        u->told = -1;
        memcpy(u->user, id, user.len + 1);
        if (strmap_set(&c->unread, id, u) != 0) {
            free(u);
            return;
        }
    }
    if (u->inflight)
        u->again = true;
    else
        unread_submit(u);
}

void chat_unread_free(chat_t *c)
{
    /* Requests in flight are done before the chat is freed (the store is closed first). */
    strmap_free(&c->unread, free);
}

/* ---- GET /api/chat/unread ---- */

typedef struct {
    store_req_t req;
    chat_answer_fn done;
    void *ud;
    char user[STORE_USER_ID_MAX + 1];
} unread_q_t;

static void unread_get_done(store_req_t *req)
{
    unread_q_t *q = (unread_q_t *)req;
    if (req->status != STORE_OK) {
        chat_err_t e;
        chat_store_err(req->status, &e);
        q->done(q->ud, &e, 0, STR_NULL);
    } else {
        char body[96];
        int n = snprintf(body, sizeof body, "{\"total\":%lld,\"conversations\":%lld}",
                         (long long)req->u.unread_total.total,
                         (long long)req->u.unread_total.conversations);
        q->done(q->ud, NULL, 200, str_make(body, (size_t)n));
    }
    free(q);
}

void chat_unread(chat_t *c, const char *user, chat_answer_fn done, void *ud)
{
    unread_q_t *q = calloc(1, sizeof *q);
    if (!q) {
        chat_err_t e = {500, "INTERNAL", "out of memory", 0};
        done(ud, &e, 0, STR_NULL);
        return;
    }
    q->done = done;
    q->ud = ud;
    snprintf(q->user, sizeof q->user, "%s", user);
    q->req.op = STORE_OP_UNREAD_TOTAL;
    q->req.done = unread_get_done;
    q->req.u.unread_total.user = str_cstr(q->user);
    if (store_submit(c->store, &q->req) != 0) {
        chat_err_t e = {503, "UNAVAILABLE", "the server is shutting down", 0};
        done(ud, &e, 0, STR_NULL);
        free(q);
    }
}
