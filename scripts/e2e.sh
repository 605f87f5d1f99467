#!/usr/bin/env bash
# The browser tests: installs chromium and the npm packages (scripts/e2e-deps.sh), builds the
# web client when it is missing or stale, and runs tests/e2e with node's test runner against
# $PARLOR_BIN (default build/parlor) serving $PARLOR_WEB_ROOT (default web/dist).
# Failing steps leave screenshots in tests/e2e/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/e2e-deps.sh
web/build.sh --if-stale
rm -rf tests/e2e/artifacts  # what is left after the run is from this run
exec node --test --test-reporter=tap --test-concurrency=1 --test-timeout=200000 tests/e2e/
