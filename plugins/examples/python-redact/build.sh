#!/usr/bin/env bash
# Builds the Python `redact` example to OUT (default target/plugins/python-redact.wasm)
# with componentize-py, installed by tools/toolchains.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../../.."
out="$(realpath -m "${1:-$root/target/plugins/python-redact.wasm}")"
componentize_py="$("$root/tools/toolchains.sh" path componentize-py)"
mkdir -p "$(dirname "$out")"
cd "$here" && "$componentize_py" -d "$root/wit" -w filter componentize app -p . -o "$out"
