/* libFuzzer target: the static file module's pure parts on arbitrary bytes; a normalised path
 * must never be able to leave the web root. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_static.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    str_t in = str_make((const char *)data, size);
    char out[HTTP_STATIC_PATH_MAX];
    int n = http_static_normalize(in, out, sizeof out);
    if (n >= 0) {
        if ((size_t)n >= sizeof out || out[n] != '\0' || strlen(out) != (size_t)n) abort();
        if (n > 0 && out[0] == '/') abort();
        if (strchr(out, '\\') || strstr(out, "//")) abort();
        /* No ".." segment anywhere. */
        for (int i = 0; i + 1 < n; i++)
            if (out[i] == '.' && out[i + 1] == '.' && (i == 0 || out[i - 1] == '/') &&
                (i + 2 == n || out[i + 2] == '/'))
                abort();
        for (int i = 0; i < n; i++)
            if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) abort();
        (void)http_static_is_route(str_make(out, (size_t)n));
    } else if (n != HTTP_STATIC_E_BAD && n != HTTP_STATIC_E_TOO_LONG) {
        abort();
    }
    /* A tiny output buffer exercises every length check. */
    char small[4];
    int m = http_static_normalize(in, small, sizeof small);
    if (m >= (int)sizeof small) abort();
    (void)http_static_accepts_gzip(in);
    (void)http_static_is_hashed(in);
    if (!http_static_mime(in)) abort();
    return 0;
}
