/* The REST API of docs/api.md: accounts, conversations, messages, receipts, health. */
#ifndef PARLOR_API_H
#define PARLOR_API_H

#include "chat/chat.h"
#include "http/http_server.h"

typedef struct api api_t;

typedef struct {
    const char *cors_origins;  /* "" = same origin only */
    int64_t token_ttl_s;       /* tokens issued by register/login */
    bool accounts_enabled;     /* standalone accounts (needs an HS256 secret) */
    double auth_per_min;       /* register/login attempts per IP per minute (0: no limit) */
    size_t max_message_length; /* in code points: sizes the body limit of POST messages */
} api_options_t;

/* The body limit of requests that need none (GET, HEAD, OPTIONS, unknown endpoints). */
#define API_SMALL_BODY_MAX (16 * 1024)

api_t *api_new(uv_loop_t *loop, chat_t *chat, const api_options_t *opts);
void api_free(api_t *a);
/* Route "/api/" and "/healthz" here (arg = the api_t). */
int api_handle(http_conn_t *hc, const http_request_t *req, str_t body, void *arg);
/* The route's head check (http_server_route_limited): the body limit of each endpoint, and a
 * 401 on the headers, before any byte of the body is kept, for the authenticated ones. */
long long api_head(http_conn_t *hc, const http_request_t *req, void *arg);

#endif
