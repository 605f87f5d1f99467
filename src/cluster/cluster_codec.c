/* The envelope of a delivery on the cluster bus: see cluster_codec.h for the layout. */
#include <string.h>

#include "cluster/cluster_codec.h"
#include "core/json_scan.h"
#include "store/store.h"

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

bool cluster_codec_event_ok(const char *p, size_t n)
{
    if (n < 1 || n > CLUSTER_EVENT_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || p[i] == '_')) return false;
    return true;
}

bool cluster_codec_user_ok(const char *p, size_t n)
{
    if (n < 1 || n > STORE_USER_ID_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static bool ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* One or more JSON values separated by commas (whitespace allowed around them), nothing else:
 * spliced after `["event",` it makes one valid JSON array. */
bool cluster_codec_args_ok(const char *p, size_t n)
{
    if (n == 0 || n > CLUSTER_ARGS_MAX) return false;
    size_t i = 0;
    for (;;) {
        int64_t v = json_scan_value(p + i, n - i);
        if (v <= 0) return false;
        i += (size_t)v;
        while (i < n && ws(p[i])) i++;
        if (i == n) return true;
        if (p[i] != ',') return false;
        i++;
    }
}

int cluster_codec_encode(buf_t *out, const cluster_envelope_t *e, const str_t *args, size_t nargs)
{
    size_t elen = strlen(e->event), alen = 0;
    for (size_t i = 0; i < nargs; i++) alen += args[i].len;
    if (!cluster_codec_event_ok(e->event, elen) ||
        !cluster_codec_user_ok(e->user.ptr, e->user.len) || alen == 0 || alen > CLUSTER_ARGS_MAX ||
        e->node == 0 || e->pos < 0 || e->prev < 0)
        return -1;
    if (buf_reserve(out, CLUSTER_ENVELOPE_HEAD + elen + e->user.len + alen) < 0) return -1;
    unsigned char h[CLUSTER_ENVELOPE_HEAD];
    h[0] = 'P';
    h[1] = 2;
    h[2] = (unsigned char)elen;
    h[3] = (unsigned char)e->user.len;
    h[4] = 0;
    put64(h + 5, e->node);
    put64(h + 13, e->seq);
    put64(h + 21, (uint64_t)e->pos);
    put64(h + 29, e->except);
    put64(h + 37, (uint64_t)e->prev);
    buf_append(out, h, sizeof h);
    buf_append(out, e->event, elen);
    buf_append(out, e->user.ptr, e->user.len);
    for (size_t i = 0; i < nargs; i++) buf_append(out, args[i].ptr, args[i].len);
    return 0;
}

int cluster_codec_decode(const char *data, size_t len, cluster_envelope_t *e)
{
    const unsigned char *h = (const unsigned char *)data;
    /* Version 1 (a node before the chain, 37 bytes of header) still decodes, with prev 0. */
    if (!data || len < CLUSTER_ENVELOPE_HEAD_V1 || h[0] != 'P' || (h[1] != 1 && h[1] != 2) ||
        h[4] != 0)
        return -1;
    size_t head = h[1] == 1 ? CLUSTER_ENVELOPE_HEAD_V1 : CLUSTER_ENVELOPE_HEAD;
    if (len < head) return -1;
    size_t elen = h[2], ulen = h[3];
    if (len - head < elen + ulen + 1) return -1; /* args: at least one byte */
    e->node = get64(h + 5);
    e->seq = get64(h + 13);
    uint64_t pos = get64(h + 21);
    e->except = get64(h + 29);
    if (e->node == 0 || pos > (uint64_t)INT64_MAX) return -1;
    e->pos = (int64_t)pos;
    uint64_t prev = head == CLUSTER_ENVELOPE_HEAD ? get64(h + 37) : 0;
    if (prev > (uint64_t)INT64_MAX) return -1;
    e->prev = (int64_t)prev;
    const char *p = data + head;
    if (!cluster_codec_event_ok(p, elen)) return -1;
    memcpy(e->event, p, elen);
    e->event[elen] = '\0';
    p += elen;
    if (!cluster_codec_user_ok(p, ulen)) return -1;
    e->user = str_make(p, ulen);
    p += ulen;
    e->args = str_make(p, len - (size_t)(p - data));
    if (!cluster_codec_args_ok(e->args.ptr, e->args.len)) return -1;
    return 0;
}
