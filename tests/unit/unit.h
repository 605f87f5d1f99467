/* A minimal unit-test harness: CHECK records a failure and goes on; main() returns non-zero
 * when any check failed, which is what CTest looks at. */
#ifndef PARLOR_TESTS_UNIT_H
#define PARLOR_TESTS_UNIT_H

#include <stdio.h>
#include <string.h>

/* A test executable made of several files defines UNIT_SHARED_COUNTERS before including this
 * in each of them, and one of them defines the two counters. */
#ifdef UNIT_SHARED_COUNTERS
extern int unit_failures;
extern int unit_checks;
#else
static int unit_failures;
static int unit_checks;
#endif

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        unit_checks++;                                                                             \
        if (!(cond)) {                                                                             \
            unit_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);                              \
        unit_checks++;                                                                             \
        if (unit_a_ != unit_b_) {                                                                  \
            unit_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK_EQ_INT failed: %s == %lld, expected %s == %lld\n",       \
                    __FILE__, __LINE__, #a, unit_a_, #b, unit_b_);                                 \
        }                                                                                          \
    } while (0)

/* Compare a (ptr,len) buffer with a C string literal. */
#define CHECK_MEM(ptr, len, lit)                                                                   \
    do {                                                                                           \
        size_t unit_l_ = (size_t)(len);                                                            \
        unit_checks++;                                                                             \
        if (unit_l_ != strlen(lit) || memcmp((ptr), (lit), unit_l_) != 0) {                        \
            unit_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK_MEM failed: got \"%.*s\", expected \"%s\"\n", __FILE__,  \
                    __LINE__, (int)unit_l_, (const char *)(ptr), lit);                             \
        }                                                                                          \
    } while (0)

#define RUN(test_fn)                                                                               \
    do {                                                                                           \
        int unit_before_ = unit_failures;                                                          \
        test_fn();                                                                                 \
        fprintf(stderr, "%-50s %s\n", #test_fn, unit_failures == unit_before_ ? "ok" : "FAILED");  \
    } while (0)

#define UNIT_DONE()                                                                                \
    (fprintf(stderr, "%d checks, %d failed\n", unit_checks, unit_failures), unit_failures ? 1 : 0)

#endif
