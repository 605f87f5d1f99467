/* Rate limits: token buckets keyed by user or IP, and concurrent-connection counters. Pure
 * arithmetic on times the caller passes in, so the tests need no clock. Loop thread only. */
#ifndef PARLOR_CHAT_LIMITS_H
#define PARLOR_CHAT_LIMITS_H

#include <stdint.h>

#include "core/strmap.h"

typedef struct {
    double tokens;
    uint64_t last_ms;
} bucket_t;

/* Takes one token from a bucket refilled at rate per second up to burst. Returns 0 when
 * allowed, else the milliseconds until a token is there. rate 0 disables the limit. */
uint32_t bucket_take(bucket_t *b, double rate, double burst, uint64_t now_ms);

/* A family of buckets, one per key, plus a concurrent counter per key. */
typedef struct {
    double rate, burst;      /* per second; rate 0 = no rate limit */
    uint32_t max_concurrent; /* 0 = unlimited */
    strmap_t map;
} limiter_t;

int limiter_init(limiter_t *l, double rate, double burst, uint32_t max_concurrent);
void limiter_free(limiter_t *l);
/* A rate-limited event for key: 0 allowed, else ms to wait. */
uint32_t limiter_take(limiter_t *l, const char *key, uint64_t now_ms);
/* Takes n tokens that were spent elsewhere (another node of a cluster admitted them): the
 * bucket may go below zero, down to -burst (the wait grows; never more than (burst + 1) / rate
 * seconds). */
void limiter_drain(limiter_t *l, const char *key, double n, uint64_t now_ms);
/* Counts a new concurrent holder for key: 0 allowed (counted), -1 refused (at the maximum). */
int limiter_acquire(limiter_t *l, const char *key);
void limiter_release(limiter_t *l, const char *key);
/* Drops entries that are full and hold nothing, so idle keys cost no memory. */
void limiter_sweep(limiter_t *l, uint64_t now_ms);

#endif
