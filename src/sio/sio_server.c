/* Socket.IO v5 server: clients (one per Engine.IO session), namespaces, sockets. */
#include "sio/sio_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_scan.h"
#include "core/log.h"
#include "core/randid.h"
#include "sio/sio_packet.h"
#include "sio/sio_v3.h"

#define SIO_ID_LEN   20
#define SIO_NAME_MAX 128
/* Refused CONNECTs (unknown namespace, middleware refusal) one connection may make: each is
 * answered with a CONNECT_ERROR, so without a bound a client that never reads could have the
 * server queue answers up to the outbound cap without ever signing in. A real client retries a
 * refused CONNECT a few times at most; past this the connection is closed (it may reconnect). */
#define SIO_MAX_REFUSED_CONNECTS 16

typedef struct sio_client sio_client_t;

typedef struct pending_ack {
    uv_timer_t timer;
    struct pending_ack *next;
    sio_socket_t *socket;
    int64_t id;
    sio_ack_cb cb;
    void *ud;
} pending_ack_t;

struct sio_nsp {
    char name[SIO_NAME_MAX];
    size_t name_len;
    sio_server_t *srv;
    sio_nsp_handler_t h;
    void *arg;
    sio_nsp_t *next;
    sio_socket_t *head; /* every socket of the namespace (nsp_prev/nsp_next) */
    size_t count;
};

/* The socket id of the CONNECT answer is not kept: nothing asks for it later. */
struct sio_socket {
    uint32_t next_ack_id;
    bool connected;
    sio_client_t *client;
    sio_nsp_t *nsp;
    sio_socket_t *client_next;
    sio_socket_t *nsp_prev, *nsp_next;
    pending_ack_t *acks;
    void *data;
};

/* A BINARY_EVENT/BINARY_ACK waiting for its attachments. Only a socket connected to the
 * packet's namespace may start one, at most SIO_MAX_ATTACHMENTS attachments, and the packet
 * (its text and every attachment) holds at most maxPayload bytes: a client cannot make the
 * server keep more than that for it. */
typedef struct {
    char *pending;
    size_t pending_len;
    size_t bytes; /* pending_len + the attachments' bytes so far */
    sio_attachment_t *att;
    unsigned att_want, att_have;
} sio_binary_t;

/* Lives inside its Engine.IO session's allocation (eio_config_t.session_extra), with the
 * client's first socket: one connection, one namespace, no allocation of its own. */
struct sio_client {
    /* Its session and server are derived (client_eio, client_srv): no pointers back. */
    sio_socket_t *sockets;
    sio_binary_t *bin; /* NULL unless attachments are awaited */
    tq_entry_t connect_timer;
    uint32_t refused; /* CONNECTs answered with CONNECT_ERROR */
    bool first_used;  /* (beside refused: no padding, 8 bytes less per client) */
    bool open;        /* between eio_on_open and eio_on_close (the session has no data pointer:
                         8 bytes less per idle socket) */
    sio_socket_t first;
};

/* In every Engine.IO session (issue 17: idle memory per socket): a guard against growth. */
_Static_assert(sizeof(sio_client_t) <= 112, "a client with its first socket fits 112 bytes");

/* The Engine.IO handshake request and its client, set only while a v3 client's implicit
 * CONNECT to "/" runs (synchronously, from the open callback; loop thread only): see
 * sio_socket_handshake_query. Not a field of every client. */
static const sio_client_t *open_client;
static const http_request_t *open_req;

struct sio_server {
    net_loop_t *nl;
    sio_config_t cfg;
    eio_server_t *eio;
    sio_nsp_t *nsps;
    timerq_t connect_tq;
};

static inline eio_session_t *client_eio(const sio_client_t *c)
{
    return eio_session_of_extra((void *)c);
}

static inline sio_server_t *client_srv(const sio_client_t *c)
{
    return eio_session_server_arg(client_eio(c));
}

static void socket_close(sio_socket_t *s, const char *reason);
static void handle_connect_packet(sio_client_t *c, const sio_packet_t *p, bool v3);

/* ---- encoding ---- */

/* Builds the text packet: header (type, attachments, nsp, ack id) then data. */
/* The packet's header and its data (the n parts one after another) in one frame. */
#define SIO_PARTS_MAX 8
static rbuf_t *build_text_parts(const sio_nsp_t *nsp, int type, unsigned natt, int64_t ack_id,
                                const str_t *parts, size_t n)
{
    char hdr[SIO_NAME_MAX + 64];
    str_t all[1 + SIO_PARTS_MAX];
    size_t len = 0;
    if (n > SIO_PARTS_MAX) return NULL;
    for (size_t i = 0; i < n; i++) {
        all[1 + i] = parts[i];
        len += parts[i].len;
    }
    size_t hl = sio_packet_encode_header(hdr, type, str_make(nsp->name, nsp->name_len), natt,
                                         ack_id, len > 0);
    all[0] = str_make(hdr, hl);
    return eio_message_build_parts(all, 1 + n);
}

static rbuf_t *build_text(const sio_nsp_t *nsp, int type, unsigned natt, int64_t ack_id, str_t data)
{
    return build_text_parts(nsp, type, natt, ack_id, &data, 1);
}

static int build_packets(sio_nsp_t *nsp, int type, int64_t ack_id, str_t data,
                         const sio_attachment_t *att, unsigned natt, sio_built_t *out)
{
    out->natt = 0;
    out->att = NULL;
    int t = type;
    if (natt) t = type == SIO_EVENT ? SIO_BINARY_EVENT : SIO_BINARY_ACK;
    out->text = build_text(nsp, t, natt, ack_id, data);
    if (!out->text) return -1;
    if (natt) {
        out->att = calloc(natt, sizeof *out->att);
        if (!out->att) {
            sio_built_free(out);
            return -1;
        }
        for (unsigned i = 0; i < natt; i++) {
            out->att[i] = eio_message_build(true, att[i].data, att[i].len);
            if (!out->att[i]) {
                sio_built_free(out);
                return -1;
            }
            out->natt = i + 1;
        }
    }
    return 0;
}

int sio_build_event(sio_nsp_t *nsp, str_t data, const sio_attachment_t *att, unsigned natt,
                    sio_built_t *out)
{
    return build_packets(nsp, SIO_EVENT, -1, data, att, natt, out);
}

int sio_build_event_parts(sio_nsp_t *nsp, const str_t *parts, size_t n, sio_built_t *out)
{
    out->natt = 0;
    out->att = NULL;
    out->text = build_text_parts(nsp, SIO_EVENT, 0, -1, parts, n);
    return out->text ? 0 : -1;
}

void sio_built_free(sio_built_t *b)
{
    rbuf_unref(b->text);
    for (unsigned i = 0; i < b->natt; i++) rbuf_unref(b->att[i]);
    free(b->att);
    b->text = NULL;
    b->att = NULL;
    b->natt = 0;
}

void sio_socket_send_built(sio_socket_t *s, const sio_built_t *b)
{
    if (!s->connected) return;
    eio_session_send_built(client_eio(s->client), b->text);
    for (unsigned i = 0; i < b->natt; i++) eio_session_send_built(client_eio(s->client), b->att[i]);
}

static int send_packets(sio_socket_t *s, int type, int64_t ack_id, str_t data,
                        const sio_attachment_t *att, unsigned natt)
{
    if (!s->connected) return -1;
    sio_built_t b;
    if (build_packets(s->nsp, type, ack_id, data, att, natt, &b) < 0) return -1;
    sio_socket_send_built(s, &b);
    sio_built_free(&b);
    return 0;
}

int sio_socket_emit(sio_socket_t *s, str_t data, const sio_attachment_t *att, unsigned natt)
{
    return send_packets(s, SIO_EVENT, -1, data, att, natt);
}

int sio_socket_ack(sio_socket_t *s, int64_t ack_id, str_t data, const sio_attachment_t *att,
                   unsigned natt)
{
    return send_packets(s, SIO_ACK, ack_id, data, att, natt);
}

int sio_socket_ack_parts(sio_socket_t *s, int64_t ack_id, const str_t *parts, size_t n)
{
    if (!s->connected) return -1;
    sio_built_t b = {build_text_parts(s->nsp, SIO_ACK, 0, ack_id, parts, n), NULL, 0};
    if (!b.text) return -1;
    sio_socket_send_built(s, &b);
    sio_built_free(&b);
    return 0;
}

/* ---- acknowledgements requested by the server ---- */

static void ack_free_cb(uv_handle_t *h)
{
    free(h->data);
}

static void ack_remove(sio_socket_t *s, pending_ack_t *a)
{
    for (pending_ack_t **pp = &s->acks; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, ack_free_cb);
}

static void on_ack_timeout(uv_timer_t *t)
{
    pending_ack_t *a = t->data;
    sio_socket_t *s = a->socket;
    sio_ack_cb cb = a->cb;
    void *ud = a->ud;
    ack_remove(s, a);
    cb(s, ud, NULL);
}

int sio_socket_emit_with_ack(sio_socket_t *s, str_t data, uint32_t timeout_ms, sio_ack_cb cb,
                             void *ud)
{
    if (!s->connected) return -1;
    pending_ack_t *a = calloc(1, sizeof *a);
    if (!a) return -1;
    a->socket = s;
    a->id = s->next_ack_id++;
    a->cb = cb;
    a->ud = ud;
    uv_timer_init(client_srv(s->client)->nl->loop, &a->timer);
    a->timer.data = a;
    uv_timer_start(&a->timer, on_ack_timeout, timeout_ms, 0);
    a->next = s->acks;
    s->acks = a;
    return send_packets(s, SIO_EVENT, a->id, data, NULL, 0);
}

size_t sio_nsp_num_sockets(const sio_nsp_t *nsp)
{
    return nsp->count;
}

/* ---- sockets ---- */

sio_nsp_t *sio_socket_nsp(const sio_socket_t *s)
{
    return s->nsp;
}

eio_session_t *sio_socket_eio(const sio_socket_t *s)
{
    return client_eio(s->client);
}

void sio_socket_set_data(sio_socket_t *s, void *data)
{
    s->data = data;
}

void *sio_socket_data(const sio_socket_t *s)
{
    return s->data;
}

static sio_socket_t *client_socket(sio_client_t *c, str_t nsp)
{
    for (sio_socket_t *s = c->sockets; s; s = s->client_next)
        if (s->nsp->name_len == nsp.len && memcmp(s->nsp->name, nsp.ptr, nsp.len) == 0) return s;
    return NULL;
}

static sio_nsp_t *find_nsp(sio_server_t *srv, str_t name)
{
    for (sio_nsp_t *n = srv->nsps; n; n = n->next)
        if (n->name_len == name.len && memcmp(n->name, name.ptr, name.len) == 0) return n;
    return NULL;
}

/* Unlinks and frees a socket; on_disconnect runs first if it was connected. */
static void socket_close(sio_socket_t *s, const char *reason)
{
    sio_client_t *c = s->client;
    sio_nsp_t *nsp = s->nsp;
    for (sio_socket_t **pp = &c->sockets; *pp; pp = &(*pp)->client_next)
        if (*pp == s) {
            *pp = s->client_next;
            break;
        }
    bool was_connected = s->connected;
    s->connected = false;
    if (was_connected) {
        if (s->nsp_prev)
            s->nsp_prev->nsp_next = s->nsp_next;
        else
            nsp->head = s->nsp_next;
        if (s->nsp_next) s->nsp_next->nsp_prev = s->nsp_prev;
        nsp->count--;
    }
    while (s->acks) {
        pending_ack_t *a = s->acks;
        sio_ack_cb cb = a->cb;
        void *ud = a->ud;
        ack_remove(s, a);
        cb(s, ud, NULL);
    }
    if (was_connected && nsp->h.on_disconnect) nsp->h.on_disconnect(s, nsp->arg, reason);
    if (s == &c->first)
        c->first_used = false;
    else
        free(s);
}

void sio_socket_disconnect(sio_socket_t *s, bool close_transport)
{
    if (!s->connected) return;
    sio_client_t *c = s->client;
    send_packets(s, SIO_DISCONNECT, -1, STR_NULL, NULL, 0);
    socket_close(s, "server namespace disconnect");
    if (close_transport) eio_session_close(client_eio(c), "server namespace disconnect");
}

/* ---- packets from clients ---- */

static void client_protocol_error(sio_client_t *c, const char *why)
{
    log_debug("sio %s: %s, closing", eio_session_id(client_eio(c)), why);
    eio_session_close(client_eio(c), "parse error");
}

/* v3: the auth payload is the query the client put in the namespace (v3query, without the
 * '?'; STR_NULL: none), as socket.io 4 reads it. */
static void handle_connect(sio_client_t *c, const sio_packet_t *p_in, str_t v3query)
{
    bool v3 = eio_session_protocol(client_eio(c)) == 3;
    sio_packet_t v3p;
    const sio_packet_t *p = p_in;
    buf_t v3auth;
    buf_init(&v3auth);
    if (v3) {
        v3p = *p_in;
        sio_v3_query_auth(v3query, &v3auth);
        v3p.data = str_make(v3auth.data, v3auth.len);
        p = &v3p;
    }
    handle_connect_packet(c, p, v3);
    buf_free(&v3auth);
}

static void handle_connect_packet(sio_client_t *c, const sio_packet_t *p, bool v3)
{
    sio_server_t *srv = client_srv(c);
    if (c->refused >= SIO_MAX_REFUSED_CONNECTS) {
        client_protocol_error(c, "too many refused CONNECTs");
        return;
    }
    sio_nsp_t *nsp = find_nsp(srv, p->nsp);
    if (!nsp) {
        c->refused++;
        buf_t b;
        buf_init(&b);
        char hdr[SIO_NAME_MAX + 64];
        size_t nl = p->nsp.len < SIO_NAME_MAX ? p->nsp.len : SIO_NAME_MAX;
        size_t hl =
            sio_packet_encode_header(hdr, SIO_CONNECT_ERROR, str_make(p->nsp.ptr, nl), 0, -1, true);
        buf_append(&b, hdr, hl);
        buf_append_str(&b, "{\"message\":\"Invalid namespace\"}");
        eio_session_send(client_eio(c), false, b.data, b.len);
        buf_free(&b);
        return;
    }
    if (client_socket(c, p->nsp)) {
        client_protocol_error(c, "CONNECT to a namespace already connected");
        return;
    }
    sio_socket_t *s;
    if (!c->first_used) {
        s = &c->first;
        memset(s, 0, sizeof *s);
        c->first_used = true;
    } else if (!(s = calloc(1, sizeof *s))) {
        return;
    }
    s->client = c;
    s->nsp = nsp;
    s->client_next = c->sockets;
    c->sockets = s;
    buf_t err; /* on refusal the CONNECT_ERROR object; on success extra CONNECT fields */
    buf_init(&err);
    if (nsp->h.authorize) {
        if (nsp->h.authorize(s, nsp->arg, p->data, &err) < 0) {
            c->refused++;
            str_t e = err.len ? str_make(err.data, err.len) : STR_LIT("{\"message\":\"refused\"}");
            buf_t e3;
            buf_init(&e3);
            if (v3) {
                sio_v3_connect_error(e, &e3);
                e = str_make(e3.data, e3.len);
            }
            rbuf_t *r = build_text(nsp, SIO_CONNECT_ERROR, 0, -1, e);
            buf_free(&e3);
            if (r) {
                eio_session_send_built(client_eio(c), r);
                rbuf_unref(r);
            }
            buf_free(&err);
            socket_close(s, "refused");
            return;
        }
    }
    timerq_remove(&c->connect_timer);
    s->connected = true;
    s->nsp_next = nsp->head;
    if (nsp->head) nsp->head->nsp_prev = s;
    nsp->head = s;
    nsp->count++;
    buf_t body;
    buf_init(&body);
    char id[SIO_ID_LEN + 1];
    randid_generate(id, SIO_ID_LEN);
    /* A v3 client gets a bare CONNECT (no sid, no pid: no connection state recovery). */
    if (!v3) { /* {"sid":"<id>"[,<err>]} by hand: buf_printf cost ~3k instructions */
        buf_append(&body, "{\"sid\":\"", 8);
        buf_append_str(&body, id);
        buf_append(&body, "\"", 1);
        if (err.len) {
            buf_append(&body, ",", 1);
            buf_append(&body, err.data, err.len);
        }
        buf_append(&body, "}", 1);
    }
    buf_free(&err);
    rbuf_t *r = build_text(nsp, SIO_CONNECT, 0, -1, str_make(body.data, body.len));
    buf_free(&body);
    if (r) {
        eio_session_send_built(client_eio(c), r);
        rbuf_unref(r);
    }
    if (nsp->h.on_connection) nsp->h.on_connection(s, nsp->arg);
}

static void dispatch_event(sio_client_t *c, const sio_packet_t *p, const sio_attachment_t *att,
                           unsigned natt)
{
    sio_socket_t *s = client_socket(c, p->nsp);
    if (!s || !s->connected) {
        /* As the reference server: a packet for a namespace the client has not joined is an
         * invalid state, and the connection is closed. */
        client_protocol_error(c, "packet for a namespace that is not connected");
        return;
    }
    sio_event_t ev = {STR_NULL, p->data, STR_NULL, att, natt, p->ack_id};
    if (p->type == SIO_EVENT || p->type == SIO_BINARY_EVENT) {
        char name[256];
        int n = sio_event_split(p->data, name, sizeof name, &ev.rest);
        if (n < 0) {
            client_protocol_error(c, "invalid event");
            return;
        }
        ev.name = str_make(name, (size_t)n);
        if (s->nsp->h.on_event) s->nsp->h.on_event(s, s->nsp->arg, &ev);
        return;
    }
    for (pending_ack_t *a = s->acks; a; a = a->next)
        if (a->id == p->ack_id) {
            sio_ack_cb cb = a->cb;
            void *ud = a->ud;
            ack_remove(s, a);
            cb(s, ud, &ev);
            return;
        }
}

static void pending_clear(sio_client_t *c)
{
    sio_binary_t *b = c->bin;
    if (!b) return;
    free(b->pending);
    for (unsigned i = 0; i < b->att_have; i++) free((void *)b->att[i].data);
    free(b->att);
    free(b);
    c->bin = NULL;
}

static void handle_text(sio_client_t *c, const char *data, size_t len)
{
    if (c->bin) {
        client_protocol_error(c, "text packet while attachments were expected");
        return;
    }
    /* A v3 CONNECT "0/nsp?query,..." carries the client's query (a token, say) in the
     * namespace, longer than a namespace may be: it is taken out before decoding. */
    str_t v3query = STR_NULL;
    char *v3text = NULL;
    if (len >= 2 && data[0] == '0' + SIO_CONNECT && data[1] == '/' &&
        eio_session_protocol(client_eio(c)) == 3) {
        const char *comma = memchr(data, ',', len);
        size_t nsp_end = comma ? (size_t)(comma - data) : len;
        const char *q = memchr(data, '?', nsp_end);
        if (q && (v3text = malloc(len))) {
            size_t head = (size_t)(q - data);
            v3query = str_make(q + 1, nsp_end - head - 1);
            memcpy(v3text, data, head);
            memcpy(v3text + head, data + nsp_end, len - nsp_end);
            data = v3text;
            len = head + (len - nsp_end);
        }
    }
    sio_packet_t p;
    if (sio_packet_decode(data, len, &p) < 0) {
        free(v3text);
        client_protocol_error(c, "invalid packet");
        return;
    }
    if (v3text && p.type != SIO_CONNECT) abort(); /* unreachable: the type byte is kept */
    switch (p.type) {
    case SIO_CONNECT:
        handle_connect(c, &p, v3query);
        free(v3text);
        return;
    case SIO_DISCONNECT: {
        sio_socket_t *s = client_socket(c, p.nsp);
        if (s)
            socket_close(s, "client namespace disconnect");
        else
            client_protocol_error(c, "DISCONNECT from a namespace that is not connected");
        break;
    }
    case SIO_EVENT:
    case SIO_ACK:
        dispatch_event(c, &p, NULL, 0);
        break;
    case SIO_BINARY_EVENT:
    case SIO_BINARY_ACK: {
        /* Checked before anything is kept: a client that has not joined the namespace may
         * send nothing but CONNECT (the reference closes on a packet for a namespace not
         * joined), so it cannot park attachments here either. */
        sio_socket_t *s = client_socket(c, p.nsp);
        if (!s || !s->connected) {
            client_protocol_error(c, "packet for a namespace that is not connected");
            break;
        }
        if (sio_check_placeholders(p.data, p.attachments) < 0) {
            client_protocol_error(c, "invalid placeholders");
            break;
        }
        if (p.attachments == 0) {
            dispatch_event(c, &p, NULL, 0);
            break;
        }
        c->bin = calloc(1, sizeof *c->bin);
        if (c->bin) {
            c->bin->pending = malloc(len);
            c->bin->att = calloc(p.attachments, sizeof *c->bin->att);
        }
        if (!c->bin || !c->bin->pending || !c->bin->att) {
            pending_clear(c);
            client_protocol_error(c, "out of memory");
            break;
        }
        memcpy(c->bin->pending, data, len);
        c->bin->pending_len = len;
        c->bin->bytes = len;
        c->bin->att_want = p.attachments;
        break;
    }
    default:
        client_protocol_error(c, "unexpected packet type");
        break;
    }
}

static void handle_binary(sio_client_t *c, const uint8_t *data, size_t len)
{
    sio_binary_t *b = c->bin;
    if (!b) {
        client_protocol_error(c, "unexpected binary message");
        return;
    }
    size_t max = client_srv(c)->cfg.eio.max_payload;
    if (b->bytes > max || len > max - b->bytes) {
        log_debug("sio %s: attachments over maxPayload (%zu bytes) for one packet",
                  eio_session_id(client_eio(c)), max);
        pending_clear(c);
        client_protocol_error(c, "attachments over maxPayload");
        return;
    }
    b->bytes += len;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        client_protocol_error(c, "out of memory");
        return;
    }
    memcpy(copy, data, len);
    b->att[b->att_have++] = (sio_attachment_t){copy, len};
    if (b->att_have < b->att_want) return;
    sio_packet_t p;
    /* The stored header decoded before; decode again to point into our copy. */
    if (sio_packet_decode(b->pending, b->pending_len, &p) == 0) {
        c->bin = NULL; /* the handler may start the next one */
        dispatch_event(c, &p, b->att, b->att_have);
        free(b->pending);
        for (unsigned i = 0; i < b->att_have; i++) free((void *)b->att[i].data);
        free(b->att);
        free(b);
    } else {
        pending_clear(c);
    }
}

/* ---- Engine.IO callbacks ---- */

static void on_connect_timeout(timerq_t *q, tq_entry_t *e)
{
    sio_client_t *c = (sio_client_t *)((char *)e - offsetof(sio_client_t, connect_timer));
    log_debug("sio %s: no namespace joined in time, closing", eio_session_id(client_eio(c)));
    eio_session_close(client_eio(c), "connect timeout");
}

static int eio_on_open(eio_session_t *e, void *arg, const http_request_t *req)
{
    sio_server_t *srv = arg;
    sio_client_t *c = eio_session_extra(e);
    c->open = true;
    timerq_add(&srv->connect_tq, &c->connect_timer);
    if (eio_session_protocol(e) == 3) {
        /* socket.io-client 2.x sends no CONNECT for "/": socket.io 4 connects it at once, with
         * an empty auth payload (the client's query is in the handshake request). */
        sio_packet_t p = {
            .type = SIO_CONNECT, .nsp = STR_LIT("/"), .ack_id = -1, .data = STR_LIT("{}")};
        open_client = c;
        open_req = req;
        handle_connect_packet(c, &p, true);
        open_client = NULL;
        open_req = NULL;
    }
    return 0;
}

static void eio_on_message(eio_session_t *e, void *arg, bool binary, const uint8_t *data,
                           size_t len)
{
    sio_client_t *c = eio_session_extra(e);
    if (!c->open) return;
    if (binary)
        handle_binary(c, data, len);
    else
        handle_text(c, (const char *)data, len);
}

static void eio_on_close(eio_session_t *e, void *arg, const char *reason)
{
    sio_client_t *c = eio_session_extra(e);
    if (!c->open) return;
    c->open = false;
    timerq_remove(&c->connect_timer);
    while (c->sockets) socket_close(c->sockets, reason);
    pending_clear(c);
}

static const eio_handler_t sio_eio_handler = {eio_on_open, eio_on_message, eio_on_close};

/* ---- server ---- */

sio_server_t *sio_server_new(net_loop_t *nl, const sio_config_t *cfg)
{
    sio_server_t *srv = calloc(1, sizeof *srv);
    if (!srv) return NULL;
    srv->nl = nl;
    srv->cfg = *cfg;
    eio_config_t ecfg = cfg->eio;
    ecfg.session_extra = sizeof(sio_client_t);
    srv->eio = eio_server_new(nl, &ecfg, &sio_eio_handler, srv);
    if (!srv->eio) {
        free(srv);
        return NULL;
    }
    timerq_init(nl->loop, &srv->connect_tq, cfg->connect_timeout_ms, on_connect_timeout);
    return srv;
}

str_t sio_socket_handshake_query(const sio_socket_t *s)
{
    return s->client == open_client && open_req ? open_req->query : STR_NULL;
}

eio_server_t *sio_server_eio(sio_server_t *srv)
{
    return srv->eio;
}

sio_nsp_t *sio_server_add_nsp(sio_server_t *srv, const char *name, const sio_nsp_handler_t *h,
                              void *arg)
{
    size_t n = strlen(name);
    if (n == 0 || n >= SIO_NAME_MAX || name[0] != '/') return NULL;
    sio_nsp_t *nsp = calloc(1, sizeof *nsp);
    if (!nsp) return NULL;
    memcpy(nsp->name, name, n + 1);
    nsp->name_len = n;
    nsp->srv = srv;
    nsp->h = *h;
    nsp->arg = arg;
    nsp->next = srv->nsps;
    srv->nsps = nsp;
    return nsp;
}

void sio_server_shutdown(sio_server_t *srv)
{
    eio_server_shutdown(srv->eio);
}

void sio_server_close(sio_server_t *srv)
{
    eio_server_close(srv->eio);
    timerq_close(&srv->connect_tq);
}

void sio_server_free(sio_server_t *srv)
{
    if (!srv) return;
    eio_server_free(srv->eio);
    while (srv->nsps) {
        sio_nsp_t *n = srv->nsps;
        srv->nsps = n->next;
        free(n);
    }
    free(srv);
}
