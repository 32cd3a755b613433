#!/usr/bin/env bash
# Builds the C `redact` example to OUT (default target/plugins/c-redact.wasm):
# `wit-bindgen c` generates the bindings, Debian's clang and wasi-libc
# compile a WASI preview 1 reactor module, and wasm-tools turns it into a
# component with the preview1 reactor adapter. Toolchains (pinned) come from
# tools/toolchains.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="$(realpath -m "${1:-$root/target/plugins/c-redact.wasm}")"
toolchains="$root/tools/toolchains.sh"
clang="$("$toolchains" path clang)"
wit_bindgen="$("$toolchains" path wit-bindgen)"
wasm_tools="$("$toolchains" path wasm-tools)"
adapter="$("$toolchains" path adapter)"

build="${CARGO_TARGET_DIR:-$root/target}/examples/c-redact"
rm -rf "$build"
mkdir -p "$build" "$(dirname "$out")"
"$wit_bindgen" c --world filter --out-dir "$build" "$root/wit" 2>&1 | { grep -v '^Generating' || true; }
# A reactor: no main; the host calls the exports. filter_component_type.o
# carries the world, so `component new` needs no separate embed step.
"$clang" --target=wasm32-wasi -mexec-model=reactor -O2 -std=c11 -Wall -Wextra -Werror \
    -I "$build" -I "$here" -o "$build/core.wasm" \
    "$here/plugin.c" "$here/redact.c" "$build/filter.c" "$build/filter_component_type.o" -Wl,--strip-debug
"$wasm_tools" component new "$build/core.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$out"
