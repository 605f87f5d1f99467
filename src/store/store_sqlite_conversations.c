/* The SQLite engine: conversations, their members and read watermarks. */
#include "store/store_sqlite_int.h"

#include <stdio.h>

/* Reads the single message at (conversation, seq) into a record at the arena's back. */
static int msg_load_seq(store_sqlite_t *db, const char *conv, int64_t seq,
                        const store_message_t **out, store_arena_t *a)
{
    sqlite3_stmt *st = sq_stmt_get(db, S_MSG_BY_SEQ);
    if (!st) return STORE_E_IO;
    sq_bind_cstr(st, 1, conv);
    sqlite3_bind_int64(st, 2, seq);
    int rc = sq_stmt_row(st);
    if (rc == STORE_OK) {
        store_message_t *m = ARENA_BACK(a, store_message_t, 1);
        rc = m ? sq_msg_from_row(st, m, a) : STORE_E_NOSPACE;
        if (rc == STORE_OK) *out = m;
    }
    sqlite3_reset(st);
    return rc;
}

static int count_query(sqlite3_stmt *st, int64_t *out)
{
    int rc = sq_stmt_row(st);
    if (rc == STORE_OK) *out = sq_col_i64(st, 0);
    sqlite3_reset(st);
    return rc;
}

int sq_unread_count(store_sqlite_t *db, str_t conv, int64_t read_seq, str_t user, int64_t *out)
{
    sqlite3_stmt *st = sq_stmt_get(db, S_UNREAD);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, conv);
    sqlite3_bind_int64(st, 2, read_seq);
    sq_bind_str(st, 3, user);
    return count_query(st, out);
}

/* NOT_FOUND when the conversation does not exist, else FORBIDDEN: why user is not in it. */
int sq_not_member(store_sqlite_t *db, str_t conv)
{
    sqlite3_stmt *st = sq_stmt_get(db, S_CONV_EXISTS);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, conv);
    int rc = sq_stmt_row(st);
    sqlite3_reset(st);
    return rc == STORE_OK ? STORE_E_FORBIDDEN : rc;
}

/* Requires that requester (when given) is a member of conv, or that conv exists. */
int sq_check_access(store_sqlite_t *db, str_t conv, str_t requester)
{
    if (!store_present(requester)) {
        int rc = sq_not_member(db, conv);
        return rc == STORE_E_FORBIDDEN ? STORE_OK : rc;
    }
    sqlite3_stmt *st = sq_stmt_get(db, S_MEMBER_GET);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, conv);
    sq_bind_str(st, 2, requester);
    int rc = sq_stmt_row(st);
    sqlite3_reset(st);
    return rc == STORE_E_NOT_FOUND ? sq_not_member(db, conv) : rc;
}

/* Fills c from the conversation row, its members, its last message and, for the requester,
 * the watermark and unread count. Requester must be a member when given. */
int sq_conv_load(store_sqlite_t *db, str_t id, str_t requester, store_conversation_t *c,
                 store_arena_t *a)
{
    int rc;
    int64_t n = 0;
    sqlite3_stmt *st = sq_stmt_get(db, S_CONV_GET);
    if (!st) return STORE_E_IO;
    memset(c, 0, sizeof *c);
    sq_bind_str(st, 1, id);
    if ((rc = sq_stmt_row(st)) == STORE_OK) {
        sq_col_id(st, 0, c->id);
        const unsigned char *type = sqlite3_column_text(st, 1);
        c->type =
            type && strcmp((const char *)type, "group") == 0 ? STORE_CONV_GROUP : STORE_CONV_DIRECT;
        rc = sq_col_str(st, 2, a, &c->title);
        c->last_seq = sq_col_i64(st, 3);
        c->created_at = sq_col_i64(st, 4);
        c->updated_at = sq_col_i64(st, 5);
        if (rc == STORE_OK) rc = sq_col_str(st, 6, a, &c->context.type);
        if (rc == STORE_OK) rc = sq_col_str(st, 7, a, &c->context.id);
        if (rc == STORE_OK) rc = sq_col_str(st, 8, a, &c->context.title);
    }
    sqlite3_reset(st);
    if (rc != STORE_OK) return rc;

    if (!(st = sq_stmt_get(db, S_MEMBER_COUNT))) return STORE_E_IO;
    sq_bind_str(st, 1, id);
    if ((rc = count_query(st, &n)) != STORE_OK) return rc;
    store_member_t *members = n ? ARENA_BACK(a, store_member_t, (size_t)n) : NULL;
    if (n && !members) return STORE_E_NOSPACE;
    if (!(st = sq_stmt_get(db, S_MEMBERS))) return STORE_E_IO;
    sq_bind_str(st, 1, id);
    bool is_member = false;
    size_t i = 0;
    while (i < (size_t)n && (rc = sq_stmt_row(st)) == STORE_OK) {
        store_member_t *m = &members[i++];
        if ((rc = sq_col_str(st, 0, a, &m->user_id)) != STORE_OK) break;
        m->read_seq = sq_col_i64(st, 1);
        m->read_at = sq_col_i64(st, 2);
        m->joined_at = sq_col_i64(st, 3);
        if (store_present(requester) && str_eq(m->user_id, requester)) {
            is_member = true;
            c->read_seq = m->read_seq;
        }
    }
    sqlite3_reset(st);
    if (rc != STORE_OK && rc != STORE_E_NOT_FOUND) return rc;
    c->members = members;
    c->member_count = i;
    if (store_present(requester) && !is_member) return STORE_E_FORBIDDEN;

    if (c->last_seq > 0) {
        rc = msg_load_seq(db, c->id, c->last_seq, &c->last_message, a);
        if (rc != STORE_OK) return rc == STORE_E_NOT_FOUND ? STORE_E_IO : rc;
    }
    if (is_member) return sq_unread_count(db, id, c->read_seq, requester, &c->unread_count);
    return STORE_OK;
}

int sq_user_stub(store_sqlite_t *db, str_t id, int64_t now)
{
    sqlite3_stmt *st = sq_stmt_get(db, S_USER_STUB);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    return sq_stmt_run(st);
}

static int conv_insert(store_sqlite_t *db, const char *id, const char *type, str_t title,
                       const char *direct_key, const store_context_t *ctx, int64_t now)
{
    static const store_context_t none = {{0}, {0}, {0}};
    if (!ctx) ctx = &none;
    sqlite3_stmt *st = sq_stmt_get(db, S_CONV_INSERT);
    if (!st) return STORE_E_IO;
    sq_bind_cstr(st, 1, id);
    sq_bind_cstr(st, 2, type);
    sq_bind_opt(st, 3, title);
    if (direct_key)
        sq_bind_cstr(st, 4, direct_key);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, now);
    sq_bind_opt(st, 6, ctx->type);
    sq_bind_opt(st, 7, ctx->id);
    sq_bind_opt(st, 8, store_present(ctx->type) ? ctx->title : STR_NULL);
    return sq_stmt_run(st);
}

static int member_insert(store_sqlite_t *db, const char *conv, str_t user, int64_t now)
{
    int rc = sq_user_stub(db, user, now);
    if (rc != STORE_OK) return rc;
    sqlite3_stmt *st = sq_stmt_get(db, S_MEMBER_INSERT);
    if (!st) return STORE_E_IO;
    sq_bind_cstr(st, 1, conv);
    sq_bind_str(st, 2, user);
    sqlite3_bind_int64(st, 3, now);
    return sq_stmt_run(st);
}

/* The direct conversation of a and b, found by its key "min|max" (the id charset has no '|'),
 * so that there is exactly one per pair whoever writes first. */
int sq_direct_find_or_create(store_sqlite_t *db, str_t a, str_t b, int64_t now, char id[ID_SIZE],
                             bool *created)
{
    return sq_direct_find_or_create_ctx(db, a, b, NULL, now, id, created);
}

int sq_member_insert(store_sqlite_t *db, const char *conv, str_t user, int64_t now)
{
    return member_insert(db, conv, user, now);
}

int sq_direct_find_or_create_ctx(store_sqlite_t *db, str_t a, str_t b, const store_context_t *ctx,
                                 int64_t now, char id[ID_SIZE], bool *created)
{
    char key[STORE_DIRECT_CTX_KEY_SIZE];
    store_direct_ctx_key(a, b, ctx, key);
    if (!key[0]) return STORE_E_INVALID;

    *created = false;
    sqlite3_stmt *st = sq_stmt_get(db, S_CONV_BY_KEY);
    if (!st) return STORE_E_IO;
    sq_bind_cstr(st, 1, key);
    int rc = sq_stmt_row(st);
    if (rc == STORE_OK) sq_col_id(st, 0, id);
    sqlite3_reset(st);
    if (rc != STORE_E_NOT_FOUND) return rc;

    id_generate(id);
    if ((rc = conv_insert(db, id, "direct", STR_NULL, key, ctx, now)) != STORE_OK ||
        (rc = member_insert(db, id, a, now)) != STORE_OK ||
        (rc = member_insert(db, id, b, now)) != STORE_OK ||
        (rc = sq_outbox_add(db, STORE_OUTBOX_CONVERSATION_CREATED, id, NULL, STR_NULL, 0, now)) !=
            STORE_OK)
        return rc;
    *created = true;
    return STORE_OK;
}

int store_sqlite_direct_open(store_sqlite_t *db, store_direct_open_t *op, store_arena_t *a,
                             int64_t now)
{
    char id[ID_SIZE];
    store_arena_reset(a);
    op->created = false;
    memset(&op->conv, 0, sizeof op->conv);
    if (!store_valid_user_id(op->user) || !store_valid_user_id(op->other) ||
        str_eq(op->user, op->other) || !store_valid_context(&op->context))
        return STORE_E_INVALID;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    rc = sq_direct_find_or_create_ctx(db, op->user, op->other, &op->context, now, id, &op->created);
    if (rc == STORE_OK) rc = sq_conv_load(db, str_make(id, ID_LEN), op->user, &op->conv, a);
    if (rc != STORE_OK) op->created = false;
    return sq_op_end(db, rc);
}

int store_sqlite_group_create(store_sqlite_t *db, store_group_create_t *op, store_arena_t *a,
                              int64_t now)
{
    char id[ID_SIZE];
    store_arena_reset(a);
    memset(&op->conv, 0, sizeof op->conv);
    if (!store_valid_user_id(op->creator) || !store_valid_opt(op->title, STORE_NAME_MAX) ||
        (op->count && !op->participants) || op->count > STORE_GROUP_MAX ||
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

    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    id_generate(id);
    rc = conv_insert(db, id, "group", op->title, NULL, &op->context, now);
    if (rc == STORE_OK) rc = member_insert(db, id, op->creator, now);
    for (size_t i = 0; i < op->count && rc == STORE_OK; i++)
        rc = member_insert(db, id, op->participants[i], now); /* duplicates: DO NOTHING */
    if (rc == STORE_OK)
        rc = sq_outbox_add(db, STORE_OUTBOX_CONVERSATION_CREATED, id, NULL, STR_NULL, 0, now);
    if (rc == STORE_OK) rc = sq_conv_load(db, str_make(id, ID_LEN), op->creator, &op->conv, a);
    return sq_op_end(db, rc);
}

int store_sqlite_conversation_get(store_sqlite_t *db, store_conversation_get_t *op,
                                  store_arena_t *a)
{
    store_arena_reset(a);
    memset(&op->conv, 0, sizeof op->conv);
    if (!id_valid(op->id) || (store_present(op->requester) && !store_valid_user_id(op->requester)))
        return STORE_E_INVALID;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    rc = sq_conv_load(db, op->id, op->requester, &op->conv, a);
    if (rc == STORE_E_FORBIDDEN) memset(&op->conv, 0, sizeof op->conv);
    return sq_op_end(db, rc);
}

int store_sqlite_conversations_list(store_sqlite_t *db, store_conversations_list_t *op,
                                    store_arena_t *a)
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
    size_t limit = op->limit == 0               ? STORE_PAGE_DEFAULT
                   : op->limit > STORE_PAGE_MAX ? STORE_PAGE_MAX
                                                : op->limit;
    sqlite3_stmt *st = sq_stmt_get(db, by_ctx ? S_CONV_LIST_CTX : S_CONV_LIST);
    if (!st) return STORE_E_IO;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    sq_bind_str(st, 1, op->user);
    sqlite3_bind_int64(st, 2, before_t);
    sq_bind_str(st, 3, before_id);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)limit + 1);
    if (by_ctx) {
        sq_bind_str(st, 5, op->context_type);
        sq_bind_str(st, 6, op->context_id);
    }
    store_conversation_t *convs = NULL;
    bool more = false;
    while ((rc = sq_stmt_row(st)) == STORE_OK) {
        if (op->count == limit) {
            more = true;
            break;
        }
        char id[ID_SIZE];
        sq_col_id(st, 0, id);
        store_arena_mark_t mark = store_arena_mark(a);
        store_conversation_t *c = ARENA_PUSH(a, store_conversation_t);
        rc = c ? sq_conv_load(db, str_make(id, ID_LEN), op->user, c, a) : STORE_E_NOSPACE;
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
    sqlite3_reset(st);
    if (rc == STORE_E_NOT_FOUND) rc = STORE_OK;
    if (rc != STORE_OK) {
        op->count = 0;
        return sq_op_end(db, rc);
    }
    op->convs = convs;
    if (more && op->count > 0) {
        const store_conversation_t *last = &convs[op->count - 1];
        store_cursor_format(op->next_cursor, last->updated_at, last->id);
    }
    return sq_op_end(db, STORE_OK);
}

int store_sqlite_mark_read(store_sqlite_t *db, store_mark_read_t *op, int64_t now)
{
    int rc;
    int64_t read_seq = 0, read_at = 0;
    sqlite3_stmt *st;
    op->conv_id[0] = '\0';
    op->message_seq = op->seq = op->read_at = op->unread_count = 0;
    op->moved = false;
    if (!store_valid_user_id(op->user) || !id_valid(op->message_id) ||
        (store_present(op->conversation_id) && !id_valid(op->conversation_id)))
        return STORE_E_INVALID;
    if ((rc = sq_op_begin(db)) != STORE_OK) return rc;

    if (!(st = sq_stmt_get(db, S_MSG_LOCATE))) goto io;
    sq_bind_str(st, 1, op->message_id);
    rc = sq_stmt_row(st);
    if (rc == STORE_OK) {
        if (store_present(op->conversation_id) && !sq_col_eq(st, 0, op->conversation_id))
            rc = STORE_E_NOT_FOUND;
        sq_col_id(st, 0, op->conv_id);
        op->message_seq = sq_col_i64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != STORE_OK) goto out;
    str_t conv = str_make(op->conv_id, ID_LEN);

    if (!(st = sq_stmt_get(db, S_MEMBER_GET))) goto io;
    sq_bind_str(st, 1, conv);
    sq_bind_str(st, 2, op->user);
    rc = sq_stmt_row(st);
    if (rc == STORE_OK) {
        read_seq = sq_col_i64(st, 0);
        read_at = sq_col_i64(st, 1);
    }
    sqlite3_reset(st);
    if (rc == STORE_E_NOT_FOUND) rc = STORE_E_FORBIDDEN;
    if (rc != STORE_OK) goto out;

    if (op->message_seq > read_seq) {
        if (!(st = sq_stmt_get(db, S_MEMBER_READ))) goto io;
        sq_bind_str(st, 1, conv);
        sq_bind_str(st, 2, op->user);
        sqlite3_bind_int64(st, 3, op->message_seq);
        sqlite3_bind_int64(st, 4, now);
        if ((rc = sq_stmt_run(st)) != STORE_OK) goto out;
        /* Messages the watermark just passed are read from now on, unless another member
         * read them first: a message's read_at is its first read. */
        if (!(st = sq_stmt_get(db, S_MSG_MARK_READ))) goto io;
        sq_bind_str(st, 1, conv);
        sqlite3_bind_int64(st, 2, read_seq);
        sqlite3_bind_int64(st, 3, op->message_seq);
        sq_bind_str(st, 4, op->user);
        sqlite3_bind_int64(st, 5, now);
        if ((rc = sq_stmt_run(st)) != STORE_OK) goto out;
        read_seq = op->message_seq;
        read_at = now;
        op->moved = true;
        char msg[ID_SIZE];
        memcpy(msg, op->message_id.ptr, ID_LEN);
        msg[ID_LEN] = '\0';
        if ((rc = sq_outbox_add(db, STORE_OUTBOX_MESSAGE_READ, op->conv_id, msg, op->user,
                                op->message_seq, now)) != STORE_OK)
            goto out;
    }
    op->seq = read_seq;
    op->read_at = read_at;
    rc = sq_unread_count(db, conv, read_seq, op->user, &op->unread_count);
    goto out;
io:
    rc = STORE_E_IO;
out:
    if (rc != STORE_OK) op->moved = false;
    return sq_op_end(db, rc);
}
