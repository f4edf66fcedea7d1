#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for SECONDS each (default 60), one after
# the other (they use every core they get). New corpus entries are kept in
# fuzz/corpus/<target>; a crash stops the run and leaves its input in
# fuzz/artifacts/<target>/ (see docs/fuzzing.md).
#
#   scripts/fuzz.sh 300            # all targets, 5 minutes each
#   scripts/fuzz.sh 60 post_body   # one target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# cargo-fuzz builds with sanitizer flags only nightly accepts: use the
# nightly toolchain when rustup has one, else let the project's stable
# toolchain accept them with RUSTC_BOOTSTRAP.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cd fuzz && "${fuzz[@]}" list)
fi
for target in "${targets[@]}"; do
    echo "== fuzzing $target for ${seconds}s"
    mkdir -p "fuzz/corpus/$target"
    (cd fuzz && "${fuzz[@]}" run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
        -print_final_stats=1)
done
