/* Base64, standard alphabet with padding (RFC 4648 section 4), strict both ways. */
#ifndef PARLOR_CORE_BASE64_H
#define PARLOR_CORE_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters base64_encode writes for n input bytes: 4 * ceil(n / 3). */
static inline size_t base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Writes base64_encoded_len(n) characters (no NUL) to out and returns that count. */
size_t base64_encode(const uint8_t *in, size_t n, char *out);

/* Validates in[0..len) and returns the number of bytes it decodes to, or -1. Strict: len is a
 * multiple of 4, only the 64 alphabet characters, '=' only as the last one or two characters, and
 * the bits padding leaves unused are zero (so every byte string has exactly one encoding). */
int64_t base64_decoded_len(const char *in, size_t len);

/* Decodes in[0..len) into out (room for len / 4 * 3 bytes). Returns the decoded length or -1 with
 * the same rules as base64_decoded_len; on -1, out may hold partial output. out may alias in
 * (decoding in place): each 4-character group is read before its 3 bytes are written. */
int64_t base64_decode(const char *in, size_t len, uint8_t *out);

#endif
