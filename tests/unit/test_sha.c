/* Unit tests for SHA-256, HMAC-SHA256 and SHA-1 (src/core/sha.c): the FIPS/RFC vectors, then
 * every length across the block boundaries against OpenSSL. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdint.h>

#include "core/sha.h"
#include "unit.h"

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
}

static void test_vectors(void)
{
    uint8_t md[32];
    char h[65];
    sha256("abc", 3, md);
    hex(md, 32, h);
    CHECK(strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    sha256("", 0, md);
    hex(md, 32, h);
    CHECK(strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    sha1("abc", 3, md);
    hex(md, 20, h);
    CHECK(strcmp(h, "a9993e364706816aba3e25717850c26c9cd0d89d") == 0);
    /* RFC 4231 test case 2 */
    hmac_sha256_key_t k;
    hmac_sha256_key(&k, "Jefe", 4);
    hmac_sha256(&k, "what do ya want for nothing?", 28, md);
    hex(md, 32, h);
    CHECK(strcmp(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") == 0);
    /* RFC 6455 1.3: the accept key's hash */
    const char *in = "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    sha1(in, strlen(in), md);
    hex(md, 20, h);
    CHECK(strcmp(h, "b37a4f2cc0624f1690f64606cf385945b2bec4ea") == 0);
}

static void test_against_openssl(void)
{
    uint8_t data[400], key[150];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 131 + 7);
    for (size_t i = 0; i < sizeof key; i++) key[i] = (uint8_t)(i * 17 + 3);
    int bad = 0;
    for (size_t len = 0; len <= sizeof data; len++) {
        uint8_t a[32], b[32];
        sha256(data, len, a);
        SHA256(data, len, b);
        bad += memcmp(a, b, 32) != 0;
        sha1(data, len, a);
        SHA1(data, len, b);
        bad += memcmp(a, b, 20) != 0;
        /* in pieces: the context's buffering */
        sha256_ctx_t c;
        sha256_init(&c);
        size_t half = len / 3;
        sha256_update(&c, data, half);
        sha256_update(&c, data + half, len - half);
        sha256_final(&c, a);
        SHA256(data, len, b);
        bad += memcmp(a, b, 32) != 0;
        size_t klen = len % sizeof key;
        hmac_sha256_key_t k;
        hmac_sha256_key(&k, key, klen);
        hmac_sha256(&k, data, len, a);
        unsigned n = 0;
        HMAC(EVP_sha256(), key, (int)klen, data, len, b, &n);
        bad += n != 32 || memcmp(a, b, 32) != 0;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(sha_equal("abcd", "abcd", 4));
    CHECK(!sha_equal("abcd", "abce", 4));
    CHECK(sha_equal("", "x", 0));
}

/* The same checks with the portable compression forced (the default path uses the CPU's SHA
 * extensions where it has them), and the two agree on one long input hashed in odd pieces. */
static void test_portable_and_cpu(void)
{
    static uint8_t data[5000];
    uint8_t a[32], b[32];
    int prev = sha256_use_cpu_extensions(1);

    fprintf(stderr, "  SHA-256 and SHA-1 with CPU extensions: %s\n",
            sha256_use_cpu_extensions(1) ? "yes" : "no");
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7 + (i >> 8));
    for (size_t step = 1; step < 200; step += 13) {
        sha256_ctx_t c;
        sha256_use_cpu_extensions(1);
        sha256_init(&c);
        for (size_t o = 0; o < sizeof data; o += step)
            sha256_update(&c, data + o, o + step > sizeof data ? sizeof data - o : step);
        sha256_final(&c, a);
        sha256_use_cpu_extensions(0);
        sha256(data, sizeof data, b);
        CHECK(memcmp(a, b, 32) == 0);
        SHA256(data, sizeof data, b);
        CHECK(memcmp(a, b, 32) == 0);
    }
    sha256_use_cpu_extensions(0);
    test_vectors();
    test_against_openssl();
    sha256_use_cpu_extensions(prev != 0);
}

int main(void)
{
    RUN(test_vectors);
    RUN(test_against_openssl);
    RUN(test_portable_and_cpu);
    return UNIT_DONE();
}
