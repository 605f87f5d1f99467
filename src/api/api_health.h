/* GET /healthz: whether this node can serve, i.e. its store answers. */
#ifndef PARLOR_API_API_HEALTH_H
#define PARLOR_API_API_HEALTH_H

#include "http/http_server.h"
#include "store/store.h"

typedef struct api_health api_health_t;

api_health_t *api_health_new(store_t *store);
/* Call after store_close (which has run every outstanding ping's completion). */
void api_health_free(api_health_t *h);
/* Route "/healthz" here (arg = the api_health_t). */
int api_health_handle(http_conn_t *hc, const http_request_t *req, str_t body, void *arg);

#endif
