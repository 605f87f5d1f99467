/* edit_message / PATCH /api/chat/messages/:id and delete_message / DELETE (issue 16): one
 * function, chat_message_change, asks the store (STORE_OP_MESSAGE_UPDATE: only the sender,
 * only text for an edit, within --edit-window-s) and, when the message changed, tells every
 * socket of every member through the delivery seam:
 *   message_updated <message> <offset>
 *   message_deleted {conversationId, messageId, seq} <offset>
 * The offset is the message's new recovery position (the store moves an edited or deleted
 * message to a new position, as if it were a new commit), so a socket being recovered holds
 * the event like a receive_message, and a client that was offline gets the same events from
 * the replay (chat_recovery.c). Unlike receive_message, the socket that asked gets the event
 * too (the event is idempotent). A deleted message's file that no other message refers to is
 * removed from disk once the store has forgotten it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"
#include "core/log.h"

#define EDIT_ARENA_EXTRA 8192

typedef struct {
    store_req_t req;
    chat_t *chat;
    chat_answer_fn done;
    void *ud;
    char user[STORE_USER_ID_MAX + 1];
    char msg[ID_SIZE];
    char arena[]; /* the store's arena, then the new content */
} edit_ctx_t;

static void on_unlinked(uv_fs_t *r)
{
    if (r->result < 0 && r->result != UV_ENOENT)
        log_warn("removing a deleted message's file %s: %s", r->path, uv_strerror((int)r->result));
    uv_fs_req_cleanup(r);
    free(r);
}

static void remove_file(chat_t *c, str_t path)
{
    uv_fs_t *r = malloc(sizeof *r + path.len + 1);
    if (!r) return;
    char *p = (char *)(r + 1);
    memcpy(p, path.ptr, path.len);
    p[path.len] = '\0';
    if (uv_fs_unlink(c->loop, r, p, on_unlinked) != 0) free(r);
}

/* The event every member's sockets get: message_updated or message_deleted. */
static void publish_change(chat_t *c, const store_message_update_t *op, str_t doc)
{
    const store_message_t *m = &op->msg;
    char pos[24], *p = chat_i64_text(m->pos, pos), del[160];
    str_t arg = doc;
    if (m->deleted) {
        int n = snprintf(del, sizeof del,
                         "{\"conversationId\":\"%s\",\"messageId\":\"%s\",\"seq\":%lld}",
                         m->conversation_id, m->id, (long long)m->seq);
        arg = str_make(del, (size_t)n);
    }
    const str_t args[] = {arg, STR_LIT(",\""), str_make(p, (size_t)(pos + sizeof pos - p)),
                          STR_LIT("\"")};
    str_t users[2] = {m->sender, m->recipient};
    chat_deliver(c, &(chat_delivery_t){.to = CHAT_TO_CONV,
                                       .conv = m->conversation_id,
                                       .users = users,
                                       .nusers = m->recipient.ptr ? 2 : 1,
                                       .event = m->deleted ? "message_deleted" : "message_updated",
                                       .args = args,
                                       .nargs = 4,
                                       .pos = m->pos});
}

static void change_done(store_req_t *req)
{
    edit_ctx_t *x = (edit_ctx_t *)req;
    chat_t *c = x->chat;
    store_message_update_t *op = &req->u.message_update;
    if (req->status != STORE_OK) {
        chat_err_t e;
        chat_store_err(req->status, &e);
        if (req->status == STORE_E_NOT_FOUND)
            e.message = "no such message in a conversation of yours";
        else if (req->status == STORE_E_FORBIDDEN)
            e = (chat_err_t){403, "FORBIDDEN",
                             op->window_passed ? "the time to edit this message has passed"
                             : op->remove      ? "only the sender may delete a message"
                                               : "only the sender may edit a message",
                             0};
        else if (req->status == STORE_E_INVALID)
            e.message = "only text messages can be edited";
        x->done(x->ud, &e, 0, STR_NULL);
        free(x);
        return;
    }
    buf_t b;
    buf_init(&b);
    buf_append_str(&b, "{\"ok\":true,\"message\":");
    size_t at = b.len;
    if (chat_message_text(&op->msg, &b) < 0) {
        buf_free(&b);
        chat_err_t e = {500, "INTERNAL", "could not encode the message", 0};
        x->done(x->ud, &e, 0, STR_NULL);
        free(x);
        return;
    }
    str_t doc = str_make(b.data + at, b.len - at);
    if (op->changed) {
        if (op->msg.pos > c->last_pos) c->last_pos = op->msg.pos;
        /* The cached recent history holds the old document. */
        chat_history_drop(c, op->msg.conversation_id);
        publish_change(c, op, doc);
        if (op->file_path.ptr && op->file_path.len) remove_file(c, op->file_path);
    }
    buf_append_str(&b, "}");
    if (b.data)
        x->done(x->ud, NULL, 200, str_make(b.data, b.len));
    else {
        chat_err_t e = {500, "INTERNAL", "out of memory", 0};
        x->done(x->ud, &e, 0, STR_NULL);
    }
    buf_free(&b);
    free(x);
}

static void message_change(chat_t *c, const char *user, const char *message, bool remove,
                           bool by_server, json_t *content, chat_answer_fn done, void *ud);

void chat_message_change(chat_t *c, const char *user, const char *message, bool remove,
                         json_t *content, chat_answer_fn done, void *ud)
{
    message_change(c, user, message, remove, false, content, done, ud);
}

void chat_message_delete_server(chat_t *c, const char *message, chat_answer_fn done, void *ud)
{
    message_change(c, STORE_SYSTEM_SENDER, message, true, true, NULL, done, ud);
}

static void message_change(chat_t *c, const char *user, const char *message, bool remove,
                           bool by_server, json_t *content, chat_answer_fn done, void *ud)
{
#define REFUSE(st, code, text)                                                                     \
    do {                                                                                           \
        chat_err_t e_ = {st, code, text, 0};                                                       \
        done(ud, &e_, 0, STR_NULL);                                                                \
        return;                                                                                    \
    } while (0)
    str_t text = STR_NULL;
    if (!remove) {
        if (!json_is_string(content)) REFUSE(400, "BAD_REQUEST", "content must be a string");
        text = str_make(json_string_value(content), json_string_length(content));
        const char *why =
            chat_content_problem(text.ptr, text.len, c->opts.max_message_length, true);
        if (why) REFUSE(400, "BAD_REQUEST", why);
    }
    /* Edits and deletions are writes every member receives: they spend the sender's message
     * rate like a send. */
    uint32_t wait = by_server ? 0 : chat_msg_limit(c, user);
    if (wait) {
        chat_err_t e = {429, "RATE_LIMITED", "too many messages; slow down", wait};
        done(ud, &e, 0, STR_NULL);
        return;
    }
#undef REFUSE
    size_t cap = EDIT_ARENA_EXTRA + 2 * text.len;
    edit_ctx_t *x = malloc(sizeof *x + cap + text.len + 1);
    if (!x) {
        chat_err_t e = {500, "INTERNAL", "out of memory", 0};
        done(ud, &e, 0, STR_NULL);
        return;
    }
    memset(x, 0, sizeof *x);
    x->chat = c;
    x->done = done;
    x->ud = ud;
    snprintf(x->user, sizeof x->user, "%s", user);
    memcpy(x->msg, message, ID_LEN);
    char *copy = x->arena + cap;
    if (text.len) memcpy(copy, text.ptr, text.len);
    copy[text.len] = '\0';
    x->req.op = STORE_OP_MESSAGE_UPDATE;
    x->req.done = change_done;
    x->req.arena.ptr = x->arena;
    x->req.arena.cap = cap;
    store_message_update_t *op = &x->req.u.message_update;
    op->user = str_cstr(x->user);
    op->message_id = str_make(x->msg, ID_LEN);
    op->remove = remove;
    op->by_server = by_server;
    op->content = remove ? STR_NULL : str_make(copy, text.len);
    op->window_ms = c->opts.edit_window_ms;
    if (store_submit(c->store, &x->req) != 0) {
        free(x);
        chat_err_t e = {503, "INTERNAL", "the server is shutting down", 0};
        done(ud, &e, 0, STR_NULL);
    }
}

/* ---- the socket events ---- */

typedef struct {
    chat_sock_t *cs; /* a reference */
    int64_t ack_id;
} edit_reply_t;

static void socket_done(void *ud, const chat_err_t *err, int status, str_t body)
{
    (void)status;
    edit_reply_t *r = ud;
    if (r->cs->socket) {
        if (err)
            chat_reply_err(r->cs, r->ack_id, NULL, err);
        else
            chat_reply_body(r->cs, r->ack_id, body);
    }
    cs_unref(r->cs);
    free(r);
}

static void on_change(chat_sock_t *cs, json_t *payload, int64_t ack_id, bool remove)
{
    json_t *msg = json_object_get(payload, "messageId");
    if (!chat_json_id(msg)) {
        chat_reply_error(cs, ack_id, "BAD_REQUEST",
                         remove
                             ? "delete_message needs messageId: a 24-character hex id"
                             : "edit_message needs messageId (a 24-character hex id) and content",
                         0);
        return;
    }
    edit_reply_t *r = calloc(1, sizeof *r);
    if (!r) return;
    r->cs = cs_ref(cs);
    r->ack_id = ack_id;
    chat_message_change(cs->chat, CS_UID(cs), json_string_value(msg), remove,
                        json_object_get(payload, "content"), socket_done, r);
}

void chat_on_edit_message(chat_sock_t *cs, json_t *payload, int64_t ack_id)
{
    on_change(cs, payload, ack_id, false);
}

void chat_on_delete_message(chat_sock_t *cs, json_t *payload, int64_t ack_id)
{
    on_change(cs, payload, ack_id, true);
}
