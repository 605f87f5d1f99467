/* The PostgreSQL engine: the webhook outbox (store.h). Events are recorded inside the
 * transaction of what causes them (parlor_send and parlor_mark_read in SQL, schema version 4;
 * conversations made here through pg_outbox_add). Several nodes claim from one table: a claim
 * locks its rows with FOR UPDATE SKIP LOCKED and leases them (lease_until) in the same
 * statement, so no two nodes send the same row at once, and a row whose node died is handed
 * out again once its lease ends. */
#include "store/store_pg_int.h"

static const char sql_add[] = "SELECT parlor_outbox_add($1::integer, $2, NULL, NULL, 0, $3)";

int pg_outbox_add(store_pg_t *db, store_outbox_type_t type, const char *conv, int64_t now)
{
    if (!store_outbox_settings()->on) return STORE_OK;
    pg_params_t p = {0};
    pg_p_i64(&p, (int64_t)type);
    pg_p_cstr(&p, conv);
    pg_p_i64(&p, now);
    PGresult *r;
    int rc = pg_query(db, P_OB_ADD, sql_add, &p, &r);
    PQclear(r);
    return rc;
}

/* Due message.unread rows become one row per member still behind the message. */
static const char sql_expand[] =
    "WITH p AS (DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM webhook_outbox"
    " WHERE state = 0 AND type = 3 AND user_id IS NULL AND due_at <= $1 ORDER BY due_at, id"
    " LIMIT 1000 FOR UPDATE SKIP LOCKED) RETURNING id, conversation_id, message_id, seq)"
    " INSERT INTO webhook_outbox (type, conversation_id, message_id, user_id, seq, ordered,"
    " created_at, due_at) SELECT 3, p.conversation_id, p.message_id, cm.user_id, p.seq, false,"
    " $1, $1 FROM p JOIN messages m ON m.id = p.message_id AND NOT m.deleted"
    " JOIN conversation_members cm ON cm.conversation_id = p.conversation_id"
    " AND cm.user_id <> m.sender AND cm.read_seq < p.seq ORDER BY p.id, cm.user_id";

static const char sql_claim[] =
    "WITH c AS (SELECT id FROM webhook_outbox WHERE state = 0 AND due_at <= $1"
    " AND lease_until <= $1 AND NOT (type = 3 AND user_id IS NULL) ORDER BY due_at, id"
    " LIMIT $2 FOR UPDATE SKIP LOCKED)"
    " UPDATE webhook_outbox o SET lease_until = $1 + $3, attempts = o.attempts + 1 FROM c"
    " WHERE o.id = c.id RETURNING o.id, o.type, o.conversation_id, o.message_id, o.user_id,"
    " o.seq, o.created_at, o.attempts, o.done_mask, o.ordered";

/* The rows queued behind a head (they wait: due_at NULL, so no other node claims them). */
static const char sql_run[] =
    "UPDATE webhook_outbox o SET lease_until = $3, attempts = o.attempts + 1"
    " WHERE o.id IN (SELECT e.id FROM webhook_outbox e WHERE e.conversation_id = $1"
    " AND e.state = 0 AND e.ordered AND e.id > $2 ORDER BY e.id LIMIT $4)"
    " RETURNING o.id, o.type, o.conversation_id, o.message_id, o.user_id, o.seq, o.created_at,"
    " o.attempts, o.done_mask, o.ordered";

static const char sql_release[] =
    "UPDATE webhook_outbox SET lease_until = 0, attempts = attempts - 1 WHERE id = $1";

#define OB_CLAIM_MAX 256

static int row_read(const PGresult *res, int i, store_outbox_row_t *r, store_arena_t *a)
{
    memset(r, 0, sizeof *r);
    r->id = pg_i64(res, i, 0);
    r->type = (store_outbox_type_t)pg_i64(res, i, 1);
    pg_col_id(res, i, 2, r->conversation_id);
    pg_col_id(res, i, 3, r->message_id);
    r->seq = pg_i64(res, i, 5);
    r->created_at = pg_i64(res, i, 6);
    r->attempts = pg_i64(res, i, 7);
    r->done_mask = (uint32_t)pg_i64(res, i, 8);
    r->follows = pg_bool(res, i, 9); /* "ordered" until the caller fixes it */
    return pg_col_str(res, i, 4, a, &r->user);
}

static const char sql_msg[] = "SELECT " PG_MSG_COLS PG_MSG_FROM "WHERE m.id = $1";

static const char sql_counts[] =
    "SELECT count(*) FILTER (WHERE state = 0), count(*) FILTER (WHERE state = 2)"
    " FROM webhook_outbox";

static int by_id(const void *x, const void *y)
{
    const store_outbox_row_t *a = x, *b = y;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int row_documents(store_pg_t *db, store_outbox_row_t *r, store_arena_t *a)
{
    int rc;
    PGresult *res;
    if (r->message_id[0]) {
        store_message_t *m = ARENA_BACK(a, store_message_t, 1);
        if (!m) return STORE_E_NOSPACE;
        pg_params_t p = {0};
        pg_p_cstr(&p, r->message_id);
        /* P_MSG_BY_ID is store_pg_messages.c's statement of the same text */
        if ((rc = pg_query(db, P_MSG_BY_ID, sql_msg, &p, &res)) != STORE_OK) return rc;
        if (PQntuples(res) == 1) {
            rc = pg_msg_from_row(res, 0, 0, m, a);
            if (rc == STORE_OK) r->message = m;
        }
        PQclear(res);
        if (rc != STORE_OK) return rc;
    }
    store_conversation_t *c = ARENA_BACK(a, store_conversation_t, 1);
    if (!c) return STORE_E_NOSPACE;
    rc = pg_conv_load(db, str_cstr(r->conversation_id), STR_NULL, c, a);
    if (rc == STORE_OK) r->conversation = c;
    return rc == STORE_E_NOT_FOUND ? STORE_OK : rc;
}

int pg_outbox_claim(store_pg_t *db, store_outbox_claim_t *op, store_arena_t *a, int64_t now)
{
    store_arena_reset(a);
    op->rows = NULL;
    op->count = 0;
    op->pending = op->failed = 0;
    if ((op->limit == 0 && !op->counts) || op->lease_ms <= 0) return STORE_E_INVALID;
    int rc = pg_op_begin(db);
    if (rc != STORE_OK) return rc;
    PGresult *res = NULL;
    store_outbox_row_t *rows = NULL;
    int n = 0;
    if (op->limit == 0) goto count; /* only the counts */
    pg_params_t p = {0};
    pg_p_i64(&p, now);
    if ((rc = pg_query(db, P_OB_EXPAND, sql_expand, &p, &res)) != STORE_OK) goto out;
    PQclear(res);
    size_t limit = op->limit > OB_CLAIM_MAX ? OB_CLAIM_MAX : op->limit;
    pg_p_i64(&p, (int64_t)limit);
    pg_p_i64(&p, op->lease_ms);
    if ((rc = pg_query(db, P_OB_CLAIM, sql_claim, &p, &res)) != STORE_OK) goto out;
    int nh = PQntuples(res);
    store_outbox_row_t *heads = nh ? ARENA_BACK(a, store_outbox_row_t, (size_t)nh) : NULL;
    rows = nh ? ARENA_BACK(a, store_outbox_row_t, limit) : NULL;
    if (nh && (!heads || !rows)) rc = STORE_E_NOSPACE;
    for (int i = 0; i < nh && rc == STORE_OK; i++) rc = row_read(res, i, &heads[i], a);
    PQclear(res);
    if (rc != STORE_OK) goto out;
    if (nh > 1) qsort(heads, (size_t)nh, sizeof *heads, by_id);
    for (int h = 0; h < nh; h++) {
        if ((size_t)n == limit) {
            /* runs filled the batch: the heads left over are given back unsent */
            pg_params_t q = {0};
            pg_p_i64(&q, heads[h].id);
            if ((rc = pg_query(db, P_OB_RELEASE, sql_release, &q, &res)) != STORE_OK) goto out;
            PQclear(res);
            continue;
        }
        bool ordered = heads[h].follows;
        rows[n] = heads[h];
        rows[n++].follows = false;
        size_t room = limit - (size_t)n;
        if (!ordered || op->run_max == 0 || room == 0) continue;
        pg_params_t q = {0};
        pg_p_cstr(&q, heads[h].conversation_id);
        pg_p_i64(&q, heads[h].id);
        pg_p_i64(&q, now + op->lease_ms);
        pg_p_i64(&q, (int64_t)(room < op->run_max ? room : op->run_max));
        if ((rc = pg_query(db, P_OB_RUN, sql_run, &q, &res)) != STORE_OK) goto out;
        int k = PQntuples(res), first = n;
        for (int i = 0; i < k && rc == STORE_OK; i++) {
            rc = row_read(res, i, &rows[n], a);
            rows[n++].follows = true;
        }
        PQclear(res);
        if (rc != STORE_OK) goto out;
        if (k > 1) qsort(&rows[first], (size_t)k, sizeof *rows, by_id);
    }
    for (int i = 0; i < n; i++) {
        rc = row_documents(db, &rows[i], a);
        if (rc == STORE_E_NOSPACE && i > 0) {
            /* the rest comes back when its lease ends (a full arena is a huge batch) */
            n = i;
            rc = STORE_OK;
            break;
        }
        if (rc != STORE_OK) goto out;
    }
    op->rows = n ? rows : NULL;
    op->count = (size_t)n;
count:
    if (op->counts) {
        if ((rc = pg_query(db, P_OB_COUNTS, sql_counts, NULL, &res)) != STORE_OK) goto out;
        op->pending = pg_i64(res, 0, 0);
        op->failed = pg_i64(res, 0, 1);
        PQclear(res);
    }
out:
    if (rc != STORE_OK) {
        op->rows = NULL;
        op->count = 0;
    }
    return pg_op_end(db, rc);
}

static const char sql_ack[] =
    "SELECT parlor_outbox_ack($1::bigint, $2::integer, $3::bigint, $4::bigint, $5::bigint)";

int pg_outbox_ack(store_pg_t *db, const store_outbox_ack_t *op, int64_t now)
{
    if (op->count && !op->results) return STORE_E_INVALID;
    int rc = pg_op_begin(db);
    if (rc != STORE_OK) return rc;
    for (size_t i = 0; i < op->count && rc == STORE_OK; i++) {
        const store_outbox_result_t *r = &op->results[i];
        pg_params_t p = {0};
        pg_p_i64(&p, r->id);
        pg_p_i64(&p, (int64_t)r->outcome);
        pg_p_i64(&p, r->due_at);
        pg_p_i64(&p, (int64_t)r->done_mask);
        pg_p_i64(&p, now);
        PGresult *res;
        rc = pg_query(db, P_OB_ACK, sql_ack, &p, &res);
        PQclear(res);
    }
    return pg_op_end(db, rc);
}
