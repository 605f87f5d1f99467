/* Conformance cases: edits and deletions (STORE_OP_MESSAGE_UPDATE, issue 16): only the
 * sender, only text for an edit, the edit window, tombstones keep id and seq, a deleted
 * message's file goes with it, and an edited or deleted message moves to a new recovery
 * position (guarantee 4) so that MESSAGES_SINCE returns it again (store_conformance.h). */
#include "store_conformance.h"

static int edit(sc_t *t, const char *user, const char *id, const char *text, int64_t window,
                int64_t now, store_message_update_t *op)
{
    store_arena_t ar = sc_arena();
    *op = (store_message_update_t){.user = str_cstr(user),
                                   .message_id = str_cstr(id),
                                   .content = str_cstr(text),
                                   .window_ms = window};
    return sc_message_update(t, op, &ar, now);
}

static int del(sc_t *t, const char *user, const char *id, int64_t now, store_message_update_t *op)
{
    store_arena_t ar = sc_arena();
    *op = (store_message_update_t){
        .user = str_cstr(user), .message_id = str_cstr(id), .remove = true};
    return sc_message_update(t, op, &ar, now);
}

static void test_edit(sc_t *t)
{
    char conv[ID_SIZE], id1[ID_SIZE], id2[ID_SIZE];
    sc_direct(t, "alice", "bob", conv);
    sc_upsert(t, "mallory", "M");
    store_message_insert_t in;
    CHECK_EQ_INT(sc_send_at(t, conv, "alice", "helo", 10000, &in), STORE_OK);
    memcpy(id1, in.msg.id, ID_SIZE);
    int64_t pos1 = in.msg.pos;
    CHECK_EQ_INT(sc_send_at(t, conv, "bob", "hi", 11000, &in), STORE_OK);
    memcpy(id2, in.msg.id, ID_SIZE);
    int64_t pos2 = in.msg.pos;

    store_message_update_t op;
    CHECK_EQ_INT(edit(t, "alice", id1, "hello", 0, 20000, &op), STORE_OK);
    CHECK(op.changed);
    CHECK_MEM(op.msg.content.ptr, op.msg.content.len, "hello");
    CHECK_EQ_INT(op.msg.seq, 1);
    CHECK(strcmp(op.msg.id, id1) == 0);
    CHECK_EQ_INT(op.msg.edited_at, 20000);
    CHECK_EQ_INT(op.msg.updated_at, 20000);
    CHECK_EQ_INT(op.msg.created_at, 10000);
    CHECK(!op.msg.deleted);
    CHECK(op.msg.pos > pos2); /* a new position, above everything before */
    int64_t pos_edit = op.msg.pos;

    /* Refusals: not the sender, not a member, unknown, bad input, the window. */
    CHECK_EQ_INT(edit(t, "bob", id1, "x", 0, 20000, &op), STORE_E_FORBIDDEN);
    CHECK(!op.window_passed);
    CHECK_EQ_INT(edit(t, "mallory", id1, "x", 0, 20000, &op), STORE_E_NOT_FOUND);
    CHECK_EQ_INT(edit(t, "alice", "65a0000000000000000000ff", "x", 0, 20000, &op),
                 STORE_E_NOT_FOUND);
    CHECK_EQ_INT(edit(t, "alice", "nope", "x", 0, 20000, &op), STORE_E_INVALID);
    CHECK_EQ_INT(edit(t, "bad id", id1, "x", 0, 20000, &op), STORE_E_INVALID);
    CHECK_EQ_INT(edit(t, "alice", id1, "late", 5000, 15001, &op), STORE_E_FORBIDDEN);
    CHECK(op.window_passed);
    CHECK_EQ_INT(edit(t, "alice", id1, "in time", 5000, 15000, &op), STORE_OK);

    /* History shows the current state; seq and order unchanged. */
    store_arena_t ar = sc_arena();
    store_messages_page_t pg = {.conversation_id = str_cstr(conv), .requester = STR_LIT("bob")};
    CHECK_EQ_INT(sc_messages_page(t, &pg, &ar), STORE_OK);
    CHECK_EQ_INT(pg.count, 2);
    if (pg.count == 2) {
        CHECK_MEM(pg.msgs[0].content.ptr, pg.msgs[0].content.len, "in time");
        CHECK_EQ_INT(pg.msgs[0].edited_at, 15000);
        CHECK_EQ_INT(pg.msgs[1].edited_at, 0);
        CHECK_EQ_INT(pg.msgs[1].seq, 2);
    }
    /* Recovery from a position after the first edit returns the message again. */
    ar = sc_arena();
    store_messages_since_t ms = {.user = STR_LIT("bob"), .after_pos = pos_edit};
    CHECK_EQ_INT(sc_messages_since(t, &ms, &ar), STORE_OK);
    CHECK_EQ_INT(ms.count, 1);
    if (ms.count == 1) {
        CHECK(strcmp(ms.msgs[0].id, id1) == 0);
        CHECK_MEM(ms.msgs[0].content.ptr, ms.msgs[0].content.len, "in time");
    }
    CHECK(ms.last_pos >= ms.msgs[0].pos);
    /* From before both: each message once, the edited one last (ascending pos). */
    ar = sc_arena();
    ms = (store_messages_since_t){.user = STR_LIT("bob"), .after_pos = pos1 - 1};
    CHECK_EQ_INT(sc_messages_since(t, &ms, &ar), STORE_OK);
    CHECK_EQ_INT(ms.count, 2);
    if (ms.count == 2) {
        CHECK(strcmp(ms.msgs[0].id, id2) == 0);
        CHECK(strcmp(ms.msgs[1].id, id1) == 0);
    }
    /* A later send still gets a position above the edit's, and the next seq. */
    CHECK_EQ_INT(sc_send_at(t, conv, "bob", "after", 16000, &in), STORE_OK);
    CHECK_EQ_INT(in.msg.seq, 3);
    CHECK(in.msg.pos > ms.msgs[1].pos);
}

static void test_delete(sc_t *t)
{
    char conv[ID_SIZE], id1[ID_SIZE], id2[ID_SIZE], id3[ID_SIZE];
    sc_direct(t, "alice", "bob", conv);
    store_message_insert_t in;
    CHECK_EQ_INT(sc_send_at(t, conv, "alice", "one", 10000, &in), STORE_OK);
    memcpy(id1, in.msg.id, ID_SIZE);
    CHECK_EQ_INT(sc_send_at(t, conv, "alice", "two", 10001, &in), STORE_OK);
    memcpy(id2, in.msg.id, ID_SIZE);
    CHECK_EQ_INT(sc_send_at(t, conv, "alice", "three", 10002, &in), STORE_OK);
    memcpy(id3, in.msg.id, ID_SIZE);
    int64_t pos3 = in.msg.pos;

    store_message_update_t op;
    CHECK_EQ_INT(del(t, "bob", id2, 20000, &op), STORE_E_FORBIDDEN);
    CHECK_EQ_INT(del(t, "alice", id2, 20000, &op), STORE_OK);
    CHECK(op.changed);
    CHECK(op.msg.deleted);
    CHECK_EQ_INT(op.msg.content.len, 0);
    CHECK(op.msg.file == NULL);
    CHECK_EQ_INT(op.msg.seq, 2);
    CHECK(strcmp(op.msg.id, id2) == 0);
    CHECK_EQ_INT(op.msg.updated_at, 20000);
    CHECK(op.msg.pos > pos3);
    CHECK(op.file_path.ptr == NULL);
    /* Again: nothing changes. An edit of a tombstone is refused. */
    CHECK_EQ_INT(del(t, "alice", id2, 21000, &op), STORE_OK);
    CHECK(!op.changed);
    CHECK(op.msg.deleted);
    CHECK_EQ_INT(edit(t, "alice", id2, "back", 0, 21000, &op), STORE_E_NOT_FOUND);
    /* Deleting is not bound by an edit window. */
    CHECK_EQ_INT(del(t, "alice", id3, 1000000000, &op), STORE_OK);

    /* The page stays gap-free with tombstones in place; the last message is the tombstone;
     * deleted messages are not unread. */
    store_arena_t ar = sc_arena();
    store_messages_page_t pg = {.conversation_id = str_cstr(conv), .requester = STR_LIT("bob")};
    CHECK_EQ_INT(sc_messages_page(t, &pg, &ar), STORE_OK);
    CHECK_EQ_INT(pg.count, 3);
    for (size_t i = 0; i < pg.count; i++) CHECK_EQ_INT(pg.msgs[i].seq, (int64_t)i + 1);
    if (pg.count == 3) {
        CHECK(!pg.msgs[0].deleted);
        CHECK(pg.msgs[1].deleted);
        CHECK(pg.msgs[2].deleted);
    }
    ar = sc_arena();
    store_conversation_get_t cg = {.id = str_cstr(conv), .requester = STR_LIT("bob")};
    CHECK_EQ_INT(sc_conversation_get(t, &cg, &ar), STORE_OK);
    CHECK_EQ_INT(cg.conv.unread_count, 1);
    CHECK(cg.conv.last_message && cg.conv.last_message->deleted);
    store_mark_read_t mr = {.user = STR_LIT("bob"), .message_id = str_cstr(id1)};
    CHECK_EQ_INT(sc_mark_read(t, &mr, 30000), STORE_OK);
    CHECK_EQ_INT(mr.unread_count, 0);
    /* The next send continues the seq. */
    CHECK_EQ_INT(sc_send(t, conv, "alice", "four"), 4);
}

static void test_delete_file(sc_t *t)
{
    char conv[ID_SIZE];
    sc_direct(t, "alice", "bob", conv);
    store_file_insert_t fi = {{.owner = STR_LIT("alice"),
                               .name = STR_LIT("lease.pdf"),
                               .mime = STR_LIT("application/pdf"),
                               .path = STR_LIT("ab/cd"),
                               .sha256 = STR_LIT("e3b0c442"),
                               .size = 1234},
                              .quota = 0};
    CHECK_EQ_INT(sc_file_insert(t, &fi, 4000), STORE_OK);
    char fid[ID_SIZE];
    memcpy(fid, fi.file.id, ID_SIZE);
    store_arena_t ar = sc_arena();
    char ids[2][ID_SIZE];
    for (int i = 0; i < 2; i++) {
        store_message_insert_t in = {.sender = STR_LIT("alice"),
                                     .conversation_id = str_cstr(conv),
                                     .content = STR_LIT(""),
                                     .type = STORE_MSG_FILE,
                                     .file_id = str_cstr(fid)};
        ar = sc_arena();
        CHECK_EQ_INT(sc_message_insert(t, &in, &ar, 5000 + i), STORE_OK);
        memcpy(ids[i], in.msg.id, ID_SIZE);
    }
    store_message_update_t op;
    /* A file message's content is not editable. */
    CHECK_EQ_INT(edit(t, "alice", ids[0], "x", 0, 6000, &op), STORE_E_INVALID);
    /* Another message still refers to the file: it stays. */
    CHECK_EQ_INT(del(t, "alice", ids[0], 6000, &op), STORE_OK);
    CHECK(op.file_path.ptr == NULL);
    ar = sc_arena();
    store_file_get_t fg = {.id = str_cstr(fid), .requester = STR_LIT("bob")};
    CHECK_EQ_INT(sc_file_get(t, &fg, &ar), STORE_OK);
    CHECK(fg.allowed);
    /* The last one: the record goes, its path comes back to be removed. */
    CHECK_EQ_INT(del(t, "alice", ids[1], 6001, &op), STORE_OK);
    CHECK(op.msg.deleted && op.msg.file == NULL);
    CHECK_MEM(op.file_path.ptr, op.file_path.len, "ab/cd");
    ar = sc_arena();
    fg = (store_file_get_t){.id = str_cstr(fid), .requester = STR_LIT("alice")};
    CHECK_EQ_INT(sc_file_get(t, &fg, &ar), STORE_E_NOT_FOUND);
}

const sc_case_t sc_cases_edits[] = {
    {"message_edit", test_edit},
    {"message_delete", test_delete},
    {"message_delete_file", test_delete_file},
    {NULL, NULL},
};
