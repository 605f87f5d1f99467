/* Conformance cases for issue 15 (store_conformance.h): conversations about a context (one
 * direct conversation per pair and context, the list filter, bounds), system notices (seq and
 * idempotency, no membership needed), group membership changes, and a delete by a server
 * credential. */
#include "store_conformance.h"

static const store_context_t L1 = {STR_LIT("listing"), STR_LIT("L-1042"), STR_LIT("Flat 3B")};
static const store_context_t L2 = {STR_LIT("listing"), STR_LIT("L-2077"), {0}};

static void open_ctx(sc_t *t, const char *a, const char *b, const store_context_t *ctx,
                     char out[ID_SIZE], bool *created)
{
    store_arena_t ar = sc_arena();
    store_direct_open_t op = {.user = str_cstr(a), .other = str_cstr(b)};
    if (ctx) op.context = *ctx;
    CHECK_EQ_INT(sc_direct_open(t, &op, &ar, 1000), STORE_OK);
    memcpy(out, op.conv.id, ID_SIZE);
    if (created) *created = op.created;
}

static void test_context_direct(sc_t *t)
{
    char plain[ID_SIZE], c1[ID_SIZE], c2[ID_SIZE], again[ID_SIZE];
    bool created = false;
    sc_direct(t, "alice", "bob", plain);
    open_ctx(t, "alice", "bob", &L1, c1, &created);
    CHECK(created);
    open_ctx(t, "alice", "bob", &L2, c2, &created);
    CHECK(created);
    store_context_t l1_untitled = {L1.type, L1.id, {0}};
    open_ctx(t, "bob", "alice", &l1_untitled, again, &created);
    CHECK(!created);
    CHECK(strcmp(again, c1) == 0);
    CHECK(strcmp(plain, c1) != 0 && strcmp(plain, c2) != 0 && strcmp(c1, c2) != 0);
    /* a send by recipient still goes to the plain thread, even right after one about L1 */
    CHECK(sc_send(t, c1, "alice", "about 3B") == 1);
    store_message_insert_t in = {.sender = STR_LIT("alice"),
                                 .recipient = STR_LIT("bob"),
                                 .content = STR_LIT("plain"),
                                 .type = STORE_MSG_TEXT};
    store_arena_t ar = sc_arena();
    CHECK_EQ_INT(sc_message_insert(t, &in, &ar, 3000), STORE_OK);
    CHECK(strcmp(in.msg.conversation_id, plain) == 0);

    /* the document carries the context, the title given first */
    store_conversation_get_t g = {.id = str_make(c1, ID_LEN), .requester = STR_LIT("bob")};
    CHECK_EQ_INT(sc_conversation_get(t, &g, &ar), STORE_OK);
    CHECK_MEM(g.conv.context.type.ptr, g.conv.context.type.len, "listing");
    CHECK_MEM(g.conv.context.id.ptr, g.conv.context.id.len, "L-1042");
    CHECK_MEM(g.conv.context.title.ptr, g.conv.context.title.len, "Flat 3B");
    store_conversation_get_t p = {.id = str_make(plain, ID_LEN)};
    CHECK_EQ_INT(sc_conversation_get(t, &p, &ar), STORE_OK);
    CHECK(p.conv.context.type.ptr == NULL && p.conv.context.id.ptr == NULL);

    /* bounds: type and id 1-64 of [A-Za-z0-9_.:-], both or neither; title <= 800 bytes */
    static char longt[STORE_CONTEXT_TITLE_MAX + 2];
    memset(longt, 'x', sizeof longt - 1);
    const store_context_t bad[] = {
        {STR_LIT("listing"), {0}, {0}},
        {{0}, STR_LIT("L-1"), {0}},
        {STR_LIT("list ing"), STR_LIT("L-1"), {0}},
        {STR_LIT("listing"), STR_LIT("L|1"), {0}},
        {STR_LIT("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
         STR_LIT("L"),
         {0}},
        {STR_LIT("listing"), STR_LIT("L-1"), {longt, sizeof longt - 1}},
        {{0}, {0}, STR_LIT("a title alone")},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        store_direct_open_t op = {
            .user = STR_LIT("alice"), .other = STR_LIT("bob"), .context = bad[i]};
        CHECK_EQ_INT(sc_direct_open(t, &op, &ar, 1000), STORE_E_INVALID);
        str_t parts[] = {STR_LIT("bob")};
        store_group_create_t gc = {
            .creator = STR_LIT("alice"), .participants = parts, .count = 1, .context = bad[i]};
        CHECK_EQ_INT(sc_group_create(t, &gc, &ar, 1000), STORE_E_INVALID);
    }
}

static void test_context_list(sc_t *t)
{
    char c1[ID_SIZE], c2[ID_SIZE], c3[ID_SIZE], plain[ID_SIZE];
    open_ctx(t, "tenant", "owner", &L1, c1, NULL);
    open_ctx(t, "tenant", "owner", &L2, c2, NULL);
    open_ctx(t, "other", "owner", &L1, c3, NULL);
    sc_direct(t, "tenant", "owner", plain);
    store_arena_t ar = sc_arena();
    store_conversations_list_t l = {.user = STR_LIT("owner"),
                                    .context_type = STR_LIT("listing"),
                                    .context_id = STR_LIT("L-1042")};
    CHECK_EQ_INT(sc_conversations_list(t, &l, &ar), STORE_OK);
    CHECK_EQ_INT(l.count, 2);
    for (size_t i = 0; i < l.count; i++)
        CHECK(strcmp(l.convs[i].id, c1) == 0 || strcmp(l.convs[i].id, c3) == 0);
    store_conversations_list_t lt = {.user = STR_LIT("tenant"),
                                     .context_type = STR_LIT("listing"),
                                     .context_id = STR_LIT("L-1042")};
    CHECK_EQ_INT(sc_conversations_list(t, &lt, &ar), STORE_OK);
    CHECK_EQ_INT(lt.count, 1);
    CHECK(strcmp(lt.convs[0].id, c1) == 0);
    /* paging within the filter */
    store_conversations_list_t p1 = {.user = STR_LIT("owner"),
                                     .limit = 1,
                                     .context_type = STR_LIT("listing"),
                                     .context_id = STR_LIT("L-1042")};
    CHECK_EQ_INT(sc_conversations_list(t, &p1, &ar), STORE_OK);
    CHECK_EQ_INT(p1.count, 1);
    CHECK(p1.next_cursor[0] != '\0');
    char first[ID_SIZE], cur[STORE_CURSOR_LEN + 1];
    memcpy(first, p1.convs[0].id, ID_SIZE);
    memcpy(cur, p1.next_cursor, sizeof cur);
    store_conversations_list_t p2 = {.user = STR_LIT("owner"),
                                     .limit = 1,
                                     .cursor = str_cstr(cur),
                                     .context_type = STR_LIT("listing"),
                                     .context_id = STR_LIT("L-1042")};
    CHECK_EQ_INT(sc_conversations_list(t, &p2, &ar), STORE_OK);
    CHECK_EQ_INT(p2.count, 1);
    CHECK(strcmp(p2.convs[0].id, first) != 0);
    CHECK(p2.next_cursor[0] == '\0');
    store_conversations_list_t bad = {.user = STR_LIT("owner"), .context_type = STR_LIT("listing")};
    CHECK_EQ_INT(sc_conversations_list(t, &bad, &ar), STORE_E_INVALID);
}

static void test_system_insert(sc_t *t)
{
    char conv[ID_SIZE];
    sc_direct(t, "alice", "bob", conv);
    CHECK(sc_send(t, conv, "alice", "hi") == 1);
    store_arena_t ar = sc_arena();
    store_system_insert_t s = {.conversation_id = str_make(conv, ID_LEN),
                               .content = STR_LIT("Viewing confirmed"),
                               .client_msg_id = STR_LIT("v-1")};
    CHECK_EQ_INT(sc_system_insert_(t, &s, &ar, 3000), STORE_OK);
    CHECK(!s.duplicate);
    CHECK_EQ_INT(s.msg.seq, 2);
    CHECK_MEM(s.msg.sender.ptr, s.msg.sender.len, STORE_SYSTEM_SENDER);
    CHECK(s.msg.recipient.ptr == NULL);
    CHECK_MEM(s.msg.content.ptr, s.msg.content.len, "Viewing confirmed");
    CHECK(s.msg.pos > 0);
    char id[ID_SIZE];
    memcpy(id, s.msg.id, ID_SIZE);
    /* the same clientMsgId: the first message, nothing new */
    store_system_insert_t dup = {.conversation_id = str_make(conv, ID_LEN),
                                 .content = STR_LIT("other text"),
                                 .client_msg_id = STR_LIT("v-1")};
    CHECK_EQ_INT(sc_system_insert_(t, &dup, &ar, 4000), STORE_OK);
    CHECK(dup.duplicate);
    CHECK(strcmp(dup.msg.id, id) == 0);
    /* user sends go on after it, gap-free; a user's clientMsgId "v-1" is its own */
    CHECK(sc_send(t, conv, "bob", "thanks") == 3);
    CHECK_EQ_INT(sc_last_seq(t, conv, NULL), 3);
    /* unread for both members (from neither of them) */
    store_conversation_get_t g = {.id = str_make(conv, ID_LEN), .requester = STR_LIT("alice")};
    CHECK_EQ_INT(sc_conversation_get(t, &g, &ar), STORE_OK);
    CHECK_EQ_INT(g.conv.unread_count, 2);
    CHECK_EQ_INT(g.conv.member_count, 2);
    store_system_insert_t nf = {.conversation_id = STR_LIT("0123456789abcdef01234567"),
                                .content = STR_LIT("x")};
    CHECK_EQ_INT(sc_system_insert_(t, &nf, &ar, 5000), STORE_E_NOT_FOUND);
    store_system_insert_t inv = {.conversation_id = STR_LIT("nope"), .content = STR_LIT("x")};
    CHECK_EQ_INT(sc_system_insert_(t, &inv, &ar, 5000), STORE_E_INVALID);
    CHECK_EQ_INT(sc_last_seq(t, conv, NULL), 3);
}

static void test_members_change(sc_t *t)
{
    store_arena_t ar = sc_arena();
    str_t parts[] = {STR_LIT("bob")};
    store_group_create_t gc = {.creator = STR_LIT("alice"),
                               .participants = parts,
                               .count = 1,
                               .title = STR_LIT("G"),
                               .context = L1};
    CHECK_EQ_INT(sc_group_create(t, &gc, &ar, 1000), STORE_OK);
    CHECK_MEM(gc.conv.context.id.ptr, gc.conv.context.id.len, "L-1042");
    char conv[ID_SIZE];
    memcpy(conv, gc.conv.id, ID_SIZE);
    store_members_change_t add = {
        .conversation_id = str_make(conv, ID_LEN), .user = STR_LIT("carol"), .add = true};
    CHECK_EQ_INT(sc_members_change_(t, &add, &ar, 2000), STORE_OK);
    CHECK(add.changed);
    CHECK_EQ_INT(add.conv.member_count, 3);
    CHECK_EQ_INT(sc_members_change_(t, &add, &ar, 2000), STORE_OK);
    CHECK(!add.changed);
    CHECK(sc_send(t, conv, "carol", "hello") == 1);
    store_members_change_t rm = {.conversation_id = str_make(conv, ID_LEN), .user = STR_LIT("bob")};
    CHECK_EQ_INT(sc_members_change_(t, &rm, &ar, 3000), STORE_OK);
    CHECK(rm.changed);
    CHECK_EQ_INT(rm.conv.member_count, 2);
    /* bob lost access: reading, sending, marking */
    store_messages_page_t p = {.conversation_id = str_make(conv, ID_LEN),
                               .requester = STR_LIT("bob")};
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_E_FORBIDDEN);
    store_message_insert_t in = {.sender = STR_LIT("bob"),
                                 .conversation_id = str_make(conv, ID_LEN),
                                 .content = STR_LIT("x"),
                                 .type = STORE_MSG_TEXT};
    CHECK_EQ_INT(sc_message_insert(t, &in, &ar, 4000), STORE_E_FORBIDDEN);
    CHECK_EQ_INT(sc_members_change_(t, &rm, &ar, 3000), STORE_OK);
    CHECK(!rm.changed);
    /* a direct conversation's members do not change; unknown ones are not found */
    char d[ID_SIZE];
    sc_direct(t, "alice", "bob", d);
    store_members_change_t dd = {
        .conversation_id = str_make(d, ID_LEN), .user = STR_LIT("carol"), .add = true};
    CHECK_EQ_INT(sc_members_change_(t, &dd, &ar, 5000), STORE_E_INVALID);
    store_members_change_t nf = {.conversation_id = STR_LIT("0123456789abcdef01234567"),
                                 .user = STR_LIT("carol"),
                                 .add = true};
    CHECK_EQ_INT(sc_members_change_(t, &nf, &ar, 5000), STORE_E_NOT_FOUND);
    store_members_change_t sys = {.conversation_id = str_make(conv, ID_LEN),
                                  .user = STR_LIT(STORE_SYSTEM_SENDER),
                                  .add = true};
    CHECK_EQ_INT(sc_members_change_(t, &sys, &ar, 5000), STORE_E_INVALID);
}

static void test_delete_by_server(sc_t *t)
{
    char conv[ID_SIZE];
    sc_direct(t, "alice", "bob", conv);
    store_message_insert_t in;
    CHECK_EQ_INT(sc_send_at(t, conv, "alice", "wrong person", 2000, &in), STORE_OK);
    char id[ID_SIZE];
    memcpy(id, in.msg.id, ID_SIZE);
    store_arena_t ar = sc_arena();
    store_message_update_t u = {
        .message_id = str_make(id, ID_LEN), .remove = true, .by_server = true};
    CHECK_EQ_INT(sc_message_update(t, &u, &ar, 3000), STORE_OK);
    CHECK(u.changed);
    CHECK(u.msg.deleted);
    CHECK_EQ_INT(u.msg.seq, 1);
    CHECK_EQ_INT(u.msg.content.len, 0);
    store_message_update_t again = {
        .message_id = str_make(id, ID_LEN), .remove = true, .by_server = true};
    CHECK_EQ_INT(sc_message_update(t, &again, &ar, 3000), STORE_OK);
    CHECK(!again.changed);
    /* an edit by a server credential is not a thing */
    store_message_update_t ed = {
        .message_id = str_make(id, ID_LEN), .content = STR_LIT("x"), .by_server = true};
    CHECK_EQ_INT(sc_message_update(t, &ed, &ar, 3000), STORE_E_INVALID);
    store_message_update_t nf = {
        .message_id = STR_LIT("0123456789abcdef01234567"), .remove = true, .by_server = true};
    CHECK_EQ_INT(sc_message_update(t, &nf, &ar, 3000), STORE_E_NOT_FOUND);
}

static void test_export_erase(sc_t *t)
{
    char conv[ID_SIZE];
    sc_upsert(t, "alice", "Alice");
    sc_direct(t, "alice", "bob", conv);
    CHECK(sc_send(t, conv, "alice", "one") == 1);
    CHECK(sc_send(t, conv, "bob", "two") == 2);
    CHECK(sc_send(t, conv, "alice", "three") == 3);
    store_arena_t ar = sc_arena();
    store_user_export_t x = {.user = STR_LIT("alice"), .limit = 1};
    CHECK_EQ_INT(sc_run_op(t, STORE_OP_USER_EXPORT, &x, sizeof x, &ar, 0), STORE_OK);
    CHECK(x.found);
    CHECK_MEM(x.record.name.ptr, x.record.name.len, "Alice");
    CHECK_EQ_INT(x.nmemberships, 1);
    CHECK(strcmp(x.memberships[0].conversation_id, conv) == 0);
    CHECK_EQ_INT(x.count, 1);
    CHECK_MEM(x.msgs[0].content.ptr, x.msgs[0].content.len, "one");
    CHECK(x.next_pos > 0);
    int64_t next = x.next_pos;
    store_user_export_t x2 = {.user = STR_LIT("alice"), .after_pos = next, .limit = 10};
    CHECK_EQ_INT(sc_run_op(t, STORE_OP_USER_EXPORT, &x2, sizeof x2, &ar, 0), STORE_OK);
    CHECK_EQ_INT(x2.count, 1);
    CHECK_MEM(x2.msgs[0].content.ptr, x2.msgs[0].content.len, "three");
    CHECK_EQ_INT(x2.next_pos, 0);
    CHECK_EQ_INT(x2.nmemberships, 0);

    store_user_erase_t e = {.user = STR_LIT("alice")};
    CHECK_EQ_INT(sc_run_op(t, STORE_OP_USER_ERASE, &e, sizeof e, &ar, 5000), STORE_OK);
    CHECK(e.found);
    CHECK_EQ_INT(e.messages, 2);
    CHECK_EQ_INT(e.conversations, 1);
    /* tombstones in place, seq kept; bob's message stays; alice is no member any more */
    store_messages_page_t p = {.conversation_id = str_make(conv, ID_LEN),
                               .requester = STR_LIT("bob")};
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, 3);
    CHECK(p.msgs[0].deleted && p.msgs[0].content.len == 0 && p.msgs[0].seq == 1);
    CHECK(!p.msgs[1].deleted);
    CHECK(p.msgs[2].deleted);
    store_conversation_get_t g = {.id = str_make(conv, ID_LEN)};
    CHECK_EQ_INT(sc_conversation_get(t, &g, &ar), STORE_OK);
    CHECK_EQ_INT(g.conv.member_count, 1);
    store_user_export_t x3 = {.user = STR_LIT("alice")};
    CHECK_EQ_INT(sc_run_op(t, STORE_OP_USER_EXPORT, &x3, sizeof x3, &ar, 0), STORE_OK);
    CHECK(!x3.found);
    CHECK_EQ_INT(x3.nmemberships, 0);
    /* erasing again: nothing left, not an error */
    store_user_erase_t e2 = {.user = STR_LIT("alice")};
    CHECK_EQ_INT(sc_run_op(t, STORE_OP_USER_ERASE, &e2, sizeof e2, &ar, 6000), STORE_OK);
    CHECK(!e2.found);
    CHECK_EQ_INT(e2.messages, 0);
    /* the id may come back as a new, empty user */
    sc_upsert(t, "alice", "Alice again");
    store_user_erase_t bad = {.user = STR_LIT(STORE_SYSTEM_SENDER)};
    CHECK_EQ_INT(sc_run_op(t, STORE_OP_USER_ERASE, &bad, sizeof bad, &ar, 6000), STORE_E_INVALID);
}

const sc_case_t sc_cases_platform[] = {
    {"export_erase", test_export_erase},
    {"context_direct", test_context_direct},
    {"context_list", test_context_list},
    {"system_insert", test_system_insert},
    {"members_change", test_members_change},
    {"delete_by_server", test_delete_by_server},
    {NULL, NULL},
};
