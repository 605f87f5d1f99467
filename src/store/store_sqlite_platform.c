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
    sq_fts_note(db, 1);
    /* webhooks: a notice is a message.created (and its unread check) like any message */
    if ((rc = sq_outbox_add(db, STORE_OUTBOX_MESSAGE_CREATED, conv, id, STR_NULL, seq, now)) !=
        STORE_OK)
        return rc;
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

/* ---- export and erase ---- */

/* Rows of st (bound, reset by the caller), counted up to max + 1. */
static int count_rows(sqlite3_stmt *st, size_t max, size_t *n)
{
    int rc;
    *n = 0;
    while ((rc = sq_stmt_row(st)) == STORE_OK && *n <= max) (*n)++;
    sqlite3_reset(st);
    return rc == STORE_E_NOT_FOUND || rc == STORE_OK ? STORE_OK : rc;
}

static int export_lists(store_sqlite_t *db, store_user_export_t *op, store_arena_t *a)
{
    int rc;
    size_t n, i;
    sqlite3_stmt *st = sq_stmt_get(db, S_USER_GET);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, op->user);
    rc = sq_stmt_row(st);
    if (rc == STORE_OK) {
        rc = sq_user_from_row(st, &op->record, a);
        op->found = rc == STORE_OK;
    }
    sqlite3_reset(st);
    if (rc != STORE_OK && rc != STORE_E_NOT_FOUND) return rc;

    /* memberships: counted, then read into one array */
    if (!(st = sq_stmt_get(db, S_EXP_MEMBERSHIPS))) return STORE_E_IO;
    sq_bind_str(st, 1, op->user);
    sqlite3_bind_int64(st, 2, STORE_EXPORT_LIST_MAX + 1);
    if ((rc = count_rows(st, STORE_EXPORT_LIST_MAX, &n)) != STORE_OK) return rc;
    if (n > STORE_EXPORT_LIST_MAX) op->lists_more = true, n = STORE_EXPORT_LIST_MAX;
    store_membership_t *ms = n ? ARENA_BACK(a, store_membership_t, n) : NULL;
    if (n && !ms) return STORE_E_NOSPACE;
    for (i = 0; i < n && (rc = sq_stmt_row(st)) == STORE_OK; i++) {
        sq_col_id(st, 0, ms[i].conversation_id);
        ms[i].read_seq = sq_col_i64(st, 1);
        ms[i].joined_at = sq_col_i64(st, 2);
    }
    sqlite3_reset(st);
    op->memberships = ms;
    op->nmemberships = i;

    if (!(st = sq_stmt_get(db, S_EXP_FILES))) return STORE_E_IO;
    sq_bind_str(st, 1, op->user);
    sqlite3_bind_int64(st, 2, STORE_EXPORT_LIST_MAX + 1);
    if ((rc = count_rows(st, STORE_EXPORT_LIST_MAX, &n)) != STORE_OK) return rc;
    if (n > STORE_EXPORT_LIST_MAX) op->lists_more = true, n = STORE_EXPORT_LIST_MAX;
    store_file_t *fs = n ? ARENA_BACK(a, store_file_t, n) : NULL;
    if (n && !fs) return STORE_E_NOSPACE;
    rc = STORE_OK;
    for (i = 0; i < n && (rc = sq_stmt_row(st)) == STORE_OK; i++)
        if ((rc = sq_file_from_row(st, 0, &fs[i], a)) != STORE_OK) break;
    sqlite3_reset(st);
    if (rc != STORE_OK && rc != STORE_E_NOT_FOUND) return rc;
    op->files = fs;
    op->nfiles = i;

    if (!(st = sq_stmt_get(db, S_BLOCK_LIST))) return STORE_E_IO;
    sq_bind_str(st, 1, op->user);
    sq_bind_cstr(st, 2, "");
    sqlite3_bind_int64(st, 3, STORE_EXPORT_LIST_MAX + 1);
    if ((rc = count_rows(st, STORE_EXPORT_LIST_MAX, &n)) != STORE_OK) return rc;
    if (n > STORE_EXPORT_LIST_MAX) op->lists_more = true, n = STORE_EXPORT_LIST_MAX;
    store_block_t *bs = n ? ARENA_BACK(a, store_block_t, n) : NULL;
    if (n && !bs) return STORE_E_NOSPACE;
    rc = STORE_OK;
    for (i = 0; i < n && (rc = sq_stmt_row(st)) == STORE_OK; i++) {
        if ((rc = sq_col_str(st, 0, a, &bs[i].user_id)) != STORE_OK) break;
        bs[i].created_at = sq_col_i64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != STORE_OK && rc != STORE_E_NOT_FOUND) return rc;
    op->blocks = bs;
    op->nblocks = i;
    return STORE_OK;
}

int store_sqlite_user_export(store_sqlite_t *db, store_user_export_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    op->found = op->lists_more = false;
    memset(&op->record, 0, sizeof op->record);
    op->memberships = NULL, op->files = NULL, op->blocks = NULL, op->msgs = NULL;
    op->nmemberships = op->nfiles = op->nblocks = op->count = 0;
    op->next_pos = 0;
    if (!store_valid_user_id(op->user) || op->after_pos < 0) return STORE_E_INVALID;
    size_t limit = store_page_limit(op->limit);
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    if (op->after_pos == 0) rc = export_lists(db, op, a);
    sqlite3_stmt *st = rc == STORE_OK ? sq_stmt_get(db, S_EXP_MESSAGES) : NULL;
    if (rc == STORE_OK && !st) rc = STORE_E_IO;
    if (rc == STORE_OK) {
        sq_bind_str(st, 1, op->user);
        sqlite3_bind_int64(st, 2, op->after_pos);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1);
        store_message_t *head = NULL;
        while ((rc = sq_stmt_row(st)) == STORE_OK) {
            if (op->count == limit) {
                op->next_pos = head[op->count - 1].pos;
                break;
            }
            store_arena_mark_t mark = store_arena_mark(a);
            store_message_t *m = ARENA_PUSH(a, store_message_t);
            rc = m ? sq_msg_from_row(st, m, a) : STORE_E_NOSPACE;
            if (rc == STORE_E_NOSPACE && op->count > 0) {
                store_arena_restore(a, mark);
                op->next_pos = head[op->count - 1].pos;
                rc = STORE_OK;
                break;
            }
            if (rc != STORE_OK) break;
            if (!head) head = m;
            op->count++;
        }
        sqlite3_reset(st);
        if (rc == STORE_E_NOT_FOUND) rc = STORE_OK;
        op->msgs = head;
    }
    if (rc != STORE_OK) op->count = 0;
    return sq_op_end(db, rc);
}

int store_sqlite_user_erase(store_sqlite_t *db, store_user_erase_t *op, store_arena_t *a,
                            int64_t now)
{
    store_arena_reset(a);
    op->messages = op->conversations = 0;
    op->file_paths = NULL;
    op->nfiles = 0;
    op->found = false;
    if (!store_valid_user_id(op->user) || str_eq_cstr(op->user, STORE_SYSTEM_SENDER))
        return STORE_E_INVALID;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    /* the writer's send cache knows the erased user as a member of its direct conversations */
    sq_send_cache_clear(db);
    char(*ids)[ID_SIZE] = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st = sq_stmt_get(db, S_ERASE_MSG_IDS);
    if (!st) return sq_op_end(db, STORE_E_IO);
    sq_bind_str(st, 1, op->user);
    while ((rc = sq_stmt_row(st)) == STORE_OK) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            void *p = realloc(ids, ncap * sizeof *ids);
            if (!p) {
                rc = STORE_E_IO;
                break;
            }
            ids = p;
            cap = ncap;
        }
        sq_col_id(st, 0, ids[n++]);
    }
    sqlite3_reset(st);
    if (rc == STORE_E_NOT_FOUND) rc = STORE_OK;
    /* one by one: each takes the next pos, as a delete does (recovery replays it) */
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        if (!(st = sq_stmt_get(db, S_MSG_TOMBSTONE))) {
            rc = STORE_E_IO;
            break;
        }
        sq_bind_cstr(st, 1, ids[i]);
        sqlite3_bind_int64(st, 2, now);
        rc = sq_stmt_run(st);
    }
    free(ids);
    op->messages = (int64_t)n;
    if (n) sq_fts_note(db, (unsigned)(n < SQ_FTS_PENDING_MAX ? n : SQ_FTS_PENDING_MAX));
    const struct {
        int stmt;
        int64_t *changes;
    } steps[] = {
        {S_ERASE_CMIDS, NULL}, {S_ERASE_MEMBERS, &op->conversations}, {S_ERASE_BLOCKS, NULL}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && rc == STORE_OK; i++) {
        if (!(st = sq_stmt_get(db, steps[i].stmt))) {
            rc = STORE_E_IO;
            break;
        }
        sq_bind_str(st, 1, op->user);
        rc = sq_stmt_run(st);
        if (rc == STORE_OK && steps[i].changes) *steps[i].changes = sqlite3_changes(db->db);
    }
    /* the files: their paths out (counted, then into one array) */
    if (rc == STORE_OK && !(st = sq_stmt_get(db, S_ERASE_FILES))) rc = STORE_E_IO;
    if (rc == STORE_OK) {
        str_t *paths = NULL;
        size_t np = 0;
        sq_bind_str(st, 1, op->user);
        while ((rc = sq_stmt_row(st)) == STORE_OK) {
            str_t *pth = ARENA_PUSH(a, str_t);
            if (!pth) {
                rc = STORE_E_NOSPACE;
                break;
            }
            if ((rc = sq_col_str(st, 0, a, pth)) != STORE_OK) break;
            if (!paths) paths = pth;
            np++;
        }
        sqlite3_reset(st);
        if (rc == STORE_E_NOT_FOUND) rc = STORE_OK;
        op->file_paths = paths;
        op->nfiles = np;
    }
    if (rc == STORE_OK && !(st = sq_stmt_get(db, S_ERASE_USER))) rc = STORE_E_IO;
    if (rc == STORE_OK) {
        sq_bind_str(st, 1, op->user);
        rc = sq_stmt_run(st);
        op->found = rc == STORE_OK && sqlite3_changes(db->db) > 0;
    }
    if (rc != STORE_OK) op->nfiles = 0;
    return sq_op_end(db, rc);
}
