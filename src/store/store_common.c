/* Code every store engine shares: errors, clock, arena, validation, cursor, encodings. */
#include "store/store_common.h"

#include <stdio.h>
#include <time.h>

#include "core/id.h"

const char *store_strerror(int code)
{
    switch (code) {
    case STORE_OK:
        return "ok";
    case STORE_E_INVALID:
        return "invalid input";
    case STORE_E_NOT_FOUND:
        return "not found";
    case STORE_E_FORBIDDEN:
        return "forbidden";
    case STORE_E_CONFLICT:
        return "conflict";
    case STORE_E_NOSPACE:
        return "result does not fit the request's arena";
    case STORE_E_BUSY:
        return "database busy";
    case STORE_E_IO:
        return "database error";
    case STORE_E_QUOTA:
        return "storage quota exceeded";
    case STORE_E_CANCELLED:
        return "store closing";
    case STORE_E_UNAVAILABLE:
        return "database unavailable";
    case STORE_E_BLOCKED:
        return "blocked";
    case STORE_E_LIMIT:
        return "limit reached";
    default:
        return "unknown store error";
    }
}

int64_t store_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Arena ----------------------------------------------------------------------------- */

void *store_arena_push(store_arena_t *a, size_t size, size_t align)
{
    uintptr_t base = (uintptr_t)a->ptr;
    uintptr_t start = (base + a->front + align - 1) & ~(uintptr_t)(align - 1);
    size_t off = start - base;
    if (!a->ptr || off > a->back || a->back - off < size) return NULL;
    a->front = off + size;
    return a->ptr + off;
}

void *store_arena_back(store_arena_t *a, size_t size, size_t align)
{
    uintptr_t base = (uintptr_t)a->ptr;
    if (!a->ptr || a->back - a->front < size) return NULL;
    uintptr_t start = (base + a->back - size) & ~(uintptr_t)(align - 1);
    if (start < base + a->front) return NULL;
    a->back = start - base;
    return a->ptr + a->back;
}

int store_arena_str(store_arena_t *a, const void *p, size_t n, str_t *out)
{
    char *d = store_arena_back(a, n + 1, 1);
    if (!d) return STORE_E_NOSPACE;
    if (n) memcpy(d, p, n);
    d[n] = '\0';
    *out = str_make(d, n);
    return STORE_OK;
}

int store_arena_copy(store_arena_t *a, str_t s, str_t *out)
{
    if (!s.ptr) {
        *out = STR_NULL;
        return STORE_OK;
    }
    return store_arena_str(a, s.ptr, s.len, out);
}

/* ---- Input validation ------------------------------------------------------------------ */

bool store_valid_user_id(str_t s)
{
    if (!s.ptr || s.len == 0 || s.len > STORE_USER_ID_MAX) return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* ---- Cursor ---------------------------------------------------------------------------- */

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int store_cursor_parse(str_t c, int64_t *updated_at, str_t *id)
{
    uint64_t t = 0;
    if (c.len != STORE_CURSOR_LEN) return STORE_E_INVALID;
    for (int i = 0; i < 16; i++) {
        int v = hex_val(c.ptr[i]);
        if (v < 0) return STORE_E_INVALID;
        t = t << 4 | (uint64_t)v;
    }
    if (t > INT64_MAX || !id_valid(str_make(c.ptr + 16, ID_LEN))) return STORE_E_INVALID;
    *updated_at = (int64_t)t;
    *id = str_make(c.ptr + 16, ID_LEN);
    return STORE_OK;
}

void store_cursor_format(char out[STORE_CURSOR_LEN + 1], int64_t updated_at, const char *id)
{
    snprintf(out, STORE_CURSOR_LEN + 1, "%016llx%s", (unsigned long long)updated_at, id);
}

/* ---- Encodings ------------------------------------------------------------------------- */

const char *store_msg_type_name(store_msg_type_t t)
{
    return t == STORE_MSG_IMAGE ? "image" : t == STORE_MSG_FILE ? "file" : "text";
}

store_msg_type_t store_msg_type_parse(const char *t)
{
    if (t && strcmp(t, "image") == 0) return STORE_MSG_IMAGE;
    if (t && strcmp(t, "file") == 0) return STORE_MSG_FILE;
    return STORE_MSG_TEXT;
}

void store_direct_key(str_t a, str_t b, char key[STORE_DIRECT_KEY_SIZE])
{
    size_t n = a.len < b.len ? a.len : b.len;
    int cmp = memcmp(a.ptr, b.ptr, n);
    if (cmp > 0 || (cmp == 0 && a.len > b.len)) {
        str_t t = a;
        a = b;
        b = t;
    }
    if (a.len > STORE_USER_ID_MAX || b.len > STORE_USER_ID_MAX) { /* callers validated them */
        key[0] = '\0';
        return;
    }
    memcpy(key, a.ptr, a.len);
    key[a.len] = '|';
    memcpy(key + a.len + 1, b.ptr, b.len);
    key[a.len + 1 + b.len] = '\0';
}

void store_messages_reverse(store_message_t *m, size_t count)
{
    if (count < 2) return;
    for (size_t i = 0, j = count - 1; i < j; i++, j--) {
        store_message_t t = m[i];
        m[i] = m[j];
        m[j] = t;
    }
}

/* The webhook outbox's settings (store.h): written once before store_open, read by engines. */
static store_outbox_settings_t outbox_settings;

void store_outbox_configure(const store_outbox_settings_t *s)
{
    outbox_settings = *s;
    if (outbox_settings.unread_delay_ms < 1000) outbox_settings.unread_delay_ms = 1000;
}

const store_outbox_settings_t *store_outbox_settings(void)
{
    return &outbox_settings;
}

bool store_valid_context_part(str_t s)
{
    if (!s.ptr || s.len < 1 || s.len > STORE_CONTEXT_PART_MAX) return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == ':' || c == '-';
        if (!ok) return false;
    }
    return true;
}

bool store_valid_context(const store_context_t *c)
{
    if (!store_present(c->type) && !store_present(c->id)) return !store_present(c->title);
    if (!store_valid_context_part(c->type) || !store_valid_context_part(c->id)) return false;
    if (!store_valid_opt(c->title, STORE_CONTEXT_TITLE_MAX)) return false;
    for (size_t i = 0; store_present(c->title) && i < c->title.len; i++)
        if (c->title.ptr[i] == '\0') return false;
    return true;
}

void store_direct_ctx_key(str_t a, str_t b, const store_context_t *ctx,
                          char key[STORE_DIRECT_CTX_KEY_SIZE])
{
    store_direct_key(a, b, key);
    if (!key[0] || !ctx || !store_present(ctx->type)) return;
    /* "min|max|type|id": the id charsets have no '|', so keys of different contexts differ */
    size_t n = strlen(key);
    if (ctx->type.len > STORE_CONTEXT_PART_MAX || ctx->id.len > STORE_CONTEXT_PART_MAX) {
        key[0] = '\0';
        return;
    }
    key[n++] = '|';
    memcpy(key + n, ctx->type.ptr, ctx->type.len);
    n += ctx->type.len;
    key[n++] = '|';
    memcpy(key + n, ctx->id.ptr, ctx->id.len);
    n += ctx->id.len;
    key[n] = '\0';
}
