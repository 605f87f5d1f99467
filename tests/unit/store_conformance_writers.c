/* Conformance cases for recovery positions (guarantee 4) and, on engines with several writers
 * (no STORE_ENGINE_SINGLE_WRITER: several store_t, or processes, on one database), for seq,
 * idempotency and visibility across writers (guarantees 1, 3, 5). Every writer here is a
 * store_t of its own on the case's database, all on the case's loop. */
#include "store_conformance.h"

#include <stdlib.h>

typedef struct {
    store_req_t req;
    int writer, slot;
    char arena[1024];
} w_req_t;

static void w_init(w_req_t *r, store_op_t op, void (*done)(store_req_t *))
{
    memset(&r->req, 0, sizeof r->req);
    r->req.op = op;
    r->req.done = done;
    r->req.arena = (store_arena_t){r->arena, sizeof r->arena, 0, 0};
}

/* One message as read or written: its position and id. */
typedef struct {
    int64_t pos;
    char id[ID_SIZE];
} seen_t;

typedef struct {
    seen_t *v;
    size_t n, cap;
} seen_list_t;

static void seen_add(seen_list_t *l, int64_t pos, const char *id)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) abort();
    }
    l->v[l->n].pos = pos;
    memcpy(l->v[l->n].id, id, ID_SIZE);
    l->n++;
}

static int seen_cmp(const void *a, const void *b)
{
    const seen_t *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos ? 1 : strcmp(x->id, y->id);
}

/* How many entries of a are not in b (both sorted by seen_cmp); reports the first few. */
static size_t seen_missing(const seen_list_t *a, const seen_list_t *b, const char *what)
{
    size_t i = 0, j = 0, missing = 0;
    while (i < a->n) {
        int c = j < b->n ? seen_cmp(&a->v[i], &b->v[j]) : -1;
        if (c == 0) {
            i++;
            j++;
        } else if (c < 0) {
            if (missing++ < 5)
                fprintf(stderr, "  %s: message %s at pos %lld\n", what, a->v[i].id,
                        (long long)a->v[i].pos);
            i++;
        } else {
            j++;
        }
    }
    return missing;
}

/* ---- 4. Replay by position never skips a committed message ----------------------------- */

/* Writers insert into the conversations of user "u" (with p0..p3, each side sending) as fast
 * as they can, while a replayer walks MESSAGES_SINCE as the chat layer does after a
 * reconnect: from its cursor, taking the last message's pos while there is more, then the
 * read's last_pos. A checker takes each position some insert's done() handed out and reads
 * what lies at or below it: by prefix stability that must already be all there is. At the end
 * the replayer must have read every message exactly once, and the checker's ranges must hold
 * exactly the final messages at or below them. */
enum { RP_WRITERS_MAX = 2, RP_SLOTS = 48, RP_PER_WRITER = 1500, RP_CONVS = 4 };

static struct {
    sc_t *t;
    store_t *w[RP_WRITERS_MAX];
    int writers;
    char conv[RP_CONVS][ID_SIZE];
    w_req_t ins[RP_WRITERS_MAX][RP_SLOTS];
    int submitted[RP_WRITERS_MAX], acked[RP_WRITERS_MAX], failed;
    seen_list_t written;
    /* The replayer. */
    w_req_t rep;
    int64_t cursor;
    bool rep_busy, rep_final; /* rep_final: the read in flight began after the last ack */
    seen_list_t replayed;
    int out_of_order;
    /* The checker: [lo, hi] of the range it is reading; idle when hi == 0. */
    w_req_t chk;
    int64_t lo, hi, next_hi;
    seen_list_t checked;
} rp;

static void rp_insert(int w, int slot);
static void rp_replay(void);
static void rp_check(int64_t after);

static void rp_insert_done(store_req_t *req)
{
    w_req_t *r = container_of(req, w_req_t, req);
    if (req->status != STORE_OK) {
        if (rp.failed++ == 0) fprintf(stderr, "  insert failed: %s\n", store_strerror(req->status));
    } else {
        const store_message_t *m = &req->u.message_insert.msg;
        seen_add(&rp.written, m->pos, m->id);
        /* A position handed out: the checker reads up to it when idle. */
        if (m->pos > rp.lo && rp.hi == 0) {
            rp.hi = m->pos;
            rp_check(rp.lo);
        }
    }
    rp.acked[r->writer]++;
    if (rp.submitted[r->writer] < RP_PER_WRITER) rp_insert(r->writer, r->slot);
}

static void rp_insert(int w, int slot)
{
    w_req_t *r = &rp.ins[w][slot];
    int k = rp.submitted[w]++;
    static const char *const others[RP_CONVS] = {"p0", "p1", "p2", "p3"};
    int c = (k * 7 + slot + w) % RP_CONVS;
    w_init(r, STORE_OP_MESSAGE_INSERT, rp_insert_done);
    r->writer = w;
    r->slot = slot;
    r->req.u.message_insert = (store_message_insert_t){
        .sender = str_cstr(k % 2 ? "u" : others[c]),
        .conversation_id = str_make(rp.conv[c], ID_LEN),
        .content = STR_LIT("replay me"),
    };
    if (store_submit(rp.w[w], &r->req) != STORE_OK) rp.failed++;
}

static bool rp_writing(void)
{
    for (int w = 0; w < rp.writers; w++)
        if (rp.acked[w] < RP_PER_WRITER) return true;
    return false;
}

static void rp_replay_done(store_req_t *req)
{
    const store_messages_since_t *s = &req->u.messages_since;
    rp.rep_busy = false;
    if (req->status != STORE_OK) {
        rp.failed++;
        return;
    }
    for (size_t i = 0; i < s->count; i++) {
        if (s->msgs[i].pos <= rp.cursor || (i && s->msgs[i].pos <= s->msgs[i - 1].pos))
            rp.out_of_order++;
        seen_add(&rp.replayed, s->msgs[i].pos, s->msgs[i].id);
    }
    if (s->count) rp.cursor = s->msgs[s->count - 1].pos;
    if (!s->has_more && s->last_pos > rp.cursor) rp.cursor = s->last_pos;
    /* Go on while the writers write, and after them until a pass that began after the last
     * ack finds nothing more. */
    if (!rp.rep_final || s->count > 0 || s->has_more) rp_replay();
}

static void rp_replay(void)
{
    w_init(&rp.rep, STORE_OP_MESSAGES_SINCE, rp_replay_done);
    rp.rep.req.arena = sc_arena(); /* the replayer alone uses the shared arena here */
    rp.rep.req.u.messages_since =
        (store_messages_since_t){.user = STR_LIT("u"), .after_pos = rp.cursor, .limit = 50};
    rp.rep_busy = true;
    rp.rep_final = !rp_writing();
    if (store_submit(rp.t->s, &rp.rep.req) != STORE_OK) {
        rp.rep_busy = false;
        rp.failed++;
    }
}

static void rp_check_done(store_req_t *req)
{
    const store_messages_since_t *s = &req->u.messages_since;
    if (req->status != STORE_OK) {
        rp.failed++;
        rp.hi = 0;
        return;
    }
    int64_t last = 0;
    for (size_t i = 0; i < s->count && s->msgs[i].pos <= rp.hi; i++) {
        seen_add(&rp.checked, s->msgs[i].pos, s->msgs[i].id);
        last = s->msgs[i].pos;
    }
    if (s->has_more && s->count && s->msgs[s->count - 1].pos < rp.hi) {
        rp_check(last); /* the results above were read: the request may be reused */
        return;
    }
    rp.lo = rp.hi; /* everything in (0, lo] is now in checked */
    rp.hi = 0;
}

static void rp_check(int64_t after)
{
    static char chk_arena[1 << 16];
    w_init(&rp.chk, STORE_OP_MESSAGES_SINCE, rp_check_done);
    rp.chk.req.arena = (store_arena_t){chk_arena, sizeof chk_arena, 0, 0};
    rp.chk.req.u.messages_since =
        (store_messages_since_t){.user = STR_LIT("u"), .after_pos = after, .limit = 200};
    if (store_submit(rp.t->s, &rp.chk.req) != STORE_OK) {
        rp.failed++;
        rp.hi = 0;
    }
}

static void replay_run(sc_t *t, int writers)
{
    memset(&rp, 0, sizeof rp);
    rp.t = t;
    rp.writers = writers;
    static const char *const others[RP_CONVS] = {"p0", "p1", "p2", "p3"};
    for (int c = 0; c < RP_CONVS; c++) sc_direct(t, "u", others[c], rp.conv[c]);
    rp.w[0] = t->s;
    for (int w = 1; w < writers; w++) rp.w[w] = sc_open(t, NULL);
    for (int w = 0; w < writers; w++)
        if (!rp.w[w]) return;
    for (int w = 0; w < writers; w++)
        for (int slot = 0; slot < RP_SLOTS; slot++) rp_insert(w, slot);
    rp_replay();
    uv_run(t->loop, UV_RUN_DEFAULT);
    for (int w = 1; w < writers; w++) sc_close(t, rp.w[w]);

    CHECK_EQ_INT(rp.failed, 0);
    CHECK_EQ_INT(rp.out_of_order, 0);
    CHECK_EQ_INT(rp.written.n, (size_t)writers * RP_PER_WRITER);
    qsort(rp.written.v, rp.written.n, sizeof *rp.written.v, seen_cmp);
    qsort(rp.replayed.v, rp.replayed.n, sizeof *rp.replayed.v, seen_cmp);
    /* Replayed: every message written, nothing else, each once. */
    CHECK_EQ_INT(seen_missing(&rp.written, &rp.replayed, "skipped by the replay"), 0);
    CHECK_EQ_INT(seen_missing(&rp.replayed, &rp.written, "replayed but never written"), 0);
    CHECK_EQ_INT(rp.replayed.n, rp.written.n);
    /* Checked: what was at or below lo as soon as a done() handed out lo is all there is. */
    seen_list_t below = {0};
    for (size_t i = 0; i < rp.written.n && rp.written.v[i].pos <= rp.lo; i++)
        seen_add(&below, rp.written.v[i].pos, rp.written.v[i].id);
    qsort(rp.checked.v, rp.checked.n, sizeof *rp.checked.v, seen_cmp);
    CHECK(rp.lo > 0);
    CHECK_EQ_INT(seen_missing(&below, &rp.checked, "committed below a position handed out"), 0);
    CHECK_EQ_INT(rp.checked.n, below.n);
    fprintf(stderr, "  %zu messages from %d writer(s), replayed in order; checked up to %lld\n",
            rp.written.n, writers, (long long)rp.lo);
    free(below.v);
    free(rp.written.v);
    free(rp.replayed.v);
    free(rp.checked.v);
}

static void test_replay_one_writer(sc_t *t)
{
    replay_run(t, 1);
}

static void test_replay_two_writers(sc_t *t)
{
    if (!sc_multi_writer(t)) return; /* one writer per database: nothing more to test */
    replay_run(t, 2);
}

/* ---- 3. seq with two writers: gap-free, unique, in each writer's submission order -------- */

enum { SQ_PER_WRITER = 1000, SQ_SLOTS = 64 };

static struct {
    store_t *w[2];
    char conv[ID_SIZE];
    w_req_t ins[2][SQ_SLOTS];
    int submitted[2], failed, out_of_order;
    int64_t last_seq[2];
    unsigned char *count; /* per seq */
} sq;

static void sq_insert(int w, int slot);

static void sq_done(store_req_t *req)
{
    w_req_t *r = container_of(req, w_req_t, req);
    int64_t seq = req->u.message_insert.msg.seq;
    if (req->status != STORE_OK) {
        sq.failed++;
    } else {
        if (seq <= sq.last_seq[r->writer]) sq.out_of_order++;
        sq.last_seq[r->writer] = seq;
        if (seq >= 1 && seq <= 2 * SQ_PER_WRITER) sq.count[seq]++;
    }
    if (sq.submitted[r->writer] < SQ_PER_WRITER) sq_insert(r->writer, r->slot);
}

static void sq_insert(int w, int slot)
{
    w_req_t *r = &sq.ins[w][slot];
    sq.submitted[w]++;
    w_init(r, STORE_OP_MESSAGE_INSERT, sq_done);
    r->writer = w;
    r->slot = slot;
    r->req.u.message_insert = (store_message_insert_t){
        .sender = str_cstr(w ? "bob" : "alice"),
        .conversation_id = str_make(sq.conv, ID_LEN),
        .content = STR_LIT("two writers"),
    };
    if (store_submit(sq.w[w], &r->req) != STORE_OK) sq.failed++;
}

static void test_seq_two_writers(sc_t *t)
{
    if (!sc_multi_writer(t)) return;
    memset(&sq, 0, sizeof sq);
    sc_direct(t, "alice", "bob", sq.conv);
    sq.w[0] = t->s;
    sq.w[1] = sc_open(t, NULL);
    sq.count = calloc(2 * SQ_PER_WRITER + 1, 1);
    if (!sq.w[1] || !sq.count) return;
    for (int slot = 0; slot < SQ_SLOTS; slot++) {
        sq_insert(0, slot);
        sq_insert(1, slot);
    }
    uv_run(t->loop, UV_RUN_DEFAULT);
    sc_close(t, sq.w[1]);
    CHECK_EQ_INT(sq.failed, 0);
    CHECK_EQ_INT(sq.out_of_order, 0);
    int missing = 0, repeated = 0;
    for (int s = 1; s <= 2 * SQ_PER_WRITER; s++) {
        missing += sq.count[s] == 0;
        repeated += sq.count[s] > 1;
    }
    CHECK_EQ_INT(missing, 0);
    CHECK_EQ_INT(repeated, 0);
    CHECK_EQ_INT(sc_last_seq(t, sq.conv, NULL), 2 * SQ_PER_WRITER);
    /* The stored history agrees: 1..2N, each once, read back in pages. */
    int64_t after = 0, n = 0;
    for (;;) {
        store_arena_t a = sc_arena();
        store_messages_after_t op = {
            .conversation_id = str_make(sq.conv, ID_LEN), .after_seq = after, .limit = 200};
        if (sc_messages_after(t, &op, &a) != STORE_OK || op.count == 0) break;
        for (size_t i = 0; i < op.count; i++) n += op.msgs[i].seq == after + 1 + (int64_t)i;
        after = op.msgs[op.count - 1].seq;
    }
    CHECK_EQ_INT(n, 2 * SQ_PER_WRITER);
    free(sq.count);
}

/* ---- 5. One (sender, clientMsgId) raced by two writers is stored once ------------------- */

enum { ID_PAIRS = 200 };

static void test_idempotency_two_writers(sc_t *t)
{
    if (!sc_multi_writer(t)) return;
    store_t *b = sc_open(t, NULL);
    if (!b) return;
    static w_req_t r[2][ID_PAIRS];
    static char cmid[ID_PAIRS][16];
    int n = 0;
    /* The first send of each pair also opens the direct conversation, on both writers. */
    for (int i = 0; i < ID_PAIRS; i++) {
        snprintf(cmid[i], sizeof cmid[i], "k-%d", i);
        for (int w = 0; w < 2; w++) {
            w_init(&r[w][i], STORE_OP_MESSAGE_INSERT, NULL);
            r[w][i].req.u.message_insert = (store_message_insert_t){
                .sender = STR_LIT("alice"),
                .recipient = STR_LIT("bob"),
                .content = str_cstr(w ? "from b" : "from a"),
                .client_msg_id = str_cstr(cmid[i]),
            };
        }
    }
    /* Both writers get their halves in one batch each, released together. */
    int done = 0;
    store_writer_pause(t->s, true);
    store_writer_pause(b, true);
    for (int i = 0; i < ID_PAIRS; i++)
        for (int w = 0; w < 2; w++) {
            n++;
            r[w][i].req.done = sc_count_done;
            r[w][i].req.data = &done;
            CHECK_EQ_INT(store_submit(w ? b : t->s, &r[w][i].req), STORE_OK);
        }
    store_writer_pause(t->s, false);
    store_writer_pause(b, false);
    while (done < n) uv_run(t->loop, UV_RUN_ONCE);
    sc_close(t, b);

    int stored = 0, dup_both = 0, failed = 0, other_id = 0, convs = 0;
    char conv[ID_SIZE] = "";
    for (int i = 0; i < ID_PAIRS; i++) {
        const store_message_insert_t *x = &r[0][i].req.u.message_insert,
                                     *y = &r[1][i].req.u.message_insert;
        if (r[0][i].req.status != STORE_OK || r[1][i].req.status != STORE_OK) {
            if (failed++ == 0)
                fprintf(stderr, "  pair %d: %s / %s\n", i, store_strerror(r[0][i].req.status),
                        store_strerror(r[1][i].req.status));
            continue;
        }
        stored += !x->duplicate + !y->duplicate;
        dup_both += x->duplicate && y->duplicate;
        other_id += strcmp(x->msg.id, y->msg.id) != 0;
        if (!conv[0]) memcpy(conv, x->msg.conversation_id, ID_SIZE);
        convs +=
            strcmp(x->msg.conversation_id, conv) != 0 || strcmp(y->msg.conversation_id, conv) != 0;
    }
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(stored, ID_PAIRS);
    CHECK_EQ_INT(dup_both, 0);
    CHECK_EQ_INT(other_id, 0);
    CHECK_EQ_INT(convs, 0); /* one direct conversation, whoever opened it first */
    if (conv[0]) CHECK_EQ_INT(sc_last_seq(t, conv, NULL), ID_PAIRS);
    store_arena_t ar = sc_arena();
    store_direct_open_t d = {.user = STR_LIT("bob"), .other = STR_LIT("alice")};
    CHECK_EQ_INT(sc_direct_open(t, &d, &ar, 0), STORE_OK);
    CHECK(!d.created && strcmp(d.conv.id, conv) == 0);
}

/* ---- 1, 5. Across writers: what one committed, the other sees and respects ---------------- */

static void test_across_writers(sc_t *t)
{
    if (!sc_multi_writer(t)) return;
    store_t *b = sc_open(t, NULL);
    if (!b) return;
    char conv[ID_SIZE];
    sc_direct(t, "alice", "bob", conv);
    /* A username taken on one writer conflicts on the other. */
    w_req_t r;
    w_init(&r, STORE_OP_ACCOUNT_CREATE, NULL);
    r.req.u.account_create =
        (store_account_create_t){.username = STR_LIT("Zed"), .password_hash = STR_LIT("h")};
    CHECK_EQ_INT(sc_run(t, t->s, &r.req), STORE_OK);
    r.req.u.account_create.username = STR_LIT("zED");
    CHECK_EQ_INT(sc_run(t, b, &r.req), STORE_E_CONFLICT);
    /* A send on one writer, retried on the other: the first message, duplicate. */
    w_init(&r, STORE_OP_MESSAGE_INSERT, NULL);
    r.req.u.message_insert = (store_message_insert_t){.sender = STR_LIT("bob"),
                                                      .conversation_id = str_cstr(conv),
                                                      .content = STR_LIT("once"),
                                                      .client_msg_id = STR_LIT("retry-me")};
    CHECK_EQ_INT(sc_run(t, t->s, &r.req), STORE_OK);
    char first_id[ID_SIZE];
    memcpy(first_id, r.req.u.message_insert.msg.id, ID_SIZE);
    r.req.u.message_insert.content = STR_LIT("twice?");
    CHECK_EQ_INT(sc_run(t, b, &r.req), STORE_OK);
    CHECK(r.req.u.message_insert.duplicate);
    CHECK(strcmp(r.req.u.message_insert.msg.id, first_id) == 0);
    CHECK_EQ_INT(r.req.u.message_insert.msg.seq, 1);
    CHECK_MEM(r.req.u.message_insert.msg.content.ptr, r.req.u.message_insert.msg.content.len,
              "once");
    /* Written on one, read on the other right after its done(), both ways; and seq goes on
     * from whoever wrote last. */
    for (int i = 0; i < 40; i++) {
        store_t *wr = i % 2 ? b : t->s, *rd = i % 2 ? t->s : b;
        w_init(&r, STORE_OP_MESSAGE_INSERT, NULL);
        r.req.u.message_insert = (store_message_insert_t){
            .sender = STR_LIT("alice"), .conversation_id = str_cstr(conv), .content = STR_LIT("x")};
        CHECK_EQ_INT(sc_run(t, wr, &r.req), STORE_OK);
        CHECK_EQ_INT(r.req.u.message_insert.msg.seq, i + 2);
        w_req_t q;
        w_init(&q, STORE_OP_CONVERSATION_GET, NULL);
        q.req.u.conversation_get.id = str_cstr(conv);
        q.req.u.conversation_get.requester = STR_LIT("bob");
        CHECK_EQ_INT(sc_run(t, rd, &q.req), STORE_OK);
        CHECK_EQ_INT(q.req.u.conversation_get.conv.last_seq, i + 2);
        CHECK_EQ_INT(q.req.u.conversation_get.conv.unread_count, i + 1);
    }
    sc_close(t, b);
}

const sc_case_t sc_cases_writers[] = {
    {"replay_one_writer", test_replay_one_writer},
    {"replay_two_writers", test_replay_two_writers},
    {"seq_two_writers", test_seq_two_writers},
    {"idempotency_two_writers", test_idempotency_two_writers},
    {"across_writers", test_across_writers},
    {NULL, NULL},
};
