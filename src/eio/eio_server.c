/* Engine.IO v4 server sessions: handshake, long-polling, WebSocket, upgrade and heartbeat. */
#include "eio/eio_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/log.h"
#include "core/randid.h"
#include "core/slab.h"
#include "eio/eio_int.h"
#include "eio/eio_packet.h"

/* ---- session table: chained hash on the sid ---- */

static size_t sid_hash(const char *sid, size_t len)
{
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)sid[i]) * 1099511628211ull;
    return h;
}

/* Hashed and compared on the random part only: the prefix is every session's. */
eio_session_t *eio_table_find_rnd(eio_server_t *srv, const char *rnd)
{
    eio_session_t *s = srv->buckets[sid_hash(rnd, SID_LEN) & (srv->nbuckets - 1)];
    for (; s; s = s->hash_next)
        if (memcmp(s->sid, rnd, SID_LEN) == 0) return s;
    return NULL;
}

eio_session_t *eio_table_find(eio_server_t *srv, str_t sid)
{
    size_t pl = srv->sid_len - SID_LEN;
    if (sid.len != srv->sid_len || memcmp(sid.ptr, srv->sid_prefix, pl) != 0) return NULL;
    return eio_table_find_rnd(srv, sid.ptr + pl);
}

/* Chains of two on average before the table doubles: 4-8 bytes of buckets per session instead
 * of 8-16 (every idle socket has a session; a sid is looked up per polling request only). */
static int table_insert(eio_server_t *srv, eio_session_t *s)
{
    if (srv->count >= 2 * srv->nbuckets) {
        size_t n = srv->nbuckets * 2;
        eio_session_t **b = calloc(n, sizeof *b);
        if (!b) return -1;
        for (size_t i = 0; i < srv->nbuckets; i++) {
            eio_session_t *e = srv->buckets[i];
            while (e) {
                eio_session_t *next = e->hash_next;
                size_t j = sid_hash(e->sid, SID_LEN) & (n - 1);
                e->hash_next = b[j];
                b[j] = e;
                e = next;
            }
        }
        free(srv->buckets);
        srv->buckets = b;
        srv->nbuckets = n;
    }
    size_t j = sid_hash(s->sid, SID_LEN) & (srv->nbuckets - 1);
    s->hash_next = srv->buckets[j];
    srv->buckets[j] = s;
    srv->count++;
    return 0;
}

static void table_remove(eio_server_t *srv, eio_session_t *s)
{
    eio_session_t **pp = &srv->buckets[sid_hash(s->sid, SID_LEN) & (srv->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->hash_next)
        if (*pp == s) {
            *pp = s->hash_next;
            srv->count--;
            return;
        }
}

/* ---- packets ---- */

/* A text packet of `type` whose data is the n parts, as one WebSocket frame. */
static rbuf_t *packet_build_parts(int type, const str_t *parts, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += parts[i].len;
    uint8_t hdr[10];
    size_t hl = ws_frame_header(hdr, true, WS_OP_TEXT, len + 1);
    rbuf_t *r = rbuf_new(hl + 1 + len);
    if (!r) return NULL;
    memcpy(r->data, hdr, hl);
    r->data[hl] = (char)('0' + type);
    char *p = r->data + hl + 1;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len) memcpy(p, parts[i].ptr, parts[i].len);
        p += parts[i].len;
    }
    return r;
}

static rbuf_t *packet_build(int type, const void *data, size_t len)
{
    str_t part = str_make(data, len);
    return packet_build_parts(type, &part, 1);
}

rbuf_t *eio_message_build_parts(const str_t *parts, size_t n)
{
    return packet_build_parts(EIO_MESSAGE, parts, n);
}

rbuf_t *eio_message_build(bool binary, const void *data, size_t len)
{
    if (!binary) return packet_build(EIO_MESSAGE, data, len);
    return ws_frame_build(WS_OP_BINARY, data, len);
}

/* Where the payload of a built frame starts, and whether it is binary. */
size_t eio_frame_payload_offset(const rbuf_t *r)
{
    uint8_t l = (uint8_t)r->data[1] & 0x7f;
    return l == 126 ? 4 : l == 127 ? 10 : 2;
}

bool eio_frame_is_binary(const rbuf_t *r)
{
    return ((uint8_t)r->data[0] & 0x0f) == WS_OP_BINARY;
}

/* ---- CORS ---- */

/* Appends the CORS headers for this request to out (NUL-terminated). */
static void cors_headers(eio_server_t *srv, const http_request_t *req, char *out, size_t cap)
{
    http_cors_headers(srv->cors_origins, srv->cfg.cors_credentials, req, out, cap);
}

/* Whether a request may use the endpoint, by its Origin header. Browsers let any page open a
 * WebSocket to any site (CORS does not apply to WebSockets), so with --cors-origins set to a
 * list, a request whose Origin is neither listed nor this server's own origin (scheme "http" or
 * "https" and the request's Host) is refused (cross-site WebSocket hijacking). A request with
 * no Origin (non-browser clients; browsers' same-origin GETs) passes, and so does every
 * request when the list is empty (CORS off) or "*". */
static bool origin_allowed(const eio_server_t *srv, const http_request_t *req)
{
    const char *list = srv->cors_origins;
    if (!list[0] || strcmp(list, "*") == 0) return true;
    str_t origin = http_request_header(req, "origin");
    if (!origin.ptr) return true;
    if (http_origin_listed(list, origin)) return true;
    str_t host = http_request_header(req, "host");
    if (!host.ptr || host.len == 0) return false;
    size_t skip = 0;
    if (origin.len > 7 && strncasecmp(origin.ptr, "http://", 7) == 0)
        skip = 7;
    else if (origin.len > 8 && strncasecmp(origin.ptr, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    return origin.len - skip == host.len && strncasecmp(origin.ptr + skip, host.ptr, host.len) == 0;
}

void eio_respond_error(eio_server_t *srv, http_conn_t *hc, const http_request_t *req, int code)
{
    char body[96], hdrs[512];
    int n = snprintf(body, sizeof body, "{\"code\":%d,\"message\":\"%s\"}", code,
                     eio_error_messages[code]);
    cors_headers(srv, req, hdrs, sizeof hdrs);
    http_respond(hc, code == EIO_ERR_FORBIDDEN ? 403 : 400, "application/json", hdrs, body,
                 (size_t)n);
}

/* ---- heartbeat ---- */

static eio_session_t *session_of_hb(tq_entry_t *e)
{
    return (eio_session_t *)((char *)e - offsetof(eio_session_t, hb));
}

static void send_built(eio_session_t *s, rbuf_t *pkt);

static void on_ping_due(timerq_t *q, tq_entry_t *e)
{
    eio_session_t *s = session_of_hb(e);
    eio_server_t *srv = q->data;
    if (s->state != S_OPEN) {
        eio_session_destroy(s, "transport close");
        return;
    }
    s->awaiting_pong = true;
    /* The ping counts as seen only once it has left the server (see ping_read): a client that
     * never reads cannot keep its session by answering blindly. */
    s->ping_unread = true;
    send_built(s, srv->ping_pkt);   /* a waiting GET takes it at once: ping_unread is cleared */
    if (s->state != S_OPEN) return; /* the queue overflowed: the session is being reaped */
    if (s->ws) s->ping_end = ws_conn_queued(s->ws);
    timerq_add(&srv->pong_tq, &s->hb);
}

/* Whether the last ping can have reached the client: over polling a GET response carried it;
 * over WebSocket the connection's queue has handed it to the kernel. A client that stops
 * reading keeps the ping in the queue, once the kernel's buffers are full, for ever. */
static bool ping_read(const eio_session_t *s)
{
    if (!s->ping_unread) return true;
    if (s->transport != TRANSPORT_WEBSOCKET || !s->ws) return false;
    return ws_conn_handed(s->ws) >= s->ping_end;
}

static void on_pong_missing(timerq_t *q, tq_entry_t *e)
{
    eio_session_t *s = session_of_hb(e);
    log_debug("eio %s: ping timeout", s->sid);
    eio_session_destroy(s, s->state == S_OPEN ? "ping timeout" : "transport close");
}

/* A v3 client sent no ping for pingInterval + pingTimeout. */
static void on_v3_ping_missing(timerq_t *q, tq_entry_t *e)
{
    eio_session_t *s = session_of_hb(e);
    log_debug("eio %s: no ping from the v3 client, closing", s->sid);
    eio_session_destroy(s, s->state == S_OPEN ? "ping timeout" : "transport close");
}

static void on_reap(timerq_t *q, tq_entry_t *e)
{
    eio_session_t *s = session_of_hb(e);
    eio_session_destroy(s, s->close_reason ? s->close_reason : "transport close");
}

/* Ends a session from inside a call that may come from anywhere (a send from the layer above,
 * perhaps while it walks its own lists): the session stops at once (nothing more is sent or
 * delivered: state S_CLOSING) and is destroyed on the next loop turn, as a WebSocket cut by
 * the net layer is closed from the libuv close callback. */
void eio_session_close_deferred(eio_session_t *s, const char *reason)
{
    if (s->state != S_OPEN) return;
    s->state = S_CLOSING;
    s->close_reason = reason;
    timerq_add(&s->srv->reap_tq, &s->hb);
}

/* A v3 binary WebSocket frame carries the packet type first: 0x04 then the bytes. The shared
 * (v4) frame is copied for this session. */
static void ws_send_v3_binary(ws_conn_t *ws, const rbuf_t *pkt)
{
    size_t off = eio_frame_payload_offset(pkt), n = pkt->len - off;
    uint8_t hdr[10];
    size_t hl = ws_frame_header(hdr, true, WS_OP_BINARY, n + 1);
    rbuf_t *r = rbuf_new(hl + 1 + n);
    if (!r) return;
    memcpy(r->data, hdr, hl);
    r->data[hl] = EIO_MESSAGE;
    if (n) memcpy(r->data + hl + 1, pkt->data + off, n);
    ws_conn_send_frame(ws, r);
    rbuf_unref(r);
}

static void send_built(eio_session_t *s, rbuf_t *pkt)
{
    if (s->transport == TRANSPORT_WEBSOCKET) {
        if (!s->ws) return;
        if (s->protocol == 3 && eio_frame_is_binary(pkt)) {
            ws_send_v3_binary(s->ws, pkt);
            return;
        }
        ws_conn_send_frame(s->ws, pkt);
        return;
    }
    eio_polling_send(s, pkt);
}

void eio_session_send_built(eio_session_t *s, rbuf_t *packet)
{
    if (s->state == S_OPEN) send_built(s, packet);
}

void eio_session_send(eio_session_t *s, bool binary, const void *data, size_t len)
{
    if (s->state != S_OPEN) return;
    rbuf_t *p = eio_message_build(binary, data, len);
    if (!p) return;
    send_built(s, p);
    rbuf_unref(p);
}

/* ---- closing ---- */

void eio_session_destroy(eio_session_t *s, const char *reason)
{
    eio_server_t *srv = s->srv;
    timerq_remove(&s->hb);
    table_remove(srv, s);
    s->sid[0] = '\0';
    s->state = S_CLOSING;
    if (srv->h.on_close) srv->h.on_close(s, srv->arg, reason);
    if (s->pl && s->pl->poll)
        eio_polling_answer(s, "1"); /* a pending long poll learns of the close */
    if (s->ws) {
        ws_conn_set_handler(s->ws, NULL, NULL);
        /* A client that stopped reading would never get the close frame, and the connection
         * would linger with its queue: drop it at once. */
        if ((s->awaiting_pong || s->protocol == 3) && !ping_read(s))
            ws_conn_abort(s->ws);
        else
            ws_conn_close(s->ws, WS_CLOSE_NORMAL, NULL);
    }
    if (s->pl && s->pl->probe) {
        ws_conn_set_handler(s->pl->probe, NULL, NULL);
        ws_conn_close(s->pl->probe, WS_CLOSE_NORMAL, NULL);
    }
    eio_polling_free(s);
    if (s->admit_handle && srv->cfg.release) srv->cfg.release(srv->cfg.admit_arg, s->admit_handle);
    slab_free(&srv->session_pool, s);
}

void eio_session_close(eio_session_t *s, const char *reason)
{
    if (s->state != S_OPEN) return;
    if (s->transport == TRANSPORT_WEBSOCKET) {
        eio_session_destroy(s, reason);
        return;
    }
    /* Polling: the close packet goes out with whatever is queued, on the next GET; a client
     * that never polls again is dropped after a ping timeout. */
    if (s->pl->poll) {
        send_built(s, s->srv->close_pkt); /* answers the GET and destroys the session */
        return;
    }
    send_built(s, s->srv->close_pkt);
    if (s->state != S_OPEN) return; /* the queue overflowed: the session is being reaped */
    s->state = S_CLOSING;
    timerq_add(&s->srv->pong_tq, &s->hb);
}

/* ---- incoming packets ---- */

void eio_handle_packet(eio_session_t *s, const eio_packet_t *p)
{
    eio_server_t *srv = s->srv;
    /* A closing session takes nothing more from its client (as the reference: "packet
     * received with closed socket"), but its close packet still ends it at once. */
    if (s->state != S_OPEN && p->type != EIO_CLOSE) return;
    switch (p->type) {
    case EIO_MESSAGE:
        if (srv->h.on_message) srv->h.on_message(s, srv->arg, p->binary, p->data, p->len);
        break;
    case EIO_PONG:
        if (s->protocol == 3) {
            /* v3: the server never pings, so a pong is the wrong heartbeat direction; engine.io
             * closes the session for it, and so does Parlor. */
            log_debug("eio %s: pong from a v3 client (invalid heartbeat direction), closing",
                      s->sid);
            eio_session_destroy(s, "transport error");
            break;
        }
        /* Only the answer to a ping the client can have read counts: an unsolicited pong, or
         * one sent while the ping still waits in an unread polling queue, is ignored, so a
         * client that never reads is dropped by the heartbeat however it answers. */
        if (!s->awaiting_pong || !ping_read(s)) {
            log_debug("eio %s: pong for no ping it has read, ignored", s->sid);
            break;
        }
        s->awaiting_pong = false;
        timerq_add(&srv->ping_tq, &s->hb);
        break;
    case EIO_PING:
        if (s->protocol == 3) {
            /* v3: the client pings and the server answers. Like a v4 pong, a ping counts only
             * once the client can have read the previous pong (it left the server: a GET
             * took it, or the WebSocket's queue handed it to the kernel); until then pings
             * are ignored. So at most one pong per session waits in the server, however fast
             * a client pings, and a client that stops reading is dropped by the heartbeat. */
            if (!ping_read(s)) {
                log_debug("eio %s: v3 ping while the last pong is unread, ignored", s->sid);
                break;
            }
            timerq_add(&srv->v3_tq, &s->hb);
            s->ping_unread = true;
            send_built(s, srv->pong_pkt); /* a waiting GET takes it: ping_unread is cleared */
            if (s->state == S_OPEN && s->ws) s->ping_end = ws_conn_queued(s->ws);
            break;
        }
        /* In Engine.IO v4 the server pings and the client answers; engine.io 6 closes a
         * session whose client pings ("invalid heartbeat direction"). So does Parlor: a pong
         * for each client ping would let a client make the server queue without bound.
         * (The "2probe" of an upgrade travels on the probe WebSocket, see probe_on_message.) */
        log_debug("eio %s: ping from the client (invalid heartbeat direction), closing", s->sid);
        eio_session_destroy(s, "transport error");
        break;
    case EIO_CLOSE:
        /* The reference releases a pending long poll with a noop, then forgets the session. */
        if (s->pl && s->pl->poll) eio_polling_answer(s, "6");
        eio_session_destroy(s, "transport close");
        break;
    case EIO_NOOP:
        break;
    default: /* open or upgrade outside an upgrade: a broken client */
        log_debug("eio %s: unexpected packet type %d, closing", s->sid, p->type);
        eio_session_destroy(s, "parse error");
        break;
    }
}

/* ---- WebSocket transport ---- */

static void ws_on_message(ws_conn_t *ws, void *ud, int opcode, uint8_t *data, size_t len)
{
    eio_session_t *s = ud;
    eio_packet_t p;
    if (opcode == WS_OP_BINARY && s->protocol == 3) {
        /* v3: the first byte is the packet type; only a message can be binary. */
        if (len == 0 || data[0] != EIO_MESSAGE) {
            log_debug("eio %s: invalid v3 binary packet, closing", s->sid);
            eio_session_destroy(s, "parse error");
            return;
        }
        p = (eio_packet_t){EIO_MESSAGE, true, data + 1, len - 1};
    } else if (opcode == WS_OP_BINARY) {
        p = (eio_packet_t){EIO_MESSAGE, true, data, len};
    } else if (eio_packet_decode_text((const char *)data, len, &p) < 0) {
        log_debug("eio %s: invalid packet, closing", s->sid);
        eio_session_destroy(s, "parse error");
        return;
    }
    eio_handle_packet(s, &p);
}

static void ws_on_close(ws_conn_t *ws, void *ud)
{
    eio_session_t *s = ud;
    s->ws = NULL;
    eio_session_destroy(s, "transport close");
}

static const ws_conn_handler_t ws_handler = {ws_on_message, ws_on_close};

/* The probe WebSocket of an upgrade: 2probe -> 3probe, then 5 switches the transport. */
static void probe_on_message(ws_conn_t *ws, void *ud, int opcode, uint8_t *data, size_t len)
{
    eio_session_t *s = ud;
    eio_server_t *srv = s->srv;
    eio_polling_t *pl = s->pl;
    if (opcode == WS_OP_TEXT && len == 6 && memcmp(data, "2probe", 6) == 0 && !pl->probe_ok) {
        pl->probe_ok = true;
        rbuf_t *r = packet_build(EIO_PONG, "probe", 5);
        if (r) {
            ws_conn_send_frame(ws, r);
            rbuf_unref(r);
        }
        /* Let a waiting long poll return so the client can finish the upgrade. */
        if (pl->poll && pl->outq_len == 0) send_built(s, srv->noop_pkt);
        return;
    }
    if (opcode == WS_OP_TEXT && len == 1 && data[0] == '0' + EIO_UPGRADE && pl->probe_ok) {
        pl->probe = NULL;
        s->ws = ws;
        s->transport = TRANSPORT_WEBSOCKET;
        ws_conn_set_handler(ws, &ws_handler, s);
        if (pl->poll) eio_polling_answer(s, "6");
        /* What was queued for polling now goes over the WebSocket, in order. */
        for (uint32_t i = 0; i < pl->outq_len; i++) ws_conn_send_frame(ws, pl->outq[i]);
        if (s->ping_unread) s->ping_end = ws_conn_queued(ws); /* it is on the WebSocket now */
        bool closing = s->state == S_CLOSING;
        eio_polling_free(s);
        if (closing) eio_session_destroy(s, "server close");
        return;
    }
    log_debug("eio %s: invalid upgrade packet, closing the probe", s->sid);
    pl->probe = NULL;
    ws_conn_set_handler(ws, NULL, NULL);
    ws_conn_close(ws, WS_CLOSE_PROTOCOL, NULL);
}

static void probe_on_close(ws_conn_t *ws, void *ud)
{
    eio_session_t *s = ud;
    if (!s->pl) return;
    if (s->pl->probe == ws) s->pl->probe = NULL;
    s->pl->probe_ok = false;
}

static const ws_conn_handler_t probe_handler = {probe_on_message, probe_on_close};

/* ---- HTTP entry ---- */

/* Admission, then a new session; on refusal answers 429 (or 503) itself and returns NULL. */
static eio_session_t *session_new(eio_server_t *srv, http_conn_t *hc, const http_request_t *req,
                                  int transport, int protocol)
{
    void *handle = NULL;
    if (srv->cfg.admit) {
        uint32_t retry = 1;
        handle = srv->cfg.admit(srv->cfg.admit_arg, http_conn_net(hc), &retry);
        if (!handle) {
            char hdrs[600], ra[64];
            cors_headers(srv, req, hdrs, sizeof hdrs);
            snprintf(ra, sizeof ra, "Retry-After: %u\r\n", retry);
            strncat(hdrs, ra, sizeof hdrs - strlen(hdrs) - 1);
            char body[160];
            int n = snprintf(body, sizeof body,
                             "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"too many "
                             "connections\",\"retryAfterMs\":%u}}",
                             retry * 1000);
            http_respond(hc, 429, "application/json", hdrs, body, (size_t)n);
            return NULL;
        }
    }
    /* One allocation holds the session and the layer above's state for it. */
    eio_session_t *s = slab_calloc(&srv->session_pool);
    if (s && transport == TRANSPORT_POLLING && !(s->pl = calloc(1, sizeof *s->pl))) {
        slab_free(&srv->session_pool, s);
        s = NULL;
    }
    if (!s) {
        if (handle) srv->cfg.release(srv->cfg.admit_arg, handle);
        http_respond_error(hc, 503, "INTERNAL", "out of memory");
        return NULL;
    }
    s->admit_handle = handle;
    do randid_generate(s->sid, SID_LEN);
    while (eio_table_find_rnd(srv, s->sid));
    s->srv = srv;
    s->transport = (uint8_t)transport;
    s->protocol = (uint8_t)protocol;
    s->state = S_OPEN;
    if (table_insert(srv, s) < 0) {
        if (handle) srv->cfg.release(srv->cfg.admit_arg, handle);
        free(s->pl);
        slab_free(&srv->session_pool, s);
        http_respond_error(hc, 503, "INTERNAL", "out of memory");
        return NULL;
    }
    return s;
}

/* v4: the server pings after pingInterval; v3: the client must ping within pingInterval +
 * pingTimeout. */
static void heartbeat_start(eio_session_t *s)
{
    timerq_add(s->protocol == 3 ? &s->srv->v3_tq : &s->srv->ping_tq, &s->hb);
}

/* The open packet: the sid's random part between a head and a tail made at server creation
 * (open_parts_init), the same bytes a snprintf of the whole wrote (~2.5k instructions per
 * handshake less). cap must hold sizeof open_head + SID_LEN + sizeof open_tail[0]. */
static int open_packet(eio_server_t *srv, eio_session_t *s, bool upgrades, char *out, size_t cap)
{
    size_t hl = srv->open_head_len, tl = srv->open_tail_len[upgrades];
    if (hl + SID_LEN + tl + 1 > cap) return 0;
    memcpy(out, srv->open_head, hl);
    memcpy(out + hl, s->sid, SID_LEN);
    memcpy(out + hl + SID_LEN, srv->open_tail[upgrades], tl + 1);
    return (int)(hl + SID_LEN + tl);
}

static void open_parts_init(eio_server_t *srv)
{
    int n = snprintf(srv->open_head, sizeof srv->open_head, "0{\"sid\":\"%s", srv->sid_prefix);
    srv->open_head_len = (uint8_t)n;
    for (int u = 0; u < 2; u++) {
        n = snprintf(srv->open_tail[u], sizeof srv->open_tail[u],
                     "\",\"upgrades\":[%s],\"pingInterval\":%u,\"pingTimeout\":%u,"
                     "\"maxPayload\":%zu}",
                     u ? "\"websocket\"" : "", srv->cfg.ping_interval_ms, srv->cfg.ping_timeout_ms,
                     srv->cfg.max_payload);
        srv->open_tail_len[u] = (uint8_t)n;
    }
}

static int handle_websocket(eio_server_t *srv, http_conn_t *hc, const http_request_t *req,
                            str_t sid, int protocol)
{
    if (sid.len) {
        eio_session_t *s = eio_table_find(srv, sid);
        if (!s) {
            eio_respond_error(srv, hc, req, EIO_ERR_UNKNOWN_SID);
            return HTTP_DONE;
        }
        if (ws_handshake_check(hc, req) < 0) return HTTP_DONE;
        /* A sid upgrades once. Another WebSocket for a session already upgraded (or being
         * upgraded, or closing) is accepted and closed at once, as the reference does, and the
         * session is left untouched. */
        if (s->transport != TRANSPORT_POLLING || s->pl->probe || s->state != S_OPEN) {
            log_debug("eio %s: another WebSocket for an upgraded session, closing it", s->sid);
            ws_conn_t *extra = ws_conn_accept(hc, req, srv->cfg.max_payload, NULL, NULL);
            if (extra) ws_conn_close(extra, 0, NULL);
            return HTTP_UPGRADED;
        }
        s->pl->probe = ws_conn_accept(hc, req, srv->cfg.max_payload, &probe_handler, s);
        return HTTP_UPGRADED;
    }
    if (ws_handshake_check(hc, req) < 0) return HTTP_DONE;
    eio_session_t *s = session_new(srv, hc, req, TRANSPORT_WEBSOCKET, protocol);
    if (!s) return HTTP_DONE;
    s->ws = ws_conn_accept(hc, req, srv->cfg.max_payload, &ws_handler, s);
    if (!s->ws) {
        eio_session_destroy(s, "transport error");
        return HTTP_UPGRADED;
    }
    char open[256];
    int n = open_packet(srv, s, false, open, sizeof open);
    ws_conn_send(s->ws, WS_OP_TEXT, open, (size_t)n);
    heartbeat_start(s);
    if (srv->h.on_open && srv->h.on_open(s, srv->arg, req) < 0) eio_session_destroy(s, "refused");
    return HTTP_UPGRADED;
}

int eio_server_handle(http_conn_t *hc, const http_request_t *req, str_t body, void *arg)
{
    eio_server_t *srv = arg;
    char transport[16], sid_buf[64], eio[8], hdrs[512];
    if (srv->shutting_down) {
        http_respond_error(hc, 503, "UNAVAILABLE", "shutting down");
        return HTTP_DONE;
    }
    if (str_eq_cstr(req->method, "OPTIONS")) {
        /* CORS preflight. */
        char pre[1024];
        cors_headers(srv, req, hdrs, sizeof hdrs);
        str_t rh = http_request_header(req, "access-control-request-headers");
        snprintf(pre, sizeof pre,
                 "%sAccess-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n%s%.*s%s", hdrs,
                 rh.ptr && rh.len < 400 ? "Access-Control-Allow-Headers: " : "",
                 rh.ptr && rh.len < 400 ? (int)rh.len : 0, rh.ptr && rh.len < 400 ? rh.ptr : "",
                 rh.ptr && rh.len < 400 ? "\r\n" : "");
        http_respond(hc, 204, NULL, pre, NULL, 0);
        return HTTP_DONE;
    }
    if (!origin_allowed(srv, req)) {
        log_debug("eio: Origin not allowed, refused with 403");
        eio_respond_error(srv, hc, req, EIO_ERR_FORBIDDEN);
        return HTTP_DONE;
    }
    int tl = http_query_param(req->query, "transport", transport, sizeof transport);
    if (tl < 0 || (strcmp(transport, "polling") != 0 && strcmp(transport, "websocket") != 0)) {
        eio_respond_error(srv, hc, req, EIO_ERR_UNKNOWN_TRANSPORT);
        return HTTP_DONE;
    }
    int sl = http_query_param(req->query, "sid", sid_buf, sizeof sid_buf);
    str_t sid = str_make(sid_buf, sl > 0 ? (size_t)sl : 0);
    bool is_ws = transport[0] == 'w';
    if (sl < 0 || sl == 0) sid.len = 0;
    if (sl == -2) {
        eio_respond_error(srv, hc, req, EIO_ERR_UNKNOWN_SID);
        return HTTP_DONE;
    }
    int protocol = 4;
    if (!sid.len) {
        int el = http_query_param(req->query, "EIO", eio, sizeof eio);
        if (!str_eq_cstr(req->method, "GET")) {
            eio_respond_error(srv, hc, req, EIO_ERR_BAD_HANDSHAKE_METHOD);
            return HTTP_DONE;
        }
        if (el >= 0 && srv->cfg.allow_eio3 && strcmp(eio, "3") == 0) {
            protocol = 3;
        } else if (el < 0 || strcmp(eio, "4") != 0) {
            eio_respond_error(srv, hc, req, EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION);
            return HTTP_DONE;
        }
        /* JSONP polling (v3 "j" parameter) is not offered. */
        char j[8];
        if (protocol == 3 && !is_ws && http_query_param(req->query, "j", j, sizeof j) != -1) {
            eio_respond_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
            return HTTP_DONE;
        }
    }
    if (is_ws) {
        if (!req->upgrade_websocket) {
            eio_respond_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
            return HTTP_DONE;
        }
        return handle_websocket(srv, hc, req, sid, protocol);
    }
    cors_headers(srv, req, hdrs, sizeof hdrs);
    if (!sid.len) {
        eio_session_t *s = session_new(srv, hc, req, TRANSPORT_POLLING, protocol);
        if (!s) return HTTP_DONE;
        char open[256];
        int n = open_packet(srv, s, true, open, sizeof open);
        if (protocol == 3) {
            /* One length-prefixed packet (the open packet is ASCII: its length in bytes). */
            char framed[280];
            int m = snprintf(framed, sizeof framed, "%d:%s", n, open);
            http_respond(hc, 200, "text/plain; charset=UTF-8", hdrs, framed, (size_t)m);
        } else {
            http_respond(hc, 200, "text/plain; charset=UTF-8", hdrs, open, (size_t)n);
        }
        heartbeat_start(s);
        if (srv->h.on_open && srv->h.on_open(s, srv->arg, req) < 0)
            eio_session_destroy(s, "refused");
        return HTTP_DONE;
    }
    eio_session_t *s = eio_table_find(srv, sid);
    if (!s) {
        eio_respond_error(srv, hc, req, EIO_ERR_UNKNOWN_SID);
        return HTTP_DONE;
    }
    if (s->transport != TRANSPORT_POLLING) {
        eio_respond_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
        return HTTP_DONE;
    }
    return eio_polling_request(srv, s, hc, req, body, hdrs);
}

/* ---- server ---- */

eio_server_t *eio_server_new(net_loop_t *nl, const eio_config_t *cfg, const eio_handler_t *h,
                             void *arg)
{
    eio_server_t *srv = calloc(1, sizeof *srv);
    if (!srv) return NULL;
    srv->nl = nl;
    srv->cfg = *cfg;
    srv->h = *h;
    srv->arg = arg;
    if (cfg->cors_origins)
        snprintf(srv->cors_origins, sizeof srv->cors_origins, "%s", cfg->cors_origins);
    srv->cfg.cors_origins = srv->cors_origins;
    if (cfg->sid_prefix && cfg->sid_prefix[0]) {
        size_t pl = strlen(cfg->sid_prefix);
        bool ok = pl <= SID_PREFIX_MAX;
        for (size_t i = 0; ok && i < pl; i++) {
            char ch = cfg->sid_prefix[i];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '_';
        }
        if (ok)
            snprintf(srv->sid_prefix, sizeof srv->sid_prefix, "%s.", cfg->sid_prefix);
        else
            log_warn("eio: sid prefix \"%s\" is not 1-%d of [A-Za-z0-9_-]: sids carry none",
                     cfg->sid_prefix, SID_PREFIX_MAX);
    }
    srv->cfg.sid_prefix = srv->sid_prefix;
    srv->sid_len = strlen(srv->sid_prefix) + SID_LEN;
    open_parts_init(srv);
    srv->nbuckets = 64;
    srv->buckets = calloc(srv->nbuckets, sizeof *srv->buckets);
    slab_pool_init(&srv->session_pool, sizeof(eio_session_t) + srv->cfg.session_extra);
    timerq_init(nl->loop, &srv->ping_tq, cfg->ping_interval_ms, on_ping_due);
    timerq_init(nl->loop, &srv->pong_tq, cfg->ping_timeout_ms, on_pong_missing);
    timerq_init(nl->loop, &srv->reap_tq, 0, on_reap);
    timerq_init(nl->loop, &srv->v3_tq, (uint64_t)cfg->ping_interval_ms + cfg->ping_timeout_ms,
                on_v3_ping_missing);
    srv->ping_tq.data = srv->pong_tq.data = srv->reap_tq.data = srv->v3_tq.data = srv;
    srv->ping_pkt = packet_build(EIO_PING, NULL, 0);
    srv->noop_pkt = packet_build(EIO_NOOP, NULL, 0);
    srv->close_pkt = packet_build(EIO_CLOSE, NULL, 0);
    srv->pong_pkt = packet_build(EIO_PONG, NULL, 0);
    if (!srv->buckets || !srv->ping_pkt || !srv->noop_pkt || !srv->close_pkt || !srv->pong_pkt)
        abort();
    return srv;
}

void eio_server_set_admission(eio_server_t *srv, void *(*admit)(void *, net_conn_t *, uint32_t *),
                              void (*release)(void *, void *), void *arg)
{
    srv->cfg.admit = admit;
    srv->cfg.release = release;
    srv->cfg.admit_arg = arg;
}

size_t eio_server_num_sessions(const eio_server_t *srv)
{
    return srv->count;
}

void eio_server_shutdown(eio_server_t *srv)
{
    srv->shutting_down = true;
    for (size_t i = 0; i < srv->nbuckets; i++)
        while (srv->buckets[i]) {
            eio_session_t *s = srv->buckets[i];
            if (s->transport == TRANSPORT_POLLING && s->state == S_OPEN && s->pl->outq_len) {
                /* Deliver what is queued with the close if a poll is waiting. */
                send_built(s, srv->close_pkt);
                if (eio_table_find_rnd(srv, s->sid) != s) continue;
            }
            eio_session_destroy(s, "server shutting down");
        }
}

void eio_server_close(eio_server_t *srv)
{
    timerq_close(&srv->ping_tq);
    timerq_close(&srv->pong_tq);
    timerq_close(&srv->reap_tq);
    timerq_close(&srv->v3_tq);
}

void eio_server_free(eio_server_t *srv)
{
    if (!srv) return;
    rbuf_unref(srv->ping_pkt);
    rbuf_unref(srv->noop_pkt);
    rbuf_unref(srv->close_pkt);
    rbuf_unref(srv->pong_pkt);
    free(srv->buckets);
    slab_pool_trim(&srv->session_pool);
    free(srv);
}

const char *eio_session_id(const eio_session_t *s)
{
    return s->sid;
}

void *eio_session_extra(eio_session_t *s)
{
    return s->extra;
}

eio_session_t *eio_session_of_extra(void *extra)
{
    return (eio_session_t *)((char *)extra - offsetof(eio_session_t, extra));
}

void *eio_session_server_arg(const eio_session_t *s)
{
    return s->srv->arg;
}

int eio_session_protocol(const eio_session_t *s)
{
    return s->protocol;
}

bool eio_session_is_websocket(const eio_session_t *s)
{
    return s->transport == TRANSPORT_WEBSOCKET;
}

size_t eio_session_queued_bytes(const eio_session_t *s)
{
    if (s->transport == TRANSPORT_WEBSOCKET) return s->ws ? ws_conn_net(s->ws)->out_bytes : 0;
    size_t n = 0;
    for (uint32_t i = 0; s->pl && i < s->pl->outq_len; i++) n += s->pl->outq[i]->len;
    return n;
}
