/* HTTP/1.1 server side on top of net: request framing, routing, responses. */
#include "http/http_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define HTTP_MAX_ROUTES 16

typedef struct {
    char prefix[64];
    size_t len;
    http_handler_fn fn;
    void *arg;
    bool streaming; /* the handler sees the head first and takes the body as a stream */
} http_route_t;

struct http_server {
    net_loop_t *nl;
    http_server_config_t cfg;
    http_route_t routes[HTTP_MAX_ROUTES];
    int num_routes;
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
};

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
    return s;
}

void http_server_free(http_server_t *s)
{
    free(s);
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
    return 0;
}

void http_server_accept(net_conn_t *c, void *arg)
{
    http_conn_t *hc = calloc(1, sizeof *hc);
    if (!hc) {
        net_conn_close(c);
        return;
    }
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

void http_respond_start(http_conn_t *hc, int status, const char *content_type,
                        const char *extra_headers, uint64_t content_length)
{
    hc->responded = true;
    if (hc->body_unread) hc->keep_alive = false;
    buf_t b;
    buf_init(&b);
    buf_printf(&b, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
    if (content_type) buf_printf(&b, "Content-Type: %s\r\n", content_type);
    buf_printf(&b, "Content-Length: %llu\r\n%s%s%s\r\n", (unsigned long long)content_length,
               hc->resp_headers, extra_headers ? extra_headers : "",
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
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n%s%s%s%s", status,
                     http_status_text(status), content_type ? "Content-Type: " : "",
                     content_type ? content_type : "", content_type ? "\r\n" : "", clen);
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
    http_respond(hc, status, "application/json", "X-Content-Type-Options: nosniff\r\n", body,
                 (size_t)n);
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

static size_t http_on_data(net_conn_t *c, char *data, size_t len)
{
    http_conn_t *hc = c->ud;
    http_server_t *s = hc->srv;
    size_t off = 0;
    while (off < len && !net_conn_closing(c)) {
        if (hc->state == HC_WAIT) break;
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
            if (req.chunked) {
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
            if (cl > s->cfg.max_body) {
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
            if (hc->body.len > s->cfg.max_body) {
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
