/* libFuzzer target: Socket.IO packet decoding, event splitting, placeholders, header round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_scan.h"
#include "sio/sio_packet.h"

static bool fuzz_inside(str_t s, const char *buf, size_t len)
{
    return s.len == 0 || (s.ptr >= buf && s.ptr + s.len <= buf + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    sio_packet_t p;

    if (sio_packet_decode(buf, size, &p) == 0) {
        if (p.type < SIO_CONNECT || p.type > SIO_BINARY_ACK || p.type == SIO_CONNECT_ERROR) abort();
        if (p.nsp.len == 0 || p.nsp.ptr[0] != '/' || p.nsp.len > SIO_NSP_MAX) abort();
        /* nsp borrows the packet, or is the static "/" when absent. */
        if (!fuzz_inside(p.data, buf, size) || p.data.ptr == NULL ||
            (!fuzz_inside(p.nsp, buf, size) && !str_eq(p.nsp, STR_LIT("/"))))
            abort();
        if (p.ack_id < -1 || p.ack_id > SIO_ACK_ID_MAX) abort();
        if (p.data.len && !json_valid(p.data.ptr, p.data.len)) abort();
        bool binary = p.type == SIO_BINARY_EVENT || p.type == SIO_BINARY_ACK;
        if (binary != (p.attachments > 0) || p.attachments > SIO_MAX_ATTACHMENTS) abort();

        if (p.type == SIO_EVENT || p.type == SIO_BINARY_EVENT) {
            char name[64];
            str_t rest;
            int n = sio_event_split(p.data, name, sizeof(name), &rest);
            /* Only a name too long for the buffer may fail. */
            if (n < 0 && p.data.len < sizeof(name)) abort();
            if (n >= 0) {
                /* ["x" + rest is valid JSON again. */
                char *re = malloc(rest.len + 4);
                memcpy(re, "[\"x\"", 4);
                memcpy(re + 4, rest.ptr, rest.len);
                if (!json_valid(re, rest.len + 4)) abort();
                free(re);
            }
        }
        if (sio_check_placeholders(p.data, p.attachments) != 0 && binary) abort();

        /* Header + data decodes to the same packet. */
        char *out = malloc(SIO_HEADER_MAX + p.data.len);
        size_t n =
            sio_packet_encode_header(out, p.type, p.nsp, p.attachments, p.ack_id, p.data.len > 0);
        if (n == 0 || n > SIO_HEADER_MAX) abort();
        memcpy(out + n, p.data.ptr, p.data.len);
        sio_packet_t q;
        if (sio_packet_decode(out, n + p.data.len, &q) != 0) abort();
        if (q.type != p.type || !str_eq(q.nsp, p.nsp) || q.ack_id != p.ack_id ||
            q.attachments != p.attachments || !str_eq(q.data, p.data))
            abort();
        free(out);
    }

    /* The helpers on arbitrary text must not misbehave either. */
    char name[16];
    str_t rest;
    str_t all = str_make(buf, size);
    if (sio_event_split(all, name, sizeof(name), &rest) >= 0 &&
        (rest.ptr < buf || rest.ptr + rest.len != buf + size))
        abort();
    sio_check_placeholders(all, size ? data[0] % 12 : 0);
    free(buf);
    return 0;
}
