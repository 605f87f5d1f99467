/* The chat layer's core: its lifecycle, the Socket.IO handlers table (authorization with the
 * connection-state-recovery pid, connection, events, disconnection), users and limits, and
 * the answers to the socket that asked. The features live beside it (see chat_int.h). */
#define _GNU_SOURCE /* memmem */
#include "chat/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"
#include "chat/limits.h"
#include "core/id.h"
#include "core/json_scan.h"
#include "core/log.h"
#include "core/randid.h"
#include "core/sha.h"
#include "core/slab.h"
#include "core/strmap.h"
#include "http/http_parse.h"

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* ---- users ---- */

/* snprintf(dst, cap, "%s", src) without printf (three per handshake cost ~1.7k instructions). */
static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int chat_authenticate(chat_t *c, str_t token, chat_user_t *out)
{
    if (token.len == 0) return AUTH_ERR_MISSING;
    auth_claims_t claims;
    int rc = auth_jwt_verify(c->jwt, token, now_s(), &claims);
    if (rc != AUTH_OK) return rc;
    /* A server credential is for the server API only (chat_authenticate_server); and no user
     * may be the sender of system notices. */
    if (claims.server) return AUTH_ERR_SCOPE;
    if (strcmp(claims.sub, STORE_SYSTEM_SENDER) == 0) return AUTH_ERR_INVALID;
    copy_text(out->id, sizeof out->id, claims.sub);
    copy_text(out->name, sizeof out->name, claims.name);
    copy_text(out->role, sizeof out->role, claims.role);
    return AUTH_OK;
}

int chat_authenticate_server(chat_t *c, str_t token, chat_user_t *out)
{
    if (token.len == 0) return AUTH_ERR_MISSING;
    auth_claims_t claims;
    int rc = auth_jwt_verify(c->jwt, token, now_s(), &claims);
    if (rc != AUTH_OK) return rc;
    if (!claims.server) return AUTH_ERR_SCOPE;
    memset(out, 0, sizeof *out);
    copy_text(out->id, sizeof out->id, claims.sub);
    return AUTH_OK;
}

typedef struct {
    store_req_t req;
    chat_t *chat;
    chat_user_t user;
} upsert_ctx_t;

static void recorded_forget(chat_t *c, const chat_user_t *u);

static void upsert_done(store_req_t *req)
{
    upsert_ctx_t *u = (upsert_ctx_t *)req;
    if (req->status != STORE_OK) {
        log_warn("recording user %s failed: %s", u->user.id, store_strerror(req->status));
        /* Not recorded (the database unreachable, say): the user's next handshake or request
         * records it again. Remembered, its messages would fail (their sender must exist)
         * until a restart. */
        recorded_forget(u->chat, &u->user);
    }
    free(u);
}

static uint64_t hash64(uint64_t h, const char *s)
{
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    /* splitmix64's finalizer: FNV-1a's low bits alone index the table poorly */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

/* 32 bits of a hash, never 0 (0 marks a free slot, or a forgotten value). */
static uint32_t hash32(uint64_t h)
{
    return (uint32_t)(h ^ (h >> 32)) | 1;
}

/* The slot of id in the recorded table (its own, or the free one where it would go). */
static recorded_t *recorded_slot(recorded_t *t, size_t cap, uint32_t id)
{
    size_t i = (size_t)id & (cap - 1);
    while (t[i].id && t[i].id != id) i = (i + 1) & (cap - 1);
    return &t[i];
}

/* Remembers that (id, name, role) is recorded; false when it already was. Two 32-bit hashes
 * stand for the strings (8 bytes a user: the table is ~13 bytes per idle socket, not 26): a
 * user is skipped wrongly only if both collide at once (odds of about n * 2^-63 for a new
 * name among n users); a collision of the ids alone costs an extra upsert, no more. */
static bool recorded_set(chat_t *c, const chat_user_t *u)
{
    uint32_t id = hash32(hash64(1469598103934665603ull, u->id));
    uint32_t value = hash32(hash64(hash64(0x9e3779b97f4a7c15ull, u->name), u->role));
    if (c->recorded_cap) {
        const recorded_t *r = recorded_slot(c->recorded, c->recorded_cap, id);
        if (r->id == id && r->value == value) return false;
    }
    if (4 * (c->nrecorded + 1) > 3 * c->recorded_cap) { /* at most 3/4 full */
        size_t cap = c->recorded_cap ? 2 * c->recorded_cap : 1024;
        recorded_t *t = calloc(cap, sizeof *t);
        if (!t) return true; /* record it again later rather than never */
        for (size_t i = 0; i < c->recorded_cap; i++)
            if (c->recorded[i].id) *recorded_slot(t, cap, c->recorded[i].id) = c->recorded[i];
        free(c->recorded);
        c->recorded = t;
        c->recorded_cap = cap;
    }
    recorded_t *slot = recorded_slot(c->recorded, c->recorded_cap, id);
    if (!slot->id) c->nrecorded++;
    *slot = (recorded_t){id, value};
    return true;
}

static void recorded_forget(chat_t *c, const chat_user_t *u)
{
    if (!c->recorded_cap) return;
    uint32_t id = hash32(hash64(1469598103934665603ull, u->id));
    recorded_t *r = recorded_slot(c->recorded, c->recorded_cap, id);
    /* The slot stays (later ids may have probed past it); a value of 0 matches no user's
     * name and role (hash32 is never 0). */
    if (r->id == id) r->value = 0;
}

void chat_record_user(chat_t *c, const chat_user_t *u)
{
    if (!recorded_set(c, u)) return;
    upsert_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return;
    ctx->chat = c;
    ctx->user = *u;
    ctx->req.op = STORE_OP_USER_UPSERT;
    /* A user record shares a commit with its neighbours instead of costing an fsync per
     * handshake; it still lands before anything this user does next (see store.h). */
    ctx->req.lazy = true;
    ctx->req.done = upsert_done;
    ctx->req.u.user_upsert.id = str_cstr(ctx->user.id);
    ctx->req.u.user_upsert.name = ctx->user.name[0] ? str_cstr(ctx->user.name) : STR_NULL;
    ctx->req.u.user_upsert.role = ctx->user.role[0] ? str_cstr(ctx->user.role) : STR_NULL;
    if (store_submit(c->store, &ctx->req) != 0) free(ctx);
}

/* ---- answers on the asking socket (not deliveries: that socket is here) ---- */

static void ack_json(chat_sock_t *cs, int64_t ack_id, json_t *obj)
{
    json_t *ack = json_pack("[O]", obj);
    size_t len;
    char *text = chat_dumps(ack, &len);
    if (text) sio_socket_ack(cs->socket, ack_id, str_make(text, len), NULL, 0);
    free(text);
    json_decref(ack);
}

/* A refusal: the ack error (when an ack was asked for) and a message_error event. */
void chat_reply_err(chat_sock_t *cs, int64_t ack_id, json_t *client_msg_id, const chat_err_t *e)
{
    json_t *err = chat_error_json(e->code, e->message);
    if (e->retry_after_ms)
        json_object_set_new(err, "retryAfterMs", json_integer(e->retry_after_ms));
    if (chat_err_reason(e)) json_object_set_new(err, "reason", json_string(chat_err_reason(e)));
    if (ack_id >= 0) {
        json_t *obj = json_pack("{s:b, s:O}", "ok", 0, "error", err);
        ack_json(cs, ack_id, obj);
        json_decref(obj);
    }
    if (json_is_string(client_msg_id)) json_object_set(err, "clientMsgId", client_msg_id);
    json_t *arr = json_pack("[so]", "message_error", err);
    size_t len;
    char *text = chat_dumps(arr, &len);
    if (text) sio_socket_emit(cs->socket, str_make(text, len), NULL, 0);
    free(text);
    json_decref(arr);
}

/* {ok:true, ...fields} */
void chat_reply_ok(chat_sock_t *cs, int64_t ack_id, json_t *fields)
{
    if (ack_id < 0) return;
    json_t *obj = json_pack("{s:b}", "ok", 1);
    json_object_update(obj, fields);
    ack_json(cs, ack_id, obj);
    json_decref(obj);
}

void chat_reply_error(chat_sock_t *cs, int64_t ack_id, const char *code, const char *message,
                      uint32_t retry_after_ms)
{
    chat_err_t e = {0, code, message, retry_after_ms};
    chat_reply_err(cs, ack_id, NULL, &e);
}

void chat_reply_body(chat_sock_t *cs, int64_t ack_id, str_t body)
{
    if (ack_id < 0) return;
    const str_t parts[] = {STR_LIT("["), body, STR_LIT("]")};
    sio_socket_ack_parts(cs->socket, ack_id, parts, 3);
}

/* ---- limits ---- */

uint32_t chat_rest_limit(chat_t *c, const char *user)
{
    return limiter_take(&c->rest_limit, user, uv_now(c->loop));
}

void *chat_admit(void *arg, net_conn_t *conn, uint32_t *retry_after_s)
{
    chat_t *c = arg;
    if (c->ip_limit.rate <= 0 && c->ip_limit.max_concurrent == 0)
        return &c->ip_limit; /* no per-IP limits: nothing to remember */
    char peer[64];
    net_conn_peer_name(conn, peer, sizeof peer);
    char *colon = strrchr(peer, ':'); /* drop the port: limits are per address */
    if (colon) *colon = '\0';
    /* The concurrency check first: a connection refused for it spends no rate token. */
    if (limiter_acquire(&c->ip_limit, peer) < 0) {
        *retry_after_s = 1;
        log_info_throttled("connection from %s refused: too many concurrent connections", peer);
        return NULL;
    }
    uint32_t wait = limiter_take(&c->ip_limit, peer, uv_now(c->loop));
    if (wait) {
        limiter_release(&c->ip_limit, peer);
        *retry_after_s = (wait + 999) / 1000;
        log_info_throttled("connection from %s refused: too many new connections", peer);
        return NULL;
    }
    return strdup(peer);
}

void chat_release(void *arg, void *handle)
{
    chat_t *c = arg;
    if (handle == (void *)&c->ip_limit) return;
    limiter_release(&c->ip_limit, handle);
    free(handle);
}

static void on_sweep(uv_timer_t *t)
{
    chat_t *c = t->data;
    uint64_t now = uv_now(c->loop);
    limiter_sweep(&c->msg_limit, now);
    limiter_sweep(&c->rest_limit, now);
    limiter_sweep(&c->ip_limit, now);
    limiter_sweep(&c->user_conns, now);
    chat_acked_sweep(c, now);
}

/* ---- connection state recovery ---- */

/* The private session id is derived from the user id: any socket of that user (with a valid
 * token) may resume that user's stream, which holds only that user's own conversations. So it
 * needs no server-side state and survives restarts. */
static void pid_of(const char *user, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t md[SHA256_LEN];
    sha256_ctx_t h;
    sha256_init(&h);
    sha256_update(&h, "parlor-pid:", 11);
    sha256_update(&h, user, strlen(user));
    sha256_final(&h, md);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[32] = '\0';
}

/* On every send: by hand, not printf (a tenth of the instructions). */
void chat_sid_text(uint64_t sid, char out[CHAT_SID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = CHAT_SID_LEN - 1; i >= 0; i--, sid >>= 4) out[i] = hex[sid & 15];
    out[CHAT_SID_LEN] = '\0';
}

uint64_t chat_sid_parse(const char *text)
{
    uint64_t v = 0;
    for (int i = 0; text && i < CHAT_SID_LEN; i++) {
        char ch = text[i];
        if (ch >= '0' && ch <= '9')
            v = v << 4 | (uint64_t)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v = v << 4 | (uint64_t)(ch - 'a' + 10);
        else
            return 0; /* the NUL of a shorter text too */
    }
    return text && text[CHAT_SID_LEN] == '\0' ? v : 0;
}

void chat_sock_go_live(chat_sock_t *cs)
{
    if (cs->live) return;
    /* From now on user-addressed events reach it. */
    cs->live = true;
    cs->live_next = cs->pres->live;
    cs->pres->live = cs;
}

/* ---- Socket.IO handlers ---- */

static void on_event(sio_socket_t *s, void *arg, const sio_event_t *ev)
{
    chat_sock_t *cs = sio_socket_data(s);
    if (!cs) return;
    if (!chat_budget_admit(cs, ev->ack_id)) return;
    /* The hot event is read in place; the same lone-surrogate refusal as jansson's below. */
    if (str_eq_cstr(ev->name, "send_message") &&
        !json_has_lone_surrogate(ev->data.ptr, ev->data.len)) {
        chat_on_send_message(cs, ev->data, ev->ack_id);
        return;
    }
    /* NUL is allowed by the parser so that it is refused with a clear message, not dropped. */
    json_t *args = json_loadb(ev->data.ptr, ev->data.len, JSON_ALLOW_NUL, NULL);
    json_t *payload = json_array_get(args, 1);
    if (!payload) payload = json_null();
    if (!args) /* valid for JSON.parse, not for us: a lone surrogate in a string */
        chat_reply_error(cs, ev->ack_id, "BAD_REQUEST",
                         "the arguments are not valid UTF-8 JSON (a lone surrogate?)", 0);
    else if (str_eq_cstr(ev->name, "mark_read"))
        chat_on_mark_read(cs, payload, ev->ack_id);
    else if (str_eq_cstr(ev->name, "edit_message"))
        chat_on_edit_message(cs, payload, ev->ack_id);
    else if (str_eq_cstr(ev->name, "delete_message"))
        chat_on_delete_message(cs, payload, ev->ack_id);
    else if (str_eq_cstr(ev->name, "typing"))
        chat_on_typing(cs, payload, ev->ack_id);
    else if (str_eq_cstr(ev->name, "get_status"))
        chat_on_get_status(cs, payload, ev->ack_id);
    else
        chat_reply_error(cs, ev->ack_id, "BAD_REQUEST", "unknown event", 0);
    json_decref(args);
}

static int refuse(buf_t *err, const char *message, const char *code, const char *why,
                  uint32_t retry_after_ms)
{
    buf_printf(err, "{\"message\":\"%s\",\"data\":{\"code\":\"%s\",\"message\":\"%s\"", message,
               code, why);
    if (retry_after_ms) buf_printf(err, ",\"retryAfterMs\":%u", retry_after_ms);
    buf_append_str(err, "}}");
    return -1;
}

/* A non-negative decimal that fits an int64 comfortably. */
static bool decimal(const char *s)
{
    return s && *s && strlen(s) < 19 && strspn(s, "0123456789") == strlen(s);
}

/* Reads back a pid issued as "<hash>-<pos>-<8 random>" for the user whose hash is given:
 * only that exact form (canonical decimal, no leading zero) is accepted, so the text can be
 * made again from pos and rnd. */
static bool pid_parse(const char *pid, const char *hash, int64_t *pos, char rnd[9])
{
    if (!pid || strncmp(pid, hash, 32) != 0 || pid[32] != '-') return false;
    const char *digits = pid + 33, *dash = strchr(digits, '-');
    size_t n = dash ? (size_t)(dash - digits) : 0;
    if (n == 0 || n > 18 || (digits[0] == '0' && n > 1) || strspn(digits, "0123456789") != n ||
        strlen(dash + 1) != 8 || !randid_valid(dash + 1, 8))
        return false;
    *pos = strtoll(digits, NULL, 10);
    memcpy(rnd, dash + 1, 9);
    return true;
}

/* The CONNECT payload's fields, read in place with json_scan (jansson spent a tenth of a
 * handshake's instructions building a tree for a 200-byte token), as jansson read them: a
 * payload that is not a valid JSON object, or holds a lone surrogate, has no fields; a repeated
 * key keeps its last value; a field that is not a string is absent. A payload with a "\u0000"
 * escape anywhere (jansson refuses a NUL in any string) is read by jansson as before. The
 * token points into the payload unless it has escapes (then into token_buf, freed by
 * auth_args_free); pid and offset longer than their buffers can never be valid and read as
 * absent. */
typedef struct {
    str_t token;
    char *token_buf;
    char pid[96], offset[24];
    bool has_pid, has_offset;
} auth_args_t;

static bool auth_string(str_t raw, char *out, size_t cap, size_t *len)
{
    if (raw.len < 2 || raw.ptr[0] != '"' || raw.len - 2 >= cap) return false;
    int64_t n = json_string_decode(raw.ptr, raw.len, out, cap);
    if (n < 0) return false;
    out[n] = '\0';
    *len = (size_t)n;
    return true;
}

static bool auth_field(str_t key, const char *name)
{
    char k[8];
    size_t kl;
    return auth_string(key, k, sizeof k, &kl) && kl == strlen(name) && memcmp(k, name, kl) == 0;
}

static bool auth_args_jansson(str_t auth, auth_args_t *a)
{
    json_t *j = json_loadb(auth.ptr, auth.len, 0, NULL);
    const char *pid = json_string_value(json_object_get(j, "pid"));
    const char *off = json_string_value(json_object_get(j, "offset"));
    json_t *t = json_object_get(j, "token");
    a->has_pid = pid && strlen(pid) < sizeof a->pid;
    if (a->has_pid) strcpy(a->pid, pid);
    a->has_offset = off && strlen(off) < sizeof a->offset;
    if (a->has_offset) strcpy(a->offset, off);
    if (json_is_string(t) && (a->token_buf = malloc(json_string_length(t) + 1)) != NULL) {
        memcpy(a->token_buf, json_string_value(t), json_string_length(t) + 1);
        a->token = str_make(a->token_buf, json_string_length(t));
    }
    json_decref(j);
    return true;
}

static bool auth_args_read(str_t auth, auth_args_t *a)
{
    memset(a, 0, sizeof *a);
    if (!auth.len) return false;
    if (memmem(auth.ptr, auth.len, "\\u0000", 6)) return auth_args_jansson(auth, a);
    json_object_iter_t it;
    str_t key, val, tok = STR_NULL;
    if (!json_valid(auth.ptr, auth.len) || json_has_lone_surrogate(auth.ptr, auth.len) ||
        json_object_iter_init(&it, auth) < 0)
        return false;
    int r;
    size_t n;
    while ((r = json_object_next(&it, &key, &val)) == 1) {
        bool str = val.len >= 2 && val.ptr[0] == '"';
        if (auth_field(key, "token"))
            tok = str ? val : STR_NULL;
        else if (auth_field(key, "pid"))
            a->has_pid = str && auth_string(val, a->pid, sizeof a->pid, &n);
        else if (auth_field(key, "offset"))
            a->has_offset = str && auth_string(val, a->offset, sizeof a->offset, &n);
    }
    if (r < 0) return false;
    if (tok.ptr) {
        if (!memchr(tok.ptr, '\\', tok.len)) {
            a->token = str_make(tok.ptr + 1, tok.len - 2);
        } else {
            a->token_buf = malloc(tok.len);
            if (!a->token_buf || !auth_string(tok, a->token_buf, tok.len, &n)) return false;
            a->token = str_make(a->token_buf, n);
        }
    }
    return true;
}

static void auth_args_free(auth_args_t *a)
{
    free(a->token_buf);
    a->token_buf = NULL;
}

/* Every chat socket, in slabs of its own (core/slab.h): no malloc header, and not
 * interleaved with the handshake's short-lived allocations. Loop thread only; process-wide,
 * since a socket's last reference may be dropped late in shutdown. */
static slab_pool_t sock_pool;
/* One per idle socket (issue 17: idle memory per socket): a guard against growth. */
_Static_assert(sizeof(chat_sock_t) <= 112, "a chat socket fits 112 bytes");
_Static_assert(sizeof(recorded_t) == 8, "a recorded user is 8 bytes");

chat_sock_t *chat_sock_alloc(void)
{
    if (!sock_pool.size) slab_pool_init(&sock_pool, sizeof(chat_sock_t));
    return slab_calloc(&sock_pool);
}

void chat_sock_free(chat_sock_t *cs)
{
    slab_free(&sock_pool, cs);
}

static int on_authorize(sio_socket_t *s, void *arg, str_t auth, buf_t *err)
{
    chat_t *c = arg;
    auth_args_t a;
    if (!auth_args_read(auth, &a)) {
        auth_args_free(&a);
        memset(&a, 0, sizeof a);
    }
    str_t token = a.token;
    /* An Engine.IO v3 client (socket.io-client 2.x) sends it in the handshake query. */
    char qtoken[4096];
    int ql = token.ptr
                 ? -1
                 : http_query_param(sio_socket_handshake_query(s), "token", qtoken, sizeof qtoken);
    if (ql > 0) token = str_make(qtoken, (size_t)ql);
    chat_user_t user;
    int rc = chat_authenticate(c, token, &user);
    if (rc != AUTH_OK) {
        auth_args_free(&a);
        log_debug_throttled("socket refused: %s", auth_error_code(rc));
        return refuse(err, "unauthorized", auth_error_code(rc),
                      rc == AUTH_ERR_MISSING   ? "a token is required (auth: { token })"
                      : rc == AUTH_ERR_EXPIRED ? "the token has expired"
                      : rc == AUTH_ERR_SCOPE   ? "a server credential cannot open a socket"
                                               : "the token is not valid",
                      0);
    }
    if (limiter_acquire(&c->user_conns, user.id) < 0) {
        auth_args_free(&a);
        log_info_throttled("socket of %s refused: too many connections", user.id);
        return refuse(err, "rate_limited", "RATE_LIMITED", "too many connections for this user",
                      1000);
    }
    chat_sock_t *cs = chat_sock_alloc();
    /* The user's presence entry holds its id for the socket; it is counted on connection,
     * which follows at once. */
    presence_t *pres = cs ? chat_presence_get(c, user.id) : NULL;
    if (!pres) {
        chat_sock_free(cs);
        auth_args_free(&a);
        limiter_release(&c->user_conns, user.id);
        return -1;
    }
    cs->chat = c;
    cs->socket = s;
    cs->pres = pres;
    chat_record_user(c, &user);
    cs->refs = 1;
    randid_bytes(&cs->sid, sizeof cs->sid);
    if (!cs->sid) cs->sid = (uintptr_t)cs; /* 2^-64: unique in this process at least */
    /* pid = "<hash of the user>-<position when the session started>-<random>". A reconnect
     * that brings a pid of this user back resumes from its offset (the last event it got) or,
     * when it got none, from the position in the pid; answering with the same pid tells
     * socket.io-client that the session was recovered. The random part tells the sessions of
     * one user apart, so each is spared the messages it sent itself. Only the position and the
     * random part are kept; a pid is accepted back only in the form it was issued in, so the
     * same text can be made again for the answer. */
    char hash[33];
    pid_of(user.id, hash);
    randid_generate(cs->pid_rnd, 8);
    cs->pid_pos = c->last_pos;
    const char *off = a.has_offset ? a.offset : NULL;
    int64_t recover_from = -1; /* >= 0: replay messages after this position on connect */
    if (pid_parse(a.has_pid ? a.pid : NULL, hash, &cs->pid_pos, cs->pid_rnd))
        recover_from = decimal(off) ? strtoll(off, NULL, 10) : cs->pid_pos;
    if (recover_from >= 0 && !chat_recovery_admit(c, recover_from)) {
        /* Too much to replay: a new session (recovered false); the client catches up over
         * REST (docs/api.md). */
        recover_from = -1;
        randid_generate(cs->pid_rnd, 8);
        cs->pid_pos = c->last_pos;
    }
    if (recover_from >= 0) { /* kept in replayed_to until on_connection */
        cs->recovering = true;
        cs->replayed_to = recover_from;
    }
    auth_args_free(&a);
    char key[ACKED_KEY_SIZE];
    acked_t *own = chat_acked_of(c, chat_acked_key(cs, key), false);
    if (own) own->expires_ms = 0; /* in use again */
    { /* "pid":"<hash>-<pos>-<rnd>" by hand (buf_printf: ~2.8k instructions) */
        char pos[24];
        size_t pn = 0;
        uint64_t v = cs->pid_pos < 0 ? 0 - (uint64_t)cs->pid_pos : (uint64_t)cs->pid_pos;
        do pos[sizeof pos - 1 - pn++] = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        if (cs->pid_pos < 0) pos[sizeof pos - 1 - pn++] = '-';
        buf_append(err, "\"pid\":\"", 7);
        buf_append_str(err, hash);
        buf_append(err, "-", 1);
        buf_append(err, pos + sizeof pos - pn, pn);
        buf_append(err, "-", 1);
        buf_append_str(err, cs->pid_rnd);
        buf_append(err, "\"", 1);
    }
    sio_socket_set_data(s, cs);
    return 0;
}

static void on_connection(sio_socket_t *s, void *arg)
{
    chat_sock_t *cs = sio_socket_data(s);
    chat_t *c = cs->chat;
    chat_presence_connect(c, cs);
    if (cs->recovering) {
        int64_t after = cs->replayed_to;
        cs->recovering = false;
        cs->replayed_to = 0; /* set when the replay is over */
        chat_recovery_start(cs, after);
    } else {
        /* Cluster: a new session's messages start after what this node knew of at its start
         * (chat_recovery_ordered). */
        if (c->publish) cs->replayed_to = cs->pid_pos;
        chat_sock_go_live(cs);
    }
}

static void on_disconnect(sio_socket_t *s, void *arg, const char *reason)
{
    chat_sock_t *cs = sio_socket_data(s);
    if (!cs) return;
    chat_t *c = cs->chat;
    sio_socket_set_data(s, NULL);
    cs->socket = NULL;
    char key[ACKED_KEY_SIZE];
    acked_t *own = chat_acked_of(c, chat_acked_key(cs, key), false);
    if (own) own->expires_ms = uv_now(c->loop) + ACKED_LINGER_MS;
    limiter_release(&c->user_conns, CS_UID(cs));
    chat_recovery_cancel(cs);
    chat_presence_disconnect(c, cs);
    cs_unref(cs);
}

static const sio_nsp_handler_t chat_nsp = {on_authorize, on_connection, on_event, on_disconnect};

/* ---- lifecycle ---- */

chat_t *chat_new(uv_loop_t *loop, sio_server_t *sio, store_t *store, const auth_jwt_t *jwt,
                 const chat_options_t *opts)
{
    chat_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->loop = loop;
    c->sio = sio;
    c->store = store;
    c->jwt = jwt;
    c->opts = *opts;
    c->nbuckets = 1 << 14;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    c->npbuckets = 64;
    c->pbuckets = calloc(c->npbuckets, sizeof *c->pbuckets);
    double window = opts->rate_connections_window_s > 0 ? opts->rate_connections_window_s : 1;
    if (!c->buckets || !c->pbuckets ||
        limiter_init(&c->msg_limit, opts->rate_messages_per_s, opts->rate_messages_burst, 0) ||
        limiter_init(&c->rest_limit, opts->rate_rest_per_s, opts->rate_rest_burst, 0) ||
        limiter_init(&c->ip_limit, opts->rate_connections_per_ip / window,
                     opts->rate_connections_per_ip, opts->max_connections_per_ip) ||
        limiter_init(&c->user_conns, 0, 0, opts->max_connections_per_user) ||
        strmap_init(&c->typing) || strmap_init(&c->block_pairs) || strmap_init(&c->unread) ||
        strmap_init(&c->acked) || strmap_init(&c->marks)) {
        chat_free(c);
        return NULL;
    }
    timerq_init(loop, &c->grace_tq, opts->presence_grace_ms, chat_presence_grace_over);
    timerq_init(loop, &c->typing_tq, opts->typing_timeout_ms, chat_typing_expired);
    uv_unref((uv_handle_t *)&c->grace_tq.timer);
    uv_unref((uv_handle_t *)&c->typing_tq.timer);
    uv_timer_init(loop, &c->sweep);
    c->sweep.data = c;
    uv_timer_start(&c->sweep, on_sweep, 60000, 60000);
    uv_unref((uv_handle_t *)&c->sweep);
    chat_recovery_init(c);
    chat_unread_init(c);
    uv_timer_init(loop, &c->kick_timer);
    c->kick_timer.data = c;
    uv_unref((uv_handle_t *)&c->kick_timer);
    c->nsp = sio_server_add_nsp(sio, "/", &chat_nsp, c);
    return c;
}

size_t chat_drain(chat_t *c)
{
    c->draining = true;
    return c->sends_in_flight;
}

void chat_shutdown(chat_t *c)
{
    chat_presence_flush(c);
}

void chat_close(chat_t *c)
{
    timerq_close(&c->grace_tq);
    timerq_close(&c->typing_tq);
    uv_close((uv_handle_t *)&c->sweep, NULL);
    chat_recovery_close(c);
    chat_unread_close(c);
    while (c->kick) { /* their sockets are gone by now */
        chat_kick_t *k = c->kick;
        c->kick = k->next;
        cs_unref(k->cs);
        free(k);
    }
    uv_close((uv_handle_t *)&c->kick_timer, NULL);
}

void chat_free(chat_t *c)
{
    if (!c) return;
    if (c->buckets) chat_cache_clear(c);
    free(c->buckets);
    free(c->recorded);
    limiter_free(&c->msg_limit);
    limiter_free(&c->rest_limit);
    limiter_free(&c->ip_limit);
    limiter_free(&c->user_conns);
    chat_presence_free(c);
    strmap_free(&c->typing, free);
    strmap_free(&c->block_pairs, free);
    chat_unread_free(c);
    chat_pool_free(&c->send_pool);
    chat_pool_free(&c->reply_pool);
    buf_free(&c->doc);
    strmap_free(&c->acked, free);
    strmap_free(&c->marks, free);
    free(c);
}

store_t *chat_store(chat_t *c)
{
    return c->store;
}

const auth_jwt_t *chat_jwt(chat_t *c)
{
    return c->jwt;
}
