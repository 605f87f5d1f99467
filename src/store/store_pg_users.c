/* The PostgreSQL engine: users, accounts, file records and contacts (presence fan-out). */
#include "store/store_pg_int.h"

#define USER_COLS "id, name, role, username, last_seen, created_at"
#define FILE_COLS "id, owner, name, size, mime, path, sha256, created_at"

/* Columns: id, name, role, username, last_seen, created_at, password_hash. */
int pg_user_from_row(const PGresult *r, int row, store_user_t *u, store_arena_t *a)
{
    int rc;
    memset(u, 0, sizeof *u);
    if ((rc = pg_col_str(r, row, 0, a, &u->id)) || (rc = pg_col_str(r, row, 1, a, &u->name)) ||
        (rc = pg_col_str(r, row, 2, a, &u->role)) ||
        (rc = pg_col_str(r, row, 3, a, &u->username)) ||
        (rc = pg_col_str(r, row, 6, a, &u->password_hash)))
        return rc;
    u->last_seen = pg_i64(r, row, 4);
    u->created_at = pg_i64(r, row, 5);
    return STORE_OK;
}

/* Columns from `first`: id, owner, name, size, mime, path, sha256, created_at. */
int pg_file_from_row(const PGresult *r, int row, int first, store_file_t *f, store_arena_t *a)
{
    int rc;
    memset(f, 0, sizeof *f);
    pg_col_id(r, row, first, f->id);
    if ((rc = pg_col_str(r, row, first + 1, a, &f->owner)) ||
        (rc = pg_col_str(r, row, first + 2, a, &f->name)) ||
        (rc = pg_col_str(r, row, first + 4, a, &f->mime)) ||
        (rc = pg_col_str(r, row, first + 5, a, &f->path)) ||
        (rc = pg_col_str(r, row, first + 6, a, &f->sha256)))
        return rc;
    f->size = pg_i64(r, row, first + 3);
    f->created_at = pg_i64(r, row, first + 7);
    return STORE_OK;
}

/* Runs a statement whose rows do not matter. */
static int run(store_pg_t *db, int id, const char *sql, const pg_params_t *p)
{
    if (p->bad) return STORE_E_INVALID;
    PGresult *r;
    int rc = pg_query(db, id, sql, p, &r);
    PQclear(r);
    return rc;
}

/* ---- Users -------------------------------------------------------------------------------- */

static const char sql_user_upsert[] =
    "INSERT INTO users (id, name, role, created_at) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (id) DO UPDATE SET name = coalesce(excluded.name, users.name),"
    " role = coalesce(excluded.role, users.role)";
const char pg_sql_user_seen[] =
    "INSERT INTO users (id, last_seen, created_at) VALUES ($1, $2, $2)"
    " ON CONFLICT (id) DO UPDATE"
    " SET last_seen = greatest(coalesce(users.last_seen, 0), excluded.last_seen)";

int pg_user_upsert(store_pg_t *db, const store_user_upsert_t *op, int64_t now)
{
    if (!store_valid_user_id(op->id) || !store_valid_opt(op->name, STORE_NAME_MAX) ||
        !store_valid_opt(op->role, STORE_ROLE_MAX))
        return STORE_E_INVALID;
    pg_params_t p = {0};
    pg_p_str(&p, op->id);
    pg_p_opt(&p, op->name);
    pg_p_opt(&p, op->role);
    pg_p_i64(&p, now);
    return run(db, P_USER_UPSERT, sql_user_upsert, &p);
}

int pg_user_seen_params(const store_user_seen_t *op, pg_params_t *p)
{
    if (!store_valid_user_id(op->id) || op->last_seen < 0) return STORE_E_INVALID;
    pg_p_str(p, op->id);
    pg_p_i64(p, op->last_seen);
    return STORE_OK;
}

/* ---- Accounts ----------------------------------------------------------------------------- */

static const char sql_account_create[] =
    "INSERT INTO users (id, name, role, username, password_hash, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";
static const char sql_account_get[] =
    "SELECT " USER_COLS ", password_hash FROM users WHERE username_key = $1";

/* SQLite's NOCASE: ASCII letters folded to lower case (username_key in the schema). */
static void fold(str_t in, char *out)
{
    for (size_t i = 0; i < in.len; i++) {
        char c = in.ptr[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
}

int pg_account_create(store_pg_t *db, store_account_create_t *op, int64_t now)
{
    op->id[0] = '\0';
    if (!store_valid_req(op->username, STORE_USERNAME_MAX) ||
        !store_valid_req(op->password_hash, STORE_SECRET_MAX) ||
        !store_valid_opt(op->name, STORE_NAME_MAX) || !store_valid_opt(op->role, STORE_ROLE_MAX))
        return STORE_E_INVALID;
    char id[ID_SIZE];
    id_generate(id);
    pg_params_t p = {0};
    pg_p_cstr(&p, id);
    pg_p_opt(&p, op->name);
    pg_p_opt(&p, op->role);
    pg_p_str(&p, op->username);
    pg_p_str(&p, op->password_hash);
    pg_p_i64(&p, now);
    if (p.bad) return STORE_E_INVALID;
    PGresult *r;
    int rc = pg_query(db, P_ACCOUNT_CREATE, sql_account_create, &p, &r);
    /* a taken username inserts nothing, without an error that would abort a batch */
    if (rc == STORE_OK && strcmp(PQcmdTuples(r), "1") != 0) rc = STORE_E_CONFLICT;
    PQclear(r);
    if (rc == STORE_OK) memcpy(op->id, id, ID_SIZE);
    return rc;
}

int pg_account_get(store_pg_t *db, store_account_get_t *op, store_arena_t *a)
{
    char key[STORE_USERNAME_MAX];
    store_arena_reset(a);
    memset(&op->user, 0, sizeof op->user);
    if (!store_valid_req(op->username, STORE_USERNAME_MAX)) return STORE_E_INVALID;
    fold(op->username, key);
    pg_params_t p = {0};
    pg_p_str(&p, str_make(key, op->username.len));
    if (p.bad) return STORE_E_NOT_FOUND; /* no stored username is like it */
    PGresult *r;
    int rc = pg_query(db, P_ACCOUNT_GET, sql_account_get, &p, &r);
    if (rc != STORE_OK) return rc;
    rc = PQntuples(r) == 1 ? pg_user_from_row(r, 0, &op->user, a) : STORE_E_NOT_FOUND;
    PQclear(r);
    return rc;
}

static const char sql_users_get[] =
    "SELECT " USER_COLS ", NULL FROM users WHERE id = ANY($1::text[])";

int pg_users_get(store_pg_t *db, store_users_get_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    op->users = NULL;
    op->found = 0;
    if (op->count > STORE_IDS_MAX || (op->count && !op->ids)) return STORE_E_INVALID;
    for (size_t i = 0; i < op->count; i++)
        if (!store_valid_user_id(op->ids[i])) return STORE_E_INVALID;
    if (op->count == 0) return STORE_OK;
    char *array = pg_id_array(op->ids, op->count, NULL);
    if (!array) return STORE_E_IO;
    pg_params_t p = {0};
    pg_p_text(&p, array);
    PGresult *r;
    int rc = pg_query(db, P_USERS_GET, sql_users_get, &p, &r);
    free(array);
    if (rc != STORE_OK) return rc;
    /* one statement, one snapshot; handed out in the input order (a repeated id twice) */
    store_user_t *users = NULL;
    int rows = PQntuples(r);
    for (size_t i = 0; i < op->count && rc == STORE_OK; i++) {
        for (int j = 0; j < rows; j++) {
            if (!pg_col_eq(r, j, 0, op->ids[i])) continue;
            store_user_t *u = ARENA_PUSH(a, store_user_t);
            rc = u ? pg_user_from_row(r, j, u, a) : STORE_E_NOSPACE;
            if (rc == STORE_OK && !users) users = u;
            if (rc == STORE_OK) op->found++;
            break;
        }
    }
    PQclear(r);
    op->users = users;
    if (rc != STORE_OK) {
        op->found = 0;
        op->users = NULL;
    }
    return rc;
}

/* A prefix of username_key, as a range of the unique index (bytewise under "C") that a
 * prepared statement's generic plan can use too: [$1, $2), $2 the prefix with its last byte
 * incremented, or followed by U+10FFFF when that byte is not ASCII (incrementing it could make
 * invalid UTF-8); ^@ (starts_with) keeps the result exact. */
static const char sql_users_search[] =
    "SELECT " USER_COLS ", NULL FROM users WHERE username_key >= $1 AND username_key < $2"
    " AND username_key ^@ $1 ORDER BY username_key LIMIT $3";

int pg_users_search(store_pg_t *db, store_users_search_t *op, store_arena_t *a)
{
    char lo[STORE_USERNAME_MAX], hi[STORE_USERNAME_MAX + 4];
    store_arena_reset(a);
    op->users = NULL;
    op->count = 0;
    if (!store_valid_req(op->prefix, STORE_USERNAME_MAX)) return STORE_E_INVALID;
    size_t limit = store_page_limit(op->limit);
    fold(op->prefix, lo);
    size_t n = op->prefix.len, hn = n;
    memcpy(hi, lo, n);
    if ((unsigned char)hi[n - 1] < 0x7f)
        hi[n - 1]++;
    else
        memcpy(hi + hn, "\xf4\x8f\xbf\xbf", 4), hn += 4;
    pg_params_t p = {0};
    pg_p_str(&p, str_make(lo, n));
    pg_p_str(&p, str_make(hi, hn));
    pg_p_i64(&p, (int64_t)limit);
    if (p.bad) return STORE_OK; /* no stored username starts so */
    PGresult *r;
    int rc = pg_query(db, P_USERS_SEARCH, sql_users_search, &p, &r);
    if (rc != STORE_OK) return rc;
    store_user_t *users = NULL;
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
        store_arena_mark_t mark = store_arena_mark(a);
        store_user_t *u = ARENA_PUSH(a, store_user_t);
        if (!u || pg_user_from_row(r, i, u, a) != STORE_OK) {
            store_arena_restore(a, mark);
            if (!op->count) rc = STORE_E_NOSPACE;
            break;
        }
        if (!users) users = u;
        op->count++;
    }
    PQclear(r);
    if (rc != STORE_OK) {
        op->count = 0;
        return rc;
    }
    op->users = users;
    return STORE_OK;
}

/* ---- Files -------------------------------------------------------------------------------- */

static const char sql_quota_lock[] =
    "SELECT pg_advisory_xact_lock(" PG_STR(PG_LOCK_QUOTA) ", hashtext($1))";
static const char sql_file_used[] = "SELECT coalesce(sum(size), 0) FROM files WHERE owner = $1";
static const char sql_file_exists[] = "SELECT 1 FROM files WHERE id = $1";
static const char sql_user_stub[] =
    "INSERT INTO users (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING";
static const char sql_file_insert[] =
    "INSERT INTO files (" FILE_COLS ")"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING";

/* Every refusal is decided before the first write (a batch has no savepoint to undo one). */
int pg_file_insert(store_pg_t *db, store_file_insert_t *op, int64_t now)
{
    store_file_t *f = &op->file;
    bool preset = f->id[0] != '\0';
    if ((preset && !id_valid(str_make(f->id, strnlen(f->id, ID_SIZE)))) ||
        !store_valid_user_id(f->owner) || !store_valid_req(f->name, STORE_NAME_MAX) ||
        !store_valid_req(f->mime, STORE_NAME_MAX) || !store_valid_req(f->path, 4096) ||
        !store_valid_req(f->sha256, 128) || f->size < 0)
        return STORE_E_INVALID;
    char id[ID_SIZE];
    if (preset)
        memcpy(id, f->id, ID_SIZE);
    else
        id_generate(id);
    pg_params_t ins = {0};
    pg_p_cstr(&ins, id);
    pg_p_str(&ins, f->owner);
    pg_p_str(&ins, f->name);
    pg_p_i64(&ins, f->size);
    pg_p_str(&ins, f->mime);
    pg_p_str(&ins, f->path);
    pg_p_str(&ins, f->sha256);
    pg_p_i64(&ins, now);
    if (ins.bad) return STORE_E_INVALID;
    int rc = pg_op_begin(db);
    if (rc != STORE_OK) return rc;
    PGresult *r;
    pg_params_t p = {0};
    pg_p_str(&p, f->owner);
    if (op->quota > 0) {
        /* One upload of an owner at a time, on every node: two cannot both slip under it. */
        if ((rc = pg_query(db, P_QUOTA_LOCK, sql_quota_lock, &p, &r)) != STORE_OK)
            return pg_op_end(db, rc);
        PQclear(r);
        if ((rc = pg_query(db, P_FILE_USED, sql_file_used, &p, &r)) != STORE_OK)
            return pg_op_end(db, rc);
        int64_t used = pg_i64(r, 0, 0);
        PQclear(r);
        if (used + f->size > op->quota) return pg_op_end(db, STORE_E_QUOTA);
    }
    if (preset) {
        pg_params_t q = {0};
        pg_p_cstr(&q, id);
        if ((rc = pg_query(db, P_FILE_EXISTS, sql_file_exists, &q, &r)) != STORE_OK)
            return pg_op_end(db, rc);
        bool taken = PQntuples(r) > 0;
        PQclear(r);
        if (taken) return pg_op_end(db, STORE_E_CONFLICT);
    }
    pg_p_i64(&p, now);
    if ((rc = run(db, P_USER_STUB, sql_user_stub, &p)) != STORE_OK) return pg_op_end(db, rc);
    if ((rc = pg_query(db, P_FILE_INSERT, sql_file_insert, &ins, &r)) != STORE_OK)
        return pg_op_end(db, rc);
    if (strcmp(PQcmdTuples(r), "1") != 0) rc = STORE_E_CONFLICT; /* a race on a preset id */
    PQclear(r);
    rc = pg_op_end(db, rc);
    if (rc == STORE_OK) {
        memcpy(f->id, id, ID_SIZE);
        f->created_at = now;
    }
    return rc;
}

static const char sql_file_get[] =
    "SELECT " FILE_COLS ", $2::text IS NOT NULL AND (owner = $2::text OR EXISTS (SELECT 1"
    " FROM messages m JOIN conversation_members cm ON cm.conversation_id = m.conversation_id"
    " AND cm.user_id = $2::text WHERE m.file_id = files.id)) FROM files WHERE id = $1";

int pg_file_get(store_pg_t *db, store_file_get_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    memset(&op->file, 0, sizeof op->file);
    op->allowed = false;
    if (!id_valid(op->id) || (store_present(op->requester) && !store_valid_user_id(op->requester)))
        return STORE_E_INVALID;
    pg_params_t p = {0};
    pg_p_str(&p, op->id);
    pg_p_opt(&p, op->requester);
    PGresult *r;
    int rc = pg_query(db, P_FILE_GET, sql_file_get, &p, &r);
    if (rc != STORE_OK) return rc;
    rc = PQntuples(r) == 1 ? pg_file_from_row(r, 0, 0, &op->file, a) : STORE_E_NOT_FOUND;
    if (rc == STORE_OK) op->allowed = pg_bool(r, 0, 8);
    PQclear(r);
    if (rc != STORE_OK) {
        memset(&op->file, 0, sizeof op->file);
        op->allowed = false;
    }
    return rc;
}

/* ---- Contacts ----------------------------------------------------------------------------- */

static const char sql_contacts[] =
    "SELECT DISTINCT o.user_id FROM conversation_members m"
    " JOIN conversation_members o ON o.conversation_id = m.conversation_id"
    " WHERE m.user_id = $1 AND o.user_id <> $1 ORDER BY o.user_id LIMIT $2";
/* Who may see the user's presence: the members of the conversations it has written in. */
static const char sql_contacts_audience[] =
    "SELECT DISTINCT o.user_id FROM conversation_members m"
    " JOIN conversation_members o ON o.conversation_id = m.conversation_id"
    " WHERE m.user_id = $1 AND m.sent = 1 AND o.user_id <> $1"
    " AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker = $1 AND b.blocked = o.user_id)"
    " OR (b.blocker = o.user_id AND b.blocked = $1))"
    " ORDER BY o.user_id LIMIT $2";
/* Whose presence the user may see: those who have written in a conversation of the user. */
static const char sql_contacts_visible[] =
    "SELECT DISTINCT o.user_id FROM conversation_members m"
    " JOIN conversation_members o ON o.conversation_id = m.conversation_id"
    " WHERE m.user_id = $1 AND o.sent = 1 AND o.user_id <> $1"
    " AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker = $1 AND b.blocked = o.user_id)"
    " OR (b.blocker = o.user_id AND b.blocked = $1))"
    " ORDER BY o.user_id LIMIT $2";

int pg_contacts(store_pg_t *db, store_contacts_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    op->user_ids = NULL;
    op->count = 0;
    op->has_more = false;
    if (!store_valid_user_id(op->user)) return STORE_E_INVALID;
    size_t limit =
        op->limit == 0 || op->limit > STORE_CONTACTS_MAX ? STORE_CONTACTS_MAX : op->limit;
    pg_params_t p = {0};
    pg_p_str(&p, op->user);
    pg_p_i64(&p, (int64_t)limit + 1);
    PGresult *r;
    int rc = op->mode == STORE_CONTACTS_AUDIENCE
                 ? pg_query(db, P_CONTACTS_AUDIENCE, sql_contacts_audience, &p, &r)
             : op->mode == STORE_CONTACTS_VISIBLE
                 ? pg_query(db, P_CONTACTS_VISIBLE, sql_contacts_visible, &p, &r)
                 : pg_query(db, P_CONTACTS, sql_contacts, &p, &r);
    if (rc != STORE_OK) return rc;
    str_t *ids = NULL;
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
        if (op->count == limit) {
            op->has_more = true;
            break;
        }
        store_arena_mark_t mark = store_arena_mark(a);
        str_t *id = ARENA_PUSH(a, str_t);
        rc = id ? pg_col_str(r, i, 0, a, id) : STORE_E_NOSPACE;
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
    PQclear(r);
    if (rc != STORE_OK) {
        op->count = 0;
        op->has_more = false;
        return rc;
    }
    op->user_ids = ids;
    return STORE_OK;
}
