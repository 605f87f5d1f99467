/* WebSocket connections: handshake, message delivery, control frames, closing. */
#include "ws/ws_conn.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/slab.h"

struct ws_conn {
    net_conn_t *conn;
    ws_parser_t parser;
    const ws_conn_handler_t *h;
    void *ud;
    /* Bytes queued on conn since the handshake (see ws_conn_queued); 63 bits, so that the flag
     * shares the word: the struct stays at 48 bytes, one per idle WebSocket. */
    uint64_t queued : 63;
    uint64_t close_sent : 1;
};

/* Every WebSocket's state, in slabs of its own (core/slab.h); loop thread only, like the
 * connections themselves. */
static slab_pool_t ws_pool;
/* One of each per idle WebSocket (issue 17: idle memory per socket): a guard against growth. */
_Static_assert(sizeof(ws_parser_t) == 16, "the idle parser state is 16 bytes");
_Static_assert(sizeof(ws_conn_t) <= 48, "a WebSocket's state fits 48 bytes");

static size_t ws_on_data(net_conn_t *c, char *data, size_t len);
static void ws_on_close(net_conn_t *c);
static const net_handler_t ws_net_handler = {ws_on_data, ws_on_close, NULL};
static int ws_write(ws_conn_t *ws, rbuf_t *frame);
static int ws_write_copy(ws_conn_t *ws, const void *p, size_t len);

int ws_handshake_check(http_conn_t *hc, const http_request_t *req)
{
    str_t version = http_request_header(req, "sec-websocket-version");
    str_t key = http_request_header(req, "sec-websocket-key");
    if (!str_eq_cstr(req->method, "GET") || req->minor_version < 1 || !req->upgrade_websocket ||
        !key.ptr || !ws_key_valid(key)) {
        http_respond_error(hc, 400, "BAD_REQUEST", "invalid WebSocket handshake");
        return -1;
    }
    if (!str_eq_cstr(version, "13")) {
        http_respond(hc, 426, "application/json", "Sec-WebSocket-Version: 13\r\n",
                     "{\"error\":{\"code\":\"BAD_REQUEST\",\"message\":\"unsupported WebSocket "
                     "version\"}}",
                     strlen("{\"error\":{\"code\":\"BAD_REQUEST\",\"message\":\"unsupported "
                            "WebSocket version\"}}"));
        return -1;
    }
    return 0;
}

ws_conn_t *ws_conn_accept(http_conn_t *hc, const http_request_t *req, size_t max_message,
                          const ws_conn_handler_t *h, void *ud)
{
    net_conn_t *c = http_conn_net(hc);
    if (!ws_pool.size) slab_pool_init(&ws_pool, sizeof(ws_conn_t));
    ws_conn_t *ws = slab_calloc(&ws_pool);
    if (!ws) {
        http_conn_release(hc);
        net_conn_close(c);
        return NULL;
    }
    char accept[29];
    ws_accept_key(http_request_header(req, "sec-websocket-key"), accept);
    /* Put together by hand: snprintf cost ~700 instructions per upgrade. */
    static const char pre[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
    char resp[sizeof pre - 1 + sizeof accept - 1 + 4];
    size_t alen = strnlen(accept, sizeof accept - 1), n = sizeof pre - 1;
    memcpy(resp, pre, n);
    memcpy(resp + n, accept, alen);
    n += alen;
    memcpy(resp + n, "\r\n\r\n", 4);
    n += 4;
    http_conn_release(hc);
    ws->conn = c;
    ws->h = h;
    ws->ud = ud;
    ws_parser_init(&ws->parser, max_message);
    c->handler = &ws_net_handler;
    c->ud = ws;
    ws_write_copy(ws, resp, n);
    return ws;
}

void ws_conn_set_handler(ws_conn_t *ws, const ws_conn_handler_t *h, void *ud)
{
    ws->h = h;
    ws->ud = ud;
}

net_conn_t *ws_conn_net(ws_conn_t *ws)
{
    return ws->conn;
}

uint64_t ws_conn_queued(const ws_conn_t *ws)
{
    return ws->queued;
}

uint64_t ws_conn_handed(const ws_conn_t *ws)
{
    /* Everything queued and not in the connection's queue any more went to the kernel (what
     * the connection still held from before the handshake is not counted in queued). */
    size_t unsent = ws->conn->out_bytes;
    return unsent < ws->queued ? ws->queued - unsent : 0;
}

/* Every write of this connection goes through here, so that ws->queued counts it. */
static int ws_write(ws_conn_t *ws, rbuf_t *frame)
{
    int rc = net_conn_write(ws->conn, frame, 0, frame->len);
    if (rc == 0) ws->queued += frame->len;
    return rc;
}

static int ws_write_copy(ws_conn_t *ws, const void *p, size_t len)
{
    int rc = net_conn_write_copy(ws->conn, p, len);
    if (rc == 0) ws->queued += len;
    return rc;
}

rbuf_t *ws_frame_build(int opcode, const void *data, size_t len)
{
    uint8_t hdr[10];
    size_t hl = ws_frame_header(hdr, true, opcode, len);
    rbuf_t *r = rbuf_new(hl + len);
    if (!r) return NULL;
    memcpy(r->data, hdr, hl);
    if (len) memcpy(r->data + hl, data, len);
    return r;
}

int ws_conn_send_frame(ws_conn_t *ws, rbuf_t *frame)
{
    if (ws->close_sent) return -1;
    return ws_write(ws, frame);
}

int ws_conn_send(ws_conn_t *ws, int opcode, const void *data, size_t len)
{
    if (ws->close_sent) return -1;
    rbuf_t *f = ws_frame_build(opcode, data, len);
    if (!f) {
        net_conn_close(ws->conn);
        return -1;
    }
    int rc = ws_write(ws, f);
    rbuf_unref(f);
    return rc;
}

void ws_conn_close(ws_conn_t *ws, int code, const char *reason)
{
    if (!ws->close_sent) {
        ws->close_sent = true;
        uint8_t frame[127];
        size_t n = ws_close_frame(frame, code, str_cstr(reason ? reason : ""));
        ws_write_copy(ws, frame, n);
    }
    net_conn_close_after_write(ws->conn);
}

void ws_conn_abort(ws_conn_t *ws)
{
    ws->close_sent = true;
    net_conn_close(ws->conn);
}

static int on_msg(void *ud, int opcode, uint8_t *data, size_t len)
{
    ws_conn_t *ws = ud;
    if (ws->h && ws->h->on_message) ws->h->on_message(ws, ws->ud, opcode, data, len);
    return net_conn_closing(ws->conn);
}

static int on_ping(void *ud, uint8_t *data, size_t len)
{
    ws_conn_t *ws = ud;
    ws_conn_send(ws, WS_OP_PONG, data, len);
    return 0;
}

static int on_pong(void *ud, uint8_t *data, size_t len)
{
    return 0;
}

static int on_close_frame(void *ud, int code, const uint8_t *reason, size_t reason_len)
{
    ws_conn_t *ws = ud;
    /* Echo the peer's code, as RFC 6455 5.5.1 suggests; 1005 means it sent none. */
    ws_conn_close(ws, code == WS_CLOSE_NO_STATUS ? 0 : code, NULL);
    return 1;
}

static const ws_parser_callbacks_t parser_cb = {on_msg, on_ping, on_pong, on_close_frame};

static size_t ws_on_data(net_conn_t *c, char *data, size_t len)
{
    ws_conn_t *ws = c->ud;
    if (ws->close_sent) return len; /* waiting for our close frame to go out */
    int64_t r = ws_parser_feed(&ws->parser, &parser_cb, ws, (uint8_t *)data, len);
    if (r < 0) {
        log_debug("conn %llu: WebSocket protocol error, closing with %d", (unsigned long long)c->id,
                  (int)-r);
        ws_conn_close(ws, (int)-r, NULL);
        return len;
    }
    return (size_t)r;
}

static void ws_on_close(net_conn_t *c)
{
    ws_conn_t *ws = c->ud;
    if (ws->h && ws->h->on_close) ws->h->on_close(ws, ws->ud);
    ws_parser_free(&ws->parser);
    slab_free(&ws_pool, ws);
}
