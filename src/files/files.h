/* Upload storage: client file-name sanitizing, content type sniffing (libmagic) with an
 * allow-list, and a size-limited writer that moves a finished upload under a generated id. */
#ifndef PARLOR_FILES_FILES_H
#define PARLOR_FILES_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/id.h"

enum {
    FILES_NAME_MAX = 200,      /* bytes of a sanitized name, without the NUL */
    FILES_NAME_SIZE = 201,     /* a buffer that always fits one */
    FILES_MIME_SIZE = 128,     /* a buffer that always fits a sniffed type */
    FILES_SHA256_HEX_SIZE = 65 /* 64 hex digits and a NUL */
};

enum {
    FILES_ERR_IO = -1,        /* a system call failed (disk full, permissions): 500 */
    FILES_ERR_TOO_LARGE = -2, /* over max_size: 413 */
    FILES_ERR_TYPE = -3,      /* content type not on the allow-list: 415 */
    FILES_ERR_INVALID = -4,   /* bad argument (id, buffer too small) */
    FILES_ERR_SNIFF = -5      /* libmagic could not be loaded or failed: 500 */
};

/* Default allow-list (comma-separated, the format files_mime_allowed takes): raster images,
 * PDF, plain text and CSV, and the office formats leases and invoices come in (legacy and
 * OOXML Word/Excel/PowerPoint, OpenDocument text/spreadsheet/presentation). Macro-enabled
 * OOXML is reported under its own types and so refused. */
#define FILES_DEFAULT_ALLOW                                                                        \
    "image/jpeg,image/png,image/gif,image/webp,application/pdf,text/plain,text/csv,"               \
    "application/msword,application/vnd.ms-excel,application/vnd.ms-powerpoint,"                   \
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document,"                     \
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,"                           \
    "application/vnd.openxmlformats-officedocument.presentationml.presentation,"                   \
    "application/vnd.oasis.opendocument.text,application/vnd.oasis.opendocument.spreadsheet,"      \
    "application/vnd.oasis.opendocument.presentation"

/* Makes a client-supplied file name safe to keep as metadata and to show; it never becomes a
 * path. raw[0..len) is the name as received (percent-decoding, if any, is the caller's). Keeps
 * the last component after '/' or '\'; drops NUL, C0/C1 controls, DEL and invisible format
 * characters (bidi overrides/isolates, zero-width, BOM); turns whitespace runs (ASCII and
 * Unicode spaces, tabs, line breaks) into one space, trimmed at both ends; removes leading
 * dots and collapses dot runs, so the result never contains ".."; replaces invalid UTF-8
 * (overlong, surrogates, truncated) with U+FFFD. The result is bounded to
 * min(FILES_NAME_MAX, cap - 1) bytes, cut on a code point boundary; a cut keeps a short
 * extension (up to 16 bytes after the last dot: "aaa...aaa.pdf"). An empty result becomes
 * "file". Writes a NUL-terminated UTF-8 string to out; returns its length, or
 * FILES_ERR_INVALID when cap < 5. raw may be NULL when len is 0. Pure and thread-safe. */
int files_sanitize_name(const char *raw, size_t len, char *out, size_t cap);

/* The MIME type of content, from the content only (libmagic, MAGIC_MIME_TYPE, default
 * database; one magic_t per calling thread, created on first use and closed at thread exit).
 * On top of libmagic: content starting with "#!" is always a script type: libmagic's when it
 * says text/x-... (text/x-shellscript, text/x-script.python), else "text/x-script" (libmagic
 * calls a script with an unknown interpreter, "#!foo", text/plain), and a zip whose central
 * directory holds [Content_Types].xml and word/document.xml, xl/workbook.xml or
 * ppt/presentation.xml is the matching OOXML type (libmagic 5.44, Debian 12, only recognises OOXML
 * whose first zip entries come in a particular order and says application/zip otherwise), or its
 * macroEnabled type when it has a vbaProject.bin; any other zip, whatever libmagic guessed from its
 * first entries, is application/zip. Writes the type, NUL-terminated, to out (FILES_MIME_SIZE is
 * enough); returns 0 or FILES_ERR_SNIFF / FILES_ERR_IO / FILES_ERR_INVALID. Blocking. */
int files_sniff_buffer(const void *buf, size_t len, char *out, size_t cap);
int files_sniff_path(const char *path, char *out, size_t cap);

/* True when mime is on allow_list (NULL: FILES_DEFAULT_ALLOW): comma-separated types,
 * whitespace around entries ignored, compared case-insensitively; an entry made of a type, a
 * slash and an asterisk ("image/" "*") allows every subtype. */
bool files_mime_allowed(const char *mime, const char *allow_list);

/* True for the raster image types that are safe to show inline and to attach to an 'image'
 * message: image/jpeg, image/png, image/gif, image/webp (never SVG). */
bool files_mime_is_image(const char *mime);

/* Creates dir and dir/tmp (mode 0700) if missing and removes temporary files left in dir/tmp
 * by a crash. Call once at startup, before any upload begins. Returns 0 or FILES_ERR_IO with
 * a message in err (may be NULL). */
int files_init(const char *dir, char *err, size_t err_cap);

/* An upload being written: created by begin, ended by exactly one finish or abort (both free
 * it). Not shared between threads at the same time, but may move between threads (uv pool). */
typedef struct files_upload files_upload_t;

/* Creates dir/tmp/<random>.part with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600 (dir/tmp is created
 * when missing). max_size: the largest accepted upload in bytes (exactly max_size is accepted).
 * Returns NULL on failure with a message in err (may be NULL). */
files_upload_t *files_upload_begin(const char *dir, uint64_t max_size, char *err, size_t err_cap);

/* Appends data and hashes it. Returns 0, FILES_ERR_TOO_LARGE as soon as the total would pass
 * max_size (nothing of that write is written, the temporary file is deleted at once), or
 * FILES_ERR_IO (the temporary file is deleted too). Errors are sticky; abort() still frees. */
int files_upload_write(files_upload_t *u, const void *data, size_t len);

/* Bytes written so far. */
uint64_t files_upload_size(const files_upload_t *u);

/* Completes the upload and frees u, whatever the outcome: fsyncs, sniffs the type (as
 * files_sniff_*), checks it against allow_list (NULL: the default), then moves the file to
 * dir/<2 hex>/<id> (the last two hex digits of a fresh id_generate id; the id's directory is
 * created 0700 and fsynced). Outputs the id, the SHA-256 of the content as lowercase hex, the
 * size and the sniffed type (also on FILES_ERR_TYPE, for logs; any output may be NULL).
 * Returns 0, FILES_ERR_TYPE (415: nothing kept), a sticky write error, or FILES_ERR_IO /
 * FILES_ERR_SNIFF (nothing kept). Once this returns 0 the file is durable; if the metadata row
 * cannot be committed afterwards, the caller removes the file with files_remove. */
int files_upload_finish(files_upload_t *u, const char *allow_list, char out_id[ID_SIZE],
                        char out_sha256_hex[FILES_SHA256_HEX_SIZE], uint64_t *out_size,
                        char *out_mime, size_t mime_cap);

/* Deletes the temporary file (if still there) and frees u. NULL is a no-op. */
void files_upload_abort(files_upload_t *u);

/* Where the file with this id is stored: "<dir>/<last 2 hex of id>/<id>", NUL-terminated.
 * Returns the length, or FILES_ERR_INVALID when id is not a valid id or out is too small. */
int files_path(const char *dir, const char *id, char *out, size_t cap);

/* Removes a stored file (0, also when already gone; FILES_ERR_INVALID; FILES_ERR_IO). */
int files_remove(const char *dir, const char *id);

/* Calls fn with the id of every stored file under dir (dir/<2 hex>/<id>, as files_path names
 * them; anything else is skipped), in no particular order, until fn returns non-zero. Returns
 * how many ids were passed, or FILES_ERR_IO when dir cannot be read. Blocking. Used at start
 * to find files whose metadata row never committed (a crash between the rename and the
 * commit): at start no upload is in flight, so a file without a row is an orphan. */
int files_list(const char *dir, int (*fn)(const char *id, void *arg), void *arg);

/* Zip inspection behind files_sniff_*, exposed for tests and fuzzing. Pure.
 * files_zip_find_cd: tail is the last tail_len bytes of a file of file_size bytes (pass the
 * last min(file_size, FILES_ZIP_TAIL_MAX) bytes). Finds the end-of-central-directory record,
 * which must end the file exactly, single-disk, not zip64; sets the central directory's offset
 * and length (checked to lie before the record). Returns 0 or -1.
 * files_zip_ooxml_mime: walks central directory records; returns the OOXML type as described
 * at files_sniff_buffer, or NULL (not OOXML or malformed). */
enum { FILES_ZIP_TAIL_MAX = 22 + 65535, FILES_ZIP_CD_MAX = 4 << 20 };
int files_zip_find_cd(const unsigned char *tail, size_t tail_len, uint64_t file_size,
                      uint64_t *cd_off, uint64_t *cd_len);
const char *files_zip_ooxml_mime(const unsigned char *cd, size_t len);

#endif
