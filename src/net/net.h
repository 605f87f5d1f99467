/* The network layer: one libuv loop, TCP listeners, connections with capped inbound and
 * outbound buffers, coalesced writes (one writev per connection per loop turn), backpressure,
 * timeouts and graceful shutdown. Everything here runs on the loop thread. */
#ifndef PARLOR_NET_NET_H
#define PARLOR_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "core/buf.h"
#include "core/slab.h"
#include "net/timerq.h"

typedef struct net_loop net_loop_t;
typedef struct net_conn net_conn_t;

typedef struct {
    /* New bytes. data points into a scratch or the connection's own buffer and is valid only
     * during the call. Returns how many bytes were consumed; the rest is kept and passed again,
     * with more, on the next read. May close the connection (then the return value is ignored). */
    size_t (*on_data)(net_conn_t *c, char *data, size_t len);
    /* Called once from the close callback, after the handle is closed, unless the handler was
     * detached (net_conn_detach). The connection is freed right after. */
    void (*on_close)(net_conn_t *c);
    /* Optional: the outbound queue became empty after having data. */
    void (*on_drain)(net_conn_t *c);
} net_handler_t;

typedef struct {
    size_t max_inbound;         /* bytes kept for a partial request/frame; over it -> cut */
    size_t max_outbound;        /* unsent bytes queued on one connection; over it -> cut */
    size_t max_outbound_total;  /* unsent bytes on all connections together; 0 = no limit */
    uint64_t header_timeout_ms; /* connection that sent no complete request head by then -> cut */
    uint64_t idle_timeout_ms;   /* keep-alive HTTP connection idle that long -> closed */
    uint64_t send_timeout_ms;   /* queued output the peer takes none of for that long -> cut */
} net_limits_t;

typedef struct {
    rbuf_t *buf;
    uint32_t off, len;
} net_slice_t;

enum {
    NET_CONN_CLOSING = 1 << 0,
    NET_CONN_IN_FLUSH = 1 << 1,
    NET_CONN_WRITING = 1 << 2,
    NET_CONN_CLOSE_AFTER_WRITE = 1 << 3,
    NET_CONN_PAUSED = 1 << 4,
    NET_CONN_REPROCESS = 1 << 5,
};

/* Unconsumed input: 16 bytes, not a buf_t's 24, in every connection. Bound by
 * net_limits_t.max_inbound (max-payload + 64 KiB, at most ~100 MB), far below 2^31. */
typedef struct {
    char *data;
    uint32_t len, cap;
} net_inbuf_t;

struct net_conn {
    uv_tcp_t tcp; /* tcp.data is the net_loop_t (net_conn_nl): no field of its own */
    const net_handler_t *handler;
    void *ud;       /* the handler's state */
    net_inbuf_t in; /* unconsumed input; empty (no memory) between messages */
    net_slice_t *outq;
    uint32_t outq_len, outq_cap;
    size_t out_bytes; /* queued, not yet handed to the kernel */
    uint32_t flags;
    uint32_t id; /* for logs (wraps after 4 billion connections; beside flags: no padding) */
    net_conn_t *flush_next;
    tq_entry_t timeout;      /* header, idle or linger timeout */
    tq_entry_t send_timeout; /* armed while the kernel takes none of our output */
};

struct net_loop {
    uv_loop_t *loop;
    net_limits_t limits;
    uv_check_t check;     /* flushes writes queued by I/O callbacks */
    uv_prepare_t prepare; /* flushes writes queued by timers */
    net_conn_t *flush_head;
    size_t num_conns;
    bool close_when_empty; /* net_loop_close was called while connections lingered */
    uint64_t next_conn_id;
    size_t out_bytes_total; /* unsent bytes queued on every connection */
    uint64_t outbound_cuts; /* connections cut by max_outbound_total */
    timerq_t header_tq, idle_tq, linger_tq, send_tq;
    slab_pool_t conn_pool; /* the net_conn_t of every connection (core/slab.h) */
    char scratch[64 * 1024];
};

static inline net_loop_t *net_conn_nl(const net_conn_t *c)
{
    return (net_loop_t *)c->tcp.data;
}

int net_loop_init(net_loop_t *nl, uv_loop_t *loop, const net_limits_t *limits);
/* Closes the loop's own handles, at once or as soon as the last connection is gone. */
void net_loop_close(net_loop_t *nl);

typedef struct net_listener net_listener_t;
/* Accept callback: set c->handler and c->ud. */
typedef void (*net_accept_cb)(net_conn_t *c, void *arg);
/* Listens on host:port ("::" = every IPv6 and IPv4 address). Returns 0 or a libuv error. */
int net_listen(net_loop_t *nl, const char *host, int port, net_accept_cb cb, void *arg,
               net_listener_t **out);
void net_listener_close(net_listener_t *l);
int net_listener_port(net_listener_t *l);

/* Queues len bytes of buf from off (takes a new reference to buf). Cuts the connection when
 * its queue passes max_outbound, or when all queues together pass max_outbound_total and this
 * one holds more than NET_FAIR_OUTBOUND of it (a peer that reads keeps its queue near empty:
 * only stalled readers are cut). Returns 0, or -1 when the connection is (now) closing. */
#define NET_FAIR_OUTBOUND (256 * 1024)
int net_conn_write(net_conn_t *c, rbuf_t *buf, size_t off, size_t len);
/* Copies and queues bytes. */
int net_conn_write_copy(net_conn_t *c, const void *p, size_t len);
/* Starts closing now (queued output is dropped). Safe to call more than once. */
void net_conn_close(net_conn_t *c);
/* Closes once the queued output has been written: FIN, then input is read and discarded until
 * the peer closes or 2 s pass (a graceful close; no reset on top of our last bytes). */
void net_conn_close_after_write(net_conn_t *c);
/* The handler forgets the connection: no on_close/on_drain will be called. */
static inline void net_conn_detach(net_conn_t *c)
{
    c->handler = NULL;
    c->ud = NULL;
}
static inline bool net_conn_closing(const net_conn_t *c)
{
    return (c->flags & (NET_CONN_CLOSING | NET_CONN_CLOSE_AFTER_WRITE)) != 0;
}
void net_conn_pause(net_conn_t *c);
void net_conn_resume(net_conn_t *c);
/* Header/idle timeout control. */
void net_conn_arm_header_timeout(net_conn_t *c);
void net_conn_arm_idle_timeout(net_conn_t *c);
void net_conn_clear_timeout(net_conn_t *c);
/* Re-delivers buffered input (after a handler change or resume) at the end of this loop turn,
 * outside of whatever callback asks for it. */
void net_conn_schedule_reprocess(net_conn_t *c);

/* Writes "ip:port" of the peer (for logs). */
int net_conn_peer_name(net_conn_t *c, char *out, size_t cap);
/* Calls fn on every live connection (fn may close it). */
void net_foreach_conn(net_loop_t *nl, void (*fn)(net_conn_t *c, void *arg), void *arg);

#endif
