/* Socket ids of the delivery seam (chat_delivery_t.except names a socket as 16 hex digits, so
 * that it can cross nodes), and how store statuses read to clients (chat_store_err, used by every
 * socket ack and REST answer of the chat layer): in particular STORE_E_UNAVAILABLE, the database
 * that cannot be reached, is STORE_UNAVAILABLE with HTTP 503 and a retryAfterMs of 1000 (REST:
 * Retry-After: 1), and nothing else says to retry after a wait. A test against a real outage needs
 * PostgreSQL stopped under the server; SQLite cannot be made to fail that way. */
#include <string.h>

#include "chat/chat.h"
#include "unit.h"

static void check(int st, int status, const char *code, uint32_t retry)
{
    chat_err_t e = {0};
    chat_store_err(st, &e);
    CHECK_EQ_INT(e.status, status);
    CHECK(e.code && strcmp(e.code, code) == 0);
    CHECK(e.message && e.message[0]);
    CHECK_EQ_INT(e.retry_after_ms, retry);
    const char *c2 = NULL, *m2 = NULL;
    CHECK_EQ_INT(chat_store_error(st, &c2, &m2), status);
    CHECK(c2 == e.code && m2 == e.message);
}

static void test_store_errors(void)
{
    check(STORE_E_UNAVAILABLE, 503, "STORE_UNAVAILABLE", CHAT_STORE_RETRY_MS);
    CHECK_EQ_INT(CHAT_STORE_RETRY_MS, 1000);
    check(STORE_E_INVALID, 400, "BAD_REQUEST", 0);
    check(STORE_E_NOT_FOUND, 404, "NOT_FOUND", 0);
    check(STORE_E_FORBIDDEN, 404, "NOT_FOUND", 0); /* not a member: as if it did not exist */
    check(STORE_E_CONFLICT, 409, "CONFLICT", 0);
    check(STORE_E_CANCELLED, 500, "INTERNAL", 0);
    check(-1000, 500, "INTERNAL", 0);
}

static void test_sid(void)
{
    static const uint64_t ids[] = {1, 0x0123456789abcdefull, UINT64_MAX, 0x8000000000000000ull};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        char t[CHAT_SID_LEN + 1];
        chat_sid_text(ids[i], t);
        CHECK_EQ_INT(strlen(t), CHAT_SID_LEN);
        CHECK(chat_sid_parse(t) == ids[i]);
    }
    /* Anything but 16 lowercase hex digits names no socket (0). */
    CHECK(chat_sid_parse(NULL) == 0);
    CHECK(chat_sid_parse("") == 0);
    CHECK(chat_sid_parse("0123456789abcde") == 0);
    CHECK(chat_sid_parse("0123456789abcdef0") == 0);
    CHECK(chat_sid_parse("0123456789ABCDEF") == 0);
    CHECK(chat_sid_parse("-123456789abcdef") == 0);
    CHECK(chat_sid_parse(" 123456789abcdef") == 0);
}

int main(void)
{
    RUN(test_sid);
    RUN(test_store_errors);
    return UNIT_DONE();
}
