/* A session's acknowledged positions shared by the nodes (chat_acked_hooks_t): a session
 * recovered on another node (its node died, or the balancer moved it) is not replayed the
 * messages it sent itself. docs/cluster.md, "A node dies".
 *
 * Each ack pushes its position to the Redis list "parlor:<db>:a:<user>|<pid parts>" (RPUSH,
 * LTRIM to the last ACKED_KEEP, PEXPIRE the recovery window), pipelined on the command
 * connection with the publishes that go out for the same message; a recovery reads the list
 * once (LRANGE) before its first page. */
#ifndef PARLOR_CLUSTER_ACKED_H
#define PARLOR_CLUSTER_ACKED_H

#include "chat/chat.h"
#include "cluster/redis_bus.h"

typedef struct cluster_acked cluster_acked_t;

/* Sets the chat's acked hooks; NULL when out of memory (the chat then has none). */
cluster_acked_t *cluster_acked_new(chat_t *chat, redis_bus_t *bus, int db);
/* Clears the chat's hooks; frees once the loop has ended (pending fetches answer NULL). */
void cluster_acked_detach(cluster_acked_t *a);
void cluster_acked_free(cluster_acked_t *a);

#endif
