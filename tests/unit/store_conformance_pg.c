/* Conformance cases of the PostgreSQL engine only: several nodes (processes) writing one
 * database while another replays it, and a lost connection.
 *
 * pg_nodes_replay: two child processes, each a store_t of its own ("nodes"), send into shared
 * conversations as fast as their windows allow (some sends of both repeat the same
 * (sender, clientMsgId) pairs), while this process replays MESSAGES_SINCE in a loop as the
 * chat layer does after a reconnect (from its cursor; the last message's pos while there is
 * more, else the read's last_pos). Then: every send was acknowledged; seq is 1..last_seq in
 * every conversation, without gap or repeat; each clientMsgId has one message, which both
 * nodes were answered; the replay read positions in ascending order and saw every stored
 * message exactly once (it never jumped past a message that committed later).
 *
 * pg_connection_lost: pg_terminate_backend on every connection of the store; the next request
 * on a lost connection fails with STORE_E_UNAVAILABLE, stores nothing, and the one after it
 * reconnects and succeeds. */
#include "store_conformance.h"

#include <stdlib.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store/store_pg.h"

/* The insert lock's key (store_pg_int.h, which the tests do not include). */
#define PG_LOCK_INSERT_SQL "1348563458"

#define NODE_SENDS  1200
#define NODE_WINDOW 64

static bool is_pg(const sc_t *t)
{
    if (strcmp(t->engine, "postgres") == 0) return true;
    fprintf(stderr, "  not applicable: PostgreSQL only\n");
    return false;
}

/* What a node was answered for its i-th send. */
typedef struct {
    int status;
    bool dup;
    int64_t pos, seq;
    char id[ID_SIZE];
} ack_t;

typedef struct {
    store_req_t req;
    int i;
    char cmid[32];
    char arena[1024];
} node_req_t;

static struct {
    uv_loop_t loop;
    store_t *s;
    int node, next, done;
    const char *g, *d1, *d2;
    ack_t acks[NODE_SENDS];
    node_req_t reqs[NODE_WINDOW];
} nd;

/* Node k's i-th send: a quarter are "u" in the group with a clientMsgId both nodes use; the
 * rest go to the group and the direct conversations, half of those without a clientMsgId. */
static void node_submit(node_req_t *r, int i)
{
    const char *own = nd.node == 0 ? "a" : "b";
    store_message_insert_t *m = &r->req.u.message_insert;
    memset(&r->req, 0, sizeof r->req);
    r->i = i;
    r->req.op = STORE_OP_MESSAGE_INSERT;
    r->req.arena = (store_arena_t){r->arena, sizeof r->arena, 0, 0};
    m->type = STORE_MSG_TEXT;
    m->content = STR_LIT("hello from a node");
    switch (i % 4) {
    case 0:
        m->sender = STR_LIT("u");
        m->conversation_id = str_cstr(nd.g);
        snprintf(r->cmid, sizeof r->cmid, "r%d", i);
        m->client_msg_id = str_cstr(r->cmid);
        break;
    case 1:
        m->sender = str_cstr(own);
        m->conversation_id = str_cstr(nd.g);
        break;
    case 2:
        m->sender = STR_LIT("u");
        m->conversation_id = str_cstr(nd.d1);
        break;
    default:
        m->sender = str_cstr(own);
        m->conversation_id = str_cstr(nd.node == 0 ? nd.d1 : nd.d2);
        snprintf(r->cmid, sizeof r->cmid, "c%d-%d", nd.node, i);
        m->client_msg_id = str_cstr(r->cmid);
        break;
    }
    r->req.done = NULL; /* set by the caller */
}

static void node_done(store_req_t *req)
{
    node_req_t *r = container_of(req, node_req_t, req);
    ack_t *a = &nd.acks[r->i];
    a->status = req->status;
    a->dup = req->u.message_insert.duplicate;
    a->pos = req->u.message_insert.msg.pos;
    a->seq = req->u.message_insert.msg.seq;
    memcpy(a->id, req->u.message_insert.msg.id, ID_SIZE);
    nd.done++;
    if (nd.next < NODE_SENDS) {
        node_submit(r, nd.next++);
        r->req.done = node_done;
        if (store_submit(nd.s, &r->req) != STORE_OK) _exit(3);
    }
}

/* A child process: one node. Writes its acks to fd and exits. */
static void node_main(const char *target, int node, int fd, const char *g, const char *d1,
                      const char *d2)
{
    char err[512];
    nd.node = node;
    nd.g = g;
    nd.d1 = d1;
    nd.d2 = d2;
    uv_loop_init(&nd.loop);
    if (store_open(&nd.loop, target, &nd.s, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "  node %d: %s\n", node, err);
        _exit(2);
    }
    for (int w = 0; w < NODE_WINDOW && nd.next < NODE_SENDS; w++) {
        node_submit(&nd.reqs[w], nd.next++);
        nd.reqs[w].req.done = node_done;
        if (store_submit(nd.s, &nd.reqs[w].req) != STORE_OK) _exit(3);
    }
    while (nd.done < NODE_SENDS) uv_run(&nd.loop, UV_RUN_ONCE);
    store_close(nd.s);
    uv_run(&nd.loop, UV_RUN_DEFAULT);
    const char *p = (const char *)nd.acks;
    size_t left = sizeof nd.acks;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n <= 0) _exit(4);
        p += n;
        left -= (size_t)n;
    }
    close(fd);
    _exit(0);
}

/* The replayer's view: positions in the order read. */
typedef struct {
    int64_t *pos;
    char (*id)[ID_SIZE];
    size_t n, cap;
    int64_t cursor, last;
    int out_of_order;
} replay_t;

/* One MESSAGES_SINCE step from the cursor; returns whether it read anything. */
static bool replay_step(sc_t *t, replay_t *rp)
{
    store_arena_t ar = sc_arena();
    store_messages_since_t op = {.user = STR_LIT("u"), .after_pos = rp->cursor, .limit = 200};
    CHECK_EQ_INT(sc_messages_since(t, &op, &ar), STORE_OK);
    for (size_t i = 0; i < op.count; i++) {
        const store_message_t *m = &op.msgs[i];
        if (m->pos <= rp->last) rp->out_of_order++;
        rp->last = m->pos;
        if (rp->n == rp->cap) {
            rp->cap = rp->cap ? 2 * rp->cap : 4096;
            rp->pos = realloc(rp->pos, rp->cap * sizeof *rp->pos);
            rp->id = realloc(rp->id, rp->cap * sizeof *rp->id);
            if (!rp->pos || !rp->id) abort();
        }
        rp->pos[rp->n] = m->pos;
        memcpy(rp->id[rp->n], m->id, ID_SIZE);
        rp->n++;
    }
    if (op.has_more && op.count > 0)
        rp->cursor = op.msgs[op.count - 1].pos;
    else if (op.last_pos > rp->cursor)
        rp->cursor = op.last_pos; /* the jump the scheme must make safe */
    return op.count > 0;
}

/* Every message of conv, ascending: checks seq 1..n; returns n, adds the ids to all. */
static size_t conv_check(sc_t *t, const char *conv, char (*all)[ID_SIZE], size_t *nall, size_t cap)
{
    int64_t after = 0;
    size_t n = 0;
    int gaps = 0;
    for (;;) {
        store_arena_t ar = sc_arena();
        store_messages_after_t op = {
            .conversation_id = str_cstr(conv), .after_seq = after, .limit = 200};
        CHECK_EQ_INT(sc_messages_after(t, &op, &ar), STORE_OK);
        for (size_t i = 0; i < op.count; i++) {
            if (op.msgs[i].seq != (int64_t)n + 1) gaps++;
            n++;
            if (*nall < cap) memcpy(all[(*nall)++], op.msgs[i].id, ID_SIZE);
        }
        if (!op.has_more || op.count == 0) break;
        after = op.msgs[op.count - 1].seq;
    }
    CHECK_EQ_INT(gaps, 0);
    CHECK_EQ_INT(sc_last_seq(t, conv, NULL), (int64_t)n);
    return n;
}

static int id_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_nodes_replay(sc_t *t)
{
    if (!is_pg(t)) return;
    char g[ID_SIZE], d1[ID_SIZE], d2[ID_SIZE];
    sc_upsert(t, "u", "U");
    sc_upsert(t, "a", "A");
    sc_upsert(t, "b", "B");
    sc_direct(t, "u", "a", d1);
    sc_direct(t, "u", "b", d2);
    store_arena_t ar = sc_arena();
    str_t parts[] = {STR_LIT("a"), STR_LIT("b")};
    store_group_create_t gc = {.creator = STR_LIT("u"), .participants = parts, .count = 2};
    CHECK_EQ_INT(sc_group_create(t, &gc, &ar, 1000), STORE_OK);
    memcpy(g, gc.conv.id, ID_SIZE);

    int fds[2][2];
    pid_t pids[2];
    fflush(NULL);
    for (int k = 0; k < 2; k++) {
        if (pipe(fds[k]) != 0) abort();
        pids[k] = fork();
        if (pids[k] == 0) {
            close(fds[k][0]);
            node_main(t->target, k, fds[k][1], g, d1, d2);
        }
        close(fds[k][1]);
    }

    /* Replay while both nodes write; read their acks as they come (a full pipe would stop
     * them). */
    static ack_t acks[2][NODE_SENDS];
    size_t got[2] = {0, 0};
    replay_t rp = {0};
    int running = 2, steps = 0;
    while (running > 0) {
        replay_step(t, &rp);
        steps++;
        for (int k = 0; k < 2; k++) {
            if (pids[k] <= 0) continue;
            for (;;) {
                fd_set rd;
                FD_ZERO(&rd);
                FD_SET(fds[k][0], &rd);
                struct timeval tv = {0, 0};
                if (select(fds[k][0] + 1, &rd, NULL, NULL, &tv) <= 0) break;
                ssize_t n = read(fds[k][0], (char *)acks[k] + got[k], sizeof acks[k] - got[k]);
                if (n <= 0) break;
                got[k] += (size_t)n;
            }
            int status;
            if (waitpid(pids[k], &status, WNOHANG) == pids[k]) {
                CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                pids[k] = -1;
                running--;
            }
        }
    }
    for (int k = 0; k < 2; k++) {
        ssize_t n;
        while (got[k] < sizeof acks[k] &&
               (n = read(fds[k][0], (char *)acks[k] + got[k], sizeof acks[k] - got[k])) > 0)
            got[k] += (size_t)n;
        close(fds[k][0]);
        CHECK_EQ_INT(got[k], sizeof acks[k]);
    }
    while (replay_step(t, &rp)) steps++;

    /* Every send acknowledged; a repeated clientMsgId answered with one message. */
    int failed = 0, twice = 0, dups = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < NODE_SENDS; i++) failed += acks[k][i].status != STORE_OK;
    for (int i = 0; i < NODE_SENDS; i += 4) {
        twice += strcmp(acks[0][i].id, acks[1][i].id) != 0;
        twice += !acks[0][i].dup && !acks[1][i].dup;
        dups += acks[0][i].dup + acks[1][i].dup;
    }
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(twice, 0);
    CHECK_EQ_INT(dups, NODE_SENDS / 4);

    /* seq gap-free per conversation; the stored messages are exactly what was sent. */
    size_t expect = 2 * NODE_SENDS - NODE_SENDS / 4, nall = 0;
    char(*all)[ID_SIZE] = calloc(expect + 16, ID_SIZE);
    if (!all) abort();
    size_t total = conv_check(t, g, all, &nall, expect + 16) +
                   conv_check(t, d1, all, &nall, expect + 16) +
                   conv_check(t, d2, all, &nall, expect + 16);
    CHECK_EQ_INT(total, expect);

    /* The replay: ascending positions, every message exactly once. */
    CHECK_EQ_INT(rp.out_of_order, 0);
    CHECK_EQ_INT(rp.n, expect);
    qsort(rp.id, rp.n, ID_SIZE, id_cmp);
    qsort(all, nall, ID_SIZE, id_cmp);
    int missing = 0;
    for (size_t i = 0; i < nall && i < rp.n; i++) missing += strcmp(all[i], rp.id[i]) != 0;
    CHECK_EQ_INT(missing, 0);
    fprintf(stderr, "  %zu messages from 2 processes, %d replay steps while writing\n", total,
            steps);
    free(all);
    free(rp.pos);
    free(rp.id);
}

/* ---- A lost connection ------------------------------------------------------------------- */

/* Terminates every other backend of this database (the store's connections). */
static int terminate_backends(const char *target)
{
    PGconn *c = PQconnectdb(target);
    int n = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                " WHERE application_name = 'parlor' AND pid <> pg_backend_pid()"
                                " AND datname = current_database()");
        if (PQresultStatus(r) == PGRES_TUPLES_OK) n = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    PQfinish(c);
    return n;
}

static void test_connection_lost(sc_t *t)
{
    if (!is_pg(t)) return;
    char conv[ID_SIZE];
    sc_upsert(t, "alice", "Alice");
    sc_direct(t, "alice", "bob", conv);
    CHECK_EQ_INT(sc_send(t, conv, "alice", "before"), 1);

    CHECK(terminate_backends(t->target) >= 1);
    /* The writer's connection is gone: the send fails, retryable, and stores nothing. */
    store_message_insert_t op;
    CHECK_EQ_INT(sc_send_at(t, conv, "alice", "lost", 3000, &op), STORE_E_UNAVAILABLE);
    /* The next one reconnects. */
    CHECK_EQ_INT(sc_send(t, conv, "alice", "after"), 2);

    /* Readers: each lost connection fails one read at most, then reconnects. */
    int unavailable = 0, ok = 0;
    for (int i = 0; i < 8; i++) {
        store_req_t r = {.op = STORE_OP_PING};
        int rc = sc_exec(t, &r);
        unavailable += rc == STORE_E_UNAVAILABLE;
        ok += rc == STORE_OK;
    }
    CHECK(unavailable <= 2); /* the default two reader connections */
    CHECK(ok >= 6);
    store_req_t r = {.op = STORE_OP_PING};
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);

    /* Lost again, this time under a batch of sends: all of it fails, none of it is stored. */
    CHECK(terminate_backends(t->target) >= 1);
    store_message_insert_t ops[5];
    store_req_t reqs[5], *ptrs[5];
    static char arenas[5][1024];
    for (int i = 0; i < 5; i++) {
        memset(&reqs[i], 0, sizeof reqs[i]);
        reqs[i].op = STORE_OP_MESSAGE_INSERT;
        reqs[i].arena = (store_arena_t){arenas[i], sizeof arenas[i], 0, 0};
        ops[i] = (store_message_insert_t){.sender = STR_LIT("alice"),
                                          .conversation_id = str_cstr(conv),
                                          .content = STR_LIT("batch"),
                                          .type = STORE_MSG_TEXT};
        reqs[i].u.message_insert = ops[i];
        ptrs[i] = &reqs[i];
    }
    sc_run_batch(t, t->s, ptrs, 5);
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(reqs[i].status, STORE_E_UNAVAILABLE);
    CHECK_EQ_INT(sc_send(t, conv, "alice", "again"), 3);
    for (int i = 0; i < 4; i++) { /* the readers' lost connections */
        store_req_t p = {.op = STORE_OP_PING};
        sc_exec(t, &p);
    }
    CHECK_EQ_INT(sc_last_seq(t, conv, NULL), 3);
}

/* ---- The engine's own batch calls (begin, exec, commit), which the store does not use when
 * the engine has exec_batch: they keep the contract of store_engine.h all the same. -------- */

static void test_engine_calls(sc_t *t)
{
    if (!is_pg(t)) return;
    char conv[ID_SIZE], err[256] = "";
    sc_upsert(t, "alice", "Alice");
    sc_direct(t, "alice", "bob", conv);
    const store_engine_t *e = store_engine_find("postgres");
    const char *url;
    store_target_engine(t->target, &url);
    void *c = NULL;
    CHECK_EQ_INT(e->open(url, false, &c, err, sizeof err), STORE_OK);
    if (!c) return;
    static char arena[4096];
    store_req_t r = {.op = STORE_OP_MESSAGE_INSERT, .now_ms = 5000};
    r.arena = (store_arena_t){arena, sizeof arena, 0, 0};
    r.u.message_insert = (store_message_insert_t){.sender = STR_LIT("alice"),
                                                  .conversation_id = str_cstr(conv),
                                                  .content = STR_LIT("one"),
                                                  .client_msg_id = STR_LIT("k1"),
                                                  .type = STORE_MSG_TEXT};
    /* A batch: a send, a refused send (not a member), a repeat of the first: the refusal is
     * undone alone and the batch commits. */
    CHECK_EQ_INT(e->begin(c), STORE_OK);
    CHECK_EQ_INT(e->exec(c, &r), STORE_OK);
    CHECK_EQ_INT(r.u.message_insert.msg.seq, 1);
    store_req_t bad = r;
    bad.u.message_insert.sender = STR_LIT("mallory");
    bad.u.message_insert.client_msg_id = STR_NULL;
    CHECK_EQ_INT(e->exec(c, &bad), STORE_E_FORBIDDEN);
    CHECK(e->in_transaction(c));
    store_req_t again = r;
    CHECK_EQ_INT(e->exec(c, &again), STORE_OK);
    CHECK(again.u.message_insert.duplicate);
    CHECK_EQ_INT(e->commit(c), STORE_OK);
    CHECK_EQ_INT(sc_last_seq(t, conv, NULL), 1);
    /* A batch rolled back leaves nothing. */
    CHECK_EQ_INT(e->begin(c), STORE_OK);
    r.u.message_insert.client_msg_id = STR_LIT("k2");
    CHECK_EQ_INT(e->exec(c, &r), STORE_OK);
    CHECK_EQ_INT(r.u.message_insert.msg.seq, 2);
    e->rollback(c);
    CHECK(!e->in_transaction(c));
    CHECK_EQ_INT(sc_last_seq(t, conv, NULL), 1);
    /* Outside a batch a write is its own transaction. */
    CHECK_EQ_INT(e->exec(c, &r), STORE_OK);
    CHECK_EQ_INT(r.u.message_insert.msg.seq, 2);
    CHECK_EQ_INT(sc_last_seq(t, conv, NULL), 2);
    /* A reader connection refuses writes. */
    void *ro = NULL;
    CHECK_EQ_INT(e->open(url, true, &ro, err, sizeof err), STORE_OK);
    if (ro) CHECK_EQ_INT(e->exec(ro, &r), STORE_E_INVALID);
    e->close(ro);
    e->close(c);
}

/* ---- A pipeline whose results are much larger than its statements ----------------------- */

/* Retries of a large message's clientMsgId (tiny requests answered with the large stored
 * message) followed, in the same batch, by a new large send: the server has megabytes of
 * answers to write while the engine still writes the large send; every answer is right. */
static void test_pipeline_large(sc_t *t)
{
    if (!is_pg(t)) return;
    enum { RETRIES = 100, BIG = 200000 };
    char conv[ID_SIZE];
    sc_upsert(t, "alice", "Alice");
    sc_direct(t, "alice", "bob", conv);
    static char big[BIG];
    memset(big, 'x', sizeof big);
    store_message_insert_t op = {.sender = STR_LIT("alice"),
                                 .conversation_id = str_cstr(conv),
                                 .content = str_make(big, sizeof big),
                                 .client_msg_id = STR_LIT("big"),
                                 .type = STORE_MSG_TEXT};
    store_arena_t ar = sc_arena();
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 1000), STORE_OK);
    static store_req_t reqs[RETRIES + 1];
    static store_req_t *ptrs[RETRIES + 1];
    static char arenas[RETRIES + 1][BIG + 4096];
    for (int i = 0; i <= RETRIES; i++) {
        memset(&reqs[i], 0, sizeof reqs[i]);
        reqs[i].op = STORE_OP_MESSAGE_INSERT;
        reqs[i].arena = (store_arena_t){arenas[i], sizeof arenas[i], 0, 0};
        reqs[i].u.message_insert = op;
        reqs[i].u.message_insert.content = STR_LIT("retry");
        ptrs[i] = &reqs[i];
    }
    reqs[RETRIES].u.message_insert.content = str_make(big, sizeof big);
    reqs[RETRIES].u.message_insert.client_msg_id = STR_LIT("big2");
    sc_run_batch(t, t->s, ptrs, RETRIES + 1);
    int dups = 0;
    for (int i = 0; i < RETRIES; i++)
        dups += reqs[i].status == STORE_OK && reqs[i].u.message_insert.duplicate &&
                reqs[i].u.message_insert.msg.content.len == BIG;
    CHECK_EQ_INT(dups, RETRIES);
    CHECK_EQ_INT(reqs[RETRIES].status, STORE_OK);
    CHECK_EQ_INT(reqs[RETRIES].u.message_insert.msg.seq, 2);
}

/* ---- Migrations ------------------------------------------------------------------------ */

/* The case's URL with the search_path of another, new schema (created here). */
static bool other_schema(sc_t *t, const char *suffix, char *url, size_t cap, char name[96])
{
    const char *sp = strstr(t->target, "search_path%3D");
    if (!sp) return false;
    snprintf(name, 96, "%s_%s", sp + strlen("search_path%3D"), suffix);
    PGconn *c = PQconnectdb(t->target);
    char sql[160];
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", name);
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(c);
    snprintf(url, cap, "%.*s%s", (int)(sp + strlen("search_path%3D") - t->target), t->target, name);
    return ok;
}

typedef struct {
    const char *url;
    int rc;
    char err[256];
} opener_t;

static void opener_main(void *arg)
{
    opener_t *o = arg;
    uv_loop_t loop;
    store_t *s = NULL;
    uv_loop_init(&loop);
    o->rc = store_open(&loop, o->url, &s, o->err, sizeof o->err);
    if (s) store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

/* Nodes starting together on an empty schema migrate it once; a schema newer than the build
 * is refused, by the writer and by a reader alike. */
static void test_migrations(sc_t *t)
{
    if (!is_pg(t)) return;
    char url[1200], name[96];
    CHECK(other_schema(t, "m", url, sizeof url, name));
    enum { N = 4 };
    opener_t o[N];
    uv_thread_t th[N];
    for (int i = 0; i < N; i++) {
        o[i] = (opener_t){.url = url};
        uv_thread_create(&th[i], opener_main, &o[i]);
    }
    for (int i = 0; i < N; i++) {
        uv_thread_join(&th[i]);
        CHECK_EQ_INT(o[i].rc, STORE_OK);
        if (o[i].rc != STORE_OK) fprintf(stderr, "  node %d: %s\n", i, o[i].err);
    }
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, "SELECT count(*), max(version) FROM parlor_schema");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "1") == 0 &&
          atoi(PQgetvalue(r, 0, 1)) == STORE_PG_SCHEMA_VERSION);
    PQclear(r);
    r = PQexec(c, "UPDATE parlor_schema SET version = 99");
    PQclear(r);
    PQfinish(c);
    opener_t newer = {.url = url};
    opener_main(&newer);
    CHECK_EQ_INT(newer.rc, STORE_E_INVALID);
    CHECK(strstr(newer.err, "newer than this build") != NULL);
    const char *engine_url;
    store_target_engine(url, &engine_url);
    void *ro = NULL;
    char err[256] = "";
    CHECK_EQ_INT(store_engine_find("postgres")->open(engine_url, true, &ro, err, sizeof err),
                 STORE_E_INVALID);
    CHECK(ro == NULL);
    c = PQconnectdb(t->target); /* the harness drops only the schemas it made */
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    char sql[160];
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", name);
    PQclear(PQexec(c, sql));
    PQfinish(c);
}

/* ---- A lock held elsewhere ------------------------------------------------------------- */

/* Another node holds the insert lock (stuck inside its transaction): a send waits at most
 * lock_timeout (the URL's here, 300 ms; 10 s by default) and fails with STORE_E_BUSY, storing
 * nothing; once the lock is free the next send goes through. */
static void test_lock_timeout(sc_t *t)
{
    if (!is_pg(t)) return;
    char conv[ID_SIZE], url[1200];
    sc_upsert(t, "alice", "Alice");
    sc_direct(t, "alice", "bob", conv);
    snprintf(url, sizeof url, "%s%%20-clock_timeout%%3D300", t->target);
    sc_close(t, t->s); /* the case's store again, with the URL's lock_timeout */
    t->s = NULL;
    char err[256];
    CHECK_EQ_INT(store_open(t->loop, url, &t->s, err, sizeof err), STORE_OK);
    if (!t->s) return;
    PGconn *c = PQconnectdb(t->target);
    PQclear(PQexec(c, "BEGIN"));
    PGresult *r = PQexec(c, "SELECT pg_advisory_xact_lock(" PG_LOCK_INSERT_SQL
                            ", hashtext(current_schema()))");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    store_message_insert_t op;
    CHECK_EQ_INT(sc_send_at(t, conv, "alice", "blocked", 3000, &op), STORE_E_BUSY);
    PQclear(PQexec(c, "COMMIT"));
    PQfinish(c);
    CHECK_EQ_INT(sc_send(t, conv, "alice", "free"), 1);
}

/* pg_chain (issue 14, schema version 6): a new direct message answers, for its sender and its
 * recipient, the position of their previous message in any of their conversations (0: none
 * recorded), whatever moved it: a direct message, a group message (which answers no prev
 * itself), an edit (a new position), while another pair's messages interleave. A repeated
 * clientMsgId answers 0s (no new position). */
static int64_t chain_send(sc_t *t, const char *conv, const char *sender, const char *cmid,
                          int64_t *ps, int64_t *pr, bool *dup)
{
    store_message_insert_t op;
    store_arena_t ar = sc_arena();
    memset(&op, 0, sizeof op);
    op.sender = str_cstr(sender);
    op.conversation_id = str_cstr(conv);
    op.content = STR_LIT("chained");
    op.type = STORE_MSG_TEXT;
    if (cmid) op.client_msg_id = str_cstr(cmid);
    CHECK_EQ_INT(sc_message_insert(t, &op, &ar, 3000), STORE_OK);
    *ps = op.prev_sender;
    *pr = op.prev_recipient;
    if (dup) *dup = op.duplicate;
    return op.msg.pos;
}

static void test_chain(sc_t *t)
{
    if (!is_pg(t)) return;
    char ab[ID_SIZE], ac[ID_SIZE], de[ID_SIZE], grp[ID_SIZE];
    const char *users[] = {"alice", "bob", "carol", "dave", "erin"};
    for (size_t i = 0; i < 5; i++) sc_upsert(t, users[i], users[i]);
    sc_direct(t, "alice", "bob", ab);
    sc_direct(t, "alice", "carol", ac);
    sc_direct(t, "dave", "erin", de);
    int64_t ps, pr;
    bool dup;
    int64_t p1 = chain_send(t, ab, "alice", "k1", &ps, &pr, NULL);
    CHECK(ps == 0 && pr == 0); /* nothing recorded for either yet */
    int64_t p2 = chain_send(t, ab, "bob", NULL, &ps, &pr, NULL);
    CHECK(ps == p1 && pr == p1 && p2 > p1);
    /* another pair in between moves nothing of theirs */
    int64_t q1 = chain_send(t, de, "dave", NULL, &ps, &pr, NULL);
    CHECK(ps == 0 && pr == 0 && q1 > p2);
    int64_t p3 = chain_send(t, ac, "alice", NULL, &ps, &pr, NULL);
    CHECK(ps == p2 && pr == 0);
    /* a repeated clientMsgId: no new position, no prev */
    CHECK(chain_send(t, ab, "alice", "k1", &ps, &pr, &dup) == p1);
    CHECK(dup && ps == 0 && pr == 0);
    /* a group message moves its members' chain; it answers none itself */
    str_t parts[] = {STR_LIT("bob"), STR_LIT("carol")};
    store_arena_t ar = sc_arena();
    store_group_create_t g = {.creator = STR_LIT("alice"), .participants = parts, .count = 2};
    CHECK_EQ_INT(sc_group_create(t, &g, &ar, 1), STORE_OK);
    memcpy(grp, g.conv.id, ID_SIZE);
    int64_t g1 = chain_send(t, grp, "carol", NULL, &ps, &pr, NULL);
    CHECK(ps == 0 && pr == 0 && g1 > p3);
    int64_t p4 = chain_send(t, ab, "bob", NULL, &ps, &pr, NULL);
    CHECK(ps == g1 && pr == g1);
    int64_t q2 = chain_send(t, de, "erin", NULL, &ps, &pr, NULL);
    CHECK(ps == q1 && pr == q1);
    /* an edit gives the message a new position: the chain moves to it */
    store_message_update_t up = {.user = STR_LIT("bob"), .content = STR_LIT("edited")};
    char id4[ID_SIZE];
    {
        store_message_insert_t op;
        CHECK_EQ_INT(sc_send_at(t, ab, "bob", "to edit", 3000, &op), STORE_OK);
        CHECK(op.prev_sender == p4 && op.prev_recipient == p4 && op.msg.pos > q2);
        memcpy(id4, op.msg.id, ID_SIZE);
    }
    up.message_id = str_cstr(id4);
    ar = sc_arena();
    CHECK_EQ_INT(sc_message_update(t, &up, &ar, 3100), STORE_OK);
    int64_t e = up.msg.pos;
    int64_t p5 = chain_send(t, ac, "carol", NULL, &ps, &pr, NULL);
    CHECK(ps == g1 && pr == e && p5 > e); /* carol: the group; alice: the edit */
}

const sc_case_t sc_cases_pg[] = {
    {"pg_lock_timeout", test_lock_timeout},
    {"pg_migrations", test_migrations},
    {"pg_pipeline_large", test_pipeline_large},
    {"pg_engine_calls", test_engine_calls},
    {"pg_nodes_replay", test_nodes_replay},
    {"pg_connection_lost", test_connection_lost},
    {"pg_chain", test_chain},
    {NULL, NULL},
};
