/* The writer's checkpoints, off its commit path. SQLite's automatic checkpoint runs inside the
 * COMMIT that crosses wal_autocheckpoint pages: that batch's acknowledgements, and every send
 * queued behind it, wait while thousands of pages are copied into the database and it is
 * fsynced (tens to hundreds of milliseconds: the p99 of a light load). Here the writer's WAL
 * hook only wakes a thread of its own, which runs a PASSIVE checkpoint on a connection of its
 * own while the writer goes on committing; once a pass has copied everything, the writer's
 * next transaction starts the WAL again from its beginning, as before. If the checkpoints fall
 * behind (the WAL four times the threshold), the writer checkpoints in its own COMMIT as SQLite
 * would, so the WAL stays bounded. Durability is unchanged: commits fsync the WAL as before,
 * and a checkpoint fsyncs the WAL before copying and the database before the WAL is reused. */
#define _GNU_SOURCE /* pthread_setname_np */
#include "store/store_sqlite_int.h"

#include <pthread.h>
#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "core/log.h"

struct sq_checkpointer {
    sqlite3 *db; /* the checkpointer's own connection */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool wanted, running, stopping;
    int passes;    /* passes finished since the WAL last started again */
    int threshold; /* WAL pages that ask for a checkpoint */
    int last_n;    /* the WAL's pages at the writer's last commit (writer only) */
};

static void *ckpt_main(void *arg)
{
    sq_checkpointer_t *c = arg;
#ifdef __linux__
    pthread_setname_np(pthread_self(), "store-ckpt");
    /* Background work: a pass copies up to the whole WAL (64 MiB at the threshold: ~60 ms of
     * CPU), and on a core shared with the loop and the writer it took an equal share from them,
     * every queued message waiting behind it. At nice + 10 it takes about a tenth when they
     * want the core, all of it when they are idle; if it falls behind, the writer copies at
     * four times the threshold as before. Linux sets the nice value per thread. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), getpriority(PRIO_PROCESS, 0) + 10) !=
        0)
        log_debug("store: could not lower the checkpointer's priority");
#endif
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->wanted && !c->stopping) pthread_cond_wait(&c->cond, &c->mu);
        if (c->stopping) break;
        c->wanted = false;
        c->running = true;
        pthread_mutex_unlock(&c->mu);
        /* Passes until one copies little (at most 4): what the writer then copies in its COMMIT
         * (ckpt_hook's rest) is what was committed during that last short pass, not during the
         * first long one (a 7-29 ms COMMIT every ~3 s at 2,000 msgs/s before). */
        int log_pages = 0, done_pages = 0, prev = 0;
        for (int k = 0; k < 4; k++) {
            int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_pages,
                                               &done_pages);
            if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
                log_warn("store: checkpoint failed: %s", sqlite3_errmsg(c->db));
            if (rc != SQLITE_OK || done_pages - prev < 256) break;
            prev = done_pages;
        }
        pthread_mutex_lock(&c->mu);
        c->running = false;
        c->passes++;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Runs in the writer's COMMIT, after the WAL is synced: n is the WAL's pages. A pass on the
 * thread copies what was committed when it started; the writer keeps committing meanwhile, so
 * a WAL under steady load is never copied whole by the thread alone. After a pass the writer
 * copies the rest itself (only the pages committed during that pass), and its next transaction
 * starts the WAL again. */
static int ckpt_hook(void *arg, sqlite3 *db, const char *name, int n)
{
    sq_checkpointer_t *c = arg;
    bool restarted = n < c->last_n;
    c->last_n = n;
    if (n < c->threshold && !restarted) return SQLITE_OK;
    pthread_mutex_lock(&c->mu);
    if (restarted) c->passes = 0;
    bool busy = c->wanted || c->running;
    bool copy_rest = n >= c->threshold && !busy && c->passes > 0;
    if (n >= c->threshold && !busy && c->passes == 0) {
        c->wanted = true;
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&c->mu);
    /* The rest after a pass; or the WAL at four times the threshold: the thread cannot keep up,
     * the writer copies as SQLite would. */
    if (copy_rest || n >= 4 * c->threshold)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

int sq_checkpointer_start(store_sqlite_t *db, const char *path, int threshold)
{
    sq_checkpointer_t *c = calloc(1, sizeof *c);
    if (!c) return STORE_E_IO;
    c->threshold = threshold;
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(c->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(c->db);
        free(c);
        return STORE_E_IO;
    }
    sqlite3_busy_timeout(c->db, 0); /* a busy checkpoint is skipped, never waited for */
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    if (pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cond);
        sqlite3_close(c->db);
        free(c);
        return STORE_E_IO;
    }
    db->ckpt = c;
    sqlite3_wal_hook(db->db, ckpt_hook, c);
    return STORE_OK;
}

void sq_checkpointer_stop(store_sqlite_t *db)
{
    sq_checkpointer_t *c = db->ckpt;
    if (!c) return;
    sqlite3_wal_hook(db->db, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    sqlite3_close(c->db);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    free(c);
    db->ckpt = NULL;
}
