/* The PostgreSQL engine: connections, reconnects, errors, transactions, the engine struct and
 * the dispatch of a request to its operation (the pipelined write batch: store_pg_batch.c).
 *
 * ---- Several writers: seq, idempotency and recovery positions ----------------------------
 *
 * Several Parlor processes (nodes) may write to one database at once, so nothing here may
 * assume it is the only writer (no STORE_ENGINE_SINGLE_WRITER, no cached seq).
 *
 * seq (guarantee 3): parlor_send (the schema's PL/pgSQL function) takes the next seq with
 * `UPDATE conversations SET last_seq = last_seq + 1 ... RETURNING last_seq` inside the
 * inserting transaction. The UPDATE holds the conversation's row lock until COMMIT, so a
 * concurrent sender to that conversation (any node) waits, then reads the committed last_seq
 * (READ COMMITTED re-reads the newest row version): gap-free, unique, and seq order is commit
 * order. A transaction that rolls back takes its seq with it.
 *
 * Idempotency (guarantee 5): UNIQUE (sender, client_msg_id) over the whole database; a send
 * first looks the pair up and answers the stored message with duplicate = true; the INSERT
 * itself is ON CONFLICT (sender, client_msg_id) DO NOTHING, and when a racing transaction
 * stored the pair first, the send gives back its seq and answers that message.
 *
 * Recovery positions (guarantee 4). A sequence value taken at insert time is not commit
 * order under concurrency: T1 takes pos 100, T2 takes 101 and commits first; a reader that
 * saw 101 and later replays "after 101" would never see 100. The scheme:
 *
 *   (a) Every transaction that inserts messages takes the advisory lock
 *       L = pg_advisory_xact_lock(PG_LOCK_INSERT, hashtext(current_schema())) before it
 *       takes a pos (the batch takes it as its first statement, before any row lock, so L
 *       cannot deadlock with row locks; parlor_send takes it again, a no-op, so that a send
 *       outside a batch is covered too). L is held until the transaction ends.
 *   (b) messages.pos = nextval('messages_pos_seq') (CACHE 1: values strictly increase in
 *       the order nextval runs, across sessions), taken while holding L.
 *   (c) PostgreSQL releases a transaction's locks only after its commit is visible to every
 *       new snapshot (CommitTransaction: ProcArrayEndTransaction, then the lock release).
 *   (d) Every read runs as one statement (one snapshot); last_pos = max(pos) in that
 *       snapshot, read in the same statement as the messages it returns.
 *
 * Claim: for a snapshot S and P = max(pos) in S, (1) every message with pos <= P that ever
 * commits is visible in S, and (2) no message commits after S with pos <= P.
 * Proof. Let T2 be the transaction of the message at P (visible in S). Take any transaction
 * T1 that inserted a message with pos p1. By (a) T1 and T2 each held L from before their
 * nextval until after their commit became visible (c), so their L intervals do not overlap.
 * If T1 held L first: T1's commit was visible before T2 acquired L, hence before T2
 * committed, hence before S was taken (S sees T2): T1 is visible in S. If T2 held L first:
 * T1 ran nextval after T2 ran it, so p1 > P by (b). So every message with pos <= P belongs
 * to a transaction visible in S (1), and every transaction not visible in S has all its
 * positions > P (2). A transaction that aborts leaves only a gap in pos.
 * Hence MESSAGES_SINCE(after_pos = P) never skips a committed message: what was at or below
 * P was readable when P was handed out, and whatever commits later lies above P. A
 * message's own pos in its done() is such a P too: its transaction is committed, and any
 * message with a smaller pos committed before it took L. An ordered read inside the writer's
 * batch may see its own batch's uncommitted messages in max(pos): the batch then holds L,
 * so nobody else can take a pos until it committed, and the read's done() runs only after
 * that commit (or fails with it).
 *
 * The price: message-inserting transactions of all nodes commit one at a time (per schema).
 * Group commit makes each of them a whole batch, sent in one pipeline (exec_batch), so L is
 * held for about one round trip plus the commit's flush. */
#include "store/store_pg_int.h"

#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define PG_BATCH_TRIES 5
/* While the server is down, a reconnect is attempted at most this often (ms); requests in
 * between fail at once with STORE_E_UNAVAILABLE. */
#define PG_RECONNECT_MS 500
int64_t pg_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool pg_text_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        if (c == 0) return false;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t len;
        unsigned min;
        if ((c & 0xe0) == 0xc0) {
            len = 2;
            min = 0x80;
            c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            min = 0x800;
            c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            min = 0x10000;
            c &= 0x07;
        } else {
            return false;
        }
        if ((size_t)(end - p) < len) return false;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80) return false;
            c = c << 6 | (p[i] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
        p += len;
    }
    return true;
}

/* ---- Errors ------------------------------------------------------------------------------ */

void pg_set_err(store_pg_t *db, const char *msg)
{
    snprintf(db->err, sizeof db->err, "%s", msg && *msg ? msg : "unknown error");
    size_t n = strlen(db->err);
    while (n > 0 && (db->err[n - 1] == '\n' || db->err[n - 1] == ' ')) db->err[--n] = '\0';
    for (char *p = db->err; *p; p++) /* one log line */
        if (*p == '\n' || *p == '\t') *p = ' ';
}

int pg_result_rc(store_pg_t *db, const PGresult *res)
{
    if (db->in_tx) db->tx_failed = true; /* any error aborts a PostgreSQL transaction */
    /* a statement skipped after an earlier error of its pipeline: that error said it all */
    if (res && PQresultStatus(res) == PGRES_PIPELINE_ABORTED) return STORE_E_IO;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    pg_set_err(db, res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
                                                     : PQerrorMessage(db->conn));
    if (PQstatus(db->conn) != CONNECTION_OK || !state ||
        (state[0] == '0' && state[1] == '8') || /* connection exception */
        strcmp(state, "57P01") == 0 ||          /* admin_shutdown (pg_terminate_backend) */
        strcmp(state, "57P02") == 0 ||          /* crash_shutdown */
        strcmp(state, "57P03") == 0) {          /* cannot_connect_now */
        db->broken = true;
        return STORE_E_UNAVAILABLE;
    }
    if (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0) return PG_E_RETRY;
    if (strcmp(state, "55P03") == 0) return STORE_E_BUSY; /* lock_timeout */
    if (strcmp(state, "23505") == 0) return STORE_E_CONFLICT;
    if ((state[0] == '2' && state[1] == '3') || (state[0] == '2' && state[1] == '2'))
        return STORE_E_INVALID; /* constraint violation, data exception */
    return STORE_E_IO;
}

/* ---- Connections --------------------------------------------------------------------------- */

static int hexval(char c);

static void mask_all(char *s, const char *needle)
{
    size_t n = strlen(needle);
    for (char *p = n ? strstr(s, needle) : NULL; p; p = strstr(p + n, needle)) memset(p, '*', n);
}

/* Masks the URL's password (as written and percent-decoded) wherever it occurs in s: libpq's
 * messages about a malformed URL may quote parts of it. */
static void scrub(char *s, const char *url)
{
    const char *auth = strstr(url, "://"), *at = NULL;
    if (!auth) return;
    auth += 3;
    const char *end = auth + strcspn(auth, "/?#");
    for (const char *p = auth; p < end; p++)
        if (*p == '@') at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon || colon + 1 >= at) return;
    char raw[256], dec[256];
    size_t n = (size_t)(at - colon - 1), k = 0;
    if (n >= sizeof raw) n = sizeof raw - 1;
    memcpy(raw, colon + 1, n);
    raw[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        int hi = i + 2 < n + 1 && raw[i] == '%' ? hexval(raw[i + 1] | 0x20) : -1;
        int lo = hi >= 0 ? hexval(raw[i + 2] | 0x20) : -1;
        if (lo >= 0) {
            dec[k++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            dec[k++] = raw[i];
        }
    }
    dec[k] = '\0';
    mask_all(s, raw);
    mask_all(s, dec);
}

static void notice_ignore(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" and the like */
}

static PGresult *exec_raw(store_pg_t *db, const char *sql)
{
    return PQexecParams(db->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
}

int pg_exec_simple(store_pg_t *db, const char *sql)
{
    PGresult *r = exec_raw(db, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? STORE_OK : pg_result_rc(db, r);
    PQclear(r);
    return rc;
}

/* Whether the operator set this server setting in the URL (options=-c<name>=...). */
static bool url_sets(PGconn *conn, const char *name)
{
    bool found = false;
    PQconninfoOption *opts = PQconninfo(conn);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "options") == 0 && o->val && strstr(o->val, name)) found = true;
    PQconninfoFree(opts);
    return found;
}

/* Per session, after every (re)connect. */
static int session_setup(store_pg_t *db)
{
    PQsetNoticeProcessor(db->conn, notice_ignore, NULL);
    db->prepared = 0;
    db->in_tx = db->tx_failed = false;
    int rc = pg_exec_simple(db, "SET bytea_output = 'hex'");
    if (rc != STORE_OK) return rc;
    if (db->readonly) return pg_exec_simple(db, "SET default_transaction_read_only = on");
    /* The webhook outbox: parlor_send and parlor_mark_read record events when this is set. */
    const store_outbox_settings_t *ob = store_outbox_settings();
    if (ob->on) {
        char sql[96];
        snprintf(sql, sizeof sql, "SET parlor.webhook_unread_ms = '%lld'",
                 (long long)ob->unread_delay_ms);
        if ((rc = pg_exec_simple(db, sql)) != STORE_OK) return rc;
    }
    /* Unless the URL's options set them: a lock (the insert lock of another node, a row) not
     * granted within 10 s fails the batch (STORE_E_BUSY) instead of blocking the store; and
     * should this process die inside a transaction, the server ends its session, and frees
     * its locks, after 60 s. */
    if (!url_sets(db->conn, "lock_timeout") &&
        (rc = pg_exec_simple(db, "SET lock_timeout = '10s'")) != STORE_OK)
        return rc;
    if (!url_sets(db->conn, "idle_in_transaction_session_timeout") &&
        (rc = pg_exec_simple(db, "SET idle_in_transaction_session_timeout = '60s'")) != STORE_OK)
        return rc;
    if (!url_sets(db->conn, "synchronous_commit"))
        return pg_exec_simple(db, "SET synchronous_commit = on");
    /* The operator chose: say what it costs when it is off. */
    PGresult *r = exec_raw(db, "SHOW synchronous_commit");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
        strcmp(PQgetvalue(r, 0, 0), "off") == 0)
        log_warn("store: synchronous_commit is off (set in the store URL): messages acknowledged"
                 " shortly before a PostgreSQL crash can be lost");
    PQclear(r);
    return STORE_OK;
}

static PGconn *connect_url(const char *url)
{
    /* Later keywords override earlier ones: the URL may set its own connect_timeout,
     * application_name and TCP settings, never the encoding. A server that stops answering
     * mid-request (a network partition) is given up after 30 s of unacknowledged data
     * (tcp_user_timeout) or about 25 s of silence (keepalives), not the kernel's hours. */
    const char *keys[] = {"connect_timeout",
                          "application_name",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "tcp_user_timeout",
                          "dbname",
                          "client_encoding",
                          NULL};
    const char *vals[] = {"5", "parlor", "10", "5", "3", "30000", url, "UTF8", NULL};
    return PQconnectdbParams(keys, vals, 1);
}

/* The connection the next statement can use: reconnects a lost one (at most every
 * PG_RECONNECT_MS while the server stays away), never inside a batch. */
static int pg_ready(store_pg_t *db, const char *url)
{
    if (db->in_tx) return db->broken ? STORE_E_UNAVAILABLE : STORE_OK;
    if (!db->broken && PQstatus(db->conn) == CONNECTION_OK) return STORE_OK;
    int64_t now = pg_mono_ms();
    if (now < db->retry_at) return STORE_E_UNAVAILABLE;
    PQfinish(db->conn);
    db->conn = connect_url(url);
    if (PQstatus(db->conn) != CONNECTION_OK || session_setup(db) != STORE_OK) {
        pg_set_err(db, PQerrorMessage(db->conn));
        scrub(db->err, url);
        db->broken = true;
        db->retry_at = now + PG_RECONNECT_MS;
        return STORE_E_UNAVAILABLE;
    }
    db->broken = false;
    db->retry_at = 0;
    log_info("store: reconnected to PostgreSQL");
    return STORE_OK;
}

int pg_prepare(store_pg_t *db, int id, const char *sql)
{
    if (db->prepared & (1ull << id)) return STORE_OK;
    char name[16];
    snprintf(name, sizeof name, "p%d", id);
    PGresult *r = PQprepare(db->conn, name, sql, 0, NULL);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? STORE_OK : pg_result_rc(db, r);
    PQclear(r);
    if (rc == STORE_OK) db->prepared |= 1ull << id;
    return rc;
}

int pg_query(store_pg_t *db, int id, const char *sql, const pg_params_t *p, PGresult **res)
{
    *res = NULL;
    int rc = pg_prepare(db, id, sql);
    if (rc != STORE_OK) return rc;
    char name[16];
    snprintf(name, sizeof name, "p%d", id);
    PGresult *r = PQexecPrepared(db->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                                 p ? p->fmt : NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        *res = r;
        return STORE_OK;
    }
    rc = pg_result_rc(db, r);
    PQclear(r);
    return rc;
}

int pg_op_begin(store_pg_t *db)
{
    return db->in_tx ? STORE_OK : pg_exec_simple(db, "BEGIN");
}

int pg_op_end(store_pg_t *db, int rc)
{
    if (db->in_tx) return rc;
    if (rc == STORE_OK) {
        rc = pg_exec_simple(db, "COMMIT");
        if (rc == STORE_OK) return STORE_OK;
    }
    if (!db->broken && PQstatus(db->conn) == CONNECTION_OK &&
        PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        pg_exec_simple(db, "ROLLBACK");
    return rc;
}

int pg_col_str(const PGresult *r, int row, int col, store_arena_t *a, str_t *out)
{
    if (PQgetisnull(r, row, col)) {
        *out = STR_NULL;
        return STORE_OK;
    }
    return store_arena_str(a, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col), out);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int pg_col_bytes(const PGresult *r, int row, int col, store_arena_t *a, str_t *out)
{
    if (PQgetisnull(r, row, col)) {
        *out = STR_NULL;
        return STORE_OK;
    }
    const char *v = PQgetvalue(r, row, col);
    size_t n = (size_t)PQgetlength(r, row, col);
    if (n < 2 || v[0] != '\\' || v[1] != 'x' || n % 2) return STORE_E_IO; /* bytea_output=hex */
    n = (n - 2) / 2;
    char *d = store_arena_back(a, n + 1, 1);
    if (!d) return STORE_E_NOSPACE;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(v[2 + 2 * i]), lo = hexval(v[3 + 2 * i]);
        if (hi < 0 || lo < 0) return STORE_E_IO;
        d[i] = (char)(hi << 4 | lo);
    }
    d[n] = '\0';
    *out = str_make(d, n);
    return STORE_OK;
}

char *pg_id_array(const str_t *ids, size_t n, const str_t *also)
{
    size_t cap = 3, k = 0;
    for (size_t i = 0; i < n; i++) cap += ids[i].len + 3;
    if (also) cap += also->len + 3;
    char *out = malloc(cap);
    if (!out) return NULL;
    out[k++] = '{';
    for (size_t i = 0; i <= n; i++) {
        const str_t *s = i < n ? &ids[i] : also;
        if (!s) break;
        if (k > 1) out[k++] = ',';
        out[k++] = '"';
        memcpy(out + k, s->ptr, s->len);
        k += s->len;
        out[k++] = '"';
    }
    out[k++] = '}';
    out[k] = '\0';
    return out;
}

/* ---- The engine ----------------------------------------------------------------------------- */

typedef struct {
    store_pg_t db;
    char *url;
} pg_conn_t;

static int engine_open(const char *target, bool readonly, void **out, char *err, size_t errcap)
{
    char shown[256];
    *out = NULL;
    store_target_redact(target, shown, sizeof shown);
    pg_conn_t *c = calloc(1, sizeof *c);
    if (!c || !(c->url = strdup(target))) {
        free(c);
        snprintf(err, errcap, "out of memory");
        return STORE_E_IO;
    }
    store_pg_t *db = &c->db;
    db->readonly = readonly;
    db->conn = connect_url(target);
    int rc = STORE_E_UNAVAILABLE;
    if (PQstatus(db->conn) != CONNECTION_OK) {
        pg_set_err(db, PQerrorMessage(db->conn));
        snprintf(err, errcap, "%s: %s", shown, db->err);
        goto fail;
    }
    if ((rc = session_setup(db)) != STORE_OK) {
        snprintf(err, errcap, "%s: %s", shown, db->err);
        goto fail;
    }
    char msg[400] = "";
    rc = readonly ? pg_schema_check(db, msg, sizeof msg) : pg_schema_migrate(db, msg, sizeof msg);
    if (rc != STORE_OK) {
        snprintf(err, errcap, "%s: %s", shown, msg);
        goto fail;
    }
    *out = c;
    return STORE_OK;
fail:
    scrub(err, target);
    PQfinish(db->conn);
    free(c->url);
    free(c);
    return rc;
}

static void engine_close(void *p)
{
    pg_conn_t *c = p;
    if (!c) return;
    PQfinish(c->db.conn); /* an open transaction is rolled back by the server */
    free(c->url);
    free(c);
}

static int engine_begin(void *p)
{
    pg_conn_t *c = p;
    int rc = pg_ready(&c->db, c->url);
    if (rc == STORE_OK) rc = pg_exec_simple(&c->db, "BEGIN");
    c->db.in_tx = rc == STORE_OK;
    c->db.tx_failed = false;
    return rc == PG_E_RETRY ? STORE_E_BUSY : rc;
}

static void tx_abandon(store_pg_t *db)
{
    /* A broken connection is replaced before its next use; the server rolls back. */
    if (!db->broken && PQstatus(db->conn) == CONNECTION_OK &&
        PQpipelineStatus(db->conn) == PQ_PIPELINE_OFF &&
        PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        pg_exec_simple(db, "ROLLBACK");
    db->in_tx = db->tx_failed = false;
}

static int engine_commit(void *p)
{
    store_pg_t *db = &((pg_conn_t *)p)->db;
    int rc = db->tx_failed ? STORE_E_IO : pg_exec_simple(db, "COMMIT");
    /* A COMMIT that failed with the connection has an unknown outcome: UNAVAILABLE. */
    if (rc != STORE_OK) tx_abandon(db);
    db->in_tx = db->tx_failed = false;
    return rc == PG_E_RETRY ? STORE_E_BUSY : rc;
}

static void engine_rollback(void *p)
{
    tx_abandon(&((pg_conn_t *)p)->db);
}

static bool engine_in_transaction(void *p)
{
    store_pg_t *db = &((pg_conn_t *)p)->db;
    return db->in_tx && !db->tx_failed;
}

static const char *engine_errmsg(void *p)
{
    return ((pg_conn_t *)p)->db.err;
}

/* One request on the connection, inside the batch's transaction or (outside a batch) as its
 * own transaction. */
int pg_exec_one(store_pg_t *db, store_req_t *req)
{
    int64_t now = req->now_ms ? req->now_ms : store_clock_ms();
    store_arena_t *a = &req->arena;
    int rc;
    if (db->readonly && store_op_is_write(req->op)) return STORE_E_INVALID;
    if (pg_pipelinable(req->op)) {
        pg_params_t p;
        pg_scratch_t s;
        int stmt;
        const char *sql;
        PGresult *res;
        if ((rc = pg_pipe_params(req, now, &p, &s, &stmt, &sql)) != STORE_OK) return rc;
        /* A send whose outputs might not fit is undone alone when they do not. */
        bool guard = req->op == STORE_OP_MESSAGE_INSERT &&
                     !pg_message_fits(&req->u.message_insert, &req->arena);
        if (guard && (rc = pg_exec_simple(db, db->in_tx ? "SAVEPOINT op" : "BEGIN")) != STORE_OK)
            return rc;
        if ((rc = pg_query(db, stmt, sql, &p, &res)) == STORE_OK) {
            rc = pg_pipe_finish(db, req, res, -1);
            PQclear(res);
        }
        if (guard && !db->tx_failed && PQstatus(db->conn) == CONNECTION_OK) {
            int e = STORE_OK;
            if (rc == STORE_OK)
                e = pg_exec_simple(db, db->in_tx ? "RELEASE op" : "COMMIT");
            else if (db->in_tx && (e = pg_exec_simple(db, "ROLLBACK TO op")) == STORE_OK)
                e = pg_exec_simple(db, "RELEASE op");
            else if (!db->in_tx)
                e = pg_exec_simple(db, "ROLLBACK");
            if (e != STORE_OK) rc = e;
        }
        return rc;
    }
    switch (req->op) {
    case STORE_OP_USER_UPSERT:
        return pg_user_upsert(db, &req->u.user_upsert, now);
    case STORE_OP_ACCOUNT_CREATE:
        return pg_account_create(db, &req->u.account_create, now);
    case STORE_OP_DIRECT_OPEN:
        return pg_direct_open(db, &req->u.direct_open, a, now);
    case STORE_OP_GROUP_CREATE:
        return pg_group_create(db, &req->u.group_create, a, now);
    case STORE_OP_FILE_INSERT:
        return pg_file_insert(db, &req->u.file_insert, now);
    case STORE_OP_MESSAGE_UPDATE:
        return pg_message_update(db, &req->u.message_update, a, now);
    case STORE_OP_OUTBOX_CLAIM:
        return pg_outbox_claim(db, &req->u.outbox_claim, a, now);
    case STORE_OP_OUTBOX_ACK:
        return pg_outbox_ack(db, &req->u.outbox_ack, now);
    case STORE_OP_SYSTEM_INSERT:
        return pg_system_insert(db, &req->u.system_insert, a, now);
    case STORE_OP_MEMBERS_CHANGE:
        return pg_members_change(db, &req->u.members_change, a, now);
    case STORE_OP_USER_ERASE:
        return pg_user_erase(db, &req->u.user_erase, a, now);
    case STORE_OP_USER_EXPORT:
        return pg_user_export(db, &req->u.user_export, a);
    case STORE_OP_ACCOUNT_GET:
        return pg_account_get(db, &req->u.account_get, a);
    case STORE_OP_USERS_GET:
        return pg_users_get(db, &req->u.users_get, a);
    case STORE_OP_USERS_SEARCH:
        return pg_users_search(db, &req->u.users_search, a);
    case STORE_OP_CONVERSATION_GET:
        return pg_conversation_get(db, &req->u.conversation_get, a);
    case STORE_OP_CONVERSATIONS_LIST:
        return pg_conversations_list(db, &req->u.conversations_list, a);
    case STORE_OP_MESSAGES_PAGE:
        return pg_messages_page(db, &req->u.messages_page, a);
    case STORE_OP_MESSAGES_AFTER:
        return pg_messages_after(db, &req->u.messages_after, a);
    case STORE_OP_MESSAGES_SINCE:
        return pg_messages_since(db, &req->u.messages_since, a);
    case STORE_OP_FILE_GET:
        return pg_file_get(db, &req->u.file_get, a);
    case STORE_OP_CONTACTS:
        return pg_contacts(db, &req->u.contacts, a);
    case STORE_OP_BLOCK_SET:
        return pg_block_set(db, &req->u.block_set, now);
    case STORE_OP_BLOCKS_LIST:
        return pg_blocks_list(db, &req->u.blocks_list, a);
    case STORE_OP_BLOCK_CHECK:
        return pg_block_check(db, &req->u.block_check);
    case STORE_OP_UNREAD_TOTAL:
        return pg_unread_total(db, &req->u.unread_total);
    case STORE_OP_SEARCH:
        return pg_search(db, &req->u.search, a);
    case STORE_OP_PING: {
        PGresult *res;
        rc = pg_query(db, P_PING, "SELECT 1", NULL, &res);
        PQclear(res);
        return rc;
    }
    default:
        return STORE_E_INVALID;
    }
}

static int engine_exec(void *p, store_req_t *req)
{
    pg_conn_t *c = p;
    int rc = pg_ready(&c->db, c->url);
    if (rc == STORE_OK) rc = pg_exec_one(&c->db, req);
    if (rc == PG_E_RETRY) rc = STORE_E_BUSY; /* a deadlock outside a batch: retryable */
    req->status = rc;
    return rc;
}

static int engine_exec_batch(void *p, store_req_t *head)
{
    pg_conn_t *c = p;
    store_pg_t *db = &c->db;
    for (int attempt = 1;; attempt++) {
        int rc = pg_ready(db, c->url);
        if (rc == STORE_OK) rc = pg_batch_once(db, head);
        if (rc != STORE_OK) tx_abandon(db);
        db->in_tx = db->tx_failed = false;
        if (rc != PG_E_RETRY) return rc;
        if (attempt == PG_BATCH_TRIES) return STORE_E_BUSY;
        log_warn("store: batch retried (attempt %d): %s", attempt + 1, db->err);
        usleep((useconds_t)(1000 * attempt + pg_mono_ms() % 7 * 150));
    }
}

/* Several processes may write the same database: no SINGLE_WRITER. Readers each have their
 * own connection (default_transaction_read_only). */
const store_engine_t store_engine_postgres = {
    .name = "postgres",
    .caps = STORE_ENGINE_READERS,
    .open = engine_open,
    .close = engine_close,
    .begin = engine_begin,
    .commit = engine_commit,
    .rollback = engine_rollback,
    .in_transaction = engine_in_transaction,
    .exec = engine_exec,
    .exec_batch = engine_exec_batch,
    .errmsg = engine_errmsg,
};
