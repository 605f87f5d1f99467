/* Conformance cases: direct and group conversations, read receipts and unread counts,
 * conversation lists (store_conformance.h). */
#include "store_conformance.h"

static void test_direct_open(sc_t *t)
{
    sc_upsert(t, "alice", "Alice");
    store_arena_t ar = sc_arena();
    store_direct_open_t op = {.user = STR_LIT("alice"), .other = STR_LIT("bob")};
    CHECK_EQ_INT(sc_direct_open(t, &op, &ar, 1000), STORE_OK);
    CHECK(op.created);
    CHECK(id_valid(str_cstr(op.conv.id)));
    CHECK_EQ_INT(op.conv.type, STORE_CONV_DIRECT);
    CHECK(op.conv.title.ptr == NULL);
    CHECK_EQ_INT(op.conv.member_count, 2);
    CHECK_EQ_INT(op.conv.last_seq, 0);
    CHECK(op.conv.last_message == NULL);
    CHECK_EQ_INT(op.conv.created_at, 1000);
    CHECK_EQ_INT(op.conv.updated_at, 1000);
    char id[ID_SIZE];
    memcpy(id, op.conv.id, ID_SIZE);

    /* Found, not created, from either side. */
    store_direct_open_t again = {.user = STR_LIT("bob"), .other = STR_LIT("alice")};
    CHECK_EQ_INT(sc_direct_open(t, &again, &ar, 2000), STORE_OK);
    CHECK(!again.created);
    CHECK(strcmp(again.conv.id, id) == 0);
    CHECK_EQ_INT(again.conv.created_at, 1000);

    /* bob had no user row: one was made so that membership can reference it. */
    str_t bob = STR_LIT("bob");
    store_users_get_t get = {.ids = &bob, .count = 1};
    CHECK_EQ_INT(sc_users_get(t, &get, &ar), STORE_OK);
    CHECK_EQ_INT(get.found, 1);

    /* Prefix-related ids get distinct conversations. */
    store_direct_open_t other = {.user = STR_LIT("alice"), .other = STR_LIT("bobby")};
    CHECK_EQ_INT(sc_direct_open(t, &other, &ar, 3000), STORE_OK);
    CHECK(other.created);
    CHECK(strcmp(other.conv.id, id) != 0);

    store_direct_open_t self = {.user = STR_LIT("alice"), .other = STR_LIT("alice")};
    CHECK_EQ_INT(sc_direct_open(t, &self, &ar, 1), STORE_E_INVALID);
    store_direct_open_t bad = {.user = STR_LIT("alice"), .other = STR_LIT("a|b")};
    CHECK_EQ_INT(sc_direct_open(t, &bad, &ar, 1), STORE_E_INVALID);
}

static void test_group_create(sc_t *t)
{
    store_arena_t ar = sc_arena();
    str_t parts[] = {STR_LIT("bob"), STR_LIT("carol"), STR_LIT("bob"), STR_LIT("alice")};
    store_group_create_t g = {.creator = STR_LIT("alice"),
                              .participants = parts,
                              .count = 4,
                              .title = STR_LIT("Flat 4B")};
    CHECK_EQ_INT(sc_group_create(t, &g, &ar, 1000), STORE_OK);
    CHECK_EQ_INT(g.conv.type, STORE_CONV_GROUP);
    CHECK_EQ_INT(g.conv.member_count, 3);
    CHECK_MEM(g.conv.title.ptr, g.conv.title.len, "Flat 4B");
    int seen = 0;
    for (size_t i = 0; i < g.conv.member_count; i++) {
        str_t u = g.conv.members[i].user_id;
        seen |= str_eq_cstr(u, "alice")   ? 1
                : str_eq_cstr(u, "bob")   ? 2
                : str_eq_cstr(u, "carol") ? 4
                                          : 8;
        CHECK_EQ_INT(g.conv.members[i].read_seq, 0);
        CHECK_EQ_INT(g.conv.members[i].joined_at, 1000);
    }
    CHECK_EQ_INT(seen, 7);

    /* Two groups of the same people are two conversations. */
    store_group_create_t g2 = {
        .creator = STR_LIT("alice"), .participants = parts, .count = 2, .title = STR_NULL};
    CHECK_EQ_INT(sc_group_create(t, &g2, &ar, 1000), STORE_OK);
    CHECK(g2.conv.title.ptr == NULL);
    CHECK(strcmp(g2.conv.id, g.conv.id) != 0);

    store_group_create_t alone = {
        .creator = STR_LIT("alice"), .participants = parts + 3, .count = 1, .title = STR_NULL};
    CHECK_EQ_INT(sc_group_create(t, &alone, &ar, 1), STORE_E_INVALID);
    alone = (store_group_create_t){
        .creator = STR_LIT("alice"), .participants = NULL, .count = 0, .title = STR_NULL};
    CHECK_EQ_INT(sc_group_create(t, &alone, &ar, 1), STORE_E_INVALID);
    str_t badp[] = {STR_LIT("ok"), STR_LIT("no way")};
    store_group_create_t bad = {
        .creator = STR_LIT("alice"), .participants = badp, .count = 2, .title = STR_NULL};
    CHECK_EQ_INT(sc_group_create(t, &bad, &ar, 1), STORE_E_INVALID);

    /* STORE_GROUP_MAX members in all, creator included. */
    static char names[STORE_GROUP_MAX][16];
    static str_t many[STORE_GROUP_MAX];
    for (int i = 0; i < STORE_GROUP_MAX; i++) {
        snprintf(names[i], sizeof names[i], "m%d", i);
        many[i] = str_cstr(names[i]);
    }
    store_group_create_t big = {.creator = STR_LIT("alice"),
                                .participants = many,
                                .count = STORE_GROUP_MAX,
                                .title = STR_NULL};
    CHECK_EQ_INT(sc_group_create(t, &big, &ar, 1), STORE_E_INVALID);
    big.count = STORE_GROUP_MAX - 1;
    CHECK_EQ_INT(sc_group_create(t, &big, &ar, 1), STORE_OK);
    CHECK_EQ_INT(big.conv.member_count, STORE_GROUP_MAX);
    char title[STORE_NAME_MAX + 1];
    memset(title, 't', sizeof title);
    bad = (store_group_create_t){.creator = STR_LIT("alice"),
                                 .participants = parts,
                                 .count = 1,
                                 .title = str_make(title, sizeof title)};
    CHECK_EQ_INT(sc_group_create(t, &bad, &ar, 1), STORE_E_INVALID);

    /* conversation_get: members only when a requester is given. */
    store_conversation_get_t cg = {.id = str_cstr(g.conv.id), .requester = STR_LIT("carol")};
    CHECK_EQ_INT(sc_conversation_get(t, &cg, &ar), STORE_OK);
    CHECK_EQ_INT(cg.conv.member_count, 3);
    cg.requester = STR_LIT("mallory");
    CHECK_EQ_INT(sc_conversation_get(t, &cg, &ar), STORE_E_FORBIDDEN);
    cg.requester = STR_NULL;
    CHECK_EQ_INT(sc_conversation_get(t, &cg, &ar), STORE_OK);
    CHECK_EQ_INT(cg.conv.unread_count, 0);
    cg.id = STR_LIT("65a0000000000000000000ff");
    CHECK_EQ_INT(sc_conversation_get(t, &cg, &ar), STORE_E_NOT_FOUND);
    cg.id = STR_LIT("nope");
    CHECK_EQ_INT(sc_conversation_get(t, &cg, &ar), STORE_E_INVALID);
}

static void test_mark_read(sc_t *t)
{
    char conv[ID_SIZE], ids[8][ID_SIZE];
    sc_direct(t, "alice", "bob", conv);
    store_message_insert_t op;
    /* alice 1-5, bob 6, alice 7 */
    for (int i = 1; i <= 7; i++) {
        CHECK_EQ_INT(sc_send_at(t, conv, i == 6 ? "bob" : "alice", "m", 1000 + i, &op), STORE_OK);
        memcpy(ids[i], op.msg.id, ID_SIZE);
    }
    store_mark_read_t mr;
    CHECK_EQ_INT(sc_mark(t, conv, "bob", ids[5], 9000, &mr), STORE_OK);
    CHECK(mr.moved);
    CHECK_EQ_INT(mr.seq, 5);
    CHECK_EQ_INT(mr.message_seq, 5);
    CHECK_EQ_INT(mr.read_at, 9000);
    CHECK_EQ_INT(mr.unread_count, 1); /* 7; 6 is bob's own */
    CHECK(strcmp(mr.conv_id, conv) == 0);

    /* Never backward. */
    CHECK_EQ_INT(sc_mark(t, conv, "bob", ids[3], 9500, &mr), STORE_OK);
    CHECK(!mr.moved);
    CHECK_EQ_INT(mr.seq, 5);
    CHECK_EQ_INT(mr.message_seq, 3);
    CHECK_EQ_INT(mr.read_at, 9000);
    CHECK_EQ_INT(mr.unread_count, 1);
    CHECK_EQ_INT(sc_mark(t, conv, "bob", ids[5], 9600, &mr), STORE_OK);
    CHECK(!mr.moved);
    CHECK_EQ_INT(mr.read_at, 9000);

    /* read/readAt on messages: alice's 1-5 read at 9000, 6 (bob's own) and 7 unread. */
    store_arena_t ar = sc_arena();
    store_messages_page_t p = {.conversation_id = str_cstr(conv), .requester = STR_LIT("alice")};
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, 7);
    for (size_t i = 0; i < p.count; i++)
        CHECK_EQ_INT(p.msgs[i].read_at, p.msgs[i].seq <= 5 ? 9000 : 0);

    /* alice reads up to 6: bob's message 6 becomes read; her own 7 stays unread. Marking
     * without a conversation id (the REST route) finds it from the message. */
    mr = (store_mark_read_t){.user = STR_LIT("alice"), .message_id = str_cstr(ids[7])};
    CHECK_EQ_INT(sc_mark_read(t, &mr, 9700), STORE_OK);
    CHECK(mr.moved);
    CHECK_EQ_INT(mr.seq, 7);
    CHECK_EQ_INT(mr.unread_count, 0);
    CHECK(strcmp(mr.conv_id, conv) == 0);
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.msgs[5].read_at, 9700);
    CHECK_EQ_INT(p.msgs[6].read_at, 0);
    CHECK_EQ_INT(p.msgs[0].read_at, 9000);

    /* bob catches up later: message 7 read at that time, earlier ones keep their time. */
    CHECK_EQ_INT(sc_mark(t, conv, "bob", ids[7], 9900, &mr), STORE_OK);
    CHECK_EQ_INT(mr.unread_count, 0);
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.msgs[6].read_at, 9900);
    CHECK_EQ_INT(p.msgs[4].read_at, 9000);

    /* Conversation view: watermarks per member, unread for the requester. */
    store_conversation_get_t cg = {.id = str_cstr(conv), .requester = STR_LIT("bob")};
    CHECK_EQ_INT(sc_conversation_get(t, &cg, &ar), STORE_OK);
    CHECK_EQ_INT(cg.conv.read_seq, 7);
    CHECK_EQ_INT(cg.conv.unread_count, 0);

    /* Refusals. */
    char other[ID_SIZE];
    sc_direct(t, "alice", "carol", other);
    CHECK_EQ_INT(sc_mark(t, other, "bob", ids[5], 1, &mr), STORE_E_NOT_FOUND); /* wrong conv */
    CHECK_EQ_INT(sc_mark(t, conv, "carol", ids[5], 1, &mr), STORE_E_FORBIDDEN);
    CHECK_EQ_INT(sc_mark(t, conv, "bob", "65a0000000000000000000ff", 1, &mr), STORE_E_NOT_FOUND);
    CHECK_EQ_INT(sc_mark(t, conv, "bob", "bogus", 1, &mr), STORE_E_INVALID);
    CHECK_EQ_INT(sc_mark(t, "bogus", "bob", ids[1], 1, &mr), STORE_E_INVALID);
    CHECK_EQ_INT(sc_mark(t, conv, "", ids[1], 1, &mr), STORE_E_INVALID);
    CHECK(!mr.moved);
}

static void test_group_read_rule(sc_t *t)
{
    char ids[4][ID_SIZE];
    store_arena_t ar = sc_arena();
    str_t parts[] = {STR_LIT("b"), STR_LIT("c")};
    store_group_create_t g = {
        .creator = STR_LIT("a"), .participants = parts, .count = 2, .title = STR_LIT("g")};
    CHECK_EQ_INT(sc_group_create(t, &g, &ar, 1), STORE_OK);
    char conv[ID_SIZE];
    memcpy(conv, g.conv.id, ID_SIZE);
    store_message_insert_t op;
    for (int i = 1; i <= 3; i++) {
        CHECK_EQ_INT(sc_send_at(t, conv, "a", "m", 10 + i, &op), STORE_OK);
        memcpy(ids[i], op.msg.id, ID_SIZE);
    }
    store_mark_read_t mr;
    CHECK_EQ_INT(sc_mark(t, conv, "b", ids[2], 100, &mr), STORE_OK);
    CHECK_EQ_INT(mr.unread_count, 1);
    CHECK_EQ_INT(sc_mark(t, conv, "c", ids[3], 200, &mr), STORE_OK);
    CHECK_EQ_INT(mr.unread_count, 0);
    /* Read as soon as any other member read it; readAt is that first read. */
    store_messages_page_t p = {.conversation_id = str_cstr(conv)};
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, 3);
    CHECK_EQ_INT(p.msgs[0].read_at, 100);
    CHECK_EQ_INT(p.msgs[1].read_at, 100);
    CHECK_EQ_INT(p.msgs[2].read_at, 200);
    /* The sender reading its own messages marks nothing read. */
    CHECK_EQ_INT(sc_send_at(t, conv, "a", "m", 300, &op), STORE_OK);
    CHECK_EQ_INT(sc_mark(t, conv, "a", op.msg.id, 400, &mr), STORE_OK);
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.msgs[3].read_at, 0);
    /* Unread counts per member. */
    store_conversation_get_t cg = {.id = str_cstr(conv), .requester = STR_LIT("b")};
    CHECK_EQ_INT(sc_conversation_get(t, &cg, &ar), STORE_OK);
    CHECK_EQ_INT(cg.conv.unread_count, 2);
    cg.requester = STR_LIT("a");
    CHECK_EQ_INT(sc_conversation_get(t, &cg, &ar), STORE_OK);
    CHECK_EQ_INT(cg.conv.unread_count, 0);
}

static void test_conversations_list(sc_t *t)
{
    char convs[6][ID_SIZE];
    const char *others[] = {"u0", "u1", "u2", "u3", "u4"};
    store_message_insert_t op;
    for (int i = 0; i < 5; i++) {
        sc_direct(t, "me", others[i], convs[i]);
        /* Activity: u2 newest, then u4, u0, and u1/u3 tied at the same millisecond. */
        static const int64_t at[] = {3000, 2000, 5000, 2000, 4000};
        CHECK_EQ_INT(sc_send_at(t, convs[i], others[i], "hello", at[i], &op), STORE_OK);
    }
    sc_direct(t, "u0", "u1", convs[5]); /* not mine */
    store_mark_read_t mr;
    CHECK_EQ_INT(sc_mark(t, convs[0], "me", op.msg.id, 1, &mr), STORE_E_NOT_FOUND);

    const char *order[5];
    size_t n = 0;
    char cursor[STORE_CURSOR_LEN + 1] = "";
    int pages = 0;
    do {
        store_arena_t ar = sc_arena();
        store_conversations_list_t l = {
            .user = STR_LIT("me"), .cursor = str_cstr(cursor), .limit = 2};
        CHECK_EQ_INT(sc_conversations_list(t, &l, &ar), STORE_OK);
        CHECK(l.count <= 2);
        for (size_t i = 0; i < l.count && n < 5; i++) {
            const store_conversation_t *c = &l.convs[i];
            CHECK(c->last_message != NULL);
            CHECK_EQ_INT(c->unread_count, 1);
            CHECK_EQ_INT(c->member_count, 2);
            for (int k = 0; k < 5; k++)
                if (strcmp(c->id, convs[k]) == 0) order[n] = others[k];
            n++;
        }
        memcpy(cursor, l.next_cursor, sizeof cursor);
        CHECK(cursor[0] == '\0' || strlen(cursor) == STORE_CURSOR_LEN);
        pages++;
    } while (cursor[0] && pages < 10);
    CHECK_EQ_INT(pages, 3);
    CHECK_EQ_INT(n, 5);
    if (n == 5) {
        CHECK(strcmp(order[0], "u2") == 0);
        CHECK(strcmp(order[1], "u4") == 0);
        CHECK(strcmp(order[2], "u0") == 0);
        /* The tie is broken by id (descending), the same way on every page. */
        bool tie = (strcmp(order[3], "u1") == 0 && strcmp(order[4], "u3") == 0) ||
                   (strcmp(order[3], "u3") == 0 && strcmp(order[4], "u1") == 0);
        CHECK(tie);
    }

    /* unreadCount follows the watermark; lastMessage is the newest. */
    store_arena_t ar = sc_arena();
    store_conversations_list_t l = {.user = STR_LIT("me"), .cursor = STR_NULL, .limit = 1};
    CHECK_EQ_INT(sc_conversations_list(t, &l, &ar), STORE_OK);
    CHECK_EQ_INT(l.count, 1);
    char lastid[ID_SIZE];
    memcpy(lastid, l.convs[0].last_message->id, ID_SIZE);
    CHECK_EQ_INT(sc_mark(t, convs[2], "me", lastid, 6000, &mr), STORE_OK);
    CHECK_EQ_INT(sc_send_at(t, convs[2], "me", "reply", 7000, &op), STORE_OK);
    CHECK_EQ_INT(sc_conversations_list(t, &l, &ar), STORE_OK);
    CHECK(strcmp(l.convs[0].id, convs[2]) == 0);
    CHECK_EQ_INT(l.convs[0].unread_count, 0);
    CHECK_EQ_INT(l.convs[0].read_seq, 1);
    CHECK_EQ_INT(l.convs[0].updated_at, 7000);
    CHECK_MEM(l.convs[0].last_message->content.ptr, l.convs[0].last_message->content.len, "reply");
    CHECK(l.next_cursor[0] != '\0');

    /* A conversation that got a message after the sender's clock went back stays in place. */
    CHECK_EQ_INT(sc_send_at(t, convs[2], "me", "late", 100, &op), STORE_OK);
    CHECK_EQ_INT(sc_conversations_list(t, &l, &ar), STORE_OK);
    CHECK_EQ_INT(l.convs[0].updated_at, 7000);

    /* Empty and refused. */
    l = (store_conversations_list_t){.user = STR_LIT("stranger"), .cursor = STR_NULL, .limit = 10};
    CHECK_EQ_INT(sc_conversations_list(t, &l, &ar), STORE_OK);
    CHECK_EQ_INT(l.count, 0);
    CHECK_EQ_INT(l.next_cursor[0], '\0');
    const char *bad[] = {"x", "0000000000000064", "000000000000006465a0000000000000000000zz",
                         "ffffffffffffffff65a000000000000000000001",
                         "000000000000006465A000000000000000000001"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        l = (store_conversations_list_t){
            .user = STR_LIT("me"), .cursor = str_cstr(bad[i]), .limit = 10};
        CHECK_EQ_INT(sc_conversations_list(t, &l, &ar), STORE_E_INVALID);
    }
    l = (store_conversations_list_t){.user = STR_LIT("bad user"), .cursor = STR_NULL, .limit = 10};
    CHECK_EQ_INT(sc_conversations_list(t, &l, &ar), STORE_E_INVALID);
    store_arena_t none = {0};
    l = (store_conversations_list_t){.user = STR_LIT("me"), .cursor = STR_NULL, .limit = 10};
    CHECK_EQ_INT(sc_conversations_list(t, &l, &none), STORE_E_NOSPACE);
    /* Cut short by a small arena: a valid cursor continues where it stopped. */
    static char small[sizeof(store_conversation_t) * 2 + 700];
    store_arena_t sa = {small, sizeof small, 0, 0};
    CHECK_EQ_INT(sc_conversations_list(t, &l, &sa), STORE_OK);
    CHECK(l.count >= 1 && l.count < 5);
    CHECK(l.next_cursor[0] != '\0');
}

const sc_case_t sc_cases_conversations[] = {
    {"direct_open", test_direct_open},
    {"group_create", test_group_create},
    {"mark_read", test_mark_read},
    {"group_read_rule", test_group_read_rule},
    {"conversations_list", test_conversations_list},
    {NULL, NULL},
};
