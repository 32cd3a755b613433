#!/usr/bin/env bash
# The example filters end to end, on the real `weir` binary. For each
# language's `redact` (target/plugins/LANG-redact.wasm, from `just examples`):
#   1. redact.yaml turns testdata/input.ndjson into exactly
#      testdata/expected-default.ndjson;
#   2. configured by testdata/custom.json, with the input arriving in two
#      halves and a hot reload between them, it writes exactly
#      expected-custom.ndjson: its running total (`total_field`) carried across
#      the reload by snapshot/restore; the counters `emails` and `cards`
#      match testdata/expected-custom-counters.json;
#   3. a bad config is refused with an error naming the key.
# Then the non-Rust misbehaving test plugin (tests/plugins/go-misbehave): its
# trap, endless loop and runaway memory lose only their batch, as the Rust
# one's do (tests/e2e/plugin_limits.rs).
#
# Usage: plugins/examples/check.sh [EXAMPLE...]   (default: every *-redact example)
# Env: WEIR (default target/release/weir), WEIR_PLUGIN_DIR (default target/plugins).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
weir="${WEIR:-$root/target/release/weir}"
export WEIR_PLUGIN_DIR="${WEIR_PLUGIN_DIR:-$root/target/plugins}"
data="$here/testdata"
work="$(mktemp -d)"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

examples=("$@")
if [ ${#examples[@]} -eq 0 ]; then
    for dir in "$here"/*-redact/; do examples+=("$(basename "$dir")"); done
fi

passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
not_ok() { echo "FAILED: $*"; failed=$((failed + 1)); }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Wait up to 30 s until FILE has N lines.
wait_lines() {
    for _ in $(seq 300); do
        [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# The value of weir_filter_events_total{filter=$2,counter=$3} in the metrics text $1.
counter() {
    python3 - "$1" "$2" "$3" <<'PY'
import re, sys
text, name, counter = sys.argv[1:]
m = re.search(r'^weir_filter_events_total\{[^}]*filter="%s"[^}]*counter="%s"[^}]*\} (\S+)$' % (re.escape(name), re.escape(counter)), text, re.M)
print(m.group(1) if m else "missing")
PY
}

# A pipeline: followed input -> EXAMPLE (config JSON) -> out.ndjson, admin on PORT.
follow_config() { # example config port
    cat <<YAML
admin: { address: 127.0.0.1:$3 }
pipeline: { batch_max_records: 7 }
inputs: [{ type: file, path: in.ndjson, follow: true, poll_interval: 10ms, tag: t }]
filters:
  - { type: $1, match: t, config: $2 }
outputs:
  - { type: file, path: out.ndjson, match: t, batch: { max_wait: 20ms } }
  - { type: file, name: dead_letter, path: dead.ndjson, match: weir.dead_letter }
YAML
}

check_example() {
    local example="$1" dir="$work/$1"
    mkdir -p "$dir"
    if [ ! -f "$WEIR_PLUGIN_DIR/$example.wasm" ]; then
        not_ok "$example: $WEIR_PLUGIN_DIR/$example.wasm is missing (just examples)"
        return
    fi

    # 1. The committed pipeline config, default settings. The file output
    # appends, so start from no file.
    rm -f "$here/out/$example.ndjson"
    if EXAMPLE="$example" "$weir" run -c "$here/redact.yaml" > "$dir/run.log" 2>&1 &&
        cmp -s "$here/out/$example.ndjson" "$data/expected-default.ndjson"; then
        ok "$example: default config, output byte-identical to expected-default.ndjson"
    else
        not_ok "$example: default config"
        diff "$here/out/$example.ndjson" "$data/expected-default.ndjson" | head -20 || cat "$dir/run.log"
    fi

    # 2. The custom config across a hot reload.
    local port custom
    port="$(free_port)"
    custom="$(cat "$data/custom.json")"
    : > "$dir/in.ndjson"
    follow_config "$example" "$custom" "$port" > "$dir/weir.yaml"
    (cd "$dir" && exec "$weir" run -c weir.yaml > run2.log 2>&1) &
    local pid=$!
    pids+=("$pid")
    local half=19 total
    total="$(wc -l < "$data/input.ndjson")"
    head -n "$half" "$data/input.ndjson" >> "$dir/in.ndjson"
    if ! wait_lines "$dir/out.ndjson" "$half"; then
        not_ok "$example: custom config, first half not delivered"; cat "$dir/run2.log"; kill "$pid"; return
    fi
    # The same settings spelled differently: a new instance, the same output.
    follow_config "$example" "${custom%\}},\"emails\":true}" "$port" > "$dir/weir.yaml"
    local reload
    reload="$(curl -s -X POST "http://127.0.0.1:$port/-/reload")"
    tail -n +"$((half + 1))" "$data/input.ndjson" >> "$dir/in.ndjson"
    wait_lines "$dir/out.ndjson" "$total" || true
    local metrics
    metrics="$(curl -s "http://127.0.0.1:$port/metrics")"
    kill -TERM "$pid"
    wait "$pid" || true
    if [[ "$reload" == *'"modified":["'"$example"'"]'* ]] && cmp -s "$dir/out.ndjson" "$data/expected-custom.ndjson"; then
        ok "$example: custom config across a hot reload, output byte-identical to expected-custom.ndjson"
    else
        not_ok "$example: custom config across a hot reload (reload answered: $reload)"
        diff "$dir/out.ndjson" "$data/expected-custom.ndjson" | head -20 || true
    fi
    local emails cards
    emails="$(counter "$metrics" "$example" emails)"
    cards="$(counter "$metrics" "$example" cards)"
    if [ "$emails $cards" = "$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["emails"], c["cards"])' "$data/expected-custom-counters.json")" ]; then
        ok "$example: counters emails=$emails cards=$cards"
    else
        not_ok "$example: counters emails=$emails cards=$cards, expected $(cat "$data/expected-custom-counters.json")"
    fi

    # 3. Bad configs, each refused naming its key.
    local config key
    for config in '{"bogus":1}:bogus' '{"mask":3}:mask' '{"cards":"yes"}:cards' '{"email_pattern":"("}:email_pattern'; do
        key="${config##*:}"
        config="${config%:*}"
        printf 'inputs: [{ type: file, path: in.ndjson, tag: t }]\nfilters: [{ type: %s, match: t, config: %s }]\noutputs: [{ type: file, path: bad.ndjson, match: t }]\n' \
            "$example" "$config" > "$dir/bad.yaml"
        if "$weir" run -c "$dir/bad.yaml" > "$dir/bad.log" 2>&1; then
            not_ok "$example: config $config was accepted"
        elif grep -q "$key" "$dir/bad.log"; then
            ok "$example: config $config refused: $(grep -m1 "$key" "$dir/bad.log")"
        else
            not_ok "$example: config $config refused without naming $key: $(cat "$dir/bad.log")"
        fi
    done
}

# Mirrors tests/e2e/plugin_limits.rs: 200 records in batches of 10, record 57
# poisoned; every record is delivered or dead-lettered once, only the failing
# batch is lost, and records after it flow through the recreated instance.
check_contained() { # plugin mode limits reason
    local dir="$work/$1-$2"
    mkdir -p "$dir"
    python3 -c 'print("".join("{\"n\":57,\"m\":\"poison\"}\n" if i == 57 else "{\"n\":%d}\n" % i for i in range(200)), end="")' > "$dir/in.ndjson"
    cat > "$dir/weir.yaml" <<YAML
pipeline: { batch_max_records: 10 }
inputs: [{ type: file, path: in.ndjson, tag: t }]
filters:
  - { type: $1, match: t, limits: $3, config: { mode: $2 } }
outputs:
  - { type: file, path: out.ndjson, match: t }
  - { type: file, name: dead_letter, path: dead.ndjson, match: weir.dead_letter }
YAML
    if ! (cd "$dir" && "$weir" run -c weir.yaml > run.log 2>&1); then
        not_ok "$1 $2: weir failed: $(cat "$dir/run.log")"
        return
    fi
    local verdict
    verdict="$(python3 - "$dir" "$1" "$4" <<'PY'
import json, pathlib, sys
d, plugin, reason = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
read = lambda f: [json.loads(l) for l in (d / f).read_text().splitlines() if l.strip()] if (d / f).exists() else []
out, dead = read("out.ndjson"), read("dead.ndjson")
ns = sorted([r["n"] for r in out] + [x["record"]["n"] for x in dead])
problems = []
if ns != list(range(200)): problems.append("not every record delivered or dead-lettered once")
if not 1 <= len(dead) <= 10: problems.append(f"{len(dead)} dead letters, expected the one batch")
if not any(x["record"]["n"] == 57 for x in dead): problems.append("record 57 not dead-lettered")
for x in dead:
    if reason not in x["reason"]: problems.append(f"reason {x['reason']!r} lacks {reason!r}")
    if x["stage"] != f"filter {plugin}": problems.append(f"stage {x['stage']!r}")
if not any(r["n"] > 60 for r in out): problems.append("nothing flowed after the failure")
print("; ".join(problems) or f"ok ({len(dead)} dead-lettered: {dead[0]['reason'][:120]})")
PY
)"
    if [[ "$verdict" == ok* ]]; then ok "$1 $2 contained: ${verdict#ok }"; else not_ok "$1 $2: $verdict"; fi
}

for example in "${examples[@]}"; do check_example "$example"; done
if [ -f "$WEIR_PLUGIN_DIR/go-misbehave.wasm" ]; then
    check_contained go-misbehave trap "{}" "plugin go-misbehave: trapped in process"
    check_contained go-misbehave loop "{ deadline: 200ms }" "plugin go-misbehave: deadline of 200ms exceeded in process"
    check_contained go-misbehave memory_bomb "{ memory: 32MiB }" "plugin go-misbehave: memory cap of 33554432 bytes exceeded in process"
else
    not_ok "go-misbehave: $WEIR_PLUGIN_DIR/go-misbehave.wasm is missing (just examples)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
