#!/usr/bin/env bash
# The console's browser tests: install what they need (setup.sh), then run
# them with node's test runner against $WEIR_BIN (default: the release build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
WEIR_CHROMIUM="$(bash setup.sh)"
export WEIR_CHROMIUM
export WEIR_BIN="${WEIR_BIN:-$(cd ../.. && pwd)/target/release/weir}"
exec node --test --test-concurrency=1 --test-timeout=180000 console.test.mjs
