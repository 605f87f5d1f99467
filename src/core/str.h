/* (ptr,len) strings: protocol data is never assumed NUL-terminated. */
#ifndef PARLOR_CORE_STR_H
#define PARLOR_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *ptr;
    size_t len;
} str_t;

#define STR_LIT(s) ((str_t){(s), sizeof(s) - 1})
#define STR_NULL   ((str_t){NULL, 0})

static inline str_t str_make(const char *p, size_t n)
{
    return (str_t){p, n};
}

static inline str_t str_cstr(const char *s)
{
    return (str_t){s, s ? strlen(s) : 0};
}

static inline bool str_eq(str_t a, str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool str_eq_cstr(str_t a, const char *b)
{
    return str_eq(a, str_cstr(b));
}

/* ASCII case-insensitive comparison (header names, tokens). */
static inline bool str_ieq(str_t a, str_t b)
{
    return a.len == b.len && (a.len == 0 || strncasecmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool str_ieq_cstr(str_t a, const char *b)
{
    return str_ieq(a, str_cstr(b));
}

static inline bool str_starts_with(str_t a, str_t prefix)
{
    return a.len >= prefix.len && memcmp(a.ptr, prefix.ptr, prefix.len) == 0;
}

bool str_is_empty(str_t s);

#endif
