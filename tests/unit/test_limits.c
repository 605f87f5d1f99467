/* Unit tests for token buckets and concurrent limits. */
#include "chat/limits.h"
#include "unit.h"

static void test_bucket(void)
{
    bucket_t b = {0};
    /* 10/s with a burst of 30: 30 at once, then one every 100 ms. */
    for (int i = 0; i < 30; i++) CHECK_EQ_INT(bucket_take(&b, 10, 30, 1000), 0);
    CHECK_EQ_INT(bucket_take(&b, 10, 30, 1000), 100);
    CHECK_EQ_INT(bucket_take(&b, 10, 30, 1050), 50);
    CHECK_EQ_INT(bucket_take(&b, 10, 30, 1100), 0);
    CHECK(bucket_take(&b, 10, 30, 1100) > 0);
    /* After a long pause the bucket is full again, not fuller. */
    for (int i = 0; i < 30; i++) CHECK_EQ_INT(bucket_take(&b, 10, 30, 100000), 0);
    CHECK(bucket_take(&b, 10, 30, 100000) > 0);
    /* Rate 0 disables the limit. */
    bucket_t z = {0};
    for (int i = 0; i < 1000; i++) CHECK_EQ_INT(bucket_take(&z, 0, 0, 5), 0);
}

static void test_limiter(void)
{
    limiter_t l;
    CHECK(limiter_init(&l, 1, 2, 3) == 0);
    CHECK_EQ_INT(limiter_take(&l, "1.2.3.4", 10), 0);
    CHECK_EQ_INT(limiter_take(&l, "1.2.3.4", 10), 0);
    CHECK_EQ_INT(limiter_take(&l, "1.2.3.4", 10), 1000);
    CHECK_EQ_INT(limiter_take(&l, "5.6.7.8", 10), 0); /* keys are independent */
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(limiter_acquire(&l, "u"), 0);
    CHECK_EQ_INT(limiter_acquire(&l, "u"), -1);
    limiter_release(&l, "u");
    CHECK_EQ_INT(limiter_acquire(&l, "u"), 0);
    /* Sweeping keeps busy keys and drops idle full ones. */
    limiter_sweep(&l, 100000);
    CHECK(strmap_get(&l.map, "u") != NULL);
    CHECK(strmap_get(&l.map, "5.6.7.8") == NULL);
    for (int i = 0; i < 3; i++) limiter_release(&l, "u");
    limiter_sweep(&l, 100000);
    CHECK(strmap_get(&l.map, "u") == NULL);
    limiter_free(&l);
}

/* What another node of a cluster admitted is taken from the bucket, down to -burst at most. */
static void test_limiter_drain(void)
{
    limiter_t l;
    CHECK(limiter_init(&l, 10, 5, 0) == 0);
    limiter_drain(&l, "u", 3, 1000); /* a new key: full (5), minus 3 */
    CHECK_EQ_INT(limiter_take(&l, "u", 1000), 0);
    CHECK_EQ_INT(limiter_take(&l, "u", 1000), 0);
    CHECK(limiter_take(&l, "u", 1000) > 0);
    limiter_drain(&l, "u", 1000, 1000); /* bounded: -5, so 600 ms to the next token */
    CHECK_EQ_INT(limiter_take(&l, "u", 1000), 600);
    CHECK_EQ_INT(limiter_take(&l, "u", 1600), 0);
    limiter_drain(&l, "v", 0, 1000); /* nothing to take: no entry */
    CHECK(strmap_get(&l.map, "v") == NULL);
    limiter_free(&l);
}

int main(void)
{
    RUN(test_bucket);
    RUN(test_limiter);
    RUN(test_limiter_drain);
    return UNIT_DONE();
}
