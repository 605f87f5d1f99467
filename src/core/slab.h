/* Fixed-size object pools for the structures that live as long as a connection (the net
 * connection, the Engine.IO session, the WebSocket state, the chat socket).
 *
 * Why: from malloc each of them cost a header and a rounding to 16 bytes (net_conn_t's 408
 * bytes took a 416-byte chunk), and they were interleaved in the heap with the handshake's
 * short-lived allocations (the HTTP connection, request contexts, frames), whose freed holes
 * stayed resident between them: about 86 bytes per idle connection in 32- to 80-byte free
 * chunks after 10,000 handshakes. A pool keeps objects of one size together in 64 KiB slabs
 * of their own, without headers; a slab that becomes empty is returned to the system (one
 * empty slab is kept per pool so that a connection coming and going does not map and unmap).
 *
 * Loop thread only (no locking). Objects are 8-byte aligned. Under AddressSanitizer the pools
 * are plain calloc/free, so that use-after-free and overflows stay visible. */
#ifndef PARLOR_CORE_SLAB_H
#define PARLOR_CORE_SLAB_H

#include <stddef.h>

typedef struct slab slab_t;

typedef struct {
    size_t size;     /* object size, rounded up to 8 */
    unsigned per;    /* objects per slab */
    slab_t *partial; /* slabs with at least one free object */
    slab_t *empty;   /* one fully free slab kept for reuse, or NULL */
    size_t slabs;    /* slabs mapped (for tests and stats) */
} slab_pool_t;

void slab_pool_init(slab_pool_t *p, size_t size);
/* A zeroed object, or NULL when out of memory. */
void *slab_calloc(slab_pool_t *p);
void slab_free(slab_pool_t *p, void *obj);
/* Unmaps the kept empty slab (the others are unmapped as they empty). */
void slab_pool_trim(slab_pool_t *p);

#endif
