/* The SQLite engine: schema and migrations, cached statements, one function per operation. */
#include "store/store_sqlite.h"
#include "store/store_common.h"
#include "core/log.h"
#include "core/strmap.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sqlite3.h>

/* ---- Schema ---------------------------------------------------------------------------- */

/* Version 1: the tables. messages.pos is the rowid alias: with one writer it is the global
 * commit order that reconnect recovery pages by (version 3 drops its AUTOINCREMENT).
 * CHECKs spell out OR chains: SQLite builds an ephemeral table for every row checked against
 * an IN list of three constants, which cost a fifth of an insert. */
static const char store_migration_1[] =
    "CREATE TABLE users ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " name TEXT,"
    " role TEXT,"
    " username TEXT UNIQUE COLLATE NOCASE,"
    " password_hash TEXT,"
    " last_seen INTEGER,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE files ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " owner TEXT NOT NULL REFERENCES users(id),"
    " name TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " mime TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE conversations ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " type TEXT NOT NULL CHECK (type = 'direct' OR type = 'group'),"
    " title TEXT,"
    " direct_key TEXT UNIQUE,"
    " last_seq INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " CHECK ((type = 'direct') = (direct_key IS NOT NULL)));"
    "CREATE TABLE conversation_members ("
    " conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " user_id TEXT NOT NULL REFERENCES users(id),"
    " read_seq INTEGER NOT NULL DEFAULT 0,"
    " read_at INTEGER,"
    " joined_at INTEGER NOT NULL,"
    " PRIMARY KEY (conversation_id, user_id)) WITHOUT ROWID;"
    "CREATE INDEX conversation_members_by_user ON conversation_members(user_id, conversation_id);"
    "CREATE TABLE messages ("
    " pos INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL CHECK (seq > 0),"
    " sender TEXT NOT NULL REFERENCES users(id),"
    " recipient TEXT,"
    " content TEXT NOT NULL,"
    " type TEXT NOT NULL CHECK (type = 'text' OR type = 'image' OR type = 'file'),"
    " file_id TEXT REFERENCES files(id),"
    " client_msg_id TEXT,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " UNIQUE (conversation_id, seq),"
    " UNIQUE (sender, client_msg_id));";

/* Version 2: a message remembers when it was first read, so readAt is exact rather than the
 * time of the reader's latest mark. Existing rows get the best the watermarks can tell. */
static const char store_migration_2[] =
    "ALTER TABLE messages ADD COLUMN read_at INTEGER;"
    "UPDATE messages SET read_at = (SELECT min(coalesce(cm.read_at, messages.created_at))"
    " FROM conversation_members cm WHERE cm.conversation_id = messages.conversation_id"
    " AND cm.user_id <> messages.sender AND cm.read_seq >= messages.seq);"
    "CREATE INDEX messages_by_file ON messages(file_id) WHERE file_id IS NOT NULL;";

/* Version 3: the messages table without AUTOINCREMENT and without REFERENCES, rebuilt (one
 * copy of every row, once). Both cost a fifth of an insert each and bought nothing:
 * - pos is still the rowid alias; messages are never deleted, so max(pos) + 1, which SQLite
 *   picks without AUTOINCREMENT, keeps pos growing in commit order, with no sqlite_sequence
 *   row to read and write per insert;
 * - every insert is preceded by a check of what the foreign keys checked again: the
 *   conversation exists and the sender is a member (conversation_members keeps its own
 *   foreign keys to users), and a file is the sender's (S_FILE_GET); nothing deletes
 *   conversations, so the ON DELETE CASCADE never ran. */
static const char store_migration_3[] =
    "CREATE TABLE messages_v3 ("
    " pos INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " conversation_id TEXT NOT NULL,"
    " seq INTEGER NOT NULL CHECK (seq > 0),"
    " sender TEXT NOT NULL,"
    " recipient TEXT,"
    " content TEXT NOT NULL,"
    " type TEXT NOT NULL CHECK (type = 'text' OR type = 'image' OR type = 'file'),"
    " file_id TEXT,"
    " client_msg_id TEXT,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " read_at INTEGER,"
    " UNIQUE (conversation_id, seq),"
    " UNIQUE (sender, client_msg_id));"
    "INSERT INTO messages_v3 (pos, id, conversation_id, seq, sender, recipient, content, type,"
    " file_id, client_msg_id, created_at, updated_at, read_at)"
    " SELECT pos, id, conversation_id, seq, sender, recipient, content, type, file_id,"
    " client_msg_id, created_at, updated_at, read_at FROM messages ORDER BY pos;"
    "DROP TABLE messages;"
    "ALTER TABLE messages_v3 RENAME TO messages;"
    "CREATE INDEX messages_by_file ON messages(file_id) WHERE file_id IS NOT NULL;";

/* Version 4: a member remembers having sent a message in the conversation. Presence is shown
 * only to those a user has written to (issue 11, finding 9), and this flag answers "who has
 * written to whom" from the members' index instead of a scan of the messages. */
static const char store_migration_4[] =
    "ALTER TABLE conversation_members ADD COLUMN sent INTEGER NOT NULL DEFAULT 0;"
    "UPDATE conversation_members SET sent = 1 WHERE EXISTS (SELECT 1 FROM messages x"
    " WHERE x.conversation_id = conversation_members.conversation_id"
    " AND x.sender = conversation_members.user_id);";

static const char *const store_migrations[STORE_SCHEMA_VERSION + 1] = {
    NULL, store_migration_1, store_migration_2, store_migration_3, store_migration_4,
};

/* ---- Statements ------------------------------------------------------------------------ */

#define MSG_COLS                                                                                   \
    "m.id, m.conversation_id, m.seq, m.pos, m.sender, m.recipient, m.content, m.type,"             \
    " m.client_msg_id, m.read_at, m.created_at, m.updated_at, f.id, f.owner, f.name, f.size,"      \
    " f.mime, f.path, f.sha256, f.created_at"                                                      \
    " FROM messages m LEFT JOIN files f ON f.id = m.file_id "
#define USER_COLS "id, name, role, username, last_seen, created_at"
#define FILE_COLS "id, owner, name, size, mime, path, sha256, created_at"

enum {
    S_SP_BEGIN,
    S_SP_RELEASE,
    S_SP_ROLLBACK,
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_USER_UPSERT,
    S_USER_STUB,
    S_USER_SEEN,
    S_USER_GET,
    S_ACCOUNT_CREATE,
    S_ACCOUNT_GET,
    S_USERS_SEARCH,
    S_CONV_BY_KEY,
    S_CONV_INSERT,
    S_CONV_GET,
    S_CONV_EXISTS,
    S_CONV_BUMP,
    S_CONV_LIST,
    S_MEMBER_INSERT,
    S_MEMBER_COUNT,
    S_MEMBERS,
    S_MEMBER_GET,
    S_MEMBER_READ,
    S_MEMBER_SENT,
    S_UNREAD,
    S_SEND_CTX,
    S_MSG_INSERT,
    S_MSG_INSERT_ONCE,
    S_MSG_BY_SEQ,
    S_MSG_BY_CLIENT_ID,
    S_MSG_LOCATE,
    S_MSG_PAGE,
    S_MSG_AFTER,
    S_MSG_SINCE,
    S_MSG_MARK_READ,
    S_FILE_INSERT,
    S_FILE_GET,
    S_FILE_SHARED,
    S_CONTACTS,
    S_CONTACTS_AUDIENCE,
    S_CONTACTS_VISIBLE,
    S_COUNT_
};

static const char *const store_sql[S_COUNT_] = {
    [S_SP_BEGIN] = "SAVEPOINT op",
    [S_SP_RELEASE] = "RELEASE op",
    [S_SP_ROLLBACK] = "ROLLBACK TO op",
    [S_BEGIN] = "BEGIN IMMEDIATE",
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
                      " (id, type, title, direct_key, last_seq, created_at, updated_at)"
                      " VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
    [S_CONV_GET] = "SELECT id, type, title, last_seq, created_at, updated_at"
                   " FROM conversations WHERE id = ?1",
    [S_CONV_EXISTS] = "SELECT 1 FROM conversations WHERE id = ?1",
    [S_CONV_BUMP] = "UPDATE conversations SET last_seq = ?2, updated_at = max(updated_at, ?3)"
                    " WHERE id = ?1",
    /* Members first, then a sort of that user's conversations: an index on
     * conversations(updated_at) would make SQLite walk everyone's conversations instead. */
    [S_CONV_LIST] = "SELECT c.id, c.updated_at FROM conversation_members m"
                    " JOIN conversations c ON c.id = m.conversation_id"
                    " WHERE m.user_id = ?1 AND (c.updated_at, c.id) < (?2, ?3)"
                    " ORDER BY c.updated_at DESC, c.id DESC LIMIT ?4",
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
                 " WHERE conversation_id = ?1 AND seq > ?2 AND sender <> ?3",
    /* Everything a send needs in one lookup: the conversation, that the sender is in it, and
     * for a direct conversation the other member (the recipient). */
    [S_SEND_CTX] = "SELECT c.type, c.last_seq, (SELECT o.user_id FROM conversation_members o"
                   " WHERE o.conversation_id = c.id AND o.user_id <> ?2 LIMIT 1)"
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
    [S_CONTACTS_AUDIENCE] = "SELECT DISTINCT o.user_id FROM conversation_members m"
                            " JOIN conversation_members o ON o.conversation_id = m.conversation_id"
                            " WHERE m.user_id = ?1 AND m.sent = 1 AND o.user_id <> ?1"
                            " ORDER BY o.user_id LIMIT ?2",
    /* Whose presence the user may see: those who have written in a conversation of the user. */
    [S_CONTACTS_VISIBLE] = "SELECT DISTINCT o.user_id FROM conversation_members m"
                           " JOIN conversation_members o ON o.conversation_id = m.conversation_id"
                           " WHERE m.user_id = ?1 AND o.sent = 1 AND o.user_id <> ?1"
                           " ORDER BY o.user_id LIMIT ?2",
};

/* The writer's conversation cache. Inside the writer's batch transaction a send to a
 * conversation seen before is one INSERT: the conversation's type, last seq and (direct) two
 * members are kept here, and the row's last_seq/updated_at are written once per batch (before
 * the next operation of another kind, or the COMMIT) instead of once per message. A ROLLBACK
 * forgets everything, since the kept seqs may be ahead of what the database then holds. */
typedef struct send_conv {
    struct send_conv *next_dirty;
    int64_t last_seq;
    int64_t bump_at; /* updated_at still to be written; 0: the row is up to date */
    bool direct;
    char id[ID_SIZE];
    char a[STORE_USER_ID_MAX + 1], b[STORE_USER_ID_MAX + 1]; /* direct: its two members */
    bool a_sent, b_sent; /* direct: their members rows say sent = 1 (this transaction) */
} send_conv_t;

/* Past this many conversations the cache is emptied at the next COMMIT (and refilled by use). */
#define SEND_CACHE_MAX 16384

struct store_sqlite {
    sqlite3 *db;
    unsigned flags;
    sqlite3_stmt *stmt[S_COUNT_]; /* prepared on first use, kept until close */
    strmap_t convs;               /* conversation id -> send_conv_t (owned) */
    strmap_t directs;             /* "a|b" direct key -> send_conv_t (in convs) */
    send_conv_t *dirty;           /* conversations whose row is behind */
};

/* ---- Statement helpers ----------------------------------------------------------------- */

static int map_rc(int rc)
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

static sqlite3_stmt *stmt_get(store_sqlite_t *db, int id)
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

static void bind_str(sqlite3_stmt *st, int i, str_t s)
{
    if (s.ptr)
        sqlite3_bind_text(st, i, s.ptr, (int)s.len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Empty optional text is stored as NULL. */
static void bind_opt(sqlite3_stmt *st, int i, str_t s)
{
    bind_str(st, i, store_present(s) ? s : STR_NULL);
}

static void bind_cstr(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Steps a statement that returns no rows, then resets it. */
static int stmt_run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : map_rc(rc);
}

/* Steps once: STORE_OK with a row, STORE_E_NOT_FOUND without; the caller resets. */
static int stmt_row(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) return STORE_OK;
    if (rc == SQLITE_DONE) return STORE_E_NOT_FOUND;
    return map_rc(rc);
}

static int run_simple(store_sqlite_t *db, int id)
{
    sqlite3_stmt *st = stmt_get(db, id);
    return st ? stmt_run(st) : STORE_E_IO;
}

static int col_str(sqlite3_stmt *st, int i, store_arena_t *a, str_t *out)
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

static void col_id(sqlite3_stmt *st, int i, char out[ID_SIZE])
{
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (!t || n != ID_LEN) n = 0;
    if (n) memcpy(out, t, ID_LEN);
    out[n] = '\0';
}

static bool col_eq(sqlite3_stmt *st, int i, str_t s)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t && (size_t)sqlite3_column_bytes(st, i) == s.len && memcmp(t, s.ptr, s.len) == 0;
}

static int64_t col_i64(sqlite3_stmt *st, int i)
{
    return sqlite3_column_int64(st, i); /* NULL reads as 0: "absent" */
}

/* ---- Per-operation savepoints ---------------------------------------------------------- */

/* ---- The writer's conversation cache --------------------------------------------------- */

static void send_cache_clear(store_sqlite_t *db)
{
    strmap_free(&db->directs, NULL);
    strmap_free(&db->convs, free);
    db->dirty = NULL;
}

/* Writes the conversation rows that the cached sends of this transaction are ahead of. */
static int send_cache_flush(store_sqlite_t *db)
{
    while (db->dirty) {
        send_conv_t *c = db->dirty;
        sqlite3_stmt *st = stmt_get(db, S_CONV_BUMP);
        if (!st) return STORE_E_IO;
        bind_cstr(st, 1, c->id);
        sqlite3_bind_int64(st, 2, c->last_seq);
        sqlite3_bind_int64(st, 3, c->bump_at);
        int rc = stmt_run(st);
        if (rc != STORE_OK) return rc;
        db->dirty = c->next_dirty;
        c->next_dirty = NULL;
        c->bump_at = 0;
    }
    return STORE_OK;
}

/* Remembers a conversation's state after a send that went the long way (or forgets it when
 * memory runs out: the cache is only a shortcut). */
static void send_cache_put(store_sqlite_t *db, const char *conv, int64_t seq, str_t sender,
                           str_t recipient)
{
    if (!db->convs.buckets && strmap_init(&db->convs) != 0) return;
    if (!db->directs.buckets && strmap_init(&db->directs) != 0) return;
    send_conv_t *c = strmap_get(&db->convs, conv);
    if (!c) {
        if (!(c = calloc(1, sizeof *c))) return;
        memcpy(c->id, conv, ID_SIZE);
        c->direct = store_present(recipient);
        if (c->direct) {
            char key[STORE_DIRECT_KEY_SIZE];
            memcpy(c->a, sender.ptr, sender.len);
            memcpy(c->b, recipient.ptr, recipient.len);
            store_direct_key(sender, recipient, key);
            if (strmap_set(&db->directs, key, c) != 0) {
                free(c);
                return;
            }
        }
        if (strmap_set(&db->convs, conv, c) != 0) {
            if (c->direct) {
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

/* Every operation is one savepoint: on its own it is a transaction of its own; inside the
 * writer's BEGIN IMMEDIATE it can fail and be undone without failing the rest of the batch.
 * It first brings the conversation rows up to date with the cached sends before it. */
static int op_begin(store_sqlite_t *db)
{
    int rc = send_cache_flush(db);
    return rc != STORE_OK ? rc : run_simple(db, S_SP_BEGIN);
}

static int op_end(store_sqlite_t *db, int rc)
{
    if (rc == STORE_OK) {
        rc = run_simple(db, S_SP_RELEASE);
        if (rc == STORE_OK) return STORE_OK;
    }
    /* After an I/O error SQLite may already have rolled the transaction back, and with it the
     * savepoint; then these fail harmlessly. */
    if (!sqlite3_get_autocommit(db->db)) {
        run_simple(db, S_SP_ROLLBACK);
        run_simple(db, S_SP_RELEASE);
    }
    return rc;
}

/* ---- Opening and migrations ------------------------------------------------------------ */

static void set_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || !cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static int pragma_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return STORE_E_IO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? STORE_OK : map_rc(rc);
}

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t cap)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        set_err(err, cap, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return map_rc(rc);
    }
    return STORE_OK;
}

/* Each migration runs in its own transaction together with its user_version bump, so a
 * database is always exactly at some version. The version is read again inside the
 * transaction in case another process migrated meanwhile. */
static int store_migrate(sqlite3 *db, char *err, size_t cap)
{
    int version, rc;
    if ((rc = pragma_int(db, "PRAGMA user_version", &version)) != STORE_OK) {
        set_err(err, cap, "reading user_version: %s", sqlite3_errmsg(db));
        return rc;
    }
    if (version > STORE_SCHEMA_VERSION) {
        set_err(err, cap, "database schema version %d is newer than this build's %d", version,
                STORE_SCHEMA_VERSION);
        return STORE_E_INVALID;
    }
    for (int to = version + 1; to <= STORE_SCHEMA_VERSION; to++) {
        char bump[64];
        if ((rc = exec_sql(db, "BEGIN IMMEDIATE", err, cap)) != STORE_OK) return rc;
        if ((rc = pragma_int(db, "PRAGMA user_version", &version)) != STORE_OK) goto fail;
        if (version >= to) {
            exec_sql(db, "COMMIT", NULL, 0);
            continue;
        }
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", to);
        char msg[256] = "";
        if ((rc = exec_sql(db, store_migrations[to], msg, sizeof msg)) != STORE_OK ||
            (rc = exec_sql(db, bump, msg, sizeof msg)) != STORE_OK ||
            (rc = exec_sql(db, "COMMIT", msg, sizeof msg)) != STORE_OK) {
            set_err(err, cap, "migration to schema version %d failed: %s", to, msg);
            goto fail;
        }
        log_info("store: migrated the schema to version %d", to);
        continue;
    fail:
        if (!sqlite3_get_autocommit(db)) exec_sql(db, "ROLLBACK", NULL, 0);
        return rc;
    }
    return STORE_OK;
}

/* SQLite's memory statistics take a global mutex on every malloc, which every connection of
 * the process then contends on; nothing here reads them. Has to precede sqlite3_initialize,
 * so it is a no-op if something else in the process initialized SQLite first. */
static pthread_once_t store_sqlite_once = PTHREAD_ONCE_INIT;
static void store_sqlite_configure(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store_sqlite_open(const char *path, unsigned flags, store_sqlite_t **out, char *err,
                      size_t errcap)
{
    bool ro = flags & STORE_SQLITE_READONLY;
    int rc = STORE_E_IO, version = 0;
    store_sqlite_t *db = calloc(1, sizeof *db);

    *out = NULL;
    if (!db) {
        set_err(err, errcap, "out of memory");
        return STORE_E_IO;
    }
    pthread_once(&store_sqlite_once, store_sqlite_configure);
    db->flags = flags;
    int oflags = (ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                 SQLITE_OPEN_NOMUTEX;
    int src = sqlite3_open_v2(path, &db->db, oflags, NULL);
    if (src != SQLITE_OK) {
        set_err(err, errcap, "%s: %s", path, db->db ? sqlite3_errmsg(db->db) : "out of memory");
        rc = map_rc(src);
        goto fail;
    }
    sqlite3_extended_result_codes(db->db, 1);
    sqlite3_busy_timeout(db->db, 5000);
    if (!ro) {
        sqlite3_stmt *st;
        bool wal = false;
        if (sqlite3_prepare_v2(db->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                wal = sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
            sqlite3_finalize(st);
        }
        if (!wal) {
            set_err(err, errcap, "%s: cannot switch to WAL: %s", path, sqlite3_errmsg(db->db));
            goto fail;
        }
    }
    /* synchronous=FULL: in WAL mode every COMMIT fsyncs the log, so an acknowledged message
     * survives power loss too, not only a crash of the process; group commit pays for it. */
    rc = exec_sql(db->db,
                  ro ? "PRAGMA query_only = ON; PRAGMA foreign_keys = ON;"
                     : "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = "
                       "-65536; PRAGMA wal_autocheckpoint = 16384;"
                       " PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = 67108864;",
                  err, errcap);
    if (rc != STORE_OK) goto fail;
    if (!ro) {
        if ((rc = store_migrate(db->db, err, errcap)) != STORE_OK) goto fail;
    } else {
        if ((rc = pragma_int(db->db, "PRAGMA user_version", &version)) != STORE_OK) {
            set_err(err, errcap, "%s: %s", path, sqlite3_errmsg(db->db));
            goto fail;
        }
        if (version != STORE_SCHEMA_VERSION) {
            set_err(err, errcap, "%s: schema version %d, this build needs %d", path, version,
                    STORE_SCHEMA_VERSION);
            rc = STORE_E_INVALID;
            goto fail;
        }
    }
    *out = db;
    return STORE_OK;
fail:
    store_sqlite_close(db);
    return rc;
}

void store_sqlite_close(store_sqlite_t *db)
{
    if (!db) return;
    send_cache_clear(db);
    for (int i = 0; i < S_COUNT_; i++) sqlite3_finalize(db->stmt[i]);
    sqlite3_close(db->db);
    free(db);
}

int store_sqlite_schema_version(store_sqlite_t *db)
{
    int v;
    int rc = pragma_int(db->db, "PRAGMA user_version", &v);
    return rc == STORE_OK ? v : rc;
}

const char *store_sqlite_errmsg(store_sqlite_t *db)
{
    return sqlite3_errmsg(db->db);
}

int store_sqlite_begin(store_sqlite_t *db)
{
    return run_simple(db, S_BEGIN);
}

int store_sqlite_commit(store_sqlite_t *db)
{
    int rc = send_cache_flush(db);
    if (rc == STORE_OK) rc = run_simple(db, S_COMMIT);
    if (rc != STORE_OK)
        store_sqlite_rollback(db);
    else if (db->convs.count > SEND_CACHE_MAX)
        send_cache_clear(db);
    return rc;
}

void store_sqlite_rollback(store_sqlite_t *db)
{
    send_cache_clear(db);
    if (!sqlite3_get_autocommit(db->db)) run_simple(db, S_ROLLBACK);
}

bool store_sqlite_in_transaction(store_sqlite_t *db)
{
    return !sqlite3_get_autocommit(db->db);
}

/* ---- Row readers ----------------------------------------------------------------------- */

/* Columns: id, name, role, username, last_seen, created_at, password_hash. */
static int user_from_row(sqlite3_stmt *st, store_user_t *u, store_arena_t *a)
{
    int rc;
    memset(u, 0, sizeof *u);
    if ((rc = col_str(st, 0, a, &u->id)) || (rc = col_str(st, 1, a, &u->name)) ||
        (rc = col_str(st, 2, a, &u->role)) || (rc = col_str(st, 3, a, &u->username)) ||
        (rc = col_str(st, 6, a, &u->password_hash)))
        return rc;
    u->last_seen = col_i64(st, 4);
    u->created_at = col_i64(st, 5);
    return STORE_OK;
}

/* Columns from `first`: id, owner, name, size, mime, path, sha256, created_at. */
static int file_from_row(sqlite3_stmt *st, int first, store_file_t *f, store_arena_t *a)
{
    int rc;
    memset(f, 0, sizeof *f);
    col_id(st, first, f->id);
    if ((rc = col_str(st, first + 1, a, &f->owner)) || (rc = col_str(st, first + 2, a, &f->name)) ||
        (rc = col_str(st, first + 4, a, &f->mime)) || (rc = col_str(st, first + 5, a, &f->path)) ||
        (rc = col_str(st, first + 6, a, &f->sha256)))
        return rc;
    f->size = col_i64(st, first + 3);
    f->created_at = col_i64(st, first + 7);
    return STORE_OK;
}

/* Columns: MSG_COLS. */
static int msg_from_row(sqlite3_stmt *st, store_message_t *m, store_arena_t *a)
{
    int rc;
    memset(m, 0, sizeof *m);
    col_id(st, 0, m->id);
    col_id(st, 1, m->conversation_id);
    m->seq = col_i64(st, 2);
    m->pos = col_i64(st, 3);
    if ((rc = col_str(st, 4, a, &m->sender)) || (rc = col_str(st, 5, a, &m->recipient)) ||
        (rc = col_str(st, 6, a, &m->content)) || (rc = col_str(st, 8, a, &m->client_msg_id)))
        return rc;
    if (!m->content.ptr) m->content = STR_LIT("");
    m->type = store_msg_type_parse((const char *)sqlite3_column_text(st, 7));
    m->read_at = col_i64(st, 9);
    m->created_at = col_i64(st, 10);
    m->updated_at = col_i64(st, 11);
    if (sqlite3_column_type(st, 12) != SQLITE_NULL) {
        store_file_t *f = ARENA_BACK(a, store_file_t, 1);
        if (!f) return STORE_E_NOSPACE;
        if ((rc = file_from_row(st, 12, f, a)) != STORE_OK) return rc;
        m->file = f;
    }
    return STORE_OK;
}

/* Reads the single message at (conversation, seq) into a record at the arena's back. */
static int msg_load_seq(store_sqlite_t *db, const char *conv, int64_t seq,
                        const store_message_t **out, store_arena_t *a)
{
    sqlite3_stmt *st = stmt_get(db, S_MSG_BY_SEQ);
    if (!st) return STORE_E_IO;
    bind_cstr(st, 1, conv);
    sqlite3_bind_int64(st, 2, seq);
    int rc = stmt_row(st);
    if (rc == STORE_OK) {
        store_message_t *m = ARENA_BACK(a, store_message_t, 1);
        rc = m ? msg_from_row(st, m, a) : STORE_E_NOSPACE;
        if (rc == STORE_OK) *out = m;
    }
    sqlite3_reset(st);
    return rc;
}

static int count_query(sqlite3_stmt *st, int64_t *out)
{
    int rc = stmt_row(st);
    if (rc == STORE_OK) *out = col_i64(st, 0);
    sqlite3_reset(st);
    return rc;
}

static int unread_count(store_sqlite_t *db, str_t conv, int64_t read_seq, str_t user, int64_t *out)
{
    sqlite3_stmt *st = stmt_get(db, S_UNREAD);
    if (!st) return STORE_E_IO;
    bind_str(st, 1, conv);
    sqlite3_bind_int64(st, 2, read_seq);
    bind_str(st, 3, user);
    return count_query(st, out);
}

/* NOT_FOUND when the conversation does not exist, else FORBIDDEN: why user is not in it. */
static int not_member(store_sqlite_t *db, str_t conv)
{
    sqlite3_stmt *st = stmt_get(db, S_CONV_EXISTS);
    if (!st) return STORE_E_IO;
    bind_str(st, 1, conv);
    int rc = stmt_row(st);
    sqlite3_reset(st);
    return rc == STORE_OK ? STORE_E_FORBIDDEN : rc;
}

/* Requires that requester (when given) is a member of conv, or that conv exists. */
static int check_access(store_sqlite_t *db, str_t conv, str_t requester)
{
    if (!store_present(requester)) {
        int rc = not_member(db, conv);
        return rc == STORE_E_FORBIDDEN ? STORE_OK : rc;
    }
    sqlite3_stmt *st = stmt_get(db, S_MEMBER_GET);
    if (!st) return STORE_E_IO;
    bind_str(st, 1, conv);
    bind_str(st, 2, requester);
    int rc = stmt_row(st);
    sqlite3_reset(st);
    return rc == STORE_E_NOT_FOUND ? not_member(db, conv) : rc;
}

/* Fills c from the conversation row, its members, its last message and, for the requester,
 * the watermark and unread count. Requester must be a member when given. */
static int conv_load(store_sqlite_t *db, str_t id, str_t requester, store_conversation_t *c,
                     store_arena_t *a)
{
    int rc;
    int64_t n = 0;
    sqlite3_stmt *st = stmt_get(db, S_CONV_GET);
    if (!st) return STORE_E_IO;
    memset(c, 0, sizeof *c);
    bind_str(st, 1, id);
    if ((rc = stmt_row(st)) == STORE_OK) {
        col_id(st, 0, c->id);
        const unsigned char *type = sqlite3_column_text(st, 1);
        c->type =
            type && strcmp((const char *)type, "group") == 0 ? STORE_CONV_GROUP : STORE_CONV_DIRECT;
        rc = col_str(st, 2, a, &c->title);
        c->last_seq = col_i64(st, 3);
        c->created_at = col_i64(st, 4);
        c->updated_at = col_i64(st, 5);
    }
    sqlite3_reset(st);
    if (rc != STORE_OK) return rc;

    if (!(st = stmt_get(db, S_MEMBER_COUNT))) return STORE_E_IO;
    bind_str(st, 1, id);
    if ((rc = count_query(st, &n)) != STORE_OK) return rc;
    store_member_t *members = n ? ARENA_BACK(a, store_member_t, (size_t)n) : NULL;
    if (n && !members) return STORE_E_NOSPACE;
    if (!(st = stmt_get(db, S_MEMBERS))) return STORE_E_IO;
    bind_str(st, 1, id);
    bool is_member = false;
    size_t i = 0;
    while (i < (size_t)n && (rc = stmt_row(st)) == STORE_OK) {
        store_member_t *m = &members[i++];
        if ((rc = col_str(st, 0, a, &m->user_id)) != STORE_OK) break;
        m->read_seq = col_i64(st, 1);
        m->read_at = col_i64(st, 2);
        m->joined_at = col_i64(st, 3);
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
    if (is_member) return unread_count(db, id, c->read_seq, requester, &c->unread_count);
    return STORE_OK;
}

static int user_stub(store_sqlite_t *db, str_t id, int64_t now)
{
    sqlite3_stmt *st = stmt_get(db, S_USER_STUB);
    if (!st) return STORE_E_IO;
    bind_str(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    return stmt_run(st);
}

static int conv_insert(store_sqlite_t *db, const char *id, const char *type, str_t title,
                       const char *direct_key, int64_t now)
{
    sqlite3_stmt *st = stmt_get(db, S_CONV_INSERT);
    if (!st) return STORE_E_IO;
    bind_cstr(st, 1, id);
    bind_cstr(st, 2, type);
    bind_opt(st, 3, title);
    if (direct_key)
        bind_cstr(st, 4, direct_key);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, now);
    return stmt_run(st);
}

static int member_insert(store_sqlite_t *db, const char *conv, str_t user, int64_t now)
{
    int rc = user_stub(db, user, now);
    if (rc != STORE_OK) return rc;
    sqlite3_stmt *st = stmt_get(db, S_MEMBER_INSERT);
    if (!st) return STORE_E_IO;
    bind_cstr(st, 1, conv);
    bind_str(st, 2, user);
    sqlite3_bind_int64(st, 3, now);
    return stmt_run(st);
}

/* The direct conversation of a and b, found by its key "min|max" (the id charset has no '|'),
 * so that there is exactly one per pair whoever writes first. */
static int direct_find_or_create(store_sqlite_t *db, str_t a, str_t b, int64_t now,
                                 char id[ID_SIZE], bool *created)
{
    char key[STORE_DIRECT_KEY_SIZE];
    store_direct_key(a, b, key);

    *created = false;
    sqlite3_stmt *st = stmt_get(db, S_CONV_BY_KEY);
    if (!st) return STORE_E_IO;
    bind_cstr(st, 1, key);
    int rc = stmt_row(st);
    if (rc == STORE_OK) col_id(st, 0, id);
    sqlite3_reset(st);
    if (rc != STORE_E_NOT_FOUND) return rc;

    id_generate(id);
    if ((rc = conv_insert(db, id, "direct", STR_NULL, key, now)) != STORE_OK ||
        (rc = member_insert(db, id, a, now)) != STORE_OK ||
        (rc = member_insert(db, id, b, now)) != STORE_OK)
        return rc;
    *created = true;
    return STORE_OK;
}

/* ---- Users and accounts ---------------------------------------------------------------- */

int store_sqlite_user_upsert(store_sqlite_t *db, const store_user_upsert_t *op, int64_t now)
{
    if (!store_valid_user_id(op->id) || !store_valid_opt(op->name, STORE_NAME_MAX) ||
        !store_valid_opt(op->role, STORE_ROLE_MAX))
        return STORE_E_INVALID;
    sqlite3_stmt *st = stmt_get(db, S_USER_UPSERT);
    if (!st) return STORE_E_IO;
    int rc = op_begin(db);
    if (rc != STORE_OK) return rc;
    bind_str(st, 1, op->id);
    bind_opt(st, 2, op->name);
    bind_opt(st, 3, op->role);
    sqlite3_bind_int64(st, 4, now);
    return op_end(db, stmt_run(st));
}

int store_sqlite_user_seen(store_sqlite_t *db, const store_user_seen_t *op)
{
    if (!store_valid_user_id(op->id) || op->last_seen < 0) return STORE_E_INVALID;
    sqlite3_stmt *st = stmt_get(db, S_USER_SEEN);
    if (!st) return STORE_E_IO;
    int rc = op_begin(db);
    if (rc != STORE_OK) return rc;
    bind_str(st, 1, op->id);
    sqlite3_bind_int64(st, 2, op->last_seen);
    return op_end(db, stmt_run(st));
}

int store_sqlite_account_create(store_sqlite_t *db, store_account_create_t *op, int64_t now)
{
    op->id[0] = '\0';
    if (!store_valid_req(op->username, STORE_USERNAME_MAX) ||
        !store_valid_req(op->password_hash, STORE_SECRET_MAX) ||
        !store_valid_opt(op->name, STORE_NAME_MAX) || !store_valid_opt(op->role, STORE_ROLE_MAX))
        return STORE_E_INVALID;
    sqlite3_stmt *st = stmt_get(db, S_ACCOUNT_CREATE);
    if (!st) return STORE_E_IO;
    char id[ID_SIZE];
    id_generate(id);
    int rc = op_begin(db);
    if (rc != STORE_OK) return rc;
    bind_cstr(st, 1, id);
    bind_opt(st, 2, op->name);
    bind_opt(st, 3, op->role);
    bind_str(st, 4, op->username);
    bind_str(st, 5, op->password_hash);
    sqlite3_bind_int64(st, 6, now);
    rc = op_end(db, stmt_run(st));
    if (rc == STORE_OK) memcpy(op->id, id, ID_SIZE);
    return rc;
}

int store_sqlite_account_get(store_sqlite_t *db, store_account_get_t *op, store_arena_t *a)
{
    store_arena_reset(a);
    memset(&op->user, 0, sizeof op->user);
    if (!store_valid_req(op->username, STORE_USERNAME_MAX)) return STORE_E_INVALID;
    sqlite3_stmt *st = stmt_get(db, S_ACCOUNT_GET);
    if (!st) return STORE_E_IO;
    bind_str(st, 1, op->username);
    int rc = stmt_row(st);
    if (rc == STORE_OK) rc = user_from_row(st, &op->user, a);
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
    sqlite3_stmt *st = stmt_get(db, S_USER_GET);
    if (!st) return STORE_E_IO;
    int rc = op_begin(db);
    if (rc != STORE_OK) return rc;
    store_user_t *users = NULL;
    for (size_t i = 0; i < op->count && rc == STORE_OK; i++) {
        bind_str(st, 1, op->ids[i]);
        rc = stmt_row(st);
        if (rc == STORE_OK) {
            store_user_t *u = ARENA_PUSH(a, store_user_t);
            rc = u ? user_from_row(st, u, a) : STORE_E_NOSPACE;
            if (rc == STORE_OK && !users) users = u;
            if (rc == STORE_OK) op->found++;
        } else if (rc == STORE_E_NOT_FOUND) {
            rc = STORE_OK;
        }
        sqlite3_reset(st);
    }
    op->users = users;
    if (rc != STORE_OK) op->found = 0;
    return op_end(db, rc);
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

    sqlite3_stmt *st = stmt_get(db, S_USERS_SEARCH);
    if (!st) return STORE_E_IO;
    sqlite3_bind_text(st, 1, (const char *)lo, (int)n, SQLITE_STATIC);
    if (hn > 0)
        sqlite3_bind_text(st, 2, (const char *)hi, (int)hn, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    int rc;
    store_user_t *users = NULL;
    while ((rc = stmt_row(st)) == STORE_OK) {
        store_arena_mark_t mark = store_arena_mark(a);
        store_user_t *u = ARENA_PUSH(a, store_user_t);
        if (!u || user_from_row(st, u, a) != STORE_OK) {
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

/* ---- Conversations --------------------------------------------------------------------- */

int store_sqlite_direct_open(store_sqlite_t *db, store_direct_open_t *op, store_arena_t *a,
                             int64_t now)
{
    char id[ID_SIZE];
    store_arena_reset(a);
    op->created = false;
    memset(&op->conv, 0, sizeof op->conv);
    if (!store_valid_user_id(op->user) || !store_valid_user_id(op->other) ||
        str_eq(op->user, op->other))
        return STORE_E_INVALID;
    int rc = op_begin(db);
    if (rc != STORE_OK) return rc;
    rc = direct_find_or_create(db, op->user, op->other, now, id, &op->created);
    if (rc == STORE_OK) rc = conv_load(db, str_make(id, ID_LEN), op->user, &op->conv, a);
    if (rc != STORE_OK) op->created = false;
    return op_end(db, rc);
}

int store_sqlite_group_create(store_sqlite_t *db, store_group_create_t *op, store_arena_t *a,
                              int64_t now)
{
    char id[ID_SIZE];
    store_arena_reset(a);
    memset(&op->conv, 0, sizeof op->conv);
    if (!store_valid_user_id(op->creator) || !store_valid_opt(op->title, STORE_NAME_MAX) ||
        (op->count && !op->participants) || op->count > STORE_GROUP_MAX)
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

    int rc = op_begin(db);
    if (rc != STORE_OK) return rc;
    id_generate(id);
    rc = conv_insert(db, id, "group", op->title, NULL, now);
    if (rc == STORE_OK) rc = member_insert(db, id, op->creator, now);
    for (size_t i = 0; i < op->count && rc == STORE_OK; i++)
        rc = member_insert(db, id, op->participants[i], now); /* duplicates: DO NOTHING */
    if (rc == STORE_OK) rc = conv_load(db, str_make(id, ID_LEN), op->creator, &op->conv, a);
    return op_end(db, rc);
}

int store_sqlite_conversation_get(store_sqlite_t *db, store_conversation_get_t *op,
                                  store_arena_t *a)
{
    store_arena_reset(a);
    memset(&op->conv, 0, sizeof op->conv);
    if (!id_valid(op->id) || (store_present(op->requester) && !store_valid_user_id(op->requester)))
        return STORE_E_INVALID;
    int rc = op_begin(db);
    if (rc != STORE_OK) return rc;
    rc = conv_load(db, op->id, op->requester, &op->conv, a);
    if (rc == STORE_E_FORBIDDEN) memset(&op->conv, 0, sizeof op->conv);
    return op_end(db, rc);
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
    size_t limit = op->limit == 0               ? STORE_PAGE_DEFAULT
                   : op->limit > STORE_PAGE_MAX ? STORE_PAGE_MAX
                                                : op->limit;
    sqlite3_stmt *st = stmt_get(db, S_CONV_LIST);
    if (!st) return STORE_E_IO;
    int rc = op_begin(db);
    if (rc != STORE_OK) return rc;
    bind_str(st, 1, op->user);
    sqlite3_bind_int64(st, 2, before_t);
    bind_str(st, 3, before_id);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)limit + 1);
    store_conversation_t *convs = NULL;
    bool more = false;
    while ((rc = stmt_row(st)) == STORE_OK) {
        if (op->count == limit) {
            more = true;
            break;
        }
        char id[ID_SIZE];
        col_id(st, 0, id);
        store_arena_mark_t mark = store_arena_mark(a);
        store_conversation_t *c = ARENA_PUSH(a, store_conversation_t);
        rc = c ? conv_load(db, str_make(id, ID_LEN), op->user, c, a) : STORE_E_NOSPACE;
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
        return op_end(db, rc);
    }
    op->convs = convs;
    if (more && op->count > 0) {
        const store_conversation_t *last = &convs[op->count - 1];
        store_cursor_format(op->next_cursor, last->updated_at, last->id);
    }
    return op_end(db, STORE_OK);
}

/* ---- Messages -------------------------------------------------------------------------- */

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
    sqlite3_stmt *st = stmt_get(db, S_MSG_BY_CLIENT_ID);
    if (!st) return STORE_E_IO;
    bind_str(st, 1, op->sender);
    bind_str(st, 2, op->client_msg_id);
    int rc = stmt_row(st);
    if (rc == STORE_OK) {
        rc = msg_from_row(st, &op->msg, a);
        op->duplicate = rc == STORE_OK;
    }
    sqlite3_reset(st);
    return rc;
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

/* A send inside the writer's transaction to a conversation in the cache, by someone known to
 * be its member, without a file: one INSERT, which SQLite makes atomic on its own, so no
 * savepoint. STORE_E_AGAIN_ when the long way has to decide. */
#define STORE_E_AGAIN_ (-1000)
/* The sender's membership row says it has written here (see migration 4). */
static int member_mark_sent(store_sqlite_t *db, const char *conv, str_t sender)
{
    sqlite3_stmt *st = stmt_get(db, S_MEMBER_SENT);
    if (!st) return STORE_E_IO;
    bind_cstr(st, 1, conv);
    bind_str(st, 2, sender);
    return stmt_run(st);
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
    } else {
        sqlite3_stmt *st = stmt_get(db, S_MEMBER_GET);
        if (!st) return STORE_E_IO;
        bind_cstr(st, 1, c->id);
        bind_str(st, 2, op->sender);
        int rc = stmt_row(st);
        if (rc == STORE_OK) sent = col_i64(st, 2) != 0;
        sqlite3_reset(st);
        if (rc == STORE_E_NOT_FOUND) return STORE_E_AGAIN_;
        if (rc != STORE_OK) return rc;
    }

    char id[ID_SIZE];
    id_generate(id);
    sqlite3_stmt *st = stmt_get(db, S_MSG_INSERT_ONCE);
    if (!st) return STORE_E_IO;
    bind_cstr(st, 1, id);
    bind_cstr(st, 2, c->id);
    sqlite3_bind_int64(st, 3, c->last_seq + 1);
    bind_str(st, 4, op->sender);
    bind_str(st, 5, recipient);
    bind_str(st, 6, op->content);
    bind_cstr(st, 7, store_msg_type_name(op->type));
    bind_opt(st, 8, STR_NULL);
    bind_opt(st, 9, op->client_msg_id);
    sqlite3_bind_int64(st, 10, now);
    int rc = stmt_run(st);
    if (rc != STORE_OK) return rc;
    if (sqlite3_changes(db->db) == 0) { /* a repeated clientMsgId */
        rc = msg_by_client_id(db, op, a);
        return rc == STORE_E_NOT_FOUND ? STORE_E_IO : rc;
    }
    op->msg.pos = sqlite3_last_insert_rowid(db->db);
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
    if ((rc = op_begin(db)) != STORE_OK) return rc;

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
        rc = direct_find_or_create(db, op->sender, op->recipient, now, conv,
                                   &op->conversation_created);
        if (rc != STORE_OK) goto out;
    }

    int64_t last_seq = 0;
    str_t recipient = STR_NULL;
    if (!(st = stmt_get(db, S_SEND_CTX))) goto io;
    bind_cstr(st, 1, conv);
    bind_str(st, 2, op->sender);
    rc = stmt_row(st);
    if (rc == STORE_OK) {
        const unsigned char *type = sqlite3_column_text(st, 0);
        last_seq = col_i64(st, 1);
        if (type && strcmp((const char *)type, "direct") == 0) rc = col_str(st, 2, a, &recipient);
    }
    sqlite3_reset(st);
    if (rc == STORE_E_NOT_FOUND) rc = not_member(db, str_make(conv, ID_LEN));
    if (rc != STORE_OK) goto out;

    if (store_present(op->file_id)) {
        store_file_t *f = ARENA_BACK(a, store_file_t, 1);
        if (!f) {
            rc = STORE_E_NOSPACE;
            goto out;
        }
        if (!(st = stmt_get(db, S_FILE_GET))) goto io;
        bind_str(st, 1, op->file_id);
        rc = stmt_row(st);
        if (rc == STORE_OK) rc = file_from_row(st, 0, f, a);
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
    if (!(st = stmt_get(db, S_MSG_INSERT))) goto io;
    bind_cstr(st, 1, id);
    bind_cstr(st, 2, conv);
    sqlite3_bind_int64(st, 3, last_seq + 1);
    bind_str(st, 4, op->sender);
    bind_str(st, 5, recipient);
    bind_str(st, 6, op->content);
    bind_cstr(st, 7, store_msg_type_name(op->type));
    bind_opt(st, 8, op->file_id);
    bind_opt(st, 9, op->client_msg_id);
    sqlite3_bind_int64(st, 10, now);
    if ((rc = stmt_run(st)) != STORE_OK) goto out;
    op->msg.pos = sqlite3_last_insert_rowid(db->db);
    if ((rc = member_mark_sent(db, conv, op->sender)) != STORE_OK) goto out;
    if (!(st = stmt_get(db, S_CONV_BUMP))) goto io;
    bind_cstr(st, 1, conv);
    sqlite3_bind_int64(st, 2, last_seq + 1);
    sqlite3_bind_int64(st, 3, now);
    if ((rc = stmt_run(st)) != STORE_OK) goto out;

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
    rc = op_end(db, rc);
    /* The next send to this conversation can take the short way. */
    if (rc == STORE_OK && !op->duplicate && !(db->flags & STORE_SQLITE_READONLY))
        send_cache_put(db, op->msg.conversation_id, op->msg.seq, op->sender, op->msg.recipient);
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
    while ((rc = stmt_row(st)) == STORE_OK) {
        if (*count == limit) {
            *more = true;
            break;
        }
        store_arena_mark_t mark = store_arena_mark(a);
        store_message_t *m = ARENA_PUSH(a, store_message_t);
        rc = m ? msg_from_row(st, m, a) : STORE_E_NOSPACE;
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
    sqlite3_stmt *st = stmt_get(db, sid);
    if (!st) return STORE_E_IO;
    int rc = op_begin(db);
    if (rc != STORE_OK) return rc;
    if ((rc = check_access(db, conv, requester)) != STORE_OK) return op_end(db, rc);
    bind_str(st, 1, conv);
    sqlite3_bind_int64(st, 2, bound);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1);
    rc = msg_list(st, limit, a, msgs, count, has_more);
    return op_end(db, rc);
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
    if (rc == STORE_OK && op->count > 1) {
        /* Read newest first (so the page ends at before_seq), handed out ascending. */
        store_message_t *m = (store_message_t *)op->msgs, t;
        for (size_t i = 0, j = op->count - 1; i < j; i++, j--) {
            t = m[i];
            m[i] = m[j];
            m[j] = t;
        }
    }
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
    sqlite3_stmt *st = stmt_get(db, S_MSG_SINCE);
    if (!st) return STORE_E_IO;
    int rc = op_begin(db);
    if (rc != STORE_OK) return rc;
    sqlite3_bind_int64(st, 1, op->after_pos);
    bind_str(st, 2, op->user);
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
    return op_end(db, rc);
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
    if ((rc = op_begin(db)) != STORE_OK) return rc;

    if (!(st = stmt_get(db, S_MSG_LOCATE))) goto io;
    bind_str(st, 1, op->message_id);
    rc = stmt_row(st);
    if (rc == STORE_OK) {
        if (store_present(op->conversation_id) && !col_eq(st, 0, op->conversation_id))
            rc = STORE_E_NOT_FOUND;
        col_id(st, 0, op->conv_id);
        op->message_seq = col_i64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != STORE_OK) goto out;
    str_t conv = str_make(op->conv_id, ID_LEN);

    if (!(st = stmt_get(db, S_MEMBER_GET))) goto io;
    bind_str(st, 1, conv);
    bind_str(st, 2, op->user);
    rc = stmt_row(st);
    if (rc == STORE_OK) {
        read_seq = col_i64(st, 0);
        read_at = col_i64(st, 1);
    }
    sqlite3_reset(st);
    if (rc == STORE_E_NOT_FOUND) rc = STORE_E_FORBIDDEN;
    if (rc != STORE_OK) goto out;

    if (op->message_seq > read_seq) {
        if (!(st = stmt_get(db, S_MEMBER_READ))) goto io;
        bind_str(st, 1, conv);
        bind_str(st, 2, op->user);
        sqlite3_bind_int64(st, 3, op->message_seq);
        sqlite3_bind_int64(st, 4, now);
        if ((rc = stmt_run(st)) != STORE_OK) goto out;
        /* Messages the watermark just passed are read from now on, unless another member
         * read them first: a message's read_at is its first read. */
        if (!(st = stmt_get(db, S_MSG_MARK_READ))) goto io;
        bind_str(st, 1, conv);
        sqlite3_bind_int64(st, 2, read_seq);
        sqlite3_bind_int64(st, 3, op->message_seq);
        bind_str(st, 4, op->user);
        sqlite3_bind_int64(st, 5, now);
        if ((rc = stmt_run(st)) != STORE_OK) goto out;
        read_seq = op->message_seq;
        read_at = now;
        op->moved = true;
    }
    op->seq = read_seq;
    op->read_at = read_at;
    rc = unread_count(db, conv, read_seq, op->user, &op->unread_count);
    goto out;
io:
    rc = STORE_E_IO;
out:
    if (rc != STORE_OK) op->moved = false;
    return op_end(db, rc);
}

/* ---- Files ----------------------------------------------------------------------------- */

int store_sqlite_file_insert(store_sqlite_t *db, store_file_insert_t *op, int64_t now)
{
    store_file_t *f = &op->file;
    bool preset = f->id[0] != '\0';
    if ((preset && !id_valid(str_make(f->id, strnlen(f->id, ID_SIZE)))) ||
        !store_valid_user_id(f->owner) || !store_valid_req(f->name, STORE_NAME_MAX) ||
        !store_valid_req(f->mime, STORE_NAME_MAX) || !store_valid_req(f->path, 4096) ||
        !store_valid_req(f->sha256, 128) || f->size < 0)
        return STORE_E_INVALID;
    sqlite3_stmt *st = stmt_get(db, S_FILE_INSERT);
    if (!st) return STORE_E_IO;
    char id[ID_SIZE];
    if (preset)
        memcpy(id, f->id, ID_SIZE);
    else
        id_generate(id);
    int rc = op_begin(db);
    if (rc != STORE_OK) return rc;
    if ((rc = user_stub(db, f->owner, now)) != STORE_OK) return op_end(db, rc);
    if (op->quota > 0) {
        /* In the same transaction as the insert, so two uploads cannot both slip under it. */
        sqlite3_stmt *q = NULL;
        int64_t used = -1;
        if (sqlite3_prepare_v2(db->db, "SELECT COALESCE(SUM(size), 0) FROM files WHERE owner = ?1",
                               -1, &q, NULL) == SQLITE_OK) {
            bind_str(q, 1, f->owner);
            if (sqlite3_step(q) == SQLITE_ROW) used = sqlite3_column_int64(q, 0);
        }
        sqlite3_finalize(q);
        if (used < 0) return op_end(db, STORE_E_IO);
        if (used + f->size > op->quota) return op_end(db, STORE_E_QUOTA);
    }
    bind_cstr(st, 1, id);
    bind_str(st, 2, f->owner);
    bind_str(st, 3, f->name);
    sqlite3_bind_int64(st, 4, f->size);
    bind_str(st, 5, f->mime);
    bind_str(st, 6, f->path);
    bind_str(st, 7, f->sha256);
    sqlite3_bind_int64(st, 8, now);
    rc = op_end(db, stmt_run(st));
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
    sqlite3_stmt *st = stmt_get(db, S_FILE_GET);
    if (!st) return STORE_E_IO;
    int rc = op_begin(db);
    if (rc != STORE_OK) return rc;
    bind_str(st, 1, op->id);
    rc = stmt_row(st);
    if (rc == STORE_OK) rc = file_from_row(st, 0, &op->file, a);
    sqlite3_reset(st);
    if (rc == STORE_OK && store_present(op->requester)) {
        op->allowed = str_eq(op->file.owner, op->requester);
        if (!op->allowed) {
            if (!(st = stmt_get(db, S_FILE_SHARED))) return op_end(db, STORE_E_IO);
            bind_str(st, 1, op->id);
            bind_str(st, 2, op->requester);
            rc = stmt_row(st);
            op->allowed = rc == STORE_OK;
            sqlite3_reset(st);
            if (rc == STORE_E_NOT_FOUND) rc = STORE_OK;
        }
    }
    if (rc != STORE_OK) {
        memset(&op->file, 0, sizeof op->file);
        op->allowed = false;
    }
    return op_end(db, rc);
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
    sqlite3_stmt *st = stmt_get(db, op->mode == STORE_CONTACTS_AUDIENCE  ? S_CONTACTS_AUDIENCE
                                    : op->mode == STORE_CONTACTS_VISIBLE ? S_CONTACTS_VISIBLE
                                                                         : S_CONTACTS);
    if (!st) return STORE_E_IO;
    bind_str(st, 1, op->user);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit + 1);
    int rc;
    str_t *ids = NULL;
    while ((rc = stmt_row(st)) == STORE_OK) {
        if (op->count == limit) {
            op->has_more = true;
            break;
        }
        store_arena_mark_t mark = store_arena_mark(a);
        str_t *id = ARENA_PUSH(a, str_t);
        rc = id ? col_str(st, 0, a, id) : STORE_E_NOSPACE;
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

/* ---- The engine ---------------------------------------------------------------------- */

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
static const char *engine_errmsg(void *c)
{
    return store_sqlite_errmsg(c);
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
    .errmsg = engine_errmsg,
};

/* ---- Dispatch -------------------------------------------------------------------------- */

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
    default:
        rc = STORE_E_INVALID;
        break;
    }
    req->status = rc;
    return rc;
}
