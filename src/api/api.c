/* REST handlers: each parses and checks its input, asks the chat layer (the same functions
 * the Socket.IO events use: chat.h), and answers with the contract's JSON (accounts, which ask
 * the store, are in api_accounts.c; files in api_files.c; /healthz in api_health.c). A connection
 * that goes away while a request is in flight is detached (hc = NULL) and the answer is dropped. */
#include "api/api.h"
#include "api/api_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth_password.h"
#include "chat/limits.h"
#include "chat/chat_json.h"
#include "core/id.h"
#include "core/log.h"

/* ---- responses ---- */

static void respond_json(http_conn_t *hc, int status, json_t *doc)
{
    size_t len;
    char *text = chat_dumps(doc, &len);
    if (!text) {
        http_respond_error(hc, 500, "INTERNAL", "could not encode the answer");
        return;
    }
    http_respond(hc, status, "application/json; charset=utf-8", NULL, text, len);
    free(text);
}

static void respond_error(http_conn_t *hc, int status, const char *code, const char *message)
{
    json_t *doc = json_pack("{s:o}", "error", chat_error_json(code, message));
    respond_json(hc, status, doc);
    json_decref(doc);
}

/* An error with retryAfterMs and Retry-After when it says to wait (a rate limit, the database
 * unavailable). */
static void respond_refusal(http_conn_t *hc, const chat_err_t *err)
{
    json_t *e = chat_error_json(err->code, err->message);
    char hdr[64] = "";
    if (chat_err_reason(err)) json_object_set_new(e, "reason", json_string(chat_err_reason(err)));
    if (err->retry_after_ms) {
        json_object_set_new(e, "retryAfterMs", json_integer(err->retry_after_ms));
        snprintf(hdr, sizeof hdr, "Retry-After: %u\r\n", (err->retry_after_ms + 999) / 1000);
    }
    json_t *doc = json_pack("{s:o}", "error", e);
    size_t len;
    char *text = chat_dumps(doc, &len);
    http_respond(hc, err->status, "application/json; charset=utf-8", hdr, text, len);
    free(text);
    json_decref(doc);
}

static void on_abort(http_conn_t *hc, void *arg)
{
    ((api_ctx_t *)arg)->hc = NULL;
}

api_ctx_t *api_ctx_new(api_t *a, http_conn_t *hc, size_t arena)
{
    api_ctx_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->api = a;
    c->hc = hc;
    if (arena) {
        c->arena = malloc(arena);
        if (!c->arena) {
            free(c);
            return NULL;
        }
        c->req.arena.ptr = c->arena;
        c->req.arena.cap = arena;
    }
    http_conn_set_abort(hc, on_abort, c);
    return c;
}

void api_ctx_free(api_ctx_t *c)
{
    if (c->hc) http_conn_set_abort(c->hc, NULL, NULL);
    json_decref(c->body);
    free(c->arena);
    if (c->password) {
        memset(c->password, 0, c->password_len);
        free(c->password);
    }
    free(c);
}

/* Submits; on refusal answers 503 and frees. Returns HTTP_DEFERRED either way. */
int api_submit(api_ctx_t *c, void (*done)(store_req_t *))
{
    c->req.done = done;
    if (store_submit(chat_store(c->api->chat), &c->req) != 0) {
        respond_error(c->hc, 503, "INTERNAL", "the server is shutting down");
        api_ctx_free(c);
        return HTTP_DONE;
    }
    return HTTP_DEFERRED;
}

/* True (and answers) when the request failed in the store. */
bool api_store_failed(api_ctx_t *c)
{
    if (c->req.status == STORE_OK) return false;
    chat_err_t e;
    chat_store_err(c->req.status, &e);
    if (c->hc) respond_refusal(c->hc, &e);
    return true;
}

/* ---- request helpers ---- */

/* Verifies the bearer token; answers 401 and returns -1 when it is missing or not valid. */
static int check_token(api_t *a, http_conn_t *hc, const http_request_t *req, chat_user_t *user)
{
    str_t h = http_request_header(req, "authorization");
    str_t token = STR_NULL;
    if (h.ptr && h.len > 7 && strncasecmp(h.ptr, "Bearer ", 7) == 0)
        token = str_make(h.ptr + 7, h.len - 7);
    int rc = chat_authenticate(a->chat, token, user);
    if (rc != AUTH_OK) {
        json_t *err = chat_error_json(
            "UNAUTHORIZED", rc == AUTH_ERR_MISSING   ? "Authorization: Bearer <token> is required"
                            : rc == AUTH_ERR_EXPIRED ? "the token has expired"
                            : rc == AUTH_ERR_SCOPE
                                ? "a server credential is accepted on /api/server/* only"
                                : "the token is not valid");
        json_object_set_new(err, "reason", json_string(auth_error_code(rc)));
        json_t *doc = json_pack("{s:o}", "error", err);
        size_t len;
        char *text = chat_dumps(doc, &len);
        http_respond(hc, 401, "application/json; charset=utf-8", "WWW-Authenticate: Bearer\r\n",
                     text, len);
        free(text);
        json_decref(doc);
        return -1;
    }
    return 0;
}

static int authenticate(api_t *a, http_conn_t *hc, const http_request_t *req, chat_user_t *user)
{
    if (check_token(a, hc, req, user) < 0) return -1;
    chat_record_user(a->chat, user);
    uint32_t wait = chat_rest_limit(a->chat, user->id);
    if (wait) {
        chat_err_t e = {429, "RATE_LIMITED", "too many requests; slow down", wait};
        respond_refusal(hc, &e);
        return -1;
    }
    return 0;
}

json_t *api_parse_body(http_conn_t *hc, str_t body)
{
    json_error_t e;
    json_t *j = json_loadb(body.ptr ? body.ptr : "", body.len, JSON_ALLOW_NUL, &e);
    if (!j) {
        char msg[256];
        snprintf(msg, sizeof msg, "the body is not valid JSON: %s", e.text);
        respond_error(hc, 400, "BAD_REQUEST", msg);
        return NULL;
    }
    if (!json_is_object(j)) {
        respond_error(hc, 400, "BAD_REQUEST", "the body must be a JSON object");
        json_decref(j);
        return NULL;
    }
    return j;
}

/* limit= : absent -> def; clamped to max; garbage (an empty value too: docs/api.md says a
 * positive integer) -> -1. */
static long query_limit(const http_request_t *req, long def, long max)
{
    char v[32];
    int n = http_query_param(req->query, "limit", v, sizeof v);
    if (n == -1) return def;
    if (n <= 0) return -1;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < 1) return -1;
    return x > max ? max : x;
}

static void method_not_allowed(http_conn_t *hc, const char *allow)
{
    char hdr[96];
    snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
    json_t *doc = json_pack("{s:o}", "error",
                            chat_error_json("METHOD_NOT_ALLOWED", "method not allowed here"));
    size_t len;
    char *text = chat_dumps(doc, &len);
    http_respond(hc, 405, "application/json; charset=utf-8", hdr, text, len);
    free(text);
    json_decref(doc);
}

/* ---- the chat's requests: api.c parses and answers, chat_* does the work ---- */

/* The answer of a chat function, to the client if it is still there. */
static void answered(void *ud, const chat_err_t *err, int status, str_t body)
{
    api_ctx_t *c = ud;
    if (c->hc) {
        if (err)
            respond_refusal(c->hc, err);
        else
            http_respond(c->hc, status, "application/json; charset=utf-8", NULL, body.ptr,
                         body.len);
    }
    api_ctx_free(c);
}

/* A context for a chat request (answered frees it); answers 500 itself when out of memory. */
static api_ctx_t *chat_ctx(api_t *a, http_conn_t *hc, const chat_user_t *user)
{
    api_ctx_t *c = api_ctx_new(a, hc, 0);
    if (!c) {
        respond_error(hc, 500, "INTERNAL", "out of memory");
        return NULL;
    }
    c->user = *user;
    return c;
}

/* ---- conversations ---- */

/* GET and POST /api/chat/conversations: api_server.c (contexts, issue 15). */

/* ---- messages ---- */

/* GET /api/chat/conversations/:id */
static int conversation_get(api_t *a, http_conn_t *hc, str_t conv, const chat_user_t *user)
{
    if (!id_valid(conv)) {
        respond_error(hc, 400, "BAD_REQUEST", "conversationId must be a 24-character hex id");
        return HTTP_DONE;
    }
    api_ctx_t *c = chat_ctx(a, hc, user);
    if (!c) return HTTP_DONE;
    memcpy(c->id, conv.ptr, ID_LEN);
    c->id[ID_LEN] = '\0';
    chat_conversation_get(a->chat, c->user.id, c->id, answered, c);
    return HTTP_DEFERRED;
}

static int messages_page(api_t *a, http_conn_t *hc, const http_request_t *req, str_t conv,
                         const chat_user_t *user)
{
    if (!id_valid(conv)) {
        respond_error(hc, 400, "BAD_REQUEST", "conversationId must be a 24-character hex id");
        return HTTP_DONE;
    }
    long limit = query_limit(req, 50, STORE_PAGE_MAX);
    char before[32];
    int bl = http_query_param(req->query, "before", before, sizeof before);
    long long before_seq = 0;
    if (bl == 0) bl = -2; /* before= with no value is not a positive integer */
    if (bl > 0) {
        char *end;
        errno = 0;
        before_seq = strtoll(before, &end, 10);
        if (*end || before_seq < 1 || errno == ERANGE) bl = -2; /* past int64: not a seq */
    }
    if (limit < 0 || bl == -2) {
        respond_error(hc, 400, "BAD_REQUEST", "limit and before must be positive integers");
        return HTTP_DONE;
    }
    api_ctx_t *c = chat_ctx(a, hc, user);
    if (!c) return HTTP_DONE;
    memcpy(c->id, conv.ptr, ID_LEN);
    c->id[ID_LEN] = '\0';
    chat_history(a->chat, c->user.id, c->id, before_seq, (size_t)limit, answered, c);
    return HTTP_DEFERRED;
}

static void rest_send_done(void *ud, const chat_err_t *err, str_t doc, bool dup, int64_t pos)
{
    api_ctx_t *c = ud;
    if (c->hc) {
        if (err) {
            respond_refusal(c->hc, err);
        } else {
            buf_t t;
            buf_init(&t);
            buf_append_str(&t, "{\"message\":");
            buf_append(&t, doc.ptr, doc.len);
            buf_append_str(&t, "}");
            http_respond(c->hc, dup ? 200 : 201, "application/json; charset=utf-8", NULL, t.data,
                         t.len);
            buf_free(&t);
        }
    }
    api_ctx_free(c);
}

static int post_message(api_t *a, http_conn_t *hc, str_t body, const chat_user_t *user)
{
    json_t *b = api_parse_body(hc, body);
    if (!b) return HTTP_DONE;
    api_ctx_t *c = api_ctx_new(a, hc, 0);
    if (!c) {
        json_decref(b);
        respond_error(hc, 500, "INTERNAL", "out of memory");
        return HTTP_DONE;
    }
    c->body = b;
    c->user = *user;
    /* chat_send may answer before returning (refusals): then the response is already out. */
    chat_send(a->chat, &c->user, b, rest_send_done, c);
    return HTTP_DEFERRED;
}

static int mark_read(api_t *a, http_conn_t *hc, str_t msg, const chat_user_t *user)
{
    if (!id_valid(msg)) {
        respond_error(hc, 400, "BAD_REQUEST", "messageId must be a 24-character hex id");
        return HTTP_DONE;
    }
    api_ctx_t *c = chat_ctx(a, hc, user);
    if (!c) return HTTP_DONE;
    memcpy(c->id, msg.ptr, ID_LEN);
    c->id[ID_LEN] = '\0';
    chat_mark_read(a->chat, c->user.id, NULL, c->id, answered, c);
    return HTTP_DEFERRED;
}

/* PATCH /api/chat/messages/:id {content} (an edit) and DELETE /api/chat/messages/:id. */
static int change_message(api_t *a, http_conn_t *hc, str_t body, str_t msg, const chat_user_t *user,
                          bool remove)
{
    if (!id_valid(msg)) {
        respond_error(hc, 400, "BAD_REQUEST", "messageId must be a 24-character hex id");
        return HTTP_DONE;
    }
    json_t *b = NULL;
    if (!remove && !(b = api_parse_body(hc, body))) return HTTP_DONE;
    api_ctx_t *c = chat_ctx(a, hc, user);
    if (!c) {
        json_decref(b);
        return HTTP_DONE;
    }
    c->body = b; /* freed with the context */
    memcpy(c->id, msg.ptr, ID_LEN);
    c->id[ID_LEN] = '\0';
    chat_message_change(a->chat, c->user.id, c->id, remove,
                        b ? json_object_get(b, "content") : NULL, answered, c);
    return HTTP_DEFERRED;
}

/* ---- users ---- */

static void status_done(void *ud, json_t *statuses)
{
    api_ctx_t *c = ud;
    if (c->hc) respond_json(c->hc, 200, json_array_get(statuses, 0));
    api_ctx_free(c);
}

static int user_status(api_t *a, http_conn_t *hc, str_t user, const chat_user_t *me)
{
    if (!auth_sub_is_valid(user.ptr, user.len)) {
        respond_error(hc, 400, "BAD_REQUEST", "userId must be 1-64 characters of A-Z a-z 0-9 _ -");
        return HTTP_DONE;
    }
    api_ctx_t *c = api_ctx_new(a, hc, 0);
    if (!c) {
        respond_error(hc, 500, "INTERNAL", "out of memory");
        return HTTP_DONE;
    }
    c->user = *me;
    char id[STORE_USER_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)user.len, user.ptr);
    const char *ids[1] = {id};
    chat_statuses(a->chat, c->user.id, ids, 1, status_done, c);
    return HTTP_DEFERRED;
}

static int users_by_id(api_t *a, http_conn_t *hc, const http_request_t *req, const chat_user_t *me)
{
    char list[100 * (STORE_USER_ID_MAX + 1)];
    int n = http_query_param(req->query, "ids", list, sizeof list);
    const char *ids[100];
    size_t count = 0;
    bool ok = n > 0;
    for (char *tok = n > 0 ? strtok(list, ",") : NULL; ok && tok; tok = strtok(NULL, ",")) {
        ok = auth_sub_is_valid(tok, strlen(tok)) && count < 100;
        if (ok) ids[count++] = tok;
    }
    if (!ok || count == 0) {
        respond_error(hc, 400, "BAD_REQUEST", "ids must be 1-100 comma-separated user ids");
        return HTTP_DONE;
    }
    api_ctx_t *c = chat_ctx(a, hc, me);
    if (!c) return HTTP_DONE;
    chat_users_get(a->chat, c->user.id, ids, count, answered, c);
    return HTTP_DEFERRED;
}

static int search_users(api_t *a, http_conn_t *hc, const http_request_t *req, const chat_user_t *me)
{
    char probe[8];
    if (http_query_param(req->query, "ids", probe, sizeof probe) != -1)
        return users_by_id(a, hc, req, me);
    char q[STORE_USERNAME_MAX + 1];
    int n = http_query_param(req->query, "q", q, sizeof q);
    long limit = query_limit(req, 10, 20);
    if (limit < 0) {
        respond_error(hc, 400, "BAD_REQUEST", "limit must be a positive integer");
        return HTTP_DONE;
    }
    if (n < 1 || !auth_sub_is_valid(q, (size_t)n)) {
        respond_error(hc, 400, "BAD_REQUEST",
                      "q must be the start of a username (A-Z a-z 0-9 _ -, up to 64 characters)");
        return HTTP_DONE;
    }
    api_ctx_t *c = chat_ctx(a, hc, me);
    if (!c) return HTTP_DONE;
    chat_users_search(a->chat, c->user.id, str_make(q, (size_t)n), (size_t)limit, answered, c);
    return HTTP_DEFERRED;
}

/* ---- blocks (issue 16) ---- */

static int block_user(api_t *a, http_conn_t *hc, const http_request_t *req, str_t other,
                      const chat_user_t *me)
{
    if (!auth_sub_is_valid(other.ptr, other.len)) {
        respond_error(hc, 400, "BAD_REQUEST", "userId must be 1-64 characters of A-Z a-z 0-9 _ -");
        return HTTP_DONE;
    }
    api_ctx_t *c = chat_ctx(a, hc, me);
    if (!c) return HTTP_DONE;
    char id[STORE_USER_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)other.len, other.ptr);
    chat_block_set(a->chat, c->user.id, id, str_eq_cstr(req->method, "POST"), answered, c);
    return HTTP_DEFERRED;
}

static int list_blocks(api_t *a, http_conn_t *hc, const http_request_t *req, const chat_user_t *me)
{
    long limit = query_limit(req, 50, 200);
    char cursor[STORE_USER_ID_MAX + 2];
    int n = http_query_param(req->query, "cursor", cursor, sizeof cursor);
    if (limit < 0 || n == -2 || n == 0 || (n > 0 && !auth_sub_is_valid(cursor, (size_t)n))) {
        respond_error(hc, 400, "BAD_REQUEST",
                      "limit must be a positive integer; cursor a nextCursor from before");
        return HTTP_DONE;
    }
    api_ctx_t *c = chat_ctx(a, hc, me);
    if (!c) return HTTP_DONE;
    chat_blocks_list(a->chat, c->user.id, n > 0 ? cursor : NULL, (size_t)limit, answered, c);
    return HTTP_DEFERRED;
}

static int search(api_t *a, http_conn_t *hc, const http_request_t *req, const chat_user_t *me)
{
    char q[STORE_SEARCH_QUERY_MAX + 1], conv[ID_SIZE + 1], cursor[24];
    int qn = http_query_param(req->query, "q", q, sizeof q);
    int cn = http_query_param(req->query, "conversationId", conv, sizeof conv);
    int un = http_query_param(req->query, "cursor", cursor, sizeof cursor);
    long limit = query_limit(req, 20, STORE_SEARCH_PAGE_MAX);
    if (qn < 1) {
        respond_error(hc, 400, "BAD_REQUEST",
                      "q must be 1-8 words of letters and digits, at most 200 bytes");
        return HTTP_DONE;
    }
    if (cn == -2 || cn == 0 || (cn > 0 && !id_valid(str_make(conv, (size_t)cn)))) {
        respond_error(hc, 400, "BAD_REQUEST", "conversationId must be a 24-character hex id");
        return HTTP_DONE;
    }
    long long before = 0;
    if (un != -1) {
        char *end = NULL;
        before = un > 0 && un < 20 ? strtoll(cursor, &end, 10) : 0;
        if (un <= 0 || !end || *end || before < 1 || cursor[0] == '+' || cursor[0] == '-') {
            respond_error(hc, 400, "BAD_REQUEST", "cursor must be a nextCursor from before");
            return HTTP_DONE;
        }
    }
    if (limit < 0) {
        respond_error(hc, 400, "BAD_REQUEST", "limit must be a positive integer");
        return HTTP_DONE;
    }
    api_ctx_t *c = chat_ctx(a, hc, me);
    if (!c) return HTTP_DONE;
    chat_search(a->chat, c->user.id, str_make(q, (size_t)qn), cn > 0 ? conv : NULL, (size_t)limit,
                before, answered, c);
    return HTTP_DEFERRED;
}

/* ---- routing ---- */

static bool method(const http_request_t *req, const char *m)
{
    return str_eq_cstr(req->method, m);
}

/* Splits path after prefix into at most 4 segments. */
static int segments(str_t path, str_t *seg, int max)
{
    int n = 0;
    size_t i = 0;
    while (i < path.len && n < max + 1) {
        while (i < path.len && path.ptr[i] == '/') i++;
        if (i >= path.len) break;
        size_t start = i;
        while (i < path.len && path.ptr[i] != '/') i++;
        if (n < max) seg[n] = str_make(path.ptr + start, i - start);
        n++;
    }
    return n;
}

bool api_cors(api_t *a, http_conn_t *hc, const http_request_t *req)
{
    const char *origins = a->opts.cors_origins;
    if (!origins || !origins[0]) return false;
    char hdrs[320];
    http_cors_headers(origins, strcmp(origins, "*") != 0, req, hdrs, sizeof hdrs);
    http_conn_set_response_headers(hc, hdrs);
    if (!str_eq_cstr(req->method, "OPTIONS")) return false;
    /* A preflight: which methods and headers a browser on an allowed origin may use. */
    http_respond(hc, 204, NULL,
                 "Access-Control-Allow-Methods: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n"
                 "Access-Control-Allow-Headers: Authorization, Content-Type, If-None-Match, "
                 "Range\r\nAccess-Control-Max-Age: 600\r\n",
                 NULL, 0);
    return true;
}

/* Register and login run argon2id: limited per address against guessing and CPU exhaustion. */
static bool auth_limited(api_t *a, http_conn_t *hc)
{
    char peer[64];
    net_conn_peer_name(http_conn_net(hc), peer, sizeof peer);
    char *colon = strrchr(peer, ':');
    if (colon) *colon = '\0';
    uint32_t wait = limiter_take(&a->auth_limit, peer, uv_now(a->loop));
    if (!wait) return false;
    chat_err_t e = {429, "RATE_LIMITED", "too many sign-in attempts; wait a little", wait};
    respond_refusal(hc, &e);
    return true;
}

/* Body limits per endpoint (docs/api.md, "Request bodies"). Register/login: a user name of at
 * most 64 bytes and a password of at most 256, even if every byte came \u-escaped. A group:
 * 255 ids of 64 bytes and a title. A message: max-message-length code points, each at most 12
 * bytes as JSON (a \u-escaped surrogate pair), and its other fields. Anything else needs no
 * body: a small one is read (and ignored). */
#define API_AUTH_BODY_MAX   (8 * 1024)
#define API_GROUP_BODY_MAX  (64 * 1024)
#define API_MESSAGE_FRAMING (16 * 1024)

long long api_head(http_conn_t *hc, const http_request_t *req, void *arg)
{
    api_t *a = arg;
    if (api_cors(a, hc, req)) return -1;
    str_t seg[5];
    int n = segments(req->path, seg, 5);
    if (n < 3 || !str_eq_cstr(seg[0], "api")) return API_SMALL_BODY_MAX;
    if (str_eq_cstr(seg[1], "auth")) return API_AUTH_BODY_MAX;
    if (str_eq_cstr(seg[1], "server")) /* a server credential before any byte is kept */
        return api_server_auth(a, hc, req) < 0 ? -1 : api_server_body_max(a, req);
    if (!str_eq_cstr(seg[1], "chat")) return API_SMALL_BODY_MAX;
    bool post_group = n == 3 && str_eq_cstr(seg[2], "conversations") && method(req, "POST");
    bool post_message = n == 3 && str_eq_cstr(seg[2], "messages") && method(req, "POST");
    bool put_read = n == 5 && str_eq_cstr(seg[2], "messages") && str_eq_cstr(seg[4], "read") &&
                    method(req, "PUT");
    bool patch_message = n == 4 && str_eq_cstr(seg[2], "messages") && method(req, "PATCH");
    if (!post_group && !post_message && !put_read && !patch_message)
        return API_SMALL_BODY_MAX; /* 404/405 later */
    /* Authenticated endpoints: no byte of a body is kept for a client without a valid token. */
    chat_user_t user;
    if (check_token(a, hc, req, &user) < 0) return -1;
    if (post_group) return API_GROUP_BODY_MAX;
    if (post_message || patch_message)
        return (long long)a->opts.max_message_length * 12 + API_MESSAGE_FRAMING;
    return API_SMALL_BODY_MAX;
}

int api_handle(http_conn_t *hc, const http_request_t *req, str_t body, void *arg)
{
    api_t *a = arg;
    if (api_cors(a, hc, req)) return HTTP_DONE;
    str_t seg[5];
    int n = segments(req->path, seg, 5);
    if (n >= 3 && str_eq_cstr(seg[0], "api") && str_eq_cstr(seg[1], "server"))
        return api_handle_server(a, hc, req, body);
    if (n < 3 || n > 5 || !str_eq_cstr(seg[0], "api")) {
        respond_error(hc, 404, "NOT_FOUND", "no such endpoint");
        return HTTP_DONE;
    }
    if (str_eq_cstr(seg[1], "auth") && n == 3 &&
        (str_eq_cstr(seg[2], "register") || str_eq_cstr(seg[2], "login"))) {
        if (!method(req, "POST")) {
            method_not_allowed(hc, "POST");
            return HTTP_DONE;
        }
        if (!a->opts.accounts_enabled) {
            respond_error(hc, 404, "NOT_FOUND",
                          "standalone accounts are off: tokens come from your platform");
            return HTTP_DONE;
        }
        if (auth_limited(a, hc)) return HTTP_DONE;
        return str_eq_cstr(seg[2], "register") ? api_handle_register(a, hc, body)
                                               : api_handle_login(a, hc, body);
    }
    if (!str_eq_cstr(seg[1], "chat")) {
        respond_error(hc, 404, "NOT_FOUND", "no such endpoint");
        return HTTP_DONE;
    }
    /* Which endpoint, and its allowed methods, before authentication: 404/405 need no token. */
    enum {
        E_CONVS,
        E_CONV,
        E_MESSAGES,
        E_MESSAGE_PAGE,
        E_READ,
        E_USERS,
        E_STATUS,
        E_BLOCK,
        E_BLOCKS,
        E_UNREAD,
        E_SEARCH,
        E_NONE
    } ep = E_NONE;
    const char *allow = "";
    if (n == 3 && str_eq_cstr(seg[2], "conversations"))
        ep = E_CONVS, allow = "GET, POST";
    else if (n == 4 && str_eq_cstr(seg[2], "conversations"))
        ep = E_CONV, allow = "GET";
    else if (n == 3 && str_eq_cstr(seg[2], "messages"))
        ep = E_MESSAGES, allow = "POST";
    else if (n == 4 && str_eq_cstr(seg[2], "messages"))
        ep = E_MESSAGE_PAGE, allow = "GET, PATCH, DELETE";
    else if (n == 5 && str_eq_cstr(seg[2], "messages") && str_eq_cstr(seg[4], "read"))
        ep = E_READ, allow = "PUT";
    else if (n == 3 && str_eq_cstr(seg[2], "users"))
        ep = E_USERS, allow = "GET";
    else if (n == 5 && str_eq_cstr(seg[2], "users") && str_eq_cstr(seg[4], "status"))
        ep = E_STATUS, allow = "GET";
    else if (n == 5 && str_eq_cstr(seg[2], "users") && str_eq_cstr(seg[4], "block"))
        ep = E_BLOCK, allow = "POST, DELETE";
    else if (n == 3 && str_eq_cstr(seg[2], "blocks"))
        ep = E_BLOCKS, allow = "GET";
    else if (n == 3 && str_eq_cstr(seg[2], "unread"))
        ep = E_UNREAD, allow = "GET";
    else if (n == 3 && str_eq_cstr(seg[2], "search"))
        ep = E_SEARCH, allow = "GET";
    if (ep == E_NONE) {
        respond_error(hc, 404, "NOT_FOUND", "no such endpoint");
        return HTTP_DONE;
    }
    bool ok = (ep == E_CONVS && (method(req, "GET") || method(req, "POST"))) ||
              (ep == E_MESSAGES && method(req, "POST")) ||
              (ep == E_MESSAGE_PAGE &&
               (method(req, "GET") || method(req, "PATCH") || method(req, "DELETE"))) ||
              (ep == E_READ && method(req, "PUT")) ||
              (ep == E_BLOCK && (method(req, "POST") || method(req, "DELETE"))) ||
              ((ep == E_CONV || ep == E_USERS || ep == E_STATUS || ep == E_BLOCKS ||
                ep == E_UNREAD || ep == E_SEARCH) &&
               method(req, "GET"));
    if (!ok) {
        method_not_allowed(hc, allow);
        return HTTP_DONE;
    }
    chat_user_t user;
    if (authenticate(a, hc, req, &user) < 0) return HTTP_DONE;
    switch (ep) {
    case E_CONVS:
        return method(req, "GET") ? api_conversations_list(a, hc, req, &user)
                                  : api_conversations_create(a, hc, body, &user);
    case E_CONV:
        return conversation_get(a, hc, seg[3], &user);
    case E_MESSAGES:
        return post_message(a, hc, body, &user);
    case E_MESSAGE_PAGE:
        if (method(req, "PATCH")) return change_message(a, hc, body, seg[3], &user, false);
        if (method(req, "DELETE")) return change_message(a, hc, body, seg[3], &user, true);
        return messages_page(a, hc, req, seg[3], &user);
    case E_READ:
        return mark_read(a, hc, seg[3], &user);
    case E_USERS:
        return search_users(a, hc, req, &user);
    case E_STATUS:
        return user_status(a, hc, seg[3], &user);
    case E_BLOCK:
        return block_user(a, hc, req, seg[3], &user);
    case E_BLOCKS:
        return list_blocks(a, hc, req, &user);
    case E_SEARCH:
        return search(a, hc, req, &user);
    case E_UNREAD: {
        api_ctx_t *c = chat_ctx(a, hc, &user);
        if (!c) return HTTP_DONE;
        chat_unread(a->chat, c->user.id, answered, c);
        return HTTP_DEFERRED;
    }
    default:
        return HTTP_DONE;
    }
}

api_t *api_new(uv_loop_t *loop, chat_t *chat, const api_options_t *opts)
{
    api_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->loop = loop;
    a->chat = chat;
    a->opts = *opts;
    if (limiter_init(&a->auth_limit, opts->auth_per_min / 60.0,
                     opts->auth_per_min < 10 ? opts->auth_per_min : 10, 0) != 0) {
        free(a);
        return NULL;
    }
    if (opts->accounts_enabled)
        auth_password_hash("not a real password, only for timing", 36, a->dummy_hash);
    return a;
}

void api_free(api_t *a)
{
    if (!a) return;
    limiter_free(&a->auth_limit);
    free(a);
}

/* ---- shared with the other REST modules (api_internal.h) ---- */

void api_respond_json(http_conn_t *hc, int status, json_t *doc)
{
    respond_json(hc, status, doc);
}

void api_respond_error(http_conn_t *hc, int status, const char *code, const char *message)
{
    respond_error(hc, status, code, message);
}

void api_respond_refusal(http_conn_t *hc, const chat_err_t *err)
{
    respond_refusal(hc, err);
}

void api_method_not_allowed(http_conn_t *hc, const char *allow)
{
    method_not_allowed(hc, allow);
}

int api_authenticate(api_t *a, http_conn_t *hc, const http_request_t *req, chat_user_t *user)
{
    return authenticate(a, hc, req, user);
}

chat_t *api_chat(api_t *a)
{
    return a->chat;
}
