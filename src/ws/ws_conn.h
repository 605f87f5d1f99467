/* A WebSocket connection (RFC 6455, server side) on a net connection: the handshake, frames
 * in (via the pure ws_codec parser), frames out, ping/pong and the close handshake. */
#ifndef PARLOR_WS_CONN_H
#define PARLOR_WS_CONN_H

#include "http/http_server.h"
#include "ws/ws_codec.h"

typedef struct ws_conn ws_conn_t;

typedef struct {
    /* A complete TEXT or BINARY message; data valid only during the call. */
    void (*on_message)(ws_conn_t *ws, void *ud, int opcode, uint8_t *data, size_t len);
    /* The connection is gone (peer close, error, or ws_conn_close); ws is freed right after. */
    void (*on_close)(ws_conn_t *ws, void *ud);
} ws_conn_handler_t;

/* Checks the upgrade request; on a bad one answers 400 (or 426 for a wrong version) and
 * returns a negative value. Does not write anything on success. */
int ws_handshake_check(http_conn_t *hc, const http_request_t *req);
/* Answers 101 and takes the connection over (frees the http_conn). The caller's handler must
 * return HTTP_UPGRADED. Returns NULL (connection closed) on allocation failure. */
ws_conn_t *ws_conn_accept(http_conn_t *hc, const http_request_t *req, size_t max_message,
                          const ws_conn_handler_t *h, void *ud);
void ws_conn_set_handler(ws_conn_t *ws, const ws_conn_handler_t *h, void *ud);

/* Builds one complete server frame (header + payload) that can be queued on many connections. */
rbuf_t *ws_frame_build(int opcode, const void *data, size_t len);
/* Queues a prebuilt frame (shared, refcounted). Returns 0 or -1 when the connection is closing. */
int ws_conn_send_frame(ws_conn_t *ws, rbuf_t *frame);
int ws_conn_send(ws_conn_t *ws, int opcode, const void *data, size_t len);
/* Sends a close frame with code (0: none) and closes once it is written. on_close follows. */
void ws_conn_close(ws_conn_t *ws, int code, const char *reason);
/* Closes at once, dropping whatever is still queued (for a peer that stopped reading, whose
 * queue would never drain for a close frame to go out). on_close follows. */
void ws_conn_abort(ws_conn_t *ws);
net_conn_t *ws_conn_net(ws_conn_t *ws);
/* Bytes queued on the connection since the handshake (its 101 included): the position just
 * after the last frame queued. */
uint64_t ws_conn_queued(const ws_conn_t *ws);
/* Bytes of those handed to the kernel so far: a frame queued when ws_conn_queued read n has
 * left the server once this reaches n. */
uint64_t ws_conn_handed(const ws_conn_t *ws);

#endif
