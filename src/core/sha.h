/* SHA-256, HMAC-SHA256 and SHA-1 (FIPS 180-4, RFC 2104), small and allocation-free, for the
 * handshake path: an HS256 token's signature, the WebSocket accept key and the recovery pid's
 * user hash. OpenSSL 3's EVP path for these costs a provider lookup, a context allocation and
 * parameter parsing per call (about 40k instructions per handshake in all) and pages in much of
 * libcrypto; these are a few hundred instructions per 64-byte block. Nothing here branches
 * on the data or the key. */
#ifndef PARLOR_CORE_SHA_H
#define PARLOR_CORE_SHA_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define SHA1_LEN   20

typedef struct {
    uint32_t h[8];
    uint64_t total; /* bytes hashed */
    uint8_t buf[64];
    size_t n; /* bytes in buf */
} sha256_ctx_t;

void sha256_init(sha256_ctx_t *c);
void sha256_update(sha256_ctx_t *c, const void *p, size_t len);
void sha256_final(sha256_ctx_t *c, uint8_t out[SHA256_LEN]);
void sha256(const void *p, size_t len, uint8_t out[SHA256_LEN]);

/* An HMAC-SHA256 key made once: the inner and outer states after the padded key block, so
 * that a MAC costs only the message's blocks and two more. */
typedef struct {
    sha256_ctx_t inner, outer;
} hmac_sha256_key_t;

void hmac_sha256_key(hmac_sha256_key_t *k, const void *key, size_t len);
void hmac_sha256(const hmac_sha256_key_t *k, const void *p, size_t len, uint8_t out[SHA256_LEN]);

/* SHA-256 and SHA-1 use the CPU's SHA extensions when it has them (x86-64 SHA-NI, asked once). For
 * tests: on = 0 forces the portable code, 1 goes back to asking the CPU; returns the previous
 * setting (1, 0, or -1 when not yet asked). */
int sha256_use_cpu_extensions(int on);

void sha1(const void *p, size_t len, uint8_t out[SHA1_LEN]);

/* Compares n bytes in time that does not depend on where they differ. */
int sha_equal(const void *a, const void *b, size_t n);

#endif
