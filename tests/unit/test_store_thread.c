/* Tests for the asynchronous store: group commit, ordering, completions on the loop thread,
 * failures isolated within a batch, draining on close, durability across kill -9. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "store/store_sqlite.h"
#include "store/store_thread.h"
#include "unit.h"

#define container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

static char tmpdir[64];
static int db_counter;
static uv_thread_t loop_thread;

typedef struct {
    store_req_t req;
    int index;
    char arena[512];
} test_req_t;

static void make_path(char *out, size_t cap)
{
    snprintf(out, cap, "%s/db%d.sqlite", tmpdir, db_counter++);
}

static void req_init(test_req_t *t, store_op_t op, void (*done)(store_req_t *))
{
    memset(&t->req, 0, sizeof t->req);
    t->req.op = op;
    t->req.done = done;
    t->req.arena = (store_arena_t){t->arena, sizeof t->arena, 0, 0};
}

static store_t *open_store(uv_loop_t *loop, char *path, size_t cap, unsigned batch)
{
    char err[256] = "";
    store_t *s = NULL;
    store_options_t opts = {.batch_max = batch, .readers = 2};
    make_path(path, cap);
    int rc = store_open_with(loop, path, &opts, &s, err, sizeof err);
    CHECK_EQ_INT(rc, STORE_OK);
    if (rc != STORE_OK) fprintf(stderr, "store_open: %s\n", err);
    return s;
}

/* Runs one request to completion and returns its status. */
static int one_done_count;
static void one_done(store_req_t *r)
{
    (void)r;
    one_done_count++;
}

static int run_one(uv_loop_t *loop, store_t *s, test_req_t *t)
{
    one_done_count = 0;
    t->req.done = one_done;
    CHECK_EQ_INT(store_submit(s, &t->req), STORE_OK);
    uv_run(loop, UV_RUN_DEFAULT); /* returns once nothing is in flight */
    CHECK_EQ_INT(one_done_count, 1);
    return t->req.status;
}

static void open_direct(uv_loop_t *loop, store_t *s, char conv[ID_SIZE])
{
    static char big[8192];
    test_req_t t;
    req_init(&t, STORE_OP_DIRECT_OPEN, one_done);
    t.req.arena = (store_arena_t){big, sizeof big, 0, 0};
    t.req.u.direct_open.user = STR_LIT("alice");
    t.req.u.direct_open.other = STR_LIT("bob");
    CHECK_EQ_INT(run_one(loop, s, &t), STORE_OK);
    memcpy(conv, t.req.u.direct_open.conv.id, ID_SIZE);
}

/* A fresh loop and store with alice and bob's direct conversation in conv; NULL on failure. */
static store_t *open_with_direct(uv_loop_t *loop, char *path, size_t cap, unsigned batch,
                                 char conv[ID_SIZE])
{
    uv_loop_init(loop);
    store_t *s = open_store(loop, path, cap, batch);
    if (s) open_direct(loop, s, conv);
    return s;
}

static void finish(uv_loop_t *loop, store_t *s)
{
    store_close(s);
    uv_run(loop, UV_RUN_DEFAULT); /* runs the handle's close callback */
    CHECK_EQ_INT(uv_loop_close(loop), 0);
}

/* ---- 10,000 inserts: order, group commit, loop thread, persistence --------------------- */

#define N_INSERTS 10000

static struct {
    test_req_t *reqs;
    store_t *store;
    char conv[ID_SIZE];
    int done;
    int in_order;
    int off_loop;
    int failed;
    int64_t last_seq;
} bulk;

static void bulk_done(store_req_t *r)
{
    test_req_t *t = container_of(r, test_req_t, req);
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &loop_thread)) bulk.off_loop++;
    if (r->status != STORE_OK) bulk.failed++;
    /* Completions arrive in submission order, and seq follows it. */
    if (t->index == bulk.done && r->u.message_insert.msg.seq == bulk.last_seq + 1) bulk.in_order++;
    bulk.last_seq = r->u.message_insert.msg.seq;
    bulk.done++;
}

static void bulk_submit(uv_timer_t *timer)
{
    for (int i = 0; i < N_INSERTS; i++) {
        test_req_t *t = &bulk.reqs[i];
        req_init(t, STORE_OP_MESSAGE_INSERT, bulk_done);
        t->index = i;
        t->req.u.message_insert.sender = i % 2 ? STR_LIT("alice") : STR_LIT("bob");
        t->req.u.message_insert.conversation_id = str_make(bulk.conv, ID_LEN);
        t->req.u.message_insert.content = STR_LIT("bulk message");
        if (store_submit(bulk.store, &t->req) != STORE_OK) bulk.failed++;
    }
    uv_close((uv_handle_t *)timer, NULL);
}

static void test_group_commit_order(void)
{
    uv_loop_t loop;
    char path[128], err[256];
    uv_timer_t timer;
    uv_loop_init(&loop);
    memset(&bulk, 0, sizeof bulk);
    bulk.reqs = calloc(N_INSERTS, sizeof *bulk.reqs);
    bulk.store = open_store(&loop, path, sizeof path, 0);
    if (!bulk.store || !bulk.reqs) return;
    open_direct(&loop, bulk.store, bulk.conv);

    store_stats_t before, after;
    store_stats(bulk.store, &before);
    uv_timer_init(&loop, &timer);
    uv_timer_start(&timer, bulk_submit, 0, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    store_stats(bulk.store, &after);

    CHECK_EQ_INT(bulk.done, N_INSERTS);
    CHECK_EQ_INT(bulk.failed, 0);
    CHECK_EQ_INT(bulk.off_loop, 0);
    CHECK_EQ_INT(bulk.in_order, N_INSERTS);
    CHECK_EQ_INT(bulk.last_seq, N_INSERTS);
    uint64_t commits = after.commits - before.commits;
    CHECK_EQ_INT(after.writes - before.writes, N_INSERTS);
    CHECK(commits < N_INSERTS / 4);
    CHECK(after.max_batch > 1);
    CHECK(after.max_batch <= STORE_BATCH_DEFAULT);
    CHECK_EQ_INT(after.failed_commits, 0);
    fprintf(stderr, "  %d inserts in %llu commits, largest batch %llu\n", N_INSERTS,
            (unsigned long long)commits, (unsigned long long)after.max_batch);
    finish(&loop, bulk.store);

    /* Every acknowledged message is in the reopened database, each once, in order. */
    store_sqlite_t *db = NULL;
    CHECK_EQ_INT(store_sqlite_open(path, 0, &db, err, sizeof err), STORE_OK);
    if (!db) return;
    static char arena_buf[1 << 16];
    int64_t after_seq = 0, found = 0, bad = 0;
    for (;;) {
        store_arena_t a = {arena_buf, sizeof arena_buf, 0, 0};
        store_messages_after_t op = {.conversation_id = str_make(bulk.conv, ID_LEN),
                                     .after_seq = after_seq,
                                     .limit = STORE_PAGE_MAX};
        if (store_sqlite_messages_after(db, &op, &a) != STORE_OK || op.count == 0) break;
        for (size_t i = 0; i < op.count; i++) {
            const store_message_t *m = &op.msgs[i];
            const test_req_t *t = &bulk.reqs[m->seq - 1];
            if (m->seq != after_seq + 1 + (int64_t)i ||
                strcmp(m->id, t->req.u.message_insert.msg.id) != 0)
                bad++;
            found++;
        }
        after_seq = op.msgs[op.count - 1].seq;
    }
    CHECK_EQ_INT(found, N_INSERTS);
    CHECK_EQ_INT(bad, 0);
    store_sqlite_close(db);
    free(bulk.reqs);
}

/* ---- A refused request does not fail its batch ----------------------------------------- */

static int batch_done_count;
static void batch_done(store_req_t *r)
{
    (void)r;
    batch_done_count++;
}

static void test_batch_isolation(void)
{
    uv_loop_t loop;
    char path[128], conv[ID_SIZE];
    store_t *s = open_with_direct(&loop, path, sizeof path, 0, conv);
    if (!s) return;
    test_req_t acct;
    req_init(&acct, STORE_OP_ACCOUNT_CREATE, batch_done);
    acct.req.u.account_create =
        (store_account_create_t){.username = STR_LIT("zed"), .password_hash = STR_LIT("h")};
    CHECK_EQ_INT(run_one(&loop, s, &acct), STORE_OK);

    store_stats_t before, after;
    store_stats(s, &before);
    store_writer_pause(s, true);
    test_req_t r[5];
    const char *senders[] = {"alice", "mallory", "bob", "alice", "bob"};
    for (int i = 0; i < 5; i++) {
        req_init(&r[i], STORE_OP_MESSAGE_INSERT, batch_done);
        r[i].req.u.message_insert.sender = str_cstr(senders[i]);
        r[i].req.u.message_insert.conversation_id = str_make(conv, ID_LEN);
        r[i].req.u.message_insert.content = STR_LIT("in a batch");
    }
    /* Index 3 is a duplicate username: CONFLICT, also isolated. */
    req_init(&r[3], STORE_OP_ACCOUNT_CREATE, batch_done);
    r[3].req.u.account_create =
        (store_account_create_t){.username = STR_LIT("ZED"), .password_hash = STR_LIT("h")};
    batch_done_count = 0;
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(store_submit(s, &r[i].req), STORE_OK);
    /* Reads are not held up by a paused writer. */
    test_req_t rd;
    req_init(&rd, STORE_OP_ACCOUNT_GET, batch_done);
    rd.req.u.account_get.username = STR_LIT("zed");
    CHECK_EQ_INT(store_submit(s, &rd.req), STORE_OK);
    while (batch_done_count == 0) uv_run(&loop, UV_RUN_ONCE);
    CHECK_EQ_INT(batch_done_count, 1);
    CHECK_EQ_INT(rd.req.status, STORE_OK);
    store_writer_pause(s, false);
    uv_run(&loop, UV_RUN_DEFAULT);
    store_stats(s, &after);
    CHECK_EQ_INT(batch_done_count, 6);
    CHECK_EQ_INT(after.commits - before.commits, 1);
    CHECK(after.max_batch >= 5);
    CHECK_EQ_INT(r[0].req.status, STORE_OK);
    CHECK_EQ_INT(r[1].req.status, STORE_E_FORBIDDEN);
    CHECK_EQ_INT(r[2].req.status, STORE_OK);
    CHECK_EQ_INT(r[3].req.status, STORE_E_CONFLICT);
    CHECK_EQ_INT(r[4].req.status, STORE_OK);
    CHECK_EQ_INT(r[0].req.u.message_insert.msg.seq, 1);
    CHECK_EQ_INT(r[2].req.u.message_insert.msg.seq, 2);
    CHECK_EQ_INT(r[4].req.u.message_insert.msg.seq, 3);

    /* Submission errors: nothing queued, done never called. */
    test_req_t bad;
    req_init(&bad, STORE_OP_USER_UPSERT, NULL);
    CHECK_EQ_INT(store_submit(s, &bad.req), STORE_E_INVALID);
    req_init(&bad, STORE_OP_COUNT_, batch_done);
    CHECK_EQ_INT(store_submit(s, &bad.req), STORE_E_INVALID);
    CHECK_EQ_INT(store_submit(NULL, &bad.req), STORE_E_INVALID);
    CHECK_EQ_INT(store_submit(s, NULL), STORE_E_INVALID);
    finish(&loop, s);
}

/* ---- Reads run beside writes, on their own connections ---------------------------------- */

static struct {
    int writes_done, reads_done, reads_ok, off_loop;
} mix;

static void mix_write_done(store_req_t *r)
{
    (void)r;
    mix.writes_done++;
}

static void mix_read_done(store_req_t *r)
{
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &loop_thread)) mix.off_loop++;
    mix.reads_done++;
    /* A read sees a committed prefix: seqs 1..count with no gap. */
    const store_messages_page_t *p = &r->u.messages_page;
    bool ok = r->status == STORE_OK;
    for (size_t i = 1; ok && i < p->count; i++) ok = p->msgs[i].seq == p->msgs[i - 1].seq + 1;
    mix.reads_ok += ok;
}

static void test_reads_beside_writes(void)
{
    uv_loop_t loop;
    char path[128], conv[ID_SIZE];
    store_t *s = open_with_direct(&loop, path, sizeof path, 16, conv);
    if (!s) return;
    enum { W = 2000, R = 200 };
    test_req_t *w = calloc(W, sizeof *w);
    test_req_t *rd = calloc(R, sizeof *rd);
    static char read_arenas[R][4096];
    memset(&mix, 0, sizeof mix);
    for (int i = 0, j = 0; i < W; i++) {
        req_init(&w[i], STORE_OP_MESSAGE_INSERT, mix_write_done);
        w[i].req.u.message_insert.sender = STR_LIT("alice");
        w[i].req.u.message_insert.conversation_id = str_make(conv, ID_LEN);
        w[i].req.u.message_insert.content = STR_LIT("w");
        CHECK_EQ_INT(store_submit(s, &w[i].req), STORE_OK);
        if (i % (W / R) == 0 && j < R) {
            req_init(&rd[j], STORE_OP_MESSAGES_AFTER, mix_read_done);
            rd[j].req.op = STORE_OP_MESSAGES_PAGE;
            rd[j].req.arena = (store_arena_t){read_arenas[j], sizeof read_arenas[j], 0, 0};
            rd[j].req.u.messages_page.conversation_id = str_make(conv, ID_LEN);
            rd[j].req.u.messages_page.requester = STR_LIT("bob");
            rd[j].req.u.messages_page.limit = 10;
            CHECK_EQ_INT(store_submit(s, &rd[j].req), STORE_OK);
            j++;
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(mix.writes_done, W);
    CHECK_EQ_INT(mix.reads_done, R);
    CHECK_EQ_INT(mix.reads_ok, R);
    CHECK_EQ_INT(mix.off_loop, 0);
    store_stats_t st;
    store_stats(s, &st);
    CHECK(st.max_batch <= 16);
    CHECK(st.reads >= R);
    finish(&loop, s);
    free(w);
    free(rd);
}

/* ---- Close: queued work is carried out and delivered before store_close returns ---------- */

static struct {
    store_t *store;
    int done, ok, resubmit_rc;
    test_req_t extra;
} drain;

static void drain_done(store_req_t *r)
{
    drain.done++;
    drain.ok += r->status == STORE_OK;
    if (drain.done == 1) {
        /* Submitting while the store closes is refused, not queued. */
        req_init(&drain.extra, STORE_OP_USER_SEEN, drain_done);
        drain.extra.req.u.user_seen = (store_user_seen_t){STR_LIT("alice"), 1};
        drain.resubmit_rc = store_submit(drain.store, &drain.extra.req);
    }
}

static void test_close_drains(void)
{
    uv_loop_t loop;
    char path[128], conv[ID_SIZE], err[256];
    store_t *s = open_with_direct(&loop, path, sizeof path, 0, conv);
    if (!s) return;
    enum { N = 300 };
    static test_req_t r[N];
    memset(&drain, 0, sizeof drain);
    drain.store = s;
    store_writer_pause(s, true);
    for (int i = 0; i < N; i++) {
        req_init(&r[i], i % 10 ? STORE_OP_MESSAGE_INSERT : STORE_OP_MESSAGES_PAGE, drain_done);
        if (i % 10) {
            r[i].req.u.message_insert.sender = STR_LIT("bob");
            r[i].req.u.message_insert.conversation_id = str_make(conv, ID_LEN);
            r[i].req.u.message_insert.content = STR_LIT("before close");
        } else {
            r[i].req.u.messages_page.conversation_id = str_make(conv, ID_LEN);
            r[i].req.u.messages_page.limit = 1;
        }
        CHECK_EQ_INT(store_submit(s, &r[i].req), STORE_OK);
    }
    store_close(s); /* loop not run: every done() must have happened inside */
    CHECK_EQ_INT(drain.done, N);
    CHECK_EQ_INT(drain.ok, N);
    CHECK_EQ_INT(drain.resubmit_rc, STORE_E_CANCELLED);
    store_close(s); /* a second close before the handle is gone is harmless */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);

    store_sqlite_t *db = NULL;
    CHECK_EQ_INT(store_sqlite_open(path, 0, &db, err, sizeof err), STORE_OK);
    if (!db) return;
    static char buf[4096];
    store_arena_t a = {buf, sizeof buf, 0, 0};
    store_conversation_get_t cg = {.id = str_make(conv, ID_LEN)};
    CHECK_EQ_INT(store_sqlite_conversation_get(db, &cg, &a), STORE_OK);
    CHECK_EQ_INT(cg.conv.last_seq, N - N / 10);
    store_sqlite_close(db);
}

/* ---- Lazy writes: they wait for company, never change the writer's order --------------- */

static struct {
    int order[8];
    int n;
} lazy_log;

static void lazy_done(store_req_t *r)
{
    test_req_t *t = container_of(r, test_req_t, req);
    CHECK_EQ_INT(r->status, STORE_OK);
    if (lazy_log.n < 8) lazy_log.order[lazy_log.n++] = t->index;
}

static void lazy_upsert(test_req_t *t, int index, const char *user)
{
    req_init(t, STORE_OP_USER_UPSERT, lazy_done);
    t->index = index;
    t->req.lazy = true;
    t->req.u.user_upsert.id = str_cstr(user);
    t->req.u.user_upsert.name = str_cstr(user);
}

static void test_lazy_writes(void)
{
    uv_loop_t loop;
    char path[128], conv[ID_SIZE];
    store_t *s = open_with_direct(&loop, path, sizeof path, 0, conv);
    if (!s) return;
    store_stats_t st0, st1;
    test_req_t a, b, c, d;

    /* Alone, a lazy write waits about STORE_LAZY_MS, then commits. */
    memset(&lazy_log, 0, sizeof lazy_log);
    store_stats(s, &st0);
    uint64_t t0 = uv_hrtime();
    lazy_upsert(&a, 1, "carol");
    CHECK_EQ_INT(store_submit(s, &a.req), STORE_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    uint64_t waited_ms = (uv_hrtime() - t0) / 1000000;
    CHECK(waited_ms >= STORE_LAZY_MS / 2);
    store_stats(s, &st1);
    CHECK_EQ_INT(lazy_log.n, 1);
    CHECK_EQ_INT(st1.commits - st0.commits, 1);

    /* Two lazy writes, then an ordinary write: all three in one commit, in submission order;
     * the ordinary write does not wait for the timer. */
    memset(&lazy_log, 0, sizeof lazy_log);
    store_stats(s, &st0);
    lazy_upsert(&a, 1, "dave");
    lazy_upsert(&b, 2, "erin");
    req_init(&c, STORE_OP_MESSAGE_INSERT, lazy_done);
    c.index = 3;
    c.req.u.message_insert.sender = STR_LIT("alice");
    c.req.u.message_insert.conversation_id = str_make(conv, ID_LEN);
    c.req.u.message_insert.content = STR_LIT("after the lazy ones");
    CHECK_EQ_INT(store_submit(s, &a.req), STORE_OK);
    CHECK_EQ_INT(store_submit(s, &b.req), STORE_OK);
    CHECK_EQ_INT(store_submit(s, &c.req), STORE_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    store_stats(s, &st1);
    CHECK_EQ_INT(lazy_log.n, 3);
    CHECK(lazy_log.order[0] == 1 && lazy_log.order[1] == 2 && lazy_log.order[2] == 3);
    CHECK_EQ_INT(st1.commits - st0.commits, 1);

    /* A read is never held back by the lazy flag, and an ordered read sees the lazy write
     * submitted before it. */
    memset(&lazy_log, 0, sizeof lazy_log);
    lazy_upsert(&a, 1, "frank");
    req_init(&d, STORE_OP_USERS_GET, lazy_done);
    d.index = 2;
    d.req.ordered = true;
    d.req.lazy = true; /* meaningless on a read */
    str_t ids[] = {STR_LIT("frank")};
    d.req.u.users_get.ids = ids;
    d.req.u.users_get.count = 1;
    CHECK_EQ_INT(store_submit(s, &a.req), STORE_OK);
    CHECK_EQ_INT(store_submit(s, &d.req), STORE_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(lazy_log.n, 2);
    CHECK(lazy_log.order[0] == 1 && lazy_log.order[1] == 2);
    CHECK_EQ_INT(d.req.u.users_get.found, 1);

    /* Closing commits what is still waiting. */
    memset(&lazy_log, 0, sizeof lazy_log);
    lazy_upsert(&a, 1, "grace");
    CHECK_EQ_INT(store_submit(s, &a.req), STORE_OK);
    store_close(s);
    CHECK_EQ_INT(lazy_log.n, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);

    char err[256];
    store_sqlite_t *db = NULL;
    CHECK_EQ_INT(store_sqlite_open(path, 0, &db, err, sizeof err), STORE_OK);
    if (!db) return;
    static char buf[4096];
    store_arena_t ar = {buf, sizeof buf, 0, 0};
    str_t all[] = {STR_LIT("carol"), STR_LIT("dave"), STR_LIT("erin"), STR_LIT("frank"),
                   STR_LIT("grace")};
    store_users_get_t ug = {.ids = all, .count = 5};
    CHECK_EQ_INT(store_sqlite_users_get(db, &ug, &ar), STORE_OK);
    CHECK_EQ_INT(ug.found, 5);
    store_sqlite_close(db);
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
    store_close(NULL);
    /* Defaults. */
    char path[128];
    make_path(path, sizeof path);
    CHECK_EQ_INT(store_open(&loop, path, &s, err, sizeof err), STORE_OK);
    if (s)
        finish(&loop, s);
    else
        uv_loop_close(&loop);
}

/* ---- kill -9: every acknowledged message survives ---------------------------------------- */

static struct {
    store_t *store;
    int fd;
    char conv[ID_SIZE];
    test_req_t reqs[64];
    char content[64][32]; /* each message says which it is: "must survive <k>" */
    int64_t next_k;
    int n;
} child;

/* What the child tells the parent for each ack: the seq it got and the message it was. */
typedef struct {
    int64_t seq, k;
} ack_rec_t;

static void child_submit(test_req_t *t);

static void child_done(store_req_t *r)
{
    test_req_t *t = container_of(r, test_req_t, req);
    if (r->status != STORE_OK) _exit(3);
    /* The ack: only now may anyone learn that the message exists. */
    ack_rec_t rec = {r->u.message_insert.msg.seq, t->index};
    if (write(child.fd, &rec, sizeof rec) != sizeof rec) _exit(4);
    child_submit(t);
}

static void child_submit(test_req_t *t)
{
    int slot = (int)(t - child.reqs);
    req_init(t, STORE_OP_MESSAGE_INSERT, child_done);
    t->index = (int)child.next_k++;
    int len =
        snprintf(child.content[slot], sizeof child.content[slot], "must survive %d", t->index);
    t->req.u.message_insert.sender = STR_LIT("alice");
    t->req.u.message_insert.conversation_id = str_make(child.conv, ID_LEN);
    t->req.u.message_insert.content = str_make(child.content[slot], (size_t)len);
    if (store_submit(child.store, &t->req) != STORE_OK) _exit(5);
}

static void test_kill9_durability(void)
{
    char path[128], err[256];
    int fds[2];
    make_path(path, sizeof path);
    CHECK(pipe(fds) == 0);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        uv_loop_t loop;
        close(fds[0]);
        uv_loop_init(&loop);
        loop_thread = uv_thread_self();
        child.fd = fds[1];
        if (store_open(&loop, path, &child.store, err, sizeof err) != STORE_OK) _exit(2);
        test_req_t t;
        req_init(&t, STORE_OP_DIRECT_OPEN, one_done);
        static char big[4096];
        t.req.arena = (store_arena_t){big, sizeof big, 0, 0};
        t.req.u.direct_open.user = STR_LIT("alice");
        t.req.u.direct_open.other = STR_LIT("bob");
        store_submit(child.store, &t.req);
        uv_run(&loop, UV_RUN_DEFAULT);
        if (t.req.status != STORE_OK) _exit(6);
        memcpy(child.conv, t.req.u.direct_open.conv.id, ID_SIZE);
        for (int i = 0; i < 64; i++) child_submit(&child.reqs[i]);
        uv_run(&loop, UV_RUN_DEFAULT); /* until killed */
        _exit(7);
    }
    close(fds[1]);
    CHECK(pid > 0);
    if (pid <= 0) return;
    /* acked_k[seq] = which message the ack for seq said it was (-1: no ack seen). Writes of
     * one record are atomic on a pipe, so reads of one record get whole records. */
    enum { MAX_SEQ = 8192 };
    static int64_t acked_k[MAX_SEQ];
    for (int i = 0; i < MAX_SEQ; i++) acked_k[i] = -1;
    ack_rec_t rec;
    int64_t max_acked = 0, acks = 0;
    bool killed = false;
    for (;;) {
        if (!killed && acks >= 3000) {
            kill(pid, SIGKILL);
            killed = true;
        }
        /* After the kill: acks that were already in the pipe count too. */
        if (read(fds[0], &rec, sizeof rec) != sizeof rec) break;
        CHECK(rec.seq >= 1 && rec.seq < MAX_SEQ);
        if (rec.seq < 1 || rec.seq >= MAX_SEQ) break;
        CHECK(acked_k[rec.seq] == -1); /* one ack per seq */
        acked_k[rec.seq] = rec.k;
        if (rec.seq > max_acked) max_acked = rec.seq;
        acks++;
    }
    if (!killed) kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    close(fds[0]);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(acks >= 3000);

    store_sqlite_t *db = NULL;
    CHECK_EQ_INT(store_sqlite_open(path, 0, &db, err, sizeof err), STORE_OK);
    if (!db) return;
    static char buf[1 << 16];
    store_arena_t a = {buf, sizeof buf, 0, 0};
    store_conversations_list_t l = {.user = STR_LIT("alice"), .limit = 1};
    CHECK_EQ_INT(store_sqlite_conversations_list(db, &l, &a), STORE_OK);
    CHECK_EQ_INT(l.count, 1);
    if (l.count == 1) {
        int64_t last = l.convs[0].last_seq;
        CHECK(last >= max_acked);
        /* No gap anywhere below the last acknowledged seq. */
        char conv[ID_SIZE];
        memcpy(conv, l.convs[0].id, ID_SIZE);
        int64_t after = 0, n = 0, checked = 0;
        for (;;) {
            store_arena_t pa = {buf, sizeof buf, 0, 0};
            store_messages_after_t op = {.conversation_id = str_make(conv, ID_LEN),
                                         .after_seq = after,
                                         .limit = STORE_PAGE_MAX};
            if (store_sqlite_messages_after(db, &op, &pa) != STORE_OK || op.count == 0) break;
            for (size_t i = 0; i < op.count; i++) {
                const store_message_t *m = &op.msgs[i];
                n += m->seq == after + 1 + (int64_t)i;
                /* Every acknowledged message is stored under the seq its ack gave, with its own
                 * content (not another message's), and no message is stored twice. */
                if (m->seq < MAX_SEQ && acked_k[m->seq] >= 0) {
                    char want[32];
                    int len = snprintf(want, sizeof want, "must survive %lld",
                                       (long long)acked_k[m->seq]);
                    CHECK(str_eq(m->content, str_make(want, (size_t)len)));
                    acked_k[m->seq] = -2; /* found */
                    checked++;
                }
            }
            after = op.msgs[op.count - 1].seq;
        }
        CHECK_EQ_INT(n, last);
        CHECK_EQ_INT(checked, acks);
        fprintf(stderr, "  killed after %lld acks; %lld acknowledged, %lld stored\n",
                (long long)acks, (long long)max_acked, (long long)last);
    }
    store_sqlite_close(db);
}

static void cleanup_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/parlor_storet_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    loop_thread = uv_thread_self();
    RUN(test_group_commit_order);
    RUN(test_batch_isolation);
    RUN(test_reads_beside_writes);
    RUN(test_close_drains);
    RUN(test_lazy_writes);
    RUN(test_open_errors);
    RUN(test_kill9_durability);
    cleanup_tmpdir();
    return UNIT_DONE();
}
