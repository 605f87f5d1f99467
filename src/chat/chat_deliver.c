/* The delivery seam: every event the chat layer sends to users (receive_message,
 * message_updated, message_deleted, messages_read, typing, user_status) goes through
 * chat_deliver. Answers to the socket that
 * asked (acks, message_error, get_status) and a recovery's replay to its own socket do not:
 * that socket is always on this node.
 *
 * The shape, after Redis's pubsubPublishMessageAndPropagateToCluster (src/pubsub.c), which
 * delivers a PUBLISH to this node's subscribers and then propagates it to the cluster:
 *
 *     chat_deliver(c, d)             an event made here (a send, a receipt, typing, presence)
 *       chat_deliver_local(c, d)       to the sockets of this process
 *       c->publish(c->publish_ud, d)   to the other nodes (NULL: a single node)
 *     chat_deliver_local(c, d)       an event that came from another node: the local half only
 *
 * A delivery (chat_delivery_t, chat.h) is plain data that can cross nodes:
 *   - the audience, by name: users (CHAT_TO_USERS: a list of user ids) or a conversation's
 *     members (CHAT_TO_CONV: its id; each node resolves the members from its own cache, and a
 *     node that has not cached them asks the store, falling back to the users given), and a
 *     user to leave out (skip_user: the typist);
 *   - the socket to leave out by its id (except: the sender's sid, 64 random bits so unique
 *     across nodes, 16 hex digits on a wire; never a sio_socket_t pointer);
 *   - the event name and its arguments as encoded JSON text (in up to CHAT_DELIVERY_ARGS
 *     pieces, so receive_message's document is not copied to be joined to its offset);
 *   - pos, the commit position of a receive_message, message_updated or message_deleted (a
 *     socket being recovered holds it until its replay has caught up, chat_recovery.c).
 * The local half encodes the Socket.IO packet once, at the first socket that needs it, and
 * queues that one refcounted frame on every recipient socket. A delivery is valid for the
 * call only: whoever keeps it (a store lookup here, the cluster's queue) copies it. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <string.h>

#include "chat/chat_int.h"
#include "core/log.h"

/* The packet, built at the first socket that gets it. */
typedef struct {
    const chat_delivery_t *d;
    sio_built_t b;
    int state; /* 0: not built yet, 1: built, -1: could not be built */
    int named; /* 0: who not looked up yet, 1: found, -1: absent */
    str_t who; /* receive_message's sender, messages_read's reader (unread_may_change) */
} lazy_t;

static bool lazy_build(chat_t *c, lazy_t *l)
{
    if (l->state == 0) {
        const chat_delivery_t *d = l->d;
        str_t parts[3 + CHAT_DELIVERY_ARGS + 1];
        size_t n = 0, elen = strlen(d->event);
        char head[64]; /* ["event", as one part: fewer to gather */
        if (elen + 4 <= sizeof head) {
            head[0] = '[';
            head[1] = '"';
            memcpy(head + 2, d->event, elen);
            memcpy(head + 2 + elen, "\",", 2);
            parts[n++] = str_make(head, elen + 4);
        } else {
            parts[n++] = STR_LIT("[\"");
            parts[n++] = str_make(d->event, elen);
            parts[n++] = STR_LIT("\",");
        }
        for (size_t i = 0; i < d->nargs && i < CHAT_DELIVERY_ARGS; i++) parts[n++] = d->args[i];
        parts[n++] = STR_LIT("]");
        l->state = sio_build_event_parts(c->nsp, parts, n, &l->b) == 0 ? 1 : -1;
    }
    return l->state == 1;
}

/* A receive_message, or a messages_read of the user's own, may change the user's unread total
 * (chat_unread.c counts it for users with sockets here). */
/* d's args[0] (a JSON document) "field":"<value>", looked up once per delivery (not once per
 * recipient: a group message has up to 256). User ids hold no quote or backslash, and a quote
 * inside a string value is escaped, so the first match is the field's. */
static str_t named(lazy_t *l, const char *field)
{
    if (l->named == 0) {
        const chat_delivery_t *d = l->d;
        char pat[32];
        size_t fl = strlen(field);
        int n = fl + 4 < sizeof pat ? (int)fl + 4 : -1; /* "field":" */
        if (n > 0) {
            pat[0] = '"';
            memcpy(pat + 1, field, fl);
            memcpy(pat + 1 + fl, "\":\"", 3);
        }
        const char *at = d->nargs < 1 || n <= 0 || (size_t)n >= sizeof pat
                             ? NULL
                             : memmem(d->args[0].ptr, d->args[0].len, pat, (size_t)n);
        const char *end = d->args[0].ptr + d->args[0].len, *v = at ? at + n : NULL;
        const char *q = v ? memchr(v, '"', (size_t)(end - v)) : NULL;
        l->named = q ? 1 : -1;
        if (q) l->who = str_make(v, (size_t)(q - v));
    }
    return l->named == 1 ? l->who : STR_NULL;
}

/* A new message changes the unread total of its recipients, not of its sender (whose other
 * sockets get it too); a deletion may change anyone's; a receipt only the reader's. */
static bool unread_may_change(lazy_t *l, str_t user)
{
    const chat_delivery_t *d = l->d;
    if (strcmp(d->event, "receive_message") == 0)
        return !str_eq(d->sender ? str_cstr(d->sender) : named(l, "sender"), user);
    if (strcmp(d->event, "message_deleted") == 0) return true;
    if (strcmp(d->event, "conversation_updated") == 0) return true; /* a member added/removed */
    if (strcmp(d->event, "messages_read") != 0) return false;
    return str_eq(named(l, "readerId"), user);
}

static void to_user(chat_t *c, lazy_t *l, str_t user)
{
    const chat_delivery_t *d = l->d;
    presence_t *p = chat_presence_find(c, user);
    if (p && p->live && unread_may_change(l, user)) chat_unread_touch(c, d, user);
    for (chat_sock_t *cs = p ? p->live : NULL; cs; cs = cs->live_next) {
        if (c->publish && d->pos > 0) {
            /* In a cluster a receive_message may come before an older one of this user that
             * another node committed: delivered in position order, or caught up from the
             * store (chat_recovery_ordered; docs/cluster.md, "The offset rule"). */
            bool mine = cs->sid == d->except;
            if (!mine && !lazy_build(c, l)) return;
            chat_recovery_ordered(cs, d->pos, chat_delivery_prev(d, user), mine ? NULL : &l->b);
            continue;
        }
        if (cs->sid == d->except) continue;
        if (!lazy_build(c, l)) return;
        if (!(d->pos > 0 && chat_recovery_hold(cs, d->pos, &l->b)))
            sio_socket_send_built(cs->socket, &l->b);
    }
}

int64_t chat_delivery_prev(const chat_delivery_t *d, str_t user)
{
    for (size_t i = 0; i < d->nprevs; i++)
        if (str_eq(d->prev_users[i], user)) return d->prevs[i];
    return 0;
}

static bool skipped(const chat_delivery_t *d, str_t user)
{
    return d->skip_user && str_eq_cstr(user, d->skip_user);
}

static void to_users(chat_t *c, lazy_t *l)
{
    const chat_delivery_t *d = l->d;
    for (size_t i = 0; i < d->nusers; i++)
        if (!skipped(d, d->users[i])) to_user(c, l, d->users[i]);
}

static void to_members(chat_t *c, lazy_t *l, const members_entry_t *e)
{
    for (uint32_t i = 0; i < e->n; i++) {
        str_t u = str_cstr(e->users[i]);
        if (!skipped(l->d, u)) to_user(c, l, u);
    }
}

/* The other half of chat_deliver: the cluster gets the audience resolved, as a list of users
 * (a conversation's members from the cache when known, else d's users). */
static void publish(chat_t *c, const chat_delivery_t *d, const members_entry_t *e)
{
    if (!c->publish) return;
    if (!e) {
        chat_delivery_t u = *d;
        u.to = CHAT_TO_USERS;
        c->publish(c->publish_ud, &u);
        return;
    }
    str_t users[STORE_GROUP_MAX];
    chat_delivery_t u = *d;
    u.to = CHAT_TO_USERS;
    u.users = users;
    u.nusers = 0;
    for (uint32_t i = 0; i < e->n && u.nusers < STORE_GROUP_MAX; i++)
        users[u.nusers++] = str_cstr(e->users[i]);
    c->publish(c->publish_ud, &u);
}

/* Delivers d to the members (e: cached) when known, else to d's users; and publishes it when
 * it was made here (pub). */
static void deliver_known(chat_t *c, const chat_delivery_t *d, const members_entry_t *e, bool pub)
{
    lazy_t l = {d, {0}, 0, 0, STR_NULL};
    if (d->pos > c->last_pos) c->last_pos = d->pos; /* a commit of another node, too */
    if (e)
        to_members(c, &l, e);
    else
        to_users(c, &l);
    if (l.state == 1) sio_built_free(&l.b);
    if (pub) publish(c, d, e);
}

/* A conversation whose members are not cached (e.g. just after a restart): a copy of the
 * delivery waits for the store's answer. MUST own every string it points to. */
typedef struct {
    store_req_t req;
    chat_t *chat;
    chat_delivery_t d;
    str_t args[1];
    str_t users[STORE_GROUP_MAX];
    char conv[ID_SIZE];
    bool publish;  /* made here: published once the members are known */
    char *strings; /* the users, skip_user, event and args, one after another */
    char arena[];
} lookup_t;

#define LOOKUP_ARENA (64 * 1024)

static void lookup_done(store_req_t *req)
{
    lookup_t *x = (lookup_t *)req;
    if (req->status == STORE_OK) chat_cache_members(x->chat, &req->u.conversation_get.conv);
    deliver_known(x->chat, &x->d, chat_cache_find(x->chat, x->conv), x->publish);
    free(x->strings);
    free(x);
}

static char *keep(char **at, const char *s, size_t n)
{
    char *p = *at;
    memcpy(p, s, n);
    p[n] = '\0';
    *at += n + 1;
    return p;
}

static void lookup_then_deliver(chat_t *c, const chat_delivery_t *d, bool pub)
{
    size_t need = strlen(d->event) + 1 + (d->skip_user ? strlen(d->skip_user) + 1 : 0) + 1;
    size_t nusers = d->nusers < STORE_GROUP_MAX ? d->nusers : STORE_GROUP_MAX;
    for (size_t i = 0; i < nusers; i++) need += d->users[i].len + 1;
    for (size_t i = 0; i < d->nargs; i++) need += d->args[i].len;
    lookup_t *x = malloc(sizeof *x + LOOKUP_ARENA);
    char *at = x ? malloc(need) : NULL;
    if (!at) {
        free(x);
        log_warn_throttled("a %s delivery was dropped: out of memory", d->event);
        return;
    }
    memset(x, 0, sizeof *x);
    x->chat = c;
    x->publish = pub;
    x->strings = at;
    x->d = *d;
    x->d.sender = NULL;     /* not kept: looked up in the document */
    x->d.prev_users = NULL; /* not kept: the chain is unknown, the offset rule reads instead */
    x->d.prevs = NULL;
    x->d.nprevs = 0;
    memcpy(x->conv, d->conv, ID_LEN);
    x->conv[ID_LEN] = '\0';
    x->d.conv = x->conv;
    x->d.event = keep(&at, d->event, strlen(d->event));
    x->d.skip_user = d->skip_user ? keep(&at, d->skip_user, strlen(d->skip_user)) : NULL;
    for (size_t i = 0; i < nusers; i++)
        x->users[i] = str_make(keep(&at, d->users[i].ptr, d->users[i].len), d->users[i].len);
    x->d.users = x->users;
    x->d.nusers = nusers;
    char *args = at; /* the pieces joined into one */
    for (size_t i = 0; i < d->nargs; i++) {
        memcpy(at, d->args[i].ptr, d->args[i].len);
        at += d->args[i].len;
    }
    x->args[0] = str_make(args, (size_t)(at - args));
    x->d.args = x->args;
    x->d.nargs = 1;
    x->req.op = STORE_OP_CONVERSATION_GET;
    x->req.done = lookup_done;
    x->req.arena.ptr = x->arena;
    x->req.arena.cap = LOOKUP_ARENA;
    x->req.u.conversation_get.id = str_make(x->conv, ID_LEN);
    if (store_submit(c->store, &x->req) != 0) {
        free(x->strings);
        free(x);
    }
}

static void deliver(chat_t *c, const chat_delivery_t *d, bool pub)
{
    /* An edit or a deletion (made here or on another node) outdates the cached history. */
    if (d->conv && (!strcmp(d->event, "message_updated") || !strcmp(d->event, "message_deleted")))
        chat_history_drop(c, d->conv);
    const members_entry_t *e = d->to == CHAT_TO_CONV ? chat_cache_find(c, d->conv) : NULL;
    if (d->to == CHAT_TO_CONV && !e)
        lookup_then_deliver(c, d, pub);
    else
        deliver_known(c, d, e, pub);
}

void chat_deliver_local(chat_t *c, const chat_delivery_t *d)
{
    /* another node changed a group's members: the members cached here are stale */
    if (strcmp(d->event, "conversation_updated") == 0) chat_members_forget(c, d);
    deliver(c, d, false);
}

void chat_deliver(chat_t *c, const chat_delivery_t *d)
{
    deliver(c, d, c->publish != NULL);
}

void chat_set_publish(chat_t *c, chat_publish_fn fn, void *ud)
{
    c->publish = fn;
    c->publish_ud = ud;
}

void chat_set_interest(chat_t *c, chat_interest_fn fn, void *ud)
{
    c->interest = fn;
    c->interest_ud = ud;
}

void chat_catch_up(chat_t *c)
{
    chat_unread_reseed_all(c); /* the deliveries lost are not counted */
    for (size_t i = 0; i < c->npbuckets; i++)
        for (presence_t *p = c->pbuckets[i]; p; p = p->hnext)
            for (chat_sock_t *cs = p->live; cs; cs = cs->live_next) chat_recovery_catch_up(cs);
}
