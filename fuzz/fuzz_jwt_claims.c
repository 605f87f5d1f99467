/* libFuzzer target: the JWT claims read in place (auth_jwt_check_payload) against jansson's
 * reading of the same payload: the same result and the same claims for any bytes, with and
 * without a configured issuer/audience. The in-place reader takes only plain payloads and hands
 * anything unusual to jansson, so any difference is a bug in its choice or its reading. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_jwt.h"

static const char fuzz_secret[] = "fuzz-secret-0123456789abcdef-0123456789";

static auth_jwt_t *fuzz_verifier(int which)
{
    static auth_jwt_t *a[2];
    if (a[which] == NULL) {
        auth_jwt_config_t c = {"HS256",
                               (const unsigned char *)fuzz_secret,
                               sizeof(fuzz_secret) - 1,
                               which ? "iss" : NULL,
                               which ? "aud" : NULL,
                               -1,
                               0};
        if (auth_jwt_new(&c, &a[which], NULL, 0) != AUTH_OK) abort();
    }
    return a[which];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t nows[] = {0, 1700000000, (int64_t)1 << 53};
    char *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    for (int w = 0; w < 2; w++) {
        for (size_t t = 0; t < sizeof(nows) / sizeof(nows[0]); t++) {
            auth_claims_t f, s;
            int rf = auth_jwt_check_payload(fuzz_verifier(w), buf, size, nows[t], &f, false);
            int rs = auth_jwt_check_payload(fuzz_verifier(w), buf, size, nows[t], &s, true);
            if (rf != rs || memcmp(&f, &s, sizeof(f)) != 0) abort();
        }
    }
    free(buf);
    return 0;
}
