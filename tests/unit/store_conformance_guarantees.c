/* Conformance cases for store.h's guarantees as seen from one store_t: visibility after
 * commit (1), one snapshot per read (1), the order of writes and their completions (2), seq
 * per conversation in submission order (3), ordered reads (6). Several writers and recovery
 * positions are in store_conformance_writers.c. */
#include "store_conformance.h"

#include <stdlib.h>

typedef struct {
    store_req_t req;
    int index;
    char arena[2048];
} g_req_t;

static void g_init(g_req_t *r, store_op_t op, void (*done)(store_req_t *), int index)
{
    memset(&r->req, 0, sizeof r->req);
    r->req.op = op;
    r->req.done = done;
    r->req.arena = (store_arena_t){r->arena, sizeof r->arena, 0, 0};
    r->index = index;
}

/* ---- 1. A read submitted after a write's done() sees the write ---------------------------- */

static struct {
    store_t *writer, *reader;
    char conv[ID_SIZE];
    g_req_t w, r;
    int rounds, left, stale, failed;
} vis;

static void vis_write(void);

static void vis_read_done(store_req_t *req)
{
    const store_messages_after_t *a = &req->u.messages_after;
    if (req->status != STORE_OK) vis.failed++;
    /* The read asked for what follows the previous seq: the new message must be there. */
    else if (a->count != 1 || a->msgs[0].seq != vis.w.req.u.message_insert.msg.seq ||
             strcmp(a->msgs[0].id, vis.w.req.u.message_insert.msg.id) != 0)
        vis.stale++;
    if (--vis.left > 0) vis_write();
}

static void vis_write_done(store_req_t *req)
{
    if (req->status != STORE_OK) {
        vis.failed++;
        return;
    }
    /* From inside done(): a plain read, which may run on another connection. */
    g_init(&vis.r, STORE_OP_MESSAGES_AFTER, vis_read_done, 0);
    vis.r.req.u.messages_after = (store_messages_after_t){
        .conversation_id = str_make(vis.conv, ID_LEN),
        .requester = STR_LIT("bob"),
        .after_seq = req->u.message_insert.msg.seq - 1,
        .limit = 5,
    };
    if (store_submit(vis.reader, &vis.r.req) != STORE_OK) vis.failed++;
}

static void vis_write(void)
{
    g_init(&vis.w, STORE_OP_MESSAGE_INSERT, vis_write_done, 0);
    vis.w.req.u.message_insert =
        (store_message_insert_t){.sender = STR_LIT("alice"),
                                 .conversation_id = str_make(vis.conv, ID_LEN),
                                 .content = STR_LIT("seen?")};
    if (store_submit(vis.writer, &vis.w.req) != STORE_OK) vis.failed++;
}

static void visibility_run(sc_t *t, store_t *writer, store_t *reader, int rounds)
{
    memset(&vis, 0, sizeof vis);
    sc_direct(t, "alice", "bob", vis.conv);
    vis.writer = writer;
    vis.reader = reader;
    vis.left = rounds;
    vis_write();
    uv_run(t->loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(vis.failed, 0);
    CHECK_EQ_INT(vis.stale, 0);
    CHECK_EQ_INT(vis.left, 0);
}

static void test_visibility_after_done(sc_t *t)
{
    visibility_run(t, t->s, t->s, 300);
}

/* ---- 1. Each read is one snapshot: last message, last_seq and unread count agree ---------- */

static struct {
    char conv[ID_SIZE];
    int reads, writes, bad, failed;
} snap;

static void snap_read_done(store_req_t *req)
{
    snap.reads++;
    if (req->status != STORE_OK) {
        snap.failed++;
        return;
    }
    const store_conversation_t *c = &req->u.conversation_get.conv;
    int64_t bob_read = -1;
    for (size_t i = 0; i < c->member_count; i++)
        if (str_eq_cstr(c->members[i].user_id, "bob")) bob_read = c->members[i].read_seq;
    /* Only alice writes, so bob's unread messages are exactly those above his watermark. */
    bool ok = c->last_message && c->last_message->seq == c->last_seq &&
              c->unread_count == c->last_seq - c->read_seq && bob_read == c->read_seq &&
              c->read_seq <= c->last_seq;
    if (!ok) {
        if (snap.bad++ == 0)
            fprintf(stderr,
                    "  torn read: last_seq %lld, last message %lld, read_seq %lld/%lld, "
                    "unread %lld\n",
                    (long long)c->last_seq,
                    (long long)(c->last_message ? c->last_message->seq : -1),
                    (long long)c->read_seq, (long long)bob_read, (long long)c->unread_count);
    }
}

static void snap_write_done(store_req_t *req)
{
    if (req->status != STORE_OK) snap.failed++;
    snap.writes++;
}

static void test_read_snapshot(sc_t *t)
{
    enum { N = 1500 };
    memset(&snap, 0, sizeof snap);
    sc_direct(t, "alice", "bob", snap.conv);
    CHECK_EQ_INT(sc_send(t, snap.conv, "alice", "first"), 1);
    g_req_t *w = calloc(N, sizeof *w), *r = calloc(N / 5, sizeof *r);
    if (!w || !r) abort();
    /* Inserts, marks by bob of earlier inserts and reads, all in flight together. */
    for (int i = 0, j = 0; i < N; i++) {
        g_init(&w[i], STORE_OP_MESSAGE_INSERT, snap_write_done, i);
        w[i].req.u.message_insert = (store_message_insert_t){
            .sender = STR_LIT("alice"),
            .conversation_id = str_make(snap.conv, ID_LEN),
            .content = STR_LIT("snapshot"),
        };
        CHECK_EQ_INT(store_submit(t->s, &w[i].req), STORE_OK);
        if (i % 5 == 4) {
            g_init(&r[j], STORE_OP_CONVERSATION_GET, snap_read_done, j);
            r[j].req.u.conversation_get = (store_conversation_get_t){
                .id = str_make(snap.conv, ID_LEN), .requester = STR_LIT("bob")};
            CHECK_EQ_INT(store_submit(t->s, &r[j].req), STORE_OK);
            j++;
        }
        if (i % 100 == 99) {
            /* Let the writes so far complete, then mark one of them read by bob. */
            while (snap.writes <= i) uv_run(t->loop, UV_RUN_ONCE);
            store_mark_read_t mr;
            CHECK_EQ_INT(
                sc_mark(t, snap.conv, "bob", w[i - 50].req.u.message_insert.msg.id, 0, &mr),
                STORE_OK);
        }
    }
    uv_run(t->loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(snap.failed, 0);
    CHECK_EQ_INT(snap.reads, N / 5);
    CHECK_EQ_INT(snap.bad, 0);
    free(w);
    free(r);
}

/* ---- 2. Writes of every kind complete in submission order ------------------------------- */

static struct {
    int next, out_of_order, failed;
} word;

static void word_done(store_req_t *req)
{
    g_req_t *r = container_of(req, g_req_t, req);
    if (req->status != STORE_OK) word.failed++;
    if (r->index != word.next) word.out_of_order++;
    word.next++;
}

static void test_write_order(sc_t *t)
{
    char ab[ID_SIZE], ac[ID_SIZE];
    sc_direct(t, "alice", "bob", ab);
    sc_direct(t, "alice", "carol", ac);
    store_message_insert_t first;
    CHECK_EQ_INT(sc_send_at(t, ab, "alice", "first", 0, &first), STORE_OK);
    enum { N = 600 };
    static g_req_t r[N];
    static char names[N][16];
    str_t parts[] = {STR_LIT("bob"), STR_LIT("carol")};
    memset(&word, 0, sizeof word);
    int64_t seq_ab = 1, seq_ac = 0;
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "user%d", i);
        switch (i % 6) {
        case 0:
            g_init(&r[i], STORE_OP_USER_UPSERT, word_done, i);
            r[i].req.u.user_upsert.id = str_cstr(names[i]);
            r[i].req.lazy = i % 12 == 0; /* lazy writes keep their place too */
            break;
        case 1:
        case 3:
            g_init(&r[i], STORE_OP_MESSAGE_INSERT, word_done, i);
            r[i].req.u.message_insert = (store_message_insert_t){
                .sender = STR_LIT("bob"),
                .conversation_id = str_make(i % 6 == 1 ? ab : ac, ID_LEN),
                .recipient = STR_NULL,
                .content = STR_LIT("m"),
            };
            if (i % 6 == 3) r[i].req.u.message_insert.sender = STR_LIT("carol");
            break;
        case 2:
            g_init(&r[i], STORE_OP_MARK_READ, word_done, i);
            r[i].req.u.mark_read =
                (store_mark_read_t){.user = STR_LIT("bob"), .message_id = str_cstr(first.msg.id)};
            break;
        case 4:
            g_init(&r[i], STORE_OP_GROUP_CREATE, word_done, i);
            r[i].req.u.group_create = (store_group_create_t){
                .creator = STR_LIT("alice"), .participants = parts, .count = 2};
            break;
        case 5:
            g_init(&r[i], STORE_OP_USER_SEEN, word_done, i);
            r[i].req.u.user_seen = (store_user_seen_t){.id = STR_LIT("alice"), .last_seen = i};
            r[i].req.lazy = true;
            break;
        }
        CHECK_EQ_INT(store_submit(t->s, &r[i].req), STORE_OK);
    }
    uv_run(t->loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(word.next, N);
    CHECK_EQ_INT(word.out_of_order, 0);
    CHECK_EQ_INT(word.failed, 0);
    /* seq per conversation follows the submission order (guarantee 3). */
    int bad = 0;
    for (int i = 0; i < N; i++) {
        if (i % 6 == 1) bad += r[i].req.u.message_insert.msg.seq != ++seq_ab;
        if (i % 6 == 3) bad += r[i].req.u.message_insert.msg.seq != ++seq_ac;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(sc_last_seq(t, ab, NULL), seq_ab);
    CHECK_EQ_INT(sc_last_seq(t, ac, NULL), seq_ac);
}

/* ---- 6. An ordered read sees exactly the writes submitted before it ---------------------- */

static struct {
    int log[3], n;
} ord;

static void ord_done(store_req_t *req)
{
    g_req_t *r = container_of(req, g_req_t, req);
    if (ord.n < 3) ord.log[ord.n++] = r->index;
}

static void test_ordered_reads(sc_t *t)
{
    char conv[ID_SIZE];
    sc_direct(t, "alice", "bob", conv);
    int bad_view = 0, bad_order = 0, failed = 0;
    for (int i = 0; i < 150; i++) {
        g_req_t w1, rd, w2;
        g_init(&w1, STORE_OP_MESSAGE_INSERT, ord_done, 1);
        w1.req.u.message_insert = (store_message_insert_t){
            .sender = STR_LIT("alice"), .conversation_id = str_cstr(conv), .content = STR_LIT("1")};
        w1.req.lazy = i % 3 == 0; /* a lazy write is no exception */
        g_init(&rd, i % 2 ? STORE_OP_CONVERSATION_GET : STORE_OP_MESSAGES_PAGE, ord_done, 2);
        rd.req.ordered = true;
        if (i % 2)
            rd.req.u.conversation_get.id = str_cstr(conv);
        else
            rd.req.u.messages_page =
                (store_messages_page_t){.conversation_id = str_cstr(conv), .limit = 1};
        g_init(&w2, STORE_OP_MESSAGE_INSERT, ord_done, 3);
        w2.req.u.message_insert = w1.req.u.message_insert;
        w2.req.lazy = false;
        memset(&ord, 0, sizeof ord);
        CHECK_EQ_INT(store_submit(t->s, &w1.req), STORE_OK);
        CHECK_EQ_INT(store_submit(t->s, &rd.req), STORE_OK);
        CHECK_EQ_INT(store_submit(t->s, &w2.req), STORE_OK);
        uv_run(t->loop, UV_RUN_DEFAULT);
        failed +=
            w1.req.status != STORE_OK || rd.req.status != STORE_OK || w2.req.status != STORE_OK;
        int64_t want = w1.req.u.message_insert.msg.seq;
        int64_t seen =
            i % 2 ? rd.req.u.conversation_get.conv.last_seq
                  : (rd.req.u.messages_page.count == 1 ? rd.req.u.messages_page.msgs[0].seq : -1);
        bad_view += seen != want;
        /* Its done() comes after the write before it (plain writes and it are in order). */
        int pos_w1 = -1, pos_rd = -1;
        for (int k = 0; k < ord.n; k++) {
            if (ord.log[k] == 1) pos_w1 = k;
            if (ord.log[k] == 2) pos_rd = k;
        }
        bad_order += ord.n != 3 || pos_w1 < 0 || pos_rd < pos_w1;
    }
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(bad_view, 0);
    CHECK_EQ_INT(bad_order, 0);
    CHECK_EQ_INT(sc_last_seq(t, conv, NULL), 300);
}

const sc_case_t sc_cases_guarantees[] = {
    {"visibility_after_done", test_visibility_after_done},
    {"read_snapshot", test_read_snapshot},
    {"write_order", test_write_order},
    {"ordered_reads", test_ordered_reads},
    {NULL, NULL},
};
