#!/usr/bin/env bash
# Builds the Go misbehaving test filter to OUT (default target/plugins/go-misbehave.wasm).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
exec "$root/tools/go-component.sh" "$here" "${1:-$root/target/plugins/go-misbehave.wasm}"
