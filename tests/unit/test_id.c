/* Tests for ObjectId-style ids: format, validation, time order, uniqueness across threads and
 * forks. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/id.h"
#include "unit.h"

static void test_format(void)
{
    char id[ID_SIZE];
    memset(id, 'x', sizeof id);
    id_generate(id);
    CHECK_EQ_INT(strlen(id), 24);
    CHECK(id_valid(str_cstr(id)));
    for (int i = 0; i < 24; i++)
        CHECK((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'));
    int64_t t = id_time(str_cstr(id));
    int64_t now = (int64_t)time(NULL);
    CHECK(t >= now - 2 && t <= now);
}

static void test_generate_at(void)
{
    char id[ID_SIZE];
    id_generate_at(0x01020304u, id);
    CHECK_MEM(id, 8, "01020304");
    CHECK_EQ_INT(id_time(str_cstr(id)), 0x01020304);
    id_generate_at(0xffffffffu, id);
    CHECK_MEM(id, 8, "ffffffff");
    CHECK_EQ_INT(id_time(str_cstr(id)), 0xffffffffLL);
}

static void test_process_part_and_counter(void)
{
    char a[ID_SIZE], b[ID_SIZE];
    id_generate_at(1000, a);
    id_generate_at(1000, b);
    /* Same process: the 5 random bytes are shared, the counter moves by one. */
    CHECK(memcmp(a + 8, b + 8, 10) == 0);
    unsigned long ca = strtoul(a + 18, NULL, 16), cb = strtoul(b + 18, NULL, 16);
    CHECK_EQ_INT(cb, (ca + 1) & 0xffffff);
}

static void test_valid(void)
{
    CHECK(id_valid(STR_LIT("507f1f77bcf86cd799439011")));
    CHECK(id_valid(STR_LIT("000000000000000000000000")));
    CHECK(!id_valid(STR_LIT("507F1F77BCF86CD799439011")));  /* uppercase */
    CHECK(!id_valid(STR_LIT("507f1f77bcf86cd79943901")));   /* 23 */
    CHECK(!id_valid(STR_LIT("507f1f77bcf86cd7994390111"))); /* 25 */
    CHECK(!id_valid(STR_LIT("507f1f77bcf86cd79943901g")));
    CHECK(!id_valid(STR_LIT("507f1f77bcf86cd79943901 ")));
    CHECK(!id_valid(str_make("507f1f77bcf86cd79943901\0", 24)));
    CHECK(!id_valid(STR_LIT("")));
    CHECK(!id_valid(STR_NULL));
    CHECK_EQ_INT(id_time(STR_LIT("zzz")), -1);
    /* Length counts, not a NUL: a valid id inside a longer buffer. */
    CHECK(id_valid(str_make("507f1f77bcf86cd799439011trailing", 24)));
}

static void test_time_order(void)
{
    char prev[ID_SIZE], cur[ID_SIZE];
    int inversions = 0;
    id_generate(prev);
    for (int i = 0; i < 100000; i++) {
        id_generate(cur);
        /* Only a wrap of the 24-bit counter may invert two ids within one second. */
        if (strcmp(cur, prev) <= 0) inversions++;
        memcpy(prev, cur, ID_SIZE);
    }
    CHECK(inversions <= 1);
    char older[ID_SIZE], newer[ID_SIZE];
    id_generate_at(1700000000u, older);
    id_generate_at(1700000001u, newer);
    CHECK(strcmp(older, newer) < 0);
}

#define THREADS    4
#define PER_THREAD 50000

static char (*thread_ids)[ID_SIZE];

static void *gen_thread(void *arg)
{
    size_t base = (size_t)arg * PER_THREAD;
    for (size_t i = 0; i < PER_THREAD; i++) id_generate(thread_ids[base + i]);
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, ID_SIZE);
}

static void test_unique_across_threads(void)
{
    pthread_t t[THREADS];
    thread_ids = calloc(THREADS * PER_THREAD, ID_SIZE);
    CHECK(thread_ids != NULL);
    if (!thread_ids) return;
    for (size_t i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, gen_thread, (void *)i);
    for (size_t i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    qsort(thread_ids, THREADS * PER_THREAD, ID_SIZE, cmp_id);
    int dups = 0;
    for (size_t i = 1; i < THREADS * PER_THREAD; i++)
        dups += memcmp(thread_ids[i - 1], thread_ids[i], ID_SIZE) == 0;
    CHECK_EQ_INT(dups, 0);
    free(thread_ids);
}

static void test_fork_reseeds(void)
{
    int fds[2];
    char parent[ID_SIZE], child[ID_SIZE] = "";
    CHECK(pipe(fds) == 0);
    id_generate(parent);
    pid_t pid = fork();
    if (pid == 0) {
        char id[ID_SIZE];
        id_generate(id);
        ssize_t w = write(fds[1], id, ID_SIZE);
        _exit(w == ID_SIZE ? 0 : 1);
    }
    CHECK(pid > 0);
    CHECK_EQ_INT(read(fds[0], child, ID_SIZE), ID_SIZE);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(id_valid(str_cstr(child)));
    /* The child's process bytes differ from the parent's. */
    CHECK(memcmp(parent + 8, child + 8, 10) != 0);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    RUN(test_format);
    RUN(test_generate_at);
    RUN(test_process_part_and_counter);
    RUN(test_valid);
    RUN(test_time_order);
    RUN(test_unique_across_threads);
    RUN(test_fork_reseeds);
    return UNIT_DONE();
}
