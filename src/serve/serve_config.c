/* The options of `parlor serve` (also read by `parlor token`), and the JWT setup they
 * describe: a public key, a given secret, or the secret generated into <data>/jwt-secret. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "serve/serve_int.h"

#define OFF(f) offsetof(serve_config_t, f)
static const config_option_t serve_options[] = {
    {"port", OPT_INT, OFF(port), "5000", 0, 65535, "TCP port to listen on (0: any free port)"},
    {"host", OPT_STRING, OFF(host), "::", 0, 0, "address to listen on (:: = all, IPv6 and IPv4)"},
    {"data", OPT_STRING, OFF(data), "./data", 0, 0,
     "data directory (SQLite database, generated secret, uploads)"},
    {"store", OPT_STRING, OFF(store), "", 0, 0,
     "where messages live: sqlite:PATH or postgres://user:pass@host:port/db (libpq URI; "
     "empty: sqlite:<data>/parlor.db)"},
    {"store-commit-wait-us", OPT_INT, OFF(store_commit_wait_us), "1000", 0, 10000,
     "SQLite/PostgreSQL writer: while writes come less than this apart, a batch of fewer than "
     "8 waits for more until its oldest write has waited this long (fewer commits at light "
     "load, at most this much more latency; 0: never)"},
    {"cluster", OPT_STRING, OFF(cluster), "", 0, 0,
     "run as one node of a cluster: redis://[[user]:password@]host[:port][/db] of the Redis "
     "that carries live events between nodes (needs a postgres store; empty: a single node; "
     "docs/cluster.md)"},
    {"node-id", OPT_STRING, OFF(node_id), "", 0, 0,
     "this node's name in the cluster, 1-64 of A-Z a-z 0-9 _ - (empty: random, logged); when "
     "at most 24 long, the node's Engine.IO sids start with it and a dot, for the load balancer"},
    {"files-dir", OPT_STRING, OFF(files_dir), "", 0, 0,
     "where uploaded files are kept (empty: <data>/files); with a postgres store, a directory "
     "every node shares"},
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
    {"allow-eio3", OPT_BOOL, OFF(allow_eio3), "false", 0, 0,
     "also accept Engine.IO v3 clients (socket.io-client 2.x; token in the query)"},
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
    {"rate-events-per-s", OPT_INT, OFF(rate_events_per_s), "100", 0, 1000000,
     "Socket.IO events a socket may send per second, of any name (0: no limit)"},
    {"rate-events-burst", OPT_INT, OFF(rate_events_burst), "200", 1, 1000000,
     "events a socket may send at once before the per-second rate applies"},
    {"events-flood-disconnect", OPT_INT, OFF(events_flood_disconnect), "1000", 0, 100000000,
     "a socket whose events are refused this many times in a row is disconnected (0: never)"},
    {"recovery-max-messages", OPT_INT, OFF(recovery_max_messages), "10000", 0, 1000000000,
     "a reconnecting session is recovered only if at most this many messages were committed "
     "server-wide since its offset; else it starts afresh (recovered false; 0: never recover)"},
    {"recovery-max-concurrent", OPT_INT, OFF(recovery_max_concurrent), "4", 1, 10000,
     "recovery replays running at once; later ones wait their turn"},
    {"edit-window-s", OPT_INT, OFF(edit_window_s), "900", 0, 1000000000,
     "seconds after sending during which the sender may edit a text message (0: no limit; "
     "deleting has no limit)"},
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
    {"webhook-url", OPT_LIST, OFF(webhook_url), "", 0, 0,
     "POST webhook events to this http:// or https:// URL; repeat the flag for several (at most "
     "8; the environment variable takes a space-separated list); empty: webhooks off "
     "(docs/webhooks.md)"},
    {"webhook-secret", OPT_STRING, OFF(webhook_secret), "", 0, 0,
     "key of the X-Parlor-Signature HMAC-SHA256 of every webhook body (required with "
     "--webhook-url)"},
    {"webhook-unread-delay-s", OPT_INT, OFF(webhook_unread_delay_s), "60", 1, 604800,
     "message.unread is sent for a recipient who has not read a message this long after it was "
     "sent and has no connected socket then"},
    {"webhook-timeout-ms", OPT_INT, OFF(webhook_timeout_ms), "10000", 100, 600000,
     "one webhook attempt (connect, send, answer) fails after this"},
    {"webhook-retry-window-s", OPT_INT, OFF(webhook_retry_window_s), "86400", 1, 2592000,
     "a webhook delivery is retried for this long after its event, then marked failed"},
    {"webhook-retry-base-ms", OPT_INT, OFF(webhook_retry_base_ms), "1000", 1, 3600000,
     "wait before the first webhook retry; doubled on every further failure, with jitter"},
    {"webhook-retry-max-ms", OPT_INT, OFF(webhook_retry_max_ms), "600000", 1, 86400000,
     "longest wait between two attempts of one webhook delivery"},
    {"webhook-concurrency", OPT_INT, OFF(webhook_concurrency), "4", 1, 64,
     "webhook POSTs in progress at once (sender threads; 4 deliveries each may be queued)"},
    {"webhook-poll-ms", OPT_INT, OFF(webhook_poll_ms), "50", 5, 60000,
     "how often the outbox is looked at for due deliveries when nothing else prompts it"},
};
#define NOPTS (sizeof serve_options / sizeof serve_options[0])

void serve_config_free(serve_config_t *cfg)
{
    config_free(serve_options, NOPTS, cfg);
}

void serve_config_usage(void)
{
    config_print_help(serve_options, NOPTS, stdout);
}

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

int serve_ensure_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST) return 0;
    return -1;
}

/* The HS256 secret in <data>/jwt-secret; generated (0600) when missing and create is set. */
static char *load_or_create_secret(const char *data, bool create, bool *generated)
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
    if (!create) return NULL; /* errno says why it could not be read */
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
int serve_make_jwt(serve_config_t *cfg, bool create_secret, auth_jwt_t **out, bool *can_sign)
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
            if (create_secret && serve_ensure_dir(cfg->data) < 0) {
                log_error("cannot create data directory %s: %s", cfg->data, strerror(errno));
                return -1;
            }
            key = load_or_create_secret(cfg->data, create_secret, &generated);
            if (!key && !create_secret && errno == ENOENT) {
                char abs[4096];
                log_error("no secret in %s/jwt-secret (%s): the server's secret is where its "
                          "--data (PARLOR_DATA) points; give the same --data, or --jwt-secret, "
                          "or --new-secret to generate one there",
                          cfg->data, realpath(cfg->data, abs) ? abs : "no such directory");
                return -1;
            }
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

int serve_load_config(int argc, char **argv, serve_config_t *cfg, char **pos, int maxpos, int *npos,
                      const char *cmd)
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
    /* Nodes of a cluster share one database: SQLite is one process's file. */
    if (cfg->cluster[0] && strncmp(cfg->store, "postgres://", 11) != 0 &&
        strncmp(cfg->store, "postgresql://", 13) != 0) {
        fprintf(stderr,
                "parlor %s: --cluster needs a PostgreSQL store (--store postgres://...): the "
                "nodes of a cluster share one database, and SQLite is one process's file\n",
                cmd);
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
