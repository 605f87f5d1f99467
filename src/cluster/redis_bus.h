/* The cluster's bus: Redis pub/sub between Parlor nodes, plus plain commands (presence keys,
 * shared rate limits), over two connections driven by the libuv loop (hiredis's async API).
 *
 * The bus is allowed to lose, duplicate and reorder: every chat event carries what the
 * receiver needs to notice a gap (per-conversation seq, store positions), and the durable
 * store is where a node catches up. What the bus promises is to say when it may have lost
 * something: on_state(up = false) when a connection drops, and on_state(up = true) once both
 * connections are back and every subscription is in place again; in between, anything
 * published to this node may have been missed, and publishes made while the command
 * connection was down were kept in a bounded outbox (sent on reconnect) or, past the bound,
 * dropped and counted (lost_publishes in the next on_state(true)).
 *
 * Lifetimes (libuv-style rules):
 * - redis_bus_close starts the close; close_cb runs once every handle is closed. After
 *   redis_bus_close no callback of the bus runs except command callbacks with reply NULL.
 * - A command callback runs exactly once per accepted command: with the reply, or with NULL
 *   when the connection dropped or the bus is closing. A command refused by
 *   redis_bus_command (returns -1: not connected) never calls back.
 * - Channel names and payloads are copied; the caller's buffers may go after the call. */
#ifndef PARLOR_CLUSTER_REDIS_BUS_H
#define PARLOR_CLUSTER_REDIS_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct redis_bus redis_bus_t;
struct redisReply;

typedef struct {
    /* A message on a subscribed channel. */
    void (*on_message)(void *arg, const char *channel, size_t channel_len, const char *data,
                       size_t len);
    /* The bus went down (false) or is fully up again (true); lost_publishes counts this
     * node's publishes dropped since the last call (outbox overflow). */
    void (*on_state)(void *arg, bool up, uint64_t lost_publishes);
    void *arg;
} redis_bus_callbacks_t;

typedef struct {
    size_t outbox_max_bytes; /* publishes kept while the command link is down; 0: 16 MiB */
    uint64_t retry_max_ms;   /* reconnect backoff ceiling; 0: 2000 */
} redis_bus_options_t;

typedef struct {
    uint64_t published, received, dropped, reconnects;
    size_t outbox_bytes;
    size_t channels;
    bool up;
} redis_bus_stats_t;

/* "redis://[[user]:password@]host[:port][/db]" (host: name, IPv4 or [IPv6]; port 6379; db 0;
 * user and password percent-encoded). Returns 0, or -1 with a message in err. */
int redis_bus_parse_url(const char *url, char *host, size_t host_cap, int *port, int *db, char *err,
                        size_t errcap);

/* The credentials of such a URL (both "" when it has none; user "" with a password: AUTH
 * with the password only, Redis's default user). 0, or -1 when they cannot be read. */
typedef struct {
    char user[128], password[512];
} redis_bus_auth_t;
int redis_bus_parse_auth(const char *url, redis_bus_auth_t *auth);

/* Resolves the host (once, at start), then connects in the background and keeps reconnecting.
 * NULL with a message in err when the URL is bad or the host does not resolve. */
redis_bus_t *redis_bus_new(uv_loop_t *loop, const char *url, const redis_bus_options_t *opts,
                           const redis_bus_callbacks_t *cb, char *err, size_t errcap);
void redis_bus_close(redis_bus_t *bus, void (*close_cb)(void *arg), void *arg);

/* Reference-counted: the channel is subscribed while its count is above zero. */
void redis_bus_subscribe(redis_bus_t *bus, const char *channel, size_t len);
void redis_bus_unsubscribe(redis_bus_t *bus, const char *channel, size_t len);

/* Fire and forget (see the outbox above). */
void redis_bus_publish(redis_bus_t *bus, const char *channel, size_t channel_len, const char *data,
                       size_t len);

/* A command on the command connection. cb gets the reply (hiredis's redisReply) or NULL.
 * Returns 0, or -1 when the command connection is down (cb will not run). */
typedef void (*redis_bus_reply_fn)(void *arg, struct redisReply *reply);
int redis_bus_command(redis_bus_t *bus, redis_bus_reply_fn cb, void *arg, int argc,
                      const char **argv, const size_t *argvlen);

/* Writes what the command connection has queued now, instead of on the loop's next turn
 * (what must be in Redis before this node tells a client something: cluster_acked.c). */
void redis_bus_flush(redis_bus_t *bus);

bool redis_bus_up(const redis_bus_t *bus);
void redis_bus_stats(const redis_bus_t *bus, redis_bus_stats_t *out);

#endif
