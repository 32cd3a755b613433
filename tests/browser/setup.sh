#!/usr/bin/env bash
# Install what the console's browser tests need (idempotent): Debian's
# Chromium, and playwright-core pinned by package-lock.json, with npm's
# download cache under ~/.cache/weir so a second run fetches nothing.
# playwright-core never downloads a browser of its own: the tests launch
# /usr/bin/chromium through `executablePath`.
#
# usage: setup.sh        (prints the Chromium binary on stdout)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

log() { printf 'browser/setup.sh: %s\n' "$*" >&2; }
CHROMIUM="${WEIR_CHROMIUM:-/usr/bin/chromium}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/weir"

if [[ ! -x "$CHROMIUM" ]]; then
    [[ "$(id -u)" == 0 ]] || { log "error: $CHROMIUM is missing and installing it needs root (apt-get install chromium)"; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-cache show chromium >/dev/null 2>&1 || apt-get update -q >&2
    log "installing chromium with apt-get"
    if ! apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >&2; then
        # A stale index can name a .deb that is gone from the mirror: refresh once.
        apt-get update -q >&2
        apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >&2
    fi
fi

# npm ci wipes node_modules; skip it when the lock file has not changed.
stamp=node_modules/.weir-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    log "installing playwright-core with npm ci"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --cache "$CACHE/npm" >&2
    echo "$want" >"$stamp"
fi
echo "$CHROMIUM"
