/* The store conformance suite's harness: targets, the synchronous helpers, main().
 *
 *   test_store_conformance [--engine sqlite|postgres] [CASE-SUBSTRING]
 *
 * Every case runs against "sqlite:<a fresh file in a temporary directory>". When
 * PARLOR_TEST_PG_URL is set (a postgres:// URL of a database the suite may create schemas in),
 * every case runs against PostgreSQL too, each in a fresh schema: the harness connects with
 * libpq, runs CREATE SCHEMA, and opens the store with the URL plus
 * options=-csearch_path=<schema>; the schemas are dropped at the end. With the URL set and no
 * "postgres" engine in the build, the suite fails: it never skips an engine silently. */
#include "store_conformance.h"

#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "core/log.h"

int unit_failures;
int unit_checks;
uv_thread_t sc_loop_thread;

static char tmpdir[64];
static int db_counter;
static char arena_buf[1 << 20];

/* ---- Synchronous helpers ----------------------------------------------------------------- */

store_arena_t sc_arena(void)
{
    return (store_arena_t){arena_buf, sizeof arena_buf, 0, 0};
}

store_t *sc_open(sc_t *t, const store_options_t *opts)
{
    char err[512] = "";
    store_t *s = NULL;
    int rc = store_open_with(t->loop, t->target, opts, &s, err, sizeof err);
    CHECK_EQ_INT(rc, STORE_OK);
    if (rc != STORE_OK) fprintf(stderr, "  store_open_with(%s): %s\n", t->engine, err);
    return s;
}

void sc_close(sc_t *t, store_t *s)
{
    if (!s) return;
    store_close(s);
    uv_run(t->loop, UV_RUN_DEFAULT); /* runs the handles' close callbacks */
}

void sc_count_done(store_req_t *r)
{
    (*(int *)r->data)++;
}

int sc_run(sc_t *t, store_t *s, store_req_t *r)
{
    int done = 0;
    r->done = sc_count_done;
    r->data = &done;
    int rc = store_submit(s, r);
    CHECK_EQ_INT(rc, STORE_OK);
    if (rc != STORE_OK) return rc;
    while (!done) uv_run(t->loop, UV_RUN_ONCE);
    CHECK_EQ_INT(done, 1);
    return r->status;
}

void sc_run_batch(sc_t *t, store_t *s, store_req_t *const *reqs, size_t n)
{
    int done = 0;
    store_writer_pause(s, true);
    for (size_t i = 0; i < n; i++) {
        reqs[i]->done = sc_count_done;
        reqs[i]->data = &done;
        if (store_submit(s, reqs[i]) != STORE_OK) {
            CHECK(!"store_submit refused a request of the batch");
            done++;
        }
    }
    store_writer_pause(s, false);
    while ((size_t)done < n) uv_run(t->loop, UV_RUN_ONCE);
}

int sc_run_op(sc_t *t, store_op_t op, void *u, size_t size, store_arena_t *a, int64_t now)
{
    store_req_t *r = &t->req;
    memset(r, 0, sizeof *r);
    r->op = op;
    r->now_ms = now;
    if (a) r->arena = *a;
    memcpy(&r->u, u, size);
    if (!t->s) {
        CHECK(t->s != NULL);
        return STORE_E_INVALID;
    }
    int rc = sc_run(t, t->s, r);
    memcpy(u, &r->u, size);
    if (a) *a = r->arena;
    return rc;
}

/* ---- Shared steps ------------------------------------------------------------------------ */

void sc_upsert(sc_t *t, const char *id, const char *name)
{
    store_user_upsert_t op = {
        .id = str_cstr(id), .name = str_cstr(name), .role = STR_LIT("tenant")};
    CHECK_EQ_INT(sc_user_upsert(t, &op, 1000), STORE_OK);
}

void sc_direct(sc_t *t, const char *a, const char *b, char out[ID_SIZE])
{
    store_arena_t ar = sc_arena();
    store_direct_open_t op = {.user = str_cstr(a), .other = str_cstr(b)};
    CHECK_EQ_INT(sc_direct_open(t, &op, &ar, 1000), STORE_OK);
    memcpy(out, op.conv.id, ID_SIZE);
}

int sc_send_at(sc_t *t, const char *conv, const char *sender, const char *text, int64_t now,
               store_message_insert_t *op)
{
    store_arena_t ar = sc_arena();
    memset(op, 0, sizeof *op);
    op->sender = str_cstr(sender);
    op->conversation_id = str_cstr(conv);
    op->content = str_cstr(text);
    op->type = STORE_MSG_TEXT;
    return sc_message_insert(t, op, &ar, now);
}

int64_t sc_send(sc_t *t, const char *conv, const char *sender, const char *text)
{
    store_message_insert_t op;
    int rc = sc_send_at(t, conv, sender, text, 2000, &op);
    CHECK_EQ_INT(rc, STORE_OK);
    return rc == STORE_OK ? op.msg.seq : -1;
}

int sc_mark(sc_t *t, const char *conv, const char *user, const char *msg, int64_t now,
            store_mark_read_t *op)
{
    *op = (store_mark_read_t){
        .conversation_id = str_cstr(conv), .user = str_cstr(user), .message_id = str_cstr(msg)};
    return sc_mark_read(t, op, now);
}

const char *sc_contacts_of(sc_t *t, const char *user, store_contacts_mode_t mode, char *out,
                           size_t cap)
{
    store_arena_t ar = sc_arena();
    store_contacts_t c = {.user = str_cstr(user), .mode = mode};
    out[0] = '\0';
    CHECK_EQ_INT(sc_contacts(t, &c, &ar), STORE_OK);
    size_t n = 0;
    for (size_t i = 0; i < c.count && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s", i ? "," : "", (int)c.user_ids[i].len,
                              c.user_ids[i].ptr);
    return out;
}

int64_t sc_last_seq(sc_t *t, const char *conv, int64_t *updated_at)
{
    store_arena_t ar = sc_arena();
    store_conversation_get_t g = {.id = str_cstr(conv)};
    CHECK_EQ_INT(sc_conversation_get(t, &g, &ar), STORE_OK);
    if (updated_at) *updated_at = g.conv.updated_at;
    return g.conv.last_seq;
}

/* ---- Targets ----------------------------------------------------------------------------- */

/* PostgreSQL: one admin connection for the whole run, one schema per case. */
static struct {
    const char *url; /* PARLOR_TEST_PG_URL */
    PGconn *admin;
    char (*schemas)[64];
    size_t nschemas, cap;
} pg;

static bool pg_exec(const char *sql)
{
    PGresult *res = PQexec(pg.admin, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "  postgres: %s: %s", sql, PQerrorMessage(pg.admin));
    PQclear(res);
    return ok;
}

static bool pg_connect(void)
{
    pg.admin = PQconnectdb(pg.url);
    if (PQstatus(pg.admin) != CONNECTION_OK) {
        fprintf(stderr, "PARLOR_TEST_PG_URL: cannot connect: %s", PQerrorMessage(pg.admin));
        return false;
    }
    /* Quiet the NOTICEs of DROP SCHEMA ... CASCADE. */
    PGresult *res = PQexec(pg.admin, "SET client_min_messages = warning");
    PQclear(res);
    return true;
}

/* A fresh schema and the store URL that puts it first on the search path. */
static bool pg_fresh(char *target, size_t cap)
{
    if (pg.nschemas == pg.cap) {
        size_t n = pg.cap ? 2 * pg.cap : 64;
        void *p = realloc(pg.schemas, n * sizeof *pg.schemas);
        if (!p) return false;
        pg.schemas = p;
        pg.cap = n;
    }
    char *name = pg.schemas[pg.nschemas];
    snprintf(name, sizeof pg.schemas[0], "parlor_conf_%ld_%d", (long)getpid(), db_counter++);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", name);
    if (!pg_exec(sql)) return false;
    pg.nschemas++;
    int n = snprintf(target, cap, "%s%coptions=-csearch_path%%3D%s", pg.url,
                     strchr(pg.url, '?') ? '&' : '?', name);
    return n > 0 && (size_t)n < cap;
}

static void pg_drop_all(void)
{
    for (size_t i = 0; i < pg.nschemas; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", pg.schemas[i]);
        pg_exec(sql);
    }
    free(pg.schemas);
    PQfinish(pg.admin);
}

static bool fresh_target(const char *engine, char *target, size_t cap)
{
    if (strcmp(engine, "postgres") == 0) return pg_fresh(target, cap);
    snprintf(target, cap, "sqlite:%s/db%d.sqlite", tmpdir, db_counter++);
    return true;
}

/* ---- Running ----------------------------------------------------------------------------- */

static const sc_case_t *const all_cases[] = {
    sc_cases_users,      sc_cases_conversations, sc_cases_messages, sc_cases_edits,  sc_cases_async,
    sc_cases_guarantees, sc_cases_writers,       sc_cases_blocks,   sc_cases_search, sc_cases_pg,
    sc_cases_platform,   sc_cases_outbox,        sc_cases_pg_schema};

static int cases_run, cases_failed;

static void run_case(const char *engine, const sc_case_t *c)
{
    int before = unit_failures;
    uv_loop_t loop;
    sc_t *t = calloc(1, sizeof *t);
    if (!t) abort();
    uv_loop_init(&loop);
    t->engine = engine;
    t->caps = store_engine_find(engine)->caps;
    t->loop = &loop;
    CHECK(fresh_target(engine, t->target, sizeof t->target));
    t->s = sc_open(t, NULL);
    if (t->s) c->fn(t);
    sc_close(t, t->s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    free(t);
    cases_run++;
    cases_failed += unit_failures != before;
    fprintf(stderr, "%-44s %-9s %s\n", c->name, engine, unit_failures == before ? "ok" : "FAILED");
}

static void run_engine(const char *engine, const char *filter)
{
    for (size_t i = 0; i < sizeof all_cases / sizeof *all_cases; i++)
        for (const sc_case_t *c = all_cases[i]; c->name; c++)
            if (!filter || strstr(c->name, filter)) run_case(engine, c);
}

int main(int argc, char **argv)
{
    const char *only = NULL, *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--engine") == 0 && i + 1 < argc)
            only = argv[++i];
        else
            filter = argv[i];
    }
    const char *url = getenv("PARLOR_TEST_PG_URL");
    pg.url = url && *url ? url : NULL;
    if (only && strcmp(only, "sqlite") != 0 && strcmp(only, "postgres") != 0) {
        fprintf(stderr, "unknown engine %s (sqlite or postgres)\n", only);
        return 2;
    }
    if (only && strcmp(only, "postgres") == 0 && !pg.url) {
        fprintf(stderr, "--engine postgres needs PARLOR_TEST_PG_URL\n");
        return 1;
    }
    bool run_pg = pg.url && (!only || strcmp(only, "postgres") == 0);
    if (run_pg && !store_engine_find("postgres")) {
        fprintf(stderr, "PARLOR_TEST_PG_URL is set but this build has no \"postgres\" store "
                        "engine: failing rather than skipping it\n");
        return 1;
    }
    if (run_pg && !pg_connect()) return 1;

    snprintf(tmpdir, sizeof tmpdir, "/tmp/parlor_conf_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    sc_loop_thread = uv_thread_self();
    log_level = LOG_WARN; /* not a line per migration per case */
    if (!only || strcmp(only, "sqlite") == 0) run_engine("sqlite", filter);
    if (run_pg) run_engine("postgres", filter);
    if (run_pg) pg_drop_all();

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    fprintf(stderr, "%d case runs, %d failed\n", cases_run, cases_failed);
    if (cases_run == 0) {
        fprintf(stderr, "no case matched\n");
        return 1;
    }
    return UNIT_DONE();
}
