/* A minimal non-blocking Socket.IO client over the WebSocket transport, for many sockets on one
 * epoll loop: TCP connect, HTTP upgrade, RFC 6455 frames, Engine.IO open/ping, namespace join. */
#ifndef LOADGEN_CLIENT_H
#define LOADGEN_CLIENT_H

#include "loadgen.h"

#include <netinet/in.h>

enum {
    CONN_IDLE,     /* not started */
    CONN_TCP,      /* connect() in progress */
    CONN_UPGRADE,  /* waiting for 101 Switching Protocols */
    CONN_EIO_OPEN, /* waiting for the Engine.IO open packet */
    CONN_SIO_JOIN, /* CONNECT sent, waiting for the namespace's answer */
    CONN_READY,    /* joined: events flow */
    CONN_CLOSED,
};

typedef struct lg_conn {
    int fd;
    int state;
    bool joined; /* reached CONN_READY; stays set after a close */
    int role;    /* the worker's: sender, receiver, idle */
    void *ud;    /* the worker's: its pair */
    char *rbuf;  /* only a partial frame waits here; full reads are parsed in place */
    size_t rlen, rcap;
    char *wbuf;
    size_t woff, wlen, wcap;
    char *frag; /* a fragmented message being reassembled (rare) */
    size_t flen, fcap;
    bool out_armed, dirty;
    struct lg_conn *next_dirty;
    char ws_key[32];
    const char *user;
    uint64_t t_start;
} lg_conn_t;

typedef struct lg_client lg_client_t;

typedef struct {
    void (*on_ready)(lg_client_t *cl, lg_conn_t *c);
    /* A Socket.IO packet on "/" other than CONNECT: "2[...]", "3<id>[...]", "4{...}", "1". */
    void (*on_packet)(lg_client_t *cl, lg_conn_t *c, const char *p, size_t n);
    /* The connection failed or was closed by the server; c is closed already. */
    void (*on_closed)(lg_client_t *cl, lg_conn_t *c, const char *why);
} lg_client_ops_t;

struct lg_client {
    int ep;
    const lg_config_t *cfg;
    lg_client_ops_t ops;
    void *ud;
    struct sockaddr_in dst;
    struct sockaddr_in src; /* sin_addr 0: no bind */
    lg_conn_t *dirty;
    char *scratch;
    size_t scratch_cap;
    uint64_t rng;
    uint64_t pings;
    char host_header[96];
};

int client_init(lg_client_t *cl, const lg_config_t *cfg, const char *src_addr,
                const lg_client_ops_t *ops, void *ud);
void client_free(lg_client_t *cl);
/* Starts connecting c as `user` (borrowed for c's lifetime). 0, or -errno. */
int client_start(lg_client_t *cl, lg_conn_t *c, const char *user);
void client_event(lg_client_t *cl, lg_conn_t *c, uint32_t events);
/* Queues one Engine.IO packet as a masked text frame; sent by client_flush. */
void client_send(lg_client_t *cl, lg_conn_t *c, const char *p, size_t n);
/* Writes what the loop turn queued, one write per connection. */
void client_flush(lg_client_t *cl);
void client_close(lg_client_t *cl, lg_conn_t *c);

#endif
