/* Engine.IO v4 packet and polling payload codec (pure: no I/O, no allocation). */
#include "eio/eio_packet.h"

#include <stdio.h>
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

/* One record of a polling payload, already validated: text, or 'b' (v3: 'b4') and base64
 * decoded in place. prefix is the length of that binary marker. */
static int decode_record(char *rec, size_t n, size_t prefix, eio_packet_t *p)
{
    if (rec[0] != 'b') return eio_packet_decode_text(rec, n, p) < 0 ? -1 : 0;
    uint8_t *bytes = (uint8_t *)rec + prefix;
    int64_t len = base64_decode(rec + prefix, n - prefix, bytes);
    if (len < 0) return -1;
    p->type = EIO_MESSAGE;
    p->binary = true;
    p->data = bytes;
    p->len = (size_t)len;
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
        if (decode_record(buf + start, end - start, 1, &p) < 0) return -1; /* validated above */
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

/* ---- Engine.IO v3 ---- */

size_t eio3_utf16_len(const char *s, size_t n)
{
    size_t units = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if ((b & 0xc0) != 0x80) units += b >= 0xf0 ? 2 : 1; /* a 4-byte sequence: a pair */
    }
    return units;
}

/* Walks strict UTF-8 from buf[pos] until `units` UTF-16 code units are covered; returns the
 * end offset, or -1 (invalid UTF-8, past len, or a surrogate pair cut by the length). */
static int64_t utf8_take_units(const char *buf, size_t len, size_t pos, size_t units)
{
    const unsigned char *s = (const unsigned char *)buf;
    while (units > 0) {
        if (pos >= len) return -1;
        unsigned char b = s[pos];
        size_t n;
        uint32_t cp;
        if (b < 0x80) {
            n = 1;
            cp = b;
        } else if (b >= 0xc2 && b <= 0xdf) {
            n = 2;
            cp = b & 0x1f;
        } else if (b >= 0xe0 && b <= 0xef) {
            n = 3;
            cp = b & 0x0f;
        } else if (b >= 0xf0 && b <= 0xf4) {
            n = 4;
            cp = b & 0x07;
        } else {
            return -1;
        }
        if (len - pos < n) return -1;
        for (size_t k = 1; k < n; k++) {
            if ((s[pos + k] & 0xc0) != 0x80) return -1;
            cp = (cp << 6) | (s[pos + k] & 0x3f);
        }
        if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return -1;
        size_t u = n == 4 ? 2 : 1;
        if (u > units) return -1;
        units -= u;
        pos += n;
    }
    return (int64_t)pos;
}

/* Parses "<digits>:" at pos; returns the offset after ':' and the length, or -1. */
static int64_t eio3_length_prefix(const char *buf, size_t len, size_t pos, size_t *units)
{
    size_t v = 0, digits = 0;
    while (pos < len && buf[pos] >= '0' && buf[pos] <= '9') {
        if (++digits > 10) return -1;
        v = v * 10 + (size_t)(buf[pos] - '0');
        pos++;
    }
    if (digits == 0 || pos >= len || buf[pos] != ':') return -1;
    *units = v;
    return (int64_t)pos + 1;
}

/* Validates one v3 packet seg[0..n). */
static bool eio3_packet_ok(const char *seg, size_t n)
{
    eio_packet_t p;
    if (n == 0) return false;
    if (seg[0] == 'b')
        return n >= 2 && seg[1] == '0' + EIO_MESSAGE && base64_decoded_len(seg + 2, n - 2) >= 0;
    return eio_packet_decode_text(seg, n, &p) == 0;
}

int eio3_payload_decode(char *buf, size_t len, eio_payload_cb cb, void *ud)
{
    size_t pos, units;
    int64_t start, end;

    if (len == 0) return -1;
    for (pos = 0; pos < len; pos = (size_t)end) {
        if ((start = eio3_length_prefix(buf, len, pos, &units)) < 0) return -1;
        if (units == 0 || (end = utf8_take_units(buf, len, (size_t)start, units)) < 0) return -1;
        if (!eio3_packet_ok(buf + start, (size_t)(end - start))) return -1;
    }
    for (pos = 0; pos < len; pos = (size_t)end) {
        eio_packet_t p;
        start = eio3_length_prefix(buf, len, pos, &units);
        end = utf8_take_units(buf, len, (size_t)start, units);
        if (decode_record(buf + start, (size_t)(end - start), 2, &p) < 0)
            return -1; /* validated above */
        int r = cb(ud, &p);
        if (r != 0) return r;
    }
    return 0;
}

/* One packet of a binary payload at pos: fills *p (unless NULL) and returns the offset after
 * it, or -1. */
static int64_t eio3_binary_packet(const uint8_t *buf, size_t len, size_t pos, eio_packet_t *p)
{
    if (pos >= len || buf[pos] > 1) return -1;
    bool binary = buf[pos++] == 1;
    size_t n = 0, digits = 0;
    while (pos < len && buf[pos] != 0xff) {
        if (buf[pos] > 9 || ++digits > 10) return -1;
        n = n * 10 + buf[pos++];
    }
    if (digits == 0 || pos >= len || n == 0 || len - pos - 1 < n) return -1;
    pos++; /* 0xff */
    const uint8_t *pkt = buf + pos;
    eio_packet_t out;
    if (binary) {
        if (pkt[0] != EIO_MESSAGE) return -1;
        out = (eio_packet_t){EIO_MESSAGE, true, pkt + 1, n - 1};
    } else {
        if (utf8_take_units((const char *)buf, pos + n, pos,
                            eio3_utf16_len((const char *)pkt, n)) != (int64_t)(pos + n) ||
            eio_packet_decode_text((const char *)pkt, n, &out) < 0)
            return -1;
    }
    if (p) *p = out;
    return (int64_t)(pos + n);
}

int eio3_payload_decode_binary(const uint8_t *buf, size_t len, eio_payload_cb cb, void *ud)
{
    int64_t end;
    if (len == 0) return -1;
    for (size_t pos = 0; pos < len; pos = (size_t)end)
        if ((end = eio3_binary_packet(buf, len, pos, NULL)) < 0) return -1;
    for (size_t pos = 0; pos < len; pos = (size_t)end) {
        eio_packet_t p;
        end = eio3_binary_packet(buf, len, pos, &p);
        int r = cb(ud, &p);
        if (r != 0) return r;
    }
    return 0;
}

static size_t eio3_packet_units(const eio_packet_t *p)
{
    return p->binary ? 2 + base64_encoded_len(p->len)
                     : 1 + eio3_utf16_len((const char *)p->data, p->len);
}

static size_t decimal_len(size_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

size_t eio3_packet_encoded_len_polling(const eio_packet_t *p)
{
    size_t units = eio3_packet_units(p);
    size_t body = p->binary ? units : 1 + p->len;
    return decimal_len(units) + 1 + body;
}

size_t eio3_packet_encode_polling(const eio_packet_t *p, char *out)
{
    size_t units = eio3_packet_units(p), n = decimal_len(units);
    char digits[24];
    snprintf(digits, sizeof digits, "%zu", units);
    memcpy(out, digits, n);
    out[n++] = ':';
    if (p->binary) {
        out[n++] = 'b';
        out[n++] = '0' + EIO_MESSAGE;
        return n + base64_encode(p->data, p->len, out + n);
    }
    out[n++] = (char)('0' + p->type);
    if (p->len) memcpy(out + n, p->data, p->len);
    return n + p->len;
}
