/* File sharing over REST: streamed multipart uploads, authorized downloads with Range/ETag. */
#ifndef PARLOR_API_FILES_H
#define PARLOR_API_FILES_H

#include "api/api.h"

typedef struct files_api files_api_t;

typedef struct {
    const char *dir;        /* where files live (<data>/files) */
    uint64_t max_file_size; /* bytes; one more is 413 */
    int64_t quota;          /* bytes per user, 0 = none */
    const char *allow;      /* comma-separated MIME types; NULL = files' default list */
    double uploads_per_min; /* per user, 0 = no limit */
} files_api_options_t;

/* NULL (with a message in err) when the directory cannot be prepared. */
files_api_t *files_api_new(uv_loop_t *loop, api_t *api, store_t *store,
                           const files_api_options_t *opts, char *err, size_t cap);
void files_api_free(files_api_t *f);
/* A streaming route for "/api/chat/files" (arg = the files_api_t). */
int files_api_handle(http_conn_t *hc, const http_request_t *req, str_t body, void *arg);

#endif
