#!/usr/bin/env bash
# Builds the Go `redact` example to OUT (default target/plugins/go-redact.wasm);
# tools/go-component.sh has the steps (wit-bindgen go, GOOS=wasip1 c-shared,
# the preview1 reactor adapter).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
exec "$root/tools/go-component.sh" "$here" "${1:-$root/target/plugins/go-redact.wasm}"
