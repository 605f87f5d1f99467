/* Range header resolution: one "bytes=" range against a size, everything else ignored. */
#include "http/http_range.h"

#include <stdbool.h>

static bool range_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Reads 1*DIGIT at s[*i], saturating at UINT64_MAX; returns false when there is no digit. */
static bool range_number(str_t s, size_t *i, uint64_t *out)
{
    size_t start = *i;
    uint64_t v = 0;
    for (; *i < s.len && s.ptr[*i] >= '0' && s.ptr[*i] <= '9'; (*i)++) {
        unsigned d = (unsigned)(s.ptr[*i] - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return *i > start;
}

int http_range_parse(str_t h, uint64_t size, uint64_t *start, uint64_t *end_inclusive)
{
    if (h.ptr == NULL || h.len < 6 || !str_ieq_cstr(str_make(h.ptr, 6), "bytes=")) {
        return HTTP_RANGE_IGNORE;
    }
    for (size_t k = 6; k < h.len; k++) {
        if (h.ptr[k] == ',') return HTTP_RANGE_IGNORE;
    }
    size_t i = 6, end = h.len;
    while (i < end && range_is_ows(h.ptr[i])) i++;
    while (end > i && range_is_ows(h.ptr[end - 1])) end--;
    str_t s = str_make(h.ptr, end);

    uint64_t first = 0, last = 0;
    bool has_first = range_number(s, &i, &first);
    if (i >= end || s.ptr[i] != '-') return HTTP_RANGE_IGNORE;
    i++;
    bool has_last = range_number(s, &i, &last);
    if (i != end || (!has_first && !has_last)) return HTTP_RANGE_IGNORE;

    if (!has_first) { /* suffix range */
        if (last == 0) return HTTP_RANGE_UNSATISFIABLE;
        if (size == 0) return HTTP_RANGE_IGNORE;
        *start = last >= size ? 0 : size - last;
        *end_inclusive = size - 1;
        return HTTP_RANGE_OK;
    }
    if (has_last && last < first) return HTTP_RANGE_IGNORE;
    if (first >= size) return HTTP_RANGE_UNSATISFIABLE;
    *start = first;
    *end_inclusive = has_last && last < size - 1 ? last : size - 1;
    return HTTP_RANGE_OK;
}
