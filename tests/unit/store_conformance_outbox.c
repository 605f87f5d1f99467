/* Conformance: the webhook outbox (store.h, issue 15). Events recorded in the transaction of
 * the writes that cause them (only while store_outbox_configure has it on), the per-conversation
 * queue (one due row at a time, in order), claims with leases (a claimed row comes back once
 * its lease ends), acks (delivered, retry, failed, skipped), and message.unread expanded at
 * its due time to the members still behind the message. */
#include "store_conformance.h"

static int claim(sc_t *t, int64_t now, store_outbox_claim_t *c)
{
    store_arena_t ar = sc_arena();
    *c = (store_outbox_claim_t){.limit = 10, .lease_ms = 1000, .counts = true};
    return sc_run_op(t, STORE_OP_OUTBOX_CLAIM, c, sizeof *c, &ar, now);
}

static void ack(sc_t *t, int64_t id, store_outbox_outcome_t outcome, int64_t due, int64_t now)
{
    store_outbox_result_t r = {.id = id, .outcome = outcome, .due_at = due};
    store_outbox_ack_t a = {.results = &r, .count = 1};
    CHECK_EQ_INT(sc_run_op(t, STORE_OP_OUTBOX_ACK, &a, sizeof a, NULL, now), STORE_OK);
}

/* Claims at now and expects exactly one row of that type; returns its id (0 when not). */
static int64_t claim_one(sc_t *t, int64_t now, store_outbox_type_t type, store_outbox_claim_t *c)
{
    CHECK_EQ_INT(claim(t, now, c), STORE_OK);
    CHECK_EQ_INT(c->count, 1);
    if (c->count != 1) return 0;
    CHECK_EQ_INT(c->rows[0].type, type);
    return c->rows[0].id;
}

static void outbox_on(sc_t *t, bool on)
{
    store_outbox_settings_t s = {.on = on, .unread_delay_ms = 5000};
    store_outbox_configure(&s);
    /* engines read it when they connect (PostgreSQL: a session setting) */
    sc_close(t, t->s);
    t->s = sc_open(t, NULL);
}

static void test_outbox_off(sc_t *t)
{
    char conv[ID_SIZE];
    store_message_insert_t m;
    sc_direct(t, "amy", "bob", conv);
    CHECK_EQ_INT(sc_send_at(t, conv, "amy", "hi", 2000, &m), STORE_OK);
    store_outbox_claim_t c;
    CHECK_EQ_INT(claim(t, 100000, &c), STORE_OK);
    CHECK_EQ_INT(c.count, 0);
    CHECK_EQ_INT(c.pending, 0);
}

static void test_outbox_events(sc_t *t)
{
    outbox_on(t, true);
    if (!t->s) return;
    char conv[ID_SIZE];
    store_message_insert_t m1, m2;
    store_mark_read_t r;
    store_outbox_claim_t c;
    sc_direct(t, "amy", "bob", conv);
    CHECK_EQ_INT(sc_send_at(t, conv, "amy", "first", 2000, &m1), STORE_OK);
    CHECK_EQ_INT(sc_send_at(t, conv, "amy", "second", 2100, &m2), STORE_OK);
    CHECK_EQ_INT(sc_mark(t, conv, "bob", m1.msg.id, 3000, &r), STORE_OK);
    /* a mark that does not move the watermark records nothing */
    CHECK_EQ_INT(sc_mark(t, conv, "bob", m1.msg.id, 3001, &r), STORE_OK);

    /* only the head of the conversation's queue is due */
    int64_t id = claim_one(t, 3500, STORE_OUTBOX_CONVERSATION_CREATED, &c);
    CHECK_EQ_INT(c.pending, 6); /* created, 2 messages, 1 read, 2 unread checks */
    if (c.count == 1) {
        CHECK(c.rows[0].conversation != NULL);
        if (c.rows[0].conversation) CHECK_EQ_INT(c.rows[0].conversation->member_count, 2);
        CHECK_EQ_INT(c.rows[0].attempts, 1);
        CHECK_EQ_INT(c.rows[0].created_at, 1000);
    }
    /* leased: not handed out again; the rest waits behind it */
    CHECK_EQ_INT(claim(t, 3600, &c), STORE_OK);
    CHECK_EQ_INT(c.count, 0);
    ack(t, id, STORE_OUTBOX_RETRY, 4000, 3700);
    CHECK_EQ_INT(claim(t, 3900, &c), STORE_OK);
    CHECK_EQ_INT(c.count, 0); /* its retry is not due yet, and the others still wait */
    CHECK_EQ_INT(claim_one(t, 4000, STORE_OUTBOX_CONVERSATION_CREATED, &c), id);
    if (c.count == 1) CHECK_EQ_INT(c.rows[0].attempts, 2);
    ack(t, id, STORE_OUTBOX_DELIVERED, 0, 4001);

    id = claim_one(t, 4100, STORE_OUTBOX_MESSAGE_CREATED, &c);
    if (c.count == 1) {
        CHECK(c.rows[0].message != NULL);
        if (c.rows[0].message)
            CHECK_MEM(c.rows[0].message->content.ptr, c.rows[0].message->content.len, "first");
        CHECK_EQ_INT(c.rows[0].seq, 1);
    }
    ack(t, id, STORE_OUTBOX_DELIVERED, 0, 4101);
    id = claim_one(t, 4200, STORE_OUTBOX_MESSAGE_CREATED, &c);
    if (c.count == 1) CHECK_EQ_INT(c.rows[0].seq, 2);
    ack(t, id, STORE_OUTBOX_DELIVERED, 0, 4201);
    id = claim_one(t, 4300, STORE_OUTBOX_MESSAGE_READ, &c);
    if (c.count == 1) {
        CHECK_MEM(c.rows[0].user.ptr, c.rows[0].user.len, "bob");
        CHECK_EQ_INT(c.rows[0].seq, 1);
        CHECK(strcmp(c.rows[0].message_id, m1.msg.id) == 0);
    }
    ack(t, id, STORE_OUTBOX_FAILED, 0, 4301);
    CHECK_EQ_INT(claim(t, 4400, &c), STORE_OK);
    CHECK_EQ_INT(c.count, 0);
    CHECK_EQ_INT(c.pending, 2);
    CHECK_EQ_INT(c.failed, 1);

    /* message.unread at its due time: m1 was read by bob (and amy sent it): nobody; m2: bob */
    CHECK_EQ_INT(claim(t, 7000, &c), STORE_OK);
    CHECK_EQ_INT(c.count, 0);
    CHECK_EQ_INT(c.pending, 1);
    id = claim_one(t, 7100, STORE_OUTBOX_MESSAGE_UNREAD, &c);
    if (c.count == 1) {
        CHECK_MEM(c.rows[0].user.ptr, c.rows[0].user.len, "bob");
        CHECK(strcmp(c.rows[0].message_id, m2.msg.id) == 0);
        CHECK_EQ_INT(c.rows[0].created_at, 7100);
    }
    /* not acked (the process died): handed out again once the lease ends */
    CHECK_EQ_INT(claim(t, 7500, &c), STORE_OK);
    CHECK_EQ_INT(c.count, 0);
    CHECK_EQ_INT(claim_one(t, 8100, STORE_OUTBOX_MESSAGE_UNREAD, &c), id);
    if (c.count == 1) CHECK_EQ_INT(c.rows[0].attempts, 2);
    ack(t, id, STORE_OUTBOX_SKIPPED, 0, 8101);
    ack(t, id, STORE_OUTBOX_DELIVERED, 0, 8102); /* unknown now: ignored */
    CHECK_EQ_INT(claim(t, 9000, &c), STORE_OK);
    CHECK_EQ_INT(c.count, 0);
    CHECK_EQ_INT(c.pending, 0);

    /* a group's creation is an event; a send that repeats a clientMsgId is not */
    store_group_create_t g = {.creator = STR_LIT("amy"),
                              .participants = (str_t[]){STR_LIT("bob"), STR_LIT("cat")},
                              .count = 2};
    store_arena_t ar = sc_arena();
    CHECK_EQ_INT(sc_group_create(t, &g, &ar, 10000), STORE_OK);
    id = claim_one(t, 10001, STORE_OUTBOX_CONVERSATION_CREATED, &c);
    if (c.count == 1) CHECK(strcmp(c.rows[0].conversation_id, g.conv.id) == 0);
    ack(t, id, STORE_OUTBOX_DELIVERED, 0, 10002);
    store_message_insert_t d = {.sender = STR_LIT("amy"),
                                .conversation_id = str_cstr(conv),
                                .content = STR_LIT("x"),
                                .client_msg_id = STR_LIT("c1")};
    ar = sc_arena();
    CHECK_EQ_INT(sc_message_insert(t, &d, &ar, 11000), STORE_OK);
    ar = sc_arena();
    CHECK_EQ_INT(sc_message_insert(t, &d, &ar, 11001), STORE_OK);
    CHECK(d.duplicate);
    CHECK_EQ_INT(claim(t, 11002, &c), STORE_OK);
    CHECK_EQ_INT(c.count, 1);
    CHECK_EQ_INT(c.pending, 2); /* one message.created, one unread check */
    outbox_on(t, false);
}

/* A backlog is claimed as a run behind its head; a retry in the middle sends the rest back. */
static void test_outbox_runs(sc_t *t)
{
    outbox_on(t, true);
    if (!t->s) return;
    char conv[ID_SIZE];
    store_message_insert_t m;
    sc_direct(t, "amy", "bob", conv);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(sc_send_at(t, conv, "amy", "x", 2000 + i, &m), STORE_OK);
    store_outbox_claim_t c = {.limit = 10, .run_max = 10, .lease_ms = 1000};
    store_arena_t ar = sc_arena();
    CHECK_EQ_INT(sc_run_op(t, STORE_OP_OUTBOX_CLAIM, &c, sizeof c, &ar, 3000), STORE_OK);
    CHECK_EQ_INT(c.count, 4);
    if (c.count == 4) {
        CHECK(!c.rows[0].follows && c.rows[1].follows && c.rows[2].follows && c.rows[3].follows);
        CHECK_EQ_INT(c.rows[0].type, STORE_OUTBOX_CONVERSATION_CREATED);
        for (int i = 1; i < 4; i++) {
            CHECK_EQ_INT(c.rows[i].type, STORE_OUTBOX_MESSAGE_CREATED);
            CHECK_EQ_INT(c.rows[i].seq, i);
            CHECK(c.rows[i].id > c.rows[i - 1].id);
        }
        store_outbox_result_t r[4] = {
            {.id = c.rows[0].id, .outcome = STORE_OUTBOX_DELIVERED},
            {.id = c.rows[1].id, .outcome = STORE_OUTBOX_RETRY, .due_at = 5000},
            {.id = c.rows[2].id, .outcome = STORE_OUTBOX_REQUEUE},
            {.id = c.rows[3].id, .outcome = STORE_OUTBOX_REQUEUE},
        };
        store_outbox_ack_t a = {.results = r, .count = 4};
        CHECK_EQ_INT(sc_run_op(t, STORE_OP_OUTBOX_ACK, &a, sizeof a, NULL, 3001), STORE_OK);
        int64_t second = c.rows[1].id, third = c.rows[2].id;
        CHECK_EQ_INT(claim(t, 4000, &c), STORE_OK);
        CHECK_EQ_INT(c.count, 0);
        CHECK_EQ_INT(c.pending, 6); /* 3 messages, 3 unread checks */
        CHECK_EQ_INT(claim_one(t, 5000, STORE_OUTBOX_MESSAGE_CREATED, &c), second);
        ack(t, second, STORE_OUTBOX_DELIVERED, 0, 5001);
        CHECK_EQ_INT(claim_one(t, 5002, STORE_OUTBOX_MESSAGE_CREATED, &c), third);
    }
    outbox_on(t, false);
}

/* Runs that fill the batch: the heads left over are not handed out, and come next time. */
static void test_outbox_runs_limit(sc_t *t)
{
    outbox_on(t, true);
    if (!t->s) return;
    const char *other[3] = {"bob", "cat", "dan"};
    for (int i = 0; i < 3; i++) {
        char conv[ID_SIZE];
        store_message_insert_t m;
        sc_direct(t, "amy", other[i], conv);
        CHECK_EQ_INT(sc_send_at(t, conv, "amy", "x", 2000, &m), STORE_OK);
    }
    store_outbox_claim_t c = {.limit = 4, .run_max = 10, .lease_ms = 1000};
    store_arena_t ar = sc_arena();
    CHECK_EQ_INT(sc_run_op(t, STORE_OP_OUTBOX_CLAIM, &c, sizeof c, &ar, 3000), STORE_OK);
    CHECK_EQ_INT(c.count, 4); /* two heads with their runs */
    c = (store_outbox_claim_t){.limit = 10, .run_max = 10, .lease_ms = 1000};
    ar = sc_arena();
    CHECK_EQ_INT(sc_run_op(t, STORE_OP_OUTBOX_CLAIM, &c, sizeof c, &ar, 3001), STORE_OK);
    CHECK_EQ_INT(c.count, 2); /* the third conversation, not leased by the first claim */
    if (c.count == 2) {
        CHECK_EQ_INT(c.rows[0].attempts, 1);
        CHECK(c.rows[1].follows);
    }
    outbox_on(t, false);
}

const sc_case_t sc_cases_outbox[] = {
    {"outbox: runs filling a claim leave the other heads unclaimed", test_outbox_runs_limit},
    {"outbox: a backlog in runs, a retry sends the rest back", test_outbox_runs},
    {"outbox records nothing while off", test_outbox_off},
    {"outbox: events in order per conversation, leases, acks, unread", test_outbox_events},
    {NULL, NULL},
};
