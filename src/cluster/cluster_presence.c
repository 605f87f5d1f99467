/* Presence across nodes: see cluster_presence.h and docs/cluster.md "Presence". */
#include "cluster/cluster_presence.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "core/log.h"
#include "core/strmap.h"
#include "store/store.h"

/* How long an offline user's state hash stays (its lastSeen is in the store anyway). */
#define STATE_KEEP_MS "86400000"

/* ARGV[1] is the key prefix "parlor:<db>:" in every script. */
enum { S_JOIN, S_LEAVE, S_BEAT, S_RESET, S_STATUS, S_RATE, S_COUNT };

/* Grace ends and heartbeats are timed by Redis's clock (TIME), so nodes whose clocks differ
 * still agree on them; lastSeen ("t") is the deciding node's clock, as on one node. */
#define NOW "local tm=redis.call('TIME')\nlocal now=tm[1]*1000+math.floor(tm[2]/1000)\n"

static const char *const scripts[S_COUNT] = {
    /* join: ARGV prefix, node, user, now, quiet. 1: the user just came online (announce it).
     * quiet (a node registering again after Redis was away): a state Redis lost is restored
     * without an announcement; only a known offline user is announced. */
    "local p,n,u=ARGV[1],ARGV[2],ARGV[3]\n"
    "redis.call('SADD',p..'on:'..u,n)\n"
    "redis.call('SADD',p..'nu:'..n,u)\n"
    "redis.call('ZREM',p..'grace',u)\n"
    "local st=p..'st:'..u\n"
    "local s=redis.call('HGET',st,'s')\n"
    "if s=='1' then return 0 end\n"
    "redis.call('HSET',st,'s','1','t',ARGV[4])\n"
    "redis.call('PERSIST',st)\n"
    "if ARGV[5]=='1' and not s then return 0 end\n"
    "return 1\n",
    /* leave: ARGV prefix, node, user, grace (ms), resync. 1: no node has the user any more.
     * resync (the user left while Redis was away, which may have lost its state): a missing
     * state is taken as online, so that the grace's end announces the user offline. */
    NOW "local p,n,u=ARGV[1],ARGV[2],ARGV[3]\n"
        "redis.call('SREM',p..'on:'..u,n)\n"
        "redis.call('SREM',p..'nu:'..n,u)\n"
        "local st=p..'st:'..u\n"
        "if ARGV[5]=='1' and not redis.call('HGET',st,'s') then\n"
        "  redis.call('HSET',st,'s','1','t',now)\n"
        "end\n"
        "if redis.call('SCARD',p..'on:'..u)>0 then return 0 end\n"
        "redis.call('ZADD',p..'grace',now+tonumber(ARGV[4]),u)\n"
        "return 1\n",
    /* beat: ARGV prefix, node, ttl, now (ms, this node's clock: lastSeen), grace. Reaps dead
     * nodes; returns {reaped, whether our own heartbeat was still there, users to announce
     * offline...}. */
    NOW "local p,n,grace=ARGV[1],ARGV[2],tonumber(ARGV[5])\n"
        "local alive=redis.call('EXISTS',p..'node:'..n)\n"
        "redis.call('SET',p..'node:'..n,'1','PX',ARGV[3])\n"
        "redis.call('SADD',p..'nodes',n)\n"
        "local reaped=0\n"
        "for _,d in ipairs(redis.call('SMEMBERS',p..'nodes')) do\n"
        "  if d~=n and redis.call('EXISTS',p..'node:'..d)==0 then\n"
        "    for _,u in ipairs(redis.call('SMEMBERS',p..'nu:'..d)) do\n"
        "      redis.call('SREM',p..'on:'..u,d)\n"
        "      if redis.call('SCARD',p..'on:'..u)==0 then\n"
        "        redis.call('ZADD',p..'grace',now+grace,u)\n"
        "        reaped=reaped+1\n"
        "      end\n"
        "    end\n"
        "    redis.call('DEL',p..'nu:'..d)\n"
        "    redis.call('SREM',p..'nodes',d)\n"
        "  end\n"
        "end\n"
        "local out={reaped,alive}\n"
        "for _,u in ipairs(redis.call('ZRANGEBYSCORE',p..'grace','-inf',now,'LIMIT',0,1000)) do\n"
        "  redis.call('ZREM',p..'grace',u)\n"
        "  local st=p..'st:'..u\n"
        "  if redis.call('SCARD',p..'on:'..u)==0 and redis.call('HGET',st,'s')=='1' then\n"
        "    redis.call('HSET',st,'s','0','t',ARGV[4])\n"
        "    redis.call('PEXPIRE',st," STATE_KEEP_MS ")\n"
        "    out[#out+1]=u\n"
        "  end\n"
        "end\n"
        "return out\n",
    /* reset: ARGV prefix, node, grace. This node's registrations are dropped (its users with
     * no other node enter the grace set; those still here are joined again after). */
    NOW "local p,n=ARGV[1],ARGV[2]\n"
        "for _,u in ipairs(redis.call('SMEMBERS',p..'nu:'..n)) do\n"
        "  redis.call('SREM',p..'on:'..u,n)\n"
        "  if redis.call('SCARD',p..'on:'..u)==0 then\n"
        "    redis.call('ZADD',p..'grace',now+tonumber(ARGV[3]),u)\n"
        "  end\n"
        "end\n"
        "redis.call('DEL',p..'nu:'..n)\n"
        "return 0\n",
    /* status: ARGV prefix, users...: {s, t} per user ('' when unknown). */
    "local p=ARGV[1]\n"
    "local out={}\n"
    "for i=2,#ARGV do\n"
    "  local v=redis.call('HMGET',p..'st:'..ARGV[i],'s','t')\n"
    "  out[#out+1]=v[1] or ''\n"
    "  out[#out+1]=v[2] or ''\n"
    "end\n"
    "return out\n",
    /* rate: ARGV prefix, user: {the messages the user's nodes admitted in this second (of
     * Redis's clock) with this one, the second}. */
    "local tm=redis.call('TIME')\n"
    "local k=ARGV[1]..'rl:'..ARGV[2]..':'..tm[1]\n"
    "local c=redis.call('INCR',k)\n"
    "if c==1 then redis.call('PEXPIRE',k,5000) end\n"
    "return {c,tonumber(tm[1])}\n",
};

/* What this node knows of a user's messages in the current second (cluster rate limits). */
typedef struct {
    int64_t sec;     /* the second (of Redis's clock) counted */
    int64_t mine;    /* of our INCRs in it, those answered */
    int64_t remote;  /* admitted by other nodes in it, as far as drained here */
    int64_t pending; /* our INCRs not answered yet (the entry stays while any) */
} rate_t;

struct cpres {
    chat_t *chat;
    redis_bus_t *bus;
    uv_timer_t beat;
    char prefix[32]; /* "parlor:<db>:" */
    char node[65];
    char sha[S_COUNT][41];
    strmap_t rates;      /* user -> rate_t */
    strmap_t came, left; /* users whose first socket came / last one left while Redis was away */
    /* Users whose last socket here left (LEAVE sent) and whose grace may not have been ended by
     * a beat yet: user -> the loop time (ms) after which a beat ends it. A Redis that restarts
     * forgets the grace set: these are then left again (resync) when it is back. */
    strmap_t recent;
    uint64_t beat_sent; /* loop time of the last beat sent */
    uint64_t beats;     /* answered since the bus came up */
    bool up;            /* the bus is up and the scripts are loaded */
    bool closed;        /* detached: replies are only freed */
    cpres_stats_t st;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* EVALSHA of script s with ARGV prefix, then args. */
#define ARGS_MAX (STORE_IDS_MAX + 4)
static int run(cpres_t *p, int s, redis_bus_reply_fn cb, void *arg, int nargs, const char **args,
               const size_t *lens)
{
    if (!p->up || p->closed || nargs + 4 > ARGS_MAX) return -1;
    const char *argv[ARGS_MAX];
    size_t argl[ARGS_MAX];
    argv[0] = "EVALSHA";
    argv[1] = p->sha[s];
    argv[2] = "0";
    argv[3] = p->prefix;
    for (int i = 0; i < 4; i++) argl[i] = strlen(argv[i]);
    for (int i = 0; i < nargs; i++) {
        argv[4 + i] = args[i];
        argl[4 + i] = lens ? lens[i] : strlen(args[i]);
    }
    if (redis_bus_command(p->bus, cb, arg, 4 + nargs, argv, argl) != 0) return -1;
    p->st.commands++;
    return 0;
}

/* A script failed: most likely its SHA is unknown (Redis restarted between our SCRIPT LOADs
 * and this call, or SCRIPT FLUSH); the next beat loads them again and re-registers. */
static void script_failed(cpres_t *p, const redisReply *r)
{
    log_warn_throttled("cluster: a presence script failed: %.*s",
                       r && r->type == REDIS_REPLY_ERROR ? (int)r->len : 4,
                       r && r->type == REDIS_REPLY_ERROR ? r->str : "none");
    if (r && !p->closed) p->up = false;
}

/* ---- join / leave ---- */

typedef struct {
    cpres_t *p;
    uint64_t sid;
    int64_t at;
    bool local; /* a change here (not a resync): remembered when the command is lost */
    char user[STORE_USER_ID_MAX + 1];
} user_ctx_t;

/* A change Redis could not be told of (it is away): kept until it is back (start). A user who
 * came is joined loudly then (announced unless Redis says it is online); one who came and went
 * again meanwhile was never announced, and needs nothing. */
#define AWAY_MAX        100000
#define RECENT_SLACK_MS 250 /* the LEAVE's and the beat's trips to Redis */
static void remember(cpres_t *p, const char *user, bool on)
{
    if (on) {
        strmap_remove(&p->left, user);
        if (p->came.count < AWAY_MAX) strmap_set(&p->came, user, (void *)1);
    } else if (!strmap_remove(&p->came, user) && p->left.count < AWAY_MAX) {
        strmap_set(&p->left, user, (void *)1);
    }
}

static void ignore_done(void *arg, redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR) script_failed(arg, r);
}

static void join_done(void *arg, redisReply *r)
{
    user_ctx_t *x = arg;
    cpres_t *p = x->p;
    if (r && r->type == REDIS_REPLY_INTEGER) {
        if (r->integer == 1 && !p->closed) {
            p->st.announced_online++;
            chat_presence_announce(p->chat, x->user, true, x->at, x->sid);
        }
    } else if (r) {
        script_failed(p, r);
    } else if (x->local && !p->closed) {
        remember(p, x->user, true); /* the connection dropped before the answer */
    }
    free(x);
}

static void leave_done(void *arg, redisReply *r)
{
    user_ctx_t *x = arg;
    if (r && r->type == REDIS_REPLY_ERROR)
        script_failed(x->p, r);
    else if (!r && !x->p->closed)
        remember(x->p, x->user, false); /* the connection dropped before the answer */
    free(x);
}

static int join(cpres_t *p, const char *user, uint64_t sid, bool quiet)
{
    user_ctx_t *x = calloc(1, sizeof *x);
    if (!x) return -1;
    x->p = p;
    x->sid = sid;
    x->local = !quiet;
    x->at = now_ms();
    snprintf(x->user, sizeof x->user, "%s", user);
    char at[24];
    snprintf(at, sizeof at, "%lld", (long long)x->at);
    const char *args[4] = {p->node, x->user, at, quiet ? "1" : "0"};
    if (run(p, S_JOIN, join_done, x, 4, args, NULL) == 0) return 0;
    free(x);
    return -1;
}

static int leave(cpres_t *p, const char *user, bool resync)
{
    user_ctx_t *x = calloc(1, sizeof *x);
    if (!x) return -1;
    x->p = p;
    snprintf(x->user, sizeof x->user, "%s", user);
    char grace[16];
    snprintf(grace, sizeof grace, "%u", chat_presence_grace_ms(p->chat));
    const char *args[4] = {p->node, x->user, grace, resync ? "1" : "0"};
    if (run(p, S_LEAVE, leave_done, x, 4, args, NULL) == 0) return 0;
    free(x);
    return -1;
}

static void on_local(void *ud, const char *user, bool on, uint64_t sid)
{
    cpres_t *p = ud;
    if (p->closed) return;
    int rc = on ? join(p, user, sid, false) : leave(p, user, false);
    if (rc != 0) {
        remember(p, user, on);
    } else if (on) {
        free(strmap_remove(&p->recent, user));
    } else if (p->recent.count < AWAY_MAX) {
        uint64_t *until = malloc(sizeof *until);
        if (until) {
            *until = uv_now(p->beat.loop) + chat_presence_grace_ms(p->chat) + RECENT_SLACK_MS;
            free(strmap_remove(&p->recent, user));
            if (strmap_set(&p->recent, user, until) < 0) free(until);
        }
    }
}

/* ---- get_status ---- */

typedef struct {
    cpres_t *p;
    size_t n;
    chat_status_done_fn done;
    void *arg;
} query_ctx_t;

static int64_t reply_int(const redisReply *e)
{
    if (e->type == REDIS_REPLY_INTEGER) return e->integer;
    if (e->type == REDIS_REPLY_STRING && e->len > 0 && e->len < 24) {
        char b[24];
        memcpy(b, e->str, e->len);
        b[e->len] = '\0';
        return strtoll(b, NULL, 10);
    }
    return 0;
}

static void query_done(void *arg, redisReply *r)
{
    query_ctx_t *x = arg;
    int8_t state[STORE_IDS_MAX];
    int64_t since[STORE_IDS_MAX];
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 * x->n;
    for (size_t i = 0; ok && i < x->n; i++) {
        const redisReply *s = r->element[2 * i], *t = r->element[2 * i + 1];
        if (s->type != REDIS_REPLY_STRING || s->len == 0)
            state[i] = -1;
        else
            state[i] = s->str[0] == '1' ? 1 : 0;
        since[i] = reply_int(t);
    }
    if (r && !ok) script_failed(x->p, r);
    x->done(x->arg, ok ? state : NULL, ok ? since : NULL);
    free(x);
}

static int on_query(void *ud, const str_t *users, size_t n, chat_status_done_fn done, void *arg)
{
    cpres_t *p = ud;
    if (n > STORE_IDS_MAX) return -1;
    query_ctx_t *x = calloc(1, sizeof *x);
    if (!x) return -1;
    *x = (query_ctx_t){.p = p, .n = n, .done = done, .arg = arg};
    const char *args[STORE_IDS_MAX];
    size_t lens[STORE_IDS_MAX];
    for (size_t i = 0; i < n; i++) {
        args[i] = users[i].ptr;
        lens[i] = users[i].len;
    }
    if (run(p, S_STATUS, query_done, x, (int)n, args, lens) != 0) {
        free(x);
        return -1;
    }
    return 0;
}

/* ---- rate limits ---- */

typedef struct {
    cpres_t *p;
    char user[STORE_USER_ID_MAX + 1];
} rate_ctx_t;

static void rate_done(void *arg, redisReply *r)
{
    rate_ctx_t *x = arg;
    cpres_t *p = x->p;
    rate_t *st = p->closed ? NULL : strmap_get(&p->rates, x->user);
    if (st && st->pending) st->pending--;
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2;
    int64_t sec = ok ? reply_int(r->element[1]) : 0;
    if (st && ok && sec >= st->sec) {
        if (sec > st->sec) *st = (rate_t){.sec = sec, .pending = st->pending};
        /* Replies come in order: the count includes exactly our INCRs answered so far. */
        st->mine++;
        int64_t remote = reply_int(r->element[0]) - st->mine;
        if (remote > st->remote) {
            chat_limit_drain(p->chat, x->user, (double)(remote - st->remote));
            st->remote = remote;
        }
    } else if (r && !ok) {
        script_failed(p, r);
    }
    free(x);
}

static void on_taken(void *ud, const char *user)
{
    cpres_t *p = ud;
    if (p->closed || !p->up || strlen(user) > STORE_USER_ID_MAX) return;
    rate_t *st = strmap_get(&p->rates, user);
    if (!st) {
        if (!(st = calloc(1, sizeof *st))) return;
        if (strmap_set(&p->rates, user, st) < 0) {
            free(st);
            return;
        }
    }
    rate_ctx_t *x = malloc(sizeof *x);
    if (!x) return;
    x->p = p;
    snprintf(x->user, sizeof x->user, "%s", user);
    const char *args[1] = {x->user};
    if (run(p, S_RATE, rate_done, x, 1, args, NULL) != 0) {
        free(x);
        return;
    }
    st->pending++;
}

static int rate_idle(const char *key, void *value, void *arg)
{
    (void)key;
    rate_t *st = value;
    if (st->pending || st->sec >= *(int64_t *)arg) return 0;
    free(st);
    return 1;
}

/* ---- the heartbeat ---- */

static void rejoin(void *arg, const char *user);

static int recent_over(const char *user, void *value, void *arg)
{
    (void)user;
    if (*(uint64_t *)value > *(uint64_t *)arg) return 0;
    free(value);
    return 1;
}

/* Redis went away: whoever left recently may have had its grace forgotten. */
static int recent_away(const char *user, void *value, void *arg)
{
    remember(arg, user, false);
    free(value);
    return 1;
}

static void beat_done(void *arg, redisReply *r)
{
    cpres_t *p = arg;
    if (!r || p->closed) return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        script_failed(p, r);
        return;
    }
    p->st.reaped += (uint64_t)reply_int(r->element[0]);
    strmap_sweep(&p->recent, recent_over, &p->beat_sent); /* their grace is over in Redis */
    if (reply_int(r->element[1]) == 0 && p->beats++ > 0) {
        /* Our heartbeat had expired (Redis stalled, or we did): other nodes may have reaped
         * us. Register whoever is here again (a join is idempotent). */
        log_warn("cluster: this node's heartbeat had expired; registering its users again");
        chat_presence_each(p->chat, rejoin, p);
    }
    int64_t now = now_ms();
    for (size_t i = 2; i < r->elements; i++) {
        const redisReply *u = r->element[i];
        if (u->type != REDIS_REPLY_STRING || u->len == 0 || u->len > STORE_USER_ID_MAX) continue;
        char user[STORE_USER_ID_MAX + 1];
        memcpy(user, u->str, u->len);
        user[u->len] = '\0';
        p->st.announced_offline++;
        chat_presence_announce(p->chat, user, false, now, 0);
    }
}

static void rejoin(void *arg, const char *user)
{
    cpres_t *p = arg;
    /* Quiet unless it came while Redis was away (then it was never announced). */
    join(p, user, 0, strmap_get(&p->came, user) == NULL);
}

static int left_again(const char *user, void *value, void *arg)
{
    (void)value;
    return leave(arg, user, true) == 0; /* kept for the next time when not sent */
}

static int forget(const char *user, void *value, void *arg)
{
    (void)user, (void)value, (void)arg;
    return 1;
}

static void load_done(void *arg, redisReply *r)
{
    (void)arg;
    if (r && r->type == REDIS_REPLY_ERROR)
        log_warn("cluster: SCRIPT LOAD failed: %.*s", (int)r->len, r->str);
}

/* The bus is (back) up: load the scripts (a restarted Redis has forgotten them), drop this
 * node's old registrations and register the users here now. All on one connection, in
 * order. */
static void start(cpres_t *p)
{
    for (int s = 0; s < S_COUNT; s++) {
        const char *argv[3] = {"SCRIPT", "LOAD", scripts[s]};
        size_t argl[3] = {6, 4, strlen(scripts[s])};
        if (redis_bus_command(p->bus, load_done, p, 3, argv, argl) != 0) return;
        p->st.commands++;
    }
    p->up = true;
    char grace[16];
    snprintf(grace, sizeof grace, "%u", chat_presence_grace_ms(p->chat));
    const char *args[2] = {p->node, grace};
    run(p, S_RESET, ignore_done, p, 2, args, NULL);
    chat_presence_each(p->chat, rejoin, p);
    strmap_sweep(&p->left, left_again, p);
    strmap_sweep(&p->came, forget, NULL);
}

static void on_beat(uv_timer_t *t)
{
    cpres_t *p = t->data;
    if (p->closed) return;
    int64_t old = now_ms() / 1000 - 5; /* Redis's seconds: allow for a clock difference */
    strmap_sweep(&p->rates, rate_idle, &old);
    if (!redis_bus_up(p->bus)) return;
    if (!p->up) start(p); /* a script failed: load them again */
    char ttl[16], now[24], grace[16];
    snprintf(ttl, sizeof ttl, "%d", CPRES_TTL_MS);
    snprintf(now, sizeof now, "%lld", (long long)now_ms());
    snprintf(grace, sizeof grace, "%u", chat_presence_grace_ms(p->chat));
    const char *args[4] = {p->node, ttl, now, grace};
    p->beat_sent = uv_now(p->beat.loop);
    run(p, S_BEAT, beat_done, p, 4, args, NULL);
}

void cpres_state(cpres_t *p, bool up)
{
    if (p->closed) return;
    p->up = false;
    p->beats = 0;
    strmap_sweep(&p->recent, recent_away, p);
    if (up) {
        start(p);
        on_beat(&p->beat);
    }
}

cpres_t *cpres_new(uv_loop_t *loop, chat_t *chat, redis_bus_t *bus, int db, const char *node_id)
{
    cpres_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (strmap_init(&p->rates) < 0 || strmap_init(&p->came) < 0 || strmap_init(&p->left) < 0 ||
        strmap_init(&p->recent) < 0) {
        strmap_free(&p->rates, NULL);
        strmap_free(&p->came, NULL);
        strmap_free(&p->left, NULL);
        strmap_free(&p->recent, NULL);
        free(p);
        return NULL;
    }
    p->chat = chat;
    p->bus = bus;
    snprintf(p->prefix, sizeof p->prefix, "parlor:%d:", db);
    snprintf(p->node, sizeof p->node, "%s", node_id);
    for (int s = 0; s < S_COUNT; s++) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        EVP_Digest(scripts[s], strlen(scripts[s]), md, &mdlen, EVP_sha1(), NULL);
        for (unsigned i = 0; i < mdlen && i < 20; i++)
            snprintf(p->sha[s] + 2 * i, 3, "%02x", md[i]);
    }
    uv_timer_init(loop, &p->beat);
    p->beat.data = p;
    uv_timer_start(&p->beat, on_beat, CPRES_HEARTBEAT_MS, CPRES_HEARTBEAT_MS);
    uv_unref((uv_handle_t *)&p->beat);
    chat_presence_hooks_t h = {.local = on_local, .query = on_query};
    chat_set_presence(chat, &h, p);
    chat_set_limit(chat, on_taken, p);
    return p;
}

void cpres_close(cpres_t *p)
{
    if (!p || p->closed) return;
    p->closed = true;
    chat_set_presence(p->chat, NULL, NULL);
    chat_set_limit(p->chat, NULL, NULL);
    uv_close((uv_handle_t *)&p->beat, NULL);
}

void cpres_free(cpres_t *p)
{
    if (!p) return;
    strmap_free(&p->rates, free);
    strmap_free(&p->came, NULL);
    strmap_free(&p->left, NULL);
    strmap_free(&p->recent, free);
    free(p);
}

void cpres_stats(const cpres_t *p, cpres_stats_t *out)
{
    *out = p->st;
}
