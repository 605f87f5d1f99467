/* The cluster bus against a real redis-server, which this test starts itself on a loopback
 * port (no persistence) and stops and restarts for the fault cases: publish/subscribe between
 * two buses, reference-counted subscriptions, plain commands, Redis going away and coming
 * back (state callbacks, re-subscription, the outbox and its bound), closing with commands in
 * flight, and the URL parser. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "cluster/redis_bus.h"
#include "unit.h"

static pid_t redis_pid;
static int redis_port;
static char redis_url[64];

static void redis_start(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", redis_port);
    redis_pid = fork();
    if (redis_pid == 0) {
        int devnull = open("/dev/null", 1);
        dup2(devnull, 1);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", "/tmp", (char *)NULL);
        _exit(127);
    }
    /* Ready when a plain connection answers PING. */
    for (int i = 0; i < 200; i++) {
        redisContext *c = redisConnect("127.0.0.1", redis_port);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            bool ok = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok) return;
        } else if (c) {
            redisFree(c);
        }
        usleep(25000);
    }
    fprintf(stderr, "redis-server did not start (is it installed? scripts/deps.sh test)\n");
    exit(1);
}

static void redis_stop(void)
{
    if (redis_pid <= 0) return;
    kill(redis_pid, SIGKILL);
    waitpid(redis_pid, NULL, 0);
    redis_pid = 0;
}

/* ---- A bus with a record of what it saw ---- */

typedef struct {
    redis_bus_t *bus;
    char got[64][64];
    int ngot;
    int ups, downs;
    uint64_t lost;
    bool up;
    bool closed;
} peer_t;

static void on_message(void *arg, const char *ch, size_t chlen, const char *data, size_t len)
{
    peer_t *p = arg;
    if (p->ngot < 64) snprintf(p->got[p->ngot++], 64, "%.*s=%.*s", (int)chlen, ch, (int)len, data);
}

static void on_state(void *arg, bool up, uint64_t lost)
{
    peer_t *p = arg;
    p->up = up;
    if (up)
        p->ups++;
    else
        p->downs++;
    p->lost += lost;
}

static void peer_open_url(peer_t *p, uv_loop_t *loop, size_t outbox, const char *url)
{
    memset(p, 0, sizeof *p);
    redis_bus_callbacks_t cb = {.on_message = on_message, .on_state = on_state, .arg = p};
    redis_bus_options_t o = {.outbox_max_bytes = outbox, .retry_max_ms = 100};
    char err[128];
    p->bus = redis_bus_new(loop, url, &o, &cb, err, sizeof err);
    CHECK(p->bus != NULL);
}

static void peer_open(peer_t *p, uv_loop_t *loop, size_t outbox)
{
    peer_open_url(p, loop, outbox, redis_url);
}

static void on_closed(void *arg)
{
    ((peer_t *)arg)->closed = true;
}

/* Runs the loop until cond holds or ms passed; returns cond. */
#define RUN_UNTIL(loop, cond, ms)                                                                  \
    ({                                                                                             \
        uint64_t until_ = uv_now(loop) + (ms);                                                     \
        while (!(cond) && uv_now(loop) < until_) {                                                 \
            uv_run(loop, UV_RUN_NOWAIT);                                                           \
            usleep(2000);                                                                          \
            uv_update_time(loop);                                                                  \
        }                                                                                          \
        (cond);                                                                                    \
    })

static bool got(const peer_t *p, const char *what)
{
    for (int i = 0; i < p->ngot; i++)
        if (!strcmp(p->got[i], what)) return true;
    return false;
}

static void pub(peer_t *p, const char *ch, const char *data)
{
    redis_bus_publish(p->bus, ch, strlen(ch), data, strlen(data));
}

static void sub(peer_t *p, const char *ch)
{
    redis_bus_subscribe(p->bus, ch, strlen(ch));
}

static void unsub(peer_t *p, const char *ch)
{
    redis_bus_unsubscribe(p->bus, ch, strlen(ch));
}

static void close_peer(uv_loop_t *loop, peer_t *p)
{
    redis_bus_close(p->bus, on_closed, p);
    CHECK(RUN_UNTIL(loop, p->closed, 2000));
}

/* ---- Cases ---- */

static void test_publish_subscribe(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    peer_t a, b;
    peer_open(&a, &loop, 0);
    peer_open(&b, &loop, 0);
    sub(&b, "ch:1");
    sub(&b, "ch:fence");
    CHECK(RUN_UNTIL(&loop, a.up && b.up, 3000));
    pub(&a, "ch:2", "nobody");
    pub(&a, "ch:1", "hello");
    pub(&a, "ch:fence", "1");
    CHECK(RUN_UNTIL(&loop, got(&b, "ch:fence=1"), 3000));
    CHECK(got(&b, "ch:1=hello"));
    CHECK(!got(&b, "ch:2=nobody"));
    CHECK_EQ_INT(b.ngot, 2);

    /* Counted: two subscribes need two unsubscribes. */
    sub(&b, "ch:1");
    unsub(&b, "ch:1");
    pub(&a, "ch:1", "still");
    pub(&a, "ch:fence", "2");
    CHECK(RUN_UNTIL(&loop, got(&b, "ch:fence=2"), 3000));
    CHECK(got(&b, "ch:1=still"));
    unsub(&b, "ch:1");
    unsub(&b, "ch:1"); /* one too many: ignored */
    pub(&a, "ch:1", "gone");
    pub(&a, "ch:fence", "3");
    CHECK(RUN_UNTIL(&loop, got(&b, "ch:fence=3"), 3000));
    CHECK(!got(&b, "ch:1=gone"));
    redis_bus_stats_t st;
    redis_bus_stats(b.bus, &st);
    CHECK_EQ_INT(st.channels, 1);
    CHECK(st.up);
    close_peer(&loop, &a);
    close_peer(&loop, &b);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static int replies;
static long long last_int;
static bool last_null;

static void on_reply(void *arg, struct redisReply *r)
{
    (void)arg;
    replies++;
    last_null = r == NULL;
    if (r && r->type == REDIS_REPLY_INTEGER) last_int = r->integer;
}

static int command(peer_t *p, const char *a0, const char *a1, const char *a2)
{
    const char *argv[3] = {a0, a1, a2};
    size_t lens[3] = {strlen(a0), a1 ? strlen(a1) : 0, a2 ? strlen(a2) : 0};
    return redis_bus_command(p->bus, on_reply, NULL, a2 ? 3 : a1 ? 2 : 1, argv, lens);
}

static void test_commands_and_faults(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    peer_t a, b;
    peer_open(&a, &loop, 0);
    peer_open(&b, &loop, 40); /* an outbox of 40 bytes */
    sub(&a, "ch:x");
    sub(&a, "ch:fence");
    CHECK(RUN_UNTIL(&loop, a.up && b.up, 3000));
    replies = 0;
    CHECK_EQ_INT(command(&b, "INCRBY", "bus-test-counter", "5"), 0);
    CHECK(RUN_UNTIL(&loop, replies == 1, 3000));
    CHECK_EQ_INT(last_int, 5);

    /* Redis goes away: both report down, commands are refused, publishes wait. */
    redis_stop();
    CHECK(RUN_UNTIL(&loop, !a.up && !b.up, 3000));
    CHECK_EQ_INT(a.downs, 1);
    CHECK_EQ_INT(command(&b, "PING", NULL, NULL), -1);
    pub(&b, "ch:x", "kept");                            /* 10 bytes: in the outbox */
    pub(&b, "ch:x", "0123456789012345678901234567890"); /* past 40 bytes: dropped */
    redis_bus_stats_t st;
    redis_bus_stats(b.bus, &st);
    CHECK_EQ_INT(st.dropped, 1);
    CHECK_EQ_INT(st.outbox_bytes, 8);

    /* It comes back: both up again, subscriptions restored, the outbox sent, the loss told. */
    redis_start();
    CHECK(RUN_UNTIL(&loop, a.up && b.up, 5000));
    CHECK_EQ_INT(b.lost, 1);
    CHECK_EQ_INT(a.ups, 2);
    pub(&b, "ch:x", "after");
    pub(&b, "ch:fence", "1");
    CHECK(RUN_UNTIL(&loop, got(&a, "ch:fence=1"), 3000));
    CHECK(got(&a, "ch:x=after"));
    redis_bus_stats(b.bus, &st);
    CHECK_EQ_INT(st.outbox_bytes, 0);
    CHECK(st.reconnects >= 1);

    /* Closing with a command in flight: its callback runs once, with NULL. */
    replies = 0;
    CHECK_EQ_INT(command(&b, "BLPOP", "bus-test-never", "5"), 0);
    close_peer(&loop, &b);
    CHECK_EQ_INT(replies, 1);
    CHECK(last_null);
    close_peer(&loop, &a);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_parse_url(void)
{
    char host[64], err[128];
    int port, db;
    CHECK_EQ_INT(redis_bus_parse_url("redis://h", host, sizeof host, &port, &db, err, 128), 0);
    CHECK(!strcmp(host, "h") && port == 6379 && db == 0);
    CHECK_EQ_INT(redis_bus_parse_url("redis://10.0.0.2:7000/3", host, 64, &port, &db, err, 128), 0);
    CHECK(!strcmp(host, "10.0.0.2") && port == 7000 && db == 3);
    CHECK_EQ_INT(redis_bus_parse_url("redis://[::1]:7001/", host, 64, &port, &db, err, 128), 0);
    CHECK(!strcmp(host, "::1") && port == 7001 && db == 0);
    const char *bad[] = {"",
                         "http://h",
                         "redis://",
                         "redis://:1",
                         "redis://h:0",
                         "redis://h:70000",
                         "redis://h:x",
                         "redis://h/x",
                         "redis://h/1/2",
                         "redis://[::1",
                         "redis://u@h",
                         "redis://u:@h",
                         "redis://:p%4@h",
                         "redis://:p%00@h",
                         "redis://:p%zz@h",
                         "redis://:p w@h",
                         "redis://:p@",
                         "redis://h:1x",
                         "redis://[]:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(redis_bus_parse_url(bad[i], host, 64, &port, &db, err, 128), -1);
    char tiny[4];
    CHECK_EQ_INT(redis_bus_parse_url("redis://longhost", tiny, 4, &port, &db, err, 128), -1);
    /* credentials */
    redis_bus_auth_t auth;
    CHECK_EQ_INT(redis_bus_parse_url("redis://:pw@h:7000/2", host, 64, &port, &db, err, 128), 0);
    CHECK(!strcmp(host, "h") && port == 7000 && db == 2);
    CHECK_EQ_INT(redis_bus_parse_auth("redis://:pw@h:7000/2", &auth), 0);
    CHECK(!strcmp(auth.user, "") && !strcmp(auth.password, "pw"));
    CHECK_EQ_INT(redis_bus_parse_auth("redis://bus:p%40ss%3Aw@[::1]/1", &auth), 0);
    CHECK(!strcmp(auth.user, "bus") && !strcmp(auth.password, "p@ss:w"));
    CHECK_EQ_INT(redis_bus_parse_auth("redis://h", &auth), 0);
    CHECK(!auth.user[0] && !auth.password[0]);
    CHECK_EQ_INT(redis_bus_parse_auth("redis://u@h", &auth), -1);
}

/* A sync connection's command, for setting the server up; returns whether it answered OK. */
static bool admin(const char *password, const char *fmt, const char *arg)
{
    redisContext *c = redisConnect("127.0.0.1", redis_port);
    if (!c || c->err) return false;
    bool ok = true;
    if (password) {
        redisReply *r = redisCommand(c, "AUTH %s", password);
        ok = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
    }
    redisReply *r = ok ? redisCommand(c, fmt, arg) : NULL;
    ok = r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    redisFree(c);
    return ok;
}

static void test_credentials(void)
{
    CHECK(admin(NULL, "CONFIG SET requirepass %s", "s3cr@t"));
    CHECK(admin("s3cr@t", "ACL SETUSER bus on >%s ~* &* +@all", "bus-pw"));
    uv_loop_t loop;
    uv_loop_init(&loop);
    char good[128], user[128], wrong[128];
    snprintf(good, sizeof good, "redis://:s3cr%%40t@127.0.0.1:%d", redis_port);
    snprintf(user, sizeof user, "redis://bus:bus-pw@127.0.0.1:%d", redis_port);
    snprintf(wrong, sizeof wrong, "redis://:nope@127.0.0.1:%d", redis_port);
    peer_t a, b, c, none;
    peer_open_url(&a, &loop, 0, good);
    peer_open_url(&b, &loop, 0, user);
    peer_open_url(&c, &loop, 0, wrong);
    peer_open_url(&none, &loop, 0, redis_url);
    sub(&b, "ch:auth");
    CHECK(RUN_UNTIL(&loop, a.up && b.up, 3000));
    pub(&a, "ch:auth", "through");
    CHECK(RUN_UNTIL(&loop, got(&b, "ch:auth=through"), 3000));
    /* wrong or no credentials: never up (refused, retried with backoff) */
    RUN_UNTIL(&loop, c.up || none.up, 1500);
    CHECK(!c.up && !none.up && c.ups == 0 && none.ups == 0);
    close_peer(&loop, &a);
    close_peer(&loop, &b);
    close_peer(&loop, &c);
    close_peer(&loop, &none);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    CHECK(admin("s3cr@t", "ACL DELUSER %s", "bus"));
    CHECK(admin("s3cr@t", "CONFIG SET requirepass %s", ""));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    redis_port = 20000 + (int)(getpid() % 20000);
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d", redis_port);
    RUN(test_parse_url);
    redis_start();
    RUN(test_publish_subscribe);
    RUN(test_commands_and_faults);
    RUN(test_credentials);
    redis_stop();
    return UNIT_DONE();
}
