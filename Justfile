# Weir's recipes. `just --list` shows them all.
set shell := ["bash", "-euo", "pipefail", "-c"]

target_dir := env_var_or_default("CARGO_TARGET_DIR", justfile_directory() / "target")
plugin_dir := target_dir / "plugins"
weir := target_dir / "release" / "weir"

export WEIR_PLUGIN_DIR := plugin_dir
# Plugin crates follow a naming rule, so no recipe reads Cargo.toml: the
# crate of plugins/NAME is weir-plugin-NAME, that of tests/plugins/NAME is
# weir-test-plugin-NAME (CONTRIBUTING.md).
bundled := `ls -d plugins/*/ | xargs -n1 basename | grep -vxE 'sdk|examples' | tr '\n' ' '`
test_plugins := `ls -d tests/plugins/*/ | xargs -n1 basename | tr '\n' ' '`
# `-p` flags of the bundled plugins and the SDK, for native test and lint runs.
plugin_packages := `for n in $(ls -d plugins/*/ | xargs -n1 basename | grep -vx examples); do printf -- '-p weir-plugin-%s ' "$n"; done`

# Show the recipes.
default:
    @just --list

# wasip2 for components; wasip1 and unknown-unknown for Fluent Bit-ABI modules.
# Install what building needs (idempotent): the WebAssembly targets.
setup:
    #!/usr/bin/env bash
    set -euo pipefail
    installed="$(rustup target list --installed)"
    for target in wasm32-wasip2 wasm32-wasip1 wasm32-unknown-unknown; do
        grep -qx "$target" <<<"$installed" || rustup target add "$target"
    done

# Also the Fluent Bit-ABI test modules, to target/plugins/fluent-bit/.
# Build every plugin (plugins/* and tests/plugins/*) to target/plugins/NAME.wasm.
plugins: setup fluent-bit-test-modules
    #!/usr/bin/env bash
    set -euo pipefail
    packages=()
    for name in {{bundled}}; do packages+=(-p "weir-plugin-$name"); done
    for name in {{test_plugins}}; do packages+=(-p "weir-test-plugin-$name"); done
    # Debug info only bloats components; the host profile keeps its own.
    cargo build --release --target wasm32-wasip2 --config profile.release.debug=false --config profile.release.strip=true "${packages[@]}"
    mkdir -p "{{plugin_dir}}"
    out="{{target_dir}}/wasm32-wasip2/release"
    for name in {{bundled}}; do cp "$out/weir_plugin_${name//-/_}.wasm" "{{plugin_dir}}/$name.wasm"; done
    for name in {{test_plugins}}; do cp "$out/weir_test_plugin_${name//-/_}.wasm" "{{plugin_dir}}/$name.wasm"; done
    ls -la "{{plugin_dir}}"

# The Rust one for wasm32-unknown-unknown and wasm32-wasip1, the Go one for
# GOOS=wasip1 (Go from PATH, 1.24 or newer for //go:wasmexport).
# Build the filters written to Fluent Bit's filter_wasm ABI that Weir's tests run.
fluent-bit-test-modules: setup
    #!/usr/bin/env bash
    set -euo pipefail
    out="{{plugin_dir}}/fluent-bit"
    mkdir -p "$out"
    for target in wasm32-unknown-unknown wasm32-wasip1; do
        cargo build --release --target "$target" --config profile.release.debug=false --config profile.release.strip=true -p weir-test-fluent-bit
        cp "{{target_dir}}/$target/release/weir_test_fluent_bit.wasm" "$out/rust-${target#wasm32-}.wasm"
    done
    (cd tests/fluent-bit/go && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o "$out/go-wasip1.wasm" .)
    # The reverse direction: bundled filters built as Fluent Bit modules.
    for name in extract split; do
        cp "$(just fluent-bit-module "$name" "configs/fluent-bit/$name.json" | tail -1)" "$out/$name.wasm"
    done

# Writes target/fluent-bit/NAME.wasm, `Function_Name weir_filter` (docs/fluent-bit-abi.md).
# Build a bundled stateless filter (extract, split) as a Fluent Bit module, CONFIG (JSON file) built in.
fluent-bit-module name config target="wasm32-wasip1": setup
    #!/usr/bin/env bash
    set -euo pipefail
    config="$(cat "{{config}}")"
    WEIR_FLUENT_BIT_CONFIG="$config" cargo build --release --target "{{target}}" --config profile.release.debug=false --config profile.release.strip=true -p "weir-plugin-{{name}}" --features fluent-bit
    mkdir -p "{{target_dir}}/fluent-bit"
    cp "{{target_dir}}/{{target}}/release/weir_plugin_{{replace(name, '-', '_')}}.wasm" "{{target_dir}}/fluent-bit/{{name}}.wasm"
    echo "{{target_dir}}/fluent-bit/{{name}}.wasm"

# Build the host and the plugins.
build: plugins
    cargo build --release -p weir

# Run the quickstart pipeline: sample mobile chunks -> split -> stdout. No servers needed.
quickstart: build
    {{weir}} run -c configs/quickstart.yaml

# Run a pipeline config.
run config: build
    {{weir}} run -c {{config}}

# The edit-compile loop: type-check the host and the plugins (debug, incremental).
check:
    cargo check -p weir --all-targets
    cargo check {{plugin_packages}} --all-targets

# The edit-test loop: unit and end-to-end tests in a debug build, no servers.
test-fast: plugins
    cargo test -p weir
    cargo test {{plugin_packages}}

# Unit and end-to-end tests that need no servers (release build, as CI).
test: build
    cargo test --release -p weir
    just test-plugins

# Per package set, not --workspace: that would unify features across host
# and plugins and rebuild wasmtime a second time.

# The plugins' own unit tests, natively (and the SDK's Fluent Bit glue).
test-plugins:
    cargo test --release {{plugin_packages}}
    cargo test --release -p weir-plugin-sdk --features fluent-bit

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

# The full suite (README and CI): lints, then every test with the real servers.
test-full: lint build
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'just servers-stop' EXIT
    just servers
    # The real-server tests are #[ignore]d in plain `cargo test`.
    cargo test --release -p weir -- --include-ignored
    just test-plugins

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

# Lints: formatting, the layer rule, clippy and rustdoc, all as errors.
lint:
    cargo fmt --all --check
    python3 .ci/check-layers.py
    cargo clippy --release -p weir --all-targets -- -D warnings
    cargo clippy --release {{plugin_packages}} --all-targets -- -D warnings
    cargo clippy --release -p weir-plugin-sdk -p weir-plugin-extract -p weir-plugin-split --features fluent-bit --all-targets -- -D warnings
    cargo clippy --release --target wasm32-wasip1 -p weir-test-fluent-bit -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --release --no-deps --document-private-items -p weir -p weir-plugin-sdk
