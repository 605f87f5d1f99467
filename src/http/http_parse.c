/* Strict, stateless HTTP/1.1 request-head parser, chunked body decoder and query helpers. */
#include "http/http_parse.h"

#include <limits.h>

/* A parse position over buf[0..end); running off `end` means "need more bytes". */
typedef struct {
    const char *buf;
    size_t pos, end;
    http_request_t *req;
} cursor_t;

static int fail(http_request_t *req, int status, const char *reason)
{
    req->error_status = status;
    req->error_reason = reason;
    return HTTP_PARSE_ERROR;
}

/* RFC 9110 tchar: ALPHA / DIGIT / "!#$%&'*+-.^_`|~", as a bitmap (a memchr per '-' in a
 * header name was a tenth of a handshake's head parse). */
static bool is_tchar(unsigned char c)
{
    static const uint64_t set[2] = {0x03ff6cfa00000000ull, 0x57ffffffc7fffffeull};
    return c < 128 && (set[c >> 6] >> (c & 63) & 1);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* At a CR or LF ending a line: only CRLF is accepted (see the header on bare LF). */
static int take_crlf(cursor_t *c)
{
    if (c->pos >= c->end) return HTTP_PARSE_INCOMPLETE;
    if (c->buf[c->pos] == '\n') return fail(c->req, 400, "bare LF line ending");
    if (c->buf[c->pos] != '\r') return fail(c->req, 400, "expected CRLF");
    if (c->pos + 1 >= c->end) return HTTP_PARSE_INCOMPLETE;
    if (c->buf[c->pos + 1] != '\n') return fail(c->req, 400, "CR not followed by LF");
    c->pos += 2;
    return 0;
}

/* Splits a complete request-target into path and query, checking its form. */
static int split_target(http_request_t *req)
{
    str_t t = req->target;
    size_t path_start = 0;

    if (t.len == 1 && t.ptr[0] == '*') {
        if (!str_eq_cstr(req->method, "OPTIONS"))
            return fail(req, 400, "asterisk-form target without OPTIONS");
        req->path = t;
        req->query = str_make(t.ptr + t.len, 0);
        return 0;
    }
    if (t.ptr[0] != '/') {
        size_t scheme_len;
        if (t.len >= 7 && strncasecmp(t.ptr, "http://", 7) == 0)
            scheme_len = 7;
        else if (t.len >= 8 && strncasecmp(t.ptr, "https://", 8) == 0)
            scheme_len = 8;
        else
            return fail(req, 400, "invalid request-target");
        path_start = scheme_len;
        while (path_start < t.len && t.ptr[path_start] != '/' && t.ptr[path_start] != '?')
            path_start++;
        if (path_start == scheme_len) return fail(req, 400, "absolute-form target without host");
        /* RFC 9110 4.2.4: userinfo in an http(s) URI is to be treated as an error. */
        if (memchr(t.ptr + scheme_len, '@', path_start - scheme_len))
            return fail(req, 400, "userinfo in request-target");
    }
    const char *q = memchr(t.ptr + path_start, '?', t.len - path_start);
    size_t path_end = q ? (size_t)(q - t.ptr) : t.len;
    if (path_end == path_start)
        req->path = STR_LIT("/"); /* "http://host?x": RFC 3986 normalizes the empty path */
    else
        req->path = str_make(t.ptr + path_start, path_end - path_start);
    req->query = q ? str_make(q + 1, t.len - path_end - 1) : str_make(t.ptr + t.len, 0);
    return 0;
}

static int parse_request_line(cursor_t *c)
{
    const char *b = c->buf;
    int rc;

    /* RFC 9112 2.2: a server SHOULD ignore empty lines received before the request-line. */
    while (c->pos < c->end && (b[c->pos] == '\r' || b[c->pos] == '\n'))
        if ((rc = take_crlf(c)) != 0) return rc;

    size_t start = c->pos;
    while (c->pos < c->end && is_tchar((unsigned char)b[c->pos])) c->pos++;
    if (c->pos >= c->end) return HTTP_PARSE_INCOMPLETE;
    if (b[c->pos] != ' ' || c->pos == start) return fail(c->req, 400, "invalid method");
    c->req->method = str_make(b + start, c->pos - start);
    c->pos++;

    start = c->pos;
    while (c->pos < c->end && (unsigned char)b[c->pos] > 0x20 && (unsigned char)b[c->pos] < 0x7f)
        c->pos++;
    if (c->pos >= c->end) return HTTP_PARSE_INCOMPLETE;
    if (b[c->pos] != ' ' || c->pos == start) return fail(c->req, 400, "invalid request-target");
    c->req->target = str_make(b + start, c->pos - start);
    c->pos++;
    if ((rc = split_target(c->req)) != 0) return rc;

    /* Checked byte by byte so garbage fails before the line is complete. */
    static const char pattern[] = "HTTP/d.d";
    for (size_t i = 0; i < 8; i++) {
        if (c->pos + i >= c->end) return HTTP_PARSE_INCOMPLETE;
        char ch = b[c->pos + i];
        bool ok = pattern[i] == 'd' ? (ch >= '0' && ch <= '9') : ch == pattern[i];
        if (!ok) return fail(c->req, 400, "invalid HTTP version");
    }
    char major = b[c->pos + 5], minor = b[c->pos + 7];
    c->pos += 8;
    if (c->pos >= c->end) return HTTP_PARSE_INCOMPLETE;
    if (b[c->pos] != '\r' && b[c->pos] != '\n') return fail(c->req, 400, "invalid HTTP version");
    if ((rc = take_crlf(c)) != 0) return rc;
    if (major != '1' || minor > '1') return fail(c->req, 505, "HTTP version not supported");
    c->req->minor_version = minor - '0';
    return 0;
}

/* Parses field lines up to and including the empty line ending the head. */
static int parse_headers(cursor_t *c)
{
    const char *b = c->buf;
    http_request_t *req = c->req;
    int rc;

    for (;;) {
        if (c->pos >= c->end) return HTTP_PARSE_INCOMPLETE;
        char ch = b[c->pos];
        if (ch == '\r' || ch == '\n') return take_crlf(c);
        /* Also covers whitespace between the request line and the first field (RFC 9112 2.2). */
        if (is_ows(ch)) return fail(req, 400, "obsolete line folding");

        size_t start = c->pos;
        while (c->pos < c->end && is_tchar((unsigned char)b[c->pos])) c->pos++;
        if (c->pos >= c->end) return HTTP_PARSE_INCOMPLETE;
        if (c->pos == start && b[c->pos] == ':') return fail(req, 400, "empty header name");
        if (is_ows(b[c->pos])) return fail(req, 400, "whitespace before colon");
        if (b[c->pos] != ':') return fail(req, 400, "invalid header name");
        str_t name = str_make(b + start, c->pos - start);
        c->pos++;

        while (c->pos < c->end && is_ows(b[c->pos])) c->pos++;
        size_t vstart = c->pos;
        /* Up to the first control character (HTAB is none), then trailing OWS trimmed. */
        while (c->pos < c->end && !is_ctl((unsigned char)b[c->pos])) c->pos++;
        if (c->pos < c->end && b[c->pos] != '\r' && b[c->pos] != '\n')
            return fail(req, 400, "invalid character in header value");
        size_t vend = c->pos;
        while (vend > vstart && is_ows(b[vend - 1])) vend--;
        if ((rc = take_crlf(c)) != 0) return rc;

        if (req->num_headers == HTTP_MAX_HEADERS) return fail(req, 431, "too many headers");
        req->headers[req->num_headers].name = name;
        req->headers[req->num_headers].value = str_make(b + vstart, vend - vstart);
        req->num_headers++;
    }
}

/* Iterates a comma-separated list: trims OWS around elements and skips empty ones. */
static bool list_next(str_t *rest, str_t *elem)
{
    while (rest->len > 0) {
        const char *comma = memchr(rest->ptr, ',', rest->len);
        size_t n = comma ? (size_t)(comma - rest->ptr) : rest->len;
        const char *p = rest->ptr;
        *rest = comma ? str_make(comma + 1, rest->len - n - 1) : str_make(p + n, 0);
        while (n > 0 && is_ows(p[0])) p++, n--;
        while (n > 0 && is_ows(p[n - 1])) n--;
        if (n > 0) {
            *elem = str_make(p, n);
            return true;
        }
    }
    return false;
}

bool http_header_has_token(str_t value, const char *token)
{
    str_t want = str_cstr(token), elem;
    if (!value.ptr) return false;
    while (list_next(&value, &elem))
        if (str_ieq(elem, want)) return true;
    return false;
}

str_t http_request_header(const http_request_t *req, const char *name)
{
    str_t want = str_cstr(name);
    for (size_t i = 0; i < req->num_headers; i++)
        if (str_ieq(req->headers[i].name, want)) return req->headers[i].value;
    return STR_NULL;
}

static int parse_content_length(str_t v, int64_t *out)
{
    int64_t n = 0;
    if (v.len == 0) return -1;
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9') return -1;
        int d = v.ptr[i] - '0';
        if (n > (INT64_MAX - d) / 10) return -2;
        n = n * 10 + d;
    }
    *out = n;
    return 0;
}

/* Derives framing and connection semantics from the complete field list. */
static int interpret_headers(http_request_t *req)
{
    size_t hosts = 0, chunked = 0, other_codings = 0;
    bool has_te = false, conn_close = false, conn_keep_alive = false, conn_upgrade = false;
    bool upgrade_ws = false;

    for (size_t i = 0; i < req->num_headers; i++) {
        str_t name = req->headers[i].name, value = req->headers[i].value, elem;
        if (str_ieq_cstr(name, "Host")) {
            hosts++;
        } else if (str_ieq_cstr(name, "Content-Length")) {
            int64_t n = 0;
            int rc = parse_content_length(value, &n);
            if (rc == -2) return fail(req, 400, "Content-Length overflow");
            if (rc != 0) return fail(req, 400, "invalid Content-Length");
            if (req->content_length >= 0 && req->content_length != n)
                return fail(req, 400, "conflicting Content-Length");
            req->content_length = n;
        } else if (str_ieq_cstr(name, "Transfer-Encoding")) {
            has_te = true;
            while (list_next(&value, &elem)) {
                if (str_ieq_cstr(elem, "chunked"))
                    chunked++;
                else
                    other_codings++;
            }
        } else if (str_ieq_cstr(name, "Connection")) {
            while (list_next(&value, &elem)) {
                if (str_ieq_cstr(elem, "close")) conn_close = true;
                if (str_ieq_cstr(elem, "keep-alive")) conn_keep_alive = true;
                if (str_ieq_cstr(elem, "upgrade")) conn_upgrade = true;
            }
        } else if (str_ieq_cstr(name, "Upgrade")) {
            if (http_header_has_token(value, "websocket")) upgrade_ws = true;
        }
    }

    if (hosts > 1) return fail(req, 400, "duplicate Host header");
    if (hosts == 0 && req->minor_version == 1) return fail(req, 400, "missing Host header");
    if (has_te) {
        /* RFC 9112 6.1/6.3: both framings at once is the classic smuggling vector. */
        if (req->content_length >= 0)
            return fail(req, 400, "both Content-Length and Transfer-Encoding");
        if (req->minor_version == 0) return fail(req, 400, "Transfer-Encoding in HTTP/1.0");
        if (other_codings > 0) return fail(req, 501, "unsupported transfer coding");
        if (chunked == 0) return fail(req, 400, "empty Transfer-Encoding");
        if (chunked > 1) return fail(req, 400, "chunked applied more than once");
        req->chunked = true;
    }
    req->keep_alive = !conn_close && (req->minor_version == 1 || conn_keep_alive);
    req->upgrade_websocket = upgrade_ws && conn_upgrade;
    return 0;
}

int http_parse_request(const char *buf, size_t len, size_t max_head_bytes, http_request_t *req)
{
    size_t limit = max_head_bytes < (size_t)INT_MAX ? max_head_bytes : (size_t)INT_MAX;
    cursor_t c = {buf, 0, len < limit ? len : limit, req};
    int rc;

    req->method = req->target = req->path = req->query = STR_NULL;
    req->minor_version = 0;
    req->num_headers = 0;
    req->content_length = -1;
    req->chunked = req->keep_alive = req->upgrade_websocket = false;
    req->error_status = 0;
    req->error_reason = NULL;

    rc = parse_request_line(&c);
    if (rc == 0) rc = parse_headers(&c);
    if (rc == HTTP_PARSE_INCOMPLETE) {
        /* Not complete within `limit` bytes: the head will be longer than max_head_bytes. */
        if (len >= limit) return fail(req, 431, "request head too large");
        return HTTP_PARSE_INCOMPLETE;
    }
    if (rc != 0) return rc;
    if ((rc = interpret_headers(req)) != 0) return rc;
    return (int)c.pos;
}

/* Chunked decoder states, in wire order. */
enum {
    CH_SIZE_FIRST, /* first hex digit of a chunk size */
    CH_SIZE,       /* more hex digits, BWS, ';' or CR */
    CH_SIZE_BWS,   /* whitespace after the size: more of it, ';' or CR */
    CH_EXT,        /* chunk extensions, ignored up to CR */
    CH_SIZE_LF,    /* LF ending the size line */
    CH_DATA,       /* chunk data */
    CH_DATA_CR,    /* CRLF after chunk data */
    CH_DATA_LF,
    CH_TRAILER_START, /* start of a trailer field line or of the final empty line */
    CH_TRAILER,       /* inside a trailer field line */
    CH_TRAILER_LF,
    CH_END_LF, /* LF of the final empty line */
    CH_DONE,
    CH_ERROR,
};

void http_chunked_init(http_chunked_t *d)
{
    memset(d, 0, sizeof(*d));
    d->state = CH_SIZE_FIRST;
}

bool http_chunked_done(const http_chunked_t *d)
{
    return d->done;
}

/* A byte after the chunk-size digits: BWS, the start of extensions, or the line's CR. */
static bool chunk_size_end(http_chunked_t *d, unsigned char ch)
{
    if (is_ows((char)ch))
        d->state = CH_SIZE_BWS;
    else if (ch == ';')
        d->state = CH_EXT;
    else if (ch == '\r')
        d->state = CH_SIZE_LF;
    else
        return false;
    return true;
}

int64_t http_chunked_decode(http_chunked_t *d, const char *in, size_t in_len, char *out,
                            size_t *out_len)
{
    size_t i = 0, o = 0;

    *out_len = 0;
    if (d->state == CH_ERROR) return HTTP_PARSE_ERROR;
    while (i < in_len && d->state != CH_DONE) {
        if (d->state == CH_DATA) {
            size_t n = in_len - i;
            if ((uint64_t)n > d->size) n = (size_t)d->size;
            if (out + o != in + i) memmove(out + o, in + i, n);
            i += n;
            o += n;
            d->size -= n;
            if (d->size == 0) d->state = CH_DATA_CR;
            continue;
        }

        unsigned char ch = (unsigned char)in[i++];
        if (d->state <= CH_SIZE_LF && ++d->line_len > HTTP_CHUNK_LINE_MAX) goto error;
        if (d->state >= CH_TRAILER_START && ++d->line_len > HTTP_CHUNK_TRAILER_MAX) goto error;

        switch (d->state) {
        case CH_SIZE_FIRST:
        case CH_SIZE: {
            int h = hex_value(ch);
            if (h < 0) {
                if (d->state == CH_SIZE_FIRST || !chunk_size_end(d, ch)) goto error;
                break;
            }
            /* Bound before shifting so the accumulator can never overflow. */
            if (d->size > ((uint64_t)1 << 62) >> 4) goto error;
            d->size = d->size * 16 + (uint64_t)h;
            if (d->size > (uint64_t)1 << 62) goto error;
            d->state = CH_SIZE;
            break;
        }
        case CH_SIZE_BWS:
            if (!chunk_size_end(d, ch)) goto error;
            break;
        case CH_EXT:
            if (ch == '\r')
                d->state = CH_SIZE_LF;
            else if (is_ctl(ch))
                goto error;
            break;
        case CH_SIZE_LF:
            if (ch != '\n') goto error;
            d->line_len = 0;
            d->state = d->size > 0 ? CH_DATA : CH_TRAILER_START;
            break;
        case CH_DATA_CR:
            if (ch != '\r') goto error;
            d->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (ch != '\n') goto error;
            d->size = 0;
            d->line_len = 0;
            d->state = CH_SIZE_FIRST;
            break;
        case CH_TRAILER_START:
            if (ch == '\r') {
                d->state = CH_END_LF;
                break;
            }
            /* A trailer line starting with whitespace would be obs-fold; a field name must be a
             * token. */
            if (!is_tchar(ch)) goto error;
            d->state = CH_TRAILER;
            break;
        case CH_TRAILER:
            if (ch == '\r')
                d->state = CH_TRAILER_LF;
            else if (is_ctl(ch))
                goto error;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n') goto error;
            d->state = CH_TRAILER_START;
            break;
        case CH_END_LF:
            if (ch != '\n') goto error;
            d->state = CH_DONE;
            d->done = true;
            break;
        default:
            goto error;
        }
    }
    *out_len = o;
    return (int64_t)i;

error:
    d->state = CH_ERROR;
    *out_len = 0;
    return HTTP_PARSE_ERROR;
}

int http_percent_decode(str_t in, bool plus_is_space, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0) return -1;
    if (cap > (size_t)INT_MAX) cap = (size_t)INT_MAX;
    for (size_t i = 0; i < in.len; i++) {
        char ch = in.ptr[i];
        if (ch == '%') {
            int hi, lo;
            if (i + 2 >= in.len) return -1;
            if ((hi = hex_value((unsigned char)in.ptr[i + 1])) < 0 ||
                (lo = hex_value((unsigned char)in.ptr[i + 2])) < 0)
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+' && plus_is_space) {
            ch = ' ';
        }
        /* Callers use the result as a C string: an embedded NUL would silently truncate it. */
        if (ch == '\0' || o + 1 >= cap) return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    return (int)o;
}

/* Compares an encoded query name with `name` without a buffer; malformed never matches. */
static bool query_name_eq(str_t enc, const char *name)
{
    size_t j = 0;
    for (size_t i = 0; i < enc.len; i++, j++) {
        char ch = enc.ptr[i];
        if (ch == '%') {
            int hi, lo;
            if (i + 2 >= enc.len) return false;
            if ((hi = hex_value((unsigned char)enc.ptr[i + 1])) < 0 ||
                (lo = hex_value((unsigned char)enc.ptr[i + 2])) < 0)
                return false;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (ch == '\0' || name[j] != ch) return false;
    }
    return name[j] == '\0';
}

int http_query_param(str_t query, const char *name, char *out, size_t cap)
{
    str_t rest = query;
    while (rest.len > 0) {
        const char *amp = memchr(rest.ptr, '&', rest.len);
        str_t pair = str_make(rest.ptr, amp ? (size_t)(amp - rest.ptr) : rest.len);
        rest = amp ? str_make(amp + 1, rest.len - pair.len - 1) : str_make(rest.ptr + pair.len, 0);
        if (pair.len == 0) continue;

        const char *eq = memchr(pair.ptr, '=', pair.len);
        str_t key = str_make(pair.ptr, eq ? (size_t)(eq - pair.ptr) : pair.len);
        if (!query_name_eq(key, name)) continue;
        str_t value = eq ? str_make(eq + 1, pair.len - key.len - 1) : str_make(pair.ptr, 0);
        int n = http_percent_decode(value, true, out, cap);
        return n < 0 ? -2 : n;
    }
    return -1;
}
