/* Password policy and argon2id password hashing (libsodium) for standalone accounts. */
#ifndef PARLOR_AUTH_PASSWORD_H
#define PARLOR_AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

/* Policy, in bytes (not characters): long enough to resist guessing, short enough that a
 * login request cannot make us hash megabytes. Any byte values are allowed. */
#define AUTH_PASSWORD_MIN_LEN 8
#define AUTH_PASSWORD_MAX_LEN 256

/* Size of a hash string buffer, NUL included (libsodium's crypto_pwhash_STRBYTES). */
#define AUTH_PASSWORD_HASH_MAX 128

enum {
    AUTH_PW_OK = 0,
    AUTH_PW_ERR_TOO_SHORT = -1,
    AUTH_PW_ERR_TOO_LONG = -2,
    AUTH_PW_ERR_ARG = -3,      /* NULL argument or cost outside libsodium's bounds */
    AUTH_PW_ERR_INTERNAL = -4, /* libsodium failed to start or ran out of memory */
};

/* Argon2id cost: passes over memlimit bytes. */
typedef struct {
    unsigned long long opslimit;
    size_t memlimit;
} auth_password_cost_t;

/* libsodium's "interactive" limits (2 passes over 64 MiB, ~50-100 ms, 64 MiB peak per call). */
#define AUTH_PASSWORD_COST_INTERACTIVE ((auth_password_cost_t){2, (size_t)64 << 20})
/* The cheapest limits libsodium accepts (1 pass over 8 KiB): tests only. */
#define AUTH_PASSWORD_COST_TEST ((auth_password_cost_t){1, 8192})

/* AUTH_PW_OK when a password of len bytes meets the policy, else TOO_SHORT / TOO_LONG. */
int auth_password_policy(size_t len);

/* Hashes password (ptr,len; need not be NUL-terminated) with argon2id at the interactive cost
 * into out, a NUL-terminated "$argon2id$..." string with its own salt and parameters.
 * Returns AUTH_PW_OK or a negative AUTH_PW_ERR_*. Slow on purpose: call it from a worker
 * thread, never the loop thread. Thread-safe. */
int auth_password_hash(const char *password, size_t len, char out[AUTH_PASSWORD_HASH_MAX]);

/* Same with an explicit cost; cost NULL means AUTH_PASSWORD_COST_INTERACTIVE. */
int auth_password_hash_cost(const char *password, size_t len, const auth_password_cost_t *cost,
                            char out[AUTH_PASSWORD_HASH_MAX]);

/* True when password matches hash (a NUL-terminated string from auth_password_hash; the cost
 * is read from it). False for anything malformed and for passwords outside the policy, which
 * no stored hash can match. Same cost as hashing; thread-safe. */
bool auth_password_verify(const char *hash, const char *password, size_t len);

/* True when hash is not argon2id at the given cost (NULL: interactive), so a login that just
 * verified the password should store a fresh hash. */
bool auth_password_needs_rehash(const char *hash, const auth_password_cost_t *cost);

#endif
