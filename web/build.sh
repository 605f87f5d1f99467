#!/usr/bin/env bash
# Builds the web client into web/dist (hashed assets, index.html, .gz copies). Installs the
# pinned npm packages first when web/node_modules is missing or older than the lockfile.
# `web/build.sh --if-stale` builds only when a source is newer than web/dist/index.html.
set -euo pipefail
cd "$(dirname "$0")"
if [ "${1:-}" = --if-stale ] && [ -f dist/index.html ] &&
   [ -z "$(find src public index.html build.mjs package-lock.json -newer dist/index.html | head -1)" ]; then
    exit 0
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules
fi
node build.mjs
