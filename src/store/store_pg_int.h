/* Inside the PostgreSQL engine: what its files share. The connection (struct store_pg), the
 * prepared-statement ids, statement parameters, result readers and the helpers the operation
 * files call. Nothing outside src/store/store_pg*.c includes this.
 *
 * Files: store_pg.c (connection, reconnect, errors, transactions, the engine struct, exec),
 * store_pg_batch.c (the pipelined write batch), store_pg_schema.c (migrations), store_pg_messages.c
 * (sending, read watermarks, message reads), store_pg_conversations.c, store_pg_users.c (users,
 * accounts, files, contacts).
 *
 * Statements are prepared once per connection (PQprepare on first use, again after a
 * reconnect) and run with PQexecPrepared. Strings are sent in binary format (their bytes and
 * length, no copy), numbers as decimal text; results come back as text. */
#ifndef PARLOR_STORE_STORE_PG_INT_H
#define PARLOR_STORE_STORE_PG_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/id.h"
#include "store/store_common.h"
#include "store/store_pg.h"

/* Advisory lock keys (the first half of pg_advisory_xact_lock(int, int); the second half is
 * hashtext(current_schema()), so schemas of one database do not contend). */
#define PG_LOCK_MIGRATE 1348563457 /* migrations: one node migrates, the others wait */
#define PG_LOCK_INSERT  1348563458 /* message inserts: pos in commit order (store_pg.c) */
#define PG_LOCK_QUOTA   1348563459 /* an owner's file quota, with hashtext(owner) */
#define PG_LOCK_OUTBOX  1348563460 /* a conversation's webhook queue, with hashtext(id) */
#define PG_STR_(x)      #x
#define PG_STR(x)       PG_STR_(x) /* a key as SQL text */

/* Prepared statement ids; the SQL sits beside its use. */
enum {
    P_PING,
    P_USER_UPSERT,
    P_USER_SEEN,
    P_ACCOUNT_CREATE,
    P_ACCOUNT_GET,
    P_USERS_GET,
    P_USERS_SEARCH,
    P_USER_STUB,
    P_USER_STUBS,
    P_CONV_BY_KEY,
    P_CONV_INSERT,
    P_MEMBERS_INSERT,
    P_CONV_LOAD,
    P_CONV_LIST,
    P_CONV_LIST_CTX,
    P_SEND_SYSTEM,
    P_CONV_TYPE_LOCK,
    P_MEMBER_IS,
    P_MEMBER_COUNT,
    P_MEMBER_ADD,
    P_MEMBER_DELETE,
    P_EXP_USER,
    P_EXP_MEMBERSHIPS,
    P_EXP_FILES,
    P_EXP_BLOCKS,
    P_EXP_MESSAGES,
    P_ERASE,
    P_SEND,
    P_SEND_MANY,
    P_MARK_READ,
    P_MSG_PAGE,
    P_MSG_AFTER,
    P_MSG_SINCE,
    P_MSG_UPDATE,
    P_MSG_BY_ID,
    P_QUOTA_LOCK,
    P_FILE_USED,
    P_FILE_EXISTS,
    P_FILE_INSERT,
    P_FILE_GET,
    P_CONTACTS,
    P_CONTACTS_AUDIENCE,
    P_CONTACTS_VISIBLE,
    P_INSERT_LOCK,
    P_BLOCK_ADD,
    P_BLOCK_DELETE,
    P_BLOCK_GET,
    P_BLOCK_LIST,
    P_BLOCK_EITHER,
    P_UNREAD_TOTAL,
    P_SEARCH,
    P_SEARCH_CONV,
    P_SEARCH_ACCESS,
    P_OB_ADD,
    P_OB_EXPAND,
    P_OB_CLAIM,
    P_OB_RUN,
    P_OB_RELEASE,
    P_OB_ACK,
    P_OB_COUNTS,
    P_BEGIN,
    P_COMMIT,
    P_COUNT_
};

typedef struct store_pg {
    PGconn *conn;
    bool readonly;
    bool in_tx;        /* a batch transaction is open (begin .. commit / rollback) */
    bool tx_failed;    /* a database error ended the batch's transaction */
    bool broken;       /* the connection is lost: reconnect before the next use */
    int64_t retry_at;  /* monotonic ms: no reconnect attempt before (fail fast while down) */
    uint64_t prepared; /* bit i: statement i is prepared on this connection */
    char err[512];     /* the last error, for logs (never the URL or a password) */
} store_pg_t;

/* ---- Parameters --------------------------------------------------------------------------- */

#define PG_PARAMS_MAX 12

typedef struct {
    int n;
    bool bad; /* a string PostgreSQL cannot store as text (NUL byte, invalid UTF-8) */
    const char *v[PG_PARAMS_MAX];
    int len[PG_PARAMS_MAX];
    int fmt[PG_PARAMS_MAX];
    char num[PG_PARAMS_MAX][24];
} pg_params_t;

/* True when s is valid UTF-8 without NUL bytes (what a text value may hold). */
bool pg_text_ok(const char *s, size_t n);

/* A string, SQL NULL when absent (ptr NULL); sent in binary format (bytes and length). */
static inline void pg_p_str(pg_params_t *p, str_t s)
{
    int i = p->n++;
    p->v[i] = s.ptr ? (s.len ? s.ptr : "") : NULL;
    p->len[i] = (int)s.len;
    p->fmt[i] = 1;
    if (s.ptr && !pg_text_ok(s.ptr, s.len)) p->bad = true;
}

/* Bytes for a bytea column (binary format: the bytes themselves). */
static inline void pg_p_bytes(pg_params_t *p, str_t s)
{
    int i = p->n++;
    p->v[i] = s.len ? s.ptr : "";
    p->len[i] = (int)s.len;
    p->fmt[i] = 1;
}

/* Empty optional text is stored as NULL (as the SQLite engine does). */
static inline void pg_p_opt(pg_params_t *p, str_t s)
{
    pg_p_str(p, store_present(s) ? s : STR_NULL);
}

static inline void pg_p_cstr(pg_params_t *p, const char *s)
{
    pg_p_str(p, s ? str_cstr(s) : STR_NULL);
}

/* A NUL-terminated text value in text format (arrays such as {"a","b"}). */
static inline void pg_p_text(pg_params_t *p, const char *s)
{
    int i = p->n++;
    p->v[i] = s;
    p->len[i] = 0;
    p->fmt[i] = 0;
}

static inline void pg_p_i64(pg_params_t *p, int64_t v)
{
    int i = p->n++;
    snprintf(p->num[i], sizeof p->num[i], "%lld", (long long)v);
    p->v[i] = p->num[i];
    p->len[i] = 0;
    p->fmt[i] = 0;
}

/* ---- Statements (store_pg.c) ------------------------------------------------------------- */

/* Internal status: a deadlock or serialization failure; the batch is retried from the start. */
#define PG_E_RETRY (-1001)

/* Records msg (trimmed to one line) as the connection's last error. */
void pg_set_err(store_pg_t *db, const char *msg);
/* One request: inside the batch's transaction, or outside a batch as its own transaction. */
int pg_exec_one(store_pg_t *db, store_req_t *req);
/* One attempt at a write batch in pipeline mode (store_pg_batch.c): STORE_OK once committed,
 * else the failure (PG_E_RETRY: retry it; the caller rolls back). */
int pg_batch_once(store_pg_t *db, store_req_t *head);

/* Runs statement id (its SQL given, prepared on first use on this connection). STORE_OK with
 * *res (PGRES_TUPLES_OK or COMMAND_OK, to PQclear), or a STORE_E_* with *res NULL: a lost
 * connection is STORE_E_UNAVAILABLE, a unique violation STORE_E_CONFLICT, any other database
 * error STORE_E_IO (in a batch, that error has aborted the transaction: tx_failed). */
int pg_query(store_pg_t *db, int id, const char *sql, const pg_params_t *p, PGresult **res);
/* Prepares statement id if this connection has not yet (for the pipeline). */
int pg_prepare(store_pg_t *db, int id, const char *sql);
/* A PGresult's error as a STORE_E_*; records the message and the connection's state. */
int pg_result_rc(store_pg_t *db, const PGresult *res);
/* Runs a statement without parameters or prepared form (BEGIN, COMMIT, SET ...). */
int pg_exec_simple(store_pg_t *db, const char *sql);

/* A write operation's transaction: outside a batch, begin opens one and end commits it when
 * rc is STORE_OK (else rolls it back) and returns the final status; inside a batch both do
 * nothing (each operation refuses before it writes, so a refusal leaves nothing to undo). */
int pg_op_begin(store_pg_t *db);
int pg_op_end(store_pg_t *db, int rc);

/* The monotonic clock, ms. */
int64_t pg_mono_ms(void);

/* ---- Results ----------------------------------------------------------------------------- */

static inline bool pg_null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col);
}

static inline int64_t pg_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static inline bool pg_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static inline void pg_col_id(const PGresult *r, int row, int col, char out[ID_SIZE])
{
    int n = PQgetisnull(r, row, col) ? 0 : PQgetlength(r, row, col);
    if (n != ID_LEN) n = 0;
    if (n) memcpy(out, PQgetvalue(r, row, col), ID_LEN);
    out[n] = '\0';
}

static inline bool pg_col_eq(const PGresult *r, int row, int col, str_t s)
{
    return !PQgetisnull(r, row, col) && (size_t)PQgetlength(r, row, col) == s.len &&
           memcmp(PQgetvalue(r, row, col), s.ptr, s.len) == 0;
}

/* Column as a string copied into the arena; NULL reads as absent. */
int pg_col_str(const PGresult *r, int row, int col, store_arena_t *a, str_t *out);

/* A bytea column (text form: \x and hex digits) decoded into the arena; NULL reads as
 * absent. */
int pg_col_bytes(const PGresult *r, int row, int col, store_arena_t *a, str_t *out);

/* Row readers. Users: id, name, role, username, last_seen, created_at, password_hash.
 * Files from `first`: id, owner, name, size, mime, path, sha256, created_at. Messages from
 * `first`: PG_MSG_COLS (PG_MSG_NCOLS columns). */
int pg_user_from_row(const PGresult *r, int row, store_user_t *u, store_arena_t *a);
int pg_file_from_row(const PGresult *r, int row, int first, store_file_t *f, store_arena_t *a);
int pg_msg_from_row(const PGresult *r, int row, int first, store_message_t *m, store_arena_t *a);

/* Schema version 1's columns (its functions return them; frozen), and the reads' columns:
 * those and edited_at, deleted (version 3). A row without the last two (a parlor_send answer)
 * reads as a message never edited nor deleted. */
#define PG_MSG_COLS_V1                                                                             \
    "m.id, m.conversation_id, m.seq, m.pos, m.sender, m.recipient, m.content, m.type,"             \
    " m.client_msg_id, m.read_at, m.created_at, m.updated_at, f.id, f.owner, f.name, f.size,"      \
    " f.mime, f.path, f.sha256, f.created_at"
#define PG_MSG_COLS  PG_MSG_COLS_V1 ", m.edited_at, m.deleted"
#define PG_MSG_NCOLS 22
#define PG_MSG_FROM  " FROM messages m LEFT JOIN files f ON f.id = m.file_id "

/* parlor_send_many's argument types and its CREATE up to the body, as versions 6, 7 and 8
 * each (re)create it with the same signature and row (store_pg_schema*.c). Shipped migrations
 * are frozen text: these expand to the very bytes each version was written with. */
#define PG_SEND_MANY_ARGTYPES                                                                      \
    "(text[], text[], text[], text[], integer[], text[], text[],\n"                                \
    " text[], bigint[], text[], text[], bytea)"
#define PG_SEND_MANY_CREATE                                                                        \
    "CREATE FUNCTION parlor_send_many(p_sender text[], p_conv text[], p_recipient text[],\n"       \
    " p_key text[], p_len integer[], p_type text[], p_file text[], p_cmid text[], p_now "          \
    "bigint[],\n"                                                                                  \
    " p_id text[], p_new_conv text[], p_blob bytea)\n"                                             \
    "RETURNS TABLE (o_i integer, o_status integer, o_dup boolean, o_created boolean, o_id text,\n" \
    " o_conv text, o_seq bigint, o_pos bigint, o_sender text, o_recipient text, o_content "        \
    "bytea,\n"                                                                                     \
    " o_type text, o_cmid text, o_read_at bigint, o_created_at bigint, o_updated_at bigint,\n"     \
    " o_fid text, o_fowner text, o_fname text, o_fsize bigint, o_fmime text, o_fpath text,\n"      \
    " o_fsha text, o_fcreated bigint, o_edited_at bigint, o_deleted boolean,\n"                    \
    " o_prev_sender bigint, o_prev_recipient bigint)\n"                                            \
    "LANGUAGE plpgsql AS $f$\n"

/* Schema version 7 (store_pg_schema_v7.c): the send as one function. */
extern const char pg_migration_7[];
/* Schema version 8 (store_pg_schema_v8.c): the search vector, the chain and the block check
 * made cheaper per message. */
extern const char pg_migration_8[];

/* A {"a","b"} array literal of user ids (valid ids only: no quote or backslash); malloc'd. */
char *pg_id_array(const str_t *ids, size_t n, const str_t *also);

/* ---- Conversations (store_pg_conversations.c) --------------------------------------------- */

/* Loads conversation id (members, last message, the requester's watermark and unread count)
 * with one statement; NOT_FOUND, or FORBIDDEN when requester is given and not a member. */
int pg_conv_load(store_pg_t *db, str_t id, str_t requester, store_conversation_t *c,
                 store_arena_t *a);
/* The one direct conversation of a and b, created when missing (by this or another node). */
int pg_direct_find_or_create(store_pg_t *db, str_t a, str_t b, const store_context_t *ctx,
                             int64_t now, char id[ID_SIZE], bool *created);

/* ---- Pipelined writes (store_pg_messages.c, store_pg_users.c) ----------------------------- */

/* MESSAGE_INSERT, MARK_READ and USER_SEEN are one statement each (the first two call the
 * PL/pgSQL functions of the schema), which answers refusals in its row instead of raising:
 * they can be sent in a pipeline. */
static inline bool pg_pipelinable(store_op_t op)
{
    return op == STORE_OP_MESSAGE_INSERT || op == STORE_OP_MARK_READ || op == STORE_OP_USER_SEEN;
}

/* Whether a new message's outputs surely fit req's arena. When they might not, the send runs
 * unpipelined inside a savepoint, so that a STORE_E_NOSPACE stores nothing. */
bool pg_message_fits(const store_message_insert_t *op, const store_arena_t *a);

typedef struct {
    char id[ID_SIZE], conv[ID_SIZE];
    char key[STORE_DIRECT_KEY_SIZE];
} pg_scratch_t;

/* Validates req (resetting its outputs) and fills its statement: STORE_OK with *stmt, *sql and
 * p set, or a refusal (STORE_E_INVALID) to answer without sending anything. */
int pg_pipe_params(store_req_t *req, int64_t now, pg_params_t *p, pg_scratch_t *s, int *stmt,
                   const char **sql);
/* Reads the statement's result into req's outputs; returns (and sets) req->status. row -1:
 * the result of the request's own statement; else its row of a parlor_send_many. */
int pg_pipe_finish(store_pg_t *db, store_req_t *req, const PGresult *res, int row);

int pg_message_params(store_message_insert_t *op, int64_t now, pg_params_t *p, pg_scratch_t *s);
/* A parlor_send row (row `row`, its columns from `first`) into op's outputs. */
int pg_message_finish(store_message_insert_t *op, store_arena_t *a, const PGresult *res, int row,
                      int first);
int pg_mark_read_params(store_mark_read_t *op, int64_t now, pg_params_t *p);
int pg_mark_read_finish(store_mark_read_t *op, const PGresult *res);
int pg_user_seen_params(const store_user_seen_t *op, pg_params_t *p);
extern const char pg_sql_send[], pg_sql_mark_read[], pg_sql_user_seen[];

/* ---- Operations ---------------------------------------------------------------------------- */

int pg_user_upsert(store_pg_t *db, const store_user_upsert_t *op, int64_t now);
int pg_account_create(store_pg_t *db, store_account_create_t *op, int64_t now);
int pg_account_get(store_pg_t *db, store_account_get_t *op, store_arena_t *a);
int pg_users_get(store_pg_t *db, store_users_get_t *op, store_arena_t *a);
int pg_users_search(store_pg_t *db, store_users_search_t *op, store_arena_t *a);
int pg_direct_open(store_pg_t *db, store_direct_open_t *op, store_arena_t *a, int64_t now);
int pg_group_create(store_pg_t *db, store_group_create_t *op, store_arena_t *a, int64_t now);
int pg_conversation_get(store_pg_t *db, store_conversation_get_t *op, store_arena_t *a);
int pg_conversations_list(store_pg_t *db, store_conversations_list_t *op, store_arena_t *a);
int pg_messages_page(store_pg_t *db, store_messages_page_t *op, store_arena_t *a);
int pg_messages_after(store_pg_t *db, store_messages_after_t *op, store_arena_t *a);
int pg_messages_since(store_pg_t *db, store_messages_since_t *op, store_arena_t *a);
int pg_file_insert(store_pg_t *db, store_file_insert_t *op, int64_t now);
int pg_message_update(store_pg_t *db, store_message_update_t *op, store_arena_t *a, int64_t now);
int pg_file_get(store_pg_t *db, store_file_get_t *op, store_arena_t *a);
int pg_contacts(store_pg_t *db, store_contacts_t *op, store_arena_t *a);
int pg_block_set(store_pg_t *db, store_block_set_t *op, int64_t now);
int pg_blocks_list(store_pg_t *db, store_blocks_list_t *op, store_arena_t *a);
int pg_block_check(store_pg_t *db, store_block_check_t *op);
int pg_unread_total(store_pg_t *db, store_unread_total_t *op);
int pg_search(store_pg_t *db, store_search_t *op, store_arena_t *a);
/* Issue 15 (store_pg_platform.c). */
int pg_system_insert(store_pg_t *db, store_system_insert_t *op, store_arena_t *a, int64_t now);
int pg_members_change(store_pg_t *db, store_members_change_t *op, store_arena_t *a, int64_t now);
int pg_user_export(store_pg_t *db, store_user_export_t *op, store_arena_t *a);
int pg_user_erase(store_pg_t *db, store_user_erase_t *op, store_arena_t *a, int64_t now);

/* ---- The webhook outbox (store_pg_outbox.c) ---------------------------------------------- */

/* Records an event in the current transaction when the outbox is on (store.h). */
int pg_outbox_add(store_pg_t *db, store_outbox_type_t type, const char *conv, int64_t now);
int pg_outbox_claim(store_pg_t *db, store_outbox_claim_t *op, store_arena_t *a, int64_t now);
int pg_outbox_ack(store_pg_t *db, const store_outbox_ack_t *op, int64_t now);

/* ---- Schema (store_pg_schema.c) ----------------------------------------------------------- */

/* Writer: creates or migrates the schema under the migration lock; readers: checks it. */
int pg_schema_migrate(store_pg_t *db, char *err, size_t errcap);
int pg_schema_check(store_pg_t *db, char *err, size_t errcap);

#endif
