/* Random identifiers from getrandom(2), rendered in base64url. */
#include "core/randid.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Bytes fetched from the kernel ahead, per thread: one getrandom per several ids instead of
 * one system call per id (three per handshake). A forked child starts with an empty pool, so
 * parent and child never hand out the same bytes. */
#define POOL_SIZE 2048 /* ~60 bytes a handshake: a getrandom per ~34 handshakes, not per 4 */
static _Thread_local uint8_t pool[POOL_SIZE];
static _Thread_local size_t pool_left;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void pool_drop(void)
{
    pool_left = 0; /* runs in the child's only thread, the one that forked */
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, pool_drop);
}

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

bool randid_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(alphabet, s[i])) return false;
    return true;
}

/* n (at most 64) bytes of the pool, which the caller copies before wiping them. */
static uint8_t *pool_take(size_t n)
{
    pthread_once(&atfork_once, register_atfork);
    if (pool_left < n) {
        /* Up to 256 bytes a call never returns short once the kernel's pool is initialized;
         * a larger one may (a signal): fill the rest. */
        for (size_t got = 0; got < POOL_SIZE;) {
            ssize_t r = getrandom(pool + got, POOL_SIZE - got, 0);
            if (r > 0)
                got += (size_t)r;
            else if (r == 0 || errno != EINTR)
                abort();
        }
        pool_left = POOL_SIZE;
    }
    uint8_t *rnd = pool + POOL_SIZE - pool_left;
    pool_left -= n;
    return rnd;
}

void randid_generate(char *out, size_t n)
{
    if (n > 64) n = 64;
    uint8_t *rnd = pool_take(n);
    for (size_t i = 0; i < n; i++) out[i] = alphabet[rnd[i] & 63];
    /* Used bytes are wiped: what was handed out is not left behind in memory. */
    memset(rnd, 0, n);
    out[n] = '\0';
}

void randid_bytes(void *out, size_t n)
{
    if (n > 64) n = 64;
    uint8_t *rnd = pool_take(n);
    memcpy(out, rnd, n);
    memset(rnd, 0, n);
}
