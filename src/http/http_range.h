/* Range request header (RFC 9110 §14): a single byte range resolved against a known size. */
#ifndef PARLOR_HTTP_RANGE_H
#define PARLOR_HTTP_RANGE_H

#include <stdint.h>

#include "core/str.h"

enum {
    HTTP_RANGE_OK = 0,            /* answer 206 with bytes start..end_inclusive */
    HTTP_RANGE_IGNORE = 1,        /* answer 200 with the full representation */
    HTTP_RANGE_UNSATISFIABLE = -1 /* answer 416 with Content-Range: bytes *<size> */
};

/* Resolves a Range header value against a representation of `size` bytes. On HTTP_RANGE_OK,
 * *start <= *end_inclusive < size. Forms: "bytes=a-b" (b clamped to size-1), "bytes=a-",
 * "bytes=-n" (the last n bytes, the whole when n >= size). Choices:
 * - The unit is case-insensitive; OWS is allowed after "=" and at the end, nowhere else.
 * - IGNORE (serve 200, as RFC 9110 allows a server to ignore Range): any syntax error
 *   ("bytes=5-3", "bytes=-", "bytes=a-b", signs, spaces inside), another unit, and any list of
 *   more than one range (a comma anywhere): multipart/byteranges is not implemented, and
 *   answering several ranges with the full body is what RFC 9110 §14.2 permits.
 * - UNSATISFIABLE: a first position >= size ("bytes=10-" on 10 bytes, any "a-" on an empty
 *   representation) and the suffix "bytes=-0".
 * - Size 0 with a non-zero suffix ("bytes=-5"): IGNORE (RFC 9110 calls it satisfiable, but
 *   there is no byte to send as 206; the empty 200 is the useful answer).
 * - Numbers of any length: values past 2^64-1 saturate (so a huge first position is 416 and a
 *   huge last position clamps), never wrap. */
int http_range_parse(str_t header, uint64_t size, uint64_t *start, uint64_t *end_inclusive);

#endif
