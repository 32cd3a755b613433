#!/usr/bin/env bash
# A Python venv holding the pinned independent clients of requirements.txt
# (fluent-logger, the OpenTelemetry SDK and exporters, kubernetes-validate,
# the Elasticsearch and OpenSearch clients),
# under ~/.cache/weir, keyed by the requirements' hash so a change of pins
# makes a fresh one. Idempotent; the end-to-end tests call it.
#
# usage: python.sh        prints the venv's python on stdout
#
# Environment (optional):
#   WEIR_CACHE_HOME   where the venvs live   (~/.cache/weir)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="$here/requirements.txt"
key="$(sha256sum "$requirements" | cut -c1-16)"
venv="${WEIR_CACHE_HOME:-$HOME/.cache/weir}/py-clients-$key"
python="$venv/bin/python"
stamp="$venv/.installed"

log() { printf 'python.sh: %s\n' "$*" >&2; }

if [[ ! -f "$stamp" ]]; then
    mkdir -p "$(dirname "$venv")"
    # One installer at a time: the e2e tests run in parallel.
    exec 9>"$venv.lock"
    flock 9
    if [[ ! -f "$stamp" ]]; then
        log "installing the test clients into $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2
        touch "$stamp"
    fi
fi
echo "$python"
