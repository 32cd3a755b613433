#!/usr/bin/env bash
# Builds {{name}}.wasm beside this script: `wit-bindgen c` generates the
# bindings, clang with wasi-libc compiles a WASI preview 1 reactor module,
# and wasm-tools turns it into a component with the preview1 reactor
# adapter. Each tool is found through its variable, else on PATH:
#   WIT_BINDGEN (wit-bindgen CLI with C), CLANG (clang with the wasm32-wasi
#   target and wasi-libc), WASM_TOOLS, and WASI_ADAPTER, the file
#   wasi_snapshot_preview1.reactor.wasm of the wasmtime release Weir uses
#   (README.md says where each comes from).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wit_bindgen="${WIT_BINDGEN:-wit-bindgen}"
clang="${CLANG:-clang}"
wasm_tools="${WASM_TOOLS:-wasm-tools}"
adapter="${WASI_ADAPTER:?set WASI_ADAPTER to wasi_snapshot_preview1.reactor.wasm (README.md)}"

build="$here/build"
rm -rf "$build"
mkdir -p "$build"
"$wit_bindgen" c --world filter --out-dir "$build" "$here/wit" 2>&1 | { grep -v '^Generating' || true; }
# A reactor: no main; the host calls the exports. filter_component_type.o
# carries the world, so `component new` needs no separate embed step.
"$clang" --target=wasm32-wasi -mexec-model=reactor -O2 -std=c11 -Wall -Wextra -Werror \
    -I "$build" -o "$build/core.wasm" \
    "$here/plugin.c" "$build/filter.c" "$build/filter_component_type.o" -Wl,--strip-debug
"$wasm_tools" component new "$build/core.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$here/{{name}}.wasm"
echo "built {{name}}.wasm"
