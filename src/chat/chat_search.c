/* Search (issue 16): GET /api/chat/search. The store finds the hits (store_search.h defines
 * words and matching, the same on every engine) in the caller's conversations only; this
 * answers them as {"results":[{"conversationId","message","snippet"}],"nextCursor"}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"

typedef struct {
    store_req_t req;
    chat_answer_fn done;
    void *ud;
    char user[STORE_USER_ID_MAX + 1];
    char conv[ID_SIZE];
    char q[STORE_SEARCH_QUERY_MAX + 1];
    char arena[];
} search_q_t;

static void search_done(store_req_t *req)
{
    search_q_t *x = (search_q_t *)req;
    if (req->status != STORE_OK) {
        chat_err_t e;
        chat_store_err(req->status, &e);
        if (req->status == STORE_E_INVALID)
            e.message = "q must be 1-8 words of letters and digits, at most 200 bytes";
        x->done(x->ud, &e, 0, STR_NULL);
    } else {
        store_search_t *s = &req->u.search;
        json_t *arr = json_array();
        for (size_t i = 0; i < s->count; i++)
            json_array_append_new(arr, json_pack("{s:s, s:o, s:s%}", "conversationId",
                                                 s->hits[i].msg.conversation_id, "message",
                                                 chat_message_json(&s->hits[i].msg), "snippet",
                                                 s->hits[i].snippet.ptr, s->hits[i].snippet.len));
        char cur[24];
        snprintf(cur, sizeof cur, "%lld", (long long)s->next_pos);
        json_t *doc = json_pack("{s:o, s:o}", "results", arr, "nextCursor",
                                s->next_pos ? json_string(cur) : json_null());
        size_t len;
        char *text = doc ? chat_dumps(doc, &len) : NULL;
        json_decref(doc);
        if (text) {
            x->done(x->ud, NULL, 200, str_make(text, len));
            free(text);
        } else {
            chat_err_t e = {500, "INTERNAL", "could not encode the answer", 0};
            x->done(x->ud, &e, 0, STR_NULL);
        }
    }
    free(x);
}

void chat_search(chat_t *c, const char *user, str_t q, const char *conv_or_null, size_t limit,
                 int64_t before_pos, chat_answer_fn done, void *ud)
{
    /* Room for the page: a hit is its message (content up to --max-message-length code points)
     * and a snippet of a few hundred bytes; a page that does not fit is cut short. */
    size_t content = c->opts.max_message_length * 4;
    if (content > STORE_CONTENT_MAX) content = STORE_CONTENT_MAX;
    size_t one = content + 8 * 1024, many = limit * 8 * 1024;
    size_t cap = 2 * one > many ? 2 * one : many;
    search_q_t *x = calloc(1, sizeof *x + cap);
    if (!x || q.len > STORE_SEARCH_QUERY_MAX) {
        free(x);
        chat_err_t e = {500, "INTERNAL", "out of memory", 0};
        done(ud, &e, 0, STR_NULL);
        return;
    }
    x->done = done;
    x->ud = ud;
    snprintf(x->user, sizeof x->user, "%s", user);
    memcpy(x->q, q.ptr, q.len);
    if (conv_or_null) memcpy(x->conv, conv_or_null, ID_LEN);
    store_search_t *s = &x->req.u.search;
    x->req.op = STORE_OP_SEARCH;
    x->req.done = search_done;
    x->req.arena.ptr = x->arena;
    x->req.arena.cap = cap;
    s->user = str_cstr(x->user);
    s->query = str_make(x->q, q.len);
    s->conversation_id = conv_or_null ? str_make(x->conv, ID_LEN) : STR_NULL;
    s->limit = limit;
    s->before_pos = before_pos;
    if (store_submit(c->store, &x->req) != 0) {
        chat_err_t e = {503, "UNAVAILABLE", "the server is shutting down", 0};
        done(ud, &e, 0, STR_NULL);
        free(x);
    }
}
