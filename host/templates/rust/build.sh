#!/usr/bin/env bash
# Builds {{name}}.wasm beside this script: a WebAssembly component for the
# wasm32-wasip2 target (`rustup target add wasm32-wasip2` once).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{name_snake}}.wasm" {{name}}.wasm
echo "built {{name}}.wasm"
