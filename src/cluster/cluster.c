/* The chat layer's delivery seam wired to the Redis bus: see cluster.h and docs/cluster.md. */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "cluster/cluster_acked.h"
#include "cluster/cluster_codec.h"
#include "cluster/cluster_presence.h"
#include "cluster/redis_bus.h"
#include "core/log.h"
#include "store/store.h"

#define CHANNEL_MAX 128
/* How often the node reads the newest position of the database (chat_start): a new socket's
 * messages start after it (chat_recovery_ordered), and commits of other nodes to users this
 * node has no sockets of never reach it otherwise (docs/cluster.md). */
#define POSITION_REFRESH_MS 1000

struct cluster {
    chat_t *chat;
    redis_bus_t *bus;
    uint64_t node;    /* the id in envelopes: a hash of node_id, never 0 */
    uint64_t seq;     /* the last envelope sequence number used */
    char node_id[65]; /* as given or generated (logs) */
    char prefix[48];  /* "parlor:<db>:u:" */
    size_t prefix_len;
    buf_t out;          /* the envelope being published (reused) */
    uv_timer_t refresh; /* POSITION_REFRESH_MS */
    cpres_t *pres;      /* presence across nodes (cluster_presence.c) */
    bool closed;
    bool was_up;
    cluster_stats_t st;
    cluster_acked_t *acked; /* sessions' acked positions in Redis (cluster_acked.h) */
};

static size_t channel_of(const cluster_t *cl, const char *user, size_t len, char out[CHANNEL_MAX])
{
    if (cl->prefix_len + len >= CHANNEL_MAX) return 0;
    memcpy(out, cl->prefix, cl->prefix_len);
    memcpy(out + cl->prefix_len, user, len);
    out[cl->prefix_len + len] = '\0';
    return cl->prefix_len + len;
}

/* chat_deliver's other half: one envelope per user of the audience, on the user's channel. */
static void on_publish(void *ud, const chat_delivery_t *d)
{
    cluster_t *cl = ud;
    if (cl->closed) return;
    for (size_t i = 0; i < d->nusers; i++) {
        str_t u = d->users[i];
        if (d->skip_user && str_eq_cstr(u, d->skip_user)) continue;
        char ch[CHANNEL_MAX];
        size_t chlen = channel_of(cl, u.ptr, u.len, ch);
        if (!chlen) continue;
        cluster_envelope_t e = {
            .node = cl->node, .seq = cl->seq + 1, .except = d->except, .pos = d->pos, .user = u};
        e.prev = chat_delivery_prev(d, u);
        snprintf(e.event, sizeof e.event, "%s", d->event);
        cl->out.len = 0;
        if (cluster_codec_encode(&cl->out, &e, d->args, d->nargs) < 0) {
            log_warn_throttled("cluster: a %s delivery could not be encoded", d->event);
            continue;
        }
        cl->seq++;
        redis_bus_publish(cl->bus, ch, chlen, cl->out.data, cl->out.len);
        cl->st.published++;
        cl->st.published_bytes += cl->out.len;
    }
}

static void on_interest(void *ud, const char *user, bool on)
{
    cluster_t *cl = ud;
    if (cl->closed) return;
    char ch[CHANNEL_MAX];
    size_t chlen = channel_of(cl, user, strlen(user), ch);
    if (!chlen) return;
    if (on)
        redis_bus_subscribe(cl->bus, ch, chlen);
    else
        redis_bus_unsubscribe(cl->bus, ch, chlen);
}

static void on_message(void *arg, const char *channel, size_t channel_len, const char *data,
                       size_t len)
{
    cluster_t *cl = arg;
    if (cl->closed) return;
    cl->st.received++;
    cl->st.received_bytes += len;
    cluster_envelope_t e;
    if (cluster_codec_decode(data, len, &e) < 0 || channel_len != cl->prefix_len + e.user.len ||
        memcmp(channel, cl->prefix, cl->prefix_len) != 0 ||
        memcmp(channel + cl->prefix_len, e.user.ptr, e.user.len) != 0) {
        cl->st.malformed++;
        log_warn_throttled("cluster: a malformed envelope on %.*s was dropped (%llu so far)",
                           (int)(channel_len > 80 ? 80 : channel_len), channel,
                           (unsigned long long)cl->st.malformed);
        return;
    }
    if (e.node == cl->node) {
        cl->st.echoes++; /* delivered here already by chat_deliver's local half */
        return;
    }
    chat_delivery_t d = {
        .to = CHAT_TO_USERS,
        .users = &e.user,
        .nusers = 1,
        .except = e.except,
        .event = e.event,
        .args = &e.args,
        .nargs = 1,
        .pos = e.pos,
        .prev_users = &e.user,
        .prevs = &e.prev,
        .nprevs = 1,
    };
    chat_cache_remote(cl->chat, e.event, e.args); /* before: the delivery may answer from them */
    chat_deliver_local(cl->chat, &d);
}

static void on_state(void *arg, bool up, uint64_t lost)
{
    cluster_t *cl = arg;
    cl->st.up = up;
    if (!cl->closed) cpres_state(cl->pres, up);
    if (lost)
        log_warn("cluster: %llu publishes were dropped while Redis was away (the receivers "
                 "catch up from the store)",
                 (unsigned long long)lost);
    if (!up || cl->closed) return;
    /* Anything published to us while the bus was down is gone: every local socket reads what
     * it missed from the store (the first time up, there is nothing to miss yet). */
    if (cl->was_up) {
        cl->st.catch_ups++;
        chat_cache_forget(cl->chat);
        chat_catch_up(cl->chat);
    }
    cl->was_up = true;
}

static void on_refresh(uv_timer_t *t)
{
    cluster_t *cl = t->data;
    if (!cl->closed) chat_start(cl->chat);
}

static void bus_closed(void *arg)
{
    (void)arg;
}

static bool node_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

cluster_t *cluster_new(uv_loop_t *loop, chat_t *chat, const cluster_options_t *opts, char *err,
                       size_t errcap)
{
    char host[256];
    int port, db;
    if (redis_bus_parse_url(opts->url, host, sizeof host, &port, &db, err, errcap) < 0) return NULL;
    cluster_t *cl = calloc(1, sizeof *cl);
    if (!cl) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    if (opts->node_id && opts->node_id[0]) {
        if (!node_id_ok(opts->node_id)) {
            snprintf(err, errcap, "a node id is 1-64 of A-Z a-z 0-9 _ -");
            free(cl);
            return NULL;
        }
        snprintf(cl->node_id, sizeof cl->node_id, "%s", opts->node_id);
    } else {
        unsigned char r[8];
        if (RAND_bytes(r, sizeof r) != 1) {
            snprintf(err, errcap, "no randomness for a node id");
            free(cl);
            return NULL;
        }
        for (int i = 0; i < 8; i++) snprintf(cl->node_id + 2 * i, 3, "%02x", r[i]);
    }
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = cl->node_id; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    cl->node = h ? h : 1;
    /* Pub/sub ignores the database number: it is in the channel names, so clusters sharing
     * one Redis on different databases do not hear each other. */
    cl->prefix_len = (size_t)snprintf(cl->prefix, sizeof cl->prefix, "parlor:%d:u:", db);
    cl->chat = chat;
    buf_init(&cl->out);
    redis_bus_callbacks_t cb = {.on_message = on_message, .on_state = on_state, .arg = cl};
    redis_bus_options_t bo = {0};
    cl->bus = redis_bus_new(loop, opts->url, &bo, &cb, err, errcap);
    if (!cl->bus) {
        buf_free(&cl->out);
        free(cl);
        return NULL;
    }
    cl->pres = cpres_new(loop, chat, cl->bus, db, cl->node_id);
    if (!cl->pres) {
        snprintf(err, errcap, "out of memory");
        redis_bus_close(cl->bus, bus_closed, cl);
        buf_free(&cl->out);
        cl->closed = true; /* freed with the loop: the bus's handles still point here */
        return NULL;
    }
    chat_set_publish(chat, on_publish, cl);
    chat_set_interest(chat, on_interest, cl);
    cl->acked = cluster_acked_new(chat, cl->bus, db);
    uv_timer_init(loop, &cl->refresh);
    cl->refresh.data = cl;
    uv_timer_start(&cl->refresh, on_refresh, POSITION_REFRESH_MS, POSITION_REFRESH_MS);
    uv_unref((uv_handle_t *)&cl->refresh);
    log_info("cluster: node %s, Redis %s:%d db %d", cl->node_id, host, port, db);
    return cl;
}

void cluster_close(cluster_t *cl)
{
    if (!cl || cl->closed) return;
    cl->closed = true;
    chat_set_publish(cl->chat, NULL, NULL);
    chat_set_interest(cl->chat, NULL, NULL);
    cluster_acked_detach(cl->acked);
    cpres_close(cl->pres);
    uv_close((uv_handle_t *)&cl->refresh, NULL);
    redis_bus_close(cl->bus, bus_closed, cl);
}

void cluster_free(cluster_t *cl)
{
    if (!cl) return;
    buf_free(&cl->out);
    cluster_acked_free(cl->acked);
    cpres_free(cl->pres);
    free(cl);
}

void cluster_stats(const cluster_t *cl, cluster_stats_t *out)
{
    *out = cl->st;
}

const char *cluster_node_id(const cluster_t *cl)
{
    return cl->node_id;
}
