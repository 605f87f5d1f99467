/* Conformance cases for the asynchronous store: completions on the loop thread in submission
 * order, group commit (a refused request undone alone), reads beside writes, lazy writes,
 * close carrying out queued work, and durability across kill -9 (store_conformance.h).
 * store_thread.c runs every engine, so its batches and counters are checked for every one. */
#include "store_conformance.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    store_req_t req;
    int index;
    char arena[512];
} test_req_t;

static void req_init(test_req_t *r, store_op_t op, void (*done)(store_req_t *))
{
    memset(&r->req, 0, sizeof r->req);
    r->req.op = op;
    r->req.done = done;
    r->req.arena = (store_arena_t){r->arena, sizeof r->arena, 0, 0};
}

static bool on_loop_thread(void)
{
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &sc_loop_thread);
}

/* ---- 10,000 inserts: order, group commit, loop thread, persistence --------------------- */

#define N_INSERTS 10000

static struct {
    test_req_t *reqs;
    int done, in_order, off_loop, failed;
    int64_t last_seq;
} bulk;

static void bulk_done(store_req_t *r)
{
    test_req_t *tr = container_of(r, test_req_t, req);
    if (!on_loop_thread()) bulk.off_loop++;
    if (r->status != STORE_OK) bulk.failed++;
    /* Completions arrive in submission order, and seq follows it. */
    if (tr->index == bulk.done && r->u.message_insert.msg.seq == bulk.last_seq + 1) bulk.in_order++;
    bulk.last_seq = r->u.message_insert.msg.seq;
    bulk.done++;
}

static void test_group_commit_order(sc_t *t)
{
    char conv[ID_SIZE];
    memset(&bulk, 0, sizeof bulk);
    bulk.reqs = calloc(N_INSERTS, sizeof *bulk.reqs);
    if (!bulk.reqs) return;
    sc_direct(t, "alice", "bob", conv);

    store_stats_t before, after;
    store_stats(t->s, &before);
    for (int i = 0; i < N_INSERTS; i++) {
        test_req_t *r = &bulk.reqs[i];
        req_init(r, STORE_OP_MESSAGE_INSERT, bulk_done);
        r->index = i;
        r->req.u.message_insert.sender = i % 2 ? STR_LIT("alice") : STR_LIT("bob");
        r->req.u.message_insert.conversation_id = str_make(conv, ID_LEN);
        r->req.u.message_insert.content = STR_LIT("bulk message");
        if (store_submit(t->s, &r->req) != STORE_OK) bulk.failed++;
    }
    uv_run(t->loop, UV_RUN_DEFAULT);
    store_stats(t->s, &after);

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

    /* Every acknowledged message is there after the store is closed and opened again, each
     * once, in order. */
    sc_close(t, t->s);
    t->s = sc_open(t, NULL);
    int64_t after_seq = 0, found = 0, bad = 0;
    while (t->s) {
        store_arena_t a = sc_arena();
        store_messages_after_t op = {.conversation_id = str_make(conv, ID_LEN),
                                     .after_seq = after_seq,
                                     .limit = STORE_PAGE_MAX};
        if (sc_messages_after(t, &op, &a) != STORE_OK || op.count == 0) break;
        for (size_t i = 0; i < op.count; i++) {
            const store_message_t *m = &op.msgs[i];
            if (m->seq < 1 || m->seq > N_INSERTS) {
                bad++;
                continue;
            }
            const test_req_t *r = &bulk.reqs[m->seq - 1];
            if (m->seq != after_seq + 1 + (int64_t)i ||
                strcmp(m->id, r->req.u.message_insert.msg.id) != 0)
                bad++;
            found++;
        }
        after_seq = op.msgs[op.count - 1].seq;
    }
    CHECK_EQ_INT(found, N_INSERTS);
    CHECK_EQ_INT(bad, 0);
    free(bulk.reqs);
}

/* ---- A refused request does not fail its batch (guarantee 1) ----------------------------- */

static int batch_done_count;
static void batch_done(store_req_t *r)
{
    (void)r;
    batch_done_count++;
}

static void test_batch_isolation(sc_t *t)
{
    char conv[ID_SIZE];
    sc_direct(t, "alice", "bob", conv);
    test_req_t acct;
    req_init(&acct, STORE_OP_ACCOUNT_CREATE, NULL);
    acct.req.u.account_create =
        (store_account_create_t){.username = STR_LIT("zed"), .password_hash = STR_LIT("h")};
    CHECK_EQ_INT(sc_run(t, t->s, &acct.req), STORE_OK);

    store_stats_t before, after;
    store_stats(t->s, &before);
    store_writer_pause(t->s, true);
    test_req_t r[6];
    const char *senders[] = {"alice", "mallory", "bob", "alice", "bob", "alice"};
    for (int i = 0; i < 6; i++) {
        req_init(&r[i], STORE_OP_MESSAGE_INSERT, batch_done);
        r[i].req.u.message_insert.sender = str_cstr(senders[i]);
        r[i].req.u.message_insert.conversation_id = str_make(conv, ID_LEN);
        r[i].req.u.message_insert.content = STR_LIT("in a batch");
    }
    /* Index 3 is a duplicate username: CONFLICT, also isolated. */
    req_init(&r[3], STORE_OP_ACCOUNT_CREATE, batch_done);
    r[3].req.u.account_create =
        (store_account_create_t){.username = STR_LIT("ZED"), .password_hash = STR_LIT("h")};
    /* Index 5 opens a conversation with carol, then fails on the file it does not own: all of
     * it is undone, the conversation too. */
    r[5].req.u.message_insert.conversation_id = STR_NULL;
    r[5].req.u.message_insert.recipient = STR_LIT("carol");
    r[5].req.u.message_insert.file_id = STR_LIT("65a0000000000000000000f9");
    batch_done_count = 0;
    for (int i = 0; i < 6; i++) CHECK_EQ_INT(store_submit(t->s, &r[i].req), STORE_OK);
    /* With reader connections, reads are not held up by a paused writer. */
    test_req_t rd;
    req_init(&rd, STORE_OP_ACCOUNT_GET, batch_done);
    rd.req.u.account_get.username = STR_LIT("zed");
    CHECK_EQ_INT(store_submit(t->s, &rd.req), STORE_OK);
    if (t->caps & STORE_ENGINE_READERS) {
        while (batch_done_count == 0) uv_run(t->loop, UV_RUN_ONCE);
        CHECK_EQ_INT(batch_done_count, 1);
        CHECK_EQ_INT(rd.req.status, STORE_OK);
    }
    store_writer_pause(t->s, false);
    uv_run(t->loop, UV_RUN_DEFAULT);
    store_stats(t->s, &after);
    CHECK_EQ_INT(batch_done_count, 7);
    CHECK_EQ_INT(rd.req.status, STORE_OK);
    /* One transaction for the six writes (and the read, without reader connections). */
    CHECK_EQ_INT(after.commits - before.commits, 1);
    CHECK(after.max_batch >= 6);
    CHECK_EQ_INT(r[0].req.status, STORE_OK);
    CHECK_EQ_INT(r[1].req.status, STORE_E_FORBIDDEN);
    CHECK_EQ_INT(r[2].req.status, STORE_OK);
    CHECK_EQ_INT(r[3].req.status, STORE_E_CONFLICT);
    CHECK_EQ_INT(r[4].req.status, STORE_OK);
    CHECK_EQ_INT(r[5].req.status, STORE_E_FORBIDDEN);
    CHECK_EQ_INT(r[0].req.u.message_insert.msg.seq, 1);
    CHECK_EQ_INT(r[2].req.u.message_insert.msg.seq, 2);
    CHECK_EQ_INT(r[4].req.u.message_insert.msg.seq, 3);
    CHECK_EQ_INT(sc_last_seq(t, conv, NULL), 3);
    store_arena_t ar = sc_arena();
    store_direct_open_t d = {.user = STR_LIT("alice"), .other = STR_LIT("carol")};
    CHECK_EQ_INT(sc_direct_open(t, &d, &ar, 1), STORE_OK);
    CHECK(d.created);
    store_account_get_t ag = {.username = STR_LIT("zed")};
    CHECK_EQ_INT(sc_account_get(t, &ag, &ar), STORE_OK);
    CHECK_MEM(ag.user.id.ptr, ag.user.id.len, acct.req.u.account_create.id);

    /* Submission errors: nothing queued, done never called. */
    test_req_t bad;
    req_init(&bad, STORE_OP_USER_UPSERT, NULL);
    CHECK_EQ_INT(store_submit(t->s, &bad.req), STORE_E_INVALID);
    req_init(&bad, STORE_OP_COUNT_, batch_done);
    CHECK_EQ_INT(store_submit(t->s, &bad.req), STORE_E_INVALID);
    CHECK_EQ_INT(store_submit(NULL, &bad.req), STORE_E_INVALID);
    CHECK_EQ_INT(store_submit(t->s, NULL), STORE_E_INVALID);
}

/* Within one batch: a clientMsgId repeated is a duplicate of the first, and uses no seq; the
 * same clientMsgId of another sender is another message (guarantees 3, 5). */
static void test_batch_duplicates(sc_t *t)
{
    char conv[ID_SIZE];
    sc_direct(t, "alice", "bob", conv);
    enum { N = 5 };
    test_req_t r[N];
    store_req_t *rp[N];
    const char *from[N] = {"alice", "bob", "alice", "alice", "bob"};
    const char *cmid[N] = {"c1", "c1", "c1", NULL, "c1"};
    for (int i = 0; i < N; i++) {
        req_init(&r[i], STORE_OP_MESSAGE_INSERT, NULL);
        r[i].req.u.message_insert = (store_message_insert_t){
            .sender = str_cstr(from[i]),
            .recipient = str_cstr(strcmp(from[i], "alice") == 0 ? "bob" : "alice"),
            .content = str_cstr(i == 2 ? "again" : "hi"),
            .client_msg_id = cmid[i] ? str_cstr(cmid[i]) : STR_NULL,
        };
        rp[i] = &r[i].req;
    }
    sc_run_batch(t, t->s, rp, N);
    const int64_t seq[N] = {1, 2, 1, 3, 2};
    const bool dup[N] = {false, false, true, false, true};
    for (int i = 0; i < N; i++) {
        const store_message_insert_t *m = &r[i].req.u.message_insert;
        CHECK_EQ_INT(r[i].req.status, STORE_OK);
        CHECK_EQ_INT(m->msg.seq, seq[i]);
        CHECK_EQ_INT(m->duplicate, dup[i]);
        CHECK(strcmp(m->msg.conversation_id, conv) == 0);
    }
    CHECK(strcmp(r[2].req.u.message_insert.msg.id, r[0].req.u.message_insert.msg.id) == 0);
    CHECK_MEM(r[2].req.u.message_insert.msg.content.ptr, r[2].req.u.message_insert.msg.content.len,
              "hi");
    CHECK(strcmp(r[4].req.u.message_insert.msg.id, r[1].req.u.message_insert.msg.id) == 0);
    int64_t updated = 0;
    CHECK_EQ_INT(sc_last_seq(t, conv, &updated), 3);
    CHECK_EQ_INT(sc_send(t, conv, "bob", "next"), 4);
}

/* ---- Reads run beside writes ------------------------------------------------------------- */

static struct {
    int writes_done, reads_done, reads_ok, off_loop;
} mix;

static void mix_write_done(store_req_t *r)
{
    mix.writes_done += r->status == STORE_OK;
}

static void mix_read_done(store_req_t *r)
{
    if (!on_loop_thread()) mix.off_loop++;
    mix.reads_done++;
    /* A read sees a committed prefix: seqs 1..count with no gap. */
    const store_messages_page_t *p = &r->u.messages_page;
    bool ok = r->status == STORE_OK;
    for (size_t i = 1; ok && i < p->count; i++) ok = p->msgs[i].seq == p->msgs[i - 1].seq + 1;
    mix.reads_ok += ok;
}

static void test_reads_beside_writes(sc_t *t)
{
    char conv[ID_SIZE];
    sc_close(t, t->s);
    t->s = sc_open(t, &(store_options_t){.batch_max = 16, .readers = 2});
    if (!t->s) return;
    sc_direct(t, "alice", "bob", conv);
    enum { W = 2000, R = 200 };
    test_req_t *w = calloc(W, sizeof *w);
    test_req_t *rd = calloc(R, sizeof *rd);
    static char read_arenas[R][4096];
    memset(&mix, 0, sizeof mix);
    for (int i = 0, j = 0; i < W && w && rd; i++) {
        req_init(&w[i], STORE_OP_MESSAGE_INSERT, mix_write_done);
        w[i].req.u.message_insert.sender = STR_LIT("alice");
        w[i].req.u.message_insert.conversation_id = str_make(conv, ID_LEN);
        w[i].req.u.message_insert.content = STR_LIT("w");
        CHECK_EQ_INT(store_submit(t->s, &w[i].req), STORE_OK);
        if (i % (W / R) == 0 && j < R) {
            req_init(&rd[j], STORE_OP_MESSAGES_PAGE, mix_read_done);
            rd[j].req.arena = (store_arena_t){read_arenas[j], sizeof read_arenas[j], 0, 0};
            rd[j].req.u.messages_page.conversation_id = str_make(conv, ID_LEN);
            rd[j].req.u.messages_page.requester = STR_LIT("bob");
            rd[j].req.u.messages_page.limit = 10;
            CHECK_EQ_INT(store_submit(t->s, &rd[j].req), STORE_OK);
            j++;
        }
    }
    uv_run(t->loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(mix.writes_done, W);
    CHECK_EQ_INT(mix.reads_done, R);
    CHECK_EQ_INT(mix.reads_ok, R);
    CHECK_EQ_INT(mix.off_loop, 0);
    store_stats_t st;
    store_stats(t->s, &st);
    CHECK(st.max_batch <= 16);
    CHECK(st.reads >= R || !(t->caps & STORE_ENGINE_READERS));
    free(w);
    free(rd);
}

/* ---- Close: queued work is carried out and delivered before store_close returns
 * (guarantee 7) ------------------------------------------------------------------------- */

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

static void test_close_drains(sc_t *t)
{
    char conv[ID_SIZE];
    sc_direct(t, "alice", "bob", conv);
    enum { N = 300 };
    static test_req_t r[N];
    memset(&drain, 0, sizeof drain);
    drain.store = t->s;
    store_writer_pause(t->s, true);
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
        /* Lazy writes waiting for their timer are carried out too. */
        if (i % 50 == 7) r[i].req.lazy = true;
        CHECK_EQ_INT(store_submit(t->s, &r[i].req), STORE_OK);
    }
    store_close(t->s); /* loop not run: every done() must have happened inside */
    CHECK_EQ_INT(drain.done, N);
    CHECK_EQ_INT(drain.ok, N);
    CHECK_EQ_INT(drain.resubmit_rc, STORE_E_CANCELLED);
    store_close(t->s); /* a second close before the handle is gone is harmless */
    uv_run(t->loop, UV_RUN_DEFAULT);
    t->s = sc_open(t, NULL);
    if (t->s) CHECK_EQ_INT(sc_last_seq(t, conv, NULL), N - N / 10);
}

/* ---- Lazy writes: they wait for company, never change the order of writes (guarantee 6) -- */

static struct {
    int order[8];
    int n;
} lazy_log;

static void lazy_done(store_req_t *r)
{
    test_req_t *tr = container_of(r, test_req_t, req);
    CHECK_EQ_INT(r->status, STORE_OK);
    if (lazy_log.n < 8) lazy_log.order[lazy_log.n++] = tr->index;
}

static void lazy_upsert(test_req_t *r, int index, const char *user, const char *name)
{
    req_init(r, STORE_OP_USER_UPSERT, lazy_done);
    r->index = index;
    r->req.lazy = true;
    r->req.u.user_upsert.id = str_cstr(user);
    r->req.u.user_upsert.name = str_cstr(name);
}

static void test_lazy_writes(sc_t *t)
{
    char conv[ID_SIZE];
    sc_direct(t, "alice", "bob", conv);
    store_stats_t st0, st1;
    test_req_t a, b, c, d;

    /* Alone, a lazy write waits about STORE_LAZY_MS, then commits. */
    memset(&lazy_log, 0, sizeof lazy_log);
    store_stats(t->s, &st0);
    uint64_t t0 = uv_hrtime();
    lazy_upsert(&a, 1, "carol", "carol");
    CHECK_EQ_INT(store_submit(t->s, &a.req), STORE_OK);
    uv_run(t->loop, UV_RUN_DEFAULT);
    uint64_t waited_ms = (uv_hrtime() - t0) / 1000000;
    CHECK(waited_ms >= STORE_LAZY_MS / 2);
    store_stats(t->s, &st1);
    CHECK_EQ_INT(lazy_log.n, 1);
    CHECK_EQ_INT(st1.commits - st0.commits, 1);

    /* Two lazy writes, then an ordinary write: all three in one commit, in submission order;
     * the ordinary write does not wait for the timer. */
    memset(&lazy_log, 0, sizeof lazy_log);
    store_stats(t->s, &st0);
    lazy_upsert(&a, 1, "dave", "dave");
    lazy_upsert(&b, 2, "erin", "erin");
    req_init(&c, STORE_OP_MESSAGE_INSERT, lazy_done);
    c.index = 3;
    c.req.u.message_insert.sender = STR_LIT("alice");
    c.req.u.message_insert.conversation_id = str_make(conv, ID_LEN);
    c.req.u.message_insert.content = STR_LIT("after the lazy ones");
    CHECK_EQ_INT(store_submit(t->s, &a.req), STORE_OK);
    CHECK_EQ_INT(store_submit(t->s, &b.req), STORE_OK);
    CHECK_EQ_INT(store_submit(t->s, &c.req), STORE_OK);
    uv_run(t->loop, UV_RUN_DEFAULT);
    store_stats(t->s, &st1);
    CHECK_EQ_INT(lazy_log.n, 3);
    CHECK(lazy_log.order[0] == 1 && lazy_log.order[1] == 2 && lazy_log.order[2] == 3);
    CHECK_EQ_INT(st1.commits - st0.commits, 1);

    /* A read is never held back by the lazy flag, and an ordered read sees the lazy write
     * submitted before it. */
    memset(&lazy_log, 0, sizeof lazy_log);
    lazy_upsert(&a, 1, "frank", "frank");
    req_init(&d, STORE_OP_USERS_GET, lazy_done);
    d.index = 2;
    d.req.ordered = true;
    d.req.lazy = true; /* meaningless on a read */
    str_t ids[] = {STR_LIT("frank")};
    d.req.u.users_get.ids = ids;
    d.req.u.users_get.count = 1;
    CHECK_EQ_INT(store_submit(t->s, &a.req), STORE_OK);
    CHECK_EQ_INT(store_submit(t->s, &d.req), STORE_OK);
    uv_run(t->loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(lazy_log.n, 2);
    CHECK(lazy_log.order[0] == 1 && lazy_log.order[1] == 2);
    CHECK_EQ_INT(d.req.u.users_get.found, 1);

    /* A lazy write then an ordinary one of the same record: the later one wins. */
    memset(&lazy_log, 0, sizeof lazy_log);
    lazy_upsert(&a, 1, "frank", "Lazy Frank");
    req_init(&b, STORE_OP_USER_UPSERT, lazy_done);
    b.index = 2;
    b.req.u.user_upsert.id = STR_LIT("frank");
    b.req.u.user_upsert.name = STR_LIT("Frank");
    CHECK_EQ_INT(store_submit(t->s, &a.req), STORE_OK);
    CHECK_EQ_INT(store_submit(t->s, &b.req), STORE_OK);
    uv_run(t->loop, UV_RUN_DEFAULT);
    CHECK(lazy_log.n == 2 && lazy_log.order[0] == 1 && lazy_log.order[1] == 2);
    store_arena_t ar = sc_arena();
    store_users_get_t ug = {.ids = ids, .count = 1};
    CHECK_EQ_INT(sc_users_get(t, &ug, &ar), STORE_OK);
    if (ug.found == 1) CHECK_MEM(ug.users[0].name.ptr, ug.users[0].name.len, "Frank");

    /* Closing commits what is still waiting. */
    memset(&lazy_log, 0, sizeof lazy_log);
    lazy_upsert(&a, 1, "grace", "grace");
    CHECK_EQ_INT(store_submit(t->s, &a.req), STORE_OK);
    sc_close(t, t->s);
    CHECK_EQ_INT(lazy_log.n, 1);
    t->s = sc_open(t, NULL);
    if (!t->s) return;
    str_t all[] = {STR_LIT("carol"), STR_LIT("dave"), STR_LIT("erin"), STR_LIT("frank"),
                   STR_LIT("grace")};
    ug = (store_users_get_t){.ids = all, .count = 5};
    CHECK_EQ_INT(sc_users_get(t, &ug, &ar), STORE_OK);
    CHECK_EQ_INT(ug.found, 5);
}

/* ---- kill -9: every acknowledged message survives (guarantee 1) ------------------------- */

static struct {
    store_t *store;
    int fd;
    char conv[ID_SIZE];
    test_req_t reqs[64];
    char content[64][32]; /* each message says which it is: "must survive <k>" */
    int64_t next_k;
} child;

/* What the child tells the parent for each ack: the seq it got and the message it was. */
typedef struct {
    int64_t seq, k;
} ack_rec_t;

static void child_submit(test_req_t *r);

static void child_done(store_req_t *r)
{
    test_req_t *tr = container_of(r, test_req_t, req);
    if (r->status != STORE_OK) _exit(3);
    /* The ack: only now may anyone learn that the message exists. */
    ack_rec_t rec = {r->u.message_insert.msg.seq, tr->index};
    if (write(child.fd, &rec, sizeof rec) != sizeof rec) _exit(4);
    child_submit(tr);
}

static void child_submit(test_req_t *r)
{
    int slot = (int)(r - child.reqs);
    req_init(r, STORE_OP_MESSAGE_INSERT, child_done);
    r->index = (int)child.next_k++;
    int len =
        snprintf(child.content[slot], sizeof child.content[slot], "must survive %d", r->index);
    r->req.u.message_insert.sender = STR_LIT("alice");
    r->req.u.message_insert.conversation_id = str_make(child.conv, ID_LEN);
    r->req.u.message_insert.content = str_make(child.content[slot], (size_t)len);
    if (store_submit(child.store, &r->req) != STORE_OK) _exit(5);
}

static void child_main(const char *target, int fd)
{
    uv_loop_t loop;
    char err[512];
    uv_loop_init(&loop);
    child.fd = fd;
    if (store_open(&loop, target, &child.store, err, sizeof err) != STORE_OK) _exit(2);
    test_req_t r;
    static char big[4096];
    req_init(&r, STORE_OP_DIRECT_OPEN, batch_done);
    r.req.arena = (store_arena_t){big, sizeof big, 0, 0};
    r.req.u.direct_open.user = STR_LIT("alice");
    r.req.u.direct_open.other = STR_LIT("bob");
    store_submit(child.store, &r.req);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (r.req.status != STORE_OK) _exit(6);
    memcpy(child.conv, r.req.u.direct_open.conv.id, ID_SIZE);
    for (int i = 0; i < 64; i++) child_submit(&child.reqs[i]);
    uv_run(&loop, UV_RUN_DEFAULT); /* until killed */
    _exit(7);
}

static void test_kill9_durability(sc_t *t)
{
    int fds[2];
    /* No store threads in the parent while it forks. */
    sc_close(t, t->s);
    t->s = NULL;
    CHECK(pipe(fds) == 0);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child_main(t->target, fds[1]);
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
    if (!WIFSIGNALED(status)) fprintf(stderr, "  child exit status %d\n", WEXITSTATUS(status));
    CHECK(acks >= 3000);

    t->s = sc_open(t, NULL);
    if (!t->s) return;
    store_arena_t a = sc_arena();
    store_conversations_list_t l = {.user = STR_LIT("alice"), .limit = 1};
    CHECK_EQ_INT(sc_conversations_list(t, &l, &a), STORE_OK);
    CHECK_EQ_INT(l.count, 1);
    if (l.count != 1) return;
    int64_t last = l.convs[0].last_seq;
    CHECK(last >= max_acked);
    /* No gap anywhere below the last acknowledged seq. */
    char conv[ID_SIZE];
    memcpy(conv, l.convs[0].id, ID_SIZE);
    int64_t after = 0, n = 0, checked = 0;
    for (;;) {
        store_arena_t pa = sc_arena();
        store_messages_after_t op = {
            .conversation_id = str_make(conv, ID_LEN), .after_seq = after, .limit = STORE_PAGE_MAX};
        if (sc_messages_after(t, &op, &pa) != STORE_OK || op.count == 0) break;
        for (size_t i = 0; i < op.count; i++) {
            const store_message_t *m = &op.msgs[i];
            n += m->seq == after + 1 + (int64_t)i;
            /* Every acknowledged message is stored under the seq its ack gave, with its own
             * content (not another message's), and no message is stored twice. */
            if (m->seq < MAX_SEQ && acked_k[m->seq] >= 0) {
                char want[32];
                int len =
                    snprintf(want, sizeof want, "must survive %lld", (long long)acked_k[m->seq]);
                CHECK(str_eq(m->content, str_make(want, (size_t)len)));
                acked_k[m->seq] = -2; /* found */
                checked++;
            }
        }
        after = op.msgs[op.count - 1].seq;
    }
    CHECK_EQ_INT(n, last);
    CHECK_EQ_INT(checked, acks);
    fprintf(stderr, "  killed after %lld acks; %lld acknowledged, %lld stored\n", (long long)acks,
            (long long)max_acked, (long long)last);
}

const sc_case_t sc_cases_async[] = {
    {"group_commit_order", test_group_commit_order},
    {"batch_isolation", test_batch_isolation},
    {"batch_duplicates", test_batch_duplicates},
    {"reads_beside_writes", test_reads_beside_writes},
    {"close_drains", test_close_drains},
    {"lazy_writes", test_lazy_writes},
    {"kill9_durability", test_kill9_durability},
    {NULL, NULL},
};
