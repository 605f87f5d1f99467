/* The SQLite engine's schema: migrations, opening and closing a connection, and the writer's
 * batch transactions. */
#include "store/store_sqlite_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "core/log.h"

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

/* Version 5 (issue 16): blocks and search. blocker -> blocked with no foreign keys (an id that
 * never connected may be blocked); the primary key answers "a blocks b" and "b blocks a" alike. */
static const char store_migration_5[] =
    "CREATE TABLE blocks ("
    " blocker TEXT NOT NULL,"
    " blocked TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " PRIMARY KEY (blocker, blocked)) WITHOUT ROWID;"
    /* Search: FTS5 over messages.content (external content, rowid = pos), kept in step by
     * triggers (inserts; edits and deletions, which change content and move pos); it finds
     * candidates, and store_search.c decides. No diacritics folding: the match is exact but for
     * ASCII case. */
    "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages',"
    " content_rowid='pos', tokenize='unicode61 remove_diacritics 0');"
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');"
    "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN"
    " INSERT INTO messages_fts(rowid, content) VALUES (new.pos, new.content); END;"
    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN"
    " INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.pos, "
    "old.content);"
    " END;"
    "CREATE TRIGGER messages_fts_au AFTER UPDATE OF content, pos ON messages BEGIN"
    " INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.pos, "
    "old.content);"
    " INSERT INTO messages_fts(rowid, content) VALUES (new.pos, new.content); END;";

/* Version 6: edits and deletions (issue 16). A deleted message stays as a tombstone row
 * (content '', file_id NULL, deleted = 1) so that seq stays gap-free; an edit or a delete
 * moves the row's pos to the next position, so recovery replays it in its new state. */
static const char store_migration_6[] =
    "ALTER TABLE messages ADD COLUMN edited_at INTEGER;"
    "ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;";

/* Version 7 (issue 15): a conversation's context, what it is about ({type, id, title?}).
 * A direct conversation about a context has the key "min|max|type|id" (store_direct_ctx_key),
 * so the UNIQUE direct_key makes it one per pair and context, and the plain "min|max" thread
 * stays as it was. The index serves platform-wide lookups of a context. */
static const char store_migration_7[] =
    "ALTER TABLE conversations ADD COLUMN context_type TEXT;"
    "ALTER TABLE conversations ADD COLUMN context_id TEXT;"
    "ALTER TABLE conversations ADD COLUMN context_title TEXT;"
    "CREATE INDEX conversations_by_context ON conversations(context_type, context_id)"
    " WHERE context_type IS NOT NULL;";

/* Version 8 (webhooks, issue 15; a step of its own): the outbox (store.h, docs/store.md).
 * AUTOINCREMENT: delivered rows are deleted, and a row id must never come back (it is the
 * delivery id receivers deduplicate by). due_at NULL: an ordered row waiting behind an
 * earlier one of its conversation (it gets a due time when that one is done). */
static const char store_migration_8[] =
    "CREATE TABLE webhook_outbox ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " type INTEGER NOT NULL,"
    " conversation_id TEXT NOT NULL,"
    " message_id TEXT,"
    " user_id TEXT,"
    " seq INTEGER NOT NULL DEFAULT 0,"
    " ordered INTEGER NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " due_at INTEGER,"
    " lease_until INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " done_mask INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX webhook_outbox_due ON webhook_outbox(due_at, id)"
    " WHERE state = 0 AND due_at IS NOT NULL;"
    "CREATE INDEX webhook_outbox_conv ON webhook_outbox(conversation_id, id)"
    " WHERE state = 0 AND ordered = 1;";

/* Version 9 (issue 17): messages are indexed for search in chunks behind a watermark instead
 * of one by one by an AFTER INSERT trigger. FTS5 flushes its pending terms at every savepoint
 * (a trigger's statement savepoint, or the SAVEPOINT of each operation), so every message
 * became an index segment of its own: ~18 us of the writer per message, ~64 us when a commit
 * holds one message. fts_state.indexed_pos is the watermark: every row at pos <= it is in the
 * index, no row above it is. The writer indexes the rows above it in one statement and moves it
 * in the same transaction (store_sqlite_search.c, sq_fts_catch_up); search reads the rows
 * above it directly. The edit and delete triggers delete an index entry only when the row's
 * old pos is at or below the watermark (deleting an entry that is not there corrupts an
 * external-content index); an edit or a delete moves the row above it, where the next
 * catch-up indexes its new content. All existing rows were indexed by the old trigger. */
static const char store_migration_9[] =
    "DROP TRIGGER messages_fts_ai;"
    "DROP TRIGGER messages_fts_ad;"
    "DROP TRIGGER messages_fts_au;"
    "CREATE TABLE fts_state ("
    " one INTEGER PRIMARY KEY CHECK (one = 1),"
    " indexed_pos INTEGER NOT NULL);"
    "INSERT INTO fts_state (one, indexed_pos) SELECT 1, coalesce(max(pos), 0) FROM messages;"
    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages"
    " WHEN old.pos <= (SELECT indexed_pos FROM fts_state) BEGIN"
    " INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.pos,"
    " old.content); END;"
    "CREATE TRIGGER messages_fts_au AFTER UPDATE OF content, pos ON messages BEGIN"
    " INSERT INTO messages_fts(messages_fts, rowid, content) SELECT 'delete', old.pos,"
    " old.content WHERE old.pos <= (SELECT indexed_pos FROM fts_state);"
    /* never taken while pos only grows (an edit takes max(pos) + 1): kept so that the index
     * stays exact should a row ever move below the watermark */
    " INSERT INTO messages_fts(rowid, content) SELECT new.pos, new.content"
    " WHERE new.pos <= (SELECT indexed_pos FROM fts_state); END;";

/* Version 10 (issue 17): the search index without its per-row size table. FTS5 keeps the token
 * count of every row in messages_fts_docsize (one more B-tree insert per indexed message) only
 * for ranking (bm25, xColumnSize); search orders by pos and never ranks, so columnsize=0 drops
 * it: ~3.9k of the writer's ~54k instructions per message (store_bench, batches of 512). The
 * index's matches are the same (detail=full kept: phrases and prefixes work as before). FTS5
 * options are fixed at creation, so the table is made again and the rows at or below the
 * watermark are indexed again in the migration's transaction (every row there is in the index,
 * none above: the invariant of version 9 holds, the catch-up on open indexes the tail). */
static const char store_migration_10[] =
    "DROP TABLE messages_fts;"
    "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages',"
    " content_rowid='pos', tokenize='unicode61 remove_diacritics 0', columnsize=0);"
    "INSERT INTO messages_fts(rowid, content) SELECT pos, content FROM messages"
    " WHERE pos <= (SELECT indexed_pos FROM fts_state);";

static const char *const store_migrations[STORE_SCHEMA_VERSION + 1] = {
    NULL,
    store_migration_1,
    store_migration_2,
    store_migration_3,
    store_migration_4,
    store_migration_5,
    store_migration_6,
    store_migration_7,
    store_migration_8,
    store_migration_9,
    store_migration_10,
};

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
    return rc == SQLITE_ROW ? STORE_OK : sq_map_rc(rc);
}

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t cap)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        set_err(err, cap, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return sq_map_rc(rc);
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
static const char *store_sqlite_writer_vfs; /* NULL: the default VFS */

static void store_sqlite_configure(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    store_sqlite_writer_vfs = sq_vfs_register();
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
    /* The writer's WAL writes are gathered into one write per commit (store_sqlite_vfs.c). */
    int src = sqlite3_open_v2(path, &db->db, oflags, ro ? NULL : store_sqlite_writer_vfs);
    if (src != SQLITE_OK) {
        set_err(err, errcap, "%s: %s", path, db->db ? sqlite3_errmsg(db->db) : "out of memory");
        rc = sq_map_rc(src);
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
        /* Messages committed but not yet indexed for search when the last process stopped
         * (search reads them meanwhile, see store_sqlite_search.c). */
        if ((rc = sq_fts_catch_up_now(db)) != STORE_OK) {
            set_err(err, errcap, "%s: indexing messages for search: %s", path,
                    sqlite3_errmsg(db->db));
            goto fail;
        }
        if (sq_checkpointer_start(db, path, 16384) != STORE_OK)
            log_warn("store: no checkpoint thread; SQLite checkpoints in the writer's commits");
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
    sq_checkpointer_stop(db);
    sq_send_cache_clear(db);
    sq_block_filter_free(db);
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
    db->block_bits_checked = false; /* another connection may have written since */
    db->in_batch = true;
    return sq_run_simple(db, S_BEGIN);
}

int store_sqlite_commit(store_sqlite_t *db)
{
    int rc = sq_send_cache_flush(db);
    /* The search index catches up in the batch's transaction when enough rows wait (a failure
     * leaves them waiting, and the batch commits all the same). */
    if (rc == STORE_OK && db->fts_pending && sq_fts_due(db, store_clock_ms())) sq_fts_catch_up(db);
    db->in_batch = false;
    if (rc == STORE_OK) rc = sq_run_simple(db, S_COMMIT);
    if (rc != STORE_OK)
        store_sqlite_rollback(db);
    else if (db->convs.count > SEND_CACHE_MAX)
        sq_send_cache_clear(db);
    return rc;
}

void store_sqlite_rollback(store_sqlite_t *db)
{
    db->in_batch = false;
    sq_send_cache_clear(db);
    /* a catch-up of this transaction is undone too: look again at the next commit */
    if (db->fts_pending == 0) sq_fts_note(db, SQ_FTS_PENDING_MAX);
    if (!sqlite3_get_autocommit(db->db)) sq_run_simple(db, S_ROLLBACK);
}

bool store_sqlite_in_transaction(store_sqlite_t *db)
{
    return !sqlite3_get_autocommit(db->db);
}

int store_sqlite_ping(store_sqlite_t *db)
{
    int v;
    return pragma_int(db->db, "PRAGMA user_version", &v);
}
