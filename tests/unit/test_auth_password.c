/* Unit tests of auth_password: policy bounds, argon2id round trips, malformed stored hashes. */
#include "auth/auth_password.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unit.h"

static const auth_password_cost_t fast = AUTH_PASSWORD_COST_TEST;

static void test_policy(void)
{
    CHECK_EQ_INT(auth_password_policy(0), AUTH_PW_ERR_TOO_SHORT);
    CHECK_EQ_INT(auth_password_policy(7), AUTH_PW_ERR_TOO_SHORT);
    CHECK_EQ_INT(auth_password_policy(8), AUTH_PW_OK);
    CHECK_EQ_INT(auth_password_policy(256), AUTH_PW_OK);
    CHECK_EQ_INT(auth_password_policy(257), AUTH_PW_ERR_TOO_LONG);
    CHECK_EQ_INT(auth_password_policy((size_t)-1), AUTH_PW_ERR_TOO_LONG);
}

static void test_hash_verify(void)
{
    char h[AUTH_PASSWORD_HASH_MAX], h2[AUTH_PASSWORD_HASH_MAX];

    CHECK_EQ_INT(auth_password_hash_cost("correct horse", 13, &fast, h), AUTH_PW_OK);
    CHECK(strncmp(h, "$argon2id$v=19$m=8,t=1,p=1$", 27) == 0);
    CHECK(strlen(h) < AUTH_PASSWORD_HASH_MAX);
    CHECK(auth_password_verify(h, "correct horse", 13));
    CHECK(!auth_password_verify(h, "correct horsE", 13));
    CHECK(!auth_password_verify(h, "correct hors", 12));
    CHECK(!auth_password_verify(h, "correct horse!", 14));
    /* (ptr,len): the bytes after len do not matter, and embedded NULs do */
    CHECK(auth_password_verify(h, "correct horse and more", 13));
    CHECK_EQ_INT(auth_password_hash_cost("abc\0defgh", 9, &fast, h2), AUTH_PW_OK);
    CHECK(auth_password_verify(h2, "abc\0defgh", 9));
    CHECK(!auth_password_verify(h2, "abc\0defgX", 9));
    CHECK(!auth_password_verify(h2, "abc", 3));
    /* salted: the same password hashes differently, both verify */
    CHECK_EQ_INT(auth_password_hash_cost("correct horse", 13, &fast, h2), AUTH_PW_OK);
    CHECK(strcmp(h, h2) != 0);
    CHECK(auth_password_verify(h2, "correct horse", 13));
    /* policy bounds at hashing time */
    CHECK_EQ_INT(auth_password_hash_cost("1234567", 7, &fast, h2), AUTH_PW_ERR_TOO_SHORT);
    CHECK(h2[0] == '\0');
    CHECK_EQ_INT(auth_password_hash_cost("12345678", 8, &fast, h2), AUTH_PW_OK);
    CHECK(auth_password_verify(h2, "12345678", 8));
    {
        char big[300];
        memset(big, 'x', sizeof(big));
        CHECK_EQ_INT(auth_password_hash_cost(big, 256, &fast, h2), AUTH_PW_OK);
        CHECK(auth_password_verify(h2, big, 256));
        CHECK(!auth_password_verify(h2, big, 255));
        CHECK_EQ_INT(auth_password_hash_cost(big, 257, &fast, h2), AUTH_PW_ERR_TOO_LONG);
        /* a too-long candidate is refused without hashing */
        CHECK(!auth_password_verify(h2, big, 257));
    }
    CHECK(!auth_password_verify(h, "short", 5));
}

static void test_arguments(void)
{
    char h[AUTH_PASSWORD_HASH_MAX];
    auth_password_cost_t c = fast;

    CHECK_EQ_INT(auth_password_hash_cost(NULL, 8, &fast, h), AUTH_PW_ERR_ARG);
    CHECK_EQ_INT(auth_password_hash_cost(NULL, 0, &fast, h), AUTH_PW_ERR_TOO_SHORT);
    CHECK_EQ_INT(auth_password_hash_cost("password", 8, &fast, NULL), AUTH_PW_ERR_ARG);
    c.opslimit = 0;
    CHECK_EQ_INT(auth_password_hash_cost("password", 8, &c, h), AUTH_PW_ERR_ARG);
    c = fast;
    c.memlimit = 1024;
    CHECK_EQ_INT(auth_password_hash_cost("password", 8, &c, h), AUTH_PW_ERR_ARG);
    CHECK(!auth_password_verify(NULL, "password", 8));
    CHECK_EQ_INT(auth_password_hash_cost("password", 8, &fast, h), AUTH_PW_OK);
    CHECK(!auth_password_verify(h, NULL, 8));
}

static void test_malformed_hashes(void)
{
    char h[AUTH_PASSWORD_HASH_MAX], m[AUTH_PASSWORD_HASH_MAX + 16];
    const char *bad[] = {
        "",
        "password1",
        "$argon2id$",
        "$argon2id$v=19$m=8,t=1,p=1$",
        "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$",
        "$argon2id$v=19$m=8,t=1,p=1$!!!!$!!!!",
        "$2b$12$abcdefghijklmnopqrstuuIY0Cr4vYt6e4K3hQjUk0n7j9i1zG1CS", /* bcrypt */
        ("$argon2d$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    };

    CHECK_EQ_INT(auth_password_hash_cost("password", 8, &fast, h), AUTH_PW_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(!auth_password_verify(bad[i], "password", 8));
    /* one changed character in the digest */
    strcpy(m, h);
    m[strlen(m) - 2] = m[strlen(m) - 2] == 'A' ? 'B' : 'A';
    CHECK(!auth_password_verify(m, "password", 8));
    /* truncated */
    strcpy(m, h);
    m[strlen(m) - 5] = '\0';
    CHECK(!auth_password_verify(m, "password", 8));
    /* no NUL within the 128-byte buffer: refused without reading past it */
    {
        char *nonul = malloc(AUTH_PASSWORD_HASH_MAX);
        memset(nonul, 'a', AUTH_PASSWORD_HASH_MAX);
        memcpy(nonul, h, strlen(h));
        CHECK(!auth_password_verify(nonul, "password", 8));
        CHECK(auth_password_needs_rehash(nonul, &fast));
        free(nonul);
    }
}

static void test_needs_rehash(void)
{
    char h[AUTH_PASSWORD_HASH_MAX];
    auth_password_cost_t other = {2, 16384};

    CHECK_EQ_INT(auth_password_hash_cost("password", 8, &fast, h), AUTH_PW_OK);
    CHECK(!auth_password_needs_rehash(h, &fast));
    CHECK(auth_password_needs_rehash(h, &other));
    CHECK(auth_password_needs_rehash(h, NULL)); /* interactive */
    CHECK(auth_password_needs_rehash("", NULL));
    CHECK(auth_password_needs_rehash(NULL, NULL));
    CHECK(auth_password_needs_rehash("$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
                                     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                     &fast));
}

/* The production cost, once: a real argon2id interactive hash round-trips in reasonable time. */
static void test_interactive_cost(void)
{
    char h[AUTH_PASSWORD_HASH_MAX];
    struct timespec t0, t1;
    double ms;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_INT(auth_password_hash("hunter2hunter2", 14, h), AUTH_PW_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    fprintf(stderr, "argon2id interactive hash: %.0f ms\n", ms);
    CHECK(strncmp(h, "$argon2id$v=19$m=65536,t=2,p=1$", 31) == 0);
    CHECK(auth_password_verify(h, "hunter2hunter2", 14));
    CHECK(!auth_password_verify(h, "hunter2hunter3", 14));
    CHECK(!auth_password_needs_rehash(h, NULL));
    CHECK(auth_password_needs_rehash(h, &fast));
}

int main(void)
{
    RUN(test_policy);
    RUN(test_hash_verify);
    RUN(test_arguments);
    RUN(test_malformed_hashes);
    RUN(test_needs_rehash);
    RUN(test_interactive_cost);
    return UNIT_DONE();
}
