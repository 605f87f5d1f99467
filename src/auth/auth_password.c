/* Password policy and argon2id hashing through libsodium's crypto_pwhash_str API. */
#include "auth/auth_password.h"

#include <sodium.h>
#include <string.h>

_Static_assert(AUTH_PASSWORD_HASH_MAX == crypto_pwhash_STRBYTES, "hash buffer size");
_Static_assert(crypto_pwhash_OPSLIMIT_INTERACTIVE == 2 &&
                   crypto_pwhash_MEMLIMIT_INTERACTIVE == (size_t)64 << 20,
               "AUTH_PASSWORD_COST_INTERACTIVE mirrors libsodium");
_Static_assert(crypto_pwhash_OPSLIMIT_MIN == 1 && crypto_pwhash_MEMLIMIT_MIN == 8192,
               "AUTH_PASSWORD_COST_TEST mirrors libsodium");
_Static_assert(crypto_pwhash_ALG_DEFAULT == crypto_pwhash_ALG_ARGON2ID13, "argon2id default");

#define AUTH_ARGON2ID_PREFIX "$argon2id$"

/* sodium_init is itself thread-safe and idempotent; calling it on every use avoids a global
 * "initialised" flag of our own. */
static bool auth_sodium_ready(void)
{
    return sodium_init() >= 0;
}

static bool auth_cost_valid(const auth_password_cost_t *c)
{
    return c->opslimit >= crypto_pwhash_OPSLIMIT_MIN && c->opslimit <= crypto_pwhash_OPSLIMIT_MAX &&
           c->memlimit >= crypto_pwhash_MEMLIMIT_MIN && c->memlimit <= crypto_pwhash_MEMLIMIT_MAX;
}

int auth_password_policy(size_t len)
{
    if (len < AUTH_PASSWORD_MIN_LEN) return AUTH_PW_ERR_TOO_SHORT;
    if (len > AUTH_PASSWORD_MAX_LEN) return AUTH_PW_ERR_TOO_LONG;
    return AUTH_PW_OK;
}

int auth_password_hash_cost(const char *password, size_t len, const auth_password_cost_t *cost,
                            char out[AUTH_PASSWORD_HASH_MAX])
{
    auth_password_cost_t c = cost != NULL ? *cost : AUTH_PASSWORD_COST_INTERACTIVE;
    int rc;

    if (out == NULL) return AUTH_PW_ERR_ARG;
    out[0] = '\0';
    if (password == NULL && len > 0) return AUTH_PW_ERR_ARG;
    rc = auth_password_policy(len);
    if (rc != AUTH_PW_OK) return rc;
    if (!auth_cost_valid(&c)) return AUTH_PW_ERR_ARG;
    if (!auth_sodium_ready()) return AUTH_PW_ERR_INTERNAL;
    if (crypto_pwhash_str_alg(out, password, len, c.opslimit, c.memlimit,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        out[0] = '\0';
        return AUTH_PW_ERR_INTERNAL;
    }
    return AUTH_PW_OK;
}

int auth_password_hash(const char *password, size_t len, char out[AUTH_PASSWORD_HASH_MAX])
{
    return auth_password_hash_cost(password, len, NULL, out);
}

/* A stored hash is only handed to libsodium when it is a NUL-terminated argon2 string that
 * fits its buffer, so a corrupt row cannot make it read past the end. */
static bool auth_hash_string_ok(const char *hash)
{
    size_t n;

    if (hash == NULL) return false;
    n = strnlen(hash, AUTH_PASSWORD_HASH_MAX);
    return n < AUTH_PASSWORD_HASH_MAX && strncmp(hash, "$argon2", 7) == 0;
}

bool auth_password_verify(const char *hash, const char *password, size_t len)
{
    if (!auth_hash_string_ok(hash) || (password == NULL && len > 0)) return false;
    if (auth_password_policy(len) != AUTH_PW_OK) return false;
    if (!auth_sodium_ready()) return false;
    return crypto_pwhash_str_verify(hash, password, len) == 0;
}

bool auth_password_needs_rehash(const char *hash, const auth_password_cost_t *cost)
{
    auth_password_cost_t c = cost != NULL ? *cost : AUTH_PASSWORD_COST_INTERACTIVE;

    if (!auth_hash_string_ok(hash) ||
        strncmp(hash, AUTH_ARGON2ID_PREFIX, strlen(AUTH_ARGON2ID_PREFIX)) != 0)
        return true;
    if (!auth_sodium_ready()) return true;
    return crypto_pwhash_str_needs_rehash(hash, c.opslimit, c.memlimit) != 0;
}
