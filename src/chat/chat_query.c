/* The reads (and the one conversation write) REST asks of the chat layer: history pages,
 * conversation lists, group creation, user search and lookup. They keep the chat's caches
 * right (members learnt from lists and groups, the recent history filled by the newest page),
 * which is why api.c calls these instead of the store. Each answers with its JSON text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"

/* One request: the store's, the answer's callback, and room for what it points to. */
typedef struct {
    store_req_t req; /* first: the store's done() gets this pointer */
    chat_t *chat;
    chat_answer_fn done;
    void *ud;
    char user[STORE_USER_ID_MAX + 1];
    char conv[ID_SIZE];
    char text[STORE_CURSOR_LEN + STORE_USERNAME_MAX + 8]; /* a cursor or a prefix */
    char ctx[2 * STORE_CONTEXT_PART_MAX + 2];             /* a context's type and id */
    str_t *ids;
    size_t nids;
    char *strings; /* copies of ids */
    char arena[];
} query_t;

/* Arena room for one record that carries a message (a history entry, a conversation with its
 * lastMessage and up to 256 participants): a page is cut short when its records do not all fit,
 * but a single record that does not fit fails the request (STORE_E_NOSPACE, a 500). Content is
 * at most --max-message-length characters of up to 4 bytes, and at most STORE_CONTENT_MAX. */
static size_t record_room(const chat_t *c)
{
    size_t content = c->opts.max_message_length * 4;
    if (content > STORE_CONTENT_MAX) content = STORE_CONTENT_MAX;
    return content + 32 * 1024;
}

static size_t page_arena(const chat_t *c, size_t base, size_t limit, size_t per_record)
{
    size_t many = limit * per_record, one = record_room(c);
    return base + (many > one ? many : one);
}

static void refuse(chat_answer_fn done, void *ud, int status, const char *code, const char *msg)
{
    chat_err_t e = {status, code, msg, 0};
    done(ud, &e, 0, STR_NULL);
}

static query_t *query_new(chat_t *c, const char *user, size_t arena, chat_answer_fn done, void *ud)
{
    query_t *q = malloc(sizeof *q + arena);
    if (!q) {
        refuse(done, ud, 500, "INTERNAL", "out of memory");
        return NULL;
    }
    memset(q, 0, sizeof *q);
    q->chat = c;
    q->done = done;
    q->ud = ud;
    snprintf(q->user, sizeof q->user, "%s", user);
    q->req.arena.ptr = q->arena;
    q->req.arena.cap = arena;
    return q;
}

static void query_free(query_t *q)
{
    free(q->ids);
    free(q->strings);
    free(q);
}

static void submit(query_t *q, void (*fn)(store_req_t *))
{
    q->req.done = fn;
    if (store_submit(q->chat->store, &q->req) != 0) {
        refuse(q->done, q->ud, 503, "INTERNAL", "the server is shutting down");
        query_free(q);
    }
}

/* True (and answered) when the request failed in the store. */
static bool failed(query_t *q)
{
    if (q->req.status == STORE_OK) return false;
    chat_err_t e;
    chat_store_err(q->req.status, &e);
    q->done(q->ud, &e, 0, STR_NULL);
    return true;
}

/* Answers doc (taken over) as text. */
static void answer(query_t *q, int status, json_t *doc)
{
    size_t len;
    char *text = chat_dumps(doc, &len);
    json_decref(doc);
    if (!text) {
        refuse(q->done, q->ud, 500, "INTERNAL", "could not encode the answer");
        return;
    }
    q->done(q->ud, NULL, status, str_make(text, len));
    free(text);
}

/* ---- history ---- */

static void page_done(store_req_t *req)
{
    query_t *q = (query_t *)req;
    if (!failed(q)) {
        store_messages_page_t *p = &req->u.messages_page;
        if (p->before_seq == 0) chat_history_fill(q->chat, q->conv, p);
        json_t *arr = json_array();
        for (size_t i = 0; i < p->count; i++)
            json_array_append_new(arr, chat_message_json(&p->msgs[i]));
        char cursor[32];
        if (p->has_more && p->count)
            snprintf(cursor, sizeof cursor, "%lld", (long long)p->msgs[0].seq);
        answer(q, 200,
               json_pack("{s:o, s:o}", "messages", arr, "nextCursor",
                         p->has_more && p->count ? json_string(cursor) : json_null()));
    }
    query_free(q);
}

void chat_history_any(chat_t *c, const char *conv, int64_t before_seq, size_t limit,
                      chat_answer_fn done, void *ud)
{
    chat_history(c, "", conv, before_seq, limit, done, ud);
}

void chat_history(chat_t *c, const char *user, const char *conv, int64_t before_seq, size_t limit,
                  chat_answer_fn done, void *ud)
{
    if (before_seq == 0 && user[0]) {
        /* The newest page, the one every opened conversation asks for: from memory if there. */
        buf_t out;
        buf_init(&out);
        if (chat_history_page(c, conv, user, limit, &out)) {
            done(ud, NULL, 200, str_make(out.data, out.len));
            buf_free(&out);
            return;
        }
        buf_free(&out);
    }
    query_t *q = query_new(c, user, page_arena(c, 32 * 1024, limit, 20 * 1024), done, ud);
    if (!q) return;
    memcpy(q->conv, conv, ID_LEN);
    store_messages_page_t *p = &q->req.u.messages_page;
    p->conversation_id = str_make(q->conv, ID_LEN);
    p->requester = q->user[0] ? str_cstr(q->user) : STR_NULL; /* none: chat_history_any */
    p->before_seq = before_seq;
    p->limit = limit;
    /* The newest page fills the recent-history cache, which inserts then extend: read it in
     * order with the writes so that no message falls between the two. */
    q->req.ordered = before_seq == 0;
    q->req.op = STORE_OP_MESSAGES_PAGE;
    submit(q, page_done);
}

/* ---- conversations ---- */

static void conversations_listed(store_req_t *req)
{
    query_t *q = (query_t *)req;
    if (!failed(q)) {
        store_conversations_list_t *l = &req->u.conversations_list;
        json_t *arr = json_array();
        for (size_t i = 0; i < l->count; i++) {
            chat_cache_members(q->chat, &l->convs[i]);
            json_array_append_new(arr, chat_conversation_json(&l->convs[i]));
        }
        answer(q, 200,
               json_pack("{s:o, s:o}", "conversations", arr, "nextCursor",
                         l->next_cursor[0] ? json_string(l->next_cursor) : json_null()));
    }
    query_free(q);
}

void chat_conversations(chat_t *c, const char *user, str_t cursor, size_t limit,
                        chat_answer_fn done, void *ud)
{
    chat_conversations_about(c, user, cursor, limit, STR_NULL, STR_NULL, done, ud);
}

void chat_conversations_about(chat_t *c, const char *user, str_t cursor, size_t limit,
                              str_t ctx_type, str_t ctx_id, chat_answer_fn done, void *ud)
{
    query_t *q = query_new(c, user, page_arena(c, 64 * 1024, limit, 12 * 1024), done, ud);
    if (!q) return;
    q->req.op = STORE_OP_CONVERSATIONS_LIST;
    q->req.u.conversations_list.user = str_cstr(q->user);
    q->req.u.conversations_list.limit = limit;
    if (cursor.len && cursor.len < sizeof q->text) {
        memcpy(q->text, cursor.ptr, cursor.len);
        q->req.u.conversations_list.cursor = str_make(q->text, cursor.len);
    }
    if (ctx_type.len && ctx_id.len && ctx_type.len <= STORE_CONTEXT_PART_MAX &&
        ctx_id.len <= STORE_CONTEXT_PART_MAX) {
        memcpy(q->ctx, ctx_type.ptr, ctx_type.len);
        memcpy(q->ctx + ctx_type.len + 1, ctx_id.ptr, ctx_id.len);
        q->req.u.conversations_list.context_type = str_make(q->ctx, ctx_type.len);
        q->req.u.conversations_list.context_id = str_make(q->ctx + ctx_type.len + 1, ctx_id.len);
    }
    submit(q, conversations_listed);
}

static void conversation_got(store_req_t *req)
{
    query_t *q = (query_t *)req;
    if (!failed(q)) {
        chat_cache_members(q->chat, &req->u.conversation_get.conv);
        answer(q, 200, chat_conversation_json(&req->u.conversation_get.conv));
    }
    query_free(q);
}

void chat_conversation_get(chat_t *c, const char *user, const char *conv, chat_answer_fn done,
                           void *ud)
{
    query_t *q = query_new(c, user, page_arena(c, 64 * 1024, 1, 12 * 1024), done, ud);
    if (!q) return;
    snprintf(q->conv, sizeof q->conv, "%s", conv);
    q->req.op = STORE_OP_CONVERSATION_GET;
    q->req.u.conversation_get.id = str_cstr(q->conv);
    q->req.u.conversation_get.requester = str_cstr(q->user);
    submit(q, conversation_got);
}

/* Copies ids into q (ids and strings). */
static bool keep_ids(query_t *q, const str_t *ids, size_t n)
{
    size_t need = 1;
    for (size_t i = 0; i < n; i++) need += ids[i].len + 1;
    q->ids = calloc(n ? n : 1, sizeof *q->ids);
    char *at = q->strings = malloc(need);
    if (!q->ids || !at) return false;
    for (size_t i = 0; i < n; i++) {
        memcpy(at, ids[i].ptr, ids[i].len);
        at[ids[i].len] = '\0';
        q->ids[i] = str_make(at, ids[i].len);
        at += ids[i].len + 1;
    }
    q->nids = n;
    return true;
}

static void group_created(store_req_t *req)
{
    query_t *q = (query_t *)req;
    if (!failed(q)) {
        chat_cache_members(q->chat, &req->u.group_create.conv);
        answer(q, 201, chat_conversation_json(&req->u.group_create.conv));
    }
    query_free(q);
}

void chat_group_create(chat_t *c, const char *user, const str_t *participants, size_t n,
                       str_t title, chat_answer_fn done, void *ud)
{
    chat_group_create_about(c, user, participants, n, title, NULL, done, ud);
}

void chat_group_create_about(chat_t *c, const char *user, const str_t *participants, size_t n,
                             str_t title, const store_context_t *ctx, chat_answer_fn done, void *ud)
{
    /* The title and the context are copied behind the ids. */
    query_t *q = query_new(c, user, 64 * 1024, done, ud);
    if (!q) return;
    str_t all[STORE_GROUP_MAX + 4];
    size_t k = n < STORE_GROUP_MAX ? n : STORE_GROUP_MAX;
    memcpy(all, participants, k * sizeof *all);
    all[k] = title.ptr ? title : STR_LIT("");
    bool about = ctx && ctx->type.ptr;
    all[k + 1] = about ? ctx->type : STR_LIT("");
    all[k + 2] = about ? ctx->id : STR_LIT("");
    all[k + 3] = about && ctx->title.ptr ? ctx->title : STR_LIT("");
    if (!keep_ids(q, all, k + 4)) {
        query_free(q);
        refuse(done, ud, 500, "INTERNAL", "out of memory");
        return;
    }
    store_group_create_t *g = &q->req.u.group_create;
    g->creator = str_cstr(q->user);
    g->participants = q->ids;
    g->count = k;
    if (title.ptr) g->title = q->ids[k];
    if (about) {
        g->context.type = q->ids[k + 1];
        g->context.id = q->ids[k + 2];
        if (ctx->title.ptr) g->context.title = q->ids[k + 3];
    }
    q->req.op = STORE_OP_GROUP_CREATE;
    submit(q, group_created);
}

/* ---- users ---- */

static void search_done(store_req_t *req)
{
    query_t *q = (query_t *)req;
    if (!failed(q)) {
        store_users_search_t *us = &req->u.users_search;
        json_t *arr = json_array();
        /* One more than the page was read in case the caller is among them: never answer it. */
        for (size_t i = 0; i < us->count && json_array_size(arr) + 1 < us->limit; i++) {
            /* Accounts are public only as far as a chat needs: id, username, name, role. */
            if (str_eq_cstr(us->users[i].id, q->user)) continue;
            json_array_append_new(arr, chat_user_json(&us->users[i]));
        }
        answer(q, 200, json_pack("{s:o}", "users", arr));
    }
    query_free(q);
}

void chat_users_search(chat_t *c, const char *user, str_t prefix, size_t limit, chat_answer_fn done,
                       void *ud)
{
    query_t *q = query_new(c, user, 32 * 1024, done, ud);
    if (!q) return;
    size_t n = prefix.len < sizeof q->text ? prefix.len : sizeof q->text - 1;
    memcpy(q->text, prefix.ptr, n);
    q->req.op = STORE_OP_USERS_SEARCH;
    q->req.u.users_search.prefix = str_make(q->text, n);
    q->req.u.users_search.limit = limit + 1; /* the caller may be among them */
    submit(q, search_done);
}

static void users_found(store_req_t *req)
{
    query_t *q = (query_t *)req;
    if (!failed(q)) {
        store_users_get_t *ug = &req->u.users_get;
        json_t *arr = json_array();
        for (size_t i = 0; i < ug->found; i++)
            json_array_append_new(arr, chat_user_json(&ug->users[i]));
        answer(q, 200, json_pack("{s:o}", "users", arr));
    }
    query_free(q);
}

static bool contact_of(const store_contacts_t *ct, str_t id)
{
    for (size_t i = 0; i < ct->count; i++)
        if (str_eq(ct->user_ids[i], id)) return true;
    return false;
}

/* First the caller's contacts, then the records of those asked for among them. */
static void contacts_found(store_req_t *req)
{
    query_t *q = (query_t *)req;
    if (failed(q)) {
        query_free(q);
        return;
    }
    store_contacts_t ct = req->u.contacts;
    size_t n = 0;
    for (size_t i = 0; i < q->nids; i++)
        if (str_eq_cstr(q->ids[i], q->user) || contact_of(&ct, q->ids[i])) q->ids[n++] = q->ids[i];
    if (n == 0) {
        answer(q, 200, json_pack("{s:[]}", "users"));
        query_free(q);
        return;
    }
    memset(&q->req.u, 0, sizeof q->req.u);
    q->req.op = STORE_OP_USERS_GET;
    q->req.u.users_get.ids = q->ids;
    q->req.u.users_get.count = n;
    submit(q, users_found);
}

void chat_users_get(chat_t *c, const char *user, const char *const *ids, size_t n,
                    chat_answer_fn done, void *ud)
{
    query_t *q = query_new(c, user, 128 * 1024, done, ud);
    if (!q) return;
    str_t list[STORE_IDS_MAX];
    size_t k = n < STORE_IDS_MAX ? n : STORE_IDS_MAX;
    for (size_t i = 0; i < k; i++) list[i] = str_cstr(ids[i]);
    if (!keep_ids(q, list, k)) {
        query_free(q);
        refuse(done, ud, 500, "INTERNAL", "out of memory");
        return;
    }
    q->req.op = STORE_OP_CONTACTS;
    q->req.u.contacts.user = str_cstr(q->user);
    q->req.u.contacts.limit = 1000;
    submit(q, contacts_found);
}
