/* The pure parts of webhook delivery (docs/webhooks.md), kept apart for unit tests: the
 * signature a receiver checks and the retry schedule. */
#ifndef PARLOR_WEBHOOK_WEBHOOK_SIGN_H
#define PARLOR_WEBHOOK_WEBHOOK_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_SIG_HEX 64 /* hex digits of an HMAC-SHA256 */

/* out = lowercase hex of HMAC-SHA256(secret, body), NUL-terminated. 0, or -1 on failure. */
int webhook_sign(const char *secret, size_t secret_len, const void *body, size_t len,
                 char out[WEBHOOK_SIG_HEX + 1]);

/* The wait before the next attempt after `attempts` failed ones (>= 1): base * 2^(attempts-1)
 * capped at max, then "equal jitter": half of it fixed, the other half scaled by r in [0, 1)
 * (a random draw). So the wait lies in [d/2, d). */
int64_t webhook_backoff_ms(int64_t attempts, int64_t base_ms, int64_t max_ms, double r);

#endif
