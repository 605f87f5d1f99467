/* The PostgreSQL engine's write batch in libpq's pipeline mode: BEGIN, the insert lock (when
 * the batch sends messages), the requests, COMMIT, written together and answered together,
 * so that a batch costs one round trip instead of one per request.
 *
 * Consecutive sends become one statement, parlor_send_many (the schema's function looping
 * over parlor_send), whose answer is one row per send: a statement costs PostgreSQL about as
 * much as the send it carries, so N sends in one statement cost it about half of N
 * statements. MARK_READ and USER_SEEN are one statement each; other operations run
 * unpipelined between segments, in the same transaction. */
#include "store/store_pg_int.h"

/* A pipeline segment (one round trip) is written whole, then its results are read. libpq
 * never deadlocks on it (when its write would block it reads, and buffers, what the server
 * sends meanwhile), but what it buffers so is memory: a segment ends after this many requests
 * or parameter bytes, and a request larger than PG_PIPE_BIG starts a segment of its own, so
 * that the answers buffered behind a large write stay few. */
#define PG_PIPE_MAX_OPS   256
#define PG_PIPE_MAX_BYTES (64 * 1024)
#define PG_PIPE_BIG       (16 * 1024)

int pg_pipe_params(store_req_t *req, int64_t now, pg_params_t *p, pg_scratch_t *s, int *stmt,
                   const char **sql)
{
    memset(p, 0, offsetof(pg_params_t, num));
    switch (req->op) {
    case STORE_OP_MESSAGE_INSERT:
        *stmt = P_SEND;
        *sql = pg_sql_send;
        return pg_message_params(&req->u.message_insert, now, p, s);
    case STORE_OP_MARK_READ:
        *stmt = P_MARK_READ;
        *sql = pg_sql_mark_read;
        return pg_mark_read_params(&req->u.mark_read, now, p);
    case STORE_OP_USER_SEEN:
        *stmt = P_USER_SEEN;
        *sql = pg_sql_user_seen;
        return pg_user_seen_params(&req->u.user_seen, p);
    default:
        return STORE_E_INVALID;
    }
}

int pg_pipe_finish(store_pg_t *db, store_req_t *req, const PGresult *res, int row)
{
    (void)db;
    int rc;
    switch (req->op) {
    case STORE_OP_MESSAGE_INSERT: /* parlor_send_many's rows start with the ordinal */
        rc = pg_message_finish(&req->u.message_insert, &req->arena, res, row < 0 ? 0 : row,
                               row < 0 ? 0 : 1);
        break;
    case STORE_OP_MARK_READ:
        rc = pg_mark_read_finish(&req->u.mark_read, res);
        break;
    default:
        rc = STORE_OK; /* USER_SEEN: nothing to read */
        break;
    }
    req->status = rc;
    return rc;
}

/* ---- Array parameters ---------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} pg_buf_t;

static void buf_put(pg_buf_t *b, const void *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* Appends one element (SQL NULL when v is NULL) to an array literal {"a","b",NULL}. */
static void arr_add(pg_buf_t *b, const char *v, size_t n)
{
    buf_put(b, b->n == 0 ? "{" : ",", 1);
    if (!v) {
        buf_put(b, "NULL", 4);
        return;
    }
    buf_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '"' || v[i] == '\\') buf_put(b, "\\", 1);
        buf_put(b, &v[i], 1);
    }
    buf_put(b, "\"", 1);
}

/* parlor_send's parameters, one array each ($1..$11 of parlor_send_many), except the content
 * ($5): its length goes into that array and its bytes into the blob ($12, binary). */
enum { SEND_PARAMS = 11, MANY_PARAMS = 12 };

typedef struct {
    pg_buf_t arr[SEND_PARAMS]; /* [4]: the content lengths; the blob is separate */
    pg_buf_t blob;
    int count;
} send_group_t;

static void group_add(send_group_t *g, const pg_params_t *p)
{
    for (int i = 0; i < SEND_PARAMS; i++) {
        if (i == 4) {
            char len[16];
            int n = snprintf(len, sizeof len, "%d", p->len[4]);
            arr_add(&g->arr[4], len, (size_t)n);
            buf_put(&g->blob, p->v[4], (size_t)p->len[4]);
        } else {
            arr_add(&g->arr[i], p->v[i],
                    p->v[i] ? (p->fmt[i] ? (size_t)p->len[i] : strlen(p->v[i])) : 0);
        }
    }
    g->count++;
}

static void group_free(send_group_t *g)
{
    for (int i = 0; i < SEND_PARAMS; i++) free(g->arr[i].p);
    free(g->blob.p);
    memset(g, 0, sizeof *g);
}

static const char sql_send_many[] =
    "SELECT * FROM parlor_send_many($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/* ---- The pipeline ---------------------------------------------------------------------------- */

/* The result of the next statement of the pipeline (to PQclear), consuming the NULL that ends
 * it. NULL when the connection broke. */
static PGresult *pipe_next(store_pg_t *db)
{
    PGresult *r = PQgetResult(db->conn);
    if (!r) return NULL;
    if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) return r;
    PGresult *end;
    while ((end = PQgetResult(db->conn)) != NULL) PQclear(end); /* none expected */
    return r;
}

static int pipe_send(store_pg_t *db, int id, const pg_params_t *p)
{
    char name[16];
    snprintf(name, sizeof name, "p%d", id);
    if (!PQsendQueryPrepared(db->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                             p ? p->fmt : NULL, 0)) {
        pg_set_err(db, PQerrorMessage(db->conn));
        if (PQstatus(db->conn) != CONNECTION_OK) db->broken = true;
        return db->broken ? STORE_E_UNAVAILABLE : STORE_E_IO;
    }
    return STORE_OK;
}

/* Sends the group as one parlor_send_many and empties it. */
static int group_send(store_pg_t *db, send_group_t *g)
{
    pg_params_t p;
    memset(&p, 0, offsetof(pg_params_t, num));
    int rc = STORE_E_IO;
    for (int i = 0; i < SEND_PARAMS; i++) {
        buf_put(&g->arr[i], "}", 1);
        if (g->arr[i].oom) goto out;
        pg_p_text(&p, g->arr[i].p);
    }
    buf_put(&g->blob, "", 0); /* allocated even when every content is empty */
    if (g->blob.oom) goto out;
    pg_p_bytes(&p, str_make(g->blob.p, g->blob.n));
    rc = pipe_send(db, P_SEND_MANY, &p);
out:
    group_free(g);
    return rc;
}

/* What a statement of a segment answers: requests sent[first .. first + count - 1]; a group
 * (parlor_send_many) answers one row per request, other statements one result each. */
typedef struct {
    int first, count;
    bool group;
} pipe_stmt_t;

/* Reads a segment's results in order: the lead statements (BEGIN, the lock), the requests'
 * statements, the COMMIT if sent, then the sync. Returns the first failure. */
static int pipe_collect(store_pg_t *db, int lead, const pipe_stmt_t *stmts, int nstmts,
                        store_req_t *const *sent, bool commit)
{
    int rc = STORE_OK;
    int total = lead + nstmts + (commit ? 1 : 0);
    for (int i = 0; i < total; i++) {
        PGresult *r = pipe_next(db);
        if (!r) {
            pg_set_err(db, PQerrorMessage(db->conn));
            db->broken = true;
            return STORE_E_UNAVAILABLE;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
            int e = pg_result_rc(db, r);
            /* keep the first real error, not the "aborted" of the statements after it */
            if (rc == STORE_OK || (rc == STORE_E_IO && st != PGRES_PIPELINE_ABORTED)) rc = e;
        } else if (rc == STORE_OK && i >= lead && i < lead + nstmts) {
            const pipe_stmt_t *s = &stmts[i - lead];
            if (!s->group) {
                pg_pipe_finish(db, sent[s->first], r, -1);
            } else if (PQntuples(r) != s->count) {
                pg_set_err(db, "parlor_send_many answered a wrong number of rows");
                rc = STORE_E_IO;
            } else {
                for (int j = 0; j < s->count; j++) pg_pipe_finish(db, sent[s->first + j], r, j);
            }
        }
        PQclear(r);
        if (db->broken) return STORE_E_UNAVAILABLE;
    }
    PGresult *r = PQgetResult(db->conn);
    bool synced = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    if (!synced) {
        pg_set_err(db, PQerrorMessage(db->conn));
        db->broken = true;
        return STORE_E_UNAVAILABLE;
    }
    if (commit && rc == STORE_OK) db->in_tx = false;
    return rc;
}

static bool pipelined(const store_req_t *r)
{
    return pg_pipelinable(r->op) &&
           (r->op != STORE_OP_MESSAGE_INSERT || pg_message_fits(&r->u.message_insert, &r->arena));
}

/* One segment: [BEGIN, lock] pipelinable requests from *rp... [COMMIT], one sync. */
static int segment(store_pg_t *db, store_req_t **rp, bool *begun, bool inserts)
{
    store_req_t *sent[PG_PIPE_MAX_OPS], *r = *rp;
    pipe_stmt_t stmts[PG_PIPE_MAX_OPS];
    send_group_t g = {0};
    int nsent = 0, nstmts = 0, lead = 0, rc = STORE_OK;
    size_t bytes = 0;
    if (!PQenterPipelineMode(db->conn)) {
        pg_set_err(db, PQerrorMessage(db->conn));
        return STORE_E_IO;
    }
    if (!*begun) {
        rc = pipe_send(db, P_BEGIN, NULL);
        if (rc == STORE_OK && inserts) rc = pipe_send(db, P_INSERT_LOCK, NULL);
        lead = inserts ? 2 : 1;
        *begun = true;
    }
    while (rc == STORE_OK && r && pipelined(r) && nsent < PG_PIPE_MAX_OPS &&
           bytes < PG_PIPE_MAX_BYTES) {
        int64_t now = r->now_ms ? r->now_ms : store_clock_ms();
        pg_params_t p;
        pg_scratch_t s;
        int stmt;
        const char *sql;
        int e = pg_pipe_params(r, now, &p, &s, &stmt, &sql);
        if (e != STORE_OK) {
            r->status = e; /* refused before sending */
            r = r->next_;
            continue;
        }
        size_t size = 0;
        for (int i = 0; i < p.n; i++) size += p.v[i] ? (size_t)p.len[i] + 8 : 0;
        if (nsent > 0 && size > PG_PIPE_BIG) break; /* first in the next segment */
        if (stmt == P_SEND) {
            if (g.count == 0) stmts[nstmts++] = (pipe_stmt_t){nsent, 0, true};
            group_add(&g, &p);
            stmts[nstmts - 1].count++;
        } else {
            if (g.count > 0 && (rc = group_send(db, &g)) != STORE_OK) break;
            if ((rc = pipe_send(db, stmt, &p)) != STORE_OK) break;
            stmts[nstmts++] = (pipe_stmt_t){nsent, 1, false};
        }
        sent[nsent++] = r;
        bytes += size;
        r = r->next_;
    }
    if (rc == STORE_OK && g.count > 0) rc = group_send(db, &g);
    group_free(&g);
    *rp = r;
    bool commit = rc == STORE_OK && !r;
    if (commit) rc = pipe_send(db, P_COMMIT, NULL);
    if (rc == STORE_OK && !PQpipelineSync(db->conn)) {
        pg_set_err(db, PQerrorMessage(db->conn));
        rc = PQstatus(db->conn) == CONNECTION_OK ? STORE_E_IO : STORE_E_UNAVAILABLE;
    }
    if (rc == STORE_OK) rc = pipe_collect(db, lead, stmts, nstmts, sent, commit);
    if (db->broken) return STORE_E_UNAVAILABLE;
    if (!PQexitPipelineMode(db->conn)) {
        pg_set_err(db, PQerrorMessage(db->conn));
        db->broken = true; /* out of step with the server: start over */
        return STORE_E_UNAVAILABLE;
    }
    return rc;
}

int pg_batch_once(store_pg_t *db, store_req_t *head)
{
    bool inserts = false;
    /* An edit or a delete takes a new pos too: under the insert lock, taken first. */
    for (store_req_t *r = head; r; r = r->next_)
        inserts |= r->op == STORE_OP_MESSAGE_INSERT || r->op == STORE_OP_MESSAGE_UPDATE ||
                   r->op == STORE_OP_SYSTEM_INSERT || r->op == STORE_OP_USER_ERASE;
    int rc;
    if ((rc = pg_prepare(db, P_BEGIN, "BEGIN")) != STORE_OK ||
        (rc = pg_prepare(db, P_COMMIT, "COMMIT")) != STORE_OK ||
        (rc = pg_prepare(db, P_INSERT_LOCK,
                         "SELECT pg_advisory_xact_lock(" PG_STR(
                             PG_LOCK_INSERT) ", hashtext(current_schema()))")) != STORE_OK ||
        (rc = pg_prepare(db, P_SEND_MANY, sql_send_many)) != STORE_OK ||
        (rc = pg_prepare(db, P_MARK_READ, pg_sql_mark_read)) != STORE_OK ||
        (rc = pg_prepare(db, P_USER_SEEN, pg_sql_user_seen)) != STORE_OK)
        return rc;
    bool begun = false;
    db->in_tx = true;
    db->tx_failed = false;
    store_req_t *r = head;
    while (r || db->in_tx) {
        if (r && begun && !pipelined(r)) {
            int e = pg_exec_one(db, r);
            r->status = e;
            if (db->tx_failed || db->broken)
                return db->broken ? STORE_E_UNAVAILABLE : e == PG_E_RETRY ? PG_E_RETRY : STORE_E_IO;
            r = r->next_;
            continue;
        }
        if ((rc = segment(db, &r, &begun, inserts)) != STORE_OK) return rc;
    }
    return STORE_OK;
}
