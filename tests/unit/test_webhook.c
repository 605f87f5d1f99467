/* Webhooks' pure parts (webhook_sign.h): the HMAC-SHA256 signature (RFC 4231 vectors, and what
 * a receiver computes over the raw body) and the retry schedule (doubling, cap, equal jitter). */
#include <string.h>

#include "unit.h"
#include "webhook/webhook_sign.h"

static void test_sign_rfc4231(void)
{
    char hex[WEBHOOK_SIG_HEX + 1];
    /* RFC 4231 test case 2 */
    const char *data = "what do ya want for nothing?";
    CHECK_EQ_INT(webhook_sign("Jefe", 4, data, strlen(data), hex), 0);
    CHECK(strcmp(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") == 0);
    /* test case 1: key 0x0b x 20, "Hi There" */
    char key[20];
    memset(key, 0x0b, sizeof key);
    CHECK_EQ_INT(webhook_sign(key, sizeof key, "Hi There", 8, hex), 0);
    CHECK(strcmp(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7") == 0);
    /* bytes, not text: a NUL in the body counts */
    char a[WEBHOOK_SIG_HEX + 1], b[WEBHOOK_SIG_HEX + 1];
    CHECK_EQ_INT(webhook_sign("k", 1, "x\0y", 3, a), 0);
    CHECK_EQ_INT(webhook_sign("k", 1, "x", 1, b), 0);
    CHECK(strcmp(a, b) != 0);
    CHECK_EQ_INT(strlen(a), WEBHOOK_SIG_HEX);
}

static void test_backoff(void)
{
    /* r = 0: the fixed half; r -> 1: the whole wait */
    CHECK_EQ_INT(webhook_backoff_ms(1, 1000, 600000, 0.0), 500);
    CHECK_EQ_INT(webhook_backoff_ms(2, 1000, 600000, 0.0), 1000);
    CHECK_EQ_INT(webhook_backoff_ms(3, 1000, 600000, 0.0), 2000);
    CHECK_EQ_INT(webhook_backoff_ms(1, 1000, 600000, 0.5), 750);
    CHECK(webhook_backoff_ms(1, 1000, 600000, 0.999) < 1000);
    /* capped at max, however many attempts (no overflow) */
    CHECK_EQ_INT(webhook_backoff_ms(30, 1000, 600000, 0.0), 300000);
    CHECK_EQ_INT(webhook_backoff_ms(1000000, 1000, 600000, 0.0), 300000);
    CHECK(webhook_backoff_ms(1000000, 1000, 600000, 0.999) < 600000);
    CHECK(webhook_backoff_ms(1000000, 1000, 600000, 0.999) >= 599000);
    /* out-of-range inputs are clamped */
    CHECK_EQ_INT(webhook_backoff_ms(0, 1000, 600000, 0.0), 500);
    CHECK_EQ_INT(webhook_backoff_ms(1, 1000, 600000, -3.0), 500);
    CHECK(webhook_backoff_ms(1, 1000, 600000, 7.0) < 1000);
    CHECK_EQ_INT(webhook_backoff_ms(5, 1000, 10, 0.0), 500); /* max below base: base */
    /* the default schedule stays within 24 h after ~20 attempts: sum of the waits' lower bounds */
    long long sum = 0;
    int n = 0;
    while (sum < 86400000LL && n < 1000) sum += webhook_backoff_ms(++n, 1000, 600000, 0.0);
    CHECK(n > 100 && n < 400); /* ~ 290 attempts at the lower bound, ~150 at the upper */
}

int main(void)
{
    RUN(test_sign_rfc4231);
    RUN(test_backoff);
    return UNIT_DONE();
}
