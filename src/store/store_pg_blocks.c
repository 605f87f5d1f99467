/* The PostgreSQL engine: blocks between users and the unread total (issue 16). The send path's
 * check is in parlor_send (migration 2, store_pg_schema.c), inside the insert's statement. */
#include "store/store_pg_int.h"

/* The cap in the insert itself: a block past STORE_BLOCKS_MAX inserts nothing. Two writers
 * racing at the cap may both pass it by one each; the cap bounds abuse, not an invariant. */
static const char sql_block_add[] =
    "INSERT INTO blocks (blocker, blocked, created_at) SELECT $1, $2, $3"
    " WHERE (SELECT count(*) FROM blocks WHERE blocker = $1) < " PG_STR(
        STORE_BLOCKS_MAX) " ON CONFLICT DO NOTHING RETURNING created_at";
static const char sql_block_delete[] = "DELETE FROM blocks WHERE blocker = $1 AND blocked = $2";
static const char sql_block_get[] =
    "SELECT created_at FROM blocks WHERE blocker = $1 AND blocked = $2";
static const char sql_block_list[] =
    "SELECT blocked, created_at FROM blocks WHERE blocker = $1 AND blocked > $2"
    " ORDER BY blocked LIMIT $3";
static const char sql_block_either[] =
    "SELECT EXISTS (SELECT 1 FROM blocks WHERE blocker = $1 AND blocked = $2),"
    " EXISTS (SELECT 1 FROM blocks WHERE blocker = $2 AND blocked = $1)";

int pg_block_check(store_pg_t *db, store_block_check_t *op)
{
    op->a_blocks_b = op->b_blocks_a = false;
    if (!store_valid_user_id(op->a) || !store_valid_user_id(op->b)) return STORE_E_INVALID;
    pg_params_t p = {0};
    pg_p_str(&p, op->a);
    pg_p_str(&p, op->b);
    PGresult *r;
    int rc = pg_query(db, P_BLOCK_EITHER, sql_block_either, &p, &r);
    if (rc != STORE_OK) return rc;
    if (PQntuples(r) == 1) {
        op->a_blocks_b = pg_bool(r, 0, 0);
        op->b_blocks_a = pg_bool(r, 0, 1);
    }
    PQclear(r);
    return STORE_OK;
}

int pg_block_set(store_pg_t *db, store_block_set_t *op, int64_t now)
{
    op->changed = false;
    op->created_at = 0;
    if (!store_valid_user_id(op->blocker) || !store_valid_user_id(op->blocked) ||
        str_eq(op->blocker, op->blocked))
        return STORE_E_INVALID;
    pg_params_t p = {0};
    pg_p_str(&p, op->blocker);
    pg_p_str(&p, op->blocked);
    PGresult *r;
    int rc;
    if (!op->on) {
        if ((rc = pg_op_begin(db)) != STORE_OK) return rc;
        rc = pg_query(db, P_BLOCK_DELETE, sql_block_delete, &p, &r);
        if (rc == STORE_OK) op->changed = atoi(PQcmdTuples(r)) > 0;
        PQclear(r);
        return pg_op_end(db, rc);
    }
    pg_p_i64(&p, now);
    if ((rc = pg_op_begin(db)) != STORE_OK) return rc;
    rc = pg_query(db, P_BLOCK_ADD, sql_block_add, &p, &r);
    if (rc == STORE_OK && PQntuples(r) == 1) {
        op->changed = true;
        op->created_at = pg_i64(r, 0, 0);
    }
    PQclear(r);
    if (rc == STORE_OK && !op->changed) { /* already there, or the cap */
        p.n = 2;
        rc = pg_query(db, P_BLOCK_GET, sql_block_get, &p, &r);
        if (rc == STORE_OK) {
            if (PQntuples(r) == 1)
                op->created_at = pg_i64(r, 0, 0);
            else
                rc = STORE_E_LIMIT;
        }
        PQclear(r);
    }
    return pg_op_end(db, rc);
}

int pg_blocks_list(store_pg_t *db, store_blocks_list_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    op->blocks = NULL;
    op->count = 0;
    op->has_more = false;
    if (!store_valid_user_id(op->blocker) ||
        (store_present(op->after) && !store_valid_user_id(op->after)))
        return STORE_E_INVALID;
    size_t limit = store_page_limit(op->limit);
    pg_params_t p = {0};
    pg_p_str(&p, op->blocker);
    pg_p_str(&p, store_present(op->after) ? op->after : STR_LIT(""));
    pg_p_i64(&p, (int64_t)limit + 1);
    PGresult *r;
    int rc = pg_query(db, P_BLOCK_LIST, sql_block_list, &p, &r);
    if (rc != STORE_OK) return rc;
    store_block_t *first = NULL;
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
        if (op->count == limit) {
            op->has_more = true;
            break;
        }
        store_arena_mark_t mark = store_arena_mark(a);
        store_block_t *b = ARENA_PUSH(a, store_block_t);
        rc = b ? pg_col_str(r, i, 0, a, &b->user_id) : STORE_E_NOSPACE;
        if (rc == STORE_E_NOSPACE && op->count > 0) {
            store_arena_restore(a, mark);
            op->has_more = true;
            rc = STORE_OK;
            break;
        }
        if (rc != STORE_OK) break;
        b->created_at = pg_i64(r, i, 1);
        if (!first) first = b;
        op->count++;
    }
    PQclear(r);
    if (rc != STORE_OK) {
        op->count = 0;
        op->has_more = false;
        return rc;
    }
    op->blocks = first;
    return STORE_OK;
}

/* As SQLite's: each membership's count from the (conversation_id, seq) index; a deleted
 * message is not waiting for anyone. */
static const char sql_unread_total[] =
    "SELECT coalesce(sum(n), 0), count(*), (SELECT coalesce(max(pos), 0) FROM messages),"
    " coalesce(sum(CASE WHEN cid = $2 THEN n END), 0) FROM (SELECT m.conversation_id AS cid,"
    " (SELECT count(*) FROM messages x WHERE x.conversation_id = m.conversation_id"
    " AND x.seq > m.read_seq AND x.sender <> $1 AND NOT x.deleted) AS n"
    " FROM conversation_members m WHERE m.user_id = $1) t WHERE n > 0";

int pg_unread_total(store_pg_t *db, store_unread_total_t *op)
{
    op->total = op->conversations = op->conv_unread = op->last_pos = 0;
    if (!store_valid_user_id(op->user)) return STORE_E_INVALID;
    pg_params_t p = {0};
    pg_p_str(&p, op->user);
    pg_p_str(&p, store_present(op->conversation_id) ? op->conversation_id : STR_LIT(""));
    PGresult *r;
    int rc = pg_query(db, P_UNREAD_TOTAL, sql_unread_total, &p, &r);
    if (rc != STORE_OK) return rc;
    if (PQntuples(r) == 1) {
        op->total = pg_i64(r, 0, 0);
        op->conversations = pg_i64(r, 0, 1);
        op->last_pos = pg_i64(r, 0, 2); /* one statement: one snapshot (store_pg.c, (d)) */
        op->conv_unread = pg_i64(r, 0, 3);
    }
    PQclear(r);
    return STORE_OK;
}
