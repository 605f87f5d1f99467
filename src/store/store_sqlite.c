/* The SQLite engine: its statements and their helpers, per-operation savepoints, the engine
 * struct (store_engine.h) and the dispatch of a request to its operation. The operations live
 * in store_sqlite_{users,conversations,messages,files}.c, the schema in store_sqlite_schema.c. */
#include "store/store_sqlite_int.h"

#include "core/log.h"

#define MSG_COLS                                                                                   \
    "m.id, m.conversation_id, m.seq, m.pos, m.sender, m.recipient, m.content, m.type,"             \
    " m.client_msg_id, m.read_at, m.created_at, m.updated_at, f.id, f.owner, f.name, f.size,"      \
    " f.mime, f.path, f.sha256, f.created_at, m.edited_at, m.deleted"                              \
    " FROM messages m LEFT JOIN files f ON f.id = m.file_id "
#define USER_COLS "id, name, role, username, last_seen, created_at"

#define FILE_COLS "id, owner, name, size, mime, path, sha256, created_at"

static const char *const store_sql[S_COUNT_] = {
    [S_SP_BEGIN] = "SAVEPOINT op",
    [S_SP_RELEASE] = "RELEASE op",
    [S_SP_ROLLBACK] = "ROLLBACK TO op",
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_READ_BEGIN] = "BEGIN",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_USER_UPSERT] = "INSERT INTO users (id, name, role, created_at) VALUES (?1, ?2, ?3, ?4)"
                      " ON CONFLICT (id) DO UPDATE SET name = coalesce(excluded.name, name),"
                      " role = coalesce(excluded.role, role)",
    [S_USER_STUB] = "INSERT INTO users (id, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    [S_USER_SEEN] = "INSERT INTO users (id, last_seen, created_at) VALUES (?1, ?2, ?2)"
                    " ON CONFLICT (id) DO UPDATE"
                    " SET last_seen = max(coalesce(last_seen, 0), excluded.last_seen)",
    [S_USER_GET] = "SELECT " USER_COLS ", NULL FROM users WHERE id = ?1",
    [S_ACCOUNT_CREATE] = "INSERT INTO users (id, name, role, username, password_hash, created_at)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_ACCOUNT_GET] = "SELECT " USER_COLS ", password_hash FROM users WHERE username = ?1",
    [S_USERS_SEARCH] = "SELECT " USER_COLS ", NULL FROM users WHERE username >= ?1"
                       " AND (?2 IS NULL OR username < ?2) ORDER BY username LIMIT ?3",
    [S_CONV_BY_KEY] = "SELECT id FROM conversations WHERE direct_key = ?1",
    [S_CONV_INSERT] = "INSERT INTO conversations"
                      " (id, type, title, direct_key, last_seq, created_at, updated_at,"
                      " context_type, context_id, context_title)"
                      " VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5, ?6, ?7, ?8)",
    [S_CONV_GET] = "SELECT id, type, title, last_seq, created_at, updated_at, context_type,"
                   " context_id, context_title FROM conversations WHERE id = ?1",
    [S_CONV_EXISTS] = "SELECT 1 FROM conversations WHERE id = ?1",
    [S_CONV_BUMP] = "UPDATE conversations SET last_seq = ?2, updated_at = max(updated_at, ?3)"
                    " WHERE id = ?1",
    /* The same by the row's rowid, which the send cache keeps: one B-tree seek instead of two
     * (the text id's index, then the row). id = ?1 as well, so a row whose rowid changed meanwhile
     * (a VACUUM renumbers them) is not touched: no change, and the flush falls back to the id. */
    [S_CONV_BUMP_ROWID] = "UPDATE conversations SET last_seq = ?2, updated_at = max(updated_at, ?3)"
                          " WHERE rowid = ?4 AND id = ?1",
    /* Members first, then a sort of that user's conversations: an index on
     * conversations(updated_at) would make SQLite walk everyone's conversations instead. */
    [S_CONV_LIST] = "SELECT c.id, c.updated_at FROM conversation_members m"
                    " JOIN conversations c ON c.id = m.conversation_id"
                    " WHERE m.user_id = ?1 AND (c.updated_at, c.id) < (?2, ?3)"
                    " ORDER BY c.updated_at DESC, c.id DESC LIMIT ?4",
    /* The same, only the conversations about one context (migration 7's index is not used:
     * the user's memberships are fewer than a context's conversations platform-wide). */
    [S_CONV_LIST_CTX] = "SELECT c.id, c.updated_at FROM conversation_members m"
                        " JOIN conversations c ON c.id = m.conversation_id"
                        " WHERE m.user_id = ?1 AND (c.updated_at, c.id) < (?2, ?3)"
                        " AND c.context_type = ?5 AND c.context_id = ?6"
                        " ORDER BY c.updated_at DESC, c.id DESC LIMIT ?4",
    [S_MEMBER_DELETE] = "DELETE FROM conversation_members WHERE conversation_id = ?1"
                        " AND user_id = ?2",
    [S_CONV_TYPE] = "SELECT type FROM conversations WHERE id = ?1",
    [S_CONV_NEXT_SEQ] = "UPDATE conversations SET last_seq = last_seq + 1,"
                        " updated_at = max(updated_at, ?2) WHERE id = ?1 RETURNING last_seq",
    /* Export and erase (issue 15). The (sender, client_msg_id) index serves by sender. */
    [S_EXP_MEMBERSHIPS] = "SELECT conversation_id, read_seq, joined_at FROM conversation_members"
                          " WHERE user_id = ?1 ORDER BY conversation_id LIMIT ?2",
    [S_EXP_FILES] = "SELECT " FILE_COLS " FROM files WHERE owner = ?1 ORDER BY created_at, id"
                    " LIMIT ?2",
    [S_EXP_MESSAGES] = "SELECT " MSG_COLS "WHERE m.sender = ?1 AND m.pos > ?2 ORDER BY m.pos"
                       " LIMIT ?3",
    [S_ERASE_MSG_IDS] = "SELECT id FROM messages WHERE sender = ?1 AND deleted = 0",
    [S_ERASE_CMIDS] = "UPDATE messages SET client_msg_id = NULL WHERE sender = ?1"
                      " AND client_msg_id IS NOT NULL",
    [S_ERASE_FILES] = "DELETE FROM files WHERE owner = ?1 RETURNING path",
    [S_ERASE_MEMBERS] = "DELETE FROM conversation_members WHERE user_id = ?1",
    [S_ERASE_BLOCKS] = "DELETE FROM blocks WHERE blocker = ?1 OR blocked = ?1",
    [S_ERASE_USER] = "DELETE FROM users WHERE id = ?1",
    [S_MEMBER_INSERT] = "INSERT INTO conversation_members"
                        " (conversation_id, user_id, read_seq, joined_at) VALUES (?1, ?2, 0, ?3)"
                        " ON CONFLICT DO NOTHING",
    [S_MEMBER_COUNT] = "SELECT count(*) FROM conversation_members WHERE conversation_id = ?1",
    [S_MEMBERS] = "SELECT user_id, read_seq, read_at, joined_at FROM conversation_members"
                  " WHERE conversation_id = ?1 ORDER BY joined_at, user_id",
    [S_MEMBER_GET] = "SELECT read_seq, read_at, sent FROM conversation_members"
                     " WHERE conversation_id = ?1 AND user_id = ?2",
    [S_MEMBER_READ] = "UPDATE conversation_members SET read_seq = ?3, read_at = ?4"
                      " WHERE conversation_id = ?1 AND user_id = ?2 AND read_seq < ?3",
    [S_MEMBER_SENT] = "UPDATE conversation_members SET sent = 1"
                      " WHERE conversation_id = ?1 AND user_id = ?2 AND sent = 0",
    [S_UNREAD] = "SELECT count(*) FROM messages"
                 " WHERE conversation_id = ?1 AND seq > ?2 AND sender <> ?3 AND deleted = 0",
    /* Everything a send needs in one lookup: the conversation, that the sender is in it, and
     * for a direct conversation the other member (the recipient). */
    [S_SEND_CTX] = "SELECT c.type, c.last_seq, (SELECT o.user_id FROM conversation_members o"
                   " WHERE o.conversation_id = c.id AND o.user_id <> ?2 LIMIT 1), c.rowid"
                   " FROM conversations c JOIN conversation_members m"
                   " ON m.conversation_id = c.id AND m.user_id = ?2 WHERE c.id = ?1",
    [S_MSG_INSERT] = "INSERT INTO messages (id, conversation_id, seq, sender, recipient, content,"
                     " type, file_id, client_msg_id, created_at, updated_at)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
    /* The same, but a repeated (sender, clientMsgId) inserts nothing instead of failing. */
    [S_MSG_INSERT_ONCE] = "INSERT INTO messages (id, conversation_id, seq, sender, recipient,"
                          " content, type, file_id, client_msg_id, created_at, updated_at)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)"
                          " ON CONFLICT (sender, client_msg_id) DO NOTHING",
    [S_MSG_BY_SEQ] = "SELECT " MSG_COLS "WHERE m.conversation_id = ?1 AND m.seq = ?2",
    [S_MSG_BY_CLIENT_ID] = "SELECT " MSG_COLS "WHERE m.sender = ?1 AND m.client_msg_id = ?2",
    [S_MSG_BY_ID] = "SELECT " MSG_COLS "WHERE m.id = ?1",
    [S_MSG_UPD_CTX] = "SELECT m.conversation_id, m.sender, m.type, m.created_at, m.deleted,"
                      " m.file_id, EXISTS (SELECT 1 FROM conversation_members cm WHERE"
                      " cm.conversation_id = m.conversation_id AND cm.user_id = ?2)"
                      " FROM messages m WHERE m.id = ?1",
    /* A new pos, taken as an insert's (the rowid SQLite would pick): commit order. */
    [S_MSG_EDIT] = "UPDATE messages SET content = ?2, edited_at = ?3, updated_at = ?3,"
                   " pos = (SELECT max(pos) + 1 FROM messages) WHERE id = ?1",
    [S_MSG_TOMBSTONE] = "UPDATE messages SET content = '', file_id = NULL, deleted = 1,"
                        " updated_at = ?2, pos = (SELECT max(pos) + 1 FROM messages) WHERE id = ?1",
    [S_FILE_ORPHAN] = "DELETE FROM files WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM messages"
                      " WHERE file_id = ?1) RETURNING path",
    [S_MSG_LOCATE] = "SELECT conversation_id, seq FROM messages WHERE id = ?1",
    [S_MSG_PAGE] = "SELECT " MSG_COLS "WHERE m.conversation_id = ?1 AND m.seq < ?2"
                   " ORDER BY m.seq DESC LIMIT ?3",
    [S_MSG_AFTER] = "SELECT " MSG_COLS "WHERE m.conversation_id = ?1 AND m.seq > ?2"
                    " ORDER BY m.seq LIMIT ?3",
    /* Walks the commit log from after_pos (the unary + keeps SQLite from scanning each of
     * the user's conversations from its start instead): cheap for the recent offsets that
     * reconnect recovery asks about. */
    [S_MSG_SINCE] = "SELECT " MSG_COLS "WHERE m.pos > ?1 AND +m.conversation_id IN"
                    " (SELECT conversation_id FROM conversation_members WHERE user_id = ?2)"
                    " ORDER BY m.pos LIMIT ?3",
    [S_MSG_MARK_READ] = "UPDATE messages SET read_at = ?5 WHERE conversation_id = ?1"
                        " AND seq > ?2 AND seq <= ?3 AND sender <> ?4 AND read_at IS NULL",
    [S_FILE_INSERT] = "INSERT INTO files (" FILE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_FILE_GET] = "SELECT " FILE_COLS " FROM files WHERE id = ?1",
    [S_FILE_SHARED] = "SELECT 1 FROM messages m JOIN conversation_members cm"
                      " ON cm.conversation_id = m.conversation_id AND cm.user_id = ?2"
                      " WHERE m.file_id = ?1 LIMIT 1",
    [S_CONTACTS] = "SELECT DISTINCT o.user_id FROM conversation_members m"
                   " JOIN conversation_members o ON o.conversation_id = m.conversation_id"
                   " WHERE m.user_id = ?1 AND o.user_id <> ?1 ORDER BY o.user_id LIMIT ?2",
    /* Who may see the user's presence: the members of the conversations it has written in. */
    [S_CONTACTS_AUDIENCE] =
        "SELECT DISTINCT o.user_id FROM conversation_members m"
        " JOIN conversation_members o ON o.conversation_id = m.conversation_id"
        " WHERE m.user_id = ?1 AND m.sent = 1 AND o.user_id <> ?1"
        " AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker = ?1 AND b.blocked = o.user_id)"
        " OR (b.blocker = o.user_id AND b.blocked = ?1))"
        " ORDER BY o.user_id LIMIT ?2",
    /* Whose presence the user may see: those who have written in a conversation of the user. */
    [S_CONTACTS_VISIBLE] =
        "SELECT DISTINCT o.user_id FROM conversation_members m"
        " JOIN conversation_members o ON o.conversation_id = m.conversation_id"
        " WHERE m.user_id = ?1 AND o.sent = 1 AND o.user_id <> ?1"
        " AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker = ?1 AND b.blocked = o.user_id)"
        " OR (b.blocker = o.user_id AND b.blocked = ?1))"
        " ORDER BY o.user_id LIMIT ?2",
    /* Blocks (migration 5): blocker -> blocked, the primary key serves both directions. */
    [S_BLOCK_INSERT] = "INSERT INTO blocks (blocker, blocked, created_at) VALUES (?1, ?2, ?3)"
                       " ON CONFLICT DO NOTHING",
    [S_BLOCK_DELETE] = "DELETE FROM blocks WHERE blocker = ?1 AND blocked = ?2",
    [S_BLOCK_GET] = "SELECT created_at FROM blocks WHERE blocker = ?1 AND blocked = ?2",
    [S_BLOCK_COUNT] = "SELECT count(*) FROM blocks WHERE blocker = ?1",
    [S_BLOCK_LIST] = "SELECT blocked, created_at FROM blocks WHERE blocker = ?1 AND blocked > ?2"
                     " ORDER BY blocked LIMIT ?3",
    /* Each membership's unread count from the (conversation_id, seq) index: the cost is the
     * user's unread messages, not the conversation's history. */
    [S_UNREAD_TOTAL] = "SELECT coalesce(sum(n), 0), count(*), (SELECT coalesce(max(pos), 0) FROM"
                       " messages), coalesce(sum(CASE WHEN cid = ?2 THEN n END), 0) FROM (SELECT"
                       " m.conversation_id AS cid, (SELECT count(*)"
                       " FROM messages x WHERE x.conversation_id = m.conversation_id"
                       " AND x.seq > m.read_seq AND x.sender <> ?1 AND x.deleted = 0) AS n"
                       " FROM conversation_members m WHERE m.user_id = ?1) WHERE n > 0",
    /* Search candidates, newest first, in the user's conversations (store_sqlite_search.c). */
    [S_SEARCH] = "SELECT " MSG_COLS "JOIN messages_fts ON messages_fts.rowid = m.pos"
                 " JOIN conversation_members cm ON cm.conversation_id = m.conversation_id"
                 " AND cm.user_id = ?1 WHERE messages_fts MATCH ?2 AND messages_fts.rowid < ?3"
                 " ORDER BY messages_fts.rowid DESC LIMIT ?4",
    [S_SEARCH_CONV] = "SELECT " MSG_COLS "JOIN messages_fts ON messages_fts.rowid = m.pos"
                      " WHERE messages_fts MATCH ?2 AND messages_fts.rowid < ?3"
                      " AND m.conversation_id = ?1 ORDER BY messages_fts.rowid DESC LIMIT ?4",
    /* The rows above the search index's watermark (migration 9), newest first. */
    [S_SEARCH_TAIL] = "SELECT " MSG_COLS "WHERE m.pos > ?2 AND m.pos < ?3 AND +m.conversation_id IN"
                      " (SELECT conversation_id FROM conversation_members WHERE user_id = ?1)"
                      " ORDER BY m.pos DESC LIMIT ?4",
    [S_SEARCH_TAIL_CONV] = "SELECT " MSG_COLS "WHERE m.pos > ?2 AND m.pos < ?3"
                           " AND +m.conversation_id = ?1 ORDER BY m.pos DESC LIMIT ?4",
    [S_FTS_STATE] = "SELECT indexed_pos, (SELECT coalesce(max(pos), 0) FROM messages)"
                    " FROM fts_state",
    [S_FTS_INDEX] = "INSERT INTO messages_fts(rowid, content) SELECT pos, content FROM messages"
                    " WHERE pos > ?1 AND pos <= ?2",
    [S_FTS_MARK] = "UPDATE fts_state SET indexed_pos = ?1",
    [S_FTS_SP_BEGIN] = "SAVEPOINT fts",
    [S_FTS_SP_RELEASE] = "RELEASE fts",
    [S_FTS_SP_ROLLBACK] = "ROLLBACK TO fts",
    /* The webhook outbox (store_sqlite_outbox.c). An ordered event waits (due_at NULL) while
     * an earlier one of its conversation is pending. */
    [S_OB_ADD] = "INSERT INTO webhook_outbox (type, conversation_id, message_id, user_id, seq,"
                 " ordered, created_at, due_at) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6,"
                 " CASE WHEN EXISTS (SELECT 1 FROM webhook_outbox e WHERE e.conversation_id = ?2"
                 " AND e.state = 0 AND e.ordered = 1) THEN NULL ELSE ?6 END)",
    [S_OB_ADD_UNREAD] = "INSERT INTO webhook_outbox (type, conversation_id, message_id, seq,"
                        " ordered, created_at, due_at) VALUES (3, ?1, ?2, ?3, 0, ?4, ?5)",
    /* Due message.unread rows become one row per member still behind the message. */
    [S_OB_EXPAND] = "INSERT INTO webhook_outbox (type, conversation_id, message_id, user_id, seq,"
                    " ordered, created_at, due_at) SELECT 3, p.conversation_id, p.message_id,"
                    " cm.user_id, p.seq, 0, ?1, ?1 FROM webhook_outbox p"
                    " JOIN messages m ON m.id = p.message_id AND m.deleted = 0"
                    " JOIN conversation_members cm ON cm.conversation_id = p.conversation_id"
                    " AND cm.user_id <> m.sender AND cm.read_seq < p.seq"
                    " WHERE p.id IN (SELECT id FROM webhook_outbox WHERE state = 0 AND type = 3"
                    " AND user_id IS NULL AND due_at <= ?1 ORDER BY due_at, id LIMIT 256)"
                    " ORDER BY p.id, cm.user_id",
    [S_OB_EXPAND_DROP] = "DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM webhook_outbox"
                         " WHERE state = 0 AND type = 3 AND user_id IS NULL AND due_at <= ?1"
                         " ORDER BY due_at, id LIMIT 256)",
    [S_OB_DUE] =
        "SELECT id, type, conversation_id, message_id, user_id, seq, created_at,"
        " attempts, done_mask, ordered FROM webhook_outbox WHERE state = 0 AND due_at <= ?1"
        " AND lease_until <= ?1 AND NOT (type = 3 AND user_id IS NULL)"
        " ORDER BY due_at, id LIMIT ?2",
    [S_OB_LEASE] = "UPDATE webhook_outbox SET lease_until = ?2, attempts = attempts + 1"
                   " WHERE id = ?1",
    [S_OB_GET] = "SELECT conversation_id, ordered FROM webhook_outbox WHERE id = ?1 AND state = 0",
    [S_OB_DELETE] = "DELETE FROM webhook_outbox WHERE id = ?1",
    [S_OB_FAIL] = "UPDATE webhook_outbox SET state = 2, due_at = ?2, lease_until = 0"
                  " WHERE id = ?1",
    [S_OB_RETRY] = "UPDATE webhook_outbox SET due_at = ?2, done_mask = ?3, lease_until = 0"
                   " WHERE id = ?1",
    [S_OB_REQUEUE] = "UPDATE webhook_outbox SET due_at = NULL, lease_until = 0 WHERE id = ?1",
    [S_OB_RUN] = "SELECT id, type, conversation_id, message_id, user_id, seq, created_at, attempts,"
                 " done_mask, ordered FROM webhook_outbox WHERE conversation_id = ?1 AND state = 0"
                 " AND ordered = 1 AND id > ?2 ORDER BY id LIMIT ?3",
    [S_OB_PROMOTE] = "UPDATE webhook_outbox SET due_at = ?2 WHERE id = (SELECT min(id)"
                     " FROM webhook_outbox WHERE conversation_id = ?1 AND state = 0"
                     " AND ordered = 1)",
    [S_OB_COUNTS] = "SELECT coalesce(sum(state = 0), 0), coalesce(sum(state = 2), 0)"
                    " FROM webhook_outbox",
    [S_BLOCK_EITHER] = "SELECT EXISTS (SELECT 1 FROM blocks WHERE blocker = ?1 AND blocked = ?2),"
                       " EXISTS (SELECT 1 FROM blocks WHERE blocker = ?2 AND blocked = ?1)",
    [S_BLOCK_ALL] = "SELECT blocker, blocked FROM blocks",
    [S_DATA_VERSION] = "PRAGMA data_version",
};

int sq_map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return STORE_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_E_BUSY;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return STORE_E_CONFLICT;
        return STORE_E_INVALID;
    default:
        return STORE_E_IO;
    }
}

sqlite3_stmt *sq_stmt_get(store_sqlite_t *db, int id)
{
    if (!db->stmt[id]) {
        if (sqlite3_prepare_v3(db->db, store_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &db->stmt[id],
                               NULL) != SQLITE_OK) {
            db->stmt[id] = NULL;
            return NULL;
        }
    }
    return db->stmt[id];
}

int sq_run_simple(store_sqlite_t *db, int id)
{
    sqlite3_stmt *st = sq_stmt_get(db, id);
    return st ? sq_stmt_run(st) : STORE_E_IO;
}

int sq_col_str(sqlite3_stmt *st, int i, store_arena_t *a, str_t *out)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        *out = STR_NULL;
        return STORE_OK;
    }
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (!t) return STORE_E_IO; /* out of memory converting the value */
    return store_arena_str(a, t, (size_t)n, out);
}

/* Every operation is one savepoint: on its own it is a transaction of its own; inside the
 * writer's BEGIN IMMEDIATE it can fail and be undone without failing the rest of the batch.
 * It first brings the conversation rows up to date with the cached sends before it. */
int sq_op_begin(store_sqlite_t *db)
{
    int rc = sq_send_cache_flush(db);
    return rc != STORE_OK ? rc : sq_run_simple(db, S_SP_BEGIN);
}

int sq_op_end(store_sqlite_t *db, int rc)
{
    if (rc == STORE_OK) {
        rc = sq_run_simple(db, S_SP_RELEASE);
        if (rc == STORE_OK) return STORE_OK;
    }
    /* After an I/O error SQLite may already have rolled the transaction back, and with it the
     * savepoint; then these fail harmlessly. */
    if (!sqlite3_get_autocommit(db->db)) {
        sq_run_simple(db, S_SP_ROLLBACK);
        sq_run_simple(db, S_SP_RELEASE);
    }
    return rc;
}

static int engine_open(const char *path, bool readonly, void **conn, char *err, size_t errcap)
{
    store_sqlite_t *db;
    int rc = store_sqlite_open(path, readonly ? STORE_SQLITE_READONLY : 0, &db, err, errcap);
    *conn = db;
    return rc;
}

static void engine_close(void *c)
{
    store_sqlite_close(c);
}

static int engine_begin(void *c)
{
    return store_sqlite_begin(c);
}

static int engine_commit(void *c)
{
    return store_sqlite_commit(c);
}

static void engine_rollback(void *c)
{
    store_sqlite_rollback(c);
}

static bool engine_in_transaction(void *c)
{
    return store_sqlite_in_transaction(c);
}

static int engine_exec(void *c, store_req_t *req)
{
    return store_sqlite_exec(c, req);
}

/* A run of reads on a reader connection in one transaction (store_engine.h): deferred, so
 * the WAL read lock is taken by the first read and released once by read_end. */
static int engine_read_begin(void *c)
{
    store_sqlite_t *db = c;
    return sq_run_simple(db, S_READ_BEGIN);
}

static void engine_read_end(void *c)
{
    store_sqlite_t *db = c;
    if (sqlite3_get_autocommit(db->db)) return; /* an error already ended it */
    if (sq_run_simple(db, S_COMMIT) == STORE_OK && sqlite3_get_autocommit(db->db)) return;
    /* Never keep the snapshot: later reads would not see later writes. A statement left
     * running is what could keep a read transaction open. */
    for (sqlite3_stmt *st = NULL; (st = sqlite3_next_stmt(db->db, st));) sqlite3_reset(st);
    sq_run_simple(db, S_ROLLBACK);
    if (!sqlite3_get_autocommit(db->db))
        log_error("store: a reader could not end its read transaction: %s", sqlite3_errmsg(db->db));
}

static const char *engine_errmsg(void *c)
{
    return store_sqlite_errmsg(c);
}

/* The writer went idle: free the page cache's unused pages (all of them, outside a
 * transaction). A fresh server that recorded 10,000 new users held ~870 KB of their rows and
 * index entries here (87 bytes per idle socket); the next batch reads the few pages it needs
 * again from the OS's file cache. */
static void engine_idle(void *c)
{
    store_sqlite_t *db = c;
    sqlite3_db_release_memory(db->db);
}

/* One file, one writer connection (WAL allows one writer at a time; Parlor keeps the file to
 * one process), readers on WAL snapshots. */
const store_engine_t store_engine_sqlite = {
    .name = "sqlite",
    .caps = STORE_ENGINE_SINGLE_WRITER | STORE_ENGINE_READERS,
    .open = engine_open,
    .close = engine_close,
    .begin = engine_begin,
    .commit = engine_commit,
    .rollback = engine_rollback,
    .in_transaction = engine_in_transaction,
    .exec = engine_exec,
    .read_begin = engine_read_begin,
    .read_end = engine_read_end,
    .errmsg = engine_errmsg,
    .idle = engine_idle,
};

int store_sqlite_exec(store_sqlite_t *db, store_req_t *req)
{
    int64_t now = req->now_ms ? req->now_ms : store_clock_ms();
    store_arena_t *a = &req->arena;
    int rc;
    switch (req->op) {
    case STORE_OP_USER_UPSERT:
        rc = store_sqlite_user_upsert(db, &req->u.user_upsert, now);
        break;
    case STORE_OP_USER_SEEN:
        rc = store_sqlite_user_seen(db, &req->u.user_seen);
        break;
    case STORE_OP_ACCOUNT_CREATE:
        rc = store_sqlite_account_create(db, &req->u.account_create, now);
        break;
    case STORE_OP_DIRECT_OPEN:
        rc = store_sqlite_direct_open(db, &req->u.direct_open, a, now);
        break;
    case STORE_OP_GROUP_CREATE:
        rc = store_sqlite_group_create(db, &req->u.group_create, a, now);
        break;
    case STORE_OP_MESSAGE_INSERT:
        rc = store_sqlite_message_insert(db, &req->u.message_insert, a, now);
        break;
    case STORE_OP_MARK_READ:
        rc = store_sqlite_mark_read(db, &req->u.mark_read, now);
        break;
    case STORE_OP_FILE_INSERT:
        rc = store_sqlite_file_insert(db, &req->u.file_insert, now);
        break;
    case STORE_OP_MESSAGE_UPDATE:
        rc = store_sqlite_message_update(db, &req->u.message_update, a, now);
        break;
    case STORE_OP_OUTBOX_CLAIM:
        rc = store_sqlite_outbox_claim(db, &req->u.outbox_claim, a, now);
        break;
    case STORE_OP_OUTBOX_ACK:
        rc = store_sqlite_outbox_ack(db, &req->u.outbox_ack, now);
        break;
    case STORE_OP_SYSTEM_INSERT:
        rc = store_sqlite_system_insert(db, &req->u.system_insert, a, now);
        break;
    case STORE_OP_MEMBERS_CHANGE:
        rc = store_sqlite_members_change(db, &req->u.members_change, a, now);
        break;
    case STORE_OP_USER_ERASE:
        rc = store_sqlite_user_erase(db, &req->u.user_erase, a, now);
        break;
    case STORE_OP_USER_EXPORT:
        rc = store_sqlite_user_export(db, &req->u.user_export, a);
        break;
    case STORE_OP_ACCOUNT_GET:
        rc = store_sqlite_account_get(db, &req->u.account_get, a);
        break;
    case STORE_OP_USERS_GET:
        rc = store_sqlite_users_get(db, &req->u.users_get, a);
        break;
    case STORE_OP_USERS_SEARCH:
        rc = store_sqlite_users_search(db, &req->u.users_search, a);
        break;
    case STORE_OP_CONVERSATION_GET:
        rc = store_sqlite_conversation_get(db, &req->u.conversation_get, a);
        break;
    case STORE_OP_CONVERSATIONS_LIST:
        rc = store_sqlite_conversations_list(db, &req->u.conversations_list, a);
        break;
    case STORE_OP_MESSAGES_PAGE:
        rc = store_sqlite_messages_page(db, &req->u.messages_page, a);
        break;
    case STORE_OP_MESSAGES_AFTER:
        rc = store_sqlite_messages_after(db, &req->u.messages_after, a);
        break;
    case STORE_OP_MESSAGES_SINCE:
        rc = store_sqlite_messages_since(db, &req->u.messages_since, a);
        break;
    case STORE_OP_FILE_GET:
        rc = store_sqlite_file_get(db, &req->u.file_get, a);
        break;
    case STORE_OP_CONTACTS:
        rc = store_sqlite_contacts(db, &req->u.contacts, a);
        break;
    case STORE_OP_BLOCK_SET:
        rc = store_sqlite_block_set(db, &req->u.block_set, now);
        break;
    case STORE_OP_BLOCKS_LIST:
        rc = store_sqlite_blocks_list(db, &req->u.blocks_list, a);
        break;
    case STORE_OP_BLOCK_CHECK:
        rc = store_sqlite_block_check(db, &req->u.block_check);
        break;
    case STORE_OP_UNREAD_TOTAL:
        rc = store_sqlite_unread_total(db, &req->u.unread_total);
        break;
    case STORE_OP_SEARCH:
        rc = store_sqlite_search(db, &req->u.search, a);
        break;
    case STORE_OP_PING:
        rc = store_sqlite_ping(db);
        break;
    default:
        rc = STORE_E_INVALID;
        break;
    }
    /* Outside the writer's batches (no COMMIT to index at): the search index catches up here. */
    if (db->fts_pending && sqlite3_get_autocommit(db->db) && sq_fts_due(db, now))
        sq_fts_catch_up_now(db);
    req->status = rc;
    return rc;
}
