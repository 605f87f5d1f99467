/* The cluster bus over Redis (redis_bus.h): a subscriber connection and a command connection,
 * each reconnecting on its own with backoff, hiredis's async API on the libuv loop.
 *
 * hiredis owns a redisAsyncContext: it frees it after the disconnect callback (or after a
 * failed connect callback), and calls every pending command callback with a NULL reply first.
 * So a link forgets its context in those callbacks and never touches it again, and every
 * callback here checks for NULL. The host is resolved once by redis_bus_new; the contexts
 * connect to the numeric address, so no call on the loop blocks on DNS. */
#include "cluster/redis_bus.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libuv.h>

#include "core/log.h"
#include "core/strmap.h"

#define BUS_OUTBOX_DEFAULT (16u << 20)
#define BUS_RETRY_MIN_MS   50
#define BUS_RETRY_DEFAULT  2000
/* hiredis 0.14's libuv adapter drops a poll error (redisLibuvPoll returns on status != 0), so a
 * refused connect never reaches on_connect: a connect not done by then is abandoned and
 * retried (found by the cluster's Redis restart test: a node retrying while Redis was still
 * down never reconnected). */
#define BUS_CONNECT_TIMEOUT_MS 1000
#define BUS_SUBSCRIBE_CHUNK    512 /* channels per SUBSCRIBE when re-subscribing */

typedef struct bus_link {
    redis_bus_t *bus;
    redisAsyncContext *ac; /* NULL while down */
    bool connected;
    bool subscriber;
    uv_timer_t retry;
    uint64_t backoff_ms;
} bus_link_t;

typedef struct outbox_item {
    struct outbox_item *next;
    size_t channel_len, len;
    char bytes[]; /* channel then data */
} outbox_item_t;

struct redis_bus {
    uv_loop_t *loop;
    char ip[INET6_ADDRSTRLEN];
    int port, db;
    redis_bus_auth_t auth; /* password "": none */
    redis_bus_options_t opts;
    redis_bus_callbacks_t cb;
    bus_link_t sub, cmd;
    strmap_t channels;        /* channel -> reference count (as a pointer-sized integer) */
    size_t pending_subscribe; /* confirmations still due before the bus is up */
    bool up, closing;
    int open_handles;
    void (*close_cb)(void *arg);
    void *close_arg;
    outbox_item_t *outbox_head, *outbox_tail;
    size_t outbox_bytes;
    uint64_t lost, published, received, dropped, reconnects;
};

static void link_connect(bus_link_t *l);

/* ---- URL ---------------------------------------------------------------------------------- */

/* "[user]:password" before the '@' (each percent-decoded: %XX for a byte; every other byte but
 * '/', '@' and controls taken as it is), into auth (or only checked, auth NULL). A user without
 * a password is refused: Redis's AUTH needs one. */
static int parse_userinfo(const char *p, size_t n, redis_bus_auth_t *auth)
{
    const char *colon = memchr(p, ':', n);
    if (!colon || colon + 1 == p + n) return -1;
    struct {
        const char *s;
        size_t n;
        char *out;
        size_t cap;
    } part[2] = {{p, (size_t)(colon - p), auth ? auth->user : NULL, sizeof auth->user},
                 {colon + 1, (size_t)(p + n - colon - 1), auth ? auth->password : NULL,
                  sizeof auth->password}};
    for (int k = 0; k < 2; k++) {
        size_t o = 0;
        for (size_t i = 0; i < part[k].n; i++) {
            unsigned char c = (unsigned char)part[k].s[i];
            if (c == '%') {
                unsigned v;
                char hex[3] = {0};
                if (i + 2 >= part[k].n) return -1;
                hex[0] = part[k].s[i + 1];
                hex[1] = part[k].s[i + 2];
                if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]) ||
                    sscanf(hex, "%2x", &v) != 1 || v == 0)
                    return -1;
                c = (unsigned char)v;
                i += 2;
            } else if (c < 0x21 || c == 0x7f || c == '/' || c == '@') {
                return -1;
            }
            if (o + 1 >= part[k].cap) return -1;
            if (part[k].out) part[k].out[o] = (char)c;
            o++;
        }
        if (part[k].out) part[k].out[o] = '\0';
    }
    return 0;
}

int redis_bus_parse_auth(const char *url, redis_bus_auth_t *auth)
{
    memset(auth, 0, sizeof *auth);
    if (strncmp(url, "redis://", 8) != 0) return -1;
    const char *p = url + 8, *at = strrchr(p, '@');
    if (!at) return 0;
    return parse_userinfo(p, (size_t)(at - p), auth);
}

int redis_bus_parse_url(const char *url, char *host, size_t host_cap, int *port, int *db, char *err,
                        size_t errcap)
{
    *port = 6379;
    *db = 0;
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errcap, "a cluster URL is redis://host[:port][/db]");
        return -1;
    }
    const char *p = url + 8, *end;
    const char *at = strrchr(p, '@');
    if (at) {
        if (parse_userinfo(p, (size_t)(at - p), NULL) < 0) goto bad;
        p = at + 1;
    }
    if (*p == '[') {
        end = strchr(p, ']');
        if (!end) goto bad;
        if ((size_t)(end - p - 1) >= host_cap || end == p + 1) goto bad;
        memcpy(host, p + 1, (size_t)(end - p - 1));
        host[end - p - 1] = '\0';
        p = end + 1;
    } else {
        end = p + strcspn(p, ":/");
        if (end == p || (size_t)(end - p) >= host_cap) goto bad;
        memcpy(host, p, (size_t)(end - p));
        host[end - p] = '\0';
        p = end;
    }
    if (*p == ':') {
        char *e;
        long v = strtol(p + 1, &e, 10);
        if (e == p + 1 || v < 1 || v > 65535) goto bad;
        *port = (int)v;
        p = e;
    }
    if (*p == '/') {
        if (p[1]) {
            char *e;
            long v = strtol(p + 1, &e, 10);
            if (e == p + 1 || *e || v < 0 || v > 1000000) goto bad;
            *db = (int)v;
        }
        p += strlen(p);
    }
    if (*p) goto bad;
    return 0;
bad:
    snprintf(err, errcap, "cannot read the cluster URL (redis://host[:port][/db])");
    return -1;
}

/* ---- State -------------------------------------------------------------------------------- */

static void bus_set_state(redis_bus_t *b)
{
    bool up = b->sub.connected && b->cmd.connected && b->pending_subscribe == 0;
    if (up == b->up || b->closing) return;
    b->up = up;
    uint64_t lost = b->lost;
    b->lost = 0;
    if (up)
        log_info("cluster: connected to Redis %s:%d", b->ip, b->port);
    else
        log_warn("cluster: lost Redis %s:%d; reconnecting", b->ip, b->port);
    if (b->cb.on_state) b->cb.on_state(b->cb.arg, up, lost);
}

static void on_retry(uv_timer_t *t)
{
    link_connect(t->data);
}

static void link_schedule(bus_link_t *l);

/* The connect did not finish in time (see BUS_CONNECT_TIMEOUT_MS): dropped, tried again. */
static void on_connect_timeout(uv_timer_t *t)
{
    bus_link_t *l = t->data;
    if (l->bus->closing || !l->ac || l->connected) return;
    redisAsyncContext *ac = l->ac;
    l->ac = NULL;
    ac->data = NULL; /* its callbacks, if hiredis runs any while freeing it, do nothing */
    redisAsyncFree(ac);
    log_warn_throttled("cluster: cannot connect to Redis %s:%d: no answer", l->bus->ip,
                       l->bus->port);
    link_schedule(l);
}

static void link_schedule(bus_link_t *l)
{
    if (l->bus->closing) return;
    uint64_t max = l->bus->opts.retry_max_ms;
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BUS_RETRY_MIN_MS;
    if (l->backoff_ms > max) l->backoff_ms = max;
    uv_timer_start(&l->retry, on_retry, l->backoff_ms, 0);
}

/* ---- Subscriber link ---------------------------------------------------------------------- */

/* Every reply on the subscriber connection: ["subscribe", ch, n], ["message", ch, data],
 * ["unsubscribe", ch, n]. hiredis keeps the callback of a SUBSCRIBE for the channel's
 * messages. */
static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    redisReply *reply = r;
    bus_link_t *l = ac->data;
    redis_bus_t *b = l->bus;
    if (!reply || b->closing) return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
    redisReply *kind = reply->element[0], *ch = reply->element[1], *data = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING) return;
    if (!strcmp(kind->str, "message") && data->type == REDIS_REPLY_STRING) {
        b->received++;
        if (b->cb.on_message) b->cb.on_message(b->cb.arg, ch->str, ch->len, data->str, data->len);
    } else if (!strcmp(kind->str, "subscribe")) {
        if (b->pending_subscribe > 0 && --b->pending_subscribe == 0) bus_set_state(b);
    }
}

static void sub_send(redis_bus_t *b, const char *verb, const char *const *chans, const size_t *lens,
                     size_t n)
{
    const char *argv[BUS_SUBSCRIBE_CHUNK + 1];
    size_t argl[BUS_SUBSCRIBE_CHUNK + 1];
    argv[0] = verb;
    argl[0] = strlen(verb);
    for (size_t i = 0; i < n; i++) {
        argv[i + 1] = chans[i];
        argl[i + 1] = lens[i];
    }
    redisAsyncCommandArgv(b->sub.ac, on_sub_reply, NULL, (int)n + 1, argv, argl);
}

typedef struct {
    redis_bus_t *b;
    const char *chans[BUS_SUBSCRIBE_CHUNK];
    size_t lens[BUS_SUBSCRIBE_CHUNK];
    size_t n;
} resub_t;

static int resub_one(const char *key, void *value, void *arg)
{
    (void)value;
    resub_t *r = arg;
    r->chans[r->n] = key;
    r->lens[r->n] = strlen(key);
    if (++r->n == BUS_SUBSCRIBE_CHUNK) {
        sub_send(r->b, "SUBSCRIBE", r->chans, r->lens, r->n);
        r->n = 0;
    }
    return 0;
}

/* ---- Command link ------------------------------------------------------------------------- */

static void on_ignore(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    (void)r;
    (void)priv;
}

static void outbox_flush(redis_bus_t *b)
{
    while (b->outbox_head && b->cmd.connected) {
        outbox_item_t *it = b->outbox_head;
        b->outbox_head = it->next;
        if (!b->outbox_head) b->outbox_tail = NULL;
        b->outbox_bytes -= it->channel_len + it->len;
        const char *argv[3] = {"PUBLISH", it->bytes, it->bytes + it->channel_len};
        size_t argl[3] = {7, it->channel_len, it->len};
        redisAsyncCommandArgv(b->cmd.ac, on_ignore, NULL, 3, argv, argl);
        b->published++;
        free(it);
    }
}

/* ---- Links -------------------------------------------------------------------------------- */

/* A link is ready once its first PING is answered, behind the AUTH when there are
 * credentials: a Redis that refuses them, or wants some and was given none, answers an error
 * (WRONGPASS, NOAUTH), and the link is dropped and retried with backoff: the bus never counts
 * as up on a connection that cannot work. */
static void on_ready(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    redisReply *reply = r;
    bus_link_t *l = ac->data;
    if (!reply || !l || l->ac != ac || (ac->c.flags & REDIS_DISCONNECTING))
        return; /* the link went away meanwhile, or is going */
    redis_bus_t *b = l->bus;
    if (b->closing) return;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_warn_throttled("cluster: Redis %s:%d refused this node: %.200s", b->ip, b->port,
                           reply->str);
        redisAsyncDisconnect(ac);
        return;
    }
    l->connected = true;
    l->backoff_ms = 0;
    if (l->subscriber) {
        /* Every channel again; up once each is confirmed. */
        b->pending_subscribe = b->channels.count;
        resub_t rs = {.b = b};
        strmap_sweep(&b->channels, resub_one, &rs);
        if (rs.n) sub_send(b, "SUBSCRIBE", rs.chans, rs.lens, rs.n);
    } else {
        if (b->db) {
            char db[16];
            int n = snprintf(db, sizeof db, "%d", b->db);
            const char *argv[2] = {"SELECT", db};
            size_t argl[2] = {6, (size_t)n};
            redisAsyncCommandArgv(ac, on_ignore, NULL, 2, argv, argl);
        }
        outbox_flush(b);
    }
    bus_set_state(b);
}

/* AUTH's answer: an error drops the link (the PING behind it then never makes it ready). */
static void on_auth(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR) on_ready(ac, r, priv);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    bus_link_t *l = ac->data;
    if (!l) return; /* abandoned (on_connect_timeout) */
    redis_bus_t *b = l->bus;
    if (b->closing) return;
    uv_timer_stop(&l->retry); /* the connect deadline */
    if (status != REDIS_OK) {
        log_warn_throttled("cluster: cannot connect to Redis %s:%d: %s", b->ip, b->port,
                           ac->errstr);
        l->ac = NULL; /* hiredis frees it after this callback */
        link_schedule(l);
        return;
    }
    if (b->auth.password[0]) { /* the PING waits behind it */
        const char *argv[3] = {"AUTH", b->auth.user, b->auth.password};
        size_t argl[3] = {4, strlen(b->auth.user), strlen(b->auth.password)};
        int argc = 3;
        if (!b->auth.user[0]) { /* AUTH password: the default user */
            argv[1] = argv[2];
            argl[1] = argl[2];
            argc = 2;
        }
        redisAsyncCommandArgv(ac, on_auth, NULL, argc, argv, argl);
    }
    const char *ping[1] = {"PING"};
    size_t pingl[1] = {4};
    redisAsyncCommandArgv(ac, on_ready, NULL, 1, ping, pingl);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    (void)status;
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    bus_link_t *l = ac->data;
    if (!l) return; /* abandoned (on_connect_timeout) */
    redis_bus_t *b = l->bus;
    l->ac = NULL; /* freed by hiredis after this callback */
    l->connected = false;
    if (b->closing) return;
    b->reconnects++;
    if (l->subscriber) b->pending_subscribe = 0;
    bus_set_state(b);
    link_schedule(l);
}

static void link_connect(bus_link_t *l)
{
    redis_bus_t *b = l->bus;
    if (b->closing || l->ac) return;
    redisAsyncContext *ac = redisAsyncConnect(b->ip, b->port);
    if (!ac || ac->err) {
        log_warn_throttled("cluster: cannot connect to Redis %s:%d: %s", b->ip, b->port,
                           ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        link_schedule(l);
        return;
    }
    ac->data = l;
    if (redisLibuvAttach(ac, b->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        link_schedule(l);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    uv_timer_start(&l->retry, on_connect_timeout, BUS_CONNECT_TIMEOUT_MS, 0);
}

/* ---- API ---------------------------------------------------------------------------------- */

static int resolve(const char *host, char *ip, size_t cap)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return -1;
    const void *addr = res->ai_family == AF_INET6
                           ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                           : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
    const char *ok = inet_ntop(res->ai_family, addr, ip, (socklen_t)cap);
    freeaddrinfo(res);
    return ok ? 0 : -1;
}

redis_bus_t *redis_bus_new(uv_loop_t *loop, const char *url, const redis_bus_options_t *opts,
                           const redis_bus_callbacks_t *cb, char *err, size_t errcap)
{
    char host[256];
    int port, db;
    if (redis_bus_parse_url(url, host, sizeof host, &port, &db, err, errcap) < 0) return NULL;
    redis_bus_t *b = calloc(1, sizeof *b);
    if (!b || strmap_init(&b->channels) < 0) {
        free(b);
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    if (resolve(host, b->ip, sizeof b->ip) < 0) {
        snprintf(err, errcap, "cannot resolve the Redis host %s", host);
        strmap_free(&b->channels, NULL);
        free(b);
        return NULL;
    }
    if (redis_bus_parse_auth(url, &b->auth) < 0) { /* checked by the parser above */
        strmap_free(&b->channels, NULL);
        free(b);
        snprintf(err, errcap, "cannot read the Redis credentials in the cluster URL");
        return NULL;
    }
    b->loop = loop;
    b->port = port;
    b->db = db;
    if (opts) b->opts = *opts;
    if (!b->opts.outbox_max_bytes) b->opts.outbox_max_bytes = BUS_OUTBOX_DEFAULT;
    if (!b->opts.retry_max_ms) b->opts.retry_max_ms = BUS_RETRY_DEFAULT;
    b->cb = *cb;
    bus_link_t *links[2] = {&b->sub, &b->cmd};
    for (int i = 0; i < 2; i++) {
        links[i]->bus = b;
        links[i]->subscriber = i == 0;
        uv_timer_init(loop, &links[i]->retry);
        links[i]->retry.data = links[i];
        b->open_handles++;
    }
    link_connect(&b->sub);
    link_connect(&b->cmd);
    return b;
}

static void on_timer_closed(uv_handle_t *h)
{
    redis_bus_t *b = ((bus_link_t *)h->data)->bus;
    if (--b->open_handles > 0) return;
    if (b->close_cb) b->close_cb(b->close_arg);
    explicit_bzero(&b->auth, sizeof b->auth);
    free(b);
}

void redis_bus_close(redis_bus_t *b, void (*close_cb)(void *arg), void *arg)
{
    if (!b || b->closing) return;
    b->closing = true;
    b->close_cb = close_cb;
    b->close_arg = arg;
    bus_link_t *links[2] = {&b->sub, &b->cmd};
    for (int i = 0; i < 2; i++) {
        bus_link_t *l = links[i];
        l->connected = false;
        if (l->ac) {
            /* Pending callbacks run now with NULL, then the disconnect callback; all of
             * them see closing and leave the bus alone. */
            redisAsyncContext *ac = l->ac;
            l->ac = NULL;
            redisAsyncFree(ac);
        }
        uv_timer_stop(&l->retry);
        uv_close((uv_handle_t *)&l->retry, on_timer_closed);
    }
    while (b->outbox_head) {
        outbox_item_t *it = b->outbox_head;
        b->outbox_head = it->next;
        free(it);
    }
    strmap_free(&b->channels, NULL);
}

void redis_bus_subscribe(redis_bus_t *b, const char *channel, size_t len)
{
    if (b->closing) return;
    char key[512];
    if (len >= sizeof key || memchr(channel, '\0', len)) return;
    memcpy(key, channel, len);
    key[len] = '\0';
    uintptr_t n = (uintptr_t)strmap_get(&b->channels, key);
    if (strmap_set(&b->channels, key, (void *)(n + 1)) < 0) return;
    if (n == 0 && b->sub.connected) {
        const char *c = key;
        if (!b->up) b->pending_subscribe++;
        sub_send(b, "SUBSCRIBE", &c, &len, 1);
    }
}

void redis_bus_unsubscribe(redis_bus_t *b, const char *channel, size_t len)
{
    if (b->closing) return;
    char key[512];
    if (len >= sizeof key || memchr(channel, '\0', len)) return;
    memcpy(key, channel, len);
    key[len] = '\0';
    uintptr_t n = (uintptr_t)strmap_get(&b->channels, key);
    if (n == 0) return;
    if (n > 1) {
        strmap_set(&b->channels, key, (void *)(n - 1));
        return;
    }
    strmap_remove(&b->channels, key);
    if (b->sub.connected) {
        const char *c = key;
        sub_send(b, "UNSUBSCRIBE", &c, &len, 1);
    }
}

void redis_bus_publish(redis_bus_t *b, const char *channel, size_t channel_len, const char *data,
                       size_t len)
{
    if (b->closing) return;
    if (b->cmd.connected) {
        const char *argv[3] = {"PUBLISH", channel, data};
        size_t argl[3] = {7, channel_len, len};
        redisAsyncCommandArgv(b->cmd.ac, on_ignore, NULL, 3, argv, argl);
        b->published++;
        return;
    }
    if (b->outbox_bytes + channel_len + len > b->opts.outbox_max_bytes) {
        b->lost++;
        b->dropped++;
        return;
    }
    outbox_item_t *it = malloc(sizeof *it + channel_len + len);
    if (!it) {
        b->lost++;
        b->dropped++;
        return;
    }
    it->next = NULL;
    it->channel_len = channel_len;
    it->len = len;
    memcpy(it->bytes, channel, channel_len);
    memcpy(it->bytes + channel_len, data, len);
    if (b->outbox_tail)
        b->outbox_tail->next = it;
    else
        b->outbox_head = it;
    b->outbox_tail = it;
    b->outbox_bytes += channel_len + len;
}

typedef struct {
    redis_bus_reply_fn fn;
    void *arg;
} command_ctx_t;

static void on_command_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    command_ctx_t *c = priv;
    c->fn(c->arg, r);
    free(c);
}

int redis_bus_command(redis_bus_t *b, redis_bus_reply_fn cb, void *arg, int argc, const char **argv,
                      const size_t *argvlen)
{
    if (b->closing || !b->cmd.connected) return -1;
    command_ctx_t *c = malloc(sizeof *c);
    if (!c) return -1;
    c->fn = cb;
    c->arg = arg;
    if (redisAsyncCommandArgv(b->cmd.ac, on_command_reply, c, argc, argv, argvlen) != REDIS_OK) {
        free(c);
        return -1;
    }
    return 0;
}

void redis_bus_flush(redis_bus_t *b)
{
    if (!b->closing && b->cmd.connected) redisAsyncHandleWrite(b->cmd.ac);
}

bool redis_bus_up(const redis_bus_t *b)
{
    return b->up;
}

void redis_bus_stats(const redis_bus_t *b, redis_bus_stats_t *out)
{
    out->published = b->published;
    out->received = b->received;
    out->dropped = b->dropped;
    out->reconnects = b->reconnects;
    out->outbox_bytes = b->outbox_bytes;
    out->channels = b->channels.count;
    out->up = b->up;
}
