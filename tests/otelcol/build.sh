#!/usr/bin/env bash
# Build the minimal OpenTelemetry Collector of this folder (Go from PATH,
# modules from the Go module proxy, pinned by go.sum) into ~/.cache/weir,
# keyed by its sources' hash. Idempotent; tests/e2e/otel_collector.rs calls it.
#
# usage: build.sh        prints the collector binary's path on stdout
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
key="$(cat "$here/main.go" "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-16)"
out="${WEIR_CACHE_HOME:-$HOME/.cache/weir}/otelcol-$key"
if [[ ! -x "$out" ]]; then
    mkdir -p "$(dirname "$out")"
    exec 9>"$out.lock"
    flock 9
    if [[ ! -x "$out" ]]; then
        printf 'build.sh: building the OpenTelemetry Collector into %s (a few minutes, once)\n' "$out" >&2
        (cd "$here" && go build -trimpath -o "$out.tmp" .)
        mv "$out.tmp" "$out"
    fi
fi
echo "$out"
