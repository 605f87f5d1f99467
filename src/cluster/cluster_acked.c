/* A session's acknowledged positions in Redis: see cluster_acked.h. */
#include "cluster/cluster_acked.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h" /* ACKED_KEEP, ACKED_LINGER_MS, ACKED_KEY_SIZE */
#include "core/log.h"

#define KEY_MAX 192

struct cluster_acked {
    chat_t *chat;
    redis_bus_t *bus;
    char prefix[48]; /* "parlor:<db>:a:" */
    size_t prefix_len;
    char keep[16], linger[24]; /* LTRIM's start, PEXPIRE's milliseconds, as text */
};

typedef struct {
    chat_acked_done_fn done;
    void *arg;
} fetch_t;

static size_t key_of(const cluster_acked_t *a, const char *key, char out[KEY_MAX])
{
    int n = snprintf(out, KEY_MAX, "%s%s", a->prefix, key);
    return n > 0 && n < KEY_MAX ? (size_t)n : 0;
}

static void ignore_reply(void *arg, struct redisReply *reply)
{
    (void)arg;
    (void)reply;
}

/* Fire and forget, but written to the socket now, before the ack goes to the client
 * (chat_send.c): once the client has its ack, the position is in the kernel's buffer for
 * Redis even if this process is killed the next instant. A push lost with the connection
 * only means that a recovery on another node may replay that one message to its sender (who
 * has it from the ack). */
static void push(void *ud, const char *key, int64_t pos)
{
    cluster_acked_t *a = ud;
    char k[KEY_MAX], p[24];
    size_t kl = key_of(a, key, k);
    if (!kl) return;
    int pl = snprintf(p, sizeof p, "%lld", (long long)pos);
    const char *rpush[] = {"RPUSH", k, p};
    const size_t rpush_len[] = {5, kl, (size_t)pl};
    if (redis_bus_command(a->bus, ignore_reply, NULL, 3, rpush, rpush_len) < 0) return;
    const char *trim[] = {"LTRIM", k, a->keep, "-1"};
    const size_t trim_len[] = {5, kl, strlen(a->keep), 2};
    redis_bus_command(a->bus, ignore_reply, NULL, 4, trim, trim_len);
    const char *exp[] = {"PEXPIRE", k, a->linger};
    const size_t exp_len[] = {7, kl, strlen(a->linger)};
    redis_bus_command(a->bus, ignore_reply, NULL, 3, exp, exp_len);
    redis_bus_flush(a->bus);
}

static void fetched(void *arg, struct redisReply *reply)
{
    fetch_t *f = arg;
    int64_t pos[ACKED_KEEP];
    size_t n = 0;
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements && n < ACKED_KEEP; i++) {
            const redisReply *e = reply->element[i];
            if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len > 20) continue;
            char buf[24], *end;
            memcpy(buf, e->str, e->len);
            buf[e->len] = '\0';
            long long v = strtoll(buf, &end, 10);
            if (*end == '\0' && v > 0) pos[n++] = v;
        }
    }
    f->done(f->arg, pos, n);
    free(f);
}

static int fetch(void *ud, const char *key, chat_acked_done_fn done, void *arg)
{
    cluster_acked_t *a = ud;
    char k[KEY_MAX];
    size_t kl = key_of(a, key, k);
    if (!kl) return -1;
    fetch_t *f = malloc(sizeof *f);
    if (!f) return -1;
    f->done = done;
    f->arg = arg;
    const char *argv[] = {"LRANGE", k, a->keep, "-1"};
    const size_t argvlen[] = {6, kl, strlen(a->keep), 2};
    if (redis_bus_command(a->bus, fetched, f, 4, argv, argvlen) < 0) {
        free(f);
        return -1;
    }
    return 0;
}

cluster_acked_t *cluster_acked_new(chat_t *chat, redis_bus_t *bus, int db)
{
    cluster_acked_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->chat = chat;
    a->bus = bus;
    a->prefix_len = (size_t)snprintf(a->prefix, sizeof a->prefix, "parlor:%d:a:", db);
    snprintf(a->keep, sizeof a->keep, "-%d", ACKED_KEEP);
    snprintf(a->linger, sizeof a->linger, "%d", ACKED_LINGER_MS);
    chat_acked_hooks_t h = {.push = push, .fetch = fetch, .ud = a};
    chat_set_acked_hooks(chat, &h);
    return a;
}

void cluster_acked_detach(cluster_acked_t *a)
{
    if (a) chat_set_acked_hooks(a->chat, NULL);
}

void cluster_acked_free(cluster_acked_t *a)
{
    free(a);
}
