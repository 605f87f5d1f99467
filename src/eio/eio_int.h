/* Engine.IO server internals shared by the session core (eio_server.c) and the long-polling
 * transport (eio_polling.c): the session and server structures and the calls between them. */
#ifndef PARLOR_EIO_INT_H
#define PARLOR_EIO_INT_H

#include "core/slab.h"
#include "net/timerq.h"
#include "eio/eio_packet.h"
#include "eio/eio_server.h"

enum { TRANSPORT_POLLING, TRANSPORT_WEBSOCKET };
enum { S_OPEN, S_CLOSING };

/* The reference server's error codes (engine.io Server.errors). */
enum {
    EIO_ERR_UNKNOWN_TRANSPORT = 0,
    EIO_ERR_UNKNOWN_SID = 1,
    EIO_ERR_BAD_HANDSHAKE_METHOD = 2,
    EIO_ERR_BAD_REQUEST = 3,
    EIO_ERR_FORBIDDEN = 4,
    EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION = 5,
};
static const char *const eio_error_messages[] = {
    "Transport unknown", "Session ID unknown", "Bad handshake method",
    "Bad request",       "Forbidden",          "Unsupported protocol version",
};

/* A sid is [<prefix>.]<20 random characters>: the prefix (eio_config_t.sid_prefix, e.g. a
 * cluster node's id) lets a load balancer route a session's requests to the node that holds
 * it (deploy/haproxy.cfg.in); the random part keeps it unguessable (120 bits). */
#define SID_LEN        20
#define SID_PREFIX_MAX 24
#define SID_MAX        (SID_PREFIX_MAX + 1 + SID_LEN)

/* What one packet waiting in a polling queue costs beyond its encoded bytes (the queue slot,
 * the buffer's header and allocator overhead): counted in the queue's byte cap, so that cap
 * also bounds the number of packets (at most cap / EIO_QUEUED_PACKET_COST). */
#define EIO_QUEUED_PACKET_COST 64
/* Room left under the connection's outbound cap for the head of the GET response that
 * carries a full queue, so that the response itself is never cut as a slow reader. */
#define EIO_RESPONSE_HEAD_ROOM 2048

/* What only a long-polling session needs; a WebSocket session has none of it, and an upgraded
 * session releases it. */
typedef struct {
    http_conn_t *poll; /* a pending long-poll GET */
    char *poll_hdrs;   /* its CORS headers, when there are any */
    ws_conn_t *probe;  /* a WebSocket being upgraded to */
    rbuf_t **outq;     /* packets waiting for a GET */
    uint32_t outq_len, outq_cap;
    size_t outq_bytes; /* their encoded size + EIO_QUEUED_PACKET_COST each; see queue_cap */
    bool probe_ok;     /* the probe WebSocket answered 2probe */
} eio_polling_t;

struct eio_session {
    /* The random part of its sid: the whole sid is the server's sid_prefix and these
     * SID_LEN characters (the prefix, the same for every session, is not repeated here). */
    char sid[SID_LEN + 1];
    uint8_t transport;
    uint8_t state;
    uint8_t protocol;   /* 4, or 3 (EIO=3, with allow_eio3) */
    bool awaiting_pong; /* a ping went out and no pong came back yet */
    /* That ping (v3: the last pong) may not have left the server: over polling no GET
     * carried it yet; over WebSocket it ends at byte ping_end of the connection's output
     * (see ping_read). (Both beside the bytes above: no padding, 8 bytes less per session.) */
    bool ping_unread;
    eio_server_t *srv;
    eio_session_t *hash_next;
    ws_conn_t *ws;     /* the WebSocket transport */
    eio_polling_t *pl; /* the polling transport's state; NULL for WebSocket */
    /* In ping_tq (waiting to ping), pong_tq (waiting for the pong, or, S_CLOSING, for the
     * client to fetch the close packet), reap_tq (S_CLOSING: destroyed on the next turn) or,
     * for a v3 session, v3_tq (waiting for the client's ping). */
    tq_entry_t hb;
    uint64_t ping_end;
    const char *close_reason; /* for a session in reap_tq */
    void *admit_handle;       /* from eio_config_t.admit */
    void *extra[];            /* eio_config_t.session_extra bytes for the layer above */
};

struct eio_server {
    net_loop_t *nl;
    eio_config_t cfg;
    eio_handler_t h;
    void *arg;
    eio_session_t **buckets;
    size_t nbuckets, count;
    timerq_t ping_tq, pong_tq, reap_tq;
    /* v3 sessions: the client pings; a session whose client has not pinged for pingInterval +
     * pingTimeout is closed (as engine.io does for EIO=3). */
    timerq_t v3_tq;
    rbuf_t *ping_pkt, *noop_pkt, *close_pkt, *pong_pkt;
    bool shutting_down;
    char cors_origins[512];
    char sid_prefix[SID_PREFIX_MAX + 2]; /* "<prefix>." or "" */
    slab_pool_t session_pool;            /* sessions with their session_extra (core/slab.h) */
    size_t sid_len;                      /* every sid of this server is this long */
    /* The open packet around the sid's random part, made once (open_packet): the head
     * "0{\"sid\":\"<prefix>" and the tail after the sid, without and with upgrades. */
    char open_head[SID_PREFIX_MAX + 16];
    char open_tail[2][128];
    uint8_t open_head_len, open_tail_len[2];
};

/* eio_server.c */
eio_session_t *eio_table_find(eio_server_t *srv, str_t sid);
/* The session whose sid's random part is rnd (SID_LEN characters), or NULL. */
eio_session_t *eio_table_find_rnd(eio_server_t *srv, const char *rnd);
void eio_session_destroy(eio_session_t *s, const char *reason);
void eio_session_close_deferred(eio_session_t *s, const char *reason);
void eio_handle_packet(eio_session_t *s, const eio_packet_t *p);
void eio_respond_error(eio_server_t *srv, http_conn_t *hc, const http_request_t *req, int code);
size_t eio_frame_payload_offset(const rbuf_t *r);
bool eio_frame_is_binary(const rbuf_t *r);

/* eio_polling.c */
/* Queues a packet for the next GET (answering a waiting one); over the cap the session is
 * closed as a slow reader. */
void eio_polling_send(eio_session_t *s, rbuf_t *pkt);
void eio_polling_outq_clear(eio_polling_t *pl);
/* Releases the polling state (after an upgrade, or with the session). */
void eio_polling_free(eio_session_t *s);
/* Answers the pending GET with a fixed body. */
void eio_polling_answer(eio_session_t *s, const char *body);
/* Answers the pending GET with every queued packet. */
void eio_polling_flush(eio_session_t *s);
/* A GET or POST for an existing polling session (hdrs: its CORS headers). */
int eio_polling_request(eio_server_t *srv, eio_session_t *s, http_conn_t *hc,
                        const http_request_t *req, str_t body, const char *hdrs);

#endif
