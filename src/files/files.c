/* Upload storage: name sanitizing, libmagic sniffing with OOXML/script fixes, temp-file writer. */
#include "files/files.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <magic.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/randid.h"

/* ---- names ---- */

enum { FILES_EXT_MAX = 16 };

/* Decodes one UTF-8 sequence (RFC 3629: no overlongs, surrogates or values past U+10FFFF).
 * Returns the bytes consumed; an invalid sequence consumes one byte and yields U+FFFD. */
static size_t files_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t need;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3, v = c & 0x07, min = 0x10000;
    } else {
        goto invalid;
    }
    if (n < need + 1) goto invalid;
    for (size_t k = 1; k <= need; k++) {
        if ((s[k] & 0xC0) != 0x80) goto invalid;
        v = v << 6 | (s[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) goto invalid;
    *cp = v;
    return need + 1;
invalid:
    *cp = 0xFFFD;
    return 1;
}

static bool files_cp_is_space(uint32_t cp)
{
    return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* Characters that are invisible or reorder text: a name must look like what it is. */
static bool files_cp_is_dropped(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0xAD || cp == 0x061C ||
           (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2060 && cp <= 0x2069) || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB);
}

typedef struct {
    char *out;
    size_t max, len;
    bool dot_last, space_pending, full;
} files_name_w_t;

static void files_name_put(files_name_w_t *w, uint32_t cp)
{
    if (w->full) return;
    if (files_cp_is_space(cp)) { /* before the control check: tab and CR/LF are spaces here */
        w->space_pending = w->len > 0;
        return;
    }
    if (files_cp_is_dropped(cp)) return;
    if (cp == '.' && (w->len == 0 || (w->dot_last && !w->space_pending))) return;
    char enc[4];
    size_t n;
    if (cp < 0x80) {
        enc[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        enc[0] = (char)(0xC0 | cp >> 6), enc[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        enc[0] = (char)(0xE0 | cp >> 12), enc[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        enc[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        enc[0] = (char)(0xF0 | cp >> 18), enc[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        enc[2] = (char)(0x80 | (cp >> 6 & 0x3F)), enc[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    size_t sp = w->space_pending ? 1 : 0;
    if (w->len + sp + n > w->max) {
        w->full = true; /* stop here: later characters must not fill the gap */
        return;
    }
    if (sp) w->out[w->len++] = ' ';
    memcpy(w->out + w->len, enc, n);
    w->len += n;
    w->space_pending = false;
    w->dot_last = cp == '.';
}

/* Cleans s[0..n) into out (at most max bytes); returns the length, *full when cut. */
static size_t files_name_clean(const char *s, size_t n, char *out, size_t max, bool *full)
{
    files_name_w_t w = {out, max, 0, false, false, false};
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n && !w.full;) {
        uint32_t cp;
        i += files_utf8_next(u + i, n - i, &cp);
        files_name_put(&w, cp);
    }
    *full = w.full;
    return w.len;
}

int files_sanitize_name(const char *raw, size_t len, char *out, size_t cap)
{
    if (out == NULL || cap < 5) return FILES_ERR_INVALID;
    if (raw == NULL) len = 0;
    size_t max = cap - 1 < FILES_NAME_MAX ? cap - 1 : FILES_NAME_MAX;
    size_t b = len;
    while (b > 0 && raw[b - 1] != '/' && raw[b - 1] != '\\') b--;
    const char *c = raw ? raw + b : "";
    size_t n = len - b;

    bool full;
    size_t w = files_name_clean(c, n, out, max, &full);
    if (full) {
        /* Keep the extension: it is what tells a user (and their OS) what the file is. */
        size_t d = n;
        while (d > 0 && c[d - 1] != '.') d--;
        if (d > 1 && n - d >= 1 && n - d <= FILES_EXT_MAX) {
            char ext[FILES_EXT_MAX + 1];
            bool efull;
            size_t el = files_name_clean(c + d, n - d, ext, FILES_EXT_MAX, &efull);
            if (el > 0 && !efull && el + 2 < max) {
                size_t sw = files_name_clean(c, d - 1, out, max - 1 - el, &full);
                while (sw > 0 && (out[sw - 1] == '.' || out[sw - 1] == ' ')) sw--;
                if (sw > 0) {
                    out[sw++] = '.';
                    memcpy(out + sw, ext, el);
                    w = sw + el;
                }
            }
        }
    }
    if (w == 0) {
        memcpy(out, "file", 4);
        w = 4;
    }
    out[w] = '\0';
    return (int)w;
}

/* ---- zip (OOXML) ---- */

static uint32_t files_le16(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t files_le32(const unsigned char *p)
{
    return files_le16(p) | files_le16(p + 2) << 16;
}

int files_zip_find_cd(const unsigned char *tail, size_t tail_len, uint64_t file_size,
                      uint64_t *cd_off, uint64_t *cd_len)
{
    if (tail_len < 22 || tail_len > file_size) return -1;
    /* The record is the last thing in the file; its comment length says where it starts. */
    for (size_t i = tail_len - 22 + 1; i-- > 0;) {
        const unsigned char *e = tail + i;
        if (e[0] != 'P' || e[1] != 'K' || e[2] != 5 || e[3] != 6) continue;
        if (i + 22 + files_le16(e + 20) != tail_len) continue;
        if (files_le16(e + 4) != 0 || files_le16(e + 6) != 0) return -1; /* multi-disk */
        uint64_t size = files_le32(e + 12), off = files_le32(e + 16);
        if (size == 0xFFFFFFFFu || off == 0xFFFFFFFFu || files_le16(e + 10) == 0xFFFF) return -1;
        uint64_t eocd = file_size - tail_len + i;
        if (off > eocd || size > eocd - off) return -1;
        *cd_off = off;
        *cd_len = size;
        return 0;
    }
    return -1;
}

static bool files_name_is(const unsigned char *name, size_t n, const char *want)
{
    size_t wl = strlen(want);
    return n == wl && memcmp(name, want, n) == 0;
}

static bool files_name_ends(const unsigned char *name, size_t n, const char *suffix)
{
    size_t sl = strlen(suffix);
    return n >= sl && memcmp(name + n - sl, suffix, sl) == 0;
}

const char *files_zip_ooxml_mime(const unsigned char *cd, size_t len)
{
    bool types = false, word = false, xl = false, ppt = false, vba = false;
    size_t pos = 0;
    while (pos < len) {
        if (len - pos < 46) return NULL;
        const unsigned char *r = cd + pos;
        if (r[0] != 'P' || r[1] != 'K' || r[2] != 1 || r[3] != 2) return NULL;
        size_t nl = files_le16(r + 28), el = files_le16(r + 30), cl = files_le16(r + 32);
        if (len - pos - 46 < nl + el + cl) return NULL;
        const unsigned char *name = r + 46;
        types |= files_name_is(name, nl, "[Content_Types].xml");
        word |= files_name_is(name, nl, "word/document.xml");
        xl |= files_name_is(name, nl, "xl/workbook.xml");
        ppt |= files_name_is(name, nl, "ppt/presentation.xml");
        vba |= files_name_ends(name, nl, "vbaProject.bin");
        pos += 46 + nl + el + cl;
    }
    if (!types) return NULL;
    if (word) {
        return vba ? "application/vnd.ms-word.document.macroEnabled.12"
                   : "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    }
    if (xl) {
        return vba ? "application/vnd.ms-excel.sheet.macroEnabled.12"
                   : "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    }
    if (ppt) {
        return vba ? "application/vnd.ms-powerpoint.presentation.macroEnabled.12"
                   : "application/vnd.openxmlformats-officedocument.presentationml.presentation";
    }
    return NULL;
}

/* ---- sniffing ---- */

static pthread_key_t files_magic_key;
static pthread_once_t files_magic_once = PTHREAD_ONCE_INIT;
static int files_magic_key_rc;

static void files_magic_close(void *m)
{
    magic_close(m);
}

static void files_magic_key_init(void)
{
    files_magic_key_rc = pthread_key_create(&files_magic_key, files_magic_close);
}

/* libmagic handles are not thread-safe; one per thread avoids a lock around every sniff. */
static magic_t files_magic(void)
{
    if (pthread_once(&files_magic_once, files_magic_key_init) != 0 || files_magic_key_rc != 0) {
        return NULL;
    }
    magic_t m = pthread_getspecific(files_magic_key);
    if (m) return m;
    m = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);
    if (m == NULL) return NULL;
    if (magic_load(m, NULL) != 0 || pthread_setspecific(files_magic_key, m) != 0) {
        magic_close(m);
        return NULL;
    }
    return m;
}

/* Content to sniff: a buffer, or a file descriptor read with pread. */
typedef struct {
    const unsigned char *buf;
    int fd;
    uint64_t size;
} files_src_t;

static int files_read_at(const files_src_t *s, uint64_t off, void *dst, size_t n)
{
    if (off > s->size || n > s->size - off) return -1;
    if (s->buf) {
        memcpy(dst, s->buf + off, n);
        return 0;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(s->fd, (char *)dst + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

/* The OOXML type of a zip source, or NULL. */
static const char *files_ooxml(const files_src_t *s)
{
    size_t tl = s->size < FILES_ZIP_TAIL_MAX ? (size_t)s->size : FILES_ZIP_TAIL_MAX;
    unsigned char *tail = NULL, *cd = NULL;
    const char *mime = NULL;
    uint64_t off, len;
    tail = malloc(tl ? tl : 1);
    if (!tail || files_read_at(s, s->size - tl, tail, tl) != 0) goto done;
    if (files_zip_find_cd(tail, tl, s->size, &off, &len) != 0 || len > FILES_ZIP_CD_MAX) goto done;
    cd = malloc(len ? (size_t)len : 1);
    if (!cd || files_read_at(s, off, cd, (size_t)len) != 0) goto done;
    mime = files_zip_ooxml_mime(cd, (size_t)len);
done:
    free(tail);
    free(cd);
    return mime;
}

static int files_copy_mime(const char *mime, char *out, size_t cap)
{
    size_t n = strlen(mime);
    if (out == NULL || n >= cap) return FILES_ERR_INVALID;
    memcpy(out, mime, n + 1);
    return 0;
}

static bool files_is_ooxml_or_zip(const char *mime)
{
    return strcmp(mime, "application/zip") == 0 ||
           strncmp(mime, "application/vnd.openxmlformats-officedocument.", 46) == 0;
}

static int files_sniff_src(const files_src_t *s, char *out, size_t cap)
{
    unsigned char head[2];
    bool shebang =
        s->size >= 2 && files_read_at(s, 0, head, 2) == 0 && head[0] == '#' && head[1] == '!';
    magic_t m = files_magic();
    if (m == NULL) return FILES_ERR_SNIFF;
    const char *mime;
    if (s->buf) {
        mime = magic_buffer(m, s->buf, (size_t)s->size);
    } else {
        if (lseek(s->fd, 0, SEEK_SET) != 0) return FILES_ERR_IO;
        mime = magic_descriptor(m, s->fd);
    }
    if (mime == NULL) return FILES_ERR_SNIFF;
    if (shebang) {
        /* Whatever libmagic made of it, an executable script is never plain text. */
        return files_copy_mime(strncmp(mime, "text/x-", 7) == 0 ? mime : "text/x-script", out, cap);
    }
    if (files_is_ooxml_or_zip(mime)) {
        /* Our own reading of the central directory decides, both ways: libmagic guesses from
         * the first local headers only (it calls a zip whose first entry is "word/x" a docx). */
        const char *ooxml = files_ooxml(s);
        mime = ooxml ? ooxml : "application/zip";
    }
    return files_copy_mime(mime, out, cap);
}

int files_sniff_buffer(const void *buf, size_t len, char *out, size_t cap)
{
    files_src_t s = {buf ? buf : (const void *)"", -1, buf ? len : 0};
    return files_sniff_src(&s, out, cap);
}

static int files_sniff_fd(int fd, char *out, size_t cap)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return FILES_ERR_IO;
    files_src_t s = {NULL, fd, (uint64_t)st.st_size};
    return files_sniff_src(&s, out, cap);
}

int files_sniff_path(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return FILES_ERR_IO;
    int rc = files_sniff_fd(fd, out, cap);
    close(fd);
    return rc;
}

bool files_mime_allowed(const char *mime, const char *allow)
{
    if (mime == NULL || *mime == '\0') return false;
    if (allow == NULL) allow = FILES_DEFAULT_ALLOW;
    size_t ml = strlen(mime);
    for (const char *p = allow; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *q = e;
        while (q > p && (q[-1] == ' ' || q[-1] == '\t')) q--;
        size_t n = (size_t)(q - p);
        if (n == ml && strncasecmp(p, mime, n) == 0) return true;
        /* "type/" + "*": the type and its slash must match */
        if (n >= 3 && p[n - 1] == '*' && p[n - 2] == '/' && ml > n - 1 &&
            strncasecmp(p, mime, n - 1) == 0) {
            return true;
        }
        p = e;
    }
    return false;
}

bool files_mime_is_image(const char *mime)
{
    static const char *const images[] = {"image/jpeg", "image/png", "image/gif", "image/webp"};
    for (size_t i = 0; mime && i < sizeof(images) / sizeof(images[0]); i++) {
        if (strcasecmp(mime, images[i]) == 0) return true;
    }
    return false;
}

/* ---- storage ---- */

struct files_upload {
    int fd;
    int error; /* sticky; the temporary file is gone once set */
    uint64_t max_size, size;
    EVP_MD_CTX *sha;
    char *dir;
    char tmp_path[];
};

static void files_set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (err == NULL || cap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static int files_mkdir(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* Makes a directory durable in its parent after an entry in it was created or renamed. */
static int files_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int files_init(const char *dir, char *err, size_t err_cap)
{
    char path[PATH_MAX];
    if (dir == NULL || *dir == '\0' || strlen(dir) + 5 >= sizeof(path)) {
        files_set_err(err, err_cap, "invalid files directory");
        return FILES_ERR_INVALID;
    }
    /* mkdir -p: each prefix of dir, then dir/tmp */
    snprintf(path, sizeof(path), "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int rc = files_mkdir(path);
        *p = '/';
        if (rc != 0) goto fail;
    }
    if (files_mkdir(path) != 0) goto fail;
    snprintf(path, sizeof(path), "%s/tmp", dir);
    if (files_mkdir(path) != 0) goto fail;

    DIR *d = opendir(path);
    if (d == NULL) goto fail;
    struct dirent *de;
    size_t removed = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        /* Only what files_upload_begin makes: nothing else in tmp is ours to delete. */
        size_t nl = strlen(de->d_name);
        if (nl < 6 || strcmp(de->d_name + nl - 5, ".part") != 0) continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0) removed++;
    }
    closedir(d);
    if (removed) log_info("files: removed %zu unfinished upload(s) from %s", removed, path);
    return 0;
fail:
    files_set_err(err, err_cap, "%s: %s", path, strerror(errno));
    return FILES_ERR_IO;
}

files_upload_t *files_upload_begin(const char *dir, uint64_t max_size, char *err, size_t err_cap)
{
    if (dir == NULL || *dir == '\0') {
        files_set_err(err, err_cap, "invalid files directory");
        return NULL;
    }
    size_t dl = strlen(dir);
    size_t pl = dl + sizeof("/tmp/") + 22 + sizeof(".part");
    files_upload_t *u = calloc(1, sizeof(*u) + pl);
    if (u == NULL || (u->dir = strdup(dir)) == NULL || (u->sha = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestInit_ex(u->sha, EVP_sha256(), NULL) != 1) {
        files_set_err(err, err_cap, "out of memory");
        goto fail;
    }
    u->fd = -1;
    u->max_size = max_size;
    for (int attempt = 0; attempt < 8 && u->fd < 0; attempt++) {
        char rnd[23];
        randid_generate(rnd, 22);
        snprintf(u->tmp_path, pl, "%s/tmp/%s.part", dir, rnd);
        u->fd = open(u->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (u->fd < 0 && errno == ENOENT) {
            /* dir/tmp missing (files_init not called, or removed): create it once */
            char tmpdir[PATH_MAX];
            snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", dir);
            if (files_mkdir(dir) != 0 || files_mkdir(tmpdir) != 0) break;
        } else if (u->fd < 0 && errno != EEXIST) {
            break;
        }
    }
    if (u->fd < 0) {
        files_set_err(err, err_cap, "%s: %s", u->tmp_path, strerror(errno));
        goto fail;
    }
    return u;
fail:
    if (u) {
        EVP_MD_CTX_free(u->sha);
        free(u->dir);
        free(u);
    }
    return NULL;
}

/* Drops the temporary file: after an error nothing of the upload may stay on disk. */
static int files_upload_fail(files_upload_t *u, int err)
{
    if (u->fd >= 0) {
        unlink(u->tmp_path);
        close(u->fd);
        u->fd = -1;
    }
    u->error = err;
    return err;
}

int files_upload_write(files_upload_t *u, const void *data, size_t len)
{
    if (u->error) return u->error;
    if (len > u->max_size - u->size) return files_upload_fail(u, FILES_ERR_TOO_LARGE);
    const char *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(u->fd, p + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return files_upload_fail(u, FILES_ERR_IO);
        done += (size_t)w;
    }
    if (EVP_DigestUpdate(u->sha, data, len) != 1) return files_upload_fail(u, FILES_ERR_IO);
    u->size += len;
    return 0;
}

uint64_t files_upload_size(const files_upload_t *u)
{
    return u->size;
}

static void files_upload_free(files_upload_t *u)
{
    EVP_MD_CTX_free(u->sha);
    free(u->dir);
    free(u);
}

void files_upload_abort(files_upload_t *u)
{
    if (u == NULL) return;
    files_upload_fail(u, FILES_ERR_IO);
    files_upload_free(u);
}

int files_path(const char *dir, const char *id, char *out, size_t cap)
{
    if (dir == NULL || id == NULL || !id_valid(str_cstr(id))) return FILES_ERR_INVALID;
    int n = snprintf(out, cap, "%s/%.2s/%s", dir, id + ID_LEN - 2, id);
    return n < 0 || (size_t)n >= cap ? FILES_ERR_INVALID : n;
}

int files_remove(const char *dir, const char *id)
{
    char path[PATH_MAX];
    if (files_path(dir, id, path, sizeof(path)) < 0) return FILES_ERR_INVALID;
    return unlink(path) == 0 || errno == ENOENT ? 0 : FILES_ERR_IO;
}

int files_list(const char *dir, int (*fn)(const char *id, void *arg), void *arg)
{
    DIR *d = opendir(dir);
    if (d == NULL) return errno == ENOENT ? 0 : FILES_ERR_IO;
    int count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *sub = de->d_name;
        /* Only the two-hex-digit directories files_place makes (not tmp, not dot files). */
        if (strlen(sub) != 2 || !isxdigit((unsigned char)sub[0]) ||
            !isxdigit((unsigned char)sub[1]))
            continue;
        int fd = openat(dirfd(d), sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) continue;
        DIR *sd = fdopendir(fd);
        if (sd == NULL) {
            close(fd);
            continue;
        }
        struct dirent *fe;
        while ((fe = readdir(sd)) != NULL) {
            const char *id = fe->d_name;
            /* A file that is where files_path puts its id, and nothing else. */
            if (!id_valid(str_cstr(id)) || memcmp(id + ID_LEN - 2, sub, 2) != 0) continue;
            count++;
            if (fn(id, arg) != 0) {
                closedir(sd);
                closedir(d);
                return count;
            }
        }
        closedir(sd);
    }
    closedir(d);
    return count;
}

/* Links the temporary file at its final name without ever replacing an existing file. */
static int files_place(files_upload_t *u, char id[ID_SIZE])
{
    char path[PATH_MAX], sub[PATH_MAX];
    for (int attempt = 0; attempt < 4; attempt++) {
        id_generate(id);
        if (files_path(u->dir, id, path, sizeof(path)) < 0) return FILES_ERR_INVALID;
        snprintf(sub, sizeof(sub), "%s/%.2s", u->dir, id + ID_LEN - 2);
        struct stat st;
        bool made = false;
        if (stat(sub, &st) != 0) {
            if (files_mkdir(sub) != 0) return FILES_ERR_IO;
            made = true;
        }
        if (link(u->tmp_path, path) == 0) {
            unlink(u->tmp_path);
        } else if (errno == EEXIST) {
            continue;
        } else if (rename(u->tmp_path, path) != 0) { /* filesystems without hard links */
            return FILES_ERR_IO;
        }
        if (files_fsync_dir(sub) != 0 || (made && files_fsync_dir(u->dir) != 0)) {
            unlink(path);
            return FILES_ERR_IO;
        }
        return 0;
    }
    return FILES_ERR_IO;
}

int files_upload_finish(files_upload_t *u, const char *allow_list, char out_id[ID_SIZE],
                        char out_sha256_hex[FILES_SHA256_HEX_SIZE], uint64_t *out_size,
                        char *out_mime, size_t mime_cap)
{
    char mime[FILES_MIME_SIZE], id[ID_SIZE];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rc = u->error;
    if (rc) goto out;
    if (fsync(u->fd) != 0) {
        rc = files_upload_fail(u, FILES_ERR_IO);
        goto out;
    }
    rc = files_sniff_fd(u->fd, mime, sizeof(mime));
    if (rc < 0) {
        files_upload_fail(u, rc);
        goto out;
    }
    if (out_mime && mime_cap) snprintf(out_mime, mime_cap, "%s", mime);
    if (!files_mime_allowed(mime, allow_list)) {
        rc = files_upload_fail(u, FILES_ERR_TYPE);
        goto out;
    }
    if (EVP_DigestFinal_ex(u->sha, md, &mdlen) != 1 || mdlen != 32) {
        rc = files_upload_fail(u, FILES_ERR_IO);
        goto out;
    }
    rc = files_place(u, id);
    if (rc < 0) {
        files_upload_fail(u, rc);
        goto out;
    }
    close(u->fd);
    u->fd = -1;
    if (out_id) memcpy(out_id, id, ID_SIZE);
    if (out_sha256_hex) {
        static const char hex[] = "0123456789abcdef";
        for (unsigned i = 0; i < 32; i++) {
            out_sha256_hex[2 * i] = hex[md[i] >> 4];
            out_sha256_hex[2 * i + 1] = hex[md[i] & 15];
        }
        out_sha256_hex[64] = '\0';
    }
    if (out_size) *out_size = u->size;
out:
    files_upload_free(u);
    return rc;
}
