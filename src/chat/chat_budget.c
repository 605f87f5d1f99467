/* What a client may not make the server do without bound (issue 11, finding 8):
 * - every Socket.IO event of a socket, of any name, spends a token of the socket's budget
 *   (--rate-events-per-s, --rate-events-burst); a refused event is answered RATE_LIMITED with
 *   retryAfterMs, and a socket refused --events-flood-disconnect times in a row is
 *   disconnected (after the current callback: the transport is never closed under itself);
 * - a mark_read that cannot move the reader's watermark is answered from memory and never
 *   reaches the store: the loop remembers, per socket, the seq of the last few messages it
 *   marked, and per (user, conversation) the watermark and unread count of the last answer,
 *   valid while no new message was delivered in that conversation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "core/log.h"

/* Watermarks remembered at most; past it the table starts over (the store answers). */
#define MARKS_MAX 100000

typedef struct {
    int64_t read_seq, unread; /* the store's answer */
    int64_t conv_seq;         /* the conversation's last seq the loop knew then */
} watermark_t;

struct chat_marks {
    unsigned next;
    struct {
        char msg[ID_SIZE], conv[ID_SIZE];
        int64_t seq;
    } m[CHAT_MARKS_KEEP];
};

bool chat_budget_admit(chat_sock_t *cs, int64_t ack_id)
{
    chat_t *c = cs->chat;
    if (cs->flooded) return false; /* being disconnected: ignore the rest */
    uint32_t wait = bucket_take(&cs->events, c->opts.rate_events_per_s, c->opts.rate_events_burst,
                                uv_now(c->loop));
    if (!wait) {
        cs->refused_run = 0;
        return true;
    }
    if (c->opts.events_flood_disconnect && ++cs->refused_run >= c->opts.events_flood_disconnect) {
        log_info_throttled("socket of %s disconnected: %u events refused in a row", CS_UID(cs),
                           cs->refused_run);
        cs->flooded = true; /* from now on its events are ignored */
        chat_kick_t *k = malloc(sizeof *k);
        if (k) { /* else it is not disconnected, but costs nothing any more */
            k->cs = cs_ref(cs);
            k->next = c->kick;
            c->kick = k;
            uv_timer_start(&c->kick_timer, chat_budget_kick, 0, 0);
        }
        return false;
    }
    chat_reply_error(cs, ack_id, "RATE_LIMITED", "too many events; slow down", wait);
    return false;
}

void chat_budget_kick(uv_timer_t *t)
{
    chat_t *c = t->data;
    while (c->kick) {
        chat_kick_t *k = c->kick;
        c->kick = k->next;
        if (k->cs->socket) sio_socket_disconnect(k->cs->socket, true);
        cs_unref(k->cs);
        free(k);
    }
}

static void mark_key(const char *user, const char *conv, char *out, size_t cap)
{
    snprintf(out, cap, "%s\n%.*s", user, ID_LEN, conv);
}

bool chat_mark_read_known(chat_sock_t *cs, const char *msg, const char *conv_or_null,
                          int64_t ack_id)
{
    chat_t *c = cs->chat;
    const chat_marks_t *mk = cs->marks;
    for (unsigned i = 0; mk && i < CHAT_MARKS_KEEP; i++) {
        if (memcmp(mk->m[i].msg, msg, ID_LEN) != 0) continue;
        const char *conv = mk->m[i].conv;
        if (conv_or_null && memcmp(conv_or_null, conv, ID_LEN) != 0) return false;
        char key[STORE_USER_ID_MAX + ID_SIZE + 2];
        mark_key(CS_UID(cs), conv, key, sizeof key);
        const watermark_t *w = strmap_get(&c->marks, key);
        const members_entry_t *e = chat_cache_find(c, conv);
        if (!w || !e || w->conv_seq != e->last_seq || mk->m[i].seq > w->read_seq) return false;
        json_t *f = json_pack("{s:s%, s:I, s:I}", "conversationId", conv, (size_t)ID_LEN, "seq",
                              (json_int_t)w->read_seq, "unreadCount", (json_int_t)w->unread);
        chat_reply_ok(cs, ack_id, f);
        json_decref(f);
        return true;
    }
    return false;
}

void chat_mark_read_learn(chat_t *c, chat_sock_t *cs, const char *user, const char *msg,
                          const store_mark_read_t *mr)
{
    if (cs && cs->socket) {
        if (!cs->marks) cs->marks = calloc(1, sizeof *cs->marks);
        chat_marks_t *mk = cs->marks;
        if (mk) {
            unsigned i = mk->next++ % CHAT_MARKS_KEEP;
            memcpy(mk->m[i].msg, msg, ID_LEN);
            memcpy(mk->m[i].conv, mr->conv_id, ID_LEN);
            mk->m[i].seq = mr->message_seq;
        }
    }
    const members_entry_t *e = chat_cache_find(c, mr->conv_id);
    if (!e) return;
    char key[STORE_USER_ID_MAX + ID_SIZE + 2];
    mark_key(user, mr->conv_id, key, sizeof key);
    watermark_t *w = strmap_get(&c->marks, key);
    if (!w) {
        if (c->marks.count >= MARKS_MAX) chat_marks_forget(c);
        if (!(w = malloc(sizeof *w))) return;
        if (strmap_set(&c->marks, key, w) < 0) {
            free(w);
            return;
        }
    }
    w->read_seq = mr->seq;
    w->unread = mr->unread_count;
    w->conv_seq = e->last_seq;
}

void chat_marks_drop(chat_t *c, str_t user, const char *conv)
{
    char key[STORE_USER_ID_MAX + ID_SIZE + 2];
    snprintf(key, sizeof key, "%.*s\n%.*s", (int)user.len, user.ptr, ID_LEN, conv);
    free(strmap_remove(&c->marks, key));
}

static int drop_all(const char *key, void *value, void *arg)
{
    free(value);
    return 1;
}

void chat_marks_forget(chat_t *c)
{
    strmap_sweep(&c->marks, drop_all, NULL);
}

void chat_cache_forget(chat_t *c)
{
    chat_marks_forget(c);
}

uint32_t chat_msg_limit(chat_t *c, const char *user)
{
    uint32_t wait = limiter_take(&c->msg_limit, user, uv_now(c->loop));
    if (!wait && c->limit_taken && c->msg_limit.rate > 0) c->limit_taken(c->limit_ud, user);
    return wait;
}

void chat_set_limit(chat_t *c, chat_limit_fn taken, void *ud)
{
    c->limit_taken = taken;
    c->limit_ud = ud;
}

void chat_limit_drain(chat_t *c, const char *user, double n)
{
    limiter_drain(&c->msg_limit, user, n, uv_now(c->loop));
}
