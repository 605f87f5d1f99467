/* The server API (issue 15): /api/server/... for the platform's backend, authenticated by a
 * server credential (a token with "scope": "server", chat_authenticate_server); and the user
 * endpoints that know about contexts (GET/POST /api/chat/conversations). Every chat effect
 * goes through the chat layer (chat.h: sends, system notices, membership changes, deletions),
 * never straight to sockets.
 *
 *   POST   /api/server/messages                          send as a user, or a system notice
 *   POST   /api/server/conversations                     direct (find or create) or group
 *   POST   /api/server/conversations/:id/members         {userId}: add to a group
 *   DELETE /api/server/conversations/:id/members/:userId remove from a group
 *   GET    /api/server/conversations/:id/messages        any conversation's history
 *   DELETE /api/server/messages/:id                      delete any message (issue 16)
 *   GET    /api/server/users/:id/export                  everything stored about a user
 *   DELETE /api/server/users/:id                         erase a user (irreversible)
 *
 * A user's token gets 403 FORBIDDEN (reason AUTH_SCOPE) here; a server credential gets 401
 * (reason AUTH_SCOPE) on the user endpoints and sockets. No per-request rate limit applies to
 * a server credential (the platform's backend is trusted; docs/security.md, "Server credentials").
 */
#include "api/api.h"
#include "api/api_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_json.h"
#include "core/id.h"

#define SERVER_SENDER "system"

static bool valid_user(json_t *v)
{
    return json_is_string(v) && auth_sub_is_valid(json_string_value(v), json_string_length(v));
}

static api_ctx_t *ctx_new(api_t *a, http_conn_t *hc, json_t *body)
{
    api_ctx_t *c = api_ctx_new(a, hc, 0);
    if (!c) {
        json_decref(body);
        api_respond_error(hc, 500, "INTERNAL", "out of memory");
        return NULL;
    }
    c->body = body;
    return c;
}

/* The answer of a chat function, to the client if it is still there. */
static void answered(void *ud, const chat_err_t *err, int status, str_t body)
{
    api_ctx_t *c = ud;
    if (c->hc) {
        if (err)
            api_respond_refusal(c->hc, err);
        else
            http_respond(c->hc, status, "application/json; charset=utf-8", NULL, body.ptr,
                         body.len);
    }
    api_ctx_free(c);
}

static void sent(void *ud, const chat_err_t *err, str_t doc, bool dup, int64_t pos)
{
    (void)pos;
    api_ctx_t *c = ud;
    if (c->hc) {
        if (err) {
            api_respond_refusal(c->hc, err);
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

/* limit= : absent -> def; clamped to max; anything but a positive integer -> -1. */
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

/* ---- the user endpoints that know contexts (/api/chat/conversations) ---- */

int api_conversations_list(api_t *a, http_conn_t *hc, const http_request_t *req,
                           const chat_user_t *user)
{
    long limit = query_limit(req, 20, 100);
    char before[STORE_CURSOR_LEN + 8], type[STORE_CONTEXT_PART_MAX + 2],
        id[STORE_CONTEXT_PART_MAX + 2];
    int bl = http_query_param(req->query, "before", before, sizeof before);
    if (limit < 0 || bl == -2 || (bl >= 0 && bl != STORE_CURSOR_LEN)) {
        api_respond_error(hc, 400, "BAD_REQUEST",
                          "limit must be a positive integer; before a cursor");
        return HTTP_DONE;
    }
    int tl = http_query_param(req->query, "contextType", type, sizeof type);
    int il = http_query_param(req->query, "contextId", id, sizeof id);
    if (tl != -1 || il != -1) {
        json_t *t = tl > 0 ? json_stringn(type, (size_t)tl) : json_null();
        json_t *i = il > 0 ? json_stringn(id, (size_t)il) : json_null();
        json_t *probe = json_pack("{s:o, s:o}", "type", t, "id", i);
        store_context_t ctx;
        const char *why = chat_context_problem(api_chat(a), probe, &ctx);
        json_decref(probe);
        if (why || tl <= 0 || il <= 0) {
            api_respond_error(hc, 400, "BAD_REQUEST",
                              "contextType and contextId go together, each 1-64 characters of "
                              "A-Z a-z 0-9 _ . : -");
            return HTTP_DONE;
        }
    }
    api_ctx_t *c = ctx_new(a, hc, NULL);
    if (!c) return HTTP_DONE;
    c->user = *user;
    chat_conversations_about(api_chat(a), c->user.id,
                             bl > 0 ? str_make(before, (size_t)bl) : STR_NULL, (size_t)limit,
                             tl > 0 ? str_make(type, (size_t)tl) : STR_NULL,
                             il > 0 ? str_make(id, (size_t)il) : STR_NULL, answered, c);
    return HTTP_DEFERRED;
}

/* participantIds: 1-255 valid ids; who: the creator (left out of the check "someone else"). */
static const char *participants_problem(json_t *ids, const char *who)
{
    size_t n = json_array_size(ids);
    if (!json_is_array(ids) || n == 0 || n >= STORE_GROUP_MAX)
        return "participantIds must be a non-empty array of user ids (at most 255)";
    bool someone_else = false;
    for (size_t i = 0; i < n; i++) {
        json_t *id = json_array_get(ids, i);
        if (!valid_user(id))
            return "participantIds must hold user ids: 1-64 characters of A-Z a-z 0-9 _ -";
        if (strcmp(json_string_value(id), SERVER_SENDER) == 0)
            return "\"system\" cannot be a participant";
        if (!who || strcmp(json_string_value(id), who) != 0) someone_else = true;
    }
    if (!someone_else) return "participantIds must name someone besides you";
    return NULL;
}

static const char *title_problem(json_t *title)
{
    if (title && !json_is_null(title) &&
        (!json_is_string(title) || json_string_length(title) > 200))
        return "title must be a string of at most 200 bytes";
    return NULL;
}

/* The other participants than `who` (distinct), for a direct conversation: 1 when direct. */
static size_t others(json_t *ids, const char *who, const char **other)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        if (strcmp(id, who) == 0 || (n && strcmp(id, *other) == 0)) continue;
        if (n++ == 0) *other = id;
    }
    return n;
}

/* Creates (or, direct with a context... or without, finds) the conversation of `creator` and
 * the participants: direct when `direct`, else a group. */
static int create_conversation(api_t *a, http_conn_t *hc, json_t *b, const char *creator,
                               bool direct_if_one, const chat_user_t *as)
{
    json_t *ids = json_object_get(b, "participantIds"), *title = json_object_get(b, "title");
    store_context_t ctx;
    const char *why = participants_problem(ids, creator);
    if (!why) why = title_problem(title);
    if (!why) why = chat_context_problem(api_chat(a), json_object_get(b, "context"), &ctx);
    const char *other = NULL;
    size_t n_others = why ? 0 : others(ids, creator, &other);
    json_t *type = json_object_get(b, "type");
    bool want_group = json_is_string(type) && strcmp(json_string_value(type), "group") == 0;
    if (!why && type && !want_group &&
        !(json_is_string(type) && strcmp(json_string_value(type), "direct") == 0))
        why = "type must be direct or group";
    if (!why && json_is_string(type) && !want_group && n_others != 1)
        why = "a direct conversation has exactly two participants";
    bool direct = !want_group && n_others == 1 && (direct_if_one || ctx.type.ptr);
    if (!why && direct && title && !json_is_null(title))
        why = "a direct conversation has no title (a context may have one)";
    if (why) {
        api_respond_error(hc, 400, "BAD_REQUEST", why);
        json_decref(b);
        return HTTP_DONE;
    }
    api_ctx_t *c = ctx_new(a, hc, b);
    if (!c) return HTTP_DONE;
    c->user = *as;
    if (direct) {
        if (direct_if_one) /* the server API */
            chat_direct_open(api_chat(a), creator, other, &ctx, answered, c);
        else
            chat_direct_open_as_user(api_chat(a), creator, other, &ctx, answered, c);
        return HTTP_DEFERRED;
    }
    size_t n = json_array_size(ids);
    str_t participants[STORE_GROUP_MAX];
    for (size_t i = 0; i < n; i++) {
        json_t *id = json_array_get(ids, i);
        participants[i] = str_make(json_string_value(id), json_string_length(id));
    }
    chat_group_create_about(api_chat(a), creator, participants, n,
                            json_is_string(title)
                                ? str_make(json_string_value(title), json_string_length(title))
                                : STR_NULL,
                            &ctx, answered, c);
    return HTTP_DEFERRED;
}

int api_conversations_create(api_t *a, http_conn_t *hc, str_t body, const chat_user_t *user)
{
    json_t *b = api_parse_body(hc, body);
    if (!b) return HTTP_DONE;
    /* A user's request: one other participant with a context is the direct conversation about
     * it (found or created); anything else a group, as before. */
    return create_conversation(a, hc, b, user->id, false, user);
}

/* ---- /api/server/... ---- */

static int server_conversation_create(api_t *a, http_conn_t *hc, str_t body, const chat_user_t *as)
{
    json_t *b = api_parse_body(hc, body);
    if (!b) return HTTP_DONE;
    json_t *ids = json_object_get(b, "participantIds");
    json_t *first = json_array_get(ids, 0);
    if (!valid_user(first)) {
        api_respond_error(hc, 400, "BAD_REQUEST",
                          "participantIds must be an array of at least two user ids");
        json_decref(b);
        return HTTP_DONE;
    }
    /* the first participant stands for the creator; two participants make a direct one */
    char creator[STORE_USER_ID_MAX + 1];
    snprintf(creator, sizeof creator, "%s", json_string_value(first));
    return create_conversation(a, hc, b, creator, true, as);
}

/* A system notice into the conversation that chat_direct_open answered. */
static void system_after_open(void *ud, const chat_err_t *err, int status, str_t body)
{
    (void)status;
    api_ctx_t *c = ud;
    if (err) {
        if (c->hc) api_respond_refusal(c->hc, err);
        api_ctx_free(c);
        return;
    }
    json_t *doc = json_loadb(body.ptr, body.len, 0, NULL);
    json_t *id = json_object_get(doc, "_id");
    if (!json_is_string(id) || json_string_length(id) != ID_LEN) {
        json_decref(doc);
        if (c->hc) api_respond_error(c->hc, 500, "INTERNAL", "could not open the conversation");
        api_ctx_free(c);
        return;
    }
    memcpy(c->id, json_string_value(id), ID_LEN);
    c->id[ID_LEN] = '\0';
    json_decref(doc);
    json_t *content = json_object_get(c->body, "content"),
           *cmid = json_object_get(c->body, "clientMsgId");
    chat_system_send(
        api_chat(c->api), c->id, str_make(json_string_value(content), json_string_length(content)),
        json_is_string(cmid) ? str_make(json_string_value(cmid), json_string_length(cmid))
                             : STR_NULL,
        sent, c);
}

static int server_message(api_t *a, http_conn_t *hc, str_t body)
{
    json_t *b = api_parse_body(hc, body);
    if (!b) return HTTP_DONE;
    json_t *sender = json_object_get(b, "senderId"), *type = json_object_get(b, "type"),
           *conv = json_object_get(b, "conversationId"), *rid = json_object_get(b, "recipientId"),
           *ids = json_object_get(b, "participantIds"), *content = json_object_get(b, "content"),
           *cmid = json_object_get(b, "clientMsgId");
    bool sys_sender = json_is_string(sender) && strcmp(json_string_value(sender), "system") == 0;
    bool sys_type = json_is_string(type) && strcmp(json_string_value(type), "system") == 0;
    const char *why = NULL;
    store_context_t ctx;
    int ways = (conv != NULL) + (rid != NULL) + (ids != NULL);
    if (!sender && !sys_type)
        why = "senderId is required: a user id, or \"system\" for a system notice";
    else if (sender && !valid_user(sender))
        why = "senderId must be a user id (1-64 characters of A-Z a-z 0-9 _ -) or \"system\"";
    else if ((sys_sender && type && !sys_type) || (sys_type && sender && !sys_sender))
        why = "a system notice has senderId \"system\" and type \"system\"";
    else if (ways != 1)
        why = "give one of conversationId, recipientId or participantIds (with context)";
    else if ((why = chat_context_problem(api_chat(a), json_object_get(b, "context"), &ctx)))
        ;
    else if (conv && !(json_is_string(conv) &&
                       id_valid(str_make(json_string_value(conv), json_string_length(conv)))))
        why = "conversationId must be a 24-character hex id";
    else if (conv && ctx.type.ptr)
        why = "context goes with recipientId or participantIds, not conversationId";
    else if (ids && !ctx.type.ptr)
        why = "participantIds go with a context (else use conversationId or recipientId)";
    else if (ids && (json_array_size(ids) != 2 || participants_problem(ids, NULL) ||
                     strcmp(json_string_value(json_array_get(ids, 0)),
                            json_string_value(json_array_get(ids, 1))) == 0))
        why = "participantIds must be two different user ids";
    else if (rid && (sys_type || sys_sender))
        why = "a system notice goes to a conversationId or to participantIds with a context";
    if (!why && (sys_type || sys_sender)) {
        if (!json_is_string(content))
            why = "content must be a string";
        else
            why = chat_content_check(
                api_chat(a), str_make(json_string_value(content), json_string_length(content)));
        if (!why && cmid &&
            (!json_is_string(cmid) || json_string_length(cmid) == 0 ||
             json_string_length(cmid) > STORE_CLIENT_MSG_ID_MAX))
            why = "clientMsgId must be a non-empty string of at most 128 bytes";
        if (!why && json_object_get(b, "fileId")) why = "a system notice has no file";
    }
    if (!why && ids && !sys_sender && !sys_type) {
        /* as a user into the direct conversation about the context: one of the two sends */
        const char *s = json_string_value(sender);
        const char *p0 = json_string_value(json_array_get(ids, 0)),
                   *p1 = json_string_value(json_array_get(ids, 1));
        if (strcmp(s, p0) != 0 && strcmp(s, p1) != 0) why = "senderId must be a participant";
    }
    if (why) {
        api_respond_error(hc, 400, "BAD_REQUEST", why);
        json_decref(b);
        return HTTP_DONE;
    }
    api_ctx_t *c = ctx_new(a, hc, b);
    if (!c) return HTTP_DONE;
    if (sys_type || sys_sender) {
        if (conv) {
            memcpy(c->id, json_string_value(conv), ID_LEN);
            c->id[ID_LEN] = '\0';
            chat_system_send(api_chat(a), c->id,
                             str_make(json_string_value(content), json_string_length(content)),
                             json_is_string(cmid)
                                 ? str_make(json_string_value(cmid), json_string_length(cmid))
                                 : STR_NULL,
                             sent, c);
        } else {
            chat_direct_open(api_chat(a), json_string_value(json_array_get(ids, 0)),
                             json_string_value(json_array_get(ids, 1)), &ctx, system_after_open, c);
        }
        return HTTP_DEFERRED;
    }
    /* As the user: the user's own send pipeline (validation, membership, delivery). */
    snprintf(c->user.id, sizeof c->user.id, "%s", json_string_value(sender));
    json_t *payload = json_deep_copy(b);
    json_object_del(payload, "senderId");
    json_object_del(payload, "participantIds");
    if (ids) {
        const char *p0 = json_string_value(json_array_get(ids, 0));
        json_object_set(payload, "recipientId",
                        json_array_get(ids, strcmp(p0, c->user.id) == 0 ? 1 : 0));
    }
    json_decref(c->body);
    c->body = payload;
    chat_send(api_chat(a), &c->user, payload, sent, c);
    return HTTP_DEFERRED;
}

static int server_history(api_t *a, http_conn_t *hc, const http_request_t *req, str_t conv)
{
    if (!id_valid(conv)) {
        api_respond_error(hc, 400, "BAD_REQUEST", "conversationId must be a 24-character hex id");
        return HTTP_DONE;
    }
    long limit = query_limit(req, 50, STORE_PAGE_MAX);
    char before[32];
    int bl = http_query_param(req->query, "before", before, sizeof before);
    long long before_seq = 0;
    if (bl == 0) bl = -2;
    if (bl > 0) {
        char *end;
        errno = 0;
        before_seq = strtoll(before, &end, 10);
        if (*end || before_seq < 1 || errno == ERANGE) bl = -2;
    }
    if (limit < 0 || bl == -2) {
        api_respond_error(hc, 400, "BAD_REQUEST", "limit and before must be positive integers");
        return HTTP_DONE;
    }
    api_ctx_t *c = ctx_new(a, hc, NULL);
    if (!c) return HTTP_DONE;
    memcpy(c->id, conv.ptr, ID_LEN);
    c->id[ID_LEN] = '\0';
    chat_history_any(api_chat(a), c->id, before_seq, (size_t)limit, answered, c);
    return HTTP_DEFERRED;
}

static int server_members(api_t *a, http_conn_t *hc, str_t body, str_t conv, str_t user, bool add)
{
    json_t *b = NULL;
    if (add) {
        if (!(b = api_parse_body(hc, body))) return HTTP_DONE;
        json_t *u = json_object_get(b, "userId");
        user = json_is_string(u) ? str_make(json_string_value(u), json_string_length(u)) : STR_NULL;
    }
    const char *why = !id_valid(conv) ? "conversationId must be a 24-character hex id"
                      : !user.ptr || !auth_sub_is_valid(user.ptr, user.len)
                          ? "userId must be 1-64 characters of A-Z a-z 0-9 _ -"
                      : str_eq_cstr(user, SERVER_SENDER) ? "\"system\" cannot be a member"
                                                         : NULL;
    if (why) {
        api_respond_error(hc, 400, "BAD_REQUEST", why);
        json_decref(b);
        return HTTP_DONE;
    }
    api_ctx_t *c = ctx_new(a, hc, b);
    if (!c) return HTTP_DONE;
    memcpy(c->id, conv.ptr, ID_LEN);
    c->id[ID_LEN] = '\0';
    snprintf(c->user.id, sizeof c->user.id, "%.*s", (int)user.len, user.ptr);
    chat_members_change(api_chat(a), c->id, c->user.id, add, answered, c);
    return HTTP_DEFERRED;
}

static int server_delete_message(api_t *a, http_conn_t *hc, str_t msg)
{
    if (!id_valid(msg)) {
        api_respond_error(hc, 400, "BAD_REQUEST", "messageId must be a 24-character hex id");
        return HTTP_DONE;
    }
    api_ctx_t *c = ctx_new(a, hc, NULL);
    if (!c) return HTTP_DONE;
    memcpy(c->id, msg.ptr, ID_LEN);
    c->id[ID_LEN] = '\0';
    chat_message_delete_server(api_chat(a), c->id, answered, c);
    return HTTP_DEFERRED;
}

static int server_user(api_t *a, http_conn_t *hc, const http_request_t *req, str_t user, bool erase)
{
    if (!auth_sub_is_valid(user.ptr, user.len) || str_eq_cstr(user, SERVER_SENDER)) {
        api_respond_error(hc, 400, "BAD_REQUEST",
                          "userId must be 1-64 characters of A-Z a-z 0-9 _ -");
        return HTTP_DONE;
    }
    long long after = 0;
    long limit = query_limit(req, 100, STORE_PAGE_MAX);
    if (!erase) {
        char cur[24];
        int n = http_query_param(req->query, "cursor", cur, sizeof cur);
        if (n != -1) {
            char *end = NULL;
            errno = 0;
            after = n > 0 ? strtoll(cur, &end, 10) : 0;
            if (n <= 0 || !end || *end || after < 1 || errno == ERANGE || cur[0] == '+') {
                api_respond_error(hc, 400, "BAD_REQUEST",
                                  "cursor must be a nextCursor from before");
                return HTTP_DONE;
            }
        }
        if (limit < 0) {
            api_respond_error(hc, 400, "BAD_REQUEST", "limit must be a positive integer");
            return HTTP_DONE;
        }
    }
    api_ctx_t *c = ctx_new(a, hc, NULL);
    if (!c) return HTTP_DONE;
    snprintf(c->user.id, sizeof c->user.id, "%.*s", (int)user.len, user.ptr);
    if (erase)
        chat_user_erase(api_chat(a), c->user.id, answered, c);
    else
        chat_user_export(api_chat(a), c->user.id, after, (size_t)limit, answered, c);
    return HTTP_DEFERRED;
}

/* Splits the path into at most max segments; returns how many there are (may be more). */
static int split(str_t path, str_t *seg, int max)
{
    int n = 0;
    size_t i = 0;
    while (i < path.len) {
        while (i < path.len && path.ptr[i] == '/') i++;
        if (i >= path.len) break;
        size_t start = i;
        while (i < path.len && path.ptr[i] != '/') i++;
        if (n < max) seg[n] = str_make(path.ptr + start, i - start);
        n++;
    }
    return n;
}

/* Verifies the server credential; answers 401 (no or bad token) or 403 (a user's token). */
int api_server_auth(api_t *a, http_conn_t *hc, const http_request_t *req)
{
    str_t h = http_request_header(req, "authorization");
    str_t token = STR_NULL;
    if (h.ptr && h.len > 7 && strncasecmp(h.ptr, "Bearer ", 7) == 0)
        token = str_make(h.ptr + 7, h.len - 7);
    chat_user_t who;
    int rc = chat_authenticate_server(api_chat(a), token, &who);
    if (rc == AUTH_OK) return 0;
    bool scope = rc == AUTH_ERR_SCOPE;
    json_t *err = chat_error_json(scope ? "FORBIDDEN" : "UNAUTHORIZED",
                                  scope ? "the server API needs a server credential (scope: server)"
                                  : rc == AUTH_ERR_MISSING
                                      ? "Authorization: Bearer <server credential> is required"
                                  : rc == AUTH_ERR_EXPIRED ? "the token has expired"
                                                           : "the token is not valid");
    json_object_set_new(err, "reason", json_string(auth_error_code(rc)));
    json_t *doc = json_pack("{s:o}", "error", err);
    size_t len;
    char *text = chat_dumps(doc, &len);
    http_respond(hc, scope ? 403 : 401, "application/json; charset=utf-8",
                 scope ? NULL : "WWW-Authenticate: Bearer\r\n", text, len);
    free(text);
    json_decref(doc);
    return -1;
}

long long api_server_body_max(api_t *a, const http_request_t *req)
{
    str_t seg[7];
    int n = split(req->path, seg, 7);
    bool post = str_eq_cstr(req->method, "POST");
    if (post && n == 3 && str_eq_cstr(seg[2], "messages"))
        return (long long)a->opts.max_message_length * 12 + 16 * 1024;
    if (post && n == 3 && str_eq_cstr(seg[2], "conversations")) return 64 * 1024;
    return API_SMALL_BODY_MAX;
}

int api_handle_server(api_t *a, http_conn_t *hc, const http_request_t *req, str_t body)
{
    str_t seg[7];
    int n = split(req->path, seg, 7);
    const char *m = NULL;
    enum {
        S_MSG,
        S_MSG_ID,
        S_CONVS,
        S_MEMBERS,
        S_MEMBER,
        S_HISTORY,
        S_EXPORT,
        S_ERASE,
        S_NONE
    } ep = S_NONE;
    const char *allow = "";
    if (n == 3 && str_eq_cstr(seg[2], "messages"))
        ep = S_MSG, allow = "POST";
    else if (n == 4 && str_eq_cstr(seg[2], "messages"))
        ep = S_MSG_ID, allow = "DELETE";
    else if (n == 3 && str_eq_cstr(seg[2], "conversations"))
        ep = S_CONVS, allow = "POST";
    else if (n == 5 && str_eq_cstr(seg[2], "conversations") && str_eq_cstr(seg[4], "members"))
        ep = S_MEMBERS, allow = "POST";
    else if (n == 6 && str_eq_cstr(seg[2], "conversations") && str_eq_cstr(seg[4], "members"))
        ep = S_MEMBER, allow = "DELETE";
    else if (n == 5 && str_eq_cstr(seg[2], "conversations") && str_eq_cstr(seg[4], "messages"))
        ep = S_HISTORY, allow = "GET";
    else if (n == 5 && str_eq_cstr(seg[2], "users") && str_eq_cstr(seg[4], "export"))
        ep = S_EXPORT, allow = "GET";
    else if (n == 4 && str_eq_cstr(seg[2], "users"))
        ep = S_ERASE, allow = "DELETE";
    if (ep == S_NONE) {
        api_respond_error(hc, 404, "NOT_FOUND", "no such endpoint");
        return HTTP_DONE;
    }
    m = allow;
    if (!str_eq_cstr(req->method, m)) {
        api_method_not_allowed(hc, allow);
        return HTTP_DONE;
    }
    if (api_server_auth(a, hc, req) < 0) return HTTP_DONE;
    switch (ep) {
    case S_MSG:
        return server_message(a, hc, body);
    case S_MSG_ID:
        return server_delete_message(a, hc, seg[3]);
    case S_CONVS: {
        chat_user_t as;
        memset(&as, 0, sizeof as);
        return server_conversation_create(a, hc, body, &as);
    }
    case S_MEMBERS:
        return server_members(a, hc, body, seg[3], STR_NULL, true);
    case S_MEMBER:
        return server_members(a, hc, body, seg[3], seg[5], false);
    case S_HISTORY:
        return server_history(a, hc, req, seg[3]);
    case S_EXPORT:
        return server_user(a, hc, req, seg[3], false);
    case S_ERASE:
        return server_user(a, hc, req, seg[3], true);
    default:
        return HTTP_DONE;
    }
}
