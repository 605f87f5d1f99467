/* Tests for the synchronous SQLite engine: every operation on real database files, conflicts,
 * pagination edges, idempotency, watermarks, migrations. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void upsert(store_sqlite_t *db, const char *id, const char *name)
{
    store_user_upsert_t op = {
        .id = str_cstr(id), .name = str_cstr(name), .role = STR_LIT("tenant")};
    CHECK_EQ_INT(store_sqlite_user_upsert(db, &op, 1000), STORE_OK);
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

/* ---- Users and accounts ---------------------------------------------------------------- */

static void test_users(void)
{
    char path[128];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    store_user_upsert_t up = {
        .id = STR_LIT("u-1"), .name = STR_LIT("Una"), .role = STR_LIT("owner")};
    CHECK_EQ_INT(store_sqlite_user_upsert(db, &up, 1000), STORE_OK);
    /* A token without name/role keeps what is stored. */
    up = (store_user_upsert_t){.id = STR_LIT("u-1"), .name = STR_NULL, .role = STR_LIT("")};
    CHECK_EQ_INT(store_sqlite_user_upsert(db, &up, 2000), STORE_OK);
    up = (store_user_upsert_t){.id = STR_LIT("u_2"), .name = STR_LIT("Duo"), .role = STR_NULL};
    CHECK_EQ_INT(store_sqlite_user_upsert(db, &up, 3000), STORE_OK);

    /* Ids: 1-64 of [A-Za-z0-9_-]. */
    char long_id[66];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    const char *bad[] = {"", "a b", "a|b", "é", "a/b", long_id};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        up = (store_user_upsert_t){.id = str_cstr(bad[i]), .name = STR_NULL, .role = STR_NULL};
        CHECK_EQ_INT(store_sqlite_user_upsert(db, &up, 1), STORE_E_INVALID);
    }
    up = (store_user_upsert_t){.id = str_make(long_id, 64), .name = STR_NULL, .role = STR_NULL};
    CHECK_EQ_INT(store_sqlite_user_upsert(db, &up, 1), STORE_OK);
    char long_name[STORE_NAME_MAX + 2];
    memset(long_name, 'n', sizeof long_name);
    up = (store_user_upsert_t){
        .id = STR_LIT("u-1"), .name = str_make(long_name, STORE_NAME_MAX + 1), .role = STR_NULL};
    CHECK_EQ_INT(store_sqlite_user_upsert(db, &up, 1), STORE_E_INVALID);

    /* last_seen only moves forward; unknown users are created. */
    store_user_seen_t seen = {.id = STR_LIT("u-1"), .last_seen = 5000};
    CHECK_EQ_INT(store_sqlite_user_seen(db, &seen), STORE_OK);
    seen.last_seen = 4000;
    CHECK_EQ_INT(store_sqlite_user_seen(db, &seen), STORE_OK);
    seen = (store_user_seen_t){.id = STR_LIT("ghost"), .last_seen = 7000};
    CHECK_EQ_INT(store_sqlite_user_seen(db, &seen), STORE_OK);
    seen.last_seen = -1;
    CHECK_EQ_INT(store_sqlite_user_seen(db, &seen), STORE_E_INVALID);

    str_t ids[] = {STR_LIT("u_2"), STR_LIT("nobody"), STR_LIT("u-1"), STR_LIT("ghost")};
    store_users_get_t get = {.ids = ids, .count = 4};
    store_arena_t ar = arena();
    CHECK_EQ_INT(store_sqlite_users_get(db, &get, &ar), STORE_OK);
    CHECK_EQ_INT(get.found, 3);
    if (get.found == 3) {
        CHECK_MEM(get.users[0].id.ptr, get.users[0].id.len, "u_2");
        CHECK_MEM(get.users[0].name.ptr, get.users[0].name.len, "Duo");
        CHECK(get.users[0].role.ptr == NULL);
        CHECK_EQ_INT(get.users[0].created_at, 3000);
        CHECK_MEM(get.users[1].id.ptr, get.users[1].id.len, "u-1");
        CHECK_MEM(get.users[1].name.ptr, get.users[1].name.len, "Una");
        CHECK_MEM(get.users[1].role.ptr, get.users[1].role.len, "owner");
        CHECK_EQ_INT(get.users[1].last_seen, 5000);
        CHECK(get.users[1].password_hash.ptr == NULL);
        CHECK_MEM(get.users[2].id.ptr, get.users[2].id.len, "ghost");
        CHECK_EQ_INT(get.users[2].last_seen, 7000);
        CHECK(get.users[2].name.ptr == NULL);
    }
    str_t bad_ids[] = {STR_LIT("ok"), STR_LIT("not ok")};
    get = (store_users_get_t){.ids = bad_ids, .count = 2};
    CHECK_EQ_INT(store_sqlite_users_get(db, &get, &ar), STORE_E_INVALID);
    get = (store_users_get_t){.ids = ids, .count = STORE_IDS_MAX + 1};
    CHECK_EQ_INT(store_sqlite_users_get(db, &get, &ar), STORE_E_INVALID);
    get = (store_users_get_t){.ids = NULL, .count = 0};
    CHECK_EQ_INT(store_sqlite_users_get(db, &get, &ar), STORE_OK);
    CHECK_EQ_INT(get.found, 0);
    /* Results that need memory but get none. */
    store_arena_t none = {0};
    get = (store_users_get_t){.ids = ids, .count = 1};
    CHECK_EQ_INT(store_sqlite_users_get(db, &get, &none), STORE_E_NOSPACE);
    store_sqlite_close(db);
}

static void test_accounts(void)
{
    char path[128];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    store_account_create_t ac = {.username = STR_LIT("Alice"),
                                 .password_hash = STR_LIT("$argon2id$v=19$hash"),
                                 .name = STR_LIT("Alice A."),
                                 .role = STR_LIT("tenant")};
    CHECK_EQ_INT(store_sqlite_account_create(db, &ac, 1000), STORE_OK);
    CHECK(id_valid(str_cstr(ac.id)));
    char alice[ID_SIZE];
    memcpy(alice, ac.id, ID_SIZE);

    /* Usernames are unique case-insensitively. */
    store_account_create_t dup = {.username = STR_LIT("alice"),
                                  .password_hash = STR_LIT("h2"),
                                  .name = STR_NULL,
                                  .role = STR_NULL};
    CHECK_EQ_INT(store_sqlite_account_create(db, &dup, 1000), STORE_E_CONFLICT);
    CHECK_EQ_INT(dup.id[0], '\0');
    dup.username = STR_LIT("ALICE");
    CHECK_EQ_INT(store_sqlite_account_create(db, &dup, 1000), STORE_E_CONFLICT);

    store_account_create_t bad = {
        .username = STR_LIT(""), .password_hash = STR_LIT("h"), .name = STR_NULL, .role = STR_NULL};
    CHECK_EQ_INT(store_sqlite_account_create(db, &bad, 1), STORE_E_INVALID);
    bad = (store_account_create_t){
        .username = STR_LIT("x"), .password_hash = STR_NULL, .name = STR_NULL, .role = STR_NULL};
    CHECK_EQ_INT(store_sqlite_account_create(db, &bad, 1), STORE_E_INVALID);
    bad = (store_account_create_t){.username = STR_LIT("x"),
                                   .password_hash = STR_LIT("h"),
                                   .name = STR_NULL,
                                   .role = STR_LIT("a-role-name-that-is-far-too-long-to-keep")};
    CHECK_EQ_INT(store_sqlite_account_create(db, &bad, 1), STORE_E_INVALID);

    store_arena_t ar = arena();
    store_account_get_t get = {.username = STR_LIT("aLiCe")};
    CHECK_EQ_INT(store_sqlite_account_get(db, &get, &ar), STORE_OK);
    CHECK_MEM(get.user.id.ptr, get.user.id.len, alice);
    CHECK_MEM(get.user.username.ptr, get.user.username.len, "Alice");
    CHECK_MEM(get.user.password_hash.ptr, get.user.password_hash.len, "$argon2id$v=19$hash");
    CHECK_MEM(get.user.name.ptr, get.user.name.len, "Alice A.");
    CHECK_MEM(get.user.role.ptr, get.user.role.len, "tenant");
    CHECK_EQ_INT(get.user.created_at, 1000);
    get.username = STR_LIT("nobody");
    CHECK_EQ_INT(store_sqlite_account_get(db, &get, &ar), STORE_E_NOT_FOUND);
    get.username = STR_NULL;
    CHECK_EQ_INT(store_sqlite_account_get(db, &get, &ar), STORE_E_INVALID);

    /* An account is a user: it can be upserted from its own token. */
    store_user_upsert_t up = {.id = str_cstr(alice), .name = STR_NULL, .role = STR_LIT("owner")};
    CHECK_EQ_INT(store_sqlite_user_upsert(db, &up, 2000), STORE_OK);
    get.username = STR_LIT("alice");
    CHECK_EQ_INT(store_sqlite_account_get(db, &get, &ar), STORE_OK);
    CHECK_MEM(get.user.role.ptr, get.user.role.len, "owner");
    CHECK_MEM(get.user.name.ptr, get.user.name.len, "Alice A.");
    store_sqlite_close(db);
}

static void test_users_search(void)
{
    char path[128];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    const char *names[] = {"alice", "Alicia", "bob", "Albert", "al", "alz", "al{"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        store_account_create_t ac = {.username = str_cstr(names[i]),
                                     .password_hash = STR_LIT("h"),
                                     .name = STR_NULL,
                                     .role = STR_NULL};
        CHECK_EQ_INT(store_sqlite_account_create(db, &ac, 1000), STORE_OK);
    }
    upsert(db, "alfred", "Not an account");
    store_arena_t ar = arena();
    store_users_search_t s = {.prefix = STR_LIT("AL"), .limit = 10};
    CHECK_EQ_INT(store_sqlite_users_search(db, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 6);
    if (s.count == 6) {
        CHECK_MEM(s.users[0].username.ptr, s.users[0].username.len, "al");
        CHECK_MEM(s.users[1].username.ptr, s.users[1].username.len, "Albert");
        CHECK_MEM(s.users[2].username.ptr, s.users[2].username.len, "alice");
        CHECK_MEM(s.users[3].username.ptr, s.users[3].username.len, "Alicia");
        CHECK_MEM(s.users[4].username.ptr, s.users[4].username.len, "alz");
        CHECK_MEM(s.users[5].username.ptr, s.users[5].username.len, "al{");
        CHECK(s.users[0].password_hash.ptr == NULL);
    }
    s = (store_users_search_t){.prefix = STR_LIT("ali"), .limit = 1};
    CHECK_EQ_INT(store_sqlite_users_search(db, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 1);
    CHECK_MEM(s.users[0].username.ptr, s.users[0].username.len, "alice");
    s = (store_users_search_t){.prefix = STR_LIT("alz"), .limit = 0};
    CHECK_EQ_INT(store_sqlite_users_search(db, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 1);
    s = (store_users_search_t){.prefix = STR_LIT("zz"), .limit = 5};
    CHECK_EQ_INT(store_sqlite_users_search(db, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 0);
    s = (store_users_search_t){.prefix = str_make("\xff\xff", 2), .limit = 5};
    CHECK_EQ_INT(store_sqlite_users_search(db, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 0);
    s = (store_users_search_t){.prefix = STR_LIT(""), .limit = 5};
    CHECK_EQ_INT(store_sqlite_users_search(db, &s, &ar), STORE_E_INVALID);
    /* A too-small arena cuts the list short, unless not even one fits. */
    char small[2 * sizeof(store_user_t) + 40];
    store_arena_t sa = {small, sizeof small, 0, 0};
    s = (store_users_search_t){.prefix = STR_LIT("al"), .limit = 10};
    CHECK_EQ_INT(store_sqlite_users_search(db, &s, &sa), STORE_OK);
    CHECK(s.count >= 1 && s.count < 6);
    store_arena_t none = {0};
    CHECK_EQ_INT(store_sqlite_users_search(db, &s, &none), STORE_E_NOSPACE);
    store_sqlite_close(db);
}

/* ---- Conversations --------------------------------------------------------------------- */

static void test_direct_open(void)
{
    char path[128];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    upsert(db, "alice", "Alice");
    store_arena_t ar = arena();
    store_direct_open_t op = {.user = STR_LIT("alice"), .other = STR_LIT("bob")};
    CHECK_EQ_INT(store_sqlite_direct_open(db, &op, &ar, 1000), STORE_OK);
    CHECK(op.created);
    CHECK(id_valid(str_cstr(op.conv.id)));
    CHECK_EQ_INT(op.conv.type, STORE_CONV_DIRECT);
    CHECK(op.conv.title.ptr == NULL);
    CHECK_EQ_INT(op.conv.member_count, 2);
    CHECK_EQ_INT(op.conv.last_seq, 0);
    CHECK(op.conv.last_message == NULL);
    CHECK_EQ_INT(op.conv.created_at, 1000);
    CHECK_EQ_INT(op.conv.updated_at, 1000);
    char id[ID_SIZE];
    memcpy(id, op.conv.id, ID_SIZE);

    /* Found, not created, from either side. */
    store_direct_open_t again = {.user = STR_LIT("bob"), .other = STR_LIT("alice")};
    CHECK_EQ_INT(store_sqlite_direct_open(db, &again, &ar, 2000), STORE_OK);
    CHECK(!again.created);
    CHECK(strcmp(again.conv.id, id) == 0);
    CHECK_EQ_INT(again.conv.created_at, 1000);

    /* bob had no user row: one was made so that membership can reference it. */
    str_t bob = STR_LIT("bob");
    store_users_get_t get = {.ids = &bob, .count = 1};
    CHECK_EQ_INT(store_sqlite_users_get(db, &get, &ar), STORE_OK);
    CHECK_EQ_INT(get.found, 1);

    /* Prefix-related ids get distinct conversations. */
    store_direct_open_t other = {.user = STR_LIT("alice"), .other = STR_LIT("bobby")};
    CHECK_EQ_INT(store_sqlite_direct_open(db, &other, &ar, 3000), STORE_OK);
    CHECK(other.created);
    CHECK(strcmp(other.conv.id, id) != 0);

    store_direct_open_t self = {.user = STR_LIT("alice"), .other = STR_LIT("alice")};
    CHECK_EQ_INT(store_sqlite_direct_open(db, &self, &ar, 1), STORE_E_INVALID);
    store_direct_open_t bad = {.user = STR_LIT("alice"), .other = STR_LIT("a|b")};
    CHECK_EQ_INT(store_sqlite_direct_open(db, &bad, &ar, 1), STORE_E_INVALID);
    store_sqlite_close(db);
}

static void test_group_create(void)
{
    char path[128];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    store_arena_t ar = arena();
    str_t parts[] = {STR_LIT("bob"), STR_LIT("carol"), STR_LIT("bob"), STR_LIT("alice")};
    store_group_create_t g = {.creator = STR_LIT("alice"),
                              .participants = parts,
                              .count = 4,
                              .title = STR_LIT("Flat 4B")};
    CHECK_EQ_INT(store_sqlite_group_create(db, &g, &ar, 1000), STORE_OK);
    CHECK_EQ_INT(g.conv.type, STORE_CONV_GROUP);
    CHECK_EQ_INT(g.conv.member_count, 3);
    CHECK_MEM(g.conv.title.ptr, g.conv.title.len, "Flat 4B");
    int seen = 0;
    for (size_t i = 0; i < g.conv.member_count; i++) {
        str_t u = g.conv.members[i].user_id;
        seen |= str_eq_cstr(u, "alice")   ? 1
                : str_eq_cstr(u, "bob")   ? 2
                : str_eq_cstr(u, "carol") ? 4
                                          : 8;
        CHECK_EQ_INT(g.conv.members[i].read_seq, 0);
        CHECK_EQ_INT(g.conv.members[i].joined_at, 1000);
    }
    CHECK_EQ_INT(seen, 7);

    /* Two groups of the same people are two conversations. */
    store_group_create_t g2 = {
        .creator = STR_LIT("alice"), .participants = parts, .count = 2, .title = STR_NULL};
    CHECK_EQ_INT(store_sqlite_group_create(db, &g2, &ar, 1000), STORE_OK);
    CHECK(g2.conv.title.ptr == NULL);
    CHECK(strcmp(g2.conv.id, g.conv.id) != 0);

    store_group_create_t alone = {
        .creator = STR_LIT("alice"), .participants = parts + 3, .count = 1, .title = STR_NULL};
    CHECK_EQ_INT(store_sqlite_group_create(db, &alone, &ar, 1), STORE_E_INVALID);
    alone = (store_group_create_t){
        .creator = STR_LIT("alice"), .participants = NULL, .count = 0, .title = STR_NULL};
    CHECK_EQ_INT(store_sqlite_group_create(db, &alone, &ar, 1), STORE_E_INVALID);
    str_t badp[] = {STR_LIT("ok"), STR_LIT("no way")};
    store_group_create_t bad = {
        .creator = STR_LIT("alice"), .participants = badp, .count = 2, .title = STR_NULL};
    CHECK_EQ_INT(store_sqlite_group_create(db, &bad, &ar, 1), STORE_E_INVALID);

    /* STORE_GROUP_MAX members in all, creator included. */
    static char names[STORE_GROUP_MAX][16];
    static str_t many[STORE_GROUP_MAX];
    for (int i = 0; i < STORE_GROUP_MAX; i++) {
        snprintf(names[i], sizeof names[i], "m%d", i);
        many[i] = str_cstr(names[i]);
    }
    store_group_create_t big = {.creator = STR_LIT("alice"),
                                .participants = many,
                                .count = STORE_GROUP_MAX,
                                .title = STR_NULL};
    CHECK_EQ_INT(store_sqlite_group_create(db, &big, &ar, 1), STORE_E_INVALID);
    big.count = STORE_GROUP_MAX - 1;
    CHECK_EQ_INT(store_sqlite_group_create(db, &big, &ar, 1), STORE_OK);
    CHECK_EQ_INT(big.conv.member_count, STORE_GROUP_MAX);
    char title[STORE_NAME_MAX + 1];
    memset(title, 't', sizeof title);
    bad = (store_group_create_t){.creator = STR_LIT("alice"),
                                 .participants = parts,
                                 .count = 1,
                                 .title = str_make(title, sizeof title)};
    CHECK_EQ_INT(store_sqlite_group_create(db, &bad, &ar, 1), STORE_E_INVALID);

    /* conversation_get: members only when a requester is given. */
    store_conversation_get_t cg = {.id = str_cstr(g.conv.id), .requester = STR_LIT("carol")};
    CHECK_EQ_INT(store_sqlite_conversation_get(db, &cg, &ar), STORE_OK);
    CHECK_EQ_INT(cg.conv.member_count, 3);
    cg.requester = STR_LIT("mallory");
    CHECK_EQ_INT(store_sqlite_conversation_get(db, &cg, &ar), STORE_E_FORBIDDEN);
    cg.requester = STR_NULL;
    CHECK_EQ_INT(store_sqlite_conversation_get(db, &cg, &ar), STORE_OK);
    CHECK_EQ_INT(cg.conv.unread_count, 0);
    cg.id = STR_LIT("65a0000000000000000000ff");
    CHECK_EQ_INT(store_sqlite_conversation_get(db, &cg, &ar), STORE_E_NOT_FOUND);
    cg.id = STR_LIT("nope");
    CHECK_EQ_INT(store_sqlite_conversation_get(db, &cg, &ar), STORE_E_INVALID);
    store_sqlite_close(db);
}

/* ---- Messages -------------------------------------------------------------------------- */

static void test_message_insert(void)
{
    char path[128];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    store_arena_t ar = arena();
    store_message_insert_t op = {.sender = STR_LIT("alice"),
                                 .recipient = STR_LIT("bob"),
                                 .content = STR_LIT("hi bob"),
                                 .type = STORE_MSG_TEXT};
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 5000), STORE_OK);
    CHECK(op.conversation_created);
    CHECK(!op.duplicate);
    CHECK_EQ_INT(op.msg.seq, 1);
    CHECK(op.msg.pos > 0);
    CHECK(id_valid(str_cstr(op.msg.id)));
    CHECK(id_valid(str_cstr(op.msg.conversation_id)));
    CHECK_MEM(op.msg.sender.ptr, op.msg.sender.len, "alice");
    CHECK_MEM(op.msg.recipient.ptr, op.msg.recipient.len, "bob");
    CHECK_MEM(op.msg.content.ptr, op.msg.content.len, "hi bob");
    CHECK(op.msg.client_msg_id.ptr == NULL);
    CHECK(op.msg.file == NULL);
    CHECK_EQ_INT(op.msg.read_at, 0);
    CHECK_EQ_INT(op.msg.created_at, 5000);
    CHECK_EQ_INT(op.msg.updated_at, 5000);
    char conv[ID_SIZE];
    memcpy(conv, op.msg.conversation_id, ID_SIZE);
    int64_t pos1 = op.msg.pos;

    /* Reply by recipient id finds the same conversation. */
    op = (store_message_insert_t){.sender = STR_LIT("bob"),
                                  .recipient = STR_LIT("alice"),
                                  .content = STR_LIT("hey"),
                                  .type = STORE_MSG_TEXT};
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 6000), STORE_OK);
    CHECK(!op.conversation_created);
    CHECK(strcmp(op.msg.conversation_id, conv) == 0);
    CHECK_EQ_INT(op.msg.seq, 2);
    CHECK(op.msg.pos > pos1);
    CHECK_MEM(op.msg.recipient.ptr, op.msg.recipient.len, "alice");
    CHECK_EQ_INT(send(db, conv, "alice", "third"), 3);

    /* Content may hold NUL bytes and be empty. */
    op = (store_message_insert_t){.sender = STR_LIT("alice"),
                                  .conversation_id = str_cstr(conv),
                                  .content = str_make("a\0b", 3),
                                  .type = STORE_MSG_TEXT};
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 6500), STORE_OK);
    CHECK_EQ_INT(op.msg.content.len, 3);
    CHECK(memcmp(op.msg.content.ptr, "a\0b", 3) == 0);
    op.content = STR_LIT("");
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 6500), STORE_OK);
    CHECK_EQ_INT(op.msg.content.len, 0);

    /* The conversation moved: last_seq and updated_at. */
    store_conversation_get_t cg = {.id = str_cstr(conv), .requester = STR_LIT("bob")};
    CHECK_EQ_INT(store_sqlite_conversation_get(db, &cg, &ar), STORE_OK);
    CHECK_EQ_INT(cg.conv.last_seq, 5);
    CHECK_EQ_INT(cg.conv.updated_at, 6500);
    CHECK(cg.conv.last_message != NULL);
    if (cg.conv.last_message) CHECK_EQ_INT(cg.conv.last_message->seq, 5);
    CHECK_EQ_INT(cg.conv.unread_count, 4); /* alice's 1, 3, 4, 5 */

    /* Groups: no recipient. */
    str_t parts[] = {STR_LIT("bob")};
    store_group_create_t g = {
        .creator = STR_LIT("alice"), .participants = parts, .count = 1, .title = STR_LIT("g")};
    CHECK_EQ_INT(store_sqlite_group_create(db, &g, &ar, 1000), STORE_OK);
    char group[ID_SIZE];
    memcpy(group, g.conv.id, ID_SIZE);
    CHECK_EQ_INT(send_at(db, group, "bob", "to all", 7000, &op), STORE_OK);
    CHECK_EQ_INT(op.msg.seq, 1);
    CHECK(op.msg.recipient.ptr == NULL);

    /* Refusals. */
    CHECK_EQ_INT(send_at(db, group, "mallory", "x", 1, &op), STORE_E_FORBIDDEN);
    CHECK_EQ_INT(send_at(db, "65a0000000000000000000ff", "bob", "x", 1, &op), STORE_E_NOT_FOUND);
    CHECK_EQ_INT(send_at(db, "65A0000000000000000000FF", "bob", "x", 1, &op), STORE_E_INVALID);
    CHECK_EQ_INT(send_at(db, group, "bad id", "x", 1, &op), STORE_E_INVALID);
    op = (store_message_insert_t){.sender = STR_LIT("alice"), .content = STR_LIT("x")};
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 1), STORE_E_INVALID); /* no target */
    op.conversation_id = str_cstr(group);
    op.recipient = STR_LIT("bob");
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 1), STORE_E_INVALID); /* both */
    op.conversation_id = STR_NULL;
    op.recipient = STR_LIT("alice");
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 1), STORE_E_INVALID); /* to self */
    op.recipient = STR_LIT("bob");
    op.type = (store_msg_type_t)7;
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 1), STORE_E_INVALID);
    op.type = STORE_MSG_TEXT;
    op.content = STR_NULL;
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 1), STORE_E_INVALID);
    static char big[STORE_CONTENT_MAX + 1];
    op.content = str_make(big, sizeof big);
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 1), STORE_E_INVALID);
    op.content = str_make(big, STORE_CONTENT_MAX);
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 1), STORE_OK);
    CHECK_EQ_INT(op.msg.content.len, STORE_CONTENT_MAX);
    op.content = STR_LIT("x");
    op.file_id = STR_LIT("zz");
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 1), STORE_E_INVALID);
    char cmid[STORE_CLIENT_MSG_ID_MAX + 1];
    memset(cmid, 'c', sizeof cmid);
    op.file_id = STR_NULL;
    op.client_msg_id = str_make(cmid, sizeof cmid);
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 1), STORE_E_INVALID);

    /* Failed sends left the sequence alone. */
    CHECK_EQ_INT(send(db, group, "alice", "next"), 2);
    /* The sent output needs an arena; without one the send fails and stores nothing. */
    store_arena_t none = {0};
    op = (store_message_insert_t){.sender = STR_LIT("alice"),
                                  .conversation_id = str_cstr(group),
                                  .content = STR_LIT("lost"),
                                  .type = STORE_MSG_TEXT};
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &none, 1), STORE_E_NOSPACE);
    CHECK_EQ_INT(send(db, group, "alice", "after"), 3);
    store_sqlite_close(db);
}

static void test_message_files(void)
{
    char path[128];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    store_arena_t ar = arena();
    store_file_insert_t fi = {{.owner = STR_LIT("alice"),
                               .name = STR_LIT("lease.pdf"),
                               .mime = STR_LIT("application/pdf"),
                               .path = STR_LIT("ab/cd"),
                               .sha256 = STR_LIT("e3b0c442"),
                               .size = 1234},
                              .quota = 0};
    CHECK_EQ_INT(store_sqlite_file_insert(db, &fi, 4000), STORE_OK);
    CHECK(id_valid(str_cstr(fi.file.id)));
    CHECK_EQ_INT(fi.file.created_at, 4000);
    {
        /* The quota counts what the owner already stored: 1234 + 1000 > 2000, 1234 + 766 not. */
        store_file_insert_t q = {{.owner = STR_LIT("alice"),
                                  .name = STR_LIT("b.pdf"),
                                  .mime = STR_LIT("application/pdf"),
                                  .path = STR_LIT("ab/ce"),
                                  .sha256 = STR_LIT("00"),
                                  .size = 1000},
                                 .quota = 2000};
        CHECK_EQ_INT(store_sqlite_file_insert(db, &q, 4001), STORE_E_QUOTA);
        q.file.size = 766;
        q.file.id[0] = '\0';
        CHECK_EQ_INT(store_sqlite_file_insert(db, &q, 4002), STORE_OK);
        q.file.size = 1;
        q.file.id[0] = '\0';
        q.file.path = STR_LIT("ab/cf");
        CHECK_EQ_INT(store_sqlite_file_insert(db, &q, 4003), STORE_E_QUOTA);
    }
    char fid[ID_SIZE];
    memcpy(fid, fi.file.id, ID_SIZE);

    /* A preset id is kept; using it twice conflicts. */
    store_file_insert_t fp = fi;
    memcpy(fp.file.id, "65a0000000000000000000f1", ID_SIZE);
    fp.file.owner = STR_LIT("carol");
    CHECK_EQ_INT(store_sqlite_file_insert(db, &fp, 4000), STORE_OK);
    CHECK(strcmp(fp.file.id, "65a0000000000000000000f1") == 0);
    CHECK_EQ_INT(store_sqlite_file_insert(db, &fp, 4000), STORE_E_CONFLICT);
    store_file_insert_t fb = fi;
    memcpy(fb.file.id, "NOT-AN-ID", 10);
    CHECK_EQ_INT(store_sqlite_file_insert(db, &fb, 1), STORE_E_INVALID);
    fb = fi;
    fb.file.id[0] = '\0';
    fb.file.size = -1;
    CHECK_EQ_INT(store_sqlite_file_insert(db, &fb, 1), STORE_E_INVALID);
    fb.file.size = 1;
    fb.file.name = STR_LIT("");
    CHECK_EQ_INT(store_sqlite_file_insert(db, &fb, 1), STORE_E_INVALID);

    /* Attaching: only the owner's own files. */
    store_message_insert_t op = {.sender = STR_LIT("alice"),
                                 .recipient = STR_LIT("bob"),
                                 .content = STR_LIT(""),
                                 .type = STORE_MSG_FILE,
                                 .file_id = str_cstr(fid)};
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 5000), STORE_OK);
    CHECK(op.msg.file != NULL);
    CHECK_EQ_INT(op.msg.type, STORE_MSG_FILE);
    if (op.msg.file) {
        CHECK(strcmp(op.msg.file->id, fid) == 0);
        CHECK_MEM(op.msg.file->name.ptr, op.msg.file->name.len, "lease.pdf");
        CHECK_MEM(op.msg.file->mime.ptr, op.msg.file->mime.len, "application/pdf");
        CHECK_EQ_INT(op.msg.file->size, 1234);
    }
    char conv[ID_SIZE];
    memcpy(conv, op.msg.conversation_id, ID_SIZE);
    op = (store_message_insert_t){.sender = STR_LIT("bob"),
                                  .conversation_id = str_cstr(conv),
                                  .content = STR_LIT(""),
                                  .type = STORE_MSG_FILE,
                                  .file_id = str_cstr(fid)};
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 5000), STORE_E_FORBIDDEN);
    /* An unknown file is refused like someone else's: nothing tells them apart. */
    op.file_id = STR_LIT("65a0000000000000000000f9");
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 5000), STORE_E_FORBIDDEN);
    /* An image message must carry an image: lease.pdf is not one. */
    op = (store_message_insert_t){.sender = STR_LIT("alice"),
                                  .conversation_id = str_cstr(conv),
                                  .content = STR_LIT(""),
                                  .type = STORE_MSG_IMAGE,
                                  .file_id = str_cstr(fid)};
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 5000), STORE_E_INVALID);

    /* Reads carry the file. */
    store_messages_page_t page = {.conversation_id = str_cstr(conv)};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &page, &ar), STORE_OK);
    CHECK_EQ_INT(page.count, 1);
    CHECK(page.count == 1 && page.msgs[0].file != NULL && page.msgs[0].type == STORE_MSG_FILE);

    /* Who may download: the owner, members of a conversation carrying it. */
    store_file_get_t fg = {.id = str_cstr(fid), .requester = STR_LIT("alice")};
    CHECK_EQ_INT(store_sqlite_file_get(db, &fg, &ar), STORE_OK);
    CHECK(fg.allowed);
    CHECK_MEM(fg.file.path.ptr, fg.file.path.len, "ab/cd");
    CHECK_MEM(fg.file.sha256.ptr, fg.file.sha256.len, "e3b0c442");
    CHECK_MEM(fg.file.owner.ptr, fg.file.owner.len, "alice");
    fg.requester = STR_LIT("bob");
    CHECK_EQ_INT(store_sqlite_file_get(db, &fg, &ar), STORE_OK);
    CHECK(fg.allowed);
    fg.requester = STR_LIT("mallory");
    CHECK_EQ_INT(store_sqlite_file_get(db, &fg, &ar), STORE_OK);
    CHECK(!fg.allowed);
    fg.requester = STR_NULL;
    CHECK_EQ_INT(store_sqlite_file_get(db, &fg, &ar), STORE_OK);
    CHECK(!fg.allowed);
    fg = (store_file_get_t){.id = STR_LIT("65a0000000000000000000f1"), .requester = STR_LIT("bob")};
    CHECK_EQ_INT(store_sqlite_file_get(db, &fg, &ar), STORE_OK);
    CHECK(!fg.allowed); /* carol's, never shared */
    fg.id = STR_LIT("65a0000000000000000000f9");
    CHECK_EQ_INT(store_sqlite_file_get(db, &fg, &ar), STORE_E_NOT_FOUND);
    fg.id = STR_LIT("x");
    CHECK_EQ_INT(store_sqlite_file_get(db, &fg, &ar), STORE_E_INVALID);
    store_sqlite_close(db);
}

static void test_idempotent_client_msg_id(void)
{
    char path[128], conv[ID_SIZE];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    direct(db, "alice", "bob", conv);
    store_arena_t ar = arena();
    store_message_insert_t op = {.sender = STR_LIT("alice"),
                                 .conversation_id = str_cstr(conv),
                                 .content = STR_LIT("once"),
                                 .type = STORE_MSG_TEXT,
                                 .client_msg_id = STR_LIT("c-1")};
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 1000), STORE_OK);
    CHECK(!op.duplicate);
    char first[ID_SIZE];
    memcpy(first, op.msg.id, ID_SIZE);
    CHECK_MEM(op.msg.client_msg_id.ptr, op.msg.client_msg_id.len, "c-1");

    /* The retry, even with other content or by recipient id, gets the stored message. */
    store_message_insert_t again = {.sender = STR_LIT("alice"),
                                    .recipient = STR_LIT("bob"),
                                    .content = STR_LIT("twice?"),
                                    .type = STORE_MSG_IMAGE,
                                    .client_msg_id = STR_LIT("c-1")};
    CHECK_EQ_INT(store_sqlite_message_insert(db, &again, &ar, 2000), STORE_OK);
    CHECK(again.duplicate);
    CHECK(!again.conversation_created);
    CHECK(strcmp(again.msg.id, first) == 0);
    CHECK_EQ_INT(again.msg.seq, 1);
    CHECK_MEM(again.msg.content.ptr, again.msg.content.len, "once");
    CHECK_EQ_INT(again.msg.type, STORE_MSG_TEXT);
    CHECK_EQ_INT(again.msg.created_at, 1000);
    CHECK_MEM(again.msg.recipient.ptr, again.msg.recipient.len, "bob");

    /* Nothing was added; the next message is seq 2. */
    CHECK_EQ_INT(send(db, conv, "alice", "next"), 2);
    /* The same clientMsgId from another sender is another message. */
    op.sender = STR_LIT("bob");
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 3000), STORE_OK);
    CHECK(!op.duplicate);
    CHECK_EQ_INT(op.msg.seq, 3);
    /* Messages without clientMsgId never collide. */
    CHECK_EQ_INT(send(db, conv, "bob", "a"), 4);
    CHECK_EQ_INT(send(db, conv, "bob", "b"), 5);
    /* An empty clientMsgId counts as none. */
    op = (store_message_insert_t){.sender = STR_LIT("bob"),
                                  .conversation_id = str_cstr(conv),
                                  .content = STR_LIT("e"),
                                  .client_msg_id = STR_LIT("")};
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 3000), STORE_OK);
    CHECK_EQ_INT(store_sqlite_message_insert(db, &op, &ar, 3000), STORE_OK);
    CHECK(!op.duplicate);
    CHECK_EQ_INT(op.msg.seq, 7);
    store_sqlite_close(db);
}

static void test_pagination(void)
{
    char path[128], conv[ID_SIZE];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    direct(db, "alice", "bob", conv);
    for (int i = 1; i <= 250; i++) {
        char text[32];
        snprintf(text, sizeof text, "message %d", i);
        if (send(db, conv, i % 3 ? "alice" : "bob", text) != i) break;
    }
    /* Newest page first, each ascending, following before = the page's first seq. */
    static int seen[251];
    memset(seen, 0, sizeof seen);
    int64_t before = 0;
    int pages = 0;
    bool more = true;
    while (more && pages < 10) {
        store_arena_t ar = arena();
        store_messages_page_t p = {.conversation_id = str_cstr(conv),
                                   .requester = STR_LIT("bob"),
                                   .before_seq = before,
                                   .limit = 50};
        CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_OK);
        CHECK_EQ_INT(p.count, 50);
        for (size_t i = 0; i < p.count; i++) {
            int64_t s = p.msgs[i].seq;
            if (s >= 1 && s <= 250) seen[s]++;
            if (i) CHECK_EQ_INT(s, p.msgs[i - 1].seq + 1);
            char text[32];
            snprintf(text, sizeof text, "message %d", (int)s);
            CHECK_MEM(p.msgs[i].content.ptr, p.msgs[i].content.len, text);
        }
        CHECK_EQ_INT(p.msgs[p.count - 1].seq, before ? before - 1 : 250);
        before = p.msgs[0].seq;
        more = p.has_more;
        pages++;
    }
    CHECK_EQ_INT(pages, 5);
    CHECK_EQ_INT(before, 1);
    int missing = 0, dups = 0;
    for (int i = 1; i <= 250; i++) {
        missing += seen[i] == 0;
        dups += seen[i] > 1;
    }
    CHECK_EQ_INT(missing, 0);
    CHECK_EQ_INT(dups, 0);

    store_arena_t ar = arena();
    /* Edges: before the first message, exactly one page left, clamped and default limits. */
    store_messages_page_t p = {.conversation_id = str_cstr(conv), .before_seq = 1, .limit = 50};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, 0);
    CHECK(!p.has_more);
    p = (store_messages_page_t){.conversation_id = str_cstr(conv), .before_seq = 51, .limit = 50};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, 50);
    CHECK(!p.has_more);
    CHECK_EQ_INT(p.msgs[0].seq, 1);
    p = (store_messages_page_t){.conversation_id = str_cstr(conv), .before_seq = 52, .limit = 50};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_OK);
    CHECK(p.has_more);
    p = (store_messages_page_t){.conversation_id = str_cstr(conv), .limit = 1000};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, STORE_PAGE_MAX);
    CHECK(p.has_more);
    p = (store_messages_page_t){.conversation_id = str_cstr(conv)};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, STORE_PAGE_DEFAULT);
    p = (store_messages_page_t){.conversation_id = str_cstr(conv), .before_seq = 1000, .limit = 3};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, 3);
    CHECK_EQ_INT(p.msgs[2].seq, 250);

    /* Access. */
    p = (store_messages_page_t){.conversation_id = str_cstr(conv), .requester = STR_LIT("eve")};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_E_FORBIDDEN);
    p = (store_messages_page_t){.conversation_id = STR_LIT("65a0000000000000000000ff")};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_E_NOT_FOUND);
    p.requester = STR_LIT("bob");
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_E_NOT_FOUND);
    p = (store_messages_page_t){.conversation_id = str_cstr(conv), .before_seq = -1};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_E_INVALID);

    /* A small arena cuts the page short (newest kept, has_more set) rather than failing. */
    static char small[4 * sizeof(store_message_t) + 256];
    store_arena_t sa = {small, sizeof small, 0, 0};
    p = (store_messages_page_t){.conversation_id = str_cstr(conv), .limit = 50};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &sa), STORE_OK);
    CHECK(p.count >= 1 && p.count < 50);
    CHECK(p.has_more);
    CHECK_EQ_INT(p.msgs[p.count - 1].seq, 250);
    CHECK_EQ_INT(p.msgs[0].seq, 251 - (int64_t)p.count);
    store_arena_t none = {0};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &none), STORE_E_NOSPACE);

    /* Recovery by seq. */
    store_messages_after_t af = {.conversation_id = str_cstr(conv),
                                 .requester = STR_LIT("alice"),
                                 .after_seq = 240,
                                 .limit = 50};
    CHECK_EQ_INT(store_sqlite_messages_after(db, &af, &ar), STORE_OK);
    CHECK_EQ_INT(af.count, 10);
    CHECK(!af.has_more);
    CHECK_EQ_INT(af.msgs[0].seq, 241);
    CHECK_EQ_INT(af.msgs[9].seq, 250);
    af = (store_messages_after_t){.conversation_id = str_cstr(conv), .after_seq = 0, .limit = 100};
    CHECK_EQ_INT(store_sqlite_messages_after(db, &af, &ar), STORE_OK);
    CHECK_EQ_INT(af.count, 100);
    CHECK(af.has_more);
    CHECK_EQ_INT(af.msgs[99].seq, 100);
    af = (store_messages_after_t){.conversation_id = str_cstr(conv), .after_seq = 250};
    CHECK_EQ_INT(store_sqlite_messages_after(db, &af, &ar), STORE_OK);
    CHECK_EQ_INT(af.count, 0);
    CHECK(!af.has_more);
    af.requester = STR_LIT("eve");
    CHECK_EQ_INT(store_sqlite_messages_after(db, &af, &ar), STORE_E_FORBIDDEN);
    af.requester = STR_NULL;
    af.after_seq = -5;
    CHECK_EQ_INT(store_sqlite_messages_after(db, &af, &ar), STORE_E_INVALID);
    store_sqlite_close(db);
}

static void test_messages_since(void)
{
    char path[128], ab[ID_SIZE], cd[ID_SIZE], ac[ID_SIZE];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    direct(db, "a", "b", ab);
    direct(db, "c", "d", cd);
    direct(db, "a", "c", ac);
    store_message_insert_t op;
    int64_t pos0 = 0;
    CHECK_EQ_INT(send_at(db, ab, "a", "ab1", 1, &op), STORE_OK);
    pos0 = op.msg.pos;
    send(db, cd, "c", "cd1");
    send(db, ac, "c", "ac1");
    send(db, ab, "b", "ab2");
    send(db, cd, "d", "cd2");
    send(db, ac, "a", "ac2");
    store_arena_t ar = arena();
    store_messages_since_t s = {.user = STR_LIT("a"), .after_pos = pos0, .limit = 10};
    CHECK_EQ_INT(store_sqlite_messages_since(db, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 3);
    const char *want[] = {"ac1", "ab2", "ac2"};
    for (size_t i = 0; i < s.count && i < 3; i++) {
        CHECK_MEM(s.msgs[i].content.ptr, s.msgs[i].content.len, want[i]);
        if (i) CHECK(s.msgs[i].pos > s.msgs[i - 1].pos);
    }
    CHECK(!s.has_more);
    s = (store_messages_since_t){.user = STR_LIT("a"), .after_pos = 0, .limit = 2};
    CHECK_EQ_INT(store_sqlite_messages_since(db, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 2);
    CHECK(s.has_more);
    CHECK_MEM(s.msgs[0].content.ptr, s.msgs[0].content.len, "ab1");
    s = (store_messages_since_t){.user = STR_LIT("nobody"), .after_pos = 0, .limit = 2};
    CHECK_EQ_INT(store_sqlite_messages_since(db, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 0);
    s = (store_messages_since_t){.user = STR_LIT("a"), .after_pos = -1, .limit = 2};
    CHECK_EQ_INT(store_sqlite_messages_since(db, &s, &ar), STORE_E_INVALID);
    store_sqlite_close(db);
}

/* ---- Read receipts --------------------------------------------------------------------- */

static int mark(store_sqlite_t *db, const char *conv, const char *user, const char *msg,
                int64_t now, store_mark_read_t *op)
{
    *op = (store_mark_read_t){
        .conversation_id = str_cstr(conv), .user = str_cstr(user), .message_id = str_cstr(msg)};
    return store_sqlite_mark_read(db, op, now);
}

static void test_mark_read(void)
{
    char path[128], conv[ID_SIZE], ids[8][ID_SIZE];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    direct(db, "alice", "bob", conv);
    store_message_insert_t op;
    /* alice 1-5, bob 6, alice 7 */
    for (int i = 1; i <= 7; i++) {
        CHECK_EQ_INT(send_at(db, conv, i == 6 ? "bob" : "alice", "m", 1000 + i, &op), STORE_OK);
        memcpy(ids[i], op.msg.id, ID_SIZE);
    }
    store_mark_read_t mr;
    CHECK_EQ_INT(mark(db, conv, "bob", ids[5], 9000, &mr), STORE_OK);
    CHECK(mr.moved);
    CHECK_EQ_INT(mr.seq, 5);
    CHECK_EQ_INT(mr.message_seq, 5);
    CHECK_EQ_INT(mr.read_at, 9000);
    CHECK_EQ_INT(mr.unread_count, 1); /* 7; 6 is bob's own */
    CHECK(strcmp(mr.conv_id, conv) == 0);

    /* Never backward. */
    CHECK_EQ_INT(mark(db, conv, "bob", ids[3], 9500, &mr), STORE_OK);
    CHECK(!mr.moved);
    CHECK_EQ_INT(mr.seq, 5);
    CHECK_EQ_INT(mr.message_seq, 3);
    CHECK_EQ_INT(mr.read_at, 9000);
    CHECK_EQ_INT(mr.unread_count, 1);
    CHECK_EQ_INT(mark(db, conv, "bob", ids[5], 9600, &mr), STORE_OK);
    CHECK(!mr.moved);
    CHECK_EQ_INT(mr.read_at, 9000);

    /* read/readAt on messages: alice's 1-5 read at 9000, 6 (bob's own) and 7 unread. */
    store_arena_t ar = arena();
    store_messages_page_t p = {.conversation_id = str_cstr(conv), .requester = STR_LIT("alice")};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, 7);
    for (size_t i = 0; i < p.count; i++)
        CHECK_EQ_INT(p.msgs[i].read_at, p.msgs[i].seq <= 5 ? 9000 : 0);

    /* alice reads up to 6: bob's message 6 becomes read; her own 7 stays unread. Marking
     * without a conversation id (the REST route) finds it from the message. */
    mr = (store_mark_read_t){.user = STR_LIT("alice"), .message_id = str_cstr(ids[7])};
    CHECK_EQ_INT(store_sqlite_mark_read(db, &mr, 9700), STORE_OK);
    CHECK(mr.moved);
    CHECK_EQ_INT(mr.seq, 7);
    CHECK_EQ_INT(mr.unread_count, 0);
    CHECK(strcmp(mr.conv_id, conv) == 0);
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.msgs[5].read_at, 9700);
    CHECK_EQ_INT(p.msgs[6].read_at, 0);
    CHECK_EQ_INT(p.msgs[0].read_at, 9000);

    /* bob catches up later: message 7 read at that time, earlier ones keep their time. */
    CHECK_EQ_INT(mark(db, conv, "bob", ids[7], 9900, &mr), STORE_OK);
    CHECK_EQ_INT(mr.unread_count, 0);
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.msgs[6].read_at, 9900);
    CHECK_EQ_INT(p.msgs[4].read_at, 9000);

    /* Conversation view: watermarks per member, unread for the requester. */
    store_conversation_get_t cg = {.id = str_cstr(conv), .requester = STR_LIT("bob")};
    CHECK_EQ_INT(store_sqlite_conversation_get(db, &cg, &ar), STORE_OK);
    CHECK_EQ_INT(cg.conv.read_seq, 7);
    CHECK_EQ_INT(cg.conv.unread_count, 0);

    /* Refusals. */
    char other[ID_SIZE];
    direct(db, "alice", "carol", other);
    CHECK_EQ_INT(mark(db, other, "bob", ids[5], 1, &mr), STORE_E_NOT_FOUND); /* wrong conv */
    CHECK_EQ_INT(mark(db, conv, "carol", ids[5], 1, &mr), STORE_E_FORBIDDEN);
    CHECK_EQ_INT(mark(db, conv, "bob", "65a0000000000000000000ff", 1, &mr), STORE_E_NOT_FOUND);
    CHECK_EQ_INT(mark(db, conv, "bob", "bogus", 1, &mr), STORE_E_INVALID);
    CHECK_EQ_INT(mark(db, "bogus", "bob", ids[1], 1, &mr), STORE_E_INVALID);
    CHECK_EQ_INT(mark(db, conv, "", ids[1], 1, &mr), STORE_E_INVALID);
    CHECK(!mr.moved);
    store_sqlite_close(db);
}

static void test_group_read_rule(void)
{
    char path[128], ids[4][ID_SIZE];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    store_arena_t ar = arena();
    str_t parts[] = {STR_LIT("b"), STR_LIT("c")};
    store_group_create_t g = {
        .creator = STR_LIT("a"), .participants = parts, .count = 2, .title = STR_LIT("g")};
    CHECK_EQ_INT(store_sqlite_group_create(db, &g, &ar, 1), STORE_OK);
    char conv[ID_SIZE];
    memcpy(conv, g.conv.id, ID_SIZE);
    store_message_insert_t op;
    for (int i = 1; i <= 3; i++) {
        CHECK_EQ_INT(send_at(db, conv, "a", "m", 10 + i, &op), STORE_OK);
        memcpy(ids[i], op.msg.id, ID_SIZE);
    }
    store_mark_read_t mr;
    CHECK_EQ_INT(mark(db, conv, "b", ids[2], 100, &mr), STORE_OK);
    CHECK_EQ_INT(mr.unread_count, 1);
    CHECK_EQ_INT(mark(db, conv, "c", ids[3], 200, &mr), STORE_OK);
    CHECK_EQ_INT(mr.unread_count, 0);
    /* Read as soon as any other member read it; readAt is that first read. */
    store_messages_page_t p = {.conversation_id = str_cstr(conv)};
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.count, 3);
    CHECK_EQ_INT(p.msgs[0].read_at, 100);
    CHECK_EQ_INT(p.msgs[1].read_at, 100);
    CHECK_EQ_INT(p.msgs[2].read_at, 200);
    /* The sender reading its own messages marks nothing read. */
    CHECK_EQ_INT(send_at(db, conv, "a", "m", 300, &op), STORE_OK);
    CHECK_EQ_INT(mark(db, conv, "a", op.msg.id, 400, &mr), STORE_OK);
    CHECK_EQ_INT(store_sqlite_messages_page(db, &p, &ar), STORE_OK);
    CHECK_EQ_INT(p.msgs[3].read_at, 0);
    /* Unread counts per member. */
    store_conversation_get_t cg = {.id = str_cstr(conv), .requester = STR_LIT("b")};
    CHECK_EQ_INT(store_sqlite_conversation_get(db, &cg, &ar), STORE_OK);
    CHECK_EQ_INT(cg.conv.unread_count, 2);
    cg.requester = STR_LIT("a");
    CHECK_EQ_INT(store_sqlite_conversation_get(db, &cg, &ar), STORE_OK);
    CHECK_EQ_INT(cg.conv.unread_count, 0);
    store_sqlite_close(db);
}

/* ---- Conversation lists ---------------------------------------------------------------- */

static void test_conversations_list(void)
{
    char path[128], convs[6][ID_SIZE];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    const char *others[] = {"u0", "u1", "u2", "u3", "u4"};
    store_message_insert_t op;
    for (int i = 0; i < 5; i++) {
        direct(db, "me", others[i], convs[i]);
        /* Activity: u2 newest, then u4, u0, and u1/u3 tied at the same millisecond. */
        static const int64_t at[] = {3000, 2000, 5000, 2000, 4000};
        CHECK_EQ_INT(send_at(db, convs[i], others[i], "hello", at[i], &op), STORE_OK);
    }
    direct(db, "u0", "u1", convs[5]); /* not mine */
    store_mark_read_t mr;
    CHECK_EQ_INT(mark(db, convs[0], "me", op.msg.id, 1, &mr), STORE_E_NOT_FOUND);

    const char *order[5];
    size_t n = 0;
    char cursor[STORE_CURSOR_LEN + 1] = "";
    int pages = 0;
    do {
        store_arena_t ar = arena();
        store_conversations_list_t l = {
            .user = STR_LIT("me"), .cursor = str_cstr(cursor), .limit = 2};
        CHECK_EQ_INT(store_sqlite_conversations_list(db, &l, &ar), STORE_OK);
        CHECK(l.count <= 2);
        for (size_t i = 0; i < l.count && n < 5; i++) {
            const store_conversation_t *c = &l.convs[i];
            CHECK(c->last_message != NULL);
            CHECK_EQ_INT(c->unread_count, 1);
            CHECK_EQ_INT(c->member_count, 2);
            for (int k = 0; k < 5; k++)
                if (strcmp(c->id, convs[k]) == 0) order[n] = others[k];
            n++;
        }
        memcpy(cursor, l.next_cursor, sizeof cursor);
        CHECK(cursor[0] == '\0' || strlen(cursor) == STORE_CURSOR_LEN);
        pages++;
    } while (cursor[0] && pages < 10);
    CHECK_EQ_INT(pages, 3);
    CHECK_EQ_INT(n, 5);
    if (n == 5) {
        CHECK(strcmp(order[0], "u2") == 0);
        CHECK(strcmp(order[1], "u4") == 0);
        CHECK(strcmp(order[2], "u0") == 0);
        /* The tie is broken by id (descending), the same way on every page. */
        bool tie = (strcmp(order[3], "u1") == 0 && strcmp(order[4], "u3") == 0) ||
                   (strcmp(order[3], "u3") == 0 && strcmp(order[4], "u1") == 0);
        CHECK(tie);
    }

    /* unreadCount follows the watermark; lastMessage is the newest. */
    store_arena_t ar = arena();
    store_conversations_list_t l = {.user = STR_LIT("me"), .cursor = STR_NULL, .limit = 1};
    CHECK_EQ_INT(store_sqlite_conversations_list(db, &l, &ar), STORE_OK);
    CHECK_EQ_INT(l.count, 1);
    char lastid[ID_SIZE];
    memcpy(lastid, l.convs[0].last_message->id, ID_SIZE);
    CHECK_EQ_INT(mark(db, convs[2], "me", lastid, 6000, &mr), STORE_OK);
    CHECK_EQ_INT(send_at(db, convs[2], "me", "reply", 7000, &op), STORE_OK);
    CHECK_EQ_INT(store_sqlite_conversations_list(db, &l, &ar), STORE_OK);
    CHECK(strcmp(l.convs[0].id, convs[2]) == 0);
    CHECK_EQ_INT(l.convs[0].unread_count, 0);
    CHECK_EQ_INT(l.convs[0].read_seq, 1);
    CHECK_EQ_INT(l.convs[0].updated_at, 7000);
    CHECK_MEM(l.convs[0].last_message->content.ptr, l.convs[0].last_message->content.len, "reply");
    CHECK(l.next_cursor[0] != '\0');

    /* A conversation that got a message after the sender's clock went back stays in place. */
    CHECK_EQ_INT(send_at(db, convs[2], "me", "late", 100, &op), STORE_OK);
    CHECK_EQ_INT(store_sqlite_conversations_list(db, &l, &ar), STORE_OK);
    CHECK_EQ_INT(l.convs[0].updated_at, 7000);

    /* Empty and refused. */
    l = (store_conversations_list_t){.user = STR_LIT("stranger"), .cursor = STR_NULL, .limit = 10};
    CHECK_EQ_INT(store_sqlite_conversations_list(db, &l, &ar), STORE_OK);
    CHECK_EQ_INT(l.count, 0);
    CHECK_EQ_INT(l.next_cursor[0], '\0');
    const char *bad[] = {"x", "0000000000000064", "000000000000006465a0000000000000000000zz",
                         "ffffffffffffffff65a000000000000000000001",
                         "000000000000006465A000000000000000000001"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        l = (store_conversations_list_t){
            .user = STR_LIT("me"), .cursor = str_cstr(bad[i]), .limit = 10};
        CHECK_EQ_INT(store_sqlite_conversations_list(db, &l, &ar), STORE_E_INVALID);
    }
    l = (store_conversations_list_t){.user = STR_LIT("bad user"), .cursor = STR_NULL, .limit = 10};
    CHECK_EQ_INT(store_sqlite_conversations_list(db, &l, &ar), STORE_E_INVALID);
    store_arena_t none = {0};
    l = (store_conversations_list_t){.user = STR_LIT("me"), .cursor = STR_NULL, .limit = 10};
    CHECK_EQ_INT(store_sqlite_conversations_list(db, &l, &none), STORE_E_NOSPACE);
    /* Cut short by a small arena: a valid cursor continues where it stopped. */
    static char small[sizeof(store_conversation_t) * 2 + 700];
    store_arena_t sa = {small, sizeof small, 0, 0};
    CHECK_EQ_INT(store_sqlite_conversations_list(db, &l, &sa), STORE_OK);
    CHECK(l.count >= 1 && l.count < 5);
    CHECK(l.next_cursor[0] != '\0');
    store_sqlite_close(db);
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

static void test_exec_all_ops(void)
{
    char path[128];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    store_req_t r;
    memset(&r, 0, sizeof r);
    r.arena = arena();
    r.op = STORE_OP_USER_UPSERT;
    r.u.user_upsert =
        (store_user_upsert_t){.id = STR_LIT("a"), .name = STR_LIT("A"), .role = STR_NULL};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    r.op = STORE_OP_USER_SEEN;
    r.u.user_seen = (store_user_seen_t){.id = STR_LIT("a"), .last_seen = 5};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    r.op = STORE_OP_ACCOUNT_CREATE;
    r.u.account_create = (store_account_create_t){.username = STR_LIT("ann"),
                                                  .password_hash = STR_LIT("h"),
                                                  .name = STR_NULL,
                                                  .role = STR_NULL};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    r.op = STORE_OP_ACCOUNT_GET;
    r.u.account_get = (store_account_get_t){.username = STR_LIT("ann")};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    r.op = STORE_OP_DIRECT_OPEN;
    r.u.direct_open = (store_direct_open_t){.user = STR_LIT("a"), .other = STR_LIT("b")};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    char conv[ID_SIZE];
    memcpy(conv, r.u.direct_open.conv.id, ID_SIZE);
    r.op = STORE_OP_MESSAGE_INSERT;
    r.u.message_insert = (store_message_insert_t){
        .sender = STR_LIT("a"), .conversation_id = str_cstr(conv), .content = STR_LIT("x")};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    char msg[ID_SIZE];
    memcpy(msg, r.u.message_insert.msg.id, ID_SIZE);
    r.op = STORE_OP_MARK_READ;
    r.u.mark_read = (store_mark_read_t){.user = STR_LIT("b"), .message_id = str_cstr(msg)};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    str_t parts[] = {STR_LIT("b")};
    r.op = STORE_OP_GROUP_CREATE;
    r.u.group_create = (store_group_create_t){
        .creator = STR_LIT("a"), .participants = parts, .count = 1, .title = STR_NULL};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    r.op = STORE_OP_FILE_INSERT;
    memset(&r.u.file_insert, 0, sizeof r.u.file_insert);
    r.u.file_insert.file = (store_file_t){.owner = STR_LIT("a"),
                                          .name = STR_LIT("n"),
                                          .mime = STR_LIT("m"),
                                          .path = STR_LIT("p"),
                                          .sha256 = STR_LIT("s")};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    char fid[ID_SIZE];
    memcpy(fid, r.u.file_insert.file.id, ID_SIZE);
    r.op = STORE_OP_FILE_GET;
    r.u.file_get = (store_file_get_t){.id = str_cstr(fid), .requester = STR_LIT("a")};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    r.op = STORE_OP_USERS_GET;
    r.u.users_get = (store_users_get_t){.ids = parts, .count = 1};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    r.op = STORE_OP_USERS_SEARCH;
    r.u.users_search = (store_users_search_t){.prefix = STR_LIT("a"), .limit = 5};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    r.op = STORE_OP_CONVERSATION_GET;
    r.u.conversation_get =
        (store_conversation_get_t){.id = str_cstr(conv), .requester = STR_LIT("a")};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    r.op = STORE_OP_CONVERSATIONS_LIST;
    r.u.conversations_list =
        (store_conversations_list_t){.user = STR_LIT("a"), .cursor = STR_NULL, .limit = 5};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    CHECK_EQ_INT(r.u.conversations_list.count, 2);
    r.op = STORE_OP_MESSAGES_PAGE;
    r.u.messages_page = (store_messages_page_t){.conversation_id = str_cstr(conv)};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    CHECK_EQ_INT(r.u.messages_page.count, 1);
    r.op = STORE_OP_MESSAGES_AFTER;
    r.u.messages_after = (store_messages_after_t){.conversation_id = str_cstr(conv)};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    CHECK_EQ_INT(r.u.messages_after.count, 1);
    r.op = STORE_OP_MESSAGES_SINCE;
    r.u.messages_since = (store_messages_since_t){.user = STR_LIT("b"), .after_pos = 0, .limit = 5};
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    CHECK_EQ_INT(r.u.messages_since.count, 1);
    CHECK(store_op_is_write(STORE_OP_FILE_INSERT));
    CHECK(!store_op_is_write(STORE_OP_ACCOUNT_GET));
    store_sqlite_close(db);
}

static void test_contacts(void)
{
    char path[128], conv[ID_SIZE];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    store_arena_t ar = arena();
    direct(db, "me", "zoe", conv);
    direct(db, "me", "bob", conv);
    direct(db, "bob", "carl", conv); /* not mine */
    str_t parts[] = {STR_LIT("bob"), STR_LIT("amy")};
    store_group_create_t g = {.creator = STR_LIT("me"), .participants = parts, .count = 2};
    CHECK_EQ_INT(store_sqlite_group_create(db, &g, &ar, 1), STORE_OK);
    store_contacts_t c = {.user = STR_LIT("me")};
    CHECK_EQ_INT(store_sqlite_contacts(db, &c, &ar), STORE_OK);
    CHECK_EQ_INT(c.count, 3);
    CHECK(!c.has_more);
    if (c.count == 3) {
        CHECK_MEM(c.user_ids[0].ptr, c.user_ids[0].len, "amy");
        CHECK_MEM(c.user_ids[1].ptr, c.user_ids[1].len, "bob");
        CHECK_MEM(c.user_ids[2].ptr, c.user_ids[2].len, "zoe");
    }
    c = (store_contacts_t){.user = STR_LIT("me"), .limit = 2};
    CHECK_EQ_INT(store_sqlite_contacts(db, &c, &ar), STORE_OK);
    CHECK_EQ_INT(c.count, 2);
    CHECK(c.has_more);
    c = (store_contacts_t){.user = STR_LIT("loner")};
    CHECK_EQ_INT(store_sqlite_contacts(db, &c, &ar), STORE_OK);
    CHECK_EQ_INT(c.count, 0);
    c = (store_contacts_t){.user = STR_LIT("")};
    CHECK_EQ_INT(store_sqlite_contacts(db, &c, &ar), STORE_E_INVALID);
    store_arena_t none = {0};
    c = (store_contacts_t){.user = STR_LIT("me")};
    CHECK_EQ_INT(store_sqlite_contacts(db, &c, &none), STORE_E_NOSPACE);
    char small[sizeof(str_t) * 2 + 8];
    store_arena_t sa = {small, sizeof small, 0, 0};
    CHECK_EQ_INT(store_sqlite_contacts(db, &c, &sa), STORE_OK);
    CHECK(c.count >= 1 && c.count < 3);
    CHECK(c.has_more);
    store_req_t r = {.op = STORE_OP_CONTACTS, .arena = arena()};
    r.u.contacts.user = STR_LIT("bob");
    CHECK_EQ_INT(store_sqlite_exec(db, &r), STORE_OK);
    CHECK_EQ_INT(r.u.contacts.count, 3); /* amy, carl, me */
    store_sqlite_close(db);
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

/* Presence is for those a user has written to: AUDIENCE = members of the conversations the
 * user sent in, VISIBLE = those who sent in a conversation of the user. */
static void test_contacts_presence(void)
{
    char path[128], dz[ID_SIZE], db_[ID_SIZE], grp[ID_SIZE], buf[256];
    store_sqlite_t *db = open_fresh(path, sizeof path);
    if (!db) return;
    store_arena_t ar = arena();
    direct(db, "me", "zoe", dz);
    direct(db, "me", "bob", db_);
    str_t parts[] = {STR_LIT("bob"), STR_LIT("amy")};
    store_group_create_t g = {.creator = STR_LIT("me"), .participants = parts, .count = 2};
    CHECK_EQ_INT(store_sqlite_group_create(db, &g, &ar, 1), STORE_OK);
    memcpy(grp, g.conv.id, ID_SIZE);
    /* Nobody wrote yet: nobody sees anybody (a conversation alone is not enough). */
    CHECK(strcmp(contacts_of(db, "me", STORE_CONTACTS_AUDIENCE, buf, sizeof buf), "") == 0);
    CHECK(strcmp(contacts_of(db, "me", STORE_CONTACTS_VISIBLE, buf, sizeof buf), "") == 0);
    CHECK(strcmp(contacts_of(db, "me", STORE_CONTACTS_ALL, buf, sizeof buf), "amy,bob,zoe") == 0);
    send(db, dz, "zoe", "hi me");
    send(db, grp, "me", "hi all");
    CHECK(strcmp(contacts_of(db, "me", STORE_CONTACTS_AUDIENCE, buf, sizeof buf), "amy,bob") == 0);
    CHECK(strcmp(contacts_of(db, "me", STORE_CONTACTS_VISIBLE, buf, sizeof buf), "zoe") == 0);
    CHECK(strcmp(contacts_of(db, "bob", STORE_CONTACTS_VISIBLE, buf, sizeof buf), "me") == 0);
    CHECK(strcmp(contacts_of(db, "bob", STORE_CONTACTS_AUDIENCE, buf, sizeof buf), "") == 0);
    CHECK(strcmp(contacts_of(db, "zoe", STORE_CONTACTS_AUDIENCE, buf, sizeof buf), "me") == 0);
    CHECK(strcmp(contacts_of(db, "zoe", STORE_CONTACTS_VISIBLE, buf, sizeof buf), "") == 0);
    /* In one batch (the writer's cached path after the first send): bob writes too. */
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    send(db, db_, "me", "first, uncached");
    send(db, db_, "bob", "second, cached");
    send(db, db_, "bob", "third, cached, already marked");
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
    CHECK(strcmp(contacts_of(db, "me", STORE_CONTACTS_VISIBLE, buf, sizeof buf), "bob,zoe") == 0);
    CHECK(strcmp(contacts_of(db, "bob", STORE_CONTACTS_AUDIENCE, buf, sizeof buf), "me") == 0);
    store_sqlite_close(db);
}

static void cleanup_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
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
    RUN(test_users);
    RUN(test_accounts);
    RUN(test_users_search);
    RUN(test_direct_open);
    RUN(test_group_create);
    RUN(test_message_insert);
    RUN(test_message_files);
    RUN(test_idempotent_client_msg_id);
    RUN(test_pagination);
    RUN(test_messages_since);
    RUN(test_mark_read);
    RUN(test_group_read_rule);
    RUN(test_conversations_list);
    RUN(test_batch_savepoints);
    RUN(test_batch_cached_sends);
    RUN(test_exec_all_ops);
    RUN(test_contacts);
    RUN(test_contacts_presence);
    cleanup_tmpdir();
    return UNIT_DONE();
}
