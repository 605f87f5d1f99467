/* The SQLite engine: full-text search (issue 16). FTS5 (migration 5) finds candidates in the
 * user's conversations, newest first, in chunks; store_search.c decides which are hits and
 * makes their snippets, as the PostgreSQL engine does. */
#include "store/store_search.h"
#include "store/store_sqlite_int.h"

#define SEARCH_CHUNK 200

int store_sqlite_search(store_sqlite_t *db, store_search_t *op, store_arena_t *a)
{
    store_search_query_t q;
    bool by_conv;
    size_t limit;
    int rc = store_search_begin(op, a, &q, &by_conv, &limit);
    if (rc != STORE_OK) return rc;
    if (by_conv && (rc = sq_check_access(db, op->conversation_id, op->user)) != STORE_OK) return rc;
    char fts[STORE_SEARCH_QUERY_TEXT];
    store_search_fts5(&q, fts, sizeof fts);
    sqlite3_stmt *st = sq_stmt_get(db, by_conv ? S_SEARCH_CONV : S_SEARCH);
    if (!st) return STORE_E_IO;
    int64_t before = op->before_pos > 0 ? op->before_pos : INT64_MAX;
    size_t scanned = 0;
    store_search_hit_t *first = NULL;
    bool more = true;
    rc = STORE_OK;
    while (rc == STORE_OK && more && op->count < limit && scanned < STORE_SEARCH_SCAN_MAX) {
        sq_bind_str(st, 1, by_conv ? op->conversation_id : op->user);
        sq_bind_cstr(st, 2, fts);
        sqlite3_bind_int64(st, 3, before);
        sqlite3_bind_int64(st, 4, SEARCH_CHUNK);
        size_t rows = 0;
        while (op->count < limit && scanned < STORE_SEARCH_SCAN_MAX &&
               (rc = sq_stmt_row(st)) == STORE_OK) {
            rows++;
            scanned++;
            int64_t pos = sq_col_i64(st, 3);
            before = pos;
            const unsigned char *t = sqlite3_column_blob(st, 6);
            str_t content = str_make((const char *)t, (size_t)sqlite3_column_bytes(st, 6));
            if (!store_search_match(&q, content)) continue;
            store_arena_mark_t mark = store_arena_mark(a);
            store_search_hit_t *h = ARENA_PUSH(a, store_search_hit_t);
            rc = h ? sq_msg_from_row(st, &h->msg, a) : STORE_E_NOSPACE;
            if (rc == STORE_OK) rc = store_search_snippet(&q, h->msg.content, a, &h->snippet);
            if (rc == STORE_E_NOSPACE && op->count > 0) { /* the page ends before it */
                store_arena_restore(a, mark);
                before = pos + 1;
                rc = STORE_OK;
                more = true;
                goto done;
            }
            if (rc != STORE_OK) break;
            if (!first) first = h;
            op->count++;
        }
        if (rc == STORE_E_NOT_FOUND) {
            rc = STORE_OK;
            more = rows == SEARCH_CHUNK;
        }
        sqlite3_reset(st);
    }
done:
    sqlite3_reset(st);
    if (rc != STORE_OK) {
        op->count = 0;
        return rc;
    }
    /* More may match below `before` unless the candidates ran out. */
    op->next_pos = more && before > 1 ? before : 0;
    op->hits = first;
    return STORE_OK;
}

int sq_fts_insert(store_sqlite_t *db, int64_t pos, str_t content)
{
    sqlite3_stmt *st = sq_stmt_get(db, S_FTS_INSERT);
    if (!st) return STORE_E_IO;
    sqlite3_bind_int64(st, 1, pos);
    sq_bind_str(st, 2, content);
    return sq_stmt_run(st);
}
