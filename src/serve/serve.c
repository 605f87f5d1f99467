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
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_files.h"
#include "chat/chat.h"
#include "core/config.h"
#include "core/log.h"
#include "files/files.h"
#include "http/http_static.h"

typedef struct {
    long long port;
    char *host;
    char *data;
    char *jwt_secret;
    char *jwt_public_key;
    char *jwt_issuer;
    char *jwt_audience;
    long long jwt_leeway_s;
    long long token_ttl_s;
    long long max_message_length;
    char *cors_origins;
    char *log_level;
    long long ping_interval_ms;
    long long ping_timeout_ms;
    long long connect_timeout_ms;
    long long max_payload;
    long long max_outbound;
    long long max_outbound_total;
    long long send_timeout_ms;
    long long header_timeout_ms;
    long long idle_timeout_ms;
    int accounts;
    long long rate_messages_per_s, rate_messages_burst;
    long long rate_rest_per_s, rate_rest_burst;
    long long rate_connections_per_ip, rate_connections_window_s;
    long long max_connections_per_ip, max_connections_per_user;
    long long presence_grace_ms, typing_throttle_ms, typing_timeout_ms;
    long long max_file_size, max_storage_per_user, rate_uploads_per_min;
    char *allowed_file_types;
    char *web_root;
    long long rate_auth_per_min;
    long long max_buffered_request_bytes;
    long long max_http_connections_per_ip;
    long long max_connections;
} serve_config_t;

#define OFF(f) offsetof(serve_config_t, f)
static const config_option_t serve_options[] = {
    {"port", OPT_INT, OFF(port), "5000", 0, 65535, "TCP port to listen on (0: any free port)"},
    {"host", OPT_STRING, OFF(host), "::", 0, 0, "address to listen on (:: = all, IPv6 and IPv4)"},
    {"data", OPT_STRING, OFF(data), "./data", 0, 0,
     "data directory (SQLite database, generated secret, uploads)"},
    {"jwt-secret", OPT_STRING, OFF(jwt_secret), "", 0, 0,
     "HS256 shared secret (>= 32 bytes); when neither this nor a public key is set, one is "
     "generated into <data>/jwt-secret"},
    {"jwt-public-key", OPT_STRING, OFF(jwt_public_key), "", 0, 0,
     "PEM file with an RSA (RS256) or P-256 (ES256) public key: verify tokens your platform "
     "issues"},
    {"jwt-issuer", OPT_STRING, OFF(jwt_issuer), "", 0, 0,
     "required iss claim (empty: not checked)"},
    {"jwt-audience", OPT_STRING, OFF(jwt_audience), "", 0, 0,
     "required aud claim (empty: not checked)"},
    {"jwt-leeway-s", OPT_INT, OFF(jwt_leeway_s), "30", 0, 3600, "clock skew allowed on exp/nbf"},
    {"token-ttl-s", OPT_INT, OFF(token_ttl_s), "604800", 60, 31536000,
     "lifetime of tokens issued by /api/auth/register and /login"},
    {"accounts", OPT_BOOL, OFF(accounts), "true", 0, 0,
     "standalone accounts (/api/auth/register, /login); needs an HS256 secret"},
    {"max-message-length", OPT_INT, OFF(max_message_length), "4000", 1, 60000,
     "longest message content, in characters"},
    {"cors-origins", OPT_STRING, OFF(cors_origins), "", 0, 0,
     "origins allowed to use the Socket.IO endpoint from a browser: '*' or a comma-separated "
     "list (empty: same origin only)"},
    {"log-level", OPT_STRING, OFF(log_level), "info", 0, 0, "debug, info, warn, error or off"},
    {"ping-interval-ms", OPT_INT, OFF(ping_interval_ms), "25000", 100, 3600000,
     "Engine.IO pingInterval"},
    {"ping-timeout-ms", OPT_INT, OFF(ping_timeout_ms), "20000", 100, 3600000,
     "Engine.IO pingTimeout"},
    {"connect-timeout-ms", OPT_INT, OFF(connect_timeout_ms), "45000", 100, 3600000,
     "time a client has to join the namespace after the handshake"},
    {"max-payload", OPT_INT, OFF(max_payload), "1000000", 4096, 100000000,
     "Engine.IO maxPayload (and the body limit of Engine.IO polling POSTs), in bytes"},
    {"max-outbound-bytes", OPT_INT, OFF(max_outbound), "8388608", 4096, 1LL << 32,
     "unsent bytes per connection before it is cut as a slow reader (a polling session's "
     "queue too)"},
    {"header-timeout-ms", OPT_INT, OFF(header_timeout_ms), "10000", 0, 3600000,
     "time to send a complete HTTP request (0: none)"},
    {"idle-timeout-ms", OPT_INT, OFF(idle_timeout_ms), "120000", 0, 3600000,
     "idle keep-alive HTTP connections are closed after this (0: never)"},
    {"rate-messages-per-s", OPT_INT, OFF(rate_messages_per_s), "10", 0, 1000000,
     "messages per user per second, socket and REST together (0: no limit)"},
    {"rate-messages-burst", OPT_INT, OFF(rate_messages_burst), "30", 1, 1000000,
     "messages a user may send at once before the per-second rate applies"},
    {"rate-rest-per-s", OPT_INT, OFF(rate_rest_per_s), "20", 0, 1000000,
     "REST requests per user per second (0: no limit)"},
    {"rate-rest-burst", OPT_INT, OFF(rate_rest_burst), "60", 1, 1000000,
     "REST requests a user may make at once"},
    {"rate-connections-per-ip", OPT_INT, OFF(rate_connections_per_ip), "120", 0, 10000000,
     "new Socket.IO connections per IP address per window (0: no limit)"},
    {"rate-connections-window-s", OPT_INT, OFF(rate_connections_window_s), "60", 1, 86400,
     "the window of rate-connections-per-ip, in seconds"},
    {"max-connections-per-ip", OPT_INT, OFF(max_connections_per_ip), "500", 0, 10000000,
     "concurrent Socket.IO connections per IP address (0: no limit)"},
    {"max-connections-per-user", OPT_INT, OFF(max_connections_per_user), "20", 0, 10000000,
     "concurrent sockets per user (0: no limit)"},
    {"presence-grace-ms", OPT_INT, OFF(presence_grace_ms), "5000", 0, 3600000,
     "a user goes offline only after the last socket has been gone this long"},
    {"typing-throttle-ms", OPT_INT, OFF(typing_throttle_ms), "2000", 0, 60000,
     "at most one isTyping:true relay per user and conversation in this time"},
    {"typing-timeout-ms", OPT_INT, OFF(typing_timeout_ms), "6000", 100, 600000,
     "a typing state without renewal expires (relayed as isTyping:false) after this"},
    {"max-file-size", OPT_INT, OFF(max_file_size), "10485760", 1, 1LL << 34,
     "largest upload in bytes (one more is refused with 413)"},
    {"max-storage-per-user", OPT_INT, OFF(max_storage_per_user), "104857600", 0, 1LL << 40,
     "bytes of uploads a user may keep (0: no quota)"},
    {"rate-uploads-per-min", OPT_INT, OFF(rate_uploads_per_min), "30", 0, 100000,
     "uploads per user per minute (0: no limit)"},
    {"allowed-file-types", OPT_STRING, OFF(allowed_file_types), "", 0, 0,
     "comma-separated MIME types accepted for uploads, decided from the content (empty: "
     "JPEG, PNG, GIF, WebP, PDF, plain text, CSV and the common office formats)"},
    {"rate-auth-per-min", OPT_INT, OFF(rate_auth_per_min), "30", 0, 100000,
     "register/login attempts per IP address per minute (0: no limit)"},
    {"web-root", OPT_STRING, OFF(web_root), "web/dist", 0, 0,
     "the built web client served at / (empty: serve no web client)"},
    {"send-timeout-ms", OPT_INT, OFF(send_timeout_ms), "60000", 0, 3600000,
     "a connection whose peer takes none of the queued output for this long is cut (0: never)"},
    {"max-outbound-total-bytes", OPT_INT, OFF(max_outbound_total), "536870912", 0, 1LL << 40,
     "unsent bytes queued on all connections together; past it, a connection holding more "
     "than 256 KiB of them is cut when it queues more (0: no limit)"},
    {"max-buffered-request-bytes", OPT_INT, OFF(max_buffered_request_bytes), "67108864", 0,
     1LL << 40,
     "request bytes held at once by the whole server while requests arrive (Engine.IO polling "
     "POSTs, REST bodies, partial heads); a read past it is refused with 503 and its "
     "connection closed (0: no budget)"},
    {"max-http-connections-per-ip", OPT_INT, OFF(max_http_connections_per_ip), "500", 0, 10000000,
     "concurrent TCP connections speaking HTTP from one IP address (a WebSocket leaves this "
     "count when it upgrades); past it a new connection gets 503 and is closed (0: no limit)"},
    {"max-connections", OPT_INT, OFF(max_connections), "0", 0, 10000000,
     "concurrent TCP connections; past it a new connection gets 503 and is closed (0: from the "
     "open-files limit, see docs/api.md; a larger value is lowered to that)"},
};
#define NOPTS (sizeof serve_options / sizeof serve_options[0])

typedef struct {
    serve_config_t cfg;
    uv_loop_t *loop;
    net_loop_t nl;
    http_server_t *http;
    net_listener_t *listener;
    sio_server_t *sio;
    store_t *store;
    chat_t *chat;
    api_t *api;
    files_api_t *files;
    http_static_t *web;
    struct files_sweep *sweep;
    auth_jwt_t *jwt;
    uv_signal_t sigint, sigterm;
    uv_timer_t trim; /* gives freed heap back to the system (see on_trim) */
    bool stopping;
} server_t;

/* ---- secrets and keys ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(65536);
    size_t n = buf ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    if (!buf) return NULL;
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int ensure_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST) return 0;
    return -1;
}

/* The HS256 secret: configured, or <data>/jwt-secret, generated (0600) when missing. */
static char *load_or_create_secret(const char *data, bool *generated)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/jwt-secret", data);
    size_t len;
    char *s = read_file(path, &len);
    *generated = false;
    if (s) {
        while (len && (s[len - 1] == '\n' || s[len - 1] == '\r')) s[--len] = '\0';
        return s;
    }
    uint8_t rnd[32];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return NULL;
    s = malloc(65);
    for (int i = 0; i < 32; i++) snprintf(s + 2 * i, 3, "%02x", rnd[i]);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        free(s);
        return NULL;
    }
    bool ok = write(fd, s, 64) == 64 && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    close(fd);
    if (!ok) {
        free(s);
        return NULL;
    }
    *generated = true;
    return s;
}

/* Builds the verifier from the options. */
static int make_jwt(serve_config_t *cfg, auth_jwt_t **out, bool *can_sign)
{
    auth_jwt_config_t jc = {0};
    char err[256] = "";
    char *key = NULL;
    size_t key_len = 0;
    bool generated = false;
    *can_sign = false;
    jc.issuer = cfg->jwt_issuer;
    jc.audience = cfg->jwt_audience;
    jc.leeway_s = (int)cfg->jwt_leeway_s;
    if (cfg->jwt_public_key[0]) {
        key = read_file(cfg->jwt_public_key, &key_len);
        if (!key) {
            log_error("cannot read jwt-public-key %s: %s", cfg->jwt_public_key, strerror(errno));
            return -1;
        }
        BIO *bio = BIO_new_mem_buf(key, (int)key_len);
        EVP_PKEY *pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        int type = pk ? EVP_PKEY_base_id(pk) : 0;
        EVP_PKEY_free(pk);
        BIO_free(bio);
        jc.alg = type == EVP_PKEY_RSA ? "RS256" : type == EVP_PKEY_EC ? "ES256" : NULL;
        if (!jc.alg) {
            log_error("jwt-public-key %s: not an RSA or EC public key in PEM", cfg->jwt_public_key);
            free(key);
            return -1;
        }
    } else {
        jc.alg = "HS256";
        if (cfg->jwt_secret[0]) {
            key = strdup(cfg->jwt_secret);
        } else {
            if (ensure_dir(cfg->data) < 0) {
                log_error("cannot create data directory %s: %s", cfg->data, strerror(errno));
                return -1;
            }
            key = load_or_create_secret(cfg->data, &generated);
            if (!key) {
                log_error("cannot read or create %s/jwt-secret: %s", cfg->data, strerror(errno));
                return -1;
            }
        }
        key_len = strlen(key);
        *can_sign = true;
    }
    jc.key = (const unsigned char *)key;
    jc.key_len = key_len;
    int rc = auth_jwt_new(&jc, out, err, sizeof err);
    free(key);
    if (rc != AUTH_OK) {
        log_error("JWT configuration: %s", err);
        return -1;
    }
    if (generated) log_info("generated a JWT secret in %s/jwt-secret (mode 0600)", cfg->data);
    log_info("tokens: %s%s%s", jc.alg, cfg->jwt_issuer[0] ? ", issuer checked" : "",
             cfg->jwt_audience[0] ? ", audience checked" : "");
    return 0;
}

static int load_config(int argc, char **argv, serve_config_t *cfg, char **pos, int maxpos,
                       int *npos, const char *cmd)
{
    char err[512];
    if (config_load(serve_options, NOPTS, cfg, argc, argv, pos, maxpos, npos, err, sizeof err) <
        0) {
        fprintf(stderr, "parlor %s: %s\n", cmd, err);
        config_free(serve_options, NOPTS, cfg);
        return -1;
    }
    int lvl = log_level_parse(cfg->log_level);
    if (lvl < 0) {
        fprintf(stderr, "parlor %s: invalid log-level '%s' (debug, info, warn, error, off)\n", cmd,
                cfg->log_level);
        config_free(serve_options, NOPTS, cfg);
        return -1;
    }
    log_level = lvl;
    if (cfg->jwt_secret[0] && cfg->jwt_public_key[0]) {
        fprintf(stderr, "parlor %s: give jwt-secret or jwt-public-key, not both\n", cmd);
        config_free(serve_options, NOPTS, cfg);
        return -1;
    }
    /* An invalid value like any other (exit status 2, before the data directory is touched). */
    if (cfg->jwt_secret[0] && strlen(cfg->jwt_secret) < AUTH_JWT_MIN_SECRET_LEN) {
        fprintf(stderr, "parlor %s: invalid value for jwt-secret: expected at least %d bytes\n",
                cmd, AUTH_JWT_MIN_SECRET_LEN);
        config_free(serve_options, NOPTS, cfg);
        return -1;
    }
    return 0;
}

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
               "# TYPE parlor_store_max_batch gauge\nparlor_store_max_batch %llu\n",
               s->nl.num_conns, eio_server_num_sessions(sio_server_eio(s->sio)),
               (unsigned long long)st.commits, (unsigned long long)st.writes,
               (unsigned long long)st.reads, (unsigned long long)st.max_batch);
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
 * for refused connections still writing their 503 (at most cap/8 + 16, http_server.c), which
 * leaves a little for uploads and downloads (a file each: past the limit those answer 500,
 * the accept path stays bounded). */
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
    size_t cap = lim > 256 ? (size_t)(lim - 64) / 8 * 7 : (size_t)lim / 2;
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
 * away, not only the top of the heap). It walks the heap, so it is not run more often. */
#define TRIM_EVERY_MS 2000
#define TRIM_MIN_FREE (1 << 20)
static void on_trim(uv_timer_t *t)
{
    (void)t;
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks >= TRIM_MIN_FREE) malloc_trim(0);
}

static void on_signal(uv_signal_t *h, int signum)
{
    server_t *s = h->data;
    if (s->stopping) return;
    s->stopping = true;
    log_info("signal %d: shutting down", signum);
    net_listener_close(s->listener);
    sio_server_shutdown(s->sio);
    chat_shutdown(s->chat);
    /* Everything queued is committed (and answered) before the store stops. */
    store_close(s->store);
    net_foreach_conn(&s->nl, close_conn, NULL);
    sio_server_close(s->sio);
    chat_close(s->chat);
    net_loop_close(&s->nl);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->trim, NULL);
}

static int serve_run(server_t *sp);

int serve_main(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: parlor serve [options]\n\nEvery option is also an environment "
                   "variable.\n\n");
            config_print_help(serve_options, NOPTS, stdout);
            return 0;
        }
    server_t s;
    memset(&s, 0, sizeof s);
    char *pos[1];
    int npos;
    if (load_config(argc, argv, &s.cfg, pos, 0, &npos, "serve") < 0) return 2;
    int rc = serve_run(&s);
    config_free(serve_options, NOPTS, &s.cfg);
    return rc;
}

/* Runs the server until a signal; 0 after a clean stop, 1 when it could not start. */
static int serve_run(server_t *sp)
{
    server_t s = *sp;
    serve_config_t *cfg = &s.cfg;
    signal(SIGPIPE, SIG_IGN);
    log_info("parlor starting (data directory %s)", cfg->data);
    if (ensure_dir(cfg->data) < 0) {
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
    if (make_jwt(cfg, &s.jwt, &can_sign) < 0) {
        close(lock_fd);
        return 1;
    }

    s.loop = uv_default_loop();
    char path[4096], err[256] = "";
    snprintf(path, sizeof path, "%s/parlor.db", cfg->data);
    if (store_open(s.loop, path, &s.store, err, sizeof err) != STORE_OK) {
        log_error("cannot open the store %s: %s", path, err);
        auth_jwt_free(s.jwt);
        uv_loop_close(s.loop);
        close(lock_fd);
        return 1;
    }
    log_info("store opened: %s (SQLite, WAL)", path);

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
                .cors_credentials = strcmp(cfg->cors_origins, "*") != 0},
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
    };
    s.chat = chat_new(s.loop, s.sio, s.store, s.jwt, &copts);
    api_options_t aopts = {.cors_origins = cfg->cors_origins,
                           .token_ttl_s = cfg->token_ttl_s,
                           .accounts_enabled = cfg->accounts && can_sign,
                           .auth_per_min = (double)cfg->rate_auth_per_min,
                           .max_message_length = (size_t)cfg->max_message_length};
    s.api = api_new(s.loop, s.chat, &aopts);
    if (!s.http || !s.sio || !s.chat || !s.api) {
        log_error("out of memory at start");
        return 1;
    }
    char files_dir[4096], ferr[256] = "";
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
    eio_server_set_admission(sio_server_eio(s.sio), chat_admit, chat_release, s.chat);
    chat_start(s.chat);
    http_server_route(s.http, "/socket.io/", eio_server_handle, sio_server_eio(s.sio));
    http_server_route_limited(s.http, "/api/", api_handle, s.api, API_SMALL_BODY_MAX, api_head);
    http_server_route_streaming(s.http, "/api/chat/files", files_api_handle, s.files);
    http_server_route_limited(s.http, "/healthz", api_handle, s.api, API_SMALL_BODY_MAX, api_head);
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
    uv_timer_init(s.loop, &s.trim);
    uv_timer_start(&s.trim, on_trim, TRIM_EVERY_MS, TRIM_EVERY_MS);
    uv_unref((uv_handle_t *)&s.trim); /* never what keeps the loop running */
    int r = net_listen(&s.nl, cfg->host, (int)cfg->port, http_server_accept, s.http, &s.listener);
    if (r < 0 && !strcmp(cfg->host, "::"))
        r = net_listen(&s.nl, "0.0.0.0", (int)cfg->port, http_server_accept, s.http, &s.listener);
    int status = 0;
    if (r < 0) {
        log_error("cannot listen on %s port %lld: %s", cfg->host, cfg->port, uv_strerror(r));
        s.listener = NULL;
        status = 1;
        uv_kill(getpid(), SIGTERM); /* the same orderly stop as a signal */
    } else {
        log_info("parlor listening on %s port %d", cfg->host, net_listener_port(s.listener));
    }

    uv_run(s.loop, UV_RUN_DEFAULT);

    files_api_free(s.files);
    if (s.sweep) free(s.sweep->ids);
    free(s.sweep);
    http_static_free(s.web);
    api_free(s.api);
    chat_free(s.chat);
    sio_server_free(s.sio);
    http_server_free(s.http);
    auth_jwt_free(s.jwt);
    uv_loop_close(s.loop);
    close(lock_fd);
    if (status == 0) log_info("stopped");
    return status;
}

/* ---- parlor token ---- */

/* "90", "90s", "15m", "1h", "7d" -> seconds; -1 when malformed. */
static long long parse_ttl(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v <= 0) return -1;
    long long mult = !*end || !strcmp(end, "s") ? 1
                     : !strcmp(end, "m")        ? 60
                     : !strcmp(end, "h")        ? 3600
                     : !strcmp(end, "d")        ? 86400
                                                : -1;
    if (mult < 0 || v > 10LL * 365 * 86400 / mult) return -1;
    return v * mult;
}

static int token_run(serve_config_t *cfg, const char *user, const char *name, const char *role,
                     const char *ttl);

int token_main(int argc, char **argv)
{
    /* token's own flags come first; the rest are the server's options (data, jwt-*). */
    const char *name = "", *role = "", *ttl = "1h";
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: parlor token <userId> [--name N] [--role R] [--ttl 1h] [serve "
                   "options: --data, --jwt-secret, --jwt-issuer, --jwt-audience]\n");
            free(rest);
            return 0;
        }
        if ((!strcmp(argv[i], "--name") || !strcmp(argv[i], "--role") ||
             !strcmp(argv[i], "--ttl")) &&
            i + 1 < argc) {
            if (argv[i][2] == 'n')
                name = argv[i + 1];
            else if (argv[i][2] == 'r')
                role = argv[i + 1];
            else
                ttl = argv[i + 1];
            i++;
            continue;
        }
        rest[nrest++] = argv[i];
    }
    serve_config_t cfg;
    char *pos[1];
    int npos;
    log_level = LOG_WARN;
    int rc = load_config(nrest, rest, &cfg, pos, 1, &npos, "token");
    free(rest);
    if (rc < 0) return 2;
    if (log_level < LOG_WARN) log_level = LOG_WARN; /* stdout is the token; stderr stays quiet */
    int status = token_run(&cfg, npos == 1 ? pos[0] : NULL, name, role, ttl);
    config_free(serve_options, NOPTS, &cfg);
    return status;
}

static int token_run(serve_config_t *cfgp, const char *user, const char *name, const char *role,
                     const char *ttl)
{
    serve_config_t cfg = *cfgp;
    if (!user || !auth_sub_is_valid(user, strlen(user))) {
        fprintf(stderr, "parlor token: give one user id (1-64 characters of A-Z a-z 0-9 _ -)\n");
        return 2;
    }
    long long ttl_s = parse_ttl(ttl);
    if (ttl_s < 0) {
        fprintf(stderr, "parlor token: invalid --ttl '%s' (e.g. 90s, 15m, 1h, 7d)\n", ttl);
        return 2;
    }
    if (cfg.jwt_public_key[0]) {
        fprintf(stderr, "parlor token: tokens for a public-key setup come from your platform\n");
        return 2;
    }
    if (strlen(name) > 128 || strlen(role) > 32) {
        fprintf(stderr, "parlor token: --name is at most 128 bytes, --role at most 32\n");
        return 2;
    }
    auth_jwt_t *jwt;
    bool can_sign;
    if (make_jwt(&cfg, &jwt, &can_sign) < 0) return 1;
    char *token = NULL;
    if (auth_jwt_sign(jwt, user, name, role, (int64_t)time(NULL), ttl_s, &token) != AUTH_OK) {
        fprintf(stderr, "parlor token: signing failed\n");
        auth_jwt_free(jwt);
        return 1;
    }
    printf("%s\n", token);
    free(token);
    auth_jwt_free(jwt);
    return 0;
}
