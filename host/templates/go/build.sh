#!/usr/bin/env bash
# Builds {{name}}.wasm beside this script: `wit-bindgen go` generates the
# bindings and go.mod into build/, this folder's packages are copied beside
# them (tests left out), Go builds a wasip1 c-shared core module, and
# wasm-tools makes it a component with the preview1 reactor adapter.
# Each tool is found through its variable, else on PATH:
#   WIT_BINDGEN (wit-bindgen CLI with Go), GO_PKG (the source of
#   go.bytecodealliance.org/pkg at the generator's version), WASM_TOOLS,
#   WASI_ADAPTER (wasi_snapshot_preview1.reactor.wasm of the wasmtime
#   release Weir uses), and go 1.27.1 or later (GOTOOLCHAIN picks one).
#   README.md says where each comes from.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wit_bindgen="${WIT_BINDGEN:-wit-bindgen}"
go_pkg="${GO_PKG:?set GO_PKG to the source of go.bytecodealliance.org/pkg (README.md)}"
wasm_tools="${WASM_TOOLS:-wasm-tools}"
adapter="${WASI_ADAPTER:?set WASI_ADAPTER to wasi_snapshot_preview1.reactor.wasm (README.md)}"

build="$here/build"
rm -rf "$build"
mkdir -p "$build"
"$wit_bindgen" go --world filter --out-dir "$build" "$here/wit" 2>&1 | { grep -v '^Generating' || true; }
for package in "$here"/export_weir_filter_plugin "$here"/gcsafe; do
    cp -r "$package" "$build/"
done
rm -f "$build"/*/*_test.go
cd "$build"
# go.bytecodealliance.org/pkg is not on the Go module proxy.
go mod edit -replace "go.bytecodealliance.org/pkg=$go_pkg"
go mod tidy
# -checklinkname=0: the runtime package links to Go runtime internals.
GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -ldflags="-checklinkname=0 -s -w" -o core.wasm .
"$wasm_tools" component embed --world filter "$here/wit" core.wasm -o embedded.wasm
"$wasm_tools" component new embedded.wasm --adapt "wasi_snapshot_preview1=$adapter" -o "$here/{{name}}.wasm"
echo "built {{name}}.wasm"
