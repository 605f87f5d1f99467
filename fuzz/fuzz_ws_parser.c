/* libFuzzer target: client bytes fed to ws_parser_feed whole and in random chunks, like a reader.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws/ws_codec.h"

#define FUZZ_MAX_MESSAGE 4096

/* Input: 4 bytes of seed (chunk sizes, and after which events a callback asks to stop), then
 * the byte stream a client would send. */
typedef struct {
    uint64_t hash; /* over every event, so both runs can be compared */
    size_t events;
    uint32_t stop_bits;
    bool stopped;
    ws_parser_t *parser;
} fz_run_t;

static void fz_mix(fz_run_t *r, uint64_t v)
{
    r->hash = (r->hash ^ v) * 0x100000001b3ull;
}

static int fz_event(fz_run_t *r, int type, int code, const uint8_t *d, size_t n)
{
    fz_mix(r, (uint64_t)type);
    fz_mix(r, (uint64_t)code);
    fz_mix(r, n);
    for (size_t i = 0; i < n; i++) fz_mix(r, d[i]);
    int stop = (r->stop_bits >> (r->events % 32)) & 1;
    r->events++;
    r->stopped = stop;
    return stop;
}

static int fz_on_message(void *ud, int op, uint8_t *d, size_t n)
{
    fz_run_t *r = ud;
    if (op != WS_OP_TEXT && op != WS_OP_BINARY) abort();
    if (n > FUZZ_MAX_MESSAGE || d == NULL) abort();
    if (op == WS_OP_TEXT && !ws_utf8_valid(d, n)) abort();
    if (ws_parser_buffered(r->parser) != 0) abort(); /* idle before the message is handed out */
    return fz_event(r, 1, op, d, n);
}

static int fz_on_ping(void *ud, uint8_t *d, size_t n)
{
    if (n > 125) abort();
    return fz_event(ud, 2, 0, d, n);
}

static int fz_on_pong(void *ud, uint8_t *d, size_t n)
{
    if (n > 125) abort();
    return fz_event(ud, 3, 0, d, n);
}

static int fz_on_close(void *ud, int code, const uint8_t *d, size_t n)
{
    if (n > 123 || !ws_utf8_valid(d, n)) abort();
    if (!(code == 1005 && n == 0) && !(code >= 1000 && code <= 1003) &&
        !(code >= 1007 && code <= 1014) && !(code >= 3000 && code <= 4999))
        abort();
    return fz_event(ud, 4, code, d, n);
}

static const ws_parser_callbacks_t fz_cbs = {fz_on_message, fz_on_ping, fz_on_pong, fz_on_close};

static uint32_t fz_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Appends chunks to a work buffer, parses, keeps the unconsumed tail. Returns the negative close
 * code, or the size of the tail left when the input ran out. */
static int64_t fz_feed(fz_run_t *r, const uint8_t *src, size_t n, uint8_t *work, uint32_t seed)
{
    ws_parser_t p;
    size_t have = 0, at = 0;
    int64_t result = 0;

    ws_parser_init(&p, FUZZ_MAX_MESSAGE);
    r->parser = &p;
    while (at < n || have > 0) {
        if (at < n) {
            size_t chunk = n - at; /* seed 0: everything at once */
            if (seed) {
                uint32_t x = fz_rand(&seed);
                size_t c = 1 + (x & 1 ? (x >> 1) % 16 : (x >> 1) % 600);
                if (c < chunk) chunk = c;
            }
            memcpy(work + have, src + at, chunk);
            have += chunk;
            at += chunk;
        }
        int64_t got;
        do {
            r->stopped = false;
            got = ws_parser_feed(&p, &fz_cbs, r, work, have);
            if (got < 0) {
                result = got;
                goto out;
            }
            if ((size_t)got > have) abort();
            memmove(work, work + got, have - (size_t)got);
            have -= (size_t)got;
        } while (r->stopped && have > 0);
        if (!r->stopped && have > 0) {
            /* What the parser left must be one incomplete, not yet invalid, frame. */
            int64_t need = ws_frame_size(work, have, FUZZ_MAX_MESSAGE);
            if (need < 0 || (need > 0 && (size_t)need <= have)) abort();
            if (need == 0 && have >= 10) abort();
        }
        if (at == n) {
            result = (int64_t)have;
            break;
        }
    }
out:
    if (result < 0 && result != -WS_CLOSE_PROTOCOL && result != -WS_CLOSE_INVALID_DATA &&
        result != -WS_CLOSE_TOO_BIG)
        abort();
    ws_parser_free(&p);
    return result;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    uint32_t seed = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                    (uint32_t)data[3] << 24;
    const uint8_t *src = data + 4;
    size_t n = size - 4;
    uint8_t *work = malloc(n ? n : 1);
    if (!work) return 0;

    /* Chunking must not change what is delivered, nor the verdict. */
    fz_run_t whole = {.hash = 0xcbf29ce484222325ull, .stop_bits = seed};
    fz_run_t split = whole;
    int64_t a = fz_feed(&whole, src, n, work, 0);
    int64_t b = fz_feed(&split, src, n, work, seed | 1);
    if (a != b || whole.hash != split.hash || whole.events != split.events) abort();

    /* Incremental UTF-8 agrees with the one-shot check at any split. */
    ws_utf8_t u;
    size_t cut = n ? seed % (n + 1) : 0;
    ws_utf8_init(&u);
    bool inc =
        ws_utf8_feed(&u, src, cut) && ws_utf8_feed(&u, src + cut, n - cut) && ws_utf8_complete(&u);
    if (inc != ws_utf8_valid(src, n)) abort();

    /* A close frame built from arbitrary text stays a well-formed control frame. */
    uint8_t cf[127];
    size_t cl = ws_close_frame(cf, 1000 + (int)(seed % 4000), str_make((const char *)src, n));
    if (cl > 127 || cl < 2 || cf[1] != cl - 2) abort();
    if (ws_utf8_valid(src, n) && !ws_utf8_valid(cf + 4, cl - 4)) abort();

    free(work);
    return 0;
}
