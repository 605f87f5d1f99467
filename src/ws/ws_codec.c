/* RFC 6455 server-side WebSocket codec: handshake key, frame encoding, client frame parsing. */
#include "ws/ws_codec.h"

#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/sha.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ---- handshake ---- */

void ws_accept_key(str_t client_key, char out[29])
{
    uint8_t md[SHA1_LEN];
    uint8_t tmp[128];
    size_t glen = sizeof(ws_guid) - 1;

    if (client_key.len <= sizeof(tmp) - glen) {
        /* The real case (a 24-char key): on the stack, no allocation. */
        if (client_key.len) memcpy(tmp, client_key.ptr, client_key.len);
        memcpy(tmp + client_key.len, ws_guid, glen);
        sha1(tmp, client_key.len + glen, md);
    } else {
        /* Oversized keys cannot pass ws_key_valid, but stay total rather than truncate. */
        uint8_t *big = malloc(client_key.len + glen);
        if (big) {
            memcpy(big, client_key.ptr, client_key.len);
            memcpy(big + client_key.len, ws_guid, glen);
            sha1(big, client_key.len + glen, md);
            free(big);
        } else {
            memset(md, 0, sizeof(md));
        }
    }
    out[base64_encode(md, sizeof(md), out)] = '\0'; /* 20 bytes: 28 characters */
}

bool ws_key_valid(str_t key)
{
    /* A canonical base64 encoding of 16 bytes (RFC 6455 4.1); the strict decoder also
     * refuses non-zero bits in the unused part of the last sextet. */
    return key.ptr && key.len == 24 && base64_decoded_len(key.ptr, key.len) == 16;
}

/* ---- encoding ---- */

size_t ws_frame_header(uint8_t out[10], bool fin, int opcode, uint64_t payload_len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (payload_len < 126) {
        out[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
    return 10;
}

size_t ws_close_frame(uint8_t out[127], int code, str_t reason)
{
    out[0] = 0x80 | WS_OP_CLOSE;
    if (code == 0) {
        out[1] = 0;
        return 2;
    }
    size_t rlen = reason.ptr ? reason.len : 0;
    if (rlen > WS_MAX_CONTROL_PAYLOAD - 2) {
        rlen = WS_MAX_CONTROL_PAYLOAD - 2;
        /* Never cut inside a character: the peer must reject a reason that is not UTF-8. */
        while (rlen > 0 && ((unsigned char)reason.ptr[rlen] & 0xc0) == 0x80) rlen--;
    }
    out[1] = (uint8_t)(2 + rlen);
    out[2] = (uint8_t)((unsigned)code >> 8);
    out[3] = (uint8_t)code;
    if (rlen) memcpy(out + 4, reason.ptr, rlen);
    return 4 + rlen;
}

/* ---- UTF-8 ---- */

/* State: 0 between characters; else bits 0-1 the continuation bytes still due, bits 8-15 and
 * 16-23 the range allowed for the next one (Unicode Table 3-7 narrows the second byte to rule
 * out overlongs, surrogates and code points above U+10FFFF). */
#define WS_UTF8_REJECT           0xffffffffu
#define WS_UTF8_ST(need, lo, hi) ((uint32_t)(need) | (uint32_t)(lo) << 8 | (uint32_t)(hi) << 16)

void ws_utf8_init(ws_utf8_t *u)
{
    u->state = 0;
}

bool ws_utf8_feed(ws_utf8_t *u, const uint8_t *p, size_t n)
{
    uint32_t st = u->state;
    size_t i = 0;

    if (st == WS_UTF8_REJECT) return false;
    while (i < n) {
        if (st == 0) {
            /* Chat text is mostly ASCII: skip it a word at a time. */
            while (n - i >= 8) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ull) break;
                i += 8;
            }
            if (i == n) break;
            uint8_t c = p[i++];
            if (c < 0x80) continue;
            if (c < 0xc2) goto reject; /* stray continuation, or overlong C0/C1 */
            if (c < 0xe0)
                st = WS_UTF8_ST(1, 0x80, 0xbf);
            else if (c == 0xe0)
                st = WS_UTF8_ST(2, 0xa0, 0xbf);
            else if (c == 0xed)
                st = WS_UTF8_ST(2, 0x80, 0x9f);
            else if (c < 0xf0)
                st = WS_UTF8_ST(2, 0x80, 0xbf);
            else if (c == 0xf0)
                st = WS_UTF8_ST(3, 0x90, 0xbf);
            else if (c < 0xf4)
                st = WS_UTF8_ST(3, 0x80, 0xbf);
            else if (c == 0xf4)
                st = WS_UTF8_ST(3, 0x80, 0x8f);
            else
                goto reject;
        } else {
            uint8_t c = p[i++];
            if (c < ((st >> 8) & 0xff) || c > ((st >> 16) & 0xff)) goto reject;
            uint32_t need = (st & 3) - 1;
            st = need ? WS_UTF8_ST(need, 0x80, 0xbf) : 0;
        }
    }
    u->state = st;
    return true;
reject:
    u->state = WS_UTF8_REJECT;
    return false;
}

bool ws_utf8_complete(const ws_utf8_t *u)
{
    return u->state == 0;
}

bool ws_utf8_valid(const uint8_t *p, size_t n)
{
    ws_utf8_t u;
    ws_utf8_init(&u);
    return ws_utf8_feed(&u, p, n) && ws_utf8_complete(&u);
}

/* ---- parsing ---- */

struct ws_frag {
    size_t len, cap;
    int opcode;     /* TEXT or BINARY */
    ws_utf8_t utf8; /* validation state of a text message */
    uint8_t data[]; /* cap bytes */
};

typedef struct {
    bool fin;
    int opcode;
    size_t hdr_len; /* including the 4-byte mask key */
    uint64_t payload_len;
} ws_hdr_t;

static bool ws_opcode_known(int op)
{
    return op == WS_OP_CONT || op == WS_OP_TEXT || op == WS_OP_BINARY || op == WS_OP_CLOSE ||
           op == WS_OP_PING || op == WS_OP_PONG;
}

/* Returns 1 once the length is known (h filled), 0 when more header bytes are needed, or a
 * negative close code. Each check runs as soon as its bytes are there, so a bad frame is refused
 * before the peer can make us wait for (or buffer) its payload. p is NULL for the stateless
 * ws_frame_size, which skips checks against the message in progress. */
static int ws_header_parse(const ws_parser_t *p, const uint8_t *b, size_t len, size_t max_message,
                           ws_hdr_t *h)
{
    if (len < 1) return 0;
    h->fin = b[0] & 0x80;
    h->opcode = b[0] & 0x0f;
    bool control = h->opcode & 0x08;
    if (b[0] & 0x70) return -WS_CLOSE_PROTOCOL; /* RSV1-3: no extension was negotiated */
    if (!ws_opcode_known(h->opcode)) return -WS_CLOSE_PROTOCOL;
    if (control && !h->fin) return -WS_CLOSE_PROTOCOL;
    if (p) {
        if (h->opcode == WS_OP_CONT && !p->frag) return -WS_CLOSE_PROTOCOL;
        if ((h->opcode == WS_OP_TEXT || h->opcode == WS_OP_BINARY) && p->frag)
            return -WS_CLOSE_PROTOCOL;
    }
    if (len < 2) return 0;
    if (!(b[1] & 0x80)) return -WS_CLOSE_PROTOCOL; /* clients must mask */

    uint64_t plen = b[1] & 0x7f;
    size_t need = 2;
    if (plen == 126) {
        if (control) return -WS_CLOSE_PROTOCOL;
        need = 4;
        if (len < need) return 0;
        plen = (uint64_t)b[2] << 8 | b[3];
    } else if (plen == 127) {
        if (control) return -WS_CLOSE_PROTOCOL;
        need = 10;
        if (len < need) return 0;
        plen = 0;
        for (int i = 0; i < 8; i++) plen = plen << 8 | b[2 + i];
        if (plen >> 63) return -WS_CLOSE_PROTOCOL;
    }
    if (!control) {
        if (plen > max_message) return -WS_CLOSE_TOO_BIG;
        if (p && h->opcode == WS_OP_CONT && plen > max_message - p->frag->len)
            return -WS_CLOSE_TOO_BIG;
    }
    /* Keeps header + payload representable in the int64_t results even with no limit. */
    if (plen > (uint64_t)INT64_MAX - WS_MAX_CLIENT_HEADER) return -WS_CLOSE_TOO_BIG;
    h->hdr_len = need + 4;
    h->payload_len = plen;
    return 1;
}

int64_t ws_frame_size(const uint8_t *buf, size_t len, size_t max_message)
{
    ws_hdr_t h;
    int r = ws_header_parse(NULL, buf, len, max_message, &h);
    if (r <= 0) return r;
    return (int64_t)(h.hdr_len + h.payload_len);
}

static void ws_unmask(uint8_t *d, size_t n, const uint8_t key[4])
{
    size_t i = 0;
    uint8_t k8[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    uint64_t kw;
    memcpy(&kw, k8, 8);
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, d + i, 8);
        w ^= kw;
        memcpy(d + i, &w, 8);
    }
    for (; i < n; i++) d[i] ^= key[i & 3];
}

void ws_parser_init(ws_parser_t *p, size_t max_message)
{
    memset(p, 0, sizeof(*p));
    p->max_message = max_message;
}

void ws_parser_free(ws_parser_t *p)
{
    free(p->frag);
    p->frag = NULL;
}

size_t ws_parser_buffered(const ws_parser_t *p)
{
    return p->frag ? p->frag->cap : 0;
}

/* The header check already bounds frag_len + n by max_message, so growth is capped there. */
static int ws_frag_append(ws_parser_t *p, const uint8_t *d, size_t n)
{
    ws_frag_t *f = p->frag;
    if (n == 0) return 0;
    size_t need = f->len + n;
    if (need > f->cap) {
        size_t cap = f->cap > SIZE_MAX / 2 ? SIZE_MAX : f->cap * 2;
        if (cap < need) cap = need;
        if (cap > p->max_message) cap = need > p->max_message ? need : p->max_message;
        if (cap > SIZE_MAX - sizeof *f) return -WS_CLOSE_INTERNAL;
        ws_frag_t *nf = realloc(f, sizeof *f + cap);
        if (!nf) return -WS_CLOSE_INTERNAL;
        p->frag = f = nf;
        f->cap = cap;
    }
    memcpy(f->data + f->len, d, n);
    f->len = need;
    return 0;
}

static bool ws_close_code_valid(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* Handles one complete, unmasked frame. Returns 0 to go on, 1 when a callback asked to stop, or a
 * negative close code. */
static int ws_frame_handle(ws_parser_t *p, const ws_parser_callbacks_t *cb, void *ud,
                           const ws_hdr_t *h, uint8_t *data, size_t n)
{
    switch (h->opcode) {
    case WS_OP_PING:
        return cb->on_ping && cb->on_ping(ud, data, n) ? 1 : 0;
    case WS_OP_PONG:
        return cb->on_pong && cb->on_pong(ud, data, n) ? 1 : 0;
    case WS_OP_CLOSE: {
        int code = WS_CLOSE_NO_STATUS;
        if (n == 1) return -WS_CLOSE_PROTOCOL;
        if (n >= 2) {
            code = data[0] << 8 | data[1];
            if (!ws_close_code_valid(code)) return -WS_CLOSE_PROTOCOL;
            if (!ws_utf8_valid(data + 2, n - 2)) return -WS_CLOSE_INVALID_DATA;
        }
        const uint8_t *reason = n >= 2 ? data + 2 : data;
        size_t rlen = n >= 2 ? n - 2 : 0;
        return cb->on_close && cb->on_close(ud, code, reason, rlen) ? 1 : 0;
    }
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (h->fin) {
            if (h->opcode == WS_OP_TEXT && !ws_utf8_valid(data, n)) return -WS_CLOSE_INVALID_DATA;
            return cb->on_message && cb->on_message(ud, h->opcode, data, n) ? 1 : 0;
        }
        p->frag = malloc(sizeof(ws_frag_t));
        if (!p->frag) return -WS_CLOSE_INTERNAL;
        p->frag->len = p->frag->cap = 0;
        p->frag->opcode = h->opcode;
        ws_utf8_init(&p->frag->utf8);
        break;
    default: /* WS_OP_CONT: the header check guarantees a message is in progress */
        break;
    }

    if (p->frag->opcode == WS_OP_TEXT && !ws_utf8_feed(&p->frag->utf8, data, n))
        return -WS_CLOSE_INVALID_DATA;
    int r = ws_frag_append(p, data, n);
    if (r < 0) return r;
    if (!h->fin) return 0;
    if (p->frag->opcode == WS_OP_TEXT && !ws_utf8_complete(&p->frag->utf8))
        return -WS_CLOSE_INVALID_DATA;

    /* Detach before the callback so the parser is idle (and free-able) while it runs, and so an
     * idle connection holds no buffer afterwards. */
    ws_frag_t *f = p->frag;
    p->frag = NULL;
    int stop = cb->on_message && cb->on_message(ud, f->opcode, f->data, f->len);
    free(f);
    return stop ? 1 : 0;
}

int64_t ws_parser_feed(ws_parser_t *p, const ws_parser_callbacks_t *cb, void *ud, uint8_t *buf,
                       size_t len)
{
    size_t pos = 0;

    for (;;) {
        ws_hdr_t h;
        size_t avail = len - pos;
        int r = ws_header_parse(p, buf + pos, avail, p->max_message, &h);
        if (r < 0) return r;
        if (r == 0 || avail < h.hdr_len || avail - h.hdr_len < h.payload_len) break;

        uint8_t *data = buf + pos + h.hdr_len;
        size_t n = (size_t)h.payload_len;
        ws_unmask(data, n, data - 4);
        pos += h.hdr_len + n;
        r = ws_frame_handle(p, cb, ud, &h, data, n);
        if (r < 0) return r;
        if (r > 0) break;
    }
    return (int64_t)pos;
}
