/* Socket.IO v5 packet codec (pure: no I/O, no allocation). */
#include "sio/sio_packet.h"

#include "core/json_scan.h"

_Static_assert(SIO_MAX_ATTACHMENTS <= 64, "placeholders are tracked in a 64-bit mask");

static bool sio_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool sio_is_json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* When text is one valid JSON value with optional whitespace around it, returns the value alone;
 * otherwise an empty string. */
static str_t sio_json_trim(str_t text)
{
    int64_t end = json_scan_value(text.ptr, text.len);
    size_t start = 0, k;

    if (end < 0) return STR_NULL;
    for (k = (size_t)end; k < text.len; k++)
        if (!sio_is_json_ws(text.ptr[k])) return STR_NULL;
    while (sio_is_json_ws(text.ptr[start])) start++;
    return str_make(text.ptr + start, (size_t)end - start);
}

/* Parses plain decimal digits at buf[*i..len) (no sign, no leading zero) up to max. Returns the
 * value with *i moved past the digits, or -1 when there are none, a leading zero, or overflow. */
static int64_t sio_parse_uint(const char *buf, size_t len, size_t *i, int64_t max)
{
    size_t start = *i, k = start;
    int64_t v = 0;

    while (k < len && sio_is_digit(buf[k])) {
        int d = buf[k] - '0';
        if (v > (max - d) / 10) return -1;
        v = v * 10 + d;
        k++;
    }
    if (k == start || (buf[start] == '0' && k - start > 1)) return -1;
    *i = k;
    return v;
}

/* Decodes a JSON string token into out (cap bytes, NUL-terminated). -1 when invalid or too long. */
static int64_t sio_decode_name(str_t tok, char *out, size_t cap)
{
    if (cap == 0) return -1;
    int64_t n = json_string_decode(tok.ptr, tok.len, out, cap - 1);
    if (n < 0) return -1;
    out[n] = '\0';
    return n;
}

static bool sio_is_reserved_event(str_t tok)
{
    static const char *const reserved[] = {"connect",       "connect_error", "disconnect",
                                           "disconnecting", "newListener",   "removeListener"};
    char name[16];

    /* Longer names do not fit and are not reserved; escapes are decoded so "\u0063onnect" is
     * caught too. */
    int64_t n = sio_decode_name(tok, name, sizeof(name));
    if (n < 0) return false;
    for (size_t k = 0; k < sizeof(reserved) / sizeof(reserved[0]); k++)
        if (str_eq(str_make(name, (size_t)n), str_cstr(reserved[k]))) return true;
    return false;
}

static bool sio_payload_ok(const sio_packet_t *p)
{
    bool has_data = p->data.len > 0;
    json_array_iter_t it;
    str_t first;

    switch (p->type) {
    case SIO_CONNECT:
        return p->ack_id < 0 && (!has_data || p->data.ptr[0] == '{');
    case SIO_DISCONNECT:
        return p->ack_id < 0 && !has_data;
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        if (!has_data || json_array_iter_init(&it, p->data) < 0) return false;
        if (json_array_next(&it, &first) != 1 || first.ptr[0] != '"') return false;
        return !sio_is_reserved_event(first);
    case SIO_ACK:
    case SIO_BINARY_ACK:
        return p->ack_id >= 0 && has_data && p->data.ptr[0] == '[';
    default:
        return false;
    }
}

int sio_packet_decode(const char *buf, size_t len, sio_packet_t *out)
{
    size_t i = 1;

    if (len == 0 || buf[0] < '0' || buf[0] > '0' + SIO_BINARY_ACK) return -1;
    /* Absent data points at the end of the packet, not NULL, so memcpy(dst, data.ptr, 0) is
     * defined for callers. */
    sio_packet_t p = {.nsp = STR_LIT("/"), .ack_id = -1, .data = {buf + len, 0}};
    p.type = buf[0] - '0';
    if (p.type == SIO_CONNECT_ERROR) return -1;

    if (p.type == SIO_BINARY_EVENT || p.type == SIO_BINARY_ACK) {
        int64_t n = sio_parse_uint(buf, len, &i, SIO_MAX_ATTACHMENTS);
        if (n < 1 || i >= len || buf[i] != '-') return -1;
        p.attachments = (unsigned)n;
        i++;
    }

    if (i < len && buf[i] == '/') {
        size_t start = i;
        while (i < len && buf[i] != ',') {
            unsigned char c = (unsigned char)buf[i];
            if (c < 0x21 || c > 0x7e) return -1;
            i++;
        }
        if (i - start > SIO_NSP_MAX) return -1;
        p.nsp = str_make(buf + start, i - start);
        if (i < len) i++; /* the ',' */
    }

    if (i < len && sio_is_digit(buf[i])) {
        p.ack_id = sio_parse_uint(buf, len, &i, SIO_ACK_ID_MAX);
        if (p.ack_id < 0) return -1;
    }

    if (i < len) {
        /* Exactly one JSON value: JSON.stringify writes no whitespace around it, and the
         * reference decoder reads a leading space as ack id 0, so whitespace is refused rather
         * than read one way or the other. */
        if (sio_is_json_ws(buf[i]) || json_scan_value(buf + i, len - i) != (int64_t)(len - i))
            return -1;
        p.data = str_make(buf + i, len - i);
    }

    if (!sio_payload_ok(&p)) return -1;
    if (p.attachments && sio_check_placeholders(p.data, p.attachments) < 0) return -1;
    *out = p;
    return 0;
}

/* Writes v in decimal; returns the digit count. */
static size_t sio_put_uint(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t k = 0; k < n; k++) out[k] = tmp[n - 1 - k];
    return n;
}

size_t sio_packet_encode_header(char *out, int type, str_t nsp, unsigned attachments,
                                int64_t ack_id, bool has_data)
{
    size_t o = 0;

    (void)has_data;
    if (type < SIO_CONNECT || type > SIO_BINARY_ACK || nsp.len > SIO_NSP_MAX ||
        ack_id > SIO_ACK_ID_MAX)
        return 0;
    out[o++] = (char)('0' + type);
    if (type == SIO_BINARY_EVENT || type == SIO_BINARY_ACK) {
        o += sio_put_uint(out + o, attachments);
        out[o++] = '-';
    }
    if (nsp.len > 0 && !str_eq(nsp, STR_LIT("/"))) {
        memcpy(out + o, nsp.ptr, nsp.len);
        o += nsp.len;
        out[o++] = ',';
    }
    if (ack_id >= 0) o += sio_put_uint(out + o, (uint64_t)ack_id);
    return o;
}

int sio_event_split(str_t data, char *name_out, size_t name_cap, str_t *rest)
{
    json_array_iter_t it;
    str_t first;

    if (json_array_iter_init(&it, data) < 0) return -1;
    if (json_array_next(&it, &first) != 1 || first.ptr[0] != '"') return -1;
    int64_t n = sio_decode_name(first, name_out, name_cap);
    if (n < 0) return -1;
    const char *end = first.ptr + first.len;
    *rest = str_make(end, (size_t)(data.ptr + data.len - end));
    return (int)n;
}

/* Matches a key token against a short ASCII name, decoding escapes. */
static bool sio_key_is(str_t tok, const char *name)
{
    char buf[16];
    int64_t n = sio_decode_name(tok, buf, sizeof(buf));
    return n >= 0 && str_eq(str_make(buf, (size_t)n), str_cstr(name));
}

static int sio_walk_placeholders(str_t v, unsigned attachments, uint64_t *seen, int depth);

/* v is an object. When it is a placeholder, checks and records it; otherwise walks its values. */
static int sio_walk_object(str_t v, unsigned attachments, uint64_t *seen, int depth)
{
    json_object_iter_t it;
    str_t key, val, num = STR_NULL;
    size_t members = 0;
    bool placeholder = false;
    int r;

    json_object_iter_init(&it, v);
    while ((r = json_object_next(&it, &key, &val)) == 1) {
        members++;
        if (sio_key_is(key, "_placeholder") && str_eq(val, STR_LIT("true"))) placeholder = true;
        if (sio_key_is(key, "num")) num = val;
    }
    if (r < 0) return -1;

    if (!placeholder) {
        json_object_iter_init(&it, v);
        while ((r = json_object_next(&it, &key, &val)) == 1)
            if (sio_walk_placeholders(val, attachments, seen, depth + 1) < 0) return -1;
        return r;
    }
    if (members != 2 || num.len == 0) return -1;
    size_t i = 0;
    int64_t n = sio_parse_uint(num.ptr, num.len, &i, 63);
    if (n < 0 || i != num.len || (uint64_t)n >= attachments) return -1;
    if (*seen & (UINT64_C(1) << n)) return -1;
    *seen |= UINT64_C(1) << n;
    return 0;
}

static int sio_walk_placeholders(str_t v, unsigned attachments, uint64_t *seen, int depth)
{
    json_array_iter_t it;
    str_t elem;
    int r;

    if (depth > JSON_SCAN_MAX_DEPTH) return -1;
    if (v.ptr[0] == '{') return sio_walk_object(v, attachments, seen, depth);
    if (v.ptr[0] != '[') return 0;
    json_array_iter_init(&it, v);
    while ((r = json_array_next(&it, &elem)) == 1)
        if (sio_walk_placeholders(elem, attachments, seen, depth + 1) < 0) return -1;
    return r;
}

int sio_check_placeholders(str_t data, unsigned attachments)
{
    uint64_t seen = 0;

    if (attachments > 64) return -1;
    if (data.len == 0) return attachments == 0 ? 0 : -1;
    str_t v = sio_json_trim(data);
    if (v.len == 0) return -1;
    if (sio_walk_placeholders(v, attachments, &seen, 0) < 0) return -1;
    uint64_t all = attachments == 64 ? UINT64_MAX : (UINT64_C(1) << attachments) - 1;
    return seen == all ? 0 : -1;
}
