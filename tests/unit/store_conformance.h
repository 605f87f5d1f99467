/* The store conformance suite: what every store engine must do, tested at the store interface
 * only (store_open_with, store_submit, running the loop until done(); no SQL), so that one set
 * of cases holds every engine to store.h's guarantees.
 *
 * store_conformance.c runs each case against a target: always "sqlite:<a fresh file>", and
 * when PARLOR_TEST_PG_URL is set, PostgreSQL too, each case in a schema of its own. The cases
 * live in store_conformance_<area>.c, each exporting a table of sc_case_t; the synchronous
 * helpers below run one request to completion. What is SQLite's own (migrations of the file,
 * WAL, busy, the writer's send cache) stays in test_store_sqlite.c. */
#ifndef PARLOR_TESTS_STORE_CONFORMANCE_H
#define PARLOR_TESTS_STORE_CONFORMANCE_H

#define UNIT_SHARED_COUNTERS
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "store/store.h"
#include "store/store_engine.h"
#include "store/store_thread.h"
#include "unit.h"

#define container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

/* One case's run against one target. */
typedef struct sc {
    const char *engine; /* "sqlite" or "postgres" */
    unsigned caps;      /* the engine's STORE_ENGINE_* */
    char target[1024];  /* the store URL of this case's fresh, empty database */
    uv_loop_t *loop;
    store_t *s;      /* opened by the harness before the case and closed after it, unless the case
                        closed it itself (and set it to NULL) */
    store_req_t req; /* the synchronous helpers' request; outputs stay valid until the next */
} sc_t;

typedef struct {
    const char *name;
    void (*fn)(sc_t *t);
} sc_case_t;

/* Each file's cases, ended by {NULL, NULL}. */
extern const sc_case_t sc_cases_users[];
extern const sc_case_t sc_cases_conversations[];
extern const sc_case_t sc_cases_messages[];
extern const sc_case_t sc_cases_edits[];
extern const sc_case_t sc_cases_async[];
extern const sc_case_t sc_cases_guarantees[];
extern const sc_case_t sc_cases_writers[];
extern const sc_case_t sc_cases_blocks[];    /* store_conformance_blocks.c (issue 16) */
extern const sc_case_t sc_cases_search[];    /* store_conformance_search.c (issue 16) */
extern const sc_case_t sc_cases_pg[];        /* PostgreSQL only (store_conformance_pg.c) */
extern const sc_case_t sc_cases_platform[];  /* store_conformance_platform.c (issue 15) */
extern const sc_case_t sc_cases_outbox[];    /* store_conformance_outbox.c (issue 15) */
extern const sc_case_t sc_cases_pg_schema[]; /* PostgreSQL only (store_conformance_pg_schema.c) */

/* The loop's thread (every done() must run on it). */
extern uv_thread_t sc_loop_thread;

/* Another store on this case's database, on the case's loop; NULL (and a failed check) when
 * it cannot be opened. opts NULL: the defaults. */
store_t *sc_open(sc_t *t, const store_options_t *opts);
/* store_close, then runs the loop until the store's handles are closed. */
void sc_close(sc_t *t, store_t *s);
/* Submits r (its done is replaced) to s and runs the loop until r is done; r's status. */
int sc_run(sc_t *t, store_t *s, store_req_t *r);
/* Runs one operation on t->s: copies the op struct u (of size size) into t->req, runs it with
 * arena a (NULL: none) and now_ms now, copies the outputs back into u and the arena's marks
 * into a. Returns the status. */
int sc_run_op(sc_t *t, store_op_t op, void *u, size_t size, store_arena_t *a, int64_t now);
/* A done() that counts: (*(int *)r->data)++. */
void sc_count_done(store_req_t *r);
/* Runs one request on t->s (sc_run). */
#define sc_exec(t, r) sc_run(t, (t)->s, r)
/* Runs n requests on s in one batch of its writer: pauses the writer, submits them all (their
 * done is replaced), resumes it and runs the loop until every one is done. */
void sc_run_batch(sc_t *t, store_t *s, store_req_t *const *reqs, size_t n);
/* A view of the suite's shared 1 MiB output buffer (every call returns the same memory). */
store_arena_t sc_arena(void);
/* The engine runs with several writers (the same database open in several store_t, or
 * processes): the cases about concurrent writers run only then. */
static inline bool sc_multi_writer(const sc_t *t)
{
    if (t->caps & STORE_ENGINE_SINGLE_WRITER)
        fprintf(stderr, "  not applicable: the engine is the only writer of its database\n");
    return !(t->caps & STORE_ENGINE_SINGLE_WRITER);
}

/* ---- One call per operation, as the engine functions were called before the suite -------- */

#define SC_OP(name, OP, T)                                                                         \
    static inline int sc_##name(sc_t *t, T *op, store_arena_t *a, int64_t now)                     \
    {                                                                                              \
        return sc_run_op(t, OP, op, sizeof *op, a, now);                                           \
    }
SC_OP(user_upsert_, STORE_OP_USER_UPSERT, store_user_upsert_t)
SC_OP(user_seen_, STORE_OP_USER_SEEN, store_user_seen_t)
SC_OP(account_create_, STORE_OP_ACCOUNT_CREATE, store_account_create_t)
SC_OP(account_get_, STORE_OP_ACCOUNT_GET, store_account_get_t)
SC_OP(users_get_, STORE_OP_USERS_GET, store_users_get_t)
SC_OP(users_search_, STORE_OP_USERS_SEARCH, store_users_search_t)
SC_OP(direct_open_, STORE_OP_DIRECT_OPEN, store_direct_open_t)
SC_OP(group_create_, STORE_OP_GROUP_CREATE, store_group_create_t)
SC_OP(conversation_get_, STORE_OP_CONVERSATION_GET, store_conversation_get_t)
SC_OP(conversations_list_, STORE_OP_CONVERSATIONS_LIST, store_conversations_list_t)
SC_OP(message_insert_, STORE_OP_MESSAGE_INSERT, store_message_insert_t)
SC_OP(messages_page_, STORE_OP_MESSAGES_PAGE, store_messages_page_t)
SC_OP(messages_after_, STORE_OP_MESSAGES_AFTER, store_messages_after_t)
SC_OP(messages_since_, STORE_OP_MESSAGES_SINCE, store_messages_since_t)
SC_OP(mark_read_, STORE_OP_MARK_READ, store_mark_read_t)
SC_OP(file_insert_, STORE_OP_FILE_INSERT, store_file_insert_t)
SC_OP(file_get_, STORE_OP_FILE_GET, store_file_get_t)
SC_OP(contacts_, STORE_OP_CONTACTS, store_contacts_t)
SC_OP(block_set_, STORE_OP_BLOCK_SET, store_block_set_t)
SC_OP(blocks_list_, STORE_OP_BLOCKS_LIST, store_blocks_list_t)
SC_OP(block_check_, STORE_OP_BLOCK_CHECK, store_block_check_t)
SC_OP(unread_total_, STORE_OP_UNREAD_TOTAL, store_unread_total_t)
SC_OP(search_, STORE_OP_SEARCH, store_search_t)
SC_OP(message_update_, STORE_OP_MESSAGE_UPDATE, store_message_update_t)
SC_OP(system_insert_, STORE_OP_SYSTEM_INSERT, store_system_insert_t)
SC_OP(members_change_, STORE_OP_MEMBERS_CHANGE, store_members_change_t)
#undef SC_OP

/* Writes without string outputs take the time; reads take the arena. */
#define sc_user_upsert(t, op, now)       sc_user_upsert_(t, op, NULL, now)
#define sc_user_seen(t, op)              sc_user_seen_(t, op, NULL, 0)
#define sc_account_create(t, op, now)    sc_account_create_(t, op, NULL, now)
#define sc_account_get(t, op, a)         sc_account_get_(t, op, a, 0)
#define sc_users_get(t, op, a)           sc_users_get_(t, op, a, 0)
#define sc_users_search(t, op, a)        sc_users_search_(t, op, a, 0)
#define sc_direct_open(t, op, a, now)    sc_direct_open_(t, op, a, now)
#define sc_group_create(t, op, a, now)   sc_group_create_(t, op, a, now)
#define sc_conversation_get(t, op, a)    sc_conversation_get_(t, op, a, 0)
#define sc_conversations_list(t, op, a)  sc_conversations_list_(t, op, a, 0)
#define sc_message_insert(t, op, a, now) sc_message_insert_(t, op, a, now)
#define sc_messages_page(t, op, a)       sc_messages_page_(t, op, a, 0)
#define sc_messages_after(t, op, a)      sc_messages_after_(t, op, a, 0)
#define sc_messages_since(t, op, a)      sc_messages_since_(t, op, a, 0)
#define sc_mark_read(t, op, now)         sc_mark_read_(t, op, NULL, now)
#define sc_file_insert(t, op, now)       sc_file_insert_(t, op, NULL, now)
#define sc_file_get(t, op, a)            sc_file_get_(t, op, a, 0)
#define sc_contacts(t, op, a)            sc_contacts_(t, op, a, 0)
#define sc_message_update(t, op, a, now) sc_message_update_(t, op, a, now)

/* ---- Shared steps ------------------------------------------------------------------------ */

/* Upserts user id with name (role "tenant") at time 1000. */
void sc_upsert(sc_t *t, const char *id, const char *name);
/* Opens the a|b direct conversation (at 1000) and copies its id into out. */
void sc_direct(sc_t *t, const char *a, const char *b, char out[ID_SIZE]);
/* Inserts a text message into conv at now; op gets the outputs. */
int sc_send_at(sc_t *t, const char *conv, const char *sender, const char *text, int64_t now,
               store_message_insert_t *op);
/* The same at 2000, checked; the new message's seq (-1 on failure). */
int64_t sc_send(sc_t *t, const char *conv, const char *sender, const char *text);
/* Marks msg read for user in conv at now. */
int sc_mark(sc_t *t, const char *conv, const char *user, const char *msg, int64_t now,
            store_mark_read_t *op);
/* The contacts of user in mode, joined with commas, into out (returned). */
const char *sc_contacts_of(sc_t *t, const char *user, store_contacts_mode_t mode, char *out,
                           size_t cap);
/* A conversation's last_seq (and updated_at when asked), read on t->s. */
int64_t sc_last_seq(sc_t *t, const char *conv, int64_t *updated_at);

#endif
