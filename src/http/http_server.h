/* HTTP/1.1 server side: reads requests off a net connection with the pure parser, routes them
 * by path prefix, writes responses; supports keep-alive, pipelining, deferred responses (long
 * polling) and handing the connection to another protocol (WebSocket upgrade). */
#ifndef PARLOR_HTTP_SERVER_H
#define PARLOR_HTTP_SERVER_H

#include "core/buf.h"
#include "core/str.h"
#include "http/http_parse.h"
#include "net/net.h"

/* Descriptors kept beyond the connection cap for refused connections writing their 503. */
#define CONN_REFUSE_RESERVE 512

typedef struct http_server http_server_t;
typedef struct http_conn http_conn_t;

enum {
    HTTP_DONE = 0,     /* the handler responded (http_respond) */
    HTTP_DEFERRED = 1, /* it will respond later; no further request is read until then */
    HTTP_UPGRADED = 2, /* it took the connection over (net handler changed, http_conn freed) */
};

/* A request handler. req and body are valid only during the call. */
typedef int (*http_handler_fn)(http_conn_t *hc, const http_request_t *req, str_t body, void *arg);

/* Runs on the head of a request that has a body (Content-Length > 0 or chunked), before any
 * byte of the body is buffered: returns the body limit for this request (>= 0; a larger
 * Content-Length, or a chunked body growing past it, is refused with 413), or -1 after
 * answering (a refusal, e.g. 401: the body is not read and the connection is closed after the
 * answer). */
typedef long long (*http_head_fn)(http_conn_t *hc, const http_request_t *req, void *arg);

typedef struct {
    size_t max_head; /* request line + headers; over it -> 431 */
    size_t max_body; /* body limit of routes added with http_server_route; over it -> 413 */
    /* Request bytes held by the whole server while requests are incomplete (partial heads and
     * bodies not yet complete, chunked bodies being decoded). A read that takes the total past
     * it is refused with 503 and its connection closed. 0: no budget. */
    size_t max_buffered;
    /* TCP connections the server keeps at once (sized from RLIMIT_NOFILE by the caller);
     * beyond it a new connection gets a 503 and is closed. 0: no cap. */
    /* (Refused connections that may still be writing their 503 past it: max_conns/8 + 16, at
     * most CONN_REFUSE_RESERVE; the caller keeps that many descriptors for them.) */
    size_t max_conns;
    /* Connections from one IP address while they speak HTTP (a WebSocket leaves this count
     * after its upgrade; Engine.IO sessions have their own per-IP cap). 0: no cap. */
    size_t max_conns_per_ip;
} http_server_config_t;

typedef struct {
    size_t http_conns;    /* connections speaking HTTP */
    size_t buffered;      /* request bytes held (see max_buffered) */
    uint64_t shed;        /* requests refused because the buffer budget was spent */
    uint64_t refused_fds; /* connections refused at max_conns */
    uint64_t refused_ip;  /* connections refused at max_conns_per_ip */
} http_server_stats_t;
void http_server_stats(const http_server_t *s, http_server_stats_t *out);

http_server_t *http_server_new(net_loop_t *nl, const http_server_config_t *cfg);
void http_server_free(http_server_t *s);
/* Routes requests whose path starts with prefix (e.g. "/socket.io/"); the longest match wins;
 * a prefix without a trailing '/' matches that exact path too. */
int http_server_route(http_server_t *s, const char *prefix, http_handler_fn fn, void *arg);
/* The same with this route's own body limit and an optional check on the head (on_head may be
 * NULL; its arg is the route's arg). */
int http_server_route_limited(http_server_t *s, const char *prefix, http_handler_fn fn, void *arg,
                              size_t max_body, http_head_fn on_head);
/* Accept callback for net_listen (arg = the http_server_t). */
void http_server_accept(net_conn_t *c, void *arg);

/* Streaming request bodies (uploads): for routes added with http_server_route_streaming the
 * handler runs as soon as the head is complete, with an empty body, and either responds (a
 * refusal: the body is discarded) or calls http_conn_stream_body and returns HTTP_DEFERRED.
 * The body then arrives in pieces (decoded when chunked), never held whole in memory. */
typedef struct {
    /* A piece of the body. Return 0 to go on, or -1 after answering (e.g. 413) to stop. */
    int (*on_body)(http_conn_t *hc, const char *data, size_t len, void *arg);
    /* The body is complete (or the request broke off: then the connection is closing and
     * any answer is dropped). Return HTTP_DONE after answering or HTTP_DEFERRED. */
    int (*on_end)(http_conn_t *hc, void *arg);
    void *arg;
} http_body_stream_t;
int http_server_route_streaming(http_server_t *s, const char *prefix, http_handler_fn fn,
                                void *arg);
void http_conn_stream_body(http_conn_t *hc, const http_body_stream_t *stream);

net_conn_t *http_conn_net(http_conn_t *hc);
/* Called if the connection goes away while a deferred response is pending (then no response
 * may be sent). Set by the handler that deferred. */
void http_conn_set_abort(http_conn_t *hc, void (*on_abort)(http_conn_t *hc, void *arg), void *arg);

/* Writes a complete response. extra_headers: zero or more "Name: value\r\n" lines, or NULL.
 * Content-Length and Connection are added here. */
void http_respond(http_conn_t *hc, int status, const char *content_type, const char *extra_headers,
                  const void *body, size_t len);
/* A response whose body is written in pieces (files): the head now, then the bytes with
 * net_conn_write on http_conn_net(hc) as output drains (http_respond_set_drain tells when the
 * queue is empty), then http_respond_end. */
void http_respond_start(http_conn_t *hc, int status, const char *content_type,
                        const char *extra_headers, uint64_t content_length);
void http_respond_set_drain(http_conn_t *hc, void (*on_drain)(http_conn_t *hc, void *arg),
                            void *arg);
size_t http_conn_pending_output(http_conn_t *hc);
void http_respond_end(http_conn_t *hc);
/* {"error":{"code":...,"message":...}} with the given status. */
void http_respond_error(http_conn_t *hc, int status, const char *code, const char *message);
const char *http_status_text(int status);
/* CORS: the Access-Control-Allow-Origin (and Vary, Credentials) lines for this request, given
 * the allowed origins ("*" or a comma-separated list; empty: none). out is NUL-terminated. */
void http_cors_headers(const char *origins, bool credentials, const http_request_t *req, char *out,
                       size_t cap);
/* True when origin is one of the comma-separated origins in list (exact match, spaces around
 * each entry ignored). */
bool http_origin_listed(const char *list, str_t origin);
/* Header lines added to every response of the current request (at most 319 bytes). */
void http_conn_set_response_headers(http_conn_t *hc, const char *headers);
/* Writes raw bytes and closes after them (for refusals on the way to a WebSocket upgrade). */
void http_respond_raw_and_close(http_conn_t *hc, const char *data, size_t len);

/* Detaches the HTTP layer from the connection before a protocol switch: frees the http_conn;
 * the caller installs its own net handler. Used inside a handler that returns HTTP_UPGRADED. */
void http_conn_release(http_conn_t *hc);

#endif
