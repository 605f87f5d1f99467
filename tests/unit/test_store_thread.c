/* Tests of opening the asynchronous store by target: SQLite paths and URLs, errors. What the
 * asynchronous store does for every engine (completion order, group commit, reads beside
 * writes, lazy writes, close, kill -9) is in the store conformance suite (store_conformance*.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "store/store.h"
#include "store/store_engine.h"
#include "unit.h"

static char tmpdir[64];

static void finish(uv_loop_t *loop, store_t *s)
{
    store_close(s);
    uv_run(loop, UV_RUN_DEFAULT); /* runs the handle's close callback */
    CHECK_EQ_INT(uv_loop_close(loop), 0);
}

static void test_open_errors(void)
{
    uv_loop_t loop;
    char err[256] = "";
    store_t *s = (store_t *)1;
    uv_loop_init(&loop);
    CHECK(store_open(&loop, "/nonexistent-dir/x/y.sqlite", &s, err, sizeof err) != STORE_OK);
    CHECK(s == NULL);
    CHECK(err[0] != '\0');
    s = (store_t *)1;
    err[0] = '\0';
    CHECK_EQ_INT(store_open(&loop, "mysql://u:secret@h/db", &s, err, sizeof err), STORE_E_INVALID);
    CHECK(s == NULL);
    CHECK(strstr(err, "scheme") != NULL);
    CHECK(strstr(err, "secret") == NULL);
    store_close(NULL);
    /* Defaults, by plain path and by sqlite: URL. */
    char path[128], url[160];
    snprintf(path, sizeof path, "%s/plain.sqlite", tmpdir);
    CHECK_EQ_INT(store_open(&loop, path, &s, err, sizeof err), STORE_OK);
    if (s) store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    snprintf(url, sizeof url, "sqlite:%s", path);
    CHECK_EQ_INT(store_open(&loop, url, &s, err, sizeof err), STORE_OK);
    if (s)
        finish(&loop, s);
    else
        uv_loop_close(&loop);
}

typedef struct {
    store_req_t req;
    char arena[512];
} wait_req_t;

static int wait_done_count, wait_failed;
static int64_t wait_last_seq;
static store_t *wait_store;
static wait_req_t wait_reqs[3];
static char wait_conv[ID_SIZE];

static void wait_submit(wait_req_t *r);

static void wait_done(store_req_t *req)
{
    if (req->status != STORE_OK)
        wait_failed++;
    else if (req->u.message_insert.msg.seq != wait_last_seq + 1)
        wait_failed++;
    else
        wait_last_seq = req->u.message_insert.msg.seq;
    if (++wait_done_count <= 297) wait_submit((wait_req_t *)req);
}

/* alice's "hi" to wait_conv in r, answered by done. */
static void hi_fill(wait_req_t *r, void (*done)(store_req_t *))
{
    memset(&r->req, 0, sizeof r->req);
    r->req.op = STORE_OP_MESSAGE_INSERT;
    r->req.done = done;
    r->req.arena = (store_arena_t){r->arena, sizeof r->arena, 0, 0};
    r->req.u.message_insert.sender = STR_LIT("alice");
    r->req.u.message_insert.conversation_id = str_make(wait_conv, ID_LEN);
    r->req.u.message_insert.content = STR_LIT("hi");
}

static void wait_submit(wait_req_t *r)
{
    hi_fill(r, wait_done);
    CHECK_EQ_INT(store_submit(wait_store, &r->req), STORE_OK);
}

static int sync_flag;
static void sync_done(store_req_t *r)
{
    (void)r;
    sync_flag = 1;
}

/* --store-commit-wait-us: a small batch while writes keep coming waits for company; every
 * write still completes, in order, and a lone or final write is not held back for good. */
static void test_commit_wait(void)
{
    uv_loop_t loop;
    char err[256] = "", path[160];
    uv_loop_init(&loop);
    snprintf(path, sizeof path, "sqlite:%s/wait.sqlite", tmpdir);
    store_options_t o = {.commit_wait_us = 500};
    CHECK_EQ_INT(store_open_with(&loop, path, &o, &wait_store, err, sizeof err), STORE_OK);
    if (!wait_store) return;
    static char arena[4096];
    store_req_t d = {.op = STORE_OP_DIRECT_OPEN, .done = sync_done};
    d.arena = (store_arena_t){arena, sizeof arena, 0, 0};
    d.u.direct_open.user = STR_LIT("alice");
    d.u.direct_open.other = STR_LIT("bob");
    CHECK_EQ_INT(store_submit(wait_store, &d), STORE_OK);
    while (!sync_flag) uv_run(&loop, UV_RUN_ONCE);
    memcpy(wait_conv, d.u.direct_open.conv.id, ID_SIZE);
    /* Three chains of sends, each sent when the previous one is acknowledged. */
    for (int i = 0; i < 3; i++) wait_submit(&wait_reqs[i]);
    while (wait_done_count < 300) uv_run(&loop, UV_RUN_ONCE);
    CHECK_EQ_INT(wait_failed, 0);
    CHECK_EQ_INT(wait_last_seq, 300);
    store_stats_t st;
    store_stats(wait_store, &st);
    CHECK(st.commits < 300 + 1);
    finish(&loop, wait_store);
}

/* Adaptive batching (store_gather): with a wait far longer than any commit, (1) a write after a
 * quiet spell is not held back (the old rule slept the wait whenever the last commit was recent);
 * (2) writes arriving 1 ms apart, open loop, are gathered into batches of about GATHER_TARGET (8)
 * and none but the last few waits the full wait (the gathering ends at 8); (3) one client sending
 * in sequence (each write waits for the previous commit, so no company can come) backs off instead
 * of paying the wait per write. Bounds are seconds against waits of 3 s / 100 ms per write. */
#define GATHER_N 300
static wait_req_t gather_reqs[GATHER_N];
static int gather_sent, gather_done;
static uint64_t gather_max_ns;
static uint64_t gather_sent_at[GATHER_N];

static void gather_done_cb(store_req_t *req)
{
    wait_req_t *r = (wait_req_t *)req;
    uint64_t lat = uv_hrtime() - gather_sent_at[r - gather_reqs];
    /* The last few of the burst have no company coming: they wait the whole wait. */
    if (r - gather_reqs < GATHER_N - 8 && lat > gather_max_ns) gather_max_ns = lat;
    if (req->status != STORE_OK) wait_failed++;
    gather_done++;
}

static void gather_send(int i)
{
    wait_req_t *r = &gather_reqs[i];
    hi_fill(r, gather_done_cb);
    gather_sent_at[i] = uv_hrtime();
    CHECK_EQ_INT(store_submit(wait_store, &r->req), STORE_OK);
}

static void gather_tick(uv_timer_t *t)
{
    gather_send(gather_sent++);
    if (gather_sent == GATHER_N) uv_timer_stop(t);
}

static store_t *gather_open(uv_loop_t *loop, const char *name, unsigned wait_us)
{
    char err[256] = "", path[160];
    snprintf(path, sizeof path, "sqlite:%s/%s.sqlite", tmpdir, name);
    store_options_t o = {.commit_wait_us = wait_us};
    CHECK_EQ_INT(store_open_with(loop, path, &o, &wait_store, err, sizeof err), STORE_OK);
    if (!wait_store) return NULL;
    static char arena[4096];
    store_req_t d = {.op = STORE_OP_DIRECT_OPEN, .done = sync_done};
    d.arena = (store_arena_t){arena, sizeof arena, 0, 0};
    d.u.direct_open.user = STR_LIT("alice");
    d.u.direct_open.other = STR_LIT("bob");
    sync_flag = 0;
    CHECK_EQ_INT(store_submit(wait_store, &d), STORE_OK);
    while (!sync_flag) uv_run(loop, UV_RUN_ONCE);
    memcpy(wait_conv, d.u.direct_open.conv.id, ID_SIZE);
    gather_sent = gather_done = 0;
    gather_max_ns = 0;
    wait_failed = 0;
    return wait_store;
}

static void test_commit_gather(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    store_t *s = gather_open(&loop, "gather", 3000000);
    if (!s) return;
    /* (1) A write right after another one's commit. */
    gather_send(gather_sent++);
    while (gather_done < 1) uv_run(&loop, UV_RUN_ONCE);
    gather_send(gather_sent++);
    while (gather_done < 2) uv_run(&loop, UV_RUN_ONCE);
    CHECK(gather_max_ns < 1500000000ull);
    /* (2) Open loop, one write per millisecond. */
    store_stats_t st0, st1;
    store_stats(s, &st0);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, gather_tick, 1, 1);
    while (gather_done < GATHER_N) uv_run(&loop, UV_RUN_ONCE);
    store_stats(s, &st1);
    fprintf(stderr, "gather: %d writes 1 ms apart in %llu commits, slowest %.1f ms\n", GATHER_N - 2,
            (unsigned long long)(st1.commits - st0.commits), gather_max_ns / 1e6);
    CHECK_EQ_INT(wait_failed, 0);
    CHECK(st1.commits - st0.commits <= (GATHER_N - 2) / 3);
    CHECK(gather_max_ns < 1500000000ull);
    uv_close((uv_handle_t *)&t, NULL);
    finish(&loop, s);

    /* (3) In sequence, 100 ms wait: 150 writes would take 15 s without the back-off. */
    uv_loop_init(&loop);
    s = gather_open(&loop, "gather-seq", 100000);
    if (!s) return;
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < 150; i++) {
        gather_send(i);
        while (gather_done < i + 1) uv_run(&loop, UV_RUN_ONCE);
    }
    uint64_t el = uv_hrtime() - t0;
    fprintf(stderr, "gather: 150 writes in sequence in %.0f ms\n", el / 1e6);
    CHECK_EQ_INT(wait_failed, 0);
    CHECK(el < 5000000000ull);
    finish(&loop, s);
}

/* The writer gives back its page cache once idle (engine idle hook): 3,000 new users' rows
 * filled SQLite's page cache by several hundred KB, which the old writer kept for good. */
#define IDLE_USERS 3000
static int idle_done;
static void idle_req_done(store_req_t *r)
{
    CHECK_EQ_INT(r->status, STORE_OK);
    idle_done++;
}

static void idle_wait(uv_loop_t *loop, int n)
{
    while (idle_done < n) uv_run(loop, UV_RUN_ONCE);
}

/* A store on a fresh file named name in the test's directory (NULL, checked, on failure). */
static store_t *open_tmp(uv_loop_t *loop, const char *name)
{
    char err[256] = "", path[128];
    store_t *s = NULL;
    uv_loop_init(loop);
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    CHECK_EQ_INT(store_open(loop, path, &s, err, sizeof err), STORE_OK);
    return s;
}

static void test_writer_idle_releases_cache(void)
{
    uv_loop_t loop;
    store_t *s = open_tmp(&loop, "idle.sqlite");
    if (!s) return;
    static store_req_t reqs[IDLE_USERS];
    static char ids[IDLE_USERS][24];
    for (int i = 0; i < IDLE_USERS; i++) {
        snprintf(ids[i], sizeof ids[i], "idle-user-%05d", i);
        reqs[i] = (store_req_t){.op = STORE_OP_USER_UPSERT, .done = idle_req_done};
        reqs[i].u.user_upsert.id = str_cstr(ids[i]);
        reqs[i].u.user_upsert.name = str_cstr(ids[i]);
        CHECK_EQ_INT(store_submit(s, &reqs[i]), STORE_OK);
    }
    idle_wait(&loop, IDLE_USERS);
    sqlite3_int64 busy = sqlite3_memory_used();
    usleep((STORE_IDLE_MS + 1500) * 1000);
    sqlite3_int64 idle = sqlite3_memory_used();
    fprintf(stderr, "sqlite memory: %lld bytes after the writes, %lld idle\n", (long long)busy,
            (long long)idle);
    CHECK(busy - idle > 200 * 1024);
    finish(&loop, s);
}

/* Reads taken by a reader together run in one read transaction (engine read_begin/read_end):
 * after each write completes, every read submitted afterwards sees it, so no reader keeps
 * an older snapshot past its run. Each round renames a user, then asks for it 40 times in one
 * loop turn (runs of several reads on both readers). */
#define RUN_READS 40
static int run_done, run_wrong;
static char run_want[16];
static void run_read_done(store_req_t *r)
{
    const store_users_get_t *g = &r->u.users_get;
    if (r->status != STORE_OK || g->found != 1 || !str_eq_cstr(g->users[0].name, run_want))
        run_wrong++;
    run_done++;
}

static void run_write_done(store_req_t *r)
{
    CHECK_EQ_INT(r->status, STORE_OK);
    run_done++;
}

static void test_read_runs_see_writes(void)
{
    uv_loop_t loop;
    store_t *s = open_tmp(&loop, "runs.sqlite");
    if (!s) return;
    static store_req_t reads[RUN_READS];
    static char arenas[RUN_READS][512];
    static const str_t ids[1] = {STR_LIT("runner")};
    for (int round = 0; round < 20; round++) {
        snprintf(run_want, sizeof run_want, "name-%d", round);
        store_req_t w = {.op = STORE_OP_USER_UPSERT, .done = run_write_done};
        w.u.user_upsert.id = ids[0];
        w.u.user_upsert.name = str_cstr(run_want);
        run_done = 0;
        CHECK_EQ_INT(store_submit(s, &w), STORE_OK);
        while (run_done < 1) uv_run(&loop, UV_RUN_ONCE);
        run_done = 0;
        for (int i = 0; i < RUN_READS; i++) {
            reads[i] = (store_req_t){.op = STORE_OP_USERS_GET, .done = run_read_done};
            reads[i].arena = (store_arena_t){arenas[i], sizeof arenas[i], 0, 0};
            reads[i].u.users_get.ids = ids;
            reads[i].u.users_get.count = 1;
            CHECK_EQ_INT(store_submit(s, &reads[i]), STORE_OK);
        }
        while (run_done < RUN_READS) uv_run(&loop, UV_RUN_ONCE);
    }
    CHECK_EQ_INT(run_wrong, 0);
    finish(&loop, s);
}

int main(void)
{
    /* Memory statistics on, for test_writer_idle_releases_cache (the store turns them off
     * only if it initializes SQLite first). */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1);
    sqlite3_initialize();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/parlor_storet_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_open_errors);
    RUN(test_commit_wait);
    RUN(test_commit_gather);
    RUN(test_writer_idle_releases_cache);
    RUN(test_read_runs_see_writes);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return UNIT_DONE();
}
