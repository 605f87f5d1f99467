/* Tests for Range header resolution: every form, clamping, 416 cases and ignored syntax. */
#include <stdint.h>

#include "http/http_range.h"
#include "unit.h"

static uint64_t rs, re;

static int range(const char *h, uint64_t size)
{
    rs = re = 12345;
    return http_range_parse(str_cstr(h), size, &rs, &re);
}

#define OK(h, size, a, b)                                                                          \
    do {                                                                                           \
        CHECK_EQ_INT(range(h, size), HTTP_RANGE_OK);                                               \
        CHECK_EQ_INT(rs, a);                                                                       \
        CHECK_EQ_INT(re, b);                                                                       \
    } while (0)

#define NOT(h, size, want)                                                                         \
    do {                                                                                           \
        CHECK_EQ_INT(range(h, size), want);                                                        \
        CHECK(rs == 12345 && re == 12345); /* outputs untouched */                                 \
    } while (0)

static void test_forms(void)
{
    OK("bytes=0-0", 10, 0, 0);
    OK("bytes=0-9", 10, 0, 9);
    OK("bytes=2-5", 10, 2, 5);
    OK("bytes=9-9", 10, 9, 9);
    OK("bytes=3-", 10, 3, 9);
    OK("bytes=0-", 10, 0, 9);
    OK("bytes=9-", 10, 9, 9);
    OK("bytes=-1", 10, 9, 9);
    OK("bytes=-3", 10, 7, 9);
    OK("bytes=-10", 10, 0, 9);
    OK("bytes=0-0", 1, 0, 0);
    OK("bytes=-1", 1, 0, 0);
}

static void test_clamping(void)
{
    OK("bytes=5-100", 10, 5, 9); /* end beyond size clamps */
    OK("bytes=0-10", 10, 0, 9);
    OK("bytes=-11", 10, 0, 9); /* suffix beyond size is the whole */
    OK("bytes=-99999999999999999999999999", 10, 0, 9);
    OK("bytes=1-99999999999999999999999999", 10, 1, 9);
    OK("bytes=0-18446744073709551615", UINT64_MAX, 0, UINT64_MAX - 1);
    OK("bytes=-18446744073709551615", UINT64_MAX, 0, UINT64_MAX - 1);
    OK("bytes=18446744073709551614-", UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 1);
    OK("bytes=00000000000000000000000000003-4", 10, 3, 4); /* leading zeros are not overflow */
}

static void test_unsatisfiable(void)
{
    NOT("bytes=10-", 10, HTTP_RANGE_UNSATISFIABLE); /* start beyond size */
    NOT("bytes=10-20", 10, HTTP_RANGE_UNSATISFIABLE);
    NOT("bytes=11-11", 10, HTTP_RANGE_UNSATISFIABLE);
    NOT("bytes=99999999999999999999999-", 10, HTTP_RANGE_UNSATISFIABLE);
    NOT("bytes=-0", 10, HTTP_RANGE_UNSATISFIABLE);
    NOT("bytes=-000", 10, HTTP_RANGE_UNSATISFIABLE);
    NOT("bytes=18446744073709551615-", UINT64_MAX, HTTP_RANGE_UNSATISFIABLE);
    /* size 0: nothing to send */
    NOT("bytes=0-", 0, HTTP_RANGE_UNSATISFIABLE);
    NOT("bytes=0-0", 0, HTTP_RANGE_UNSATISFIABLE);
    NOT("bytes=-0", 0, HTTP_RANGE_UNSATISFIABLE);
    NOT("bytes=-5", 0, HTTP_RANGE_IGNORE); /* the empty 200 */
}

static void test_ignored(void)
{
    static const char *const bad[] = {
        "bytes=5-3", /* last < first: invalid, not 416 */
        "bytes=-",        "bytes=",
        "bytes",          "",
        "bytes=a-b",      "bytes=1-b",
        "bytes=+1-2",     "bytes=-+1",
        "bytes=1--2",     "bytes=1-2-",
        "bytes=1 -2",     "bytes=1- 2",
        "bytes =1-2",     "bytes= =1-2",
        "bytes:1-2",      "items=0-1",
        "byte=0-1",       "bytes=0x1-2",
        "bytes=1.5-2",    "bytes=0-1,2-3", /* multiple ranges: full body */
        "bytes=0-1, 2-3", "bytes=0-1,",
        "bytes=,0-1",     "bytes=0-1,0-1",
        "bytes=0-1,-1",   "bytes=50-60,0-1", /* even when the first one is unsatisfiable */
        "bytes=\r\n0-1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = range(bad[i], 10);
        if (rc != HTTP_RANGE_IGNORE) fprintf(stderr, "not ignored: %s\n", bad[i]);
        CHECK_EQ_INT(rc, HTTP_RANGE_IGNORE);
        CHECK(rs == 12345 && re == 12345);
    }
    /* An embedded NUL counts as a byte, not an end. */
    CHECK_EQ_INT(http_range_parse(str_make("bytes=0-1\0", 10), 10, &rs, &re), HTTP_RANGE_IGNORE);
    CHECK_EQ_INT(http_range_parse(STR_NULL, 10, &rs, &re), HTTP_RANGE_IGNORE);
}

static void test_case_and_whitespace(void)
{
    OK("Bytes=1-2", 10, 1, 2);
    OK("BYTES=1-2", 10, 1, 2);
    OK("bytes= 1-2", 10, 1, 2);
    OK("bytes=\t1-2 \t", 10, 1, 2);
    OK("bytes=  -2  ", 10, 8, 9);
    /* not NUL-terminated: the length is what counts */
    CHECK_EQ_INT(http_range_parse(str_make("bytes=1-23", 9), 10, &rs, &re), HTTP_RANGE_OK);
    CHECK_EQ_INT(re, 2);
}

int main(void)
{
    RUN(test_forms);
    RUN(test_clamping);
    RUN(test_unsatisfiable);
    RUN(test_ignored);
    RUN(test_case_and_whitespace);
    return UNIT_DONE();
}
