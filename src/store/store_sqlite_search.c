/* The SQLite engine: full-text search (issue 16). FTS5 (migration 5) finds candidates in the
 * user's conversations, newest first, in chunks; store_search.c decides which are hits and
 * makes their snippets, as the PostgreSQL engine does.
 *
 * The index is kept behind a watermark (migration 9, fts_state.indexed_pos): the writer
 * indexes the rows above it in chunks (sq_fts_catch_up), so a search reads the rows above it
 * (at most about SQ_FTS_PENDING_MAX, or those of the last SQ_FTS_DELAY_MS) directly, newest
 * first, and then the index's candidates at or below it. Both come from one read transaction,
 * so a search sees every message committed before it began, indexed or not. */
#include "store/store_search.h"
#include "store/store_sqlite_int.h"

#include "core/log.h"

#define SEARCH_CHUNK 200

typedef struct {
    store_search_t *op;
    const store_search_query_t *q;
    store_arena_t *a;
    size_t limit, scanned;
    store_search_hit_t *first, *last;
    int64_t before; /* the next candidate lies below this pos */
    bool more;      /* candidates may remain below `before` */
    bool stop;      /* the page is full, or the scan budget spent */
} scan_t;

/* Runs st (?1 the user or the conversation, ?2 the FTS5 query or the watermark, ?3 below which
 * pos, ?4 the chunk size) chunk by chunk from s->before down, adding the hits to the page. */
static int scan(scan_t *s, sqlite3_stmt *st, str_t key, const char *fts, int64_t watermark)
{
    int rc = STORE_OK;
    s->more = true;
    while (rc == STORE_OK && s->more && !s->stop) {
        if (s->op->count >= s->limit || s->scanned >= STORE_SEARCH_SCAN_MAX) {
            s->stop = true;
            break;
        }
        sq_bind_str(st, 1, key);
        if (fts)
            sq_bind_cstr(st, 2, fts);
        else
            sqlite3_bind_int64(st, 2, watermark);
        sqlite3_bind_int64(st, 3, s->before);
        sqlite3_bind_int64(st, 4, SEARCH_CHUNK);
        size_t rows = 0;
        while (s->op->count < s->limit && s->scanned < STORE_SEARCH_SCAN_MAX &&
               (rc = sq_stmt_row(st)) == STORE_OK) {
            rows++;
            s->scanned++;
            int64_t pos = sq_col_i64(st, 3);
            s->before = pos;
            const unsigned char *t = sqlite3_column_blob(st, 6);
            str_t content = str_make((const char *)t, (size_t)sqlite3_column_bytes(st, 6));
            if (!store_search_match(s->q, content)) continue;
            store_arena_mark_t mark = store_arena_mark(s->a);
            store_search_hit_t *h = ARENA_PUSH(s->a, store_search_hit_t);
            rc = h ? sq_msg_from_row(st, &h->msg, s->a) : STORE_E_NOSPACE;
            if (rc == STORE_OK) rc = store_search_snippet(s->q, h->msg.content, s->a, &h->snippet);
            if (rc == STORE_E_NOSPACE && s->op->count > 0) { /* the page ends before it */
                store_arena_restore(s->a, mark);
                s->before = pos + 1;
                s->more = s->stop = true;
                rc = STORE_OK;
                break;
            }
            if (rc != STORE_OK) break;
            if (!s->first) s->first = h;
            s->op->count++;
        }
        if (rc == STORE_E_NOT_FOUND) {
            rc = STORE_OK;
            s->more = rows == SEARCH_CHUNK;
        }
        sqlite3_reset(st);
    }
    sqlite3_reset(st);
    return rc;
}

static int search(store_sqlite_t *db, store_search_t *op, store_arena_t *a,
                  const store_search_query_t *q, bool by_conv, size_t limit)
{
    /* The watermark, in the transaction the rows are read in. */
    sqlite3_stmt *st = sq_stmt_get(db, S_FTS_STATE);
    if (!st) return STORE_E_IO;
    int rc = sq_stmt_row(st);
    int64_t watermark = rc == STORE_OK ? sq_col_i64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != STORE_OK) return rc == STORE_E_NOT_FOUND ? STORE_E_IO : rc;

    str_t key = by_conv ? op->conversation_id : op->user;
    scan_t s = {.op = op, .q = q, .a = a, .limit = limit};
    s.before = op->before_pos > 0 ? op->before_pos : INT64_MAX;
    /* The rows above the watermark, newest first: no index entry yet. */
    if (s.before > watermark + 1) {
        if (!(st = sq_stmt_get(db, by_conv ? S_SEARCH_TAIL_CONV : S_SEARCH_TAIL)))
            return STORE_E_IO;
        if ((rc = scan(&s, st, key, NULL, watermark)) != STORE_OK) return rc;
        if (!s.stop) s.before = watermark + 1;
    }
    /* Then the index's candidates at or below it. */
    if (!s.stop) {
        char fts[STORE_SEARCH_QUERY_TEXT];
        store_search_fts5(q, fts, sizeof fts);
        if (!(st = sq_stmt_get(db, by_conv ? S_SEARCH_CONV : S_SEARCH))) return STORE_E_IO;
        if ((rc = scan(&s, st, key, fts, 0)) != STORE_OK) return rc;
    }
    /* More may match below `before` unless the candidates ran out. */
    op->next_pos = s.more && s.before > 1 ? s.before : 0;
    op->hits = s.first;
    return STORE_OK;
}

int store_sqlite_search(store_sqlite_t *db, store_search_t *op, store_arena_t *a)
{
    store_search_query_t q;
    bool by_conv;
    size_t limit;
    int rc = store_search_begin(op, a, &q, &by_conv, &limit);
    if (rc != STORE_OK) return rc;
    /* One read transaction: the watermark, the rows above it and the index agree. */
    if ((rc = sq_op_begin(db)) != STORE_OK) return rc;
    if (by_conv) rc = sq_check_access(db, op->conversation_id, op->user);
    if (rc == STORE_OK) rc = search(db, op, a, &q, by_conv, limit);
    rc = sq_op_end(db, rc);
    if (rc != STORE_OK) {
        op->count = 0;
        op->hits = NULL;
        op->next_pos = 0;
    }
    return rc;
}

/* ---- The writer's side ------------------------------------------------------------------- */

static int catch_up(store_sqlite_t *db)
{
    sqlite3_stmt *st = sq_stmt_get(db, S_FTS_STATE);
    if (!st) return STORE_E_IO;
    int rc = sq_stmt_row(st);
    int64_t from = sq_col_i64(st, 0), to = sq_col_i64(st, 1);
    sqlite3_reset(st);
    if (rc != STORE_OK) return rc == STORE_E_NOT_FOUND ? STORE_E_IO : rc;
    if (to <= from) return STORE_OK;
    /* One statement for the whole chunk: FTS5 writes it as one segment. */
    if (!(st = sq_stmt_get(db, S_FTS_INDEX))) return STORE_E_IO;
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    if ((rc = sq_stmt_run(st)) != STORE_OK) return rc;
    if (!(st = sq_stmt_get(db, S_FTS_MARK))) return STORE_E_IO;
    sqlite3_bind_int64(st, 1, to);
    return sq_stmt_run(st);
}

int sq_fts_catch_up(store_sqlite_t *db)
{
    int rc = sq_run_simple(db, S_FTS_SP_BEGIN);
    if (rc != STORE_OK) return rc;
    rc = catch_up(db);
    if (rc == STORE_OK) rc = sq_run_simple(db, S_FTS_SP_RELEASE);
    if (rc != STORE_OK) {
        /* the rows stay above the watermark, where search reads them; tried again later */
        log_warn("store: indexing messages for search failed: %s", sqlite3_errmsg(db->db));
        if (!sqlite3_get_autocommit(db->db)) {
            sq_run_simple(db, S_FTS_SP_ROLLBACK);
            sq_run_simple(db, S_FTS_SP_RELEASE);
        }
        return rc;
    }
    db->fts_pending = 0;
    db->fts_since = 0;
    return STORE_OK;
}

int sq_fts_catch_up_now(store_sqlite_t *db)
{
    int rc = sq_run_simple(db, S_BEGIN);
    if (rc != STORE_OK) return rc;
    rc = sq_fts_catch_up(db);
    if (rc == STORE_OK) rc = sq_run_simple(db, S_COMMIT);
    if (rc != STORE_OK) {
        if (!sqlite3_get_autocommit(db->db)) sq_run_simple(db, S_ROLLBACK);
        sq_fts_note(db, SQ_FTS_PENDING_MAX); /* try again next time */
    }
    return rc;
}
