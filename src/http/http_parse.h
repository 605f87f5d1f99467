/* Strict, stateless HTTP/1.1 request-head parser, chunked body decoder and query helpers. */
#ifndef PARLOR_HTTP_PARSE_H
#define PARLOR_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

enum { HTTP_MAX_HEADERS = 64 };
enum { HTTP_PARSE_INCOMPLETE = -2, HTTP_PARSE_ERROR = -1 };

/* Limits of the chunked decoder: a chunk-size line (size, extensions, CRLF) and the whole
 * trailer section; both would otherwise let a peer send unbounded bytes that decode to nothing. */
enum { HTTP_CHUNK_LINE_MAX = 1024, HTTP_CHUNK_TRAILER_MAX = 8192 };

typedef struct {
    str_t name, value; /* value has surrounding OWS trimmed */
} http_header_t;

typedef struct {
    str_t method, target; /* target as sent, e.g. "/socket.io/?EIO=4&transport=polling" */
    str_t path, query;    /* target split at the first '?'; query without the '?' (empty if none) */
    int minor_version;    /* HTTP/1.0 -> 0, HTTP/1.1 -> 1 */
    http_header_t headers[HTTP_MAX_HEADERS];
    size_t num_headers;
    int64_t content_length;   /* -1 when absent */
    bool chunked;             /* Transfer-Encoding: chunked (the only coding accepted) */
    bool keep_alive;          /* 1.1: unless Connection: close; 1.0: only with keep-alive */
    bool upgrade_websocket;   /* Upgrade has token "websocket" AND Connection has "upgrade" */
    int error_status;         /* set on HTTP_PARSE_ERROR: 400, 431, 501 or 505 */
    const char *error_reason; /* short static English text, e.g. "invalid header name" */
} http_request_t;

/* Parses the request head in buf[0..len), borrowed: every str_t of *req points into buf (the one
 * exception: an absolute-form target without a path, "http://host", gets path = static "/").
 * Returns the head length in bytes through the final CRLFCRLF (including any skipped leading
 * empty lines) when complete, HTTP_PARSE_INCOMPLETE when more bytes are needed, HTTP_PARSE_ERROR
 * with req->error_status/error_reason set. Stateless: call again with the grown buffer. Bytes
 * after the head (body, next pipelined request) are not looked at.
 *
 * Choices where RFC 9112 leaves room:
 * - Line endings must be CRLF. A bare LF anywhere in the head is rejected with 400 (no LF-only
 *   tolerance: differing tolerance between proxies and servers is a smuggling vector).
 *   A CR not followed by LF is 400.
 * - Empty lines (CRLF) before the request line are skipped.
 * - Targets: origin-form ("/..."), "*" only with OPTIONS, absolute-form with scheme http or
 *   https (path set to its path part). Bytes outside 0x21..0x7E in the target are 400.
 * - An HTTP/1.1 request without Host, or any request with more than one Host, is 400.
 * - Content-Length: digits only; repeated fields must agree; overflow of int64_t is 400.
 * - Transfer-Encoding: only "chunked", exactly once; any other coding is 501; together with
 *   Content-Length, chunked twice, an empty list, or any Transfer-Encoding in HTTP/1.0 is 400.
 * - More than HTTP_MAX_HEADERS fields, or a head longer than max_head_bytes (complete or not),
 *   is 431. A head of exactly max_head_bytes bytes is accepted.
 * - upgrade_websocket reflects the two headers only; the WebSocket layer checks method/version. */
int http_parse_request(const char *buf, size_t len, size_t max_head_bytes, http_request_t *req);

/* First field named `name` (case-insensitive); .ptr is NULL when absent. */
str_t http_request_header(const http_request_t *req, const char *name);

/* True when the comma-separated list `value` has the element `token` (case-insensitive, OWS
 * around elements ignored, empty elements skipped). */
bool http_header_has_token(str_t value, const char *token);

typedef struct {
    int state;
    uint64_t size;   /* the chunk size being read, then the data bytes left in the chunk */
    size_t line_len; /* bytes of the current chunk-size line, or of the trailer section */
    bool done;       /* last-chunk and trailer section consumed */
} http_chunked_t;

void http_chunked_init(http_chunked_t *d);

/* Incremental chunked-body decoder. Consumes raw bytes from in[0..in_len) and writes the decoded
 * body bytes to out[0..*out_len) (out may equal in: decoding never expands, so in-place works;
 * out needs room for in_len bytes). Returns the number of raw bytes consumed or HTTP_PARSE_ERROR
 * (sticky: later calls fail too). This implementation consumes every byte it is given until
 * done, keeping partial lines in *d; callers must still handle a short count (re-feed the rest).
 * After the last-chunk and trailer section, d->done is true and further bytes are not consumed
 * (they are the next pipelined request). Chunk extensions are ignored, trailers skipped.
 * Errors: a size that is empty, not hex, over 2^62, followed by anything but BWS ";" or CRLF;
 * a size line over HTTP_CHUNK_LINE_MAX; chunk data not followed by CRLF; bare LF or CR; control
 * characters in extensions or trailers; a trailer section over HTTP_CHUNK_TRAILER_MAX. */
int64_t http_chunked_decode(http_chunked_t *d, const char *in, size_t in_len, char *out,
                            size_t *out_len);
bool http_chunked_done(const http_chunked_t *d);

/* Percent-decodes `in` ("%XX" -> byte, and "+" -> space when plus_is_space) into out,
 * NUL-terminated, at most cap-1 bytes. Returns the decoded length, or -1 when malformed (a '%'
 * not followed by two hex digits, or a NUL byte, escaped "%00" or raw) or when it does not fit. */
int http_percent_decode(str_t in, bool plus_is_space, char *out, size_t cap);

/* Looks up the first parameter `name` of a query ("a=1&b=2", without '?'; names compared after
 * decoding; a parameter without '=' has an empty value) and copies its decoded value ("+" is a
 * space) into out, NUL-terminated, at most cap-1 bytes. Returns its length, -1 when absent,
 * -2 when its value is malformed (see http_percent_decode) or too long. */
int http_query_param(str_t query, const char *name, char *out, size_t cap);

#endif
