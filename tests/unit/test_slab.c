/* Unit tests for the fixed-size object pools (src/core/slab.c). */
#include <stdint.h>
#include <stdlib.h>

#include "core/slab.h"
#include "unit.h"

static void test_alloc_free(void)
{
    slab_pool_t p;
    slab_pool_init(&p, 408);
    enum { N = 1000 };
    unsigned char **o = calloc(N, sizeof *o);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        o[i] = slab_calloc(&p);
        if (!o[i] || ((uintptr_t)o[i] & 7)) bad++;
        for (int k = 0; k < 408; k++) bad += o[i][k] != 0;
        memset(o[i], 0xab, 408);
    }
    CHECK_EQ_INT(bad, 0);
    /* distinct, non-overlapping */
    for (int i = 1; i < N; i++) {
        ptrdiff_t d = o[i] - o[i - 1];
        bad += d > -408 && d < 408;
    }
    CHECK_EQ_INT(bad, 0);
    /* freed objects come back zeroed */
    for (int i = 0; i < N; i += 2) slab_free(&p, o[i]);
    for (int i = 0; i < N; i += 2) {
        o[i] = slab_calloc(&p);
        for (int k = 0; k < 408; k++) bad += o[i][k] != 0;
        memset(o[i], 0xcd, 408);
    }
    CHECK_EQ_INT(bad, 0);
    for (int i = 1; i < N; i += 2)
        for (int k = 0; k < 408; k++) bad += o[i][k] != 0xab;
    CHECK_EQ_INT(bad, 0);
    for (int i = 0; i < N; i++) slab_free(&p, o[i]);
    /* every slab emptied: at most the one kept for reuse stays (none under ASan) */
    CHECK(p.slabs <= 1);
    slab_pool_trim(&p);
    CHECK_EQ_INT(p.slabs, 0);
    free(o);
}

int main(void)
{
    RUN(test_alloc_free);
    return UNIT_DONE();
}
