/* Unit tests for the strict JSON scanner, iterators and string codecs (src/core/json_scan.c). */
#include <stdlib.h>

#include "core/json_scan.h"
#include "unit.h"

/* json_valid on a C literal (sizeof keeps embedded NULs). */
#define VALID(lit) json_valid((lit), sizeof(lit) - 1)
#define SCAN(lit)  json_scan_value((lit), sizeof(lit) - 1)

static void test_scalars(void)
{
    CHECK(VALID("0"));
    CHECK(VALID("-0"));
    CHECK(VALID("1e5"));
    CHECK(VALID("1E+2"));
    CHECK(VALID("0.5e-3"));
    CHECK(VALID("-12.25"));
    CHECK(VALID("123456789012345678901234567890"));
    CHECK(VALID("true"));
    CHECK(VALID("false"));
    CHECK(VALID("null"));
    CHECK(VALID("\"\""));
    CHECK(VALID(" \t\r\n1 \t\r\n"));

    CHECK(!VALID(""));
    CHECK(!VALID("   "));
    CHECK(!VALID("1.e5"));
    CHECK(!VALID("1."));
    CHECK(!VALID(".5"));
    CHECK(!VALID("01"));
    CHECK(!VALID("-01"));
    CHECK(!VALID("00"));
    CHECK(!VALID("-"));
    CHECK(!VALID("- 1"));
    CHECK(!VALID("+1"));
    CHECK(!VALID("1e"));
    CHECK(!VALID("1e+"));
    CHECK(!VALID("0x10"));
    CHECK(!VALID("NaN"));
    CHECK(!VALID("Infinity"));
    CHECK(!VALID("-Infinity"));
    CHECK(!VALID("tRue"));
    CHECK(!VALID("tru"));
    CHECK(!VALID("nul"));
    CHECK(!VALID("truex"));
    CHECK(!VALID("'a'"));
    CHECK(!VALID("1 2"));
    CHECK(!VALID("\f1"));   /* form feed is not JSON whitespace */
    CHECK(!VALID("1\v"));   /* nor is vertical tab */
    CHECK(!VALID("1\0"));   /* embedded NUL after the value */
    CHECK(!VALID("/**/1")); /* no comments */
    CHECK(!VALID("1//"));
}

static void test_scan_value_length(void)
{
    CHECK_EQ_INT(SCAN("1"), 1);
    CHECK_EQ_INT(SCAN("  [1, 2]  "), 8);
    CHECK_EQ_INT(SCAN("{\"a\":1},{"), 7);
    CHECK_EQ_INT(SCAN("\"ab\"cd"), 4);
    CHECK_EQ_INT(SCAN("truex"), 4); /* only the first value is scanned */
    CHECK_EQ_INT(SCAN("-0]"), 2);
    CHECK_EQ_INT(SCAN("01"), -1); /* a leading zero is an error, not a short value */
    CHECK_EQ_INT(SCAN("1.e5"), -1);
    CHECK_EQ_INT(SCAN("[1,2"), -1); /* truncated */
    CHECK_EQ_INT(SCAN("\"abc"), -1);
    CHECK_EQ_INT(SCAN(""), -1);
    CHECK_EQ_INT(SCAN("]"), -1);
}

static void test_containers(void)
{
    CHECK(VALID("[]"));
    CHECK(VALID("{}"));
    CHECK(VALID(" [ ] "));
    CHECK(VALID("[1,\"a\",true,false,null,{},[]]"));
    CHECK(VALID("{\"a\":1,\"b\":[{\"c\":{}}],\"a\":2}")); /* duplicate keys are legal JSON */
    CHECK(VALID("{ \"a\" : 1 , \"b\" : 2 }"));
    CHECK(VALID("[\n1\n,\n2\n]"));

    CHECK(!VALID("[1,]"));
    CHECK(!VALID("[,1]"));
    CHECK(!VALID("[,]"));
    CHECK(!VALID("[1 2]"));
    CHECK(!VALID("[1,,2]"));
    CHECK(!VALID("{\"a\":1,}"));
    CHECK(!VALID("{,}"));
    CHECK(!VALID("{\"a\"}"));
    CHECK(!VALID("{\"a\":}"));
    CHECK(!VALID("{\"a\" 1}"));
    CHECK(!VALID("{a:1}"));
    CHECK(!VALID("{1:1}"));
    CHECK(!VALID("{'a':1}"));
    CHECK(!VALID("[1}"));
    CHECK(!VALID("{\"a\":1]"));
    CHECK(!VALID("["));
    CHECK(!VALID("{"));
    CHECK(!VALID("]"));
    CHECK(!VALID("[]]"));
    CHECK(!VALID("[][]"));
}

static void test_depth_limit(void)
{
    char buf[2 * (JSON_SCAN_MAX_DEPTH + 1) + 1];
    size_t n;

    /* Exactly JSON_SCAN_MAX_DEPTH nested arrays pass; one more fails. */
    for (n = 0; n < JSON_SCAN_MAX_DEPTH; n++) buf[n] = '[';
    for (size_t k = 0; k < JSON_SCAN_MAX_DEPTH; k++) buf[n++] = ']';
    CHECK(json_valid(buf, n));

    for (n = 0; n < JSON_SCAN_MAX_DEPTH + 1; n++) buf[n] = '[';
    for (size_t k = 0; k < JSON_SCAN_MAX_DEPTH + 1; k++) buf[n++] = ']';
    CHECK(!json_valid(buf, n));
    CHECK_EQ_INT(json_scan_value(buf, n), -1);

    /* Objects count too: {"a":{"a":...}} */
    char obj[6 * (JSON_SCAN_MAX_DEPTH + 1) + JSON_SCAN_MAX_DEPTH + 2];
    for (int depth = JSON_SCAN_MAX_DEPTH; depth <= JSON_SCAN_MAX_DEPTH + 1; depth++) {
        n = 0;
        for (int k = 0; k < depth - 1; k++) {
            memcpy(obj + n, "{\"a\":", 5);
            n += 5;
        }
        obj[n++] = '{';
        obj[n++] = '}';
        for (int k = 0; k < depth - 1; k++) obj[n++] = '}';
        CHECK(json_valid(obj, n) == (depth == JSON_SCAN_MAX_DEPTH));
    }

    /* A long flat array is not deep. */
    size_t big = 100000;
    char *flat = malloc(big * 2 + 1);
    flat[0] = '[';
    for (size_t k = 0; k < big; k++) {
        flat[1 + 2 * k] = '0';
        flat[2 + 2 * k] = ',';
    }
    flat[2 * big] = ']';
    CHECK(json_valid(flat, 2 * big + 1));
    free(flat);
}

static void test_strings(void)
{
    CHECK(VALID("\"plain\""));
    CHECK(VALID("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""));
    CHECK(VALID("\"\\u0041\\u00e9\\u20AC\""));
    CHECK(VALID("\"\\ud83d\\ude00\""));
    CHECK(VALID("\"\\ud800\"")); /* lone surrogates: JSON.parse accepts them */
    CHECK(VALID("\"\\udc00\\ud800\""));
    CHECK(VALID("\"\x7f\"")); /* DEL is not a control character for JSON */
    CHECK(VALID("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""));
    CHECK(VALID("\"\xe2\x80\xa8\""));     /* U+2028 raw is fine */
    CHECK(VALID("\"\xf4\x8f\xbf\xbf\"")); /* U+10FFFF */

    CHECK(!VALID("\"\\x41\""));
    CHECK(!VALID("\"\\'\""));
    CHECK(!VALID("\"\\u12\""));
    CHECK(!VALID("\"\\u00G0\""));
    CHECK(!VALID("\"\\U0041\""));
    CHECK(!VALID("\"\\\"")); /* escaped quote, then no closing one */
    CHECK(!VALID("\"\\"));
    CHECK(!VALID("\"a"));
    CHECK(!VALID("'a'"));
    CHECK(!VALID("\"\t\"")); /* raw control characters */
    CHECK(!VALID("\"\n\""));
    CHECK(!VALID("\"\x1f\""));
    CHECK(!VALID("\"\0\""));
}

static void test_utf8(void)
{
    CHECK(!VALID("\"\xff\""));
    CHECK(!VALID("\"\xc3\""));     /* truncated 2-byte */
    CHECK(!VALID("\"\xe2\x82\"")); /* truncated 3-byte */
    CHECK(!VALID("\"\x80\""));     /* lone continuation */
    CHECK(!VALID("\"\xc0\xaf\"")); /* overlong '/' */
    CHECK(!VALID("\"\xc1\xbf\""));
    CHECK(!VALID("\"\xe0\x80\xaf\""));     /* overlong 3-byte */
    CHECK(!VALID("\"\xf0\x80\x80\xaf\"")); /* overlong 4-byte */
    CHECK(!VALID("\"\xed\xa0\x80\""));     /* UTF-8 encoded surrogate */
    CHECK(!VALID("\"\xf4\x90\x80\x80\"")); /* above U+10FFFF */
    CHECK(!VALID("\"\xf5\x80\x80\x80\""));
    CHECK(!VALID("\"\xc3\x28\""));
    CHECK(!VALID("\xc3\xa9")); /* non-ASCII outside a string */
}

static void test_array_iter(void)
{
    json_array_iter_t it;
    str_t e;

    CHECK_EQ_INT(json_array_iter_init(&it, STR_LIT(" [ 1 , \"a,b\" ,{\"x\":[1,2]}, [] ] tail")), 0);
    CHECK_EQ_INT(json_array_next(&it, &e), 1);
    CHECK_MEM(e.ptr, e.len, "1");
    CHECK_EQ_INT(json_array_next(&it, &e), 1);
    CHECK_MEM(e.ptr, e.len, "\"a,b\"");
    CHECK_EQ_INT(json_array_next(&it, &e), 1);
    CHECK_MEM(e.ptr, e.len, "{\"x\":[1,2]}");
    CHECK_EQ_INT(json_array_next(&it, &e), 1);
    CHECK_MEM(e.ptr, e.len, "[]");
    CHECK_EQ_INT(json_array_next(&it, &e), 0);
    CHECK_EQ_INT(json_array_next(&it, &e), 0);

    CHECK_EQ_INT(json_array_iter_init(&it, STR_LIT("[]")), 0);
    CHECK_EQ_INT(json_array_next(&it, &e), 0);

    CHECK_EQ_INT(json_array_iter_init(&it, STR_LIT("{}")), -1);
    CHECK_EQ_INT(json_array_next(&it, &e), -1);
    CHECK_EQ_INT(json_array_iter_init(&it, STR_LIT("")), -1);

    static const char *const bad[] = {"[1,]", "[,1]", "[1 2]", "[1", "[01]", "[1,,2]", "["};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        int r;
        CHECK_EQ_INT(json_array_iter_init(&it, str_cstr(bad[k])), 0);
        while ((r = json_array_next(&it, &e)) == 1) {
        }
        CHECK_EQ_INT(r, -1);
        CHECK_EQ_INT(json_array_next(&it, &e), -1); /* sticky */
    }
}

static void test_object_iter(void)
{
    json_object_iter_t it;
    str_t k, v;

    CHECK_EQ_INT(json_object_iter_init(&it, STR_LIT("{ \"a\" : 1 , \"b\":[true] ,\"\":{}}")), 0);
    CHECK_EQ_INT(json_object_next(&it, &k, &v), 1);
    CHECK_MEM(k.ptr, k.len, "\"a\"");
    CHECK_MEM(v.ptr, v.len, "1");
    CHECK_EQ_INT(json_object_next(&it, &k, &v), 1);
    CHECK_MEM(k.ptr, k.len, "\"b\"");
    CHECK_MEM(v.ptr, v.len, "[true]");
    CHECK_EQ_INT(json_object_next(&it, &k, &v), 1);
    CHECK_MEM(k.ptr, k.len, "\"\"");
    CHECK_MEM(v.ptr, v.len, "{}");
    CHECK_EQ_INT(json_object_next(&it, &k, &v), 0);

    CHECK_EQ_INT(json_object_iter_init(&it, STR_LIT("{}")), 0);
    CHECK_EQ_INT(json_object_next(&it, &k, &v), 0);
    CHECK_EQ_INT(json_object_iter_init(&it, STR_LIT("[]")), -1);
    CHECK_EQ_INT(json_object_next(&it, &k, &v), -1);

    static const char *const bad[] = {"{\"a\":1,}", "{,}",   "{\"a\"}",
                                      "{\"a\":}",   "{a:1}", "{\"a\" 1}",
                                      "{\"a\":1",   "{1:1}", "{\"a\":1 \"b\":2}"};
    for (size_t n = 0; n < sizeof(bad) / sizeof(bad[0]); n++) {
        int r;
        CHECK_EQ_INT(json_object_iter_init(&it, str_cstr(bad[n])), 0);
        while ((r = json_object_next(&it, &k, &v)) == 1) {
        }
        CHECK_EQ_INT(r, -1);
    }
}

#define DECODE(lit, out, cap) json_string_decode((lit), sizeof(lit) - 1, (out), (cap))

static void test_string_decode(void)
{
    char out[64];
    int64_t n;

    n = DECODE("\"hello\"", out, sizeof(out));
    CHECK_MEM(out, n, "hello");
    n = DECODE("\"\"", out, sizeof(out));
    CHECK_EQ_INT(n, 0);
    n = DECODE("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", out, sizeof(out));
    CHECK_MEM(out, n, "\"\\/\b\f\n\r\t");
    n = DECODE("\"\\u0041\\u00e9\\u20AC\"", out, sizeof(out));
    CHECK_MEM(out, n, "A\xc3\xa9\xe2\x82\xac");
    n = DECODE("\"\\ud83d\\ude00\"", out, sizeof(out)); /* surrogate pair -> U+1F600 */
    CHECK_MEM(out, n, "\xf0\x9f\x98\x80");
    n = DECODE("\"\\uD83D\\uDE00\"", out, sizeof(out));
    CHECK_MEM(out, n, "\xf0\x9f\x98\x80");
    n = DECODE("\"\\u0000\"", out, sizeof(out));
    CHECK_EQ_INT(n, 1);
    CHECK(out[0] == '\0');

    /* Lone surrogates become U+FFFD, as in Node's Buffer.from(str). */
    n = DECODE("\"\\ud800\"", out, sizeof(out));
    CHECK_MEM(out, n, "\xef\xbf\xbd");
    n = DECODE("\"\\ud800x\"", out, sizeof(out));
    CHECK_MEM(out, n, "\xef\xbf\xbdx");
    n = DECODE("\"\\udc00\\ud800\"", out, sizeof(out));
    CHECK_MEM(out, n, "\xef\xbf\xbd\xef\xbf\xbd");
    n = DECODE("\"\\ud800\\ud83d\\ude00\"", out, sizeof(out));
    CHECK_MEM(out, n, "\xef\xbf\xbd\xf0\x9f\x98\x80");
    n = DECODE("\"\\ud800\\n\"", out, sizeof(out));
    CHECK_MEM(out, n, "\xef\xbf\xbd\n");

    n = DECODE("\"\xc3\xa9\xf0\x9f\x98\x80\"", out, sizeof(out));
    CHECK_MEM(out, n, "\xc3\xa9\xf0\x9f\x98\x80");

    /* Errors. */
    CHECK_EQ_INT(DECODE("\"abc", out, sizeof(out)), -1);
    CHECK_EQ_INT(DECODE("\"abc\"x", out, sizeof(out)), -1); /* exactly one token */
    CHECK_EQ_INT(DECODE("abc", out, sizeof(out)), -1);
    CHECK_EQ_INT(DECODE("\"", out, sizeof(out)), -1);
    CHECK_EQ_INT(DECODE("", out, sizeof(out)), -1);
    CHECK_EQ_INT(DECODE("\"\\x\"", out, sizeof(out)), -1);
    CHECK_EQ_INT(DECODE("\"\\u12\"", out, sizeof(out)), -1);
    CHECK_EQ_INT(DECODE("\"\\ud800\\u12\"", out, sizeof(out)), -1);
    CHECK_EQ_INT(DECODE("\"\t\"", out, sizeof(out)), -1);
    CHECK_EQ_INT(DECODE("\"\xff\"", out, sizeof(out)), -1);
    CHECK_EQ_INT(DECODE("\"\xed\xa0\x80\"", out, sizeof(out)), -1);

    /* Capacity: exact fits, one less fails. */
    CHECK_EQ_INT(DECODE("\"abc\"", out, 3), 3);
    CHECK_EQ_INT(DECODE("\"abc\"", out, 2), -1);
    CHECK_EQ_INT(DECODE("\"\\u20ac\"", out, 3), 3);
    CHECK_EQ_INT(DECODE("\"\\u20ac\"", out, 2), -1);
    CHECK_EQ_INT(DECODE("\"\"", NULL, 0), 0);

    /* In place. */
    char inplace[] = "\"a\\u00e9\\ud83d\\ude00\\n\\\"z\"";
    n = json_string_decode(inplace, sizeof(inplace) - 1, inplace, sizeof(inplace) - 1);
    CHECK_MEM(inplace, n, "a\xc3\xa9\xf0\x9f\x98\x80\n\"z");
}

/* Expected strings below were produced by node's JSON.stringify (see the comments). */
static void check_encode(const char *in, size_t n, const char *expect)
{
    char out[128];
    size_t need = json_string_encoded_len(in, n);
    CHECK_EQ_INT(need, strlen(expect));
    int64_t w = json_string_encode(in, n, out, sizeof(out));
    CHECK_MEM(out, w, expect);
    CHECK_EQ_INT(json_string_encode(in, n, out, need), (int64_t)need);
    CHECK_EQ_INT(json_string_encode(in, n, out, need - 1), -1);
    CHECK(json_valid(out, need));
}

#define ENC(lit, expect) check_encode((lit), sizeof(lit) - 1, (expect))

static void test_string_encode(void)
{
    ENC("", "\"\"");
    ENC("hello", "\"hello\"");
    ENC("a\"b\\c", "\"a\\\"b\\\\c\""); /* JSON.stringify('a"b\\c') */
    ENC("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
    ENC("\x00\x01\x1f\x7f", "\"\\u0000\\u0001\\u001f\x7f\""); /* DEL stays raw */
    ENC("\x1e\x0b", "\"\\u001e\\u000b\"");                    /* lowercase hex */
    ENC("/ slash", "\"/ slash\"");                            /* '/' is not escaped */
    ENC("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    ENC("\xe2\x80\xa8\xe2\x80\xa9", "\"\xe2\x80\xa8\xe2\x80\xa9\""); /* U+2028/9 raw */

    /* Invalid UTF-8: node's Buffer#toString then JSON.stringify, one U+FFFD per maximal
     * subpart. */
    ENC("\xff", "\"\xef\xbf\xbd\"");
    ENC("\xc3", "\"\xef\xbf\xbd\"");
    ENC("\xe2\x82", "\"\xef\xbf\xbd\"");
    ENC("\xe2\xac", "\"\xef\xbf\xbd\"");
    ENC("\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    ENC("\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    ENC("\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    ENC("a\xff"
        "b",
        "\"a\xef\xbf\xbd"
        "b\"");
    ENC("\xf0\x9f\x98", "\"\xef\xbf\xbd\"");
}

static void test_string_round_trip(void)
{
    /* Every byte value once, decoded back after encoding. */
    char in[128], enc[1024], dec[1024];
    for (int k = 0; k < 128; k++) in[k] = (char)k;
    int64_t n = json_string_encode(in, sizeof(in), enc, sizeof(enc));
    CHECK(n > 0);
    CHECK(json_valid(enc, (size_t)n));
    int64_t m = json_string_decode(enc, (size_t)n, dec, sizeof(dec));
    CHECK_EQ_INT(m, 128);
    CHECK(m == 128 && memcmp(in, dec, 128) == 0);
}

/* The eight-bytes-at-a-time runs (json_plain_run): every special byte at every offset of strings
 * longer and shorter than a word, scanned, decoded and encoded exactly as one byte at a time. */
static void test_runs_at_every_offset(void)
{
    static const char *const specials[] = {"\\\"",     "\\\\",         "\\n",  "\\u0001",
                                           "\xc3\xa9", "\xe2\x82\xac", "\x7f", "\\u00e9"};
    static const char *const decoded[] = {"\"",       "\\",           "\n",   "\x01",
                                          "\xc3\xa9", "\xe2\x82\xac", "\x7f", "\xc3\xa9"};
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
        for (size_t len = 0; len < 40; len++) {
            for (size_t at = 0; at <= len; at++) {
                char tok[128], want[128], out[128];
                size_t t = 0, w = 0;
                tok[t++] = '"';
                for (size_t i = 0; i < len; i++) {
                    if (i == at) {
                        memcpy(tok + t, specials[k], strlen(specials[k]));
                        t += strlen(specials[k]);
                        memcpy(want + w, decoded[k], strlen(decoded[k]));
                        w += strlen(decoded[k]);
                    }
                    tok[t++] = (char)('a' + i % 26);
                    want[w++] = (char)('a' + i % 26);
                }
                tok[t++] = '"';
                size_t tlen = t;
                tok[t++] = ',';
                tok[t++] = '1';
                /* the token's length, with more after it (the scan must stop at its quote) */
                json_array_iter_t it;
                str_t elem;
                char arr[160];
                arr[0] = '[';
                memcpy(arr + 1, tok, t);
                arr[1 + t] = ']';
                CHECK(json_array_iter_init(&it, str_make(arr, t + 2)) == 0);
                CHECK(json_array_next(&it, &elem) == 1);
                CHECK(elem.len == tlen);
                int64_t n = json_string_decode(tok, tlen, out, sizeof out);
                CHECK(n == (int64_t)w && memcmp(out, want, w) == 0);
                /* encoded and decoded back (the encoder's own escapes may differ) */
                char enc[800], back[128];
                int64_t e = json_string_encode(want, w, enc, sizeof enc);
                CHECK(e > 0 && (size_t)e == json_string_encoded_len(want, w));
                int64_t b = json_string_decode(enc, (size_t)e, back, sizeof back);
                CHECK(b == (int64_t)w && memcmp(back, want, w) == 0);
                /* a raw control byte or an invalid one inside the token is refused */
                if (len > 0) {
                    char bad[160];
                    memcpy(bad, tok, tlen);
                    bad[1 + at % len] = 0x01;
                    CHECK(!json_valid(bad, tlen));
                    bad[1 + at % len] = (char)0xff;
                    CHECK(!json_valid(bad, tlen));
                }
            }
        }
    }
}

int main(void)
{
    RUN(test_scalars);
    RUN(test_scan_value_length);
    RUN(test_containers);
    RUN(test_depth_limit);
    RUN(test_strings);
    RUN(test_utf8);
    RUN(test_array_iter);
    RUN(test_object_iter);
    RUN(test_string_decode);
    RUN(test_string_encode);
    RUN(test_string_round_trip);
    RUN(test_runs_at_every_offset);
    return UNIT_DONE();
}
