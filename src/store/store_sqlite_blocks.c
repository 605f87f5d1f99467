/* The SQLite engine: blocks between users and the unread total (issue 16). The send path's check is
 * in store_sqlite_messages.c, inside the insert's own transaction. */
#include "store/store_sqlite_int.h"

/* The writer's block filter. Every direct send checks for a block between its two users, and
 * blocks are rare. The writer is the only writer of the blocks table, so it keeps a bitmap of
 * the hashed ids of users who took part in any block: set when a block is written, built from
 * the table when first needed. A pair with either bit clear has no block and costs no query;
 * only a pair with both bits set asks the table. Its size is fixed whatever the table holds
 * (16 KiB, false positives grow with the number of users in blocks: 10,000 of them set ~7 % of
 * the bits, and a pair asks the table only when both are set). Bits are never cleared: an
 * unblock, an erase or a rolled-back batch leaves a false positive, which the query answers.
 * Another connection writing blocks (not Parlor, which keeps one writer per file) shows as a
 * new PRAGMA data_version, checked once per batch; the filter is then rebuilt. */
#define BLOCK_FILTER_BITS (1u << 17)

static uint32_t block_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return (uint32_t)(h ^ (h >> 32)) & (BLOCK_FILTER_BITS - 1);
}

static void filter_set(uint64_t *bits, const char *p, size_t n)
{
    uint32_t h = block_hash(p, n);
    bits[h / 64] |= 1ull << (h % 64);
}

static bool filter_has(const uint64_t *bits, str_t s)
{
    uint32_t h = block_hash(s.ptr, s.len);
    return (bits[h / 64] >> (h % 64)) & 1;
}

void sq_block_filter_free(store_sqlite_t *db)
{
    free(db->block_bits);
    db->block_bits = NULL;
    db->block_bits_checked = false;
}

void sq_block_filter_mark(store_sqlite_t *db, str_t a, str_t b)
{
    if (!db->block_bits) return; /* built from the table, this block included, when needed */
    filter_set(db->block_bits, a.ptr, a.len);
    filter_set(db->block_bits, b.ptr, b.len);
}

static int data_version(store_sqlite_t *db, int64_t *v)
{
    sqlite3_stmt *st = sq_stmt_get(db, S_DATA_VERSION);
    if (!st) return STORE_E_IO;
    int rc = sq_stmt_row(st);
    if (rc == STORE_OK) *v = sq_col_i64(st, 0);
    sqlite3_reset(st);
    return rc;
}

/* The version is read before the scan: a block committed by another connection in between is
 * in the scan and changes the version too, so the next check rebuilds (harmless). */
static int filter_build(store_sqlite_t *db)
{
    int64_t v = 0;
    int rc = data_version(db, &v);
    if (rc != STORE_OK) return rc;
    if (!db->block_bits && !(db->block_bits = malloc(BLOCK_FILTER_BITS / 8))) return STORE_E_IO;
    memset(db->block_bits, 0, BLOCK_FILTER_BITS / 8);
    sqlite3_stmt *st = sq_stmt_get(db, S_BLOCK_ALL);
    if (!st) rc = STORE_E_IO;
    while (st && (rc = sq_stmt_row(st)) == STORE_OK) {
        for (int i = 0; i < 2; i++) {
            const unsigned char *t = sqlite3_column_text(st, i);
            if (t) filter_set(db->block_bits, (const char *)t, (size_t)sqlite3_column_bytes(st, i));
        }
    }
    if (st) sqlite3_reset(st);
    if (rc != STORE_E_NOT_FOUND) {
        sq_block_filter_free(db);
        return rc == STORE_OK ? STORE_E_IO : rc;
    }
    db->block_bits_version = v;
    return STORE_OK;
}

/* Whether the filter may answer: built, and no other connection has written since (checked
 * once per writer batch, on every call outside one). */
static bool filter_ready(store_sqlite_t *db)
{
    bool in_txn = db->in_batch && !sqlite3_get_autocommit(db->db);
    if (db->block_bits && in_txn && db->block_bits_checked) return true;
    int64_t v;
    if (db->block_bits && (data_version(db, &v) != STORE_OK || v != db->block_bits_version))
        sq_block_filter_free(db);
    if (!db->block_bits && filter_build(db) != STORE_OK) return false;
    db->block_bits_checked = in_txn;
    return true;
}

int sq_block_between(store_sqlite_t *db, str_t a, str_t b, bool *out)
{
    *out = false;
    if (filter_ready(db) && (!filter_has(db->block_bits, a) || !filter_has(db->block_bits, b)))
        return STORE_OK;
    sqlite3_stmt *st = sq_stmt_get(db, S_BLOCK_EITHER);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, a);
    sq_bind_str(st, 2, b);
    int rc = sq_stmt_row(st);
    if (rc == STORE_OK) *out = sq_col_i64(st, 0) || sq_col_i64(st, 1);
    sqlite3_reset(st);
    return rc;
}

int store_sqlite_block_check(store_sqlite_t *db, store_block_check_t *op)
{
    op->a_blocks_b = op->b_blocks_a = false;
    if (!store_valid_user_id(op->a) || !store_valid_user_id(op->b)) return STORE_E_INVALID;
    sqlite3_stmt *st = sq_stmt_get(db, S_BLOCK_EITHER);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, op->a);
    sq_bind_str(st, 2, op->b);
    int rc = sq_stmt_row(st);
    if (rc == STORE_OK) {
        op->a_blocks_b = sq_col_i64(st, 0) != 0;
        op->b_blocks_a = sq_col_i64(st, 1) != 0;
    }
    sqlite3_reset(st);
    return rc;
}

static int block_get(store_sqlite_t *db, str_t blocker, str_t blocked, int64_t *created_at)
{
    sqlite3_stmt *st = sq_stmt_get(db, S_BLOCK_GET);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, blocker);
    sq_bind_str(st, 2, blocked);
    int rc = sq_stmt_row(st);
    if (rc == STORE_OK) *created_at = sq_col_i64(st, 0);
    sqlite3_reset(st);
    return rc;
}

int store_sqlite_block_set(store_sqlite_t *db, store_block_set_t *op, int64_t now)
{
    op->changed = false;
    op->created_at = 0;
    if (!store_valid_user_id(op->blocker) || !store_valid_user_id(op->blocked) ||
        str_eq(op->blocker, op->blocked))
        return STORE_E_INVALID;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    sqlite3_stmt *st;
    if (!op->on) {
        if (!(st = sq_stmt_get(db, S_BLOCK_DELETE))) {
            rc = STORE_E_IO;
        } else {
            sq_bind_str(st, 1, op->blocker);
            sq_bind_str(st, 2, op->blocked);
            if ((rc = sq_stmt_run(st)) == STORE_OK) op->changed = sqlite3_changes(db->db) > 0;
        }
        return sq_op_end(db, rc);
    }
    rc = block_get(db, op->blocker, op->blocked, &op->created_at);
    if (rc != STORE_E_NOT_FOUND) return sq_op_end(db, rc); /* already blocked, or a failure */
    if (!(st = sq_stmt_get(db, S_BLOCK_COUNT))) return sq_op_end(db, STORE_E_IO);
    sq_bind_str(st, 1, op->blocker);
    rc = sq_stmt_row(st);
    int64_t n = rc == STORE_OK ? sq_col_i64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc == STORE_OK && n >= STORE_BLOCKS_MAX) rc = STORE_E_LIMIT;
    if (rc == STORE_OK) {
        if (!(st = sq_stmt_get(db, S_BLOCK_INSERT))) return sq_op_end(db, STORE_E_IO);
        sq_bind_str(st, 1, op->blocker);
        sq_bind_str(st, 2, op->blocked);
        sqlite3_bind_int64(st, 3, now);
        if ((rc = sq_stmt_run(st)) == STORE_OK) {
            sq_block_filter_mark(db, op->blocker, op->blocked);
            op->changed = true;
            op->created_at = now;
        }
    }
    if (rc != STORE_OK) op->changed = false, op->created_at = 0;
    return sq_op_end(db, rc);
}

int store_sqlite_blocks_list(store_sqlite_t *db, store_blocks_list_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    op->blocks = NULL;
    op->count = 0;
    op->has_more = false;
    if (!store_valid_user_id(op->blocker) ||
        (store_present(op->after) && !store_valid_user_id(op->after)))
        return STORE_E_INVALID;
    size_t limit = store_page_limit(op->limit);
    sqlite3_stmt *st = sq_stmt_get(db, S_BLOCK_LIST);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, op->blocker);
    sq_bind_str(st, 2, store_present(op->after) ? op->after : STR_LIT(""));
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1);
    int rc;
    store_block_t *first = NULL;
    while ((rc = sq_stmt_row(st)) == STORE_OK) {
        if (op->count == limit) {
            op->has_more = true;
            break;
        }
        store_arena_mark_t mark = store_arena_mark(a);
        store_block_t *b = ARENA_PUSH(a, store_block_t);
        rc = b ? sq_col_str(st, 0, a, &b->user_id) : STORE_E_NOSPACE;
        if (rc == STORE_E_NOSPACE && op->count > 0) {
            store_arena_restore(a, mark);
            op->has_more = true;
            rc = STORE_OK;
            break;
        }
        if (rc != STORE_OK) break;
        b->created_at = sq_col_i64(st, 1);
        if (!first) first = b;
        op->count++;
    }
    sqlite3_reset(st);
    if (rc == STORE_E_NOT_FOUND) rc = STORE_OK;
    if (rc != STORE_OK) {
        op->count = 0;
        op->has_more = false;
        return rc;
    }
    op->blocks = first;
    return STORE_OK;
}

int store_sqlite_unread_total(store_sqlite_t *db, store_unread_total_t *op)
{
    op->total = op->conversations = op->conv_unread = op->last_pos = 0;
    if (!store_valid_user_id(op->user)) return STORE_E_INVALID;
    sqlite3_stmt *st = sq_stmt_get(db, S_UNREAD_TOTAL);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, op->user);
    sq_bind_str(st, 2, store_present(op->conversation_id) ? op->conversation_id : STR_LIT(""));
    int rc = sq_stmt_row(st); /* one statement: the counts and last_pos from one snapshot */
    if (rc == STORE_OK) {
        op->total = sq_col_i64(st, 0);
        op->conversations = sq_col_i64(st, 1);
        op->last_pos = sq_col_i64(st, 2);
        op->conv_unread = sq_col_i64(st, 3);
    }
    sqlite3_reset(st);
    return rc;
}
