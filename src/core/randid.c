/* Random identifiers from getrandom(2), rendered in base64url. */
#include "core/randid.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>

void randid_generate(char *out, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t rnd[64];
    if (n > sizeof rnd) n = sizeof rnd;
    /* getrandom on a small buffer never returns short once the pool is initialized. */
    if (getrandom(rnd, n, 0) != (ssize_t)n) abort();
    for (size_t i = 0; i < n; i++) out[i] = alphabet[rnd[i] & 63];
    out[n] = '\0';
}
