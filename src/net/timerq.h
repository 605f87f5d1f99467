/* Timer queues: every entry of a queue waits the same duration, so appending at the tail keeps
 * the queue sorted and add/remove are O(1) with one libuv timer per queue. An entry is three
 * words inside its owner (no per-timer handle, no allocation). */
#ifndef PARLOR_NET_TIMERQ_H
#define PARLOR_NET_TIMERQ_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct tq_entry {
    struct tq_entry *prev, *next; /* NULL when not queued */
    uint64_t deadline;            /* loop time in ms */
} tq_entry_t;

typedef struct timerq timerq_t;
/* Called on the loop thread for each expired entry, already removed from the queue. */
typedef void (*timerq_cb)(timerq_t *q, tq_entry_t *e);

struct timerq {
    uv_timer_t timer;
    tq_entry_t head; /* sentinel of a circular list */
    uint64_t duration_ms;
    timerq_cb cb;
    void *data;
};

void timerq_init(uv_loop_t *loop, timerq_t *q, uint64_t duration_ms, timerq_cb cb);
/* Stops and closes the timer handle; the queue must not be used afterwards. */
void timerq_close(timerq_t *q);
/* (Re)schedules e to expire duration_ms from now. */
void timerq_add(timerq_t *q, tq_entry_t *e);
/* Removes e if queued; safe on an entry that is not queued. */
void timerq_remove(tq_entry_t *e);
static inline bool timerq_active(const tq_entry_t *e)
{
    return e->next != NULL;
}

#endif
