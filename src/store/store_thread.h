/* The asynchronous layer behind store.h: one writer thread committing batches (group commit),
 * reader threads with their own connections, completions handed back to the libuv loop. */
#ifndef PARLOR_STORE_STORE_THREAD_H
#define PARLOR_STORE_STORE_THREAD_H

#include "store/store.h"

#define STORE_BATCH_DEFAULT   4096
#define STORE_READERS_DEFAULT 2
#define STORE_READERS_MAX     8
/* How long a lazy write waits for company before it is committed on its own. */
#define STORE_LAZY_MS 50

/* Test and maintenance hook, loop thread: while paused the writer starts no new batch, so
 * requests queue up and then commit together once resumed. Closing ignores the pause. */
void store_writer_pause(store_t *s, bool paused);

#endif
