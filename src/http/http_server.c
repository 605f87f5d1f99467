/* HTTP/1.1 server side on top of net: request framing, routing, responses. */
#define _GNU_SOURCE /* strcasestr */
#include "http/http_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/strmap.h"

#define HTTP_MAX_ROUTES 16

typedef struct {
    char prefix[64];
    size_t len;
    http_handler_fn fn;
    void *arg;
    bool streaming; /* the handler sees the head first and takes the body as a stream */
    size_t max_body;
    http_head_fn on_head;
} http_route_t;

struct http_server {
    net_loop_t *nl;
    http_server_config_t cfg;
    http_route_t routes[HTTP_MAX_ROUTES];
    int num_routes;
    strmap_t per_ip; /* IP -> HTTP connections from it (a count cast to a pointer) */
    http_server_stats_t stats;
};

enum { HC_HEAD, HC_CHUNKED, HC_WAIT, HC_STREAM };

struct http_conn {
    net_conn_t *conn;
    http_server_t *srv;
    int state;
    bool keep_alive;
    bool request_timer; /* header timeout armed for the request being read */
    bool responded;     /* the current request has its response */
    buf_t head;         /* copy of the head while a chunked body is decoded */
    buf_t body;         /* decoded chunked body */
    http_chunked_t chunked;
    void (*on_abort)(http_conn_t *hc, void *arg);
    void *abort_arg;
    /* HC_STREAM: the body goes to the handler's stream as it arrives. */
    http_body_stream_t stream;
    bool stream_chunked;
    bool stream_set;
    uint64_t stream_left; /* Content-Length bytes still to come */
    /* A response body being produced in pieces (http_respond_start/_body/_end). */
    void (*on_drain)(http_conn_t *hc, void *arg);
    void *drain_arg;
    char resp_headers[320]; /* added to every response of the current request (CORS) */
    bool body_unread;       /* a streamed body is not all read: an answer now must close */
    /* The head of the request being buffered passed its route's on_head; body_limit is its
     * body limit (checked again on every read: the head is parsed again until the body is
     * complete). */
    bool head_ok;
    size_t body_limit;
    size_t held;         /* request bytes this connection holds, counted in srv->stats.buffered */
    char ip[48];         /* the peer's address, counted in srv->per_ip ("" when not counted) */
    bool output_blocked; /* pipelined requests wait until the client reads our answers */
};

/* Backpressure on pipelining: a request is not parsed while this much of our output waits
 * for the client. A client that sends requests but reads no answers would otherwise make the
 * server render every one of them (each up to a page of history) into its queue. */
#define HTTP_OUTPUT_HIGH_WATER (256 * 1024)

static size_t http_on_data(net_conn_t *c, char *data, size_t len);
static void http_on_close(net_conn_t *c);
static void http_on_drain(net_conn_t *c);
static const net_handler_t http_handler = {http_on_data, http_on_close, http_on_drain};

http_server_t *http_server_new(net_loop_t *nl, const http_server_config_t *cfg)
{
    http_server_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->nl = nl;
    s->cfg = *cfg;
    if (strmap_init(&s->per_ip) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

void http_server_free(http_server_t *s)
{
    if (!s) return;
    strmap_free(&s->per_ip, NULL);
    free(s);
}

void http_server_stats(const http_server_t *s, http_server_stats_t *out)
{
    *out = s->stats;
}

int http_server_route_streaming(http_server_t *s, const char *prefix, http_handler_fn fn, void *arg)
{
    if (http_server_route(s, prefix, fn, arg) < 0) return -1;
    s->routes[s->num_routes - 1].streaming = true;
    return 0;
}

void http_conn_stream_body(http_conn_t *hc, const http_body_stream_t *stream)
{
    hc->stream = *stream;
    hc->stream_set = true;
}

int http_server_route(http_server_t *s, const char *prefix, http_handler_fn fn, void *arg)
{
    size_t n = strlen(prefix);
    if (s->num_routes == HTTP_MAX_ROUTES || n >= sizeof s->routes[0].prefix) return -1;
    http_route_t *r = &s->routes[s->num_routes++];
    memcpy(r->prefix, prefix, n + 1);
    r->len = n;
    r->fn = fn;
    r->arg = arg;
    r->max_body = s->cfg.max_body;
    r->on_head = NULL;
    return 0;
}

int http_server_route_limited(http_server_t *s, const char *prefix, http_handler_fn fn, void *arg,
                              size_t max_body, http_head_fn on_head)
{
    if (http_server_route(s, prefix, fn, arg) < 0) return -1;
    s->routes[s->num_routes - 1].max_body = max_body;
    s->routes[s->num_routes - 1].on_head = on_head;
    return 0;
}

/* The peer's address without the port. */
static void peer_ip(net_conn_t *c, char *out, size_t cap)
{
    char peer[80];
    net_conn_peer_name(c, peer, sizeof peer);
    char *colon = strrchr(peer, ':');
    if (colon) *colon = '\0';
    size_t n = strlen(peer);
    if (n >= cap) n = cap - 1;
    memcpy(out, peer, n);
    out[n] = '\0';
}

static uintptr_t ip_count(http_server_t *s, const char *ip)
{
    return (uintptr_t)strmap_get(&s->per_ip, ip);
}

static void ip_release(http_server_t *s, const char *ip)
{
    if (!ip[0]) return;
    uintptr_t n = ip_count(s, ip);
    if (n <= 1)
        strmap_remove(&s->per_ip, ip);
    else
        strmap_set(&s->per_ip, ip, (void *)(n - 1)); /* replaces: cannot fail */
}

/* A connection refused at accept: a short 503 and a graceful close while few refused ones
 * linger; past that (a flood of new connections), an immediate close, so that refused
 * connections never hold more than a few descriptors beyond the cap. */
static void refuse_conn(http_server_t *s, net_conn_t *c, const char *why)
{
    static const char resp[] =
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Retry-After: 1\r\nContent-Length: 65\r\nConnection: close\r\n\r\n"
        "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"too many connections\"}}";
    size_t slack = 1024;
    if (s->cfg.max_conns) {
        slack = s->cfg.max_conns / 8;
        if (slack > CONN_REFUSE_RESERVE - 16) slack = CONN_REFUSE_RESERVE - 16;
        slack += 16;
    }
    size_t cap = s->cfg.max_conns ? s->cfg.max_conns : (size_t)-1 / 2;
    log_debug("conn %llu: refused (%s)", (unsigned long long)c->id, why);
    if (net_conn_nl(c)->num_conns <= cap + slack &&
        net_conn_write_copy(c, resp, sizeof resp - 1) == 0)
        net_conn_close_after_write(c);
    else
        net_conn_close(c);
}

void http_server_accept(net_conn_t *c, void *arg)
{
    http_server_t *s = arg;
    /* num_conns counts this connection already. */
    if (s->cfg.max_conns && net_conn_nl(c)->num_conns > s->cfg.max_conns) {
        if (s->stats.refused_fds++ % 1000 == 0)
            log_warn("at the connection cap (%zu, from the open-files limit): refusing new "
                     "connections (%llu so far)",
                     s->cfg.max_conns, (unsigned long long)s->stats.refused_fds);
        refuse_conn(s, c, "connection cap");
        return;
    }
    char ip[48] = "";
    if (s->cfg.max_conns_per_ip) {
        peer_ip(c, ip, sizeof ip);
        uintptr_t n = ip_count(s, ip);
        if (n >= s->cfg.max_conns_per_ip) {
            if (s->stats.refused_ip++ % 1000 == 0)
                log_warn("%s has %zu HTTP connections (max-http-connections-per-ip): refusing "
                         "(%llu refused so far)",
                         ip, (size_t)n, (unsigned long long)s->stats.refused_ip);
            refuse_conn(s, c, "per-IP cap");
            return;
        }
        if (strmap_set(&s->per_ip, ip, (void *)(n + 1)) < 0) {
            net_conn_close(c);
            return;
        }
    }
    http_conn_t *hc = calloc(1, sizeof *hc);
    if (!hc) {
        ip_release(s, ip);
        net_conn_close(c);
        return;
    }
    memcpy(hc->ip, ip, sizeof ip);
    s->stats.http_conns++;
    hc->conn = c;
    hc->srv = arg;
    hc->state = HC_HEAD;
    c->handler = &http_handler;
    c->ud = hc;
    net_conn_arm_header_timeout(c);
    hc->request_timer = true;
}

net_conn_t *http_conn_net(http_conn_t *hc)
{
    return hc->conn;
}

void http_conn_set_abort(http_conn_t *hc, void (*on_abort)(http_conn_t *, void *), void *arg)
{
    hc->on_abort = on_abort;
    hc->abort_arg = arg;
}

static void hc_free(http_conn_t *hc)
{
    http_server_t *s = hc->srv;
    s->stats.buffered -= hc->held;
    s->stats.http_conns--;
    ip_release(s, hc->ip);
    buf_free(&hc->head);
    buf_free(&hc->body);
    free(hc);
}

void http_conn_release(http_conn_t *hc)
{
    net_conn_t *c = hc->conn;
    net_conn_clear_timeout(c);
    net_conn_detach(c);
    hc_free(hc);
}

static void http_on_close(net_conn_t *c)
{
    http_conn_t *hc = c->ud;
    if ((hc->state == HC_WAIT || hc->state == HC_STREAM) && hc->on_abort)
        hc->on_abort(hc, hc->abort_arg);
    hc_free(hc);
}

bool http_origin_listed(const char *list, str_t origin)
{
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && *p == ' ') p++, n--;
        while (n && p[n - 1] == ' ') n--;
        if (n == origin.len && memcmp(p, origin.ptr, n) == 0) return true;
        if (!end) break;
        p = end + 1;
    }
    return false;
}

void http_cors_headers(const char *origins, bool credentials, const http_request_t *req, char *out,
                       size_t cap)
{
    out[0] = '\0';
    if (!origins || !origins[0]) return;
    str_t origin = http_request_header(req, "origin");
    bool any = strcmp(origins, "*") == 0;
    size_t n = 0;
    if (any && !credentials) {
        n = (size_t)snprintf(out, cap, "Access-Control-Allow-Origin: *\r\n");
    } else if (origin.ptr && origin.len < 256 && (any || http_origin_listed(origins, origin))) {
        n = (size_t)snprintf(out, cap, "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n%s",
                             (int)origin.len, origin.ptr,
                             credentials ? "Access-Control-Allow-Credentials: true\r\n" : "");
    }
    if (n >= cap) out[0] = '\0';
}

void http_conn_set_response_headers(http_conn_t *hc, const char *headers)
{
    snprintf(hc->resp_headers, sizeof hc->resp_headers, "%s", headers ? headers : "");
}

const char *http_status_text(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

static void http_on_drain(net_conn_t *c)
{
    http_conn_t *hc = c->ud;
    if (hc->output_blocked) {
        hc->output_blocked = false;
        net_conn_schedule_reprocess(c); /* the requests that waited behind our output */
    }
    if (hc->on_drain) hc->on_drain(hc, hc->drain_arg);
}

/* After the last byte of a response: keep-alive bookkeeping. */
static void response_done(http_conn_t *hc)
{
    net_conn_t *c = hc->conn;
    if (!hc->keep_alive) {
        net_conn_close_after_write(c);
        return;
    }
    if (hc->state == HC_WAIT) {
        /* A deferred response: read what was pipelined behind it, outside this call stack. */
        hc->state = HC_HEAD;
        hc->on_abort = NULL;
        net_conn_schedule_reprocess(c);
    }
    if (c->in.len == 0) {
        hc->request_timer = false;
        net_conn_arm_idle_timeout(c);
    }
}

/* Every response says nosniff (a JSON error or an upload must never be sniffed into HTML by
 * a browser), unless the caller's headers already do. */
static const char *nosniff(const http_conn_t *hc, const char *extra_headers)
{
    static const char hdr[] = "X-Content-Type-Options: nosniff\r\n";
    if (extra_headers && strcasestr(extra_headers, "X-Content-Type-Options:")) return "";
    if (strcasestr(hc->resp_headers, "X-Content-Type-Options:")) return "";
    return hdr;
}

void http_respond_start(http_conn_t *hc, int status, const char *content_type,
                        const char *extra_headers, uint64_t content_length)
{
    hc->responded = true;
    if (hc->body_unread) hc->keep_alive = false;
    buf_t b;
    buf_init(&b);
    buf_printf(&b, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
    if (content_type) buf_printf(&b, "Content-Type: %s\r\n", content_type);
    buf_printf(&b, "Content-Length: %llu\r\n%s%s%s%s\r\n", (unsigned long long)content_length,
               nosniff(hc, extra_headers), hc->resp_headers, extra_headers ? extra_headers : "",
               hc->keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    net_conn_write_copy(hc->conn, b.data, b.len);
    buf_free(&b);
}

void http_respond_set_drain(http_conn_t *hc, void (*on_drain)(http_conn_t *, void *), void *arg)
{
    hc->on_drain = on_drain;
    hc->drain_arg = arg;
}

size_t http_conn_pending_output(http_conn_t *hc)
{
    return hc->conn->out_bytes;
}

void http_respond_end(http_conn_t *hc)
{
    hc->on_drain = NULL;
    hc->drain_arg = NULL;
    response_done(hc);
}

void http_respond(http_conn_t *hc, int status, const char *content_type, const char *extra_headers,
                  const void *body, size_t len)
{
    net_conn_t *c = hc->conn;
    hc->responded = true;
    if (hc->body_unread) hc->keep_alive = false; /* the rest of the body cannot be framed */
    char head[512], clen[48] = "";
    /* 204 and 304 carry no Content-Length (RFC 9110 8.6): it would describe another answer. */
    if (status != 204 && status != 304) snprintf(clen, sizeof clen, "Content-Length: %zu\r\n", len);
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n%s%s%s%s%s", status,
                     http_status_text(status), content_type ? "Content-Type: " : "",
                     content_type ? content_type : "", content_type ? "\r\n" : "", clen,
                     nosniff(hc, extra_headers));
    if (n < 0 || (size_t)n >= sizeof head) {
        net_conn_close(c); /* a content type longer than any we send */
        return;
    }
    size_t extra = extra_headers ? strlen(extra_headers) : 0;
    size_t common = strlen(hc->resp_headers);
    const char *conn_hdr =
        hc->keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    size_t ch = strlen(conn_hdr);
    rbuf_t *r = rbuf_new((size_t)n + common + extra + ch + len);
    if (!r) {
        net_conn_close(c);
        return;
    }
    char *p = r->data;
    memcpy(p, head, (size_t)n);
    p += n;
    memcpy(p, hc->resp_headers, common);
    p += common;
    if (extra) memcpy(p, extra_headers, extra);
    p += extra;
    memcpy(p, conn_hdr, ch);
    p += ch;
    if (len) memcpy(p, body, len);
    net_conn_write(c, r, 0, r->len);
    rbuf_unref(r);
    response_done(hc);
}

void http_respond_error(http_conn_t *hc, int status, const char *code, const char *message)
{
    char body[512];
    int n = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
                     message);
    http_respond(hc, status, "application/json", NULL, body, (size_t)n);
}

void http_respond_raw_and_close(http_conn_t *hc, const char *data, size_t len)
{
    net_conn_write_copy(hc->conn, data, len);
    net_conn_close_after_write(hc->conn);
}

/* A request the parser refused: answer with its status and close (the framing is lost). */
static void respond_parse_error(http_conn_t *hc, int status, const char *reason)
{
    hc->keep_alive = false;
    const char *code = status == 431   ? "HEADERS_TOO_LARGE"
                       : status == 413 ? "PAYLOAD_TOO_LARGE"
                       : status == 501 ? "NOT_IMPLEMENTED"
                       : status == 505 ? "HTTP_VERSION_NOT_SUPPORTED"
                                       : "BAD_REQUEST";
    log_debug("conn %llu: bad request (%d %s)", (unsigned long long)hc->conn->id, status,
              reason ? reason : "");
    http_respond_error(hc, status, code, reason ? reason : http_status_text(status));
}

static const http_route_t *find_route(http_server_t *s, str_t path)
{
    const http_route_t *best = NULL;
    for (int i = 0; i < s->num_routes; i++) {
        const http_route_t *r = &s->routes[i];
        bool match = str_starts_with(path, str_make(r->prefix, r->len)) ||
                     (r->len > 1 && r->prefix[r->len - 1] == '/' && path.len == r->len - 1 &&
                      memcmp(path.ptr, r->prefix, path.len) == 0);
        if (match && (!best || r->len > best->len)) best = r;
    }
    return best;
}

/* Runs the handler; returns its HTTP_* result. */
static int dispatch(http_conn_t *hc, const http_request_t *req, str_t body)
{
    hc->keep_alive = req->keep_alive;
    hc->head_ok = false;
    net_conn_clear_timeout(hc->conn);
    hc->request_timer = false;
    hc->responded = false;
    hc->resp_headers[0] = '\0';
    const http_route_t *r = find_route(hc->srv, req->path);
    if (!r) {
        http_respond_error(hc, 404, "NOT_FOUND", "no such path");
        return HTTP_DONE;
    }
    int rc = r->fn(hc, req, body, r->arg);
    /* A handler that deferred may have answered before returning (a synchronous refusal). */
    if (rc == HTTP_DEFERRED && hc->responded) rc = HTTP_DONE;
    return rc;
}

/* A streaming route: the handler runs on the head alone. It responds at once (a refusal:
 * the body is then discarded and the connection closed after the answer) or attaches a stream
 * with http_conn_stream_body and returns HTTP_DEFERRED. Returns -1 when the connection is done. */
static int stream_start(http_conn_t *hc, const http_request_t *req)
{
    hc->stream_set = false;
    hc->stream_chunked = req->chunked;
    hc->stream_left = req->content_length > 0 ? (uint64_t)req->content_length : 0;
    if (req->chunked) http_chunked_init(&hc->chunked);
    bool has_body = req->chunked || hc->stream_left > 0;
    hc->body_unread = has_body;
    int rc = dispatch(hc, req, STR_NULL);
    if (!hc->stream_set) {
        /* Answered without reading the body: the rest of it cannot be told from a next
         * request, so close after the answer (the linger drains what the peer still sends). */
        if (has_body) {
            hc->body_unread = false;
            hc->keep_alive = false;
            net_conn_close_after_write(hc->conn);
            return -1;
        }
        if (rc == HTTP_DEFERRED) hc->state = HC_WAIT;
        return 0;
    }
    hc->state = HC_STREAM;
    if (!has_body) {
        hc->body_unread = false;
        hc->state = HC_HEAD;
        int end = hc->stream.on_end(hc, hc->stream.arg);
        hc->stream_set = false;
        if (end == HTTP_DEFERRED && !hc->responded) hc->state = HC_WAIT;
    }
    return 0;
}

/* Feeds body bytes to the stream; returns the raw bytes used. */
static size_t stream_feed(http_conn_t *hc, char *data, size_t len)
{
    size_t used;
    int rc = 0;
    bool done;
    if (hc->stream_chunked) {
        size_t out_len = 0;
        /* Decoding never expands, so in place is fine (the bytes are ours until we return). */
        int64_t u = http_chunked_decode(&hc->chunked, data, len, data, &out_len);
        if (u < 0) {
            hc->body_unread = false;
            hc->keep_alive = false;
            hc->stream.on_end(hc, hc->stream.arg); /* lets the handler release its resources */
            hc->stream_set = false;
            if (!hc->responded)
                respond_parse_error(hc, 400, "malformed chunked body");
            else
                net_conn_close_after_write(hc->conn);
            return len;
        }
        used = (size_t)u;
        if (out_len) rc = hc->stream.on_body(hc, data, out_len, hc->stream.arg);
        done = http_chunked_done(&hc->chunked);
    } else {
        used = len < hc->stream_left ? len : (size_t)hc->stream_left;
        hc->stream_left -= used;
        if (used) rc = hc->stream.on_body(hc, data, used, hc->stream.arg);
        done = hc->stream_left == 0;
    }
    if (rc < 0) {
        /* The handler refused the body (and answered): discard the rest, then close. */
        hc->body_unread = false;
        hc->stream_set = false;
        hc->keep_alive = false;
        net_conn_close_after_write(hc->conn);
        return len;
    }
    if (done) {
        hc->body_unread = false;
        hc->state = HC_HEAD;
        hc->responded = false;
        int end = hc->stream.on_end(hc, hc->stream.arg);
        hc->stream_set = false;
        if (end == HTTP_DEFERRED && !hc->responded) hc->state = HC_WAIT;
    }
    return used;
}

/* A request with a body on a route that checks heads: runs the check before any byte of the
 * body is kept. Returns -1 when it answered (the connection is then closing). */
static int head_check(http_conn_t *hc, const http_request_t *req, const http_route_t *r)
{
    hc->keep_alive = req->keep_alive;
    hc->responded = false;
    hc->resp_headers[0] = '\0';
    hc->body_unread = true; /* an answer now must close: the body will not be read */
    long long limit = r->on_head(hc, req, r->arg);
    hc->body_unread = false;
    if (limit < 0 || hc->responded) {
        hc->keep_alive = false;
        if (!hc->responded) http_respond_error(hc, 500, "INTERNAL", "request refused");
        net_conn_close_after_write(hc->conn);
        return -1;
    }
    hc->body_limit = (size_t)limit;
    return 0;
}

/* The buffer budget is spent and this connection's bytes went past it: refuse its request
 * (503) and close it. The one whose read went over is shed: it is the one growing. */
static void shed(http_conn_t *hc)
{
    http_server_t *s = hc->srv;
    if (s->stats.shed++ % 1000 == 0)
        log_warn("request buffers at %zu bytes (max-buffered-request-bytes %zu): shedding "
                 "(%llu so far)",
                 s->stats.buffered, s->cfg.max_buffered, (unsigned long long)s->stats.shed);
    if (hc->state == HC_HEAD || hc->state == HC_CHUNKED) {
        hc->keep_alive = false;
        hc->resp_headers[0] = '\0';
        static const char body[] =
            "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"the server is busy; retry\"}}";
        http_respond(hc, 503, "application/json", "Retry-After: 1\r\n", body, sizeof body - 1);
        /* No handler has this request: what it buffered is given back at once, so that the
         * budget holds while the connection lingers (up to 2 s) after the 503. net frees its
         * input buffer as the connection closes. */
        buf_free(&hc->head);
        buf_free(&hc->body);
        s->stats.buffered -= hc->held;
        hc->held = 0;
    } else {
        net_conn_close(hc->conn); /* an answer is pending or being streamed: no room for ours */
    }
}

static size_t on_data_inner(net_conn_t *c, char *data, size_t len);

/* Counts what this connection leaves in net's input buffer (len - consumed) plus a chunked
 * body being decoded against the server's budget. */
static size_t http_on_data(net_conn_t *c, char *data, size_t len)
{
    http_conn_t *hc = c->ud;
    http_server_t *s = hc->srv;
    size_t off = on_data_inner(c, data, len);
    if (c->handler != &http_handler) return off; /* upgraded: hc is gone (and was uncounted) */
    if (net_conn_closing(c)) return off;         /* held stays counted until hc is freed */
    size_t held = (off < len ? len - off : 0) + hc->head.cap + hc->body.cap;
    size_t old = hc->held;
    s->stats.buffered = s->stats.buffered - old + held;
    hc->held = held;
    if (held > old && s->cfg.max_buffered && s->stats.buffered > s->cfg.max_buffered) shed(hc);
    return off;
}

static size_t on_data_inner(net_conn_t *c, char *data, size_t len)
{
    http_conn_t *hc = c->ud;
    http_server_t *s = hc->srv;
    size_t off = 0;
    while (off < len && !net_conn_closing(c)) {
        if (hc->state == HC_WAIT) break;
        if (hc->state == HC_HEAD && c->out_bytes > HTTP_OUTPUT_HIGH_WATER) {
            hc->output_blocked = true; /* http_on_drain goes on */
            break;
        }
        if (!hc->request_timer) {
            net_conn_arm_header_timeout(c);
            hc->request_timer = true;
        }
        if (hc->state == HC_HEAD) {
            http_request_t req;
            int n = http_parse_request(data + off, len - off, s->cfg.max_head, &req);
            if (n == HTTP_PARSE_INCOMPLETE) break;
            if (n < 0) {
                respond_parse_error(hc, req.error_status ? req.error_status : 400,
                                    req.error_reason);
                return len;
            }
            const http_route_t *route = find_route(s, req.path);
            if (route && route->streaming) {
                off += (size_t)n;
                if (stream_start(hc, &req) < 0) return len;
                continue;
            }
            if (!hc->head_ok) {
                hc->resp_headers[0] = '\0'; /* the last request's CORS lines are not this one's */
                hc->body_limit = route ? route->max_body : s->cfg.max_body;
                if ((req.chunked || req.content_length > 0) && route && route->on_head &&
                    head_check(hc, &req, route) < 0)
                    return len;
                hc->head_ok = true;
            }
            if (req.chunked) {
                hc->head_ok = false; /* the head is kept in hc->head and not parsed again */
                if (buf_append(&hc->head, data + off, (size_t)n) < 0) {
                    net_conn_close(c);
                    return len;
                }
                http_chunked_init(&hc->chunked);
                hc->state = HC_CHUNKED;
                off += (size_t)n;
                continue;
            }
            uint64_t cl = req.content_length > 0 ? (uint64_t)req.content_length : 0;
            if (cl > hc->body_limit) {
                respond_parse_error(hc, 413, "request body too large");
                return len;
            }
            if (len - off - (size_t)n < cl) break; /* wait for the whole body */
            str_t body = str_make(data + off + (size_t)n, (size_t)cl);
            off += (size_t)n + (size_t)cl;
            int rc = dispatch(hc, &req, body);
            if (rc == HTTP_UPGRADED) {
                /* hc is gone; bytes after the head belong to the new protocol. */
                if (off < len && c->handler && !net_conn_closing(c))
                    off += c->handler->on_data(c, data + off, len - off);
                return off;
            }
            if (rc == HTTP_DEFERRED) hc->state = HC_WAIT;
        } else if (hc->state == HC_STREAM) {
            size_t used = stream_feed(hc, data + off, len - off);
            if (net_conn_closing(c)) return len;
            off += used;
            if (used == 0 && hc->state == HC_STREAM) break;
        } else { /* HC_CHUNKED */
            if (buf_reserve(&hc->body, len - off) < 0) {
                net_conn_close(c);
                return len;
            }
            size_t out_len = 0;
            int64_t used = http_chunked_decode(&hc->chunked, data + off, len - off,
                                               hc->body.data + hc->body.len, &out_len);
            if (used < 0) {
                respond_parse_error(hc, 400, "malformed chunked body");
                return len;
            }
            hc->body.len += out_len;
            off += (size_t)used;
            if (hc->body.len > hc->body_limit) {
                respond_parse_error(hc, 413, "request body too large");
                return len;
            }
            if (!http_chunked_done(&hc->chunked)) {
                if (used == 0) break;
                continue;
            }
            http_request_t req;
            int n = http_parse_request(hc->head.data, hc->head.len, s->cfg.max_head, &req);
            hc->state = HC_HEAD;
            int rc = HTTP_DONE;
            if (n > 0) rc = dispatch(hc, &req, str_make(hc->body.data, hc->body.len));
            if (rc == HTTP_UPGRADED) return off; /* cannot happen with a body; be safe */
            buf_free(&hc->head);
            buf_free(&hc->body);
            if (rc == HTTP_DEFERRED) hc->state = HC_WAIT;
        }
    }
    return off;
}
