/* The cluster envelope (src/cluster/cluster_codec.c): round trips, and every kind of malformed
 * input refused (an envelope from Redis is not trusted). */
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_codec.h"
#include "unit.h"

static cluster_envelope_t sample(void)
{
    cluster_envelope_t e = {.node = 0x0102030405060708ull,
                            .seq = 42,
                            .except = 0xfedcba9876543210ull,
                            .pos = 1234567,
                            .prev = 1234001,
                            .user = STR_LIT("alice_1-x")};
    strcpy(e.event, "receive_message");
    return e;
}

static void encode(buf_t *b, const char *args)
{
    cluster_envelope_t e = sample();
    str_t a = str_cstr(args);
    b->len = 0;
    CHECK(cluster_codec_encode(b, &e, &a, 1) == 0);
}

static void test_round_trip(void)
{
    buf_t b;
    buf_init(&b);
    cluster_envelope_t e = sample();
    str_t parts[3] = {STR_LIT("{\"a\":1}"), STR_LIT(",\""), STR_LIT("99\"")};
    CHECK(cluster_codec_encode(&b, &e, parts, 3) == 0);
    CHECK_EQ_INT(b.len, CLUSTER_ENVELOPE_HEAD + 15 + 9 + 12);
    cluster_envelope_t d;
    CHECK(cluster_codec_decode(b.data, b.len, &d) == 0);
    CHECK(d.node == e.node && d.seq == 42 && d.except == e.except && d.pos == 1234567);
    CHECK(d.prev == 1234001);
    CHECK(strcmp(d.event, "receive_message") == 0);
    CHECK_MEM(d.user.ptr, d.user.len, "alice_1-x");
    CHECK_MEM(d.args.ptr, d.args.len, "{\"a\":1},\"99\"");
    buf_free(&b);
}

/* A node before the chain (version 1: no prev, 37 bytes of header) still decodes, prev 0. */
static void test_version_1(void)
{
    buf_t b;
    buf_init(&b);
    encode(&b, "{\"a\":1}");
    buf_t v1;
    buf_init(&v1);
    buf_append(&v1, b.data, CLUSTER_ENVELOPE_HEAD_V1);
    buf_append(&v1, b.data + CLUSTER_ENVELOPE_HEAD, b.len - CLUSTER_ENVELOPE_HEAD);
    v1.data[1] = 1;
    cluster_envelope_t d;
    CHECK(cluster_codec_decode(v1.data, v1.len, &d) == 0);
    CHECK(d.pos == 1234567 && d.prev == 0);
    CHECK_MEM(d.args.ptr, d.args.len, "{\"a\":1}");
    v1.data[1] = 3; /* an unknown version */
    CHECK(cluster_codec_decode(v1.data, v1.len, &d) < 0);
    b.data[37] = 0x80; /* prev beyond INT64_MAX */
    CHECK(cluster_codec_decode(b.data, b.len, &d) < 0);
    buf_free(&v1);
    buf_free(&b);
}

static void test_encode_refuses(void)
{
    buf_t b;
    buf_init(&b);
    cluster_envelope_t e = sample();
    str_t a = STR_LIT("1");
    e.node = 0;
    CHECK(cluster_codec_encode(&b, &e, &a, 1) < 0);
    e = sample();
    e.user = STR_LIT("bad user");
    CHECK(cluster_codec_encode(&b, &e, &a, 1) < 0);
    e = sample();
    strcpy(e.event, "Bad");
    CHECK(cluster_codec_encode(&b, &e, &a, 1) < 0);
    e = sample();
    CHECK(cluster_codec_encode(&b, &e, &a, 0) < 0); /* no arguments */
    CHECK_EQ_INT(b.len, 0);
    buf_free(&b);
}

static void test_malformed(void)
{
    buf_t b;
    buf_init(&b);
    cluster_envelope_t d;
    /* Every truncation of a valid envelope is refused. */
    encode(&b, "{\"x\":[1,2,3]},\"5\"");
    for (size_t n = 0; n < b.len; n++) {
        /* A cut that leaves whole values (after ",\"5\"" or "{...}") may still be valid. */
        bool whole = n == b.len - 4;
        if (!whole) CHECK(cluster_codec_decode(b.data, n, &d) < 0);
    }
    CHECK(cluster_codec_decode(NULL, 0, &d) < 0);
    /* Each header byte altered. */
    const size_t at[] = {0, 1, 4};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        encode(&b, "1");
        b.data[at[i]] ^= 0x40;
        CHECK(cluster_codec_decode(b.data, b.len, &d) < 0);
    }
    encode(&b, "1");
    b.data[2] = 0; /* no event */
    CHECK(cluster_codec_decode(b.data, b.len, &d) < 0);
    encode(&b, "1");
    b.data[2] = (char)200; /* longer than the rest */
    CHECK(cluster_codec_decode(b.data, b.len, &d) < 0);
    encode(&b, "1");
    b.data[3] = 0; /* no user */
    CHECK(cluster_codec_decode(b.data, b.len, &d) < 0);
    encode(&b, "1");
    memset(b.data + 5, 0, 8); /* node 0 */
    CHECK(cluster_codec_decode(b.data, b.len, &d) < 0);
    encode(&b, "1");
    b.data[21] = (char)0x80; /* negative pos */
    CHECK(cluster_codec_decode(b.data, b.len, &d) < 0);
    encode(&b, "1");
    b.data[CLUSTER_ENVELOPE_HEAD] = 'R'; /* event alphabet */
    CHECK(cluster_codec_decode(b.data, b.len, &d) < 0);
    encode(&b, "1");
    b.data[CLUSTER_ENVELOPE_HEAD + 15] = '"'; /* user alphabet */
    CHECK(cluster_codec_decode(b.data, b.len, &d) < 0);
    /* Arguments that would break the frame they are spliced into. */
    const char *bad[] = {"]",   "1]",    "1,",   ",1",       "{\"a\":1", "1 2",
                         "\"x", "[1],]", "1,,2", "\"\x01\"", "\"\xff\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        encode(&b, "1");
        b.len -= 1;
        buf_append(&b, bad[i], strlen(bad[i]));
        CHECK(cluster_codec_decode(b.data, b.len, &d) < 0);
    }
    const char *good[] = {"1", "{}", " 1 , \"a\" ", "[1,{\"b\":null}],\"7\""};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        encode(&b, "1");
        b.len -= 1;
        buf_append(&b, good[i], strlen(good[i]));
        CHECK(cluster_codec_decode(b.data, b.len, &d) == 0);
    }
    buf_free(&b);
}

int main(void)
{
    test_round_trip();
    test_encode_refuses();
    test_malformed();
    test_version_1();
    printf("test_cluster_codec: %d checks, %d failures\n", unit_checks, unit_failures);
    return unit_failures ? 1 : 0;
}
