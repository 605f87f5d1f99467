/* Socket.IO protocol v4 details for Engine.IO v3 clients (see sio_v3.c). */
#ifndef PARLOR_SIO_V3_H
#define PARLOR_SIO_V3_H

#include "core/buf.h"

/* Appends to auth the query of a v3 CONNECT's namespace ("a=1&b=2", without the '?') as a
 * JSON object of strings, as socket.io 4 makes it the auth payload: decoded, the last of a
 * repeated name wins, a malformed or non-UTF-8 parameter is left out; "{}" for none. */
void sio_v3_query_auth(str_t query, buf_t *auth);
/* Appends the v3 CONNECT_ERROR payload for err ({"message":..,"data":..}): its data, or else
 * its message, as socket.io 4 sends it. */
void sio_v3_connect_error(str_t err, buf_t *out);

#endif
