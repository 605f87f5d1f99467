/* Growable and refcounted byte buffers. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf_t *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_free(buf_t *b)
{
    free(b->data);
    buf_init(b);
}

int buf_reserve(buf_t *b, size_t extra)
{
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra) {
        if (cap > SIZE_MAX / 2) return -1;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(buf_t *b, const void *p, size_t n)
{
    if (n == 0) return 0;
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int buf_append_str(buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n + 1) < 0) return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void buf_consume(buf_t *b, size_t n)
{
    if (n >= b->len) {
        buf_free(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

rbuf_t *rbuf_new(size_t len)
{
    if (len > UINT32_MAX) return NULL;
    rbuf_t *r = malloc(sizeof *r + len);
    if (!r) return NULL;
    r->refcount = 1;
    r->len = (uint32_t)len;
    return r;
}

rbuf_t *rbuf_from(const void *p, size_t len)
{
    rbuf_t *r = rbuf_new(len);
    if (r && len) memcpy(r->data, p, len);
    return r;
}

rbuf_t *rbuf_from_buf(buf_t *b)
{
    rbuf_t *r = rbuf_from(b->data, b->len);
    buf_free(b);
    return r;
}

void rbuf_unref(rbuf_t *r)
{
    if (r && --r->refcount == 0) free(r);
}
