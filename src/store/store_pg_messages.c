/* The PostgreSQL engine: sending (parlor_send), read watermarks (parlor_mark_read) and
 * reading messages. Each read is one statement, so one snapshot. */
#include "store/store_pg_int.h"

const char pg_sql_send[] =
    "SELECT * FROM parlor_send($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const char pg_sql_mark_read[] = "SELECT * FROM parlor_mark_read($1, $2, $3, $4)";

/* Columns: PG_MSG_COLS from `first`. */
int pg_msg_from_row(const PGresult *r, int row, int first, store_message_t *m, store_arena_t *a)
{
    int rc;
    memset(m, 0, sizeof *m);
    pg_col_id(r, row, first + 0, m->id);
    pg_col_id(r, row, first + 1, m->conversation_id);
    m->seq = pg_i64(r, row, first + 2);
    m->pos = pg_i64(r, row, first + 3);
    if ((rc = pg_col_str(r, row, first + 4, a, &m->sender)) ||
        (rc = pg_col_str(r, row, first + 5, a, &m->recipient)) ||
        (rc = pg_col_bytes(r, row, first + 6, a, &m->content)) ||
        (rc = pg_col_str(r, row, first + 8, a, &m->client_msg_id)))
        return rc;
    if (!m->content.ptr) m->content = STR_LIT("");
    m->type = store_msg_type_parse(PQgetvalue(r, row, first + 7));
    m->read_at = pg_i64(r, row, first + 9);
    m->created_at = pg_i64(r, row, first + 10);
    m->updated_at = pg_i64(r, row, first + 11);
    if (!pg_null(r, row, first + 12)) {
        store_file_t *f = ARENA_BACK(a, store_file_t, 1);
        if (!f) return STORE_E_NOSPACE;
        if ((rc = pg_file_from_row(r, row, first + 12, f, a)) != STORE_OK) return rc;
        m->file = f;
    }
    if (PQnfields(r) >= first + PG_MSG_NCOLS) {
        m->edited_at = pg_i64(r, row, first + 20);
        m->deleted = pg_bool(r, row, first + 21);
    }
    return STORE_OK;
}

/* ---- Edits and deletions (parlor_update) ------------------------------------------------- */

static const char sql_update[] = "SELECT * FROM parlor_update($1, $2, $3, $4, $5, $6)";
static const char sql_by_id[] = "SELECT " PG_MSG_COLS PG_MSG_FROM "WHERE m.id = $1";

int pg_message_update(store_pg_t *db, store_message_update_t *op, store_arena_t *a, int64_t now)
{
    store_arena_reset(a);
    memset(&op->msg, 0, sizeof op->msg);
    op->changed = op->window_passed = false;
    op->file_path = STR_NULL;
    if (op->by_server) op->user = STR_LIT(STORE_SYSTEM_SENDER);
    if (!store_valid_user_id(op->user) || !id_valid(op->message_id) ||
        (!op->remove && (!op->content.ptr || op->content.len > STORE_CONTENT_MAX)) ||
        (op->by_server && !op->remove))
        return STORE_E_INVALID;
    pg_params_t p = {0};
    pg_p_str(&p, op->by_server ? STR_NULL : op->user); /* NULL: a server credential */
    pg_p_str(&p, op->message_id);
    pg_p_text(&p, op->remove ? "true" : "false");
    pg_p_bytes(&p, op->remove ? STR_LIT("") : op->content);
    pg_p_i64(&p, op->window_ms);
    pg_p_i64(&p, now);
    if (p.bad) return STORE_E_INVALID;
    int rc = pg_op_begin(db);
    if (rc != STORE_OK) return rc;
    PGresult *r;
    if ((rc = pg_query(db, P_MSG_UPDATE, sql_update, &p, &r)) != STORE_OK) return pg_op_end(db, rc);
    rc = PQntuples(r) == 1 ? (int)pg_i64(r, 0, 0) : STORE_E_IO;
    if (PQntuples(r) == 1) {
        op->changed = pg_bool(r, 0, 1);
        op->window_passed = pg_bool(r, 0, 2);
        if (rc == STORE_OK) {
            int e = pg_col_str(r, 0, 3, a, &op->file_path);
            if (e != STORE_OK) rc = e;
        }
    }
    PQclear(r);
    if (rc == STORE_OK) {
        pg_params_t q = {0};
        pg_p_str(&q, op->message_id);
        if ((rc = pg_query(db, P_MSG_BY_ID, sql_by_id, &q, &r)) == STORE_OK) {
            rc = PQntuples(r) == 1 ? pg_msg_from_row(r, 0, 0, &op->msg, a) : STORE_E_IO;
            PQclear(r);
        }
    }
    return pg_op_end(db, rc);
}

/* ---- Sending ----------------------------------------------------------------------------- */

int pg_message_params(store_message_insert_t *op, int64_t now, pg_params_t *p, pg_scratch_t *s)
{
    memset(&op->msg, 0, sizeof op->msg);
    op->duplicate = false;
    op->conversation_created = false;
    bool by_conv = store_present(op->conversation_id);
    if (!store_valid_user_id(op->sender) || by_conv == store_present(op->recipient) ||
        (by_conv && !id_valid(op->conversation_id)) ||
        (!by_conv && (!store_valid_user_id(op->recipient) || str_eq(op->recipient, op->sender))) ||
        !op->content.ptr || op->content.len > STORE_CONTENT_MAX ||
        (unsigned)op->type > STORE_MSG_FILE ||
        (store_present(op->file_id) && !id_valid(op->file_id)) ||
        !store_valid_opt(op->client_msg_id, STORE_CLIENT_MSG_ID_MAX))
        return STORE_E_INVALID;
    s->key[0] = '\0';
    if (!by_conv) store_direct_key(op->sender, op->recipient, s->key);
    id_generate(s->id);
    id_generate(s->conv);
    pg_p_str(p, op->sender);
    pg_p_opt(p, by_conv ? op->conversation_id : STR_NULL);
    pg_p_opt(p, by_conv ? STR_NULL : op->recipient);
    pg_p_cstr(p, by_conv ? NULL : s->key);
    pg_p_bytes(p, op->content);
    pg_p_cstr(p, store_msg_type_name(op->type));
    pg_p_opt(p, op->file_id);
    pg_p_opt(p, op->client_msg_id);
    pg_p_i64(p, now);
    pg_p_cstr(p, s->id);
    pg_p_cstr(p, s->conv);
    return p->bad ? STORE_E_INVALID : STORE_OK;
}

bool pg_message_fits(const store_message_insert_t *op, const store_arena_t *a)
{
    size_t need = op->sender.len + op->content.len + op->client_msg_id.len + 3 + STORE_USER_ID_MAX +
                  1 /* recipient */;
    if (store_present(op->file_id)) /* the file record, its strings at their largest */
        need += sizeof(store_file_t) + 8 + STORE_USER_ID_MAX + 2 * STORE_NAME_MAX + 4096 + 128 + 5;
    return a->ptr && a->cap >= need;
}

int pg_message_finish(store_message_insert_t *op, store_arena_t *a, const PGresult *res, int row,
                      int first)
{
    store_arena_reset(a);
    op->prev_sender = op->prev_recipient = 0;
    if (row >= PQntuples(res)) return STORE_E_IO;
    int rc = (int)pg_i64(res, row, first);
    if (rc == STORE_OK) {
        bool dup = pg_bool(res, row, first + 1);
        rc = pg_msg_from_row(res, row, first + 3, &op->msg, a);
        if (rc == STORE_OK && !dup) {
            /* the function does not echo the content back: it is the request's */
            rc = store_arena_str(a, op->content.ptr, op->content.len, &op->msg.content);
            op->msg.type = op->type;
        }
        if (rc == STORE_OK) {
            op->duplicate = dup;
            op->conversation_created = pg_bool(res, row, first + 2);
            /* the chain (schema version 6): after the message's columns */
            int at = first + 3 + PG_MSG_NCOLS;
            if (PQnfields(res) >= at + 2) {
                op->prev_sender = pg_i64(res, row, at);
                op->prev_recipient = pg_i64(res, row, at + 1);
            }
        }
    }
    if (rc != STORE_OK) {
        memset(&op->msg, 0, sizeof op->msg);
        op->duplicate = op->conversation_created = false;
    }
    return rc;
}

/* ---- Read watermarks ------------------------------------------------------------------------ */

int pg_mark_read_params(store_mark_read_t *op, int64_t now, pg_params_t *p)
{
    op->conv_id[0] = '\0';
    op->message_seq = op->seq = op->read_at = op->unread_count = 0;
    op->moved = false;
    if (!store_valid_user_id(op->user) || !id_valid(op->message_id) ||
        (store_present(op->conversation_id) && !id_valid(op->conversation_id)))
        return STORE_E_INVALID;
    pg_p_opt(p, op->conversation_id);
    pg_p_str(p, op->user);
    pg_p_str(p, op->message_id);
    pg_p_i64(p, now);
    return STORE_OK;
}

int pg_mark_read_finish(store_mark_read_t *op, const PGresult *res)
{
    if (PQntuples(res) != 1) return STORE_E_IO;
    int rc = (int)pg_i64(res, 0, 0);
    if (rc != STORE_OK) return rc;
    pg_col_id(res, 0, 1, op->conv_id);
    op->message_seq = pg_i64(res, 0, 2);
    op->seq = pg_i64(res, 0, 3);
    op->read_at = pg_i64(res, 0, 4);
    op->unread_count = pg_i64(res, 0, 5);
    op->moved = pg_bool(res, 0, 6);
    return STORE_OK;
}

/* ---- Reading -------------------------------------------------------------------------------- */

/* Reads up to limit messages from the rows of r (their columns from `first`; a row whose
 * message id is NULL is the "no message" row of an outer join) into an array at the arena's
 * front. A message that does not fit ends the list early, reported as "more", unless it is
 * the first (STORE_E_NOSPACE). */
static int msg_list(const PGresult *r, int first, size_t limit, store_arena_t *a,
                    const store_message_t **out, size_t *count, bool *more)
{
    store_message_t *head = NULL;
    *count = 0;
    *more = false;
    *out = NULL;
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
        if (pg_null(r, i, first)) continue;
        if (*count == limit) {
            *more = true;
            break;
        }
        store_arena_mark_t mark = store_arena_mark(a);
        store_message_t *m = ARENA_PUSH(a, store_message_t);
        int rc = m ? pg_msg_from_row(r, i, first, m, a) : STORE_E_NOSPACE;
        if (rc == STORE_E_NOSPACE && *count > 0) {
            store_arena_restore(a, mark);
            *more = true;
            break;
        }
        if (rc != STORE_OK) {
            *count = 0;
            *more = false;
            return rc;
        }
        if (!head) head = m;
        (*count)++;
    }
    *out = head;
    return STORE_OK;
}

/* The access check of a conversation read, as the first column: 0, or NOT_FOUND (-2), or
 * FORBIDDEN (-3) when the requester ($4) is given and not a member. */
#define ACCESS_SQL                                                                                 \
    "(SELECT CASE WHEN $4::text IS NULL THEN (CASE WHEN EXISTS (SELECT 1 FROM conversations"       \
    " WHERE id = $1) THEN 0 ELSE -2 END) WHEN EXISTS (SELECT 1 FROM conversation_members"          \
    " WHERE conversation_id = $1 AND user_id = $4::text) THEN 0 WHEN EXISTS (SELECT 1 FROM"        \
    " conversations WHERE id = $1) THEN -3 ELSE -2 END AS st) a"

static const char sql_page[] =
    "SELECT a.st, x.* FROM " ACCESS_SQL " LEFT JOIN LATERAL (SELECT " PG_MSG_COLS PG_MSG_FROM
    "WHERE a.st = 0 AND m.conversation_id = $1 AND m.seq < $2"
    " ORDER BY m.seq DESC LIMIT $3) x ON true ORDER BY 4 DESC";
static const char sql_after[] =
    "SELECT a.st, x.* FROM " ACCESS_SQL " LEFT JOIN LATERAL (SELECT " PG_MSG_COLS PG_MSG_FROM
    "WHERE a.st = 0 AND m.conversation_id = $1 AND m.seq > $2"
    " ORDER BY m.seq LIMIT $3) x ON true ORDER BY 4";

static int conversation_messages(store_pg_t *db, int sid, const char *sql, str_t conv,
                                 str_t requester, int64_t bound, size_t limit_in, store_arena_t *a,
                                 const store_message_t **msgs, size_t *count, bool *has_more)
{
    store_arena_reset(a);
    *msgs = NULL;
    *count = 0;
    *has_more = false;
    if (!id_valid(conv) || bound < 0 ||
        (store_present(requester) && !store_valid_user_id(requester)))
        return STORE_E_INVALID;
    size_t limit = store_page_limit(limit_in);
    pg_params_t p = {0};
    pg_p_str(&p, conv);
    pg_p_i64(&p, bound);
    pg_p_i64(&p, (int64_t)limit + 1);
    pg_p_opt(&p, requester);
    PGresult *r;
    int rc = pg_query(db, sid, sql, &p, &r);
    if (rc != STORE_OK) return rc;
    rc = PQntuples(r) > 0 ? (int)pg_i64(r, 0, 0) : STORE_E_IO;
    if (rc == STORE_OK) rc = msg_list(r, 1, limit, a, msgs, count, has_more);
    PQclear(r);
    return rc;
}

int pg_messages_page(store_pg_t *db, store_messages_page_t *op, store_arena_t *a)
{
    if (op->before_seq < 0) {
        store_arena_reset(a);
        op->msgs = NULL;
        op->count = 0;
        op->has_more = false;
        return STORE_E_INVALID;
    }
    int rc = conversation_messages(db, P_MSG_PAGE, sql_page, op->conversation_id, op->requester,
                                   op->before_seq > 0 ? op->before_seq : INT64_MAX, op->limit, a,
                                   &op->msgs, &op->count, &op->has_more);
    if (rc == STORE_OK) store_messages_reverse((store_message_t *)op->msgs, op->count);
    return rc;
}

int pg_messages_after(store_pg_t *db, store_messages_after_t *op, store_arena_t *a)
{
    return conversation_messages(db, P_MSG_AFTER, sql_after, op->conversation_id, op->requester,
                                 op->after_seq, op->limit, a, &op->msgs, &op->count, &op->has_more);
}

/* last_pos and the messages in one statement: one snapshot, so last_pos is a position every
 * message at or below which is visible here (store_pg.c). */
static const char sql_since[] =
    "SELECT lp.last_pos, x.* FROM (SELECT coalesce(max(pos), 0) AS last_pos FROM messages) lp"
    " LEFT JOIN LATERAL (SELECT " PG_MSG_COLS PG_MSG_FROM
    "WHERE m.pos > $1 AND m.conversation_id IN (SELECT conversation_id FROM"
    " conversation_members WHERE user_id = $2) ORDER BY m.pos LIMIT $3) x ON true ORDER BY 5";

int pg_messages_since(store_pg_t *db, store_messages_since_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    op->msgs = NULL;
    op->count = 0;
    op->has_more = false;
    op->last_pos = 0;
    if (!store_valid_user_id(op->user) || op->after_pos < 0) return STORE_E_INVALID;
    size_t limit = store_page_limit(op->limit);
    pg_params_t p = {0};
    pg_p_i64(&p, op->after_pos);
    pg_p_str(&p, op->user);
    pg_p_i64(&p, (int64_t)limit + 1);
    PGresult *r;
    int rc = pg_query(db, P_MSG_SINCE, sql_since, &p, &r);
    if (rc != STORE_OK) return rc;
    if (PQntuples(r) < 1) {
        PQclear(r);
        return STORE_E_IO;
    }
    rc = msg_list(r, 1, limit, a, &op->msgs, &op->count, &op->has_more);
    if (rc == STORE_OK) op->last_pos = pg_i64(r, 0, 0);
    PQclear(r);
    return rc;
}
