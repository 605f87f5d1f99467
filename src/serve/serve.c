/* `parlor serve`: wires net, http, Socket.IO, chat, REST and the store together under one
 * option table; `parlor token`: prints a token signed with the server's secret. */
#include "serve/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_health.h"
#include "api/api_files.h"
#include "chat/chat.h"
#include "cluster/cluster.h"
#include "core/config.h"
#include "core/log.h"
#include "files/files.h"
#include "http/http_static.h"
#include "webhook/webhook.h"

#include "serve/serve_int.h"

typedef struct {
    serve_config_t cfg;
    uv_loop_t *loop;
    net_loop_t nl;
    http_server_t *http;
    net_listener_t *listener;
    sio_server_t *sio;
    store_t *store;
    chat_t *chat;
    cluster_t *cluster; /* NULL: a single node */
    api_t *api;
    api_health_t *health;
    files_api_t *files;
    http_static_t *web;
    struct files_sweep *sweep;
    auth_jwt_t *jwt;
    webhook_t *webhook; /* NULL: webhooks off */
    uv_signal_t sigint, sigterm;
    uv_timer_t trim;  /* gives freed heap back to the system (see on_trim) */
    uv_timer_t drain; /* a stop waits for the sends in flight (see on_signal) */
    uint64_t drain_until;
    bool stopping;
} server_t;

/* ---- the server ---- */

static int handle_metrics(http_conn_t *hc, const http_request_t *req, str_t body, void *arg)
{
    server_t *s = arg;
    store_stats_t st;
    store_stats(s->store, &st);
    http_server_stats_t hs;
    http_server_stats(s->http, &hs);
    buf_t b;
    buf_init(&b);
    buf_printf(&b,
               "# TYPE parlor_http_buffered_request_bytes gauge\n"
               "parlor_http_buffered_request_bytes %zu\n"
               "# TYPE parlor_http_shed_total counter\nparlor_http_shed_total %llu\n"
               "# TYPE parlor_http_refused_connections_total counter\n"
               "parlor_http_refused_connections_total{reason=\"cap\"} %llu\n"
               "parlor_http_refused_connections_total{reason=\"per_ip\"} %llu\n"
               "# TYPE parlor_outbound_bytes gauge\nparlor_outbound_bytes %zu\n"
               "# TYPE parlor_outbound_cuts_total counter\nparlor_outbound_cuts_total %llu\n",
               hs.buffered, (unsigned long long)hs.shed, (unsigned long long)hs.refused_fds,
               (unsigned long long)hs.refused_ip, s->nl.out_bytes_total,
               (unsigned long long)s->nl.outbound_cuts);
    buf_printf(&b,
               "# TYPE parlor_connections gauge\nparlor_connections %zu\n"
               "# TYPE parlor_engineio_sessions gauge\nparlor_engineio_sessions %zu\n"
               "# TYPE parlor_store_commits_total counter\nparlor_store_commits_total %llu\n"
               "# TYPE parlor_store_writes_total counter\nparlor_store_writes_total %llu\n"
               "# TYPE parlor_store_reads_total counter\nparlor_store_reads_total %llu\n"
               "# TYPE parlor_store_max_batch gauge\nparlor_store_max_batch %llu\n"
               "# TYPE parlor_chat_unread_reads_total counter\n"
               "parlor_chat_unread_reads_total %llu\n",
               s->nl.num_conns, eio_server_num_sessions(sio_server_eio(s->sio)),
               (unsigned long long)st.commits, (unsigned long long)st.writes,
               (unsigned long long)st.reads, (unsigned long long)st.max_batch,
               (unsigned long long)chat_unread_reads(s->chat));
    if (s->cluster) {
        cluster_stats_t cs;
        cluster_stats(s->cluster, &cs);
        buf_printf(&b,
                   "# TYPE parlor_cluster_up gauge\nparlor_cluster_up %d\n"
                   "# TYPE parlor_cluster_published_total counter\n"
                   "parlor_cluster_published_total %llu\n"
                   "# TYPE parlor_cluster_published_bytes_total counter\n"
                   "parlor_cluster_published_bytes_total %llu\n"
                   "# TYPE parlor_cluster_received_total counter\n"
                   "parlor_cluster_received_total %llu\n"
                   "# TYPE parlor_cluster_received_bytes_total counter\n"
                   "parlor_cluster_received_bytes_total %llu\n"
                   "# TYPE parlor_cluster_echoes_total counter\n"
                   "parlor_cluster_echoes_total %llu\n"
                   "# TYPE parlor_cluster_malformed_total counter\n"
                   "parlor_cluster_malformed_total %llu\n"
                   "# TYPE parlor_cluster_catch_ups_total counter\n"
                   "parlor_cluster_catch_ups_total %llu\n",
                   cs.up ? 1 : 0, (unsigned long long)cs.published,
                   (unsigned long long)cs.published_bytes, (unsigned long long)cs.received,
                   (unsigned long long)cs.received_bytes, (unsigned long long)cs.echoes,
                   (unsigned long long)cs.malformed, (unsigned long long)cs.catch_ups);
    }
    if (s->webhook) {
        webhook_stats_t ws;
        webhook_stats(s->webhook, &ws);
        buf_printf(&b,
                   "# TYPE parlor_webhook_pending gauge\nparlor_webhook_pending %lld\n"
                   "# TYPE parlor_webhook_failed gauge\nparlor_webhook_failed %lld\n"
                   "# TYPE parlor_webhook_in_flight gauge\nparlor_webhook_in_flight %zu\n"
                   "# TYPE parlor_webhook_delivered_total counter\n"
                   "parlor_webhook_delivered_total %llu\n"
                   "# TYPE parlor_webhook_failed_total counter\nparlor_webhook_failed_total %llu\n"
                   "# TYPE parlor_webhook_skipped_total counter\n"
                   "parlor_webhook_skipped_total %llu\n"
                   "# TYPE parlor_webhook_attempts_total counter\n"
                   "parlor_webhook_attempts_total %llu\n"
                   "# TYPE parlor_webhook_attempt_errors_total counter\n"
                   "parlor_webhook_attempt_errors_total %llu\n"
                   "# TYPE parlor_webhook_latency_ms histogram\n",
                   (long long)ws.pending, (long long)ws.failed_rows, ws.in_flight,
                   (unsigned long long)ws.delivered, (unsigned long long)ws.failed,
                   (unsigned long long)ws.skipped, (unsigned long long)ws.attempts,
                   (unsigned long long)ws.attempt_errors);
        for (int i = 0; i < 9; i++) {
            if (webhook_latency_le[i])
                buf_printf(&b, "parlor_webhook_latency_ms_bucket{le=\"%lld\"} %llu\n",
                           (long long)webhook_latency_le[i],
                           (unsigned long long)ws.latency_buckets[i]);
            else
                buf_printf(&b, "parlor_webhook_latency_ms_bucket{le=\"+Inf\"} %llu\n",
                           (unsigned long long)ws.latency_buckets[i]);
        }
        buf_printf(&b, "parlor_webhook_latency_ms_sum %.0f\nparlor_webhook_latency_ms_count %llu\n",
                   ws.latency_sum_ms, (unsigned long long)ws.latency_count);
    }
    http_respond(hc, 200, "text/plain; version=0.0.4", NULL, b.data, b.len);
    buf_free(&b);
    return HTTP_DONE;
}

/* ---- orphaned uploads ----
 * An upload is placed under its id, then its row is committed: a crash in between leaves a
 * file no row names, kept forever. At start, before listening, every stored file's id is
 * listed; each is then looked up in the store, one at a time in the background, and removed
 * when it has no row. A file listed before the first accept can never get its row later (no
 * upload was in flight), so the lookups may run while new uploads are placed beside them. */
typedef struct files_sweep {
    store_req_t req;
    char dir[4096];
    store_t *store;
    char (*ids)[ID_SIZE];
    size_t n, cap, next, removed;
    char arena[2048];
} files_sweep_t;

static int sweep_collect(const char *id, void *arg)
{
    files_sweep_t *w = arg;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        char(*ids)[ID_SIZE] = realloc(w->ids, cap * sizeof *ids);
        if (!ids) return -1;
        w->ids = ids;
        w->cap = cap;
    }
    memcpy(w->ids[w->n++], id, ID_SIZE);
    return 0;
}

static void sweep_next(files_sweep_t *w);

static void sweep_checked(store_req_t *req)
{
    files_sweep_t *w = (files_sweep_t *)req;
    const char *id = w->ids[w->next - 1];
    if (req->status == STORE_E_NOT_FOUND) {
        if (files_remove(w->dir, id) == 0) w->removed++;
    } else if (req->status != STORE_OK) {
        w->next = w->n; /* closing, or the store failed: stop, remove nothing more */
    }
    sweep_next(w);
}

static void sweep_next(files_sweep_t *w)
{
    while (w->next < w->n) {
        memset(&w->req, 0, sizeof w->req);
        w->req.op = STORE_OP_FILE_GET;
        w->req.done = sweep_checked;
        w->req.arena.ptr = w->arena;
        w->req.arena.cap = sizeof w->arena;
        w->req.u.file_get.id = str_make(w->ids[w->next], ID_LEN);
        w->next++;
        if (store_submit(w->store, &w->req) == 0) return;
        w->next = w->n;
    }
    if (w->removed)
        log_info("files: removed %zu stored file(s) without a row (of %zu)", w->removed, w->n);
    free(w->ids);
    w->ids = NULL;
    w->n = w->next = 0;
}

/* Lists the stored files (call before listening) and starts the lookups. */
static files_sweep_t *sweep_start(const char *dir, store_t *store)
{
    files_sweep_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    w->store = store;
    if (files_list(dir, sweep_collect, w) < 0) log_warn("files: cannot list %s", dir);
    sweep_next(w);
    return w;
}

/* Raises the soft open-files limit to the hard one and returns the connection cap it allows.
 * An accept that fails with EMFILE only makes libuv accept-and-close (its reserve-fd trick):
 * the client gets an empty reply; a cap below the limit gets it a 503 instead. Each connection
 * is one descriptor; 64 are kept for the store, the listener and logs, and of the rest 1/8
 * (at most 512) for refused connections still writing their 503 (at most min(cap/8, 496) + 16,
 * http_server.c), which leaves a little for uploads and downloads (a file each: past the limit
 * those answer 500, the accept path stays bounded). */
static size_t connection_cap(long long wanted)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return wanted > 0 ? (size_t)wanted : 0;
    rlim_t soft = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = rl;
        up.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
            rl.rlim_cur = rl.rlim_max;
        } else {
            /* An unlimited hard limit is more than the kernel's nr_open: try a large value. */
            up.rlim_cur = rl.rlim_max > 1048576 ? 1048576 : rl.rlim_max;
            if (setrlimit(RLIMIT_NOFILE, &up) == 0) rl.rlim_cur = up.rlim_cur;
        }
    }
    rlim_t lim = rl.rlim_cur > 10000000 ? 10000000 : rl.rlim_cur;
    size_t cap = (size_t)lim / 2;
    if (lim > 256) {
        /* The reserve for refused connections is 1/8, at most CONN_REFUSE_RESERVE (512):
         * a large limit is then nearly all connections (19,424 of 20,000). */
        size_t avail = (size_t)(lim - 64), reserve = avail - avail / 8 * 7;
        cap = avail - (reserve > CONN_REFUSE_RESERVE ? CONN_REFUSE_RESERVE : reserve);
    }
    if (wanted > 0 && (size_t)wanted < cap) cap = (size_t)wanted;
    if (wanted > 0 && (size_t)wanted > cap)
        log_warn("max-connections %lld is more than the open-files limit allows: %zu", wanted, cap);
    log_info("open files: limit %llu (was %llu, hard %llu); at most %zu connections",
             (unsigned long long)rl.rlim_cur, (unsigned long long)soft,
             (unsigned long long)rl.rlim_max, cap);
    return cap;
}

static void close_conn(net_conn_t *c, void *arg)
{
    net_conn_close_after_write(c);
}

/* After a burst of connections or messages the heap holds freed chunks in the middle of
 * its arenas (request contexts, buffers of handshakes in flight, the store threads' own
 * arenas) that stay resident although nothing uses them. Every few seconds, when at least
 * TRIM_MIN_FREE bytes are free, malloc_trim hands whole free pages back (it madvises them
 * away, not only the top of the heap). It walks the heap, so it is not run more often. The
 * per-connection structures live in pools outside the heap (core/slab.h), so the heap is
 * small (about 3 MB with 10,000 connections) and 256 KiB free is worth a walk. */
#define TRIM_EVERY_MS 2000
#define TRIM_MIN_FREE (1 << 18)
static void on_trim(uv_timer_t *t)
{
    (void)t;
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks >= TRIM_MIN_FREE) malloc_trim(0);
}

static void server_stop(server_t *s)
{
    net_listener_close(s->listener);
    sio_server_shutdown(s->sio);
    chat_shutdown(s->chat);
    webhook_stop(s->webhook); /* its last outcomes go in before the store closes */
    /* Everything queued is committed (and answered) before the store stops. */
    store_close(s->store);
    net_foreach_conn(&s->nl, close_conn, NULL);
    sio_server_close(s->sio);
    chat_close(s->chat);
    cluster_close(s->cluster);
    net_loop_close(&s->nl);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->trim, NULL);
    uv_close((uv_handle_t *)&s->drain, NULL);
}

/* A stop first lets the sends in flight finish (at most DRAIN_MAX_MS): their acks reach the
 * clients before the sessions close, and in a cluster their acked positions reach Redis, so a
 * client that reconnects to another node is neither left without an ack (it would send again:
 * one message, a duplicate ack) nor replayed its own message there. New sends are refused
 * meanwhile (chat_drain), so this ends; a store that does not answer ends it at the bound. */
#define DRAIN_MAX_MS  5000
#define DRAIN_POLL_MS 5
static void on_drain(uv_timer_t *t)
{
    server_t *s = t->data;
    if (chat_drain(s->chat) > 0 && uv_now(s->loop) < s->drain_until) return;
    uv_timer_stop(t);
    server_stop(s);
}

static void on_signal(uv_signal_t *h, int signum)
{
    server_t *s = h->data;
    if (s->stopping) return;
    s->stopping = true;
    log_info("signal %d: shutting down", signum);
    if (s->chat && chat_drain(s->chat) > 0) {
        s->drain_until = uv_now(s->loop) + DRAIN_MAX_MS;
        uv_timer_start(&s->drain, on_drain, DRAIN_POLL_MS, DRAIN_POLL_MS);
        return;
    }
    server_stop(s);
}

/* The orderly stop of a server that could not start listening (no signal came). */
static void on_listen_failed(uv_timer_t *t)
{
    server_t *s = t->data;
    uv_close((uv_handle_t *)t, NULL);
    if (s->stopping) return;
    s->stopping = true;
    server_stop(s);
}

static int serve_run(server_t *sp);

int serve_main(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: parlor serve [options]\n\nEvery option is also an environment "
                   "variable.\n\n");
            serve_config_usage();
            return 0;
        }
    server_t s;
    memset(&s, 0, sizeof s);
    char *pos[1];
    int npos;
    if (serve_load_config(argc, argv, &s.cfg, pos, 0, &npos, "serve") < 0) return 2;
    int rc = serve_run(&s);
    serve_config_free(&s.cfg);
    return rc;
}

/* True when host:port cannot be bound because something listens there. Checked before anything
 * is created, so that a server started twice by mistake says so and leaves no trace; the real
 * listener is bound later, once everything behind it is ready. */
static bool port_in_use(const char *host, int port)
{
    if (port == 0) return false;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)
                          : uv_ip4_addr(host, port, (struct sockaddr_in *)&ss))
        return false; /* a bad address is reported by the real bind */
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on); /* as libuv binds */
    socklen_t len =
        ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    bool busy = bind(fd, (struct sockaddr *)&ss, len) < 0 && errno == EADDRINUSE;
    close(fd);
    return busy;
}

/* Runs the server until a signal; 0 after a clean stop, 1 when it could not start. */
static int serve_run(server_t *sp)
{
    server_t s = *sp;
    serve_config_t *cfg = &s.cfg;
    signal(SIGPIPE, SIG_IGN);
    if (port_in_use(cfg->host, (int)cfg->port)) {
        log_error("cannot listen on %s port %lld: the port is in use (another parlor? pick "
                  "another with --port)",
                  cfg->host, cfg->port);
        return 1;
    }
    log_info("parlor starting (data directory %s)", cfg->data);
    if (serve_ensure_dir(cfg->data) < 0) {
        log_error("cannot create data directory %s: %s", cfg->data, strerror(errno));
        return 1;
    }
    /* One server per data directory: a second one would share the database but not the
     * loop's caches (membership, presence, rate limits). */
    char lock_path[4096];
    snprintf(lock_path, sizeof lock_path, "%s/parlor.lock", cfg->data);
    int lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
        log_error("data directory %s is in use by another parlor (%s)", cfg->data,
                  lock_fd < 0 ? strerror(errno) : "locked");
        if (lock_fd >= 0) close(lock_fd);
        return 1;
    }
    bool can_sign;
    if (serve_make_jwt(cfg, true, &s.jwt, &can_sign) < 0) {
        close(lock_fd);
        return 1;
    }

    s.loop = uv_default_loop();
    /* Webhooks: the outbox is on only with a URL, and the store records events from its first
     * connection on (store.h). */
    char *hook_urls[WEBHOOK_URLS_MAX + 1];
    size_t nhooks = 0;
    for (char *p = cfg->webhook_url, *save = NULL, *tok; (tok = strtok_r(p, " \t", &save));
         p = NULL) {
        if (nhooks == WEBHOOK_URLS_MAX) {
            log_error("at most %d --webhook-url", WEBHOOK_URLS_MAX);
            auth_jwt_free(s.jwt);
            close(lock_fd);
            return 1;
        }
        hook_urls[nhooks++] = tok;
    }
    if (nhooks && !cfg->webhook_secret[0]) {
        log_error("--webhook-url needs --webhook-secret (receivers check signatures)");
        auth_jwt_free(s.jwt);
        close(lock_fd);
        return 1;
    }
    if (nhooks) {
        store_outbox_settings_t ob = {.on = true,
                                      .unread_delay_ms = cfg->webhook_unread_delay_s * 1000};
        store_outbox_configure(&ob);
    }
    char path[4096], shown[512], err[256] = "";
    if (cfg->store[0])
        snprintf(path, sizeof path, "%s", cfg->store);
    else
        snprintf(path, sizeof path, "sqlite:%s/parlor.db", cfg->data);
    store_target_redact(path, shown, sizeof shown);
    store_options_t sopts = {.commit_wait_us = (unsigned)cfg->store_commit_wait_us};
    if (store_open_with(s.loop, path, &sopts, &s.store, err, sizeof err) != STORE_OK) {
        log_error("cannot open the store %s: %s", shown, err);
        auth_jwt_free(s.jwt);
        uv_loop_close(s.loop);
        close(lock_fd);
        return 1;
    }
    log_info("store opened: %s", shown);

    net_limits_t limits = {
        .max_inbound = (size_t)cfg->max_payload + 64 * 1024,
        .max_outbound = (size_t)cfg->max_outbound,
        .max_outbound_total = (size_t)cfg->max_outbound_total,
        .send_timeout_ms = (uint64_t)cfg->send_timeout_ms,
        .header_timeout_ms = (uint64_t)cfg->header_timeout_ms,
        .idle_timeout_ms = (uint64_t)cfg->idle_timeout_ms,
    };
    net_loop_init(&s.nl, s.loop, &limits);
    http_server_config_t hcfg = {
        .max_head = 16 * 1024,
        .max_body = (size_t)cfg->max_payload, /* Engine.IO polling POSTs */
        .max_buffered = (size_t)cfg->max_buffered_request_bytes,
        .max_conns = connection_cap(cfg->max_connections),
        .max_conns_per_ip = (size_t)cfg->max_http_connections_per_ip,
    };
    s.http = http_server_new(&s.nl, &hcfg);
    sio_config_t scfg = {
        .eio = {.ping_interval_ms = (uint32_t)cfg->ping_interval_ms,
                .ping_timeout_ms = (uint32_t)cfg->ping_timeout_ms,
                .max_payload = (size_t)cfg->max_payload,
                .cors_origins = cfg->cors_origins,
                .cors_credentials = strcmp(cfg->cors_origins, "*") != 0,
                .allow_eio3 = cfg->allow_eio3 != 0,
                /* A node's sids carry its id, for the load balancer (docs/cluster.md). */
                .sid_prefix = cfg->cluster[0] ? cfg->node_id : NULL},
        .connect_timeout_ms = (uint32_t)cfg->connect_timeout_ms,
    };
    s.sio = sio_server_new(&s.nl, &scfg);
    chat_options_t copts = {
        .max_message_length = (size_t)cfg->max_message_length,
        .rate_messages_per_s = (double)cfg->rate_messages_per_s,
        .rate_messages_burst = (double)cfg->rate_messages_burst,
        .rate_rest_per_s = (double)cfg->rate_rest_per_s,
        .rate_rest_burst = (double)cfg->rate_rest_burst,
        .rate_connections_per_ip = (double)cfg->rate_connections_per_ip,
        .rate_connections_window_s = (double)cfg->rate_connections_window_s,
        .max_connections_per_ip = (uint32_t)cfg->max_connections_per_ip,
        .max_connections_per_user = (uint32_t)cfg->max_connections_per_user,
        .presence_grace_ms = (uint32_t)cfg->presence_grace_ms,
        .typing_throttle_ms = (uint32_t)cfg->typing_throttle_ms,
        .typing_timeout_ms = (uint32_t)cfg->typing_timeout_ms,
        .rate_events_per_s = (double)cfg->rate_events_per_s,
        .rate_events_burst = (double)cfg->rate_events_burst,
        .events_flood_disconnect = (uint32_t)cfg->events_flood_disconnect,
        .recovery_max_messages = (uint64_t)cfg->recovery_max_messages,
        .recovery_max_concurrent = (uint32_t)cfg->recovery_max_concurrent,
        .edit_window_ms = (int64_t)cfg->edit_window_s * 1000,
    };
    s.chat = chat_new(s.loop, s.sio, s.store, s.jwt, &copts);
    api_options_t aopts = {.cors_origins = cfg->cors_origins,
                           .token_ttl_s = cfg->token_ttl_s,
                           .accounts_enabled = cfg->accounts && can_sign,
                           .auth_per_min = (double)cfg->rate_auth_per_min,
                           .max_message_length = (size_t)cfg->max_message_length};
    if (s.chat && cfg->cluster[0]) {
        cluster_options_t clo = {.url = cfg->cluster, .node_id = cfg->node_id};
        char cerr[256] = "";
        s.cluster = cluster_new(s.loop, s.chat, &clo, cerr, sizeof cerr);
        if (!s.cluster) {
            log_error("cannot join the cluster: %s", cerr);
            return 1;
        }
    }
    s.api = api_new(s.loop, s.chat, &aopts);
    s.health = api_health_new(s.store);
    if (!s.http || !s.sio || !s.chat || !s.api || !s.health) {
        log_error("out of memory at start");
        return 1;
    }
    char files_dir[4096], ferr[256] = "";
    if (cfg->files_dir[0])
        snprintf(files_dir, sizeof files_dir, "%s", cfg->files_dir);
    else
        snprintf(files_dir, sizeof files_dir, "%s/files", cfg->data);
    files_api_options_t fopts = {
        .dir = files_dir,
        .max_file_size = (uint64_t)cfg->max_file_size,
        .quota = cfg->max_storage_per_user,
        .allow = cfg->allowed_file_types[0] ? cfg->allowed_file_types : NULL,
        .uploads_per_min = (double)cfg->rate_uploads_per_min,
    };
    s.files = files_api_new(s.loop, s.api, s.store, &fopts, ferr, sizeof ferr);
    if (!s.files) {
        log_error("cannot prepare %s: %s", files_dir, ferr);
        return 1;
    }
    s.sweep = sweep_start(files_dir, s.store);
    if (nhooks) {
        webhook_options_t wo = {.urls = (const char *const *)hook_urls,
                                .nurls = nhooks,
                                .secret = cfg->webhook_secret,
                                .timeout_ms = cfg->webhook_timeout_ms,
                                .retry_base_ms = cfg->webhook_retry_base_ms,
                                .retry_max_ms = cfg->webhook_retry_max_ms,
                                .retry_window_ms = cfg->webhook_retry_window_s * 1000,
                                .concurrency = (unsigned)cfg->webhook_concurrency,
                                .poll_ms = cfg->webhook_poll_ms};
        char werr[256] = "";
        s.webhook = webhook_new(s.loop, s.store, s.chat, &wo, werr, sizeof werr);
        if (!s.webhook) {
            log_error("webhooks: %s", werr);
            return 1;
        }
    }
    eio_server_set_admission(sio_server_eio(s.sio), chat_admit, chat_release, s.chat);
    chat_start(s.chat);
    http_server_route(s.http, "/socket.io/", eio_server_handle, sio_server_eio(s.sio));
    http_server_route_limited(s.http, "/api/", api_handle, s.api, API_SMALL_BODY_MAX, api_head);
    http_server_route_streaming(s.http, "/api/chat/files", files_api_handle, s.files);
    http_server_route_limited(s.http, "/healthz", api_health_handle, s.health, API_SMALL_BODY_MAX,
                              NULL);
    http_server_route_limited(s.http, "/metrics", handle_metrics, &s, API_SMALL_BODY_MAX, NULL);
    if (cfg->web_root[0]) {
        s.web = http_static_new(cfg->web_root);
        if (!s.web) {
            log_error("out of memory loading the web client");
            return 1;
        }
        http_server_route_limited(s.http, "/", http_static_handle, s.web, API_SMALL_BODY_MAX, NULL);
        log_info("web client: %zu files from %s", http_static_count(s.web), cfg->web_root);
    }

    /* Handlers first: a SIGTERM right after "listening" must already stop cleanly. */
    uv_signal_init(s.loop, &s.sigint);
    uv_signal_init(s.loop, &s.sigterm);
    s.sigint.data = s.sigterm.data = &s;
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_timer_init(s.loop, &s.drain);
    s.drain.data = &s;
    uv_timer_init(s.loop, &s.trim);
    uv_timer_start(&s.trim, on_trim, TRIM_EVERY_MS, TRIM_EVERY_MS);
    uv_unref((uv_handle_t *)&s.trim); /* never what keeps the loop running */
    int r = net_listen(&s.nl, cfg->host, (int)cfg->port, http_server_accept, s.http, &s.listener);
    if (r < 0 && !strcmp(cfg->host, "::"))
        r = net_listen(&s.nl, "0.0.0.0", (int)cfg->port, http_server_accept, s.http, &s.listener);
    int status = 0;
    uv_timer_t listen_failed;
    if (r < 0) {
        log_error("cannot listen on %s port %lld: %s", cfg->host, cfg->port,
                  r == UV_EADDRINUSE ? "the port is in use" : uv_strerror(r));
        s.listener = NULL;
        status = 1;
        /* The same orderly stop as a signal, from inside the loop. */
        uv_timer_init(s.loop, &listen_failed);
        listen_failed.data = &s;
        uv_timer_start(&listen_failed, on_listen_failed, 0, 0);
    } else {
        int port = net_listener_port(s.listener);
        log_info("parlor listening on %s port %d", cfg->host, port);
        /* What a person starting it wants to know next (make run). */
        if (s.web && http_static_count(s.web))
            log_info("open http://localhost:%d in a browser", port);
    }

    uv_run(s.loop, UV_RUN_DEFAULT);

    webhook_free(s.webhook);
    files_api_free(s.files);
    if (s.sweep) free(s.sweep->ids);
    free(s.sweep);
    http_static_free(s.web);
    api_free(s.api);
    api_health_free(s.health);
    chat_free(s.chat);
    cluster_free(s.cluster);
    sio_server_free(s.sio);
    http_server_free(s.http);
    auth_jwt_free(s.jwt);
    uv_loop_close(s.loop);
    close(lock_fd);
    if (status == 0) log_info("stopped");
    return status;
}
