/* Fuzz target: Range header values against sizes taken from the input; results must be in
 * bounds and agree with a second, independent reading of the same rules. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_range.h"

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

static void check(const char *h, size_t n, uint64_t size)
{
    uint64_t a = 7, b = 7;
    int rc = http_range_parse(str_make(h, n), size, &a, &b);
    FUZZ_ASSERT(rc == HTTP_RANGE_OK || rc == HTTP_RANGE_IGNORE || rc == HTTP_RANGE_UNSATISFIABLE);
    if (rc == HTTP_RANGE_OK) {
        FUZZ_ASSERT(a <= b && b < size);
        /* A range that is satisfiable on this size stays so on a larger one, starting there. */
        if (size < UINT64_MAX) {
            uint64_t a2, b2;
            FUZZ_ASSERT(http_range_parse(str_make(h, n), size + 1, &a2, &b2) == HTTP_RANGE_OK);
            FUZZ_ASSERT(b2 >= b);
        }
    } else {
        FUZZ_ASSERT(a == 7 && b == 7);
    }
    if (rc != HTTP_RANGE_IGNORE) {
        /* Only the single-range "bytes=" syntax gets an answer other than IGNORE. */
        FUZZ_ASSERT(n >= 7 && memchr(h, ',', n) == NULL);
        for (size_t i = 6; i < n; i++) {
            char c = h[i];
            FUZZ_ASSERT((c >= '0' && c <= '9') || c == '-' || c == ' ' || c == '\t');
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8) return 0;
    uint64_t sz;
    memcpy(&sz, data, 8);
    const char *h = (const char *)data + 8;
    size_t n = size - 8;
    /* Small sizes are where the edge cases are; use the raw 64-bit value only sometimes. */
    static const uint64_t sizes[] = {0, 1, 2, 10, 1000, UINT64_MAX - 1, UINT64_MAX};
    check(h, n, sz);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) check(h, n, sizes[i]);
    check(h, n, sz & 0xff);
    /* With the unit prefixed, so that most inputs reach the range syntax. */
    char *buf = malloc(n + 6);
    memcpy(buf, "bytes=", 6);
    memcpy(buf + 6, h, n);
    check(buf, n + 6, sz & 0xffff);
    check(buf, n + 6, 100);
    free(buf);
    return 0;
}
