/* Fuzz target: multipart bodies parsed in one piece and in random pieces must give the same
 * events and result; callbacks are checked for order, bounds and no empty data; the input is
 * also tried as a Content-Type for the boundary lookup. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_multipart.h"

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

/* The first input byte picks a boundary (low 2 bits) and seeds the splits. */
static const char *const boundaries[] = {"b", "bound", "----formdata-undici-064179293872",
                                         "AaB03x"};

typedef struct {
    char log[1 << 17];
    size_t len;
    bool overflow;
    int in_part; /* 1 between begin and end */
    bool done;
    const char *piece; /* the piece being fed */
    size_t piece_len;
    const http_multipart_t *parser;
} rec_t;

static void put(rec_t *r, const void *p, size_t n)
{
    if (r->len + n > sizeof(r->log)) {
        r->overflow = true;
        return;
    }
    memcpy(r->log + r->len, p, n);
    r->len += n;
}

static void put_str(rec_t *r, char tag, str_t s)
{
    put(r, &tag, 1);
    size_t n = s.ptr ? s.len : SIZE_MAX;
    put(r, &n, sizeof(n));
    if (s.ptr) put(r, s.ptr, s.len);
}

static int on_begin(void *ud, str_t name, str_t filename, str_t ctype)
{
    rec_t *r = ud;
    FUZZ_ASSERT(!r->in_part && !r->done);
    FUZZ_ASSERT(name.ptr != NULL);
    FUZZ_ASSERT(name.len < HTTP_MULTIPART_HEADERS_MAX && filename.len < HTTP_MULTIPART_HEADERS_MAX);
    r->in_part = 1;
    put_str(r, 'N', name);
    put_str(r, 'F', filename);
    put_str(r, 'T', ctype);
    return 0;
}

static int on_data(void *ud, const char *d, size_t n)
{
    rec_t *r = ud;
    FUZZ_ASSERT(r->in_part && n > 0);
    /* Either from the fed piece or from the parser's held-back delimiter prefix. */
    bool in_piece = d >= r->piece && d + n <= r->piece + r->piece_len;
    const char *ps = (const char *)r->parser, *pe = ps + sizeof(*r->parser);
    FUZZ_ASSERT(in_piece || (d >= ps && d + n <= pe));
    put(r, d, n); /* untagged: pieces differ between splits, the byte sequence may not */
    return 0;
}

static int on_end(void *ud)
{
    rec_t *r = ud;
    FUZZ_ASSERT(r->in_part && !r->done);
    r->in_part = 0;
    put(r, "E", 1);
    return 0;
}

static int on_done(void *ud)
{
    rec_t *r = ud;
    FUZZ_ASSERT(!r->in_part && !r->done);
    r->done = true;
    put(r, "Z", 1);
    return 0;
}

static const http_multipart_callbacks_t cbs = {on_begin, on_data, on_end, on_done};

static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static http_multipart_t p1, p2;
static rec_t r1, r2;

static void reset(rec_t *r, const http_multipart_t *p)
{
    r->len = 0;
    r->overflow = false;
    r->in_part = 0;
    r->done = false;
    r->parser = p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *boundary = boundaries[data[0] & 3];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;

    char b[HTTP_MULTIPART_BOUNDARY_MAX + 1];
    int bl = http_multipart_boundary(str_make(body, len < 300 ? len : 300), b, sizeof(b));
    FUZZ_ASSERT(bl == HTTP_MULTIPART_ERR_BOUNDARY || (bl >= 1 && bl <= 70 && b[bl] == '\0'));
    if (bl > 0) FUZZ_ASSERT(http_multipart_init(&p2, str_make(b, (size_t)bl)) == 0);

    /* One piece. */
    reset(&r1, &p1);
    FUZZ_ASSERT(http_multipart_init(&p1, str_cstr(boundary)) == 0);
    r1.piece = body;
    r1.piece_len = len;
    int64_t rc = http_multipart_feed(&p1, body, len, &cbs, &r1);
    FUZZ_ASSERT(rc == (int64_t)len || (rc < 0 && rc >= HTTP_MULTIPART_ERR_TRUNCATED));
    int fin1 = http_multipart_finish(&p1);
    if (rc < 0) FUZZ_ASSERT(fin1 == rc);
    /* on_done comes with "--boundary--"; junk later on that line can still fail the body. */
    FUZZ_ASSERT(fin1 == 0 ? r1.done : (!r1.done || fin1 == HTTP_MULTIPART_ERR_SYNTAX));
    FUZZ_ASSERT(fin1 == 0 || http_multipart_error(&p1)[0] != '\0');

    /* Random pieces, each an exactly sized copy. */
    reset(&r2, &p2);
    FUZZ_ASSERT(http_multipart_init(&p2, str_cstr(boundary)) == 0);
    uint32_t s = (uint32_t)data[0] * 2654435761u + (uint32_t)len + 1;
    size_t off = 0;
    int64_t rc2 = 0;
    do {
        size_t step = (next_rand(&s) & 3) == 0 ? next_rand(&s) % 300 : next_rand(&s) % 8;
        if (step > len - off) step = len - off;
        char *piece = malloc(step ? step : 1);
        memcpy(piece, body + off, step);
        r2.piece = piece;
        r2.piece_len = step;
        rc2 = http_multipart_feed(&p2, piece, step, &cbs, &r2);
        free(piece);
        if (rc2 < 0) break;
        FUZZ_ASSERT(rc2 == (int64_t)step);
        off += step;
    } while (off < len);
    int fin2 = http_multipart_finish(&p2);
    FUZZ_ASSERT(fin1 == fin2);
    if (!r1.overflow && !r2.overflow && fin1 == 0) {
        FUZZ_ASSERT(r1.len == r2.len && memcmp(r1.log, r2.log, r1.len) == 0);
    }
    if (!r1.overflow && !r2.overflow && fin1 < 0) {
        /* The split run stopped at the same error: the events before it agree as a prefix. */
        size_t n = r1.len < r2.len ? r1.len : r2.len;
        FUZZ_ASSERT(memcmp(r1.log, r2.log, n) == 0);
    }
    return 0;
}
