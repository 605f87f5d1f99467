/* Socket.IO protocol v4 (socket.io-client 2.x over Engine.IO v3) as socket.io 4 serves it with
 * allowEIO3: the namespace query of a CONNECT and the CONNECT_ERROR payload. Kept apart from
 * sio_server.c, which only asks these two questions. */
#include "sio/sio_v3.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parse.h"
#include "sio/sio_packet.h"

/* A v3 (socket.io-client 2.x) CONNECT carries its query in the namespace, "/nsp?a=1&b=2";
 * socket.io 4 hands that query to the middleware as the auth payload. Writes the query as a
 * JSON object of strings (decoded; a parameter that is not valid UTF-8 or is malformed is
 * left out) and returns the namespace without it. */
str_t sio_v3_nsp_query(str_t nsp, buf_t *auth)
{
    const char *q = memchr(nsp.ptr, '?', nsp.len);
    json_t *o = json_object();
    if (q && o) {
        const char *p = q + 1, *end = nsp.ptr + nsp.len;
        while (p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p)), *e = amp ? amp : end;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            char k[SIO_NSP_MAX + 1], v[SIO_NSP_MAX + 1];
            int kl =
                http_percent_decode(str_make(p, (size_t)((eq ? eq : e) - p)), true, k, sizeof k);
            int vl =
                eq ? http_percent_decode(str_make(eq + 1, (size_t)(e - eq - 1)), true, v, sizeof v)
                   : 0;
            if (kl > 0 && vl >= 0) {
                k[kl] = v[vl] = '\0';
                json_t *js = json_stringn(v, (size_t)vl);
                if (js && strlen(k) == (size_t)kl)
                    json_object_set_new(o, k, js);
                else
                    json_decref(js);
            }
            p = e + (amp ? 1 : 0);
        }
    }
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    buf_append_str(auth, text ? text : "{}");
    free(text);
    json_decref(o);
    return q ? str_make(nsp.ptr, (size_t)(q - nsp.ptr)) : nsp;
}

/* The CONNECT_ERROR payload for a v3 client: socket.io 4 sends it err.data, or else
 * err.message (a v2 client emits it as an 'error' event). err is {"message":..,"data":..}. */
void sio_v3_connect_error(str_t err, buf_t *out)
{
    json_t *o = json_loadb(err.ptr, err.len, 0, NULL);
    json_t *v = json_object_get(o, "data");
    if (!v) v = json_object_get(o, "message");
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    buf_append_str(out, text ? text : "\"refused\"");
    free(text);
    json_decref(o);
}
