#!/usr/bin/env bash
# Installs the Debian packages Parlor needs. `deps.sh build` for building and running,
# `deps.sh test` adds what the test suite needs. Uses apt-get when root; otherwise says what
# to install.
set -euo pipefail
want=${1:-build}

build_pkgs=(cmake make gcc pkg-config libuv1-dev libjansson-dev libjwt-dev libsqlite3-dev
            libsodium-dev libmagic-dev libssl-dev libpq-dev libhiredis-dev libcurl4-openssl-dev nodejs npm)
test_pkgs=(clang libclang-rt-dev postgresql redis-server haproxy sqlite3)
# `make cluster` and `make bench-cluster`: the servers a cluster runs on.
cluster_pkgs=(postgresql redis-server haproxy)

pkgs=("${build_pkgs[@]}")
[ "$want" = test ] && pkgs+=("${test_pkgs[@]}")
[ "$want" = cluster ] && pkgs+=("${cluster_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
    # node and npm may come from elsewhere than Debian (as on the CI image): accept the command.
    case $p in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
    esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
    echo "deps.sh: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
