#!/usr/bin/env bash
# Builds the JavaScript `redact` example to OUT (default target/plugins/js-redact.wasm)
# with componentize-js, installed (pinned by package-lock.json) by tools/toolchains.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../../.."
out="$(realpath -m "${1:-$root/target/plugins/js-redact.wasm}")"
componentize_js="$("$root/tools/toolchains.sh" path componentize-js)"
mkdir -p "$(dirname "$out")"
# The world imports no WASI HTTP: leave out fetch() and its event handler.
cd "$here" && "$componentize_js" app.js --wit "$root/wit" --world-name filter -d http fetch-event -o "$out"
