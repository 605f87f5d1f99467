/* Engine.IO v4 packet and polling payload codec (pure: no I/O, no allocation). */
#include "eio/eio_packet.h"

#include <string.h>

#include "core/base64.h"

int eio_packet_decode_text(const char *buf, size_t len, eio_packet_t *out)
{
    if (len == 0 || buf[0] < '0' || buf[0] > '0' + EIO_NOOP) return -1;
    out->type = buf[0] - '0';
    out->binary = false;
    out->data = (const uint8_t *)buf + 1;
    out->len = len - 1;
    return 0;
}

/* Validates one payload element seg[0..n). */
static bool eio_payload_packet_ok(const char *seg, size_t n)
{
    eio_packet_t p;

    if (n == 0) return false;
    if (seg[0] == 'b') return base64_decoded_len(seg + 1, n - 1) >= 0;
    return eio_packet_decode_text(seg, n, &p) == 0;
}

int eio_payload_decode(char *buf, size_t len, eio_payload_cb cb, void *ud)
{
    size_t start, end;

    if (len == 0) return -1;
    /* Pass 1 checks everything, so delivery below cannot fail halfway through. */
    for (start = 0; start <= len; start = end + 1) {
        const char *sep = memchr(buf + start, EIO_RECORD_SEPARATOR, len - start);
        end = sep ? (size_t)(sep - buf) : len;
        if (!eio_payload_packet_ok(buf + start, end - start)) return -1;
    }
    for (start = 0; start <= len; start = end + 1) {
        const char *sep = memchr(buf + start, EIO_RECORD_SEPARATOR, len - start);
        eio_packet_t p;
        end = sep ? (size_t)(sep - buf) : len;
        if (buf[start] == 'b') {
            uint8_t *bytes = (uint8_t *)buf + start + 1;
            int64_t n = base64_decode(buf + start + 1, end - start - 1, bytes);
            if (n < 0) return -1; /* unreachable: validated above */
            p.type = EIO_MESSAGE;
            p.binary = true;
            p.data = bytes;
            p.len = (size_t)n;
        } else {
            eio_packet_decode_text(buf + start, end - start, &p);
        }
        int r = cb(ud, &p);
        if (r != 0) return r;
    }
    return 0;
}

size_t eio_packet_encoded_len_polling(const eio_packet_t *p)
{
    return 1 + (p->binary ? base64_encoded_len(p->len) : p->len);
}

size_t eio_packet_encode_polling(const eio_packet_t *p, char *out)
{
    if (p->binary) {
        out[0] = 'b';
        return 1 + base64_encode(p->data, p->len, out + 1);
    }
    out[0] = (char)('0' + p->type);
    if (p->len) memcpy(out + 1, p->data, p->len);
    return 1 + p->len;
}
