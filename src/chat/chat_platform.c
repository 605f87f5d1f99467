/* What a platform needs of the chat layer (issue 15): conversations about something (a
 * context), and the server API's effects: system notices and group membership changes. Each
 * goes through the store and then the delivery seam, as a user's send does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"

#define CONTEXT_TITLE_CHARS 200

static bool context_part(json_t *v)
{
    if (!json_is_string(v)) return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n < 1 || n > STORE_CONTEXT_PART_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == ':' || ch == '-';
        if (!ok) return false;
    }
    return true;
}

const char *chat_context_problem(chat_t *c, json_t *v, store_context_t *out)
{
    (void)c;
    memset(out, 0, sizeof *out);
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_object(v)) return "context must be an object {type, id, title?}";
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        if (strcmp(key, "type") && strcmp(key, "id") && strcmp(key, "title"))
            return "context has only type, id and title";
    }
    json_t *type = json_object_get(v, "type"), *id = json_object_get(v, "id"),
           *title = json_object_get(v, "title");
    if (!context_part(type)) return "context.type must be 1-64 characters of A-Z a-z 0-9 _ . : -";
    if (!context_part(id)) return "context.id must be 1-64 characters of A-Z a-z 0-9 _ . : -";
    if (title && !json_is_null(title)) {
        if (!json_is_string(title)) return "context.title must be a string";
        const char *why = chat_content_problem(json_string_value(title), json_string_length(title),
                                               CONTEXT_TITLE_CHARS, false);
        if (why) return "context.title must be at most 200 characters, without control characters";
        out->title = str_make(json_string_value(title), json_string_length(title));
    }
    out->type = str_make(json_string_value(type), json_string_length(type));
    out->id = str_make(json_string_value(id), json_string_length(id));
    return NULL;
}

const char *chat_content_check(chat_t *c, str_t content)
{
    return chat_content_problem(content.ptr ? content.ptr : "", content.len,
                                c->opts.max_message_length, true);
}

/* ---- requests ---- */

typedef struct {
    store_req_t req; /* first: the store's done() gets this pointer */
    chat_t *chat;
    chat_answer_fn done;
    chat_send_done send_done;
    void *ud;
    char conv[ID_SIZE];
    char user[STORE_USER_ID_MAX + 1];
    char other[STORE_USER_ID_MAX + 1];
    bool add;
    str_t members[STORE_GROUP_MAX + 1]; /* system notice: the audience (in `names`) */
    size_t nmembers;
    char *names;
    char *strings; /* copies of the inputs */
    char arena[];
} plat_t;

static size_t conv_room(const chat_t *c)
{
    size_t content = c->opts.max_message_length * 4;
    if (content > STORE_CONTENT_MAX) content = STORE_CONTENT_MAX;
    return content + 64 * 1024;
}

static plat_t *plat_new(chat_t *c, size_t arena, size_t strings)
{
    plat_t *p = calloc(1, sizeof *p + arena);
    if (!p) return NULL;
    p->chat = c;
    p->req.arena.ptr = p->arena;
    p->req.arena.cap = arena;
    if (strings && !(p->strings = malloc(strings))) {
        free(p);
        return NULL;
    }
    return p;
}

static void plat_free(plat_t *p)
{
    free(p->strings);
    free(p->names);
    free(p);
}

static void answer_err(plat_t *p, int status, const char *code, const char *msg)
{
    chat_err_t e = {status, code, msg, 0};
    if (p->send_done)
        p->send_done(p->ud, &e, STR_NULL, false, 0);
    else
        p->done(p->ud, &e, 0, STR_NULL);
}

static bool store_failed(plat_t *p)
{
    if (p->req.status == STORE_OK) return false;
    chat_err_t e;
    chat_store_err(p->req.status, &e);
    if (p->send_done)
        p->send_done(p->ud, &e, STR_NULL, false, 0);
    else
        p->done(p->ud, &e, 0, STR_NULL);
    return true;
}

static void plat_submit(plat_t *p, void (*fn)(store_req_t *))
{
    p->req.done = fn;
    if (store_submit(p->chat->store, &p->req) != 0) {
        answer_err(p, 503, "INTERNAL", "the server is shutting down");
        plat_free(p);
    }
}

/* Answers doc (taken over) as text. */
static void answer_doc(plat_t *p, int status, json_t *doc)
{
    size_t len;
    char *text = chat_dumps(doc, &len);
    json_decref(doc);
    if (!text) {
        answer_err(p, 500, "INTERNAL", "could not encode the answer");
        return;
    }
    p->done(p->ud, NULL, status, str_make(text, len));
    free(text);
}

/* Copies s into the strings area at *at (NUL-terminated). */
static str_t keep(char **at, str_t s)
{
    if (!s.ptr) return STR_NULL;
    char *d = *at;
    memcpy(d, s.ptr, s.len);
    d[s.len] = '\0';
    *at += s.len + 1;
    return str_make(d, s.len);
}

static size_t ctx_len(const store_context_t *x)
{
    return x ? x->type.len + x->id.len + x->title.len + 3 : 0;
}

static store_context_t keep_ctx(char **at, const store_context_t *x)
{
    store_context_t k = {0};
    if (!x || !x->type.ptr) return k;
    k.type = keep(at, x->type);
    k.id = keep(at, x->id);
    k.title = keep(at, x->title);
    return k;
}

/* ---- the direct conversation about a context ---- */

static void direct_opened(store_req_t *req)
{
    plat_t *p = (plat_t *)req;
    if (!store_failed(p)) {
        chat_cache_members(p->chat, &req->u.direct_open.conv);
        answer_doc(p, req->u.direct_open.created ? 201 : 200,
                   chat_conversation_json(&req->u.direct_open.conv));
    }
    plat_free(p);
}

static void direct_submit(plat_t *p)
{
    plat_submit(p, direct_opened);
}

static void direct_block_known(chat_t *c, void *arg, bool blocked, int status)
{
    (void)c;
    plat_t *p = arg;
    if (status != STORE_OK) {
        chat_err_t e;
        chat_store_err(status, &e);
        p->done(p->ud, &e, 0, STR_NULL);
        plat_free(p);
    } else if (blocked) {
        answer_err(p, 403, "FORBIDDEN", chat_msg_blocked);
        plat_free(p);
    } else {
        direct_submit(p);
    }
}

/* as_user: a user's own request, refused (FORBIDDEN, reason BLOCKED) when one of the two
 * blocked the other, so that a blocked user cannot fill the other's list with threads. */
static void direct_open(chat_t *c, const char *user, const char *other, const store_context_t *ctx,
                        bool as_user, chat_answer_fn done, void *ud)
{
    plat_t *p = plat_new(c, conv_room(c), ctx_len(ctx) + 1);
    if (!p) {
        chat_err_t e = {500, "INTERNAL", "out of memory", 0};
        done(ud, &e, 0, STR_NULL);
        return;
    }
    p->done = done;
    p->ud = ud;
    snprintf(p->user, sizeof p->user, "%s", user);
    snprintf(p->other, sizeof p->other, "%s", other);
    char *at = p->strings;
    p->req.op = STORE_OP_DIRECT_OPEN;
    p->req.u.direct_open.user = str_cstr(p->user);
    p->req.u.direct_open.other = str_cstr(p->other);
    p->req.u.direct_open.context = keep_ctx(&at, ctx);
    int known = as_user ? chat_block_between(c, p->user, p->other, direct_block_known, p) : 0;
    if (known == 1) {
        answer_err(p, 403, "FORBIDDEN", chat_msg_blocked);
        plat_free(p);
    } else if (known == 0) {
        direct_submit(p);
    }
}

void chat_direct_open(chat_t *c, const char *user, const char *other, const store_context_t *ctx,
                      chat_answer_fn done, void *ud)
{
    direct_open(c, user, other, ctx, false, done, ud);
}

void chat_direct_open_as_user(chat_t *c, const char *user, const char *other,
                              const store_context_t *ctx, chat_answer_fn done, void *ud)
{
    direct_open(c, user, other, ctx, true, done, ud);
}

/* ---- system notices ---- */

static void system_inserted(store_req_t *req)
{
    plat_t *p = (plat_t *)req;
    chat_t *c = p->chat;
    if (store_failed(p)) {
        plat_free(p);
        return;
    }
    store_system_insert_t *in = &req->u.system_insert;
    if (in->msg.pos > c->last_pos) c->last_pos = in->msg.pos;
    members_entry_t *me = chat_cache_find(c, in->msg.conversation_id);
    if (me && !in->duplicate && in->msg.seq > me->last_seq) me->last_seq = in->msg.seq;
    buf_t doc;
    buf_init(&doc);
    if (chat_message_text(&in->msg, &doc) < 0) {
        buf_free(&doc);
        answer_err(p, 500, "INTERNAL", "could not encode the message");
        plat_free(p);
        return;
    }
    str_t text = str_make(doc.data, doc.len);
    if (!in->duplicate) {
        chat_history_append(c, in->msg.conversation_id, in->msg.seq, text);
        char pos[24], *ps = chat_i64_text(in->msg.pos, pos);
        const str_t args[] = {text, STR_LIT(",\""), str_make(ps, (size_t)(pos + sizeof pos - ps)),
                              STR_LIT("\"")};
        chat_deliver(c, &(chat_delivery_t){.to = CHAT_TO_CONV,
                                           .conv = in->msg.conversation_id,
                                           .users = p->members,
                                           .nusers = p->nmembers,
                                           .event = "receive_message",
                                           .args = args,
                                           .nargs = 4,
                                           .pos = in->msg.pos});
    }
    p->send_done(p->ud, NULL, text, in->duplicate, in->msg.pos);
    buf_free(&doc);
    plat_free(p);
}

static void system_insert_submit(plat_t *p)
{
    /* the inputs: conversation id (p->conv), content and clientMsgId in p->strings */
    store_req_t *req = &p->req;
    str_t content = str_cstr(p->strings);
    const char *cm = p->strings + content.len + 1;
    str_t cmid = p->add ? str_cstr(cm) : STR_NULL; /* add: a clientMsgId was given */
    memset(&req->u, 0, sizeof req->u);
    req->op = STORE_OP_SYSTEM_INSERT;
    req->u.system_insert.conversation_id = str_make(p->conv, ID_LEN);
    req->u.system_insert.content = content;
    req->u.system_insert.client_msg_id = cmid;
    plat_submit(p, system_inserted);
}

/* The members first (the audience, and the cache), then the insert. */
static void system_conv_loaded(store_req_t *req)
{
    plat_t *p = (plat_t *)req;
    if (store_failed(p)) {
        plat_free(p);
        return;
    }
    const store_conversation_t *conv = &req->u.conversation_get.conv;
    chat_cache_members(p->chat, conv);
    size_t need = 1;
    for (size_t i = 0; i < conv->member_count; i++) need += conv->members[i].user_id.len + 1;
    char *at = p->names = malloc(need);
    if (!at) {
        answer_err(p, 500, "INTERNAL", "out of memory");
        plat_free(p);
        return;
    }
    for (size_t i = 0; i < conv->member_count && i < STORE_GROUP_MAX; i++)
        p->members[p->nmembers++] = keep(&at, conv->members[i].user_id);
    system_insert_submit(p);
}

void chat_system_send(chat_t *c, const char *conv, str_t content, str_t client_msg_id,
                      chat_send_done done, void *ud)
{
    size_t room = conv_room(c) + 2 * content.len;
    plat_t *p = plat_new(c, room, content.len + client_msg_id.len + 2);
    if (!p) {
        chat_err_t e = {500, "INTERNAL", "out of memory", 0};
        done(ud, &e, STR_NULL, false, 0);
        return;
    }
    p->send_done = done;
    p->ud = ud;
    memcpy(p->conv, conv, ID_LEN);
    char *at = p->strings;
    keep(&at, content.ptr ? content : STR_LIT(""));
    p->add = client_msg_id.ptr && client_msg_id.len;
    keep(&at, p->add ? client_msg_id : STR_LIT(""));
    members_entry_t *e = chat_cache_find(c, p->conv);
    if (e) { /* the members are known: straight to the insert */
        size_t need = 1;
        for (uint32_t i = 0; i < e->n; i++) need += strlen(e->users[i]) + 1;
        char *names = p->names = malloc(need);
        if (!names) {
            answer_err(p, 500, "INTERNAL", "out of memory");
            plat_free(p);
            return;
        }
        for (uint32_t i = 0; i < e->n && i < STORE_GROUP_MAX; i++)
            p->members[p->nmembers++] = keep(&names, str_cstr(e->users[i]));
        system_insert_submit(p);
        return;
    }
    p->req.op = STORE_OP_CONVERSATION_GET;
    p->req.u.conversation_get.id = str_make(p->conv, ID_LEN);
    plat_submit(p, system_conv_loaded);
}

/* ---- group membership ---- */

static void members_changed(store_req_t *req)
{
    plat_t *p = (plat_t *)req;
    chat_t *c = p->chat;
    if (req->status == STORE_E_INVALID) {
        answer_err(p, 400, "BAD_REQUEST", "members change only in a group conversation");
        plat_free(p);
        return;
    }
    if (req->status == STORE_E_LIMIT) {
        answer_err(p, 409, "LIMIT_EXCEEDED", "a group has at most 256 members");
        plat_free(p);
        return;
    }
    if (store_failed(p)) {
        plat_free(p);
        return;
    }
    store_members_change_t *op = &req->u.members_change;
    json_t *doc = chat_conversation_json(&op->conv);
    if (op->changed) {
        /* the cached members are stale: forget them, then learn the new ones */
        chat_cache_drop(c, p->conv);
        chat_cache_members(c, &op->conv);
        size_t len;
        char *text = chat_dumps(doc, &len);
        if (text) {
            str_t users[STORE_GROUP_MAX + 1];
            size_t n = 0;
            bool user_in = false;
            for (size_t i = 0; i < op->conv.member_count && n < STORE_GROUP_MAX; i++) {
                users[n++] = op->conv.members[i].user_id;
                user_in |= str_eq_cstr(op->conv.members[i].user_id, p->user);
            }
            if (!user_in) users[n++] = str_cstr(p->user); /* the removed member learns it */
            const str_t args[] = {str_make(text, len)};
            chat_deliver(c, &(chat_delivery_t){.to = CHAT_TO_USERS,
                                               .users = users,
                                               .nusers = n,
                                               .event = "conversation_updated",
                                               .args = args,
                                               .nargs = 1});
            free(text);
        }
    }
    answer_doc(p, 200,
               json_pack("{s:o, s:b}", "conversation", doc, "changed", op->changed ? 1 : 0));
    plat_free(p);
}

void chat_members_forget(chat_t *c, const chat_delivery_t *d)
{
    /* the document starts {"_id":"<24 hex>" (chat_conversation_json keeps its key order) */
    static const char head[] = "{\"_id\":\"";
    size_t hl = sizeof head - 1;
    if (d->nargs < 1 || d->args[0].len < hl + ID_LEN || memcmp(d->args[0].ptr, head, hl) != 0)
        return;
    str_t id = str_make(d->args[0].ptr + hl, ID_LEN);
    if (!id_valid(id)) return;
    char conv[ID_SIZE];
    memcpy(conv, id.ptr, ID_LEN);
    conv[ID_LEN] = '\0';
    chat_cache_drop(c, conv);
}

void chat_members_change(chat_t *c, const char *conv, const char *user, bool add,
                         chat_answer_fn done, void *ud)
{
    plat_t *p = plat_new(c, conv_room(c), 0);
    if (!p) {
        chat_err_t e = {500, "INTERNAL", "out of memory", 0};
        done(ud, &e, 0, STR_NULL);
        return;
    }
    p->done = done;
    p->ud = ud;
    memcpy(p->conv, conv, ID_LEN);
    snprintf(p->user, sizeof p->user, "%s", user);
    p->add = add;
    p->req.op = STORE_OP_MEMBERS_CHANGE;
    p->req.u.members_change.conversation_id = str_make(p->conv, ID_LEN);
    p->req.u.members_change.user = str_cstr(p->user);
    p->req.u.members_change.add = add;
    plat_submit(p, members_changed);
}

/* ---- export and erase ---- */

static json_t *iso_or_null(int64_t ms)
{
    if (ms <= 0) return json_null();
    char t[64];
    chat_iso_time(ms, t);
    return json_string(t);
}

static void exported(store_req_t *req)
{
    plat_t *p = (plat_t *)req;
    if (store_failed(p)) {
        plat_free(p);
        return;
    }
    store_user_export_t *x = &req->u.user_export;
    json_t *doc = json_object();
    if (x->after_pos == 0) {
        json_t *u = json_null();
        if (x->found) {
            u = chat_user_json(&x->record);
            json_object_set_new(u, "lastSeen", iso_or_null(x->record.last_seen));
            json_object_set_new(u, "createdAt", iso_or_null(x->record.created_at));
        }
        json_object_set_new(doc, "user", u);
        json_t *convs = json_array(), *files = json_array(), *blocks = json_array();
        for (size_t i = 0; i < x->nmemberships; i++)
            json_array_append_new(convs,
                                  json_pack("{s:s, s:I, s:o}", "conversationId",
                                            x->memberships[i].conversation_id, "readSeq",
                                            (json_int_t)x->memberships[i].read_seq, "joinedAt",
                                            iso_or_null(x->memberships[i].joined_at)));
        for (size_t i = 0; i < x->nfiles; i++) {
            const store_file_t *f = &x->files[i];
            json_array_append_new(
                files, json_pack("{s:s, s:o, s:I, s:o, s:o, s:o}", "id", f->id, "name",
                                 chat_str_or_null(f->name), "size", (json_int_t)f->size, "mime",
                                 chat_str_or_null(f->mime), "sha256", chat_str_or_null(f->sha256),
                                 "createdAt", iso_or_null(f->created_at)));
        }
        for (size_t i = 0; i < x->nblocks; i++)
            json_array_append_new(
                blocks, json_pack("{s:o, s:o}", "userId", chat_str_or_null(x->blocks[i].user_id),
                                  "blockedAt", iso_or_null(x->blocks[i].created_at)));
        json_object_set_new(doc, "conversations", convs);
        json_object_set_new(doc, "files", files);
        json_object_set_new(doc, "blocks", blocks);
        json_object_set_new(doc, "listsTruncated", json_boolean(x->lists_more));
    }
    json_t *msgs = json_array();
    for (size_t i = 0; i < x->count; i++)
        json_array_append_new(msgs, chat_message_json(&x->msgs[i]));
    json_object_set_new(doc, "messages", msgs);
    char cur[24];
    snprintf(cur, sizeof cur, "%lld", (long long)x->next_pos);
    json_object_set_new(doc, "nextCursor", x->next_pos ? json_string(cur) : json_null());
    answer_doc(p, 200, doc);
    plat_free(p);
}

void chat_user_export(chat_t *c, const char *user, int64_t after_pos, size_t limit,
                      chat_answer_fn done, void *ud)
{
    /* the lists (up to STORE_EXPORT_LIST_MAX each) and a page of messages */
    /* lists: a membership (48 bytes), a file with its strings (a path and a name: about 600
     * at most in practice) and a block (about 100) per entry, 5,000 entries each at most. A
     * page of messages that does not fit is cut short (nextCursor goes on from there). */
    size_t room = conv_room(c) + (after_pos == 0 ? STORE_EXPORT_LIST_MAX * 768 : 0) + limit * 2048;
    plat_t *p = plat_new(c, room, 0);
    if (!p) {
        chat_err_t e = {500, "INTERNAL", "out of memory", 0};
        done(ud, &e, 0, STR_NULL);
        return;
    }
    p->done = done;
    p->ud = ud;
    snprintf(p->user, sizeof p->user, "%s", user);
    p->req.op = STORE_OP_USER_EXPORT;
    p->req.u.user_export.user = str_cstr(p->user);
    p->req.u.user_export.after_pos = after_pos;
    p->req.u.user_export.limit = limit;
    plat_submit(p, exported);
}

static void on_unlinked(uv_fs_t *r)
{
    uv_fs_req_cleanup(r);
    free(r);
}

static void erased(store_req_t *req)
{
    plat_t *p = (plat_t *)req;
    chat_t *c = p->chat;
    if (store_failed(p)) {
        plat_free(p);
        return;
    }
    store_user_erase_t *x = &req->u.user_erase;
    /* memberships and history documents changed under the caches */
    chat_cache_clear(c);
    for (size_t i = 0; i < x->nfiles; i++) {
        str_t path = x->file_paths[i];
        uv_fs_t *r = malloc(sizeof *r + path.len + 1);
        if (!r) continue;
        char *s = (char *)(r + 1);
        memcpy(s, path.ptr, path.len);
        s[path.len] = '\0';
        if (uv_fs_unlink(c->loop, r, s, on_unlinked) != 0) free(r);
    }
    answer_doc(p, 200,
               json_pack("{s:s, s:b, s:I, s:I, s:I}", "userId", p->user, "erased", 1,
                         "messagesDeleted", (json_int_t)x->messages, "conversationsLeft",
                         (json_int_t)x->conversations, "filesDeleted", (json_int_t)x->nfiles));
    plat_free(p);
}

void chat_user_erase(chat_t *c, const char *user, chat_answer_fn done, void *ud)
{
    plat_t *p = plat_new(c, 64 * 1024 + STORE_EXPORT_LIST_MAX * 300, 0);
    if (!p) {
        chat_err_t e = {500, "INTERNAL", "out of memory", 0};
        done(ud, &e, 0, STR_NULL);
        return;
    }
    p->done = done;
    p->ud = ud;
    snprintf(p->user, sizeof p->user, "%s", user);
    p->req.op = STORE_OP_USER_ERASE;
    p->req.u.user_erase.user = str_cstr(p->user);
    plat_submit(p, erased);
}
