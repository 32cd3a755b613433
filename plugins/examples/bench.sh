#!/usr/bin/env bash
# Measures each language's `redact` example (target/plugins/LANG-redact.wasm):
#   - statements/s on one core in-process: `weir bench`, batches of 1,000,
#     over bench_input.py's 20,000 statements (10% with an e-mail, 5% a card);
#   - instantiate time: how much longer `weir run` takes to become ready with
#     41 instances of the filter chained than with 1, per extra instance,
#     compiled components taken from a warm cache (so: load from the cache,
#     instantiate, configure); the median of 3 tries;
#   - memory per instance: the same two pipelines' anonymous resident memory
#     (RssAnon: linear memories and stores, not the mapped compiled code)
#     after the input has passed through, per extra instance;
#   - the component's size.
# Usage: plugins/examples/bench.sh [EXAMPLE...]   Env: WEIR, WEIR_PLUGIN_DIR, DURATION (5s).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
weir="${WEIR:-$root/target/release/weir}"
plugins="${WEIR_PLUGIN_DIR:-$root/target/plugins}"
work="$(mktemp -d)"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
extra=40

examples=("$@")
if [ ${#examples[@]} -eq 0 ]; then
    for dir in "$here"/*-redact/; do examples+=("$(basename "$dir")"); done
fi
python3 "$here/bench_input.py" > "$work/input.ndjson"
head -n 1000 "$work/input.ndjson" > "$work/some.ndjson"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

# Starts a pipeline of N chained instances of EXAMPLE; prints "startup_ms rss_anon_kib".
pipeline() { # example n
    {
        echo "admin: { address: 127.0.0.1:$port }"
        echo "cache_dir: $work/cache"
        echo "inputs: [{ type: file, path: in.ndjson, follow: true, poll_interval: 10ms, tag: t }]"
        echo "filters:"
        for i in $(seq "$2"); do echo "  - { type: $1, name: r$i, path: $plugins/$1.wasm, match: t }"; done
        echo "outputs: [{ type: blackhole, match: t }]"
    } > "$work/weir.yaml"
    : > "$work/in.ndjson"
    local start=$EPOCHREALTIME
    (cd "$work" && exec "$weir" --log-level warn run -c weir.yaml) &
    pid=$!
    until curl -sf "http://127.0.0.1:$port/ready" > /dev/null; do sleep 0.005; done
    local ready=$EPOCHREALTIME
    cat "$work/some.ndjson" >> "$work/in.ndjson"
    # Wait until the records have passed every instance.
    until curl -s "http://127.0.0.1:$port/metrics" | grep -q '^weir_output_records_total{[^}]*} 1000$'; do sleep 0.05; done
    local rss
    rss="$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status")"
    kill -TERM "$pid"
    wait "$pid" || true
    pid=
    python3 -c "import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) * 1000, 1), sys.argv[3])" "$start" "$ready" "$rss"
}

echo "machine: $(nproc) cores, $(date -u +%Y-%m-%d), $("$weir" --version)"
echo "| example | statements/s (one core, batches of 1,000) | instantiate | memory per instance | component |"
echo "|---|---|---|---|---|"
for example in "${examples[@]}"; do
    wasm="$plugins/$example.wasm"
    rate="$("$weir" --log-level warn bench --plugin "$wasm" --input "$work/input.ndjson" --batch 1000 \
        --duration "${DURATION:-5s}" | sed -n 's/.*: \([0-9]*\) records in\/s.*/\1/p')"
    pipeline "$example" 1 > /dev/null # warms the compile cache
    runs=()
    for _ in 1 2 3; do runs+=("$(pipeline "$example" 1)" "$(pipeline "$example" $((extra + 1)))"); done
    python3 - "$example" "$rate" "$extra" "$(stat -c %s "$wasm")" "${runs[@]}" <<'PY'
import statistics, sys
name, rate, extra, size, *runs = sys.argv[1:]
extra = int(extra)
pairs = [(runs[i].split(), runs[i + 1].split()) for i in range(0, len(runs), 2)]
inst = statistics.median((float(n[0]) - float(one[0])) / extra for one, n in pairs)
mem = statistics.median((int(n[1]) - int(one[1])) / extra / 1024 for one, n in pairs)
print(f"| {name} | {int(rate) / 1000:,.0f} k | {inst:.1f} ms | {mem:.1f} MiB | {int(size) / 1e6:.2f} MB |")
PY
done
