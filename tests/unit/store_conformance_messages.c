/* Conformance cases: messages (insert, attachments, idempotency, pages, recovery by seq and
 * by position) and every operation through store_submit (store_conformance.h). */
#include "store_conformance.h"

static void test_message_insert(sc_t *t)
{
    store_arena_t ar = sc_arena();
    store_message_insert_t op = {.sender = STR_LIT("alice"),
                                 .recipient = STR_LIT("bob"),
                                 .content = STR_LIT("hi bob"),
                                 .type = STORE_MSG_TEXT};
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 5000), STORE_OK);
    CHECK(op.conversation_created);
    CHECK(!op.duplicate);
    CHECK_EQ_INT(op.msg.seq, 1);
    CHECK(op.msg.pos > 0);
    CHECK(id_valid(str_cstr(op.msg.id)));
    CHECK(id_valid(str_cstr(op.msg.conversation_id)));
    CHECK_MEM(op.msg.sender.ptr, op.msg.sender.len, "alice");
    CHECK_MEM(op.msg.recipient.ptr, op.msg.recipient.len, "bob");
    CHECK_MEM(op.msg.content.ptr, op.msg.content.len, "hi bob");
    CHECK(op.msg.client_msg_id.ptr == NULL);
    CHECK(op.msg.file == NULL);
    CHECK_EQ_INT(op.msg.read_at, 0);
    CHECK_EQ_INT(op.msg.created_at, 5000);
    CHECK_EQ_INT(op.msg.updated_at, 5000);
    char conv[ID_SIZE];
    memcpy(conv, op.msg.conversation_id, ID_SIZE);
    int64_t pos1 = op.msg.pos;

    /* Reply by recipient id finds the same conversation. */
    op = (store_message_insert_t){.sender = STR_LIT("bob"),
                                  .recipient = STR_LIT("alice"),
                                  .content = STR_LIT("hey"),
                                  .type = STORE_MSG_TEXT};
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 6000), STORE_OK);
    CHECK(!op.conversation_created);
    CHECK(strcmp(op.msg.conversation_id, conv) == 0);
    CHECK_EQ_INT(op.msg.seq, 2);
    CHECK(op.msg.pos > pos1);
    CHECK_MEM(op.msg.recipient.ptr, op.msg.recipient.len, "alice");
    CHECK_EQ_INT(sc_send(t, conv, "alice", "third"), 3);

    /* Content may hold NUL bytes and be empty. */
    op = (store_message_insert_t){.sender = STR_LIT("alice"),
                                  .conversation_id = str_cstr(conv),
                                  .content = str_make("a\0b", 3),
                                  .type = STORE_MSG_TEXT};
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 6500), STORE_OK);
    CHECK_EQ_INT(op.msg.content.len, 3);
    CHECK(memcmp(op.msg.content.ptr, "a\0b", 3) == 0);
    op.content = STR_LIT("");
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 6500), STORE_OK);
    CHECK_EQ_INT(op.msg.content.len, 0);

    /* The conversation moved: last_seq and updated_at. */
    store_conversation_get_t cg = {.id = str_cstr(conv), .requester = STR_LIT("bob")};
    CHECK_EQ_INT(sc_conversation_get(t, &cg, &ar), STORE_OK);
    CHECK_EQ_INT(cg.conv.last_seq, 5);
    CHECK_EQ_INT(cg.conv.updated_at, 6500);
    CHECK(cg.conv.last_message != NULL);
    if (cg.conv.last_message) CHECK_EQ_INT(cg.conv.last_message->seq, 5);
    CHECK_EQ_INT(cg.conv.unread_count, 4); /* alice's 1, 3, 4, 5 */

    /* Groups: no recipient. */
    str_t parts[] = {STR_LIT("bob")};
    store_group_create_t g = {
        .creator = STR_LIT("alice"), .participants = parts, .count = 1, .title = STR_LIT("g")};
    CHECK_EQ_INT(sc_group_create(t, &g, &ar, 1000), STORE_OK);
    char group[ID_SIZE];
    memcpy(group, g.conv.id, ID_SIZE);
    CHECK_EQ_INT(sc_send_at(t, group, "bob", "to all", 7000, &op), STORE_OK);
    CHECK_EQ_INT(op.msg.seq, 1);
    CHECK(op.msg.recipient.ptr == NULL);

    /* Refusals. */
    CHECK_EQ_INT(sc_send_at(t, group, "mallory", "x", 1, &op), STORE_E_FORBIDDEN);
    CHECK_EQ_INT(sc_send_at(t, "65a0000000000000000000ff", "bob", "x", 1, &op), STORE_E_NOT_FOUND);
    CHECK_EQ_INT(sc_send_at(t, "65A0000000000000000000FF", "bob", "x", 1, &op), STORE_E_INVALID);
    CHECK_EQ_INT(sc_send_at(t, group, "bad id", "x", 1, &op), STORE_E_INVALID);
    op = (store_message_insert_t){.sender = STR_LIT("alice"), .content = STR_LIT("x")};
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 1), STORE_E_INVALID); /* no target */
    op.conversation_id = str_cstr(group);
    op.recipient = STR_LIT("bob");
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 1), STORE_E_INVALID); /* both */
    op.conversation_id = STR_NULL;
    op.recipient = STR_LIT("alice");
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 1), STORE_E_INVALID); /* to self */
    op.recipient = STR_LIT("bob");
    op.type = (store_msg_type_t)7;
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 1), STORE_E_INVALID);
    op.type = STORE_MSG_TEXT;
    op.content = STR_NULL;
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 1), STORE_E_INVALID);
    static char big[STORE_CONTENT_MAX + 1];
    op.content = str_make(big, sizeof big);
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 1), STORE_E_INVALID);
    op.content = str_make(big, STORE_CONTENT_MAX);
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 1), STORE_OK);
    CHECK_EQ_INT(op.msg.content.len, STORE_CONTENT_MAX);
    op.content = STR_LIT("x");
    op.file_id = STR_LIT("zz");
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 1), STORE_E_INVALID);
    char cmid[STORE_CLIENT_MSG_ID_MAX + 1];
    memset(cmid, 'c', sizeof cmid);
    op.file_id = STR_NULL;
    op.client_msg_id = str_make(cmid, sizeof cmid);
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 1), STORE_E_INVALID);

    /* Failed sends left the sequence alone. */
    CHECK_EQ_INT(sc_send(t, group, "alice", "next"), 2);
    /* The sent output needs an arena; without one the send fails and stores nothing. */
    store_arena_t none = {0};
    op = (store_message_insert_t){.sender = STR_LIT("alice"),
                                  .conversation_id = str_cstr(group),
                                  .content = STR_LIT("lost"),
                                  .type = STORE_MSG_TEXT};
    CHECK_EQ_INT(sc_message_insert(t, &op, &none, 1), STORE_E_NOSPACE);
    CHECK_EQ_INT(sc_send(t, group, "alice", "after"), 3);
}

static void test_message_files(sc_t *t)
{
    store_arena_t ar = sc_arena();
    store_file_insert_t fi = {{.owner = STR_LIT("alice"),
                               .name = STR_LIT("lease.pdf"),
                               .mime = STR_LIT("application/pdf"),
                               .path = STR_LIT("ab/cd"),
                               .sha256 = STR_LIT("e3b0c442"),
                               .size = 1234},
                              .quota = 0};
    CHECK_EQ_INT(sc_file_insert(t, &fi, 4000), STORE_OK);
    CHECK(id_valid(str_cstr(fi.file.id)));
    CHECK_EQ_INT(fi.file.created_at, 4000);
    {
        /* The quota counts what the owner already stored: 1234 + 1000 > 2000, 1234 + 766 not. */
        store_file_insert_t q = {{.owner = STR_LIT("alice"),
                                  .name = STR_LIT("b.pdf"),
                                  .mime = STR_LIT("application/pdf"),
                                  .path = STR_LIT("ab/ce"),
                                  .sha256 = STR_LIT("00"),
                                  .size = 1000},
                                 .quota = 2000};
        CHECK_EQ_INT(sc_file_insert(t, &q, 4001), STORE_E_QUOTA);
        q.file.size = 766;
        q.file.id[0] = '\0';
        CHECK_EQ_INT(sc_file_insert(t, &q, 4002), STORE_OK);
        q.file.size = 1;
        q.file.id[0] = '\0';
        q.file.path = STR_LIT("ab/cf");
        CHECK_EQ_INT(sc_file_insert(t, &q, 4003), STORE_E_QUOTA);
    }
    char fid[ID_SIZE];
    memcpy(fid, fi.file.id, ID_SIZE);

    /* A preset id is kept; using it twice conflicts. */
    store_file_insert_t fp = fi;
    memcpy(fp.file.id, "65a0000000000000000000f1", ID_SIZE);
    fp.file.owner = STR_LIT("carol");
    CHECK_EQ_INT(sc_file_insert(t, &fp, 4000), STORE_OK);
    CHECK(strcmp(fp.file.id, "65a0000000000000000000f1") == 0);
    CHECK_EQ_INT(sc_file_insert(t, &fp, 4000), STORE_E_CONFLICT);
    store_file_insert_t fb = fi;
    memcpy(fb.file.id, "NOT-AN-ID", 10);
    CHECK_EQ_INT(sc_file_insert(t, &fb, 1), STORE_E_INVALID);
    fb = fi;
    fb.file.id[0] = '\0';
    fb.file.size = -1;
    CHECK_EQ_INT(sc_file_insert(t, &fb, 1), STORE_E_INVALID);
    fb.file.size = 1;
    fb.file.name = STR_LIT("");
    CHECK_EQ_INT(sc_file_insert(t, &fb, 1), STORE_E_INVALID);

    /* Attaching: only the owner's own files. */
    store_message_insert_t op = {.sender = STR_LIT("alice"),
                                 .recipient = STR_LIT("bob"),
                                 .content = STR_LIT(""),
                                 .type = STORE_MSG_FILE,
                                 .file_id = str_cstr(fid)};
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 5000), STORE_OK);
    CHECK(op.msg.file != NULL);
    CHECK_EQ_INT(op.msg.type, STORE_MSG_FILE);
    if (op.msg.file) {
        CHECK(strcmp(op.msg.file->id, fid) == 0);
        CHECK_MEM(op.msg.file->name.ptr, op.msg.file->name.len, "lease.pdf");
        CHECK_MEM(op.msg.file->mime.ptr, op.msg.file->mime.len, "application/pdf");
        CHECK_EQ_INT(op.msg.file->size, 1234);
    }
    char conv[ID_SIZE];
    memcpy(conv, op.msg.conversation_id, ID_SIZE);
    op = (store_message_insert_t){.sender = STR_LIT("bob"),
                                  .conversation_id = str_cstr(conv),
                                  .content = STR_LIT(""),
                                  .type = STORE_MSG_FILE,
                                  .file_id = str_cstr(fid)};
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 5000), STORE_E_FORBIDDEN);
    /* An unknown file is refused like someone else's: nothing tells them apart. */
    op.file_id = STR_LIT("65a0000000000000000000f9");
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 5000), STORE_E_FORBIDDEN);
    /* An image message must carry an image: lease.pdf is not one. */
    op = (store_message_insert_t){.sender = STR_LIT("alice"),
                                  .conversation_id = str_cstr(conv),
                                  .content = STR_LIT(""),
                                  .type = STORE_MSG_IMAGE,
                                  .file_id = str_cstr(fid)};
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 5000), STORE_E_INVALID);

    /* Reads carry the file. */
    store_messages_page_t page = {.conversation_id = str_cstr(conv)};
    CHECK_EQ_INT(sc_messages_page(t, &page, &ar), STORE_OK);
    CHECK_EQ_INT(page.count, 1);
    CHECK(page.count == 1 && page.msgs[0].file != NULL && page.msgs[0].type == STORE_MSG_FILE);

    /* Who may download: the owner, members of a conversation carrying it. */
    store_file_get_t fg = {.id = str_cstr(fid), .requester = STR_LIT("alice")};
    CHECK_EQ_INT(sc_file_get(t, &fg, &ar), STORE_OK);
    CHECK(fg.allowed);
    CHECK_MEM(fg.file.path.ptr, fg.file.path.len, "ab/cd");
    CHECK_MEM(fg.file.sha256.ptr, fg.file.sha256.len, "e3b0c442");
    CHECK_MEM(fg.file.owner.ptr, fg.file.owner.len, "alice");
    fg.requester = STR_LIT("bob");
    CHECK_EQ_INT(sc_file_get(t, &fg, &ar), STORE_OK);
    CHECK(fg.allowed);
    fg.requester = STR_LIT("mallory");
    CHECK_EQ_INT(sc_file_get(t, &fg, &ar), STORE_OK);
    CHECK(!fg.allowed);
    fg.requester = STR_NULL;
    CHECK_EQ_INT(sc_file_get(t, &fg, &ar), STORE_OK);
    CHECK(!fg.allowed);
    fg = (store_file_get_t){.id = STR_LIT("65a0000000000000000000f1"), .requester = STR_LIT("bob")};
    CHECK_EQ_INT(sc_file_get(t, &fg, &ar), STORE_OK);
    CHECK(!fg.allowed); /* carol's, never shared */
    fg.id = STR_LIT("65a0000000000000000000f9");
    CHECK_EQ_INT(sc_file_get(t, &fg, &ar), STORE_E_NOT_FOUND);
    fg.id = STR_LIT("x");
    CHECK_EQ_INT(sc_file_get(t, &fg, &ar), STORE_E_INVALID);
}

static void test_idempotent_client_msg_id(sc_t *t)
{
    char conv[ID_SIZE];
    sc_direct(t, "alice", "bob", conv);
    store_arena_t ar = sc_arena();
    store_message_insert_t op = {.sender = STR_LIT("alice"),
                                 .conversation_id = str_cstr(conv),
                                 .content = STR_LIT("once"),
                                 .type = STORE_MSG_TEXT,
                                 .client_msg_id = STR_LIT("c-1")};
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 1000), STORE_OK);
    CHECK(!op.duplicate);
    char first[ID_SIZE];
    memcpy(first, op.msg.id, ID_SIZE);
    CHECK_MEM(op.msg.client_msg_id.ptr, op.msg.client_msg_id.len, "c-1");

    /* The retry, even with other content or by recipient id, gets the stored message. */
    store_message_insert_t again = {.sender = STR_LIT("alice"),
                                    .recipient = STR_LIT("bob"),
                                    .content = STR_LIT("twice?"),
                                    .type = STORE_MSG_IMAGE,
                                    .client_msg_id = STR_LIT("c-1")};
    CHECK_EQ_INT(sc_message_insert(t, &again, &ar, 2000), STORE_OK);
    CHECK(again.duplicate);
    CHECK(!again.conversation_created);
    CHECK(strcmp(again.msg.id, first) == 0);
    CHECK_EQ_INT(again.msg.seq, 1);
    CHECK_MEM(again.msg.content.ptr, again.msg.content.len, "once");
    CHECK_EQ_INT(again.msg.type, STORE_MSG_TEXT);
    CHECK_EQ_INT(again.msg.created_at, 1000);
    CHECK_MEM(again.msg.recipient.ptr, again.msg.recipient.len, "bob");

    /* Nothing was added; the next message is seq 2. */
    CHECK_EQ_INT(sc_send(t, conv, "alice", "next"), 2);
    /* The same clientMsgId from another sender is another message. */
    op.sender = STR_LIT("bob");
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 3000), STORE_OK);
    CHECK(!op.duplicate);
    CHECK_EQ_INT(op.msg.seq, 3);
    /* Messages without clientMsgId never collide. */
    CHECK_EQ_INT(sc_send(t, conv, "bob", "a"), 4);
    CHECK_EQ_INT(sc_send(t, conv, "bob", "b"), 5);
    /* An empty clientMsgId counts as none. */
    op = (store_message_insert_t){.sender = STR_LIT("bob"),
                                  .conversation_id = str_cstr(conv),
                                  .content = STR_LIT("e"),
                                  .client_msg_id = STR_LIT("")};
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 3000), STORE_OK);
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 3000), STORE_OK);
    CHECK(!op.duplicate);
    CHECK_EQ_INT(op.msg.seq, 7);
}

static void test_pagination(sc_t *t)
{
    char conv[ID_SIZE];
    sc_direct(t, "alice", "bob", conv);
    for (int i = 1; i <= 250; i++) {
        char text[32];
        snprintf(text, sizeof text, "message %d", i);
        if (sc_send(t, conv, i % 3 ? "alice" : "bob", text) != i) break;
    }
    /* Newest page first, each ascending, following before = the page's first seq. */
    static int seen[251];
    memset(seen, 0, sizeof seen);
    int64_t before = 0;
    int pages = 0;
    bool more = true;
    while (more && pages < 10) {
        store_arena_t ar = sc_arena();
        store_messages_page_t p = {.conversation_id = str_cstr(conv),
                                   .requester = STR_LIT("bob"),
                                   .before_seq = before,
                                   .limit = 50};
        CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_OK);
        CHECK_EQ_INT(p.count, 50);
        for (size_t i = 0; i < p.count; i++) {
            int64_t s = p.msgs[i].seq;
            if (s >= 1 && s <= 250) seen[s]++;
            if (i) CHECK_EQ_INT(s, p.msgs[i - 1].seq + 1);
            char text[32];
            snprintf(text, sizeof text, "message %d", (int)s);
            CHECK_MEM(p.msgs[i].content.ptr, p.msgs[i].content.len, text);
        }
        CHECK_EQ_INT(p.msgs[p.count - 1].seq, before ? before - 1 : 250);
        before = p.msgs[0].seq;
        more = p.has_more;
        pages++;
    }
    CHECK_EQ_INT(pages, 5);
    CHECK_EQ_INT(before, 1);
    int missing = 0, dups = 0;
    for (int i = 1; i <= 250; i++) {
        missing += seen[i] == 0;
        dups += seen[i] > 1;
    }
    CHECK_EQ_INT(missing, 0);
    CHECK_EQ_INT(dups, 0);

    store_arena_t ar = sc_arena();
    /* Edges: before the first message, exactly one page left, clamped and default limits. */
    store_messages_page_t p = {.conversation_id = str_cstr(conv), .before_seq = 1, .limit = 50};
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, 0);
    CHECK(!p.has_more);
    p = (store_messages_page_t){.conversation_id = str_cstr(conv), .before_seq = 51, .limit = 50};
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, 50);
    CHECK(!p.has_more);
    CHECK_EQ_INT(p.msgs[0].seq, 1);
    p = (store_messages_page_t){.conversation_id = str_cstr(conv), .before_seq = 52, .limit = 50};
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_OK);
    CHECK(p.has_more);
    p = (store_messages_page_t){.conversation_id = str_cstr(conv), .limit = 1000};
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, STORE_PAGE_MAX);
    CHECK(p.has_more);
    p = (store_messages_page_t){.conversation_id = str_cstr(conv)};
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, STORE_PAGE_DEFAULT);
    p = (store_messages_page_t){.conversation_id = str_cstr(conv), .before_seq = 1000, .limit = 3};
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, 3);
    CHECK_EQ_INT(p.msgs[2].seq, 250);

    /* Access. */
    p = (store_messages_page_t){.conversation_id = str_cstr(conv), .requester = STR_LIT("eve")};
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_E_FORBIDDEN);
    p = (store_messages_page_t){.conversation_id = STR_LIT("65a0000000000000000000ff")};
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_E_NOT_FOUND);
    p.requester = STR_LIT("bob");
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_E_NOT_FOUND);
    p = (store_messages_page_t){.conversation_id = str_cstr(conv), .before_seq = -1};
    CHECK_EQ_INT(sc_messages_page(t, &p, &ar), STORE_E_INVALID);

    /* A small arena cuts the page short (newest kept, has_more set) rather than failing. */
    static char small[4 * sizeof(store_message_t) + 256];
    store_arena_t sa = {small, sizeof small, 0, 0};
    p = (store_messages_page_t){.conversation_id = str_cstr(conv), .limit = 50};
    CHECK_EQ_INT(sc_messages_page(t, &p, &sa), STORE_OK);
    CHECK(p.count >= 1 && p.count < 50);
    CHECK(p.has_more);
    CHECK_EQ_INT(p.msgs[p.count - 1].seq, 250);
    CHECK_EQ_INT(p.msgs[0].seq, 251 - (int64_t)p.count);
    store_arena_t none = {0};
    CHECK_EQ_INT(sc_messages_page(t, &p, &none), STORE_E_NOSPACE);

    /* Recovery by seq. */
    store_messages_after_t af = {.conversation_id = str_cstr(conv),
                                 .requester = STR_LIT("alice"),
                                 .after_seq = 240,
                                 .limit = 50};
    CHECK_EQ_INT(sc_messages_after(t, &af, &ar), STORE_OK);
    CHECK_EQ_INT(af.count, 10);
    CHECK(!af.has_more);
    CHECK_EQ_INT(af.msgs[0].seq, 241);
    CHECK_EQ_INT(af.msgs[9].seq, 250);
    af = (store_messages_after_t){.conversation_id = str_cstr(conv), .after_seq = 0, .limit = 100};
    CHECK_EQ_INT(sc_messages_after(t, &af, &ar), STORE_OK);
    CHECK_EQ_INT(af.count, 100);
    CHECK(af.has_more);
    CHECK_EQ_INT(af.msgs[99].seq, 100);
    af = (store_messages_after_t){.conversation_id = str_cstr(conv), .after_seq = 250};
    CHECK_EQ_INT(sc_messages_after(t, &af, &ar), STORE_OK);
    CHECK_EQ_INT(af.count, 0);
    CHECK(!af.has_more);
    af.requester = STR_LIT("eve");
    CHECK_EQ_INT(sc_messages_after(t, &af, &ar), STORE_E_FORBIDDEN);
    af.requester = STR_NULL;
    af.after_seq = -5;
    CHECK_EQ_INT(sc_messages_after(t, &af, &ar), STORE_E_INVALID);
}

static void test_messages_since(sc_t *t)
{
    char ab[ID_SIZE], cd[ID_SIZE], ac[ID_SIZE];
    sc_direct(t, "a", "b", ab);
    sc_direct(t, "c", "d", cd);
    sc_direct(t, "a", "c", ac);
    store_message_insert_t op;
    int64_t pos0 = 0;
    CHECK_EQ_INT(sc_send_at(t, ab, "a", "ab1", 1, &op), STORE_OK);
    pos0 = op.msg.pos;
    sc_send(t, cd, "c", "cd1");
    sc_send(t, ac, "c", "ac1");
    sc_send(t, ab, "b", "ab2");
    sc_send(t, cd, "d", "cd2");
    sc_send(t, ac, "a", "ac2");
    store_arena_t ar = sc_arena();
    store_messages_since_t s = {.user = STR_LIT("a"), .after_pos = pos0, .limit = 10};
    CHECK_EQ_INT(sc_messages_since(t, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 3);
    const char *want[] = {"ac1", "ab2", "ac2"};
    for (size_t i = 0; i < s.count && i < 3; i++) {
        CHECK_MEM(s.msgs[i].content.ptr, s.msgs[i].content.len, want[i]);
        if (i) CHECK(s.msgs[i].pos > s.msgs[i - 1].pos);
    }
    CHECK(!s.has_more);
    s = (store_messages_since_t){.user = STR_LIT("a"), .after_pos = 0, .limit = 2};
    CHECK_EQ_INT(sc_messages_since(t, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 2);
    CHECK(s.has_more);
    CHECK_MEM(s.msgs[0].content.ptr, s.msgs[0].content.len, "ab1");
    s = (store_messages_since_t){.user = STR_LIT("nobody"), .after_pos = 0, .limit = 2};
    CHECK_EQ_INT(sc_messages_since(t, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 0);
    s = (store_messages_since_t){.user = STR_LIT("a"), .after_pos = -1, .limit = 2};
    CHECK_EQ_INT(sc_messages_since(t, &s, &ar), STORE_E_INVALID);
}

static void test_every_op(sc_t *t)
{
    store_req_t r;
    memset(&r, 0, sizeof r);
    r.arena = sc_arena();
    r.op = STORE_OP_USER_UPSERT;
    r.u.user_upsert =
        (store_user_upsert_t){.id = STR_LIT("a"), .name = STR_LIT("A"), .role = STR_NULL};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    r.op = STORE_OP_USER_SEEN;
    r.u.user_seen = (store_user_seen_t){.id = STR_LIT("a"), .last_seen = 5};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    r.op = STORE_OP_ACCOUNT_CREATE;
    r.u.account_create = (store_account_create_t){.username = STR_LIT("ann"),
                                                  .password_hash = STR_LIT("h"),
                                                  .name = STR_NULL,
                                                  .role = STR_NULL};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    r.op = STORE_OP_ACCOUNT_GET;
    r.u.account_get = (store_account_get_t){.username = STR_LIT("ann")};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    r.op = STORE_OP_DIRECT_OPEN;
    r.u.direct_open = (store_direct_open_t){.user = STR_LIT("a"), .other = STR_LIT("b")};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    char conv[ID_SIZE];
    memcpy(conv, r.u.direct_open.conv.id, ID_SIZE);
    r.op = STORE_OP_MESSAGE_INSERT;
    r.u.message_insert = (store_message_insert_t){
        .sender = STR_LIT("a"), .conversation_id = str_cstr(conv), .content = STR_LIT("x")};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    char msg[ID_SIZE];
    memcpy(msg, r.u.message_insert.msg.id, ID_SIZE);
    r.op = STORE_OP_MARK_READ;
    r.u.mark_read = (store_mark_read_t){.user = STR_LIT("b"), .message_id = str_cstr(msg)};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    str_t parts[] = {STR_LIT("b")};
    r.op = STORE_OP_GROUP_CREATE;
    r.u.group_create = (store_group_create_t){
        .creator = STR_LIT("a"), .participants = parts, .count = 1, .title = STR_NULL};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    r.op = STORE_OP_FILE_INSERT;
    memset(&r.u.file_insert, 0, sizeof r.u.file_insert);
    r.u.file_insert.file = (store_file_t){.owner = STR_LIT("a"),
                                          .name = STR_LIT("n"),
                                          .mime = STR_LIT("m"),
                                          .path = STR_LIT("p"),
                                          .sha256 = STR_LIT("s")};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    char fid[ID_SIZE];
    memcpy(fid, r.u.file_insert.file.id, ID_SIZE);
    r.op = STORE_OP_FILE_GET;
    r.u.file_get = (store_file_get_t){.id = str_cstr(fid), .requester = STR_LIT("a")};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    r.op = STORE_OP_USERS_GET;
    r.u.users_get = (store_users_get_t){.ids = parts, .count = 1};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    r.op = STORE_OP_USERS_SEARCH;
    r.u.users_search = (store_users_search_t){.prefix = STR_LIT("a"), .limit = 5};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    r.op = STORE_OP_CONVERSATION_GET;
    r.u.conversation_get =
        (store_conversation_get_t){.id = str_cstr(conv), .requester = STR_LIT("a")};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    r.op = STORE_OP_CONVERSATIONS_LIST;
    r.u.conversations_list =
        (store_conversations_list_t){.user = STR_LIT("a"), .cursor = STR_NULL, .limit = 5};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    CHECK_EQ_INT(r.u.conversations_list.count, 2);
    r.op = STORE_OP_MESSAGES_PAGE;
    r.u.messages_page = (store_messages_page_t){.conversation_id = str_cstr(conv)};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    CHECK_EQ_INT(r.u.messages_page.count, 1);
    r.op = STORE_OP_MESSAGES_AFTER;
    r.u.messages_after = (store_messages_after_t){.conversation_id = str_cstr(conv)};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    CHECK_EQ_INT(r.u.messages_after.count, 1);
    r.op = STORE_OP_MESSAGES_SINCE;
    r.u.messages_since = (store_messages_since_t){.user = STR_LIT("b"), .after_pos = 0, .limit = 5};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    CHECK_EQ_INT(r.u.messages_since.count, 1);
    r.op = STORE_OP_CONTACTS;
    r.u.contacts = (store_contacts_t){.user = STR_LIT("a")};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    CHECK_EQ_INT(r.u.contacts.count, 1);
    /* PING reaches the database (for /healthz), with no arena at all. */
    memset(&r, 0, sizeof r);
    r.op = STORE_OP_PING;
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    r.ordered = true;
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    CHECK(store_op_is_write(STORE_OP_FILE_INSERT));
    CHECK(!store_op_is_write(STORE_OP_ACCOUNT_GET));
    CHECK(!store_op_is_write(STORE_OP_PING));
    CHECK(strcmp(store_strerror(STORE_E_CONFLICT), "conflict") == 0);
    CHECK(strcmp(store_strerror(12345), "unknown store error") == 0);
    for (int e = STORE_E_UNAVAILABLE; e < 0; e++)
        CHECK(strcmp(store_strerror(e), "unknown store error") != 0);
}

const sc_case_t sc_cases_messages[] = {
    {"message_insert", test_message_insert},
    {"message_files", test_message_files},
    {"idempotent_client_msg_id", test_idempotent_client_msg_id},
    {"pagination", test_pagination},
    {"messages_since", test_messages_since},
    {"every_op", test_every_op},
    {NULL, NULL},
};
