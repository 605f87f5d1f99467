/* Socket.IO protocol v4 (socket.io-client 2.x over Engine.IO v3) as socket.io 4 serves it with
 * allowEIO3: the namespace query of a CONNECT and the CONNECT_ERROR payload. Kept apart from
 * sio_server.c, which only asks these two questions. */
#include "sio/sio_v3.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parse.h"

/* socket.io 4 hands the query of a v3 CONNECT's namespace to the middleware as the auth
 * payload (url.parse(nsp, true).query). */
void sio_v3_query_auth(str_t query, buf_t *auth)
{
    json_t *o = json_object();
    char *k = malloc(query.len + 1), *v = malloc(query.len + 1);
    if (o && k && v) {
        const char *p = query.ptr, *end = query.ptr + query.len;
        while (p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p)), *e = amp ? amp : end;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            int kl = http_percent_decode(str_make(p, (size_t)((eq ? eq : e) - p)), true, k,
                                         query.len + 1);
            int vl = eq ? http_percent_decode(str_make(eq + 1, (size_t)(e - eq - 1)), true, v,
                                              query.len + 1)
                        : 0;
            if (kl > 0 && vl >= 0) {
                v[vl] = '\0';
                json_t *js = json_stringn(v, (size_t)vl);
                if (js) json_object_set_new(o, k, js); /* NUL-free: percent_decode refuses NUL */
            }
            p = e + (amp ? 1 : 0);
        }
    }
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    buf_append_str(auth, text ? text : "{}");
    free(text);
    free(k);
    free(v);
    json_decref(o);
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
