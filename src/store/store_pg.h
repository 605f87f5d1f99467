/* The PostgreSQL engine: connections through libpq to a database that several Parlor
 * processes may share (no STORE_ENGINE_SINGLE_WRITER), with reader connections and pipelined
 * write batches. See store_pg.c for the recovery-position scheme and docs/store.md. */
#ifndef PARLOR_STORE_STORE_PG_H
#define PARLOR_STORE_STORE_PG_H

#include "store/store.h"
#include "store/store_engine.h"

/* The engine struct (store_engine.h), registered as "postgres". */
extern const store_engine_t store_engine_postgres;

/* The PostgreSQL schema version this build creates and requires (the parlor_schema table);
 * its own numbering, independent of SQLite's user_version. */
#define STORE_PG_SCHEMA_VERSION 8

/* The SQL of the migration to schema version `to` (1 .. STORE_PG_SCHEMA_VERSION; NULL
 * otherwise), for the tests that build an older schema and let the store upgrade it. */
const char *store_pg_migration_sql(int to);

#endif
