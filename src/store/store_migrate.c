/* `parlor migrate`: copies a single-node SQLite store into PostgreSQL, row for row: users and
 * accounts, files, conversations, members with their watermarks, messages with their ids, seq,
 * pos and times. It knows both engines' tables, which have the same names and columns, so it
 * works below the store contract (the contract has no way to write a message with a given id,
 * seq or time, and should not).
 *
 * Everything happens in one PostgreSQL transaction: either the whole store arrives and the
 * row counts match, or the target is left as it was. */
#include "store/store_migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files/files.h"
#include "store/store_engine.h"

/* The tables, parents first (foreign keys), and the order rows are copied in. */
static const struct {
    const char *name;
    const char *order;
} migrate_tables[] = {
    {"users", "id"},         {"files", "id"},
    {"conversations", "id"}, {"conversation_members", "conversation_id, user_id"},
    {"messages", "pos"},     {"blocks", "blocker, blocked"},
};
#define MIGRATE_TABLES   (sizeof migrate_tables / sizeof migrate_tables[0])
#define MIGRATE_COLS_MAX 32

static void set_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* One line of PostgreSQL's COPY text format: tab-separated, \N for NULL, backslash escapes. */
typedef struct {
    char *p;
    size_t len, cap;
} line_t;

static int line_put(line_t *l, const char *s, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        size_t cap = l->cap ? l->cap : 4096;
        while (cap < l->len + n + 1) cap *= 2;
        char *p = realloc(l->p, cap);
        if (!p) return -1;
        l->p = p;
        l->cap = cap;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
    return 0;
}

static int line_put_escaped(line_t *l, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = s[i] == '\\'   ? "\\\\"
                          : s[i] == '\t' ? "\\t"
                          : s[i] == '\n' ? "\\n"
                          : s[i] == '\r' ? "\\r"
                                         : NULL;
        if (!esc) continue;
        if (line_put(l, s + start, i - start) < 0 || line_put(l, esc, 2) < 0) return -1;
        start = i + 1;
    }
    return line_put(l, s + start, n - start);
}

typedef struct {
    sqlite3 *src;
    PGconn *pg;
    const store_migrate_opts_t *o;
    FILE *report;
    char *err;
    size_t cap;
} migrate_t;

static int pg_ok(migrate_t *m, PGresult *r, ExecStatusType want, const char *what)
{
    if (PQresultStatus(r) == want) return 0;
    set_err(m->err, m->cap, "%s: %s", what, PQresultErrorMessage(r));
    return -1;
}

static int pg_run(migrate_t *m, const char *sql, ExecStatusType want)
{
    PGresult *r = PQexec(m->pg, sql);
    int rc = pg_ok(m, r, want, sql);
    PQclear(r);
    return rc;
}

static int pg_exec(migrate_t *m, const char *sql)
{
    return pg_run(m, sql, PGRES_COMMAND_OK);
}

static long long pg_count(migrate_t *m, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    PGresult *r = PQexec(m->pg, sql);
    long long n = -1;
    if (pg_ok(m, r, PGRES_TUPLES_OK, sql) == 0) n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

static long long sqlite_count(migrate_t *m, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    sqlite3_stmt *st;
    long long n = -1;
    if (sqlite3_prepare_v2(m->src, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        set_err(m->err, m->cap, "%s: %s", sql, sqlite3_errmsg(m->src));
    sqlite3_finalize(st);
    return n;
}

/* How a column is written: as text, as a boolean (SQLite keeps 0/1 integers) or as bytea
 * (message content, which may hold NUL bytes, is bytea in PostgreSQL). */
typedef enum { COL_TEXT, COL_BOOL, COL_BYTEA } col_kind_t;

static int pg_column_kinds(migrate_t *m, const char *table, char *const *cols, int n,
                           col_kind_t *kind)
{
    for (int i = 0; i < n; i++) {
        const char *params[2] = {table, cols[i]};
        PGresult *r = PQexecParams(m->pg,
                                   "SELECT data_type FROM information_schema.columns WHERE "
                                   "table_schema = current_schema() AND table_name = $1 AND "
                                   "column_name = $2",
                                   2, NULL, params, NULL, NULL, 0);
        if (pg_ok(m, r, PGRES_TUPLES_OK, "reading the target's columns") < 0) {
            PQclear(r);
            return -1;
        }
        if (PQntuples(r) != 1) {
            set_err(m->err, m->cap, "the target has no column %s.%s (schema of another version?)",
                    table, cols[i]);
            PQclear(r);
            return -1;
        }
        const char *type = PQgetvalue(r, 0, 0);
        kind[i] = !strcmp(type, "boolean") ? COL_BOOL
                  : !strcmp(type, "bytea") ? COL_BYTEA
                                           : COL_TEXT;
        PQclear(r);
    }
    return 0;
}

/* Copies one table: SQLite's columns, by name, into the same columns of the target. */
static long long copy_table(migrate_t *m, const char *table, const char *order)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY %s", table, order);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->src, sql, -1, &st, NULL) != SQLITE_OK) {
        set_err(m->err, m->cap, "reading %s: %s", table, sqlite3_errmsg(m->src));
        return -1;
    }
    int ncol = sqlite3_column_count(st);
    char *cols[MIGRATE_COLS_MAX];
    col_kind_t kind[MIGRATE_COLS_MAX];
    long long rows = -1;
    line_t l = {0};
    if (ncol > MIGRATE_COLS_MAX) {
        set_err(m->err, m->cap, "%s has too many columns", table);
        goto out;
    }
    for (int i = 0; i < ncol; i++) cols[i] = (char *)sqlite3_column_name(st, i);
    if (pg_column_kinds(m, table, cols, ncol, kind) < 0) goto out;

    line_put(&l, "COPY ", 5);
    line_put(&l, table, strlen(table));
    line_put(&l, " (", 2);
    for (int i = 0; i < ncol; i++) {
        if (i) line_put(&l, ", ", 2);
        line_put(&l, cols[i], strlen(cols[i]));
    }
    if (line_put(&l, ") FROM STDIN\0", 13) < 0) goto out;
    PGresult *r = PQexec(m->pg, l.p);
    int bad = pg_ok(m, r, PGRES_COPY_IN, "COPY");
    PQclear(r);
    if (bad) goto out;

    long long n = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        l.len = 0;
        for (int i = 0; i < ncol; i++) {
            if (i) line_put(&l, "\t", 1);
            int t = sqlite3_column_type(st, i);
            if (t == SQLITE_NULL) {
                line_put(&l, "\\N", 2);
            } else if (kind[i] == COL_BOOL) {
                line_put(&l, sqlite3_column_int64(st, i) ? "t" : "f", 1);
            } else if (kind[i] == COL_BYTEA) {
                /* bytea's hex input, \x..., its backslash escaped for COPY */
                const unsigned char *v = sqlite3_column_blob(st, i);
                size_t bytes = (size_t)sqlite3_column_bytes(st, i);
                static const char hex[] = "0123456789abcdef";
                if (line_put(&l, "\\\\x", 3) < 0) break;
                for (size_t k = 0; k < bytes; k++) {
                    char h[2] = {hex[v[k] >> 4], hex[v[k] & 15]};
                    if (line_put(&l, h, 2) < 0) break;
                }
            } else {
                const char *v = (const char *)sqlite3_column_text(st, i);
                if (line_put_escaped(&l, v, (size_t)sqlite3_column_bytes(st, i)) < 0) break;
            }
        }
        if (line_put(&l, "\n", 1) < 0 || PQputCopyData(m->pg, l.p, (int)l.len) != 1) {
            PQputCopyEnd(m->pg, "parlor migrate: out of memory or connection lost");
            set_err(m->err, m->cap, "copying %s: %s", table, PQerrorMessage(m->pg));
            goto drain;
        }
        n++;
    }
    if (step != SQLITE_DONE) {
        PQputCopyEnd(m->pg, "parlor migrate: source read failed");
        set_err(m->err, m->cap, "reading %s: %s", table, sqlite3_errmsg(m->src));
        goto drain;
    }
    if (PQputCopyEnd(m->pg, NULL) != 1) {
        set_err(m->err, m->cap, "copying %s: %s", table, PQerrorMessage(m->pg));
        goto drain;
    }
    rows = n;
drain:
    while ((r = PQgetResult(m->pg))) {
        if (rows >= 0 && pg_ok(m, r, PGRES_COMMAND_OK, table) < 0) rows = -1;
        PQclear(r);
    }
out:
    free(l.p);
    sqlite3_finalize(st);
    return rows;
}

/* Copies dir/<2 hex>/<id> of every file row into files_to, keeping the layout. */
static int copy_files(migrate_t *m, long long *copied)
{
    sqlite3_stmt *st;
    *copied = 0;
    if (sqlite3_prepare_v2(m->src, "SELECT id, size FROM files ORDER BY id", -1, &st, NULL) !=
        SQLITE_OK) {
        set_err(m->err, m->cap, "reading files: %s", sqlite3_errmsg(m->src));
        return -1;
    }
    int rc = 0;
    char *buf = malloc(1 << 16);
    while (buf && sqlite3_step(st) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        long long size = sqlite3_column_int64(st, 1);
        char from[4096], to[4096], dir[4096];
        if (files_path(m->o->files_from, id, from, sizeof from) < 0 ||
            files_path(m->o->files_to, id, to, sizeof to) < 0) {
            set_err(m->err, m->cap, "file %s: path too long", id);
            rc = -1;
            break;
        }
        snprintf(dir, sizeof dir, "%s", to);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        mkdir(m->o->files_to, 0700);
        mkdir(dir, 0700);
        int in = open(from, O_RDONLY | O_CLOEXEC);
        if (in < 0) {
            set_err(m->err, m->cap, "file %s: %s: %s", id, from, strerror(errno));
            rc = -1;
            break;
        }
        int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        long long total = 0;
        ssize_t got;
        while (out >= 0 && (got = read(in, buf, 1 << 16)) > 0) {
            if (write(out, buf, (size_t)got) != got) break;
            total += got;
        }
        bool ok = out >= 0 && total == size && fsync(out) == 0;
        close(in);
        if (out >= 0) close(out);
        if (!ok) {
            set_err(m->err, m->cap, "file %s: copied %lld of %lld bytes to %s", id, total, size,
                    to);
            rc = -1;
            break;
        }
        (*copied)++;
    }
    free(buf);
    sqlite3_finalize(st);
    return rc;
}

int store_migrate(const char *from, const char *to, const store_migrate_opts_t *o, FILE *report,
                  char *err, size_t cap)
{
    const char *src_path, *dst_target;
    const char *src_engine = store_target_engine(from, &src_path);
    const char *dst_engine = store_target_engine(to, &dst_target);
    if (!src_engine || strcmp(src_engine, "sqlite")) {
        set_err(err, cap, "--from must be a SQLite store (sqlite:PATH)");
        return 2;
    }
    if (!dst_engine || strcmp(dst_engine, "postgres")) {
        set_err(err, cap, "--to must be a PostgreSQL store (postgres://...)");
        return 2;
    }
    const store_engine_t *pg_engine = store_engine_find("postgres");
    if (!pg_engine) {
        set_err(err, cap, "no store engine \"postgres\" in this build");
        return 1;
    }
    migrate_t m = {.o = o, .report = report, .err = err, .cap = cap};
    int status = 1;

    /* The source must be at this build's schema version: the columns are copied by name. */
    if (sqlite3_open_v2(src_path, &m.src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        set_err(err, cap, "cannot open %s: %s", src_path, sqlite3_errmsg(m.src));
        goto out;
    }
    /* One read transaction: every count and row comes from one snapshot, even when a server
     * still runs on the file. */
    if (sqlite3_exec(m.src, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        set_err(err, cap, "cannot read %s: %s", src_path, sqlite3_errmsg(m.src));
        goto out;
    }
    sqlite3_stmt *st;
    int version = -1;
    if (sqlite3_prepare_v2(m.src, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version != STORE_SCHEMA_VERSION) {
        set_err(err, cap,
                "%s has schema version %d, this build %d: start this version of parlor serve on "
                "it once (it migrates), then run migrate again",
                src_path, version, STORE_SCHEMA_VERSION);
        goto out;
    }

    /* The engine creates or migrates the target's schema, as a node starting on it would. */
    void *conn = NULL;
    if (pg_engine->open(dst_target, false, &conn, err, cap) != STORE_OK) goto out;
    pg_engine->close(conn);
    m.pg = PQconnectdb(dst_target);
    if (PQstatus(m.pg) != CONNECTION_OK) {
        set_err(err, cap, "cannot connect to the target: %s", PQerrorMessage(m.pg));
        goto out;
    }
    if (pg_exec(&m, "BEGIN ISOLATION LEVEL SERIALIZABLE") < 0) goto out;
    /* Nodes running on the target would write in the middle of the copy. */
    if (pg_exec(&m, "LOCK TABLE users, files, conversations, conversation_members, messages, "
                    "blocks IN EXCLUSIVE MODE NOWAIT") < 0)
        goto rollback;
    long long existing = 0;
    for (size_t i = 0; i < MIGRATE_TABLES; i++) {
        long long n = pg_count(&m, migrate_tables[i].name);
        if (n < 0) goto rollback;
        existing += n;
    }
    if (existing > 0 && !o->replace) {
        set_err(err, cap,
                "the target is not empty (%lld rows): refusing to mix two stores; --replace "
                "empties it first",
                existing);
        goto rollback;
    }
    if (existing > 0 &&
        pg_exec(&m, "TRUNCATE users, files, conversations, conversation_members, messages, "
                    "blocks") < 0)
        goto rollback;

    long long copied[MIGRATE_TABLES];
    for (size_t i = 0; i < MIGRATE_TABLES; i++) {
        copied[i] = copy_table(&m, migrate_tables[i].name, migrate_tables[i].order);
        if (copied[i] < 0) goto rollback;
    }
    /* New messages continue above the highest position copied (guarantee 4). */
    if (pg_run(&m,
               "SELECT setval(pg_get_serial_sequence('messages', 'pos'), "
               "(SELECT coalesce(max(pos), 0) + 1 FROM messages), false)",
               PGRES_TUPLES_OK) < 0)
        goto rollback;
    /* Verify: the target holds exactly what the source does. */
    for (size_t i = 0; i < MIGRATE_TABLES; i++) {
        long long s = sqlite_count(&m, migrate_tables[i].name);
        long long d = pg_count(&m, migrate_tables[i].name);
        if (s < 0 || d < 0) goto rollback;
        if (s != d || d != copied[i]) {
            set_err(err, cap, "%s: %lld rows in the source, %lld copied, %lld in the target",
                    migrate_tables[i].name, s, copied[i], d);
            goto rollback;
        }
    }
    long long files_copied = 0;
    if (o->files_to && copy_files(&m, &files_copied) < 0) goto rollback;
    if (pg_exec(&m, "COMMIT") < 0) goto out;
    for (size_t i = 0; i < MIGRATE_TABLES; i++)
        fprintf(report, "%-22s %lld rows\n", migrate_tables[i].name, copied[i]);
    if (o->files_to)
        fprintf(report, "%-22s %lld copied to %s\n", "file bytes", files_copied, o->files_to);
    status = 0;
    goto out;
rollback:
    PQclear(PQexec(m.pg, "ROLLBACK"));
out:
    if (m.pg) PQfinish(m.pg);
    if (m.src) sqlite3_close(m.src);
    return status;
}
