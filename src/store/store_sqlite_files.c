/* The SQLite engine: file records and who may read them. */
#include "store/store_sqlite_int.h"

/* Columns from `first`: id, owner, name, size, mime, path, sha256, created_at. */
int sq_file_from_row(sqlite3_stmt *st, int first, store_file_t *f, store_arena_t *a)
{
    int rc;
    memset(f, 0, sizeof *f);
    sq_col_id(st, first, f->id);
    if ((rc = sq_col_str(st, first + 1, a, &f->owner)) ||
        (rc = sq_col_str(st, first + 2, a, &f->name)) ||
        (rc = sq_col_str(st, first + 4, a, &f->mime)) ||
        (rc = sq_col_str(st, first + 5, a, &f->path)) ||
        (rc = sq_col_str(st, first + 6, a, &f->sha256)))
        return rc;
    f->size = sq_col_i64(st, first + 3);
    f->created_at = sq_col_i64(st, first + 7);
    return STORE_OK;
}

int store_sqlite_file_insert(store_sqlite_t *db, store_file_insert_t *op, int64_t now)
{
    store_file_t *f = &op->file;
    bool preset = f->id[0] != '\0';
    if ((preset && !id_valid(str_make(f->id, strnlen(f->id, ID_SIZE)))) ||
        !store_valid_user_id(f->owner) || !store_valid_req(f->name, STORE_NAME_MAX) ||
        !store_valid_req(f->mime, STORE_NAME_MAX) || !store_valid_req(f->path, 4096) ||
        !store_valid_req(f->sha256, 128) || f->size < 0)
        return STORE_E_INVALID;
    sqlite3_stmt *st = sq_stmt_get(db, S_FILE_INSERT);
    if (!st) return STORE_E_IO;
    char id[ID_SIZE];
    if (preset)
        memcpy(id, f->id, ID_SIZE);
    else
        id_generate(id);
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    if ((rc = sq_user_stub(db, f->owner, now)) != STORE_OK) return sq_op_end(db, rc);
    if (op->quota > 0) {
        /* In the same transaction as the insert, so two uploads cannot both slip under it. */
        sqlite3_stmt *q = NULL;
        int64_t used = -1;
        if (sqlite3_prepare_v2(db->db, "SELECT COALESCE(SUM(size), 0) FROM files WHERE owner = ?1",
                               -1, &q, NULL) == SQLITE_OK) {
            sq_bind_str(q, 1, f->owner);
            if (sqlite3_step(q) == SQLITE_ROW) used = sqlite3_column_int64(q, 0);
        }
        sqlite3_finalize(q);
        if (used < 0) return sq_op_end(db, STORE_E_IO);
        if (used + f->size > op->quota) return sq_op_end(db, STORE_E_QUOTA);
    }
    sq_bind_cstr(st, 1, id);
    sq_bind_str(st, 2, f->owner);
    sq_bind_str(st, 3, f->name);
    sqlite3_bind_int64(st, 4, f->size);
    sq_bind_str(st, 5, f->mime);
    sq_bind_str(st, 6, f->path);
    sq_bind_str(st, 7, f->sha256);
    sqlite3_bind_int64(st, 8, now);
    rc = sq_op_end(db, sq_stmt_run(st));
    if (rc == STORE_OK) {
        memcpy(f->id, id, ID_SIZE);
        f->created_at = now;
    }
    return rc;
}

int store_sqlite_file_get(store_sqlite_t *db, store_file_get_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    memset(&op->file, 0, sizeof op->file);
    op->allowed = false;
    if (!id_valid(op->id) || (store_present(op->requester) && !store_valid_user_id(op->requester)))
        return STORE_E_INVALID;
    sqlite3_stmt *st = sq_stmt_get(db, S_FILE_GET);
    if (!st) return STORE_E_IO;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    sq_bind_str(st, 1, op->id);
    rc = sq_stmt_row(st);
    if (rc == STORE_OK) rc = sq_file_from_row(st, 0, &op->file, a);
    sqlite3_reset(st);
    if (rc == STORE_OK && store_present(op->requester)) {
        op->allowed = str_eq(op->file.owner, op->requester);
        if (!op->allowed) {
            if (!(st = sq_stmt_get(db, S_FILE_SHARED))) return sq_op_end(db, STORE_E_IO);
            sq_bind_str(st, 1, op->id);
            sq_bind_str(st, 2, op->requester);
            rc = sq_stmt_row(st);
            op->allowed = rc == STORE_OK;
            sqlite3_reset(st);
            if (rc == STORE_E_NOT_FOUND) rc = STORE_OK;
        }
    }
    if (rc != STORE_OK) {
        memset(&op->file, 0, sizeof op->file);
        op->allowed = false;
    }
    return sq_op_end(db, rc);
}
