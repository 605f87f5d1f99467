/* libFuzzer target: Engine.IO polling payload decoding (v4 and v3), and re-encoding what it yields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "eio/eio_packet.h"

typedef struct {
    const char *buf;
    size_t len;
} fuzz_ctx_t;

/* What every decoded packet must be, v4 or v3: a known type, binary only as a message, its
 * data inside the decoded buffer. */
static void fuzz_check_bounds(const fuzz_ctx_t *ctx, const eio_packet_t *p)
{
    if (p->type < EIO_OPEN || p->type > EIO_NOOP) abort();
    if (p->binary && p->type != EIO_MESSAGE) abort();
    if (p->len &&
        ((const char *)p->data < ctx->buf || (const char *)p->data + p->len > ctx->buf + ctx->len))
        abort();
}

/* Every packet must lie inside the buffer and survive encode -> decode unchanged. */
static int fuzz_check_packet(void *ud, const eio_packet_t *p)
{
    fuzz_check_bounds(ud, p);

    size_t need = eio_packet_encoded_len_polling(p);
    char *enc = malloc(need);
    if (eio_packet_encode_polling(p, enc) != need) abort();

    eio_packet_t back;
    if (p->binary) {
        uint8_t *bytes = malloc(need);
        if (enc[0] != 'b' || base64_decode(enc + 1, need - 1, bytes) != (int64_t)p->len) abort();
        if (p->len && memcmp(bytes, p->data, p->len) != 0) abort();
        free(bytes);
    } else {
        if (eio_packet_decode_text(enc, need, &back) != 0 || back.type != p->type ||
            back.len != p->len || (p->len && memcmp(back.data, p->data, p->len) != 0))
            abort();
    }
    free(enc);
    return 0;
}

static int fuzz_same_packet(void *ud, const eio_packet_t *p)
{
    const eio_packet_t *want = ud;
    if (p->type != want->type || p->binary != want->binary || p->len != want->len ||
        (p->len && memcmp(p->data, want->data, p->len) != 0))
        abort();
    return 0;
}

/* v3: every packet lies inside the buffer, and its encoding decodes back to the same packet. */
static int fuzz_check_packet_v3(void *ud, const eio_packet_t *p)
{
    fuzz_check_bounds(ud, p);
    size_t need = eio3_packet_encoded_len_polling(p);
    char *enc = malloc(need);
    if (eio3_packet_encode_polling(p, enc) != need) abort();
    uint8_t *copy = malloc(p->len ? p->len : 1);
    if (p->len) memcpy(copy, p->data, p->len);
    eio_packet_t want = *p;
    want.data = copy;
    int r = eio3_payload_decode(enc, need, fuzz_same_packet, &want);
    if (r != 0) abort();
    free(copy);
    free(enc);
    return 0;
}

static int fuzz_stop_first(void *ud, const eio_packet_t *p)
{
    (void)ud;
    (void)p;
    return 5;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Decoding works in place, so on a copy; an exact-size heap copy lets ASan see overreads. */
    char *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);

    fuzz_ctx_t ctx = {buf, size};
    int r = eio_payload_decode(buf, size, fuzz_check_packet, &ctx);
    if (r != 0 && r != -1) abort();

    /* A body that decodes must do so again from the same bytes, and a callback's value wins. */
    if (size) memcpy(buf, data, size);
    int r2 = eio_payload_decode(buf, size, fuzz_stop_first, NULL);
    if ((r == 0) != (r2 == 5)) abort();

    /* The same bytes as an Engine.IO v3 payload. */
    if (size) memcpy(buf, data, size);
    r = eio3_payload_decode(buf, size, fuzz_check_packet_v3, &ctx);
    if (r != 0 && r != -1) abort();

    /* And as a v3 binary (XHR2) payload, which decodes without modifying its input. */
    r = eio3_payload_decode_binary(data, size, fuzz_check_packet_v3,
                                   &(fuzz_ctx_t){(const char *)data, size});
    if (r != 0 && r != -1) abort();

    eio_packet_t p;
    if (eio_packet_decode_text((const char *)data, size, &p) == 0 && p.len != size - 1) abort();
    free(buf);
    return 0;
}
