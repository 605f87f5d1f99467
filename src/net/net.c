/* The network layer: listeners, connections, coalesced writes and timeouts on a libuv loop. */
#include "net/net.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "core/log.h"

#define NET_MAX_IOV 64

struct net_listener {
    uv_tcp_t tcp;
    net_loop_t *nl;
    net_accept_cb cb;
    void *arg;
};

static void flush_all(net_loop_t *nl);
static void conn_flush(net_conn_t *c);

static void on_check(uv_check_t *h)
{
    flush_all(h->data);
}

static void on_prepare(uv_prepare_t *h)
{
    flush_all(h->data);
}

static void on_timeout(timerq_t *q, tq_entry_t *e)
{
    net_conn_t *c = (net_conn_t *)((char *)e - offsetof(net_conn_t, timeout));
    log_debug("conn %llu: %s timeout, closing", (unsigned long long)c->id,
              q == &net_conn_nl(c)->header_tq ? "header"
              : q == &net_conn_nl(c)->idle_tq ? "idle"
                                              : "linger");
    net_conn_close(c);
}

static void on_send_timeout(timerq_t *q, tq_entry_t *e)
{
    net_conn_t *c = (net_conn_t *)((char *)e - offsetof(net_conn_t, send_timeout));
    log_debug("conn %llu: the peer took none of our output for %llu ms, closing",
              (unsigned long long)c->id, (unsigned long long)q->duration_ms);
    net_conn_close(c);
}

int net_loop_init(net_loop_t *nl, uv_loop_t *loop, const net_limits_t *limits)
{
    memset(nl, 0, offsetof(net_loop_t, scratch));
    nl->loop = loop;
    nl->limits = *limits;
    slab_pool_init(&nl->conn_pool, sizeof(net_conn_t));
    uv_check_init(loop, &nl->check);
    nl->check.data = nl;
    uv_check_start(&nl->check, on_check);
    uv_prepare_init(loop, &nl->prepare);
    nl->prepare.data = nl;
    uv_prepare_start(&nl->prepare, on_prepare);
    /* Neither handle alone should keep the loop alive. */
    uv_unref((uv_handle_t *)&nl->check);
    uv_unref((uv_handle_t *)&nl->prepare);
    timerq_init(loop, &nl->header_tq, limits->header_timeout_ms, on_timeout);
    timerq_init(loop, &nl->idle_tq, limits->idle_timeout_ms, on_timeout);
    timerq_init(loop, &nl->linger_tq, 2000, on_timeout);
    timerq_init(loop, &nl->send_tq, limits->send_timeout_ms, on_send_timeout);
    uv_unref((uv_handle_t *)&nl->linger_tq.timer);
    uv_unref((uv_handle_t *)&nl->send_tq.timer);
    uv_unref((uv_handle_t *)&nl->header_tq.timer);
    uv_unref((uv_handle_t *)&nl->idle_tq.timer);
    return 0;
}

static void loop_close_handles(net_loop_t *nl)
{
    uv_close((uv_handle_t *)&nl->check, NULL);
    uv_close((uv_handle_t *)&nl->prepare, NULL);
    timerq_close(&nl->header_tq);
    timerq_close(&nl->idle_tq);
    timerq_close(&nl->linger_tq);
    timerq_close(&nl->send_tq);
    slab_pool_trim(&nl->conn_pool); /* every connection is gone */
}

void net_loop_close(net_loop_t *nl)
{
    /* Lingering connections still need the timers: close once the last one is gone. */
    if (nl->num_conns == 0)
        loop_close_handles(nl);
    else
        nl->close_when_empty = true;
}

/* ---- connections ---- */

/* One per connection (issue 17: idle memory per socket): a guard against growth of our part
 * (libuv's uv_tcp_t is 248 bytes on x86-64 Linux, 368 in all). */
_Static_assert(sizeof(net_conn_t) - sizeof(uv_tcp_t) <= 120,
               "net_conn_t's own fields fit 120 bytes");

static void inbuf_free(net_inbuf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* -1: out of memory, or past 2^31 bytes (max_inbound cuts long before). */
static int inbuf_append(net_inbuf_t *b, const char *p, size_t n)
{
    if (n > (size_t)INT32_MAX - b->len) return -1;
    size_t need = b->len + n;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need) cap *= 2; /* need <= 2^31: cap stays <= 2^31 */
        char *d = realloc(b->data, cap);
        if (!d) return -1;
        b->data = d;
        b->cap = (uint32_t)cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len = (uint32_t)need;
    return 0;
}

static void inbuf_consume(net_inbuf_t *b, size_t n)
{
    if (n >= b->len) {
        inbuf_free(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= (uint32_t)n;
}

static void conn_free_outq(net_conn_t *c)
{
    net_conn_nl(c)->out_bytes_total -= c->out_bytes;
    for (uint32_t i = 0; i < c->outq_len; i++) rbuf_unref(c->outq[i].buf);
    free(c->outq);
    c->outq = NULL;
    c->outq_len = c->outq_cap = 0;
    c->out_bytes = 0;
}

static void on_conn_closed(uv_handle_t *h)
{
    net_conn_t *c = (net_conn_t *)h;
    net_loop_t *nl = net_conn_nl(c);
    if (c->handler && c->handler->on_close) c->handler->on_close(c);
    if (c->flags & NET_CONN_IN_FLUSH) {
        /* Rare: queued for a flush after the check phase; unlink before freeing. */
        for (net_conn_t **pp = &nl->flush_head; *pp; pp = &(*pp)->flush_next)
            if (*pp == c) {
                *pp = c->flush_next;
                break;
            }
    }
    /* Whatever a callback above did, nothing may reach c after this. */
    timerq_remove(&c->timeout);
    timerq_remove(&c->send_timeout);
    nl->num_conns--;
    if (nl->num_conns == 0 && nl->close_when_empty) {
        nl->close_when_empty = false;
        loop_close_handles(nl);
    }
    conn_free_outq(c);
    inbuf_free(&c->in);
    slab_free(&nl->conn_pool, c);
}

void net_conn_close(net_conn_t *c)
{
    if (c->flags & NET_CONN_CLOSING) return;
    c->flags |= NET_CONN_CLOSING;
    timerq_remove(&c->timeout);
    timerq_remove(&c->send_timeout);
    uv_read_stop((uv_stream_t *)&c->tcp);
    /* A write in flight still references its slices; they are released in its callback. */
    if (!(c->flags & NET_CONN_WRITING)) conn_free_outq(c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void on_shutdown(uv_shutdown_t *req, int status)
{
    net_conn_t *c = req->data;
    free(req);
    if (status < 0 && status != UV_ECANCELED) net_conn_close(c);
}

/* Everything is written: send FIN, then read and discard until the peer closes too (or the
 * linger timeout), so that a peer still sending does not get a reset that would destroy the
 * response or close frame we just sent. */
static void conn_linger(net_conn_t *c)
{
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req) {
        net_conn_close(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        free(req);
        net_conn_close(c);
        return;
    }
    timerq_add(&net_conn_nl(c)->linger_tq, &c->timeout);
    if (c->flags & NET_CONN_PAUSED) {
        c->flags &= ~NET_CONN_PAUSED;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

void net_conn_close_after_write(net_conn_t *c)
{
    if (c->flags & (NET_CONN_CLOSING | NET_CONN_CLOSE_AFTER_WRITE)) return;
    c->flags |= NET_CONN_CLOSE_AFTER_WRITE;
    if (c->outq_len == 0 && !(c->flags & NET_CONN_WRITING)) {
        conn_linger(c);
        return;
    }
    if (!(c->flags & NET_CONN_IN_FLUSH)) {
        c->flags |= NET_CONN_IN_FLUSH;
        c->flush_next = net_conn_nl(c)->flush_head;
        net_conn_nl(c)->flush_head = c;
    }
}

int net_conn_write(net_conn_t *c, rbuf_t *buf, size_t off, size_t len)
{
    if (c->flags & (NET_CONN_CLOSING | NET_CONN_CLOSE_AFTER_WRITE)) return -1;
    if (len == 0) return 0;
    if (c->out_bytes + len > net_conn_nl(c)->limits.max_outbound) {
        log_info_throttled("conn %llu: outbound queue over %zu bytes (slow reader), closing",
                           (unsigned long long)c->id, net_conn_nl(c)->limits.max_outbound);
        net_conn_close(c);
        return -1;
    }
    net_loop_t *nl = net_conn_nl(c);
    if (nl->limits.max_outbound_total &&
        nl->out_bytes_total + len > nl->limits.max_outbound_total &&
        c->out_bytes + len > NET_FAIR_OUTBOUND) {
        nl->outbound_cuts++;
        log_warn_throttled("conn %llu: all outbound queues over %zu bytes; cutting this slow "
                           "reader (%zu bytes queued)",
                           (unsigned long long)c->id, nl->limits.max_outbound_total, c->out_bytes);
        net_conn_close(c);
        return -1;
    }
    if (c->outq_len == c->outq_cap) {
        uint32_t cap = c->outq_cap ? c->outq_cap * 2 : 4;
        net_slice_t *q = realloc(c->outq, cap * sizeof *q);
        if (!q) {
            net_conn_close(c);
            return -1;
        }
        c->outq = q;
        c->outq_cap = cap;
    }
    c->outq[c->outq_len++] = (net_slice_t){rbuf_ref(buf), (uint32_t)off, (uint32_t)len};
    c->out_bytes += len;
    nl->out_bytes_total += len;
    if (!(c->flags & NET_CONN_IN_FLUSH)) {
        c->flags |= NET_CONN_IN_FLUSH;
        c->flush_next = net_conn_nl(c)->flush_head;
        net_conn_nl(c)->flush_head = c;
    }
    return 0;
}

int net_conn_write_copy(net_conn_t *c, const void *p, size_t len)
{
    if (net_conn_closing(c)) return -1;
    rbuf_t *b = rbuf_from(p, len);
    if (!b) {
        net_conn_close(c);
        return -1;
    }
    int rc = net_conn_write(c, b, 0, len);
    rbuf_unref(b);
    return rc;
}

/* Drops the first n written bytes from the queue. */
static void outq_advance(net_conn_t *c, size_t n)
{
    uint32_t i = 0;
    c->out_bytes -= n;
    net_conn_nl(c)->out_bytes_total -= n;
    while (n > 0 && i < c->outq_len) {
        net_slice_t *s = &c->outq[i];
        if (n >= s->len) {
            n -= s->len;
            rbuf_unref(s->buf);
            i++;
        } else {
            s->off += (uint32_t)n;
            s->len -= (uint32_t)n;
            n = 0;
        }
    }
    memmove(c->outq, c->outq + i, (c->outq_len - i) * sizeof *c->outq);
    c->outq_len -= i;
    if (c->outq_len == 0) {
        /* An idle connection keeps no queue memory. */
        free(c->outq);
        c->outq = NULL;
        c->outq_cap = 0;
    }
}

typedef struct {
    uv_write_t req;
    net_conn_t *conn;
    size_t bytes;
} write_req_t;

static void after_queue_drained(net_conn_t *c)
{
    timerq_remove(&c->send_timeout);
    if (c->flags & NET_CONN_CLOSE_AFTER_WRITE) {
        conn_linger(c);
        return;
    }
    if (c->handler && c->handler->on_drain) c->handler->on_drain(c);
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    net_conn_t *c = w->conn;
    c->flags &= ~NET_CONN_WRITING;
    if (c->flags & NET_CONN_CLOSING) {
        conn_free_outq(c);
        free(w);
        return;
    }
    outq_advance(c, w->bytes);
    free(w);
    if (status < 0) {
        log_debug("conn %llu: write error %s", (unsigned long long)c->id, uv_strerror(status));
        net_conn_close(c);
        return;
    }
    if (c->outq_len > 0)
        conn_flush(c);
    else
        after_queue_drained(c);
}

/* One writev for everything queued; what the kernel does not take goes out with uv_write. */
static void conn_flush(net_conn_t *c)
{
    if (c->flags & (NET_CONN_CLOSING | NET_CONN_WRITING) || c->outq_len == 0) return;
    for (;;) {
        uv_buf_t iov[NET_MAX_IOV];
        unsigned n = c->outq_len < NET_MAX_IOV ? c->outq_len : NET_MAX_IOV;
        size_t total = 0;
        for (unsigned i = 0; i < n; i++) {
            iov[i] = uv_buf_init(c->outq[i].buf->data + c->outq[i].off, c->outq[i].len);
            total += c->outq[i].len;
        }
        int r = uv_try_write((uv_stream_t *)&c->tcp, iov, n);
        if (r == UV_EAGAIN) r = 0;
        if (r < 0) {
            log_debug("conn %llu: write error %s", (unsigned long long)c->id, uv_strerror(r));
            net_conn_close(c);
            return;
        }
        outq_advance(c, (size_t)r);
        if (c->outq_len == 0) {
            after_queue_drained(c);
            return;
        }
        if ((size_t)r == total) continue; /* more than NET_MAX_IOV slices were queued */
        break;
    }
    /* The socket is full: hand the rest to libuv, which writes as the peer reads. */
    write_req_t *w = malloc(sizeof *w);
    if (!w) {
        net_conn_close(c);
        return;
    }
    unsigned n = c->outq_len < NET_MAX_IOV ? c->outq_len : NET_MAX_IOV;
    uv_buf_t iov[NET_MAX_IOV];
    w->conn = c;
    w->bytes = 0;
    for (unsigned i = 0; i < n; i++) {
        iov[i] = uv_buf_init(c->outq[i].buf->data + c->outq[i].off, c->outq[i].len);
        w->bytes += c->outq[i].len;
    }
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, iov, n, on_write);
    if (r < 0) {
        free(w);
        net_conn_close(c);
        return;
    }
    c->flags |= NET_CONN_WRITING;
    /* The kernel's buffer is full: the peer has send_timeout_ms to take this write (a write
     * that completes and leaves more queued starts a new period). Without it, a peer that
     * never reads would keep a download, a long poll's answer or a closing connection, with
     * its queue and descriptor, for ever. */
    if (net_conn_nl(c)->limits.send_timeout_ms)
        timerq_add(&net_conn_nl(c)->send_tq, &c->send_timeout);
}

static void conn_deliver(net_conn_t *c, char *data, size_t len, bool from_scratch);

static void flush_all(net_loop_t *nl)
{
    while (nl->flush_head) {
        net_conn_t *c = nl->flush_head;
        nl->flush_head = c->flush_next;
        c->flags &= ~NET_CONN_IN_FLUSH;
        if (c->flags & NET_CONN_REPROCESS) {
            c->flags &= ~NET_CONN_REPROCESS;
            /* May queue output (and re-add c to the list); flushed on a later pass. */
            if (c->in.len && !(c->flags & NET_CONN_CLOSING))
                conn_deliver(c, c->in.data, c->in.len, false);
        }
        conn_flush(c);
    }
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    net_conn_t *c = (net_conn_t *)h;
    out->base = net_conn_nl(c)->scratch;
    out->len = sizeof net_conn_nl(c)->scratch;
}

static void conn_deliver(net_conn_t *c, char *data, size_t len, bool from_scratch)
{
    if (!c->handler) return;
    size_t used = c->handler->on_data(c, data, len);
    if (c->flags & (NET_CONN_CLOSING | NET_CONN_CLOSE_AFTER_WRITE)) {
        /* Closing: what is left of the input will never be read (a lingering connection
         * discards what comes), so its buffer goes now, not when the linger ends. */
        inbuf_free(&c->in);
        return;
    }
    if (used > len) used = len;
    if (from_scratch) {
        if (used < len && inbuf_append(&c->in, data + used, len - used) < 0) net_conn_close(c);
    } else {
        inbuf_consume(&c->in, used);
    }
    if (c->in.len > net_conn_nl(c)->limits.max_inbound) {
        log_info_throttled("conn %llu: more than %zu bytes of unprocessed input, closing",
                           (unsigned long long)c->id, net_conn_nl(c)->limits.max_inbound);
        net_conn_close(c);
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    net_conn_t *c = (net_conn_t *)s;
    if (nread < 0) {
        if (nread != UV_EOF)
            log_debug("conn %llu: read error %s", (unsigned long long)c->id, uv_strerror(nread));
        net_conn_close(c);
        return;
    }
    if (nread == 0) return;
    if (c->flags & NET_CONN_CLOSE_AFTER_WRITE) return; /* closing: input is discarded */
    if (c->in.len == 0) {
        conn_deliver(c, b->base, (size_t)nread, true);
    } else {
        if (inbuf_append(&c->in, b->base, (size_t)nread) < 0) {
            net_conn_close(c);
            return;
        }
        conn_deliver(c, c->in.data, c->in.len, false);
    }
}

void net_conn_schedule_reprocess(net_conn_t *c)
{
    if (c->flags & NET_CONN_CLOSING) return;
    c->flags |= NET_CONN_REPROCESS;
    if (!(c->flags & NET_CONN_IN_FLUSH)) {
        c->flags |= NET_CONN_IN_FLUSH;
        c->flush_next = net_conn_nl(c)->flush_head;
        net_conn_nl(c)->flush_head = c;
    }
}

void net_conn_pause(net_conn_t *c)
{
    if (c->flags & (NET_CONN_PAUSED | NET_CONN_CLOSING)) return;
    c->flags |= NET_CONN_PAUSED;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

void net_conn_resume(net_conn_t *c)
{
    if (!(c->flags & NET_CONN_PAUSED) || (c->flags & NET_CONN_CLOSING)) return;
    c->flags &= ~NET_CONN_PAUSED;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* A closing connection (net_conn_close called, close callback pending) never joins a timer
 * queue again: it is freed in its close callback, and an entry left queued would then be
 * written through by its neighbours' removals. Layers above may still answer on it (a long
 * poll answered from another connection's POST) before they learn it is gone. */
void net_conn_arm_header_timeout(net_conn_t *c)
{
    if (c->flags & NET_CONN_CLOSING) return;
    if (net_conn_nl(c)->limits.header_timeout_ms)
        timerq_add(&net_conn_nl(c)->header_tq, &c->timeout);
}

void net_conn_arm_idle_timeout(net_conn_t *c)
{
    if (c->flags & NET_CONN_CLOSING) return;
    if (net_conn_nl(c)->limits.idle_timeout_ms)
        timerq_add(&net_conn_nl(c)->idle_tq, &c->timeout);
    else
        timerq_remove(&c->timeout);
}

void net_conn_clear_timeout(net_conn_t *c)
{
    timerq_remove(&c->timeout);
}

/* The connections are the loop's TCP handles whose data is nl (a listener's is the
 * net_listener_t): libuv's list of handles, not a list of our own (16 bytes less per
 * connection). uv_walk allows fn to close handles. */
typedef struct {
    net_loop_t *nl;
    void (*fn)(net_conn_t *c, void *arg);
    void *arg;
} foreach_t;

static void foreach_handle(uv_handle_t *h, void *arg)
{
    const foreach_t *f = arg;
    if (h->type == UV_TCP && h->data == f->nl) f->fn((net_conn_t *)h, f->arg);
}

void net_foreach_conn(net_loop_t *nl, void (*fn)(net_conn_t *c, void *arg), void *arg)
{
    foreach_t f = {nl, fn, arg};
    uv_walk(nl->loop, foreach_handle, &f);
}

int net_conn_peer_name(net_conn_t *c, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof ip);
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof ip);
            port = ntohs(a->sin6_port);
        }
    }
    return snprintf(out, cap, "%s:%d", ip, port);
}

/* ---- listeners ---- */

static void on_connection(uv_stream_t *server, int status)
{
    net_listener_t *l = server->data;
    net_loop_t *nl = l->nl;
    if (status < 0) {
        log_warn_throttled("accept: %s", uv_strerror(status));
        return;
    }
    net_conn_t *c = slab_calloc(&nl->conn_pool);
    if (!c) return;
    uv_tcp_init(nl->loop, &c->tcp);
    c->tcp.data = nl;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        /* Close without the handler. */
        nl->num_conns++;
        c->flags |= NET_CONN_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    c->id = ++nl->next_conn_id;
    nl->num_conns++;
#ifndef __linux__
    uv_tcp_nodelay(&c->tcp, 1); /* (inherited from the listener on Linux: net_listen) */
#endif
    l->cb(c, l->arg);
    if (c->flags & NET_CONN_CLOSING) return;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int net_listen(net_loop_t *nl, const char *host, int port, net_accept_cb cb, void *arg,
               net_listener_t **out)
{
    struct sockaddr_storage ss;
    int r;
    if (strchr(host, ':'))
        r = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    else
        r = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (r < 0) return r;
    net_listener_t *l = calloc(1, sizeof *l);
    if (!l) return UV_ENOMEM;
    l->nl = nl;
    l->cb = cb;
    l->arg = arg;
    uv_tcp_init(nl->loop, &l->tcp);
    l->tcp.data = l;
    r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
#ifdef __linux__
    /* Accepted sockets inherit TCP_NODELAY from the listener on Linux: one setsockopt per
     * connection less (on_connection). */
    if (r == 0) r = uv_tcp_nodelay(&l->tcp, 1);
#endif
    if (r == 0) r = uv_listen((uv_stream_t *)&l->tcp, 4096, on_connection);
    if (r < 0) {
        uv_close((uv_handle_t *)&l->tcp, (uv_close_cb)free);
        return r;
    }
    *out = l;
    return 0;
}

int net_listener_port(net_listener_t *l)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len) != 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void net_listener_close(net_listener_t *l)
{
    if (l) uv_close((uv_handle_t *)&l->tcp, (uv_close_cb)free);
}
