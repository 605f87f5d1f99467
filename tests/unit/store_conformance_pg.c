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

const sc_case_t sc_cases_pg[] = {
    {"pg_nodes_replay", test_nodes_replay},
    {"pg_connection_lost", test_connection_lost},
    {NULL, NULL},
};
