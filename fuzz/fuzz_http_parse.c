/* Fuzz target: request heads (two head limits, prefix consistency), then the remaining bytes as a
 * chunked body decoded in one call and in place in random pieces, and query lookups. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parse.h"

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

static bool within(str_t s, const char *buf, size_t len)
{
    return s.ptr >= buf && s.len <= len && s.ptr + s.len <= buf + len;
}

/* Parses an exactly-sized heap copy of buf[0..n) so ASan sees any read past n. */
static int parse_copy(const char *buf, size_t n, size_t max_head, http_request_t *req)
{
    char *copy = malloc(n ? n : 1);
    memcpy(copy, buf, n);
    int rc = http_parse_request(copy, n, max_head, req);
    free(copy);
    return rc;
}

static void check_request(const char *buf, size_t len, size_t max_head, int rc,
                          const http_request_t *req)
{
    if (rc == HTTP_PARSE_ERROR) {
        int s = req->error_status;
        FUZZ_ASSERT(s == 400 || s == 431 || s == 501 || s == 505);
        FUZZ_ASSERT(req->error_reason != NULL);
        return;
    }
    if (rc == HTTP_PARSE_INCOMPLETE) {
        FUZZ_ASSERT(len < max_head);
        return;
    }
    FUZZ_ASSERT(rc >= 4 && (size_t)rc <= len && (size_t)rc <= max_head);
    FUZZ_ASSERT(memcmp(buf + rc - 4, "\r\n\r\n", 4) == 0);
    FUZZ_ASSERT(req->num_headers <= HTTP_MAX_HEADERS);
    FUZZ_ASSERT(within(req->method, buf, (size_t)rc) && req->method.len > 0);
    FUZZ_ASSERT(within(req->target, buf, (size_t)rc) && req->target.len > 0);
    FUZZ_ASSERT(within(req->path, buf, (size_t)rc) || str_eq_cstr(req->path, "/"));
    FUZZ_ASSERT(within(req->query, buf, (size_t)rc));
    FUZZ_ASSERT(req->minor_version == 0 || req->minor_version == 1);
    FUZZ_ASSERT(!(req->chunked && req->content_length >= 0));
    for (size_t i = 0; i < req->num_headers; i++) {
        FUZZ_ASSERT(within(req->headers[i].name, buf, (size_t)rc));
        FUZZ_ASSERT(within(req->headers[i].value, buf, (size_t)rc));
        FUZZ_ASSERT(req->headers[i].name.len > 0);
        (void)http_header_has_token(req->headers[i].value, "upgrade");
    }
}

static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void fuzz_chunked(const char *body, size_t blen, uint32_t seed)
{
    char *one = malloc(blen ? blen : 1), *work = malloc(blen ? blen : 1);
    size_t one_len = 0;
    http_chunked_t d1, d2;

    http_chunked_init(&d1);
    int64_t rc1 = http_chunked_decode(&d1, body, blen, one, &one_len);
    FUZZ_ASSERT(rc1 == HTTP_PARSE_ERROR || (rc1 >= 0 && (uint64_t)rc1 <= blen));
    if (rc1 >= 0) FUZZ_ASSERT(one_len <= (size_t)rc1);

    /* In place: decoded bytes compacted at the front of the same buffer, as a connection does. */
    memcpy(work, body, blen);
    http_chunked_init(&d2);
    size_t raw = 0, fed = 0, out = 0;
    int64_t rc2 = 0;
    uint32_t s = seed | 1;
    while (!http_chunked_done(&d2)) {
        size_t step = (next_rand(&s) & 3) == 0 ? 1 + next_rand(&s) % 256 : 1 + next_rand(&s) % 8;
        size_t before = fed;
        fed = blen - fed < step ? blen : fed + step;
        size_t ol = 0;
        rc2 = http_chunked_decode(&d2, work + raw, fed - raw, work + out, &ol);
        if (rc2 < 0) break;
        FUZZ_ASSERT((size_t)rc2 <= fed - raw);
        FUZZ_ASSERT(out + ol <= raw + (size_t)rc2);
        raw += (size_t)rc2;
        out += ol;
        if (fed == blen && (rc2 == 0 || before == blen)) break;
    }

    if (rc1 == HTTP_PARSE_ERROR) {
        FUZZ_ASSERT(rc2 == HTTP_PARSE_ERROR);
    } else {
        FUZZ_ASSERT(rc2 >= 0);
        FUZZ_ASSERT(raw == (size_t)rc1);
        FUZZ_ASSERT(http_chunked_done(&d1) == http_chunked_done(&d2));
        FUZZ_ASSERT(out == one_len && memcmp(work, one, out) == 0);
    }
    free(one);
    free(work);
}

static void fuzz_query(str_t query, const uint8_t *data, size_t size)
{
    static const char *const names[] = {"EIO", "transport", "sid", "t", "", "a b"};
    char out[32];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t cap = i == 0 ? 2 : sizeof(out);
        int n = http_query_param(query, names[i], out, cap);
        FUZZ_ASSERT(n >= -2 && n < (int)cap);
        if (n >= 0) FUZZ_ASSERT(out[n] == '\0' && memchr(out, '\0', (size_t)n) == NULL);
    }
    /* A name taken from the input exercises matching of escaped names. */
    char name[8];
    size_t nl = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
    memcpy(name, data, nl);
    name[nl] = '\0';
    (void)http_query_param(query, name, out, sizeof(out));
    int n = http_percent_decode(query, false, out, sizeof(out));
    FUZZ_ASSERT(n >= -1 && n < (int)sizeof(out));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    /* The first byte picks a small head limit (odd) or a roomy one, and seeds the splits. */
    uint8_t ctl = data[0];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    size_t max_head = (ctl & 1) ? 8 + (size_t)(ctl >> 1) : 16384;
    http_request_t req;

    /* libFuzzer's data is an exactly-sized allocation, so over-reads are caught here too. */
    int rc = http_parse_request(buf, len, max_head, &req);
    check_request(buf, len, max_head, rc, &req);

    if (rc >= 0) {
        http_request_t again;
        /* Stateless and incremental: the exact head parses the same, one byte less needs more. */
        FUZZ_ASSERT(parse_copy(buf, (size_t)rc, max_head, &again) == rc);
        FUZZ_ASSERT(parse_copy(buf, (size_t)rc - 1, max_head, &again) == HTTP_PARSE_INCOMPLETE);
        if (len > 0) {
            size_t cut = (ctl * 7919u + len) % (size_t)rc;
            FUZZ_ASSERT(parse_copy(buf, cut, max_head, &again) == HTTP_PARSE_INCOMPLETE);
        }
        /* A bigger limit accepts the same head. */
        FUZZ_ASSERT(http_parse_request(buf, len, 1u << 20, &again) == rc);

        fuzz_query(req.query, data, size);
        (void)http_request_header(&req, "host");
        fuzz_chunked(buf + rc, len - (size_t)rc, (uint32_t)ctl * 2654435761u + (uint32_t)len);
    } else {
        fuzz_chunked(buf, len, (uint32_t)ctl * 2654435761u + (uint32_t)len);
        fuzz_query(str_make(buf, len), data, size);
    }
    return 0;
}
