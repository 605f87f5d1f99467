/* Serves the built web client (web/dist) from memory: safe paths, content types, caching
 * headers, precompressed .gz variants, a same-origin Content-Security-Policy, SPA fallback. */
#ifndef PARLOR_HTTP_STATIC_H
#define PARLOR_HTTP_STATIC_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"
#include "http/http_server.h"

typedef struct http_static http_static_t;

/* Limits of what is loaded at start: the client is a handful of small files, and a web root
 * pointed at a large tree by mistake must not eat the server's memory. */
enum {
    HTTP_STATIC_MAX_FILES = 1024,
    HTTP_STATIC_MAX_FILE = 16 * 1024 * 1024,
    HTTP_STATIC_MAX_TOTAL = 64 * 1024 * 1024,
    HTTP_STATIC_MAX_DEPTH = 8,
    HTTP_STATIC_PATH_MAX = 1024,
};

enum {
    HTTP_STATIC_E_BAD = -1,      /* malformed escape, NUL, backslash, "..", control byte */
    HTTP_STATIC_E_TOO_LONG = -2, /* does not fit in the output buffer */
};

/* Loads every regular, non-hidden file under root (symlinks are not followed) into memory once;
 * the files are not read again, so a rebuilt client needs a server restart. A missing or
 * unreadable root is not an error: it is logged and every request then gets a 404 that says
 * the client is not built. Returns NULL only when out of memory. root is copied. */
http_static_t *http_static_new(const char *root);
void http_static_free(http_static_t *st);
/* Number of files loaded (a .gz variant counts as part of its file). */
size_t http_static_count(const http_static_t *st);

/* Route handler (arg = the http_static_t): GET and HEAD, anything else 405. */
int http_static_handle(http_conn_t *hc, const http_request_t *req, str_t body, void *arg);

/* ---- pure parts, exposed for tests ---- */

/* Turns a request path ("/a/./b%20c/") into the relative file name it names ("a/b c/"), NUL
 * terminated in out[0..cap). Percent escapes are decoded once; empty and "." segments are
 * dropped; a trailing '/' is kept (it names a directory). Refused (HTTP_STATIC_E_BAD): a path
 * not starting with '/', a malformed escape, NUL (raw or %00), a backslash (raw or escaped),
 * any control byte or DEL, a ".." segment (raw or escaped). Returns the length of out, or a
 * negative HTTP_STATIC_E_*. */
int http_static_normalize(str_t path, char *out, size_t cap);

/* Content-Type for a file name by its extension (case-insensitive); text types say UTF-8.
 * Unknown or no extension: "application/octet-stream". */
const char *http_static_mime(str_t name);

/* True when the file name carries a content hash, so it can be cached forever: a dot-separated
 * part of 8-64 letters and digits right before the extension, after a name, that has a digit or
 * is all upper case ("app.4KXOZT2P.js", "app.SLQOHWEG.css", "app.1a2b3c4d.js"). */
bool http_static_is_hashed(str_t name);

/* True when an Accept-Encoding value accepts gzip: "gzip" or "x-gzip" or "*" with a q-value
 * above 0 (an explicit gzip;q=0 wins over "*"). */
bool http_static_accepts_gzip(str_t accept_encoding);

/* True when the last segment of a normalized name has no '.', i.e. it looks like an
 * application route ("settings", "c/123") rather than a missing asset ("app.js"). */
bool http_static_is_route(str_t name);

#endif
