/* A Parlor node in a cluster: the chat layer's delivery seam wired to the Redis bus
 * (docs/cluster.md).
 *
 * - Interest: while a user has a socket on this node, the node is subscribed to the user's
 *   channel "parlor:<db>:u:<userId>" (chat_set_interest).
 * - Publish: every delivery made here (chat_deliver) is published once per user of its
 *   audience, on that user's channel, as an envelope (cluster_codec.h).
 * - Receive: an envelope from another node runs chat_deliver_local for that one user; our own
 *   envelopes coming back are ignored; a malformed one is dropped and counted.
 * - The bus may lose, duplicate and reorder: receive_message is delivered per socket in
 *   position order, with gaps caught up from the store (chat_recovery_ordered), and when the
 *   bus comes back up every local socket catches up from the store (chat_catch_up). */
#ifndef PARLOR_CLUSTER_CLUSTER_H
#define PARLOR_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "chat/chat.h"

typedef struct cluster cluster_t;

typedef struct {
    const char *url;     /* redis://host[:port][/db] */
    const char *node_id; /* 1-64 of [A-Za-z0-9_-]; empty or NULL: random */
} cluster_options_t;

typedef struct {
    uint64_t published, published_bytes; /* envelopes this node published */
    uint64_t received, received_bytes;   /* envelopes from Redis, our own echoes included */
    uint64_t echoes;                     /* of those, our own (ignored) */
    uint64_t malformed;                  /* dropped: not a valid envelope */
    uint64_t catch_ups;                  /* bus down->up: every socket caught up */
    bool up;
} cluster_stats_t;

/* Starts connecting in the background; NULL with a message in err when the URL or node id is
 * bad. Sets the chat's publish and interest hooks. */
cluster_t *cluster_new(uv_loop_t *loop, chat_t *chat, const cluster_options_t *opts, char *err,
                       size_t errcap);
/* Detaches from the chat and closes the bus (its handles close with the loop). */
void cluster_close(cluster_t *cl);
/* Once the loop has ended. */
void cluster_free(cluster_t *cl);
void cluster_stats(const cluster_t *cl, cluster_stats_t *out);
const char *cluster_node_id(const cluster_t *cl);

#endif
