/* What the REST modules share: answers in the contract's JSON and authentication. */
#ifndef PARLOR_API_INTERNAL_H
#define PARLOR_API_INTERNAL_H

#include "api/api.h"

void api_respond_json(http_conn_t *hc, int status, json_t *doc);
void api_respond_error(http_conn_t *hc, int status, const char *code, const char *message);
/* An error with retryAfterMs and Retry-After when it is a rate limit. */
void api_respond_refusal(http_conn_t *hc, const chat_err_t *err);
void api_method_not_allowed(http_conn_t *hc, const char *allow);
/* Bearer token -> user (records it, applies the REST rate limit); answers 401/429 itself and
 * returns -1 on refusal. */
int api_authenticate(api_t *a, http_conn_t *hc, const http_request_t *req, chat_user_t *user);
chat_t *api_chat(api_t *a);
/* Sets the CORS headers of this request's answers; answers a preflight (true: done). */
bool api_cors(api_t *a, http_conn_t *hc, const http_request_t *req);

#endif
