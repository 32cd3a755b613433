#!/usr/bin/env bash
# Builds a Go filter plugin into a component:
#   tools/go-component.sh SOURCE_DIR OUT.wasm
# SOURCE_DIR holds the plugin's Go packages: `export_weir_filter_plugin`
# (the functions the generated entry points call) and any packages of its
# own, imported as `wit_component/NAME`. Steps: `wit-bindgen go` generates
# the bindings and go.mod into a build folder, the packages are copied
# beside them (tests left out), Go builds a wasip1 c-shared core module
# (//go:wasmexport entry points, cabi_realloc from the runtime package), and
# wasm-tools makes it a component with the preview1 reactor adapter.
# Pinned toolchains come from tools/toolchains.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source_dir="$(cd "$1" && pwd)"
out="$(realpath -m "$2")"
toolchains="$root/tools/toolchains.sh"
wit_bindgen="$("$toolchains" path wit-bindgen)"
go_pkg="$("$toolchains" path go-pkg)"
wasm_tools="$("$toolchains" path wasm-tools)"
adapter="$("$toolchains" path adapter)"
GOTOOLCHAIN="$("$toolchains" path go)"
export GOTOOLCHAIN

build="${CARGO_TARGET_DIR:-$root/target}/go-component/$(basename "$source_dir")"
rm -rf "$build"
mkdir -p "$build" "$(dirname "$out")"
"$wit_bindgen" go --quiet --world filter --out-dir "$build" "$root/wit" 2>&1 | { grep -v '^Generating' || true; }
for package in "$source_dir"/*/; do
    cp -r "$package" "$build/"
done
rm -f "$build"/*/*_test.go
cd "$build"
# go.bytecodealliance.org/pkg is not on the module proxy: use the copy that
# ships with the generator (tools/toolchains.sh).
go mod edit -replace "go.bytecodealliance.org/pkg=$go_pkg"
go mod tidy
# -checklinkname=0: the runtime package links to Go runtime internals.
GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -ldflags="-checklinkname=0 -s -w" -o core.wasm .
"$wasm_tools" component embed --world filter "$root/wit" core.wasm -o embedded.wasm
"$wasm_tools" component new embedded.wasm --adapt "wasi_snapshot_preview1=$adapter" -o "$out"
