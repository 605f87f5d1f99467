/* Unit tests for the Socket.IO v5 packet codec (src/sio/sio_packet.c). */
#include "sio/sio_packet.h"
#include "unit.h"

#define DEC(lit, p) sio_packet_decode((lit), sizeof(lit) - 1, (p))

/* Decodes lit and checks every field; data "" means absent. */
static void check_ok(const char *lit, int type, const char *nsp, int64_t ack_id,
                     unsigned attachments, const char *data)
{
    sio_packet_t p;
    int r = sio_packet_decode(lit, strlen(lit), &p);
    CHECK_EQ_INT(r, 0);
    if (r != 0) {
        fprintf(stderr, "  rejected: %s\n", lit);
        return;
    }
    CHECK_EQ_INT(p.type, type);
    CHECK_MEM(p.nsp.ptr, p.nsp.len, nsp);
    CHECK_EQ_INT(p.ack_id, ack_id);
    CHECK_EQ_INT(p.attachments, attachments);
    CHECK_MEM(p.data.ptr, p.data.len, data);
}

static void check_bad(const char *lit)
{
    sio_packet_t p;
    int r = sio_packet_decode(lit, strlen(lit), &p);
    CHECK_EQ_INT(r, -1);
    if (r != -1) fprintf(stderr, "  accepted: %s\n", lit);
}

static void test_decode_connect(void)
{
    check_ok("0", SIO_CONNECT, "/", -1, 0, "");
    check_ok("0{\"token\":\"123\"}", SIO_CONNECT, "/", -1, 0, "{\"token\":\"123\"}");
    check_ok("0/admin,", SIO_CONNECT, "/admin", -1, 0, "");
    check_ok("0/admin", SIO_CONNECT, "/admin", -1, 0, ""); /* no comma, no data */
    check_ok("0/admin,{\"token\":\"123\"}", SIO_CONNECT, "/admin", -1, 0, "{\"token\":\"123\"}");
    check_ok("0/,{}", SIO_CONNECT, "/", -1, 0, "{}");
    check_ok("0/", SIO_CONNECT, "/", -1, 0, "");
    check_ok("0/a/b-c_d.e~%20,{}", SIO_CONNECT, "/a/b-c_d.e~%20", -1, 0, "{}");

    check_bad("0[]"); /* CONNECT data must be an object */
    check_bad("0\"x\"");
    check_bad("0null");
    check_bad("0 ");   /* whitespace only is not a payload */
    check_bad("0{} "); /* no whitespace around the payload */
    check_bad("0 {}"); /* the reference would read the space as ack id 0 */
    check_bad("0/admin, {}");
    check_bad("0{");
    check_bad("0{}{}");
    check_bad("01{}"); /* no ack id on CONNECT */
    check_bad("0/admin,1");
    check_bad("0admin,{}"); /* nsp must start with '/' */
    check_bad("0,{}");
}

static void test_decode_disconnect(void)
{
    check_ok("1", SIO_DISCONNECT, "/", -1, 0, "");
    check_ok("1/admin,", SIO_DISCONNECT, "/admin", -1, 0, "");
    check_ok("1/admin", SIO_DISCONNECT, "/admin", -1, 0, "");

    check_bad("1{}");
    check_bad("1[]");
    check_bad("1/admin,{}");
    check_bad("11");
    check_bad("1 ");
}

static void test_decode_event(void)
{
    check_ok("2[\"foo\"]", SIO_EVENT, "/", -1, 0, "[\"foo\"]");
    check_ok("2/admin,[\"bar\"]", SIO_EVENT, "/admin", -1, 0, "[\"bar\"]");
    check_ok("212[\"foo\"]", SIO_EVENT, "/", 12, 0, "[\"foo\"]");
    check_ok("2/admin,13[\"foo\"]", SIO_EVENT, "/admin", 13, 0, "[\"foo\"]");
    check_ok("2[\"hey\",\"Jude\",1,{\"a\":[null]}]", SIO_EVENT, "/", -1, 0,
             "[\"hey\",\"Jude\",1,{\"a\":[null]}]");
    check_bad("2 [\"a\"]");
    check_bad("2[\"a\"] ");
    check_bad("2[\"a\"]\n");
    check_bad("21 [\"a\"]");
    check_ok("2[\"\"]", SIO_EVENT, "/", -1, 0, "[\"\"]");
    check_ok("2[\"connected\"]", SIO_EVENT, "/", -1, 0, "[\"connected\"]");
    check_ok("2[\"\\u00e9v\u00e9nement\"]", SIO_EVENT, "/", -1, 0, "[\"\\u00e9v\u00e9nement\"]");

    check_bad("2"); /* payload mandatory */
    check_bad("2/admin,");
    check_bad("212");
    check_bad("2[]");  /* non-empty */
    check_bad("2[1]"); /* first element a string */
    check_bad("2[null]");
    check_bad("2[[\"a\"]]");
    check_bad("2{}");
    check_bad("2\"foo\"");
    check_bad("2[\"foo\""); /* invalid JSON of each kind */
    check_bad("2[\"foo\",]");
    check_bad("2[\"foo\"]]");
    check_bad("2['foo']");
    check_bad("2[\"foo\",01]");
    check_bad("2[\"foo\",NaN]");
    check_bad("2[\"fo\to\"]");
    check_bad("2[\"\xff\"]");
    check_bad("2/admin[\"a\"]");   /* missing comma: "/admin[\"a\"]" is taken as the nsp */
    check_bad("2/ad min,[\"a\"]"); /* nsp characters */
    check_bad("2/admin\x01,[\"a\"]");
    check_bad("2/\xc3\xa9,[\"a\"]");

    /* Names Socket.IO reserves, also when spelled with escapes. */
    check_bad("2[\"connect\"]");
    check_bad("2[\"connect_error\"]");
    check_bad("2[\"disconnect\"]");
    check_bad("2[\"disconnecting\"]");
    check_bad("2[\"newListener\"]");
    check_bad("2[\"removeListener\",1]");
    check_bad("2[\"\\u0063onnect\"]");
}

static void test_decode_ack(void)
{
    check_ok("312[]", SIO_ACK, "/", 12, 0, "[]");
    check_ok("314[\"bar\"]", SIO_ACK, "/", 14, 0, "[\"bar\"]");
    check_ok("3/admin,13[\"bar\"]", SIO_ACK, "/admin", 13, 0, "[\"bar\"]");
    check_ok("30[1,{},null]", SIO_ACK, "/", 0, 0, "[1,{},null]");

    check_bad("3[]");   /* ack id required */
    check_bad("312");   /* payload required */
    check_bad("312{}"); /* must be an array */
    check_bad("312\"a\"");
    check_bad("312[");
    check_bad("3/admin,[\"x\"]");
}

static void test_decode_ack_ids(void)
{
    check_ok("20[\"a\"]", SIO_EVENT, "/", 0, 0, "[\"a\"]");
    check_ok("29007199254740991[\"a\"]", SIO_EVENT, "/", SIO_ACK_ID_MAX, 0, "[\"a\"]");
    check_ok("39007199254740991[]", SIO_ACK, "/", 9007199254740991LL, 0, "[]");

    check_bad("29007199254740992[\"a\"]"); /* 2^53 */
    check_bad("299999999999999999999999[\"a\"]");
    check_bad("318446744073709551616[]"); /* 2^64 */
    check_bad("2012[\"a\"]");             /* leading zero */
    check_bad("300[]");
}

static void test_decode_connect_error(void)
{
    /* Only the server sends CONNECT_ERROR. */
    check_bad("4");
    check_bad("4{\"message\":\"Not authorized\"}");
    check_bad("4\"x\"");
}

static void test_decode_binary(void)
{
    check_ok("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, "/", -1, 1,
             "[\"baz\",{\"_placeholder\":true,\"num\":0}]");
    check_ok("52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,"
             "\"num\":1}]",
             SIO_BINARY_EVENT, "/admin", -1, 2,
             "[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
    check_ok("51-14[\"foo\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, "/", 14, 1,
             "[\"foo\",{\"_placeholder\":true,\"num\":0}]");
    check_ok("61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_ACK, "/", 15, 1,
             "[\"bar\",{\"_placeholder\":true,\"num\":0}]");
    check_ok("61-/admin,1[{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_ACK, "/admin", 1, 1,
             "[{\"_placeholder\":true,\"num\":0}]");
    check_ok("510-[\"a\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1},"
             "{\"_placeholder\":true,\"num\":2},{\"_placeholder\":true,\"num\":3},"
             "{\"_placeholder\":true,\"num\":4},{\"_placeholder\":true,\"num\":5},"
             "{\"_placeholder\":true,\"num\":6},{\"_placeholder\":true,\"num\":7},"
             "{\"_placeholder\":true,\"num\":8},{\"_placeholder\":true,\"num\":9}]",
             SIO_BINARY_EVENT, "/", -1, 10,
             "[\"a\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1},"
             "{\"_placeholder\":true,\"num\":2},{\"_placeholder\":true,\"num\":3},"
             "{\"_placeholder\":true,\"num\":4},{\"_placeholder\":true,\"num\":5},"
             "{\"_placeholder\":true,\"num\":6},{\"_placeholder\":true,\"num\":7},"
             "{\"_placeholder\":true,\"num\":8},{\"_placeholder\":true,\"num\":9}]");

    check_bad("5-[\"a\"]"); /* attachment count missing */
    check_bad("5a-[\"a\"]");
    check_bad("51[\"a\",{\"_placeholder\":true,\"num\":0}]"); /* missing '-' */
    check_bad("51");
    check_bad("5");
    check_bad("50-[\"a\"]"); /* a binary packet carries at least one attachment */
    check_bad("501-[\"a\",{\"_placeholder\":true,\"num\":0}]");
    check_bad("511-[\"a\"]"); /* more than SIO_MAX_ATTACHMENTS */
    check_bad("599999999999999999999-[\"a\"]");
    check_bad("5-1-[\"a\"]");
    check_bad("51-[\"a\"]"); /* placeholder missing */
    check_bad("51-[\"a\",{\"_placeholder\":true,\"num\":1}]");
    check_bad("51-[\"connect\",{\"_placeholder\":true,\"num\":0}]");
    check_bad("51-[{\"_placeholder\":true,\"num\":0}]"); /* event name must be a string */
    check_bad("61-[{\"_placeholder\":true,\"num\":0}]"); /* BINARY_ACK needs an ack id */
    check_bad("61-1{\"_placeholder\":true,\"num\":0}");
    /* "<n>-" only on BINARY_*: on EVENT/ACK it is not a valid ack id + payload. */
    check_bad("21-[\"a\"]");
    check_bad("31-[]");
}

static void test_placeholders(void)
{
    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[\"a\"]"), 0), 0);
    CHECK_EQ_INT(sio_check_placeholders(STR_NULL, 0), 0);
    CHECK_EQ_INT(sio_check_placeholders(STR_NULL, 1), -1);
    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[\"a\",{\"_placeholder\":true,\"num\":0}]"), 1),
                 0);
    /* Either key order, whitespace, nested deep inside objects and arrays, any order of N. */
    CHECK_EQ_INT(
        sio_check_placeholders(STR_LIT("[\"a\",{\"x\":[{ \"num\" : 1 , \"_placeholder\" : true }]},"
                                       "{\"_placeholder\":true,\"num\":0}]"),
                               2),
        0);
    /* Escaped key spelling is the same key for JSON.parse. */
    CHECK_EQ_INT(
        sio_check_placeholders(STR_LIT("[{\"\\u005fplaceholder\":true,\"n\\u0075m\":0}]"), 1), 0);
    /* "_placeholder" that is not true: an ordinary object. */
    CHECK_EQ_INT(
        sio_check_placeholders(
            STR_LIT("[{\"_placeholder\":false,\"num\":0},{\"_placeholder\":\"true\"}]"), 0),
        0);

    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[\"a\"]"), 1), -1); /* missing */
    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[{\"_placeholder\":true,\"num\":0},"
                                                "{\"_placeholder\":true,\"num\":0}]"),
                                        2),
                 -1); /* 0 twice, 1 never */
    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[{\"_placeholder\":true,\"num\":0},"
                                                "{\"_placeholder\":true,\"num\":0}]"),
                                        1),
                 -1); /* 0 twice */
    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[{\"_placeholder\":true,\"num\":2}]"), 2), -1);
    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[{\"_placeholder\":true}]"), 1), -1);
    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[{\"_placeholder\":true,\"num\":0,\"x\":1}]"), 1),
                 -1);
    CHECK_EQ_INT(
        sio_check_placeholders(STR_LIT("[{\"_placeholder\":true,\"num\":0,\"num\":0}]"), 1), -1);
    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[{\"_placeholder\":true,\"num\":\"0\"}]"), 1), -1);
    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[{\"_placeholder\":true,\"num\":-1}]"), 1), -1);
    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[{\"_placeholder\":true,\"num\":0.0}]"), 1), -1);
    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[{\"_placeholder\":true,\"num\":1e0}]"), 2), -1);
    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[{\"_placeholder\":true,\"num\":null}]"), 1), -1);
    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[{\"_placeholder\":true,\"num\":0}"), 1), -1);
    CHECK_EQ_INT(sio_check_placeholders(STR_LIT("[{\"_placeholder\":true,\"num\":0}]"), 65), -1);
    /* Placeholders are only recognised as objects, not inside strings. */
    CHECK_EQ_INT(
        sio_check_placeholders(STR_LIT("[\"{\\\"_placeholder\\\":true,\\\"num\\\":0}\"]"), 1), -1);
}

static void test_event_split(void)
{
    char name[32];
    str_t rest;

    CHECK_EQ_INT(sio_event_split(STR_LIT("[\"a\",1,2]"), name, sizeof(name), &rest), 1);
    CHECK(strcmp(name, "a") == 0);
    CHECK_MEM(rest.ptr, rest.len, ",1,2]");

    CHECK_EQ_INT(sio_event_split(STR_LIT("[\"a\"]"), name, sizeof(name), &rest), 1);
    CHECK_MEM(rest.ptr, rest.len, "]");

    CHECK_EQ_INT(
        sio_event_split(STR_LIT("[ \"send_message\" , {\"x\":1} ]"), name, sizeof(name), &rest),
        12);
    CHECK(strcmp(name, "send_message") == 0);
    CHECK_MEM(rest.ptr, rest.len, " , {\"x\":1} ]");

    CHECK_EQ_INT(sio_event_split(STR_LIT("[\"\\u00e9\\n\"]"), name, sizeof(name), &rest), 3);
    CHECK_MEM(name, 3, "\xc3\xa9\n");

    /* Re-using the arguments: "[\"other\"" + rest. */
    str_t data = STR_LIT("[\"ping\",{\"t\":1},[2]]");
    CHECK_EQ_INT(sio_event_split(data, name, sizeof(name), &rest), 4);
    char reply[64];
    int n = snprintf(reply, sizeof(reply), "[\"pong\"%.*s", (int)rest.len, rest.ptr);
    CHECK_MEM(reply, n, "[\"pong\",{\"t\":1},[2]]");

    /* Name capacity includes the NUL. */
    CHECK_EQ_INT(sio_event_split(STR_LIT("[\"abcd\"]"), name, 5, &rest), 4);
    CHECK_EQ_INT(sio_event_split(STR_LIT("[\"abcd\"]"), name, 4, &rest), -1);
    CHECK_EQ_INT(sio_event_split(STR_LIT("[\"abcd\"]"), name, 0, &rest), -1);

    CHECK_EQ_INT(sio_event_split(STR_LIT("[]"), name, sizeof(name), &rest), -1);
    CHECK_EQ_INT(sio_event_split(STR_LIT("[1]"), name, sizeof(name), &rest), -1);
    CHECK_EQ_INT(sio_event_split(STR_LIT("{}"), name, sizeof(name), &rest), -1);
    CHECK_EQ_INT(sio_event_split(STR_NULL, name, sizeof(name), &rest), -1);
    CHECK_EQ_INT(sio_event_split(STR_LIT("[\"a"), name, sizeof(name), &rest), -1);
}

#define HDR(out, type, nsp, att, id, has)                                                          \
    sio_packet_encode_header((out), (type), STR_LIT(nsp), (att), (id), (has))

static void test_encode_header(void)
{
    char out[SIO_HEADER_MAX];
    size_t n;

    /* The protocol document's encoding tables, minus the JSON payload. */
    n = HDR(out, SIO_CONNECT, "/", 0, -1, false);
    CHECK_MEM(out, n, "0");
    n = HDR(out, SIO_CONNECT, "/", 0, -1, true);
    CHECK_MEM(out, n, "0");
    n = HDR(out, SIO_CONNECT, "/admin", 0, -1, false);
    CHECK_MEM(out, n, "0/admin,");
    n = HDR(out, SIO_CONNECT, "/admin", 0, -1, true);
    CHECK_MEM(out, n, "0/admin,");
    n = HDR(out, SIO_CONNECT_ERROR, "/", 0, -1, true);
    CHECK_MEM(out, n, "4");
    n = HDR(out, SIO_DISCONNECT, "/admin", 0, -1, false);
    CHECK_MEM(out, n, "1/admin,");
    n = HDR(out, SIO_EVENT, "/", 0, -1, true);
    CHECK_MEM(out, n, "2");
    n = HDR(out, SIO_EVENT, "", 0, -1, true); /* empty nsp means "/" */
    CHECK_MEM(out, n, "2");
    n = HDR(out, SIO_EVENT, "/admin", 0, 13, true);
    CHECK_MEM(out, n, "2/admin,13");
    n = HDR(out, SIO_ACK, "/", 0, 12, true);
    CHECK_MEM(out, n, "312");
    n = HDR(out, SIO_ACK, "/admin", 0, 12, true);
    CHECK_MEM(out, n, "3/admin,12");
    n = HDR(out, SIO_ACK, "/", 0, 0, true);
    CHECK_MEM(out, n, "30");
    n = HDR(out, SIO_BINARY_EVENT, "/", 1, -1, true);
    CHECK_MEM(out, n, "51-");
    n = HDR(out, SIO_BINARY_EVENT, "/admin", 2, -1, true);
    CHECK_MEM(out, n, "52-/admin,");
    n = HDR(out, SIO_BINARY_EVENT, "/", 1, 14, true);
    CHECK_MEM(out, n, "51-14");
    n = HDR(out, SIO_BINARY_ACK, "/admin", 1, 1, true);
    CHECK_MEM(out, n, "61-/admin,1");
    n = HDR(out, SIO_ACK, "/", 0, SIO_ACK_ID_MAX, true);
    CHECK_MEM(out, n, "39007199254740991");
    n = HDR(out, SIO_EVENT, "/", 7, -1, true); /* attachments ignored on non-binary types */
    CHECK_MEM(out, n, "2");

    /* The longest header fits SIO_HEADER_MAX. */
    char nsp[SIO_NSP_MAX];
    nsp[0] = '/';
    memset(nsp + 1, 'n', sizeof(nsp) - 1);
    n = sio_packet_encode_header(out, SIO_BINARY_ACK, str_make(nsp, sizeof(nsp)), 4294967295u,
                                 SIO_ACK_ID_MAX, true);
    CHECK_EQ_INT(n, SIO_HEADER_MAX);

    /* Invalid arguments. */
    CHECK_EQ_INT(HDR(out, 7, "/", 0, -1, true), 0);
    CHECK_EQ_INT(HDR(out, -1, "/", 0, -1, true), 0);
    CHECK_EQ_INT(HDR(out, SIO_ACK, "/", 0, SIO_ACK_ID_MAX + 1, true), 0);
    char longnsp[SIO_NSP_MAX + 1];
    memset(longnsp, 'n', sizeof(longnsp));
    longnsp[0] = '/';
    CHECK_EQ_INT(
        sio_packet_encode_header(out, SIO_EVENT, str_make(longnsp, sizeof(longnsp)), 0, -1, true),
        0);
}

static void test_nsp_limits(void)
{
    char buf[SIO_NSP_MAX + 16];
    sio_packet_t p;

    buf[0] = '0';
    buf[1] = '/';
    memset(buf + 2, 'a', SIO_NSP_MAX - 1);
    size_t n = 1 + SIO_NSP_MAX;
    CHECK_EQ_INT(sio_packet_decode(buf, n, &p), 0);
    CHECK_EQ_INT(p.nsp.len, SIO_NSP_MAX);
    buf[n++] = ',';
    CHECK_EQ_INT(sio_packet_decode(buf, n, &p), 0);
    buf[n - 1] = 'a';
    CHECK_EQ_INT(sio_packet_decode(buf, n, &p), -1); /* one longer */
}

/* Every packet type both ways: header + data from a decoded client packet decodes the same. */
static void test_round_trip(void)
{
    static const char *const pkts[] = {
        "0",
        "0/admin,{\"token\":\"123\"}",
        "1/admin,",
        "2[\"foo\"]",
        "2/admin,13[\"foo\",1]",
        "312[]",
        "3/admin,13[\"bar\"]",
        "51-14[\"foo\",{\"_placeholder\":true,\"num\":0}]",
        "61-/admin,15[\"bar\",{\"_placeholder\":true,\"num\":0}]",
    };
    for (size_t k = 0; k < sizeof(pkts) / sizeof(pkts[0]); k++) {
        sio_packet_t a, b;
        char out[SIO_HEADER_MAX + 128];
        CHECK_EQ_INT(sio_packet_decode(pkts[k], strlen(pkts[k]), &a), 0);
        size_t n =
            sio_packet_encode_header(out, a.type, a.nsp, a.attachments, a.ack_id, a.data.len > 0);
        memcpy(out + n, a.data.ptr, a.data.len);
        n += a.data.len;
        CHECK_MEM(out, n, pkts[k]);
        CHECK_EQ_INT(sio_packet_decode(out, n, &b), 0);
        CHECK_EQ_INT(b.type, a.type);
        CHECK(str_eq(a.nsp, b.nsp));
        CHECK_EQ_INT(b.ack_id, a.ack_id);
        CHECK_EQ_INT(b.attachments, a.attachments);
        CHECK(str_eq(a.data, b.data));
    }
}

static void test_type_errors(void)
{
    sio_packet_t p;
    CHECK_EQ_INT(sio_packet_decode("", 0, &p), -1);
    check_bad("7");
    check_bad("9[\"a\"]");
    check_bad("x");
    check_bad("[\"a\"]");
    check_bad("/admin,0");
    check_bad(" 2[\"a\"]");
}

int main(void)
{
    RUN(test_decode_connect);
    RUN(test_decode_disconnect);
    RUN(test_decode_event);
    RUN(test_decode_ack);
    RUN(test_decode_ack_ids);
    RUN(test_decode_connect_error);
    RUN(test_decode_binary);
    RUN(test_placeholders);
    RUN(test_event_split);
    RUN(test_encode_header);
    RUN(test_nsp_limits);
    RUN(test_round_trip);
    RUN(test_type_errors);
    return UNIT_DONE();
}
