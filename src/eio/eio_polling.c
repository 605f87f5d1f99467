/* Engine.IO long-polling transport: the per-session output queue (bounded, see queue_cap),
 * GET responses that carry it, and POST bodies decoded into packets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/log.h"
#include "eio/eio_int.h"

/* ---- polling queue cap ---- */

/* The bytes a polling session may have queued: the connection's outbound cap
 * (--max-outbound-bytes), less room for the response head, so that the GET answer carrying a
 * full queue still fits under that cap. A client that keeps the server queueing without
 * reading (no GET) is a slow reader and is cut like a WebSocket one. */
static size_t queue_cap(const eio_server_t *srv)
{
    size_t out = srv->nl->limits.max_outbound;
    return out > 2 * EIO_RESPONSE_HEAD_ROOM ? out - EIO_RESPONSE_HEAD_ROOM : out / 2;
}

/* ---- sending ---- */

/* What a packet adds to a polling queue: its bytes in a GET response (binary as "b" + base64),
 * the separator, and EIO_QUEUED_PACKET_COST. */
static size_t queued_cost(const rbuf_t *r)
{
    size_t n = r->len - eio_frame_payload_offset(r);
    /* v3: "b4" and a "<length>:" prefix of at most 20 digits instead of "b" and 0x1e; the
     * 64-byte overhead covers the difference, so the cap holds for both. */
    return (eio_frame_is_binary(r) ? 1 + base64_encoded_len(n) : n) + 1 + EIO_QUEUED_PACKET_COST;
}

void eio_polling_send(eio_session_t *s, rbuf_t *pkt)
{
    eio_polling_t *pl = s->pl;
    size_t cost = queued_cost(pkt);
    if (pl->outq_bytes + cost > queue_cap(s->srv)) {
        log_info("eio %s: polling queue over %zu bytes (%u packets; slow reader), closing", s->sid,
                 queue_cap(s->srv), pl->outq_len);
        eio_polling_outq_clear(pl);
        eio_session_close_deferred(s, "transport error");
        return;
    }
    if (pl->outq_len == pl->outq_cap) {
        uint32_t cap = pl->outq_cap ? pl->outq_cap * 2 : 4;
        rbuf_t **q = realloc(pl->outq, cap * sizeof *q);
        if (!q) {
            eio_polling_outq_clear(pl);
            eio_session_close_deferred(s, "transport error");
            return;
        }
        pl->outq = q;
        pl->outq_cap = cap;
    }
    pl->outq[pl->outq_len++] = rbuf_ref(pkt);
    pl->outq_bytes += cost;
    /* Answered at the end of this turn, so packets sent together share one response. */
    if (pl->poll) eio_polling_flush(s);
}

void eio_polling_outq_clear(eio_polling_t *pl)
{
    for (uint32_t i = 0; i < pl->outq_len; i++) rbuf_unref(pl->outq[i]);
    free(pl->outq);
    pl->outq = NULL;
    pl->outq_len = pl->outq_cap = 0;
    pl->outq_bytes = 0;
}

/* Releases the polling state (after an upgrade, or with the session). */
void eio_polling_free(eio_session_t *s)
{
    eio_polling_t *pl = s->pl;
    if (!pl) return;
    eio_polling_outq_clear(pl);
    free(pl->poll_hdrs);
    free(pl);
    s->pl = NULL;
}

static http_conn_t *take_poll(eio_session_t *s)
{
    http_conn_t *hc = s->pl->poll;
    s->pl->poll = NULL;
    http_conn_set_abort(hc, NULL, NULL);
    return hc;
}

/* Answers the pending GET with a fixed body (noop on upgrade, close on close). */
void eio_polling_answer(eio_session_t *s, const char *body)
{
    http_conn_t *hc = take_poll(s);
    char framed[32];
    if (s->protocol == 3) { /* v3: one length-prefixed packet */
        snprintf(framed, sizeof framed, "%zu:%s", strlen(body), body);
        body = framed;
    }
    http_respond(hc, 200, "text/plain; charset=UTF-8", s->pl->poll_hdrs, body, strlen(body));
    free(s->pl->poll_hdrs);
    s->pl->poll_hdrs = NULL;
}

/* The packet a built frame holds: a text frame "<type><data>", a binary one message bytes. */
static eio_packet_t v3_packet_of(const rbuf_t *r)
{
    size_t off = eio_frame_payload_offset(r), n = r->len - off;
    if (eio_frame_is_binary(r))
        return (eio_packet_t){EIO_MESSAGE, true, (const uint8_t *)r->data + off, n};
    return (eio_packet_t){r->data[off] - '0', false, (const uint8_t *)r->data + off + 1, n - 1};
}

/* Answers the pending GET with every queued packet, joined by 0x1e. */
void eio_polling_flush(eio_session_t *s)
{
    eio_polling_t *pl = s->pl;
    if (!pl || !pl->poll || pl->outq_len == 0) return;
    size_t total = 0;
    bool v3 = s->protocol == 3;
    for (uint32_t i = 0; i < pl->outq_len; i++) {
        rbuf_t *r = pl->outq[i];
        size_t off = eio_frame_payload_offset(r), n = r->len - off;
        if (v3) {
            eio_packet_t pk = v3_packet_of(r);
            total += eio3_packet_encoded_len_polling(&pk);
            continue;
        }
        total += (eio_frame_is_binary(r) ? 1 + base64_encoded_len(n) : n) + 1;
    }
    char *body = malloc(total);
    if (!body) return;
    size_t p = 0;
    bool closing = false;
    for (uint32_t i = 0; i < pl->outq_len; i++) {
        rbuf_t *r = pl->outq[i];
        size_t off = eio_frame_payload_offset(r), n = r->len - off;
        if (v3) {
            eio_packet_t pk = v3_packet_of(r);
            p += eio3_packet_encode_polling(&pk, body + p);
            if (!pk.binary && n == 1 && pk.type == EIO_CLOSE) closing = true;
            continue;
        }
        if (i) body[p++] = 0x1e;
        if (eio_frame_is_binary(r)) {
            body[p++] = 'b';
            p += base64_encode((const uint8_t *)r->data + off, n, body + p);
        } else {
            memcpy(body + p, r->data + off, n);
            if (n == 1 && r->data[off] == '0' + EIO_CLOSE) closing = true;
            p += n;
        }
    }
    eio_polling_outq_clear(pl);
    s->ping_unread = false; /* a ping that was queued is on its way to the client now */
    http_conn_t *hc = take_poll(s);
    http_respond(hc, 200, "text/plain; charset=UTF-8", pl->poll_hdrs, body, p);
    free(body);
    free(pl->poll_hdrs);
    pl->poll_hdrs = NULL;
    if (closing) eio_session_destroy(s, "server close");
}

typedef struct {
    eio_server_t *srv;
    eio_session_t *s;
    char sid[SID_LEN + 1]; /* its random part */
} payload_ctx_t;

static int on_payload_packet(void *ud, const eio_packet_t *p)
{
    payload_ctx_t *ctx = ud;
    eio_handle_packet(ctx->s, p);
    /* Stop when the session went away under us (it may be freed: compare, never touch). */
    return eio_table_find_rnd(ctx->srv, ctx->sid) == ctx->s ? 0 : 1;
}

static void poll_aborted(http_conn_t *hc, void *arg)
{
    eio_session_t *s = arg;
    if (s->pl && s->pl->poll == hc) s->pl->poll = NULL;
    /* The reference server treats a vanished poll as a closed transport. */
    eio_session_destroy(s, "transport close");
}

/* A v3 client that supports binary (XHR2) POSTs payloads with binary packets in the binary
 * form, marked by its content type (as engine.io decides). */
static bool v3_binary_body(const http_request_t *req)
{
    str_t ct = http_request_header(req, "content-type");
    return ct.ptr && ct.len >= 24 && strncasecmp(ct.ptr, "application/octet-stream", 24) == 0;
}

int eio_polling_request(eio_server_t *srv, eio_session_t *s, http_conn_t *hc,
                        const http_request_t *req, str_t body, const char *hdrs)
{
    if (str_eq_cstr(req->method, "GET")) {
        eio_polling_t *pl = s->pl;
        if (pl->poll) {
            /* Two concurrent long polls: the reference server treats it as an error and closes. */
            log_debug("eio %s: overlapping GET, closing", s->sid);
            eio_respond_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
            eio_session_destroy(s, "transport error");
            return HTTP_DONE;
        }
        pl->poll = hc;
        if (hdrs[0]) pl->poll_hdrs = strdup(hdrs);
        if (pl->outq_len) {
            eio_polling_flush(s);
            return HTTP_DONE;
        }
        if (pl->probe_ok) {
            /* Upgrading: the client waits for this poll to end before it sends "5". */
            eio_polling_answer(s, "6");
            return HTTP_DONE;
        }
        http_conn_set_abort(hc, poll_aborted, s);
        return HTTP_DEFERRED;
    }
    if (str_eq_cstr(req->method, "POST")) {
        if (body.len > srv->cfg.max_payload) {
            http_respond_error(hc, 413, "PAYLOAD_TOO_LARGE", "payload over maxPayload");
            eio_session_destroy(s, "transport error");
            return HTTP_DONE;
        }
        /* Answer first: handlers below may close the session (and its pending GET). */
        http_respond(hc, 200, "text/html", hdrs, "ok", 2);
        payload_ctx_t ctx = {srv, s, {0}};
        memcpy(ctx.sid, s->sid, sizeof ctx.sid);
        char *copy = malloc(body.len ? body.len : 1);
        if (!copy) return HTTP_DONE;
        memcpy(copy, body.ptr, body.len);
        int rc;
        if (s->protocol != 3)
            rc = eio_payload_decode(copy, body.len, on_payload_packet, &ctx);
        else if (v3_binary_body(req))
            rc = eio3_payload_decode_binary((const uint8_t *)copy, body.len, on_payload_packet,
                                            &ctx);
        else
            rc = eio3_payload_decode(copy, body.len, on_payload_packet, &ctx);
        free(copy);
        if (rc < 0 && eio_table_find_rnd(srv, ctx.sid) == s) {
            log_debug("eio %s: malformed payload, closing", s->sid);
            eio_session_destroy(s, "parse error");
        }
        return HTTP_DONE;
    }
    eio_respond_error(srv, hc, req, EIO_ERR_BAD_REQUEST);
    return HTTP_DONE;
}
