/* libFuzzer target: the cluster envelope decoder (what another node, or anything else on the
 * Redis channels, sends). A decoded envelope must be within bounds, its arguments must splice
 * into one valid JSON array, and it must encode back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_codec.h"
#include "core/json_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    if (size) memcpy(in, data, size);
    cluster_envelope_t e;
    if (cluster_codec_decode(in, size, &e) == 0) {
        if (e.node == 0 || e.pos < 0 || e.prev < 0) abort();
        if (!cluster_codec_event_ok(e.event, strlen(e.event))) abort();
        if (!cluster_codec_user_ok(e.user.ptr, e.user.len)) abort();
        if (e.user.ptr < in || e.args.ptr + e.args.len != in + size) abort();
        /* ["event", + args + ] is one JSON value: what the receiving node puts on a socket. */
        buf_t arr;
        buf_init(&arr);
        buf_printf(&arr, "[\"%s\",", e.event);
        buf_append(&arr, e.args.ptr, e.args.len);
        buf_append(&arr, "]", 1);
        if (!json_valid(arr.data, arr.len)) abort();
        buf_free(&arr);
        buf_t out;
        buf_init(&out);
        if (cluster_codec_encode(&out, &e, &e.args, 1) != 0) abort();
        if (in[1] == 2) {
            if (out.len != size || memcmp(out.data, in, size) != 0) abort();
        } else { /* version 1 encodes as version 2 with prev 0: the same fields after it */
            size_t h1 = CLUSTER_ENVELOPE_HEAD_V1, h2 = CLUSTER_ENVELOPE_HEAD;
            if (e.prev != 0 || out.len != size + (h2 - h1) ||
                memcmp(out.data + h2, in + h1, size - h1) != 0 || memcmp(out.data + 5, in + 5, 32))
                abort();
        }
        buf_free(&out);
    }
    free(in);
    return 0;
}
