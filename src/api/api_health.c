/* GET /healthz. It answers 200 only when the store reached its database just now (a
 * STORE_OP_PING), so a load balancer takes a node whose PostgreSQL is gone out of rotation,
 * and 503 with the reason otherwise.
 *
 * /healthz needs no token, so one ping serves everyone: at most one is in flight, requests that
 * arrive meanwhile wait for it, and a result younger than HEALTH_FRESH_MS is answered from
 * memory. A flood of /healthz therefore costs the store at most one read per HEALTH_FRESH_MS;
 * the waiters are deferred HTTP requests, bounded by the server's connection limits. */
#include "api/api_health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define HEALTH_FRESH_MS 1000

typedef struct health_waiter {
    struct health_waiter *next, *prev;
    api_health_t *h;
    http_conn_t *hc;
    bool head_only;
} health_waiter_t;

struct api_health {
    store_t *store;
    store_req_t ping;
    bool inflight;
    bool known;              /* a ping has completed */
    int last_status;         /* its status */
    uint64_t last_ms;        /* when it completed (uv_hrtime, ms) */
    health_waiter_t waiters; /* list head */
};

static uint64_t mono_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void answer(http_conn_t *hc, bool head_only, int status)
{
    char body[256];
    int n;
    if (status == STORE_OK) {
        n = snprintf(body, sizeof body, "{\"status\":\"ok\",\"store\":\"ok\"}");
        http_respond(hc, 200, "application/json", NULL, body, head_only ? 0 : (size_t)n);
        return;
    }
    n = snprintf(body, sizeof body,
                 "{\"status\":\"unavailable\",\"store\":\"%s\",\"reason\":\"store: %s\"}",
                 status == STORE_E_UNAVAILABLE ? "unreachable" : "failing", store_strerror(status));
    http_respond(hc, 503, "application/json", "Retry-After: 1\r\n", body,
                 head_only ? 0 : (size_t)n);
}

static void waiter_unlink(health_waiter_t *w)
{
    w->prev->next = w->next;
    w->next->prev = w->prev;
}

/* The client left while waiting: forget it (the ping's completion will not see it). */
static void waiter_aborted(http_conn_t *hc, void *arg)
{
    (void)hc;
    health_waiter_t *w = arg;
    waiter_unlink(w);
    free(w);
}

static void ping_done(store_req_t *req)
{
    api_health_t *h = req->data;
    h->inflight = false;
    h->known = true;
    h->last_status = req->status;
    h->last_ms = mono_ms();
    while (h->waiters.next != &h->waiters) {
        health_waiter_t *w = h->waiters.next;
        waiter_unlink(w);
        http_conn_set_abort(w->hc, NULL, NULL);
        answer(w->hc, w->head_only, req->status);
        free(w);
    }
}

api_health_t *api_health_new(store_t *store)
{
    api_health_t *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->store = store;
    h->waiters.next = h->waiters.prev = &h->waiters;
    return h;
}

void api_health_free(api_health_t *h)
{
    free(h);
}

int api_health_handle(http_conn_t *hc, const http_request_t *req, str_t body, void *arg)
{
    (void)body;
    api_health_t *h = arg;
    bool get = str_eq_cstr(req->method, "GET"), head = str_eq_cstr(req->method, "HEAD");
    if (!get && !head) {
        static const char msg[] =
            "{\"error\":{\"code\":\"METHOD_NOT_ALLOWED\",\"message\":\"method not allowed here\"}}";
        http_respond(hc, 405, "application/json", "Allow: GET\r\n", msg, sizeof msg - 1);
        return HTTP_DONE;
    }
    if (h->known && !h->inflight && mono_ms() - h->last_ms < HEALTH_FRESH_MS) {
        answer(hc, head, h->last_status);
        return HTTP_DONE;
    }
    health_waiter_t *w = calloc(1, sizeof *w);
    if (!w) {
        http_respond_error(hc, 503, "INTERNAL", "out of memory");
        return HTTP_DONE;
    }
    w->h = h;
    w->hc = hc;
    w->head_only = head;
    w->prev = h->waiters.prev;
    w->next = &h->waiters;
    w->prev->next = w;
    h->waiters.prev = w;
    http_conn_set_abort(hc, waiter_aborted, w);
    if (!h->inflight) {
        memset(&h->ping, 0, sizeof h->ping);
        h->ping.op = STORE_OP_PING;
        h->ping.done = ping_done;
        h->ping.data = h;
        int rc = store_submit(h->store, &h->ping);
        if (rc != STORE_OK) { /* closing: answer now (this request is the only waiter) */
            h->ping.status = rc;
            ping_done(&h->ping);
            return HTTP_DONE;
        }
        h->inflight = true;
    }
    return HTTP_DEFERRED;
}
