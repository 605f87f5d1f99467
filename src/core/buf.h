/* Growable byte buffers with a hard cap, and refcounted immutable buffers that can be queued
 * on many connections at once (encode once, write to all). */
#ifndef PARLOR_CORE_BUF_H
#define PARLOR_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

/* A growable buffer. data is NULL while empty-and-released so idle owners hold no memory. */
typedef struct {
    char *data;
    size_t len, cap;
} buf_t;

void buf_init(buf_t *b);
void buf_free(buf_t *b);
/* Ensures room for `extra` more bytes; -1 on allocation failure. */
int buf_reserve(buf_t *b, size_t extra);
int buf_append(buf_t *b, const void *p, size_t n);
int buf_append_str(buf_t *b, const char *s);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes; releases the memory when the buffer becomes empty. */
void buf_consume(buf_t *b, size_t n);

/* Refcounted immutable bytes. Created with refcount 1; whoever holds a reference unrefs it. */
typedef struct rbuf {
    uint32_t refcount;
    uint32_t len;
    char data[];
} rbuf_t;

rbuf_t *rbuf_new(size_t len); /* data uninitialized; NULL on failure or len > 4 GiB */
rbuf_t *rbuf_from(const void *p, size_t len);
/* Moves a buf_t's bytes into a new rbuf_t (copying once) and resets the buf_t. */
rbuf_t *rbuf_from_buf(buf_t *b);
static inline rbuf_t *rbuf_ref(rbuf_t *r)
{
    r->refcount++;
    return r;
}
void rbuf_unref(rbuf_t *r);

#endif
