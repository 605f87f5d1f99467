/* Tests for the hot-path JSON of the chat layer: the message document written as text must be
 * byte for byte what jansson writes for the same document; times as Date#toJSON writes them;
 * the send_message payload read in place exactly as jansson reads it (kinds, escapes, repeated
 * keys, non-objects); lone surrogate escapes found where jansson refuses them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/chat_json.h"
#include "core/json_scan.h"
#include "unit.h"

static void reference_time(int64_t ms, char out[64])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static void test_iso_time(void)
{
    static const int64_t fixed[] = {
        1,                /* 1970-01-01T00:00:00.001Z */
        86399999,         /* the last millisecond of the first day */
        951782400000,     /* 2000-02-29 */
        951868799999,     /* its last millisecond */
        4107456000000,    /* 2100-02-28: not a leap year */
        4107542400000,    /* 2100-03-01 */
        1798761599999,    /* 2026-12-31T23:59:59.999Z */
        1798761600000,    /* 2027-01-01 */
        253402300799999,  /* 9999-12-31T23:59:59.999Z */
        1795500000123,    /* 2026-11-24 */
        68256000000,      /* 1972-02-29 */
        978307200000 - 1, /* 2000-12-31T23:59:59.999Z */
    };
    char a[64], b[64];
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        chat_iso_time(fixed[i], a);
        reference_time(fixed[i], b);
        CHECK(strcmp(a, b) == 0);
        if (strcmp(a, b)) fprintf(stderr, "  %lld: %s vs %s\n", (long long)fixed[i], a, b);
    }
    chat_iso_time(951782400000, a);
    CHECK(strcmp(a, "2000-02-29T00:00:00.000Z") == 0);
    /* Every day of 1970-2400 at a pseudo-random moment of it. */
    uint64_t x = 88172645463325252ull;
    int bad = 0;
    for (int64_t day = 0; day < 157000; day++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t ms = day * 86400000 + (int64_t)(x % 86400000);
        chat_iso_time(ms, a);
        reference_time(ms, b);
        if (strcmp(a, b)) bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

static const store_file_t test_file = {
    .id = "65a0000000000000000000f1",
    .owner = STR_LIT("alice"),
    .name = STR_LIT("floor \"plan\"\n.pdf"),
    .mime = STR_LIT("application/pdf"),
    .size = 123456789,
    .created_at = 1795500000000,
};

static void check_same_as_jansson(const store_message_t *m)
{
    json_t *j = chat_message_json(m);
    size_t jlen = 0;
    char *want = chat_dumps(j, &jlen);
    json_decref(j);
    buf_t b;
    buf_init(&b);
    buf_append_str(&b, "prefix:"); /* appends, does not overwrite */
    CHECK_EQ_INT(chat_message_text(m, &b), 0);
    CHECK(b.len == 7 + jlen && memcmp(b.data, "prefix:", 7) == 0 &&
          memcmp(b.data + 7, want, jlen) == 0);
    if (b.len != 7 + jlen || memcmp(b.data + 7, want, jlen))
        fprintf(stderr, "  got  %.*s\n  want %s\n", (int)b.len - 7, b.data + 7, want);
    buf_free(&b);
    free(want);
}

static void test_message_text(void)
{
    store_message_t m = {
        .id = "65a000000000000000000001",
        .conversation_id = "65a000000000000000000002",
        .seq = 1,
        .pos = 7,
        .sender = STR_LIT("alice"),
        .recipient = STR_LIT("bob"),
        .content = STR_LIT("hello"),
        .type = STORE_MSG_TEXT,
        .created_at = 1795500000123,
        .updated_at = 1795500000123,
    };
    check_same_as_jansson(&m);

    /* Read, with a client id, escapes and multi-byte text, a large seq. */
    m.read_at = 1795500009999;
    m.client_msg_id = STR_LIT("c-1\t\"x\"");
    m.content = STR_LIT("line 1\nline 2 \xc3\xa9 \xf0\x9f\x8f\xa0 \\ \" </script> \x7f");
    m.seq = 9007199254740991;
    check_same_as_jansson(&m);

    /* A group message (no recipient), an image with its file. */
    m.recipient = STR_NULL;
    m.type = STORE_MSG_IMAGE;
    m.file = &test_file;
    m.content = STR_LIT("");
    check_same_as_jansson(&m);
    m.type = STORE_MSG_FILE;
    check_same_as_jansson(&m);
}

static int parse(const char *text, chat_send_args_t *a, char *buf)
{
    return chat_send_args_parse(str_cstr(text), a, buf, strlen(text));
}

static void test_send_args(void)
{
    chat_send_args_t a;
    char buf[512];

    /* Not an object. */
    CHECK_EQ_INT(parse("null", &a, buf), -1);
    CHECK_EQ_INT(parse("[1,2]", &a, buf), -1);
    CHECK_EQ_INT(parse("\"text\"", &a, buf), -1);
    CHECK_EQ_INT(parse("42", &a, buf), -1);

    CHECK_EQ_INT(parse("{}", &a, buf), 0);
    CHECK_EQ_INT(a.recipient_id.kind, CHAT_ARG_ABSENT);
    CHECK_EQ_INT(a.content.kind, CHAT_ARG_ABSENT);

    CHECK_EQ_INT(parse(" { \"recipientId\" : \"bob\", \"content\":\"hi \\\"you\\\"\\n\","
                       " \"clientMsgId\":\"c1\", \"type\":null, \"fileId\":7,"
                       " \"conversationId\":{\"a\":[1,\"content\"]}, \"other\":\"x\" } ",
                       &a, buf),
                 0);
    CHECK_EQ_INT(a.recipient_id.kind, CHAT_ARG_STRING);
    CHECK_MEM(a.recipient_id.s.ptr, a.recipient_id.s.len, "bob");
    CHECK_EQ_INT(a.content.kind, CHAT_ARG_STRING);
    CHECK_MEM(a.content.s.ptr, a.content.s.len, "hi \"you\"\n");
    CHECK_MEM(a.client_msg_id.s.ptr, a.client_msg_id.s.len, "c1");
    CHECK_EQ_INT(a.type.kind, CHAT_ARG_NULL);
    CHECK_EQ_INT(a.file_id.kind, CHAT_ARG_OTHER);
    CHECK_EQ_INT(a.conversation_id.kind, CHAT_ARG_OTHER);

    /* Escaped keys are the same keys; the last of repeated keys counts. */
    CHECK_EQ_INT(parse("{\"\\u0063ontent\":\"one\",\"content\":\"two\",\"type\":\"file\","
                       "\"type\":true}",
                       &a, buf),
                 0);
    CHECK_MEM(a.content.s.ptr, a.content.s.len, "two");
    CHECK_EQ_INT(a.type.kind, CHAT_ARG_OTHER);
    CHECK_EQ_INT(parse("{\"content\":\"one\",\"content\":null}", &a, buf), 0);
    CHECK_EQ_INT(a.content.kind, CHAT_ARG_NULL);
    CHECK(a.content.s.ptr == NULL);

    /* NUL and non-ASCII decode byte-exactly (refusing them is the caller's job). */
    CHECK_EQ_INT(parse("{\"content\":\"a\\u0000b\\u00e9\\ud83c\\udfe0\"}", &a, buf), 0);
    CHECK(a.content.s.len == 9 && memcmp(a.content.s.ptr, "a\0b\xc3\xa9\xf0\x9f\x8f\xa0", 9) == 0);

    /* A key longer than any field, empty strings, numbers and booleans. */
    CHECK_EQ_INT(parse("{\"aVeryLongKeyThatIsNotAFieldOfOursAtAll\":1,\"content\":\"\","
                       "\"recipientId\":false,\"clientMsgId\":-1.5e3}",
                       &a, buf),
                 0);
    CHECK_EQ_INT(a.content.kind, CHAT_ARG_STRING);
    CHECK_EQ_INT(a.content.s.len, 0);
    CHECK_EQ_INT(a.recipient_id.kind, CHAT_ARG_OTHER);
    CHECK_EQ_INT(a.client_msg_id.kind, CHAT_ARG_OTHER);

    /* Every valid payload agrees with jansson, field by field. */
    static const char *const agree[] = {
        "{\"recipientId\":\"u1\",\"content\":\"x\"}",
        "{\"conversationId\":\"65a000000000000000000002\",\"content\":\"\\/\\b\\f\\r\\t\"}",
        "{\"content\":\"\\u00e9\",\"content\":\"\\u20ac\",\"fileId\":\"f\",\"type\":\"image\"}",
        "{\"clientMsgId\":[],\"type\":{},\"fileId\":null,\"recipientId\":0}",
    };
    const char *names[] = {"recipientId", "conversationId", "content",
                           "type",        "fileId",         "clientMsgId"};
    for (size_t i = 0; i < sizeof agree / sizeof agree[0]; i++) {
        CHECK_EQ_INT(parse(agree[i], &a, buf), 0);
        json_t *j = json_loads(agree[i], 0, NULL);
        CHECK(j != NULL);
        const chat_arg_t *f[] = {&a.recipient_id, &a.conversation_id, &a.content,
                                 &a.type,         &a.file_id,         &a.client_msg_id};
        for (size_t k = 0; k < 6; k++) {
            json_t *v = json_object_get(j, names[k]);
            chat_arg_kind_t want = !v                  ? CHAT_ARG_ABSENT
                                   : json_is_null(v)   ? CHAT_ARG_NULL
                                   : json_is_string(v) ? CHAT_ARG_STRING
                                                       : CHAT_ARG_OTHER;
            CHECK_EQ_INT(f[k]->kind, want);
            if (want == CHAT_ARG_STRING)
                CHECK(f[k]->s.len == json_string_length(v) &&
                      memcmp(f[k]->s.ptr, json_string_value(v), f[k]->s.len) == 0);
        }
        json_decref(j);
    }
}

static void test_event_payload(void)
{
    str_t p = chat_event_payload(STR_LIT("[\"send_message\",{\"a\":1},3]"));
    CHECK_MEM(p.ptr, p.len, "{\"a\":1}");
    p = chat_event_payload(STR_LIT("[\"send_message\"]"));
    CHECK_MEM(p.ptr, p.len, "null");
    p = chat_event_payload(STR_LIT("[\"x\", [ 1 , 2 ] ]"));
    CHECK_MEM(p.ptr, p.len, "[ 1 , 2 ]");
    /* the send path's: the payload and what follows, read as the payload by the args parser */
    p = chat_event_payload_rest(STR_LIT("[\"send_message\" , {\"content\":\"a\"},3]"));
    CHECK_MEM(p.ptr, p.len, "{\"content\":\"a\"},3]");
    chat_send_args_t a;
    char buf[64];
    CHECK(chat_send_args_parse(p, &a, buf, p.len) == 0);
    CHECK(a.content.kind == CHAT_ARG_STRING);
    CHECK_MEM(a.content.s.ptr, a.content.s.len, "a");
    p = chat_event_payload_rest(STR_LIT("[\"send_message\"]"));
    CHECK_MEM(p.ptr, p.len, "null");
    p = chat_event_payload_rest(STR_LIT("[\"send_message\" ]"));
    CHECK_MEM(p.ptr, p.len, "null");
    p = chat_event_payload_rest(STR_LIT("[\"send_message\",5]"));
    CHECK(chat_send_args_parse(p, &a, buf, p.len) < 0);
    p = chat_event_payload_rest(STR_LIT("[\"send_message\",{\"content\":1"));
    CHECK(chat_send_args_parse(p, &a, buf, p.len) < 0);
}

static void test_lone_surrogates(void)
{
    static const struct {
        const char *text;
        bool lone;
    } cases[] = {
        {"[\"plain\"]", false},
        {"[\"\\ud83c\\udfe0\"]", false},       /* a pair */
        {"[\"\\uD83C\\uDFE0\"]", false},       /* upper-case hex */
        {"[\"\\ud83c\"]", true},               /* a high half at the end */
        {"[\"\\ud83cx\"]", true},              /* followed by text */
        {"[\"\\ud83c\\n\"]", true},            /* followed by another escape */
        {"[\"\\ud83c\\u0041\"]", true},        /* followed by a non-low escape */
        {"[\"\\ud83c\\ud83c\\udfe0\"]", true}, /* high, then a pair */
        {"[\"\\udfe0\"]", true},               /* a low half alone */
        {"[\"\\\\ud83c\"]", false},            /* an escaped backslash, then text */
        {"[\"\\\\\\ud83c\"]", true},           /* an escaped backslash, then the escape */
        {"[\"a\\u00e9\",{\"k\":\"\\udc00\"}]", true},
        {"{\"\\ud800\":1}", true},       /* in a key */
        {"[\"\\ue000\\ud7ff\"]", false}, /* around the surrogate range */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].text);
        CHECK(json_valid(cases[i].text, n));
        CHECK_EQ_INT(json_has_lone_surrogate(cases[i].text, n), cases[i].lone);
        /* jansson refuses exactly these. */
        json_t *j = json_loadb(cases[i].text, n, JSON_ALLOW_NUL, NULL);
        CHECK_EQ_INT(j == NULL, cases[i].lone);
        json_decref(j);
    }
}

int main(void)
{
    RUN(test_iso_time);
    RUN(test_message_text);
    RUN(test_send_args);
    RUN(test_event_payload);
    RUN(test_lone_surrogates);
    return UNIT_DONE();
}
