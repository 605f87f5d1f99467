/* Full-text search's definition (store_search.h), the same for every engine. */
#include "store/store_search.h"

#include <stdio.h>
#include <string.h>

static bool word_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        if (c >= 0xc2 && c <= 0xdf)
            k = 1;
        else if (c >= 0xe0 && c <= 0xef)
            k = 2;
        else if (c >= 0xf0 && c <= 0xf4)
            k = 3;
        else
            return false;
        if (i + k >= n) return false;
        for (size_t j = 1; j <= k; j++)
            if ((p[i + j] & 0xc0) != 0x80) return false;
        if ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] >= 0xa0) ||
            (c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] >= 0x90))
            return false;
        i += k + 1;
    }
    return true;
}

/* The next word of s at or after *at: [*start, *end). False when none is left. Runs that are
 * too long or not valid UTF-8 are skipped (they are not words). */
static bool next_word(str_t s, size_t *at, size_t *start, size_t *end)
{
    size_t i = *at;
    const unsigned char *p = (const unsigned char *)s.ptr;
    while (i < s.len) {
        while (i < s.len && !word_byte(p[i])) i++;
        size_t b = i;
        while (i < s.len && word_byte(p[i])) i++;
        if (i > b && i - b <= STORE_SEARCH_WORD_MAX && utf8_valid(p + b, i - b)) {
            *start = b;
            *end = i;
            *at = i;
            return true;
        }
    }
    *at = i;
    return false;
}

bool store_search_parse(str_t q, store_search_query_t *out)
{
    memset(out, 0, sizeof *out);
    if (!q.ptr || q.len == 0 || q.len > STORE_SEARCH_QUERY_MAX) return false;
    size_t i = 0;
    while (i < q.len) {
        while (i < q.len && (q.ptr[i] == ' ' || q.ptr[i] == '\t')) i++;
        if (i >= q.len) break;
        size_t b = i;
        while (i < q.len && q.ptr[i] != ' ' && q.ptr[i] != '\t') {
            if (!word_byte((unsigned char)q.ptr[i])) return false; /* an operator or garbage */
            i++;
        }
        size_t n = i - b;
        if (n > STORE_SEARCH_WORD_MAX || out->n == STORE_SEARCH_WORDS_MAX ||
            !utf8_valid((const unsigned char *)q.ptr + b, n))
            return false;
        for (size_t k = 0; k < n; k++) out->w[out->n][k] = lower(q.ptr[b + k]);
        out->len[out->n++] = n;
    }
    if (out->n == 0) return false;
    size_t chars = 0, last = out->n - 1;
    for (size_t k = 0; k < out->len[last]; k++)
        chars += ((unsigned char)out->w[last][k] & 0xc0) != 0x80; /* not a continuation byte */
    out->prefix = chars >= STORE_SEARCH_PREFIX_MIN;
    return true;
}

static bool word_is(const char *w, size_t wl, const char *p, size_t n, bool prefix)
{
    if (prefix ? n < wl : n != wl) return false;
    for (size_t k = 0; k < wl; k++)
        if (lower(p[k]) != w[k]) return false;
    return true;
}

/* Whether the content word [p, p+n) is a hit of some query word. */
static bool hit_word(const store_search_query_t *q, const char *p, size_t n)
{
    for (size_t i = 0; i < q->n; i++)
        if (word_is(q->w[i], q->len[i], p, n, q->prefix && i + 1 == q->n)) return true;
    return false;
}

bool store_search_match(const store_search_query_t *q, str_t content)
{
    bool found[STORE_SEARCH_WORDS_MAX] = {false};
    size_t left = q->n, at = 0, b, e;
    while (left && next_word(content, &at, &b, &e)) {
        for (size_t i = 0; i < q->n; i++) {
            if (!found[i] &&
                word_is(q->w[i], q->len[i], content.ptr + b, e - b, q->prefix && i + 1 == q->n)) {
                found[i] = true;
                left--;
            }
        }
    }
    return left == 0;
}

#define SNIPPET_BEFORE 40 /* bytes of context before the first hit, about */
#define SNIPPET_SPAN   160

static size_t utf8_back(const char *p, size_t i)
{
    while (i > 0 && ((unsigned char)p[i] & 0xc0) == 0x80) i--;
    return i;
}

static size_t escaped_len(const char *p, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        len += c == '&' ? 5 : c == '<' || c == '>' ? 4 : c == '"' || c == '\'' ? 6 : 1;
    }
    return len;
}

static char *escape_into(char *o, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        const char *r = c == '&'    ? "&amp;"
                        : c == '<'  ? "&lt;"
                        : c == '>'  ? "&gt;"
                        : c == '"'  ? "&quot;"
                        : c == '\'' ? "&#39;"
                                    : NULL;
        if (r) {
            size_t k = strlen(r);
            memcpy(o, r, k);
            o += k;
        } else {
            *o++ = c == '\0' ? ' ' : c; /* a NUL byte never reaches a client's string */
        }
    }
    return o;
}

int store_search_snippet(const store_search_query_t *q, str_t content, store_arena_t *a, str_t *out)
{
    /* The window: from a little before the first hit, SNIPPET_SPAN bytes, on UTF-8 edges. */
    size_t at = 0, b, e, first = content.len;
    while (next_word(content, &at, &b, &e))
        if (hit_word(q, content.ptr + b, e - b)) {
            first = b;
            break;
        }
    if (first == content.len) first = 0;
    size_t from = first > SNIPPET_BEFORE ? utf8_back(content.ptr, first - SNIPPET_BEFORE) : 0;
    size_t to = from + SNIPPET_SPAN < content.len ? utf8_back(content.ptr, from + SNIPPET_SPAN)
                                                  : content.len;
    if (to < first) to = content.len; /* a hit longer than the span */
    /* Two passes: the size, then the text. */
    static const char ell[] = "\xe2\x80\xa6", mo[] = "<mark>", mc[] = "</mark>";
    char *o = NULL, *start = NULL;
    for (int pass = 0; pass < 2; pass++) {
        size_t size = 0, i = from;
        if (from > 0) {
            if (pass) o = memcpy(o, ell, 3), o += 3;
            size += 3;
        }
        at = from;
        while (next_word(content, &at, &b, &e) && e <= to) {
            if (!hit_word(q, content.ptr + b, e - b)) continue;
            size +=
                escaped_len(content.ptr + i, b - i) + 6 + escaped_len(content.ptr + b, e - b) + 7;
            if (pass) {
                o = escape_into(o, content.ptr + i, b - i);
                memcpy(o, mo, 6), o += 6;
                o = escape_into(o, content.ptr + b, e - b);
                memcpy(o, mc, 7), o += 7;
            }
            i = e;
        }
        size += escaped_len(content.ptr + i, to - i);
        if (pass) o = escape_into(o, content.ptr + i, to - i);
        if (to < content.len) {
            if (pass) memcpy(o, ell, 3), o += 3;
            size += 3;
        }
        if (!pass) {
            start = store_arena_back(a, size + 1, 1);
            if (!start) return STORE_E_NOSPACE;
            o = start;
        } else {
            *o = '\0';
            *out = str_make(start, (size_t)(o - start));
        }
    }
    return STORE_OK;
}

void store_search_fts5(const store_search_query_t *q, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < q->n && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s\"%.*s\"%s", i ? " AND " : "", (int)q->len[i],
                              q->w[i], q->prefix && i + 1 == q->n ? "*" : "");
}

void store_search_tsquery(const store_search_query_t *q, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < q->n && n + 16 < cap; i++) {
        n += (size_t)snprintf(out + n, cap - n, "%s'", i ? " & " : "");
        for (size_t k = 0; k < q->len[i] && n + 12 < cap; k++) {
            unsigned char c = (unsigned char)q->w[i][k];
            /* parlor_search_vector spells bytes >= 0x80 as encode(.., 'escape') does, \ooo; a
             * backslash in a tsquery literal is itself escaped */
            if (c >= 0x80)
                n += (size_t)snprintf(out + n, cap - n, "\\\\%03o", c);
            else
                out[n++] = (char)c;
        }
        n += (size_t)snprintf(out + n, cap - n, "'%s", q->prefix && i + 1 == q->n ? ":*" : "");
    }
    out[n < cap ? n : cap - 1] = '\0';
}

int store_search_begin(store_search_t *op, store_arena_t *a, store_search_query_t *q, bool *by_conv,
                       size_t *limit)
{
    store_arena_reset(a);
    op->hits = NULL;
    op->count = 0;
    op->next_pos = 0;
    *by_conv = store_present(op->conversation_id);
    if (!store_valid_user_id(op->user) || !store_search_parse(op->query, q) ||
        (*by_conv && !id_valid(op->conversation_id)) || op->before_pos < 0)
        return STORE_E_INVALID;
    *limit = op->limit == 0                      ? 20
             : op->limit > STORE_SEARCH_PAGE_MAX ? STORE_SEARCH_PAGE_MAX
                                                 : op->limit;
    return STORE_OK;
}
