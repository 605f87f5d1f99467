/* Contract documents as JSON. */
#include "chat/chat_json.h"

#include "core/json_scan.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static char *put_digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

/* Without gmtime and printf: this runs for every message sent. Years outside 0-9999 cannot
 * come from the store (times are milliseconds since 1970 from the clock). */
void chat_iso_time(int64_t ms, char out[64])
{
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    unsigned msec = (unsigned)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    unsigned sod = (unsigned)(secs - days * 86400);
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    if (y < 0 || y > 9999) y = y < 0 ? 0 : 9999;
    char *p = out;
    p = put_digits(p, (unsigned)y, 4);
    *p++ = '-';
    p = put_digits(p, mo, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, sod / 3600, 2);
    *p++ = ':';
    p = put_digits(p, sod / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, sod % 60, 2);
    *p++ = '.';
    p = put_digits(p, msec, 3);
    *p++ = 'Z';
    *p = '\0';
}

static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0) return json_null();
    char t[64];
    chat_iso_time(ms, t);
    return json_string(t);
}

json_t *chat_str_or_null(str_t s)
{
    return s.ptr ? json_stringn(s.ptr, s.len) : json_null();
}

static const char *const msg_types[] = {"text", "image", "file"};

/* A system notice (issue 15) is stored as text from STORE_SYSTEM_SENDER; its type says so. */
static const char *msg_type_name(const store_message_t *m)
{
    if (m->sender.ptr && str_eq_cstr(m->sender, STORE_SYSTEM_SENDER)) return "system";
    return msg_types[m->type <= STORE_MSG_FILE ? m->type : 0];
}

/* A conversation's context, or null. */
static json_t *context_json(const store_context_t *x)
{
    if (!x->type.ptr || !x->type.len) return json_null();
    return json_pack("{s:o, s:o, s:o}", "type", chat_str_or_null(x->type), "id",
                     chat_str_or_null(x->id), "title", chat_str_or_null(x->title));
}

static json_t *file_json(const store_file_t *f)
{
    if (!f) return json_null();
    char url[64];
    snprintf(url, sizeof url, "/api/chat/files/%s", f->id);
    return json_pack("{s:s, s:o, s:I, s:o, s:s}", "id", f->id, "name", chat_str_or_null(f->name),
                     "size", (json_int_t)f->size, "mime", chat_str_or_null(f->mime), "url", url);
}

json_t *chat_message_json(const store_message_t *m)
{
    return json_pack(
        "{s:s, s:s, s:I, s:o, s:o, s:o, s:s, s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:b}", "_id", m->id,
        "conversationId", m->conversation_id, "seq", (json_int_t)m->seq, "sender",
        chat_str_or_null(m->sender), "recipient", chat_str_or_null(m->recipient), "content",
        chat_str_or_null(m->content), "type", msg_type_name(m), "file", file_json(m->file), "read",
        m->read_at > 0, "readAt", time_or_null(m->read_at), "clientMsgId",
        chat_str_or_null(m->client_msg_id), "createdAt", time_or_null(m->created_at), "updatedAt",
        time_or_null(m->updated_at), "editedAt", time_or_null(m->edited_at), "deleted", m->deleted);
}

json_t *chat_conversation_json(const store_conversation_t *c)
{
    json_t *participants = json_array();
    for (size_t i = 0; i < c->member_count; i++)
        json_array_append_new(participants, chat_str_or_null(c->members[i].user_id));
    return json_pack("{s:s, s:o, s:o, s:o, s:o, s:I, s:o, s:o}", "_id", c->id, "participants",
                     participants, "title", chat_str_or_null(c->title), "context",
                     context_json(&c->context), "lastMessage",
                     c->last_message ? chat_message_json(c->last_message) : json_null(),
                     "unreadCount", (json_int_t)c->unread_count, "createdAt",
                     time_or_null(c->created_at), "updatedAt", time_or_null(c->updated_at));
}

json_t *chat_user_json(const store_user_t *u)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "id", chat_str_or_null(u->id), "username",
                     chat_str_or_null(u->username), "name", chat_str_or_null(u->name), "role",
                     chat_str_or_null(u->role));
}

json_t *chat_error_json(const char *code, const char *message)
{
    return json_pack("{s:s, s:s}", "code", code, "message", message);
}

char *chat_dumps(const json_t *j, size_t *len)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (s && len) *len = strlen(s);
    return s;
}

/* ---- the hot path: a message document written straight to text ---- */

char *chat_i64_text(int64_t v, char out[24])
{
    char *p = out + 24;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    return p;
}

/* The room a string takes at most as a JSON literal: its worst case (json_string_encode then
 * writes without counting) while short, its exact length when long. */
static size_t str_room(str_t s)
{
    if (!s.ptr) return 4;
    return s.len <= 4096 ? 6 * s.len + 2 : json_string_encoded_len(s.ptr, s.len);
}

/* Writers into room reserved beforehand: no check per piece (this runs for every message). */
#define W_LIT(w, lit) (memcpy((w), (lit), sizeof(lit) - 1), (w) += sizeof(lit) - 1)

static char *w_str(char *w, str_t s)
{
    if (!s.ptr) return memcpy(w, "null", 4), w + 4;
    int64_t n = json_string_encode(s.ptr, s.len, w, str_room(s));
    return n > 0 ? w + n : w;
}

static char *w_id(char *w, const char *id)
{
    size_t n = strnlen(id, ID_LEN);
    *w++ = '"';
    memcpy(w, id, n);
    w += n;
    *w++ = '"';
    return w;
}

static char *w_i64(char *w, int64_t v)
{
    char t[24], *p = chat_i64_text(v, t);
    size_t n = (size_t)(t + sizeof t - p);
    memcpy(w, p, n);
    return w + n;
}

/* A time as "…Z" (26 bytes) or null; prev/prev_ms: the last one written, reused when equal
 * (createdAt and updatedAt of a new message). */
static char *w_time(char *w, int64_t ms, char prev[26], int64_t *prev_ms)
{
    if (ms <= 0) return memcpy(w, "null", 4), w + 4;
    if (ms != *prev_ms) {
        char t[64];
        chat_iso_time(ms, t);
        prev[0] = '"';
        memcpy(prev + 1, t, 24);
        prev[25] = '"';
        *prev_ms = ms;
    }
    memcpy(w, prev, 26);
    return w + 26;
}

int chat_message_text(const store_message_t *m, buf_t *b)
{
    str_t fname = m->file ? m->file->name : STR_NULL, fmime = m->file ? m->file->mime : STR_NULL;
    /* 1024: the keys, ids, numbers and times (about 520 with a file) */
    size_t need = 1024 + str_room(m->sender) + str_room(m->recipient) + str_room(m->content) +
                  str_room(m->client_msg_id) + (m->file ? str_room(fname) + str_room(fmime) : 0);
    if (buf_reserve(b, need) < 0) return -1;
    char *w = b->data + b->len, tprev[26];
    int64_t tprev_ms = 0;
    W_LIT(w, "{\"_id\":");
    w = w_id(w, m->id);
    W_LIT(w, ",\"conversationId\":");
    w = w_id(w, m->conversation_id);
    W_LIT(w, ",\"seq\":");
    w = w_i64(w, m->seq);
    W_LIT(w, ",\"sender\":");
    w = w_str(w, m->sender);
    W_LIT(w, ",\"recipient\":");
    w = w_str(w, m->recipient);
    W_LIT(w, ",\"content\":");
    w = w_str(w, m->content);
    W_LIT(w, ",\"type\":\"");
    const char *type = msg_type_name(m);
    size_t tl = strlen(type);
    memcpy(w, type, tl);
    w += tl;
    W_LIT(w, "\",\"file\":");
    if (m->file) {
        W_LIT(w, "{\"id\":");
        w = w_id(w, m->file->id);
        W_LIT(w, ",\"name\":");
        w = w_str(w, fname);
        W_LIT(w, ",\"size\":");
        w = w_i64(w, m->file->size);
        W_LIT(w, ",\"mime\":");
        w = w_str(w, fmime);
        W_LIT(w, ",\"url\":\"/api/chat/files/");
        size_t il = strnlen(m->file->id, ID_LEN);
        memcpy(w, m->file->id, il);
        w += il;
        W_LIT(w, "\"}");
    } else {
        W_LIT(w, "null");
    }
    if (m->read_at > 0)
        W_LIT(w, ",\"read\":true,\"readAt\":");
    else
        W_LIT(w, ",\"read\":false,\"readAt\":");
    w = w_time(w, m->read_at, tprev, &tprev_ms);
    W_LIT(w, ",\"clientMsgId\":");
    w = w_str(w, m->client_msg_id);
    W_LIT(w, ",\"createdAt\":");
    w = w_time(w, m->created_at, tprev, &tprev_ms);
    W_LIT(w, ",\"updatedAt\":");
    w = w_time(w, m->updated_at, tprev, &tprev_ms);
    W_LIT(w, ",\"editedAt\":");
    w = w_time(w, m->edited_at, tprev, &tprev_ms);
    if (m->deleted)
        W_LIT(w, ",\"deleted\":true}");
    else
        W_LIT(w, ",\"deleted\":false}");
    b->len = (size_t)(w - b->data);
    return 0;
}

/* ---- the hot path: the send_message payload read in place ---- */

str_t chat_event_payload(str_t args)
{
    json_array_iter_t it;
    str_t name, payload;
    if (json_array_iter_init(&it, args) == 0 && json_array_next(&it, &name) == 1 &&
        json_array_next(&it, &payload) == 1)
        return payload;
    return STR_LIT("null");
}

str_t chat_event_payload_rest(str_t args)
{
    json_array_iter_t it;
    str_t name;
    if (json_array_iter_init(&it, args) != 0 || json_array_next(&it, &name) != 1)
        return STR_LIT("null");
    size_t i = it.pos;
    while (i < args.len && (args.ptr[i] == ' ' || args.ptr[i] == '\t' || args.ptr[i] == '\n' ||
                            args.ptr[i] == '\r'))
        i++;
    if (i >= args.len || args.ptr[i] != ',') return STR_LIT("null");
    i++;
    while (i < args.len && (args.ptr[i] == ' ' || args.ptr[i] == '\t' || args.ptr[i] == '\n' ||
                            args.ptr[i] == '\r'))
        i++;
    return str_make(args.ptr + i, args.len - i);
}

int chat_send_args_parse(str_t payload, chat_send_args_t *a, char *buf, size_t cap)
{
    static const struct {
        const char *key;
        size_t off;
    } fields[] = {
        {"recipientId", offsetof(chat_send_args_t, recipient_id)},
        {"conversationId", offsetof(chat_send_args_t, conversation_id)},
        {"content", offsetof(chat_send_args_t, content)},
        {"type", offsetof(chat_send_args_t, type)},
        {"fileId", offsetof(chat_send_args_t, file_id)},
        {"clientMsgId", offsetof(chat_send_args_t, client_msg_id)},
        {"context", offsetof(chat_send_args_t, context)},
    };
    memset(a, 0, sizeof *a);
    json_object_iter_t it;
    if (json_object_iter_init(&it, payload) != 0) return -1;
    str_t key, val;
    size_t used = 0;
    int r;
    while ((r = json_object_key(&it, &key)) == 1) {
        /* The key as it is written (no escape: the common case), else decoded. */
        char name[32];
        str_t k = str_make(key.ptr + 1, key.len - 2);
        if (memchr(k.ptr, '\\', k.len)) {
            int64_t n = json_string_decode(key.ptr, key.len, name, sizeof name - 1);
            k = n < 0 ? STR_NULL : str_make(name, (size_t)n); /* longer than any field of ours */
        }
        chat_arg_t *f = NULL;
        for (size_t i = 0; k.ptr && i < sizeof fields / sizeof fields[0]; i++)
            if (str_eq_cstr(k, fields[i].key)) {
                f = (chat_arg_t *)((char *)a + fields[i].off);
                break;
            }
        if (!f) { /* not ours: checked, not kept */
            if (json_object_value(&it, &val) != 1) return -1;
            continue;
        }
        f->s = STR_NULL;
        if (it.pos < it.len && it.p[it.pos] == '"') {
            /* checked and decoded in one pass */
            int64_t m = json_object_value_string(&it, &val, buf + used, cap - used);
            if (m < 0) return -1; /* invalid, or buf smaller than promised */
            f->kind = CHAT_ARG_STRING;
            f->s = str_make(buf + used, (size_t)m);
            used += (size_t)m;
        } else {
            if (json_object_value(&it, &val) != 1) return -1;
            f->kind = val.len == 4 && !memcmp(val.ptr, "null", 4) ? CHAT_ARG_NULL : CHAT_ARG_OTHER;
            if (f->kind == CHAT_ARG_OTHER) f->s = val; /* raw text (context) */
        }
    }
    return r == 0 ? 0 : -1;
}
