/* Incremental, streaming multipart/form-data parser (RFC 7578 over RFC 2046) and boundary lookup.
 */
#ifndef PARLOR_HTTP_MULTIPART_H
#define PARLOR_HTTP_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

enum {
    HTTP_MULTIPART_BOUNDARY_MAX = 70,    /* RFC 2046 §5.1.1 */
    HTTP_MULTIPART_HEADERS_MAX = 8192,   /* bytes of one part's header block, blank line included */
    HTTP_MULTIPART_HEADER_COUNT_MAX = 16 /* header fields of one part */
};

/* Every error is sticky: once returned, later feeds return it again. All but ABORTED mean a
 * malformed body (HTTP 400); ABORTED is whatever the callback that stopped the parser decided. */
enum {
    HTTP_MULTIPART_ERR_BOUNDARY = -1,    /* Content-Type not multipart/form-data, bad boundary */
    HTTP_MULTIPART_ERR_SYNTAX = -2,      /* delimiter line, no parts, data after close delimiter */
    HTTP_MULTIPART_ERR_HEADER_SIZE = -3, /* part headers over 8 KiB or over 16 fields */
    HTTP_MULTIPART_ERR_HEADER = -4,      /* malformed header line (bare LF/CR, no colon, fold...) */
    HTTP_MULTIPART_ERR_DISPOSITION =
        -5,                            /* Content-Disposition missing, not form-data, bad params */
    HTTP_MULTIPART_ERR_TRUNCATED = -6, /* finish() before the close delimiter */
    HTTP_MULTIPART_ERR_ABORTED = -7    /* a callback returned non-zero */
};

/* Callbacks; any may be NULL. A non-zero return stops the parser with HTTP_MULTIPART_ERR_ABORTED
 * (e.g. a size limit hit, a second file part). Every str_t and data pointer is borrowed for the
 * duration of the call only: it points into the parser or into the fed buffer. */
typedef struct {
    /* name: the form field name, unquoted. filename: .ptr NULL when the part has none; else
     * the filename*=UTF-8''... value percent-decoded when present (it wins over filename=), or
     * the filename= value unquoted, where a backslash escapes only '"' and '\' and is kept
     * before anything else (browsers send backslashes unescaped). Raw otherwise: not sanitized,
     * any byte but CR/LF (NUL possible via filename*). content_type: the part's Content-Type
     * value trimmed, .ptr NULL when absent (informative only: never trust it). */
    int (*on_part_begin)(void *ud, str_t name, str_t filename, str_t content_type);
    /* Body bytes of the current part, in order, in pieces of any size (never buffered whole). */
    int (*on_part_data)(void *ud, const char *data, size_t len);
    /* The current part's body is complete (its delimiter was seen). */
    int (*on_part_end)(void *ud);
    /* The close delimiter "--boundary--" was seen. The rest of its line is still checked, so
     * a feed can yet fail with ERR_SYNTAX ("--boundary--junk"): finish() has the last word. */
    int (*on_done)(void *ud);
} http_multipart_callbacks_t;

/* Parser state (about 8.4 KiB: the part-header buffer lives here; no allocation). Opaque. */
typedef struct {
    int state;
    int error; /* 0 or the sticky HTTP_MULTIPART_ERR_* */
    const char *error_reason;
    size_t delim_len;  /* "\r\n--" + boundary */
    size_t match;      /* bytes of delim matched so far (held back, never yet emitted) */
    size_t hlen;       /* bytes in hbuf */
    size_t line_start; /* offset in hbuf of the current header line */
    unsigned nheaders; /* header lines of the current part */
    unsigned parts;    /* parts begun */
    char delim[4 + HTTP_MULTIPART_BOUNDARY_MAX];
    char hbuf[HTTP_MULTIPART_HEADERS_MAX];
} http_multipart_t;

/* Extracts the boundary parameter of a Content-Type value ("multipart/form-data;
 * boundary=..."; type and parameter names case-insensitive, value a token or a quoted-string
 * with quoted-pair escapes) into out, NUL-terminated. The boundary must be 1-70 characters of
 * RFC 2046 bchars (DIGIT ALPHA ' ( ) + _ , - . / : = ? and space) and not end with a space.
 * Returns its length, or HTTP_MULTIPART_ERR_BOUNDARY when the type is not multipart/form-data,
 * the parameter is missing, repeated, malformed or invalid, or cap < length + 1. */
int http_multipart_boundary(str_t content_type, char *out, size_t cap);

/* Prepares p for a body with this boundary (as returned by http_multipart_boundary, validated
 * again). Returns 0 or HTTP_MULTIPART_ERR_BOUNDARY (then every feed fails with it). */
int http_multipart_init(http_multipart_t *p, str_t boundary);

/* Consumes body bytes, calling cb with ud. Returns the number of bytes consumed, which is always
 * len unless an error is returned: bytes that may begin a delimiter ("\r\n--boundary", at most
 * boundary length + 3 bytes) are HELD BACK INSIDE THE PARSER, not left to the caller, and are
 * passed to on_part_data later if they turn out to be data. So the caller never re-feeds
 * anything and may discard data once fed. Data after the close delimiter line (the epilogue)
 * is consumed and ignored; a preamble before the first delimiter too.
 *
 * Grammar choices (RFC 2046 §5.1.1 leaves some room):
 * - Line breaks must be CRLF; LF-only bodies are refused (HTTP_MULTIPART_ERR_SYNTAX on the
 *   first delimiter line, or ERR_HEADER in headers). Browsers, node and curl all send CRLF.
 * - A delimiter is CRLF "--" boundary, except the very first, which may start the body. Inside
 *   a part, "--boundary" not preceded by CRLF is data, as is CRLF "--" + a boundary prefix.
 *   "\r\n--boundary" followed by anything but "--", transport padding (SP/HT) + CRLF, is
 *   ERR_SYNTAX: a sender's boundary must not occur in its content.
 * - After the close delimiter "--boundary--": optional SP/HT, then end of body or CRLF and an
 *   ignored epilogue; anything else is ERR_SYNTAX. A body with no part is ERR_SYNTAX.
 * - Part headers: "name: value" lines, name a token, no obs-fold, no CTLs but HT in values;
 *   at most 16 fields and 8 KiB including the blank line. Content-Disposition must be there
 *   exactly once, of type form-data (case-insensitive) with a name parameter; parameters are
 *   tokens or quoted-strings, repeats refused; filename*= must be UTF-8''<pct-encoded> (other
 *   charsets refused). Content-Type at most once. Other fields (e.g. Content-Transfer-Encoding)
 *   are ignored. A filename= value keeps any '%' as sent (WHATWG's %22/%0D/%0A escapes are
 *   ambiguous, so they are not undone). */
int64_t http_multipart_feed(http_multipart_t *p, const char *data, size_t len,
                            const http_multipart_callbacks_t *cb, void *ud);

/* At the end of the body: 0 when the close delimiter was seen, HTTP_MULTIPART_ERR_TRUNCATED
 * when not (the error is then sticky), or the error already returned by a feed. */
int http_multipart_finish(http_multipart_t *p);

/* True once the close delimiter was seen. */
bool http_multipart_done(const http_multipart_t *p);

/* Short static English text for the last error ("truncated body", ...), "" when none. */
const char *http_multipart_error(const http_multipart_t *p);

#endif
