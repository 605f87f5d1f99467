/* The SQLite engine: the webhook outbox (store.h). Events are recorded by the writes that
 * cause them, inside their savepoint; the worker (src/webhook/) claims due rows and acks
 * them. One writer: the claim's lease is only for a restart's sake (a row claimed by a
 * process that died is handed out again once its lease ends). */
#include "store/store_sqlite_int.h"

int sq_outbox_add(store_sqlite_t *db, store_outbox_type_t type, const char *conv, const char *msg,
                  str_t user, int64_t seq, int64_t now)
{
    const store_outbox_settings_t *set = store_outbox_settings();
    if (!set->on || (db->flags & STORE_SQLITE_READONLY)) return STORE_OK;
    sqlite3_stmt *st = sq_stmt_get(db, S_OB_ADD);
    if (!st) return STORE_E_IO;
    sqlite3_bind_int(st, 1, (int)type);
    sq_bind_cstr(st, 2, conv);
    if (msg)
        sq_bind_cstr(st, 3, msg);
    else
        sqlite3_bind_null(st, 3);
    sq_bind_str(st, 4, store_present(user) ? user : STR_NULL);
    sqlite3_bind_int64(st, 5, seq);
    sqlite3_bind_int64(st, 6, now);
    int rc = sq_stmt_run(st);
    if (rc != STORE_OK || type != STORE_OUTBOX_MESSAGE_CREATED) return rc;
    /* The message's unread check, due later (expanded per member at claim time). */
    if (!(st = sq_stmt_get(db, S_OB_ADD_UNREAD))) return STORE_E_IO;
    sq_bind_cstr(st, 1, conv);
    sq_bind_cstr(st, 2, msg);
    sqlite3_bind_int64(st, 3, seq);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, now + set->unread_delay_ms);
    return sq_stmt_run(st);
}

/* The message and conversation a row is about, into the arena (NULL when gone). */
static int row_documents(store_sqlite_t *db, store_outbox_row_t *r, store_arena_t *a)
{
    int rc;
    if (r->message_id[0]) {
        store_message_t *m = ARENA_BACK(a, store_message_t, 1);
        if (!m) return STORE_E_NOSPACE;
        sqlite3_stmt *st = sq_stmt_get(db, S_MSG_BY_ID);
        if (!st) return STORE_E_IO;
        sq_bind_cstr(st, 1, r->message_id);
        rc = sq_stmt_row(st);
        if (rc == STORE_OK) rc = sq_msg_from_row(st, m, a);
        sqlite3_reset(st);
        if (rc == STORE_OK)
            r->message = m;
        else if (rc != STORE_E_NOT_FOUND)
            return rc;
    }
    store_conversation_t *c = ARENA_BACK(a, store_conversation_t, 1);
    if (!c) return STORE_E_NOSPACE;
    rc = sq_conv_load(db, str_cstr(r->conversation_id), STR_NULL, c, a);
    if (rc == STORE_OK) r->conversation = c;
    return rc == STORE_E_NOT_FOUND ? STORE_OK : rc;
}

#define OB_CLAIM_MAX 256 /* rows one claim hands out at most */

/* Columns of S_OB_DUE / S_OB_RUN; follows is set to the row's "ordered" (the caller fixes it). */
static int row_read(sqlite3_stmt *st, store_outbox_row_t *r, store_arena_t *a)
{
    memset(r, 0, sizeof *r);
    r->id = sq_col_i64(st, 0);
    r->type = (store_outbox_type_t)sq_col_i64(st, 1);
    sq_col_id(st, 2, r->conversation_id);
    sq_col_id(st, 3, r->message_id);
    r->seq = sq_col_i64(st, 5);
    r->created_at = sq_col_i64(st, 6);
    r->attempts = sq_col_i64(st, 7) + 1;
    r->done_mask = (uint32_t)sq_col_i64(st, 8);
    r->follows = sq_col_i64(st, 9) != 0;
    return sq_col_str(st, 4, a, &r->user);
}

int store_sqlite_outbox_claim(store_sqlite_t *db, store_outbox_claim_t *op, store_arena_t *a,
                              int64_t now)
{
    store_arena_reset(a);
    op->rows = NULL;
    op->count = 0;
    op->pending = op->failed = 0;
    if ((op->limit == 0 && !op->counts) || op->lease_ms <= 0) return STORE_E_INVALID;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    sqlite3_stmt *st;
    store_outbox_row_t *first = NULL;
    if (op->limit == 0) goto count; /* only the counts */
    if (!(st = sq_stmt_get(db, S_OB_EXPAND))) goto io;
    sqlite3_bind_int64(st, 1, now);
    if ((rc = sq_stmt_run(st)) != STORE_OK) goto out;
    if (!(st = sq_stmt_get(db, S_OB_EXPAND_DROP))) goto io;
    sqlite3_bind_int64(st, 1, now);
    if ((rc = sq_stmt_run(st)) != STORE_OK) goto out;

    /* The due rows (heads), then each ordered head followed by its run. */
    size_t limit = op->limit > OB_CLAIM_MAX ? OB_CLAIM_MAX : op->limit;
    store_outbox_row_t heads[OB_CLAIM_MAX];
    size_t nheads = 0;
    if (!(st = sq_stmt_get(db, S_OB_DUE))) goto io;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (int64_t)limit);
    while (nheads < limit && (rc = sq_stmt_row(st)) == STORE_OK) {
        if ((rc = row_read(st, &heads[nheads], a)) != STORE_OK) break;
        nheads++;
    }
    sqlite3_reset(st);
    if (rc == STORE_E_NOT_FOUND) rc = STORE_OK;
    if (rc == STORE_E_NOSPACE && nheads > 0) rc = STORE_OK;
    if (rc != STORE_OK) goto out;
    for (size_t h = 0; h < nheads && op->count < limit; h++) {
        store_outbox_row_t *r = ARENA_PUSH(a, store_outbox_row_t);
        if (!r) break;
        *r = heads[h];
        if (!first) first = r;
        op->count++;
        if (!heads[h].follows || op->run_max == 0) continue; /* follows: "ordered" here */
        r->follows = false;
        if (!(st = sq_stmt_get(db, S_OB_RUN))) goto io;
        sq_bind_cstr(st, 1, r->conversation_id);
        sqlite3_bind_int64(st, 2, r->id);
        size_t room = limit - op->count;
        sqlite3_bind_int64(st, 3, (int64_t)(room < op->run_max ? room : op->run_max));
        while ((rc = sq_stmt_row(st)) == STORE_OK) {
            store_arena_mark_t mark = store_arena_mark(a);
            store_outbox_row_t *f = ARENA_PUSH(a, store_outbox_row_t);
            if (!f || (rc = row_read(st, f, a)) != STORE_OK) {
                store_arena_restore(a, mark); /* the run ends here; the rest waits */
                rc = STORE_OK;
                break;
            }
            f->follows = true;
            op->count++;
        }
        sqlite3_reset(st);
        if (rc == STORE_E_NOT_FOUND) rc = STORE_OK;
        if (rc != STORE_OK) goto out;
    }
    if (nheads > 0 && op->count == 0) {
        rc = STORE_E_NOSPACE;
        goto out;
    }
    for (size_t i = 0; i < op->count; i++) {
        store_outbox_row_t *r = &first[i];
        if (!(st = sq_stmt_get(db, S_OB_LEASE))) goto io;
        sqlite3_bind_int64(st, 1, r->id);
        sqlite3_bind_int64(st, 2, now + op->lease_ms);
        if ((rc = sq_stmt_run(st)) != STORE_OK) goto out;
        rc = row_documents(db, r, a);
        if (rc == STORE_E_NOSPACE && i > 0) {
            /* the rest stays leased and comes back when the lease ends: end the list here
               and give them back now */
            for (size_t j = i; j < op->count; j++) {
                if (!(st = sq_stmt_get(db, S_OB_LEASE))) goto io;
                sqlite3_bind_int64(st, 1, first[j].id);
                sqlite3_bind_int64(st, 2, 0);
                if ((rc = sq_stmt_run(st)) != STORE_OK) goto out;
            }
            /* attempts went up by one too many for those; harmless (one more retry step) */
            op->count = i;
            rc = STORE_OK;
            break;
        }
        if (rc != STORE_OK) goto out;
    }
    op->rows = op->count ? first : NULL;
count:
    if (op->counts) {
        if (!(st = sq_stmt_get(db, S_OB_COUNTS))) goto io;
        rc = sq_stmt_row(st);
        if (rc == STORE_OK) {
            op->pending = sq_col_i64(st, 0);
            op->failed = sq_col_i64(st, 1);
        }
        sqlite3_reset(st);
        if (rc == STORE_E_NOT_FOUND) rc = STORE_OK;
    }
    goto out;
io:
    rc = STORE_E_IO;
out:
    if (rc != STORE_OK) {
        op->rows = NULL;
        op->count = 0;
    }
    return sq_op_end(db, rc);
}

int store_sqlite_outbox_ack(store_sqlite_t *db, const store_outbox_ack_t *op, int64_t now)
{
    if (op->count && !op->results) return STORE_E_INVALID;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    sqlite3_stmt *st;
    for (size_t i = 0; i < op->count && rc == STORE_OK; i++) {
        const store_outbox_result_t *r = &op->results[i];
        char conv[ID_SIZE];
        bool ordered = false;
        if (!(st = sq_stmt_get(db, S_OB_GET))) goto io;
        sqlite3_bind_int64(st, 1, r->id);
        rc = sq_stmt_row(st);
        if (rc == STORE_OK) {
            sq_col_id(st, 0, conv);
            ordered = sq_col_i64(st, 1) != 0;
        }
        sqlite3_reset(st);
        if (rc == STORE_E_NOT_FOUND) { /* acked already (a lease that ran out) */
            rc = STORE_OK;
            continue;
        }
        if (rc != STORE_OK) break;
        switch (r->outcome) {
        case STORE_OUTBOX_RETRY:
            if (!(st = sq_stmt_get(db, S_OB_RETRY))) goto io;
            sqlite3_bind_int64(st, 1, r->id);
            sqlite3_bind_int64(st, 2, r->due_at);
            sqlite3_bind_int64(st, 3, (int64_t)r->done_mask);
            rc = sq_stmt_run(st);
            continue; /* still the head of its conversation */
        case STORE_OUTBOX_REQUEUE:
            if (!(st = sq_stmt_get(db, S_OB_REQUEUE))) goto io;
            sqlite3_bind_int64(st, 1, r->id);
            rc = sq_stmt_run(st);
            continue;
        case STORE_OUTBOX_FAILED:
            if (!(st = sq_stmt_get(db, S_OB_FAIL))) goto io;
            sqlite3_bind_int64(st, 1, r->id);
            sqlite3_bind_int64(st, 2, now);
            break;
        default:
            if (!(st = sq_stmt_get(db, S_OB_DELETE))) goto io;
            sqlite3_bind_int64(st, 1, r->id);
            break;
        }
        if ((rc = sq_stmt_run(st)) != STORE_OK || !ordered) continue;
        /* the next event of the conversation is due now */
        if (!(st = sq_stmt_get(db, S_OB_PROMOTE))) goto io;
        sq_bind_cstr(st, 1, conv);
        sqlite3_bind_int64(st, 2, now);
        rc = sq_stmt_run(st);
    }
    return sq_op_end(db, rc);
io:
    return sq_op_end(db, STORE_E_IO);
}
