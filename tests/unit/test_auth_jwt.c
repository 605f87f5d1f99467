/* Unit tests of auth_jwt: every refusal case, leeway boundaries and the three algorithms. */
#include "auth/auth_jwt.h"

#include <jwt.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>

#include "unit.h"

#define NOW ((int64_t)1700000000)

static const char SECRET[] = "0123456789abcdef0123456789abcdef-test-secret";
#define SECRET_LEN (sizeof(SECRET) - 1)

/* Keys are generated per run so that no private key is ever committed. */
static EVP_PKEY *rsa_key, *ec_key;
static char *rsa_pub_pem, *ec_pub_pem, *rsa_priv_pem, *ec_priv_pem;

/* ---- helpers: a tiny independent JWS signer, so tokens can be malformed on purpose ---- */

static char *fmt(const char *f, ...)
{
    static char ring[16][16384];
    static int next;
    char *b = ring[next++ % 16];
    va_list ap;

    va_start(ap, f);
    vsnprintf(b, sizeof(ring[0]), f, ap);
    va_end(ap);
    return b;
}

static void b64url(const unsigned char *in, size_t n, char *out)
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
    out[o] = '\0';
}

/* header.payload, both given as raw JSON text (or any bytes). */
static char *signing_input(const char *header, size_t hlen, const char *payload, size_t plen)
{
    char *s = malloc(hlen * 2 + plen * 2 + 8);
    b64url((const unsigned char *)header, hlen, s);
    strcat(s, ".");
    b64url((const unsigned char *)payload, plen, s + strlen(s));
    return s;
}

static char *append_sig(char *input, const unsigned char *sig, size_t slen)
{
    size_t n = strlen(input);
    char *t = realloc(input, n + slen * 2 + 4);
    t[n] = '.';
    b64url(sig, slen, t + n + 1);
    return t;
}

static char *tok_hs_key(const char *h, const char *p, const void *key, size_t klen)
{
    char *in = signing_input(h, strlen(h), p, strlen(p));
    unsigned char mac[32];
    unsigned int mlen = 0;
    HMAC(EVP_sha256(), key, (int)klen, (unsigned char *)in, strlen(in), mac, &mlen);
    return append_sig(in, mac, mlen);
}

static char *tok_hs(const char *h, const char *p)
{
    return tok_hs_key(h, p, SECRET, SECRET_LEN);
}

/* RS256 (PKCS#1 v1.5) or ES256 (raw R||S, or DER when der is set) with a private key. */
static char *tok_pk_der(const char *h, const char *p, EVP_PKEY *k, bool der)
{
    char *in = signing_input(h, strlen(h), p, strlen(p));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[1024], raw[64];
    size_t slen = sizeof(sig);

    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k);
    EVP_DigestSign(md, sig, &slen, (unsigned char *)in, strlen(in));
    EVP_MD_CTX_free(md);
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC && !der) {
        const unsigned char *q = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)slen);
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
        ECDSA_SIG_free(es);
        return append_sig(in, raw, 64);
    }
    return append_sig(in, sig, slen);
}

static char *tok_pk(const char *h, const char *p, EVP_PKEY *k)
{
    return tok_pk_der(h, p, k, false);
}

static char *tok_raw(const char *h, const char *p, const char *sig_b64)
{
    char *in = signing_input(h, strlen(h), p, strlen(p));
    char *t = malloc(strlen(in) + strlen(sig_b64) + 2);
    sprintf(t, "%s.%s", in, sig_b64);
    free(in);
    return t;
}

/* Verifies and frees tok. */
static int V(const auth_jwt_t *a, char *tok, auth_claims_t *out)
{
    int rc = auth_jwt_verify(a, str_cstr(tok), NOW, out);
    free(tok);
    return rc;
}

static int VS(const auth_jwt_t *a, const char *tok)
{
    return auth_jwt_verify(a, str_cstr(tok), NOW, NULL);
}

#define HS_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define RS_HDR "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define ES_HDR "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"

static const char *claims_exp(int64_t exp)
{
    return fmt("{\"sub\":\"alice\",\"exp\":%lld}", (long long)exp);
}

static const char *good_claims(void)
{
    return claims_exp(NOW + 600);
}

static auth_jwt_t *mk(const char *alg, const void *key, size_t key_len, const char *iss,
                      const char *aud, int leeway, size_t max_len)
{
    auth_jwt_config_t c = {alg, key, key_len, iss, aud, leeway, max_len};
    auth_jwt_t *a = NULL;
    char err[160];
    int rc = auth_jwt_new(&c, &a, err, sizeof(err));
    if (rc != AUTH_OK) fprintf(stderr, "auth_jwt_new(%s): %s\n", alg, err);
    return a;
}

static auth_jwt_t *mk_hs(void)
{
    return mk("HS256", SECRET, SECRET_LEN, NULL, NULL, -1, 0);
}

static char *pem_of(EVP_PKEY *k, bool priv)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p, *r;
    long n;
    if (priv)
        PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    else
        PEM_write_bio_PUBKEY(b, k);
    n = BIO_get_mem_data(b, &p);
    r = strndup(p, (size_t)n);
    BIO_free(b);
    return r;
}

/* ---- configuration ---- */

static void test_config_errors(void)
{
    auth_jwt_t *a = (auth_jwt_t *)1;
    char err[160];
    auth_jwt_config_t c = {"HS256", (const unsigned char *)SECRET, SECRET_LEN, NULL, NULL, -1, 0};

    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_OK);
    auth_jwt_free(a);
    auth_jwt_free(NULL);

    c.alg = "hs256";
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    CHECK(a == NULL);
    CHECK(strstr(err, "algorithm") != NULL);
    c.alg = "none";
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    c.alg = "HS512";
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    c.alg = NULL;
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    CHECK_EQ_INT(auth_jwt_new(NULL, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    c.alg = "HS256";
    CHECK_EQ_INT(auth_jwt_new(&c, NULL, err, sizeof(err)), AUTH_ERR_CONFIG);

    /* secret length: 31 refused, 32 accepted */
    c.key_len = 31;
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    CHECK(strstr(err, "secret") != NULL);
    c.key_len = 32;
    CHECK_EQ_INT(auth_jwt_new(&c, &a, NULL, 0), AUTH_OK);
    auth_jwt_free(a);
    c.key_len = 0;
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    c.key = NULL;
    c.key_len = SECRET_LEN;
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    c.key = (const unsigned char *)SECRET;

    /* leeway and max length bounds */
    c.leeway_s = AUTH_JWT_MAX_LEEWAY_S + 1;
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    c.leeway_s = AUTH_JWT_MAX_LEEWAY_S;
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_OK);
    auth_jwt_free(a);
    c.leeway_s = 0;
    c.max_token_len = AUTH_JWT_MIN_MAX_TOKEN_LEN - 1;
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    c.max_token_len = AUTH_JWT_MAX_MAX_TOKEN_LEN + 1;
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    c.max_token_len = AUTH_JWT_MAX_MAX_TOKEN_LEN;
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_OK);
    auth_jwt_free(a);
}

static void test_config_keys(void)
{
    auth_jwt_t *a = NULL;
    char err[160];
    EVP_PKEY *small = EVP_RSA_gen(1024), *p384 = EVP_EC_gen("P-384");
    char *small_pem = pem_of(small, false), *p384_pem = pem_of(p384, false);
    auth_jwt_config_t c = {
        "RS256", (const unsigned char *)rsa_pub_pem, strlen(rsa_pub_pem), NULL, NULL, -1, 0};

    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_OK);
    auth_jwt_free(a);
    /* garbage, private key, wrong key type, small RSA, wrong curve */
    c.key = (const unsigned char *)"not a pem at all, just a long string of secret bytes";
    c.key_len = strlen((const char *)c.key);
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    CHECK(strstr(err, "PUBLIC KEY") != NULL);
    c.key = (const unsigned char *)rsa_priv_pem;
    c.key_len = strlen(rsa_priv_pem);
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    c.key = (const unsigned char *)ec_pub_pem;
    c.key_len = strlen(ec_pub_pem);
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    CHECK(strstr(err, "RSA") != NULL);
    c.key = (const unsigned char *)small_pem;
    c.key_len = strlen(small_pem);
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    CHECK(strstr(err, "1024") != NULL);

    c.alg = "ES256";
    c.key = (const unsigned char *)ec_pub_pem;
    c.key_len = strlen(ec_pub_pem);
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_OK);
    auth_jwt_free(a);
    c.key = (const unsigned char *)p384_pem;
    c.key_len = strlen(p384_pem);
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    CHECK(strstr(err, "P-256") != NULL);
    c.key = (const unsigned char *)rsa_pub_pem;
    c.key_len = strlen(rsa_pub_pem);
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    c.key = (const unsigned char *)ec_priv_pem;
    c.key_len = strlen(ec_priv_pem);
    CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_ERR_CONFIG);
    /* the PEM need not be NUL-terminated: key_len bounds it */
    {
        size_t n = strlen(ec_pub_pem);
        char *copy = malloc(n);
        memcpy(copy, ec_pub_pem, n);
        c.key = (const unsigned char *)copy;
        c.key_len = n;
        CHECK_EQ_INT(auth_jwt_new(&c, &a, err, sizeof(err)), AUTH_OK);
        auth_jwt_free(a);
        free(copy);
    }
    CHECK_EQ_INT(ERR_peek_error(), 0); /* no stale OpenSSL errors left on this thread */
    EVP_PKEY_free(small);
    EVP_PKEY_free(p384);
    free(small_pem);
    free(p384_pem);
}

static void test_error_codes(void)
{
    CHECK(strcmp(auth_error_code(AUTH_OK), "OK") == 0);
    CHECK(strcmp(auth_error_code(AUTH_ERR_MISSING), "AUTH_MISSING") == 0);
    CHECK(strcmp(auth_error_code(AUTH_ERR_INVALID), "AUTH_INVALID") == 0);
    CHECK(strcmp(auth_error_code(AUTH_ERR_EXPIRED), "AUTH_EXPIRED") == 0);
    CHECK(strcmp(auth_error_code(AUTH_ERR_CONFIG), "AUTH_CONFIG") == 0);
    CHECK(strcmp(auth_error_code(AUTH_ERR_NOMEM), "INTERNAL") == 0);
    CHECK(strcmp(auth_error_code(12345), "INTERNAL") == 0);
}

/* ---- valid tokens ---- */

static void test_hs256_sign_verify(void)
{
    auth_jwt_t *a = mk_hs();
    auth_claims_t c;
    char *tok = NULL;

    CHECK_EQ_INT(auth_jwt_sign(a, "alice", "Alice Ünïcødé", "owner", NOW, 3600, &tok), AUTH_OK);
    CHECK(tok != NULL && strncmp(tok, "eyJ", 3) == 0);
    CHECK_EQ_INT(V(a, tok, &c), AUTH_OK);
    CHECK(strcmp(c.sub, "alice") == 0);
    CHECK(strcmp(c.name, "Alice Ünïcødé") == 0);
    CHECK(strcmp(c.role, "owner") == 0);
    CHECK_EQ_INT(c.exp, NOW + 3600);

    /* name and role omitted */
    CHECK_EQ_INT(auth_jwt_sign(a, "bob_2-x", NULL, NULL, NOW, 60, &tok), AUTH_OK);
    CHECK_EQ_INT(V(a, tok, &c), AUTH_OK);
    CHECK(strcmp(c.sub, "bob_2-x") == 0);
    CHECK(c.name[0] == '\0' && c.role[0] == '\0');

    /* a token signed with another secret is refused */
    {
        auth_jwt_t *b =
            mk("HS256", "another-secret-that-is-at-least-32-bytes", 40, NULL, NULL, -1, 0);
        CHECK_EQ_INT(auth_jwt_sign(b, "alice", NULL, NULL, NOW, 60, &tok), AUTH_OK);
        CHECK_EQ_INT(V(a, tok, &c), AUTH_ERR_INVALID);
        CHECK(c.sub[0] == '\0');
        auth_jwt_free(b);
    }
    auth_jwt_free(a);
}

static void test_hs256_handmade(void)
{
    auth_jwt_t *a = mk_hs();
    auth_claims_t c;

    /* minimal header, no typ; extra unknown claims and header fields are ignored */
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256\"}", good_claims()), &c), AUTH_OK);
    CHECK_EQ_INT(V(a,
                   tok_hs("{\"alg\":\"HS256\",\"typ\":\"jwt\",\"kid\":\"k1\"}",
                          fmt("{\"sub\":\"u1\",\"exp\":%lld,\"iat\":%lld,\"nbf\":%lld,"
                              "\"x\":[1,{\"y\":null}],\"aud\":7,\"iss\":false}",
                              (long long)NOW + 5, (long long)NOW, (long long)NOW)),
                   &c),
                 AUTH_OK);
    CHECK(strcmp(c.sub, "u1") == 0);
    /* fractional NumericDates */
    CHECK_EQ_INT(
        V(a,
          tok_hs(HS_HDR, fmt("{\"sub\":\"u\",\"exp\":%lld.5,\"iat\":1.5e9}", (long long)NOW + 100)),
          &c),
        AUTH_OK);
    CHECK_EQ_INT(c.exp, NOW + 101);
    /* whitespace inside the JSON is fine */
    CHECK_EQ_INT(V(a, tok_hs(" { \"alg\" : \"HS256\" } ", good_claims()), &c), AUTH_OK);
    /* limits: sub of 64, name of 128, role of 32 bytes */
    {
        char sub[65], name[129], role[33];
        memset(sub, 'a', 64);
        sub[64] = '\0';
        memset(name, 'n', 128);
        name[128] = '\0';
        memset(role, 'r', 32);
        role[32] = '\0';
        CHECK_EQ_INT(V(a,
                       tok_hs(HS_HDR, fmt("{\"sub\":\"%s\",\"name\":\"%s\",\"role\":\"%s\","
                                          "\"exp\":%lld}",
                                          sub, name, role, (long long)NOW + 60)),
                       &c),
                     AUTH_OK);
        CHECK(strcmp(c.sub, sub) == 0 && strcmp(c.name, name) == 0 && strcmp(c.role, role) == 0);
        /* 2-byte UTF-8 characters: 64 of them are 128 bytes */
        char nm[256] = "";
        for (int i = 0; i < 64; i++) strcat(nm, "\xc3\xa9");
        CHECK_EQ_INT(V(a,
                       tok_hs(HS_HDR, fmt("{\"sub\":\"x\",\"name\":\"%s\",\"exp\":%lld}", nm,
                                          (long long)NOW + 60)),
                       &c),
                     AUTH_OK);
        strcat(nm, "e");
        CHECK_EQ_INT(V(a,
                       tok_hs(HS_HDR, fmt("{\"sub\":\"x\",\"name\":\"%s\",\"exp\":%lld}", nm,
                                          (long long)NOW + 60)),
                       &c),
                     AUTH_ERR_INVALID);
    }
    auth_jwt_free(a);
}

static void test_rs256_es256_valid(void)
{
    auth_jwt_t *rs = mk("RS256", rsa_pub_pem, strlen(rsa_pub_pem), NULL, NULL, -1, 0);
    auth_jwt_t *es = mk("ES256", ec_pub_pem, strlen(ec_pub_pem), NULL, NULL, -1, 0);
    auth_claims_t c;

    CHECK(rs != NULL && es != NULL);
    CHECK_EQ_INT(V(rs, tok_pk(RS_HDR, good_claims(), rsa_key), &c), AUTH_OK);
    CHECK(strcmp(c.sub, "alice") == 0);
    CHECK_EQ_INT(V(es, tok_pk(ES_HDR, good_claims(), ec_key), &c), AUTH_OK);
    CHECK(strcmp(c.sub, "alice") == 0);
    CHECK_EQ_INT(V(rs, tok_pk(RS_HDR, claims_exp(NOW - 3600), rsa_key), &c), AUTH_ERR_EXPIRED);
    CHECK_EQ_INT(V(es, tok_pk(ES_HDR, claims_exp(NOW - 3600), ec_key), &c), AUTH_ERR_EXPIRED);

    /* tokens produced by libjwt itself */
    {
        jwt_t *j = NULL;
        char *t;
        jwt_new(&j);
        jwt_add_grant(j, "sub", "carol");
        jwt_add_grant_int(j, "exp", (long)(NOW + 60));
        jwt_set_alg(j, JWT_ALG_RS256, (unsigned char *)rsa_priv_pem, (int)strlen(rsa_priv_pem));
        t = jwt_encode_str(j);
        CHECK_EQ_INT(V(rs, t, &c), AUTH_OK);
        CHECK(strcmp(c.sub, "carol") == 0);
        jwt_set_alg(j, JWT_ALG_ES256, (unsigned char *)ec_priv_pem, (int)strlen(ec_priv_pem));
        t = jwt_encode_str(j);
        CHECK_EQ_INT(V(es, t, &c), AUTH_OK);
        jwt_free(j);
    }

    /* wrong key of the right type */
    {
        EVP_PKEY *other = EVP_EC_gen("P-256");
        CHECK_EQ_INT(V(es, tok_pk(ES_HDR, good_claims(), other), &c), AUTH_ERR_INVALID);
        EVP_PKEY_free(other);
    }
    /* ES256 signature in DER rather than JOSE's R||S */
    CHECK_EQ_INT(V(es, tok_pk_der(ES_HDR, good_claims(), ec_key, true), &c), AUTH_ERR_INVALID);
    /* tampered payload keeps the old signature */
    {
        char *t = tok_pk(RS_HDR, good_claims(), rsa_key);
        char *t2 = tok_pk(RS_HDR, fmt("{\"sub\":\"mallory\",\"exp\":%lld}", (long long)NOW + 600),
                          rsa_key);
        char *dot1 = strchr(t, '.'), *dot2 = strchr(t2, '.');
        char *forged = fmt("%.*s%.*s%s", (int)(dot1 - t), t, (int)(strrchr(t2, '.') - dot2), dot2,
                           strrchr(t, '.'));
        CHECK_EQ_INT(VS(rs, forged), AUTH_ERR_INVALID);
        free(t);
        free(t2);
    }
    /* signing with sign() is HS256-only */
    {
        char *t = (char *)1;
        CHECK_EQ_INT(auth_jwt_sign(rs, "alice", NULL, NULL, NOW, 60, &t), AUTH_ERR_CONFIG);
        CHECK(t == NULL);
        CHECK_EQ_INT(auth_jwt_sign(es, "alice", NULL, NULL, NOW, 60, &t), AUTH_ERR_CONFIG);
    }
    CHECK_EQ_INT(ERR_peek_error(), 0);
    auth_jwt_free(rs);
    auth_jwt_free(es);
}

/* ---- algorithm confusion ---- */

static void test_alg_none(void)
{
    auth_jwt_t *a = mk_hs();
    auth_jwt_t *rs = mk("RS256", rsa_pub_pem, strlen(rsa_pub_pem), NULL, NULL, -1, 0);
    char payload[256];
    b64url((const unsigned char *)good_claims(), strlen(good_claims()), payload);

    CHECK_EQ_INT(VS(a, fmt("eyJhbGciOiJub25lIn0.%s.", payload)), AUTH_ERR_INVALID);
    CHECK_EQ_INT(VS(rs, fmt("eyJhbGciOiJub25lIn0.%s.", payload)), AUTH_ERR_INVALID);
    /* none with a made-up signature, and its other spellings */
    CHECK_EQ_INT(V(a, tok_raw("{\"alg\":\"none\"}", good_claims(), "AAAA"), NULL),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"none\"}", good_claims()), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"None\"}", good_claims()), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"NONE\"}", good_claims()), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"\"}", good_claims()), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"typ\":\"JWT\"}", good_claims()), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":null}", good_claims()), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":256}", good_claims()), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":[\"HS256\"]}", good_claims()), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"hs256\"}", good_claims()), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256 \"}", good_claims()), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256\\u0000\"}", good_claims()), NULL), AUTH_ERR_INVALID);
    auth_jwt_free(a);
    auth_jwt_free(rs);
}

static void test_alg_mismatch(void)
{
    auth_jwt_t *hs = mk_hs();
    auth_jwt_t *rs = mk("RS256", rsa_pub_pem, strlen(rsa_pub_pem), NULL, NULL, -1, 0);
    auth_jwt_t *es = mk("ES256", ec_pub_pem, strlen(ec_pub_pem), NULL, NULL, -1, 0);

    CHECK_EQ_INT(V(hs, tok_pk(RS_HDR, good_claims(), rsa_key), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(hs, tok_pk(ES_HDR, good_claims(), ec_key), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(rs, tok_hs(HS_HDR, good_claims()), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(rs, tok_pk(ES_HDR, good_claims(), ec_key), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(es, tok_pk(RS_HDR, good_claims(), rsa_key), NULL), AUTH_ERR_INVALID);
    /* right signature, header lying about its algorithm */
    CHECK_EQ_INT(V(rs, tok_pk(ES_HDR, good_claims(), rsa_key), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(es, tok_pk(RS_HDR, good_claims(), ec_key), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(hs, tok_hs("{\"alg\":\"HS384\"}", good_claims()), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(hs, tok_hs("{\"alg\":\"HS512\"}", good_claims()), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(rs, tok_pk("{\"alg\":\"PS256\"}", good_claims(), rsa_key), NULL),
                 AUTH_ERR_INVALID);
    auth_jwt_free(hs);
    auth_jwt_free(rs);
    auth_jwt_free(es);
}

/* The classic confusion: an attacker HMACs with the RS256 public key PEM as the secret. */
static void test_hmac_with_public_key(void)
{
    auth_jwt_t *rs = mk("RS256", rsa_pub_pem, strlen(rsa_pub_pem), NULL, NULL, -1, 0);
    auth_jwt_t *es = mk("ES256", ec_pub_pem, strlen(ec_pub_pem), NULL, NULL, -1, 0);

    CHECK_EQ_INT(V(rs, tok_hs_key(HS_HDR, good_claims(), rsa_pub_pem, strlen(rsa_pub_pem)), NULL),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(es, tok_hs_key(HS_HDR, good_claims(), ec_pub_pem, strlen(ec_pub_pem)), NULL),
                 AUTH_ERR_INVALID);
    /* even with the header claiming RS256, the HMAC does not verify as a signature */
    CHECK_EQ_INT(V(rs, tok_hs_key(RS_HDR, good_claims(), rsa_pub_pem, strlen(rsa_pub_pem)), NULL),
                 AUTH_ERR_INVALID);
    /* And the bare library would have accepted it: the reason for the header check. */
    {
        jwt_t *j = NULL;
        char *t = tok_hs_key(HS_HDR, good_claims(), rsa_pub_pem, strlen(rsa_pub_pem));
        CHECK_EQ_INT(jwt_decode(&j, t, (unsigned char *)rsa_pub_pem, (int)strlen(rsa_pub_pem)), 0);
        jwt_free(j);
        free(t);
    }
    auth_jwt_free(rs);
    auth_jwt_free(es);
}

/* ---- structure ---- */

static void test_missing_and_length(void)
{
    auth_jwt_t *a = mk_hs();
    auth_claims_t c;
    char *tok;

    memset(&c, 'x', sizeof(c));
    CHECK_EQ_INT(auth_jwt_verify(a, STR_NULL, NOW, &c), AUTH_ERR_MISSING);
    CHECK(c.sub[0] == '\0');
    CHECK_EQ_INT(auth_jwt_verify(a, str_make("abc", 0), NOW, &c), AUTH_ERR_MISSING);
    CHECK_EQ_INT(VS(a, " "), AUTH_ERR_INVALID);
    CHECK_EQ_INT(VS(a, "."), AUTH_ERR_INVALID);
    CHECK_EQ_INT(VS(a, ".."), AUTH_ERR_INVALID);

    /* default limit is 8 KiB: a valid token just over it is refused */
    {
        static char big[9000];
        memset(big, 'p', 6500);
        big[6500] = '\0';
        tok = tok_hs(HS_HDR,
                     fmt("{\"sub\":\"a\",\"exp\":%lld,\"pad\":\"%s\"}", (long long)NOW + 60, big));
        CHECK(strlen(tok) > 8192);
        CHECK_EQ_INT(V(a, tok, NULL), AUTH_ERR_INVALID);
        big[5000] = '\0';
        tok = tok_hs(HS_HDR,
                     fmt("{\"sub\":\"a\",\"exp\":%lld,\"pad\":\"%s\"}", (long long)NOW + 60, big));
        CHECK(strlen(tok) < 8192);
        CHECK_EQ_INT(V(a, tok, NULL), AUTH_OK);
    }
    /* exact boundary with a configured limit: len == max ok, max - 1 refused */
    {
        tok = tok_hs(HS_HDR, good_claims());
        size_t n = strlen(tok);
        auth_jwt_t *eq = mk("HS256", SECRET, SECRET_LEN, NULL, NULL, -1, n);
        auth_jwt_t *lt = mk("HS256", SECRET, SECRET_LEN, NULL, NULL, -1, n - 1);
        CHECK_EQ_INT(VS(eq, tok), AUTH_OK);
        CHECK_EQ_INT(VS(lt, tok), AUTH_ERR_INVALID);
        /* a length that is not the string's: the NUL-free (ptr,len) view is what counts */
        CHECK_EQ_INT(auth_jwt_verify(eq, str_make(tok, n - 1), NOW, NULL), AUTH_ERR_INVALID);
        auth_jwt_free(eq);
        auth_jwt_free(lt);
        free(tok);
    }
    auth_jwt_free(a);
}

static void test_segments(void)
{
    auth_jwt_t *a = mk_hs();
    char *t = tok_hs(HS_HDR, good_claims());
    const char *d1 = strchr(t, '.'), *d2 = strrchr(t, '.');
    int hl = (int)(d1 - t), pl = (int)(d2 - d1 - 1);
    const char *h = t, *p = d1 + 1, *s = d2 + 1;

    CHECK_EQ_INT(VS(a, t), AUTH_OK);
    CHECK_EQ_INT(VS(a, fmt("%.*s.%.*s", hl, h, pl, p)), AUTH_ERR_INVALID);        /* 2 segments */
    CHECK_EQ_INT(VS(a, fmt("%.*s.%.*s.", hl, h, pl, p)), AUTH_ERR_INVALID);       /* empty sig */
    CHECK_EQ_INT(VS(a, fmt("%s.", t)), AUTH_ERR_INVALID);                         /* 4, empty */
    CHECK_EQ_INT(VS(a, fmt("%s.%s", t, s)), AUTH_ERR_INVALID);                    /* 4 segments */
    CHECK_EQ_INT(VS(a, fmt("%s.%s.%s", t, s, s)), AUTH_ERR_INVALID);              /* 5 (JWE) */
    CHECK_EQ_INT(VS(a, fmt(".%.*s.%s", pl, p, s)), AUTH_ERR_INVALID);             /* no header */
    CHECK_EQ_INT(VS(a, fmt("%.*s..%s", hl, h, s)), AUTH_ERR_INVALID);             /* no payload */
    CHECK_EQ_INT(VS(a, fmt(".%s", t)), AUTH_ERR_INVALID);                         /* leading dot */
    CHECK_EQ_INT(VS(a, fmt("%.*s.%.*s..%s", hl, h, pl, p, s)), AUTH_ERR_INVALID); /* double dot */
    CHECK_EQ_INT(VS(a, fmt("%.*s", hl, h)), AUTH_ERR_INVALID);
    /* truncated signature, one char and one full group short */
    CHECK_EQ_INT(VS(a, fmt("%.*s", (int)strlen(t) - 1, t)), AUTH_ERR_INVALID);
    CHECK_EQ_INT(VS(a, fmt("%.*s", (int)strlen(t) - 4, t)), AUTH_ERR_INVALID);
    /* signature with an extra valid-looking byte */
    CHECK_EQ_INT(VS(a, fmt("%sAA", t)), AUTH_ERR_INVALID);
    /* padding, standard-alphabet chars, spaces, "Bearer " prefix, trailing newline, NUL */
    CHECK_EQ_INT(VS(a, fmt("%s=", t)), AUTH_ERR_INVALID);
    CHECK_EQ_INT(VS(a, fmt("%.*s=.%.*s.%s", hl, h, pl, p, s)), AUTH_ERR_INVALID);
    CHECK_EQ_INT(VS(a, fmt("%.*s+.%.*s.%s", hl, h, pl, p, s)), AUTH_ERR_INVALID);
    CHECK_EQ_INT(VS(a, fmt("%.*s/.%.*s.%s", hl, h, pl, p, s)), AUTH_ERR_INVALID);
    CHECK_EQ_INT(VS(a, fmt(" %s", t)), AUTH_ERR_INVALID);
    CHECK_EQ_INT(VS(a, fmt("%s ", t)), AUTH_ERR_INVALID);
    CHECK_EQ_INT(VS(a, fmt("%s\n", t)), AUTH_ERR_INVALID);
    CHECK_EQ_INT(VS(a, fmt("Bearer %s", t)), AUTH_ERR_INVALID);
    CHECK_EQ_INT(VS(a, fmt("%.*s. %.*s.%s", hl, h, pl, p, s)), AUTH_ERR_INVALID);
    {
        char *z = fmt("%s", t);
        size_t n = strlen(z);
        z[hl + 3] = '\0'; /* NUL inside the header, length still covers it */
        CHECK_EQ_INT(auth_jwt_verify(a, str_make(z, n), NOW, NULL), AUTH_ERR_INVALID);
    }
    free(t);
    auth_jwt_free(a);
}

static void test_base64_canonical(void)
{
    auth_jwt_t *a = mk_hs();
    char *t = tok_hs(HS_HDR, good_claims());
    char *m;
    size_t n = strlen(t);

    /* The HS256 signature is 43 chars: 32 bytes leave 2 unused low bits in the last char. A
     * different char with the same high bits decodes to the same bytes: refused. */
    CHECK_EQ_INT(n - (size_t)(strrchr(t, '.') - t) - 1, 43);
    m = fmt("%s", t);
    {
        static const char tbl[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        int v = (int)(strchr(tbl, m[n - 1]) - tbl);
        m[n - 1] = tbl[v ^ 1];
    }
    CHECK_EQ_INT(VS(a, m), AUTH_ERR_INVALID);
    /* ES256 and RS256 signatures (86 and 342 chars) leave 4 unused bits. libjwt's own decoder
     * ignores them, so only the canonical check refuses this second spelling. */
    {
        static const char tbl[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        auth_jwt_t *es = mk("ES256", ec_pub_pem, strlen(ec_pub_pem), NULL, NULL, -1, 0);
        auth_jwt_t *rs = mk("RS256", rsa_pub_pem, strlen(rsa_pub_pem), NULL, NULL, -1, 0);
        char *te = tok_pk(ES_HDR, good_claims(), ec_key),
             *tr = tok_pk(RS_HDR, good_claims(), rsa_key);
        size_t ne = strlen(te), nr = strlen(tr);
        CHECK_EQ_INT(VS(es, te), AUTH_OK);
        CHECK_EQ_INT(VS(rs, tr), AUTH_OK);
        CHECK_EQ_INT(ne - (size_t)(strrchr(te, '.') - te) - 1, 86);
        te[ne - 1] = tbl[(strchr(tbl, te[ne - 1]) - tbl) ^ 1];
        tr[nr - 1] = tbl[(strchr(tbl, tr[nr - 1]) - tbl) ^ 8];
        CHECK_EQ_INT(VS(es, te), AUTH_ERR_INVALID);
        CHECK_EQ_INT(VS(rs, tr), AUTH_ERR_INVALID);
        /* ...and the bare library would have taken it */
        {
            jwt_t *j = NULL;
            CHECK_EQ_INT(jwt_decode(&j, te, (unsigned char *)ec_pub_pem, (int)strlen(ec_pub_pem)),
                         0);
            jwt_free(j);
        }
        free(te);
        free(tr);
        auth_jwt_free(es);
        auth_jwt_free(rs);
    }
    /* segment length % 4 == 1 can never be base64 */
    CHECK_EQ_INT(V(a, tok_raw(HS_HDR, good_claims(), "AAAAA"), NULL), AUTH_ERR_INVALID);
    /* payload with a non-canonical last char: "e30" is "{}", "e31" has stray bits */
    CHECK_EQ_INT(VS(a, fmt("eyJhbGciOiJIUzI1NiJ9.e31.%.43s", strrchr(t, '.') + 1)),
                 AUTH_ERR_INVALID);
    free(t);
    auth_jwt_free(a);
}

static void test_tampering(void)
{
    auth_jwt_t *a = mk_hs();
    char *t = NULL;
    CHECK_EQ_INT(auth_jwt_sign(a, "alice", "Alice", "tenant", NOW, 600, &t), AUTH_OK);
    size_t n = strlen(t);
    size_t d1 = (size_t)(strchr(t, '.') - t), d2 = (size_t)(strrchr(t, '.') - t);

    /* flip one character in each segment (the sig's first char, so no canonical-bit issue) */
    size_t where[] = {1, d1 + 2, d1 + 10, d2 + 1, d2 + 20};
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        char *m = fmt("%s", t);
        m[where[i]] = m[where[i]] == 'A' ? 'B' : 'A';
        CHECK_EQ_INT(VS(a, m), AUTH_ERR_INVALID);
    }
    /* swap payload for a forged one with the original signature */
    {
        char pl[512];
        const char *forged =
            fmt("{\"sub\":\"admin\",\"role\":\"owner\",\"exp\":%lld}", (long long)NOW + 600);
        b64url((const unsigned char *)forged, strlen(forged), pl);
        CHECK_EQ_INT(VS(a, fmt("%.*s.%s%s", (int)d1, t, pl, t + d2)), AUTH_ERR_INVALID);
    }
    /* signature of the right length but all zero bytes */
    CHECK_EQ_INT(VS(a, fmt("%.*s.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", (int)d2, t)),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT((int)n > 0, 1);
    free(t);
    auth_jwt_free(a);
}

static void test_header_json(void)
{
    auth_jwt_t *a = mk_hs();
    const char *p = good_claims();

    CHECK_EQ_INT(V(a, tok_hs("[\"HS256\"]", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("\"HS256\"", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("256", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("null", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256\"", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256\"}x", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256\"}{}", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{'alg':'HS256'}", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256\",}", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("\xef\xbb\xbf{\"alg\":\"HS256\"}", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256\",\"x\":\"\xff\"}", p), NULL), AUTH_ERR_INVALID);
    /* duplicate alg: parsers disagree on which wins, so neither does */
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"none\",\"alg\":\"HS256\"}", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", p), NULL), AUTH_ERR_INVALID);
    /* typ must be JWT when present; crit is refused */
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256\",\"typ\":\"JWTX\"}", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256\",\"typ\":1}", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256\",\"typ\":null}", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs("{\"alg\":\"HS256\",\"crit\":[]}", p), NULL), AUTH_ERR_INVALID);
    /* the empty object is not a header; the JSON is parsed before any signature check */
    CHECK_EQ_INT(V(a, tok_hs("{}", p), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_raw("{}", p, "AAAA"), NULL), AUTH_ERR_INVALID);
    auth_jwt_free(a);
}

static void test_payload_json(void)
{
    auth_jwt_t *a = mk_hs();

    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "[]"), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "[{\"sub\":\"a\",\"exp\":9999999999}]"), NULL),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "\"alice\""), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{}"), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":9999999999"), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":99999999999999999999}"), NULL),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":NaN}"), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":1e999}"), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":9999999999,\"n\":\"\xc3\"}"), NULL),
                 AUTH_ERR_INVALID);
    /* duplicate sub: a forger could hope one parser reads the other */
    CHECK_EQ_INT(
        V(a, tok_hs(HS_HDR, "{\"sub\":\"alice\",\"sub\":\"admin\",\"exp\":9999999999}"), NULL),
        AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":9999999999,\"exp\":1}"), NULL),
                 AUTH_ERR_INVALID);
    /* sanity: the same shape without the defect is accepted */
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":9999999999}"), NULL), AUTH_OK);
    /* huge exp clamps to "far future", huge negative to the past */
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":9223372036854775807}"), NULL),
                 AUTH_OK);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":1e300}"), NULL), AUTH_OK);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":-9223372036854775807}"), NULL),
                 AUTH_ERR_EXPIRED);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":-1e300}"), NULL), AUTH_ERR_EXPIRED);
    /* deep nesting is refused by jansson's depth limit, not by a stack overflow */
    {
        static char deep[6000];
        size_t o = 0;
        o += (size_t)sprintf(deep, "{\"sub\":\"a\",\"exp\":9999999999,\"x\":");
        for (int i = 0; i < 2100; i++) deep[o++] = '[';
        for (int i = 0; i < 2100; i++) deep[o++] = ']';
        deep[o++] = '}';
        deep[o] = '\0';
        auth_jwt_t *big = mk("HS256", SECRET, SECRET_LEN, NULL, NULL, -1, 65536);
        CHECK_EQ_INT(V(big, tok_hs(HS_HDR, deep), NULL), AUTH_ERR_INVALID);
        auth_jwt_free(big);
    }
    auth_jwt_free(a);
}

/* The in-place claims reader against jansson's (auth_jwt_check_payload with jansson_only):
 * the same result and the same claims for plain, unusual and hostile payloads. Each case also
 * states the expected result, so a reader that fell back to jansson for everything would still
 * pass, but one that accepts what jansson refuses (or the reverse) fails. */
static void test_claims_fast_reader(void)
{
    static const struct {
        const char *json;
        int rc;
    } cases[] = {
        {"{\"sub\":\"alice\",\"exp\":1700000600}", AUTH_OK},
        {" {\"sub\":\"alice\",\"exp\":1700000600,\"iat\":1700000000} \n", AUTH_OK},
        {"{\"sub\":\"alice\",\"name\":\"Al\xc3\xaf"
         "ce\",\"role\":\"admin\",\"exp\":1700000600,"
         "\"iss\":\"me\",\"aud\":\"you\",\"x\":null,\"y\":true,\"z\":false,\"w\":-3}",
         AUTH_OK},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"iss\":\"me\",\"aud\":[\"them\",\"you\"]}",
         AUTH_OK},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"iss\":\"me\",\"aud\":[\"them\"]}",
         AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"iss\":\"me\",\"aud\":[\"you\",1]}",
         AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"iss\":\"me\",\"aud\":[]}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"iss\":\"me\",\"aud\":{\"you\":1}}",
         AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"iss\":\"mE\",\"aud\":\"you\"}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1600000000}", AUTH_ERR_EXPIRED},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"scope\":\"server\"}", AUTH_OK},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"scope\":1}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"nbf\":1800000000}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"nbf\":1700000000}", AUTH_OK},
        /* escapes: the value is what jansson decodes, duplicates spelled differently refused */
        {"{\"s\\u0075b\":\"alice\",\"exp\":1700000600}", AUTH_OK},
        {"{\"sub\":\"al\\u0069ce\",\"exp\":1700000600}", AUTH_OK},
        {"{\"sub\":\"alice\",\"s\\u0075b\":\"admin\",\"exp\":1700000600}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"name\":\"a\\u0000b\",\"exp\":1700000600}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"name\":\"\\ud800\",\"exp\":1700000600}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"sub\":\"admin\",\"exp\":1700000600}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"x\":1,\"x\":2}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"x\":{\"y\":1,\"y\":2}}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"x\":{\"y\":1}}", AUTH_OK},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"x\":[99999999999999999999]}", AUTH_ERR_INVALID},
        /* numbers: fractions round up, exponents, out of range */
        {"{\"sub\":\"alice\",\"exp\":1700000000.5}", AUTH_OK},
        {"{\"sub\":\"alice\",\"exp\":17000006e2}", AUTH_OK},
        {"{\"sub\":\"alice\",\"exp\":1.6e9}", AUTH_ERR_EXPIRED},
        {"{\"sub\":\"alice\",\"exp\":1e999}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":99999999999999999999}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":999999999999999999}", AUTH_OK},
        {"{\"sub\":\"alice\",\"exp\":9223372036854775807}", AUTH_OK},
        {"{\"sub\":\"alice\",\"exp\":-0}", AUTH_ERR_EXPIRED},
        {"{\"sub\":\"alice\",\"exp\":01}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":\"1700000600\"}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"x\":1e400}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"iat\":true}", AUTH_ERR_INVALID},
        /* malformed */
        {"", AUTH_ERR_INVALID},
        {"{", AUTH_ERR_INVALID},
        {"[]", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600}x", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"n\":\"\xc3\"}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"n\":\"\xed\xa0\x80\"}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"n\":\"\xc0\xaf\"}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"n\":\"\xf4\x90\x80\x80\"}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"exp\":1700000600,\"n\":\"a\tb\"}", AUTH_ERR_INVALID},
        {"{\"sub\":\"al ice\",\"exp\":1700000600}", AUTH_ERR_INVALID},
        {"{\"sub\":\"alice\",\"role\":\"0123456789012345678901234567890123\",\"exp\":1700000600}",
         AUTH_ERR_INVALID},
        /* more members than the in-place reader takes: jansson reads it */
        {"{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1,\"j\":1,\"k\":1,"
         "\"l\":1,\"m\":1,\"n\":1,\"o\":1,\"p\":1,\"q\":1,\"sub\":\"alice\",\"exp\":1700000600}",
         AUTH_OK},
        {"{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1,\"j\":1,\"k\":1,"
         "\"l\":1,\"m\":1,\"n\":1,\"o\":1,\"p\":1,\"a\":1,\"sub\":\"alice\",\"exp\":1700000600}",
         AUTH_ERR_INVALID},
    };
    auth_jwt_t *plain = mk_hs();
    auth_jwt_t *ia = mk("HS256", SECRET, SECRET_LEN, "me", "you", -1, 0);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *j = cases[i].json;
        bool checked = strstr(j, "\"iss\"") != NULL;
        auth_jwt_t *a = checked ? ia : plain;
        auth_claims_t f, s;
        int rf = auth_jwt_check_payload(a, j, strlen(j), NOW, &f, false);
        int rs = auth_jwt_check_payload(a, j, strlen(j), NOW, &s, true);
        if (rf != cases[i].rc || rs != cases[i].rc) fprintf(stderr, "case %zu: %s\n", i, j);
        CHECK_EQ_INT(rf, cases[i].rc);
        CHECK_EQ_INT(rs, cases[i].rc);
        CHECK(memcmp(&f, &s, sizeof(f)) == 0);
        /* and through the whole token */
        CHECK_EQ_INT(V(a, tok_hs(HS_HDR, j), NULL), j[0] == '\0' ? AUTH_ERR_INVALID : cases[i].rc);
    }
    auth_jwt_free(plain);
    auth_jwt_free(ia);
}

/* ---- claims ---- */

static void test_exp_leeway(void)
{
    auth_jwt_t *a = mk("HS256", SECRET, SECRET_LEN, NULL, NULL, 30, 0);
    auth_jwt_t *dflt = mk_hs();
    auth_jwt_t *zero = mk("HS256", SECRET, SECRET_LEN, NULL, NULL, 0, 0);
    auth_claims_t c;

    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, claims_exp(NOW - 30 + 1)), &c), AUTH_OK);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, claims_exp(NOW - 30)), &c), AUTH_ERR_EXPIRED);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, claims_exp(NOW - 30 - 1)), &c), AUTH_ERR_EXPIRED);
    /* EXPIRED still reports who it was */
    CHECK(strcmp(c.sub, "alice") == 0);
    CHECK_EQ_INT(c.exp, NOW - 31);
    CHECK_EQ_INT(V(dflt, tok_hs(HS_HDR, claims_exp(NOW - 29)), &c), AUTH_OK);
    CHECK_EQ_INT(V(dflt, tok_hs(HS_HDR, claims_exp(NOW - 31)), &c), AUTH_ERR_EXPIRED);
    CHECK_EQ_INT(V(zero, tok_hs(HS_HDR, claims_exp(NOW + 1)), &c), AUTH_OK);
    CHECK_EQ_INT(V(zero, tok_hs(HS_HDR, claims_exp(NOW)), &c), AUTH_ERR_EXPIRED);
    /* fractional exp rounds up */
    CHECK_EQ_INT(V(zero, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"exp\":%lld.1}", (long long)NOW)), &c),
                 AUTH_OK);
    CHECK_EQ_INT(
        V(zero, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"exp\":%lld.9}", (long long)NOW - 1)), &c),
        AUTH_ERR_EXPIRED);

    /* exp required, a number */
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\"}"), &c), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":\"9999999999\"}"), &c),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":true}"), &c), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":null}"), &c), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":[9999999999]}"), &c),
                 AUTH_ERR_INVALID);
    /* an expired token with another defect is INVALID, not EXPIRED */
    CHECK_EQ_INT(
        V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a b\",\"exp\":%lld}", (long long)NOW - 999)), &c),
        AUTH_ERR_INVALID);
    CHECK(c.sub[0] == '\0');
    CHECK_EQ_INT(
        V(a, tok_hs_key(HS_HDR, claims_exp(NOW - 999), "x-wrong-secret-x-wrong-secret-xx", 32), &c),
        AUTH_ERR_INVALID);
    /* now far in the future is clamped, not overflowed */
    {
        char *t = tok_hs(HS_HDR, "{\"sub\":\"a\",\"exp\":9223372036854775807}");
        char *t2 = tok_hs(HS_HDR, claims_exp(NOW));
        CHECK_EQ_INT(auth_jwt_verify(a, str_cstr(t2), INT64_MAX, NULL), AUTH_ERR_EXPIRED);
        CHECK_EQ_INT(auth_jwt_verify(a, str_cstr(t2), INT64_MIN, NULL), AUTH_OK);
        CHECK_EQ_INT(auth_jwt_verify(a, str_cstr(t), INT64_MIN, NULL), AUTH_OK);
        free(t);
        free(t2);
    }
    auth_jwt_free(a);
    auth_jwt_free(dflt);
    auth_jwt_free(zero);
}

static void test_nbf_iat(void)
{
    auth_jwt_t *a = mk("HS256", SECRET, SECRET_LEN, NULL, NULL, 30, 0);
    const long long e = (long long)NOW + 600;

    CHECK_EQ_INT(
        V(a,
          tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}", e, (long long)NOW + 30)),
          NULL),
        AUTH_OK);
    CHECK_EQ_INT(
        V(a,
          tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}", e, (long long)NOW + 31)),
          NULL),
        AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a,
                   tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld.5}", e,
                                      (long long)NOW + 30)),
                   NULL),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"exp\":%lld,\"nbf\":0}", e)), NULL),
                 AUTH_OK);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"exp\":%lld,\"nbf\":\"0\"}", e)), NULL),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"exp\":%lld,\"nbf\":null}", e)), NULL),
                 AUTH_ERR_INVALID);
    /* both not-yet-valid and expired: INVALID wins (a refresh would not help) */
    CHECK_EQ_INT(
        V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"exp\":1,\"nbf\":%lld}", (long long)NOW + 999)),
          NULL),
        AUTH_ERR_INVALID);
    /* iat optional, any number (even future), never a string */
    CHECK_EQ_INT(V(a,
                   tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"exp\":%lld,\"iat\":%lld}", e,
                                      (long long)NOW + 99999)),
                   NULL),
                 AUTH_OK);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"exp\":%lld,\"iat\":\"now\"}", e)), NULL),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"exp\":%lld,\"iat\":false}", e)), NULL),
                 AUTH_ERR_INVALID);
    auth_jwt_free(a);
}

static void test_sub_name_role(void)
{
    auth_jwt_t *a = mk_hs();
    const long long e = (long long)NOW + 600;
    const char *bad_subs[] = {"",     "a b",      "a.b",      "a/b",      "a@b", "caf\\u00e9",
                              "a\\n", "a\\u0000", "\xc3\xa9", "<script>", "a+b", "a=b"};

    for (size_t i = 0; i < sizeof(bad_subs) / sizeof(bad_subs[0]); i++)
        CHECK_EQ_INT(
            V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"%s\",\"exp\":%lld}", bad_subs[i], e)), NULL),
            AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"exp\":%lld}", e)), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":42,\"exp\":%lld}", e)), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":null,\"exp\":%lld}", e)), NULL),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":[\"a\"],\"exp\":%lld}", e)), NULL),
                 AUTH_ERR_INVALID);
    {
        char s65[66];
        memset(s65, 'z', 65);
        s65[65] = '\0';
        CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"%s\",\"exp\":%lld}", s65, e)), NULL),
                     AUTH_ERR_INVALID);
        s65[64] = '\0';
        CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"%s\",\"exp\":%lld}", s65, e)), NULL),
                     AUTH_OK);
    }
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"A-z_0-9\",\"exp\":%lld}", e)), NULL), AUTH_OK);
    /* sub written with JSON escapes of allowed characters is the same string */
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"\\u0061b\",\"exp\":%lld}", e)), NULL),
                 AUTH_OK);

    /* name: string, <= 128 bytes, no NUL */
    {
        char n129[130];
        memset(n129, 'n', 129);
        n129[129] = '\0';
        CHECK_EQ_INT(V(a,
                       tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"name\":\"%s\",\"exp\":%lld}", n129, e)),
                       NULL),
                     AUTH_ERR_INVALID);
    }
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"name\":5,\"exp\":%lld}", e)), NULL),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"name\":null,\"exp\":%lld}", e)), NULL),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT(
        V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"name\":\"a\\u0000b\",\"exp\":%lld}", e)), NULL),
        AUTH_ERR_INVALID);
    CHECK_EQ_INT(
        V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"name\":\"\xff\xfe\",\"exp\":%lld}", e)), NULL),
        AUTH_ERR_INVALID);
    /* lone surrogate escape is not valid UTF-8 either */
    CHECK_EQ_INT(
        V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"name\":\"\\ud800\",\"exp\":%lld}", e)), NULL),
        AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"name\":\"\",\"exp\":%lld}", e)), NULL),
                 AUTH_OK);

    /* role: string, <= 32 bytes */
    {
        char r33[34];
        memset(r33, 'r', 33);
        r33[33] = '\0';
        CHECK_EQ_INT(
            V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"role\":\"%s\",\"exp\":%lld}", r33, e)), NULL),
            AUTH_ERR_INVALID);
    }
    CHECK_EQ_INT(
        V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"role\":[\"owner\"],\"exp\":%lld}", e)), NULL),
        AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"role\":true,\"exp\":%lld}", e)), NULL),
                 AUTH_ERR_INVALID);
    auth_jwt_free(a);
}

static void test_iss_aud(void)
{
    auth_jwt_t *a = mk("HS256", SECRET, SECRET_LEN, "https://issuer.example", "parlor", -1, 0);
    auth_jwt_t *none = mk("HS256", SECRET, SECRET_LEN, "", "", -1, 0);
    const long long e = (long long)NOW + 600;
#define IA(iss, aud) fmt("{\"sub\":\"a\",\"exp\":%lld,\"iss\":%s,\"aud\":%s}", e, iss, aud)
    const char *iss = "\"https://issuer.example\"";

    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA(iss, "\"parlor\"")), NULL), AUTH_OK);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA(iss, "[\"other\",\"parlor\"]")), NULL), AUTH_OK);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA(iss, "[\"parlor\"]")), NULL), AUTH_OK);
    /* iss */
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA("\"https://issuer.example/\"", "\"parlor\"")), NULL),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA("\"HTTPS://ISSUER.EXAMPLE\"", "\"parlor\"")), NULL),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA("[\"https://issuer.example\"]", "\"parlor\"")), NULL),
                 AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA("null", "\"parlor\"")), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(
        V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"exp\":%lld,\"aud\":\"parlor\"}", e)), NULL),
        AUTH_ERR_INVALID);
    /* aud */
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA(iss, "\"parlor2\"")), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA(iss, "\"Parlor\"")), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA(iss, "[]")), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA(iss, "[\"a\",\"b\"]")), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA(iss, "[\"parlor\",7]")), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA(iss, "[[\"parlor\"]]")), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA(iss, "{\"parlor\":true}")), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, IA(iss, "null")), NULL), AUTH_ERR_INVALID);
    CHECK_EQ_INT(V(a, tok_hs(HS_HDR, fmt("{\"sub\":\"a\",\"exp\":%lld,\"iss\":%s}", e, iss)), NULL),
                 AUTH_ERR_INVALID);
    /* not configured ("" counts as unset): anything goes */
    CHECK_EQ_INT(V(none, tok_hs(HS_HDR, IA("1", "[2]")), NULL), AUTH_OK);
    CHECK_EQ_INT(V(none, tok_hs(HS_HDR, good_claims()), NULL), AUTH_OK);
#undef IA

    /* sign() emits iss and aud: its tokens pass a verifier with the same config only */
    {
        char *t = NULL;
        auth_jwt_t *other =
            mk("HS256", SECRET, SECRET_LEN, "https://issuer.example", "not-parlor", -1, 0);
        CHECK_EQ_INT(auth_jwt_sign(a, "alice", NULL, "owner", NOW, 60, &t), AUTH_OK);
        CHECK_EQ_INT(VS(a, t), AUTH_OK);
        CHECK_EQ_INT(VS(none, t), AUTH_OK);
        CHECK_EQ_INT(VS(other, t), AUTH_ERR_INVALID);
        free(t);
        auth_jwt_free(other);
    }
    auth_jwt_free(a);
    auth_jwt_free(none);
}

static void test_sign_arguments(void)
{
    auth_jwt_t *a = mk_hs();
    char *t = (char *)1;
    char n129[130];
    memset(n129, 'n', 129);
    n129[129] = '\0';

    CHECK_EQ_INT(auth_jwt_sign(a, "", NULL, NULL, NOW, 60, &t), AUTH_ERR_CONFIG);
    CHECK(t == NULL);
    CHECK_EQ_INT(auth_jwt_sign(a, NULL, NULL, NULL, NOW, 60, &t), AUTH_ERR_CONFIG);
    CHECK_EQ_INT(auth_jwt_sign(a, "a b", NULL, NULL, NOW, 60, &t), AUTH_ERR_CONFIG);
    CHECK_EQ_INT(auth_jwt_sign(a, "alice", n129, NULL, NOW, 60, &t), AUTH_ERR_CONFIG);
    CHECK_EQ_INT(auth_jwt_sign(a, "alice", "\xff", NULL, NOW, 60, &t), AUTH_ERR_CONFIG);
    CHECK_EQ_INT(auth_jwt_sign(a, "alice", NULL, "0123456789012345678901234567890123", NOW, 60, &t),
                 AUTH_ERR_CONFIG);
    CHECK_EQ_INT(auth_jwt_sign(a, "alice", NULL, NULL, NOW, 0, &t), AUTH_ERR_CONFIG);
    CHECK_EQ_INT(auth_jwt_sign(a, "alice", NULL, NULL, NOW, -5, &t), AUTH_ERR_CONFIG);
    CHECK_EQ_INT(auth_jwt_sign(a, "alice", NULL, NULL, -1, 60, &t), AUTH_ERR_CONFIG);
    CHECK_EQ_INT(auth_jwt_sign(NULL, "alice", NULL, NULL, NOW, 60, &t), AUTH_ERR_CONFIG);
    CHECK_EQ_INT(auth_jwt_sign(a, "alice", NULL, NULL, NOW, 60, NULL), AUTH_ERR_CONFIG);
    CHECK(t == NULL);
    /* a signed token expires after ttl, with the configured leeway */
    CHECK_EQ_INT(auth_jwt_sign(a, "alice", "", "", NOW, 60, &t), AUTH_OK);
    CHECK_EQ_INT(auth_jwt_verify(a, str_cstr(t), NOW + 60 + 29, NULL), AUTH_OK);
    CHECK_EQ_INT(auth_jwt_verify(a, str_cstr(t), NOW + 60 + 30, NULL), AUTH_ERR_EXPIRED);
    free(t);
    CHECK(!auth_sub_is_valid(NULL, 0));
    CHECK(auth_sub_is_valid("x", 1));
    auth_jwt_free(a);
}

/* A token made outside this code base (by node's crypto, HMAC-SHA256 by hand) with the secret
 * below, payload {"sub":"node-user","name":"Nödé","role":"tenant","iat":1700000000,
 * "exp":1700003600,"iss":"parlor-test","aud":["x","parlor"]}. */
static void test_node_token(void)
{
    static const char secret[] = "node-cross-check-secret-0123456789abcdef";
    static const char tok[] =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiJub2RlLXVzZXIiLCJuYW1lIjoiTsO2ZMOpIiwicm9sZSI6InRlbmFudCIsImlhdCI6MTcw"
        "MDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwLCJpc3MiOiJwYXJsb3ItdGVzdCIsImF1ZCI6WyJ4IiwicGFy"
        "bG9yIl19"
        ".uHDUz-b-N_-GOngt_DlXgoBpdZi6k8_oqlzC7GIrN1w";
    auth_jwt_t *a = mk("HS256", secret, sizeof(secret) - 1, "parlor-test", "parlor", -1, 0);
    auth_claims_t c;

    CHECK_EQ_INT(auth_jwt_verify(a, str_cstr(tok), NOW, &c), AUTH_OK);
    CHECK(strcmp(c.sub, "node-user") == 0);
    CHECK(strcmp(c.name, "N\xc3\xb6"
                         "d\xc3\xa9") == 0);
    CHECK(strcmp(c.role, "tenant") == 0);
    CHECK_EQ_INT(c.exp, 1700003600);
    CHECK_EQ_INT(auth_jwt_verify(a, str_cstr(tok), 1700003600 + 30, &c), AUTH_ERR_EXPIRED);
    auth_jwt_free(a);
}

/* The verifier is shared read-only between threads. */
struct thread_arg {
    const auth_jwt_t *a;
    const char *tok;
    int failures;
};

static void *verify_thread(void *p)
{
    struct thread_arg *t = p;
    for (int i = 0; i < 200; i++) {
        auth_claims_t c;
        if (auth_jwt_verify(t->a, str_cstr(t->tok), NOW, &c) != AUTH_OK ||
            strcmp(c.sub, "alice") != 0)
            t->failures++;
    }
    return NULL;
}

static void test_threads(void)
{
    auth_jwt_t *hs = mk_hs();
    auth_jwt_t *es = mk("ES256", ec_pub_pem, strlen(ec_pub_pem), NULL, NULL, -1, 0);
    char *t1 = tok_hs(HS_HDR, good_claims()), *t2 = tok_pk(ES_HDR, good_claims(), ec_key);
    struct thread_arg args[4] = {{hs, t1, 0}, {es, t2, 0}, {hs, t1, 0}, {es, t2, 0}};
    pthread_t th[4];

    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, verify_thread, &args[i]);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(args[i].failures, 0);
    }
    free(t1);
    free(t2);
    auth_jwt_free(hs);
    auth_jwt_free(es);
}

int main(void)
{
    rsa_key = EVP_RSA_gen(2048);
    ec_key = EVP_EC_gen("P-256");
    if (rsa_key == NULL || ec_key == NULL) {
        fprintf(stderr, "key generation failed\n");
        return 1;
    }
    rsa_pub_pem = pem_of(rsa_key, false);
    rsa_priv_pem = pem_of(rsa_key, true);
    ec_pub_pem = pem_of(ec_key, false);
    ec_priv_pem = pem_of(ec_key, true);

    RUN(test_config_errors);
    RUN(test_config_keys);
    RUN(test_error_codes);
    RUN(test_hs256_sign_verify);
    RUN(test_hs256_handmade);
    RUN(test_rs256_es256_valid);
    RUN(test_alg_none);
    RUN(test_alg_mismatch);
    RUN(test_hmac_with_public_key);
    RUN(test_missing_and_length);
    RUN(test_segments);
    RUN(test_base64_canonical);
    RUN(test_tampering);
    RUN(test_header_json);
    RUN(test_payload_json);
    RUN(test_claims_fast_reader);
    RUN(test_exp_leeway);
    RUN(test_nbf_iat);
    RUN(test_sub_name_role);
    RUN(test_iss_aud);
    RUN(test_sign_arguments);
    RUN(test_node_token);
    RUN(test_threads);

    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(ec_key);
    free(rsa_pub_pem);
    free(rsa_priv_pem);
    free(ec_pub_pem);
    free(ec_priv_pem);
    return UNIT_DONE();
}
