/* Engine.IO v4 server: sessions over HTTP long-polling and WebSocket, the polling->WebSocket
 * upgrade, the server-driven heartbeat, and the reference server's error answers. */
#ifndef PARLOR_EIO_SERVER_H
#define PARLOR_EIO_SERVER_H

#include "http/http_server.h"
#include "ws/ws_conn.h"

typedef struct eio_server eio_server_t;
typedef struct eio_session eio_session_t;

typedef struct {
    uint32_t ping_interval_ms;
    uint32_t ping_timeout_ms;
    size_t max_payload;
    const char *cors_origins; /* "*" or a comma-separated list of origins; NULL/"" = no CORS */
    bool cors_credentials;
    /* Admission control (optional): called before a session is created; returns a handle to
     * admit, or NULL to refuse with HTTP 429 and Retry-After: *retry_after_s. The handle is
     * given back to release when the session ends. */
    void *(*admit)(void *arg, net_conn_t *c, uint32_t *retry_after_s);
    void (*release)(void *arg, void *handle);
    void *admit_arg;
    /* Bytes reserved, zeroed, in each session's own allocation for the layer above (see
     * eio_session_extra), so that a connection costs one allocation less. */
    size_t session_extra;
    /* Also accept Engine.IO v3 clients (EIO=3: socket.io-client 2.x): client-sent pings
     * answered with pongs, length-prefixed polling payloads, 'b4' base64 binary; no JSONP. */
    bool allow_eio3;
    /* Sids are "<sid_prefix>.<20 random characters>" (1-24 of [A-Za-z0-9_-]; NULL or "": no
     * prefix, 20 characters): a cluster node's id, so that a load balancer routes each
     * session's requests to its node (docs/cluster.md). */
    const char *sid_prefix;
} eio_config_t;

typedef struct {
    /* A session was opened (handshake done). Return 0, or -1 to refuse it (it is closed). */
    int (*on_open)(eio_session_t *s, void *arg, const http_request_t *req);
    /* One message packet; data valid only during the call. */
    void (*on_message)(eio_session_t *s, void *arg, bool binary, const uint8_t *data, size_t len);
    /* The session is closing; it is freed right after this returns. */
    void (*on_close)(eio_session_t *s, void *arg, const char *reason);
} eio_handler_t;

eio_server_t *eio_server_new(net_loop_t *nl, const eio_config_t *cfg, const eio_handler_t *h,
                             void *arg);
/* Closes every session (a clean close for each client), then frees the server once they are
 * gone; call before the loop ends. */
void eio_server_shutdown(eio_server_t *srv);
/* Closes the server's timers; free it with eio_server_free once the loop has run them out. */
void eio_server_close(eio_server_t *srv);
void eio_server_free(eio_server_t *srv);
size_t eio_server_num_sessions(const eio_server_t *srv);
/* Sets the admission hooks after creation (see eio_config_t). */
void eio_server_set_admission(eio_server_t *srv, void *(*admit)(void *, net_conn_t *, uint32_t *),
                              void (*release)(void *, void *), void *arg);
/* The HTTP route handler (arg = the eio_server_t). */
int eio_server_handle(http_conn_t *hc, const http_request_t *req, str_t body, void *arg);

/* Builds one message packet, encoded once as a WebSocket frame ("4"+data for text, raw bytes
 * for binary); the same buffer serves polling sessions too. */
rbuf_t *eio_message_build(bool binary, const void *data, size_t len);
/* The same for a text message whose data is the n parts one after another (gathered into
 * the frame, no intermediate copy). */
rbuf_t *eio_message_build_parts(const str_t *parts, size_t n);
/* Queues a built packet on a session (takes its own reference). */
void eio_session_send_built(eio_session_t *s, rbuf_t *packet);
void eio_session_send(eio_session_t *s, bool binary, const void *data, size_t len);
/* Server-initiated close: queued packets are still delivered, then the transport closes. */
void eio_session_close(eio_session_t *s, const char *reason);

/* The random part of the session's sid (its last SID_LEN characters; for logs). */
const char *eio_session_id(const eio_session_t *s);
/* The session_extra bytes of the session (pointer-aligned); valid until on_close returns. */
void *eio_session_extra(eio_session_t *s);
/* The session whose session_extra bytes start at extra (the inverse of eio_session_extra): the
 * layer above derives it instead of keeping a pointer back. */
eio_session_t *eio_session_of_extra(void *extra);
/* The arg given to eio_server_new for the session's server. */
void *eio_session_server_arg(const eio_session_t *s);
bool eio_session_is_websocket(const eio_session_t *s);
/* The Engine.IO protocol revision the client speaks: 4, or 3 (only with allow_eio3). */
int eio_session_protocol(const eio_session_t *s);
/* Bytes queued on the session and not yet handed to the kernel (WebSocket) or not yet taken
 * by a GET (polling): lets a producer pace itself to the reader. */
size_t eio_session_queued_bytes(const eio_session_t *s);

#endif
