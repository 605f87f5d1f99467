/* Contract documents as JSON. */
#include "chat/chat_json.h"

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
