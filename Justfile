# Weir's recipes. `just --list` shows them all.
set shell := ["bash", "-euo", "pipefail", "-c"]

target_dir := env_var_or_default("CARGO_TARGET_DIR", justfile_directory() / "target")
plugin_dir := target_dir / "plugins"
weir := target_dir / "release" / "weir"

export WEIR_PLUGIN_DIR := plugin_dir
# `-p NAME` of every bundled plugin crate (plugins/*, plugins/examples/*), for native test and lint runs.
plugin_packages := `for m in plugins/*/Cargo.toml plugins/examples/*/Cargo.toml; do printf -- '-p %s ' "$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$m" | head -1)"; done`

# Show the recipes.
default:
    @just --list

# Install what building needs (idempotent).
setup:
    @rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

# Build every plugin: the bundled ones, then the examples in other languages.
plugins: bundled-plugins examples

# Build the Rust plugins (plugins/* and tests/plugins/*) to target/plugins/NAME.wasm.
bundled-plugins: setup
    #!/usr/bin/env bash
    set -euo pipefail
    packages=()
    for manifest in plugins/*/Cargo.toml tests/plugins/*/Cargo.toml; do
        [ "$(basename "$(dirname "$manifest")")" = sdk ] && continue
        packages+=(-p "$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -1)")
    done
    # Debug info only bloats components; the host profile keeps its own.
    cargo build --release --target wasm32-wasip2 --config profile.release.debug=false --config profile.release.strip=true "${packages[@]}"
    mkdir -p "{{plugin_dir}}"
    for manifest in plugins/*/Cargo.toml tests/plugins/*/Cargo.toml; do
        name="$(basename "$(dirname "$manifest")")"
        [ "$name" = sdk ] && continue
        package="$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -1)"
        cp "{{target_dir}}/wasm32-wasip2/release/${package//-/_}.wasm" "{{plugin_dir}}/$name.wasm"
    done
    ls -la "{{plugin_dir}}"

# Installs their pinned toolchains on first use (tools/toolchains.sh, outside the clone);
# skips one whose sources, wit/ and tools/ are all older than its .wasm.
# Build the examples in every plugin language (plugins/examples/*) and tests/plugins/*/build.sh to target/plugins/NAME.wasm.
examples:
    #!/usr/bin/env bash
    set -euo pipefail
    for build in plugins/examples/*/build.sh tests/plugins/*/build.sh; do
        dir="$(dirname "$build")"
        out="{{plugin_dir}}/$(basename "$dir").wasm"
        if [ -f "$out" ] && [ -z "$(find "$dir" wit tools -newer "$out" -not -path '*/node_modules/*' -print -quit)" ]; then
            continue
        fi
        echo "building $out"
        bash "$build" "$out"
    done

# The examples' own tests natively, then each example and the non-Rust test plugin on the real weir (plugins/examples/check.sh).
test-examples: build
    #!/usr/bin/env bash
    set -euo pipefail
    data=plugins/examples/testdata
    (cd plugins/examples/python-redact && python3 -m unittest -q)
    (cd plugins/examples/js-redact && node --test)
    (cd plugins/examples/go-redact && go test ./redact/)
    mkdir -p "{{target_dir}}/examples"
    cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "{{target_dir}}/examples/c-redact-test" \
        plugins/examples/c-redact/redact.c plugins/examples/c-redact/test.c
    "{{target_dir}}/examples/c-redact-test" < "$data/input.ndjson" | cmp - "$data/expected-default.ndjson"
    "{{target_dir}}/examples/c-redact-test" "$(cat "$data/custom.json")" < "$data/input.ndjson" | cmp - "$data/expected-custom.ndjson"
    echo "c-redact: native output matches"
    WEIR="{{weir}}" bash plugins/examples/check.sh

# Build the host.
host:
    cargo build --release -p weir

# Build the host and the plugins.
build: plugins host

# (Only the bundled plugins: a newcomer's first command installs no other language's toolchain.)
# Run the quickstart pipeline: sample mobile chunks -> split -> stdout. No servers needed.
quickstart: bundled-plugins host
    {{weir}} run -c configs/quickstart.yaml

# Run a pipeline config.
run config: build
    {{weir}} run -c {{config}}

# Unit and end-to-end tests that need no servers.
test: build
    cargo test --release -p weir
    just test-plugins
    just test-examples

# The plugins' own unit tests, natively. Run per package set: testing the
# whole workspace at once would unify features across host and plugins and
# rebuild wasmtime a second time.
test-plugins:
    cargo test --release {{plugin_packages}}

# Start the real Kafka, Elasticsearch and Alertmanager (idempotent; installs on first use).
servers:
    bash tests/servers/kafka.sh start
    bash tests/servers/elasticsearch.sh start
    bash tests/servers/alertmanager.sh start

# Stop what `just servers` started.
servers-stop:
    -bash tests/servers/alertmanager.sh stop
    -bash tests/servers/elasticsearch.sh stop
    -bash tests/servers/kafka.sh stop

# The full suite: start the real servers, run every test with them, stop the servers. README and CI run this.
test-full: build
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'just servers-stop' EXIT
    just servers
    cargo test --release -p weir --features real-servers
    just test-plugins
    just test-examples

# Benchmarks recorded in BENCHMARKS.md.
bench: build
    #!/usr/bin/env bash
    set -euo pipefail
    data="{{target_dir}}/bench"
    mkdir -p "$data"
    {{weir}} generate --chunks 2000 --statements 50 > "$data/chunks.ndjson"
    echo "machine: $(nproc) cores, $(date -u +%Y-%m-%d)"
    {{weir}} bench --plugin "{{plugin_dir}}/split.wasm" --input "$data/chunks.ndjson" --batch 20 \
        --config '{"field":"logs","context":["app","app_version",{"from":"device.os","to":"os"}],"time":{"regex":"^(?P<time>\\S+)"}}'

# The example filters' figures in BENCHMARKS.md: statements/s, instantiate time, memory per instance, size.
bench-examples: build
    WEIR="{{weir}}" bash plugins/examples/bench.sh

# Lints: formatting and clippy.
lint:
    cargo fmt --all --check
    cargo clippy --release -p weir --all-targets --features real-servers -- -D warnings
    cargo clippy --release {{plugin_packages}} --all-targets -- -D warnings
