/* Standalone accounts: POST /api/auth/register and /login. Passwords are hashed and verified
 * (argon2id) on the libuv thread pool, never on the loop; an unknown username is verified
 * against a dummy hash so that the answer takes as long as for a known one. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_internal.h"
#include "chat/chat_json.h"
#include "core/log.h"

static const char *valid_role(json_t *role)
{
    if (!role || json_is_null(role)) return "tenant";
    if (!json_is_string(role) || json_string_length(role) == 0 || json_string_length(role) > 32)
        return NULL;
    for (const char *p = json_string_value(role); *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == '-'))
            return NULL;
    return json_string_value(role);
}

/* ---- accounts ---- */

static void issue_token(api_ctx_t *c, int status, const store_user_t *u, const char *id)
{
    char *token = NULL;
    char sub[STORE_USER_ID_MAX + 1], name[129], role[33];
    snprintf(sub, sizeof sub, "%s", id);
    snprintf(name, sizeof name, "%.*s", (int)u->name.len, u->name.ptr ? u->name.ptr : "");
    snprintf(role, sizeof role, "%.*s", (int)u->role.len, u->role.ptr ? u->role.ptr : "");
    if (auth_jwt_sign(chat_jwt(c->api->chat), sub, name, role, (int64_t)time(NULL),
                      c->api->opts.token_ttl_s, &token) != AUTH_OK) {
        api_respond_error(c->hc, 500, "INTERNAL", "could not sign a token");
        return;
    }
    json_t *user = json_pack("{s:s, s:o, s:s, s:s}", "id", sub, "username",
                             chat_str_or_null(u->username), "name", name, "role", role);
    json_t *doc = json_pack("{s:s, s:o}", "token", token, "user", user);
    api_respond_json(c->hc, status, doc);
    json_decref(doc);
    free(token);
}

static void account_created(store_req_t *req)
{
    api_ctx_t *c = (api_ctx_t *)req;
    if (c->hc) {
        if (req->status == STORE_E_CONFLICT) {
            api_respond_error(c->hc, 409, "CONFLICT", "that username is taken");
        } else if (!api_store_failed(c)) {
            store_account_create_t *ac = &req->u.account_create;
            store_user_t u = {.username = ac->username, .name = ac->name, .role = ac->role};
            issue_token(c, 201, &u, ac->id);
        }
    }
    api_ctx_free(c);
}

/* A request context that owns the body and a copy of the password (wiped when freed). Answers
 * 500 itself and returns NULL when out of memory (the body is released either way). */
static api_ctx_t *password_ctx(api_t *a, http_conn_t *hc, json_t *b, json_t *password, size_t arena)
{
    api_ctx_t *c = api_ctx_new(a, hc, arena);
    size_t len = json_string_length(password);
    char *copy = c ? malloc(len + 1) : NULL;
    if (!copy) {
        if (c) api_ctx_free(c);
        json_decref(b);
        api_respond_error(hc, 500, "INTERNAL", "out of memory");
        return NULL;
    }
    memcpy(copy, json_string_value(password), len + 1);
    c->body = b;
    c->password = copy;
    c->password_len = len;
    return c;
}

static void hash_work(uv_work_t *w)
{
    api_ctx_t *c = w->data;
    c->ok = auth_password_hash(c->password, c->password_len, c->hash) == 0;
}

static void hash_after(uv_work_t *w, int status)
{
    api_ctx_t *c = w->data;
    if (!c->hc) {
        api_ctx_free(c);
        return;
    }
    if (!c->ok || status != 0) {
        api_respond_error(c->hc, 500, "INTERNAL", "could not hash the password");
        api_ctx_free(c);
        return;
    }
    json_t *b = c->body;
    const char *username = json_string_value(json_object_get(b, "username"));
    json_t *name = json_object_get(b, "name");
    store_account_create_t *ac = &c->req.u.account_create;
    ac->username = str_cstr(username);
    ac->password_hash = str_cstr(c->hash);
    ac->name = json_is_string(name) && json_string_length(name) ? str_cstr(json_string_value(name))
                                                                : str_cstr(username);
    ac->role = str_cstr(valid_role(json_object_get(b, "role")));
    c->req.op = STORE_OP_ACCOUNT_CREATE;
    api_submit(c, account_created);
}

int api_handle_register(api_t *a, http_conn_t *hc, str_t body)
{
    json_t *b = api_parse_body(hc, body);
    if (!b) return HTTP_DONE;
    json_t *username = json_object_get(b, "username"), *password = json_object_get(b, "password");
    json_t *name = json_object_get(b, "name");
    const char *why = NULL;
    if (!json_is_string(username) || json_string_length(username) < 3 ||
        json_string_length(username) > 32 ||
        !auth_sub_is_valid(json_string_value(username), json_string_length(username)))
        why = "username must be 3-32 characters of A-Z a-z 0-9 _ -";
    else if (!json_is_string(password) ||
             auth_password_policy(json_string_length(password)) != AUTH_PW_OK)
        why = "password must be 8-256 bytes";
    else if (name && !json_is_null(name) &&
             (!json_is_string(name) || json_string_length(name) > 128))
        why = "name must be a string of at most 128 bytes";
    else if (!valid_role(json_object_get(b, "role")))
        why = "role must be 1-32 letters, '_' or '-' (e.g. tenant, owner)";
    if (why) {
        api_respond_error(hc, 400, "BAD_REQUEST", why);
        json_decref(b);
        return HTTP_DONE;
    }
    api_ctx_t *c = password_ctx(a, hc, b, password, 0);
    if (!c) return HTTP_DONE;
    c->work.data = c;
    uv_queue_work(a->loop, &c->work, hash_work, hash_after);
    return HTTP_DEFERRED;
}

static void verify_work(uv_work_t *w)
{
    api_ctx_t *c = w->data;
    c->ok = auth_password_verify(c->hash, c->password, c->password_len);
}

static void verify_after(uv_work_t *w, int status)
{
    api_ctx_t *c = w->data;
    if (c->hc) {
        store_user_t *u = &c->req.u.account_get.user;
        if (c->ok && c->req.status == STORE_OK && status == 0) {
            char id[STORE_USER_ID_MAX + 1];
            snprintf(id, sizeof id, "%.*s", (int)u->id.len, u->id.ptr);
            issue_token(c, 200, u, id);
        } else {
            /* Unknown user and wrong password answer alike. */
            api_respond_error(c->hc, 401, "UNAUTHORIZED", "invalid username or password");
        }
    }
    api_ctx_free(c);
}

static void account_fetched(store_req_t *req)
{
    api_ctx_t *c = (api_ctx_t *)req;
    if (req->status != STORE_OK && req->status != STORE_E_NOT_FOUND) {
        if (c->hc) api_store_failed(c);
        api_ctx_free(c);
        return;
    }
    store_user_t *u = &req->u.account_get.user;
    /* Unknown users verify against a dummy hash, so timing does not tell them apart. */
    const char *hash =
        req->status == STORE_OK && u->password_hash.ptr ? u->password_hash.ptr : c->api->dummy_hash;
    snprintf(c->hash, sizeof c->hash, "%s", hash);
    c->work.data = c;
    uv_queue_work(c->api->loop, &c->work, verify_work, verify_after);
}

int api_handle_login(api_t *a, http_conn_t *hc, str_t body)
{
    json_t *b = api_parse_body(hc, body);
    if (!b) return HTTP_DONE;
    json_t *username = json_object_get(b, "username"), *password = json_object_get(b, "password");
    if (!json_is_string(username) || !json_is_string(password) ||
        json_string_length(username) == 0 || json_string_length(username) > 64 ||
        json_string_length(password) > 256) {
        api_respond_error(hc, 400, "BAD_REQUEST", "username and password are required");
        json_decref(b);
        return HTTP_DONE;
    }
    api_ctx_t *c = password_ctx(a, hc, b, password, 2048);
    if (!c) return HTTP_DONE;
    c->req.op = STORE_OP_ACCOUNT_GET;
    c->req.u.account_get.username = str_cstr(json_string_value(username));
    return api_submit(c, account_fetched);
}
