/* Socket.IO protocol v4 details for Engine.IO v3 clients (see sio_v3.c). */
#ifndef PARLOR_SIO_V3_H
#define PARLOR_SIO_V3_H

#include "core/buf.h"

/* A v3 CONNECT's namespace "/nsp?a=1&b=2": appends its query to auth as a JSON object of
 * strings (decoded; a malformed or non-UTF-8 parameter is left out; the last of a repeated
 * name wins, as socket.io 4) and returns the namespace without the query. */
str_t sio_v3_nsp_query(str_t nsp, buf_t *auth);
/* Appends the v3 CONNECT_ERROR payload for err ({"message":..,"data":..}): its data, or else
 * its message, as socket.io 4 sends it. */
void sio_v3_connect_error(str_t err, buf_t *out);

#endif
