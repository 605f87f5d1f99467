/* Contract documents as JSON. */
#include "chat/chat_json.h"

#include "core/json_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void chat_iso_time(int64_t ms, char out[64])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
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
    return json_pack("{s:s, s:s, s:I, s:o, s:o, s:o, s:s, s:o, s:b, s:o, s:o, s:o, s:o}", "_id",
                     m->id, "conversationId", m->conversation_id, "seq", (json_int_t)m->seq,
                     "sender", chat_str_or_null(m->sender), "recipient",
                     chat_str_or_null(m->recipient), "content", chat_str_or_null(m->content),
                     "type", msg_types[m->type <= STORE_MSG_FILE ? m->type : 0], "file",
                     file_json(m->file), "read", m->read_at > 0, "readAt", time_or_null(m->read_at),
                     "clientMsgId", chat_str_or_null(m->client_msg_id), "createdAt",
                     time_or_null(m->created_at), "updatedAt", time_or_null(m->updated_at));
}

json_t *chat_conversation_json(const store_conversation_t *c)
{
    json_t *participants = json_array();
    for (size_t i = 0; i < c->member_count; i++)
        json_array_append_new(participants, chat_str_or_null(c->members[i].user_id));
    return json_pack("{s:s, s:o, s:o, s:o, s:I, s:o, s:o}", "_id", c->id, "participants",
                     participants, "title", chat_str_or_null(c->title), "lastMessage",
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

static void put_str(buf_t *b, str_t s)
{
    if (!s.ptr) {
        buf_append(b, "null", 4);
        return;
    }
    size_t n = json_string_encoded_len(s.ptr, s.len);
    if (buf_reserve(b, n) < 0) return;
    int64_t w = json_string_encode(s.ptr, s.len, b->data + b->len, b->cap - b->len);
    if (w > 0) b->len += (size_t)w;
}

static void put_time(buf_t *b, int64_t ms)
{
    if (ms <= 0) {
        buf_append(b, "null", 4);
        return;
    }
    char t[64];
    chat_iso_time(ms, t);
    buf_printf(b, "\"%s\"", t);
}

int chat_message_text(const store_message_t *m, buf_t *b)
{
    size_t start = b->len;
    buf_printf(b, "{\"_id\":\"%s\",\"conversationId\":\"%s\",\"seq\":%lld,\"sender\":", m->id,
               m->conversation_id, (long long)m->seq);
    put_str(b, m->sender);
    buf_append_str(b, ",\"recipient\":");
    put_str(b, m->recipient);
    buf_append_str(b, ",\"content\":");
    put_str(b, m->content);
    buf_printf(b, ",\"type\":\"%s\",\"file\":", msg_types[m->type <= STORE_MSG_FILE ? m->type : 0]);
    if (m->file) {
        buf_printf(b, "{\"id\":\"%s\",\"name\":", m->file->id);
        put_str(b, m->file->name);
        buf_printf(b, ",\"size\":%lld,\"mime\":", (long long)m->file->size);
        put_str(b, m->file->mime);
        buf_printf(b, ",\"url\":\"/api/chat/files/%s\"}", m->file->id);
    } else {
        buf_append_str(b, "null");
    }
    buf_printf(b, ",\"read\":%s,\"readAt\":", m->read_at > 0 ? "true" : "false");
    put_time(b, m->read_at);
    buf_append_str(b, ",\"clientMsgId\":");
    put_str(b, m->client_msg_id);
    buf_append_str(b, ",\"createdAt\":");
    put_time(b, m->created_at);
    buf_append_str(b, ",\"updatedAt\":");
    put_time(b, m->updated_at);
    buf_append(b, "}", 1);
    return b->data ? 0 : (b->len = start, -1);
}
