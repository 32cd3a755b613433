#!/usr/bin/env bash
# Fuzzing (RELIABILITY.md, "Fuzzing"): installs the pinned nightly toolchain
# and cargo-fuzz, idempotently, outside the clone, and runs the fuzz targets
# of fuzz/host and fuzz/plugins, growing their committed corpora.
#
#   tools/fuzz.sh install              install what fuzzing needs; prints nothing when present
#   tools/fuzz.sh list                 the targets, as DIR/TARGET
#   tools/fuzz.sh run [SECONDS] [TARGET...]
#                                      run each target (default: all) for SECONDS
#                                      (default 600, FUZZ_SECONDS), then minimise
#                                      its corpus; a crash stops with its input
#                                      under fuzz/DIR/artifacts/TARGET/
#   FUZZ_SANITIZER=none tools/fuzz.sh run ...
#                                      without AddressSanitizer (default: address):
#                                      about twice the executions per second, and the
#                                      first host build skips instrumenting C code;
#                                      the targets' own code is safe Rust
#
# The nightly comes from rustup (sanitizer flags need it); cargo-fuzz is
# compiled into ${WEIR_TOOLCHAINS:-$HOME/.cache/weir/toolchains}/cargo-fuzz-VERSION.
# The fuzz builds go to $CARGO_TARGET_DIR/fuzz (or target/fuzz), apart from
# the stable builds, which they would otherwise invalidate.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${WEIR_TOOLCHAINS:-$HOME/.cache/weir/toolchains}"

# Pinned versions: the nightly whose rustc is 1.101.0-nightly (92b5b8c87
# 2026-10-29), and the cargo-fuzz release of that time.
NIGHTLY=nightly-2026-10-30
CARGO_FUZZ_VERSION=0.13.2

say() { echo "fuzz: $*" >&2; }

cargo_fuzz_bin() { echo "$cache/cargo-fuzz-$CARGO_FUZZ_VERSION/bin/cargo-fuzz"; }

install() {
    if ! rustup run "$NIGHTLY" rustc -V >/dev/null 2>&1; then
        say "installing $NIGHTLY (minimal profile)"
        rustup toolchain install "$NIGHTLY" --profile minimal >&2
    fi
    local dir="$cache/cargo-fuzz-$CARGO_FUZZ_VERSION"
    if [ ! -e "$dir/.complete" ]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        say "cargo install cargo-fuzz $CARGO_FUZZ_VERSION (compiles from source, a minute or two)"
        local start=$SECONDS
        cargo install --quiet --locked --root "$dir" --version "$CARGO_FUZZ_VERSION" cargo-fuzz
        echo "installed in $((SECONDS - start)) s on $(date -u +%Y-%m-%d), $(nproc) cores" > "$dir/.complete"
    fi
}

# DIR/TARGET for every target, from the fuzz crates' fuzz_targets/ folders.
targets() {
    for file in "$root"/fuzz/*/fuzz_targets/*.rs; do
        echo "$(basename "$(dirname "$(dirname "$file")")")/$(basename "$file" .rs)"
    done
}

run() {
    local seconds="${1:-${FUZZ_SECONDS:-600}}"
    shift || true
    install
    local wanted=("$@") target_dir="${CARGO_TARGET_DIR:-$root/target}/fuzz" fuzz common
    fuzz="$(cargo_fuzz_bin)"
    for entry in $(targets); do
        local dir="${entry%/*}" name="${entry#*/}"
        if [ "${#wanted[@]}" -gt 0 ] && [[ ! " ${wanted[*]} " == *" $name "* ]]; then
            continue
        fi
        local corpus="$root/fuzz/$dir/corpus/$name"
        mkdir -p "$corpus"
        say "$dir/$name for ${seconds}s"
        local common=(--fuzz-dir "$root/fuzz/$dir" --target-dir "$target_dir" --sanitizer "${FUZZ_SANITIZER:-address}")
        # -rss_limit_mb: the targets hold little; a gzip or msgpack bomb that
        # slips a limit shows as a crash, not as a slow machine.
        RUSTUP_TOOLCHAIN="$NIGHTLY" "$fuzz" run "${common[@]}" "$name" "$corpus" -- \
            -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
        # Keep the committed corpus small: only inputs that add coverage.
        RUSTUP_TOOLCHAIN="$NIGHTLY" "$fuzz" cmin "${common[@]}" "$name" "$corpus"
    done
}

case "${1:-}" in
    install) install ;;
    list) targets ;;
    run) shift; run "$@" ;;
    *) sed -n '2,17p' "$0" >&2; exit 2 ;;
esac
