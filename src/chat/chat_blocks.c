/* Blocks (issue 16): block/unblock and the list for REST, and what the chat layer filters.
 *
 * - Messages: the store refuses a direct message between two users in a block
 *   (STORE_E_BLOCKED, inside MESSAGE_INSERT's transaction, so no race lets one through);
 *   chat_send answers it as FORBIDDEN with reason BLOCKED.
 * - Presence: the store's presence contacts leave out anyone in a block with the user.
 * - Typing: in a conversation of two, a typing start between users in a block creates no
 *   typing state, so neither start nor stop is relayed. Whether a pair is in a block is read
 *   from the store (BLOCK_CHECK) and kept here for BLOCK_PAIR_TTL_MS; a block or unblock made
 *   through this node updates the pair at once (another node's, within the TTL). Groups are
 *   not filtered: group messages and typing flow (docs/api.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"

#define BLOCK_PAIR_TTL_MS 10000
#define BLOCK_PAIRS_MAX   65536 /* past it the pair cache is emptied (then refilled by use) */

typedef struct {
    bool blocked;
    uint64_t until; /* loop ms */
} block_pair_t;

static void pair_key(const char *a, const char *b, char key[STORE_DIRECT_KEY_SIZE_CHAT])
{
    bool lt = strcmp(a, b) < 0;
    snprintf(key, STORE_DIRECT_KEY_SIZE_CHAT, "%s|%s", lt ? a : b, lt ? b : a);
}

static void pair_set(chat_t *c, const char *a, const char *b, bool blocked)
{
    char key[STORE_DIRECT_KEY_SIZE_CHAT];
    pair_key(a, b, key);
    block_pair_t *p = strmap_get(&c->block_pairs, key);
    if (!p) {
        if (c->block_pairs.count >= BLOCK_PAIRS_MAX) {
            strmap_free(&c->block_pairs, free);
            if (strmap_init(&c->block_pairs) != 0) return;
        }
        if (!(p = malloc(sizeof *p))) return;
        if (strmap_set(&c->block_pairs, key, p) != 0) {
            free(p);
            return;
        }
    }
    p->blocked = blocked;
    p->until = uv_now(c->loop) + BLOCK_PAIR_TTL_MS;
}

void chat_block_learn(chat_t *c, const char *a, const char *b, bool blocked)
{
    pair_set(c, a, b, blocked);
}

/* 1 blocked, 0 not, -1 not known (or stale). */
static int pair_get(chat_t *c, const char *a, const char *b)
{
    char key[STORE_DIRECT_KEY_SIZE_CHAT];
    pair_key(a, b, key);
    block_pair_t *p = strmap_get(&c->block_pairs, key);
    if (!p || p->until <= uv_now(c->loop)) return -1;
    return p->blocked;
}

typedef struct {
    store_req_t req;
    void (*then)(chat_t *c, void *arg, bool blocked, int status);
    void *arg;
    chat_t *chat;
    char a[STORE_USER_ID_MAX + 1], b[STORE_USER_ID_MAX + 1];
} pair_check_t;

static void pair_check_done(store_req_t *req)
{
    pair_check_t *x = (pair_check_t *)req;
    bool blocked = false;
    if (req->status == STORE_OK) {
        blocked = req->u.block_check.a_blocks_b || req->u.block_check.b_blocks_a;
        pair_set(x->chat, x->a, x->b, blocked);
    }
    x->then(x->chat, x->arg, blocked, req->status);
    free(x);
}

int chat_block_between(chat_t *c, const char *a, const char *b,
                       void (*then)(chat_t *c, void *arg, bool blocked, int status), void *arg)
{
    int known = pair_get(c, a, b);
    if (known >= 0) return known;
    pair_check_t *x = calloc(1, sizeof *x);
    if (!x) return 0; /* not knowing: let it through (typing only) */
    x->chat = c;
    x->then = then;
    x->arg = arg;
    snprintf(x->a, sizeof x->a, "%s", a);
    snprintf(x->b, sizeof x->b, "%s", b);
    x->req.op = STORE_OP_BLOCK_CHECK;
    x->req.done = pair_check_done;
    x->req.u.block_check.a = str_cstr(x->a);
    x->req.u.block_check.b = str_cstr(x->b);
    if (store_submit(c->store, &x->req) != 0) {
        free(x);
        return 0;
    }
    return -1;
}

const char chat_msg_blocked[] = "messages between you and this user are blocked";
const char chat_msg_block_limit[] =
    "you have blocked 10000 users, the most allowed; unblock someone first";

const char *chat_err_reason(const chat_err_t *e)
{
    if (e->message == chat_msg_blocked) return "BLOCKED";
    if (e->message == chat_msg_block_limit) return "BLOCK_LIMIT";
    return NULL;
}

/* ---- REST: block, unblock, list ---- */

typedef struct {
    store_req_t req;
    chat_t *chat;
    chat_answer_fn done;
    void *ud;
    char user[STORE_USER_ID_MAX + 1], other[STORE_USER_ID_MAX + 1];
    char arena[];
} block_q_t;

static void answer_doc(block_q_t *q, int status, json_t *doc)
{
    size_t len;
    char *text = chat_dumps(doc, &len);
    json_decref(doc);
    if (!text) {
        chat_err_t e = {500, "INTERNAL", "could not encode the answer", 0};
        q->done(q->ud, &e, 0, STR_NULL);
        return;
    }
    q->done(q->ud, NULL, status, str_make(text, len));
    free(text);
}

static bool block_failed(block_q_t *q)
{
    int st = q->req.status;
    if (st == STORE_OK) return false;
    chat_err_t e;
    if (st == STORE_E_LIMIT)
        e = (chat_err_t){409, "CONFLICT", chat_msg_block_limit, 0};
    else if (st == STORE_E_INVALID)
        e = (chat_err_t){400, "BAD_REQUEST", "you cannot block yourself", 0};
    else
        chat_store_err(st, &e);
    q->done(q->ud, &e, 0, STR_NULL);
    return true;
}

/* block_updated to every socket of the blocker (every node): another tab of theirs shows the
 * blocked state at once. The blocked user is not told (docs/api.md). */
static void tell_blocker(block_q_t *q, json_t *doc)
{
    json_t *ev = json_pack("{s:O, s:O}", "userId", json_object_get(doc, "userId"), "blocked",
                           json_object_get(doc, "blocked"));
    json_t *at = json_object_get(doc, "blockedAt");
    if (ev && at) json_object_set(ev, "blockedAt", at);
    size_t len;
    char *text = ev ? chat_dumps(ev, &len) : NULL;
    json_decref(ev);
    if (!text) return;
    str_t args[1] = {str_make(text, len)};
    str_t users[1] = {str_cstr(q->user)};
    chat_deliver(q->chat, &(chat_delivery_t){.to = CHAT_TO_USERS,
                                             .users = users,
                                             .nusers = 1,
                                             .event = "block_updated",
                                             .args = args,
                                             .nargs = 1});
    free(text);
}

static void block_set_done(store_req_t *req)
{
    block_q_t *q = (block_q_t *)req;
    if (!block_failed(q)) {
        store_block_set_t *b = &req->u.block_set;
        if (b->on) {
            pair_set(q->chat, q->user, q->other, true);
        } else {
            /* The other direction may remain: ask again on next use. */
            char key[STORE_DIRECT_KEY_SIZE_CHAT];
            pair_key(q->user, q->other, key);
            free(strmap_remove(&q->chat->block_pairs, key));
        }
        json_t *doc = json_pack("{s:s, s:b, s:b}", "userId", q->other, "blocked", b->on, "changed",
                                b->changed);
        if (b->on) {
            char at[64];
            chat_iso_time(b->created_at, at);
            json_object_set_new(doc, "blockedAt", json_string(at));
        }
        if (b->changed) tell_blocker(q, doc);
        answer_doc(q, 200, doc);
    }
    free(q);
}

void chat_block_set(chat_t *c, const char *user, const char *other, bool on, chat_answer_fn done,
                    void *ud)
{
    if (strcmp(user, other) == 0) {
        chat_err_t e = {400, "BAD_REQUEST", "you cannot block yourself", 0};
        done(ud, &e, 0, STR_NULL);
        return;
    }
    block_q_t *q = calloc(1, sizeof *q);
    if (!q) {
        chat_err_t e = {500, "INTERNAL", "out of memory", 0};
        done(ud, &e, 0, STR_NULL);
        return;
    }
    q->chat = c;
    q->done = done;
    q->ud = ud;
    snprintf(q->user, sizeof q->user, "%s", user);
    snprintf(q->other, sizeof q->other, "%s", other);
    q->req.op = STORE_OP_BLOCK_SET;
    q->req.done = block_set_done;
    q->req.u.block_set.blocker = str_cstr(q->user);
    q->req.u.block_set.blocked = str_cstr(q->other);
    q->req.u.block_set.on = on;
    if (store_submit(c->store, &q->req) != 0) {
        chat_err_t e = {503, "UNAVAILABLE", "the server is shutting down", 0};
        done(ud, &e, 0, STR_NULL);
        free(q);
    }
}

static void blocks_list_done(store_req_t *req)
{
    block_q_t *q = (block_q_t *)req;
    if (!block_failed(q)) {
        store_blocks_list_t *l = &req->u.blocks_list;
        json_t *arr = json_array();
        for (size_t i = 0; i < l->count; i++) {
            char at[64];
            chat_iso_time(l->blocks[i].created_at, at);
            json_array_append_new(arr, json_pack("{s:s%, s:s}", "userId", l->blocks[i].user_id.ptr,
                                                 l->blocks[i].user_id.len, "blockedAt", at));
        }
        json_t *next = l->has_more && l->count ? json_stringn(l->blocks[l->count - 1].user_id.ptr,
                                                              l->blocks[l->count - 1].user_id.len)
                                               : json_null();
        answer_doc(q, 200, json_pack("{s:o, s:o}", "blocks", arr, "nextCursor", next));
    }
    free(q);
}

void chat_blocks_list(chat_t *c, const char *user, const char *after, size_t limit,
                      chat_answer_fn done, void *ud)
{
    size_t cap = limit * (sizeof(store_block_t) + STORE_USER_ID_MAX + 16) + 1024;
    block_q_t *q = calloc(1, sizeof *q + cap);
    if (!q) {
        chat_err_t e = {500, "INTERNAL", "out of memory", 0};
        done(ud, &e, 0, STR_NULL);
        return;
    }
    q->chat = c;
    q->done = done;
    q->ud = ud;
    snprintf(q->user, sizeof q->user, "%s", user);
    snprintf(q->other, sizeof q->other, "%s", after ? after : "");
    q->req.op = STORE_OP_BLOCKS_LIST;
    q->req.done = blocks_list_done;
    q->req.arena.ptr = q->arena;
    q->req.arena.cap = cap;
    q->req.u.blocks_list.blocker = str_cstr(q->user);
    q->req.u.blocks_list.after = str_cstr(q->other);
    q->req.u.blocks_list.limit = limit;
    if (store_submit(c->store, &q->req) != 0) {
        chat_err_t e = {503, "UNAVAILABLE", "the server is shutting down", 0};
        done(ud, &e, 0, STR_NULL);
        free(q);
    }
}
