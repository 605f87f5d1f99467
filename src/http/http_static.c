/* Static files of the web client, loaded into memory at start and served with safe paths,
 * content types, cache policy, precompressed variants and a same-origin CSP. */
#include "http/http_static.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

typedef struct {
    char *name; /* relative, '/'-separated, e.g. "index.html" */
    char *data;
    size_t len;
    char *gz; /* the precompressed "<name>.gz", or NULL */
    size_t gz_len;
    char etag[24], gz_etag[27];
    const char *mime;
    bool hashed;
    bool dropped; /* a .gz that became another file's variant */
} static_file_t;

struct http_static {
    char *root;
    static_file_t *files; /* sorted by name */
    size_t count, cap;
    size_t total;
    bool missing; /* the root could not be read: say so in 404s */
};

/* ---- pure parts ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int http_static_normalize(str_t path, char *out, size_t cap)
{
    if (!path.ptr || path.len == 0 || path.ptr[0] != '/' || cap == 0) return HTTP_STATIC_E_BAD;
    size_t o = 0;
    size_t i = 0;
    bool trailing = false;
    while (i < path.len) {
        /* One segment: decode it into a scratch area at out+o, then decide whether it stays. */
        while (i < path.len && path.ptr[i] == '/') i++;
        if (i >= path.len) {
            trailing = true;
            break;
        }
        size_t start = o;
        if (o > 0) {
            if (o + 1 >= cap) return HTTP_STATIC_E_TOO_LONG;
            out[o++] = '/';
        }
        size_t seg = o;
        while (i < path.len && path.ptr[i] != '/') {
            unsigned char ch = (unsigned char)path.ptr[i];
            if (ch == '%') {
                if (i + 2 >= path.len) return HTTP_STATIC_E_BAD;
                int hi = hexval(path.ptr[i + 1]), lo = hexval(path.ptr[i + 2]);
                if (hi < 0 || lo < 0) return HTTP_STATIC_E_BAD;
                ch = (unsigned char)(hi * 16 + lo);
                i += 3;
            } else {
                i++;
            }
            /* An escaped '/' would let one segment smuggle another ("..%2f"): refuse it. */
            if (ch < 0x20 || ch == 0x7f || ch == '\\' || ch == '/') return HTTP_STATIC_E_BAD;
            if (o + 1 >= cap) return HTTP_STATIC_E_TOO_LONG;
            out[o++] = (char)ch;
        }
        size_t seg_len = o - seg;
        if (seg_len == 1 && out[seg] == '.') {
            o = start; /* "." names the directory it is in */
            trailing = i >= path.len;
            continue;
        }
        if (seg_len == 2 && out[seg] == '.' && out[seg + 1] == '.') return HTTP_STATIC_E_BAD;
        trailing = false;
    }
    if (trailing && o > 0) {
        if (o + 1 >= cap) return HTTP_STATIC_E_TOO_LONG;
        out[o++] = '/';
    }
    out[o] = '\0';
    return (int)o;
}

static str_t basename_of(str_t name)
{
    size_t i = name.len;
    while (i > 0 && name.ptr[i - 1] != '/') i--;
    return str_make(name.ptr + i, name.len - i);
}

static str_t extension_of(str_t name)
{
    str_t base = basename_of(name);
    size_t i = base.len;
    while (i > 0 && base.ptr[i - 1] != '.') i--;
    if (i == 0) return STR_NULL;
    return str_make(base.ptr + i, base.len - i);
}

const char *http_static_mime(str_t name)
{
    static const struct {
        const char *ext, *mime;
    } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"json", "application/json"},
        {"map", "application/json"},
        {"webmanifest", "application/manifest+json"},
        {"txt", "text/plain; charset=utf-8"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"avif", "image/avif"},
        {"ico", "image/x-icon"},
        {"woff", "font/woff"},
        {"woff2", "font/woff2"},
        {"ttf", "font/ttf"},
        {"otf", "font/otf"},
        {"wasm", "application/wasm"},
        {"pdf", "application/pdf"},
        {"xml", "application/xml"},
        {"gz", "application/gzip"},
    };
    str_t ext = extension_of(name);
    if (ext.ptr)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (str_ieq_cstr(ext, types[i].ext)) return types[i].mime;
    return "application/octet-stream";
}

bool http_static_is_hashed(str_t name)
{
    str_t base = basename_of(name);
    /* The part between the last two dots: "app.4KXOZT2P.js" -> "4KXOZT2P". */
    size_t last = base.len;
    while (last > 0 && base.ptr[last - 1] != '.') last--;
    if (last < 2) return false;
    size_t end = last - 1, start = end;
    while (start > 0 && base.ptr[start - 1] != '.') start--;
    if (start == 0) return false; /* "4KXOZT2P.js": no name before the hash */
    size_t n = end - start;
    if (n < 8 || n > 64) return false;
    bool digit = false, lower = false;
    for (size_t i = start; i < end; i++) {
        char c = base.ptr[i];
        if (c >= '0' && c <= '9')
            digit = true;
        else if (c >= 'a' && c <= 'z')
            lower = true;
        else if (!(c >= 'A' && c <= 'Z'))
            return false;
    }
    /* esbuild's base32 hashes may have no digit but are upper case; a lower-case word with no
     * digit ("app.fallback.js") is a name, not a hash. */
    return digit || !lower;
}

/* q-value of one Accept-Encoding element's parameters ("; q=0.5"); 1000 = 1.0. */
static int parse_q(str_t params)
{
    size_t i = 0;
    while (i < params.len) {
        while (i < params.len &&
               (params.ptr[i] == ';' || params.ptr[i] == ' ' || params.ptr[i] == '\t'))
            i++;
        size_t start = i;
        while (i < params.len && params.ptr[i] != ';') i++;
        str_t p = str_make(params.ptr + start, i - start);
        while (p.len && (p.ptr[p.len - 1] == ' ' || p.ptr[p.len - 1] == '\t')) p.len--;
        if (p.len >= 2 && (p.ptr[0] == 'q' || p.ptr[0] == 'Q')) {
            size_t j = 1;
            while (j < p.len && (p.ptr[j] == ' ' || p.ptr[j] == '\t')) j++;
            if (j >= p.len || p.ptr[j] != '=') continue;
            j++;
            while (j < p.len && (p.ptr[j] == ' ' || p.ptr[j] == '\t')) j++;
            if (j >= p.len) return 0;
            if (p.ptr[j] == '1') return 1000;
            if (p.ptr[j] != '0') return 0; /* malformed: treat as not acceptable */
            int q = 0, scale = 100;
            j++;
            if (j < p.len && p.ptr[j] == '.') {
                j++;
                for (; j < p.len && scale > 0 && p.ptr[j] >= '0' && p.ptr[j] <= '9'; j++) {
                    q += (p.ptr[j] - '0') * scale;
                    scale /= 10;
                }
            }
            return q;
        }
    }
    return 1000;
}

bool http_static_accepts_gzip(str_t ae)
{
    int gzip_q = -1, star_q = -1;
    size_t i = 0;
    while (ae.ptr && i < ae.len) {
        while (i < ae.len && (ae.ptr[i] == ',' || ae.ptr[i] == ' ' || ae.ptr[i] == '\t')) i++;
        size_t start = i;
        while (i < ae.len && ae.ptr[i] != ',') i++;
        str_t el = str_make(ae.ptr + start, i - start);
        size_t tok = 0;
        while (tok < el.len && el.ptr[tok] != ';' && el.ptr[tok] != ' ' && el.ptr[tok] != '\t')
            tok++;
        str_t coding = str_make(el.ptr, tok);
        if (coding.len == 0) continue;
        int q = parse_q(str_make(el.ptr + tok, el.len - tok));
        if (str_ieq_cstr(coding, "gzip") || str_ieq_cstr(coding, "x-gzip")) {
            if (q > gzip_q) gzip_q = q;
        } else if (str_eq_cstr(coding, "*")) {
            if (q > star_q) star_q = q;
        }
    }
    if (gzip_q >= 0) return gzip_q > 0;
    return star_q > 0;
}

bool http_static_is_route(str_t name)
{
    str_t base = basename_of(name);
    return memchr(base.ptr ? base.ptr : "", '.', base.len) == NULL;
}

/* ---- loading ---- */

static void make_etag(const char *data, size_t len, char *out, size_t cap, const char *suffix)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: a change detector, not a security hash */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)data[i];
        h *= 1099511628211ULL;
    }
    snprintf(out, cap, "\"%016llx%s\"", (unsigned long long)h, suffix);
}

static int read_whole(int dirfd, const char *name, size_t size, char **out)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    char *data = malloc(size ? size : 1);
    size_t got = 0;
    while (data && got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    if (!data || got != size) {
        free(data);
        return -1;
    }
    *out = data;
    return 0;
}

static int add_file(http_static_t *st, const char *rel, char *data, size_t len)
{
    if (st->count == st->cap) {
        size_t ncap = st->cap ? st->cap * 2 : 16;
        static_file_t *nf = realloc(st->files, ncap * sizeof *nf);
        if (!nf) return -1;
        st->files = nf;
        st->cap = ncap;
    }
    static_file_t *f = &st->files[st->count];
    memset(f, 0, sizeof *f);
    f->name = strdup(rel);
    if (!f->name) return -1;
    f->data = data;
    f->len = len;
    st->count++;
    return 0;
}

/* Walks dir (an open directory fd, consumed) whose path relative to the root is prefix. */
static void load_dir(http_static_t *st, int dirfd, const char *prefix, int depth)
{
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ".", "..", and hidden files are never served */
        char rel[HTTP_STATIC_PATH_MAX];
        int n = snprintf(rel, sizeof rel, "%s%s%s", prefix, *prefix ? "/" : "", e->d_name);
        if (n < 0 || (size_t)n >= sizeof rel) continue;
        struct stat sb;
        if (fstatat(dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) continue;
        if (S_ISDIR(sb.st_mode)) {
            if (depth >= HTTP_STATIC_MAX_DEPTH) continue;
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) load_dir(st, sub, rel, depth + 1);
            continue;
        }
        if (!S_ISREG(sb.st_mode)) continue;
        if (st->count >= HTTP_STATIC_MAX_FILES || sb.st_size > HTTP_STATIC_MAX_FILE ||
            st->total + (size_t)sb.st_size > HTTP_STATIC_MAX_TOTAL) {
            log_warn("web root %s: skipping %s (over the static file limits)", st->root, rel);
            continue;
        }
        char *data;
        if (read_whole(dirfd, e->d_name, (size_t)sb.st_size, &data) < 0) {
            log_warn("web root %s: cannot read %s", st->root, rel);
            continue;
        }
        if (add_file(st, rel, data, (size_t)sb.st_size) < 0) {
            free(data);
            continue;
        }
        st->total += (size_t)sb.st_size;
    }
    closedir(d);
}

static int cmp_files(const void *a, const void *b)
{
    return strcmp(((const static_file_t *)a)->name, ((const static_file_t *)b)->name);
}

static static_file_t *find(const http_static_t *st, const char *name)
{
    static_file_t key = {.name = (char *)name};
    return st->count ? bsearch(&key, st->files, st->count, sizeof key, cmp_files) : NULL;
}

/* Pairs "x.gz" with "x": the .gz becomes x's variant and stops being a file of its own. */
static void pair_gzip(http_static_t *st)
{
    size_t w = 0;
    for (size_t i = 0; i < st->count; i++) {
        static_file_t *f = &st->files[i];
        size_t n = strlen(f->name);
        if (n > 3 && !strcmp(f->name + n - 3, ".gz")) {
            char key[HTTP_STATIC_PATH_MAX];
            snprintf(key, sizeof key, "%.*s", (int)(n - 3), f->name);
            static_file_t *orig = find(st, key);
            if (orig && !orig->gz) {
                orig->gz = f->data;
                orig->gz_len = f->len;
                f->data = NULL;
                f->dropped = true; /* removed below: find() still needs the array sorted */
            }
        }
    }
    for (size_t i = 0; i < st->count; i++) {
        if (st->files[i].dropped)
            free(st->files[i].name);
        else
            st->files[w++] = st->files[i];
    }
    st->count = w;
}

http_static_t *http_static_new(const char *root)
{
    http_static_t *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->root = strdup(root);
    if (!st->root) {
        free(st);
        return NULL;
    }
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        log_warn("web root %s: %s (the web client is not served; build it with web/build.sh)", root,
                 strerror(errno));
        st->missing = true;
        return st;
    }
    load_dir(st, fd, "", 0);
    /* Sorted for bsearch; pairing needs the sort, and removing pairs keeps it. */
    qsort(st->files, st->count, sizeof *st->files, cmp_files);
    pair_gzip(st);
    for (size_t i = 0; i < st->count; i++) {
        static_file_t *f = &st->files[i];
        str_t name = str_cstr(f->name);
        f->mime = http_static_mime(name);
        f->hashed = http_static_is_hashed(name);
        make_etag(f->data, f->len, f->etag, sizeof f->etag, "");
        if (f->gz) make_etag(f->data, f->len, f->gz_etag, sizeof f->gz_etag, "-gz");
    }
    if (!find(st, "index.html")) {
        log_warn("web root %s has no index.html (build the client with web/build.sh)", root);
        st->missing = st->count == 0;
    }
    log_info("web root %s: %zu files, %zu bytes", root, st->count, st->total);
    return st;
}

void http_static_free(http_static_t *st)
{
    if (!st) return;
    for (size_t i = 0; i < st->count; i++) {
        free(st->files[i].name);
        free(st->files[i].data);
        free(st->files[i].gz);
    }
    free(st->files);
    free(st->root);
    free(st);
}

size_t http_static_count(const http_static_t *st)
{
    return st ? st->count : 0;
}

/* ---- serving ---- */

/* The Host header, if it is a plain host[:port] that can go into a header value as is. */
static bool host_is_safe(str_t host)
{
    if (!host.ptr || host.len == 0 || host.len > 255) return false;
    for (size_t i = 0; i < host.len; i++) {
        char c = host.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return false;
    }
    return true;
}

/* Whether If-None-Match lists etag (or is "*"). Weak comparison, as RFC 9110 asks for GET. */
static bool etag_matches(str_t inm, const char *etag)
{
    if (!inm.ptr) return false;
    size_t el = strlen(etag);
    size_t i = 0;
    while (i < inm.len) {
        while (i < inm.len && (inm.ptr[i] == ',' || inm.ptr[i] == ' ' || inm.ptr[i] == '\t')) i++;
        size_t start = i;
        while (i < inm.len && inm.ptr[i] != ',') i++;
        str_t t = str_make(inm.ptr + start, i - start);
        while (t.len && (t.ptr[t.len - 1] == ' ' || t.ptr[t.len - 1] == '\t')) t.len--;
        if (t.len == 1 && t.ptr[0] == '*') return true;
        if (t.len >= 2 && t.ptr[0] == 'W' && t.ptr[1] == '/') t = str_make(t.ptr + 2, t.len - 2);
        if (t.len == el && memcmp(t.ptr, etag, el) == 0) return true;
    }
    return false;
}

static void respond_text(http_conn_t *hc, int status, const char *extra, const char *text)
{
    char hdr[256];
    snprintf(hdr, sizeof hdr, "X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\n%s",
             extra ? extra : "");
    http_respond(hc, status, "text/plain; charset=utf-8", hdr, text, strlen(text));
}

int http_static_handle(http_conn_t *hc, const http_request_t *req, str_t body, void *arg)
{
    (void)body;
    http_static_t *st = arg;
    bool head = str_eq_cstr(req->method, "HEAD");
    if (!head && !str_eq_cstr(req->method, "GET")) {
        respond_text(hc, 405, "Allow: GET, HEAD\r\n", "method not allowed\n");
        return HTTP_DONE;
    }
    char name[HTTP_STATIC_PATH_MAX + 16];
    int n = http_static_normalize(req->path, name, HTTP_STATIC_PATH_MAX);
    if (n == HTTP_STATIC_E_BAD) {
        respond_text(hc, 400, NULL, "bad path\n");
        return HTTP_DONE;
    }
    if (n < 0) {
        respond_text(hc, 404, NULL, "not found\n");
        return HTTP_DONE;
    }
    /* A directory ("/") is its index.html. The client routes with the URL's hash, so any
     * other unknown path is a 404 like the rest of the server's (error JSON). */
    if (n == 0 || name[n - 1] == '/') memcpy(name + n, "index.html", sizeof "index.html");
    static_file_t *f = find(st, name);
    if (!f) {
        http_respond_error(hc, 404, "NOT_FOUND",
                           st->missing ? "the web client is not built: run web/build.sh (or make "
                                         "run)"
                                       : "no such path");
        return HTTP_DONE;
    }

    bool gz = f->gz && http_static_accepts_gzip(http_request_header(req, "Accept-Encoding"));
    const char *etag = gz ? f->gz_etag : f->etag;
    str_t host = http_request_header(req, "Host");
    if (!host_is_safe(host)) host = STR_LIT("");
    const char *ws = host.len ? " ws://" : "", *wss = host.len ? " wss://" : "";
    /* CSP: only our own origin. 'self' covers ws:/wss: of the same host in current browsers;
     * the explicit ws://host entries are for older ones. Inline styles are needed by nothing. */
    char hdr[1536];
    int hn =
        snprintf(hdr, sizeof hdr,
                 "Cache-Control: %s\r\n"
                 "ETag: %s\r\n"
                 "%s%s"
                 "X-Content-Type-Options: nosniff\r\n"
                 "Referrer-Policy: same-origin\r\n"
                 "Content-Security-Policy: default-src 'self'; script-src 'self'; "
                 "style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
                 "font-src 'self'; connect-src 'self'%s%.*s%s%.*s; object-src 'none'; "
                 "base-uri 'self'; form-action 'self'; frame-ancestors 'self'\r\n",
                 f->hashed ? "public, max-age=31536000, immutable" : "no-cache", etag,
                 f->gz ? "Vary: Accept-Encoding\r\n" : "", gz ? "Content-Encoding: gzip\r\n" : "",
                 ws, (int)host.len, host.ptr, wss, (int)host.len, host.ptr);
    if (hn < 0 || (size_t)hn >= sizeof hdr) {
        respond_text(hc, 500, NULL, "internal error\n");
        return HTTP_DONE;
    }
    if (etag_matches(http_request_header(req, "If-None-Match"), etag)) {
        http_respond(hc, 304, NULL, hdr, NULL, 0);
        return HTTP_DONE;
    }
    const char *data = gz ? f->gz : f->data;
    size_t len = gz ? f->gz_len : f->len;
    if (head) {
        /* The headers of the GET, with its length, and no body. */
        http_respond_start(hc, 200, f->mime, hdr, len);
        http_respond_end(hc);
        return HTTP_DONE;
    }
    http_respond(hc, 200, f->mime, hdr, data, len);
    return HTTP_DONE;
}
