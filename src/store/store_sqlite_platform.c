/* The SQLite engine: what the platform's server API needs (issue 15): system notices and
 * group membership changes. */
#include "store/store_sqlite_int.h"

/* The answer to a repeated system clientMsgId: what was stored the first time. */
static int system_by_client_id(store_sqlite_t *db, store_system_insert_t *op, store_arena_t *a)
{
    sqlite3_stmt *st = sq_stmt_get(db, S_MSG_BY_CLIENT_ID);
    if (!st) return STORE_E_IO;
    sq_bind_cstr(st, 1, STORE_SYSTEM_SENDER);
    sq_bind_str(st, 2, op->client_msg_id);
    int rc = sq_stmt_row(st);
    if (rc == STORE_OK) {
        rc = sq_msg_from_row(st, &op->msg, a);
        op->duplicate = rc == STORE_OK;
    }
    sqlite3_reset(st);
    return rc;
}

static int system_insert(store_sqlite_t *db, store_system_insert_t *op, store_arena_t *a,
                         int64_t now)
{
    int rc;
    if (store_present(op->client_msg_id)) {
        rc = system_by_client_id(db, op, a);
        if (rc != STORE_E_NOT_FOUND) return rc;
    }
    /* sq_op_begin wrote the send cache's rows, so last_seq here is the newest */
    sqlite3_stmt *st = sq_stmt_get(db, S_CONV_NEXT_SEQ);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, op->conversation_id);
    sqlite3_bind_int64(st, 2, now);
    int64_t seq = 0;
    rc = sq_stmt_row(st);
    if (rc == STORE_OK) seq = sq_col_i64(st, 0);
    sqlite3_reset(st);
    if (rc != STORE_OK) return rc;
    char id[ID_SIZE], conv[ID_SIZE];
    id_generate(id);
    memcpy(conv, op->conversation_id.ptr, ID_LEN);
    conv[ID_LEN] = '\0';
    if (!(st = sq_stmt_get(db, S_MSG_INSERT))) return STORE_E_IO;
    sq_bind_cstr(st, 1, id);
    sq_bind_cstr(st, 2, conv);
    sqlite3_bind_int64(st, 3, seq);
    sq_bind_cstr(st, 4, STORE_SYSTEM_SENDER);
    sqlite3_bind_null(st, 5);
    sq_bind_str(st, 6, op->content);
    sq_bind_cstr(st, 7, "text");
    sqlite3_bind_null(st, 8);
    sq_bind_opt(st, 9, op->client_msg_id);
    sqlite3_bind_int64(st, 10, now);
    if ((rc = sq_stmt_run(st)) != STORE_OK) return rc;
    /* a conversation in the send cache: its seq moved past what the cache holds */
    send_conv_t *c = db->convs.buckets ? strmap_get(&db->convs, conv) : NULL;
    if (c && c->last_seq < seq) c->last_seq = seq;
    if (!(st = sq_stmt_get(db, S_MSG_BY_ID))) return STORE_E_IO;
    sq_bind_cstr(st, 1, id);
    if ((rc = sq_stmt_row(st)) == STORE_OK) rc = sq_msg_from_row(st, &op->msg, a);
    sqlite3_reset(st);
    return rc == STORE_E_NOT_FOUND ? STORE_E_IO : rc;
}

int store_sqlite_system_insert(store_sqlite_t *db, store_system_insert_t *op, store_arena_t *a,
                               int64_t now)
{
    store_arena_reset(a);
    memset(&op->msg, 0, sizeof op->msg);
    op->duplicate = false;
    if (!id_valid(op->conversation_id) || !op->content.ptr || op->content.len > STORE_CONTENT_MAX ||
        !store_valid_opt(op->client_msg_id, STORE_CLIENT_MSG_ID_MAX))
        return STORE_E_INVALID;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    rc = system_insert(db, op, a, now);
    if (rc != STORE_OK) {
        memset(&op->msg, 0, sizeof op->msg);
        op->duplicate = false;
    }
    return sq_op_end(db, rc);
}

static int members_change(store_sqlite_t *db, store_members_change_t *op, int64_t now)
{
    char conv[ID_SIZE];
    memcpy(conv, op->conversation_id.ptr, ID_LEN);
    conv[ID_LEN] = '\0';
    sqlite3_stmt *st = sq_stmt_get(db, S_CONV_TYPE);
    if (!st) return STORE_E_IO;
    sq_bind_cstr(st, 1, conv);
    int rc = sq_stmt_row(st);
    bool group = rc == STORE_OK && sq_col_eq(st, 0, STR_LIT("group"));
    sqlite3_reset(st);
    if (rc != STORE_OK) return rc;
    if (!group) return STORE_E_INVALID;
    if (!(st = sq_stmt_get(db, S_MEMBER_GET))) return STORE_E_IO;
    sq_bind_cstr(st, 1, conv);
    sq_bind_str(st, 2, op->user);
    rc = sq_stmt_row(st);
    sqlite3_reset(st);
    if (rc != STORE_OK && rc != STORE_E_NOT_FOUND) return rc;
    bool member = rc == STORE_OK;
    if (member == op->add) return STORE_OK; /* nothing to change */
    if (op->add) {
        int64_t n = 0;
        if (!(st = sq_stmt_get(db, S_MEMBER_COUNT))) return STORE_E_IO;
        sq_bind_cstr(st, 1, conv);
        if ((rc = sq_stmt_row(st)) == STORE_OK) n = sq_col_i64(st, 0);
        sqlite3_reset(st);
        if (rc != STORE_OK) return rc;
        if (n >= STORE_GROUP_MAX) return STORE_E_LIMIT;
        if ((rc = sq_member_insert(db, conv, op->user, now)) != STORE_OK) return rc;
    } else {
        if (!(st = sq_stmt_get(db, S_MEMBER_DELETE))) return STORE_E_IO;
        sq_bind_cstr(st, 1, conv);
        sq_bind_str(st, 2, op->user);
        if ((rc = sq_stmt_run(st)) != STORE_OK) return rc;
    }
    op->changed = true;
    return STORE_OK;
}

int store_sqlite_members_change(store_sqlite_t *db, store_members_change_t *op, store_arena_t *a,
                                int64_t now)
{
    store_arena_reset(a);
    memset(&op->conv, 0, sizeof op->conv);
    op->changed = false;
    if (!id_valid(op->conversation_id) || !store_valid_user_id(op->user) ||
        str_eq_cstr(op->user, STORE_SYSTEM_SENDER))
        return STORE_E_INVALID;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    rc = members_change(db, op, now);
    if (rc == STORE_OK) rc = sq_conv_load(db, op->conversation_id, STR_NULL, &op->conv, a);
    if (rc != STORE_OK) op->changed = false;
    return sq_op_end(db, rc);
}
