/* Unit tests for the Engine.IO v4 packet and polling payload codec (src/eio/eio_packet.c). */
#include <stdlib.h>

#include "eio/eio_packet.h"
#include "eio/eio_server.h"
#include "unit.h"

#define DECODE_TEXT(lit, out) eio_packet_decode_text((lit), sizeof(lit) - 1, (out))

static void test_decode_text(void)
{
    eio_packet_t p;

    CHECK_EQ_INT(DECODE_TEXT("4hello", &p), 0);
    CHECK_EQ_INT(p.type, EIO_MESSAGE);
    CHECK(!p.binary);
    CHECK_MEM(p.data, p.len, "hello");

    CHECK_EQ_INT(DECODE_TEXT("2probe", &p), 0);
    CHECK_EQ_INT(p.type, EIO_PING);
    CHECK_MEM(p.data, p.len, "probe");

    const char *types = "0123456";
    for (int t = 0; t < 7; t++) {
        CHECK_EQ_INT(eio_packet_decode_text(types + t, 1, &p), 0);
        CHECK_EQ_INT(p.type, t);
        CHECK_EQ_INT(p.len, 0);
    }
    CHECK_EQ_INT(EIO_OPEN, 0);
    CHECK_EQ_INT(EIO_NOOP, 6);

    CHECK_EQ_INT(eio_packet_decode_text("", 0, &p), -1);
    CHECK_EQ_INT(DECODE_TEXT("7", &p), -1);
    CHECK_EQ_INT(DECODE_TEXT("9x", &p), -1);
    CHECK_EQ_INT(DECODE_TEXT("/", &p), -1);      /* '0' - 1 */
    CHECK_EQ_INT(DECODE_TEXT("b4AQID", &p), -1); /* 'b' is only meaningful in a payload */
    CHECK_EQ_INT(DECODE_TEXT("x", &p), -1);
    CHECK_EQ_INT(DECODE_TEXT(" 4", &p), -1);
}

typedef struct {
    int count;
    int stop_at; /* return 7 from this packet (1-based), 0: never */
    eio_packet_t pkts[8];
    char copies[8][64];
} collect_t;

static int collect_cb(void *ud, const eio_packet_t *p)
{
    collect_t *c = ud;
    if (c->count < 8) {
        c->pkts[c->count] = *p;
        memcpy(c->copies[c->count], p->data, p->len < 64 ? p->len : 64);
    }
    c->count++;
    return c->count == c->stop_at ? 7 : 0;
}

/* Decodes a literal payload in a writable copy. */
static int decode_payload(const char *lit, size_t n, collect_t *c)
{
    char buf[256];
    memset(c, 0, sizeof(*c));
    memcpy(buf, lit, n);
    return eio_payload_decode(buf, n, collect_cb, c);
}

#define PAYLOAD(lit, c) decode_payload((lit), sizeof(lit) - 1, (c))

static void test_payload_single_and_many(void)
{
    collect_t c;

    CHECK_EQ_INT(PAYLOAD("4hello", &c), 0);
    CHECK_EQ_INT(c.count, 1);
    CHECK_MEM(c.copies[0], c.pkts[0].len, "hello");

    /* The protocol's own example: socket.send('hello'); socket.send('world') */
    CHECK_EQ_INT(PAYLOAD("4hello\x1e"
                         "4world",
                         &c),
                 0);
    CHECK_EQ_INT(c.count, 2);
    CHECK_EQ_INT(c.pkts[0].type, EIO_MESSAGE);
    CHECK_MEM(c.copies[0], c.pkts[0].len, "hello");
    CHECK_MEM(c.copies[1], c.pkts[1].len, "world");

    /* Socket.IO sample session: 42["hello"]\x1e42["world"] */
    CHECK_EQ_INT(PAYLOAD("42[\"hello\"]\x1e"
                         "42[\"world\"]",
                         &c),
                 0);
    CHECK_EQ_INT(c.count, 2);
    CHECK_MEM(c.copies[1], c.pkts[1].len, "2[\"world\"]");

    /* Mixed types and empty data. */
    CHECK_EQ_INT(PAYLOAD("2probe\x1e"
                         "4test\x1e"
                         "1\x1e"
                         "6\x1e"
                         "3",
                         &c),
                 0);
    CHECK_EQ_INT(c.count, 5);
    CHECK_EQ_INT(c.pkts[0].type, EIO_PING);
    CHECK_EQ_INT(c.pkts[2].type, EIO_CLOSE);
    CHECK_EQ_INT(c.pkts[2].len, 0);
    CHECK_EQ_INT(c.pkts[3].type, EIO_NOOP);
    CHECK_EQ_INT(c.pkts[4].type, EIO_PONG);
}

static void test_payload_binary(void)
{
    collect_t c;

    /* engine.io-parser's own example: [message "hello", message <01 02 03>] -> "4hello\x1ebAQID" */
    CHECK_EQ_INT(PAYLOAD("4hello\x1e"
                         "bAQID",
                         &c),
                 0);
    CHECK_EQ_INT(c.count, 2);
    CHECK(!c.pkts[0].binary);
    CHECK(c.pkts[1].binary);
    CHECK_EQ_INT(c.pkts[1].type, EIO_MESSAGE);
    CHECK_MEM(c.copies[1], c.pkts[1].len, "\x01\x02\x03");

    CHECK_EQ_INT(PAYLOAD("bAQIDBA==\x1e"
                         "4x\x1e"
                         "bAA==",
                         &c),
                 0);
    CHECK_EQ_INT(c.count, 3);
    CHECK_MEM(c.copies[0], c.pkts[0].len, "\x01\x02\x03\x04");
    CHECK_EQ_INT(c.pkts[2].len, 1);
    CHECK_EQ_INT(c.copies[2][0], 0);

    /* "b" alone: a binary message of zero bytes (Buffer.from("", "base64")). */
    CHECK_EQ_INT(PAYLOAD("b", &c), 0);
    CHECK_EQ_INT(c.count, 1);
    CHECK(c.pkts[0].binary);
    CHECK_EQ_INT(c.pkts[0].len, 0);

    /* Decoded in place: data points into the caller's buffer. */
    char buf[] = "bAQID";
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(eio_payload_decode(buf, 5, collect_cb, &c), 0);
    CHECK(c.pkts[0].data == (const uint8_t *)buf + 1);
}

static void test_payload_errors(void)
{
    collect_t c;

    CHECK_EQ_INT(PAYLOAD("", &c), -1);
    CHECK_EQ_INT(PAYLOAD("\x1e", &c), -1);
    CHECK_EQ_INT(PAYLOAD("\x1e"
                         "4a",
                         &c),
                 -1);                        /* separator at the start */
    CHECK_EQ_INT(PAYLOAD("4a\x1e", &c), -1); /* separator at the end */
    CHECK_EQ_INT(PAYLOAD("4a\x1e\x1e"
                         "4b",
                         &c),
                 -1); /* empty packet in the middle */
    CHECK_EQ_INT(PAYLOAD("7", &c), -1);
    CHECK_EQ_INT(PAYLOAD("4a\x1e"
                         "x",
                         &c),
                 -1);
    CHECK_EQ_INT(PAYLOAD("4a\x1e"
                         "bAQI",
                         &c),
                 -1);                       /* base64 length */
    CHECK_EQ_INT(PAYLOAD("bAR==", &c), -1); /* non-canonical: "AQ==" */
    CHECK_EQ_INT(PAYLOAD("bA===", &c), -1);
    CHECK_EQ_INT(PAYLOAD("bAQ!D", &c), -1);
    CHECK_EQ_INT(PAYLOAD("bAQ-D", &c), -1);
    CHECK_EQ_INT(PAYLOAD("bAQID\n", &c), -1);
    CHECK_EQ_INT(PAYLOAD("b4AQID", &c), -1); /* v3 style "b<type><base64>" is not v4 */
    CHECK_EQ_INT(c.count, 0);

    /* Nothing is delivered when a later packet is malformed, and buf is left untouched. */
    char buf[] = "4first\x1e"
                 "bAQID\x1e"
                 "bA!==";
    char copy[sizeof(buf)];
    memcpy(copy, buf, sizeof(buf));
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(eio_payload_decode(buf, sizeof(buf) - 1, collect_cb, &c), -1);
    CHECK_EQ_INT(c.count, 0);
    CHECK(memcmp(buf, copy, sizeof(buf)) == 0);
}

static void test_payload_callback_stops(void)
{
    collect_t c;
    char buf[] = "4a\x1e"
                 "4b\x1e"
                 "4c";

    memset(&c, 0, sizeof(c));
    c.stop_at = 2;
    CHECK_EQ_INT(eio_payload_decode(buf, sizeof(buf) - 1, collect_cb, &c), 7);
    CHECK_EQ_INT(c.count, 2);
}

static void check_encode(const eio_packet_t *p, const char *expect)
{
    char out[64];
    CHECK_EQ_INT(eio_packet_encoded_len_polling(p), strlen(expect));
    size_t n = eio_packet_encode_polling(p, out);
    CHECK_MEM(out, n, expect);
}

static void test_encode_polling(void)
{
    eio_packet_t p = {.type = EIO_MESSAGE, .data = (const uint8_t *)"hello", .len = 5};
    check_encode(&p, "4hello");

    p = (eio_packet_t){.type = EIO_PING};
    check_encode(&p, "2");
    p = (eio_packet_t){.type = EIO_NOOP};
    check_encode(&p, "6");
    p = (eio_packet_t){.type = EIO_OPEN, .data = (const uint8_t *)"{\"sid\":\"x\"}", .len = 11};
    check_encode(&p, "0{\"sid\":\"x\"}");

    p = (eio_packet_t){
        .type = EIO_MESSAGE, .binary = true, .data = (const uint8_t *)"\1\2\3", .len = 3};
    check_encode(&p, "bAQID");
    p = (eio_packet_t){
        .type = EIO_MESSAGE, .binary = true, .data = (const uint8_t *)"\1\2\3\4", .len = 4};
    check_encode(&p, "bAQIDBA==");
    p = (eio_packet_t){.type = EIO_MESSAGE, .binary = true};
    check_encode(&p, "b");
}

static void test_encode_decode_round_trip(void)
{
    /* Build "4hello\x1ebAQIDBA==\x1e3probe" with the encoder, then decode it. */
    eio_packet_t in[3] = {
        {.type = EIO_MESSAGE, .data = (const uint8_t *)"hello", .len = 5},
        {.type = EIO_MESSAGE, .binary = true, .data = (const uint8_t *)"\1\2\3\4", .len = 4},
        {.type = EIO_PONG, .data = (const uint8_t *)"probe", .len = 5},
    };
    char buf[64];
    size_t n = 0;
    for (int k = 0; k < 3; k++) {
        if (k) buf[n++] = EIO_RECORD_SEPARATOR;
        n += eio_packet_encode_polling(&in[k], buf + n);
    }
    CHECK_MEM(buf, n,
              "4hello\x1e"
              "bAQIDBA==\x1e"
              "3probe");

    collect_t c;
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(eio_payload_decode(buf, n, collect_cb, &c), 0);
    CHECK_EQ_INT(c.count, 3);
    for (int k = 0; k < 3 && k < c.count; k++) {
        CHECK_EQ_INT(c.pkts[k].type, in[k].type);
        CHECK(c.pkts[k].binary == in[k].binary);
        CHECK(c.pkts[k].len == in[k].len && memcmp(c.copies[k], in[k].data, in[k].len) == 0);
    }
}

/* A text message gathered from parts is byte for byte the message built from their
 * concatenation, across the WebSocket header's 7-bit, 16-bit and 64-bit lengths. */
static void test_message_build_parts(void)
{
    static const size_t sizes[] = {0, 1, 123, 124, 125, 126, 127, 1000, 65533, 65534, 65535, 70000};
    char *text = malloc(70000);
    for (size_t i = 0; i < 70000; i++) text[i] = (char)('a' + i % 26);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        rbuf_t *whole = eio_message_build(false, text, n);
        /* split in three at a few places, empty parts included */
        size_t cuts[][2] = {{0, 0}, {0, n}, {n / 3, 2 * n / 3}, {n, n}, {1 < n ? 1 : n, n}};
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            str_t parts[3] = {str_make(text, cuts[c][0]),
                              str_make(text + cuts[c][0], cuts[c][1] - cuts[c][0]),
                              str_make(text + cuts[c][1], n - cuts[c][1])};
            rbuf_t *gathered = eio_message_build_parts(parts, 3);
            CHECK(whole && gathered);
            if (whole && gathered)
                CHECK(whole->len == gathered->len &&
                      memcmp(whole->data, gathered->data, whole->len) == 0);
            if (gathered) rbuf_unref(gathered);
        }
        if (whole) rbuf_unref(whole);
    }
    free(text);
}

/* Decodes a literal v3 payload in a writable copy. */
static int decode3(const char *lit, size_t n, collect_t *c)
{
    char *buf = malloc(n ? n : 1);
    memcpy(buf, lit, n);
    memset(c, 0, sizeof *c);
    int r = eio3_payload_decode(buf, n, collect_cb, c);
    free(buf);
    return r;
}
#define DECODE3(lit, c) decode3((lit), sizeof(lit) - 1, (c))

static void test_v3_payload_decode(void)
{
    collect_t c;
    CHECK_EQ_INT(DECODE3("1:2", &c), 0);
    CHECK_EQ_INT(c.count, 1);
    CHECK_EQ_INT(c.pkts[0].type, EIO_PING);
    CHECK_EQ_INT(DECODE3("6:4hello2:40", &c), 0);
    CHECK_EQ_INT(c.count, 2);
    CHECK_MEM(c.copies[0], c.pkts[0].len, "hello");
    CHECK_MEM(c.copies[1], c.pkts[1].len, "0");
    /* Lengths count UTF-16 code units: é is 1 (2 bytes), U+1F600 is 2 (4 bytes). */
    CHECK_EQ_INT(DECODE3("3:4\xc3\xa9x", &c), 0);
    CHECK_MEM(c.copies[0], c.pkts[0].len, "\xc3\xa9x");
    CHECK_EQ_INT(DECODE3("3:4\xf0\x9f\x98\x80"
                         "1:6",
                         &c),
                 0);
    CHECK_EQ_INT(c.count, 2);
    CHECK_EQ_INT(c.pkts[0].len, 4);
    CHECK_EQ_INT(c.pkts[1].type, EIO_NOOP);
    /* b4 + base64 is a binary message. */
    CHECK_EQ_INT(DECODE3("6:b4AQID", &c), 0);
    CHECK(c.pkts[0].binary);
    CHECK_EQ_INT(c.pkts[0].type, EIO_MESSAGE);
    CHECK_MEM(c.copies[0], c.pkts[0].len, "\x01\x02\x03");
}

static void test_v3_payload_errors(void)
{
    collect_t c;
    CHECK_EQ_INT(decode3("", 0, &c), -1);
    CHECK_EQ_INT(DECODE3("0:", &c), -1);                  /* empty packet */
    CHECK_EQ_INT(DECODE3(":4a", &c), -1);                 /* no length */
    CHECK_EQ_INT(DECODE3("2:4", &c), -1);                 /* short */
    CHECK_EQ_INT(DECODE3("1:4x", &c), -1);                /* trailing garbage: "x" has no prefix */
    CHECK_EQ_INT(DECODE3("2:9x", &c), -1);                /* unknown type */
    CHECK_EQ_INT(DECODE3("3:b2AA", &c), -1);              /* binary must be a message */
    CHECK_EQ_INT(DECODE3("5:b4A!==", &c), -1);            /* bad base64 */
    CHECK_EQ_INT(DECODE3("2:4\xf0\x9f\x98\x80", &c), -1); /* length cuts a surrogate pair */
    CHECK_EQ_INT(DECODE3("2:4\xc3", &c), -1);             /* truncated UTF-8 */
    CHECK_EQ_INT(DECODE3("2:4\xc0\x80", &c), -1);         /* overlong */
    CHECK_EQ_INT(DECODE3("2:4\xed\xa0\x80", &c), -1);     /* a surrogate in UTF-8 */
    CHECK_EQ_INT(DECODE3("99999999999:4", &c), -1);       /* over 10 digits */
    CHECK_EQ_INT(DECODE3("1:2x:1", &c), -1);
    /* Nothing delivered when a later packet is bad. */
    CHECK_EQ_INT(DECODE3("1:21:9", &c), -1);
    CHECK_EQ_INT(c.count, 0);
    /* A callback's value stops the walk. */
    memset(&c, 0, sizeof c);
    c.stop_at = 1;
    char buf[] = "1:21:3";
    CHECK_EQ_INT(eio3_payload_decode(buf, 6, collect_cb, &c), 7);
    CHECK_EQ_INT(c.count, 1);
}

static void test_v3_encode(void)
{
    char out[64];
    eio_packet_t p = {EIO_MESSAGE, false, (const uint8_t *)"40", 2};
    size_t n = eio3_packet_encoded_len_polling(&p);
    CHECK_EQ_INT(eio3_packet_encode_polling(&p, out), n);
    CHECK_MEM(out, n, "3:440");
    p = (eio_packet_t){EIO_PONG, false, NULL, 0};
    n = eio3_packet_encode_polling(&p, out);
    CHECK_MEM(out, n, "1:3");
    p = (eio_packet_t){EIO_MESSAGE, false, (const uint8_t *)"\xf0\x9f\x98\x80\xc3\xa9", 6};
    n = eio3_packet_encode_polling(&p, out);
    CHECK_EQ_INT(n, eio3_packet_encoded_len_polling(&p));
    CHECK_MEM(out, n, "4:4\xf0\x9f\x98\x80\xc3\xa9");
    p = (eio_packet_t){EIO_MESSAGE, true, (const uint8_t *)"\x01\x02\x03", 3};
    n = eio3_packet_encode_polling(&p, out);
    CHECK_EQ_INT(n, eio3_packet_encoded_len_polling(&p));
    CHECK_MEM(out, n, "6:b4AQID");
    /* A ten-unit packet has a two-digit length. */
    p = (eio_packet_t){EIO_MESSAGE, false, (const uint8_t *)"123456789", 9};
    n = eio3_packet_encode_polling(&p, out);
    CHECK_MEM(out, n, "10:4123456789");
    /* What is encoded decodes back. */
    collect_t c;
    CHECK_EQ_INT(decode3(out, n, &c), 0);
    CHECK_MEM(c.copies[0], c.pkts[0].len, "123456789");
}

static int decode3_bin(const char *lit, size_t n, collect_t *c)
{
    memset(c, 0, sizeof *c);
    return eio3_payload_decode_binary((const uint8_t *)lit, n, collect_cb, c);
}
#define DECODE3_BIN(lit, c) decode3_bin((lit), sizeof(lit) - 1, (c))

static void test_v3_binary_payload(void)
{
    collect_t c;
    /* Text "42[1]" (5 bytes), then binary message 01 02 03 (type byte 4 first). */
    CHECK_EQ_INT(DECODE3_BIN("\x00\x05\xff"
                             "42[1]"
                             "\x01\x04\xff\x04\x01\x02\x03",
                             &c),
                 0);
    CHECK_EQ_INT(c.count, 2);
    CHECK_EQ_INT(c.pkts[0].type, EIO_MESSAGE);
    CHECK(!c.pkts[0].binary);
    CHECK_MEM(c.copies[0], c.pkts[0].len, "2[1]");
    CHECK(c.pkts[1].binary);
    CHECK_MEM(c.copies[1], c.pkts[1].len, "\x01\x02\x03");
    /* Lengths are bytes here; a two-digit one. */
    CHECK_EQ_INT(DECODE3_BIN("\x00\x01\x00\xff"
                             "4123456789",
                             &c),
                 0);
    CHECK_MEM(c.copies[0], c.pkts[0].len, "123456789");
    CHECK_EQ_INT(DECODE3_BIN("\x00\x03\xff"
                             "4\xc3\xa9",
                             &c),
                 0);

    CHECK_EQ_INT(decode3_bin("", 0, &c), -1);
    CHECK_EQ_INT(DECODE3_BIN("\x02\x01\xff"
                             "2",
                             &c),
                 -1); /* unknown kind */
    CHECK_EQ_INT(DECODE3_BIN("\x00\xff"
                             "2",
                             &c),
                 -1);                                  /* no digits */
    CHECK_EQ_INT(DECODE3_BIN("\x00\x00\xff", &c), -1); /* empty packet */
    CHECK_EQ_INT(DECODE3_BIN("\x00\x0a\xff"
                             "2",
                             &c),
                 -1); /* not a digit */
    CHECK_EQ_INT(DECODE3_BIN("\x00\x05\xff"
                             "2",
                             &c),
                 -1); /* short */
    CHECK_EQ_INT(DECODE3_BIN("\x00\x02\xff"
                             "4\xc3",
                             &c),
                 -1); /* cut UTF-8 */
    CHECK_EQ_INT(DECODE3_BIN("\x00\x01\xff"
                             "9",
                             &c),
                 -1);                                          /* unknown type */
    CHECK_EQ_INT(DECODE3_BIN("\x01\x02\xff\x02\x01", &c), -1); /* binary non-message */
    CHECK_EQ_INT(DECODE3_BIN("\x00\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\xff"
                             "2",
                             &c),
                 -1);
    /* Nothing delivered when a later packet is bad. */
    CHECK_EQ_INT(DECODE3_BIN("\x00\x01\xff"
                             "2"
                             "\x00\x01\xff"
                             "9",
                             &c),
                 -1);
    CHECK_EQ_INT(c.count, 0);
}

int main(void)
{
    RUN(test_decode_text);
    RUN(test_payload_single_and_many);
    RUN(test_payload_binary);
    RUN(test_payload_errors);
    RUN(test_payload_callback_stops);
    RUN(test_encode_polling);
    RUN(test_encode_decode_round_trip);
    RUN(test_message_build_parts);
    RUN(test_v3_payload_decode);
    RUN(test_v3_payload_errors);
    RUN(test_v3_encode);
    RUN(test_v3_binary_payload);
    return UNIT_DONE();
}
