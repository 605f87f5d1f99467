/* Fixed-duration timer queues on one libuv timer each. */
#include "net/timerq.h"

#include <stddef.h>

static void on_timer(uv_timer_t *t);

static void timerq_arm(timerq_t *q)
{
    if (q->head.next == &q->head) {
        uv_timer_stop(&q->timer);
        return;
    }
    uint64_t now = uv_now(q->timer.loop);
    uint64_t due = q->head.next->deadline;
    uv_timer_start(&q->timer, on_timer, due > now ? due - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    timerq_t *q = (timerq_t *)t;
    uint64_t now = uv_now(t->loop);
    /* Callbacks may add or remove entries, so take one expired entry at a time. */
    while (q->head.next != &q->head && q->head.next->deadline <= now) {
        tq_entry_t *e = q->head.next;
        timerq_remove(e);
        q->cb(q, e);
    }
    timerq_arm(q);
}

void timerq_init(uv_loop_t *loop, timerq_t *q, uint64_t duration_ms, timerq_cb cb)
{
    uv_timer_init(loop, &q->timer);
    q->head.prev = q->head.next = &q->head;
    q->duration_ms = duration_ms;
    q->cb = cb;
    q->data = NULL;
}

void timerq_close(timerq_t *q)
{
    while (q->head.next != &q->head) timerq_remove(q->head.next);
    uv_timer_stop(&q->timer);
    uv_close((uv_handle_t *)&q->timer, NULL);
}

void timerq_add(timerq_t *q, tq_entry_t *e)
{
    bool was_empty = q->head.next == &q->head;
    timerq_remove(e);
    e->deadline = uv_now(q->timer.loop) + q->duration_ms;
    e->prev = q->head.prev;
    e->next = &q->head;
    q->head.prev->next = e;
    q->head.prev = e;
    if (was_empty || !uv_is_active((uv_handle_t *)&q->timer)) timerq_arm(q);
}

void timerq_remove(tq_entry_t *e)
{
    if (!e->next) return;
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = NULL;
}
