#!/bin/bash
# build/parlor with its store in PostgreSQL, for the integration tests:
#   PARLOR_TEST_PG_URL=postgres://... PARLOR_BIN=scripts/pg-parlor.sh node --test tests/integration/chat_*.test.mjs
# `serve` gets PARLOR_STORE = the URL with a schema of its own per --data directory (created
# when missing; a restart on the same data directory finds its data again). REAL_PARLOR_BIN
# overrides the binary (e.g. build-asan/parlor).
PGURL=${PARLOR_TEST_PG_URL:?set PARLOR_TEST_PG_URL (scripts/pg.sh start prints one)}
BIN=${REAL_PARLOR_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/parlor}
data=""; prev=""
for a in "$@"; do [ "$prev" = "--data" ] && data="$a"; prev="$a"; done
if [ "$1" = serve ] && [ -n "$data" ]; then
    schema="t_$(echo -n "$data" | md5sum | cut -c1-16)"
    psql "$PGURL" -qc "CREATE SCHEMA IF NOT EXISTS $schema" >/dev/null 2>&1
    sep='?'
    case $PGURL in *\?*) sep='&' ;; esac
    export PARLOR_STORE="$PGURL${sep}options=-csearch_path%3D$schema"
fi
exec "$BIN" "$@"
