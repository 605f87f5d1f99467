/* Connection state recovery: the messages a reconnecting session missed, replayed from the
 * store before its live stream resumes; and the newest position at start (recovery offsets).
 *
 * Why it is shaped like this (issue 11, finding 7): a replay used to be a chain of ordered
 * reads on the writer's queue, one per page, with no bound on their number or length, so 20
 * sockets replaying a long history held everyone's send_message behind them for 25 s. Now:
 * - a session is recovered only when few enough messages were committed since its offset
 *   (chat_recovery_admit, --recovery-max-messages), else it gets a fresh session and catches
 *   up over REST, as documented in docs/api.md;
 * - pages are read on the reader threads, beside the writer, one page (STORE_PAGE_MAX
 *   messages, a REPLAY_ARENA arena) at a time per replay, and at most
 *   --recovery-max-concurrent replays run at once; the others wait in a FIFO without an arena;
 * - nothing falls between the replay and the live stream, and nothing arrives twice or out of
 *   order: the socket is live from the start, but its receive_message deliveries are held in
 *   a bounded buffer while it replays. A page read submitted after a delivery's completion ran
 *   on the loop sees that message (its commit came first), so every message after the offset
 *   is in a page or in the buffer. When a page says there is nothing more, the buffered
 *   deliveries past the last replayed position are sent, in commit order, and the socket
 *   leaves the replay state in the same loop turn. If the buffer overflows it is emptied and
 *   the replay reads (at least) one more page, submitted after the overflow, which sees all
 *   that was dropped. */
#include <stdio.h>
#include <string.h>

#include "chat/chat_int.h"
#include "chat/chat_json.h"
#include "core/log.h"

#define REPLAY_ARENA (1 << 20)
/* A replay reads its next page only while its socket has less than this queued (unsent);
 * above it, it gives its slot and arena up and waits for the reader to catch up. */
#define REPLAY_QUEUE_HIGH (256 * 1024)
#define REPLAY_QUEUE_LOW  (64 * 1024)
#define REPLAY_CHECK_MS   20
/* Live deliveries held per replaying socket; past it they are dropped and re-read. */
#define REPLAY_HOLD_MAX       256
#define REPLAY_HOLD_MAX_BYTES (1 << 20)

/* One replay. MUST hold a reference to its socket until freed; a page request in flight
 * keeps the replay (and so the socket) alive until its done() runs, which it always does. */
struct chat_replay {
    store_req_t req;
    chat_sock_t *cs;  /* a reference */
    int64_t after;    /* the last position replayed (or skipped) */
    unsigned gen;     /* overflows of the hold buffer so far */
    unsigned req_gen; /* gen when the page in flight was submitted */
    /* RUNNING: holds a slot and an arena; FETCHING: waiting for the session's acked positions
     * from the cluster (in no list; the fetch's callback goes on, or finishes it). */
    enum { R_WAITING, R_RUNNING, R_PAUSED, R_FETCHING } state;
    bool in_flight;           /* a page request is in the store */
    chat_replay_t *wait_next; /* in the chat's FIFO of waiting, or list of paused replays */
    size_t nhold, hold_bytes;
    int64_t hold_pos[REPLAY_HOLD_MAX];
    rbuf_t *hold[REPLAY_HOLD_MAX];
    char user[STORE_USER_ID_MAX + 1];
    char *arena;
};

static void hold_clear(chat_replay_t *r)
{
    for (size_t i = 0; i < r->nhold; i++) rbuf_unref(r->hold[i]);
    r->nhold = 0;
    r->hold_bytes = 0;
}

static void replay_free(chat_replay_t *r)
{
    hold_clear(r);
    free(r->arena);
    cs_unref(r->cs);
    free(r);
}

bool chat_recovery_admit(chat_t *c, int64_t offset)
{
    if (!c->last_pos_known || c->opts.recovery_max_messages == 0) return false;
    return offset >= c->last_pos ||
           (uint64_t)(c->last_pos - offset) <= c->opts.recovery_max_messages;
}

bool chat_recovery_hold(chat_sock_t *cs, int64_t pos, const sio_built_t *b)
{
    chat_replay_t *r = cs->replay;
    /* After the replay, too: a reader may see a commit before the writer's completion of it
     * reaches the loop, so a message the replay sent can still arrive here as live. */
    if (!r) return pos <= cs->replayed_to;
    if (pos <= r->after) return true; /* already replayed */
    if (r->nhold == REPLAY_HOLD_MAX || r->hold_bytes + b->text->len > REPLAY_HOLD_MAX_BYTES ||
        b->natt) {
        /* Too much at once: forget them all; a page read submitted from now on sees them. */
        hold_clear(r);
        r->gen++;
        return true;
    }
    r->hold_pos[r->nhold] = pos;
    r->hold[r->nhold++] = rbuf_ref(b->text);
    r->hold_bytes += b->text->len;
    return true;
}

static void replay_submit(chat_replay_t *r);
static void replay_next_waiting(chat_t *c);
static void replay_pause(chat_replay_t *r);
static void on_replay_check(uv_timer_t *t);

/* The replay is over (or its socket is gone): the held deliveries past it go out, the socket
 * is live, its slot goes to the next waiting replay. */
static void replay_finish(chat_replay_t *r)
{
    chat_sock_t *cs = r->cs;
    chat_t *c = cs->chat;
    int64_t last = r->after; /* the last position the socket was given */
    if (cs->socket) {
        for (size_t i = 0; i < r->nhold; i++)
            if (r->hold_pos[i] > last) {
                sio_built_t b = {r->hold[i], NULL, 0};
                sio_socket_send_built(cs->socket, &b);
                last = r->hold_pos[i];
            }
    }
    if (cs->replay == r) {
        cs->replay = NULL;
        cs->replayed_to = last;
    }
    if (r->state == R_RUNNING) {
        c->replays_running--;
        replay_next_waiting(c);
    }
    replay_free(r);
}

/* A message replayed in its state now: never changed, receive_message; edited,
 * message_updated; deleted, message_deleted (the store moved a changed message to a new
 * position, so the replay meets it after what the client saw before it went away). A client
 * that never had an edited message takes message_updated as the message itself (docs/api.md). */
static void replay_emit(chat_sock_t *cs, const acked_t *own, const store_message_t *m)
{
    if (own && chat_acked_has(own, m->pos)) return; /* this socket has it from its ack */
    json_t *doc = m->deleted ? json_pack("{s:s, s:s, s:I}", "conversationId", m->conversation_id,
                                         "messageId", m->id, "seq", (json_int_t)m->seq)
                             : chat_message_json(m);
    const char *event = m->deleted         ? "message_deleted"
                        : m->edited_at > 0 ? "message_updated"
                                           : "receive_message";
    char offset[32];
    snprintf(offset, sizeof offset, "%lld", (long long)m->pos);
    json_t *arr = json_pack("[sOs]", event, doc, offset);
    size_t len;
    char *text = chat_dumps(arr, &len);
    if (text) sio_socket_emit(cs->socket, str_make(text, len), NULL, 0);
    free(text);
    json_decref(arr);
    json_decref(doc);
}

static void replay_done(store_req_t *req)
{
    chat_replay_t *r = (chat_replay_t *)((char *)req - offsetof(chat_replay_t, req));
    chat_sock_t *cs = r->cs;
    store_messages_since_t *ms = &req->u.messages_since;
    r->in_flight = false;
    if (!cs->socket) {
        replay_finish(r);
        return;
    }
    if (req->status != STORE_OK) {
        log_warn_throttled("recovery for %s failed: %s", CS_UID(cs), store_strerror(req->status));
        if (req->status == STORE_E_UNAVAILABLE) {
            /* Ending the replay would leave a gap that the client, told it was recovered,
             * never fills. Its transport is closed instead, with no Socket.IO DISCONNECT and
             * nothing past the gap: the client reconnects by itself and recovers from its last
             * offset once the database is back. (A store completion: not inside a callback of
             * this session.) */
            hold_clear(r);
            eio_session_close(sio_socket_eio(cs->socket), "recovery: the store is unavailable");
        }
        replay_finish(r);
        return;
    }
    char key[ACKED_KEY_SIZE];
    const acked_t *own = chat_acked_of(cs->chat, chat_acked_key(cs, key), false);
    bool own_pending = false;
    for (size_t i = 0; i < ms->count; i++) {
        const store_message_t *m = &ms->msgs[i];
        if (m->pos <= r->after) continue;
        /* Cluster catch-up of a live socket: a message of its user that it may have sent
         * itself, committed but not acknowledged yet (the reader saw the commit before the
         * writer's completion reached the loop): not given to it; the page is read again once
         * its sends are answered. */
        if (cs->chat->publish && cs->sending && !(own && chat_acked_has(own, m->pos)) &&
            str_eq_cstr(m->sender, CS_UID(cs))) {
            own_pending = true;
            break;
        }
        r->after = m->pos;
        replay_emit(cs, own, m);
    }
    /* Drop what the page already sent from the hold buffer (ascending on one node; in a
     * cluster deliveries of other nodes may come in any order, so every entry is looked at). */
    size_t k = 0;
    for (size_t i = 0; i < r->nhold; i++) {
        if (r->hold_pos[i] <= r->after) {
            r->hold_bytes -= r->hold[i]->len;
            rbuf_unref(r->hold[i]);
            continue;
        }
        r->hold[k] = r->hold[i];
        r->hold_pos[k++] = r->hold_pos[i];
    }
    r->nhold = k;
    bool held_past = cs->chat->publish && k > 0;
    /* Cluster: a held delivery past the replay may have been committed after the page was
     * read, and a message between the two may still be on its way (another node's): finishing
     * now would give the held one and then drop that one as a duplicate. Another page, read
     * from now on, has every held message (each was committed before it was delivered); the
     * replay ends when a page covers all that is held. */
    if (ms->has_more || r->req_gen != r->gen || held_past || own_pending) {
        if (own_pending ||
            eio_session_queued_bytes(sio_socket_eio(cs->socket)) > REPLAY_QUEUE_HIGH) {
            replay_pause(r);
            return;
        }
        replay_submit(r);
        return;
    }
    replay_finish(r);
}

static void replay_submit(chat_replay_t *r)
{
    memset(&r->req, 0, sizeof r->req);
    r->req.op = STORE_OP_MESSAGES_SINCE; /* a plain read: on a reader thread */
    r->req.done = replay_done;
    r->req.arena.ptr = r->arena;
    r->req.arena.cap = REPLAY_ARENA;
    r->req.u.messages_since.user = str_cstr(r->user);
    r->req.u.messages_since.after_pos = r->after;
    r->req.u.messages_since.limit = STORE_PAGE_MAX;
    r->req_gen = r->gen;
    r->in_flight = true;
    if (store_submit(r->cs->chat->store, &r->req) != 0) {
        r->in_flight = false;
        replay_finish(r);
    }
}

static void replay_run(chat_replay_t *r)
{
    chat_t *c = r->cs->chat;
    r->state = R_RUNNING;
    c->replays_running++;
    if (!r->cs->socket || !(r->arena = malloc(REPLAY_ARENA))) {
        replay_finish(r);
        return;
    }
    replay_submit(r);
}

static void replay_next_waiting(chat_t *c)
{
    while (c->replay_wait_head &&
           c->replays_running <
               (c->opts.recovery_max_concurrent ? c->opts.recovery_max_concurrent : 1)) {
        chat_replay_t *r = c->replay_wait_head;
        c->replay_wait_head = r->wait_next;
        if (!c->replay_wait_head) c->replay_wait_tail = NULL;
        r->wait_next = NULL;
        replay_run(r);
    }
}

static void wait_push(chat_t *c, chat_replay_t *r)
{
    r->state = R_WAITING;
    r->wait_next = NULL;
    if (c->replay_wait_tail)
        c->replay_wait_tail->wait_next = r;
    else
        c->replay_wait_head = r;
    c->replay_wait_tail = r;
}

/* Its socket has too much unsent: give the slot and the arena to another replay meanwhile. */
static void replay_pause(chat_replay_t *r)
{
    chat_t *c = r->cs->chat;
    free(r->arena);
    r->arena = NULL;
    r->state = R_PAUSED;
    c->replays_running--;
    r->wait_next = c->replay_paused;
    c->replay_paused = r;
    if (!uv_is_active((uv_handle_t *)&c->replay_timer))
        uv_timer_start(&c->replay_timer, on_replay_check, REPLAY_CHECK_MS, REPLAY_CHECK_MS);
    replay_next_waiting(c);
}

/* Paused replays whose reader caught up (or left) go back to the FIFO (or end). */
static void on_replay_check(uv_timer_t *t)
{
    chat_t *c = t->data;
    chat_replay_t **pp = &c->replay_paused;
    while (*pp) {
        chat_replay_t *r = *pp;
        sio_socket_t *s = r->cs->socket;
        if (s && eio_session_queued_bytes(sio_socket_eio(s)) > REPLAY_QUEUE_LOW) {
            pp = &r->wait_next;
            continue;
        }
        *pp = r->wait_next;
        if (s) {
            wait_push(c, r);
        } else {
            r->state = R_WAITING; /* holds no slot */
            replay_finish(r);
        }
    }
    if (!c->replay_paused) uv_timer_stop(&c->replay_timer);
    replay_next_waiting(c);
}

void chat_recovery_init(chat_t *c)
{
    uv_timer_init(c->loop, &c->replay_timer);
    c->replay_timer.data = c;
    uv_unref((uv_handle_t *)&c->replay_timer);
}

void chat_recovery_close(chat_t *c)
{
    uv_close((uv_handle_t *)&c->replay_timer, NULL);
}

static chat_replay_t *replay_new(chat_sock_t *cs, int64_t after)
{
    chat_replay_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->cs = cs_ref(cs);
    r->after = after;
    snprintf(r->user, sizeof r->user, "%s", CS_UID(cs));
    cs->replay = r;
    return r;
}

void chat_set_acked_hooks(chat_t *c, const chat_acked_hooks_t *h)
{
    if (h)
        c->acked_hooks = *h;
    else
        memset(&c->acked_hooks, 0, sizeof c->acked_hooks);
}

/* The session's acknowledged positions as the cluster has them (every node it sent from
 * pushed its own): merged into this node's, then the replay goes on. */
static void acked_fetched(void *arg, const int64_t *pos, size_t n)
{
    chat_replay_t *r = arg;
    chat_sock_t *cs = r->cs;
    chat_t *c = cs->chat;
    if (cs->replay != r || !cs->socket) { /* cancelled meanwhile */
        r->state = R_WAITING;
        replay_finish(r);
        return;
    }
    if (n) {
        char key[ACKED_KEY_SIZE];
        acked_t *a = chat_acked_of(c, chat_acked_key(cs, key), true);
        for (size_t i = 0; a && i < n; i++)
            if (!chat_acked_has(a, pos[i])) a->pos[a->n++ % ACKED_KEEP] = pos[i];
    }
    wait_push(c, r);
    replay_next_waiting(c);
}

void chat_recovery_start(chat_sock_t *cs, int64_t after)
{
    chat_t *c = cs->chat;
    chat_replay_t *r = replay_new(cs, after);
    chat_sock_go_live(cs); /* its message deliveries are held until the replay is over */
    if (!r) return;
    /* Cluster: the session may have sent messages from another node (which died, or which
     * the balancer no longer sends it to); their positions are not in this node's ring. One
     * read of them before the first page (a Redis round trip). Always, not only when this
     * node has no ring of the session: a ring left here earlier misses what it sent since. */
    if (c->acked_hooks.fetch) {
        char key[ACKED_KEY_SIZE];
        r->state = R_FETCHING;
        if (c->acked_hooks.fetch(c->acked_hooks.ud, chat_acked_key(cs, key), acked_fetched, r) == 0)
            return;
    }
    wait_push(c, r);
    replay_next_waiting(c);
}

/* ---- Cluster: receive_message in position order (docs/cluster.md, "The offset rule") ----
 *
 * With several nodes, messages of one user committed by different nodes reach a socket in
 * whatever order the bus brings them: pos 101 (node B) may come before pos 100 (node A). A
 * socket that got 101 and its offset "101", then reconnected, would recover "after 101" and
 * never see 100. So a socket is given offset P only once it has been given every message of
 * its user with a smaller position. cs->replayed_to is the last position given (for a new
 * socket: the newest position this node knew when it connected):
 *   pos <= replayed_to       a duplicate (or a message the socket has from a replay): dropped;
 *   pos == replayed_to + 1   nothing can be missing in between: sent;
 *   prev <= replayed_to      (prev > 0: the chain, the position of the user's previous message,
 *                            which the store gave the delivery) nothing of the user's lies
 *                            between: sent;
 *   pos >  replayed_to + 1   something in between may be missing or still on its way: the
 *                            socket replays MESSAGES_SINCE(replayed_to) from the store (a read
 *                            submitted now sees pos and everything below it, store guarantee
 *                            4), with this delivery held as during a recovery.
 * A message the socket sent itself (b NULL) is not sent to it, but moves replayed_to on when it
 * is the next position, and past a gap starts a catch-up too, which leaves it out (the acked
 * positions). */
void chat_recovery_ordered(chat_sock_t *cs, int64_t pos, int64_t prev, const sio_built_t *b)
{
    if (cs->replay) {
        if (b) chat_recovery_hold(cs, pos, b);
        return;
    }
    if (pos <= cs->replayed_to) return;
    /* The chain: prev is the position of the user's previous message (the store keeps it per
     * user under the insert lock, store_pg_schema.c migration 6). prev <= last means nothing
     * of the user's lies between last and pos: delivered without reading. 0: unknown. */
    if (pos == cs->replayed_to + 1 || (prev > 0 && prev <= cs->replayed_to)) {
        if (b) sio_socket_send_built(cs->socket, b);
        cs->replayed_to = pos;
        return;
    }
    /* Its own message past a gap catches up too (the replay skips it: acked), so that its
     * last position keeps up with what it sends: a later catch-up from far behind would
     * replay its own older messages, past the acked ring, to it. */
    chat_recovery_catch_up(cs);
    if (!b) return;
    if (cs->replay)
        chat_recovery_hold(cs, pos, b);
    else
        sio_socket_send_built(cs->socket, b); /* out of memory: late rather than never */
}

void chat_recovery_catch_up(chat_sock_t *cs)
{
    if (cs->replay || !cs->socket || !cs->live) return;
    chat_replay_t *r = replay_new(cs, cs->replayed_to);
    if (!r) return;
    wait_push(cs->chat, r);
    replay_next_waiting(cs->chat);
}

void chat_recovery_cancel(chat_sock_t *cs)
{
    chat_replay_t *r = cs->replay;
    if (!r) return;
    cs->replay = NULL;
    if (r->state == R_RUNNING || r->state == R_FETCHING) {
        hold_clear(r); /* its page (or fetch) in flight finishes it (done runs exactly once) */
        return;
    }
    chat_t *c = cs->chat;
    if (r->state == R_PAUSED) {
        for (chat_replay_t **pp = &c->replay_paused; *pp; pp = &(*pp)->wait_next)
            if (*pp == r) {
                *pp = r->wait_next;
                break;
            }
        if (!c->replay_paused) uv_timer_stop(&c->replay_timer);
    } else {
        for (chat_replay_t **pp = &c->replay_wait_head, *prev = NULL; *pp;
             prev = *pp, pp = &(*pp)->wait_next)
            if (*pp == r) {
                *pp = r->wait_next;
                if (c->replay_wait_tail == r) c->replay_wait_tail = prev;
                break;
            }
    }
    replay_free(r);
}

typedef struct {
    store_req_t req;
    chat_t *chat;
    char arena[4096];
} start_ctx_t;

static void start_done(store_req_t *req)
{
    start_ctx_t *x = (start_ctx_t *)req;
    if (req->status == STORE_OK) {
        if (req->u.messages_since.last_pos > x->chat->last_pos)
            x->chat->last_pos = req->u.messages_since.last_pos;
        x->chat->last_pos_known = true;
    }
    free(x);
}

void chat_start(chat_t *c)
{
    start_ctx_t *x = calloc(1, sizeof *x);
    if (!x) return;
    x->chat = c;
    x->req.op = STORE_OP_MESSAGES_SINCE;
    x->req.ordered = true;
    x->req.done = start_done;
    x->req.arena.ptr = x->arena;
    x->req.arena.cap = sizeof x->arena;
    x->req.u.messages_since.user = STR_LIT("_");
    x->req.u.messages_since.after_pos = INT64_MAX;
    x->req.u.messages_since.limit = 1;
    if (store_submit(c->store, &x->req) != 0) free(x);
}
