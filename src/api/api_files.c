/* POST /api/chat/files and GET /api/chat/files/:id. Uploads are parsed as they stream in and
 * written to a temporary file (never held in memory), checked by content on a worker thread,
 * then recorded; downloads are read in chunks as the client takes them. */
#include "api/api_files.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "chat/chat_json.h"
#include "chat/limits.h"
#include "core/id.h"
#include "core/log.h"
#include "files/files.h"
#include "http/http_multipart.h"
#include "http/http_range.h"

#define DOWNLOAD_CHUNK      (64 * 1024)
#define DOWNLOAD_HIGH_WATER (256 * 1024)

struct files_api {
    uv_loop_t *loop;
    api_t *api;
    store_t *store;
    files_api_options_t opts;
    char dir[1024];
    char allow[2048];
    limiter_t upload_limit;
};

/* ---- uploads ---- */

static const char msg_too_large[] = "the file is larger than max-file-size";

typedef struct {
    store_req_t req; /* first: the store's done() gets this pointer */
    files_api_t *fa;
    http_conn_t *hc; /* NULL once the client is gone */
    chat_user_t user;
    files_upload_t *up;
    bool in_file, have_file;
    bool pending;   /* a worker or a store request runs on u: it frees u when it is back */
    int err_status; /* set by a multipart callback that stopped the parser */
    const char *err_code, *err_message;
    /* worker results */
    int finish_rc;
    char id[ID_SIZE];
    char sha[FILES_SHA256_HEX_SIZE];
    uint64_t size;
    char mime[FILES_MIME_SIZE];
    char name[FILES_NAME_SIZE];
    char path[1100];
    uv_work_t work;
    http_multipart_t mp;
} upload_t;

static void upload_free(upload_t *u)
{
    if (u->hc) http_conn_set_abort(u->hc, NULL, NULL);
    files_upload_abort(u->up); /* NULL after finish */
    free(u);
}

/* 413 for a file over --max-file-size, with the limit as maxBytes so that a client can say
 * "larger than 10 MB" instead of naming an option. */
static void respond_too_large(http_conn_t *hc, uint64_t max)
{
    json_t *e = chat_error_json("PAYLOAD_TOO_LARGE", "the file is larger than max-file-size");
    json_object_set_new(e, "maxBytes", json_integer((json_int_t)max));
    json_t *doc = json_pack("{s:o}", "error", e);
    api_respond_json(hc, 413, doc);
    json_decref(doc);
}

static void upload_fail(upload_t *u, int status, const char *code, const char *message)
{
    if (u->hc) {
        if (status == 413 && message == msg_too_large)
            respond_too_large(u->hc, u->fa->opts.max_file_size);
        else
            api_respond_error(u->hc, status, code, message);
    }
    upload_free(u);
}

/* The client went away. Whoever runs last frees u: here when nothing is outstanding,
 * otherwise the worker's or the store's completion (docs/architecture.md, Lifetimes). */
static void upload_aborted(http_conn_t *hc, void *arg)
{
    upload_t *u = arg;
    u->hc = NULL;
    if (!u->pending) upload_free(u);
}

static int part_begin(void *ud, str_t name, str_t filename, str_t content_type)
{
    upload_t *u = ud;
    u->in_file = false;
    if (!str_eq_cstr(name, "file")) return 0; /* other fields are ignored */
    if (u->have_file) {
        u->err_status = 400;
        u->err_code = "BAD_REQUEST";
        u->err_message = "send exactly one part named file";
        return 1;
    }
    u->have_file = u->in_file = true;
    /* The name is metadata only: it never reaches a path. */
    if (files_sanitize_name(filename.ptr ? filename.ptr : "", filename.ptr ? filename.len : 0,
                            u->name, sizeof u->name) < 0)
        snprintf(u->name, sizeof u->name, "file");
    return 0;
}

static int part_data(void *ud, const char *data, size_t len)
{
    upload_t *u = ud;
    if (!u->in_file) return 0;
    int rc = files_upload_write(u->up, data, len);
    if (rc == 0) return 0;
    if (rc == FILES_ERR_TOO_LARGE) {
        u->err_status = 413;
        u->err_code = "PAYLOAD_TOO_LARGE";
        u->err_message = msg_too_large;
    } else {
        u->err_status = 500;
        u->err_code = "INTERNAL";
        u->err_message = "could not write the upload";
    }
    return 1;
}

static int part_end(void *ud)
{
    ((upload_t *)ud)->in_file = false;
    return 0;
}

static const http_multipart_callbacks_t mp_callbacks = {part_begin, part_data, part_end, NULL};

static int upload_body(http_conn_t *hc, const char *data, size_t len, void *arg)
{
    upload_t *u = arg;
    if (http_multipart_feed(&u->mp, data, len, &mp_callbacks, u) >= 0) return 0;
    if (u->err_status)
        upload_fail(u, u->err_status, u->err_code, u->err_message);
    else
        upload_fail(u, 400, "BAD_REQUEST",
                    u->mp.error_reason ? u->mp.error_reason : "malformed multipart body");
    return -1;
}

static void inserted(store_req_t *req)
{
    upload_t *u = (upload_t *)req;
    u->pending = false;
    if (req->status != STORE_OK) {
        files_remove(u->fa->dir, u->id); /* the row and the file exist together or not at all */
        if (req->status == STORE_E_QUOTA) {
            upload_fail(u, 413, "PAYLOAD_TOO_LARGE", "your storage quota is used up");
        } else if (req->status == STORE_E_UNAVAILABLE) { /* 503 STORE_UNAVAILABLE, Retry-After */
            chat_err_t e;
            chat_store_err(req->status, &e);
            if (u->hc) api_respond_refusal(u->hc, &e);
            upload_free(u);
        } else
            upload_fail(u, 500, "INTERNAL", "could not record the file");
        return;
    }
    if (u->hc) {
        char url[64];
        snprintf(url, sizeof url, "/api/chat/files/%s", u->id);
        json_t *doc = json_pack("{s:{s:s, s:s, s:I, s:s, s:s}}", "file", "id", u->id, "name",
                                u->name, "size", (json_int_t)u->size, "mime", u->mime, "url", url);
        api_respond_json(u->hc, 201, doc);
        json_decref(doc);
        log_info("upload by %s: %s (%llu bytes, %s)", u->user.id, u->id,
                 (unsigned long long)u->size, u->mime);
    }
    upload_free(u);
}

static void finish_work(uv_work_t *w)
{
    upload_t *u = w->data;
    u->finish_rc = files_upload_finish(u->up, u->fa->allow[0] ? u->fa->allow : NULL, u->id, u->sha,
                                       &u->size, u->mime, sizeof u->mime);
    u->up = NULL; /* finish frees it whatever the outcome */
}

static void finish_after(uv_work_t *w, int status)
{
    upload_t *u = w->data;
    u->pending = false;
    if (u->finish_rc == 0 && !u->hc) { /* the client left: keep nothing */
        files_remove(u->fa->dir, u->id);
        upload_free(u);
        return;
    }
    if (u->finish_rc == FILES_ERR_TYPE) {
        char msg[256];
        snprintf(msg, sizeof msg, "files of type %s are not accepted", u->mime[0] ? u->mime : "?");
        upload_fail(u, 415, "UNSUPPORTED_MEDIA_TYPE", msg);
        return;
    }
    if (u->finish_rc == FILES_ERR_TOO_LARGE) {
        upload_fail(u, 413, "PAYLOAD_TOO_LARGE", msg_too_large);
        return;
    }
    if (u->finish_rc != 0 || status != 0) {
        upload_fail(u, 500, "INTERNAL", "could not store the file");
        return;
    }
    files_path(u->fa->dir, u->id, u->path, sizeof u->path);
    store_file_insert_t *fi = &u->req.u.file_insert;
    memcpy(fi->file.id, u->id, ID_SIZE);
    fi->file.owner = str_cstr(u->user.id);
    fi->file.name = str_cstr(u->name);
    fi->file.mime = str_cstr(u->mime);
    fi->file.path = str_cstr(u->path);
    fi->file.sha256 = str_cstr(u->sha);
    fi->file.size = (int64_t)u->size;
    fi->quota = u->fa->opts.quota;
    u->req.op = STORE_OP_FILE_INSERT;
    u->req.done = inserted;
    if (store_submit(u->fa->store, &u->req) != 0) {
        files_remove(u->fa->dir, u->id);
        upload_fail(u, 503, "INTERNAL", "the server is shutting down");
        return;
    }
    u->pending = true;
}

static int upload_end(http_conn_t *hc, void *arg)
{
    upload_t *u = arg;
    if (http_multipart_finish(&u->mp) != 0) {
        upload_fail(u, 400, "BAD_REQUEST", "the multipart body is truncated");
        return HTTP_DONE;
    }
    if (!u->have_file) {
        upload_fail(u, 400, "BAD_REQUEST", "a part named file is required");
        return HTTP_DONE;
    }
    u->pending = true;
    u->work.data = u;
    uv_queue_work(u->fa->loop, &u->work, finish_work, finish_after);
    return HTTP_DEFERRED;
}

static int upload_start(files_api_t *fa, http_conn_t *hc, const http_request_t *req)
{
    char boundary[HTTP_MULTIPART_BOUNDARY_MAX + 1];
    str_t ct = http_request_header(req, "content-type");
    if (!ct.ptr || http_multipart_boundary(ct, boundary, sizeof boundary) < 0) {
        api_respond_error(hc, 400, "BAD_REQUEST",
                          "send multipart/form-data with a boundary and a part named file");
        return HTTP_DONE;
    }
    /* Multipart framing adds well under 16 KiB; a larger declared body cannot fit the limit. */
    if (req->content_length > 0 &&
        (uint64_t)req->content_length > fa->opts.max_file_size + 16 * 1024) {
        respond_too_large(hc, fa->opts.max_file_size);
        return HTTP_DONE;
    }
    chat_user_t user;
    if (api_authenticate(fa->api, hc, req, &user) < 0) return HTTP_DONE;
    uint32_t wait = limiter_take(&fa->upload_limit, user.id, uv_now(fa->loop));
    if (wait) {
        chat_err_t e = {429, "RATE_LIMITED", "too many uploads; slow down", wait};
        api_respond_refusal(hc, &e);
        return HTTP_DONE;
    }
    upload_t *u = calloc(1, sizeof *u);
    char err[256] = "";
    if (!u || !(u->up = files_upload_begin(fa->dir, fa->opts.max_file_size, err, sizeof err))) {
        log_error("upload: %s", err[0] ? err : "out of memory");
        free(u);
        api_respond_error(hc, 500, "INTERNAL", "could not start the upload");
        return HTTP_DONE;
    }
    u->fa = fa;
    u->hc = hc;
    u->user = user;
    http_multipart_init(&u->mp, str_cstr(boundary));
    http_conn_set_abort(hc, upload_aborted, u);
    http_body_stream_t stream = {upload_body, upload_end, u};
    http_conn_stream_body(hc, &stream);
    return HTTP_DEFERRED;
}

/* ---- downloads ---- */

typedef struct {
    store_req_t req;
    files_api_t *fa;
    http_conn_t *hc;
    bool head_only;
    bool pending; /* a store request or a file read runs on d: it frees d if the client left */
    int fd;
    uint64_t off, end; /* next byte to send, one past the last */
    uv_fs_t fs;
    char *chunk;
    char range[128];
    char if_range[128];
    char inm[256];
    char id[ID_SIZE];
    chat_user_t user;
    char arena[8192];
} download_t;

static void download_free(download_t *d)
{
    if (d->hc) {
        http_conn_set_abort(d->hc, NULL, NULL);
        http_respond_set_drain(d->hc, NULL, NULL);
    }
    if (d->fd >= 0) close(d->fd);
    free(d->chunk);
    free(d);
}

/* The client went away: as for uploads, the last one out (this hook, the store's
 * completion or a file read) frees d. */
static void download_aborted(http_conn_t *hc, void *arg)
{
    download_t *d = arg;
    d->hc = NULL;
    if (!d->pending) download_free(d);
}

static void pump(download_t *d);

static void on_read(uv_fs_t *req)
{
    download_t *d = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    d->pending = false;
    if (!d->hc) {
        download_free(d);
        return;
    }
    if (n <= 0) {
        /* The file shrank or broke under us: the length is promised, so drop the connection. */
        log_error("download %s: read failed", d->id);
        net_conn_close(http_conn_net(d->hc));
        return; /* the abort hook frees d */
    }
    rbuf_t *r = rbuf_from(d->chunk, (size_t)n);
    if (r) {
        net_conn_write(http_conn_net(d->hc), r, 0, r->len);
        rbuf_unref(r);
    }
    d->off += (uint64_t)n;
    pump(d);
}

/* Reads the next chunk while the connection's queue is short; waits for a drain otherwise. */
static void pump(download_t *d)
{
    if (!d->hc) return;
    if (d->off >= d->end) {
        http_conn_t *hc = d->hc;
        d->hc = NULL;
        http_conn_set_abort(hc, NULL, NULL);
        http_respond_set_drain(hc, NULL, NULL);
        http_respond_end(hc);
        download_free(d);
        return;
    }
    if (http_conn_pending_output(d->hc) >= DOWNLOAD_HIGH_WATER) return; /* on_drain resumes */
    uint64_t want = d->end - d->off;
    if (want > DOWNLOAD_CHUNK) want = DOWNLOAD_CHUNK;
    uv_buf_t b = uv_buf_init(d->chunk, (unsigned)want);
    d->fs.data = d;
    d->pending = true;
    if (uv_fs_read(d->fa->loop, &d->fs, d->fd, &b, 1, (int64_t)d->off, on_read) < 0) {
        d->pending = false;
        net_conn_close(http_conn_net(d->hc));
    }
}

static void on_drain(http_conn_t *hc, void *arg)
{
    download_t *d = arg;
    if (!d->pending) pump(d);
}

/* "attachment; filename="lease.pdf"; filename*=UTF-8''lease.pdf": ASCII fallback and the
 * exact name percent-encoded (RFC 6266). */
static void disposition(const char *mime, str_t name, char *out, size_t cap)
{
    char ascii[256], pct[800];
    size_t a = 0, p = 0;
    for (size_t i = 0; i < name.len && a < sizeof ascii - 1; i++) {
        unsigned char ch = (unsigned char)name.ptr[i];
        ascii[a++] =
            (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\' || ch == '%') ? '_' : (char)ch;
    }
    ascii[a] = '\0';
    for (size_t i = 0; i < name.len && p + 4 < sizeof pct; i++) {
        unsigned char ch = (unsigned char)name.ptr[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("!#$&+-.^_`|~", ch))
            pct[p++] = (char)ch;
        else
            p += (size_t)snprintf(pct + p, sizeof pct - p, "%%%02X", ch);
    }
    pct[p] = '\0';
    snprintf(out, cap, "Content-Disposition: %s; filename=\"%s\"; filename*=UTF-8''%s\r\n",
             files_mime_is_image(mime) ? "inline" : "attachment", ascii[0] ? ascii : "file", pct);
}

static void file_found(store_req_t *req)
{
    download_t *d = (download_t *)req;
    store_file_get_t *fg = &req->u.file_get;
    d->pending = false;
    if (!d->hc) {
        download_free(d);
        return;
    }
    http_conn_t *hc = d->hc;
    if (req->status == STORE_E_NOT_FOUND || (req->status == STORE_OK && !fg->allowed)) {
        /* Strangers learn nothing, not even that the file exists. */
        api_respond_error(hc, 404, "NOT_FOUND", "no such file");
        download_free(d);
        return;
    }
    if (req->status == STORE_E_UNAVAILABLE) { /* 503 STORE_UNAVAILABLE, Retry-After */
        chat_err_t e;
        chat_store_err(req->status, &e);
        api_respond_refusal(hc, &e);
        download_free(d);
        return;
    }
    if (req->status != STORE_OK) {
        api_respond_error(hc, 500, "INTERNAL", "the store failed; try again");
        download_free(d);
        return;
    }
    char path[1100];
    files_path(d->fa->dir, d->id, path, sizeof path);
    struct stat st;
    d->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (d->fd < 0 || fstat(d->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        log_error("download %s: %s is missing", d->id, path);
        api_respond_error(hc, 404, "NOT_FOUND", "no such file");
        download_free(d);
        return;
    }
    char mime[FILES_MIME_SIZE];
    snprintf(mime, sizeof mime, "%.*s", (int)fg->file.mime.len, fg->file.mime.ptr);
    uint64_t size = (uint64_t)st.st_size;
    char etag[80];
    snprintf(etag, sizeof etag, "\"%.*s\"",
             (int)(fg->file.sha256.len < 64 ? fg->file.sha256.len : 64), fg->file.sha256.ptr);
    char hdrs[2048];
    int n = snprintf(hdrs, sizeof hdrs,
                     "ETag: %s\r\nAccept-Ranges: bytes\r\nCache-Control: private, max-age=0\r\n"
                     "X-Content-Type-Options: nosniff\r\n"
                     "Content-Security-Policy: default-src 'none'; sandbox\r\n",
                     etag);
    disposition(mime, fg->file.name, hdrs + n, sizeof hdrs - (size_t)n);
    if (d->inm[0] && (strstr(d->inm, etag) || !strcmp(d->inm, "*"))) {
        http_respond(hc, 304, NULL, hdrs, NULL, 0);
        download_free(d);
        return;
    }
    int status = 200;
    d->off = 0;
    d->end = size;
    if (d->if_range[0] && strcmp(d->if_range, etag) != 0) d->range[0] = '\0';
    if (d->range[0]) {
        uint64_t s0, e0;
        int r = http_range_parse(str_cstr(d->range), size, &s0, &e0);
        if (r == -1) {
            char h[2300];
            snprintf(h, sizeof h, "%sContent-Range: bytes */%llu\r\n", hdrs,
                     (unsigned long long)size);
            http_respond(hc, 416, "application/json", h,
                         "{\"error\":{\"code\":\"BAD_REQUEST\",\"message\":\"range not "
                         "satisfiable\"}}",
                         strlen("{\"error\":{\"code\":\"BAD_REQUEST\",\"message\":\"range not "
                                "satisfiable\"}}"));
            download_free(d);
            return;
        }
        if (r == 0) {
            status = 206;
            d->off = s0;
            d->end = e0 + 1;
            size_t l = strlen(hdrs);
            snprintf(hdrs + l, sizeof hdrs - l, "Content-Range: bytes %llu-%llu/%llu\r\n",
                     (unsigned long long)s0, (unsigned long long)e0, (unsigned long long)size);
        }
    }
    http_respond_start(hc, status, mime, hdrs, d->end - d->off);
    if (d->head_only || d->off == d->end) {
        d->hc = NULL;
        http_conn_set_abort(hc, NULL, NULL);
        http_respond_end(hc);
        download_free(d);
        return;
    }
    d->chunk = malloc(DOWNLOAD_CHUNK);
    if (!d->chunk) {
        net_conn_close(http_conn_net(hc));
        return;
    }
    http_respond_set_drain(hc, on_drain, d);
    pump(d);
}

static int download_start(files_api_t *fa, http_conn_t *hc, const http_request_t *req, str_t id)
{
    chat_user_t user;
    if (api_authenticate(fa->api, hc, req, &user) < 0) return HTTP_DONE;
    if (!id_valid(id)) {
        api_respond_error(hc, 400, "BAD_REQUEST", "fileId must be a 24-character hex id");
        return HTTP_DONE;
    }
    download_t *d = calloc(1, sizeof *d);
    if (!d) {
        api_respond_error(hc, 500, "INTERNAL", "out of memory");
        return HTTP_DONE;
    }
    d->fa = fa;
    d->hc = hc;
    d->fd = -1;
    d->user = user;
    d->head_only = str_eq_cstr(req->method, "HEAD");
    memcpy(d->id, id.ptr, ID_LEN);
    str_t range = http_request_header(req, "range");
    if (range.ptr && range.len < sizeof d->range) memcpy(d->range, range.ptr, range.len);
    /* If-Range: a range only while the client's copy is still current (RFC 9110 13.1.5). */
    str_t if_range = http_request_header(req, "if-range");
    if (if_range.ptr && if_range.len < sizeof d->if_range)
        memcpy(d->if_range, if_range.ptr, if_range.len);
    str_t inm = http_request_header(req, "if-none-match");
    if (inm.ptr && inm.len < sizeof d->inm) memcpy(d->inm, inm.ptr, inm.len);
    http_conn_set_abort(hc, download_aborted, d);
    d->req.op = STORE_OP_FILE_GET;
    d->req.done = file_found;
    d->req.arena.ptr = d->arena;
    d->req.arena.cap = sizeof d->arena;
    d->req.u.file_get.id = str_make(d->id, ID_LEN);
    d->req.u.file_get.requester = str_cstr(d->user.id);
    if (store_submit(fa->store, &d->req) != 0) {
        api_respond_error(hc, 503, "INTERNAL", "the server is shutting down");
        download_free(d);
        return HTTP_DONE;
    }
    d->pending = true;
    return HTTP_DEFERRED;
}

/* ---- routing ---- */

int files_api_handle(http_conn_t *hc, const http_request_t *req, str_t body, void *arg)
{
    files_api_t *fa = arg;
    if (api_cors(fa->api, hc, req)) return HTTP_DONE;
    str_t path = req->path;
    static const char base[] = "/api/chat/files";
    str_t rest = str_make(path.ptr + sizeof base - 1, path.len - (sizeof base - 1));
    if (rest.len && rest.ptr[0] == '/') rest = str_make(rest.ptr + 1, rest.len - 1);
    if (rest.len == 0) {
        if (!str_eq_cstr(req->method, "POST")) {
            api_method_not_allowed(hc, "POST");
            return HTTP_DONE;
        }
        return upload_start(fa, hc, req);
    }
    if (memchr(rest.ptr, '/', rest.len) || (path.ptr[sizeof base - 1] != '/')) {
        api_respond_error(hc, 404, "NOT_FOUND", "no such endpoint");
        return HTTP_DONE;
    }
    if (!str_eq_cstr(req->method, "GET") && !str_eq_cstr(req->method, "HEAD")) {
        api_method_not_allowed(hc, "GET, HEAD");
        return HTTP_DONE;
    }
    return download_start(fa, hc, req, rest);
}

files_api_t *files_api_new(uv_loop_t *loop, api_t *api, store_t *store,
                           const files_api_options_t *opts, char *err, size_t cap)
{
    files_api_t *fa = calloc(1, sizeof *fa);
    if (!fa) return NULL;
    fa->loop = loop;
    fa->api = api;
    fa->store = store;
    fa->opts = *opts;
    snprintf(fa->dir, sizeof fa->dir, "%s", opts->dir);
    snprintf(fa->allow, sizeof fa->allow, "%s", opts->allow ? opts->allow : "");
    if (files_init(fa->dir, err, cap) != 0 ||
        limiter_init(&fa->upload_limit, opts->uploads_per_min / 60.0,
                     opts->uploads_per_min < 10 ? opts->uploads_per_min : 10, 0) != 0) {
        free(fa);
        return NULL;
    }
    fa->opts.dir = fa->dir;
    return fa;
}

void files_api_free(files_api_t *fa)
{
    if (!fa) return;
    limiter_free(&fa->upload_limit);
    free(fa);
}
