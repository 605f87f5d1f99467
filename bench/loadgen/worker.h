/* A load generator worker process's state, shared by worker.c (idle, pairs, rate and the loop)
 * and groups.c (the group scenario). */
#ifndef LOADGEN_WORKER_H
#define LOADGEN_WORKER_H

#include "client.h"

/* ROLE_RECEIVER's value is known to client.c (--recv-port). */
enum { ROLE_IDLE, ROLE_SENDER, ROLE_RECEIVER, ROLE_MEMBER };
enum { PH_CONNECT, PH_WAIT, PH_RUN, PH_DRAIN, PH_DONE };

#define LATE_NS 1000000u /* a rate-mode send this far behind its schedule is late */

typedef struct {
    lg_conn_t s, r;
    char suser[64], ruser[64];
    size_t suser_len;
    uint64_t sent, acked, received;
    uint64_t expect;  /* receiver: next clientMsgId number */
    uint8_t *ackbits; /* ring of `ring` bits: acknowledged */
    uint64_t *tsend;  /* ring: (scheduled) send time of message n */
} pair_t;

typedef struct lg_member lg_member_t; /* groups.c */
typedef struct lg_group lg_group_t;

typedef struct {
    const lg_config_t *cfg;
    const lg_slice_t *sl;
    lg_result_t *res;
    lg_client_t cl;
    int ctrl;
    int phase;
    uint64_t now;
    /* connections, in start order */
    lg_conn_t **conns;
    size_t nconns, next_start, active, resolved;
    uint64_t connect_deadline;
    lg_conn_t *idle;
    char (*idle_users)[64];
    pair_t *pairs;
    size_t npairs;
    uint64_t ring;
    /* groups */
    lg_group_t *groups;
    size_t ngroups;
    lg_member_t *members;
    size_t nmembers;
    uint64_t expect_recv; /* deliveries owed for what was sent: (members - 1) per message */
    /* run */
    uint64_t t_go, t_ws, t_we, t_stop, drain_deadline;
    bool in_window_seen, window_done, started;
    uint64_t cpu_ws, cpu_connect0;
    uint64_t rate_k, next_due;
    char *pad;
    uint64_t sent, acked, received;
} worker_t;

void note_error(worker_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool in_window(const worker_t *w, uint64_t t);
/* Reads the digits after `key` in p; returns false when key is absent. */
bool find_u64(const char *p, size_t n, const char *key, uint64_t *out);

/* An ack's common checks (pairs and groups): its id, "ok", sent and not acknowledged before.
 * Counts and notes a bad one and returns false; else marks it in ackbits, counts it in *acked
 * and the worker's totals, records its latency from tsend[slot], and gives its id, ok and, of
 * an ok ack, the seq and clientMsgId it carries (ids: both were found). */
typedef struct {
    uint64_t id, seq, cmid;
    bool ok, ids;
} ack_t;
bool rate_may_send(worker_t *w, uint64_t sent, uint64_t acked, const char *user);
/* A receive_message's clientMsgId, seq and send time (its content "t<µs>..."); a packet without
 * them is counted and noted, and false returned. */
bool receive_fields(worker_t *w, const char *pk, size_t n, uint64_t *cmid, uint64_t *seq,
                    uint64_t *t);
bool ack_take(worker_t *w, const char *pk, size_t n, const char *user, uint64_t sent,
              uint8_t *ackbits, uint64_t *acked, const uint64_t *tsend, ack_t *out);

/* groups.c: creates the slice's groups over REST and fills w->conns; 0 or -1. */
int group_setup(worker_t *w);
/* Sends what the open-loop schedule has due. */
void group_sends(worker_t *w);
/* An ack or an event on a member's socket. */
void group_packet(worker_t *w, lg_conn_t *c, const char *pk, size_t n);
/* After the drain: what each member should have received from each other member. */
void group_finish(worker_t *w);
void group_free(worker_t *w);

#endif
