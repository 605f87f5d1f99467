/* Code every store engine shares, so that each engine carries only what is its own: the
 * request arena, input validation, the clock, the conversation-list cursor codec and the
 * small encodings every schema uses (message types, the direct-conversation key).
 * store_strerror (store.h) is defined beside them. Engines include this; chat and api do not. */
#ifndef PARLOR_STORE_STORE_COMMON_H
#define PARLOR_STORE_STORE_COMMON_H

#include <stdint.h>
#include <string.h>

#include "store/store.h"

/* The store's clock: ms since the epoch (a request's now_ms 0 means this). */
int64_t store_clock_ms(void);

/* ---- Arena (see store_arena_t in store.h) ------------------------------------------------ */

/* Every operation resets the arena before it writes an output. */
static inline void store_arena_reset(store_arena_t *a)
{
    if (!a->ptr) a->cap = 0;
    a->front = 0;
    a->back = a->cap;
}

typedef struct {
    size_t front, back;
} store_arena_mark_t;

static inline store_arena_mark_t store_arena_mark(const store_arena_t *a)
{
    return (store_arena_mark_t){a->front, a->back};
}

/* Drops everything allocated since the mark (a list element that did not fit). */
static inline void store_arena_restore(store_arena_t *a, store_arena_mark_t m)
{
    a->front = m.front;
    a->back = m.back;
}

/* Front allocations are the elements of the one result array: successive pushes of the same
 * type are contiguous because sizeof is a multiple of the alignment. NULL when full. */
void *store_arena_push(store_arena_t *a, size_t size, size_t align);
/* Back allocations: strings and nested records. NULL when full. */
void *store_arena_back(store_arena_t *a, size_t size, size_t align);

#define ARENA_PUSH(a, T)    ((T *)store_arena_push((a), sizeof(T), _Alignof(T)))
#define ARENA_BACK(a, T, n) ((T *)store_arena_back((a), sizeof(T) * (n), _Alignof(T)))

/* Copies n bytes into the arena as a NUL-terminated string; STORE_E_NOSPACE when full. */
int store_arena_str(store_arena_t *a, const void *p, size_t n, str_t *out);
/* The same for a str_t; an absent input stays absent in the output. */
int store_arena_copy(store_arena_t *a, str_t s, str_t *out);

/* ---- Input validation (the bounds of store.h) -------------------------------------------- */

/* 1-STORE_USER_ID_MAX of [A-Za-z0-9_-] (docs/api.md). */
bool store_valid_user_id(str_t s);

static inline bool store_present(str_t s)
{
    return s.ptr && s.len > 0;
}

/* Optional text: absent, or at most max bytes. */
static inline bool store_valid_opt(str_t s, size_t max)
{
    return !store_present(s) || s.len <= max;
}

/* Required text: present and at most max bytes. */
static inline bool store_valid_req(str_t s, size_t max)
{
    return store_present(s) && s.len <= max;
}

/* A page's limit: 0 means STORE_PAGE_DEFAULT, larger than STORE_PAGE_MAX is clamped. */
static inline size_t store_page_limit(size_t limit)
{
    return limit == 0 ? STORE_PAGE_DEFAULT : limit > STORE_PAGE_MAX ? STORE_PAGE_MAX : limit;
}

/* ---- The conversation-list cursor -------------------------------------------------------- */

/* The cursor is the (updated_at, id) of the last conversation of the previous page: 16 hex
 * digits of the time, then the id (STORE_CURSOR_LEN). Opaque to clients; parsed strictly
 * (STORE_E_INVALID for anything store_cursor_format could not have written). *id points into c. */
int store_cursor_parse(str_t c, int64_t *updated_at, str_t *id);
void store_cursor_format(char out[STORE_CURSOR_LEN + 1], int64_t updated_at, const char *id);

/* ---- Shared encodings -------------------------------------------------------------------- */

/* A message type as stored: "text", "image", "file" (anything else reads as text). */
const char *store_msg_type_name(store_msg_type_t t);
store_msg_type_t store_msg_type_parse(const char *t);

/* The key of the one direct conversation of two users: "min|max" of their ids, bytewise (the
 * id charset has no '|'), so that there is exactly one per pair whoever writes first. Both
 * ids must be valid user ids; otherwise the key is "". */
#define STORE_DIRECT_KEY_SIZE (2 * STORE_USER_ID_MAX + 2)
void store_direct_key(str_t a, str_t b, char key[STORE_DIRECT_KEY_SIZE]);

/* The key of the direct conversation of a and b about ctx (NULL or absent parts: the plain
 * key above): "min|max|type|id". "" when an input is not valid. */
#define STORE_DIRECT_CTX_KEY_SIZE (STORE_DIRECT_KEY_SIZE + 2 * STORE_CONTEXT_PART_MAX + 2)
void store_direct_ctx_key(str_t a, str_t b, const store_context_t *ctx,
                          char key[STORE_DIRECT_CTX_KEY_SIZE]);

/* A context part: 1-64 of [A-Za-z0-9_.:-]. A context: absent altogether, or type and id
 * valid and the title (optional) at most STORE_CONTEXT_TITLE_MAX bytes without NUL. */
bool store_valid_context_part(str_t s);
bool store_valid_context(const store_context_t *c);

/* Reverses msgs[0..count) in place: a page read newest first (so that it ends at before_seq)
 * is handed out ascending. */
void store_messages_reverse(store_message_t *msgs, size_t count);

#endif
