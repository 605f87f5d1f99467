/* Strict JSON scanner and string codecs: validation without building a tree, no allocation. */
#include "core/json_scan.h"

#include <stdint.h>
#include <string.h>

enum { ITER_BEFORE_FIRST = 0, ITER_AFTER_ELEM = 1, ITER_DONE = 2, ITER_ERROR = -1 };

static bool json_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t json_skip_ws(const char *p, size_t len, size_t i)
{
    while (i < len && json_is_ws(p[i])) i++;
    return i;
}

/* Bytes that stand for themselves inside a JSON string and need no escape when written: 0x20-0x7f
 * but '"' and '\\'. */
static bool json_is_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* The index of the first byte at or after p[i] that is not plain (len when none): eight bytes
 * at a time (this is most of what the send path reads and writes; docs/performance.md). */
static size_t json_plain_run(const char *p, size_t len, size_t i)
{
    while (len - i >= 8) {
        uint64_t x, q, b;
        memcpy(&x, p + i, 8);
        q = x ^ (ONES * '"');
        b = x ^ (ONES * '\\');
        /* a byte >= 0x80, < 0x20, == '"' or == '\\' (the has-less/has-zero tests are exact
         * about whether one exists) */
        uint64_t m = (x | ((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS;
        if (m) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            /* The lowest flagged byte is a real one (a false flag needs a borrow from a real
             * one below it): the first byte in memory on a little-endian machine. */
            return i + (size_t)__builtin_ctzll(m) / 8;
#else
            break;
#endif
        }
        i += 8;
    }
    while (i < len && json_is_plain((unsigned char)p[i])) i++;
    return i;
}

static bool json_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int json_hex_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes one UTF-8 sequence at p[0..n), n >= 1. Returns its length (1..4) with *cp set, or minus
 * the length of the maximal ill-formed subpart (Unicode 3.9, as WHATWG decoders replace it with
 * one U+FFFD). Overlongs, surrogates and code points above U+10FFFF are ill-formed. */
static int json_utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    int need;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
        v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        v = c & 0x0f;
        if (c == 0xe0) lo = 0xa0; /* overlong */
        if (c == 0xed) hi = 0x9f; /* UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        v = c & 0x07;
        if (c == 0xf0) lo = 0x90; /* overlong */
        if (c == 0xf4) hi = 0x8f; /* above U+10FFFF */
    } else {
        return -1;
    }
    for (int k = 1; k <= need; k++) {
        if ((size_t)k >= n || p[k] < lo || p[k] > hi) return -k;
        v = (v << 6) | (p[k] & 0x3f);
        lo = 0x80;
        hi = 0xbf;
    }
    *cp = v;
    return need + 1;
}

/* p[0] == '"'. Returns the length of the string token, quotes included, or -1. */
static int64_t json_scan_string(const char *p, size_t len)
{
    size_t i = 1;

    while (i < len) {
        i = json_plain_run(p, len, i);
        if (i >= len) break;
        unsigned char c = (unsigned char)p[i];
        if (c == '"') return (int64_t)(i + 1);
        if (c == '\\') {
            if (i + 1 >= len) return -1;
            switch (p[i + 1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                i += 2;
                break;
            case 'u':
                if (len - i < 6) return -1;
                for (size_t k = 2; k < 6; k++)
                    if (json_hex_val(p[i + k]) < 0) return -1;
                i += 6;
                break;
            default:
                return -1;
            }
        } else if (c < 0x20) {
            return -1;
        } else if (c < 0x80) {
            i++;
        } else {
            uint32_t cp;
            int n = json_utf8_next((const unsigned char *)p + i, len - i, &cp);
            if (n < 0) return -1;
            i += (size_t)n;
        }
    }
    return -1;
}

/* Returns the length of the number token at p, or -1. */
static int64_t json_scan_number(const char *p, size_t len)
{
    size_t i = 0, start;

    if (i < len && p[i] == '-') i++;
    if (i >= len) return -1;
    if (p[i] == '0') {
        i++;
        /* "01" is not a number followed by another: JSON.parse rejects leading zeros outright. */
        if (i < len && json_is_digit(p[i])) return -1;
    } else if (p[i] >= '1' && p[i] <= '9') {
        while (i < len && json_is_digit(p[i])) i++;
    } else {
        return -1;
    }
    if (i < len && p[i] == '.') {
        start = ++i;
        while (i < len && json_is_digit(p[i])) i++;
        if (i == start) return -1;
    }
    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < len && (p[i] == '+' || p[i] == '-')) i++;
        start = i;
        while (i < len && json_is_digit(p[i])) i++;
        if (i == start) return -1;
    }
    return (int64_t)i;
}

static int64_t json_scan_literal(const char *p, size_t len)
{
    static const char *const lits[] = {"true", "false", "null"};

    for (size_t k = 0; k < sizeof(lits) / sizeof(lits[0]); k++) {
        size_t n = strlen(lits[k]);
        if (len >= n && memcmp(p, lits[k], n) == 0) return (int64_t)n;
    }
    return -1;
}

/* At p[i] an object key is expected: scans the key, ':' and the whitespace after it. Returns the
 * index of the member's value, or -1. */
static int64_t json_scan_key(const char *p, size_t len, size_t i)
{
    if (i >= len || p[i] != '"') return -1;
    int64_t n = json_scan_string(p + i, len - i);
    if (n < 0) return -1;
    i = json_skip_ws(p, len, i + (size_t)n);
    if (i >= len || p[i] != ':') return -1;
    return (int64_t)json_skip_ws(p, len, i + 1);
}

int64_t json_scan_value(const char *p, size_t len)
{
    /* Iterative, so stack use does not depend on the input: bit d of kinds tells whether the
     * container at depth d is an object. */
    uint64_t kinds = 0;
    int depth = 0;
    size_t i = json_skip_ws(p, len, 0);
    int64_t n;

    for (;;) {
        /* A value starts at p[i]. */
        if (i >= len) return -1;
        char c = p[i];
        if (c == '{' || c == '[') {
            bool obj = c == '{';
            if (depth == JSON_SCAN_MAX_DEPTH) return -1;
            if (obj)
                kinds |= UINT64_C(1) << depth;
            else
                kinds &= ~(UINT64_C(1) << depth);
            depth++;
            i = json_skip_ws(p, len, i + 1);
            if (i < len && p[i] == (obj ? '}' : ']')) {
                depth--;
                i++;
            } else {
                if (obj) {
                    n = json_scan_key(p, len, i);
                    if (n < 0) return -1;
                    i = (size_t)n;
                }
                continue;
            }
        } else {
            if (c == '"')
                n = json_scan_string(p + i, len - i);
            else if (c == '-' || json_is_digit(c))
                n = json_scan_number(p + i, len - i);
            else
                n = json_scan_literal(p + i, len - i);
            if (n < 0) return -1;
            i += (size_t)n;
        }

        /* After a value: close finished containers until one wants another value. */
        for (;;) {
            if (depth == 0) return (int64_t)i;
            bool obj = (kinds >> (depth - 1)) & 1;
            i = json_skip_ws(p, len, i);
            if (i >= len) return -1;
            if (p[i] == (obj ? '}' : ']')) {
                depth--;
                i++;
                continue;
            }
            if (p[i] != ',') return -1;
            i = json_skip_ws(p, len, i + 1);
            if (obj) {
                n = json_scan_key(p, len, i);
                if (n < 0) return -1;
                i = (size_t)n;
            }
            break;
        }
    }
}

bool json_valid(const char *p, size_t len)
{
    int64_t n = json_scan_value(p, len);
    if (n < 0) return false;
    return json_skip_ws(p, len, (size_t)n) == len;
}

static int json_iter_init(json_array_iter_t *it, str_t text, char open)
{
    it->p = text.ptr;
    it->len = text.len;
    it->pos = json_skip_ws(text.ptr, text.len, 0);
    if (it->pos >= it->len || it->p[it->pos] != open) {
        it->state = ITER_ERROR;
        return -1;
    }
    it->pos++;
    it->state = ITER_BEFORE_FIRST;
    return 0;
}

/* Moves past the separator before the next member. Returns 1 with it->pos at the member, 0 at the
 * end of the container, -1 when malformed. */
static int json_iter_advance(json_array_iter_t *it, char close)
{
    if (it->state == ITER_DONE) return 0;
    if (it->state == ITER_ERROR) return -1;
    size_t i = json_skip_ws(it->p, it->len, it->pos);
    if (i >= it->len) goto bad;
    if (it->p[i] == close) {
        it->pos = i + 1;
        it->state = ITER_DONE;
        return 0;
    }
    if (it->state == ITER_AFTER_ELEM) {
        if (it->p[i] != ',') goto bad;
        i = json_skip_ws(it->p, it->len, i + 1);
    }
    it->pos = i;
    return 1;
bad:
    it->state = ITER_ERROR;
    return -1;
}

/* Scans the value at it->pos into *val and moves past it. */
static int json_iter_take_value(json_array_iter_t *it, str_t *val)
{
    int64_t n = json_scan_value(it->p + it->pos, it->len - it->pos);
    if (n < 0) {
        it->state = ITER_ERROR;
        return -1;
    }
    *val = str_make(it->p + it->pos, (size_t)n);
    it->pos += (size_t)n;
    it->state = ITER_AFTER_ELEM;
    return 1;
}

int json_array_iter_init(json_array_iter_t *it, str_t text)
{
    return json_iter_init(it, text, '[');
}

int json_array_next(json_array_iter_t *it, str_t *elem)
{
    int r = json_iter_advance(it, ']');
    if (r <= 0) return r;
    /* "[,1]" and "[1,]" reach here with a ',' or ']' where a value must be: the scan rejects it. */
    return json_iter_take_value(it, elem);
}

int json_object_iter_init(json_object_iter_t *it, str_t text)
{
    return json_iter_init(it, text, '{');
}

int json_object_next(json_object_iter_t *it, str_t *key, str_t *val)
{
    int r = json_object_key(it, key);
    if (r <= 0) return r;
    return json_iter_take_value(it, val);
}

static int64_t json_decode_token(const char *p, size_t len, char *out, size_t cap,
                                 size_t *consumed);

int json_object_value(json_object_iter_t *it, str_t *val)
{
    if (it->state == ITER_ERROR) return -1;
    return json_iter_take_value(it, val);
}

int64_t json_object_value_string(json_object_iter_t *it, str_t *val, char *out, size_t cap)
{
    size_t used = 0;
    int64_t n = it->state == ITER_ERROR || it->pos >= it->len || it->p[it->pos] != '"'
                    ? -1
                    : json_decode_token(it->p + it->pos, it->len - it->pos, out, cap, &used);
    if (n < 0) {
        it->state = ITER_ERROR;
        return -1;
    }
    *val = str_make(it->p + it->pos, used);
    it->pos += used;
    it->state = ITER_AFTER_ELEM;
    return n;
}

int json_object_key(json_object_iter_t *it, str_t *key)
{
    int r = json_iter_advance(it, '}');
    if (r <= 0) return r;
    size_t start = it->pos;
    if (start >= it->len || it->p[start] != '"') goto bad;
    int64_t klen = json_scan_string(it->p + start, it->len - start);
    if (klen < 0) goto bad;
    /* the ':' and the whitespace around it (the key is not scanned a second time) */
    size_t vpos = json_skip_ws(it->p, it->len, start + (size_t)klen);
    if (vpos >= it->len || it->p[vpos] != ':') goto bad;
    vpos = json_skip_ws(it->p, it->len, vpos + 1);
    *key = str_make(it->p + start, (size_t)klen);
    it->pos = vpos;
    return 1;
bad:
    it->state = ITER_ERROR;
    return -1;
}

static size_t json_utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Reads the 4 hex digits at p (already known to be there). Returns -1 when one is not hex. */
static int32_t json_hex4(const char *p)
{
    int32_t v = 0;
    for (int k = 0; k < 4; k++) {
        int d = json_hex_val(p[k]);
        if (d < 0) return -1;
        v = (v << 4) | d;
    }
    return v;
}

int64_t json_string_decode(const char *p, size_t len, char *out, size_t cap)
{
    size_t used = 0;
    int64_t n = json_decode_token(p, len, out, cap, &used);
    return n >= 0 && used == len ? n : -1;
}

/* Decodes the string token at the start of p[0..len) (more may follow it): the decoded length
 * with *consumed the token's, or -1. */
static int64_t json_decode_token(const char *p, size_t len, char *out, size_t cap, size_t *consumed)
{
    size_t i = 1, o = 0;
    char tmp[4];

    if (len < 2 || p[0] != '"') return -1;
    /* The write position always trails the read position, so out == p works: every unit is read
     * completely before its (never longer) output is written. */
    while (i < len) {
        unsigned char c = (unsigned char)p[i];
        size_t n;
        if (json_is_plain(c)) {
            /* a run of plain ASCII, copied at once (the common case: one copy, not one per
             * byte) */
            size_t j = json_plain_run(p, len, i + 1);
            if (cap - o < j - i) return -1;
            memmove(out + o, p + i, j - i);
            o += j - i;
            i = j;
            continue;
        }
        if (c == '"') {
            *consumed = i + 1;
            return (int64_t)o;
        }
        if (c == '\\') {
            if (i + 1 >= len) return -1;
            char e = p[i + 1];
            switch (e) {
            case '"':
            case '\\':
            case '/':
                tmp[0] = e;
                n = 1;
                break;
            case 'b':
                tmp[0] = '\b';
                n = 1;
                break;
            case 'f':
                tmp[0] = '\f';
                n = 1;
                break;
            case 'n':
                tmp[0] = '\n';
                n = 1;
                break;
            case 'r':
                tmp[0] = '\r';
                n = 1;
                break;
            case 't':
                tmp[0] = '\t';
                n = 1;
                break;
            case 'u': {
                if (len - i < 6) return -1;
                int32_t u = json_hex4(p + i + 2);
                if (u < 0) return -1;
                uint32_t cp = (uint32_t)u;
                if (u >= 0xd800 && u <= 0xdbff && len - i >= 12 && p[i + 6] == '\\' &&
                    p[i + 7] == 'u') {
                    int32_t lo = json_hex4(p + i + 8);
                    if (lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + (((uint32_t)u - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
                        i += 6;
                    }
                }
                if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd; /* lone surrogate */
                n = json_utf8_put(cp, tmp);
                i += 4; /* plus the 2 below */
                break;
            }
            default:
                return -1;
            }
            i += 2;
            if (cap - o < n) return -1;
            memcpy(out + o, tmp, n);
            o += n;
        } else if (c < 0x20) {
            return -1;
        } else {
            uint32_t cp;
            int r = c < 0x80 ? 1 : json_utf8_next((const unsigned char *)p + i, len - i, &cp);
            if (r < 0) return -1;
            n = (size_t)r;
            if (cap - o < n) return -1;
            memmove(out + o, p + i, n);
            o += n;
            i += n;
        }
    }
    return -1;
}

/* Emits the literal into out, or only counts it when out is NULL. */
static size_t json_string_emit(const char *s, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0, o = 0;

#define EMIT(ch)                                                                                   \
    do {                                                                                           \
        if (out) out[o] = (ch);                                                                    \
        o++;                                                                                       \
    } while (0)

    EMIT('"');
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (json_is_plain(c)) {
            /* a run that needs no escape, copied at once */
            size_t j = json_plain_run(s, n, i + 1);
            if (out) memcpy(out + o, s + i, j - i);
            o += j - i;
            i = j;
            continue;
        }
        if (c >= 0x80) {
            uint32_t cp;
            int r = json_utf8_next((const unsigned char *)s + i, n - i, &cp);
            if (r > 0) {
                for (int k = 0; k < r; k++) EMIT(s[i + k]);
                i += (size_t)r;
            } else {
                EMIT('\xef');
                EMIT('\xbf');
                EMIT('\xbd');
                i += (size_t)-r;
            }
            continue;
        }
        i++;
        char esc = 0;
        switch (c) {
        case '"':
            esc = '"';
            break;
        case '\\':
            esc = '\\';
            break;
        case '\b':
            esc = 'b';
            break;
        case '\f':
            esc = 'f';
            break;
        case '\n':
            esc = 'n';
            break;
        case '\r':
            esc = 'r';
            break;
        case '\t':
            esc = 't';
            break;
        default:
            break;
        }
        if (esc) {
            EMIT('\\');
            EMIT(esc);
        } else if (c < 0x20) {
            EMIT('\\');
            EMIT('u');
            EMIT('0');
            EMIT('0');
            EMIT(hex[c >> 4]);
            EMIT(hex[c & 0xf]);
        } else {
            EMIT((char)c);
        }
    }
    EMIT('"');
#undef EMIT
    return o;
}

size_t json_string_encoded_len(const char *s, size_t n)
{
    return json_string_emit(s, n, NULL);
}

int64_t json_string_encode(const char *s, size_t n, char *out, size_t cap)
{
    /* Room for the worst case (every byte a \u00XX escape): write at once, without counting
     * first. */
    if (n <= (SIZE_MAX - 2) / 6 && cap >= 6 * n + 2) return (int64_t)json_string_emit(s, n, out);
    size_t need = json_string_emit(s, n, NULL);
    if (need > cap) return -1;
    return (int64_t)json_string_emit(s, n, out);
}

bool json_has_lone_surrogate(const char *p, size_t len)
{
    /* Outside strings there are no backslashes, and inside them a backslash always starts an
     * escape, so every backslash of valid JSON starts one: walk from escape to escape. */
    const char *end = p + len, *q = p;
    while ((q = memchr(q, '\\', (size_t)(end - q))) != NULL) {
        if (end - q < 2) return false;
        if (q[1] != 'u') {
            q += 2;
            continue;
        }
        int32_t u = end - q >= 6 ? json_hex4(q + 2) : -1;
        if (u < 0) return false; /* not valid JSON: not this function's question */
        q += 6;
        if (u < 0xd800 || u > 0xdfff) continue;
        if (u >= 0xdc00) return true; /* a low half with no high half before it */
        if (end - q < 6 || q[0] != '\\' || q[1] != 'u') return true;
        int32_t lo = json_hex4(q + 2);
        if (lo < 0xdc00 || lo > 0xdfff) return true;
        q += 6;
    }
    return false;
}
