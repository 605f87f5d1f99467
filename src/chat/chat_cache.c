/* The membership cache (conversations never change membership, so an entry stays true) and
 * the recent history of cached conversations (the newest page of GET messages from memory),
 * and how store errors read to clients.
 *
 * In a cluster (c->publish set) the recent history is off: another node's message, edit or
 * receipt reaches this node only when a member has a socket here, so a page from memory could
 * miss it; every page is read from the store (docs/cluster.md "Caches"). */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"

#define CACHE_MAX_ENTRIES 200000

/* Recent history of a conversation: its newest messages as JSON text, ascending and
 * contiguous up to the newest, so the newest page of GET /messages needs no store read. */
#define HISTORY_KEEP              50
#define HISTORY_MAX_CONVERSATIONS 2000
struct history {
    char *docs[HISTORY_KEEP]; /* ring: docs[(head + i) % KEEP] is the i-th oldest */
    size_t lens[HISTORY_KEEP];
    int64_t seqs[HISTORY_KEEP];
    unsigned head, n;
    bool has_older; /* messages before the oldest kept exist */
};

static size_t id_hash(const char *id)
{
    return chat_hash(id, ID_LEN);
}

members_entry_t *chat_cache_find(chat_t *c, const char *conv)
{
    members_entry_t *e = c->buckets[id_hash(conv) & (c->nbuckets - 1)];
    for (; e; e = e->next)
        if (memcmp(e->id, conv, ID_LEN) == 0) return e;
    return NULL;
}

static void history_free(chat_t *c, members_entry_t *e)
{
    if (!e->hist) return;
    for (unsigned i = 0; i < e->hist->n; i++)
        free(e->hist->docs[(e->hist->head + i) % HISTORY_KEEP]);
    free(e->hist);
    e->hist = NULL;
    c->nhist--;
}

void chat_cache_clear(chat_t *c)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        members_entry_t *e = c->buckets[i];
        while (e) {
            members_entry_t *next = e->next;
            history_free(c, e);
            for (uint32_t k = 0; k < e->n; k++) free(e->users[k]);
            free(e->users);
            free(e);
            e = next;
        }
        c->buckets[i] = NULL;
    }
    c->nentries = 0;
    chat_marks_forget(c);
}

void chat_cache_put(chat_t *c, const char *conv, const str_t *users, size_t n)
{
    if (chat_cache_find(c, conv)) return;
    /* A bound, not an LRU: past it start over; the store answers the misses. */
    if (c->nentries >= CACHE_MAX_ENTRIES) chat_cache_clear(c);
    members_entry_t *e = calloc(1, sizeof *e);
    if (!e || !(e->users = calloc(n ? n : 1, sizeof *e->users))) {
        free(e);
        return;
    }
    memcpy(e->id, conv, ID_SIZE);
    for (size_t i = 0; i < n; i++) {
        e->users[i] = strndup(users[i].ptr, users[i].len);
        if (e->users[i]) e->n++;
    }
    size_t b = id_hash(conv) & (c->nbuckets - 1);
    e->next = c->buckets[b];
    c->buckets[b] = e;
    c->nentries++;
}

void chat_cache_members(chat_t *c, const store_conversation_t *conv)
{
    str_t users[STORE_GROUP_MAX];
    size_t n = 0;
    for (size_t i = 0; i < conv->member_count && n < STORE_GROUP_MAX; i++)
        users[n++] = conv->members[i].user_id;
    chat_cache_put(c, conv->id, users, n);
}

bool chat_cache_has(const members_entry_t *e, const char *user)
{
    for (uint32_t i = 0; i < e->n; i++)
        if (strcmp(e->users[i], user) == 0) return true;
    return false;
}

/* Appends one message (text) at the new end; a gap in seq means the cache is not the
 * newest contiguous run any more, and it is dropped. */
void chat_history_append(chat_t *c, const char *conv, int64_t seq, str_t doc)
{
    chat_history_append_to(c, chat_cache_find(c, conv), seq, doc);
}

void chat_history_append_to(chat_t *c, members_entry_t *e, int64_t seq, str_t doc)
{
    if (!e || !e->hist) return;
    history_t *h = e->hist;
    if (h->n && h->seqs[(h->head + h->n - 1) % HISTORY_KEEP] + 1 != seq) {
        history_free(c, e);
        return;
    }
    char *copy = malloc(doc.len ? doc.len : 1);
    if (!copy) {
        history_free(c, e);
        return;
    }
    memcpy(copy, doc.ptr, doc.len);
    if (h->n == HISTORY_KEEP) { /* drop the oldest */
        free(h->docs[h->head]);
        h->head = (h->head + 1) % HISTORY_KEEP;
        h->n--;
        h->has_older = true;
    }
    unsigned at = (h->head + h->n) % HISTORY_KEEP;
    h->docs[at] = copy;
    h->lens[at] = doc.len;
    h->seqs[at] = seq;
    h->n++;
}

void chat_history_drop(chat_t *c, const char *conv)
{
    members_entry_t *e = chat_cache_find(c, conv);
    if (e) history_free(c, e);
}

void chat_history_fill(chat_t *c, const char *conv, const store_messages_page_t *p)
{
    members_entry_t *e = chat_cache_find(c, conv);
    if (c->publish) return; /* a cluster: see the top */
    if (!e || e->hist || p->count > HISTORY_KEEP || c->nhist >= HISTORY_MAX_CONVERSATIONS) return;
    history_t *h = calloc(1, sizeof *h);
    if (!h) return;
    e->hist = h;
    c->nhist++;
    h->has_older = p->has_more;
    buf_t b;
    buf_init(&b);
    for (size_t i = 0; i < p->count; i++) {
        b.len = 0;
        if (chat_message_text(&p->msgs[i], &b) < 0) {
            history_free(c, e);
            break;
        }
        chat_history_append(c, conv, p->msgs[i].seq, str_make(b.data, b.len));
        if (!e->hist) break;
    }
    buf_free(&b);
}

bool chat_history_page(chat_t *c, const char *conv, const char *user, size_t limit, buf_t *out)
{
    members_entry_t *e = chat_cache_find(c, conv);
    if (!e || !e->hist || !chat_cache_has(e, user)) return false;
    history_t *h = e->hist;
    if (limit > h->n && h->has_older) return false; /* older ones are only in the store */
    size_t k = limit < h->n ? limit : h->n;
    buf_append_str(out, "{\"messages\":[");
    for (size_t i = h->n - k; i < h->n; i++) {
        unsigned at = (h->head + (unsigned)i) % HISTORY_KEEP;
        if (i > h->n - k) buf_append(out, ",", 1);
        buf_append(out, h->docs[at], h->lens[at]);
    }
    bool more = k < h->n || h->has_older;
    if (more && k)
        buf_printf(out, "],\"nextCursor\":\"%lld\"}",
                   (long long)h->seqs[(h->head + (unsigned)(h->n - k)) % HISTORY_KEEP]);
    else
        buf_append_str(out, "],\"nextCursor\":null}");
    return out->data != NULL;
}

/* The text after "field":" (or "field": for a number) in args, up to the closing quote, or
 * the digits; STR_NULL when absent. The first occurrence is the event's own field: the
 * documents put conversationId, seq and readerId before any text a user wrote. */
static str_t field_of(str_t args, const char *field, bool quoted)
{
    char pat[40];
    int n = snprintf(pat, sizeof pat, quoted ? "\"%s\":\"" : "\"%s\":", field);
    const char *at = n > 0 ? memmem(args.ptr, args.len, pat, (size_t)n) : NULL;
    if (!at) return STR_NULL;
    const char *v = at + n, *end = args.ptr + args.len, *q = v;
    while (q < end && (quoted ? *q != '"' : (*q >= '0' && *q <= '9'))) q++;
    if (q == v || (quoted && q == end) || q - v > STORE_USER_ID_MAX) return STR_NULL;
    return str_make(v, (size_t)(q - v));
}

void chat_cache_remote(chat_t *c, const char *event, str_t args)
{
    bool msg = !strcmp(event, "receive_message"), read = !strcmp(event, "messages_read");
    if (!msg && !read) return;
    str_t conv = field_of(args, "conversationId", true);
    if (conv.len != ID_LEN) return;
    char id[ID_SIZE];
    memcpy(id, conv.ptr, ID_LEN);
    id[ID_LEN] = '\0';
    members_entry_t *e = chat_cache_find(c, id);
    if (!e) return;
    if (msg) {
        /* A newer message: the watermarks learnt before it no longer tell the unread count
         * (chat_mark_read_known compares them with last_seq). */
        str_t seq = field_of(args, "seq", false);
        char num[24];
        if (seq.len == 0 || seq.len >= sizeof num) return;
        memcpy(num, seq.ptr, seq.len);
        num[seq.len] = '\0';
        int64_t v = strtoll(num, NULL, 10);
        if (v > e->last_seq) e->last_seq = v;
        return;
    }
    /* Someone's watermark moved on another node: forget what this node learnt of it. */
    str_t reader = field_of(args, "readerId", true);
    if (reader.len) chat_marks_drop(c, reader, id);
}

void chat_store_err(int st, chat_err_t *e)
{
    switch (st) {
    case STORE_E_INVALID:
        *e = (chat_err_t){400, "BAD_REQUEST", "invalid request", 0};
        break;
    case STORE_E_NOT_FOUND:
    case STORE_E_FORBIDDEN:
        *e = (chat_err_t){404, "NOT_FOUND", "no such conversation", 0};
        break;
    case STORE_E_CONFLICT:
        *e = (chat_err_t){409, "CONFLICT", "already exists", 0};
        break;
    case STORE_E_BLOCKED:
        *e = (chat_err_t){403, "FORBIDDEN", chat_msg_blocked, 0};
        break;
    case STORE_E_UNAVAILABLE: /* nothing took effect: the same request may be sent again */
        *e = (chat_err_t){503, "STORE_UNAVAILABLE", "the database is unavailable; retry",
                          CHAT_STORE_RETRY_MS};
        break;
    default:
        *e = (chat_err_t){500, "INTERNAL", "the store failed; try again", 0};
        break;
    }
}

int chat_store_error(int st, const char **code, const char **message)
{
    chat_err_t e;
    chat_store_err(st, &e);
    *code = e.code;
    *message = e.message;
    return e.status;
}

/* Membership changed (issue 15: the server API adds and removes group members): the entry and
 * its recent history are forgotten, and the next use asks the store. */
void chat_cache_drop(chat_t *c, const char *conv)
{
    members_entry_t **pp = &c->buckets[id_hash(conv) & (c->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        members_entry_t *e = *pp;
        if (memcmp(e->id, conv, ID_LEN) != 0) continue;
        *pp = e->next;
        history_free(c, e);
        for (uint32_t k = 0; k < e->n; k++) free(e->users[k]);
        free(e->users);
        free(e);
        c->nentries--;
        break;
    }
    chat_marks_forget(c); /* read marks answered from memory: the removed member's too */
}
