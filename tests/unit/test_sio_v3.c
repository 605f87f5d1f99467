/* Unit tests for the Socket.IO protocol v4 (Engine.IO v3 client) helpers (src/sio/sio_v3.c). */
#include <stdlib.h>

#include "sio/sio_v3.h"
#include "unit.h"

static void check_query(const char *query, const char *auth_want)
{
    buf_t auth;
    buf_init(&auth);
    sio_v3_query_auth(query ? str_make(query, strlen(query)) : STR_NULL, &auth);
    CHECK_MEM(auth.data, auth.len, auth_want);
    buf_free(&auth);
}

static void test_query_auth(void)
{
    check_query(NULL, "{}");
    check_query("", "{}");
    check_query("token=abc", "{\"token\":\"abc\"}");
    /* As socket.io 4 (url.parse): the last repeated name wins, a bare name is "". */
    check_query("a=1&b=%C3%A9&a=2&c", "{\"a\":\"2\",\"b\":\"\xc3\xa9\",\"c\":\"\"}");
    check_query("x=a+b&&y=%22", "{\"x\":\"a b\",\"y\":\"\\\"\"}");
    /* Malformed escapes, NUL and invalid UTF-8 (value or name) are left out. */
    check_query("bad=%zz&nul=%00&u=%ff&%ff=1&ok=1", "{\"ok\":\"1\"}");
    /* Long values (a JWT) are kept whole. */
    char q[700] = "token=";
    memset(q + 6, 'x', 600);
    q[606] = '\0';
    buf_t auth;
    buf_init(&auth);
    sio_v3_query_auth(str_make(q, strlen(q)), &auth);
    CHECK_EQ_INT(auth.len, 600 + strlen("{\"token\":\"\"}"));
    buf_free(&auth);
}

static void check_error(const char *err, const char *want)
{
    buf_t out;
    buf_init(&out);
    sio_v3_connect_error(str_make(err, strlen(err)), &out);
    CHECK_MEM(out.data, out.len, want);
    buf_free(&out);
}

static void test_connect_error(void)
{
    check_error("{\"message\":\"unauthorized\",\"data\":{\"code\":\"AUTH_INVALID\"}}",
                "{\"code\":\"AUTH_INVALID\"}");
    check_error("{\"message\":\"refused\"}", "\"refused\"");
    check_error("not json", "\"refused\"");
}

int main(void)
{
    RUN(test_query_auth);
    RUN(test_connect_error);
    return UNIT_DONE();
}
