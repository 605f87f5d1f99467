/* Unit tests for the string map. */
#include <stdio.h>
#include <stdlib.h>

#include "core/strmap.h"
#include "unit.h"

static int drop_odd(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    return ((long)(size_t)value) % 2 == 1;
}

static void test_set_get_remove(void)
{
    strmap_t m;
    CHECK(strmap_init(&m) == 0);
    char key[32];
    for (long i = 1; i <= 5000; i++) {
        snprintf(key, sizeof key, "user-%ld", i);
        CHECK(strmap_set(&m, key, (void *)(size_t)i) == 0);
    }
    CHECK_EQ_INT(m.count, 5000);
    CHECK(m.nbuckets >= 4096);
    CHECK(strmap_get(&m, "user-1234") == (void *)(size_t)1234);
    CHECK(strmap_get(&m, "user-0") == NULL);
    CHECK(strmap_get(&m, "") == NULL);
    CHECK(strmap_set(&m, "user-1234", (void *)(size_t)7) == 0);
    CHECK_EQ_INT(m.count, 5000);
    CHECK(strmap_get(&m, "user-1234") == (void *)(size_t)7);
    CHECK(strmap_remove(&m, "user-7") == (void *)(size_t)7);
    CHECK(strmap_remove(&m, "user-7") == NULL);
    CHECK_EQ_INT(m.count, 4999);
    strmap_sweep(&m, drop_odd, NULL);
    CHECK(strmap_get(&m, "user-3") == NULL);
    CHECK(strmap_get(&m, "user-4") == (void *)(size_t)4);
    CHECK(strmap_get(&m, "user-1234") == NULL); /* its value became 7: odd */
    strmap_free(&m, NULL);
    strmap_free(&m, NULL); /* twice is harmless */
}

int main(void)
{
    RUN(test_set_get_remove);
    return UNIT_DONE();
}
