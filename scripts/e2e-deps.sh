#!/usr/bin/env bash
# Installs what the browser tests need: Debian's chromium (Playwright's own browser downloads
# are not used) and the npm packages of web/ (the client build) and tests/e2e/ (playwright-core).
# Uses apt-get when root; otherwise says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "e2e-deps.sh: chromium is missing; run as root, or: sudo apt-get install -y chromium" >&2
        exit 1
    fi
    echo "e2e-deps.sh: installing chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

# npm ci only when the lockfile changed since the last install.
for dir in web tests/e2e; do
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
        (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
        touch "$dir/node_modules"
    fi
done
