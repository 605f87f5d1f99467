/* The SQLite engine: sending (with the writer's send cache) and reading messages. */
#include "store/store_sqlite_int.h"

void sq_send_cache_clear(store_sqlite_t *db)
{
    strmap_free(&db->directs, NULL);
    strmap_free(&db->convs, free);
    db->dirty = NULL;
}

/* Writes the conversation rows that the cached sends of this transaction are ahead of. */
int sq_send_cache_flush(store_sqlite_t *db)
{
    while (db->dirty) {
        send_conv_t *c = db->dirty;
        int rc = STORE_E_NOT_FOUND;
        for (int by_rowid = c->rowid > 0; rc == STORE_E_NOT_FOUND; by_rowid = 0) {
            sqlite3_stmt *st = sq_stmt_get(db, by_rowid ? S_CONV_BUMP_ROWID : S_CONV_BUMP);
            if (!st) return STORE_E_IO;
            sq_bind_cstr(st, 1, c->id);
            sqlite3_bind_int64(st, 2, c->last_seq);
            sqlite3_bind_int64(st, 3, c->bump_at);
            if (by_rowid) sqlite3_bind_int64(st, 4, c->rowid);
            if ((rc = sq_stmt_run(st)) != STORE_OK) return rc;
            /* by rowid, no row: it was renumbered; by id once more (and no further) */
            if (by_rowid && sqlite3_changes(db->db) == 0) {
                c->rowid = 0;
                rc = STORE_E_NOT_FOUND;
            }
        }
        db->dirty = c->next_dirty;
        c->next_dirty = NULL;
        c->bump_at = 0;
    }
    return STORE_OK;
}

/* Remembers a conversation's state after a send that went the long way (or forgets it when
 * memory runs out: the cache is only a shortcut). */
/* plain: the send named the recipient, so conv is the pair's plain thread (not one about a
 * context, issue 15), which sends by recipient may then find under the pair's key. */
static void send_cache_put(store_sqlite_t *db, const char *conv, int64_t rowid, int64_t seq,
                           str_t sender, str_t recipient, bool plain)
{
    if (!db->convs.buckets && strmap_init(&db->convs) != 0) return;
    if (!db->directs.buckets && strmap_init(&db->directs) != 0) return;
    send_conv_t *c = strmap_get(&db->convs, conv);
    if (!c) {
        if (!(c = calloc(1, sizeof *c))) return;
        memcpy(c->id, conv, ID_SIZE);
        c->rowid = rowid;
        c->direct = store_present(recipient);
        /* A direct conversation's two members never change (only groups' do), so a send that
         * named the conversation rather than the recipient leaves them here too: the next
         * sends by conversation id take the short way instead of a savepoint each. */
        if (c->direct) {
            memcpy(c->a, sender.ptr, sender.len);
            memcpy(c->b, recipient.ptr, recipient.len);
        }
        if (c->direct && plain) {
            char key[STORE_DIRECT_KEY_SIZE];
            store_direct_key(sender, recipient, key);
            if (strmap_set(&db->directs, key, c) != 0) {
                free(c);
                return;
            }
        }
        if (strmap_set(&db->convs, conv, c) != 0) {
            if (c->direct && plain) {
                char key[STORE_DIRECT_KEY_SIZE];
                store_direct_key(sender, recipient, key);
                strmap_remove(&db->directs, key);
            }
            free(c);
            return;
        }
    }
    if (seq > c->last_seq) c->last_seq = seq;
}

static send_conv_t *send_cache_find(store_sqlite_t *db, const store_message_insert_t *op)
{
    if (!db->convs.buckets || !db->directs.buckets) return NULL;
    if (store_present(op->conversation_id)) {
        char conv[ID_SIZE];
        memcpy(conv, op->conversation_id.ptr, ID_LEN);
        conv[ID_LEN] = '\0';
        return strmap_get(&db->convs, conv);
    }
    char key[STORE_DIRECT_KEY_SIZE];
    store_direct_key(op->sender, op->recipient, key);
    return strmap_get(&db->directs, key);
}

static bool cached_member(const send_conv_t *c, str_t user)
{
    return str_eq(user, str_cstr(c->a)) || str_eq(user, str_cstr(c->b));
}

static void msg_fill(store_message_insert_t *op, const char *id, const char *conv, int64_t seq,
                     str_t recipient, int64_t now)
{
    memcpy(op->msg.id, id, ID_SIZE);
    memcpy(op->msg.conversation_id, conv, ID_SIZE);
    op->msg.seq = seq;
    op->msg.recipient = recipient;
    op->msg.type = op->type;
    op->msg.created_at = op->msg.updated_at = now;
}

static int msg_fill_copies(store_message_insert_t *op, store_arena_t *a)
{
    int rc;
    if ((rc = store_arena_copy(a, op->sender, &op->msg.sender)) != STORE_OK ||
        (rc = store_arena_str(a, op->content.ptr, op->content.len, &op->msg.content)) != STORE_OK)
        return rc;
    if (store_present(op->client_msg_id))
        rc = store_arena_copy(a, op->client_msg_id, &op->msg.client_msg_id);
    return rc;
}

/* The answer to a repeated (sender, clientMsgId): what was stored the first time. */
static int msg_by_client_id(store_sqlite_t *db, store_message_insert_t *op, store_arena_t *a)
{
    sqlite3_stmt *st = sq_stmt_get(db, S_MSG_BY_CLIENT_ID);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, op->sender);
    sq_bind_str(st, 2, op->client_msg_id);
    int rc = sq_stmt_row(st);
    if (rc == STORE_OK) {
        rc = sq_msg_from_row(st, &op->msg, a);
        op->duplicate = rc == STORE_OK;
    }
    sqlite3_reset(st);
    return rc;
}

/* A send inside the writer's transaction to a conversation in the cache, by someone known to
 * be its member, without a file: one INSERT, which SQLite makes atomic on its own, so no
 * savepoint. STORE_E_AGAIN_ when the long way has to decide. */
#define STORE_E_AGAIN_ (-1000)

/* The sender's membership row says it has written here (see migration 4). */
static int member_mark_sent(store_sqlite_t *db, const char *conv, str_t sender)
{
    sqlite3_stmt *st = sq_stmt_get(db, S_MEMBER_SENT);
    if (!st) return STORE_E_IO;
    sq_bind_cstr(st, 1, conv);
    sq_bind_str(st, 2, sender);
    return sq_stmt_run(st);
}

static int message_insert_cached(store_sqlite_t *db, store_message_insert_t *op, store_arena_t *a,
                                 int64_t now)
{
    if (store_present(op->file_id) || sqlite3_get_autocommit(db->db)) return STORE_E_AGAIN_;
    send_conv_t *c = send_cache_find(db, op);
    if (!c) return STORE_E_AGAIN_;
    str_t recipient = STR_NULL;
    bool *sent_flag = NULL, sent = false;
    if (c->direct) {
        if (!cached_member(c, op->sender)) return STORE_E_AGAIN_;
        bool is_a = str_eq(op->sender, str_cstr(c->a));
        recipient = str_cstr(is_a ? c->b : c->a);
        sent_flag = is_a ? &c->a_sent : &c->b_sent;
        sent = *sent_flag;
        /* A block between the two: the long way answers (after a repeated clientMsgId). */
        bool blocked = false;
        int brc = sq_block_between(db, op->sender, recipient, &blocked);
        if (brc != STORE_OK) return brc;
        if (blocked) return STORE_E_AGAIN_;
    } else {
        sqlite3_stmt *st = sq_stmt_get(db, S_MEMBER_GET);
        if (!st) return STORE_E_IO;
        sq_bind_cstr(st, 1, c->id);
        sq_bind_str(st, 2, op->sender);
        int rc = sq_stmt_row(st);
        if (rc == STORE_OK) sent = sq_col_i64(st, 2) != 0;
        sqlite3_reset(st);
        if (rc == STORE_E_NOT_FOUND) return STORE_E_AGAIN_;
        if (rc != STORE_OK) return rc;
    }

    /* With no savepoint to undo the INSERT, the outputs must be sure to fit first: a send
     * refused with STORE_E_NOSPACE must store nothing (guarantee 1). The long way has one. */
    size_t need = op->sender.len + 1 + op->content.len + 1 +
                  (store_present(op->client_msg_id) ? op->client_msg_id.len + 1 : 0) +
                  (store_present(recipient) ? recipient.len + 1 : 0);
    if (!a->ptr || a->back - a->front < need) return STORE_E_AGAIN_;

    char id[ID_SIZE];
    id_generate(id);
    sqlite3_stmt *st = sq_stmt_get(db, S_MSG_INSERT_ONCE);
    if (!st) return STORE_E_IO;
    sq_bind_cstr(st, 1, id);
    sq_bind_cstr(st, 2, c->id);
    sqlite3_bind_int64(st, 3, c->last_seq + 1);
    sq_bind_str(st, 4, op->sender);
    sq_bind_str(st, 5, recipient);
    sq_bind_str(st, 6, op->content);
    sq_bind_cstr(st, 7, store_msg_type_name(op->type));
    sq_bind_opt(st, 8, STR_NULL);
    sq_bind_opt(st, 9, op->client_msg_id);
    sqlite3_bind_int64(st, 10, now);
    int rc = sq_stmt_run(st);
    if (rc != STORE_OK) return rc;
    if (sqlite3_changes(db->db) == 0) { /* a repeated clientMsgId */
        rc = msg_by_client_id(db, op, a);
        return rc == STORE_E_NOT_FOUND ? STORE_E_IO : rc;
    }
    op->msg.pos = sqlite3_last_insert_rowid(db->db);
    sq_fts_note(db, 1);
    if ((rc = sq_outbox_add(db, STORE_OUTBOX_MESSAGE_CREATED, c->id, id, STR_NULL, c->last_seq + 1,
                            now)) != STORE_OK)
        return rc;
    if (!sent) {
        if ((rc = member_mark_sent(db, c->id, op->sender)) != STORE_OK) return rc;
        if (sent_flag) *sent_flag = true;
    }
    c->last_seq++;
    if (c->bump_at == 0) {
        c->next_dirty = db->dirty;
        db->dirty = c;
    }
    if (now > c->bump_at) c->bump_at = now;
    /* recipient points into the cache, which a later COMMIT may empty: copy it */
    if (store_present(recipient) && (rc = store_arena_copy(a, recipient, &recipient)) != STORE_OK)
        return rc;
    msg_fill(op, id, c->id, c->last_seq, recipient, now);
    return msg_fill_copies(op, a);
}

int store_sqlite_message_insert(store_sqlite_t *db, store_message_insert_t *op, store_arena_t *a,
                                int64_t now)
{
    char conv[ID_SIZE], id[ID_SIZE];
    int rc;
    int64_t conv_rowid = 0; /* for the send cache */
    sqlite3_stmt *st;
    store_arena_reset(a);
    memset(&op->msg, 0, sizeof op->msg);
    op->duplicate = false;
    op->conversation_created = false;
    bool by_conv = store_present(op->conversation_id);
    if (!store_valid_user_id(op->sender) || by_conv == store_present(op->recipient) ||
        (by_conv && !id_valid(op->conversation_id)) ||
        (!by_conv && (!store_valid_user_id(op->recipient) || str_eq(op->recipient, op->sender))) ||
        !op->content.ptr || op->content.len > STORE_CONTENT_MAX ||
        (unsigned)op->type > STORE_MSG_FILE ||
        (store_present(op->file_id) && !id_valid(op->file_id)) ||
        !store_valid_opt(op->client_msg_id, STORE_CLIENT_MSG_ID_MAX))
        return STORE_E_INVALID;
    rc = message_insert_cached(db, op, a, now);
    if (rc != STORE_E_AGAIN_) {
        if (rc != STORE_OK) {
            memset(&op->msg, 0, sizeof op->msg);
            op->duplicate = false;
        }
        return rc;
    }
    store_arena_reset(a);
    if ((rc = sq_op_begin(db)) != STORE_OK) return rc;

    /* A repeated clientMsgId answers with what was stored the first time, whatever else the
     * repeat says: the client is retrying a send whose ack it lost. */
    if (store_present(op->client_msg_id)) {
        rc = msg_by_client_id(db, op, a);
        if (rc != STORE_E_NOT_FOUND) goto out;
    }

    if (by_conv) {
        memcpy(conv, op->conversation_id.ptr, ID_LEN);
        conv[ID_LEN] = '\0';
    } else {
        rc = sq_direct_find_or_create(db, op->sender, op->recipient, now, conv,
                                      &op->conversation_created);
        if (rc != STORE_OK) goto out;
    }

    int64_t last_seq = 0;
    str_t recipient = STR_NULL;
    if (!(st = sq_stmt_get(db, S_SEND_CTX))) goto io;
    sq_bind_cstr(st, 1, conv);
    sq_bind_str(st, 2, op->sender);
    rc = sq_stmt_row(st);
    if (rc == STORE_OK) {
        const unsigned char *type = sqlite3_column_text(st, 0);
        last_seq = sq_col_i64(st, 1);
        conv_rowid = sq_col_i64(st, 3);
        if (type && strcmp((const char *)type, "direct") == 0)
            rc = sq_col_str(st, 2, a, &recipient);
    }
    sqlite3_reset(st);
    if (rc == STORE_E_NOT_FOUND) rc = sq_not_member(db, str_make(conv, ID_LEN));
    if (rc != STORE_OK) goto out;
    /* Decided here, in the insert's transaction on the one writer: a block committed before
     * this send refuses it, and nothing of it is stored (the savepoint undoes a conversation
     * created above). */
    if (store_present(recipient)) {
        bool blocked = false;
        if ((rc = sq_block_between(db, op->sender, recipient, &blocked)) != STORE_OK) goto out;
        if (blocked) {
            rc = STORE_E_BLOCKED;
            goto out;
        }
    }

    if (store_present(op->file_id)) {
        store_file_t *f = ARENA_BACK(a, store_file_t, 1);
        if (!f) {
            rc = STORE_E_NOSPACE;
            goto out;
        }
        if (!(st = sq_stmt_get(db, S_FILE_GET))) goto io;
        sq_bind_str(st, 1, op->file_id);
        rc = sq_stmt_row(st);
        if (rc == STORE_OK) rc = sq_file_from_row(st, 0, f, a);
        sqlite3_reset(st);
        /* Only the uploader may attach a file; an unknown file is refused the same way. */
        if (rc == STORE_E_NOT_FOUND || (rc == STORE_OK && !str_eq(f->owner, op->sender)))
            rc = STORE_E_FORBIDDEN;
        /* An image message carries an image. */
        if (rc == STORE_OK && op->type == STORE_MSG_IMAGE &&
            !str_starts_with(f->mime, STR_LIT("image/")))
            rc = STORE_E_INVALID;
        if (rc != STORE_OK) goto out;
        op->msg.file = f;
    }

    /* One writer thread runs every insert, so last_seq + 1 read in this transaction is the
     * next seq: no gaps, no races; UNIQUE(conversation_id, seq) checks it all the same. */
    id_generate(id);
    if (!(st = sq_stmt_get(db, S_MSG_INSERT))) goto io;
    sq_bind_cstr(st, 1, id);
    sq_bind_cstr(st, 2, conv);
    sqlite3_bind_int64(st, 3, last_seq + 1);
    sq_bind_str(st, 4, op->sender);
    sq_bind_str(st, 5, recipient);
    sq_bind_str(st, 6, op->content);
    sq_bind_cstr(st, 7, store_msg_type_name(op->type));
    sq_bind_opt(st, 8, op->file_id);
    sq_bind_opt(st, 9, op->client_msg_id);
    sqlite3_bind_int64(st, 10, now);
    if ((rc = sq_stmt_run(st)) != STORE_OK) goto out;
    op->msg.pos = sqlite3_last_insert_rowid(db->db);
    sq_fts_note(db, 1);
    if ((rc = member_mark_sent(db, conv, op->sender)) != STORE_OK) goto out;
    if (!(st = sq_stmt_get(db, S_CONV_BUMP))) goto io;
    sq_bind_cstr(st, 1, conv);
    sqlite3_bind_int64(st, 2, last_seq + 1);
    sqlite3_bind_int64(st, 3, now);
    if ((rc = sq_stmt_run(st)) != STORE_OK) goto out;
    if ((rc = sq_outbox_add(db, STORE_OUTBOX_MESSAGE_CREATED, conv, id, STR_NULL, last_seq + 1,
                            now)) != STORE_OK)
        goto out;

    msg_fill(op, id, conv, last_seq + 1, recipient, now);
    rc = msg_fill_copies(op, a);
    goto out;
io:
    rc = STORE_E_IO;
out:
    if (rc != STORE_OK) {
        memset(&op->msg, 0, sizeof op->msg);
        op->duplicate = op->conversation_created = false;
    }
    rc = sq_op_end(db, rc);
    /* The next send to this conversation can take the short way. */
    if (rc == STORE_OK && !op->duplicate && !(db->flags & STORE_SQLITE_READONLY))
        send_cache_put(db, op->msg.conversation_id, conv_rowid, op->msg.seq, op->sender,
                       op->msg.recipient, !by_conv);
    return rc;
}

/* Reads up to limit rows of st into an array at the arena's front. A row that does not fit
 * ends the list early, reported as "more", unless it is the first (STORE_E_NOSPACE). */
static int msg_list(sqlite3_stmt *st, size_t limit, store_arena_t *a, const store_message_t **out,
                    size_t *count, bool *more)
{
    int rc;
    store_message_t *first = NULL;
    *count = 0;
    *more = false;
    while ((rc = sq_stmt_row(st)) == STORE_OK) {
        if (*count == limit) {
            *more = true;
            break;
        }
        store_arena_mark_t mark = store_arena_mark(a);
        store_message_t *m = ARENA_PUSH(a, store_message_t);
        rc = m ? sq_msg_from_row(st, m, a) : STORE_E_NOSPACE;
        if (rc == STORE_E_NOSPACE && *count > 0) {
            store_arena_restore(a, mark);
            *more = true;
            rc = STORE_OK;
            break;
        }
        if (rc != STORE_OK) break;
        if (!first) first = m;
        (*count)++;
    }
    sqlite3_reset(st);
    if (rc == STORE_E_NOT_FOUND) rc = STORE_OK;
    if (rc != STORE_OK) *count = 0;
    *out = rc == STORE_OK ? first : NULL;
    return rc;
}

/* Messages of one conversation from statement sid (?1 conversation, ?2 the seq bound, ?3 the
 * limit + 1), once the requester (when given) is known to be a member. */
static int conversation_messages(store_sqlite_t *db, int sid, str_t conv, str_t requester,
                                 int64_t bound, size_t limit_in, store_arena_t *a,
                                 const store_message_t **msgs, size_t *count, bool *has_more)
{
    store_arena_reset(a);
    *msgs = NULL;
    *count = 0;
    *has_more = false;
    if (!id_valid(conv) || bound < 0 ||
        (store_present(requester) && !store_valid_user_id(requester)))
        return STORE_E_INVALID;
    size_t limit = store_page_limit(limit_in);
    sqlite3_stmt *st = sq_stmt_get(db, sid);
    if (!st) return STORE_E_IO;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    if ((rc = sq_check_access(db, conv, requester)) != STORE_OK) return sq_op_end(db, rc);
    sq_bind_str(st, 1, conv);
    sqlite3_bind_int64(st, 2, bound);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1);
    rc = msg_list(st, limit, a, msgs, count, has_more);
    return sq_op_end(db, rc);
}

int store_sqlite_messages_page(store_sqlite_t *db, store_messages_page_t *op, store_arena_t *a)
{
    if (op->before_seq < 0) {
        store_arena_reset(a);
        op->msgs = NULL;
        op->count = 0;
        op->has_more = false;
        return STORE_E_INVALID;
    }
    int rc = conversation_messages(db, S_MSG_PAGE, op->conversation_id, op->requester,
                                   op->before_seq > 0 ? op->before_seq : INT64_MAX, op->limit, a,
                                   &op->msgs, &op->count, &op->has_more);
    if (rc == STORE_OK) store_messages_reverse((store_message_t *)op->msgs, op->count);
    return rc;
}

int store_sqlite_messages_after(store_sqlite_t *db, store_messages_after_t *op, store_arena_t *a)
{
    return conversation_messages(db, S_MSG_AFTER, op->conversation_id, op->requester, op->after_seq,
                                 op->limit, a, &op->msgs, &op->count, &op->has_more);
}

int store_sqlite_messages_since(store_sqlite_t *db, store_messages_since_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    op->msgs = NULL;
    op->count = 0;
    op->has_more = false;
    op->last_pos = 0;
    if (!store_valid_user_id(op->user) || op->after_pos < 0) return STORE_E_INVALID;
    size_t limit = store_page_limit(op->limit);
    sqlite3_stmt *st = sq_stmt_get(db, S_MSG_SINCE);
    if (!st) return STORE_E_IO;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    sqlite3_bind_int64(st, 1, op->after_pos);
    sq_bind_str(st, 2, op->user);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1);
    rc = msg_list(st, limit, a, &op->msgs, &op->count, &op->has_more);
    if (rc == STORE_OK) {
        /* The newest position of all, so a caller can start following from here. */
        sqlite3_stmt *mx = NULL;
        if (sqlite3_prepare_v2(db->db, "SELECT COALESCE(MAX(pos), 0) FROM messages", -1, &mx,
                               NULL) == SQLITE_OK &&
            sqlite3_step(mx) == SQLITE_ROW)
            op->last_pos = sqlite3_column_int64(mx, 0);
        else
            rc = STORE_E_IO;
        sqlite3_finalize(mx);
    }
    return sq_op_end(db, rc);
}

/* Columns: MSG_COLS. */
int sq_msg_from_row(sqlite3_stmt *st, store_message_t *m, store_arena_t *a)
{
    int rc;
    memset(m, 0, sizeof *m);
    sq_col_id(st, 0, m->id);
    sq_col_id(st, 1, m->conversation_id);
    m->seq = sq_col_i64(st, 2);
    m->pos = sq_col_i64(st, 3);
    if ((rc = sq_col_str(st, 4, a, &m->sender)) || (rc = sq_col_str(st, 5, a, &m->recipient)) ||
        (rc = sq_col_str(st, 6, a, &m->content)) || (rc = sq_col_str(st, 8, a, &m->client_msg_id)))
        return rc;
    if (!m->content.ptr) m->content = STR_LIT("");
    m->type = store_msg_type_parse((const char *)sqlite3_column_text(st, 7));
    m->read_at = sq_col_i64(st, 9);
    m->created_at = sq_col_i64(st, 10);
    m->updated_at = sq_col_i64(st, 11);
    if (sqlite3_column_type(st, 12) != SQLITE_NULL) {
        store_file_t *f = ARENA_BACK(a, store_file_t, 1);
        if (!f) return STORE_E_NOSPACE;
        if ((rc = sq_file_from_row(st, 12, f, a)) != STORE_OK) return rc;
        m->file = f;
    }
    m->edited_at = sq_col_i64(st, 20);
    m->deleted = sq_col_i64(st, 21) != 0;
    return STORE_OK;
}

/* Edit or delete (store.h, STORE_OP_MESSAGE_UPDATE). */
static int message_update(store_sqlite_t *db, store_message_update_t *op, store_arena_t *a,
                          int64_t now)
{
    sqlite3_stmt *st = sq_stmt_get(db, S_MSG_UPD_CTX);
    if (!st) return STORE_E_IO;
    sq_bind_str(st, 1, op->message_id);
    sq_bind_str(st, 2, op->user);
    int rc = sq_stmt_row(st);
    if (rc != STORE_OK) {
        sqlite3_reset(st);
        return rc;
    }
    bool member = sq_col_i64(st, 6) != 0, mine = sq_col_eq(st, 1, op->user);
    bool text = sq_col_eq(st, 2, STR_LIT("text")), deleted = sq_col_i64(st, 4) != 0;
    int64_t created = sq_col_i64(st, 3);
    char file[ID_SIZE];
    sq_col_id(st, 5, file);
    sqlite3_reset(st);
    if (op->by_server) member = mine = true; /* a server credential may delete any message */
    if (!member) return STORE_E_NOT_FOUND;
    if (!mine) return STORE_E_FORBIDDEN;
    if (op->remove) {
        if (deleted) return STORE_OK;
        if (!(st = sq_stmt_get(db, S_MSG_TOMBSTONE))) return STORE_E_IO;
        sq_bind_str(st, 1, op->message_id);
        sqlite3_bind_int64(st, 2, now);
        if ((rc = sq_stmt_run(st)) != STORE_OK) return rc;
        if (file[0]) {
            if (!(st = sq_stmt_get(db, S_FILE_ORPHAN))) return STORE_E_IO;
            sq_bind_cstr(st, 1, file);
            rc = sq_stmt_row(st);
            if (rc == STORE_OK) rc = sq_col_str(st, 0, a, &op->file_path);
            sqlite3_reset(st);
            if (rc != STORE_OK && rc != STORE_E_NOT_FOUND) return rc;
        }
    } else {
        if (deleted) return STORE_E_NOT_FOUND;
        if (!text) return STORE_E_INVALID;
        if (op->window_ms > 0 && now - created > op->window_ms) {
            op->window_passed = true;
            return STORE_E_FORBIDDEN;
        }
        if (!(st = sq_stmt_get(db, S_MSG_EDIT))) return STORE_E_IO;
        sq_bind_str(st, 1, op->message_id);
        sqlite3_bind_text(st, 2, op->content.ptr, (int)op->content.len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        if ((rc = sq_stmt_run(st)) != STORE_OK) return rc;
    }
    op->changed = true;
    return STORE_OK;
}

int store_sqlite_message_update(store_sqlite_t *db, store_message_update_t *op, store_arena_t *a,
                                int64_t now)
{
    store_arena_reset(a);
    memset(&op->msg, 0, sizeof op->msg);
    op->changed = op->window_passed = false;
    op->file_path = STR_NULL;
    if (op->by_server) op->user = STR_LIT(STORE_SYSTEM_SENDER);
    if (!store_valid_user_id(op->user) || !id_valid(op->message_id) ||
        (!op->remove && (!op->content.ptr || op->content.len > STORE_CONTENT_MAX)) ||
        (op->by_server && !op->remove))
        return STORE_E_INVALID;
    int rc = sq_op_begin(db);
    if (rc != STORE_OK) return rc;
    rc = message_update(db, op, a, now);
    if (rc == STORE_OK) {
        sqlite3_stmt *st = sq_stmt_get(db, S_MSG_BY_ID);
        if (!st) return sq_op_end(db, STORE_E_IO);
        sq_bind_str(st, 1, op->message_id);
        if ((rc = sq_stmt_row(st)) == STORE_OK) rc = sq_msg_from_row(st, &op->msg, a);
        sqlite3_reset(st);
    }
    if (rc == STORE_OK && op->changed) sq_fts_note(db, 1); /* it moved above the watermark */
    return sq_op_end(db, rc);
}
