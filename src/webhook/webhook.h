/* Webhooks (docs/webhooks.md): the delivery of the store's outbox (store.h) to the operator's
 * URLs. On the loop: a timer claims due rows from the store (through store_submit: the
 * store's own threads run the SQL), renders each as its JSON body with the chat layer's
 * documents, and acks the outcomes. Off the loop: `concurrency` sender threads POST with
 * libcurl, each attempt bounded by a timeout, and hand results back through a uv_async. A
 * slow or dead receiver only fills the bounded in-flight set: chat traffic never waits for
 * it. */
#ifndef PARLOR_WEBHOOK_WEBHOOK_H
#define PARLOR_WEBHOOK_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "chat/chat.h"
#include "store/store.h"

#define WEBHOOK_URLS_MAX     8           /* each row keeps a bit per URL (done_mask) */
#define WEBHOOK_RESPONSE_MAX (64 * 1024) /* response body bytes read; the rest is cut */

typedef struct {
    const char *const *urls; /* http:// or https://, 1..WEBHOOK_URLS_MAX */
    size_t nurls;
    const char *secret;
    int64_t timeout_ms;      /* per attempt (connect + request + response) */
    int64_t retry_base_ms;   /* first retry wait (before jitter) */
    int64_t retry_max_ms;    /* longest wait between attempts */
    int64_t retry_window_ms; /* after this long since the event, a failing delivery fails */
    unsigned concurrency;    /* sender threads */
    int64_t poll_ms;         /* how often the outbox is looked at when idle */
} webhook_options_t;

typedef struct {
    uint64_t delivered, failed, skipped; /* rows, since start */
    uint64_t attempts, attempt_errors;   /* POSTs, and those that were not 2xx */
    int64_t pending, failed_rows;        /* in the outbox (last count), all nodes */
    size_t in_flight;
    /* delivery latency, event to 2xx, ms: cumulative counts per bucket (le) */
    uint64_t latency_buckets[9];
    uint64_t latency_count;
    double latency_sum_ms;
} webhook_stats_t;

extern const int64_t webhook_latency_le[9]; /* the buckets' upper bounds, ms; last: +Inf (0) */

typedef struct webhook webhook_t;

/* Validates the options (NULL with a message in err), starts the threads and the timer. The
 * store must have been opened after store_outbox_configure turned the outbox on. */
webhook_t *webhook_new(uv_loop_t *loop, store_t *store, chat_t *chat, const webhook_options_t *o,
                       char *err, size_t errcap);
/* Before store_close: stops claiming, aborts sends in flight, joins the threads and submits
 * the outcomes known so far (rows sent but not acked come back after their lease). */
void webhook_stop(webhook_t *w);
/* After the loop ended. NULL is a no-op. */
void webhook_free(webhook_t *w);
void webhook_stats(const webhook_t *w, webhook_stats_t *out);

#endif
