/* One load generator process: opens its share of the sockets, drives the idle, pairs, rate or
 * groups scenario on them when the coordinator says go, and verifies every message it counts. */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

void note_error(worker_t *w, const char *fmt, ...)
{
    if (w->res->first_error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->res->first_error, sizeof w->res->first_error, fmt, ap);
    va_end(ap);
}

bool in_window(const worker_t *w, uint64_t t)
{
    return t >= w->t_ws && t < w->t_we;
}

static void send_msg(worker_t *w, pair_t *p, uint64_t t_sched)
{
    uint64_t n = ++p->sent;
    w->sent++;
    w->res->sent++;
    uint64_t slot = n & (w->ring - 1);
    p->ackbits[slot >> 3] &= (uint8_t) ~(1u << (slot & 7));
    p->tsend[slot] = t_sched;
    char buf[8192 + 256];
    int len =
        snprintf(buf, sizeof buf,
                 "42%" PRIu64 "[\"send_message\",{\"recipientId\":\"%s\",\"content\":\"t%" PRIu64
                 "%s\",\"clientMsgId\":\"%" PRIu64 "\"}]",
                 n, p->ruser, t_sched, w->pad, n);
    client_send(&w->cl, &p->s, buf, (size_t)len);
}

bool find_u64(const char *p, size_t n, const char *key, uint64_t *out)
{
    size_t kl = strlen(key);
    const char *k = memmem(p, n, key, kl);
    if (!k) return false;
    const char *d = k + kl, *end = p + n;
    if (d >= end || *d < '0' || *d > '9') return false;
    uint64_t v = 0;
    while (d < end && *d >= '0' && *d <= '9') v = v * 10 + (uint64_t)(*d++ - '0');
    *out = v;
    return true;
}

bool ack_take(worker_t *w, const char *pk, size_t n, const char *user, uint64_t sent,
              uint8_t *ackbits, uint64_t *acked, const uint64_t *tsend, ack_t *out)
{
    uint64_t id = 0;
    size_t i = 1;
    while (i < n && pk[i] >= '0' && pk[i] <= '9') id = id * 10 + (uint64_t)(pk[i++] - '0');
    if (i == 1 || i >= n || pk[i] != '[') {
        w->res->err_proto++;
        note_error(w, "malformed ack: %.*s", (int)(n > 120 ? 120 : n), pk);
        return false;
    }
    const char *body = pk + i;
    size_t bl = n - i;
    bool ok = memmem(body, bl < 64 ? bl : 64, "\"ok\":true", 9) != NULL;
    if (!ok) {
        w->res->err_nack++;
        note_error(w, "send_message refused: %.*s", (int)(bl > 160 ? 160 : bl), body);
    }
    uint64_t slot = id & (w->ring - 1);
    if (id == 0 || id > sent || sent - id >= w->ring || (ackbits[slot >> 3] & (1u << (slot & 7)))) {
        w->res->err_ack++;
        note_error(w, "unexpected or repeated ack %" PRIu64 " for %s (sent %" PRIu64 ")", id, user,
                   sent);
        return false;
    }
    ackbits[slot >> 3] |= (uint8_t)(1u << (slot & 7));
    (*acked)++;
    w->acked++;
    w->res->acked++;
    if (in_window(w, w->now)) w->res->acked_in_window++;
    if (in_window(w, tsend[slot])) hist_add(&w->res->lat_ack, w->now - tsend[slot]);
    *out = (ack_t){.id = id, .ok = ok};
    out->ids = ok && find_u64(body, bl, "\"seq\":", &out->seq) &&
               find_u64(body, bl, "\"clientMsgId\":\"", &out->cmid);
    return true;
}

bool receive_fields(worker_t *w, const char *pk, size_t n, uint64_t *cmid, uint64_t *seq,
                    uint64_t *t)
{
    *cmid = *seq = *t = 0;
    if (find_u64(pk, n, "\"clientMsgId\":\"", cmid) && find_u64(pk, n, "\"seq\":", seq) &&
        find_u64(pk, n, "\"content\":\"t", t))
        return true;
    w->res->err_proto++;
    note_error(w, "receive_message without clientMsgId/seq/content: %.*s", (int)(n > 160 ? 160 : n),
               pk);
    return false;
}

static void on_ack(worker_t *w, pair_t *p, const char *pk, size_t n)
{
    ack_t a;
    if (!ack_take(w, pk, n, p->suser, p->sent, p->ackbits, &p->acked, p->tsend, &a)) return;
    if (a.ok && (!a.ids || a.seq != a.id || a.cmid != a.id)) {
        w->res->err_seq++;
        note_error(w, "ack %" PRIu64 " of %s carries seq %" PRIu64 " clientMsgId %" PRIu64, a.id,
                   p->suser, a.seq, a.cmid);
    }
    if (w->cfg->mode == LG_PAIRS && w->phase == PH_RUN && w->now < w->t_stop &&
        p->sent - p->acked < (uint64_t)w->cfg->window)
        send_msg(w, p, w->now);
}

static void on_receive(worker_t *w, pair_t *p, const char *pk, size_t n)
{
    uint64_t cmid, seq, t;
    if (!receive_fields(w, pk, n, &cmid, &seq, &t)) return;
    const char *snd = memmem(pk, n, "\"sender\":\"", 10);
    if (!snd || (size_t)(pk + n - snd) < 10 + p->suser_len + 1 ||
        memcmp(snd + 10, p->suser, p->suser_len) != 0 || snd[10 + p->suser_len] != '"') {
        w->res->err_proto++;
        note_error(w, "%s received a message not from %s", p->ruser, p->suser);
        return;
    }
    p->received++;
    w->received++;
    w->res->received++;
    if (cmid == p->expect) {
        p->expect++;
    } else if (cmid < p->expect) {
        w->res->err_dup++;
        note_error(w, "%s received message %" PRIu64 " again (expected %" PRIu64 ")", p->ruser,
                   cmid, p->expect);
    } else {
        w->res->err_order++;
        note_error(w, "%s received message %" PRIu64 " while expecting %" PRIu64, p->ruser, cmid,
                   p->expect);
        p->expect = cmid + 1;
    }
    if (seq != cmid) {
        w->res->err_seq++;
        note_error(w, "message %" PRIu64 " from %s delivered with seq %" PRIu64, cmid, p->suser,
                   seq);
    }
    if (in_window(w, w->now)) w->res->received_in_window++;
    if (in_window(w, t) && w->now >= t) hist_add(&w->res->lat_recv, w->now - t);
}

static void on_packet(lg_client_t *cl, lg_conn_t *c, const char *pk, size_t n)
{
    worker_t *w = cl->ud;
    pair_t *p = c->ud;
    if (c->role == ROLE_MEMBER && n >= 1 &&
        (pk[0] == '3' || (n >= 20 && memcmp(pk, "2[\"receive_message\",", 20) == 0))) {
        group_packet(w, c, pk, n);
        return;
    }
    if (n >= 1 && pk[0] == '3' && c->role == ROLE_SENDER) {
        on_ack(w, p, pk, n);
        return;
    }
    if (n >= 20 && memcmp(pk, "2[\"receive_message\",", 20) == 0) {
        if (c->role == ROLE_RECEIVER) {
            on_receive(w, p, pk + 20, n - 20);
        } else {
            w->res->err_echo++;
            note_error(w, "receive_message reached the sending socket of %s", c->user);
        }
        return;
    }
    if (n >= 1 && pk[0] == '2') {
        if (n >= 17 && memcmp(pk, "2[\"message_error\"", 17) == 0) {
            w->res->err_nack++;
            note_error(w, "message_error: %.*s", (int)(n > 160 ? 160 : n), pk);
        }
        return; /* other events (presence, ...) are not this benchmark's business */
    }
    if (n >= 1 && pk[0] == '1') {
        w->res->disconnected++;
        note_error(w, "server disconnected %s from the namespace", c->user);
        client_close(cl, c);
        return;
    }
    w->res->err_proto++;
    note_error(w, "unexpected Socket.IO packet: %.*s", (int)(n > 120 ? 120 : n), pk);
}

static void on_ready(lg_client_t *cl, lg_conn_t *c)
{
    worker_t *w = cl->ud;
    (void)c;
    w->active--;
    w->resolved++;
    w->res->connected++;
    uint64_t t = now_ns();
    if (t > w->res->hs_last_ns) w->res->hs_last_ns = t;
}

static void on_closed(lg_client_t *cl, lg_conn_t *c, const char *why)
{
    worker_t *w = cl->ud;
    if (w->phase == PH_DONE) return;
    note_error(w, "%s: %s", c->user, why);
    if (c->joined) {
        w->res->disconnected++;
    } else {
        w->active--;
        w->resolved++;
        w->res->failed++;
    }
}

static void start_more(worker_t *w)
{
    while (w->next_start < w->nconns && w->active < (size_t)w->cfg->concurrency) {
        lg_conn_t *c = w->conns[w->next_start++];
        if (!w->res->hs_first_ns) {
            w->res->hs_first_ns = now_ns();
            w->cpu_connect0 = cpu_self_ns();
        }
        int rc = client_start(&w->cl, c, c->user);
        if (rc != 0) {
            note_error(w, "%s: connect: %s", c->user, strerror(-rc));
            w->resolved++;
            w->res->failed++;
            continue;
        }
        w->active++;
    }
}

static void send_ctrl(worker_t *w, uint32_t type)
{
    lg_ctrl_t m = {.type = type};
    if (write_full(w->ctrl, &m, sizeof m) < 0) w->phase = PH_DONE;
}

static void on_ctrl(worker_t *w)
{
    lg_ctrl_t m;
    if (read_full(w->ctrl, &m, sizeof m) != (ssize_t)sizeof m) {
        note_error(w, "the coordinator went away");
        w->phase = PH_DONE;
        return;
    }
    if (m.type == MSG_STOP) {
        w->phase = PH_DONE;
    } else if (m.type == MSG_GO && w->phase == PH_WAIT) {
        w->t_go = m.t_go;
        w->t_ws = m.t_window_start;
        w->t_we = m.t_window_end;
        w->t_stop = m.t_stop;
        w->next_due = m.t_go;
        w->rate_k = 0;
        w->phase = PH_RUN;
    }
}

/* A due open-loop send of a sender `sent`/`acked` messages along: false (counted, noted) when
 * the ring of unacknowledged messages is full; else its lag behind the schedule is recorded. */
bool rate_may_send(worker_t *w, uint64_t sent, uint64_t acked, const char *user)
{
    if (sent - acked >= w->ring) {
        w->res->err_lost++;
        note_error(w,
                   "more than %" PRIu64 " messages of %s unacknowledged: the open-loop "
                   "rate is beyond what the server sustains",
                   w->ring, user);
        return false;
    }
    uint64_t lag = w->now - w->next_due;
    hist_add(&w->res->send_lag, lag);
    if (lag > LATE_NS) w->res->late_sends++;
    return true;
}

static void rate_sends(worker_t *w)
{
    double interval = 1e9 / w->sl->rate;
    while (w->next_due <= w->now && w->next_due < w->t_stop) {
        pair_t *p = &w->pairs[w->rate_k % w->npairs];
        if (p->s.state == CONN_READY && p->r.state == CONN_READY) {
            if (rate_may_send(w, p->sent, p->acked, p->suser)) send_msg(w, p, w->next_due);
        }
        w->rate_k++;
        w->next_due = w->t_go + (uint64_t)((double)w->rate_k * interval);
    }
}

static void tick(worker_t *w)
{
    switch (w->phase) {
    case PH_CONNECT:
        start_more(w);
        if (w->resolved == w->nconns) {
            w->res->cpu_connect_ns = cpu_self_ns() - w->cpu_connect0;
            w->phase = PH_WAIT;
            send_ctrl(w, MSG_READY);
        } else if (w->now > w->connect_deadline) {
            for (size_t i = 0; i < w->next_start; i++) {
                lg_conn_t *c = w->conns[i];
                if (c->state != CONN_READY && c->state != CONN_CLOSED && c->state != CONN_IDLE) {
                    client_close(&w->cl, c);
                    on_closed(&w->cl, c, "handshake timed out");
                }
            }
            for (; w->next_start < w->nconns; w->next_start++) {
                w->resolved++;
                w->res->failed++;
            }
            note_error(w, "connections not established within %.0f s", w->cfg->connect_timeout);
        }
        break;
    case PH_RUN:
        if (!w->in_window_seen && w->now >= w->t_ws) {
            w->in_window_seen = true;
            w->cpu_ws = cpu_self_ns();
        }
        if (w->in_window_seen && !w->window_done && w->now >= w->t_we) {
            w->window_done = true;
            w->res->cpu_window_ns = cpu_self_ns() - w->cpu_ws;
        }
        if (w->cfg->mode == LG_PAIRS && !w->started && w->now >= w->t_go) {
            w->started = true;
            for (size_t i = 0; i < w->npairs; i++) {
                pair_t *p = &w->pairs[i];
                if (p->s.state != CONN_READY || p->r.state != CONN_READY) continue;
                for (int k = 0; k < w->cfg->window; k++) send_msg(w, p, w->now);
            }
        }
        if (w->cfg->mode == LG_RATE) rate_sends(w);
        if (w->cfg->mode == LG_GROUPS) group_sends(w);
        if (w->now >= w->t_stop && w->window_done) {
            w->phase = PH_DRAIN;
            w->drain_deadline = w->now + (uint64_t)(w->cfg->drain_timeout * 1e9);
        }
        break;
    case PH_DRAIN:
        if ((w->acked == w->sent &&
             w->received == (w->cfg->mode == LG_GROUPS ? w->expect_recv : w->sent)) ||
            w->now >= w->drain_deadline)
            w->phase = PH_DONE;
        break;
    default:
        break;
    }
}

static int64_t wait_ns(const worker_t *w)
{
    uint64_t until;
    switch (w->phase) {
    case PH_CONNECT:
    case PH_DRAIN:
        return 5000000;
    case PH_RUN:
        until = w->t_stop;
        if (!w->in_window_seen)
            until = w->t_ws < until ? w->t_ws : until;
        else if (!w->window_done)
            until = w->t_we < until ? w->t_we : until;
        if (w->now < w->t_go) until = w->t_go;
        bool sched = w->cfg->mode == LG_RATE || w->cfg->mode == LG_GROUPS;
        if (sched && w->next_due < until) until = w->next_due;
        if (until <= w->now) return 0;
        /* Waking from a sleep takes tens of microseconds here, and more on a busy machine:
         * in rate mode, poll without sleeping for the last stretch before a scheduled send. */
        if (sched && until == w->next_due && until - w->now <= w->cfg->spin_ns) return 0;
        if (sched && until == w->next_due && w->cfg->spin_ns)
            return (int64_t)(until - w->now - w->cfg->spin_ns);
        return (int64_t)(until - w->now);
    default:
        return 1000000000;
    }
}

static int setup(worker_t *w)
{
    const lg_config_t *cfg = w->cfg;
    long first = w->sl->first, count = w->sl->count;
    if (cfg->mode == LG_IDLE) {
        w->nconns = (size_t)count;
        w->idle = calloc((size_t)count, sizeof *w->idle);
        w->idle_users = calloc((size_t)count, sizeof *w->idle_users);
        w->conns = calloc((size_t)count, sizeof *w->conns);
        if (!w->idle || !w->idle_users || !w->conns) return -1;
        for (long i = 0; i < count; i++) {
            snprintf(w->idle_users[i], sizeof w->idle_users[i], "%si%ld", cfg->prefix, first + i);
            w->idle[i].role = ROLE_IDLE;
            w->idle[i].user = w->idle_users[i];
            w->idle[i].fd = -1;
            w->conns[i] = &w->idle[i];
        }
        return 0;
    }
    /* content = "t<send time in ns>" + padding up to --size bytes */
    int pad = cfg->size > 21 ? cfg->size - 21 : 0;
    w->pad = malloc((size_t)pad + 1);
    if (!w->pad) return -1;
    memset(w->pad, 'x', (size_t)pad);
    w->pad[pad] = '\0';
    if (cfg->mode == LG_GROUPS) return group_setup(w);
    uint64_t ring = 64;
    if (cfg->mode == LG_RATE) ring = 1024;
    while (ring < 2 * (uint64_t)cfg->window) ring *= 2;
    w->ring = ring;
    w->npairs = (size_t)count;
    w->nconns = 2 * (size_t)count;
    w->pairs = calloc((size_t)count, sizeof *w->pairs);
    w->conns = calloc(w->nconns, sizeof *w->conns);
    if (!w->pairs || !w->conns) return -1;
    for (long i = 0; i < count; i++) {
        pair_t *p = &w->pairs[i];
        snprintf(p->suser, sizeof p->suser, "%ss%ld", cfg->prefix, first + i);
        snprintf(p->ruser, sizeof p->ruser, "%sr%ld", cfg->prefix, first + i);
        p->suser_len = strlen(p->suser);
        p->expect = 1;
        p->ackbits = calloc(ring / 8, 1);
        p->tsend = calloc(ring, sizeof *p->tsend);
        if (!p->ackbits || !p->tsend) return -1;
        p->s.role = ROLE_SENDER;
        p->r.role = ROLE_RECEIVER;
        p->s.ud = p->r.ud = p;
        p->s.user = p->suser;
        p->r.user = p->ruser;
        p->s.fd = p->r.fd = -1;
        /* Receivers first, so that no message is sent before its recipient is there. */
        w->conns[2 * i] = &p->r;
        w->conns[2 * i + 1] = &p->s;
    }
    return 0;
}

static void teardown(worker_t *w)
{
    for (size_t i = 0; i < w->nconns; i++)
        if (w->conns && w->conns[i]) client_close(&w->cl, w->conns[i]);
    if (w->pairs)
        for (size_t i = 0; i < w->npairs; i++) {
            free(w->pairs[i].ackbits);
            free(w->pairs[i].tsend);
        }
    free(w->pairs);
    group_free(w);
    free(w->idle);
    free(w->idle_users);
    free(w->conns);
    free(w->pad);
    client_free(&w->cl);
}

int worker_run(const lg_config_t *cfg, const lg_slice_t *sl, int ctrl_fd, lg_result_t *res)
{
    worker_t w = {.cfg = cfg, .sl = sl, .res = res, .ctrl = ctrl_fd, .phase = PH_CONNECT};
    static const lg_client_ops_t ops = {on_ready, on_packet, on_closed};
    memset(res, 0, sizeof *res);
    if (client_init(&w.cl, cfg, sl->src_addr, &ops, &w) != 0 || setup(&w) != 0) {
        note_error(&w, "could not set up the worker");
        teardown(&w);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(w.cl.ep, EPOLL_CTL_ADD, ctrl_fd, &ev);
    w.now = now_ns();
    w.connect_deadline = w.now + (uint64_t)(cfg->connect_timeout * 1e9);
    struct epoll_event evs[512];
    while (w.phase != PH_DONE) {
        tick(&w);
        client_flush(&w.cl);
        if (w.phase == PH_DONE) break;
        int64_t ns = wait_ns(&w);
        struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
        int n = epoll_pwait2(w.cl.ep, evs, 512, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            note_error(&w, "epoll_pwait2: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            w.now = now_ns();
            if (!evs[i].data.ptr)
                on_ctrl(&w);
            else
                client_event(&w.cl, evs[i].data.ptr, evs[i].events);
        }
        w.now = now_ns();
    }
    if (cfg->mode != LG_IDLE) {
        for (size_t i = 0; i < w.npairs; i++) {
            pair_t *p = &w.pairs[i];
            if (p->acked < p->sent || p->received < p->sent) {
                res->err_lost +=
                    (p->sent - p->acked) + (p->received < p->sent ? p->sent - p->received : 0);
                note_error(&w,
                           "%s: sent %" PRIu64 ", acknowledged %" PRIu64 ", received by %s %" PRIu64
                           " within the drain time",
                           p->suser, p->sent, p->acked, p->ruser, p->received);
            }
        }
    }
    if (cfg->mode == LG_GROUPS) group_finish(&w);
    res->pings = w.cl.pings;
    w.phase = PH_DONE;
    teardown(&w);
    res->cpu_total_ns = cpu_self_ns();
    return 0;
}
