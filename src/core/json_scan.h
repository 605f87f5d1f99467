/* Strict JSON validation, iteration and string codecs (RFC 8259 as JSON.parse accepts it); never
 * allocates. */
#ifndef PARLOR_CORE_JSON_SCAN_H
#define PARLOR_CORE_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

/* Deepest nesting of arrays/objects accepted: deeper input is rejected like a syntax error, so a
 * hostile client cannot make any walker of validated JSON recurse without bound. */
enum { JSON_SCAN_MAX_DEPTH = 64 };

/* Scans one JSON value starting at p[0] (after optional leading whitespace). Returns the number of
 * bytes from p[0] up to the end of that value (trailing whitespace not included), or -1 when the
 * value is invalid, truncated, or nested deeper than JSON_SCAN_MAX_DEPTH. Only the first value is
 * looked at: what follows it is the caller's business (json_valid checks the whole text). The text
 * must be UTF-8: invalid sequences in strings are errors; raw control characters (< 0x20) in
 * strings are errors; "\ud800" (a lone surrogate escape) is accepted, as JSON.parse does. */
int64_t json_scan_value(const char *p, size_t len);

/* True when p[0..len) is exactly one JSON value surrounded only by JSON whitespace. */
bool json_valid(const char *p, size_t len);

/* Iterates the elements of a JSON array, each returned as its raw text (no surrounding
 * whitespace) and validated with json_scan_value. The iterator borrows the text. */
typedef struct {
    const char *p;
    size_t len;
    size_t pos;
    int state;
} json_array_iter_t;

/* text must start with the array (leading whitespace allowed); whatever follows the closing ']' is
 * not looked at. Returns 0, or -1 when text does not start with '[' (json_array_next then
 * returns -1). */
int json_array_iter_init(json_array_iter_t *it, str_t text);
/* Returns 1 with *elem set, 0 at the end of the array, -1 when malformed (and from then on). */
int json_array_next(json_array_iter_t *it, str_t *elem);

/* Same for the members of a JSON object: *key is the raw key token with its quotes (decode it with
 * json_string_decode), *val the raw value text. Duplicate keys are reported as they come. */
typedef json_array_iter_t json_object_iter_t;
int json_object_iter_init(json_object_iter_t *it, str_t text);
int json_object_next(json_object_iter_t *it, str_t *key, str_t *val);
/* json_object_next in two halves, so that a string value can be decoded in the same pass that
 * checks it: json_object_key moves past the next key and its ':' (1, with *key its token; 0 at
 * the end; -1 malformed); then exactly one of json_object_value (any value, scanned) or
 * json_object_value_string (the value must be a string: decoded into out as
 * json_string_decode does, *val its token; the decoded length, or -1 when it is not a valid
 * string or does not fit). */
int json_object_key(json_object_iter_t *it, str_t *key);
int json_object_value(json_object_iter_t *it, str_t *val);
int64_t json_object_value_string(json_object_iter_t *it, str_t *val, char *out, size_t cap);

/* Decodes a JSON string token p[0..len) (exactly the token, quotes included) into UTF-8 in out.
 * Returns the number of bytes written, or -1 when the token is invalid or cap is too small.
 * The result is never longer than len - 2, so cap = len always suffices; out may equal p (decoding
 * in place). A lone surrogate escape decodes to U+FFFD, as Node does when it turns such a string
 * into UTF-8. */
int64_t json_string_decode(const char *p, size_t len, char *out, size_t cap);

/* True when a string anywhere in the valid JSON text p[0..len) holds a \uXXXX escape of a
 * surrogate that is not half of a high-low pair: JSON.parse accepts those, jansson (and so the
 * rest of this server) refuses them. */
bool json_has_lone_surrogate(const char *p, size_t len);

/* Writes s[0..n) as a JSON string literal, quotes included, byte for byte as JSON.stringify would
 * write the same text: '"' and '\' escaped, \b \f \n \r \t, other controls as \u00XX (lowercase
 * hex), everything else raw. An invalid UTF-8 sequence becomes U+FFFD per maximal subpart (as
 * Node's Buffer#toString does), so the output is always valid JSON and valid UTF-8.
 * Returns bytes written (no NUL), or -1 when cap is smaller than json_string_encoded_len. */
int64_t json_string_encode(const char *s, size_t n, char *out, size_t cap);
size_t json_string_encoded_len(const char *s, size_t n);

#endif
