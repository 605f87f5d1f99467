/* `parlor migrate --from sqlite:PATH --to postgres://... [--replace] [--files-to DIR]`. */
#include <stdio.h>
#include <string.h>

#include "serve/serve.h"
#include "store/store.h"
#include "store/store_migrate.h"

static void migrate_usage(FILE *out)
{
    fprintf(
        out,
        "usage: parlor migrate --from sqlite:PATH --to postgres://... [--replace]\n"
        "                      [--files-from DIR] [--files-to DIR]\n"
        "\n"
        "Copies a single-node store (SQLite) into PostgreSQL: users and accounts, conversations,\n"
        "members and their read watermarks, messages with their ids, seq and times, file\n"
        "records. One transaction: the target gets all of it, with the row counts checked, or\n"
        "nothing. Stop the server first (or it may write after the copy began).\n"
        "\n"
        "  --from        the SQLite store, e.g. sqlite:./data/parlor.db\n"
        "  --to          the PostgreSQL store (libpq URI; password from the URI, PGPASSWORD\n"
        "                or ~/.pgpass)\n"
        "  --replace     empty a target that already holds data (otherwise it is refused)\n"
        "  --files-from  the uploads directory of the source (default: files/ beside PATH)\n"
        "  --files-to    copy the uploaded files here, e.g. the directory every node will\n"
        "                share as --files-dir (default: copy nothing)\n");
}

int migrate_main(int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *files_from = NULL, *files_to = NULL;
    bool replace = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--from")         ? &from
                            : !strcmp(a, "--to")         ? &to
                            : !strcmp(a, "--files-from") ? &files_from
                            : !strcmp(a, "--files-to")   ? &files_to
                                                         : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            migrate_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--replace")) {
            replace = true;
        } else if (slot && i + 1 < argc) {
            *slot = argv[++i];
        } else {
            fprintf(stderr, "parlor migrate: unknown or incomplete option '%s'\n", a);
            migrate_usage(stderr);
            return 2;
        }
    }
    if (!from || !to) {
        fprintf(stderr, "parlor migrate: --from and --to are required\n");
        migrate_usage(stderr);
        return 2;
    }
    char default_files[4096];
    if (!files_from) {
        const char *path;
        store_target_engine(from, &path);
        const char *slash = strrchr(path, '/');
        if (slash)
            snprintf(default_files, sizeof default_files, "%.*s/files", (int)(slash - path), path);
        else
            snprintf(default_files, sizeof default_files, "files");
        files_from = default_files;
    }
    store_migrate_opts_t o = {.replace = replace, .files_from = files_from, .files_to = files_to};
    char err[1024] = "", shown[512];
    store_target_redact(to, shown, sizeof shown);
    int rc = store_migrate(from, to, &o, stdout, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "parlor migrate: %s\n", err);
        return rc;
    }
    printf("migrated %s into %s\n", from, shown);
    return 0;
}
