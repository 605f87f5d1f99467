/* JWT verification (HS256, RS256, ES256) and HS256 signing of Parlor identities, on libjwt. */
#ifndef PARLOR_AUTH_JWT_H
#define PARLOR_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

/* Result codes. auth_jwt_verify answers only OK, MISSING, INVALID or EXPIRED; an allocation
 * failure while verifying is reported as INVALID (fail closed). CONFIG and NOMEM come from
 * auth_jwt_new and auth_jwt_sign only. */
enum {
    AUTH_OK = 0,
    AUTH_ERR_MISSING = -1, /* empty token: nothing was presented */
    AUTH_ERR_INVALID = -2, /* malformed, wrong algorithm, bad signature, bad or missing claim */
    AUTH_ERR_EXPIRED = -3, /* everything valid except that exp (+ leeway) has passed */
    AUTH_ERR_CONFIG = -4,  /* bad configuration, key or argument */
    AUTH_ERR_NOMEM = -5,
    AUTH_ERR_SCOPE = -6, /* a valid token of the wrong kind here (issue 15): a server credential
                            on a user endpoint or socket, a user token on the server API */
};

#define AUTH_JWT_DEFAULT_LEEWAY_S      30
#define AUTH_JWT_MAX_LEEWAY_S          3600 /* a clock-skew allowance, not a grace period */
#define AUTH_JWT_DEFAULT_MAX_TOKEN_LEN 8192
#define AUTH_JWT_MIN_MAX_TOKEN_LEN     64
#define AUTH_JWT_MAX_MAX_TOKEN_LEN     65536
#define AUTH_JWT_MIN_SECRET_LEN        32 /* RFC 7518 3.2: an HS256 key is at least the hash size */
#define AUTH_JWT_MAX_KEY_LEN           16384
#define AUTH_JWT_MIN_RSA_BITS          2048

/* Opaque verifier/signer; immutable after auth_jwt_new, so one instance may be used from any
 * number of threads at once. */
typedef struct auth_jwt auth_jwt_t;

/* Everything is borrowed for the duration of auth_jwt_new only (the verifier keeps copies).
 * - alg: "HS256", "RS256" or "ES256" (exact spelling). Tokens must carry exactly this alg.
 * - key/key_len: HS256: the shared secret bytes, at least AUTH_JWT_MIN_SECRET_LEN (32).
 *   RS256/ES256: a PEM "PUBLIC KEY" (SubjectPublicKeyInfo, as `openssl pkey -pubout` writes);
 *   RSA keys need >= 2048 bits, EC keys must be on P-256. Private keys and certificates are
 *   refused so that a misconfiguration is loud.
 * - issuer/audience: NULL or "" means not checked. When set, `iss` must equal issuer and `aud`
 *   must equal audience or be an array of strings containing it; auth_jwt_sign emits both.
 * - leeway_s: clock skew allowed on exp/nbf; negative selects AUTH_JWT_DEFAULT_LEEWAY_S (30),
 *   0 means none, at most AUTH_JWT_MAX_LEEWAY_S.
 * - max_token_len: longer tokens are refused before any parsing; 0 selects the default (8 KiB),
 *   otherwise within [AUTH_JWT_MIN_MAX_TOKEN_LEN, AUTH_JWT_MAX_MAX_TOKEN_LEN]. */
typedef struct {
    const char *alg;
    const unsigned char *key;
    size_t key_len;
    const char *issuer;
    const char *audience;
    int leeway_s;
    size_t max_token_len;
} auth_jwt_config_t;

/* Validates cfg (the PEM must parse to a key of the right type) and builds a verifier in *out,
 * owned by the caller (auth_jwt_free). On failure returns AUTH_ERR_CONFIG or AUTH_ERR_NOMEM,
 * leaves *out NULL and writes a one-line reason into err (may be NULL). */
int auth_jwt_new(const auth_jwt_config_t *cfg, auth_jwt_t **out, char *err, size_t err_cap);

/* Frees a verifier and wipes its secret; NULL is a no-op. */
void auth_jwt_free(auth_jwt_t *a);

#define AUTH_SUB_MAX  64  /* sub: 1..64 bytes of [A-Za-z0-9_-] */
#define AUTH_NAME_MAX 128 /* name: optional string, <= 128 bytes of UTF-8 */
#define AUTH_ROLE_MAX 32  /* role: optional string, <= 32 bytes of UTF-8 */

/* The identity a valid token carries; absent name/role are empty strings. */
typedef struct {
    char sub[AUTH_SUB_MAX + 1];
    char name[AUTH_NAME_MAX + 1];
    char role[AUTH_ROLE_MAX + 1];
    int64_t exp; /* seconds since the epoch, a fractional exp rounded up */
    bool server; /* "scope": "server": a server credential (issue 15) */
} auth_claims_t;

/* Verifies a compact JWS token (ptr,len; no "Bearer " prefix, no NUL needed) at time now_s
 * (seconds since the epoch), in this order:
 *  1. empty -> MISSING; longer than max_token_len -> INVALID;
 *  2. exactly three non-empty segments of unpadded, canonical base64url -> else INVALID;
 *  3. header: a JSON object without duplicate keys whose "alg" is exactly the configured one
 *     (so "none", and an HS256 token signed with an RS256 public key as the HMAC secret, are
 *     refused before libjwt sees them), "typ" absent or "JWT", no "crit" -> else INVALID;
 *  4. signature of the configured length, verified by libjwt -> else INVALID;
 *  5. payload: a JSON object without duplicate keys; exp required, nbf/iat optional, all
 *     NumericDate numbers; sub, name, role as in auth_claims_t; iss/aud when configured
 *     -> else INVALID; nbf later than now + leeway -> INVALID (a not-yet-valid token is not
 *     fixed by refreshing it, unlike an expired one);
 *  6. now >= exp + leeway -> EXPIRED. So EXPIRED means "would be accepted but for its age":
 *     the client should fetch a new token.
 * out (may be NULL) is filled on AUTH_OK and AUTH_ERR_EXPIRED, zeroed otherwise. */
int auth_jwt_verify(const auth_jwt_t *a, str_t token, int64_t now_s, auth_claims_t *out);

/* Step 5 and 6 alone on a decoded payload p[0..n) (for tests and fuzz/fuzz_jwt_claims.c).
 * The verifier reads plain payloads in place and anything unusual with jansson; jansson_only
 * forces the latter, so the two readers can be compared. out is always written. */
int auth_jwt_check_payload(const auth_jwt_t *a, const char *p, size_t n, int64_t now_s,
                           auth_claims_t *out, bool jansson_only);

/* Signs an HS256 token {sub, name?, role?, iat: now_s, exp: now_s + ttl_s, iss?, aud?} for
 * `parlor token`, register/login and tests. name/role may be NULL (omitted). Only for HS256
 * verifiers; sub/name/role must satisfy the limits above (name valid UTF-8), ttl_s > 0.
 * On AUTH_OK *token_out is a NUL-terminated string the caller frees with free(). */
int auth_jwt_sign(const auth_jwt_t *a, const char *sub, const char *name, const char *role,
                  int64_t now_s, int64_t ttl_s, char **token_out);

/* The same with a "scope" claim (NULL: none), e.g. "server" for `parlor token --scope server`. */
int auth_jwt_sign_scope(const auth_jwt_t *a, const char *sub, const char *name, const char *role,
                        const char *scope, int64_t now_s, int64_t ttl_s, char **token_out);

/* The wire `data.code` for a result: "AUTH_MISSING", "AUTH_INVALID", "AUTH_EXPIRED" (also
 * "OK", "AUTH_CONFIG", "INTERNAL"). Never NULL. */
const char *auth_error_code(int rc);

/* True when s is a valid sub (1..64 bytes of [A-Za-z0-9_-]); usable to vet usernames. */
bool auth_sub_is_valid(const char *s, size_t len);

#endif
