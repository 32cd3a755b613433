#!/usr/bin/env bash
# Builds the Rust `redact` example to OUT (default target/plugins/rust-redact.wasm),
# as `just plugins` builds the bundled plugins.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$(realpath -m "${1:-$target/plugins/rust-redact.wasm}")"
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
# Debug info only bloats components; the host profile keeps its own.
cargo build --quiet --release --target wasm32-wasip2 --manifest-path "$root/Cargo.toml" \
    --config profile.release.debug=false --config profile.release.strip=true -p weir-example-rust-redact
mkdir -p "$(dirname "$out")"
cp "$target/wasm32-wasip2/release/weir_example_rust_redact.wasm" "$out"
