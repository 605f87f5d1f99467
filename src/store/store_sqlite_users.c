/* The SQLite engine: users, accounts and contacts (presence fan-out). */
#include "store/store_sqlite_int.h"

/* Columns: id, name, role, username, last_seen, created_at, password_hash. */
int sq_user_from_row(sqlite3_stmt *st, store_user_t *u, store_arena_t *a)
{
    int rc;
    memset(u, 0, sizeof *u);
    if ((rc = sq_col_str(st, 0, a, &u->id)) || (rc = sq_col_str(st, 1, a, &u->name)) ||
        (rc = sq_col_str(st, 2, a, &u->role)) || (rc = sq_col_str(st, 3, a, &u->username)) ||
        (rc = sq_col_str(st, 6, a, &u->password_hash)))
        return rc;
    u->last_seen = sq_col_i64(st, 4);
    u->created_at = sq_col_i64(st, 5);
    return STORE_OK;
}

int store_sqlite_user_upsert(store_sqlite_t *db, const store_user_upsert_t *op, int64_t now)
{
    if (!store_valid_user_id(op->id) || !store_valid_opt(op->name, STORE_NAME_MAX) ||
        !store_valid_opt(op->role, STORE_ROLE_MAX))
        return STORE_E_INVALID;
    sqlite3_stmt *st = sq_stmt_get(db, S_USER_UPSERT);
    if (!st) return STORE_E_IO;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    sq_bind_str(st, 1, op->id);
    sq_bind_opt(st, 2, op->name);
    sq_bind_opt(st, 3, op->role);
    sqlite3_bind_int64(st, 4, now);
    return sq_op_end(db, sq_stmt_run(st));
}

int store_sqlite_user_seen(store_sqlite_t *db, const store_user_seen_t *op)
{
    if (!store_valid_user_id(op->id) || op->last_seen < 0) return STORE_E_INVALID;
    sqlite3_stmt *st = sq_stmt_get(db, S_USER_SEEN);
    if (!st) return STORE_E_IO;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    sq_bind_str(st, 1, op->id);
    sqlite3_bind_int64(st, 2, op->last_seen);
    return sq_op_end(db, sq_stmt_run(st));
}

int store_sqlite_account_create(store_sqlite_t *db, store_account_create_t *op, int64_t now)
{
    op->id[0] = '\0';
    if (!store_valid_req(op->username, STORE_USERNAME_MAX) ||
        !store_valid_req(op->password_hash, STORE_SECRET_MAX) ||
        !store_valid_opt(op->name, STORE_NAME_MAX) || !store_valid_opt(op->role, STORE_ROLE_MAX))
        return STORE_E_INVALID;
    sqlite3_stmt *st = sq_stmt_get(db, S_ACCOUNT_CREATE);
    if (!st) return STORE_E_IO;
    char id[ID_SIZE];
    id_generate(id);
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    sq_bind_cstr(st, 1, id);
    sq_bind_opt(st, 2, op->name);
    sq_bind_opt(st, 3, op->role);
    sq_bind_str(st, 4, op->username);
    sq_bind_str(st, 5, op->password_hash);
    sqlite3_bind_int64(st, 6, now);
    rc = sq_op_end(db, sq_stmt_run(st));
    if (rc == STORE_OK) memcpy(op->id, id, ID_SIZE);
    return rc;
}

int store_sqlite_account_get(store_sqlite_t *db, store_account_get_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    memset(&op->user, 0, sizeof op->user);
    if (!store_valid_req(op->username, STORE_USERNAME_MAX)) return STORE_E_INVALID;
    sqlite3_stmt *st = sq_stmt_get(db, S_ACCOUNT_GET);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, op->username);
    int rc = sq_stmt_row(st);
    if (rc == STORE_OK) rc = sq_user_from_row(st, &op->user, a);
    sqlite3_reset(st);
    return rc;
}

int store_sqlite_users_get(store_sqlite_t *db, store_users_get_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    op->users = NULL;
    op->found = 0;
    if (op->count > STORE_IDS_MAX || (op->count && !op->ids)) return STORE_E_INVALID;
    for (size_t i = 0; i < op->count; i++)
        if (!store_valid_user_id(op->ids[i])) return STORE_E_INVALID;
    sqlite3_stmt *st = sq_stmt_get(db, S_USER_GET);
    if (!st) return STORE_E_IO;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    store_user_t *users = NULL;
    for (size_t i = 0; i < op->count && rc == STORE_OK; i++) {
        sq_bind_str(st, 1, op->ids[i]);
        rc = sq_stmt_row(st);
        if (rc == STORE_OK) {
            store_user_t *u = ARENA_PUSH(a, store_user_t);
            rc = u ? sq_user_from_row(st, u, a) : STORE_E_NOSPACE;
            if (rc == STORE_OK && !users) users = u;
            if (rc == STORE_OK) op->found++;
        } else if (rc == STORE_E_NOT_FOUND) {
            rc = STORE_OK;
        }
        sqlite3_reset(st);
    }
    op->users = users;
    if (rc != STORE_OK) op->found = 0;
    return sq_op_end(db, rc);
}

int store_sqlite_users_search(store_sqlite_t *db, store_users_search_t *op, store_arena_t *a)
{
    unsigned char lo[STORE_USERNAME_MAX], hi[STORE_USERNAME_MAX];
    store_arena_reset(a);
    op->users = NULL;
    op->count = 0;
    if (!store_valid_req(op->prefix, STORE_USERNAME_MAX)) return STORE_E_INVALID;
    size_t limit = op->limit == 0               ? STORE_PAGE_DEFAULT
                   : op->limit > STORE_PAGE_MAX ? STORE_PAGE_MAX
                                                : op->limit;
    /* usernames compare NOCASE (ASCII folded to lower case), so the range bounds are built
     * from the lower-cased prefix: [prefix, prefix with its last byte incremented). */
    size_t n = op->prefix.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)op->prefix.ptr[i];
        lo[i] = hi[i] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
    }
    size_t hn = n;
    while (hn > 0 && hi[hn - 1] == 0xff) hn--;
    if (hn > 0) hi[hn - 1]++;

    sqlite3_stmt *st = sq_stmt_get(db, S_USERS_SEARCH);
    if (!st) return STORE_E_IO;
    sqlite3_bind_text(st, 1, (const char *)lo, (int)n, SQLITE_STATIC);
    if (hn > 0)
        sqlite3_bind_text(st, 2, (const char *)hi, (int)hn, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    int rc;
    store_user_t *users = NULL;
    while ((rc = sq_stmt_row(st)) == STORE_OK) {
        store_arena_mark_t mark = store_arena_mark(a);
        store_user_t *u = ARENA_PUSH(a, store_user_t);
        if (!u || sq_user_from_row(st, u, a) != STORE_OK) {
            store_arena_restore(a, mark);
            rc = op->count ? STORE_E_NOT_FOUND : STORE_E_NOSPACE;
            break;
        }
        if (!users) users = u;
        op->count++;
    }
    sqlite3_reset(st);
    if (rc != STORE_E_NOT_FOUND) {
        op->count = 0;
        return rc;
    }
    op->users = users;
    return STORE_OK;
}

int store_sqlite_contacts(store_sqlite_t *db, store_contacts_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    op->user_ids = NULL;
    op->count = 0;
    op->has_more = false;
    if (!store_valid_user_id(op->user)) return STORE_E_INVALID;
    size_t limit =
        op->limit == 0 || op->limit > STORE_CONTACTS_MAX ? STORE_CONTACTS_MAX : op->limit;
    sqlite3_stmt *st = sq_stmt_get(db, op->mode == STORE_CONTACTS_AUDIENCE  ? S_CONTACTS_AUDIENCE
                                       : op->mode == STORE_CONTACTS_VISIBLE ? S_CONTACTS_VISIBLE
                                                                            : S_CONTACTS);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, op->user);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit + 1);
    int rc;
    str_t *ids = NULL;
    while ((rc = sq_stmt_row(st)) == STORE_OK) {
        if (op->count == limit) {
            op->has_more = true;
            break;
        }
        store_arena_mark_t mark = store_arena_mark(a);
        str_t *id = ARENA_PUSH(a, str_t);
        rc = id ? sq_col_str(st, 0, a, id) : STORE_E_NOSPACE;
        if (rc == STORE_E_NOSPACE && op->count > 0) {
            store_arena_restore(a, mark);
            op->has_more = true;
            rc = STORE_OK;
            break;
        }
        if (rc != STORE_OK) break;
        if (!ids) ids = id;
        op->count++;
    }
    sqlite3_reset(st);
    if (rc == STORE_E_NOT_FOUND) rc = STORE_OK;
    if (rc != STORE_OK) {
        op->count = 0;
        op->has_more = false;
        return rc;
    }
    op->user_ids = ids;
    return STORE_OK;
}
