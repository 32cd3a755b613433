#!/usr/bin/env bash
# Builds {{name}}.wasm beside this script with componentize-py, found
# through COMPONENTIZE_PY, else on PATH (`pip install componentize-py`;
# Weir tests with 0.25.1).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
"${COMPONENTIZE_PY:-componentize-py}" -d wit -w filter componentize app -p . -o {{name}}.wasm
echo "built {{name}}.wasm"
