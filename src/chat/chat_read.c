/* mark_read (socket) and PUT /api/chat/messages/:id/read (REST): one function, chat_mark_read,
 * moves the reader's watermark in the store and, when it moved, tells every member of the
 * conversation (messages_read, through the delivery seam). A socket's mark_read that cannot
 * move the watermark is answered from memory first (chat_budget.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"

/* messages_read { conversationId, readerId, seq, messageId, readAt } to every member (and so
 * the reader's other sockets). */
static void publish_read(chat_t *c, const char *reader, const char *message_id,
                         const store_mark_read_t *mr)
{
    char at[64];
    chat_iso_time(mr->read_at, at);
    json_t *doc =
        json_pack("{s:s, s:s, s:I, s:s, s:s}", "conversationId", mr->conv_id, "readerId", reader,
                  "seq", (json_int_t)mr->seq, "messageId", message_id, "readAt", at);
    /* read/readAt of cached documents changed: the store answers the next page. */
    chat_history_drop(c, mr->conv_id);
    chat_mark_read_learn(c, NULL, reader, message_id, mr);
    size_t len;
    char *text = chat_dumps(doc, &len);
    json_decref(doc);
    if (!text) return;
    /* Members not cached (e.g. just after a restart): the seam asks the store; if even the
     * store cannot tell, the reader's own sockets still learn of it. */
    str_t arg = str_make(text, len), self = str_cstr(reader);
    chat_deliver(c, &(chat_delivery_t){.to = CHAT_TO_CONV,
                                       .conv = mr->conv_id,
                                       .users = &self,
                                       .nusers = 1,
                                       .event = "messages_read",
                                       .args = &arg,
                                       .nargs = 1});
    free(text);
}

typedef struct {
    store_req_t req;
    chat_t *chat;
    chat_sock_t *cs; /* a reference, for a socket's mark_read; NULL for REST */
    chat_answer_fn done;
    void *ud;
    char user[STORE_USER_ID_MAX + 1];
    char conv[ID_SIZE], msg[ID_SIZE];
} read_ctx_t;

static void mark_read_done(store_req_t *req)
{
    read_ctx_t *r = (read_ctx_t *)req;
    store_mark_read_t *mr = &req->u.mark_read;
    if (req->status != STORE_OK) {
        chat_err_t e;
        chat_store_err(req->status, &e);
        r->done(r->ud, &e, 0, STR_NULL);
    } else {
        chat_mark_read_learn(r->chat, r->cs, r->user, r->msg, mr);
        if (mr->moved) publish_read(r->chat, r->user, r->msg, mr);
        char body[160];
        int n =
            snprintf(body, sizeof body,
                     "{\"ok\":true,\"conversationId\":\"%s\",\"seq\":%lld,\"unreadCount\":%lld}",
                     mr->conv_id, (long long)mr->seq, (long long)mr->unread_count);
        r->done(r->ud, NULL, 200, str_make(body, (size_t)n));
    }
    cs_unref(r->cs);
    free(r);
}

static void read_start(chat_t *c, chat_sock_t *cs, const char *user, const char *conv_or_null,
                       const char *message, chat_answer_fn done, void *ud)
{
    read_ctx_t *r = calloc(1, sizeof *r);
    if (!r) {
        chat_err_t e = {500, "INTERNAL", "out of memory", 0};
        done(ud, &e, 0, STR_NULL);
        return;
    }
    r->chat = c;
    r->cs = cs_ref(cs);
    r->done = done;
    r->ud = ud;
    snprintf(r->user, sizeof r->user, "%s", user);
    memcpy(r->msg, message, ID_LEN);
    r->req.op = STORE_OP_MARK_READ;
    r->req.done = mark_read_done;
    r->req.u.mark_read.user = str_cstr(r->user);
    r->req.u.mark_read.message_id = str_make(r->msg, ID_LEN);
    if (conv_or_null) {
        memcpy(r->conv, conv_or_null, ID_LEN);
        r->req.u.mark_read.conversation_id = str_make(r->conv, ID_LEN);
    }
    if (store_submit(c->store, &r->req) != 0) {
        cs_unref(r->cs);
        free(r);
        chat_err_t e = {503, "INTERNAL", "the server is shutting down", 0};
        done(ud, &e, 0, STR_NULL);
    }
}

void chat_mark_read(chat_t *c, const char *user, const char *conv_or_null, const char *message,
                    chat_answer_fn done, void *ud)
{
    read_start(c, NULL, user, conv_or_null, message, done, ud);
}

/* ---- the socket event ---- */

typedef struct {
    chat_sock_t *cs; /* a reference */
    int64_t ack_id;
} read_reply_t;

static void socket_read_done(void *ud, const chat_err_t *err, int status, str_t body)
{
    read_reply_t *r = ud;
    if (r->cs->socket) {
        if (err) {
            chat_err_t e = *err;
            if (!strcmp(e.code, "NOT_FOUND"))
                e.message = "no such message in a conversation of yours";
            chat_reply_err(r->cs, r->ack_id, NULL, &e);
        } else {
            chat_reply_body(r->cs, r->ack_id, body);
        }
    }
    cs_unref(r->cs);
    free(r);
}

void chat_on_mark_read(chat_sock_t *cs, json_t *payload, int64_t ack_id)
{
    json_t *conv = json_object_get(payload, "conversationId");
    json_t *msg = json_object_get(payload, "messageId");
    if (!chat_json_id(msg) || (conv && !json_is_null(conv) && !chat_json_id(conv))) {
        chat_reply_error(cs, ack_id, "BAD_REQUEST",
                         "mark_read needs messageId (and conversationId): 24-character hex ids", 0);
        return;
    }
    const char *conv_or_null = chat_json_id(conv) ? json_string_value(conv) : NULL;
    if (chat_mark_read_known(cs, json_string_value(msg), conv_or_null, ack_id))
        return; /* it cannot move the watermark: the store is not asked */
    read_reply_t *r = calloc(1, sizeof *r);
    if (!r) return;
    r->cs = cs_ref(cs);
    r->ack_id = ack_id;
    read_start(cs->chat, cs, CS_UID(cs), conv_or_null, json_string_value(msg), socket_read_done, r);
}
