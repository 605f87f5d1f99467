/* The unread total (issue 16): GET /api/chat/unread and the unread_total event.
 *
 * GET asks the store (STORE_OP_UNREAD_TOTAL). The event is kept as a counter per user while the
 * user has live sockets on this node (issue 17: the recompute per delivered message cost one
 * store read per recipient, 19 for a message in a group of 20), seeded from the store and moved
 * by the deliveries, exactly:
 * - The seed is one STORE_OP_UNREAD_TOTAL read: total, conversations, one conversation's count
 *   (the one that made it necessary) and last_pos, a position of the whole store in the same
 *   snapshot (docs/store.md guarantee 4: every message with pos <= last_pos is counted in it,
 *   and none commits later at or below it). It is taken lazily, at the first event that may
 *   change the total after the user's first socket went live here.
 * - receive_message from someone else at pos > last_pos (not already counted: a ring of the
 *   last positions counted drops duplicates) in a conversation known to have unread messages
 *   (`known`) adds 1, with no store read. In a conversation not known, one seed asking about
 *   it says whether `conversations` grows; then it is known (a message at pos > last_pos is
 *   unread until a read or a delete of that conversation, both of which re-seed).
 * - A delivery that arrives while the seed is in flight is kept (pending[], with its pos and
 *   conversation) and counted after the seed only if its pos > last_pos; past PENDING_MAX, or
 *   for one in a conversation that neither the seed asked about nor is known, the answer is
 *   dropped and the seed taken again (whatever arrived before that seed is in its snapshot,
 *   because a delivered position is committed).
 * - The user's own messages_read, a message_deleted, a conversation_updated (membership):
 *   the conversation is forgotten from `known` and the total re-seeded (one read per such
 *   event, not per message); one that arrives during a seed drops its answer and seeds again.
 * - A cluster catch-up (deliveries the bus may have lost) re-seeds every user here; the last
 *   socket of a user leaving here drops the state (the next socket starts again).
 * - The event goes out only when the total differs from what this node last told the user.
 * parlor_chat_unread_reads_total (/metrics) counts the reads taken for it.
 * Memory: about 690 bytes per user with live sockets here once such an event reached it (the
 * recompute's state was about 480), plus 25 bytes per known conversation (at most KNOWN_MAX)
 * and 32 per delivery kept during a seed (at most PENDING_MAX, freed with the user). */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"

#define CONV_LEN    24
#define PENDING_MAX 256 /* deliveries kept during one seed (~10 KiB); more: seed again */
#define RING        16
#define KNOWN_MAX   256 /* conversations remembered as having unread messages; more: re-seeds */

typedef struct {
    int64_t pos;
    char conv[CONV_LEN + 1];
} pending_t;

typedef struct unread_user {
    store_req_t req; /* first */
    chat_t *chat;
    int64_t told; /* the total last sent to the user's sockets here; -1: none yet */
    int64_t total, convs, last_pos;
    bool inflight, again, seeded;
    char ask[CONV_LEN + 1]; /* the conversation the next/current seed asks about, or "" */
    pending_t *pending;     /* grown as needed, up to PENDING_MAX */
    unsigned npending, pending_cap;
    int64_t ring[RING]; /* positions above last_pos counted already */
    unsigned ring_at;
    char (*known)[CONV_LEN + 1];
    unsigned nknown, known_cap;
    /* on c->unread_tell (the total changed in this loop turn) when tprev is not NULL */
    struct unread_user *tnext, **tprev;
    char user[STORE_USER_ID_MAX + 1];
} unread_user_t;

static void unread_submit(unread_user_t *u);
static void tell_due(uv_check_t *h);

static bool known_has(const unread_user_t *u, const char *conv)
{
    for (unsigned i = 0; i < u->nknown; i++)
        if (memcmp(u->known[i], conv, CONV_LEN) == 0) return true;
    return false;
}

static void known_add(unread_user_t *u, const char *conv)
{
    if (known_has(u, conv) || u->nknown >= KNOWN_MAX) return;
    if (u->nknown == u->known_cap) {
        unsigned cap = u->known_cap ? u->known_cap * 2 : 4;
        void *k = realloc(u->known, cap * sizeof *u->known);
        if (!k) return; /* not known: costs a seed, stays exact */
        u->known = k;
        u->known_cap = cap;
    }
    memcpy(u->known[u->nknown++], conv, CONV_LEN + 1);
}

static void known_del(unread_user_t *u, const char *conv)
{
    for (unsigned i = 0; i < u->nknown; i++)
        if (memcmp(u->known[i], conv, CONV_LEN) == 0) {
            memcpy(u->known[i], u->known[--u->nknown], CONV_LEN + 1);
            return;
        }
}

static bool ring_has(const unread_user_t *u, int64_t pos)
{
    for (unsigned i = 0; i < RING; i++)
        if (u->ring[i] == pos) return true;
    return false;
}

static void ring_add(unread_user_t *u, int64_t pos)
{
    u->ring[u->ring_at++ % RING] = pos;
}

/* Keeps a delivery that arrived during a seed; false when there is no room. */
static bool pending_add(unread_user_t *u, int64_t pos, const char *conv)
{
    if (u->npending == u->pending_cap) {
        unsigned cap = u->pending_cap ? u->pending_cap * 2 : 4;
        if (cap > PENDING_MAX) return false;
        void *q = realloc(u->pending, cap * sizeof *u->pending);
        if (!q) return false;
        u->pending = q;
        u->pending_cap = cap;
    }
    u->pending[u->npending].pos = pos;
    memcpy(u->pending[u->npending++].conv, conv, CONV_LEN + 1);
    return true;
}

static void tell_unlink(unread_user_t *u)
{
    if (!u->tprev) return;
    *u->tprev = u->tnext;
    if (u->tnext) u->tnext->tprev = u->tprev;
    u->tnext = NULL;
    u->tprev = NULL;
}

static void user_free(void *p)
{
    unread_user_t *u = p;
    tell_unlink(u);
    free(u->pending);
    free(u->known);
    free(u);
}

/* Sends the user's unread_total now, when it differs from the last one sent. */
static void tell_now(unread_user_t *u)
{
    if (!u->seeded || u->total == u->told) return;
    u->told = u->total;
    /* {"total":N,"conversations":M}, without printf */
    char arg[96], t[24], *tp = chat_i64_text(u->total, t), v[24], *vp = chat_i64_text(u->convs, v);
    size_t tl = (size_t)(t + sizeof t - tp), vl = (size_t)(v + sizeof v - vp), n = 0;
    memcpy(arg, "{\"total\":", 9);
    n = 9;
    memcpy(arg + n, tp, tl);
    n += tl;
    memcpy(arg + n, ",\"conversations\":", 17);
    n += 17;
    memcpy(arg + n, vp, vl);
    n += vl;
    arg[n++] = '}';
    /* Local only (every node keeps it for its own sockets), to this user's sockets here: one
     * frame built from the template above for all of them, without the general delivery's
     * look-ups (chat_deliver_local: no recovery hold, no unread counting, no cluster order). */
    chat_t *c = u->chat;
    presence_t *p = chat_presence_find(c, str_cstr(u->user));
    if (!p || !p->live) return;
    const str_t parts[] = {STR_LIT("[\"unread_total\","), str_make(arg, n), STR_LIT("]")};
    sio_built_t b;
    if (sio_build_event_parts(c->nsp, parts, 3, &b) != 0) return;
    for (chat_sock_t *cs = p->live; cs; cs = cs->live_next) sio_socket_send_built(cs->socket, &b);
    sio_built_free(&b);
}

/* The total may have changed: told once at the end of this loop turn (the check phase), with
 * the value it has then, so that a burst of deliveries to the user in one turn (a batch of
 * commits) sends one unread_total, not one per message (docs/api.md, unread_total). */
static void tell(unread_user_t *u)
{
    chat_t *c = u->chat;
    if (u->tprev) return; /* queued already */
    if (!u->seeded || u->total == u->told) return;
    u->tnext = c->unread_tell;
    if (u->tnext) u->tnext->tprev = &u->tnext;
    u->tprev = &c->unread_tell;
    c->unread_tell = u;
    if (!uv_is_active((uv_handle_t *)&c->unread_check)) uv_check_start(&c->unread_check, tell_due);
}

/* Counts a delivery at pos > last_pos in conv; false: conv's state is not known (seed). */
static bool count(unread_user_t *u, int64_t pos, const char *conv)
{
    if (pos <= u->last_pos || ring_has(u, pos)) return true;
    if (!known_has(u, conv)) return false;
    u->total++;
    ring_add(u, pos);
    return true;
}

static void unread_done(store_req_t *req)
{
    unread_user_t *u = (unread_user_t *)req;
    chat_t *c = u->chat;
    u->inflight = false;
    presence_t *p = chat_presence_find(c, str_cstr(u->user));
    if (!p || !p->live) { /* nobody here to tell: forget the user */
        strmap_remove(&c->unread, u->user);
        user_free(u);
        return;
    }
    if (req->status != STORE_OK) { /* start again at the next event */
        u->seeded = false;
        u->again = false;
        u->npending = 0;
        return;
    }
    if (u->again) { /* something the answer may not include happened meanwhile */
        u->again = false;
        u->npending = 0;
        unread_submit(u);
        return;
    }
    const store_unread_total_t *r = &req->u.unread_total;
    u->seeded = true;
    u->total = r->total;
    u->convs = r->conversations;
    u->last_pos = r->last_pos;
    memset(u->ring, 0, sizeof u->ring);
    if (u->ask[0]) {
        if (r->conv_unread > 0) known_add(u, u->ask);
    }
    for (unsigned i = 0; i < u->npending; i++) {
        pending_t *q = &u->pending[i];
        if (count(u, q->pos, q->conv)) continue;
        if (u->ask[0] && strcmp(q->conv, u->ask) == 0 && r->conv_unread == 0) {
            /* the first unread message of the conversation the seed asked about */
            u->convs++;
            known_add(u, q->conv);
            if (count(u, q->pos, q->conv)) continue;
        }
        /* another conversation whose state the answer does not tell: ask about it */
        memcpy(u->ask, q->conv, CONV_LEN + 1);
        u->seeded = false;
        u->npending = 0;
        unread_submit(u);
        return;
    }
    u->npending = 0;
    tell(u);
}

static void unread_submit(unread_user_t *u)
{
    memset(&u->req, 0, sizeof u->req);
    u->req.op = STORE_OP_UNREAD_TOTAL;
    u->req.done = unread_done;
    u->req.u.unread_total.user = str_cstr(u->user);
    u->req.u.unread_total.conversation_id = str_cstr(u->ask);
    u->inflight = store_submit(u->chat->store, &u->req) == 0;
    if (u->inflight) u->chat->unread_reads++;
}

/* The 24-hex "conversationId" of d's document, into out; false when there is none. A
 * receive_message names it as d->conv too (the send path's, and a cluster node's): taken from
 * there, the document is not searched once per recipient (up to 256 for a group message). */
static bool conv_of(const chat_delivery_t *d, char out[CONV_LEN + 1])
{
    if (d->conv && memchr(d->conv, '\0', CONV_LEN + 1) == d->conv + CONV_LEN &&
        strcmp(d->event, "receive_message") == 0) {
        memcpy(out, d->conv, CONV_LEN);
        out[CONV_LEN] = '\0';
        return true;
    }
    static const char key[] = "\"conversationId\":\"";
    const char *at =
        d->nargs >= 1 ? memmem(d->args[0].ptr, d->args[0].len, key, sizeof key - 1) : NULL;
    if (!at) return false;
    at += sizeof key - 1;
    const char *end = d->args[0].ptr + d->args[0].len;
    if (end - at < CONV_LEN + 1 || at[CONV_LEN] != '"') return false;
    memcpy(out, at, CONV_LEN);
    out[CONV_LEN] = '\0';
    return true;
}

static unread_user_t *user_get(chat_t *c, str_t user)
{
    if (user.len > STORE_USER_ID_MAX) return NULL;
    char id[STORE_USER_ID_MAX + 1];
    memcpy(id, user.ptr, user.len);
    id[user.len] = '\0';
    unread_user_t *u = strmap_get(&c->unread, id);
    if (u) return u;
    if (!(u = calloc(1, sizeof *u))) return NULL;
    u->chat = c;
    u->told = -1;
    memcpy(u->user, id, user.len + 1);
    if (strmap_set(&c->unread, id, u) != 0) {
        free(u);
        return NULL;
    }
    return u;
}

/* Something that a counter cannot follow: forget what is known of conv ("": of every
 * conversation) and seed again. */
static void reseed(unread_user_t *u, const char *conv)
{
    if (conv[0])
        known_del(u, conv);
    else
        u->nknown = 0;
    snprintf(u->ask, sizeof u->ask, "%s", conv); /* conv may be "" */
    if (u->inflight) {
        u->again = true;
        return;
    }
    u->npending = 0;
    unread_submit(u);
}

void chat_unread_touch(chat_t *c, const chat_delivery_t *d, str_t user)
{
    unread_user_t *u = user_get(c, user);
    if (!u) return;
    char conv[CONV_LEN + 1] = "";
    bool has_conv = conv_of(d, conv);
    if (strcmp(d->event, "receive_message") != 0 || !has_conv || d->pos <= 0) {
        reseed(u, has_conv ? conv : "");
        return;
    }
    if (u->inflight) {
        if (!pending_add(u, d->pos, conv)) u->again = true; /* the next seed's snapshot has them */
        return;
    }
    if (u->seeded && count(u, d->pos, conv)) {
        tell(u);
        return;
    }
    u->npending = 0;
    if (!pending_add(u, d->pos, conv)) {
        reseed(u, "");
        return;
    }
    memcpy(u->ask, conv, CONV_LEN + 1);
    unread_submit(u);
}

void chat_unread_forget(chat_t *c, str_t user)
{
    if (user.len > STORE_USER_ID_MAX) return;
    char id[STORE_USER_ID_MAX + 1];
    memcpy(id, user.ptr, user.len);
    id[user.len] = '\0';
    unread_user_t *u = strmap_get(&c->unread, id);
    if (!u) return;
    if (u->inflight) { /* its done() frees it when nobody is back, else starts over */
        u->again = true;
        u->seeded = false;
        u->told = -1;
        u->nknown = 0;
        return;
    }
    strmap_remove(&c->unread, id);
    user_free(u);
}

static int reseed_one(const char *key, void *val, void *ud)
{
    (void)key;
    (void)ud;
    unread_user_t *u = val;
    if (u->seeded || u->inflight) reseed(u, "");
    return 0;
}

void chat_unread_reseed_all(chat_t *c)
{
    strmap_sweep(&c->unread, reseed_one, NULL);
}

static void tell_due(uv_check_t *h)
{
    chat_t *c = h->data;
    uv_check_stop(h);
    /* Telling may deliver, but nothing it does queues another tell. */
    while (c->unread_tell) {
        unread_user_t *u = c->unread_tell;
        tell_unlink(u);
        tell_now(u);
    }
}

void chat_unread_init(chat_t *c)
{
    uv_check_init(c->loop, &c->unread_check);
    c->unread_check.data = c;
    uv_unref((uv_handle_t *)&c->unread_check);
}

void chat_unread_close(chat_t *c)
{
    while (c->unread_tell) tell_unlink(c->unread_tell); /* not told: the sockets are going */
    uv_close((uv_handle_t *)&c->unread_check, NULL);
}

uint64_t chat_unread_reads(const chat_t *c)
{
    return c->unread_reads;
}

void chat_unread_free(chat_t *c)
{
    /* Requests in flight are done before the chat is freed (the store is closed first). */
    strmap_free(&c->unread, user_free);
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
