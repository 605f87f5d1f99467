/* What `parlor serve` and `parlor token` share: the option table, loading it, and the JWT
 * verifier/signer built from it (serve_config.c). */
#ifndef PARLOR_SERVE_SERVE_INT_H
#define PARLOR_SERVE_SERVE_INT_H

#include <stdbool.h>

#include "auth/auth_jwt.h"

typedef struct {
    long long port;
    char *host;
    char *data;
    char *store;     /* a store URL; empty: sqlite:<data>/parlor.db */
    char *files_dir; /* empty: <data>/files */
    char *cluster;   /* redis://...; empty: a single node */
    char *node_id;   /* empty: random */
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
    int allow_eio3;
    long long rate_messages_per_s, rate_messages_burst;
    long long rate_rest_per_s, rate_rest_burst;
    long long rate_connections_per_ip, rate_connections_window_s;
    long long max_connections_per_ip, max_connections_per_user;
    long long presence_grace_ms, typing_throttle_ms, typing_timeout_ms;
    long long rate_events_per_s, rate_events_burst, events_flood_disconnect;
    long long recovery_max_messages, recovery_max_concurrent;
    long long edit_window_s;
    long long max_file_size, max_storage_per_user, rate_uploads_per_min;
    char *allowed_file_types;
    char *web_root;
    long long rate_auth_per_min;
    long long max_buffered_request_bytes;
    long long max_http_connections_per_ip;
    long long max_connections;
    char *webhook_url; /* space-separated (OPT_LIST); empty: webhooks off */
    char *webhook_secret;
    long long webhook_unread_delay_s, webhook_timeout_ms, webhook_retry_window_s;
    long long store_commit_wait_us;
    long long webhook_retry_base_ms, webhook_retry_max_ms, webhook_concurrency, webhook_poll_ms;
} serve_config_t;

/* Parses argv (flags and PARLOR_* variables) into cfg; positional arguments go to pos (at most
 * maxpos, *npos of them). On an invalid value prints one line "parlor <cmd>: ..." and returns
 * -1 (exit status 2); cfg is then already freed. */
int serve_load_config(int argc, char **argv, serve_config_t *cfg, char **pos, int maxpos, int *npos,
                      const char *cmd);
void serve_config_free(serve_config_t *cfg);
/* Prints the option table (--help). */
void serve_config_usage(void);

/* mkdir 0700 unless it exists. */
int serve_ensure_dir(const char *dir);
/* Builds the verifier (and, for HS256, signer) from the options: the public key, the secret
 * given, or <data>/jwt-secret. When that file is missing it is generated if create_secret,
 * otherwise this fails saying where it looked. */
int serve_make_jwt(serve_config_t *cfg, bool create_secret, auth_jwt_t **out, bool *can_sign);

#endif
