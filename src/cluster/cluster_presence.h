/* Presence across the nodes of a cluster (docs/cluster.md "Presence"), kept in Redis:
 *
 *   parlor:<db>:node:<id>   a node's heartbeat: SET every CPRES_HEARTBEAT_MS with a TTL of
 *                           CPRES_TTL_MS (a node that stops refreshing it is dead)
 *   parlor:<db>:nodes       the set of node ids that have registered
 *   parlor:<db>:nu:<id>     the users with sockets on node <id> (a dead node's users)
 *   parlor:<db>:on:<user>   the nodes the user has sockets on
 *   parlor:<db>:st:<user>   hash: s (1 online / 0 offline, as announced), t (ms, since)
 *   parlor:<db>:grace       sorted set: users whose last socket anywhere is gone, scored by
 *                           when their grace period ends
 *
 * Every change is one Lua script, so each transition is decided once, by one node:
 *   join  (a user's first socket here):  s 0 -> 1 announces online (this node);
 *   leave (its last socket here left):   no node left -> the user enters the grace set;
 *   beat  (every node, periodically):    refreshes its heartbeat; a node whose heartbeat
 *                                        expired is reaped (its users with no other node
 *                                        enter the grace set); users whose grace is over and
 *                                        who still have no node go s 1 -> 0, and the node that
 *                                        ran the script announces them offline;
 *   reset (the bus came (back) up):      this node's registrations are dropped and its
 *                                        current users joined again (what changed while Redis
 *                                        was away is announced now).
 * The keys are computed inside the scripts (one Redis, not Redis Cluster). */
#ifndef PARLOR_CLUSTER_PRESENCE_H
#define PARLOR_CLUSTER_PRESENCE_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "chat/chat.h"
#include "cluster/redis_bus.h"

#define CPRES_HEARTBEAT_MS 500
#define CPRES_TTL_MS       2000

typedef struct cpres cpres_t;

typedef struct {
    uint64_t commands; /* Redis commands sent for presence and rate limits */
    uint64_t announced_online, announced_offline;
    uint64_t reaped; /* users of dead nodes that entered the grace set here */
} cpres_stats_t;

cpres_t *cpres_new(uv_loop_t *loop, chat_t *chat, redis_bus_t *bus, int db, const char *node_id);
/* The bus went down (false) or is up again (true). */
void cpres_state(cpres_t *p, bool up);
/* Detaches from the chat and stops the timer (its handle closes with the loop). */
void cpres_close(cpres_t *p);
void cpres_free(cpres_t *p);
void cpres_stats(const cpres_t *p, cpres_stats_t *out);

#endif
