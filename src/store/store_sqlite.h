/* The SQLite engine: one synchronous connection with its schema, migrations, cached prepared
 * statements and one function per operation of store.h. */
#ifndef PARLOR_STORE_STORE_SQLITE_H
#define PARLOR_STORE_STORE_SQLITE_H

#include "store/store.h"
#include "store/store_engine.h"

/* The engine struct (store_engine.h), registered as "sqlite". */
extern const store_engine_t store_engine_sqlite;

typedef struct store_sqlite store_sqlite_t;

enum {
    STORE_SQLITE_READONLY = 1 << 0, /* a reader: no migrations, refuses writes */
};

/* Opens path (created when missing unless READONLY), sets WAL, synchronous=FULL,
 * foreign_keys, busy_timeout, and applies pending migrations, each in its own transaction.
 * A READONLY connection instead requires the schema to be current. A database newer than this
 * build is refused. One connection belongs to one thread at a time. */
int store_sqlite_open(const char *path, unsigned flags, store_sqlite_t **out, char *err,
                      size_t errcap);
void store_sqlite_close(store_sqlite_t *db); /* NULL is a no-op */

/* The database's PRAGMA user_version, or a STORE_E_*. */
int store_sqlite_schema_version(store_sqlite_t *db);
/* The last SQLite error message of this connection (for logs). */
const char *store_sqlite_errmsg(store_sqlite_t *db);

/* Batches (the writer's group commit): every operation below runs inside its own SAVEPOINT,
 * so it is atomic on its own and, between begin and commit, a failed one is rolled back
 * without touching the others. */
int store_sqlite_begin(store_sqlite_t *db);  /* BEGIN IMMEDIATE */
int store_sqlite_commit(store_sqlite_t *db); /* COMMIT; on failure the batch is rolled back */
void store_sqlite_rollback(store_sqlite_t *db);
/* True while a transaction is open: after a failure inside a batch, false means SQLite
 * rolled the whole transaction back (I/O error, disk full) and the batch is lost. */
bool store_sqlite_in_transaction(store_sqlite_t *db);

/* Runs req->op with req's inputs and arena, sets req->status and returns it. now_ms 0 reads
 * the clock. */
int store_sqlite_exec(store_sqlite_t *db, store_req_t *req);

/* The operations. Return STORE_OK or a STORE_E_*; `now` is ms since the epoch. Outputs that
 * are strings or arrays are placed in the arena, which each call resets. */
int store_sqlite_user_upsert(store_sqlite_t *db, const store_user_upsert_t *op, int64_t now);
int store_sqlite_user_seen(store_sqlite_t *db, const store_user_seen_t *op);
int store_sqlite_account_create(store_sqlite_t *db, store_account_create_t *op, int64_t now);
int store_sqlite_account_get(store_sqlite_t *db, store_account_get_t *op, store_arena_t *a);
int store_sqlite_users_get(store_sqlite_t *db, store_users_get_t *op, store_arena_t *a);
int store_sqlite_users_search(store_sqlite_t *db, store_users_search_t *op, store_arena_t *a);
int store_sqlite_direct_open(store_sqlite_t *db, store_direct_open_t *op, store_arena_t *a,
                             int64_t now);
int store_sqlite_group_create(store_sqlite_t *db, store_group_create_t *op, store_arena_t *a,
                              int64_t now);
int store_sqlite_conversation_get(store_sqlite_t *db, store_conversation_get_t *op,
                                  store_arena_t *a);
int store_sqlite_conversations_list(store_sqlite_t *db, store_conversations_list_t *op,
                                    store_arena_t *a);
int store_sqlite_message_insert(store_sqlite_t *db, store_message_insert_t *op, store_arena_t *a,
                                int64_t now);
int store_sqlite_messages_page(store_sqlite_t *db, store_messages_page_t *op, store_arena_t *a);
int store_sqlite_messages_after(store_sqlite_t *db, store_messages_after_t *op, store_arena_t *a);
int store_sqlite_messages_since(store_sqlite_t *db, store_messages_since_t *op, store_arena_t *a);
int store_sqlite_mark_read(store_sqlite_t *db, store_mark_read_t *op, int64_t now);
int store_sqlite_message_update(store_sqlite_t *db, store_message_update_t *op, store_arena_t *a,
                                int64_t now);
int store_sqlite_file_insert(store_sqlite_t *db, store_file_insert_t *op, int64_t now);
int store_sqlite_file_get(store_sqlite_t *db, store_file_get_t *op, store_arena_t *a);
int store_sqlite_contacts(store_sqlite_t *db, store_contacts_t *op, store_arena_t *a);
int store_sqlite_block_set(store_sqlite_t *db, store_block_set_t *op, int64_t now);
int store_sqlite_blocks_list(store_sqlite_t *db, store_blocks_list_t *op, store_arena_t *a);
int store_sqlite_block_check(store_sqlite_t *db, store_block_check_t *op);
int store_sqlite_unread_total(store_sqlite_t *db, store_unread_total_t *op);
int store_sqlite_search(store_sqlite_t *db, store_search_t *op, store_arena_t *a);
/* Issue 15 (store_sqlite_platform.c). */
int store_sqlite_system_insert(store_sqlite_t *db, store_system_insert_t *op, store_arena_t *a,
                               int64_t now);
int store_sqlite_members_change(store_sqlite_t *db, store_members_change_t *op, store_arena_t *a,
                                int64_t now);
int store_sqlite_user_erase(store_sqlite_t *db, store_user_erase_t *op, store_arena_t *a,
                            int64_t now);
int store_sqlite_user_export(store_sqlite_t *db, store_user_export_t *op, store_arena_t *a);
/* Reads the schema version: the file is there and readable. */
int store_sqlite_ping(store_sqlite_t *db);

#endif
