/* libFuzzer target: auth_jwt_verify on arbitrary tokens, on validly signed arbitrary JSON, and
 * the sign -> verify round trip, all against one HS256 verifier. The property that matters is
 * checked on every accepted token: it carries exactly the HMAC-SHA256 of its signing input
 * under the configured secret, and its header names HS256 (alg:none, another algorithm or a
 * forged MAC never verifies). */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_jwt.h"

#define FUZZ_NOW ((int64_t)1700000000)

static const char fuzz_secret[] = "fuzz-secret-0123456789abcdef-0123456789";

static auth_jwt_t *fuzz_verifier(void)
{
    static auth_jwt_t *a;
    if (a == NULL) {
        auth_jwt_config_t c = {
            "HS256", (const unsigned char *)fuzz_secret, sizeof(fuzz_secret) - 1, "iss", "aud", -1,
            0};
        if (auth_jwt_new(&c, &a, NULL, 0) != AUTH_OK) abort();
    }
    return a;
}

static size_t fuzz_b64url(const uint8_t *in, size_t n, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = tbl[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = tbl[v & 63];
    }
    return o;
}

/* Decodes base64url without padding; unused trailing bits are ignored (lenient on purpose:
 * the property is about the MAC bytes, not the verifier's strictness). -1 on a bad character. */
static int fuzz_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *len)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        int v = ch >= 'A' && ch <= 'Z'   ? ch - 'A'
                : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
                : ch >= '0' && ch <= '9' ? ch - '0' + 52
                : ch == '-'              ? 62
                : ch == '_'              ? 63
                                         : -1;
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap) return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    *len = o;
    return 0;
}

/* Called for every token the verifier accepted: abort unless it is genuinely ours. */
static void fuzz_check_accepted(const char *tok, size_t n)
{
    const char *d1 = memchr(tok, '.', n);
    if (!d1) abort();
    const char *d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - tok));
    if (!d2) abort();
    unsigned char mac[32], got[64], hdr[4096];
    unsigned int mlen = 0;
    size_t glen = 0, hlen = 0;
    HMAC(EVP_sha256(), fuzz_secret, (int)sizeof(fuzz_secret) - 1, (const unsigned char *)tok,
         (size_t)(d2 - tok), mac, &mlen);
    if (fuzz_b64url_decode(d2 + 1, n - (size_t)(d2 + 1 - tok), got, sizeof got, &glen) != 0 ||
        glen != mlen || memcmp(got, mac, mlen) != 0)
        abort(); /* accepted without our MAC */
    if (fuzz_b64url_decode(tok, (size_t)(d1 - tok), hdr, sizeof hdr, &hlen) != 0) abort();
    json_t *h = json_loadb((const char *)hdr, hlen, 0, NULL);
    json_t *alg = h ? json_object_get(h, "alg") : NULL;
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0)
        abort(); /* accepted under another algorithm */
    json_decref(h);
}

/* data = header JSON '\n' payload JSON: encode and sign it so the claim checks get reached. */
static void fuzz_signed(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hl = nl ? (size_t)(nl - data) : size, pl = nl ? size - hl - 1 : 0;
    char *tok = malloc(size * 2 + 64);
    unsigned char mac[32];
    unsigned int mlen = 0;
    size_t n;
    auth_claims_t c;

    n = fuzz_b64url(data, hl, tok);
    tok[n++] = '.';
    n += fuzz_b64url(data + hl + (nl ? 1 : 0), pl, tok + n);
    HMAC(EVP_sha256(), fuzz_secret, (int)sizeof(fuzz_secret) - 1, (unsigned char *)tok, n, mac,
         &mlen);
    tok[n++] = '.';
    n += fuzz_b64url(mac, mlen, tok + n);
    if (auth_jwt_verify(fuzz_verifier(), str_make(tok, n), FUZZ_NOW, &c) == AUTH_OK) {
        if (c.sub[0] == '\0' || strlen(c.sub) > AUTH_SUB_MAX) abort();
        fuzz_check_accepted(tok, n);
    }
    free(tok);
}

/* data = sub '\0' name '\0' role: whatever sign() accepts, verify() must accept unchanged. */
static void fuzz_round_trip(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 3), *parts[3], *tok = NULL;
    size_t p = 0;
    auth_claims_t c;

    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = buf[size + 2] = '\0';
    for (int i = 0; i < 3; i++) {
        parts[i] = buf + p;
        p += strlen(buf + p) + 1;
        if (p > size + 2) p = size + 2;
    }
    if (auth_jwt_sign(fuzz_verifier(), parts[0], parts[1], parts[2], FUZZ_NOW, 60, &tok) ==
        AUTH_OK) {
        if (auth_jwt_verify(fuzz_verifier(), str_cstr(tok), FUZZ_NOW, &c) != AUTH_OK ||
            strcmp(c.sub, parts[0]) != 0 || strcmp(c.name, parts[1]) != 0 ||
            strcmp(c.role, parts[2]) != 0 || c.exp != FUZZ_NOW + 60)
            abort();
        free(tok);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        auth_jwt_verify(fuzz_verifier(), str_make((const char *)data, 0), FUZZ_NOW, NULL);
        return 0;
    }
    switch (data[0]) {
    case '!':
        fuzz_signed(data + 1, size - 1);
        break;
    case '?':
        fuzz_round_trip(data + 1, size - 1);
        break;
    default: {
        auth_claims_t c;
        if (auth_jwt_verify(fuzz_verifier(), str_make((const char *)data, size), FUZZ_NOW, &c) ==
            AUTH_OK)
            fuzz_check_accepted((const char *)data, size);
        break;
    }
    }
    return 0;
}
