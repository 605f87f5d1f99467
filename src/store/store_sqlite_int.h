/* Inside the SQLite engine: what its files share. The connection (struct store_sqlite) with
 * its statement cache and the writer's send cache, the statement ids, and the helpers the
 * operation files call. Nothing outside src/store/store_sqlite*.c includes this.
 *
 * Files: store_sqlite.c (statements, helpers, savepoints, the engine struct and dispatch),
 * store_sqlite_schema.c (migrations, open/close, batch transactions), store_sqlite_users.c,
 * store_sqlite_conversations.c (and read watermarks), store_sqlite_messages.c (and the
 * writer's send cache), store_sqlite_files.c. */
#ifndef PARLOR_STORE_STORE_SQLITE_INT_H
#define PARLOR_STORE_STORE_SQLITE_INT_H

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/id.h"
#include "core/strmap.h"
#include "store/store_common.h"
#include "store/store_sqlite.h"

/* Statement ids: the SQL is store_sql[] in store_sqlite.c. */
enum {
    S_SP_BEGIN,
    S_SP_RELEASE,
    S_SP_ROLLBACK,
    S_BEGIN,
    S_READ_BEGIN,
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
    S_CONV_BUMP_ROWID,
    S_CONV_LIST,
    S_CONV_LIST_CTX,
    S_MEMBER_DELETE,
    S_CONV_TYPE,
    S_CONV_NEXT_SEQ,
    S_EXP_MEMBERSHIPS,
    S_EXP_FILES,
    S_EXP_MESSAGES,
    S_ERASE_MSG_IDS,
    S_ERASE_CMIDS,
    S_ERASE_FILES,
    S_ERASE_MEMBERS,
    S_ERASE_BLOCKS,
    S_ERASE_USER,
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
    S_MSG_BY_ID,
    S_MSG_UPD_CTX,
    S_MSG_EDIT,
    S_MSG_TOMBSTONE,
    S_FILE_ORPHAN,
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
    S_BLOCK_INSERT,
    S_BLOCK_DELETE,
    S_BLOCK_GET,
    S_BLOCK_COUNT,
    S_BLOCK_LIST,
    S_BLOCK_EITHER,
    S_BLOCK_ALL,
    S_DATA_VERSION,
    S_UNREAD_TOTAL,
    S_SEARCH,
    S_SEARCH_CONV,
    S_SEARCH_TAIL,
    S_SEARCH_TAIL_CONV,
    S_FTS_STATE,
    S_FTS_INDEX,
    S_FTS_MARK,
    S_FTS_SP_BEGIN,
    S_FTS_SP_RELEASE,
    S_FTS_SP_ROLLBACK,
    S_OB_ADD,
    S_OB_ADD_UNREAD,
    S_OB_EXPAND,
    S_OB_EXPAND_DROP,
    S_OB_DUE,
    S_OB_LEASE,
    S_OB_GET,
    S_OB_DELETE,
    S_OB_FAIL,
    S_OB_RETRY,
    S_OB_REQUEUE,
    S_OB_RUN,
    S_OB_PROMOTE,
    S_OB_COUNTS,
    S_COUNT_
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
    int64_t rowid;   /* the conversation row's rowid when it was cached (0: unknown) */
    bool direct;
    char id[ID_SIZE];
    char a[STORE_USER_ID_MAX + 1], b[STORE_USER_ID_MAX + 1]; /* direct: its two members */
    bool a_sent, b_sent; /* direct: their members rows say sent = 1 (this transaction) */
} send_conv_t;

/* Past this many conversations the cache is emptied at the next COMMIT (and refilled by use). */
#define SEND_CACHE_MAX 16384

typedef struct sq_checkpointer sq_checkpointer_t;

struct store_sqlite {
    sqlite3 *db;
    sq_checkpointer_t *ckpt; /* the writer's checkpoint thread (store_sqlite_checkpoint.c) */
    unsigned flags;
    sqlite3_stmt *stmt[S_COUNT_]; /* prepared on first use, kept until close */
    strmap_t convs;               /* conversation id -> send_conv_t (owned) */
    strmap_t directs;             /* "a|b" direct key -> send_conv_t (in convs) */
    send_conv_t *dirty;           /* conversations whose row is behind */
    unsigned fts_pending;         /* rows noted above the search index's watermark */
    int64_t fts_since;            /* when the first of them was noted (ms) */
    /* The writer's block filter (store_sqlite_blocks.c): a bit per hashed user id that took
     * part in a block; NULL until first needed. */
    uint64_t *block_bits;
    int64_t block_bits_version; /* PRAGMA data_version when it was built */
    bool block_bits_checked;    /* version checked in this batch's transaction */
    bool in_batch;              /* between store_sqlite_begin and its commit or rollback */
};

/* ---- Statements (store_sqlite.c) --------------------------------------------------------- */

/* A SQLite result code as a STORE_E_*. */
int sq_map_rc(int rc);
/* The statement of that id, prepared on first use and cached until close; NULL on failure. */
sqlite3_stmt *sq_stmt_get(store_sqlite_t *db, int id);
/* Prepares (once), steps and resets a statement without parameters or rows. */
int sq_run_simple(store_sqlite_t *db, int id);
/* Column i as a string copied into the arena; SQL NULL reads as absent. */
int sq_col_str(sqlite3_stmt *st, int i, store_arena_t *a, str_t *out);
/* Every operation is one savepoint (see store_sqlite.c): op_begin opens it after bringing the
 * send cache's conversation rows up to date; op_end(rc) releases it when rc is STORE_OK and
 * rolls it back otherwise, and returns the final status. */
int sq_op_begin(store_sqlite_t *db);
int sq_op_end(store_sqlite_t *db, int rc);

static inline void sq_bind_str(sqlite3_stmt *st, int i, str_t s)
{
    if (s.ptr)
        sqlite3_bind_text(st, i, s.ptr, (int)s.len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Empty optional text is stored as NULL. */
static inline void sq_bind_opt(sqlite3_stmt *st, int i, str_t s)
{
    sq_bind_str(st, i, store_present(s) ? s : STR_NULL);
}

static inline void sq_bind_cstr(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Steps a statement that returns no rows, then resets it. */
static inline int sq_stmt_run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : sq_map_rc(rc);
}

/* Steps once: STORE_OK with a row, STORE_E_NOT_FOUND without; the caller resets. */
static inline int sq_stmt_row(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) return STORE_OK;
    if (rc == SQLITE_DONE) return STORE_E_NOT_FOUND;
    return sq_map_rc(rc);
}

static inline void sq_col_id(sqlite3_stmt *st, int i, char out[ID_SIZE])
{
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (!t || n != ID_LEN) n = 0;
    if (n) memcpy(out, t, ID_LEN);
    out[n] = '\0';
}

static inline bool sq_col_eq(sqlite3_stmt *st, int i, str_t s)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t && (size_t)sqlite3_column_bytes(st, i) == s.len && memcmp(t, s.ptr, s.len) == 0;
}

static inline int64_t sq_col_i64(sqlite3_stmt *st, int i)
{
    return sqlite3_column_int64(st, i); /* NULL reads as 0: "absent" */
}

/* ---- Row readers ------------------------------------------------------------------------- */

/* Columns: id, name, role, username, last_seen, created_at, password_hash (users.c). */
int sq_user_from_row(sqlite3_stmt *st, store_user_t *u, store_arena_t *a);
/* Columns from `first`: id, owner, name, size, mime, path, sha256, created_at (files.c). */
int sq_file_from_row(sqlite3_stmt *st, int first, store_file_t *f, store_arena_t *a);
/* Columns: MSG_COLS (messages.c). */
int sq_msg_from_row(sqlite3_stmt *st, store_message_t *m, store_arena_t *a);

/* ---- Conversations and members (store_sqlite_conversations.c) ----------------------------- */

/* Messages of conv with seq > read_seq sent by someone other than user. */
int sq_unread_count(store_sqlite_t *db, str_t conv, int64_t read_seq, str_t user, int64_t *out);
/* For a user who is not a member of conv: NOT_FOUND when conv does not exist, else FORBIDDEN. */
int sq_not_member(store_sqlite_t *db, str_t conv);
/* Requires that requester (when given) is a member of conv, or that conv exists. */
int sq_check_access(store_sqlite_t *db, str_t conv, str_t requester);
/* Fills c (members, last message, the requester's watermark and unread count) into a. */
int sq_conv_load(store_sqlite_t *db, str_t id, str_t requester, store_conversation_t *c,
                 store_arena_t *a);
/* Makes sure a users row exists for id (members and file owners may never have logged in). */
int sq_user_stub(store_sqlite_t *db, str_t id, int64_t now);
/* The one direct conversation of a and b (store_direct_key), created when missing. */
int sq_direct_find_or_create(store_sqlite_t *db, str_t a, str_t b, int64_t now, char id[ID_SIZE],
                             bool *created);
/* The same about a context (ctx NULL or absent: the plain thread); ctx->title is stored when
 * the conversation is created. */
int sq_direct_find_or_create_ctx(store_sqlite_t *db, str_t a, str_t b, const store_context_t *ctx,
                                 int64_t now, char id[ID_SIZE], bool *created);
/* Adds a member (a users row stub first); an existing member: nothing. */
int sq_member_insert(store_sqlite_t *db, const char *conv, str_t user, int64_t now);

/* ---- Blocks (store_sqlite_blocks.c) ------------------------------------------------------ */

/* Whether a and b are in a block, either way (*out). */
/* The writer's checkpoints on a thread of their own once the WAL holds `threshold` pages
 * (store_sqlite_checkpoint.c); without it SQLite's automatic checkpoint stays. */
int sq_checkpointer_start(store_sqlite_t *db, const char *path, int threshold);
void sq_checkpointer_stop(store_sqlite_t *db);

/* Registers the VFS that gathers a WAL's writes (store_sqlite_vfs.c); its name, or NULL. */
const char *sq_vfs_register(void);

int sq_block_between(store_sqlite_t *db, str_t a, str_t b, bool *out);
/* The block filter: marks the two users of a block just written; forgets the filter (it is
 * rebuilt when next needed). */
void sq_block_filter_mark(store_sqlite_t *db, str_t a, str_t b);
void sq_block_filter_free(store_sqlite_t *db);

/* ---- The webhook outbox (store_sqlite_outbox.c) ------------------------------------------ */

/* Records an event in the current transaction when the outbox is on (store.h); a no-op when
 * it is off. user may be absent; msg may be NULL. */
int sq_outbox_add(store_sqlite_t *db, store_outbox_type_t type, const char *conv, const char *msg,
                  str_t user, int64_t seq, int64_t now);
int store_sqlite_outbox_claim(store_sqlite_t *db, store_outbox_claim_t *op, store_arena_t *a,
                              int64_t now);
int store_sqlite_outbox_ack(store_sqlite_t *db, const store_outbox_ack_t *op, int64_t now);

/* ---- The search index behind its watermark (store_sqlite_search.c, migration 9) ---------- */

/* Index the rows above the watermark once this many are pending, or once the oldest has waited
 * SQ_FTS_DELAY_MS: at the next COMMIT of the writer (or right after an operation outside a
 * transaction), and when the database is opened for writing. The delay bounds what a commit
 * at light load pays for a chunk: ~100 rows at 2,000 messages/s, ~0.7 ms of the writer
 * (~7 us a row; 1 row alone ~64 us, 2,000 ~3.5 us), which the messages of that commit wait. */
#define SQ_FTS_PENDING_MAX 512
#define SQ_FTS_DELAY_MS    50

/* Notes that n rows were inserted or moved (an edit, a delete) above the watermark. The time
 * is the clock's, not the operation's (which a caller may set). */
static inline void sq_fts_note(store_sqlite_t *db, unsigned n)
{
    if (db->fts_pending == 0) db->fts_since = store_clock_ms();
    db->fts_pending += n;
}
/* Whether the rows above the watermark are due for indexing. */
static inline bool sq_fts_due(const store_sqlite_t *db, int64_t now)
{
    return db->fts_pending >= SQ_FTS_PENDING_MAX ||
           (db->fts_pending > 0 && now - db->fts_since >= SQ_FTS_DELAY_MS);
}
/* Indexes every row above the watermark and moves it, in the current transaction (a savepoint
 * of its own: on failure nothing of it stays and the rows wait for the next time). */
int sq_fts_catch_up(store_sqlite_t *db);
/* The same as a transaction of its own (the writer connection outside a batch). */
int sq_fts_catch_up_now(store_sqlite_t *db);

/* ---- The writer's send cache (store_sqlite_messages.c) ------------------------------------ */

/* Forgets every cached conversation (after a ROLLBACK, at close, or when it grows too big). */
void sq_send_cache_clear(store_sqlite_t *db);
/* Writes the conversation rows that the cached sends of this transaction are ahead of. */
int sq_send_cache_flush(store_sqlite_t *db);

#endif
