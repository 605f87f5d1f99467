/* Tests of what is the SQLite engine's own: the file's pragmas, schema migrations of the file,
 * savepoints inside the writer's batches and the writer's send cache. What every engine must
 * do (every operation, conflicts, pagination, idempotency, watermarks, the guarantees) is in
 * the store conformance suite (store_conformance*.c), which runs it against SQLite too. */
#include <dirent.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "store/store_sqlite.h"
#include "unit.h"

static char tmpdir[64];
static char arena_buf[1 << 20];
static int db_counter;

static void make_path(char *out, size_t cap)
{
    snprintf(out, cap, "%s/db%d.sqlite", tmpdir, db_counter++);
}

static store_sqlite_t *open_fresh(char *path, size_t cap)
{
    char err[256] = "";
    store_sqlite_t *db = NULL;
    make_path(path, cap);
    int rc = store_sqlite_open(path, 0, &db, err, sizeof err);
    CHECK_EQ_INT(rc, STORE_OK);
    if (rc != STORE_OK) fprintf(stderr, "open: %s\n", err);
    return db;
}

static store_arena_t arena(void)
{
    return (store_arena_t){arena_buf, sizeof arena_buf, 0, 0};
}

/* Opens the a|b direct conversation and returns its id in out. */
static void direct(store_sqlite_t *db, const char *a, const char *b, char out[ID_SIZE])
{
    store_arena_t ar = arena();
    store_direct_open_t op = {.user = str_cstr(a), .other = str_cstr(b)};
    CHECK_EQ_INT(store_sqlite_direct_open(db, &op, &ar, 1000), STORE_OK);
    memcpy(out, op.conv.id, ID_SIZE);
}

static int send_at(store_sqlite_t *db, const char *conv, const char *sender, const char *text,
                   int64_t now, store_message_insert_t *op)
{
    store_arena_t ar = arena();
    memset(op, 0, sizeof *op);
    op->sender = str_cstr(sender);
    op->conversation_id = str_cstr(conv);
    op->content = str_cstr(text);
    op->type = STORE_MSG_TEXT;
    return store_sqlite_message_insert(db, op, &ar, now);
}

static int64_t send(store_sqlite_t *db, const char *conv, const char *sender, const char *text)
{
    store_message_insert_t op;
    int rc = send_at(db, conv, sender, text, 2000, &op);
    CHECK_EQ_INT(rc, STORE_OK);
    return rc == STORE_OK ? op.msg.seq : -1;
}

static const char *contacts_of(store_sqlite_t *db, const char *user, store_contacts_mode_t mode,
                               char *out, size_t cap);

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *raw = NULL;
    CHECK_EQ_INT(sqlite3_open(path, &raw), SQLITE_OK);
    return raw;
}

static int64_t raw_int(sqlite3 *raw, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(raw, sql, -1, &st, NULL) != SQLITE_OK) return -2;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* ---- Opening, pragmas, migrations ------------------------------------------------------ */

static void test_open_fresh(void)
{
    char path[128], err[256];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    CHECK_EQ_INT(store_sqlite_schema_version(db), STORE_SCHEMA_VERSION);
    sqlite3 *raw = raw_open(path);
    sqlite3_stmt *st;
    CHECK_EQ_INT(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK(strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0);
    sqlite3_finalize(st);
    /* Indexes that the hot queries rely on. */
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name"
                              " IN ('conversation_members_by_user', 'messages_by_file')"),
                 2);
    sqlite3_close(raw);

    /* A reader connection: current schema, refuses writes. */
    store_sqlite_t *ro = NULL;
    CHECK_EQ_INT(store_sqlite_open(path, STORE_SQLITE_READONLY, &ro, err, sizeof err), STORE_OK);
    if (ro) {
        store_user_upsert_t up = {.id = STR_LIT("u1"), .name = STR_NULL, .role = STR_NULL};
        CHECK_EQ_INT(store_sqlite_user_upsert(ro, &up, 1), STORE_E_IO);
        store_sqlite_close(ro);
    }
    store_sqlite_close(db);
    store_sqlite_close(NULL);

    /* A reader cannot create a database. */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing.sqlite", tmpdir);
    CHECK(store_sqlite_open(missing, STORE_SQLITE_READONLY, &ro, err, sizeof err) != STORE_OK);
    CHECK(ro == NULL);
}

static void test_open_newer_refused(void)
{
    char path[128], err[256] = "";
    store_sqlite_t *db = open_fresh(path, sizeof path);
    store_sqlite_close(db);
    sqlite3 *raw = raw_open(path);
    sqlite3_exec(raw, "PRAGMA user_version = 99", NULL, NULL, NULL);
    sqlite3_close(raw);
    CHECK_EQ_INT(store_sqlite_open(path, 0, &db, err, sizeof err), STORE_E_INVALID);
    CHECK(strstr(err, "newer") != NULL);
    CHECK_EQ_INT(store_sqlite_open(path, STORE_SQLITE_READONLY, &db, err, sizeof err),
                 STORE_E_INVALID);
    CHECK(strstr(err, "schema version 99") != NULL);
}

/* Schema version 1 exactly as deployed, frozen here so the test keeps meaning what it says. */
static const char v1_schema[] =
    "CREATE TABLE users (id TEXT PRIMARY KEY NOT NULL, name TEXT, role TEXT,"
    " username TEXT UNIQUE COLLATE NOCASE, password_hash TEXT, last_seen INTEGER,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE files (id TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL REFERENCES users(id),"
    " name TEXT NOT NULL, size INTEGER NOT NULL, mime TEXT NOT NULL, path TEXT NOT NULL,"
    " sha256 TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE conversations (id TEXT PRIMARY KEY NOT NULL,"
    " type TEXT NOT NULL CHECK (type = 'direct' OR type = 'group'), title TEXT,"
    " direct_key TEXT UNIQUE, last_seq INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " CHECK ((type = 'direct') = (direct_key IS NOT NULL)));"
    "CREATE TABLE conversation_members ("
    " conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " user_id TEXT NOT NULL REFERENCES users(id), read_seq INTEGER NOT NULL DEFAULT 0,"
    " read_at INTEGER, joined_at INTEGER NOT NULL,"
    " PRIMARY KEY (conversation_id, user_id)) WITHOUT ROWID;"
    "CREATE INDEX conversation_members_by_user ON conversation_members(user_id, conversation_id);"
    "CREATE TABLE messages (pos INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
    " conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL CHECK (seq > 0), sender TEXT NOT NULL REFERENCES users(id),"
    " recipient TEXT, content TEXT NOT NULL,"
    " type TEXT NOT NULL CHECK (type = 'text' OR type = 'image' OR type = 'file'),"
    " file_id TEXT REFERENCES files(id), client_msg_id TEXT, created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL, UNIQUE (conversation_id, seq),"
    " UNIQUE (sender, client_msg_id));";

#define V1_CONV "65a000000000000000000001"

static const char v1_data[] =
    "INSERT INTO users (id, name, created_at) VALUES ('alice', 'Alice', 1), ('bob', 'Bob', 1);"
    "INSERT INTO conversations VALUES ('" V1_CONV "', 'direct', NULL, 'alice|bob', 3, 1, 30);"
    "INSERT INTO conversation_members VALUES ('" V1_CONV "', 'alice', 0, NULL, 1),"
    " ('" V1_CONV "', 'bob', 2, 5000, 1);"
    "INSERT INTO messages (id, conversation_id, seq, sender, recipient, content, type,"
    " created_at, updated_at) VALUES"
    " ('65a000000000000000000011', '" V1_CONV "', 1, 'alice', 'bob', 'one', 'text', 10, 10),"
    " ('65a000000000000000000012', '" V1_CONV "', 2, 'alice', 'bob', 'two', 'text', 20, 20),"
    " ('65a000000000000000000013', '" V1_CONV "', 3, 'alice', 'bob', 'three', 'text', 30, 30);"
    "PRAGMA user_version = 1;";

static void make_v1(const char *path, const char *extra)
{
    sqlite3 *raw = raw_open(path);
    CHECK_EQ_INT(sqlite3_exec(raw, v1_schema, NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_exec(raw, v1_data, NULL, NULL, NULL), SQLITE_OK);
    if (extra) CHECK_EQ_INT(sqlite3_exec(raw, extra, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
}

static void test_migrate_from_v1(void)
{
    char path[128], err[256] = "";
    store_sqlite_t *db = NULL;
    make_path(path, sizeof path);
    make_v1(path, NULL);
    CHECK_EQ_INT(store_sqlite_open(path, 0, &db, err, sizeof err), STORE_OK);
    if (!db) return;
    CHECK_EQ_INT(store_sqlite_schema_version(db), STORE_SCHEMA_VERSION);
    /* Version 4's backfill: alice wrote to bob, bob never wrote. */
    char who[128];
    CHECK(strcmp(contacts_of(db, "bob", STORE_CONTACTS_VISIBLE, who, sizeof who), "alice") == 0);
    CHECK(strcmp(contacts_of(db, "alice", STORE_CONTACTS_VISIBLE, who, sizeof who), "") == 0);

    /* The backfill: bob's watermark (2, at 5000) marks alice's first two messages read. */
    store_arena_t ar = arena();
    store_messages_page_t page = {.conversation_id = STR_LIT(V1_CONV), .requester = STR_LIT("bob")};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &page, &ar), STORE_OK);
    CHECK_EQ_INT(page.count, 3);
    if (page.count == 3) {
        CHECK_EQ_INT(page.msgs[0].read_at, 5000);
        CHECK_EQ_INT(page.msgs[1].read_at, 5000);
        CHECK_EQ_INT(page.msgs[2].read_at, 0);
        CHECK_MEM(page.msgs[2].content.ptr, page.msgs[2].content.len, "three");
        CHECK_MEM(page.msgs[0].recipient.ptr, page.msgs[0].recipient.len, "bob");
    }
    /* The migrated database works: the next message is seq 4, the direct pair is found. */
    CHECK_EQ_INT(send(db, V1_CONV, "bob", "four"), 4);
    char conv[ID_SIZE];
    direct(db, "bob", "alice", conv);
    CHECK(strcmp(conv, V1_CONV) == 0);

    store_message_insert_t op;
    CHECK_EQ_INT(send_at(db, V1_CONV, "alice", "five", 6000, &op), STORE_OK);
    int64_t five_pos = op.msg.pos;
    store_sqlite_close(db);

    /* Version 3 kept every row and its pos, and dropped what it meant to drop; pos still
     * grows past the migrated rows. */
    sqlite3 *raw = raw_open(path);
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM messages"), 5);
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM messages WHERE pos < " /* the v1 rows */
                              "(SELECT min(pos) FROM messages WHERE content = 'four')"),
                 3);
    CHECK(five_pos == raw_int(raw, "SELECT max(pos) FROM messages"));
    CHECK(five_pos > raw_int(raw, "SELECT pos FROM messages WHERE content = 'four'"));
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM pragma_foreign_key_list('messages')"), 0);
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM sqlite_master WHERE name = 'messages'"
                              " AND sql LIKE '%AUTOINCREMENT%'"),
                 0);
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                              " AND tbl_name = 'messages' AND name = 'messages_by_file'"),
                 1);
    sqlite3_close(raw);

    /* Opening again is a no-op. */
    CHECK_EQ_INT(store_sqlite_open(path, 0, &db, err, sizeof err), STORE_OK);
    CHECK_EQ_INT(store_sqlite_schema_version(db), STORE_SCHEMA_VERSION);
    store_sqlite_close(db);
}

/* Version 10 makes the search index again without its per-row size table (columnsize=0), and
 * the index stays exact: the rows at or below the watermark indexed by the migration, the tail
 * above it by the catch-up on open, nothing twice (FTS5's integrity-check compares the index
 * with the messages). */
static void test_migrate_fts_columnsize(void)
{
    char path[128], err[256] = "", sql[1024];
    store_sqlite_t *db = NULL;
    make_path(path, sizeof path);
    make_v1(path, NULL);
    CHECK_EQ_INT(store_sqlite_open(path, 0, &db, err, sizeof err), STORE_OK);
    if (!db) return;
    send(db, V1_CONV, "alice", "apple pie");
    send(db, V1_CONV, "bob", "banana split");
    send(db, V1_CONV, "alice", "cherry apple");
    store_sqlite_close(db);

    /* Back to version 9 as it was deployed: its search table, the last row above the
     * watermark. */
    sqlite3 *raw = raw_open(path);
    long long last = (long long)raw_int(raw, "SELECT max(pos) FROM messages");
    snprintf(sql, sizeof sql,
             "DROP TABLE messages_fts;"
             "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages',"
             " content_rowid='pos', tokenize='unicode61 remove_diacritics 0');"
             "INSERT INTO messages_fts(rowid, content) SELECT pos, content FROM messages"
             " WHERE pos <= %lld;"
             "UPDATE fts_state SET indexed_pos = %lld; PRAGMA user_version = 9;",
             last - 1, last - 1);
    CHECK_EQ_INT(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM sqlite_master WHERE name = "
                              "'messages_fts_docsize'"),
                 1);
    sqlite3_close(raw);

    CHECK_EQ_INT(store_sqlite_open(path, 0, &db, err, sizeof err), STORE_OK);
    if (!db) return;
    CHECK_EQ_INT(store_sqlite_schema_version(db), 10);
    store_sqlite_close(db);

    raw = raw_open(path);
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM sqlite_master WHERE name = "
                              "'messages_fts_docsize'"),
                 0);
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM sqlite_master WHERE name = 'messages_fts'"
                              " AND sql LIKE '%columnsize=0%'"),
                 1);
    CHECK_EQ_INT(raw_int(raw, "SELECT indexed_pos FROM fts_state"), last);
    CHECK_EQ_INT(sqlite3_exec(raw,
                              "INSERT INTO messages_fts(messages_fts, rank)"
                              " VALUES ('integrity-check', 1)",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH "
                              "'apple'"),
                 2);
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH "
                              "'cherry'"),
                 1);
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH "
                              "'ban*'"),
                 1);
    sqlite3_close(raw);
}

static void test_migration_is_atomic(void)
{
    char path[128], err[256] = "";
    store_sqlite_t *db = NULL;
    make_path(path, sizeof path);
    /* An object in the way of migration 2's last statement: the migration must fail after its
     * ALTER and UPDATE ran, and leave no trace of them. */
    make_v1(path, "CREATE INDEX messages_by_file ON users(name);");
    CHECK_EQ_INT(store_sqlite_open(path, 0, &db, err, sizeof err), STORE_E_IO);
    CHECK(db == NULL);
    CHECK(strstr(err, "migration to schema version 2 failed") != NULL);
    sqlite3 *raw = raw_open(path);
    CHECK_EQ_INT(raw_int(raw, "PRAGMA user_version"), 1);
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM pragma_table_info('messages')"
                              " WHERE name = 'read_at'"),
                 0);
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM messages"), 3);
    sqlite3_close(raw);
}

/* ---- Batches --------------------------------------------------------------------------- */

static void test_batch_savepoints(void)
{
    char path[128], conv[ID_SIZE];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    direct(db, "alice", "bob", conv);
    static char arenas[3][4096];
    store_req_t r[3];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 3; i++) {
        r[i].op = STORE_OP_MESSAGE_INSERT;
        r[i].now_ms = 1000;
        r[i].arena = (store_arena_t){arenas[i], sizeof arenas[i], 0, 0};
        r[i].u.message_insert.sender = STR_LIT("alice");
        r[i].u.message_insert.conversation_id = str_cstr(conv);
        r[i].u.message_insert.content = STR_LIT("ok");
    }
    /* The middle one creates a conversation with carol, then fails on the file: all of it
     * must be undone, and the others kept. */
    r[1].u.message_insert.conversation_id = STR_NULL;
    r[1].u.message_insert.recipient = STR_LIT("carol");
    r[1].u.message_insert.file_id = STR_LIT("65a0000000000000000000f9");

    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK(store_sqlite_in_transaction(db));
    for (int i = 0; i < 3; i++) store_sqlite_exec(db, &r[i]);
    CHECK(store_sqlite_in_transaction(db));
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
    CHECK(!store_sqlite_in_transaction(db));
    CHECK_EQ_INT(r[0].status, STORE_OK);
    CHECK_EQ_INT(r[1].status, STORE_E_FORBIDDEN);
    CHECK_EQ_INT(r[2].status, STORE_OK);
    CHECK_EQ_INT(r[0].u.message_insert.msg.seq, 1);
    CHECK_EQ_INT(r[2].u.message_insert.msg.seq, 2);
    store_arena_t ar = arena();
    store_direct_open_t d = {.user = STR_LIT("alice"), .other = STR_LIT("carol")};
    CHECK_EQ_INT(store_sqlite_direct_open(db, &d, &ar, 1), STORE_OK);
    CHECK(d.created);

    /* A rolled-back batch leaves nothing. */
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    store_sqlite_exec(db, &r[0]);
    CHECK_EQ_INT(r[0].status, STORE_OK);
    store_sqlite_rollback(db);
    CHECK_EQ_INT(send(db, conv, "bob", "after rollback"), 3);

    store_req_t bad = {.op = STORE_OP_COUNT_};
    CHECK_EQ_INT(store_sqlite_exec(db, &bad), STORE_E_INVALID);
    CHECK_EQ_INT(bad.status, STORE_E_INVALID);
    CHECK(strcmp(store_strerror(STORE_E_CONFLICT), "conflict") == 0);
    CHECK(strcmp(store_strerror(12345), "unknown store error") == 0);
    store_sqlite_close(db);
}

/* Sends inside a batch to a conversation seen before take the writer's short way (one INSERT,
 * the conversation row written once per batch): the results must be the same as the long way's. */
static int send_to(store_sqlite_t *db, const char *sender, const char *recipient,
                   const char *client_id, int64_t now, store_message_insert_t *op)
{
    store_arena_t ar = arena();
    memset(op, 0, sizeof *op);
    op->sender = str_cstr(sender);
    op->recipient = str_cstr(recipient);
    op->content = STR_LIT("hi");
    op->client_msg_id = client_id ? str_cstr(client_id) : STR_NULL;
    return store_sqlite_message_insert(db, op, &ar, now);
}

static int64_t conv_last_seq(store_sqlite_t *db, const char *conv, int64_t *updated_at)
{
    store_arena_t ar = arena();
    store_conversation_get_t g = {.id = str_cstr(conv)};
    CHECK_EQ_INT(store_sqlite_conversation_get(db, &g, &ar), STORE_OK);
    if (updated_at) *updated_at = g.conv.updated_at;
    return g.conv.last_seq;
}

/* The send cache bumps a conversation row by its rowid; a row renumbered meanwhile (a VACUUM
 * may do that, here an UPDATE of another connection) is found by its id instead, and no other
 * row is touched. */
static void test_cached_bump_renumbered(void)
{
    char path[128], conv[ID_SIZE];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    store_message_insert_t op;
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(send_to(db, "alice", "bob", NULL, 1000, &op), STORE_OK);
    memcpy(conv, op.msg.conversation_id, ID_SIZE);
    CHECK_EQ_INT(send_to(db, "carol", "dave", NULL, 1000, &op), STORE_OK);
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
    for (int round = 0; round < 2; round++) {
        /* round 0: rowids swapped, so the cached rowid of each names the other row */
        sqlite3 *raw = raw_open(path);
        CHECK_EQ_INT(sqlite3_exec(raw,
                                  round == 0 ? "UPDATE conversations SET rowid = -rowid;"
                                               "UPDATE conversations SET rowid = 3 + rowid"
                                             : "UPDATE conversations SET rowid = rowid + 100",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
        sqlite3_close(raw);
        CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
        CHECK_EQ_INT(send_to(db, "alice", "bob", NULL, 2000 + round, &op), STORE_OK);
        CHECK_EQ_INT(op.msg.seq, 2 + round);
        CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
        int64_t updated = 0;
        CHECK_EQ_INT(conv_last_seq(db, conv, &updated), 2 + round);
        CHECK_EQ_INT(updated, 2000 + round);
        raw = raw_open(path);
        CHECK_EQ_INT(raw_int(raw, "SELECT max(last_seq) FROM conversations"), 2 + round);
        CHECK_EQ_INT(raw_int(raw, "SELECT min(last_seq) FROM conversations"), 1);
        sqlite3_close(raw);
    }
    store_sqlite_close(db);
}

static void test_batch_cached_sends(void)
{
    char path[128], conv[ID_SIZE];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    store_message_insert_t op;
    int64_t updated = 0;

    /* The first send creates the conversation; the rest of the batch takes the short way,
     * by recipient and by conversation id, and a read in the batch sees every one of them. */
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(send_to(db, "alice", "bob", "c1", 1000, &op), STORE_OK);
    CHECK(op.conversation_created);
    memcpy(conv, op.msg.conversation_id, ID_SIZE);
    CHECK_EQ_INT(send_to(db, "bob", "alice", "c1", 1001, &op), STORE_OK); /* bob's own c1 */
    CHECK_EQ_INT(op.msg.seq, 2);
    CHECK(!op.duplicate);
    CHECK(str_eq_cstr(op.msg.recipient, "alice"));
    CHECK(str_eq_cstr(op.msg.sender, "bob"));
    CHECK(str_eq_cstr(op.msg.client_msg_id, "c1"));
    CHECK_EQ_INT(op.msg.created_at, 1001);
    CHECK(op.msg.pos > 0);
    CHECK_EQ_INT(conv_last_seq(db, conv, &updated), 2);
    CHECK_EQ_INT(updated, 1001);
    CHECK_EQ_INT(send_at(db, conv, "alice", "three", 1002, &op), STORE_OK);
    CHECK_EQ_INT(op.msg.seq, 3);
    CHECK(str_eq_cstr(op.msg.recipient, "bob"));
    CHECK_MEM(op.msg.content.ptr, op.msg.content.len, "three");

    /* A repeated clientMsgId answers with the first send and uses no seq. */
    CHECK_EQ_INT(send_to(db, "alice", "bob", "c1", 1003, &op), STORE_OK);
    CHECK(op.duplicate);
    CHECK_EQ_INT(op.msg.seq, 1);
    CHECK_EQ_INT(send_to(db, "alice", "bob", NULL, 1004, &op), STORE_OK);
    CHECK_EQ_INT(op.msg.seq, 4);

    /* Someone else cannot send to it by its id (the long way says so). */
    CHECK_EQ_INT(send_at(db, conv, "mallory", "x", 1005, &op), STORE_E_FORBIDDEN);
    CHECK(store_sqlite_in_transaction(db));
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);

    /* Committed: the conversation row caught up. */
    sqlite3 *raw = raw_open(path);
    CHECK_EQ_INT(raw_int(raw, "SELECT last_seq FROM conversations"), 4);
    CHECK_EQ_INT(raw_int(raw, "SELECT updated_at FROM conversations"), 1004);
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM messages"), 4);
    sqlite3_close(raw);

    /* A rolled-back batch of short-way sends leaves nothing, and the seqs are reused. */
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(send_to(db, "alice", "bob", "r1", 1010, &op), STORE_OK);
    CHECK_EQ_INT(op.msg.seq, 5);
    CHECK_EQ_INT(send_to(db, "bob", "alice", "r2", 1011, &op), STORE_OK);
    CHECK_EQ_INT(op.msg.seq, 6);
    store_sqlite_rollback(db);
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(send_to(db, "bob", "alice", "r2", 1012, &op), STORE_OK);
    CHECK_EQ_INT(op.msg.seq, 5);
    CHECK(!op.duplicate);
    CHECK_EQ_INT(send_to(db, "alice", "bob", NULL, 1013, &op), STORE_OK);
    CHECK_EQ_INT(op.msg.seq, 6);
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
    CHECK_EQ_INT(conv_last_seq(db, conv, &updated), 6);
    CHECK_EQ_INT(updated, 1013);

    /* Outside a batch every send takes the long way and agrees with the cache. */
    CHECK_EQ_INT(send_to(db, "alice", "bob", NULL, 1020, &op), STORE_OK);
    CHECK_EQ_INT(op.msg.seq, 7);
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(send_to(db, "bob", "alice", NULL, 1021, &op), STORE_OK);
    CHECK_EQ_INT(op.msg.seq, 8);
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);

    /* Groups: members take the short way, someone who is not one is refused. */
    store_arena_t ar = arena();
    str_t parts[] = {STR_LIT("bob"), STR_LIT("carol")};
    store_group_create_t g = {.creator = STR_LIT("alice"), .participants = parts, .count = 2};
    CHECK_EQ_INT(store_sqlite_group_create(db, &g, &ar, 1000), STORE_OK);
    char group[ID_SIZE];
    memcpy(group, g.conv.id, ID_SIZE);
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(send_at(db, group, "alice", "g1", 1030, &op), STORE_OK);
    CHECK_EQ_INT(send_at(db, group, "carol", "g2", 1031, &op), STORE_OK);
    CHECK_EQ_INT(op.msg.seq, 2);
    CHECK(op.msg.recipient.ptr == NULL);
    CHECK_EQ_INT(send_at(db, group, "mallory", "g3", 1032, &op), STORE_E_FORBIDDEN);
    CHECK_EQ_INT(send_at(db, group, "bob", "g4", 1033, &op), STORE_OK);
    CHECK_EQ_INT(op.msg.seq, 3);
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
    CHECK_EQ_INT(conv_last_seq(db, group, NULL), 3);
    store_sqlite_close(db);
}

static int block_set(store_sqlite_t *db, const char *blocker, const char *blocked, bool on)
{
    store_block_set_t b = {.blocker = str_cstr(blocker), .blocked = str_cstr(blocked), .on = on};
    return store_sqlite_block_set(db, &b, 3000);
}

/* The writer's block filter (store_sqlite_blocks.c) answers "no block" without a query only
 * while that is true: a block written in the same batch, by another connection between
 * batches, or among thousands of others (bits shared by hashing) still refuses the send. */
static void test_block_filter(void)
{
    char path[128];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    store_message_insert_t op;
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(send_to(db, "alice", "bob", NULL, 1000, &op), STORE_OK);
    CHECK_EQ_INT(send_to(db, "carol", "dave", NULL, 1000, &op), STORE_OK);
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);

    /* In one batch: the short way sends, then a block, then the same send is refused. */
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(send_to(db, "alice", "bob", NULL, 1001, &op), STORE_OK);
    CHECK_EQ_INT(block_set(db, "bob", "alice", true), STORE_OK);
    CHECK_EQ_INT(send_to(db, "alice", "bob", NULL, 1002, &op), STORE_E_BLOCKED);
    CHECK_EQ_INT(send_to(db, "bob", "alice", NULL, 1002, &op), STORE_E_BLOCKED);
    CHECK_EQ_INT(send_to(db, "carol", "dave", NULL, 1002, &op), STORE_OK);
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
    /* Unblocked: the bits stay set, the query answers. */
    CHECK_EQ_INT(block_set(db, "bob", "alice", false), STORE_OK);
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(send_to(db, "alice", "bob", NULL, 1003, &op), STORE_OK);
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);

    /* A block written by another connection between batches, and outside a batch. */
    sqlite3 *raw = raw_open(path);
    CHECK_EQ_INT(sqlite3_exec(raw,
                              "INSERT INTO blocks (blocker, blocked, created_at)"
                              " VALUES ('dave', 'carol', 1)",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(send_to(db, "carol", "dave", NULL, 1004, &op), STORE_E_BLOCKED);
    CHECK_EQ_INT(send_to(db, "alice", "bob", NULL, 1004, &op), STORE_OK);
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
    CHECK_EQ_INT(sqlite3_exec(raw,
                              "INSERT INTO blocks (blocker, blocked, created_at)"
                              " VALUES ('alice', 'bob', 1)",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    CHECK_EQ_INT(send_to(db, "bob", "alice", NULL, 1005, &op), STORE_E_BLOCKED);
    CHECK_EQ_INT(sqlite3_exec(raw, "DELETE FROM blocks", NULL, NULL, NULL), SQLITE_OK);

    /* Thousands of users in blocks: every pair still gets the right answer. */
    CHECK_EQ_INT(sqlite3_exec(raw,
                              "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                              " WHERE i < 20000) INSERT INTO blocks (blocker, blocked, created_at)"
                              " SELECT 'u' || i, 'v' || i, 1 FROM n",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(raw);
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(send_to(db, "u17", "v17", NULL, 1006, &op), STORE_E_BLOCKED);
    CHECK_EQ_INT(send_to(db, "u17", "v18", NULL, 1006, &op), STORE_OK);
    CHECK_EQ_INT(send_to(db, "carol", "dave", NULL, 1006, &op), STORE_OK);
    CHECK_EQ_INT(send_to(db, "alice", "bob", NULL, 1006, &op), STORE_OK);
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
    store_sqlite_close(db);

    /* Reopened: built from the table. */
    char err[256];
    CHECK_EQ_INT(store_sqlite_open(path, 0, &db, err, sizeof err), STORE_OK);
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(send_to(db, "v20000", "u20000", NULL, 1007, &op), STORE_E_BLOCKED);
    CHECK_EQ_INT(send_to(db, "u19999", "v19998", NULL, 1007, &op), STORE_OK);
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
    store_sqlite_close(db);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    CHECK(in && out);
    char buf[65536];
    size_t n;
    while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0) CHECK(fwrite(buf, 1, n, out) == n);
    if (in) fclose(in);
    if (out) fclose(out);
}

/* The messages in a copy of the database and its WAL taken while the writer is still open: what
 * a crash at that moment would leave. */
static int64_t crash_copy_count(const char *path)
{
    char from[200], to[200], copy[160];
    snprintf(copy, sizeof copy, "%s.crash", path);
    copy_file(path, copy);
    snprintf(from, sizeof from, "%s-wal", path);
    snprintf(to, sizeof to, "%s-wal", copy);
    copy_file(from, to);
    snprintf(to, sizeof to, "%s-shm", copy);
    unlink(to);
    sqlite3 *raw = raw_open(copy);
    int64_t n = raw_int(raw, "SELECT count(*) FROM messages");
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM pragma_integrity_check WHERE"
                              " integrity_check <> 'ok'"),
                 0);
    sqlite3_close(raw);
    unlink(copy);
    unlink(to);
    snprintf(to, sizeof to, "%s-wal", copy);
    unlink(to);
    return n;
}

/* The writer's WAL writes are gathered (store_sqlite_vfs.c): every commit is in the WAL file
 * when it returns, for one message and for a batch larger than the gathering buffer. */
static void test_wal_gathered_writes(void)
{
    char path[128];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    store_message_insert_t op;
    for (int i = 1; i <= 20; i++) {
        CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
        CHECK_EQ_INT(send_to(db, "alice", "bob", NULL, 1000 + i, &op), STORE_OK);
        CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
        if (i % 5 == 0) CHECK_EQ_INT(crash_copy_count(path), i);
    }
    static char big[2000];
    memset(big, 'x', sizeof big - 1);
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    for (int i = 0; i < 2000; i++) { /* ~4 MiB of pages, several times the buffer */
        store_arena_t ar = arena();
        memset(&op, 0, sizeof op);
        op.sender = STR_LIT("alice");
        op.recipient = str_cstr(i % 2 ? "bob" : "carol");
        op.content = str_cstr(big);
        CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 2000), STORE_OK);
    }
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
    CHECK_EQ_INT(crash_copy_count(path), 2020);
    /* A rolled-back batch leaves nothing behind, and the next commit is whole. */
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(send_to(db, "alice", "bob", NULL, 3000, &op), STORE_OK);
    store_sqlite_rollback(db);
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(send_to(db, "bob", "alice", NULL, 3001, &op), STORE_OK);
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
    CHECK_EQ_INT(crash_copy_count(path), 2021);
    store_sqlite_close(db);
    sqlite3 *raw = raw_open(path);
    CHECK_EQ_INT(raw_int(raw, "SELECT count(*) FROM messages"), 2021);
    sqlite3_close(raw);
}

/* The contacts of `user` in `mode`, joined with commas, into out. */
static const char *contacts_of(store_sqlite_t *db, const char *user, store_contacts_mode_t mode,
                               char *out, size_t cap)
{
    store_arena_t ar = arena();
    store_contacts_t c = {.user = str_cstr(user), .mode = mode};
    out[0] = '\0';
    CHECK_EQ_INT(store_sqlite_contacts(db, &c, &ar), STORE_OK);
    size_t n = 0;
    for (size_t i = 0; i < c.count && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s", i ? "," : "", (int)c.user_ids[i].len,
                              c.user_ids[i].ptr);
    return out;
}

static void cleanup_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

#ifdef __linux__
/* The nice value of this process's thread named name (-100: none found). */
static int thread_nice(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    int nice = -100;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[300], buf[512];
        snprintf(p, sizeof p, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f) continue;
        bool match = fgets(buf, sizeof buf, f) && strncmp(buf, name, strlen(name)) == 0;
        fclose(f);
        if (!match) continue;
        snprintf(p, sizeof p, "/proc/self/task/%s/stat", e->d_name);
        if (!(f = fopen(p, "r"))) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* after "(comm) ": state and 15 more fields, then priority and nice */
        char *q = strrchr(buf, ')');
        int field = 2;
        for (; q && *q && field < 19; q++)
            if (*q == ' ') field++;
        if (q) nice = atoi(q);
    }
    if (d) closedir(d);
    return nice;
}
#endif

/* The checkpoint thread runs at a lower priority than the rest (nice + 10): on a core shared
 * with the loop and the writer, its copies took an equal share from them. */
static void test_checkpointer_priority(void)
{
#ifdef __linux__
    char path[PATH_MAX];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    int want = getpriority(PRIO_PROCESS, 0) + 10;
    if (want > 19) want = 19;
    int nice = -100;
    for (int i = 0; i < 200 && (nice = thread_nice("store-ckpt")) < want; i++) usleep(5000);
    CHECK_EQ_INT(nice, want);
    store_sqlite_close(db);
#endif
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/parlor_store_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_open_fresh);
    RUN(test_open_newer_refused);
    RUN(test_migrate_from_v1);
    RUN(test_migration_is_atomic);
    RUN(test_migrate_fts_columnsize);
    RUN(test_batch_savepoints);
    RUN(test_batch_cached_sends);
    RUN(test_cached_bump_renumbered);
    RUN(test_block_filter);
    RUN(test_wal_gathered_writes);
    RUN(test_checkpointer_priority);
    cleanup_tmpdir();
    return UNIT_DONE();
}
