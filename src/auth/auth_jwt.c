/* JWT verification and HS256 signing: strict structural checks here; HS256 signatures checked
 * here with a key made once (core/sha.c: a handshake's HMAC costs three SHA-256 blocks, where
 * libjwt re-parsed the token with jansson and called OpenSSL's EVP HMAC, a third of a
 * handshake's instructions), RS256/ES256 signatures by libjwt. */
#include "auth/auth_jwt.h"

#include <jansson.h>
#include <jwt.h>
#include <math.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json_scan.h"
#include "core/sha.h"

/* NumericDates are clamped to +-2^52 s so that adding a leeway can never overflow and any
 * double in range converts exactly. */
#define AUTH_TIME_LIMIT ((int64_t)1 << 52)

#define AUTH_HS256_SIG_LEN 32
#define AUTH_ES256_SIG_LEN 64 /* JOSE's raw R || S, not DER */

struct auth_jwt {
    jwt_alg_t alg;
    const char *alg_name; /* static string */
    unsigned char *key;   /* HS256: secret; RS/ES: canonical SPKI PEM, NUL-terminated */
    size_t key_len;
    size_t sig_len; /* exact decoded signature length for alg and key */
    char *issuer;   /* NULL when not checked */
    char *audience; /* NULL when not checked */
    int64_t leeway_s;
    size_t max_token_len;
    hmac_sha256_key_t hs256; /* HS256: the key's HMAC states */
    /* Headers auth_header_ok accepts, byte for byte as the usual libraries write them
     * ({"alg":"<alg>","typ":"JWT"}, the other order, and alg alone): recognised without
     * parsing. Any other header is parsed and checked as before. */
    char plain_hdr[3][32];
};

static void auth_set_err(char *err, size_t err_cap, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_cap == 0) return;
    va_start(ap, fmt);
    vsnprintf(err, err_cap, fmt, ap);
    va_end(ap);
}

static char *auth_strdup_opt(const char *s, bool *oom)
{
    char *d;

    if (s == NULL || s[0] == '\0') return NULL;
    d = strdup(s);
    if (d == NULL) *oom = true;
    return d;
}

/* Parses a public-key PEM, checks it suits alg and stores a canonical re-encoding, so that
 * libjwt later reads exactly the key that was validated here. */
static int auth_load_public_key(auth_jwt_t *a, const auth_jwt_config_t *cfg, char *err,
                                size_t err_cap)
{
    int rc = AUTH_ERR_CONFIG;
    BIO *in = NULL, *outb = NULL;
    EVP_PKEY *pkey = NULL;
    char *pem;
    long pem_len;

    in = BIO_new_mem_buf(cfg->key, (int)cfg->key_len);
    if (in == NULL) {
        rc = AUTH_ERR_NOMEM;
        goto done;
    }
    pkey = PEM_read_bio_PUBKEY(in, NULL, NULL, NULL);
    if (pkey == NULL) {
        auth_set_err(err, err_cap, "jwt: %s key is not a PEM \"PUBLIC KEY\"", a->alg_name);
        goto done;
    }
    if (a->alg == JWT_ALG_RS256) {
        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
            auth_set_err(err, err_cap, "jwt: RS256 needs an RSA public key");
            goto done;
        }
        if (EVP_PKEY_get_bits(pkey) < AUTH_JWT_MIN_RSA_BITS) {
            auth_set_err(err, err_cap, "jwt: RSA key has %d bits, at least %d needed",
                         EVP_PKEY_get_bits(pkey), AUTH_JWT_MIN_RSA_BITS);
            goto done;
        }
        a->sig_len = (size_t)EVP_PKEY_get_size(pkey);
    } else {
        char group[64];
        size_t group_len = 0;

        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
            EVP_PKEY_get_group_name(pkey, group, sizeof(group), &group_len) != 1 ||
            strcmp(group, "prime256v1") != 0) {
            auth_set_err(err, err_cap, "jwt: ES256 needs an EC public key on P-256");
            goto done;
        }
        a->sig_len = AUTH_ES256_SIG_LEN;
    }
    outb = BIO_new(BIO_s_mem());
    if (outb == NULL || PEM_write_bio_PUBKEY(outb, pkey) != 1) {
        rc = AUTH_ERR_NOMEM;
        goto done;
    }
    pem_len = BIO_get_mem_data(outb, &pem);
    if (pem_len <= 0) {
        rc = AUTH_ERR_NOMEM;
        goto done;
    }
    a->key = malloc((size_t)pem_len + 1);
    if (a->key == NULL) {
        rc = AUTH_ERR_NOMEM;
        goto done;
    }
    memcpy(a->key, pem, (size_t)pem_len);
    a->key[pem_len] = '\0';
    a->key_len = (size_t)pem_len;
    rc = AUTH_OK;
done:
    if (rc == AUTH_ERR_NOMEM) auth_set_err(err, err_cap, "jwt: out of memory");
    EVP_PKEY_free(pkey);
    BIO_free(in);
    BIO_free(outb);
    /* Leave no stale entries behind for the next OpenSSL user on this thread (TLS reads them). */
    ERR_clear_error();
    return rc;
}

int auth_jwt_new(const auth_jwt_config_t *cfg, auth_jwt_t **out, char *err, size_t err_cap)
{
    int rc = AUTH_ERR_CONFIG;
    auth_jwt_t *a = NULL;
    bool oom = false;

    if (err != NULL && err_cap > 0) err[0] = '\0';
    if (out == NULL) return AUTH_ERR_CONFIG;
    *out = NULL;
    if (cfg == NULL || cfg->alg == NULL) {
        auth_set_err(err, err_cap, "jwt: no algorithm configured");
        return AUTH_ERR_CONFIG;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        rc = AUTH_ERR_NOMEM;
        goto fail;
    }
    if (strcmp(cfg->alg, "HS256") == 0) {
        a->alg = JWT_ALG_HS256;
        a->alg_name = "HS256";
    } else if (strcmp(cfg->alg, "RS256") == 0) {
        a->alg = JWT_ALG_RS256;
        a->alg_name = "RS256";
    } else if (strcmp(cfg->alg, "ES256") == 0) {
        a->alg = JWT_ALG_ES256;
        a->alg_name = "ES256";
    } else {
        auth_set_err(err, err_cap, "jwt: algorithm must be HS256, RS256 or ES256");
        goto fail;
    }
    if (cfg->key == NULL || cfg->key_len == 0) {
        auth_set_err(err, err_cap, "jwt: no key configured");
        goto fail;
    }
    if (cfg->key_len > AUTH_JWT_MAX_KEY_LEN) {
        auth_set_err(err, err_cap, "jwt: key longer than %d bytes", AUTH_JWT_MAX_KEY_LEN);
        goto fail;
    }
    if (a->alg == JWT_ALG_HS256) {
        if (cfg->key_len < AUTH_JWT_MIN_SECRET_LEN) {
            auth_set_err(err, err_cap, "jwt: HS256 secret shorter than %d bytes",
                         AUTH_JWT_MIN_SECRET_LEN);
            goto fail;
        }
        a->key = malloc(cfg->key_len);
        if (a->key == NULL) {
            rc = AUTH_ERR_NOMEM;
            goto fail;
        }
        memcpy(a->key, cfg->key, cfg->key_len);
        a->key_len = cfg->key_len;
        a->sig_len = AUTH_HS256_SIG_LEN;
        hmac_sha256_key(&a->hs256, a->key, a->key_len);
    } else {
        rc = auth_load_public_key(a, cfg, err, err_cap);
        if (rc != AUTH_OK) goto fail;
        rc = AUTH_ERR_CONFIG;
    }
    if (cfg->leeway_s > AUTH_JWT_MAX_LEEWAY_S) {
        auth_set_err(err, err_cap, "jwt: leeway above %d s", AUTH_JWT_MAX_LEEWAY_S);
        goto fail;
    }
    snprintf(a->plain_hdr[0], sizeof a->plain_hdr[0], "{\"alg\":\"%s\",\"typ\":\"JWT\"}",
             a->alg_name);
    snprintf(a->plain_hdr[1], sizeof a->plain_hdr[1], "{\"typ\":\"JWT\",\"alg\":\"%s\"}",
             a->alg_name);
    snprintf(a->plain_hdr[2], sizeof a->plain_hdr[2], "{\"alg\":\"%s\"}", a->alg_name);
    a->leeway_s = cfg->leeway_s < 0 ? AUTH_JWT_DEFAULT_LEEWAY_S : cfg->leeway_s;
    a->max_token_len = cfg->max_token_len ? cfg->max_token_len : AUTH_JWT_DEFAULT_MAX_TOKEN_LEN;
    if (a->max_token_len < AUTH_JWT_MIN_MAX_TOKEN_LEN ||
        a->max_token_len > AUTH_JWT_MAX_MAX_TOKEN_LEN) {
        auth_set_err(err, err_cap, "jwt: max token length outside [%d, %d]",
                     AUTH_JWT_MIN_MAX_TOKEN_LEN, AUTH_JWT_MAX_MAX_TOKEN_LEN);
        goto fail;
    }
    a->issuer = auth_strdup_opt(cfg->issuer, &oom);
    a->audience = auth_strdup_opt(cfg->audience, &oom);
    if (oom) {
        rc = AUTH_ERR_NOMEM;
        goto fail;
    }
    *out = a;
    return AUTH_OK;
fail:
    if (rc == AUTH_ERR_NOMEM) auth_set_err(err, err_cap, "jwt: out of memory");
    auth_jwt_free(a);
    return rc;
}

void auth_jwt_free(auth_jwt_t *a)
{
    if (a == NULL) return;
    if (a->key != NULL) OPENSSL_cleanse(a->key, a->key_len);
    OPENSSL_cleanse(&a->hs256, sizeof a->hs256);
    free(a->key);
    free(a->issuer);
    free(a->audience);
    free(a);
}

const char *auth_error_code(int rc)
{
    switch (rc) {
    case AUTH_OK:
        return "OK";
    case AUTH_ERR_MISSING:
        return "AUTH_MISSING";
    case AUTH_ERR_INVALID:
        return "AUTH_INVALID";
    case AUTH_ERR_EXPIRED:
        return "AUTH_EXPIRED";
    case AUTH_ERR_CONFIG:
        return "AUTH_CONFIG";
    case AUTH_ERR_SCOPE:
        return "AUTH_SCOPE";
    default:
        return "INTERNAL";
    }
}

bool auth_sub_is_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > AUTH_SUB_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* base64url digit values; 255: not a base64url character. */
static const unsigned char auth_b64url_tbl[256] = {
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 62,  255, 255, 52,  53,  54,  55,  56,  57,  58,  59,  60,
    61,  255, 255, 255, 255, 255, 255, 255, 0,   1,   2,   3,   4,   5,   6,   7,   8,   9,   10,
    11,  12,  13,  14,  15,  16,  17,  18,  19,  20,  21,  22,  23,  24,  25,  255, 255, 255, 255,
    63,  255, 26,  27,  28,  29,  30,  31,  32,  33,  34,  35,  36,  37,  38,  39,  40,  41,  42,
    43,  44,  45,  46,  47,  48,  49,  50,  51,  255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255,
};

/* Unpadded base64url (RFC 7515 2) in its one canonical spelling: the unused low bits of the
 * last character must be zero, so a token has a single accepted encoding. out must hold
 * len * 3 / 4 bytes. Returns the decoded length or -1. Four characters per step through a
 * table (was a chain of range tests per character: ~4k instructions per token). */
static long auth_b64url_decode(str_t in, unsigned char *out)
{
    const unsigned char *s = (const unsigned char *)in.ptr;
    size_t n = in.len, i = 0, o = 0;
    unsigned bad = 0;
    uint32_t v;

    if (n % 4 == 1) return -1;
    for (; i + 4 <= n; i += 4) {
        unsigned a = auth_b64url_tbl[s[i]], b = auth_b64url_tbl[s[i + 1]],
                 c = auth_b64url_tbl[s[i + 2]], d = auth_b64url_tbl[s[i + 3]];
        bad |= a | b | c | d;
        v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    if (n - i == 2) {
        unsigned a = auth_b64url_tbl[s[i]], b = auth_b64url_tbl[s[i + 1]];
        bad |= a | b;
        v = (uint32_t)a << 6 | b;
        if (v & 0xf) return -1; /* leftover bits must be zero */
        out[o++] = (unsigned char)(v >> 4);
    } else if (n - i == 3) {
        unsigned a = auth_b64url_tbl[s[i]], b = auth_b64url_tbl[s[i + 1]],
                 c = auth_b64url_tbl[s[i + 2]];
        bad |= a | b | c;
        v = (uint32_t)a << 12 | (uint32_t)b << 6 | c;
        if (v & 0x3) return -1;
        out[o++] = (unsigned char)(v >> 10);
        out[o++] = (unsigned char)(v >> 2);
    }
    if (bad & 0x80) return -1;
    return (long)o;
}

/* Splits a compact JWS into exactly three non-empty segments. */
static bool auth_split(str_t token, str_t seg[3])
{
    size_t start = 0, n = 0;

    for (size_t i = 0; i <= token.len; i++) {
        if (i < token.len && token.ptr[i] != '.') continue;
        if (n == 3 || i == start) return false;
        seg[n++] = str_make(token.ptr + start, i - start);
        start = i + 1;
    }
    return n == 3;
}

/* Parses decoded bytes as a JSON object. Duplicate keys are refused so that this code and
 * libjwt can never read different values from the same bytes. */
static json_t *auth_parse_object(const unsigned char *p, long n)
{
    json_t *v;

    if (n <= 0) return NULL;
    v = json_loadb((const char *)p, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

static bool auth_json_str_eq(const json_t *v, const char *s)
{
    size_t n = strlen(s);
    return json_is_string(v) && json_string_length(v) == n &&
           memcmp(json_string_value(v), s, n) == 0;
}

static bool auth_header_ok(const auth_jwt_t *a, const json_t *header)
{
    const json_t *typ = json_object_get(header, "typ");

    if (!auth_json_str_eq(json_object_get(header, "alg"), a->alg_name)) return false;
    /* libjwt refuses any other typ too; RFC 7519 5.1 says compare it case-insensitively. */
    if (typ != NULL && !(json_is_string(typ) && json_string_length(typ) == 3 &&
                         strcasecmp(json_string_value(typ), "JWT") == 0))
        return false;
    /* RFC 7515 4.1.11: extensions we do not understand must not be ignored. */
    if (json_object_get(header, "crit") != NULL) return false;
    return true;
}

static int auth_check_signature(const auth_jwt_t *a, str_t token)
{
    char *copy = malloc(token.len + 1);
    jwt_t *jwt = NULL;
    int rc = AUTH_ERR_INVALID;

    if (copy == NULL) return AUTH_ERR_INVALID;
    memcpy(copy, token.ptr, token.len);
    copy[token.len] = '\0';
    /* The header alg was already pinned; checking libjwt's view again costs nothing and keeps
     * us safe should a libjwt update ever parse headers differently. */
    if (jwt_decode(&jwt, copy, a->key, (int)a->key_len) == 0 && jwt != NULL &&
        jwt_get_alg(jwt) == a->alg)
        rc = AUTH_OK;
    jwt_free(jwt);
    free(copy);
    ERR_clear_error();
    return rc;
}

/* The claims a verifier looks at, read either from jansson's tree or in place from the
 * payload's text (auth_claims_scan): the checks below see the same view whichever read it. */
enum { AUTH_CV_ABSENT, AUTH_CV_STR, AUTH_CV_INT, AUTH_CV_REAL, AUTH_CV_OTHER };

typedef struct {
    int type;
    const char *s; /* AUTH_CV_STR: the decoded bytes (may hold NUL when read by jansson) */
    size_t n;
    int64_t i;
    double d;
} auth_cv_t;

typedef struct {
    auth_cv_t sub, name, role, scope, exp, iat, nbf, iss;
    bool aud_ok; /* aud names the configured audience (only looked at when one is set) */
} auth_cview_t;

/* NumericDate (RFC 7519 2) to whole seconds, rounding a fraction up: for exp that expires at
 * the same second or later, for nbf it starts at the same second or later, never earlier. */
static bool auth_numeric_date(const auth_cv_t *v, int64_t *out)
{
    int64_t t;

    if (v->type == AUTH_CV_INT) {
        int64_t i = v->i;
        t = i > AUTH_TIME_LIMIT ? AUTH_TIME_LIMIT : i < -AUTH_TIME_LIMIT ? -AUTH_TIME_LIMIT : i;
    } else if (v->type == AUTH_CV_REAL) {
        double d = v->d;
        if (!isfinite(d)) return false;
        d = ceil(d);
        t = d > (double)AUTH_TIME_LIMIT    ? AUTH_TIME_LIMIT
            : d < -(double)AUTH_TIME_LIMIT ? -AUTH_TIME_LIMIT
                                           : (int64_t)d;
    } else {
        return false;
    }
    *out = t;
    return true;
}

static bool auth_cv_eq(const auth_cv_t *v, const char *s)
{
    size_t n = strlen(s);
    return v->type == AUTH_CV_STR && v->n == n && memcmp(v->s, s, n) == 0;
}

/* Copies an optional string claim of at most max bytes into dst (max + 1 bytes). */
static bool auth_copy_opt_string(const auth_cv_t *v, char *dst, size_t max)
{
    dst[0] = '\0';
    if (v->type == AUTH_CV_ABSENT) return true;
    if (v->type != AUTH_CV_STR) return false;
    if (v->n > max || memchr(v->s, '\0', v->n) != NULL) return false;
    memcpy(dst, v->s, v->n);
    dst[v->n] = '\0';
    return true;
}

static bool auth_audience_ok(const auth_jwt_t *a, const json_t *aud)
{
    bool found = false;
    size_t i;
    json_t *item;

    if (json_is_string(aud)) return auth_json_str_eq(aud, a->audience);
    if (!json_is_array(aud)) return false;
    json_array_foreach(aud, i, item)
    {
        if (!json_is_string(item)) return false;
        if (auth_json_str_eq(item, a->audience)) found = true;
    }
    return found;
}

static void auth_cv_from_json(const json_t *claims, const char *key, auth_cv_t *v)
{
    const json_t *j = json_object_get(claims, key);

    memset(v, 0, sizeof(*v));
    if (j == NULL) {
        v->type = AUTH_CV_ABSENT;
    } else if (json_is_string(j)) {
        v->type = AUTH_CV_STR;
        v->s = json_string_value(j);
        v->n = json_string_length(j);
    } else if (json_is_integer(j)) {
        v->type = AUTH_CV_INT;
        v->i = json_integer_value(j);
    } else if (json_is_real(j)) {
        v->type = AUTH_CV_REAL;
        v->d = json_real_value(j);
    } else {
        v->type = AUTH_CV_OTHER;
    }
}

static void auth_cview_from_json(const auth_jwt_t *a, const json_t *claims, auth_cview_t *cv)
{
    auth_cv_from_json(claims, "sub", &cv->sub);
    auth_cv_from_json(claims, "name", &cv->name);
    auth_cv_from_json(claims, "role", &cv->role);
    auth_cv_from_json(claims, "scope", &cv->scope);
    auth_cv_from_json(claims, "exp", &cv->exp);
    auth_cv_from_json(claims, "iat", &cv->iat);
    auth_cv_from_json(claims, "nbf", &cv->nbf);
    auth_cv_from_json(claims, "iss", &cv->iss);
    cv->aud_ok = a->audience != NULL && auth_audience_ok(a, json_object_get(claims, "aud"));
}

/* A JSON integer token of at most 18 digits (so it fits int64_t, as jansson reads it); false
 * for anything else (fraction, exponent, longer): those go to jansson. */
static bool auth_simple_int(str_t t, int64_t *out)
{
    size_t i = t.len > 0 && t.ptr[0] == '-';
    int64_t v = 0;

    if (t.len - i == 0 || t.len - i > 18) return false;
    for (; i < t.len; i++) {
        if (t.ptr[i] < '0' || t.ptr[i] > '9') return false;
        v = v * 10 + (t.ptr[i] - '0');
    }
    *out = t.ptr[0] == '-' ? -v : v;
    return true;
}

/* Reads the claims in place, without building a tree (jansson took ~12k instructions per
 * handshake). Only for the plain shape tokens have: an object of at most 16 members with no
 * backslash anywhere (so every string's text is its value and keys compare as bytes), no
 * duplicate key, values that are strings, integers of at most 18 digits, true/false/null, and
 * aud as a string or an array of strings. Returns false for anything else and the caller
 * reads the payload with jansson, whose acceptance rules (duplicates, escapes, NUL, numbers
 * out of range, depth) then decide exactly as before. json_valid checks UTF-8 as strictly as
 * jansson (no overlongs, surrogates or code points past U+10FFFF). */
static bool auth_claims_scan(const auth_jwt_t *a, const char *p, size_t n, auth_cview_t *cv)
{
    json_object_iter_t it;
    str_t keys[16], key, val;
    size_t nk = 0;
    int r;

    memset(cv, 0, sizeof(*cv));
    if (n == 0 || memchr(p, '\\', n) != NULL || !json_valid(p, n)) return false;
    if (json_object_iter_init(&it, str_make(p, n)) != 0) return false;
    while ((r = json_object_next(&it, &key, &val)) == 1) {
        const char *k = key.ptr + 1;
        size_t kn = key.len - 2;
        auth_cv_t *dst = NULL, tmp;
        char c = val.ptr[0];

        if (nk == 16) return false;
        for (size_t i = 0; i < nk; i++)
            if (keys[i].len == key.len && memcmp(keys[i].ptr, key.ptr, key.len) == 0) return false;
        keys[nk++] = key;
        memset(&tmp, 0, sizeof(tmp));
        if (c == '"') {
            tmp.type = AUTH_CV_STR;
            tmp.s = val.ptr + 1;
            tmp.n = val.len - 2;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (!auth_simple_int(val, &tmp.i)) return false;
            tmp.type = AUTH_CV_INT;
        } else if (c == 't' || c == 'f' || c == 'n') {
            tmp.type = AUTH_CV_OTHER;
        } else if (c == '[' && kn == 3 && memcmp(k, "aud", 3) == 0) {
            json_array_iter_t ai;
            str_t e;
            int ar;
            if (json_array_iter_init(&ai, val) != 0) return false;
            while ((ar = json_array_next(&ai, &e)) == 1) {
                if (e.ptr[0] != '"') return false;
                if (a->audience != NULL && e.len - 2 == strlen(a->audience) &&
                    memcmp(e.ptr + 1, a->audience, e.len - 2) == 0)
                    cv->aud_ok = true;
            }
            if (ar != 0) return false;
            continue;
        } else {
            return false; /* objects, other arrays: jansson checks their insides */
        }
        if (kn == 3 && memcmp(k, "sub", 3) == 0)
            dst = &cv->sub;
        else if (kn == 4 && memcmp(k, "name", 4) == 0)
            dst = &cv->name;
        else if (kn == 4 && memcmp(k, "role", 4) == 0)
            dst = &cv->role;
        else if (kn == 5 && memcmp(k, "scope", 5) == 0)
            dst = &cv->scope;
        else if (kn == 3 && memcmp(k, "exp", 3) == 0)
            dst = &cv->exp;
        else if (kn == 3 && memcmp(k, "iat", 3) == 0)
            dst = &cv->iat;
        else if (kn == 3 && memcmp(k, "nbf", 3) == 0)
            dst = &cv->nbf;
        else if (kn == 3 && memcmp(k, "iss", 3) == 0)
            dst = &cv->iss;
        else if (kn == 3 && memcmp(k, "aud", 3) == 0) {
            cv->aud_ok = a->audience != NULL && auth_cv_eq(&tmp, a->audience);
            continue;
        }
        if (dst != NULL) *dst = tmp;
    }
    return r == 0;
}

static int auth_check_claims(const auth_jwt_t *a, const auth_cview_t *cv, int64_t now,
                             auth_claims_t *out)
{
    int64_t exp, nbf, iat;

    if (cv->sub.type != AUTH_CV_STR || !auth_sub_is_valid(cv->sub.s, cv->sub.n))
        return AUTH_ERR_INVALID;
    memcpy(out->sub, cv->sub.s, cv->sub.n);
    out->sub[cv->sub.n] = '\0';
    if (!auth_copy_opt_string(&cv->name, out->name, AUTH_NAME_MAX) ||
        !auth_copy_opt_string(&cv->role, out->role, AUTH_ROLE_MAX))
        return AUTH_ERR_INVALID;
    /* scope (issue 15): "server" makes a server credential; any other string is a user's
     * token as before; anything but a string is malformed. */
    if (cv->scope.type != AUTH_CV_ABSENT && cv->scope.type != AUTH_CV_STR) return AUTH_ERR_INVALID;
    out->server = auth_cv_eq(&cv->scope, "server");
    if (!auth_numeric_date(&cv->exp, &exp)) return AUTH_ERR_INVALID;
    out->exp = exp;
    if (cv->iat.type != AUTH_CV_ABSENT && !auth_numeric_date(&cv->iat, &iat))
        return AUTH_ERR_INVALID;
    if (a->issuer != NULL && !auth_cv_eq(&cv->iss, a->issuer)) return AUTH_ERR_INVALID;
    if (a->audience != NULL && !cv->aud_ok) return AUTH_ERR_INVALID;
    now = now > AUTH_TIME_LIMIT ? AUTH_TIME_LIMIT : now < -AUTH_TIME_LIMIT ? -AUTH_TIME_LIMIT : now;
    if (cv->nbf.type != AUTH_CV_ABSENT &&
        (!auth_numeric_date(&cv->nbf, &nbf) || now + a->leeway_s < nbf))
        return AUTH_ERR_INVALID;
    /* RFC 7519 4.1.4: the current time must be before exp. */
    if (now >= exp + a->leeway_s) return AUTH_ERR_EXPIRED;
    return AUTH_OK;
}

int auth_jwt_check_payload(const auth_jwt_t *a, const char *p, size_t n, int64_t now_s,
                           auth_claims_t *out, bool jansson_only)
{
    auth_cview_t cv;
    json_t *claims = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (jansson_only || !auth_claims_scan(a, p, n, &cv)) {
        claims = auth_parse_object((const unsigned char *)p, (long)n);
        if (claims == NULL) return AUTH_ERR_INVALID;
        auth_cview_from_json(a, claims, &cv);
    }
    rc = auth_check_claims(a, &cv, now_s, out);
    json_decref(claims);
    if (rc != AUTH_OK && rc != AUTH_ERR_EXPIRED) memset(out, 0, sizeof(*out));
    return rc;
}

int auth_jwt_verify(const auth_jwt_t *a, str_t token, int64_t now_s, auth_claims_t *out)
{
    int rc = AUTH_ERR_INVALID;
    unsigned char *buf = NULL;
    json_t *header = NULL;
    auth_claims_t tmp;
    str_t seg[3];
    long n;

    if (out == NULL) out = &tmp;
    memset(out, 0, sizeof(*out));
    if (token.ptr == NULL || token.len == 0) return AUTH_ERR_MISSING;
    if (a == NULL || token.len > a->max_token_len || !auth_split(token, seg))
        return AUTH_ERR_INVALID;
    /* One scratch buffer serves each segment in turn: decoded is always shorter than encoded.
     * On the stack for the usual token (a handshake's only malloc here). */
    unsigned char stack_buf[1024];
    buf = token.len <= sizeof stack_buf ? stack_buf : malloc(token.len);
    if (buf == NULL) return AUTH_ERR_INVALID;
    n = auth_b64url_decode(seg[0], buf);
    bool plain = false;
    for (int i = 0; i < 3 && n > 0; i++)
        plain = plain || ((size_t)n == strlen(a->plain_hdr[i]) &&
                          memcmp(buf, a->plain_hdr[i], (size_t)n) == 0);
    if (!plain) {
        header = auth_parse_object(buf, n);
        if (header == NULL || !auth_header_ok(a, header)) goto done;
    }
    if (auth_b64url_decode(seg[2], buf) != (long)a->sig_len) goto done;
    bool sig_ok = false;
    if (a->alg == JWT_ALG_HS256) {
        /* The MAC is over "<header>.<payload>" as sent (RFC 7515 5.2). */
        unsigned char mac[SHA256_LEN];
        hmac_sha256(&a->hs256, token.ptr, (size_t)(seg[2].ptr - 1 - token.ptr), mac);
        sig_ok = sha_equal(mac, buf, SHA256_LEN);
    }
    /* The payload is vetted as canonical before libjwt (with its laxer decoder) sees it. */
    n = auth_b64url_decode(seg[1], buf);
    if (n <= 0) goto done;
    if (a->alg == JWT_ALG_HS256 ? !sig_ok : auth_check_signature(a, token) != AUTH_OK) goto done;
    rc = auth_jwt_check_payload(a, (const char *)buf, (size_t)n, now_s, out, false);
done:
    if (rc != AUTH_OK && rc != AUTH_ERR_EXPIRED) memset(out, 0, sizeof(*out));
    json_decref(header);
    if (buf != stack_buf) free(buf);
    return rc;
}

static bool auth_utf8_string_ok(const char *s, size_t max)
{
    json_t *probe;
    size_t n = strlen(s);

    if (n > max) return false;
    probe = json_stringn(s, n); /* NULL on invalid UTF-8 */
    json_decref(probe);
    return probe != NULL;
}

int auth_jwt_sign(const auth_jwt_t *a, const char *sub, const char *name, const char *role,
                  int64_t now_s, int64_t ttl_s, char **token_out)
{
    return auth_jwt_sign_scope(a, sub, name, role, NULL, now_s, ttl_s, token_out);
}

int auth_jwt_sign_scope(const auth_jwt_t *a, const char *sub, const char *name, const char *role,
                        const char *scope, int64_t now_s, int64_t ttl_s, char **token_out)
{
    int rc = AUTH_ERR_CONFIG;
    jwt_t *jwt = NULL;
    char *tok;

    if (token_out == NULL) return AUTH_ERR_CONFIG;
    *token_out = NULL;
    if (a == NULL || a->alg != JWT_ALG_HS256 || sub == NULL || !auth_sub_is_valid(sub, strlen(sub)))
        return AUTH_ERR_CONFIG;
    if ((name != NULL && !auth_utf8_string_ok(name, AUTH_NAME_MAX)) ||
        (role != NULL && !auth_utf8_string_ok(role, AUTH_ROLE_MAX)))
        return AUTH_ERR_CONFIG;
    if (now_s < 0 || now_s > AUTH_TIME_LIMIT || ttl_s <= 0 || ttl_s > AUTH_TIME_LIMIT)
        return AUTH_ERR_CONFIG;
    if (jwt_new(&jwt) != 0) return AUTH_ERR_NOMEM;
    rc = AUTH_ERR_NOMEM;
    if (jwt_add_grant(jwt, "sub", sub) != 0) goto done;
    if (name != NULL && jwt_add_grant(jwt, "name", name) != 0) goto done;
    if (role != NULL && jwt_add_grant(jwt, "role", role) != 0) goto done;
    if (scope != NULL && jwt_add_grant(jwt, "scope", scope) != 0) goto done;
    if (jwt_add_grant_int(jwt, "iat", (long)now_s) != 0) goto done;
    if (jwt_add_grant_int(jwt, "exp", (long)(now_s + ttl_s)) != 0) goto done;
    if (a->issuer != NULL && jwt_add_grant(jwt, "iss", a->issuer) != 0) goto done;
    if (a->audience != NULL && jwt_add_grant(jwt, "aud", a->audience) != 0) goto done;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, a->key, (int)a->key_len) != 0) goto done;
    tok = jwt_encode_str(jwt);
    if (tok == NULL) goto done;
    *token_out = tok;
    rc = AUTH_OK;
done:
    jwt_free(jwt);
    ERR_clear_error();
    return rc;
}
