/* Presence: a user is online while any of its sockets is connected, and goes offline only
 * after the last one has been gone for the grace period; user_status to the user's audience
 * (members of conversations it has written in) and its own sockets; get_status / GET status
 * as the requester may see it. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"

#include "core/slab.h"

/* Presence entries live as long as their user is connected (one per idle socket in the common
 * case): a pool keeps them out of the heap, where malloc took a 96-byte chunk for the 80 bytes
 * and the handshake's short-lived allocations were interleaved with them. Loop thread only;
 * process-wide like the chat sockets' pool (chat.c). */
static slab_pool_t pres_pool;
#define PRES_POOL_SIZE (offsetof(presence_t, user) + PRESENCE_POOL_ID_MAX + 1)
_Static_assert(PRES_POOL_SIZE <= 80, "a presence entry of the pool fits 80 bytes");

static presence_t *presence_alloc(size_t len)
{
    if (len > PRESENCE_POOL_ID_MAX) return calloc(1, offsetof(presence_t, user) + len + 1);
    if (!pres_pool.size) slab_pool_init(&pres_pool, PRES_POOL_SIZE);
    return slab_calloc(&pres_pool);
}

static void presence_free(presence_t *p)
{
    if (p->len > PRESENCE_POOL_ID_MAX)
        free(p);
    else
        slab_free(&pres_pool, p);
}

presence_t *chat_presence_find(const chat_t *c, str_t user)
{
    uint32_t h = (uint32_t)chat_hash(user.ptr, user.len);
    for (presence_t *p = c->pbuckets[h & (c->npbuckets - 1)]; p; p = p->hnext)
        if (p->hash == h && p->len == user.len && memcmp(p->user, user.ptr, user.len) == 0)
            return p;
    return NULL;
}

bool chat_user_connected(const chat_t *c, str_t user)
{
    const presence_t *p = c->pbuckets ? chat_presence_find(c, user) : NULL;
    return p && p->sockets > 0;
}

int chat_users_online_query(chat_t *c, const str_t *users, size_t n, chat_status_done_fn done,
                            void *arg)
{
    if (!c->phooks.query || n == 0) return -1;
    return c->phooks.query(c->phooks_ud, users, n, done, arg);
}

presence_t *chat_presence_get(chat_t *c, const char *user)
{
    presence_t *p = chat_presence_find(c, str_cstr(user));
    if (p) return p;
    size_t len = strlen(user);
    if (len > STORE_USER_ID_MAX) return NULL;
    p = presence_alloc(len);
    if (!p) return NULL;
    memcpy(p->user, user, len + 1);
    p->len = (uint16_t)len;
    p->hash = (uint32_t)chat_hash(user, len);
    /* Chains of two on average before the table doubles: 4-8 bytes of buckets per user
     * instead of 8-16 (one user per idle socket in the common case). */
    if (c->npresence >= 2 * c->npbuckets) {
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
    presence_free(p);
}

typedef struct {
    store_req_t req;
    chat_t *chat;
    int64_t last_seen; /* the status announced (status_text) */
    bool online;
    uint64_t except; /* the id of the socket whose arrival this announces (0: none) */
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

static void announce_ask(chat_t *c, const char *user, bool online, int64_t last_seen,
                         uint64_t except, bool small);
static json_t *status_json(const char *user, bool online, int64_t last_seen);

/* The user_status document as text: written by hand when the id needs no escaping (ids of
 * tokens are [A-Za-z0-9_-]), the same bytes jansson wrote; else through jansson. Returns a
 * malloc'd string or NULL. */
static char *status_text(const char *user, bool online, int64_t last_seen, size_t *len)
{
    size_t ul = strlen(user);
    for (size_t i = 0; i < ul; i++) {
        unsigned char ch = (unsigned char)user[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
            json_t *doc = status_json(user, online, last_seen);
            char *text = chat_dumps(doc, len);
            json_decref(doc);
            return text;
        }
    }
    char at[64] = "";
    size_t al = 0;
    if (last_seen > 0) {
        chat_iso_time(last_seen, at);
        al = strlen(at);
    }
    /* By hand, not snprintf (~1.2k instructions per handshake): the same bytes. */
    static const char k_user[] = "{\"userId\":\"", k_status[] = "\",\"status\":\"",
                      k_seen[] = "\",\"lastSeen\":", k_null[] = "null}";
    const char *st = online ? "online" : "offline";
    size_t sl = online ? 6 : 7;
    char *text = malloc(ul + al + 64);
    if (!text) return NULL;
    char *o = text;
#define PUT(ptr, n) (memcpy(o, (ptr), (n)), o += (n))
    PUT(k_user, sizeof k_user - 1);
    PUT(user, ul);
    PUT(k_status, sizeof k_status - 1);
    PUT(st, sl);
    PUT(k_seen, sizeof k_seen - 1);
    if (al) {
        *o++ = '"';
        PUT(at, al);
        *o++ = '"';
        *o++ = '}';
    } else {
        PUT(k_null, sizeof k_null - 1);
    }
#undef PUT
    *o = '\0';
    *len = (size_t)(o - text);
    return text;
}

/* user_status to everyone in a conversation the user has sent a message in (those it chose to
 * talk to), and to the user's own sockets; the contacts come from the store. */
static void status_contacts_done(store_req_t *req)
{
    contacts_ctx_t *x = (contacts_ctx_t *)req;
    if (req->status == STORE_OK && x->small && req->u.contacts.has_more) {
        announce_ask(x->chat, x->user, x->online, x->last_seen, x->except, false);
        free(x);
        return;
    }
    size_t len;
    char *text = status_text(x->user, x->online, x->last_seen, &len);
    if (text) {
        str_t arg = str_make(text, len), self = str_cstr(x->user);
        chat_delivery_t d = {.to = CHAT_TO_USERS, .event = "user_status", .args = &arg, .nargs = 1};
        if (req->status == STORE_OK) {
            d.users = req->u.contacts.user_ids;
            d.nusers = req->u.contacts.count;
            chat_deliver(x->chat, &d);
        }
        /* The user's own other sockets; not the one that just arrived. */
        d.users = &self;
        d.nusers = 1;
        d.except = x->except;
        chat_deliver(x->chat, &d);
        free(text);
    }
    free(x);
}

static json_t *status_json(const char *user, bool online, int64_t last_seen)
{
    char at[64];
    if (last_seen > 0) chat_iso_time(last_seen, at);
    return json_pack("{s:s, s:s, s:o}", "userId", user, "status", online ? "online" : "offline",
                     "lastSeen", last_seen > 0 ? json_string(at) : json_null());
}

static void announce_ask(chat_t *c, const char *user, bool online, int64_t last_seen,
                         uint64_t except, bool small)
{
    size_t cap = small ? CONTACTS_FIRST_ARENA : CONTACTS_ARENA;
    contacts_ctx_t *x = malloc(sizeof *x + cap);
    if (!x) return;
    memset(x, 0, sizeof *x);
    x->chat = c;
    size_t ul = strnlen(user, sizeof x->user - 1); /* snprintf "%s" without printf */
    memcpy(x->user, user, ul);
    x->user[ul] = '\0';
    x->online = online;
    x->last_seen = last_seen;
    x->except = except;
    x->small = small;
    x->req.op = STORE_OP_CONTACTS;
    x->req.done = status_contacts_done;
    x->req.arena.ptr = x->arena;
    x->req.arena.cap = cap;
    x->req.u.contacts.user = str_cstr(x->user);
    x->req.u.contacts.mode = STORE_CONTACTS_AUDIENCE; /* only those it has written to */
    x->req.u.contacts.limit = small ? CONTACTS_FIRST : CONTACTS_LIMIT;
    if (store_submit(c->store, &x->req) != 0) free(x);
}

static void announce(chat_t *c, presence_t *p, chat_sock_t *except)
{
    announce_ask(c, p->user, p->online, p->last_seen, except ? except->sid : 0, true);
}

typedef struct {
    store_req_t req;
    char user[STORE_USER_ID_MAX + 1];
} seen_ctx_t;

static void seen_done(store_req_t *req)
{
    free(req);
}

static void store_seen(chat_t *c, const char *user, int64_t at)
{
    seen_ctx_t *sc = calloc(1, sizeof *sc);
    if (sc) {
        snprintf(sc->user, sizeof sc->user, "%s", user);
        sc->req.op = STORE_OP_USER_SEEN;
        sc->req.lazy = true;
        sc->req.done = seen_done;
        sc->req.u.user_seen.id = str_cstr(sc->user);
        sc->req.u.user_seen.last_seen = at;
        if (store_submit(c->store, &sc->req) != 0) free(sc);
    }
}

/* The user was seen now: remember it, and keep it in the store (lastSeen survives restarts). */
static void record_seen(chat_t *c, presence_t *p)
{
    p->last_seen = chat_now_ms();
    store_seen(c, p->user, p->last_seen);
}

static void presence_offline(chat_t *c, presence_t *p)
{
    p->online = false;
    record_seen(c, p);
    announce(c, p, NULL);
}

void chat_presence_grace_over(timerq_t *q, tq_entry_t *e)
{
    presence_t *p = (presence_t *)((char *)e - offsetof(presence_t, grace));
    chat_t *c = (chat_t *)((char *)q - offsetof(chat_t, grace_tq));
    if (p->sockets) return;
    if (c->phooks.local) {
        /* Cluster: the cluster decides and announces (its sockets may be elsewhere); this
         * node's entry only answered get_status while Redis was away. */
        presence_drop(c, p);
        return;
    }
    presence_offline(c, p);
    /* Offline users need no memory; lastSeen is in the store. */
    presence_drop(c, p);
}

void chat_presence_connect(chat_t *c, chat_sock_t *cs)
{
    presence_t *p = cs->pres;
    timerq_remove(&p->grace); /* back within the grace period: nobody saw it leave */
    if (p->sockets == 0 && c->interest) c->interest(c->interest_ud, p->user, true); /* cluster */
    if (p->sockets == 0 && c->phooks.local) {
        /* Cluster: online while any socket on any node is; the cluster announces it. */
        p->sockets = 1;
        p->online = true;
        p->last_seen = chat_now_ms();
        c->phooks.local(c->phooks_ud, p->user, true, cs->sid);
        return;
    }
    if (p->sockets++ == 0 && !p->online) {
        p->online = true;
        p->last_seen = chat_now_ms();
        announce(c, p, cs);
    }
}

void chat_presence_disconnect(chat_t *c, chat_sock_t *cs)
{
    presence_t *p = cs->pres;
    if (cs->live) {
        for (chat_sock_t **pp = &p->live; *pp; pp = &(*pp)->live_next)
            if (*pp == cs) {
                *pp = cs->live_next;
                break;
            }
        cs->live = false;
        if (!p->live) chat_unread_forget(c, str_make(p->user, p->len)); /* re-seeded if back */
    }
    cs->pres = NULL;
    if (p->sockets == 0) return;
    if (--p->sockets == 0) {
        if (c->interest) c->interest(c->interest_ud, p->user, false); /* cluster */
        if (c->phooks.local) c->phooks.local(c->phooks_ud, p->user, false, 0);
        chat_typing_clear_user(c, p->user);
        if (c->opts.presence_grace_ms)
            timerq_add(&c->grace_tq, &p->grace);
        else
            chat_presence_grace_over(&c->grace_tq, &p->grace);
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
    bool *visible;
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
    free(x->visible);
    free(x);
}

/* The answer from what is known: the cluster's state and since for each id (state NULL: this
 * node's own table); the lastSeen of visible users known nowhere else comes from the store. */
static void statuses_build(statuses_ctx_t *x, const int8_t *state, const int64_t *since)
{
    chat_t *c = x->chat;
    size_t nlookup = 0;
    x->lookup = calloc(x->n ? x->n : 1, sizeof *x->lookup);
    for (size_t i = 0, k = 0; i < x->n; i++) {
        const char *id = x->ids[i];
        bool visible = x->visible && x->visible[i], online = false, known = false;
        int64_t seen = 0;
        if (visible && state) {
            int8_t st = state[k];
            known = st >= 0 && (st == 1 || since[k] > 0);
            online = st == 1;
            seen = since[k];
            k++;
        } else if (visible) {
            presence_t *p = chat_presence_find(c, str_cstr(id));
            known = p != NULL;
            online = p && p->online;
            seen = p ? p->last_seen : 0;
        }
        json_array_append_new(x->statuses, status_json(id, online, visible ? seen : 0));
        if (visible && !known && x->lookup) x->lookup[nlookup++] = str_cstr(id);
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

static void statuses_cluster_done(void *arg, const int8_t *state, const int64_t *since)
{
    statuses_build(arg, state, since);
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
    x->visible = calloc(x->n ? x->n : 1, sizeof *x->visible);
    str_t *ask = c->phooks.query ? calloc(x->n ? x->n : 1, sizeof *ask) : NULL;
    size_t nask = 0;
    for (size_t i = 0; x->visible && i < x->n; i++) {
        const char *id = x->ids[i];
        x->visible[i] = !strcmp(id, x->requester) || (ok && contact_has(&ct, id));
        if (x->visible[i] && ask) ask[nask++] = str_cstr(id);
    }
    /* Cluster: online anywhere is known to Redis (the answer comes later). */
    int asked =
        ask && nask ? c->phooks.query(c->phooks_ud, ask, nask, statuses_cluster_done, x) : -1;
    free(ask);
    if (asked == 0) return;
    statuses_build(x, NULL, NULL);
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
        chat_reply_ok(r->cs, r->ack_id, f);
        json_decref(f);
    }
    cs_unref(r->cs);
    free(r);
}

void chat_on_get_status(chat_sock_t *cs, json_t *payload, int64_t ack_id)
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
        chat_reply_error(cs, ack_id, "BAD_REQUEST",
                         "get_status needs userIds: an array of at most 200 user ids", 0);
        return;
    }
    status_reply_t *r = calloc(1, sizeof *r);
    if (!r) return;
    r->cs = cs_ref(cs);
    r->ack_id = ack_id;
    chat_statuses(cs->chat, CS_UID(cs), list, n, get_status_done, r);
}

void chat_set_presence(chat_t *c, const chat_presence_hooks_t *h, void *ud)
{
    c->phooks = h ? *h : (chat_presence_hooks_t){0};
    c->phooks_ud = ud;
}

void chat_presence_announce(chat_t *c, const char *user, bool online, int64_t at_ms,
                            uint64_t except)
{
    if (strlen(user) > STORE_USER_ID_MAX) return;
    if (!online) store_seen(c, user, at_ms);
    announce_ask(c, user, online, at_ms, except, true);
}

uint32_t chat_presence_grace_ms(const chat_t *c)
{
    return c->opts.presence_grace_ms;
}

void chat_presence_each(chat_t *c, void (*fn)(void *arg, const char *user), void *arg)
{
    for (size_t i = 0; i < c->npbuckets; i++)
        for (presence_t *p = c->pbuckets[i]; p; p = p->hnext)
            if (p->sockets) fn(arg, p->user);
}

void chat_presence_flush(chat_t *c)
{
    /* Stopping: whoever is still here (or in the grace period) was seen now; write it before
     * the store closes. */
    for (size_t i = 0; i < c->npbuckets; i++)
        while (c->pbuckets[i]) {
            record_seen(c, c->pbuckets[i]);
            presence_drop(c, c->pbuckets[i]);
        }
}

void chat_presence_free(chat_t *c)
{
    for (size_t i = 0; c->pbuckets && i < c->npbuckets; i++)
        for (presence_t *p = c->pbuckets[i], *next; p; p = next) {
            next = p->hnext;
            presence_free(p);
        }
    free(c->pbuckets);
    c->pbuckets = NULL;
}
