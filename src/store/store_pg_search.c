/* The PostgreSQL engine: full-text search (issue 16). The GIN index over
 * parlor_search_vector(content) (migration 2) finds candidates in the user's conversations,
 * newest first, in chunks; store_search.c decides which are hits and makes their snippets, as
 * the SQLite engine does. */
#include "store/store_pg_int.h"
#include "store/store_search.h"

#define SEARCH_CHUNK 200

static const char sql_search[] =
    "SELECT " PG_MSG_COLS PG_MSG_FROM
    "JOIN conversation_members cm ON cm.conversation_id = m.conversation_id AND cm.user_id = $1"
    " WHERE parlor_search_vector(m.content) @@ $2::text::tsquery AND m.pos < $3"
    " ORDER BY m.pos DESC LIMIT $4";
static const char sql_search_conv[] =
    "SELECT " PG_MSG_COLS PG_MSG_FROM "WHERE m.conversation_id = $1"
    " AND parlor_search_vector(m.content) @@ $2::text::tsquery AND m.pos < $3"
    " ORDER BY m.pos DESC LIMIT $4";
static const char sql_search_access[] =
    "SELECT EXISTS (SELECT 1 FROM conversation_members WHERE conversation_id = $1"
    " AND user_id = $2), EXISTS (SELECT 1 FROM conversations WHERE id = $1)";

static int access_check(store_pg_t *db, str_t conv, str_t user)
{
    pg_params_t p = {0};
    pg_p_str(&p, conv);
    pg_p_str(&p, user);
    PGresult *r;
    int rc = pg_query(db, P_SEARCH_ACCESS, sql_search_access, &p, &r);
    if (rc != STORE_OK) return rc;
    rc = PQntuples(r) != 1  ? STORE_E_IO
         : pg_bool(r, 0, 0) ? STORE_OK
         : pg_bool(r, 0, 1) ? STORE_E_FORBIDDEN
                            : STORE_E_NOT_FOUND;
    PQclear(r);
    return rc;
}

int pg_search(store_pg_t *db, store_search_t *op, store_arena_t *a)
{
    store_search_query_t q;
    bool by_conv;
    size_t limit;
    int rc = store_search_begin(op, a, &q, &by_conv, &limit);
    if (rc != STORE_OK) return rc;
    if (by_conv && (rc = access_check(db, op->conversation_id, op->user)) != STORE_OK) return rc;
    char tsq[STORE_SEARCH_QUERY_TEXT];
    store_search_tsquery(&q, tsq, sizeof tsq);
    int64_t before = op->before_pos > 0 ? op->before_pos : INT64_MAX;
    size_t scanned = 0;
    store_search_hit_t *first = NULL;
    bool more = true;
    rc = STORE_OK;
    while (rc == STORE_OK && more && op->count < limit && scanned < STORE_SEARCH_SCAN_MAX) {
        pg_params_t p = {0};
        pg_p_str(&p, by_conv ? op->conversation_id : op->user);
        pg_p_cstr(&p, tsq);
        pg_p_i64(&p, before);
        pg_p_i64(&p, SEARCH_CHUNK);
        PGresult *r;
        rc = pg_query(db, by_conv ? P_SEARCH_CONV : P_SEARCH,
                      by_conv ? sql_search_conv : sql_search, &p, &r);
        if (rc != STORE_OK) break;
        int rows = PQntuples(r), i;
        for (i = 0; i < rows && op->count < limit && scanned < STORE_SEARCH_SCAN_MAX; i++) {
            scanned++;
            store_arena_mark_t mark = store_arena_mark(a);
            store_search_hit_t *h = ARENA_PUSH(a, store_search_hit_t);
            rc = h ? pg_msg_from_row(r, i, 0, &h->msg, a) : STORE_E_NOSPACE;
            int64_t pos = rc == STORE_OK ? h->msg.pos : pg_i64(r, i, 3);
            before = pos;
            if (rc == STORE_OK && !store_search_match(&q, h->msg.content)) {
                store_arena_restore(a, mark);
                continue;
            }
            if (rc == STORE_OK) rc = store_search_snippet(&q, h->msg.content, a, &h->snippet);
            if (rc == STORE_E_NOSPACE && op->count > 0) { /* the page ends before it */
                store_arena_restore(a, mark);
                before = pos + 1;
                rc = STORE_OK;
                break;
            }
            if (rc != STORE_OK) break;
            if (!first) first = h;
            op->count++;
        }
        if (rc == STORE_OK && i == rows) more = rows == SEARCH_CHUNK;
        PQclear(r);
        if (rc == STORE_OK && i < rows && op->count < limit && scanned < STORE_SEARCH_SCAN_MAX)
            break; /* cut short by the arena */
    }
    if (rc != STORE_OK) {
        op->count = 0;
        return rc;
    }
    op->next_pos = more && before > 1 ? before : 0;
    op->hits = first;
    return STORE_OK;
}
