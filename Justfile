# Weir's recipes. `just --list` shows them all.
set shell := ["bash", "-euo", "pipefail", "-c"]

target_dir := env_var_or_default("CARGO_TARGET_DIR", justfile_directory() / "target")
plugin_dir := target_dir / "plugins"
weir := target_dir / "release" / "weir"

export WEIR_PLUGIN_DIR := plugin_dir
# Plugin crates follow a naming rule, so no recipe reads Cargo.toml: the
# crate of plugins/NAME is weir-plugin-NAME, that of tests/plugins/NAME is
# weir-test-plugin-NAME (CONTRIBUTING.md).
bundled := `ls plugins/*/Cargo.toml | xargs -n1 dirname | xargs -n1 basename | grep -vx sdk | tr '\n' ' '`
test_plugins := `ls tests/plugins/*/Cargo.toml | xargs -n1 dirname | xargs -n1 basename | tr '\n' ' '`
# `-p` flags of the bundled plugins, the SDK and the Rust example, for native test and lint runs.
plugin_packages := `for n in $(ls plugins/*/Cargo.toml | xargs -n1 dirname | xargs -n1 basename); do printf -- '-p weir-plugin-%s ' "$n"; done` + "-p weir-example-rust-redact"

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

# Build every plugin: the bundled ones, the examples in other languages, and the
# Fluent Bit-ABI test modules (to target/plugins/fluent-bit/).
plugins: bundled-plugins examples fluent-bit-test-modules

# Build the Rust plugins (plugins/* and tests/plugins/*) to target/plugins/NAME.wasm.
bundled-plugins: setup
    #!/usr/bin/env bash
    set -euo pipefail
    packages=()
    for name in {{bundled}}; do packages+=(-p "weir-plugin-$name"); done
    for name in {{test_plugins}}; do packages+=(-p "weir-test-plugin-$name"); done
    cargo build --profile plugin --target wasm32-wasip2 "${packages[@]}"
    mkdir -p "{{plugin_dir}}"
    out="{{target_dir}}/wasm32-wasip2/plugin"
    for name in {{bundled}}; do cp "$out/weir_plugin_${name//-/_}.wasm" "{{plugin_dir}}/$name.wasm"; done
    for name in {{test_plugins}}; do cp "$out/weir_test_plugin_${name//-/_}.wasm" "{{plugin_dir}}/$name.wasm"; done
    ls -la "{{plugin_dir}}"

# Toolchains install on first use (tools/toolchains.sh, outside the clone);
# an example whose sources, wit/ and tools/ are all older than its .wasm is skipped.

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

# The examples' own tests, natively; on the real weir they are tests/e2e/plugin_languages.rs.
test-examples:
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

# The Rust one for wasm32-unknown-unknown and wasm32-wasip1, the Go one for
# GOOS=wasip1 (Go from PATH, 1.24 or newer for //go:wasmexport).
# Build the filters written to Fluent Bit's filter_wasm ABI that Weir's tests run.
fluent-bit-test-modules: setup
    #!/usr/bin/env bash
    set -euo pipefail
    out="{{plugin_dir}}/fluent-bit"
    mkdir -p "$out"
    for target in wasm32-unknown-unknown wasm32-wasip1; do
        cargo build --release --target "$target" -p weir-test-fluent-bit
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
    WEIR_FLUENT_BIT_CONFIG="$config" cargo build --release --target "{{target}}" -p "weir-plugin-{{name}}" --features fluent-bit
    mkdir -p "{{target_dir}}/fluent-bit"
    cp "{{target_dir}}/{{target}}/release/weir_plugin_{{replace(name, '-', '_')}}.wasm" "{{target_dir}}/fluent-bit/{{name}}.wasm"
    echo "{{target_dir}}/fluent-bit/{{name}}.wasm"

# Build the host.
host:
    cargo build --release -p weir

# Build the host and the plugins.
build: plugins host

# Only the bundled plugins: a newcomer's first command installs no other language's toolchain.

# Run the quickstart pipeline: sample mobile chunks -> split -> stdout. No servers needed.
quickstart: bundled-plugins host
    {{weir}} run -c configs/quickstart.yaml

# The console quickstart: Weir with the console on http://127.0.0.1:9600/,
# fed generated app traffic (an iOS payment incident that pages, then
# resolves) a chunk at a time. Ctrl-C stops both.
console: build
    #!/usr/bin/env bash
    set -euo pipefail
    out="{{target_dir}}/console"
    mkdir -p "$out"
    {{weir}} generate --chunks 400 --statements 20 --slow pay@ios=4m..9m > "$out/chunks.ndjson"
    OUT_DIR="$out" {{weir}} run -c configs/quickstart-console.yaml &
    weir_pid=$!
    trap 'kill $weir_pid 2>/dev/null; wait $weir_pid' EXIT
    until curl -sf http://127.0.0.1:9600/ready >/dev/null; do sleep 0.2; done
    echo "console: http://127.0.0.1:9600/   (feeding $(wc -l < "$out/chunks.ndjson") chunks, one every 0.25 s)"
    while read -r chunk; do
        curl -sf -H 'content-type: application/x-ndjson' --data-binary "$chunk" http://127.0.0.1:9880/ingest >/dev/null
        sleep 0.25
    done < "$out/chunks.ndjson"
    echo "console: all chunks sent; Ctrl-C stops Weir"
    wait $weir_pid

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
    just test-one-worker
    just test-plugins
    just test-examples
    just test-templates

# The end-to-end tests again with the chain on one worker ($WEIR_WORKERS
# changes the default of pipeline.workers, one per core): every config must
# give the same results on one thread as on all cores.
test-one-worker:
    WEIR_WORKERS=1 cargo test --release -p weir --test e2e

# Per package set, not --workspace: that would unify features across host
# and plugins and rebuild wasmtime a second time.

# The plugins' own unit tests, natively (and the SDK's Fluent Bit glue).
test-plugins:
    cargo test --release {{plugin_packages}}
    cargo test --release -p weir-plugin-sdk --features fluent-bit

# The console's tests in headless Chromium (installs Debian's chromium and
# playwright-core on first use; see tests/browser/).
test-browser: build
    WEIR_BIN={{weir}} bash tests/browser/run.sh
# Rust needs only cargo; the other languages take their pinned toolchains
# from tools/toolchains.sh, which installs them on first use (unless the
# tools' variables, WASM_TOOLS and the rest, are set already).
# `weir plugin new` in every template language (or those named): write, build, pass its own tests.yaml.
test-templates *languages: build
    #!/usr/bin/env bash
    set -euo pipefail
    work="{{target_dir}}/templates"
    languages="{{languages}}"
    [ -n "$languages" ] || languages="$(ls host/templates)"
    for lang in $languages; do
        if [ "$lang" != rust ] && [ -z "${WASM_TOOLS:-}" ]; then
            toolchains=tools/toolchains.sh
            [ -x "$toolchains" ] || { echo "test-templates: the $lang template needs $toolchains to build" >&2; exit 1; }
            export WIT_BINDGEN="$($toolchains path wit-bindgen)" WASM_TOOLS="$($toolchains path wasm-tools)"
            export WASI_ADAPTER="$($toolchains path adapter)" CLANG="$($toolchains path clang)"
            export GO_PKG="$($toolchains path go-pkg)" GOTOOLCHAIN="$($toolchains path go)"
            export COMPONENTIZE_PY="$($toolchains path componentize-py)" COMPONENTIZE_JS="$($toolchains path componentize-js)"
        fi
        dir="$work/$lang/hello-$lang"
        rm -rf "$dir"
        {{weir}} plugin new --lang "$lang" "hello-$lang" --dir "$dir" > /dev/null
        # A cargo target folder of its own: the generated crate resolves its
        # own dependency versions, which must not churn the workspace's.
        CARGO_TARGET_DIR="$work/cargo" "$dir/build.sh"
        {{weir}} test "$dir/tests.yaml"
    done

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
    just test-one-worker
    just test-plugins
    just test-examples
    just test-browser
    just test-templates

# The pinned nightly and cargo-fuzz install on first use (tools/fuzz.sh,
# outside the clone); a crash stops with its input under fuzz/DIR/artifacts/.
# Not part of test-full: the crashes found are replayed by plain `cargo test`.
# Fuzz the parsers of what clients and operators send, SECONDS per target (default 600), growing the corpora (RELIABILITY.md).
fuzz seconds="600" *targets:
    tools/fuzz.sh run {{seconds}} {{targets}}

# Rerun BENCHMARKS.md's rows that need no server and print them as one table (tools/bench.py:
# `just bench --rounds 3 --baseline DIR` alternates with an earlier build and gives ratios).
bench *args: bundled-plugins host
    cargo build --release --manifest-path tools/native-chain/Cargo.toml --target-dir "{{target_dir}}/native-chain"
    python3 tools/bench.py {{args}}

# Stage 2's checkpoints on the real Kafka (start it: `just servers`): catch-up throughput with checkpoints
# every 1 s, 10 s and never, checkpoint size per 1,000 open series, restore time per MB.
bench-checkpoints *args: bundled-plugins host
    python3 tools/bench-checkpoints.py {{args}}

# The example filters' figures in BENCHMARKS.md: statements/s, instantiate time, memory per instance, size.
bench-examples: build
    WEIR="{{weir}}" bash plugins/examples/bench.sh

# Lints: formatting, the layer rule, clippy and rustdoc, all as errors.
lint:
    cargo fmt --all --check
    python3 .ci/check-layers.py
    # The Go template ships its own copy of gcsafe (a new plugin stands alone); keep it the example's.
    cmp plugins/examples/go-redact/gcsafe/gcsafe.go host/templates/go/gcsafe/gcsafe.go
    cargo clippy --release -p weir --all-targets -- -D warnings
    cargo clippy --release {{plugin_packages}} --all-targets -- -D warnings
    cargo clippy --release -p weir-plugin-sdk -p weir-plugin-extract -p weir-plugin-split --features fluent-bit --all-targets -- -D warnings
    cargo clippy --release --target wasm32-wasip1 -p weir-test-fluent-bit -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --release --no-deps --document-private-items -p weir -p weir-plugin-sdk
