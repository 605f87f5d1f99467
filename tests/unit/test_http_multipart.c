/* Tests for the multipart/form-data parser: boundary lookup, a real undici body, splits at every
 * byte, header limits, delimiter look-alikes, and every malformed case with its exact error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_multipart.h"
#include "unit.h"

/* The events of a parse, as text: "<name|filename|ctype>" per part begin ("-" for an absent
 * filename or type), the body bytes, "." per part end, "$" at done. */
typedef struct {
    char log[1 << 16];
    size_t len;
    int abort_on_begin; /* abort on the n-th part begin (1-based), 0 never */
    int begins;
    size_t max_piece; /* largest on_part_data piece */
} rec_t;

static void rec_put(rec_t *r, const char *p, size_t n)
{
    if (r->len + n > sizeof(r->log)) n = sizeof(r->log) - r->len;
    memcpy(r->log + r->len, p, n);
    r->len += n;
}

static void rec_str(rec_t *r, str_t s)
{
    if (s.ptr) {
        rec_put(r, s.ptr, s.len);
    } else {
        rec_put(r, "-", 1);
    }
}

static int on_begin(void *ud, str_t name, str_t filename, str_t ctype)
{
    rec_t *r = ud;
    rec_put(r, "<", 1);
    rec_str(r, name);
    rec_put(r, "|", 1);
    rec_str(r, filename);
    rec_put(r, "|", 1);
    rec_str(r, ctype);
    rec_put(r, ">", 1);
    return ++r->begins == r->abort_on_begin;
}

static int on_data(void *ud, const char *d, size_t n)
{
    rec_t *r = ud;
    if (n == 0) rec_put(r, "{EMPTY}", 7); /* never expected */
    if (n > r->max_piece) r->max_piece = n;
    rec_put(r, d, n);
    return 0;
}

static int on_end(void *ud)
{
    rec_put(ud, ".", 1);
    return 0;
}

static int on_done(void *ud)
{
    rec_put(ud, "$", 1);
    return 0;
}

static const http_multipart_callbacks_t cbs = {on_begin, on_data, on_end, on_done};

/* Parses body in pieces split at the given offsets (sorted, may repeat), each piece an exactly
 * sized heap copy so ASan catches over-reads. Returns the first error or finish()'s result. */
static int parse_split(const char *boundary, const char *body, size_t len, const size_t *cuts,
                       size_t ncuts, rec_t *r, http_multipart_t *p)
{
    int rc = http_multipart_init(p, str_cstr(boundary));
    if (rc < 0) return rc;
    size_t prev = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        size_t n = end - prev;
        char *piece = malloc(n ? n : 1);
        memcpy(piece, body + prev, n);
        int64_t got = http_multipart_feed(p, piece, n, &cbs, r);
        free(piece);
        if (got < 0) return (int)got;
        if ((size_t)got != n) return -100; /* the parser must consume everything */
        prev = end;
    }
    return http_multipart_finish(p);
}

static http_multipart_t parser; /* 8 KiB+: keep it off the stack */
static rec_t rec, rec2;

static int parse(const char *boundary, const char *body, size_t len)
{
    memset(&rec, 0, sizeof(rec));
    return parse_split(boundary, body, len, NULL, 0, &rec, &parser);
}

#define PARSE_LIT(b, lit) parse((b), (lit), sizeof(lit) - 1)

/* A body produced by node 20's FormData (undici), captured with
 *   new Request(url, {method: 'POST', body: fd}).arrayBuffer()
 * fd.append('file', new Blob([png-ish bytes], {type: 'image/png'}), 'ph"o\nto\\é.png');
 * fd.append('note', 'hello\r\nworld');
 * Note how undici escapes '"' and LF as %22 and %0A but sends the backslash raw. */
#define NODE_BOUNDARY "----formdata-undici-064179293872"
static const char node_body[] =
    "------formdata-undici-064179293872\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"ph%22o%0Ato\\\xc3\xa9.png\"\r\n"
    "Content-Type: image/png\r\n"
    "\r\n"
    "\x89PNG\r\n"
    "\x1a\n"
    "\x00--\r\n"
    "\r\n"
    "------formdata-undici-064179293872\r\n"
    "Content-Disposition: form-data; name=\"note\"\r\n"
    "\r\n"
    "hello\r\n"
    "world\r\n"
    "------formdata-undici-064179293872--\r\n";
static const char node_events[] = "<file|ph%22o%0Ato\\\xc3\xa9.png|image/png>"
                                  "\x89PNG\r\n\x1a\n\x00--\r\n"
                                  "."
                                  "<note|-|->hello\r\nworld."
                                  "$";

static void check_node_events(const rec_t *r)
{
    CHECK_EQ_INT(r->len, sizeof(node_events) - 1);
    CHECK(r->len == sizeof(node_events) - 1 && memcmp(r->log, node_events, r->len) == 0);
}

static void test_boundary(void)
{
    char b[HTTP_MULTIPART_BOUNDARY_MAX + 1];
    CHECK_EQ_INT(http_multipart_boundary(
                     STR_LIT("multipart/form-data; boundary=----formdata-undici-064179293872"), b,
                     sizeof(b)),
                 32);
    CHECK_MEM(b, strlen(b), NODE_BOUNDARY);
    CHECK_EQ_INT(http_multipart_boundary(STR_LIT("Multipart/Form-Data;BOUNDARY=abc"), b, sizeof(b)),
                 3);
    CHECK_MEM(b, strlen(b), "abc");
    CHECK_EQ_INT(
        http_multipart_boundary(
            STR_LIT("  multipart/form-data ; charset=utf-8 ;  boundary=\"a b:c\" ; x=\"y\";"), b,
            sizeof(b)),
        5);
    CHECK_MEM(b, strlen(b), "a b:c");
    /* quoted-pair inside the quoted form */
    CHECK_EQ_INT(
        http_multipart_boundary(STR_LIT("multipart/form-data; boundary=\"a\\b\""), b, sizeof(b)),
        2);
    CHECK_MEM(b, strlen(b), "ab");
    /* unquoted with characters outside token but inside bchars: accepted leniently */
    CHECK_EQ_INT(
        http_multipart_boundary(STR_LIT("multipart/form-data; boundary=a/b=c?"), b, sizeof(b)), 6);
    /* an ignored parameter may be long */
    char longparam[600];
    int n =
        snprintf(longparam, sizeof(longparam), "multipart/form-data; x=\"%0400d\"; boundary=z", 0);
    CHECK_EQ_INT(http_multipart_boundary(str_make(longparam, (size_t)n), b, sizeof(b)), 1);

    /* exactly 70 accepted, 71 refused */
    char ct[200];
    n = snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%070d", 7);
    CHECK_EQ_INT(http_multipart_boundary(str_make(ct, (size_t)n), b, sizeof(b)), 70);
    CHECK_EQ_INT(http_multipart_boundary(str_make(ct, (size_t)n), b, 70), -1); /* no room for NUL */
    n = snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%071d", 7);
    CHECK_EQ_INT(http_multipart_boundary(str_make(ct, (size_t)n), b, sizeof(b)),
                 HTTP_MULTIPART_ERR_BOUNDARY);

    static const char *const bad[] = {
        "",
        "multipart/form-data",
        "multipart/form-data;",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=\"\"",
        "multipart/form-data; boundary=\"abc \"", /* may not end with a space */
        "multipart/form-data; boundary=ab@c",     /* not a bchar */
        "multipart/form-data; boundary=\"ab\x01\"",
        "multipart/form-data; boundary=\"abc",
        "multipart/form-data; boundary=abc def",
        "multipart/form-data; boundary=a; boundary=a",
        "multipart/form-data; boundary",
        "multipart/form-data boundary=abc",
        "multipart/form-data; boundary =abc",
        "multipart/mixed; boundary=abc",
        "text/plain; boundary=abc",
        "multipart/form-dataX; boundary=abc",
        "multipart; boundary=abc",
        "/form-data; boundary=abc",
        "multipart/form-data; boundary=\"a\xc3\xa9\"",
        "multipart/form-data; =abc; boundary=abc",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = http_multipart_boundary(str_cstr(bad[i]), b, sizeof(b));
        if (rc != HTTP_MULTIPART_ERR_BOUNDARY) fprintf(stderr, "accepted: %s\n", bad[i]);
        CHECK_EQ_INT(rc, HTTP_MULTIPART_ERR_BOUNDARY);
    }
}

static void test_init_invalid(void)
{
    CHECK_EQ_INT(http_multipart_init(&parser, STR_LIT("")), HTTP_MULTIPART_ERR_BOUNDARY);
    CHECK_MEM(http_multipart_error(&parser), strlen(http_multipart_error(&parser)),
              "invalid boundary");
    CHECK_EQ_INT(http_multipart_feed(&parser, "--\r\n", 4, &cbs, &rec),
                 HTTP_MULTIPART_ERR_BOUNDARY);
    CHECK_EQ_INT(http_multipart_finish(&parser), HTTP_MULTIPART_ERR_BOUNDARY);
    CHECK_EQ_INT(http_multipart_init(&parser, STR_NULL), HTTP_MULTIPART_ERR_BOUNDARY);
    CHECK_EQ_INT(http_multipart_init(&parser, STR_LIT("a\r\nb")), HTTP_MULTIPART_ERR_BOUNDARY);
    CHECK_EQ_INT(http_multipart_init(&parser, STR_LIT("abc")), 0);
    CHECK_MEM(http_multipart_error(&parser), strlen(http_multipart_error(&parser)), "");
}

static void test_node_body(void)
{
    CHECK_EQ_INT(parse(NODE_BOUNDARY, node_body, sizeof(node_body) - 1), 0);
    check_node_events(&rec);
    CHECK(http_multipart_done(&parser));
}

/* Two pieces at every offset, then every byte alone, then three pieces at every pair. */
static void test_node_body_every_split(void)
{
    size_t len = sizeof(node_body) - 1;
    int bad = 0;
    for (size_t k = 0; k <= len; k++) {
        memset(&rec2, 0, sizeof(rec2));
        int rc = parse_split(NODE_BOUNDARY, node_body, len, &k, 1, &rec2, &parser);
        if (rc != 0 || rec2.len != sizeof(node_events) - 1 ||
            memcmp(rec2.log, node_events, rec2.len) != 0) {
            bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);

    size_t cuts[sizeof(node_body)];
    for (size_t k = 0; k < len; k++) cuts[k] = k;
    memset(&rec2, 0, sizeof(rec2));
    CHECK_EQ_INT(parse_split(NODE_BOUNDARY, node_body, len, cuts, len, &rec2, &parser), 0);
    check_node_events(&rec2);

    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b++) {
            size_t two[2] = {a, b};
            memset(&rec2, 0, sizeof(rec2));
            int rc = parse_split(NODE_BOUNDARY, node_body, len, two, 2, &rec2, &parser);
            if (rc != 0 || rec2.len != sizeof(node_events) - 1 ||
                memcmp(rec2.log, node_events, rec2.len) != 0) {
                bad++;
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_two_parts_and_abort(void)
{
    static const char body[] =
        "--b\r\n"
        "Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
        "\r\n"
        "AAA\r\n"
        "--b\r\n"
        "Content-Disposition: form-data; name=\"file\"; filename=\"b.png\"\r\n"
        "\r\n"
        "BBB\r\n"
        "--b--\r\n";
    CHECK_EQ_INT(PARSE_LIT("b", body), 0);
    CHECK_MEM(rec.log, rec.len, "<file|a.png|->AAA.<file|b.png|->BBB.$");

    /* The caller refuses the second file part from its callback. */
    memset(&rec, 0, sizeof(rec));
    rec.abort_on_begin = 2;
    http_multipart_init(&parser, STR_LIT("b"));
    CHECK_EQ_INT(http_multipart_feed(&parser, body, sizeof(body) - 1, &cbs, &rec),
                 HTTP_MULTIPART_ERR_ABORTED);
    CHECK_MEM(http_multipart_error(&parser), strlen(http_multipart_error(&parser)),
              "stopped by callback");
    CHECK_EQ_INT(http_multipart_feed(&parser, "x", 1, &cbs, &rec), HTTP_MULTIPART_ERR_ABORTED);
    CHECK_EQ_INT(http_multipart_finish(&parser), HTTP_MULTIPART_ERR_ABORTED);
    CHECK_MEM(rec.log, rec.len, "<file|a.png|->AAA.<file|b.png|->");
}

static int data_abort(void *ud, const char *d, size_t n)
{
    (void)d;
    *(size_t *)ud += n;
    return *(size_t *)ud > 4;
}

static void test_abort_in_data(void)
{
    static const char body[] =
        "--b\r\nContent-Disposition: form-data; name=f\r\n\r\n0123\r456789\r\n"
        "--b--";
    http_multipart_callbacks_t c = {NULL, data_abort, NULL, NULL};
    size_t total = 0;
    http_multipart_init(&parser, STR_LIT("b"));
    CHECK_EQ_INT(http_multipart_feed(&parser, body, sizeof(body) - 1, &c, &total),
                 HTTP_MULTIPART_ERR_ABORTED);
    CHECK_EQ_INT(total, 5); /* "0123" then the held-back "\r" */
    /* No callbacks at all is fine too. */
    http_multipart_init(&parser, STR_LIT("b"));
    CHECK_EQ_INT(http_multipart_feed(&parser, body, sizeof(body) - 1, NULL, NULL),
                 (int64_t)sizeof(body) - 1);
    CHECK_EQ_INT(http_multipart_finish(&parser), 0);
}

static void check_err(int rc, int want, const char *reason)
{
    CHECK_EQ_INT(rc, want);
    const char *got = http_multipart_error(&parser);
    CHECK_MEM(got, strlen(got), reason);
}

#define CD "Content-Disposition: form-data; name=\"f\"\r\n"

static void test_truncated(void)
{
    check_err(PARSE_LIT("b", "--b\r\n" CD "\r\nabc"), HTTP_MULTIPART_ERR_TRUNCATED,
              "truncated body (no close delimiter)");
    CHECK_MEM(rec.log, rec.len, "<f|-|->abc");
    check_err(PARSE_LIT("b", "--b\r\n" CD "\r\nabc\r\n--b"), HTTP_MULTIPART_ERR_TRUNCATED,
              "truncated body (no close delimiter)");
    CHECK_MEM(rec.log, rec.len, "<f|-|->abc."); /* the part is complete, the body is not */
    check_err(PARSE_LIT("b", "--b\r\n" CD "\r\nabc\r\n--b-"), HTTP_MULTIPART_ERR_TRUNCATED,
              "truncated body (no close delimiter)");
    check_err(PARSE_LIT("b", "--b\r\n" CD "\r\nabc\r\n--b\r\n"), HTTP_MULTIPART_ERR_TRUNCATED,
              "truncated body (no close delimiter)");
    check_err(PARSE_LIT("b", "--b\r\nContent-Disp"), HTTP_MULTIPART_ERR_TRUNCATED,
              "truncated body (no close delimiter)");
    check_err(PARSE_LIT("b", "--b"), HTTP_MULTIPART_ERR_TRUNCATED,
              "truncated body (no close delimiter)");
    check_err(PARSE_LIT("b", ""), HTTP_MULTIPART_ERR_TRUNCATED,
              "truncated body (no close delimiter)");
    /* A body made with another boundary is all preamble. */
    check_err(PARSE_LIT("b", "--c\r\n" CD "\r\nabc\r\n--c--\r\n"), HTTP_MULTIPART_ERR_TRUNCATED,
              "truncated body (no close delimiter)");
    CHECK_EQ_INT(rec.len, 0);
    /* finish() is sticky */
    CHECK_EQ_INT(http_multipart_feed(&parser, "\r\n--b--", 7, &cbs, &rec),
                 HTTP_MULTIPART_ERR_TRUNCATED);
}

static void test_delimiter_lookalikes(void)
{
    /* "--b" without CRLF before it, CRLF + a prefix of the delimiter, a lone CR before CRLF,
     * a longer boundary that starts like ours: all data. */
    static const char body[] = "--bound\r\n" CD "\r\n"
                               "x--bound\r\n"
                               "\r\n-\r\n--\r\n--b\r\n--boun\r"
                               "\r\r\n--boun"
                               "d--\r\n";
    CHECK_EQ_INT(PARSE_LIT("bound", body), 0);
    CHECK_MEM(rec.log, rec.len, "<f|-|->x--bound\r\n\r\n-\r\n--\r\n--b\r\n--boun\r\r.$");
    /* CRLF--boundary followed by anything but "--", padding or CRLF is refused. */
    check_err(PARSE_LIT("bound", "--bound\r\n" CD "\r\nx\r\n--boundary\r\n--bound--"),
              HTTP_MULTIPART_ERR_SYNTAX, "malformed delimiter line");
    check_err(PARSE_LIT("bound", "--bound\r\n" CD "\r\nx\r\n--bound-x"), HTTP_MULTIPART_ERR_SYNTAX,
              "malformed delimiter line");
    check_err(PARSE_LIT("bound", "--bound\r\n" CD "\r\nx\r\n--bound \t-"),
              HTTP_MULTIPART_ERR_SYNTAX, "malformed delimiter line");
    check_err(PARSE_LIT("bound", "--bound\r\n" CD "\r\nx\r\n--bound\rx"), HTTP_MULTIPART_ERR_SYNTAX,
              "delimiter line without CRLF");
}

static void test_preamble_padding_epilogue(void)
{
    static const char body[] = "preamble --b\r\n-\r\n--\r\n"
                               "\r\n--b \t \r\n" CD "\r\n"
                               "v\r\n--b\t\r\n" CD "\r\n"
                               "\r\n--b-- \t\r\n"
                               "epilogue\r\n--b\r\ngarbage--b--";
    CHECK_EQ_INT(PARSE_LIT("b", body), 0);
    CHECK_MEM(rec.log, rec.len, "<f|-|->v.<f|-|->.$");
    /* The body may start with CRLF before the first delimiter (an empty preamble). */
    CHECK_EQ_INT(PARSE_LIT("b", "\r\n--b\r\n" CD "\r\n\r\n--b--"), 0);
    CHECK_MEM(rec.log, rec.len, "<f|-|->.$");
    /* The close delimiter may end the body, with or without padding or a final CR. */
    CHECK_EQ_INT(PARSE_LIT("b", "--b\r\n" CD "\r\nz\r\n--b--"), 0);
    CHECK_EQ_INT(PARSE_LIT("b", "--b\r\n" CD "\r\nz\r\n--b--  "), 0);
    CHECK_EQ_INT(PARSE_LIT("b", "--b\r\n" CD "\r\nz\r\n--b--\r"), 0);
    check_err(PARSE_LIT("b", "--b\r\n" CD "\r\nz\r\n--b--x"), HTTP_MULTIPART_ERR_SYNTAX,
              "data after close delimiter");
    check_err(PARSE_LIT("b", "--b\r\n" CD "\r\nz\r\n--b-- x\r\n"), HTTP_MULTIPART_ERR_SYNTAX,
              "data after close delimiter");
    check_err(PARSE_LIT("b", "--b\r\n" CD "\r\nz\r\n--b--\rx"), HTTP_MULTIPART_ERR_SYNTAX,
              "data after close delimiter");
    check_err(PARSE_LIT("b", "--b\r\n" CD "\r\nz\r\n--b--\n"), HTTP_MULTIPART_ERR_SYNTAX,
              "data after close delimiter");
    /* The preamble may not hold the delimiter either. */
    check_err(PARSE_LIT("b", "preamble\r\n--bb\r\n\r\n--b\r\n" CD "\r\n\r\n--b--"),
              HTTP_MULTIPART_ERR_SYNTAX, "malformed delimiter line");
    check_err(PARSE_LIT("b", "--b--\r\n"), HTTP_MULTIPART_ERR_SYNTAX,
              "multipart body without parts");
}

static void test_lf_only(void)
{
    /* LF-only bodies are refused where the first line break is. */
    check_err(PARSE_LIT("b", "--b\nContent-Disposition: form-data; name=f\n\nx\n--b--\n"),
              HTTP_MULTIPART_ERR_SYNTAX, "malformed delimiter line");
    check_err(PARSE_LIT("b", "--b\r\nContent-Disposition: form-data; name=f\n\r\nx\r\n--b--"),
              HTTP_MULTIPART_ERR_HEADER, "bare LF in part headers");
    check_err(PARSE_LIT("b", "--b\r\nContent-Disposition: form-data; name=f\r\n\n"),
              HTTP_MULTIPART_ERR_HEADER, "bare LF in part headers");
    check_err(PARSE_LIT("b", "--b\r\nContent-Disposition: form-data;\r name=f\r\n\r\n"),
              HTTP_MULTIPART_ERR_HEADER, "bare CR in part headers");
    check_err(PARSE_LIT("b", "--b\r\n\r\r\n"), HTTP_MULTIPART_ERR_HEADER,
              "bare CR in part headers");
    /* LF inside a part body is just data. */
    CHECK_EQ_INT(PARSE_LIT("b", "--b\r\n" CD "\r\na\nb\n\r\n--b--"), 0);
    CHECK_MEM(rec.log, rec.len, "<f|-|->a\nb\n.$");
}

static void test_header_limits(void)
{
    /* 16 fields accepted, 17 refused. */
    char body[HTTP_MULTIPART_HEADERS_MAX + 256];
    size_t n = (size_t)snprintf(body, sizeof(body), "--b\r\n" CD);
    for (int i = 1; i < 16; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "X-%d: v\r\n", i);
    size_t at16 = n;
    n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\nd\r\n--b--");
    CHECK_EQ_INT(parse("b", body, n), 0);
    CHECK_MEM(rec.log, rec.len, "<f|-|->d.$");
    n = at16 + (size_t)snprintf(body + at16, sizeof(body) - at16, "X-17: v\r\n\r\nd\r\n--b--");
    check_err(parse("b", body, n), HTTP_MULTIPART_ERR_HEADER_SIZE, "over 16 part header fields");

    /* A header block of exactly 8192 bytes (blank line included) accepted, 8193 refused. */
    for (int extra = 0; extra <= 1; extra++) {
        n = (size_t)snprintf(body, sizeof(body), "--b\r\n" CD "X-Pad: ");
        size_t block = n - 5;
        size_t pad = HTTP_MULTIPART_HEADERS_MAX - block - 4 + (size_t)extra; /* CRLF CRLF */
        memset(body + n, 'p', pad);
        n += pad;
        n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\n\r\nd\r\n--b--");
        if (extra == 0) {
            CHECK_EQ_INT(parse("b", body, n), 0);
            CHECK_MEM(rec.log, rec.len, "<f|-|->d.$");
        } else {
            check_err(parse("b", body, n), HTTP_MULTIPART_ERR_HEADER_SIZE,
                      "part headers over 8 KiB");
        }
    }
    /* Unterminated headers stop at the limit, not at the end of the body. */
    memset(&rec, 0, sizeof(rec));
    http_multipart_init(&parser, STR_LIT("b"));
    CHECK_EQ_INT(http_multipart_feed(&parser, "--b\r\n", 5, &cbs, &rec), 5);
    int64_t rc = 0;
    for (int i = 0; i < 3000 && rc >= 0; i++)
        rc = http_multipart_feed(&parser, "aaaa", 4, &cbs, &rec);
    CHECK_EQ_INT(rc, HTTP_MULTIPART_ERR_HEADER_SIZE);
}

static void test_header_lines(void)
{
#define HDR_CASE(hdrs, err, reason)                                                                \
    check_err(PARSE_LIT("b", "--b\r\n" hdrs "\r\nx\r\n--b--"), err, reason)
    HDR_CASE("Content-Disposition form-data; name=f\r\n", HTTP_MULTIPART_ERR_HEADER,
             "malformed part header");
    HDR_CASE("Content-Disposition : form-data; name=f\r\n", HTTP_MULTIPART_ERR_HEADER,
             "malformed part header");
    HDR_CASE(": x\r\n" CD, HTTP_MULTIPART_ERR_HEADER, "malformed part header");
    HDR_CASE("Content(Disposition): form-data; name=f\r\n", HTTP_MULTIPART_ERR_HEADER,
             "malformed part header");
    HDR_CASE(CD " x\r\n", HTTP_MULTIPART_ERR_HEADER, "folded part header");
    HDR_CASE(CD "\tx\r\n", HTTP_MULTIPART_ERR_HEADER, "folded part header");
    HDR_CASE("Content-Disposition: form-data; name=\"f\x01\"\r\n", HTTP_MULTIPART_ERR_HEADER,
             "control character in part header");
    HDR_CASE("X-A: \x7f\r\n" CD, HTTP_MULTIPART_ERR_HEADER, "control character in part header");
    HDR_CASE(CD "Content-Type: a/b\r\ncontent-type: c/d\r\n", HTTP_MULTIPART_ERR_HEADER,
             "repeated part Content-Type");
    HDR_CASE("", HTTP_MULTIPART_ERR_DISPOSITION, "part without Content-Disposition");
    HDR_CASE("Content-Type: text/plain\r\n", HTTP_MULTIPART_ERR_DISPOSITION,
             "part without Content-Disposition");
    HDR_CASE(CD CD, HTTP_MULTIPART_ERR_DISPOSITION, "repeated Content-Disposition");
    /* A NUL in a header is a control character. */
    static const char nul[] =
        "--b\r\nContent-Disposition: form-data; name=\"a\0b\"\r\n\r\nx\r\n--b--";
    check_err(PARSE_LIT("b", nul), HTTP_MULTIPART_ERR_HEADER, "control character in part header");

    /* Names case-insensitive, unknown fields ignored, OWS trimmed, obs-text allowed. */
    CHECK_EQ_INT(PARSE_LIT("b", "--b\r\nX-Other: 1\r\ncontent-disposition:FORM-DATA;NAME=f \t\r\n"
                                "CONTENT-TYPE:  text/plain; charset=\xc3\xa9  \r\n"
                                "Content-Transfer-Encoding: base64\r\n\r\nx\r\n--b--"),
                 0);
    CHECK_MEM(rec.log, rec.len, "<f|-|text/plain; charset=\xc3\xa9>x.$");
}

static void test_disposition(void)
{
#define CD_OK(params, events)                                                                      \
    do {                                                                                           \
        CHECK_EQ_INT(PARSE_LIT("b", "--b\r\nContent-Disposition: " params "\r\n\r\nx\r\n--b--"),   \
                     0);                                                                           \
        CHECK_MEM(rec.log, rec.len, events);                                                       \
    } while (0)
#define CD_BAD(params, reason)                                                                     \
    check_err(PARSE_LIT("b", "--b\r\nContent-Disposition: " params "\r\n\r\nx\r\n--b--"),          \
              HTTP_MULTIPART_ERR_DISPOSITION, reason)

    CD_OK("form-data; name=f", "<f|-|->x.$");
    CD_OK("form-data;name=\"\";filename=\"\"", "<||->x.$"); /* empty but present */
    CD_OK("form-data; name=\"a;b\"; filename=\"x; name=y.png\"", "<a;b|x; name=y.png|->x.$");
    CD_OK("form-data; filename=\"q\\\"uo\\\\te\"; name=f", "<f|q\"uo\\te|->x.$");
    CD_OK("form-data; name=f; filename=\"C:\\Users\\me\\a.png\"", "<f|C:\\Users\\me\\a.png|->x.$");
    CD_OK("form-data; name=f; filename=\"..\\\\..\\x\"", "<f|..\\..\\x|->x.$");
    CD_OK("form-data; name=f; filename=\"%2e%2e%2fx\"", "<f|%2e%2e%2fx|->x.$"); /* kept raw */
    CD_OK("form-data; name=f; filename=\"caf\xc3\xa9 \t.pdf\"", "<f|caf\xc3\xa9 \t.pdf|->x.$");
    CD_OK("form-data; name=f; filename*=UTF-8''%e2%82%ac%20rates.pdf",
          "<f|\xe2\x82\xac rates.pdf|->x.$");
    CD_OK("form-data; name=f; filename*=utf-8'en'a%2Fb", "<f|a/b|->x.$");
    /* filename* wins over filename, in either order */
    CD_OK("form-data; name=f; filename=\"plain.txt\"; filename*=UTF-8''ext.txt",
          "<f|ext.txt|->x.$");
    CD_OK("form-data; filename*=UTF-8''ext.txt; name=f; filename=\"plain.txt\"",
          "<f|ext.txt|->x.$");
    CD_OK("form-data; name=f; name*=UTF-8''zz; x=\"y\";", "<f|-|->x.$"); /* unknown ignored */
    CD_OK("Form-Data ; Name=f ; FILENAME=a", "<f|a|->x.$");

    CD_BAD("attachment; name=f", "Content-Disposition is not form-data");
    CD_BAD("form-data-x; name=f", "Content-Disposition is not form-data");
    CD_BAD("; name=f", "Content-Disposition is not form-data");
    CD_BAD("form-data", "Content-Disposition without name");
    CD_BAD("form-data; filename=\"a.png\"", "Content-Disposition without name");
    CD_BAD("form-data; name", "malformed Content-Disposition");
    CD_BAD("form-data; name=", "malformed Content-Disposition");
    CD_BAD("form-data; name =f", "malformed Content-Disposition");
    CD_BAD("form-data; name= f", "malformed Content-Disposition");
    CD_BAD("form-data; name=\"f", "malformed Content-Disposition");
    CD_BAD("form-data; name=\"f\\\"", "malformed Content-Disposition");
    CD_BAD("form-data; name=f g", "malformed Content-Disposition");
    CD_BAD("form-data name=f", "malformed Content-Disposition");
    CD_BAD("form-data; name=f; filename=a b", "malformed Content-Disposition");
    CD_BAD("form-data; name=f; filename=../../etc/passwd", "malformed Content-Disposition");
    CD_BAD("form-data; name=f; ; filename=a", "malformed Content-Disposition");
    CD_BAD("form-data; name=f; filename=\"a\"b", "malformed Content-Disposition");
    CD_BAD("form-data; name=f; filename*=\"UTF-8''a\"", "malformed Content-Disposition");
    CD_BAD("form-data; name=f; name=g", "repeated Content-Disposition parameter");
    CD_BAD("form-data; name=f; filename=a; FileName=b", "repeated Content-Disposition parameter");
    CD_BAD("form-data; name=f; filename*=UTF-8''a; filename*=UTF-8''b",
           "repeated Content-Disposition parameter");
    CD_BAD("form-data; name=f; filename*=ISO-8859-1''a%e9",
           "filename* is not UTF-8''<percent-encoded>");
    CD_BAD("form-data; name=f; filename*=a.txt", "filename* is not UTF-8''<percent-encoded>");
    CD_BAD("form-data; name=f; filename*=UTF-8'a.txt", "filename* is not UTF-8''<percent-encoded>");
    CD_BAD("form-data; name=f; filename*=UTF-8''a%2", "filename* is not UTF-8''<percent-encoded>");
    CD_BAD("form-data; name=f; filename*=UTF-8''a%zz", "filename* is not UTF-8''<percent-encoded>");
    CD_BAD("form-data; name=f; filename*=UTF-8''a'b", "filename* is not UTF-8''<percent-encoded>");

    /* filename* can carry a NUL: the filename is (ptr,len), not a C string. */
    CHECK_EQ_INT(PARSE_LIT("b", "--b\r\nContent-Disposition: form-data; name=f; "
                                "filename*=UTF-8''a%00b\r\n\r\n\r\n--b--"),
                 0);
    CHECK_EQ_INT(rec.len, sizeof("<f|a\0b|->.$") - 1);
    CHECK(memcmp(rec.log, "<f|a\0b|->.$", rec.len) == 0);
}

typedef struct {
    const char *want;
    size_t got;
    int mismatch, ends;
} cmp_t;

static int cmp_data(void *ud, const char *d, size_t n)
{
    cmp_t *c = ud;
    if (memcmp(d, c->want + c->got, n) != 0) c->mismatch++;
    c->got += n;
    return 0;
}

static int cmp_end(void *ud)
{
    ((cmp_t *)ud)->ends++;
    return 0;
}

/* A large part fed in uneven pieces arrives whole, and only delimiter candidates are held
 * back: never more than boundary length + 3 bytes. */
static void test_streaming(void)
{
    static const char head[] = "--bx-\r\n" CD "\r\n";
    static const char tail[] = "\r\n--bx---\r\n";
    size_t size = 1 << 20, hl = sizeof(head) - 1;
    char *content = malloc(size);
    uint32_t s = 12345;
    for (size_t i = 0; i < size; i++) {
        static const char alphabet[] = "\r\n-bx\r-";
        s = s * 1103515245u + 12345u;
        content[i] = alphabet[(s >> 16) % 7]; /* many partial delimiter matches */
    }
    for (size_t i = 0; i + 7 <= size; i++) {
        if (memcmp(content + i, "\r\n--bx-", 7) == 0) content[i + 4] = 'y';
    }
    size_t total = hl + size + sizeof(tail) - 1;
    char *body = malloc(total);
    memcpy(body, head, hl);
    memcpy(body + hl, content, size);
    memcpy(body + hl + size, tail, sizeof(tail) - 1);

    cmp_t c = {content, 0, 0, 0};
    http_multipart_callbacks_t cb = {NULL, cmp_data, cmp_end, NULL};
    http_multipart_init(&parser, STR_LIT("bx-"));
    size_t fed = 0, worst = 0;
    int bad = 0;
    while (fed < total) {
        s = s * 1103515245u + 12345u;
        size_t n = 1 + (s >> 8) % 5000;
        if (n > total - fed) n = total - fed;
        if (http_multipart_feed(&parser, body + fed, n, &cb, &c) != (int64_t)n) bad++;
        fed += n;
        size_t content_fed = fed < hl ? 0 : fed - hl > size ? size : fed - hl;
        if (c.got > content_fed) bad++;
        if (content_fed - c.got > worst) worst = content_fed - c.got;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(http_multipart_finish(&parser), 0);
    CHECK_EQ_INT(c.got, size);
    CHECK_EQ_INT(c.mismatch, 0);
    CHECK_EQ_INT(c.ends, 1);
    CHECK(worst <= 3 + 3); /* boundary length + 3 */
    CHECK(worst > 0);
    free(body);
    free(content);
}

int main(void)
{
    RUN(test_boundary);
    RUN(test_init_invalid);
    RUN(test_node_body);
    RUN(test_node_body_every_split);
    RUN(test_two_parts_and_abort);
    RUN(test_abort_in_data);
    RUN(test_truncated);
    RUN(test_delimiter_lookalikes);
    RUN(test_preamble_padding_epilogue);
    RUN(test_lf_only);
    RUN(test_header_limits);
    RUN(test_header_lines);
    RUN(test_disposition);
    RUN(test_streaming);
    return UNIT_DONE();
}
