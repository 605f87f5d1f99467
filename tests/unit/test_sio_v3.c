/* Unit tests for the Socket.IO protocol v4 (Engine.IO v3 client) helpers (src/sio/sio_v3.c). */
#include <stdlib.h>

#include "sio/sio_v3.h"
#include "unit.h"

static void check_query(const char *nsp_in, const char *nsp_want, const char *auth_want)
{
    buf_t auth;
    buf_init(&auth);
    str_t nsp = sio_v3_nsp_query(str_make(nsp_in, strlen(nsp_in)), &auth);
    CHECK_MEM(nsp.ptr, nsp.len, nsp_want);
    CHECK_MEM(auth.data, auth.len, auth_want);
    buf_free(&auth);
}

static void test_nsp_query(void)
{
    check_query("/", "/", "{}");
    check_query("/custom", "/custom", "{}");
    check_query("/custom?token=abc", "/custom", "{\"token\":\"abc\"}");
    /* As socket.io 4 (url.parse): the last repeated name wins, a bare name is "". */
    check_query("/c?a=1&b=%C3%A9&a=2&c", "/c", "{\"a\":\"2\",\"b\":\"\xc3\xa9\",\"c\":\"\"}");
    check_query("/c?", "/c", "{}");
    check_query("/c?x=a+b&&y=%22", "/c", "{\"x\":\"a b\",\"y\":\"\\\"\"}");
    /* Malformed escapes, NUL and invalid UTF-8 are left out. */
    check_query("/c?bad=%zz&nul=%00&u=%ff&ok=1", "/c", "{\"ok\":\"1\"}");
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
    RUN(test_nsp_query);
    RUN(test_connect_error);
    return UNIT_DONE();
}
