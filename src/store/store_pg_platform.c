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
