/* Incremental multipart/form-data parser: a delimiter matcher over streamed bytes, part headers
 * buffered in the parser (bounded), bodies passed through without copies. */
#include "http/http_multipart.h"

#include <string.h>

enum {
    MP_PREAMBLE,   /* before the first delimiter: discarded */
    MP_DELIM_TAIL, /* right after "--boundary": "--", padding or CRLF */
    MP_DELIM_DASH, /* "--boundary-" */
    MP_PADDING,    /* transport padding (SP/HT) before CRLF */
    MP_DELIM_CR,   /* CR of the delimiter line seen, LF expected */
    MP_HEADERS,    /* part header block being buffered */
    MP_BODY,       /* part body: streamed out */
    MP_CLOSE_TAIL, /* after "--boundary--": padding, then CRLF or the end */
    MP_CLOSE_CR,
    MP_EPILOGUE, /* ignored */
    MP_ERROR
};

static bool mp_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 2046 bchars; space is allowed but not last (checked by the caller). */
static bool mp_is_bchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != 0 && strchr("'()+_,-./:=? ", c) != NULL;
}

static bool mp_is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static int mp_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool mp_boundary_valid(const char *b, size_t n)
{
    if (n < 1 || n > HTTP_MULTIPART_BOUNDARY_MAX || b[n - 1] == ' ') return false;
    for (size_t i = 0; i < n; i++) {
        if (!mp_is_bchar((unsigned char)b[i])) return false;
    }
    return true;
}

/* Reads a parameter value at s[*pos] (a quoted-string, decoded, or a run of visible characters
 * other than ';' and '"') into out (at most cap bytes; out NULL: only checked, any length);
 * returns its length or -1. */
static int mp_param_value(str_t s, size_t *pos, char *out, size_t cap)
{
    size_t i = *pos, n = 0;
    bool quoted = i < s.len && s.ptr[i] == '"';
    for (i += quoted;; i++) {
        if (i >= s.len) {
            if (quoted) return -1;
            break;
        }
        unsigned char c = (unsigned char)s.ptr[i];
        if (quoted) {
            if (c == '"') {
                i++;
                break;
            }
            if (c == '\\') {
                if (++i >= s.len) return -1;
                c = (unsigned char)s.ptr[i];
            }
            if ((c < 0x20 && c != '\t') || c == 0x7f) return -1;
        } else {
            if (c == ';' || mp_is_ows(c)) break;
            if (c <= 0x20 || c >= 0x7f || c == '"') return -1;
        }
        if (out) {
            if (n >= cap) return -1;
            out[n] = (char)c;
        }
        n++;
    }
    if (!quoted && n == 0) return -1;
    *pos = i;
    return n > (size_t)INT32_MAX ? -1 : (int)n;
}

static size_t mp_token(str_t s, size_t pos)
{
    while (pos < s.len && mp_is_tchar((unsigned char)s.ptr[pos])) pos++;
    return pos;
}

int http_multipart_boundary(str_t ct, char *out, size_t cap)
{
    size_t i = 0;
    while (i < ct.len && mp_is_ows((unsigned char)ct.ptr[i])) i++;
    size_t t0 = i;
    i = mp_token(ct, i);
    if (i == t0 || i >= ct.len || ct.ptr[i] != '/') return HTTP_MULTIPART_ERR_BOUNDARY;
    i = mp_token(ct, i + 1);
    if (!str_ieq_cstr(str_make(ct.ptr + t0, i - t0), "multipart/form-data")) {
        return HTTP_MULTIPART_ERR_BOUNDARY;
    }

    char b[HTTP_MULTIPART_BOUNDARY_MAX];
    int blen = -1;
    for (;;) {
        while (i < ct.len && mp_is_ows((unsigned char)ct.ptr[i])) i++;
        if (i == ct.len) break;
        if (ct.ptr[i] != ';') return HTTP_MULTIPART_ERR_BOUNDARY;
        i++;
        while (i < ct.len && mp_is_ows((unsigned char)ct.ptr[i])) i++;
        if (i == ct.len) break; /* a trailing ';' is harmless */
        size_t n0 = i;
        i = mp_token(ct, i);
        if (i == n0 || i >= ct.len || ct.ptr[i] != '=') return HTTP_MULTIPART_ERR_BOUNDARY;
        str_t pname = str_make(ct.ptr + n0, i - n0);
        i++;
        char tmp[HTTP_MULTIPART_BOUNDARY_MAX];
        bool is_boundary = str_ieq_cstr(pname, "boundary");
        /* Other parameters (charset) are only checked for syntax. */
        int vlen = mp_param_value(ct, &i, is_boundary ? tmp : NULL, sizeof(tmp));
        if (vlen < 0) return HTTP_MULTIPART_ERR_BOUNDARY;
        if (is_boundary) {
            if (blen >= 0) return HTTP_MULTIPART_ERR_BOUNDARY; /* repeated: ambiguous */
            memcpy(b, tmp, (size_t)vlen);
            blen = vlen;
        }
    }
    if (blen < 0 || !mp_boundary_valid(b, (size_t)blen) || cap < (size_t)blen + 1) {
        return HTTP_MULTIPART_ERR_BOUNDARY;
    }
    memcpy(out, b, (size_t)blen);
    out[blen] = '\0';
    return blen;
}

static int mp_fail(http_multipart_t *p, int err, const char *reason)
{
    p->error = err;
    p->error_reason = reason;
    p->state = MP_ERROR;
    return err;
}

int http_multipart_init(http_multipart_t *p, str_t boundary)
{
    memset(p, 0, offsetof(http_multipart_t, delim));
    if (boundary.ptr == NULL || !mp_boundary_valid(boundary.ptr, boundary.len)) {
        return mp_fail(p, HTTP_MULTIPART_ERR_BOUNDARY, "invalid boundary");
    }
    memcpy(p->delim, "\r\n--", 4);
    memcpy(p->delim + 4, boundary.ptr, boundary.len);
    p->delim_len = 4 + boundary.len;
    p->state = MP_PREAMBLE;
    /* The first delimiter may open the body without a CRLF: pretend one was just seen. */
    p->match = 2;
    return 0;
}

/* Scans for the delimiter, passing body bytes to on_part_data in MP_BODY (discarding them in
 * the preamble). Returns 1 when a whole delimiter was matched, 0 when the input ran out (a
 * partial match stays held back in p->match), or ERR_ABORTED; *used is what was consumed. */
static int mp_scan(http_multipart_t *p, const char *d, size_t n, size_t *used,
                   const http_multipart_callbacks_t *cb, void *ud)
{
    bool emit = p->state == MP_BODY && cb && cb->on_part_data;
    size_t i = 0;
    while (i < n) {
        if (p->match == 0) {
            const char *cr = memchr(d + i, '\r', n - i);
            size_t end = cr ? (size_t)(cr - d) : n;
            if (emit && end > i && cb->on_part_data(ud, d + i, end - i) != 0) {
                *used = end;
                return HTTP_MULTIPART_ERR_ABORTED;
            }
            i = end;
            if (!cr) break;
            p->match = 1;
            i++;
            continue;
        }
        if (d[i] == p->delim[p->match]) {
            i++;
            if (++p->match == p->delim_len) {
                p->match = 0;
                *used = i;
                return 1;
            }
            continue;
        }
        /* The held-back bytes were data after all. The boundary has no CR, so no suffix of them
         * can start a delimiter; only the current byte needs a fresh look (it may be a CR). */
        size_t held = p->match;
        p->match = 0;
        if (emit && cb->on_part_data(ud, p->delim, held) != 0) {
            *used = i;
            return HTTP_MULTIPART_ERR_ABORTED;
        }
    }
    *used = n;
    return 0;
}

/* Decodes the quoted-string at v[*pos] in place (written from v + *pos on); returns its
 * decoded length or -1 when unterminated. Characters were already checked by the caller.
 * A backslash escapes only '"' and '\\' (as Go's mime package does): browsers and undici send
 * other backslashes raw (WHATWG escapes only '"', CR and LF, as %22 %0D %0A), so a name like
 * a\b.png must keep its backslash for the sanitizer to see the separator. */
static int mp_unquote_inplace(char *v, size_t len, size_t *pos)
{
    size_t i = *pos + 1, w = *pos;
    for (;; i++) {
        if (i >= len) return -1;
        if (v[i] == '"') break;
        if (v[i] == '\\' && i + 1 < len && (v[i + 1] == '"' || v[i + 1] == '\\')) i++;
        v[w++] = v[i];
    }
    int n = (int)(w - *pos);
    *pos = i + 1;
    return n;
}

/* filename*=UTF-8'lang'pct-encoded (RFC 5987/8187), decoded in place from v[0]. */
static int mp_ext_value_inplace(char *v, size_t len)
{
    size_t q1 = 0;
    while (q1 < len && v[q1] != '\'') q1++;
    if (q1 == len || !str_ieq_cstr(str_make(v, q1), "UTF-8")) return -1;
    size_t q2 = q1 + 1;
    while (q2 < len && v[q2] != '\'') q2++;
    if (q2 == len) return -1;
    size_t w = 0;
    for (size_t i = q2 + 1; i < len; i++) {
        if (v[i] == '\'') return -1;
        if (v[i] == '%') {
            int hi = i + 2 < len ? mp_hex((unsigned char)v[i + 1]) : -1;
            int lo = i + 2 < len ? mp_hex((unsigned char)v[i + 2]) : -1;
            if (hi < 0 || lo < 0) return -1;
            v[w++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            v[w++] = v[i];
        }
    }
    return (int)w;
}

/* Parses a Content-Disposition value (mutable: values are decoded in place). */
static int mp_disposition(http_multipart_t *p, char *v, size_t len, str_t *name, str_t *filename)
{
    str_t s = str_make(v, len);
    size_t i = mp_token(s, 0);
    if (!str_ieq_cstr(str_make(v, i), "form-data")) {
        return mp_fail(p, HTTP_MULTIPART_ERR_DISPOSITION, "Content-Disposition is not form-data");
    }
    str_t fname = STR_NULL, fname_ext = STR_NULL;
    for (;;) {
        while (i < len && mp_is_ows((unsigned char)v[i])) i++;
        if (i == len) break;
        if (v[i] != ';') goto malformed;
        i++;
        while (i < len && mp_is_ows((unsigned char)v[i])) i++;
        if (i == len) break;
        size_t n0 = i;
        i = mp_token(s, i);
        if (i == n0 || i >= len || v[i] != '=') goto malformed;
        str_t pname = str_make(v + n0, i - n0);
        i++;
        bool quoted = i < len && v[i] == '"';
        size_t vstart = i;
        int vlen;
        if (quoted) {
            vlen = mp_unquote_inplace(v, len, &i);
        } else {
            i = mp_token(s, i);
            vlen = i > vstart ? (int)(i - vstart) : -1;
        }
        if (vlen < 0) goto malformed;
        str_t val = str_make(v + vstart, (size_t)vlen);
        if (str_ieq_cstr(pname, "name")) {
            if (name->ptr) goto repeated;
            *name = val;
        } else if (str_ieq_cstr(pname, "filename")) {
            if (fname.ptr) goto repeated;
            fname = val;
        } else if (str_ieq_cstr(pname, "filename*")) {
            if (fname_ext.ptr) goto repeated;
            if (quoted) goto malformed;
            int n = mp_ext_value_inplace(v + vstart, (size_t)vlen);
            if (n < 0) {
                return mp_fail(p, HTTP_MULTIPART_ERR_DISPOSITION,
                               "filename* is not UTF-8''<percent-encoded>");
            }
            fname_ext = str_make(v + vstart, (size_t)n);
        }
    }
    if (!name->ptr) {
        return mp_fail(p, HTTP_MULTIPART_ERR_DISPOSITION, "Content-Disposition without name");
    }
    *filename = fname_ext.ptr ? fname_ext : fname;
    return 0;
malformed:
    return mp_fail(p, HTTP_MULTIPART_ERR_DISPOSITION, "malformed Content-Disposition");
repeated:
    return mp_fail(p, HTTP_MULTIPART_ERR_DISPOSITION, "repeated Content-Disposition parameter");
}

/* The header block hbuf[0..hlen) is complete (ends with the blank line); parse and announce. */
static int mp_headers_done(http_multipart_t *p, const http_multipart_callbacks_t *cb, void *ud)
{
    str_t name = STR_NULL, filename = STR_NULL, ctype = STR_NULL;
    bool have_cd = false;
    size_t end = p->hlen - 2, pos = 0;
    while (pos < end) {
        char *line = p->hbuf + pos;
        size_t ll = (size_t)((char *)memchr(line, '\r', end - pos) - line); /* lines end CRLF */
        pos += ll + 2;
        str_t ls = str_make(line, ll);
        size_t colon = mp_token(ls, 0);
        if (colon == 0 || colon == ll || line[colon] != ':') {
            return mp_fail(p, HTTP_MULTIPART_ERR_HEADER,
                           ll && mp_is_ows((unsigned char)line[0]) ? "folded part header"
                                                                   : "malformed part header");
        }
        size_t v0 = colon + 1, v1 = ll;
        for (size_t k = v0; k < ll; k++) {
            unsigned char c = (unsigned char)line[k];
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                return mp_fail(p, HTTP_MULTIPART_ERR_HEADER, "control character in part header");
            }
        }
        while (v0 < v1 && mp_is_ows((unsigned char)line[v0])) v0++;
        while (v1 > v0 && mp_is_ows((unsigned char)line[v1 - 1])) v1--;
        str_t hname = str_make(line, colon);
        if (str_ieq_cstr(hname, "content-disposition")) {
            if (have_cd) {
                return mp_fail(p, HTTP_MULTIPART_ERR_DISPOSITION, "repeated Content-Disposition");
            }
            have_cd = true;
            int rc = mp_disposition(p, line + v0, v1 - v0, &name, &filename);
            if (rc < 0) return rc;
        } else if (str_ieq_cstr(hname, "content-type")) {
            if (ctype.ptr) {
                return mp_fail(p, HTTP_MULTIPART_ERR_HEADER, "repeated part Content-Type");
            }
            ctype = str_make(line + v0, v1 - v0);
        }
    }
    if (!have_cd) {
        return mp_fail(p, HTTP_MULTIPART_ERR_DISPOSITION, "part without Content-Disposition");
    }
    p->parts++;
    p->state = MP_BODY;
    if (cb && cb->on_part_begin && cb->on_part_begin(ud, name, filename, ctype) != 0) {
        return mp_fail(p, HTTP_MULTIPART_ERR_ABORTED, "stopped by callback");
    }
    return 0;
}

/* Buffers header bytes until the blank line; returns bytes used or an error. */
static int64_t mp_header_bytes(http_multipart_t *p, const char *d, size_t n,
                               const http_multipart_callbacks_t *cb, void *ud)
{
    for (size_t i = 0; i < n; i++) {
        if (p->hlen == HTTP_MULTIPART_HEADERS_MAX) {
            return mp_fail(p, HTTP_MULTIPART_ERR_HEADER_SIZE, "part headers over 8 KiB");
        }
        char c = d[i];
        bool after_cr = p->hlen > p->line_start && p->hbuf[p->hlen - 1] == '\r';
        p->hbuf[p->hlen++] = c;
        if (c != '\n') {
            if (after_cr) return mp_fail(p, HTTP_MULTIPART_ERR_HEADER, "bare CR in part headers");
            continue;
        }
        if (!after_cr) return mp_fail(p, HTTP_MULTIPART_ERR_HEADER, "bare LF in part headers");
        if (p->hlen - p->line_start == 2) {
            int rc = mp_headers_done(p, cb, ud);
            return rc < 0 ? rc : (int64_t)i + 1;
        }
        if (++p->nheaders > HTTP_MULTIPART_HEADER_COUNT_MAX) {
            return mp_fail(p, HTTP_MULTIPART_ERR_HEADER_SIZE, "over 16 part header fields");
        }
        p->line_start = p->hlen;
    }
    return (int64_t)n;
}

int64_t http_multipart_feed(http_multipart_t *p, const char *data, size_t len,
                            const http_multipart_callbacks_t *cb, void *ud)
{
    if (p->error) return p->error;
    size_t i = 0;
    while (i < len) {
        unsigned char c;
        switch (p->state) {
        case MP_PREAMBLE:
        case MP_BODY: {
            size_t used = 0;
            int rc = mp_scan(p, data + i, len - i, &used, cb, ud);
            i += used;
            if (rc < 0) return mp_fail(p, rc, "stopped by callback");
            if (rc == 1) {
                if (p->state == MP_BODY && cb && cb->on_part_end && cb->on_part_end(ud) != 0) {
                    return mp_fail(p, HTTP_MULTIPART_ERR_ABORTED, "stopped by callback");
                }
                p->state = MP_DELIM_TAIL;
            }
            break;
        }
        case MP_DELIM_TAIL:
        case MP_PADDING:
            c = (unsigned char)data[i++];
            if (c == '-' && p->state == MP_DELIM_TAIL) {
                p->state = MP_DELIM_DASH;
            } else if (mp_is_ows(c)) {
                p->state = MP_PADDING;
            } else if (c == '\r') {
                p->state = MP_DELIM_CR;
            } else {
                return mp_fail(p, HTTP_MULTIPART_ERR_SYNTAX, "malformed delimiter line");
            }
            break;
        case MP_DELIM_DASH:
            if (data[i++] != '-') {
                return mp_fail(p, HTTP_MULTIPART_ERR_SYNTAX, "malformed delimiter line");
            }
            if (p->parts == 0) {
                return mp_fail(p, HTTP_MULTIPART_ERR_SYNTAX, "multipart body without parts");
            }
            p->state = MP_CLOSE_TAIL;
            if (cb && cb->on_done && cb->on_done(ud) != 0) {
                return mp_fail(p, HTTP_MULTIPART_ERR_ABORTED, "stopped by callback");
            }
            break;
        case MP_DELIM_CR:
            if (data[i++] != '\n') {
                return mp_fail(p, HTTP_MULTIPART_ERR_SYNTAX, "delimiter line without CRLF");
            }
            p->state = MP_HEADERS;
            p->hlen = p->line_start = 0;
            p->nheaders = 0;
            break;
        case MP_HEADERS: {
            int64_t used = mp_header_bytes(p, data + i, len - i, cb, ud);
            if (used < 0) return used;
            i += (size_t)used;
            break;
        }
        case MP_CLOSE_TAIL:
            c = (unsigned char)data[i++];
            if (c == '\r') {
                p->state = MP_CLOSE_CR;
            } else if (!mp_is_ows(c)) {
                return mp_fail(p, HTTP_MULTIPART_ERR_SYNTAX, "data after close delimiter");
            }
            break;
        case MP_CLOSE_CR:
            if (data[i++] != '\n') {
                return mp_fail(p, HTTP_MULTIPART_ERR_SYNTAX, "data after close delimiter");
            }
            p->state = MP_EPILOGUE;
            break;
        default: /* MP_EPILOGUE */
            i = len;
            break;
        }
    }
    return (int64_t)len;
}

bool http_multipart_done(const http_multipart_t *p)
{
    return p->state == MP_CLOSE_TAIL || p->state == MP_CLOSE_CR || p->state == MP_EPILOGUE;
}

int http_multipart_finish(http_multipart_t *p)
{
    if (p->error) return p->error;
    if (http_multipart_done(p)) return 0;
    return mp_fail(p, HTTP_MULTIPART_ERR_TRUNCATED, "truncated body (no close delimiter)");
}

const char *http_multipart_error(const http_multipart_t *p)
{
    return p->error_reason ? p->error_reason : "";
}
