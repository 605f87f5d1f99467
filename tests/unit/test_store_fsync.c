/* Power-loss durability of the store, checked at the file system boundary: an SQLite VFS shim
 * in front of the default one counts the syncs of each WAL file. docs/api.md promises that a
 * message is acknowledged only after its transaction is committed and fsynced (WAL with
 * synchronous=FULL). So:
 * - every COMMIT of the writer connection syncs the WAL before it returns (with
 *   synchronous=NORMAL a WAL commit does not sync at all, and a power cut loses it);
 * - through the store thread, no completion (the ack) runs before the sync of its commit has
 *   returned: each WAL sync is made slow, so an ack sent before the commit finished would be
 *   seen with the sync still under way;
 * - storage that fails while running (disk full on a WAL write, an I/O error on the fsync)
 *   fails the requests of that commit, stores none of them, and the store goes on once the
 *   storage is back. */
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "store/store_sqlite.h"
#include "store/store_thread.h"
#include "unit.h"

static char tmpdir[64];

/* ---- the VFS shim ---- */

typedef struct {
    sqlite3_file base;
    sqlite3_file *real; /* the default VFS's file, allocated after this struct */
    int is_wal;
} shim_file_t;

static sqlite3_vfs *real_vfs;
static atomic_int wal_syncs_started, wal_syncs_done;
static atomic_int sync_delay_ms;
static atomic_int fail_wal_write, fail_wal_sync; /* an SQLite error code to return, or 0 */

#define REAL(f) (((shim_file_t *)(f))->real)

static int shim_close(sqlite3_file *f)
{
    int rc = REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
    return rc;
}
static int shim_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int shim_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    int fail = atomic_load(&fail_wal_write);
    if (((shim_file_t *)f)->is_wal && fail) return fail;
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int shim_sync(sqlite3_file *f, int flags)
{
    shim_file_t *sf = (shim_file_t *)f;
    int fail = atomic_load(&fail_wal_sync);
    if (sf->is_wal && fail) return fail;
    if (sf->is_wal) atomic_fetch_add(&wal_syncs_started, 1);
    int delay = atomic_load(&sync_delay_ms);
    if (sf->is_wal && delay > 0) usleep((useconds_t)delay * 1000);
    int rc = REAL(f)->pMethods->xSync(REAL(f), flags);
    if (sf->is_wal) atomic_fetch_add(&wal_syncs_done, 1);
    return rc;
}
static int shim_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int shim_lock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int shim_unlock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int shim_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int shim_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int shim_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int shim_device_characteristics(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int shim_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **out)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, out);
}
static int shim_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}
static void shim_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int shim_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int shim_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp)
{
    return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp);
}
static int shim_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static const sqlite3_io_methods shim_io = {
    3,
    shim_close,
    shim_read,
    shim_write,
    shim_truncate,
    shim_sync,
    shim_file_size,
    shim_lock,
    shim_unlock,
    shim_check_reserved,
    shim_file_control,
    shim_sector_size,
    shim_device_characteristics,
    shim_shm_map,
    shim_shm_lock,
    shim_shm_barrier,
    shim_shm_unmap,
    shim_fetch,
    shim_unfetch,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    shim_file_t *sf = (shim_file_t *)f;
    sf->real = (sqlite3_file *)(sf + 1);
    sf->is_wal = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, out);
    /* SQLite calls xClose only when pMethods is set: set it only for an opened file. */
    f->pMethods = rc == SQLITE_OK && sf->real->pMethods ? &shim_io : NULL;
    return rc;
}

static sqlite3_vfs shim_vfs;

static void shim_install(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    shim_vfs = *real_vfs;
    shim_vfs.zName = "fsync-watch";
    shim_vfs.szOsFile = (int)sizeof(shim_file_t) + real_vfs->szOsFile;
    shim_vfs.xOpen = shim_open;
    sqlite3_vfs_register(&shim_vfs, 1); /* the default from now on */
}

/* ---- tests ---- */

static void make_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s.sqlite", tmpdir, name);
}

/* The writer connection: every COMMIT has synced the WAL by the time it returns. */
static void test_commit_syncs_the_wal(void)
{
    char path[128], err[256];
    make_path(path, sizeof path, "direct");
    store_sqlite_t *db = NULL;
    CHECK_EQ_INT(store_sqlite_open(path, 0, &db, err, sizeof err), STORE_OK);
    if (!db) return;
    static char buf[1 << 16];
    store_arena_t a = {buf, sizeof buf, 0, 0};
    store_direct_open_t d = {.user = STR_LIT("alice"), .other = STR_LIT("bob")};
    CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
    CHECK_EQ_INT(store_sqlite_direct_open(db, &d, &a, 1000), STORE_OK);
    CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
    for (int i = 0; i < 5; i++) {
        int before = atomic_load(&wal_syncs_done);
        a = (store_arena_t){buf, sizeof buf, 0, 0};
        store_message_insert_t m = {.sender = STR_LIT("alice"),
                                    .conversation_id = str_make(d.conv.id, ID_LEN),
                                    .content = STR_LIT("survives a power cut")};
        CHECK_EQ_INT(store_sqlite_begin(db), STORE_OK);
        CHECK_EQ_INT(store_sqlite_message_insert(db, &m, &a, 2000 + i), STORE_OK);
        CHECK_EQ_INT(atomic_load(&wal_syncs_done), before); /* nothing synced before COMMIT */
        CHECK_EQ_INT(store_sqlite_commit(db), STORE_OK);
        CHECK(atomic_load(&wal_syncs_done) > before);
    }
    store_sqlite_close(db);
}

/* Through the store thread: a completion (what the server turns into the ack) never runs
 * before the WAL sync of its commit has returned. */
static struct {
    int done, early;
    int syncs_at_submit[16];
    char content[16][32];
    store_req_t reqs[16];
    char arenas[16][1024];
} acks;

static void ack_done(store_req_t *r)
{
    int i = (int)(r - acks.reqs);
    CHECK_EQ_INT(r->status, STORE_OK);
    CHECK_EQ_INT(r->u.message_insert.msg.seq, i + 1); /* stored, in submission order */
    /* A sync that started and finished after submission: this request's commit. */
    if (atomic_load(&wal_syncs_done) <= acks.syncs_at_submit[i]) acks.early++;
    acks.done++;
}

static void open_done(store_req_t *r)
{
    (void)r;
}

/* A loop and an asynchronous store on a fresh database named after the test (its path into
 * path[128]); NULL (and a failed check) when it does not open. */
static store_t *open_async(uv_loop_t *loop, const char *name, unsigned batch_max, char *path)
{
    uv_loop_init(loop);
    char err[256] = "";
    make_path(path, 128, name);
    store_t *s = NULL;
    store_options_t opts = {.batch_max = batch_max, .readers = 1};
    CHECK_EQ_INT(store_open_with(loop, path, &opts, &s, err, sizeof err), STORE_OK);
    if (!s) fprintf(stderr, "store_open: %s\n", err);
    return s;
}

static void test_no_ack_before_the_sync(void)
{
    uv_loop_t loop;
    char path[128];
    store_t *s = open_async(&loop, "thread", 4, path);
    if (!s) {
        return;
    }
    static char big[8192];
    store_req_t open;
    memset(&open, 0, sizeof open);
    open.op = STORE_OP_DIRECT_OPEN;
    open.done = open_done;
    open.arena = (store_arena_t){big, sizeof big, 0, 0};
    open.u.direct_open.user = STR_LIT("alice");
    open.u.direct_open.other = STR_LIT("bob");
    CHECK_EQ_INT(store_submit(s, &open), STORE_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(open.status, STORE_OK);

    atomic_store(&sync_delay_ms, 30);
    for (int i = 0; i < 16; i++) {
        store_req_t *r = &acks.reqs[i];
        memset(r, 0, sizeof *r);
        r->op = STORE_OP_MESSAGE_INSERT;
        r->done = ack_done;
        r->arena = (store_arena_t){acks.arenas[i], sizeof acks.arenas[i], 0, 0};
        int len = snprintf(acks.content[i], sizeof acks.content[i], "ack %d", i);
        r->u.message_insert.sender = STR_LIT("alice");
        r->u.message_insert.conversation_id = str_make(open.u.direct_open.conv.id, ID_LEN);
        r->u.message_insert.content = str_make(acks.content[i], (size_t)len);
        acks.syncs_at_submit[i] = atomic_load(&wal_syncs_started);
        CHECK_EQ_INT(store_submit(s, r), STORE_OK);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    atomic_store(&sync_delay_ms, 0);
    CHECK_EQ_INT(acks.done, 16);
    CHECK_EQ_INT(acks.early, 0);
    store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

/* Storage failing while running: the requests of the failed commit complete with an error
 * (the server answers INTERNAL and delivers nothing), none of them is stored, no seq is used
 * up, and once the storage is back the next write succeeds. */
static int fault_status[8], fault_done;
static store_req_t fault_reqs[8];
static char fault_arenas[8][1024];

static void fault_cb(store_req_t *r)
{
    fault_status[r - fault_reqs] = r->status;
    fault_done++;
}

static void submit_insert(uv_loop_t *loop, store_t *s, int i, const char *conv, const char *text)
{
    store_req_t *r = &fault_reqs[i];
    memset(r, 0, sizeof *r);
    r->op = STORE_OP_MESSAGE_INSERT;
    r->done = fault_cb;
    r->arena = (store_arena_t){fault_arenas[i], sizeof fault_arenas[i], 0, 0};
    r->u.message_insert.sender = STR_LIT("alice");
    r->u.message_insert.conversation_id = str_make(conv, ID_LEN);
    r->u.message_insert.content = str_make(text, strlen(text));
    CHECK_EQ_INT(store_submit(s, r), STORE_OK);
    (void)loop;
}

static void test_storage_failures(void)
{
    uv_loop_t loop;
    char path[128], err[256] = "";
    store_t *s = open_async(&loop, "faults", 8, path);
    if (!s) return;
    static char big[8192];
    store_req_t open;
    memset(&open, 0, sizeof open);
    open.op = STORE_OP_DIRECT_OPEN;
    open.done = open_done;
    open.arena = (store_arena_t){big, sizeof big, 0, 0};
    open.u.direct_open.user = STR_LIT("alice");
    open.u.direct_open.other = STR_LIT("bob");
    CHECK_EQ_INT(store_submit(s, &open), STORE_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(open.status, STORE_OK);
    const char *conv = open.u.direct_open.conv.id;

    submit_insert(&loop, s, 0, conv, "kept 1");
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(fault_status[0], STORE_OK);
    CHECK_EQ_INT(fault_reqs[0].u.message_insert.msg.seq, 1);

    /* Disk full on the WAL, then an I/O error on its fsync: every request of those commits
     * fails. */
    const int faults[][2] = {{SQLITE_FULL, 0}, {SQLITE_IOERR_WRITE, 0}, {0, SQLITE_IOERR_FSYNC}};
    int n = 1;
    for (int f = 0; f < 3; f++) {
        atomic_store(&fail_wal_write, faults[f][0]);
        atomic_store(&fail_wal_sync, faults[f][1]);
        fault_done = 0;
        submit_insert(&loop, s, n, conv, "lost a");
        submit_insert(&loop, s, n + 1, conv, "lost b");
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK_EQ_INT(fault_done, 2);
        CHECK(fault_status[n] != STORE_OK);
        CHECK(fault_status[n + 1] != STORE_OK);
        n += 2;
        atomic_store(&fail_wal_write, 0);
        atomic_store(&fail_wal_sync, 0);
        /* Storage back: the next message is stored, right after the last one that was. */
        char text[16];
        snprintf(text, sizeof text, "kept %d", f + 2);
        submit_insert(&loop, s, n, conv, text);
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK_EQ_INT(fault_status[n], STORE_OK);
        CHECK_EQ_INT(fault_reqs[n].u.message_insert.msg.seq, f + 2);
        n = 1;
    }
    store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);

    /* What is stored: exactly the four kept messages, nothing of the failed commits. */
    store_sqlite_t *db = NULL;
    CHECK_EQ_INT(store_sqlite_open(path, 0, &db, err, sizeof err), STORE_OK);
    if (!db) return;
    static char buf[1 << 16];
    store_arena_t a = {buf, sizeof buf, 0, 0};
    store_messages_after_t op = {.conversation_id = str_make(conv, ID_LEN), .limit = 100};
    char convcopy[ID_SIZE];
    memcpy(convcopy, conv, ID_SIZE);
    op.conversation_id = str_make(convcopy, ID_LEN);
    CHECK_EQ_INT(store_sqlite_messages_after(db, &op, &a), STORE_OK);
    CHECK_EQ_INT(op.count, 4);
    for (size_t i = 0; i < op.count && i < 4; i++) {
        char want[16];
        snprintf(want, sizeof want, "kept %d", (int)i + 1);
        CHECK(str_eq(op.msgs[i].content, str_make(want, strlen(want))));
        CHECK_EQ_INT(op.msgs[i].seq, (int64_t)i + 1);
    }
    store_sqlite_close(db);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/parlor_fsync_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    shim_install();
    RUN(test_commit_syncs_the_wal);
    RUN(test_no_ack_before_the_sync);
    RUN(test_storage_failures);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return UNIT_DONE();
}
