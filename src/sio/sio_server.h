/* Socket.IO v5 server on top of Engine.IO: namespaces with a connect middleware, events and
 * acknowledgements both ways, binary attachments and encode-once sends. Rooms are not here: the
 * chat reaches users through its presence table (docs/architecture.md). */
#ifndef PARLOR_SIO_SERVER_H
#define PARLOR_SIO_SERVER_H

#include "core/buf.h"
#include "eio/eio_server.h"

typedef struct sio_server sio_server_t;
typedef struct sio_nsp sio_nsp_t;
typedef struct sio_socket sio_socket_t;

typedef struct {
    const uint8_t *data;
    size_t len;
} sio_attachment_t;

/* An EVENT or ACK received from a client. Everything is valid only during the callback. */
typedef struct {
    str_t name; /* decoded event name (empty for acks) */
    str_t data; /* the JSON array as sent: ["name",arg...] or [arg...] for acks */
    str_t rest; /* the text after the event name: ",arg...]" or "]" */
    const sio_attachment_t *att;
    unsigned natt;
    int64_t ack_id; /* -1 when the client wants no acknowledgement */
} sio_event_t;

typedef struct {
    /* Connect middleware. auth: the CONNECT payload (JSON object text, empty when none).
     * Return 0 to accept (anything written to err is added as extra fields to the CONNECT
     * reply, e.g. "pid":"..."), or write a JSON object ({"message":...,"data":...}) to err and
     * return -1 to refuse with CONNECT_ERROR. */
    int (*authorize)(sio_socket_t *s, void *arg, str_t auth, buf_t *err);
    /* The socket is connected (CONNECT answered). */
    void (*on_connection)(sio_socket_t *s, void *arg);
    void (*on_event)(sio_socket_t *s, void *arg, const sio_event_t *ev);
    /* The socket is gone; it is freed right after. */
    void (*on_disconnect)(sio_socket_t *s, void *arg, const char *reason);
} sio_nsp_handler_t;

typedef struct {
    eio_config_t eio;
    uint32_t connect_timeout_ms;
} sio_config_t;

sio_server_t *sio_server_new(net_loop_t *nl, const sio_config_t *cfg);
/* Every client is disconnected (transport closed); then free with sio_server_free. */
void sio_server_shutdown(sio_server_t *srv);
/* Closes the server's timers (after shutdown); sio_server_free once the loop has ended. */
void sio_server_close(sio_server_t *srv);
void sio_server_free(sio_server_t *srv);
/* Route this on the HTTP server: http_server_route(http, "/socket.io/", eio_server_handle,
 * sio_server_eio(srv)). */
eio_server_t *sio_server_eio(sio_server_t *srv);
sio_nsp_t *sio_server_add_nsp(sio_server_t *srv, const char *name, const sio_nsp_handler_t *h,
                              void *arg);

sio_nsp_t *sio_socket_nsp(const sio_socket_t *s);
eio_session_t *sio_socket_eio(const sio_socket_t *s);
void sio_socket_set_data(sio_socket_t *s, void *data);
void *sio_socket_data(const sio_socket_t *s);
/* The query string of the Engine.IO handshake ("a=1&b=2"), available to the authorize
 * middleware only during the implicit CONNECT to "/" of an Engine.IO v3 client
 * (socket.io-client 2.x sends its credentials there: io(url, {query: {token}})); STR_NULL
 * otherwise. */
str_t sio_socket_handshake_query(const sio_socket_t *s);

/* Emits data, a JSON array ["event",arg...] whose placeholders number the attachments. */
int sio_socket_emit(sio_socket_t *s, str_t data, const sio_attachment_t *att, unsigned natt);
/* Answers the client's ack_id with data, a JSON array of arguments. */
int sio_socket_ack(sio_socket_t *s, int64_t ack_id, str_t data, const sio_attachment_t *att,
                   unsigned natt);
/* The same without attachments, data being the n parts (at most 8) one after another: the
 * caller need not join them first. */
int sio_socket_ack_parts(sio_socket_t *s, int64_t ack_id, const str_t *parts, size_t n);
/* Emits and waits for the client's acknowledgement: cb gets the reply, or NULL on timeout or
 * disconnect. */
typedef void (*sio_ack_cb)(sio_socket_t *s, void *ud, const sio_event_t *reply);
int sio_socket_emit_with_ack(sio_socket_t *s, str_t data, uint32_t timeout_ms, sio_ack_cb cb,
                             void *ud);
/* Server-side disconnect: DISCONNECT is sent, on_disconnect runs ("server namespace
 * disconnect"); with close_transport the whole Engine.IO session is closed too. */
void sio_socket_disconnect(sio_socket_t *s, bool close_transport);

/* Encode once, send to many: build the packets of an event, then queue them per socket. */
typedef struct {
    rbuf_t *text;
    rbuf_t **att;
    unsigned natt;
} sio_built_t;
int sio_build_event(sio_nsp_t *nsp, str_t data, const sio_attachment_t *att, unsigned natt,
                    sio_built_t *out);
/* The same without attachments, data being the n parts (at most 8) one after another. */
int sio_build_event_parts(sio_nsp_t *nsp, const str_t *parts, size_t n, sio_built_t *out);
void sio_socket_send_built(sio_socket_t *s, const sio_built_t *b);
void sio_built_free(sio_built_t *b);
size_t sio_nsp_num_sockets(const sio_nsp_t *nsp);

#endif
