/* SHA-256, HMAC-SHA256 and SHA-1 (sha.h). */
#include "core/sha.h"

#include <string.h>

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define ROL32(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++) w[i] = load_be32(p + 4 * i);
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR32(w[i - 15], 7) ^ ROR32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR32(w[i - 2], 17) ^ ROR32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 =
            k + (ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

/* The same compression with the CPU's SHA extensions (Intel SHA-NI, on x86-64 since Goldmont
 * and Zen): ~15 instructions per 4 rounds instead of ~30 per round, so a handshake's HMAC and
 * pid hash cost a few hundred instructions instead of ~16k. The state is kept as ABEF/CDGH as
 * the instructions want it and converted back after the last block. Checked against the same
 * vectors as the portable code (tests/unit/test_sha.c runs both). */
__attribute__((target("sha,sse4.1,ssse3"))) static void
sha256_blocks_ni(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);
    __m128i st1 = _mm_loadu_si128((const __m128i *)&h[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);         /* CDAB */
    st1 = _mm_shuffle_epi32(st1, 0x1B);         /* EFGH */
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8); /* ABEF */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);      /* CDGH */

    for (; nblocks > 0; nblocks--, p += 64) {
        __m128i save0 = st0, save1 = st1, w0, w1, w2, w3, m;
        w0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 0)), mask);
        w1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), mask);
        w2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), mask);
        w3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), mask);
/* Four rounds with the schedule words in x and constants K256[4g..4g+3]. */
#define SHA_NI_ROUNDS(x, g)                                                                        \
    do {                                                                                           \
        m = _mm_add_epi32((x), _mm_loadu_si128((const __m128i *)&K256[4 * (g)]));                  \
        st1 = _mm_sha256rnds2_epu32(st1, st0, m);                                                  \
        m = _mm_shuffle_epi32(m, 0x0E);                                                            \
        st0 = _mm_sha256rnds2_epu32(st0, st1, m);                                                  \
    } while (0)
/* The next four schedule words: a = w[t-16..], b = w[t-12..], c = w[t-8..], d = w[t-4..]. */
#define SHA_NI_NEXT(a, b, c, d)                                                                    \
    (a) = _mm_sha256msg2_epu32(                                                                    \
        _mm_add_epi32(_mm_sha256msg1_epu32((a), (b)), _mm_alignr_epi8((d), (c), 4)), (d))
        for (int g = 0; g < 16; g += 4) {
            if (g > 0) SHA_NI_NEXT(w0, w1, w2, w3);
            SHA_NI_ROUNDS(w0, g);
            if (g > 0) SHA_NI_NEXT(w1, w2, w3, w0);
            SHA_NI_ROUNDS(w1, g + 1);
            if (g > 0) SHA_NI_NEXT(w2, w3, w0, w1);
            SHA_NI_ROUNDS(w2, g + 2);
            if (g > 0) SHA_NI_NEXT(w3, w0, w1, w2);
            SHA_NI_ROUNDS(w3, g + 3);
        }
#undef SHA_NI_ROUNDS
#undef SHA_NI_NEXT
        st0 = _mm_add_epi32(st0, save0);
        st1 = _mm_add_epi32(st1, save1);
    }
    tmp = _mm_shuffle_epi32(st0, 0x1B);    /* FEBA */
    st1 = _mm_shuffle_epi32(st1, 0xB1);    /* DCHG */
    st0 = _mm_blend_epi16(tmp, st1, 0xF0); /* DCBA */
    st1 = _mm_alignr_epi8(st1, tmp, 8);    /* HGFE */
    _mm_storeu_si128((__m128i *)&h[0], st0);
    _mm_storeu_si128((__m128i *)&h[4], st1);
}

static int sha_cpu_has_ni(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & (1u << 29)) != 0; /* CPUID.(EAX=7,ECX=0):EBX.SHA[bit 29] */
}
#define SHA_HAVE_NI 1
#else
#define SHA_HAVE_NI 0
#endif

/* 1: SHA extensions, 0: portable, -1: not yet asked (the answer is the same whichever thread
 * asks first, so a race only asks twice). */
static int sha_ni_state = -1;

int sha256_use_cpu_extensions(int on)
{
    int prev = __atomic_load_n(&sha_ni_state, __ATOMIC_RELAXED);
#if SHA_HAVE_NI
    int v = on && sha_cpu_has_ni();
#else
    int v = 0;
    (void)on;
#endif
    __atomic_store_n(&sha_ni_state, v, __ATOMIC_RELAXED);
    return prev;
}

#if SHA_HAVE_NI
static int sha_ni_enabled(void)
{
    int ni = __atomic_load_n(&sha_ni_state, __ATOMIC_RELAXED);
    if (ni < 0) {
        ni = sha_cpu_has_ni();
        __atomic_store_n(&sha_ni_state, ni, __ATOMIC_RELAXED);
    }
    return ni;
}
#endif

static void sha256_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
#if SHA_HAVE_NI
    if (sha_ni_enabled()) {
        sha256_blocks_ni(h, p, nblocks);
        return;
    }
#endif
    for (; nblocks > 0; nblocks--, p += 64) sha256_block(h, p);
}

void sha256_init(sha256_ctx_t *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof iv);
    c->total = 0;
    c->n = 0;
}

void sha256_update(sha256_ctx_t *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    c->total += len;
    if (c->n) {
        size_t take = 64 - c->n < len ? 64 - c->n : len;
        memcpy(c->buf + c->n, p, take);
        c->n += take;
        p += take;
        len -= take;
        if (c->n < 64) return;
        sha256_blocks(c->h, c->buf, 1);
        c->n = 0;
    }
    sha256_blocks(c->h, p, len / 64);
    p += len & ~(size_t)63;
    len &= 63;
    if (len) memcpy(c->buf, p, len);
    c->n = len;
}

void sha256_final(sha256_ctx_t *c, uint8_t out[SHA256_LEN])
{
    uint64_t bits = c->total * 8;
    c->buf[c->n++] = 0x80;
    if (c->n > 56) {
        memset(c->buf + c->n, 0, 64 - c->n);
        sha256_blocks(c->h, c->buf, 1);
        c->n = 0;
    }
    memset(c->buf + c->n, 0, 56 - c->n);
    store_be32(c->buf + 56, (uint32_t)(bits >> 32));
    store_be32(c->buf + 60, (uint32_t)bits);
    sha256_blocks(c->h, c->buf, 1);
    for (int i = 0; i < 8; i++) store_be32(out + 4 * i, c->h[i]);
}

void sha256(const void *p, size_t len, uint8_t out[SHA256_LEN])
{
    sha256_ctx_t c;
    sha256_init(&c);
    sha256_update(&c, p, len);
    sha256_final(&c, out);
}

void hmac_sha256_key(hmac_sha256_key_t *k, const void *key, size_t len)
{
    uint8_t block[64] = {0}, pad[64];
    if (len > 64)
        sha256(key, len, block);
    else if (len)
        memcpy(block, key, len);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
    sha256_init(&k->inner);
    sha256_update(&k->inner, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
    sha256_init(&k->outer);
    sha256_update(&k->outer, pad, 64);
    memset(block, 0, sizeof block);
    memset(pad, 0, sizeof pad);
}

void hmac_sha256(const hmac_sha256_key_t *k, const void *p, size_t len, uint8_t out[SHA256_LEN])
{
    sha256_ctx_t c = k->inner;
    uint8_t inner[SHA256_LEN];
    sha256_update(&c, p, len);
    sha256_final(&c, inner);
    c = k->outer;
    sha256_update(&c, inner, sizeof inner);
    sha256_final(&c, out);
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++) w[i] = load_be32(p + 4 * i);
    for (int i = 16; i < 80; i++) w[i] = ROL32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = ROL32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = ROL32(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

#if SHA_HAVE_NI
/* SHA-1 with the SHA extensions (the WebSocket accept key: two blocks per upgrade, ~5.5k
 * instructions portable). Four rounds per sha1rnds4; W holds the schedule words first word in
 * the high lane, as the instructions want. */
__attribute__((target("sha,sse4.1,ssse3"))) static void
sha1_blocks_ni(uint32_t h[5], const uint8_t *p, size_t nblocks)
{
    const __m128i mask = _mm_set_epi64x(0x0001020304050607ULL, 0x08090a0b0c0d0e0fULL);
    __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0x1B);
    __m128i e0 = _mm_set_epi32((int)h[4], 0, 0, 0);

    for (; nblocks > 0; nblocks--, p += 64) {
        __m128i abcd_save = abcd, e_save = e0, w[4], prev, ew;
        for (int i = 0; i < 4; i++)
            w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), mask);
/* Group g (rounds 4g..4g+3) with round function f: the schedule's next four words for g >= 4,
 * then E (rotated A of the previous group) plus the words, then the rounds. */
#define SHA1_NI_GROUP(g, f)                                                                        \
    do {                                                                                           \
        if ((g) >= 4)                                                                              \
            w[(g)&3] = _mm_sha1msg2_epu32(                                                         \
                _mm_xor_si128(_mm_sha1msg1_epu32(w[(g)&3], w[((g) + 1) & 3]), w[((g) + 2) & 3]),   \
                w[((g) + 3) & 3]);                                                                 \
        ew = (g) == 0 ? _mm_add_epi32(e0, w[0]) : _mm_sha1nexte_epu32(prev, w[(g)&3]);             \
        prev = abcd;                                                                               \
        abcd = _mm_sha1rnds4_epu32(abcd, ew, f);                                                   \
    } while (0)
        prev = abcd;
        for (int g = 0; g < 5; g++) SHA1_NI_GROUP(g, 0);
        for (int g = 5; g < 10; g++) SHA1_NI_GROUP(g, 1);
        for (int g = 10; g < 15; g++) SHA1_NI_GROUP(g, 2);
        for (int g = 15; g < 20; g++) SHA1_NI_GROUP(g, 3);
#undef SHA1_NI_GROUP
        e0 = _mm_sha1nexte_epu32(prev, e_save);
        abcd = _mm_add_epi32(abcd, abcd_save);
    }
    _mm_storeu_si128((__m128i *)h, _mm_shuffle_epi32(abcd, 0x1B));
    h[4] = (uint32_t)_mm_extract_epi32(e0, 3);
}
#endif

static void sha1_blocks(uint32_t h[5], const uint8_t *p, size_t nblocks)
{
#if SHA_HAVE_NI
    if (sha_ni_enabled()) {
        sha1_blocks_ni(h, p, nblocks);
        return;
    }
#endif
    for (; nblocks > 0; nblocks--, p += 64) sha1_block(h, p);
}

void sha1(const void *data, size_t len, uint8_t out[SHA1_LEN])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    const uint8_t *p = data;
    uint64_t bits = (uint64_t)len * 8;
    sha1_blocks(h, p, len / 64);
    p += len & ~(size_t)63;
    len &= 63;
    uint8_t buf[128] = {0};
    if (len) memcpy(buf, p, len);
    buf[len] = 0x80;
    size_t end = len + 1 > 56 ? 128 : 64;
    store_be32(buf + end - 8, (uint32_t)(bits >> 32));
    store_be32(buf + end - 4, (uint32_t)bits);
    sha1_blocks(h, buf, end / 64);
    for (int i = 0; i < 5; i++) store_be32(out + 4 * i, h[i]);
}

int sha_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++) d |= (uint8_t)(x[i] ^ y[i]);
    return d == 0;
}
