/* Unit tests of the static file module's pure parts: path normalisation, content types, hashed
 * names, Accept-Encoding, SPA routes; and what loading a web root picks up. */
#include "http/http_static.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

static int norm(const char *path, char *out, size_t cap)
{
    return http_static_normalize(str_cstr(path), out, cap);
}

#define CHECK_NORM(path, expect)                                                                   \
    do {                                                                                           \
        char out_[256];                                                                            \
        int n_ = norm(path, out_, sizeof out_);                                                    \
        CHECK_EQ_INT(n_, (int)strlen(expect));                                                     \
        if (n_ >= 0) CHECK_MEM(out_, (size_t)n_, expect);                                          \
    } while (0)

#define CHECK_NORM_ERR(path, err)                                                                  \
    do {                                                                                           \
        char out_[256];                                                                            \
        CHECK_EQ_INT(norm(path, out_, sizeof out_), err);                                          \
    } while (0)

static void test_normalize_plain(void)
{
    CHECK_NORM("/", "");
    CHECK_NORM("/index.html", "index.html");
    CHECK_NORM("/app.ABCD1234.js", "app.ABCD1234.js");
    CHECK_NORM("/a/b/c.css", "a/b/c.css");
    CHECK_NORM("/assets/", "assets/");
    CHECK_NORM("//a///b//", "a/b/");
    CHECK_NORM("/./a/./b/.", "a/b/");
    CHECK_NORM("/.", "");
    CHECK_NORM("/a/.b", "a/.b"); /* hidden files are not loaded, so this is just a 404 */
    CHECK_NORM("/...", "...");   /* three dots is a name, not a parent */
    CHECK_NORM("/a..b/c", "a..b/c");
}

static void test_normalize_escapes(void)
{
    CHECK_NORM("/a%20b.txt", "a b.txt");
    CHECK_NORM("/%41%62c", "Abc");
    CHECK_NORM("/caf%C3%A9", "caf\xc3\xa9");
    CHECK_NORM("/a+b", "a+b"); /* '+' is a space only in queries */
    CHECK_NORM("/%2e/x", "x"); /* an escaped "." is still "." */
    CHECK_NORM_ERR("/%", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/%4", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/%4g", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/%g4", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/a%", HTTP_STATIC_E_BAD);
}

static void test_normalize_refuses_traversal(void)
{
    CHECK_NORM_ERR("/..", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/../etc/passwd", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/a/../../b", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/a/..", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/a/../", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/%2e%2e/x", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/%2E%2E/x", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/.%2e/x", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/a%2f..%2fb", HTTP_STATIC_E_BAD); /* escaped slash */
    CHECK_NORM_ERR("/..%2fetc", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/a%2Fb", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/a\\b", HTTP_STATIC_E_BAD); /* backslash */
    CHECK_NORM_ERR("/..\\..\\x", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/a%5cb", HTTP_STATIC_E_BAD); /* escaped backslash */
    CHECK_NORM_ERR("/a%5C..%5Cb", HTTP_STATIC_E_BAD);
    CHECK_NORM_ERR("/a%00.html", HTTP_STATIC_E_BAD); /* escaped NUL */
    CHECK_NORM_ERR("/a%0a", HTTP_STATIC_E_BAD);      /* control bytes */
    CHECK_NORM_ERR("/a%7f", HTTP_STATIC_E_BAD);
    /* A raw NUL inside the (ptr,len) path. */
    char out[64];
    CHECK_EQ_INT(http_static_normalize(str_make("/a\0b", 4), out, sizeof out), HTTP_STATIC_E_BAD);
    CHECK_EQ_INT(http_static_normalize(str_make("/a\tb", 4), out, sizeof out), HTTP_STATIC_E_BAD);
}

static void test_normalize_shape(void)
{
    char out[8];
    CHECK_EQ_INT(http_static_normalize(STR_NULL, out, sizeof out), HTTP_STATIC_E_BAD);
    CHECK_EQ_INT(http_static_normalize(STR_LIT(""), out, sizeof out), HTTP_STATIC_E_BAD);
    CHECK_EQ_INT(http_static_normalize(STR_LIT("a/b"), out, sizeof out), HTTP_STATIC_E_BAD);
    CHECK_EQ_INT(http_static_normalize(STR_LIT("/"), out, 0), HTTP_STATIC_E_BAD);
    /* Fits exactly: 7 bytes and the NUL. */
    CHECK_EQ_INT(http_static_normalize(STR_LIT("/abcdefg"), out, sizeof out), 7);
    CHECK_MEM(out, 7, "abcdefg");
    CHECK_EQ_INT(http_static_normalize(STR_LIT("/abcdefgh"), out, sizeof out),
                 HTTP_STATIC_E_TOO_LONG);
    CHECK_EQ_INT(http_static_normalize(STR_LIT("/abc/defg"), out, sizeof out),
                 HTTP_STATIC_E_TOO_LONG);
    CHECK_EQ_INT(http_static_normalize(STR_LIT("/abcdefg/"), out, sizeof out),
                 HTTP_STATIC_E_TOO_LONG);
    CHECK_EQ_INT(http_static_normalize(STR_LIT("/abcdef/"), out, sizeof out), 7);
    CHECK_MEM(out, 7, "abcdef/");
    /* A long path is measured as decoded. */
    char big[3 * 300 + 2] = "/";
    for (int i = 0; i < 300; i++) memcpy(big + 1 + 3 * i, "%41", 3);
    big[1 + 900] = '\0';
    char out2[512];
    CHECK_EQ_INT(http_static_normalize(str_cstr(big), out2, sizeof out2), 300);
}

static void test_mime(void)
{
    CHECK(!strcmp(http_static_mime(STR_LIT("index.html")), "text/html; charset=utf-8"));
    CHECK(!strcmp(http_static_mime(STR_LIT("app.ABCD1234.js")), "text/javascript; charset=utf-8"));
    CHECK(!strcmp(http_static_mime(STR_LIT("a/app.css")), "text/css; charset=utf-8"));
    CHECK(!strcmp(http_static_mime(STR_LIT("LOGO.PNG")), "image/png"));
    CHECK(!strcmp(http_static_mime(STR_LIT("x.svg")), "image/svg+xml"));
    CHECK(!strcmp(http_static_mime(STR_LIT("x.jpeg")), "image/jpeg"));
    CHECK(!strcmp(http_static_mime(STR_LIT("x.woff2")), "font/woff2"));
    CHECK(!strcmp(http_static_mime(STR_LIT("app.js.map")), "application/json"));
    CHECK(!strcmp(http_static_mime(STR_LIT("manifest.webmanifest")), "application/manifest+json"));
    CHECK(!strcmp(http_static_mime(STR_LIT("favicon.ico")), "image/x-icon"));
    CHECK(!strcmp(http_static_mime(STR_LIT("app.js.gz")), "application/gzip"));
    CHECK(!strcmp(http_static_mime(STR_LIT("README")), "application/octet-stream"));
    CHECK(!strcmp(http_static_mime(STR_LIT("a.b/README")), "application/octet-stream"));
    CHECK(!strcmp(http_static_mime(STR_LIT("x.exe")), "application/octet-stream"));
    CHECK(!strcmp(http_static_mime(STR_LIT("x.")), "application/octet-stream"));
    CHECK(!strcmp(http_static_mime(STR_LIT("")), "application/octet-stream"));
}

static void test_hashed(void)
{
    CHECK(http_static_is_hashed(STR_LIT("app.4KXOZT2P.js")));
    CHECK(http_static_is_hashed(STR_LIT("assets/app.4KXOZT2P.css")));
    CHECK(http_static_is_hashed(STR_LIT("chunk.abc12345def.js")));
    CHECK(!http_static_is_hashed(STR_LIT("index.html")));
    CHECK(!http_static_is_hashed(STR_LIT("app.js")));
    CHECK(!http_static_is_hashed(STR_LIT("jquery.min.js")));
    CHECK(http_static_is_hashed(STR_LIT("app.SLQOHWEG.js")));  /* esbuild base32, no digit */
    CHECK(!http_static_is_hashed(STR_LIT("app.fallback.js"))); /* a lower-case word */
    CHECK(!http_static_is_hashed(STR_LIT("app.Abcdefgh.js"))); /* mixed case, no digit */
    CHECK(!http_static_is_hashed(STR_LIT("app.1234567.js")));  /* too short */
    CHECK(!http_static_is_hashed(STR_LIT("4KXOZT2P.js")));     /* nothing before the hash */
    CHECK(!http_static_is_hashed(STR_LIT("app.4KXO-T2P.js")));
    CHECK(!http_static_is_hashed(STR_LIT("a.4KXOZT2P/app.js")));
    CHECK(!http_static_is_hashed(STR_LIT("")));
}

static void test_accepts_gzip(void)
{
    CHECK(http_static_accepts_gzip(STR_LIT("gzip")));
    CHECK(http_static_accepts_gzip(STR_LIT("gzip, deflate, br, zstd")));
    CHECK(http_static_accepts_gzip(STR_LIT("br;q=1.0, GZIP;q=0.5")));
    CHECK(http_static_accepts_gzip(STR_LIT("x-gzip")));
    CHECK(http_static_accepts_gzip(STR_LIT("*")));
    CHECK(http_static_accepts_gzip(STR_LIT("gzip;q=0.001")));
    CHECK(http_static_accepts_gzip(STR_LIT("gzip ; q = 1")));
    CHECK(!http_static_accepts_gzip(STR_NULL));
    CHECK(!http_static_accepts_gzip(STR_LIT("")));
    CHECK(!http_static_accepts_gzip(STR_LIT("identity")));
    CHECK(!http_static_accepts_gzip(STR_LIT("br, deflate")));
    CHECK(!http_static_accepts_gzip(STR_LIT("gzip;q=0")));
    CHECK(!http_static_accepts_gzip(STR_LIT("gzip;q=0.000")));
    CHECK(!http_static_accepts_gzip(STR_LIT("*, gzip;q=0")));
    CHECK(!http_static_accepts_gzip(STR_LIT("*;q=0")));
    CHECK(!http_static_accepts_gzip(STR_LIT("gzipx, xgzip")));
    CHECK(!http_static_accepts_gzip(STR_LIT("gzip;q=abc")));
}

static void test_is_route(void)
{
    CHECK(http_static_is_route(STR_LIT("")));
    CHECK(http_static_is_route(STR_LIT("login")));
    CHECK(http_static_is_route(STR_LIT("c/64b0f1aa")));
    CHECK(http_static_is_route(STR_LIT("v1.2/settings")));
    CHECK(!http_static_is_route(STR_LIT("app.js")));
    CHECK(!http_static_is_route(STR_LIT("a/favicon.ico")));
    CHECK(!http_static_is_route(STR_LIT(".env")));
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_load_root(void)
{
    char dir[] = "/tmp/parlor-static-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p[512];
    write_file(dir, "index.html", "<!doctype html>");
    write_file(dir, "index.html.gz", "gz");
    write_file(dir, "app.4KXOZT2P.js", "1");
    write_file(dir, "orphan.txt.gz", "lone gz"); /* no "orphan.txt": served as a file itself */
    write_file(dir, ".secret", "hidden");
    snprintf(p, sizeof p, "%s/sub", dir);
    mkdir(p, 0700);
    write_file(p, "x.css", "a{}");
    snprintf(p, sizeof p, "%s/link.js", dir);
    CHECK(symlink("/etc/passwd", p) == 0); /* symlinks are not followed */
    snprintf(p, sizeof p, "%s/fifo", dir);
    mkfifo(p, 0600); /* not a regular file */

    http_static_t *st = http_static_new(dir);
    CHECK(st != NULL);
    /* index.html (+ its .gz), app js, orphan.txt.gz, sub/x.css */
    CHECK_EQ_INT(http_static_count(st), 4);
    http_static_free(st);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);

    /* A missing root serves nothing, but is not fatal. */
    st = http_static_new("/nonexistent/parlor-web-root");
    CHECK(st != NULL);
    CHECK_EQ_INT(http_static_count(st), 0);
    http_static_free(st);
    http_static_free(NULL);
}

int main(void)
{
    RUN(test_normalize_plain);
    RUN(test_normalize_escapes);
    RUN(test_normalize_refuses_traversal);
    RUN(test_normalize_shape);
    RUN(test_mime);
    RUN(test_hashed);
    RUN(test_accepts_gzip);
    RUN(test_is_route);
    RUN(test_load_root);
    return UNIT_DONE();
}
