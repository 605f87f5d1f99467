/* A VFS over SQLite's default one that gathers the writer's WAL writes. SQLite writes a
 * commit's WAL frames as two pwrite calls each (the 24-byte frame header, then the page), so
 * a commit of one message (5-8 pages: the message row and its indexes, the conversation row)
 * cost 12-16 system calls before its fsync. Here contiguous writes to a WAL file collect in a
 * buffer (at most 64 KiB per connection: 15 frames of 4 KiB pages) and go to the file in one write
 * before anything that needs them there: the sync of the commit (so an acknowledged message
 * is on disk exactly as before: synchronous=FULL syncs the WAL at every commit), any read,
 * size query, truncation or close of that file, a write elsewhere in it, or a full buffer.
 * Every other file, and every other call, goes straight to the default VFS. */
#include "store/store_sqlite_int.h"

/* The unix VFS writes at most 128 KiB - 1 per call (it masks the length with 0x1ffff), so the
 * buffer stays well under that. */
#define STORE_WAL_BUF_MAX (64u * 1024)

typedef struct {
    sqlite3_file base;
    sqlite3_file *real; /* the default VFS's file, right after this struct */
    int wal;            /* a WAL file: its writes are gathered */
    unsigned char *buf;
    size_t len, cap;
    sqlite3_int64 off; /* file offset of buf[0] */
} gw_file_t;

static sqlite3_vfs *gw_root;

static int gw_flush(gw_file_t *f)
{
    if (!f->len) return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->off);
    f->len = 0; /* a failed write is reported once, by the call that needed it */
    return rc;
}

static int gw_close(sqlite3_file *p)
{
    gw_file_t *f = (gw_file_t *)p;
    int rc = gw_flush(f);
    free(f->buf);
    f->buf = NULL;
    f->cap = 0;
    int rc2 = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    return rc != SQLITE_OK ? rc : rc2;
}

static int gw_read(sqlite3_file *p, void *out, int amt, sqlite3_int64 off)
{
    gw_file_t *f = (gw_file_t *)p;
    int rc = gw_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, amt, off);
}

static int gw_write(sqlite3_file *p, const void *data, int amt, sqlite3_int64 off)
{
    gw_file_t *f = (gw_file_t *)p;
    if (!f->wal || amt <= 0) return f->real->pMethods->xWrite(f->real, data, amt, off);
    int rc;
    if (f->len &&
        (off != f->off + (sqlite3_int64)f->len || f->len + (size_t)amt > STORE_WAL_BUF_MAX) &&
        (rc = gw_flush(f)) != SQLITE_OK)
        return rc;
    if (f->len + (size_t)amt > f->cap) {
        size_t want = f->cap ? f->cap : 16384;
        while (want < f->len + (size_t)amt && want < STORE_WAL_BUF_MAX) want *= 2;
        unsigned char *nb = want >= f->len + (size_t)amt ? realloc(f->buf, want) : NULL;
        if (!nb) { /* a write larger than the buffer, or no memory: straight to the file */
            if ((rc = gw_flush(f)) != SQLITE_OK) return rc;
            return f->real->pMethods->xWrite(f->real, data, amt, off);
        }
        f->buf = nb;
        f->cap = want;
    }
    if (!f->len) f->off = off;
    memcpy(f->buf + f->len, data, (size_t)amt);
    f->len += (size_t)amt;
    return SQLITE_OK;
}

static int gw_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    gw_file_t *f = (gw_file_t *)p;
    int rc = gw_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int gw_sync(sqlite3_file *p, int flags)
{
    gw_file_t *f = (gw_file_t *)p;
    int rc = gw_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int gw_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
    gw_file_t *f = (gw_file_t *)p;
    int rc = gw_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

#define REAL(p) (((gw_file_t *)(p))->real)

static int gw_lock(sqlite3_file *p, int l)
{
    return REAL(p)->pMethods->xLock(REAL(p), l);
}

static int gw_unlock(sqlite3_file *p, int l)
{
    return REAL(p)->pMethods->xUnlock(REAL(p), l);
}

static int gw_check_reserved(sqlite3_file *p, int *out)
{
    return REAL(p)->pMethods->xCheckReservedLock(REAL(p), out);
}

static int gw_file_control(sqlite3_file *p, int op, void *arg)
{
    return REAL(p)->pMethods->xFileControl(REAL(p), op, arg);
}

static int gw_sector_size(sqlite3_file *p)
{
    return REAL(p)->pMethods->xSectorSize(REAL(p));
}

static int gw_device_characteristics(sqlite3_file *p)
{
    return REAL(p)->pMethods->xDeviceCharacteristics(REAL(p));
}

static int gw_shm_map(sqlite3_file *p, int pg, int pgsz, int extend, void volatile **out)
{
    return REAL(p)->pMethods->xShmMap(REAL(p), pg, pgsz, extend, out);
}

static int gw_shm_lock(sqlite3_file *p, int offset, int n, int flags)
{
    return REAL(p)->pMethods->xShmLock(REAL(p), offset, n, flags);
}

static void gw_shm_barrier(sqlite3_file *p)
{
    REAL(p)->pMethods->xShmBarrier(REAL(p));
}

static int gw_shm_unmap(sqlite3_file *p, int del)
{
    return REAL(p)->pMethods->xShmUnmap(REAL(p), del);
}

static int gw_fetch(sqlite3_file *p, sqlite3_int64 off, int amt, void **out)
{
    gw_file_t *f = (gw_file_t *)p;
    int rc = gw_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFetch(f->real, off, amt, out);
}

static int gw_unfetch(sqlite3_file *p, sqlite3_int64 off, void *ptr)
{
    return REAL(p)->pMethods->xUnfetch(REAL(p), off, ptr);
}

static const sqlite3_io_methods gw_methods = {
    3,
    gw_close,
    gw_read,
    gw_write,
    gw_truncate,
    gw_sync,
    gw_file_size,
    gw_lock,
    gw_unlock,
    gw_check_reserved,
    gw_file_control,
    gw_sector_size,
    gw_device_characteristics,
    gw_shm_map,
    gw_shm_lock,
    gw_shm_barrier,
    gw_shm_unmap,
    gw_fetch,
    gw_unfetch,
};

static int gw_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *p, int flags,
                   int *out_flags)
{
    (void)vfs;
    gw_file_t *f = (gw_file_t *)p;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = gw_root->xOpen(gw_root, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK || !f->real->pMethods) {
        if (f->real->pMethods) f->real->pMethods->xClose(f->real);
        f->base.pMethods = NULL;
        return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
    }
    if (f->real->pMethods->iVersion < 3) { /* not the unix VFS: leave it alone */
        f->real->pMethods->xClose(f->real);
        f->base.pMethods = NULL;
        return SQLITE_CANTOPEN;
    }
    f->wal = (flags & SQLITE_OPEN_WAL) != 0;
    f->base.pMethods = &gw_methods;
    return SQLITE_OK;
}

static int gw_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return gw_root->xDelete(gw_root, name, sync_dir);
}

static int gw_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return gw_root->xAccess(gw_root, name, flags, out);
}

static int gw_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return gw_root->xFullPathname(gw_root, name, n, out);
}

static void *gw_dlopen(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return gw_root->xDlOpen(gw_root, name);
}

static void gw_dlerror(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    gw_root->xDlError(gw_root, n, out);
}

static void (*gw_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return gw_root->xDlSym(gw_root, h, sym);
}

static void gw_dlclose(sqlite3_vfs *v, void *h)
{
    (void)v;
    gw_root->xDlClose(gw_root, h);
}

static int gw_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return gw_root->xRandomness(gw_root, n, out);
}

static int gw_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return gw_root->xSleep(gw_root, us);
}

static int gw_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return gw_root->xCurrentTime(gw_root, out);
}

static int gw_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return gw_root->xGetLastError ? gw_root->xGetLastError(gw_root, n, out) : 0;
}

static int gw_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return gw_root->xCurrentTimeInt64(gw_root, out);
}

static sqlite3_vfs gw_vfs;

const char *sq_vfs_register(void)
{
    sqlite3_vfs *root = sqlite3_vfs_find(NULL);
    if (!root || root->iVersion < 2) return NULL;
    gw_root = root;
    gw_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(gw_file_t) + root->szOsFile,
        .mxPathname = root->mxPathname,
        .zName = "parlor-walbuf",
        .xOpen = gw_open,
        .xDelete = gw_delete,
        .xAccess = gw_access,
        .xFullPathname = gw_full_pathname,
        .xDlOpen = gw_dlopen,
        .xDlError = gw_dlerror,
        .xDlSym = gw_dlsym,
        .xDlClose = gw_dlclose,
        .xRandomness = gw_randomness,
        .xSleep = gw_sleep,
        .xCurrentTime = gw_current_time,
        .xGetLastError = gw_last_error,
        .xCurrentTimeInt64 = gw_current_time64,
    };
    return sqlite3_vfs_register(&gw_vfs, 0) == SQLITE_OK ? gw_vfs.zName : NULL;
}
