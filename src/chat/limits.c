/* Token buckets and concurrent counters. */
#include "chat/limits.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

uint32_t bucket_take(bucket_t *b, double rate, double burst, uint64_t now_ms)
{
    if (rate <= 0) return 0;
    if (burst < 1) burst = 1;
    if (b->last_ms == 0) {
        b->tokens = burst;
    } else if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * rate / 1000.0;
        if (b->tokens > burst) b->tokens = burst;
    }
    b->last_ms = now_ms ? now_ms : 1;
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return 0;
    }
    double wait = ceil((1 - b->tokens) * 1000.0 / rate);
    return wait < 1 ? 1 : (uint32_t)wait;
}

typedef struct {
    bucket_t bucket;
    uint32_t concurrent;
} limit_entry_t;

int limiter_init(limiter_t *l, double rate, double burst, uint32_t max_concurrent)
{
    l->rate = rate;
    l->burst = burst;
    l->max_concurrent = max_concurrent;
    return strmap_init(&l->map);
}

void limiter_free(limiter_t *l)
{
    strmap_free(&l->map, free);
}

static limit_entry_t *entry(limiter_t *l, const char *key)
{
    limit_entry_t *e = strmap_get(&l->map, key);
    if (e) return e;
    e = calloc(1, sizeof *e);
    if (e && strmap_set(&l->map, key, e) < 0) {
        free(e);
        return NULL;
    }
    return e;
}

uint32_t limiter_take(limiter_t *l, const char *key, uint64_t now_ms)
{
    if (l->rate <= 0) return 0;
    limit_entry_t *e = entry(l, key);
    if (!e) return 0; /* out of memory: fail open rather than lock everyone out */
    return bucket_take(&e->bucket, l->rate, l->burst, now_ms);
}

void limiter_drain(limiter_t *l, const char *key, double n, uint64_t now_ms)
{
    if (l->rate <= 0 || n <= 0) return;
    limit_entry_t *e = entry(l, key);
    if (!e) return;
    bucket_t *b = &e->bucket;
    double burst = l->burst < 1 ? 1 : l->burst;
    if (b->last_ms == 0) {
        b->tokens = burst;
    } else if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * l->rate / 1000.0;
        if (b->tokens > burst) b->tokens = burst;
    }
    b->last_ms = now_ms ? now_ms : 1;
    b->tokens -= n;
    if (b->tokens < -burst) b->tokens = -burst;
}

int limiter_acquire(limiter_t *l, const char *key)
{
    if (l->max_concurrent == 0) return 0;
    limit_entry_t *e = entry(l, key);
    if (!e) return 0;
    if (e->concurrent >= l->max_concurrent) return -1;
    e->concurrent++;
    return 0;
}

void limiter_release(limiter_t *l, const char *key)
{
    if (l->max_concurrent == 0) return;
    limit_entry_t *e = strmap_get(&l->map, key);
    if (e && e->concurrent) e->concurrent--;
}

typedef struct {
    limiter_t *l;
    uint64_t now_ms;
} sweep_arg_t;

static int idle(const char *key, void *value, void *arg)
{
    sweep_arg_t *a = arg;
    limit_entry_t *e = value;
    (void)key;
    if (e->concurrent) return 0;
    bool full = a->l->rate <= 0 || e->bucket.last_ms == 0 ||
                e->bucket.tokens + (double)(a->now_ms - e->bucket.last_ms) * a->l->rate / 1000.0 >=
                    a->l->burst;
    if (full) free(e);
    return full;
}

void limiter_sweep(limiter_t *l, uint64_t now_ms)
{
    sweep_arg_t a = {l, now_ms};
    strmap_sweep(&l->map, idle, &a);
}
