/* Fuzz target: the pure parts of upload storage: file-name sanitizing (bounded UTF-8 without
 * separators, controls or "..") and the zip end-record / central-directory reader. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "files/files.h"

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

static bool valid_utf8(const unsigned char *u, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = u[i] < 0x80    ? 1
                   : u[i] >= 0xF5 ? 0
                   : u[i] >= 0xF0 ? 4
                   : u[i] >= 0xE0 ? 3
                   : u[i] >= 0xC2 ? 2
                                  : 0;
        if (k == 0 || i + k > n) return false;
        for (size_t j = 1; j < k; j++) {
            if ((u[i + j] & 0xC0) != 0x80) return false;
        }
        i += k;
    }
    return true;
}

static void fuzz_name(const char *raw, size_t len, size_t cap)
{
    char *out = malloc(cap);
    int r = files_sanitize_name(raw, len, out, cap);
    if (cap < 5) {
        FUZZ_ASSERT(r == FILES_ERR_INVALID);
        free(out);
        return;
    }
    FUZZ_ASSERT(r >= 1 && r <= FILES_NAME_MAX && (size_t)r < cap && out[r] == '\0');
    FUZZ_ASSERT(strlen(out) == (size_t)r);
    FUZZ_ASSERT(valid_utf8((const unsigned char *)out, (size_t)r));
    FUZZ_ASSERT(!strchr(out, '/') && !strchr(out, '\\') && !strstr(out, ".."));
    FUZZ_ASSERT(out[0] != '.' && out[0] != ' ' && out[r - 1] != ' ');
    for (int i = 0; i < r; i++) FUZZ_ASSERT((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
    /* Sanitizing is idempotent. */
    char again[FILES_NAME_SIZE];
    int r2 = files_sanitize_name(out, (size_t)r, again, sizeof(again));
    FUZZ_ASSERT(r2 == r && memcmp(again, out, (size_t)r) == 0);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    if ((data[0] & 1) == 0) {
        fuzz_name((const char *)p, n, FILES_NAME_SIZE);
        fuzz_name((const char *)p, n, 1 + (size_t)(data[0] >> 1) % 40);
        return 0;
    }
    /* The input is a whole zip file: its tail, then the directory it points at. */
    size_t tl = n < FILES_ZIP_TAIL_MAX ? n : FILES_ZIP_TAIL_MAX;
    uint64_t off = 0, len = 0;
    if (files_zip_find_cd(p + n - tl, tl, n, &off, &len) == 0) {
        FUZZ_ASSERT(off <= n && len <= n - off);
        unsigned char *cd = malloc(len ? (size_t)len : 1);
        memcpy(cd, p + off, (size_t)len);
        const char *mime = files_zip_ooxml_mime(cd, (size_t)len);
        FUZZ_ASSERT(mime == NULL || strncmp(mime, "application/vnd.", 16) == 0);
        free(cd);
    }
    /* And the whole input as a directory. */
    unsigned char *cd = malloc(n ? n : 1);
    memcpy(cd, p, n);
    (void)files_zip_ooxml_mime(cd, n);
    free(cd);
    return 0;
}
