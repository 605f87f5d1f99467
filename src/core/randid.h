/* Unguessable random identifiers (session ids, socket ids). */
#ifndef PARLOR_CORE_RANDID_H
#define PARLOR_CORE_RANDID_H

#include <stdbool.h>
#include <stddef.h>

/* Writes n (at most 64) characters of base64url drawn from the kernel's CSPRNG, then a NUL (out
 * holds n+1). Thread-safe: each thread draws from its own pool. */
void randid_generate(char *out, size_t n);
/* n (at most 64) random bytes from the same pool (no OpenSSL call, no system call per id). */
void randid_bytes(void *out, size_t n);
/* True when s[0..n) are all characters randid_generate writes. */
bool randid_valid(const char *s, size_t n);

#endif
