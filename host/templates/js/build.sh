#!/usr/bin/env bash
# Builds {{name}}.wasm beside this script with componentize-js: the one
# named by COMPONENTIZE_JS, else this folder's (`npm install` first).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
componentize_js="${COMPONENTIZE_JS:-node_modules/.bin/componentize-js}"
if [ ! -x "$componentize_js" ]; then
    echo "componentize-js not found at $componentize_js: run \`npm install\` here, or set COMPONENTIZE_JS" >&2
    exit 1
fi
# The world imports no WASI HTTP: leave out fetch() and its event handler.
"$componentize_js" app.js --wit wit --world-name filter -d http fetch-event -o {{name}}.wasm
echo "built {{name}}.wasm"
