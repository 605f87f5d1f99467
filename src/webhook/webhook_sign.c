/* HMAC-SHA256 signatures and the retry schedule (webhook_sign.h). */
#include "webhook/webhook_sign.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

int webhook_sign(const char *secret, size_t secret_len, const void *body, size_t len,
                 char out[WEBHOOK_SIG_HEX + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, body, len, mac, &n) || n != 32) {
        out[0] = '\0';
        return -1;
    }
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[2 * n] = '\0';
    return 0;
}

int64_t webhook_backoff_ms(int64_t attempts, int64_t base_ms, int64_t max_ms, double r)
{
    if (attempts < 1) attempts = 1;
    if (base_ms < 1) base_ms = 1;
    if (max_ms < base_ms) max_ms = base_ms;
    int64_t d = base_ms;
    for (int64_t i = 1; i < attempts && d < max_ms; i++) d = d > max_ms / 2 ? max_ms : d * 2;
    if (d > max_ms) d = max_ms;
    if (r < 0) r = 0;
    if (r >= 1) r = 0.999999;
    int64_t half = d / 2;
    return half + (int64_t)((double)(d - half) * r);
}
