/* libFuzzer target: JSON scanner, iterators and string codecs, with round-trip properties. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_json.h"
#include "core/json_scan.h"

static bool fuzz_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A decoded string re-encodes to a valid token that decodes to the same bytes. */
static void fuzz_string_round_trip(const char *tok, size_t len)
{
    char *dec = malloc(len ? len : 1);
    int64_t n = json_string_decode(tok, len, dec, len);
    if (n < 0 || (size_t)n > len - 2) abort();

    size_t need = json_string_encoded_len(dec, (size_t)n);
    char *enc = malloc(need);
    if (json_string_encode(dec, (size_t)n, enc, need) != (int64_t)need) abort();
    if (need && json_string_encode(dec, (size_t)n, enc, need - 1) != -1) abort();
    if (!json_valid(enc, need) || json_scan_value(enc, need) != (int64_t)need) abort();

    char *dec2 = malloc(need);
    int64_t n2 = json_string_decode(enc, need, dec2, need);
    if (n2 != n || memcmp(dec, dec2, (size_t)n) != 0) abort();

    /* In place gives the same bytes. */
    char *copy = malloc(len);
    memcpy(copy, tok, len);
    if (json_string_decode(copy, len, copy, len) != n || memcmp(copy, dec, (size_t)n) != 0) abort();
    free(copy);
    free(dec2);
    free(enc);
    free(dec);
}

static void fuzz_walk(str_t v, int depth)
{
    if (depth > JSON_SCAN_MAX_DEPTH + 1) abort();
    if (v.ptr[0] == '"') {
        fuzz_string_round_trip(v.ptr, v.len);
    } else if (v.ptr[0] == '[') {
        json_array_iter_t it;
        str_t e;
        int r;
        if (json_array_iter_init(&it, v) != 0) abort();
        while ((r = json_array_next(&it, &e)) == 1) fuzz_walk(e, depth + 1);
        if (r != 0) abort(); /* elements of a valid array iterate cleanly */
    } else if (v.ptr[0] == '{') {
        json_object_iter_t it;
        str_t k, e;
        int r;
        if (json_object_iter_init(&it, v) != 0) abort();
        while ((r = json_object_next(&it, &k, &e)) == 1) {
            fuzz_string_round_trip(k.ptr, k.len);
            fuzz_walk(e, depth + 1);
        }
        if (r != 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);

    int64_t n = json_scan_value(buf, size);
    bool valid = json_valid(buf, size);
    if (n > (int64_t)size) abort();
    if (valid) {
        size_t i = (size_t)n, start = 0;
        if (n <= 0) abort();
        for (; i < size; i++)
            if (!fuzz_is_ws(buf[i])) abort();
        while (fuzz_is_ws(buf[start])) start++;
        str_t v = str_make(buf + start, (size_t)n - start);
        if (!json_valid(v.ptr, v.len)) abort();
        fuzz_walk(v, 0);
        /* What jansson refuses for a lone surrogate, the in-place path refuses too. */
        if (json_has_lone_surrogate(v.ptr, v.len)) {
            json_t *j = json_loadb(v.ptr, v.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            if (j) abort();
        }
        /* The send_message reader takes any object, its strings fit a buffer of the text's
         * size, and it refuses anything else. */
        chat_send_args_t a;
        char *dec = malloc(v.len);
        int r = chat_send_args_parse(v, &a, dec, v.len);
        if ((r == 0) != (v.ptr[0] == '{')) abort();
        const chat_arg_t *f[] = {&a.recipient_id, &a.conversation_id, &a.content,
                                 &a.type,         &a.file_id,         &a.client_msg_id};
        for (size_t k = 0; r == 0 && k < 6; k++)
            if (f[k]->kind == CHAT_ARG_STRING &&
                (f[k]->s.ptr < dec || f[k]->s.ptr + f[k]->s.len > dec + v.len))
                abort();
        free(dec);
        if (v.ptr[0] == '[') {
            /* the send path reads the payload in place from chat_event_payload_rest: the same
             * answer as from the payload alone (v is valid JSON here) */
            str_t p1 = chat_event_payload(v), p2 = chat_event_payload_rest(v);
            chat_send_args_t a1, a2;
            char *d1 = malloc(v.len + 1), *d2 = malloc(v.len + 1);
            int r1 = chat_send_args_parse(p1, &a1, d1, v.len),
                r2 = chat_send_args_parse(p2, &a2, d2, v.len);
            if (r1 != r2) abort();
            if (r1 == 0 &&
                (a1.content.kind != a2.content.kind || !str_eq(a1.content.s, a2.content.s) ||
                 a1.client_msg_id.kind != a2.client_msg_id.kind))
                abort();
            free(d1);
            free(d2);
        }
    } else if (n >= 0) {
        /* The value ended early: something other than whitespace follows it. */
        size_t i = (size_t)n;
        while (i < size && fuzz_is_ws(buf[i])) i++;
        if (i == size) abort();
    }

    /* Any bytes encode to a valid literal (invalid UTF-8 becomes U+FFFD). */
    size_t need = json_string_encoded_len(buf, size);
    char *enc = malloc(need);
    if (json_string_encode(buf, size, enc, need) != (int64_t)need) abort();
    if (!json_valid(enc, need)) abort();
    fuzz_string_round_trip(enc, need);
    free(enc);

    /* Decoding arbitrary bytes as a token never overruns a tight buffer. */
    if (size >= 2) {
        char *out = malloc(size - 2 ? size - 2 : 1);
        json_string_decode(buf, size, out, size - 2);
        free(out);
    }
    free(buf);
    return 0;
}
