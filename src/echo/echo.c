/* `parlor echo`: a server configured like the Socket.IO protocol test suites expect, echoing
 * Engine.IO messages on /engine.io/ and Socket.IO events on /socket.io/. */
#include "echo/echo.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "sio/sio_server.h"

typedef struct {
    long long port;
    char *host;
    long long max_outbound;
    long long header_timeout_ms;
    long long idle_timeout_ms;
    long long ping_interval_ms;
    long long ping_timeout_ms;
    long long connect_timeout_ms;
    long long max_payload;
    char *log_level;
    int allow_eio3;
} echo_config_t;

#define OFF(f) offsetof(echo_config_t, f)
static const config_option_t echo_options[] = {
    {"port", OPT_INT, OFF(port), "3000", 0, 65535, "TCP port to listen on (0: any free port)"},
    {"host", OPT_STRING, OFF(host), "::", 0, 0, "address to listen on (:: = all, IPv6 and IPv4)"},
    {"max-outbound-bytes", OPT_INT, OFF(max_outbound), "4194304", 4096, 1LL << 32,
     "unsent bytes per connection before it is cut as a slow reader"},
    {"header-timeout-ms", OPT_INT, OFF(header_timeout_ms), "10000", 0, 3600000,
     "time to send a complete HTTP request (0: none)"},
    {"idle-timeout-ms", OPT_INT, OFF(idle_timeout_ms), "60000", 0, 3600000,
     "idle keep-alive HTTP connections are closed after this (0: never)"},
    {"ping-interval-ms", OPT_INT, OFF(ping_interval_ms), "300", 10, 3600000,
     "Engine.IO pingInterval"},
    {"ping-timeout-ms", OPT_INT, OFF(ping_timeout_ms), "200", 10, 3600000, "Engine.IO pingTimeout"},
    {"connect-timeout-ms", OPT_INT, OFF(connect_timeout_ms), "1000", 10, 3600000,
     "Socket.IO: time to join a namespace after the handshake"},
    {"max-payload", OPT_INT, OFF(max_payload), "1000000", 1024, 100000000,
     "Engine.IO maxPayload in bytes"},
    {"log-level", OPT_STRING, OFF(log_level), "info", 0, 0, "debug, info, warn, error or off"},
    {"allow-eio3", OPT_BOOL, OFF(allow_eio3), "false", 0, 0,
     "also accept Engine.IO v3 clients (socket.io-client 2.x) on both endpoints"},
};
#define NOPTS (sizeof echo_options / sizeof echo_options[0])

typedef struct {
    uv_loop_t *loop;
    net_loop_t nl;
    http_server_t *http;
    net_listener_t *listener;
    eio_server_t *raw;
    sio_server_t *sio;
    uv_signal_t sigint, sigterm;
    bool stopping;
} echo_t;

/* ---- raw Engine.IO echo ---- */

static void raw_on_message(eio_session_t *s, void *arg, bool binary, const uint8_t *data,
                           size_t len)
{
    eio_session_send(s, binary, data, len);
}

static const eio_handler_t raw_handler = {NULL, raw_on_message, NULL};

/* ---- Socket.IO echo ---- */

static int echo_authorize(sio_socket_t *s, void *arg, str_t auth, buf_t *err)
{
    /* Remember the auth payload for the `auth` event sent once connected. */
    buf_t *copy = malloc(sizeof *copy);
    if (!copy) return -1;
    buf_init(copy);
    buf_append_str(copy, "[\"auth\",");
    if (auth.len)
        buf_append(copy, auth.ptr, auth.len);
    else
        buf_append_str(copy, "{}");
    buf_append_str(copy, "]");
    sio_socket_set_data(s, copy);
    return 0;
}

static void echo_on_connection(sio_socket_t *s, void *arg)
{
    buf_t *b = sio_socket_data(s);
    sio_socket_set_data(s, NULL);
    if (!b) return;
    sio_socket_emit(s, str_make(b->data, b->len), NULL, 0);
    buf_free(b);
    free(b);
}

/* The client's answer to the server's own ack request, echoed back as an event. */
static void echo_acked(sio_socket_t *s, void *ud, const sio_event_t *reply)
{
    if (!reply) {
        sio_socket_emit(s, STR_LIT("[\"ack-timeout\"]"), NULL, 0);
        return;
    }
    /* reply->data is the ack's argument array "[a,b]" (or "[]"). */
    buf_t b;
    buf_init(&b);
    buf_append_str(&b, "[\"ack-reply\"");
    if (reply->data.len > 2) {
        buf_append_str(&b, ",");
        buf_append(&b, reply->data.ptr + 1, reply->data.len - 1);
    } else {
        buf_append_str(&b, "]");
    }
    sio_socket_emit(s, str_make(b.data, b.len), NULL, 0);
    buf_free(&b);
}

static void echo_on_event(sio_socket_t *s, void *arg, const sio_event_t *ev)
{
    buf_t b;
    buf_init(&b);
    if (str_eq_cstr(ev->name, "message")) {
        /* Same arguments, byte for byte, under another name. */
        buf_append_str(&b, "[\"message-back\"");
        buf_append(&b, ev->rest.ptr, ev->rest.len);
        sio_socket_emit(s, str_make(b.data, b.len), ev->att, ev->natt);
    } else if (str_eq_cstr(ev->name, "message-with-ack") && ev->ack_id >= 0) {
        /* rest is ",a,b]" or "]": the ack's argument array is "[a,b]" or "[]". */
        buf_append_str(&b, "[");
        if (ev->rest.len > 1)
            buf_append(&b, ev->rest.ptr + 1, ev->rest.len - 1);
        else
            buf_append_str(&b, "]");
        sio_socket_ack(s, ev->ack_id, str_make(b.data, b.len), ev->att, ev->natt);
    } else if (str_eq_cstr(ev->name, "request-ack")) {
        /* Server-side emit with an acknowledgement: "ack-request" with the same arguments, then
         * "ack-reply" with what the client acknowledged, or "ack-timeout" after 1 s. */
        buf_append_str(&b, "[\"ack-request\"");
        buf_append(&b, ev->rest.ptr, ev->rest.len);
        sio_socket_emit_with_ack(s, str_make(b.data, b.len), 1000, echo_acked, NULL);
    }
    buf_free(&b);
}

static void echo_on_disconnect(sio_socket_t *s, void *arg, const char *reason)
{
    buf_t *b = sio_socket_data(s);
    if (b) {
        buf_free(b);
        free(b);
    }
}

static const sio_nsp_handler_t echo_nsp = {echo_authorize, echo_on_connection, echo_on_event,
                                           echo_on_disconnect};

/* ---- lifecycle ---- */

static void close_conn(net_conn_t *c, void *arg)
{
    net_conn_close_after_write(c);
}

static void on_signal(uv_signal_t *h, int signum)
{
    echo_t *e = h->data;
    if (e->stopping) return;
    e->stopping = true;
    log_info("signal %d: shutting down", signum);
    net_listener_close(e->listener);
    eio_server_shutdown(e->raw);
    sio_server_shutdown(e->sio);
    net_foreach_conn(&e->nl, close_conn, NULL);
    eio_server_close(e->raw);
    sio_server_close(e->sio);
    net_loop_close(&e->nl);
    uv_close((uv_handle_t *)&e->sigint, NULL);
    uv_close((uv_handle_t *)&e->sigterm, NULL);
}

int echo_main(int argc, char **argv)
{
    echo_config_t cfg;
    char err[256];
    char *pos[1];
    int npos;
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: parlor echo [options]\n\n");
            config_print_help(echo_options, NOPTS, stdout);
            return 0;
        }
    if (config_load(echo_options, NOPTS, &cfg, argc, argv, pos, 0, &npos, err, sizeof err) < 0) {
        fprintf(stderr, "parlor echo: %s\n", err);
        config_free(echo_options, NOPTS, &cfg);
        return 2;
    }
    int lvl = log_level_parse(cfg.log_level);
    if (lvl < 0) {
        fprintf(stderr, "parlor echo: invalid log-level '%s'\n", cfg.log_level);
        config_free(echo_options, NOPTS, &cfg);
        return 2;
    }
    log_level = lvl;
    signal(SIGPIPE, SIG_IGN);

    echo_t e = {0};
    e.loop = uv_default_loop();
    net_limits_t limits = {
        .max_inbound = (size_t)cfg.max_payload + 64 * 1024,
        .max_outbound = (size_t)cfg.max_outbound,
        .header_timeout_ms = (uint64_t)cfg.header_timeout_ms,
        .idle_timeout_ms = (uint64_t)cfg.idle_timeout_ms,
        .send_timeout_ms = 60000,
    };
    net_loop_init(&e.nl, e.loop, &limits);
    http_server_config_t hcfg = {.max_head = 16 * 1024, .max_body = (size_t)cfg.max_payload};
    e.http = http_server_new(&e.nl, &hcfg);
    sio_config_t scfg = {
        .eio = {.ping_interval_ms = (uint32_t)cfg.ping_interval_ms,
                .ping_timeout_ms = (uint32_t)cfg.ping_timeout_ms,
                .max_payload = (size_t)cfg.max_payload,
                .cors_origins = "*",
                .allow_eio3 = cfg.allow_eio3 != 0},
        .connect_timeout_ms = (uint32_t)cfg.connect_timeout_ms,
    };
    e.raw = eio_server_new(&e.nl, &scfg.eio, &raw_handler, &e);
    e.sio = sio_server_new(&e.nl, &scfg);
    sio_server_add_nsp(e.sio, "/", &echo_nsp, &e);
    sio_server_add_nsp(e.sio, "/custom", &echo_nsp, &e);
    http_server_route(e.http, "/engine.io/", eio_server_handle, e.raw);
    http_server_route(e.http, "/socket.io/", eio_server_handle, sio_server_eio(e.sio));

    /* Handlers first: a SIGTERM right after "listening" must already stop cleanly. */
    uv_signal_init(e.loop, &e.sigint);
    uv_signal_init(e.loop, &e.sigterm);
    e.sigint.data = e.sigterm.data = &e;
    uv_signal_start(&e.sigint, on_signal, SIGINT);
    uv_signal_start(&e.sigterm, on_signal, SIGTERM);
    int r = net_listen(&e.nl, cfg.host, (int)cfg.port, http_server_accept, e.http, &e.listener);
    if (r < 0 && !strcmp(cfg.host, "::")) {
        /* No IPv6 on this machine: every IPv4 address instead. */
        r = net_listen(&e.nl, "0.0.0.0", (int)cfg.port, http_server_accept, e.http, &e.listener);
    }
    if (r < 0) {
        log_error("cannot listen on %s port %lld: %s", cfg.host, cfg.port, uv_strerror(r));
        return 1;
    }
    log_info("parlor echo listening on %s port %d", cfg.host, net_listener_port(e.listener));

    uv_run(e.loop, UV_RUN_DEFAULT);

    sio_server_free(e.sio);
    eio_server_free(e.raw);
    http_server_free(e.http);
    uv_loop_close(e.loop);
    config_free(echo_options, NOPTS, &cfg);
    log_info("stopped");
    return 0;
}
