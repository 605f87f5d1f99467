/* `parlor migrate`: a single-node SQLite store copied into PostgreSQL (docs/store.md). */
#ifndef PARLOR_STORE_STORE_MIGRATE_H
#define PARLOR_STORE_STORE_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
    bool replace;           /* empty a non-empty target first (else refuse it) */
    const char *files_from; /* the source's files directory (<data>/files) */
    const char *files_to;   /* NULL: leave the bytes where they are; else copy them here */
} store_migrate_opts_t;

/* Copies every row of the SQLite store `from` (sqlite:PATH) into the PostgreSQL store `to`
 * (postgres://...) in one transaction, creating the target's schema, and checks the row counts.
 * Prints one line per table to report. Returns 0; 1 when it failed (nothing changed in the
 * target, message in err); 2 for bad arguments. */
int store_migrate(const char *from, const char *to, const store_migrate_opts_t *o, FILE *report,
                  char *err, size_t cap);

#endif
