/* What the REST modules share (api.c, api_accounts.c, api_files.c): answers in the contract's
 * JSON, authentication, the api struct and a request's context with its helpers. */
#ifndef PARLOR_API_INTERNAL_H
#define PARLOR_API_INTERNAL_H

#include <jansson.h>
#include <uv.h>

#include "api/api.h"
#include "auth/auth_password.h"
#include "chat/limits.h"
#include "core/id.h"

struct api {
    uv_loop_t *loop;
    chat_t *chat;
    api_options_t opts;
    limiter_t auth_limit;                    /* register/login attempts per IP */
    char dummy_hash[AUTH_PASSWORD_HASH_MAX]; /* verified against for unknown users (timing) */
};

typedef struct api_ctx api_ctx_t;
struct api_ctx {
    store_req_t req; /* first: the store's done() gets this pointer */
    api_t *api;
    http_conn_t *hc; /* NULL once the client is gone */
    chat_user_t user;
    json_t *body;
    char *arena;
    uv_work_t work; /* password hashing/verification off the loop */
    char *password;
    size_t password_len;
    char hash[AUTH_PASSWORD_HASH_MAX];
    bool ok;
    char id[ID_SIZE];
};

/* A context for one request with an output arena of that size (0: none); it detaches itself
 * when the client goes away (hc = NULL). NULL when out of memory. */
api_ctx_t *api_ctx_new(api_t *a, http_conn_t *hc, size_t arena);
void api_ctx_free(api_ctx_t *c);
/* Submits c->req with done; on refusal answers 503 and frees. Returns HTTP_DEFERRED, or
 * HTTP_DONE when it answered. */
int api_submit(api_ctx_t *c, void (*done)(store_req_t *));
/* True (and answers, if the client is there) when c->req failed in the store. */
bool api_store_failed(api_ctx_t *c);
/* The body as a JSON object, or NULL after answering 400. */
json_t *api_parse_body(http_conn_t *hc, str_t body);

/* POST /api/auth/register and /login (api_accounts.c). */
int api_handle_register(api_t *a, http_conn_t *hc, str_t body);
int api_handle_login(api_t *a, http_conn_t *hc, str_t body);

/* The server API and the context-aware conversation endpoints (api_server.c, issue 15). */
int api_conversations_list(api_t *a, http_conn_t *hc, const http_request_t *req,
                           const chat_user_t *user);
int api_conversations_create(api_t *a, http_conn_t *hc, str_t body, const chat_user_t *user);
int api_handle_server(api_t *a, http_conn_t *hc, const http_request_t *req, str_t body);
/* Verifies a server credential; answers 401/403 itself and returns -1 on refusal. */
int api_server_auth(api_t *a, http_conn_t *hc, const http_request_t *req);
long long api_server_body_max(api_t *a, const http_request_t *req);

void api_respond_json(http_conn_t *hc, int status, json_t *doc);
void api_respond_error(http_conn_t *hc, int status, const char *code, const char *message);
/* An error with retryAfterMs and Retry-After when it is a rate limit. */
void api_respond_refusal(http_conn_t *hc, const chat_err_t *err);
void api_method_not_allowed(http_conn_t *hc, const char *allow);
/* Bearer token -> user (records it, applies the REST rate limit); answers 401/429 itself and
 * returns -1 on refusal. */
int api_authenticate(api_t *a, http_conn_t *hc, const http_request_t *req, chat_user_t *user);
chat_t *api_chat(api_t *a);
/* Sets the CORS headers of this request's answers; answers a preflight (true: done). */
bool api_cors(api_t *a, http_conn_t *hc, const http_request_t *req);

#endif
