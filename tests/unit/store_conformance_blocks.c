/* Conformance: blocks between users (issue 16): BLOCK_SET / BLOCKS_LIST / BLOCK_CHECK, the
 * send refusal inside MESSAGE_INSERT (alone and in a batch), and presence contacts. */
#include <stdlib.h>

#include "store_conformance.h"

static int block(sc_t *t, const char *blocker, const char *blocked, bool on, store_block_set_t *op)
{
    *op = (store_block_set_t){.blocker = str_cstr(blocker), .blocked = str_cstr(blocked), .on = on};
    return sc_block_set_(t, op, NULL, 5000);
}

static void test_block_set(sc_t *t)
{
    store_block_set_t b;
    store_arena_t ar = sc_arena();
    CHECK_EQ_INT(block(t, "amy", "amy", true, &b), STORE_E_INVALID); /* yourself */
    CHECK_EQ_INT(block(t, "amy", "no|pe", true, &b), STORE_E_INVALID);
    CHECK_EQ_INT(block(t, "amy", "", true, &b), STORE_E_INVALID);
    /* An id that never connected may be blocked. */
    CHECK_EQ_INT(block(t, "amy", "zed", true, &b), STORE_OK);
    CHECK(b.changed);
    CHECK_EQ_INT(b.created_at, 5000);
    CHECK_EQ_INT(block(t, "amy", "bob", true, &b), STORE_OK);
    store_block_set_t again = {.blocker = STR_LIT("amy"), .blocked = STR_LIT("zed"), .on = true};
    CHECK_EQ_INT(sc_block_set_(t, &again, NULL, 9000), STORE_OK); /* idempotent */
    CHECK(!again.changed);
    CHECK_EQ_INT(again.created_at, 5000);

    store_blocks_list_t l = {.blocker = STR_LIT("amy")};
    CHECK_EQ_INT(sc_blocks_list_(t, &l, &ar, 0), STORE_OK);
    CHECK_EQ_INT(l.count, 2);
    if (l.count == 2) {
        CHECK_MEM(l.blocks[0].user_id.ptr, l.blocks[0].user_id.len, "bob");
        CHECK_MEM(l.blocks[1].user_id.ptr, l.blocks[1].user_id.len, "zed");
        CHECK_EQ_INT(l.blocks[1].created_at, 5000);
    }
    CHECK(!l.has_more);
    l = (store_blocks_list_t){.blocker = STR_LIT("amy"), .limit = 1};
    CHECK_EQ_INT(sc_blocks_list_(t, &l, &ar, 0), STORE_OK);
    CHECK_EQ_INT(l.count, 1);
    CHECK(l.has_more);
    l = (store_blocks_list_t){.blocker = STR_LIT("amy"), .after = STR_LIT("bob"), .limit = 1};
    CHECK_EQ_INT(sc_blocks_list_(t, &l, &ar, 0), STORE_OK);
    CHECK_EQ_INT(l.count, 1);
    if (l.count == 1) CHECK_MEM(l.blocks[0].user_id.ptr, l.blocks[0].user_id.len, "zed");
    CHECK(!l.has_more);
    l = (store_blocks_list_t){.blocker = STR_LIT("bob")};
    CHECK_EQ_INT(sc_blocks_list_(t, &l, &ar, 0), STORE_OK);
    CHECK_EQ_INT(l.count, 0);

    store_block_check_t c = {.a = STR_LIT("bob"), .b = STR_LIT("amy")};
    CHECK_EQ_INT(sc_block_check_(t, &c, NULL, 0), STORE_OK);
    CHECK(!c.a_blocks_b && c.b_blocks_a);

    CHECK_EQ_INT(block(t, "amy", "zed", false, &b), STORE_OK);
    CHECK(b.changed);
    CHECK_EQ_INT(block(t, "amy", "zed", false, &b), STORE_OK);
    CHECK(!b.changed);
    c = (store_block_check_t){.a = STR_LIT("amy"), .b = STR_LIT("zed")};
    CHECK_EQ_INT(sc_block_check_(t, &c, NULL, 0), STORE_OK);
    CHECK(!c.a_blocks_b && !c.b_blocks_a);
}

static int send_to(sc_t *t, const char *sender, const char *recipient, const char *cmid,
                   store_message_insert_t *op)
{
    store_arena_t ar = sc_arena();
    *op = (store_message_insert_t){.sender = str_cstr(sender),
                                   .recipient = str_cstr(recipient),
                                   .content = STR_LIT("hello"),
                                   .client_msg_id = cmid ? str_cstr(cmid) : STR_NULL};
    return sc_message_insert(t, op, &ar, 3000);
}

static void test_block_send(sc_t *t)
{
    char d[ID_SIZE], grp[ID_SIZE];
    store_message_insert_t m;
    store_block_set_t b;
    sc_direct(t, "amy", "bob", d);
    CHECK_EQ_INT(sc_send(t, d, "bob", "one"), 1);
    CHECK_EQ_INT(sc_send(t, d, "amy", "two"), 2); /* SQLite: the cache now knows d */
    CHECK_EQ_INT(send_to(t, "bob", "amy", "c-1", &m), STORE_OK);
    str_t parts[] = {STR_LIT("bob"), STR_LIT("cat")};
    store_arena_t ar = sc_arena();
    store_group_create_t g = {.creator = STR_LIT("amy"), .participants = parts, .count = 2};
    CHECK_EQ_INT(sc_group_create(t, &g, &ar, 1), STORE_OK);
    memcpy(grp, g.conv.id, ID_SIZE);

    CHECK_EQ_INT(block(t, "amy", "bob", true, &b), STORE_OK);
    /* Both ways, by conversation id and by recipient; nothing stored. */
    CHECK_EQ_INT(sc_send_at(t, d, "bob", "three", 4000, &m), STORE_E_BLOCKED);
    CHECK_EQ_INT(sc_send_at(t, d, "amy", "three", 4000, &m), STORE_E_BLOCKED);
    CHECK_EQ_INT(send_to(t, "bob", "amy", NULL, &m), STORE_E_BLOCKED);
    CHECK_EQ_INT(send_to(t, "bob", "amy", "c-2", &m), STORE_E_BLOCKED);
    CHECK_EQ_INT(sc_last_seq(t, d, NULL), 3);
    /* A retry of a send stored before the block answers what was stored. */
    CHECK_EQ_INT(send_to(t, "bob", "amy", "c-1", &m), STORE_OK);
    CHECK(m.duplicate);
    CHECK_EQ_INT(m.msg.seq, 3);
    /* A refused first message creates no conversation. */
    CHECK_EQ_INT(block(t, "dan", "amy", true, &b), STORE_OK);
    CHECK_EQ_INT(send_to(t, "amy", "dan", NULL, &m), STORE_E_BLOCKED);
    store_conversations_list_t cl = {.user = STR_LIT("dan")};
    ar = sc_arena();
    CHECK_EQ_INT(sc_conversations_list(t, &cl, &ar), STORE_OK);
    CHECK_EQ_INT(cl.count, 0);
    /* Group messages still flow. */
    CHECK_EQ_INT(sc_send(t, grp, "bob", "in the group"), 1);
    CHECK_EQ_INT(sc_send(t, grp, "amy", "me too"), 2);
    /* A non-member is still told it is not one. */
    CHECK_EQ_INT(sc_send_at(t, d, "cat", "x", 4000, &m), STORE_E_FORBIDDEN);

    /* In one writer batch: a block takes effect for the sends after it, not before. */
    static char arenas[5][1024];
    store_req_t r[5];
    CHECK_EQ_INT(block(t, "amy", "bob", false, &b), STORE_OK);
    for (int i = 0; i < 5; i++) {
        r[i] = (store_req_t){.op = STORE_OP_MESSAGE_INSERT,
                             .arena = {arenas[i], sizeof arenas[i], 0, 0}};
        r[i].u.message_insert = (store_message_insert_t){
            .sender = STR_LIT("bob"), .conversation_id = str_cstr(d), .content = STR_LIT("b")};
    }
    r[1] = (store_req_t){.op = STORE_OP_BLOCK_SET};
    r[1].u.block_set =
        (store_block_set_t){.blocker = STR_LIT("amy"), .blocked = STR_LIT("bob"), .on = true};
    r[3] = (store_req_t){.op = STORE_OP_BLOCK_SET};
    r[3].u.block_set = (store_block_set_t){.blocker = STR_LIT("amy"), .blocked = STR_LIT("bob")};
    sc_run_batch(t, t->s, (store_req_t *[]){&r[0], &r[1], &r[2], &r[3], &r[4]}, 5);
    CHECK_EQ_INT(r[0].status, STORE_OK);
    CHECK_EQ_INT(r[0].u.message_insert.msg.seq, 4);
    CHECK_EQ_INT(r[1].status, STORE_OK);
    CHECK_EQ_INT(r[2].status, STORE_E_BLOCKED);
    CHECK_EQ_INT(r[3].status, STORE_OK);
    CHECK(r[3].u.block_set.changed);
    CHECK_EQ_INT(r[4].status, STORE_OK);
    CHECK_EQ_INT(r[4].u.message_insert.msg.seq, 5);
    CHECK_EQ_INT(sc_last_seq(t, d, NULL), 5);
}

static void test_block_presence(sc_t *t)
{
    char d1[ID_SIZE], d2[ID_SIZE], buf[256];
    store_block_set_t b;
    sc_direct(t, "me", "bob", d1);
    sc_direct(t, "me", "zoe", d2);
    sc_send(t, d1, "me", "hi");
    sc_send(t, d1, "bob", "hi");
    sc_send(t, d2, "me", "hi");
    sc_send(t, d2, "zoe", "hi");
    CHECK(strcmp(sc_contacts_of(t, "me", STORE_CONTACTS_AUDIENCE, buf, sizeof buf), "bob,zoe") ==
          0);
    CHECK_EQ_INT(block(t, "bob", "me", true, &b), STORE_OK);
    /* Neither sees the other, whoever blocked; ALL (who shares a conversation) is unchanged. */
    CHECK(strcmp(sc_contacts_of(t, "me", STORE_CONTACTS_AUDIENCE, buf, sizeof buf), "zoe") == 0);
    CHECK(strcmp(sc_contacts_of(t, "me", STORE_CONTACTS_VISIBLE, buf, sizeof buf), "zoe") == 0);
    CHECK(strcmp(sc_contacts_of(t, "bob", STORE_CONTACTS_AUDIENCE, buf, sizeof buf), "") == 0);
    CHECK(strcmp(sc_contacts_of(t, "bob", STORE_CONTACTS_VISIBLE, buf, sizeof buf), "") == 0);
    CHECK(strcmp(sc_contacts_of(t, "me", STORE_CONTACTS_ALL, buf, sizeof buf), "bob,zoe") == 0);
    CHECK_EQ_INT(block(t, "bob", "me", false, &b), STORE_OK);
    CHECK(strcmp(sc_contacts_of(t, "bob", STORE_CONTACTS_VISIBLE, buf, sizeof buf), "me") == 0);
}

/* STORE_BLOCKS_MAX blocks, then one more is STORE_E_LIMIT (an existing one stays OK). */
static void test_block_cap(sc_t *t)
{
    size_t n = STORE_BLOCKS_MAX;
    store_req_t *r = calloc(n, sizeof *r);
    char(*ids)[16] = calloc(n, sizeof *ids);
    store_req_t **p = calloc(n, sizeof *p);
    CHECK(r && ids && p);
    if (!r || !ids || !p) goto out;
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "u%05zu", i);
        r[i] = (store_req_t){.op = STORE_OP_BLOCK_SET};
        r[i].u.block_set =
            (store_block_set_t){.blocker = STR_LIT("amy"), .blocked = str_cstr(ids[i]), .on = true};
        p[i] = &r[i];
    }
    sc_run_batch(t, t->s, p, n);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) ok += r[i].status == STORE_OK;
    CHECK_EQ_INT(ok, n);
    store_block_set_t b;
    CHECK_EQ_INT(block(t, "amy", "one-more", true, &b), STORE_E_LIMIT);
    CHECK_EQ_INT(block(t, "amy", "u00007", true, &b), STORE_OK);
    CHECK_EQ_INT(block(t, "bob", "one-more", true, &b), STORE_OK); /* per user */
    CHECK_EQ_INT(block(t, "amy", "u00007", false, &b), STORE_OK);
    CHECK_EQ_INT(block(t, "amy", "one-more", true, &b), STORE_OK);
out:
    free(r);
    free(ids);
    free(p);
}

static void unread_of(sc_t *t, const char *user, int64_t total, int64_t convs)
{
    store_unread_total_t u = {.user = str_cstr(user)};
    CHECK_EQ_INT(sc_unread_total_(t, &u, NULL, 0), STORE_OK);
    CHECK_EQ_INT(u.total, total);
    CHECK_EQ_INT(u.conversations, convs);
}

static void test_unread_total(sc_t *t)
{
    char d1[ID_SIZE], d2[ID_SIZE];
    store_message_insert_t m;
    store_mark_read_t mr;
    unread_of(t, "amy", 0, 0);
    sc_direct(t, "amy", "bob", d1);
    sc_direct(t, "amy", "cat", d2);
    unread_of(t, "amy", 0, 0);
    sc_send(t, d1, "bob", "1");
    sc_send(t, d1, "bob", "2");
    sc_send(t, d1, "amy", "mine: not unread for amy");
    CHECK_EQ_INT(sc_send_at(t, d2, "cat", "3", 2100, &m), STORE_OK);
    unread_of(t, "amy", 3, 2);
    unread_of(t, "bob", 1, 1);
    unread_of(t, "cat", 0, 0);
    CHECK_EQ_INT(sc_mark(t, d2, "amy", m.msg.id, 3000, &mr), STORE_OK);
    unread_of(t, "amy", 2, 1);
    /* One conversation's count and the store's position, from the same read (issue 17). */
    store_unread_total_t u = {.user = STR_LIT("amy"), .conversation_id = str_cstr(d1)};
    CHECK_EQ_INT(sc_unread_total_(t, &u, NULL, 0), STORE_OK);
    CHECK_EQ_INT(u.total, 2);
    CHECK_EQ_INT(u.conv_unread, 2);
    CHECK(u.last_pos >= m.msg.pos && m.msg.pos > 0);
    u = (store_unread_total_t){.user = STR_LIT("amy"), .conversation_id = str_cstr(d2)};
    CHECK_EQ_INT(sc_unread_total_(t, &u, NULL, 0), STORE_OK);
    CHECK_EQ_INT(u.conv_unread, 0);
    CHECK_EQ_INT(u.conversations, 1);
    int64_t last = u.last_pos;
    CHECK_EQ_INT(sc_send_at(t, d2, "cat", "4", 3100, &m), STORE_OK);
    u = (store_unread_total_t){.user = STR_LIT("amy"), .conversation_id = str_cstr(d2)};
    CHECK_EQ_INT(sc_unread_total_(t, &u, NULL, 0), STORE_OK);
    CHECK_EQ_INT(u.conv_unread, 1);
    CHECK(u.last_pos >= m.msg.pos && m.msg.pos > last);
    CHECK_EQ_INT(sc_unread_total_(t, &(store_unread_total_t){.user = STR_LIT("a|b")}, NULL, 0),
                 STORE_E_INVALID);
}

const sc_case_t sc_cases_blocks[] = {
    {"unread_total", test_unread_total}, {"block_set", test_block_set},
    {"block_send", test_block_send},     {"block_presence", test_block_presence},
    {"block_cap", test_block_cap},       {NULL, NULL},
};
