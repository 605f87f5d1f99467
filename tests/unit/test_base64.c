/* Unit tests for the strict base64 codec (src/core/base64.c). */
#include <stdint.h>

#include "core/base64.h"
#include "unit.h"

#define DEC(lit, out) base64_decode((lit), sizeof(lit) - 1, (out))
#define DLEN(lit)     base64_decoded_len((lit), sizeof(lit) - 1)

static void check_vector(const char *plain, const char *b64)
{
    char enc[64];
    uint8_t dec[64];
    size_t n = strlen(plain);

    CHECK_EQ_INT(base64_encoded_len(n), strlen(b64));
    size_t w = base64_encode((const uint8_t *)plain, n, enc);
    CHECK_MEM(enc, w, b64);
    CHECK_EQ_INT(base64_decoded_len(b64, strlen(b64)), n);
    int64_t d = base64_decode(b64, strlen(b64), dec);
    CHECK_MEM(dec, d, plain);
}

static void test_rfc4648_vectors(void)
{
    /* RFC 4648 section 10 (matches node's Buffer#toString("base64")). */
    check_vector("", "");
    check_vector("f", "Zg==");
    check_vector("fo", "Zm8=");
    check_vector("foo", "Zm9v");
    check_vector("foob", "Zm9vYg==");
    check_vector("fooba", "Zm9vYmE=");
    check_vector("foobar", "Zm9vYmFy");
}

static void test_binary(void)
{
    const uint8_t bytes[] = {0, 1, 2, 0xfe, 0xff};
    char enc[16];
    uint8_t dec[16];

    size_t w = base64_encode(bytes, sizeof(bytes), enc);
    CHECK_MEM(enc, w, "AAEC/v8="); /* Buffer.from([0,1,2,254,255]).toString("base64") */
    CHECK_EQ_INT(base64_decode(enc, w, dec), 5);
    CHECK(memcmp(dec, bytes, 5) == 0);

    /* All 256 byte values through both directions. */
    uint8_t all[256], back[256];
    char big[344];
    for (int k = 0; k < 256; k++) all[k] = (uint8_t)k;
    w = base64_encode(all, 256, big);
    CHECK_EQ_INT(w, 344);
    CHECK_EQ_INT(base64_decode(big, w, back), 256);
    CHECK(memcmp(all, back, 256) == 0);
}

static void test_in_place(void)
{
    char buf[] = "Zm9vYmFyYmF6cXV4";
    int64_t n = base64_decode(buf, sizeof(buf) - 1, (uint8_t *)buf);
    CHECK_MEM(buf, n, "foobarbazqux");

    char buf2[] = "AQIDBA==";
    n = base64_decode(buf2, sizeof(buf2) - 1, (uint8_t *)buf2);
    CHECK_MEM(buf2, n, "\x01\x02\x03\x04");
}

static void test_errors(void)
{
    uint8_t out[64];

    CHECK_EQ_INT(DEC("Z", out), -1);  /* length not a multiple of 4 */
    CHECK_EQ_INT(DEC("Zg", out), -1); /* unpadded */
    CHECK_EQ_INT(DEC("Zg=", out), -1);
    CHECK_EQ_INT(DEC("Zm9vY", out), -1);
    CHECK_EQ_INT(DEC("Zm9v\n", out), -1); /* no whitespace */
    CHECK_EQ_INT(DEC("Zm 9", out), -1);
    CHECK_EQ_INT(DEC("Zm9-", out), -1); /* URL-safe alphabet is not this one */
    CHECK_EQ_INT(DEC("Zm9_", out), -1);
    CHECK_EQ_INT(DEC("Zm9\0", out), -1);
    CHECK_EQ_INT(DEC("Z\xc3\xa9=", out), -1);
    CHECK_EQ_INT(DEC("====", out), -1);
    CHECK_EQ_INT(DEC("Z===", out), -1);
    CHECK_EQ_INT(DEC("=Zg=", out), -1);
    CHECK_EQ_INT(DEC("Zg=a", out), -1);     /* data after padding */
    CHECK_EQ_INT(DEC("Zg==Zm8=", out), -1); /* padding in the middle */
    CHECK_EQ_INT(DEC("Zm8=Zm8=", out), -1);
    CHECK_EQ_INT(DEC("Zh==", out), -1); /* non-zero unused bits: "Zg==" is canonical */
    CHECK_EQ_INT(DEC("Zm9=", out), -1); /* "Zm8=" is canonical */
    CHECK_EQ_INT(DLEN("Zh=="), -1);
    CHECK_EQ_INT(DLEN("Zm9v=Zg="), -1);
    CHECK_EQ_INT(DLEN("Zm9vYg=="), 4);
    CHECK_EQ_INT(DLEN(""), 0);
}

int main(void)
{
    RUN(test_rfc4648_vectors);
    RUN(test_binary);
    RUN(test_in_place);
    RUN(test_errors);
    return UNIT_DONE();
}
