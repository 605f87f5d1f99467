/* The PostgreSQL engine: conversations and their members. A conversation is loaded with one
 * statement (its row, members as arrays, the requester's watermark and unread count, the last
 * message), and a page of the list with one statement too: one snapshot, one round trip. */
#include "store/store_pg_int.h"

/* The columns of a loaded conversation; rq is the requester's parameter. */
#define CONV_COLS(rq)                                                                              \
    "c.id, c.type, c.title, c.last_seq, c.created_at, c.updated_at, mb.ids, mb.rs, mb.ra,"         \
    " mb.ja, mb.n, rq.read_seq, CASE WHEN rq.read_seq IS NULL THEN 0 ELSE (SELECT count(*)"        \
    " FROM messages u WHERE u.conversation_id = c.id AND u.seq > rq.read_seq AND u.sender <> " rq  \
    "::text AND NOT u.deleted) END, " PG_MSG_COLS                                                  \
    ", c.context_type, c.context_id, c.context_title"
#define CONV_JOINS(rq)                                                                             \
    " CROSS JOIN LATERAL (SELECT array_agg(x.user_id ORDER BY x.joined_at, x.user_id) ids,"        \
    " array_agg(x.read_seq ORDER BY x.joined_at, x.user_id) rs,"                                   \
    " array_agg(x.read_at ORDER BY x.joined_at, x.user_id) ra,"                                    \
    " array_agg(x.joined_at ORDER BY x.joined_at, x.user_id) ja, count(*) n"                       \
    " FROM conversation_members x WHERE x.conversation_id = c.id) mb"                              \
    " LEFT JOIN conversation_members rq ON rq.conversation_id = c.id AND rq.user_id = " rq         \
    "::text LEFT JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq"               \
    " LEFT JOIN files f ON f.id = m.file_id"
#define CONV_FIRST_MSG_COL 13
#define CONV_CONTEXT_COL   (CONV_FIRST_MSG_COL + PG_MSG_NCOLS)

static const char sql_conv_load[] =
    "SELECT " CONV_COLS("$2") " FROM conversations c" CONV_JOINS("$2") " WHERE c.id = $1";

/* Members first, then a sort of that user's conversations (as SQLite). */
static const char sql_conv_list[] = "SELECT " CONV_COLS(
    "$1") " FROM (SELECT c2.id, c2.updated_at FROM conversation_members m2"
          " JOIN conversations c2 ON c2.id = m2.conversation_id WHERE m2.user_id = $1"
          " AND (c2.updated_at, c2.id) < ($2, $3::text) ORDER BY c2.updated_at DESC, c2.id DESC"
          " LIMIT $4) l JOIN conversations c ON c.id = l.id" CONV_JOINS(
              "$1") " ORDER BY c.updated_at DESC, c.id DESC";

/* The same about one context (migration 4). */
static const char sql_conv_list_ctx[] = "SELECT " CONV_COLS(
    "$1") " FROM (SELECT c2.id, c2.updated_at FROM conversation_members m2"
          " JOIN conversations c2 ON c2.id = m2.conversation_id WHERE m2.user_id = $1"
          " AND (c2.updated_at, c2.id) < ($2, $3::text) AND c2.context_type = $5::text"
          " AND c2.context_id = $6::text ORDER BY c2.updated_at DESC, c2.id DESC"
          " LIMIT $4) l JOIN conversations c ON c.id = l.id" CONV_JOINS(
              "$1") " ORDER BY c.updated_at DESC, c.id DESC";

/* The next element of a PostgreSQL array in text form ({a,"b",NULL}): *p walks it. False at
 * the end. An unquoted NULL is SQL NULL (*null). User ids and numbers need no escapes. */
static bool array_next(const char **p, const char **s, size_t *n, bool *null)
{
    const char *q = *p;
    if (*q == '{') q++;
    if (*q == '}' || *q == '\0') return false;
    bool quoted = *q == '"';
    if (quoted) q++;
    const char *start = q;
    while (*q && (quoted ? *q != '"' : (*q != ',' && *q != '}'))) q += (*q == '\\' && q[1]) ? 2 : 1;
    *s = start;
    *n = (size_t)(q - start);
    *null = !quoted && *n == 4 && memcmp(start, "NULL", 4) == 0;
    if (quoted && *q == '"') q++;
    if (*q == ',') q++;
    *p = q;
    return true;
}

/* Fills c from row `row` of r (CONV_COLS). FORBIDDEN when requester is given and not in it. */
static int conv_from_row(const PGresult *r, int row, str_t requester, store_conversation_t *c,
                         store_arena_t *a)
{
    int rc;
    memset(c, 0, sizeof *c);
    pg_col_id(r, row, 0, c->id);
    c->type = strcmp(PQgetvalue(r, row, 1), "group") == 0 ? STORE_CONV_GROUP : STORE_CONV_DIRECT;
    if ((rc = pg_col_str(r, row, 2, a, &c->title)) != STORE_OK) return rc;
    c->last_seq = pg_i64(r, row, 3);
    c->created_at = pg_i64(r, row, 4);
    c->updated_at = pg_i64(r, row, 5);
    if ((rc = pg_col_str(r, row, CONV_CONTEXT_COL, a, &c->context.type)) != STORE_OK ||
        (rc = pg_col_str(r, row, CONV_CONTEXT_COL + 1, a, &c->context.id)) != STORE_OK ||
        (rc = pg_col_str(r, row, CONV_CONTEXT_COL + 2, a, &c->context.title)) != STORE_OK)
        return rc;
    int64_t n = pg_i64(r, row, 10);
    store_member_t *members = n > 0 ? ARENA_BACK(a, store_member_t, (size_t)n) : NULL;
    if (n > 0 && !members) return STORE_E_NOSPACE;
    const char *ids = PQgetvalue(r, row, 6), *rs = PQgetvalue(r, row, 7),
               *ra = PQgetvalue(r, row, 8), *ja = PQgetvalue(r, row, 9);
    size_t i = 0;
    for (; i < (size_t)n; i++) {
        const char *s;
        size_t len;
        bool null;
        store_member_t *m = &members[i];
        if (!array_next(&ids, &s, &len, &null)) break;
        if ((rc = store_arena_str(a, s, len, &m->user_id)) != STORE_OK) return rc;
        if (array_next(&rs, &s, &len, &null)) m->read_seq = null ? 0 : strtoll(s, NULL, 10);
        if (array_next(&ra, &s, &len, &null)) m->read_at = null ? 0 : strtoll(s, NULL, 10);
        if (array_next(&ja, &s, &len, &null)) m->joined_at = null ? 0 : strtoll(s, NULL, 10);
    }
    c->members = members;
    c->member_count = i;
    bool is_member = !pg_null(r, row, 11);
    if (store_present(requester) && !is_member) return STORE_E_FORBIDDEN;
    if (store_present(requester)) {
        c->read_seq = pg_i64(r, row, 11);
        c->unread_count = pg_i64(r, row, 12);
    }
    if (c->last_seq > 0) {
        if (pg_null(r, row, CONV_FIRST_MSG_COL)) return STORE_E_IO;
        store_message_t *m = ARENA_BACK(a, store_message_t, 1);
        if (!m) return STORE_E_NOSPACE;
        if ((rc = pg_msg_from_row(r, row, CONV_FIRST_MSG_COL, m, a)) != STORE_OK) return rc;
        c->last_message = m;
    }
    return STORE_OK;
}

int pg_conv_load(store_pg_t *db, str_t id, str_t requester, store_conversation_t *c,
                 store_arena_t *a)
{
    pg_params_t p = {0};
    pg_p_str(&p, id);
    pg_p_opt(&p, requester);
    PGresult *r;
    memset(c, 0, sizeof *c);
    int rc = pg_query(db, P_CONV_LOAD, sql_conv_load, &p, &r);
    if (rc != STORE_OK) return rc;
    rc = PQntuples(r) == 1 ? conv_from_row(r, 0, requester, c, a) : STORE_E_NOT_FOUND;
    PQclear(r);
    return rc;
}

static const char sql_conv_by_key[] = "SELECT id FROM conversations WHERE direct_key = $1";
static const char sql_conv_insert[] =
    "INSERT INTO conversations (id, type, title, direct_key, last_seq, created_at, updated_at,"
    " context_type, context_id, context_title)"
    " VALUES ($1, $2, $3, $4, 0, $5, $5, $6, $7, $8) ON CONFLICT DO NOTHING";
static const char sql_user_stubs[] =
    "INSERT INTO users (id, created_at)"
    " SELECT u, $2 FROM unnest($1::text[]) u ON CONFLICT DO NOTHING";
static const char sql_members_insert[] =
    "INSERT INTO conversation_members (conversation_id, user_id, read_seq, joined_at)"
    " SELECT $1, u, 0, $3 FROM unnest($2::text[]) u ON CONFLICT DO NOTHING";

/* Stubs for users who never logged in, then the members (duplicates: DO NOTHING). */
static int members_insert(store_pg_t *db, const char *conv, const char *array, int64_t now)
{
    pg_params_t p = {0};
    PGresult *r;
    pg_p_text(&p, array);
    pg_p_i64(&p, now);
    int rc = pg_query(db, P_USER_STUBS, sql_user_stubs, &p, &r);
    PQclear(r);
    if (rc != STORE_OK) return rc;
    memset(&p, 0, sizeof p);
    pg_p_cstr(&p, conv);
    pg_p_text(&p, array);
    pg_p_i64(&p, now);
    rc = pg_query(db, P_MEMBERS_INSERT, sql_members_insert, &p, &r);
    PQclear(r);
    return rc;
}

static int conv_insert(store_pg_t *db, const char *id, const char *type, str_t title,
                       const char *key, const store_context_t *ctx, int64_t now, bool *inserted)
{
    static const store_context_t none = {{0}, {0}, {0}};
    if (!ctx) ctx = &none;
    pg_params_t p = {0};
    PGresult *r;
    pg_p_cstr(&p, id);
    pg_p_cstr(&p, type);
    pg_p_opt(&p, title);
    pg_p_cstr(&p, key);
    pg_p_i64(&p, now);
    pg_p_opt(&p, ctx->type);
    pg_p_opt(&p, ctx->id);
    pg_p_opt(&p, store_present(ctx->type) ? ctx->title : STR_NULL);
    if (store_present(ctx->title) && !pg_text_ok(ctx->title.ptr, ctx->title.len))
        return STORE_E_INVALID;
    if (p.bad) return STORE_E_INVALID;
    int rc = pg_query(db, P_CONV_INSERT, sql_conv_insert, &p, &r);
    if (rc == STORE_OK) *inserted = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    return rc;
}

static int conv_by_key(store_pg_t *db, const char *key, char id[ID_SIZE])
{
    pg_params_t p = {0};
    PGresult *r;
    pg_p_cstr(&p, key);
    int rc = pg_query(db, P_CONV_BY_KEY, sql_conv_by_key, &p, &r);
    if (rc != STORE_OK) return rc;
    rc = PQntuples(r) == 1 ? STORE_OK : STORE_E_NOT_FOUND;
    if (rc == STORE_OK) pg_col_id(r, 0, 0, id);
    PQclear(r);
    return rc;
}

int pg_direct_find_or_create(store_pg_t *db, str_t a, str_t b, const store_context_t *ctx,
                             int64_t now, char id[ID_SIZE], bool *created)
{
    char key[STORE_DIRECT_CTX_KEY_SIZE];
    store_direct_ctx_key(a, b, ctx, key);
    if (!key[0]) return STORE_E_INVALID;
    *created = false;
    int rc = conv_by_key(db, key, id);
    if (rc != STORE_E_NOT_FOUND) return rc;
    bool inserted = false;
    id_generate(id);
    if ((rc = conv_insert(db, id, "direct", STR_NULL, key, ctx, now, &inserted)) != STORE_OK)
        return rc;
    if (!inserted) /* another node created it meanwhile */
        return conv_by_key(db, key, id) == STORE_OK ? STORE_OK : STORE_E_IO;
    char *array = pg_id_array(&a, 1, &b);
    if (!array) return STORE_E_IO;
    rc = members_insert(db, id, array, now);
    free(array);
    if (rc == STORE_OK) rc = pg_outbox_add(db, STORE_OUTBOX_CONVERSATION_CREATED, id, now);
    if (rc == STORE_OK) *created = true;
    return rc;
}

int pg_direct_open(store_pg_t *db, store_direct_open_t *op, store_arena_t *a, int64_t now)
{
    char id[ID_SIZE];
    store_arena_reset(a);
    op->created = false;
    memset(&op->conv, 0, sizeof op->conv);
    if (!store_valid_user_id(op->user) || !store_valid_user_id(op->other) ||
        str_eq(op->user, op->other) || !store_valid_context(&op->context))
        return STORE_E_INVALID;
    int rc = pg_op_begin(db);
    if (rc != STORE_OK) return rc;
    rc = pg_direct_find_or_create(db, op->user, op->other, &op->context, now, id, &op->created);
    if (rc == STORE_OK) rc = pg_conv_load(db, str_make(id, ID_LEN), op->user, &op->conv, a);
    rc = pg_op_end(db, rc);
    if (rc != STORE_OK) op->created = false;
    return rc;
}

int pg_group_create(store_pg_t *db, store_group_create_t *op, store_arena_t *a, int64_t now)
{
    char id[ID_SIZE];
    store_arena_reset(a);
    memset(&op->conv, 0, sizeof op->conv);
    if (!store_valid_user_id(op->creator) || !store_valid_opt(op->title, STORE_NAME_MAX) ||
        (op->count && !op->participants) || op->count > STORE_GROUP_MAX ||
        (store_present(op->title) && !pg_text_ok(op->title.ptr, op->title.len)) ||
        !store_valid_context(&op->context))
        return STORE_E_INVALID;
    size_t members = 1;
    for (size_t i = 0; i < op->count; i++) {
        str_t p = op->participants[i];
        if (!store_valid_user_id(p)) return STORE_E_INVALID;
        bool dup = str_eq(p, op->creator);
        for (size_t j = 0; j < i && !dup; j++) dup = str_eq(p, op->participants[j]);
        members += !dup;
    }
    if (members < 2 || members > STORE_GROUP_MAX) return STORE_E_INVALID;
    /* the creator first: members joined together sort by user id, as on SQLite */
    char *array = pg_id_array(op->participants, op->count, &op->creator);
    if (!array) return STORE_E_IO;
    int rc = pg_op_begin(db);
    if (rc != STORE_OK) {
        free(array);
        return rc;
    }
    bool inserted = false;
    id_generate(id);
    rc = conv_insert(db, id, "group", op->title, NULL, &op->context, now, &inserted);
    if (rc == STORE_OK && !inserted) rc = STORE_E_IO; /* a random id taken: never */
    if (rc == STORE_OK) rc = members_insert(db, id, array, now);
    free(array);
    if (rc == STORE_OK) rc = pg_outbox_add(db, STORE_OUTBOX_CONVERSATION_CREATED, id, now);
    if (rc == STORE_OK) rc = pg_conv_load(db, str_make(id, ID_LEN), op->creator, &op->conv, a);
    return pg_op_end(db, rc);
}

int pg_conversation_get(store_pg_t *db, store_conversation_get_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    memset(&op->conv, 0, sizeof op->conv);
    if (!id_valid(op->id) || (store_present(op->requester) && !store_valid_user_id(op->requester)))
        return STORE_E_INVALID;
    int rc = pg_conv_load(db, op->id, op->requester, &op->conv, a);
    if (rc != STORE_OK) memset(&op->conv, 0, sizeof op->conv);
    return rc;
}

int pg_conversations_list(store_pg_t *db, store_conversations_list_t *op, store_arena_t *a)
{
    int64_t before_t = INT64_MAX;
    str_t before_id = STR_LIT("~"); /* sorts after every hex id */
    store_arena_reset(a);
    op->convs = NULL;
    op->count = 0;
    op->next_cursor[0] = '\0';
    if (!store_valid_user_id(op->user)) return STORE_E_INVALID;
    if (store_present(op->cursor) &&
        store_cursor_parse(op->cursor, &before_t, &before_id) != STORE_OK)
        return STORE_E_INVALID;
    bool by_ctx = store_present(op->context_type) || store_present(op->context_id);
    if (by_ctx &&
        (!store_valid_context_part(op->context_type) || !store_valid_context_part(op->context_id)))
        return STORE_E_INVALID;
    size_t limit = store_page_limit(op->limit);
    pg_params_t p = {0};
    pg_p_str(&p, op->user);
    pg_p_i64(&p, before_t);
    pg_p_str(&p, before_id);
    pg_p_i64(&p, (int64_t)limit + 1);
    if (by_ctx) {
        pg_p_str(&p, op->context_type);
        pg_p_str(&p, op->context_id);
    }
    PGresult *r;
    int rc = by_ctx ? pg_query(db, P_CONV_LIST_CTX, sql_conv_list_ctx, &p, &r)
                    : pg_query(db, P_CONV_LIST, sql_conv_list, &p, &r);
    if (rc != STORE_OK) return rc;
    store_conversation_t *convs = NULL;
    bool more = false;
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
        if (op->count == limit) {
            more = true;
            break;
        }
        store_arena_mark_t mark = store_arena_mark(a);
        store_conversation_t *c = ARENA_PUSH(a, store_conversation_t);
        rc = c ? conv_from_row(r, i, op->user, c, a) : STORE_E_NOSPACE;
        if (rc == STORE_E_NOSPACE && op->count > 0) {
            store_arena_restore(a, mark);
            more = true;
            rc = STORE_OK;
            break;
        }
        if (rc != STORE_OK) break;
        if (!convs) convs = c;
        op->count++;
    }
    PQclear(r);
    if (rc != STORE_OK) {
        op->count = 0;
        return rc;
    }
    op->convs = convs;
    if (more && op->count > 0) {
        const store_conversation_t *last = &convs[op->count - 1];
        store_cursor_format(op->next_cursor, last->updated_at, last->id);
    }
    return STORE_OK;
}
