/* A store-only benchmark: sends through the asynchronous store (store_submit, group commit)
 * with a window of requests in flight, on any store URL, and prints messages/s, commits, the
 * largest batch and the CPU per message of this process and (when PG_DATA names a running
 * PostgreSQL cluster's data directory) of that PostgreSQL server.
 *
 *   cmake --build build --target store_bench
 *   build/store_bench URL [MESSAGES] [WINDOW] [CONVERSATIONS]
 *
 * e.g. build/store_bench sqlite:/tmp/b.db 100000 512 500
 *      PG_DATA=/tmp/pg-h1/data build/store_bench postgres://parlor@127.0.0.1:55410/parlor
 *
 * BENCH_RETRY=1: every send carries a clientMsgId and a failed one is sent again (after 20 ms)
 * until it is acknowledged, as a client does; at the end the conversations must hold exactly
 * MESSAGES messages (stop and start the database meanwhile to see nothing lost or doubled). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "store/store.h"

typedef struct {
    store_req_t req;
    int i;
    char cmid[24];
    char arena[512];
} bench_req_t;

static store_t *store;
static uv_loop_t loop;
static int total, next, done, failed, retried, nconv;
static bool retry;
static uv_timer_t retry_timer;
static bench_req_t **retry_list;
static size_t nretry;
static char (*convs)[ID_SIZE];
static char (*senders)[32];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds of the postmaster whose data directory is PG_DATA and of all its children. */
static double cpu_pg(void)
{
    const char *data = getenv("PG_DATA");
    if (!data) return -1;
    char path[512];
    snprintf(path, sizeof path, "%s/postmaster.pid", data);
    FILE *f = fopen(path, "r");
    long master = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld", &master) != 1) master = 0;
    fclose(f);
    double sum = 0;
    long tck = sysconf(_SC_CLK_TCK);
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        long pid = atol(e->d_name);
        if (pid <= 0) continue;
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *s = fopen(path, "r");
        if (!s) continue;
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, s);
        fclose(s);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        if (!p) continue;
        long ppid;
        unsigned long ut, st;
        /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
        if (sscanf(p + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ppid, &ut, &st) !=
            3)
            continue;
        if (pid == master || ppid == master) sum += (double)(ut + st) / (double)tck;
    }
    if (d) closedir(d);
    return sum;
}

static void submit_one(bench_req_t *r);

static void retry_cb(uv_timer_t *t)
{
    (void)t;
    size_t n = nretry;
    nretry = 0;
    for (size_t i = 0; i < n; i++)
        if (store_submit(store, &retry_list[i]->req) != STORE_OK) abort();
}

static void send_done(store_req_t *req)
{
    bench_req_t *r = (bench_req_t *)req;
    if (req->status != STORE_OK && retry) {
        retried++;
        retry_list[nretry++] = r; /* the same request again: same clientMsgId */
        if (!uv_is_active((uv_handle_t *)&retry_timer))
            uv_timer_start(&retry_timer, retry_cb, 20, 0);
        return;
    }
    if (req->status != STORE_OK && failed++ < 5)
        fprintf(stderr, "send failed: %s\n", store_strerror(req->status));
    done++;
    if (next < total) submit_one(r);
}

static void submit_one(bench_req_t *r)
{
    int i = next++;
    int c = i % nconv;
    memset(&r->req, 0, sizeof r->req);
    r->req.op = STORE_OP_MESSAGE_INSERT;
    r->req.done = send_done;
    r->req.arena = (store_arena_t){r->arena, sizeof r->arena, 0, 0};
    store_message_insert_t *m = &r->req.u.message_insert;
    m->sender = str_cstr(senders[2 * c + (i / nconv) % 2]);
    m->conversation_id = str_cstr(convs[c]);
    m->content = STR_LIT("0123456789012345678901234567890123456789012345678901234567890123");
    m->type = STORE_MSG_TEXT;
    if (retry) {
        snprintf(r->cmid, sizeof r->cmid, "m%d", i);
        m->client_msg_id = str_cstr(r->cmid);
    }
    if (store_submit(store, &r->req) != STORE_OK) abort();
}

static int one_done;
static void sync_done(store_req_t *r)
{
    (void)r;
    one_done = 1;
}

static int run(store_req_t *r)
{
    r->done = sync_done;
    one_done = 0;
    if (store_submit(store, r) != STORE_OK) abort();
    while (!one_done) uv_run(&loop, UV_RUN_ONCE);
    return r->status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: store_bench URL [MESSAGES] [WINDOW] [CONVERSATIONS]\n");
        return 2;
    }
    total = argc > 2 ? atoi(argv[2]) : 100000;
    int window = argc > 3 ? atoi(argv[3]) : 512;
    nconv = argc > 4 ? atoi(argv[4]) : 500;
    char err[512];
    uv_loop_init(&loop);
    if (store_open(&loop, argv[1], &store, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        return 1;
    }
    convs = calloc((size_t)nconv, ID_SIZE);
    senders = calloc((size_t)nconv * 2, 32);
    static char arena[8192];
    unsigned tag = (unsigned)time(NULL) % 100000;
    for (int c = 0; c < nconv; c++) {
        snprintf(senders[2 * c], 32, "b%u_%da", tag, c);
        snprintf(senders[2 * c + 1], 32, "b%u_%db", tag, c);
        store_req_t r = {.op = STORE_OP_DIRECT_OPEN};
        r.arena = (store_arena_t){arena, sizeof arena, 0, 0};
        r.u.direct_open.user = str_cstr(senders[2 * c]);
        r.u.direct_open.other = str_cstr(senders[2 * c + 1]);
        if (run(&r) != STORE_OK) {
            fprintf(stderr, "direct_open: %s\n", store_strerror(r.status));
            return 1;
        }
        memcpy(convs[c], r.u.direct_open.conv.id, ID_SIZE);
    }
    store_stats_t s0, s1;
    store_stats(store, &s0);
    bench_req_t *reqs = calloc((size_t)window, sizeof *reqs);
    retry = getenv("BENCH_RETRY") && atoi(getenv("BENCH_RETRY")) > 0;
    retry_list = calloc((size_t)window, sizeof *retry_list);
    uv_timer_init(&loop, &retry_timer);
    double t0 = now_s(), c0 = cpu_self(), p0 = cpu_pg();
    for (int w = 0; w < window && next < total; w++) submit_one(&reqs[w]);
    while (done < total) uv_run(&loop, UV_RUN_ONCE);
    double t1 = now_s(), c1 = cpu_self(), p1 = cpu_pg();
    store_stats(store, &s1);
    uint64_t commits = s1.commits - s0.commits;
    printf("%s: %d messages in %.2f s: %.0f msgs/s, %llu commits (%.1f messages each, largest "
           "batch %llu), %d failed\n",
           strncmp(argv[1], "postgres", 8) == 0 ? "postgres" : "sqlite", total, t1 - t0,
           total / (t1 - t0), (unsigned long long)commits,
           commits ? (double)total / (double)commits : 0.0, (unsigned long long)s1.max_batch,
           failed);
    printf("  CPU per message: this process %.1f us", (c1 - c0) * 1e6 / total);
    if (p0 >= 0) printf(", PostgreSQL %.1f us", (p1 - p0) * 1e6 / total);
    printf("\n");
    if (retry) {
        int64_t stored = 0;
        for (int c = 0; c < nconv; c++) {
            store_req_t r = {.op = STORE_OP_CONVERSATION_GET};
            r.arena = (store_arena_t){arena, sizeof arena, 0, 0};
            r.u.conversation_get.id = str_make(convs[c], ID_LEN);
            for (int k = 0; k < 5 && run(&r) == STORE_E_UNAVAILABLE; k++)
                usleep(100000); /* a reader's connection lost with the restart */
            if (r.status != STORE_OK) {
                fprintf(stderr, "conversation_get: %s\n", store_strerror(r.status));
                failed++;
                break;
            }
            stored += r.u.conversation_get.conv.last_seq;
        }
        printf("  retried %d sends; %lld messages stored for %d sent%s\n", retried,
               (long long)stored, total, stored == total ? "" : ": MISMATCH");
        if (stored != total) failed++;
    }
    uv_close((uv_handle_t *)&retry_timer, NULL);
    store_close(store);
    uv_run(&loop, UV_RUN_DEFAULT);
    free(reqs);
    free(convs);
    free(senders);
    return failed ? 1 : 0;
}
