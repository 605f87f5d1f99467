/* Unit tests of the HTTP/1.1 request-head parser, chunked decoder and query helpers. */
#include <stdint.h>
#include <stdlib.h>

#include "http/http_parse.h"
#include "unit.h"

#define MAX_HEAD 8192

static int parse(const char *s, http_request_t *req)
{
    return http_parse_request(s, strlen(s), MAX_HEAD, req);
}

/* Parses a NUL-free or NUL-containing literal and checks the error status and reason. */
#define CHECK_ERR_N(s, n, status, reason)                                                          \
    do {                                                                                           \
        http_request_t req_;                                                                       \
        int rc_ = http_parse_request((s), (n), MAX_HEAD, &req_);                                   \
        CHECK_EQ_INT(rc_, HTTP_PARSE_ERROR);                                                       \
        if (rc_ == HTTP_PARSE_ERROR) {                                                             \
            CHECK_EQ_INT(req_.error_status, (status));                                             \
            CHECK(req_.error_reason != NULL);                                                      \
            if (req_.error_reason && (reason)[0] && strcmp(req_.error_reason, (reason)) != 0) {    \
                fprintf(stderr, "%s:%d: reason \"%s\", expected \"%s\"\n", __FILE__, __LINE__,     \
                        req_.error_reason, (reason));                                              \
                CHECK(0);                                                                          \
            }                                                                                      \
        }                                                                                          \
    } while (0)
#define CHECK_ERR(s, status, reason)     CHECK_ERR_N((s), strlen(s), (status), (reason))
#define CHECK_ERR_LIT(s, status, reason) CHECK_ERR_N((s), sizeof(s) - 1, (status), (reason))

/* A request line plus the given header lines and the final CRLF. */
static const char *head_with(const char *request_line, const char *fields)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf), "%s\r\n%s\r\n", request_line, fields);
    return buf;
}

#define CHECK_HEADERS_ERR(fields, status, reason)                                                  \
    CHECK_ERR(head_with("GET / HTTP/1.1", "Host: h\r\n" fields), (status), (reason))

static void test_get_simple(void)
{
    const char *s = "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"
                    "Host: localhost:5000\r\n"
                    "Accept: */*\r\n"
                    "\r\n";
    http_request_t req;
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_MEM(req.method.ptr, req.method.len, "GET");
    CHECK_MEM(req.target.ptr, req.target.len, "/socket.io/?EIO=4&transport=polling");
    CHECK_MEM(req.path.ptr, req.path.len, "/socket.io/");
    CHECK_MEM(req.query.ptr, req.query.len, "EIO=4&transport=polling");
    CHECK_EQ_INT(req.minor_version, 1);
    CHECK_EQ_INT(req.num_headers, 2);
    CHECK_MEM(req.headers[0].name.ptr, req.headers[0].name.len, "Host");
    CHECK_MEM(req.headers[0].value.ptr, req.headers[0].value.len, "localhost:5000");
    CHECK_MEM(req.headers[1].name.ptr, req.headers[1].name.len, "Accept");
    CHECK_MEM(req.headers[1].value.ptr, req.headers[1].value.len, "*/*");
    CHECK_EQ_INT(req.content_length, -1);
    CHECK(!req.chunked);
    CHECK(req.keep_alive);
    CHECK(!req.upgrade_websocket);
    CHECK_EQ_INT(req.error_status, 0);
    /* Pointers borrow the buffer. */
    CHECK(req.method.ptr == s);
    CHECK(req.query.ptr > s && req.query.ptr < s + strlen(s));
}

static void test_get_no_query(void)
{
    http_request_t req;
    const char *s = "GET /a/b HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_MEM(req.path.ptr, req.path.len, "/a/b");
    CHECK_EQ_INT(req.query.len, 0);
    CHECK(req.query.ptr != NULL);

    s = "GET /a? HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_MEM(req.path.ptr, req.path.len, "/a");
    CHECK_EQ_INT(req.query.len, 0);

    s = "GET /a?b?c=d HTTP/1.1\r\nHost: h\r\n\r\n"; /* split at the first '?' */
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_MEM(req.path.ptr, req.path.len, "/a");
    CHECK_MEM(req.query.ptr, req.query.len, "b?c=d");
}

static void test_post_with_body(void)
{
    const char *head = "POST /api/messages HTTP/1.1\r\n"
                       "Host: h\r\n"
                       "Content-Type: application/json\r\n"
                       "Content-Length: 5\r\n"
                       "\r\n";
    char buf[256];
    snprintf(buf, sizeof(buf), "%shello", head);
    http_request_t req;
    CHECK_EQ_INT(parse(buf, &req), strlen(head));
    CHECK_MEM(req.method.ptr, req.method.len, "POST");
    CHECK_EQ_INT(req.content_length, 5);
    CHECK(!req.chunked);
    CHECK_MEM(buf + strlen(head), 5, "hello");
}

static void test_options(void)
{
    http_request_t req;
    const char *s = "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_MEM(req.method.ptr, req.method.len, "OPTIONS");
    CHECK_MEM(req.target.ptr, req.target.len, "*");
    CHECK_MEM(req.path.ptr, req.path.len, "*");
    CHECK_EQ_INT(req.query.len, 0);

    s = "OPTIONS /api/rooms HTTP/1.1\r\nHost: h\r\nOrigin: http://x\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_MEM(req.path.ptr, req.path.len, "/api/rooms");

    CHECK_ERR("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "asterisk-form target without OPTIONS");
    CHECK_ERR("OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request-target");
}

static void test_absolute_form(void)
{
    http_request_t req;
    const char *s = "GET http://example.com:5000/a/b?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_MEM(req.target.ptr, req.target.len, "http://example.com:5000/a/b?x=1");
    CHECK_MEM(req.path.ptr, req.path.len, "/a/b");
    CHECK_MEM(req.query.ptr, req.query.len, "x=1");

    s = "GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_MEM(req.path.ptr, req.path.len, "/");
    CHECK_EQ_INT(req.query.len, 0);

    s = "GET http://example.com?q=2 HTTP/1.1\r\nHost: example.com\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_MEM(req.path.ptr, req.path.len, "/");
    CHECK_MEM(req.query.ptr, req.query.len, "q=2");

    CHECK_ERR("GET ftp://example.com/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request-target");
    CHECK_ERR("GET http:/x HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request-target");
    CHECK_ERR("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400,
              "absolute-form target without host");
    CHECK_ERR("GET http:// HTTP/1.1\r\nHost: h\r\n\r\n", 400, "absolute-form target without host");
    CHECK_ERR("GET http://u:p@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "userinfo in request-target");
    /* authority-form (CONNECT) is not served. */
    CHECK_ERR("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request-target");
}

static void test_header_values_trimmed(void)
{
    http_request_t req;
    const char *s = "GET / HTTP/1.1\r\n"
                    "Host:h\r\n"
                    "X-A:  a  b \t \r\n"
                    "X-Empty:\r\n"
                    "X-Blank: \t \r\n"
                    "X-Tab:\tv\tw\r\n"
                    "X-Obs: caf\xc3\xa9\r\n"
                    "!#$%&'*+-.^_`|~09az: tchars\r\n"
                    "\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_EQ_INT(req.num_headers, 7);
    CHECK_MEM(req.headers[0].value.ptr, req.headers[0].value.len, "h");
    CHECK_MEM(req.headers[1].value.ptr, req.headers[1].value.len, "a  b");
    CHECK_EQ_INT(req.headers[2].value.len, 0);
    CHECK(req.headers[2].value.ptr != NULL);
    CHECK_EQ_INT(req.headers[3].value.len, 0);
    CHECK_MEM(req.headers[4].value.ptr, req.headers[4].value.len, "v\tw");
    CHECK_MEM(req.headers[5].value.ptr, req.headers[5].value.len, "caf\xc3\xa9");
    CHECK_MEM(req.headers[6].name.ptr, req.headers[6].name.len, "!#$%&'*+-.^_`|~09az");
}

static void test_http10(void)
{
    http_request_t req;
    const char *s = "GET / HTTP/1.0\r\n\r\n"; /* Host is optional in 1.0 */
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_EQ_INT(req.minor_version, 0);
    CHECK_EQ_INT(req.num_headers, 0);
    CHECK(!req.keep_alive);

    s = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK(req.keep_alive);

    s = "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK(!req.keep_alive);

    s = "POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_EQ_INT(req.content_length, 3);
}

static void test_connection_keep_alive(void)
{
    http_request_t req;
    const char *s = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK(!req.keep_alive);

    s = "GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive , CLOSE\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK(!req.keep_alive);

    /* Tokens are collected over every Connection field line. */
    s = "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK(!req.keep_alive);

    s = "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n"; /* not the token */
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK(req.keep_alive);
}

static void test_upgrade_websocket(void)
{
    http_request_t req;
    const char *s = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                    "Host: h\r\n"
                    "Upgrade: WebSocket\r\n"
                    "Connection: keep-alive, Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n"
                    "\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK(req.upgrade_websocket);
    CHECK(req.keep_alive);

    s = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK(!req.upgrade_websocket);

    s = "GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK(!req.upgrade_websocket);

    s = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK(!req.upgrade_websocket);

    s = "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK(req.upgrade_websocket);
}

static void test_pipelined(void)
{
    const char *a = "GET /first HTTP/1.1\r\nHost: h\r\n\r\n";
    const char *b = "POST /second?x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    char buf[512];
    snprintf(buf, sizeof(buf), "%s%s", a, b);
    http_request_t req;
    int n = parse(buf, &req);
    CHECK_EQ_INT(n, strlen(a));
    CHECK_MEM(req.path.ptr, req.path.len, "/first");
    int m = http_parse_request(buf + n, strlen(buf) - (size_t)n, MAX_HEAD, &req);
    CHECK_EQ_INT(m, strlen(b));
    CHECK_MEM(req.path.ptr, req.path.len, "/second");
    CHECK_MEM(req.query.ptr, req.query.len, "x");
    CHECK_EQ_INT(req.content_length, 0);

    /* The second head being incomplete or garbage does not affect the first. */
    snprintf(buf, sizeof(buf), "%s\x01garbage", a);
    CHECK_EQ_INT(parse(buf, &req), strlen(a));
}

static void test_leading_empty_lines(void)
{
    http_request_t req;
    const char *s = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s)); /* the skipped lines count in the head length */
    CHECK_MEM(req.method.ptr, req.method.len, "GET");

    CHECK_EQ_INT(parse("\r\n", &req), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(parse("\r", &req), HTTP_PARSE_INCOMPLETE);
    CHECK_ERR("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bare LF line ending");
    CHECK_ERR("\r\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "CR not followed by LF");
}

/* Feeds every prefix of s, each in an exactly-sized heap copy so ASan catches over-reads. */
static void check_every_prefix(const char *s)
{
    size_t n = strlen(s);
    http_request_t req;
    for (size_t k = 0; k <= n; k++) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, s, k);
        int rc = http_parse_request(copy, k, MAX_HEAD, &req);
        if (k < n)
            CHECK_EQ_INT(rc, HTTP_PARSE_INCOMPLETE);
        else
            CHECK_EQ_INT(rc, n);
        free(copy);
    }
}

static void test_incremental_every_split(void)
{
    check_every_prefix("GET /socket.io/?EIO=4&transport=polling&t=OaB3x HTTP/1.1\r\n"
                       "Host: localhost:5000\r\n"
                       "User-Agent: node\r\n"
                       "Accept: */*\r\n"
                       "X-Empty:\r\n"
                       "\r\n");
    check_every_prefix("\r\n\r\nPOST /api/messages HTTP/1.1\r\nHost: h\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n");
    check_every_prefix("OPTIONS * HTTP/1.0\r\n\r\n");
    check_every_prefix("GET http://h/x?y HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n"
                       "Upgrade: websocket\r\n\r\n");
}

static void test_request_line_errors(void)
{
    CHECK_ERR(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid method");
    CHECK_ERR("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid method");
    CHECK_ERR("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid method");
    CHECK_ERR("\x16\x03\x01\x02", 400, "invalid method"); /* TLS ClientHello */
    CHECK_ERR("GET\r\n\r\n", 400, "invalid method");
    CHECK_ERR("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request-target");
    CHECK_ERR("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request-target");
    CHECK_ERR("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request-target");
    CHECK_ERR("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request-target");
    CHECK_ERR("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request-target");
    CHECK_ERR_LIT("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request-target");
    CHECK_ERR("GET foo HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid request-target");
    CHECK_ERR("GET /\r\n\r\n", 400, "invalid request-target"); /* HTTP/0.9 */
    CHECK_ERR("GET / \r\n\r\n", 400, "invalid HTTP version");
    CHECK_ERR("GET / http/1.1\r\nHost: h\r\n\r\n", 400, "invalid HTTP version");
    CHECK_ERR("GET / HTTP/1.x\r\nHost: h\r\n\r\n", 400, "invalid HTTP version");
    CHECK_ERR("GET / HTTP/11\r\nHost: h\r\n\r\n", 400, "invalid HTTP version");
    CHECK_ERR("GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400, "invalid HTTP version");
    CHECK_ERR("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "invalid HTTP version");
    CHECK_ERR("GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n", 400, "invalid HTTP version");
    CHECK_ERR("GET / / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid HTTP version");
    CHECK_ERR("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "HTTP version not supported");
    CHECK_ERR("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505, "HTTP version not supported");
    CHECK_ERR("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505, "HTTP version not supported");
    CHECK_ERR("GET / HTTP/9.9\r\n\r\n", 505, "HTTP version not supported");
    CHECK_ERR("GET / HTTP/1.1\rHost: h\r\n\r\n", 400, "CR not followed by LF");
    CHECK_ERR("GET / HTTP/1.1\nHost: h\r\n\r\n", 400, "bare LF line ending");
    CHECK_ERR("GET / HTTP/1.1\r\nHost: h\n\n", 400, "bare LF line ending");

    /* Garbage is rejected as soon as it is seen, not when the line completes. */
    CHECK_ERR("GET / XTTP", 400, "invalid HTTP version");
    CHECK_ERR("G@", 400, "invalid method");
    http_request_t req;
    CHECK_EQ_INT(parse("GET / HTTP/2.0", &req), HTTP_PARSE_INCOMPLETE);
}

static void test_header_errors(void)
{
    CHECK_HEADERS_ERR("X-A : 1\r\n", 400, "whitespace before colon");
    CHECK_HEADERS_ERR("X-A\t: 1\r\n", 400, "whitespace before colon");
    CHECK_HEADERS_ERR("X A: 1\r\n", 400, "whitespace before colon");
    CHECK_HEADERS_ERR(": 1\r\n", 400, "empty header name");
    CHECK_HEADERS_ERR("X-A\r\n", 400, "invalid header name");
    CHECK_HEADERS_ERR("X(A): 1\r\n", 400, "invalid header name");
    CHECK_HEADERS_ERR("X\x01: 1\r\n", 400, "invalid header name");
    CHECK_HEADERS_ERR("X\xc3\xa9: 1\r\n", 400, "invalid header name");
    CHECK_HEADERS_ERR("X-A: 1\r\n folded\r\n", 400, "obsolete line folding");
    CHECK_HEADERS_ERR("X-A: 1\r\n\tfolded\r\n", 400, "obsolete line folding");
    CHECK_ERR("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400, "obsolete line folding");
    CHECK_HEADERS_ERR("X-A: a\x01z\r\n", 400, "invalid character in header value");
    CHECK_HEADERS_ERR("X-A: a\x1bz\r\n", 400, "invalid character in header value");
    CHECK_HEADERS_ERR("X-A: a\x7fz\r\n", 400, "invalid character in header value");
    CHECK_ERR_LIT("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0z\r\n\r\n", 400,
                  "invalid character in header value");
    CHECK_ERR_LIT("GET / HTTP/1.1\r\nHost: h\r\nX-A: \0\r\n\r\n", 400,
                  "invalid character in header value");
    CHECK_HEADERS_ERR("X-A: a\rz\r\n", 400, "CR not followed by LF");
    CHECK_HEADERS_ERR("X-A: a\nX-B: b\r\n", 400, "bare LF line ending");
    CHECK_ERR("GET / HTTP/1.1\r\nHost: h\r\n\n", 400, "bare LF line ending");
    CHECK_ERR("GET / HTTP/1.1\r\nHost: h\r\n\rX", 400, "CR not followed by LF");
}

static void test_host_required(void)
{
    CHECK_ERR("GET / HTTP/1.1\r\n\r\n", 400, "missing Host header");
    CHECK_ERR("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400, "duplicate Host header");
    CHECK_ERR("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400, "duplicate Host header");
}

static void test_too_many_headers(void)
{
    char buf[4096];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 1; i < HTTP_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: %d\r\n", i, i);
    size_t before_end = n;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
    http_request_t req;
    CHECK_EQ_INT(http_parse_request(buf, n, sizeof(buf), &req), n);
    CHECK_EQ_INT(req.num_headers, HTTP_MAX_HEADERS);

    n = before_end + (size_t)snprintf(buf + before_end, sizeof(buf) - before_end, "X-Y: 1\r\n\r\n");
    CHECK_EQ_INT(http_parse_request(buf, n, sizeof(buf), &req), HTTP_PARSE_ERROR);
    CHECK_EQ_INT(req.error_status, 431);
    CHECK(strcmp(req.error_reason, "too many headers") == 0);
    /* Already known before the head is complete. */
    CHECK_EQ_INT(http_parse_request(buf, n - 2, sizeof(buf), &req), HTTP_PARSE_ERROR);
    CHECK_EQ_INT(req.error_status, 431);
}

static void test_head_too_large(void)
{
    const char *s = "GET /0123456789 HTTP/1.1\r\nHost: h\r\nX: 0123456789\r\n\r\n";
    size_t n = strlen(s);
    http_request_t req;
    CHECK_EQ_INT(http_parse_request(s, n, n, &req), n); /* exactly the limit is fine */
    CHECK_EQ_INT(http_parse_request(s, n, n - 1, &req), HTTP_PARSE_ERROR);
    CHECK_EQ_INT(req.error_status, 431);
    CHECK(strcmp(req.error_reason, "request head too large") == 0);
    CHECK_EQ_INT(http_parse_request(s, n, 10, &req), HTTP_PARSE_ERROR);
    CHECK_EQ_INT(req.error_status, 431);
    /* Incomplete and already at the limit: it can only end up longer. */
    CHECK_EQ_INT(http_parse_request(s, 20, 20, &req), HTTP_PARSE_ERROR);
    CHECK_EQ_INT(req.error_status, 431);
    CHECK_EQ_INT(http_parse_request(s, 20, 21, &req), HTTP_PARSE_INCOMPLETE);
    CHECK_EQ_INT(http_parse_request(s, 0, 0, &req), HTTP_PARSE_ERROR);
    CHECK_EQ_INT(req.error_status, 431);
    /* A complete head within the limit followed by more bytes (a body) is fine. */
    char with_body[256];
    snprintf(with_body, sizeof(with_body), "%sBODY BYTES", s);
    CHECK_EQ_INT(http_parse_request(with_body, strlen(with_body), n, &req), n);
    /* Leading empty lines count towards the limit. */
    const char *t = "\r\n\r\nGET / HTTP/1.0\r\n\r\n";
    CHECK_EQ_INT(http_parse_request(t, strlen(t), strlen(t), &req), strlen(t));
    CHECK_EQ_INT(http_parse_request(t, strlen(t), strlen(t) - 1, &req), HTTP_PARSE_ERROR);
    /* A syntax error inside the limit is reported as such. */
    CHECK_EQ_INT(http_parse_request("GET /\x01 HTTP/1.1", 16, 8, &req), HTTP_PARSE_ERROR);
    CHECK_EQ_INT(req.error_status, 400);
}

static void test_content_length(void)
{
    http_request_t req;
    const char *s = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_EQ_INT(req.content_length, 0);

    s = "POST / HTTP/1.1\r\nHost: h\r\ncontent-length:   42  \r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_EQ_INT(req.content_length, 42);

    s = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_EQ_INT(req.content_length, 7);

    s = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK_EQ_INT(req.content_length, 5);

    s = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK(req.content_length == INT64_MAX);

    CHECK_HEADERS_ERR("Content-Length:\r\n", 400, "invalid Content-Length");
    CHECK_HEADERS_ERR("Content-Length: +5\r\n", 400, "invalid Content-Length");
    CHECK_HEADERS_ERR("Content-Length: -1\r\n", 400, "invalid Content-Length");
    CHECK_HEADERS_ERR("Content-Length: 5 5\r\n", 400, "invalid Content-Length");
    CHECK_HEADERS_ERR("Content-Length: 5,5\r\n", 400, "invalid Content-Length");
    CHECK_HEADERS_ERR("Content-Length: 0x10\r\n", 400, "invalid Content-Length");
    CHECK_HEADERS_ERR("Content-Length: 1e3\r\n", 400, "invalid Content-Length");
    CHECK_HEADERS_ERR("Content-Length: 5\r\nContent-Length: 6\r\n", 400,
                      "conflicting Content-Length");
    CHECK_HEADERS_ERR("Content-Length: 5\r\nContent-Length: 05x\r\n", 400,
                      "invalid Content-Length");
    CHECK_HEADERS_ERR("Content-Length: 9223372036854775808\r\n", 400, "Content-Length overflow");
    CHECK_HEADERS_ERR("Content-Length: 99999999999999999999999\r\n", 400,
                      "Content-Length overflow");
}

static void test_transfer_encoding(void)
{
    http_request_t req;
    const char *s = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK(req.chunked);
    CHECK_EQ_INT(req.content_length, -1);

    s = "POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: , Chunked ,\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    CHECK(req.chunked);

    CHECK_HEADERS_ERR("Transfer-Encoding: gzip\r\n", 501, "unsupported transfer coding");
    CHECK_HEADERS_ERR("Transfer-Encoding: identity\r\n", 501, "unsupported transfer coding");
    CHECK_HEADERS_ERR("Transfer-Encoding: gzip, chunked\r\n", 501, "unsupported transfer coding");
    CHECK_HEADERS_ERR("Transfer-Encoding: chunked, gzip\r\n", 501, "unsupported transfer coding");
    CHECK_HEADERS_ERR("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 501,
                      "unsupported transfer coding");
    CHECK_HEADERS_ERR("Transfer-Encoding: chunked;x=1\r\n", 501, "unsupported transfer coding");
    CHECK_HEADERS_ERR("Transfer-Encoding: chunkedx\r\n", 501, "unsupported transfer coding");
    CHECK_HEADERS_ERR("Transfer-Encoding: chunked, chunked\r\n", 400,
                      "chunked applied more than once");
    CHECK_HEADERS_ERR("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400,
                      "chunked applied more than once");
    CHECK_HEADERS_ERR("Transfer-Encoding:\r\n", 400, "empty Transfer-Encoding");
    CHECK_HEADERS_ERR("Transfer-Encoding: , ,\r\n", 400, "empty Transfer-Encoding");
    CHECK_HEADERS_ERR("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400,
                      "both Content-Length and Transfer-Encoding");
    CHECK_HEADERS_ERR("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", 400,
                      "both Content-Length and Transfer-Encoding");
    CHECK_ERR("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
              "Transfer-Encoding in HTTP/1.0");
}

static void test_header_lookup(void)
{
    http_request_t req;
    const char *s = "GET / HTTP/1.1\r\nHost: h\r\nX-Dup: one\r\nx-dup: two\r\nEmpty:\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    str_t v = http_request_header(&req, "X-DUP");
    CHECK_MEM(v.ptr, v.len, "one");
    v = http_request_header(&req, "host");
    CHECK_MEM(v.ptr, v.len, "h");
    v = http_request_header(&req, "empty");
    CHECK(v.ptr != NULL);
    CHECK_EQ_INT(v.len, 0);
    v = http_request_header(&req, "Missing");
    CHECK(v.ptr == NULL);
    v = http_request_header(&req, "X-Du");
    CHECK(v.ptr == NULL);
}

static void test_has_token(void)
{
    CHECK(http_header_has_token(STR_LIT("Upgrade"), "upgrade"));
    CHECK(http_header_has_token(STR_LIT("keep-alive, Upgrade"), "upgrade"));
    CHECK(http_header_has_token(STR_LIT(" a ,\tb\t, c "), "b"));
    CHECK(http_header_has_token(STR_LIT(",,x,,"), "X"));
    CHECK(!http_header_has_token(STR_LIT("upgraded"), "upgrade"));
    CHECK(!http_header_has_token(STR_LIT("up grade"), "upgrade"));
    CHECK(!http_header_has_token(STR_LIT(""), "upgrade"));
    CHECK(!http_header_has_token(STR_NULL, "upgrade"));
    CHECK(!http_header_has_token(STR_LIT(", ,"), ""));
}

/* ---- chunked ---- */

/* Decodes s in one call into a separate buffer; returns consumed or the error. */
static int64_t chunked_once(const char *s, size_t n, char *out, size_t *out_len, bool *done)
{
    http_chunked_t d;
    http_chunked_init(&d);
    int64_t rc = http_chunked_decode(&d, s, n, out, out_len);
    *done = http_chunked_done(&d);
    CHECK(d.done == *done);
    return rc;
}

static void test_chunked_single(void)
{
    const char *s = "5\r\nhello\r\n0\r\n\r\n";
    char out[64];
    size_t ol = 99;
    bool done;
    CHECK_EQ_INT(chunked_once(s, strlen(s), out, &ol, &done), strlen(s));
    CHECK_MEM(out, ol, "hello");
    CHECK(done);

    /* Empty body. */
    CHECK_EQ_INT(chunked_once("0\r\n\r\n", 5, out, &ol, &done), 5);
    CHECK_EQ_INT(ol, 0);
    CHECK(done);

    /* Not done until the final CRLF. */
    CHECK_EQ_INT(chunked_once("0\r\n\r", 4, out, &ol, &done), 4);
    CHECK(!done);
}

static const char multi_chunked[] = "5\r\nhello\r\n"
                                    "1;ext=1\r\n \r\n"
                                    "A\r\n0123456789\r\n"
                                    "00000b\r\n_abcdefghij\r\n"
                                    "0\r\n"
                                    "X-Checksum: abc\r\n"
                                    "\r\n";
static const char multi_decoded[] = "hello 0123456789_abcdefghij";

static void test_chunked_multi(void)
{
    char out[128];
    size_t ol;
    bool done;
    CHECK_EQ_INT(chunked_once(multi_chunked, strlen(multi_chunked), out, &ol, &done),
                 strlen(multi_chunked));
    CHECK_MEM(out, ol, multi_decoded);
    CHECK(done);
}

static void test_chunked_extensions_and_trailers(void)
{
    const char *s = "3;name=value;q=\"quoted;str\"\r\nabc\r\n"
                    "2 ; ext\r\nde\r\n"
                    "1\t;x\r\nf\r\n"
                    "2  \r\ngh\r\n"
                    "0;last=1\r\n"
                    "Trailer-A: 1\r\n"
                    "Trailer-B:\t2 \xc3\xa9\r\n"
                    "\r\n";
    char out[64];
    size_t ol;
    bool done;
    CHECK_EQ_INT(chunked_once(s, strlen(s), out, &ol, &done), strlen(s));
    CHECK_MEM(out, ol, "abcdefgh");
    CHECK(done);
}

static void test_chunked_stops_after_done(void)
{
    const char *s = "2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    size_t body_len = strlen("2\r\nhi\r\n0\r\n\r\n");
    char out[64];
    size_t ol;
    http_chunked_t d;
    http_chunked_init(&d);
    CHECK(!http_chunked_done(&d));
    CHECK_EQ_INT(http_chunked_decode(&d, s, strlen(s), out, &ol), body_len);
    CHECK_MEM(out, ol, "hi");
    CHECK(http_chunked_done(&d));
    /* Further calls consume nothing. */
    CHECK_EQ_INT(http_chunked_decode(&d, s + body_len, strlen(s) - body_len, out, &ol), 0);
    CHECK_EQ_INT(ol, 0);
}

/* Feeds multi_chunked in pieces: every two-way split, then byte by byte. */
static void test_chunked_every_split(void)
{
    size_t n = strlen(multi_chunked);
    for (size_t cut = 0; cut <= n; cut++) {
        char out[128];
        size_t total = 0, ol;
        http_chunked_t d;
        http_chunked_init(&d);
        char *a = malloc(cut ? cut : 1), *b = malloc(n - cut ? n - cut : 1);
        memcpy(a, multi_chunked, cut);
        memcpy(b, multi_chunked + cut, n - cut);
        CHECK_EQ_INT(http_chunked_decode(&d, a, cut, out, &ol), cut);
        total += ol;
        CHECK(!http_chunked_done(&d) || cut == n);
        CHECK_EQ_INT(http_chunked_decode(&d, b, n - cut, out + total, &ol), n - cut);
        total += ol;
        CHECK_MEM(out, total, multi_decoded);
        CHECK(http_chunked_done(&d));
        free(a);
        free(b);
    }

    char out[128];
    size_t total = 0, ol;
    http_chunked_t d;
    http_chunked_init(&d);
    for (size_t i = 0; i < n; i++) {
        CHECK(!http_chunked_done(&d));
        CHECK_EQ_INT(http_chunked_decode(&d, multi_chunked + i, 1, out + total, &ol), 1);
        CHECK(ol <= 1);
        total += ol;
    }
    CHECK(http_chunked_done(&d));
    CHECK_MEM(out, total, multi_decoded);
}

/* The way a connection uses it: decoded body compacted at the front of its own read buffer. */
static void test_chunked_in_place(void)
{
    size_t n = strlen(multi_chunked);
    char buf[128];
    memcpy(buf, multi_chunked, n);
    size_t ol;
    http_chunked_t d;
    http_chunked_init(&d);
    CHECK_EQ_INT(http_chunked_decode(&d, buf, n, buf, &ol), n);
    CHECK_MEM(buf, ol, multi_decoded);
    CHECK(http_chunked_done(&d));

    for (size_t step = 1; step <= 7; step++) {
        size_t raw = 0, body = 0;
        memcpy(buf, multi_chunked, n);
        http_chunked_init(&d);
        while (raw < n) {
            size_t avail = n - raw < step ? n - raw : step;
            int64_t rc = http_chunked_decode(&d, buf + raw, avail, buf + body, &ol);
            CHECK(rc >= 0);
            if (rc < 0) break;
            raw += (size_t)rc;
            body += ol;
        }
        CHECK_MEM(buf, body, multi_decoded);
        CHECK(http_chunked_done(&d));
    }
}

static void check_chunked_err(const char *s, size_t n, int line)
{
    char out[4096];
    size_t ol;
    bool done;
    int64_t rc = chunked_once(s, n, out, &ol, &done);
    if (rc != HTTP_PARSE_ERROR) fprintf(stderr, "chunked error case at line %d\n", line);
    CHECK_EQ_INT(rc, HTTP_PARSE_ERROR);
    CHECK(!done);
}
#define CHECK_CHUNKED_ERR(s) check_chunked_err((s), sizeof(s) - 1, __LINE__)

static void test_chunked_errors(void)
{
    CHECK_CHUNKED_ERR("\r\n");                  /* empty size */
    CHECK_CHUNKED_ERR(";ext\r\n");              /* empty size */
    CHECK_CHUNKED_ERR(" 5\r\n");                /* leading whitespace */
    CHECK_CHUNKED_ERR("g\r\n");                 /* not hex */
    CHECK_CHUNKED_ERR("-5\r\n");                /* sign */
    CHECK_CHUNKED_ERR("0x5\r\n");               /* prefix */
    CHECK_CHUNKED_ERR("5x\r\nhello\r\n");       /* garbage after size */
    CHECK_CHUNKED_ERR("5 5\r\nhello\r\n");      /* digits after BWS */
    CHECK_CHUNKED_ERR("5\nhello\r\n");          /* bare LF */
    CHECK_CHUNKED_ERR("5\rhello\r\n");          /* CR without LF */
    CHECK_CHUNKED_ERR("5;a\x01\r\nhello\r\n");  /* control char in extension */
    CHECK_CHUNKED_ERR("5;a\nhello\r\n");        /* bare LF after extension */
    CHECK_CHUNKED_ERR("5\r\nhelloX\r\n");       /* data longer than the size */
    CHECK_CHUNKED_ERR("5\r\nhello\rX");         /* CR then not LF */
    CHECK_CHUNKED_ERR("5\r\nhello\n0\r\n\r\n"); /* bare LF after data */
    CHECK_CHUNKED_ERR("4000000000000001\r\n");  /* over 2^62 */
    CHECK_CHUNKED_ERR("10000000000000000\r\n"); /* over 2^64 */
    CHECK_CHUNKED_ERR("ffffffffffffffffffffffff\r\n");
    CHECK_CHUNKED_ERR("0\r\n X: y\r\n\r\n");      /* obs-fold in trailer */
    CHECK_CHUNKED_ERR("0\r\n: y\r\n\r\n");        /* empty trailer name */
    CHECK_CHUNKED_ERR("0\r\nX: a\x01\r\n\r\n");   /* control char in trailer */
    CHECK_CHUNKED_ERR("0\r\nX: a\0b\r\n\r\n");    /* NUL in trailer */
    CHECK_CHUNKED_ERR("0\r\nX: a\nY: b\r\n\r\n"); /* bare LF in trailer */
    CHECK_CHUNKED_ERR("0\r\nX: a\r\n\n");         /* bare LF ending the trailers */
    CHECK_CHUNKED_ERR("0\r\n\rX");                /* CR then not LF at the end */

    /* 2^62 itself is accepted (the decoder then waits for data). */
    char out[64];
    size_t ol;
    bool done;
    const char *big = "4000000000000000\r\n";
    CHECK_EQ_INT(chunked_once(big, strlen(big), out, &ol, &done), strlen(big));
    CHECK(!done);

    /* Size line limit: 1024 bytes including CRLF is fine, 1025 is not. */
    char line[2048];
    memset(line, '0', sizeof(line));
    memcpy(line + HTTP_CHUNK_LINE_MAX - 3, "1\r\nx\r\n", 6);
    CHECK_EQ_INT(chunked_once(line, HTTP_CHUNK_LINE_MAX + 3, out, &ol, &done),
                 HTTP_CHUNK_LINE_MAX + 3);
    CHECK_MEM(out, ol, "x");
    memset(line, '0', sizeof(line));
    memcpy(line + HTTP_CHUNK_LINE_MAX - 2, "1\r\nx\r\n", 6);
    check_chunked_err(line, HTTP_CHUNK_LINE_MAX + 4, __LINE__);
    /* An endless extension hits the same limit, even fed in pieces. */
    memset(line, 'a', sizeof(line));
    memcpy(line, "1;", 2);
    http_chunked_t d;
    http_chunked_init(&d);
    CHECK_EQ_INT(http_chunked_decode(&d, line, 1000, out, &ol), 1000);
    CHECK_EQ_INT(http_chunked_decode(&d, line + 1000, 100, out, &ol), HTTP_PARSE_ERROR);
    /* Errors are sticky. */
    CHECK_EQ_INT(http_chunked_decode(&d, "0\r\n\r\n", 5, out, &ol), HTTP_PARSE_ERROR);
    CHECK(!http_chunked_done(&d));

    /* Trailer section limit. */
    static char trailers[HTTP_CHUNK_TRAILER_MAX + 64];
    size_t n = 0;
    memcpy(trailers, "0\r\n", 3);
    n = 3;
    while (n + 12 < sizeof(trailers)) {
        memcpy(trailers + n, "X: 12345\r\n", 10);
        n += 10;
    }
    memcpy(trailers + n, "\r\n", 2);
    check_chunked_err(trailers, n + 2, __LINE__);
}

/* ---- query ---- */

#define CHECK_PARAM(q, name, expect_rc, expect)                                                    \
    do {                                                                                           \
        char out_[64];                                                                             \
        int rc_ = http_query_param(STR_LIT(q), (name), out_, sizeof(out_));                        \
        CHECK_EQ_INT(rc_, (expect_rc));                                                            \
        if (rc_ >= 0) {                                                                            \
            CHECK_MEM(out_, rc_, expect);                                                          \
            CHECK(out_[rc_] == '\0');                                                              \
        }                                                                                          \
    } while (0)

static void test_query_params(void)
{
    CHECK_PARAM("EIO=4&transport=polling&t=OaB3x&sid=abc-_123", "EIO", 1, "4");
    CHECK_PARAM("EIO=4&transport=polling&t=OaB3x&sid=abc-_123", "transport", 7, "polling");
    CHECK_PARAM("EIO=4&transport=polling&t=OaB3x&sid=abc-_123", "sid", 8, "abc-_123");
    CHECK_PARAM("EIO=4&transport=polling&t=OaB3x&sid=abc-_123", "missing", -1, "");
    CHECK_PARAM("EIO=4&transport=polling&t=OaB3x&sid=abc-_123", "EI", -1, "");
    CHECK_PARAM("EIO=4&transport=polling&t=OaB3x&sid=abc-_123", "EIOX", -1, "");
    CHECK_PARAM("EIO=4&transport=polling&t=OaB3x&sid=abc-_123", "eio", -1, ""); /* exact case */

    CHECK_PARAM("", "a", -1, "");
    CHECK(http_query_param(STR_NULL, "a", (char[4]){0}, 4) == -1);
    CHECK_PARAM("a=%41%42c%2f%2F", "a", 5, "ABc//");
    CHECK_PARAM("a=x+y%20z", "a", 5, "x y z");
    CHECK_PARAM("a=%2B%25", "a", 2, "+%");
    CHECK_PARAM("a=caf%C3%A9", "a", 5, "caf\xc3\xa9");
    CHECK_PARAM("a=b=c", "a", 3, "b=c");
    CHECK_PARAM("a=&b", "a", 0, "");
    CHECK_PARAM("a=&b", "b", 0, "");
    CHECK_PARAM("a=1&a=2", "a", 1, "1");
    CHECK_PARAM("&&a=1&", "a", 1, "1");
    CHECK_PARAM("%61=5", "a", 1, "5"); /* names are compared decoded */
    CHECK_PARAM("a+b=1&a%20c=2", "a b", 1, "1");
    CHECK_PARAM("a%20c=2", "a c", 1, "2");
    CHECK_PARAM("%zz=1&a=2", "a", 1, "2"); /* a malformed name never matches */
    CHECK_PARAM("%00=1&a=2", "", -1, "");
    CHECK_PARAM("=x", "", 1, "x");

    CHECK_PARAM("a=%zz", "a", -2, "");
    CHECK_PARAM("a=%4", "a", -2, "");
    CHECK_PARAM("a=%", "a", -2, "");
    CHECK_PARAM("a=x%", "a", -2, "");
    CHECK_PARAM("a=%g0", "a", -2, "");
    CHECK_PARAM("a=%00", "a", -2, "");
    CHECK_PARAM("a=%zz&b=1", "b", 1, "1"); /* only the value asked for must be well-formed */

    /* Too long: the value plus its NUL must fit. */
    char small[4];
    CHECK_EQ_INT(http_query_param(STR_LIT("a=abc"), "a", small, sizeof(small)), 3);
    CHECK_MEM(small, 3, "abc");
    CHECK_EQ_INT(http_query_param(STR_LIT("a=abcd"), "a", small, sizeof(small)), -2);
    CHECK_EQ_INT(http_query_param(STR_LIT("a=%41%42%43%44"), "a", small, sizeof(small)), -2);
    CHECK_EQ_INT(http_query_param(STR_LIT("a=%41%42%43"), "a", small, sizeof(small)), 3);
    CHECK_EQ_INT(http_query_param(STR_LIT("a="), "a", small, 0), -2);
    CHECK_EQ_INT(http_query_param(STR_LIT("a="), "a", small, 1), 0);

    /* From a parsed request. */
    http_request_t req;
    const char *s =
        "GET /socket.io/?EIO=4&transport=websocket&sid=x%2By HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_EQ_INT(parse(s, &req), strlen(s));
    char out[16];
    CHECK_EQ_INT(http_query_param(req.query, "sid", out, sizeof(out)), 3);
    CHECK(strcmp(out, "x+y") == 0);
}

static void test_percent_decode(void)
{
    char out[16];
    CHECK_EQ_INT(http_percent_decode(STR_LIT("a+b%2Fc"), false, out, sizeof(out)), 5);
    CHECK(strcmp(out, "a+b/c") == 0);
    CHECK_EQ_INT(http_percent_decode(STR_LIT("a+b"), true, out, sizeof(out)), 3);
    CHECK(strcmp(out, "a b") == 0);
    CHECK_EQ_INT(http_percent_decode(STR_LIT(""), true, out, sizeof(out)), 0);
    CHECK(out[0] == '\0');
    CHECK_EQ_INT(http_percent_decode(STR_LIT("%"), true, out, sizeof(out)), -1);
    CHECK_EQ_INT(http_percent_decode(STR_LIT("%0"), true, out, sizeof(out)), -1);
    CHECK_EQ_INT(http_percent_decode(STR_LIT("%00"), true, out, sizeof(out)), -1);
    CHECK_EQ_INT(http_percent_decode(STR_LIT("a\0b"), true, out, sizeof(out)), -1);
    CHECK_EQ_INT(http_query_param(STR_LIT("a=x\0y"), "a", out, sizeof(out)), -2);
    CHECK_EQ_INT(http_percent_decode(STR_LIT("%ff"), true, out, sizeof(out)), 1);
    CHECK((unsigned char)out[0] == 0xff);
    CHECK_EQ_INT(http_percent_decode(STR_LIT("abc"), true, out, 3), -1);
    CHECK_EQ_INT(http_percent_decode(STR_LIT("abc"), true, out, 0), -1);
}

int main(void)
{
    RUN(test_get_simple);
    RUN(test_get_no_query);
    RUN(test_post_with_body);
    RUN(test_options);
    RUN(test_absolute_form);
    RUN(test_header_values_trimmed);
    RUN(test_http10);
    RUN(test_connection_keep_alive);
    RUN(test_upgrade_websocket);
    RUN(test_pipelined);
    RUN(test_leading_empty_lines);
    RUN(test_incremental_every_split);
    RUN(test_request_line_errors);
    RUN(test_header_errors);
    RUN(test_host_required);
    RUN(test_too_many_headers);
    RUN(test_head_too_large);
    RUN(test_content_length);
    RUN(test_transfer_encoding);
    RUN(test_header_lookup);
    RUN(test_has_token);
    RUN(test_chunked_single);
    RUN(test_chunked_multi);
    RUN(test_chunked_extensions_and_trailers);
    RUN(test_chunked_stops_after_done);
    RUN(test_chunked_every_split);
    RUN(test_chunked_in_place);
    RUN(test_chunked_errors);
    RUN(test_query_params);
    RUN(test_percent_decode);
    return UNIT_DONE();
}
