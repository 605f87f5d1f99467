/* Base64 codec (RFC 4648): standard alphabet, padded, canonical encodings only. */
#include "core/base64.h"

#include <stdbool.h>

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int base64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

size_t base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0, o = 0;

    for (; n - i >= 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = base64_alphabet[v >> 18];
        out[o++] = base64_alphabet[(v >> 12) & 63];
        out[o++] = base64_alphabet[(v >> 6) & 63];
        out[o++] = base64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = base64_alphabet[v >> 18];
        out[o++] = base64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = base64_alphabet[v >> 18];
        out[o++] = base64_alphabet[(v >> 12) & 63];
        out[o++] = base64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    return o;
}

/* Decodes the group in[0..4). Returns the number of bytes it carries (1..3) with the 24 bits in
 * *v, or -1. Padding is accepted only when last is set. */
static int base64_group(const char *in, bool last, uint32_t *v)
{
    int d[4];
    int bytes = 3;

    for (int k = 0; k < 4; k++) d[k] = base64_val((unsigned char)in[k]);
    if (last && in[3] == '=') {
        bytes = in[2] == '=' ? 1 : 2;
        d[3] = 0;
        if (bytes == 1) d[2] = 0;
    }
    if (d[0] < 0 || d[1] < 0 || d[2] < 0 || d[3] < 0) return -1;
    *v = (uint32_t)d[0] << 18 | (uint32_t)d[1] << 12 | (uint32_t)d[2] << 6 | (uint32_t)d[3];
    /* Non-zero leftover bits would make a second spelling of the same bytes. */
    if (bytes == 1 && (*v & 0xffff)) return -1;
    if (bytes == 2 && (*v & 0xff)) return -1;
    return bytes;
}

int64_t base64_decoded_len(const char *in, size_t len)
{
    uint32_t v;
    int64_t total = 0;

    if (len % 4) return -1;
    for (size_t i = 0; i < len; i += 4) {
        int b = base64_group(in + i, i + 4 == len, &v);
        if (b < 0) return -1;
        total += b;
    }
    return total;
}

int64_t base64_decode(const char *in, size_t len, uint8_t *out)
{
    size_t o = 0;
    uint32_t v;

    if (len % 4) return -1;
    for (size_t i = 0; i < len; i += 4) {
        int b = base64_group(in + i, i + 4 == len, &v);
        if (b < 0) return -1;
        out[o++] = (uint8_t)(v >> 16);
        if (b > 1) out[o++] = (uint8_t)(v >> 8);
        if (b > 2) out[o++] = (uint8_t)v;
    }
    return (int64_t)o;
}
