/* The store engine contract: what an engine provides to the asynchronous store
 * (store_thread.c), and how engines are registered and found by name.
 *
 * An engine is one const struct of function pointers with a name and capability bits, as
 * curl's TLS backends (lib/vtls/vtls_int.h, struct Curl_ssl) and Redis's ConnectionType
 * (src/connection.h) are. The asynchronous store owns the threads, the queues and the
 * completions; an engine owns connections to its database and runs one request at a time on
 * one connection. It never sees the loop. Every engine keeps the guarantees written in
 * store.h; the capability bits say which of the extra, engine-specific promises it makes.
 *
 * Threads: a connection is used by one thread at a time (the store never shares one between
 * threads concurrently); different connections of one engine run in parallel. */
#ifndef PARLOR_STORE_STORE_ENGINE_H
#define PARLOR_STORE_STORE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

/* Capabilities: promises beyond store.h's, which the asynchronous store and the tests may rely
 * on when (and only when) the engine sets them. */
enum {
    /* The writer connection is the only writer of its database: no other process or
     * connection commits to it while it is open (SQLite: one file, one node). It follows that
     * commit order is the writer's execution order, so a message's pos may be taken at insert
     * time, and the engine may cache per-conversation state (last seq) across a batch. */
    STORE_ENGINE_SINGLE_WRITER = 1u << 0,
    /* Read-only connections (open with readonly) may run reads in parallel with the writer
     * and see every committed write (snapshot per read). Without it, the store runs every
     * request on the writer connection. */
    STORE_ENGINE_READERS = 1u << 1,
};

/* How long the writer waits without work before calling the engine's idle hook. */
#define STORE_IDLE_MS 1000

typedef struct store_engine {
    /* Registered under this name ("sqlite"); store_engine_find looks it up. */
    const char *name;
    unsigned caps; /* STORE_ENGINE_* */

    /* Opens one connection to target (SQLite: a file path). The first connection the store
     * opens is its writer (readonly false) and it must leave the schema current: create it,
     * or apply pending migrations, or refuse a database newer than this build. A readonly
     * connection is only opened after the writer; it refuses writes and requires the schema
     * to be current already. On failure returns a STORE_E_*, sets *conn to NULL and writes a
     * message for the operator into err (never a password). */
    int (*open)(const char *target, bool readonly, void **conn, char *err, size_t errcap);
    /* Closes a connection opened by open; NULL is a no-op. Any open transaction is rolled
     * back. */
    void (*close)(void *conn);

    /* Batches (group commit, writer connection only): begin opens one transaction for many
     * requests; every exec between begin and commit is atomic on its own (a refused request
     * is undone without touching the others); commit makes all of them durable and visible
     * together, or fails and rolls all of them back. rollback abandons the batch. */
    int (*begin)(void *conn);
    int (*commit)(void *conn);
    void (*rollback)(void *conn);
    /* True while the batch's transaction is still open. After an exec inside a batch, false
     * means the engine lost the whole transaction (I/O error, disk full, connection lost) and
     * the batch has failed: the store then fails every request of it. */
    bool (*in_transaction)(void *conn);

    /* Runs req->op with req's inputs and arena (store.h), sets req->status and returns it.
     * req->now_ms 0 means the store's clock (store_clock_ms). Outside a batch a write is its
     * own transaction. Never blocks forever: a lock it cannot get in bounded time is an
     * error (STORE_E_BUSY where the engine has locks that time out). */
    int (*exec)(void *conn, store_req_t *req);
    /* Optional (NULL: the store runs begin, exec of each request, commit). Runs a whole batch,
     * the chain head, head->next_, ... in submission order, in one transaction, with the same
     * meaning as begin/exec.../commit but free to send it in fewer round trips (PostgreSQL:
     * one pipeline). Sets every request's status. Returns STORE_OK once the transaction
     * committed; otherwise nothing of it is visible and the return value is the batch's
     * failure (STORE_E_UNAVAILABLE: the database could not be reached or the connection
     * broke, including during COMMIT; STORE_E_BUSY: retryable contention), which the store
     * then gives every request of the batch. */
    int (*exec_batch)(void *conn, store_req_t *head);
    /* Optional (NULL: every read is a transaction of its own). On a reader connection:
     * read_begin opens one read transaction for the reads a reader thread takes from the queue
     * together, read_end closes it (and must leave the connection outside any transaction).
     * Every read of such a run was submitted before the run was taken and its snapshot starts
     * at the first read, so each still sees every write that completed before it was
     * submitted. SQLite: one WAL read lock (two fcntl calls) per run instead of per read. */
    int (*read_begin)(void *conn);
    void (*read_end)(void *conn);
    /* The connection's last error message, for logs. */
    const char *(*errmsg)(void *conn);
    /* Optional (NULL: nothing). Called on the writer's thread, outside any transaction, once
     * the writer has had no work for STORE_IDLE_MS after writing: gives back the memory the
     * connection caches (SQLite: its page cache; a busy writer keeps it, an idle one does not
     * hold the pages of every row it wrote, e.g. each new user's record). */
    void (*idle)(void *conn);
} store_engine_t;

/* The registered engine of that name, or NULL. */
const store_engine_t *store_engine_find(const char *name);

/* The registered engines, in order, NULL-terminated (the first is the default). */
extern const store_engine_t *const store_engines[];

#endif
