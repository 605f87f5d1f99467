/* The asynchronous store: a writer thread with group commit, reader threads, and completions
 * delivered on the libuv loop through a uv_async_t. It reaches its engine only through the
 * engine's struct (store_engine.h). */
#define _GNU_SOURCE /* pthread_setname_np */
#include "store/store_thread.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "core/log.h"
#include "store/store_engine.h"

/* An intrusive FIFO through req->next_. */
typedef struct {
    store_req_t *head, *tail;
} store_queue_t;

static void queue_push(store_queue_t *q, store_req_t *r)
{
    r->next_ = NULL;
    if (q->tail)
        q->tail->next_ = r;
    else
        q->head = r;
    q->tail = r;
}

/* Appends a chain whose last element is tail. */
static void queue_append(store_queue_t *q, store_req_t *head, store_req_t *tail)
{
    if (!head) return;
    if (q->tail)
        q->tail->next_ = head;
    else
        q->head = head;
    q->tail = tail;
}

struct store {
    uv_loop_t *loop;
    uv_async_t async;
    uv_timer_t lazy_timer;     /* hands the lazy writes over after STORE_LAZY_MS */
    uv_prepare_t kick_prepare; /* wake the writer once per loop iteration (see store_submit) */
    uv_check_t kick_check;
    int open_handles; /* the async, the timer and the two kick handles; freed when all closed */
    const store_engine_t *engine;
    void *writer_conn;
    void *reader_conn[STORE_READERS_MAX];
    unsigned readers;
    unsigned batch_max;
    unsigned commit_wait_us;
    /* Writer thread only (adaptive batching, store_gather): when it last took a batch, and a
     * moving average of the time between writes (ns per write) over the last few batches. */
    uint64_t last_take_ns, gap_ns;
    unsigned gather_skip, gather_misses; /* back-off after waits that brought no company */
    uv_thread_t writer;
    uv_thread_t reader[STORE_READERS_MAX];
    struct store_reader_arg {
        store_t *s;
        void *conn;
    } reader_arg[STORE_READERS_MAX];
    unsigned threads_started; /* writer + readers that are running */

    /* Requests, guarded by mu. */
    uv_mutex_t mu;
    uv_cond_t writer_cond, reader_cond;
    store_queue_t writes, reads;
    bool stopping, paused;
    bool writer_waiting;   /* the writer is in uv_cond_wait */
    bool writer_gathering; /* the writer waits for company for a small batch (store_gather) */
    unsigned nwrites;      /* writes queued */
    uint64_t first_ns;     /* uv_hrtime when the oldest queued write was queued (0: long ago) */

    /* Completions, guarded by cmu; posted by the threads, drained on the loop. */
    uv_mutex_t cmu;
    store_queue_t completions;

    /* Loop thread only. */
    store_queue_t lazy; /* lazy writes not yet handed to the writer, in order */
    unsigned nlazy;
    store_queue_t held;      /* reads of this loop turn, not yet handed to the readers */
    store_req_t *delivering; /* completions taken from the queue, not yet delivered */
    size_t inflight;         /* the async handle keeps the loop alive only while > 0 */
    bool closing;
    bool kick; /* writes queued since the writer was last signalled */

    _Atomic uint64_t commits, writes_done, reads_done, max_batch, failed_commits;
    /* The writer thread's: while the database is down every batch fails at once, so its
     * failures are logged once per interval with a count (core/log.h). */
    log_throttle_t unavailable_log;
};

/* ---- Threads --------------------------------------------------------------------------- */

static void store_post(store_t *s, store_req_t *head, store_req_t *tail)
{
    uv_mutex_lock(&s->cmu);
    queue_append(&s->completions, head, tail);
    uv_mutex_unlock(&s->cmu);
    uv_async_send(&s->async);
}

static void store_fail_all(store_req_t *r, int status)
{
    for (; r; r = r->next_) r->status = status;
}

/* One transaction for the whole batch: the fsync of COMMIT is paid once for all of it. Each
 * request is atomic on its own inside the engine (SQLite: a savepoint each; PostgreSQL:
 * refusals decided before any write), so a refused request is undone alone. Only an error
 * that aborts the transaction itself (I/O, disk full, connection lost) fails the batch. An
 * engine with exec_batch runs the whole batch itself (PostgreSQL: one pipeline). */
static void store_run_batch(store_t *s, store_req_t *head, uint64_t n)
{
    const store_engine_t *e = s->engine;
    void *conn = s->writer_conn;
    int rc;
    if (e->exec_batch) {
        rc = e->exec_batch(conn, head);
        if (rc == STORE_E_UNAVAILABLE)
            log_write_throttled(&s->unavailable_log, LOG_ERROR, "store: batch failed: %s",
                                e->errmsg(conn));
        else if (rc != STORE_OK)
            log_error("store: batch failed: %s", e->errmsg(conn));
    } else {
        rc = e->begin(conn);
        if (rc != STORE_OK) {
            log_error("store: BEGIN failed: %s", e->errmsg(conn));
            store_fail_all(head, rc);
            atomic_fetch_add(&s->failed_commits, 1);
            return;
        }
        for (store_req_t *r = head; r; r = r->next_) {
            e->exec(conn, r);
            if (!e->in_transaction(conn)) {
                log_error("store: transaction aborted: %s", e->errmsg(conn));
                rc = r->status == STORE_E_UNAVAILABLE ? STORE_E_UNAVAILABLE : STORE_E_IO;
                break;
            }
        }
        if (rc == STORE_OK) {
            rc = e->commit(conn);
            if (rc != STORE_OK) log_error("store: COMMIT failed: %s", e->errmsg(conn));
        } else {
            e->rollback(conn);
        }
    }
    if (rc != STORE_OK) {
        /* BUSY and UNAVAILABLE are retryable and say so; anything else is an I/O failure. */
        store_fail_all(head, rc == STORE_E_BUSY || rc == STORE_E_UNAVAILABLE ? rc : STORE_E_IO);
        atomic_fetch_add(&s->failed_commits, 1);
        return;
    }
    atomic_fetch_add(&s->commits, 1);
    atomic_fetch_add(&s->writes_done, n);
    uint64_t max = atomic_load(&s->max_batch);
    if (n > max) atomic_store(&s->max_batch, n); /* only this thread writes it */
}

/* Adaptive batching (--store-commit-wait-us): at light load every write would pay a commit of
 * its own, and a commit is what costs here (an fdatasync is ~130 µs of CPU on this kind of VM,
 * against a few µs of SQLite work per message). So a small batch waits for company, but only
 * when company is expected: the writes of the last few batches came less than the wait apart.
 * The wait is counted from when the oldest write of the batch was queued, so no write waits
 * longer than commit_wait_us for it (one queued behind a commit in progress has waited already),
 * and it ends as soon as GATHER_TARGET writes are queued (store_kick signals). A lone write, or
 * writes further apart than the wait, never wait. Writes that come close together only because
 * each waits for the previous one's commit (one client sending in sequence) would wait for
 * company that cannot come: a wait that gained nothing skips the next 1, 3, 7 ... 63 chances.
 * Caller holds mu; the writer thread. */
#define GATHER_TARGET 8

static void gap_update(store_t *s, uint64_t n)
{
    uint64_t now = uv_hrtime(), cap = 8000ull * s->commit_wait_us;
    if (s->last_take_ns) {
        uint64_t g = (now - s->last_take_ns) / n;
        if (g > cap) g = cap; /* an idle minute does not take a minute of batches to forget */
        s->gap_ns = s->gap_ns - s->gap_ns / 8 + g / 8;
    } else {
        s->gap_ns = cap;
    }
    s->last_take_ns = now;
}

static void store_gather(store_t *s)
{
    uint64_t wait_ns = 1000ull * s->commit_wait_us;
    if (s->nwrites >= GATHER_TARGET || !s->first_ns || s->gap_ns >= wait_ns ||
        uv_hrtime() >= s->first_ns + wait_ns) /* waited long enough behind a commit */
        return;
    if (s->gather_skip) {
        s->gather_skip--;
        return;
    }
    uint64_t deadline = s->first_ns + wait_ns;
    unsigned before = s->nwrites;
    s->writer_gathering = true;
    for (;;) {
        uint64_t now = uv_hrtime();
        if (now >= deadline || s->stopping || s->paused || s->nwrites >= GATHER_TARGET) break;
        uv_cond_timedwait(&s->writer_cond, &s->mu, deadline - now);
    }
    s->writer_gathering = false;
    if (s->nwrites > before) {
        s->gather_misses = 0;
    } else if (!s->stopping && !s->paused) {
        s->gather_misses = s->gather_misses < 32 ? 2 * s->gather_misses + 1 : 63;
        s->gather_skip = s->gather_misses;
    }
}

static void store_writer_main(void *arg)
{
    store_t *s = arg;
#ifdef __linux__
    pthread_setname_np(pthread_self(), "store-writer");
#endif
    bool wrote = false; /* since the engine's idle hook last ran */
    for (;;) {
        uv_mutex_lock(&s->mu);
        while (!(s->writes.head && (!s->paused || s->stopping)) &&
               !(s->stopping && !s->writes.head)) {
            s->writer_waiting = true; /* store_kick signals only a waiting writer */
            if (!wrote || !s->engine->idle) {
                uv_cond_wait(&s->writer_cond, &s->mu);
                s->writer_waiting = false;
                continue;
            }
            /* Idle for STORE_IDLE_MS after writing: let the engine give back its cache. */
            int wrc = uv_cond_timedwait(&s->writer_cond, &s->mu, STORE_IDLE_MS * 1000000ull);
            s->writer_waiting = false;
            if (wrc == UV_ETIMEDOUT && !s->writes.head && !s->stopping && !s->paused) {
                wrote = false;
                uv_mutex_unlock(&s->mu);
                s->engine->idle(s->writer_conn);
                uv_mutex_lock(&s->mu);
            }
        }
        if (!s->writes.head) {
            uv_mutex_unlock(&s->mu);
            break;
        }
        if (s->commit_wait_us && !s->stopping) {
            store_gather(s);
            if (s->paused && !s->stopping) { /* paused meanwhile: wait again */
                uv_mutex_unlock(&s->mu);
                continue;
            }
        }
        /* Group commit: take whatever queued up while the previous batch was committing. */
        store_req_t *head = s->writes.head, *tail = head;
        uint64_t n = 1;
        while (n < s->batch_max && tail->next_) {
            tail = tail->next_;
            n++;
        }
        s->writes.head = tail->next_;
        if (!s->writes.head) s->writes.tail = NULL;
        tail->next_ = NULL;
        s->nwrites -= (unsigned)n;
        s->first_ns = 0; /* what is left (more than batch_max were queued) is not held back */
        uv_mutex_unlock(&s->mu);
        if (s->commit_wait_us) gap_update(s, n);

        store_run_batch(s, head, n);
        wrote = true;
        store_post(s, head, tail);
    }
}

/* A reader takes up to this many queued reads at once (its share when several readers
 * wait) and runs them in one read transaction when the engine has read_begin: a burst of
 * handshakes (a presence contacts read each) paid SQLite's WAL read lock and unlock, two fcntl
 * calls, per read. */
#define READ_RUN_MAX 16

static void store_reader_main(void *arg)
{
    const struct store_reader_arg *ra = arg;
    store_t *s = ra->s;
    void *conn = ra->conn;
    const store_engine_t *e = s->engine;
#ifdef __linux__
    pthread_setname_np(pthread_self(), "store-reader");
#endif
    for (;;) {
        uv_mutex_lock(&s->mu);
        while (!s->reads.head && !s->stopping) uv_cond_wait(&s->reader_cond, &s->mu);
        store_req_t *head = s->reads.head;
        if (!head) {
            uv_mutex_unlock(&s->mu);
            break;
        }
        /* This reader's share of what waits: the others are woken for the rest. */
        size_t queued = 0, cap = (size_t)READ_RUN_MAX * (s->readers > 0 ? s->readers : 1);
        for (store_req_t *q = head; q && queued < cap; q = q->next_) queued++;
        size_t take = s->readers > 1 ? (queued + s->readers - 1) / s->readers : queued;
        if (take > READ_RUN_MAX) take = READ_RUN_MAX;
        store_req_t *last = head;
        for (size_t i = 1; i < take; i++) last = last->next_;
        s->reads.head = last->next_;
        if (!s->reads.head) s->reads.tail = NULL;
        last->next_ = NULL;
        uv_mutex_unlock(&s->mu);

        bool run = take > 1 && e->read_begin && e->read_begin(conn) == STORE_OK;
        for (store_req_t *r = head, *next; r; r = next) {
            next = r->next_;
            r->next_ = NULL;
            e->exec(conn, r);
            atomic_fetch_add(&s->reads_done, 1);
            store_post(s, r, r);
        }
        if (run) e->read_end(conn);
    }
}

/* ---- Loop side ------------------------------------------------------------------------- */

/* Safe to re-enter from a done() (e.g. one that closes the store): progress lives in s. */
static void store_deliver(store_t *s)
{
    for (;;) {
        if (!s->delivering) {
            uv_mutex_lock(&s->cmu);
            s->delivering = s->completions.head;
            s->completions.head = s->completions.tail = NULL;
            uv_mutex_unlock(&s->cmu);
            if (!s->delivering) break;
        }
        store_req_t *r = s->delivering;
        s->delivering = r->next_;
        r->next_ = NULL;
        if (--s->inflight == 0 && !s->closing) uv_unref((uv_handle_t *)&s->async);
        r->done(r);
    }
}

static void store_async_cb(uv_async_t *h)
{
    store_deliver(h->data);
}

static void store_free(store_t *s)
{
    uv_mutex_destroy(&s->mu);
    uv_mutex_destroy(&s->cmu);
    uv_cond_destroy(&s->writer_cond);
    uv_cond_destroy(&s->reader_cond);
    free(s);
}

static void store_on_close(uv_handle_t *h)
{
    store_t *s = h->data;
    if (--s->open_handles == 0) store_free(s);
}

/* Moves the lazy writes to the writer's queue, ahead of whatever comes next; caller holds mu. */
static void lazy_hand_over_locked(store_t *s)
{
    if (!s->lazy.head) return;
    queue_append(&s->writes, s->lazy.head, s->lazy.tail);
    s->lazy.head = s->lazy.tail = NULL;
    s->nwrites += s->nlazy;
    s->nlazy = 0;
    s->first_ns = 0; /* they waited STORE_LAZY_MS already */
    uv_timer_stop(&s->lazy_timer);
    uv_cond_signal(&s->writer_cond);
}

/* Reads submitted during one loop turn go to the readers together, under one lock and one
 * wake-up, at the end of the loop iteration (store_kick): a burst of handshakes (a presence
 * contacts read each) cost a futex wake-up and a context switch to the reader per read, a third of
 * a handshake's server CPU on a busy core. Caller holds mu. */
static void hand_reads_locked(store_t *s)
{
    if (!s->held.head) return;
    size_t n = 0;
    for (store_req_t *r = s->held.head; r && n < 2; r = r->next_) n++;
    queue_append(&s->reads, s->held.head, s->held.tail);
    s->held.head = s->held.tail = NULL;
    if (n > 1)
        uv_cond_broadcast(&s->reader_cond);
    else
        uv_cond_signal(&s->reader_cond);
}

static void lazy_timer_cb(uv_timer_t *t)
{
    store_t *s = t->data;
    uv_mutex_lock(&s->mu);
    lazy_hand_over_locked(s);
    uv_mutex_unlock(&s->mu);
}

/* The writer is signalled once per loop iteration, not once per write: right after the
 * iteration's I/O callbacks (check) and, for writes submitted anywhere else, before the loop
 * blocks (prepare). Every write submitted while the loop handled one poll's worth of frames
 * goes into one batch and one commit, and the writer is woken once for it. The reads of the
 * iteration go to the readers at the same moment (hand_reads_locked), under the same lock. */
static void store_kick(store_t *s)
{
    if (!s->kick && !s->held.head) return;
    bool wake = false;
    /* The writer is signalled only if it waits, and after the unlock: a writer woken while the
     * loop still held the mutex would block on it at once (two more futex calls per batch).
     * The writes were queued under the mutex, so a writer not waiting now sees them before it
     * waits. */
    uv_mutex_lock(&s->mu);
    hand_reads_locked(s);
    if (s->kick) {
        s->kick = false;
        wake = s->writer_waiting || (s->writer_gathering && s->nwrites >= GATHER_TARGET);
    }
    uv_mutex_unlock(&s->mu);
    if (wake) uv_cond_signal(&s->writer_cond);
}

static void kick_prepare_cb(uv_prepare_t *h)
{
    store_kick(h->data);
}

static void kick_check_cb(uv_check_t *h)
{
    store_kick(h->data);
}

/* Stops and joins the threads that were started, then closes the connections. */
static void store_stop_threads(store_t *s)
{
    uv_mutex_lock(&s->mu);
    s->stopping = true;
    uv_cond_broadcast(&s->writer_cond);
    uv_cond_broadcast(&s->reader_cond);
    uv_mutex_unlock(&s->mu);
    if (s->threads_started > 0) uv_thread_join(&s->writer);
    for (unsigned i = 1; i < s->threads_started; i++) uv_thread_join(&s->reader[i - 1]);
    s->threads_started = 0;
    if (s->writer_conn) s->engine->close(s->writer_conn);
    for (unsigned i = 0; i < s->readers; i++)
        if (s->reader_conn[i]) s->engine->close(s->reader_conn[i]);
    s->writer_conn = NULL;
    memset(s->reader_conn, 0, sizeof s->reader_conn);
}

int store_open(uv_loop_t *loop, const char *target, store_t **out, char *err, size_t errcap)
{
    return store_open_with(loop, target, NULL, out, err, errcap);
}

int store_open_with(uv_loop_t *loop, const char *target, const store_options_t *opts, store_t **out,
                    char *err, size_t errcap)
{
    int rc;
    *out = NULL;
    const char *path;
    const char *engine_name = store_target_engine(target, &path);
    if (!engine_name) {
        snprintf(err, errcap, "unknown store URL scheme (use sqlite:PATH or postgres://...)");
        return STORE_E_INVALID;
    }
    store_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return STORE_E_IO;
    }
    s->loop = loop;
    s->engine = store_engine_find(engine_name);
    if (!s->engine) {
        snprintf(err, errcap, "no store engine \"%s\" in this build", engine_name);
        free(s);
        return STORE_E_INVALID;
    }
    s->batch_max = opts && opts->batch_max ? opts->batch_max : STORE_BATCH_DEFAULT;
    s->commit_wait_us = opts ? opts->commit_wait_us : 0;
    s->gap_ns = UINT64_MAX; /* no company expected until batches have been seen */
    s->readers = opts && opts->readers ? opts->readers : STORE_READERS_DEFAULT;
    if (s->readers > STORE_READERS_MAX) s->readers = STORE_READERS_MAX;
    /* An engine without reader connections runs every request on the writer. */
    if (!(s->engine->caps & STORE_ENGINE_READERS)) s->readers = 0;
    uv_mutex_init(&s->mu);
    uv_mutex_init(&s->cmu);
    uv_cond_init(&s->writer_cond);
    uv_cond_init(&s->reader_cond);

    /* The writer opens first: it creates the file, switches to WAL and migrates; readers then
     * only check the version. */
    if ((rc = s->engine->open(path, false, &s->writer_conn, err, errcap)) != STORE_OK) goto fail;
    for (unsigned i = 0; i < s->readers; i++)
        if ((rc = s->engine->open(path, true, &s->reader_conn[i], err, errcap)) != STORE_OK)
            goto fail;

    if (uv_async_init(loop, &s->async, store_async_cb) != 0) {
        snprintf(err, errcap, "uv_async_init failed");
        rc = STORE_E_IO;
        goto fail;
    }
    s->async.data = s;
    uv_unref((uv_handle_t *)&s->async);
    s->open_handles = 1;
    uv_timer_init(loop, &s->lazy_timer);
    s->lazy_timer.data = s;
    s->open_handles = 2;
    uv_prepare_init(loop, &s->kick_prepare);
    s->kick_prepare.data = s;
    uv_prepare_start(&s->kick_prepare, kick_prepare_cb);
    uv_unref((uv_handle_t *)&s->kick_prepare);
    uv_check_init(loop, &s->kick_check);
    s->kick_check.data = s;
    uv_check_start(&s->kick_check, kick_check_cb);
    uv_unref((uv_handle_t *)&s->kick_check);
    s->open_handles = 4;

    if (uv_thread_create(&s->writer, store_writer_main, s) != 0) goto fail_thread;
    s->threads_started = 1;
    for (unsigned i = 0; i < s->readers; i++) {
        s->reader_arg[i].s = s;
        s->reader_arg[i].conn = s->reader_conn[i];
        if (uv_thread_create(&s->reader[i], store_reader_main, &s->reader_arg[i]) != 0)
            goto fail_thread;
        s->threads_started++;
    }
    *out = s;
    return STORE_OK;

fail_thread:
    snprintf(err, errcap, "cannot start store threads");
    store_stop_threads(s);
    uv_close((uv_handle_t *)&s->kick_prepare, store_on_close);
    uv_close((uv_handle_t *)&s->kick_check, store_on_close);
    uv_close((uv_handle_t *)&s->lazy_timer, store_on_close);
    uv_close((uv_handle_t *)&s->async, store_on_close);
    return STORE_E_IO;
fail:
    store_stop_threads(s);
    store_free(s);
    return rc;
}

int store_submit(store_t *s, store_req_t *req)
{
    if (!s || !req || !req->done || (unsigned)req->op >= STORE_OP_COUNT_) return STORE_E_INVALID;
    if (s->closing) return STORE_E_CANCELLED;
    req->status = STORE_OK;
    if (s->inflight++ == 0) uv_ref((uv_handle_t *)&s->async);
    if (req->lazy && store_op_is_write(req->op)) {
        queue_push(&s->lazy, req);
        s->nlazy++;
        if (!uv_is_active((uv_handle_t *)&s->lazy_timer))
            uv_timer_start(&s->lazy_timer, lazy_timer_cb, STORE_LAZY_MS, 0);
        return STORE_OK;
    }
    if (store_op_is_write(req->op) || req->ordered || s->readers == 0) {
        uv_mutex_lock(&s->mu);
        lazy_hand_over_locked(s);
        if (!s->writes.head && s->commit_wait_us) s->first_ns = uv_hrtime();
        queue_push(&s->writes, req);
        s->nwrites++;
        uv_mutex_unlock(&s->mu);
        s->kick = true; /* signalled at the end of this loop iteration (store_kick) */
        return STORE_OK;
    }
    queue_push(&s->held, req); /* handed to the readers at the end of this iteration too */
    return STORE_OK;
}

void store_close(store_t *s)
{
    if (!s || s->closing) return;
    s->closing = true;
    uv_mutex_lock(&s->mu);
    lazy_hand_over_locked(s);
    hand_reads_locked(s);
    uv_mutex_unlock(&s->mu);
    store_stop_threads(s); /* the threads finish every queued request first */
    store_deliver(s);
    uv_close((uv_handle_t *)&s->kick_prepare, store_on_close);
    uv_close((uv_handle_t *)&s->kick_check, store_on_close);
    uv_close((uv_handle_t *)&s->lazy_timer, store_on_close);
    uv_close((uv_handle_t *)&s->async, store_on_close);
}

void store_stats(const store_t *s, store_stats_t *out)
{
    store_t *m = (store_t *)s; /* atomic loads of a const object are fine; the API is not */
    out->commits = atomic_load(&m->commits);
    out->writes = atomic_load(&m->writes_done);
    out->reads = atomic_load(&m->reads_done);
    out->max_batch = atomic_load(&m->max_batch);
    out->failed_commits = atomic_load(&m->failed_commits);
}

void store_writer_pause(store_t *s, bool paused)
{
    uv_mutex_lock(&s->mu);
    s->paused = paused;
    if (!paused) uv_cond_signal(&s->writer_cond);
    uv_mutex_unlock(&s->mu);
}
