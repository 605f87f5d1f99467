/* Unit tests for the RFC 6455 codec: handshake, encoding, UTF-8, and every client-frame rule. */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "unit.h"
#include "ws/ws_codec.h"

static const uint8_t mask_key[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 5.7's key */

/* Length field forms: minimal, or forced to 16 / 64 bits to test non-minimal encodings. */
enum { LEN_MIN, LEN_16, LEN_64 };

/* Builds a client frame: b0 is the whole first byte (FIN, RSV, opcode). */
static size_t frame_ex(uint8_t *out, int b0, bool masked, int form, const void *payload, size_t n)
{
    size_t o = 0;
    uint8_t m = masked ? 0x80 : 0;
    out[o++] = (uint8_t)b0;
    if (form == LEN_MIN && n < 126) {
        out[o++] = m | (uint8_t)n;
    } else if (form != LEN_64 && n <= 0xffff) {
        out[o++] = m | 126;
        out[o++] = (uint8_t)(n >> 8);
        out[o++] = (uint8_t)n;
    } else {
        out[o++] = m | 127;
        for (int i = 0; i < 8; i++) out[o++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    if (masked) {
        memcpy(out + o, mask_key, 4);
        o += 4;
    }
    for (size_t i = 0; i < n; i++)
        out[o + i] = ((const uint8_t *)payload)[i] ^ (masked ? mask_key[i & 3] : 0);
    return o + n;
}

static size_t frame(uint8_t *out, bool fin, int op, const void *payload, size_t n)
{
    return frame_ex(out, (fin ? 0x80 : 0) | op, true, LEN_MIN, payload, n);
}

static size_t frame_s(uint8_t *out, bool fin, int op, const char *s)
{
    return frame(out, fin, op, s, strlen(s));
}

/* ---- recording callbacks ---- */

enum { EV_MSG = 1, EV_PING, EV_PONG, EV_CLOSE };

typedef struct {
    int type;
    int opcode; /* message opcode, or close code */
    size_t len;
    uint8_t data[256]; /* first bytes only */
    const uint8_t *ptr;
} ev_t;

typedef struct {
    ev_t ev[64];
    int n;
    int stop_after; /* stop once this many events were seen; 0: never */
    ws_parser_t *parser;
    size_t buffered_in_cb;
    bool free_in_cb;
} rec_t;

static int rec_push(rec_t *r, int type, int op, const uint8_t *d, size_t len)
{
    if (r->n < 64) {
        ev_t *e = &r->ev[r->n];
        e->type = type;
        e->opcode = op;
        e->len = len;
        e->ptr = d;
        memcpy(e->data, d, len < sizeof(e->data) ? len : sizeof(e->data));
    }
    r->n++;
    if (r->parser) r->buffered_in_cb = ws_parser_buffered(r->parser);
    if (r->free_in_cb && r->parser) ws_parser_free(r->parser);
    return r->stop_after && r->n >= r->stop_after;
}

static int on_message(void *ud, int op, uint8_t *d, size_t n)
{
    return rec_push(ud, EV_MSG, op, d, n);
}

static int on_ping(void *ud, uint8_t *d, size_t n)
{
    return rec_push(ud, EV_PING, 0, d, n);
}

static int on_pong(void *ud, uint8_t *d, size_t n)
{
    return rec_push(ud, EV_PONG, 0, d, n);
}

static int on_close(void *ud, int code, const uint8_t *d, size_t n)
{
    return rec_push(ud, EV_CLOSE, code, d, n);
}

static const ws_parser_callbacks_t cbs = {on_message, on_ping, on_pong, on_close};

/* One-shot parse with a fresh parser; the buffer is modified (unmasked) in place. */
static int64_t parse(uint8_t *buf, size_t len, size_t max, rec_t *r)
{
    ws_parser_t p;
    ws_parser_init(&p, max);
    memset(r, 0, sizeof(*r));
    int64_t n = ws_parser_feed(&p, &cbs, r, buf, len);
    ws_parser_free(&p);
    return n;
}

/* ---- handshake ---- */

static void test_accept_key(void)
{
    char out[29];
    ws_accept_key(STR_LIT("dGhlIHNhbXBsZSBub25jZQ=="), out);
    CHECK_MEM(out, strlen(out), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    /* Oversized key takes the streaming path; must equal SHA-1 of the plain concatenation. */
    char key[300], cat[400];
    uint8_t md[SHA_DIGEST_LENGTH];
    unsigned char expect[40];
    memset(key, 'k', sizeof(key));
    memcpy(cat, key, sizeof(key));
    memcpy(cat + sizeof(key), "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    SHA1((const unsigned char *)cat, sizeof(key) + 36, md);
    EVP_EncodeBlock(expect, md, sizeof(md));
    ws_accept_key(str_make(key, sizeof(key)), out);
    CHECK_MEM(out, strlen(out), (const char *)expect);

    /* Boundary of the stack path, and an empty key. */
    for (size_t klen = 90; klen <= 94; klen++) {
        memcpy(cat, key, klen);
        memcpy(cat + klen, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
        SHA1((const unsigned char *)cat, klen + 36, md);
        EVP_EncodeBlock(expect, md, sizeof(md));
        ws_accept_key(str_make(key, klen), out);
        CHECK_MEM(out, strlen(out), (const char *)expect);
    }
    ws_accept_key(STR_NULL, out);
    CHECK_EQ_INT(strlen(out), 28);
}

static void test_key_valid(void)
{
    CHECK(ws_key_valid(STR_LIT("dGhlIHNhbXBsZSBub25jZQ==")));
    CHECK(ws_key_valid(STR_LIT("AAAAAAAAAAAAAAAAAAAAAA==")));
    CHECK(ws_key_valid(STR_LIT("+/+/+/+/+/+/+/+/+/+/+w==")));
    CHECK(!ws_key_valid(STR_LIT("")));
    CHECK(!ws_key_valid(STR_NULL));
    CHECK(!ws_key_valid(STR_LIT("dGhlIHNhbXBsZSBub25jZQ=")));   /* 23 */
    CHECK(!ws_key_valid(STR_LIT("dGhlIHNhbXBsZSBub25jZQ==="))); /* 25 */
    CHECK(!ws_key_valid(STR_LIT("dGhlIHNhbXBsZSBub25jZQAA")));  /* no padding: 18 bytes */
    CHECK(!ws_key_valid(STR_LIT("dGhlIHNhbXBsZSBub25jZ===")));  /* 15 bytes */
    CHECK(!ws_key_valid(STR_LIT("dGhlIHNhbXBsZSBub25jZR==")));  /* non-zero padding bits */
    CHECK(!ws_key_valid(STR_LIT("dGhlIHNhbXBsZSBub25jZ-==")));  /* base64url is not base64 */
    CHECK(!ws_key_valid(STR_LIT("dGhlIHNhbXBsZSBub25j Q==")));  /* space */
    CHECK(!ws_key_valid(STR_LIT("dGhlIHNhbXBs=SBub25jZQ==")));  /* '=' inside */
    CHECK(!ws_key_valid(STR_LIT("dGhlIHNhbXBsZSBub25jZQ=A")));
    CHECK(!ws_key_valid(str_make("dGhlIHNhbXBsZSBub25jZQ==", 23)));
}

/* ---- encoding ---- */

static void test_frame_header(void)
{
    uint8_t h[10];
    CHECK_EQ_INT(ws_frame_header(h, true, WS_OP_TEXT, 0), 2);
    CHECK(h[0] == 0x81 && h[1] == 0);
    CHECK_EQ_INT(ws_frame_header(h, true, WS_OP_BINARY, 125), 2);
    CHECK(h[0] == 0x82 && h[1] == 125);
    CHECK_EQ_INT(ws_frame_header(h, true, WS_OP_TEXT, 126), 4);
    CHECK(h[0] == 0x81 && h[1] == 126 && h[2] == 0 && h[3] == 126);
    CHECK_EQ_INT(ws_frame_header(h, false, WS_OP_TEXT, 65535), 4);
    CHECK(h[0] == 0x01 && h[1] == 126 && h[2] == 0xff && h[3] == 0xff);
    CHECK_EQ_INT(ws_frame_header(h, true, WS_OP_BINARY, 65536), 10);
    static const uint8_t e64[10] = {0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0};
    CHECK(memcmp(h, e64, 10) == 0);
    CHECK_EQ_INT(ws_frame_header(h, false, WS_OP_CONT, 0x0102030405060708ull), 10);
    static const uint8_t e64b[10] = {0x00, 127, 1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(memcmp(h, e64b, 10) == 0);
    CHECK_EQ_INT(ws_frame_header(h, true, WS_OP_PING, 3), 2);
    CHECK(h[0] == 0x89 && h[1] == 3);
    CHECK_EQ_INT(ws_frame_header(h, true, WS_OP_PONG, 0), 2);
    CHECK(h[0] == 0x8a);
}

static void test_close_frame(void)
{
    uint8_t f[127];
    CHECK_EQ_INT(ws_close_frame(f, 0, STR_LIT("ignored")), 2);
    CHECK(f[0] == 0x88 && f[1] == 0);
    CHECK_EQ_INT(ws_close_frame(f, 1000, STR_NULL), 4);
    CHECK(f[0] == 0x88 && f[1] == 2 && f[2] == 0x03 && f[3] == 0xe8);
    CHECK_EQ_INT(ws_close_frame(f, 1009, STR_LIT("too big")), 11);
    CHECK(f[1] == 9 && f[2] == 0x03 && f[3] == 0xf1);
    CHECK_MEM(f + 4, 7, "too big");
    CHECK_EQ_INT(ws_close_frame(f, 4999, STR_LIT("")), 4);
    CHECK(f[2] == 0x13 && f[3] == 0x87);

    char lng[300];
    memset(lng, 'x', sizeof(lng));
    CHECK_EQ_INT(ws_close_frame(f, 1001, str_make(lng, sizeof(lng))), 127);
    CHECK_EQ_INT(f[1], 125);
    CHECK_EQ_INT(ws_close_frame(f, 1001, str_make(lng, 123)), 127);
    CHECK_EQ_INT(ws_close_frame(f, 1001, str_make(lng, 122)), 126);

    /* 2-byte characters: 123 would split one, so the reason backs off to 122 bytes. */
    char two[200];
    for (int i = 0; i < 200; i += 2) two[i] = (char)0xc3, two[i + 1] = (char)0xa9;
    size_t n = ws_close_frame(f, 1000, str_make(two, sizeof(two)));
    CHECK_EQ_INT(n, 126);
    CHECK_EQ_INT(f[1], 124);
    CHECK(ws_utf8_valid(f + 4, n - 4));
    /* 4-byte characters: 123 = 30*4 + 3, so back off to 120. */
    char four[200];
    for (int i = 0; i < 200; i += 4) memcpy(four + i, "\xf0\x9f\x98\x80", 4);
    n = ws_close_frame(f, 1000, str_make(four, sizeof(four)));
    CHECK_EQ_INT(n, 124);
    CHECK(ws_utf8_valid(f + 4, n - 4));

    /* What we encode, a client-side parser accepts: mask it and feed it back. */
    uint8_t buf[200];
    rec_t r;
    n = ws_close_frame(f, 1000, STR_LIT("bye"));
    size_t fl = frame(buf, true, WS_OP_CLOSE, f + 2, n - 2);
    CHECK_EQ_INT(parse(buf, fl, 100, &r), fl);
    CHECK(r.n == 1 && r.ev[0].type == EV_CLOSE && r.ev[0].opcode == 1000);
    CHECK_MEM(r.ev[0].data, r.ev[0].len, "bye");
}

/* ---- UTF-8 ---- */

static bool u8(const char *s)
{
    return ws_utf8_valid((const uint8_t *)s, strlen(s));
}

static void test_utf8(void)
{
    CHECK(ws_utf8_valid(NULL, 0));
    CHECK(u8("hello, world"));
    CHECK(u8("\x7f"));
    CHECK(u8("\xc2\x80"));                                     /* U+0080 */
    CHECK(u8("\xdf\xbf"));                                     /* U+07FF */
    CHECK(u8("\xe0\xa0\x80"));                                 /* U+0800 */
    CHECK(u8("\xe2\x82\xac"));                                 /* euro */
    CHECK(u8("\xed\x9f\xbf"));                                 /* U+D7FF, just below surrogates */
    CHECK(u8("\xee\x80\x80"));                                 /* U+E000, just above */
    CHECK(u8("\xef\xbf\xbf"));                                 /* U+FFFF */
    CHECK(u8("\xf0\x90\x80\x80"));                             /* U+10000 */
    CHECK(u8("\xf4\x8f\xbf\xbf"));                             /* U+10FFFF */
    CHECK(u8("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")); /* kosme */

    CHECK(!u8("\x80")); /* stray continuation */
    CHECK(!u8("\xbf"));
    CHECK(!u8("\xc0\x80"));     /* overlong NUL */
    CHECK(!u8("\xc1\xbf"));     /* overlong */
    CHECK(!u8("\xe0\x80\x80")); /* overlong 3-byte */
    CHECK(!u8("\xe0\x9f\xbf"));
    CHECK(!u8("\xf0\x80\x80\x80")); /* overlong 4-byte */
    CHECK(!u8("\xf0\x8f\xbf\xbf"));
    CHECK(!u8("\xed\xa0\x80"));     /* U+D800 */
    CHECK(!u8("\xed\xbf\xbf"));     /* U+DFFF */
    CHECK(!u8("\xf4\x90\x80\x80")); /* U+110000 */
    CHECK(!u8("\xf5\x80\x80\x80"));
    CHECK(!u8("\xf8\x88\x80\x80\x80")); /* 5-byte form */
    CHECK(!u8("\xfe"));
    CHECK(!u8("\xff"));
    CHECK(!u8("\xc2")); /* truncated at end */
    CHECK(!u8("\xe2\x82"));
    CHECK(!u8("\xf0\x9f\x98"));
    CHECK(!u8("\xc2\x41")); /* lead byte then ASCII */
    CHECK(!u8("\xe2\x82\x41"));
    CHECK(!u8("\xe2\xc2\xac"));

    /* The word-at-a-time ASCII path must see a bad byte at any offset. */
    char buf[64];
    for (int pos = 0; pos < 40; pos++) {
        memset(buf, 'a', sizeof(buf));
        buf[pos] = (char)0xff;
        CHECK(!ws_utf8_valid((const uint8_t *)buf, 40));
        buf[pos] = (char)0xc3;
        buf[pos + 1] = (char)0xa9;
        CHECK(ws_utf8_valid((const uint8_t *)buf, 41));
        CHECK(ws_utf8_valid((const uint8_t *)buf, (size_t)pos + 2));
        CHECK(!ws_utf8_valid((const uint8_t *)buf, (size_t)pos + 1));
    }

    /* Incremental: split at every byte, the verdict is the same. */
    const char *s = "a\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9z";
    size_t n = strlen(s);
    for (size_t cut = 0; cut <= n; cut++) {
        ws_utf8_t u;
        ws_utf8_init(&u);
        CHECK(ws_utf8_feed(&u, (const uint8_t *)s, cut));
        CHECK(ws_utf8_feed(&u, (const uint8_t *)s + cut, n - cut));
        CHECK(ws_utf8_complete(&u));
    }
    ws_utf8_t u;
    ws_utf8_init(&u);
    for (size_t i = 0; i < n; i++) CHECK(ws_utf8_feed(&u, (const uint8_t *)s + i, 1));
    CHECK(ws_utf8_complete(&u));

    /* Mid-sequence is not complete; rejection is sticky. */
    ws_utf8_init(&u);
    CHECK(ws_utf8_feed(&u, (const uint8_t *)"\xf0\x9f", 2));
    CHECK(!ws_utf8_complete(&u));
    CHECK(!ws_utf8_feed(&u, (const uint8_t *)"A", 1));
    CHECK(!ws_utf8_feed(&u, (const uint8_t *)"A", 1));
    CHECK(!ws_utf8_feed(&u, NULL, 0));
    CHECK(!ws_utf8_complete(&u));
}

/* ---- parser: happy paths ---- */

static void test_rfc_examples(void)
{
    /* RFC 6455 5.7: a masked "Hello". */
    uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    rec_t r;
    CHECK_EQ_INT(parse(hello, sizeof(hello), 1024, &r), sizeof(hello));
    CHECK_EQ_INT(r.n, 1);
    CHECK_EQ_INT(r.ev[0].type, EV_MSG);
    CHECK_EQ_INT(r.ev[0].opcode, WS_OP_TEXT);
    CHECK_MEM(r.ev[0].data, r.ev[0].len, "Hello");
    CHECK(r.ev[0].ptr == hello + 6); /* zero copy: unmasked in place */
    CHECK_MEM(hello + 6, 5, "Hello");

    /* RFC 6455 5.7: a masked ping "Hello" (the RFC shows it unmasked; clients must mask). */
    uint8_t buf[64];
    size_t n = frame_s(buf, true, WS_OP_PING, "Hello");
    CHECK_EQ_INT(parse(buf, n, 1024, &r), n);
    CHECK(r.n == 1 && r.ev[0].type == EV_PING);
    CHECK_MEM(r.ev[0].data, r.ev[0].len, "Hello");
    n = frame_s(buf, true, WS_OP_PONG, "Hello");
    CHECK_EQ_INT(parse(buf, n, 1024, &r), n);
    CHECK(r.n == 1 && r.ev[0].type == EV_PONG);
    CHECK_MEM(r.ev[0].data, r.ev[0].len, "Hello");
}

static void test_empty_messages(void)
{
    uint8_t buf[64];
    rec_t r;
    size_t n = frame(buf, true, WS_OP_TEXT, "", 0);
    CHECK_EQ_INT(parse(buf, n, 1024, &r), n);
    CHECK(r.n == 1 && r.ev[0].type == EV_MSG && r.ev[0].opcode == WS_OP_TEXT && r.ev[0].len == 0);
    CHECK(r.ev[0].ptr != NULL);
    n = frame(buf, true, WS_OP_BINARY, "", 0);
    CHECK_EQ_INT(parse(buf, n, 0, &r), n); /* even with max_message 0 */
    CHECK(r.n == 1 && r.ev[0].opcode == WS_OP_BINARY && r.ev[0].len == 0);

    /* Empty fragments making an empty message. */
    n = frame(buf, false, WS_OP_TEXT, "", 0);
    n += frame(buf + n, false, WS_OP_CONT, "", 0);
    n += frame(buf + n, true, WS_OP_CONT, "", 0);
    CHECK_EQ_INT(parse(buf, n, 1024, &r), n);
    CHECK(r.n == 1 && r.ev[0].opcode == WS_OP_TEXT && r.ev[0].len == 0 && r.ev[0].ptr != NULL);

    n = frame(buf, true, WS_OP_PING, "", 0);
    n += frame(buf + n, true, WS_OP_PONG, "", 0);
    CHECK_EQ_INT(parse(buf, n, 1024, &r), n);
    CHECK(r.n == 2 && r.ev[0].len == 0 && r.ev[1].len == 0);
}

static void test_lengths(void)
{
    /* 16- and 64-bit length forms, unfragmented and zero copy. */
    size_t sizes[] = {125, 126, 127, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t len = sizes[i];
        uint8_t *pl = malloc(len), *buf = malloc(len + 14);
        for (size_t j = 0; j < len; j++) pl[j] = (uint8_t)(j * 7);
        size_t n = frame(buf, true, WS_OP_BINARY, pl, len);
        CHECK_EQ_INT(ws_frame_size(buf, n, len), n);
        rec_t r;
        CHECK_EQ_INT(parse(buf, n, len, &r), n);
        CHECK(r.n == 1 && r.ev[0].len == len && r.ev[0].ptr == buf + n - len);
        CHECK(memcmp(buf + n - len, pl, len) == 0);
        /* One byte short: nothing consumed, no event. */
        n = frame(buf, true, WS_OP_BINARY, pl, len);
        CHECK_EQ_INT(parse(buf, n - 1, len, &r), 0);
        CHECK_EQ_INT(r.n, 0);
        free(pl);
        free(buf);
    }

    /* Non-minimal length encodings are accepted (RFC 6455 only binds senders). */
    uint8_t buf[64];
    rec_t r;
    size_t n = frame_ex(buf, 0x81, true, LEN_16, "hi", 2);
    CHECK_EQ_INT(parse(buf, n, 100, &r), n);
    CHECK(r.n == 1);
    CHECK_MEM(r.ev[0].data, r.ev[0].len, "hi");
    n = frame_ex(buf, 0x82, true, LEN_64, "hi", 2);
    CHECK_EQ_INT(parse(buf, n, 100, &r), n);
    CHECK(r.n == 1);
    CHECK_MEM(r.ev[0].data, r.ev[0].len, "hi");
}

static void test_control_max(void)
{
    /* A 125-byte ping is fine even when max_message is small: it is not a message. */
    uint8_t pl[125], buf[200];
    memset(pl, 'p', sizeof(pl));
    rec_t r;
    size_t n = frame(buf, true, WS_OP_PING, pl, 125);
    CHECK_EQ_INT(parse(buf, n, 10, &r), n);
    CHECK(r.n == 1 && r.ev[0].type == EV_PING && r.ev[0].len == 125);
    n = frame(buf, true, WS_OP_PONG, pl, 125);
    CHECK_EQ_INT(parse(buf, n, 10, &r), n);
    CHECK(r.n == 1 && r.ev[0].len == 125);
    uint8_t cl[125];
    cl[0] = 0x03, cl[1] = 0xe8;
    memset(cl + 2, 'r', 123);
    n = frame(buf, true, WS_OP_CLOSE, cl, 125);
    CHECK_EQ_INT(parse(buf, n, 10, &r), n);
    CHECK(r.n == 1 && r.ev[0].type == EV_CLOSE && r.ev[0].len == 123);
}

/* ---- parser: rule violations ---- */

static void test_unmasked(void)
{
    uint8_t buf[64];
    rec_t r;
    size_t n = frame_ex(buf, 0x81, false, LEN_MIN, "hi", 2);
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_PROTOCOL);
    CHECK_EQ_INT(r.n, 0);
    n = frame_ex(buf, 0x89, false, LEN_MIN, "", 0);
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_PROTOCOL);
    /* Detected from the two first bytes alone. */
    n = frame_ex(buf, 0x82, false, LEN_64, "hi", 2);
    CHECK_EQ_INT(parse(buf, 2, 100, &r), -WS_CLOSE_PROTOCOL);
    CHECK_EQ_INT(ws_frame_size(buf, 2, 100), -WS_CLOSE_PROTOCOL);
}

static void test_rsv_bits(void)
{
    int rsv[] = {0x40, 0x20, 0x10, 0x70};
    for (int i = 0; i < 4; i++) {
        uint8_t buf[64];
        rec_t r;
        size_t n = frame(buf, true, WS_OP_TEXT, "x", 1);
        buf[0] |= (uint8_t)rsv[i];
        CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_PROTOCOL);
        CHECK_EQ_INT(parse(buf, 1, 100, &r), -WS_CLOSE_PROTOCOL); /* from the first byte */
        CHECK_EQ_INT(ws_frame_size(buf, 1, 100), -WS_CLOSE_PROTOCOL);
        n = frame(buf, true, WS_OP_PING, "", 0);
        buf[0] |= (uint8_t)rsv[i];
        CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_PROTOCOL);
    }
}

static void test_unknown_opcodes(void)
{
    for (int op = 0; op < 16; op++) {
        bool known = op <= 2 || (op >= 8 && op <= 10);
        uint8_t buf[64];
        rec_t r;
        size_t n = frame(buf, true, op, "", 0);
        int64_t got = ws_frame_size(buf, n, 100);
        if (known) {
            CHECK_EQ_INT(got, n);
        } else {
            CHECK_EQ_INT(got, -WS_CLOSE_PROTOCOL);
            CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_PROTOCOL);
            CHECK_EQ_INT(parse(buf, 1, 100, &r), -WS_CLOSE_PROTOCOL);
            n = frame(buf, false, op, "", 0);
            CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_PROTOCOL);
        }
    }
}

static void test_control_rules(void)
{
    int ops[] = {WS_OP_PING, WS_OP_PONG, WS_OP_CLOSE};
    uint8_t pl[200];
    memset(pl, 'a', sizeof(pl));
    pl[0] = 0x03, pl[1] = 0xe8; /* keep close payloads well-formed */
    for (int i = 0; i < 3; i++) {
        uint8_t buf[256];
        rec_t r;
        /* FIN must be set. */
        size_t n = frame(buf, false, ops[i], "", 0);
        CHECK_EQ_INT(parse(buf, n, 1000, &r), -WS_CLOSE_PROTOCOL);
        CHECK_EQ_INT(parse(buf, 1, 1000, &r), -WS_CLOSE_PROTOCOL);
        /* Payload <= 125, however its length is written. */
        n = frame(buf, true, ops[i], pl, 126);
        CHECK_EQ_INT(parse(buf, n, 1000, &r), -WS_CLOSE_PROTOCOL);
        CHECK_EQ_INT(parse(buf, 2, 1000, &r), -WS_CLOSE_PROTOCOL);
        n = frame_ex(buf, 0x80 | ops[i], true, LEN_16, pl, 5);
        CHECK_EQ_INT(parse(buf, n, 1000, &r), -WS_CLOSE_PROTOCOL);
        n = frame_ex(buf, 0x80 | ops[i], true, LEN_64, pl, 5);
        CHECK_EQ_INT(parse(buf, n, 1000, &r), -WS_CLOSE_PROTOCOL);
        CHECK_EQ_INT(ws_frame_size(buf, 2, 1000), -WS_CLOSE_PROTOCOL);
        n = frame(buf, true, ops[i], pl, 125);
        CHECK_EQ_INT(parse(buf, n, 1000, &r), n);
        CHECK_EQ_INT(r.n, 1);
    }
}

static void test_continuation_rules(void)
{
    uint8_t buf[256];
    rec_t r;
    /* Continuation with nothing in progress, FIN or not: refused from the first byte. */
    size_t n = frame_s(buf, true, WS_OP_CONT, "x");
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_PROTOCOL);
    CHECK_EQ_INT(parse(buf, 1, 100, &r), -WS_CLOSE_PROTOCOL);
    n = frame_s(buf, false, WS_OP_CONT, "x");
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_PROTOCOL);

    /* After a completed fragmented message, a continuation is again an error. */
    n = frame_s(buf, false, WS_OP_TEXT, "a");
    n += frame_s(buf + n, true, WS_OP_CONT, "b");
    size_t ok = n;
    n += frame_s(buf + n, true, WS_OP_CONT, "c");
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_PROTOCOL);
    CHECK_EQ_INT(r.n, 1); /* the good message went out first */
    CHECK_MEM(r.ev[0].data, r.ev[0].len, "ab");
    (void)ok;

    /* A new data frame while a fragmented message is in progress, FIN or not. */
    int ops[] = {WS_OP_TEXT, WS_OP_BINARY};
    for (int a = 0; a < 2; a++) {
        for (int b = 0; b < 2; b++) {
            for (int fin = 0; fin < 2; fin++) {
                n = frame_s(buf, false, ops[a], "a");
                size_t first = n;
                n += frame_s(buf + n, fin, ops[b], "b");
                CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_PROTOCOL);
                CHECK_EQ_INT(parse(buf, first + 1, 100, &r), -WS_CLOSE_PROTOCOL);
                CHECK_EQ_INT(r.n, 0);
            }
        }
    }
}

static void test_length_top_bit(void)
{
    uint8_t buf[16] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    rec_t r;
    CHECK_EQ_INT(parse(buf, 14, SIZE_MAX, &r), -WS_CLOSE_PROTOCOL);
    CHECK_EQ_INT(parse(buf, 10, SIZE_MAX, &r), -WS_CLOSE_PROTOCOL);
    CHECK_EQ_INT(ws_frame_size(buf, 10, SIZE_MAX), -WS_CLOSE_PROTOCOL);
    /* Not yet knowable from 9 bytes. */
    CHECK_EQ_INT(parse(buf, 9, SIZE_MAX, &r), 0);
    CHECK_EQ_INT(ws_frame_size(buf, 9, SIZE_MAX), 0);
    /* The largest legal length with no limit: a size the caller can still represent. */
    buf[2] = 0x7f;
    memset(buf + 3, 0xff, 7);
    CHECK_EQ_INT(ws_frame_size(buf, 10, SIZE_MAX), -WS_CLOSE_TOO_BIG);
    memset(buf + 3, 0, 7);
    buf[2] = 0x00;
    buf[3] = 0x01;
    CHECK_EQ_INT(ws_frame_size(buf, 10, SIZE_MAX), 14 + ((int64_t)1 << 48));
}

static void test_too_big(void)
{
    uint8_t buf[300];
    uint8_t pl[200];
    memset(pl, 'z', sizeof(pl));
    rec_t r;
    /* A single frame over the limit: refused from the header, the payload never sent. */
    size_t n = frame(buf, true, WS_OP_TEXT, pl, 101);
    CHECK_EQ_INT(parse(buf, 2, 100, &r), -WS_CLOSE_TOO_BIG);
    CHECK_EQ_INT(ws_frame_size(buf, 2, 100), -WS_CLOSE_TOO_BIG);
    CHECK_EQ_INT(parse(buf, n, 101, &r), n);
    n = frame(buf, true, WS_OP_BINARY, pl, 200); /* 16-bit form */
    CHECK_EQ_INT(parse(buf, 4, 199, &r), -WS_CLOSE_TOO_BIG);
    CHECK_EQ_INT(parse(buf, 3, 199, &r), 0);
    uint8_t big[10] = {0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0}; /* 4 GiB, 64-bit form */
    CHECK_EQ_INT(parse(big, 10, 1 << 20, &r), -WS_CLOSE_TOO_BIG);
    CHECK_EQ_INT(ws_frame_size(big, 10, 1 << 20), -WS_CLOSE_TOO_BIG);
    /* A first fragment alone over the limit. */
    n = frame(buf, false, WS_OP_TEXT, pl, 101);
    CHECK_EQ_INT(parse(buf, 2, 100, &r), -WS_CLOSE_TOO_BIG);

    /* The sum of fragments: 60 + 40 fits 100 exactly; one more byte is refused from the
     * header of the fragment that would overflow, before its payload. */
    n = frame(buf, false, WS_OP_BINARY, pl, 60);
    n += frame(buf + n, true, WS_OP_CONT, pl, 40);
    CHECK_EQ_INT(parse(buf, n, 100, &r), n);
    CHECK(r.n == 1 && r.ev[0].len == 100);
    n = frame(buf, false, WS_OP_BINARY, pl, 60);
    size_t first = n;
    n += frame(buf + n, false, WS_OP_CONT, pl, 30);
    size_t second = n;
    n += frame(buf + n, true, WS_OP_CONT, pl, 11);
    CHECK_EQ_INT(parse(buf, second + 2, 100, &r), -WS_CLOSE_TOO_BIG);
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_TOO_BIG);
    CHECK_EQ_INT(r.n, 0);
    /* ws_frame_size is stateless: it judges the frame alone. */
    CHECK_EQ_INT(ws_frame_size(buf + second, n - second, 100), n - second);
    (void)first;
    /* Text the same way, with pings between fragments not counting. */
    n = frame(buf, false, WS_OP_TEXT, pl, 50);
    n += frame(buf + n, true, WS_OP_PING, pl, 100);
    n += frame(buf + n, true, WS_OP_CONT, pl, 51);
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_TOO_BIG);
    CHECK(r.n == 1 && r.ev[0].type == EV_PING);
}

static void test_invalid_text(void)
{
    uint8_t buf[256];
    rec_t r;
    const char *bad[] = {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ab\xe2\x82", "\xff"};
    for (int i = 0; i < 5; i++) {
        size_t n = frame_s(buf, true, WS_OP_TEXT, bad[i]);
        CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_INVALID_DATA);
        CHECK_EQ_INT(r.n, 0);
        /* Binary carries anything. */
        n = frame_s(buf, true, WS_OP_BINARY, bad[i]);
        CHECK_EQ_INT(parse(buf, n, 100, &r), n);
        CHECK_EQ_INT(r.n, 1);
    }

    /* Fail fast: a bad first fragment is refused before the message's end arrives. */
    size_t n = frame_s(buf, false, WS_OP_TEXT, "ok \xc0\xaf");
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_INVALID_DATA);
    /* A surrogate completed in the second fragment. */
    n = frame_s(buf, false, WS_OP_TEXT, "x\xed");
    size_t first = n;
    n += frame_s(buf + n, false, WS_OP_CONT, "\xa0\x80");
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_INVALID_DATA);
    {
        ws_parser_t p;
        ws_parser_init(&p, 100);
        memset(&r, 0, sizeof(r));
        n = frame_s(buf, false, WS_OP_TEXT, "x\xed");
        n += frame_s(buf + n, false, WS_OP_CONT, "\xa0\x80");
        CHECK_EQ_INT(ws_parser_feed(&p, &cbs, &r, buf, first), first);
        CHECK_EQ_INT(ws_parser_feed(&p, &cbs, &r, buf + first, n - first), -WS_CLOSE_INVALID_DATA);
        ws_parser_free(&p);
    }
    /* Truncated at the end of the message: each fragment is fine so far, the whole is not. */
    n = frame_s(buf, false, WS_OP_TEXT, "abc");
    n += frame_s(buf + n, true, WS_OP_CONT, "\xf0\x9f\x98");
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_INVALID_DATA);
    /* Overlong and >U+10FFFF spread over fragments. */
    n = frame_s(buf, false, WS_OP_TEXT, "\xe0");
    n += frame_s(buf + n, true, WS_OP_CONT, "\x80\x80");
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_INVALID_DATA);
    n = frame_s(buf, false, WS_OP_TEXT, "\xf4");
    n += frame_s(buf + n, true, WS_OP_CONT, "\x90\x80\x80");
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_INVALID_DATA);
    /* Binary fragments are never checked. */
    n = frame_s(buf, false, WS_OP_BINARY, "\xf4");
    n += frame_s(buf + n, true, WS_OP_CONT, "\x90\x80\x80");
    CHECK_EQ_INT(parse(buf, n, 100, &r), n);
}

static void test_utf8_split_fragments(void)
{
    /* A character split across fragments, at every possible cut, with a ping in between. */
    const char *msg = "\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9!";
    size_t ml = strlen(msg);
    for (size_t cut = 0; cut <= ml; cut++) {
        uint8_t buf[128];
        rec_t r;
        size_t n = frame(buf, false, WS_OP_TEXT, msg, cut);
        n += frame_s(buf + n, true, WS_OP_PING, "p");
        n += frame(buf + n, true, WS_OP_CONT, msg + cut, ml - cut);
        CHECK_EQ_INT(parse(buf, n, 100, &r), n);
        CHECK_EQ_INT(r.n, 2);
        CHECK_EQ_INT(r.ev[0].type, EV_PING);
        CHECK_EQ_INT(r.ev[1].type, EV_MSG);
        CHECK_EQ_INT(r.ev[1].opcode, WS_OP_TEXT);
        CHECK_MEM(r.ev[1].data, r.ev[1].len, msg);
    }
}

static void test_close_payloads(void)
{
    uint8_t buf[256];
    rec_t r;
    /* Empty: 1005 with no reason. */
    size_t n = frame(buf, true, WS_OP_CLOSE, "", 0);
    CHECK_EQ_INT(parse(buf, n, 100, &r), n);
    CHECK(r.n == 1 && r.ev[0].type == EV_CLOSE && r.ev[0].opcode == 1005 && r.ev[0].len == 0);
    /* One byte: no room for a code. */
    n = frame(buf, true, WS_OP_CLOSE, "\x03", 1);
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_PROTOCOL);
    CHECK_EQ_INT(r.n, 0);

    int good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                  1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    int bad[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint8_t pl[2] = {(uint8_t)(good[i] >> 8), (uint8_t)good[i]};
        n = frame(buf, true, WS_OP_CLOSE, pl, 2);
        CHECK_EQ_INT(parse(buf, n, 100, &r), n);
        CHECK(r.n == 1 && r.ev[0].opcode == good[i] && r.ev[0].len == 0);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t pl[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
        n = frame(buf, true, WS_OP_CLOSE, pl, 2);
        CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_PROTOCOL);
        CHECK_EQ_INT(r.n, 0);
    }
    /* Reason: must be UTF-8; a bad code wins over a bad reason. */
    n = frame(buf, true, WS_OP_CLOSE, "\x03\xe8gone \xe2\x82\xac", 10);
    CHECK_EQ_INT(parse(buf, n, 100, &r), n);
    CHECK(r.n == 1 && r.ev[0].opcode == 1000);
    CHECK_MEM(r.ev[0].data, r.ev[0].len, "gone \xe2\x82\xac");
    n = frame(buf, true, WS_OP_CLOSE, "\x03\xe8\xce\xba\xe1\xbd", 6);
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_INVALID_DATA);
    n = frame(buf, true, WS_OP_CLOSE, "\x03\xe8\xed\xa0\x80", 5);
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_INVALID_DATA);
    n = frame(buf, true, WS_OP_CLOSE, "\x03\xec\xff", 3);
    CHECK_EQ_INT(parse(buf, n, 100, &r), -WS_CLOSE_PROTOCOL);
    CHECK_EQ_INT(r.n, 0);
}

/* ---- parser: streams ---- */

static void test_fragmented_with_ping(void)
{
    uint8_t buf[256];
    rec_t r;
    ws_parser_t p;
    ws_parser_init(&p, 1000);
    memset(&r, 0, sizeof(r));
    r.parser = &p;

    size_t n = frame_s(buf, false, WS_OP_TEXT, "Hel");
    size_t a = n;
    n += frame_s(buf + n, true, WS_OP_PING, "are you there");
    size_t b = n;
    n += frame_s(buf + n, false, WS_OP_CONT, "lo, ");
    n += frame_s(buf + n, true, WS_OP_PONG, "");
    n += frame_s(buf + n, true, WS_OP_CONT, "world");

    CHECK_EQ_INT(ws_parser_buffered(&p), 0);
    CHECK_EQ_INT(ws_parser_feed(&p, &cbs, &r, buf, a), a);
    CHECK(ws_parser_buffered(&p) > 0); /* a message in progress holds a buffer */
    CHECK_EQ_INT(r.n, 0);
    CHECK_EQ_INT(ws_parser_feed(&p, &cbs, &r, buf + a, b - a), b - a);
    CHECK_EQ_INT(r.n, 1);
    CHECK_EQ_INT(r.ev[0].type, EV_PING); /* delivered at once, mid-message */
    CHECK_EQ_INT(r.buffered_in_cb, 3);
    CHECK_MEM(r.ev[0].data, r.ev[0].len, "are you there");
    CHECK_EQ_INT(ws_parser_feed(&p, &cbs, &r, buf + b, n - b), n - b);
    CHECK_EQ_INT(r.n, 3);
    CHECK_EQ_INT(r.ev[1].type, EV_PONG);
    CHECK_EQ_INT(r.ev[2].type, EV_MSG);
    CHECK_EQ_INT(r.ev[2].opcode, WS_OP_TEXT);
    CHECK_MEM(r.ev[2].data, r.ev[2].len, "Hello, world");
    /* Idle again: no buffer, even during the delivering callback. */
    CHECK_EQ_INT(r.buffered_in_cb, 0);
    CHECK_EQ_INT(ws_parser_buffered(&p), 0);
    CHECK(p.frag == NULL);

    /* And the parser takes a new fragmented message afterwards. */
    n = frame_s(buf, false, WS_OP_BINARY, "12");
    n += frame_s(buf + n, true, WS_OP_CONT, "34");
    CHECK_EQ_INT(ws_parser_feed(&p, &cbs, &r, buf, n), n);
    CHECK_EQ_INT(r.n, 4);
    CHECK_EQ_INT(r.ev[3].opcode, WS_OP_BINARY);
    CHECK_MEM(r.ev[3].data, r.ev[3].len, "1234");
    CHECK_EQ_INT(ws_parser_buffered(&p), 0);
    ws_parser_free(&p);
    ws_parser_free(&p); /* twice is fine */
}

/* A stream exercising every kind of frame; its expected events are checked in test_stream. */
static size_t build_stream(uint8_t *buf)
{
    static uint8_t big[300];
    for (size_t i = 0; i < sizeof(big); i++) big[i] = (uint8_t)i;
    size_t n = 0;
    n += frame_s(buf + n, true, WS_OP_TEXT, "first");
    n += frame(buf + n, true, WS_OP_BINARY, big, sizeof(big)); /* 16-bit length */
    n += frame_s(buf + n, false, WS_OP_TEXT, "fr\xc3");
    n += frame_s(buf + n, true, WS_OP_PING, "p1");
    n += frame_s(buf + n, false, WS_OP_CONT, "\xa9g ");
    n += frame_s(buf + n, true, WS_OP_CONT, "end");
    n += frame(buf + n, true, WS_OP_TEXT, "", 0);
    n += frame_s(buf + n, true, WS_OP_PONG, "p2");
    n += frame_s(buf + n, true, WS_OP_CLOSE,
                 "\x03\xe8"
                 "bye");
    return n;
}

static void check_stream_events(const rec_t *r)
{
    CHECK_EQ_INT(r->n, 7);
    CHECK(r->ev[0].type == EV_MSG && r->ev[0].opcode == WS_OP_TEXT);
    CHECK_MEM(r->ev[0].data, r->ev[0].len, "first");
    CHECK(r->ev[1].type == EV_MSG && r->ev[1].opcode == WS_OP_BINARY && r->ev[1].len == 300);
    CHECK(r->ev[1].data[0] == 0 && r->ev[1].data[255] == 255);
    CHECK(r->ev[2].type == EV_PING);
    CHECK_MEM(r->ev[2].data, r->ev[2].len, "p1");
    CHECK(r->ev[3].type == EV_MSG && r->ev[3].opcode == WS_OP_TEXT);
    CHECK_MEM(r->ev[3].data, r->ev[3].len, "fr\xc3\xa9g end");
    CHECK(r->ev[4].type == EV_MSG && r->ev[4].len == 0);
    CHECK(r->ev[5].type == EV_PONG);
    CHECK_MEM(r->ev[5].data, r->ev[5].len, "p2");
    CHECK(r->ev[6].type == EV_CLOSE && r->ev[6].opcode == 1000);
    CHECK_MEM(r->ev[6].data, r->ev[6].len, "bye");
}

static void test_stream(void)
{
    uint8_t buf[1024];
    rec_t r;
    size_t n = build_stream(buf);
    CHECK_EQ_INT(parse(buf, n, 1000, &r), n);
    check_stream_events(&r);
}

/* Feeds src in chunks like a real reader: append to a work buffer, parse, keep the tail. */
static int64_t feed_chunks(ws_parser_t *p, rec_t *r, const uint8_t *src, size_t n,
                           const size_t *cuts, int ncuts)
{
    uint8_t work[1024];
    size_t have = 0, at = 0;
    for (int c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        memcpy(work + have, src + at, end - at);
        have += end - at;
        at = end;
        int64_t got = ws_parser_feed(p, &cbs, r, work, have);
        if (got < 0) return got;
        /* Whatever stays must be an incomplete frame. */
        int64_t need = ws_frame_size(work + got, have - (size_t)got, p->max_message);
        CHECK(need >= 0);
        CHECK(have == (size_t)got || need == 0 || (size_t)need > have - (size_t)got);
        memmove(work, work + got, have - (size_t)got);
        have -= (size_t)got;
    }
    return (int64_t)have;
}

static void test_every_split(void)
{
    uint8_t src[1024];
    size_t n = build_stream(src);
    for (size_t k = 0; k <= n; k++) {
        ws_parser_t p;
        rec_t r;
        ws_parser_init(&p, 1000);
        memset(&r, 0, sizeof(r));
        size_t cuts[1] = {k};
        CHECK_EQ_INT(feed_chunks(&p, &r, src, n, cuts, 1), 0);
        check_stream_events(&r);
        CHECK_EQ_INT(ws_parser_buffered(&p), 0);
        ws_parser_free(&p);
    }
    /* Fixed-size pieces, down to one byte at a time. */
    for (size_t step = 1; step <= 20; step++) {
        ws_parser_t p;
        rec_t r;
        size_t cuts[1024];
        int nc = 0;
        for (size_t at = step; at < n; at += step) cuts[nc++] = at;
        ws_parser_init(&p, 1000);
        memset(&r, 0, sizeof(r));
        CHECK_EQ_INT(feed_chunks(&p, &r, src, n, cuts, nc), 0);
        check_stream_events(&r);
        ws_parser_free(&p);
    }
    /* Every pair of split points over a shorter stream (fragmentation + ping + close). */
    size_t m = 0;
    m += frame_s(src + m, false, WS_OP_TEXT, "\xe2\x82");
    m += frame_s(src + m, true, WS_OP_PING, "x");
    m += frame_s(src + m, true, WS_OP_CONT, "\xac!");
    m += frame_s(src + m, true, WS_OP_CLOSE, "\x03\xe9");
    for (size_t i = 0; i <= m; i++) {
        for (size_t j = i; j <= m; j++) {
            ws_parser_t p;
            rec_t r;
            size_t cuts[2] = {i, j};
            ws_parser_init(&p, 10);
            memset(&r, 0, sizeof(r));
            CHECK_EQ_INT(feed_chunks(&p, &r, src, m, cuts, 2), 0);
            CHECK_EQ_INT(r.n, 3);
            CHECK_EQ_INT(r.ev[0].type, EV_PING);
            CHECK_MEM(r.ev[1].data, r.ev[1].len, "\xe2\x82\xac!");
            CHECK_EQ_INT(r.ev[2].opcode, 1001);
            ws_parser_free(&p);
        }
    }
}

static void test_partial_header(void)
{
    /* Any prefix shorter than the length field yields 0 from both functions. */
    uint8_t buf[80000];
    size_t sizes[] = {0, 5, 125, 126, 65535, 65536};
    static uint8_t pl[70000];
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = frame(buf, true, WS_OP_BINARY, pl, sizes[i]);
        size_t lenfield = sizes[i] < 126 ? 2 : sizes[i] <= 0xffff ? 4 : 10;
        for (size_t k = 0; k < n; k++) {
            rec_t r;
            int64_t fs = ws_frame_size(buf, k, 70000);
            CHECK_EQ_INT(fs, k < lenfield ? 0 : (int64_t)n);
            if (k < 16 || k + 2 > n) CHECK_EQ_INT(parse(buf, k, 70000, &r), 0);
        }
        CHECK_EQ_INT(ws_frame_size(buf, n, 70000), n);
    }
}

static void test_stop_from_callback(void)
{
    uint8_t src[1024], buf[1024];
    size_t n = build_stream(src);
    /* Stop after each event in turn, then resume with the tail: same events overall. */
    for (int stop = 1; stop <= 7; stop++) {
        ws_parser_t p;
        rec_t r;
        memcpy(buf, src, n);
        ws_parser_init(&p, 1000);
        memset(&r, 0, sizeof(r));
        r.stop_after = stop;
        int64_t got = ws_parser_feed(&p, &cbs, &r, buf, n);
        CHECK(got > 0 && (size_t)got <= n);
        CHECK_EQ_INT(r.n, stop);
        r.stop_after = 0;
        if (got > 0)
            CHECK_EQ_INT(ws_parser_feed(&p, &cbs, &r, buf + got, n - (size_t)got), n - got);
        check_stream_events(&r);
        ws_parser_free(&p);
    }
    /* Stopping on the first message consumes exactly its frame. */
    size_t first = frame_s(buf, true, WS_OP_TEXT, "first");
    memcpy(buf, src, n);
    ws_parser_t p;
    rec_t r;
    ws_parser_init(&p, 1000);
    memset(&r, 0, sizeof(r));
    r.stop_after = 1;
    CHECK_EQ_INT(ws_parser_feed(&p, &cbs, &r, buf, n), first);
    ws_parser_free(&p);
    /* A close stops the caller only if on_close says so. */
    size_t m = frame_s(buf, true, WS_OP_CLOSE, "");
    size_t m2 = m + frame_s(buf + m, true, WS_OP_TEXT, "late");
    ws_parser_init(&p, 1000);
    memset(&r, 0, sizeof(r));
    r.stop_after = 1;
    CHECK_EQ_INT(ws_parser_feed(&p, &cbs, &r, buf, m2), m);
    ws_parser_free(&p);
}

static void test_free_in_callback(void)
{
    /* Freeing the parser from inside on_message (e.g. connection teardown) is safe. */
    uint8_t buf[128];
    size_t n = frame_s(buf, false, WS_OP_TEXT, "ab");
    n += frame_s(buf + n, true, WS_OP_CONT, "cd");
    ws_parser_t p;
    rec_t r;
    ws_parser_init(&p, 100);
    memset(&r, 0, sizeof(r));
    r.parser = &p;
    r.free_in_cb = true;
    r.stop_after = 1;
    CHECK_EQ_INT(ws_parser_feed(&p, &cbs, &r, buf, n), n);
    CHECK_MEM(r.ev[0].data, r.ev[0].len, "abcd");
    ws_parser_free(&p);
}

static void test_null_callbacks(void)
{
    uint8_t src[1024];
    size_t n = build_stream(src);
    ws_parser_t p;
    ws_parser_callbacks_t none = {0};
    ws_parser_init(&p, 1000);
    CHECK_EQ_INT(ws_parser_feed(&p, &none, NULL, src, n), n);
    CHECK_EQ_INT(ws_parser_buffered(&p), 0);
    ws_parser_free(&p);
}

static void test_free_mid_message(void)
{
    /* A connection dropped mid-message: free releases the fragment buffer (ASan checks). */
    uint8_t buf[64];
    size_t n = frame_s(buf, false, WS_OP_BINARY, "partial");
    ws_parser_t p;
    rec_t r;
    ws_parser_init(&p, 100);
    memset(&r, 0, sizeof(r));
    CHECK_EQ_INT(ws_parser_feed(&p, &cbs, &r, buf, n), n);
    CHECK(ws_parser_buffered(&p) >= 7);
    ws_parser_free(&p);
    CHECK_EQ_INT(ws_parser_buffered(&p), 0);
    ws_parser_free(&p);
}

int main(void)
{
    RUN(test_accept_key);
    RUN(test_key_valid);
    RUN(test_frame_header);
    RUN(test_close_frame);
    RUN(test_utf8);
    RUN(test_rfc_examples);
    RUN(test_empty_messages);
    RUN(test_lengths);
    RUN(test_control_max);
    RUN(test_unmasked);
    RUN(test_rsv_bits);
    RUN(test_unknown_opcodes);
    RUN(test_control_rules);
    RUN(test_continuation_rules);
    RUN(test_length_top_bit);
    RUN(test_too_big);
    RUN(test_invalid_text);
    RUN(test_utf8_split_fragments);
    RUN(test_close_payloads);
    RUN(test_fragmented_with_ping);
    RUN(test_stream);
    RUN(test_every_split);
    RUN(test_partial_header);
    RUN(test_stop_from_callback);
    RUN(test_free_in_callback);
    RUN(test_null_callbacks);
    RUN(test_free_mid_message);
    return UNIT_DONE();
}
