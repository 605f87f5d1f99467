/* Fixed-size object pools (slab.h). */
#include "core/slab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_PLAIN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_PLAIN 1
#endif
#endif

#define SLAB_BYTES ((size_t)64 * 1024) /* a slab is aligned to its size: obj -> slab by mask */

typedef struct free_obj {
    struct free_obj *next;
} free_obj_t;

struct slab {
    slab_t *prev, *next; /* in the pool's partial list */
    free_obj_t *free;    /* free objects carved so far */
    unsigned used;       /* objects handed out */
    unsigned carved;     /* objects ever carved from the slab's tail */
};

static size_t header_size(void)
{
    return (sizeof(slab_t) + 15) & ~(size_t)15;
}

void slab_pool_init(slab_pool_t *p, size_t size)
{
    memset(p, 0, sizeof *p);
    p->size = size < sizeof(free_obj_t) ? sizeof(free_obj_t) : (size + 7) & ~(size_t)7;
    p->per = (unsigned)((SLAB_BYTES - header_size()) / p->size);
}

#ifdef SLAB_PLAIN

void *slab_calloc(slab_pool_t *p)
{
    return calloc(1, p->size);
}

void slab_free(slab_pool_t *p, void *obj)
{
    (void)p;
    free(obj);
}

void slab_pool_trim(slab_pool_t *p)
{
    (void)p;
}

#else

static slab_t *slab_map(void)
{
    /* Twice the size, then the unaligned head and tail are given back. */
    uint8_t *m =
        mmap(NULL, 2 * SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    uintptr_t a = ((uintptr_t)m + SLAB_BYTES - 1) & ~(uintptr_t)(SLAB_BYTES - 1);
    size_t head = a - (uintptr_t)m, tail = SLAB_BYTES - head;
    if (head) munmap(m, head);
    if (tail) munmap((uint8_t *)a + SLAB_BYTES, tail);
    return (slab_t *)a; /* zero-filled by the kernel */
}

static void partial_remove(slab_pool_t *p, slab_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        p->partial = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static void partial_push(slab_pool_t *p, slab_t *s)
{
    s->prev = NULL;
    s->next = p->partial;
    if (p->partial) p->partial->prev = s;
    p->partial = s;
}

void *slab_calloc(slab_pool_t *p)
{
    slab_t *s = p->partial;
    if (!s) {
        s = p->empty;
        p->empty = NULL;
        if (!s) {
            s = slab_map();
            if (!s) return NULL;
            p->slabs++;
        }
        partial_push(p, s);
    }
    void *obj;
    if (s->free) {
        obj = s->free;
        s->free = s->free->next;
        memset(obj, 0, p->size);
    } else {
        /* Never used: still zero from the kernel. */
        obj = (uint8_t *)s + header_size() + (size_t)s->carved++ * p->size;
    }
    if (++s->used == p->per) partial_remove(p, s);
    return obj;
}

void slab_free(slab_pool_t *p, void *obj)
{
    if (!obj) return;
    slab_t *s = (slab_t *)((uintptr_t)obj & ~(uintptr_t)(SLAB_BYTES - 1));
    free_obj_t *f = obj;
    f->next = s->free;
    s->free = f;
    if (s->used-- == p->per) partial_push(p, s); /* was full */
    if (s->used == 0) {
        partial_remove(p, s);
        if (p->empty) {
            munmap(p->empty, SLAB_BYTES);
            p->slabs--;
        }
        /* Its pages are given back; it keeps its mapping (and reads as zeros again). */
        madvise(s, SLAB_BYTES, MADV_DONTNEED);
        s->free = NULL;
        s->carved = 0;
        p->empty = s;
    }
}

void slab_pool_trim(slab_pool_t *p)
{
    if (p->empty) {
        munmap(p->empty, SLAB_BYTES);
        p->empty = NULL;
        p->slabs--;
    }
}

#endif
