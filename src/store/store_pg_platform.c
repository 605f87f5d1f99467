/* The PostgreSQL engine: what the platform's server API needs (issue 15): system notices
 * (parlor_send_system, migration 4) and group membership changes. */
#include "store/store_pg_int.h"

static const char sql_send_system[] = "SELECT * FROM parlor_send_system($1, $2, $3, $4, $5)";
static const char sql_msg_by_id[] = "SELECT " PG_MSG_COLS PG_MSG_FROM "WHERE m.id = $1";

int pg_system_insert(store_pg_t *db, store_system_insert_t *op, store_arena_t *a, int64_t now)
{
    store_arena_reset(a);
    memset(&op->msg, 0, sizeof op->msg);
    op->duplicate = false;
    if (!id_valid(op->conversation_id) || !op->content.ptr || op->content.len > STORE_CONTENT_MAX ||
        !store_valid_opt(op->client_msg_id, STORE_CLIENT_MSG_ID_MAX))
        return STORE_E_INVALID;
    char id[ID_SIZE];
    id_generate(id);
    pg_params_t p = {0};
    pg_p_str(&p, op->conversation_id);
    pg_p_bytes(&p, op->content);
    pg_p_opt(&p, op->client_msg_id);
    pg_p_i64(&p, now);
    pg_p_cstr(&p, id);
    if (p.bad) return STORE_E_INVALID;
    int rc = pg_op_begin(db);
    if (rc != STORE_OK) return rc;
    PGresult *r;
    char got[ID_SIZE] = "";
    if ((rc = pg_query(db, P_SEND_SYSTEM, sql_send_system, &p, &r)) != STORE_OK)
        return pg_op_end(db, rc);
    rc = PQntuples(r) == 1 ? (int)pg_i64(r, 0, 0) : STORE_E_IO;
    if (rc == STORE_OK) {
        op->duplicate = pg_bool(r, 0, 1);
        pg_col_id(r, 0, 2, got);
    }
    PQclear(r);
    if (rc == STORE_OK) {
        pg_params_t q = {0};
        pg_p_cstr(&q, got);
        if ((rc = pg_query(db, P_MSG_BY_ID, sql_msg_by_id, &q, &r)) == STORE_OK) {
            rc = PQntuples(r) == 1 ? pg_msg_from_row(r, 0, 0, &op->msg, a) : STORE_E_IO;
            PQclear(r);
        }
    }
    if (rc != STORE_OK) {
        memset(&op->msg, 0, sizeof op->msg);
        op->duplicate = false;
    }
    return pg_op_end(db, rc);
}

/* The conversation's type, its row locked (membership changes of one group in order). */
static const char sql_conv_type_lock[] = "SELECT type FROM conversations WHERE id = $1 FOR UPDATE";
static const char sql_member_is[] =
    "SELECT 1 FROM conversation_members WHERE conversation_id = $1 AND user_id = $2";
static const char sql_member_count[] =
    "SELECT count(*) FROM conversation_members WHERE conversation_id = $1";
static const char sql_member_add[] =
    "WITH u AS (INSERT INTO users (id, created_at) VALUES ($2, $3) ON CONFLICT DO NOTHING)"
    " INSERT INTO conversation_members (conversation_id, user_id, read_seq, joined_at)"
    " VALUES ($1, $2, 0, $3) ON CONFLICT DO NOTHING";
static const char sql_member_delete[] =
    "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2";

static int members_change(store_pg_t *db, store_members_change_t *op, int64_t now)
{
    pg_params_t p = {0};
    PGresult *r;
    pg_p_str(&p, op->conversation_id);
    int rc = pg_query(db, P_CONV_TYPE_LOCK, sql_conv_type_lock, &p, &r);
    if (rc != STORE_OK) return rc;
    bool found = PQntuples(r) == 1, group = found && strcmp(PQgetvalue(r, 0, 0), "group") == 0;
    PQclear(r);
    if (!found) return STORE_E_NOT_FOUND;
    if (!group) return STORE_E_INVALID;
    pg_p_str(&p, op->user);
    if ((rc = pg_query(db, P_MEMBER_IS, sql_member_is, &p, &r)) != STORE_OK) return rc;
    bool member = PQntuples(r) == 1;
    PQclear(r);
    if (member == op->add) return STORE_OK;
    if (op->add) {
        pg_params_t c = {0};
        pg_p_str(&c, op->conversation_id);
        if ((rc = pg_query(db, P_MEMBER_COUNT, sql_member_count, &c, &r)) != STORE_OK) return rc;
        int64_t n = PQntuples(r) == 1 ? pg_i64(r, 0, 0) : 0;
        PQclear(r);
        if (n >= STORE_GROUP_MAX) return STORE_E_LIMIT;
        pg_p_i64(&p, now);
        rc = pg_query(db, P_MEMBER_ADD, sql_member_add, &p, &r);
    } else {
        rc = pg_query(db, P_MEMBER_DELETE, sql_member_delete, &p, &r);
    }
    if (rc != STORE_OK) return rc;
    PQclear(r);
    op->changed = true;
    return STORE_OK;
}

int pg_members_change(store_pg_t *db, store_members_change_t *op, store_arena_t *a, int64_t now)
{
    store_arena_reset(a);
    memset(&op->conv, 0, sizeof op->conv);
    op->changed = false;
    if (!id_valid(op->conversation_id) || !store_valid_user_id(op->user) ||
        str_eq_cstr(op->user, STORE_SYSTEM_SENDER))
        return STORE_E_INVALID;
    int rc = pg_op_begin(db);
    if (rc != STORE_OK) return rc;
    rc = members_change(db, op, now);
    if (rc == STORE_OK) rc = pg_conv_load(db, op->conversation_id, STR_NULL, &op->conv, a);
    if (rc != STORE_OK) op->changed = false;
    return pg_op_end(db, rc);
}

/* ---- export and erase ---- */

static const char sql_exp_user[] = "SELECT id, name, role, username, last_seen, created_at, NULL"
                                   " FROM users WHERE id = $1";
static const char sql_exp_memberships[] =
    "SELECT conversation_id, read_seq, joined_at FROM conversation_members WHERE user_id = $1"
    " ORDER BY conversation_id LIMIT $2";
static const char sql_exp_files[] =
    "SELECT id, owner, name, size, mime, path, sha256, created_at FROM files WHERE owner = $1"
    " ORDER BY created_at, id LIMIT $2";
static const char sql_exp_blocks[] =
    "SELECT blocked, created_at FROM blocks WHERE blocker = $1 ORDER BY blocked LIMIT $2";
static const char sql_exp_messages[] =
    "SELECT " PG_MSG_COLS PG_MSG_FROM "WHERE m.sender = $1 AND m.pos > $2 ORDER BY m.pos LIMIT $3";

static int exp_query(store_pg_t *db, int id, const char *sql, str_t user, PGresult **r, size_t *n,
                     bool *more)
{
    pg_params_t p = {0};
    pg_p_str(&p, user);
    pg_p_i64(&p, STORE_EXPORT_LIST_MAX + 1);
    int rc = pg_query(db, id, sql, &p, r);
    if (rc != STORE_OK) return rc;
    *n = (size_t)PQntuples(*r);
    if (*n > STORE_EXPORT_LIST_MAX) *more = true, *n = STORE_EXPORT_LIST_MAX;
    return STORE_OK;
}

static int export_lists(store_pg_t *db, store_user_export_t *op, store_arena_t *a)
{
    pg_params_t p = {0};
    PGresult *r;
    size_t n;
    pg_p_str(&p, op->user);
    int rc = pg_query(db, P_EXP_USER, sql_exp_user, &p, &r);
    if (rc != STORE_OK) return rc;
    if (PQntuples(r) == 1) {
        rc = pg_user_from_row(r, 0, &op->record, a);
        op->found = rc == STORE_OK;
    }
    PQclear(r);
    if (rc != STORE_OK) return rc;

    if ((rc = exp_query(db, P_EXP_MEMBERSHIPS, sql_exp_memberships, op->user, &r, &n,
                        &op->lists_more)) != STORE_OK)
        return rc;
    store_membership_t *ms = n ? ARENA_BACK(a, store_membership_t, n) : NULL;
    if (n && !ms) rc = STORE_E_NOSPACE;
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        pg_col_id(r, (int)i, 0, ms[i].conversation_id);
        ms[i].read_seq = pg_i64(r, (int)i, 1);
        ms[i].joined_at = pg_i64(r, (int)i, 2);
    }
    PQclear(r);
    if (rc != STORE_OK) return rc;
    op->memberships = ms;
    op->nmemberships = n;

    if ((rc = exp_query(db, P_EXP_FILES, sql_exp_files, op->user, &r, &n, &op->lists_more)) !=
        STORE_OK)
        return rc;
    store_file_t *fs = n ? ARENA_BACK(a, store_file_t, n) : NULL;
    if (n && !fs) rc = STORE_E_NOSPACE;
    for (size_t i = 0; rc == STORE_OK && i < n; i++) rc = pg_file_from_row(r, (int)i, 0, &fs[i], a);
    PQclear(r);
    if (rc != STORE_OK) return rc;
    op->files = fs;
    op->nfiles = n;

    if ((rc = exp_query(db, P_EXP_BLOCKS, sql_exp_blocks, op->user, &r, &n, &op->lists_more)) !=
        STORE_OK)
        return rc;
    store_block_t *bs = n ? ARENA_BACK(a, store_block_t, n) : NULL;
    if (n && !bs) rc = STORE_E_NOSPACE;
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        rc = pg_col_str(r, (int)i, 0, a, &bs[i].user_id);
        bs[i].created_at = pg_i64(r, (int)i, 1);
    }
    PQclear(r);
    if (rc != STORE_OK) return rc;
    op->blocks = bs;
    op->nblocks = n;
    return STORE_OK;
}

int pg_user_export(store_pg_t *db, store_user_export_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    op->found = op->lists_more = false;
    memset(&op->record, 0, sizeof op->record);
    op->memberships = NULL, op->files = NULL, op->blocks = NULL, op->msgs = NULL;
    op->nmemberships = op->nfiles = op->nblocks = op->count = 0;
    op->next_pos = 0;
    if (!store_valid_user_id(op->user) || op->after_pos < 0) return STORE_E_INVALID;
    size_t limit = store_page_limit(op->limit);
    /* one snapshot for the lists and the page */
    int rc = pg_op_begin(db);
    if (rc != STORE_OK) return rc;
    if (op->after_pos == 0 && (rc = export_lists(db, op, a)) != STORE_OK) return pg_op_end(db, rc);
    pg_params_t p = {0};
    PGresult *r;
    pg_p_str(&p, op->user);
    pg_p_i64(&p, op->after_pos);
    pg_p_i64(&p, (int64_t)limit + 1);
    if ((rc = pg_query(db, P_EXP_MESSAGES, sql_exp_messages, &p, &r)) != STORE_OK)
        return pg_op_end(db, rc);
    int rows = PQntuples(r);
    store_message_t *head = NULL;
    for (int i = 0; i < rows; i++) {
        if (op->count == limit) {
            op->next_pos = head[op->count - 1].pos;
            break;
        }
        store_arena_mark_t mark = store_arena_mark(a);
        store_message_t *m = ARENA_PUSH(a, store_message_t);
        rc = m ? pg_msg_from_row(r, i, 0, m, a) : STORE_E_NOSPACE;
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
    PQclear(r);
    op->msgs = head;
    if (rc != STORE_OK) op->count = 0;
    return pg_op_end(db, rc);
}

static const char sql_erase[] = "SELECT * FROM parlor_erase_user($1, $2)";

int pg_user_erase(store_pg_t *db, store_user_erase_t *op, store_arena_t *a, int64_t now)
{
    store_arena_reset(a);
    op->messages = op->conversations = 0;
    op->file_paths = NULL;
    op->nfiles = 0;
    op->found = false;
    if (!store_valid_user_id(op->user) || str_eq_cstr(op->user, STORE_SYSTEM_SENDER))
        return STORE_E_INVALID;
    pg_params_t p = {0};
    pg_p_str(&p, op->user);
    pg_p_i64(&p, now);
    int rc = pg_op_begin(db);
    if (rc != STORE_OK) return rc;
    PGresult *r;
    if ((rc = pg_query(db, P_ERASE, sql_erase, &p, &r)) != STORE_OK) return pg_op_end(db, rc);
    str_t *paths = NULL;
    for (int i = 0; i < PQntuples(r) && rc == STORE_OK; i++) {
        const char *kind = PQgetvalue(r, i, 0);
        int64_t n = pg_i64(r, i, 1);
        if (!strcmp(kind, "messages")) {
            op->messages = n;
        } else if (!strcmp(kind, "conversations")) {
            op->conversations = n;
        } else if (!strcmp(kind, "user")) {
            op->found = n > 0;
        } else if (!strcmp(kind, "file")) {
            str_t *pth = ARENA_PUSH(a, str_t);
            if (!pth) {
                rc = STORE_E_NOSPACE;
                break;
            }
            rc = pg_col_str(r, i, 2, a, pth);
            if (!paths) paths = pth;
            op->nfiles++;
        }
    }
    PQclear(r);
    op->file_paths = paths;
    if (rc != STORE_OK) op->nfiles = 0;
    return pg_op_end(db, rc);
}
